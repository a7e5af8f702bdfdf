// pg_ml core: first and second moments in double-double precision, for the precise pass.
//
// Moments (moments.hpp) accumulate in double: the co-moment matrix then carries a relative
// error of about 2^-53, which least squares through the normal equations multiplies by the
// square of the design's condition number. For a well-conditioned fit that is far below 7
// significant digits; for NIST's hardest sets (Filip, condition 4e9; Wampler, whose intercept
// sits 1e6 below the features' contribution) it is not. When the double fit says so, the
// trainer reads the rows again into PreciseMoments: n, the mean and the co-moment matrix as
// double-doubles (dd.hpp), accumulated exactly up to about 2^-104.
//
// A block of rows is taken about a shift c (the current mean, or the block's first row):
// each row's x - c is exact as a double-double, the products of its parts are summed with
// error-free transformations, and the block's moments are merged with Chan et al.'s pairwise
// update, in double-double. merge() is that update too, so the statistics stay mergeable and
// exactly incremental; memory is O(q^2).
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Dense>

#include "dd.hpp"
#include "moments.hpp"

namespace pgml {

class PreciseMoments {
  public:
	PreciseMoments() = default;
	explicit PreciseMoments(Eigen::Index q);
	// From double moments and, if given (a version trained with a precise pass), their low
	// parts. Without them the moments are only as precise as double (precise() is false).
	static PreciseMoments from(const Moments &hi, const Eigen::VectorXd *mean_lo = nullptr,
	                           const Eigen::MatrixXd *comoment_lo = nullptr);

	// Widens to q dimensions; earlier rows count as 0 in the new ones.
	void grow(Eigen::Index q);
	// Adds each row of block (rows x dim()).
	void add_block(const Eigen::MatrixXd &block);
	void merge(const PreciseMoments &other);

	int64_t n() const { return n_; }
	Eigen::Index dim() const { return mean_hi_.size(); }
	DD mean(Eigen::Index i) const { return {mean_hi_(i), mean_lo_(i)}; }
	DD comoment(Eigen::Index i, Eigen::Index j) const
	{
		return i >= j ? DD(M_hi_(i, j), M_lo_(i, j)) : DD(M_hi_(j, i), M_lo_(j, i));
	}
	// Whether every part was accumulated in double-double (false once double moments are merged in).
	bool precise() const { return precise_; }
	// The relative precision of the statistics: about 2^-104, or 2^-53 when !precise().
	double unit() const { return precise_ ? 0x1.0p-104 : 0x1.0p-53; }

	// The moments rounded to double, and what rounding left out (full symmetric matrices).
	Moments rounded() const;
	const Eigen::VectorXd &mean_lo() const { return mean_lo_; }
	Eigen::MatrixXd comoment_lo() const { return M_lo_.selfadjointView<Eigen::Lower>(); }

  private:
	int64_t n_ = 0;
	bool precise_ = true;
	Eigen::VectorXd mean_hi_, mean_lo_;
	Eigen::MatrixXd M_hi_, M_lo_; // lower triangles are authoritative
	void set_comoment(Eigen::Index i, Eigen::Index j, DD v)
	{
		M_hi_(i, j) = v.hi;
		M_lo_(i, j) = v.lo;
	}
};

} // namespace pgml
