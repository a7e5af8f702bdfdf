// pg_ml core: the linear family's fits. linear_regression, ridge, lasso and elastic_net are fitted
// from the moments of the encoded rows (exact, mergeable, incremental: the trainer's moments
// route); logistic_regression from the scaled rows in memory (the rows route).
//
// These are not Estimators: a linear model is the Model's W and b (model.hpp).
#pragma once

#include <string>
#include <vector>

#include <Eigen/Dense>

#include "estimator.hpp"
#include "least_squares.hpp"
#include "linear_precise.hpp"
#include "moments.hpp"
#include "optimize.hpp"
#include "preprocess.hpp"

namespace pgml {

// The joint second moments of the features x (the preprocessing's affine map x = A e + c0 of
// the encoder's slots e) and the target (slot target_slot of e): co-moments about the means
// mx, my (Sxx, Sxy, Syy), as project_moments gives them.
struct LinearMoments {
	Eigen::MatrixXd Sxx;
	Eigen::VectorXd Sxy, mx;
	double Syy = 0, my = 0;
};

LinearMoments project_moments(const Moments &mo, const Eigen::MatrixXd &A, const Eigen::VectorXd &c0, int target_slot);

// Whether the model has an intercept (linear_regression's fit_intercept; the others always).
bool linear_fits_intercept(Algorithm a, const Params &hp);

// A least-squares solve's facts for the version's report, and the WARNINGs they raise.
struct LinearSolveReport {
	int rank = -1, columns = 0; // rank -1: no least-squares solve (lasso, elastic_net, ridge with alpha > 0)
	double condition = 0;
	double digits = 0; // estimated correct significant digits (NaN: rank-deficient)
	bool precise = false; // solved from double-double statistics (the precise pass)
	std::vector<std::string> collinear, constant;
	struct Warning {
		std::string message, detail, hint;
	};
	std::vector<Warning> warnings;
};

struct LinearFit {
	Eigen::VectorXd w;             // coefficients of the (unscaled) features
	double b = 0;                  // intercept (0 without one)
	double sse = 0;                // training sum of squared errors, from the moments
	double sst = 0;                // the training target's sum of squares about its mean (r2's denominator)
	std::vector<IterationLog> log; // coordinate descent's sweeps, or one entry: the training MSE
	LinearSolveReport solve;
	std::string inference_json; // linear_regression with an intercept: coefficient statistics
	// solved from the precise pass's statistics: the solution in double-double and the setup,
	// for the held-out rows' residuals (residual_ss)
	bool precise = false;
	std::vector<DD> w_dd;
	DD b_dd;
	LeastSquaresSetup setup;
};

// The precise pass's statistics of the training rows, on the encoder's slots e (x = A e + c0).
struct PreciseInput {
	const PreciseMoments *train = nullptr;
	Eigen::MatrixXd A;
	Eigen::VectorXd c0;
	int target_slot = -1;
};

// Fits linear_regression, ridge, lasso or elastic_net from the training rows' projected moments
// (n rows): coordinate descent on the standardized Gram form (lasso, elastic_net), ridge's
// closed form, or the minimum-norm least squares of solve_linear_least_squares (with precise:
// from the double-double statistics, linear_precise.hpp, unless they show a dependence). Throws
// when the coefficients are not finite.
LinearFit fit_linear_from_moments(Algorithm algorithm, const Params &hp, const Preprocessor &prep,
                                  const std::vector<ColumnInfo> &features, LinearMoments train, int64_t n,
                                  CancelCheck cancel, const PreciseInput *precise = nullptr);

// The least-squares solve of linear_regression (and ridge with alpha 0): G = Z'Z, g = Z'y of
// the scaled features (n rows, means mx). Minimum-norm, on the equilibrated Gram matrix
// (solve_gram); a column is constant when its spread is rounding noise next to its mean, and a
// full one-hot group's dependence on the intercept is the encoding's, not a warning.
GramSolution solve_linear_least_squares(const Eigen::MatrixXd &G, const Eigen::VectorXd &g, double n,
                                        const Eigen::VectorXd &mx, const Preprocessor &prep,
                                        const std::vector<ColumnInfo> &features, bool intercept);

// The sum of squared errors of x -> w . x + b on rows of moments t (n rows).
double linear_sse(const LinearMoments &t, int64_t n, const Eigen::VectorXd &w, double b);

// logistic_regression on the scaled features X (labels y in [0, K)): L-BFGS, or Newton's
// method for an unpenalized binary fit (as R's glm), whose coefficient statistics come with it.
struct LogisticModelFit {
	Eigen::MatrixXd W; // in the unscaled features' units
	Eigen::VectorXd b;
	std::string inference_json;
};
LogisticModelFit fit_logistic_regression(const Eigen::MatrixXd &X, const std::vector<int> &y, int K, const Params &hp,
                                         const Preprocessor &prep, size_t memory_limit, CancelCheck cancel,
                                         std::vector<IterationLog> *log, ProgressCallback progress);

} // namespace pgml
