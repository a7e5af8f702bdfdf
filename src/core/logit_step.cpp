#include "logit_step.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace pgml::logit_step {

using aggstate::is_count;
using aggstate::kMaxCount;

namespace {

constexpr double kParamsVersion = 1.0;
constexpr int kMaxFeatures = 100000;
constexpr double kObjectiveSlack = 1e-10; // relative rise of the objective that still counts as no rise (rounding)

// state header
enum : size_t { H_MAGIC, H_VERSION, H_P, H_ROWS, H_LOSS, kHeader = 6 };

[[noreturn]] void bad_params(const char *why)
{
	throw Error(ErrorCode::InvalidParameter, "invalid ml.logit_step parameters", why,
	            "ml.logit_step is called by ml_train; its first argument holds the coefficients of the step.");
}

[[noreturn]] void corrupt(const char *why) { aggstate::corrupt(kKind, why); }

size_t q_of(int p) { return static_cast<size_t>(p) + 1; }

} // namespace

const aggstate::Kind kKind = {"logit_step", "ml.logit_step", 7064.0, 1.0, kHeader};

size_t Shape::length() const { return kHeader + q_of(p) + q_of(p) * q_of(p); }

std::vector<double> Params::encode() const
{
	std::vector<double> v = {kParamsVersion, static_cast<double>(p), b};
	v.insert(v.end(), w.data(), w.data() + w.size());
	return v;
}

Params Params::decode(const double *v, size_t n)
{
	if (n < 3 || v[0] != kParamsVersion)
		bad_params("The parameter array has the wrong length or version.");
	if (!is_count(v[1], kMaxFeatures))
		bad_params("The feature count is out of range.");
	Params out;
	out.p = static_cast<int>(v[1]);
	if (n != 3 + static_cast<size_t>(out.p))
		bad_params("The array's length does not match its feature count.");
	out.b = v[2];
	out.w = Eigen::Map<const Eigen::VectorXd>(v + 3, out.p);
	if (!std::isfinite(out.b) || !out.w.allFinite())
		bad_params("A coefficient is not finite.");
	return out;
}

void init(double *state, const Shape &s)
{
	std::fill(state, state + s.length(), 0.0);
	aggstate::write_header(kKind, state);
	state[H_P] = s.p;
}

void add_row(double *state, size_t len, const Params &params, const double *z, int y)
{
	const size_t q = q_of(params.p);
	if (len != Shape{params.p}.length() || state[H_MAGIC] != kKind.magic || state[H_P] != params.p)
		corrupt("The state was made for other coefficients.");
	Eigen::Map<const Eigen::VectorXd> zv(z, params.p);
	const double eta = params.b + params.w.dot(zv);
	// loss = log(1 + e^eta) - y eta; sigmoid and its derivative sharing e^-|eta|
	const double e = std::exp(-std::fabs(eta));
	const double s = (eta >= 0 ? 1.0 : e) / (1.0 + e);
	const double r = s - (y == 1 ? 1.0 : 0.0);
	const double d = s * (1.0 - s);
	state[H_ROWS] += 1;
	state[H_LOSS] += std::max(eta, 0.0) + std::log1p(e) - (y == 1 ? eta : 0.0);
	double *g = state + kHeader;
	double *h = g + q;
	const Eigen::Index p = static_cast<Eigen::Index>(q) - 1;
	Eigen::Map<Eigen::VectorXd>(g, p) += r * zv;
	g[p] += r;
	// upper triangle, row j from column j (Eigen's vectorised axpy); the intercept is the last
	// row and column
	for (Eigen::Index j = 0; j < p; j++) {
		const double a = d * z[j];
		double *hj = h + j * static_cast<Eigen::Index>(q);
		Eigen::Map<Eigen::VectorXd>(hj + j, p - j) += a * zv.tail(p - j);
		hj[p] += a;
	}
	h[p * static_cast<Eigen::Index>(q) + p] += d;
}

Shape shape_of(const double *state, size_t len)
{
	aggstate::check_header(kKind, state, len);
	if (!is_count(state[H_P], kMaxFeatures))
		corrupt("The header's feature count is out of range.");
	Shape s;
	s.p = static_cast<int>(state[H_P]);
	aggstate::check_length(kKind, s.length(), len);
	if (!is_count(state[H_ROWS], kMaxCount) || !(state[H_LOSS] >= 0))
		corrupt("A counter is out of range.");
	return s;
}

void relayout(const double *from, size_t from_len, double *to, const Shape &s)
{
	const Shape f = shape_of(from, from_len);
	if (f.p != s.p)
		throw Error(ErrorCode::Internal, "logit_step state cannot change its shape");
	std::copy(from, from + from_len, to);
}

Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen)
{
	const Shape sa = shape_of(a, alen), sb = shape_of(b, blen);
	if (sa.p != sb.p)
		corrupt("The two states were made for different coefficients.");
	return sa;
}

void merge(double *a, size_t alen, const double *b, size_t blen)
{
	(void)merged_shape(a, alen, b, blen);
	a[H_ROWS] += b[H_ROWS];
	a[H_LOSS] += b[H_LOSS];
	for (size_t i = kHeader; i < alen; i++)
		a[i] += b[i];
}

Sums decode(const double *state, size_t len)
{
	const Shape shape = shape_of(state, len);
	const Eigen::Index q = static_cast<Eigen::Index>(q_of(shape.p));
	Sums s;
	s.p = shape.p;
	s.rows = static_cast<int64_t>(state[H_ROWS]);
	s.loss = state[H_LOSS];
	s.grad = Eigen::Map<const Eigen::VectorXd>(state + kHeader, q);
	Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> h(state + kHeader + q, q, q);
	s.hess = h.triangularView<Eigen::Upper>();
	s.hess.triangularView<Eigen::StrictlyLower>() = s.hess.transpose().triangularView<Eigen::StrictlyLower>();
	if (!std::isfinite(s.loss) || !s.grad.allFinite() || !s.hess.allFinite())
		corrupt("A sum is not finite.");
	return s;
}

Fit::Fit(int p, double C, int max_iter, double prior)
	: p_(p), C_(C), max_scans_(std::min(std::max(max_iter, 1), kMaxScans))
{
	if (p < 0 || !(C > 0))
		throw Error(ErrorCode::Internal, "logit step: bad fit parameters");
	cur_.p = p;
	cur_.w = Eigen::VectorXd::Zero(p);
	// the class prior's log odds: the optimum's intercept when the features are centred
	const double pr = std::min(std::max(prior, 1e-12), 1 - 1e-12);
	cur_.b = std::log(pr / (1 - pr));
	start_ = cur_;
}

void Fit::start_on_sample(double fraction, int64_t rows)
{
	if (scans_ > 0 || sample_scans_ > 0 || !(fraction > 0 && fraction < 1))
		throw Error(ErrorCode::Internal, "logit step: a sample after the first scan");
	sampling_ = true;
	fraction_ = fraction;
	full_rows_ = rows;
}

void Fit::end_sample()
{
	// the next rung: a sample ten times larger while that stays small, then every row
	if (fraction_ * kSampleGrowth <= kMaxSampleFraction)
		fraction_ *= kSampleGrowth;
	else
		sampling_ = false;
	level_scans_ = 0;
	prev_step_ = 0;
	have_base_ = false; // the objective is another sample's
	halvings_ = 0;
}

bool Fit::newton(const Sums &s, double scale, double tol, ProgressCallback progress)
{
	const double n = std::max(1.0, static_cast<double>(s.rows) * scale);
	const double f = scale * s.loss + (std::isinf(C_) ? 0.0 : cur_.w.squaredNorm() / (2 * C_));
	// the penalised gradient and Hessian at cur_
	Eigen::VectorXd g = scale * s.grad;
	Eigen::MatrixXd H = scale * s.hess;
	if (!std::isinf(C_)) {
		g.head(p_) += cur_.w / C_;
		H.diagonal().head(p_).array() += 1.0 / C_;
	}
	if (!sampling_ && log_.size() < 100000)
		log_.push_back({scans_, f / n, g.lpNorm<Eigen::Infinity>() / n, NAN});
	report_iteration(progress, scans_ + sample_scans_, "loss", f / n);
	if (have_base_ && !(f <= base_obj_ + kObjectiveSlack * (std::fabs(base_obj_) + 1))) {
		// the full step raised the objective: halve it (from the accepted coefficients)
		if (halvings_ >= kMaxHalvings) {
			cur_ = base_;
			return true; // no step lowers it: the optimum to rounding
		}
		halvings_++;
		prev_step_ = 0; // a damped step says nothing of the convergence rate
		step_ *= 0.5;
		cur_.w = base_.w + step_.head(p_);
		cur_.b = base_.b + step_(p_);
		return false;
	}
	halvings_ = 0;
	Eigen::LDLT<Eigen::MatrixXd> ldlt(H);
	Eigen::VectorXd step = ldlt.solve(-g);
	if (ldlt.info() != Eigen::Success || !step.allFinite())
		throw Error(ErrorCode::DataException, "logistic_regression's Newton step failed",
		            "The Hessian of the penalised log likelihood is not positive definite.",
		            "Check the features for values of extreme magnitude, or use a smaller C.");
	base_ = cur_;
	base_obj_ = f;
	have_base_ = true;
	step_ = step;
	cur_.w = base_.w + step.head(p_);
	cur_.b = base_.b + step(p_);
	const double size = std::max(1.0, std::max(cur_.w.lpNorm<Eigen::Infinity>(), std::fabs(cur_.b)));
	const double len = step.lpNorm<Eigen::Infinity>();
	const double prev = prev_step_;
	prev_step_ = sampling_ ? 0.0 : len;
	if (len <= tol * size)
		return true;
	// quadratic convergence: the error after this step is about c |step|^2, and the last two
	// full steps show c (|step| / |previous|^2)
	return !sampling_ && prev > 0 && len <= 0.1 * prev && len * len * len <= kPredictedError * size * prev * prev;
}

void Fit::add(const Sums &s, ProgressCallback progress)
{
	if (done_)
		throw Error(ErrorCode::Internal, "logit step after the fit finished");
	if (s.p != p_)
		throw Error(ErrorCode::Internal, "logit step sums do not match the coefficients");
	if (sampling_) {
		sample_scans_++;
		level_scans_++;
		if (s.rows < kMinSampleRows) {
			cur_ = start_; // too few rows to say much: the full scans start where they would have
			sampling_ = false;
			have_base_ = false;
			return;
		}
		const double scale = static_cast<double>(full_rows_) / static_cast<double>(s.rows);
		if (newton(s, scale, kSampleStepTol, progress) || level_scans_ >= kMaxSampleScans)
			end_sample(); // the next rung goes on from cur_
		return;
	}
	if (rows_ >= 0 && s.rows != rows_)
		throw Error(ErrorCode::DataException, "the relation changed while logistic_regression was trained",
		            "The relation is scanned once per Newton step: one step saw " + std::to_string(rows_) +
		                " training rows, another " + std::to_string(s.rows) +
		                ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Train on a table (or a materialized view), or SET pg_ml.stats_aggregate = off to read the "
		            "rows once.");
	rows_ = s.rows;
	scans_++;
	if (newton(s, 1.0, kStepTol, progress)) {
		// quadratic convergence: cur_ is the optimum to about the square of the last step
		converged_ = true;
		done_ = true;
		return;
	}
	if (scans_ >= max_scans_)
		done_ = true;
}

} // namespace pgml::logit_step
