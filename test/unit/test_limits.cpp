// Resource limits (issue 10, findings 5 and 6): categorical levels counted while the rows are
// encoded and refused at max_levels before any O(levels^2) work; memory estimates checked
// against the memory limit (pg_ml.max_memory) before the allocations they bound.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "estimator.hpp"
#include "limits.hpp"
#include "models/gradient_boosting.hpp"
#include "models/random_forest.hpp"
#include "models/svm.hpp"
#include "preprocess.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

constexpr size_t kMB = size_t(1) << 20;

bool contains(const std::string &hay, const std::string &needle)
{
	return hay.find(needle) != std::string::npos;
}

// n rows: a text column with `levels` distinct values (row i has level i % levels), a number, a target.
Table many_levels(int n, int levels, bool text_target = false)
{
	Table t;
	t.features = {text_col("c"), numeric_col("x")};
	t.target = text_target ? text_col("label") : numeric_col("y");
	for (int i = 0; i < n; i++)
		t.add({str("v" + std::to_string(i % levels)), num(i % 7)},
		      text_target ? str(i % 2 ? "a" : "b") : num(static_cast<double>(i % 13)));
	return t;
}

// Params of an algorithm from (name, number) pairs and (name, choice) pairs.
pgml::Params params_of(Algorithm a, std::vector<std::pair<std::string, double>> nums,
                       std::vector<std::pair<std::string, std::string>> choices = {})
{
	pgml::Options o;
	for (auto &[k, v] : nums)
		o[k] = OptionValue::of_number(v);
	for (auto &[k, v] : choices)
		o[k] = OptionValue::of_string(v);
	return pgml::parse_params(pgml::algorithm_def(a), o);
}

double seconds_since(std::chrono::steady_clock::time_point t0)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

TEST(Limits, LevelCounterStopsOneLevelPastTheCap)
{
	std::vector<pgml::ColumnInfo> cols = {text_col("c"), numeric_col("x")};
	pgml::Options o;
	o["max_levels"] = OptionValue::of_number(3);
	pgml::PreprocessOptions po = pgml::parse_preprocess(o, cols);
	pgml::LevelCounter lc(cols, po);
	lc.note(0, 0);
	lc.note(0, 0); // a repeated level does not count
	lc.note(0, 5);
	lc.note(1, 7); // numeric column: ignored
	EXPECT_EQ(lc.count(0), 2u);
	EXPECT_EQ(lc.count(1), 0u);
	lc.note(0, -1); // NULL is a level of its own
	EXPECT_EQ(lc.count(0), 3u);
	try {
		lc.note(0, 9);
		FAIL() << "a fourth level passed max_levels 3";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_TRUE(contains(e.what(), "column \"c\" has at least 4 distinct values, more than max_levels (3)"))
		    << e.what();
		EXPECT_TRUE(contains(e.hint(), "max_levels")) << e.hint();
	}
}

TEST(Limits, LevelCounterPerColumnOverride)
{
	std::vector<pgml::ColumnInfo> cols = {text_col("a"), text_col("b")};
	pgml::Options o;
	o["columns.b.max_levels"] = OptionValue::of_number(1);
	pgml::LevelCounter lc(cols, pgml::parse_preprocess(o, cols));
	for (int i = 0; i < 100; i++)
		lc.note(0, i); // default max_levels 100
	lc.note(1, 0);
	EXPECT_THROW(lc.note(1, 1), pgml::Error);
	EXPECT_THROW(lc.note(0, 100), pgml::Error);
}

// A streaming (linear) fit stops in the batch that brings level 101, long before the rows end,
// without building the 10,000-slot moments.
TEST(Limits, TenThousandLevelsStopWhileReadingStreaming)
{
	Table t = many_levels(20000, 10000);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0.2);
	pgml::Trainer tr(spec);
	auto t0 = std::chrono::steady_clock::now();
	size_t fed = 0;
	try {
		for (size_t b = 0; b < t.size(); b += 50) {
			BatchData bd(t, b, std::min(t.size(), b + 50));
			tr.add_batch(bd.batch(), nullptr);
			fed = b + 50;
		}
		tr.finish(nullptr, nullptr);
		FAIL() << "10,000 levels passed max_levels";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_TRUE(contains(e.what(), "column \"c\" has at least 101 distinct values, more than max_levels (100)"))
		    << e.what();
	}
	EXPECT_LT(fed, 1000u) << "the level cap was only checked after " << fed << " rows";
	EXPECT_LT(seconds_since(t0), 5.0);
}

// In-memory algorithms split the rows at finish(): the levels are counted there, before the
// moments and the feature matrix.
TEST(Limits, TenThousandLevelsStopBeforeTheMatrixInMemory)
{
	Table t = many_levels(20000, 10000, true);
	for (Algorithm a : {Algorithm::LogisticRegression, Algorithm::DecisionTree, Algorithm::NaiveBayes}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		pgml::TrainSpec spec = make_spec(t, a, 0.2);
		auto t0 = std::chrono::steady_clock::now();
		try {
			train(spec, t, 1000);
			FAIL() << "10,000 levels passed max_levels";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
			EXPECT_TRUE(contains(e.what(), "more than max_levels (100)")) << e.what();
		}
		EXPECT_LT(seconds_since(t0), 5.0);
	}
}

// Exactly max_levels levels still train, and the early count agrees with the fitted levels.
TEST(Limits, MaxLevelsLevelsStillTrain)
{
	Table t = many_levels(400, 100);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0);
	Trained r = train(spec, t, 64);
	EXPECT_EQ(r.model->prep.columns[0].levels.size(), 100u);
	Table u = many_levels(400, 99);
	u.rows[5][0] = null(); // 99 levels and NULL: 100
	EXPECT_NO_THROW(train(make_spec(u, Algorithm::LinearRegression, 0), u, 64));
}

TEST(Limits, CheckMemoryNamesTheSettingAndWhatToLower)
{
	EXPECT_NO_THROW(pgml::check_memory(16 * kMB, 15.0 * kMB, "x", "", "y"));
	EXPECT_NO_THROW(pgml::check_memory(0, 1e30, "x", "", "y")); // no limit
	try {
		pgml::check_memory(16 * kMB, 40.0 * kMB, "gradient_boosting", "Facts.", "n_estimators or max_depth");
		FAIL();
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_TRUE(contains(e.what(), "gradient_boosting would need about 40.0 MB")) << e.what();
		EXPECT_TRUE(contains(e.what(), "pg_ml.max_memory (16.0 MB)")) << e.what();
		EXPECT_EQ(e.detail(), "Facts.");
		EXPECT_TRUE(contains(e.hint(), "Lower n_estimators or max_depth")) << e.hint();
		EXPECT_TRUE(contains(e.hint(), "raise pg_ml.max_memory")) << e.hint();
	}
}

TEST(Limits, Estimates)
{
	using namespace pgml::memory;
	EXPECT_EQ(tree_nodes(1000, 0), 1999);
	EXPECT_EQ(tree_nodes(1000, 3), 15);
	EXPECT_EQ(tree_nodes(1000, 32), 1999);
	EXPECT_EQ(tree_nodes(1e13, 40), std::ldexp(1.0, 41) - 1);
	EXPECT_EQ(moments_bytes(10000), 8.0 * 10000 * 10001); // the 800 MB of a 10,000-level column
	// the reviewer's boosting: far past 16 MB; the defaults on 1000 rows x 10 features: well under
	EXPECT_GT(gradient_boosting_bytes(1000, 5, 0, 100000, 32, 256), 1e9);
	EXPECT_LT(gradient_boosting_bytes(1000, 10, 0, 100, 6, 256), 16.0 * kMB);
	EXPECT_LT(gradient_boosting_bytes(100000, 20, 5, 100, 6, 256), 1024.0 * kMB);
	// more rounds, depth, classes or rows never need less
	EXPECT_GT(gradient_boosting_bytes(1000, 5, 3, 100, 6, 256), gradient_boosting_bytes(1000, 5, 0, 100, 6, 256));
	EXPECT_GT(gradient_boosting_bytes(1000, 5, 0, 100, 8, 256), gradient_boosting_bytes(1000, 5, 0, 100, 6, 256));
	// rbf: the kernel of 3000 rows (72 MB) is past 16 MB; that of 1000 rows (8 MB) is not; the
	// cache never counts more than its cap
	EXPECT_GT(svm_rbf_bytes(3000, 4, 1, 256.0 * kMB), 16.0 * kMB);
	EXPECT_LT(svm_rbf_bytes(1000, 4, 1, 256.0 * kMB), 16.0 * kMB);
	EXPECT_LT(svm_rbf_bytes(1e6, 4, 1, 256.0 * kMB), 256.0 * kMB + 1e6 * 4 * 8 * 3 + 1e6 * 64 + 1);
	EXPECT_GT(mlp_bytes(1000, 10, 1, 100, 100000, 200), 1024.0 * kMB);
	EXPECT_LT(mlp_bytes(1000, 10, 1, 1, 100, 200), 16.0 * kMB);
	EXPECT_LT(kmeans_bytes(10000, 10, 8, 1), 16.0 * kMB);
	EXPECT_GT(kmeans_bytes(1e6, 100, 10000, 2), 16.0 * kMB);
}

TEST(Limits, GradientBoostingRefusedBeforeBoosting)
{
	Eigen::MatrixXd X = Eigen::MatrixXd::Random(500, 4);
	Eigen::VectorXd y = X.col(0) * 3 + X.col(1);
	pgml::FitInput in;
	in.X = &X;
	in.y = &y;
	in.task = pgml::Task::Regression;
	in.memory_limit = 16 * kMB;
	auto t0 = std::chrono::steady_clock::now();
	try {
		pgml::fit_gradient_boosting(
		    in, params_of(Algorithm::GradientBoosting, {{"n_estimators", 100000}, {"max_depth", 32}}));
		FAIL() << "100000 rounds of depth 32 fitted in 16 MB";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_TRUE(contains(e.what(), "pg_ml.max_memory")) << e.what();
		EXPECT_TRUE(contains(e.hint(), "n_estimators")) << e.hint();
		EXPECT_TRUE(contains(e.detail(), "100000 boosting rounds")) << e.detail();
	}
	EXPECT_LT(seconds_since(t0), 1.0);
	// the defaults fit
	EXPECT_NO_THROW(pgml::fit_gradient_boosting(in, params_of(Algorithm::GradientBoosting, {{"n_estimators", 10}})));
	// with early stopping the rounds are checked as they come (a slow learning rate does not stop
	// early): the limit's error after some rounds
	in.memory_limit = kMB;
	try {
		pgml::fit_gradient_boosting(in, params_of(Algorithm::GradientBoosting, {{"n_estimators", 100000},
		                                                                        {"max_depth", 3},
		                                                                        {"learning_rate", 0.001},
		                                                                        {"early_stopping_rounds", 10}}));
		FAIL();
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_FALSE(contains(e.detail(), "100000 boosting rounds")) << e.detail(); // stopped on the way
		EXPECT_TRUE(contains(e.hint(), "early_stopping_rounds")) << e.hint();
	}
}

TEST(Limits, SvmKernelRefusedPastTheLimit)
{
	Eigen::MatrixXd X = Eigen::MatrixXd::Random(3000, 3);
	Eigen::VectorXd y(3000);
	for (int i = 0; i < 3000; i++)
		y(i) = X(i, 0) > 0 ? 1 : 0;
	pgml::FitInput in;
	in.X = &X;
	in.y = &y;
	in.task = pgml::Task::Classification;
	in.n_classes = 2;
	in.memory_limit = 16 * kMB;
	auto t0 = std::chrono::steady_clock::now();
	try {
		pgml::fit_svm(in, params_of(Algorithm::Svm, {{"max_kernel_rows", 1e7}}, {{"kernel", "rbf"}}));
		FAIL() << "an rbf kernel of 3000 rows fitted in 16 MB";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_TRUE(contains(e.what(), "the svm rbf kernel would need about")) << e.what();
		EXPECT_TRUE(contains(e.detail(), "max_kernel_rows is 10000000")) << e.detail();
	}
	EXPECT_LT(seconds_since(t0), 1.0);
}

TEST(Limits, RandomForestNodesCharged)
{
	Eigen::MatrixXd X = Eigen::MatrixXd::Random(4000, 3);
	Eigen::VectorXd y = X.col(0) + X.col(1).cwiseProduct(X.col(2));
	pgml::FitInput in;
	in.X = &X;
	in.y = &y;
	in.task = pgml::Task::Regression;
	in.native_missing = false;
	in.memory_limit = kMB; // 100 full trees of ~5000 nodes are ~16 MB
	try {
		pgml::fit_random_forest(in, params_of(Algorithm::RandomForest, {{"n_estimators", 100}}));
		FAIL() << "100 unlimited trees fitted in 1 MB";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_TRUE(contains(e.what(), "the tree nodes of random_forest")) << e.what();
		EXPECT_TRUE(contains(e.hint(), "n_estimators or max_depth")) << e.hint();
	}
	in.memory_limit = 64 * kMB;
	EXPECT_NO_THROW(pgml::fit_random_forest(in, params_of(Algorithm::RandomForest, {{"n_estimators", 10}})));
}

TEST(Limits, XgboostAllocationFailuresAreOutOfMemory)
{
	EXPECT_TRUE(pgml::xgb_out_of_memory("std::bad_alloc"));
	EXPECT_TRUE(pgml::xgb_out_of_memory("[10:00:00] Memory allocation error"));
	EXPECT_TRUE(pgml::xgb_out_of_memory("CUDA out of memory"));
	EXPECT_FALSE(pgml::xgb_out_of_memory("Check failed: preds.Size() == info.labels.Size()"));
}
