// pg_ml core: double-double arithmetic (about 32 significant digits).
//
// A value is the unevaluated sum hi + lo of two doubles with |lo| <= ulp(hi) / 2. The
// operations are the error-free transformations of Dekker and Knuth (two_sum, two_prod with
// a fused multiply-add) and the "accurate" addition of Bailey's QD library; their relative
// error is a small multiple of 2^-104. The precise least-squares pass (precise_moments.hpp,
// least_squares.hpp) uses them for the statistics and the solve of an ill-conditioned fit.
//
// The code relies on IEEE round-to-nearest double arithmetic, evaluated as written: it must
// not be compiled with -ffast-math (or -ffp-contract=fast would only make two_sum and
// quick_two_sum wrong if they multiplied; they do not).
#pragma once

#include <cmath>

namespace pgml {

struct DD {
	double hi = 0, lo = 0;
	constexpr DD() = default;
	constexpr DD(double h) : hi(h) {} // NOLINT: a double is a double-double
	constexpr DD(double h, double l) : hi(h), lo(l) {}
	double value() const { return hi + lo; }
};

namespace dd {

inline DD two_sum(double a, double b)
{
	const double s = a + b;
	const double bb = s - a;
	return {s, (a - (s - bb)) + (b - bb)};
}

// |a| >= |b| (or a == 0)
inline DD quick_two_sum(double a, double b)
{
	const double s = a + b;
	return {s, b - (s - a)};
}

inline DD two_prod(double a, double b)
{
	const double p = a * b;
	return {p, std::fma(a, b, -p)};
}

inline DD add(DD a, DD b)
{
	DD s = two_sum(a.hi, b.hi);
	DD t = two_sum(a.lo, b.lo);
	s.lo += t.hi;
	s = quick_two_sum(s.hi, s.lo);
	s.lo += t.lo;
	return quick_two_sum(s.hi, s.lo);
}

inline DD neg(DD a) { return {-a.hi, -a.lo}; }

inline DD mul(DD a, DD b)
{
	DD p = two_prod(a.hi, b.hi);
	p.lo += a.hi * b.lo + a.lo * b.hi;
	return quick_two_sum(p.hi, p.lo);
}

inline DD mul(DD a, double b)
{
	DD p = two_prod(a.hi, b);
	p.lo += a.lo * b;
	return quick_two_sum(p.hi, p.lo);
}

inline DD div(DD a, DD b)
{
	const double q1 = a.hi / b.hi;
	DD r = add(a, neg(mul(b, q1)));
	const double q2 = r.hi / b.hi;
	r = add(r, neg(mul(b, q2)));
	const double q3 = r.hi / b.hi;
	return add(quick_two_sum(q1, q2), DD(q3));
}

inline DD sqrt(DD a)
{
	if (!(a.hi > 0))
		return DD(a.hi == 0 ? 0.0 : std::sqrt(a.hi)); // 0, or NaN for a negative value
	const double x = std::sqrt(a.hi);
	const DD x2 = two_prod(x, x);
	const double e = ((a.hi - x2.hi) - x2.lo + a.lo) / (2 * x);
	return quick_two_sum(x, e);
}

} // namespace dd

inline DD operator+(DD a, DD b) { return dd::add(a, b); }
inline DD operator-(DD a, DD b) { return dd::add(a, dd::neg(b)); }
inline DD operator-(DD a) { return dd::neg(a); }
inline DD operator*(DD a, DD b) { return dd::mul(a, b); }
inline DD operator*(DD a, double b) { return dd::mul(a, b); }
inline DD operator/(DD a, DD b) { return dd::div(a, b); }
inline DD &operator+=(DD &a, DD b) { return a = dd::add(a, b); }
inline DD &operator-=(DD &a, DD b) { return a = dd::add(a, dd::neg(b)); }
inline bool operator<(DD a, DD b) { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo); }
inline DD abs(DD a) { return a.hi < 0 || (a.hi == 0 && a.lo < 0) ? dd::neg(a) : a; }

} // namespace pgml
