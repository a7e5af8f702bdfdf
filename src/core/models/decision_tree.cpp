#include "decision_tree.hpp"

#include <cmath>
#include <memory>

#include "tree.hpp"

namespace pgml {

namespace {

// Sub-format versions, each the encoding of the trees (tree.hpp): 1 = fitted on imputed features
// (no missing-value directions); 2 = missing values native (NaN routed by each split's learned
// direction); 3 = as 2 with each node's cover (tree SHAP: ml_explain); 4 = fitted on imputed
// features, with covers. Fits write 3 or 4.
constexpr uint16_t kDecisionTreeVersion = kTreeEncodingImputedCovers;

// One fitted tree on scaled features.
class DecisionTree : public Estimator {
  public:
	Task task = Task::Regression;
	int p = 0;
	uint16_t version = kDecisionTreeVersion; // a model read from an older blob keeps its version
	Tree tree;
	Eigen::VectorXd imp; // normalised gain per feature

	// The leaf's mean, or its class frequencies and the most frequent class.
	int predict(const double *z, double *out) const override
	{
		const double *v = tree.leaf(z);
		if (task == Task::Regression) {
			out[0] = v[0];
			return 0;
		}
		int best = 0;
		for (int k = 0; k < tree.n_outputs; k++) {
			out[k] = v[k];
			if (v[k] > v[best])
				best = k;
		}
		return best;
	}

	// u16 version, then a checked body: u8 task, u32 p, u32 outputs, importance, tree.
	void write(Writer &w) const override
	{
		Writer b;
		b.u8(static_cast<uint8_t>(task));
		b.u32(static_cast<uint32_t>(p));
		b.u32(static_cast<uint32_t>(tree.n_outputs));
		b.vec(imp);
		tree.write(b, version);
		write_checked(w, version, b.bytes());
	}

	bool native_missing() const override { return tree_encoding_native(version); }

	// Tree SHAP values of the value (regression) or of class klass's probability.
	bool contributions(const double *z, int klass, double *out) const override
	{
		tree_contributions(&tree, 1, z, task == Task::Regression ? 0 : klass, p, out, "decision_tree");
		return true;
	}

	Eigen::VectorXd importance() const override { return imp; }
	const char *importance_kind() const override { return "gain"; }
};

} // namespace

std::vector<ParamSpec> decision_tree_params() { return tree_growth_params(); }

// Grows the tree on every row (max_features = 0 means all features).
std::unique_ptr<Estimator> fit_decision_tree(const FitInput &in, const Params &params)
{
	check_tree_input(in, "decision_tree");
	const int p = static_cast<int>(in.X->cols());
	TreeOptions opt = tree_options(params, in, p);
	TreeRng rng = TreeRng::stream(in.seed, 0);
	CancelPoll cancel(in.cancel, in.memory_limit, "decision_tree");
	std::unique_ptr<BinnedFeatures> binned;
	if (opt.max_bin > 0)
		binned = std::make_unique<BinnedFeatures>(*in.X, opt.max_bin, in.threads, opt.n_outputs, cancel, "decision_tree");
	// one tree: the features of its large nodes are scanned on the fit's threads
	TreeFit fit = grow_tree(*in.X, *in.y, nullptr, opt, rng, cancel, binned.get(), in.threads);
	binned.reset();
	auto est = std::make_unique<DecisionTree>();
	est->task = in.task;
	est->p = p;
	est->version = in.native_missing ? kTreeEncodingCovers : kTreeEncodingImputedCovers;
	est->tree = std::move(fit.tree);
	est->imp = normalise_sum(fit.gain);
	if (in.log)
		in.log->push_back({1, fit.leaf_impurity, NAN, NAN});
	return est;
}

// Reads what DecisionTree::write wrote, checked against the shape the blob declares.
std::unique_ptr<Estimator> read_decision_tree(Reader &r, const EstimatorShape &shape)
{
	uint16_t version = 0;
	std::string body = read_checked(r, kDecisionTreeVersion, "decision_tree", &version);
	Reader b(reinterpret_cast<const uint8_t *>(body.data()), body.size());
	auto est = std::make_unique<DecisionTree>();
	est->version = version;
	uint8_t task = b.u8();
	uint32_t p = b.u32(), outputs = b.u32();
	if (task != static_cast<uint8_t>(shape.task) ||
	    (shape.task != Task::Regression && shape.task != Task::Classification))
		tree_corrupt("The decision_tree was fitted for another task.");
	if (shape.p < 0 || p != static_cast<uint32_t>(shape.p))
		tree_corrupt("The decision_tree has " + std::to_string(p) + " features, the model " +
		             std::to_string(shape.p) + ".");
	int want = shape.task == Task::Classification ? shape.n_classes : 1;
	if (want < 1 || want > (1 << 20) || outputs != static_cast<uint32_t>(want))
		tree_corrupt("The decision_tree has " + std::to_string(outputs) + " outputs, the model " +
		             std::to_string(want) + ".");
	est->task = shape.task;
	est->p = shape.p;
	est->imp = b.vec();
	if (est->imp.size() != shape.p || !est->imp.allFinite() || (est->imp.array() < 0).any())
		tree_corrupt("The decision_tree's importances are invalid.");
	est->tree = Tree::read(b, shape.p, want, shape.task == Task::Classification, version);
	if (!b.at_end())
		tree_corrupt("The decision_tree has trailing bytes.");
	return est;
}

} // namespace pgml
