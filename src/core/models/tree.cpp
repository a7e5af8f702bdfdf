#include "tree.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "limits.hpp"

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

using K = ParamSpec::Kind;

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

// Grows one tree; holds the scratch buffers of one grow_tree call.
class Grower {
  public:
	Grower(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, const std::vector<double> *weights,
	       const TreeOptions &opt, TreeRng &rng, CancelPoll &cancel)
		: X_(X), y_(y), opt_(opt), rng_(rng), cancel_(cancel), n_(static_cast<int>(X.rows())),
		  p_(static_cast<int>(X.cols())), k_(opt.n_outputs), cls_(opt.criterion != SplitCriterion::SquaredError)
	{
		w_.resize(static_cast<size_t>(n_));
		for (int i = 0; i < n_; i++) {
			w_[static_cast<size_t>(i)] = weights ? (*weights)[static_cast<size_t>(i)] : 1.0;
			if (w_[static_cast<size_t>(i)] > 0)
				idx_.push_back(i);
		}
		features_.resize(static_cast<size_t>(p_));
		std::iota(features_.begin(), features_.end(), 0);
		mtry_ = opt.max_features <= 0 || opt.max_features >= p_ ? p_ : opt.max_features;
		counts_.resize(static_cast<size_t>(k_));
		left_.resize(static_cast<size_t>(k_));
		miss_.resize(static_cast<size_t>(k_));
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
	struct Split {
		bool found = false;
		int feature = -1;
		double threshold = 0;
		bool missing_left = false; // where the missing values go
		bool saw_missing = false;  // the node had missing values of the feature (else decided by weight)
	};

	Stats stats(int start, int end);
	void leaf_values(int start, int end, std::vector<double> &out);
	Split best_split(int start, int end, const Stats &st);

	const Eigen::MatrixXd &X_;
	const Eigen::VectorXd &y_;
	const TreeOptions &opt_;
	TreeRng &rng_;
	CancelPoll &cancel_;
	const int n_, p_, k_;
	const bool cls_;
	int mtry_ = 0;
	std::vector<double> w_;
	std::vector<int> idx_;      // rows of weight > 0; each node owns a contiguous range
	std::vector<int> features_; // candidate order (partially shuffled when mtry_ < p_)
	std::vector<double> counts_, left_, miss_;
	std::vector<std::pair<double, int>> sorted_;
};

// Weight, impurity and mean of the rows idx_[start, end).
Grower::Stats Grower::stats(int start, int end)
{
	Stats s;
	if (cls_) {
		std::fill(counts_.begin(), counts_.end(), 0.0);
		for (int t = start; t < end; t++) {
			int i = idx_[static_cast<size_t>(t)];
			counts_[static_cast<size_t>(y_(i))] += w_[static_cast<size_t>(i)];
		}
		for (double c : counts_)
			s.W += c;
		s.impurity = class_impurity(counts_.data(), k_, s.W, opt_.criterion);
	} else {
		double sum = 0;
		for (int t = start; t < end; t++) {
			int i = idx_[static_cast<size_t>(t)];
			s.W += w_[static_cast<size_t>(i)];
			sum += w_[static_cast<size_t>(i)] * y_(i);
		}
		s.mean = sum / s.W;
		double ss = 0;
		for (int t = start; t < end; t++) {
			int i = idx_[static_cast<size_t>(t)];
			double d = y_(i) - s.mean;
			ss += w_[static_cast<size_t>(i)] * d * d;
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

// The best split of the rows idx_[start, end) over up to mtry_ non-constant features, with the
// default direction of the rows whose feature is missing (see tree.hpp).
Grower::Split Grower::best_split(int start, int end, const Stats &st)
{
	Split best;
	double best_proxy = -std::numeric_limits<double>::infinity();
	const int min_leaf = opt_.min_samples_leaf;
	if (cls_) { // class totals of the node, for the right side
		std::fill(counts_.begin(), counts_.end(), 0.0);
		for (int t = start; t < end; t++) {
			int i = idx_[static_cast<size_t>(t)];
			counts_[static_cast<size_t>(y_(i))] += w_[static_cast<size_t>(i)];
		}
	}
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
			const int i = idx_[static_cast<size_t>(t)];
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
		double sqA_l = 0, sqA_r = 0, sqB_l = 0, sqB_r = 0; // gini: sums of squared class weights
		double eA_l = 0, eA_r = 0, eB_l = 0, eB_r = 0;     // entropy: sums of c log2 c
		if (cls_) {
			std::fill(left_.begin(), left_.end(), 0.0);
			for (int c = 0; c < k_; c++) {
				const double tot = counts_[static_cast<size_t>(c)], mc = miss_[static_cast<size_t>(c)];
				sqA_r += tot * tot;
				eA_r += xlog2x(tot);
				sqB_l += mc * mc;
				eB_l += xlog2x(mc);
				sqB_r += (tot - mc) * (tot - mc);
				eB_r += xlog2x(tot - mc);
			}
		}
		auto consider = [&](double proxy, double thr, bool missing_left) {
			if (proxy > best_proxy) {
				best_proxy = proxy;
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
				if (opt_.criterion == SplitCriterion::Gini) {
					sqA_l += (cl + wi) * (cl + wi) - cl * cl;
					sqA_r += (crA - wi) * (crA - wi) - crA * crA;
					if (nm > 0) {
						sqB_l += (clB + wi) * (clB + wi) - clB * clB;
						sqB_r += (crB - wi) * (crB - wi) - crB * crB;
					}
				} else {
					eA_l += xlog2x(cl + wi) - xlog2x(cl);
					eA_r += xlog2x(crA - wi) - xlog2x(crA);
					if (nm > 0) {
						eB_l += xlog2x(clB + wi) - xlog2x(clB);
						eB_r += xlog2x(crB - wi) - xlog2x(crB);
					}
				}
				left_[c] = cl + wi;
			} else {
				sl += wi * (y_(i) - st.mean);
			}
			const int nl = t + 1, nr = mp - nl; // present rows left / right
			if (t + 1 == mp) {
				// every present value left, the missing rows right
				if (nm > 0 && mp >= min_leaf && nm >= min_leaf && wm > 0)
					consider(proxy_of(wl, sl, sqA_l, sqA_r, eA_l, eA_r), std::numeric_limits<double>::max(), false);
				break;
			}
			const double v = sorted_[static_cast<size_t>(t)].first, next = sorted_[static_cast<size_t>(t) + 1].first;
			if (next <= v + kFeatureThreshold)
				continue;
			double thr = v / 2 + next / 2;
			if (thr >= next || !std::isfinite(thr))
				thr = v;
			if (nl >= min_leaf && nr + nm >= min_leaf && wl > 0 && st.W - wl > 0)
				consider(proxy_of(wl, sl, sqA_l, sqA_r, eA_l, eA_r), thr, false);
			if (nm > 0 && nl + nm >= min_leaf && nr >= min_leaf && st.W - wl - wm > 0)
				consider(proxy_of(wl + wm, sl + sm, sqB_l, sqB_r, eB_l, eB_r), thr, true);
		}
	}
	return best;
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
			sp = best_split(it.start, it.end, it.st);
			leaf = !sp.found;
		}
		if (!leaf) {
			const double *col = X_.col(sp.feature).data();
			auto first = idx_.begin() + it.start, last = idx_.begin() + it.end;
			mid = static_cast<int>(std::partition(first, last,
			                                      [&](int i) {
				                                      const double v = col[i];
				                                      return std::isnan(v) ? sp.missing_left : v <= sp.threshold;
			                                      }) -
			                       idx_.begin());
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

TreeFit grow_tree(const Eigen::MatrixXd &X, const Eigen::VectorXd &y, const std::vector<double> *weights,
                  const TreeOptions &opt, TreeRng &rng, CancelPoll &cancel)
{
	Grower g(X, y, weights, opt, rng, cancel);
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
