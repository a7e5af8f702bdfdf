// pg_ml core: training a version from batches of rows, and evaluating one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "common.hpp"
#include "data.hpp"
#include "metrics.hpp"
#include "model.hpp"
#include "optimize.hpp"

namespace pgml {

struct Profile;

struct TrainSpec {
	std::vector<ColumnInfo> features;
	ColumnInfo target;
	Algorithm algorithm = Algorithm::LinearRegression;
	Task task = Task::Regression; // the algorithm must support it; clustering has no target
	Options hyperparams;
	Options preprocess;
	double test_size = 0.2;
	uint64_t seed = 42;
	size_t memory_limit = size_t(1) << 30; // bytes of rows an in-memory algorithm may keep
	int threads = 1;                        // upper bound on threads an algorithm may use
	std::string algorithm_choice;           // why algorithm => 'auto' chose the algorithm (stored in the report)
	// retraining a classifier: labels the base version does not know make a version with more
	// classes (a refit) instead of an error naming them
	bool allow_new_classes = false;
	// retraining (not incrementally): algorithm and hyperparams replace the base's. The same
	// algorithm keeps the base's hyperparameters that hyperparams does not name; another one
	// starts from its defaults. Columns, task, classes and preprocessing stay the base's.
	bool replace_algorithm = false;
	ProgressCallback progress = nullptr;    // iterations and phases of the fit (main thread only)
	// Cross-validation (search.hpp): the run's held-out ("test") rows are one fold of the rows
	// the split leaves for training, and the split's own test rows are left out altogether, so a
	// search never sees them. cv_folds >= 2: k-fold, fold cv_fold held out (stratified by class
	// for classification); cv_holdout > 0: that fraction held out instead (a validation split).
	int cv_folds = 0;
	int cv_fold = 0;
	double cv_holdout = 0;
	bool cross_validating() const { return cv_folds >= 2 || cv_holdout > 0; }
	std::string search_json; // the search that chose the hyperparameters (the report's "search")
};

// What a training run reports besides the model.
struct TrainResult {
	std::string metrics_json; // {"train": {...}, "test": {...}}  ("test" only with test rows)
	std::string report_json;  // counts: rows read / skipped / imputed / ...
	std::vector<IterationLog> log;
	std::string primary_metric; // "r2", "accuracy" or "silhouette" (higher is better)
	double primary_test = NAN;  // NaN without test rows
	std::string test_json;      // the "test" object of metrics_json (empty without test rows)
	// the model given to finish() as `compare`, scored with every metric on the same test rows
	// as the new version's test metrics (test_json): previous_metrics_json has the same keys
	bool compared = false;
	double previous_primary = NAN;
	double primary_compare_new = NAN; // the new model on those same rows
	std::string previous_metrics_json;
	int64_t rows_train = 0;
	int64_t rows_test = 0;
	std::string fingerprint; // order-independent hash of the rows used, hex
	// Facts for the glue to raise as WARNINGs once the core is done (a rank-deficient or
	// ill-conditioned least-squares fit); the same facts are in report_json.
	struct Warning {
		std::string message, detail, hint;
	};
	std::vector<Warning> warnings;
	// the linear family's least-squares solve (-1: no such solve): the report's rank,
	// columns and condition_number, and the columns named in a warning
	int solve_rank = -1, solve_columns = 0;
	double solve_condition = 0;
	double solve_digits = 0; // estimated correct significant digits (NaN: rank-deficient)
	bool solve_precise = false; // solved from double-double statistics (the precise pass)
	std::vector<std::string> solve_collinear, solve_constant;
	// the sums behind a moments fit's regression metrics (train and test), so that several runs'
	// metrics pool exactly (per-group models, grouped.hpp): rows, the target's mean and centred
	// sum of squares, the residual sum of squares, the mean absolute error of the sample rows
	struct RegressionSums {
		int64_t n = 0;
		double mean_y = 0, syy = 0, sse = 0, mae = NAN;
		int64_t mae_rows = 0;
	};
	RegressionSums train_sums, test_sums;
	// coefficient statistics (inference.hpp) of linear_regression and unpenalized binary
	// logistic_regression, the report's "inference" object; empty for other models
	std::string inference_json;
	// drift monitoring (monitor.hpp): the training rows' profile (ml.versions.profile), and with
	// a reference profile (Trainer::set_drift_reference) the drift of the rows read against it
	std::string profile_json, drift_json;
};

class Trainer {
  public:
	// A fresh model (ml_train, or a refit from a model's spec).
	explicit Trainer(const TrainSpec &spec);
	// Retraining with base's columns, algorithm, hyperparameters and preprocessing options
	// (spec supplies test_size, seed and the memory limit). incremental: continue from
	// base's statistics (exact; linear family only); otherwise refit from scratch. Either way,
	// labels of the rows that base (a classifier) does not know are an error naming them with
	// their rows, unless spec.allow_new_classes and a refit (continued training cannot add a class).
	Trainer(const TrainSpec &spec, const Model &base, bool incremental);
	~Trainer();

	// Sizes the in-memory algorithms' row store once from an estimate of the rows to come
	// (bounded by the memory limit), before the first add_batch; no effect on the others.
	void expect_rows(double n);
	// Ingests a batch whose feature columns are in spec.features order.
	void add_batch(const Batch &batch, CancelCheck cancel);
	// The statistics aggregate (stats_state.hpp): whether this run can train from it (the
	// linear family, without dedupe or median imputation, which need more than the moments),
	// the parameter array to call ml.train_stats with, and one group of its result: the
	// values of the categorical features in feature order (nullptr for NULL) and the state.
	// A run is fed either by add_batch or by add_stats_group, not both.
	bool uses_stats_aggregate() const;
	std::vector<double> stats_params(double expected_rows) const; // expected_rows <= 0: unknown
	void add_stats_group(const std::vector<const char *> &levels, const double *state, size_t len, CancelCheck cancel);
	// Counts the levels of a group's training rows as the query hands the group over (before
	// the groups are put in order and added): a column past its max_levels fails here, after
	// about max_levels groups rather than after all of them (add_stats_group counts them too).
	void note_stats_group(const std::vector<const char *> &levels, const double *state, size_t len, CancelCheck cancel);
	// k-means after the statistics groups (kmeans_step.hpp): while kmeans_step_params() returns
	// a non-empty array, run ml.kmeans_step with it and *levels over the relation and pass the
	// state to add_kmeans_step(). Empty at once for other algorithms.
	bool uses_kmeans_steps() const; // whether a run through the statistics aggregate goes on with them
	std::vector<double> kmeans_step_params(std::vector<std::string> *levels, CancelCheck cancel);
	void add_kmeans_step(const double *state, size_t len);

	// Naive Bayes through aggregates (the glue's class aggregate path, src/pg/eval_aggregate.cpp):
	// whether this run can use it (naive_bayes without dedupe or median imputation); the
	// parameters of ml.train_stats / ml.row_draw for it; one group of
	//   SELECT <categorical features>, target, draw < cut, ml.train_stats(...) GROUP BY 1, 2, ...
	// (levels as in add_stats_group; the class label as text, or label_num for a numeric
	// target; split 0 train, 1 test); then class_fit fits the model and returns its blob for
	// ml.eval_stats, whose state add_eval_state takes (of_compare: the state of `compare`,
	// evaluated against class_names()). finish() writes the metrics.
	bool uses_class_aggregate() const;
	std::vector<double> class_stats_params() const;
	void add_class_group(const std::vector<const char *> &levels, const char *label, double label_num, int split,
	                     const double *state, size_t len, CancelCheck cancel);
	std::vector<uint8_t> class_fit(CancelCheck cancel);
	// Binary logistic_regression through the same class statistics (uses_class_aggregate), then
	// Newton steps (logit_step.hpp) before class_fit: while logit_step_params() returns a
	// non-empty array, run ml.logit_step with it, *blob (the model for its preprocessing) and
	// *classes over the relation's training rows (*fraction < 1: over a page sample of that
	// fraction, which the glue offers with can_sample: a table or materialized view read as
	// it is) and pass the state to add_logit_step().
	// binary_only: the class aggregate path takes this run only with two classes (else the
	// glue reads the rows).
	bool binary_only() const;
	bool uses_logit_steps() const;
	std::vector<double> logit_step_params(std::vector<uint8_t> *blob, std::vector<std::string> *classes,
	                                      bool can_sample, double *fraction, CancelCheck cancel);
	void add_logit_step(const double *state, size_t len);
	std::vector<std::string> class_names() const;
	std::vector<double> eval_params() const;
	void add_eval_state(const double *state, size_t len, bool of_compare);

	// After finish(): the training rows the version's profile describes (the in-memory route:
	// all of them; the streaming routes: their training sample), with the dictionary of each
	// categorical column in dicts; nullptr where the profile came from statistics alone.
	const RowStore *profile_rows(std::vector<const Dictionary *> &dicts) const;
	// The threads and memory limit the fit in finish() may use, in place of the spec's (per-group
	// training fits several groups at once, each on its share of both).
	void set_fit_resources(int threads, size_t memory_limit);
	// Fits, evaluates (and evaluates `compare` on the same test rows), returns the model.
	std::unique_ptr<Model> finish(CancelCheck cancel, const Model *compare);
	// After finish(fresh) with a `compare`: whether the exact comparison needs one more pass over
	// the relation (the statistics-only paths: the linear family's moments and k-means's Lloyd
	// steps keep no held-out rows). Then every row of the relation goes to add_compare_batch()
	// (features in spec order, as to add_batch), and end_compare_pass() scores both models on
	// the held-out rows among them: the new version's test metrics and previous_metrics_json
	// are then computed the same way on the same rows.
	// The precise pass: a least-squares fit whose estimated correct digits from double
	// statistics fall short (least_squares.hpp, kPreciseDigits) or that looks rank-deficient asks,
	// after finish(), to read every row again (to add_precise_batch(), as to add_batch());
	// end_precise_pass() checks that they are the same rows, and finish() called again fits
	// from double-double statistics (precise_moments.hpp, linear_precise.hpp).
	bool needs_precise_pass() const;
	void add_precise_batch(const Batch &batch, CancelCheck cancel);
	void end_precise_pass();
	bool needs_compare_pass() const;
	void add_compare_batch(const Batch &batch, const Model &fresh, const Model &compare, CancelCheck cancel);
	void end_compare_pass();
	// A retrain: finish() also writes result().drift_json, the drift of the rows read (training
	// and held out; the streaming routes: their samples) against `parent` (the parent version's profile).
	void set_drift_reference(const Profile &parent);
	const TrainResult &result() const { return result_; }
	int64_t rows_read() const { return rows_read_; }

  private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
	TrainResult result_;
	int64_t rows_read_ = 0;
};

// Metrics of a model on labelled rows (ml_evaluate), streamed in batches.
class Evaluator {
  public:
	explicit Evaluator(const Model &model);
	~Evaluator();
	// Features in the model's order, target required.
	void add_batch(const Batch &batch, CancelCheck cancel);
	std::string metrics_json() const; // metrics plus "rows", "skipped_null_target", "unknown_labels", "unseen_levels"
	double primary() const;

  private:
	const Model &model_;
	std::unique_ptr<RegressionMetrics> reg_;
	std::unique_ptr<ClassificationMetrics> cls_;
	int64_t skipped_null_target_ = 0;
	int64_t unknown_labels_ = 0;
	int64_t unseen_ = 0;
	double inertia_ = 0;   // clustering
	int64_t rows_ = 0;     // clustering
	std::vector<Value> values_;
	std::vector<double> out_;
};

// The stratified split of one class as the row reader makes it, from its rows' draws: below
// rows under a bound lo, band = (draw, rows) of the rows in [lo, hi) in increasing draw order,
// above rows at or over hi. Returns 1 and sets *cut (the held-out rows are those with
// draw < cut); 0 when rows with equal draws (duplicate rows) fall on both sides of the cut;
// -1 when the cut is not in [lo, hi].
int stratified_cut(double test_size, int64_t below, const std::vector<std::pair<double, int64_t>> &band,
                   int64_t above, double hi, double *cut);

// Whether a version can be retrained incrementally (exact sufficient statistics, or an estimator
// that continues training).
bool model_can_continue(const Model &m);
// Whether continuing is exact: the result equals a fit on all the rows (the linear family's
// statistics, naive Bayes's counts); otherwise it is a warm start or added boosting rounds.
bool model_continues_exactly(const Model &m);

// Checks that the hyperparameters and preprocess options are valid for spec (throws if not).
void validate_spec(const TrainSpec &spec);

} // namespace pgml
