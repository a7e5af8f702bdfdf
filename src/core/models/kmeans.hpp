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

// The centres (k x p) of the best of n_init k-means++ / Lloyd runs on in.X: fit_kmeans's fit,
// which the Lloyd-step aggregate (kmeans_step.hpp) runs on a sample to start from.
Eigen::MatrixXd kmeans_fit_centres(const FitInput &in, const Params &params);

// A k-means estimator from its parts (the Lloyd-step aggregate's fit): the centres (k x p),
// the rows each centre absorbed, the rows seen, and per feature their mean and sum of
// squared deviations.
std::unique_ptr<Estimator> make_kmeans(Eigen::MatrixXd centres, Eigen::VectorXd counts, double n, Eigen::VectorXd mean,
                                       Eigen::VectorXd m2);

// Reads an estimator written by the k-means estimator's write().
std::unique_ptr<Estimator> read_kmeans(Reader &r, const EstimatorShape &shape);

} // namespace pgml
