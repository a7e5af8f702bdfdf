// Lasso and elastic net by coordinate descent on the Gram matrix: closed forms on an
// orthonormal design, agreement with scikit-learn 1.2 on the standardized diabetes data,
// the all-zero solution above alpha_max, convergence criteria, logs and cancellation.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "models/elastic_net.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::elastic_net_gram;

namespace {

// Diabetes (sklearn's load_diabetes raw data): Z = StandardScaler().fit_transform(X),
// y_c = y - mean(y), G = Z'Z / n, c = Z'y_c / n, y_sq = y_c'y_c / n (computed with numpy).
MatrixXd diabetes_G()
{
	const double g[10][10] = {
		{1.0000000000000018, 0.17373710056366096, 0.18508466614655567, 0.33542758706707293, 0.2600608201502616, 0.2192431398475082, -0.07518097487514626, 0.20384089972875555, 0.27077424141816686, 0.30173100763283817},
		{0.17373710056366096, 1.000000000000001, 0.08816139902276236, 0.24101048664904928, 0.03527681917552952, 0.14263725703350036, -0.3790896292273321, 0.33211509308296466, 0.1499161364958383, 0.20813321620038933},
		{0.18508466614655567, 0.08816139902276236, 0.9999999999999991, 0.39541089871771246, 0.2497774217424123, 0.2611699111644255, -0.3668109784050294, 0.4138066018314407, 0.4461565385732516, 0.38867999390003954},
		{0.33542758706707293, 0.24101048664904928, 0.39541089871771246, 0.9999999999999984, 0.24246402270704148, 0.18554846261290062, -0.1787616312256428, 0.2576500532835152, 0.3934801090448325, 0.3904300231160374},
		{0.2600608201502616, 0.03527681917552952, 0.2497774217424123, 0.24246402270704148, 0.9999999999999991, 0.89666295781049, 0.05151936431482043, 0.5422072805232402, 0.5155029243689455, 0.3257167530607094},
		{0.2192431398475082, 0.14263725703350036, 0.2611699111644255, 0.18554846261290062, 0.89666295781049, 1.0000000000000013, -0.1964551237441794, 0.6598168886666439, 0.31835666514156197, 0.29060037549704487},
		{-0.07518097487514626, -0.3790896292273321, -0.3668109784050294, -0.1787616312256428, 0.05151936431482043, -0.1964551237441794, 0.9999999999999997, -0.7384927292583826, -0.3985772934287098, -0.2736973014758416},
		{0.20384089972875555, 0.33211509308296466, 0.4138066018314407, 0.2576500532835152, 0.5422072805232402, 0.6598168886666439, -0.7384927292583826, 1.0000000000000022, 0.6178589739937289, 0.4172121137122007},
		{0.27077424141816686, 0.1499161364958383, 0.4461565385732516, 0.3934801090448325, 0.5155029243689455, 0.31835666514156197, -0.3985772934287098, 0.6178589739937289, 0.9999999999999989, 0.4646688466913679},
		{0.30173100763283817, 0.20813321620038933, 0.38867999390003954, 0.3904300231160374, 0.3257167530607094, 0.29060037549704487, -0.2736973014758416, 0.4172121137122007, 0.4646688466913679, 1.0000000000000002}};
	MatrixXd G(10, 10);
	for (int i = 0; i < 10; i++)
		for (int j = 0; j < 10; j++)
			G(i, j) = g[i][j];
	return G;
}

VectorXd vec(std::initializer_list<double> v)
{
	VectorXd out(static_cast<Eigen::Index>(v.size()));
	Eigen::Index i = 0;
	for (double x : v)
		out(i++) = x;
	return out;
}

VectorXd diabetes_c()
{
	return vec({14.468513389589669, 3.316021309394996, 45.16003002046292, 33.9966321058674, 16.326949291616856,
	            13.403126285781292, -30.401040709155506, 33.14734545142784, 43.57621110559172, 29.453425987308215});
}

const double kDiabetesYSq = 5929.884896910383;

// |a - b| <= rel * max(|b|, 1e-3 * max|b|) componentwise (zeros must be (near) zero).
void expect_close(const VectorXd &a, const VectorXd &b, double rel)
{
	ASSERT_EQ(a.size(), b.size());
	const double scale = b.cwiseAbs().maxCoeff();
	for (Eigen::Index j = 0; j < a.size(); j++)
		EXPECT_NEAR(a(j), b(j), rel * std::max(std::fabs(b(j)), 1e-3 * scale)) << "coefficient " << j;
}

double soft(double x, double t) { return x > t ? x - t : x < -t ? x + t : 0.0; }

bool always_cancel() { return true; }

} // namespace

TEST(ElasticNet, OrthonormalDesignIsSoftThreshold)
{
	// Z'Z / n = I: OLS is w = c, lasso is soft-threshold(c, alpha), elastic net divides by 1 + alpha (1 - l1_ratio)
	const MatrixXd G = MatrixXd::Identity(6, 6);
	const VectorXd c = vec({3.0, -2.5, 0.4, -0.7, 1.0, 0.0});
	for (double alpha : {0.1, 0.5, 1.0, 2.0}) {
		VectorXd w = elastic_net_gram(G, c, alpha, 1.0, 1000, 1e-10, nullptr, nullptr);
		for (int j = 0; j < 6; j++)
			EXPECT_DOUBLE_EQ(w(j), soft(c(j), alpha)) << "alpha " << alpha << " j " << j;
		VectorXd e = elastic_net_gram(G, c, alpha, 0.3, 1000, 1e-10, nullptr, nullptr);
		for (int j = 0; j < 6; j++)
			EXPECT_NEAR(e(j), soft(c(j), 0.3 * alpha) / (1 + 0.7 * alpha), 1e-15);
	}
	// l1_ratio = 0 is ridge: c / (1 + alpha)
	VectorXd r = elastic_net_gram(G, c, 0.5, 0.0, 1000, 1e-10, nullptr, nullptr);
	for (int j = 0; j < 6; j++)
		EXPECT_NEAR(r(j), c(j) / 1.5, 1e-15);
}

TEST(ElasticNet, CorrelatedDesignMatchesKKTConditions)
{
	// random correlated Gram matrix: the result satisfies the lasso optimality conditions
	const int p = 8, n = 50;
	MatrixXd Z(n, p);
	uint64_t s = 12345;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < p; j++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			Z(i, j) = static_cast<double>(s >> 11) * 0x1.0p-53 - 0.5 + (j > 0 ? 0.5 * Z(i, j - 1) : 0);
		}
	VectorXd y = Z * vec({1, -2, 0, 0, 3, 0, 0.5, 0}) + 0.1 * VectorXd::Ones(n);
	const MatrixXd G = Z.transpose() * Z / n;
	const VectorXd c = Z.transpose() * y / n;
	const double alpha = 0.05;
	VectorXd w = elastic_net_gram(G, c, alpha, 1.0, 100000, 1e-13, nullptr, nullptr);
	VectorXd g = G * w - c;
	for (int j = 0; j < p; j++) {
		if (w(j) != 0)
			EXPECT_NEAR(g(j), -alpha * (w(j) > 0 ? 1 : -1), 1e-9) << j;
		else
			EXPECT_LE(std::fabs(g(j)), alpha + 1e-9) << j;
	}
}

TEST(ElasticNet, MatchesSklearnOnDiabetes)
{
	// sklearn 1.2.1 Lasso / ElasticNet(tol=1e-14, max_iter=1e6) on StandardScaler'ed diabetes, centered y
	const MatrixXd G = diabetes_G();
	const VectorXd c = diabetes_c();
	const VectorXd lasso1 = vec({0.0, -9.319329544910673, 24.831503728185922, 14.088985512287874, -4.838946192436295,
	                             0.0, -10.62275629730045, 0.0, 24.420933398189472, 2.561875513443367});
	const VectorXd lasso01 = vec({-0.2775522783817835, -11.160779416174528, 24.853286360923097, 15.242107110989398,
	                              -26.477593361367692, 13.75670764998706, 0.0, 7.043017537882573, 31.588975454894907,
	                              3.158795911443522});
	const VectorXd enet = vec({0.0, -8.68748677394836, 22.39971907504158, 13.676771801405202, -2.2963782558230625,
	                           -3.348145350774962, -9.24153972647001, 4.792385362502445, 19.82694979017459,
	                           4.212682702474142});
	for (double y_sq : {static_cast<double>(NAN), kDiabetesYSq}) {
		SCOPED_TRACE(std::isnan(y_sq) ? "coordinate-change criterion" : "duality gap criterion");
		expect_close(elastic_net_gram(G, c, 1.0, 1.0, 1000000, 1e-12, nullptr, nullptr, y_sq), lasso1, 1e-6);
		expect_close(elastic_net_gram(G, c, 0.1, 1.0, 1000000, 1e-12, nullptr, nullptr, y_sq), lasso01, 1e-6);
		expect_close(elastic_net_gram(G, c, 0.5, 0.7, 1000000, 1e-12, nullptr, nullptr, y_sq), enet, 1e-6);
	}
	// exact zeros where sklearn has them
	VectorXd w = elastic_net_gram(G, c, 1.0, 1.0, 1000000, 1e-12, nullptr, nullptr);
	EXPECT_EQ(w(0), 0.0);
	EXPECT_EQ(w(5), 0.0);
	EXPECT_EQ(w(7), 0.0);
}

TEST(ElasticNet, LargeAlphaGivesZeros)
{
	const MatrixXd G = diabetes_G();
	const VectorXd c = diabetes_c();
	const double alpha_max = c.cwiseAbs().maxCoeff(); // lasso: w = 0 iff alpha >= max |c_j|
	std::vector<pgml::IterationLog> log;
	VectorXd w = elastic_net_gram(G, c, alpha_max * 1.0001, 1.0, 1000, 1e-4, nullptr, &log);
	EXPECT_EQ(w, VectorXd::Zero(10));
	EXPECT_EQ(log.size(), 1u); // one sweep proves it
	EXPECT_EQ(elastic_net_gram(G, c, alpha_max / 0.5 * 1.0001, 0.5, 1000, 1e-4, nullptr, nullptr), VectorXd::Zero(10));
	// just below alpha_max one coefficient is active
	w = elastic_net_gram(G, c, alpha_max * 0.999, 1.0, 1000, 1e-4, nullptr, nullptr);
	EXPECT_EQ((w.array() != 0).count(), 1);
	EXPECT_GT(w(2), 0);
}

TEST(ElasticNet, LogIsMonotoneAndEndsAtTheOptimum)
{
	const MatrixXd G = diabetes_G();
	const VectorXd c = diabetes_c();
	std::vector<pgml::IterationLog> log;
	elastic_net_gram(G, c, 0.1, 1.0, 100000, 1e-10, nullptr, &log, kDiabetesYSq);
	ASSERT_GT(log.size(), 2u);
	for (size_t i = 1; i < log.size(); i++) {
		EXPECT_EQ(log[i].iteration, static_cast<int>(i) + 1);
		EXPECT_LE(log[i].loss, log[i - 1].loss + 1e-9); // coordinate descent never increases the objective
	}
	EXPECT_LT(log.back().grad_norm, 1e-6);
	EXPECT_GT(log.back().loss, 0); // with y_sq the objective is the real one (>= 0)
	// the default tol 1e-4 stops earlier, still close to the optimum
	std::vector<pgml::IterationLog> quick;
	VectorXd w = elastic_net_gram(G, c, 0.1, 1.0, 1000, 1e-4, nullptr, &quick, kDiabetesYSq);
	EXPECT_LT(quick.size(), log.size());
	EXPECT_NEAR(quick.back().loss, log.back().loss, 1e-4 * kDiabetesYSq);
	EXPECT_TRUE(w.allFinite());
}

TEST(ElasticNet, MaxIterAndCancellation)
{
	const MatrixXd G = diabetes_G();
	const VectorXd c = diabetes_c();
	std::vector<pgml::IterationLog> log;
	elastic_net_gram(G, c, 0.1, 1.0, 3, 0, nullptr, &log);
	EXPECT_EQ(log.size(), 3u);
	try {
		elastic_net_gram(G, c, 0.1, 1.0, 1000, 1e-4, always_cancel, nullptr);
		FAIL() << "expected a cancellation";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::Cancelled);
	}
	EXPECT_THROW(elastic_net_gram(G, VectorXd::Zero(3), 0.1, 1.0, 10, 1e-4, nullptr, nullptr), pgml::Error);
}

TEST(ElasticNet, HyperparameterSpecs)
{
	auto lasso = pgml::lasso_params();
	auto enet = pgml::elastic_net_params();
	ASSERT_EQ(lasso.size(), 3u);
	ASSERT_EQ(enet.size(), 4u);
	for (const auto *specs : {&lasso, &enet})
		for (const pgml::ParamSpec &s : *specs) {
			EXPECT_LE(s.min, s.def) << s.name;
			EXPECT_LE(s.def, s.max) << s.name;
			if (s.min_exclusive) {
				EXPECT_LT(s.min, s.def) << s.name;
			}
		}
	EXPECT_EQ(lasso[0].name, "alpha");
	EXPECT_EQ(lasso[0].def, 1.0);
	EXPECT_TRUE(lasso[0].min_exclusive);
	EXPECT_EQ(enet[1].name, "l1_ratio");
	EXPECT_EQ(enet[1].def, 0.5);
	EXPECT_EQ(enet[1].max, 1.0);
	EXPECT_EQ(enet[2].name, "max_iter");
	EXPECT_EQ(enet[2].def, 1000);
	EXPECT_EQ(enet[3].name, "tol");
	EXPECT_EQ(enet[3].def, 1e-4);
}
