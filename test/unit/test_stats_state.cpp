// The training-statistics aggregate's state (stats_state.hpp): a run fed by aggregate
// groups must give the model a run fed row by row gives, whatever way the rows are split
// between partial states; malformed states and parameters are errors.
#include <algorithm>
#include <map>

#include "json.hpp"
#include "agg_test_util.hpp"

using namespace pgml_test;
using pgml::Algorithm;
namespace st = pgml::stats;

namespace {

// Mixed table: x1 numeric, plan categorical (with NULLs), x2 numeric with NULLs, x3 numeric.
Table mixed_table(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::normal_distribution<double> g(0, 1);
	const char *plans[] = {"gold", "silver", "bronze"};
	Table t;
	t.features = {numeric_col("x1"), text_col("plan"), numeric_col("x2"), numeric_col("x3")};
	t.target = numeric_col("y");
	for (size_t i = 0; i < n; i++) {
		double x1 = g(rng) * 3, x2 = g(rng), x3 = 100 + g(rng) * 10;
		size_t p = rng() % 4;
		bool x2null = rng() % 7 == 0;
		double y = 1.5 * x1 - 2 * (x2null ? 0.3 : x2) + 0.01 * x3 + (p == 0 ? 4 : p == 1 ? 1 : 0) + g(rng) * 0.1;
		t.add({num(x1), p == 3 ? null() : str(plans[p]), x2null ? null() : num(x2), num(x3)}, num(y));
	}
	return t;
}

// A state grown through add_row like the transition function does (the buffer is the array).
struct State {
	std::vector<double> buf;
	void add(const st::Params &p, const st::Row &row) { stats_add(buf, p, row); }
	void merge(const State &other) { stats_merge(buf, other.buf); }
};

void add_table_row(State &s, const st::Params &p, const Table &t, size_t i)
{
	TableRow r(t, i);
	r.row.target_str = nullptr; // a numeric target
	r.row.target_len = 0;
	s.add(p, r.row);
}

// A linear regression's statistics state (a 20% test split) holding every row of t.
State filled_state(const Table &t)
{
	pgml::Trainer tr(make_spec(t, Algorithm::LinearRegression, 0.2));
	std::vector<double> pv = tr.stats_params(0);
	st::Params p = st::Params::decode(pv.data(), pv.size());
	State s;
	for (size_t i = 0; i < t.size(); i++)
		add_table_row(s, p, t, i);
	return s;
}

// Trains through the aggregate path: rows grouped by their categorical values, each group's
// rows spread over `parts` partial states (round robin, as parallel workers would see them)
// that are then combined in the given order.
Trained train_aggregated(const pgml::TrainSpec &spec, const Table &t, int parts, bool reverse_merge,
                         double expected_rows = 0)
{
	pgml::Trainer tr(spec);
	EXPECT_TRUE(tr.uses_stats_aggregate());
	std::vector<double> pv = tr.stats_params(expected_rows);
	st::Params p = st::Params::decode(pv.data(), pv.size());
	std::map<std::vector<std::string>, std::vector<State>> groups; // "\x01" marks NULL
	std::map<std::vector<std::string>, std::vector<const char *>> levels;
	for (size_t i = 0; i < t.size(); i++) {
		std::vector<std::string> key = group_key(t, i);
		auto &states = groups[key];
		states.resize(static_cast<size_t>(parts));
		add_table_row(states[i % static_cast<size_t>(parts)], p, t, i);
	}
	for (auto &[key, states] : groups) {
		State all;
		if (reverse_merge)
			std::reverse(states.begin(), states.end());
		for (const State &s : states)
			all.merge(s);
		tr.add_stats_group(group_levels(t, key), all.buf.data(), all.buf.size(), nullptr);
	}
	return finished(tr);
}

} // namespace

TEST(StatsState, AggregateEqualsRowByRow)
{
	Table t = mixed_table(3000, 5);
	for (Algorithm a : {Algorithm::LinearRegression, Algorithm::Ridge, Algorithm::Lasso}) {
		pgml::TrainSpec spec = make_spec(t, a, 0.25, 11);
		Trained rows = train(spec, t);
		for (int parts : {1, 3}) {
			Trained agg = train_aggregated(spec, t, parts, parts == 3);
			ASSERT_EQ(agg.model->W.size(), rows.model->W.size());
			for (Eigen::Index i = 0; i < rows.model->W.size(); i++)
				EXPECT_NEAR(agg.model->W(i), rows.model->W(i), 1e-9 * (1 + std::fabs(rows.model->W(i))));
			EXPECT_NEAR(agg.model->b(0), rows.model->b(0), 1e-9 * (1 + std::fabs(rows.model->b(0))));
			EXPECT_EQ(agg.result.rows_train, rows.result.rows_train);
			EXPECT_EQ(agg.result.rows_test, rows.result.rows_test);
			EXPECT_EQ(agg.result.fingerprint, rows.result.fingerprint);
			for (const char *m : {"r2", "rmse", "mse", "mae"})
				for (const char *split : {"train", "test"})
					EXPECT_NEAR(metric(agg.result.metrics_json, split, m), metric(rows.result.metrics_json, split, m), 1e-9)
						<< m << " " << split;
			EXPECT_EQ(json_number(agg.result.report_json, {"imputed", "x2"}),
			          json_number(rows.result.report_json, {"imputed", "x2"}));
			EXPECT_NE(agg.result.report_json.find("\"reader\":\"aggregate\""), std::string::npos);
		}
	}
}

TEST(StatsState, SampleIsTheSameWhateverThePartition)
{
	// more rows than the MAE sample holds: the kept rows are the smallest draws overall,
	// so MAE does not depend on how rows were split between states
	Table t = mixed_table(30000, 9);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0.5, 3);
	Trained one = train_aggregated(spec, t, 1, false);
	Trained four = train_aggregated(spec, t, 4, true);
	Trained thresholded = train_aggregated(spec, t, 2, false, 30000); // tau from the expected row count
	for (const char *split : {"train", "test"}) {
		// the same rows (a different sample would differ in the third digit); the coefficients
		// differ in the last bits, as the sums were added in another order
		EXPECT_NEAR(metric(one.result.metrics_json, split, "mae"), metric(four.result.metrics_json, split, "mae"), 1e-12);
		EXPECT_NEAR(metric(one.result.metrics_json, split, "mae"), metric(thresholded.result.metrics_json, split, "mae"), 1e-12);
		EXPECT_EQ(metric(one.result.metrics_json, split, "mae_sample_rows"), 10000);
		EXPECT_NEAR(metric(one.result.metrics_json, split, "r2"), metric(four.result.metrics_json, split, "r2"), 1e-12);
	}
}

TEST(StatsState, IncrementalRetrainFromAggregates)
{
	Table t = mixed_table(2000, 21);
	Table first = t.slice(0, 1200), second = t.slice(1200, 2000);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0.0, 1);
	Trained base = train_aggregated(spec, first, 2, false);
	pgml::Trainer inc(spec, *base.model, true);
	ASSERT_TRUE(inc.uses_stats_aggregate());
	feed(inc, second); // either reader can add to a version's statistics
	auto incremental = inc.finish(nullptr, nullptr);
	Trained all = train(spec, t);
	for (Eigen::Index i = 0; i < all.model->W.size(); i++)
		EXPECT_NEAR(incremental->W(i), all.model->W(i), 1e-8 * (1 + std::fabs(all.model->W(i))));
}

TEST(StatsState, NonFiniteValuesNameTheColumnOrAreDropped)
{
	Table t = mixed_table(200, 2);
	t.rows[50][3] = num(INFINITY);
	t.rows[70][2] = num(NAN);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0.2, 1);
	try {
		train_aggregated(spec, t, 2, false);
		FAIL() << "expected an error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::DataException);
		EXPECT_STREQ(e.what(), "column \"x2\" contains NaN"); // the first such column, as the row reader says
	}
	spec.preprocess["nonfinite"] = pgml::OptionValue::of_string("drop");
	Trained r = train_aggregated(spec, t, 2, false);
	EXPECT_EQ(json_number(r.result.report_json, {"rows_dropped_nonfinite"}), 2);
	EXPECT_EQ(r.result.rows_train + r.result.rows_test, 198);
}

TEST(StatsState, DedupeAndMedianUseTheRowReader)
{
	Table t = mixed_table(50, 2);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
	spec.preprocess["dedupe"] = pgml::OptionValue::of_bool(true);
	EXPECT_FALSE(pgml::Trainer(spec).uses_stats_aggregate());
	spec = make_spec(t, Algorithm::LinearRegression);
	spec.preprocess["impute"] = pgml::OptionValue::of_string("median");
	EXPECT_FALSE(pgml::Trainer(spec).uses_stats_aggregate());
	EXPECT_FALSE(pgml::Trainer(make_spec(t, Algorithm::DecisionTree)).uses_stats_aggregate());
}

TEST(StatsState, MalformedParametersAreErrors)
{
	Table t = mixed_table(10, 2);
	pgml::Trainer tr(make_spec(t, Algorithm::LinearRegression));
	std::vector<double> good = tr.stats_params(0);
	EXPECT_NO_THROW(st::Params::decode(good.data(), good.size()));
	auto bad = [&](size_t i, double v) {
		std::vector<double> p = good;
		p[i] = v;
		try {
			st::Params::decode(p.data(), p.size());
			return false;
		} catch (const pgml::Error &e) {
			return e.code() == pgml::ErrorCode::InvalidParameter;
		}
	};
	EXPECT_TRUE(bad(0, 2));          // version
	EXPECT_TRUE(bad(1, 3));          // feature count vs length
	EXPECT_TRUE(bad(4, -1));         // seed
	EXPECT_TRUE(bad(5, 1));          // test_size
	EXPECT_TRUE(bad(7, 1e9));        // sample size
	EXPECT_TRUE(bad(8, 0));          // block
	EXPECT_TRUE(bad(9, 0));          // tau
	EXPECT_TRUE(bad(1, NAN));
	EXPECT_THROW(st::Params::decode(good.data(), 3), pgml::Error);
}

TEST(StatsState, CorruptedStatesAreErrorsNeverCrashes)
{
	Table t = mixed_table(400, 4);
	State s = filled_state(t);
	ASSERT_NO_THROW(st::decode(s.buf.data(), s.buf.size()));
	// every truncation
	for (size_t len = 0; len < s.buf.size(); len += 1 + len / 8)
		EXPECT_THROW(st::shape_of(s.buf.data(), len), pgml::Error) << len;
	// every header and column-bookkeeping field set to odd values: an error or a valid state
	std::mt19937_64 rng(1);
	const double odd[] = {-1, 0.5, 1e300, NAN, INFINITY, 3, 4096, 1e6};
	for (size_t i = 0; i < 24 + 4 * 3; i++)
		for (double v : odd) {
			std::vector<double> b = s.buf;
			b[i] = v;
			try {
				st::Decoded d = st::decode(b.data(), b.size());
				State other;
				other.buf = b;
				State copy;
				copy.buf = s.buf;
				copy.merge(other); // a state that passed the checks can be merged
			} catch (const pgml::Error &e) {
				EXPECT_TRUE(e.code() == pgml::ErrorCode::DataCorrupted || e.code() == pgml::ErrorCode::Internal) << i;
			}
		}
	// states made for other columns do not merge
	Table u;
	u.features = {numeric_col("a")};
	u.target = numeric_col("y");
	u.add({num(1)}, num(2));
	pgml::Trainer tu(make_spec(u, Algorithm::LinearRegression));
	std::vector<double> pu = tu.stats_params(0);
	st::Params qu = st::Params::decode(pu.data(), pu.size());
	State su;
	add_table_row(su, qu, u, 0);
	EXPECT_THROW(st::merged_shape(s.buf.data(), s.buf.size(), su.buf.data(), su.buf.size()), pgml::Error);
}

// Many levels (max_levels raised): the groups are queued and merged together
// (O(slots^2) a group) instead of one by one into the q x q moments; the same model as rows.
// Large numeric offsets check that the between-group sums are not cancelled.
TEST(StatsState, ManyLevelsAggregateEqualsRowByRow)
{
	std::mt19937_64 rng(3);
	std::normal_distribution<double> g(0, 1);
	Table t;
	t.features = {numeric_col("x1"), text_col("shop"), text_col("plan"), numeric_col("x2")};
	t.target = numeric_col("y");
	for (size_t i = 0; i < 6000; i++) {
		const int shop = static_cast<int>(rng() % 300), plan = static_cast<int>(rng() % 5);
		const double x1 = 1e6 + g(rng), x2 = g(rng);
		const bool x2null = rng() % 9 == 0;
		const double y = 2 * (x1 - 1e6) - x2 + 0.01 * shop + (plan == 2 ? 3 : 0) + g(rng) * 0.1;
		t.add({num(x1), str("s" + std::to_string(shop)), plan == 4 ? null() : str("p" + std::to_string(plan)),
		       x2null ? null() : num(x2)},
		      num(y));
	}
	for (Algorithm a : {Algorithm::Ridge, Algorithm::LinearRegression}) {
		pgml::TrainSpec spec = make_spec(t, a, 0.2, 7);
		spec.preprocess["max_levels"] = pgml::OptionValue::of_number(1000);
		Trained rows = train(spec, t, 500);
		for (int parts : {1, 2}) {
			Trained agg = train_aggregated(spec, t, parts, parts == 2);
			ASSERT_EQ(agg.model->W.size(), rows.model->W.size());
			EXPECT_GT(agg.model->W.size(), 300);
			for (Eigen::Index i = 0; i < rows.model->W.size(); i++)
				EXPECT_NEAR(agg.model->W(i), rows.model->W(i), 1e-6 * (1 + std::fabs(rows.model->W(i)))) << i;
			EXPECT_NEAR(agg.model->b(0), rows.model->b(0), 1e-6 * (1 + std::fabs(rows.model->b(0))));
			for (const char *m : {"r2", "rmse"})
				for (const char *split : {"train", "test"})
					EXPECT_NEAR(metric(agg.result.metrics_json, split, m), metric(rows.result.metrics_json, split, m), 1e-8)
						<< m << " " << split;
		}
	}
}

// The aggregate's groups are counted as they are added: a 10,000-level column stops at the
// 101st training level.
TEST(StatsState, AggregateStopsAtMaxLevels)
{
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = numeric_col("y");
	for (int i = 0; i < 10000; i++)
		t.add({num(i % 7), str("level" + std::to_string(i))}, num(i % 10));
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0.2, 7);
	try {
		train_aggregated(spec, t, 1, false);
		FAIL() << "10,000 levels passed max_levels";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::ProgramLimit);
		EXPECT_NE(std::string(e.what()).find("at least 101 distinct values, more than max_levels (100)"), std::string::npos)
			<< e.what();
	}
}

// Found by fuzz_stats_state: a state without slots (only categorical features and a categorical
// target, as naive Bayes's statistics can be) folded its rows with an Eigen rank update of an
// empty matrix, which binds a reference to a null pointer (UBSan; scripts/sanitize.sh).
TEST(StatsState, StateWithoutSlotsCountsItsRows)
{
	// version, 1 feature, categorical target, seed 0, test_size 0, no drop, no sample, block 2,
	// tau 1 / 1, the feature categorical
	const std::vector<double> pv = {1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 1, 1};
	st::Params p = st::Params::decode(pv.data(), pv.size());
	State s;
	const char *level = "x";
	size_t len = 1;
	bool isnull = false;
	double num = 0;
	for (int i = 0; i < 3; i++) {
		st::Row row;
		row.target_null = false;
		row.target_str = "a";
		row.target_len = 1;
		row.isnull = &isnull;
		row.num = &num;
		row.str = &level;
		row.len = &len;
		s.add(p, row); // the second row fills the block of 2: folded into the moments
	}
	st::Decoded d = st::decode(s.buf.data(), s.buf.size()); // one pending row folded in
	EXPECT_EQ(d.shape.q, 0);
	EXPECT_EQ(d.train.n(), 3);
	State copy;
	copy.buf = s.buf;
	copy.merge(s);
	EXPECT_EQ(st::decode(copy.buf.data(), copy.buf.size()).train.n(), 6);
}

// Found by reading the fuzz findings of fuzz_eval_state: the trainer sorts the MAE sample's rows
// by their draws, and a NaN draw breaks that ordering (undefined behaviour in std::sort). A
// draw outside [0, 1] is a corrupted state.
TEST(StatsState, SampleDrawsOutOfRangeAreCorrupt)
{
	Table t = mixed_table(50, 5);
	State s = filled_state(t);
	st::Decoded d = st::decode(s.buf.data(), s.buf.size());
	ASSERT_GT(d.sample_train_rows, 0u);
	auto at = std::find(s.buf.begin(), s.buf.end(), d.sample_train_u[0]);
	ASSERT_NE(at, s.buf.end());
	for (double u : {static_cast<double>(NAN), -1.0, 1.5}) {
		std::vector<double> b = s.buf;
		b[static_cast<size_t>(at - s.buf.begin())] = u;
		EXPECT_THROW(st::decode(b.data(), b.size()), pgml::Error) << u;
	}
}
