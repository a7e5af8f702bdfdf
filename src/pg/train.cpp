// pg_ml glue: ml_train and ml_retrain.
#include "../core/deploy_metric.hpp"
#include "../core/search.hpp"

#include "pg_ml.hpp"

#include <cmath>
#include <string>

#include "deploy_metric.hpp"
#include "grouped.hpp"
#include "options.hpp"
#include "progress.hpp"

extern "C" {
#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_statistic.h"
#include "portability/instr_time.h"
#include "utils/numeric.h"
#include "utils/jsonb.h"
#include "utils/acl.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pgml_train);
PG_FUNCTION_INFO_V1(pgml_retrain);
}

bool pgml_retrain_nothing_new_is_ok = false;

namespace {

// Everything C++ a training call holds; allocated with new, freed by its memory context.
struct TrainState {
	pgml::TrainSpec spec;
	std::unique_ptr<pgml::Trainer> trainer;
	std::unique_ptr<pgml::GroupedTrainer> grouped; /* group_by: trains the container instead of trainer */
	std::unique_ptr<pgml::Model> model;
	const pgml::Model *compare = nullptr; /* ml_retrain: the deployed version */
	std::vector<uint8_t> blob;
	std::string hyperparams_json, preprocess_json, state_json, features_json, classes_json, coef_json;
	const pgml::TrainResult &result() const { return grouped ? grouped->result() : trainer->result(); }
	/* a search (ml_train(search => ...), algorithm => 'auto' by cross-validation): its trials
	 * as the catalog stores them (ml.trials), ready before any catalog write */
	std::unique_ptr<pgml::Search> search;
	struct TrialRow {
		int number;
		std::string algorithm, hyperparams, folds, error;
		double mean, sd, ms;
	};
	std::vector<TrialRow> trials;
	int chosen_trial = 0;
	std::string search_metric, search_summary;
};

/* ml_train's arguments after search_args (14): per-group models */
constexpr int kTrainArgGroupBy = 15;
constexpr int kTrainArgGroupFallback = 16;

/* the search's scan: every row kept for the trials */
void
search_consume(void *arg, const pgml::Batch *batch)
{
	TrainState *st = static_cast<TrainState *>(arg);
	PGML_CORE(st->search->add_batch(*batch, pgml_interrupt_pending));
	pgml_progress_rows(batch->nrows); /* progress */
}

/* Reads the relation into the search, runs its trials, and makes the trainer with the
 * chosen algorithm and hyperparameters (st->spec becomes the chosen spec). */
void
run_search(TrainState *st, Oid relid, const char *relname, const PgmlColumn *features, int nfeatures,
		   const PgmlColumn *target)
{
	int64 rows = pgml_scan_relation(relid, features, nfeatures, target, search_consume, st);
	if (rows == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("relation \"%s\" has no rows", relname),
						errhint("Train on a relation with labelled rows.")));
	pgml_progress_phase("searching"); /* progress */
	PGML_CORE({
		st->search->run(pgml_interrupt_pending);
		st->spec = st->search->chosen();
		st->search_metric = st->search->metric();
		st->search_summary = st->search->summary();
		st->chosen_trial = st->search->best().number;
		for (const pgml::Trial &t : st->search->trials()) {
			std::string folds = "{";
			for (size_t i = 0; i < t.fold_scores.size(); i++) {
				char b[40];
				snprintf(b, sizeof b, "%s%.17g", i ? "," : "", t.fold_scores[i]);
				folds += std::isfinite(t.fold_scores[i]) ? b : (i ? ",NaN" : "NaN");
			}
			folds += "}";
			st->trials.push_back({t.number, pgml::algorithm_name(t.algorithm), t.hyperparams_json, folds, t.error,
								  t.mean, t.sd, t.ms});
		}
		st->search.reset(); /* the rows it kept */
	});
	pgml_progress_iterations(0); /* the trials' numbers and scores are not the version's */
	pgml_progress_set_rows(0);
	pgml_progress_phase("reading"); /* progress */
}

/* The trials of the version's search into ml.trials (catalog access, SPI connected). */
void
insert_trials(const TrainState *st, int64 model_id, int32 version)
{
	const int n = static_cast<int>(st->trials.size());
	if (n == 0)
		return;
	Datum *num = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	Datum *alg = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	Datum *hp = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	Datum *folds = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	Datum *mean = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	Datum *sd = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	Datum *ms = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	Datum *err = static_cast<Datum *>(palloc(sizeof(Datum) * n));
	bool *err_null = static_cast<bool *>(palloc(sizeof(bool) * n));
	for (int i = 0; i < n; i++) {
		const TrainState::TrialRow &t = st->trials[static_cast<size_t>(i)];
		num[i] = Int32GetDatum(t.number);
		alg[i] = CStringGetTextDatum(t.algorithm.c_str());
		hp[i] = CStringGetTextDatum(t.hyperparams.c_str());
		folds[i] = CStringGetTextDatum(t.folds.c_str());
		mean[i] = Float8GetDatum(t.mean);
		sd[i] = Float8GetDatum(t.sd);
		ms[i] = Float8GetDatum(t.ms);
		err_null[i] = t.error.empty();
		err[i] = err_null[i] ? (Datum) 0 : CStringGetTextDatum(t.error.c_str());
	}
	int dims[1] = {n}, lbs[1] = {1};
	Oid tt[12] = {INT8OID,		  INT4OID,		  INT4ARRAYOID,	  TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
				  FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, TEXTARRAYOID, TEXTOID,	  INT4OID};
	Datum tv[12] = {
		Int64GetDatum(model_id),
		Int32GetDatum(version),
		PointerGetDatum(construct_array(num, n, INT4OID, 4, true, TYPALIGN_INT)),
		PointerGetDatum(construct_array(alg, n, TEXTOID, -1, false, TYPALIGN_INT)),
		PointerGetDatum(construct_array(hp, n, TEXTOID, -1, false, TYPALIGN_INT)),
		PointerGetDatum(construct_array(folds, n, TEXTOID, -1, false, TYPALIGN_INT)),
		PointerGetDatum(construct_array(mean, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
		PointerGetDatum(construct_array(sd, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
		PointerGetDatum(construct_array(ms, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
		PointerGetDatum(construct_md_array(err, err_null, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT)),
		CStringGetTextDatum(st->search_metric.c_str()),
		Int32GetDatum(st->chosen_trial)};
	/* NaN (not measured) is stored as NULL */
	int rc = SPI_execute_with_args(
		"INSERT INTO ml.trials (model_id, version, trial, algorithm, hyperparams, metric, fold_scores, mean, sd, ms, "
		"chosen, error) "
		"SELECT $1, $2, u.t, u.a, u.h::pg_catalog.jsonb, $11, u.f::pg_catalog.float8[], "
		"CASE WHEN u.m OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float8 THEN NULL ELSE u.m END, "
		"CASE WHEN u.s OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.float8 THEN NULL ELSE u.s END, "
		"u.ms, u.t OPERATOR(pg_catalog.=) $12, u.e "
		"FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), "
		"pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10)) "
		"AS u(t, a, h, f, m, s, ms, e)",
		12, tt, tv, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "pg_ml: could not save the search's trials: %s", SPI_result_code_string(rc));
}

void
train_consume(void *arg, const pgml::Batch *batch)
{
	TrainState *st = static_cast<TrainState *>(arg);
	PGML_CORE(st->trainer->add_batch(*batch, pgml_interrupt_pending));
	pgml_progress_rows(batch->nrows); /* progress */
}

/* the comparison pass: every row again, both versions scored on the held-out ones */
void
compare_consume(void *arg, const pgml::Batch *batch)
{
	TrainState *st = static_cast<TrainState *>(arg);
	PGML_CORE(st->trainer->add_compare_batch(*batch, *st->model, *st->compare, pgml_interrupt_pending));
}

/* the precise pass: every row again, into double-double statistics (an ill-conditioned fit) */
void
precise_consume(void *arg, const pgml::Batch *batch)
{
	TrainState *st = static_cast<TrainState *>(arg);
	PGML_CORE(st->trainer->add_precise_batch(*batch, pgml_interrupt_pending));
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

// The grouped trainer of a refit of a per-group version (inside the core): the version's
// columns, algorithm and task; each group's trainer takes the rest from one of its models.
std::unique_ptr<pgml::GroupedTrainer>
grouped_refit(pgml::TrainSpec *spec, const pgml::Model &base, bool allow_new_classes)
{
	const pgml::GroupedModel &g = *base.grouped;
	spec->features.assign(base.features.begin(), base.features.end() - static_cast<long>(g.columns.size()));
	spec->target = base.target;
	spec->algorithm = base.algorithm;
	spec->task = base.task;
	pgml::GroupSpec gs;
	gs.columns = g.columns;
	gs.fallback_all = g.fallback != nullptr;
	gs.max_groups = static_cast<size_t>(pgml_max_groups);
	gs.base = g.groups[0].model;
	gs.known_classes = base.classes;
	gs.allow_new_classes = allow_new_classes;
	return std::make_unique<pgml::GroupedTrainer>(*spec, std::move(gs));
}

// The JSON texts of the finished model (inside the core).
void
describe_model(TrainState *st)
{
	PGML_CORE({
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
			if (m.grouped && &c >= &m.features[m.features.size() - m.grouped->columns.size()])
				f.key("group").value(true); /* a group column: routes the row, not a feature of the sub-models */
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

// The finished training run: model fitted, JSON texts prepared (inside the core).
void
finish_training(TrainState *st, const pgml::Model *compare)
{
	PGML_CORE(st->model = st->trainer->finish(pgml_interrupt_pending, compare));
	describe_model(st);
}

// Streams the relation into the trainer, then fits (comparing with `compare` if given).
/* The fit's planned iterations, for the progress notices' "iteration k of n": gradient_boosting's
 * rounds and mlp's epochs (fewer only by early stopping); 0 for fits that stop when they
 * converge (max_iter only caps them). Core code (PGML_CORE). */
int
planned_iterations(pgml::Algorithm algorithm, const pgml::Params &hp)
{
	if (algorithm == pgml::Algorithm::GradientBoosting)
		return hp.integer("n_estimators");
	if (algorithm == pgml::Algorithm::Mlp)
		return hp.integer("max_iter");
	return 0;
}

/* Tells the progress notices the planned iterations of a fit of `algorithm` with the
 * hyperparameters `given` over start's (NULL: over the defaults). */
void
report_planned_iterations(pgml::Algorithm algorithm, const pgml::Options &given, const pgml::Params *start)
{
	int n = 0;
	PGML_CORE(n = planned_iterations(algorithm, pgml::parse_params(pgml::algorithm_def(algorithm), given, start)));
	pgml_progress_iterations(n);
}

// Times in ms since start: reading, and reading plus fitting.
int64
run_training(TrainState *st, Oid relid, const char *relname, const PgmlColumn *features, int nfeatures,
			 const PgmlColumn *target, const pgml::Model *compare, instr_time start, double *read_ms,
			 double *total_ms)
{
	bool aggregate = false;
	PGML_CORE(aggregate = pgml_stats_aggregate && st->trainer->uses_stats_aggregate());
	Oid agg_schema = aggregate ? pgml_stats_aggregate_schema() : InvalidOid;
	aggregate = OidIsValid(agg_schema) && pgml_kmeans_steps_available(st->trainer.get(), agg_schema);
	int64 rows = -1;
	double class_stats_ms = -1; /* the class aggregate path: its statistics query (the reading) */
	double class_start_ms = 0;
	if (aggregate) {
		rows = pgml_aggregate_relation(st->trainer.get(), agg_schema, relid, features, nfeatures, target);
	} else {
		/* naive Bayes: statistics grouped by class and split, then an evaluating aggregate */
		bool class_agg = false;
		PGML_CORE(class_agg = pgml_stats_aggregate && st->trainer->uses_class_aggregate());
		Oid class_schema = class_agg ? pgml_class_aggregate_schema() : InvalidOid;
		class_start_ms = elapsed_ms(start);
		if (OidIsValid(class_schema))
			rows = pgml_class_aggregate_relation(st->trainer.get(), class_schema, relid, features, nfeatures, target,
												 st->spec.test_size, compare, &class_stats_ms);
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
	if (rows >= 0 && class_stats_ms >= 0)
		*read_ms = class_start_ms + class_stats_ms; /* the Newton steps and the evaluation are fitting */
	pgml_progress_phase("fitting"); /* progress */
	if (aggregate)
		pgml_kmeans_steps(st->trainer.get(), agg_schema, relid, features, nfeatures); /* k-means: Lloyd steps */
	finish_training(st, compare);
	bool precise = false;
	PGML_CORE(precise = st->trainer->needs_precise_pass());
	if (precise) {
		/* least squares short of digits from double statistics: read the rows again into
		 * double-double statistics and fit from them */
		pgml_progress_phase("precise pass"); /* progress */
		pgml_scan_relation(relid, features, nfeatures, target, precise_consume, st);
		PGML_CORE(st->trainer->end_precise_pass());
		finish_training(st, compare);
	}
	{
		/* a rank-deficient or ill-conditioned least-squares fit: the core's facts become WARNINGs
		 * here, with no C++ frame left to unwind (only a reference to the finished result) */
		const std::vector<pgml::TrainResult::Warning> &warnings = st->trainer->result().warnings;
		for (size_t i = 0; i < warnings.size(); i++)
			ereport(WARNING, (errcode(ERRCODE_WARNING), errmsg("%s", warnings[i].message.c_str()),
							  errdetail("%s", warnings[i].detail.c_str()), errhint("%s", warnings[i].hint.c_str())));
	}
	bool pass = false;
	PGML_CORE(pass = compare != nullptr && st->trainer->needs_compare_pass());
	if (pass) {
		/* the linear family's moments and k-means's Lloyd steps keep no held-out rows: score both
		 * versions on every one of them (exact, the same rows for both) */
		pgml_progress_phase("evaluating"); /* progress */
		st->compare = compare;
		pgml_scan_relation(relid, features, nfeatures, target, compare_consume, st);
		PGML_CORE(st->trainer->end_compare_pass());
	}
	*total_ms = elapsed_ms(start);
	return rows;
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
			   Oid trained_by, double read_ms, double fit_ms, double total_ms, const char *sources, const char *retrain)
{
	const pgml::TrainResult &res = st->result();
	const pgml::Model &m = *st->model;
	/* the blob is bound to the row it goes into */
	uint16 format;
	uint32 checksum;
	bytea *blob = pgml_serialize_bound(st->model.get(), model_id, version, &st->blob, &format, &checksum);

	PgmlVersionRow row;
	row.model_id = model_id;
	row.version = version;
	row.parent = parent;
	row.algorithm = pgml::algorithm_name(m.algorithm);
	row.mode = mode;
	row.relation = relation;
	row.hyperparams = pgml_jsonb_from_cstring(st->hyperparams_json.c_str());
	row.preprocess = pgml_jsonb_from_cstring(st->preprocess_json.c_str());
	row.preprocessing_state = pgml_jsonb_from_cstring(st->state_json.c_str());
	row.metrics = pgml_jsonb_from_cstring(res.metrics_json.c_str());
	row.report = pgml_jsonb_from_cstring(res.report_json.c_str());
	if (retrain != NULL) /* the retrain's confirmation goes into the report under "retrain" */
		row.report = DirectFunctionCall2(jsonb_concat, row.report,
										 pgml_jsonb_from_cstring(psprintf("{\"retrain\": %s}", retrain)));
	row.coefficients = pgml_jsonb_from_cstring(st->coef_json.c_str());
	row.rows_train = res.rows_train;
	row.rows_test = res.rows_test;
	row.test_size = m.test_size;
	row.seed = m.seed;
	row.fingerprint = res.fingerprint.c_str();
	row.blob = blob;
	row.format = format;
	row.blob_length = static_cast<int32>(st->blob.size());
	row.checksum = checksum;
	row.trained_by = trained_by;
	row.read_ms = read_ms;
	row.fit_ms = fit_ms;
	row.duration_ms = total_ms;
	row.sources = pgml_jsonb_from_cstring(sources);
	/* the classes, in the blob's order (ml_models.classes of a deployed version) */
	row.classes = st->classes_json.empty() ? (Datum) 0 : pgml_jsonb_from_cstring(st->classes_json.c_str());
	row.profile = res.profile_json.empty() ? (Datum) 0 : pgml_jsonb_from_cstring(res.profile_json.c_str());
	pgml_insert_version(&row);

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
		int rc = SPI_execute_with_args(
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
	insert_trials(st, model_id, version);
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


// ---------------------------------------------------------------- what a version learned from
// One read of a relation by a version (an entry of ml.versions.sources, see learned.cpp).
struct Source {
	int32 version;
	char *relation;
	Oid oid;
	char *system;
	char *snapshot;    // NULL: not a table, or read before 0.3.0
	int64 rows;        // -1: not counted apart (a read of several relations at once)
	char *fingerprint; // NULL: not computed apart
};

// The sources of a version, in order; palloc'd in the caller's context.
int
load_sources(int64 model_id, int32 version, Source **out)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t[2] = {INT8OID, INT4OID};
	Datum v[2] = {Int64GetDatum(model_id), Int32GetDatum(version)};
	if (SPI_execute_with_args(
			"SELECT (e OPERATOR(pg_catalog.->>) 'version')::pg_catalog.int4, e OPERATOR(pg_catalog.->>) 'relation', "
			"(e OPERATOR(pg_catalog.->>) 'oid')::pg_catalog.oid, e OPERATOR(pg_catalog.->>) 'system', "
			"e OPERATOR(pg_catalog.->>) 'snapshot', (e OPERATOR(pg_catalog.->>) 'rows')::pg_catalog.int8, "
			"e OPERATOR(pg_catalog.->>) 'fingerprint' "
			"FROM ml.versions v, pg_catalog.jsonb_array_elements(v.sources) WITH ORDINALITY AS s(e, i) "
			"WHERE v.model_id OPERATOR(pg_catalog.=) $1 AND v.version OPERATOR(pg_catalog.=) $2 ORDER BY s.i",
			2, t, v, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not read what version %d learned from", version);
	int n = static_cast<int>(SPI_processed);
	Source *src = static_cast<Source *>(MemoryContextAllocZero(outer, sizeof(Source) * (n + 1)));
	for (int i = 0; i < n; i++) {
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		auto str = [&](int col) -> char * {
			char *x = SPI_getvalue(tup, desc, col);
			return x ? MemoryContextStrdup(outer, x) : NULL;
		};
		Datum d = SPI_getbinval(tup, desc, 1, &isnull);
		src[i].version = isnull ? 0 : DatumGetInt32(d);
		src[i].relation = str(2);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		src[i].oid = isnull ? InvalidOid : DatumGetObjectId(d);
		src[i].system = str(4);
		src[i].snapshot = str(5);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		src[i].rows = isnull ? -1 : DatumGetInt64(d);
		src[i].fingerprint = str(7);
	}
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	*out = src;
	return n;
}

void
append_source(StringInfo b, const Source *s)
{
	appendStringInfo(b, "{\"version\": %d, \"relation\": ", s->version);
	pgml_json_string(b, s->relation);
	appendStringInfo(b, ", \"oid\": %u, \"system\": ", s->oid);
	pgml_json_string(b, s->system);
	appendStringInfoString(b, ", \"snapshot\": ");
	pgml_json_string(b, s->snapshot);
	if (s->rows >= 0)
		appendStringInfo(b, ", \"rows\": " INT64_FORMAT, s->rows);
	else
		appendStringInfoString(b, ", \"rows\": null");
	appendStringInfoString(b, ", \"fingerprint\": ");
	pgml_json_string(b, s->fingerprint);
	appendStringInfoChar(b, '}');
}

// Whether a relation's rows carry xmin for a snapshot to tell apart (tables, partitioned tables).
bool
has_row_snapshots(Oid relid)
{
	char kind = get_rel_relkind(relid);
	return kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE;
}

// The rows of relid a read takes: "(SELECT * FROM rel t WHERE ml.row_is_new(...))", or NULL for
// every row (no snapshot learned before, and the recorded one needs no filter).
char *
filtered_from(Oid relid, const char *learned, const char *strict_seen)
{
	if (learned == NULL && strict_seen == NULL)
		return NULL;
	return psprintf("(SELECT * FROM %s t WHERE ml.row_is_new(t.xmin, %s::pg_catalog.text, %s::pg_catalog.text))",
					pgml_relation_sql_name(relid), learned ? quote_literal_cstr(learned) : "NULL",
					strict_seen ? quote_literal_cstr(strict_seen) : "NULL");
}

// Why source s cannot be read again by the caller with the model's columns (NULL: it can).
char *
source_problem(const Source *s, const pgml::Model *model, const char *system)
{
	if (s->system == NULL || strcmp(s->system, system) != 0)
		return psprintf("%s was read by version %d in another database (this one was restored or copied since)",
						s->relation, s->version);
	if (!OidIsValid(s->oid) || get_rel_name(s->oid) == NULL)
		return psprintf("%s, which version %d learned from, no longer exists", s->relation, s->version);
	Oid user = GetUserId();
	if (pg_class_aclcheck(s->oid, user, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(s->oid, user, ACL_SELECT, ACLMASK_ALL) != ACLCHECK_OK)
		return psprintf("%s, which version %d learned from, is not readable by role %s", pgml_relation_sql_name(s->oid),
						s->version, GetUserNameFromId(user, false));
	Relation rel = relation_open(s->oid, AccessShareLock);
	bool other_temp = RELATION_IS_OTHER_TEMP(rel);
	TupleDesc desc = RelationGetDescr(rel);
	char *missing = NULL;
	for (size_t i = 0; i <= model->features.size() && missing == NULL; i++) {
		if (i == model->features.size() && !model->has_target())
			break;
		const pgml::ColumnInfo &want = i < model->features.size() ? model->features[i] : model->target;
		PgmlColumn col;
		if (!pgml_find_column(desc, want.name.c_str(), &col) || col.tc != want.type_class)
			missing = pstrdup(want.name.c_str());
	}
	relation_close(rel, NoLock);
	if (other_temp)
		return psprintf("%s, which version %d learned from, is a temporary table of another session", s->relation,
						s->version);
	if (missing != NULL)
		return psprintf("%s, which version %d learned from, no longer has the model's column \"%s\"",
						pgml_relation_sql_name(s->oid), s->version, missing);
	return NULL;
}

// The latest source of relid read in this cluster (NULL if none).
const Source *
find_source(const Source *src, int n, Oid relid, const char *system)
{
	const Source *found = NULL;
	for (int i = 0; i < n; i++)
		if (src[i].oid == relid && src[i].system != NULL && strcmp(src[i].system, system) == 0)
			found = &src[i];
	return found;
}

// "(SELECT <columns cast to the model's reading types> FROM a t UNION ALL ...)" over relations.
char *
union_from(const Oid *rels, int nrels, const PgmlColumn *features, int nfeatures, const PgmlColumn *target,
		   const char *strict_seen)
{
	StringInfoData b;
	initStringInfo(&b);
	appendStringInfoChar(&b, '(');
	for (int r = 0; r < nrels; r++) {
		appendStringInfoString(&b, r ? " UNION ALL SELECT " : "SELECT ");
		for (int i = 0; i <= nfeatures; i++) {
			const PgmlColumn *c = i < nfeatures ? &features[i] : target;
			if (c == nullptr)
				break;
			appendStringInfo(&b, "%st.%s::%s AS %s", i ? ", " : "", quote_identifier(c->name),
							 format_type_be_qualified(c->type), quote_identifier(c->name));
		}
		appendStringInfo(&b, " FROM %s t", pgml_relation_sql_name(rels[r]));
		if (strict_seen != NULL && has_row_snapshots(rels[r]))
			appendStringInfo(&b, " WHERE ml.row_is_new(t.xmin, NULL, %s::pg_catalog.text)", quote_literal_cstr(strict_seen));
	}
	appendStringInfoChar(&b, ')');
	return b.data;
}

// The refusal of a retrain whose relation holds no row the deployed version has not learned.
pg_attribute_noreturn() void
nothing_new(const char *relname, const PgmlModelRef *ref, const Source *prev_read, const char *rel_sql)
{
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("relation \"%s\" has no rows that version %d of model \"%s\" has not learned", relname,
						   ref->deployed_version, ref->name),
					errdetail("Version %d read %s; no row was added since.", prev_read->version, rel_sql),
					errhint("Retrain once new rows are in, or use mode => 'refit' to train from scratch.")));
}

// Whether a FROM item has a row (one short query; the caller's privileges).
bool
from_has_rows(const char *from)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	if (SPI_execute(psprintf("SELECT 1 FROM %s r LIMIT 1", from), true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not look for new rows");
	bool any = SPI_processed > 0;
	SPI_finish();
	return any;
}

// ---------------------------------------------------------------- guards: key-like columns
//
// A key tells the rows apart and predicts nothing; as a feature it lets a model memorize rows
// (a tree splits on it, a linear model finds a trend in insertion order), as a target there is
// nothing to learn. ml_train leaves a key-like column out of the default features (NOTICE),
// and refuses a key-like target. Key-like, for integer, text-like and uuid columns only (a
// float, numeric, date or timestamp column can be unique and still a genuine measurement):
//  - declared: the primary key or a single-column unique index (valid, not partial, not an
//    expression), an identity column, or a serial column (a sequence owned by the column);
//  - measured, from ANALYZE's statistics (pg_statistic; no extra scan; nothing without them),
//    on a relation of at least kKeyStatsRows rows: a distinct value in every row, and for an
//    integer column the values also consecutive-ish (max - min + 1 <= 2 x rows, ids). Unique
//    random integers of a genuine feature need a range far beyond the row count (about rows^2
//    for no repeat), so the density test keeps them.
constexpr double kKeyStatsRows = 1000;

bool
key_type(Oid basetype)
{
	switch (basetype) {
	case INT2OID:
	case INT4OID:
	case INT8OID:
	case TEXTOID:
	case VARCHAROID:
	case BPCHAROID:
	case UUIDOID:
		return true;
	default:
		return false;
	}
}

struct KeyInfo {
	int natts;
	char **reason; // per attribute number (1-based), NULL if not key-like; palloc'd
};

// The declared keys of relid (one catalog query; pg_catalog is readable by everyone).
void
declared_keys(Oid relid, KeyInfo *keys)
{
	MemoryContext cxt = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t = OIDOID;
	Datum v = ObjectIdGetDatum(relid);
	int rc = SPI_execute_with_args(
		"SELECT a.attnum, "
		"(SELECT CASE WHEN pg_catalog.bool_or(i.indisprimary) THEN 'primary key' "
		"ELSE pg_catalog.min(i.indexrelid::pg_catalog.regclass::pg_catalog.text) END "
		"FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) a.attrelid AND i.indisunique "
		"AND i.indisvalid AND i.indnkeyatts OPERATOR(pg_catalog.=) 1 AND i.indkey[0] OPERATOR(pg_catalog.=) a.attnum "
		"AND i.indpred IS NULL AND i.indexprs IS NULL), "
		"a.attidentity OPERATOR(pg_catalog.<>) '', "
		"EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid "
		"WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
		"AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
		"AND d.refobjid OPERATOR(pg_catalog.=) a.attrelid AND d.refobjsubid OPERATOR(pg_catalog.=) a.attnum "
		"AND d.deptype OPERATOR(pg_catalog.=) 'a' AND s.relkind OPERATOR(pg_catalog.=) 'S') "
		"FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0 "
		"AND NOT a.attisdropped",
		1, &t, &v, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not read the keys of the relation: %s", SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++) {
		HeapTuple tup = SPI_tuptable->vals[r];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool isnull;
		int attnum = DatumGetInt16(SPI_getbinval(tup, desc, 1, &isnull));
		if (attnum < 1 || attnum > keys->natts)
			continue;
		char *uniq = SPI_getvalue(tup, desc, 2);
		bool identity = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		bool serial = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		const char *why = NULL;
		if (uniq != NULL && strcmp(uniq, "primary key") == 0)
			why = "It is the primary key.";
		else if (uniq != NULL)
			why = psprintf("It has a unique index (%s).", uniq);
		else if (identity)
			why = "It is an identity column.";
		else if (serial)
			why = "It is a serial column (its default is a sequence it owns).";
		if (why != NULL)
			keys->reason[attnum] = MemoryContextStrdup(cxt, why);
	}
	SPI_finish();
}

// What ANALYZE measured: the column of a relation of rows rows (estimate) as key-like, or NULL.
char *
measured_key(Oid relid, char relkind, const PgmlColumn *col, double rows)
{
	if (!(rows >= kKeyStatsRows))
		return NULL;
	HeapTuple st = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid), Int16GetDatum(col->attnum),
								   BoolGetDatum(relkind == RELKIND_PARTITIONED_TABLE));
	if (!HeapTupleIsValid(st))
		return NULL;
	Form_pg_statistic s = (Form_pg_statistic) GETSTRUCT(st);
	char *why = NULL;
	if (s->stadistinct <= -0.999) {
		bool integer = col->basetype == INT2OID || col->basetype == INT4OID || col->basetype == INT8OID;
		if (!integer)
			why = psprintf("ANALYZE found a distinct value in every row (about %.0f rows).", rows);
		else {
			AttStatsSlot slot;
			if (get_attstatsslot(&slot, st, STATISTIC_KIND_HISTOGRAM, InvalidOid, ATTSTATSSLOT_VALUES)) {
				if (slot.nvalues >= 2) {
					auto as_double = [&](Datum d) {
						return col->basetype == INT2OID	  ? static_cast<double>(DatumGetInt16(d))
							   : col->basetype == INT4OID ? static_cast<double>(DatumGetInt32(d))
														  : static_cast<double>(DatumGetInt64(d));
					};
					double lo = as_double(slot.values[0]), hi = as_double(slot.values[slot.nvalues - 1]);
					if (hi - lo + 1 <= 2 * rows)
						why = psprintf("ANALYZE found a distinct value in every row (about %.0f rows), integers from "
									   "%.0f to %.0f: an id.",
									   rows, lo, hi);
				}
				free_attstatsslot(&slot);
			}
		}
	}
	ReleaseSysCache(st);
	return why;
}

// Why a column of the relation is key-like, or NULL (see above).
const char *
key_like(const KeyInfo *keys, Oid relid, char relkind, const PgmlColumn *col, double rows)
{
	if (!key_type(col->basetype) || col->attnum < 1 || col->attnum > keys->natts)
		return NULL;
	if (keys->reason[col->attnum] != NULL)
		return keys->reason[col->attnum];
	return measured_key(relid, relkind, col, rows);
}

} // namespace

void
pgml_match_columns(TupleDesc desc, const pgml::Model *model, const char *relname, const char *model_name,
				   PgmlColumn *features, PgmlColumn *target, bool notice_extra, bool target_optional)
{
	int nfeatures = static_cast<int>(model->features.size());
	StringInfoData problems;
	initStringInfo(&problems);
	bool missing = false;
	for (int i = 0; i < nfeatures + (model->has_target() && !target_optional ? 1 : 0); i++) {
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

/* Sets `version` deployed (and the model's algorithm). SPI connected, catalog identity. */
void
pgml_set_deployed(int64 model_id, int32 version)
{
	Oid t[2] = {INT8OID, INT4OID};
	Datum v[2] = {Int64GetDatum(model_id), Int32GetDatum(version)};
	/* the model's algorithm is its deployed version's (ml_retrain(algorithm => ...) may change it) */
	if (SPI_execute_with_args("UPDATE ml.models SET deployed_version = $2, updated_at = pg_catalog.now(), "
							  "algorithm = (SELECT v.model_kind FROM ml.versions v WHERE v.model_id "
							  "OPERATOR(pg_catalog.=) $1 AND v.version OPERATOR(pg_catalog.=) $2) "
							  "WHERE id OPERATOR(pg_catalog.=) $1",
							  2, t, v, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_ml: could not deploy");
}

/* Deploys `version`: sets it on the model and records the deployment. SPI connected, catalog identity. */
void
pgml_record_deploy(int64 model_id, int32 version, const char *reason, Oid by)
{
	Oid t[4] = {INT8OID, INT4OID, TEXTOID, REGROLEOID};
	Datum v[4] = {Int64GetDatum(model_id), Int32GetDatum(version), CStringGetTextDatum(reason), ObjectIdGetDatum(by)};
	pgml_set_deployed(model_id, version);
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

	/* the relation (or a query's temporary view) and its columns */
	const char *display;
	bool is_query;
	Oid relid = pgml_source_oid(relname, &display, &is_query);
	relname = pstrdup(display);
	Relation rel = relation_open(relid, AccessShareLock);
	TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(rel));
	char *rel_short = pstrdup(is_query ? "query" : RelationGetRelationName(rel)); /* the default model name's */
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
	if (has_target)
		target_name = pstrdup(target.name); /* the column's own name ('"Revenue"' names Revenue) */

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
			if (nfeatures >= desc->natts || !pgml_find_column(desc, f, &features[nfeatures]))
				ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
								errmsg("column \"%s\" of relation \"%s\" does not exist", f, relname)));
			/* the columns' own names: 'Price' and '"Price"' are one column */
			const char *name = features[nfeatures].name;
			if (has_target && strcmp(name, target.name) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("target column \"%s\" cannot also be a feature", name)));
			for (int j = 0; j < nfeatures; j++)
				if (strcmp(features[j].name, name) == 0)
					ereport(ERROR, (errcode(ERRCODE_DUPLICATE_COLUMN), errmsg("feature \"%s\" is listed twice", name)));
			nfeatures++;
		}
	} else {
		for (int i = 0; i < desc->natts; i++) {
			Form_pg_attribute att = TupleDescAttr(desc, i);
			if (att->attisdropped || (has_target && strcmp(NameStr(att->attname), target.name) == 0))
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
				if (strcmp(features[j].name, tmp.name) == 0) {
					memmove(&features[j], &features[j + 1], sizeof(PgmlColumn) * (nfeatures - j - 1));
					nfeatures--;
					break;
				}
		}
	}
	/* group_by: the group columns route the rows; they are not features */
	PgmlColumn *group_cols = NULL;
	int ngroup = 0;
	bool fallback_all = false;
	if (PG_NARGS() > kTrainArgGroupBy && !PG_ARGISNULL(kTrainArgGroupBy))
		ngroup = pgml_group_columns(desc, PG_GETARG_ARRAYTYPE_P(kTrainArgGroupBy), relname, target_name, features,
									&nfeatures, !PG_ARGISNULL(5), &group_cols);
	if (PG_NARGS() > kTrainArgGroupFallback && !PG_ARGISNULL(kTrainArgGroupFallback)) {
		fallback_all = pgml_group_fallback_all(text_to_cstring(PG_GETARG_TEXT_PP(kTrainArgGroupFallback)));
		if (fallback_all && ngroup == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("group_fallback needs group_by"),
							errhint("Pass group_by => ARRAY['column'] to train one model per group.")));
	}
	/* guards: a key-like target is refused; key-like columns leave the default features */
	int nkeys = 0;
	{
		char relkind = get_rel_relkind(relid);
		KeyInfo keys;
		keys.natts = desc->natts;
		keys.reason = static_cast<char **>(palloc0(sizeof(char *) * (desc->natts + 1)));
		if (relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE || relkind == RELKIND_MATVIEW)
			declared_keys(relid, &keys);
		double rows = static_cast<double>(pgml_relation_row_estimate(relid));
		const char *why = has_target ? key_like(&keys, relid, relkind, &target, rows) : NULL;
		if (why != NULL)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("target column \"%s\" of relation \"%s\" looks like a key", target_name, relname),
							errdetail("%s A key has its own value in every row: there is nothing to learn about it.", why),
							errhint("Name the column to predict as the target; to cluster the rows, pass NULL.")));
		for (int i = 0; PG_ARGISNULL(5) && i < nfeatures; i++) {
			why = key_like(&keys, relid, relkind, &features[i], rows);
			if (why == NULL)
				continue;
			ereport(NOTICE, (errmsg("column \"%s\" looks like a key and is not used as a feature", features[i].name),
							 errdetail("%s A key tells the rows apart and predicts nothing.", why),
							 errhint("To use it anyway, list it in features => ARRAY[...].")));
			memmove(&features[i], &features[i + 1], sizeof(PgmlColumn) * (nfeatures - i - 1));
			nfeatures--;
			nkeys++;
			i--;
		}
	}
	for (int i = 0; i < nfeatures; i++)
		if (static_cast<int>(features[i].tc) > 3)
			pgml_unsupported_column(relname, &features[i]);
	if (nfeatures == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("relation \"%s\" has no feature columns besides the target \"%s\"", relname, target_name),
						nkeys > 0 ? errhint("Key-like columns are left out unless listed in features => ARRAY[...].") : 0));

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
	/* search (12), search_params (13), search_args (14) */
	char *search_kind = PG_NARGS() > 12 && !PG_ARGISNULL(12) ? text_to_cstring(PG_GETARG_TEXT_PP(12)) : NULL;
	bool has_search_params = PG_NARGS() > 13 && !PG_ARGISNULL(13);
	bool has_search_args = PG_NARGS() > 14 && !PG_ARGISNULL(14);
	if (search_kind != NULL && def == nullptr)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("search needs an algorithm"),
						errdetail("search_params names hyperparameters of one algorithm."),
						errhint("Pass algorithm => 'gradient_boosting' (for example). algorithm => 'auto' compares "
								"algorithms by cross-validation on its own.")));
	if (search_kind != NULL && ngroup > 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("search does not support group_by yet"),
						errhint("Search on one group's rows (a view) and train every group with the hyperparameters "
								"it finds.")));
	if (search_kind != NULL && !has_search_params)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("search needs search_params"),
						errhint("Pass the hyperparameters to search, e.g. search_params => '{\"max_depth\": [2, 4, 8]}'.")));
	if (search_kind == NULL && (has_search_params || (has_search_args && def != nullptr)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s needs search => 'grid' or 'random'", has_search_params ? "search_params" : "search_args")));
	PgmlOption *sp = NULL, *sa = NULL;
	int nsp = has_search_params ? pgml_flatten_lists(PG_GETARG_JSONB_P(13), "search_params", &sp) : 0;
	int nsa = has_search_args ? pgml_flatten_options(PG_GETARG_JSONB_P(14), "search_args", &sa) : 0;

	char *choice_note = NULL;
	bool auto_search = false;
	double expected_rows = 0;
	if (def == nullptr) {
		/* by task and size: the planner's estimate of the relation's rows. Small enough (and no
		 * hyperparams to apply): the candidates are compared by cross-validation after the read */
		expected_rows = pgml_estimate_rows(relid, pgml::kAutoLargeRows);
		/* (per-group models: the size rule, one algorithm for every group) */
		auto_search = ngroup == 0 && task != pgml::Task::Clustering && expected_rows <= pgml::kAutoSearchRows &&
					  JB_ROOT_COUNT(PG_GETARG_JSONB_P(7)) == 0;
		char reason[512];
		PGML_CORE({
			pgml::AutoChoice c = pgml::auto_algorithm(task, expected_rows);
			snprintf(reason, sizeof reason, "%s", c.reason.c_str());
			def = &pgml::algorithm_def(c.algorithm);
		});
		if (!auto_search) {
			choice_note = psprintf("The task is %s because %s; %s.", pgml::task_name(task), why, reason);
			/* DEBUG1: the result's algorithm and report->>'algorithm_choice' say it */
			ereport(DEBUG1, (errmsg("pg_ml chose %s for %s", def->name.c_str(), pgml::task_name(task)),
							 errdetail("%s", choice_note), errhint("Pass algorithm => and task => to choose.")));
		}
	}
	pgml::Algorithm algorithm = def->id;
	/* the deploy metric (NULL: the task's default, once the classes are known) */
	char *deploy_metric = PG_NARGS() > 11 && !PG_ARGISNULL(11) ? text_to_cstring(PG_GETARG_TEXT_PP(11)) : NULL;
	if (deploy_metric != NULL)
		pgml_check_deploy_metric(deploy_metric, task);

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
		if (ngroup > 0) {
			pgml::GroupSpec gs;
			for (int i = 0; i < ngroup; i++)
				gs.columns.push_back(column_info(&group_cols[i]));
			gs.fallback_all = fallback_all;
			gs.max_groups = static_cast<size_t>(pgml_max_groups);
			st->grouped = std::make_unique<pgml::GroupedTrainer>(*spec, std::move(gs));
		} else if (search_kind != NULL || auto_search) {
			pgml::Options args;
			pgml_options_to_core(sa, nsa, args);
			pgml::SearchSpec ss;
			if (auto_search) {
				ss = pgml::auto_search(task, args);
			} else {
				std::vector<std::pair<std::string, pgml::OptionValue>> params;
				for (int i = 0; i < nsp; i++) {
					pgml::Options one;
					pgml_options_to_core(&sp[i], 1, one);
					params.push_back(*one.begin());
				}
				ss = pgml::parse_search(search_kind, params, args, *spec);
			}
			if (ss.metric.empty() && deploy_metric != NULL)
				ss.metric = deploy_metric;
			st->search = std::make_unique<pgml::Search>(*spec, std::move(ss));
		} else {
			st->trainer = std::make_unique<pgml::Trainer>(*spec);
		}
	});
	pgml_progress_begin("ml_train", name, relid, "reading"); /* progress */
	double read_ms, total_ms;
	bool strict = false;
	Source source;
	source.version = 1;
	source.relation = rel_sql;
	source.oid = relid;
	source.system = pgml_system_identifier();
	source.snapshot = has_row_snapshots(relid) ? pgml_snapshot_record(&strict) : NULL;
	pgml_set_read_from(relid, filtered_from(relid, NULL, strict ? source.snapshot : NULL));
	if (st->search) {
		run_search(st, relid, relname, features, nfeatures, has_target ? &target : nullptr);
		int ntrials = static_cast<int>(st->trials.size());
		if (auto_search) {
			choice_note = psprintf("The task is %s because %s; %d candidates compared by cross-validation (as on "
								   "every relation of at most %.0f rows): %s.",
								   pgml::task_name(task), why, ntrials, pgml::kAutoSearchRows, st->search_summary.c_str());
			/* DEBUG1: the result's algorithm, report->>'algorithm_choice' and ml_trials() say it */
			ereport(DEBUG1, (errmsg("pg_ml chose %s for %s", pgml::algorithm_name(spec->algorithm), pgml::task_name(task)),
							 errdetail("%s", choice_note), errhint("ml_trials() shows every candidate's fold scores.")));
		} else {
			ereport(NOTICE, (errmsg("search chose trial %d of %d", st->chosen_trial, ntrials),
							 errdetail("%s.", st->search_summary.c_str()),
							 errhint("ml_trials() shows every trial's hyperparameters and fold scores.")));
		}
		PGML_CORE({
			if (choice_note != NULL)
				spec->algorithm_choice = choice_note;
			st->trainer = std::make_unique<pgml::Trainer>(*spec);
		});
		algorithm = spec->algorithm;
	}
	report_planned_iterations(spec->algorithm, spec->hyperparams, nullptr); /* progress */
	if (ngroup > 0) {
		/* one scan: each row to its group's trainer */
		source.rows = pgml_grouped_training(st->grouped.get(), relid, features, nfeatures, group_cols, ngroup,
											has_target ? &target : nullptr, &st->model, nullptr);
		if (source.rows == 0)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("relation \"%s\" has no rows", relname),
							errhint("Train on a relation with labelled rows.")));
		describe_model(st);
		for (const auto &w : st->grouped->result().warnings)
			ereport(WARNING, (errcode(ERRCODE_WARNING), errmsg("%s", w.message.c_str()), errdetail("%s", w.detail.c_str()),
							  errhint("%s", w.hint.c_str())));
		read_ms = total_ms = elapsed_ms(t_start);
	} else {
		source.rows = run_training(st, relid, relname, features, nfeatures, has_target ? &target : nullptr, nullptr,
								   t_start, &read_ms, &total_ms);
	}
	pgml_set_read_from(InvalidOid, NULL);
	const pgml::TrainResult &res = st->result();
	source.fingerprint = pstrdup(res.fingerprint.c_str());
	StringInfoData sources;
	initStringInfo(&sources);
	appendStringInfoChar(&sources, '[');
	append_source(&sources, &source);
	appendStringInfoChar(&sources, ']');

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
		if (deploy_metric == NULL) {
			char buf[64];
			PGML_CORE(snprintf(buf, sizeof buf, "%s",
							   pgml::default_deploy_metric(st->model->task, st->model->n_classes()).c_str()));
			deploy_metric = pstrdup(buf);
		}
		pgml_store_deploy_metric(model_id, deploy_metric);
		insert_version(st, model_id, 1, 0, "train", rel_sql, caller, read_ms, total_ms - read_ms, total_ms, sources.data,
					   NULL);
		pgml_record_deploy(model_id, 1, "first version", caller);
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
	}

	if (res.rows_test == 0)
		ereport(NOTICE, (errmsg("no rows were held out for testing; metrics are on the training rows"),
						 errhint("Measure on other rows with ml_evaluate().")));
	Datum values[12];
	bool nulls[12] = {false};
	values[0] = Int64GetDatum(model_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = Int32GetDatum(1);
	values[3] = CStringGetTextDatum(pgml::task_name(st->model->task));
	values[4] = CStringGetTextDatum(pgml::algorithm_name(algorithm));
	/* headline metrics: the test metrics, or the training metrics without test rows */
	Datum headline = DirectFunctionCall2(jsonb_object_field, pgml_jsonb_from_cstring(res.metrics_json.c_str()),
										 CStringGetTextDatum(res.rows_test > 0 ? "test" : "train"));
	values[5] = CStringGetTextDatum(deploy_metric);
	{
		Jsonb *jb = DatumGetJsonbP(headline);
		char *text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
		double score = NAN;
		PGML_CORE(score = pgml::json_number_field(text, deploy_metric));
		nulls[6] = std::isnan(score);
		if (!nulls[6])
			values[6] = DirectFunctionCall2(numeric_round, DirectFunctionCall1(float8_numeric, Float8GetDatum(score)),
											Int32GetDatum(4));
	}
	values[7] = Int64GetDatum(res.rows_train);
	values[8] = Int64GetDatum(res.rows_test);
	values[9] = BoolGetDatum(true);
	values[10] = headline;
	values[11] = CStringGetTextDatum(res.rows_test > 0 ? "test" : "train");
	pgml_progress_end(); /* progress */
	if (is_query)
		pgml_source_drop(relid);
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
	bool can_continue = false, exact = false;
	PGML_CORE({
		can_continue = pgml::model_can_continue(*base);
		exact = pgml::model_continues_exactly(*base);
	});
	const char *algo = pgml::algorithm_name(base->algorithm);

	/* another algorithm or other hyperparameters: a new model of the same columns, task and classes
	   under the same name (one model, many experiments), refitted on the rows */
	const pgml::AlgorithmDef *new_def = nullptr;
	if (PG_NARGS() > 7 && !PG_ARGISNULL(7)) {
		char *name = text_to_cstring(PG_GETARG_TEXT_PP(7));
		new_def = pgml::find_algorithm(name);
		if (new_def == nullptr)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown algorithm \"%s\"", name),
							errhint("Available: %s.", pgml::algorithm_list().c_str())));
		if (!new_def->supports(base->task))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("algorithm %s does not do %s", name, pgml::task_name(base->task)),
							errdetail("Model \"%s\" is a %s model; a retrain keeps its task.", ref.name,
									  pgml::task_name(base->task)),
							errhint("Choose an algorithm for %s, or train a new model with ml_train().",
									pgml::task_name(base->task))));
	}
	PgmlOption *hp = NULL;
	int nhp = PG_NARGS() > 8 && !PG_ARGISNULL(8) ? pgml_flatten_options(PG_GETARG_JSONB_P(8), "hyperparams", &hp) : 0;
	bool replace = new_def != nullptr || (PG_NARGS() > 8 && !PG_ARGISNULL(8));
	/* why a retrain refits from scratch (the confirmation) */
	const char *refit_why =
		!replace ? psprintf("%s has no exact incremental form", algo)
		: new_def != nullptr && new_def->id != base->algorithm
			? psprintf("the algorithm changes from %s to %s", algo, new_def->name.c_str())
			: psprintf("the hyperparameters of %s change", algo);
	/* a per-group model: a refit of every group from the relation (one scan), for now */
	if (base->grouped && (strcmp(mode, "refit") != 0 || replace))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("model \"%s\" has one model per group and is retrained with mode => 'refit' only",
							   ref.name),
						errdetail("A retrain of a per-group model trains every group from scratch on the relation, "
								  "with the version's algorithm and hyperparameters."),
						errhint("Use mode => 'refit' on a relation holding every group's rows.")));
	if (replace) {
		if (strcmp(mode, "incremental") == 0)
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("an incremental retrain cannot change the algorithm or the hyperparameters"),
							errdetail("It adds the new rows to version %d as it is, and %s.", ref.deployed_version,
									  refit_why),
							errhint("Use mode => 'auto' to refit on the rows version %d learned from and the new ones, "
									"or mode => 'refit' to train on the new relation alone.",
									ref.deployed_version)));
		can_continue = false;
		exact = false;
	}

	/* the relation must carry every column of the model with a compatible type */
	const char *display;
	bool is_query;
	Oid relid = pgml_source_oid(relname, &display, &is_query);
	relname = pstrdup(display);
	Relation rel = relation_open(relid, AccessShareLock);
	TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(rel));
	relation_close(rel, NoLock);
	char *rel_sql = pgml_relation_sql_name(relid);
	int nfeatures = static_cast<int>(base->features.size());
	PgmlColumn *features = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * nfeatures));
	PgmlColumn target;
	pgml_match_columns(desc, base, relname, ref.name, features, &target, true);

	/*
	 * What this version learns (the README's retrain table): the rows the deployed version
	 * learned from are in `sources`; the new version keeps them (exact incremental, continued
	 * training) or reads them again (refit_all), unless mode => 'refit' asks for the relation alone.
	 */
	Source *src;
	int nsrc = load_sources(ref.id, ref.deployed_version, &src);
	char *system = pgml_system_identifier();
	bool strict = false;
	char *seen = pgml_snapshot_record(&strict);
	bool rel_snap = has_row_snapshots(relid);
	const char *resolved;
	StringInfoData why; /* why this mode, for the confirmation and the report */
	initStringInfo(&why);
	Oid *reads = static_cast<Oid *>(palloc(sizeof(Oid) * (nsrc + 1)));
	int nreads = 0;
	const Source *prev_read = find_source(src, nsrc, relid, system); /* relid read before, here */
	bool only_new = false; /* the read takes the rows of relid no version learned yet */
	if (strcmp(mode, "refit") == 0) {
		resolved = "refit";
		appendStringInfo(&why, "mode => 'refit': from scratch on %s alone", rel_sql);
		if (nsrc > 0 && !(nsrc == 1 && src[0].oid == relid && prev_read != NULL))
			appendStringInfo(&why, "; the rows version %d learned from elsewhere are not in this version",
							 ref.deployed_version);
	} else if (strcmp(mode, "incremental") == 0 || (exact && !allow_new_classes)) {
		if (!can_continue)
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("%s cannot be retrained incrementally", algo),
							errdetail("Linear models kept as sufficient statistics and naive_bayes add rows exactly; "
									  "gradient_boosting adds boosting rounds, mlp and kmeans warm-start. %s has no "
									  "such update.",
									  algo),
							errhint("Use mode => 'auto' to refit on the rows version %d learned from and the new ones, "
									"or mode => 'refit' to train on %s alone.",
									ref.deployed_version, rel_sql)));
		resolved = exact ? "incremental" : "continue";
		only_new = true;
		if (exact)
			appendStringInfo(&why, "%s adds the new rows to the exact statistics of version %d", algo,
							 ref.deployed_version);
		else
			appendStringInfo(&why, "%s continues training version %d on the new rows (%s)", algo,
							 ref.deployed_version,
							 base->algorithm == pgml::Algorithm::GradientBoosting ? "added boosting rounds" : "warm start");
	} else {
		/* auto without an exact update: refit on the earlier rows and the new ones when they can be read */
		char *problem = nsrc == 0 ? psprintf("version %d does not record which rows it learned from (it was imported, "
											 "or trained before pg_ml 0.3.0)",
											 ref.deployed_version)
								  : NULL;
		for (int i = 0; i < nsrc && problem == NULL; i++) {
			bool dup = false;
			for (int j = 0; j < nreads; j++)
				dup = dup || reads[j] == src[i].oid;
			if (dup)
				continue;
			problem = source_problem(&src[i], base, system);
			if (problem == NULL)
				reads[nreads++] = src[i].oid;
		}
		if (problem == NULL) {
			resolved = "refit_all";
			if (exact)
				appendStringInfo(&why, "allow_new_classes => true: an exact update of %s cannot add a class, so it is "
									   "refitted from scratch on the rows version %d learned from and the new ones",
								 algo, ref.deployed_version);
			else
				appendStringInfo(&why, "%s: refit from scratch on the rows version %d learned from and the new ones",
								 refit_why, ref.deployed_version);
			bool dup = false;
			for (int j = 0; j < nreads; j++)
				dup = dup || reads[j] == relid;
			if (!dup)
				reads[nreads++] = relid;
			else if (!replace && prev_read != NULL && prev_read->snapshot != NULL && rel_snap &&
					 pgml_snapshot_usable(prev_read->snapshot) &&
					 !from_has_rows(filtered_from(relid, prev_read->snapshot, strict ? seen : NULL)))
				nothing_new(relname, &ref, prev_read, rel_sql);
		} else if (can_continue) {
			resolved = exact ? "incremental" : "continue";
			only_new = true;
			appendStringInfo(&why, "%s continues training version %d on the new rows (%s), because %s", algo,
							 ref.deployed_version,
							 base->algorithm == pgml::Algorithm::GradientBoosting ? "added boosting rounds" : "warm start",
							 problem);
		} else {
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							errmsg("cannot retrain model \"%s\" on the rows it learned from and the new ones", ref.name),
							errdetail("%s, so a retrain refits on all the rows; but %s.",
									  replace ? refit_why : psprintf("%s has no incremental form", algo), problem),
							errhint("Retrain on a relation holding the earlier rows and the new ones, or use mode => "
									"'refit' to train on %s alone.",
									rel_sql)));
		}
	}
	/* the rows of relid this read takes */
	const char *learned = NULL;
	if (only_new && prev_read != NULL) {
		if (prev_read->snapshot == NULL || !rel_snap || !pgml_snapshot_usable(prev_read->snapshot))
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							errmsg("cannot tell which rows of \"%s\" version %d of model \"%s\" has learned", relname,
								   ref.deployed_version, ref.name),
							errdetail("%s",
									  prev_read->snapshot == NULL
										  ? (rel_snap ? "The version was trained before pg_ml 0.3.0 recorded that."
													  : "Only a table's rows carry the transaction that inserted them; "
														"this relation is a view, materialized view or foreign table.")
										  : "The version read it more than 2^31 transactions ago."),
							errhint("Retrain on a relation holding only the new rows, or use mode => 'refit' to train "
									"from scratch on \"%s\".",
									relname)));
		learned = prev_read->snapshot;
	}
	if (strcmp(resolved, "refit_all") == 0 && nreads > 1)
		pgml_set_read_from(relid, union_from(reads, nreads, features, nfeatures, base->has_target() ? &target : nullptr,
											  strict ? seen : NULL));
	else
		pgml_set_read_from(relid, filtered_from(relid, learned, strict && rel_snap ? seen : NULL));
	if (learned != NULL && !from_has_rows(pgml_from_item(relid))) {
		pgml_set_read_from(InvalidOid, NULL);
		if (pgml_retrain_nothing_new_is_ok) {
			/* an auto-retrain job whose rows an earlier job learned: nothing to do, no version */
			Datum values[12];
			bool nulls[12] = {false, true, false, false, true, true, true, true, false, false, true, true};
			values[0] = Int64GetDatum(ref.id);
			values[2] = Int32GetDatum(ref.deployed_version);
			values[3] = CStringGetTextDatum(resolved);
			values[8] = BoolGetDatum(false);
			values[9] = CStringGetTextDatum("no new rows");
			PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), values, nulls)));
		}
		nothing_new(relname, &ref, prev_read, rel_sql);
	}
	bool incremental = strcmp(resolved, "incremental") == 0 || strcmp(resolved, "continue") == 0;

	TrainState *st = pgml_new_owned<TrainState>();
	PGML_CORE({
		st->spec.test_size = test_size;
		st->spec.seed = static_cast<uint64_t>(seed);
		st->spec.memory_limit = static_cast<size_t>(pgml_max_memory_mb) << 20;
		st->spec.threads = pgml_max_threads;
		st->spec.progress = pgml_progress_core; /* progress */
		st->spec.allow_new_classes = allow_new_classes;
		if (replace) {
			st->spec.replace_algorithm = true;
			st->spec.algorithm = new_def != nullptr ? new_def->id : base->algorithm;
			pgml_options_to_core(hp, nhp, st->spec.hyperparams);
		}
		if (base->grouped)
			st->grouped = grouped_refit(&st->spec, *base, allow_new_classes);
		else
			st->trainer = std::make_unique<pgml::Trainer>(st->spec, *base, incremental);
	});
	{
		/* the confirmation's drift: the rows read against the parent version's profile */
		pgml::Profile *parent_profile = pgml_load_profile(ref.id, ref.deployed_version);
		if (parent_profile != nullptr)
			PGML_CORE({
				if (st->grouped)
					st->grouped->set_drift_reference(*parent_profile);
				else
					st->trainer->set_drift_reference(*parent_profile);
			});
	}
	pgml_progress_begin("ml_retrain", ref.name, relid, "reading"); /* progress */
	if (!incremental) { /* a refit's planned iterations (a continued fit numbers them after the base's) */
		pgml::Algorithm a = st->spec.replace_algorithm ? st->spec.algorithm : base->algorithm;
		report_planned_iterations(a, st->spec.hyperparams, a == base->algorithm ? &base->hyperparams : nullptr);
	}
	double read_ms, total_ms;
	int64 rows_read;
	if (st->grouped) {
		/* every group refitted in one scan; both versions scored on the same held-out rows */
		int ngroup = static_cast<int>(base->grouped->columns.size());
		rows_read = pgml_grouped_training(st->grouped.get(), relid, features, nfeatures - ngroup,
										  features + nfeatures - ngroup, ngroup, &target, &st->model, base);
		if (rows_read == 0)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("relation \"%s\" has no rows", relname),
							errhint("Train on a relation with labelled rows.")));
		describe_model(st);
		read_ms = total_ms = elapsed_ms(t_start);
	} else {
		rows_read = run_training(st, relid, relname, features, nfeatures, base->has_target() ? &target : nullptr, base,
								 t_start, &read_ms, &total_ms);
	}
	pgml_set_read_from(InvalidOid, NULL);
	const pgml::TrainResult &res = st->result();

	/* the same rows twice: a relation (or a copy of it) whose rows a version read before */
	if (only_new)
		for (int i = 0; i < nsrc; i++)
			if (src[i].fingerprint != NULL && strcmp(src[i].fingerprint, res.fingerprint.c_str()) == 0 &&
				src[i].rows == rows_read)
				ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
								errmsg("model \"%s\" has already learned the rows of \"%s\"", ref.name, relname),
								errdetail("Version %d read the same %lld rows (data fingerprint %s) from %s.",
										  src[i].version, (long long) rows_read, res.fingerprint.c_str(),
										  src[i].relation),
								errhint("Nothing is new to learn. To train from scratch on these rows, use mode => "
										"'refit'.")));

	/* what the new version learned from: the earlier reads it builds on, and this one */
	StringInfoData sources;
	initStringInfo(&sources);
	appendStringInfoChar(&sources, '[');
	int nout = 0;
	int32 new_version; /* its number, which the sources name */
	{
		Oid save_user;
		int save_sec;
		pgml_catalog_begin(&save_user, &save_sec);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "pg_ml: SPI_connect failed");
		new_version = next_version(ref.id);
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
	}
	if (only_new)
		for (int i = 0; i < nsrc; i++)
			if (&src[i] != prev_read) {
				if (nout++)
					appendStringInfoString(&sources, ", ");
				append_source(&sources, &src[i]);
			}
	bool refit_all = strcmp(resolved, "refit_all") == 0;
	for (int r = 0; r < (refit_all ? nreads : 1); r++) {
		Oid o = refit_all ? reads[r] : relid;
		Source s;
		s.version = new_version;
		s.relation = pgml_relation_sql_name(o);
		s.oid = o;
		s.system = system;
		s.snapshot = has_row_snapshots(o) ? seen : NULL;
		bool whole = !refit_all || nreads == 1;
		s.rows = whole ? rows_read : -1; /* of this read (the new rows only, for an incremental one) */
		s.fingerprint = whole ? pstrdup(res.fingerprint.c_str()) : NULL;
		if (nout++)
			appendStringInfoString(&sources, ", ");
		append_source(&sources, &s);
	}
	appendStringInfoChar(&sources, ']');
	/* the confirmation's and the report's account of it */
	StringInfoData learned_text;
	initStringInfo(&learned_text);
	if (refit_all) {
		appendStringInfo(&learned_text, "refit_all: %lld rows of ", (long long) rows_read);
		for (int r = 0; r < nreads; r++)
			appendStringInfo(&learned_text, "%s%s", r == 0 ? "" : r == nreads - 1 ? " and " : ", ",
							 pgml_relation_sql_name(reads[r]));
	} else if (only_new) {
		appendStringInfo(&learned_text, "%s: %lld new rows of %s", resolved, (long long) rows_read, rel_sql);
		if (prev_read != NULL)
			appendStringInfo(&learned_text, " (added since version %d read it)", prev_read->version);
	} else {
		appendStringInfo(&learned_text, "refit: %lld rows of %s", (long long) rows_read, rel_sql);
	}
	appendStringInfo(&learned_text, "; %s", why.data);
	StringInfoData report_extra;
	initStringInfo(&report_extra);
	appendStringInfo(&report_extra, "{\"mode\": \"%s\", \"requested\": ", resolved);
	pgml_json_string(&report_extra, mode);
	appendStringInfo(&report_extra, ", \"rows_read\": %lld, \"why\": ", (long long) rows_read);
	pgml_json_string(&report_extra, why.data);
	appendStringInfoChar(&report_extra, '}');

	/* deploy? The model's deploy metric, read back from both versions' metrics on the same rows
	 * (the new version's as stored), compared in its direction (src/core/deploy_metric.hpp) */
	bool do_deploy;
	char *reason;
	char *comparison = NULL;
	if (res.compared) {
		char *metric = pgml_deploy_metric_of(ref.id, base);
		bool better = false;
		char buf[1024];
		char vbuf[1024];
		int prev_version = ref.deployed_version;
		int64 rows_test = res.rows_test;
		PGML_CORE({
			double now = pgml::json_number_field(res.test_json, metric);
			double prev = pgml::json_number_field(res.previous_metrics_json, metric);
			pgml::DeployDecision d = pgml::decide_deploy(metric, now, prev, prev_version, static_cast<long long>(rows_test));
			better = d.deploy;
			snprintf(buf, sizeof buf, "%s", d.comparison.c_str());
			snprintf(vbuf, sizeof vbuf, "%s", d.reason().c_str());
		});
		comparison = pstrdup(buf);
		do_deploy = better;
		reason = pstrdup(vbuf);
	}
	if (strcmp(deploy, "always") == 0) {
		do_deploy = true;
		reason = comparison != NULL ? psprintf("deploy => 'always': deployed; %s", comparison)
									: pstrdup("deploy => 'always': deployed");
	} else if (strcmp(deploy, "never") == 0) {
		do_deploy = false;
		reason = comparison != NULL ? psprintf("deploy => 'never': not deployed; %s", comparison)
									: pstrdup("deploy => 'never': not deployed");
	} else if (!res.compared) {
		do_deploy = true;
		reason = pstrdup(res.rows_test == 0 ? "no held-out rows to compare on (test_size => 0): deployed"
											: "the versions could not be compared on the same rows: deployed");
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
		version = new_version; /* numbered before the sources were written; the model row is locked */
		insert_version(st, ref.id, version, ref.deployed_version, resolved, rel_sql, caller, read_ms,
					   total_ms - read_ms, total_ms, sources.data, report_extra.data);
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

	Datum values[12]; /* ml.retrain (what the jobs call) has no drift column: 11 */
	bool nulls[12] = {false};
	values[0] = Int64GetDatum(ref.id);
	values[1] = Int32GetDatum(version);
	values[2] = Int32GetDatum(ref.deployed_version);
	values[3] = CStringGetTextDatum(resolved);
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
	/* test_size => 0: the metrics are the training rows' (the row has no metrics_from; its reason says it) */
	values[9] = CStringGetTextDatum(res.rows_test > 0 || strstr(reason, "test_size") != NULL
										? reason
										: psprintf("%s; metrics are on the training rows (test_size => 0)", reason));
	values[10] = CStringGetTextDatum(learned_text.data);
	nulls[11] = res.drift_json.empty();
	values[11] = nulls[11] ? (Datum) 0 : pgml_jsonb_from_cstring(res.drift_json.c_str());
	pgml_progress_end(); /* progress */
	if (is_query)
		pgml_source_drop(relid);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), values, nulls)));
}
