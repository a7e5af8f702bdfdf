// Determinism: training twice through the Trainer with the same seed gives byte-identical blobs,
// for every registered algorithm and every task it does; and the multi-threaded algorithms give
// the same bytes with threads = 2 as with threads = 1.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "estimator.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::Model;
using pgml::OptionValue;
using pgml::Task;
using namespace pgml_test;

namespace {

// 40 rows with NULLs, a categorical column and a little noise from a fixed generator.
Table rows(Task task)
{
	Table t;
	t.features = {numeric_col("x"), text_col("color"), numeric_col("z")};
	t.target = task == Task::Classification ? text_col("label") : numeric_col("y");
	const char *colors[] = {"red", "green", "blue"};
	Rng rng(7);
	for (int i = 0; i < 40; i++) {
		double x = rng.normal() * 2, z = rng.uniform() * 10;
		int l = static_cast<int>(rng.below(3));
		double y = 1.5 * x - 0.25 * z + l + 0.3 * rng.normal();
		Cell target = task == Task::Classification ? str(y < -1 ? "lo" : y < 1.5 ? "mid" : "hi") : num(y);
		t.add({i % 9 == 4 ? null() : num(x), i % 11 == 6 ? null() : str(colors[l]), num(z)}, target);
	}
	return t;
}

// Small settings so that every algorithm trains in a few milliseconds.
void small(pgml::TrainSpec &spec)
{
	auto set = [&](const char *k, double v) { spec.hyperparams[k] = OptionValue::of_number(v); };
	switch (spec.algorithm) {
	case Algorithm::RandomForest:
		set("n_estimators", 5);
		break;
	case Algorithm::GradientBoosting:
		set("n_estimators", 5);
		set("subsample", 0.8);
		set("colsample_bytree", 0.7);
		break;
	case Algorithm::Mlp:
		set("hidden_units", 4);
		set("max_iter", 20);
		set("batch_size", 8);
		break;
	case Algorithm::KMeans:
		set("k", 3);
		set("n_init", 4);
		break;
	default:
		break;
	}
}

pgml::TrainSpec spec_for(Algorithm a, Task task, uint64_t seed = 42, int threads = 1)
{
	Table t = rows(task);
	pgml::TrainSpec spec = make_spec(t, a, 0.2, seed);
	spec.task = task;
	if (task == Task::Clustering)
		spec.target = pgml::ColumnInfo{};
	spec.threads = threads;
	small(spec);
	return spec;
}

// Trains on rows(task) (no target fed for clustering) and returns the model with its metrics.
std::pair<std::unique_ptr<Model>, std::string> fit(const pgml::TrainSpec &spec)
{
	Table t = rows(spec.task == Task::Classification ? Task::Classification : Task::Regression);
	pgml::Trainer tr(spec);
	for (size_t b = 0; b < t.size(); b += 7) {
		BatchData bd(t, b, std::min(t.size(), b + 7));
		pgml::Batch batch = bd.batch();
		if (spec.task == Task::Clustering)
			batch.target = nullptr;
		tr.add_batch(batch, nullptr);
	}
	std::unique_ptr<Model> m = tr.finish(nullptr, nullptr);
	return {std::move(m), tr.result().metrics_json};
}

const Task kTasks[] = {Task::Regression, Task::Classification, Task::Clustering};

} // namespace

TEST(Determinism, SameSeedSameBlobForEveryAlgorithm)
{
	int fitted = 0;
	for (const pgml::AlgorithmDef &def : pgml::algorithms()) {
		for (Task task : kTasks) {
			if (!def.supports(task))
				continue;
			SCOPED_TRACE(def.name + " " + pgml::task_name(task));
			auto a = fit(spec_for(def.id, task));
			auto b = fit(spec_for(def.id, task));
			EXPECT_EQ(a.first->serialize(), b.first->serialize());
			EXPECT_EQ(a.second, b.second); // the train / test metrics too
			fitted++;
		}
	}
	EXPECT_GE(fitted, 12);
}

// The seed reaches the algorithms that draw random numbers: with no held-out rows (so the rows
// fitted on are the same), another seed gives another fitted estimator.
TEST(Determinism, AnotherSeedAnotherEstimator)
{
	const std::pair<Algorithm, Task> cases[] = {{Algorithm::RandomForest, Task::Regression},
	                                            {Algorithm::GradientBoosting, Task::Classification},
	                                            {Algorithm::Mlp, Task::Classification},
	                                            {Algorithm::KMeans, Task::Clustering}};
	for (const auto &[a, task] : cases) {
		SCOPED_TRACE(std::string(pgml::algorithm_name(a)) + " " + pgml::task_name(task));
		pgml::TrainSpec s1 = spec_for(a, task, 42), s2 = spec_for(a, task, 43);
		s1.test_size = s2.test_size = 0;
		auto m1 = fit(s1), m2 = fit(s2);
		pgml::Writer w1, w2;
		m1.first->estimator->write(w1);
		m2.first->estimator->write(w2);
		EXPECT_NE(w1.bytes(), w2.bytes());
	}
}

// The algorithms that use several threads: the same bytes (and metrics) with 2 threads as with 1.
void expect_same_with_two_threads(Algorithm a, Task task, const char *kernel = nullptr)
{
	SCOPED_TRACE(std::string(pgml::algorithm_name(a)) + " " + pgml::task_name(task) + (kernel ? " " : "") +
	             (kernel ? kernel : ""));
	pgml::TrainSpec one = spec_for(a, task, 42, 1), two = spec_for(a, task, 42, 2);
	if (kernel != nullptr)
		one.hyperparams["kernel"] = two.hyperparams["kernel"] = OptionValue::of_string(kernel);
	auto m1 = fit(one);
	auto m2 = fit(two);
	EXPECT_EQ(m1.first->serialize(), m2.first->serialize());
	EXPECT_EQ(m1.second, m2.second);
}

TEST(Determinism, ThreadsDoNotChangeRandomForest)
{
	expect_same_with_two_threads(Algorithm::RandomForest, Task::Regression);
	expect_same_with_two_threads(Algorithm::RandomForest, Task::Classification);
}

TEST(Determinism, ThreadsDoNotChangeGradientBoosting)
{
	expect_same_with_two_threads(Algorithm::GradientBoosting, Task::Regression);
	expect_same_with_two_threads(Algorithm::GradientBoosting, Task::Classification);
}

TEST(Determinism, ThreadsDoNotChangeKMeans)
{
	expect_same_with_two_threads(Algorithm::KMeans, Task::Clustering);
}

TEST(Determinism, ThreadsDoNotChangeSvm)
{
	expect_same_with_two_threads(Algorithm::Svm, Task::Classification, "linear");
	expect_same_with_two_threads(Algorithm::Svm, Task::Classification, "rbf");
	expect_same_with_two_threads(Algorithm::Svm, Task::Regression, "rbf");
}
