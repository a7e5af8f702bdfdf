// pg_ml core: multi-layer perceptron (fully connected network), as scikit-learn's MLPClassifier /
// MLPRegressor with solver 'adam'.
//
// hidden_layers layers of hidden_units units each (relu or tanh), then the output layer:
//   classification K > 2: softmax + cross-entropy; K == 2: one logistic unit + binary
//   cross-entropy (out[] still gets both probabilities); regression: identity + squared error / 2
//   on the standardized target (y - mean) / sd (mean and sd of the first fit's training rows,
//   stored with the model; predictions are unscaled). scikit-learn's MLPRegressor does not scale
//   the target: its counterpart is TransformedTargetRegressor(MLPRegressor, StandardScaler).
// Loss per minibatch: mean loss + 0.5 * alpha * sum ||W||^2 / batch rows (biases not penalised).
// Weights start Glorot-uniform (U(-b, b), b = sqrt(6 / (fan_in + fan_out)), biases too) from the
// seed; each epoch shuffles the rows (from the seed) into minibatches of min(batch_size, n) and
// takes one Adam step per minibatch. Stops after max_iter epochs, or when the training loss
// (early_stopping: the validation score, accuracy or R^2, on validation_fraction of the rows held
// out stratified, or on in.X_valid) has not improved by tol for more than n_iter_no_change epochs;
// early stopping keeps the best-scoring weights. One IterationLog per epoch (loss = mean training
// loss with the penalty, valid = validation score or NaN).
//
// Incremental: continue_fit trains max_iter more epochs on the given rows from the current
// weights (scikit-learn's warm_start: the Adam moments start again from zero); the architecture
// hyperparameters must be unchanged.
#pragma once

#include <memory>
#include <vector>

#include "estimator.hpp"

namespace pgml {

std::vector<ParamSpec> mlp_params();
std::unique_ptr<Estimator> fit_mlp(const FitInput &in, const Params &params);
std::unique_ptr<Estimator> read_mlp(Reader &r, const EstimatorShape &shape);

// Internal, exposed for tests: a network's layers, W[l] fan_in x fan_out and b[l] fan_out.
struct MlpWeights {
	std::vector<Eigen::MatrixXd> W;
	std::vector<Eigen::VectorXd> b;
};

// Internal, exposed for tests: the loss of net on all rows of X (one minibatch, penalty included)
// and, if grad is not null, its gradient (same shapes as net).
double mlp_loss_grad(const MlpWeights &net, bool tanh_activation, Task task, int n_classes, double alpha,
                     const Eigen::MatrixXd &X, const Eigen::VectorXd &y, MlpWeights *grad);

} // namespace pgml
