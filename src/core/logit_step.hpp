// pg_ml core: one Newton step of binary logistic regression as an aggregate (ml.logit_step),
// and the fit that drives it.
//
// ml_train fits a binary logistic_regression (penalty l2, a fresh fit) without reading its
// rows into memory:
//   1. the class statistics query (trainer_classes.cpp) gives the classes, the stratified
//      split and the training rows' moments, hence the preprocessing;
//   2. each Newton step is one aggregate query over the whole relation,
//        SELECT ml.logit_step($params, $model, $classes, <draw>, <cut>, <row>) FROM relation
//      with the coefficients in scaled space as the Params below and the model blob for the
//      preprocessing (the row's feature vector x, z = (x - center) / scale). Its state, a
//      float8[] of fixed size updated in place, holds over the training rows the log loss, the
//      gradient and the (p+1) x (p+1) Hessian (upper triangle) of the unpenalized log
//      likelihood at those coefficients; states of parallel workers add up;
//   3. the Fit adds the L2 penalty (sklearn's: ||w||^2 / (2C), the intercept not penalised)
//      and takes the Newton step; a step that raises the objective is halved (one more scan
//      each); it stops when the step is below kStepTol (the coefficients then are the optimum
//      to about the square of that, 1e-8: quadratic convergence), or when the error the last
//      two steps predict after this one (|step|^3 / |previous step|^2, quadratic convergence
//      with the constant they show) is below kPredictedError, or after max_iter scans.
//   The first steps may run on page samples of the relation (TABLESAMPLE SYSTEM, tables and
//   materialized views of more than kSampleRows / kMaxFirstSampleFraction training rows): their
//   sums scaled to the training rows, until the step is below kSampleStepTol, on about
//   kSampleRows rows, then on ten times as many while that is at most kMaxSampleFraction of
//   the relation. The full scans then start near the optimum and take two or three steps. The sample only moves the start: the
//   model is the optimum over every training row whichever pages the sample held.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <Eigen/Dense>

#include "agg_state.hpp"
#include "optimize.hpp"

namespace pgml::logit_step {

constexpr double kStepTol = 1e-4;    // Newton step (max norm, relative to max(1, |beta|)) that ends the fit
constexpr double kSampleStepTol = 1e-3; // the same for the start on a sample
constexpr int kMaxSampleScans = 10;  // Newton scans of one sample at most
constexpr double kSampleGrowth = 10; // each rung of samples is this much larger than the last
constexpr double kSampleRows = 20000; // rows the start is fitted on (a page sample of about this many)
constexpr double kMaxSampleFraction = 0.05; // a larger rung is not worth its scans (a sampled scan is serial)
constexpr double kMaxFirstSampleFraction = 0.2; // the first rung: the start on a sample at all
constexpr double kPredictedError = 1e-10; // the error quadratic convergence predicts after a step that ends the fit
constexpr int64_t kMinSampleRows = 1000; // a sample with fewer training rows is not used
constexpr int kMaxScans = 100;       // Newton scans at most (max_iter caps it too)
constexpr int kMaxHalvings = 30;     // step halvings in a row at most

// The first argument of ml.logit_step: the coefficients in scaled space.
struct Params {
	int p = 0;
	Eigen::VectorXd w; // p
	double b = 0;
	std::vector<double> encode() const;
	static Params decode(const double *v, size_t n); // throws InvalidParameter when malformed
};

// The shape of a state: fixed by p.
struct Shape {
	int p = 0;
	size_t length() const;
};

// The sums of one scan (a decoded state), over the training rows.
struct Sums {
	int p = 0;
	int64_t rows = 0;
	double loss = 0;      // sum of log(1 + e^eta) - y eta
	Eigen::VectorXd grad; // p + 1 (the intercept last): sum of (sigmoid(eta) - y) [z, 1]
	Eigen::MatrixXd hess; // (p + 1) x (p + 1): sum of s (1 - s) [z, 1][z, 1]'
};

// Adds one training row (z: its p scaled features; y: 0 or 1) at the coefficients of params.
void add_row(double *state, size_t len, const Params &params, const double *z, int y);

void init(double *state, const Shape &s);
Shape shape_of(const double *state, size_t len); // checks header, length and counters (throws DataCorrupted)
void relayout(const double *from, size_t from_len, double *to, const Shape &s);
Shape merged_shape(const double *a, size_t alen, const double *b, size_t blen);
void merge(double *a, size_t alen, const double *b, size_t blen);
Sums decode(const double *state, size_t len);

extern const aggstate::Kind kKind;
using State = aggstate::Protocol<kKind, Shape, init, shape_of, relayout, merged_shape, merge>;

// The Newton fit through the step aggregate.
class Fit {
  public:
	// p: scaled features; C: the L2 penalty's C (infinity: none); max_iter: the hyperparameter;
	// prior: the training rows' share of class 1 (the starting intercept is its log odds).
	Fit(int p, double C, int max_iter, double prior);
	bool done() const { return done_; }
	const Params &params() const { return cur_; }
	// Starts on a sample of `fraction` of the relation's pages (of rows training rows in all)
	// before the full scans; call before the first add().
	void start_on_sample(double fraction, int64_t rows);
	// The fraction of the relation the next scan reads (1: every row).
	double fraction() const { return sampling_ ? fraction_ : 1.0; }
	// One scan's sums at params(); moves on (or finishes). Throws DataException on a
	// non-finite Hessian or a row count that changed between scans.
	void add(const Sums &s, ProgressCallback progress);
	int scans() const { return scans_; }            // full scans
	int sample_scans() const { return sample_scans_; }
	bool converged() const { return converged_; }
	const std::vector<IterationLog> &log() const { return log_; }

  private:
	int p_;
	double C_;
	int max_scans_;
	Params cur_, base_;                 // the coefficients scanned next, the last accepted ones
	Eigen::VectorXd step_;              // the step from base_ (halved while rejected)
	double prev_step_ = 0;              // the max norm of the last full step before it (0: none)
	bool have_base_ = false;
	double base_obj_ = 0;
	int64_t rows_ = -1;
	int scans_ = 0, halvings_ = 0, sample_scans_ = 0, level_scans_ = 0;
	bool sampling_ = false;
	double fraction_ = 1;
	int64_t full_rows_ = 0;
	Params start_;                      // the start without the sample
	void end_sample();
	// Accepts or halves; the next coefficients. tol: the step that ends this phase.
	bool newton(const Sums &s, double scale, double tol, ProgressCallback progress);
	bool done_ = false, converged_ = false;
	std::vector<IterationLog> log_;
};

} // namespace pgml::logit_step
