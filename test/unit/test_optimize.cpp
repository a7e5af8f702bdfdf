// Unit tests for lbfgs_minimize, the logistic objective and fit_logistic.
// Logistic reference coefficients were computed with /usr/bin/python3
// (scikit-learn 1.2.1 LogisticRegression(C, tol=1e-10, max_iter=10000), and a
// Newton refinement of the same objective to gradient 1e-14) on data generated
// by the integer LCG below, which the Python script reproduces exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "optimize.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::IterationLog;
using pgml::LbfgsOptions;
using pgml::LbfgsResult;

namespace {

// Deterministic generator whose draws are exact multiples of 1/500 in [-2, 2].
struct Lcg {
	uint64_t state;
	// Next draw.
	double uniform()
	{
		state = (state * 1103515245ULL + 12345ULL) % 2147483648ULL;
		const int v = static_cast<int>((state >> 8) % 2001) - 1000;
		return v / 500.0;
	}
};

// 60 x 3 binary problem: y = 1.5 x0 - x1 + 0.5 x2 + noise > 0.3.
void make_binary(MatrixXd &X, std::vector<int> &y)
{
	Lcg g{12345};
	X.resize(60, 3);
	y.assign(60, 0);
	for (int i = 0; i < 60; ++i) {
		double x[3];
		for (double &v : x)
			v = g.uniform();
		const double noise = g.uniform();
		for (int j = 0; j < 3; ++j)
			X(i, j) = x[j];
		y[i] = 1.5 * x[0] - x[1] + 0.5 * x[2] + noise > 0.3 ? 1 : 0;
	}
}

// 90 x 3 three-class problem: y = argmax of three noisy linear scores.
void make_multi(MatrixXd &X, std::vector<int> &y)
{
	Lcg g{777};
	X.resize(90, 3);
	y.assign(90, 0);
	for (int i = 0; i < 90; ++i) {
		double x[3];
		for (double &v : x)
			v = g.uniform();
		const double s0 = x[0] + 0.5 * x[2] + g.uniform();
		const double s1 = x[1] - 0.5 * x[0] + g.uniform();
		const double s2 = 0.3 - x[2] + g.uniform();
		for (int j = 0; j < 3; ++j)
			X(i, j) = x[j];
		y[i] = s0 >= s1 && s0 >= s2 ? 0 : (s1 >= s2 ? 1 : 2);
	}
}

// Class counts of y over K classes.
std::vector<int> counts(const std::vector<int> &y, int K)
{
	std::vector<int> c(K, 0);
	for (int v : y)
		++c[v];
	return c;
}

// Rosenbrock function in n dimensions (sum over consecutive pairs).
double rosenbrock(const VectorXd &x, VectorXd &g)
{
	const Eigen::Index n = x.size();
	g.setZero(n);
	double f = 0;
	for (Eigen::Index i = 0; i + 1 < n; ++i) {
		const double a = x(i + 1) - x(i) * x(i);
		const double b = 1.0 - x(i);
		f += 100.0 * a * a + b * b;
		g(i) += -400.0 * x(i) * a - 2.0 * b;
		g(i + 1) += 200.0 * a;
	}
	return f;
}

// Central finite-difference check of the objective's gradient at w.
void check_gradient(const pgml::Objective &f, const VectorXd &w)
{
	VectorXd g(w.size()), scratch(w.size());
	f(w, g);
	const double h = 1e-6;
	for (Eigen::Index i = 0; i < w.size(); ++i) {
		VectorXd wp = w, wm = w;
		wp(i) += h;
		wm(i) -= h;
		const double fd = (f(wp, scratch) - f(wm, scratch)) / (2 * h);
		EXPECT_NEAR(g(i), fd, 1e-8 * std::max(1.0, std::fabs(fd))) << "coordinate " << i;
	}
}

// Cancel callbacks.
bool always_cancel()
{
	return true;
}
int g_polls = 0;
bool cancel_after_five_polls()
{
	return ++g_polls > 5;
}

} // namespace

// ---------------------------------------------------------------------------
// L-BFGS

TEST(Lbfgs, QuadraticClosedForm)
{
	// f = 0.5 x'Ax - b'x, A SPD with condition number ~ 100: minimum at A^-1 b
	const int n = 6;
	MatrixXd M(n, n);
	for (int i = 0; i < n; ++i)
		for (int j = 0; j < n; ++j)
			M(i, j) = std::sin(1.0 + i * 7 + j * 3);
	MatrixXd A = M.transpose() * M;
	A.diagonal().array() += 0.05;
	VectorXd b(n);
	for (int i = 0; i < n; ++i)
		b(i) = i - 2.5;
	const VectorXd expected = A.ldlt().solve(b);

	pgml::Objective f = [&](const VectorXd &x, VectorXd &g) {
		g = A * x - b;
		return 0.5 * x.dot(A * x) - b.dot(x);
	};
	VectorXd x = VectorXd::Zero(n);
	LbfgsOptions opt;
	opt.tol = 1e-10;
	std::vector<IterationLog> log;
	const LbfgsResult r = pgml::lbfgs_minimize(f, x, opt, nullptr, &log);
	EXPECT_TRUE(r.converged);
	EXPECT_LT((x - expected).lpNorm<Eigen::Infinity>(), 1e-7);
	EXPECT_NEAR(r.loss, -0.5 * b.dot(expected), 1e-10);
	ASSERT_EQ(static_cast<int>(log.size()), r.iterations);
	for (size_t i = 0; i < log.size(); ++i) {
		EXPECT_EQ(log[i].iteration, static_cast<int>(i) + 1);
		if (i > 0) {
			EXPECT_LE(log[i].loss, log[i - 1].loss);
		}
	}
	EXPECT_EQ(log.back().loss, r.loss);
}

TEST(Lbfgs, Rosenbrock2d)
{
	VectorXd x(2);
	x << -1.2, 1.0;
	LbfgsOptions opt;
	opt.tol = 1e-9;
	const LbfgsResult r = pgml::lbfgs_minimize(rosenbrock, x, opt, nullptr, nullptr);
	EXPECT_TRUE(r.converged);
	EXPECT_NEAR(x(0), 1.0, 1e-6);
	EXPECT_NEAR(x(1), 1.0, 1e-6);
	EXPECT_LT(r.loss, 1e-12);
	EXPECT_LT(r.iterations, 100);
}

TEST(Lbfgs, Rosenbrock10dWithShortHistory)
{
	VectorXd x = VectorXd::Constant(10, -1.0);
	LbfgsOptions opt;
	opt.tol = 1e-8;
	opt.history = 3;
	const LbfgsResult r = pgml::lbfgs_minimize(rosenbrock, x, opt, nullptr, nullptr);
	EXPECT_TRUE(r.converged);
	EXPECT_LT((x - VectorXd::Ones(10)).lpNorm<Eigen::Infinity>(), 1e-5);
}

TEST(Lbfgs, StartAtMinimumDoesNoIterations)
{
	VectorXd x = VectorXd::Ones(4);
	std::vector<IterationLog> log;
	const LbfgsResult r = pgml::lbfgs_minimize(rosenbrock, x, LbfgsOptions(), nullptr, &log);
	EXPECT_TRUE(r.converged);
	EXPECT_EQ(r.iterations, 0);
	EXPECT_TRUE(log.empty());
	EXPECT_EQ(r.loss, 0.0);
}

TEST(Lbfgs, MaxIterStopsUnconverged)
{
	VectorXd x(2);
	x << -1.2, 1.0;
	LbfgsOptions opt;
	opt.max_iter = 3;
	std::vector<IterationLog> log;
	const LbfgsResult r = pgml::lbfgs_minimize(rosenbrock, x, opt, nullptr, &log);
	EXPECT_FALSE(r.converged);
	EXPECT_EQ(r.iterations, 3);
	EXPECT_EQ(log.size(), 3u);
}

TEST(Lbfgs, CancelThrows)
{
	VectorXd x(2);
	x << -1.2, 1.0;
	try {
		pgml::lbfgs_minimize(rosenbrock, x, LbfgsOptions(), always_cancel, nullptr);
		FAIL() << "expected pgml::Error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::Cancelled);
	}
}

TEST(Lbfgs, CancelMidwayThrows)
{
	VectorXd x(2);
	x << -1.2, 1.0;
	g_polls = 0;
	std::vector<IterationLog> log;
	try {
		pgml::lbfgs_minimize(rosenbrock, x, LbfgsOptions(), cancel_after_five_polls, &log);
		FAIL() << "expected pgml::Error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::Cancelled);
	}
	EXPECT_FALSE(log.empty()); // some iterations ran before the cancel
	EXPECT_LT(log.size(), 5u);
}

TEST(Lbfgs, InvalidOptions)
{
	VectorXd x = VectorXd::Zero(2);
	LbfgsOptions opt;
	opt.history = 0;
	EXPECT_THROW(pgml::lbfgs_minimize(rosenbrock, x, opt, nullptr, nullptr), pgml::Error);
	opt = LbfgsOptions();
	opt.tol = -1;
	EXPECT_THROW(pgml::lbfgs_minimize(rosenbrock, x, opt, nullptr, nullptr), pgml::Error);
}

TEST(Lbfgs, NonFiniteStartIsDataException)
{
	pgml::Objective f = [](const VectorXd &x, VectorXd &g) {
		g = VectorXd::Zero(x.size());
		return std::nan("");
	};
	VectorXd x = VectorXd::Zero(2);
	try {
		pgml::lbfgs_minimize(f, x, LbfgsOptions(), nullptr, nullptr);
		FAIL() << "expected pgml::Error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::DataException);
	}
}

TEST(Lbfgs, InfiniteRegionIsAvoided)
{
	// f = x - log(x) ... written for x > 0, +inf elsewhere; minimum at x = 1.
	pgml::Objective f = [](const VectorXd &x, VectorXd &g) {
		g.resize(1);
		if (x(0) <= 0) {
			g(0) = 0;
			return std::numeric_limits<double>::infinity();
		}
		g(0) = 1.0 - 1.0 / x(0);
		return x(0) - std::log(x(0));
	};
	VectorXd x(1);
	x << 20.0;
	LbfgsOptions opt;
	opt.tol = 1e-10;
	const LbfgsResult r = pgml::lbfgs_minimize(f, x, opt, nullptr, nullptr);
	EXPECT_TRUE(r.converged);
	EXPECT_NEAR(x(0), 1.0, 1e-8);
}

// ---------------------------------------------------------------------------
// Logistic objective

TEST(LogisticObjective, BinaryGradientMatchesFiniteDifferences)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	pgml::Objective f = [&](const VectorXd &w, VectorXd &g) { return pgml::logistic_objective(X, y, 2, 0.7, w, g); };
	VectorXd w(4);
	w << 0.8, -1.1, 0.3, 0.25;
	check_gradient(f, w);
}

TEST(LogisticObjective, MultinomialGradientMatchesFiniteDifferences)
{
	MatrixXd X;
	std::vector<int> y;
	make_multi(X, y);
	pgml::Objective f = [&](const VectorXd &w, VectorXd &g) { return pgml::logistic_objective(X, y, 3, 2.0, w, g); };
	VectorXd w(12);
	for (int i = 0; i < 12; ++i)
		w(i) = std::sin(0.9 * i + 0.3);
	check_gradient(f, w);
}

TEST(LogisticObjective, ValueAtZero)
{
	// at W = 0, b = 0 every row has loss log(K)
	MatrixXd X;
	std::vector<int> y;
	make_multi(X, y);
	VectorXd g;
	EXPECT_NEAR(pgml::logistic_objective(X, y, 3, 1.0, VectorXd::Zero(12), g), std::log(3.0), 1e-14);
	make_binary(X, y);
	EXPECT_NEAR(pgml::logistic_objective(X, y, 2, 1.0, VectorXd::Zero(4), g), std::log(2.0), 1e-14);
	// intercept gradient at zero: mean(0.5 - y)
	EXPECT_NEAR(g(3), 0.5 - 20.0 / 60.0, 1e-15);
}

TEST(LogisticObjective, ExtremeScoresStayFinite)
{
	MatrixXd X(2, 1);
	X << 1e3, -1e3;
	const std::vector<int> y = {0, 2};
	VectorXd g;
	VectorXd w3(6);
	w3 << 1.0, 0.0, -1.0, 0.0, 0.0, 0.0; // scores +-1000: a naive exp overflows
	const double f3 = pgml::logistic_objective(X, y, 3, 1.0, w3, g);
	// row 0 truth 0 score 1000 (correct, loss ~0); row 1 truth 2 scores (-1000, 0, 1000): loss ~0
	EXPECT_NEAR(f3, 0.5 * 2.0 / (1.0 * 2.0), 1e-12); // only the penalty ||W||^2 / (2 C n) remains
	EXPECT_TRUE(g.allFinite());

	const std::vector<int> yb = {1, 1};
	VectorXd wb(2);
	wb << 1.0, 0.0;
	const double fb = pgml::logistic_objective(X, yb, 2, 1.0, wb, g);
	// row 0: softplus(1000) - 1000 = 0; row 1: softplus(-1000) + 1000 = 1000
	EXPECT_NEAR(fb, 500.0 + 0.25, 1e-9);
	EXPECT_TRUE(g.allFinite());
}

// ---------------------------------------------------------------------------
// fit_logistic against scikit-learn

TEST(FitLogistic, DataMatchesPythonGenerator)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	EXPECT_EQ(counts(y, 2), (std::vector<int>{40, 20}));
	EXPECT_EQ(X(0, 0), 0.168);
	EXPECT_EQ(X(1, 1), 1.132);
	EXPECT_EQ(std::vector<int>(y.begin(), y.begin() + 12), (std::vector<int>{0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1}));
	make_multi(X, y);
	EXPECT_EQ(counts(y, 3), (std::vector<int>{36, 23, 31}));
	EXPECT_EQ(X(0, 2), -0.862);
	EXPECT_EQ(std::vector<int>(y.begin(), y.begin() + 12), (std::vector<int>{0, 0, 1, 0, 0, 2, 0, 0, 1, 2, 2, 0}));
}

TEST(FitLogistic, BinaryMatchesSklearn)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	LbfgsOptions opt;
	opt.tol = 1e-10;
	opt.max_iter = 10000;
	std::vector<IterationLog> log;
	const pgml::LogisticFit fit = pgml::fit_logistic(X, y, 2, 1.0, opt, nullptr, &log);
	ASSERT_EQ(fit.W.rows(), 3);
	ASSERT_EQ(fit.W.cols(), 1);
	ASSERT_EQ(fit.b.size(), 1);
	EXPECT_TRUE(fit.result.converged);
	EXPECT_EQ(static_cast<int>(log.size()), fit.result.iterations);

	// exact optimum (Newton, gradient 3e-15)
	const double coef[3] = {1.3590113663772962, -0.7712701049787587, 0.8286008251826993};
	const double intercept = -0.8506849258757845;
	for (int j = 0; j < 3; ++j)
		EXPECT_NEAR(fit.W(j, 0), coef[j], 1e-8);
	EXPECT_NEAR(fit.b(0), intercept, 1e-8);
	EXPECT_NEAR(fit.result.loss, 0.3690337426727746, 1e-12); // objective / (C n)

	// sklearn 1.2.1 LogisticRegression(C=1, tol=1e-10, max_iter=10000); its L-BFGS-B
	// stops on ftol=2.2e-9, a few 1e-6 short of the optimum
	const double sk_coef[3] = {1.3590123753969834, -0.7712718406438204, 0.8286003812848314};
	const double sk_intercept = -0.8506818615725721;
	for (int j = 0; j < 3; ++j)
		EXPECT_NEAR(fit.W(j, 0), sk_coef[j], 1e-5);
	EXPECT_NEAR(fit.b(0), sk_intercept, 1e-5);

	// probabilities of row 0 at the optimum (sklearn's fit gives 0.8079098375869257, 0.19209016241307428)
	double proba[2];
	pgml::logistic_proba(fit.W, fit.b, X.row(0).transpose().eval().data(), 2, proba);
	EXPECT_NEAR(proba[0], 0.8079099469260993, 1e-8);
	EXPECT_NEAR(proba[1], 0.19209005307390073, 1e-8);
	EXPECT_NEAR(proba[0], 0.8079098375869257, 1e-5);
}

TEST(FitLogistic, BinarySmallC)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	LbfgsOptions opt;
	opt.tol = 1e-10;
	const pgml::LogisticFit fit = pgml::fit_logistic(X, y, 2, 0.1, opt, nullptr, nullptr);
	const double coef[3] = {0.6291220793486039, -0.39708288263582175, 0.4504692490686022};
	for (int j = 0; j < 3; ++j)
		EXPECT_NEAR(fit.W(j, 0), coef[j], 1e-8);
	EXPECT_NEAR(fit.b(0), -0.7070998066789973, 1e-8);
	EXPECT_NEAR(fit.result.loss, 0.4760431335399539, 1e-12);
}

TEST(FitLogistic, MultinomialMatchesSklearn)
{
	MatrixXd X;
	std::vector<int> y;
	make_multi(X, y);
	LbfgsOptions opt;
	opt.tol = 1e-10;
	opt.max_iter = 10000;
	const pgml::LogisticFit fit = pgml::fit_logistic(X, y, 3, 1.0, opt, nullptr, nullptr);
	ASSERT_EQ(fit.W.rows(), 3);
	ASSERT_EQ(fit.W.cols(), 3);
	ASSERT_EQ(fit.b.size(), 3);
	EXPECT_TRUE(fit.result.converged);

	// sklearn's coef_ is K x p: row k = class k; our W is p x K
	const double coef[3][3] = {{0.8508986013989532, -0.11376917732094376, 0.550407255645742},
	                           {-0.8027576627914134, 0.5862753377868092, -0.1384324620290215},
	                           {-0.04814093860754187, -0.4725061604658654, -0.4119747936167171}};
	const double intercept[3] = {0.009251039705220027, -0.1636949107238074, 0.15444387101858734};
	const double sk_coef[3][3] = {{0.8509041969239796, -0.11377311790785094, 0.5504113710045861},
	                              {-0.8027569108756889, 0.5862771382573739, -0.1384399218848017},
	                              {-0.04814728604829058, -0.47250402034952305, -0.41197144911978445}};
	const double sk_intercept[3] = {0.009257095773246323, -0.16369613399495878, 0.15443903822171304};
	for (int k = 0; k < 3; ++k) {
		for (int j = 0; j < 3; ++j) {
			EXPECT_NEAR(fit.W(j, k), coef[k][j], 1e-8) << k << "," << j;
			EXPECT_NEAR(fit.W(j, k), sk_coef[k][j], 2e-5) << k << "," << j;
		}
		EXPECT_NEAR(fit.b(k), intercept[k], 1e-8);
		EXPECT_NEAR(fit.b(k), sk_intercept[k], 2e-5);
	}
	EXPECT_NEAR(fit.result.loss, 0.8138210426025859, 1e-12);

	double proba[3];
	pgml::logistic_proba(fit.W, fit.b, X.row(0).transpose().eval().data(), 3, proba);
	// softmax(W'x + b) at the optimum; sklearn's own fit gives
	// 0.40052278921290424, 0.36411808082789865, 0.2353591299591971
	EXPECT_NEAR(proba[0], 0.4005226996292077, 1e-8);
	EXPECT_NEAR(proba[1], 0.3641153392416345, 1e-8);
	EXPECT_NEAR(proba[2], 0.23536196112915778, 1e-8);
	EXPECT_NEAR(proba[1], 0.36411808082789865, 1e-5);
	EXPECT_NEAR(proba[0] + proba[1] + proba[2], 1.0, 1e-15);
}

TEST(FitLogistic, DefaultTolWithin1e4OfOptimum)
{
	// the default options (tol=1e-6 on the per-row objective) must land within
	// 1e-4 of the optimum, like sklearn's defaults
	MatrixXd X;
	std::vector<int> y;
	make_multi(X, y);
	const pgml::LogisticFit fit = pgml::fit_logistic(X, y, 3, 1.0, LbfgsOptions(), nullptr, nullptr);
	EXPECT_TRUE(fit.result.converged);
	EXPECT_NEAR(fit.W(0, 0), 0.8508986013989532, 1e-4);
	EXPECT_NEAR(fit.W(1, 1), 0.5862753377868092, 1e-4);
	EXPECT_NEAR(fit.W(2, 2), -0.4119747936167171, 1e-4);
	EXPECT_NEAR(fit.b(2), 0.15444387101858734, 1e-4);
}

TEST(FitLogistic, CancelThrows)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	try {
		pgml::fit_logistic(X, y, 2, 1.0, LbfgsOptions(), always_cancel, nullptr);
		FAIL() << "expected pgml::Error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::Cancelled);
	}
}

TEST(FitLogistic, InvalidInput)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	const LbfgsOptions opt;
	EXPECT_THROW(pgml::fit_logistic(X, y, 1, 1.0, opt, nullptr, nullptr), pgml::Error);
	EXPECT_THROW(pgml::fit_logistic(X, y, 2, 0.0, opt, nullptr, nullptr), pgml::Error);
	EXPECT_THROW(pgml::fit_logistic(X, y, 2, -1.0, opt, nullptr, nullptr), pgml::Error);
	std::vector<int> bad = y;
	bad[3] = 2;
	EXPECT_THROW(pgml::fit_logistic(X, bad, 2, 1.0, opt, nullptr, nullptr), pgml::Error);
	bad.pop_back();
	EXPECT_THROW(pgml::fit_logistic(X, bad, 2, 1.0, opt, nullptr, nullptr), pgml::Error);
	MatrixXd Xnan = X;
	Xnan(5, 1) = std::nan("");
	try {
		pgml::fit_logistic(Xnan, y, 2, 1.0, opt, nullptr, nullptr);
		FAIL() << "expected pgml::Error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::DataException);
	}
}

// ---------------------------------------------------------------------------
// logistic_proba

TEST(LogisticProba, BinaryAndMultinomialByHand)
{
	MatrixXd W(2, 1);
	W << 1.0, -2.0;
	VectorXd b(1);
	b << 0.5;
	const double x[2] = {0.5, 0.25}; // z = 0.5 - 0.5 + 0.5 = 0.5
	double out[2];
	pgml::logistic_proba(W, b, x, 2, out);
	EXPECT_NEAR(out[1], 1.0 / (1.0 + std::exp(-0.5)), 1e-15);
	EXPECT_NEAR(out[0] + out[1], 1.0, 1e-15);

	MatrixXd W3(2, 3);
	W3 << 1.0, 0.0, -1.0, 0.0, 2.0, 0.0;
	VectorXd b3(3);
	b3 << 0.0, 0.0, 800.0; // large score: must not overflow
	double out3[3];
	pgml::logistic_proba(W3, b3, x, 3, out3);
	EXPECT_NEAR(out3[2], 1.0, 1e-15);
	EXPECT_GE(out3[0], 0.0);
	b3 << 0.0, 0.0, 0.0; // z = (0.5, 0.5, -0.5)
	pgml::logistic_proba(W3, b3, x, 3, out3);
	const double denom = 2 * std::exp(0.5) + std::exp(-0.5);
	EXPECT_NEAR(out3[0], std::exp(0.5) / denom, 1e-15);
	EXPECT_NEAR(out3[1], std::exp(0.5) / denom, 1e-15);
	EXPECT_NEAR(out3[2], std::exp(-0.5) / denom, 1e-15);

	EXPECT_THROW(pgml::logistic_proba(W3, b3, x, 2, out3), pgml::Error);
}
