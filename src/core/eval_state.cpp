#include "eval_state.hpp"

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "data.hpp"
#include "metrics.hpp"

namespace pgml::evalstate {

using aggstate::counter;
using aggstate::is_count;
using aggstate::kMaxCount;

namespace {

constexpr int kMaxClasses = 1 << 16;
constexpr int kMaxSample = 1 << 20;
constexpr double kLogLossEps = 1e-15; // as ClassificationMetrics::log_loss

enum : size_t {
	H_MAGIC,
	H_VERSION,
	H_K,
	H_PROBA,
	H_CAP,
	H_SAMPLE_K,
	H_N0,
	H_N1,
	H_LL0,
	H_LL1,
	H_NLL0,
	H_NLL1,
	H_S0, // sample rows held
	H_S1,
	H_NO_SPLIT,
	H_NULL_TARGET,
	H_UNKNOWN,
	kHeader = 20
};

[[noreturn]] void corrupt(const char *why) { aggstate::corrupt(kKind, why); }

struct Layout {
	size_t conf[2], su[2], srow[2], end;
	explicit Layout(const Shape &s)
	{
		const size_t K = static_cast<size_t>(s.K), cap = static_cast<size_t>(s.cap);
		size_t o = kHeader;
		for (int t = 0; t < 2; t++)
			conf[t] = o, o += K * K;
		aggstate::place_samples(&o, cap, K + 1, su, srow);
		end = o;
	}
};

// Split t's roc_auc sample: rows of the truth and the K probabilities (a const state is only
// read through it).
aggstate::SampleHeap sample(const double *buf, const Shape &s, const Layout &L, int t)
{
	return aggstate::SampleHeap(kKind, const_cast<double *>(buf), t == 0 ? H_S0 : H_S1, L.su[t], L.srow[t],
	                            static_cast<size_t>(s.K) + 1, s.cap, s.sample_k);
}

} // namespace

const aggstate::Kind kKind = {"eval_stats", "ml.eval_stats", 7063.0, 1.0, kHeader};

double row_draw(const stats::Params &p, const stats::Row &row)
{
	// the same checks and hash as Trainer::add_batch and stats::add_row
	uint64_t h = kRowHashSeed;
	if (p.has_target) {
		if (row.target_null)
			return NAN;
		if (p.target_categorical) {
			h = hash_target_str(h, row.target_str, row.target_len);
		} else {
			if (!std::isfinite(row.target))
				return NAN;
			h = hash_target_num(h, row.target);
		}
	}
	const size_t nf = static_cast<size_t>(p.nfeat);
	for (size_t c = 0; c < nf; c++)
		if (!p.categorical[c] && !row.isnull[c] && !std::isfinite(row.num[c]))
			return NAN;
	for (size_t c = 0; c < nf; c++)
		h = p.categorical[c] ? hash_str(h, c, row.isnull[c] ? nullptr : row.str[c], row.isnull[c] ? 0 : row.len[c])
		                     : hash_num(h, c, row.isnull[c], row.num[c]);
	return split_draw(h, p.seed);
}

size_t Shape::length() const { return Layout(*this).end; }

std::vector<double> Params::encode() const { return {1.0, static_cast<double>(sample_k)}; }

Params Params::decode(const double *p, size_t n)
{
	if (n != 2 || p[0] != 1.0)
		throw Error(ErrorCode::InvalidParameter, "invalid ml.eval_stats parameters",
		            "The parameter array has the wrong length or version.",
		            "ml.eval_stats is called by ml_train; its first argument is {1, sample size}.");
	if (!is_count(p[1], kMaxSample))
		throw Error(ErrorCode::InvalidParameter, "invalid ml.eval_stats parameters",
		            "The sample size is not an integer from 0 to " + std::to_string(kMaxSample) + ".",
		            "ml.eval_stats is called by ml_train; its first argument is {1, sample size}.");
	Params out;
	out.sample_k = static_cast<int>(p[1]);
	return out;
}

Shape initial_shape(int K, bool proba, const Params &p)
{
	if (K < 1 || K > kMaxClasses)
		throw Error(ErrorCode::InvalidParameter, "invalid ml.eval_stats classes",
		            "There must be from 1 to " + std::to_string(kMaxClasses) + " classes.");
	Shape s;
	s.K = K;
	s.proba = proba;
	s.sample_k = proba ? p.sample_k : 0;
	s.cap = aggstate::initial_cap(s.sample_k);
	return s;
}

void init(double *buf, const Shape &s)
{
	const Layout L(s);
	std::fill(buf, buf + L.end, 0.0);
	aggstate::write_header(kKind, buf);
	buf[H_K] = s.K;
	buf[H_PROBA] = s.proba ? 1 : 0;
	buf[H_CAP] = s.cap;
	buf[H_SAMPLE_K] = s.sample_k;
}

Shape shape_of(const double *buf, size_t len)
{
	aggstate::check_header(kKind, buf, len);
	if (!is_count(buf[H_K], kMaxClasses) || buf[H_K] < 1 || !is_count(buf[H_PROBA], 1) ||
	    !is_count(buf[H_SAMPLE_K], kMaxSample) || !is_count(buf[H_CAP], buf[H_SAMPLE_K]))
		corrupt("The header's sizes are out of range.");
	Shape s;
	s.K = static_cast<int>(buf[H_K]);
	s.proba = buf[H_PROBA] != 0;
	s.cap = static_cast<int>(buf[H_CAP]);
	s.sample_k = static_cast<int>(buf[H_SAMPLE_K]);
	if (!s.proba && s.sample_k != 0)
		corrupt("A state without probabilities has a sample.");
	aggstate::check_length(kKind, s.length(), len);
	for (size_t f : {H_N0, H_N1, H_NO_SPLIT, H_NULL_TARGET, H_UNKNOWN})
		if (!is_count(buf[f], kMaxCount))
			corrupt("A counter is out of range.");
	if (!is_count(buf[H_S0], s.cap) || !is_count(buf[H_S1], s.cap) || buf[H_S0] > buf[H_N0] || buf[H_S1] > buf[H_N1])
		corrupt("A sample count is out of range.");
	for (size_t f : {H_LL0, H_LL1, H_NLL0, H_NLL1})
		if (!(buf[f] >= 0) || !std::isfinite(buf[f]))
			corrupt("A loss sum is not a finite non-negative number.");
	return s;
}

void add_skipped(double *buf, const Shape &, Skip why)
{
	buf[why == Skip::NoSplit ? H_NO_SPLIT : why == Skip::NullTarget ? H_NULL_TARGET : H_UNKNOWN] += 1;
}

size_t add_row(double *buf, const Shape &s, int t, int truth, int predicted, const double *proba, double u,
               Shape *need)
{
	if ((t != 0 && t != 1) || truth < 0 || truth >= s.K || predicted < 0 || predicted >= s.K)
		throw Error(ErrorCode::Internal, "eval_stats row out of range");
	const Layout L(s);
	const bool sampled = s.proba && s.sample_k > 0;
	if (sampled && sample(buf, s, L, t).full()) {
		*need = s;
		need->cap = aggstate::grown_cap(s.cap, s.sample_k);
		return need->length();
	}
	const size_t K = static_cast<size_t>(s.K);
	buf[L.conf[t] + static_cast<size_t>(truth) * K + static_cast<size_t>(predicted)] += 1;
	buf[t == 0 ? H_N0 : H_N1] += 1;
	if (s.proba) {
		double row_sum = 0;
		for (size_t c = 0; c < K; c++)
			row_sum += std::clamp(proba[c], kLogLossEps, 1.0 - kLogLossEps);
		const double pt = proba[static_cast<size_t>(truth)];
		buf[t == 0 ? H_LL0 : H_LL1] -= std::log(std::clamp(pt, kLogLossEps, 1.0 - kLogLossEps) / row_sum);
		buf[t == 0 ? H_NLL0 : H_NLL1] -= std::log(std::max(pt, 1e-300));
	}
	if (sampled)
		sample(buf, s, L, t).insert(u, [&](double *dst) {
			dst[0] = truth;
			std::copy(proba, proba + K, dst + 1);
		});
	return 0;
}

void relayout(const double *from, size_t from_len, double *to, const Shape &s)
{
	const Shape f = shape_of(from, from_len);
	if (f.K != s.K || f.proba != s.proba || f.sample_k != s.sample_k || s.cap < f.cap)
		throw Error(ErrorCode::Internal, "eval_stats state cannot shrink");
	const Layout A(f), B(s);
	init(to, s);
	for (size_t h = H_N0; h < kHeader; h++)
		to[h] = from[h];
	const size_t K = static_cast<size_t>(s.K);
	for (int t = 0; t < 2; t++) {
		std::copy(from + A.conf[t], from + A.conf[t] + K * K, to + B.conf[t]);
		aggstate::SampleHeap dst = sample(to, s, B, t);
		sample(from, f, A, t).copy_to(dst);
	}
}

Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen)
{
	const Shape sa = shape_of(a, alen), sb = shape_of(b, blen);
	if (sa.K != sb.K || sa.proba != sb.proba || sa.sample_k != sb.sample_k)
		corrupt("The two states were made for different models.");
	Shape out = sa;
	for (size_t f : {H_S0, H_S1})
		out.cap = aggstate::merged_cap(out.cap, sa.sample_k, counter(a, f) + counter(b, f));
	return out;
}

void merge(double *a, size_t alen, const double *b, size_t blen)
{
	const Shape sa = shape_of(a, alen), sb = shape_of(b, blen);
	if (sa.K != sb.K || sa.proba != sb.proba || sa.sample_k != sb.sample_k)
		corrupt("The two states were made for different models.");
	const Layout La(sa), Lb(sb);
	const size_t K = static_cast<size_t>(sa.K);
	for (int t = 0; t < 2; t++) {
		const aggstate::SampleHeap from = sample(b, sb, Lb, t);
		aggstate::SampleHeap to = sample(a, sa, La, t);
		for (size_t i = 0; i < K * K; i++)
			a[La.conf[t] + i] += b[Lb.conf[t] + i];
		for (size_t r = 0; r < from.size(); r++)
			if (!is_count(from.row(r)[0], static_cast<double>(K) - 1))
				corrupt("A sampled row's class is out of range.");
		to.merge_from(from);
	}
	for (size_t h : {H_N0, H_N1, H_LL0, H_LL1, H_NLL0, H_NLL1, H_NO_SPLIT, H_NULL_TARGET, H_UNKNOWN})
		a[h] += b[h];
}

Decoded decode(const double *buf, size_t len)
{
	Decoded d;
	d.shape = shape_of(buf, len);
	const Shape &s = d.shape;
	const Layout L(s);
	const Eigen::Index K = s.K;
	for (int t = 0; t < 2; t++) {
		Split &sp = d.split[t];
		sp.n = static_cast<int64_t>(buf[t == 0 ? H_N0 : H_N1]);
		sp.confusion = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
			buf + L.conf[t], K, K);
		double total = 0;
		for (Eigen::Index i = 0; i < K * K; i++) {
			const double v = buf[L.conf[t] + static_cast<size_t>(i)];
			if (!is_count(v, kMaxCount))
				corrupt("A confusion count is out of range.");
			total += v;
		}
		if (total != static_cast<double>(sp.n))
			corrupt("The confusion counts do not add up to the row count.");
		sp.log_loss_sum = buf[t == 0 ? H_LL0 : H_LL1];
		sp.nll_sum = buf[t == 0 ? H_NLL0 : H_NLL1];
		const size_t n = counter(buf, t == 0 ? H_S0 : H_S1), w = static_cast<size_t>(K) + 1;
		for (size_t r = 0; r < n; r++) {
			const double *row = buf + L.srow[t] + r * w;
			if (!is_count(row[0], static_cast<double>(K) - 1))
				corrupt("A sampled row's class is out of range.");
			const double u = buf[L.su[t] + r];
			if (!(u >= 0 && u <= 1)) // a row's draw: split_json orders the sample by it
				corrupt("A sampled row's draw is out of range.");
			sp.sample_truth.push_back(static_cast<int>(row[0]));
			sp.sample_proba.insert(sp.sample_proba.end(), row + 1, row + w);
			sp.sample_u.push_back(u);
		}
	}
	d.no_split = static_cast<int64_t>(buf[H_NO_SPLIT]);
	d.null_target = static_cast<int64_t>(buf[H_NULL_TARGET]);
	d.unknown_label = static_cast<int64_t>(buf[H_UNKNOWN]);
	return d;
}

std::string split_json(const Split &s, const std::vector<std::string> &classes, bool proba)
{
	double auc = NAN, ll = NAN;
	int64_t sample_rows = -1;
	const size_t K = classes.size();
	if (proba && s.n > 0 && K >= 2) {
		ll = s.log_loss_sum / static_cast<double>(s.n);
		ClassificationMetrics cm(classes);
		// the sample's rows in draw order (the AUC does not depend on the order)
		std::vector<size_t> idx(s.sample_truth.size());
		for (size_t i = 0; i < idx.size(); i++)
			idx[i] = i;
		std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return s.sample_u[a] < s.sample_u[b]; });
		for (size_t i : idx)
			cm.add(s.sample_truth[i], s.sample_truth[i], s.sample_proba.data() + i * K);
		auc = cm.roc_auc();
		if (cm.count() < s.n)
			sample_rows = cm.count();
	}
	return classification_json(classes, s.confusion, s.n, auc, ll, sample_rows);
}

} // namespace pgml::evalstate
