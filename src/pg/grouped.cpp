// pg_ml glue: per-group models (ml_train(group_by => ...)), see src/core/grouped.hpp.
#include "grouped.hpp"

#include "agg_state.hpp"
#include "progress.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
}

int pgml_max_groups = static_cast<int>(pgml::kDefaultMaxGroups);

namespace {

// The scan's consumer and the state it feeds.
struct GroupedScan {
	pgml::GroupedTrainer *trainer;
	bool precise;
};

void
grouped_consume(void *arg, const pgml::Batch *batch)
{
	GroupedScan *s = static_cast<GroupedScan *>(arg);
	if (s->precise)
		PGML_CORE(s->trainer->add_precise_batch(*batch, pgml_interrupt_pending));
	else
		PGML_CORE(s->trainer->add_batch(*batch, pgml_interrupt_pending));
	if (!s->precise)
		pgml_progress_rows(batch->nrows); /* progress */
}

// Whether a group column's type names groups: text-like, enum, boolean or an integer type.
bool
group_type_ok(const PgmlColumn *c)
{
	if (c->tc == pgml::TypeClass::Categorical || c->tc == pgml::TypeClass::Boolean)
		return true;
	return c->tc == pgml::TypeClass::Numeric &&
		   (c->basetype == INT2OID || c->basetype == INT4OID || c->basetype == INT8OID);
}

} // namespace

int
pgml_group_columns(TupleDesc desc, ArrayType *group_by, const char *relname, const char *target_name,
				   PgmlColumn *features, int *nfeatures, bool features_given, PgmlColumn **out)
{
	Datum *names;
	bool *nulls;
	int n;
	deconstruct_array(group_by, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
	if (n == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("group_by must name at least one column"),
						errhint("Pass NULL (the default) to train one model on every row.")));
	if (n > 32)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("group_by names %d columns", n),
						errdetail("At most 32 group columns are allowed.")));
	PgmlColumn *cols = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * n));
	for (int i = 0; i < n; i++) {
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("group_by must not contain NULL")));
		char *g = TextDatumGetCString(names[i]);
		if (!pgml_find_column(desc, g, &cols[i]))
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
							errmsg("group column \"%s\" of relation \"%s\" does not exist", g, relname)));
		g = cols[i].name; /* the column's own name */
		for (int j = 0; j < i; j++)
			if (strcmp(cols[j].name, g) == 0)
				ereport(ERROR, (errcode(ERRCODE_DUPLICATE_COLUMN), errmsg("group column \"%s\" is listed twice", g)));
		if (strcmp(g, target_name) == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("target column \"%s\" cannot also be a group column", g),
							errhint("Each group's model predicts the target from the other columns.")));
		if (!group_type_ok(&cols[i]))
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
							errmsg("group column \"%s\" has type %s", g, pgml_type_name(cols[i].type)),
							errdetail("A group column must be text, varchar, char, an enum, boolean or an integer type."),
							errhint("Cast it in a view, e.g. round(%s)::integer or %s::text.", quote_identifier(g),
									quote_identifier(g))));
		for (int j = 0; j < *nfeatures; j++) {
			if (strcmp(features[j].name, g) != 0)
				continue;
			if (features_given)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("group column \"%s\" cannot also be a feature", g),
								errdetail("Within a group the column has one value: there is nothing to learn from it."),
								errhint("Leave it out of features => ARRAY[...].")));
			memmove(&features[j], &features[j + 1], sizeof(PgmlColumn) * (*nfeatures - j - 1));
			(*nfeatures)--;
			break;
		}
	}
	*out = cols;
	return n;
}

bool
pgml_group_fallback_all(const char *value)
{
	if (strcmp(value, "all") == 0)
		return true;
	if (strcmp(value, "error") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown group_fallback \"%s\"", value),
						errhint("Use 'error' (an unseen group is an error) or 'all' (a model of every row serves it).")));
	return false;
}

namespace {

// One row of the grouped statistics query: the group columns' text, the levels, the state.
struct StatsRow {
	const char **groups;
	const char **levels;
	ArrayType *state;
	int ngroups, nfeatures;
};

int
compare_stats_rows(const void *a, const void *b)
{
	const StatsRow *x = static_cast<const StatsRow *>(a), *y = static_cast<const StatsRow *>(b);
	int c = pgml_compare_levels(x->groups, y->groups, x->ngroups);
	return c != 0 ? c : pgml_compare_levels(x->levels, y->levels, x->nfeatures);
}

/*
 * The linear family's statistics in one aggregate query, grouped by the group columns too:
 *   SELECT <group columns>::text, <categorical features>, ml.train_stats($1, ...) FROM relation
 *     GROUP BY 1, 2, ...
 * as the current user (parallel where the planner chooses); each row goes to its group's
 * trainer, in key and level order. Returns the rows read.
 */
int64
grouped_aggregate(pgml::GroupedTrainer *trainer, Oid schema_oid, Oid relid, const PgmlColumn *features, int nfeatures,
				  const PgmlColumn *groups, int ngroups, const PgmlColumn *target)
{
	double expected = static_cast<double>(pgml_relation_row_estimate(relid));
	std::vector<double> *params = pgml_new_owned<std::vector<double>>();
	PGML_CORE(*params = trainer->stats_params(expected));
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < ngroups; i++)
		appendStringInfo(&sql, "(r.%s)::pg_catalog.text COLLATE pg_catalog.\"C\", ", quote_identifier(groups[i].name));
	int ncat = pgml_append_group_keys(&sql, features, nfeatures, "r.");
	appendStringInfo(&sql, "%s%s.train_stats($1, ", ncat ? ", " : "", quote_identifier(get_namespace_name(schema_oid)));
	pgml_append_row_call_args(&sql, target, features, nfeatures, "r.", 95);
	appendStringInfo(&sql, ") FROM %s r GROUP BY ", pgml_from_item(relid));
	for (int i = 0; i < ngroups + ncat; i++)
		appendStringInfo(&sql, "%s%d", i ? ", " : "", i + 1);

	Oid ptype = FLOAT8ARRAYOID;
	Datum pvalue = PointerGetDatum(pgml_float8_array(params));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	/* for this query only: hash the large states rather than sort them; no JIT (aggregate.cpp) */
	int nest = NewGUCNestLevel();
	(void)set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void)set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	int rc = SPI_execute_with_args(sql.data, 1, &ptype, &pvalue, NULL, true, 0);
	AtEOXact_GUC(true, nest);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: the grouped statistics query failed: %s", SPI_result_code_string(rc));
	uint64 n = SPI_processed;
	StatsRow *rows = static_cast<StatsRow *>(palloc0(sizeof(StatsRow) * Max(n, 1)));
	TupleDesc desc = SPI_tuptable->tupdesc;
	for (uint64 r = 0; r < n; r++) {
		HeapTuple tup = SPI_tuptable->vals[r];
		StatsRow *row = &rows[r];
		row->ngroups = ngroups;
		row->nfeatures = nfeatures;
		row->groups = static_cast<const char **>(palloc0(sizeof(char *) * ngroups));
		row->levels = static_cast<const char **>(palloc0(sizeof(char *) * Max(nfeatures, 1)));
		for (int i = 0; i < ngroups; i++)
			row->groups[i] = SPI_getvalue(tup, desc, i + 1);
		int col = ngroups;
		for (int i = 0; i < nfeatures; i++)
			if (features[i].tc == pgml::TypeClass::Categorical)
				row->levels[i] = SPI_getvalue(tup, desc, ++col);
		bool isnull;
		Datum d = SPI_getbinval(tup, desc, ngroups + ncat + 1, &isnull);
		row->state = isnull ? NULL : DatumGetArrayTypeP(d);
	}
	/* the groups in key and level order, so the sums are added in one order */
	qsort(rows, n, sizeof(StatsRow), compare_stats_rows);
	for (uint64 r = 0; r < n; r++) {
		CHECK_FOR_INTERRUPTS();
		if (rows[r].state == NULL)
			continue; /* no rows at all */
		size_t len;
		const double *data = pgml_state_array_data("train_stats", rows[r].state, &len);
		const char **g = rows[r].groups;
		const char **l = rows[r].levels;
		PGML_CORE({
			std::vector<const char *> gv(g, g + ngroups), lv(l, l + nfeatures);
			trainer->add_stats_group(gv, lv, data, len, pgml_interrupt_pending);
		});
	}
	SPI_finish();
	int64 total = 0;
	PGML_CORE(total = trainer->rows_read());
	pgml_progress_set_rows(total);
	return total;
}

} // namespace

int64
pgml_grouped_training(pgml::GroupedTrainer *trainer, Oid relid, const PgmlColumn *features, int nfeatures,
					  const PgmlColumn *groups, int ngroups, const PgmlColumn *target,
					  std::unique_ptr<pgml::Model> *model, const pgml::Model *compare)
{
	/* the scan's columns: the features, then the group columns */
	PgmlColumn *cols = static_cast<PgmlColumn *>(palloc(sizeof(PgmlColumn) * (nfeatures + ngroups)));
	memcpy(cols, features, sizeof(PgmlColumn) * nfeatures);
	memcpy(cols + nfeatures, groups, sizeof(PgmlColumn) * ngroups);
	GroupedScan scan = {trainer, false};
	/* the linear family: one aggregate query (a retrain reads rows: it scores both versions on them) */
	bool aggregate = false;
	PGML_CORE(aggregate = pgml_stats_aggregate && compare == nullptr && trainer->uses_stats_aggregate());
	Oid agg_schema = aggregate ? pgml_stats_aggregate_schema() : InvalidOid;
	int64 rows = OidIsValid(agg_schema)
					 ? grouped_aggregate(trainer, agg_schema, relid, features, nfeatures, groups, ngroups, target)
					 : pgml_scan_relation(relid, cols, nfeatures + ngroups, target, grouped_consume, &scan);
	if (rows == 0)
		return 0;
	pgml_progress_phase("fitting"); /* progress */
	PGML_CORE(*model = trainer->finish(pgml_interrupt_pending, compare));
	bool precise = false;
	PGML_CORE(precise = trainer->needs_precise_pass());
	if (precise) {
		pgml_progress_phase("precise pass"); /* progress */
		scan.precise = true;
		pgml_scan_relation(relid, cols, nfeatures + ngroups, target, grouped_consume, &scan);
		PGML_CORE({
			trainer->end_precise_pass();
			*model = trainer->finish(pgml_interrupt_pending, compare);
		});
	}
	return rows;
}

void
pgml_refuse_grouped(const pgml::Model *model, const char *what, const char *model_name, const char *hint)
{
	if (!model->grouped)
		return;
	char cols[512];
	PGML_CORE(snprintf(cols, sizeof cols, "%s", model->grouped_columns().c_str()));
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("%s does not support per-group model \"%s\"", what, model_name),
					errdetail("The model has one model per group of %s.", cols), errhint("%s", hint)));
}

void
pgml_unseen_group(const pgml::Model *model, const pgml::Value *values, const char *model_name)
{
	char group[512];
	int ngroups = 0;
	PGML_CORE({
		const pgml::GroupedModel &g = *model->grouped;
		const size_t nf = model->features.size() - g.columns.size();
		snprintf(group, sizeof group, "%s", g.key_of(values + nf).describe(g.columns).c_str());
		ngroups = static_cast<int>(g.groups.size());
	});
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("model \"%s\" has no model for group %s", model_name, group),
					errdetail("The model was trained on %d groups and has no fallback model.", ngroups),
					errhint("Predict rows of the training groups, or train with group_fallback => 'all' to serve "
							"other groups with a model of every row.")));
}
