// Writes the seed corpora of the fuzz targets (test/fuzz/fuzz_*.cpp) from real encodings:
// tiny models of every algorithm (blobs and export envelopes) and aggregate states built the
// way ml_train_stats, ml_eval_stats and ml_kmeans_step build them.
//
//   pgml_fuzz_seeds DIR     writes DIR/<target>/<name> (DIR/fuzz_model_blob/ridge, ...)
//
// Seeds are made at test time rather than checked in, so they always have the current
// formats; inputs that once found a bug are checked in under test/fuzz/corpus/<target>/.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "agg_test_util.hpp"
#include "export.hpp"
#include "fuzz_input.hpp"
#include "grouped.hpp"

namespace {

using pgml::Algorithm;
using pgml::OptionValue;
using pgml_test::Table;

std::string g_dir;
int g_written = 0;

void write(const std::string &target, const std::string &name, const std::vector<uint8_t> &bytes)
{
	const std::string dir = g_dir + "/" + target;
	mkdir(g_dir.c_str(), 0755);
	mkdir(dir.c_str(), 0755);
	const std::string path = dir + "/" + name;
	FILE *f = std::fopen(path.c_str(), "wb");
	if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
		std::perror(path.c_str());
		std::exit(1);
	}
	g_written++;
}

// Bytes the targets turn into rows.
std::vector<uint8_t> row_bytes(uint64_t seed, size_t n)
{
	std::mt19937_64 g(seed);
	std::vector<uint8_t> b(n);
	for (auto &c : b)
		c = static_cast<uint8_t>(g());
	return b;
}

// 40 rows: a numeric column with NULLs, a text column with NULLs and a boolean column; the
// target numeric (regression), a text label with `classes` levels, or none.
Table table(int classes)
{
	Table t;
	t.features = {pgml_test::numeric_col("x1"), pgml_test::text_col("c"),
	              pgml::ColumnInfo{"flag", pgml::TypeClass::Boolean, "boolean"}};
	t.target = classes > 0 ? pgml_test::text_col("label") : pgml_test::numeric_col("y");
	pgml_test::Rng rng(7);
	const char *levels[] = {"a", "b", "c"};
	for (int i = 0; i < 40; i++) {
		double x = rng.normal();
		int lv = i % 3;
		bool flag = i % 2 == 0;
		std::vector<pgml_test::Cell> row = {i % 9 == 4 ? pgml_test::null() : pgml_test::num(x),
		                                    i % 11 == 5 ? pgml_test::null() : pgml_test::str(levels[lv]),
		                                    pgml_test::num(flag ? 1 : 0)};
		double y = 2 * x + lv - (flag ? 1 : 0) + 0.1 * rng.normal();
		pgml_test::Cell target = classes > 0 ? pgml_test::str("k" + std::to_string((x > 0 ? 1 : 0) + (classes > 2 ? lv % (classes - 1) : 0)))
		                                     : pgml_test::num(y);
		t.add(row, target);
	}
	return t;
}

struct Case {
	Algorithm algorithm;
	int classes; // 0: regression / clustering
	pgml::Options hyperparams;
	bool impute = false; // median imputation (trees: the imputed encoding with covers)
};

pgml::Options opts(std::initializer_list<std::pair<const char *, OptionValue>> kv)
{
	pgml::Options o;
	for (const auto &p : kv)
		o[p.first] = p.second;
	return o;
}

OptionValue n(double v) { return OptionValue::of_number(v); }

// fuzz_estimator's input for a tree or boosting model: a shape header, then the estimator's
// encoding without its checksum (fuzz_estimator.cpp).
void estimator_seed(const pgml::Model &m, const std::string &name)
{
	int algo = m.algorithm == Algorithm::DecisionTree ? 0 : m.algorithm == Algorithm::RandomForest ? 1
	         : m.algorithm == Algorithm::GradientBoosting ? 2 : -1;
	if (algo < 0 || !m.estimator)
		return;
	pgml::Writer w;
	m.estimator->write(w);
	pgml::Reader r(w.bytes().data(), w.bytes().size());
	std::vector<uint8_t> seed = {static_cast<uint8_t>(algo), static_cast<uint8_t>(m.task == pgml::Task::Classification),
	                             static_cast<uint8_t>(m.prep.p() - 1),
	                             static_cast<uint8_t>(std::max(0, m.n_classes() - 2))};
	pgml::Writer s;
	s.u16(r.u16()); // the encoding version
	if (algo == 2) {
		r.u8();     // task
		r.u32();    // K
		r.u32();    // p
		s.u32(r.u32()); // rounds
		s.u32(r.u32()); // best iteration
	}
	std::string body = r.str();
	seed.insert(seed.end(), s.bytes().begin(), s.bytes().end());
	seed.insert(seed.end(), body.begin(), body.end());
	write("fuzz_estimator", name, seed);
}

void model_seeds()
{
	const std::vector<Case> cases = {
		{Algorithm::LinearRegression, 0, {}},
		{Algorithm::Ridge, 0, {}},
		{Algorithm::Lasso, 0, {}},
		{Algorithm::ElasticNet, 0, {}},
		{Algorithm::LogisticRegression, 2, {}},
		{Algorithm::LogisticRegression, 3, {}},
		{Algorithm::DecisionTree, 0, opts({{"max_depth", n(3)}})},
		{Algorithm::DecisionTree, 3, opts({{"max_depth", n(3)}})},
		{Algorithm::RandomForest, 0, opts({{"n_estimators", n(2)}, {"max_depth", n(2)}})},
		{Algorithm::RandomForest, 2, opts({{"n_estimators", n(2)}, {"max_depth", n(2)}})},
		{Algorithm::DecisionTree, 2, opts({{"max_depth", n(3)}}), true},
		{Algorithm::RandomForest, 0, opts({{"n_estimators", n(2)}, {"max_depth", n(2)}}), true},
		{Algorithm::GradientBoosting, 0, opts({{"n_estimators", n(2)}, {"max_depth", n(2)}})},
		{Algorithm::GradientBoosting, 2, opts({{"n_estimators", n(2)}, {"max_depth", n(2)}})},
		{Algorithm::GradientBoosting, 3, opts({{"n_estimators", n(2)}, {"max_depth", n(2)}})},
		{Algorithm::Svm, 0, {}},
		{Algorithm::Svm, 2, opts({{"kernel", OptionValue::of_string("rbf")}})},
		{Algorithm::Svm, 3, {}},
		{Algorithm::Mlp, 0, opts({{"hidden_units", n(3)}, {"max_iter", n(5)}})},
		{Algorithm::Mlp, 3, opts({{"hidden_units", n(3)}, {"max_iter", n(5)}})},
		{Algorithm::KMeans, 0, opts({{"k", n(3)}, {"n_init", n(1)}})},
		{Algorithm::NaiveBayes, 2, {}},
		{Algorithm::NaiveBayes, 3, {}},
	};
	for (const Case &c : cases) {
		Table t = table(c.classes);
		if (c.algorithm == Algorithm::KMeans)
			t.target = pgml::ColumnInfo{};
		pgml::TrainSpec spec = pgml_test::make_spec(t, c.algorithm, 0.25);
		if (c.algorithm == Algorithm::KMeans)
			spec.task = pgml::Task::Clustering;
		spec.hyperparams = c.hyperparams;
		if (c.impute)
			spec.preprocess["impute"] = OptionValue::of_string("median");
		pgml::Trainer tr(spec);
		if (c.algorithm == Algorithm::KMeans) {
			// no target: batches without one
			for (size_t b = 0; b < t.size(); b += 7) {
				pgml_test::BatchData bd(t, b, std::min(t.size(), b + 7));
				pgml::Batch batch = bd.batch();
				batch.target = nullptr;
				tr.add_batch(batch, nullptr);
			}
		} else {
			pgml_test::feed(tr, t);
		}
		std::unique_ptr<pgml::Model> m = tr.finish(nullptr, nullptr);
		const std::string name =
			std::string(pgml::algorithm_name(c.algorithm)) + (c.classes > 0 ? "_" + std::to_string(c.classes) : "") +
			(c.impute ? "_imputed" : "");
		std::vector<uint8_t> blob = m->serialize();
		write("fuzz_model_blob", name, blob);
		estimator_seed(*m, name);

		pgml::ExportRecord rec;
		pgml::ModelDescription d = pgml::describe_model(*m);
		rec.pg_ml_version = "0.3.0";
		rec.source_database = "db";
		rec.exported_at = "2026-01-01 00:00:00+00";
		rec.exported_by = "alice";
		rec.model_name = name;
		rec.model_id = 1;
		rec.version = 1;
		rec.task = pgml::task_name(m->task);
		rec.algorithm = pgml::algorithm_name(m->algorithm);
		rec.has_target = m->has_target();
		rec.target = m->has_target() ? m->target.name : "";
		rec.relation = "public.t";
		rec.features_json = d.features_json;
		rec.classes_json = d.classes_json;
		rec.hyperparams_json = d.hyperparams_json;
		rec.preprocess_json = d.preprocess_json;
		rec.preprocessing_state_json = d.state_json;
		rec.metrics_json = tr.result().metrics_json;
		rec.report_json = tr.result().report_json;
		rec.coefficients_json = d.coefficients_json;
		rec.rows_train = tr.result().rows_train;
		rec.rows_test = tr.result().rows_test;
		rec.test_size = 0.25;
		rec.seed = 42;
		rec.data_fingerprint = tr.result().fingerprint;
		rec.trained_by = "alice";
		rec.trained_at = "2026-01-01 00:00:00+00";
		rec.blob = blob;
		write("fuzz_export", name, pgml::encode_export(rec));
	}
	// a linear model from the precise pass (blob format 3 with the statistics' low parts):
	// Wampler1's design, y = 1 + x + ... + x^5 on x = 0 .. 20
	Table w;
	for (int k = 1; k <= 5; k++)
		w.features.push_back(pgml_test::numeric_col("x" + std::to_string(k)));
	w.target = pgml_test::numeric_col("y");
	for (int x = 0; x <= 20; x++) {
		std::vector<pgml_test::Cell> cells;
		double y = 1;
		for (int k = 1; k <= 5; k++) {
			cells.push_back(pgml_test::num(std::pow(x, k)));
			y += std::pow(x, k);
		}
		w.add(cells, pgml_test::num(y));
	}
	pgml_test::Trained precise = pgml_test::train(pgml_test::make_spec(w, Algorithm::LinearRegression), w);
	if (!precise.model->has_precise_stats)
		throw std::runtime_error("the precise seed has no precise statistics");
	write("fuzz_model_blob", "linear_regression_precise", precise.model->serialize());
}

// ---------------------------------------------------------------- aggregate states

// The train_stats state of rows begin .. end of t, grown as the transition function grows it.
std::vector<double> stats_state(const pgml::stats::Params &p, const Table &t, size_t begin, size_t end)
{
	std::vector<double> state;
	pgml::aggstate::init_if_empty<pgml::stats::State>(state, pgml::stats::initial_shape(p));
	for (size_t i = begin; i < end; i++)
		pgml_test::stats_add(state, p, pgml_test::TableRow(t, i).row);
	return state;
}

void stats_seeds()
{
	int i = 0;
	for (int classes : {0, 3}) {
		Table t = table(classes);
		for (Algorithm a : {Algorithm::LinearRegression, Algorithm::NaiveBayes, Algorithm::KMeans}) {
			if ((a == Algorithm::NaiveBayes) != (classes > 0))
				continue;
			pgml::TrainSpec spec = pgml_test::make_spec(t, a, 0.25);
			if (a == Algorithm::KMeans) {
				spec.task = pgml::Task::Clustering;
				spec.target = pgml::ColumnInfo{};
			}
			pgml::Trainer tr(spec);
			std::vector<double> params = a == Algorithm::NaiveBayes ? tr.class_stats_params() : tr.stats_params(40);
			pgml::stats::Params p = pgml::stats::Params::decode(params.data(), params.size());
			std::vector<uint8_t> seed;
			pgml_fuzz::put_array(seed, params);
			pgml_fuzz::put_array(seed, stats_state(p, t, 0, 25));
			pgml_fuzz::put_array(seed, stats_state(p, t, 25, 40));
			std::vector<uint8_t> rows = row_bytes(static_cast<uint64_t>(i), 300);
			seed.insert(seed.end(), rows.begin(), rows.end());
			write("fuzz_stats_state", "state_" + std::to_string(i), seed);
			// a fresh state (empty array) and rows only
			std::vector<uint8_t> fresh;
			pgml_fuzz::put_array(fresh, params);
			pgml_fuzz::put_array(fresh, {});
			pgml_fuzz::put_array(fresh, {});
			fresh.insert(fresh.end(), rows.begin(), rows.end());
			write("fuzz_stats_state", "fresh_" + std::to_string(i), fresh);
			i++;
		}
	}
}

void eval_seeds()
{
	int i = 0;
	for (int K : {2, 3}) {
		for (int sample_k : {0, 3, 100}) {
			pgml::evalstate::Params p;
			p.sample_k = sample_k;
			std::vector<std::vector<double>> states;
			for (int part = 0; part < 2; part++) {
				pgml::evalstate::Shape s = pgml::evalstate::initial_shape(K, true, p);
				std::vector<double> state(s.length());
				pgml::evalstate::init(state.data(), s);
				std::mt19937_64 g(static_cast<uint64_t>(i * 2 + part));
				for (int r = 0; r < 20; r++) {
					std::vector<double> proba(static_cast<size_t>(K));
					double sum = 0;
					for (double &v : proba)
						sum += v = static_cast<double>(g() % 100 + 1);
					for (double &v : proba)
						v /= sum;
					const int truth = static_cast<int>(g() % static_cast<uint64_t>(K));
					for (;;) {
						s = pgml::evalstate::shape_of(state.data(), state.size());
						pgml::evalstate::Shape need;
						size_t len = pgml::evalstate::add_row(state.data(), s, r % 3 == 0 ? 1 : 0, truth,
						                                      (truth + r % 2) % K, proba.data(),
						                                      static_cast<double>(g() >> 11) * 0x1.0p-53, &need);
						if (len == 0)
							break;
						std::vector<double> grown(len);
						pgml::evalstate::relayout(state.data(), state.size(), grown.data(), need);
						state.swap(grown);
					}
				}
				states.push_back(state);
			}
			std::vector<uint8_t> seed;
			pgml_fuzz::put_array(seed, p.encode());
			pgml_fuzz::put_array(seed, states[0]);
			pgml_fuzz::put_array(seed, states[1]);
			seed.push_back(static_cast<uint8_t>(K - 1)); // the target's K = 1 + byte % 6
			seed.push_back(0);                           // with probabilities
			std::vector<uint8_t> rows = row_bytes(static_cast<uint64_t>(100 + i), 300);
			seed.insert(seed.end(), rows.begin(), rows.end());
			write("fuzz_eval_state", "state_" + std::to_string(i), seed);
			i++;
		}
	}
}

void kmeans_seeds()
{
	// columns: numeric x1 (feature 0, imputed 0.5), text c with levels l0, l1 (features 1, 2) and
	// NULL (feature 3), numeric x2 (feature 4); two centres
	Eigen::MatrixXd centres(2, 5);
	centres << -1, 0.5, -0.5, 0, 1, 1, -0.5, 0.5, 0, -1;
	pgml::kmeans_step::Params p =
		pgml_test::three_column_step(42, 0.25, 0, {0.5, 0.3, 0.3, 0.1, -1}, {2, 0.5, 0.5, 0.3, 1}, centres);
	std::vector<std::string> levels = {"l0", "l1"};
	pgml::kmeans_step::Step step(p, levels);
	std::vector<std::vector<double>> states;
	std::mt19937_64 g(3);
	for (int part = 0; part < 2; part++) {
		std::vector<double> state(step.state_length());
		step.init(state.data());
		for (int r = 0; r < 30; r++) {
			bool isnull[3] = {r % 7 == 3, r % 5 == 1, false};
			double num[3] = {static_cast<double>(g() % 100) / 10, 0, static_cast<double>(g() % 50) / 10 - 2};
			const char *str[3] = {nullptr, levels[static_cast<size_t>(r % 2)].c_str(), nullptr};
			size_t len[3] = {0, 2, 0};
			pgml::kmeans_step::Row row;
			row.isnull = isnull;
			row.num = num;
			row.str = str;
			row.len = len;
			step.add_row(state.data(), state.size(), row);
		}
		states.push_back(state);
	}
	std::vector<uint8_t> seed;
	pgml_fuzz::put_array(seed, p.encode());
	pgml_fuzz::put_array(seed, states[0]);
	pgml_fuzz::put_array(seed, states[1]);
	seed.push_back(1); // the levels: as many as the parameters want
	seed.push_back(1);
	seed.push_back(1);
	std::vector<uint8_t> rows = row_bytes(200, 300);
	seed.insert(seed.end(), rows.begin(), rows.end());
	write("fuzz_kmeans_step", "state_0", seed);
}

} // namespace

// Per-group containers (grouped.hpp): the table grouped by its last column, flag.
void grouped_seeds()
{
	struct GroupedCase {
		Algorithm algorithm;
		int classes;
		bool fallback;
	};
	for (const GroupedCase &c : {GroupedCase{Algorithm::LinearRegression, 0, false},
	                             GroupedCase{Algorithm::DecisionTree, 2, true}}) {
		Table t = table(c.classes);
		Table sub = t;
		sub.features.pop_back();
		pgml::TrainSpec spec = pgml_test::make_spec(sub, c.algorithm, 0.25);
		if (c.algorithm == Algorithm::DecisionTree)
			spec.hyperparams = opts({{"max_depth", n(2)}});
		pgml::GroupSpec gs;
		gs.columns = {t.features.back()};
		gs.fallback_all = c.fallback;
		pgml::GroupedTrainer tr(spec, gs);
		for (size_t b = 0; b < t.size(); b += 7) {
			pgml_test::BatchData bd(t, b, std::min(t.size(), b + 7));
			tr.add_batch(bd.batch(), nullptr);
		}
		std::unique_ptr<pgml::Model> m = tr.finish(nullptr, nullptr);
		m->binding = {1, 1};
		write("fuzz_model_blob", std::string("grouped_") + pgml::algorithm_name(c.algorithm), m->serialize());
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	g_dir = argv[1];
	try {
		model_seeds();
		grouped_seeds();
		stats_seeds();
		eval_seeds();
		kmeans_seeds();
	} catch (const pgml::Error &e) {
		std::fprintf(stderr, "pgml_fuzz_seeds: %s (%s)\n", e.what(), e.detail().c_str());
		return 1;
	}
	std::printf("pgml_fuzz_seeds: %d seeds in %s\n", g_written, g_dir.c_str());
	return 0;
}
