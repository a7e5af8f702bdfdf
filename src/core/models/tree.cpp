#include "tree.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <utility>

#include "limits.hpp"
#include "threads.hpp"

namespace pgml {

void CancelPoll::stopped() const
{
	if (!over_.load())
		throw Error(ErrorCode::Cancelled, "canceled");
	throw Error(ErrorCode::ProgramLimit,
	            "the tree nodes of " + (algorithm_.empty() ? std::string("the model") : algorithm_) +
	                " would need more memory than pg_ml.max_memory (" + megabytes(static_cast<double>(limit_)) + ")",
	            "The trees grown so far hold about " + megabytes(static_cast<double>(used_.load())) +
	                " of nodes; a tree can have up to 2 n - 1 nodes on n training rows.",
	            "Lower n_estimators or max_depth (or raise min_samples_leaf), train on fewer rows, or raise "
	            "pg_ml.max_memory.");
}

namespace {

constexpr double kFeatureThreshold = 1e-7; // values closer than this are one value (sklearn)
constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
constexpr uint32_t kLeafTag = 0xFFFFFFFFu;
constexpr double kMaxCover = 9007199254740992.0; // 2^53: training weights are whole numbers
constexpr int kParallelNodeRows = 4096;
constexpr double kTieTolerance = 1e-12; // relative: split scores closer than this are a tie (the first wins)          // a node's features are scanned in parallel from this size

using K = ParamSpec::Kind;

// Whether a split scoring proxy beats the best so far (best_proxy): by more than the rounding
// that differs between summation orders (scale: the magnitude of the terms a node's proxies are
// summed from, tie_scale), so that ties (e.g. two features that split the rows alike) go to the
// first candidate whether the rows were summed one by one or per bin.
inline bool improves(double proxy, double best_proxy, double scale)
{
	return best_proxy == -std::numeric_limits<double>::infinity() || proxy - best_proxy > kTieTolerance * scale;
}

// The scale of improves() for a node of weight W and impurity (mean squared error, or gini /
// entropy): the total sum of squares (regression), W (gini: proxies are at most W) or W log2 W
// (entropy: the sums of c log2 c).
inline double tie_scale(SplitCriterion c, double W, double impurity)
{
	if (c == SplitCriterion::SquaredError)
		return W * impurity;
	if (c == SplitCriterion::Gini)
		return W;
	return W * (std::log2(W) + 1);
}

// x * log2(x), 0 at 0.
inline double xlog2x(double x) { return x > 0 ? x * std::log2(x) : 0.0; }

// Impurity of a node from its weighted class counts (total weight W > 0).
double class_impurity(const double *counts, int k, double W, SplitCriterion c)
{
	double s = 0;
	if (c == SplitCriterion::Gini) {
		for (int j = 0; j < k; j++)
			s += counts[j] * counts[j];
		return 1.0 - s / (W * W);
	}
	for (int j = 0; j < k; j++)
		s += xlog2x(counts[j]);
	return std::log2(W) - s / W; // -sum (c/W) log2 (c/W)
}

// A split candidate and its score (see Grower::best_split_exact's proxy).
struct Split {
	bool found = false;
	int feature = -1;
	double threshold = 0;
	int bin = 0;               // binned: rows of the feature's bins <= bin go left
	bool missing_left = false; // where the missing values go
	bool saw_missing = false;  // the node had missing values of the feature (else decided by weight)
	double proxy = -std::numeric_limits<double>::infinity();
};

// Per-bin sums of one feature over a node's rows, and the sweep over them (binned splits). One
// per thread that scans features.
struct BinScan {
	std::vector<int> cnt;       // rows per code (256)
	std::vector<double> w, s;   // weight; regression: sum of w (y - node mean)
	std::vector<double> cls;    // classification: class weights, code * K + class
	std::vector<int> touched;   // codes with rows, in first-seen order
	std::vector<int> present;   // value bins with rows, ascending
	std::vector<double> miss, left;
	int nm = 0;          // missing rows
	double wm = 0, sm = 0; // their weight; regression: their sum of w (y - mean)

	BinScan(int k, bool classify)
		: cnt(BinnedFeatures::kMaxBin, 0), w(BinnedFeatures::kMaxBin, 0.0), s(classify ? 0 : BinnedFeatures::kMaxBin, 0.0),
		  cls(classify ? static_cast<size_t>(BinnedFeatures::kMaxBin) * static_cast<size_t>(k) : 0, 0.0),
		  miss(static_cast<size_t>(k), 0.0), left(static_cast<size_t>(k), 0.0)
	{
		touched.reserve(BinnedFeatures::kMaxBin);
		present.reserve(BinnedFeatures::kMaxBin);
	}
	// Zeroes the sums of the touched codes.
	void clear(int k)
	{
		for (int c : touched) {
			cnt[static_cast<size_t>(c)] = 0;
			w[static_cast<size_t>(c)] = 0;
			if (!s.empty())
				s[static_cast<size_t>(c)] = 0;
			if (!cls.empty())
				std::fill_n(cls.begin() + static_cast<std::ptrdiff_t>(c) * k, k, 0.0);
		}
		touched.clear();
	}
	static size_t bytes(int k, bool classify)
	{
		return BinnedFeatures::kMaxBin * (sizeof(int) * 3 + sizeof(double) * (classify ? 1 + static_cast<size_t>(k) : 2)) +
		       2 * sizeof(double) * static_cast<size_t>(k);
	}
};

// A training row of weight > 0 with its weight and target next to it, so that a node's rows are
// read in order (only the feature values / codes are looked up by row number).
struct Row {
	int32_t i;   // row number
	int32_t cls; // classification: class id
	double w;    // weight (bootstrap multiplicity)
	double y;    // target
};

// Grows one tree; holds the scratch buffers of one grow_tree call.
// The running sums of a sweep over a node's sorted values (or bins), both ways of sending the
// missing rows (A: right, B: left): gini's sums of squared class weights, entropy's sums of
// c log2 c, on the left and on the right.
struct ClassSums {
	double sqA_l = 0, sqA_r = 0, sqB_l = 0, sqB_r = 0;
	double eA_l = 0, eA_r = 0, eB_l = 0, eB_r = 0;

	// Adds a class before the sweep: tot its weight in the node, m on the missing rows (every
	// present row starts on the right; the missing rows are on the right in A, left in B).
	void start(double tot, double m)
	{
		sqA_r += tot * tot;
		eA_r += xlog2x(tot);
		sqB_l += m * m;
		eB_l += xlog2x(m);
		sqB_r += (tot - m) * (tot - m);
		eB_r += xlog2x(tot - m);
	}

	// Moves weight wi of a class from the right to the left: cl, crA its weight left and right
	// (missing rows right), clB, crB the same with the missing rows left.
	void move(bool gini, bool missing, double cl, double crA, double clB, double crB, double wi)
	{
		if (gini) {
			sqA_l += (cl + wi) * (cl + wi) - cl * cl;
			sqA_r += (crA - wi) * (crA - wi) - crA * crA;
			if (missing) {
				sqB_l += (clB + wi) * (clB + wi) - clB * clB;
				sqB_r += (crB - wi) * (crB - wi) - crB * crB;
			}
		} else {
			eA_l += xlog2x(cl + wi) - xlog2x(cl);
			eA_r += xlog2x(crA - wi) - xlog2x(crA);
			if (missing) {
				eB_l += xlog2x(clB + wi) - xlog2x(clB);
				eB_r += xlog2x(crB - wi) - xlog2x(crB);
			}
		}
	}
};

class Grower {
  public:
	Grower(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, const std::vector<double> *weights,
	       const TreeOptions &opt, TreeRng &rng, CancelPoll &cancel, const BinnedFeatures *binned, int threads)
		: X_(X), y_(y), opt_(opt), rng_(rng), cancel_(cancel), bin_(binned), threads_(std::max(1, threads)),
		  n_(static_cast<int>(X.rows())), p_(static_cast<int>(X.cols())), k_(opt.n_outputs),
		  cls_(opt.criterion != SplitCriterion::SquaredError)
	{
		w_.resize(static_cast<size_t>(n_));
		for (int i = 0; i < n_; i++) {
			w_[static_cast<size_t>(i)] = weights ? (*weights)[static_cast<size_t>(i)] : 1.0;
			if (w_[static_cast<size_t>(i)] > 0)
				idx_.push_back({i, cls_ ? static_cast<int32_t>(y_(i)) : 0, w_[static_cast<size_t>(i)], y_(i)});
		}
		features_.resize(static_cast<size_t>(p_));
		std::iota(features_.begin(), features_.end(), 0);
		mtry_ = opt.max_features <= 0 || opt.max_features >= p_ ? p_ : opt.max_features;
		counts_.resize(static_cast<size_t>(k_));
		left_.resize(static_cast<size_t>(k_));
		miss_.resize(static_cast<size_t>(k_));
		if (bin_ != nullptr) // its bytes are in BinnedFeatures::bytes
			scans_.emplace_back(k_, cls_);
		else
			sorted_.reserve(idx_.size());
	}

	TreeFit grow();

  private:
	struct Stats {
		double W = 0;        // total weight
		double impurity = 0; // weighted impurity
		double mean = 0;     // regression: weighted mean of y
	};
	struct Item {
		int start, end, depth, parent;
		bool is_left;
		Stats st;
	};

	Stats stats(int start, int end);
	void leaf_values(int start, int end, std::vector<double> &out);
	Split best_split_exact(int start, int end, const Stats &st);
	Split best_split_binned(int start, int end, const Stats &st);
	Split binned_in_parallel(int start, int end, const Stats &st);
	bool scan_feature(BinScan &h, int f, int start, int end, const Stats &st) const;
	void sweep_bins(BinScan &h, int f, const Stats &st, Split &best) const;
	void node_class_totals(int start, int end);
	int partition(int start, int end, const Split &sp);

	const Eigen::MatrixXd &X_;
	const Eigen::VectorXd &y_;
	const TreeOptions &opt_;
	TreeRng &rng_;
	CancelPoll &cancel_;
	const BinnedFeatures *bin_; // null: exact splits
	const int threads_;
	const int n_, p_, k_;
	const bool cls_;
	int mtry_ = 0;
	std::vector<double> w_;
	std::vector<Row> idx_;      // rows of weight > 0; each node owns a contiguous range
	std::vector<int> features_; // candidate order (partially shuffled when mtry_ < p_)
	std::vector<double> counts_, left_, miss_;
	std::vector<std::pair<double, int>> sorted_;
	std::vector<BinScan> scans_; // binned: scratch of the growing thread (and of helpers)
};

// Weight, impurity and mean of the rows idx_[start, end).
Grower::Stats Grower::stats(int start, int end)
{
	Stats s;
	const Row *r = idx_.data();
	if (cls_) {
		std::fill(counts_.begin(), counts_.end(), 0.0);
		for (int t = start; t < end; t++)
			counts_[static_cast<size_t>(r[t].cls)] += r[t].w;
		for (double c : counts_)
			s.W += c;
		s.impurity = class_impurity(counts_.data(), k_, s.W, opt_.criterion);
	} else {
		double sum = 0;
		for (int t = start; t < end; t++) {
			s.W += r[t].w;
			sum += r[t].w * r[t].y;
		}
		s.mean = sum / s.W;
		double ss = 0;
		for (int t = start; t < end; t++) {
			double d = r[t].y - s.mean;
			ss += r[t].w * d * d;
		}
		s.impurity = ss / s.W;
	}
	if (s.impurity < 0) // rounding
		s.impurity = 0;
	return s;
}

// Appends the leaf values of the rows idx_[start, end): mean, or class frequencies.
void Grower::leaf_values(int start, int end, std::vector<double> &out)
{
	Stats s = stats(start, end); // also fills counts_ when classifying
	if (!cls_) {
		out.push_back(s.mean);
		return;
	}
	for (int j = 0; j < k_; j++)
		out.push_back(counts_[static_cast<size_t>(j)] / s.W);
}

// Class weights of the rows idx_[start, end) in counts_.
void Grower::node_class_totals(int start, int end)
{
	std::fill(counts_.begin(), counts_.end(), 0.0);
	for (int t = start; t < end; t++)
		counts_[static_cast<size_t>(idx_[static_cast<size_t>(t)].cls)] += idx_[static_cast<size_t>(t)].w;
}

// The best split of the rows idx_[start, end) over up to mtry_ non-constant features, with the
// default direction of the rows whose feature is missing (see tree.hpp), each candidate
// feature's values sorted (max_bin = 0).
Split Grower::best_split_exact(int start, int end, const Stats &st)
{
	Split best;
	double best_proxy = -std::numeric_limits<double>::infinity();
	const int min_leaf = opt_.min_samples_leaf;
	const double tie = tie_scale(opt_.criterion, st.W, st.impurity);
	if (cls_) // class totals of the node, for the right side
		node_class_totals(start, end);
	// a quantity that grows as the children's weighted impurity falls, from the left child's
	// weight wL and (regression) sum of w (y - mean), or (classification) the sums of squared
	// class weights / of c log2 c of both children
	auto proxy_of = [&](double wL, double sL, double sqL, double sqR, double eL, double eR) {
		const double wR = st.W - wL;
		if (!cls_) {
			const double sR = -sL; // the centred total is 0
			return sL * sL / wL + sR * sR / wR;
		}
		if (opt_.criterion == SplitCriterion::Gini)
			return sqL / wL + sqR / wR;
		return eL - xlog2x(wL) + eR - xlog2x(wR);
	};
	int visited = 0;
	for (int j = 0; j < p_ && visited < mtry_; j++) {
		if (mtry_ < p_) {
			size_t r = static_cast<size_t>(j) + rng_.below(static_cast<size_t>(p_ - j));
			std::swap(features_[static_cast<size_t>(j)], features_[r]);
		}
		const int f = features_[static_cast<size_t>(j)];
		const double *col = X_.col(f).data();
		sorted_.clear();
		double lo = std::numeric_limits<double>::infinity(), hi = -lo;
		int nm = 0;             // rows whose value is missing
		double wm = 0, sm = 0;  // their weight; regression: their sum of w (y - mean)
		if (cls_)
			std::fill(miss_.begin(), miss_.end(), 0.0);
		for (int t = start; t < end; t++) {
			const int i = idx_[static_cast<size_t>(t)].i;
			const double v = col[i];
			if (std::isnan(v)) {
				const double wi = w_[static_cast<size_t>(i)];
				nm++;
				wm += wi;
				if (cls_)
					miss_[static_cast<size_t>(y_(i))] += wi;
				else
					sm += wi * (y_(i) - st.mean);
				continue;
			}
			sorted_.emplace_back(v, i);
			lo = std::min(lo, v);
			hi = std::max(hi, v);
		}
		const int mp = static_cast<int>(sorted_.size());
		if (mp == 0 || (nm == 0 && hi <= lo + kFeatureThreshold))
			continue; // all missing, or constant: does not count towards mtry_
		visited++;
		std::sort(sorted_.begin(), sorted_.end(),
		          [](const std::pair<double, int> &a, const std::pair<double, int> &b) { return a.first < b.first; });
		// sweep: rows sorted_[0..t] go left; A = the missing rows go right, B = they go left
		double wl = 0, sl = 0; // present rows on the left: weight; regression: sum of w (y - mean)
		ClassSums cs;
		if (cls_) {
			std::fill(left_.begin(), left_.end(), 0.0);
			for (int c = 0; c < k_; c++) {
				cs.start(counts_[static_cast<size_t>(c)], miss_[static_cast<size_t>(c)]);
			}
		}
		auto consider = [&](double proxy, double thr, bool missing_left) {
			if (improves(proxy, best_proxy, tie)) {
				best_proxy = best.proxy = proxy;
				best.found = true;
				best.feature = f;
				best.threshold = thr;
				best.missing_left = missing_left;
				best.saw_missing = nm > 0;
			}
		};
		for (int t = 0; t < mp; t++) {
			const int i = sorted_[static_cast<size_t>(t)].second;
			const double wi = w_[static_cast<size_t>(i)];
			wl += wi;
			if (cls_) {
				const size_t c = static_cast<size_t>(y_(i));
				const double cl = left_[c], crA = counts_[c] - cl, clB = cl + miss_[c], crB = crA - miss_[c];
				cs.move(opt_.criterion == SplitCriterion::Gini, nm > 0, cl, crA, clB, crB, wi);
				left_[c] = cl + wi;
			} else {
				sl += wi * (y_(i) - st.mean);
			}
			const int nl = t + 1, nr = mp - nl; // present rows left / right
			if (t + 1 == mp) {
				// every present value left, the missing rows right
				if (nm > 0 && mp >= min_leaf && nm >= min_leaf && wm > 0)
					consider(proxy_of(wl, sl, cs.sqA_l, cs.sqA_r, cs.eA_l, cs.eA_r), std::numeric_limits<double>::max(), false);
				break;
			}
			const double v = sorted_[static_cast<size_t>(t)].first, next = sorted_[static_cast<size_t>(t) + 1].first;
			if (next <= v + kFeatureThreshold)
				continue;
			double thr = v / 2 + next / 2;
			if (thr >= next || !std::isfinite(thr))
				thr = v;
			if (nl >= min_leaf && nr + nm >= min_leaf && wl > 0 && st.W - wl > 0)
				consider(proxy_of(wl, sl, cs.sqA_l, cs.sqA_r, cs.eA_l, cs.eA_r), thr, false);
			if (nm > 0 && nl + nm >= min_leaf && nr >= min_leaf && st.W - wl - wm > 0)
				consider(proxy_of(wl + wm, sl + sm, cs.sqB_l, cs.sqB_r, cs.eB_l, cs.eB_r), thr, true);
		}
	}
	return best;
}

// A quantity that grows as the children's weighted impurity falls, from the left child's weight
// wL and (regression) sum of w (y - mean), or (classification) the sums of squared class weights
// / of c log2 c of both children; W: the node's weight.
inline double split_proxy(SplitCriterion c, double W, double wL, double sL, double sqL, double sqR, double eL,
                          double eR)
{
	const double wR = W - wL;
	if (c == SplitCriterion::SquaredError)
		return sL * sL / wL + sL * sL / wR; // the centred total is 0: sR = -sL
	if (c == SplitCriterion::Gini)
		return sqL / wL + sqR / wR;
	return eL - xlog2x(wL) + eR - xlog2x(wR);
}

// Sums feature f's bins over the rows idx_[start, end) into h (whose sums are zero: clear()
// after use) and lists the non-empty value bins in order. False when f cannot split the node
// (every value missing, or one value and none missing: then it does not count towards mtry_).
bool Grower::scan_feature(BinScan &h, int f, int start, int end, const Stats &st) const
{
	const uint8_t *code = bin_->codes(f);
	const Row *r = idx_.data();
	h.touched.clear();
	if (cls_) {
		const size_t K = static_cast<size_t>(k_);
		for (int t = start; t < end; t++) {
			const int c = code[r[t].i];
			const double wi = r[t].w;
			if (h.cnt[static_cast<size_t>(c)]++ == 0)
				h.touched.push_back(c);
			h.w[static_cast<size_t>(c)] += wi;
			h.cls[static_cast<size_t>(c) * K + static_cast<size_t>(r[t].cls)] += wi;
		}
	} else {
		for (int t = start; t < end; t++) {
			const int c = code[r[t].i];
			const double wi = r[t].w;
			if (h.cnt[static_cast<size_t>(c)]++ == 0)
				h.touched.push_back(c);
			h.w[static_cast<size_t>(c)] += wi;
			h.s[static_cast<size_t>(c)] += wi * (r[t].y - st.mean);
		}
	}
	const bool has_missing = bin_->has_missing(f);
	const size_t mc = BinnedFeatures::kMissing;
	h.nm = has_missing ? h.cnt[mc] : 0;
	h.wm = h.nm > 0 ? h.w[mc] : 0;
	h.sm = h.nm > 0 && !cls_ ? h.s[mc] : 0;
	if (cls_)
		for (size_t c = 0; c < static_cast<size_t>(k_); c++)
			h.miss[c] = h.nm > 0 ? h.cls[mc * static_cast<size_t>(k_) + c] : 0.0;
	h.present.clear();
	if (h.touched.size() > 32) {
		for (int b = 0, nb = bin_->bins(f); b < nb; b++)
			if (h.cnt[static_cast<size_t>(b)] > 0)
				h.present.push_back(b);
	} else {
		for (int c : h.touched)
			if (!(has_missing && c == BinnedFeatures::kMissing))
				h.present.push_back(c);
		std::sort(h.present.begin(), h.present.end());
	}
	if (h.present.empty())
		return false;
	return h.nm > 0 || bin_->hi(f, h.present.back()) > bin_->lo(f, h.present.front()) + kFeatureThreshold;
}

// Sweeps the bins scan_feature summed for feature f: the rows of the present bins up to b go
// left; each threshold is scored with the missing rows right (A) and left (B), as
// best_split_exact does row by row. Improves best when a candidate beats best.proxy.
void Grower::sweep_bins(BinScan &h, int f, const Stats &st, Split &best) const
{
	const int min_leaf = opt_.min_samples_leaf, nm = h.nm;
	const double wm = h.wm, sm = h.sm, tie = tie_scale(opt_.criterion, st.W, st.impurity);
	const size_t K = static_cast<size_t>(k_);
	int mp = 0; // present rows
	for (int b : h.present)
		mp += h.cnt[static_cast<size_t>(b)];
	double wl = 0, sl = 0;
	ClassSums cs;
	if (cls_) {
		std::fill(h.left.begin(), h.left.end(), 0.0);
		for (size_t c = 0; c < K; c++) {
			cs.start(counts_[c], h.miss[c]);
		}
	}
	auto consider = [&](double proxy, double thr, int bin, bool missing_left) {
		if (improves(proxy, best.proxy, tie))
			best = Split{true, f, thr, bin, missing_left, nm > 0, proxy};
	};
	const bool gini = opt_.criterion == SplitCriterion::Gini;
	int nl = 0;
	for (size_t q = 0; q < h.present.size(); q++) {
		const int b = h.present[q];
		wl += h.w[static_cast<size_t>(b)];
		nl += h.cnt[static_cast<size_t>(b)];
		if (cls_) {
			const double *hc = h.cls.data() + static_cast<size_t>(b) * K;
			for (size_t c = 0; c < K; c++) {
				const double wi = hc[c];
				if (wi == 0)
					continue;
				const double cl = h.left[c], crA = counts_[c] - cl, clB = cl + h.miss[c], crB = crA - h.miss[c];
				cs.move(gini, nm > 0, cl, crA, clB, crB, wi);
				h.left[c] = cl + wi;
			}
		} else {
			sl += h.s[static_cast<size_t>(b)];
		}
		const int nr = mp - nl;
		if (q + 1 == h.present.size()) { // every present value left, the missing rows right
			if (nm > 0 && mp >= min_leaf && nm >= min_leaf && wm > 0)
				consider(split_proxy(opt_.criterion, st.W, wl, sl, cs.sqA_l, cs.sqA_r, cs.eA_l, cs.eA_r),
				         std::numeric_limits<double>::max(), b, false);
			break;
		}
		const double v = bin_->hi(f, b), next = bin_->lo(f, h.present[q + 1]);
		if (next <= v + kFeatureThreshold)
			continue;
		double thr = v / 2 + next / 2;
		if (thr >= next || !std::isfinite(thr))
			thr = v;
		if (nl >= min_leaf && nr + nm >= min_leaf && wl > 0 && st.W - wl > 0)
			consider(split_proxy(opt_.criterion, st.W, wl, sl, cs.sqA_l, cs.sqA_r, cs.eA_l, cs.eA_r), thr, b, false);
		if (nm > 0 && nl + nm >= min_leaf && nr >= min_leaf && st.W - wl - wm > 0)
			consider(split_proxy(opt_.criterion, st.W, wl + wm, sl + sm, cs.sqB_l, cs.sqB_r, cs.eB_l, cs.eB_r), thr, b, true);
	}
}

// best_split_exact's split found on the binned features: the same split when every feature has
// one bin per distinct value.
Split Grower::best_split_binned(int start, int end, const Stats &st)
{
	if (cls_)
		node_class_totals(start, end);
	if (threads_ > 1 && mtry_ == p_ && p_ > 1 && end - start >= kParallelNodeRows)
		return binned_in_parallel(start, end, st);
	Split best;
	BinScan &h = scans_[0];
	int visited = 0;
	for (int j = 0; j < p_ && visited < mtry_; j++) {
		if (mtry_ < p_) {
			size_t r = static_cast<size_t>(j) + rng_.below(static_cast<size_t>(p_ - j));
			std::swap(features_[static_cast<size_t>(j)], features_[r]);
		}
		const int f = features_[static_cast<size_t>(j)];
		if (scan_feature(h, f, start, end, st)) {
			visited++;
			Split fb; // each feature's best, then the first best feature: as binned_in_parallel
			sweep_bins(h, f, st, fb);
			if (fb.found && improves(fb.proxy, best.proxy, tie_scale(opt_.criterion, st.W, st.impurity)))
				best = fb;
		}
		h.clear(k_);
	}
	return best;
}

// best_split_binned of a large node when every feature is a candidate (features_ in column
// order): the features scanned on threads_ threads, each keeping its own best; the first best in
// column order wins, as in the serial sweep, so the tree does not depend on the thread count.
Split Grower::binned_in_parallel(int start, int end, const Stats &st)
{
	const int T = std::min(threads_, p_);
	while (static_cast<int>(scans_.size()) < T)
		scans_.emplace_back(k_, cls_);
	std::vector<Split> per_feature(static_cast<size_t>(p_));
	std::atomic<int> next{0};
	parallel_for(T, T, [&](int t) {
		BinScan &h = scans_[static_cast<size_t>(t)];
		for (int f; (f = next.fetch_add(1)) < p_;) {
			if (scan_feature(h, f, start, end, st))
				sweep_bins(h, f, st, per_feature[static_cast<size_t>(f)]);
			h.clear(k_);
		}
	});
	Split best;
	for (const Split &s : per_feature)
		if (s.found && improves(s.proxy, best.proxy, tie_scale(opt_.criterion, st.W, st.impurity)))
			best = s;
	return best;
}

// Moves the rows of idx_[start, end) that sp sends left before the others; returns the first
// right row's position.
int Grower::partition(int start, int end, const Split &sp)
{
	auto first = idx_.begin() + start, last = idx_.begin() + end;
	if (bin_ != nullptr) {
		const uint8_t *code = bin_->codes(sp.feature);
		const bool has_missing = bin_->has_missing(sp.feature);
		return static_cast<int>(std::partition(first, last,
		                                       [&](const Row &r) {
			                                       const int c = code[r.i];
			                                       return has_missing && c == BinnedFeatures::kMissing
			                                                  ? sp.missing_left
			                                                  : c <= sp.bin;
		                                       }) -
		                        idx_.begin());
	}
	const double *col = X_.col(sp.feature).data();
	return static_cast<int>(std::partition(first, last,
	                                       [&](const Row &r) {
		                                       const double v = col[r.i];
		                                       return std::isnan(v) ? sp.missing_left : v <= sp.threshold;
	                                       }) -
	                        idx_.begin());
}

// Grows the tree depth-first; left subtrees are numbered before right ones.
TreeFit Grower::grow()
{
	TreeFit out;
	out.tree.n_outputs = k_;
	out.gain = Eigen::VectorXd::Zero(p_);
	if (idx_.empty())
		throw Error(ErrorCode::DataException, "no training rows", "Every row has weight 0.");
	std::vector<TreeNode> &nodes = out.tree.nodes;
	if (opt_.record_leaves)
		out.leaf_of.assign(static_cast<size_t>(n_), -1);
	Stats root = stats(0, static_cast<int>(idx_.size()));
	const double W_root = root.W;
	std::vector<Item> stack;
	stack.push_back({0, static_cast<int>(idx_.size()), 0, -1, false, root});
	double leaf_imp = 0;
	while (!stack.empty()) {
		cancel_.poll();
		Item it = stack.back();
		stack.pop_back();
		const int id = static_cast<int>(nodes.size());
		cancel_.charge(sizeof(TreeNode) + sizeof(double) * static_cast<size_t>(k_));
		nodes.emplace_back();
		if (it.parent >= 0)
			(it.is_left ? nodes[static_cast<size_t>(it.parent)].left : nodes[static_cast<size_t>(it.parent)].right) = id;
		const long m = it.end - it.start;
		bool leaf = (opt_.max_depth > 0 && it.depth >= opt_.max_depth) || m < opt_.min_samples_split ||
		            m < 2L * opt_.min_samples_leaf || it.st.impurity <= kEpsilon;
		Split sp;
		Stats ls, rs;
		int mid = it.start;
		if (!leaf) {
			sp = bin_ != nullptr ? best_split_binned(it.start, it.end, it.st) : best_split_exact(it.start, it.end, it.st);
			leaf = !sp.found;
		}
		if (!leaf) {
			mid = partition(it.start, it.end, sp);
			ls = stats(it.start, mid);
			rs = stats(mid, it.end);
			if (!sp.saw_missing) // no missing value here: they will follow the larger child
				sp.missing_left = ls.W >= rs.W;
			double decrease = it.st.W * it.st.impurity - ls.W * ls.impurity - rs.W * rs.impurity;
			if (decrease / W_root + kEpsilon < opt_.min_impurity_decrease)
				leaf = true;
			else
				out.gain(sp.feature) += std::max(0.0, decrease);
		}
		TreeNode &node = nodes[static_cast<size_t>(id)];
		node.cover = it.st.W;
		if (leaf) {
			node.feature = -1;
			node.value = static_cast<int32_t>(out.tree.values.size());
			leaf_values(it.start, it.end, out.tree.values);
			if (opt_.record_leaves)
				for (int t = it.start; t < it.end; t++)
					out.leaf_of[static_cast<size_t>(idx_[static_cast<size_t>(t)].i)] = node.value;
			leaf_imp += it.st.W * it.st.impurity;
		} else {
			node.feature = sp.feature;
			node.threshold = sp.threshold;
			node.missing_left = sp.missing_left;
			stack.push_back({mid, it.end, it.depth + 1, id, false, rs});
			stack.push_back({it.start, mid, it.depth + 1, id, true, ls});
		}
	}
	out.tree.has_covers = true;
	out.leaf_impurity = leaf_imp / W_root;
	return out;
}

} // namespace

int Tree::depth() const
{
	std::vector<int> d(nodes.size(), 0);
	int best = 0;
	for (size_t i = 0; i < nodes.size(); i++) {
		best = std::max(best, d[i]);
		if (nodes[i].feature >= 0) {
			d[static_cast<size_t>(nodes[i].left)] = d[i] + 1;
			d[static_cast<size_t>(nodes[i].right)] = d[i] + 1;
		}
	}
	return best;
}

int Tree::leaves() const
{
	int c = 0;
	for (const TreeNode &n : nodes)
		c += n.feature < 0;
	return c;
}

// Per node: u32 feature (0xFFFFFFFF for a leaf); a leaf then has n_outputs f64 values, an
// internal node f64 threshold, u32 left, u32 right and (encoding 2 and later) u8 missing_left;
// then (encoding 3 and 4) the node's f64 cover.
void Tree::write(Writer &w, uint16_t encoding) const
{
	if (encoding >= kTreeEncodingCovers && !has_covers)
		throw Error(ErrorCode::Internal, "a tree without covers written in an encoding with covers");
	w.u64(nodes.size());
	for (const TreeNode &n : nodes) {
		if (n.feature < 0) {
			w.u32(kLeafTag);
			for (int j = 0; j < n_outputs; j++)
				w.f64(values[static_cast<size_t>(n.value + j)]);
		} else {
			w.u32(static_cast<uint32_t>(n.feature));
			w.f64(n.threshold);
			w.u32(static_cast<uint32_t>(n.left));
			w.u32(static_cast<uint32_t>(n.right));
			if (encoding >= kTreeEncodingNativeMissing)
				w.u8(n.missing_left ? 1 : 0);
		}
		if (encoding >= kTreeEncodingCovers)
			w.f64(n.cover);
	}
}

Tree Tree::read(Reader &r, int p, int n_outputs, bool classification, uint16_t encoding)
{
	Tree t;
	t.n_outputs = n_outputs;
	size_t count = r.count(12); // the smallest node: a tag and one value
	if (count == 0 || count > static_cast<size_t>(INT32_MAX))
		tree_corrupt("A tree has " + std::to_string(count) + " nodes.");
	t.nodes.resize(count);
	for (size_t i = 0; i < count; i++) {
		TreeNode &n = t.nodes[i];
		uint32_t tag = r.u32();
		if (tag == kLeafTag) {
			n.feature = -1;
			if (t.values.size() + static_cast<size_t>(n_outputs) > static_cast<size_t>(INT32_MAX))
				tree_corrupt("A tree has too many leaf values.");
			n.value = static_cast<int32_t>(t.values.size());
			double sum = 0;
			for (int j = 0; j < n_outputs; j++) {
				double v = r.f64();
				if (!std::isfinite(v) || (classification && (v < 0 || v > 1)))
					tree_corrupt("A leaf value is out of range.");
				sum += v;
				t.values.push_back(v);
			}
			if (classification && std::fabs(sum - 1) > 1e-9)
				tree_corrupt("A leaf's class probabilities do not sum to 1.");
		} else {
			if (tag >= static_cast<uint32_t>(p))
				tree_corrupt("A split uses feature " + std::to_string(tag) + " of " + std::to_string(p) + ".");
			n.feature = static_cast<int32_t>(tag);
			n.threshold = r.f64();
			uint32_t left = r.u32(), right = r.u32();
			if (!std::isfinite(n.threshold))
				tree_corrupt("A split threshold is not finite.");
			if (left <= i || right <= i || left >= count || right >= count || left == right)
				tree_corrupt("A split's children are out of place.");
			n.left = static_cast<int32_t>(left);
			n.right = static_cast<int32_t>(right);
			if (encoding >= kTreeEncodingNativeMissing) {
				uint8_t dir = r.u8();
				if (dir > 1)
					tree_corrupt("A split's missing-value direction is invalid.");
				n.missing_left = dir == 1;
			}
		}
		if (encoding >= kTreeEncodingCovers) {
			n.cover = r.f64();
			if (!(n.cover >= 1 && n.cover <= kMaxCover)) // at least one row of weight >= 1
				tree_corrupt("A node's cover is out of range.");
		}
	}
	if (encoding >= kTreeEncodingCovers) {
		t.has_covers = true;
		t.check_covers();
	}
	return t;
}

// A parent's cover is the sum of its children's (whole training weights below 2^53: exact; the
// tolerance only forgives rounding). With covers in [1, 2^53] every fraction tree SHAP divides
// by is at least 2^-53.
void Tree::check_covers() const
{
	for (const TreeNode &n : nodes) {
		if (n.feature < 0)
			continue;
		const double sum = nodes[static_cast<size_t>(n.left)].cover + nodes[static_cast<size_t>(n.right)].cover;
		if (!(std::fabs(sum - n.cover) <= 1e-9 * n.cover))
			tree_corrupt("A node's cover is not the sum of its children's.");
	}
}

double BinnedFeatures::bytes(double n, double p, int threads, int n_outputs)
{
	const double scan = kMaxBin * (12.0 + 8.0 * (1 + std::max(1, n_outputs))); // a BinScan
	return n * p + p * kMaxBin * 16.0 + std::max(1, threads) * (8.0 * n + sizeof(Row) * n + scan);
}

BinnedFeatures::BinnedFeatures(const Eigen::MatrixXd &X, int max_bin, int threads, int n_outputs, CancelPoll &cancel,
                               const std::string &algorithm)
	: n_(X.rows())
{
	if (max_bin < 2 || max_bin > kMaxBin)
		throw Error(ErrorCode::Internal, "invalid max_bin " + std::to_string(max_bin));
	const int p = static_cast<int>(X.cols());
	threads = std::max(1, std::min(threads, p));
	const double need = bytes(static_cast<double>(n_), p, threads, n_outputs);
	check_memory(cancel.limit(), need, algorithm + " (binned features)",
	             "The " + count_text(static_cast<double>(n_)) + " rows of " + std::to_string(p) +
	                 " features are binned to one byte per value, with a sorted copy of one feature, the rows "
	                 "and the bin sums of one tree per thread.",
	             "train on fewer rows or features");
	codes_.resize(static_cast<size_t>(n_) * static_cast<size_t>(p));
	missing_.assign(static_cast<size_t>(p), 0);
	cancel.charge(codes_.size());
	std::vector<std::vector<double>> flo(static_cast<size_t>(p)), fhi(static_cast<size_t>(p));
	std::vector<std::vector<double>> sorted(static_cast<size_t>(threads));
	std::atomic<int> next{0};
	// the owner thread asks the caller (CancelPoll): before and after the columns too, since
	// another thread may take every column (flaky TreeBinned.Cancellation: 4 columns, 2 threads)
	cancel.poll();
	parallel_for(threads, threads, [&](int t) {
		for (int f; (f = next.fetch_add(1)) < p;) {
			cancel.poll();
			bin_feature(X, f, max_bin, sorted[static_cast<size_t>(t)], flo[static_cast<size_t>(f)],
			            fhi[static_cast<size_t>(f)]);
		}
	});
	cancel.poll();
	first_.assign(1, 0);
	for (int f = 0; f < p; f++) {
		lo_.insert(lo_.end(), flo[static_cast<size_t>(f)].begin(), flo[static_cast<size_t>(f)].end());
		hi_.insert(hi_.end(), fhi[static_cast<size_t>(f)].begin(), fhi[static_cast<size_t>(f)].end());
		first_.push_back(static_cast<int>(lo_.size()));
	}
}

// Bins column f: its sorted present values into bins lo..hi (one per distinct value when they
// fit, else about equal row counts, never splitting equal values), then each row's code.
void BinnedFeatures::bin_feature(const Eigen::MatrixXd &X, int f, int max_bin, std::vector<double> &sorted,
                                 std::vector<double> &lo, std::vector<double> &hi)
{
	const double *col = X.col(f).data();
	const size_t n = static_cast<size_t>(n_);
	sorted.clear();
	for (size_t i = 0; i < n; i++)
		if (!std::isnan(col[i]))
			sorted.push_back(col[i]);
	const bool has_missing = sorted.size() < n;
	missing_[static_cast<size_t>(f)] = has_missing ? 1 : 0;
	std::sort(sorted.begin(), sorted.end());
	const size_t cap = static_cast<size_t>(has_missing ? std::min(max_bin, kMaxBin - 1) : max_bin);
	const size_t m = sorted.size();
	size_t distinct = 0;
	for (size_t i = 0; i < m; i++)
		distinct += i == 0 || sorted[i] != sorted[i - 1];
	auto it = [&](size_t k) { return sorted.begin() + static_cast<std::ptrdiff_t>(k); };
	for (size_t i = 0; i < m;) {
		size_t j; // the bin's last value: the end of the run of equal values at the target size
		if (distinct <= cap) {
			j = static_cast<size_t>(std::upper_bound(it(i), sorted.end(), sorted[i]) - sorted.begin()) - 1;
		} else {
			const size_t bins_left = cap - lo.size();
			const size_t target = bins_left <= 1 ? m - i : std::max<size_t>(1, (m - i) / bins_left);
			j = i + target - 1;
			const size_t run = static_cast<size_t>(std::lower_bound(it(i), it(j), sorted[j]) - sorted.begin());
			const size_t run_end = static_cast<size_t>(std::upper_bound(it(j), sorted.end(), sorted[j]) - sorted.begin());
			// a run of equal values longer than a bin gets a bin of its own
			j = run > i && run_end - run > target ? run - 1 : run_end - 1;
		}
		lo.push_back(sorted[i]);
		hi.push_back(sorted[j]);
		i = j + 1;
	}
	uint8_t *code = codes_.data() + static_cast<size_t>(f) * n;
	for (size_t i = 0; i < n; i++)
		code[i] = std::isnan(col[i]) ? kMissing
		                             : static_cast<uint8_t>(std::lower_bound(hi.begin(), hi.end(), col[i]) - hi.begin());
}

TreeFit grow_tree(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, const std::vector<double> *weights,
                  const TreeOptions &opt, TreeRng &rng, CancelPoll &cancel, const BinnedFeatures *binned, int threads)
{
	std::unique_ptr<BinnedFeatures> own;
	if (opt.max_bin > 0 && binned == nullptr) {
		own = std::make_unique<BinnedFeatures>(X, opt.max_bin, threads, opt.n_outputs, cancel, "the tree");
		binned = own.get();
	}
	if (binned != nullptr && binned->rows() != X.rows())
		throw Error(ErrorCode::Internal, "binned features of another matrix");
	Grower g(X, y, weights, opt, rng, cancel, opt.max_bin > 0 ? binned : nullptr, threads);
	return g.grow();
}

int resolve_max_features(double v, int p, int def_count)
{
	int m;
	if (v <= 0)
		m = def_count;
	else if (v <= 1)
		m = static_cast<int>(v * p);
	else
		m = v >= p ? p : static_cast<int>(v);
	return std::max(1, std::min(m, std::max(p, 1)));
}

SplitCriterion criterion_for(Task task, const std::string &name)
{
	if (task == Task::Regression)
		return SplitCriterion::SquaredError;
	if (name == "gini")
		return SplitCriterion::Gini;
	if (name == "entropy")
		return SplitCriterion::Entropy;
	throw Error(ErrorCode::InvalidParameter, "invalid criterion \"" + name + "\"", "",
	            "Use 'gini' or 'entropy'.");
}

void check_tree_input(const FitInput &in, const char *algorithm)
{
	if (in.task != Task::Regression && in.task != Task::Classification)
		throw Error(ErrorCode::FeatureNotSupported, std::string(algorithm) + " does not do " + task_name(in.task));
	if (in.X == nullptr || in.y == nullptr || in.y->size() != in.X->rows())
		throw Error(ErrorCode::Internal, std::string(algorithm) + " needs a feature matrix and a target of equal length");
	if (in.X->rows() == 0)
		throw Error(ErrorCode::DataException, "no training rows");
	if (in.X->rows() > INT32_MAX || in.X->cols() > INT32_MAX)
		throw Error(ErrorCode::ProgramLimit, "too many training rows or features for " + std::string(algorithm));
	if ((in.X->array().abs() == std::numeric_limits<double>::infinity()).any())
		throw Error(ErrorCode::DataException, "a feature value is infinite");
	if (in.task == Task::Classification) {
		if (in.n_classes < 1 || in.n_classes > (1 << 20))
			throw Error(ErrorCode::Internal, "invalid number of classes " + std::to_string(in.n_classes));
		for (Eigen::Index i = 0; i < in.y->size(); i++) {
			double c = (*in.y)(i);
			if (!(c >= 0 && c < in.n_classes && c == std::floor(c)))
				throw Error(ErrorCode::Internal, "class id out of range in row " + std::to_string(i));
		}
	} else if (!in.y->allFinite()) {
		throw Error(ErrorCode::DataException, "a target value is not finite");
	}
}

std::vector<ParamSpec> tree_growth_params()
{
	const double inf = INFINITY;
	std::vector<ParamSpec> v;
	v.push_back(num_param("max_depth", K::Int, 0, 1e6, 0));
	v.push_back(num_param("min_samples_split", K::Int, 2, 1e9, 2));
	v.push_back(num_param("min_samples_leaf", K::Int, 1, 1e9, 1));
	v.push_back(num_param("max_features", K::Float, 0, inf, 0));
	v.push_back(num_param("min_impurity_decrease", K::Float, 0, inf, 0));
	ParamSpec c;
	c.name = "criterion";
	c.kind = K::Choice;
	c.min = c.max = c.def = 0;
	c.choices = "gini,entropy";
	c.def_choice = "gini";
	v.push_back(c);
	v.push_back(num_param("max_bin", K::Int, 0, BinnedFeatures::kMaxBin, BinnedFeatures::kMaxBin));
	return v;
}

TreeOptions tree_options(const Params &params, const FitInput &in, int default_max_features)
{
	TreeOptions o;
	const int p = static_cast<int>(in.X->cols());
	o.criterion = criterion_for(in.task, params.choice("criterion"));
	o.n_outputs = in.task == Task::Classification ? in.n_classes : 1;
	o.max_depth = params.integer("max_depth");
	o.min_samples_split = params.integer("min_samples_split");
	o.min_samples_leaf = params.integer("min_samples_leaf");
	o.max_features = resolve_max_features(params.num("max_features"), p, default_max_features);
	o.min_impurity_decrease = params.num("min_impurity_decrease");
	o.max_bin = params.integer("max_bin");
	if (o.max_bin == 1)
		throw Error(ErrorCode::InvalidParameter, "max_bin must be 0 or between 2 and 256", "",
		            "0 finds exact thresholds by sorting each node's values (slower); 2 to 256 bins the features.");
	return o;
}

Eigen::VectorXd normalise_sum(const Eigen::VectorXd &v)
{
	double s = v.sum();
	return s > 0 ? Eigen::VectorXd(v / s) : v;
}

void write_checked(Writer &w, uint16_t version, const std::vector<uint8_t> &body)
{
	w.u16(version);
	w.str(std::string(body.begin(), body.end()));
	w.u32(crc32(body.data(), body.size()));
}

std::string read_checked(Reader &r, uint16_t max_version, const char *what, uint16_t *version)
{
	uint16_t v = r.u16();
	if (v < 1 || v > max_version)
		tree_corrupt(std::string("Unknown ") + what + " encoding version " + std::to_string(v) + ".");
	*version = v;
	std::string body = r.str();
	uint32_t crc = r.u32();
	if (crc != crc32(reinterpret_cast<const uint8_t *>(body.data()), body.size()))
		tree_corrupt(std::string("The ") + what + " checksum does not match.");
	return body;
}

void tree_corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

} // namespace pgml
