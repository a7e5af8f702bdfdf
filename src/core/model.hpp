// pg_ml core: a trained model (one version) and its blob encoding.
#pragma once

#include <cstdint>
#include <functional>
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

class GroupedModel; // grouped.hpp
class Writer;       // serialize.hpp
class Reader;

// The catalog row (ml.versions) a blob belongs to. model_id 0: not bound (a blob of format 1,
// or a model that was never stored, such as the one an aggregate carries).
struct BlobBinding {
	int64_t model_id = 0;
	int32_t version = 0;
	bool bound() const { return model_id != 0; }
};

// A per-row explanation (Model::explain): contributions of the features (prep.feature_names)
// and of the input columns (their features summed) to the model's raw output for the row, which
// base plus every contribution equals.
struct Explanation {
	int klass = 0;              // the explained class (classification: the predicted one)
	const char *output = "value"; // what is explained (a literal): "value", "log-odds", "margin", "probability"
	double base = 0;            // linear: the output at the training centre of the features; trees: the expected output
	double value = 0;           // the output for the row
	std::vector<double> feature; // per feature
	std::vector<double> column;  // per input column
};

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
	// a fit with the precise pass: what rounding the statistics to double left out (format 3),
	// so that an incremental retrain goes on in double-double
	bool has_precise_stats = false;
	Eigen::VectorXd stats_mean_lo;
	Eigen::MatrixXd stats_comoment_lo;

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
	// The transformed (unscaled) feature vector of one row (length prep.p()), as predict() builds it.
	void features_of(const Value *values, double *x) const { encode(values, x, nullptr); }

	// Explains one row (values as for predict()): exact for the linear family (each feature's
	// coefficient times its distance from the centre of the scaling, the training mean by
	// default), SHAP values for gradient_boosting (libxgboost's tree SHAP). Other algorithms:
	// Error(FeatureNotSupported). A per-group model: the row's group's model (GroupedModel::
	// serving) explains it, its features and columns; klass is the container's class.
	Explanation explain(const Value *values) const;

	// Intercept and coefficients by feature name, raw and standardized (JSON object).
	std::string coefficients_json() const;

	// Rewrites every text the model holds (column and type names, class labels, category
	// levels, per-column option keys) with f, always in the same order; what says which kind
	// of text it is ("column name", "type name", "class label", "category level"). Feature
	// names are derived again. Used to move a model between database encodings.
	void map_text(const std::function<void(const char *what, std::string &)> &f);

	// A per-group model (ml_train(group_by => ...)): the container of one model per group
	// (grouped.hpp). Then features are the sub-models' features followed by the group
	// columns, predict() routes each row to its group's model, and the fields the container
	// does not keep (prep, W, b, estimator, statistics) are empty.
	std::shared_ptr<const GroupedModel> grouped;

	// The row the blob is (to be) stored in: serialize() writes it, deserialize() reads it.
	BlobBinding binding;
	// the group columns of a grouped model, comma-separated (empty otherwise)
	std::string grouped_columns() const;
	// Error(FeatureNotSupported): `what` does not support a grouped model
	[[noreturn]] void not_for_grouped(const char *what) const;

	std::vector<uint8_t> serialize() const;
	static std::unique_ptr<Model> deserialize(const uint8_t *data, size_t len);
	// Checks the blob this model was read from belongs to the catalog row it was read from:
	// model id and version (blobs of format 2 on) and kind (algorithm and task, every format).
	// Throws Error(DataCorrupted) naming what differs.
	void check_binding(int64_t model_id, int32_t version, const std::string &algorithm, const std::string &task) const;

  private:
	// Writes the transformed feature vector of one row (length prep.p()) into x.
	void encode(const Value *values, double *x, int64_t *unseen) const;
	// Class probabilities (or the value) from linear scores s (k entries); returns the class.
	int linear_link(const double *s, double *out) const;
	// 22003 for a row whose value overflows the model's arithmetic: x is the unscaled feature
	// vector; names the column of the feature with the largest contribution (linear models) or
	// the largest scaled value (the others).
	[[noreturn]] void input_out_of_range(const double *x) const;
	mutable std::vector<double> scratch_, zscratch_; // single-threaded use only (one backend)
};

// The blob codec's shared pieces (model.cpp), also used by the grouped container (grouped.cpp):
// Error(DataCorrupted) with detail; a column's name, type class and type name.
[[noreturn]] void corrupt(const std::string &detail);
void write_column(Writer &w, const ColumnInfo &c);
ColumnInfo read_column(Reader &r);

// The label a numeric / boolean target value is known by.
std::string numeric_label(TypeClass tc, double v);

} // namespace pgml
