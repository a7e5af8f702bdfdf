// pg_ml core: coefficient statistics of the linear family, as R's summary(lm(...)) and
// summary(glm(..., family = binomial)) give them.
//
// linear_regression: from the training rows' sufficient statistics (the co-moments of the
// features and the target, through the preprocessing's affine map), so every version has
// them, an incremental one too: Cov(w) = s^2 (X'X)^-1 on centered features, s^2 = SSE / (n - rank - 1).
// Unpenalized binary logistic_regression: from the Fisher information X'WX at the solution,
// computed once over the training rows after the fit (Wald z statistics, as glm).
// The result goes into the version's report ("inference") and ml_coefficients() reads it.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Dense>

#include "common.hpp"
#include "least_squares.hpp"
#include "optimize.hpp"

namespace pgml {

struct CoefficientRow {
	std::string term; // "(Intercept)" or the feature name
	double estimate = NAN, std_error = NAN, statistic = NAN, p_value = NAN, conf_low = NAN, conf_high = NAN;
};

struct Inference {
	std::string statistic = "t"; // "t" (linear) or "z" (logistic)
	std::vector<CoefficientRow> rows;
	double n = 0;               // training rows
	int rank = 0;               // of the design, the intercept included
	double df_residual = NAN;
	// linear
	double sigma = NAN, r2 = NAN, adj_r2 = NAN, f_statistic = NAN, f_df1 = NAN, f_df2 = NAN, f_p_value = NAN;
	// logistic
	double deviance = NAN, null_deviance = NAN, df_null = NAN;
	int iterations = 0;
	bool converged = true;
	// rows whose fitted probability is numerically 0 or 1 (within 10 machine epsilons, R's glm
	// warning): more than none means (quasi-)separation, the estimates diverge and their
	// standard errors are meaningless
	long long fitted_0_or_1 = 0;
	// both
	double log_likelihood = NAN, aic = NAN, bic = NAN;
	std::vector<std::string> aliased; // features left out of a rank-deficient fit (their rows are NaN)

	std::string to_json() const;
};

// Ordinary least squares with an intercept, from n rows' centered co-moments of the features
// Sxx (p x p), of features and target Sxy, of the target Syy, the feature means mx and the
// fitted w, b. level: of the confidence intervals (0.95).
Inference linear_inference(double n, const Eigen::MatrixXd &Sxx, const Eigen::VectorXd &Sxy, double Syy,
                           const Eigen::VectorXd &mx, const Eigen::VectorXd &w, double b,
                           const std::vector<std::string> &names, double level = 0.95);

// The same from the precise pass's double-double co-moments (least_squares.hpp's DDMatrix) and
// coefficients, for an ill-conditioned fit: aliasing at the precise solve's tolerance.
Inference linear_inference_precise(double n, const DDMatrix &Sxx, const std::vector<DD> &Sxy, DD Syy,
                                   const std::vector<DD> &mx, const std::vector<DD> &w, DD b,
                                   const std::vector<std::string> &names, double level = 0.95);

// Binary logistic regression (class 1 is the event) from its n training rows X (n x p, any
// affine scaling of the features: z = (x - center) / scale), labels y (0 / 1) and the
// coefficients on the unscaled features w, b.
Inference logistic_inference(const Eigen::MatrixXd &X, const Eigen::VectorXd &center, const Eigen::VectorXd &scale,
                             const std::vector<int> &y, const Eigen::VectorXd &w, double b,
                             const std::vector<std::string> &names, double level = 0.95);

// The unpenalized binary logistic fit (maximum likelihood) by Newton's method (IRLS, as glm) on
// rows X (n x p, scaled features) with labels y (0 / 1). Returns W (p x 1) and b on X's
// scale; iterations and convergence in *inf when given. Without a finite maximum (separated
// classes) it stops after max_iter iterations, not converged.
LogisticFit fit_logistic_newton(const Eigen::MatrixXd &X, const std::vector<int> &y, int max_iter, double tol,
                                CancelCheck cancel, std::vector<IterationLog> *log);

} // namespace pgml
