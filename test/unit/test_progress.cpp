// The progress callback: iterative algorithms report each iteration of their log (same number,
// same value) on the calling thread, then the "evaluating" phase; nothing is reported from a
// worker thread.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using pgml::Algorithm;
using namespace pgml_test;

namespace {

struct Report {
	std::string phase; // empty for an iteration
	int iteration;
	std::string metric;
	double value;
	std::thread::id thread;
};
std::vector<Report> reports;

void record(const char *phase, int iteration, const char *metric, double value)
{
	reports.push_back({phase ? phase : "", iteration, metric ? metric : "", value, std::this_thread::get_id()});
}

Table blobs_table()
{
	Rng rng(7);
	Table t;
	t.features = {numeric_col("x"), numeric_col("y")};
	t.target = text_col("label");
	for (int i = 0; i < 120; i++) {
		int k = i % 3;
		t.add({num(3.0 * k + rng.normal()), num(-2.0 * k + rng.normal())}, str("c" + std::to_string(k)));
	}
	return t;
}

// Trains algorithm a with the callback; checks the reports against the training log.
void expect_reports_match_log(Algorithm a, const char *metric, int threads = 1)
{
	Table t = blobs_table();
	pgml::TrainSpec spec = make_spec(t, a, 0.25);
	spec.progress = record;
	spec.threads = threads;
	if (a == Algorithm::GradientBoosting)
		spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(20);
	reports.clear();
	Trained r = train(spec, t);
	std::vector<Report> iterations;
	size_t evaluating = reports.size();
	for (size_t i = 0; i < reports.size(); i++) {
		EXPECT_EQ(reports[i].thread, std::this_thread::get_id()) << "reported from another thread";
		if (reports[i].phase.empty()) {
			EXPECT_LT(i, evaluating) << "an iteration after the evaluating phase";
			iterations.push_back(reports[i]);
		} else {
			EXPECT_EQ(reports[i].phase, "evaluating");
			evaluating = i;
		}
	}
	ASSERT_LT(evaluating, reports.size()) << "no evaluating phase";
	ASSERT_FALSE(r.result.log.empty());
	ASSERT_EQ(iterations.size(), r.result.log.size());
	for (size_t i = 0; i < iterations.size(); i++) {
		EXPECT_EQ(iterations[i].iteration, r.result.log[i].iteration);
		EXPECT_EQ(iterations[i].metric, metric);
		EXPECT_EQ(iterations[i].value, r.result.log[i].loss);
	}
}

} // namespace

TEST(Progress, LogisticReportsEveryIteration)
{
	expect_reports_match_log(Algorithm::LogisticRegression, "loss");
}

TEST(Progress, MlpReportsEveryEpoch)
{
	expect_reports_match_log(Algorithm::Mlp, "loss");
}

TEST(Progress, GradientBoostingReportsEveryRound)
{
	expect_reports_match_log(Algorithm::GradientBoosting, "loss", 2);
}

TEST(Progress, ForestWithThreadsReportsOnlyThePhase)
{
	Table t = blobs_table();
	pgml::TrainSpec spec = make_spec(t, Algorithm::RandomForest, 0.25);
	spec.progress = record;
	spec.threads = 2;
	reports.clear();
	train(spec, t);
	ASSERT_EQ(reports.size(), 1u);
	EXPECT_EQ(reports[0].phase, "evaluating");
	EXPECT_EQ(reports[0].thread, std::this_thread::get_id());
}

TEST(Progress, NoCallbackNoReports)
{
	Table t = blobs_table();
	reports.clear();
	train(make_spec(t, Algorithm::LogisticRegression, 0.25), t);
	EXPECT_TRUE(reports.empty());
}
