// pg_ml core: the state of the evaluating aggregate (ml.eval_stats).
//
// Classification metrics of a fitted model need one prediction per row. ml_train computes
// them for naive Bayes with one more aggregate query over the relation,
//
//   SELECT ml.eval_stats(<params>, <model blob>, <classes>, <draw>, <cut>, <target>, <feature arrays>)
//     FROM relation ...
//
// where the caller says which split each row belongs to (is_test) and gives the row's draw
// (a deterministic number in [0, 1) from the row's hash). The state is a flat array of
// doubles (SQL type float8[]: a lossless text form, no serialize functions):
//
//   header | per split: confusion[K*K] | per split: sample u[cap], rows[cap*(K+1)]
//
// The header counts rows, and per split the sums of the log losses (sklearn's clipped and
// renormalised -log p_true) and of -log max(p_true, 1e-300). roc_auc needs ranks: each split
// keeps the sample_k rows with the smallest draws (truth and probabilities), the same rows
// whatever the scan order or the number of workers; roc_auc is exact while a split has at
// most sample_k rows, and computed on that sample otherwise.
//
// A row that needs a wider state (a sample that must grow) grows it by the protocol of
// agg_state.hpp (add_row reports the shape, relayout copies), which also keeps the sample. Every function that reads a state checks it first: a malformed state is
// an error, not a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "stats_state.hpp"

namespace pgml::evalstate {

// The split draw of a row (ml.row_draw): split_draw of the row's hash, computed as the row
// reader and ml.train_stats compute it (p describes the columns as for ml.train_stats). NaN
// for a row training skips: a NULL target, or a non-finite number.
double row_draw(const stats::Params &p, const stats::Row &row);

// The first argument of ml.eval_stats.
struct Params {
	int sample_k = 0; // rows kept per split for roc_auc
	std::vector<double> encode() const;
	static Params decode(const double *p, size_t n); // throws InvalidParameter when malformed
};

struct Shape {
	int K = 0;          // classes
	bool proba = false; // the model's probabilities are over these classes (log loss, roc_auc)
	int cap = 0, sample_k = 0;
	size_t length() const;
};

Shape initial_shape(int K, bool proba, const Params &p);
void init(double *buf, const Shape &s);
Shape shape_of(const double *buf, size_t len); // throws DataCorrupted

// Row outcomes that are only counted.
enum class Skip { NoSplit, NullTarget, UnknownLabel };
void add_skipped(double *buf, const Shape &s, Skip why);

// Adds one evaluated row of split t (0 train, 1 test): the true class, the predicted class
// and (when s.proba) the K probabilities; u is the row's draw. Returns 0 when done, or the
// length the state must be grown to first (then *need is the shape for relayout()).
size_t add_row(double *buf, const Shape &s, int t, int truth, int predicted, const double *proba, double u,
               Shape *need);
void relayout(const double *from, size_t from_len, double *to, const Shape &s);
Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen);
void merge(double *a, size_t alen, const double *b, size_t blen); // a must have merged_shape(a, b)

struct Split {
	int64_t n = 0;
	Eigen::MatrixXd confusion; // truth x predicted
	double log_loss_sum = 0;   // sklearn's log loss summed over the rows (proba only)
	double nll_sum = 0;        // -log max(p_true, 1e-300) summed (proba only)
	std::vector<int> sample_truth;
	std::vector<double> sample_proba; // sample rows x K
	std::vector<double> sample_u;
};

struct Decoded {
	Shape shape;
	Split split[2];
	int64_t no_split = 0, null_target = 0, unknown_label = 0;
};
Decoded decode(const double *buf, size_t len);

// The state's grow protocol (agg_state.hpp).
extern const aggstate::Kind kKind;
using State = aggstate::Protocol<kKind, Shape, init, shape_of, relayout, merged_shape, merge>;

// The metrics JSON of one split, in ClassificationMetrics::to_json's form; roc_auc from the
// sample (with "roc_auc_sample_rows" when the sample holds fewer rows than the split).
std::string split_json(const Split &s, const std::vector<std::string> &classes, bool proba);

} // namespace pgml::evalstate
