// The Newton-step aggregate of binary logistic regression (logit_step.hpp): a state is the log
// loss, gradient and Hessian of the rows whatever way they are split between partial states;
// the Newton fit it drives reaches the known L2-penalised optimum to 1e-7 (the 60-row problem of
// test_optimize.cpp, whose optimum a Newton refinement to gradient 3e-15 gave) and fit_logistic's
// in-memory fit; malformed parameters and states are errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "logit_step.hpp"
#include "optimize.hpp"

namespace ls = pgml::logit_step;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

// test_optimize.cpp's generator and 60 x 3 binary problem
struct Lcg {
	uint64_t state;
	double uniform()
	{
		state = (state * 1103515245ULL + 12345ULL) % 2147483648ULL;
		const int v = static_cast<int>((state >> 8) % 2001) - 1000;
		return v / 500.0;
	}
};

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

// One scan: the rows in `parts` partial states (row i in state i % parts), merged.
std::vector<double> scan(const MatrixXd &X, const std::vector<int> &y, const ls::Params &at, int parts)
{
	const ls::Shape shape{static_cast<int>(X.cols())};
	std::vector<std::vector<double>> states(static_cast<size_t>(parts), std::vector<double>(shape.length()));
	for (auto &s : states)
		ls::init(s.data(), shape);
	for (Eigen::Index i = 0; i < X.rows(); i++) {
		const VectorXd z = X.row(i).transpose();
		auto &s = states[static_cast<size_t>(i % parts)];
		ls::add_row(s.data(), s.size(), at, z.data(), y[static_cast<size_t>(i)]);
	}
	for (int k = 1; k < parts; k++)
		ls::merge(states[0].data(), states[0].size(), states[static_cast<size_t>(k)].data(), states[static_cast<size_t>(k)].size());
	return states[0];
}

// The Newton fit on (X, y) through scans of `parts` partial states.
ls::Fit newton(const MatrixXd &X, const std::vector<int> &y, double C, int parts)
{
	double ones = 0;
	for (int v : y)
		ones += v;
	ls::Fit fit(static_cast<int>(X.cols()), C, 100, ones / static_cast<double>(y.size()));
	while (!fit.done()) {
		const std::vector<double> s = scan(X, y, ls::Params::decode(fit.params().encode().data(), fit.params().encode().size()), parts);
		fit.add(ls::decode(s.data(), s.size()), nullptr);
	}
	return fit;
}

} // namespace

TEST(LogitStep, KnownOptimumC1)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	const ls::Fit fit = newton(X, y, 1.0, 3);
	EXPECT_TRUE(fit.converged());
	EXPECT_LE(fit.scans(), 8);
	const double coef[3] = {1.3590113663772962, -0.7712701049787587, 0.8286008251826993};
	for (int j = 0; j < 3; ++j)
		EXPECT_NEAR(fit.params().w(j), coef[j], 1e-7);
	EXPECT_NEAR(fit.params().b, -0.8506849258757845, 1e-7);
	// the objective per row falls scan after scan, to the optimum's (test_optimize.cpp; the
	// last scan is one step before the returned coefficients)
	for (size_t i = 1; i < fit.log().size(); i++)
		EXPECT_LE(fit.log()[i].loss, fit.log()[i - 1].loss + 1e-15);
	EXPECT_NEAR(fit.log().back().loss, 0.3690337426727746, 1e-9);
}

TEST(LogitStep, KnownOptimumSmallCAndInMemoryFit)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	const ls::Fit fit = newton(X, y, 0.1, 1);
	const double coef[3] = {0.6291220793486039, -0.39708288263582175, 0.4504692490686022};
	for (int j = 0; j < 3; ++j)
		EXPECT_NEAR(fit.params().w(j), coef[j], 1e-7);
	EXPECT_NEAR(fit.params().b, -0.7070998066789973, 1e-7);
	// the in-memory route's L-BFGS fit with ml_train's default tol agrees to 1e-6
	pgml::LbfgsOptions opt;
	opt.tol = 1e-6;
	const pgml::LogisticFit mem = pgml::fit_logistic(X, y, 2, 0.1, opt, nullptr, nullptr);
	for (int j = 0; j < 3; ++j)
		EXPECT_NEAR(fit.params().w(j), mem.W(j, 0), 1e-6);
	EXPECT_NEAR(fit.params().b, mem.b(0), 1e-6);
}

TEST(LogitStep, StartOnSamplesEndsAtTheSameOptimum)
{
	// 20000 rows of the same kind of problem; the samples are every k-th row
	Lcg g{4242};
	const Eigen::Index n = 20000;
	MatrixXd X(n, 3);
	std::vector<int> y(static_cast<size_t>(n));
	double ones = 0;
	for (Eigen::Index i = 0; i < n; ++i) {
		for (int j = 0; j < 3; ++j)
			X(i, j) = g.uniform();
		y[static_cast<size_t>(i)] = 1.5 * X(i, 0) - X(i, 1) + 0.5 * X(i, 2) + g.uniform() > 0.3 ? 1 : 0;
		ones += y[static_cast<size_t>(i)];
	}
	const ls::Fit plain = newton(X, y, 1.0, 2);
	ls::Fit fit(3, 1.0, 100, ones / static_cast<double>(n));
	fit.start_on_sample(0.05, n); // 1000 rows, kMinSampleRows
	int sampled = 0;
	while (!fit.done()) {
		const double f = fit.fraction();
		const ls::Params at = fit.params();
		if (f < 1) {
			// the rows of a sample of that fraction (every 1/f-th row)
			const Eigen::Index step = static_cast<Eigen::Index>(std::llround(1 / f));
			std::vector<Eigen::Index> idx;
			for (Eigen::Index i = 0; i < n; i += step)
				idx.push_back(i);
			MatrixXd Xs(static_cast<Eigen::Index>(idx.size()), 3);
			std::vector<int> ys;
			for (size_t k = 0; k < idx.size(); k++) {
				Xs.row(static_cast<Eigen::Index>(k)) = X.row(idx[k]);
				ys.push_back(y[static_cast<size_t>(idx[k])]);
			}
			const std::vector<double> s = scan(Xs, ys, at, 1);
			fit.add(ls::decode(s.data(), s.size()), nullptr);
			sampled++;
		} else {
			const std::vector<double> s = scan(X, y, at, 3);
			fit.add(ls::decode(s.data(), s.size()), nullptr);
		}
	}
	EXPECT_GT(sampled, 0);
	EXPECT_EQ(sampled, fit.sample_scans());
	EXPECT_TRUE(fit.converged());
	EXPECT_LE(fit.scans(), plain.scans());
	EXPECT_LT((fit.params().w - plain.params().w).lpNorm<Eigen::Infinity>(), 1e-7);
	EXPECT_NEAR(fit.params().b, plain.params().b, 1e-7);
}

TEST(LogitStep, StateIsTheSumOverAnySplitOfTheRows)
{
	MatrixXd X;
	std::vector<int> y;
	make_binary(X, y);
	ls::Params at;
	at.p = 3;
	at.w = VectorXd::Zero(3);
	at.w << 0.5, -0.25, 1;
	at.b = 0.1;
	const std::vector<double> one = scan(X, y, at, 1), five = scan(X, y, at, 5);
	const ls::Sums a = ls::decode(one.data(), one.size()), b = ls::decode(five.data(), five.size());
	EXPECT_EQ(a.rows, 60);
	EXPECT_EQ(b.rows, 60);
	EXPECT_NEAR(a.loss, b.loss, 1e-12);
	EXPECT_LT((a.grad - b.grad).lpNorm<Eigen::Infinity>(), 1e-12);
	EXPECT_LT((a.hess - b.hess).lpNorm<Eigen::Infinity>(), 1e-12);
	// against the sums by hand
	double loss = 0;
	VectorXd g = VectorXd::Zero(4);
	MatrixXd H = MatrixXd::Zero(4, 4);
	for (Eigen::Index i = 0; i < 60; i++) {
		VectorXd z(4);
		z << X.row(i).transpose(), 1.0;
		const double eta = at.w.dot(X.row(i).transpose()) + at.b, s = 1 / (1 + std::exp(-eta));
		const double yi = y[static_cast<size_t>(i)];
		loss += std::log1p(std::exp(eta)) - yi * eta;
		g += (s - yi) * z;
		H += s * (1 - s) * z * z.transpose();
	}
	EXPECT_NEAR(a.loss, loss, 1e-10);
	EXPECT_LT((a.grad - g).lpNorm<Eigen::Infinity>(), 1e-10);
	EXPECT_LT((a.hess - H).lpNorm<Eigen::Infinity>(), 1e-10);
}

TEST(LogitStep, MalformedParamsAndStates)
{
	const std::vector<double> short_params = {1.0, 3.0, 0.0, 1.0};
	EXPECT_THROW(ls::Params::decode(short_params.data(), short_params.size()), pgml::Error);
	const std::vector<double> nan_params = {1.0, 1.0, NAN, 1.0};
	EXPECT_THROW(ls::Params::decode(nan_params.data(), nan_params.size()), pgml::Error);
	std::vector<double> s(ls::Shape{2}.length());
	ls::init(s.data(), ls::Shape{2});
	EXPECT_NO_THROW(ls::shape_of(s.data(), s.size()));
	EXPECT_THROW(ls::shape_of(s.data(), s.size() - 1), pgml::Error);
	std::vector<double> other(ls::Shape{3}.length());
	ls::init(other.data(), ls::Shape{3});
	EXPECT_THROW(ls::merge(s.data(), s.size(), other.data(), other.size()), pgml::Error);
	s[3] = -1; // row count
	EXPECT_THROW(ls::decode(s.data(), s.size()), pgml::Error);
	ls::Params at;
	at.p = 3;
	at.w = VectorXd::Zero(3);
	const double z[3] = {0, 0, 0};
	EXPECT_THROW(ls::add_row(other.data(), other.size() - 1, at, z, 1), pgml::Error);
}

TEST(LogitStep, ChangedRowCountIsAnError)
{
	ls::Fit fit(1, 1.0, 100, 0.5);
	ls::Sums s;
	s.p = 1;
	s.rows = 10;
	s.loss = 6.9;
	s.grad = VectorXd::Constant(2, 1.0);
	s.hess = MatrixXd::Identity(2, 2) * 2.5;
	fit.add(s, nullptr);
	s.rows = 11;
	EXPECT_THROW(fit.add(s, nullptr), pgml::Error);
}
