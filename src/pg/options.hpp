// pg_ml glue: jsonb options flattened into a plain array (no C++ objects on the glue side).
#pragma once

enum PgmlOptionType { PGML_OPT_NULL, PGML_OPT_NUMBER, PGML_OPT_STRING, PGML_OPT_BOOL };

struct PgmlOption {
	char *key;
	PgmlOptionType type;
	double number;
	char *string;
	bool boolean;
};

int pgml_flatten_options(Jsonb *jb, const char *argname, PgmlOption **out);
// The same, where a key may also hold an array of scalars: each element is listed as "key[]",
// in order (search_params).
int pgml_flatten_lists(Jsonb *jb, const char *argname, PgmlOption **out);
// Core side: call inside PGML_CORE.
void pgml_options_to_core(const PgmlOption *opts, int n, pgml::Options &out);
