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
#include "utils/lsyscache.h"
#include "utils/acl.h"
#include "utils/syscache.h"
}

bool
pgml_catalog_owned_models(void)
{
	Oid nsp = get_namespace_oid("ml", true);
	Oid rel = OidIsValid(nsp) ? get_relname_relid("models", nsp) : InvalidOid;
	return OidIsValid(rel) && get_attnum(rel, "seq") != InvalidAttrNumber;
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
	pgml_require_current_catalog();
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
	/* the owner is the owner of the model's sequence; a grant is SELECT on it (a catalog older
	   than the library is refused by pgml_catalog_begin) */
	appendStringInfo(&sql,
					 "SELECT m.id, m.name, (SELECT s.relowner FROM pg_catalog.pg_class s "
					 "WHERE s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid), m.deployed_version, m.task, "
					 "m.algorithm, m.seq::pg_catalog.oid, "
					 "(SELECT v.xmin FROM ml.versions v WHERE v.model_id OPERATOR(pg_catalog.=) m.id "
					 "AND v.version OPERATOR(pg_catalog.=) m.deployed_version) "
					 "FROM ml.models m WHERE m.%s OPERATOR(pg_catalog.=) $1%s",
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
		Datum od = SPI_getbinval(tup, desc, 3, &isnull);
		out->owner = isnull ? InvalidOid : DatumGetObjectId(od); /* invalid: the sequence is gone, superusers only */
		out->seq = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
		Datum dv = SPI_getbinval(tup, desc, 4, &isnull);
		out->deployed_version = isnull ? 0 : DatumGetInt32(dv);
		out->task = MemoryContextStrdup(caller, SPI_getvalue(tup, desc, 5));
		out->algorithm = MemoryContextStrdup(caller, SPI_getvalue(tup, desc, 6));
		Datum xd = SPI_getbinval(tup, desc, 8, &isnull);
		out->deployed_xmin = isnull ? InvalidTransactionId : DatumGetTransactionId(xd);
		/* rights are checked for the caller, not the catalog owner */
		allowed = has_privs_of_role(save_user, out->owner);
		if (!allowed && access == PGML_USE && OidIsValid(out->owner)) {
			bool missing = false;
			allowed = pg_class_aclcheck_ext(out->seq, save_user, ACL_SELECT, &missing) == ACLCHECK_OK && !missing;
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
pgml_load_blob(int64 model_id, int32 version, TransactionId *xmin, bool fresh, char **kind)
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
	int rc = SPI_execute_with_args("SELECT blob, xmin, model_kind FROM ml.versions WHERE model_id OPERATOR(pg_catalog.=) $1 "
								   "AND version OPERATOR(pg_catalog.=) $2",
								   2, types, values, NULL, !fresh, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: version lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1) {
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(caller);
		result = isnull ? NULL : DatumGetByteaPCopy(d);
		if (kind)
			*kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
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
pgml_deserialize(bytea *blob, MemoryContext cxt, const PgmlModelRef *ref, int32 version, const char *kind)
{
	pgml::Model *model = nullptr;
	const uint8_t *data = reinterpret_cast<const uint8_t *>(VARDATA_ANY(blob));
	size_t len = VARSIZE_ANY_EXHDR(blob);
	PgmlCoreError err;
	/* the blob must belong to the row it was read from (model id, version, kind) */
	bool ok = pgml_try(&err, [&]() {
		std::unique_ptr<pgml::Model> m = pgml::Model::deserialize(data, len);
		m->check_binding(ref->id, version, kind != NULL ? kind : "", ref->task);
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

bytea *
pgml_serialize_bound(pgml::Model *model, int64 model_id, int32 version, std::vector<uint8_t> *buf, uint16 *format,
					 uint32 *checksum)
{
	PGML_CORE({
		model->binding.model_id = model_id;
		model->binding.version = version;
		*buf = model->serialize();
	});
	bytea *blob = static_cast<bytea *>(palloc(VARHDRSZ + buf->size()));
	SET_VARSIZE(blob, VARHDRSZ + buf->size());
	memcpy(VARDATA(blob), buf->data(), buf->size());
	memcpy(format, buf->data() + 4, sizeof *format); /* the header: serialize.hpp */
	memcpy(checksum, buf->data() + 16, sizeof *checksum);
	return blob;
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
	char *kind = NULL;
	bytea *blob = pgml_load_blob(ref->id, ref->deployed_version, NULL, true, &kind);
	if (blob == NULL)
		pgml_missing_deployed(ref);
	return pgml_deserialize(blob, CurrentMemoryContext, ref, ref->deployed_version, kind);
}

char *
pgml_model_seq_sql(Oid seq)
{
	char *rel = get_rel_name(seq);
	char *nsp = get_namespace_name(get_rel_namespace(seq));
	if (rel == NULL || nsp == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("the sequence of a model is gone"),
						errhint("Drop the model with ml_drop_model().")));
	return quote_qualified_identifier(nsp, rel);
}

/*
 * pgml_insert_model: a new model row, and its sequence ml.model_<id> owned by the model's
 * owner. The sequence is what makes a model an owned PostgreSQL object: DROP ROLE of its owner
 * fails, REASSIGN OWNED moves it, DROP OWNED drops it (the sql_drop event trigger removes the
 * row), and ml_grant is SELECT on it. types / values / nulls: name, owner (regrole), task,
 * algorithm, target, relation, features, classes. SPI connected, catalog identity. Returns the
 * model's id, or 0 when a model of that name exists (the transaction must then fail).
 */
int64
pgml_insert_model(const Oid *types, const Datum *values, const char *nulls)
{
	Oid owner = DatumGetObjectId(values[1]);
	if (SPI_execute("SELECT pg_catalog.nextval('ml.models_id_seq'::pg_catalog.regclass)", false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "pg_ml: could not number the model");
	bool isnull;
	int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	/* its name is for people: the owner of another model's sequence may have renamed it to this one */
	Oid nsp = get_namespace_oid("ml", false);
	char seqname[NAMEDATALEN];
	snprintf(seqname, sizeof seqname, "model_%lld", (long long) id);
	for (int i = 2; OidIsValid(get_relname_relid(seqname, nsp)); i++)
		snprintf(seqname, sizeof seqname, "model_%lld_%d", (long long) id, i);
	const char *seq_sql = quote_qualified_identifier("ml", seqname);
	char *name = TextDatumGetCString(values[0]);
	if (SPI_execute(psprintf("CREATE SEQUENCE %s", seq_sql), false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: could not create the sequence of the model");
	Oid seq = get_relname_relid(seqname, nsp);
	if (!OidIsValid(seq))
		elog(ERROR, "pg_ml: the sequence of the model was not created");
	/* no grant but the owner's: default privileges for sequences (ALTER DEFAULT PRIVILEGES, often
	   set for serial columns) must not give anyone the model */
	Oid at = OIDOID;
	Datum av = ObjectIdGetDatum(seq);
	if (SPI_execute_with_args("SELECT DISTINCT a.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a "
							  "WHERE c.oid OPERATOR(pg_catalog.=) $1 AND a.grantee OPERATOR(pg_catalog.<>) c.relowner",
							  1, &at, &av, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not read the privileges of the sequence of the model");
	uint64 ngrantees = SPI_processed;
	Oid *grantees = static_cast<Oid *>(palloc(sizeof(Oid) * (ngrantees + 1)));
	for (uint64 i = 0; i < ngrantees; i++)
		grantees[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	for (uint64 i = 0; i < ngrantees; i++)
		if (SPI_execute(psprintf("REVOKE ALL ON SEQUENCE %s FROM %s", seq_sql,
								 OidIsValid(grantees[i]) ? quote_identifier(GetUserNameFromId(grantees[i], false))
														 : "PUBLIC"),
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "pg_ml: could not revoke the default privileges on the sequence of the model");
	if (SPI_execute(psprintf("COMMENT ON SEQUENCE %s IS %s", seq_sql,
							 quote_literal_cstr(psprintf("pg_ml model %s: its owner and the roles granted SELECT on it "
														 "are the model's",
														 name))),
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute(psprintf("ALTER SEQUENCE %s OWNER TO %s", seq_sql, quote_identifier(GetUserNameFromId(owner, false))),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: could not set the owner of the sequence of the model");

	Oid t[9] = {INT8OID, OIDOID, types[0], types[2], types[3], types[4], types[5], types[6], types[7]};
	Datum v[9] = {Int64GetDatum(id), ObjectIdGetDatum(seq), values[0], values[2], values[3],
				  values[4], values[5], values[6], values[7]};
	char n[10] = "         ";
	if (nulls != NULL)
		for (int i = 2; i < 8; i++)
			n[i + 1] = nulls[i];
	/* ON CONFLICT: a concurrent ml_train / ml_import of the same new name that committed since the
	   caller's check waits here and inserts nothing; the caller raises duplicate_object */
	if (SPI_execute_with_args("INSERT INTO ml.models (id, seq, name, task, algorithm, target, relation, features, classes) "
							  "VALUES ($1, $2::pg_catalog.regclass, $3, $4, $5, $6, $7, $8, $9) "
							  "ON CONFLICT (name) DO NOTHING",
							  9, t, v, n, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "pg_ml: could not save the model");
	return SPI_processed == 1 ? id : 0;
}

void
pgml_insert_version(const PgmlVersionRow *r)
{
	Oid types[28] = {INT8OID,  INT4OID,  INT4OID,  TEXTOID,	  TEXTOID,	 TEXTOID,	JSONBOID, JSONBOID, JSONBOID,
					 JSONBOID, JSONBOID, JSONBOID, INT8OID,	  INT8OID,	 FLOAT8OID, INT8OID,	TEXTOID,  BYTEAOID,
					 INT2OID,  INT4OID,	 INT8OID,  REGROLEOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, JSONBOID, JSONBOID,
					 JSONBOID};
	Datum values[28] = {Int64GetDatum(r->model_id),
						Int32GetDatum(r->version),
						Int32GetDatum(r->parent),
						CStringGetTextDatum(r->algorithm),
						CStringGetTextDatum(r->mode),
						CStringGetTextDatum(r->relation),
						r->hyperparams,
						r->preprocess,
						r->preprocessing_state,
						r->metrics,
						r->report,
						r->coefficients,
						Int64GetDatum(r->rows_train),
						Int64GetDatum(r->rows_test),
						Float8GetDatum(r->test_size),
						Int64GetDatum(static_cast<int64>(r->seed)),
						CStringGetTextDatum(r->fingerprint),
						PointerGetDatum(r->blob),
						Int16GetDatum(static_cast<int16>(r->format)),
						Int32GetDatum(r->blob_length),
						Int64GetDatum(static_cast<int64>(r->checksum)),
						ObjectIdGetDatum(r->trained_by),
						Float8GetDatum(r->read_ms),
						Float8GetDatum(r->fit_ms),
						Float8GetDatum(r->duration_ms),
						r->sources != 0 ? r->sources : pgml_jsonb_from_cstring("[]"),
						r->classes,
						r->profile};
	char nulls[29] = "                            ";
	if (r->parent == 0)
		nulls[2] = 'n';
	if (r->classes == 0)
		nulls[26] = 'n';
	if (r->profile == 0)
		nulls[27] = 'n';
	int rc = SPI_execute_with_args(
		"INSERT INTO ml.versions (model_id, version, parent_version, algorithm, mode, relation, hyperparams, "
		"preprocess, preprocessing_state, metrics, report, coefficients, rows_train, rows_test, test_size, seed, "
		"data_fingerprint, blob, format_version, model_kind, blob_length, checksum, trained_by, read_ms, fit_ms, "
		"duration_ms, sources, classes, profile) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $4, $20, "
		"$21, $22, $23, $24, $25, $26, $27, $28)",
		28, types, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "pg_ml: could not save the version: %s", SPI_result_code_string(rc));
}
