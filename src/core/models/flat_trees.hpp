// pg_ml core: a forest of binary trees flattened for prediction (issue 15).
//
// Every node of every tree is one record in a single array, a tree's nodes contiguous and its
// children by absolute index, so a row walks each tree with no pointer chasing beyond the
// array and no allocation. Gradient boosting converts libxgboost's trees into one when a model
// is loaded and predicts without calling libxgboost per row (FlatForest: float thresholds, a
// row goes left when its value is less than the threshold, as libxgboost splits); random
// forests convert their CART trees (CartForest: double thresholds, left when less or equal).
// A missing value (NaN) goes the node's default way. Each tree adds its leaf's `width` values
// to acc[group + k] in tree order, as the trees' own code adds them: the sums are the same to
// the bit.
//
// Shallow forests (every tree at most kMaxCompleteDepth deep) are also laid out as complete
// trees of the forest's depth D in heap order (node i's children 2i+1 and 2i+2), a leaf above
// depth D copied to every leaf below it: a row then takes exactly D branch-free steps per tree,
// four trees interleaved, which is several times faster than walking the trees' own shapes
// (whose branches the processor cannot predict).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pgml {

// Whether models predict through their flattened trees (default); tests switch it off to
// compare with libxgboost / the trees' own code.
inline std::atomic<bool> &flat_trees_switch()
{
	static std::atomic<bool> on{true};
	return on;
}
inline void set_flat_trees(bool on) { flat_trees_switch().store(on, std::memory_order_relaxed); }
inline bool flat_trees_enabled() { return flat_trees_switch().load(std::memory_order_relaxed); }

template <class Real, bool kLessEqual> class FlatTrees {
  public:
	explicit FlatTrees(int width = 1) : width_(width) {}

	// Starts a tree whose leaves add to acc[group ..]; nodes are then added in the tree's own
	// order (index 0 the root), children by the tree's own indices.
	void begin_tree(int group)
	{
		base_ = static_cast<int32_t>(nodes_.size());
		roots_.push_back(base_);
		groups_.push_back(group);
	}
	void add_split(int feature, Real threshold, bool default_left, int left, int right)
	{
		uint32_t info = static_cast<uint32_t>(feature) | (default_left ? 0x80000000u : 0u);
		nodes_.push_back(Node{threshold, info, base_ + left, base_ + right});
	}
	// A leaf with width values.
	void add_leaf(const Real *v)
	{
		nodes_.push_back(Node{0, 0, -1, static_cast<int32_t>(values_.size())});
		values_.insert(values_.end(), v, v + width_);
	}
	void add_leaf(Real v) { add_leaf(&v); }

	// Builds the complete layout when the forest is shallow enough (after the last tree).
	void finish()
	{
		complete_ = false;
		depth_ = 0;
		inner_.clear();
		leaves_.clear();
		int D = 0;
		for (int32_t r : roots_) {
			int d = depth(r, 0);
			if (d < 0)
				return;
			D = std::max(D, d);
		}
		const size_t n_inner = (size_t(1) << D) - 1, n_leaves = size_t(1) << D;
		const size_t leaf_bytes = sizeof(int32_t) + (width_ == 1 ? sizeof(Real) : 0);
		if (roots_.size() * (n_inner * sizeof(Inner) + n_leaves * leaf_bytes) > kMaxCompleteBytes)
			return;
		inner_.assign(roots_.size() * n_inner, Inner{0, 0});
		leaves_.assign(roots_.size() * n_leaves, 0);
		for (size_t t = 0; t < roots_.size(); t++)
			fill(roots_[t], 0, 0, D, inner_.data() + t * n_inner, leaves_.data() + t * n_leaves);
		single_.clear();
		if (width_ == 1)
			for (int32_t at : leaves_)
				single_.push_back(values_[static_cast<size_t>(at)]);
		depth_ = D;
		complete_ = true;
	}

	size_t trees() const { return roots_.size(); }
	bool empty() const { return roots_.empty(); }
	// The depth of the complete layout, 0 when the trees are walked.
	int complete_depth() const { return complete_ ? std::max(depth_, 1) : 0; }

	// Adds each tree's leaf values for row x (NaN for missing) to acc[its group + k].
	void accumulate(const Real *x, Real *acc) const
	{
		if (complete_)
			accumulate_complete(x, acc);
		else
			accumulate_walk(x, acc);
	}

  private:
	static constexpr int kMaxCompleteDepth = 10;
	static constexpr size_t kMaxCompleteBytes = size_t(64) << 20;
	struct Node {
		Real threshold;
		uint32_t info; // split feature (bits 0-30) and the default way of a missing value (bit 31: left)
		int32_t left;  // absolute index of the left child, -1 for a leaf
		int32_t right; // absolute index of the right child; a leaf: where its values start
	};
	struct Inner {
		Real threshold;
		uint32_t info; // as Node::info
	};

	// 1 when the row goes right at a split.
	static size_t goes_right(Real threshold, uint32_t info, const Real *x)
	{
		const Real v = x[info & 0x7fffffffu];
		const bool nan = std::isnan(v);
		const bool dleft = (info & 0x80000000u) != 0;
		const bool left = kLessEqual ? v <= threshold : v < threshold;
		return static_cast<size_t>(!left ^ (nan & dleft));
	}

	void add(size_t t, int32_t at, Real *acc) const
	{
		Real *a = acc + groups_[t];
		const Real *v = values_.data() + at;
		for (int k = 0; k < width_; k++)
			a[k] += v[k];
	}

	// The tree's depth below node n (a leaf: 0), or -1 past kMaxCompleteDepth.
	int depth(int32_t n, int level) const
	{
		const Node &nd = nodes_[static_cast<size_t>(n)];
		if (nd.left < 0)
			return 0;
		if (level >= kMaxCompleteDepth)
			return -1;
		int l = depth(nd.left, level + 1), r = depth(nd.right, level + 1);
		return l < 0 || r < 0 ? -1 : 1 + std::max(l, r);
	}

	// Writes node n at heap position i of level `level` of a complete tree of depth D.
	void fill(int32_t n, size_t i, int level, int D, Inner *inner, int32_t *leaves) const
	{
		const Node &nd = nodes_[static_cast<size_t>(n)];
		if (level == D) {
			leaves[i - ((size_t(1) << D) - 1)] = nd.right;
			return;
		}
		if (nd.left < 0) {
			/* a leaf above depth D: whichever way the row goes, it ends on this leaf */
			inner[i] = Inner{0, 0};
			fill(n, 2 * i + 1, level + 1, D, inner, leaves);
			fill(n, 2 * i + 2, level + 1, D, inner, leaves);
			return;
		}
		inner[i] = Inner{nd.threshold, nd.info};
		fill(nd.left, 2 * i + 1, level + 1, D, inner, leaves);
		fill(nd.right, 2 * i + 2, level + 1, D, inner, leaves);
	}

	void accumulate_complete(const Real *x, Real *acc) const
	{
		const size_t n_inner = (size_t(1) << depth_) - 1, n_leaves = size_t(1) << depth_;
		const size_t T = roots_.size();
		size_t t = 0;
		for (; t + 4 <= T; t += 4) {
			const Inner *a = inner_.data() + t * n_inner;
			size_t i0 = 0, i1 = 0, i2 = 0, i3 = 0;
			for (int d = 0; d < depth_; d++) {
				const Inner &n0 = a[i0], &n1 = a[n_inner + i1], &n2 = a[2 * n_inner + i2], &n3 = a[3 * n_inner + i3];
				i0 = 2 * i0 + 1 + goes_right(n0.threshold, n0.info, x);
				i1 = 2 * i1 + 1 + goes_right(n1.threshold, n1.info, x);
				i2 = 2 * i2 + 1 + goes_right(n2.threshold, n2.info, x);
				i3 = 2 * i3 + 1 + goes_right(n3.threshold, n3.info, x);
			}
			if (width_ == 1) {
				/* one value per leaf, read in place */
				const Real *l = single_.data() + t * n_leaves;
				acc[groups_[t]] += l[i0 - n_inner];
				acc[groups_[t + 1]] += l[n_leaves + i1 - n_inner];
				acc[groups_[t + 2]] += l[2 * n_leaves + i2 - n_inner];
				acc[groups_[t + 3]] += l[3 * n_leaves + i3 - n_inner];
				continue;
			}
			const int32_t *l = leaves_.data() + t * n_leaves;
			add(t, l[i0 - n_inner], acc);
			add(t + 1, l[n_leaves + i1 - n_inner], acc);
			add(t + 2, l[2 * n_leaves + i2 - n_inner], acc);
			add(t + 3, l[3 * n_leaves + i3 - n_inner], acc);
		}
		for (; t < T; t++) {
			const Inner *a = inner_.data() + t * n_inner;
			size_t i = 0;
			for (int d = 0; d < depth_; d++)
				i = 2 * i + 1 + goes_right(a[i].threshold, a[i].info, x);
			add(t, leaves_[t * n_leaves + i - n_inner], acc);
		}
	}

	void accumulate_walk(const Real *x, Real *acc) const
	{
		const Node *nodes = nodes_.data();
		const size_t n = roots_.size();
		for (size_t t = 0; t < n; t++) {
			const Node *nd = nodes + roots_[t];
			while (nd->left >= 0)
				nd = nodes + (goes_right(nd->threshold, nd->info, x) ? nd->right : nd->left);
			add(t, nd->right, acc);
		}
	}

	int width_;
	std::vector<Node> nodes_;
	std::vector<Real> values_;
	std::vector<int32_t> roots_;
	std::vector<int32_t> groups_;
	int32_t base_ = 0;
	bool complete_ = false;
	int depth_ = 0;
	std::vector<Inner> inner_;    // per tree 2^D - 1 splits, heap order
	std::vector<int32_t> leaves_; // per tree 2^D leaves: where their values start
	std::vector<Real> single_;    // width 1: the leaves' values themselves
};

// libxgboost's trees: float thresholds, left when less; one value per leaf.
using FlatForest = FlatTrees<float, false>;
// CART trees (tree.hpp): double thresholds, left when less or equal; n_outputs values per leaf.
using CartForest = FlatTrees<double, true>;

} // namespace pgml
