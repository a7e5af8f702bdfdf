// pg_ml core: the state of the training-statistics aggregate (ml.train_stats).
//
// The linear family trains from the first and second moments of its raw slot vectors
// (preprocess.hpp). ml_train computes them with one aggregate query over the relation,
//
//   SELECT <categorical columns>, ml.train_stats(<params>, target, f1, f2, ...)
//     FROM relation GROUP BY <categorical columns>
//
// so PostgreSQL's parallel query (and a distributed PostgreSQL) spreads the scan. The
// state is a flat array of doubles (SQL type float8[], so it has a lossless text form and
// needs no serialize functions) that the transition function updates in place:
//
//   header | per numeric column: indicator slot, NULLs, min, max (training rows)
//          | train moments: mean[q], M[q*q] | test moments: mean[q], M[q*q]
//          | pending rows: train[B*q], test[B*q]
//          | MAE sample: train u[cap], rows[cap*(k+1)] | test u[cap], rows[cap*(k+1)]
//
// Slots: k numeric feature values (0 when NULL), the target, then one missing-value
// indicator per numeric column that has had a NULL, in order of first NULL. Categorical
// columns are the GROUP BY keys: within one group their one-hot slots are constant, so the
// trainer adds them when it merges the groups (Trainer::add_stats_group). Rows are folded
// into the moments B at a time (block mean and co-moment, then Chan's pairwise update), so
// the per-row cost is a copy. The MAE sample keeps, per split, the sample_k rows with the
// smallest hash draws: the same rows whatever the scan order or the number of workers.
// Without a target (k-means, kmeans_step.hpp) the sample is kept too, as the rows the
// starting centres are fitted on (its target value is then 0).
//
// A row that needs a wider state (a first NULL in a column, a sample that must grow) grows it
// by the protocol of agg_state.hpp (add_row reports the shape, relayout copies), which also
// keeps the sample. Every function that reads a state checks its header and length first: a
// malformed state is an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agg_state.hpp"
#include "moments.hpp"

namespace pgml::stats {

// The first argument of ml.train_stats (a float8[] the trainer writes).
struct Params {
	int nfeat = 0;
	bool has_target = false;
	bool target_categorical = false;
	uint64_t seed = 0;
	double test_size = 0;
	bool drop_nonfinite = false;
	int sample_k = 0;  // rows kept per split for MAE (0: none)
	// only rows whose draw is below tau (per split) are candidates: with tau set from the
	// expected row count, each group's sample holds its share rather than sample_k rows
	double tau_train = 1, tau_test = 1;
	int block = 256;   // rows folded into the moments at a time
	std::vector<uint8_t> categorical; // per feature
	int k = 0;                        // numeric features

	std::vector<double> encode() const;
	static Params decode(const double *p, size_t n); // throws InvalidParameter when malformed
};

// One row as the transition function sees it: the target and the features (agg_state.hpp).
struct Row : aggstate::Features {
	bool target_null = true;
	double target = 0;
	const char *target_str = nullptr;
	size_t target_len = 0;
};

// The shape of a state: everything its length depends on.
struct Shape {
	int nfeat = 0, k = 0;
	bool has_target = false;
	int q = 0; // slots
	int block = 0, cap = 0, sample_k = 0;
	size_t length() const;
};

// A decoded state, for the trainer: pending rows folded in.
struct Decoded {
	Shape shape;
	std::vector<int> indicator; // per numeric column: its slot, or -1
	std::vector<int64_t> nulls;
	std::vector<double> min, max;
	Moments train, test;
	int64_t rows_in = 0, skipped_null_target = 0, dropped_nonfinite = 0;
	int nonfinite_column = -1; // first column (nfeat: the target) with a non-finite value, unless dropped
	bool nonfinite_nan = false;
	uint64_t fingerprint = 0;
	// MAE samples: rows of k numeric values (NaN for NULL) followed by the target
	std::vector<double> sample_train, sample_test;
	std::vector<double> sample_train_u, sample_test_u; // each sample row's draw
	size_t sample_train_rows = 0, sample_test_rows = 0;
};

Shape initial_shape(const Params &p);
// Writes an empty state of shape s into buf (s.length() doubles).
void init(double *buf, const Shape &s);
// Reads and checks a state's shape (throws DataCorrupted if the buffer is not one).
Shape shape_of(const double *buf, size_t len);

// Adds a row. Returns 0 when done, or the length the state must be grown to first; then
// *need is the shape to pass to relayout(). A row with a non-finite value is dropped and
// counted; unless params.drop_nonfinite, decode() names the first such column so that the
// trainer can raise the error the row reader raises.
// s must be shape_of(buf, len) (callers check a state once, then keep its shape).
size_t add_row(double *buf, const Shape &s, const Params &p, const Row &row, Shape *need);
// Copies state `from` into `to` (of shape s, at least as wide in every respect).
void relayout(const double *from, size_t from_len, double *to, const Shape &s);
// The shape a state must have to absorb `other` (combine).
Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen);
// Adds state b into state a (a must have merged_shape(a, b)); b is not modified.
void merge(double *a, size_t alen, const double *b, size_t blen);
Decoded decode(const double *buf, size_t len);

// The state's grow protocol (agg_state.hpp).
extern const aggstate::Kind kKind;
using State = aggstate::Protocol<kKind, Shape, init, shape_of, relayout, merged_shape, merge>;

} // namespace pgml::stats
