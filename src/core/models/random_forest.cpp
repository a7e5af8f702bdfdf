#include "random_forest.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "flat_trees.hpp"
#include "threads.hpp"
#include "tree.hpp"

namespace pgml {

namespace {

// Sub-format versions, each the encoding of the trees (tree.hpp): 1 = fitted on imputed features
// (no missing-value directions); 2 = missing values native (NaN routed by each split's learned
// direction); 3 = as 2 with each node's cover (tree SHAP: ml_explain); 4 = fitted on imputed
// features, with covers. Fits write 3 or 4.
constexpr uint16_t kRandomForestVersion = kTreeEncodingImputedCovers;
constexpr size_t kMaxTrees = 100000;
// Forests with more nodes than this (24 bytes each, beside the trees' own 40) are not copied
// into a flat layout for prediction; their trees are walked as they are.
constexpr size_t kMaxFlatNodes = size_t(8) << 20;
constexpr double kMaxLeafBytes = 512.0 * 1024 * 1024; // the leaves kept for the fitted outputs, without a memory limit

// Bootstrap multiplicities of tree t: n draws with replacement from the tree's own stream
// (regenerated after fitting to find the out-of-bag rows).
std::vector<double> bootstrap_counts(uint64_t seed, int t, int n)
{
	TreeRng rng = TreeRng::stream(seed, 2 * static_cast<uint64_t>(t));
	std::vector<double> w(static_cast<size_t>(n), 0.0);
	for (int i = 0; i < n; i++)
		w[rng.below(static_cast<size_t>(n))] += 1;
	return w;
}

// A fitted forest on scaled features.
class RandomForest : public Estimator {
  public:
	Task task = Task::Regression;
	int p = 0;
	int n_outputs = 1;
	uint16_t version = kRandomForestVersion; // a model read from an older blob keeps its version
	std::vector<Tree> trees;
	Eigen::VectorXd imp;
	double oob = NAN; // out-of-bag accuracy / R^2, NaN without bootstrap
	int threads = 1;  // for predict_many: the fit's thread budget (a model read from a blob: 1)
	// The sums over the trees of each training row's leaf values (n x n_outputs, row after row),
	// added in tree order as predict() adds them: the fit's own outputs (fitted_outputs) until
	// end_training; empty when the fit did not keep them.
	mutable std::vector<double> fitted;
	// The trees flattened for prediction (flatten()); null for a forest too large to copy.
	std::unique_ptr<CartForest> flat;

	// Copies the trees into flat, when they have at most kMaxFlatNodes nodes in all.
	void flatten()
	{
		size_t nodes = 0;
		for (const Tree &t : trees)
			nodes += t.nodes.size();
		flat.reset();
		if (nodes > kMaxFlatNodes)
			return;
		auto f = std::make_unique<CartForest>(n_outputs);
		for (const Tree &t : trees) {
			f->begin_tree(0);
			for (const TreeNode &n : t.nodes) {
				if (n.feature < 0)
					f->add_leaf(t.values.data() + n.value);
				else
					f->add_split(n.feature, n.threshold, n.missing_left, n.left, n.right);
			}
		}
		f->finish();
		flat = std::move(f);
	}

	// The sums of the trees' leaf values for row z, added in tree order.
	void sum_leaves(const double *z, double *out) const
	{
		for (int k = 0; k < n_outputs; k++)
			out[k] = 0;
		if (flat && flat_trees_enabled()) {
			flat->accumulate(z, out);
			return;
		}
		for (const Tree &t : trees) {
			const double *v = t.leaf(z);
			for (int k = 0; k < n_outputs; k++)
				out[k] += v[k];
		}
	}

	// The mean of the trees' leaf values; classification returns the most probable class.
	int predict(const double *z, double *out) const override
	{
		sum_leaves(z, out);
		int best = 0;
		for (int k = 0; k < n_outputs; k++) {
			out[k] /= static_cast<double>(trees.size());
			if (out[k] > out[best])
				best = k;
		}
		return task == Task::Regression ? 0 : best;
	}

	// Rows are independent: blocks of them are predicted on the fit's threads (the trainer's
	// metrics predict every training row through 100 or more deep trees). Within a block, tree
	// after tree, so that a tree's upper nodes stay in the cache for the block's rows; each row
	// adds the trees' values in the order predict() does (the same results).
	void predict_many(const double *z, size_t n, size_t pz, size_t n_out, double *out, int *klass) const override
	{
		constexpr size_t kRows = 256;
		const int blocks = static_cast<int>((n + kRows - 1) / kRows);
		parallel_for(blocks, threads > 1 && n > kRows ? threads : 1, [&](int b) {
			const size_t i0 = static_cast<size_t>(b) * kRows, i1 = std::min(n, i0 + kRows);
			if (flat && flat_trees_enabled()) {
				for (size_t i = i0; i < i1; i++)
					sum_leaves(z + i * pz, out + i * n_out);
			} else {
				for (size_t i = i0; i < i1; i++)
					for (int k = 0; k < n_outputs; k++)
						out[i * n_out + static_cast<size_t>(k)] = 0;
				for (const Tree &t : trees)
					for (size_t i = i0; i < i1; i++) {
						const double *v = t.leaf(z + i * pz);
						double *o = out + i * n_out;
						for (int k = 0; k < n_outputs; k++)
							o[k] += v[k];
					}
			}
			for (size_t i = i0; i < i1; i++) {
				double *o = out + i * n_out;
				int best = 0;
				for (int k = 0; k < n_outputs; k++) {
					o[k] /= static_cast<double>(trees.size());
					if (o[k] > o[best])
						best = k;
				}
				klass[i] = task == Task::Regression ? 0 : best;
			}
		});
	}

	bool fitted_outputs(size_t i0, size_t n, size_t n_out, double *out, int *klass) const override
	{
		const size_t K = static_cast<size_t>(n_outputs);
		if (fitted.empty() || (i0 + n) * K > fitted.size())
			return false;
		for (size_t r = 0; r < n; r++) {
			const double *sum = fitted.data() + (i0 + r) * K;
			double *o = out + r * n_out;
			int best = 0;
			for (int k = 0; k < n_outputs; k++) {
				o[k] = sum[k] / static_cast<double>(trees.size());
				if (o[k] > o[best])
					best = k;
			}
			klass[r] = task == Task::Regression ? 0 : best;
		}
		return true;
	}
	void end_training() const override
	{
		fitted.clear();
		fitted.shrink_to_fit();
	}

	// u16 version, then a checked body: u8 task, u32 p, u32 outputs, f64 oob, importance,
	// u64 tree count, trees.
	void write(Writer &w) const override
	{
		Writer b;
		b.u8(static_cast<uint8_t>(task));
		b.u32(static_cast<uint32_t>(p));
		b.u32(static_cast<uint32_t>(n_outputs));
		b.f64(oob);
		b.vec(imp);
		b.u64(trees.size());
		for (const Tree &t : trees)
			t.write(b, version);
		write_checked(w, version, b.bytes());
	}

	bool native_missing() const override { return tree_encoding_native(version); }

	// The mean of the trees' SHAP values of the value (regression) or of class klass's
	// probability; the bias is the mean of their expected values.
	bool contributions(const double *z, int klass, double *out) const override
	{
		tree_contributions(trees.data(), trees.size(), z, task == Task::Regression ? 0 : klass, p, out,
		                   "random_forest");
		return true;
	}

	Eigen::VectorXd importance() const override { return imp; }
	const char *importance_kind() const override { return "gain"; }
};

// Adds tree t's leaf values of the rows it was grown on (leaf_of) to f.fitted.
void add_fitted(RandomForest &f, int t, const std::vector<int32_t> &leaf_of, int threads)
{
	const size_t n = leaf_of.size(), K = static_cast<size_t>(f.n_outputs);
	const double *values = f.trees[static_cast<size_t>(t)].values.data();
	constexpr size_t kRows = 4096;
	parallel_for(static_cast<int>((n + kRows - 1) / kRows), threads, [&](int b) {
		for (size_t i = static_cast<size_t>(b) * kRows; i < std::min(n, (static_cast<size_t>(b) + 1) * kRows); i++)
			if (leaf_of[i] >= 0)
				for (size_t k = 0; k < K; k++)
					f.fitted[i * K + k] += values[static_cast<size_t>(leaf_of[i]) + k];
	});
}

// Out-of-bag pass: adds tree after tree to every row it did not see and logs the running score.
// With leaves (each tree's TreeFit::leaf_of, freed here), also the fit's own outputs in f.fitted:
// the in-bag rows' leaves from leaves, the out-of-bag rows' from the same walk as the score.
double out_of_bag(const FitInput &in, RandomForest &f, bool bootstrap, std::vector<std::vector<int32_t>> *leaves)
{
	const int n = static_cast<int>(in.X->rows()), p = static_cast<int>(in.X->cols()), K = f.n_outputs;
	const int T = static_cast<int>(f.trees.size());
	if (leaves)
		f.fitted.assign(static_cast<size_t>(n) * static_cast<size_t>(K), 0.0);
	if (!bootstrap) {
		for (int t = 0; t < T; t++) {
			check_cancel(in.cancel);
			if (leaves) {
				add_fitted(f, t, (*leaves)[static_cast<size_t>(t)], std::max(1, in.threads));
				std::vector<int32_t>().swap((*leaves)[static_cast<size_t>(t)]);
			}
			if (in.log)
				in.log->push_back({t + 1, NAN, NAN, NAN});
		}
		return NAN;
	}
	Eigen::MatrixXd acc = Eigen::MatrixXd::Zero(n, K);
	std::vector<int> votes(static_cast<size_t>(n), 0);
	const Eigen::VectorXd &y = *in.y;
	double score = NAN;
	for (int t = 0; t < T; t++) {
		check_cancel(in.cancel);
		std::vector<double> w = bootstrap_counts(in.seed, t, n);
		// rows are independent: blocks of them on the fit's threads
		constexpr int kRows = 1024;
		const int blocks = (n + kRows - 1) / kRows;
		parallel_for(blocks, std::max(1, in.threads), [&](int b) {
			std::vector<double> zb(static_cast<size_t>(p));
			for (int i = b * kRows; i < std::min(n, (b + 1) * kRows); i++) {
				if (w[static_cast<size_t>(i)] > 0)
					continue;
				for (int j = 0; j < p; j++)
					zb[static_cast<size_t>(j)] = (*in.X)(i, j);
				const double *v = f.trees[static_cast<size_t>(t)].leaf(zb.data());
				for (int k = 0; k < K; k++)
					acc(i, k) += v[k];
				if (leaves)
					for (int k = 0; k < K; k++)
						f.fitted[static_cast<size_t>(i) * static_cast<size_t>(K) + static_cast<size_t>(k)] += v[k];
				votes[static_cast<size_t>(i)]++;
			}
		});
		if (leaves) { // the in-bag rows (distinct rows from the out-of-bag ones above)
			add_fitted(f, t, (*leaves)[static_cast<size_t>(t)], std::max(1, in.threads));
			std::vector<int32_t>().swap((*leaves)[static_cast<size_t>(t)]);
		}
		// score over the rows with at least one out-of-bag prediction
		int m = 0;
		if (f.task == Task::Classification) {
			int right = 0;
			for (int i = 0; i < n; i++) {
				if (votes[static_cast<size_t>(i)] == 0)
					continue;
				m++;
				Eigen::Index k;
				acc.row(i).maxCoeff(&k);
				right += k == static_cast<Eigen::Index>(y(i));
			}
			score = m > 0 ? static_cast<double>(right) / m : NAN;
		} else {
			double sy = 0;
			for (int i = 0; i < n; i++)
				if (votes[static_cast<size_t>(i)] > 0) {
					sy += y(i);
					m++;
				}
			double mean = m > 0 ? sy / m : 0, ss_res = 0, ss_tot = 0;
			for (int i = 0; i < n; i++) {
				if (votes[static_cast<size_t>(i)] == 0)
					continue;
				double pred = acc(i, 0) / votes[static_cast<size_t>(i)];
				ss_res += (y(i) - pred) * (y(i) - pred);
				ss_tot += (y(i) - mean) * (y(i) - mean);
			}
			score = m > 1 && ss_tot > 0 ? 1 - ss_res / ss_tot : NAN;
		}
		if (in.log)
			in.log->push_back({t + 1, NAN, NAN, score});
	}
	return score;
}

} // namespace

std::vector<ParamSpec> random_forest_params()
{
	std::vector<ParamSpec> v;
	ParamSpec s;
	s.name = "n_estimators";
	s.kind = ParamSpec::Kind::Int;
	s.min = 1;
	s.max = 10000;
	s.def = 100;
	v.push_back(s);
	s.name = "bootstrap";
	s.kind = ParamSpec::Kind::Bool;
	s.min = 0;
	s.max = 1;
	s.def = 1;
	v.push_back(s);
	for (ParamSpec &t : tree_growth_params())
		v.push_back(t);
	return v;
}

// Grows n_estimators trees in parallel, then computes the out-of-bag score and importances.
std::unique_ptr<Estimator> fit_random_forest(const FitInput &in, const Params &params)
{
	check_tree_input(in, "random_forest");
	const int n = static_cast<int>(in.X->rows()), p = static_cast<int>(in.X->cols());
	const int T = params.integer("n_estimators");
	const bool bootstrap = params.flag("bootstrap");
	const int def_mtry = in.task == Task::Classification ? static_cast<int>(std::sqrt(static_cast<double>(p))) : p;
	TreeOptions opt = tree_options(params, in, std::max(1, def_mtry));
	// each tree's leaf of every in-bag row, until the out-of-bag pass turns them into the fit's
	// own outputs (the trainer's metrics then need no pass over the trees): kept when they take
	// at most a quarter of pg_ml.max_memory
	const double leaf_bytes = 4.0 * n * T;
	opt.record_leaves = leaf_bytes <= (in.memory_limit > 0 ? static_cast<double>(in.memory_limit) / 4 : kMaxLeafBytes);
	std::vector<std::vector<int32_t>> leaves(opt.record_leaves ? static_cast<size_t>(T) : 0);
	auto f = std::make_unique<RandomForest>();
	f->task = in.task;
	f->p = p;
	f->n_outputs = opt.n_outputs;
	f->version = in.native_missing ? kTreeEncodingCovers : kTreeEncodingImputedCovers;
	f->trees.resize(static_cast<size_t>(T));
	std::vector<Eigen::VectorXd> gains(static_cast<size_t>(T));
	CancelPoll cancel(in.cancel, in.memory_limit, "random_forest");
	std::unique_ptr<BinnedFeatures> binned; // binned once, shared by every tree
	if (opt.max_bin > 0)
		binned = std::make_unique<BinnedFeatures>(*in.X, opt.max_bin, in.threads, opt.n_outputs, cancel, "random_forest");
	parallel_for(T, in.threads, [&](int t) {
		cancel.poll();
		std::vector<double> w;
		if (bootstrap)
			w = bootstrap_counts(in.seed, t, n);
		if (opt.record_leaves)
			cancel.charge(sizeof(int32_t) * static_cast<size_t>(n));
		TreeRng rng = TreeRng::stream(in.seed, 2 * static_cast<uint64_t>(t) + 1);
		TreeFit fit = grow_tree(*in.X, *in.y, bootstrap ? &w : nullptr, opt, rng, cancel, binned.get());
		f->trees[static_cast<size_t>(t)] = std::move(fit.tree);
		if (opt.record_leaves)
			leaves[static_cast<size_t>(t)] = std::move(fit.leaf_of);
		gains[static_cast<size_t>(t)] = normalise_sum(fit.gain);
	});
	check_cancel(in.cancel); // the calling thread may have grown no tree
	binned.reset();
	// sklearn: the mean of the per-tree importances of trees that split at least once
	Eigen::VectorXd imp = Eigen::VectorXd::Zero(p);
	int split_trees = 0;
	for (int t = 0; t < T; t++)
		if (f->trees[static_cast<size_t>(t)].nodes.size() > 1) {
			imp += gains[static_cast<size_t>(t)];
			split_trees++;
		}
	f->imp = normalise_sum(split_trees > 0 ? Eigen::VectorXd(imp / split_trees) : imp);
	f->oob = out_of_bag(in, *f, bootstrap, opt.record_leaves ? &leaves : nullptr);
	f->threads = std::max(1, in.threads);
	f->flatten();
	return f;
}

int random_forest_flat_layout(const Estimator &e)
{
	const auto *f = dynamic_cast<const RandomForest *>(&e);
	return f != nullptr && f->flat ? f->flat->complete_depth() : -1;
}

// Reads what RandomForest::write wrote, checked against the shape the blob declares.
std::unique_ptr<Estimator> read_random_forest(Reader &r, const EstimatorShape &shape)
{
	uint16_t version = 0;
	std::string body = read_checked(r, kRandomForestVersion, "random_forest", &version);
	Reader b(reinterpret_cast<const uint8_t *>(body.data()), body.size());
	auto f = std::make_unique<RandomForest>();
	f->version = version;
	uint8_t task = b.u8();
	uint32_t p = b.u32(), outputs = b.u32();
	if (task != static_cast<uint8_t>(shape.task) ||
	    (shape.task != Task::Regression && shape.task != Task::Classification))
		tree_corrupt("The random_forest was fitted for another task.");
	if (shape.p < 0 || p != static_cast<uint32_t>(shape.p))
		tree_corrupt("The random_forest has " + std::to_string(p) + " features, the model " +
		             std::to_string(shape.p) + ".");
	int want = shape.task == Task::Classification ? shape.n_classes : 1;
	if (want < 1 || want > (1 << 20) || outputs != static_cast<uint32_t>(want))
		tree_corrupt("The random_forest has " + std::to_string(outputs) + " outputs, the model " +
		             std::to_string(want) + ".");
	f->task = shape.task;
	f->p = shape.p;
	f->n_outputs = want;
	f->oob = b.f64();
	if (std::isinf(f->oob))
		tree_corrupt("The random_forest's out-of-bag score is infinite.");
	f->imp = b.vec();
	if (f->imp.size() != shape.p || !f->imp.allFinite() || (f->imp.array() < 0).any())
		tree_corrupt("The random_forest's importances are invalid.");
	size_t T = b.count(8 + 12); // a tree is at least a node count and one leaf
	if (T == 0 || T > kMaxTrees)
		tree_corrupt("The random_forest has " + std::to_string(T) + " trees.");
	f->trees.reserve(T);
	for (size_t t = 0; t < T; t++)
		f->trees.push_back(Tree::read(b, shape.p, want, shape.task == Task::Classification, version));
	if (!b.at_end())
		tree_corrupt("The random_forest has trailing bytes.");
	f->flatten();
	return f;
}

} // namespace pgml
