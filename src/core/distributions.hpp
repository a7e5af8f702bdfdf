// pg_ml core: the distribution functions behind coefficient statistics (p-values and
// confidence intervals): the regularized incomplete beta function, Student's t, Fisher's F
// and the standard normal.
#pragma once

namespace pgml {
namespace dist {

// The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1 (NaN outside):
// Lentz's continued fraction, on the side of x where it converges fast.
double incomplete_beta(double a, double b, double x);

// Student's t with df > 0 degrees of freedom: P(T <= t), the two-sided tail P(|T| >= |t|),
// and the quantile q with P(T <= q) = p (0 < p < 1).
double t_cdf(double t, double df);
double t_two_sided(double t, double df);
double t_quantile(double p, double df);

// Fisher's F with (d1, d2) degrees of freedom: the upper tail P(F >= f).
double f_upper(double f, double d1, double d2);

// The standard normal: P(Z <= z), the two-sided tail P(|Z| >= |z|), the quantile.
double normal_cdf(double z);
double normal_two_sided(double z);
double normal_quantile(double p);

} // namespace dist
} // namespace pgml
