// pg_ml core: the least-squares fit of the linear family from double-double moments.
//
// The precise counterpart of the moments route's fit (trainer.cpp): the encoder-slot moments
// (precise_moments.hpp) are projected through the preprocessing's affine map (features =
// A slots + c0), scaled, and solved by solve_gram_precise, all in double-double; the
// intercept (the target's mean less w . the features' means, where the cancellation is) and
// the residual sum of squares too. Only the results are rounded to double.
#pragma once

#include <vector>

#include <Eigen/Dense>

#include "least_squares.hpp"
#include "precise_moments.hpp"

namespace pgml {

struct LeastSquaresSetup {
	Eigen::MatrixXd A;  // features x slots
	Eigen::VectorXd c0; // features
	Eigen::Index target_slot = -1;
	Eigen::VectorXd scale; // per feature: the solve is on the features divided by it
	bool intercept = true;
	Eigen::VectorXd noise_floor; // per feature, for solve_gram's constant columns
	std::vector<std::vector<int>> groups;
};

struct PreciseFit {
	GramSolution gs; // deficient: nothing below is set (the double fit stands)
	Eigen::VectorXd w;
	double b = 0;
	std::vector<DD> w_dd;
	DD b_dd;
	double sse = 0;          // the training rows' residual sum of squares
	double syy_centered = 0; // the target's sum of squared deviations
	// the features' centered co-moments (Sxx, with the target Sxy, the target's Syy) and means
	DDMatrix Sxx;
	std::vector<DD> Sxy, mx;
	DD Syy, my;
};

PreciseFit fit_least_squares_precise(const PreciseMoments &train, const LeastSquaresSetup &in);

// The residual sum of squares of y - w . (A slots + c0) - b over the rows of mo.
double residual_ss(const PreciseMoments &mo, const LeastSquaresSetup &in, const std::vector<DD> &w, DD b);

} // namespace pgml
