// pg_ml core: lasso and elastic net by coordinate descent on the Gram matrix.
//
// These belong to the streaming family: they are not Estimators. The trainer reduces the
// training rows to the Gram form of the standardized problem and calls elastic_net_gram.
#pragma once

#include <cmath>
#include <vector>

#include <Eigen/Dense>

#include "estimator.hpp"

namespace pgml {

// Minimises (1/(2n)) ||y_c - Z w||^2 + alpha * (l1_ratio ||w||_1 + (1 - l1_ratio)/2 ||w||^2)
// (scikit-learn's ElasticNet objective; lasso is l1_ratio = 1) given G = Z'Z / n (p x p) and
// c = Z'y_c / n (p), by cyclic coordinate descent on the Gram matrix, from w = 0 (as
// sklearn's enet_coordinate_descent_gram, scaled by 1/n).
//
// Convergence, as sklearn: after a sweep over the coordinates that leaves every w_j at 0, stop
// (that is the minimum). Otherwise, if max_j |change of w_j| / max_j |w_j| < tol, the sweep is
// a candidate stop, and
//  - if y_sq = y_c'y_c / n is given (finite), stop only when the duality gap is below
//    tol * y_sq too (sklearn's full criterion: its gap < tol * ||y||^2, divided by n);
//  - otherwise (y_sq NaN) stop on the coordinate-change test alone (the gap needs y'y).
// Stops after max_iter sweeps in any case. Polls cancel every sweep. Appends one IterationLog
// per sweep to log (if not null): loss = the objective (without the constant y_sq / 2 when
// y_sq is not given), grad_norm = the largest component of the minimum-norm subgradient.
// Features with G_jj == 0 and no L2 part keep w_j = 0.
Eigen::VectorXd elastic_net_gram(const Eigen::MatrixXd &G, const Eigen::VectorXd &c, double alpha, double l1_ratio,
                                 int max_iter, double tol, CancelCheck cancel, std::vector<IterationLog> *log,
                                 double y_sq = NAN);

// Hyperparameters of lasso: alpha (> 0, default 1), max_iter (1 to 1e6, default 1000), tol (>= 0, default 1e-4).
std::vector<ParamSpec> lasso_params();

// Hyperparameters of elastic_net: alpha (> 0, default 1), l1_ratio (0 to 1, default 0.5),
// max_iter (1 to 1e6, default 1000), tol (>= 0, default 1e-4).
std::vector<ParamSpec> elastic_net_params();

} // namespace pgml
