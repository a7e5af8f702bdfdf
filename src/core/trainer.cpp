#include "trainer.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>

#include "eval_state.hpp"
#include "inference.hpp"
#include "json.hpp"
#include "kmeans_step.hpp"
#include "least_squares.hpp"
#include "linear_precise.hpp"
#include "limits.hpp"
#include "models/kmeans.hpp"
#include "models/elastic_net.hpp"
#include "models/naive_bayes.hpp"
#include "stats_state.hpp"

namespace pgml {

namespace {

// Whether row i of a batch has a NULL in any feature column (preprocess {"nulls": "drop"}).
bool has_null_feature(const Batch &batch, size_t i)
{
	for (size_t c = 0; c < batch.nfeatures; c++)
		if (batch.features[c].isnull[i])
			return true;
	return false;
}

constexpr size_t kSampleRows = 200000; // rows kept per split for metrics that need rows (streaming algorithms)
constexpr int kAggSampleRows = 10000;  // the same through the statistics aggregate (bounded state size)
constexpr int kAggBlockRows = 256;     // rows the aggregate folds into its moments at a time
constexpr Eigen::Index kBlockCells = 1 << 22;
constexpr Eigen::Index kDirectMergeSlots = 64; // statistics groups of at most this many slots are merged one by one

const char *const kSquareOverflows = "Training sums the squares of the values, which must lie within +-1e150.";

std::string hex64(uint64_t v)
{
	char buf[17];
	std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
	return buf;
}

// JSON of regression metrics computed from sums of squares (exact) plus a row sample for MAE.
std::string regression_json(int64_t n, double sse, double sst, const RegressionMetrics &sample)
{
	JsonWriter w;
	w.begin_object();
	double mse = n > 0 ? sse / static_cast<double>(n) : NAN;
	double r2 = sst > 0 ? 1.0 - sse / sst : (sse <= 0 ? 1.0 : 0.0);
	w.key("r2").value(r2);
	w.key("rmse").value(std::sqrt(mse));
	w.key("mse").value(mse);
	w.key("mae").value(sample.mae());
	w.key("rows").value(static_cast<long long>(n));
	if (sample.count() < n)
		w.key("mae_sample_rows").value(static_cast<long long>(sample.count()));
	w.end_object();
	return w.str();
}

// Inertia (sum of squared distances to the assigned centre) and the mean silhouette of at
// most 2000 rows drawn with the seed (O(s^2 p)).
struct ClusteringMetrics {
	double inertia = 0;
	double silhouette = NAN;
	int64_t rows = 0;
	int64_t silhouette_rows = 0;
	std::string to_json() const
	{
		JsonWriter w;
		w.begin_object();
		w.key("inertia").value(inertia);
		w.key("silhouette").value(silhouette);
		w.key("rows").value(static_cast<long long>(rows));
		if (silhouette_rows < rows)
			w.key("silhouette_sample_rows").value(static_cast<long long>(silhouette_rows));
		w.end_object();
		return w.str();
	}
};

ClusteringMetrics clustering_metrics(const Estimator &est, const Eigen::MatrixXd &Z, uint64_t seed, CancelCheck cancel)
{
	ClusteringMetrics cm;
	const Eigen::Index n = Z.rows();
	cm.rows = n;
	std::vector<int> label(static_cast<size_t>(n));
	Eigen::RowVectorXd row;
	double d = 0;
	for (Eigen::Index i = 0; i < n; i++) {
		if (i % 4096 == 0)
			check_cancel(cancel);
		row = Z.row(i);
		label[static_cast<size_t>(i)] = est.predict(row.data(), &d);
		cm.inertia += d * d;
	}
	std::vector<Eigen::Index> sample(static_cast<size_t>(n));
	std::iota(sample.begin(), sample.end(), 0);
	std::mt19937_64 rng(seed);
	if (n > 2000) {
		std::shuffle(sample.begin(), sample.end(), rng);
		sample.resize(2000);
	}
	const size_t s = sample.size();
	cm.silhouette_rows = static_cast<int64_t>(s);
	int nclusters = 0;
	for (int l : label)
		nclusters = std::max(nclusters, l + 1);
	if (nclusters < 2 || s < 2)
		return cm;
	double total = 0;
	std::vector<double> sum(static_cast<size_t>(nclusters));
	std::vector<int> cnt(static_cast<size_t>(nclusters));
	for (size_t a = 0; a < s; a++) {
		check_cancel(cancel); // s rows of s distances each
		std::fill(sum.begin(), sum.end(), 0.0);
		std::fill(cnt.begin(), cnt.end(), 0);
		for (size_t b = 0; b < s; b++) {
			if (a == b)
				continue;
			int lb = label[static_cast<size_t>(sample[b])];
			sum[static_cast<size_t>(lb)] += (Z.row(sample[a]) - Z.row(sample[b])).norm();
			cnt[static_cast<size_t>(lb)]++;
		}
		int la = label[static_cast<size_t>(sample[a])];
		if (cnt[static_cast<size_t>(la)] == 0)
			continue; // a singleton's silhouette is 0
		double in = sum[static_cast<size_t>(la)] / cnt[static_cast<size_t>(la)];
		double out = INFINITY;
		for (int c = 0; c < nclusters; c++)
			if (c != la && cnt[static_cast<size_t>(c)] > 0)
				out = std::min(out, sum[static_cast<size_t>(c)] / cnt[static_cast<size_t>(c)]);
		if (std::isfinite(out) && std::max(in, out) > 0)
			total += (out - in) / std::max(in, out);
	}
	cm.silhouette = total / static_cast<double>(s);
	return cm;
}

// Permutation importance on at most 2000 training rows: how much the score (accuracy, R2, or
// minus the inertia) drops when one feature's column is shuffled, for estimators that have no
// importance of their own.
Eigen::VectorXd permutation_importance(const Estimator &est, const Eigen::MatrixXd &X, const Eigen::VectorXd *y,
                                       Task task, int n_classes, uint64_t seed, CancelCheck cancel)
{
	std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ull);
	std::vector<Eigen::Index> rows(static_cast<size_t>(X.rows()));
	std::iota(rows.begin(), rows.end(), 0);
	if (rows.size() > 2000) {
		std::shuffle(rows.begin(), rows.end(), rng);
		rows.resize(2000);
	}
	Eigen::MatrixXd S(static_cast<Eigen::Index>(rows.size()), X.cols());
	for (size_t i = 0; i < rows.size(); i++)
		S.row(static_cast<Eigen::Index>(i)) = X.row(rows[i]);
	std::vector<double> out(static_cast<size_t>(std::max(n_classes, 1)));
	auto score = [&](const Eigen::MatrixXd &M) {
		RegressionMetrics rm;
		double correct = 0, inertia = 0;
		Eigen::RowVectorXd z;
		for (Eigen::Index i = 0; i < M.rows(); i++) {
			z = M.row(i);
			int k = est.predict(z.data(), out.data());
			double truth = y ? (*y)(rows[static_cast<size_t>(i)]) : 0;
			if (task == Task::Classification)
				correct += k == static_cast<int>(truth) ? 1 : 0;
			else if (task == Task::Regression)
				rm.add(truth, out[0]);
			else
				inertia += out[0] * out[0];
		}
		if (task == Task::Classification)
			return correct / std::max<double>(1, static_cast<double>(M.rows()));
		if (task == Task::Regression)
			return rm.r2();
		return -inertia / std::max<double>(1, static_cast<double>(M.rows()));
	};
	const double base = score(S);
	Eigen::VectorXd imp = Eigen::VectorXd::Zero(X.cols());
	std::vector<Eigen::Index> perm(rows.size());
	for (Eigen::Index f = 0; f < X.cols(); f++) {
		check_cancel(cancel);
		std::iota(perm.begin(), perm.end(), 0);
		std::shuffle(perm.begin(), perm.end(), rng);
		Eigen::MatrixXd P = S;
		for (size_t i = 0; i < perm.size(); i++)
			P(static_cast<Eigen::Index>(i), f) = S(perm[i], f);
		imp(f) = base - score(P);
	}
	return imp;
}

} // namespace

struct Trainer::Impl {
	TrainSpec spec;
	Task task = Task::Regression;
	Params hp;
	PreprocessOptions popts;
	bool streaming = false;
	bool incremental = false;

	Encoder enc;
	LevelCounter levels;       // distinct levels of the training rows per categorical column
	bool count_levels = true;  // false when continued training keeps the base's preprocessing
	CancelCheck cancel = nullptr; // the current call's (polled by the long loops of Impl)
	Moments train, test;
	RowStore chunk, train_chunk, test_chunk;
	RowStore rows;                      // in-memory algorithms: every row
	RowStore train_sample, test_sample; // streaming algorithms: the rows with the smallest sample draws
	// row reader: the samples' rows as max-heaps of (draw, row of the sample) while they fill
	std::vector<std::pair<double, size_t>> train_heap, test_heap;
	Dictionary labels;

	std::unordered_set<uint64_t> seen_rows;
	int64_t skipped_null_target = 0, dropped_nonfinite = 0, duplicates = 0;
	int64_t dropped_null = 0; // rows with a NULL feature, preprocess {"nulls": "drop"}
	std::vector<int64_t> nulls; // per feature column, training rows
	std::vector<double> col_min, col_max;
	std::vector<std::vector<double>> median_values;
	uint64_t fingerprint = 0;
	int64_t used_rows = 0;
	int64_t base_rows = 0; // incremental: training rows of the base version
	// retraining a classifier: the base version's classes (check_new_classes)
	bool check_classes = false;
	std::vector<std::string> known_classes;
	const Model *base = nullptr; // incremental continued training of an estimator
	Eigen::MatrixXd block;
	bool aggregated = false;                // fed by add_stats_group
	std::vector<double> train_u, test_u;   // sample_draw of the sample rows
	// naive Bayes through the class aggregate (add_class_group, class_fit, add_eval_state)
	struct ClassGroup {
		int label = 0;
		int split = 0;                  // 0 train, 1 test
		std::vector<int32_t> cats;      // per feature: level id (categorical), -1 for NULL
		stats::Decoded d;
	};
	std::vector<ClassGroup> class_groups;
	std::unique_ptr<Model> class_model; // fitted by class_fit, handed out by finish
	int64_t class_train = 0, class_test = 0;
	bool class_evaluated = false, class_compared = false;
	evalstate::Decoded class_eval, class_compare_eval;
	// k-means through the Lloyd-step aggregate (kmeans_step.hpp); the scaled features' mean and
	// sum of squared deviations over the training rows (from the moments)
	std::unique_ptr<kmeans_step::Fit> km;
	Eigen::VectorXd km_mean, km_m2;
	// the exact comparison's pass over the relation (Trainer::needs_compare_pass): both models
	// on every held-out row; the train metrics and (k-means) the silhouettes on the sample
	// are kept from finish()
	bool compare_pass = false, compare_pass_done = false;
	std::string kept_train_json;
	RegressionMetrics pass_new, pass_prev;
	ClusteringMetrics sample_new, sample_prev;
	int64_t pass_rows = 0;
	std::vector<Value> pass_vals;
	std::vector<double> pass_out;
	std::unordered_set<uint64_t> pass_seen; // dedupe: the pass drops the duplicates the read dropped
	// the precise pass (Trainer::needs_precise_pass): the training and test rows' statistics in
	// double-double; incremental: the base version's, with their low parts when it had them
	bool precise_wanted = false, precise_done = false;
	std::unique_ptr<PreciseMoments> ptrain, ptest, base_precise;
	std::unordered_set<uint64_t> precise_seen;

	// a fresh k-means fit can run on the statistics aggregate and the Lloyd-step aggregate
	// (incremental retraining continues on the rows in memory)
	bool kmeans_aggregate() const { return spec.algorithm == Algorithm::KMeans && base == nullptr && !incremental; }
	int sample_cap() const { return kmeans_aggregate() ? kmeans_step::kInitSampleRows : kAggSampleRows; }

	// Compares rows a and b of s by their values alone: the target, then the features in order
	// (NULL first, a number by value, a level by its text, not by its id, which depends on the
	// order the levels were met in). <0, 0 or >0. The tie-break between rows of equal hashes or
	// draws: rows it finds equal are the same row, whichever comes first.
	int compare_values(const RowStore &s, size_t a, size_t b) const
	{
		auto cmp = [](double x, double y) {
			const bool nx = std::isnan(x), ny = std::isnan(y);
			if (nx || ny)
				return nx == ny ? 0 : nx ? -1 : 1;
			return x < y ? -1 : y < x ? 1 : 0;
		};
		if (int c = cmp(s.y[a], s.y[b]))
			return c;
		for (size_t c = 0; c < spec.features.size(); c++) {
			if (spec.features[c].categorical()) {
				const int32_t la = s.cat[c][a], lb = s.cat[c][b];
				if (la == lb)
					continue;
				if (la < 0 || lb < 0)
					return la < 0 ? -1 : 1;
				return enc.dictionary(c).name(la) < enc.dictionary(c).name(lb) ? -1 : 1;
			}
			if (int r = cmp(s.num[c][a], s.num[c][b]))
				return r;
		}
		return 0;
	}

	// Every row in a canonical order: by hash, rows of equal hashes by their values. What the
	// in-memory algorithms are given (and everything drawn by position: the split's ties,
	// k-means++ starts, bootstraps, minibatches, boosting's subsamples, the silhouette and
	// permutation importance samples) then depends on the rows alone, never on the order they
	// were read in. Memory: the order (4 bytes a row) and one column's copy at a time, less
	// than the feature matrix built next (checked by finish, at least 16 bytes a row).
	void canonical_order(RowStore &s) const
	{
		const size_t n = s.size();
		if (n > UINT32_MAX)
			throw Error(ErrorCode::ProgramLimit, "too many training rows kept in memory",
			            std::to_string(n) + " rows were read.", "Train on fewer rows (a view with TABLESAMPLE).");
		std::vector<uint32_t> order(n);
		std::iota(order.begin(), order.end(), 0u);
		const uint64_t *h = s.hash.data();
		bool sorted = true;
		for (size_t i = 1; i < n && sorted; i++)
			sorted = h[i - 1] < h[i];
		if (sorted)
			return; // already in order (and no equal hashes)
		std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
			if (h[a] != h[b])
				return h[a] < h[b];
			return compare_values(s, a, b) < 0;
		});
		check_cancel(cancel);
		s.permute(order);
	}

	// Keeps the `cap` rows of s with the smallest draws u, in increasing order of draw (equal
	// draws: by hash, then by values), whatever the order they were gathered in.
	void order_sample(RowStore &s, std::vector<double> &u, size_t cap) const
	{
		std::vector<uint32_t> idx(s.size()); // samples hold at most kSampleRows rows
		std::iota(idx.begin(), idx.end(), 0u);
		std::sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) {
			if (u[a] != u[b])
				return u[a] < u[b];
			if (s.hash[a] != s.hash[b])
				return s.hash[a] < s.hash[b];
			return compare_values(s, a, b) < 0;
		});
		if (idx.size() > cap)
			idx.resize(cap);
		std::vector<double> out_u(idx.size());
		for (size_t k = 0; k < idx.size(); k++)
			out_u[k] = u[idx[k]];
		s.permute(idx);
		u = std::move(out_u);
	}

	// every group kept its smallest draws: keep the overall smallest, in draw order
	void trim_samples()
	{
		order_sample(train_sample, train_u, static_cast<size_t>(sample_cap()));
		order_sample(test_sample, test_u, static_cast<size_t>(sample_cap()));
	}

	// The scaled features of a sample's rows.
	static Eigen::MatrixXd scaled_rows(const Preprocessor &prep, const Encoder &enc, const RowStore &s)
	{
		const int p = prep.p();
		std::vector<double> x(static_cast<size_t>(p));
		Eigen::MatrixXd X(static_cast<Eigen::Index>(s.size()), p);
		for (size_t i = 0; i < s.size(); i++) {
			prep.transform(enc, s, i, x.data());
			for (int f = 0; f < p; f++)
				X(static_cast<Eigen::Index>(i), f) = (x[static_cast<size_t>(f)] - prep.center(f)) / prep.scale(f);
		}
		return X;
	}

	// Preprocessing from the statistics, starting centres from the sample (kmeans_step.hpp).
	void start_kmeans(CancelCheck cancel)
	{
		this->cancel = cancel;
		flush_groups();
		check_magnitudes();
		trim_samples();
		if (train.n() == 0)
			throw Error(ErrorCode::DataException, "no rows left to train on",
			            std::to_string(used_rows + dropped_nonfinite) + " rows were read, " +
			                std::to_string(dropped_nonfinite) + " with a non-finite value, " +
			                std::to_string(test.n()) + " held out for testing.",
			            "Train on more rows, or lower test_size.");
		grow_moments();
		Preprocessor prep = fit_preprocessor(spec.features, popts, enc, train, col_min, col_max, medians());
		prep.native_missing = false;
		const int p = prep.p();
		Eigen::MatrixXd A;
		Eigen::VectorXd c0;
		prep.affine(enc, A, c0);
		const Eigen::MatrixXd AC = A * train.comoment();
		km_m2 = AC.cwiseProduct(A).rowwise().sum().array() / prep.scale.array().square();
		km_mean = (A * train.mean() + c0 - prep.center).array() / prep.scale.array();
		const double tol_abs = hp.num("tol") * km_m2.sum() / (static_cast<double>(p) * static_cast<double>(train.n()));
		check_cancel(cancel);
		Eigen::MatrixXd X = scaled_rows(prep, enc, train_sample);
		FitInput in;
		in.X = &X;
		in.task = Task::Clustering;
		in.seed = spec.seed;
		in.native_missing = false;
		in.threads = spec.threads;
		in.memory_limit = spec.memory_limit;
		in.cancel = cancel;
		Eigen::MatrixXd C0 = kmeans_fit_centres(in, hp);
		km = std::make_unique<kmeans_step::Fit>(std::move(prep), spec.features, std::move(C0), tol_abs,
		                                         hp.integer("max_iter"), spec.seed, spec.test_size);
	}

	void init_common()
	{
		streaming = algorithm_streams(spec.algorithm);
		task = spec.task;
		chunk.reset(spec.features);
		train_chunk.reset(spec.features);
		test_chunk.reset(spec.features);
		rows.reset(spec.features);
		train_sample.reset(spec.features);
		test_sample.reset(spec.features);
		nulls.assign(spec.features.size(), 0);
		col_min.assign(spec.features.size(), INFINITY);
		col_max.assign(spec.features.size(), -INFINITY);
		median_values.assign(spec.features.size(), {});
	}

	bool wants_median(size_t c) const
	{
		return !spec.features[c].categorical() && popts.for_column(spec.features[c].name).impute == Impute::Median;
	}

	[[noreturn]] void nonfinite(const std::string &col, double v, bool is_target) const
	{
		throw Error(ErrorCode::DataException,
		            std::string(is_target ? "target column" : "column") + " \"" + col + "\" contains " +
		                (std::isnan(v) ? "NaN" : "Infinity"),
		            "Training needs finite values; NULL marks a missing value.",
		            "Drop such rows with preprocess => '{\"nonfinite\": \"drop\"}', or replace them with NULL.");
	}

	// Every numeric feature value read must be at most kMaxFeatureMagnitude in magnitude: the
	// moments the preprocessing (and the linear family) fits sum its square. 22003 otherwise.
	void check_magnitudes() const
	{
		for (size_t c = 0; c < spec.features.size() && c < col_min.size(); c++) {
			if (spec.features[c].categorical())
				continue;
			for (double v : {col_min[c], col_max[c]})
				if (std::isfinite(v) && std::fabs(v) > kMaxFeatureMagnitude)
					feature_out_of_range(spec.features[c].name, v, kSquareOverflows);
		}
	}

	// Decodes one group of a statistics aggregate query, checks that it was computed for this
	// run's columns (with a target slot or not, as has_target says), raises the row reader's
	// error for a non-finite value, and adds the group's counters to the run's. numeric gets
	// the numeric feature columns, in order.
	stats::Decoded absorb_group(const double *state, size_t len, bool has_target, std::vector<size_t> &numeric)
	{
		const size_t nf = spec.features.size();
		stats::Decoded d = stats::decode(state, len);
		numeric.clear();
		for (size_t c = 0; c < nf; c++)
			if (!spec.features[c].categorical())
				numeric.push_back(c);
		if (d.shape.nfeat != static_cast<int>(nf) || d.shape.k != static_cast<int>(numeric.size()) ||
		    d.shape.has_target != has_target)
			throw Error(ErrorCode::Internal, "statistics group was computed for other columns");
		// values out of range (the row reader's check): the training rows' extremes, and the
		// moments of training and held-out rows (a square that overflowed)
		for (size_t j = 0; j < numeric.size(); j++) {
			const std::string &name = spec.features[numeric[j]].name;
			for (double v : {d.min[j], d.max[j]})
				if (std::isfinite(v) && std::fabs(v) > kMaxFeatureMagnitude)
					feature_out_of_range(name, v, kSquareOverflows);
			const Eigen::Index k = static_cast<Eigen::Index>(j);
			for (const Moments *mo : {&d.train, &d.test})
				if (mo->n() > 0 && k < mo->dim() && (!std::isfinite(mo->mean()(k)) || !std::isfinite(mo->comoment()(k, k))))
					feature_out_of_range(name, NAN, kSquareOverflows);
		}
		if (has_target && task == Task::Regression) {
			const Eigen::Index k = static_cast<Eigen::Index>(numeric.size()); // the target's slot
			for (const Moments *mo : {&d.train, &d.test})
				if (mo->n() > 0 && k < mo->dim() && (!std::isfinite(mo->mean()(k)) || !std::isfinite(mo->comoment()(k, k))))
					feature_out_of_range(spec.target.name, NAN, kSquareOverflows, true);
		}
		if (d.nonfinite_column >= 0) {
			bool is_target = d.nonfinite_column >= static_cast<int>(nf);
			nonfinite(is_target ? spec.target.name : spec.features[static_cast<size_t>(d.nonfinite_column)].name,
			          d.nonfinite_nan ? NAN : INFINITY, is_target);
		}
		aggregated = true;
		skipped_null_target += d.skipped_null_target;
		dropped_nonfinite += d.dropped_nonfinite;
		fingerprint += d.fingerprint;
		return d;
	}

	// Converts a batch into `chunk` (compact rows), skipping NULL targets, non-finite and duplicate rows.
	void ingest(const Batch &batch)
	{
		chunk.clear();
		const size_t nf = spec.features.size();
		for (size_t i = 0; i < batch.nrows; i++) {
			double y = 0;
			uint64_t h = kRowHashSeed;
			if (batch.target != nullptr) {
				const ColumnData &t = *batch.target;
				if (t.isnull[i]) {
					skipped_null_target++;
					continue;
				}
				if (spec.target.categorical()) {
					const char *s = t.str[i];
					h = hash_target_str(h, s, std::strlen(s));
					y = labels.intern(s);
				} else {
					double v = t.num[i];
					if (!std::isfinite(v)) {
						if (popts.drop_nonfinite) {
							dropped_nonfinite++;
							continue;
						}
						nonfinite(spec.target.name, v, true);
					}
					if (task == Task::Regression && std::fabs(v) > kMaxFeatureMagnitude)
						feature_out_of_range(spec.target.name, v, kSquareOverflows, true);
					h = hash_target_num(h, v);
					y = task == Task::Classification ? labels.intern(numeric_label(spec.target.type_class, v)) : v;
				}
			}
			bool drop = false;
			for (size_t c = 0; c < nf && !drop; c++) {
				const ColumnData &col = batch.features[c];
				if (spec.features[c].categorical())
					continue;
				if (!col.isnull[i] && !std::isfinite(col.num[i])) {
					if (!popts.drop_nonfinite)
						nonfinite(spec.features[c].name, col.num[i], false);
					drop = true;
				} else if (!col.isnull[i] && std::fabs(col.num[i]) > kMaxFeatureMagnitude) {
					feature_out_of_range(spec.features[c].name, col.num[i], kSquareOverflows);
				}
			}
			if (drop) {
				dropped_nonfinite++;
				continue;
			}
			if (popts.drop_nulls && has_null_feature(batch, i)) {
				dropped_null++;
				continue;
			}
			for (size_t c = 0; c < nf; c++) {
				const ColumnData &col = batch.features[c];
				if (spec.features[c].categorical()) {
					int32_t id = -1;
					if (col.isnull[i]) {
						h = hash_str(h, c, nullptr, 0);
					} else {
						const char *s = col.str[i];
						h = hash_str(h, c, s, std::strlen(s));
						id = enc.intern(c, s);
					}
					chunk.cat[c].push_back(id);
				} else {
					double v = col.isnull[i] ? NAN : col.num[i];
					h = hash_num(h, c, col.isnull[i], v);
					chunk.num[c].push_back(v);
				}
			}
			if (popts.dedupe && !seen_rows.insert(h).second) {
				for (size_t c = 0; c < nf; c++) {
					if (spec.features[c].categorical())
						chunk.cat[c].pop_back();
					else
						chunk.num[c].pop_back();
				}
				duplicates++;
				continue;
			}
			chunk.y.push_back(y);
			chunk.hash.push_back(h);
		}
	}

	// Per-column statistics of training rows that the moments cannot give.
	void note_train_row(const RowStore &s, size_t i)
	{
		for (size_t c = 0; c < spec.features.size(); c++) {
			if (spec.features[c].categorical()) {
				if (count_levels)
					levels.note(c, s.cat[c][i]);
				continue;
			}
			double v = s.num[c][i];
			if (std::isnan(v)) {
				nulls[c]++;
				continue;
			}
			col_min[c] = std::min(col_min[c], v);
			col_max[c] = std::max(col_max[c], v);
			if (wants_median(c))
				median_values[c].push_back(v);
		}
	}

	// Rows encoded and added to the moments at a time: kBlockCells values, fewer with many slots
	// (categorical levels) so that cancel is polled at least every 2^28 multiply-adds (a block
	// costs O(rows q^2); up to 64 slots: unchanged) and the block stays within an eighth of the
	// memory limit; at least 64 rows.
	Eigen::Index block_rows() const
	{
		const Eigen::Index q = std::max<Eigen::Index>(1, enc.dim());
		Eigen::Index rows = std::min<Eigen::Index>(kBlockCells / q, (Eigen::Index(1) << 28) / (q * q));
		if (spec.memory_limit > 0)
			rows = std::min<Eigen::Index>(rows, static_cast<Eigen::Index>(spec.memory_limit / 64) / q);
		return std::max<Eigen::Index>(64, rows);
	}

	// The moments of one statistics group on its own few slots, waiting to be merged into the
	// run's moments (flush_groups): merging each group into the q x q moments at once would cost
	// O(q^2) per group, O(levels^3) for a column's levels.
	struct PendingGroup {
		int64_t n = 0;
		std::vector<Eigen::Index> slots; // encoder slot of each state slot (-1: not kept)
		Eigen::VectorXd mean;            // per state slot
		Eigen::MatrixXd C;               // co-moments of the state slots
		std::vector<Eigen::Index> ones;  // slots that are 1 in every row of the group (its levels)
	};
	std::vector<PendingGroup> pending_train, pending_test;
	double pending_bytes = 0;

	// Queues a group's moments (from, on the state slots `slots`; `ones` constant 1) for `to`
	// (train or test); merges the queue once it holds as much as the dense moments.
	void add_group(const Moments &from, const std::vector<Eigen::Index> &slots, const std::vector<Eigen::Index> &ones,
	               bool to_test)
	{
		if (from.n() == 0)
			return;
		check_moments_memory(); // before the slots' moments are ever allocated
		const Eigen::Index q = enc.dim();
		if (q <= kDirectMergeSlots && pending_train.empty() && pending_test.empty()) {
			// few slots: merged at once, as dense moments (O(q^2) is small)
			grow_moments();
			Eigen::VectorXd mean = Eigen::VectorXd::Zero(q);
			Eigen::MatrixXd M = Eigen::MatrixXd::Zero(q, q);
			Eigen::MatrixXd C = from.comoment();
			for (size_t i = 0; i < slots.size(); i++) {
				if (slots[i] < 0)
					continue;
				mean(slots[i]) = from.mean()(static_cast<Eigen::Index>(i));
				for (size_t j = 0; j < slots.size(); j++)
					if (slots[j] >= 0)
						M(slots[i], slots[j]) = C(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
			}
			for (Eigen::Index slot : ones)
				mean(slot) = 1.0;
			(to_test ? test : train).merge(Moments::from(from.n(), mean, M));
			return;
		}
		PendingGroup g;
		g.n = from.n();
		g.slots = slots;
		g.mean = from.mean();
		g.C = from.comoment();
		g.ones = ones;
		pending_bytes += 8.0 * static_cast<double>(g.C.size() + g.mean.size() + slots.size() + ones.size()) + 128;
		(to_test ? pending_test : pending_train).push_back(std::move(g));
		if (pending_bytes > std::max(8.0 * static_cast<double>(q) * static_cast<double>(q), 4.0 * (1 << 20)))
			flush_groups();
	}

	// Merges the queued groups into the training and test moments: O(slots^2) per group and
	// O(q^2) once (not per group).
	void flush_groups()
	{
		if (pending_train.empty() && pending_test.empty())
			return;
		grow_moments();
		merge_pending(pending_train, train);
		merge_pending(pending_test, test);
		pending_bytes = 0;
	}

	// The moments of the groups gs (all of them together), merged into `into`. Between groups,
	// sum n_g (mu_g - mu)(mu_g - mu)^T is computed around a shift s that is the overall mean on
	// the slots every group carries (numeric values, the target) and 0 on indicator slots, so
	// that each group's deviation is sparse and the numbers are not cancelled: the rest,
	// N (mu - s)(mu - s)^T, lives on the indicator slots only (values in [0, 1]).
	void merge_pending(std::vector<PendingGroup> &gs, Moments &into)
	{
		if (gs.empty())
			return;
		const Eigen::Index q = enc.dim();
		double N = 0;
		Eigen::VectorXd sum = Eigen::VectorXd::Zero(q);
		for (const PendingGroup &g : gs) {
			const double n = static_cast<double>(g.n);
			N += n;
			for (size_t i = 0; i < g.slots.size(); i++)
				if (g.slots[i] >= 0)
					sum(g.slots[i]) += n * g.mean(static_cast<Eigen::Index>(i));
			for (Eigen::Index one : g.ones)
				sum(one) += n;
		}
		const Eigen::VectorXd mu = sum / N;
		Eigen::VectorXd shift = Eigen::VectorXd::Zero(q);
		for (size_t c = 0; c < spec.features.size(); c++)
			if (!spec.features[c].categorical() && enc.value_slot(c) >= 0)
				shift(enc.value_slot(c)) = mu(enc.value_slot(c));
		if (enc.target_slot() >= 0)
			shift(enc.target_slot()) = mu(enc.target_slot());
		Eigen::MatrixXd M = Eigen::MatrixXd::Zero(q, q);
		std::vector<std::pair<Eigen::Index, double>> d;
		for (const PendingGroup &g : gs) {
			check_cancel(cancel);
			const double n = static_cast<double>(g.n);
			d.clear();
			for (size_t i = 0; i < g.slots.size(); i++) {
				const Eigen::Index a = g.slots[i];
				if (a < 0)
					continue;
				d.emplace_back(a, g.mean(static_cast<Eigen::Index>(i)) - shift(a));
				for (size_t j = 0; j < g.slots.size(); j++)
					if (g.slots[j] >= 0)
						M(a, g.slots[j]) += g.C(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
			}
			for (Eigen::Index one : g.ones)
				d.emplace_back(one, 1.0 - shift(one));
			for (const auto &[a, da] : d)
				for (const auto &[b, db] : d)
					M(a, b) += n * da * db;
		}
		const Eigen::VectorXd e = mu - shift;
		M.noalias() -= N * e * e.transpose();
		into.merge(Moments::from(static_cast<int64_t>(N), mu, M));
		gs.clear();
	}

	// Checks that the training and test moments at the encoder's slots fit the memory limit.
	void check_moments_memory() const
	{
		const double q = static_cast<double>(enc.dim());
		// the training and test moments, and as much again for the temporaries of a merge
		check_memory(spec.memory_limit, 4 * memory::moments_bytes(q) + block_rows() * q * 8.0,
		             "the statistics of the encoded features",
		             "The training and test rows' co-moments are two " + count_text(q) + " x " + count_text(q) +
		                 " matrices (and their merges as many again): one slot per numeric column, per missing-value "
		                 "indicator and per category level.",
		             "max_levels, exclude columns with many distinct values");
	}

	// Widens the training and test moments to the encoder's slots, after checking that their
	// two q x q matrices fit the memory limit (q grows with the categorical levels).
	void grow_moments()
	{
		check_moments_memory();
		train.grow(enc.dim());
		test.grow(enc.dim());
	}

	// Adds rows [0, s.size()) of s to m, in blocks.
	void add_moments(const RowStore &s, Moments &m)
	{
		if (s.size() == 0)
			return;
		enc.allocate(s, 0, s.size());
		grow_moments();
		const size_t step = static_cast<size_t>(block_rows());
		for (size_t b = 0; b < s.size(); b += step) {
			check_cancel(cancel);
			size_t e = std::min(s.size(), b + step);
			enc.encode(s, b, e, block);
			m.add_block(block);
		}
	}

	// Keeps the kSampleRows rows with the smallest sample draws (as the statistics aggregate
	// does): the same rows whatever the order they come in (a reservoir sample would not be).
	void keep_sample(RowStore &sample, std::vector<double> &u, std::vector<std::pair<double, size_t>> &heap,
	                 const RowStore &src, size_t i)
	{
		const double d = sample_draw(src.hash[i], spec.seed);
		if (sample.size() < kSampleRows) {
			heap.emplace_back(d, sample.size());
			std::push_heap(heap.begin(), heap.end());
			sample.append_from(src, i);
			u.push_back(d);
			return;
		}
		if (!(d < heap.front().first))
			return;
		std::pop_heap(heap.begin(), heap.end());
		const size_t at = heap.back().second;
		heap.back() = {d, at};
		std::push_heap(heap.begin(), heap.end());
		sample.set_from(at, src, i);
		u[at] = d;
	}

	void stream_chunk()
	{
		train_chunk.clear();
		test_chunk.clear();
		for (size_t i = 0; i < chunk.size(); i++) {
			bool is_test = is_test_row(chunk.hash[i], spec.seed, spec.test_size);
			RowStore &dst = is_test ? test_chunk : train_chunk;
			dst.append_from(chunk, i);
			if (is_test) {
				keep_sample(test_sample, test_u, test_heap, chunk, i);
			} else {
				note_train_row(chunk, i);
				keep_sample(train_sample, train_u, train_heap, chunk, i);
			}
			fingerprint += mix64(chunk.hash[i]);
		}
		used_rows += static_cast<int64_t>(chunk.size());
		add_moments(train_chunk, train);
		add_moments(test_chunk, test);
	}

	size_t row_bytes() const
	{
		size_t per_row = sizeof(double) + sizeof(uint64_t);
		for (const auto &c : spec.features)
			per_row += c.categorical() ? sizeof(int32_t) : sizeof(double);
		return per_row;
	}

	void buffer_chunk()
	{
		const size_t per_row = row_bytes();
		if ((rows.size() + chunk.size()) * per_row > spec.memory_limit)
			throw Error(ErrorCode::ProgramLimit,
			            "training rows need more than " + std::to_string(spec.memory_limit >> 20) + " MB of memory",
			            std::string(algorithm_name(spec.algorithm)) + " keeps the rows in memory; " +
			                std::to_string(rows.size() + chunk.size()) + " rows had been read.",
			            "Raise pg_ml.max_memory, or train on fewer rows (a view with TABLESAMPLE) or columns.");
		rows.append_all(chunk);
	}

	std::vector<double> medians() const
	{
		std::vector<double> out(spec.features.size(), NAN);
		for (size_t c = 0; c < spec.features.size(); c++) {
			std::vector<double> v = median_values[c];
			if (v.empty())
				continue;
			size_t mid = v.size() / 2;
			std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
			double hi = v[mid];
			if (v.size() % 2 == 1) {
				out[c] = hi;
			} else {
				double lo = *std::max_element(v.begin(), v.begin() + static_cast<long>(mid));
				out[c] = (lo + hi) / 2;
			}
		}
		return out;
	}

	// Whether label id a sorts before label id b: numerically for numeric / boolean targets, else by bytes.
	bool label_less(int a, int b) const
	{
		const std::string &x = labels.name(a), &y = labels.name(b);
		if (!spec.target.categorical()) {
			double dx = x == "true" ? 1 : x == "false" ? 0 : std::strtod(x.c_str(), nullptr);
			double dy = y == "true" ? 1 : y == "false" ? 0 : std::strtod(y.c_str(), nullptr);
			return dx < dy;
		}
		return x < y;
	}

	// Retraining a classifier: the labels of the rows that the base version does not know are
	// an error (its classes are the model's contract: the columns of ml_predict_proba), unless
	// spec.allow_new_classes and the update can add a class (a refit can; continued training
	// goes on from the base's per-class state and keeps its classes). label_rows[id]: the rows
	// holding label id. Each unknown label is named with its rows.
	void check_new_classes(const std::vector<int64_t> &label_rows) const
	{
		if (!check_classes)
			return;
		std::vector<int> unseen;
		for (int k = 0; k < static_cast<int>(labels.size()); k++)
			if (std::find(known_classes.begin(), known_classes.end(), labels.name(k)) == known_classes.end())
				unseen.push_back(k);
		const bool continued = base != nullptr || incremental;
		if (unseen.empty() || (spec.allow_new_classes && !continued))
			return;
		std::sort(unseen.begin(), unseen.end(), [&](int a, int b) { return label_less(a, b); });
		constexpr size_t kListed = 10; // labels named in the message; the count of the others follows
		std::string list;
		for (size_t i = 0; i < unseen.size() && i < kListed; i++) {
			const int k = unseen[i];
			const int64_t n = static_cast<size_t>(k) < label_rows.size() ? label_rows[static_cast<size_t>(k)] : 0;
			list += (i ? ", " : "") + quoted_label(labels.name(k)) + " (" + std::to_string(n) +
			        (n == 1 ? " row)" : " rows)");
		}
		if (unseen.size() > kListed)
			list += " and " + std::to_string(unseen.size() - kListed) + " more";
		std::string known;
		for (size_t i = 0; i < known_classes.size() && i < kListed; i++)
			known += (i ? ", " : "") + quoted_label(known_classes[i]);
		if (known_classes.size() > kListed)
			known += " and " + std::to_string(known_classes.size() - kListed) + " more";
		const std::string classes = unseen.size() == 1 ? "a class" : std::to_string(unseen.size()) + " classes";
		if (continued && spec.allow_new_classes)
			throw Error(ErrorCode::FeatureNotSupported,
			            "incremental retraining cannot add " + (unseen.size() == 1 ? std::string("a class") : "classes") +
			                " the model does not know: " + list,
			            "Target column \"" + spec.target.name + "\": the model's classes are " + known +
			                ". An incremental update goes on from the model's per-class state, which has no place "
			                "for a class it was not trained with.",
			            "Retrain with mode => 'refit' on a relation holding the rows the model learned from and the "
			            "new ones to train a version with the new classes.");
		throw Error(ErrorCode::DataException,
		            "target column \"" + spec.target.name + "\" holds " + classes + " the model does not know: " + list,
		            "The model's classes are " + known +
		                ". A version with other classes would change the columns of ml_predict_proba.",
		            continued ? "Correct the labels, or retrain with mode => 'refit' and allow_new_classes => true on a "
		                        "relation holding the rows the model learned from and the new ones to train a version "
		                        "with the new classes."
		                      : "Correct the labels, or pass allow_new_classes => true to train a version with the "
		                        "new classes.");
	}

	// A label for a message: quoted, cut after 60 bytes (at a UTF-8 character boundary).
	static std::string quoted_label(const std::string &label)
	{
		constexpr size_t kMax = 60;
		if (label.size() <= kMax)
			return "\"" + label + "\"";
		size_t n = kMax;
		while (n > 0 && (static_cast<unsigned char>(label[n]) & 0xC0) == 0x80)
			n--;
		return "\"" + label.substr(0, n) + "...\"";
	}

	// Guards (issue 11): a classification whose classes are a number's values (a float target,
	// or fractions, with more than kMaxNumberClasses classes: task => 'classification' on a
	// price), or whose every row is its own class (a key as the target), is refused.
	static constexpr int kMaxNumberClasses = 100;
	static constexpr int64_t kMinRowsAllDistinct = 10;
	void check_class_count(int K, int64_t nrows) const
	{
		const std::string &col = spec.target.name;
		if (K > kMaxNumberClasses && spec.target.type_class == TypeClass::Numeric) {
			bool fractional = spec.target.type_name == "double precision" || spec.target.type_name == "real";
			for (int k = 0; k < K && !fractional; k++) {
				double v = std::strtod(labels.name(k).c_str(), nullptr);
				fractional = v != std::floor(v);
			}
			if (fractional)
				throw Error(ErrorCode::InvalidParameter,
				            "classification of target column \"" + col + "\" (" + spec.target.type_name + ") would have " +
				                std::to_string(K) + " classes",
				            "Each distinct number would be a class of its own; a classifier learns nothing about the "
				            "numbers between them.",
				            "Predict the number with task => 'regression' (and a regression algorithm), or bucket "
				            "the target into a few classes in a view.");
		}
		if (K == nrows && nrows >= kMinRowsAllDistinct)
			throw Error(ErrorCode::DataException,
			            "target column \"" + col + "\" has a different value in every row",
			            "All " + std::to_string(nrows) +
			                " rows are classes of their own, as in a key: there is nothing to learn about a class.",
			            "Predict another column, or task => 'regression' for a number.");
	}

	// Records a least-squares solve's rank and condition number for the report, and the
	// warning a rank-deficient or ill-conditioned fit raises (naming its columns). The digits
	// estimate (estimated_digits): the data's rounding costs about condition * 2^-53, statistics
	// of precision u_moments condition^2 * u_moments (relative) in the coefficients, and the
	// intercept (the target's mean less w . the features' means) that times sum |w_j mean_j| / |b|.
	void note_solve(GramSolution gs, const Eigen::VectorXd &w, const Eigen::VectorXd &mx, double b, double y_rms,
	                const std::vector<std::string> &names, TrainResult &res, double u_moments) const
	{
		res.solve_rank = gs.rank;
		res.solve_columns = gs.columns;
		res.solve_condition = gs.condition;
		double digits = NAN, coef_digits = NAN;
		std::vector<int> far; // the columns whose means make the intercept lose digits
		if (std::isfinite(gs.condition) && !gs.deficient) {
			coef_digits = estimated_digits(gs, u_moments, 1);
			double amp = 1, sum = 0, top = 0;
			if (std::isfinite(b)) {
				for (Eigen::Index j = 0; j < w.size(); j++) {
					sum += std::abs(w(j) * mx(j));
					top = std::max(top, std::abs(w(j) * mx(j)));
				}
				// an intercept near 0 counts as precise to 1e-8 of the target's magnitude
				amp = std::max(1.0, sum / std::max({std::abs(b), 1e-8 * y_rms, DBL_MIN}));
			}
			digits = estimated_digits(gs, u_moments, amp);
			if (digits < kWarnDigits) {
				gs.ill_conditioned = true;
				if (coef_digits >= kWarnDigits) { // the coefficients are fine: the intercept is what loses digits
					gs.collinear.clear();
					for (Eigen::Index j = 0; j < w.size(); j++)
						if (std::abs(w(j) * mx(j)) >= 0.1 * top)
							far.push_back(static_cast<int>(j));
				}
			} else {
				gs.ill_conditioned = false;
				gs.collinear.clear();
			}
		}
		res.solve_digits = digits;
		res.solve_precise = gs.precise;
		res.solve_collinear.clear();
		res.solve_constant.clear();
		for (int c : gs.collinear)
			res.solve_collinear.push_back(names[static_cast<size_t>(c)]);
		for (int c : gs.constant)
			res.solve_constant.push_back(names[static_cast<size_t>(c)]);
		char cond[64];
		std::snprintf(cond, sizeof cond, "%.3g", gs.condition);
		const std::string who = std::string(algorithm_name(spec.algorithm)) + ": ";
		auto about = [](double d) { return std::to_string(static_cast<int>(std::floor(std::isfinite(d) ? d : 0))); };
		auto plural = [](const std::string &n) { return n == "1" ? std::string(" digit") : std::string(" digits"); };
		if (!gs.constant.empty())
			res.warnings.push_back({who + std::string(gs.constant.size() == 1 ? "column " : "columns ") +
			                            column_list(names, gs.constant) + " did not vary in the training rows",
			                        std::string(gs.constant.size() == 1 ? "Its coefficient is" : "Their coefficients are") +
			                            " set to 0; the fit has rank " + std::to_string(gs.rank) + " of " +
			                            std::to_string(gs.columns) + ".",
			                        "Leave the constant columns out of the features."});
		if (gs.deficient)
			res.warnings.push_back(
			    {who + "the fit is rank-deficient: columns " + column_list(names, gs.collinear) +
			         " are collinear",
			     "The fit kept " + std::to_string(gs.rank) + " of " + std::to_string(gs.columns) +
			         " directions (the dependence is exact, or too close for double-precision statistics); "
			         "among these columns the coefficients are the minimum-norm solution, not determined by the data.",
			     "Leave one of the collinear columns out of the features, or use ridge."});
		else if (gs.ill_conditioned && !far.empty())
			res.warnings.push_back(
			    {who + "the intercept is ill-conditioned: " +
			         std::string(far.size() == 1 ? "column " : "columns ") + column_list(names, far) +
			         " contribute" + (far.size() == 1 ? "s" : "") + " far more than it at " +
			         (far.size() == 1 ? "its mean" : "their means"),
			     "The intercept may have only about " + about(digits) + " correct significant" + plural(about(digits)) +
			         " (the coefficients about " + about(coef_digits) + "; condition number " + cond + ").",
			     "Center these columns (subtract a typical value) before training."});
		else if (gs.ill_conditioned)
			res.warnings.push_back(
			    {who + "the fit is ill-conditioned (condition number " + std::string(cond) +
			         "): columns " + column_list(names, gs.collinear) + " are nearly collinear",
			     "The coefficients may have only about " + about(coef_digits) + " correct significant" +
			         plural(about(coef_digits)) +
			         (std::isfinite(b) && digits < coef_digits - 0.5 ? ", the intercept about " + about(digits) : "") +
			         (gs.precise ? " (an estimate for least squares on double-precision data, solved in double-double)."
			                     : " (an estimate for least squares from double-precision training statistics)."),
			     "Leave one of the nearly collinear columns out of the features, or use ridge."});
	}

	// A regression target with one value in every training row (n rows, minimum lo, maximum hi)
	// is refused: every prediction would be that value.
	void check_constant_target(int64_t n, double lo, double hi) const
	{
		if (n < 2 || lo != hi)
			return;
		throw Error(ErrorCode::DataException,
		            "target column \"" + spec.target.name + "\" has the same value (" +
		                numeric_label(spec.target.type_class, lo) + ") in every training row",
		            "A regression on a constant learns nothing: every prediction would be that value (" +
		                std::to_string(n) + " rows).",
		            "Check the target column and the rows (a view's WHERE may keep only one value), or predict "
		            "another column.");
	}

	// The classes in sorted order (numerically for numeric / boolean targets, else by bytes)
	// into model.classes, and each label id's class (continued training: the base's classes).
	// nrows: the rows read with a target (train and test), for the guards below; label_rows[id]:
	// the rows holding label id (for the message about unknown labels).
	std::vector<int> order_classes(Model &model, int &K, int64_t nrows, const std::vector<int64_t> &label_rows) const
	{
		check_new_classes(label_rows);
		K = static_cast<int>(labels.size());
		if (K < 2 && base == nullptr)
			throw Error(ErrorCode::DataException,
			            "target column \"" + spec.target.name + "\" has only one class (" + labels.name(0) + ")",
			            "Classification needs at least two distinct target values.",
			            "Check the target column, or train on rows that include other classes.");
		if (base == nullptr)
			check_class_count(K, nrows);
		// classes in sorted order: numerically for numeric / boolean targets, else by bytes
		std::vector<int> order(static_cast<size_t>(K));
		std::iota(order.begin(), order.end(), 0);
		std::sort(order.begin(), order.end(), [&](int a, int b) { return label_less(a, b); });
		std::vector<int> rank(static_cast<size_t>(K));
		for (int k = 0; k < K; k++) {
			rank[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
			model.classes.push_back(labels.name(order[static_cast<size_t>(k)]));
		}
		if (base != nullptr) {
			// continued training keeps the base's classes: map the new rows' labels onto them
			for (int k = 0; k < K; k++) {
				const std::string &label = labels.name(k);
				auto it = std::find(base->classes.begin(), base->classes.end(), label);
				if (it == base->classes.end()) // check_new_classes refused it
					throw Error(ErrorCode::Internal, "a label of the rows is not a class of the model");
				rank[static_cast<size_t>(k)] = static_cast<int>(it - base->classes.begin());
			}
			model.classes = base->classes;
			K = static_cast<int>(model.classes.size());
		}
		return rank;
	}

	// Row `i` of `s` as prediction values for a model whose features are `cols`.
	bool row_values(const RowStore &s, size_t i, const std::vector<ColumnInfo> &cols, std::vector<Value> &vals) const
	{
		vals.resize(cols.size());
		for (size_t k = 0; k < cols.size(); k++) {
			size_t c = 0;
			while (c < spec.features.size() && spec.features[c].name != cols[k].name)
				c++;
			if (c == spec.features.size() || spec.features[c].categorical() != cols[k].categorical())
				return false;
			Value &v = vals[k];
			if (spec.features[c].categorical()) {
				int32_t id = s.cat[c][i];
				v.isnull = id < 0;
				if (!v.isnull) {
					const std::string &name = enc.dictionary(c).name(id);
					v.str = name.c_str();
					v.len = name.size();
				}
			} else {
				double x = s.num[c][i];
				v.isnull = std::isnan(x);
				v.num = x;
			}
		}
		return true;
	}
};

Trainer::Trainer(const TrainSpec &spec) : impl_(std::make_unique<Impl>())
{
	Impl &m = *impl_;
	m.spec = spec;
	validate_spec(spec);
	m.hp = parse_params(algorithm_def(spec.algorithm), spec.hyperparams);
	m.popts = parse_preprocess(spec.preprocess, spec.features);
	m.levels = LevelCounter(spec.features, m.popts);
	m.init_common();
	m.enc = Encoder(spec.features, m.streaming);
}

Trainer::Trainer(const TrainSpec &spec, const Model &base, bool incremental) : impl_(std::make_unique<Impl>())
{
	Impl &m = *impl_;
	if (incremental && !model_can_continue(base))
		throw Error(ErrorCode::FeatureNotSupported,
		            std::string(algorithm_name(base.algorithm)) + " cannot be retrained incrementally",
		            "Linear models kept as sufficient statistics add rows exactly; gradient_boosting continues "
		            "boosting, mlp and kmeans warm-start and naive_bayes adds to its counts. " +
		                std::string(algorithm_name(base.algorithm)) + " has no such update.",
		            "Use mode => 'refit'.");
	m.spec = spec;
	m.spec.features = base.features;
	m.spec.target = base.target;
	m.spec.algorithm = base.algorithm;
	m.spec.task = base.task;
	validate_spec(m.spec);
	m.hp = base.hyperparams;
	// hyperparameters added since the base was trained (e.g. gradient_boosting's retrain_rounds,
	// 0.3.0) take their defaults, which the new version records
	for (const ParamSpec &ps : algorithm_def(base.algorithm).params) {
		if (m.hp.has(ps.name))
			continue;
		if (ps.kind == ParamSpec::Kind::Choice)
			m.hp.set_choice(ps.name, ps.def_choice);
		else
			m.hp.set_num(ps.name, ps.def);
	}
	m.popts = base.preprocess;
	m.levels = LevelCounter(m.spec.features, m.popts);
	m.init_common();
	if (base.task == Task::Classification) {
		m.check_classes = true;
		m.known_classes = base.classes;
	}
	if (!incremental) {
		m.enc = Encoder(m.spec.features, m.streaming);
		return;
	}
	for (size_t c = 0; c < base.features.size(); c++)
		if (m.wants_median(c))
			throw Error(ErrorCode::FeatureNotSupported, "incremental retraining cannot keep median imputation exact",
			            "Column \"" + base.features[c].name + "\" is imputed with the median of all training rows.",
			            "Use mode => 'refit'.");
	m.incremental = true;
	if (!m.streaming) {
		// continued training: the base's preprocessing stays, the estimator goes on from its state
		m.enc = Encoder(m.spec.features, false);
		m.base = &base;
		m.count_levels = false; // levels the base did not see are ignored, not encoded
		return;
	}
	m.enc = base.encoder;
	// the statistics go on from the base's rows: their levels count towards max_levels
	for (size_t c = 0; c < base.features.size(); c++) {
		if (!base.features[c].categorical() || c >= base.prep.columns.size())
			continue;
		for (const std::string &level : base.prep.columns[c].levels) {
			int32_t id = m.enc.find(c, level);
			if (id >= 0)
				m.levels.note(c, id);
		}
		if (base.prep.columns[c].null_feature >= 0)
			m.levels.note(c, -1);
	}
	m.train = base.stats;
	m.base_precise = std::make_unique<PreciseMoments>(PreciseMoments::from(
	    base.stats, base.has_precise_stats ? &base.stats_mean_lo : nullptr,
	    base.has_precise_stats ? &base.stats_comoment_lo : nullptr));
	m.base_rows = base.stats.n();
	// the earlier rows' min / max, so min-max scaling is refitted over all rows
	m.col_min = base.col_min;
	m.col_max = base.col_max;
}

Trainer::~Trainer() = default;

bool model_continues_exactly(const Model &m)
{
	if (algorithm_streams(m.algorithm))
		return m.has_stats;
	return m.algorithm == Algorithm::NaiveBayes && model_can_continue(m);
}

bool model_can_continue(const Model &m)
{
	if (algorithm_streams(m.algorithm))
		return m.has_stats;
	return m.estimator != nullptr && m.estimator->can_continue();
}

void validate_spec(const TrainSpec &spec)
{
	if (!(spec.test_size >= 0 && spec.test_size < 1))
		throw Error(ErrorCode::InvalidParameter, "test_size must be at least 0 and less than 1",
		            "test_size was " + numeric_label(TypeClass::Numeric, spec.test_size) + ".",
		            "Use 0 to train on every row, or a fraction such as 0.2.");
	if (spec.features.empty())
		throw Error(ErrorCode::InvalidParameter, "no feature columns", "",
		            "The relation needs at least one column besides the target.");
	const AlgorithmDef *def = nullptr;
	for (const AlgorithmDef &d : algorithms())
		if (d.id == spec.algorithm)
			def = &d;
	if (def == nullptr)
		throw Error(ErrorCode::InvalidParameter, "unknown algorithm");
	if (!def->supports(spec.task))
		throw Error(ErrorCode::InvalidParameter,
		            "algorithm " + def->name + " does not do " + task_name(spec.task), "",
		            "Choose an algorithm for " + std::string(task_name(spec.task)) + ", or algorithm => 'auto'.");
	if (spec.task == Task::Regression && spec.target.type_class == TypeClass::Categorical)
		throw Error(ErrorCode::DatatypeMismatch,
		            def->name + " cannot predict target column \"" + spec.target.name + "\" of type " +
		                spec.target.type_name,
		            "Regression needs a numeric target.", "Use a classification algorithm such as logistic_regression.");
	parse_params(*def, spec.hyperparams);
	parse_preprocess(spec.preprocess, spec.features);
}

void Trainer::expect_rows(double n)
{
	Impl &m = *impl_;
	if (m.streaming || rows_read_ > 0 || !(n > 0))
		return;
	// the estimate plus a margin, never more than the memory limit allows (more rows than that
	// fail with the limit's error anyway)
	const double cap = static_cast<double>(m.spec.memory_limit / m.row_bytes());
	m.rows.reserve(static_cast<size_t>(std::min(cap, n * 1.05 + 1024)), m.spec.features);
}

void Trainer::add_batch(const Batch &batch, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	if (batch.nfeatures != m.spec.features.size() || (batch.target == nullptr) != (m.task == Task::Clustering))
		throw Error(ErrorCode::Internal, "batch does not match the training columns");
	rows_read_ += static_cast<int64_t>(batch.nrows);
	m.ingest(batch);
	if (m.streaming)
		m.stream_chunk();
	else
		m.buffer_chunk();
}

bool Trainer::uses_stats_aggregate() const
{
	const Impl &m = *impl_;
	if (!(m.streaming || m.kmeans_aggregate()) || m.popts.dedupe || m.popts.drop_nulls || rows_read_ > 0)
		return false;
	for (size_t c = 0; c < m.spec.features.size(); c++)
		if (m.wants_median(c))
			return false;
	return true;
}

std::vector<double> Trainer::stats_params(double expected_rows) const
{
	const Impl &m = *impl_;
	stats::Params p;
	p.nfeat = static_cast<int>(m.spec.features.size());
	p.has_target = !m.kmeans_aggregate(); // the linear family is regression; clustering has no target
	p.target_categorical = false;
	p.seed = m.spec.seed;
	p.test_size = m.spec.test_size;
	p.drop_nonfinite = m.popts.drop_nonfinite;
	p.sample_k = m.sample_cap();
	p.block = kAggBlockRows;
	if (expected_rows > 0) {
		// twice the expected need, so that an estimate that is off by a factor 2 still fills the sample
		const double cap = m.sample_cap();
		auto tau = [&](double share) { return share <= 0 ? 1.0 : std::min(1.0, 2.0 * cap / (expected_rows * share)); };
		p.tau_train = tau(1 - m.spec.test_size);
		p.tau_test = tau(m.spec.test_size);
	}
	for (const ColumnInfo &c : m.spec.features)
		p.categorical.push_back(c.categorical() ? 1 : 0);
	return p.encode();
}

void Trainer::add_stats_group(const std::vector<const char *> &levels, const double *state, size_t len,
                              CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	const size_t nf = m.spec.features.size();
	if (!(m.streaming || m.kmeans_aggregate()) || levels.size() != nf)
		throw Error(ErrorCode::Internal, "statistics group does not match the training columns");
	std::vector<size_t> numeric; // numeric feature columns, in order
	stats::Decoded d = m.absorb_group(state, len, m.enc.has_target_slot(), numeric);
	rows_read_ += d.rows_in;
	const int64_t rows = d.train.n() + d.test.n();
	m.used_rows += rows;
	if (rows == 0 && d.sample_train_rows == 0)
		return;

	// the group's categorical levels and the indicator slots it needs, allocated like a row's
	RowStore one;
	one.reset(m.spec.features);
	for (size_t c = 0; c < nf; c++) {
		if (m.spec.features[c].categorical())
			one.cat[c].push_back(levels[c] == nullptr ? -1 : m.enc.intern(c, levels[c]));
		else
			one.num[c].push_back(0.0);
	}
	for (size_t j = 0; j < numeric.size(); j++)
		if (d.indicator[j] >= 0)
			one.num[numeric[j]][0] = NAN;
	one.y.push_back(0);
	one.hash.push_back(0);
	// a group with training rows brings its levels into the training split: counted before
	// they get slots (a column over max_levels stops here, not after O(levels^2) work)
	if (d.train.n() > 0 && m.count_levels)
		for (size_t c = 0; c < nf; c++)
			if (m.spec.features[c].categorical())
				m.levels.note(c, one.cat[c][0]);
	m.enc.allocate(one, 0, 1);

	// state slot -> encoder slot; the categorical levels are constant 1 within the group
	std::vector<Eigen::Index> map(static_cast<size_t>(d.shape.q), -1);
	for (size_t j = 0; j < numeric.size(); j++) {
		map[j] = m.enc.value_slot(numeric[j]);
		if (d.indicator[j] >= 0)
			map[static_cast<size_t>(d.indicator[j])] = m.enc.missing_slot(numeric[j]);
	}
	if (d.shape.has_target)
		map[numeric.size()] = m.enc.target_slot();
	std::vector<Eigen::Index> constant;
	for (size_t c = 0; c < nf; c++)
		if (m.spec.features[c].categorical())
			constant.push_back(m.enc.level_slot(c, one.cat[c][0]));
	for (Eigen::Index slot : map)
		if (slot < 0)
			throw Error(ErrorCode::Internal, "statistics slot has no encoder slot");
	m.add_group(d.train, map, constant, false);
	m.add_group(d.test, map, constant, true);
	for (size_t j = 0; j < numeric.size(); j++) {
		size_t c = numeric[j];
		m.nulls[c] += d.nulls[j];
		m.col_min[c] = std::min(m.col_min[c], d.min[j]);
		m.col_max[c] = std::max(m.col_max[c], d.max[j]);
	}
	// the group's MAE sample rows
	const size_t w = numeric.size() + 1;
	auto sample = [&](const std::vector<double> &rows_, const std::vector<double> &u, size_t n, RowStore &to,
	                  std::vector<double> &to_u) {
		for (size_t r = 0; r < n; r++) {
			const double *row = rows_.data() + r * w;
			for (size_t c = 0; c < nf; c++)
				if (m.spec.features[c].categorical())
					to.cat[c].push_back(one.cat[c][0]);
			for (size_t j = 0; j < numeric.size(); j++)
				to.num[numeric[j]].push_back(row[j]);
			to.y.push_back(row[numeric.size()]);
			to.hash.push_back(0);
			to_u.push_back(u[r]);
		}
	};
	sample(d.sample_train, d.sample_train_u, d.sample_train_rows, m.train_sample, m.train_u);
	sample(d.sample_test, d.sample_test_u, d.sample_test_rows, m.test_sample, m.test_u);
}

void Trainer::note_stats_group(const std::vector<const char *> &levels, const double *state, size_t len,
                               CancelCheck cancel)
{
	Impl &m = *impl_;
	check_cancel(cancel);
	const size_t nf = m.spec.features.size();
	if (!m.count_levels || levels.size() != nf)
		return;
	if (stats::decode(state, len).train.n() == 0)
		return;
	for (size_t c = 0; c < nf; c++)
		if (m.spec.features[c].categorical())
			m.levels.note(c, levels[c] == nullptr ? -1 : m.enc.intern(c, levels[c]));
}

bool Trainer::uses_kmeans_steps() const { return impl_->kmeans_aggregate(); }

std::vector<double> Trainer::kmeans_step_params(std::vector<std::string> *levels, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	if (!m.aggregated || !m.kmeans_aggregate())
		return {};
	if (!m.km)
		m.start_kmeans(cancel);
	if (m.km->done())
		return {};
	*levels = m.km->levels();
	return m.km->params();
}

void Trainer::add_kmeans_step(const double *state, size_t len)
{
	Impl &m = *impl_;
	if (!m.km || m.km->done())
		throw Error(ErrorCode::Internal, "k-means step without a fit to add it to");
	kmeans_step::Sums s; // a NULL state (no rows at all) is empty
	if (state != nullptr)
		s = kmeans_step::decode(state, len);
	if (s.rows_train != m.train.n() || s.rows_test != m.test.n())
		throw Error(ErrorCode::DataException, "the relation changed while k-means was trained",
		            "The relation is scanned once per Lloyd step: the statistics scan saw " +
		                std::to_string(m.train.n() + m.test.n()) + " rows, a Lloyd step " +
		                std::to_string(s.rows_train + s.rows_test) +
		                ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Train on a table (or a materialized view), or SET pg_ml.stats_aggregate = off to read the "
		            "rows once.");
	m.km->add(s, m.spec.progress);
}

std::unique_ptr<Model> Trainer::finish(CancelCheck cancel, const Model *compare)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	result_ = TrainResult(); // finish() runs again after the precise pass
	m.precise_wanted = false;
	m.flush_groups();
	if (m.aggregated) {
		m.trim_samples();
	} else if (m.streaming) {
		// the row reader's samples, in draw order (the metrics add them up in this order)
		m.order_sample(m.train_sample, m.train_u, kSampleRows);
		m.order_sample(m.test_sample, m.test_u, kSampleRows);
		std::vector<std::pair<double, size_t>>().swap(m.train_heap);
		std::vector<std::pair<double, size_t>>().swap(m.test_heap);
	}
	const TrainSpec &spec = m.spec;
	auto model = std::make_unique<Model>();
	model->task = m.task;
	model->algorithm = spec.algorithm;
	model->target = spec.target;
	model->features = spec.features;
	model->hyperparams = m.hp;
	model->preprocess = m.popts;
	model->test_size = spec.test_size;
	model->seed = spec.seed;

	if (m.skipped_null_target > 0 && m.skipped_null_target == rows_read_)
		throw Error(ErrorCode::DataException, "target column \"" + spec.target.name + "\" is NULL in every row",
		            std::to_string(rows_read_) + " rows were read.", "Train on rows with a known target.");
	m.check_magnitudes();

	RegressionMetrics train_sample_metrics, test_sample_metrics;
	std::vector<Value> vals;
	std::vector<double> out(8);
	std::string test_json, train_json;
	RowStore *test_rows = nullptr;

	if (m.class_model) {
		// naive Bayes from the class aggregate: fitted by class_fit, evaluated by ml.eval_stats
		if (!m.class_evaluated)
			throw Error(ErrorCode::Internal, "the class aggregate's model was not evaluated");
		model = std::move(m.class_model);
		const evalstate::Split &tr = m.class_eval.split[0], &te = m.class_eval.split[1];
		// naive Bayes' training log: the mean negative log-likelihood of the training rows
		result_.log.push_back({1, tr.n > 0 ? tr.nll_sum / static_cast<double>(tr.n) : 0.0, NAN, NAN});
		train_json = evalstate::split_json(tr, model->classes, true);
		if (te.n > 0) {
			test_json = evalstate::split_json(te, model->classes, true);
			result_.primary_test = te.confusion.trace() / static_cast<double>(te.n);
		}
		result_.primary_metric = "accuracy";
		result_.rows_train = tr.n;
		result_.rows_test = te.n;
		if (compare != nullptr && m.class_compared && te.n > 0 && compare->task == model->task) {
			const evalstate::Split &prev = m.class_compare_eval.split[1];
			if (prev.n == te.n) {
				result_.previous_metrics_json = evalstate::split_json(prev, model->classes, m.class_compare_eval.shape.proba);
				result_.previous_primary = prev.confusion.trace() / static_cast<double>(prev.n);
				result_.primary_compare_new = result_.primary_test;
				result_.compared = true;
			}
		}
	} else if (m.aggregated && m.kmeans_aggregate()) {
		// k-means through the Lloyd-step aggregate: inertia and rows exact from the last scan,
		// the silhouette on the statistics sample (at most 2000 of its rows)
		if (!m.km || !m.km->done())
			throw Error(ErrorCode::Internal, "k-means fit finished before its Lloyd steps");
		const kmeans_step::Sums &s = m.km->last();
		model->prep = m.km->prep();
		model->estimator = make_kmeans(m.km->centres(), s.counts, static_cast<double>(m.train.n()), m.km_mean, m.km_m2);
		result_.log.insert(result_.log.end(), m.km->log().begin(), m.km->log().end());
		report_phase(spec.progress, "evaluating");
		auto metrics = [&](const RowStore &sample, int64_t rows, double inertia) {
			ClusteringMetrics cl = clustering_metrics(*model->estimator, Impl::scaled_rows(model->prep, m.enc, sample), spec.seed, cancel);
			cl.inertia = inertia;
			cl.rows = rows;
			return cl;
		};
		train_json = metrics(m.train_sample, s.rows_train, s.inertia_train).to_json();
		if (s.rows_test > 0) {
			ClusteringMetrics cl = metrics(m.test_sample, s.rows_test, s.inertia_test);
			test_json = cl.to_json();
			result_.primary_test = cl.silhouette;
			if (compare != nullptr && compare->task == Task::Clustering && compare->estimator) {
				// the deployed model's silhouette on the same sample (in its own scaling); both
				// inertias over every held-out row come from the comparison pass
				m.sample_new = cl;
				m.sample_prev = clustering_metrics(*compare->estimator,
				                                   Impl::scaled_rows(compare->prep, m.enc, m.test_sample), spec.seed, cancel);
				m.sample_new.inertia = m.sample_prev.inertia = 0; // summed by the pass
				m.compare_pass = true;
			}
		}
		result_.primary_metric = "silhouette";
		result_.rows_train = s.rows_train;
		result_.rows_test = s.rows_test;
	} else if (m.streaming) {
		if (m.train.n() == 0)
			throw Error(ErrorCode::DataException, "no rows left to train on",
			            std::to_string(rows_read_) + " rows were read, " + std::to_string(m.skipped_null_target) +
			                " with a NULL target, " + std::to_string(m.dropped_nonfinite) + " with a non-finite value, " +
			                std::to_string(m.test.n()) + " held out for testing.",
			            "Train on more rows, or lower test_size.");
		m.grow_moments();
		model->prep = fit_preprocessor(spec.features, m.popts, m.enc, m.train, m.col_min, m.col_max, m.medians());
		check_cancel(cancel);
		// joint second moments of the features x (through the affine map) and the target
		Eigen::MatrixXd A;
		Eigen::VectorXd c0;
		model->prep.affine(m.enc, A, c0);
		const int ts = m.enc.target_slot();
		auto project = [&](const Moments &mo, Eigen::MatrixXd &Sxx, Eigen::VectorXd &Sxy, double &Syy,
		                   Eigen::VectorXd &mx, double &my) {
			Eigen::MatrixXd C = mo.comoment();
			Sxx = A * C * A.transpose();
			Sxy = A * C.col(ts);
			Syy = C(ts, ts);
			mx = A * mo.mean() + c0;
			my = mo.mean()(ts);
		};
		Eigen::MatrixXd Sxx;
		Eigen::VectorXd Sxy, mx;
		double Syy, my;
		project(m.train, Sxx, Sxy, Syy, mx, my);
		if (!m.incremental && Syy <= 0)
			m.check_constant_target(m.train.n(), my, my);
		// linear_regression without an intercept: the fit is on the raw (uncentered) moments
		const bool intercept = spec.algorithm != Algorithm::LinearRegression || !m.hp.has("fit_intercept") || m.hp.flag("fit_intercept");
		const double syy_centered = Syy; // r2 is about the target's mean whatever the model
		if (!intercept) {
			const double n = static_cast<double>(m.train.n());
			Sxx += n * mx * mx.transpose();
			Sxy += n * my * mx;
			Syy += n * my * my;
		}
		const Eigen::VectorXd &s = model->prep.scale;
		Eigen::MatrixXd Z = Sxx.array() / (s * s.transpose()).array();
		Eigen::VectorXd zy = Sxy.array() / s.array();
		Eigen::VectorXd wz;
		std::optional<GramSolution> solved; // linear_regression (and ridge with alpha 0)
		std::optional<PreciseFit> precise;  // after the precise pass
		LeastSquaresSetup setup;
		if (spec.algorithm == Algorithm::Lasso || spec.algorithm == Algorithm::ElasticNet) {
			// coordinate descent on the Gram form of the standardized problem (sklearn's objective)
			const double n = static_cast<double>(m.train.n());
			double l1_ratio = spec.algorithm == Algorithm::Lasso ? 1.0 : m.hp.num("l1_ratio");
			wz = elastic_net_gram(Z / n, zy / n, m.hp.num("alpha"), l1_ratio, m.hp.integer("max_iter"), m.hp.num("tol"),
			                      cancel, &result_.log, Syy / n);
		} else if (spec.algorithm == Algorithm::Ridge && m.hp.num("alpha") > 0) {
			Z.diagonal().array() += m.hp.num("alpha");
			wz = Z.ldlt().solve(zy);
		} else {
			// minimum-norm least squares on the equilibrated Gram matrix (whatever the scaling):
			// rank, condition number and the columns of a (near) dependence come back with it.
			// A column counts as constant when its spread is rounding noise next to its mean.
			const double n = static_cast<double>(m.train.n());
			Eigen::VectorXd noise_floor = (n * mx.array().square() / s.array().square()) * 1e-26;
			// a full one-hot group sums to 1, the intercept: that dependence is the encoding's
			std::vector<std::vector<int>> groups;
			bool first_group = true;
			for (size_t c = 0; c < model->prep.columns.size(); c++) {
				const FittedColumn &fc = model->prep.columns[c];
				if (!spec.features[c].categorical() || fc.n_features == 0)
					continue;
				if (intercept || !first_group) {
					groups.emplace_back();
					for (int f = 0; f < fc.n_features; f++)
						groups.back().push_back(fc.first_feature + f);
				}
				first_group = false;
			}
			GramSolution gs = solve_gram(Z, zy, &noise_floor, groups);
			if (m.precise_done && m.ptrain) {
				setup = LeastSquaresSetup{A, c0, ts, s, intercept, noise_floor, groups};
				PreciseFit f = fit_least_squares_precise(*m.ptrain, setup);
				if (!f.gs.deficient) {
					gs = f.gs;
					precise = std::move(f);
				}
			}
			wz = gs.w;
			// a one-hot slot without variation is a level every training row has: no warning
			gs.constant.erase(std::remove_if(gs.constant.begin(), gs.constant.end(),
			                                 [&](int f) { return spec.features[model->prep.column_of(f)].categorical(); }),
			                  gs.constant.end());
			solved = std::move(gs);
		}
		Eigen::VectorXd w = precise ? precise->w : Eigen::VectorXd(wz.array() / s.array());
		if (!w.allFinite())
			throw Error(ErrorCode::DataException, "the fit did not produce finite coefficients",
			            "The feature values are too large or too collinear to solve in double precision.",
			            "Rescale the features, or use ridge.");
		model->W = w;
		model->b = Eigen::VectorXd::Constant(1, !intercept ? 0.0 : precise ? precise->b : my - w.dot(mx));
		if (solved) {
			m.note_solve(*solved, w, mx, intercept ? model->b(0) : NAN,
			             std::sqrt(std::max(0.0, syy_centered) / static_cast<double>(m.train.n()) + my * my),
			             model->prep.feature_names, result_, precise ? m.ptrain->unit() : 0x1.0p-53);
			// short of digits from double statistics: read the rows again (precise_moments.hpp)
			m.precise_wanted = !precise && !m.precise_done && !(result_.solve_digits >= kPreciseDigits);
		}
		if (spec.algorithm == Algorithm::LinearRegression && intercept) // coefficient statistics (inference.hpp)
			result_.inference_json = linear_inference(static_cast<double>(m.train.n()), Sxx, Sxy, Syy, mx, w, model->b(0),
			                                          model->prep.feature_names)
			                             .to_json();
		model->has_stats = true;
		model->encoder = m.enc;
		model->stats = precise ? m.ptrain->rounded() : m.train;
		if (precise && m.ptrain->precise()) {
			model->has_precise_stats = true;
			model->stats_mean_lo = m.ptrain->mean_lo();
			model->stats_comoment_lo = m.ptrain->comoment_lo();
		}
		model->col_min = m.col_min;
		model->col_max = m.col_max;
		double sse = precise ? precise->sse : std::max(0.0, Syy - 2 * w.dot(Sxy) + w.dot(Sxx * w));
		if (result_.log.empty()) // closed forms: one entry, the training MSE
			result_.log.push_back({1, sse / static_cast<double>(m.train.n()), NAN});
		for (size_t i = 0; i < m.train_sample.size(); i++) {
			m.row_values(m.train_sample, i, model->features, vals);
			model->predict(vals.data(), out.data());
			train_sample_metrics.add(m.train_sample.y[i], out[0]);
		}
		train_json = regression_json(m.train.n(), sse, syy_centered, train_sample_metrics);
		result_.rows_train = m.train.n();
		result_.rows_test = m.test.n();
		if (m.test.n() > 0) {
			Eigen::MatrixXd Txx;
			Eigen::VectorXd Txy, tx;
			double Tyy, ty;
			project(m.test, Txx, Txy, Tyy, tx, ty);
			double emean = ty - model->b(0) - w.dot(tx);
			double tsse = std::max(0.0, Tyy - 2 * w.dot(Txy) + w.dot(Txx * w)) + static_cast<double>(m.test.n()) * emean * emean;
			if (precise && m.ptest)
				tsse = residual_ss(*m.ptest, setup, precise->w_dd, precise->b_dd);
			for (size_t i = 0; i < m.test_sample.size(); i++) {
				m.row_values(m.test_sample, i, model->features, vals);
				model->predict(vals.data(), out.data());
				test_sample_metrics.add(m.test_sample.y[i], out[0]);
			}
			test_json = regression_json(m.test.n(), tsse, Tyy, test_sample_metrics);
			result_.primary_test = Tyy > 0 ? 1.0 - tsse / Tyy : (tsse <= 0 ? 1.0 : 0.0);
			// the deployed model keeps no statistics of these rows: both are scored on every
			// held-out row by the comparison pass
			m.compare_pass = compare != nullptr && compare->task == model->task;
		}
		result_.primary_metric = "r2";
		test_rows = &m.test_sample;
	} else {
		// rows in memory: classification, in-memory regression, clustering
		const size_t n = m.rows.size();
		m.used_rows = static_cast<int64_t>(n);
		if (n == 0)
			throw Error(ErrorCode::DataException, "no rows left to train on",
			            std::to_string(rows_read_) + " rows were read, " + std::to_string(m.skipped_null_target) +
			                " with a NULL target, " + std::to_string(m.dropped_nonfinite) + " with a non-finite value.",
			            "Train on more rows.");
		const bool classify = m.task == Task::Classification;
		int K = 0;
		if (classify) {
			std::vector<int64_t> label_rows(m.labels.size(), 0);
			for (double y : m.rows.y)
				label_rows[static_cast<size_t>(y)]++;
			std::vector<int> rank = m.order_classes(*model, K, static_cast<int64_t>(n), label_rows);
			for (auto &y : m.rows.y)
				y = rank[static_cast<size_t>(y)];
		} else if (m.task == Task::Regression && m.base == nullptr && !m.incremental) {
			auto mm = std::minmax_element(m.rows.y.begin(), m.rows.y.end());
			m.check_constant_target(static_cast<int64_t>(n), *mm.first, *mm.second);
		}
		// the rows in their canonical order (after the classes are ranked: the tie-break
		// compares the targets)
		m.canonical_order(m.rows);
		std::vector<uint8_t> is_test(n, 0);
		for (size_t i = 0; i < n; i++)
			m.fingerprint += mix64(m.rows.hash[i]);
		if (classify) {
			// stratified split: within each class, the rows with the smallest draws are held out
			std::vector<std::vector<size_t>> by_class(static_cast<size_t>(K));
			for (size_t i = 0; i < n; i++)
				by_class[static_cast<size_t>(m.rows.y[i])].push_back(i);
			for (auto &idx : by_class) {
				if (idx.empty())
					continue; // a class of the model the new rows do not hold (continued training)
				size_t nt = static_cast<size_t>(std::llround(spec.test_size * static_cast<double>(idx.size())));
				if (nt >= idx.size())
					nt = idx.size() - 1;
				if (nt == 0)
					continue;
				// the nt smallest (draw, row) pairs: what a stable sort by draw puts first
				std::vector<std::pair<double, size_t>> d(idx.size());
				for (size_t j = 0; j < idx.size(); j++)
					d[j] = {split_draw(m.rows.hash[idx[j]], spec.seed), idx[j]};
				std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(nt - 1), d.end());
				for (size_t j = 0; j < nt; j++)
					is_test[d[j].second] = 1;
			}
		} else if (spec.test_size > 0) {
			for (size_t i = 0; i < n; i++)
				is_test[i] = is_test_row(m.rows.hash[i], spec.seed, spec.test_size);
		}
		for (size_t i = 0; i < n; i++)
			if (!is_test[i])
				m.note_train_row(m.rows, i);
		RowStore &tr = m.train_chunk, &te = m.test_chunk;
		m.rows.split_into(is_test, tr, te); // a column at a time: no second copy of every row
		if (tr.size() == 0)
			throw Error(ErrorCode::DataException, "no rows left to train on",
			            "All " + std::to_string(n) + " rows were held out for testing.", "Lower test_size.");
		m.add_moments(tr, m.train);
		check_cancel(cancel);
		if (m.base != nullptr)
			model->prep = m.base->prep;
		else
			model->prep = fit_preprocessor(spec.features, m.popts, m.enc, m.train, m.col_min, m.col_max, m.medians());
		// trees and boosting take a missing number as NaN unless median or constant imputation is
		// asked for (continued training keeps the base's way)
		bool imputes = m.popts.defaults.impute != Impute::Mean;
		for (const auto &[name, co] : m.popts.columns)
			imputes = imputes || co.impute != Impute::Mean;
		model->prep.native_missing = m.base != nullptr ? m.base->prep.native_missing
		                                               : algorithm_native_missing(spec.algorithm) && !imputes;
		const int p = model->prep.p();
		{
			// the scaled feature matrix: one column per numeric column and per kept category level
			// (one-hot), next to the rows kept in memory
			const double n_x = static_cast<double>(std::max(tr.size(), te.size()));
			const double bytes = memory::matrix_bytes(n_x, p) + 8.0 * n_x +
			                     static_cast<double>((tr.size() + te.size()) * m.row_bytes());
			check_memory(spec.memory_limit, bytes, "the feature matrix",
			             count_text(n_x) + " rows of " + std::to_string(p) +
			                 " features (a numeric column is one feature, a categorical column one per level).",
			             "max_levels, exclude columns with many distinct values, train on fewer rows");
		}
		auto scaled = [&](const RowStore &s, Eigen::MatrixXd &X, Eigen::VectorXd &y) {
			// a block of rows is transformed into xb (one row after the other), then written
			// into X's columns (column-major: each column's part is contiguous)
			constexpr size_t kRows = 256;
			const size_t pp = static_cast<size_t>(p);
			std::vector<double> xb(pp * kRows);
			X.resize(static_cast<Eigen::Index>(s.size()), p);
			y.resize(static_cast<Eigen::Index>(s.size()));
			for (size_t i0 = 0; i0 < s.size(); i0 += kRows) {
				if (i0 % (kRows * 64) == 0)
					check_cancel(cancel);
				const size_t nb = std::min(kRows, s.size() - i0);
				for (size_t r = 0; r < nb; r++)
					model->prep.transform(m.enc, s, i0 + r, xb.data() + r * pp);
				for (int f = 0; f < p; f++) {
					const double c = model->prep.center(f), sc = model->prep.scale(f);
					double *col = X.col(f).data() + i0;
					for (size_t r = 0; r < nb; r++)
						col[r] = (xb[r * pp + static_cast<size_t>(f)] - c) / sc;
				}
				for (size_t r = 0; r < nb; r++)
					y(static_cast<Eigen::Index>(i0 + r)) = s.y[i0 + r];
			}
		};
		{
			Eigen::MatrixXd X;
			Eigen::VectorXd y;
			scaled(tr, X, y);
			// scaled values the algorithm cannot hold (xgboost's single precision): 22003
			const double limit = algorithm_max_input(spec.algorithm);
			for (Eigen::Index i = 0; i < y.size() && limit < DBL_MAX && m.task == Task::Regression; i++)
				if (std::fabs(y(i)) > limit)
					feature_out_of_range(spec.target.name, y(i),
					                     (std::string(algorithm_name(spec.algorithm)) +
					                      " works in single precision: the value exceeds 3.4e38.")
					                         .c_str(),
					                     true);
			for (int f = 0; f < p && limit < DBL_MAX; f++)
				for (Eigen::Index i = 0; i < X.rows(); i++)
					if (std::fabs(X(i, f)) > limit) {
						size_t c = model->prep.column_of(f);
						double raw = X(i, f) * model->prep.scale(f) + model->prep.center(f);
						feature_out_of_range(spec.features[c].name, raw,
						                     (std::string(algorithm_name(spec.algorithm)) +
						                      " works in single precision: scaled, the value exceeds 3.4e38.")
						                         .c_str());
					}
			if (spec.algorithm == Algorithm::LogisticRegression) {
				std::vector<int> ytr(tr.size());
				for (size_t i = 0; i < tr.size(); i++)
					ytr[i] = static_cast<int>(tr.y[i]);
				LbfgsOptions lo;
				lo.max_iter = m.hp.integer("max_iter");
				lo.tol = m.hp.num("tol");
				{
					// L-BFGS's history of (p + 1) K coefficients, and scores of every row for each class
					const double coef = (static_cast<double>(p) + 1) * std::max(K, 1);
					check_memory(spec.memory_limit,
					             (2.0 * lo.history + 6) * coef * 8 + memory::matrix_bytes(static_cast<double>(tr.size()), K),
					             "logistic_regression",
					             std::to_string(K) + " classes of " + std::to_string(p) + " features, " +
					                 std::to_string(tr.size()) + " training rows.",
					             "the classes or features, train on fewer rows");
				}
				// penalty 'none': maximum likelihood (Newton's method for two classes, as glm; for
				// more, L-BFGS with a vanishing penalty)
				const bool unpenalized = logistic_unpenalized(m.hp);
				LogisticFit fit = unpenalized && K == 2
				                      ? fit_logistic_newton(X, ytr, lo.max_iter, 1e-12, cancel, &result_.log)
				                      : fit_logistic(X, ytr, K, unpenalized ? 1e12 : m.hp.num("C"), lo, cancel,
				                                     &result_.log, spec.progress);
				// fold the scaling into the coefficients: w_x = w_z / s, b_x = b_z - center . w_x
				model->W = fit.W.array().colwise() / model->prep.scale.array();
				model->b = fit.b - model->W.transpose() * model->prep.center;
				if (unpenalized && K == 2) {
					Inference inf = logistic_inference(X, model->prep.center, model->prep.scale, ytr, model->W.col(0),
					                                   model->b(0), model->prep.feature_names);
					inf.iterations = fit.result.iterations;
					inf.converged = fit.result.converged;
					result_.inference_json = inf.to_json();
				}
			} else {
				const AlgorithmDef &def = algorithm_def(spec.algorithm);
				std::vector<int> groups(static_cast<size_t>(p), -1);
				for (size_t c = 0; c < spec.features.size(); c++)
					if (spec.features[c].categorical())
						for (int k = 0; k < model->prep.columns[c].n_features; k++)
							groups[static_cast<size_t>(model->prep.columns[c].first_feature + k)] = static_cast<int>(c);
				FitInput in;
				in.X = &X;
				in.y = m.task == Task::Clustering ? nullptr : &y;
				in.task = m.task;
				in.n_classes = K;
				in.feature_group = &groups;
				in.seed = spec.seed;
				in.native_missing = model->prep.native_missing;
				in.threads = spec.threads;
				in.memory_limit = spec.memory_limit;
				in.cancel = cancel;
				in.log = &result_.log;
				in.progress = spec.progress;
				if (m.base != nullptr) {
					// a copy of the base's estimator (through its own encoding), trained further
					Writer w;
					m.base->estimator->write(w);
					Reader r(w.bytes().data(), w.bytes().size());
					EstimatorShape shape;
					shape.p = p;
					shape.n_classes = K;
					shape.task = m.task;
					std::unique_ptr<Estimator> est = def.read(r, shape);
					est->continue_fit(in, m.hp);
					model->estimator = std::move(est);
				} else {
					model->estimator = def.fit(in, m.hp);
				}
				if (model->estimator->native_missing() != model->prep.native_missing)
					throw Error(ErrorCode::Internal, "the estimator and the preprocessing disagree on missing values");
				if (std::string(model->estimator->importance_kind()) == "not_available")
					model->permutation_importance =
						permutation_importance(*model->estimator, X, in.y, m.task, K, spec.seed, cancel);
			}
		}
		report_phase(spec.progress, "evaluating");
		out.assign(static_cast<size_t>(std::max(K, 1)), 0.0);
		// rows are predicted a block at a time (one call into the estimator per block)
		constexpr size_t kEvalBlock = 1024;
		const size_t nout = static_cast<size_t>(model->n_outputs());
		std::vector<double> xb(static_cast<size_t>(p) * kEvalBlock), ob(nout * kEvalBlock);
		std::vector<int> kb(kEvalBlock);
		auto predict_rows = [&](const RowStore &s, auto &&take) {
			for (size_t i0 = 0; i0 < s.size(); i0 += kEvalBlock) {
				const size_t nb = std::min(kEvalBlock, s.size() - i0);
				for (size_t r = 0; r < nb; r++)
					model->prep.transform(m.enc, s, i0 + r, xb.data() + r * static_cast<size_t>(p));
				model->predict_features_many(xb.data(), nb, ob.data(), kb.data());
				for (size_t r = 0; r < nb; r++)
					take(i0 + r, kb[r], ob.data() + r * nout);
				check_cancel(cancel);
			}
		};
		auto evaluate = [&](const RowStore &s) -> std::string {
			if (classify) {
				ClassificationMetrics cm(model->classes);
				predict_rows(s, [&](size_t i, int pred, const double *o) { cm.add(static_cast<int>(s.y[i]), pred, o); });
				if (&s == &te)
					result_.primary_test = cm.accuracy();
				return cm.to_json();
			}
			if (m.task == Task::Regression) {
				RegressionMetrics rm;
				predict_rows(s, [&](size_t i, int, const double *o) { rm.add(s.y[i], o[0]); });
				if (&s == &te)
					result_.primary_test = rm.r2();
				return rm.to_json();
			}
			Eigen::MatrixXd X;
			Eigen::VectorXd unused;
			scaled(s, X, unused);
			ClusteringMetrics cl = clustering_metrics(*model->estimator, X, spec.seed, cancel);
			if (&s == &te)
				result_.primary_test = cl.silhouette;
			return cl.to_json();
		};
		train_json = evaluate(tr);
		if (te.size() > 0)
			test_json = evaluate(te);
		result_.primary_metric = classify ? "accuracy" : m.task == Task::Regression ? "r2" : "silhouette";
		result_.rows_train = static_cast<int64_t>(tr.size());
		result_.rows_test = static_cast<int64_t>(te.size());
		test_rows = &te;
	}

	// the deployed model on the same held-out rows
	if (compare != nullptr && test_rows != nullptr && test_rows->size() > 0 && compare->task == model->task &&
	    !m.compare_pass) {
		RowStore &te = *test_rows;
		// the old model's inputs must be among this training's columns (checked on the first row:
		// it depends on the columns only); then its predictions a block of rows at a time
		bool ok = m.row_values(te, 0, compare->features, vals);
		const size_t cnf = compare->features.size();
		const size_t cnout = static_cast<size_t>(std::max(compare->n_outputs(), 1));
		auto compare_rows = [&](auto &&take) {
			constexpr size_t kBlock = 1024;
			std::vector<Value> vb(cnf * kBlock);
			std::vector<double> ob(cnout * kBlock);
			std::vector<int> kb(kBlock);
			for (size_t i0 = 0; i0 < te.size(); i0 += kBlock) {
				const size_t nb = std::min(kBlock, te.size() - i0);
				for (size_t r = 0; r < nb; r++) {
					m.row_values(te, i0 + r, compare->features, vals);
					std::copy(vals.begin(), vals.end(), vb.begin() + static_cast<std::ptrdiff_t>(r * cnf));
				}
				compare->predict_batch(vb.data(), nb, ob.data(), kb.data());
				for (size_t r = 0; r < nb; r++)
					take(i0 + r, kb[r], ob.data() + r * cnout);
				check_cancel(cancel);
			}
		};
		if (!ok) {
		} else if (model->task == Task::Clustering) {
			// in its own scaling, on the same rows (its inertia and silhouette as it reports them)
			ClusteringMetrics prev = compare->estimator
			                             ? clustering_metrics(*compare->estimator, Impl::scaled_rows(compare->prep, m.enc, te),
			                                                  spec.seed, cancel)
			                             : ClusteringMetrics();
			result_.previous_metrics_json = prev.to_json();
			result_.previous_primary = prev.silhouette;
			result_.primary_compare_new = result_.primary_test;
		} else if (model->task == Task::Regression) {
			RegressionMetrics prev;
			compare_rows([&](size_t i, int, const double *o) { prev.add(te.y[i], o[0]); });
			result_.previous_metrics_json = prev.to_json();
			result_.previous_primary = prev.r2();
			// the new model on the very same rows
			result_.primary_compare_new = m.streaming ? test_sample_metrics.r2() : result_.primary_test;
		} else {
			ClassificationMetrics prev(model->classes);
			// the old model's classes as the new model's class ids, by label (-1: not a class of
			// the new model); its probabilities are carried over to them (roc_auc, log_loss)
			std::vector<int> to_new(compare->classes.size(), -1);
			for (size_t k = 0; k < compare->classes.size(); k++) {
				auto it = std::find(model->classes.begin(), model->classes.end(), compare->classes[k]);
				if (it != model->classes.end())
					to_new[k] = static_cast<int>(it - model->classes.begin());
			}
			std::vector<double> p(static_cast<size_t>(model->n_classes()));
			compare_rows([&](size_t i, int pred, const double *o) {
				std::fill(p.begin(), p.end(), 0.0);
				for (size_t k = 0; k < to_new.size() && k < cnout; k++)
					if (to_new[k] >= 0)
						p[static_cast<size_t>(to_new[k])] += o[k];
				int mapped = to_new[static_cast<size_t>(pred)];
				prev.add(static_cast<int>(te.y[i]), mapped < 0 ? (static_cast<int>(te.y[i]) + 1) % model->n_classes() : mapped,
				         p.data());
			});
			result_.previous_metrics_json = prev.to_json();
			result_.previous_primary = prev.accuracy();
			result_.primary_compare_new = result_.primary_test;
		}
		result_.compared = ok;
	}

	JsonWriter w;
	w.begin_object();
	w.key("train").raw(train_json);
	if (!test_json.empty())
		w.key("test").raw(test_json);
	w.end_object();
	result_.metrics_json = w.str();
	result_.test_json = test_json;
	m.kept_train_json = train_json;

	JsonWriter r;
	r.begin_object();
	r.key("rows_read").value(static_cast<long long>(rows_read_));
	r.key("rows_skipped_null_target").value(static_cast<long long>(m.skipped_null_target));
	r.key("rows_dropped_nonfinite").value(static_cast<long long>(m.dropped_nonfinite));
	if (m.popts.dedupe)
		r.key("rows_duplicate_removed").value(static_cast<long long>(m.duplicates));
	r.key("rows_train").value(static_cast<long long>(result_.rows_train));
	r.key("rows_test").value(static_cast<long long>(result_.rows_test));
	r.key("split").value(m.task == Task::Classification ? "stratified" : "random");
	r.key("reader").value(m.aggregated ? "aggregate" : "cursor");
	if (m.km) {
		r.key("kmeans_init_rows").value(static_cast<long long>(m.train_sample.size()));
		r.key("kmeans_scans").value(m.km->scans());
		r.key("kmeans_converged").value(m.km->converged());
	}
	// NULL numbers of the training rows per column: imputed, or (trees, boosting) kept as missing
	for (int native = 0; native < 2; native++) {
		if (native == 1 && !model->prep.native_missing)
			break;
		r.key(native ? "missing_native" : "imputed").begin_object();
		for (size_t c = 0; c < spec.features.size(); c++)
			if (!spec.features[c].categorical() && m.nulls[c] > 0 && (native == 1) == model->prep.native_missing)
				r.key(spec.features[c].name).value(static_cast<long long>(m.nulls[c]));
		r.end_object();
	}
	r.key("features").value(model->prep.p());
	if (result_.solve_rank >= 0) {
		r.key("rank").value(static_cast<long long>(result_.solve_rank));
		r.key("condition_number").value(result_.solve_condition);
		r.key("digits").value(result_.solve_digits);
		r.key("precision").value(result_.solve_precise ? "double-double" : "double");
		if (!result_.solve_collinear.empty()) {
			r.key("collinear").begin_array();
			for (const auto &c : result_.solve_collinear)
				r.value(c);
			r.end_array();
		}
		if (!result_.solve_constant.empty()) {
			r.key("constant").begin_array();
			for (const auto &c : result_.solve_constant)
				r.value(c);
			r.end_array();
		}
	}

	if (m.popts.drop_nulls)
		r.key("rows_dropped_null").value(static_cast<long long>(m.dropped_null));
	if (!result_.inference_json.empty())
		r.key("inference").raw(result_.inference_json);
	if (!spec.algorithm_choice.empty())
		r.key("algorithm_choice").value(spec.algorithm_choice);
	if (m.incremental) {
		r.key("rows_before").value(static_cast<long long>(m.base_rows));
		r.key("rows_added").value(static_cast<long long>(result_.rows_train - m.base_rows));
	}
	// the model's size (gradient_boosting: rounds and trees), and what continued training added
	if (model->estimator) {
		std::vector<std::pair<std::string, long long>> before;
		if (m.base != nullptr && m.base->estimator)
			before = m.base->estimator->report_counts();
		for (const auto &[key, v] : model->estimator->report_counts()) {
			r.key(key).value(v);
			for (const auto &[bkey, bv] : before)
				if (bkey == key)
					r.key(key + "_added").value(v - bv);
		}
	}
	r.end_object();
	result_.report_json = r.str();
	result_.fingerprint = hex64(m.fingerprint ^ mix64(static_cast<uint64_t>(m.used_rows)));
	return model;
}

// ---------------------------------------------------------------- naive Bayes through aggregates
//
// The glue runs ml.train_stats grouped by the categorical features, the target and the split
// (which it knows from the stratified cut of each class, stratified_cut), hands each group
// to add_class_group, fits with class_fit (the per class statistics naive Bayes keeps are
// derived from the groups' moments through the preprocessing's affine map), evaluates the
// fitted model with ml.eval_stats and hands its state to add_eval_state; finish() then
// writes the metrics.

bool Trainer::uses_class_aggregate() const
{
	const Impl &m = *impl_;
	if (m.streaming || m.spec.algorithm != Algorithm::NaiveBayes || m.task != Task::Classification ||
	    m.popts.dedupe || m.popts.drop_nulls || rows_read_ > 0 || !m.class_groups.empty())
		return false;
	for (size_t c = 0; c < m.spec.features.size(); c++)
		if (m.wants_median(c))
			return false;
	return m.base == nullptr || m.base->algorithm == Algorithm::NaiveBayes;
}

std::vector<double> Trainer::class_stats_params() const
{
	const Impl &m = *impl_;
	stats::Params p;
	p.nfeat = static_cast<int>(m.spec.features.size());
	p.has_target = true;
	p.target_categorical = m.spec.target.categorical();
	p.seed = m.spec.seed;
	p.test_size = 0; // the split is a GROUP BY key
	p.drop_nonfinite = m.popts.drop_nonfinite;
	p.sample_k = 0;
	p.block = kAggBlockRows;
	for (const ColumnInfo &c : m.spec.features)
		p.categorical.push_back(c.categorical() ? 1 : 0);
	return p.encode();
}

int stratified_cut(double test_size, int64_t below, const std::vector<std::pair<double, int64_t>> &band,
                   int64_t above, double hi, double *cut)
{
	int64_t n = below + above;
	for (const auto &e : band)
		n += e.second;
	if (n < 1 || below < 0 || above < 0)
		throw Error(ErrorCode::Internal, "a class without rows has no split");
	// as the row reader: the llround(test_size * n) rows with the smallest draws are held out,
	// at least one row stays for training
	int64_t nt = std::llround(test_size * static_cast<double>(n));
	if (nt >= n)
		nt = n - 1;
	if (nt < below)
		return -1;
	int64_t c = below;
	for (const auto &[draw, rows] : band) {
		if (c == nt) {
			*cut = draw; // held out: draw < cut
			return 1;
		}
		if (nt < c + rows)
			return 0; // equal draws (duplicate rows) on both sides of the cut
		c += rows;
	}
	if (c == nt) {
		*cut = hi;
		return 1;
	}
	return -1;
}

void Trainer::add_class_group(const std::vector<const char *> &levels, const char *label, double label_num, int split,
                              const double *state, size_t len, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	const size_t nf = m.spec.features.size();
	if (m.streaming || levels.size() != nf || m.class_model)
		throw Error(ErrorCode::Internal, "statistics group does not match the training columns");
	std::vector<size_t> numeric;
	stats::Decoded d = m.absorb_group(state, len, !m.spec.target.categorical(), numeric);
	rows_read_ += d.rows_in;
	const int64_t rows = d.train.n() + d.test.n();
	if (rows == 0)
		return;
	if ((split != 0 && split != 1) || d.test.n() != 0 || (m.spec.target.categorical() && label == nullptr))
		throw Error(ErrorCode::Internal, "statistics group has rows but no class or split");
	m.used_rows += rows;
	Impl::ClassGroup g;
	g.split = split;
	g.label = m.labels.intern(m.spec.target.categorical() ? std::string(label)
	                                                      : numeric_label(m.spec.target.type_class, label_num));
	g.cats.assign(nf, -1);
	for (size_t c = 0; c < nf; c++)
		if (m.spec.features[c].categorical() && levels[c] != nullptr)
			g.cats[c] = m.enc.intern(c, levels[c]);
	if (split == 0) {
		if (m.count_levels)
			for (size_t c = 0; c < nf; c++)
				if (m.spec.features[c].categorical())
					m.levels.note(c, g.cats[c]);
		m.class_train += rows;
		// the training rows' slots and moments, as add_moments would give them
		RowStore one;
		one.reset(m.spec.features);
		for (size_t c = 0; c < nf; c++) {
			if (m.spec.features[c].categorical())
				one.cat[c].push_back(g.cats[c]);
			else
				one.num[c].push_back(0.0);
		}
		for (size_t j = 0; j < numeric.size(); j++)
			if (d.indicator[j] >= 0)
				one.num[numeric[j]][0] = NAN;
		one.y.push_back(0);
		one.hash.push_back(0);
		m.enc.allocate(one, 0, 1);
		// state slot -> encoder slot (-1: the target's slot; a numeric target is constant within
		// the group), merged with the other groups' later (flush_groups)
		std::vector<Eigen::Index> map(static_cast<size_t>(d.shape.q), -1);
		for (size_t j = 0; j < numeric.size(); j++) {
			map[j] = m.enc.value_slot(numeric[j]);
			if (d.indicator[j] >= 0)
				map[static_cast<size_t>(d.indicator[j])] = m.enc.missing_slot(numeric[j]);
		}
		std::vector<Eigen::Index> ones;
		for (size_t c = 0; c < nf; c++)
			if (m.spec.features[c].categorical())
				ones.push_back(m.enc.level_slot(c, g.cats[c]));
		m.add_group(d.train, map, ones, false);
		for (size_t j = 0; j < numeric.size(); j++) {
			size_t c = numeric[j];
			m.nulls[c] += d.nulls[j];
			m.col_min[c] = std::min(m.col_min[c], d.min[j]);
			m.col_max[c] = std::max(m.col_max[c], d.max[j]);
		}
	} else {
		m.class_test += rows;
	}
	g.d = std::move(d);
	m.class_groups.push_back(std::move(g));
}

std::vector<uint8_t> Trainer::class_fit(CancelCheck cancel)
{
	Impl &m = *impl_;
	const TrainSpec &spec = m.spec;
	if (!m.aggregated || m.class_model)
		throw Error(ErrorCode::Internal, "class_fit without statistics groups");
	m.cancel = cancel;
	m.flush_groups(); // queued groups first: their extremes are checked below
	m.check_magnitudes();
	if (m.skipped_null_target > 0 && m.skipped_null_target == rows_read_)
		throw Error(ErrorCode::DataException, "target column \"" + spec.target.name + "\" is NULL in every row",
		            std::to_string(rows_read_) + " rows were read.", "Train on rows with a known target.");
	if (m.used_rows == 0)
		throw Error(ErrorCode::DataException, "no rows left to train on",
		            std::to_string(rows_read_) + " rows were read, " + std::to_string(m.skipped_null_target) +
		                " with a NULL target, " + std::to_string(m.dropped_nonfinite) + " with a non-finite value.",
		            "Train on more rows.");
	auto model = std::make_unique<Model>();
	model->task = m.task;
	model->algorithm = spec.algorithm;
	model->target = spec.target;
	model->features = spec.features;
	model->hyperparams = m.hp;
	model->preprocess = m.popts;
	model->test_size = spec.test_size;
	model->seed = spec.seed;
	int K = 0;
	std::vector<int64_t> label_rows(m.labels.size(), 0);
	for (const Impl::ClassGroup &g : m.class_groups)
		label_rows[static_cast<size_t>(g.label)] += g.d.train.n() + g.d.test.n();
	std::vector<int> rank = m.order_classes(*model, K, m.class_train + m.class_test, label_rows);
	if (m.class_train == 0)
		throw Error(ErrorCode::DataException, "no rows left to train on",
		            "All " + std::to_string(m.used_rows) + " rows were held out for testing.", "Lower test_size.");
	check_cancel(cancel);
	model->prep = m.base != nullptr ? m.base->prep
	                                : fit_preprocessor(spec.features, m.popts, m.enc, m.train, m.col_min, m.col_max,
	                                                   m.medians());
	model->prep.native_missing = false;
	const Preprocessor &pp = model->prep;
	const int p = pp.p();
	std::vector<int> groups(static_cast<size_t>(p), -1);
	std::vector<std::vector<int>> group_feats(spec.features.size());
	for (size_t c = 0; c < spec.features.size(); c++)
		if (spec.features[c].categorical())
			for (int k = 0; k < pp.columns[c].n_features; k++) {
				groups[static_cast<size_t>(pp.columns[c].first_feature + k)] = static_cast<int>(c);
				group_feats[c].push_back(pp.columns[c].first_feature + k);
			}
	// per class statistics of the scaled features z = (x - center) / scale, group by group
	Eigen::VectorXd count = Eigen::VectorXd::Zero(K);
	Eigen::MatrixXd mean = Eigen::MatrixXd::Zero(K, p), m2 = Eigen::MatrixXd::Zero(K, p),
	                level = Eigen::MatrixXd::Zero(K, p);
	std::vector<double> z(static_cast<size_t>(p));
	size_t j = 0;
	for (const Impl::ClassGroup &g : m.class_groups) {
		if (g.split != 0)
			continue;
		const int k = rank[static_cast<size_t>(g.label)];
		const double nb = static_cast<double>(g.d.train.n()), na = count(k), nt = na + nb;
		const Eigen::VectorXd &mu = g.d.train.mean();
		const Eigen::MatrixXd C = g.d.train.comoment();
		std::fill(z.begin(), z.end(), 0.0);
		j = 0;
		for (size_t c = 0; c < spec.features.size(); c++) {
			const FittedColumn &fc = pp.columns[c];
			if (spec.features[c].categorical()) {
				int f = -1;
				if (g.cats[c] >= 0)
					f = pp.level_feature(c, m.enc.dictionary(c).name(g.cats[c]));
				else
					f = fc.null_feature;
				if (f >= 0)
					z[static_cast<size_t>(f)] = (1.0 - pp.center(f)) / pp.scale(f);
				continue;
			}
			// x = value + impute_value * indicator (the value slot is 0 where NULL)
			const Eigen::Index v = static_cast<Eigen::Index>(j), ind = g.d.indicator[j];
			double mx = mu(v), M2 = C(v, v);
			if (ind >= 0) {
				const double iv = fc.impute_value;
				mx += iv * mu(ind);
				M2 += 2 * iv * C(v, ind) + iv * iv * C(ind, ind);
			}
			j++;
			const int f = fc.first_feature;
			const double mz = (mx - pp.center(f)) / pp.scale(f), m2z = std::max(0.0, M2) / (pp.scale(f) * pp.scale(f));
			if (na == 0) {
				mean(k, f) = mz;
				m2(k, f) = m2z;
			} else {
				const double delta = mz - mean(k, f);
				mean(k, f) += delta * nb / nt;
				m2(k, f) += m2z + delta * delta * na * nb / nt;
			}
		}
		for (size_t c = 0; c < spec.features.size(); c++) {
			if (group_feats[c].empty())
				continue;
			const int a = naive_bayes_active_level(group_feats[c], z.data());
			if (a >= 0)
				level(k, group_feats[c][static_cast<size_t>(a)]) += nb;
		}
		count(k) = nt;
	}
	check_cancel(cancel);
	if (m.base != nullptr) {
		// a copy of the base's estimator (through its own encoding), with the new rows added
		Writer w;
		m.base->estimator->write(w);
		Reader r(w.bytes().data(), w.bytes().size());
		EstimatorShape shape;
		shape.p = p;
		shape.n_classes = K;
		shape.task = m.task;
		std::unique_ptr<Estimator> est = algorithm_def(spec.algorithm).read(r, shape);
		naive_bayes_add_stats(*est, count, mean, m2, level);
		model->estimator = std::move(est);
	} else {
		model->estimator = naive_bayes_from_stats(p, K, groups, m.hp, count, mean, m2, level);
	}
	m.class_model = std::move(model);
	return m.class_model->serialize();
}

std::vector<std::string> Trainer::class_names() const
{
	const Impl &m = *impl_;
	if (!m.class_model)
		throw Error(ErrorCode::Internal, "class_names before class_fit");
	return m.class_model->classes;
}

std::vector<double> Trainer::eval_params() const
{
	evalstate::Params p;
	p.sample_k = kAggSampleRows;
	return p.encode();
}

bool Trainer::needs_precise_pass() const { return impl_->precise_wanted && !impl_->precise_done; }

void Trainer::add_precise_batch(const Batch &batch, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	if (!needs_precise_pass() || batch.nfeatures != m.spec.features.size())
		throw Error(ErrorCode::Internal, "precise batch without a precise pass");
	const Eigen::Index q = m.enc.dim();
	if (!m.ptrain) {
		const double bytes = 4 * memory::moments_bytes(static_cast<double>(q)) + m.block_rows() * q * 16.0;
		check_memory(m.spec.memory_limit, bytes, "the precise statistics of the encoded features",
		             "An ill-conditioned least-squares fit reads the rows again into double-double co-moments: four " +
		                 count_text(static_cast<double>(q)) + " x " + count_text(static_cast<double>(q)) + " matrices.",
		             "max_levels, exclude columns with many distinct values");
		m.ptrain = std::make_unique<PreciseMoments>(q);
		m.ptest = std::make_unique<PreciseMoments>(q);
		if (m.base_precise) {
			PreciseMoments b = *m.base_precise;
			b.grow(q);
			m.ptrain->merge(b);
		}
	}
	// the rows as the read took them, without counting them again
	const int64_t skipped = m.skipped_null_target, dropped = m.dropped_nonfinite, dups = m.duplicates;
	const int64_t dropped_null = m.dropped_null;
	std::swap(m.seen_rows, m.precise_seen);
	m.ingest(batch);
	std::swap(m.seen_rows, m.precise_seen);
	m.skipped_null_target = skipped;
	m.dropped_nonfinite = dropped;
	m.duplicates = dups;
	m.dropped_null = dropped_null;
	m.train_chunk.clear();
	m.test_chunk.clear();
	for (size_t i = 0; i < m.chunk.size(); i++)
		(is_test_row(m.chunk.hash[i], m.spec.seed, m.spec.test_size) ? m.test_chunk : m.train_chunk).append_from(m.chunk, i);
	for (auto [rows, into] : {std::pair{&m.train_chunk, m.ptrain.get()}, std::pair{&m.test_chunk, m.ptest.get()}}) {
		if (rows->size() == 0)
			continue;
		m.enc.allocate(*rows, 0, rows->size());
		if (m.enc.dim() != q)
			throw Error(ErrorCode::DataException, "the relation changed while it was read again",
			            "The precise pass met a category level or a NULL the first read did not.",
			            "Retrain from a table (or a materialized view).");
		const size_t step = static_cast<size_t>(m.block_rows());
		for (size_t b = 0; b < rows->size(); b += step) {
			check_cancel(cancel);
			m.enc.encode(*rows, b, std::min(rows->size(), b + step), m.block);
			into->add_block(m.block);
		}
	}
}

void Trainer::end_precise_pass()
{
	Impl &m = *impl_;
	if (!needs_precise_pass())
		throw Error(ErrorCode::Internal, "precise pass ended twice");
	m.precise_done = true;
	if (!m.ptrain) { // no rows at all: nothing was read
		m.ptrain = std::make_unique<PreciseMoments>(m.enc.dim());
		m.ptest = std::make_unique<PreciseMoments>(m.enc.dim());
	}
	if (m.ptrain->n() != m.train.n() || m.ptest->n() != m.test.n())
		throw Error(ErrorCode::DataException, "the relation changed while it was read again",
		            "The first read trained on " + std::to_string(m.train.n()) + " rows and held out " +
		                std::to_string(m.test.n()) + "; the precise pass read " + std::to_string(m.ptrain->n()) + " and " +
		                std::to_string(m.ptest->n()) + ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Retrain from a table (or a materialized view).");
}

bool Trainer::needs_compare_pass() const { return impl_->compare_pass && !impl_->compare_pass_done; }

void Trainer::add_compare_batch(const Batch &batch, const Model &fresh, const Model &compare, CancelCheck cancel)
{
	Impl &m = *impl_;
	m.cancel = cancel;
	check_cancel(cancel);
	if (!m.compare_pass || batch.nfeatures != m.spec.features.size())
		throw Error(ErrorCode::Internal, "comparison batch without a comparison pass");
	// the rows as the read took them (NULL targets, non-finite and duplicate rows skipped),
	// without counting them again
	const int64_t skipped = m.skipped_null_target, dropped = m.dropped_nonfinite, dups = m.duplicates;
	const int64_t dropped_null = m.dropped_null;
	std::swap(m.seen_rows, m.pass_seen);
	m.ingest(batch);
	std::swap(m.seen_rows, m.pass_seen);
	m.skipped_null_target = skipped;
	m.dropped_nonfinite = dropped;
	m.duplicates = dups;
	m.dropped_null = dropped_null;
	const RowStore &c = m.chunk;
	m.pass_out.assign(static_cast<size_t>(std::max({fresh.n_outputs(), compare.n_outputs(), 1})), 0.0);
	for (size_t i = 0; i < c.size(); i++) {
		if (!is_test_row(c.hash[i], m.spec.seed, m.spec.test_size))
			continue;
		m.pass_rows++;
		for (const Model *mod : {&fresh, &compare}) {
			if (!m.row_values(c, i, mod->features, m.pass_vals))
				throw Error(ErrorCode::Internal, "the deployed model's columns are not among the training columns");
			mod->predict(m.pass_vals.data(), m.pass_out.data()); // regression: the value; k-means: the distance
			const bool is_new = mod == &fresh;
			if (m.task == Task::Clustering)
				(is_new ? m.sample_new : m.sample_prev).inertia += m.pass_out[0] * m.pass_out[0];
			else
				(is_new ? m.pass_new : m.pass_prev).add(c.y[i], m.pass_out[0]);
		}
	}
}

void Trainer::end_compare_pass()
{
	Impl &m = *impl_;
	if (!m.compare_pass || m.compare_pass_done)
		throw Error(ErrorCode::Internal, "comparison pass ended twice");
	m.compare_pass_done = true;
	if (m.pass_rows != result_.rows_test)
		throw Error(ErrorCode::DataException, "the relation changed while the versions were compared",
		            "Training held out " + std::to_string(result_.rows_test) + " rows, the comparison read " +
		                std::to_string(m.pass_rows) + ". A view whose rows depend on a volatile function gives other rows each time.",
		            "Retrain from a table (or a materialized view).");
	std::string prev_json;
	if (m.task == Task::Clustering) {
		m.sample_new.rows = m.sample_prev.rows = m.pass_rows;
		result_.test_json = m.sample_new.to_json();
		prev_json = m.sample_prev.to_json();
		result_.primary_test = m.sample_new.silhouette;
		result_.previous_primary = m.sample_prev.silhouette;
	} else {
		result_.test_json = m.pass_new.to_json();
		prev_json = m.pass_prev.to_json();
		result_.primary_test = m.pass_new.r2();
		result_.previous_primary = m.pass_prev.r2();
	}
	result_.primary_compare_new = result_.primary_test;
	result_.previous_metrics_json = prev_json;
	result_.compared = true;
	JsonWriter w;
	w.begin_object();
	w.key("train").raw(m.kept_train_json);
	w.key("test").raw(result_.test_json);
	w.end_object();
	result_.metrics_json = w.str();
}

void Trainer::add_eval_state(const double *state, size_t len, bool of_compare)
{
	Impl &m = *impl_;
	if (!m.class_model)
		throw Error(ErrorCode::Internal, "evaluation before class_fit");
	evalstate::Decoded d = evalstate::decode(state, len);
	if (d.shape.K != m.class_model->n_classes())
		throw Error(ErrorCode::Internal, "evaluation state has another number of classes");
	if (!of_compare) {
		// the evaluation must have seen exactly the rows the statistics did
		if (d.split[0].n != m.class_train || d.split[1].n != m.class_test || d.unknown_label != 0 || !d.shape.proba)
			throw Error(ErrorCode::Internal, "the evaluating query saw other rows than the statistics query",
			            std::to_string(d.split[0].n) + " / " + std::to_string(d.split[1].n) + " rows against " +
			                std::to_string(m.class_train) + " / " + std::to_string(m.class_test) + ".");
		m.class_eval = std::move(d);
		m.class_evaluated = true;
	} else {
		m.class_compare_eval = std::move(d);
		m.class_compared = true;
	}
}

// ---------------------------------------------------------------- Evaluator

Evaluator::Evaluator(const Model &model) : model_(model)
{
	if (model.task == Task::Classification)
		cls_ = std::make_unique<ClassificationMetrics>(model.classes);
	else if (model.task == Task::Regression)
		reg_ = std::make_unique<RegressionMetrics>();
	values_.resize(model.features.size());
	out_.resize(static_cast<size_t>(std::max(1, model.n_outputs())));
}

Evaluator::~Evaluator() = default;

void Evaluator::add_batch(const Batch &batch, CancelCheck cancel)
{
	check_cancel(cancel);
	const bool clustering = model_.task == Task::Clustering;
	if (batch.nfeatures != model_.features.size() || (batch.target == nullptr) != clustering)
		throw Error(ErrorCode::Internal, "batch does not match the model's columns");
	static const ColumnData no_target;
	const ColumnData &t = clustering ? no_target : *batch.target;
	for (size_t i = 0; i < batch.nrows; i++) {
		if (!clustering && t.isnull[i]) {
			skipped_null_target_++;
			continue;
		}
		for (size_t c = 0; c < model_.features.size(); c++) {
			const ColumnData &col = batch.features[c];
			Value &v = values_[c];
			v.isnull = col.isnull[i];
			if (v.isnull)
				continue;
			if (model_.features[c].categorical()) {
				v.str = col.str[i];
				v.len = std::strlen(v.str);
			} else {
				v.num = col.num[i];
			}
		}
		if (clustering) {
			model_.predict(values_.data(), out_.data(), &unseen_);
			inertia_ += out_[0] * out_[0];
			rows_++;
		} else if (cls_) {
			std::string label = model_.target.categorical() ? std::string(t.str[i])
			                                                : numeric_label(model_.target.type_class, t.num[i]);
			auto it = std::find(model_.classes.begin(), model_.classes.end(), label);
			if (it == model_.classes.end()) {
				unknown_labels_++;
				continue;
			}
			int pred = model_.predict(values_.data(), out_.data(), &unseen_);
			cls_->add(static_cast<int>(it - model_.classes.begin()), pred, out_.data());
		} else {
			if (!std::isfinite(t.num[i]))
				throw Error(ErrorCode::DataException, "target column \"" + model_.target.name + "\" contains " +
				                                          (std::isnan(t.num[i]) ? "NaN" : "Infinity"));
			model_.predict(values_.data(), out_.data(), &unseen_);
			reg_->add(t.num[i], out_[0]);
		}
	}
}

std::string Evaluator::metrics_json() const
{
	if (model_.task == Task::Clustering) {
		JsonWriter c;
		c.begin_object();
		c.key("inertia").value(inertia_);
		c.key("rows").value(static_cast<long long>(rows_));
		c.key("unseen_levels").value(static_cast<long long>(unseen_));
		c.end_object();
		return c.str();
	}
	std::string base = cls_ ? cls_->to_json() : reg_->to_json();
	JsonWriter w;
	w.begin_object();
	w.key("skipped_null_target").value(static_cast<long long>(skipped_null_target_));
	if (cls_)
		w.key("unknown_labels").value(static_cast<long long>(unknown_labels_));
	w.key("unseen_levels").value(static_cast<long long>(unseen_));
	w.end_object();
	// splice the counts into the metrics object
	std::string extra = w.str();
	if (base.size() >= 2 && base.back() == '}' && extra.size() > 2)
		return base.substr(0, base.size() - 1) + (base.size() > 2 ? "," : "") + extra.substr(1);
	return base;
}

double Evaluator::primary() const
{
	if (model_.task == Task::Clustering)
		return rows_ > 0 ? -inertia_ / static_cast<double>(rows_) : NAN;
	if (cls_)
		return cls_->count() > 0 ? cls_->accuracy() : NAN;
	return reg_->count() > 0 ? reg_->r2() : NAN;
}

} // namespace pgml
