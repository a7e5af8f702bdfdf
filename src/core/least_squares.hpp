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

#include "dd.hpp"

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
	bool precise = false;         // solved in double-double (solve_gram_precise)
	std::vector<DD> w_dd;         // precise: w as double-doubles
};

// A square matrix of double-doubles (row-major).
struct DDMatrix {
	Eigen::Index n = 0;
	std::vector<DD> v;
	DDMatrix() = default;
	explicit DDMatrix(Eigen::Index size) : n(size), v(static_cast<size_t>(size * size)) {}
	DD &operator()(Eigen::Index i, Eigen::Index j) { return v[static_cast<size_t>(i * n + j)]; }
	const DD &operator()(Eigen::Index i, Eigen::Index j) const { return v[static_cast<size_t>(i * n + j)]; }
};

// Directions whose equilibrated eigenvalue is below this fraction of the largest are dropped.
constexpr double kGramRankTol = 1e-13;
// A condition number (of the design) above this leaves fewer than about 7 correct digits
// through double-precision normal equations: the fit warns.
constexpr double kIllConditioned = 1e4;
// The trainer warns when its estimate of the correct significant digits is below this.
constexpr double kWarnDigits = 7;
// A fit from double moments estimated below this many digits (or rank-deficient) gets the
// precise pass: the rows read again into double-double moments and solved in double-double.
constexpr double kPreciseDigits = 9;
// In double-double, an equilibrated pivot below this is a dependence: the design's condition
// number would exceed 1e12, beyond what double-precision data (2^-53) can determine.
constexpr double kPreciseRankTol = 1e-24;

// The correct significant digits a least-squares solution is estimated to have: the data's
// rounding (2^-53) costs the condition number times that, the statistics' own precision
// (u_moments: 2^-53 for double, 2^-104 for double-double) the condition number squared times
// it; amp (at least 1) is how much the intercept amplifies the coefficients' error. NaN when
// the fit is rank-deficient.
double estimated_digits(const GramSolution &gs, double u_moments, double amp);

// floor (optional, per column): a column whose G(i, i) is at most floor(i) counts as constant
// (its variation is rounding noise, e.g. next to n * mean^2 for centered moments).
// groups: the one-hot groups whose sum is the intercept (a dependence of the encoding, not of
// the data): the last varying column of each is left out of the diagnosis (not of the solve).
GramSolution solve_gram(const Eigen::MatrixXd &G, const Eigen::VectorXd &g, const Eigen::VectorXd *floor = nullptr,
                        const std::vector<std::vector<int>> &groups = {});

// Cholesky factor (lower, in place) of a symmetric positive definite double-double matrix;
// false when a pivot is at most tol (a dependence at that relative size, for a unit diagonal).
bool dd_cholesky(DDMatrix &L, double tol);
// Solves L L^T x = b in place (L from dd_cholesky).
void dd_solve(const DDMatrix &L, std::vector<DD> &x);

// solve_gram in double-double on G and g given as double-doubles. When the equilibrated
// matrix (without the constant and by-design columns) is full rank by kPreciseRankTol the
// solution is exact to about its condition number squared times 2^-104, with the same
// minimum-norm convention over the by-design (one-hot group) dependence, the condition number
// from inverse iteration and the columns of the smallest direction when ill-conditioned.
// Otherwise (a dependence), the result has deficient set and no solution: the caller keeps
// the double solve's.
GramSolution solve_gram_precise(const DDMatrix &G, const std::vector<DD> &g, const Eigen::VectorXd *floor = nullptr,
                                const std::vector<std::vector<int>> &groups = {});

// "a, b and c" from the names of columns idx; past limit names, "... and N more"
std::string column_list(const std::vector<std::string> &names, const std::vector<int> &idx, size_t limit = 8);

} // namespace pgml
