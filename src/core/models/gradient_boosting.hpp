// pg_ml core: gradient boosted trees through libxgboost's C API (xgboost >= 1.7).
//
// Regression uses reg:squarederror, classification binary:logistic (K == 2) or
// multi:softprob (K > 2), always with tree_method 'hist'. Training runs one boosting round
// at a time so it can be cancelled and logged between rounds. The fitted model is stored as
// xgboost's own JSON model text behind a small header of ours (with a CRC-32). Reading checks
// the CRC, parses and validates the JSON itself (xgboost 1.7 crashes or loops on crafted model
// files), then loads it into a booster, so any bad model is an Error(DataCorrupted) at read time.
//
// Missing numbers: the features hold NaN (xgboost's missing value) for a NULL, and every split
// learns its default direction; models written before (format 1) were fitted on imputed values
// and keep getting them.
//
// Cancellation latency (measured on this 2-core machine, 1M rows x 10 features, hist, max_bin
// 256, depth 6): building the DMatrix takes about 1 s and the first round about 3.5-3.9 s (it
// builds xgboost's quantile sketch and histogram index); later rounds 0.1-0.2 s. Cancellation is
// polled between rounds, so a cancel waits for at most the first round: about 0.4 us per
// training row-feature (e.g. 40 s for 10M rows x 10 features). nthread = 2 did not shorten it
// on a loaded machine (3.55 s). Making that interruptible would mean building the matrix as an
// XGQuantileDMatrix from a batch callback that polls between batches (not done yet).
//
// xgboost runs OpenMP threads that outlive the call that starts them and inherit the signal
// mask of the thread that creates them: every xgboost call is made with all signals blocked,
// so a PostgreSQL backend's signal handlers only ever run on the backend's own thread.
//
// Link with -lxgboost (Debian package libxgboost-dev).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "estimator.hpp"

namespace pgml {

// Hyperparameters (xgboost names, sklearn-wrapper defaults).
std::vector<ParamSpec> gradient_boosting_params();

// Whether an xgboost error message reports a failed allocation (its C API turns a
// std::bad_alloc into the exception's text; its allocators say "Memory allocation error" or
// "out of memory"): such failures are Error(OutOfMemory), 53200, not internal errors.
bool xgb_out_of_memory(const std::string &error);

// How a gradient boosting estimator's flattened trees predict: -1 they do not (libxgboost
// does), 0 walked node by node, D > 0 as complete trees of depth D.
int gradient_boosting_flat_layout(const Estimator &e);

// Fits boosted trees on in.X / in.y (regression or classification).
std::unique_ptr<Estimator> fit_gradient_boosting(const FitInput &in, const Params &params);

// Reads an estimator written by GradientBoosting::write; throws Error(DataCorrupted) on any
// malformed or inconsistent input, including a model buffer xgboost refuses.
std::unique_ptr<Estimator> read_gradient_boosting(Reader &r, const EstimatorShape &shape);

} // namespace pgml
