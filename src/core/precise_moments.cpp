#include "precise_moments.hpp"

#include "common.hpp"

namespace pgml {

PreciseMoments::PreciseMoments(Eigen::Index q)
    : mean_hi_(Eigen::VectorXd::Zero(q)), mean_lo_(Eigen::VectorXd::Zero(q)), M_hi_(Eigen::MatrixXd::Zero(q, q)),
      M_lo_(Eigen::MatrixXd::Zero(q, q))
{
}

PreciseMoments PreciseMoments::from(const Moments &hi, const Eigen::VectorXd *mean_lo, const Eigen::MatrixXd *comoment_lo)
{
	const Eigen::Index q = hi.dim();
	PreciseMoments m(q);
	m.n_ = hi.n();
	m.mean_hi_ = hi.mean();
	m.M_hi_ = hi.comoment();
	m.precise_ = mean_lo != nullptr && comoment_lo != nullptr;
	if (m.precise_) {
		if (mean_lo->size() != q || comoment_lo->rows() != q || comoment_lo->cols() != q)
			throw Error(ErrorCode::DataCorrupted, "model blob is corrupted",
			            "The stored precise statistics have inconsistent dimensions.");
		m.mean_lo_ = *mean_lo;
		m.M_lo_ = *comoment_lo;
	}
	return m;
}

void PreciseMoments::grow(Eigen::Index q)
{
	const Eigen::Index old = dim();
	if (q <= old)
		return;
	for (Eigen::VectorXd *v : {&mean_hi_, &mean_lo_}) {
		v->conservativeResize(q);
		v->tail(q - old).setZero();
	}
	for (Eigen::MatrixXd *m : {&M_hi_, &M_lo_}) {
		Eigen::MatrixXd g = Eigen::MatrixXd::Zero(q, q);
		g.topLeftCorner(old, old) = *m;
		m->swap(g);
	}
}

// The block's sums about c are exact up to the double-double accumulation: x - c is split
// into hi + lo exactly (two_sum), each product's hi * hi part is exact (two_prod), and the
// cross terms hi * lo (about 2^-53 of it) are added in double.
void PreciseMoments::add_block(const Eigen::MatrixXd &block)
{
	const Eigen::Index rows = block.rows(), q = dim();
	if (rows == 0)
		return;
	if (block.cols() != q)
		throw Error(ErrorCode::Internal, "precise moment block has the wrong width");
	const Eigen::VectorXd c = n_ > 0 ? Eigen::VectorXd(mean_hi_) : Eigen::VectorXd(block.row(0).transpose());
	Eigen::MatrixXd S_hi = Eigen::MatrixXd::Zero(q, q), S_lo = Eigen::MatrixXd::Zero(q, q);
	Eigen::VectorXd s_hi = Eigen::VectorXd::Zero(q), s_lo = Eigen::VectorXd::Zero(q);
	Eigen::VectorXd d_hi(q), d_lo(q);
	for (Eigen::Index r = 0; r < rows; r++) {
		for (Eigen::Index i = 0; i < q; i++) {
			const DD d = dd::two_sum(block(r, i), -c(i));
			d_hi(i) = d.hi;
			d_lo(i) = d.lo;
			const DD t = dd::two_sum(s_hi(i), d.hi);
			s_hi(i) = t.hi;
			s_lo(i) += t.lo + d.lo;
		}
		for (Eigen::Index j = 0; j < q; j++) {
			const double hj = d_hi(j), lj = d_lo(j);
			for (Eigen::Index i = j; i < q; i++) {
				const DD p = dd::two_prod(d_hi(i), hj);
				const DD t = dd::two_sum(S_hi(i, j), p.hi);
				S_hi(i, j) = t.hi;
				S_lo(i, j) += t.lo + p.lo + d_hi(i) * lj + d_lo(i) * hj;
			}
		}
	}
	// the block's own moments: mean c + s / n, co-moments S - s s^T / n
	const DD nb(static_cast<double>(rows));
	PreciseMoments b(q);
	b.n_ = rows;
	std::vector<DD> s(static_cast<size_t>(q));
	for (Eigen::Index i = 0; i < q; i++) {
		s[static_cast<size_t>(i)] = dd::quick_two_sum(s_hi(i), s_lo(i));
		const DD m = DD(c(i)) + s[static_cast<size_t>(i)] / nb;
		b.mean_hi_(i) = m.hi;
		b.mean_lo_(i) = m.lo;
	}
	for (Eigen::Index j = 0; j < q; j++)
		for (Eigen::Index i = j; i < q; i++)
			b.set_comoment(i, j,
			               dd::quick_two_sum(S_hi(i, j), S_lo(i, j)) -
			                   s[static_cast<size_t>(i)] * s[static_cast<size_t>(j)] / nb);
	merge(b);
}

// Chan et al.'s pairwise update in double-double: M = Ma + Mb + delta delta^T na nb / n.
void PreciseMoments::merge(const PreciseMoments &other)
{
	if (other.n_ == 0)
		return;
	if (other.dim() != dim())
		throw Error(ErrorCode::Internal, "precise moments of different widths");
	precise_ = precise_ && other.precise_;
	if (n_ == 0) {
		n_ = other.n_;
		mean_hi_ = other.mean_hi_;
		mean_lo_ = other.mean_lo_;
		M_hi_ = other.M_hi_;
		M_lo_ = other.M_lo_;
		return;
	}
	const Eigen::Index q = dim();
	const double na = static_cast<double>(n_), nb = static_cast<double>(other.n_);
	const DD n = dd::two_sum(na, nb);
	const DD f = dd::two_prod(na, nb) / n; // na nb / n
	const DD g = DD(nb) / n;               // nb / n
	std::vector<DD> delta(static_cast<size_t>(q));
	for (Eigen::Index i = 0; i < q; i++)
		delta[static_cast<size_t>(i)] = other.mean(i) - mean(i);
	for (Eigen::Index j = 0; j < q; j++)
		for (Eigen::Index i = j; i < q; i++)
			set_comoment(i, j,
			             comoment(i, j) + other.comoment(i, j) +
			                 delta[static_cast<size_t>(i)] * delta[static_cast<size_t>(j)] * f);
	for (Eigen::Index i = 0; i < q; i++) {
		const DD m = mean(i) + delta[static_cast<size_t>(i)] * g;
		mean_hi_(i) = m.hi;
		mean_lo_(i) = m.lo;
	}
	n_ += other.n_;
}

Moments PreciseMoments::rounded() const
{
	return Moments::from(n_, mean_hi_, M_hi_.selfadjointView<Eigen::Lower>());
}

} // namespace pgml
