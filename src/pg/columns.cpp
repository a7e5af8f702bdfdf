// pg_ml glue: ml_model_columns, the columns a relation must have to retrain or evaluate a model
// (what the pg_ml command line types its staging table with).
#include "pg_ml.hpp"
#include "grouped.hpp"

extern "C" {
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(pgml_model_columns);
}

/*
 * ml_model_columns(model, version) -> setof (ordinal, name, type, type_class, role): the feature
 * columns of a version (default: the deployed one) in the model's order, then its target.
 * Callers need the right to use the model (owner, member of the owner, or granted).
 */
Datum
pgml_model_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model of ml_model_columns must not be NULL")));
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_USE, false, &ref);
	int32 version = PG_ARGISNULL(1) ? ref.deployed_version : PG_GETARG_INT32(1);
	if (version == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("model \"%s\" has no deployed version", ref.name)));
	char *kind = NULL;
	bytea *blob = pgml_load_blob(ref.id, version, NULL, false, &kind);
	if (blob == NULL && PG_ARGISNULL(1))
		pgml_missing_deployed(&ref);
	if (blob == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("version %d of model \"%s\" does not exist", version, ref.name),
						errhint("ml_versions lists the versions of a model.")));
	pgml::Model *model = pgml_deserialize(blob, CurrentMemoryContext, &ref, version, kind);

	int nfeatures = static_cast<int>(model->features.size());
	int ncols = nfeatures + (model->has_target() ? 1 : 0);
	/* a per-group model's last features are its group columns (role "group") */
	int ngroup = 0;
	PGML_CORE(ngroup = model->grouped ? static_cast<int>(model->grouped->columns.size()) : 0);
	const char **names = static_cast<const char **>(palloc(sizeof(char *) * ncols));
	const char **types = static_cast<const char **>(palloc(sizeof(char *) * ncols));
	const char **classes = static_cast<const char **>(palloc(sizeof(char *) * ncols));
	/* pointers into the model, which lives as long as this call's memory context */
	PGML_CORE({
		for (int i = 0; i < ncols; i++) {
			const pgml::ColumnInfo &c = i < nfeatures ? model->features[i] : model->target;
			names[i] = c.name.c_str();
			types[i] = c.type_name.c_str();
			classes[i] = pgml::type_class_name(c.type_class);
		}
	});
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < ncols; i++) {
		Datum values[5] = {Int32GetDatum(i + 1), CStringGetTextDatum(names[i]), CStringGetTextDatum(types[i]),
						   CStringGetTextDatum(classes[i]), CStringGetTextDatum(i < nfeatures - ngroup ? "feature" : i < nfeatures ? "group" : "target")};
		bool nulls[5] = {false};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
