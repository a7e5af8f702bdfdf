// pg_ml glue: jsonb options -> plain arrays the core can turn into pgml::Options.
#include "pg_ml.hpp"

#include "options.hpp"

extern "C" {
#include "utils/fmgrprotos.h"
}

/*
 * pgml_flatten_options walks a jsonb object and lists its scalar leaves with dotted
 * keys ({"columns": {"age": {"impute": "median"}}} -> "columns.age.impute").
 * Arrays and a non-object top level are errors naming the argument.
 */
namespace {

/* lists: an array of scalars under a key lists its elements as "key[]", in order (search_params) */
int
flatten(Jsonb *jb, const char *argname, bool lists, PgmlOption **out)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must be a JSON object", argname),
						errhint("Write it like '{\"key\": value}'.")));
	int cap = 8, n = 0;
	PgmlOption *opts = static_cast<PgmlOption *>(palloc0(sizeof(PgmlOption) * cap));
	const char *keys[16];
	int depth = 0;
	bool in_array = false;
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue v;
	JsonbIteratorToken tok;
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE) {
		switch (tok) {
		case WJB_BEGIN_OBJECT:
			if (in_array)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s option \"%s\" must list numbers, strings or booleans", argname, keys[depth - 1])));
			if (++depth > 15)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s is nested too deeply", argname)));
			break;
		case WJB_END_OBJECT:
			depth--;
			break;
		case WJB_BEGIN_ARRAY:
			if (in_array)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s option \"%s\" must list numbers, strings or booleans", argname, keys[depth - 1])));
			if (!lists || depth == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("%s option \"%s\" must not be an array", argname, depth > 0 ? keys[depth - 1] : "")));
			in_array = true;
			break;
		case WJB_END_ARRAY:
			in_array = false;
			break;
		case WJB_KEY:
			keys[depth - 1] = pnstrdup(v.val.string.val, v.val.string.len);
			break;
		case WJB_ELEM:
		case WJB_VALUE: {
			if (n == cap) {
				cap *= 2;
				opts = static_cast<PgmlOption *>(repalloc(opts, sizeof(PgmlOption) * cap));
			}
			PgmlOption *o = &opts[n++];
			StringInfoData key;
			initStringInfo(&key);
			for (int i = 0; i < depth; i++)
				appendStringInfo(&key, "%s%s", i ? "." : "", keys[i]);
			if (tok == WJB_ELEM)
				appendStringInfoString(&key, "[]");
			o->key = key.data;
			switch (v.type) {
			case jbvNumeric:
				o->type = PGML_OPT_NUMBER;
				o->number = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric)));
				break;
			case jbvString:
				o->type = PGML_OPT_STRING;
				o->string = pnstrdup(v.val.string.val, v.val.string.len);
				break;
			case jbvBool:
				o->type = PGML_OPT_BOOL;
				o->boolean = v.val.boolean;
				break;
			default:
				o->type = PGML_OPT_NULL;
				break;
			}
			break;
		}
		default:
			break;
		}
	}
	*out = opts;
	return n;
}

} // namespace

int
pgml_flatten_options(Jsonb *jb, const char *argname, PgmlOption **out)
{
	return flatten(jb, argname, false, out);
}

int
pgml_flatten_lists(Jsonb *jb, const char *argname, PgmlOption **out)
{
	return flatten(jb, argname, true, out);
}

void
pgml_options_to_core(const PgmlOption *opts, int n, pgml::Options &out)
{
	for (int i = 0; i < n; i++) {
		const PgmlOption &o = opts[i];
		switch (o.type) {
		case PGML_OPT_NUMBER: out[o.key] = pgml::OptionValue::of_number(o.number); break;
		case PGML_OPT_STRING: out[o.key] = pgml::OptionValue::of_string(o.string); break;
		case PGML_OPT_BOOL: out[o.key] = pgml::OptionValue::of_bool(o.boolean); break;
		default: out[o.key] = pgml::OptionValue(); break;
		}
	}
}
