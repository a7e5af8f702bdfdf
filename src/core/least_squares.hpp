// pg_ml core: the least-squares solve of the linear family, from its Gram (co-moment) matrix.
//
// solve_gram() solves G w = g for the minimum-norm least-squares w. G is equilibrated first
// (D^-1 G D^-1 with D = sqrt(diag G), whatever scaling the user chose), so a column's units
// never decide whether it is kept; then a symmetric eigendecomposition of the equilibrated
// matrix gives the rank, the condition number and, for a (near) rank deficiency, the
// columns that take part in it. The facts come back with the solution: the trainer stores
// them in the version's report and the glue turns them into a WARNING.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Dense>

namespace pgml {

struct GramSolution {
	Eigen::VectorXd w;      // in the units of G's columns
	int rank = 0;           // directions kept by the solve
	int columns = 0;
	// 2-norm condition number of the equilibrated design (the square root of the equilibrated
	// Gram matrix's eigenvalue ratio) without the by-design columns; infinite when rank is lost
	double condition = 1;
	std::vector<int> constant;   // columns with no variation (nothing to fit them on)
	std::vector<int> collinear;  // columns that take part in a dropped or near-dropped direction
	bool deficient = false;       // a dependence among the columns (beyond the by-design ones)
	bool ill_conditioned = false; // full rank, but fewer than about 7 digits are guaranteed
};

// Directions whose equilibrated eigenvalue is below this fraction of the largest are dropped.
constexpr double kGramRankTol = 1e-13;
// A condition number (of the design) above this leaves fewer than about 7 correct digits
// through double-precision normal equations: the fit warns.
constexpr double kIllConditioned = 1e4;
// The trainer warns when its estimate of the correct significant digits is below this.
constexpr double kWarnDigits = 7;

// floor (optional, per column): a column whose G(i, i) is at most floor(i) counts as constant
// (its variation is rounding noise, e.g. next to n * mean^2 for centered moments).
// groups: the one-hot groups whose sum is the intercept (a dependence of the encoding, not of
// the data): the last varying column of each is left out of the diagnosis (not of the solve).
GramSolution solve_gram(const Eigen::MatrixXd &G, const Eigen::VectorXd &g, const Eigen::VectorXd *floor = nullptr,
                        const std::vector<std::vector<int>> &groups = {});

// "a, b and c" from the names of columns idx; past limit names, "... and N more"
std::string column_list(const std::vector<std::string> &names, const std::vector<int> &idx, size_t limit = 8);

} // namespace pgml
