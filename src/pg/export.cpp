// pg_ml glue: ml_export and ml_import (moving a model version between databases).
//
// The envelope format is the core's (src/core/export.hpp, docs/export-format.md); the glue
// reads the catalog rows it carries, and on import writes a new model from a decoded and
// fully validated envelope.
// the core first (its headers pull in the C++ standard library; see pg_ml.hpp)
#include "../core/deploy_metric.hpp"
#include "../core/export.hpp"

#include <cstring>

#include "pg_ml.hpp"
#include "grouped.hpp"
#include "deploy_metric.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(pgml_export);
PG_FUNCTION_INFO_V1(pgml_import);
}

namespace {

// Everything C++ one call holds; freed by its memory context (also on error).
struct ExportState {
	pgml::ExportRecord rec;
	std::unique_ptr<pgml::Model> model;
	pgml::ModelDescription desc;
	std::vector<uint8_t> bytes;
	std::string provenance;
	std::vector<std::string> texts;  // the model's texts, for the encoding conversion
	std::vector<const char *> whats; // what each is ("column name", ...)
	std::vector<uint8_t> blob;       // the model re-serialized (converted, or bound to its new row)
};

// The envelope's text is UTF-8: converted from and to the database encoding (a no-op in a
// UTF-8 database; an error for a character the database encoding cannot hold).
char *
to_utf8(const char *s)
{
	return pg_server_to_any(s, static_cast<int>(strlen(s)), PG_UTF8);
}

char *
from_utf8(const std::string &s)
{
	return pg_any_to_server(s.c_str(), static_cast<int>(s.size()), PG_UTF8);
}

// s (UTF-8) in ASCII for a message: other characters as \uXXXX or \UXXXXXXXX escapes.
char *
ascii_escaped(const char *s, int len)
{
	StringInfoData out;
	initStringInfo(&out);
	const unsigned char *p = reinterpret_cast<const unsigned char *>(s);
	int i = 0;
	while (i < len) {
		unsigned char c = p[i];
		if (c < 0x80) {
			appendStringInfoChar(&out, static_cast<char>(c));
			i++;
			continue;
		}
		int n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
		if (i + n > len)
			n = 1;
		uint32 cp = n == 1 ? c : c & (0xFF >> (n + 1));
		for (int k = 1; k < n; k++)
			cp = (cp << 6) | (p[i + k] & 0x3F);
		appendStringInfo(&out, cp > 0xFFFF ? "\\U%08X" : "\\u%04X", cp);
		i += n;
	}
	return out.data;
}

// A text of an imported model (UTF-8) in the database encoding; 22P05 naming it when the
// database encoding cannot hold one of its characters.
char *
import_text(const char *s, int len, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;
	char *volatile out = NULL;
	PG_TRY();
	{
		out = pg_any_to_server(s, len, PG_UTF8);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		ErrorData *e = CopyErrorData();
		if (e->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR, (errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
						errmsg("%s \"%s\" of the imported model cannot be represented in database encoding %s", what,
							   ascii_escaped(s, len), GetDatabaseEncodingName()),
						errdetail_internal("%s", e->message),
						errhint("Import into a UTF8 database, or rename it in the source database, retrain and export "
								"again.")));
	}
	PG_END_TRY();
	return out;
}

// Converts every text the model holds (column and type names, class labels, levels) from the
// database encoding to UTF-8 (export) or back (import); nothing to do in a UTF-8 database.
void
recode_model(ExportState *st, bool export_utf8)
{
	if (GetDatabaseEncoding() == PG_UTF8)
		return;
	PGML_CORE({
		st->texts.clear();
		st->whats.clear();
		st->model->map_text([st](const char *what, std::string &t) {
			st->texts.push_back(t);
			st->whats.push_back(what);
		});
	});
	size_t n = st->texts.size();
	char **conv = static_cast<char **>(palloc(sizeof(char *) * (n + 1)));
	for (size_t i = 0; i < n; i++) {
		const char *t = st->texts[i].c_str();
		int len = static_cast<int>(st->texts[i].size());
		conv[i] = export_utf8 ? pg_server_to_any(t, len, PG_UTF8) : import_text(t, len, st->whats[i]);
	}
	PGML_CORE({
		size_t i = 0;
		st->model->map_text([&](const char *, std::string &t) { t = conv[i++]; });
	});
}

// A column of the current SPI row as UTF-8 text in the caller's context ("" for NULL).
char *
spi_text(MemoryContext cxt, int col)
{
	char *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	char *out = pstrdup(to_utf8(v ? v : ""));
	MemoryContextSwitchTo(old);
	return out;
}

double
spi_float8(int col)
{
	bool isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
	return isnull ? 0 : DatumGetFloat8(d);
}

int64
spi_int8(int col)
{
	bool isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

// jsonb from untrusted JSON text that must be an object; errors name the field. Text jsonb
// refuses (invalid JSON, a \u0000 escape, ...) is invalid export data too (22P03).
Datum
jsonb_object_from(const char *json, const char *field)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile Datum d = (Datum) 0;
	PG_TRY();
	{
		d = pgml_jsonb_from_cstring(json);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		ErrorData *e = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(e->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), errmsg("invalid pg_ml export data"),
						errdetail("The field \"%s\" is not valid JSON: %s", field, e->message)));
	}
	PG_END_TRY();
	Jsonb *jb = DatumGetJsonbP(d);
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), errmsg("invalid pg_ml export data"),
						errdetail("The field \"%s\" is not a JSON object.", field)));
	return d;
}

} // namespace

/*
 * ml_export(model, version DEFAULT NULL) -> bytea: one version (default: the deployed one)
 * with its model row and version row metadata, in the envelope format. Same access as
 * prediction: the owner or a grantee.
 */
Datum
pgml_export(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model must not be NULL")));
	Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), argtype == INT8OID ? INT8OID : TEXTOID, PGML_USE, false, &ref);
	int32 version = PG_ARGISNULL(1) ? ref.deployed_version : PG_GETARG_INT32(1);
	if (version == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("model \"%s\" has no deployed version", ref.name),
						errhint("Pass the version to export; ml_versions lists them.")));
	char *exported_by = to_utf8(GetUserNameFromId(GetUserId(), false));
	char *model_name = to_utf8(ref.name);

	MemoryContext caller = CurrentMemoryContext;
	Oid save_user;
	int save_sec;
	Oid types[2] = {INT8OID, INT4OID};
	Datum args[2] = {Int64GetDatum(ref.id), Int32GetDatum(version)};
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	int rc = SPI_execute_with_args(
		"SELECT v.blob, m.target, m.relation, v.metrics::pg_catalog.text, v.report::pg_catalog.text, v.rows_train, "
		"v.rows_test, v.data_fingerprint, v.trained_by::pg_catalog.text, "
		"pg_catalog.to_json(v.trained_at) OPERATOR(pg_catalog.#>>) '{}', v.read_ms, v.fit_ms, v.duration_ms, "
		"pg_catalog.current_database(), pg_catalog.to_json(pg_catalog.now()) OPERATOR(pg_catalog.#>>) '{}', "
		"(SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'pg_ml'), "
		"v.model_kind FROM ml.versions v JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) v.model_id "
		"WHERE v.model_id OPERATOR(pg_catalog.=) $1 AND v.version OPERATOR(pg_catalog.=) $2",
		2, types, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: version lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1) {
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
		if (PG_ARGISNULL(1))
			pgml_missing_deployed(&ref);
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("version %d of model \"%s\" does not exist", version, ref.name),
						errhint("ml_versions lists the versions of a model.")));
	}
	bool isnull;
	MemoryContext old = MemoryContextSwitchTo(caller);
	bytea *blob = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	MemoryContextSwitchTo(old);
	char *target = spi_text(caller, 2);
	char *relation = spi_text(caller, 3);
	char *metrics = spi_text(caller, 4);
	char *report = spi_text(caller, 5);
	int64 rows_train = spi_int8(6);
	int64 rows_test = spi_int8(7);
	char *fingerprint = spi_text(caller, 8);
	char *trained_by = spi_text(caller, 9);
	char *trained_at = spi_text(caller, 10);
	double read_ms = spi_float8(11), fit_ms = spi_float8(12), duration_ms = spi_float8(13);
	char *database = spi_text(caller, 14);
	char *exported_at = spi_text(caller, 15);
	char *extversion = spi_text(caller, 16);
	char *kind = spi_text(caller, 17);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);

	/* the blob is checked like any other before it leaves */
	ExportState *st = pgml_new_owned<ExportState>();
	const uint8_t *blob_data = reinterpret_cast<const uint8_t *>(VARDATA_ANY(blob));
	size_t blob_len = VARSIZE_ANY_EXHDR(blob);
	{
		pgml::Model *loaded = pgml_deserialize(blob, NULL, &ref, version, kind);
		PGML_CORE(st->model.reset(loaded));
	}
	pgml_refuse_grouped(st->model.get(), "ml_export", ref.name,
						"Export the training rows instead and train with group_by in the other database.");
	/* the envelope's text is UTF-8, the model's texts included (then the blob is written again) */
	if (GetDatabaseEncoding() != PG_UTF8) {
		recode_model(st, true);
		PGML_CORE(st->blob = st->model->serialize());
		blob_data = st->blob.data();
		blob_len = st->blob.size();
	}
	const pgml::Model *model = st->model.get();
	PGML_CORE({
		pgml::ExportRecord &r = st->rec;
		pgml::ModelDescription d = pgml::describe_model(*model);
		r.pg_ml_version = extversion;
		r.source_database = database;
		r.exported_at = exported_at;
		r.exported_by = exported_by;
		r.model_name = model_name;
		r.model_id = ref.id;
		r.version = version;
		r.task = pgml::task_name(model->task);
		r.algorithm = pgml::algorithm_name(model->algorithm);
		r.has_target = model->has_target();
		r.target = r.has_target ? target : "";
		r.relation = relation;
		r.features_json = d.features_json;
		r.classes_json = d.classes_json;
		r.hyperparams_json = d.hyperparams_json;
		r.preprocess_json = d.preprocess_json;
		r.preprocessing_state_json = d.state_json;
		r.metrics_json = metrics;
		r.report_json = report;
		r.coefficients_json = d.coefficients_json;
		r.rows_train = rows_train;
		r.rows_test = rows_test;
		r.test_size = model->test_size;
		r.seed = static_cast<int64_t>(model->seed);
		r.data_fingerprint = fingerprint;
		r.trained_by = trained_by;
		r.trained_at = trained_at;
		r.read_ms = read_ms;
		r.fit_ms = fit_ms;
		r.duration_ms = duration_ms;
		r.blob.assign(blob_data, blob_data + blob_len);
		st->bytes = pgml::encode_export(r);
	});
	bytea *result = static_cast<bytea *>(palloc(VARHDRSZ + st->bytes.size()));
	SET_VARSIZE(result, VARHDRSZ + st->bytes.size());
	memcpy(VARDATA(result), st->bytes.data(), st->bytes.size());
	PG_RETURN_BYTEA_P(result);
}

/*
 * ml_import(name, data) -> (model_id, model, version): a new model owned by the caller from
 * ml_export's bytes, its version 1 deployed. The data is untrusted: the core checks the
 * envelope, deserializes the model and checks the metadata describes it before anything is
 * written. The version's report records where it came from.
 */
Datum
pgml_import(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("name and data must not be NULL")));
	TupleDesc result_desc;
	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pg_ml: ml_import must return a record");
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bytea *data = PG_GETARG_BYTEA_PP(1);
	if (strlen(name) == 0 || strlen(name) > 200)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("model name must be 1 to 200 characters long")));

	/* decode and validate everything first */
	const uint8_t *bytes = reinterpret_cast<const uint8_t *>(VARDATA_ANY(data));
	size_t len = VARSIZE_ANY_EXHDR(data);
	ExportState *st = pgml_new_owned<ExportState>();
	PGML_CORE({
		st->rec = pgml::decode_export(bytes, len, &st->model);
		uint32_t checksum;
		std::memcpy(&checksum, bytes + 12, 4); // decode_export checked the header is there
		st->provenance = pgml::import_provenance_json(st->rec, len, checksum);
	});
	/* the model's texts are UTF-8: in the database encoding from here on (22P05 if impossible) */
	recode_model(st, false);
	PGML_CORE(st->desc = pgml::describe_model(*st->model));
	const pgml::ExportRecord *rec = &st->rec;
	const pgml::Model *model = st->model.get();
	const pgml::ModelDescription *desc = &st->desc;
	/* JSON that comes from the data itself must be objects */
	Datum metrics = jsonb_object_from(from_utf8(rec->metrics_json), "metrics");
	char *original = from_utf8(rec->report_json);
	(void) jsonb_object_from(original, "report");
	char *relation = from_utf8(rec->relation);
	char *fingerprint = from_utf8(rec->data_fingerprint);
	/* the version's report: the import's provenance and the exported report */
	Datum report =
		pgml_jsonb_from_cstring(psprintf("{\"imported\": %s, \"original\": %s}", from_utf8(st->provenance), original));

	Oid caller = GetUserId();
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	{
		Oid t = TEXTOID;
		Datum v = CStringGetTextDatum(name);
		SPI_execute_with_args("SELECT 1 FROM ml.models WHERE name OPERATOR(pg_catalog.=) $1", 1, &t, &v, NULL, false, 1);
		if (SPI_processed > 0) {
			SPI_finish();
			pgml_catalog_end(save_user, save_sec);
			ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("model \"%s\" already exists", name),
							errhint("Import under another name, or drop the existing model with ml_drop_model().")));
		}
	}
	Oid mt[8] = {TEXTOID, REGROLEOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID};
	Datum mv[8] = {CStringGetTextDatum(name),
				   ObjectIdGetDatum(caller),
				   CStringGetTextDatum(pgml::task_name(model->task)),
				   CStringGetTextDatum(pgml::algorithm_name(model->algorithm)),
				   model->has_target() ? CStringGetTextDatum(model->target.name.c_str()) : (Datum) 0,
				   CStringGetTextDatum(relation),
				   pgml_jsonb_from_cstring(desc->features_json.c_str()),
				   desc->classes_json.empty() ? (Datum) 0 : pgml_jsonb_from_cstring(desc->classes_json.c_str())};
	char mnulls[9] = "        ";
	if (!model->has_target())
		mnulls[4] = 'n';
	if (desc->classes_json.empty())
		mnulls[7] = 'n';
	int64 model_id = pgml_insert_model(mt, mv, mnulls); /* and its sequence, owned by the caller */
	if (model_id == 0) { /* a concurrent import or training of the same name */
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("model \"%s\" already exists", name),
						errhint("Import under another name, or drop the existing model with ml_drop_model().")));
	}
	{
		/* the imported model's deploy metric: its task's default (ml_set_deploy_metric changes it) */
		char dm[64];
		PGML_CORE(snprintf(dm, sizeof dm, "%s", pgml::default_deploy_metric(model->task, model->n_classes()).c_str()));
		pgml_store_deploy_metric(model_id, dm);
	}

	/* the blob, bound to its new row (model id, version 1) */
	uint16 blob_format;
	uint32 blob_checksum;
	bytea *blob = pgml_serialize_bound(st->model.get(), model_id, 1, &st->blob, &blob_format, &blob_checksum);
	PgmlVersionRow row;
	row.model_id = model_id;
	row.version = 1;
	row.algorithm = pgml::algorithm_name(model->algorithm);
	row.mode = "import";
	row.relation = relation;
	row.hyperparams = pgml_jsonb_from_cstring(desc->hyperparams_json.c_str());
	row.preprocess = pgml_jsonb_from_cstring(desc->preprocess_json.c_str());
	row.preprocessing_state = pgml_jsonb_from_cstring(desc->state_json.c_str());
	row.metrics = metrics;
	row.report = report;
	row.coefficients = pgml_jsonb_from_cstring(desc->coefficients_json.c_str());
	row.rows_train = rec->rows_train;
	row.rows_test = rec->rows_test;
	row.test_size = model->test_size;
	row.seed = model->seed;
	row.fingerprint = fingerprint;
	row.blob = blob;
	row.format = blob_format;
	row.blob_length = static_cast<int32>(st->blob.size());
	row.checksum = blob_checksum;
	row.trained_by = caller;
	row.read_ms = rec->read_ms;
	row.fit_ms = rec->fit_ms;
	row.duration_ms = rec->duration_ms;
	/* the classes, in the blob's order (ml_models.classes) */
	row.classes = desc->classes_json.empty() ? (Datum) 0 : pgml_jsonb_from_cstring(desc->classes_json.c_str());
	pgml_insert_version(&row);
	pgml_record_deploy(model_id, 1, "imported", caller);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);

	Datum values[3] = {Int64GetDatum(model_id), CStringGetTextDatum(name), Int32GetDatum(1)};
	bool nulls[3] = {false, false, false};
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), values, nulls)));
}
