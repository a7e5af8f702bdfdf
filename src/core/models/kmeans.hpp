// pg_ml core: k-means clustering, as scikit-learn's KMeans (algorithm="lloyd").
//
// Greedy k-means++ initialisation (2 + log(k) candidates per centre), Lloyd iterations until
// the labels stop changing or the squared centre shift is at most tol * (mean feature
// variance), best of n_init runs by inertia. Incremental retraining continues Lloyd iterations
// from the stored centres on the new rows, each stored centre weighing as many rows as it
// has absorbed so far (a mini-batch style warm start that does not forget the old rows).
#pragma once

#include <memory>
#include <vector>

#include "estimator.hpp"

namespace pgml {

// Hyperparameters: k, n_init, max_iter, tol.
std::vector<ParamSpec> kmeans_params();

// Fits k-means on in.X (clustering: in.y is null).
std::unique_ptr<Estimator> fit_kmeans(const FitInput &in, const Params &params);

// Reads an estimator written by the k-means estimator's write().
std::unique_ptr<Estimator> read_kmeans(Reader &r, const EstimatorShape &shape);

} // namespace pgml
