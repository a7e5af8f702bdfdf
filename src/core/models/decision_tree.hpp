// pg_ml core: decision_tree, one CART tree (tree.hpp) for regression or classification.
//
// Hyperparameters (sklearn's DecisionTreeRegressor / DecisionTreeClassifier):
//   max_depth              integer >= 0, default 0 = unlimited (sklearn None)
//   min_samples_split      integer >= 2, default 2
//   min_samples_leaf       integer >= 1, default 1
//   max_features           number >= 0, default 0 = every feature; a value in (0, 1] is a
//                          fraction of the features (at least one; 1 = all, like sklearn's 1.0),
//                          a value > 1 a count (rounded down, at most p). When fewer than all
//                          features are examined, which ones is drawn per split from the seed.
//   min_impurity_decrease  number >= 0, default 0 (sklearn's definition)
//   criterion              'gini' or 'entropy', default 'gini' (classification; regression
//                          always uses squared error)
//   max_bin                integer 0 or 2 to 256, default 256: split finding on features binned
//                          once per fit (tree.hpp; the exact splits when a feature has at most
//                          max_bin distinct values); 0 = sort each node's values (exact, slower)
// Importance: each feature's total weighted impurity decrease, normalised to sum 1 ("gain",
// sklearn's feature_importances_). The training log gets one entry: the weighted impurity of the
// leaves (training MSE for regression).
#pragma once

#include <memory>
#include <vector>

#include "estimator.hpp"

namespace pgml {

std::vector<ParamSpec> decision_tree_params();
std::unique_ptr<Estimator> fit_decision_tree(const FitInput &in, const Params &params);
std::unique_ptr<Estimator> read_decision_tree(Reader &r, const EstimatorShape &shape);

} // namespace pgml
