#include "tree.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

namespace pgml {

namespace {

constexpr double kFeatureThreshold = 1e-7; // values closer than this are one value (sklearn)
constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
constexpr uint32_t kLeafTag = 0xFFFFFFFFu;

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
	std::vector<double> counts_, left_;
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

// The best split of the rows idx_[start, end) over up to mtry_ non-constant features.
Grower::Split Grower::best_split(int start, int end, const Stats &st)
{
	Split best;
	double best_proxy = -std::numeric_limits<double>::infinity();
	const int m = end - start;
	const int min_leaf = opt_.min_samples_leaf;
	if (cls_) { // class totals of the node, for the right side
		std::fill(counts_.begin(), counts_.end(), 0.0);
		for (int t = start; t < end; t++) {
			int i = idx_[static_cast<size_t>(t)];
			counts_[static_cast<size_t>(y_(i))] += w_[static_cast<size_t>(i)];
		}
	}
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
		for (int t = start; t < end; t++) {
			int i = idx_[static_cast<size_t>(t)];
			sorted_.emplace_back(col[i], i);
			lo = std::min(lo, col[i]);
			hi = std::max(hi, col[i]);
		}
		if (hi <= lo + kFeatureThreshold)
			continue; // constant in this node: does not count towards mtry_
		visited++;
		std::sort(sorted_.begin(), sorted_.end(),
		          [](const std::pair<double, int> &a, const std::pair<double, int> &b) { return a.first < b.first; });
		// sweep: rows sorted_[0..t] go left
		double wl = 0, sl = 0;            // left weight; regression: left sum of (y - mean)
		double sq_l = 0, sq_r = 0;        // gini: sum of squared class weights left / right
		double el = 0, er = 0;            // entropy: sum of c log2 c left / right
		if (cls_) {
			std::fill(left_.begin(), left_.end(), 0.0);
			for (double c : counts_) {
				sq_r += c * c;
				er += xlog2x(c);
			}
		}
		for (int t = 0; t + 1 < m; t++) {
			const int i = sorted_[static_cast<size_t>(t)].second;
			const double wi = w_[static_cast<size_t>(i)];
			wl += wi;
			if (cls_) {
				const size_t c = static_cast<size_t>(y_(i));
				double cl = left_[c], cr = counts_[c] - cl;
				if (opt_.criterion == SplitCriterion::Gini) {
					sq_l += (cl + wi) * (cl + wi) - cl * cl;
					sq_r += (cr - wi) * (cr - wi) - cr * cr;
				} else {
					el += xlog2x(cl + wi) - xlog2x(cl);
					er += xlog2x(cr - wi) - xlog2x(cr);
				}
				left_[c] = cl + wi;
			} else {
				sl += wi * (y_(i) - st.mean);
			}
			const double v = sorted_[static_cast<size_t>(t)].first, next = sorted_[static_cast<size_t>(t) + 1].first;
			if (next <= v + kFeatureThreshold)
				continue;
			if (t + 1 < min_leaf || m - (t + 1) < min_leaf)
				continue;
			const double wr = st.W - wl;
			if (wl <= 0 || wr <= 0)
				continue;
			// a quantity that grows as the children's weighted impurity falls
			double proxy;
			if (!cls_) {
				double sr = -sl; // the centred total is 0
				proxy = sl * sl / wl + sr * sr / wr;
			} else if (opt_.criterion == SplitCriterion::Gini) {
				proxy = sq_l / wl + sq_r / wr;
			} else {
				proxy = el - xlog2x(wl) + er - xlog2x(wr);
			}
			if (proxy > best_proxy) {
				best_proxy = proxy;
				best.found = true;
				best.feature = f;
				double thr = v / 2 + next / 2;
				if (thr >= next || !std::isfinite(thr))
					thr = v;
				best.threshold = thr;
			}
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
			mid = static_cast<int>(std::partition(first, last, [&](int i) { return col[i] <= sp.threshold; }) -
			                       idx_.begin());
			ls = stats(it.start, mid);
			rs = stats(mid, it.end);
			double decrease = it.st.W * it.st.impurity - ls.W * ls.impurity - rs.W * rs.impurity;
			if (decrease / W_root + kEpsilon < opt_.min_impurity_decrease)
				leaf = true;
			else
				out.gain(sp.feature) += std::max(0.0, decrease);
		}
		TreeNode &node = nodes[static_cast<size_t>(id)];
		if (leaf) {
			node.feature = -1;
			node.value = static_cast<int32_t>(out.tree.values.size());
			leaf_values(it.start, it.end, out.tree.values);
			leaf_imp += it.st.W * it.st.impurity;
		} else {
			node.feature = sp.feature;
			node.threshold = sp.threshold;
			stack.push_back({mid, it.end, it.depth + 1, id, false, rs});
			stack.push_back({it.start, mid, it.depth + 1, id, true, ls});
		}
	}
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
// internal node f64 threshold, u32 left, u32 right.
void Tree::write(Writer &w) const
{
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
		}
	}
}

Tree Tree::read(Reader &r, int p, int n_outputs, bool classification)
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
		}
	}
	return t;
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
	if (!in.X->allFinite())
		throw Error(ErrorCode::DataException, "a feature value is not finite");
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

std::string read_checked(Reader &r, uint16_t version, const char *what)
{
	uint16_t v = r.u16();
	if (v != version)
		tree_corrupt(std::string("Unknown ") + what + " encoding version " + std::to_string(v) + ".");
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
