// pg_ml glue: ml_evaluate, ml_deploy, ml_rollback, ml_drop_model, ml_grant, ml_revoke.
#include "pg_ml.hpp"
#include "progress.hpp"
#include "jobs.hpp"

#include <memory>
#include <string>

extern "C" {
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(pgml_evaluate);
PG_FUNCTION_INFO_V1(pgml_deploy);
PG_FUNCTION_INFO_V1(pgml_rollback);
PG_FUNCTION_INFO_V1(pgml_drop_model);
PG_FUNCTION_INFO_V1(pgml_grant);
PG_FUNCTION_INFO_V1(pgml_revoke);
PG_FUNCTION_INFO_V1(pgml_drop_model_objects);
}

namespace {

struct EvalState {
	std::unique_ptr<pgml::Evaluator> evaluator;
	std::string json;
};

void
delete_eval(void *p)
{
	delete static_cast<EvalState *>(p);
}

void
eval_consume(void *arg, const pgml::Batch *batch)
{
	EvalState *st = static_cast<EvalState *>(arg);
	PGML_CORE(st->evaluator->add_batch(*batch, pgml_interrupt_pending));
	pgml_progress_rows(batch->nrows);
}

bool
version_exists(int64 model_id, int32 version)
{
	Oid t[2] = {INT8OID, INT4OID};
	Datum v[2] = {Int64GetDatum(model_id), Int32GetDatum(version)};
	if (SPI_execute_with_args("SELECT 1 FROM ml.versions WHERE model_id OPERATOR(pg_catalog.=) $1 "
							  "AND version OPERATOR(pg_catalog.=) $2",
							  2, t, v, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: version lookup failed");
	return SPI_processed > 0;
}

void
no_such_version(const char *model, int32 version)
{
	ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("version %d of model \"%s\" does not exist", version, model),
					errhint("ml_versions lists the versions of a model.")));
}

} // namespace

pgml::Model *
pgml_load_version_arg(FunctionCallInfo fcinfo, const char *fname, int version_arg, PgmlModelRef *ref, int32 *version)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model and relation of %s must not be NULL", fname)));
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_USE, false, ref);
	*version = PG_ARGISNULL(version_arg) ? ref->deployed_version : PG_GETARG_INT32(version_arg);
	char *kind = NULL;
	bytea *blob = pgml_load_blob(ref->id, *version, NULL, false, &kind);
	if (blob == NULL && PG_ARGISNULL(version_arg) && *version != 0)
		pgml_missing_deployed(ref);
	if (blob == NULL)
		no_such_version(ref->name, *version);
	return pgml_deserialize(blob, CurrentMemoryContext, ref, *version, kind);
}

TupleDesc
pgml_relation_desc(Oid relid)
{
	Relation rel = relation_open(relid, AccessShareLock);
	TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(rel));
	relation_close(rel, NoLock);
	return desc;
}

/* ml_evaluate(model, relation, version) -> jsonb: metrics of a version on labelled rows */
Datum
pgml_evaluate(PG_FUNCTION_ARGS)
{
	PgmlModelRef ref;
	int32 version;
	pgml::Model *model = pgml_load_version_arg(fcinfo, "ml_evaluate", 2, &ref, &version);

	const char *relname;
	bool is_query;
	Oid relid = pgml_source_oid(text_to_cstring(PG_GETARG_TEXT_PP(1)), &relname, &is_query);
	TupleDesc desc = pgml_relation_desc(relid);
	int nfeatures = static_cast<int>(model->features.size());
	PgmlColumn *features = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * nfeatures));
	PgmlColumn target;
	pgml_match_columns(desc, model, relname, ref.name, features, &target, false);

	EvalState *st = nullptr;
	PGML_CORE({
		st = new EvalState();
		st->evaluator = std::make_unique<pgml::Evaluator>(*model);
	});
	pgml_own(CurrentMemoryContext, st, delete_eval);
	pgml_progress_begin("ml_evaluate", ref.name, relid, "evaluating");
	int64 rows = pgml_scan_relation(relid, features, nfeatures, model->has_target() ? &target : nullptr, eval_consume, st);
	if (rows == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("relation \"%s\" has no rows", relname)));
	PGML_CORE(st->json = st->evaluator->metrics_json());
	pgml_progress_end();
	if (is_query)
		pgml_source_drop(relid);
	PG_RETURN_DATUM(pgml_jsonb_from_cstring(st->json.c_str()));
}

/* ml_deploy(model, version) -> integer: deploys a version, returns the one deployed before */
Datum
pgml_deploy(PG_FUNCTION_ARGS)
{
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_OWN, true, &ref);
	int32 version = PG_GETARG_INT32(1);
	Oid caller = GetUserId();
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	bool exists = version_exists(ref.id, version);
	if (exists && version != ref.deployed_version)
		pgml_record_deploy(ref.id, version, "ml_deploy()", caller);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	if (!exists)
		no_such_version(ref.name, version);
	if (version == ref.deployed_version)
		ereport(NOTICE, (errmsg("version %d of model \"%s\" is already deployed", version, ref.name)));
	PG_RETURN_INT32(ref.deployed_version);
}

/* ml_rollback(model) -> integer: deploys again the version deployed before the current one */
Datum
pgml_rollback(PG_FUNCTION_ARGS)
{
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_OWN, true, &ref);
	Oid save_user;
	int save_sec;
	int32 target = 0;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t[2] = {INT8OID, INT8OID};
	Datum v[2] = {Int64GetDatum(ref.id), 0};
	if (SPI_execute_with_args("SELECT id, version FROM ml.deployments WHERE model_id OPERATOR(pg_catalog.=) $1 AND active "
							  "ORDER BY id DESC",
							  1, t, v, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: deployment lookup failed");
	int64 keep_id = 0;
	for (uint64 i = 1; i < SPI_processed; i++) {
		bool isnull;
		int32 ver = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		if (ver != ref.deployed_version) {
			keep_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			target = ver;
			break;
		}
	}
	if (target != 0) {
		v[1] = Int64GetDatum(keep_id);
		SPI_execute_with_args("UPDATE ml.deployments SET active = false WHERE model_id OPERATOR(pg_catalog.=) $1 "
							  "AND id OPERATOR(pg_catalog.>) $2",
							  2, t, v, NULL, false, 0);
		pgml_set_deployed(ref.id, target);
	}
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	if (target == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("model \"%s\" has no earlier deployed version to roll back to", ref.name),
						errdetail("Version %d is the only version deployed so far.", ref.deployed_version),
						errhint("Deploy a specific version with ml_deploy().")));
	PG_RETURN_INT32(target);
}

/* ml_drop_model(model): drops a model and every version */
Datum
pgml_drop_model(PG_FUNCTION_ARGS)
{
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_OWN, true, &ref);
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	pgml_jobs_forget_model(ref.id); /* its auto-retrain trigger, staged rows and jobs */
	Oid t = INT8OID;
	Datum v = Int64GetDatum(ref.id);
	if (SPI_execute_with_args("DELETE FROM ml.models WHERE id OPERATOR(pg_catalog.=) $1", 1, &t, &v, NULL, false, 0) !=
		SPI_OK_DELETE)
		elog(ERROR, "pg_ml: could not drop the model");
	/* then its sequence (the event trigger finds no model left to drop) */
	if (OidIsValid(ref.seq) && OidIsValid(ref.owner) &&
		SPI_execute(psprintf("DROP SEQUENCE %s", pgml_model_seq_sql(ref.seq)), false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: could not drop the sequence of the model");
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	PG_RETURN_VOID();
}

static void
change_grant(FunctionCallInfo fcinfo, bool grant)
{
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_OWN, true, &ref);
	Oid role = PG_GETARG_OID(1);
	char *role_name = GetUserNameFromId(role, false);
	/* a grant is SELECT on the model's sequence: pg_shdepend tracks it (DROP ROLE, DROP OWNED) */
	char *sql = psprintf(grant ? "GRANT SELECT ON SEQUENCE %s TO %s" : "REVOKE SELECT ON SEQUENCE %s FROM %s",
						 pgml_model_seq_sql(ref.seq), quote_identifier(role_name));
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: could not change the grant");
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
}

/* ml_grant(model, role): lets role predict with and evaluate the model */
Datum
pgml_grant(PG_FUNCTION_ARGS)
{
	change_grant(fcinfo, true);
	PG_RETURN_VOID();
}

/* ml_revoke(model, role): takes back ml_grant */
Datum
pgml_revoke(PG_FUNCTION_ARGS)
{
	change_grant(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * ml.drop_model_objects(): the sql_drop event trigger. A model whose sequence was dropped (DROP
 * OWNED BY its owner, DROP SEQUENCE by its owner, ...) is dropped with it: its versions, its
 * auto-retrain trigger, staged rows and jobs. Any other drop costs one query.
 */
Datum
pgml_drop_model_objects(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("ml.drop_model_objects() can only be called as an event trigger")));
	/* the catalog itself may be what is dropped (DROP EXTENSION) */
	Oid nsp = get_namespace_oid("ml", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("models", nsp)))
		PG_RETURN_VOID();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t = OIDOID;
	Datum v = ObjectIdGetDatum(RelationRelationId);
	if (SPI_execute_with_args("SELECT pg_catalog.array_agg(d.objid) FROM pg_catalog.pg_event_trigger_dropped_objects() d "
							  "WHERE d.classid OPERATOR(pg_catalog.=) $1 AND d.objsubid OPERATOR(pg_catalog.=) 0 "
							  "AND d.object_type OPERATOR(pg_catalog.=) 'sequence'",
							  1, &t, &v, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not list the dropped objects");
	bool isnull;
	Datum seqs = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull) {
		SPI_finish();
		PG_RETURN_VOID();
	}
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	Oid at = OIDARRAYOID;
	if (SPI_execute_with_args("SELECT m.id FROM ml.models m "
							  "WHERE m.seq::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1) ORDER BY m.id FOR UPDATE",
							  1, &at, &seqs, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not find the models of the dropped sequences");
	uint64 n = SPI_processed;
	int64 *ids = static_cast<int64 *>(palloc(sizeof(int64) * (n + 1)));
	for (uint64 i = 0; i < n; i++)
		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	for (uint64 i = 0; i < n; i++) {
		pgml_jobs_forget_model(ids[i]);
		Oid it = INT8OID;
		Datum iv = Int64GetDatum(ids[i]);
		if (SPI_execute_with_args("DELETE FROM ml.models WHERE id OPERATOR(pg_catalog.=) $1", 1, &it, &iv, NULL, false, 0) !=
			SPI_OK_DELETE)
			elog(ERROR, "pg_ml: could not drop the model");
	}
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	PG_RETURN_VOID();
}
