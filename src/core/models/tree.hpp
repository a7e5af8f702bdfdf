// pg_ml core: CART trees, shared by decision_tree and random_forest.
//
// One tree is grown depth-first with an explicit stack (no recursion, so an unlimited depth
// cannot overflow the C++ stack). Split criteria:
//  - regression: squared error (a node's impurity is the weighted variance of y);
//  - classification: 'gini' (1 - sum p_k^2) or 'entropy' (-sum p_k log2 p_k).
// Split finding (max_bin, default 256): every feature is binned once per fit (BinnedFeatures,
// shared by all trees of a forest) into at most max_bin bins: one bin per distinct value when the
// feature has at most max_bin of them (the candidate thresholds are then exactly those of an
// exact sorter, as scikit-learn's BestSplitter), else bins of about equal row counts whose edges
// are distinct values. A node sums its rows' weights (and class weights, or centred targets) per
// bin of each candidate feature and sweeps the bins in order; the threshold between two
// neighbouring non-empty bins is the midpoint of the left bin's largest value and the right
// bin's smallest. max_bin = 0 sorts the node's values of each candidate feature instead (exact
// thresholds on any data, slower). A row goes left when z[feature] <= threshold. Values closer
// than 1e-7 count as equal (sklearn's FEATURE_THRESHOLD).
// Missing values (NaN in X) are handled natively, as XGBoost and LightGBM do: each split also
// learns a default direction for the rows whose feature is missing. Every candidate threshold
// is scored twice, with the node's missing rows sent left and sent right, and the better one
// is kept (ties: right); "every present value left, the missing rows right" is a candidate of
// its own (threshold DBL_MAX). When a node has no missing value for the chosen feature, missing
// values go to the child with the larger training weight (ties: left). A NaN is routed by the
// node's default direction at prediction.
// Rows carry integer weights (bootstrap multiplicities); min_samples_* count distinct rows, as
// sklearn counts the rows of a bootstrap sample.
// Leaves hold the weighted mean of y (regression) or the weighted class frequencies
// (classification, probabilities summing to 1).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <Eigen/Dense>

#include "common.hpp"
#include "estimator.hpp"
#include "serialize.hpp"

namespace pgml {

// A small portable random generator (SplitMix64): the same stream on every platform and
// standard library, unlike std::uniform_int_distribution.
class TreeRng {
  public:
	explicit TreeRng(uint64_t seed) : s_(seed) {}
	// Seeds a generator from (seed, stream): e.g. one independent stream per tree.
	static TreeRng stream(uint64_t seed, uint64_t index) { return TreeRng(mix(seed ^ mix(index + 0x632BE59BD9B4E019ull))); }
	uint64_t next()
	{
		s_ += 0x9E3779B97F4A7C15ull;
		return mix(s_);
	}
	// Uniform integer in [0, n), n >= 1 (bias below 2^-40 for any n that fits in memory).
	size_t below(size_t n) { return static_cast<size_t>(next() % n); }

  private:
	static uint64_t mix(uint64_t z)
	{
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		return z ^ (z >> 31);
	}
	uint64_t s_;
};

// Cancellation and the node memory budget shared by the threads of one fit: only the thread
// that created it calls the CancelCheck (the glue's check reads backend state); other threads
// see the flag it sets. The trees' node arrays grow with the data (up to 2 n - 1 nodes a tree),
// so every node is charged before it is added; past memory_limit (0: none) every thread stops
// with Error(ProgramLimit) naming `algorithm` and the hyperparameters to lower.
class CancelPoll {
  public:
	explicit CancelPoll(CancelCheck cancel, size_t memory_limit = 0, std::string algorithm = {})
		: cancel_(cancel), owner_(std::this_thread::get_id()), limit_(memory_limit), algorithm_(std::move(algorithm))
	{
	}
	// Throws Error(Cancelled) when the caller asked to stop (or the limit's error once another
	// thread went past the memory limit).
	void poll()
	{
		if (std::this_thread::get_id() == owner_ && cancel_ != nullptr && cancel_()) {
			stop_.store(true);
			throw Error(ErrorCode::Cancelled, "canceled");
		}
		if (stop_.load(std::memory_order_relaxed))
			stopped();
	}
	// Counts `bytes` of tree memory about to be allocated (any thread); throws past the limit.
	void charge(size_t bytes)
	{
		const size_t used = used_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
		if (limit_ > 0 && used > limit_) {
			over_.store(true);
			stop_.store(true);
			stopped();
		}
	}
	size_t charged() const { return used_.load(); }
	size_t limit() const { return limit_; }

  private:
	[[noreturn]] void stopped() const;

	CancelCheck cancel_;
	std::thread::id owner_;
	size_t limit_;
	std::string algorithm_;
	std::atomic<bool> stop_{false};
	std::atomic<bool> over_{false};
	std::atomic<size_t> used_{0};
};

enum class SplitCriterion : uint8_t { SquaredError = 0, Gini = 1, Entropy = 2 };

// How one tree is grown.
struct TreeOptions {
	SplitCriterion criterion = SplitCriterion::Gini;
	int n_outputs = 1;               // 1 for regression, K (classes) for classification
	int max_depth = 0;               // 0 = unlimited
	int min_samples_split = 2;
	int min_samples_leaf = 1;
	int max_features = 0;            // features examined per split; 0 or >= p = all (in column order)
	double min_impurity_decrease = 0; // weighted impurity decrease (fraction of the root's weight) a split must reach
	int max_bin = 256;                // bins per feature (2..256); 0 = sort each node's values (exact)
	bool record_leaves = false;       // fill TreeFit::leaf_of
};

// The features of a fit binned once (shared read-only by the trees of a forest): per feature at
// most max_bin value bins, ordered by value, each with its smallest and largest training value;
// one bin per distinct value when the feature has at most that many (a feature with missing
// values has at most min(max_bin, 255) value bins: code 255 marks its missing rows). Rows hold
// one u8 code per feature, column-major.
class BinnedFeatures {
  public:
	static constexpr int kMaxBin = 256;
	static constexpr uint8_t kMissing = 255;
	// Bins the columns of X (NaN = missing) on up to `threads` threads, polling cancel. Checks
	// bytes() against cancel's memory limit first (Error(ProgramLimit) naming algorithm) and
	// charges the codes to it.
	BinnedFeatures(const Eigen::MatrixXd &X, int max_bin, int threads, int n_outputs, CancelPoll &cancel,
	               const std::string &algorithm);
	// Peak bytes of binning n x p values on `threads` threads (codes, bin bounds, sort buffers)
	// and of the scratch of one tree per thread (its rows, its bin sums for n_outputs classes).
	static double bytes(double n, double p, int threads, int n_outputs);
	Eigen::Index rows() const { return n_; }
	const uint8_t *codes(int f) const { return codes_.data() + static_cast<size_t>(f) * static_cast<size_t>(n_); }
	bool has_missing(int f) const { return missing_[static_cast<size_t>(f)] != 0; }
	int bins(int f) const { return first_[static_cast<size_t>(f) + 1] - first_[static_cast<size_t>(f)]; }
	double lo(int f, int b) const { return lo_[static_cast<size_t>(first_[static_cast<size_t>(f)] + b)]; }
	double hi(int f, int b) const { return hi_[static_cast<size_t>(first_[static_cast<size_t>(f)] + b)]; }

  private:
	void bin_feature(const Eigen::MatrixXd &X, int f, int max_bin, std::vector<double> &sorted, std::vector<double> &lo,
	                 std::vector<double> &hi);

	Eigen::Index n_ = 0;
	std::vector<uint8_t> codes_;     // n x p, column-major
	std::vector<int> first_;         // feature f's bins are first_[f] .. first_[f + 1] - 1
	std::vector<double> lo_, hi_;    // per bin: smallest and largest value
	std::vector<uint8_t> missing_;   // per feature: 1 when some row is missing
};

// A node of a fitted tree. Internal: feature >= 0, rows with z[feature] <= threshold go to
// left, the others to right; a missing z[feature] (NaN) goes left when missing_left. Leaf:
// feature = -1, its n_outputs values start at values[value]. cover: the training weight that
// reached the node (a parent's is the sum of its children's), which tree SHAP needs; 0 in a
// tree read from an encoding without covers.
struct TreeNode {
	int32_t feature = -1;
	int32_t left = 0;
	int32_t right = 0;
	int32_t value = 0;
	double threshold = 0;
	double cover = 0;
	bool missing_left = false;
};

// Encodings of a tree (the enclosing estimator's sub-format version picks one):
//  1: no missing-value directions (fitted on imputed features; a NaN would go right);
//  2: one u8 per internal node after its children: 1 = missing values go left;
//  3: as 2, then one f64 cover per node (leaf or internal) after its fields;
//  4: the same bytes as 3, for a model fitted on imputed features (its estimator says which).
constexpr uint16_t kTreeEncodingImputed = 1;
constexpr uint16_t kTreeEncodingNativeMissing = 2;
constexpr uint16_t kTreeEncodingCovers = 3;
constexpr uint16_t kTreeEncodingImputedCovers = 4;

// Whether a tree model of sub-format version v (= its trees' encoding) takes missing values
// natively (2 and 3; 1 and 4 were fitted on imputed features).
inline bool tree_encoding_native(uint16_t v) { return v == kTreeEncodingNativeMissing || v == kTreeEncodingCovers; }

class Tree {
  public:
	std::vector<TreeNode> nodes; // nodes[0] is the root; children always follow their parent
	std::vector<double> values;  // leaf values, n_outputs per leaf
	int n_outputs = 1;
	bool has_covers = false;     // grown by this build, or read from encoding 3 or 4

	// The n_outputs values of the leaf z falls in (z has the tree's p features).
	const double *leaf(const double *z) const
	{
		int i = 0;
		while (nodes[static_cast<size_t>(i)].feature >= 0)
			i = child(nodes[static_cast<size_t>(i)], z);
		return values.data() + nodes[static_cast<size_t>(i)].value;
	}
	// The child of internal node n that z goes to.
	static int child(const TreeNode &n, const double *z)
	{
		const double v = z[n.feature];
		if (v <= n.threshold)
			return n.left;
		if (v > n.threshold)
			return n.right;
		return n.missing_left ? n.left : n.right; // NaN
	}
	int depth() const;
	int leaves() const;
	// Path-dependent tree SHAP (Lundberg et al. 2018, Algorithm 2) of output k for the row z:
	// adds each feature's SHAP value to phi[0..p-1] and returns the tree's expected value (the
	// cover-weighted mean of the leaves), so that the sum of the added values plus the
	// expected value is leaf(z)[k]. Needs has_covers. A missing z[feature] follows the split's
	// default direction, as leaf() does.
	double shap(const double *z, int k, double *phi) const;
	// Writes the nodes in the given encoding (the reader needs p and n_outputs from the
	// enclosing estimator).
	void write(Writer &w, uint16_t encoding) const;
	// Reads and validates a tree: features < p, children after their parent, finite thresholds,
	// leaf values finite (probabilities in [0, 1] summing to 1 when classification), direction
	// bytes 0 or 1, covers in [1, 2^53] with a parent's cover the sum of its children's.
	static Tree read(Reader &r, int p, int n_outputs, bool classification, uint16_t encoding);

  private:
	void check_covers() const;
};

// The result of growing one tree.
struct TreeFit {
	Tree tree;
	Eigen::VectorXd gain;    // per feature: total weighted impurity decrease of its splits (not normalised)
	double leaf_impurity = 0; // weighted mean impurity of the leaves (training loss under the criterion)
	// With TreeOptions::record_leaves, per training row: where its leaf's values start in
	// tree.values (-1 for a row of weight 0), so the fit's own outputs need no second pass.
	std::vector<int32_t> leaf_of;
};

// Grows one tree on the rows of X (n x p; NaN = missing, no infinities) with target y (value, or class id 0..K-1 when the
// criterion is gini / entropy). weights: null (every row once) or n non-negative integer
// multiplicities (rows of weight 0 are left out). rng picks the features examined when
// opt.max_features < p. Polls cancel once per node. When opt.max_bin > 0 the splits are found on
// binned (X's BinnedFeatures for opt.max_bin, built here when null); threads: how many threads a
// single tree may use for the features of its large nodes (a forest grows trees in parallel: 1).
TreeFit grow_tree(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, const std::vector<double> *weights,
                  const TreeOptions &opt, TreeRng &rng, CancelPoll &cancel, const BinnedFeatures *binned = nullptr,
                  int threads = 1);

// max_features hyperparameter -> features per split: 0 = def_count; (0, 1] = that fraction of p
// (at least 1); > 1 = that many (rounded down, at most p).
int resolve_max_features(double v, int p, int def_count);

// The criterion named by the 'criterion' hyperparameter for a task (regression: squared error).
SplitCriterion criterion_for(Task task, const std::string &name);

// Checks a FitInput for a tree model: X, y present and of matching size, no empty data, no
// infinite feature (NaN is a missing value), class ids whole and in 0..K-1, a supported task.
// Throws Error otherwise.
void check_tree_input(const FitInput &in, const char *algorithm);

// The hyperparameters every tree model shares: max_depth, min_samples_split, min_samples_leaf,
// max_features, min_impurity_decrease, criterion, max_bin.
std::vector<ParamSpec> tree_growth_params();

// TreeOptions from those hyperparameters for a fit on p features; max_features = 0 means
// default_max_features. Throws Error(InvalidParameter) for max_bin 1.
TreeOptions tree_options(const Params &params, const FitInput &in, int default_max_features);

// Divides v by its sum when that is positive (importances summing to 1).
Eigen::VectorXd normalise_sum(const Eigen::VectorXd &v);

// Writes / reads an estimator body behind a u16 sub-format version and a CRC-32 of the body, so a
// single corrupted byte is always noticed even without the blob header. read_checked accepts
// versions 1..max_version and stores the one read in *version.
void write_checked(Writer &w, uint16_t version, const std::vector<uint8_t> &body);
std::string read_checked(Reader &r, uint16_t max_version, const char *what, uint16_t *version);

// Estimator::contributions of a tree model (the mean of its trees): each feature's tree SHAP
// value of output k (regression: 0; classification: the class, whose probability is explained)
// in out[0..p-1] and the expected value last. Trees read from a blob without covers (written
// before pg_ml explained trees) throw Error(FeatureNotSupported) naming algorithm.
void tree_contributions(const Tree *trees, size_t count, const double *z, int k, int p, double *out,
                        const char *algorithm);

// Throws Error(DataCorrupted) with the given detail.
[[noreturn]] void tree_corrupt(const std::string &detail);

} // namespace pgml
