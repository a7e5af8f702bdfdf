#include "kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "limits.hpp"
#include "threads.hpp"

namespace pgml {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

constexpr uint16_t kSubFormat = 1;
constexpr int kMaxK = 10000;
constexpr Index kChunk = 256; // rows per distance block (and per cancellation poll)

[[noreturn]] void corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

// SplitMix64: decorrelates the per-run seeds derived from in.seed.
uint64_t splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

// Deterministic, portable random numbers (no std distributions: their output differs between libraries).
struct Rng {
	std::mt19937_64 gen;
	explicit Rng(uint64_t seed) : gen(seed) {}
	double uniform() { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }
	Index below(Index n) { return static_cast<Index>(gen() % static_cast<uint64_t>(n)); }
};

// Mean over the columns of the (population) column variances: sklearn's scale for tol.
double mean_variance(const MatrixXd &X)
{
	if (X.rows() == 0 || X.cols() == 0)
		return 0;
	double s = 0;
	for (Index j = 0; j < X.cols(); j++) {
		double m = X.col(j).mean();
		s += (X.col(j).array() - m).square().mean();
	}
	return s / static_cast<double>(X.cols());
}

// Number of distinct rows of X, counting no further than `enough`.
Index distinct_rows(const MatrixXd &X, Index enough)
{
	std::vector<Index> idx(static_cast<size_t>(X.rows()));
	std::iota(idx.begin(), idx.end(), Index(0));
	auto less = [&](Index a, Index b) {
		for (Index j = 0; j < X.cols(); j++)
			if (X(a, j) != X(b, j))
				return X(a, j) < X(b, j);
		return false;
	};
	std::sort(idx.begin(), idx.end(), less);
	Index d = idx.empty() ? 0 : 1;
	for (size_t i = 1; i < idx.size() && d < enough; i++)
		if (less(idx[i - 1], idx[i]))
			d++;
	return d;
}

// Assigns every row of X to its nearest centre (squared distances as |x|^2 + |c|^2 - 2 x.c, by
// blocks, like sklearn); writes labels and squared distances, returns the inertia.
double assign(const MatrixXd &X, const VectorXd &xx, const MatrixXd &C, std::vector<int> &labels, VectorXd &d2,
              CancelCheck cancel)
{
	const Index n = X.rows(), k = C.rows();
	const VectorXd cc = C.rowwise().squaredNorm();
	MatrixXd D;
	double inertia = 0;
	for (Index s = 0; s < n; s += kChunk) {
		check_cancel(cancel);
		const Index m = std::min(kChunk, n - s);
		D.noalias() = X.middleRows(s, m) * C.transpose();
		for (Index i = 0; i < m; i++) {
			Index best = 0;
			double bd = cc(0) - 2 * D(i, 0);
			for (Index c = 1; c < k; c++) {
				double v = cc(c) - 2 * D(i, c);
				if (v < bd) {
					bd = v;
					best = c;
				}
			}
			labels[static_cast<size_t>(s + i)] = static_cast<int>(best);
			d2(s + i) = std::max(0.0, xx(s + i) + bd);
			inertia += d2(s + i);
		}
	}
	return inertia;
}

// Per-cluster sums and counts of the rows of X under labels.
void cluster_sums(const MatrixXd &X, const std::vector<int> &labels, Index k, MatrixXd &S, VectorXd &cnt)
{
	S.setZero(k, X.cols());
	cnt.setZero(k);
	for (Index j = 0; j < X.cols(); j++)
		for (Index i = 0; i < X.rows(); i++)
			S(labels[static_cast<size_t>(i)], j) += X(i, j);
	for (int l : labels)
		cnt(l) += 1;
}

// Greedy k-means++ (sklearn's _kmeans_plusplus): the first centre uniformly at random, each
// next one the best (lowest potential) of 2 + log(k) candidates sampled proportionally to D^2.
MatrixXd kmeans_plusplus(const MatrixXd &X, Index k, Rng &rng, CancelCheck cancel)
{
	const Index n = X.rows(), p = X.cols();
	const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
	MatrixXd C(k, p);
	Index first = rng.below(n);
	C.row(0) = X.row(first);
	VectorXd closest = (X.rowwise() - X.row(first)).rowwise().squaredNorm();
	double pot = closest.sum();
	VectorXd cum(n), cand_d(n), best_d(n);
	for (Index c = 1; c < k; c++) {
		check_cancel(cancel);
		double run = 0;
		for (Index i = 0; i < n; i++)
			cum(i) = run += closest(i);
		double best_pot = INFINITY;
		Index best_id = 0;
		for (int t = 0; t < trials; t++) {
			double r = rng.uniform() * pot;
			Index id = static_cast<Index>(std::lower_bound(cum.data(), cum.data() + n, r) - cum.data());
			id = std::min(id, n - 1);
			cand_d = (X.rowwise() - X.row(id)).rowwise().squaredNorm().cwiseMin(closest);
			double cp = cand_d.sum();
			if (cp < best_pot) {
				best_pot = cp;
				best_id = id;
				best_d.swap(cand_d);
			}
		}
		pot = best_pot;
		closest.swap(best_d);
		C.row(c) = X.row(best_id);
	}
	return C;
}

// One k-means run: its centres, inertia and iteration log.
struct Run {
	MatrixXd centres;
	VectorXd counts;
	double inertia = INFINITY;
	std::vector<IterationLog> log;
};

// Lloyd iterations from initial centres C (sklearn's _kmeans_single_lloyd): stop when the
// labels repeat, or when the total squared centre shift is at most tol_abs. Empty clusters
// are relocated to the rows farthest from their centres.
Run lloyd(const MatrixXd &X, const VectorXd &xx, MatrixXd C, int max_iter, double tol_abs, CancelCheck cancel)
{
	const Index n = X.rows(), k = C.rows();
	std::vector<int> labels(static_cast<size_t>(n)), old(static_cast<size_t>(n), -1);
	VectorXd d2(n), cnt;
	MatrixXd S;
	Run run;
	for (int it = 0; it < max_iter; it++) {
		double inertia = assign(X, xx, C, labels, d2, cancel);
		cluster_sums(X, labels, k, S, cnt);
		std::vector<Index> empty;
		for (Index c = 0; c < k; c++)
			if (cnt(c) == 0)
				empty.push_back(c);
		if (!empty.empty()) {
			// the rows farthest from their centres (ties to the lower row) seed the empty clusters
			std::vector<Index> order(static_cast<size_t>(n));
			std::iota(order.begin(), order.end(), Index(0));
			const size_t ne = std::min(empty.size(), order.size());
			std::partial_sort(order.begin(), order.begin() + static_cast<long>(ne), order.end(),
			                  [&](Index a, Index b) { return d2(a) > d2(b) || (d2(a) == d2(b) && a < b); });
			for (size_t e = 0; e < ne; e++) {
				Index row = order[e], from = labels[static_cast<size_t>(row)], to = empty[e];
				if (cnt(from) <= 1)
					continue; // never empty another cluster
				S.row(from) -= X.row(row);
				cnt(from) -= 1;
				S.row(to) = X.row(row);
				cnt(to) = 1;
				labels[static_cast<size_t>(row)] = static_cast<int>(to);
			}
		}
		MatrixXd Cn = C;
		for (Index c = 0; c < k; c++)
			if (cnt(c) > 0)
				Cn.row(c) = S.row(c) / cnt(c);
		double shift = (Cn - C).squaredNorm();
		C.swap(Cn);
		if (run.log.size() < 100000)
			run.log.push_back({it + 1, inertia, NAN, NAN});
		if (labels == old || shift <= tol_abs)
			break;
		old = labels;
	}
	// the last centres moved after the labels were computed: label again (sklearn does too, unless
	// the labels repeated, in which case nothing changes)
	run.inertia = assign(X, xx, C, labels, d2, cancel);
	cluster_sums(X, labels, k, S, cnt);
	run.counts = cnt;
	run.centres = std::move(C);
	return run;
}

class KMeans : public Estimator {
  public:
	KMeans(MatrixXd centres, VectorXd counts, double n, VectorXd mean, VectorXd m2)
		: C_(std::move(centres)), counts_(std::move(counts)), n_(n), mean_(std::move(mean)), m2_(std::move(m2))
	{
	}

	// Nearest centre (exact distances; the first of equally near ones); out[0] = its distance.
	int predict(const double *z, double *out) const override
	{
		const Index k = C_.rows(), p = C_.cols();
		Index best = 0;
		double bd = INFINITY;
		for (Index c = 0; c < k; c++) {
			double d = 0;
			for (Index j = 0; j < p; j++) {
				double t = z[j] - C_(c, j);
				d += t * t;
			}
			if (d < bd) {
				bd = d;
				best = c;
			}
		}
		out[0] = std::sqrt(bd);
		return static_cast<int>(best);
	}

	void write(Writer &w) const override
	{
		w.u16(kSubFormat);
		w.u32(static_cast<uint32_t>(C_.rows()));
		w.u32(static_cast<uint32_t>(C_.cols()));
		w.mat(C_);
		w.vec(counts_);
		w.f64(n_);
		w.vec(mean_);
		w.vec(m2_);
	}

	// Per feature: the share of its variance between the clusters,
	// sum_c n_c (centre_c - mean)^2 / (its total sum of squared deviations), in [0, 1].
	Eigen::VectorXd importance() const override
	{
		const Index p = C_.cols();
		VectorXd imp = VectorXd::Zero(p);
		for (Index j = 0; j < p; j++) {
			double between = 0;
			for (Index c = 0; c < C_.rows(); c++)
				between += counts_(c) * (C_(c, j) - mean_(j)) * (C_(c, j) - mean_(j));
			if (m2_(j) > 0)
				imp(j) = std::min(1.0, between / m2_(j));
		}
		return imp;
	}

	const char *importance_kind() const override { return "separation"; }

	bool can_continue() const override { return true; }

	// Lloyd iterations on the new rows from the stored centres; each stored centre counts as
	// counts_[c] rows at its old position, so a centre is the mean of every row it absorbed.
	void continue_fit(const FitInput &in, const Params &params) override
	{
		if (in.X == nullptr || in.X->cols() != C_.cols())
			throw Error(ErrorCode::Internal, "k-means retraining got a feature matrix of the wrong width");
		const MatrixXd &X = *in.X;
		const Index m = X.rows(), k = C_.rows();
		if (m == 0)
			return;
		for (Index j = 0; j < X.cols(); j++)
			if (!X.col(j).allFinite())
				throw Error(ErrorCode::DataException, "k-means got a non-finite feature value");
		const int max_iter = params.integer("max_iter");
		const double tol_abs = params.num("tol") * mean_variance(X);
		const VectorXd xx = X.rowwise().squaredNorm();
		const MatrixXd C0 = C_;
		MatrixXd C = C_, S;
		std::vector<int> labels(static_cast<size_t>(m)), old(static_cast<size_t>(m), -1);
		VectorXd d2(m), cnt;
		for (int it = 0; it < max_iter; it++) {
			double inertia = assign(X, xx, C, labels, d2, in.cancel);
			cluster_sums(X, labels, k, S, cnt);
			MatrixXd Cn = C;
			for (Index c = 0; c < k; c++) {
				double w = counts_(c) + cnt(c);
				if (w > 0)
					Cn.row(c) = (counts_(c) * C0.row(c) + S.row(c)) / w;
			}
			double shift = (Cn - C).squaredNorm();
			C.swap(Cn);
			if (in.log != nullptr)
				in.log->push_back({it + 1, inertia, NAN, NAN});
			report_iteration(in.progress, it + 1, "inertia", inertia);
			if (labels == old || shift <= tol_abs)
				break;
			old = labels;
		}
		// C is the weighted mean under `labels`, whose counts join the stored ones
		C_ = C;
		counts_ += cnt;
		// merge the new rows' mean and squared deviations into the running ones (Chan et al.)
		const double nb = static_cast<double>(m), na = n_, nt = na + nb;
		for (Index j = 0; j < X.cols(); j++) {
			double mb = X.col(j).mean();
			double m2b = (X.col(j).array() - mb).square().sum();
			double delta = mb - mean_(j);
			mean_(j) = na == 0 ? mb : mean_(j) + delta * nb / nt;
			m2_(j) += m2b + delta * delta * na * nb / nt;
		}
		n_ = nt;
	}

  private:
	MatrixXd C_;      // k x p centres
	VectorXd counts_; // rows absorbed by each centre
	double n_;        // rows seen
	VectorXd mean_;   // per feature mean of the rows seen
	VectorXd m2_;     // per feature sum of squared deviations from mean_
};

} // namespace

std::vector<ParamSpec> kmeans_params()
{
	using K = ParamSpec::Kind;
	return {num_param("k", K::Int, 2, kMaxK, 8), num_param("n_init", K::Int, 1, 1000, 10),
	        num_param("max_iter", K::Int, 1, 1e6, 300), num_param("tol", K::Float, 0, INFINITY, 1e-4)};
}

namespace {

// The best of n_init k-means++ / Lloyd runs on in.X (by inertia).
Run best_run(const FitInput &in, const Params &params)
{
	if (in.X == nullptr)
		throw Error(ErrorCode::Internal, "k-means got no feature matrix");
	const MatrixXd &X = *in.X;
	const Index n = X.rows(), p = X.cols();
	const int k = params.integer("k");
	const int n_init = params.integer("n_init");
	const int max_iter = params.integer("max_iter");
	if (k < 2 || k > kMaxK || n_init < 1 || max_iter < 1)
		throw Error(ErrorCode::Internal, "k-means hyperparameters out of range");
	for (Index j = 0; j < p; j++)
		if (!X.col(j).allFinite())
			throw Error(ErrorCode::DataException, "k-means got a non-finite feature value");
	check_memory(in.memory_limit,
	             memory::kmeans_bytes(static_cast<double>(n), static_cast<double>(p), k,
	                                  std::min(n_init, std::max(1, in.threads))),
	             "kmeans",
	             "k = " + std::to_string(k) + " centres of " + std::to_string(p) + " features, and labels and distances of " +
	                 std::to_string(n) + " rows per run, " + std::to_string(std::min(n_init, std::max(1, in.threads))) +
	                 " run(s) at once.",
	             "k or the training rows");
	check_cancel(in.cancel);
	const Index distinct = distinct_rows(X, k);
	if (distinct < k)
		throw Error(ErrorCode::DataException,
		            "k-means with k = " + std::to_string(k) + " needs at least " + std::to_string(k) +
		                " distinct rows, but the training data has " + std::to_string(distinct),
		            "Each cluster needs a distinct centre; the " + std::to_string(n) + " training rows hold " +
		                std::to_string(distinct) + " distinct feature vectors.",
		            "Lower k to at most " + std::to_string(distinct) + ".");
	const double tol_abs = params.num("tol") * mean_variance(X);
	const VectorXd xx = X.rowwise().squaredNorm();

	// independent runs, each with its own generator: the result does not depend on threads
	std::vector<Run> runs(static_cast<size_t>(n_init));
	parallel_for(n_init, std::max(1, in.threads), [&](int r) {
		Rng rng(splitmix(in.seed ^ splitmix(static_cast<uint64_t>(r) + 1)));
		MatrixXd C0 = kmeans_plusplus(X, k, rng, in.cancel);
		runs[static_cast<size_t>(r)] = lloyd(X, xx, std::move(C0), max_iter, tol_abs, in.cancel);
	});
	size_t best = 0;
	for (size_t r = 1; r < runs.size(); r++)
		if (runs[r].inertia < runs[best].inertia)
			best = r;
	return std::move(runs[best]);
}

} // namespace

std::unique_ptr<Estimator> fit_kmeans(const FitInput &in, const Params &params)
{
	Run b = best_run(in, params);
	if (in.log != nullptr)
		in.log->insert(in.log->end(), b.log.begin(), b.log.end());
	const MatrixXd &X = *in.X;
	const Index n = X.rows(), p = X.cols();
	VectorXd mean(p), m2(p);
	for (Index j = 0; j < p; j++) {
		mean(j) = X.col(j).mean();
		m2(j) = (X.col(j).array() - mean(j)).square().sum();
	}
	return std::make_unique<KMeans>(std::move(b.centres), std::move(b.counts), static_cast<double>(n),
	                                std::move(mean), std::move(m2));
}

Eigen::MatrixXd kmeans_fit_centres(const FitInput &in, const Params &params)
{
	return best_run(in, params).centres;
}

std::unique_ptr<Estimator> make_kmeans(Eigen::MatrixXd centres, Eigen::VectorXd counts, double n, Eigen::VectorXd mean,
                                       Eigen::VectorXd m2)
{
	const Index k = centres.rows(), p = centres.cols();
	if (k < 1 || counts.size() != k || mean.size() != p || m2.size() != p || !centres.allFinite())
		throw Error(ErrorCode::Internal, "k-means parts do not fit together");
	return std::make_unique<KMeans>(std::move(centres), std::move(counts), n, std::move(mean), std::move(m2));
}

std::unique_ptr<Estimator> read_kmeans(Reader &r, const EstimatorShape &shape)
{
	uint16_t version = r.u16();
	if (version != kSubFormat)
		corrupt("Unknown k-means sub-format " + std::to_string(version) + ".");
	if (shape.task != Task::Clustering)
		corrupt("A k-means model must be a clustering model.");
	uint32_t k = r.u32(), p = r.u32();
	if (k < 1 || k > static_cast<uint32_t>(kMaxK))
		corrupt("The k-means model declares " + std::to_string(k) + " clusters.");
	if (static_cast<int64_t>(p) != shape.p)
		corrupt("The k-means model has " + std::to_string(p) + " features, the model " + std::to_string(shape.p) + ".");
	MatrixXd C = r.mat();
	if (C.rows() != static_cast<Index>(k) || C.cols() != static_cast<Index>(p) || !C.allFinite())
		corrupt("The k-means centres do not match the declared shape or are not finite.");
	VectorXd counts = r.vec();
	if (counts.size() != static_cast<Index>(k) || !counts.allFinite() || (counts.array() < 0).any())
		corrupt("The k-means cluster sizes are invalid.");
	double n = r.f64();
	if (!std::isfinite(n) || n < 0)
		corrupt("The k-means row count is invalid.");
	VectorXd mean = r.vec(), m2 = r.vec();
	if (mean.size() != static_cast<Index>(p) || m2.size() != static_cast<Index>(p) || !mean.allFinite() ||
	    !m2.allFinite() || (m2.array() < 0).any())
		corrupt("The k-means feature statistics are invalid.");
	return std::make_unique<KMeans>(std::move(C), std::move(counts), n, std::move(mean), std::move(m2));
}

} // namespace pgml
