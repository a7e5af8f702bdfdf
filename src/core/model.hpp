// pg_ml core: a trained model (one version) and its blob encoding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "common.hpp"
#include "data.hpp"
#include "estimator.hpp"
#include "moments.hpp"
#include "preprocess.hpp"

namespace pgml {

class Model {
  public:
	Task task = Task::Regression;
	Algorithm algorithm = Algorithm::LinearRegression;
	ColumnInfo target;
	std::vector<ColumnInfo> features;
	std::vector<std::string> classes; // classification, sorted
	Params hyperparams; // validated, defaults filled in
	PreprocessOptions preprocess;
	double test_size = 0.2;
	uint64_t seed = 42;

	Preprocessor prep;
	// linear family (streaming ones and logistic_regression): coefficients on the unscaled
	// features, scaling folded in; W is p x k, b has k entries
	Eigen::MatrixXd W;
	Eigen::VectorXd b;
	// every other algorithm: fitted on scaled features
	std::shared_ptr<const Estimator> estimator;
	// set at training time for estimators without an importance of their own (not stored in the blob)
	Eigen::VectorXd permutation_importance;

	// linear family: the raw-slot moments of every training row so far, and each numeric
	// column's min / max over them (NaN where none), so incremental retraining is exact
	bool has_stats = false;
	Encoder encoder;
	Moments stats;
	std::vector<double> col_min, col_max;

	int n_classes() const { return static_cast<int>(classes.size()); }
	// How many values predict() writes: K for classification, else 1.
	int n_outputs() const { return task == Task::Classification ? n_classes() : 1; }
	bool has_target() const { return task != Task::Clustering; }

	// Predicts one row. values[i] is feature i (model order). Regression: out[0] = value,
	// returns 0. Classification: out[0..K-1] = class probabilities, returns the class id.
	// Clustering: returns the cluster, out[0] = distance to its centre.
	// unseen (optional) is incremented per categorical value the model has not seen.
	int predict(const Value *values, double *out, int64_t *unseen = nullptr) const;
	// Same from an already transformed feature vector x (length p).
	int predict_features(const double *x, double *out) const;
	// Same for n transformed rows at once: x holds n rows of p values, one after the other
	// (it is overwritten with the scaled values when the model has an estimator); out gets
	// n_outputs() values per row and klass[i] what predict_features() returns for row i.
	void predict_features_many(double *x, size_t n, double *out, int *klass) const;
	// Predicts n rows at once: values is n x features.size() (row-major, model order), out is
	// n x n_outputs() and klass[i] is what predict() returns for row i. Linear models score the
	// whole batch with one matrix product. Results equal predict() row by row.
	void predict_batch(const Value *values, size_t n, double *out, int *klass, int64_t *unseen = nullptr) const;

	// Intercept and coefficients by feature name, raw and standardized (JSON object).
	std::string coefficients_json() const;

	std::vector<uint8_t> serialize() const;
	static std::unique_ptr<Model> deserialize(const uint8_t *data, size_t len);

  private:
	// Writes the transformed feature vector of one row (length prep.p()) into x.
	void encode(const Value *values, double *x, int64_t *unseen) const;
	// Class probabilities (or the value) from linear scores s (k entries); returns the class.
	int linear_link(const double *s, double *out) const;
	mutable std::vector<double> scratch_, zscratch_; // single-threaded use only (one backend)
};

// The label a numeric / boolean target value is known by.
std::string numeric_label(TypeClass tc, double v);

} // namespace pgml
