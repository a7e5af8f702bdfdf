// pg_ml core: L-BFGS for smooth convex objectives.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "common.hpp"

namespace pgml {

struct LbfgsOptions {
	int max_iter = 1000;
	double tol = 1e-6;    // stop when ||grad||_inf <= tol (fit_logistic: of the objective / (C*n)); see optimize.cpp
	int history = 10;
};

struct IterationLog {
	int iteration;
	double loss;            // training loss
	double grad_norm;       // gradient norm where the algorithm has one, else NaN
	double valid = NAN;     // validation metric (early stopping), NaN where none
};

struct LbfgsResult {
	int iterations = 0;
	bool converged = false;
	double loss = 0;
};

// f(x, grad) returns the objective at x and writes its gradient into grad.
using Objective = std::function<double(const Eigen::VectorXd &x, Eigen::VectorXd &grad)>;

// Minimises f starting from x (warm start: x is the initial point, overwritten with the result).
// Appends one IterationLog per iteration to log (if not null) and reports it to progress. Polls
// cancel every iteration.
LbfgsResult lbfgs_minimize(const Objective &f, Eigen::VectorXd &x, const LbfgsOptions &opt,
                           CancelCheck cancel, std::vector<IterationLog> *log, ProgressCallback progress = nullptr);

// Multinomial / binary logistic regression with L2 penalty, sklearn's LogisticRegression
// objective: 0.5*||W||^2 + C * sum_i loss_i (intercept not penalised).
// X: n x p (already preprocessed), y: class ids 0..K-1 (K >= 2).
// Binary (K == 2): one weight column (sigmoid, class 1 positive). K > 2: softmax, K columns.
// Returns W (p x k') and b (k'), k' = 1 if K == 2 else K. Internally minimises the objective
// divided by C*n (same minimiser), so result.loss, the log and opt.tol are on that per-row scale.
struct LogisticFit {
	Eigen::MatrixXd W;
	Eigen::VectorXd b;
	LbfgsResult result;
};
LogisticFit fit_logistic(const Eigen::MatrixXd &X, const std::vector<int> &y, int K, double C,
                         const LbfgsOptions &opt, CancelCheck cancel, std::vector<IterationLog> *log,
                         ProgressCallback progress = nullptr);

// The function fit_logistic minimises: (0.5*||W||^2 + C*sum_i loss_i) / (C*n), evaluated at the
// parameter vector w = [vec(W) (column-major p x k'), b]; writes the gradient into grad.
// Inputs are assumed already validated (fit_logistic does that). Exposed for tests.
double logistic_objective(const Eigen::MatrixXd &X, const std::vector<int> &y, int K, double C,
                          const Eigen::VectorXd &w, Eigen::VectorXd &grad);

// Class probabilities for one preprocessed row x (length p) given W, b as returned above; out has K entries.
void logistic_proba(const Eigen::MatrixXd &W, const Eigen::VectorXd &b, const double *x, int K, double *out);

} // namespace pgml
