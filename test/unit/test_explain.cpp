// ml_explain's core (Model::explain): base + contributions = the model's output for the row;
// exact for the linear family, libxgboost's tree SHAP for gradient_boosting (decision_tree and
// random_forest: test_treeshap.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using namespace pgml_test;

namespace {

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
	Table t = explain_rows(400, false);
	Trained tr = train(make_spec(t, Algorithm::LinearRegression, 0.2), t);
	const pgml::Model &m = *tr.model;
	std::vector<Cell> row = {num(0.7), num(-1.2), str("a")};
	pgml::Explanation e = m.explain(to_values(m, row).data());
	double pred = predict(m, row)[0];
	EXPECT_STREQ(e.output, "value");
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
	Table t = explain_rows(400, true);
	Trained tr = train(make_spec(t, Algorithm::LogisticRegression, 0.2), t);
	const pgml::Model &m = *tr.model;
	for (double x : {-1.0, 1.0}) {
		std::vector<Cell> row = {num(x), num(0.1), str("b")};
		int cls = -1;
		std::vector<double> p = predict(m, row, &cls);
		pgml::Explanation e = m.explain(to_values(m, row).data());
		EXPECT_EQ(e.klass, cls);
		EXPECT_STREQ(e.output, "log-odds");
		EXPECT_NEAR(1 / (1 + std::exp(-e.value)), p[static_cast<size_t>(cls)], 1e-12);
		EXPECT_NEAR(sum_of(e, e.feature), e.value, 1e-12);
	}
}

TEST(Explain, GradientBoostingShapValuesAddUpToTheMargin)
{
	Table t = explain_rows(400, false);
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
	Table t = explain_rows(200, true);
	pgml::TrainSpec spec = make_spec(t, Algorithm::Mlp, 0.2);
	spec.hyperparams["max_iter"] = pgml::OptionValue::of_number(5);
	Trained tr = train(spec, t);
	std::vector<Cell> row = {num(0.7), num(-1.2), str("a")};
	pgml::Error e = expect_error([&]() { tr.model->explain(to_values(*tr.model, row).data()); },
	                             ErrorCode::FeatureNotSupported);
	EXPECT_NE(std::string(e.what()).find("mlp"), std::string::npos) << e.what();
}
