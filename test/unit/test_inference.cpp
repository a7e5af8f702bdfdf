// Coefficient statistics (issue 12): the distribution functions against R's values, the
// inference math against closed forms computed here with Eigen (QR on the design), and the
// R-compatible options (penalty 'none', nulls 'drop', encoding 'drop_first') through the Trainer.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "distributions.hpp"
#include "inference.hpp"
#include "preprocess.hpp"
#include "serialize.hpp"
#include "test_util.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::Algorithm;
using pgml::OptionValue;
using namespace pgml_test;
namespace dist = pgml::dist;

namespace {

void expect_rel(double got, double want, double tol)
{
	EXPECT_NEAR(got, want, tol * std::fabs(want)) << "want " << want;
}

// values from R 4 (pbeta, pt, qt, pf, pnorm, qnorm), printed with 17 digits
TEST(Distributions, IncompleteBetaMatchesR)
{
	expect_rel(dist::incomplete_beta(2, 3, 0.5), 0.6875, 1e-14);
	expect_rel(dist::incomplete_beta(0.5, 0.5, 0.1), 0.20483276469913345, 1e-13);
	expect_rel(dist::incomplete_beta(10, 2, 0.9), 0.69735688019999997, 1e-13);
	expect_rel(dist::incomplete_beta(200, 300, 0.3), 1.0496985243292928e-06, 1e-10);
	EXPECT_EQ(dist::incomplete_beta(2, 3, 0), 0);
	EXPECT_EQ(dist::incomplete_beta(2, 3, 1), 1);
	EXPECT_TRUE(std::isnan(dist::incomplete_beta(-1, 3, 0.5)));
	EXPECT_TRUE(std::isnan(dist::incomplete_beta(1, 3, 1.5)));
}

TEST(Distributions, StudentTMatchesR)
{
	expect_rel(dist::t_cdf(2, 5), 0.9490302605850709, 1e-13);
	expect_rel(dist::t_cdf(-1.5, 1), 0.1871670418109988, 1e-13);
	expect_rel(dist::t_two_sided(-3.5, 30), 0.0014768074376442556, 1e-11);
	expect_rel(dist::t_two_sided(40, 3), 3.438068078915854e-05, 1e-11);
	EXPECT_EQ(dist::t_two_sided(0, 7), 1);
	expect_rel(dist::t_quantile(0.975, 10), 2.2281388519862739, 1e-12);
	expect_rel(dist::t_quantile(0.975, 1), 12.706204736174694, 1e-12);
	expect_rel(dist::t_quantile(0.995, 3.5), 5.0857022230912561, 1e-12);
	expect_rel(dist::t_quantile(0.025, 100), -1.983971518523552, 1e-12);
}

TEST(Distributions, FAndNormalMatchR)
{
	expect_rel(dist::f_upper(3, 2, 10), 0.095367431640624972, 1e-13);
	expect_rel(dist::f_upper(120, 5, 200), 3.1131063639780178e-58, 1e-9);
	EXPECT_EQ(dist::f_upper(0, 2, 10), 1);
	expect_rel(dist::normal_cdf(-1.96), 0.024997895148220428, 1e-14);
	expect_rel(dist::normal_two_sided(8), 1.244192114854357e-15, 1e-12);
	expect_rel(dist::normal_quantile(0.975), 1.9599639845400536, 1e-13);
	expect_rel(dist::normal_quantile(1e-10), -6.3613409024040557, 1e-12);
}

// OLS on a design with an intercept, the textbook way: QR of [1 X].
struct Ols {
	VectorXd beta, se;
	double sigma, r2, df;
};

Ols ols_qr(const MatrixXd &X, const VectorXd &y)
{
	const Eigen::Index n = X.rows(), p = X.cols();
	MatrixXd X1(n, p + 1);
	X1.col(0).setOnes();
	X1.rightCols(p) = X;
	Eigen::HouseholderQR<MatrixXd> qr(X1);
	Ols o;
	o.beta = qr.solve(y);
	VectorXd r = y - X1 * o.beta;
	o.df = static_cast<double>(n - p - 1);
	o.sigma = std::sqrt(r.squaredNorm() / o.df);
	MatrixXd R = qr.matrixQR().topRows(p + 1).triangularView<Eigen::Upper>();
	MatrixXd Rinv = R.triangularView<Eigen::Upper>().solve(MatrixXd::Identity(p + 1, p + 1));
	o.se = (Rinv * Rinv.transpose()).diagonal().cwiseSqrt() * o.sigma;
	o.r2 = 1 - r.squaredNorm() / (y.array() - y.mean()).matrix().squaredNorm();
	return o;
}

TEST(Inference, LinearFromMomentsEqualsQr)
{
	Rng rng(7);
	const Eigen::Index n = 60, p = 3;
	MatrixXd X(n, p);
	VectorXd y(n);
	for (Eigen::Index i = 0; i < n; i++) {
		X(i, 0) = rng.normal();
		X(i, 1) = 100 + 20 * rng.normal();
		X(i, 2) = 1e-3 * rng.uniform();
		y(i) = 1 + 0.5 * X(i, 0) - 0.02 * X(i, 1) + 300 * X(i, 2) + rng.normal();
	}
	Ols o = ols_qr(X, y);
	VectorXd mx = X.colwise().mean();
	MatrixXd Xc = X.rowwise() - mx.transpose();
	VectorXd yc = y.array() - y.mean();
	VectorXd w = o.beta.tail(p);
	pgml::Inference inf = pgml::linear_inference(static_cast<double>(n), Xc.transpose() * Xc, Xc.transpose() * yc,
	                                             yc.squaredNorm(), mx, w, o.beta(0), {"a", "b", "c"});
	ASSERT_EQ(inf.rows.size(), 4u);
	EXPECT_EQ(inf.rows[0].term, "(Intercept)");
	EXPECT_EQ(inf.rank, 4);
	EXPECT_EQ(inf.df_residual, 56);
	expect_rel(inf.sigma, o.sigma, 1e-10);
	expect_rel(inf.r2, o.r2, 1e-10);
	for (Eigen::Index j = 0; j <= p; j++) {
		const pgml::CoefficientRow &r = inf.rows[static_cast<size_t>(j)];
		expect_rel(r.estimate, o.beta(j), 1e-10);
		expect_rel(r.std_error, o.se(j), 1e-9);
		expect_rel(r.statistic, o.beta(j) / o.se(j), 1e-9);
		expect_rel(r.p_value, dist::t_two_sided(o.beta(j) / o.se(j), o.df), 1e-8);
		const double q = dist::t_quantile(0.975, o.df);
		expect_rel(r.conf_low, o.beta(j) - q * o.se(j), 1e-9);
		expect_rel(r.conf_high, o.beta(j) + q * o.se(j), 1e-9);
	}
	// F = (SSR / p) / s^2, and R's logLik / AIC
	const double sse = o.sigma * o.sigma * o.df;
	expect_rel(inf.f_statistic, ((yc.squaredNorm() - sse) / 3) / (o.sigma * o.sigma), 1e-9);
	const double ll = -0.5 * static_cast<double>(n) * (std::log(2 * M_PI) + 1 - std::log(static_cast<double>(n)) + std::log(sse));
	expect_rel(inf.log_likelihood, ll, 1e-12);
	expect_rel(inf.aic, -2 * ll + 2 * 5, 1e-12);
	expect_rel(inf.adj_r2, 1 - (1 - o.r2) * 59 / 56, 1e-9);
}

TEST(Inference, LinearAliasedColumnIsReportedAsLmDoes)
{
	Rng rng(3);
	const Eigen::Index n = 30;
	MatrixXd X(n, 3);
	VectorXd y(n);
	for (Eigen::Index i = 0; i < n; i++) {
		X(i, 0) = rng.normal();
		X(i, 1) = 2 * X(i, 0); // aliased: lm gives NA
		X(i, 2) = rng.normal();
		y(i) = 1 + X(i, 0) + X(i, 2) + 0.1 * rng.normal();
	}
	MatrixXd Xk(n, 2);
	Xk << X.col(0), X.col(2);
	Ols o = ols_qr(Xk, y);
	VectorXd mx = X.colwise().mean();
	MatrixXd Xc = X.rowwise() - mx.transpose();
	VectorXd yc = y.array() - y.mean();
	VectorXd w(3);
	w << o.beta(1) / 5, 2 * o.beta(1) / 5, o.beta(2); // the minimum-norm solution
	pgml::Inference inf = pgml::linear_inference(static_cast<double>(n), Xc.transpose() * Xc, Xc.transpose() * yc,
	                                             yc.squaredNorm(), mx, w, y.mean() - w.dot(mx), {"a", "b", "c"});
	ASSERT_EQ(inf.aliased.size(), 1u);
	EXPECT_EQ(inf.aliased[0], "b");
	EXPECT_TRUE(std::isnan(inf.rows[2].std_error));
	EXPECT_EQ(inf.df_residual, n - 3);
	expect_rel(inf.rows[1].estimate, o.beta(1), 1e-9);
	expect_rel(inf.rows[1].std_error, o.se(1), 1e-8);
	expect_rel(inf.rows[3].std_error, o.se(2), 1e-8);
	expect_rel(inf.rows[0].std_error, o.se(0), 1e-8);
}

// Binary logistic data; Newton's fit has a zero gradient and the standard errors are the
// square roots of the inverse Fisher information (computed here directly on [1 X]).
TEST(Inference, LogisticNewtonAndFisherInformation)
{
	Rng rng(11);
	const Eigen::Index n = 400, p = 2;
	MatrixXd X(n, p);
	std::vector<int> y(static_cast<size_t>(n));
	for (Eigen::Index i = 0; i < n; i++) {
		X(i, 0) = rng.normal();
		X(i, 1) = 5 + 3 * rng.normal();
		const double eta = -1 + 1.2 * X(i, 0) + 0.3 * X(i, 1);
		y[static_cast<size_t>(i)] = rng.uniform() < 1 / (1 + std::exp(-eta)) ? 1 : 0;
	}
	pgml::LogisticFit fit = pgml::fit_logistic_newton(X, y, 100, 1e-12, nullptr, nullptr);
	ASSERT_TRUE(fit.result.converged);
	MatrixXd X1(n, p + 1);
	X1.col(0).setOnes();
	X1.rightCols(p) = X;
	VectorXd theta(p + 1);
	theta << fit.b(0), fit.W.col(0);
	VectorXd pr = (1 / (1 + (-(X1 * theta).array()).exp())).matrix();
	VectorXd r(n);
	for (Eigen::Index i = 0; i < n; i++)
		r(i) = y[static_cast<size_t>(i)] - pr(i);
	EXPECT_LT((X1.transpose() * r).cwiseAbs().maxCoeff(), 1e-8);
	VectorXd wt = pr.array() * (1 - pr.array());
	MatrixXd cov = (X1.transpose() * wt.asDiagonal() * X1).inverse();
	// the statistics from a scaled copy of X (as the trainer hands them over): the same
	VectorXd center(p), scale(p);
	center << 0.1, 5;
	scale << 1, 3;
	MatrixXd Z = (X.rowwise() - center.transpose()).array().rowwise() / scale.transpose().array();
	pgml::Inference inf = pgml::logistic_inference(Z, center, scale, y, fit.W.col(0), fit.b(0), {"u", "v"});
	EXPECT_EQ(inf.statistic, "z");
	ASSERT_EQ(inf.rows.size(), 3u);
	for (Eigen::Index j = 0; j <= p; j++) {
		expect_rel(inf.rows[static_cast<size_t>(j)].std_error, std::sqrt(cov(j, j)), 1e-8);
		expect_rel(inf.rows[static_cast<size_t>(j)].p_value,
		           dist::normal_two_sided(theta(j) / std::sqrt(cov(j, j))), 1e-7);
	}
	double dev = 0;
	for (Eigen::Index i = 0; i < n; i++)
		dev -= 2 * (y[static_cast<size_t>(i)] ? std::log(pr(i)) : std::log(1 - pr(i)));
	expect_rel(inf.deviance, dev, 1e-10);
	expect_rel(inf.aic, dev + 6, 1e-10);
	EXPECT_EQ(inf.df_residual, n - 3);
}

// ---------------------------------------------------------------- the options through the Trainer

Table category_table(size_t n, uint64_t seed, bool with_nulls)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), text_col("g")};
	t.target = numeric_col("y");
	const char *levels[] = {"b", "a", "c"};
	for (size_t i = 0; i < n; i++) {
		double x = rng.normal();
		int g = static_cast<int>(i % 3);
		double y = 2 + x + (g == 0 ? 0.5 : g == 2 ? -1.0 : 0.0) + 0.2 * rng.normal();
		Cell gx = str(levels[g]);
		if (with_nulls && i % 10 == 3)
			gx = null();
		Cell xx = num(x);
		if (with_nulls && i % 10 == 7)
			xx = null();
		t.add({xx, gx}, num(y));
	}
	return t;
}

TEST(ROptions, DropFirstEncodingHasNoReferenceFeatureAndPredicts)
{
	Table t = category_table(90, 5, false);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
	spec.preprocess["encoding"] = OptionValue::of_string("drop_first");
	Trained v = train(spec, t);
	const pgml::Preprocessor &pp = v.model->prep;
	ASSERT_EQ(pp.p(), 3); // x, g=b, g=c (a is the reference)
	EXPECT_EQ(pp.feature_names[1], "g=b");
	EXPECT_EQ(pp.feature_names[2], "g=c");
	EXPECT_TRUE(pp.columns[1].has_reference);
	EXPECT_EQ(pp.columns[1].reference, "a");
	// the reference level is known (not unseen) and predicts with the intercept
	std::vector<pgml::Value> vals(2);
	vals[0].isnull = false;
	vals[0].num = 0;
	vals[1].isnull = false;
	vals[1].str = "a";
	vals[1].len = 1;
	double out = 0;
	int klass = 0;
	int64_t unseen = 0;
	v.model->predict_batch(vals.data(), 1, &out, &klass, &unseen);
	EXPECT_EQ(unseen, 0);
	EXPECT_NEAR(out, v.model->b(0), 1e-12);
	// the statistics have a row per kept feature
	EXPECT_NE(v.result.report_json.find("\"inference\""), std::string::npos);
	EXPECT_NE(v.result.report_json.find("\"term\":\"g=b\""), std::string::npos);
	// the blob keeps the reference
	std::vector<uint8_t> blob = v.model->serialize();
	std::unique_ptr<pgml::Model> back = pgml::Model::deserialize(blob.data(), blob.size());
	EXPECT_TRUE(back->prep.columns[1].has_reference);
	EXPECT_EQ(back->prep.columns[1].reference, "a");
	EXPECT_EQ(back->prep.p(), 3);
	EXPECT_TRUE(back->preprocess.drop_first);
}

TEST(ROptions, NullsDropLeavesRowsOutAndCountsThem)
{
	Table t = category_table(100, 9, true);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
	spec.preprocess["nulls"] = OptionValue::of_string("drop");
	Trained v = train(spec, t);
	EXPECT_EQ(json_number(v.result.report_json, {"rows_dropped_null"}), 20);
	EXPECT_EQ(v.result.rows_train, 80);
	EXPECT_EQ(v.model->prep.columns[1].null_feature, -1); // no NULL level
	EXPECT_EQ(json_number(v.result.report_json, {"inference", "n"}), 80);
	// the same rows without NULLs, imputing: the same coefficients
	Table plain;
	plain.features = t.features;
	plain.target = t.target;
	for (size_t i = 0; i < t.size(); i++)
		if (!t.rows[i][0].null && !t.rows[i][1].null)
			plain.add(t.rows[i], t.y[i]);
	pgml::TrainSpec s2 = make_spec(plain, Algorithm::LinearRegression);
	Trained w = train(s2, plain);
	EXPECT_LT(max_rel_diff(v.model->W, w.model->W), 1e-10);
	std::vector<uint8_t> blob = v.model->serialize();
	EXPECT_TRUE(pgml::Model::deserialize(blob.data(), blob.size())->preprocess.drop_nulls);
}

TEST(ROptions, OptionValuesAreValidated)
{
	Table t = category_table(30, 1, false);
	for (auto kv : {std::make_pair("nulls", "skip"), std::make_pair("encoding", "dummy")}) {
		pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
		spec.preprocess[kv.first] = OptionValue::of_string(kv.second);
		expect_error([&] { train(spec, t); }, pgml::ErrorCode::InvalidParameter);
	}
}

Table binary_table(size_t n, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x1"), numeric_col("x2")};
	t.target = text_col("label");
	for (size_t i = 0; i < n; i++) {
		double x1 = rng.normal(), x2 = 10 + 4 * rng.normal();
		double eta = 0.5 + 1.5 * x1 - 0.2 * x2;
		t.add({num(x1), num(x2)}, str(rng.uniform() < 1 / (1 + std::exp(-eta)) ? "yes" : "no"));
	}
	return t;
}

TEST(ROptions, UnpenalizedLogisticIsTheMaximumLikelihoodFit)
{
	Table t = binary_table(300, 21);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LogisticRegression);
	spec.hyperparams["penalty"] = OptionValue::of_string("none");
	Trained v = train(spec, t);
	ASSERT_EQ(v.model->W.cols(), 1);
	// the gradient of the log-likelihood is zero at the stored (unscaled) coefficients
	Eigen::Vector3d g = Eigen::Vector3d::Zero();
	for (size_t i = 0; i < t.size(); i++) {
		const double x1 = t.rows[i][0].num, x2 = t.rows[i][1].num;
		const double pr = 1 / (1 + std::exp(-(v.model->b(0) + v.model->W(0, 0) * x1 + v.model->W(1, 0) * x2)));
		const double r = (t.y[i].str == "yes" ? 1 : 0) - pr;
		g += Eigen::Vector3d(r, r * x1, r * x2);
	}
	EXPECT_LT(g.cwiseAbs().maxCoeff(), 1e-7);
	EXPECT_NE(v.result.report_json.find("\"statistic\":\"z\""), std::string::npos);
	// penalized (default): no statistics
	pgml::TrainSpec s2 = make_spec(t, Algorithm::LogisticRegression);
	Trained w = train(s2, t);
	EXPECT_EQ(w.result.report_json.find("\"inference\""), std::string::npos);
	pgml::TrainSpec s3 = make_spec(t, Algorithm::LogisticRegression);
	s3.hyperparams["penalty"] = OptionValue::of_string("l1");
	expect_error([&] { train(s3, t); }, pgml::ErrorCode::InvalidParameter);
}

} // namespace
