// pg_ml glue: reading and writing the catalog (schema ml).
//
// The catalog tables are not accessible to PUBLIC. Functions reach them from C under
// the identity of the catalog's owner (the schema's owner, who created the extension),
// after checking the caller's rights on the model themselves. Every statement is fully
// schema-qualified, operators included, so the caller's search_path plays no part.
#include "pg_ml.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "utils/acl.h"
#include "utils/syscache.h"
}

static Oid
catalog_owner(void)
{
	Oid nsp = get_namespace_oid("ml", true);
	if (!OidIsValid(nsp))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_SCHEMA), errmsg("pg_ml catalog schema \"ml\" does not exist"),
						errhint("Run CREATE EXTENSION pg_ml in this database.")));
	HeapTuple tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "pg_ml: cache lookup failed for schema %u", nsp);
	Oid owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

void
pgml_catalog_begin(Oid *save_user, int *save_sec)
{
	Oid owner = catalog_owner();
	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(owner, *save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

void
pgml_catalog_end(Oid save_user, int save_sec)
{
	SetUserIdAndSecContext(save_user, save_sec);
}

Datum
pgml_jsonb_from_cstring(const char *json)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
}

static char *
model_label(Datum arg, Oid argtype)
{
	if (argtype == INT8OID)
		return psprintf("%lld", (long long) DatumGetInt64(arg));
	return TextDatumGetCString(arg);
}

/*
 * pgml_resolve_model finds a model by name or id and checks the caller may use it
 * (PGML_USE: owner, member of the owning role, or granted) or change it (PGML_OWN).
 * With lock, the model row is locked FOR UPDATE until the transaction ends, which
 * serialises retrains, deploys and drops of one model.
 */
void
pgml_resolve_model(Datum arg, Oid argtype, PgmlAccess access, bool lock, PgmlModelRef *out)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid save_user;
	int save_sec;
	bool by_id = argtype == INT8OID || argtype == INT4OID;
	Datum key = argtype == INT4OID ? Int64GetDatum(DatumGetInt32(arg)) : arg;
	Oid keytype = by_id ? INT8OID : TEXTOID;
	char *label = model_label(key, keytype);
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT id, name, owner, deployed_version, task, algorithm, "
					 "ARRAY(SELECT g.grantee::pg_catalog.oid FROM ml.grants g WHERE g.model_id OPERATOR(pg_catalog.=) m.id), "
					 "(SELECT v.xmin FROM ml.versions v WHERE v.model_id OPERATOR(pg_catalog.=) m.id "
					 "AND v.version OPERATOR(pg_catalog.=) m.deployed_version) "
					 "FROM ml.models m WHERE %s OPERATOR(pg_catalog.=) $1%s",
					 by_id ? "id" : "name", lock ? " FOR UPDATE" : "");

	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	int rc = SPI_execute_with_args(sql.data, 1, &keytype, &key, NULL, !lock, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: model lookup failed: %s", SPI_result_code_string(rc));
	bool found = SPI_processed == 1;
	bool allowed = false;
	if (found) {
		HeapTuple tup = SPI_tuptable->vals[0];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		out->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		out->name = MemoryContextStrdup(caller, SPI_getvalue(tup, desc, 2));
		out->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		Datum dv = SPI_getbinval(tup, desc, 4, &isnull);
		out->deployed_version = isnull ? 0 : DatumGetInt32(dv);
		out->task = MemoryContextStrdup(caller, SPI_getvalue(tup, desc, 5));
		out->algorithm = MemoryContextStrdup(caller, SPI_getvalue(tup, desc, 6));
		Datum xd = SPI_getbinval(tup, desc, 8, &isnull);
		out->deployed_xmin = isnull ? InvalidTransactionId : DatumGetTransactionId(xd);
		/* rights are checked for the caller, not the catalog owner */
		allowed = has_privs_of_role(save_user, out->owner);
		if (!allowed && access == PGML_USE) {
			ArrayType *grantees = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 7, &isnull));
			Datum *elems;
			int nelems;
			deconstruct_array(grantees, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, NULL, &nelems);
			for (int i = 0; i < nelems && !allowed; i++)
				allowed = has_privs_of_role(save_user, DatumGetObjectId(elems[i]));
		}
	}
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	if (!found)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("model \"%s\" does not exist", label),
						errhint("ml_models lists the models you can use.")));
	if (!allowed)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg(access == PGML_OWN ? "must be owner of model \"%s\"" : "permission denied for model \"%s\"",
							   out->name),
						access == PGML_USE ? errhint("The model's owner can allow it with ml_grant().") : 0));
}

/*
 * pgml_load_blob reads a version's blob. fresh: read with a new snapshot (READ COMMITTED),
 * which a caller that waited for the model's row lock needs to see the version a concurrent,
 * now committed retrain wrote; prediction reads with the statement's snapshot (and must:
 * parallel workers cannot take new ones).
 */
bytea *
pgml_load_blob(int64 model_id, int32 version, TransactionId *xmin, bool fresh)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid save_user;
	int save_sec;
	Oid types[2] = {INT8OID, INT4OID};
	Datum values[2] = {Int64GetDatum(model_id), Int32GetDatum(version)};
	bytea *result = NULL;

	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	int rc = SPI_execute_with_args("SELECT blob, xmin FROM ml.versions WHERE model_id OPERATOR(pg_catalog.=) $1 "
								   "AND version OPERATOR(pg_catalog.=) $2",
								   2, types, values, NULL, !fresh, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: version lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1) {
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(caller);
		result = isnull ? NULL : DatumGetByteaPCopy(d);
		MemoryContextSwitchTo(old);
		if (xmin)
			*xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	return result;
}

static void
delete_model(void *p)
{
	delete static_cast<pgml::Model *>(p);
}

pgml::Model *
pgml_deserialize(bytea *blob, MemoryContext cxt, const PgmlModelRef *ref, int32 version)
{
	pgml::Model *model = nullptr;
	const uint8_t *data = reinterpret_cast<const uint8_t *>(VARDATA_ANY(blob));
	size_t len = VARSIZE_ANY_EXHDR(blob);
	PgmlCoreError err;
	/* the blob must belong to the row it was read from (model id, version, kind) */
	bool ok = pgml_try(&err, [&]() {
		std::unique_ptr<pgml::Model> m = pgml::Model::deserialize(data, len);
		m->check_binding(ref->id, version, ref->algorithm, ref->task);
		model = m.release();
	});
	if (!ok) {
		if (err.sqlstate == ERRCODE_DATA_CORRUPTED)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("version %d of model \"%s\" is corrupted", version, ref->name),
							errdetail_internal("%s", err.detail[0] ? err.detail : err.message),
							errhint("Deploy another version with ml_deploy(), or retrain the model.")));
		pgml_raise(&err);
	}
	if (cxt != NULL)
		pgml_own(cxt, model, delete_model);
	return model;
}

void
pgml_missing_deployed(const PgmlModelRef *ref)
{
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("model \"%s\" has no deployed version", ref->name),
					errdetail("Version %d, recorded as deployed, no longer exists.", ref->deployed_version),
					errhint("Deploy an existing version with ml_deploy(); ml_versions lists them.")));
}

pgml::Model *
pgml_load_deployed(const PgmlModelRef *ref)
{
	if (ref->deployed_version == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("model \"%s\" has no deployed version", ref->name)));
	bytea *blob = pgml_load_blob(ref->id, ref->deployed_version, NULL, true);
	if (blob == NULL)
		pgml_missing_deployed(ref);
	return pgml_deserialize(blob, CurrentMemoryContext, ref, ref->deployed_version);
}
