#include "elastic_net.hpp"

#include <algorithm>
#include <cmath>

namespace pgml {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

// Duality gap of the (1/n-scaled) elastic net at w, H = G w (sklearn's formula divided by n).
double duality_gap(const VectorXd &c, const VectorXd &w, const VectorXd &H, double l1, double l2, double y_sq)
{
	const double c_w = c.dot(w);
	const double R2 = std::max(0.0, y_sq + w.dot(H) - 2 * c_w); // ||y - Zw||^2 / n
	const double dual_norm = (c - H - l2 * w).cwiseAbs().maxCoeff();
	double k = 1, gap;
	if (dual_norm > l1) {
		k = l1 / dual_norm;
		gap = 0.5 * (R2 + R2 * k * k);
	} else {
		gap = R2;
	}
	gap += l1 * w.lpNorm<1>() - k * y_sq + k * c_w + 0.5 * l2 * (1 + k * k) * w.squaredNorm();
	return gap;
}

} // namespace

Eigen::VectorXd elastic_net_gram(const Eigen::MatrixXd &G, const Eigen::VectorXd &c, double alpha, double l1_ratio,
                                 int max_iter, double tol, CancelCheck cancel, std::vector<IterationLog> *log,
                                 double y_sq)
{
	const Index p = c.size();
	if (G.rows() != p || G.cols() != p)
		throw Error(ErrorCode::Internal, "elastic net: the Gram matrix and the right-hand side do not match");
	if (!(alpha >= 0) || !std::isfinite(alpha) || !(l1_ratio >= 0 && l1_ratio <= 1) || max_iter < 1 || !(tol >= 0))
		throw Error(ErrorCode::Internal, "elastic net: hyperparameters out of range");
	if (!G.allFinite() || !c.allFinite())
		throw Error(ErrorCode::DataException, "elastic net: the feature moments are not finite",
		            "A feature or the target overflows double precision.", "Rescale the features or the target.");
	const double l1 = alpha * l1_ratio, l2 = alpha * (1 - l1_ratio);
	const bool use_gap = std::isfinite(y_sq);
	VectorXd w = VectorXd::Zero(p), H = VectorXd::Zero(p); // H = G w
	for (int it = 1; it <= max_iter; it++) {
		check_cancel(cancel);
		double w_max = 0, dw_max = 0;
		for (Index j = 0; j < p; j++) {
			const double d = G(j, j) + l2;
			if (!(G(j, j) > 0) || !(d > 0))
				continue;
			const double old = w(j);
			if (old != 0)
				H.noalias() -= old * G.col(j);
			const double t = c(j) - H(j);
			const double a = std::fabs(t) - l1;
			w(j) = a > 0 ? std::copysign(a, t) / d : 0.0;
			if (w(j) != 0)
				H.noalias() += w(j) * G.col(j);
			dw_max = std::max(dw_max, std::fabs(w(j) - old));
			w_max = std::max(w_max, std::fabs(w(j)));
		}
		if (log != nullptr) {
			double loss = 0.5 * w.dot(H) - c.dot(w) + l1 * w.lpNorm<1>() + 0.5 * l2 * w.squaredNorm();
			if (use_gap)
				loss += 0.5 * y_sq;
			// largest component of the minimum-norm subgradient (0 at the optimum)
			double gmax = 0;
			for (Index j = 0; j < p; j++) {
				double g = H(j) - c(j) + l2 * w(j);
				g = w(j) != 0 ? std::fabs(g + std::copysign(l1, w(j))) : std::max(0.0, std::fabs(g) - l1);
				gmax = std::max(gmax, g);
			}
			log->push_back({it, loss, gmax, NAN});
		}
		if (w_max == 0) // a whole sweep left every coefficient at 0: w = 0 is the minimum
			break;
		if (dw_max / w_max < tol && (!use_gap || duality_gap(c, w, H, l1, l2, y_sq) <= tol * y_sq))
			break;
	}
	return w;
}

std::vector<ParamSpec> lasso_params()
{
	using K = ParamSpec::Kind;
	return {num_param("alpha", K::Float, 0, INFINITY, 1.0, true), num_param("max_iter", K::Int, 1, 1e6, 1000),
	        num_param("tol", K::Float, 0, INFINITY, 1e-4)};
}

std::vector<ParamSpec> elastic_net_params()
{
	using K = ParamSpec::Kind;
	return {num_param("alpha", K::Float, 0, INFINITY, 1.0, true), num_param("l1_ratio", K::Float, 0, 1, 0.5),
	        num_param("max_iter", K::Int, 1, 1e6, 1000), num_param("tol", K::Float, 0, INFINITY, 1e-4)};
}

} // namespace pgml
