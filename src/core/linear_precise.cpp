#include "linear_precise.hpp"

namespace pgml {

namespace {

// T = A C (features x slots), skipping A's zeros (A is mostly diagonal).
std::vector<DD> times_comoment(const PreciseMoments &mo, const Eigen::MatrixXd &A)
{
	const Eigen::Index p = A.rows(), q = A.cols();
	std::vector<DD> T(static_cast<size_t>(p * q));
	for (Eigen::Index f = 0; f < p; f++)
		for (Eigen::Index i = 0; i < q; i++) {
			const double a = A(f, i);
			if (a == 0)
				continue;
			for (Eigen::Index j = 0; j < q; j++)
				T[static_cast<size_t>(f * q + j)] += mo.comoment(i, j) * a;
		}
	return T;
}

// v = A^T w: the fit's coefficients on the slots.
std::vector<DD> on_slots(const Eigen::MatrixXd &A, const std::vector<DD> &w)
{
	std::vector<DD> v(static_cast<size_t>(A.cols()));
	for (Eigen::Index f = 0; f < A.rows(); f++)
		for (Eigen::Index i = 0; i < A.cols(); i++)
			if (A(f, i) != 0)
				v[static_cast<size_t>(i)] += w[static_cast<size_t>(f)] * A(f, i);
	return v;
}

} // namespace

PreciseFit fit_least_squares_precise(const PreciseMoments &train, const LeastSquaresSetup &in)
{
	const Eigen::Index p = in.A.rows(), q = in.A.cols(), ts = in.target_slot;
	const std::vector<DD> T = times_comoment(train, in.A);
	const DD n(static_cast<double>(train.n()));
	std::vector<DD> mx(static_cast<size_t>(p)), zy(static_cast<size_t>(p));
	for (Eigen::Index f = 0; f < p; f++) {
		DD m(in.c0(f));
		for (Eigen::Index i = 0; i < q; i++)
			if (in.A(f, i) != 0)
				m += train.mean(i) * in.A(f, i);
		mx[static_cast<size_t>(f)] = m;
	}
	const DD my = train.mean(ts);
	PreciseFit fit;
	fit.Sxx = DDMatrix(p);
	fit.Sxy.resize(static_cast<size_t>(p));
	DDMatrix Z(p);
	for (Eigen::Index f = 0; f < p; f++) {
		for (Eigen::Index g = 0; g <= f; g++) {
			DD s;
			for (Eigen::Index j = 0; j < q; j++)
				if (in.A(g, j) != 0)
					s += T[static_cast<size_t>(f * q + j)] * in.A(g, j);
			fit.Sxx(f, g) = fit.Sxx(g, f) = s;
			if (!in.intercept) // the raw (uncentered) moments
				s += mx[static_cast<size_t>(f)] * mx[static_cast<size_t>(g)] * n;
			Z(f, g) = Z(g, f) = s / DD(in.scale(f)) / DD(in.scale(g));
		}
		DD sxy = T[static_cast<size_t>(f * q + ts)];
		fit.Sxy[static_cast<size_t>(f)] = sxy;
		if (!in.intercept)
			sxy += mx[static_cast<size_t>(f)] * my * n;
		zy[static_cast<size_t>(f)] = sxy / DD(in.scale(f));
	}
	fit.mx = mx;
	fit.my = my;
	fit.Syy = train.comoment(ts, ts);
	fit.gs = solve_gram_precise(Z, zy, &in.noise_floor, in.groups);
	if (fit.gs.deficient)
		return fit;
	fit.w.resize(p);
	fit.w_dd.resize(static_cast<size_t>(p));
	DD b = in.intercept ? my : DD();
	for (Eigen::Index f = 0; f < p; f++) {
		const DD w = fit.gs.w_dd[static_cast<size_t>(f)] / DD(in.scale(f));
		fit.w_dd[static_cast<size_t>(f)] = w;
		fit.w(f) = w.value();
		if (in.intercept)
			b -= w * mx[static_cast<size_t>(f)];
	}
	fit.b_dd = b;
	fit.b = b.value();
	fit.sse = residual_ss(train, in, fit.w_dd, b);
	fit.syy_centered = train.comoment(ts, ts).value();
	return fit;
}

// With v = A^T w and the residual r = y - v . slots - (w . c0 + b): the sum of squares is the
// centered part, C_yy - 2 v . C_y + v^T C v, plus n times r's mean squared.
double residual_ss(const PreciseMoments &mo, const LeastSquaresSetup &in, const std::vector<DD> &w, DD b)
{
	if (mo.n() == 0)
		return 0;
	const Eigen::Index q = in.A.cols(), ts = in.target_slot;
	const std::vector<DD> v = on_slots(in.A, w);
	DD rmean = mo.mean(ts) - b;
	for (Eigen::Index f = 0; f < in.A.rows(); f++)
		rmean -= w[static_cast<size_t>(f)] * in.c0(f);
	DD ss = mo.comoment(ts, ts);
	for (Eigen::Index i = 0; i < q; i++) {
		const DD vi = v[static_cast<size_t>(i)];
		if (vi.hi == 0)
			continue;
		rmean -= vi * mo.mean(i);
		DD cv;
		for (Eigen::Index j = 0; j < q; j++)
			if (v[static_cast<size_t>(j)].hi != 0)
				cv += mo.comoment(i, j) * v[static_cast<size_t>(j)];
		ss += vi * (cv - mo.comoment(i, ts) * 2.0);
	}
	ss += rmean * rmean * static_cast<double>(mo.n());
	return std::max(0.0, ss.value());
}

} // namespace pgml
