// One model name, many experiments (issue 13): a retrain may replace the algorithm and the
// hyperparameters (TrainSpec::replace_algorithm); columns, task, classes and preprocessing stay
// the base's; the same algorithm keeps the base's hyperparameters that are not named.
#include <gtest/gtest.h>

#include <string>

#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

Table step_table(int rows)
{
	Rng rng(11);
	Table t;
	t.features = {numeric_col("x"), text_col("k")};
	t.target = numeric_col("y");
	for (int i = 0; i < rows; i++) {
		double x = rng.uniform() * 10;
		t.add({num(x), str(i % 3 == 0 ? "a" : "b")}, num(x > 5 ? 40 : 0));
	}
	return t;
}

} // namespace

TEST(RetrainAlgorithm, AnotherAlgorithmKeepsColumnsAndTask)
{
	Table t = step_table(300);
	Trained v1 = train(make_spec(t, Algorithm::LinearRegression, 0.2), t);
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.2);
	spec.replace_algorithm = true;
	spec.hyperparams["max_depth"] = OptionValue::of_number(3);
	spec.task = pgml::Task::Classification; // the base's task wins
	Trained v2 = retrain(spec, *v1.model, false, t);
	EXPECT_EQ(v2.model->algorithm, Algorithm::DecisionTree);
	EXPECT_EQ(v2.model->task, pgml::Task::Regression);
	EXPECT_EQ(v2.model->features.size(), v1.model->features.size());
	EXPECT_EQ(v2.model->hyperparams.integer("max_depth"), 3);
	EXPECT_EQ(v2.model->hyperparams.integer("min_samples_leaf"), 1); // the default
	// a step is what a tree fits exactly and a line does not
	EXPECT_NEAR(predict(*v2.model, {num(8), str("a")})[0], 40, 1e-9);
	EXPECT_NEAR(predict(*v2.model, {num(2), str("b")})[0], 0, 1e-9);

	// without replace_algorithm the base's algorithm and hyperparameters stay
	Trained v3 = retrain(make_spec(t, Algorithm::DecisionTree, 0.2), *v1.model, false, t);
	EXPECT_EQ(v3.model->algorithm, Algorithm::LinearRegression);
}

TEST(RetrainAlgorithm, SameAlgorithmKeepsTheHyperparametersNotNamed)
{
	Table t = step_table(200);
	pgml::TrainSpec s1 = make_spec(t, Algorithm::DecisionTree, 0.2);
	s1.hyperparams["max_depth"] = OptionValue::of_number(4);
	s1.hyperparams["min_samples_split"] = OptionValue::of_number(6);
	Trained v1 = train(s1, t);
	pgml::TrainSpec s2 = make_spec(t, Algorithm::DecisionTree, 0.2);
	s2.replace_algorithm = true;
	s2.hyperparams["min_samples_leaf"] = OptionValue::of_number(3);
	Trained v2 = retrain(s2, *v1.model, false, t);
	EXPECT_EQ(v2.model->hyperparams.integer("max_depth"), 4);
	EXPECT_EQ(v2.model->hyperparams.integer("min_samples_split"), 6);
	EXPECT_EQ(v2.model->hyperparams.integer("min_samples_leaf"), 3);
}

TEST(RetrainAlgorithm, RefusedWhereItCannotHold)
{
	Table t = step_table(100);
	Trained v1 = train(make_spec(t, Algorithm::LinearRegression, 0.2), t);
	// incremental: the base's model goes on as it is
	pgml::TrainSpec inc = make_spec(t, Algorithm::Ridge, 0.2);
	inc.replace_algorithm = true;
	pgml::Error e = expect_error([&]() { pgml::Trainer tr(inc, *v1.model, true); }, ErrorCode::FeatureNotSupported);
	EXPECT_NE(std::string(e.what()).find("cannot change the algorithm"), std::string::npos) << e.what();
	// an algorithm without the base's task
	pgml::TrainSpec nb = make_spec(t, Algorithm::NaiveBayes, 0.2);
	nb.replace_algorithm = true;
	expect_error([&]() { pgml::Trainer tr(nb, *v1.model, false); }, ErrorCode::InvalidParameter);
	// a hyperparameter of another algorithm
	pgml::TrainSpec bad = make_spec(t, Algorithm::DecisionTree, 0.2);
	bad.replace_algorithm = true;
	bad.hyperparams["alpha"] = OptionValue::of_number(1);
	expect_error([&]() { pgml::Trainer tr(bad, *v1.model, false); }, ErrorCode::InvalidParameter);
}
