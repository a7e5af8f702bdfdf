// pg_ml core: a forest of binary trees flattened for prediction (issue 15).
//
// Every node of every tree is one 16-byte record in a single array, a tree's nodes contiguous
// and its children by absolute index, so a row walks each tree with no pointer chasing beyond
// the array and no allocation. Gradient boosting converts libxgboost's trees into it once when
// a model is loaded and predicts without calling libxgboost per row. Splits are xgboost's: the
// row's value, as float, goes left when it is less than the node's threshold, and a missing
// value (NaN) goes the node's default way. Leaf values are summed in float in tree order, as
// libxgboost sums them, so the sums are libxgboost's to the bit.
//
// Shallow forests (every tree at most kMaxCompleteDepth deep) are also laid out as complete
// trees of the forest's depth D in heap order (node i's children 2i+1 and 2i+2), a leaf above
// depth D copied to every leaf below it: a row then takes exactly D branch-free steps per tree,
// four trees interleaved, which is several times faster than walking the trees' own shapes
// (whose branches the processor cannot predict).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pgml {

struct FlatNode {
	float value;   // split threshold, or the leaf's value
	uint32_t info; // split feature (bits 0-30) and the default direction of a missing value (bit 31: left)
	int32_t left;  // absolute index of the left child, -1 for a leaf
	int32_t right; // absolute index of the right child
};

class FlatForest {
  public:
	// Starts a tree whose leaves add to output group; nodes are then added in the tree's own
	// order (index 0 the root), children by the tree's own indices.
	void begin_tree(int group)
	{
		base_ = static_cast<int32_t>(nodes_.size());
		roots_.push_back(base_);
		groups_.push_back(group);
	}
	void add_split(int feature, float threshold, bool default_left, int left, int right)
	{
		uint32_t info = static_cast<uint32_t>(feature) | (default_left ? 0x80000000u : 0u);
		nodes_.push_back(FlatNode{threshold, info, base_ + left, base_ + right});
	}
	void add_leaf(float value) { nodes_.push_back(FlatNode{value, 0, -1, -1}); }

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
		if (roots_.size() * (n_inner * sizeof(Inner) + n_leaves * sizeof(float)) > kMaxCompleteBytes)
			return;
		inner_.assign(roots_.size() * n_inner, Inner{0.0f, 0});
		leaves_.assign(roots_.size() * n_leaves, 0.0f);
		for (size_t t = 0; t < roots_.size(); t++)
			fill(roots_[t], 0, 0, D, inner_.data() + t * n_inner, leaves_.data() + t * n_leaves);
		depth_ = D;
		complete_ = true;
	}

	size_t trees() const { return roots_.size(); }
	// The depth of the complete layout, 0 when the trees are walked.
	int complete_depth() const { return complete_ ? std::max(depth_, 1) : 0; }
	bool empty() const { return roots_.empty(); }

	// Adds each tree's leaf for row x (float features, NaN for missing) to acc[its group].
	void accumulate(const float *x, float *acc) const
	{
		if (complete_)
			accumulate_complete(x, acc);
		else
			accumulate_walk(x, acc);
	}

  private:
	static constexpr int kMaxCompleteDepth = 10;
	static constexpr size_t kMaxCompleteBytes = size_t(64) << 20;
	struct Inner {
		float threshold;
		uint32_t info; // as FlatNode::info
	};

	// The tree's depth below node n (a leaf: 0), or -1 past kMaxCompleteDepth.
	int depth(int32_t n, int level) const
	{
		const FlatNode &nd = nodes_[static_cast<size_t>(n)];
		if (nd.left < 0)
			return 0;
		if (level >= kMaxCompleteDepth)
			return -1;
		int l = depth(nd.left, level + 1), r = depth(nd.right, level + 1);
		return l < 0 || r < 0 ? -1 : 1 + std::max(l, r);
	}

	// Writes node n at heap position i of level `level` of a complete tree of depth D.
	void fill(int32_t n, size_t i, int level, int D, Inner *inner, float *leaves) const
	{
		const FlatNode &nd = nodes_[static_cast<size_t>(n)];
		if (level == D) {
			leaves[i - ((size_t(1) << D) - 1)] = nd.value;
			return;
		}
		if (nd.left < 0) {
			/* a leaf above depth D: whichever way the row goes, it ends on this value */
			inner[i] = Inner{0.0f, 0};
			fill(n, 2 * i + 1, level + 1, D, inner, leaves);
			fill(n, 2 * i + 2, level + 1, D, inner, leaves);
			return;
		}
		inner[i] = Inner{nd.value, nd.info};
		fill(nd.left, 2 * i + 1, level + 1, D, inner, leaves);
		fill(nd.right, 2 * i + 2, level + 1, D, inner, leaves);
	}

	// 1 when the row goes right at the node.
	static size_t goes_right(const Inner &n, const float *x)
	{
		const float v = x[n.info & 0x7fffffffu];
		const bool nan = std::isnan(v);
		const bool dleft = (n.info & 0x80000000u) != 0;
		return static_cast<size_t>(!(v < n.threshold) ^ (nan & dleft));
	}

	void accumulate_complete(const float *x, float *acc) const
	{
		const size_t n_inner = (size_t(1) << depth_) - 1, n_leaves = size_t(1) << depth_;
		const size_t T = roots_.size();
		size_t t = 0;
		for (; t + 4 <= T; t += 4) {
			const Inner *a = inner_.data() + t * n_inner;
			size_t i0 = 0, i1 = 0, i2 = 0, i3 = 0;
			for (int d = 0; d < depth_; d++) {
				i0 = 2 * i0 + 1 + goes_right(a[i0], x);
				i1 = 2 * i1 + 1 + goes_right(a[n_inner + i1], x);
				i2 = 2 * i2 + 1 + goes_right(a[2 * n_inner + i2], x);
				i3 = 2 * i3 + 1 + goes_right(a[3 * n_inner + i3], x);
			}
			const float *l = leaves_.data() + t * n_leaves;
			acc[groups_[t]] += l[i0 - n_inner];
			acc[groups_[t + 1]] += l[n_leaves + i1 - n_inner];
			acc[groups_[t + 2]] += l[2 * n_leaves + i2 - n_inner];
			acc[groups_[t + 3]] += l[3 * n_leaves + i3 - n_inner];
		}
		for (; t < T; t++) {
			const Inner *a = inner_.data() + t * n_inner;
			size_t i = 0;
			for (int d = 0; d < depth_; d++)
				i = 2 * i + 1 + goes_right(a[i], x);
			acc[groups_[t]] += leaves_[t * n_leaves + i - n_inner];
		}
	}

	void accumulate_walk(const float *x, float *acc) const
	{
		const FlatNode *nodes = nodes_.data();
		const size_t n = roots_.size();
		for (size_t t = 0; t < n; t++) {
			const FlatNode *nd = nodes + roots_[t];
			while (nd->left >= 0) {
				const float v = x[nd->info & 0x7fffffffu];
				int32_t next;
				if (std::isnan(v))
					next = (nd->info & 0x80000000u) ? nd->left : nd->right;
				else
					next = v < nd->value ? nd->left : nd->right;
				nd = nodes + next;
			}
			acc[groups_[t]] += nd->value;
		}
	}

	std::vector<FlatNode> nodes_;
	std::vector<int32_t> roots_;
	std::vector<int32_t> groups_;
	int32_t base_ = 0;
	bool complete_ = false;
	int depth_ = 0;
	std::vector<Inner> inner_;  // per tree 2^D - 1 splits, heap order
	std::vector<float> leaves_; // per tree 2^D leaf values
};

} // namespace pgml
