// pg_ml glue: ml_monitor (drift of a relation against a version's training profile, and its
// metrics against the version's test metrics) and reading a version's profile (monitor.hpp).
#include "../core/deploy_metric.hpp"
#include "../core/monitor.hpp"

#include "pg_ml.hpp"

#include <memory>
#include <string>
#include <vector>

#include "deploy_metric.hpp"
#include "progress.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(pgml_monitor);
}

namespace {

// One feature of a stored profile, read by SPI into palloc'd plain arrays.
struct ProfileColumn {
	char *name;
	bool categorical, binned;
	int64 rows;
	double null_share, other_share;
	int nedges, nshares, nlevels;
	double *edges, *shares;
	char **levels;
};

double *float8_array(Datum d, int *n)
{
	Datum *elems;
	bool *nulls;
	deconstruct_array(DatumGetArrayTypeP(d), FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, n);
	double *out = static_cast<double *>(palloc(sizeof(double) * Max(*n, 1)));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? NAN : DatumGetFloat8(elems[i]);
	return out;
}

char **text_array(Datum d, int *n)
{
	Datum *elems;
	bool *nulls;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	char **out = static_cast<char **>(palloc(sizeof(char *) * Max(*n, 1)));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
	return out;
}

// The profile's columns as the core's Profile (inside PGML_CORE).
void profile_to_core(const ProfileColumn *cols, int n, int64 rows, const char *from, pgml::Profile &p)
{
	p.rows = rows;
	p.from = from;
	for (int i = 0; i < n; i++) {
		const ProfileColumn &c = cols[i];
		pgml::FeatureProfile f;
		f.name = c.name;
		f.categorical = c.categorical;
		f.binned = c.binned;
		f.rows = c.rows;
		f.null_share = c.null_share;
		f.other_share = c.other_share;
		f.edges.assign(c.edges, c.edges + c.nedges);
		f.shares.assign(c.shares, c.shares + c.nshares);
		for (int k = 0; k < c.nlevels; k++)
			f.levels.emplace_back(c.levels[k]);
		const size_t want = c.categorical ? f.levels.size() : f.binned ? f.edges.size() + 1 : 1;
		if (f.shares.size() != want)
			throw pgml::Error(pgml::ErrorCode::DataCorrupted,
			                  "the training profile of column \"" + f.name + "\" is malformed",
			                  std::to_string(f.shares.size()) + " shares for " + std::to_string(want) + " bins.",
			                  "Retrain the model to store a new profile.");
		p.features.push_back(std::move(f));
	}
}

} // namespace

/*
 * pgml_load_profile: the stored profile of a version as a core Profile owned by
 * CurrentMemoryContext, or NULL when the version has none (trained before pg_ml 0.3.0's
 * profiles, or imported). With metrics: also the version's stored metrics as JSON text ("test",
 * or "train" when it held no rows out: *which says), NULL when none. Reads the catalog as its owner.
 */
pgml::Profile *pgml_load_profile(int64 model_id, int32 version, char **metrics, const char **which)
{
	Oid save_user;
	int save_sec;
	MemoryContext cxt = CurrentMemoryContext;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t[2] = {INT8OID, INT4OID};
	Datum v[2] = {Int64GetDatum(model_id), Int32GetDatum(version)};
	if (SPI_execute_with_args(
	        "SELECT (profile OPERATOR(pg_catalog.->>) 'rows')::pg_catalog.int8, "
	        "profile OPERATOR(pg_catalog.->>) 'from', profile IS NULL, metrics OPERATOR(pg_catalog.?) 'test', "
	        "COALESCE(metrics OPERATOR(pg_catalog.->) 'test', metrics OPERATOR(pg_catalog.->) "
	        "'train')::pg_catalog.text "
	        "FROM ml.versions "
	        "WHERE model_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
	        2, t, v, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: profile lookup failed");
	bool isnull, none = true;
	int64 rows = 0;
	char *from = NULL;
	if (SPI_processed > 0) {
		HeapTuple tup = SPI_tuptable->vals[0];
		TupleDesc desc = SPI_tuptable->tupdesc;
		none = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		Datum d = SPI_getbinval(tup, desc, 1, &isnull);
		rows = isnull ? 0 : DatumGetInt64(d);
		char *s = SPI_getvalue(tup, desc, 2);
		from = MemoryContextStrdup(cxt, s != NULL ? s : "");
		if (metrics != NULL) {
			bool test = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
			s = SPI_getvalue(tup, desc, 5);
			*metrics = s != NULL ? MemoryContextStrdup(cxt, s) : NULL;
			*which = test ? "test" : "train";
		}
	}
	if (none) {
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
		return nullptr;
	}
	if (SPI_execute_with_args(
	        "SELECT f OPERATOR(pg_catalog.->>) 'name', f OPERATOR(pg_catalog.->>) 'kind', "
	        "(f OPERATOR(pg_catalog.->>) 'rows')::pg_catalog.int8, (f OPERATOR(pg_catalog.->>) "
	        "'null_share')::pg_catalog.float8, "
	        "COALESCE((f OPERATOR(pg_catalog.->>) 'other_share')::pg_catalog.float8, 0), "
	        "pg_catalog.jsonb_typeof(f OPERATOR(pg_catalog.->) 'edges') OPERATOR(pg_catalog.=) 'array', "
	        "ARRAY(SELECT e::pg_catalog.float8 FROM pg_catalog.jsonb_array_elements_text(CASE WHEN "
	        "pg_catalog.jsonb_typeof(f OPERATOR(pg_catalog.->) 'edges') OPERATOR(pg_catalog.=) 'array' THEN f "
	        "OPERATOR(pg_catalog.->) 'edges' "
	        "ELSE '[]'::pg_catalog.jsonb END) e), "
	        "ARRAY(SELECT e::pg_catalog.float8 FROM pg_catalog.jsonb_array_elements_text(f OPERATOR(pg_catalog.->) "
	        "'shares') e), "
	        "ARRAY(SELECT e FROM pg_catalog.jsonb_array_elements_text(COALESCE(f OPERATOR(pg_catalog.->) 'levels', "
	        "'[]'::pg_catalog.jsonb)) e) "
	        "FROM ml.versions v, pg_catalog.jsonb_array_elements(v.profile OPERATOR(pg_catalog.->) 'features') "
	        "WITH ORDINALITY AS x(f, i) "
	        "WHERE v.model_id OPERATOR(pg_catalog.=) $1 AND v.version OPERATOR(pg_catalog.=) $2 ORDER BY x.i",
	        2, t, v, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: profile lookup failed");
	int n = static_cast<int>(SPI_processed);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ProfileColumn *cols = static_cast<ProfileColumn *>(palloc0(sizeof(ProfileColumn) * Max(n, 1)));
	for (int i = 0; i < n; i++) {
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		ProfileColumn &c = cols[i];
		char *name = SPI_getvalue(tup, desc, 1), *kind = SPI_getvalue(tup, desc, 2);
		c.name = pstrdup(name != NULL ? name : "");
		c.categorical = kind != NULL && strcmp(kind, "categorical") == 0;
		c.rows = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		Datum d = SPI_getbinval(tup, desc, 4, &isnull);
		c.null_share = isnull ? 0 : DatumGetFloat8(d);
		c.other_share = DatumGetFloat8(SPI_getbinval(tup, desc, 5, &isnull));
		d = SPI_getbinval(tup, desc, 6, &isnull);
		c.binned = !isnull && DatumGetBool(d);
		c.edges = float8_array(SPI_getbinval(tup, desc, 7, &isnull), &c.nedges);
		c.shares = float8_array(SPI_getbinval(tup, desc, 8, &isnull), &c.nshares);
		c.levels = text_array(SPI_getbinval(tup, desc, 9, &isnull), &c.nlevels);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	pgml::Profile *p = pgml_new_owned<pgml::Profile>();
	PGML_CORE(profile_to_core(cols, n, rows, from, *p));
	return p;
}

namespace {

// Everything C++ an ml_monitor call holds; freed with its memory context.
struct MonitorState {
	std::unique_ptr<pgml::DriftMonitor> drift;
	std::unique_ptr<pgml::Evaluator> evaluator;
	std::vector<pgml::DriftMonitor::Drift> drifts;
	std::string metrics_json;
	// the metrics compared: name, value on the relation, the version's (test) value
	std::vector<std::string> metric_names;
	std::vector<double> metric_values, metric_stored;
};

void monitor_consume(void *arg, const pgml::Batch *batch)
{
	MonitorState *st = static_cast<MonitorState *>(arg);
	PGML_CORE({
		st->drift->add_batch(*batch, pgml_interrupt_pending);
		if (st->evaluator)
			st->evaluator->add_batch(*batch, pgml_interrupt_pending);
	});
	pgml_progress_rows(batch->nrows);
}

} // namespace

/*
 * ml_monitor(model, relation, version) -> setof (name, kind, psi, severity, rows, null_share,
 * train_null_share, unseen_share, value, stored_value, change, detail): one row per feature
 * (the drift of the relation's rows against the version's training profile) and, when the
 * relation has the target column, one row per compared metric (the deploy metric, and the
 * primary metric when it differs) against the version's test metric.
 */
Datum pgml_monitor(PG_FUNCTION_ARGS)
{
	PgmlModelRef ref;
	int32 version;
	pgml::Model *model = pgml_load_version_arg(fcinfo, "ml_monitor", 2, &ref, &version);
	char *stored = NULL; /* the version's test (or training) metrics */
	const char *stored_which = NULL;
	pgml::Profile *profile = pgml_load_profile(ref.id, version, &stored, &stored_which);
	if (profile == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("version %d of model \"%s\" has no training profile", version, ref.name),
		                errdetail("Versions trained before pg_ml 0.3.0, and imported ones, have none."),
		                errhint("Retrain the model (ml_retrain) to make a version with a profile.")));

	char *relname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Oid relid = pgml_relation_oid(relname);
	TupleDesc desc = pgml_relation_desc(relid);
	int nfeatures = static_cast<int>(model->features.size());
	PgmlColumn *features = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * nfeatures));
	PgmlColumn target;
	/* labels: the target column when the relation has it (then of the model's type) */
	bool labelled = model->has_target() && pgml_find_column(desc, model->target.name.c_str(), &target);
	pgml_match_columns(desc, model, relname, ref.name, features, &target, false, !labelled);

	char *deploy_metric = labelled ? pgml_deploy_metric_of(ref.id, model) : NULL;

	MonitorState *st = pgml_new_owned<MonitorState>();
	PGML_CORE({
		std::vector<pgml::ColumnInfo> cols(model->features.begin(), model->features.end());
		st->drift = std::make_unique<pgml::DriftMonitor>(*profile, cols);
		if (labelled)
			st->evaluator = std::make_unique<pgml::Evaluator>(*model);
	});
	pgml_progress_begin("ml_monitor", ref.name, relid, "reading");
	int64 rows = pgml_scan_relation(relid, features, nfeatures, labelled ? &target : nullptr, monitor_consume, st);
	pgml_progress_end();
	if (rows == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("relation \"%s\" has no rows", relname),
		                errhint("Monitor a relation holding the rows to compare with the training data.")));
	PGML_CORE({
		st->drifts = st->drift->drifts();
		if (st->evaluator) {
			st->metrics_json = st->evaluator->metrics_json();
			std::string primary = model->task == pgml::Task::Classification ? "accuracy" : "r2";
			std::vector<std::string> names{deploy_metric};
			if (primary != names[0])
				names.push_back(primary);
			for (const std::string &m : names) {
				st->metric_names.push_back(m);
				st->metric_values.push_back(pgml::json_number_field(st->metrics_json, m));
				st->metric_stored.push_back(stored != NULL ? pgml::json_number_field(stored, m) : NAN);
			}
		}
	});

	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	for (size_t i = 0; i < st->drifts.size(); i++) {
		const pgml::DriftMonitor::Drift &d = st->drifts[i];
		Datum values[12];
		bool nulls[12] = {false};
		values[0] = CStringGetTextDatum(d.name.c_str());
		values[1] = CStringGetTextDatum(d.categorical ? "categorical" : "numeric");
		values[2] = Float8GetDatum(d.psi);
		nulls[2] = std::isnan(d.psi);
		nulls[3] = d.severity == nullptr;
		if (d.severity != nullptr)
			values[3] = CStringGetTextDatum(d.severity);
		values[4] = Int64GetDatum(d.rows);
		values[5] = Float8GetDatum(d.null_share);
		values[6] = Float8GetDatum(d.train_null_share);
		values[7] = Float8GetDatum(d.unseen_share);
		nulls[7] = std::isnan(d.unseen_share);
		nulls[8] = nulls[9] = nulls[10] = true;
		values[11] = pgml_jsonb_from_cstring(d.detail_json.c_str());
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (size_t i = 0; i < st->metric_names.size(); i++) {
		Datum values[12];
		bool nulls[12] = {false, false, true, true, false, true, true, true, false, false, false, false};
		const double now = st->metric_values[i], then = st->metric_stored[i];
		values[0] = CStringGetTextDatum(st->metric_names[i].c_str());
		values[1] = CStringGetTextDatum("metric");
		values[4] = Int64GetDatum(rows);
		values[8] = Float8GetDatum(now);
		nulls[8] = std::isnan(now);
		values[9] = Float8GetDatum(then);
		nulls[9] = std::isnan(then);
		values[10] = Float8GetDatum(now - then);
		nulls[10] = nulls[8] || nulls[9];
		values[11] = pgml_jsonb_from_cstring(psprintf("{\"relation\": %s, \"%s\": %s}", st->metrics_json.c_str(),
		                                              stored_which != NULL ? stored_which : "test",
		                                              stored != NULL ? stored : "null"));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}
