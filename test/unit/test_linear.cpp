// linear_regression and ridge through the Trainer, checked against closed-form
// solutions computed independently here with Eigen, plus incremental retraining, and
// models/linear.hpp's fit from the moments (what the Trainer's moments route stores).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/linear.hpp"
#include "test_util.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::Algorithm;
using namespace pgml_test;

namespace {

// y = 1.5 + 2 x1 - 3 x2 + 0.5 x3 + noise, x's on different scales.
Table numeric_table(size_t n, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x1"), numeric_col("x2"), numeric_col("x3")};
	t.target = numeric_col("y");
	for (size_t i = 0; i < n; i++) {
		double x1 = rng.normal(), x2 = 10 + 5 * rng.normal(), x3 = 1000 * rng.uniform();
		double y = 1.5 + 2 * x1 - 3 * x2 + 0.5 * x3 + 0.3 * rng.normal();
		t.add({num(x1), num(x2), num(x3)}, num(y));
	}
	return t;
}

// The numeric feature matrix of a table (NULLs replaced by the column's non-NULL mean).
MatrixXd design(const Table &t, VectorXd *y_out)
{
	const Eigen::Index n = static_cast<Eigen::Index>(t.size()), p = static_cast<Eigen::Index>(t.features.size());
	MatrixXd X(n, p);
	for (Eigen::Index j = 0; j < p; j++) {
		double sum = 0;
		int cnt = 0;
		for (Eigen::Index i = 0; i < n; i++) {
			const Cell &c = t.rows[static_cast<size_t>(i)][static_cast<size_t>(j)];
			if (!c.null) {
				sum += c.num;
				cnt++;
			}
		}
		for (Eigen::Index i = 0; i < n; i++) {
			const Cell &c = t.rows[static_cast<size_t>(i)][static_cast<size_t>(j)];
			X(i, j) = c.null ? sum / cnt : c.num;
		}
	}
	if (y_out) {
		y_out->resize(n);
		for (Eigen::Index i = 0; i < n; i++)
			(*y_out)(i) = t.y[static_cast<size_t>(i)].num;
	}
	return X;
}

MatrixXd with_intercept(const MatrixXd &X)
{
	MatrixXd A(X.rows(), X.cols() + 1);
	A.col(0).setOnes();
	A.rightCols(X.cols()) = X;
	return A;
}

void expect_coefficients(const pgml::Model &m, const VectorXd &beta, double tol)
{
	ASSERT_EQ(m.W.rows() + 1, beta.size());
	ASSERT_EQ(m.W.cols(), 1);
	EXPECT_NEAR(m.b(0), beta(0), tol * std::max(1.0, std::fabs(beta(0))));
	for (Eigen::Index j = 0; j < m.W.rows(); j++)
		EXPECT_NEAR(m.W(j, 0), beta(j + 1), tol * std::max(1.0, std::fabs(beta(j + 1)))) << "feature " << j;
}

} // namespace

TEST(LinearRegression, EqualsLeastSquaresClosedForm)
{
	Table t = numeric_table(60, 11);
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	VectorXd y;
	MatrixXd A = with_intercept(design(t, &y));
	VectorXd beta = A.colPivHouseholderQr().solve(y);
	expect_coefficients(*r.model, beta, 1e-9);
	EXPECT_EQ(r.result.rows_train, 60);
	EXPECT_EQ(r.result.rows_test, 0);
	EXPECT_TRUE(std::isnan(r.result.primary_test));
	EXPECT_EQ(r.result.primary_metric, "r2");

	// train metrics against the residuals computed directly
	VectorXd resid = y - A * beta;
	double sse = resid.squaredNorm();
	double sst = (y.array() - y.mean()).square().sum();
	double mae = resid.cwiseAbs().mean();
	const std::string &js = r.result.metrics_json;
	EXPECT_NEAR(json_number(js, {"train", "r2"}), 1 - sse / sst, 1e-9);
	EXPECT_NEAR(json_number(js, {"train", "mse"}), sse / 60, 1e-9 * sse / 60);
	EXPECT_NEAR(json_number(js, {"train", "rmse"}), std::sqrt(sse / 60), 1e-9);
	EXPECT_NEAR(json_number(js, {"train", "mae"}), mae, 1e-9);
	EXPECT_EQ(json_number(js, {"train", "rows"}), 60);
	EXPECT_EQ(js.find("\"test\""), std::string::npos) << js;

	// predict() on every row equals A beta
	for (size_t i = 0; i < t.size(); i++)
		EXPECT_NEAR(predict(*r.model, t.rows[i])[0], (A * beta)(static_cast<Eigen::Index>(i)), 1e-8);
}

TEST(LinearRegression, ResultDoesNotDependOnBatchSize)
{
	Table t = numeric_table(50, 12);
	Trained a = train(make_spec(t, Algorithm::LinearRegression), t, 1);
	Trained b = train(make_spec(t, Algorithm::LinearRegression), t, 1000);
	EXPECT_LT(max_rel_diff(a.model->W, b.model->W), 1e-10);
	EXPECT_LT(max_rel_diff(a.model->b, b.model->b), 1e-10);
}

TEST(LinearRegression, NullsAreMeanImputedBeforeTheFit)
{
	Table t = numeric_table(80, 13);
	for (size_t i = 0; i < t.size(); i += 5)
		t.rows[i][1] = null();
	t.rows[3][0] = null();
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	VectorXd y;
	MatrixXd X = design(t, &y);
	VectorXd beta = with_intercept(X).colPivHouseholderQr().solve(y);
	expect_coefficients(*r.model, beta, 1e-9);
	EXPECT_NEAR(r.model->prep.columns[1].impute_value, X.col(1).mean(), 1e-12 * std::fabs(X.col(1).mean()));
	EXPECT_EQ(json_number(r.result.report_json, {"imputed", "x2"}), 16);
	EXPECT_EQ(json_number(r.result.report_json, {"imputed", "x1"}), 1);
	// a NULL at prediction time takes the imputed value
	std::vector<Cell> row = {num(0.5), null(), num(100)};
	double expected = beta(0) + beta(1) * 0.5 + beta(2) * X.col(1).mean() + beta(3) * 100;
	EXPECT_NEAR(predict(*r.model, row)[0], expected, 1e-8);
}

TEST(LinearRegression, TestMetricsFromMomentsMatchRowByRow)
{
	// the test split's r2 is computed from moments; evaluating the same model row by row
	// (through the `compare` path) on the same held-out rows must agree
	Table t = numeric_table(200, 14);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0.3, 7);
	Trained first = train(spec, t);
	ASSERT_GT(first.result.rows_test, 30);
	ASSERT_EQ(first.result.rows_test + first.result.rows_train, 200);
	pgml::Trainer tr(spec);
	feed(tr, t);
	auto second = tr.finish(nullptr, first.model.get());
	const double from_moments = tr.result().primary_test;
	// the moments keep no held-out rows: both models are scored on them in one more pass
	ASSERT_TRUE(tr.needs_compare_pass());
	for (size_t b = 0; b < t.size(); b += 9) {
		BatchData bd(t, b, std::min(t.size(), b + 9));
		tr.add_compare_batch(bd.batch(), *second, *first.model, nullptr);
	}
	tr.end_compare_pass();
	const pgml::TrainResult &res = tr.result();
	ASSERT_TRUE(res.compared);
	EXPECT_NEAR(res.primary_test, from_moments, 1e-9);
	EXPECT_EQ(json_number(res.metrics_json, {"test", "rows"}), json_number(res.previous_metrics_json, {"rows"}));
	EXPECT_EQ(json_number(res.test_json, {"mae"}), json_number(res.metrics_json, {"test", "mae"}));
	EXPECT_NEAR(json_number(res.test_json, {"mae"}), json_number(res.previous_metrics_json, {"mae"}), 1e-9);
	EXPECT_NEAR(res.previous_primary, res.primary_test, 1e-9);
	EXPECT_NEAR(res.primary_compare_new, res.primary_test, 1e-9);
	EXPECT_NEAR(json_number(res.metrics_json, {"test", "r2"}), res.primary_test, 1e-12);
	EXPECT_NEAR(json_number(res.metrics_json, {"test", "mse"}), json_number(res.previous_metrics_json, {"mse"}),
	            1e-9 * json_number(res.previous_metrics_json, {"mse"}));
	// the training rows alone give the closed form
	EXPECT_EQ(first.model->W, second->W);
}

TEST(Ridge, EqualsClosedFormOnStandardizedFeatures)
{
	Table t = numeric_table(45, 21);
	for (double alpha : {0.0, 0.1, 2.5, 100.0}) {
		pgml::TrainSpec spec = make_spec(t, Algorithm::Ridge);
		spec.hyperparams["alpha"] = pgml::OptionValue::of_number(alpha);
		Trained r = train(spec, t);
		VectorXd y;
		MatrixXd X = design(t, &y);
		VectorXd mean = X.colwise().mean().transpose();
		MatrixXd Xc = X.rowwise() - mean.transpose();
		VectorXd sd = (Xc.colwise().squaredNorm() / static_cast<double>(X.rows())).cwiseSqrt().transpose();
		MatrixXd Z = Xc.array().rowwise() / sd.transpose().array();
		MatrixXd G = Z.transpose() * Z;
		G.diagonal().array() += alpha;
		VectorXd wz = G.ldlt().solve(Z.transpose() * y);
		VectorXd w = wz.array() / sd.array();
		VectorXd beta(4);
		beta(0) = y.mean() - w.dot(mean);
		beta.tail(3) = w;
		SCOPED_TRACE("alpha " + std::to_string(alpha));
		expect_coefficients(*r.model, beta, 1e-9);
		EXPECT_EQ(r.model->hyperparams.num("alpha"), alpha);
	}
}

TEST(Ridge, LargeAlphaShrinksTowardsTheMean)
{
	Table t = numeric_table(30, 22);
	pgml::TrainSpec spec = make_spec(t, Algorithm::Ridge);
	spec.hyperparams["alpha"] = pgml::OptionValue::of_number(1e12);
	Trained r = train(spec, t);
	VectorXd y;
	design(t, &y);
	EXPECT_LT(r.model->W.cwiseAbs().maxCoeff(), 1e-6);
	EXPECT_NEAR(r.model->b(0), y.mean(), 1e-3);
}

TEST(LinearRegression, CollinearOneHotColumnsGiveLeastSquaresPredictions)
{
	// one-hot levels of c always sum to 1, the intercept's column: the Gram matrix is singular
	Rng rng(31);
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = numeric_col("y");
	const char *levels[] = {"red", "green", "blue"};
	const double effect[] = {1.0, -2.0, 4.0};
	for (int i = 0; i < 40; i++) {
		double x = rng.normal();
		int l = i % 3;
		bool isnull = i % 10 == 9;
		t.add({num(x), isnull ? null() : str(levels[l])}, num(3 * x + (isnull ? 0.5 : effect[l]) + 0.1 * rng.normal()));
	}
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	EXPECT_TRUE(r.model->W.allFinite());
	EXPECT_TRUE(r.model->b.allFinite());
	ASSERT_EQ(r.model->prep.feature_names,
	          (std::vector<std::string>{"x", "c=blue", "c=green", "c=red", "c=NULL"}));
	// independent least squares on [1 x onehot] (rank deficient: minimum-norm solution)
	MatrixXd A = MatrixXd::Zero(40, 6);
	VectorXd y(40);
	for (int i = 0; i < 40; i++) {
		const auto &row = t.rows[static_cast<size_t>(i)];
		A(i, 0) = 1;
		A(i, 1) = row[0].num;
		int k = row[1].null ? 5 : row[1].str == "blue" ? 2 : row[1].str == "green" ? 3 : 4;
		A(i, k) = 1;
		y(i) = t.y[static_cast<size_t>(i)].num;
	}
	Eigen::CompleteOrthogonalDecomposition<MatrixXd> cod(A);
	EXPECT_EQ(cod.rank(), 5);
	VectorXd fitted = A * cod.solve(y);
	for (int i = 0; i < 40; i++)
		EXPECT_NEAR(predict(*r.model, t.rows[static_cast<size_t>(i)])[0], fitted(i), 1e-9) << "row " << i;
	// the slope of x is identified even though the level effects are not
	EXPECT_NEAR(r.model->W(0, 0), cod.solve(y)(1), 1e-9);
	// r2 from the trainer matches the fitted values
	double sse = (y - fitted).squaredNorm(), sst = (y.array() - y.mean()).square().sum();
	EXPECT_NEAR(json_number(r.result.metrics_json, {"train", "r2"}), 1 - sse / sst, 1e-9);
	// an unseen level contributes nothing but still predicts
	std::vector<Cell> unseen = {num(1.0), str("purple")};
	EXPECT_TRUE(std::isfinite(predict(*r.model, unseen)[0]));
}

TEST(LinearRegression, DuplicatedNumericColumnIsHandled)
{
	Table base = numeric_table(30, 32);
	Table t;
	t.features = {numeric_col("a"), numeric_col("a_copy"), numeric_col("b")};
	t.target = base.target;
	for (size_t i = 0; i < base.size(); i++)
		t.add({base.rows[i][0], base.rows[i][0], base.rows[i][1]}, base.y[i]);
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	EXPECT_TRUE(r.model->W.allFinite());
	VectorXd y;
	MatrixXd A = with_intercept(design(t, &y));
	Eigen::CompleteOrthogonalDecomposition<MatrixXd> cod(A);
	VectorXd fitted = A * cod.solve(y);
	for (size_t i = 0; i < t.size(); i++)
		EXPECT_NEAR(predict(*r.model, t.rows[i])[0], fitted(static_cast<Eigen::Index>(i)), 1e-8);
	// minimum norm splits the weight evenly between the copies
	EXPECT_NEAR(r.model->W(0, 0), r.model->W(1, 0), 1e-8);
}

TEST(LinearRegression, ConstantFeatureDoesNotBreakTheFit)
{
	Table t = numeric_table(25, 33);
	for (auto &row : t.rows)
		row[2] = num(7.0);
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	EXPECT_TRUE(r.model->W.allFinite());
	VectorXd y;
	MatrixXd A = with_intercept(design(t, &y));
	VectorXd fitted = A * Eigen::CompleteOrthogonalDecomposition<MatrixXd>(A).solve(y);
	for (size_t i = 0; i < t.size(); i++)
		EXPECT_NEAR(predict(*r.model, t.rows[i])[0], fitted(static_cast<Eigen::Index>(i)), 1e-8);
}

// ---------------------------------------------------------------- incremental retraining

namespace {

// Numeric x (with NULLs), numeric z, and a categorical c whose level "late" only occurs in
// rows [n_a, n) (part B).
Table mixed_table(size_t n, size_t n_a, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), text_col("c"), numeric_col("z")};
	t.target = numeric_col("y");
	const char *early[] = {"alpha", "beta", "gamma"};
	for (size_t i = 0; i < n; i++) {
		double x = 5 + 2 * rng.normal(), z = rng.uniform() * 100;
		bool x_null = i % 7 == 3;
		std::string c = (i >= n_a && i % 3 == 0) ? "late" : early[rng.below(3)];
		bool c_null = i % 11 == 5;
		double y = 2 * (x_null ? 5 : x) - 0.1 * z + (c_null ? -1.0 : c == "late" ? 6.0 : c == "alpha" ? 1.0 : 0.0) +
		           0.5 * rng.normal();
		t.add({x_null ? null() : num(x), c_null ? null() : str(c), num(z)}, num(y));
	}
	return t;
}

void expect_same_model(const pgml::Model &a, const pgml::Model &b, double tol)
{
	ASSERT_EQ(a.prep.feature_names, b.prep.feature_names);
	EXPECT_LE(max_rel_diff(a.W, b.W), tol);
	EXPECT_LE(max_rel_diff(a.b, b.b), tol);
	for (size_t c = 0; c < a.prep.columns.size(); c++)
		EXPECT_NEAR(a.prep.columns[c].impute_value, b.prep.columns[c].impute_value,
		            tol * std::max(1.0, std::fabs(b.prep.columns[c].impute_value)));
	EXPECT_LE(max_rel_diff(a.prep.center, b.prep.center), tol);
	EXPECT_LE(max_rel_diff(a.prep.scale, b.prep.scale), tol);
}

} // namespace

TEST(Incremental, RetrainEqualsTrainingOnAllRows)
{
	for (Algorithm alg : {Algorithm::LinearRegression, Algorithm::Ridge}) {
		SCOPED_TRACE(pgml::algorithm_name(alg));
		Table all = mixed_table(150, 90, 41);
		Table a = all.slice(0, 90), b = all.slice(90, 150);
		pgml::TrainSpec spec = make_spec(a, alg, 0.0);
		if (alg == Algorithm::Ridge)
			spec.hyperparams["alpha"] = pgml::OptionValue::of_number(0.7);
		Trained base = train(spec, a);
		// "late" is not a level of the base model
		for (const auto &f : base.model->prep.feature_names)
			EXPECT_EQ(f.find("late"), std::string::npos);
		// the retrain goes through a blob, as in the database
		std::vector<uint8_t> blob = base.model->serialize();
		auto loaded = pgml::Model::deserialize(blob.data(), blob.size());
		Trained inc = retrain(make_spec(a, alg, 0.0), *loaded, true, b);
		Trained fresh = train(spec, all);
		expect_same_model(*inc.model, *fresh.model, 1e-8);
		EXPECT_NE(std::find(inc.model->prep.feature_names.begin(), inc.model->prep.feature_names.end(), "c=late"),
		          inc.model->prep.feature_names.end());
		EXPECT_EQ(inc.result.rows_train, 150);
		EXPECT_EQ(json_number(inc.result.report_json, {"rows_before"}), 90);
		EXPECT_EQ(json_number(inc.result.report_json, {"rows_added"}), 60);
		EXPECT_EQ(inc.model->stats.n(), 150);
		// mean imputation over all non-NULL x
		double sum = 0;
		int cnt = 0;
		for (const auto &row : all.rows)
			if (!row[0].null) {
				sum += row[0].num;
				cnt++;
			}
		EXPECT_NEAR(inc.model->prep.columns[0].impute_value, sum / cnt, 1e-12 * sum / cnt);
		EXPECT_NEAR(json_number(inc.result.metrics_json, {"train", "r2"}),
		            json_number(fresh.result.metrics_json, {"train", "r2"}), 1e-9);
		// and predictions agree
		for (size_t i = 0; i < all.size(); i += 7)
			EXPECT_NEAR(predict(*inc.model, all.rows[i])[0], predict(*fresh.model, all.rows[i])[0], 1e-8);
		// a second increment keeps going
		Table c = mixed_table(40, 0, 42);
		Trained inc2 = retrain(make_spec(a, alg, 0.0), *inc.model, true, c);
		Trained fresh2 = train(spec, all.concat(c));
		expect_same_model(*inc2.model, *fresh2.model, 1e-8);
	}
}

TEST(Incremental, NullsFirstSeenInTheNewRows)
{
	Table all = mixed_table(100, 60, 43);
	for (size_t i = 0; i < 60; i++)
		if (all.rows[i][0].null)
			all.rows[i][0] = num(4.0);
	Table a = all.slice(0, 60), b = all.slice(60, 100);
	pgml::TrainSpec spec = make_spec(a, Algorithm::LinearRegression, 0.0);
	Trained base = train(spec, a);
	Trained inc = retrain(spec, *base.model, true, b);
	Trained fresh = train(spec, all);
	expect_same_model(*inc.model, *fresh.model, 1e-8);
}

TEST(Incremental, RefitAndUnsupportedCases)
{
	Table all = mixed_table(80, 50, 44);
	Table a = all.slice(0, 50), b = all.slice(50, 80);
	pgml::TrainSpec spec = make_spec(a, Algorithm::LinearRegression, 0.0);
	Trained base = train(spec, a);
	// refit ignores the base rows
	Trained refit = retrain(spec, *base.model, false, b);
	Trained only_b = train(spec, b);
	expect_same_model(*refit.model, *only_b.model, 1e-12);
	// median imputation cannot be kept exact
	pgml::TrainSpec med = spec;
	med.preprocess["impute"] = pgml::OptionValue::of_string("median");
	Trained mbase = train(med, a);
	expect_error([&] { pgml::Trainer t(spec, *mbase.model, true); }, pgml::ErrorCode::FeatureNotSupported);
	// logistic regression keeps no statistics
	Table cls;
	cls.features = {numeric_col("x")};
	cls.target = text_col("label");
	for (int i = 0; i < 20; i++)
		cls.add({num(i)}, str(i < 10 ? "lo" : "hi"));
	Trained logit = train(make_spec(cls, Algorithm::LogisticRegression), cls);
	expect_error([&] { pgml::Trainer t(make_spec(cls, Algorithm::LogisticRegression), *logit.model, true); },
	             pgml::ErrorCode::FeatureNotSupported);
}

TEST(Incremental, MinMaxScalingKeepsTheRangeOfEarlierRows)
{
	// ridge depends on the scaling, so the incremental min / max must equal the full data's
	Table all = mixed_table(120, 70, 45);
	pgml::TrainSpec spec = make_spec(all, Algorithm::Ridge, 0.0);
	spec.hyperparams["alpha"] = pgml::OptionValue::of_number(3.0);
	spec.preprocess["scale"] = pgml::OptionValue::of_string("minmax");
	spec.preprocess["columns.x.impute"] = pgml::OptionValue::of_string("constant");
	spec.preprocess["columns.x.impute_value"] = pgml::OptionValue::of_number(-20);
	Table a = all.slice(0, 70), b = all.slice(70, 120);
	Trained base = train(spec, a);
	Trained inc = retrain(spec, *base.model, true, b);
	Trained fresh = train(spec, all);
	expect_same_model(*inc.model, *fresh.model, 1e-8);
	EXPECT_EQ(fresh.model->prep.center(0), -20.0); // the constant widens the range
}

// DISABLED: fails, a core bug. Trainer(spec, base, incremental) recovers a min-max column's
// earlier maximum as center + scale, but fit_preprocessor stores scale 1 when max == min,
// so a column constant in the base rows gets max = min + 1 (scale 1 instead of 0.39 here).
TEST(Incremental, MinMaxColumnConstantInTheBaseRows)
{
	// z is constant (7) in the base rows and varies in the new ones
	Table all = mixed_table(100, 60, 46);
	for (size_t i = 0; i < 60; i++)
		all.rows[i][2] = num(7.0);
	for (size_t i = 60; i < 100; i++)
		all.rows[i][2] = num(7.0 + 0.01 * static_cast<double>(i - 60));
	pgml::TrainSpec spec = make_spec(all, Algorithm::Ridge, 0.0);
	spec.hyperparams["alpha"] = pgml::OptionValue::of_number(3.0);
	spec.preprocess["columns.z.scale"] = pgml::OptionValue::of_string("minmax");
	Trained base = train(spec, all.slice(0, 60));
	Trained inc = retrain(spec, *base.model, true, all.slice(60, 100));
	Trained fresh = train(spec, all);
	EXPECT_NEAR(fresh.model->prep.scale(fresh.model->prep.p() - 1), 0.39, 1e-12);
	expect_same_model(*inc.model, *fresh.model, 1e-8);
}

// ---------------------------------------------------------------- models/linear.hpp

namespace {

// The fit from a model's own statistics, as the moments route computes it.
pgml::LinearFit refit(const pgml::Model &m)
{
	MatrixXd A;
	VectorXd c0;
	m.prep.affine(m.encoder, A, c0);
	pgml::LinearMoments t = pgml::project_moments(m.stats, A, c0, m.encoder.target_slot());
	return pgml::fit_linear_from_moments(m.algorithm, m.hyperparams, m.prep, m.features, t, m.stats.n(), nullptr);
}

} // namespace

TEST(LinearFit, IsWhatTheTrainerStores)
{
	const Table t = mixed_table(400, 200, 3);
	for (Algorithm a : {Algorithm::LinearRegression, Algorithm::Ridge, Algorithm::Lasso, Algorithm::ElasticNet}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		pgml::TrainSpec spec = make_spec(t, a, 0.25, 5);
		if (a != Algorithm::LinearRegression)
			spec.hyperparams["alpha"] = pgml::OptionValue::of_number(0.01);
		Trained tr = train(spec, t);
		ASSERT_TRUE(tr.model->has_stats);
		pgml::LinearFit fit = refit(*tr.model);
		ASSERT_EQ(fit.w.size(), tr.model->W.rows());
		for (Eigen::Index j = 0; j < fit.w.size(); j++)
			EXPECT_EQ(fit.w(j), tr.model->W(j, 0)) << j;
		EXPECT_EQ(fit.b, tr.model->b(0));
		EXPECT_EQ(fit.solve.rank, tr.result.solve_rank);
		EXPECT_EQ(fit.inference_json, tr.result.inference_json);
		EXPECT_EQ(fit.log.size(), tr.result.log.size());
		EXPECT_NEAR(1 - fit.sse / fit.sst, json_number(tr.result.metrics_json, {"train", "r2"}), 1e-12);
	}
}

TEST(LinearFit, LeastSquaresReportsRankAndConstantColumns)
{
	// x2 = 2 x1 exactly, x3 constant: rank 1 of 3, x3 named as constant, x1 and x2 collinear
	Table t;
	t.features = {numeric_col("x1"), numeric_col("x2"), numeric_col("x3")};
	t.target = numeric_col("y");
	Rng rng(7);
	for (int i = 0; i < 50; i++) {
		double x = rng.normal();
		t.add({num(x), num(2 * x), num(4)}, num(3 * x + 0.01 * rng.normal()));
	}
	Trained tr = train(make_spec(t, Algorithm::LinearRegression), t);
	pgml::LinearFit fit = refit(*tr.model);
	EXPECT_EQ(fit.solve.rank, 1);
	EXPECT_EQ(fit.solve.columns, 3);
	EXPECT_EQ(fit.solve.constant, std::vector<std::string>{"x3"});
	EXPECT_EQ(fit.solve.collinear, (std::vector<std::string>{"x1", "x2"}));
	EXPECT_EQ(fit.solve.warnings.size(), 2u);
	EXPECT_EQ(tr.result.warnings.size(), fit.solve.warnings.size());
	// the fit's predictions are the least-squares ones whatever the split of 3 between x1 and x2
	EXPECT_NEAR(fit.w(0) + 2 * fit.w(1), 3, 0.01);
}
