// Binned split finding of decision_tree / random_forest (models/tree.hpp, max_bin): the bins
// (one per distinct value when they fit, else about equal row counts; code 255 for missing
// values), hand-known splits, the same trees as the exact sorter (max_bin 0) on data with few
// distinct values, a correct tree on data with more distinct values than bins (thresholds that
// route every training row as it was partitioned), the same tree on any thread count,
// cancellation, the memory limit and the max_bin hyperparameter.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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
using pgml::BinnedFeatures;
using pgml::ErrorCode;
using pgml::SplitCriterion;
using pgml::Task;
using pgml::Tree;
using pgml::TreeFit;
using pgml::TreeOptions;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

int cancel_calls = 0;
bool always_cancel() { return true; }
bool cancel_later() { return ++cancel_calls > 5; }

TreeOptions options(SplitCriterion c, int K, int max_bin, int max_features = 0, int min_leaf = 1)
{
	TreeOptions o;
	o.criterion = c;
	o.n_outputs = c == SplitCriterion::SquaredError ? 1 : K;
	o.max_bin = max_bin;
	o.max_features = max_features;
	o.min_samples_leaf = min_leaf;
	return o;
}

TreeFit grow(const MatrixXd &X, const VectorXd &y, const TreeOptions &o, const std::vector<double> *w = nullptr,
             int threads = 1, uint64_t seed = 7)
{
	pgml::TreeRng rng(seed);
	pgml::CancelPoll cancel(nullptr);
	return pgml::grow_tree(X, y, w, o, rng, cancel, nullptr, threads);
}

// n rows of p features; values from `levels` evenly spaced values (0: continuous), a fraction
// `missing` of them NaN; a class (K = 3) and a value target that depend on features 0 to 2.
void data(int n, int p, int levels, double missing, uint64_t seed, MatrixXd &X, VectorXd &yc, VectorXd &yr)
{
	pgml::TreeRng rng(seed);
	auto u = [&] { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; };
	X.resize(n, p);
	yc.resize(n);
	yr.resize(n);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < p; j++) {
			double v = levels > 0 ? std::floor(u() * levels) / levels : u();
			X(i, j) = u() < missing ? kNaN : v;
		}
		auto val = [&](int j) { return std::isnan(X(i, j)) ? 0.5 : X(i, j); };
		double s = val(0) + 0.5 * val(1) - 0.7 * val(2) + 0.3 * u();
		yc(i) = s < 0.2 ? 0 : (s < 0.6 ? 1 : 2);
		yr(i) = std::sin(4 * val(0)) + val(1) * val(2) + 0.1 * u();
	}
}

void expect_same_tree(const Tree &a, const Tree &b)
{
	ASSERT_EQ(a.nodes.size(), b.nodes.size());
	for (size_t i = 0; i < a.nodes.size(); i++) {
		const pgml::TreeNode &x = a.nodes[i], &y = b.nodes[i];
		ASSERT_EQ(x.feature, y.feature) << "node " << i;
		ASSERT_EQ(x.cover, y.cover) << "node " << i;
		if (x.feature >= 0) {
			ASSERT_EQ(x.threshold, y.threshold) << "node " << i;
			ASSERT_EQ(x.left, y.left) << "node " << i;
			ASSERT_EQ(x.right, y.right) << "node " << i;
			ASSERT_EQ(x.missing_left, y.missing_left) << "node " << i;
		} else {
			for (int k = 0; k < a.n_outputs; k++)
				ASSERT_NEAR(a.values[static_cast<size_t>(x.value + k)], b.values[static_cast<size_t>(y.value + k)], 1e-12);
		}
	}
}

// Routes every training row through the tree's thresholds (as prediction does) and checks that
// each node's cover is the weight of the rows that reach it: the thresholds send each row where
// the binned partition sent it during training.
void expect_thresholds_route_as_trained(const Tree &t, const MatrixXd &X, const std::vector<double> *w)
{
	std::vector<double> reach(t.nodes.size(), 0.0);
	std::vector<double> z(static_cast<size_t>(X.cols()));
	for (Eigen::Index i = 0; i < X.rows(); i++) {
		const double wi = w ? (*w)[static_cast<size_t>(i)] : 1.0;
		for (Eigen::Index j = 0; j < X.cols(); j++)
			z[static_cast<size_t>(j)] = X(i, j);
		int node = 0;
		reach[0] += wi;
		while (t.nodes[static_cast<size_t>(node)].feature >= 0) {
			node = Tree::child(t.nodes[static_cast<size_t>(node)], z.data());
			reach[static_cast<size_t>(node)] += wi;
		}
	}
	for (size_t i = 0; i < t.nodes.size(); i++)
		ASSERT_EQ(reach[i], t.nodes[i].cover) << "node " << i;
}

double accuracy(const Tree &t, const MatrixXd &X, const VectorXd &y)
{
	std::vector<double> z(static_cast<size_t>(X.cols()));
	int right = 0;
	for (Eigen::Index i = 0; i < X.rows(); i++) {
		for (Eigen::Index j = 0; j < X.cols(); j++)
			z[static_cast<size_t>(j)] = X(i, j);
		const double *v = t.leaf(z.data());
		int best = 0;
		for (int k = 1; k < t.n_outputs; k++)
			if (v[k] > v[best])
				best = k;
		right += best == y(i);
	}
	return static_cast<double>(right) / static_cast<double>(X.rows());
}

} // namespace

// One bin per distinct value when they fit; otherwise at most max_bin bins of about equal row
// counts, ordered, disjoint, never splitting equal values; every row's code is the bin of its
// value; missing rows get code 255 and the feature at most 255 value bins.
TEST(TreeBinned, Bins)
{
	const int n = 3000;
	MatrixXd X(n, 4);
	for (int i = 0; i < n; i++) {
		X(i, 0) = (i * 7) % 10;                  // 10 distinct values
		X(i, 1) = std::sin(i) * 100;             // 3000 distinct
		X(i, 2) = i % 5 == 0 ? kNaN : i % 256;   // 256 distinct and missing: 255 bins
		X(i, 3) = i < 2000 ? 1.0 : (i % 997) / 7.0; // one heavy value and many others
	}
	pgml::CancelPoll cancel(nullptr);
	for (int max_bin : {2, 16, 255, 256}) {
		BinnedFeatures b(X, max_bin, 2, 1, cancel, "test");
		ASSERT_EQ(b.rows(), n);
		EXPECT_EQ(b.bins(0), std::min(10, max_bin));
		EXPECT_FALSE(b.has_missing(1));
		EXPECT_TRUE(b.has_missing(2));
		EXPECT_EQ(b.bins(1), max_bin);
		EXPECT_EQ(b.bins(2), std::min(max_bin, 255));
		for (int f = 0; f < 4; f++) {
			EXPECT_LE(b.bins(f), max_bin);
			for (int k = 0; k < b.bins(f); k++) {
				EXPECT_LE(b.lo(f, k), b.hi(f, k));
				if (k > 0) {
					EXPECT_LT(b.hi(f, k - 1), b.lo(f, k));
				}
			}
			for (int i = 0; i < n; i++) {
				const int c = b.codes(f)[i];
				if (std::isnan(X(i, f))) {
					EXPECT_EQ(c, BinnedFeatures::kMissing);
					continue;
				}
				ASSERT_LT(c, b.bins(f));
				EXPECT_LE(b.lo(f, c), X(i, f));
				EXPECT_GE(b.hi(f, c), X(i, f));
			}
		}
		if (max_bin == 256) { // the heavy value fills a bin of its own
			const int c = b.codes(3)[0];
			EXPECT_EQ(b.lo(3, c), 1.0);
			EXPECT_EQ(b.hi(3, c), 1.0);
		}
	}
}

// A known best split: x in 0..9 (each 30 times), class 1 from x = 7 on, plus a noise feature;
// the stump splits x at 6.5 with pure children. On 5,000 distinct values (more than the bins)
// the class boundary at 0.6 is found within one bin's width and the tree stays correct.
TEST(TreeBinned, KnownSplit)
{
	MatrixXd X(300, 2);
	VectorXd y(300);
	for (int i = 0; i < 300; i++) {
		X(i, 0) = i % 10;
		X(i, 1) = (i * 37) % 11;
		y(i) = i % 10 >= 7 ? 1 : 0;
	}
	TreeOptions o = options(SplitCriterion::Gini, 2, 256);
	o.max_depth = 1;
	TreeFit f = grow(X, y, o);
	ASSERT_EQ(f.tree.nodes.size(), 3u);
	EXPECT_EQ(f.tree.nodes[0].feature, 0);
	EXPECT_EQ(f.tree.nodes[0].threshold, 6.5);
	EXPECT_EQ(f.leaf_impurity, 0);

	const int n = 5000;
	MatrixXd Z(n, 1);
	VectorXd yz(n);
	for (int i = 0; i < n; i++) {
		Z(i, 0) = ((i * 7919) % n) / static_cast<double>(n); // a permutation of 0, 1/n, ...
		yz(i) = Z(i, 0) >= 0.6 ? 1 : 0;
	}
	TreeFit exact = grow(Z, yz, options(SplitCriterion::Gini, 2, 0));
	ASSERT_EQ(exact.tree.nodes.size(), 3u);
	EXPECT_DOUBLE_EQ(exact.tree.nodes[0].threshold, 0.5999);
	TreeFit binned = grow(Z, yz, options(SplitCriterion::Gini, 2, 256));
	const double width = 1.0 / 256 + 2.0 / n;
	EXPECT_NEAR(binned.tree.nodes[0].threshold, 0.6, width);
	EXPECT_EQ(binned.tree.nodes[0].feature, 0);
	EXPECT_EQ(accuracy(binned.tree, Z, yz), 1.0); // the boundary's bin is split further down
	expect_thresholds_route_as_trained(binned.tree, Z, nullptr);
}

// With at most 256 distinct values per feature (and missing values, bootstrap weights, a random
// subset of features per split), the binned trees are the exact sorter's trees, node for node.
TEST(TreeBinned, SameTreesAsExactOnFewDistinctValues)
{
	MatrixXd X;
	VectorXd yc, yr;
	data(1500, 6, 40, 0.1, 11, X, yc, yr);
	std::vector<double> w(1500, 0.0);
	pgml::TreeRng br(5);
	for (int i = 0; i < 1500; i++)
		w[br.below(1500)] += 1;
	for (SplitCriterion c : {SplitCriterion::Gini, SplitCriterion::Entropy, SplitCriterion::SquaredError})
		for (int mtry : {0, 2})
			for (const std::vector<double> *wp : std::vector<const std::vector<double> *>{nullptr, &w})
				for (int min_leaf : {1, 5}) {
					SCOPED_TRACE(testing::Message() << "criterion " << static_cast<int>(c) << " mtry " << mtry
					                                << " weights " << (wp != nullptr) << " min_leaf " << min_leaf);
					const VectorXd &y = c == SplitCriterion::SquaredError ? yr : yc;
					TreeFit a = grow(X, y, options(c, 3, 0, mtry, min_leaf), wp);
					TreeFit b = grow(X, y, options(c, 3, 256, mtry, min_leaf), wp);
					expect_same_tree(a.tree, b.tree);
					EXPECT_NEAR(a.leaf_impurity, b.leaf_impurity, 1e-12);
				}
}

// Many distinct values (continuous features with missing values): a fully grown binned tree is
// consistent (its thresholds route the training rows as they were partitioned, covers add up),
// fits the training rows about as well as the exact tree, and generalises about as well.
TEST(TreeBinned, CorrectTreeOnManyDistinctValues)
{
	MatrixXd X, Xt;
	VectorXd yc, yr, yct, yrt;
	data(4000, 5, 0, 0.05, 21, X, yc, yr);
	data(4000, 5, 0, 0.05, 22, Xt, yct, yrt);
	for (int max_bin : {256, 32}) {
		TreeFit b = grow(X, yc, options(SplitCriterion::Gini, 3, max_bin));
		expect_thresholds_route_as_trained(b.tree, X, nullptr);
		TreeFit e = grow(X, yc, options(SplitCriterion::Gini, 3, 0));
		EXPECT_EQ(accuracy(e.tree, X, yc), 1.0);
		EXPECT_GE(accuracy(b.tree, X, yc), 0.999);
		EXPECT_NEAR(accuracy(b.tree, Xt, yct), accuracy(e.tree, Xt, yct), 0.03);
		TreeFit r = grow(X, yr, options(SplitCriterion::SquaredError, 1, max_bin, 2));
		expect_thresholds_route_as_trained(r.tree, X, nullptr);
	}
}

// A decision tree scans the features of its large nodes on several threads: the same tree.
TEST(TreeBinned, SameTreeOnAnyThreadCount)
{
	MatrixXd X;
	VectorXd yc, yr;
	data(12000, 7, 0, 0.02, 31, X, yc, yr);
	TreeFit one = grow(X, yc, options(SplitCriterion::Gini, 3, 256), nullptr, 1);
	for (int threads : {2, 3}) {
		TreeFit many = grow(X, yc, options(SplitCriterion::Gini, 3, 256), nullptr, threads);
		expect_same_tree(one.tree, many.tree);
	}
	TreeFit r1 = grow(X, yr, options(SplitCriterion::SquaredError, 1, 64), nullptr, 1);
	TreeFit r2 = grow(X, yr, options(SplitCriterion::SquaredError, 1, 64), nullptr, 2);
	expect_same_tree(r1.tree, r2.tree);
}

TEST(TreeBinned, Cancellation)
{
	MatrixXd X;
	VectorXd yc, yr;
	data(5000, 4, 0, 0, 41, X, yc, yr);
	for (int threads : {1, 2}) {
		pgml::CancelPoll cancel(&always_cancel);
		try {
			BinnedFeatures b(X, 256, threads, 3, cancel, "test");
			ADD_FAILURE() << "not cancelled";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), ErrorCode::Cancelled);
		}
		cancel_calls = 0;
		pgml::CancelPoll later(&cancel_later);
		pgml::TreeRng rng(1);
		try {
			pgml::grow_tree(X, yc, nullptr, options(SplitCriterion::Gini, 3, 256), rng, later, nullptr, threads);
			ADD_FAILURE() << "not cancelled";
		} catch (const pgml::Error &e) {
			EXPECT_EQ(e.code(), ErrorCode::Cancelled);
		}
	}
}

// The binned matrix is checked against the memory limit before it is allocated.
TEST(TreeBinned, MemoryLimit)
{
	MatrixXd X;
	VectorXd yc, yr;
	data(20000, 10, 0, 0, 51, X, yc, yr);
	EXPECT_GT(BinnedFeatures::bytes(20000, 10, 1, 2), 20000.0 * 10);
	pgml::CancelPoll cancel(nullptr, 100000, "decision_tree");
	try {
		BinnedFeatures b(X, 256, 1, 2, cancel, "decision_tree");
		ADD_FAILURE() << "no memory error";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::ProgramLimit);
		EXPECT_NE(std::string(e.what()).find("decision_tree"), std::string::npos) << e.what();
	}
	EXPECT_EQ(cancel.charged(), 0u);
	pgml::CancelPoll roomy(nullptr, 10u << 20, "decision_tree");
	BinnedFeatures b(X, 256, 1, 2, roomy, "decision_tree");
	EXPECT_GE(roomy.charged(), 200000u); // the codes count towards the fit's budget
}

// max_bin: 0 (exact) or 2..256, default 256, in both tree algorithms; through the estimators a
// fit with max_bin 0 and one with the default agree on data with few distinct values.
TEST(TreeBinned, MaxBinHyperparameter)
{
	static const pgml::AlgorithmDef def{pgml::Algorithm::DecisionTree, "decision_tree", true, true, false, false,
	                                    pgml::decision_tree_params(), pgml::fit_decision_tree,
	                                    pgml::read_decision_tree};
	pgml::Params p = pgml::parse_params(def, {});
	EXPECT_EQ(p.integer("max_bin"), 256);
	bool in_forest = false;
	for (const pgml::ParamSpec &s : pgml::random_forest_params())
		in_forest |= s.name == "max_bin";
	EXPECT_TRUE(in_forest);
	for (double bad : {-1.0, 257.0, 2.5}) {
		pgml::Options o;
		o["max_bin"] = pgml::OptionValue::of_number(bad);
		EXPECT_THROW(pgml::parse_params(def, o), pgml::Error) << bad;
	}
	MatrixXd X;
	VectorXd yc, yr;
	data(600, 3, 20, 0, 61, X, yc, yr);
	auto fit = [&](double max_bin) {
		pgml::Options o;
		o["max_bin"] = pgml::OptionValue::of_number(max_bin);
		pgml::FitInput in;
		in.X = &X;
		in.y = &yc;
		in.task = Task::Classification;
		in.n_classes = 3;
		in.threads = 2;
		auto est = pgml::fit_decision_tree(in, pgml::parse_params(def, o));
		pgml::Writer w;
		est->write(w);
		return w.bytes();
	};
	EXPECT_EQ(fit(0), fit(256));
	try {
		fit(1);
		ADD_FAILURE() << "max_bin 1 accepted";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::InvalidParameter);
	}
}

// random_forest keeps its own outputs for the training rows (each tree's leaf of its in-bag
// rows, the out-of-bag rows' from the out-of-bag walk): exactly what predict_many gives, with
// and without bootstrap, on any thread count; not kept when they would take more than a quarter
// of the memory limit; freed by end_training.
TEST(TreeBinned, ForestFittedOutputsArePredictions)
{
	static const pgml::AlgorithmDef def{pgml::Algorithm::RandomForest, "random_forest", true, true, false, false,
	                                    pgml::random_forest_params(), pgml::fit_random_forest,
	                                    pgml::read_random_forest};
	MatrixXd X;
	VectorXd yc, yr;
	data(700, 4, 0, 0.05, 71, X, yc, yr);
	const size_t n = 700;
	for (bool classify : {true, false})
		for (bool bootstrap : {true, false})
			for (int threads : {1, 2}) {
				SCOPED_TRACE(testing::Message() << classify << bootstrap << threads);
				pgml::Options o;
				o["n_estimators"] = pgml::OptionValue::of_number(7);
				o["bootstrap"] = pgml::OptionValue::of_bool(bootstrap);
				pgml::FitInput in;
				in.X = &X;
				in.y = classify ? &yc : &yr;
				in.task = classify ? Task::Classification : Task::Regression;
				in.n_classes = classify ? 3 : 0;
				in.threads = threads;
				auto est = pgml::fit_random_forest(in, pgml::parse_params(def, o));
				const size_t K = classify ? 3 : 1;
				std::vector<double> rows(n * 4), a(n * K), b(n * K);
				for (size_t i = 0; i < n; i++)
					for (size_t j = 0; j < 4; j++)
						rows[i * 4 + j] = X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
				std::vector<int> ka(n), kb(n);
				est->predict_many(rows.data(), n, 4, K, a.data(), ka.data());
				ASSERT_TRUE(est->fitted_outputs(0, n, K, b.data(), kb.data()));
				EXPECT_EQ(a, b);
				EXPECT_EQ(ka, kb);
				est->end_training();
				EXPECT_FALSE(est->fitted_outputs(0, 1, K, b.data(), kb.data()));
				o["n_estimators"] = pgml::OptionValue::of_number(50);
				o["max_depth"] = pgml::OptionValue::of_number(2);
				in.memory_limit = 4 * (4 * n * 50) - 1; // the leaves would take more than a quarter
				auto lean = pgml::fit_random_forest(in, pgml::parse_params(def, o));
				EXPECT_FALSE(lean->fitted_outputs(0, 1, K, b.data(), kb.data()));
			}
}
