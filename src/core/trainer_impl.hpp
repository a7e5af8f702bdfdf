// pg_ml core, private to the trainer: the state of one training run (Trainer::Impl) and the
// training routes that turn it into a model.
//
// Rows reach a run by one of four routes, each in its own file behind one interface (Route):
//  - trainer_moments.cpp: the linear family from the moments, streamed from the row reader
//    (add_batch) or from the statistics aggregate (add_stats_group); the fit is
//    models/linear.hpp's;
//  - trainer_rows.cpp: the in-memory algorithms, from every row kept in memory;
//  - trainer_classes.cpp: naive Bayes through the class aggregate (add_class_group, class_fit);
//  - trainer_kmeans.cpp: k-means through the statistics aggregate and the Lloyd-step aggregate.
// trainer.cpp reads the rows (ingest) and holds what the routes share (the checks, the
// classes' order, the samples' order); the moments' bookkeeping, which the class and k-means
// routes use too, is trainer_moments.cpp's. Trainer::finish dispatches to the route, then
// compares the new model with the deployed one on the held-out rows and writes the report.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "precise_moments.hpp"
#include "eval_state.hpp"
#include "kmeans_step.hpp"
#include "logit_step.hpp"
#include "monitor.hpp"
#include "moments.hpp"
#include "preprocess.hpp"
#include "stats_state.hpp"
#include "trainer.hpp"

namespace pgml {

constexpr size_t kSampleRows = 200000; // rows kept per split for metrics that need rows (streaming algorithms)
constexpr int kAggSampleRows = 10000;  // the same through the statistics aggregate (bounded state size)
constexpr int kAggBlockRows = 256;     // rows the aggregate folds into its moments at a time
constexpr Eigen::Index kBlockCells = 1 << 22;
constexpr Eigen::Index kDirectMergeSlots = 64; // statistics groups of at most this many slots are merged one by one

extern const char *const kSquareOverflows;

// Inertia (sum of squared distances to the assigned centre) and the mean silhouette of at
// most 2000 rows drawn with the seed (O(s^2 p)).
struct ClusteringMetrics {
	double inertia = 0;
	double silhouette = NAN;
	int64_t rows = 0;
	int64_t silhouette_rows = 0;
	std::string to_json() const;
};

ClusteringMetrics clustering_metrics(const Estimator &est, const Eigen::MatrixXd &Z, uint64_t seed, CancelCheck cancel);

struct TrainRun;

// What a route's finish gives Trainer::finish: the fitted model and its metrics.
struct RouteFit {
	std::unique_ptr<Model> model;
	std::string train_json, test_json; // test_json empty without held-out rows
	// the held-out rows on which finish() scores the deployed model (nullptr: none, or the
	// route compares the versions itself, or the comparison pass does)
	const RowStore *test_rows = nullptr;
};

// A training route's last step, the interface every route has: fits the model from what the
// run gathered and evaluates it; sets res's log, rows_train / rows_test, primary_metric and
// primary_test (and what else the route knows: the solve's facts, warnings, inference, a
// comparison it makes itself). rows_read: the rows the run read. TrainRun::route() picks the
// route the rows came by.
using Route = RouteFit (*)(TrainRun &run, int64_t rows_read, const Model *compare, TrainResult &res);

// The state of one training run (what Trainer::Impl is).
struct TrainRun {
	TrainSpec spec;
	Task task = Task::Regression;
	Params hp;
	PreprocessOptions popts;
	bool streaming = false;
	bool incremental = false;

	Encoder enc;
	LevelCounter levels;          // distinct levels of the training rows per categorical column
	bool count_levels = true;     // false when continued training keeps the base's preprocessing
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
	int64_t dropped_null = 0;   // rows with a NULL feature, preprocess {"nulls": "drop"}
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
	bool aggregated = false;             // fed by add_stats_group
	std::vector<double> train_u, test_u; // sample_draw of the sample rows
	// naive Bayes through the class aggregate (add_class_group, class_fit, add_eval_state)
	struct ClassGroup {
		int label = 0;
		int split = 0;             // 0 train, 1 test
		std::vector<int32_t> cats; // per feature: level id (categorical), -1 for NULL
		stats::Decoded d;
	};
	std::vector<ClassGroup> class_groups;
	std::unique_ptr<Model> class_model; // fitted by class_fit, handed out by finish
	int64_t class_train = 0, class_test = 0;
	bool class_evaluated = false, class_compared = false;
	// binary logistic regression through the Newton-step aggregate (logit_step.hpp): the
	// model with its preprocessing and classes (class_prepare), the fit
	std::unique_ptr<Model> logit_model;
	std::unique_ptr<logit_step::Fit> logit;
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

	// ---- trainer.cpp: reading rows, the checks and the classes every route shares
	void init_common();
	bool wants_median(size_t c) const;
	[[noreturn]] void nonfinite(const std::string &col, double v, bool is_target) const;
	void check_magnitudes() const;
	void ingest(const Batch &batch);
	void ingest_again(const Batch &batch, std::unordered_set<uint64_t> &seen);
	void note_train_row(const RowStore &s, size_t i);
	// Where a row goes by the per-row rule (regression and clustering, the streaming routes):
	// 0 training, 1 held out, 2 left out (cross-validation: the split's test rows, TrainSpec::cv_folds).
	int row_role(uint64_t hash) const;
	size_t row_bytes() const;
	std::vector<double> medians() const;
	int compare_values(const RowStore &s, size_t a, size_t b) const;
	void order_sample(RowStore &s, std::vector<double> &u, size_t cap) const;
	void trim_samples();
	static Eigen::MatrixXd scaled_rows(const Preprocessor &prep, const Encoder &enc, const RowStore &s);
	bool label_less(int a, int b) const;
	void check_new_classes(const std::vector<int64_t> &label_rows) const;
	static std::string quoted_label(const std::string &label);
	static constexpr int kMaxNumberClasses = 100;
	static constexpr int64_t kMinRowsAllDistinct = 10;
	void check_class_count(int K, int64_t nrows) const;
	void check_constant_target(int64_t n, double lo, double hi) const;
	std::vector<int> order_classes(Model &model, int &K, int64_t nrows, const std::vector<int64_t> &label_rows) const;
	bool row_values(const RowStore &s, size_t i, const std::vector<ColumnInfo> &cols, std::vector<Value> &vals) const;
	std::unique_ptr<Model> new_model() const;
	std::unique_ptr<Estimator> copy_base_estimator(int p, int K) const;
	[[noreturn]] void no_rows_left(int64_t rows_read, bool with_test) const;
	// the route finish() takes (the one the rows came by)
	Route route() const;
	// the deployed model `compare` on the held-out rows te, next to the new model's test metrics
	void compare_held_out(const Model &model, const Model &compare, const RowStore &te, TrainResult &res) const;
	std::string report_json(const Model &model, int64_t rows_read, const TrainResult &res) const;

	// ---- trainer_moments.cpp: the moments of the encoded rows, and the statistics groups
	stats::Decoded absorb_group(const double *state, size_t len, bool has_target, std::vector<size_t> &numeric);
	Eigen::Index block_rows() const;
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
	void add_group(const Moments &from, const std::vector<Eigen::Index> &slots, const std::vector<Eigen::Index> &ones,
	               bool to_test);
	void flush_groups();
	void merge_pending(std::vector<PendingGroup> &gs, Moments &into);
	void check_moments_memory() const;
	void grow_moments();
	void add_moments(const RowStore &s, Moments &m);
	void keep_sample(RowStore &sample, std::vector<double> &u, std::vector<std::pair<double, size_t>> &heap,
	                 const RowStore &src, size_t i);
	void stream_chunk();
	std::vector<int32_t> group_levels(const std::vector<const char *> &levels);
	void group_slots(const std::vector<int32_t> &cats, const std::vector<size_t> &numeric, const stats::Decoded &d,
	                 std::vector<Eigen::Index> &map, std::vector<Eigen::Index> &ones);
	void note_group_columns(const std::vector<size_t> &numeric, const stats::Decoded &d);

	// ---- trainer_rows.cpp: every row in memory
	void canonical_order(RowStore &s) const;
	void buffer_chunk();

	// ---- trainer_classes.cpp: the model, its classes (rank: label id -> class) and preprocessing
	std::unique_ptr<Model> class_prepare(int64_t rows_read, std::vector<int> &rank, int &K, CancelCheck cancel);

	// ---- trainer_kmeans.cpp
	void start_kmeans(CancelCheck cancel);

	// ---- trainer_profile.cpp: the training profile and a retrain's drift (monitor.hpp), after the route
	std::unique_ptr<Profile> drift_ref;
	void profile(TrainResult &res) const;
	FeatureProfile normal_profile(size_t c, int64_t rows) const;
};

// The routes, one file each: the linear family from the moments (trainer_moments.cpp), the
// in-memory algorithms (trainer_rows.cpp), naive Bayes through the class aggregate
// (trainer_classes.cpp), k-means through the Lloyd-step aggregate (trainer_kmeans.cpp).
RouteFit finish_moments_route(TrainRun &run, int64_t rows_read, const Model *compare, TrainResult &res);
RouteFit finish_rows_route(TrainRun &run, int64_t rows_read, const Model *compare, TrainResult &res);
RouteFit finish_class_route(TrainRun &run, int64_t rows_read, const Model *compare, TrainResult &res);
RouteFit finish_kmeans_route(TrainRun &run, int64_t rows_read, const Model *compare, TrainResult &res);

struct Trainer::Impl : TrainRun {};

} // namespace pgml
