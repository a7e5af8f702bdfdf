// Missing values in decision_tree / random_forest / gradient_boosting: each CART split learns a
// default direction for the rows whose feature is missing (NaN), hand-computed cases; NaN
// routed by it at prediction; the trainer and Model::predict hand NULL numbers to these models
// as NaN (and still impute for every other algorithm); round trips; old (imputing) encodings.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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
using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::SplitCriterion;
using pgml::Task;
using pgml::TreeFit;
using pgml::TreeOptions;
using namespace pgml_test;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Grows one tree with every feature examined (no randomness).
TreeFit grow(const MatrixXd &X, const VectorXd &y, SplitCriterion c, int K, int max_depth, int min_leaf = 1,
             const std::vector<double> *w = nullptr)
{
	TreeOptions o;
	o.criterion = c;
	o.n_outputs = c == SplitCriterion::SquaredError ? 1 : K;
	o.max_depth = max_depth;
	o.min_samples_leaf = min_leaf;
	pgml::TreeRng rng(1);
	pgml::CancelPoll cancel(nullptr);
	return pgml::grow_tree(X, y, w, o, rng, cancel);
}

MatrixXd column(std::initializer_list<double> v)
{
	MatrixXd X(static_cast<Eigen::Index>(v.size()), 1);
	Eigen::Index i = 0;
	for (double d : v)
		X(i++, 0) = d;
	return X;
}

VectorXd vec(std::initializer_list<double> v)
{
	VectorXd y(static_cast<Eigen::Index>(v.size()));
	Eigen::Index i = 0;
	for (double d : v)
		y(i++) = d;
	return y;
}

double leaf_value(const pgml::Tree &t, double z) { return t.leaf(&z)[0]; }

} // namespace

// y is 0 on x in {1, 2}, 10 on x in {3, 4} and on the missing rows: the best stump splits at
// 2.5 with the missing rows on the right (both children pure, SSE 0); any other placement
// leaves impurity behind.
TEST(TreeMissing, RegressionStumpSendsMissingRowsRight)
{
	MatrixXd X = column({1, 2, 3, 4, kNaN, kNaN});
	VectorXd y = vec({0, 0, 10, 10, 10, 10});
	TreeFit f = grow(X, y, SplitCriterion::SquaredError, 1, 1);
	ASSERT_EQ(f.tree.nodes.size(), 3u);
	const pgml::TreeNode &root = f.tree.nodes[0];
	EXPECT_EQ(root.feature, 0);
	EXPECT_DOUBLE_EQ(root.threshold, 2.5);
	EXPECT_FALSE(root.missing_left);
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, kNaN), 10);
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, 2), 0);
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, 3), 10);
	EXPECT_DOUBLE_EQ(f.leaf_impurity, 0);
	// root: mean 20/3, SSE 6 * (mean of y^2 = 400/6) - 6 mean^2 = 400 - 800/3 = 400/3; all removed
	EXPECT_NEAR(f.gain(0), 400.0 / 3, 1e-9);
}

TEST(TreeMissing, RegressionStumpSendsMissingRowsLeft)
{
	MatrixXd X = column({1, 2, 3, 4, kNaN, kNaN});
	VectorXd y = vec({0, 0, 10, 10, 0, 0});
	TreeFit f = grow(X, y, SplitCriterion::SquaredError, 1, 1);
	ASSERT_EQ(f.tree.nodes.size(), 3u);
	EXPECT_DOUBLE_EQ(f.tree.nodes[0].threshold, 2.5);
	EXPECT_TRUE(f.tree.nodes[0].missing_left);
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, kNaN), 0);
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, 1), 0);
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, 4), 10);
	EXPECT_DOUBLE_EQ(f.leaf_impurity, 0);
}

// Gini: classes 0 0 1 1 on x = 1..4 and class 0 on three missing rows. Missing left at 2.5 gives
// two pure children; missing right at 2.5 leaves {1, 1, 0, 0, 0} impure (gini 0.48).
TEST(TreeMissing, GiniLearnsTheDirection)
{
	MatrixXd X = column({1, 2, 3, 4, kNaN, kNaN, kNaN});
	VectorXd y = vec({0, 0, 1, 1, 0, 0, 0});
	for (SplitCriterion c : {SplitCriterion::Gini, SplitCriterion::Entropy}) {
		TreeFit f = grow(X, y, c, 2, 1);
		ASSERT_EQ(f.tree.nodes.size(), 3u);
		EXPECT_DOUBLE_EQ(f.tree.nodes[0].threshold, 2.5);
		EXPECT_TRUE(f.tree.nodes[0].missing_left);
		const double nan = kNaN;
		EXPECT_DOUBLE_EQ(f.tree.leaf(&nan)[0], 1.0); // P(class 0)
		double four = 4;
		EXPECT_DOUBLE_EQ(f.tree.leaf(&four)[1], 1.0);
		EXPECT_DOUBLE_EQ(f.leaf_impurity, 0);
	}
}

// Without missing values at training, a NaN follows the child with the larger training weight.
TEST(TreeMissing, UnseenMissingFollowsTheLargerChild)
{
	MatrixXd X = column({1, 2, 3, 4, 5});
	TreeFit right = grow(X, vec({0, 0, 10, 10, 10}), SplitCriterion::SquaredError, 1, 1);
	EXPECT_DOUBLE_EQ(right.tree.nodes[0].threshold, 2.5);
	EXPECT_FALSE(right.tree.nodes[0].missing_left);
	EXPECT_DOUBLE_EQ(leaf_value(right.tree, kNaN), 10);
	TreeFit left = grow(X, vec({0, 0, 0, 10, 10}), SplitCriterion::SquaredError, 1, 1);
	EXPECT_DOUBLE_EQ(left.tree.nodes[0].threshold, 3.5);
	EXPECT_TRUE(left.tree.nodes[0].missing_left);
	EXPECT_DOUBLE_EQ(leaf_value(left.tree, kNaN), 0);
	// by weight, not by row count: row x = 1 counted five times makes the left child heavier
	std::vector<double> w = {5, 1, 1, 1, 1};
	TreeFit weighted = grow(X, vec({0, 0, 10, 10, 10}), SplitCriterion::SquaredError, 1, 1, 1, &w);
	EXPECT_DOUBLE_EQ(weighted.tree.nodes[0].threshold, 2.5);
	EXPECT_TRUE(weighted.tree.nodes[0].missing_left);
}

// "Present or missing" is a split of its own: here the present values all share one outcome
// and the missing rows another, so no threshold between present values separates them.
TEST(TreeMissing, MissingAgainstPresentSplit)
{
	TreeFit f = grow(column({kNaN, kNaN, kNaN, 1, 2, 3}), vec({5, 5, 5, 0, 0, 0}), SplitCriterion::SquaredError, 1, 1);
	ASSERT_EQ(f.tree.nodes.size(), 3u);
	EXPECT_FALSE(f.tree.nodes[0].missing_left);
	EXPECT_EQ(f.tree.nodes[0].threshold, std::numeric_limits<double>::max());
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, kNaN), 5);
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, 1e300), 0); // every present value goes left
	EXPECT_DOUBLE_EQ(leaf_value(f.tree, -1e300), 0);
	// a feature constant where present still splits present / missing
	TreeFit c = grow(column({kNaN, kNaN, 7, 7}), vec({1, 1, 0, 0}), SplitCriterion::Gini, 2, 0);
	ASSERT_EQ(c.tree.nodes.size(), 3u);
	const double nan = kNaN, seven = 7;
	EXPECT_DOUBLE_EQ(c.tree.leaf(&nan)[1], 1.0);
	EXPECT_DOUBLE_EQ(c.tree.leaf(&seven)[0], 1.0);
	// all missing: nothing to split on
	TreeFit none = grow(column({kNaN, kNaN, kNaN}), vec({1, 2, 3}), SplitCriterion::SquaredError, 1, 0);
	EXPECT_EQ(none.tree.nodes.size(), 1u);
	EXPECT_DOUBLE_EQ(leaf_value(none.tree, 1), 2);
}

// min_samples_leaf counts the missing rows with the side they go to.
TEST(TreeMissing, MinSamplesLeafCountsMissingRows)
{
	// the pure split "x <= 1.5, missing left" has 1 + 2 rows on the left and 3 on the right; with
	// min_samples_leaf 3 it is allowed, "missing right" (1 left) would not be
	MatrixXd X = column({1, 2, 3, 4, kNaN, kNaN});
	VectorXd y = vec({0, 10, 10, 10, 0, 0});
	TreeFit f = grow(X, y, SplitCriterion::SquaredError, 1, 1, 3);
	ASSERT_EQ(f.tree.nodes.size(), 3u);
	EXPECT_DOUBLE_EQ(f.tree.nodes[0].threshold, 1.5);
	EXPECT_TRUE(f.tree.nodes[0].missing_left);
	EXPECT_DOUBLE_EQ(f.leaf_impurity, 0);
}

// Without missing values the sweep is the one it always was (exact agreement with the old
// results is also checked by DecisionTree.MatchesScikitLearn and the golden blobs).
TEST(TreeMissing, TwoFeaturesPickTheBetterOne)
{
	// feature 0 is missing where y is high; feature 1 separates the present rows only partly
	MatrixXd X(8, 2);
	X << 1, 1, 2, 2, 3, 1, 4, 2, kNaN, 1, kNaN, 2, kNaN, 1, 5, 2;
	VectorXd y = vec({0, 0, 0, 0, 9, 9, 9, 0});
	TreeFit f = grow(X, y, SplitCriterion::SquaredError, 1, 1);
	EXPECT_EQ(f.tree.nodes[0].feature, 0);
	EXPECT_FALSE(f.tree.nodes[0].missing_left);
	double z[2] = {kNaN, 1};
	EXPECT_DOUBLE_EQ(f.tree.leaf(z)[0], 9);
	z[0] = 4.5;
	EXPECT_DOUBLE_EQ(f.tree.leaf(z)[0], 0);
}

namespace {

// A table where x is NULL exactly when the class is "hi" (and z is noise): an imputing model
// cannot tell NULL from the mean, a NULL-aware tree can.
Table null_means_hi(int n)
{
	Table t;
	t.features = {numeric_col("x"), numeric_col("z"), text_col("c")};
	t.target = text_col("label");
	for (int i = 0; i < n; i++) {
		bool hi = i % 3 == 0;
		double x = (i * 7) % 11; // present values spread on both sides of the mean
		double z = (i * 5) % 13;
		t.add({hi ? null() : num(x), num(z), i % 4 == 0 ? null() : str(i % 2 ? "a" : "b")}, str(hi ? "hi" : "lo"));
	}
	return t;
}

} // namespace

TEST(TreeMissing, TrainerKeepsNullAsMissingForTrees)
{
	Table t = null_means_hi(60);
	for (Algorithm a : {Algorithm::DecisionTree, Algorithm::RandomForest, Algorithm::GradientBoosting}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		pgml::TrainSpec spec = make_spec(t, a, 0.0);
		if (a == Algorithm::RandomForest) { // every feature per split: each tree's root is the x split
			spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(10);
			spec.hyperparams["max_features"] = pgml::OptionValue::of_number(1);
		}
		if (a == Algorithm::GradientBoosting)
			spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(10);
		Trained r = train(spec, t);
		EXPECT_TRUE(r.model->prep.native_missing);
		EXPECT_TRUE(r.model->estimator->native_missing());
		EXPECT_DOUBLE_EQ(json_number(r.result.metrics_json, {"train", "accuracy"}), 1.0);
		EXPECT_DOUBLE_EQ(json_number(r.result.report_json, {"missing_native", "x"}), 20);
		EXPECT_EQ(r.result.report_json.find("\"imputed\":{\"x\""), std::string::npos) << r.result.report_json;
		EXPECT_NE(r.model->prep.to_json().find("\"missing\":\"native\""), std::string::npos);
		// a NULL x is "hi" whatever z is; the mean of x (about 5) is "lo"
		for (double z : {0.0, 6.0, 12.0}) {
			int cls = -1;
			predict(*r.model, {null(), num(z), str("a")}, &cls);
			EXPECT_EQ(r.model->classes[static_cast<size_t>(cls)], "hi");
			predict(*r.model, {num(5), num(z), str("a")}, &cls);
			EXPECT_EQ(r.model->classes[static_cast<size_t>(cls)], "lo");
		}
		// round trip: same bytes, same flag, same predictions (NULL included)
		std::vector<uint8_t> blob = r.model->serialize();
		auto back = pgml::Model::deserialize(blob.data(), blob.size());
		EXPECT_TRUE(back->prep.native_missing);
		EXPECT_EQ(back->serialize(), blob);
		for (const auto &row : t.rows)
			EXPECT_EQ(predict(*back, row), predict(*r.model, row));
	}
	// every other in-memory algorithm still imputes: a NULL x is the mean
	Trained nb = train(make_spec(t, Algorithm::NaiveBayes, 0.0), t);
	EXPECT_FALSE(nb.model->prep.native_missing);
	EXPECT_DOUBLE_EQ(json_number(nb.result.report_json, {"imputed", "x"}), 20);
	EXPECT_EQ(nb.result.report_json.find("missing_native"), std::string::npos);
	EXPECT_EQ(predict(*nb.model, {null(), num(1), str("a")}),
	          predict(*nb.model, {num(nb.model->prep.columns[0].impute_value), num(1), str("a")}));
}

TEST(TreeMissing, TrainerTestMetricsRouteNullsToo)
{
	// the held-out rows are predicted the same way as Model::predict does
	Table t = null_means_hi(90);
	Trained r = train(make_spec(t, Algorithm::DecisionTree, 0.3), t);
	EXPECT_DOUBLE_EQ(json_number(r.result.metrics_json, {"test", "accuracy"}), 1.0);
}

TEST(TreeMissing, IncrementalBoostingKeepsTheBaseWay)
{
	Table t = null_means_hi(60);
	pgml::TrainSpec spec = make_spec(t, Algorithm::GradientBoosting, 0.0);
	spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(5);
	Trained base = train(spec, t);
	ASSERT_TRUE(base.model->prep.native_missing);
	Trained more = retrain(spec, *base.model, true, t);
	EXPECT_TRUE(more.model->prep.native_missing);
	EXPECT_TRUE(more.model->estimator->native_missing());
	int cls = -1;
	predict(*more.model, {null(), num(3), str("b")}, &cls);
	EXPECT_EQ(more.model->classes[static_cast<size_t>(cls)], "hi");
}

// Randomised fits with NaN everywhere never fail and predict finite values, whatever NaN they meet.
TEST(TreeMissing, RandomDataWithMissingValues)
{
	Rng rng(77);
	for (int rep = 0; rep < 30; rep++) {
		const int n = 5 + static_cast<int>(rng.below(60)), p = 1 + static_cast<int>(rng.below(4));
		MatrixXd X(n, p);
		VectorXd yr(n), yc(n);
		const double miss = rng.uniform();
		for (int i = 0; i < n; i++) {
			for (int j = 0; j < p; j++)
				X(i, j) = rng.uniform() < miss ? kNaN : std::round(rng.normal() * 3);
			yr(i) = rng.normal();
			yc(i) = static_cast<double>(rng.below(3));
		}
		std::vector<double> w(static_cast<size_t>(n));
		for (double &v : w)
			v = static_cast<double>(rng.below(3));
		w[0] = 1;
		const int min_leaf = 1 + static_cast<int>(rng.below(3));
		for (SplitCriterion c : {SplitCriterion::SquaredError, SplitCriterion::Gini, SplitCriterion::Entropy}) {
			TreeFit f = grow(X, c == SplitCriterion::SquaredError ? yr : yc, c, 3, 0, min_leaf,
			                 rep % 2 ? &w : nullptr);
			EXPECT_TRUE(f.gain.allFinite());
			EXPECT_GE(f.leaf_impurity, -1e-12);
			for (int i = 0; i < n; i++) {
				std::vector<double> z(static_cast<size_t>(p));
				for (int j = 0; j < p; j++)
					z[static_cast<size_t>(j)] = rng.uniform() < 0.5 ? kNaN : X(i, j);
				const double *v = f.tree.leaf(z.data());
				for (int k = 0; k < (c == SplitCriterion::SquaredError ? 1 : 3); k++)
					EXPECT_TRUE(std::isfinite(v[k]));
			}
			// a tree grown on the training rows with weight >= 1 puts each of them in a leaf whose
			// value it contributed to: every row's own leaf has it (classification: its class > 0)
			if (c != SplitCriterion::SquaredError && rep % 2 == 0 && min_leaf == 1) {
				for (int i = 0; i < n; i++) {
					std::vector<double> z(static_cast<size_t>(p));
					for (int j = 0; j < p; j++)
						z[static_cast<size_t>(j)] = X(i, j);
					EXPECT_GT(f.tree.leaf(z.data())[static_cast<size_t>(yc(i))], 0) << "rep " << rep << " row " << i;
				}
			}
			// the encoding round-trips the directions
			pgml::Writer wr;
			f.tree.write(wr, pgml::kTreeEncodingNativeMissing);
			pgml::Reader rd(wr.bytes().data(), wr.bytes().size());
			pgml::Tree back = pgml::Tree::read(rd, p, c == SplitCriterion::SquaredError ? 1 : 3,
			                                   c != SplitCriterion::SquaredError, pgml::kTreeEncodingNativeMissing);
			EXPECT_TRUE(rd.at_end());
			ASSERT_EQ(back.nodes.size(), f.tree.nodes.size());
			for (size_t k = 0; k < back.nodes.size(); k++)
				EXPECT_EQ(back.nodes[k].missing_left, f.tree.nodes[k].missing_left);
		}
	}
}

TEST(TreeMissing, DirectionByteIsValidated)
{
	TreeFit f = grow(column({1, 2, 3, 4, kNaN, kNaN}), vec({0, 0, 10, 10, 0, 0}), SplitCriterion::SquaredError, 1, 1);
	pgml::Writer w;
	f.tree.write(w, pgml::kTreeEncodingNativeMissing);
	std::vector<uint8_t> b = w.bytes();
	// u64 count, root: u32 feature, f64 threshold, u32 left, u32 right, u8 direction
	const size_t dir = 8 + 4 + 8 + 4 + 4;
	ASSERT_EQ(b[dir], 1);
	for (uint8_t v : {2, 0x80, 0xFF}) {
		std::vector<uint8_t> t = b;
		t[dir] = v;
		pgml::Reader r(t.data(), t.size());
		expect_error([&] { pgml::Tree::read(r, 1, 1, false, pgml::kTreeEncodingNativeMissing); },
		             ErrorCode::DataCorrupted);
	}
	// the old encoding has no direction byte: the same tree is one byte per split shorter
	pgml::Writer old;
	f.tree.write(old, pgml::kTreeEncodingImputed);
	EXPECT_EQ(old.bytes().size() + 1, b.size());
	pgml::Reader r(old.bytes().data(), old.bytes().size());
	pgml::Tree t = pgml::Tree::read(r, 1, 1, false, pgml::kTreeEncodingImputed);
	EXPECT_FALSE(t.nodes[0].missing_left);
	EXPECT_DOUBLE_EQ(leaf_value(t, kNaN), 10); // NaN goes right, as before
}

// Asking for median or constant imputation keeps imputing, for the trees too (the estimator then
// writes the old, imputing sub-format); "mean" is the default and means native for them.
TEST(TreeMissing, ExplicitImputationIsHonoured)
{
	Table t = null_means_hi(60);
	for (Algorithm a : {Algorithm::DecisionTree, Algorithm::RandomForest, Algorithm::GradientBoosting}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		pgml::TrainSpec spec = make_spec(t, a, 0.0);
		spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(3);
		if (a == Algorithm::DecisionTree)
			spec.hyperparams.clear();
		spec.preprocess["columns.x.impute"] = pgml::OptionValue::of_string("constant");
		spec.preprocess["columns.x.impute_value"] = pgml::OptionValue::of_number(-100);
		Trained r = train(spec, t);
		EXPECT_FALSE(r.model->prep.native_missing);
		EXPECT_FALSE(r.model->estimator->native_missing());
		EXPECT_DOUBLE_EQ(json_number(r.result.report_json, {"imputed", "x"}), 20);
		EXPECT_EQ(r.result.report_json.find("missing_native"), std::string::npos);
		// NULL is -100, a value no other row has: still separable, and the same as passing -100
		EXPECT_DOUBLE_EQ(json_number(r.result.metrics_json, {"train", "accuracy"}), 1.0);
		EXPECT_EQ(predict(*r.model, {null(), num(4), str("a")}), predict(*r.model, {num(-100), num(4), str("a")}));
		std::vector<uint8_t> blob = r.model->serialize();
		auto back = pgml::Model::deserialize(blob.data(), blob.size());
		EXPECT_FALSE(back->prep.native_missing);
		EXPECT_EQ(back->serialize(), blob);
	}
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.0);
	spec.preprocess["impute"] = pgml::OptionValue::of_string("median");
	EXPECT_FALSE(train(spec, t).model->prep.native_missing);
	spec.preprocess["impute"] = pgml::OptionValue::of_string("mean");
	EXPECT_TRUE(train(spec, t).model->prep.native_missing);
}
