// pg_ml glue: ml_train and ml_retrain.
#include "pg_ml.hpp"

#include <cmath>
#include <string>

#include "options.hpp"
#include "progress.hpp"

extern "C" {
#include "access/relation.h"
#include "access/table.h"
#include "portability/instr_time.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(pgml_train);
PG_FUNCTION_INFO_V1(pgml_retrain);
}

namespace {

// Everything C++ a training call holds; allocated with new, freed by its memory context.
struct TrainState {
	pgml::TrainSpec spec;
	std::unique_ptr<pgml::Trainer> trainer;
	std::unique_ptr<pgml::Model> model;
	std::vector<uint8_t> blob;
	std::string hyperparams_json, preprocess_json, state_json, features_json, classes_json, coef_json;
};

void
train_consume(void *arg, const pgml::Batch *batch)
{
	TrainState *st = static_cast<TrainState *>(arg);
	PGML_CORE(st->trainer->add_batch(*batch, pgml_interrupt_pending));
	pgml_progress_rows(batch->nrows); /* progress */
}

double
elapsed_ms(instr_time start)
{
	instr_time now;
	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

void
check_test_size(double test_size)
{
	if (!(test_size >= 0 && test_size < 1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("test_size must be at least 0 and less than 1"), errdetail("test_size was %g.", test_size),
						errhint("Use 0 to train on every row, or a fraction such as 0.2.")));
}

// A ColumnInfo for the core from a glue column.
pgml::ColumnInfo
column_info(const PgmlColumn *c)
{
	pgml::ColumnInfo ci;
	ci.name = c->name;
	ci.type_class = c->tc;
	ci.type_name = pgml_type_name(c->type); // (format_type_be does not raise for a valid type)
	return ci;
}

// The finished training run: model serialized, JSON texts prepared (inside the core).
void
finish_training(TrainState *st, const pgml::Model *compare)
{
	PGML_CORE({
		st->model = st->trainer->finish(pgml_interrupt_pending, compare);
		const pgml::Model &m = *st->model;
		st->hyperparams_json = m.hyperparams.to_json();
		st->preprocess_json = m.preprocess.to_json();
		st->state_json = m.prep.to_json();
		st->coef_json = m.coefficients_json();
		pgml::JsonWriter f;
		f.begin_array();
		for (const auto &c : m.features) {
			f.begin_object();
			f.key("name").value(c.name);
			f.key("type").value(c.type_name);
			f.key("class").value(pgml::type_class_name(c.type_class));
			f.end_object();
		}
		f.end_array();
		st->features_json = f.str();
		if (m.task == pgml::Task::Classification) {
			pgml::JsonWriter c;
			c.begin_array();
			for (const auto &k : m.classes)
				c.value(k);
			c.end_array();
			st->classes_json = c.str();
		}
	});
}

// Streams the relation into the trainer, then fits (comparing with `compare` if given).
// Times in ms since start: reading, and reading plus fitting.
void
run_training(TrainState *st, Oid relid, const char *relname, const PgmlColumn *features, int nfeatures,
			 const PgmlColumn *target, const pgml::Model *compare, instr_time start, double *read_ms,
			 double *total_ms)
{
	bool aggregate = false;
	PGML_CORE(aggregate = pgml_stats_aggregate && st->trainer->uses_stats_aggregate());
	Oid agg_schema = aggregate ? pgml_stats_aggregate_schema() : InvalidOid;
	aggregate = OidIsValid(agg_schema) && pgml_kmeans_steps_available(st->trainer.get(), agg_schema);
	int64 rows = -1;
	if (aggregate) {
		rows = pgml_aggregate_relation(st->trainer.get(), agg_schema, relid, features, nfeatures, target);
	} else {
		/* naive Bayes: statistics grouped by class and split, then an evaluating aggregate */
		bool class_agg = false;
		PGML_CORE(class_agg = pgml_stats_aggregate && st->trainer->uses_class_aggregate());
		Oid class_schema = class_agg ? pgml_class_aggregate_schema() : InvalidOid;
		if (OidIsValid(class_schema))
			rows = pgml_class_aggregate_relation(st->trainer.get(), class_schema, relid, features, nfeatures, target,
												 st->spec.test_size, compare);
	}
	if (rows < 0) {
		/* in-memory algorithms size their row store once */
		double expected = static_cast<double>(pgml_relation_row_estimate(relid));
		PGML_CORE(st->trainer->expect_rows(expected));
		rows = pgml_scan_relation(relid, features, nfeatures, target, train_consume, st);
	}
	if (rows == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("relation \"%s\" has no rows", relname),
						errhint("Train on a relation with labelled rows.")));
	*read_ms = elapsed_ms(start);
	pgml_progress_phase("fitting"); /* progress */
	if (aggregate)
		pgml_kmeans_steps(st->trainer.get(), agg_schema, relid, features, nfeatures); /* k-means: Lloyd steps */
	finish_training(st, compare);
	*total_ms = elapsed_ms(start);
}

int32
next_version(int64 model_id)
{
	Oid t = INT8OID;
	Datum v = Int64GetDatum(model_id);
	if (SPI_execute_with_args("SELECT COALESCE(pg_catalog.max(version), 0) OPERATOR(pg_catalog.+) 1 "
							  "FROM ml.versions WHERE model_id OPERATOR(pg_catalog.=) $1",
							  1, &t, &v, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not number the new version");
	bool isnull;
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

// Inserts a version row and its training log. Runs inside catalog access with SPI connected.
void
insert_version(TrainState *st, int64 model_id, int32 version, int32 parent, const char *mode, const char *relation,
			   Oid trained_by, double read_ms, double fit_ms, double total_ms)
{
	const pgml::TrainResult &res = st->trainer->result();
	const pgml::Model &m = *st->model;
	/* the blob is bound to the row it goes into */
	uint16 format;
	uint32 checksum;
	bytea *blob = pgml_serialize_bound(st->model.get(), model_id, version, &st->blob, &format, &checksum);

	Oid types[27] = {INT8OID, INT4OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, JSONBOID,
					 JSONBOID, JSONBOID, JSONBOID, INT8OID, INT8OID, FLOAT8OID, INT8OID, TEXTOID, BYTEAOID, INT2OID,
					 TEXTOID, INT4OID, INT8OID, REGROLEOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, JSONBOID};
	Datum values[27] = {Int64GetDatum(model_id),
						Int32GetDatum(version),
						Int32GetDatum(parent),
						CStringGetTextDatum(pgml::algorithm_name(m.algorithm)),
						CStringGetTextDatum(mode),
						CStringGetTextDatum(relation),
						pgml_jsonb_from_cstring(st->hyperparams_json.c_str()),
						pgml_jsonb_from_cstring(st->preprocess_json.c_str()),
						pgml_jsonb_from_cstring(st->state_json.c_str()),
						pgml_jsonb_from_cstring(res.metrics_json.c_str()),
						pgml_jsonb_from_cstring(res.report_json.c_str()),
						pgml_jsonb_from_cstring(st->coef_json.c_str()),
						Int64GetDatum(res.rows_train),
						Int64GetDatum(res.rows_test),
						Float8GetDatum(m.test_size),
						Int64GetDatum(static_cast<int64>(m.seed)),
						CStringGetTextDatum(res.fingerprint.c_str()),
						PointerGetDatum(blob),
						Int16GetDatum(static_cast<int16>(format)),
						CStringGetTextDatum(pgml::algorithm_name(m.algorithm)),
						Int32GetDatum(static_cast<int32>(st->blob.size())),
						Int64GetDatum(static_cast<int64>(checksum)),
						ObjectIdGetDatum(trained_by),
						Float8GetDatum(read_ms),
						Float8GetDatum(fit_ms),
						Float8GetDatum(total_ms),
						/* the classes, in the blob's order (ml_models.classes of a deployed version) */
						st->classes_json.empty() ? (Datum) 0 : pgml_jsonb_from_cstring(st->classes_json.c_str())};
	char nulls[28] = "                           ";
	if (parent == 0)
		nulls[2] = 'n';
	if (st->classes_json.empty())
		nulls[26] = 'n';
	int rc = SPI_execute_with_args(
		"INSERT INTO ml.versions (model_id, version, parent_version, algorithm, mode, relation, hyperparams, "
		"preprocess, preprocessing_state, metrics, report, coefficients, rows_train, rows_test, test_size, seed, data_fingerprint, "
		"blob, format_version, model_kind, blob_length, checksum, trained_by, read_ms, fit_ms, duration_ms, classes) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, "
		"$22, $23, $24, $25, $26, $27)",
		27, types, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "pg_ml: could not save the version: %s", SPI_result_code_string(rc));

	size_t nlog = res.log.size();
	if (nlog > 0) {
		Datum *it = static_cast<Datum *>(palloc(sizeof(Datum) * nlog));
		Datum *loss = static_cast<Datum *>(palloc(sizeof(Datum) * nlog));
		Datum *grad = static_cast<Datum *>(palloc(sizeof(Datum) * nlog));
		Datum *valid = static_cast<Datum *>(palloc(sizeof(Datum) * nlog));
		for (size_t i = 0; i < nlog; i++) {
			it[i] = Int32GetDatum(res.log[i].iteration);
			loss[i] = Float8GetDatum(res.log[i].loss);
			grad[i] = Float8GetDatum(res.log[i].grad_norm);
			valid[i] = Float8GetDatum(res.log[i].valid);
		}
		Oid lt[6] = {INT8OID, INT4OID, INT4ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID};
		Datum lv[6] = {Int64GetDatum(model_id), Int32GetDatum(version),
					   PointerGetDatum(construct_array(it, nlog, INT4OID, 4, true, TYPALIGN_INT)),
					   PointerGetDatum(construct_array(loss, nlog, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
					   PointerGetDatum(construct_array(grad, nlog, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
					   PointerGetDatum(construct_array(valid, nlog, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};
		/* NaN (not measured) is stored as NULL */
		rc = SPI_execute_with_args(
			"INSERT INTO ml.training_log (model_id, version, iteration, loss, grad_norm, valid_metric) "
			"SELECT $1, $2, u.i, CASE WHEN u.l OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float8 THEN NULL ELSE u.l END, "
			"CASE WHEN u.g OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float8 THEN NULL ELSE u.g END, "
			"CASE WHEN u.v OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float8 THEN NULL ELSE u.v END "
			"FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6)) "
			"AS u(i, l, g, v)",
			6, lt, lv, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "pg_ml: could not save the training log: %s", SPI_result_code_string(rc));
	}
}

void
apply_column_problems(StringInfo detail, bool *missing, const char *name, const pgml::ColumnInfo &want,
					  const PgmlColumn *have, bool found)
{
	if (!found) {
		appendStringInfo(detail, "%sColumn \"%s\" is missing (the model expects %s).", detail->len ? " " : "", name,
						 want.type_name.c_str());
		*missing = true;
		return;
	}
	bool supported = static_cast<int>(have->tc) <= 3;
	if (!supported || have->tc != want.type_class)
		appendStringInfo(detail, "%sColumn \"%s\" has type %s; the model expects %s.", detail->len ? " " : "", name,
						 pgml_type_name(have->type), want.type_name.c_str());
}

bool
parse_task(const char *name, pgml::Task *out)
{
	for (pgml::Task t : {pgml::Task::Regression, pgml::Task::Classification, pgml::Task::Clustering})
		if (strcmp(name, pgml::task_name(t)) == 0) {
			*out = t;
			return true;
		}
	return false;
}

// Task detection from the target: text and boolean -> classification; floating point and
// temporal -> regression; integer / numeric -> classification when at most 10 distinct whole values.
pgml::Task
detect_task(const PgmlColumn *target, const char *target_name, const char *rel_sql, const char **why)
{
	if (target->tc == pgml::TypeClass::Categorical || target->tc == pgml::TypeClass::Boolean) {
		*why = "the target is text or boolean";
		return pgml::Task::Classification;
	}
	if (target->tc == pgml::TypeClass::Temporal || target->basetype == FLOAT4OID || target->basetype == FLOAT8OID) {
		*why = "the target is a floating-point or temporal column";
		return pgml::Task::Regression;
	}
	StringInfoData q;
	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT pg_catalog.count(*), pg_catalog.bool_and(v::pg_catalog.numeric OPERATOR(pg_catalog.=) "
					 "pg_catalog.trunc(v::pg_catalog.numeric)) FROM (SELECT DISTINCT %s AS v FROM %s WHERE %s IS NOT NULL "
					 "LIMIT 11) s",
					 quote_identifier(target_name), rel_sql, quote_identifier(target_name));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	if (SPI_execute(q.data, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: task detection failed");
	bool n1, n2;
	int64 distinct = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n1));
	Datum integral = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n2);
	bool classify = distinct <= 10 && !n2 && DatumGetBool(integral);
	SPI_finish();
	*why = classify ? "the target has at most 10 distinct integer values"
					: "the target is numeric with more than 10 distinct values";
	return classify ? pgml::Task::Classification : pgml::Task::Regression;
}

} // namespace

void
pgml_match_columns(TupleDesc desc, const pgml::Model *model, const char *relname, const char *model_name,
				   PgmlColumn *features, PgmlColumn *target, bool notice_extra)
{
	int nfeatures = static_cast<int>(model->features.size());
	StringInfoData problems;
	initStringInfo(&problems);
	bool missing = false;
	for (int i = 0; i < nfeatures + (model->has_target() ? 1 : 0); i++) {
		const pgml::ColumnInfo &want = i < nfeatures ? model->features[i] : model->target;
		PgmlColumn *col = i < nfeatures ? &features[i] : target;
		bool found = pgml_find_column(desc, want.name.c_str(), col);
		apply_column_problems(&problems, &missing, want.name.c_str(), want, col, found);
	}
	if (problems.len > 0)
		ereport(ERROR, (errcode(missing ? ERRCODE_UNDEFINED_COLUMN : ERRCODE_DATATYPE_MISMATCH),
						errmsg("relation \"%s\" does not match model \"%s\"", relname, model_name),
						errdetail_internal("%s", problems.data),
						errhint("Use a relation (or a view) with the model's columns and types.")));
	if (!notice_extra)
		return;
	StringInfoData extra;
	initStringInfo(&extra);
	for (int a = 0; a < desc->natts; a++) {
		Form_pg_attribute att = TupleDescAttr(desc, a);
		if (att->attisdropped)
			continue;
		bool used = model->has_target() && strcmp(NameStr(att->attname), model->target.name.c_str()) == 0;
		for (int i = 0; i < nfeatures && !used; i++)
			used = strcmp(NameStr(att->attname), model->features[i].name.c_str()) == 0;
		if (!used)
			appendStringInfo(&extra, "%s%s", extra.len ? ", " : "", quote_identifier(NameStr(att->attname)));
	}
	if (extra.len > 0)
		ereport(NOTICE, (errmsg("ignoring columns the model does not use: %s", extra.data)));
}

/* Deploys `version`: sets it on the model and records the deployment. SPI connected, catalog identity. */
void
pgml_record_deploy(int64 model_id, int32 version, const char *reason, Oid by)
{
	Oid t[4] = {INT8OID, INT4OID, TEXTOID, REGROLEOID};
	Datum v[4] = {Int64GetDatum(model_id), Int32GetDatum(version), CStringGetTextDatum(reason), ObjectIdGetDatum(by)};
	if (SPI_execute_with_args("UPDATE ml.models SET deployed_version = $2, updated_at = pg_catalog.now() "
							  "WHERE id OPERATOR(pg_catalog.=) $1",
							  2, t, v, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_ml: could not deploy");
	if (SPI_execute_with_args("INSERT INTO ml.deployments (model_id, version, reason, deployed_by) VALUES ($1, $2, $3, $4)",
							  4, t, v, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "pg_ml: could not record the deployment");
}

/*
 * ml_train(relation, target, algorithm, task, name, features, exclude, hyperparams,
 *          preprocess, test_size, seed) -> (model_id, model, version, task, algorithm,
 *          metrics, rows_train, rows_test, deployed)
 */
Datum
pgml_train(PG_FUNCTION_ARGS)
{
	instr_time t_start;
	INSTR_TIME_SET_CURRENT(t_start);
	for (int i : {0, 2, 3, 7, 8, 9, 10})
		if (PG_ARGISNULL(i))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("argument %s of ml_train must not be NULL",
								   i == 0 ? "relation" : i == 2 ? "algorithm" : i == 3 ? "task" : i == 7 ? "hyperparams"
																	  : i == 8   ? "preprocess"
																	  : i == 9   ? "test_size"
																				 : "seed")));
	/* a NULL target means clustering */
	bool has_target = !PG_ARGISNULL(1);
	char *relname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char *target_name = has_target ? text_to_cstring(PG_GETARG_TEXT_PP(1)) : pstrdup("");
	char *algo_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char *task_name = text_to_cstring(PG_GETARG_TEXT_PP(3));
	double test_size = PG_GETARG_FLOAT8(9);
	int32 seed = PG_GETARG_INT32(10);
	check_test_size(test_size);

	TupleDesc result_desc;
	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pg_ml: ml_train must return a record");

	/* the relation and its columns */
	Oid relid = pgml_relation_oid(relname);
	Relation rel = relation_open(relid, AccessShareLock);
	TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(rel));
	char *rel_short = pstrdup(RelationGetRelationName(rel));
	relation_close(rel, NoLock);
	char *rel_sql = pgml_relation_sql_name(relid);

	PgmlColumn target;
	memset(&target, 0, sizeof(target));
	if (has_target && !pgml_find_column(desc, target_name, &target))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("column \"%s\" of relation \"%s\" does not exist", target_name, relname),
						errhint("The second argument of ml_train names the column to predict (NULL for clustering).")));
	if (has_target && static_cast<int>(target.tc) > 3)
		pgml_unsupported_column(relname, &target);

	PgmlColumn *features = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * (desc->natts + 1)));
	int nfeatures = 0;
	if (!PG_ARGISNULL(5)) {
		Datum *names;
		bool *nulls;
		int n;
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(5), TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
		for (int i = 0; i < n; i++) {
			if (nulls[i])
				ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("features must not contain NULL")));
			char *f = TextDatumGetCString(names[i]);
			if (strcmp(f, target_name) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("target column \"%s\" cannot also be a feature", f)));
			for (int j = 0; j < nfeatures; j++)
				if (strcmp(features[j].name, f) == 0)
					ereport(ERROR, (errcode(ERRCODE_DUPLICATE_COLUMN), errmsg("feature \"%s\" is listed twice", f)));
			if (nfeatures >= desc->natts || !pgml_find_column(desc, f, &features[nfeatures]))
				ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
								errmsg("column \"%s\" of relation \"%s\" does not exist", f, relname)));
			nfeatures++;
		}
	} else {
		for (int i = 0; i < desc->natts; i++) {
			Form_pg_attribute att = TupleDescAttr(desc, i);
			if (att->attisdropped || strcmp(NameStr(att->attname), target_name) == 0)
				continue;
			pgml_find_column(desc, NameStr(att->attname), &features[nfeatures++]);
		}
	}
	if (!PG_ARGISNULL(6)) {
		Datum *names;
		bool *nulls;
		int n;
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(6), TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
		for (int i = 0; i < n; i++) {
			if (nulls[i])
				continue;
			char *f = TextDatumGetCString(names[i]);
			PgmlColumn tmp;
			if (!pgml_find_column(desc, f, &tmp))
				ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
								errmsg("excluded column \"%s\" of relation \"%s\" does not exist", f, relname)));
			for (int j = 0; j < nfeatures; j++)
				if (strcmp(features[j].name, f) == 0) {
					memmove(&features[j], &features[j + 1], sizeof(PgmlColumn) * (nfeatures - j - 1));
					nfeatures--;
					break;
				}
		}
	}
	for (int i = 0; i < nfeatures; i++)
		if (static_cast<int>(features[i].tc) > 3)
			pgml_unsupported_column(relname, &features[i]);
	if (nfeatures == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("relation \"%s\" has no feature columns besides the target \"%s\"", relname, target_name)));

	/* task and algorithm */
	pgml::Task task = pgml::Task::Regression;
	const pgml::AlgorithmDef *def = nullptr;
	const char *why = nullptr;
	bool task_auto = strcmp(task_name, "auto") == 0;
	if (!task_auto && !parse_task(task_name, &task))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown task \"%s\"", task_name),
						errhint("Use 'auto', 'regression', 'classification' or 'clustering'.")));
	if (strcmp(algo_name, "auto") != 0) {
		def = pgml::find_algorithm(algo_name);
		if (def == nullptr)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown algorithm \"%s\"", algo_name),
							errhint("Available: 'auto', %s.", pgml::algorithm_list().c_str())));
	}
	if (!has_target) {
		if (!task_auto && task != pgml::Task::Clustering)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s needs a target column", task_name),
							errhint("Name the column to predict as the second argument; NULL means clustering.")));
		task = pgml::Task::Clustering;
		why = "no target was given";
	} else if (!task_auto) {
		if (task == pgml::Task::Clustering)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("clustering takes no target column"),
							errhint("Pass NULL as the target to cluster the rows.")));
		why = "the task was given";
	} else if (def != nullptr && def->regression != def->classification) {
		task = def->regression ? pgml::Task::Regression : pgml::Task::Classification;
		why = "the algorithm does only that";
	} else {
		task = detect_task(&target, target_name, rel_sql, &why);
	}
	if (def != nullptr && !def->supports(task)) {
		StringInfoData does;
		initStringInfo(&does);
		for (pgml::Task t : {pgml::Task::Regression, pgml::Task::Classification, pgml::Task::Clustering})
			if (def->supports(t))
				appendStringInfo(&does, "%s%s", does.len ? " and " : "", pgml::task_name(t));
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("algorithm %s does not do %s", algo_name, pgml::task_name(task)),
						errdetail("%s does %s; the task is %s because %s.", algo_name, does.data, pgml::task_name(task),
								  why),
						errhint("Choose an algorithm for %s, or algorithm => 'auto'.", pgml::task_name(task))));
	}
	char *choice_note = NULL;
	if (def == nullptr) {
		/* by task and size: the planner's estimate of the relation's rows */
		double expected = pgml_estimate_rows(relid, pgml::kAutoLargeRows);
		char reason[512];
		PGML_CORE({
			pgml::AutoChoice c = pgml::auto_algorithm(task, expected);
			snprintf(reason, sizeof reason, "%s", c.reason.c_str());
			def = &pgml::algorithm_def(c.algorithm);
		});
		choice_note = psprintf("The task is %s because %s; %s.", pgml::task_name(task), why, reason);
		ereport(NOTICE, (errmsg("pg_ml chose %s for %s", def->name.c_str(), pgml::task_name(task)),
						 errdetail("%s", choice_note), errhint("Pass algorithm => and task => to choose.")));
	}
	pgml::Algorithm algorithm = def->id;

	/* the model's name */
	char *name = !PG_ARGISNULL(4) ? text_to_cstring(PG_GETARG_TEXT_PP(4))
				 : has_target		? psprintf("%s_%s", rel_short, target_name)
									: psprintf("%s_clusters", rel_short);
	if (strlen(name) == 0 || strlen(name) > 200)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("model name must be 1 to 200 characters long")));
	{
		Oid save_user;
		int save_sec;
		Oid t = TEXTOID;
		Datum v = CStringGetTextDatum(name);
		pgml_catalog_begin(&save_user, &save_sec);
		SPI_connect();
		SPI_execute_with_args("SELECT 1 FROM ml.models WHERE name OPERATOR(pg_catalog.=) $1", 1, &t, &v, NULL, true, 1);
		bool exists = SPI_processed > 0;
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
		if (exists)
			ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("model \"%s\" already exists", name),
							errhint("Use ml_retrain('%s', ...) to train a new version, pass another name => , or drop it "
									"with ml_drop_model().",
									name)));
	}

	PgmlOption *hp, *pp;
	int nhp = pgml_flatten_options(PG_GETARG_JSONB_P(7), "hyperparams", &hp);
	int npp = pgml_flatten_options(PG_GETARG_JSONB_P(8), "preprocess", &pp);

	/* the core: spec, then batches, then the fit */
	TrainState *st = pgml_new_owned<TrainState>();
	pgml::TrainSpec *spec = &st->spec;
	PGML_CORE({
		for (int i = 0; i < nfeatures; i++)
			spec->features.push_back(column_info(&features[i]));
		if (has_target)
			spec->target = column_info(&target);
		spec->algorithm = algorithm;
		spec->task = task;
		spec->threads = pgml_max_threads;
		if (choice_note != NULL)
			spec->algorithm_choice = choice_note;
		pgml_options_to_core(hp, nhp, spec->hyperparams);
		pgml_options_to_core(pp, npp, spec->preprocess);
		spec->test_size = test_size;
		spec->seed = static_cast<uint64_t>(static_cast<int64_t>(seed));
		spec->memory_limit = static_cast<size_t>(pgml_max_memory_mb) << 20;
		spec->progress = pgml_progress_core; /* progress */
		st->trainer = std::make_unique<pgml::Trainer>(*spec);
	});
	pgml_progress_begin("ml_train", name, relid, "reading"); /* progress */
	double read_ms, total_ms;
	run_training(st, relid, relname, features, nfeatures, has_target ? &target : nullptr, nullptr, t_start, &read_ms,
				 &total_ms);
	const pgml::TrainResult &res = st->trainer->result();

	/* the catalog */
	pgml_progress_phase("saving"); /* progress */
	Oid caller = GetUserId();
	int64 model_id;
	{
		Oid save_user;
		int save_sec;
		pgml_catalog_begin(&save_user, &save_sec);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "pg_ml: SPI_connect failed");
		Oid t[8] = {TEXTOID, REGROLEOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID};
		Datum v[8] = {CStringGetTextDatum(name),
					  ObjectIdGetDatum(caller),
					  CStringGetTextDatum(pgml::task_name(st->model->task)),
					  CStringGetTextDatum(pgml::algorithm_name(algorithm)),
					  has_target ? CStringGetTextDatum(target_name) : (Datum) 0,
					  CStringGetTextDatum(rel_sql),
					  pgml_jsonb_from_cstring(st->features_json.c_str()),
					  st->classes_json.empty() ? (Datum) 0 : pgml_jsonb_from_cstring(st->classes_json.c_str())};
		char nulls[9] = "        ";
		if (st->classes_json.empty())
			nulls[7] = 'n';
		if (!has_target)
			nulls[4] = 'n';
		model_id = pgml_insert_model(t, v, nulls); /* and its sequence, owned by the caller */
		if (model_id == 0) {
			/* a concurrent ml_train of the same new name committed since the check above */
			SPI_finish();
			pgml_catalog_end(save_user, save_sec);
			ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("model \"%s\" already exists", name),
							errdetail("Another session created a model of that name while this one was training."),
							errhint("Use ml_retrain('%s', ...) to train a new version, or pass another name =>.", name)));
		}
		insert_version(st, model_id, 1, 0, "train", rel_sql, caller, read_ms, total_ms - read_ms, total_ms);
		pgml_record_deploy(model_id, 1, "first version", caller);
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
	}

	if (res.rows_test == 0)
		ereport(NOTICE, (errmsg("no rows were held out for testing; metrics are on the training rows"),
						 errhint("Measure on other rows with ml_evaluate().")));
	Datum values[10];
	bool nulls[10] = {false};
	values[0] = Int64GetDatum(model_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = Int32GetDatum(1);
	values[3] = CStringGetTextDatum(pgml::task_name(st->model->task));
	values[4] = CStringGetTextDatum(pgml::algorithm_name(algorithm));
	{
		/* headline metrics: the test metrics, or the training metrics without test rows */
		Datum all = pgml_jsonb_from_cstring(res.metrics_json.c_str());
		values[5] = DirectFunctionCall2(jsonb_object_field, all, CStringGetTextDatum(res.rows_test > 0 ? "test" : "train"));
	}
	values[6] = Int64GetDatum(res.rows_train);
	values[7] = Int64GetDatum(res.rows_test);
	values[8] = BoolGetDatum(true);
	values[9] = CStringGetTextDatum(res.rows_test > 0 ? "test" : "train");
	pgml_progress_end(); /* progress */
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), values, nulls)));
}

/*
 * ml_retrain(model, relation, mode, deploy, test_size, seed, allow_new_classes) -> (model_id, version,
 *   parent_version, mode, rows_train, rows_test, metrics, previous_metrics, deployed, reason)
 */
Datum
pgml_retrain(PG_FUNCTION_ARGS)
{
	instr_time t_start;
	INSTR_TIME_SET_CURRENT(t_start);
	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("argument %s of ml_retrain must not be NULL",
								   i == 0 ? "model" : i == 1 ? "relation" : i == 2 ? "mode" : "deploy")));
	char *relname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char *mode = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char *deploy = text_to_cstring(PG_GETARG_TEXT_PP(3));
	/* labels the deployed version does not know: an error unless allowed (NULL: not allowed) */
	bool allow_new_classes = PG_NARGS() > 6 && !PG_ARGISNULL(6) && PG_GETARG_BOOL(6);
	if (strcmp(mode, "auto") != 0 && strcmp(mode, "refit") != 0 && strcmp(mode, "incremental") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown retrain mode \"%s\"", mode),
						errhint("Use 'auto', 'refit' or 'incremental'.")));
	if (strcmp(deploy, "if_better") != 0 && strcmp(deploy, "always") != 0 && strcmp(deploy, "never") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown deploy policy \"%s\"", deploy),
						errhint("Use 'if_better', 'always' or 'never'.")));
	TupleDesc result_desc;
	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pg_ml: ml_retrain must return a record");

	/* the model, locked against concurrent retrains, deploys and drops */
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_OWN, true, &ref);
	pgml::Model *base = pgml_load_deployed(&ref);

	double test_size = PG_ARGISNULL(4) ? base->test_size : PG_GETARG_FLOAT8(4);
	int64 seed = PG_ARGISNULL(5) ? static_cast<int64>(base->seed) : PG_GETARG_INT32(5);
	check_test_size(test_size);
	bool can_continue = false;
	PGML_CORE(can_continue = pgml::model_can_continue(*base));
	if (strcmp(mode, "auto") == 0)
		mode = pstrdup(can_continue ? "incremental" : "refit");
	bool incremental = strcmp(mode, "incremental") == 0;

	/* the relation must carry every column of the model with a compatible type */
	Oid relid = pgml_relation_oid(relname);
	Relation rel = relation_open(relid, AccessShareLock);
	TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(rel));
	relation_close(rel, NoLock);
	char *rel_sql = pgml_relation_sql_name(relid);
	int nfeatures = static_cast<int>(base->features.size());
	PgmlColumn *features = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * nfeatures));
	PgmlColumn target;
	pgml_match_columns(desc, base, relname, ref.name, features, &target, true);

	TrainState *st = pgml_new_owned<TrainState>();
	PGML_CORE({
		st->spec.test_size = test_size;
		st->spec.seed = static_cast<uint64_t>(seed);
		st->spec.memory_limit = static_cast<size_t>(pgml_max_memory_mb) << 20;
		st->spec.threads = pgml_max_threads;
		st->spec.progress = pgml_progress_core; /* progress */
		st->spec.allow_new_classes = allow_new_classes;
		st->trainer = std::make_unique<pgml::Trainer>(st->spec, *base, incremental);
	});
	pgml_progress_begin("ml_retrain", ref.name, relid, "reading"); /* progress */
	double read_ms, total_ms;
	run_training(st, relid, relname, features, nfeatures, base->has_target() ? &target : nullptr, base, t_start,
				 &read_ms, &total_ms);
	const pgml::TrainResult &res = st->trainer->result();

	/* deploy? */
	bool do_deploy;
	char *reason;
	const char *metric = res.primary_metric.c_str();
	if (strcmp(deploy, "always") == 0) {
		do_deploy = true;
		reason = pstrdup("deploy => 'always'");
	} else if (strcmp(deploy, "never") == 0) {
		do_deploy = false;
		reason = pstrdup("deploy => 'never'");
	} else if (!res.compared) {
		do_deploy = true;
		reason = pstrdup(res.rows_test == 0 ? "no held-out rows to compare on (test_size => 0); deployed"
											: "versions without a target metric are not compared; deployed");
	} else {
		double now = res.primary_compare_new, prev = res.previous_primary;
		do_deploy = std::isnan(prev) || (!std::isnan(now) && now >= prev - 1e-12);
		reason = psprintf("test %s %.6g %s %.6g of version %d on the same %lld held-out rows", metric, now,
						  do_deploy ? ">=" : "<", prev, ref.deployed_version, (long long) res.rows_test);
	}

	pgml_progress_phase("saving"); /* progress */
	Oid caller = GetUserId();
	int32 version;
	{
		Oid save_user;
		int save_sec;
		pgml_catalog_begin(&save_user, &save_sec);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "pg_ml: SPI_connect failed");
		version = next_version(ref.id);
		insert_version(st, ref.id, version, ref.deployed_version, mode, rel_sql, caller, read_ms, total_ms - read_ms,
					   total_ms);
		if (do_deploy)
			pgml_record_deploy(ref.id, version, reason, caller);
		else {
			Oid t = INT8OID;
			Datum v = Int64GetDatum(ref.id);
			SPI_execute_with_args("UPDATE ml.models SET updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
								  1, &t, &v, NULL, false, 0);
		}
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
	}

	Datum values[11];
	bool nulls[11] = {false};
	values[0] = Int64GetDatum(ref.id);
	values[1] = Int32GetDatum(version);
	values[2] = Int32GetDatum(ref.deployed_version);
	values[3] = CStringGetTextDatum(mode);
	values[4] = Int64GetDatum(res.rows_train);
	values[5] = Int64GetDatum(res.rows_test);
	{
		Datum all = pgml_jsonb_from_cstring(res.metrics_json.c_str());
		values[6] = DirectFunctionCall2(jsonb_object_field, all, CStringGetTextDatum(res.rows_test > 0 ? "test" : "train"));
	}
	if (res.compared)
		values[7] = pgml_jsonb_from_cstring(res.previous_metrics_json.c_str());
	else
		nulls[7] = true;
	values[8] = BoolGetDatum(do_deploy);
	values[9] = CStringGetTextDatum(reason);
	nulls[10] = true; /* learned: filled in by the retrain semantics (issue 11) */
	pgml_progress_end(); /* progress */
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), values, nulls)));
}
