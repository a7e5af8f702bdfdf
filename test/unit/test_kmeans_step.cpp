// The Lloyd-step aggregate (kmeans_step.hpp): a state is one Lloyd step's sums whatever way the
// rows are split between partial states; a k-means run fed by the statistics aggregate and the
// step aggregate gives the model a run fed row by row gives; malformed parameters and states
// are errors.
#include <algorithm>
#include <map>

#include "json.hpp"
#include "agg_test_util.hpp"

using namespace pgml_test;
using pgml::Algorithm;
namespace ks = pgml::kmeans_step;
namespace st = pgml::stats;

namespace {

// Columns: x numeric, g categorical (levels "a", "b" kept, NULL its own feature, "zz" unseen), y numeric.
ks::Params small_params(double test_size)
{
	Eigen::MatrixXd centres(3, 5); // features: x, g=a, g=b, g=NULL, y
	centres << -1, 1, -0.5, -0.5, 0, 1, -0.6, 1.4, -0.5, 1, 0, -0.6, -0.6, 2, -1;
	return three_column_step(7, test_size, -1, {0.1, 0.3, 0.3, 0.2, 2.0}, {2.0, 0.5, 0.5, 0.4, 3.0}, centres);
}

struct TestRow {
	bool xnull, gnull, ynull;
	double x, y;
	std::string g;
};

std::vector<TestRow> rows(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::normal_distribution<double> nd(0, 2);
	const char *levels[] = {"a", "b", "zz"};
	std::vector<TestRow> out;
	for (size_t i = 0; i < n; i++) {
		TestRow r;
		r.xnull = rng() % 9 == 0;
		r.gnull = rng() % 7 == 0;
		r.ynull = rng() % 11 == 0;
		r.x = nd(rng);
		r.y = nd(rng) + 2;
		r.g = levels[rng() % 3];
		out.push_back(r);
	}
	return out;
}

void add(ks::Step &step, std::vector<double> &state, const TestRow &r)
{
	bool isnull[3] = {r.xnull, r.gnull, r.ynull};
	double num[3] = {r.x, 0, r.y};
	const char *str[3] = {nullptr, r.g.c_str(), nullptr};
	size_t len[3] = {0, r.g.size(), 0};
	ks::Row row;
	row.isnull = isnull;
	row.num = num;
	row.str = str;
	row.len = len;
	if (state.empty()) {
		state.resize(step.state_length());
		step.init(state.data());
	}
	step.add_row(state.data(), state.size(), row);
}

ks::Step small_step(double test_size) { return ks::Step(small_params(test_size), {"a", "b"}); }

template <typename F>
pgml::ErrorCode error_code(F f)
{
	try {
		f();
	} catch (const pgml::Error &e) {
		return e.code();
	}
	ADD_FAILURE() << "no error";
	return pgml::ErrorCode::Internal;
}

} // namespace

TEST(KMeansStep, StateIsOneLloydStepWhateverThePartition)
{
	const std::vector<TestRow> data = rows(2000, 3);
	const ks::Params p = small_params(0);
	// the step computed directly
	Eigen::MatrixXd S = Eigen::MatrixXd::Zero(3, 5);
	Eigen::VectorXd cnt = Eigen::VectorXd::Zero(3);
	double inertia = 0;
	for (const TestRow &r : data) {
		double x[5] = {r.xnull ? 0.5 : r.x, 0, 0, 0, r.ynull ? -1 : r.y};
		if (r.gnull)
			x[3] = 1;
		else if (r.g == "a")
			x[1] = 1;
		else if (r.g == "b")
			x[2] = 1;
		Eigen::RowVectorXd z(5);
		for (int j = 0; j < 5; j++)
			z(j) = (x[j] - p.center[static_cast<size_t>(j)]) / p.scale[static_cast<size_t>(j)];
		Eigen::Index best;
		double d = (p.centres.rowwise() - z).rowwise().squaredNorm().minCoeff(&best);
		S.row(best) += z;
		cnt(best) += 1;
		inertia += d;
	}
	// one state, and three partial states (round robin, as workers) merged in two orders
	ks::Step step = small_step(0);
	std::vector<double> one;
	std::vector<std::vector<double>> parts(3);
	for (size_t i = 0; i < data.size(); i++) {
		add(step, one, data[i]);
		add(step, parts[i % 3], data[i]);
	}
	std::vector<double> fwd = parts[0], rev = parts[2];
	ks::merge(fwd.data(), fwd.size(), parts[1].data(), parts[1].size());
	ks::merge(fwd.data(), fwd.size(), parts[2].data(), parts[2].size());
	ks::merge(rev.data(), rev.size(), parts[1].data(), parts[1].size());
	ks::merge(rev.data(), rev.size(), parts[0].data(), parts[0].size());
	for (const auto *state : {&one, &fwd, &rev}) {
		ks::Sums s = ks::decode(state->data(), state->size());
		EXPECT_EQ(s.rows_train, 2000);
		EXPECT_EQ(s.rows_test, 0);
		EXPECT_EQ(s.k, 3);
		EXPECT_EQ(s.p, 5);
		for (int c = 0; c < 3; c++) {
			EXPECT_EQ(s.counts(c), cnt(c));
			for (int j = 0; j < 5; j++)
				EXPECT_NEAR(s.sums(c, j), S(c, j), 1e-9 * (1 + std::fabs(S(c, j))));
		}
		EXPECT_NEAR(s.inertia_train, inertia, 1e-9 * inertia);
	}
	EXPECT_GT(cnt.minCoeff(), 100); // every cluster has rows: the test means something
}

TEST(KMeansStep, HeldOutRowsOnlyAddToTheTestInertia)
{
	const std::vector<TestRow> data = rows(3000, 4);
	ks::Step all = small_step(0), split = small_step(0.3);
	std::vector<double> a, b;
	for (const TestRow &r : data) {
		add(all, a, r);
		add(split, b, r);
	}
	ks::Sums sa = ks::decode(a.data(), a.size()), sb = ks::decode(b.data(), b.size());
	EXPECT_EQ(sb.rows_train + sb.rows_test, 3000);
	EXPECT_NEAR(static_cast<double>(sb.rows_test) / 3000, 0.3, 0.05);
	EXPECT_NEAR(sb.inertia_train + sb.inertia_test, sa.inertia_train, 1e-9 * sa.inertia_train);
	EXPECT_EQ(sb.counts.sum(), static_cast<double>(sb.rows_train));
}

TEST(KMeansStep, NonFiniteRowsAreSkippedAndCounted)
{
	ks::Step step = small_step(0);
	std::vector<double> state;
	TestRow r = rows(1, 1)[0];
	r.xnull = false;
	r.x = INFINITY;
	add(step, state, r);
	r.x = 1;
	add(step, state, r);
	ks::Sums s = ks::decode(state.data(), state.size());
	EXPECT_EQ(s.rows_train, 1);
	EXPECT_EQ(s.dropped_nonfinite, 1);
}

TEST(KMeansStep, MalformedParametersAreErrors)
{
	const std::vector<double> good = small_params(0.2).encode();
	EXPECT_NO_THROW(ks::Params::decode(good.data(), good.size()));
	auto bad = [&](size_t i, double v) {
		std::vector<double> p = good;
		p[i] = v;
		return error_code([&] { ks::Params::decode(p.data(), p.size()); });
	};
	const auto invalid = pgml::ErrorCode::InvalidParameter;
	EXPECT_EQ(bad(0, 2), invalid);          // version
	EXPECT_EQ(bad(1, 4), invalid);          // column count vs length
	EXPECT_EQ(bad(2, 0), invalid);          // no features
	EXPECT_EQ(bad(3, 1e9), invalid);        // clusters
	EXPECT_EQ(bad(4, -1), invalid);         // seed
	EXPECT_EQ(bad(5, 1), invalid);          // test_size
	EXPECT_EQ(bad(6, 2), invalid);          // column kind
	EXPECT_EQ(bad(7, 5), invalid);          // first feature out of range
	EXPECT_EQ(bad(8, NAN), invalid);        // impute value
	EXPECT_EQ(bad(14, 9), invalid);         // categorical level count beyond p
	EXPECT_EQ(bad(15, 7), invalid);         // NULL feature out of range
	EXPECT_EQ(bad(6 + 15 + 5, 0), invalid); // scale 0
	EXPECT_EQ(bad(good.size() - 1, INFINITY), invalid); // a centre
	EXPECT_EQ(error_code([&] { ks::Params::decode(good.data(), good.size() - 1); }), invalid);
	EXPECT_EQ(error_code([&] { ks::Params::decode(good.data(), 3); }), invalid);
	// the level list must match the level counts, without duplicates
	EXPECT_EQ(error_code([&] { ks::Step(small_params(0), {"a"}); }), invalid);
	EXPECT_EQ(error_code([&] { ks::Step(small_params(0), {"a", "a"}); }), invalid);
}

TEST(KMeansStep, MalformedStatesAreErrors)
{
	ks::Step step = small_step(0);
	std::vector<double> good;
	for (const TestRow &r : rows(50, 2))
		add(step, good, r);
	const auto corrupted = pgml::ErrorCode::DataCorrupted;
	auto bad = [&](size_t i, double v) {
		std::vector<double> s = good;
		s[i] = v;
		return s;
	};
	for (const std::vector<double> &s :
	     {bad(0, 1), bad(1, 2), bad(2, 4), bad(3, 0), bad(4, -1), bad(4, 1.5), bad(7, -1), bad(10, 1e6), bad(10, NAN)}) {
		EXPECT_EQ(error_code([&] { ks::decode(s.data(), s.size()); }), corrupted);
		std::vector<double> a = good;
		EXPECT_EQ(error_code([&] { ks::merge(a.data(), a.size(), s.data(), s.size()); }), corrupted);
	}
	std::vector<double> sum_nan = bad(20, NAN);
	EXPECT_EQ(error_code([&] { ks::decode(sum_nan.data(), sum_nan.size()); }), corrupted);
	std::vector<double> shorter(good.begin(), good.end() - 1);
	EXPECT_EQ(error_code([&] { ks::decode(shorter.data(), shorter.size()); }), corrupted);
	EXPECT_EQ(error_code([&] { ks::decode(good.data(), 3); }), corrupted);
	// a state of other centres
	ks::Params p2 = small_params(0);
	p2.k = 2;
	p2.centres.conservativeResize(2, 5);
	ks::Step other(p2, {"a", "b"});
	std::vector<double> s2;
	add(other, s2, rows(1, 9)[0]);
	EXPECT_EQ(error_code([&] { ks::merge(good.data(), good.size(), s2.data(), s2.size()); }), corrupted);
	TestRow r = rows(1, 9)[0];
	EXPECT_EQ(error_code([&] { add(step, s2, r); }), corrupted);
}

namespace {

// Four loose blobs in (x1, x2), a categorical column with NULLs that follows the blobs, x3
// with NULLs; no target (clustering).
Table blob_table(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::normal_distribution<double> g(0, 1);
	const char *plans[] = {"gold", "silver", "bronze", "it's"};
	Table t;
	t.features = {numeric_col("x1"), text_col("plan"), numeric_col("x2"), numeric_col("x3")};
	for (size_t i = 0; i < n; i++) {
		size_t b = rng() % 4;
		double x1 = (b % 2) * 8 + g(rng), x2 = (b / 2) * 8 + g(rng), x3 = g(rng);
		bool pnull = rng() % 10 == 0, x3null = rng() % 6 == 0;
		t.add({num(x1), pnull ? null() : str(plans[rng() % 5 == 0 ? (b + 1) % 4 : b]), num(x2),
		       x3null ? null() : num(x3)},
		      null());
	}
	return t;
}

pgml::TrainSpec kmeans_spec(const Table &t, double test_size, int k)
{
	pgml::TrainSpec s;
	s.features = t.features;
	s.algorithm = Algorithm::KMeans;
	s.task = pgml::Task::Clustering;
	s.test_size = test_size;
	s.seed = 5;
	s.hyperparams["k"] = pgml::OptionValue::of_number(k);
	s.hyperparams["n_init"] = pgml::OptionValue::of_number(3);
	return s;
}

Trained train_rows(const pgml::TrainSpec &spec, const Table &t)
{
	pgml::Trainer tr(spec);
	for (size_t b = 0; b < t.size(); b += 100) {
		BatchData bd(t, b, std::min(t.size(), b + 100));
		pgml::Batch batch = bd.batch();
		batch.target = nullptr;
		tr.add_batch(batch, nullptr);
	}
	return finished(tr);
}

// As ml_train with the aggregates: the statistics grouped by the categorical column, then one
// step aggregate per Lloyd step, each over `parts` partial states merged.
Trained train_aggregated(const pgml::TrainSpec &spec, const Table &t, int parts, int *steps)
{
	pgml::Trainer tr(spec);
	EXPECT_TRUE(tr.uses_stats_aggregate());
	std::vector<double> pv = tr.stats_params(0);
	st::Params p = st::Params::decode(pv.data(), pv.size());
	EXPECT_FALSE(p.has_target);
	std::map<std::vector<std::string>, std::vector<double>> groups; // "\x01": NULL
	for (size_t i = 0; i < t.size(); i++) {
		std::vector<std::string> key = group_key(t, i);
		TableRow v(t, i);
		st::Row row; // no target
		static_cast<pgml::aggstate::Features &>(row) = v.features();
		stats_add(groups[key], p, row);
	}
	for (auto &[key, state] : groups) {
		tr.add_stats_group(group_levels(t, key), state.data(), state.size(), nullptr);
	}
	*steps = 0;
	for (;;) {
		std::vector<std::string> levels;
		std::vector<double> params = tr.kmeans_step_params(&levels, nullptr);
		if (params.empty())
			break;
		ks::Step step(ks::Params::decode(params.data(), params.size()), levels);
		std::vector<std::vector<double>> states(static_cast<size_t>(parts));
		for (size_t i = 0; i < t.size(); i++) {
			TableRow v(t, i);
			step_add(states[i % states.size()], step, v.features());
		}
		for (size_t j = 1; j < states.size(); j++)
			ks::merge(states[0].data(), states[0].size(), states[j].data(), states[j].size());
		tr.add_kmeans_step(states[0].data(), states[0].size());
		++*steps;
	}
	return finished(tr);
}

} // namespace

TEST(KMeansStep, AggregateFitEqualsRowFit)
{
	Table t = blob_table(4000, 17);
	pgml::TrainSpec spec = kmeans_spec(t, 0.25, 4);
	Trained rows = train_rows(spec, t);
	for (int parts : {1, 3}) {
		int steps = 0;
		Trained agg = train_aggregated(spec, t, parts, &steps);
		EXPECT_GE(steps, 1);
		EXPECT_LE(steps, ks::kMaxUpdates + 1);
		EXPECT_EQ(agg.result.rows_train, rows.result.rows_train);
		EXPECT_EQ(agg.result.rows_test, rows.result.rows_test);
		EXPECT_EQ(agg.result.fingerprint, rows.result.fingerprint);
		for (const char *split : {"train", "test"}) {
			double a = metric(agg.result.metrics_json, split, "inertia"), r = metric(rows.result.metrics_json, split, "inertia");
			EXPECT_NEAR(a, r, 1e-6 * r) << split;
			// the silhouette of at most 2000 rows: all ~1000 test rows on both paths; 2000 of the
			// 3000 training rows, drawn from rows in another order (the sample's)
			EXPECT_NEAR(metric(agg.result.metrics_json, split, "silhouette"),
			            metric(rows.result.metrics_json, split, "silhouette"), split[1] == 'e' ? 1e-9 : 0.02)
				<< split;
		}
		EXPECT_NE(agg.result.report_json.find("\"reader\":\"aggregate\""), std::string::npos);
		EXPECT_NE(agg.result.report_json.find("\"kmeans_converged\":true"), std::string::npos);
		// the same clusters: both models label every row alike (up to the clusters' order)
		std::map<int, int> mapping;
		std::vector<pgml::Value> vals(4);
		double out[4];
		for (size_t i = 0; i < t.size(); i++) {
			for (size_t c = 0; c < 4; c++) {
				const Cell &cell = t.rows[i][c];
				vals[c].isnull = cell.null;
				vals[c].num = cell.num;
				vals[c].str = cell.str.c_str();
				vals[c].len = cell.str.size();
			}
			int la = agg.model->predict(vals.data(), out, nullptr);
			int lr = rows.model->predict(vals.data(), out, nullptr);
			auto [it, fresh] = mapping.emplace(la, lr);
			EXPECT_EQ(it->second, lr) << "row " << i;
			if (it->second != lr)
				break;
		}
		EXPECT_EQ(mapping.size(), 4u);
		// the importance (between-cluster share of variance) from the moments equals the rows'
		Eigen::VectorXd ia = agg.model->estimator->importance(), ir = rows.model->estimator->importance();
		ASSERT_EQ(ia.size(), ir.size());
		for (Eigen::Index j = 0; j < ia.size(); j++)
			EXPECT_NEAR(ia(j), ir(j), 1e-6);
	}
}

TEST(KMeansStep, MaxIterBoundsTheScans)
{
	Table t = blob_table(1500, 23);
	pgml::TrainSpec spec = kmeans_spec(t, 0, 7); // more clusters than blobs: slow to settle
	spec.hyperparams["max_iter"] = pgml::OptionValue::of_number(1);
	spec.hyperparams["tol"] = pgml::OptionValue::of_number(0);
	int steps = 0;
	Trained agg = train_aggregated(spec, t, 2, &steps);
	EXPECT_EQ(steps, 2); // one update, then the scan that labels the rows with the final centres
	EXPECT_EQ(agg.result.rows_train, 1500);
}

TEST(KMeansStep, OverRelaxedStepsNeverEndAboveTheBestScan)
{
	// no clusters at all: Lloyd creeps, the over-relaxed steps go further and some are rejected
	std::mt19937_64 rng(31);
	std::normal_distribution<double> g(0, 1);
	Table t;
	t.features = {numeric_col("a"), numeric_col("b"), numeric_col("c")};
	// more rows than the sample the starting centres are fitted on
	for (int i = 0; i < ks::kInitSampleRows + 10000; i++)
		t.add({num(g(rng)), num(g(rng)), num(g(rng))}, null());
	pgml::TrainSpec spec = kmeans_spec(t, 0, 6);
	spec.hyperparams["tol"] = pgml::OptionValue::of_number(0);
	int steps = 0;
	Trained agg = train_aggregated(spec, t, 2, &steps);
	EXPECT_LE(steps, ks::kMaxUpdates + 1);
	double best = INFINITY;
	for (const pgml::IterationLog &l : agg.result.log)
		best = std::min(best, l.loss);
	ASSERT_EQ(agg.result.log.size(), static_cast<size_t>(steps));
	// the final scan labels the rows with the final centres: the lowest inertia of all scans
	// (up to rounding: a converged plain step may move the centres by next to nothing)
	EXPECT_NEAR(metric(agg.result.metrics_json, "train", "inertia"), best, 1e-9 * best);
	EXPECT_NEAR(agg.result.log.back().loss, best, 1e-9 * best);
	EXPECT_GT(steps, 3); // the steps did something
	// and no worse than the row reader's full Lloyd runs by more than a little
	Trained rows = train_rows(spec, t);
	EXPECT_LE(best, metric(rows.result.metrics_json, "train", "inertia") * 1.01);
}
