// pg_ml core: exact path-dependent tree SHAP (Lundberg, Erion, Lee 2018, "Consistent
// Individualized Feature Attribution for Tree Ensembles", Algorithm 2), for Tree::shap.
//
// The walk visits every node once, carrying the path of the distinct features split on above
// it. Each path element holds the fraction of the training weight (cover) that goes the way of
// the node's branch when the feature is unknown (zero fraction) and whether the row goes that
// way (one fraction), plus the weights of the subsets of the path's features by size. A repeated
// feature is first unwound from the path and its fractions multiplied in, so the path never
// holds more than the number of features + 1 elements. The walk keeps its own stack (a tree may
// be as deep as it has rows).
#include <algorithm>
#include <string>
#include <vector>

#include "tree.hpp"

namespace pgml {

namespace {

struct PathElement {
	int feature;    // -1 for the root's placeholder
	double zero;    // the fraction of the cover that follows this branch
	double one;     // 1 when the row follows this branch, else 0
	double weight;  // weight of the subsets of this size
};

// EXTEND: adds feature f with fractions (zero, one) to the path m.
void extend(std::vector<PathElement> &m, double zero, double one, int f)
{
	const size_t l = m.size();
	m.push_back({f, zero, one, l == 0 ? 1.0 : 0.0});
	const double d = static_cast<double>(l + 1);
	for (size_t i = l; i-- > 0;) {
		m[i + 1].weight += one * m[i].weight * static_cast<double>(i + 1) / d;
		m[i].weight = zero * m[i].weight * static_cast<double>(l - i) / d;
	}
}

// UNWIND: removes the element at index k from the path m (the inverse of its EXTEND).
void unwind(std::vector<PathElement> &m, size_t k)
{
	const size_t l = m.size() - 1;
	const double one = m[k].one, zero = m[k].zero, d = static_cast<double>(l + 1);
	double next = m[l].weight;
	for (size_t i = l; i-- > 0;) {
		if (one != 0) {
			const double tmp = m[i].weight;
			m[i].weight = next * d / (static_cast<double>(i + 1) * one);
			next = tmp - m[i].weight * zero * static_cast<double>(l - i) / d;
		} else {
			m[i].weight = m[i].weight * d / (zero * static_cast<double>(l - i));
		}
	}
	for (size_t i = k; i < l; i++) {
		m[i].feature = m[i + 1].feature;
		m[i].zero = m[i + 1].zero;
		m[i].one = m[i + 1].one;
	}
	m.pop_back();
}

// The total weight of the path m with the element at index k unwound, without changing m.
double unwound_sum(const std::vector<PathElement> &m, size_t k)
{
	const size_t l = m.size() - 1;
	const double one = m[k].one, zero = m[k].zero, d = static_cast<double>(l + 1);
	double next = m[l].weight, total = 0;
	for (size_t i = l; i-- > 0;) {
		if (one != 0) {
			const double tmp = next * d / (static_cast<double>(i + 1) * one);
			total += tmp;
			next = m[i].weight - tmp * zero * static_cast<double>(l - i) / d;
		} else {
			total += m[i].weight / zero * d / static_cast<double>(l - i);
		}
	}
	return total;
}

// A node to visit, with the path above it and the fractions of the branch that leads to it.
struct Visit {
	int node;
	double zero, one;
	int feature; // the parent's split feature (-1 for the root)
	std::vector<PathElement> path;
};

} // namespace

double Tree::shap(const double *z, int k, double *phi) const
{
	if (!has_covers)
		throw Error(ErrorCode::Internal, "tree SHAP on a tree without covers");
	std::vector<Visit> stack;
	stack.push_back({0, 1.0, 1.0, -1, {}});
	while (!stack.empty()) {
		Visit v = std::move(stack.back());
		stack.pop_back();
		std::vector<PathElement> &m = v.path;
		extend(m, v.zero, v.one, v.feature);
		const TreeNode &n = nodes[static_cast<size_t>(v.node)];
		if (n.feature < 0) {
			const double value = values[static_cast<size_t>(n.value + k)];
			for (size_t i = 1; i < m.size(); i++)
				phi[m[i].feature] += unwound_sum(m, i) * (m[i].one - m[i].zero) * value;
			continue;
		}
		const int hot = child(n, z), cold = hot == n.left ? n.right : n.left;
		double zero = 1, one = 1;
		for (size_t i = 1; i < m.size(); i++)
			if (m[i].feature == n.feature) { // the feature was split on above: unwind it first
				zero = m[i].zero;
				one = m[i].one;
				unwind(m, i);
				break;
			}
		const double hot_zero = zero * nodes[static_cast<size_t>(hot)].cover / n.cover;
		const double cold_zero = zero * nodes[static_cast<size_t>(cold)].cover / n.cover;
		stack.push_back({cold, cold_zero, 0.0, n.feature, m});
		stack.push_back({hot, hot_zero, one, n.feature, std::move(m)});
	}
	// the expected value: the leaves weighted by the products of the zero fractions on their
	// paths, computed from the bottom up (children follow their parent)
	std::vector<double> e(nodes.size());
	for (size_t i = nodes.size(); i-- > 0;) {
		const TreeNode &n = nodes[i];
		if (n.feature < 0) {
			e[i] = values[static_cast<size_t>(n.value + k)];
			continue;
		}
		const TreeNode &l = nodes[static_cast<size_t>(n.left)], &r = nodes[static_cast<size_t>(n.right)];
		e[i] = l.cover / n.cover * e[static_cast<size_t>(n.left)] + r.cover / n.cover * e[static_cast<size_t>(n.right)];
	}
	return e[0];
}

void tree_contributions(const Tree *trees, size_t count, const double *z, int k, int p, double *out,
                        const char *algorithm)
{
	for (size_t t = 0; t < count; t++)
		if (!trees[t].has_covers)
			throw Error(ErrorCode::FeatureNotSupported,
			            std::string("ml_explain cannot explain this ") + algorithm + " model",
			            "Its blob was written before pg_ml kept the training weight of each tree node, which tree "
			            "SHAP needs.",
			            "Retrain it (ml_retrain(model, relation, mode => 'refit')): versions trained by this pg_ml "
			            "can be explained.");
	std::fill(out, out + p + 1, 0.0);
	for (size_t t = 0; t < count; t++)
		out[p] += trees[t].shap(z, k, out);
	const double n = static_cast<double>(count);
	for (int j = 0; j <= p; j++)
		out[j] /= n;
}

} // namespace pgml
