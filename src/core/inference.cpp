// pg_ml core: coefficient statistics of the linear family (see inference.hpp).
#include "inference.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "distributions.hpp"
#include "json.hpp"

namespace pgml {

namespace {

constexpr double kAliasTol = 1e-14; // residual (squared, relative) below which a column is aliased

// The columns of the symmetric positive semi-definite G kept in order as R's lm keeps them:
// a column is aliased when it is (numerically) a combination of the kept ones before it. G is
// equilibrated first (unit diagonal); a zero diagonal is aliased.
std::vector<Eigen::Index> kept_columns(const Eigen::MatrixXd &G)
{
	const Eigen::Index p = G.rows();
	Eigen::VectorXd d(p);
	for (Eigen::Index j = 0; j < p; j++)
		d(j) = G(j, j) > 0 ? 1 / std::sqrt(G(j, j)) : 0;
	std::vector<Eigen::Index> kept;
	Eigen::MatrixXd L = Eigen::MatrixXd::Zero(p, p); // Cholesky factor of the kept block
	for (Eigen::Index j = 0; j < p; j++) {
		if (d(j) == 0)
			continue;
		const Eigen::Index k = static_cast<Eigen::Index>(kept.size());
		Eigen::VectorXd v(k);
		for (Eigen::Index i = 0; i < k; i++) {
			double s = G(kept[static_cast<size_t>(i)], j) * d(kept[static_cast<size_t>(i)]) * d(j);
			for (Eigen::Index t = 0; t < i; t++)
				s -= L(i, t) * v(t);
			v(i) = s / L(i, i);
		}
		const double r = 1 - v.squaredNorm();
		if (!(r > kAliasTol))
			continue;
		L.row(k).head(k) = v.transpose();
		L(k, k) = std::sqrt(r);
		kept.push_back(j);
	}
	return kept;
}

// The inverse of G's block at `kept`, through its equilibrated form.
Eigen::MatrixXd inverse_at(const Eigen::MatrixXd &G, const std::vector<Eigen::Index> &kept)
{
	const Eigen::Index k = static_cast<Eigen::Index>(kept.size());
	Eigen::MatrixXd B(k, k);
	Eigen::VectorXd d(k);
	for (Eigen::Index i = 0; i < k; i++)
		d(i) = 1 / std::sqrt(G(kept[static_cast<size_t>(i)], kept[static_cast<size_t>(i)]));
	for (Eigen::Index i = 0; i < k; i++)
		for (Eigen::Index j = 0; j < k; j++)
			B(i, j) = G(kept[static_cast<size_t>(i)], kept[static_cast<size_t>(j)]) * d(i) * d(j);
	Eigen::MatrixXd inv = B.ldlt().solve(Eigen::MatrixXd::Identity(k, k));
	return d.asDiagonal() * inv * d.asDiagonal();
}

void fill_row(CoefficientRow &r, double est, double se, double df, double level)
{
	r.estimate = est;
	r.std_error = se;
	if (!(se >= 0))
		return;
	r.statistic = est / se;
	const double alpha = 1 - level;
	double q;
	if (std::isfinite(df)) {
		r.p_value = dist::t_two_sided(r.statistic, df);
		q = dist::t_quantile(1 - alpha / 2, df);
	} else {
		r.p_value = dist::normal_two_sided(r.statistic);
		q = dist::normal_quantile(1 - alpha / 2);
	}
	r.conf_low = est - q * se;
	r.conf_high = est + q * se;
}

double log1pexp(double x) // log(1 + e^x) without overflow
{
	return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

double sigmoid(double x)
{
	return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}

} // namespace

namespace {

// An OLS fit with an intercept, however its kept block was inverted: the kept columns (of p),
// their coefficients and standard errors, the intercept and its, the residual and total sums
// of squares. The rest (model figures, rows, aliased terms) is the same for both precisions.
struct OlsParts {
	double n = 0;
	std::vector<Eigen::Index> kept;
	Eigen::VectorXd wk, se; // per kept column: coefficient, standard error / sqrt(s2)
	double bk = 0, se_b = 0; // the intercept, its standard error / sqrt(s2)
	double sse = 0, syy = 0;
};

Inference ols_inference(const OlsParts &o, Eigen::Index p, const std::vector<std::string> &names, double level)
{
	Inference inf;
	inf.statistic = "t";
	const double n = o.n;
	inf.n = n;
	const Eigen::Index k = static_cast<Eigen::Index>(o.kept.size());
	inf.rank = static_cast<int>(k) + 1;
	inf.df_residual = n - inf.rank;
	const double s2 = inf.df_residual > 0 ? o.sse / inf.df_residual : NAN;
	inf.sigma = std::sqrt(s2);
	inf.r2 = o.syy > 0 ? 1 - o.sse / o.syy : NAN;
	inf.adj_r2 = 1 - (1 - inf.r2) * (n - 1) / inf.df_residual;
	if (k > 0 && inf.df_residual > 0) {
		inf.f_df1 = static_cast<double>(k);
		inf.f_df2 = inf.df_residual;
		inf.f_statistic = ((o.syy - o.sse) / inf.f_df1) / s2;
		inf.f_p_value = dist::f_upper(inf.f_statistic, inf.f_df1, inf.f_df2);
	}
	inf.log_likelihood = 0.5 * (-n * (std::log(2 * M_PI) + 1 - std::log(n) + std::log(o.sse)));
	const double npar = inf.rank + 1; // and sigma
	inf.aic = -2 * inf.log_likelihood + 2 * npar;
	inf.bic = -2 * inf.log_likelihood + std::log(n) * npar;

	CoefficientRow ic;
	ic.term = "(Intercept)";
	fill_row(ic, o.bk, std::sqrt(s2) * o.se_b, inf.df_residual, level);
	inf.rows.push_back(ic);
	Eigen::Index next = 0;
	for (Eigen::Index j = 0; j < p; j++) {
		CoefficientRow r;
		r.term = names[static_cast<size_t>(j)];
		if (next < k && o.kept[static_cast<size_t>(next)] == j) {
			fill_row(r, o.wk(next), std::sqrt(s2) * o.se(next), inf.df_residual, level);
			next++;
		} else {
			inf.aliased.push_back(r.term);
		}
		inf.rows.push_back(r);
	}
	return inf;
}

} // namespace

Inference linear_inference(double n, const Eigen::MatrixXd &Sxx, const Eigen::VectorXd &Sxy, double Syy,
                           const Eigen::VectorXd &mx, const Eigen::VectorXd &w, double b,
                           const std::vector<std::string> &names, double level)
{
	OlsParts o;
	o.n = n;
	o.syy = Syy;
	const Eigen::Index p = Sxx.rows();
	o.kept = kept_columns(Sxx);
	const Eigen::Index k = static_cast<Eigen::Index>(o.kept.size());
	Eigen::MatrixXd inv = inverse_at(Sxx, o.kept);
	// the coefficients: the model's when every column is kept, else (as lm) the least-squares
	// fit on the kept columns, the others aliased
	Eigen::VectorXd mk(k), sk(k);
	for (Eigen::Index i = 0; i < k; i++) {
		mk(i) = mx(o.kept[static_cast<size_t>(i)]);
		sk(i) = Sxy(o.kept[static_cast<size_t>(i)]);
	}
	const double my = b + w.dot(mx);
	o.wk = k == p ? w : Eigen::VectorXd(inv * sk);
	Eigen::MatrixXd Skk(k, k);
	for (Eigen::Index i = 0; i < k; i++)
		for (Eigen::Index j = 0; j < k; j++)
			Skk(i, j) = Sxx(o.kept[static_cast<size_t>(i)], o.kept[static_cast<size_t>(j)]);
	o.bk = my - o.wk.dot(mk);
	o.sse = std::max(0.0, Syy - 2 * o.wk.dot(sk) + o.wk.dot(Skk * o.wk));
	o.se_b = std::sqrt(1 / n + mk.dot(inv * mk));
	o.se = inv.diagonal().cwiseSqrt();
	return ols_inference(o, p, names, level);
}

// The same from double-double co-moments and coefficients: the columns kept in order as
// kept_columns does, at the precise solve's tolerance; the inverse, the refit of a rank-deficient
// fit, the sums of squares and the standard errors (the intercept's is a difference of large
// terms when the features sit far from 0) all in double-double.
Inference linear_inference_precise(double n, const DDMatrix &Sxx, const std::vector<DD> &Sxy, DD Syy,
                                   const std::vector<DD> &mx, const std::vector<DD> &w, DD b,
                                   const std::vector<std::string> &names, double level)
{
	OlsParts o;
	o.n = n;
	o.syy = Syy.value();
	const Eigen::Index p = Sxx.n;
	std::vector<DD> d(static_cast<size_t>(p));
	for (Eigen::Index j = 0; j < p; j++)
		d[static_cast<size_t>(j)] = Sxx(j, j).hi > 0 ? DD(1.0) / dd::sqrt(Sxx(j, j)) : DD();
	// kept in order: a column whose residual against the kept ones is below the tolerance is aliased
	DDMatrix L(p);
	for (Eigen::Index j = 0; j < p; j++) {
		if (d[static_cast<size_t>(j)].hi == 0)
			continue;
		const Eigen::Index k = static_cast<Eigen::Index>(o.kept.size());
		std::vector<DD> v(static_cast<size_t>(k));
		DD r(1.0);
		for (Eigen::Index i = 0; i < k; i++) {
			const Eigen::Index c = o.kept[static_cast<size_t>(i)];
			DD s = Sxx(c, j) * d[static_cast<size_t>(c)] * d[static_cast<size_t>(j)];
			for (Eigen::Index t = 0; t < i; t++)
				s -= L(i, t) * v[static_cast<size_t>(t)];
			v[static_cast<size_t>(i)] = s / L(i, i);
			r -= v[static_cast<size_t>(i)] * v[static_cast<size_t>(i)];
		}
		if (!(r.hi > kPreciseRankTol))
			continue;
		for (Eigen::Index i = 0; i < k; i++)
			L(k, i) = v[static_cast<size_t>(i)];
		L(k, k) = dd::sqrt(r);
		o.kept.push_back(j);
	}
	const Eigen::Index k = static_cast<Eigen::Index>(o.kept.size());
	DDMatrix F(k); // the kept block's Cholesky factor (equilibrated)
	for (Eigen::Index i = 0; i < k; i++)
		for (Eigen::Index j = 0; j <= i; j++)
			F(i, j) = L(i, j);
	auto kd = [&](Eigen::Index i) { return d[static_cast<size_t>(o.kept[static_cast<size_t>(i)])]; };
	// inv(S_kk) x = D F^-T F^-1 D x
	auto solve = [&](std::vector<DD> x) {
		for (Eigen::Index i = 0; i < k; i++)
			x[static_cast<size_t>(i)] = x[static_cast<size_t>(i)] * kd(i);
		dd_solve(F, x);
		for (Eigen::Index i = 0; i < k; i++)
			x[static_cast<size_t>(i)] = x[static_cast<size_t>(i)] * kd(i);
		return x;
	};
	std::vector<DD> mk(static_cast<size_t>(k)), sk(static_cast<size_t>(k)), wk(static_cast<size_t>(k));
	for (Eigen::Index i = 0; i < k; i++) {
		mk[static_cast<size_t>(i)] = mx[static_cast<size_t>(o.kept[static_cast<size_t>(i)])];
		sk[static_cast<size_t>(i)] = Sxy[static_cast<size_t>(o.kept[static_cast<size_t>(i)])];
		wk[static_cast<size_t>(i)] = w[static_cast<size_t>(o.kept[static_cast<size_t>(i)])];
	}
	DD my = b;
	for (Eigen::Index j = 0; j < p; j++)
		my += w[static_cast<size_t>(j)] * mx[static_cast<size_t>(j)];
	if (k < p)
		wk = solve(sk);
	DD bk = my, sse = Syy, mim;
	const std::vector<DD> im = solve(mk);
	o.wk.resize(k);
	o.se.resize(k);
	for (Eigen::Index i = 0; i < k; i++) {
		bk -= wk[static_cast<size_t>(i)] * mk[static_cast<size_t>(i)];
		sse -= wk[static_cast<size_t>(i)] * sk[static_cast<size_t>(i)] * 2.0;
		DD sw;
		for (Eigen::Index j = 0; j < k; j++)
			sw += Sxx(o.kept[static_cast<size_t>(i)], o.kept[static_cast<size_t>(j)]) * wk[static_cast<size_t>(j)];
		sse += wk[static_cast<size_t>(i)] * sw;
		mim += mk[static_cast<size_t>(i)] * im[static_cast<size_t>(i)];
		std::vector<DD> e(static_cast<size_t>(k));
		e[static_cast<size_t>(i)] = DD(1.0);
		o.se(i) = std::sqrt(std::max(0.0, solve(e)[static_cast<size_t>(i)].value()));
		o.wk(i) = wk[static_cast<size_t>(i)].value();
	}
	o.bk = bk.value();
	o.sse = std::max(0.0, sse.value());
	o.se_b = std::sqrt(std::max(0.0, (DD(1.0) / DD(n) + mim).value()));
	return ols_inference(o, p, names, level);
}

Inference logistic_inference(const Eigen::MatrixXd &X, const Eigen::VectorXd &center, const Eigen::VectorXd &scale,
                             const std::vector<int> &y, const Eigen::VectorXd &w, double b,
                             const std::vector<std::string> &names, double level)
{
	Inference inf;
	inf.statistic = "z";
	const Eigen::Index n = X.rows(), p = X.cols();
	inf.n = static_cast<double>(n);
	// the coefficients on X's scale: x = z * scale + center
	const Eigen::VectorXd wz = w.array() * scale.array();
	const double bz = b + w.dot(center);
	Eigen::VectorXd eta = (X * wz).array() + bz;
	Eigen::VectorXd wt(n), zbar = Eigen::VectorXd::Zero(p);
	double dev = 0, ysum = 0;
	for (Eigen::Index i = 0; i < n; i++) {
		const double pi = sigmoid(eta(i));
		if (pi < 10 * DBL_EPSILON || pi > 1 - 10 * DBL_EPSILON)
			inf.fitted_0_or_1++;
		wt(i) = pi * (1 - pi);
		dev += 2 * (y[static_cast<size_t>(i)] ? log1pexp(-eta(i)) : log1pexp(eta(i)));
		ysum += y[static_cast<size_t>(i)];
	}
	// the Fisher information of (intercept, coefficients on X's scale)
	Eigen::MatrixXd I(p + 1, p + 1);
	I(0, 0) = wt.sum();
	const Eigen::VectorXd xw = X.transpose() * wt;
	I.block(1, 0, p, 1) = xw;
	I.block(0, 1, 1, p) = xw.transpose();
	I.block(1, 1, p, p) = X.transpose() * (wt.asDiagonal() * X);
	std::vector<Eigen::Index> kept = kept_columns(I);
	const Eigen::Index k = static_cast<Eigen::Index>(kept.size());
	Eigen::MatrixXd inv = inverse_at(I, kept);
	// back to the unscaled features: b_x = b_z - sum c_j w_zj / s_j, w_xj = w_zj / s_j
	Eigen::MatrixXd T = Eigen::MatrixXd::Zero(p + 1, p + 1);
	T(0, 0) = 1;
	for (Eigen::Index j = 0; j < p; j++) {
		T(0, j + 1) = -center(j) / scale(j);
		T(j + 1, j + 1) = 1 / scale(j);
	}
	Eigen::MatrixXd Tk(p + 1, k);
	for (Eigen::Index j = 0; j < k; j++)
		Tk.col(j) = T.col(kept[static_cast<size_t>(j)]);
	Eigen::MatrixXd cov = Tk * inv * Tk.transpose();
	std::vector<bool> is_kept(static_cast<size_t>(p + 1), false);
	for (Eigen::Index j : kept)
		is_kept[static_cast<size_t>(j)] = true;
	inf.rank = static_cast<int>(k);
	inf.df_residual = static_cast<double>(n) - k;
	inf.df_null = static_cast<double>(n) - 1;
	inf.deviance = dev;
	const double ybar = ysum / static_cast<double>(n);
	inf.null_deviance = (ybar > 0 && ybar < 1)
	                        ? -2 * (ysum * std::log(ybar) + (static_cast<double>(n) - ysum) * std::log1p(-ybar))
	                        : 0.0;
	inf.log_likelihood = -dev / 2;
	inf.aic = dev + 2 * k;
	inf.bic = dev + std::log(static_cast<double>(n)) * k;
	for (Eigen::Index j = 0; j <= p; j++) {
		CoefficientRow r;
		r.term = j == 0 ? "(Intercept)" : names[static_cast<size_t>(j - 1)];
		const double est = j == 0 ? b : w(j - 1);
		// a column aliased on the scaled design: its (aliased) coefficient is shown, no statistics;
		// the intercept's variance needs every kept column (its map mixes them all)
		if (is_kept[static_cast<size_t>(j)])
			fill_row(r, est, std::sqrt(cov(j, j)), INFINITY, level);
		else {
			r.estimate = est;
			inf.aliased.push_back(r.term);
		}
		inf.rows.push_back(r);
	}
	return inf;
}

LogisticFit fit_logistic_newton(const Eigen::MatrixXd &X, const std::vector<int> &y, int max_iter, double tol,
                                CancelCheck cancel, std::vector<IterationLog> *log)
{
	const Eigen::Index n = X.rows(), p = X.cols();
	Eigen::VectorXd theta = Eigen::VectorXd::Zero(p + 1); // (b, w)
	auto deviance = [&](const Eigen::VectorXd &th, Eigen::VectorXd &eta) {
		eta = (X * th.tail(p)).array() + th(0);
		double d = 0;
		for (Eigen::Index i = 0; i < n; i++)
			d += 2 * (y[static_cast<size_t>(i)] ? log1pexp(-eta(i)) : log1pexp(eta(i)));
		return d;
	};
	Eigen::VectorXd eta;
	double dev = deviance(theta, eta);
	LogisticFit fit;
	fit.result.converged = false;
	const double eps = std::max(tol, 1e-14);
	for (int it = 1; it <= max_iter; it++) {
		check_cancel(cancel);
		Eigen::VectorXd wt(n), r(n);
		for (Eigen::Index i = 0; i < n; i++) {
			const double pi = sigmoid(eta(i));
			wt(i) = pi * (1 - pi);
			r(i) = y[static_cast<size_t>(i)] - pi;
		}
		Eigen::VectorXd g(p + 1);
		g(0) = r.sum();
		g.tail(p) = X.transpose() * r;
		Eigen::MatrixXd H(p + 1, p + 1);
		H(0, 0) = wt.sum();
		const Eigen::VectorXd xw = X.transpose() * wt;
		H.block(1, 0, p, 1) = xw;
		H.block(0, 1, 1, p) = xw.transpose();
		H.block(1, 1, p, p) = X.transpose() * (wt.asDiagonal() * X);
		Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(H);
		Eigen::VectorXd step = cod.solve(g);
		// step halving while the deviance does not decrease (glm's safeguard)
		Eigen::VectorXd next = theta + step, eta_next;
		double dev_next = deviance(next, eta_next);
		for (int h = 0; h < 30 && !(dev_next <= dev * (1 + 1e-15) + 1e-300); h++) {
			step /= 2;
			next = theta + step;
			dev_next = deviance(next, eta_next);
		}
		const double change = std::fabs(dev_next - dev) / (std::fabs(dev_next) + 0.1);
		theta = next;
		eta = eta_next;
		dev = dev_next;
		fit.result.iterations = it;
		if (log != nullptr)
			log->push_back({it, dev / (2.0 * static_cast<double>(n)), g.cwiseAbs().maxCoeff() / static_cast<double>(n)});
		if (change < eps && step.cwiseAbs().maxCoeff() <= 1e-8 * (1 + theta.cwiseAbs().maxCoeff())) {
			fit.result.converged = true;
			break;
		}
	}
	fit.result.loss = dev / (2.0 * static_cast<double>(n));
	fit.W = theta.tail(p);
	fit.b = Eigen::VectorXd::Constant(1, theta(0));
	return fit;
}

std::string Inference::to_json() const
{
	JsonWriter j;
	j.begin_object();
	j.key("statistic").value(statistic);
	j.key("n").value(n);
	j.key("rank").value(rank);
	j.key("df_residual").value(df_residual);
	if (statistic == "t") {
		j.key("sigma").value(sigma);
		j.key("r2").value(r2);
		j.key("adj_r2").value(adj_r2);
		j.key("f_statistic").value(f_statistic);
		j.key("f_df").begin_array().value(f_df1).value(f_df2).end_array();
		j.key("f_p_value").value(f_p_value);
	} else {
		j.key("deviance").value(deviance);
		j.key("null_deviance").value(null_deviance);
		j.key("df_null").value(df_null);
		j.key("iterations").value(iterations);
		j.key("converged").value(converged);
		j.key("fitted_0_or_1").value(fitted_0_or_1);
	}
	j.key("log_likelihood").value(log_likelihood);
	j.key("aic").value(aic);
	j.key("bic").value(bic);
	if (!aliased.empty()) {
		j.key("aliased").begin_array();
		for (const auto &a : aliased)
			j.value(a);
		j.end_array();
	}
	j.key("coefficients").begin_array();
	for (const CoefficientRow &r : rows) {
		j.begin_object();
		j.key("term").value(r.term);
		j.key("estimate").value(r.estimate);
		j.key("std_error").value(r.std_error);
		j.key("statistic").value(r.statistic);
		j.key("p_value").value(r.p_value);
		j.key("conf_low").value(r.conf_low);
		j.key("conf_high").value(r.conf_high);
		j.end_object();
	}
	j.end_array();
	j.end_object();
	return j.str();
}

} // namespace pgml
