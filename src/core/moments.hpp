// pg_ml core: mergeable first and second moments of a growing vector.
//
// Keeps n, the mean and the co-moment matrix M = sum (v - mean)(v - mean)^T of the
// rows added so far. Blocks are folded in with Chan et al.'s pairwise update, which is
// exact (up to rounding) and numerically stable, and is also what a parallel aggregate's
// combine function needs. Memory is O(q^2) however many rows are added.
#pragma once

#include <cstdint>

#include <Eigen/Dense>

#include "serialize.hpp"

namespace pgml {

class Moments {
  public:
	Moments() = default;
	explicit Moments(Eigen::Index q) { grow(q); }
	// From parts: n rows with this mean and (full, symmetric) co-moment matrix.
	static Moments from(int64_t n, const Eigen::VectorXd &mean, const Eigen::MatrixXd &M)
	{
		Moments m;
		m.n_ = n;
		m.mean_ = mean;
		m.M_ = M;
		return m;
	}

	// Widens to q dimensions; earlier rows count as 0 in the new ones.
	void grow(Eigen::Index q);
	// Adds each row of block (rows x dim()).
	// workspace (optional): the block's centred copy is made there, so that a caller adding many
	// blocks allocates (and the kernel zeroes) that memory once
	void add_block(const Eigen::MatrixXd &block, Eigen::MatrixXd *workspace = nullptr);
	void merge(const Moments &other);

	int64_t n() const { return n_; }
	Eigen::Index dim() const { return mean_.size(); }
	const Eigen::VectorXd &mean() const { return mean_; }
	// Full symmetric co-moment matrix.
	Eigen::MatrixXd comoment() const { return M_.selfadjointView<Eigen::Lower>(); }

	void write(Writer &w) const;
	static Moments read(Reader &r);

  private:
	int64_t n_ = 0;
	Eigen::VectorXd mean_;
	Eigen::MatrixXd M_; // lower triangle is authoritative
};

} // namespace pgml
