#include "moments.hpp"

namespace pgml {

// Widens the state to q dimensions, padding with zeros.
void Moments::grow(Eigen::Index q)
{
	Eigen::Index old = mean_.size();
	if (q <= old)
		return;
	mean_.conservativeResize(q);
	mean_.tail(q - old).setZero();
	Eigen::MatrixXd M = Eigen::MatrixXd::Zero(q, q);
	if (old > 0)
		M.topLeftCorner(old, old) = M_;
	M_.swap(M);
}

// Folds a block of rows into the moments (pairwise update with the block's own moments).
void Moments::add_block(const Eigen::MatrixXd &block, Eigen::MatrixXd *workspace)
{
	const Eigen::Index rows = block.rows();
	if (rows == 0)
		return;
	if (block.cols() != dim())
		throw Error(ErrorCode::Internal, "moment block has the wrong width");
	Eigen::VectorXd bmean = block.colwise().mean().transpose();
	Eigen::MatrixXd own;
	Eigen::MatrixXd &centered = workspace != nullptr ? *workspace : own;
	centered.resize(rows, block.cols()); // (the same size again: no allocation)
	centered.noalias() = block.rowwise() - bmean.transpose();
	Moments b;
	b.n_ = rows;
	b.mean_ = std::move(bmean);
	b.M_ = Eigen::MatrixXd::Zero(dim(), dim());
	if (dim() > 0) // Eigen's rank update of an empty matrix binds a null reference
		b.M_.selfadjointView<Eigen::Lower>().rankUpdate(centered.transpose());
	merge(b);
}

// Combines two sets of moments over disjoint rows.
void Moments::merge(const Moments &other)
{
	if (other.n_ == 0)
		return;
	if (other.dim() > dim())
		grow(other.dim());
	Moments o;
	const Moments *src = &other;
	if (other.dim() < dim()) {
		o = other;
		o.grow(dim());
		src = &o;
	}
	if (n_ == 0) {
		n_ = src->n_;
		mean_ = src->mean_;
		M_ = src->M_;
		return;
	}
	const double na = static_cast<double>(n_), nb = static_cast<double>(src->n_);
	const double n = na + nb;
	Eigen::VectorXd delta = src->mean_ - mean_;
	M_ += src->M_;
	M_.selfadjointView<Eigen::Lower>().rankUpdate(delta, na * nb / n);
	mean_ += delta * (nb / n);
	n_ += src->n_;
}

void Moments::write(Writer &w) const
{
	w.i64(n_);
	w.vec(mean_);
	Eigen::MatrixXd full = comoment();
	w.mat(full);
}

Moments Moments::read(Reader &r)
{
	Moments m;
	m.n_ = r.i64();
	m.mean_ = r.vec();
	m.M_ = r.mat();
	if (m.n_ < 0 || m.M_.rows() != m.mean_.size() || m.M_.cols() != m.mean_.size())
		throw Error(ErrorCode::DataCorrupted, "model blob is corrupted",
		            "The stored statistics have inconsistent dimensions.");
	return m;
}

} // namespace pgml
