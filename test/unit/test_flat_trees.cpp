// Gradient boosting and random forests predict through their trees flattened at load
// (flat_trees.hpp), not through libxgboost or the trees' own nodes: on trained models
// (regression, two and three classes; shallow trees in the complete layout and deep ones walked
// node by node; NULL numbers, NULL and unseen categories one-hot encoded; read back from a blob)
// gradient boosting's predictions equal libxgboost's to 1e-6, the forests' the trees' own exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/flat_trees.hpp"
#include "models/gradient_boosting.hpp"
#include "models/random_forest.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::Task;
using namespace pgml_test;

namespace {

// Three numeric features (some NULL) and a categorical one (some NULL); the target depends on
// all of them: a number, or one of `classes` classes.
Table mixed_rows(int n, int classes, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("a"), numeric_col("b"), numeric_col("c"), text_col("k")};
	t.target = classes == 0 ? numeric_col("y") : text_col("y");
	const char *levels[] = {"red", "green", "blue", "grey"};
	for (int i = 0; i < n; i++) {
		double a = rng.normal() * 3, b = rng.uniform() * 10, c = std::round(rng.normal() * 2);
		size_t k = rng.below(4);
		double y = a * a / 3 - b + (k == 1 ? 4 : k == 2 ? -3 : 0) + (c > 0 ? 2 : 0) + rng.normal() * 0.3;
		Cell ca = rng.uniform() < 0.1 ? null() : num(a);
		Cell cb = rng.uniform() < 0.05 ? null() : num(b);
		Cell ck = rng.uniform() < 0.1 ? null() : str(levels[k]);
		Cell cy = classes == 0 ? num(y)
		          : classes == 2 ? str(y > 0 ? "pos" : "neg")
		                         : str(y > 2 ? "high" : y > -3 ? "mid" : "low");
		t.add({ca, cb, num(c), ck}, cy);
	}
	return t;
}

// The outputs of every row (plus rows of NULLs and an unseen category) with the flattened trees
// and without them agree (to tol, relative) and so does the predicted class; the model's trees
// are in the complete layout (complete), else walked (gradient boosting; a forest of deep trees
// may have none deeper than 10).
void expect_flat_equals_own(const pgml::Model &m, const Table &t, bool complete, double tol)
{
	const bool gb = m.algorithm == Algorithm::GradientBoosting;
	const int layout = gb ? pgml::gradient_boosting_flat_layout(*m.estimator)
	                      : pgml::random_forest_flat_layout(*m.estimator);
	if (complete)
		EXPECT_GT(layout, 0);
	else if (gb)
		EXPECT_EQ(layout, 0);
	else
		EXPECT_GE(layout, 0);
	std::vector<std::vector<Cell>> rows = t.rows;
	rows.push_back({null(), null(), null(), null()});
	rows.push_back({num(1e30), num(-1e30), num(0), str("never seen")});
	rows.push_back({num(0), null(), num(-1), str("red")});
	size_t compared = 0;
	for (const auto &row : rows) {
		int k_flat = -1, k_own = -1;
		pgml::set_flat_trees(true);
		std::vector<double> flat = predict(m, row, &k_flat);
		pgml::set_flat_trees(false);
		std::vector<double> own = predict(m, row, &k_own);
		pgml::set_flat_trees(true);
		ASSERT_EQ(flat.size(), own.size());
		for (size_t j = 0; j < flat.size(); j++)
			EXPECT_NEAR(flat[j], own[j], tol * std::max(1.0, std::fabs(own[j])));
		EXPECT_EQ(k_flat, k_own);
		compared++;
	}
	EXPECT_EQ(compared, t.size() + 3);
}

} // namespace

TEST(FlatTrees, FlattenedTreesPredictAsTheModelsOwn)
{
	for (Algorithm a : {Algorithm::GradientBoosting, Algorithm::RandomForest}) {
		for (int classes : {0, 2, 3}) {
			for (int depth : {2, 6, 14}) {
				SCOPED_TRACE(std::string(pgml::algorithm_name(a)) + ", classes " + std::to_string(classes) +
				             ", max_depth " + std::to_string(depth));
				Table t = mixed_rows(600, classes, 11 + static_cast<uint64_t>(classes * 31 + depth));
				pgml::TrainSpec spec = make_spec(t, a, 0.2);
				spec.hyperparams["n_estimators"] = pgml::OptionValue::of_number(a == Algorithm::RandomForest ? 30 : 40);
				spec.hyperparams["max_depth"] = pgml::OptionValue::of_number(depth);
				Trained r = train(spec, t);
				const double tol = a == Algorithm::GradientBoosting ? 1e-6 : 0;
				expect_flat_equals_own(*r.model, t, depth <= 10, tol);
				// read back from its blob, as a backend loads it
				std::vector<uint8_t> blob = r.model->serialize();
				auto back = pgml::Model::deserialize(blob.data(), blob.size());
				expect_flat_equals_own(*back, t, depth <= 10, tol);
			}
		}
	}
}

TEST(FlatTrees, CompleteLayoutEqualsTheWalk)
{
	// a lopsided tree (depth 3 on one side, a leaf on the other) and a single leaf, two groups
	auto build = [](bool complete) {
		pgml::FlatForest f(1);
		f.begin_tree(0);
		f.add_split(0, 1.5f, true, 1, 2);
		f.add_leaf(10.0f);
		f.add_split(1, -2.0f, false, 3, 4);
		f.add_leaf(20.0f);
		f.add_split(0, 7.0f, true, 5, 6);
		f.add_leaf(30.0f);
		f.add_leaf(40.0f);
		f.begin_tree(1);
		f.add_leaf(0.25f);
		if (complete)
			f.finish();
		return f;
	};
	pgml::FlatForest walk = build(false), complete = build(true);
	const float nan = std::nanf("");
	const std::vector<std::vector<float>> rows = {{0, 0},     {1.5f, -3}, {2, -2},    {8, 5},
	                                              {nan, nan}, {nan, 0},   {3, nan},   {7, 0}};
	const float want[] = {10, 20, 30, 40, 10, 10, 30, 40};
	for (size_t r = 0; r < rows.size(); r++) {
		float a[2] = {0, 0}, b[2] = {0, 0};
		walk.accumulate(rows[r].data(), a);
		complete.accumulate(rows[r].data(), b);
		EXPECT_EQ(a[0], want[r]) << r;
		EXPECT_EQ(b[0], want[r]) << r;
		EXPECT_EQ(a[1], 0.25f);
		EXPECT_EQ(b[1], 0.25f);
	}
}
