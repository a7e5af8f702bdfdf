// Naive Bayes through aggregates (Trainer::add_class_group, eval_state.hpp): a run fed by the
// groups of ml.train_stats (grouped by the categorical features, the class and the split) and
// evaluated through ml.eval_stats states must give the model and metrics a run fed row by row
// gives, whatever way the rows are split between partial states; malformed evaluation states
// and parameters are errors.
#include <algorithm>
#include <map>
#include <tuple>

#include "agg_test_util.hpp"

using namespace pgml_test;
using pgml::Algorithm;
namespace st = pgml::stats;
namespace ev = pgml::evalstate;

namespace {

// Classes a / b / c from x1, plan (with NULLs) and x2 (with NULLs); some NULL targets.
Table class_table(size_t n, uint64_t seed, bool numeric_target = false)
{
	std::mt19937_64 rng(seed);
	std::normal_distribution<double> g(0, 1);
	const char *plans[] = {"gold", "silver", "bronze"};
	const char *classes[] = {"a", "b", "c"};
	Table t;
	t.features = {numeric_col("x1"), text_col("plan"), numeric_col("x2"), text_col("size")};
	t.target = numeric_target ? pgml::ColumnInfo{"y", pgml::TypeClass::Numeric, "integer"} : text_col("y");
	for (size_t i = 0; i < n; i++) {
		size_t k = rng() % 3, p = (k + rng() % 2) % 4;
		double x1 = g(rng) + 1.5 * static_cast<double>(k), x2 = g(rng) * 2 - static_cast<double>(k);
		bool x2null = rng() % 9 == 0;
		Cell y = rng() % 50 == 0 ? null() : numeric_target ? num(static_cast<double>(k) * 10) : str(classes[k]);
		t.add({num(x1), p == 3 ? null() : str(plans[p]), x2null ? null() : num(x2), str(rng() % 2 ? "s" : "l")}, y);
	}
	return t;
}

std::string label_of(const Table &t, size_t i)
{
	return t.target.categorical() ? t.y[i].str : pgml::numeric_label(t.target.type_class, t.y[i].num);
}

// Trains naive Bayes the way the glue does (eval_aggregate.cpp): the per class cuts, the
// statistics grouped by (categorical levels, class, split) with each group's rows spread over
// `parts` partial states merged in order or in reverse, then the evaluation states. Returns
// false in *ok when the split cannot be reproduced.
Trained train_nb_aggregated(const pgml::TrainSpec &spec, const Table &t, int parts, bool reverse,
                            const pgml::Model *base = nullptr, bool *ok = nullptr)
{
	std::unique_ptr<pgml::Trainer> tr = base ? std::make_unique<pgml::Trainer>(spec, *base, true)
	                                         : std::make_unique<pgml::Trainer>(spec);
	EXPECT_TRUE(tr->uses_class_aggregate());
	EXPECT_FALSE(tr->uses_stats_aggregate());
	std::vector<double> pv = tr->class_stats_params();
	st::Params p = st::Params::decode(pv.data(), pv.size());
	const size_t n = t.size();
	std::vector<double> draw(n);
	std::map<std::string, std::vector<double>> by_class;
	for (size_t i = 0; i < n; i++) {
		TableRow ra(t, i);
		draw[i] = ev::row_draw(p, ra.row);
		if (!std::isnan(draw[i]))
			by_class[label_of(t, i)].push_back(draw[i]);
	}
	std::map<std::string, double> cut;
	for (auto &[label, d] : by_class) {
		std::sort(d.begin(), d.end());
		std::vector<std::pair<double, int64_t>> band;
		for (double x : d) {
			if (!band.empty() && band.back().first == x)
				band.back().second++;
			else
				band.emplace_back(x, 1);
		}
		double c = 0;
		int fine = pgml::stratified_cut(spec.test_size, 0, band, 0, 1.0, &c);
		EXPECT_GE(fine, 0);
		if (ok)
			*ok = *ok && fine == 1;
		cut[label] = c;
	}
	// (levels, label, split) -> partial states; "\x01" marks NULL
	std::map<std::tuple<std::vector<std::string>, std::string, int>, std::vector<std::vector<double>>> groups;
	for (size_t i = 0; i < n; i++) {
		std::vector<std::string> key = group_key(t, i);
		std::string label = t.y[i].null ? "\x01" : label_of(t, i);
		int split = std::isnan(draw[i]) ? -1 : draw[i] < cut[label] ? 1 : 0;
		auto &states = groups[{key, label, split}];
		states.resize(static_cast<size_t>(parts));
		TableRow ra(t, i);
		stats_add(states[i % static_cast<size_t>(parts)], p, ra.row);
	}
	for (auto &[key, states] : groups) {
		std::vector<double> all;
		if (reverse)
			std::reverse(states.begin(), states.end());
		for (const auto &s : states)
			stats_merge(all, s);
		const auto &[levels, label, split] = key;
		std::vector<const char *> lv = group_levels(t, levels);
		const bool null_label = label == "\x01";
		tr->add_class_group(lv, null_label || !t.target.categorical() ? nullptr : label.c_str(),
		                    null_label || t.target.categorical() ? 0.0 : std::strtod(label.c_str(), nullptr), split,
		                    all.data(), all.size(), nullptr);
	}
	std::vector<uint8_t> blob = tr->class_fit(nullptr);
	std::unique_ptr<pgml::Model> m = pgml::Model::deserialize(blob.data(), blob.size());
	std::vector<std::string> classes = tr->class_names();
	std::vector<double> epv = tr->eval_params();
	ev::Params ep = ev::Params::decode(epv.data(), epv.size());
	const int K = static_cast<int>(classes.size());
	std::vector<std::vector<double>> estates(static_cast<size_t>(parts));
	for (size_t i = 0; i < n; i++) {
		if (std::isnan(draw[i]) || t.y[i].null)
			continue;
		int truth = static_cast<int>(std::find(classes.begin(), classes.end(), label_of(t, i)) - classes.begin());
		int pred = 0;
		std::vector<double> pr = predict(*m, t.rows[i], &pred);
		eval_add(estates[i % static_cast<size_t>(parts)], K, true, ep, draw[i] < cut[label_of(t, i)] ? 1 : 0, truth,
		         pred, pr.data(), draw[i]);
	}
	if (reverse)
		std::reverse(estates.begin(), estates.end());
	std::vector<double> eall;
	for (const auto &s : estates)
		eval_merge(eall, s);
	tr->add_eval_state(eall.data(), eall.size(), false);
	Trained out;
	out.model = tr->finish(nullptr, nullptr);
	out.result = tr->result();
	return out;
}

void expect_same(const Trained &agg, const Trained &rows, const Table &t)
{
	ASSERT_EQ(agg.model->classes, rows.model->classes);
	EXPECT_EQ(agg.result.rows_train, rows.result.rows_train);
	EXPECT_EQ(agg.result.rows_test, rows.result.rows_test);
	EXPECT_EQ(agg.result.fingerprint, rows.result.fingerprint);
	for (size_t i = 0; i < t.size(); i++) {
		std::vector<double> a = predict(*agg.model, t.rows[i]), b = predict(*rows.model, t.rows[i]);
		ASSERT_EQ(a.size(), b.size());
		for (size_t k = 0; k < a.size(); k++)
			ASSERT_NEAR(a[k], b[k], 1e-9) << "row " << i;
	}
	Eigen::VectorXd ia = agg.model->estimator->importance(), ib = rows.model->estimator->importance();
	for (Eigen::Index f = 0; f < ia.size(); f++)
		EXPECT_NEAR(ia(f), ib(f), 1e-9 * (1 + std::fabs(ib(f))));
	for (const char *split : {"train", "test"}) {
		if (std::string(split) == "test" && rows.result.rows_test == 0) {
			EXPECT_EQ(agg.result.metrics_json.find("\"test\""), std::string::npos);
			continue;
		}
		for (const char *name : {"accuracy", "precision", "recall", "f1", "log_loss", "roc_auc", "rows"}) {
			double x = json_number(agg.result.metrics_json, {split, name}), y = json_number(rows.result.metrics_json, {split, name});
			ASSERT_FALSE(std::isnan(y)) << split << " " << name;
			EXPECT_NEAR(x, y, 1e-9) << split << " " << name;
		}
	}
	// the confusion matrices (and so the per class counts) are the same
	auto confusions = [](const std::string &j) {
		std::string out;
		for (size_t at = j.find("confusion_matrix"); at != std::string::npos; at = j.find("confusion_matrix", at + 1))
			out += j.substr(at, j.find("]]", at) - at) + ";";
		return out;
	};
	EXPECT_EQ(confusions(agg.result.metrics_json), confusions(rows.result.metrics_json));
	EXPECT_FALSE(confusions(rows.result.metrics_json).empty());
	EXPECT_EQ(json_number(agg.result.report_json, {"imputed", "x2"}), json_number(rows.result.report_json, {"imputed", "x2"}));
	ASSERT_EQ(agg.result.log.size(), rows.result.log.size());
	for (size_t i = 0; i < agg.result.log.size(); i++)
		EXPECT_NEAR(agg.result.log[i].loss, rows.result.log[i].loss, 1e-9);
	EXPECT_NE(agg.result.report_json.find("\"reader\":\"aggregate\""), std::string::npos);
}

} // namespace

TEST(NaiveBayesAggregate, GroupsEqualRows)
{
	Table t = class_table(2500, 3);
	for (double ts : {0.25, 0.0}) {
		pgml::TrainSpec spec = make_spec(t, Algorithm::NaiveBayes, ts, 7);
		Trained rows = train(spec, t);
		for (int parts : {1, 3, 5}) {
			bool ok = true;
			Trained agg = train_nb_aggregated(spec, t, parts, parts == 3, nullptr, &ok);
			ASSERT_TRUE(ok);
			expect_same(agg, rows, t);
		}
	}
}

TEST(NaiveBayesAggregate, NumericTargetAndOptions)
{
	Table t = class_table(1500, 9, true);
	pgml::TrainSpec spec = make_spec(t, Algorithm::NaiveBayes, 0.3, 1);
	spec.task = pgml::Task::Classification;
	spec.preprocess["scale"] = pgml::OptionValue::of_string("minmax");
	spec.preprocess["columns.x2.impute"] = pgml::OptionValue::of_string("constant");
	spec.preprocess["columns.x2.impute_value"] = pgml::OptionValue::of_number(-2);
	Trained rows = train(spec, t);
	Trained agg = train_nb_aggregated(spec, t, 2, true);
	ASSERT_EQ(agg.model->classes, (std::vector<std::string>{"0", "10", "20"}));
	for (size_t i = 0; i < t.size(); i++) {
		std::vector<double> a = predict(*agg.model, t.rows[i]), b = predict(*rows.model, t.rows[i]);
		for (size_t k = 0; k < a.size(); k++)
			ASSERT_NEAR(a[k], b[k], 1e-9);
	}
	EXPECT_NEAR(json_number(agg.result.metrics_json, {"test", "log_loss"}),
	            json_number(rows.result.metrics_json, {"test", "log_loss"}), 1e-9);
	EXPECT_EQ(agg.result.fingerprint, rows.result.fingerprint);
}

TEST(NaiveBayesAggregate, IncrementalEqualsRows)
{
	Table t = class_table(3000, 21);
	Table a = t.slice(0, 1800), b = t.slice(1800, 3000);
	pgml::TrainSpec spec = make_spec(t, Algorithm::NaiveBayes, 0.2, 5);
	Trained base = train(spec, a);
	Trained rows = retrain(spec, *base.model, true, b);
	Trained agg = train_nb_aggregated(spec, b, 3, false, base.model.get());
	ASSERT_EQ(agg.model->classes, rows.model->classes);
	for (size_t i = 0; i < t.size(); i++) {
		std::vector<double> x = predict(*agg.model, t.rows[i]), y = predict(*rows.model, t.rows[i]);
		for (size_t k = 0; k < x.size(); k++)
			ASSERT_NEAR(x[k], y[k], 1e-9);
	}
	EXPECT_EQ(agg.result.rows_train, rows.result.rows_train);
	EXPECT_NEAR(json_number(agg.result.metrics_json, {"test", "accuracy"}),
	            json_number(rows.result.metrics_json, {"test", "accuracy"}), 1e-12);
	// naive Bayes adds counts: the continued model is the base's counts plus the new rows'
	EXPECT_NEAR(json_number(rows.result.report_json, {"rows_added"}), static_cast<double>(rows.result.rows_train), 0);
}

TEST(NaiveBayesAggregate, IncrementalWithSomeClassesOnly)
{
	// new rows holding one of the model's classes only: the update keeps every class (was a
	// crash: the new rows' label ids were taken for the model's class ids)
	Table t = class_table(3000, 21);
	Table a = t.slice(0, 1800), b;
	b.features = t.features;
	b.target = t.target;
	for (size_t i = 1800; i < t.size(); i++)
		if (!t.y[i].null && t.y[i].str == "b")
			b.add(t.rows[i], t.y[i]);
	pgml::TrainSpec spec = make_spec(t, Algorithm::NaiveBayes, 0.2, 5);
	Trained base = train(spec, a);
	Trained rows = retrain(spec, *base.model, true, b);
	Trained agg = train_nb_aggregated(spec, b, 3, false, base.model.get());
	ASSERT_EQ(rows.model->classes, base.model->classes);
	ASSERT_EQ(agg.model->classes, base.model->classes);
	for (size_t i = 0; i < t.size(); i++) {
		std::vector<double> x = predict(*agg.model, t.rows[i]), y = predict(*rows.model, t.rows[i]);
		ASSERT_EQ(x.size(), 3u);
		for (size_t k = 0; k < x.size(); k++)
			ASSERT_NEAR(x[k], y[k], 1e-9);
	}
}

TEST(NaiveBayesAggregate, DuplicateRowsAcrossTheCutAreReported)
{
	// n = 10, test_size 0.3: the 3 smallest draws are held out, so the cut is the 4th draw
	double cut = 0;
	EXPECT_EQ(pgml::stratified_cut(0.3, 1, {{0.1, 2}, {0.3, 1}, {0.4, 1}}, 5, 0.5, &cut), 1);
	EXPECT_EQ(cut, 0.3);
	// duplicate rows (equal draws) on both sides of the cut: not reproducible from aggregates
	EXPECT_EQ(pgml::stratified_cut(0.3, 1, {{0.1, 1}, {0.2, 2}, {0.4, 1}}, 5, 0.5, &cut), 0);
	// the cut outside [lo, hi): more rows below lo than are held out, or fewer in and below the band
	EXPECT_EQ(pgml::stratified_cut(0.3, 4, {{0.3, 1}}, 5, 0.5, &cut), -1);
	EXPECT_EQ(pgml::stratified_cut(0.3, 1, {{0.3, 1}}, 8, 0.5, &cut), -1);
	// every band row held out: the cut is hi
	EXPECT_EQ(pgml::stratified_cut(0.3, 1, {{0.3, 1}, {0.35, 1}}, 7, 0.5, &cut), 1);
	EXPECT_EQ(cut, 0.5);
	// no test rows: nothing is below the smallest draw
	EXPECT_EQ(pgml::stratified_cut(0.0, 0, {{0.05, 1}, {0.07, 1}}, 8, 0.5, &cut), 1);
	EXPECT_EQ(cut, 0.05);
	// at least one row stays for training
	EXPECT_EQ(pgml::stratified_cut(0.99, 0, {{0.05, 1}, {0.07, 1}}, 0, 1, &cut), 1);
	EXPECT_EQ(cut, 0.07);
	EXPECT_THROW(pgml::stratified_cut(0.3, 0, {}, 0, 1, &cut), pgml::Error);
}

TEST(EvalState, MergeIsOrderIndependent)
{
	std::mt19937_64 rng(4);
	ev::Params p;
	p.sample_k = 50;
	const int K = 3;
	struct R {
		int t, truth, pred;
		double pr[3], u;
	};
	std::vector<R> rows(400);
	for (R &r : rows) {
		r.t = rng() % 4 == 0;
		r.truth = static_cast<int>(rng() % K);
		double a = (rng() % 1000 + 1) / 1000.0, b = (rng() % 1000 + 1) / 1000.0, c = (rng() % 1000 + 1) / 1000.0;
		r.pr[0] = a / (a + b + c), r.pr[1] = b / (a + b + c), r.pr[2] = c / (a + b + c);
		r.pred = static_cast<int>(std::max_element(r.pr, r.pr + 3) - r.pr);
		r.u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
	}
	auto run = [&](int parts, bool reverse) {
		std::vector<std::vector<double>> s(static_cast<size_t>(parts));
		for (size_t i = 0; i < rows.size(); i++)
			eval_add(s[(i * 7) % static_cast<size_t>(parts)], K, true, p, rows[i].t, rows[i].truth, rows[i].pred,
			         rows[i].pr, rows[i].u);
		if (reverse)
			std::reverse(s.begin(), s.end());
		std::vector<double> all;
		for (const auto &x : s)
			eval_merge(all, x);
		return ev::decode(all.data(), all.size());
	};
	ev::Decoded one = run(1, false);
	EXPECT_EQ(one.split[0].n + one.split[1].n, 400);
	EXPECT_EQ(one.split[1].sample_truth.size(), std::min<size_t>(50, static_cast<size_t>(one.split[1].n)));
	for (auto [parts, rev] : {std::pair{2, false}, std::pair{5, true}, std::pair{7, false}}) {
		ev::Decoded d = run(parts, rev);
		for (int t = 0; t < 2; t++) {
			EXPECT_EQ(d.split[t].n, one.split[t].n);
			EXPECT_TRUE(d.split[t].confusion == one.split[t].confusion);
			EXPECT_NEAR(d.split[t].log_loss_sum, one.split[t].log_loss_sum, 1e-9);
			EXPECT_NEAR(d.split[t].nll_sum, one.split[t].nll_sum, 1e-9);
			// the same sampled rows: the smallest draws
			std::vector<double> a = d.split[t].sample_u, b = one.split[t].sample_u;
			std::sort(a.begin(), a.end());
			std::sort(b.begin(), b.end());
			EXPECT_EQ(a, b);
			std::vector<std::string> names = {"x", "y", "z"};
			EXPECT_EQ(ev::split_json(d.split[t], names, true).substr(0, 40), ev::split_json(one.split[t], names, true).substr(0, 40));
		}
	}
	// the sample: exact roc_auc while it holds every row, flagged once it does not
	std::vector<std::string> names = {"x", "y", "z"};
	EXPECT_NE(ev::split_json(one.split[0], names, true).find("roc_auc_sample_rows"), std::string::npos);
	p.sample_k = 1000;
	EXPECT_EQ(ev::split_json(run(3, false).split[0], names, true).find("roc_auc_sample_rows"), std::string::npos);
}

TEST(EvalState, MalformedStatesAndParametersAreErrors)
{
	EXPECT_THROW(ev::Params::decode(nullptr, 0), pgml::Error);
	double bad1[] = {2, 10};
	EXPECT_THROW(ev::Params::decode(bad1, 2), pgml::Error);
	double bad2[] = {1, -3};
	EXPECT_THROW(ev::Params::decode(bad2, 2), pgml::Error);
	double bad3[] = {1, 2.5};
	EXPECT_THROW(ev::Params::decode(bad3, 2), pgml::Error);
	ev::Params p;
	p.sample_k = 10;
	EXPECT_THROW(ev::initial_shape(0, true, p), pgml::Error);

	std::vector<double> good;
	double pr[2] = {0.3, 0.7};
	for (int i = 0; i < 30; i++)
		eval_add(good, 2, true, p, i % 2, i % 2, 1, pr, i / 30.0);
	EXPECT_NO_THROW(ev::decode(good.data(), good.size()));
	auto corrupted = [&](size_t at, double v) {
		std::vector<double> s = good;
		s[at] = v;
		return s;
	};
	for (auto [at, v] : std::vector<std::pair<size_t, double>>{
	         {0, 1}, {1, 2}, {2, -1}, {2, 1e9}, {3, 7}, {4, 1e7}, {5, -1}, {6, -1}, {6, 0.5}, {8, NAN}, {8, -1},
	         {10, INFINITY}, {12, 1e6}, {12, 3.5}, {16, -2}, {20, 0.5}, {20, 1e6}})
	{
		std::vector<double> s = corrupted(at, v);
		EXPECT_THROW(ev::decode(s.data(), s.size()), pgml::Error) << at << " " << v;
	}
	// a sampled row whose class is out of range
	{
		ev::Shape s = ev::shape_of(good.data(), good.size());
		size_t srow = 20 + 2 * 4 + static_cast<size_t>(s.cap); // header, confusions, train u
		std::vector<double> x = corrupted(srow, 5);
		EXPECT_THROW(ev::decode(x.data(), x.size()), pgml::Error);
	}
	EXPECT_THROW(ev::shape_of(good.data(), good.size() - 1), pgml::Error);
	std::vector<double> garbage(64, 3.0);
	EXPECT_THROW(ev::shape_of(garbage.data(), garbage.size()), pgml::Error);
	EXPECT_THROW(ev::shape_of(garbage.data(), 3), pgml::Error);
	// states of different models do not merge
	std::vector<double> three;
	double pr3[3] = {0.2, 0.3, 0.5};
	eval_add(three, 3, true, p, 0, 0, 2, pr3, 0.5);
	EXPECT_THROW(ev::merged_shape(good.data(), good.size(), three.data(), three.size()), pgml::Error);
	EXPECT_THROW(ev::merge(good.data(), good.size(), three.data(), three.size()), pgml::Error);
	// rows out of range are internal errors, not writes out of bounds
	ev::Shape s = ev::shape_of(good.data(), good.size()), need;
	EXPECT_THROW(ev::add_row(good.data(), s, 2, 0, 0, pr, 0.1, &need), pgml::Error);
	EXPECT_THROW(ev::add_row(good.data(), s, 0, 2, 0, pr, 0.1, &need), pgml::Error);
	EXPECT_THROW(ev::add_row(good.data(), s, 0, 0, -1, pr, 0.1, &need), pgml::Error);
}

// Found by fuzz_eval_state: a sampled row with a NaN probability made roc_auc loop forever
// (NaN never equals itself, so its group of tied scores never ended), and a NaN draw broke
// the ordering split_json sorts the sample by. NaN scores give no roc_auc; a draw outside
// [0, 1] is a corrupted state.
TEST(EvalState, NaNInTheSampleNeitherHangsNorIsSorted)
{
	ev::Params p;
	p.sample_k = 10;
	std::vector<double> good;
	double pr[2] = {0.3, 0.7};
	for (int i = 0; i < 8; i++)
		eval_add(good, 2, true, p, 0, i % 2, 1, pr, i / 8.0);
	const size_t su = 20 + 2 * 4, srow = su + static_cast<size_t>(ev::shape_of(good.data(), good.size()).cap);
	std::vector<double> s = good;
	s[srow + 3 * 3 + 2] = NAN; // row 3's probability of class 1
	ev::Decoded d = ev::decode(s.data(), s.size());
	const std::string json = ev::split_json(d.split[0], {"a", "b"}, true);
	EXPECT_EQ(json.find("roc_auc"), std::string::npos) << json; // left out: not defined
	for (double u : {static_cast<double>(NAN), -0.5, 2.0}) {
		s = good;
		s[su + 2] = u;
		EXPECT_THROW(ev::decode(s.data(), s.size()), pgml::Error) << u;
	}
}
