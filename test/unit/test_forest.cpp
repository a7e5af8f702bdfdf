// random_forest: a forest without bootstrap or feature sampling equals one decision tree,
// results independent of the thread count, determinism per seed, the out-of-bag log,
// importances, serialization (round trip, truncations, corrupted bytes, crafted bodies),
// cancellation and the hyperparameter specs.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "estimator.hpp"
#include "models/decision_tree.hpp"
#include "models/random_forest.hpp"
#include "models/tree.hpp"
#include "serialize.hpp"
#include "test_util.hpp"

using Eigen::MatrixXd;
using Eigen::VectorXd;
using pgml::ErrorCode;
using pgml::Estimator;
using pgml::FitInput;
using pgml::OptionValue;
using pgml::Options;
using pgml::Task;

namespace {

const pgml::AlgorithmDef &forest_def()
{
	static const pgml::AlgorithmDef def{pgml::Algorithm::RandomForest, "random_forest", true, true, false, false,
	                                    pgml::random_forest_params(), pgml::fit_random_forest,
	                                    pgml::read_random_forest};
	return def;
}

struct Forest {
	std::unique_ptr<Estimator> est;
	std::vector<pgml::IterationLog> log;
};

// Fits a forest with the given hyperparameters (validated like the trainer does).
Forest fit_forest(const MatrixXd &X, const VectorXd &y, Task task, int K, const Options &opts, uint64_t seed = 42,
                  int threads = 1, pgml::CancelCheck cancel = nullptr)
{
	Forest f;
	FitInput in;
	in.X = &X;
	in.y = &y;
	in.task = task;
	in.n_classes = K;
	in.seed = seed;
	in.threads = threads;
	in.cancel = cancel;
	in.log = &f.log;
	f.est = pgml::fit_random_forest(in, pgml::parse_params(forest_def(), opts));
	return f;
}

Options forest_opts(std::initializer_list<std::pair<const char *, double>> kv, bool bootstrap = true)
{
	Options o;
	for (const auto &[k, v] : kv)
		o[k] = OptionValue::of_number(v);
	o["bootstrap"] = OptionValue::of_bool(bootstrap);
	return o;
}

std::vector<uint8_t> bytes_of(const Estimator &e)
{
	pgml::Writer w;
	e.write(w);
	return w.bytes();
}

// Two informative features (0, 1) and three noise features; class by a circle, value smooth.
void circle_data(int n, uint64_t seed, MatrixXd &X, VectorXd &yc, VectorXd &yr)
{
	pgml::TreeRng rng(seed);
	auto u = [&] { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53 * 2 - 1; };
	X.resize(n, 5);
	yc.resize(n);
	yr.resize(n);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 5; j++)
			X(i, j) = u();
		double r2 = X(i, 0) * X(i, 0) + X(i, 1) * X(i, 1);
		yc(i) = r2 < 0.5 ? (X(i, 0) > 0 ? 1 : 0) : 2;
		yr(i) = std::sin(3 * X(i, 0)) + X(i, 1) * X(i, 1) + 0.05 * u();
	}
}

// Accuracy (classification) or R^2 (regression) of e on rows of X.
double score(const Estimator &e, const MatrixXd &X, const VectorXd &y, Task task)
{
	std::vector<double> z(static_cast<size_t>(X.cols())), out(3);
	double right = 0, ss_res = 0, ss_tot = 0, mean = y.mean();
	for (int i = 0; i < X.rows(); i++) {
		for (int j = 0; j < X.cols(); j++)
			z[static_cast<size_t>(j)] = X(i, j);
		int c = e.predict(z.data(), out.data());
		right += c == y(i);
		ss_res += (out[0] - y(i)) * (out[0] - y(i));
		ss_tot += (y(i) - mean) * (y(i) - mean);
	}
	return task == Task::Classification ? right / static_cast<double>(X.rows()) : 1 - ss_res / ss_tot;
}

} // namespace

TEST(RandomForest, WithoutRandomnessEveryTreeIsTheDecisionTree)
{
	MatrixXd X;
	VectorXd yc, yr;
	circle_data(150, 1, X, yc, yr);
	const pgml::AlgorithmDef tdef{pgml::Algorithm::DecisionTree, "decision_tree", true, true, false, false,
	                              pgml::decision_tree_params(), pgml::fit_decision_tree, pgml::read_decision_tree};
	for (Task task : {Task::Classification, Task::Regression}) {
		const VectorXd &y = task == Task::Classification ? yc : yr;
		const int K = task == Task::Classification ? 3 : 0;
		Forest f = fit_forest(X, y, task, K, forest_opts({{"n_estimators", 4}, {"max_features", 1.0}}, false), 42, 2);
		FitInput in;
		in.X = &X;
		in.y = &y;
		in.task = task;
		in.n_classes = K;
		auto t = pgml::fit_decision_tree(in, pgml::parse_params(tdef, {}));
		std::vector<double> a(3), b(3);
		for (int i = 0; i < X.rows(); i++) {
			std::vector<double> z(5);
			for (int j = 0; j < 5; j++)
				z[static_cast<size_t>(j)] = X(i, j) * 0.9;
			EXPECT_EQ(f.est->predict(z.data(), a.data()), t->predict(z.data(), b.data()));
			for (int k = 0; k < std::max(1, K); k++)
				EXPECT_NEAR(a[static_cast<size_t>(k)], b[static_cast<size_t>(k)], 1e-12);
		}
		EXPECT_LT((f.est->importance() - t->importance()).cwiseAbs().maxCoeff(), 1e-12);
		// no bootstrap: no out-of-bag score, but one log entry per tree
		ASSERT_EQ(f.log.size(), 4u);
		EXPECT_TRUE(std::isnan(f.log[3].valid));
	}
}

TEST(RandomForest, SameForestForAnyThreadCount)
{
	MatrixXd X;
	VectorXd yc, yr;
	circle_data(200, 2, X, yc, yr);
	Options o = forest_opts({{"n_estimators", 12}});
	for (Task task : {Task::Classification, Task::Regression}) {
		const VectorXd &y = task == Task::Classification ? yc : yr;
		const int K = task == Task::Classification ? 3 : 0;
		Forest one = fit_forest(X, y, task, K, o, 5, 1);
		std::vector<uint8_t> b = bytes_of(*one.est);
		for (int threads : {2, 3, 8})
			EXPECT_EQ(bytes_of(*fit_forest(X, y, task, K, o, 5, threads).est), b) << threads << " threads";
		EXPECT_EQ(bytes_of(*fit_forest(X, y, task, K, o, 5, 1).est), b);
		EXPECT_NE(bytes_of(*fit_forest(X, y, task, K, o, 6, 1).est), b); // another seed, another forest
	}
}

TEST(RandomForest, LearnsAndReportsOutOfBag)
{
	MatrixXd X, Xt;
	VectorXd yc, yr, yct, yrt;
	circle_data(600, 3, X, yc, yr);
	circle_data(400, 4, Xt, yct, yrt);
	Forest c = fit_forest(X, yc, Task::Classification, 3, forest_opts({{"n_estimators", 40}}), 42, 2);
	double acc = score(*c.est, Xt, yct, Task::Classification);
	EXPECT_GT(acc, 0.9);
	ASSERT_EQ(c.log.size(), 40u);
	for (size_t t = 0; t < c.log.size(); t++) {
		EXPECT_EQ(c.log[t].iteration, static_cast<int>(t) + 1);
		EXPECT_TRUE(std::isnan(c.log[t].loss));
		EXPECT_GE(c.log[t].valid, 0);
		EXPECT_LE(c.log[t].valid, 1);
	}
	EXPECT_NEAR(c.log.back().valid, acc, 0.05); // OOB accuracy estimates the test accuracy
	// importance: the two informative features carry almost all of it
	VectorXd imp = c.est->importance();
	EXPECT_NEAR(imp.sum(), 1, 1e-12);
	EXPECT_GT(imp(0) + imp(1), 0.7);
	EXPECT_STREQ(c.est->importance_kind(), "gain");
	// probabilities sum to 1
	std::vector<double> out(3);
	std::vector<double> z = {0.1, 0.2, 0, 0, 0};
	EXPECT_EQ(c.est->predict(z.data(), out.data()), 1);
	EXPECT_NEAR(out[0] + out[1] + out[2], 1, 1e-12);

	Forest r = fit_forest(X, yr, Task::Regression, 0, forest_opts({{"n_estimators", 40}}), 42, 2);
	double r2 = score(*r.est, Xt, yrt, Task::Regression);
	EXPECT_GT(r2, 0.9);
	ASSERT_EQ(r.log.size(), 40u);
	EXPECT_NEAR(r.log.back().valid, r2, 0.05);
}

TEST(RandomForest, SerializationRoundTrip)
{
	MatrixXd X;
	VectorXd yc, yr;
	circle_data(150, 5, X, yc, yr);
	Forest c = fit_forest(X, yc, Task::Classification, 3, forest_opts({{"n_estimators", 5}}));
	Forest r = fit_forest(X, yr, Task::Regression, 0, forest_opts({{"n_estimators", 5}}));
	for (const Forest *f : {&c, &r}) {
		bool cls = f == &c;
		pgml::EstimatorShape shape{5, cls ? 3 : 0, cls ? Task::Classification : Task::Regression};
		std::vector<uint8_t> b = bytes_of(*f->est);
		pgml::Reader rd(b.data(), b.size());
		auto back = pgml::read_random_forest(rd, shape);
		EXPECT_TRUE(rd.at_end());
		EXPECT_EQ(bytes_of(*back), b);
		EXPECT_EQ(back->importance(), f->est->importance());
		std::vector<double> o1(3), o2(3);
		for (int i = 0; i < X.rows(); i++) {
			std::vector<double> z = {X(i, 0), X(i, 1) + 0.01, X(i, 2), X(i, 3), X(i, 4)};
			EXPECT_EQ(f->est->predict(z.data(), o1.data()), back->predict(z.data(), o2.data()));
			EXPECT_EQ(o1, o2);
		}
		for (pgml::EstimatorShape bad : {pgml::EstimatorShape{4, shape.n_classes, shape.task},
		                                 pgml::EstimatorShape{5, cls ? 2 : 3, cls ? shape.task : Task::Classification},
		                                 pgml::EstimatorShape{5, 0, cls ? Task::Regression : Task::Clustering}}) {
			pgml::Reader r2(b.data(), b.size());
			try {
				pgml::read_random_forest(r2, bad);
				ADD_FAILURE() << "accepted a shape mismatch";
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted);
			}
		}
	}
}

TEST(RandomForest, EveryTruncationAndCorruptedByteIsRejected)
{
	MatrixXd X;
	VectorXd yc, yr;
	circle_data(40, 6, X, yc, yr);
	Forest c = fit_forest(X, yc, Task::Classification, 3, forest_opts({{"n_estimators", 3}, {"max_depth", 3}}));
	const pgml::EstimatorShape shape{5, 3, Task::Classification};
	const std::vector<uint8_t> b = bytes_of(*c.est);
	for (size_t len = 0; len < b.size(); len++) {
		std::vector<uint8_t> t(b.begin(), b.begin() + static_cast<long>(len));
		pgml::Reader r(t.empty() ? nullptr : t.data(), len);
		try {
			pgml::read_random_forest(r, shape);
			ADD_FAILURE() << "accepted a truncation to " << len << " bytes";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
		}
	}
	for (size_t i = 0; i < b.size(); i++)
		for (uint8_t d : {0x01, 0x80, 0xFF}) {
			std::vector<uint8_t> t = b;
			t[i] ^= d;
			pgml::Reader r(t.data(), t.size());
			try {
				pgml::read_random_forest(r, shape);
				ADD_FAILURE() << "accepted byte " << i << " ^ " << int(d);
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
			}
		}
}

// Bodies changed behind a valid checksum: rejected, or safe to predict with.
TEST(RandomForest, CraftedBodiesAreValidated)
{
	MatrixXd X;
	VectorXd yc, yr;
	circle_data(40, 7, X, yc, yr);
	Forest r = fit_forest(X, yr, Task::Regression, 0, forest_opts({{"n_estimators", 3}, {"max_depth", 3}}));
	const pgml::EstimatorShape shape{5, 0, Task::Regression};
	const std::vector<uint8_t> b = bytes_of(*r.est);
	pgml::Reader r0(b.data(), b.size());
	uint16_t version = 0;
	const std::string body = pgml::read_checked(r0, 4, "random_forest", &version);
	EXPECT_EQ(version, 3); // native missing values, covers
	int rejected = 0, accepted = 0;
	for (size_t i = 0; i < body.size(); i++)
		for (uint8_t d : {0x01, 0x40, 0xFF}) {
			std::vector<uint8_t> mb(body.begin(), body.end());
			mb[i] ^= d;
			pgml::Writer w;
			pgml::write_checked(w, version, mb);
			pgml::Reader rd(w.bytes().data(), w.bytes().size());
			try {
				auto e = pgml::read_random_forest(rd, shape);
				accepted++;
				double out = 0;
				for (int k = 0; k < 10; k++) {
					std::vector<double> z = {X(k, 0), X(k, 1), X(k, 2), X(k, 3), X(k, 4)};
					EXPECT_EQ(e->predict(z.data(), &out), 0);
					pgml_test::expect_contributions_add_up(*e, z.data(), 0, 5, out); // accepted covers are consistent
				}
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::DataCorrupted) << e.what();
				rejected++;
			}
		}
	EXPECT_GT(rejected, 0);
	EXPECT_GT(accepted, 0);
}

namespace {
bool always_cancel() { return true; }
std::atomic<int> calls{0};
bool cancel_later() { return ++calls > 20; }
} // namespace

TEST(RandomForest, Cancellation)
{
	MatrixXd X;
	VectorXd yc, yr;
	circle_data(300, 8, X, yc, yr);
	for (int threads : {1, 3})
		for (pgml::CancelCheck cc : {&always_cancel, &cancel_later}) {
			calls = 0;
			try {
				fit_forest(X, yc, Task::Classification, 3, forest_opts({{"n_estimators", 30}}), 42, threads, cc);
				ADD_FAILURE() << "not cancelled";
			} catch (const pgml::Error &e) {
				EXPECT_EQ(e.code(), ErrorCode::Cancelled);
			}
		}
}

TEST(RandomForest, HyperparameterSpecs)
{
	std::set<std::string> names;
	for (const pgml::ParamSpec &s : pgml::random_forest_params()) {
		EXPECT_TRUE(names.insert(s.name).second) << s.name;
		if (s.kind != pgml::ParamSpec::Kind::Choice) {
			EXPECT_LE(s.min, s.def) << s.name;
			EXPECT_GE(s.max, s.def) << s.name;
		}
	}
	for (const char *n : {"n_estimators", "bootstrap", "max_depth", "min_samples_split", "min_samples_leaf",
	                      "max_features", "min_impurity_decrease", "criterion"})
		EXPECT_EQ(names.count(n), 1u) << n;
	pgml::Params p = pgml::parse_params(forest_def(), {});
	EXPECT_EQ(p.integer("n_estimators"), 100);
	EXPECT_TRUE(p.flag("bootstrap"));
	EXPECT_EQ(p.num("max_features"), 0);
	Options bad;
	bad["n_estimators"] = OptionValue::of_number(0);
	EXPECT_THROW(pgml::parse_params(forest_def(), bad), pgml::Error);
	bad.clear();
	bad["bootstrap"] = OptionValue::of_number(1);
	EXPECT_THROW(pgml::parse_params(forest_def(), bad), pgml::Error);
}

// predict_many (blocks of rows on the fit's threads: the trainer's metrics) gives what
// predict() gives row by row, across block boundaries and thread counts.
TEST(RandomForest, PredictManyEqualsPredict)
{
	MatrixXd X;
	VectorXd yc, yr;
	circle_data(1000, 3, X, yc, yr);
	Options o = forest_opts({{"n_estimators", 8}});
	for (Task task : {Task::Classification, Task::Regression}) {
		const VectorXd &y = task == Task::Classification ? yc : yr;
		const int K = task == Task::Classification ? 3 : 0;
		const size_t width = task == Task::Classification ? 3 : 1;
		for (int threads : {1, 2, 3}) {
			Forest f = fit_forest(X, y, task, K, o, 5, threads);
			const size_t n = static_cast<size_t>(X.rows()), p = static_cast<size_t>(X.cols());
			Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Z = X;
			std::vector<double> many(n * width), one(width);
			std::vector<int> klass(n, -1);
			f.est->predict_many(Z.data(), n, p, width, many.data(), klass.data());
			for (size_t i = 0; i < n; i++) {
				int c = f.est->predict(Z.data() + i * p, one.data());
				ASSERT_EQ(klass[i], c) << "row " << i << ", " << threads << " threads";
				for (size_t k = 0; k < width; k++)
					ASSERT_EQ(many[i * width + k], one[k]) << "row " << i;
			}
		}
	}
}
