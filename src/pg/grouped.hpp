// pg_ml glue: per-group models (ml_train(group_by => ...)), see src/core/grouped.hpp.
#pragma once

#include "pg_ml.hpp"

#include "../core/grouped.hpp"

extern int pgml_max_groups;

// The group columns of ml_train's group_by array: each a column of desc, not the target, not
// listed in features (features_given) and removed from the default features (otherwise); of
// a type whose values name a group (text-like, enum, boolean, integer). Errors name the column.
// Returns the count; *out is palloc'd.
int pgml_group_columns(TupleDesc desc, ArrayType *group_by, const char *relname, const char *target_name,
                       PgmlColumn *features, int *nfeatures, bool features_given, PgmlColumn **out);
// group_fallback => 'error' | 'all'
bool pgml_group_fallback_all(const char *value);
// Reads the relation once into a grouped trainer (features, then the group columns), fits,
// and reads it again for the precise pass if a group's least-squares fit asks. Returns the rows read.
int64 pgml_grouped_training(pgml::GroupedTrainer *trainer, Oid relid, const PgmlColumn *features, int nfeatures,
                            const PgmlColumn *groups, int ngroups, const PgmlColumn *target,
                            std::unique_ptr<pgml::Model> *model, const pgml::Model *compare);
// 0A000 for a function that does not handle a grouped model (what: the function's name).
void pgml_refuse_grouped(const pgml::Model *model, const char *what, const char *model_name, const char *hint);
// 22023 for a row whose group the grouped model has no model for (and no fallback); values:
// the row's values in the model's feature order.
void pgml_unseen_group(const pgml::Model *model, const pgml::Value *values, const char *model_name);
