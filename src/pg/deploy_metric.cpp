// pg_ml glue: ml_set_deploy_metric and the deploy metric's catalog column (ml.models.deploy_metric).
#include "../core/deploy_metric.hpp"

#include "deploy_metric.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(pgml_set_deploy_metric);
}

void
pgml_check_deploy_metric(const char *metric, pgml::Task task)
{
	PGML_CORE(pgml::check_deploy_metric(metric, task));
}

void
pgml_store_deploy_metric(int64 model_id, const char *metric)
{
	Oid t[2] = {INT8OID, TEXTOID};
	Datum v[2] = {Int64GetDatum(model_id), metric != NULL ? CStringGetTextDatum(metric) : (Datum) 0};
	char nulls[3] = "  ";
	if (metric == NULL)
		nulls[1] = 'n';
	if (SPI_execute_with_args("UPDATE ml.models SET deploy_metric = $2, updated_at = pg_catalog.now() "
							  "WHERE id OPERATOR(pg_catalog.=) $1",
							  2, t, v, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_ml: could not store the deploy metric");
}

char *
pgml_deploy_metric_of(int64 model_id, const pgml::Model *base)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid save_user;
	int save_sec;
	Oid t = INT8OID;
	Datum v = Int64GetDatum(model_id);
	char *metric = NULL;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	if (SPI_execute_with_args("SELECT deploy_metric FROM ml.models WHERE id OPERATOR(pg_catalog.=) $1", 1, &t, &v, NULL,
							  false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not read the deploy metric");
	if (SPI_processed == 1) {
		char *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		if (s != NULL)
			metric = MemoryContextStrdup(caller, s);
	}
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	if (metric == NULL) {
		char buf[64];
		PGML_CORE(snprintf(buf, sizeof buf, "%s", pgml::default_deploy_metric(base->task, base->n_classes()).c_str()));
		metric = pstrdup(buf);
	}
	return metric;
}

/*
 * ml_set_deploy_metric(model, metric) -> text: the metric ml_retrain's deploy => 'if_better'
 * compares from now on (NULL: the task's default); returns the metric in effect. Owner only.
 */
extern "C" PGDLLEXPORT Datum
pgml_set_deploy_metric(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("argument model of ml_set_deploy_metric must not be NULL")));
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_OWN, true, &ref);
	pgml::Task task = pgml::Task::Regression;
	if (strcmp(ref.task, pgml::task_name(pgml::Task::Classification)) == 0)
		task = pgml::Task::Classification;
	else if (strcmp(ref.task, pgml::task_name(pgml::Task::Clustering)) == 0)
		task = pgml::Task::Clustering;
	char *metric = NULL;
	if (!PG_ARGISNULL(1)) {
		metric = text_to_cstring(PG_GETARG_TEXT_PP(1));
		pgml_check_deploy_metric(metric, task);
	}
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	int n_classes = 0;
	if (metric == NULL) {
		/* the default depends on the number of classes (the deployed version's) */
		Oid t = INT8OID;
		Datum v = Int64GetDatum(ref.id);
		if (SPI_execute_with_args("SELECT pg_catalog.jsonb_array_length(classes) FROM ml.models "
								  "WHERE id OPERATOR(pg_catalog.=) $1 AND pg_catalog.jsonb_typeof(classes) OPERATOR(pg_catalog.=) 'array'",
								  1, &t, &v, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "pg_ml: could not read the model's classes");
		if (SPI_processed == 1) {
			bool isnull;
			Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			n_classes = isnull ? 0 : DatumGetInt32(d);
		}
		char buf[64];
		PGML_CORE(snprintf(buf, sizeof buf, "%s", pgml::default_deploy_metric(task, n_classes).c_str()));
		metric = pstrdup(buf);
	}
	pgml_store_deploy_metric(ref.id, metric);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	PG_RETURN_TEXT_P(cstring_to_text(metric));
}
