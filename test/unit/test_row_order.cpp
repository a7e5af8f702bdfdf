// Same rows, same seed, same model: training on the same rows in another order, or split into
// other batches, gives the same model for every algorithm. The in-memory algorithms get their
// rows in a canonical order (by row hash, then by value), so their blobs, metrics and reports
// are byte-identical; the linear family sums its statistics in the order rows come in, so its
// coefficients agree up to floating-point rounding (and its MAE sample is the same rows).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "estimator.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::Model;
using pgml::OptionValue;
using pgml::Task;
using namespace pgml_test;

namespace {

// 240 rows: numbers with NULLs, a categorical column with NULLs whose levels first appear in
// a different order in each permutation, exact duplicate rows, and rows that differ in the
// target only.
Table base_table(Task task)
{
	Table t;
	t.features = {numeric_col("x"), text_col("color"), numeric_col("z")};
	t.target = task == Task::Classification ? text_col("label") : numeric_col("y");
	const char *colors[] = {"red", "green", "blue", "amber"};
	std::mt19937_64 rng(17);
	std::normal_distribution<double> g(0, 1);
	for (int i = 0; i < 230; i++) {
		double x = g(rng) * 2, z = std::round(g(rng) * 40) / 8; // z has many ties
		int l = static_cast<int>(rng() % 4);
		double y = 1.5 * x - 0.25 * z + l + 0.3 * g(rng);
		Cell target = task == Task::Classification ? str(y < -1 ? "lo" : y < 2 ? "mid" : "hi") : num(y);
		t.add({i % 9 == 4 ? null() : num(x), i % 11 == 6 ? null() : str(colors[l]), num(z)}, target);
	}
	for (int i = 0; i < 6; i++) // exact duplicates
		t.add(t.rows[static_cast<size_t>(i * 7)], t.y[static_cast<size_t>(i * 7)]);
	for (int i = 0; i < 4; i++) { // the same features, another target
		Cell other = task == Task::Classification ? str(t.y[static_cast<size_t>(i)].str == "lo" ? "hi" : "lo")
		                                          : num(t.y[static_cast<size_t>(i)].num + 1);
		t.add(t.rows[static_cast<size_t>(i)], other);
	}
	return t;
}

Table permuted(const Table &t, const std::vector<size_t> &order)
{
	Table out;
	out.features = t.features;
	out.target = t.target;
	for (size_t i : order)
		out.add(t.rows[i], t.y[i]);
	return out;
}

// The table in its own order, reversed, and shuffled twice.
std::vector<Table> orders(const Table &t)
{
	std::vector<size_t> idx(t.size());
	for (size_t i = 0; i < idx.size(); i++)
		idx[i] = i;
	std::vector<Table> out{t};
	std::vector<size_t> rev(idx.rbegin(), idx.rend());
	out.push_back(permuted(t, rev));
	for (uint64_t seed : {1u, 2u}) {
		std::vector<size_t> s = idx;
		std::shuffle(s.begin(), s.end(), std::mt19937_64(seed));
		out.push_back(permuted(t, s));
	}
	return out;
}

// Small settings so that every algorithm trains in a few milliseconds, with every random
// choice it can make switched on (subsamples, minibatches, bootstraps, several starts).
void small(pgml::TrainSpec &spec)
{
	auto set = [&](const char *k, double v) { spec.hyperparams[k] = OptionValue::of_number(v); };
	switch (spec.algorithm) {
	case Algorithm::RandomForest:
		set("n_estimators", 5);
		break;
	case Algorithm::GradientBoosting:
		set("n_estimators", 8);
		set("subsample", 0.7);
		set("colsample_bytree", 0.7);
		break;
	case Algorithm::Mlp:
		set("hidden_units", 4);
		set("max_iter", 15);
		set("batch_size", 16);
		break;
	case Algorithm::KMeans:
		set("k", 3);
		set("n_init", 3);
		break;
	default:
		break;
	}
}

pgml::TrainSpec spec_for(Algorithm a, Task task, const Table &t)
{
	pgml::TrainSpec spec = make_spec(t, a, 0.25, 42);
	spec.task = task;
	if (task == Task::Clustering)
		spec.target = pgml::ColumnInfo{};
	small(spec);
	return spec;
}

// Feeds t in batches of batch_rows (without the target for clustering).
void feed_rows(pgml::Trainer &tr, const Table &t, Task task, size_t batch_rows)
{
	for (size_t b = 0; b < t.size(); b += batch_rows) {
		BatchData bd(t, b, std::min(t.size(), b + batch_rows));
		pgml::Batch batch = bd.batch();
		if (task == Task::Clustering)
			batch.target = nullptr;
		tr.add_batch(batch, nullptr);
	}
}

Trained fit(const pgml::TrainSpec &spec, const Table &t, size_t batch_rows)
{
	pgml::Trainer tr(spec);
	feed_rows(tr, t, spec.task, batch_rows);
	Trained out;
	out.model = tr.finish(nullptr, nullptr);
	out.result = tr.result();
	return out;
}

// Every output of the model for every row of t.
std::vector<double> predictions(const Model &m, const Table &t)
{
	std::vector<double> out;
	for (const auto &row : t.rows) {
		int k = 0;
		std::vector<double> o = predict(m, row, &k);
		out.insert(out.end(), o.begin(), o.end());
		out.push_back(k);
	}
	return out;
}

// The numbers of a flat-ish JSON text, in order (metrics, reports).
std::vector<double> json_numbers(const std::string &json)
{
	std::vector<double> v;
	const char *p = json.c_str();
	while (*p) {
		if ((*p == '-' || (*p >= '0' && *p <= '9')) && (p == json.c_str() || p[-1] == ':' || p[-1] == '[' || p[-1] == ',')) {
			char *end = nullptr;
			v.push_back(std::strtod(p, &end));
			p = end;
		} else {
			p++;
		}
	}
	return v;
}

void expect_near_all(const std::vector<double> &a, const std::vector<double> &b, double rel, const char *what)
{
	ASSERT_EQ(a.size(), b.size()) << what;
	for (size_t i = 0; i < a.size(); i++)
		EXPECT_NEAR(a[i], b[i], rel * (1 + std::fabs(a[i]))) << what << " #" << i;
}

// The linear family sums its moments in the order rows come in: equal up to rounding.
constexpr double kLinearTolerance = 1e-10;

const Task kTasks[] = {Task::Regression, Task::Classification, Task::Clustering};

} // namespace

TEST(RowOrder, SameModelWhateverTheRowOrderForEveryAlgorithm)
{
	int algorithms = 0;
	for (const pgml::AlgorithmDef &def : pgml::algorithms()) {
		bool any = false;
		for (Task task : kTasks) {
			if (!def.supports(task))
				continue;
			any = true;
			Table t = base_table(task == Task::Classification ? Task::Classification : Task::Regression);
			pgml::TrainSpec spec = spec_for(def.id, task, t);
			Trained ref = fit(spec, t, 7);
			const std::vector<double> ref_pred = predictions(*ref.model, t);
			const std::vector<Table> tables = orders(t);
			for (size_t o = 0; o < tables.size(); o++) {
				for (size_t batch_rows : {size_t(1), size_t(7), size_t(1000)}) {
					SCOPED_TRACE(def.name + " " + pgml::task_name(task) + " order " + std::to_string(o) + " batch " +
					             std::to_string(batch_rows));
					Trained other = fit(spec, tables[o], batch_rows);
					EXPECT_EQ(other.result.fingerprint, ref.result.fingerprint);
					EXPECT_EQ(other.result.rows_train, ref.result.rows_train);
					EXPECT_EQ(other.result.rows_test, ref.result.rows_test);
					if (!def.streams) {
						// in memory: the very same bytes, metrics and report
						EXPECT_EQ(other.model->serialize(), ref.model->serialize());
						EXPECT_EQ(other.result.metrics_json, ref.result.metrics_json);
						EXPECT_EQ(other.result.report_json, ref.result.report_json);
						EXPECT_EQ(predictions(*other.model, t), ref_pred);
					} else {
						ASSERT_EQ(other.model->W.size(), ref.model->W.size());
						for (Eigen::Index i = 0; i < ref.model->W.size(); i++)
							EXPECT_NEAR(other.model->W(i), ref.model->W(i), kLinearTolerance * (1 + std::fabs(ref.model->W(i))));
						EXPECT_NEAR(other.model->b(0), ref.model->b(0), kLinearTolerance * (1 + std::fabs(ref.model->b(0))));
						EXPECT_EQ(other.model->prep.feature_names, ref.model->prep.feature_names);
						expect_near_all(predictions(*other.model, t), ref_pred, kLinearTolerance, "predictions");
						expect_near_all(json_numbers(other.result.metrics_json), json_numbers(ref.result.metrics_json),
						                kLinearTolerance, "metrics");
					}
				}
			}
		}
		algorithms += any ? 1 : 0;
	}
	EXPECT_EQ(algorithms, 12);
}

// Continued training (gradient_boosting's added rounds, mlp's and k-means' warm start) on the
// same new rows in another order gives the same bytes.
TEST(RowOrder, ContinuedTrainingWhateverTheRowOrder)
{
	const std::pair<Algorithm, Task> cases[] = {{Algorithm::GradientBoosting, Task::Regression},
	                                            {Algorithm::GradientBoosting, Task::Classification},
	                                            {Algorithm::Mlp, Task::Classification},
	                                            {Algorithm::KMeans, Task::Clustering}};
	for (const auto &[a, task] : cases) {
		SCOPED_TRACE(std::string(pgml::algorithm_name(a)) + " " + pgml::task_name(task));
		Table t = base_table(task == Task::Classification ? Task::Classification : Task::Regression);
		pgml::TrainSpec spec = spec_for(a, task, t);
		Table first = t.slice(0, 120), second = t.slice(120, t.size());
		Trained base = fit(spec, first, 50);
		std::vector<std::vector<uint8_t>> blobs;
		for (const Table &o : orders(second)) {
			pgml::Trainer tr(spec, *base.model, true);
			feed_rows(tr, o, task, 13);
			std::unique_ptr<Model> m = tr.finish(nullptr, nullptr);
			blobs.push_back(m->serialize());
		}
		for (size_t i = 1; i < blobs.size(); i++)
			EXPECT_EQ(blobs[i], blobs[0]) << "order " << i;
	}
}

// The row reader's MAE sample (more training rows than the sample holds) is the rows with the
// smallest draws, not a reservoir of the order they came in: the same MAE (up to the rounding
// of the coefficients) for the rows read forwards and backwards.
TEST(RowOrder, StreamingSampleIsTheSameRows)
{
	const size_t n = 230000; // 207000 training rows: more than the 200000 kept
	std::vector<double> x(n), y(n);
	std::mt19937_64 rng(3);
	std::normal_distribution<double> g(0, 1);
	for (size_t i = 0; i < n; i++) {
		x[i] = g(rng);
		y[i] = 2 * x[i] + (i % 2 == 0 ? 1 : -1) * std::fabs(g(rng)) * (1 + static_cast<double>(i) / n);
	}
	pgml::TrainSpec spec;
	spec.features = {numeric_col("x")};
	spec.target = numeric_col("y");
	spec.algorithm = Algorithm::LinearRegression;
	spec.task = Task::Regression;
	spec.test_size = 0.1;
	auto run = [&](bool reverse) {
		pgml::Trainer tr(spec);
		const size_t batch = 1000;
		std::vector<double> bx(batch), by(batch);
		std::unique_ptr<bool[]> nulls(new bool[batch]());
		for (size_t b = 0; b < n; b += batch) {
			const size_t m = std::min(batch, n - b);
			for (size_t r = 0; r < m; r++) {
				size_t i = reverse ? n - 1 - (b + r) : b + r;
				bx[r] = x[i];
				by[r] = y[i];
			}
			pgml::ColumnData fx, ty;
			fx.num = bx.data();
			fx.isnull = nulls.get();
			ty.num = by.data();
			ty.isnull = nulls.get();
			pgml::Batch bt;
			bt.nrows = m;
			bt.nfeatures = 1;
			bt.features = &fx;
			bt.target = &ty;
			tr.add_batch(bt, nullptr);
		}
		tr.finish(nullptr, nullptr);
		return tr.result().metrics_json;
	};
	std::string fwd = run(false), bwd = run(true);
	EXPECT_EQ(json_number(fwd, {"train", "mae_sample_rows"}), 200000);
	const double a = json_number(fwd, {"train", "mae"}), b = json_number(bwd, {"train", "mae"});
	EXPECT_NEAR(a, b, 1e-12 * a);
	EXPECT_NEAR(json_number(fwd, {"test", "mae"}), json_number(bwd, {"test", "mae"}), 1e-12 * a);
	EXPECT_NEAR(json_number(fwd, {"train", "r2"}), json_number(bwd, {"train", "r2"}), 1e-12);
}
