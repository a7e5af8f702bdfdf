// mlp: backpropagation against finite differences, XOR, a linear target, determinism, warm
// starts, early stopping, serialization round trips and damaged blobs, cancellation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "models/mlp.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::ErrorCode;
using pgml::Task;

namespace {

// The defaults of mlp_params() with some values overridden.
pgml::Params params(std::vector<std::pair<std::string, double>> nums = {},
                    std::vector<std::pair<std::string, std::string>> choices = {})
{
	pgml::Params p;
	for (const pgml::ParamSpec &s : pgml::mlp_params()) {
		if (s.kind == pgml::ParamSpec::Kind::Choice)
			p.set_choice(s.name, s.def_choice);
		else
			p.set_num(s.name, s.def);
	}
	for (auto &[k, v] : nums)
		p.set_num(k, v);
	for (auto &[k, v] : choices)
		p.set_choice(k, v);
	return p;
}

// Owns what a FitInput points at.
struct Data {
	MatrixXd X;
	VectorXd y;
	std::vector<int> groups;
	std::vector<pgml::IterationLog> log;
	pgml::FitInput in(Task task, int K, uint64_t seed = 42)
	{
		groups.assign(static_cast<size_t>(X.cols()), -1);
		pgml::FitInput f;
		f.X = &X;
		f.y = &y;
		f.task = task;
		f.n_classes = K;
		f.feature_group = &groups;
		f.seed = seed;
		f.log = &log;
		return f;
	}
};

// n rows of 3 features from a fixed formula; target: K classes (K >= 2) or a value (K == 0).
Data dataset(int n, int K, int offset = 0)
{
	Data d;
	d.X.resize(n, 3);
	d.y.resize(n);
	for (int r = 0; r < n; r++) {
		const int i = r + offset;
		const double x1 = std::sin(1.3 * i), x2 = std::cos(0.7 * i), x3 = std::sin(0.37 * i + 1);
		d.X.row(r) << x1, x2, x3;
		const double s = 2 * x1 - x2 + 0.1 * std::sin(5.0 * i);
		if (K == 0)
			d.y(r) = s;
		else if (K == 2)
			d.y(r) = s > 0 ? 1 : 0;
		else
			d.y(r) = s < -0.8 ? 0 : s < 0.8 ? 1 : 2;
	}
	return d;
}

std::vector<uint8_t> bytes_of(const pgml::Estimator &e)
{
	pgml::Writer w;
	e.write(w);
	return w.bytes();
}

std::unique_ptr<pgml::Estimator> read_bytes(const std::vector<uint8_t> &b, pgml::EstimatorShape shape)
{
	pgml::Reader r(b.data(), b.size());
	auto e = pgml::read_mlp(r, shape);
	if (!r.at_end())
		throw pgml::Error(ErrorCode::DataCorrupted, "trailing bytes");
	return e;
}

// Predictions of e on a grid of points, all outputs concatenated.
std::vector<double> grid_outputs(const pgml::Estimator &e, int p, int n_out)
{
	std::vector<double> all, z(static_cast<size_t>(p)), out(static_cast<size_t>(n_out));
	for (int g = 0; g < 25; g++) {
		for (int j = 0; j < p; j++)
			z[static_cast<size_t>(j)] = std::sin(0.9 * g + j) * 1.5;
		int c = e.predict(z.data(), out.data());
		all.push_back(c);
		all.insert(all.end(), out.begin(), out.end());
	}
	return all;
}

// Mean log-loss (classification) or squared error / 2 (regression) of e's predictions on d.
double data_loss(const pgml::Estimator &e, const Data &d, int K)
{
	double total = 0;
	std::vector<double> out(static_cast<size_t>(std::max(K, 1)));
	for (Eigen::Index i = 0; i < d.X.rows(); i++) {
		VectorXd z = d.X.row(i).transpose();
		e.predict(z.data(), out.data());
		if (K == 0)
			total += 0.5 * (out[0] - d.y(i)) * (out[0] - d.y(i));
		else
			total -= std::log(out[static_cast<size_t>(d.y(i))]);
	}
	return total / static_cast<double>(d.X.rows());
}

template <class F>
pgml::Error expect_error(F &&f, ErrorCode code)
{
	try {
		f();
	} catch (const pgml::Error &e) {
		EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << e.what();
		return e;
	}
	ADD_FAILURE() << "expected a pgml::Error";
	return pgml::Error(ErrorCode::Internal, "(none)");
}

} // namespace

TEST(Mlp, ParamSpecsAreSane)
{
	std::set<std::string> names;
	for (const pgml::ParamSpec &s : pgml::mlp_params()) {
		EXPECT_TRUE(names.insert(s.name).second) << s.name;
		if (s.kind == pgml::ParamSpec::Kind::Choice) {
			EXPECT_NE(("," + s.choices + ",").find("," + s.def_choice + ","), std::string::npos) << s.name;
		} else {
			EXPECT_LE(s.min, s.def) << s.name;
			EXPECT_LE(s.def, s.max) << s.name;
			if (s.min_exclusive) {
				EXPECT_LT(s.min, s.def) << s.name;
			}
		}
	}
	pgml::Params p = params();
	EXPECT_EQ(p.integer("hidden_layers"), 1);
	EXPECT_EQ(p.integer("hidden_units"), 100);
	EXPECT_EQ(p.choice("activation"), "relu");
	EXPECT_EQ(p.num("learning_rate"), 0.001);
	EXPECT_EQ(p.num("beta1"), 0.9);
	EXPECT_EQ(p.num("beta2"), 0.999);
	EXPECT_EQ(p.num("epsilon"), 1e-8);
	EXPECT_EQ(p.integer("batch_size"), 200);
	EXPECT_EQ(p.integer("max_iter"), 200);
	EXPECT_EQ(p.num("alpha"), 1e-4);
	EXPECT_EQ(p.num("tol"), 1e-4);
	EXPECT_EQ(p.integer("n_iter_no_change"), 10);
	EXPECT_FALSE(p.flag("early_stopping"));
	EXPECT_EQ(p.num("validation_fraction"), 0.1);
}

TEST(Mlp, GradientMatchesFiniteDifferences)
{
	struct Case {
		Task task;
		int K;
		bool tanh;
	} cases[] = {{Task::Classification, 3, true}, {Task::Classification, 3, false}, {Task::Classification, 2, true},
	             {Task::Classification, 2, false}, {Task::Regression, 0, true},       {Task::Regression, 0, false}};
	for (const Case &c : cases) {
		SCOPED_TRACE(std::to_string(c.K) + (c.tanh ? " tanh" : " relu"));
		Data d = dataset(9, c.K);
		// a 3 -> 5 -> 4 -> out network with fixed pseudo-random weights
		pgml::MlpWeights net;
		const int sizes[] = {3, 5, 4, c.K > 2 ? c.K : 1};
		double v = 0.3;
		for (int l = 0; l < 3; l++) {
			MatrixXd W(sizes[l], sizes[l + 1]);
			VectorXd b(sizes[l + 1]);
			for (Eigen::Index k = 0; k < W.size(); k++)
				W.data()[k] = std::sin(v += 1.7);
			for (Eigen::Index k = 0; k < b.size(); k++)
				b(k) = 0.5 * std::cos(v += 0.9);
			net.W.push_back(W);
			net.b.push_back(b);
		}
		const double alpha = 0.3;
		pgml::MlpWeights g;
		const double f0 = pgml::mlp_loss_grad(net, c.tanh, c.task, c.K, alpha, d.X, d.y, &g);
		EXPECT_TRUE(std::isfinite(f0));
		EXPECT_EQ(pgml::mlp_loss_grad(net, c.tanh, c.task, c.K, alpha, d.X, d.y, nullptr), f0);
		const double h = 1e-6;
		auto check = [&](double &param, double analytic) {
			const double keep = param;
			param = keep + h;
			const double fp = pgml::mlp_loss_grad(net, c.tanh, c.task, c.K, alpha, d.X, d.y, nullptr);
			param = keep - h;
			const double fm = pgml::mlp_loss_grad(net, c.tanh, c.task, c.K, alpha, d.X, d.y, nullptr);
			param = keep;
			EXPECT_NEAR((fp - fm) / (2 * h), analytic, 1e-6 * std::max(1.0, std::fabs(analytic)));
		};
		for (size_t l = 0; l < 3; l++) {
			for (Eigen::Index k = 0; k < net.W[l].size(); k++)
				check(net.W[l].data()[k], g.W[l].data()[k]);
			for (Eigen::Index k = 0; k < net.b[l].size(); k++)
				check(net.b[l](k), g.b[l](k));
		}
	}
}

TEST(Mlp, LossIsScikitLearns)
{
	// one linear layer, zero weights: softmax is uniform (loss log K), the logistic unit gives 1/2
	// (log 2), identity gives 0 (mean y^2 / 2); the penalty adds 0.5 * alpha * ||W||^2 / n
	Data d = dataset(10, 3);
	pgml::MlpWeights net;
	net.W.push_back(MatrixXd::Zero(3, 3));
	net.b.push_back(VectorXd::Zero(3));
	EXPECT_NEAR(pgml::mlp_loss_grad(net, false, Task::Classification, 3, 0, d.X, d.y, nullptr), std::log(3.0), 1e-12);
	net.W[0] = MatrixXd::Zero(3, 1);
	net.b[0] = VectorXd::Zero(1);
	Data b = dataset(10, 2);
	EXPECT_NEAR(pgml::mlp_loss_grad(net, false, Task::Classification, 2, 0, b.X, b.y, nullptr), std::log(2.0), 1e-12);
	Data r = dataset(10, 0);
	net.b[0](0) = 0.25;
	EXPECT_NEAR(pgml::mlp_loss_grad(net, false, Task::Regression, 0, 0.5, r.X, r.y, nullptr),
	            0.5 * (r.y.array() - 0.25).square().mean(), 1e-12);
	net.W[0](1, 0) = 2; // adds 0.5 * alpha * 4 / n on top of the changed fit
	const double fit = 0.5 * (r.y.array() - 0.25 - 2 * r.X.col(1).array()).square().mean();
	EXPECT_NEAR(pgml::mlp_loss_grad(net, false, Task::Regression, 0, 0.5, r.X, r.y, nullptr), fit + 0.5 * 0.5 * 4 / 10,
	            1e-12);
}

TEST(Mlp, LearnsXor)
{
	Data d;
	const int n = 40;
	d.X.resize(n, 2);
	d.y.resize(n);
	for (int i = 0; i < n; i++) {
		const double sx = i % 2 ? 1 : -1, sy = (i / 2) % 2 ? 1 : -1;
		d.X.row(i) << sx + 0.1 * std::sin(3.1 * i), sy + 0.1 * std::cos(2.3 * i);
		d.y(i) = sx * sy > 0 ? 1 : 0;
	}
	for (const char *act : {"relu", "tanh"}) {
		SCOPED_TRACE(act);
		auto e = pgml::fit_mlp(d.in(Task::Classification, 2),
		                       params({{"hidden_units", 16}, {"learning_rate", 0.02}, {"max_iter", 500}}, {{"activation", act}}));
		const double corners[4][2] = {{1, 1}, {-1, -1}, {1, -1}, {-1, 1}};
		for (int k = 0; k < 4; k++) {
			double out[2];
			EXPECT_EQ(e->predict(corners[k], out), k < 2 ? 1 : 0) << k;
			EXPECT_NEAR(out[0] + out[1], 1, 1e-12);
			EXPECT_GT(out[k < 2 ? 1 : 0], 0.9);
		}
	}
}

TEST(Mlp, FitsALinearTarget)
{
	Data d = dataset(200, 0);
	auto e = pgml::fit_mlp(d.in(Task::Regression, 0), params({{"learning_rate", 0.01}, {"max_iter", 300}}));
	double ss_res = 0, ss_tot = 0;
	const double mean = d.y.mean();
	for (int i = 0; i < 200; i++) {
		double out[1];
		VectorXd z = d.X.row(i).transpose();
		EXPECT_EQ(e->predict(z.data(), out), 0);
		ss_res += (out[0] - d.y(i)) * (out[0] - d.y(i));
		ss_tot += (d.y(i) - mean) * (d.y(i) - mean);
	}
	EXPECT_GT(1 - ss_res / ss_tot, 0.98);
	VectorXd imp = e->importance();
	ASSERT_EQ(imp.size(), 3);
	EXPECT_STREQ(e->importance_kind(), "weight");
	EXPECT_TRUE((imp.array() > 0).all());
}

TEST(Mlp, ClassifiesThreeClassesWithCoherentProbabilities)
{
	Data d = dataset(150, 3);
	auto e = pgml::fit_mlp(d.in(Task::Classification, 3), params({{"learning_rate", 0.01}}));
	int hits = 0;
	for (int i = 0; i < 150; i++) {
		double out[3];
		VectorXd z = d.X.row(i).transpose();
		int c = e->predict(z.data(), out);
		EXPECT_NEAR(out[0] + out[1] + out[2], 1, 1e-12);
		EXPECT_EQ(out[c], std::max({out[0], out[1], out[2]}));
		hits += c == static_cast<int>(d.y(i));
	}
	EXPECT_GE(hits, 140);
	// one log entry per epoch, losses finite and falling overall
	ASSERT_FALSE(d.log.empty());
	EXPECT_EQ(d.log.front().iteration, 1);
	EXPECT_LT(d.log.back().loss, d.log.front().loss);
	for (const auto &l : d.log) {
		EXPECT_TRUE(std::isfinite(l.loss));
		EXPECT_TRUE(std::isnan(l.valid));
	}
}

TEST(Mlp, DeterministicForASeed)
{
	Data d = dataset(60, 3);
	auto a = pgml::fit_mlp(d.in(Task::Classification, 3, 5), params({{"max_iter", 30}}));
	auto b = pgml::fit_mlp(d.in(Task::Classification, 3, 5), params({{"max_iter", 30}}));
	auto c = pgml::fit_mlp(d.in(Task::Classification, 3, 6), params({{"max_iter", 30}}));
	EXPECT_EQ(bytes_of(*a), bytes_of(*b));
	EXPECT_EQ(grid_outputs(*a, 3, 3), grid_outputs(*b, 3, 3));
	EXPECT_NE(bytes_of(*a), bytes_of(*c));
}

TEST(Mlp, WarmStartContinues)
{
	Data d = dataset(120, 3);
	pgml::Params p = params({{"max_iter", 15}, {"tol", 0}});
	auto e = pgml::fit_mlp(d.in(Task::Classification, 3), p);
	ASSERT_TRUE(e->can_continue());
	const double before = data_loss(*e, d, 3);
	const size_t logged = d.log.size();
	e->continue_fit(d.in(Task::Classification, 3), p);
	const double after = data_loss(*e, d, 3);
	EXPECT_LE(after, before);
	ASSERT_GT(d.log.size(), logged);
	EXPECT_EQ(d.log[logged].iteration, static_cast<int>(logged) + 1); // epochs keep counting
	// continuing on new rows changes the model, deterministically
	Data more = dataset(60, 3, 500);
	auto twin = read_bytes(bytes_of(*e), {3, 3, Task::Classification});
	e->continue_fit(more.in(Task::Classification, 3), p);
	twin->continue_fit(more.in(Task::Classification, 3), p);
	EXPECT_EQ(bytes_of(*e), bytes_of(*twin));
	// the network cannot change shape
	expect_error([&] { e->continue_fit(d.in(Task::Classification, 3), params({{"hidden_units", 50}})); },
	             ErrorCode::InvalidParameter);
	expect_error([&] { e->continue_fit(d.in(Task::Classification, 3), params({}, {{"activation", "tanh"}})); },
	             ErrorCode::InvalidParameter);
}

TEST(Mlp, EarlyStoppingUsesAValidationScore)
{
	Data d = dataset(200, 3);
	auto e = pgml::fit_mlp(d.in(Task::Classification, 3), params({{"early_stopping", 1}, {"max_iter", 300}}));
	ASSERT_FALSE(d.log.empty());
	EXPECT_LT(d.log.size(), 300u);
	for (const auto &l : d.log) {
		EXPECT_GE(l.valid, 0);
		EXPECT_LE(l.valid, 1);
	}
	// given validation rows are used as they are
	Data r = dataset(200, 0);
	Data rv = dataset(40, 0, 900);
	pgml::FitInput in = r.in(Task::Regression, 0);
	in.X_valid = &rv.X;
	in.y_valid = &rv.y;
	auto reg = pgml::fit_mlp(in, params({{"early_stopping", 1}, {"learning_rate", 0.01}}));
	ASSERT_FALSE(r.log.empty());
	double best = -INFINITY;
	for (const auto &l : r.log)
		best = std::max(best, l.valid);
	EXPECT_GT(best, 0.9); // R^2 on the given rows
	// too few rows to hold any out
	Data tiny = dataset(3, 0);
	expect_error([&] { pgml::fit_mlp(tiny.in(Task::Regression, 0), params({{"early_stopping", 1}, {"validation_fraction", 0.9}})); },
	             ErrorCode::DataException);
}

namespace {

struct Case {
	const char *name;
	int K;
	int layers;
	const char *act;
};
const Case kCases[] = {{"binary_relu", 2, 1, "relu"},
                       {"three_tanh_2", 3, 2, "tanh"},
                       {"regression", 0, 1, "relu"},
                       {"no_hidden", 3, 0, "relu"}};

pgml::EstimatorShape shape_of(const Case &c)
{
	pgml::EstimatorShape s;
	s.p = 3;
	s.task = c.K == 0 ? Task::Regression : Task::Classification;
	s.n_classes = c.K;
	return s;
}

std::unique_ptr<pgml::Estimator> fit_case(const Case &c)
{
	Data d = dataset(30, c.K);
	return pgml::fit_mlp(d.in(shape_of(c).task, c.K),
	                     params({{"hidden_layers", c.layers}, {"hidden_units", 4}, {"max_iter", 5}}, {{"activation", c.act}}));
}

} // namespace

TEST(Mlp, SerializationRoundTrip)
{
	for (const Case &c : kCases) {
		SCOPED_TRACE(c.name);
		auto e = fit_case(c);
		const pgml::EstimatorShape s = shape_of(c);
		const int n_out = std::max(1, c.K);
		std::vector<uint8_t> b = bytes_of(*e);
		auto back = read_bytes(b, s);
		EXPECT_EQ(grid_outputs(*e, 3, n_out), grid_outputs(*back, 3, n_out));
		EXPECT_EQ(bytes_of(*back), b);
		EXPECT_EQ(e->importance(), back->importance());
		pgml::EstimatorShape wrong = s;
		wrong.p = 4;
		expect_error([&] { read_bytes(b, wrong); }, ErrorCode::DataCorrupted);
		wrong = s;
		wrong.task = Task::Classification;
		wrong.n_classes = c.K == 3 ? 2 : 3;
		expect_error([&] { read_bytes(b, wrong); }, ErrorCode::DataCorrupted);
		wrong = s;
		wrong.task = Task::Clustering;
		expect_error([&] { read_bytes(b, wrong); }, ErrorCode::DataCorrupted);
	}
}

TEST(Mlp, EveryTruncationIsRejected)
{
	for (const Case &c : kCases) {
		SCOPED_TRACE(c.name);
		std::vector<uint8_t> b = bytes_of(*fit_case(c));
		for (size_t len = 0; len < b.size(); len++) {
			std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(len));
			pgml::Reader r(t.data(), t.size());
			expect_error([&] { pgml::read_mlp(r, shape_of(c)); }, ErrorCode::DataCorrupted);
		}
	}
}

TEST(Mlp, ByteCorruptionsAreRejectedOrHarmless)
{
	for (const Case &c : kCases) {
		SCOPED_TRACE(c.name);
		const std::vector<uint8_t> b = bytes_of(*fit_case(c));
		const pgml::EstimatorShape s = shape_of(c);
		int rejected = 0;
		for (size_t i = 0; i < b.size(); i++)
			for (uint8_t v : {uint8_t(b[i] ^ 0x01), uint8_t(b[i] ^ 0x80), uint8_t(0xFF), uint8_t(0x00)}) {
				if (v == b[i])
					continue;
				std::vector<uint8_t> m = b;
				m[i] = v;
				try {
					auto e = read_bytes(m, s);
					grid_outputs(*e, 3, std::max(1, c.K));
				} catch (const pgml::Error &err) {
					EXPECT_EQ(err.code(), ErrorCode::DataCorrupted) << err.what();
					rejected++;
				}
			}
		EXPECT_GT(rejected, 0);
		// version, task, classes, activation, features, layers, units are all checked
		for (size_t i = 0; i < 20; i++) {
			std::vector<uint8_t> m = b;
			m[i] ^= 0x40;
			expect_error([&] { read_bytes(m, s); }, ErrorCode::DataCorrupted);
		}
	}
}

TEST(Mlp, CancellationStopsTheFit)
{
	for (int K : {0, 2, 3}) {
		Data d = dataset(30, K);
		pgml::FitInput in = d.in(K == 0 ? Task::Regression : Task::Classification, K);
		in.cancel = [] { return true; };
		expect_error([&] { pgml::fit_mlp(in, params()); }, ErrorCode::Cancelled);
	}
}

TEST(Mlp, RejectsBadInput)
{
	Data d = dataset(30, 2);
	expect_error([&] { pgml::fit_mlp(d.in(Task::Classification, 1), params()); }, ErrorCode::DataException);
	expect_error([&] { pgml::fit_mlp(d.in(Task::Clustering, 0), params()); }, ErrorCode::FeatureNotSupported);
	expect_error([&] { pgml::fit_mlp(d.in(Task::Classification, 2), params({{"hidden_layers", 100}, {"hidden_units", 100000}})); },
	             ErrorCode::ProgramLimit);
}

// Regression fits the standardized target and unscales its output, so a target far from 0 on a
// large scale is learnt as easily as one near 0 (scikit-learn would need TransformedTargetRegressor).
TEST(Mlp, RegressionTargetIsStandardized)
{
	Data d = dataset(200, 0);
	Data big = d;
	big.y = (d.y.array() * 500 + 10000).matrix();
	const pgml::Params p = params({{"learning_rate", 0.01}, {"max_iter", 300}});
	auto small_fit = pgml::fit_mlp(d.in(Task::Regression, 0), p);
	auto big_fit = pgml::fit_mlp(big.in(Task::Regression, 0), p);
	// the same network up to the affine map of the target: predictions scale with it
	const double mean = d.y.mean(), sd = std::sqrt((d.y.array() - mean).square().mean());
	for (int i = 0; i < 200; i += 7) {
		VectorXd z = d.X.row(i).transpose();
		double a = 0, b = 0;
		small_fit->predict(z.data(), &a);
		big_fit->predict(z.data(), &b);
		EXPECT_NEAR((b - 10000) / 500, a, 1e-6 * sd) << "row " << i;
	}
	double ss_res = 0, ss_tot = 0;
	const double bm = big.y.mean();
	for (int i = 0; i < 200; i++) {
		VectorXd z = big.X.row(i).transpose();
		double out = 0;
		big_fit->predict(z.data(), &out);
		ss_res += (out - big.y(i)) * (out - big.y(i));
		ss_tot += (big.y(i) - bm) * (big.y(i) - bm);
	}
	EXPECT_GT(1 - ss_res / ss_tot, 0.98);
	// the training log is in standardized units: the loss of a fitted model is small
	EXPECT_LT(big.log.back().loss, 0.05);
}

// Sub-format 1 (written before the target was standardized) has no mean / scale: it reads as
// mean 0, scale 1, predicts the network's raw output and writes itself back unchanged.
TEST(Mlp, OldFormatWithoutTargetScalingStillReads)
{
	Data d = dataset(80, 0);
	d.y = (d.y.array() * 3 + 7).matrix();
	auto e = pgml::fit_mlp(d.in(Task::Regression, 0), params({{"max_iter", 5}, {"hidden_units", 4}}));
	std::vector<uint8_t> b = bytes_of(*e);
	// u16 version, u8 task, u32 K, u8 activation, u32 p, u32 layers, u32 units, u64 epochs
	const size_t at = 2 + 1 + 4 + 1 + 4 + 4 + 4 + 8;
	ASSERT_EQ(b[0], 2);
	double mean = 0, scale = 0;
	std::memcpy(&mean, b.data() + at, 8);
	std::memcpy(&scale, b.data() + at + 8, 8);
	EXPECT_NEAR(mean, d.y.mean(), 1e-12);
	EXPECT_NEAR(scale, std::sqrt((d.y.array() - d.y.mean()).square().mean()), 1e-12);
	std::vector<uint8_t> v1 = b;
	v1.erase(v1.begin() + static_cast<long>(at), v1.begin() + static_cast<long>(at + 16));
	v1[0] = 1;
	const pgml::EstimatorShape s{3, 0, Task::Regression};
	auto old = read_bytes(v1, s);
	EXPECT_EQ(bytes_of(*old), v1);
	for (int i = 0; i < 10; i++) {
		VectorXd z = d.X.row(i).transpose();
		double now = 0, raw = 0;
		e->predict(z.data(), &now);
		old->predict(z.data(), &raw);
		EXPECT_NEAR(raw, (now - mean) / scale, 1e-9);
	}
	// a scale that is not positive and finite is corrupt; a classifier's scaling must be 0 / 1
	for (double bad : {0.0, -1.0, static_cast<double>(INFINITY), static_cast<double>(NAN)}) {
		std::vector<uint8_t> m = b;
		std::memcpy(m.data() + at + 8, &bad, 8);
		expect_error([&] { read_bytes(m, s); }, ErrorCode::DataCorrupted);
	}
	Data c = dataset(60, 2);
	std::vector<uint8_t> cb = bytes_of(*pgml::fit_mlp(c.in(Task::Classification, 2), params({{"max_iter", 2}})));
	double one = 1;
	std::memcpy(cb.data() + at, &one, 8);
	expect_error([&] { read_bytes(cb, pgml::EstimatorShape{3, 2, Task::Classification}); }, ErrorCode::DataCorrupted);
}
