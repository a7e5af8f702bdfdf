// pg_ml core: random_forest, bagged CART trees (tree.hpp) for regression or classification.
//
// Each tree is grown on a bootstrap sample (n rows drawn with replacement, kept as row
// multiplicities, like sklearn) and examines max_features random features per split. Trees are
// grown in parallel (parallel_for over in.threads); tree t draws everything from a generator
// seeded with (seed, t), so the forest does not depend on the thread count. Predictions average
// the trees' values / class probabilities (sklearn's RandomForest*.predict_proba).
//
// Hyperparameters: those of decision_tree (see decision_tree.hpp; max_features = 0 means
// sklearn's default here: floor(sqrt(p)) for classification, p for regression), plus
//   n_estimators  integer 1 to 10000, default 100
//   bootstrap     true or false, default true (false: every tree sees every row once)
// With bootstrap, the out-of-bag score (accuracy for classification, R^2 for regression, over the
// rows that were out of bag at least once) goes to the training log: one entry per tree, loss
// and grad_norm NaN, valid = the OOB score of the first t trees.
// Importance: the mean over trees of each tree's normalised impurity decrease, normalised to
// sum 1 (sklearn's feature_importances_), kind "gain".
#pragma once

#include <memory>
#include <vector>

#include "estimator.hpp"

namespace pgml {

std::vector<ParamSpec> random_forest_params();
std::unique_ptr<Estimator> fit_random_forest(const FitInput &in, const Params &params);
std::unique_ptr<Estimator> read_random_forest(Reader &r, const EstimatorShape &shape);
// How a random forest's trees predict (flat_trees.hpp): -1 walked as they are (too many
// nodes), 0 flattened and walked node by node, D > 0 as complete trees of depth D.
int random_forest_flat_layout(const Estimator &e);

} // namespace pgml
