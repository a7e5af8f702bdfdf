// Hyperparameter search and cross-validation (search.hpp, TrainSpec::cv_folds): the folds
// partition the rows the version's split leaves for training and never hold a test row; the
// classification folds are stratified; a search finds the better setting on data where it is
// known; bad search_params / search_args are errors naming what is wrong.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "../../src/core/search.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

// y is a step in x plus much noise; four noise columns: a deep tree learns the noise.
Table noisy_step(int rows, uint64_t seed = 5)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), numeric_col("n1"), numeric_col("n2"), numeric_col("n3"), text_col("k")};
	t.target = numeric_col("y");
	for (int i = 0; i < rows; i++) {
		double x = rng.uniform();
		// a text column of noise too: the folds keep every column's values (a cross-validation
		// split that lost track of its rows read past them)
		t.add({num(x), num(rng.uniform()), num(rng.uniform()), num(rng.uniform()), str(i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c")},
		      num((x > 0.5 ? 1 : 0) + (rng.uniform() - 0.5) * 1.6));
	}
	return t;
}

Table classes(int rows)
{
	Rng rng(9);
	Table t;
	t.features = {numeric_col("x"), numeric_col("z")};
	t.target = text_col("c");
	for (int i = 0; i < rows; i++) {
		double x = rng.uniform(), z = rng.uniform();
		// three classes of unequal size: 60%, 30%, 10%
		const char *c = i % 10 < 6 ? "a" : i % 10 < 9 ? "b" : "c";
		t.add({num(x + (c[0] - 'a')), num(z)}, str(c));
	}
	return t;
}

std::vector<std::pair<std::string, OptionValue>> list(const std::string &name, std::vector<double> values)
{
	std::vector<std::pair<std::string, OptionValue>> out;
	for (double v : values)
		out.push_back({name + "[]", OptionValue::of_number(v)});
	return out;
}

std::unique_ptr<pgml::Search> run_search(const Table &t, const pgml::TrainSpec &spec, pgml::SearchSpec ss)
{
	auto s = std::make_unique<pgml::Search>(spec, std::move(ss));
	for (size_t b = 0; b < t.size(); b += 64) {
		BatchData bd(t, b, std::min(t.size(), b + 64));
		s->add_batch(bd.batch(), nullptr);
	}
	s->run(nullptr);
	return s;
}

} // namespace

// Every fold holds out a disjoint share of the training rows; together they are exactly the
// rows a plain training run trains on (no test row ever), for the rows route and the streaming one.
TEST(CrossValidation, FoldsPartitionTheTrainingRows)
{
	Table t = noisy_step(503);
	for (Algorithm a : {Algorithm::DecisionTree, Algorithm::LinearRegression}) {
		pgml::TrainSpec spec = make_spec(t, a, 0.2);
		Trained plain = train(spec, t);
		int64_t held = 0;
		for (int f = 0; f < 5; f++) {
			pgml::TrainSpec s = spec;
			s.cv_folds = 5;
			s.cv_fold = f;
			Trained fold = train(s, t);
			EXPECT_EQ(fold.result.rows_train + fold.result.rows_test, plain.result.rows_train) << algorithm_name(a);
			EXPECT_GT(fold.result.rows_test, plain.result.rows_train / 8) << algorithm_name(a);
			held += fold.result.rows_test;
		}
		EXPECT_EQ(held, plain.result.rows_train) << algorithm_name(a);
		// a validation split: that share of the training rows
		pgml::TrainSpec v = spec;
		v.cv_holdout = 0.25;
		Trained val = train(v, t);
		EXPECT_EQ(val.result.rows_train + val.result.rows_test, plain.result.rows_train);
		EXPECT_NEAR(static_cast<double>(val.result.rows_test) / static_cast<double>(plain.result.rows_train), 0.25, 0.06);
	}
}

// Classification folds keep each class's share (within one row per class).
TEST(CrossValidation, ClassificationFoldsAreStratified)
{
	Table t = classes(400);
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.2);
	Trained plain = train(spec, t);
	int64_t held = 0;
	for (int f = 0; f < 4; f++) {
		pgml::TrainSpec s = spec;
		s.cv_folds = 4;
		s.cv_fold = f;
		Trained fold = train(s, t);
		held += fold.result.rows_test;
		// 320 training rows: 192 / 96 / 32 by class, 48 / 24 / 8 per fold
		const double support_c = json_number(fold.result.test_json, {"per_class", "c", "support"});
		if (std::isfinite(support_c)) {
			EXPECT_NEAR(support_c, 8, 1);
		}
		EXPECT_NEAR(static_cast<double>(fold.result.rows_test), 80, 2);
	}
	EXPECT_EQ(held, plain.result.rows_train);
}

TEST(Search, GridFindsTheBetterDepth)
{
	Table t = noisy_step(600);
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.2);
	auto s_p = run_search(t, spec, pgml::parse_search("grid", list("max_depth", {1, 2, 8}), {}, spec));
	const pgml::Search &s = *s_p;
	ASSERT_EQ(s.trials().size(), 4u); // the baseline (unlimited depth) and three depths
	EXPECT_EQ(s.metric(), "r2");
	for (const pgml::Trial &tr : s.trials()) {
		EXPECT_TRUE(tr.ok()) << tr.error;
		EXPECT_EQ(tr.fold_scores.size(), 5u);
	}
	const pgml::Trial &best = s.best();
	EXPECT_LE(best.hyperparams.at("max_depth").number, 2);
	EXPECT_GT(best.mean, s.trials().front().mean + 0.1); // far better than the noise-learning default
	pgml::TrainSpec chosen = s.chosen();
	EXPECT_EQ(chosen.hyperparams.at("max_depth").number, best.hyperparams.at("max_depth").number);
	EXPECT_NE(chosen.search_json.find("\"kind\":\"grid\""), std::string::npos) << chosen.search_json;
	EXPECT_NE(s.summary().find("over the hyperparameters as given"), std::string::npos) << s.summary();
	// the same rows, the same seed: the same scores
	auto again_p = run_search(t, spec, pgml::parse_search("grid", list("max_depth", {1, 2, 8}), {}, spec));
	const pgml::Search &again = *again_p;
	for (size_t i = 0; i < s.trials().size(); i++)
		EXPECT_EQ(s.trials()[i].fold_scores, again.trials()[i].fold_scores);
}

TEST(Search, RandomDrawsWithinTheRange)
{
	Table t = noisy_step(300);
	pgml::TrainSpec spec = make_spec(t, Algorithm::Ridge, 0.2);
	std::vector<std::pair<std::string, OptionValue>> p = {{"alpha.min", OptionValue::of_number(0.01)},
	                                                       {"alpha.max", OptionValue::of_number(100)},
	                                                       {"alpha.scale", OptionValue::of_string("log")}};
	pgml::Options args = {{"trials", OptionValue::of_number(8)}, {"metric", OptionValue::of_string("rmse")},
	                      {"folds", OptionValue::of_number(3)}};
	auto s_p = run_search(t, spec, pgml::parse_search("random", p, args, spec));
	const pgml::Search &s = *s_p;
	ASSERT_EQ(s.trials().size(), 9u);
	int below_one = 0;
	for (size_t i = 1; i < s.trials().size(); i++) {
		double a = s.trials()[i].hyperparams.at("alpha").number;
		EXPECT_GE(a, 0.01);
		EXPECT_LE(a, 100);
		below_one += a < 1 ? 1 : 0;
		EXPECT_EQ(s.trials()[i].fold_scores.size(), 3u);
	}
	EXPECT_GT(below_one, 0); // log-uniform: half the draws below 1 on average
	for (const pgml::Trial &tr : s.trials())
		EXPECT_GE(tr.mean, s.best().mean); // rmse: lower is better
}

TEST(Search, AutoComparesAlgorithms)
{
	Table t = noisy_step(400);
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, 0.2);
	auto s_p = run_search(t, spec, pgml::auto_search(pgml::Task::Regression, {}));
	const pgml::Search &s = *s_p;
	std::set<Algorithm> seen;
	for (const pgml::Trial &tr : s.trials())
		seen.insert(tr.algorithm);
	EXPECT_EQ(seen.size(), s.trials().size());
	EXPECT_GE(seen.size(), 4u);
	// a step: the line loses to the trees
	EXPECT_NE(s.best().algorithm, Algorithm::LinearRegression);
	EXPECT_NE(s.summary().find(algorithm_name(s.best().algorithm)), std::string::npos);
	// a spent time budget skips the candidates not yet scored (the first always runs)
	auto quick_p = run_search(t, spec, pgml::auto_search(pgml::Task::Regression, {{"time_budget", OptionValue::of_number(0.001)}}));
	const pgml::Search &quick = *quick_p;
	EXPECT_TRUE(quick.trials().front().ok());
	EXPECT_EQ(quick.trials().back().error.rfind("skipped", 0), 0u) << quick.trials().back().error;
}

TEST(Search, BadSearchParamsAreErrors)
{
	Table t = noisy_step(50);
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.2);
	auto msg = [&](const std::string &kind, std::vector<std::pair<std::string, OptionValue>> p, pgml::Options a = {},
	               ErrorCode code = ErrorCode::InvalidParameter) {
		return std::string(expect_error([&] { pgml::parse_search(kind, p, a, spec); }, code).what());
	};
	EXPECT_NE(msg("grid", list("depth", {1})).find("no hyperparameter \"depth\""), std::string::npos);
	EXPECT_NE(msg("bayes", list("max_depth", {1})).find("unknown search"), std::string::npos);
	EXPECT_NE(msg("grid", {{"max_depth.min", OptionValue::of_number(1)}, {"max_depth.max", OptionValue::of_number(3)}})
	              .find("grid search takes lists"),
	          std::string::npos);
	EXPECT_NE(msg("random", {{"max_depth.min", OptionValue::of_number(3)}, {"max_depth.max", OptionValue::of_number(1)}})
	              .find("min below max"),
	          std::string::npos);
	EXPECT_NE(msg("random", {{"max_depth.min", OptionValue::of_number(3)}}).find("both min and max"), std::string::npos);
	EXPECT_NE(msg("grid", {{"max_depth", OptionValue::of_number(3)}}).find("list of values or a range"),
	          std::string::npos);
	EXPECT_NE(msg("grid", list("max_depth", {1}), {{"folds", OptionValue::of_number(1)}}).find("folds"),
	          std::string::npos);
	EXPECT_NE(msg("grid", list("max_depth", {1}), {{"trials", OptionValue::of_number(3)}}).find("random search"),
	          std::string::npos);
	// a value out of the hyperparameter's range is caught before any row is read
	EXPECT_NE(std::string(expect_error([&] { pgml::Search(spec, pgml::parse_search("grid", list("max_depth", {-1}), {}, spec)); },
	                                   ErrorCode::InvalidParameter)
	                          .what())
	              .find("max_depth"),
	          std::string::npos);
	pgml::TrainSpec both = spec;
	both.hyperparams["max_depth"] = OptionValue::of_number(2);
	EXPECT_NE(std::string(expect_error([&] { pgml::parse_search("grid", list("max_depth", {1}), {}, both); },
	                                   ErrorCode::InvalidParameter)
	                          .what())
	              .find("both hyperparams and search_params"),
	          std::string::npos);
	std::vector<std::pair<std::string, OptionValue>> big;
	for (const char *name : {"max_depth", "min_samples_split", "min_samples_leaf"})
		for (int v = 2; v < 13; v++)
			big.push_back({std::string(name) + "[]", OptionValue::of_number(v)});
	msg("grid", big, {}, ErrorCode::ProgramLimit);
}

TEST(Search, MetricOfAnotherTaskIsAnError)
{
	Table t = noisy_step(80);
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.2);
	pgml::Options args = {{"metric", OptionValue::of_string("accuracy")}};
	pgml::Search s(spec, pgml::parse_search("grid", list("max_depth", {1}), args, spec));
	BatchData bd(t, 0, t.size());
	s.add_batch(bd.batch(), nullptr);
	pgml::Error e = expect_error([&] { s.run(nullptr); }, ErrorCode::InvalidParameter);
	EXPECT_NE(std::string(e.what()).find("search metric \"accuracy\""), std::string::npos) << e.what();
}
