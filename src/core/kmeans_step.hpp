// pg_ml core: one Lloyd step of k-means as an aggregate (ml.kmeans_step), and the fit that
// drives it.
//
// ml_train fits kmeans on a relation without reading its rows into memory:
//   1. ml.train_stats (stats_state.hpp) gives the preprocessing statistics and a deterministic
//      bottom-k sample of the training rows (kInitSampleRows);
//   2. k-means++ and n_init Lloyd runs on the preprocessed sample give the starting centres;
//   3. each Lloyd step is one aggregate query over the whole relation,
//        SELECT ml.kmeans_step($1, $2, <feature arrays>) FROM relation
//      with $1 the Params below (the centres in scaled space and each column's preprocessing)
//      and $2 the kept levels of the categorical columns. Its state, a float8[] updated in
//      place, holds per cluster the training rows' count and feature sums, and the inertia
//      of the training and of the held-out rows; states of parallel workers add up.
//   The steps are over-relaxed (C + omega (means - C), omega from 1 up to kMaxOmega while the
//   inertia keeps falling; a step that raises it is replaced by the plain Lloyd step, which
//   cannot): on data without clear clusters, where Lloyd creeps, this gets further per scan.
//   They stop when the plain step's squared centre shift is at most tol * (mean feature
//   variance) (sklearn's rule), when the centres repeat (the labels did not change), or after min(max_iter, kMaxUpdates)
//   scans; the last scan labels the rows with the final centres (a plain Lloyd step), so the
//   reported inertia and the stored counts are exact. At most kMaxUpdates + 1 scans after the
//   statistics scan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <Eigen/Dense>

#include "agg_state.hpp"
#include "optimize.hpp"
#include "preprocess.hpp"

namespace pgml::kmeans_step {

constexpr int kInitSampleRows = 50000; // rows of the statistics sample the starting centres are fitted on
constexpr int kMaxUpdates = 30;         // Lloyd updates over the whole relation (each one scan)
constexpr double kOmegaStep = 0.25;     // over-relaxation: omega grows by this per accepted step
constexpr double kMaxOmega = 2.0;       // up to this

// The first argument of ml.kmeans_step (a float8[] the trainer writes).
struct Params {
	struct Column {
		bool categorical = false;
		int first_feature = 0;
		double impute = 0;      // numeric: the value of a NULL
		int nlevels = 0;        // categorical: kept levels, features first_feature ..
		int null_feature = -1;  // categorical: the feature of NULL, or -1
	};
	uint64_t seed = 0;   // the split's seed (53 bits, as ml.train_stats)
	double test_size = 0;
	int p = 0;           // features
	int k = 0;           // clusters
	std::vector<Column> columns;
	std::vector<double> center, scale; // p each: z = (x - center) / scale
	Eigen::MatrixXd centres;           // k x p, scaled space

	std::vector<double> encode() const;
	static Params decode(const double *v, size_t n); // throws InvalidParameter when malformed
	int total_levels() const;
};

// One row as the transition function sees it (agg_state.hpp), per column.
using Row = aggstate::Features;

// The shape of a state: it never grows (per cluster a count and p feature sums).
struct Shape {
	int k = 0, p = 0;
	size_t length() const;
};

// The sums of one scan (a decoded state).
struct Sums {
	int k = 0, p = 0;
	int64_t rows_train = 0, rows_test = 0, dropped_nonfinite = 0;
	double inertia_train = 0, inertia_test = 0;
	Eigen::VectorXd counts; // k, training rows per cluster
	Eigen::MatrixXd sums;   // k x p, their scaled feature sums
};

// Params plus the level lookup, built once per aggregate call site.
class Step {
  public:
	// levels: the kept levels of the categorical columns, column after column (InvalidParameter
	// when they do not match the parameters).
	Step(Params params, const std::vector<std::string> &levels);
	const Params &params() const { return p_; }
	Shape shape() const { return {p_.k, p_.p}; }
	size_t state_length() const { return shape().length(); }
	void init(double *state) const; // a fresh state
	// Adds a row: its split from the row hash (as the row reader), its scaled features, its
	// nearest centre. A row with a non-finite number is counted and skipped.
	void add_row(double *state, size_t len, const Row &row);

  private:
	Params p_;
	std::vector<std::string> level_store_;
	std::vector<std::unordered_map<std::string_view, int>> level_index_; // per column
	std::vector<double> base_; // the scaled features of an all-zero x
	std::vector<double> z_;    // scratch
};

// The state protocol of agg_state.hpp (relayout only copies: the shape is fixed).
void init(double *state, const Shape &s);
Shape shape_of(const double *state, size_t len); // checks the header, length and counts (throws DataCorrupted)
void relayout(const double *from, size_t from_len, double *to, const Shape &s);
Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen); // same k and p
// Adds state b into a (same k and p).
void merge(double *a, size_t alen, const double *b, size_t blen);
Sums decode(const double *state, size_t len);

extern const aggstate::Kind kKind;
using State = aggstate::Protocol<kKind, Shape, init, shape_of, relayout, merged_shape, merge>;

// The fit through the step aggregate: the trainer starts it on the sample-fitted centres and
// feeds it each scan's sums until done().
class Fit {
  public:
	// prep: the fitted preprocessing; features: the input columns; centres: the starting centres
	// (scaled); tol_abs: sklearn's tolerance in scaled units; max_iter: the hyperparameter.
	Fit(Preprocessor prep, const std::vector<ColumnInfo> &features, Eigen::MatrixXd centres, double tol_abs,
	    int max_iter, uint64_t seed, double test_size);
	bool done() const { return done_; }
	// The next scan's arguments.
	std::vector<double> params() const { return step_.encode(); }
	const std::vector<std::string> &levels() const { return levels_; }
	// One scan's sums under the current centres; moves on (or finishes).
	void add(const Sums &s, ProgressCallback progress);

	const Preprocessor &prep() const { return prep_; }
	const Eigen::MatrixXd &centres() const { return step_.centres; }
	const Sums &last() const { return last_; } // the final scan (under centres())
	const std::vector<IterationLog> &log() const { return log_; }
	int scans() const { return scans_; }
	bool converged() const { return converged_; }

  private:
	Preprocessor prep_;
	Params step_;
	std::vector<std::string> levels_;
	double tol_abs_;
	int max_updates_;
	int scans_ = 0;
	bool final_scan_ = false, done_ = false, converged_ = false;
	bool accepted_ = false;          // a scan was accepted: its inertia and the means of its clusters
	double accepted_inertia_ = 0;
	Eigen::MatrixXd accepted_means_;
	double omega_ = 1;               // over-relaxation of the next step
	Sums last_;
	std::vector<IterationLog> log_;
};

} // namespace pgml::kmeans_step
