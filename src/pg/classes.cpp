// pg_ml glue: the classes of a stored version, read from its blob (issue 11: the update to
// 0.3.0 fills ml.versions.classes of the versions trained before it with this).
#include "pg_ml.hpp"

#include <string>

extern "C" {
PG_FUNCTION_INFO_V1(pgml_version_classes);
}

/*
 * ml.version_classes(model_id bigint, version integer) -> jsonb: the classes of a version as its
 * blob holds them (the order of ml_predict_proba), NULL for a model that is not a classifier or
 * a version that does not exist. The blob is checked like any other (XX001 when it is corrupt
 * or bound to another row). Catalog identity; used by the update script only (not PUBLIC).
 */
Datum
pgml_version_classes(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	int64 model_id = PG_GETARG_INT64(0);
	int32 version = PG_GETARG_INT32(1);
	MemoryContext caller = CurrentMemoryContext;

	PgmlModelRef ref;
	memset(&ref, 0, sizeof ref);
	ref.id = model_id;
	{
		Oid save_user;
		int save_sec;
		pgml_catalog_begin(&save_user, &save_sec);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "pg_ml: SPI_connect failed");
		Oid t = INT8OID;
		Datum v = Int64GetDatum(model_id);
		if (SPI_execute_with_args("SELECT name, task, algorithm FROM ml.models WHERE id OPERATOR(pg_catalog.=) $1", 1, &t,
								  &v, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "pg_ml: model lookup failed");
		bool found = SPI_processed == 1;
		if (found) {
			MemoryContext old = MemoryContextSwitchTo(caller);
			ref.name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			ref.task = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			ref.algorithm = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
		if (!found)
			PG_RETURN_NULL();
	}
	char *kind = NULL;
	bytea *blob = pgml_load_blob(model_id, version, NULL, true, &kind);
	if (blob == NULL)
		PG_RETURN_NULL();
	const pgml::Model *model = pgml_deserialize(blob, CurrentMemoryContext, &ref, version, kind);
	std::string *json = pgml_new_owned<std::string>();
	PGML_CORE({
		if (model->task == pgml::Task::Classification) {
			pgml::JsonWriter w;
			w.begin_array();
			for (const std::string &k : model->classes)
				w.value(k);
			w.end_array();
			*json = w.str();
		}
	});
	if (json->empty())
		PG_RETURN_NULL();
	PG_RETURN_DATUM(pgml_jsonb_from_cstring(json->c_str()));
}
