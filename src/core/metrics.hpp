// pg_ml core: evaluation metrics (DESIGN.md "Metrics stored with every version").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Dense>

namespace pgml {

// Streaming regression metrics: add (truth, prediction) pairs, read r2 / mse / rmse / mae.
// Numerically stable (Welford for the variance of y). Mergeable.
class RegressionMetrics {
  public:
	void add(double y, double yhat);
	void merge(const RegressionMetrics &other);
	int64_t count() const { return n_; }
	double mse() const;
	double rmse() const;
	double mae() const;
	double r2() const; // 1 - SSE/SST; NaN when n < 2 (sklearn); when SST == 0: 1 if SSE == 0 else 0 (sklearn)
	// {"r2":..,"rmse":..,"mse":..,"mae":..,"rows":n}
	std::string to_json() const;

  private:
	int64_t n_ = 0;
	double mean_y_ = 0, m2_y_ = 0; // Welford
	double sse_ = 0, sae_ = 0;
};

// Classification metrics over K classes (class ids 0..K-1, names given for JSON).
// Keeps the confusion matrix and, for roc_auc / log_loss, every row's probability vector.
class ClassificationMetrics {
  public:
	explicit ClassificationMetrics(std::vector<std::string> class_names);
	// truth, predicted class, and the predicted probabilities (length K, may be null:
	// then roc_auc and log_loss are not reported)
	void add(int truth, int predicted, const double *proba);
	int64_t count() const { return n_; }
	double accuracy() const;
	double precision_macro() const; // sklearn zero_division=0 semantics
	double recall_macro() const;
	double f1_macro() const;
	double log_loss() const;        // mean -log(clip(p_true, 1e-15, 1-1e-15)), probabilities renormalised as sklearn does
	double roc_auc() const;         // binary: AUC of class 1's probability (ties averaged); multiclass: macro one-vs-rest
	                                // over the classes present in the truth (sklearn errors if one is absent);
	                                // NaN if fewer than two classes are present in the truth
	const Eigen::MatrixXd &confusion() const { return confusion_; } // rows = truth, cols = predicted
	// {"accuracy":..,"precision":..,"recall":..,"f1":..,"roc_auc":..,"log_loss":..,
	//  "per_class":{"<name>":{"precision":..,"recall":..,"f1":..,"support":n},...},
	//  "confusion_matrix":[[..],[..]],"classes":[..],"rows":n}
	// roc_auc / log_loss omitted (not null) when not defined.
	std::string to_json() const;

  private:
	std::vector<std::string> names_;
	int64_t n_ = 0;
	Eigen::MatrixXd confusion_;
	bool have_proba_ = true;
	std::vector<int> truth_;
	std::vector<double> proba_; // row-major n x K
};

// The JSON of ClassificationMetrics::to_json from its parts (roc_auc / log_loss left out when
// NaN; roc_auc_sample_rows >= 0 says roc_auc was computed on that many sampled rows).
std::string classification_json(const std::vector<std::string> &names, const Eigen::MatrixXd &confusion, int64_t n,
                                double roc_auc, double log_loss, int64_t roc_auc_sample_rows = -1);

} // namespace pgml
