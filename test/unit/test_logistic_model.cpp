// logistic_regression through the Trainer: accuracy on easy data, class order,
// the stratified split, optimality of the fit, and determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::Algorithm;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

// Two well separated 1-D clusters plus a noise feature and a categorical one.
Table separable_table()
{
	Rng rng(51);
	Table t;
	t.features = {numeric_col("x"), numeric_col("noise"), text_col("tag")};
	t.target = text_col("label");
	for (int i = 0; i < 60; i++) {
		bool pos = i % 2 == 0;
		double x = (pos ? 3.0 : -3.0) + 0.5 * rng.normal();
		t.add({num(x), num(rng.normal()), str(i % 3 ? "u" : "v")}, str(pos ? "pos" : "neg"));
	}
	return t;
}

// Three 2-D clusters; cluster sizes 40 / 20 / 13.
Table three_class_table(double spread, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x1"), numeric_col("x2")};
	t.target = text_col("species");
	const char *names[] = {"setosa", "versicolor", "virginica"};
	const double cx[] = {0, 5, -5}, cy[] = {5, 0, -5};
	const int counts[] = {40, 20, 13};
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < counts[k]; i++)
			t.add({num(cx[k] + spread * rng.normal()), num(cy[k] + spread * rng.normal())}, str(names[k]));
	// interleave so batches mix the classes
	Table mixed = t.slice(0, 0);
	for (size_t i = 0; i < t.size(); i++) {
		size_t j = (i * 37) % t.size();
		mixed.add(t.rows[j], t.y[j]);
	}
	return mixed;
}

} // namespace

TEST(Logistic, SeparableBinaryIsPerfect)
{
	Table t = separable_table();
	Trained r = train(make_spec(t, Algorithm::LogisticRegression, 0.25), t);
	const pgml::Model &m = *r.model;
	EXPECT_EQ(m.task, pgml::Task::Classification);
	EXPECT_EQ(m.classes, (std::vector<std::string>{"neg", "pos"}));
	EXPECT_EQ(m.W.cols(), 1);
	EXPECT_EQ(m.n_outputs(), 2);
	EXPECT_EQ(r.result.primary_metric, "accuracy");
	EXPECT_EQ(r.result.primary_test, 1.0);
	EXPECT_EQ(json_number(r.result.metrics_json, {"train", "accuracy"}), 1.0);
	EXPECT_EQ(json_number(r.result.metrics_json, {"test", "accuracy"}), 1.0);
	EXPECT_EQ(r.result.rows_train + r.result.rows_test, 60);
	EXPECT_EQ(r.result.rows_test, 16); // 8 of each class (llround(7.5) = 8)
	EXPECT_NE(r.result.report_json.find("\"split\":\"stratified\""), std::string::npos);
	EXPECT_FALSE(r.result.log.empty());
	// every row predicted right, probabilities sum to 1
	for (size_t i = 0; i < t.size(); i++) {
		int cls = -1;
		std::vector<double> p = predict(m, t.rows[i], &cls);
		ASSERT_EQ(p.size(), 2u);
		EXPECT_NEAR(p[0] + p[1], 1.0, 1e-15);
		EXPECT_EQ(m.classes[static_cast<size_t>(cls)], t.y[i].str);
		EXPECT_GT(p[static_cast<size_t>(cls)], 0.5);
	}
}

TEST(Logistic, FitSatisfiesTheOptimalityConditions)
{
	// gradient of 0.5*||w_z||^2 + C * sum logloss at the fitted (standardized) coefficients
	Rng rng(52);
	Table t;
	t.features = {numeric_col("a"), numeric_col("b")};
	t.target = numeric_col("y");
	for (int i = 0; i < 80; i++) {
		double a = rng.normal() * 4 + 10, b = rng.normal();
		double logit = 0.5 * (a - 10) - 1.5 * b + 0.3;
		bool y = rng.uniform() < 1 / (1 + std::exp(-logit));
		t.add({num(a), num(b)}, num(y ? 1 : 0));
	}
	const double C = 0.7;
	pgml::TrainSpec spec = make_spec(t, Algorithm::LogisticRegression);
	spec.hyperparams["C"] = OptionValue::of_number(C);
	spec.hyperparams["tol"] = OptionValue::of_number(1e-10);
	Trained r = train(spec, t);
	const pgml::Model &m = *r.model;
	ASSERT_EQ(m.classes, (std::vector<std::string>{"0", "1"}));
	// standardize independently
	MatrixXd X(80, 2);
	VectorXd y(80);
	for (int i = 0; i < 80; i++) {
		X(i, 0) = t.rows[static_cast<size_t>(i)][0].num;
		X(i, 1) = t.rows[static_cast<size_t>(i)][1].num;
		y(i) = t.y[static_cast<size_t>(i)].num;
	}
	VectorXd mean = X.colwise().mean().transpose();
	MatrixXd Xc = X.rowwise() - mean.transpose();
	VectorXd sd = (Xc.colwise().squaredNorm() / 80.0).cwiseSqrt().transpose();
	MatrixXd Z = Xc.array().rowwise() / sd.transpose().array();
	VectorXd wz = m.W.col(0).cwiseProduct(sd);
	double bz = m.b(0) + m.W.col(0).dot(mean);
	VectorXd p = (1.0 + (-(Z * wz).array() - bz).exp()).inverse().matrix();
	VectorXd gw = wz + C * Z.transpose() * (p - y);
	double gb = C * (p - y).sum();
	EXPECT_LT(gw.cwiseAbs().maxCoeff() / (C * 80), 1e-6) << gw.transpose();
	EXPECT_LT(std::fabs(gb) / (C * 80), 1e-6) << gb;
	// sanity: the slope signs
	EXPECT_GT(m.W(0, 0), 0);
	EXPECT_LT(m.W(1, 0), 0);
	// predict() is the logistic function of the raw linear score
	std::vector<double> out = predict(m, {num(12), num(-0.5)});
	double s = m.b(0) + m.W(0, 0) * 12 + m.W(1, 0) * -0.5;
	EXPECT_NEAR(out[1], 1 / (1 + std::exp(-s)), 1e-15);
}

TEST(Logistic, MultinomialThreeClasses)
{
	Table t = three_class_table(0.8, 53);
	Trained r = train(make_spec(t, Algorithm::LogisticRegression, 0.2), t);
	const pgml::Model &m = *r.model;
	EXPECT_EQ(m.classes, (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
	EXPECT_EQ(m.W.cols(), 3);
	EXPECT_EQ(m.W.rows(), 2);
	EXPECT_EQ(m.b.size(), 3);
	EXPECT_EQ(m.n_outputs(), 3);
	EXPECT_EQ(json_number(r.result.metrics_json, {"train", "accuracy"}), 1.0);
	EXPECT_EQ(r.result.primary_test, 1.0);
	int cls = -1;
	std::vector<double> p = predict(m, {num(-5), num(-5)}, &cls);
	EXPECT_EQ(cls, 2);
	EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-15);
	EXPECT_GT(p[2], 0.9);
	predict(m, {num(5), num(0)}, &cls);
	EXPECT_EQ(cls, 1);
	predict(m, {num(0), num(5)}, &cls);
	EXPECT_EQ(cls, 0);
}

TEST(Logistic, ClassesAreSorted)
{
	// numeric labels numerically: 1 < 2 < 10 (bytewise "10" < "2")
	Table t;
	t.features = {numeric_col("x")};
	t.target = pgml::ColumnInfo{"grade", pgml::TypeClass::Numeric, "integer"};
	const double labels[] = {10, 2, 1, -3, 2.5};
	for (int i = 0; i < 50; i++)
		t.add({num(labels[i % 5] * 3 + 0.1 * (i % 7))}, num(labels[i % 5]));
	Trained r = train(make_spec(t, Algorithm::LogisticRegression), t);
	EXPECT_EQ(r.model->classes, (std::vector<std::string>{"-3", "1", "2", "2.5", "10"}));
	EXPECT_EQ(r.model->W.cols(), 5);

	// boolean targets: false < true
	Table b;
	b.features = {numeric_col("x")};
	b.target = pgml::ColumnInfo{"flag", pgml::TypeClass::Boolean, "boolean"};
	for (int i = 0; i < 20; i++)
		b.add({num(i)}, num(i < 10 ? 1 : 0));
	Trained rb = train(make_spec(b, Algorithm::LogisticRegression), b);
	EXPECT_EQ(rb.model->classes, (std::vector<std::string>{"false", "true"}));
	int cls = -1;
	predict(*rb.model, {num(0)}, &cls);
	EXPECT_EQ(cls, 1); // small x -> true

	// text targets bytewise
	Table s;
	s.features = {numeric_col("x")};
	s.target = text_col("label");
	const char *names[] = {"b", "a", "B", "c"};
	for (int i = 0; i < 40; i++)
		s.add({num(i % 4)}, str(names[i % 4]));
	Trained rs = train(make_spec(s, Algorithm::LogisticRegression), s);
	EXPECT_EQ(rs.model->classes, (std::vector<std::string>{"B", "a", "b", "c"}));
}

TEST(Logistic, StratifiedSplitKeepsClassProportions)
{
	Table t = three_class_table(3.0, 54);
	const char *names[] = {"setosa", "versicolor", "virginica"};
	const int counts[] = {40, 20, 13};
	for (double ts : {0.1, 0.25, 0.5}) {
		for (uint64_t seed : {1, 2, 3}) {
			Trained r = train(make_spec(t, Algorithm::LogisticRegression, ts, seed), t);
			int64_t total = 0;
			for (int k = 0; k < 3; k++) {
				double test_k = json_number(r.result.metrics_json, {"test", "per_class", names[k], "support"});
				double train_k = json_number(r.result.metrics_json, {"train", "per_class", names[k], "support"});
				EXPECT_LE(std::fabs(test_k - ts * counts[k]), 1.0) << names[k] << " ts " << ts;
				EXPECT_EQ(test_k + train_k, counts[k]);
				total += static_cast<int64_t>(test_k);
			}
			EXPECT_EQ(total, r.result.rows_test);
			EXPECT_EQ(r.result.rows_train + r.result.rows_test, 73);
		}
	}
	// a class with a single row stays in training
	Table one = t;
	one.add({num(100), num(100)}, str("rare"));
	Trained r = train(make_spec(one, Algorithm::LogisticRegression, 0.5), one);
	EXPECT_EQ(json_number(r.result.metrics_json, {"train", "per_class", "rare", "support"}), 1);
	EXPECT_EQ(json_number(r.result.metrics_json, {"test", "per_class", "rare", "support"}), 0);
}

TEST(Logistic, SameSeedSameBlobDifferentSeedDifferentSplit)
{
	Table t = three_class_table(3.0, 55);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LogisticRegression, 0.3, 1234);
	Trained a = train(spec, t, 5);
	Trained b = train(spec, t, 11); // batching does not matter either
	EXPECT_EQ(a.model->serialize(), b.model->serialize());
	EXPECT_EQ(a.result.metrics_json, b.result.metrics_json);
	EXPECT_EQ(a.result.fingerprint, b.result.fingerprint);
	Trained c = train(make_spec(t, Algorithm::LogisticRegression, 0.3, 999), t);
	EXPECT_EQ(c.result.rows_test, a.result.rows_test); // stratified: same counts
	EXPECT_NE(c.model->W, a.model->W);                 // but other rows
	EXPECT_NE(c.result.metrics_json, a.result.metrics_json);
	EXPECT_EQ(c.result.fingerprint, a.result.fingerprint); // same rows used overall

	// linear regression: random split
	Table reg;
	reg.features = {numeric_col("x")};
	reg.target = numeric_col("y");
	Rng rng(56);
	for (int i = 0; i < 100; i++) {
		double x = rng.normal();
		reg.add({num(x)}, num(2 * x + rng.normal()));
	}
	Trained r1 = train(make_spec(reg, Algorithm::LinearRegression, 0.3, 1), reg);
	Trained r1b = train(make_spec(reg, Algorithm::LinearRegression, 0.3, 1), reg);
	Trained r2 = train(make_spec(reg, Algorithm::LinearRegression, 0.3, 2), reg);
	EXPECT_EQ(r1.model->serialize(), r1b.model->serialize());
	EXPECT_NE(r1.model->W, r2.model->W);
	EXPECT_NE(r1.result.primary_test, r2.result.primary_test);
	EXPECT_NE(r1.result.report_json.find("\"split\":\"random\""), std::string::npos);
}

TEST(Logistic, CompareWithPreviousModel)
{
	Table t = three_class_table(2.0, 57);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LogisticRegression, 0.3, 5);
	Trained first = train(spec, t);
	pgml::Trainer tr(spec);
	feed(tr, t);
	auto second = tr.finish(nullptr, first.model.get());
	const pgml::TrainResult &res = tr.result();
	ASSERT_TRUE(res.compared);
	EXPECT_EQ(res.previous_primary, res.primary_test);
	EXPECT_EQ(res.primary_compare_new, res.primary_test);
	// the same model on the same rows: every metric, probabilities' ones included, is the same
	for (const char *k : {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "rows"}) {
		ASSERT_NE(res.previous_metrics_json.find(std::string("\"") + k + "\":"), std::string::npos) << k;
		EXPECT_NEAR(json_number(res.previous_metrics_json, {k}), json_number(res.test_json, {k}), 1e-12) << k;
	}
}
