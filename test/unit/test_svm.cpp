// svm: known maximum-margin answers, coefficients and decision values against scikit-learn 1.2
// (LinearSVC, LinearSVR, SVC, SVR on a small fixed dataset), RBF on XOR, determinism,
// serialization round trips and damaged blobs, cancellation, the kernel row limit.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "models/svm.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::ErrorCode;
using pgml::Task;

namespace {

// The defaults of svm_params() with some values overridden.
pgml::Params params(std::vector<std::pair<std::string, double>> nums = {},
                    std::vector<std::pair<std::string, std::string>> choices = {})
{
	pgml::Params p;
	for (const pgml::ParamSpec &s : pgml::svm_params()) {
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

// The 24-row dataset the scikit-learn references were computed on:
// x = (sin 1.3i, cos 0.7i); binary, 3-class and regression targets.
enum class Target { Binary, Three, Value };
Data small(Target t)
{
	Data d;
	d.X.resize(24, 2);
	d.y.resize(24);
	for (int i = 0; i < 24; i++) {
		const double x1 = std::sin(1.3 * i), x2 = std::cos(0.7 * i), noise = 0.3 * std::sin(5.0 * i);
		d.X(i, 0) = x1;
		d.X(i, 1) = x2;
		if (t == Target::Binary)
			d.y(i) = x1 + 0.5 * x2 + noise > 0 ? 1 : 0;
		else if (t == Target::Three)
			d.y(i) = x1 > 0.3 ? 2 : x2 > 0 ? 1 : 0;
		else
			d.y(i) = 2 * x1 - x2 + noise;
	}
	return d;
}

const double kZ[4][2] = {{0, 0}, {0.5, -0.3}, {-0.7, 0.8}, {1.2, 0.4}};

// Decision value of a binary classifier: out[1] = sigmoid(f).
double decision(const pgml::Estimator &e, const double *z)
{
	double out[2];
	e.predict(z, out);
	return std::log(out[1] / out[0]);
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
	auto e = pgml::read_svm(r, shape);
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

TEST(Svm, ParamSpecsAreSane)
{
	std::set<std::string> names;
	for (const pgml::ParamSpec &s : pgml::svm_params()) {
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
	for (const char *n : {"C", "kernel", "loss", "gamma", "epsilon", "max_iter", "tol", "max_kernel_rows"})
		EXPECT_TRUE(names.count(n)) << n;
	pgml::Params p = params();
	EXPECT_EQ(p.num("C"), 1.0);
	EXPECT_EQ(p.choice("kernel"), "linear");
	EXPECT_EQ(p.integer("max_iter"), 1000);
	EXPECT_EQ(p.num("tol"), 1e-4);
	EXPECT_EQ(p.integer("max_kernel_rows"), 10000);
}

TEST(Svm, SeparablePointsGiveTheMaximumMarginHyperplane)
{
	// points at x1 = +-1 (class = sign), x2 anywhere: with a regularised intercept the hard
	// margin solution is w = (1, 0), b = 0; a large C approximates it for both losses
	Data d;
	d.X.resize(12, 2);
	d.y.resize(12);
	for (int i = 0; i < 12; i++) {
		d.X(i, 0) = i % 2 ? 1.0 : -1.0;
		d.X(i, 1) = (i / 2 - 2.5) * 0.7;
		d.y(i) = i % 2;
	}
	for (const char *loss : {"hinge", "squared_hinge"}) {
		SCOPED_TRACE(loss);
		auto e = pgml::fit_svm(d.in(Task::Classification, 2),
		                       params({{"C", 1e4}, {"tol", 1e-8}, {"max_iter", 100000}}, {{"loss", loss}}));
		const double z0[2] = {0, 0}, z1[2] = {1, 0}, z2[2] = {0, 1};
		const double b = decision(*e, z0);
		EXPECT_NEAR(b, 0, 1e-3);
		EXPECT_NEAR(decision(*e, z1) - b, 1, 1e-3);
		EXPECT_NEAR(decision(*e, z2) - b, 0, 1e-3);
		VectorXd imp = e->importance();
		ASSERT_EQ(imp.size(), 2);
		EXPECT_NEAR(imp(0), 1, 1e-3);
		EXPECT_NEAR(imp(1), 0, 1e-3);
		EXPECT_STREQ(e->importance_kind(), "coefficient");
		// probabilities: softmax (0, f) = (1 - sigmoid(f), sigmoid(f))
		double out[2];
		const double z[2] = {0.5, 3};
		EXPECT_EQ(e->predict(z, out), 1);
		EXPECT_NEAR(out[1], 1 / (1 + std::exp(-0.5)), 1e-3);
		EXPECT_NEAR(out[0] + out[1], 1, 1e-12);
	}
}

TEST(Svm, LinearSvcMatchesScikitLearn)
{
	// LinearSVC(C=1, tol=1e-8).fit(X, yb): coef_ and intercept_
	Data d = small(Target::Binary);
	struct Ref {
		const char *loss;
		double w0, w1, b;
	} refs[] = {{"squared_hinge", 1.7128567228568825, 0.9766813517545861, -0.016585669220288167},
	            {"hinge", 2.0259657479626414, 0.9601616765529262, 0.03983832344707375}};
	for (const Ref &ref : refs) {
		SCOPED_TRACE(ref.loss);
		auto e = pgml::fit_svm(d.in(Task::Classification, 2),
		                       params({{"tol", 1e-8}, {"max_iter", 100000}}, {{"loss", ref.loss}}));
		const double z0[2] = {0, 0}, z1[2] = {1, 0}, z2[2] = {0, 1};
		const double b = decision(*e, z0);
		EXPECT_NEAR(b, ref.b, 1e-4);
		EXPECT_NEAR(decision(*e, z1) - b, ref.w0, 1e-4);
		EXPECT_NEAR(decision(*e, z2) - b, ref.w1, 1e-4);
	}
}

TEST(Svm, LinearSvcOneVsRestMatchesScikitLearn)
{
	Data d = small(Target::Three);
	auto e = pgml::fit_svm(d.in(Task::Classification, 3), params({{"tol", 1e-8}, {"max_iter", 100000}}));
	const double W[3][2] = {{-0.9583560686919701, -1.3338828691577131},
	                        {-1.0136120456489772, 1.2683823767232631},
	                        {1.8489235139728668, 0.2498247882830123}};
	const double b[3] = {-0.4713253147440132, -0.7174769251203099, -0.46830780296662106};
	for (const auto &z : kZ) {
		double out[3], dec[3];
		int c = e->predict(z, out);
		int best = 0;
		for (int k = 0; k < 3; k++) {
			dec[k] = W[k][0] * z[0] + W[k][1] * z[1] + b[k];
			if (dec[k] > dec[best])
				best = k;
		}
		EXPECT_EQ(c, best);
		EXPECT_NEAR(out[0] + out[1] + out[2], 1, 1e-12);
		// softmax of the decision values: log ratios are differences of decision values
		for (int k = 1; k < 3; k++)
			EXPECT_NEAR(std::log(out[k] / out[0]), dec[k] - dec[0], 1e-4);
	}
}

TEST(Svm, LinearSvrMatchesScikitLearn)
{
	// LinearSVR(C=1, epsilon=0, tol=1e-8).fit(X, yr)
	Data d = small(Target::Value);
	auto e = pgml::fit_svm(d.in(Task::Regression, 0), params({{"tol", 1e-8}, {"max_iter", 100000}}));
	const double w0 = 1.7021800403477125, w1 = -0.9928585233726269, b = -0.007141476745564538;
	for (const auto &z : kZ) {
		double out[1];
		EXPECT_EQ(e->predict(z, out), 0);
		EXPECT_NEAR(out[0], w0 * z[0] + w1 * z[1] + b, 1e-4);
	}
	EXPECT_FALSE(d.log.empty());
	for (const auto &l : d.log)
		EXPECT_TRUE(std::isfinite(l.loss));
}

TEST(Svm, RbfSvcMatchesScikitLearn)
{
	// SVC(C=1, gamma='scale', tol=1e-8).fit(X, yb).decision_function(Z)
	Data d = small(Target::Binary);
	auto e = pgml::fit_svm(d.in(Task::Classification, 2), params({{"tol", 1e-8}}, {{"kernel", "rbf"}}));
	const double ref[4] = {0.326563949386493, 0.6658566488488249, -0.4808323796969692, 0.937975832905771};
	for (int i = 0; i < 4; i++)
		EXPECT_NEAR(decision(*e, kZ[i]), ref[i], 1e-5) << i;
	EXPECT_STREQ(e->importance_kind(), "not_available");
	EXPECT_EQ(e->importance().size(), 2);
	EXPECT_EQ(e->importance().squaredNorm(), 0);
}

TEST(Svm, RbfOneVsOneMatchesScikitLearnPredictions)
{
	Data d = small(Target::Three);
	auto e = pgml::fit_svm(d.in(Task::Classification, 3), params({{"tol", 1e-8}}, {{"kernel", "rbf"}}));
	const int ref_z[4] = {2, 2, 1, 2};
	for (int i = 0; i < 4; i++) {
		double out[3];
		int c = e->predict(kZ[i], out);
		EXPECT_EQ(c, ref_z[i]) << i;
		EXPECT_NEAR(out[0] + out[1] + out[2], 1, 1e-12);
		EXPECT_EQ(out[c], std::max({out[0], out[1], out[2]}));
	}
	// scikit-learn fits the training rows perfectly
	for (int i = 0; i < 24; i++) {
		double out[3];
		VectorXd z = d.X.row(i).transpose();
		EXPECT_EQ(e->predict(z.data(), out), static_cast<int>(d.y(i))) << i;
	}
}

TEST(Svm, RbfSvrMatchesScikitLearn)
{
	// SVR(C=1, gamma='scale', epsilon=0.1, tol=1e-8).fit(X, yr).predict(Z)
	Data d = small(Target::Value);
	auto e = pgml::fit_svm(d.in(Task::Regression, 0),
	                       params({{"tol", 1e-8}, {"epsilon", 0.1}}, {{"kernel", "rbf"}}));
	const double ref[4] = {-0.057870694226470315, 1.2749400836125044, -2.032975437453984, 1.203452837318003};
	for (int i = 0; i < 4; i++) {
		double out[1];
		e->predict(kZ[i], out);
		EXPECT_NEAR(out[0], ref[i], 1e-5) << i;
	}
}

TEST(Svm, RbfLearnsXor)
{
	// four clusters at (+-1, +-1), class = XOR of the signs: no linear separator exists
	Data d;
	const int n = 40;
	d.X.resize(n, 2);
	d.y.resize(n);
	for (int i = 0; i < n; i++) {
		const double sx = i % 2 ? 1 : -1, sy = (i / 2) % 2 ? 1 : -1;
		d.X(i, 0) = sx + 0.15 * std::sin(3.1 * i);
		d.X(i, 1) = sy + 0.15 * std::cos(2.3 * i);
		d.y(i) = sx * sy > 0 ? 1 : 0;
	}
	auto e = pgml::fit_svm(d.in(Task::Classification, 2), params({}, {{"kernel", "rbf"}}));
	int hits = 0;
	for (int i = 0; i < n; i++) {
		double out[2];
		VectorXd z = d.X.row(i).transpose();
		hits += e->predict(z.data(), out) == static_cast<int>(d.y(i));
	}
	EXPECT_EQ(hits, n);
	const double corners[4][2] = {{1, 1}, {-1, -1}, {1, -1}, {-1, 1}};
	for (int k = 0; k < 4; k++) {
		double out[2];
		EXPECT_EQ(e->predict(corners[k], out), k < 2 ? 1 : 0) << k;
	}
}

TEST(Svm, DeterministicForASeed)
{
	Data d = small(Target::Three);
	for (const char *kernel : {"linear", "rbf"}) {
		auto a = pgml::fit_svm(d.in(Task::Classification, 3, 7), params({}, {{"kernel", kernel}}));
		auto b = pgml::fit_svm(d.in(Task::Classification, 3, 7), params({}, {{"kernel", kernel}}));
		EXPECT_EQ(grid_outputs(*a, 2, 3), grid_outputs(*b, 2, 3)) << kernel;
		EXPECT_EQ(bytes_of(*a), bytes_of(*b)) << kernel;
	}
}

TEST(Svm, ThreadsDoNotChangeTheResult)
{
	Data d = small(Target::Three);
	for (const char *kernel : {"linear", "rbf"}) {
		pgml::FitInput in1 = d.in(Task::Classification, 3);
		auto a = pgml::fit_svm(in1, params({}, {{"kernel", kernel}}));
		pgml::FitInput in4 = d.in(Task::Classification, 3);
		in4.threads = 4;
		auto b = pgml::fit_svm(in4, params({}, {{"kernel", kernel}}));
		EXPECT_EQ(bytes_of(*a), bytes_of(*b)) << kernel;
	}
}

namespace {

struct Case {
	const char *name;
	Target target;
	const char *kernel;
};
const Case kCases[] = {{"linear_binary", Target::Binary, "linear"},
                       {"linear_three", Target::Three, "linear"},
                       {"linear_regression", Target::Value, "linear"},
                       {"rbf_binary", Target::Binary, "rbf"},
                       {"rbf_three", Target::Three, "rbf"},
                       {"rbf_regression", Target::Value, "rbf"}};

pgml::EstimatorShape shape_of(const Case &c)
{
	pgml::EstimatorShape s;
	s.p = 2;
	s.task = c.target == Target::Value ? Task::Regression : Task::Classification;
	s.n_classes = c.target == Target::Binary ? 2 : c.target == Target::Three ? 3 : 0;
	return s;
}

std::unique_ptr<pgml::Estimator> fit_case(const Case &c)
{
	Data d = small(c.target);
	pgml::EstimatorShape s = shape_of(c);
	return pgml::fit_svm(d.in(s.task, s.n_classes), params({{"epsilon", 0.1}}, {{"kernel", c.kernel}}));
}

} // namespace

TEST(Svm, SerializationRoundTrip)
{
	for (const Case &c : kCases) {
		SCOPED_TRACE(c.name);
		auto e = fit_case(c);
		const pgml::EstimatorShape s = shape_of(c);
		const int n_out = std::max(1, s.n_classes);
		std::vector<uint8_t> b = bytes_of(*e);
		auto back = read_bytes(b, s);
		EXPECT_EQ(grid_outputs(*e, 2, n_out), grid_outputs(*back, 2, n_out));
		EXPECT_EQ(bytes_of(*back), b);
		EXPECT_EQ(e->importance(), back->importance());
		EXPECT_FALSE(back->can_continue());
		// a shape that does not match is corrupt
		pgml::EstimatorShape wrong = s;
		wrong.p = 3;
		expect_error([&] { read_bytes(b, wrong); }, ErrorCode::DataCorrupted);
		wrong = s;
		wrong.n_classes = s.n_classes == 3 ? 2 : 3;
		wrong.task = Task::Classification;
		expect_error([&] { read_bytes(b, wrong); }, ErrorCode::DataCorrupted);
		wrong = s;
		wrong.task = s.task == Task::Regression ? Task::Classification : Task::Regression;
		wrong.n_classes = wrong.task == Task::Regression ? 0 : 2;
		expect_error([&] { read_bytes(b, wrong); }, ErrorCode::DataCorrupted);
	}
}

TEST(Svm, EveryTruncationIsRejected)
{
	for (const Case &c : kCases) {
		SCOPED_TRACE(c.name);
		std::vector<uint8_t> b = bytes_of(*fit_case(c));
		for (size_t len = 0; len < b.size(); len++) {
			std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(len));
			pgml::Reader r(t.data(), t.size());
			expect_error([&] { pgml::read_svm(r, shape_of(c)); }, ErrorCode::DataCorrupted);
		}
	}
}

TEST(Svm, ByteCorruptionsAreRejectedOrHarmless)
{
	// every single-byte change must give Error(DataCorrupted), or (a changed number) a model that
	// predicts without crashing
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
					grid_outputs(*e, 2, std::max(1, s.n_classes));
				} catch (const pgml::Error &err) {
					EXPECT_EQ(err.code(), ErrorCode::DataCorrupted) << err.what();
					rejected++;
				}
			}
		EXPECT_GT(rejected, 0);
		// the leading fields (version, kernel, task, classes, features) are all checked
		for (size_t i = 0; i < 12; i++) {
			std::vector<uint8_t> m = b;
			m[i] ^= 0x40;
			expect_error([&] { read_bytes(m, s); }, ErrorCode::DataCorrupted);
		}
	}
}

TEST(Svm, CancellationStopsTheFit)
{
	Data d = small(Target::Three);
	for (const char *kernel : {"linear", "rbf"}) {
		for (Task t : {Task::Classification, Task::Regression}) {
			pgml::FitInput in = d.in(t, t == Task::Regression ? 0 : 3);
			in.cancel = [] { return true; };
			expect_error([&] { pgml::fit_svm(in, params({}, {{"kernel", kernel}})); }, ErrorCode::Cancelled);
		}
	}
}

TEST(Svm, RbfRefusesMoreRowsThanMaxKernelRows)
{
	Data d = small(Target::Binary);
	pgml::Error e = expect_error(
		[&] { pgml::fit_svm(d.in(Task::Classification, 2), params({{"max_kernel_rows", 10}}, {{"kernel", "rbf"}})); },
		ErrorCode::ProgramLimit);
	EXPECT_NE(std::string(e.what()).find("O(n^2)"), std::string::npos) << e.what();
	EXPECT_NE(e.hint().find("linear"), std::string::npos);
	EXPECT_NE(e.hint().find("max_kernel_rows"), std::string::npos);
	// the linear kernel has no such limit
	EXPECT_NO_THROW(pgml::fit_svm(d.in(Task::Classification, 2), params({{"max_kernel_rows", 10}})));
}

TEST(Svm, LogsOneEntryPerEpoch)
{
	Data d = small(Target::Binary);
	auto e = pgml::fit_svm(d.in(Task::Classification, 2), params({{"max_iter", 3}, {"tol", 1e-12}}));
	ASSERT_EQ(d.log.size(), 3u);
	for (size_t i = 0; i < d.log.size(); i++) {
		EXPECT_EQ(d.log[i].iteration, static_cast<int>(i + 1));
		EXPECT_TRUE(std::isfinite(d.log[i].loss));
		EXPECT_GE(d.log[i].loss, 0);
	}
}

TEST(Svm, RejectsBadInput)
{
	Data d = small(Target::Binary);
	expect_error([&] { pgml::fit_svm(d.in(Task::Classification, 1), params()); }, ErrorCode::DataException);
	pgml::FitInput in = d.in(Task::Clustering, 0);
	expect_error([&] { pgml::fit_svm(in, params()); }, ErrorCode::FeatureNotSupported);
}
