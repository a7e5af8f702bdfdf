// Preprocessing through the Trainer: imputation, one-hot encoding, option validation,
// non-finite values, NULL targets and de-duplication.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "preprocess.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

// x = {1, 2, 3, 10, NULL, NULL} and a numeric target.
Table imputation_table()
{
	Table t;
	t.features = {numeric_col("x"), numeric_col("w")};
	t.target = numeric_col("y");
	const double xs[] = {1, 2, 3, 10, NAN, NAN};
	for (int i = 0; i < 6; i++)
		t.add({std::isnan(xs[i]) ? null() : num(xs[i]), num(i * i)}, num(i + 0.25 * (i % 2)));
	return t;
}

bool contains(const std::string &hay, const std::string &needle) { return hay.find(needle) != std::string::npos; }

} // namespace

TEST(Preprocess, MeanMedianConstantImputation)
{
	Table t = imputation_table();
	struct Case {
		const char *impute;
		double expected;
	} cases[] = {{"mean", 4.0}, {"median", 2.5}, {"constant", -7.5}};
	for (const Case &c : cases) {
		SCOPED_TRACE(c.impute);
		pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
		spec.preprocess["columns.x.impute"] = OptionValue::of_string(c.impute);
		if (std::string(c.impute) == "constant")
			spec.preprocess["columns.x.impute_value"] = OptionValue::of_number(-7.5);
		Trained r = train(spec, t);
		EXPECT_EQ(r.model->prep.columns[0].impute_value, c.expected);
		EXPECT_EQ(json_number(r.result.report_json, {"imputed", "x"}), 2);
		// the NULL rows predict like rows with the imputed value
		double a = predict(*r.model, {null(), num(3)})[0];
		double b = predict(*r.model, {num(c.expected), num(3)})[0];
		EXPECT_EQ(a, b);
	}
	// median of an odd count, global option
	Table odd = imputation_table();
	odd.rows[3][0] = null(); // {1, 2, 3}
	pgml::TrainSpec spec = make_spec(odd, Algorithm::LinearRegression);
	spec.preprocess["impute"] = OptionValue::of_string("median");
	Trained r = train(spec, odd);
	EXPECT_EQ(r.model->prep.columns[0].impute_value, 2.0);
	EXPECT_EQ(r.model->preprocess.for_column("x").impute, pgml::Impute::Median);
}

TEST(Preprocess, MedianImputationForLogisticRegression)
{
	Table t;
	t.features = {numeric_col("x")};
	t.target = text_col("label");
	const double xs[] = {5, 1, NAN, 4, 2, 3, 100, NAN};
	for (int i = 0; i < 8; i++)
		t.add({std::isnan(xs[i]) ? null() : num(xs[i])}, str(i % 2 ? "a" : "b"));
	pgml::TrainSpec spec = make_spec(t, Algorithm::LogisticRegression);
	spec.preprocess["impute"] = OptionValue::of_string("median");
	Trained r = train(spec, t);
	EXPECT_EQ(r.model->prep.columns[0].impute_value, 3.5); // median of {1,2,3,4,5,100}
}

TEST(Preprocess, OneHotLevelsSortedWithNullLevel)
{
	Table t;
	t.features = {text_col("plan"), numeric_col("x")};
	t.target = numeric_col("y");
	const char *plans[] = {"silver", "gold", "bronze", "Gold", "gold", nullptr, "silver"};
	for (int i = 0; i < 7; i++)
		t.add({plans[i] ? str(plans[i]) : null(), num(i)}, num(i * 2.0 + (plans[i] ? 0 : 5)));
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	const auto &names = r.model->prep.feature_names;
	EXPECT_EQ(names, (std::vector<std::string>{"plan=Gold", "plan=bronze", "plan=gold", "plan=silver", "plan=NULL", "x"}));
	const pgml::FittedColumn &fc = r.model->prep.columns[0];
	EXPECT_EQ(fc.levels, (std::vector<std::string>{"Gold", "bronze", "gold", "silver"}));
	EXPECT_EQ(fc.null_feature, 4);
	EXPECT_EQ(fc.first_feature, 0);
	EXPECT_EQ(fc.n_features, 5);
	EXPECT_EQ(r.model->prep.columns[1].first_feature, 5);
	EXPECT_EQ(r.model->prep.level_feature(0, "gold"), 2);
	EXPECT_EQ(r.model->prep.level_feature(0, "platinum"), -1);
	// one-hot features are not scaled
	for (int k = 0; k < 5; k++) {
		EXPECT_EQ(r.model->prep.center(k), 0.0);
		EXPECT_EQ(r.model->prep.scale(k), 1.0);
	}
	// describes itself
	std::string js = r.model->prep.to_json();
	EXPECT_TRUE(contains(js, "\"levels\":[\"Gold\",\"bronze\",\"gold\",\"silver\"]")) << js;
	EXPECT_TRUE(contains(js, "\"null_level\":true")) << js;

	// without NULLs there is no NULL feature, and a NULL at prediction counts as unseen
	Table nn = t;
	nn.rows[5][0] = str("gold");
	Trained r2 = train(make_spec(nn, Algorithm::LinearRegression), nn);
	EXPECT_EQ(r2.model->prep.columns[0].null_feature, -1);
	EXPECT_EQ(r2.model->prep.p(), 5);
	std::vector<pgml::Value> vals(2);
	vals[0].isnull = true;
	vals[1].isnull = false;
	vals[1].num = 1;
	double out = 0;
	int64_t unseen = 0;
	r2.model->predict(vals.data(), &out, &unseen);
	EXPECT_EQ(unseen, 1);
	vals[0].isnull = false;
	vals[0].str = "platinum";
	vals[0].len = 8;
	r2.model->predict(vals.data(), &out, &unseen);
	EXPECT_EQ(unseen, 2);
	vals[0].str = "goldXX"; // only the first len bytes count
	vals[0].len = 4;
	r2.model->predict(vals.data(), &out, &unseen);
	EXPECT_EQ(unseen, 2);
}

TEST(Preprocess, MaxLevelsExceeded)
{
	Table t;
	t.features = {numeric_col("x"), text_col("city")};
	t.target = numeric_col("y");
	for (int i = 0; i < 12; i++)
		t.add({num(i), str("c" + std::to_string(i % 6))}, num(i));
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
	spec.preprocess["columns.city.max_levels"] = OptionValue::of_number(5);
	pgml::Error e = expect_error([&] { train(spec, t); }, ErrorCode::ProgramLimit);
	EXPECT_TRUE(contains(e.what(), "\"city\"")) << e.what();
	EXPECT_TRUE(contains(e.what(), "6 distinct values")) << e.what();
	EXPECT_TRUE(contains(e.hint(), "max_levels")) << e.hint();
	// the NULL level counts too
	spec.preprocess["columns.city.max_levels"] = OptionValue::of_number(6);
	EXPECT_NO_THROW(train(spec, t));
	t.rows[0][1] = null(); // c0 still occurs in row 6: 6 levels + NULL
	expect_error([&] { train(spec, t); }, ErrorCode::ProgramLimit);
	// the global default applies to every column
	pgml::TrainSpec g = make_spec(t, Algorithm::LinearRegression);
	g.preprocess["max_levels"] = OptionValue::of_number(2);
	expect_error([&] { train(g, t); }, ErrorCode::ProgramLimit);
}

TEST(Preprocess, InvalidPreprocessOptions)
{
	Table t = imputation_table();
	auto try_opt = [&](const std::string &key, OptionValue v) {
		pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
		spec.preprocess[key] = v;
		return expect_error([&] { pgml::Trainer tr(spec); }, ErrorCode::InvalidParameter);
	};
	pgml::Error e = try_opt("imputation", OptionValue::of_string("mean"));
	EXPECT_TRUE(contains(e.what(), "imputation")) << e.what();
	EXPECT_TRUE(contains(e.hint(), "Valid keys")) << e.hint();
	EXPECT_TRUE(contains(e.hint(), "impute")) << e.hint();
	try_opt("impute", OptionValue::of_string("mode"));
	try_opt("impute", OptionValue::of_number(1));
	try_opt("scale", OptionValue::of_string("log"));
	try_opt("impute_value", OptionValue::of_string("x"));
	try_opt("impute_value", OptionValue::of_number(NAN));
	try_opt("max_levels", OptionValue::of_number(0));
	try_opt("max_levels", OptionValue::of_number(2.5));
	try_opt("max_levels", OptionValue::of_number(100001));
	try_opt("dedupe", OptionValue::of_string("yes"));
	try_opt("nonfinite", OptionValue::of_string("ignore"));
	e = try_opt("columns.nosuch.impute", OptionValue::of_string("mean"));
	EXPECT_TRUE(contains(e.detail(), "nosuch")) << e.detail();
	try_opt("columns.x.dedupe", OptionValue::of_bool(true));
	try_opt("columns.x", OptionValue::of_string("mean"));
	// valid ones pass
	pgml::TrainSpec ok = make_spec(t, Algorithm::LinearRegression);
	ok.preprocess["scale"] = OptionValue::of_string("minmax");
	ok.preprocess["columns.w.scale"] = OptionValue::of_string("none");
	ok.preprocess["dedupe"] = OptionValue::of_bool(true);
	ok.preprocess["nonfinite"] = OptionValue::of_string("drop");
	EXPECT_NO_THROW(pgml::validate_spec(ok));
	pgml::PreprocessOptions po = pgml::parse_preprocess(ok.preprocess, ok.features);
	EXPECT_EQ(po.for_column("x").scale, pgml::Scale::MinMax);
	EXPECT_EQ(po.for_column("w").scale, pgml::Scale::None);
	EXPECT_TRUE(po.dedupe);
	EXPECT_TRUE(po.drop_nonfinite);
}

TEST(Preprocess, InvalidHyperparameters)
{
	Table t = imputation_table();
	auto try_hp = [&](Algorithm a, const std::string &key, OptionValue v) {
		pgml::TrainSpec spec = make_spec(t, a);
		if (a == Algorithm::LogisticRegression) {
			spec.target = text_col("label");
		}
		spec.hyperparams[key] = v;
		return expect_error([&] { pgml::Trainer tr(spec); }, ErrorCode::InvalidParameter);
	};
	pgml::Error e = try_hp(Algorithm::Ridge, "lambda", OptionValue::of_number(1));
	EXPECT_TRUE(contains(e.what(), "lambda")) << e.what();
	EXPECT_TRUE(contains(e.hint(), "alpha")) << e.hint();
	e = try_hp(Algorithm::Ridge, "alpha", OptionValue::of_number(-1));
	EXPECT_TRUE(contains(e.hint(), "alpha")) << e.hint();
	try_hp(Algorithm::Ridge, "alpha", OptionValue::of_string("1"));
	try_hp(Algorithm::Ridge, "alpha", OptionValue::of_number(INFINITY));
	e = try_hp(Algorithm::LinearRegression, "alpha", OptionValue::of_number(1));
	EXPECT_TRUE(contains(e.hint(), "fit_intercept")) << e.hint(); // its one hyperparameter
	e = try_hp(Algorithm::LogisticRegression, "penalty", OptionValue::of_string("l1"));
	for (const char *k : {"C", "max_iter", "tol"})
		EXPECT_TRUE(contains(e.hint(), k)) << e.hint();
	e = try_hp(Algorithm::LogisticRegression, "C", OptionValue::of_number(0));
	EXPECT_TRUE(contains(e.hint(), "max_iter")) << e.hint();
	try_hp(Algorithm::LogisticRegression, "max_iter", OptionValue::of_number(0));
	try_hp(Algorithm::LogisticRegression, "max_iter", OptionValue::of_number(10.5));
	try_hp(Algorithm::LogisticRegression, "max_iter", OptionValue::of_number(2e6));
	try_hp(Algorithm::LogisticRegression, "tol", OptionValue::of_number(0));
	try_hp(Algorithm::LogisticRegression, "tol", OptionValue::of_bool(true));
	// test_size out of range
	for (double ts : {-0.1, 1.0, 2.0, static_cast<double>(NAN)}) {
		pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression, ts);
		expect_error([&] { pgml::Trainer tr(spec); }, ErrorCode::InvalidParameter);
	}
	// regression on a text target
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
	spec.target = text_col("label");
	expect_error([&] { pgml::Trainer tr(spec); }, ErrorCode::DatatypeMismatch);
	spec.features.clear();
	expect_error([&] { pgml::validate_spec(spec); }, ErrorCode::InvalidParameter);
}

TEST(Preprocess, NonFiniteFeatureIsAnErrorNamingTheColumn)
{
	for (double bad : {NAN, INFINITY, -INFINITY}) {
		Table t = imputation_table();
		t.rows[2][1] = num(bad);
		pgml::Trainer tr(make_spec(t, Algorithm::LinearRegression));
		pgml::Error e = expect_error([&] { feed(tr, t); }, ErrorCode::DataException);
		EXPECT_TRUE(contains(e.what(), "\"w\"")) << e.what();
		EXPECT_TRUE(contains(e.what(), std::isnan(bad) ? "NaN" : "Infinity")) << e.what();
		EXPECT_TRUE(contains(e.hint(), "nonfinite")) << e.hint();
	}
	// in the target too
	Table t = imputation_table();
	t.y[1] = num(NAN);
	pgml::Trainer tr(make_spec(t, Algorithm::LinearRegression));
	pgml::Error e = expect_error([&] { feed(tr, t); }, ErrorCode::DataException);
	EXPECT_TRUE(contains(e.what(), "target column \"y\"")) << e.what();
	// and prediction rejects them
	Trained r = train(make_spec(imputation_table(), Algorithm::LinearRegression), imputation_table());
	e = expect_error([&] { predict(*r.model, {num(1), num(NAN)}); }, ErrorCode::DataException);
	EXPECT_TRUE(contains(e.what(), "\"w\"")) << e.what();
}

TEST(Preprocess, NonFiniteDropRemovesAndCountsRows)
{
	Table clean = imputation_table();
	Table t = clean;
	t.add({num(NAN), num(1)}, num(3));      // NaN feature
	t.add({num(2), num(INFINITY)}, num(3)); // infinite feature
	t.add({num(2), num(1)}, num(-INFINITY)); // infinite target
	t.add({null(), num(1)}, null());         // NULL target: skipped, not dropped
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
	spec.preprocess["nonfinite"] = OptionValue::of_string("drop");
	Trained r = train(spec, t);
	EXPECT_EQ(json_number(r.result.report_json, {"rows_dropped_nonfinite"}), 3);
	EXPECT_EQ(json_number(r.result.report_json, {"rows_skipped_null_target"}), 1);
	EXPECT_EQ(json_number(r.result.report_json, {"rows_read"}), 10);
	EXPECT_EQ(r.result.rows_train, 6);
	Trained ref = train(make_spec(clean, Algorithm::LinearRegression), clean);
	EXPECT_LT(max_rel_diff(r.model->W, ref.model->W), 1e-12);
	EXPECT_LT(max_rel_diff(r.model->b, ref.model->b), 1e-12);
}

TEST(Preprocess, AllNullTargetAndNoRows)
{
	Table t = imputation_table();
	for (auto &y : t.y)
		y = null();
	pgml::Error e = expect_error([&] { train(make_spec(t, Algorithm::LinearRegression), t); }, ErrorCode::DataException);
	EXPECT_TRUE(contains(e.what(), "NULL in every row")) << e.what();
	Table c = t;
	c.target = text_col("label");
	expect_error([&] { train(make_spec(c, Algorithm::LogisticRegression), c); }, ErrorCode::DataException);
	// no batches at all
	Table empty = imputation_table().slice(0, 0);
	expect_error([&] { train(make_spec(empty, Algorithm::LinearRegression), empty); }, ErrorCode::DataException);
	expect_error([&] { train(make_spec(empty, Algorithm::LogisticRegression), empty); }, ErrorCode::DataException);
	// a feature that is NULL everywhere
	Table nx = imputation_table();
	for (auto &row : nx.rows)
		row[0] = null();
	e = expect_error([&] { train(make_spec(nx, Algorithm::LinearRegression), nx); }, ErrorCode::DataException);
	EXPECT_TRUE(contains(e.what(), "\"x\"")) << e.what();
}

TEST(Preprocess, OneClassOnly)
{
	Table t;
	t.features = {numeric_col("x")};
	t.target = text_col("label");
	for (int i = 0; i < 10; i++)
		t.add({num(i)}, i == 4 ? null() : str("only"));
	pgml::Error e = expect_error([&] { train(make_spec(t, Algorithm::LogisticRegression), t); }, ErrorCode::DataException);
	EXPECT_TRUE(contains(e.what(), "only one class")) << e.what();
	EXPECT_TRUE(contains(e.what(), "only")) << e.what();
}

TEST(Preprocess, DedupeRemovesExactDuplicates)
{
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = numeric_col("y");
	for (int rep = 0; rep < 3; rep++)
		for (int i = 0; i < 5; i++)
			t.add({num(i), str(i % 2 ? "odd" : "even")}, num(i * 1.5 + (i % 2)));
	t.add({num(0), str("even")}, num(99));   // same features, other target: kept
	t.add({num(0), str("odd")}, num(0));     // other level: kept
	t.add({null(), str("even")}, num(1));    // NULL
	t.add({null(), str("even")}, num(1));    // duplicate of the NULL row
	t.add({num(-0.0), str("even")}, num(0)); // -0 equals 0: duplicate of the first row
	pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
	spec.preprocess["dedupe"] = OptionValue::of_bool(true);
	Trained r = train(spec, t, 4);
	EXPECT_EQ(json_number(r.result.report_json, {"rows_duplicate_removed"}), 12);
	EXPECT_EQ(r.result.rows_train, 8);
	// same model as training on the distinct rows
	Table distinct = t.slice(0, 5);
	distinct.add({num(0), str("even")}, num(99));
	distinct.add({num(0), str("odd")}, num(0));
	distinct.add({null(), str("even")}, num(1));
	Trained ref = train(make_spec(distinct, Algorithm::LinearRegression), distinct);
	EXPECT_LT(max_rel_diff(r.model->W, ref.model->W), 1e-10);
	EXPECT_LT(max_rel_diff(r.model->b, ref.model->b), 1e-10);
	// without dedupe nothing is removed and the count is not reported
	Trained all = train(make_spec(t, Algorithm::LinearRegression), t);
	EXPECT_EQ(all.result.rows_train, static_cast<int64_t>(t.size()));
	EXPECT_EQ(all.result.report_json.find("rows_duplicate_removed"), std::string::npos);
}

TEST(Preprocess, ScalingIsFoldedIntoCoefficients)
{
	// linear_regression is invariant to the scaling choice
	Table t = imputation_table();
	t.rows[4][0] = num(7);
	t.rows[5][0] = num(-3);
	Trained ref = train(make_spec(t, Algorithm::LinearRegression), t);
	for (const char *s : {"minmax", "none"}) {
		pgml::TrainSpec spec = make_spec(t, Algorithm::LinearRegression);
		spec.preprocess["scale"] = OptionValue::of_string(s);
		Trained r = train(spec, t);
		EXPECT_LT(max_rel_diff(r.model->W, ref.model->W), 1e-9) << s;
		EXPECT_LT(max_rel_diff(r.model->b, ref.model->b), 1e-9) << s;
	}
	pgml::TrainSpec mm = make_spec(t, Algorithm::LinearRegression);
	mm.preprocess["scale"] = OptionValue::of_string("minmax");
	Trained r = train(mm, t);
	EXPECT_EQ(r.model->prep.center(0), -3.0);
	EXPECT_EQ(r.model->prep.scale(0), 13.0);
	EXPECT_EQ(r.model->prep.center(1), 0.0);
	EXPECT_EQ(r.model->prep.scale(1), 25.0);
	// standard: population mean and standard deviation
	const pgml::Preprocessor &pp = ref.model->prep;
	EXPECT_NEAR(pp.center(1), 55.0 / 6, 1e-12);
	double var = 0;
	for (int i = 0; i < 6; i++)
		var += (i * i - 55.0 / 6) * (i * i - 55.0 / 6);
	EXPECT_NEAR(pp.scale(1), std::sqrt(var / 6), 1e-12);
}
