// pg_ml core: algorithms, their hyperparameters, and the estimator interface.
//
// Every algorithm is described once in the registry (estimator.cpp): its name, the tasks it
// does, its hyperparameters (name, type, range, default: validation errors and the stored
// defaults come from this), and how it is fitted and read back from a blob.
//
// Two families:
//  - streaming (linear_regression, ridge, lasso, elastic_net): fitted from the moments of the
//    training rows (no rows kept), as coefficients on the unscaled features (Model::W, Model::b);
//  - in-memory (everything else): fitted on the preprocessed, scaled feature matrix Z of the
//    training rows, as an Estimator; prediction scales x to z and asks the estimator.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Dense>

#include "common.hpp"
#include "optimize.hpp"
#include "serialize.hpp"

namespace pgml {

// Blob model kinds are these ids: never renumber.
enum class Algorithm : uint16_t {
	LinearRegression = 1,
	Ridge = 2,
	LogisticRegression = 3,
	Lasso = 4,
	ElasticNet = 5,
	DecisionTree = 6,
	RandomForest = 7,
	GradientBoosting = 8,
	Svm = 9,
	Mlp = 10,
	KMeans = 11,
	NaiveBayes = 12
};

// One hyperparameter. Numbers are checked against [min, max]; integers must be whole;
// choices list the allowed strings ("gini,entropy").
struct ParamSpec {
	enum class Kind { Float, Int, Bool, Choice };
	std::string name;
	Kind kind;
	double min;
	double max;
	double def;               // Float / Int / Bool (0 or 1)
	std::string choices;      // Choice: comma-separated
	std::string def_choice;   // Choice default
	bool min_exclusive = false;
};

// Builders for the specs each algorithm lists.
ParamSpec num_param(const char *name, ParamSpec::Kind kind, double min, double max, double def,
                    bool min_exclusive = false);
ParamSpec choice_param(const char *name, const char *choices, const char *def);

// Validated hyperparameters with every default filled in.
class Params {
  public:
	double num(const std::string &name) const;          // Float / Int / Bool
	int integer(const std::string &name) const { return static_cast<int>(num(name)); }
	bool flag(const std::string &name) const { return num(name) != 0; }
	const std::string &choice(const std::string &name) const;
	bool has(const std::string &name) const { return num_.count(name) > 0 || str_.count(name) > 0; }
	void set_num(const std::string &name, double v) { num_[name] = v; }
	void set_choice(const std::string &name, std::string v) { str_[name] = std::move(v); }
	void write(Writer &w) const;
	static Params read(Reader &r);
	std::string to_json() const;
	bool operator==(const Params &o) const { return num_ == o.num_ && str_ == o.str_; }

  private:
	std::map<std::string, double> num_;
	std::map<std::string, std::string> str_;
};

// What an in-memory estimator is fitted on.
struct FitInput {
	const Eigen::MatrixXd *X = nullptr;        // n x p, preprocessed and scaled (z)
	const Eigen::VectorXd *y = nullptr;        // regression value or class id (0..K-1); null for clustering
	const Eigen::MatrixXd *X_valid = nullptr;  // validation rows for early stopping (may be null)
	const Eigen::VectorXd *y_valid = nullptr;
	Task task = Task::Regression;
	int n_classes = 0;                          // K for classification
	// per feature: -1 for a numeric feature, else the input column whose one-hot group it belongs to
	const std::vector<int> *feature_group = nullptr;
	uint64_t seed = 42;
	// X holds NaN for a missing number (trees, boosting: learnt as missing); false when the
	// preprocessing imputed them, and the estimator then writes the format of an imputing model
	bool native_missing = true;
	int threads = 1;                            // upper bound on threads an algorithm may use
	size_t memory_limit = 0;                    // bytes the fit may allocate (pg_ml.max_memory; 0: no limit), see limits.hpp
	CancelCheck cancel = nullptr;
	std::vector<IterationLog> *log = nullptr;   // per-iteration loss / validation metric
	ProgressCallback progress = nullptr;        // per iteration, called on this thread only (never from workers)
};

// A fitted in-memory model on scaled features.
class Estimator {
  public:
	virtual ~Estimator() = default;
	// Regression: out[0] = value, returns 0. Classification: out[0..K-1] = probabilities, returns
	// the class. Clustering: out[0] = distance to the centre, returns the cluster.
	virtual int predict(const double *z, double *out) const = 0;
	// Predicts n rows at once: z is n rows of p values, one row after the other; out gets
	// n_outputs values per row and klass[i] what predict() returns for row i. The default calls
	// predict() row by row; gradient boosting overrides it (one xgboost call per block of rows).
	virtual void predict_many(const double *z, size_t n, size_t p, size_t n_outputs, double *out, int *klass) const
	{
		for (size_t i = 0; i < n; i++)
			klass[i] = predict(z + i * p, out + i * n_outputs);
	}
	// The fit's own outputs for its training rows i0 .. i0 + n - 1 (FitInput::X's rows), as
	// predict_many would give them, where the fit kept them (gradient_boosting without early
	// stopping: libxgboost's prediction cache of the training rows, no second pass over the
	// trees); false where it did not.
	virtual bool fitted_outputs(size_t i0, size_t n, size_t n_outputs, double *out, int *klass) const
	{
		(void) i0;
		(void) n;
		(void) n_outputs;
		(void) out;
		(void) klass;
		return false;
	}
	// The trainer has scored the training and test rows: frees the fitted outputs, and the
	// estimator predicts on one thread from now on (gradient_boosting predicts the trainer's rows
	// on the fit's threads, a served row on one).
	virtual void end_training() const {}
	virtual void write(Writer &w) const = 0;
	// Importance of each of the p features (coefficient magnitude, split gain, ...), and its kind.
	virtual Eigen::VectorXd importance() const = 0;
	virtual const char *importance_kind() const = 0;
	// True when the estimator takes a missing numeric value as NaN (trees, gradient boosting
	// fitted by this build); false when the preprocessing imputes it (every other estimator, and
	// tree models from blobs written before missing values were native).
	virtual bool native_missing() const { return false; }
	// Per-row explanation (ml_explain): writes p + 1 values, each feature's contribution to the
	// raw output of class klass (regression: the value; binary: its log-odds; more classes: its
	// margin; decision_tree and random_forest: its probability) and last the bias, summing to that
	// output. false: not supported.
	virtual bool contributions(const double *z, int klass, double *out) const
	{
		(void) z;
		(void) klass;
		(void) out;
		return false;
	}
	// Warm start / continued training on new rows (incremental retraining), where supported.
	virtual bool can_continue() const { return false; }
	virtual void continue_fit(const FitInput &, const Params &)
	{
		throw Error(ErrorCode::FeatureNotSupported, "this algorithm cannot be retrained incrementally", "",
		            "Use mode => 'refit'.");
	}
	// Sizes of the fitted model the version's report shows (gradient_boosting: total_rounds
	// and trees, which continued training adds to); none by default.
	virtual std::vector<std::pair<std::string, long long>> report_counts() const { return {}; }
};

// What the blob reader knows before reading an estimator.
struct EstimatorShape {
	int p = 0;         // features
	int n_classes = 0; // classification
	Task task = Task::Regression;
};

struct AlgorithmDef {
	Algorithm id;
	std::string name;
	bool regression, classification, clustering;
	bool streams; // fitted from moments (linear family)
	std::vector<ParamSpec> params;
	std::unique_ptr<Estimator> (*fit)(const FitInput &, const Params &);     // null for streaming ones
	std::unique_ptr<Estimator> (*read)(Reader &, const EstimatorShape &);    // null for streaming ones
	bool supports(Task t) const
	{
		return t == Task::Regression ? regression : t == Task::Classification ? classification : clustering;
	}
};

// The registry. find_algorithm returns null for an unknown name or an algorithm not built in.
const std::vector<AlgorithmDef> &algorithms();
// logistic_regression's hyperparameter penalty => 'none' (maximum likelihood, as R's glm; C is
// then ignored) rather than the default 'l2'.
bool logistic_unpenalized(const Params &hp);
const AlgorithmDef *find_algorithm(const std::string &name);
const AlgorithmDef &algorithm_def(Algorithm a); // throws DataCorrupted for an unknown id
const char *algorithm_name(Algorithm a);
bool parse_algorithm(const std::string &name, Algorithm *out);
bool algorithm_streams(Algorithm a);
// Whether the algorithm can take missing numeric values as NaN instead of imputed values
// (decision_tree, random_forest, gradient_boosting): the trainer does so unless the preprocess
// options ask for median or constant imputation, and the estimator then reports native_missing().
bool algorithm_native_missing(Algorithm a);
// The largest magnitude of a scaled feature value the algorithm takes: FLT_MAX for
// gradient_boosting (xgboost works in single precision), DBL_MAX for the others.
double algorithm_max_input(Algorithm a);
// The largest magnitude of a numeric feature value training accepts: its square, summed over
// the rows into the moments every algorithm's preprocessing fits, must stay finite.
constexpr double kMaxFeatureMagnitude = 1e150;
// The error for a feature value out of those ranges (22003), naming the column and the value
// (NaN: not known); target: the column is the regression target (the same ranges apply).
[[noreturn]] void feature_out_of_range(const std::string &column, double value, const char *why, bool target = false);
// "linear_regression, ridge, ..." for messages.
std::string algorithm_list();

// algorithm => 'auto': the algorithm for a task and an expected row count (negative:
// unknown), and why, as a sentence for the NOTICE and the version's report.
struct AutoChoice {
	Algorithm algorithm;
	std::string reason;
};
constexpr double kAutoSmallRows = 1000;     // up to this, a linear model (fewest rows to generalise)
constexpr double kAutoLargeRows = 1000000;  // beyond this, the single-pass linear family
AutoChoice auto_algorithm(Task task, double expected_rows);

// Validates options against the algorithm's hyperparameters; an unknown key or a bad value is
// an Error(InvalidParameter) whose hint lists every valid key with its range and default.
// Validates opts against def. Keys opts does not give take start's value when start is given
// and has it (a retrain that changes some hyperparameters), else the default.
Params parse_params(const AlgorithmDef &def, const Options &opts, const Params *start = nullptr);

} // namespace pgml
