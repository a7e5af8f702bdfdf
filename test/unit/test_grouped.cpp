// Per-group models (grouped.hpp): one scan trains a model per group, predict routes each row,
// the container blob round-trips and every corruption of it is an error, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "grouped.hpp"
#include "agg_test_util.hpp"
#include "serialize.hpp"
#include "stats_state.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::GroupedTrainer;
using pgml::Model;
using pgml::Value;
using namespace pgml_test;

namespace {

// y = 3x in group a, y = -2x + 5 in group b, y = x + 100 in group c; the group column last.
Table grouped_table(size_t n)
{
	Table t;
	t.features = {numeric_col("x"), text_col("g")};
	t.target = numeric_col("y");
	const char *groups[] = {"a", "b", "c"};
	for (size_t i = 0; i < n; i++) {
		double x = static_cast<double>((i * 37) % 101);
		size_t g = i % 3;
		double y = g == 0 ? 3 * x : g == 1 ? -2 * x + 5 : x + 100;
		t.add({num(x), str(groups[g])}, num(y));
	}
	return t;
}

pgml::GroupSpec group_spec(bool fallback)
{
	pgml::GroupSpec gs;
	gs.columns = {text_col("g")};
	gs.fallback_all = fallback;
	return gs;
}

std::unique_ptr<Model> train_grouped(const Table &t, Algorithm a, bool fallback, pgml::TrainResult *res = nullptr,
                                     int threads = 1, const pgml::Options &hp = {}, size_t memory_limit = 0)
{
	Table sub = t;
	sub.features = {t.features[0]}; // the spec's features: the group column is not one
	pgml::TrainSpec spec = make_spec(sub, a, 0.2);
	spec.threads = threads;
	spec.hyperparams = hp;
	if (memory_limit > 0)
		spec.memory_limit = memory_limit;
	GroupedTrainer tr(spec, group_spec(fallback));
	for (size_t b = 0; b < t.size(); b += 50) {
		BatchData bd(t, b, std::min(t.size(), b + 50));
		tr.add_batch(bd.batch(), nullptr);
	}
	auto m = tr.finish(nullptr, nullptr);
	if (res != nullptr)
		*res = tr.result();
	return m;
}

double predict(const Model &m, double x, const char *g)
{
	Value v[2];
	v[0].isnull = false;
	v[0].num = x;
	v[1].isnull = g == nullptr;
	v[1].str = g;
	v[1].len = g ? std::strlen(g) : 0;
	double out[4];
	m.predict(v, out);
	return out[0];
}

void rewrite_crc(std::vector<uint8_t> &blob)
{
	uint32_t crc = pgml::crc32(blob.data() + pgml::kHeaderSize, blob.size() - pgml::kHeaderSize);
	std::memcpy(blob.data() + 16, &crc, 4);
}

} // namespace

TEST(Grouped, EachGroupLearnsItsOwnFunction)
{
	pgml::TrainResult res;
	auto m = train_grouped(grouped_table(600), Algorithm::LinearRegression, false, &res);
	ASSERT_TRUE(m->grouped);
	EXPECT_EQ(m->grouped->groups.size(), 3u);
	EXPECT_EQ(m->features.size(), 2u); // x, then the group column
	EXPECT_NEAR(predict(*m, 10, "a"), 30, 1e-8);
	EXPECT_NEAR(predict(*m, 10, "b"), -15, 1e-8);
	EXPECT_NEAR(predict(*m, 10, "c"), 110, 1e-8);
	// pooled test metrics over every group's held-out rows
	EXPECT_EQ(res.primary_metric, "r2");
	EXPECT_NEAR(res.primary_test, 1.0, 1e-12);
	EXPECT_EQ(res.rows_train + res.rows_test, 600);
	EXPECT_NE(res.metrics_json.find("\"groups\":["), std::string::npos);
}

TEST(Grouped, UnseenGroupIsAnErrorUnlessAFallbackServesIt)
{
	auto m = train_grouped(grouped_table(300), Algorithm::LinearRegression, false);
	pgml::Error e = expect_error([&] { predict(*m, 1, "zz"); }, ErrorCode::InvalidParameter);
	EXPECT_NE(std::string(e.what()).find("g = 'zz'"), std::string::npos) << e.what();
	expect_error([&] { predict(*m, 1, nullptr); }, ErrorCode::InvalidParameter);
	auto f = train_grouped(grouped_table(300), Algorithm::LinearRegression, true);
	ASSERT_TRUE(f->grouped->fallback);
	Value v;
	v.isnull = false;
	v.num = 10;
	double all = 0;
	f->grouped->fallback->predict(&v, &all);
	EXPECT_DOUBLE_EQ(predict(*f, 10, "zz"), all);
	EXPECT_NEAR(predict(*f, 10, "a"), 30, 1e-8);
}

TEST(Grouped, ClassifiersMapTheirClassesOntoTheContainers)
{
	Table t;
	t.features = {numeric_col("x"), text_col("g")};
	t.target = text_col("label");
	for (size_t i = 0; i < 400; i++) {
		double x = static_cast<double>(i % 50);
		bool a = i % 2 == 0;
		// group a: lo / hi; group b: hi / mid (each group knows two of the three classes)
		t.add({num(x), str(a ? "a" : "b")}, str(a ? (x < 25 ? "lo" : "hi") : (x < 25 ? "hi" : "mid")));
	}
	auto m = train_grouped(t, Algorithm::DecisionTree, false);
	ASSERT_EQ(m->classes, (std::vector<std::string>{"hi", "lo", "mid"}));
	Value v[2];
	v[0].isnull = false;
	v[1].isnull = false;
	double out[3];
	v[0].num = 40;
	v[1].str = "b";
	v[1].len = 1;
	EXPECT_EQ(m->classes[static_cast<size_t>(m->predict(v, out))], "mid");
	EXPECT_DOUBLE_EQ(out[1], 0.0); // group b never saw "lo"
	EXPECT_NEAR(out[0] + out[1] + out[2], 1.0, 1e-12);
	v[1].str = "a";
	v[0].num = 5;
	EXPECT_EQ(m->classes[static_cast<size_t>(m->predict(v, out))], "lo");
	// in a batch: the same classes and probabilities
	Value rows[6] = {v[0], v[1], v[0], v[1], v[0], v[1]};
	rows[2].num = 40;
	rows[3].str = "b";
	rows[4].num = 30;
	double bout[9], one[3];
	int bk[3];
	m->predict_batch(rows, 3, bout, bk);
	for (size_t i = 0; i < 3; i++) {
		EXPECT_EQ(bk[i], m->predict(rows + 2 * i, one)) << i;
		for (size_t k = 0; k < 3; k++)
			EXPECT_EQ(bout[3 * i + k], one[k]) << i << " " << k;
	}
}

TEST(Grouped, TooManyGroupsNamesTheCount)
{
	Table t = grouped_table(60);
	Table sub = t;
	sub.features = {t.features[0]};
	pgml::GroupSpec gs = group_spec(false);
	gs.max_groups = 2;
	GroupedTrainer tr(make_spec(sub, Algorithm::LinearRegression, 0.2), gs);
	BatchData bd(t, 0, t.size());
	pgml::Error e = expect_error([&] { tr.add_batch(bd.batch(), nullptr); }, ErrorCode::ProgramLimit);
	EXPECT_NE(std::string(e.what()).find("more than 2 groups"), std::string::npos) << e.what();
}

TEST(Grouped, BlobRoundTripGivesIdenticalPredictions)
{
	for (bool fallback : {false, true}) {
		auto m = train_grouped(grouped_table(300), Algorithm::GradientBoosting, fallback);
		m->binding = {7, 3};
		std::vector<uint8_t> blob = m->serialize();
		auto r = Model::deserialize(blob.data(), blob.size());
		ASSERT_TRUE(r->grouped);
		r->check_binding(7, 3, "gradient_boosting", "regression");
		EXPECT_EQ(r->grouped->groups.size(), 3u);
		EXPECT_EQ(static_cast<bool>(r->grouped->fallback), fallback);
		for (const char *g : {"a", "b", "c"})
			for (double x : {0.0, 17.0, 99.0})
				EXPECT_EQ(predict(*m, x, g), predict(*r, x, g));
		EXPECT_EQ(r->serialize(), blob);
		expect_error([&] { r->check_binding(7, 4, "gradient_boosting", "regression"); }, ErrorCode::DataCorrupted);
	}
}

TEST(Grouped, EveryBitFlipAndTruncationIsRejected)
{
	auto m = train_grouped(grouped_table(120), Algorithm::LinearRegression, true);
	const std::vector<uint8_t> blob = m->serialize();
	std::vector<uint8_t> b = blob;
	for (size_t i = 0; i < b.size(); i += 3) {
		b[i] ^= 0x10;
		expect_error([&] { Model::deserialize(b.data(), b.size()); }, ErrorCode::DataCorrupted);
		b[i] = blob[i];
	}
	for (size_t len = pgml::kHeaderSize; len < blob.size(); len += 5) {
		std::vector<uint8_t> t(blob.begin(), blob.begin() + static_cast<long>(len));
		uint64_t plen = len - pgml::kHeaderSize;
		std::memcpy(t.data() + 8, &plen, 8);
		rewrite_crc(t);
		expect_error([&] { Model::deserialize(t.data(), t.size()); }, ErrorCode::DataCorrupted);
	}
}

TEST(Grouped, PayloadMutationsWithValidCrcNeverCrash)
{
	auto m = train_grouped(grouped_table(90), Algorithm::LinearRegression, false);
	const std::vector<uint8_t> blob = m->serialize();
	std::vector<uint8_t> b = blob;
	int rejected = 0;
	for (size_t i = pgml::kHeaderSize; i < b.size(); i++) {
		for (uint8_t v : {uint8_t(0x00), uint8_t(0xFF), uint8_t(blob[i] ^ 1), uint8_t(blob[i] ^ 0x80)}) {
			if (v == blob[i])
				continue;
			b[i] = v;
			rewrite_crc(b);
			try {
				auto r = Model::deserialize(b.data(), b.size());
				for (const char *g : {"a", "b", "c", "zz"}) {
					try {
						predict(*r, 5, g);
					} catch (const pgml::Error &) {
					}
				}
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << "byte " << i << ": " << e.what();
				rejected++;
			}
			b[i] = blob[i];
		}
	}
	EXPECT_GT(rejected, 0);
}

TEST(Grouped, StructuralCorruptionsAreRejected)
{
	auto m = train_grouped(grouped_table(120), Algorithm::LinearRegression, false);
	// a copy of the container with its routing table changed by f must not load
	auto rejected = [&](const std::function<void(pgml::GroupedModel &, Model &)> &f, const char *why) {
		Model outer = *m;
		auto g = std::make_shared<pgml::GroupedModel>(*m->grouped);
		f(*g, outer);
		outer.grouped = g;
		std::vector<uint8_t> blob = outer.serialize();
		pgml::Error e = expect_error([&] { Model::deserialize(blob.data(), blob.size()); }, ErrorCode::DataCorrupted);
		EXPECT_NE(e.detail().find(why), std::string::npos) << e.detail();
	};
	rejected([&](pgml::GroupedModel &g, Model &) { g.groups[0].model = std::make_shared<Model>(*m); },
	         "itself a grouped model");
	rejected([](pgml::GroupedModel &g, Model &) { g.groups[1].key = g.groups[0].key; }, "same key");
	rejected([](pgml::GroupedModel &g, Model &) { g.columns[0].name = "x"; }, "also a feature");
	rejected([](pgml::GroupedModel &, Model &outer) { outer.algorithm = Algorithm::Ridge; }, "algorithm and task");
}

TEST(Grouped, StatisticsAggregateRouteEqualsTheRowReader)
{
	// noisy per-group lines, so that the metrics are not all 1
	Table t;
	t.features = {numeric_col("x"), text_col("g")};
	t.target = numeric_col("y");
	Rng rng(5);
	const char *groups[] = {"a", "b", "c"};
	for (size_t i = 0; i < 900; i++) {
		double x = rng.uniform() * 10;
		size_t g = i % 3;
		t.add({num(x), str(groups[g])}, num((g == 0 ? 3 * x : g == 1 ? -2 * x + 5 : x + 100) + rng.normal()));
	}
	pgml::TrainResult rows;
	train_grouped(t, Algorithm::LinearRegression, false, &rows);

	Table sub = t;
	sub.features = {t.features[0]};
	GroupedTrainer tr(make_spec(sub, Algorithm::LinearRegression, 0.2), group_spec(false));
	ASSERT_TRUE(tr.uses_stats_aggregate());
	std::vector<double> pv = tr.stats_params(0);
	pgml::stats::Params p = pgml::stats::Params::decode(pv.data(), pv.size());
	for (const char *g : groups) {
		std::vector<double> state;
		for (size_t i = 0; i < t.size(); i++) {
			if (t.rows[i][1].str != g)
				continue;
			Table one = sub.slice(i, i + 1);
			one.rows[0].resize(1);
			TableRow r(one, 0);
			r.row.target_str = nullptr;
			r.row.target_len = 0;
			stats_add(state, p, r.row);
		}
		tr.add_stats_group({g}, {nullptr}, state.data(), state.size(), nullptr);
	}
	auto m = tr.finish(nullptr, nullptr);
	const pgml::TrainResult &agg = tr.result();
	EXPECT_EQ(agg.rows_test, rows.rows_test); // the same held-out rows
	EXPECT_EQ(agg.rows_train, rows.rows_train);
	EXPECT_NEAR(agg.primary_test, rows.primary_test, 1e-12);
	EXPECT_NEAR(json_number(agg.test_json, {"mse"}), json_number(rows.test_json, {"mse"}), 1e-9);
	EXPECT_NEAR(json_number(agg.test_json, {"mae"}), json_number(rows.test_json, {"mae"}), 1e-9);
	EXPECT_NEAR(predict(*m, 4, "b"), -3, 0.2);
}

// With pg_ml.max_threads above 1 the groups fit at once, each on one thread: the same models
// (and metrics) as one after the other, for our trees and for xgboost.
TEST(Grouped, GroupsFittedOnThreadsEqualOneAfterTheOther)
{
	Table t = grouped_table(900);
	for (Algorithm a : {Algorithm::DecisionTree, Algorithm::GradientBoosting, Algorithm::LinearRegression}) {
		pgml::TrainResult r1, r2;
		auto m1 = train_grouped(t, a, true, &r1, 1);
		auto m2 = train_grouped(t, a, true, &r2, 2);
		EXPECT_EQ(r1.metrics_json, r2.metrics_json) << pgml::algorithm_def(a).name;
		for (const char *g : {"a", "b", "c", "zz"})
			for (double x : {0.0, 17.0, 50.0, 99.0})
				EXPECT_EQ(predict(*m1, x, g), predict(*m2, x, g)) << g << " " << x;
	}
}

// A group whose fit fails is named, and with several threads it is always the first such group
// (in the order the groups appeared), whichever thread got there first.
TEST(Grouped, ParallelFitNamesTheFirstFailingGroup)
{
	Table t;
	t.features = {numeric_col("x"), text_col("g")};
	t.target = numeric_col("y");
	// groups a (many rows), then b, c, d with too few rows to hold out early stopping's validation rows
	for (size_t i = 0; i < 400; i++)
		t.add({num(static_cast<double>(i % 37)), str("a")}, num(static_cast<double>(i % 37) * 2));
	for (const char *g : {"b", "c", "d"})
		for (size_t i = 0; i < 3; i++)
			t.add({num(static_cast<double>(i)), str(g)}, num(static_cast<double>(i)));
	pgml::Options hp;
	hp["early_stopping_rounds"] = pgml::OptionValue::of_number(5);
	hp["validation_fraction"] = pgml::OptionValue::of_number(0.9); // all of a 3-row group
	for (int run = 0; run < 5; run++) {
		pgml::Error e = expect_error([&] { train_grouped(t, Algorithm::GradientBoosting, false, nullptr, 2, hp); },
		                             ErrorCode::DataException);
		EXPECT_NE(std::string(e.what()).find("in group g = 'b'"), std::string::npos) << e.what();
	}
}

// predict_batch (ml_predict_batch, ml_evaluate) scores each group's rows as one batch: the same
// values as predict() row by row, classes mapped onto the container's; an unseen group is the
// same error.
TEST(Grouped, BatchPredictionEqualsRowByRow)
{
	for (bool fallback : {false, true}) {
		auto m = train_grouped(grouped_table(600), Algorithm::GradientBoosting, fallback);
		const char *groups[] = {"c", "a", "b", "a", "c", "b", "b"};
		std::vector<Value> v(2 * 7);
		for (size_t i = 0; i < 7; i++) {
			v[2 * i].isnull = false;
			v[2 * i].num = static_cast<double>(i * 13);
			v[2 * i + 1].isnull = false;
			v[2 * i + 1].str = groups[i];
			v[2 * i + 1].len = 1;
		}
		std::vector<double> out(7);
		std::vector<int> klass(7);
		m->predict_batch(v.data(), 7, out.data(), klass.data());
		for (size_t i = 0; i < 7; i++)
			EXPECT_EQ(out[i], predict(*m, static_cast<double>(i * 13), groups[i])) << i;
		v[2 * 5 + 1].str = "q";
		if (fallback) {
			m->predict_batch(v.data(), 7, out.data(), klass.data());
			EXPECT_EQ(out[5], predict(*m, 65, "q"));
		} else {
			pgml::Error e = expect_error([&] { m->predict_batch(v.data(), 7, out.data(), klass.data()); },
			                             ErrorCode::InvalidParameter);
			EXPECT_NE(std::string(e.what()).find("g = 'q'"), std::string::npos) << e.what();
		}
	}
}

// On several threads each group's fit has its share of pg_ml.max_memory: a fit past it is the
// limit's error naming the group and saying how to fit fewer groups at once (a group's rows are
// consumed by its fit: it is not fitted again).
TEST(Grouped, ParallelFitPastItsMemoryShareSaysSo)
{
	Table t = grouped_table(900);
	const size_t limit = 20000;
	pgml::Error one = expect_error([&] { train_grouped(t, Algorithm::DecisionTree, false, nullptr, 1, {}, limit); },
	                               ErrorCode::ProgramLimit);
	EXPECT_EQ(one.hint().find("pg_ml.max_threads"), std::string::npos) << one.hint();
	pgml::Error two = expect_error([&] { train_grouped(t, Algorithm::DecisionTree, false, nullptr, 2, {}, limit); },
	                               ErrorCode::ProgramLimit);
	EXPECT_NE(std::string(two.what()).find("in group g = 'a'"), std::string::npos) << two.what();
	EXPECT_NE(two.hint().find("Lower pg_ml.max_threads"), std::string::npos) << two.hint();
	EXPECT_NE(two.detail().find("each within 1/2 of pg_ml.max_memory"), std::string::npos) << two.detail();
}
