// pg_ml core: L-BFGS with a More-Thuente line search, and L2-penalised
// logistic regression on top of it.
//
// Stopping rule of lbfgs_minimize: an iteration ends the run (converged) when
//   ||grad||_inf <= opt.tol                                   (scipy's pgtol), or
//   (f_prev - f) / max(|f_prev|, |f|, 1) <= 64 * DBL_EPSILON   (scipy's ftol, as sklearn >= 1.3 sets it).
// It ends unconverged when max_iter iterations are used up, or when the line
// search cannot decrease f even along the steepest descent direction.
//
// fit_logistic minimises sklearn's objective divided by C*n, i.e.
//   mean_i loss_i + ||W||^2 / (2*C*n),
// which has the same minimiser but makes tol independent of the row count
// (sklearn >= 1.4 does the same). The loss values in the iteration log are on
// that per-row scale.
#include "optimize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pgml {

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kRelReductionTol = 64 * kEps;
constexpr int kMaxLineSearchEvals = 50; // sklearn passes maxls=50 to L-BFGS-B (>= 1.3)
constexpr double kLsFtol = 1e-3;        // sufficient decrease (Armijo) constant
constexpr double kLsGtol = 0.9;         // curvature (strong Wolfe) constant
constexpr double kLsXtol = 0.1;         // relative width of the bracket below which we give up
constexpr double kStepMax = 1e10;
constexpr Eigen::Index kLogisticBlockRows = 2048;

// One step of More and Thuente's safeguarded interpolation (MINPACK-2 dcstep):
// updates the interval of uncertainty [stx, sty] with the trial (stp, fp, dp)
// and computes the next trial step into stp.
void mt_step(double &stx, double &fx, double &dx, double &sty, double &fy, double &dy, double &stp, double fp,
             double dp, bool &brackt, double stpmin, double stpmax)
{
	const double sgnd = dp * (dx / std::fabs(dx));
	double stpf;
	if (fp > fx) {
		// higher function value: the minimum is bracketed
		const double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
		const double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
		double gamma = s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)));
		if (stp < stx)
			gamma = -gamma;
		const double p = (gamma - dx) + theta;
		const double q = ((gamma - dx) + gamma) + dp;
		const double r = p / q;
		const double stpc = stx + r * (stp - stx);
		const double stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
		if (std::fabs(stpc - stx) < std::fabs(stpq - stx))
			stpf = stpc;
		else
			stpf = stpc + (stpq - stpc) / 2.0;
		brackt = true;
	} else if (sgnd < 0) {
		// derivatives of opposite sign: the minimum is bracketed
		const double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
		const double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
		double gamma = s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)));
		if (stp > stx)
			gamma = -gamma;
		const double p = (gamma - dp) + theta;
		const double q = ((gamma - dp) + gamma) + dx;
		const double r = p / q;
		const double stpc = stp + r * (stx - stp);
		const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
		stpf = std::fabs(stpc - stp) > std::fabs(stpq - stp) ? stpc : stpq;
		brackt = true;
	} else if (std::fabs(dp) < std::fabs(dx)) {
		// same sign, derivative magnitude decreases
		const double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
		const double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
		double gamma = s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)));
		if (stp > stx)
			gamma = -gamma;
		const double p = (gamma - dp) + theta;
		const double q = (gamma + (dx - dp)) + gamma;
		const double r = p / q;
		double stpc;
		if (r < 0 && gamma != 0)
			stpc = stp + r * (stx - stp);
		else if (stp > stx)
			stpc = stpmax;
		else
			stpc = stpmin;
		const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
		if (brackt) {
			stpf = std::fabs(stpc - stp) < std::fabs(stpq - stp) ? stpc : stpq;
			if (stp > stx)
				stpf = std::min(stp + 0.66 * (sty - stp), stpf);
			else
				stpf = std::max(stp + 0.66 * (sty - stp), stpf);
		} else {
			stpf = std::fabs(stpc - stp) > std::fabs(stpq - stp) ? stpc : stpq;
			stpf = std::min(stpmax, stpf);
			stpf = std::max(stpmin, stpf);
		}
	} else {
		// same sign, derivative magnitude does not decrease
		if (brackt) {
			const double theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
			const double s = std::max({std::fabs(theta), std::fabs(dy), std::fabs(dp)});
			double gamma = s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (dy / s) * (dp / s)));
			if (stp > sty)
				gamma = -gamma;
			const double p = (gamma - dp) + theta;
			const double q = ((gamma - dp) + gamma) + dy;
			const double r = p / q;
			stpf = stp + r * (sty - stp);
		} else if (stp > stx) {
			stpf = stpmax;
		} else {
			stpf = stpmin;
		}
	}

	if (fp > fx) {
		sty = stp;
		fy = fp;
		dy = dp;
	} else {
		if (sgnd < 0) {
			sty = stx;
			fy = fx;
			dy = dx;
		}
		stx = stp;
		fx = fp;
		dx = dp;
	}
	stp = stpf;
}

// More-Thuente line search (MINPACK-2 dcsrch) from x0 along the descent
// direction d, first trying step stp. On success x, fx, g hold an accepted point
// with fx < f0 (normally one meeting the strong Wolfe conditions) and it returns
// true; it returns false when no decrease could be found.
bool line_search(const Objective &f, const Eigen::VectorXd &x0, double f0, const Eigen::VectorXd &g0,
                 const Eigen::VectorXd &d, double stp, Eigen::VectorXd &x, double &fx, Eigen::VectorXd &g,
                 CancelCheck cancel)
{
	const double ginit = g0.dot(d);
	if (!(ginit < 0) || !(stp > 0))
		return false;
	const double gtest = kLsFtol * ginit;
	const double stpmin = 0;
	double stpmax = kStepMax;
	stp = std::min(stp, stpmax);

	bool brackt = false;
	int stage = 1;
	double width = stpmax - stpmin;
	double width1 = 2.0 * width;
	double stx = 0, fxs = f0, gx = ginit;
	double sty = 0, fy = f0, gy = ginit;
	double stmin = 0, stmax = stp + 4.0 * stp;

	// best decreasing point seen, the fallback when the search ends without convergence
	double best_f = f0;
	Eigen::VectorXd best_x, best_g;

	for (int nfev = 0; nfev < kMaxLineSearchEvals; ++nfev) {
		check_cancel(cancel);
		x = x0 + stp * d;
		const double fv = f(x, g);
		const double dg = g.dot(d);
		if (!std::isfinite(fv) || !std::isfinite(dg)) {
			// outside the objective's finite region: retreat towards the best step
			stp = stx + 0.5 * (stp - stx);
			stpmax = stp;
			if (!(stp > 0))
				break;
			continue;
		}
		if (fv < best_f) {
			best_f = fv;
			best_x = x;
			best_g = g;
		}

		const double ftest = f0 + stp * gtest;
		if (stage == 1 && fv <= ftest && dg >= std::min(kLsFtol, kLsGtol) * ginit)
			stage = 2;

		bool warn = false;
		if (brackt && (stp <= stmin || stp >= stmax))
			warn = true; // rounding errors prevent progress
		if (brackt && stmax - stmin <= kLsXtol * stmax)
			warn = true; // interval too small
		if (stp == stpmax && fv <= ftest && dg <= gtest)
			warn = true; // step at the upper bound
		if (stp == stpmin && (fv > ftest || dg >= gtest))
			warn = true; // step at the lower bound
		if (fv <= ftest && std::fabs(dg) <= kLsGtol * (-ginit)) {
			fx = fv;
			return true; // strong Wolfe conditions hold
		}
		if (warn)
			break;

		if (stage == 1 && fv <= fxs && fv > ftest) {
			// use the modified function psi(stp) = f(stp) - f0 - stp*gtest
			double fm = fv - stp * gtest;
			double fxm = fxs - stx * gtest, fym = fy - sty * gtest;
			double gm = dg - gtest;
			double gxm = gx - gtest, gym = gy - gtest;
			mt_step(stx, fxm, gxm, sty, fym, gym, stp, fm, gm, brackt, stmin, stmax);
			fxs = fxm + stx * gtest;
			fy = fym + sty * gtest;
			gx = gxm + gtest;
			gy = gym + gtest;
		} else {
			mt_step(stx, fxs, gx, sty, fy, gy, stp, fv, dg, brackt, stmin, stmax);
		}

		if (brackt) {
			if (std::fabs(sty - stx) >= 0.66 * width1)
				stp = stx + 0.5 * (sty - stx);
			width1 = width;
			width = std::fabs(sty - stx);
			stmin = std::min(stx, sty);
			stmax = std::max(stx, sty);
		} else {
			stmin = stp + 1.1 * (stp - stx);
			stmax = stp + 4.0 * (stp - stx);
		}
		stp = std::max(stp, stpmin);
		stp = std::min(stp, stpmax);
		if (brackt && (stp <= stmin || stp >= stmax || stmax - stmin <= kLsXtol * stmax))
			stp = stx;
	}

	if (best_f < f0) {
		x = best_x;
		g = best_g;
		fx = best_f;
		return true;
	}
	return false;
}

// Numerically stable 1 / (1 + exp(-z)).
inline double sigmoid(double z)
{
	if (z >= 0)
		return 1.0 / (1.0 + std::exp(-z));
	const double e = std::exp(z);
	return e / (1.0 + e);
}

} // namespace

// Minimises f from x with L-BFGS (two-loop recursion, history opt.history,
// More-Thuente line search); x is overwritten with the final point.
LbfgsResult lbfgs_minimize(const Objective &f, Eigen::VectorXd &x, const LbfgsOptions &opt, CancelCheck cancel,
                           std::vector<IterationLog> *log, ProgressCallback progress)
{
	if (opt.history < 1)
		throw Error(ErrorCode::InvalidParameter, "L-BFGS history must be at least 1");
	if (opt.max_iter < 0)
		throw Error(ErrorCode::InvalidParameter, "max_iter must not be negative");
	if (!(opt.tol >= 0))
		throw Error(ErrorCode::InvalidParameter, "tol must not be negative");

	const Eigen::Index n = x.size();
	LbfgsResult res;
	Eigen::VectorXd g = Eigen::VectorXd::Zero(n);
	check_cancel(cancel);
	double fx = f(x, g);
	if (!std::isfinite(fx) || !g.allFinite())
		throw Error(ErrorCode::DataException, "objective is not finite at the starting point");
	res.loss = fx;
	double gnorm = n > 0 ? g.lpNorm<Eigen::Infinity>() : 0.0;
	if (gnorm <= opt.tol) {
		res.converged = true;
		return res;
	}

	const int m = opt.history;
	Eigen::MatrixXd S(n, m), Y(n, m);
	Eigen::VectorXd rho(m), alpha(m);
	int stored = 0, head = 0; // ring buffer: the newest pair is at (head - 1) mod m
	double gamma = 1.0;        // initial inverse Hessian scale s'y / y'y of the newest pair

	Eigen::VectorXd d = -g;
	double step = std::min(1.0 / d.norm(), kStepMax);
	Eigen::VectorXd x_new(n), g_new(n);

	for (int k = 1; k <= opt.max_iter; ++k) {
		check_cancel(cancel);
		double f_new = fx;
		if (!line_search(f, x, fx, g, d, step, x_new, f_new, g_new, cancel)) {
			if (stored == 0)
				break; // no decrease even along -grad: as good as it gets in floating point
			// forget the curvature history and retry this iteration along -grad
			stored = 0;
			d = -g;
			step = std::min(1.0 / d.norm(), kStepMax);
			--k;
			continue;
		}

		S.col(head) = x_new - x;
		Y.col(head) = g_new - g;
		const double f_old = fx;
		x.swap(x_new);
		g.swap(g_new);
		fx = f_new;
		gnorm = g.lpNorm<Eigen::Infinity>();
		res.iterations = k;
		res.loss = fx;
		if (log != nullptr)
			log->push_back(IterationLog{k, fx, gnorm});
		report_iteration(progress, k, "loss", fx);
		if (gnorm <= opt.tol) {
			res.converged = true;
			break;
		}
		if (f_old - fx <= kRelReductionTol * std::max({std::fabs(f_old), std::fabs(fx), 1.0})) {
			res.converged = true;
			break;
		}

		// keep the pair only if it carries positive curvature
		const double sy = S.col(head).dot(Y.col(head));
		const double yy = Y.col(head).squaredNorm();
		if (sy > kEps * yy) {
			rho(head) = 1.0 / sy;
			gamma = sy / yy;
			head = (head + 1) % m;
			stored = std::min(stored + 1, m);
		}

		// two-loop recursion: d = -H g
		d = -g;
		for (int j = 0; j < stored; ++j) {
			const int i = ((head - 1 - j) % m + m) % m;
			alpha(i) = rho(i) * S.col(i).dot(d);
			d.noalias() -= alpha(i) * Y.col(i);
		}
		if (stored > 0)
			d *= gamma;
		for (int j = stored - 1; j >= 0; --j) {
			const int i = ((head - 1 - j) % m + m) % m;
			const double beta = rho(i) * Y.col(i).dot(d);
			d.noalias() += (alpha(i) - beta) * S.col(i);
		}
		step = 1.0;
		if (stored == 0 || !(d.dot(g) < 0)) {
			stored = 0;
			d = -g;
			step = std::min(1.0 / d.norm(), kStepMax);
		}
	}
	return res;
}

// Mean log-loss plus ||W||^2 / (2*C*n) and its gradient, computed in row blocks
// (Z = X_b W + b, residual = softmax(Z) - onehot(y), grad W += X_b^T residual).
double logistic_objective(const Eigen::MatrixXd &X, const std::vector<int> &y, int K, double C,
                          const Eigen::VectorXd &w, Eigen::VectorXd &grad)
{
	using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
	const Eigen::Index n = X.rows();
	const Eigen::Index p = X.cols();
	const Eigen::Index kk = K == 2 ? 1 : K;
	const double inv_n = 1.0 / static_cast<double>(n);
	const double pen = inv_n / C; // penalty weight after dividing the objective by C*n

	Eigen::Map<const Eigen::MatrixXd> W(w.data(), p, kk);
	Eigen::Map<const Eigen::VectorXd> b(w.data() + p * kk, kk);
	grad.resize(w.size());
	Eigen::Map<Eigen::MatrixXd> GW(grad.data(), p, kk);
	Eigen::Map<Eigen::VectorXd> gb(grad.data() + p * kk, kk);
	GW.setZero();
	gb.setZero();
	RowMat Z(std::min(kLogisticBlockRows, n), kk);
	double loss = 0;
	for (Eigen::Index r0 = 0; r0 < n; r0 += kLogisticBlockRows) {
		const Eigen::Index rows = std::min(kLogisticBlockRows, n - r0);
		const auto Xb = X.middleRows(r0, rows);
		auto Zb = Z.topRows(rows);
		Zb.noalias() = Xb * W;
		Zb.rowwise() += b.transpose();
		double block_loss = 0;
		if (kk == 1) {
			for (Eigen::Index i = 0; i < rows; ++i) {
				// loss = log(1 + e^z) - y z, residual = sigmoid(z) - y, sharing e^-|z|
				const double z = Zb(i, 0);
				const double yi = y[static_cast<size_t>(r0 + i)] == 1 ? 1.0 : 0.0;
				const double e = std::exp(-std::fabs(z));
				block_loss += std::max(z, 0.0) + std::log1p(e) - yi * z;
				Zb(i, 0) = (z >= 0 ? 1.0 : e) / (1.0 + e) - yi;
			}
		} else {
			for (Eigen::Index i = 0; i < rows; ++i) {
				// loss = logsumexp(z) - z_y, residual = softmax(z) - onehot(y)
				double *zi = Zb.data() + i * kk; // row-major: the row is contiguous
				double zmax = zi[0];
				for (Eigen::Index c = 1; c < kk; ++c)
					zmax = std::max(zmax, zi[c]);
				const int yi = y[static_cast<size_t>(r0 + i)];
				const double z_true = zi[yi];
				double sum = 0;
				for (Eigen::Index c = 0; c < kk; ++c) {
					zi[c] = std::exp(zi[c] - zmax);
					sum += zi[c];
				}
				block_loss += zmax + std::log(sum) - z_true;
				const double inv_sum = 1.0 / sum;
				for (Eigen::Index c = 0; c < kk; ++c)
					zi[c] *= inv_sum;
				zi[yi] -= 1.0;
			}
		}
		loss += block_loss;
		GW.noalias() += Xb.transpose() * Zb;
		gb.noalias() += Zb.colwise().sum().transpose();
	}
	GW *= inv_n;
	gb *= inv_n;
	GW.noalias() += pen * W;
	return loss * inv_n + 0.5 * pen * W.squaredNorm();
}

// Fits L2-penalised binary (sigmoid) or multinomial (softmax) logistic regression.
LogisticFit fit_logistic(const Eigen::MatrixXd &X, const std::vector<int> &y, int K, double C,
                         const LbfgsOptions &opt, CancelCheck cancel, std::vector<IterationLog> *log,
                         ProgressCallback progress)
{
	if (K < 2)
		throw Error(ErrorCode::InvalidParameter, "logistic regression needs at least two classes");
	if (!(C > 0) || !std::isfinite(C))
		throw Error(ErrorCode::InvalidParameter, "C must be a positive finite number");
	const Eigen::Index n = X.rows();
	const Eigen::Index p = X.cols();
	if (static_cast<size_t>(n) != y.size())
		throw Error(ErrorCode::Internal, "logistic regression: X and y have different row counts");
	if (n == 0)
		throw Error(ErrorCode::DataException, "no training rows");
	for (int label : y)
		if (label < 0 || label >= K)
			throw Error(ErrorCode::Internal, "logistic regression: class id out of range");
	if (!X.allFinite())
		throw Error(ErrorCode::DataException, "training data contains non-finite values");

	const Eigen::Index kk = K == 2 ? 1 : K;
	Objective objective = [&](const Eigen::VectorXd &w, Eigen::VectorXd &grad) -> double {
		return logistic_objective(X, y, K, C, w, grad);
	};

	Eigen::VectorXd w = Eigen::VectorXd::Zero(p * kk + kk);
	LogisticFit fit;
	fit.result = lbfgs_minimize(objective, w, opt, cancel, log, progress);
	fit.W = Eigen::Map<const Eigen::MatrixXd>(w.data(), p, kk);
	fit.b = Eigen::Map<const Eigen::VectorXd>(w.data() + p * kk, kk);
	return fit;
}

// Class probabilities of one preprocessed row from a fitted W, b.
void logistic_proba(const Eigen::MatrixXd &W, const Eigen::VectorXd &b, const double *x, int K, double *out)
{
	const Eigen::Index kk = K == 2 ? 1 : K;
	if (K < 2 || W.cols() != kk || b.size() != kk)
		throw Error(ErrorCode::Internal, "logistic model shape does not match the class count");
	Eigen::Map<const Eigen::VectorXd> xv(x, W.rows());
	if (K == 2) {
		const double p1 = sigmoid(W.col(0).dot(xv) + b(0));
		out[0] = 1.0 - p1;
		out[1] = p1;
		return;
	}
	Eigen::Map<Eigen::VectorXd> o(out, K);
	o.noalias() = W.transpose() * xv;
	o += b;
	const double zmax = o.maxCoeff();
	o = (o.array() - zmax).exp();
	o /= o.sum();
}

} // namespace pgml
