// gradient_boosting (libxgboost): hand-computable one-round trees, accuracy on easy data,
// determinism, early stopping, continued training, serialization (round trip, truncation,
// corruption, inconsistent xgboost models), cancellation, signal masks, hyperparameter specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <pthread.h>
#include <random>
#include <set>
#include <unistd.h>
#include <string>
#include <vector>

#include "common.hpp"
#include "estimator.hpp"
#include "models/gradient_boosting.hpp"
#include "serialize.hpp"

#include <xgboost/c_api.h>

using Eigen::MatrixXd;
using Eigen::VectorXd;
using namespace pgml;

namespace {

// Validated defaults with some values overridden.
Params params_with(const std::map<std::string, double> &over = {})
{
	Params p;
	for (const ParamSpec &s : gradient_boosting_params())
		p.set_num(s.name, s.def);
	for (const auto &[k, v] : over)
		p.set_num(k, v);
	return p;
}

FitInput input(const MatrixXd &X, const VectorXd &y, Task task, int K = 0, int threads = 1)
{
	FitInput in;
	in.X = &X;
	in.y = &y;
	in.task = task;
	in.n_classes = K;
	in.seed = 7;
	in.threads = threads;
	return in;
}

// y = 2 x0 - x1 + noise, plus two pure-noise features.
void regression_data(int n, uint64_t seed, MatrixXd &X, VectorXd &y, double noise = 0.1)
{
	std::mt19937_64 rng(seed);
	std::normal_distribution<double> N;
	X.resize(n, 4);
	y.resize(n);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 4; j++)
			X(i, j) = N(rng);
		y(i) = 2 * X(i, 0) - X(i, 1) + noise * N(rng);
	}
}

// Three Gaussian clusters in 2-D plus one noise feature.
void three_class_data(int n, uint64_t seed, MatrixXd &X, VectorXd &y)
{
	std::mt19937_64 rng(seed);
	std::normal_distribution<double> N;
	const double cx[] = {0, 4, -4}, cy[] = {4, -2, -2};
	X.resize(n, 3);
	y.resize(n);
	for (int i = 0; i < n; i++) {
		int k = i % 3;
		X(i, 0) = cx[k] + N(rng);
		X(i, 1) = cy[k] + N(rng);
		X(i, 2) = N(rng);
		y(i) = k;
	}
}

std::vector<uint8_t> to_bytes(const Estimator &e)
{
	Writer w;
	e.write(w);
	return w.bytes();
}

std::unique_ptr<Estimator> from_bytes(const std::vector<uint8_t> &b, const EstimatorShape &shape)
{
	Reader r(b.data(), b.size());
	return read_gradient_boosting(r, shape);
}

// Predictions (all outputs) for every row.
std::vector<double> predict_all(const Estimator &e, const MatrixXd &X, int width)
{
	std::vector<double> out;
	std::vector<double> o(static_cast<size_t>(width));
	for (Eigen::Index i = 0; i < X.rows(); i++) {
		Eigen::VectorXd z = X.row(i).transpose();
		int c = e.predict(z.data(), o.data());
		out.insert(out.end(), o.begin(), o.end());
		out.push_back(c);
	}
	return out;
}

bool always_cancel() { return true; }

int g_calls = 0;
bool cancel_on_third_call() { return ++g_calls >= 3; }

// Fits; the fit must end with Error(Cancelled).
void expect_cancelled(const FitInput &in, const Params &hp)
{
	try {
		fit_gradient_boosting(in, hp);
		ADD_FAILURE() << "not cancelled";
	} catch (const Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::Cancelled) << e.what() << ": " << e.detail();
	}
}

// The SigBlk mask of every thread of this process except the calling one.
std::vector<std::string> other_thread_masks()
{
	std::vector<std::string> masks;
	DIR *d = opendir("/proc/self/task");
	if (d == nullptr)
		return masks;
	std::string self = std::to_string(gettid());
	while (dirent *e = readdir(d)) {
		if (e->d_name[0] == '.' || self == e->d_name)
			continue;
		std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/status");
		std::string line;
		while (std::getline(f, line))
			if (line.rfind("SigBlk:", 0) == 0)
				masks.push_back(line.substr(7));
	}
	closedir(d);
	return masks;
}

} // namespace

TEST(GradientBoosting, ParamSpecsSane)
{
	std::set<std::string> names;
	for (const ParamSpec &s : gradient_boosting_params()) {
		EXPECT_TRUE(names.insert(s.name).second) << s.name;
		ASSERT_NE(s.kind, ParamSpec::Kind::Choice);
		EXPECT_LE(s.min, s.def) << s.name;
		EXPECT_LE(s.def, s.max) << s.name;
		if (s.min_exclusive) {
			EXPECT_LT(s.min, s.def) << s.name;
		}
		if (s.kind == ParamSpec::Kind::Int) {
			EXPECT_EQ(s.def, std::floor(s.def)) << s.name;
		}
	}
	for (const char *n : {"n_estimators", "learning_rate", "max_depth", "min_child_weight", "subsample",
	                      "colsample_bytree", "reg_lambda", "reg_alpha", "gamma", "max_bin", "early_stopping_rounds",
	                      "validation_fraction"})
		EXPECT_EQ(names.count(n), 1u) << n;
	Params p = params_with();
	EXPECT_EQ(p.integer("n_estimators"), 100);
	EXPECT_DOUBLE_EQ(p.num("learning_rate"), 0.3);
	EXPECT_EQ(p.integer("max_depth"), 6);
	EXPECT_EQ(p.integer("max_bin"), 256);
	EXPECT_EQ(p.integer("early_stopping_rounds"), 0);
}

// One stump with eta 1 on a step function: each leaf is -G/(H+lambda) from base_score 0.5.
TEST(GradientBoosting, OneRoundRegressionKnownAnswer)
{
	MatrixXd X(20, 1);
	VectorXd y(20);
	for (int i = 0; i < 20; i++) {
		X(i, 0) = i < 10 ? -1.0 - 0.1 * i : 1.0 + 0.1 * i;
		y(i) = i < 10 ? 0.0 : 10.0;
	}
	double z[1], out[1];
	for (double lambda : {0.0, 1.0}) {
		auto e = fit_gradient_boosting(input(X, y, Task::Regression),
		                               params_with({{"n_estimators", 1}, {"learning_rate", 1}, {"max_depth", 1},
		                                            {"reg_lambda", lambda}}));
		// leaf = sum(y - 0.5) / (n_leaf + lambda), n_leaf = 10
		z[0] = -1.5; // the split lies between the largest x on the left and the smallest on the right
		EXPECT_EQ(e->predict(z, out), 0);
		EXPECT_NEAR(out[0], 0.5 + 10 * (0.0 - 0.5) / (10 + lambda), 1e-5);
		z[0] = 2.5;
		e->predict(z, out);
		EXPECT_NEAR(out[0], 0.5 + 10 * (10.0 - 0.5) / (10 + lambda), 1e-5);
		Eigen::VectorXd imp = e->importance();
		ASSERT_EQ(imp.size(), 1);
		EXPECT_DOUBLE_EQ(imp(0), 1.0);
		EXPECT_STREQ(e->importance_kind(), "gain");
	}
}

// Binary logistic from margin 0: g = 0.5 - y, h = 0.25, so a pure leaf of positives gets
// w = 0.5 n / (0.25 n) = 2 and probability sigmoid(2); negatives sigmoid(-2).
TEST(GradientBoosting, OneRoundBinaryKnownAnswer)
{
	MatrixXd X(40, 2);
	VectorXd y(40);
	for (int i = 0; i < 40; i++) {
		X(i, 0) = (i % 2 ? 1.0 : -1.0) * (1 + 0.01 * i);
		X(i, 1) = std::sin(i);
		y(i) = i % 2;
	}
	auto e = fit_gradient_boosting(input(X, y, Task::Classification, 2),
	                               params_with({{"n_estimators", 1}, {"learning_rate", 1}, {"max_depth", 1},
	                                            {"reg_lambda", 0}}));
	double z[2] = {2.0, 0.0}, out[2];
	EXPECT_EQ(e->predict(z, out), 1);
	EXPECT_NEAR(out[1], 1 / (1 + std::exp(-2.0)), 1e-6);
	EXPECT_NEAR(out[0] + out[1], 1.0, 1e-12);
	z[0] = -2.0;
	EXPECT_EQ(e->predict(z, out), 0);
	EXPECT_NEAR(out[1], 1 / (1 + std::exp(2.0)), 1e-6);
	EXPECT_EQ(e->importance()(0), 1.0);
	EXPECT_EQ(e->importance()(1), 0.0);
}

TEST(GradientBoosting, RegressionFitsAndLogs)
{
	MatrixXd X, Xt;
	VectorXd y, yt;
	regression_data(400, 1, X, y);
	regression_data(200, 2, Xt, yt);
	std::vector<IterationLog> log;
	FitInput in = input(X, y, Task::Regression);
	in.log = &log;
	auto e = fit_gradient_boosting(in, params_with({{"n_estimators", 50}}));
	// the training loss of round 1, every 2nd round (50 rounds / 25 logged) and the last
	ASSERT_EQ(log.size(), 26u);
	EXPECT_EQ(log.front().iteration, 1);
	EXPECT_EQ(log[1].iteration, 2);
	EXPECT_EQ(log[2].iteration, 4);
	EXPECT_EQ(log.back().iteration, 50);
	EXPECT_LT(log.back().loss, log.front().loss);
	EXPECT_TRUE(std::isnan(log.back().valid));
	{ // the logged loss is the rmse of the fitted model on its training rows
		double se = 0, o[1];
		for (int i = 0; i < X.rows(); i++) {
			VectorXd z = X.row(i).transpose();
			e->predict(z.data(), o);
			se += (o[0] - y(i)) * (o[0] - y(i));
		}
		EXPECT_NEAR(log.back().loss, std::sqrt(se / static_cast<double>(X.rows())), 1e-5);
	}
	double sse = 0, sst = 0, mean = yt.mean(), out[1];
	for (int i = 0; i < Xt.rows(); i++) {
		VectorXd z = Xt.row(i).transpose();
		e->predict(z.data(), out);
		sse += (out[0] - yt(i)) * (out[0] - yt(i));
		sst += (yt(i) - mean) * (yt(i) - mean);
	}
	EXPECT_GT(1 - sse / sst, 0.9);
	VectorXd imp = e->importance();
	EXPECT_NEAR(imp.sum(), 1.0, 1e-9);
	EXPECT_GT(imp(0), imp(1));
	EXPECT_GT(imp(1), imp(2) + imp(3));
}

TEST(GradientBoosting, MulticlassProbabilities)
{
	MatrixXd X, Xt;
	VectorXd y, yt;
	three_class_data(300, 3, X, y);
	three_class_data(150, 4, Xt, yt);
	std::vector<IterationLog> log;
	FitInput in = input(X, y, Task::Classification, 3, 2);
	in.log = &log;
	auto e = fit_gradient_boosting(in, params_with({{"n_estimators", 30}}));
	int correct = 0;
	double out[3];
	{ // the logged loss is the multiclass log loss of the fitted model on its training rows
		double ll = 0;
		for (int i = 0; i < X.rows(); i++) {
			VectorXd z = X.row(i).transpose();
			e->predict(z.data(), out);
			ll -= std::log(std::max(out[static_cast<int>(y(i))], 1e-16));
		}
		ASSERT_FALSE(log.empty());
		EXPECT_NEAR(log.back().loss, ll / static_cast<double>(X.rows()), 1e-5);
	}
	for (int i = 0; i < Xt.rows(); i++) {
		VectorXd z = Xt.row(i).transpose();
		int c = e->predict(z.data(), out);
		EXPECT_NEAR(out[0] + out[1] + out[2], 1.0, 1e-9);
		EXPECT_GE(out[c], out[(c + 1) % 3]);
		EXPECT_GE(out[c], out[(c + 2) % 3]);
		correct += c == static_cast<int>(yt(i));
	}
	EXPECT_GE(correct, 140);
}

TEST(GradientBoosting, DeterministicForSeed)
{
	MatrixXd X;
	VectorXd y;
	three_class_data(300, 5, X, y);
	Params p = params_with({{"n_estimators", 20}, {"subsample", 0.7}, {"colsample_bytree", 0.6}});
	FitInput in = input(X, y, Task::Classification, 3, 2);
	auto a = fit_gradient_boosting(in, p);
	// something else xgboost-random in between must not matter
	fit_gradient_boosting(input(X, y, Task::Classification, 3, 1), p);
	auto b = fit_gradient_boosting(in, p);
	EXPECT_EQ(predict_all(*a, X, 3), predict_all(*b, X, 3));
	EXPECT_EQ(to_bytes(*a), to_bytes(*b));
	in.seed = 8;
	auto c = fit_gradient_boosting(in, p);
	EXPECT_NE(to_bytes(*a), to_bytes(*c));
}

TEST(GradientBoosting, EarlyStoppingKeepsBestRound)
{
	MatrixXd X;
	VectorXd y;
	regression_data(300, 6, X, y, 3.0); // noisy: the validation loss turns up early
	std::vector<IterationLog> log;
	FitInput in = input(X, y, Task::Regression);
	in.log = &log;
	auto e = fit_gradient_boosting(in, params_with({{"n_estimators", 500}, {"early_stopping_rounds", 5},
	                                                {"validation_fraction", 0.2}}));
	ASSERT_LT(log.size(), 500u);
	// the best round is the minimum of the validation losses, and it is followed by 5 worse ones
	size_t best = 0;
	for (size_t i = 0; i < log.size(); i++) {
		ASSERT_FALSE(std::isnan(log[i].valid));
		if (log[i].valid < log[best].valid)
			best = i;
	}
	EXPECT_EQ(best + 1 + 5, log.size());
	// the stored model has the rounds up to the best one: a round trip keeps them
	std::vector<uint8_t> bytes = to_bytes(*e);
	Reader r(bytes.data(), bytes.size());
	r.u16();
	r.u8();
	r.u32();
	r.u32();
	EXPECT_EQ(r.u32(), best + 1);     // rounds
	EXPECT_EQ(r.u32(), best);         // best_iteration
	// given validation rows are used instead of a split
	MatrixXd Xv;
	VectorXd yv;
	regression_data(100, 7, Xv, yv, 3.0);
	log.clear();
	in.X_valid = &Xv;
	in.y_valid = &yv;
	fit_gradient_boosting(in, params_with({{"n_estimators", 500}, {"early_stopping_rounds", 5}}));
	EXPECT_LT(log.size(), 500u);
	EXPECT_FALSE(std::isnan(log.back().valid));
}

TEST(GradientBoosting, TooFewRowsForEarlyStopping)
{
	MatrixXd X(1, 1);
	X(0, 0) = 1;
	VectorXd y(1);
	y(0) = 1;
	try {
		fit_gradient_boosting(input(X, y, Task::Regression), params_with({{"early_stopping_rounds", 3}}));
		FAIL();
	} catch (const Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::DataException);
	}
}

TEST(GradientBoosting, ContinueFit)
{
	MatrixXd X, X2;
	VectorXd y, y2;
	regression_data(300, 8, X, y);
	regression_data(300, 9, X2, y2);
	auto e = fit_gradient_boosting(input(X, y, Task::Regression), params_with({{"n_estimators", 10}}));
	ASSERT_TRUE(e->can_continue());
	// 10 + 10 rounds on the same rows = 20 rounds at once (continuing adds retrain_rounds)
	e->continue_fit(input(X, y, Task::Regression), params_with({{"n_estimators", 10}, {"retrain_rounds", 10}}));
	auto twenty = fit_gradient_boosting(input(X, y, Task::Regression), params_with({{"n_estimators", 20}}));
	std::vector<double> a = predict_all(*e, X2, 1), b = predict_all(*twenty, X2, 1);
	for (size_t i = 0; i < a.size(); i++)
		EXPECT_NEAR(a[i], b[i], 1e-5);
	// on new rows, with a log numbering rounds on from the stored ones
	std::vector<IterationLog> log;
	FitInput in2 = input(X2, y2, Task::Regression);
	in2.log = &log;
	e->continue_fit(in2, params_with({{"retrain_rounds", 5}}));
	ASSERT_EQ(log.size(), 5u);
	EXPECT_EQ(log.front().iteration, 21);
	EXPECT_NE(predict_all(*e, X2, 1), a);
	// the continued model survives a round trip
	EstimatorShape shape{4, 0, Task::Regression};
	auto back = from_bytes(to_bytes(*e), shape);
	EXPECT_EQ(predict_all(*back, X2, 1), predict_all(*e, X2, 1));
	// a cancelled continuation leaves the model as it was
	std::vector<double> before = predict_all(*e, X2, 1);
	in2.cancel = always_cancel;
	EXPECT_THROW(e->continue_fit(in2, params_with({{"retrain_rounds", 5}})), Error);
	EXPECT_EQ(predict_all(*e, X2, 1), before);
	// wrong width
	MatrixXd X3 = X2.leftCols(3);
	EXPECT_THROW(e->continue_fit(input(X3, y2, Task::Regression), params_with()), Error);
}

// Each continuation adds retrain_rounds rounds (default 10), whatever n_estimators says; the
// estimator reports the total rounds and trees (one per class for more than two classes).
TEST(GradientBoosting, ContinueAddsRetrainRounds)
{
	MatrixXd X;
	VectorXd y;
	three_class_data(150, 10, X, y);
	auto e = fit_gradient_boosting(input(X, y, Task::Classification, 3), params_with({{"n_estimators", 30}}));
	auto counts = [&] {
		std::map<std::string, long long> m;
		for (const auto &[k, v] : e->report_counts())
			m[k] = v;
		return m;
	};
	EXPECT_EQ(counts()["total_rounds"], 30);
	EXPECT_EQ(counts()["trees"], 90);
	size_t bytes = to_bytes(*e).size();
	std::vector<IterationLog> log;
	FitInput in = input(X, y, Task::Classification, 3);
	in.log = &log;
	e->continue_fit(in, params_with({{"n_estimators", 30}})); // the default: 10 rounds
	EXPECT_EQ(log.size(), 10u);
	EXPECT_EQ(counts()["total_rounds"], 40);
	EXPECT_EQ(counts()["trees"], 120);
	e->continue_fit(in, params_with({{"retrain_rounds", 3}}));
	EXPECT_EQ(counts()["total_rounds"], 43);
	// the blob grows with the rounds (about a third of the 30-round blob per 10 rounds)
	size_t grown = to_bytes(*e).size();
	EXPECT_GT(grown, bytes);
	EXPECT_LT(grown, bytes * 43 / 30 + bytes / 10);
	// bounded and validated like every hyperparameter
	const pgml::AlgorithmDef &def = pgml::algorithm_def(pgml::Algorithm::GradientBoosting);
	for (double bad : {0.0, 10001.0, 2.5}) {
		pgml::Options o;
		o["retrain_rounds"] = pgml::OptionValue::of_number(bad);
		EXPECT_THROW(pgml::parse_params(def, o), Error) << bad;
	}
	EXPECT_EQ(pgml::parse_params(def, {}).integer("retrain_rounds"), 10);
}

TEST(GradientBoosting, RoundTrip)
{
	MatrixXd X;
	VectorXd y;
	three_class_data(150, 10, X, y);
	auto e = fit_gradient_boosting(input(X, y, Task::Classification, 3),
	                               params_with({{"n_estimators", 15}, {"early_stopping_rounds", 3}}));
	EstimatorShape shape{3, 3, Task::Classification};
	std::vector<uint8_t> bytes = to_bytes(*e);
	auto back = from_bytes(bytes, shape);
	EXPECT_EQ(predict_all(*back, X, 3), predict_all(*e, X, 3));
	EXPECT_EQ(back->importance(), e->importance());
	EXPECT_EQ(to_bytes(*back), bytes);
	// every hyperparameter away from its default still writes a model that reads back
	MatrixXd Xr;
	VectorXd yr;
	regression_data(300, 16, Xr, yr, 1.0);
	auto odd = fit_gradient_boosting(
		input(Xr, yr, Task::Regression, 0, 2),
		params_with({{"n_estimators", 20}, {"learning_rate", 0.5}, {"max_depth", 10}, {"min_child_weight", 3},
	                 {"subsample", 0.5}, {"colsample_bytree", 0.5}, {"reg_lambda", 0}, {"reg_alpha", 2}, {"gamma", 5},
	                 {"max_bin", 16}}));
	auto odd_back = from_bytes(to_bytes(*odd), EstimatorShape{4, 0, Task::Regression});
	EXPECT_EQ(predict_all(*odd_back, Xr, 1), predict_all(*odd, Xr, 1));
	// a shape that disagrees with the stored one
	for (EstimatorShape bad : {EstimatorShape{2, 3, Task::Classification}, EstimatorShape{3, 4, Task::Classification},
	                           EstimatorShape{3, 0, Task::Regression}}) {
		try {
			from_bytes(bytes, bad);
			FAIL();
		} catch (const Error &err) {
			EXPECT_EQ(err.code(), ErrorCode::DataCorrupted);
		}
	}
}

TEST(GradientBoosting, TruncationAndCorruptionThrow)
{
	MatrixXd X;
	VectorXd y;
	regression_data(100, 11, X, y);
	auto e = fit_gradient_boosting(input(X, y, Task::Regression),
	                               params_with({{"n_estimators", 3}, {"max_depth", 2}}));
	EstimatorShape shape{4, 0, Task::Regression};
	const std::vector<uint8_t> bytes = to_bytes(*e);
	for (size_t len = 0; len < bytes.size(); len++) {
		std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
		try {
			from_bytes(cut, shape);
			ADD_FAILURE() << "truncation to " << len << " bytes accepted";
		} catch (const Error &err) {
			EXPECT_EQ(err.code(), ErrorCode::DataCorrupted) << len;
		}
	}
	for (size_t i = 0; i < bytes.size(); i++) {
		for (uint8_t flip : {0x01, 0xFF}) {
			std::vector<uint8_t> bad = bytes;
			bad[i] ^= flip;
			try {
				from_bytes(bad, shape);
				ADD_FAILURE() << "corruption at byte " << i << " accepted";
			} catch (const Error &err) {
				EXPECT_EQ(err.code(), ErrorCode::DataCorrupted) << i;
			}
		}
	}
}

// Blobs with a valid checksum whose xgboost model is broken or disagrees with the header.
TEST(GradientBoosting, InconsistentModelsAreCorrupt)
{
	MatrixXd X;
	VectorXd y;
	regression_data(100, 12, X, y);
	auto reg = fit_gradient_boosting(input(X, y, Task::Regression), params_with({{"n_estimators", 4}}));
	VectorXd yb = (y.array() > 0).cast<double>();
	auto bin = fit_gradient_boosting(input(X, yb, Task::Classification, 2), params_with({{"n_estimators", 4}}));

	// re-encodes a header and a model buffer with a correct checksum
	auto encode = [](uint8_t task, uint32_t K, uint32_t p, uint32_t rounds, uint32_t best, const std::string &model) {
		Writer h;
		h.u16(1);
		h.u8(task);
		h.u32(K);
		h.u32(p);
		h.u32(rounds);
		h.u32(best);
		std::vector<uint8_t> crc_in = h.bytes();
		crc_in.insert(crc_in.end(), model.begin(), model.end());
		Writer w = h;
		w.str(model);
		w.u32(crc32(crc_in.data(), crc_in.size()));
		return w.bytes();
	};
	auto model_of = [](const Estimator &e) {
		std::vector<uint8_t> b = to_bytes(e);
		Reader r(b.data(), b.size());
		r.u16();
		r.u8();
		r.u32();
		r.u32();
		r.u32();
		r.u32();
		return r.str();
	};
	const std::string reg_model = model_of(*reg), bin_model = model_of(*bin);
	auto expect_corrupt = [](const std::vector<uint8_t> &b, EstimatorShape s, const char *what) {
		try {
			from_bytes(b, s);
			ADD_FAILURE() << what << " accepted";
		} catch (const Error &err) {
			EXPECT_EQ(err.code(), ErrorCode::DataCorrupted) << what;
		}
	};
	EstimatorShape rs{4, 0, Task::Regression}, bs{4, 2, Task::Classification}, ms{4, 3, Task::Classification};
	// sanity: the re-encoding itself is accepted
	EXPECT_NO_THROW(from_bytes(encode(0, 0, 4, 4, 3, reg_model), rs));
	expect_corrupt(encode(0, 0, 4, 4, 3, "not a model"), rs, "garbage");
	expect_corrupt(encode(0, 0, 4, 4, 3, ""), rs, "empty model");
	expect_corrupt(encode(0, 0, 4, 4, 3, reg_model.substr(0, reg_model.size() / 2)), rs, "half a model");
	expect_corrupt(encode(0, 0, 4, 5, 3, reg_model), rs, "wrong round count");
	expect_corrupt(encode(0, 0, 3, 4, 3, reg_model), EstimatorShape{3, 0, Task::Regression}, "wrong feature count");
	expect_corrupt(encode(1, 3, 4, 4, 3, bin_model), ms, "binary model as 3 classes");
	EXPECT_NO_THROW(from_bytes(encode(1, 2, 4, 4, 3, bin_model), bs));
	// crafted models xgboost 1.7 itself would loop on, read out of bounds with, or read differently
	auto edit = [&](const std::string &from, const std::string &to) {
		std::string m = reg_model;
		size_t at = m.find(from);
		EXPECT_NE(at, std::string::npos) << from;
		if (at != std::string::npos)
			m.replace(at, from.size(), to);
		return encode(0, 0, 4, 4, 3, m);
	};
	auto first_number_after = [&](const std::string &key, const std::string &to) {
		std::string m = reg_model;
		size_t at = m.find(key);
		EXPECT_NE(at, std::string::npos) << key;
		if (at != std::string::npos) {
			at += key.size();
			size_t end = m.find_first_of(",]", at);
			m.replace(at, end - at, to);
		}
		return encode(0, 0, 4, 4, 3, m);
	};
	expect_corrupt(first_number_after("\"left_children\":[", "0"), rs, "a root that is its own child");
	expect_corrupt(first_number_after("\"right_children\":[", "100000"), rs, "a child out of range");
	expect_corrupt(first_number_after("\"split_indices\":[", "4"), rs, "a split on feature p");
	expect_corrupt(first_number_after("\"split_type\":[", "1"), rs, "a categorical split");
	expect_corrupt(edit("\"num_target\":\"1\"", "\"num_target\":\"1\",\"num_target\":\"1\""), rs, "a duplicate key");
	expect_corrupt(edit("reg:squarederror", "reg:squarederro\\u0072"), rs, "an escaped string");
	expect_corrupt(edit("{\"learner\"", "[{\"learner\""), rs, "broken JSON");
	// xgboost's own model with bytes flipped (checksum recomputed): an error, never a crash
	int rejected = 0;
	for (size_t i = 0; i < reg_model.size(); i += 7) {
		std::string m = reg_model;
		m[i] = static_cast<char>(m[i] ^ 0x5A);
		try {
			from_bytes(encode(0, 0, 4, 4, 3, m), rs);
		} catch (const Error &err) {
			EXPECT_EQ(err.code(), ErrorCode::DataCorrupted);
			rejected++;
		}
	}
	EXPECT_GT(rejected, 0);
}

TEST(GradientBoosting, Cancellation)
{
	MatrixXd X;
	VectorXd y;
	regression_data(100, 13, X, y);
	FitInput in = input(X, y, Task::Regression);
	in.cancel = always_cancel;
	expect_cancelled(in, params_with());
	// cancelled between rounds (20 rounds: every one logged)
	std::vector<IterationLog> log;
	in.log = &log;
	in.cancel = cancel_on_third_call;
	g_calls = 0;
	expect_cancelled(in, params_with({{"n_estimators", 20}}));
	EXPECT_EQ(log.size(), 2u);
}

// The training matrix is built batch by batch (libxgboost's quantile matrix): a cancel while it
// is built (before the first round, which used to sketch the rows in one uncancellable call)
// stops the fit there.
TEST(GradientBoosting, CancelWhileBuildingTheMatrix)
{
	MatrixXd X;
	VectorXd y;
	regression_data(200000, 16, X, y); // four batches a pass
	FitInput in = input(X, y, Task::Regression, 0, 2);
	std::vector<IterationLog> log;
	in.log = &log;
	in.cancel = cancel_on_third_call;
	g_calls = 0;
	expect_cancelled(in, params_with({{"n_estimators", 20}}));
	EXPECT_TRUE(log.empty()) << "cancelled after " << log.size() << " rounds, not while the matrix was built";
	EXPECT_EQ(g_calls, 3);
}

// libxgboost's own sparse-page matrix (what the fit built before the quantile matrix), trained
// with the booster parameters the fit sets: the same trees, so the same predictions.
std::vector<float> xgboost_simple_fit(const MatrixXd &X, const VectorXd &y, const Params &hp, const MatrixXd &Xp)
{
	auto rows = [](const MatrixXd &M) {
		std::vector<float> v(static_cast<size_t>(M.size()));
		for (Eigen::Index i = 0; i < M.rows(); i++)
			for (Eigen::Index j = 0; j < M.cols(); j++)
				v[static_cast<size_t>(i * M.cols() + j)] = static_cast<float>(M(i, j));
		return v;
	};
	std::vector<float> data = rows(X), label(y.data(), y.data() + y.size()), pdata = rows(Xp);
	DMatrixHandle d = nullptr, dp = nullptr;
	BoosterHandle b = nullptr;
	EXPECT_EQ(XGDMatrixCreateFromMat(data.data(), X.rows(), X.cols(), NAN, &d), 0);
	EXPECT_EQ(XGDMatrixSetFloatInfo(d, "label", label.data(), label.size()), 0);
	EXPECT_EQ(XGBoosterCreate(&d, 1, &b), 0);
	auto num = [&](const char *k) {
		char buf[64];
		std::snprintf(buf, sizeof buf, "%.17g", hp.num(k));
		return std::string(buf);
	};
	const std::pair<const char *, std::string> kv[] = {
		{"verbosity", "0"}, {"objective", "reg:squarederror"}, {"tree_method", "hist"},
		{"eta", num("learning_rate")}, {"max_depth", num("max_depth")}, {"min_child_weight", num("min_child_weight")},
		{"subsample", num("subsample")}, {"colsample_bytree", num("colsample_bytree")}, {"lambda", num("reg_lambda")},
		{"alpha", num("reg_alpha")}, {"gamma", num("gamma")}, {"max_bin", num("max_bin")}, {"nthread", "2"},
		{"seed", "7"}, {"seed_per_iteration", "1"}};
	for (const auto &[k, v] : kv)
		EXPECT_EQ(XGBoosterSetParam(b, k, v.c_str()), 0) << k;
	for (int r = 0; r < hp.integer("n_estimators"); r++)
		EXPECT_EQ(XGBoosterUpdateOneIter(b, r, d), 0);
	EXPECT_EQ(XGDMatrixCreateFromMat(pdata.data(), Xp.rows(), Xp.cols(), NAN, &dp), 0);
	bst_ulong len = 0;
	const float *res = nullptr;
	EXPECT_EQ(XGBoosterPredict(b, dp, 0, 0, 0, &len, &res), 0);
	std::vector<float> out(res, res + len);
	XGBoosterFree(b);
	XGDMatrixFree(d);
	XGDMatrixFree(dp);
	return out;
}

TEST(GradientBoosting, BatchesGiveTheModelOfOneMatrix)
{
	MatrixXd X;
	VectorXd y;
	regression_data(150000, 17, X, y); // three batches a pass
	X(5, 1) = NAN;                      // a missing value: the default direction is learned alike
	const Params hp = params_with({{"n_estimators", 8}, {"subsample", 0.8}});
	auto e = fit_gradient_boosting(input(X, y, Task::Regression, 0, 2), hp);
	const MatrixXd Xp = X.topRows(2000);
	std::vector<float> want = xgboost_simple_fit(X, y, hp, Xp);
	ASSERT_EQ(want.size(), 2000u);
	for (Eigen::Index i = 0; i < Xp.rows(); i++) {
		Eigen::VectorXd z = Xp.row(i).transpose();
		double got = 0;
		e->predict(z.data(), &got);
		ASSERT_NEAR(got, want[static_cast<size_t>(i)], 1e-6 * std::max(1.0, std::fabs(got))) << "row " << i;
	}
}

// More than 200,000 training rows: the bin edges come from the first 200,000 rows plus each
// feature's least and greatest value. A value only rows past the sample have (a rare level's
// one-hot column) still gets its own bin, so a tree can split on it; the fit is close to
// libxgboost's own sketch of every row.
TEST(GradientBoosting, BinEdgesFromASampleKeepRareValues)
{
	MatrixXd X;
	VectorXd y;
	regression_data(260000, 18, X, y);
	X.conservativeResize(Eigen::NoChange, 5);
	X.col(4).setZero();
	for (int i = 250000; i < 250200; i++) { // a rare level, none of it in the sample
		X(i, 4) = 1;
		y(i) += 50;
	}
	const Params hp = params_with({{"n_estimators", 30}, {"learning_rate", 0.3}});
	auto e = fit_gradient_boosting(input(X, y, Task::Regression, 0, 2), hp);
	std::vector<float> full = xgboost_simple_fit(X, y, hp, X.middleRows(249900, 400));
	double worst = 0;
	for (int i = 249900; i < 250300; i++) {
		Eigen::VectorXd z = X.row(i).transpose();
		double got = 0;
		e->predict(z.data(), &got);
		const double truth = 2 * X(i, 0) - X(i, 1) + (X(i, 4) == 1 ? 50 : 0);
		EXPECT_NEAR(got, truth, 2.0) << "row " << i;
		worst = std::max(worst, std::fabs(got - full[static_cast<size_t>(i - 249900)]));
	}
	EXPECT_LT(worst, 1.0); // the sample's bins against every row's: the same fit up to binning
}

TEST(GradientBoosting, BadInput)
{
	MatrixXd X;
	VectorXd y;
	three_class_data(30, 14, X, y);
	auto code_of = [](const FitInput &in) {
		try {
			fit_gradient_boosting(in, params_with({{"n_estimators", 2}}));
		} catch (const Error &e) {
			return e.code();
		}
		return ErrorCode::Internal;
	};
	VectorXd y_bad = y;
	y_bad(0) = 3;
	EXPECT_EQ(code_of(input(X, y_bad, Task::Classification, 3)), ErrorCode::DataException);
	y_bad(0) = 0.5;
	EXPECT_EQ(code_of(input(X, y_bad, Task::Classification, 3)), ErrorCode::DataException);
	MatrixXd X_bad = X;
	X_bad(1, 1) = INFINITY;
	EXPECT_EQ(code_of(input(X_bad, y, Task::Classification, 3)), ErrorCode::DataException);
	VectorXd yr = y;
	yr(2) = NAN;
	EXPECT_EQ(code_of(input(X, yr, Task::Regression)), ErrorCode::DataException);
	FitInput cl = input(X, y, Task::Clustering);
	EXPECT_EQ(code_of(cl), ErrorCode::FeatureNotSupported);
}

// Fitting and predicting leave the caller's signal mask alone, and every thread xgboost
// started (OpenMP) has every signal blocked.
TEST(GradientBoosting, SignalsStayOnTheCallingThread)
{
	sigset_t before, after;
	pthread_sigmask(SIG_SETMASK, nullptr, &before);
	MatrixXd X;
	VectorXd y;
	regression_data(2000, 15, X, y);
	auto e = fit_gradient_boosting(input(X, y, Task::Regression, 0, 4), params_with({{"n_estimators", 5}}));
	double out[1];
	e->predict(X.data(), out);
	pthread_sigmask(SIG_SETMASK, nullptr, &after);
	for (int s = 1; s < 32; s++)
		EXPECT_EQ(sigismember(&before, s), sigismember(&after, s)) << s;
	std::vector<std::string> masks = other_thread_masks();
	EXPECT_GE(masks.size(), 1u); // OpenMP workers exist
	for (const std::string &mask : masks) {
		unsigned long long m = std::stoull(mask, nullptr, 16);
		// every standard signal except SIGKILL (9) and SIGSTOP (19), which cannot be blocked
		for (int s = 1; s < 32; s++)
			if (s != SIGKILL && s != SIGSTOP) {
				EXPECT_TRUE(m & (1ULL << (s - 1))) << "signal " << s << " open on a worker thread: " << mask;
			}
	}
}

// predict_many (one xgboost call per block of rows: the trainer's metrics, ml_predict_batch)
// gives what predict() gives row by row, for every task and across block boundaries.
TEST(GradientBoosting, PredictManyEqualsPredict)
{
	auto check = [](const Estimator &e, const MatrixXd &X, int width) {
		std::vector<double> one = predict_all(e, X, width);
		const size_t n = static_cast<size_t>(X.rows()), p = static_cast<size_t>(X.cols());
		Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Z = X; // rows one after the other
		std::vector<double> out(n * static_cast<size_t>(width), -1);
		std::vector<int> klass(n, -1);
		e.predict_many(Z.data(), n, p, static_cast<size_t>(width), out.data(), klass.data());
		for (size_t i = 0; i < n; i++) {
			for (int k = 0; k < width; k++)
				ASSERT_EQ(out[i * static_cast<size_t>(width) + static_cast<size_t>(k)],
				          one[i * static_cast<size_t>(width + 1) + static_cast<size_t>(k)])
				    << "row " << i << " output " << k;
			ASSERT_EQ(klass[i], static_cast<int>(one[i * static_cast<size_t>(width + 1) + static_cast<size_t>(width)]));
		}
	};
	MatrixXd X, X3;
	VectorXd y, y3;
	regression_data(9000, 21, X, y); // more than one block of 4096 rows
	check(*fit_gradient_boosting(input(X, y, Task::Regression), params_with({{"n_estimators", 5}})), X, 1);
	VectorXd yb = (y.array() > 0).cast<double>();
	check(*fit_gradient_boosting(input(X, yb, Task::Classification, 2), params_with({{"n_estimators", 5}})), X, 2);
	three_class_data(5000, 22, X3, y3);
	check(*fit_gradient_boosting(input(X3, y3, Task::Classification, 3), params_with({{"n_estimators", 5}})), X3, 3);
}

// The fit's own outputs for its training rows (libxgboost's prediction cache, which the trainer
// scores the training rows with) are what predicting those rows gives; an early-stopped fit
// (its cache is of other rows and more rounds) keeps none.
TEST(GradientBoosting, FittedOutputsEqualPredictions)
{
	MatrixXd Xr, Xc;
	VectorXd yr, yc;
	regression_data(300, 7, Xr, yr);
	three_class_data(300, 8, Xc, yc);
	VectorXd yb = (yc.array() > 0.5).cast<double>();
	struct Case {
		const MatrixXd *X;
		const VectorXd *y;
		Task task;
		int K;
	} cases[] = {{&Xr, &yr, Task::Regression, 0}, {&Xc, &yb, Task::Classification, 2}, {&Xc, &yc, Task::Classification, 3}};
	for (const Case &c : cases) {
		auto e = fit_gradient_boosting(input(*c.X, *c.y, c.task, c.K, 2), params_with({{"n_estimators", 25}}));
		const size_t n = static_cast<size_t>(c.X->rows()), nout = c.K > 0 ? static_cast<size_t>(c.K) : 1;
		std::vector<double> fitted(n * nout), predicted(n * nout);
		std::vector<int> fk(n), pk(n);
		ASSERT_TRUE(e->fitted_outputs(0, n / 2, nout, fitted.data(), fk.data()));
		ASSERT_TRUE(e->fitted_outputs(n / 2, n - n / 2, nout, fitted.data() + n / 2 * nout, fk.data() + n / 2));
		EXPECT_FALSE(e->fitted_outputs(n - 1, 2, nout, fitted.data(), fk.data())); // past the rows
		Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows = *c.X;
		e->predict_many(rows.data(), n, static_cast<size_t>(rows.cols()), nout, predicted.data(), pk.data());
		for (size_t i = 0; i < n * nout; i++)
			ASSERT_NEAR(fitted[i], predicted[i], 1e-6) << "K " << c.K << " value " << i;
		EXPECT_EQ(fk, pk) << "K " << c.K;
		e->end_training();
		EXPECT_FALSE(e->fitted_outputs(0, 1, nout, fitted.data(), fk.data()));
	}
	auto es = fit_gradient_boosting(input(Xr, yr, Task::Regression),
	                                params_with({{"n_estimators", 50}, {"early_stopping_rounds", 3}}));
	double o[1];
	int k[1];
	EXPECT_FALSE(es->fitted_outputs(0, 1, 1, o, k));
}
