// pg_ml core: a trained model (one version) and its blob encoding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "common.hpp"
#include "data.hpp"
#include "moments.hpp"
#include "preprocess.hpp"

namespace pgml {

// The blob's model kind is the algorithm id.
enum class Algorithm : uint16_t { LinearRegression = 1, Ridge = 2, LogisticRegression = 3 };
const char *algorithm_name(Algorithm a);
bool parse_algorithm(const std::string &name, Algorithm *out);
Task algorithm_task(Algorithm a);
// Algorithms whose state is sufficient statistics: incremental retraining is exact.
bool algorithm_streams(Algorithm a);

// Hyperparameters of every algorithm, validated, with defaults filled in.
struct Hyperparams {
	double alpha = 1.0;   // ridge: L2 penalty on standardized coefficients
	double C = 1.0;       // logistic_regression: inverse L2 strength (sklearn's C)
	int max_iter = 1000;  // logistic_regression
	double tol = 1e-6;    // logistic_regression: gradient tolerance
	void write(Writer &w) const;
	static Hyperparams read(Reader &r);
	std::string to_json(Algorithm a) const; // only the keys the algorithm uses
};
Hyperparams parse_hyperparams(Algorithm a, const Options &opts);

class Model {
  public:
	Task task = Task::Regression;
	Algorithm algorithm = Algorithm::LinearRegression;
	ColumnInfo target;
	std::vector<ColumnInfo> features;
	std::vector<std::string> classes; // classification, sorted
	Hyperparams hyperparams;
	PreprocessOptions preprocess;
	double test_size = 0.2;
	uint64_t seed = 42;

	Preprocessor prep;
	Eigen::MatrixXd W; // p x k on the unscaled features (scaling folded in)
	Eigen::VectorXd b; // k

	// linear family: the raw-slot moments of every training row so far, and each numeric
	// column's min / max over them (NaN where none), so incremental retraining is exact
	bool has_stats = false;
	Encoder encoder;
	Moments stats;
	std::vector<double> col_min, col_max;

	int n_classes() const { return static_cast<int>(classes.size()); }
	// How many values predict() writes: 1 for regression, K for classification.
	int n_outputs() const { return task == Task::Classification ? n_classes() : 1; }

	// Predicts one row. values[i] is feature i (model order). Regression: out[0] = value,
	// returns 0. Classification: out[0..K-1] = class probabilities, returns the class id.
	// unseen (optional) is incremented per categorical value the model has not seen.
	int predict(const Value *values, double *out, int64_t *unseen = nullptr) const;
	// Same from an already transformed feature vector x (length p).
	int predict_features(const double *x, double *out) const;

	// Intercept and coefficients by feature name, raw and standardized (JSON object).
	std::string coefficients_json() const;

	std::vector<uint8_t> serialize() const;
	static std::unique_ptr<Model> deserialize(const uint8_t *data, size_t len);

  private:
	mutable std::vector<double> scratch_; // single-threaded use only (one backend)
};

// The label a numeric / boolean target value is known by.
std::string numeric_label(TypeClass tc, double v);

} // namespace pgml
