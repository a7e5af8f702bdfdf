// pg_ml core: naive Bayes classification.
//
// Numeric features (feature_group -1) are Gaussian, as scikit-learn's GaussianNB (per class
// mean and variance, plus var_smoothing times the largest feature variance). Each one-hot
// group (features sharing a feature_group value) is one categorical variable, as
// scikit-learn's CategoricalNB (Laplace smoothing alpha); its level in a row is the group's
// feature with the largest value, and a row with no positive value in the group (an unseen
// level) leaves that variable out. Class priors are the class frequencies.
//
// The model keeps sufficient statistics (per class: row count, per numeric feature mean and
// sum of squared deviations, per level feature row count), so incremental retraining adds
// new rows exactly: fit(A) then continue_fit(B) equals fit(A and B) up to rounding.
#pragma once

#include <memory>
#include <vector>

#include "estimator.hpp"

namespace pgml {

// Hyperparameters: var_smoothing, alpha.
std::vector<ParamSpec> naive_bayes_params();

// Fits naive Bayes on in.X, in.y (classification).
std::unique_ptr<Estimator> fit_naive_bayes(const FitInput &in, const Params &params);

// Naive Bayes from its sufficient statistics (per class: row count, per numeric feature mean
// and sum of squared deviations, per one-hot feature the rows whose active level it is; K x p
// tables), as fit_naive_bayes would compute them from the rows (the aggregate path of ml_train).
std::unique_ptr<Estimator> naive_bayes_from_stats(int p, int n_classes, const std::vector<int> &feature_group,
                                                  const Params &params, const Eigen::VectorXd &count,
                                                  const Eigen::MatrixXd &mean, const Eigen::MatrixXd &m2,
                                                  const Eigen::MatrixXd &level);
// Adds such statistics to a naive Bayes estimator (incremental retraining from an aggregate).
void naive_bayes_add_stats(Estimator &est, const Eigen::VectorXd &count, const Eigen::MatrixXd &mean,
                           const Eigen::MatrixXd &m2, const Eigen::MatrixXd &level);
// The active level of a one-hot group (feature indices feats) in feature vector z, or -1.
int naive_bayes_active_level(const std::vector<int> &feats, const double *z);

// Reads an estimator written by the naive Bayes estimator's write().
std::unique_ptr<Estimator> read_naive_bayes(Reader &r, const EstimatorShape &shape);

} // namespace pgml
