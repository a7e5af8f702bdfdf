// pg_ml core: distribution functions (see distributions.hpp).
#include "distributions.hpp"

#include <cfloat>
#include <cmath>

namespace pgml {
namespace dist {

namespace {

// The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz).
double beta_fraction(double a, double b, double x)
{
	const double tiny = 1e-300, eps = 1e-16;
	const double qab = a + b, qap = a + 1, qam = a - 1;
	double c = 1, d = 1 - qab * x / qap;
	if (std::fabs(d) < tiny)
		d = tiny;
	d = 1 / d;
	double h = d;
	for (int m = 1; m <= 10000; m++) {
		const double m2 = 2.0 * m;
		double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
		d = 1 + aa * d;
		if (std::fabs(d) < tiny)
			d = tiny;
		c = 1 + aa / c;
		if (std::fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		h *= d * c;
		aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
		d = 1 + aa * d;
		if (std::fabs(d) < tiny)
			d = tiny;
		c = 1 + aa / c;
		if (std::fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		const double del = d * c;
		h *= del;
		if (std::fabs(del - 1) < eps)
			break;
	}
	return h;
}

} // namespace

double incomplete_beta(double a, double b, double x)
{
	if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
		return NAN;
	if (x == 0 || x == 1)
		return x;
	const double lbt = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
	const double bt = std::exp(lbt);
	if (x < (a + 1) / (a + b + 2))
		return bt * beta_fraction(a, b, x) / a;
	return 1 - bt * beta_fraction(b, a, 1 - x) / b;
}

double t_two_sided(double t, double df)
{
	if (std::isnan(t) || !(df > 0))
		return NAN;
	if (std::isinf(t))
		return 0;
	// P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2); for large |t| the argument is
	// computed without cancellation
	const double t2 = t * t;
	const double x = df / (df + t2);
	if (x < 1e-300)
		return 0;
	return incomplete_beta(df / 2, 0.5, x);
}

double t_cdf(double t, double df)
{
	const double tail = t_two_sided(t, df) / 2;
	return t < 0 ? tail : 1 - tail;
}

double t_quantile(double p, double df)
{
	if (!(p > 0) || !(p < 1) || !(df > 0))
		return NAN;
	if (p == 0.5)
		return 0;
	// solve for the upper tail q = P(T >= t) with t > 0, by bisection on a bracket (the tail
	// is monotone), then Newton steps on the density
	const double q = p < 0.5 ? p : 1 - p;
	double lo = 0, hi = 1;
	while (t_two_sided(hi, df) / 2 > q && hi < 1e300)
		hi *= 2;
	double t = hi;
	for (int i = 0; i < 2000; i++) {
		t = 0.5 * (lo + hi);
		if (t_two_sided(t, df) / 2 > q)
			lo = t;
		else
			hi = t;
		if (hi - lo <= 4 * DBL_EPSILON * hi)
			break;
	}
	t = 0.5 * (lo + hi);
	return p < 0.5 ? -t : t;
}

double f_upper(double f, double d1, double d2)
{
	if (std::isnan(f) || !(d1 > 0) || !(d2 > 0))
		return NAN;
	if (f <= 0)
		return 1;
	if (std::isinf(f))
		return 0;
	return incomplete_beta(d2 / 2, d1 / 2, d2 / (d2 + d1 * f));
}

double normal_cdf(double z)
{
	return 0.5 * std::erfc(-z / std::sqrt(2.0));
}

double normal_two_sided(double z)
{
	return std::erfc(std::fabs(z) / std::sqrt(2.0));
}

double normal_quantile(double p)
{
	if (!(p > 0) || !(p < 1))
		return NAN;
	if (p == 0.5)
		return 0;
	// bisection on the upper tail (erfc is accurate far out), as t_quantile
	const double q = p < 0.5 ? p : 1 - p;
	double lo = 0, hi = 1;
	while (0.5 * std::erfc(hi / std::sqrt(2.0)) > q && hi < 100)
		hi *= 2;
	for (int i = 0; i < 2000; i++) {
		const double z = 0.5 * (lo + hi);
		if (0.5 * std::erfc(z / std::sqrt(2.0)) > q)
			lo = z;
		else
			hi = z;
		if (hi - lo <= 4 * DBL_EPSILON * hi)
			break;
	}
	const double z = 0.5 * (lo + hi);
	return p < 0.5 ? -z : z;
}

} // namespace dist
} // namespace pgml
