#include "stats_state.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "data.hpp"

namespace pgml::stats {

namespace {

constexpr int kMaxFeatures = 10000;
constexpr int kMaxBlock = 4096;
constexpr int kMaxSample = 1 << 20;

// header fields
enum : size_t {
	H_MAGIC,
	H_VERSION,
	H_NFEAT,
	H_K,
	H_HAS_TARGET,
	H_Q,
	H_BLOCK,
	H_CAP,
	H_SAMPLE_K,
	H_ROWS_IN,
	H_SKIPPED_NULL_TARGET,
	H_DROPPED_NONFINITE,
	H_FP_LO,
	H_FP_HI,
	H_BUF_TRAIN,
	H_BUF_TEST,
	H_SAMPLE_TRAIN,
	H_SAMPLE_TEST,
	H_N_TRAIN,
	H_N_TEST,
	H_NONFINITE_COL,  // 1 + the first column (the target is nfeat) with a non-finite value; 0: none
	H_NONFINITE_KIND, // 1: NaN, 2: Infinity
	kHeader = 24
};

[[noreturn]] void corrupt(const char *why) { aggstate::corrupt(kKind, why); }

// Offsets of the regions of a state of shape s.
struct Layout {
	size_t ind, nulls, min, max;
	size_t mean[2], M[2], buf[2], su[2], srow[2];
	size_t end;
	explicit Layout(const Shape &s)
	{
		const size_t k = static_cast<size_t>(s.k), q = static_cast<size_t>(s.q), B = static_cast<size_t>(s.block),
		             cap = static_cast<size_t>(s.cap);
		size_t o = kHeader;
		ind = o, o += k;
		nulls = o, o += k;
		min = o, o += k;
		max = o, o += k;
		for (int t = 0; t < 2; t++) {
			mean[t] = o, o += q;
			M[t] = o, o += q * q;
		}
		for (int t = 0; t < 2; t++)
			buf[t] = o, o += B * q;
		aggstate::place_samples(&o, cap, k + 1, su, srow);
		end = o;
	}
};

using aggstate::counter;
using aggstate::is_count;
using aggstate::kMaxCount;

// Chan's pairwise update of (n, mean, M) with a block's (nb, bmean, Mb); M lower-authoritative.
void chan_merge(double &n, Eigen::Map<Eigen::VectorXd> mean, Eigen::Map<Eigen::MatrixXd> M, double nb,
                const Eigen::VectorXd &bmean, const Eigen::MatrixXd &Mb)
{
	if (nb == 0)
		return;
	if (n == 0) {
		mean = bmean;
		M.triangularView<Eigen::Lower>() = Mb;
		n = nb;
		return;
	}
	const double total = n + nb;
	Eigen::VectorXd delta = bmean - mean;
	M.triangularView<Eigen::Lower>() += Mb;
	M.selfadjointView<Eigen::Lower>().rankUpdate(delta, n * nb / total);
	mean += delta * (nb / total);
	n = total;
}

// Folds split t's pending rows into its moments.
void flush(double *buf, const Shape &s, const Layout &L, int t)
{
	const size_t field = t == 0 ? H_BUF_TRAIN : H_BUF_TEST;
	const Eigen::Index rows = static_cast<Eigen::Index>(buf[field]);
	if (rows == 0)
		return;
	const Eigen::Index q = s.q;
	Eigen::Map<const Eigen::MatrixXd> X(buf + L.buf[t], q, rows); // one row per column
	Eigen::VectorXd bmean = X.rowwise().mean();
	Eigen::MatrixXd C = X.colwise() - bmean;
	Eigen::MatrixXd Mb = Eigen::MatrixXd::Zero(q, q);
	if (q > 0) // no slots (categorical columns only): Eigen's rank update of nothing binds a null reference
		Mb.selfadjointView<Eigen::Lower>().rankUpdate(C);
	chan_merge(buf[t == 0 ? H_N_TRAIN : H_N_TEST], Eigen::Map<Eigen::VectorXd>(buf + L.mean[t], q),
	           Eigen::Map<Eigen::MatrixXd>(buf + L.M[t], q, q), static_cast<double>(rows), bmean, Mb);
	buf[field] = 0;
}

// Split t's MAE sample (a const state is only read through it).
aggstate::SampleHeap sample(const double *buf, const Shape &s, const Layout &L, int t)
{
	return aggstate::SampleHeap(kKind, const_cast<double *>(buf), t == 0 ? H_SAMPLE_TRAIN : H_SAMPLE_TEST,
	                            L.su[t], L.srow[t], static_cast<size_t>(s.k) + 1, s.cap, s.sample_k);
}

void add_fingerprint(double *buf, uint64_t v)
{
	// two exact 32-bit halves, so the sum (mod 2^64) survives a float8[] round trip
	double lo = buf[H_FP_LO] + static_cast<double>(v & 0xFFFFFFFFull);
	double hi = buf[H_FP_HI] + static_cast<double>(v >> 32);
	if (lo >= 4294967296.0) {
		lo -= 4294967296.0;
		hi += 1;
	}
	if (hi >= 4294967296.0)
		hi -= 4294967296.0;
	buf[H_FP_LO] = lo;
	buf[H_FP_HI] = hi;
}

int used_slots(const double *buf, const Shape &s, const Layout &L)
{
	int used = s.k + (s.has_target ? 1 : 0);
	for (int c = 0; c < s.k; c++)
		if (buf[L.ind + static_cast<size_t>(c)] >= 0)
			used++;
	return used;
}

// A non-finite value in column col (nfeat: the target): the row is dropped, and unless
// nonfinite => 'drop' the trainer reports the first such column after the scan.
void note_nonfinite(double *buf, const Params &p, size_t col, double v)
{
	buf[H_ROWS_IN] += 1;
	buf[H_DROPPED_NONFINITE] += 1;
	if (p.drop_nonfinite)
		return;
	const double code = static_cast<double>(col) + 1;
	if (buf[H_NONFINITE_COL] == 0 || code < buf[H_NONFINITE_COL]) {
		buf[H_NONFINITE_COL] = code;
		buf[H_NONFINITE_KIND] = std::isnan(v) ? 1 : 2;
	}
}

// Places a row without NULLs in its block row v (zeroed) and, for a training row, widens the
// columns' ranges. Returns the numeric columns' count.
size_t place(double *buf, const Layout &L, const Params &p, const Row &row, int t, double *v)
{
	const size_t nf = static_cast<size_t>(p.nfeat);
	size_t kc = 0;
	if (p.k == p.nfeat) { // numeric columns only: no test per column
		for (size_t c = 0; c < nf; c++)
			v[c] = row.num[c];
		kc = nf;
	} else {
		for (size_t c = 0; c < nf; c++)
			if (!p.categorical[c])
				v[kc++] = row.num[c];
	}
	if (t == 0) {
		double *mn = buf + L.min, *mx = buf + L.max;
		for (size_t j = 0; j < kc; j++) {
			mn[j] = std::min(mn[j], v[j]);
			mx[j] = std::max(mx[j], v[j]);
		}
	}
	return kc;
}

// place() for a row with NULLs: a NULL sets its column's indicator slot (and counts).
size_t place_with_nulls(double *buf, const Layout &L, const Params &p, const Row &row, int t, double *v)
{
	const size_t nf = static_cast<size_t>(p.nfeat);
	size_t kc = 0;
	for (size_t c = 0; c < nf; c++) {
		if (p.categorical[c])
			continue;
		if (row.isnull[c]) {
			v[static_cast<size_t>(buf[L.ind + kc])] = 1.0;
			if (t == 0)
				buf[L.nulls + kc] += 1;
		} else {
			const double x = row.num[c];
			v[kc] = x;
			if (t == 0) {
				buf[L.min + kc] = std::min(buf[L.min + kc], x);
				buf[L.max + kc] = std::max(buf[L.max + kc], x);
			}
		}
		kc++;
	}
	return kc;
}

} // namespace

const aggstate::Kind kKind = {"train_stats", "ml.train_stats", 7061.0, 1.0, kHeader};

size_t Shape::length() const { return Layout(*this).end; }

std::vector<double> Params::encode() const
{
	std::vector<double> p = {1.0,
	                         static_cast<double>(nfeat),
	                         has_target ? 1.0 : 0.0,
	                         target_categorical ? 1.0 : 0.0,
	                         static_cast<double>(seed & ((uint64_t(1) << 53) - 1)),
	                         test_size,
	                         drop_nonfinite ? 1.0 : 0.0,
	                         static_cast<double>(sample_k),
	                         static_cast<double>(block),
	                         tau_train,
	                         tau_test};
	for (uint8_t c : categorical)
		p.push_back(c ? 1.0 : 0.0);
	return p;
}

Params Params::decode(const double *p, size_t n)
{
	auto bad = [](const char *why) {
		throw Error(ErrorCode::InvalidParameter, "invalid ml.train_stats parameters", why,
		            "ml.train_stats is called by ml_train; its first argument describes the columns that follow.");
	};
	constexpr size_t kFixed = 11;
	if (n < kFixed || p[0] != 1.0)
		bad("The parameter array has the wrong length or version.");
	Params out;
	if (!is_count(p[1], kMaxFeatures) || p[1] < 1 || n != kFixed + static_cast<size_t>(p[1]))
		bad("The feature count does not match the parameter array.");
	out.nfeat = static_cast<int>(p[1]);
	out.has_target = p[2] != 0;
	out.target_categorical = p[3] != 0;
	if (const char *why = aggstate::read_split(p + 4, 9007199254740992.0, &out.seed, &out.test_size))
		bad(why);
	out.drop_nonfinite = p[6] != 0;
	if (!is_count(p[7], kMaxSample) || !is_count(p[8], kMaxBlock) || p[8] < 1)
		bad("The sample size or block size is out of range.");
	out.sample_k = static_cast<int>(p[7]);
	out.block = static_cast<int>(p[8]);
	if (!(p[9] > 0 && p[9] <= 1) || !(p[10] > 0 && p[10] <= 1))
		bad("A sampling threshold is not in (0, 1].");
	out.tau_train = p[9];
	out.tau_test = p[10];
	for (int c = 0; c < out.nfeat; c++) {
		out.categorical.push_back(p[kFixed + static_cast<size_t>(c)] != 0 ? 1 : 0);
		if (!out.categorical.back())
			out.k++;
	}
	return out;
}

Shape initial_shape(const Params &p)
{
	Shape s;
	s.nfeat = p.nfeat;
	s.k = p.k;
	s.has_target = p.has_target && !p.target_categorical;
	s.q = s.k + (s.has_target ? 1 : 0);
	s.block = p.block;
	// a sample with a numeric target (MAE) or without a target (k-means starts from it)
	s.sample_k = s.has_target || !p.has_target ? p.sample_k : 0;
	s.cap = aggstate::initial_cap(s.sample_k);
	return s;
}

void init(double *buf, const Shape &s)
{
	Layout L(s);
	std::fill(buf, buf + L.end, 0.0);
	aggstate::write_header(kKind, buf);
	buf[H_NFEAT] = s.nfeat;
	buf[H_K] = s.k;
	buf[H_HAS_TARGET] = s.has_target ? 1 : 0;
	buf[H_Q] = s.q;
	buf[H_BLOCK] = s.block;
	buf[H_CAP] = s.cap;
	buf[H_SAMPLE_K] = s.sample_k;
	for (int c = 0; c < s.k; c++) {
		buf[L.ind + static_cast<size_t>(c)] = -1;
		buf[L.min + static_cast<size_t>(c)] = INFINITY;
		buf[L.max + static_cast<size_t>(c)] = -INFINITY;
	}
}

Shape shape_of(const double *buf, size_t len)
{
	aggstate::check_header(kKind, buf, len);
	Shape s;
	if (!is_count(buf[H_NFEAT], kMaxFeatures) || !is_count(buf[H_K], buf[H_NFEAT]) ||
	    !is_count(buf[H_Q], 2.0 * kMaxFeatures + 1) || !is_count(buf[H_BLOCK], kMaxBlock) || buf[H_BLOCK] < 1 ||
	    !is_count(buf[H_SAMPLE_K], kMaxSample) || !is_count(buf[H_CAP], buf[H_SAMPLE_K]))
		corrupt("The header's sizes are out of range.");
	s.nfeat = static_cast<int>(buf[H_NFEAT]);
	s.k = static_cast<int>(buf[H_K]);
	s.has_target = buf[H_HAS_TARGET] != 0;
	s.q = static_cast<int>(buf[H_Q]);
	s.block = static_cast<int>(buf[H_BLOCK]);
	s.cap = static_cast<int>(buf[H_CAP]);
	s.sample_k = static_cast<int>(buf[H_SAMPLE_K]);
	const int base = s.k + (s.has_target ? 1 : 0);
	if (s.q < base || s.q > base + s.k)
		corrupt("The slot count does not match the columns.");
	aggstate::check_length(kKind, s.length(), len);
	Layout L(s);
	// every indicator slot is in range and used once
	std::vector<uint8_t> used(static_cast<size_t>(s.q), 0);
	int indicators = 0;
	for (int c = 0; c < s.k; c++) {
		double v = buf[L.ind + static_cast<size_t>(c)];
		if (v == -1)
			continue;
		if (!is_count(v, s.q - 1) || v < base || used[static_cast<size_t>(v)])
			corrupt("An indicator slot is out of range.");
		used[static_cast<size_t>(v)] = 1;
		indicators++;
	}
	if (base + indicators > s.q)
		corrupt("The indicator slots do not match the slot count.");
	if (!is_count(buf[H_BUF_TRAIN], s.block - 1) || !is_count(buf[H_BUF_TEST], s.block - 1) ||
	    !is_count(buf[H_SAMPLE_TRAIN], s.cap) || !is_count(buf[H_SAMPLE_TEST], s.cap) ||
	    !is_count(buf[H_N_TRAIN], kMaxCount) || !is_count(buf[H_N_TEST], kMaxCount) || !is_count(buf[H_ROWS_IN], kMaxCount) ||
	    !is_count(buf[H_SKIPPED_NULL_TARGET], kMaxCount) || !is_count(buf[H_DROPPED_NONFINITE], kMaxCount) ||
	    !is_count(buf[H_FP_LO], 4294967295.0) || !is_count(buf[H_FP_HI], 4294967295.0) ||
	    !is_count(buf[H_NONFINITE_COL], s.nfeat + 1.0) || !is_count(buf[H_NONFINITE_KIND], 2))
		corrupt("A counter is out of range.");
	return s;
}

size_t add_row(double *buf, const Shape &s, const Params &p, const Row &row, Shape *need)
{
	if (s.nfeat != p.nfeat || s.k != p.k)
		corrupt("The state was made for other columns.");
	const Layout L(s);
	const size_t nf = static_cast<size_t>(p.nfeat);

	// the same checks and hash as the row reader (Trainer::add_batch)
	uint64_t h = kRowHashSeed;
	if (p.has_target) {
		if (row.target_null) {
			buf[H_ROWS_IN] += 1;
			buf[H_SKIPPED_NULL_TARGET] += 1;
			return 0;
		}
		if (p.target_categorical) {
			h = hash_target_str(h, row.target_str, row.target_len);
		} else {
			if (!std::isfinite(row.target)) {
				note_nonfinite(buf, p, static_cast<size_t>(p.nfeat), row.target);
				return 0;
			}
			h = hash_target_num(h, row.target);
		}
	}
	// one pass: the row's hash, its NULLs, its first non-finite value (the hash has no effect
	// on the state, so a row dropped for a non-finite value may have been hashed first)
	bool any_null = false;
	for (size_t c = 0; c < nf; c++) {
		const bool isnull = row.isnull[c];
		any_null |= isnull;
		if (p.categorical[c]) {
			h = hash_str(h, c, isnull ? nullptr : row.str[c], isnull ? 0 : row.len[c]);
			continue;
		}
		if (!isnull && !std::isfinite(row.num[c])) {
			note_nonfinite(buf, p, c, row.num[c]);
			return 0;
		}
		h = hash_num(h, c, isnull, row.num[c]);
	}

	// does the state need to grow first? (a relaid state has free slots for the new indicators)
	Shape want = s;
	if (any_null) {
		int free = s.q - used_slots(buf, s, L);
		size_t kc = 0;
		for (size_t c = 0; c < nf; c++) {
			if (p.categorical[c])
				continue;
			if (row.isnull[c] && buf[L.ind + kc] < 0) {
				if (free > 0) {
					buf[L.ind + kc] = s.q - free;
					free--;
				} else {
					want.q++;
				}
			}
			kc++;
		}
	}
	const bool is_test = is_test_row(h, p.seed, p.test_size);
	const int t = is_test ? 1 : 0;
	double u = 0;
	const bool sampled = s.sample_k > 0 && (u = sample_draw(h, p.seed)) < (is_test ? p.tau_test : p.tau_train);
	if (sampled && sample(buf, s, L, t).full())
		want.cap = aggstate::grown_cap(s.cap, s.sample_k);
	if (want.q != s.q || want.cap != s.cap) {
		*need = want;
		return want.length();
	}

	buf[H_ROWS_IN] += 1;
	add_fingerprint(buf, mix64(h));
	const size_t q = static_cast<size_t>(s.q);
	const size_t bfield = t == 0 ? H_BUF_TRAIN : H_BUF_TEST;
	double *v = buf + L.buf[t] + counter(buf, bfield) * q;
	std::fill(v, v + q, 0.0);
	const size_t kc = any_null ? place_with_nulls(buf, L, p, row, t, v) : place(buf, L, p, row, t, v);
	if (s.has_target)
		v[kc] = row.target;
	buf[bfield] += 1;
	if (counter(buf, bfield) == static_cast<size_t>(s.block))
		flush(buf, s, L, t);
	if (sampled)
		sample(buf, s, L, t).insert(u, [&](double *dst) {
			size_t j = 0;
			for (size_t c = 0; c < nf; c++)
				if (!p.categorical[c])
					dst[j++] = row.isnull[c] ? NAN : row.num[c];
			dst[j] = row.target;
		});
	return 0;
}

void relayout(const double *from, size_t from_len, double *to, const Shape &s)
{
	const Shape f = shape_of(from, from_len);
	if (s.nfeat != f.nfeat || s.k != f.k || s.has_target != f.has_target || s.q < f.q || s.cap < f.cap ||
	    s.block != f.block || s.sample_k != f.sample_k)
		throw Error(ErrorCode::Internal, "train_stats state cannot shrink");
	const Layout A(f), B(s);
	init(to, s);
	// counters (the header's shape fields are s's)
	for (size_t h = H_ROWS_IN; h < kHeader; h++)
		to[h] = from[h];
	const size_t k = static_cast<size_t>(s.k), fq = static_cast<size_t>(f.q), q = static_cast<size_t>(s.q);
	std::copy(from + A.ind, from + A.ind + 4 * k, to + B.ind); // ind, nulls, min, max are contiguous
	for (int t = 0; t < 2; t++) {
		std::copy(from + A.mean[t], from + A.mean[t] + fq, to + B.mean[t]);
		for (size_t j = 0; j < fq; j++)
			std::copy(from + A.M[t] + j * fq, from + A.M[t] + (j + 1) * fq, to + B.M[t] + j * q);
		for (size_t r = 0; r < counter(from, t == 0 ? H_BUF_TRAIN : H_BUF_TEST); r++)
			std::copy(from + A.buf[t] + r * fq, from + A.buf[t] + (r + 1) * fq, to + B.buf[t] + r * q);
		aggstate::SampleHeap dst = sample(to, s, B, t);
		sample(from, f, A, t).copy_to(dst);
	}
	// slots f.q .. s.q-1 are free: add_row() / merge() hand them to the columns that need them
}

namespace {

// Assigns the free slots of a freshly relaid state to the columns that need them.
void assign_indicators(double *buf, const Shape &s, const std::vector<size_t> &cols)
{
	const Layout L(s);
	int used = used_slots(buf, s, L);
	for (size_t c : cols)
		if (buf[L.ind + c] < 0)
			buf[L.ind + c] = used++;
	if (used != s.q)
		throw Error(ErrorCode::Internal, "train_stats indicator slots do not add up");
}

} // namespace

Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen)
{
	Shape sa = shape_of(a, alen), sb = shape_of(b, blen);
	if (sa.nfeat != sb.nfeat || sa.k != sb.k || sa.has_target != sb.has_target || sa.block != sb.block ||
	    sa.sample_k != sb.sample_k)
		corrupt("The two states were made for different columns.");
	const Layout La(sa), Lb(sb);
	Shape out = sa;
	for (int c = 0; c < sa.k; c++)
		if (a[La.ind + static_cast<size_t>(c)] < 0 && b[Lb.ind + static_cast<size_t>(c)] >= 0)
			out.q++;
	const size_t na = std::max(counter(a, H_SAMPLE_TRAIN), counter(a, H_SAMPLE_TEST));
	const size_t nb = std::max(counter(b, H_SAMPLE_TRAIN), counter(b, H_SAMPLE_TEST));
	out.cap = aggstate::merged_cap(sa.cap, sa.sample_k, na + nb);
	return out;
}

namespace {

// The moments of split t of state b (pending rows folded in), in b's slots.
Moments split_moments(const double *b, const Shape &s, const Layout &L, int t)
{
	const Eigen::Index q = s.q;
	Eigen::MatrixXd M = Eigen::Map<const Eigen::MatrixXd>(b + L.M[t], q, q);
	M.triangularView<Eigen::StrictlyUpper>() = M.transpose().triangularView<Eigen::StrictlyUpper>();
	Moments m = Moments::from(static_cast<int64_t>(b[t == 0 ? H_N_TRAIN : H_N_TEST]),
	                          Eigen::Map<const Eigen::VectorXd>(b + L.mean[t], q), M);
	const Eigen::Index rows = static_cast<Eigen::Index>(b[t == 0 ? H_BUF_TRAIN : H_BUF_TEST]);
	if (rows > 0)
		m.add_block(Eigen::Map<const Eigen::MatrixXd>(b + L.buf[t], q, rows).transpose());
	return m;
}

} // namespace

void merge(double *a, size_t alen, const double *b, size_t blen)
{
	const Shape sb = shape_of(b, blen);
	const Layout Lb(sb);
	// give a the indicators b has
	{
		Shape sa = shape_of(a, alen);
		const Layout La(sa);
		std::vector<size_t> cols;
		for (int c = 0; c < sa.k; c++)
			if (a[La.ind + static_cast<size_t>(c)] < 0 && b[Lb.ind + static_cast<size_t>(c)] >= 0)
				cols.push_back(static_cast<size_t>(c));
		if (!cols.empty())
			assign_indicators(a, sa, cols); // a was relaid to the merged shape: the slots are free
	}
	const Shape sa = shape_of(a, alen);
	const Layout La(sa);
	if (sa.nfeat != sb.nfeat || sa.k != sb.k || sa.has_target != sb.has_target || sa.sample_k != sb.sample_k)
		corrupt("The two states were made for different columns.");
	// b's slots in a
	std::vector<Eigen::Index> map(static_cast<size_t>(sb.q));
	const int base = sb.k + (sb.has_target ? 1 : 0);
	for (int j = 0; j < base; j++)
		map[static_cast<size_t>(j)] = j;
	for (int c = 0; c < sb.k; c++) {
		double slot = b[Lb.ind + static_cast<size_t>(c)];
		if (slot >= 0)
			map[static_cast<size_t>(slot)] = static_cast<Eigen::Index>(a[La.ind + static_cast<size_t>(c)]);
	}
	const Eigen::Index q = sa.q;
	for (int t = 0; t < 2; t++) {
		flush(a, sa, La, t);
		Moments mb = split_moments(b, sb, Lb, t);
		if (mb.n() == 0)
			continue;
		Eigen::VectorXd mean = Eigen::VectorXd::Zero(q);
		Eigen::MatrixXd M = Eigen::MatrixXd::Zero(q, q);
		Eigen::MatrixXd Cb = mb.comoment();
		for (Eigen::Index i = 0; i < sb.q; i++) {
			mean(map[static_cast<size_t>(i)]) = mb.mean()(i);
			for (Eigen::Index j = 0; j < sb.q; j++)
				M(map[static_cast<size_t>(i)], map[static_cast<size_t>(j)]) = Cb(i, j);
		}
		chan_merge(a[t == 0 ? H_N_TRAIN : H_N_TEST], Eigen::Map<Eigen::VectorXd>(a + La.mean[t], q),
		           Eigen::Map<Eigen::MatrixXd>(a + La.M[t], q, q), static_cast<double>(mb.n()), mean, M);
		sample(a, sa, La, t).merge_from(sample(b, sb, Lb, t));
	}
	const size_t k = static_cast<size_t>(sa.k);
	for (size_t c = 0; c < k; c++) {
		a[La.nulls + c] += b[Lb.nulls + c];
		a[La.min + c] = std::min(a[La.min + c], b[Lb.min + c]);
		a[La.max + c] = std::max(a[La.max + c], b[Lb.max + c]);
	}
	a[H_ROWS_IN] += b[H_ROWS_IN];
	a[H_SKIPPED_NULL_TARGET] += b[H_SKIPPED_NULL_TARGET];
	a[H_DROPPED_NONFINITE] += b[H_DROPPED_NONFINITE];
	if (b[H_NONFINITE_COL] > 0 && (a[H_NONFINITE_COL] == 0 || b[H_NONFINITE_COL] < a[H_NONFINITE_COL])) {
		a[H_NONFINITE_COL] = b[H_NONFINITE_COL];
		a[H_NONFINITE_KIND] = b[H_NONFINITE_KIND];
	}
	add_fingerprint(a, static_cast<uint64_t>(b[H_FP_LO]) | (static_cast<uint64_t>(b[H_FP_HI]) << 32));
}

Decoded decode(const double *buf, size_t len)
{
	Decoded d;
	d.shape = shape_of(buf, len);
	const Shape &s = d.shape;
	const Layout L(s);
	const size_t k = static_cast<size_t>(s.k);
	for (size_t c = 0; c < k; c++) {
		d.indicator.push_back(static_cast<int>(buf[L.ind + c]));
		if (!is_count(buf[L.nulls + c], kMaxCount))
			corrupt("A NULL count is out of range.");
		d.nulls.push_back(static_cast<int64_t>(buf[L.nulls + c]));
		d.min.push_back(buf[L.min + c]);
		d.max.push_back(buf[L.max + c]);
	}
	d.train = split_moments(buf, s, L, 0);
	d.test = split_moments(buf, s, L, 1);
	d.rows_in = static_cast<int64_t>(buf[H_ROWS_IN]);
	d.skipped_null_target = static_cast<int64_t>(buf[H_SKIPPED_NULL_TARGET]);
	d.dropped_nonfinite = static_cast<int64_t>(buf[H_DROPPED_NONFINITE]);
	d.nonfinite_column = static_cast<int>(buf[H_NONFINITE_COL]) - 1;
	d.nonfinite_nan = buf[H_NONFINITE_KIND] == 1;
	d.fingerprint = static_cast<uint64_t>(buf[H_FP_LO]) | (static_cast<uint64_t>(buf[H_FP_HI]) << 32);
	const size_t w = k + 1;
	d.sample_train_rows = counter(buf, H_SAMPLE_TRAIN);
	d.sample_test_rows = counter(buf, H_SAMPLE_TEST);
	d.sample_train.assign(buf + L.srow[0], buf + L.srow[0] + d.sample_train_rows * w);
	d.sample_test.assign(buf + L.srow[1], buf + L.srow[1] + d.sample_test_rows * w);
	d.sample_train_u.assign(buf + L.su[0], buf + L.su[0] + d.sample_train_rows);
	d.sample_test_u.assign(buf + L.su[1], buf + L.su[1] + d.sample_test_rows);
	for (const std::vector<double> *u : {&d.sample_train_u, &d.sample_test_u})
		for (double v : *u)
			if (!(v >= 0 && v <= 1)) // a row's draw: the trainer orders the samples by it
				corrupt("A sampled row's draw is out of range.");
	return d;
}

} // namespace pgml::stats
