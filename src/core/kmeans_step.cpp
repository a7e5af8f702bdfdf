#include "kmeans_step.hpp"

#include <algorithm>
#include <cmath>

#include "data.hpp"

namespace pgml::kmeans_step {

using aggstate::is_count;
using aggstate::kMaxCount;

namespace {

constexpr double kParamsVersion = 1.0;
constexpr int kMaxColumns = 10000;
constexpr int kMaxFeatures = 1000000;
constexpr int kMaxClusters = 10000;
constexpr size_t kFixed = 6;     // params: version, columns, p, k, seed, test_size
constexpr size_t kPerColumn = 5; // categorical, first_feature, impute, nlevels, null_feature
constexpr double kRepeat = 1e-20;  // a squared shift this small (relative) is rounding: the centres repeat

// state header
enum : size_t {
	H_MAGIC,
	H_VERSION,
	H_K,
	H_P,
	H_ROWS_TRAIN,
	H_ROWS_TEST,
	H_INERTIA_TRAIN,
	H_INERTIA_TEST,
	H_DROPPED,
	kHeader = 10
};

[[noreturn]] void bad_params(const char *why)
{
	throw Error(ErrorCode::InvalidParameter, "invalid ml.kmeans_step parameters", why,
	            "ml.kmeans_step is called by ml_train; its first argument describes the centres and the columns "
	            "that follow.");
}

[[noreturn]] void corrupt(const char *why) { aggstate::corrupt(kKind, why); }

} // namespace

const aggstate::Kind kKind = {"kmeans_step", "ml.kmeans_step", 7062.0, 1.0, kHeader};

size_t Shape::length() const
{
	return kHeader + static_cast<size_t>(k) + static_cast<size_t>(k) * static_cast<size_t>(p);
}

int Params::total_levels() const
{
	int n = 0;
	for (const Column &c : columns)
		n += c.categorical ? c.nlevels : 0;
	return n;
}

std::vector<double> Params::encode() const
{
	std::vector<double> v = {kParamsVersion,
	                         static_cast<double>(columns.size()),
	                         static_cast<double>(p),
	                         static_cast<double>(k),
	                         static_cast<double>(seed & ((uint64_t(1) << 53) - 1)),
	                         test_size};
	for (const Column &c : columns) {
		v.push_back(c.categorical ? 1 : 0);
		v.push_back(c.first_feature);
		v.push_back(c.categorical ? 0 : c.impute);
		v.push_back(c.categorical ? c.nlevels : 0);
		v.push_back(c.categorical ? c.null_feature : -1);
	}
	v.insert(v.end(), center.begin(), center.end());
	v.insert(v.end(), scale.begin(), scale.end());
	for (Eigen::Index c = 0; c < centres.rows(); c++)
		for (Eigen::Index j = 0; j < centres.cols(); j++)
			v.push_back(centres(c, j));
	return v;
}

Params Params::decode(const double *v, size_t n)
{
	if (n < kFixed || v[0] != kParamsVersion)
		bad_params("The parameter array has the wrong length or version.");
	if (!is_count(v[1], kMaxColumns) || v[1] < 1 || !is_count(v[2], kMaxFeatures) || v[2] < 1 ||
	    !is_count(v[3], kMaxClusters) || v[3] < 1)
		bad_params("The column, feature or cluster count is out of range.");
	Params out;
	const size_t ncol = static_cast<size_t>(v[1]), p = static_cast<size_t>(v[2]), k = static_cast<size_t>(v[3]);
	out.p = static_cast<int>(p);
	out.k = static_cast<int>(k);
	if (n != kFixed + kPerColumn * ncol + 2 * p + k * p)
		bad_params("The array's length does not match its counts.");
	if (const char *why = aggstate::read_split(v + 4, 9007199254740991.0, &out.seed, &out.test_size))
		bad_params(why);
	const double *c = v + kFixed;
	for (size_t i = 0; i < ncol; i++, c += kPerColumn) {
		Column col;
		if (c[0] != 0 && c[0] != 1)
			bad_params("A column kind is neither numeric nor categorical.");
		col.categorical = c[0] == 1;
		if (!is_count(c[1], static_cast<double>(p) - 1))
			bad_params("A column's first feature is out of range.");
		col.first_feature = static_cast<int>(c[1]);
		if (col.categorical) {
			if (!is_count(c[3], static_cast<double>(p - static_cast<size_t>(col.first_feature))))
				bad_params("A column's level count is out of range.");
			col.nlevels = static_cast<int>(c[3]);
			if (c[4] != -1 && !is_count(c[4], static_cast<double>(p) - 1))
				bad_params("A column's NULL feature is out of range.");
			col.null_feature = static_cast<int>(c[4]);
		} else {
			if (!std::isfinite(c[2]))
				bad_params("A column's imputed value is not finite.");
			col.impute = c[2];
		}
		out.columns.push_back(col);
	}
	out.center.assign(c, c + p);
	out.scale.assign(c + p, c + 2 * p);
	for (size_t j = 0; j < p; j++)
		if (!std::isfinite(out.center[j]) || !std::isfinite(out.scale[j]) || !(out.scale[j] > 0))
			bad_params("A feature's centre or scale is not finite and positive.");
	const double *cc = c + 2 * p;
	out.centres.resize(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(p));
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < p; j++) {
			double x = cc[i * p + j];
			if (!std::isfinite(x))
				bad_params("A centre is not finite.");
			out.centres(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = x;
		}
	return out;
}

Step::Step(Params params, const std::vector<std::string> &levels) : p_(std::move(params))
{
	if (static_cast<size_t>(p_.total_levels()) != levels.size())
		bad_params("The level list does not match the columns' level counts.");
	level_store_ = levels;
	level_index_.resize(p_.columns.size());
	size_t l = 0;
	for (size_t c = 0; c < p_.columns.size(); c++) {
		const Params::Column &col = p_.columns[c];
		if (!col.categorical)
			continue;
		for (int i = 0; i < col.nlevels; i++, l++)
			if (!level_index_[c].emplace(std::string_view(level_store_[l]), col.first_feature + i).second)
				bad_params("A column lists a level twice.");
	}
	base_.resize(static_cast<size_t>(p_.p));
	for (size_t j = 0; j < base_.size(); j++)
		base_[j] = -p_.center[j] / p_.scale[j];
	z_.resize(base_.size());
}

void Step::init(double *state) const { kmeans_step::init(state, shape()); }

void init(double *state, const Shape &s)
{
	std::fill(state, state + s.length(), 0.0);
	aggstate::write_header(kKind, state);
	state[H_K] = s.k;
	state[H_P] = s.p;
}

void Step::add_row(double *state, size_t len, const Row &row)
{
	if (len != state_length() || state[H_MAGIC] != kKind.magic || state[H_K] != p_.k || state[H_P] != p_.p)
		corrupt("The state was made for other centres.");
	const size_t nc = p_.columns.size();
	for (size_t c = 0; c < nc; c++)
		if (!p_.columns[c].categorical && !row.isnull[c] && !std::isfinite(row.num[c])) {
			state[H_DROPPED] += 1;
			return;
		}
	// the row reader's hash (clustering: no target), for the same train / test split
	uint64_t h = kRowHashSeed;
	std::copy(base_.begin(), base_.end(), z_.begin());
	for (size_t c = 0; c < nc; c++) {
		const Params::Column &col = p_.columns[c];
		const size_t f = static_cast<size_t>(col.first_feature);
		if (col.categorical) {
			int feature = -1;
			if (row.isnull[c]) {
				h = hash_str(h, c, nullptr, 0);
				feature = col.null_feature;
			} else {
				h = hash_str(h, c, row.str[c], row.len[c]);
				auto it = level_index_[c].find(std::string_view(row.str[c], row.len[c]));
				if (it != level_index_[c].end())
					feature = it->second;
			}
			if (feature >= 0)
				z_[static_cast<size_t>(feature)] = (1.0 - p_.center[static_cast<size_t>(feature)]) / p_.scale[static_cast<size_t>(feature)];
		} else {
			const double x = row.isnull[c] ? col.impute : row.num[c];
			h = hash_num(h, c, row.isnull[c], row.isnull[c] ? NAN : row.num[c]);
			z_[f] = (x - p_.center[f]) / p_.scale[f];
		}
	}
	const bool is_test = is_test_row(h, p_.seed, p_.test_size);
	// the nearest centre by exact distance, the first of equally near ones (as predict)
	const Eigen::Index k = p_.k, p = p_.p;
	Eigen::Index best = 0;
	double bd = INFINITY;
	for (Eigen::Index c = 0; c < k; c++) {
		double d = 0;
		for (Eigen::Index j = 0; j < p; j++) {
			double t = z_[static_cast<size_t>(j)] - p_.centres(c, j);
			d += t * t;
		}
		if (d < bd) {
			bd = d;
			best = c;
		}
	}
	if (is_test) {
		state[H_ROWS_TEST] += 1;
		state[H_INERTIA_TEST] += bd;
		return;
	}
	state[H_ROWS_TRAIN] += 1;
	state[H_INERTIA_TRAIN] += bd;
	state[kHeader + static_cast<size_t>(best)] += 1;
	double *s = state + kHeader + static_cast<size_t>(k) + static_cast<size_t>(best) * static_cast<size_t>(p);
	for (Eigen::Index j = 0; j < p; j++)
		s[j] += z_[static_cast<size_t>(j)];
}

Shape shape_of(const double *state, size_t len)
{
	aggstate::check_header(kKind, state, len);
	if (!is_count(state[H_K], kMaxClusters) || state[H_K] < 1 || !is_count(state[H_P], kMaxFeatures) ||
	    state[H_P] < 1)
		corrupt("The header's sizes are out of range.");
	Shape s;
	s.k = static_cast<int>(state[H_K]);
	s.p = static_cast<int>(state[H_P]);
	aggstate::check_length(kKind, s.length(), len);
	if (!is_count(state[H_ROWS_TRAIN], kMaxCount) || !is_count(state[H_ROWS_TEST], kMaxCount) ||
	    !is_count(state[H_DROPPED], kMaxCount) || !(state[H_INERTIA_TRAIN] >= 0) || !(state[H_INERTIA_TEST] >= 0))
		corrupt("A counter is out of range.");
	double total = 0;
	for (int c = 0; c < s.k; c++) {
		double n = state[kHeader + static_cast<size_t>(c)];
		if (!is_count(n, kMaxCount))
			corrupt("A cluster's row count is out of range.");
		total += n;
	}
	if (total != state[H_ROWS_TRAIN])
		corrupt("The clusters' row counts do not add up.");
	return s;
}

void relayout(const double *from, size_t from_len, double *to, const Shape &s)
{
	const Shape f = shape_of(from, from_len);
	if (f.k != s.k || f.p != s.p)
		throw Error(ErrorCode::Internal, "kmeans_step state cannot change its shape");
	std::copy(from, from + from_len, to);
}

Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen)
{
	const Shape sa = shape_of(a, alen), sb = shape_of(b, blen);
	if (sa.k != sb.k || sa.p != sb.p)
		corrupt("The two states were made for different centres.");
	return sa;
}

void merge(double *a, size_t alen, const double *b, size_t blen)
{
	(void)merged_shape(a, alen, b, blen);
	for (size_t i = H_ROWS_TRAIN; i <= H_DROPPED; i++)
		a[i] += b[i];
	for (size_t i = kHeader; i < alen; i++)
		a[i] += b[i];
}

Sums decode(const double *state, size_t len)
{
	Sums s;
	const Shape shape = shape_of(state, len);
	s.k = shape.k;
	s.p = shape.p;
	s.rows_train = static_cast<int64_t>(state[H_ROWS_TRAIN]);
	s.rows_test = static_cast<int64_t>(state[H_ROWS_TEST]);
	s.dropped_nonfinite = static_cast<int64_t>(state[H_DROPPED]);
	s.inertia_train = state[H_INERTIA_TRAIN];
	s.inertia_test = state[H_INERTIA_TEST];
	s.counts = Eigen::Map<const Eigen::VectorXd>(state + kHeader, s.k);
	s.sums = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
		state + kHeader + s.k, s.k, s.p);
	if (!s.sums.allFinite())
		corrupt("A feature sum is not finite.");
	return s;
}

Fit::Fit(Preprocessor prep, const std::vector<ColumnInfo> &features, Eigen::MatrixXd centres, double tol_abs,
         int max_iter, uint64_t seed, double test_size)
	: prep_(std::move(prep)), tol_abs_(tol_abs), max_updates_(std::min(std::max(max_iter, 1), kMaxUpdates))
{
	const int p = prep_.p();
	if (centres.cols() != p || centres.rows() < 1 || features.size() != prep_.columns.size())
		throw Error(ErrorCode::Internal, "k-means step: the centres do not match the preprocessing");
	step_.seed = seed;
	step_.test_size = test_size;
	step_.p = p;
	step_.k = static_cast<int>(centres.rows());
	for (size_t c = 0; c < features.size(); c++) {
		const FittedColumn &fc = prep_.columns[c];
		Params::Column col;
		col.categorical = features[c].categorical();
		col.first_feature = fc.first_feature;
		if (col.categorical) {
			col.nlevels = static_cast<int>(fc.levels.size());
			col.null_feature = fc.null_feature;
			levels_.insert(levels_.end(), fc.levels.begin(), fc.levels.end());
			if (fc.n_features == 0)
				col.first_feature = 0; // no features (cannot happen with a fitted column, but stay in range)
		} else {
			col.impute = fc.impute_value;
		}
		step_.columns.push_back(col);
	}
	step_.center.assign(prep_.center.data(), prep_.center.data() + p);
	step_.scale.assign(prep_.scale.data(), prep_.scale.data() + p);
	step_.centres = std::move(centres);
}

void Fit::add(const Sums &s, ProgressCallback progress)
{
	if (done_)
		throw Error(ErrorCode::Internal, "k-means step after the fit finished");
	if (s.k != step_.k || s.p != step_.p)
		throw Error(ErrorCode::Internal, "k-means step sums do not match the centres");
	scans_++;
	if (log_.size() < 100000)
		log_.push_back({scans_, s.inertia_train, NAN, NAN});
	report_iteration(progress, scans_, "inertia", s.inertia_train);
	if (final_scan_ || s.rows_train == 0) {
		last_ = s;
		done_ = true;
		return;
	}
	if (accepted_ && s.inertia_train > accepted_inertia_) {
		// the extrapolated centres are worse: the plain Lloyd step from the accepted ones
		// (which cannot raise the inertia) instead
		omega_ = 1;
		step_.centres = accepted_means_;
		if (scans_ >= max_updates_)
			final_scan_ = true;
		return;
	}
	accepted_ = true;
	accepted_inertia_ = s.inertia_train;
	last_ = s;
	// the means of the clusters; an empty cluster keeps its centre
	accepted_means_ = step_.centres;
	for (Eigen::Index c = 0; c < s.k; c++)
		if (s.counts(c) > 0)
			accepted_means_.row(c) = s.sums.row(c) / s.counts(c);
	const double shift = (accepted_means_ - step_.centres).squaredNorm();
	if (shift <= kRepeat * (1 + step_.centres.squaredNorm())) {
		// the centres repeat (up to the rounding of the sums: the labels did not change): this
		// scan already labelled the rows with the final centres
		converged_ = true;
		done_ = true;
		return;
	}
	if (shift <= tol_abs_)
		converged_ = true;
	if (converged_ || scans_ >= max_updates_) {
		// one more scan labels the rows with the final centres (exact inertia and counts)
		step_.centres = accepted_means_;
		final_scan_ = true;
		return;
	}
	// over-relaxed Lloyd step: C + omega (means - C), omega growing while the steps are accepted
	step_.centres += omega_ * (accepted_means_ - step_.centres);
	omega_ = std::min(kMaxOmega, omega_ + kOmegaStep);
}

} // namespace pgml::kmeans_step
