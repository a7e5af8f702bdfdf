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
	ProgressCallback progress = nullptr;    // iterations and phases of the fit (main thread only)
};

// What a training run reports besides the model.
struct TrainResult {
	std::string metrics_json; // {"train": {...}, "test": {...}}  ("test" only with test rows)
	std::string report_json;  // counts: rows read / skipped / imputed / ...
	std::vector<IterationLog> log;
	std::string primary_metric; // "r2", "accuracy" or "silhouette" (higher is better)
	double primary_test = NAN;  // NaN without test rows
	// the model given to finish() as `compare`, on the same test rows
	bool compared = false;
	double previous_primary = NAN;
	double primary_compare_new = NAN; // the new model on those same rows
	std::string previous_metrics_json;
	int64_t rows_train = 0;
	int64_t rows_test = 0;
	std::string fingerprint; // order-independent hash of the rows used, hex
};

class Trainer {
  public:
	// A fresh model (ml_train, or a refit from a model's spec).
	explicit Trainer(const TrainSpec &spec);
	// Retraining with base's columns, algorithm, hyperparameters and preprocessing options
	// (spec supplies test_size, seed and the memory limit). incremental: continue from
	// base's statistics (exact; linear family only); otherwise refit from scratch.
	Trainer(const TrainSpec &spec, const Model &base, bool incremental);
	~Trainer();

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
	// k-means after the statistics groups (kmeans_step.hpp): while kmeans_step_params() returns
	// a non-empty array, run ml_kmeans_step with it and *levels over the relation and pass the
	// state to add_kmeans_step(). Empty at once for other algorithms.
	bool uses_kmeans_steps() const; // whether a run through the statistics aggregate goes on with them
	std::vector<double> kmeans_step_params(std::vector<std::string> *levels, CancelCheck cancel);
	void add_kmeans_step(const double *state, size_t len);

	// Fits, evaluates (and evaluates `compare` on the same test rows), returns the model.
	std::unique_ptr<Model> finish(CancelCheck cancel, const Model *compare);
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

// Whether a version can be retrained incrementally (exact sufficient statistics, or an estimator
// that continues training).
bool model_can_continue(const Model &m);

// Checks that the hyperparameters and preprocess options are valid for spec (throws if not).
void validate_spec(const TrainSpec &spec);

} // namespace pgml
