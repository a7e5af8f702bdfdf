// Incremental gradient_boosting retraining adds retrain_rounds rounds (its own hyperparameter,
// default 10), not n_estimators; each version's report records its total rounds and trees and
// how many a retrain added; a base model whose hyperparameters predate retrain_rounds gets the
// default, which the new version records.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "estimator.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::OptionValue;
using pgml::Task;
using namespace pgml_test;

namespace {

Table table(size_t n, uint64_t seed)
{
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = numeric_col("y");
	std::mt19937_64 rng(seed);
	std::normal_distribution<double> g(0, 1);
	const char *levels[] = {"a", "b", "c"};
	for (size_t i = 0; i < n; i++) {
		double x = g(rng);
		size_t l = rng() % 3;
		t.add({num(x), str(levels[l])}, num(std::sin(2 * x) + static_cast<double>(l) + 0.1 * g(rng)));
	}
	return t;
}

} // namespace

TEST(BoostingRounds, EachIncrementalRetrainAddsRetrainRounds)
{
	Table t = table(600, 1);
	pgml::TrainSpec spec = make_spec(t, Algorithm::GradientBoosting, 0.2, 5);
	spec.hyperparams["n_estimators"] = OptionValue::of_number(40);
	spec.hyperparams["retrain_rounds"] = OptionValue::of_number(4);
	Trained v1 = train(spec, t.slice(0, 200));
	EXPECT_EQ(json_number(v1.result.report_json, {"total_rounds"}), 40);
	EXPECT_EQ(json_number(v1.result.report_json, {"trees"}), 40);
	EXPECT_EQ(v1.result.report_json.find("total_rounds_added"), std::string::npos);
	const pgml::Model *prev = v1.model.get();
	std::vector<Trained> versions;
	size_t prev_bytes = v1.model->serialize().size();
	for (int r = 1; r <= 3; r++) {
		versions.push_back(retrain(spec, *prev, true, t.slice(200 * static_cast<size_t>(r - 1), 200 * static_cast<size_t>(r))));
		const Trained &v = versions.back();
		SCOPED_TRACE("retrain " + std::to_string(r));
		EXPECT_EQ(json_number(v.result.report_json, {"total_rounds"}), 40 + 4 * r);
		EXPECT_EQ(json_number(v.result.report_json, {"total_rounds_added"}), 4);
		EXPECT_EQ(json_number(v.result.report_json, {"trees_added"}), 4);
		EXPECT_EQ(v.result.log.size(), 4u); // the training log has the added rounds
		// hyperparameters as they were: n_estimators is what a refit boosts
		EXPECT_EQ(v.model->hyperparams.integer("n_estimators"), 40);
		EXPECT_EQ(v.model->hyperparams.integer("retrain_rounds"), 4);
		// growth: a tenth of the 40-round model per 4 rounds, give or take
		size_t bytes = v.model->serialize().size();
		EXPECT_GT(bytes, prev_bytes);
		EXPECT_LT(bytes - prev_bytes, v1.model->serialize().size() / 5);
		prev_bytes = bytes;
		prev = v.model.get();
	}
	// a refit starts again from n_estimators rounds
	Trained refit = retrain(spec, *prev, false, t);
	EXPECT_EQ(json_number(refit.result.report_json, {"total_rounds"}), 40);
}

// A version whose stored hyperparameters have no retrain_rounds (trained by 0.2.0): an
// incremental retrain adds the default 10 rounds and records retrain_rounds = 10.
TEST(BoostingRounds, OldHyperparametersGetTheDefault)
{
	Table t = table(300, 2);
	pgml::TrainSpec spec = make_spec(t, Algorithm::GradientBoosting, 0.2, 5);
	spec.hyperparams["n_estimators"] = OptionValue::of_number(20);
	Trained v1 = train(spec, t.slice(0, 150));
	// the hyperparameters as 0.2.0 stored them: every key but retrain_rounds
	pgml::Params old;
	for (const pgml::ParamSpec &ps : pgml::algorithm_def(Algorithm::GradientBoosting).params)
		if (ps.name != "retrain_rounds")
			old.set_num(ps.name, v1.model->hyperparams.num(ps.name));
	v1.model->hyperparams = old;
	ASSERT_FALSE(v1.model->hyperparams.has("retrain_rounds"));
	Trained v2 = retrain(spec, *v1.model, true, t.slice(150, 300));
	EXPECT_EQ(json_number(v2.result.report_json, {"total_rounds"}), 30);
	EXPECT_EQ(v2.model->hyperparams.integer("retrain_rounds"), 10);
	Trained v3 = retrain(spec, *v1.model, false, t);
	EXPECT_EQ(json_number(v3.result.report_json, {"total_rounds"}), 20);
}
