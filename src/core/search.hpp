// pg_ml core: hyperparameter search (ml_train(search => 'grid' | 'random')) and the choice of
// algorithm => 'auto' by cross-validation.
//
// A search keeps a copy of the rows it is given, then trains one model per trial and fold:
// every trial is scored by k-fold cross-validation (stratified by class for classification) or
// on one validation split, always inside the rows the version's own split leaves for training
// (TrainSpec::cv_folds): the test rows never choose anything, so the version's test metrics
// stay an honest estimate. Each fold's model is a whole training run (its preprocessing fitted
// on the fold's training rows only). The trial with the best mean fold score wins; the glue
// then trains the version with it on all the training rows, as without a search.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "data.hpp"
#include "estimator.hpp"
#include "trainer.hpp"

namespace pgml {

// One searched hyperparameter: a list of values (grid and random search), or a range for random
// search (uniform, or log-uniform with "scale": "log"; integer hyperparameters are rounded).
struct SearchParam {
	std::string name;
	std::vector<OptionValue> values;
	bool range = false;
	double lo = 0, hi = 0;
	bool log = false;
};

struct SearchSpec {
	enum class Kind { Grid, Random, Algorithms };
	Kind kind = Kind::Grid;
	std::vector<SearchParam> params;
	std::vector<Algorithm> algorithms; // Kind::Algorithms: the candidates, each with its defaults
	int trials = 10;                   // random search
	int folds = 5;
	double validation_size = 0; // > 0: one validation split of that fraction instead of folds
	std::string metric;         // empty: the model's deploy metric (the task's default)
	double time_budget = 0;     // seconds; trials not finished within it are skipped (0: none), but
	                            // the first trial always runs to its end
	std::string kind_name() const;
};

constexpr int kMaxTrials = 1000;
// algorithm => 'auto' compares its candidates by cross-validation on relations of at most this
// many rows (the planner's estimate), within search_args's time_budget (default 30 s); beyond,
// the size rule of auto_algorithm() chooses.
constexpr double kAutoSearchRows = 20000;
constexpr int kMaxFolds = 20;

// search_params as the glue flattens it (each list element as "name[]", in order; a range as
// "name.min", "name.max" and "name.scale") and search_args ("trials", "folds",
// "validation_size", "metric", "time_budget"), checked against the algorithm of base (throws
// InvalidParameter naming what is wrong). kind: "grid" or "random".
SearchSpec parse_search(const std::string &kind, const std::vector<std::pair<std::string, OptionValue>> &params,
                        const Options &args, const TrainSpec &base);
// The candidates of algorithm => 'auto' for a task (cheapest first), compared with their defaults.
SearchSpec auto_search(Task task, const Options &args);

struct Trial {
	int number = 0; // from 1
	Algorithm algorithm = Algorithm::LinearRegression;
	Options hyperparams;          // the hyperparameters the trial sets (hyperparams => plus its own)
	std::string hyperparams_json; // every hyperparameter it trained with, defaults filled in
	std::vector<double> fold_scores;
	double mean = NAN, sd = NAN; // of the fold scores (sd: sample standard deviation)
	double ms = 0;
	std::string error;    // a trial that failed on the data (its message), or "skipped: ..."
	bool ok() const { return error.empty() && std::isfinite(mean); }
};

class Search {
  public:
	Search(const TrainSpec &base, SearchSpec spec);
	~Search();
	// Keeps a copy of the batch's rows (counted against base.memory_limit).
	void add_batch(const Batch &batch, CancelCheck cancel);
	// Runs the trials (a progress phase per trial, its mean as the iteration's value). Throws
	// the first trial's error when no trial could be scored.
	void run(CancelCheck cancel);
	const std::vector<Trial> &trials() const { return trials_; }
	const Trial &best() const { return trials_[static_cast<size_t>(best_)]; }
	const std::string &metric() const { return metric_; }
	// base with the best trial's algorithm and hyperparameters
	TrainSpec chosen() const;
	// The report's "search": kind, metric, folds, trials run, the best trial, and the first
	// trial's mean (the hyperparameters as given, or the first candidate) to compare with.
	std::string report_json() const;
	// One sentence: which won and by how much, e.g. "gradient_boosting: mean r2 0.8812 in 5-fold
	// cross-validation, +0.0421 over random_forest (0.8391)".
	std::string summary() const;

  private:
	struct Rows;
	TrainSpec base_;
	SearchSpec spec_;
	std::unique_ptr<Rows> rows_;
	std::vector<Trial> trials_;
	int best_ = -1;
	std::string metric_;
	std::unique_ptr<Error> first_error_; // the first trial's error (rethrown when no trial is scored)
	void plan();
	void score(Trial &t, CancelCheck cancel, double started);
};

} // namespace pgml
