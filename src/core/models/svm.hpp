// pg_ml core: support vector machines (classification and regression).
//
// kernel 'linear' (default): LIBLINEAR's dual coordinate descent (Hsieh et al. 2008, with
// shrinking), as scikit-learn's LinearSVC / LinearSVR run it: the intercept is an extra constant
// feature of value 1 (intercept_scaling 1) and is regularised like the other weights.
//   loss 'auto' (default) picks each class's scikit-learn default: the squared hinge for
//   classification (LinearSVC), the epsilon-insensitive loss for regression (LinearSVR);
//   'hinge' is the L1 loss (hinge / epsilon-insensitive), 'squared_hinge' the L2 loss (squared
//   hinge / squared epsilon-insensitive).
//   classification: one-vs-rest for K > 2 (K weight vectors), a single problem for K == 2
//                   (class 1 positive);
//   regression:     LinearSVR (epsilon-insensitive; epsilon default 0 as LinearSVR's; the target
//                   is used as given, not rescaled, as scikit-learn does).
// max_iter is the number of epochs of coordinate descent; tol the stopping threshold on the
// projected-gradient gap (SVC) or on the summed violation relative to the first epoch's (SVR),
// exactly as LIBLINEAR.
// kernel 'rbf': exp(-gamma ||a - b||^2) with libsvm's SMO solver (second-order working set
// selection, WSS2; no shrinking) and an LRU cache of kernel rows:
//   classification: C-SVC, one-vs-one like libsvm / scikit-learn's SVC (K(K-1)/2 binary problems);
//   regression:     epsilon-SVR (note: epsilon defaults to 0 here, scikit-learn's SVR uses 0.1).
//   gamma 0 means 'scale': 1 / (p * var(X)). The solver stops when the maximal violating pair's
//   gap is below tol, or after max_iter * max(l, 100) pair updates (l = rows of the problem,
//   2n for SVR).
//   The support vectors and their dual coefficients are kept in the estimator. Training needs
//   O(n^2) kernel evaluations, so more than max_kernel_rows rows is an Error(ProgramLimit).
//
// Probabilities: an SVM has none. predict() returns a softmax of the decision values (K == 2:
// (0, f), i.e. sigmoid(f) for class 1; one-vs-rest: the K decision values; one-vs-one: votes plus
// scikit-learn's transformed confidences, as SVC.decision_function(shape 'ovr')). They sum to 1
// and their argmax is the predicted class, but they are NOT calibrated probabilities.
//
// The iteration log holds one entry per epoch of coordinate descent (linear) or per l SMO steps
// (rbf), summed over the binary problems: loss = primal objective 0.5||w||^2 + C*sum(loss_i),
// grad_norm = the solver's optimality violation (max over the problems).
#pragma once

#include <memory>
#include <vector>

#include "estimator.hpp"

namespace pgml {

std::vector<ParamSpec> svm_params();
std::unique_ptr<Estimator> fit_svm(const FitInput &in, const Params &params);
std::unique_ptr<Estimator> read_svm(Reader &r, const EstimatorShape &shape);

} // namespace pgml
