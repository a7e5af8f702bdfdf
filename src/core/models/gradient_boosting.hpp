// pg_ml core: gradient boosted trees through libxgboost's C API (xgboost >= 1.7).
//
// Regression uses reg:squarederror, classification binary:logistic (K == 2) or
// multi:softprob (K > 2), always with tree_method 'hist'. Training runs one boosting round
// at a time so it can be cancelled and logged between rounds. The fitted model is stored as
// xgboost's own JSON model text behind a small header of ours (with a CRC-32). Reading checks
// the CRC, parses and validates the JSON itself (xgboost 1.7 crashes or loops on crafted model
// files), then loads it into a booster, so any bad model is an Error(DataCorrupted) at read time.
//
// xgboost runs OpenMP threads that outlive the call that starts them and inherit the signal
// mask of the thread that creates them: every xgboost call is made with all signals blocked,
// so a PostgreSQL backend's signal handlers only ever run on the backend's own thread.
//
// Link with -lxgboost (Debian package libxgboost-dev).
#pragma once

#include <memory>
#include <vector>

#include "estimator.hpp"

namespace pgml {

// Hyperparameters (xgboost names, sklearn-wrapper defaults).
std::vector<ParamSpec> gradient_boosting_params();

// Fits boosted trees on in.X / in.y (regression or classification).
std::unique_ptr<Estimator> fit_gradient_boosting(const FitInput &in, const Params &params);

// Reads an estimator written by GradientBoosting::write; throws Error(DataCorrupted) on any
// malformed or inconsistent input, including a model buffer xgboost refuses.
std::unique_ptr<Estimator> read_gradient_boosting(Reader &r, const EstimatorShape &shape);

} // namespace pgml
