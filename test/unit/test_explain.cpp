// ml_explain's core (Model::explain): base + contributions = the model's output for the row;
// exact for the linear family, libxgboost's tree SHAP for gradient_boosting.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using namespace pgml_test;

namespace {

Table mixed(int rows, bool classify)
{
	Rng rng(5);
	Table t;
	t.features = {numeric_col("x"), numeric_col("z"), text_col("k")};
	t.target = classify ? text_col("y") : numeric_col("y");
	for (int i = 0; i < rows; i++) {
		double x = rng.normal(), z = rng.normal();
		bool a = i % 3 == 0;
		double y = 3 * x - 2 * z + (a ? 1.5 : 0) + 0.1 * rng.normal();
		t.add({num(x), num(z), str(a ? "a" : "b")}, classify ? str(y > 0 ? "pos" : "neg") : num(y));
	}
	return t;
}

double sum_of(const pgml::Explanation &e, const std::vector<double> &v)
{
	double s = e.base;
	for (double c : v)
		s += c;
	return s;
}

} // namespace

TEST(Explain, LinearRegressionIsCoefficientTimesDistanceFromTheMean)
{
	Table t = mixed(400, false);
	Trained tr = train(make_spec(t, Algorithm::LinearRegression, 0.2), t);
	const pgml::Model &m = *tr.model;
	std::vector<Cell> row = {num(0.7), num(-1.2), str("a")};
	pgml::Explanation e = m.explain(to_values(m, row).data());
	double pred = predict(m, row)[0];
	EXPECT_EQ(e.output, "value");
	EXPECT_NEAR(e.value, pred, 1e-9);
	EXPECT_NEAR(sum_of(e, e.feature), pred, 1e-9);
	EXPECT_NEAR(sum_of(e, e.column), pred, 1e-9);
	ASSERT_EQ(e.column.size(), 3u);
	// x's contribution: its coefficient (about 3) times its distance from the training mean
	EXPECT_NEAR(e.column[0] / (0.7 - m.prep.center(0)), 3.0, 0.05);
	EXPECT_NEAR(e.column[1] / (-1.2 - m.prep.center(1)), -2.0, 0.05);
	// the base is the prediction at the means: about the mean of y
	EXPECT_NEAR(e.base, m.b(0) + m.W.col(0).dot(m.prep.center), 1e-9);
}

TEST(Explain, LogisticRegressionExplainsThePredictedClassLogOdds)
{
	Table t = mixed(400, true);
	Trained tr = train(make_spec(t, Algorithm::LogisticRegression, 0.2), t);
	const pgml::Model &m = *tr.model;
	for (double x : {-1.0, 1.0}) {
		std::vector<Cell> row = {num(x), num(0.1), str("b")};
		int cls = -1;
		std::vector<double> p = predict(m, row, &cls);
		pgml::Explanation e = m.explain(to_values(m, row).data());
		EXPECT_EQ(e.klass, cls);
		EXPECT_EQ(e.output, "log-odds");
		EXPECT_NEAR(1 / (1 + std::exp(-e.value)), p[static_cast<size_t>(cls)], 1e-12);
		EXPECT_NEAR(sum_of(e, e.feature), e.value, 1e-12);
	}
}

TEST(Explain, GradientBoostingShapValuesAddUpToTheMargin)
{
	Table t = mixed(400, false);
	pgml::TrainSpec spec = make_spec(t, Algorithm::GradientBoosting, 0.2);
	spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(30);
	Trained tr = train(spec, t);
	const pgml::Model &m = *tr.model;
	std::vector<Cell> row = {num(0.7), num(-1.2), str("a")};
	pgml::Explanation e = m.explain(to_values(m, row).data());
	double pred = predict(m, row)[0];
	EXPECT_NEAR(e.value, pred, 1e-6 * std::fabs(pred));
	EXPECT_NEAR(sum_of(e, e.feature), e.value, 1e-9);
	// z matters and x does too; the shap values have the signs of the true function
	EXPECT_GT(e.column[0], 0);
	EXPECT_GT(e.column[1], 0);
}

TEST(Explain, OtherAlgorithmsSayTheyCannot)
{
	Table t = mixed(200, true);
	Trained tr = train(make_spec(t, Algorithm::DecisionTree, 0.2), t);
	std::vector<Cell> row = {num(0.7), num(-1.2), str("a")};
	pgml::Error e = expect_error([&]() { tr.model->explain(to_values(*tr.model, row).data()); },
	                             ErrorCode::FeatureNotSupported);
	EXPECT_NE(std::string(e.what()).find("decision_tree"), std::string::npos) << e.what();
}
