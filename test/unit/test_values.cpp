// Values and identities (issue 10, findings 7 to 10): feature names that cannot collide, blobs
// bound to their catalog row, out-of-range values as 22003 naming the column, and the texts
// of a model rewritten for another database encoding.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "export.hpp"
#include "json.hpp"
#include "preprocess.hpp"
#include "serialize.hpp"
#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using pgml::Model;
using pgml::OptionValue;
using namespace pgml_test;

namespace {

// The error code f throws (Internal if it throws none).
template <typename F>
ErrorCode code_of(F &&f, std::string *message = nullptr)
{
	try {
		f();
	} catch (const pgml::Error &e) {
		if (message)
			*message = e.what();
		return e.code();
	}
	return ErrorCode::Internal;
}

// A numeric column "c=a" beside a text column c with levels a and 'NULL' and real NULLs.
Table colliding_table()
{
	Table t;
	t.features = {numeric_col("c=a"), text_col("c")};
	t.target = numeric_col("y");
	const char *lv[] = {"a", "NULL", nullptr, "b"};
	for (int i = 0; i < 40; i++) {
		const char *l = lv[i % 4];
		t.add({num(i % 7), l ? str(l) : null()}, num(3.0 * (i % 7) + (i % 4) + 0.01 * i));
	}
	return t;
}

Table small_regression()
{
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = numeric_col("y");
	const char *lv[] = {"a", "b", "c"};
	for (int i = 0; i < 30; i++)
		t.add({num(i), str(lv[i % 3])}, num(2.0 * i + i % 3));
	return t;
}

// Whether the JSON text has `name` as a key.
bool has_key(const std::string &json, const std::string &name)
{
	return json.find(pgml::json_quote(name) + ":") != std::string::npos;
}

} // namespace

// ---------------------------------------------------------------- finding 9: feature names

TEST(FeatureNames, SchemeQuotesWhatCouldCollide)
{
	EXPECT_EQ(pgml::numeric_feature_name("age"), "age");
	EXPECT_EQ(pgml::numeric_feature_name("c=a"), "\"c=a\"");
	EXPECT_EQ(pgml::numeric_feature_name("say \"hi\""), "\"say \"\"hi\"\"\"");
	EXPECT_EQ(pgml::level_feature_name("c", "a"), "c=a");
	EXPECT_EQ(pgml::level_feature_name("c", "x=y"), "c=x=y");
	EXPECT_EQ(pgml::level_feature_name("c", "NULL"), "c=\"NULL\"");
	EXPECT_EQ(pgml::level_feature_name("c", "\"q"), "c=\"\"\"q\"");
	EXPECT_EQ(pgml::level_feature_name("c", ""), "c=");
	EXPECT_EQ(pgml::null_level_feature_name("c"), "c=NULL");
	EXPECT_EQ(pgml::level_feature_name("a=b", "c"), "\"a=b\"=c");
	// the pairs that used to collide are apart
	EXPECT_NE(pgml::numeric_feature_name("c=a"), pgml::level_feature_name("c", "a"));
	EXPECT_NE(pgml::null_level_feature_name("c"), pgml::level_feature_name("c", "NULL"));
	EXPECT_NE(pgml::level_feature_name("a=b", "c"), pgml::level_feature_name("a", "b=c"));
}

TEST(FeatureNames, UniqueForCollidingColumnsAndLevels)
{
	Table t = colliding_table();
	for (Algorithm a : {Algorithm::LinearRegression, Algorithm::RandomForest}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		Trained r = train(make_spec(t, a), t);
		const auto &names = r.model->prep.feature_names;
		EXPECT_EQ(names, (std::vector<std::string>{"\"c=a\"", "c=\"NULL\"", "c=a", "c=b", "c=NULL"}));
		EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
		// every feature keeps its own entry in the coefficients / importance
		std::string json = r.model->coefficients_json();
		for (const auto &n : names)
			EXPECT_TRUE(has_key(json, n)) << n << " in " << json;
		// a blob read back names its features the same way
		std::vector<uint8_t> blob = r.model->serialize();
		EXPECT_EQ(Model::deserialize(blob.data(), blob.size())->prep.feature_names, names);
	}
}

// ---------------------------------------------------------------- finding 8: blob binding

TEST(BlobBinding, WrittenAndCheckedAgainstTheRow)
{
	Table t = small_regression();
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	r.model->binding.model_id = 7;
	r.model->binding.version = 3;
	std::vector<uint8_t> blob = r.model->serialize();
	EXPECT_EQ(blob[4], pgml::kFormatVersion);
	std::unique_ptr<Model> m = Model::deserialize(blob.data(), blob.size());
	EXPECT_EQ(m->binding.model_id, 7);
	EXPECT_EQ(m->binding.version, 3);
	EXPECT_NO_THROW(m->check_binding(7, 3, "linear_regression", "regression"));
	std::string msg;
	EXPECT_EQ(code_of([&] { m->check_binding(8, 3, "linear_regression", "regression"); }), ErrorCode::DataCorrupted);
	EXPECT_EQ(code_of([&] { m->check_binding(7, 2, "linear_regression", "regression"); }), ErrorCode::DataCorrupted);
	EXPECT_EQ(code_of([&] { m->check_binding(7, 3, "ridge", "regression"); }), ErrorCode::DataCorrupted);
	EXPECT_EQ(code_of([&] { m->check_binding(7, 3, "linear_regression", "classification"); }), ErrorCode::DataCorrupted);
	// the binding is under the checksum: changing it in place breaks the blob
	std::vector<uint8_t> forged = blob;
	size_t at = pgml::kHeaderSize + 8 + std::string("pg_ml model v1").size(); // after the marker string
	forged[at] ^= 1;
	EXPECT_EQ(code_of([&] { Model::deserialize(forged.data(), forged.size()); }), ErrorCode::DataCorrupted);
}

TEST(BlobBinding, SwappedBlobOfAnotherModelIsRefused)
{
	Table t = small_regression();
	Trained a = train(make_spec(t, Algorithm::LinearRegression), t);
	Trained b = train(make_spec(t, Algorithm::LinearRegression, 0, 7), t);
	a.model->binding = {1, 1};
	b.model->binding = {2, 1};
	std::vector<uint8_t> blob_b = b.model->serialize();
	// model 1's row holding model 2's blob: same kind, same features, still refused
	std::unique_ptr<Model> m = Model::deserialize(blob_b.data(), blob_b.size());
	std::string msg;
	try {
		m->check_binding(1, 1, "linear_regression", "regression");
		FAIL() << "a swapped blob was accepted";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), ErrorCode::DataCorrupted);
		EXPECT_NE(e.detail().find("model with id 2"), std::string::npos) << e.detail();
	}
}

TEST(BlobBinding, OldFormatBlobsLoadBoundByKindOnly)
{
	// a format-1 blob (pg_ml 0.1.0 / 0.2.0): the header says 1, the payload has no binding
	Table t = small_regression();
	Trained r = train(make_spec(t, Algorithm::Ridge), t);
	std::vector<uint8_t> v2 = r.model->serialize(); // unbound: model id 0, version 0
	const uint8_t *payload = nullptr;
	pgml::open_blob(v2.data(), v2.size(), &payload);
	// rebuild it as format 1: the marker string, then the rest without the 12 binding bytes
	// (and without format 3's last byte, the statistics' precision flag)
	size_t marker = 8 + std::string("pg_ml model v1").size();
	std::vector<uint8_t> p1(payload, payload + marker);
	ASSERT_EQ(v2.back(), 0); // no precise statistics
	p1.insert(p1.end(), payload + marker + 12, static_cast<const uint8_t *>(v2.data() + v2.size() - 1));
	std::vector<uint8_t> v1 = pgml::seal_blob(static_cast<uint16_t>(Algorithm::Ridge), p1);
	v1[4] = 1; // format 1 (the checksum covers the payload only)
	std::unique_ptr<Model> m = Model::deserialize(v1.data(), v1.size());
	EXPECT_FALSE(m->binding.bound());
	EXPECT_NO_THROW(m->check_binding(42, 9, "ridge", "regression"));
	EXPECT_EQ(code_of([&] { m->check_binding(42, 9, "linear_regression", "regression"); }), ErrorCode::DataCorrupted);
	// written again, it is the current format, bound to the row it is written for
	m->binding = {42, 9};
	std::vector<uint8_t> again = m->serialize();
	EXPECT_EQ(again[4], pgml::kFormatVersion);
	EXPECT_EQ(Model::deserialize(again.data(), again.size())->binding.model_id, 42);
}

TEST(BlobBinding, InvalidBindingIsCorrupt)
{
	Table t = small_regression();
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	r.model->binding = {-5, 1};
	std::vector<uint8_t> blob = r.model->serialize();
	EXPECT_EQ(code_of([&] { Model::deserialize(blob.data(), blob.size()); }), ErrorCode::DataCorrupted);
}

// ---------------------------------------------------------------- finding 7: value ranges

TEST(ValueRanges, HugeFeatureIsOutOfRangeNamingTheColumn)
{
	Table t;
	t.features = {numeric_col("x"), numeric_col("big")};
	t.target = numeric_col("y");
	for (int i = 0; i < 30; i++)
		t.add({num(i), num(i == 3 ? 1e300 : i)}, num(i % 5));
	for (Algorithm a : {Algorithm::LinearRegression, Algorithm::GradientBoosting, Algorithm::DecisionTree,
	                    Algorithm::ElasticNet}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		std::string msg;
		EXPECT_EQ(code_of([&] { train(make_spec(t, a), t); }, &msg), ErrorCode::NumericOutOfRange);
		EXPECT_NE(msg.find("\"big\""), std::string::npos) << msg;
	}
}

TEST(ValueRanges, HugeRegressionTargetIsOutOfRange)
{
	Table t;
	t.features = {numeric_col("x")};
	t.target = numeric_col("y");
	for (int i = 0; i < 30; i++)
		t.add({num(i)}, num(i == 4 ? 1e300 : i));
	for (Algorithm a : {Algorithm::LinearRegression, Algorithm::GradientBoosting, Algorithm::RandomForest}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		std::string msg;
		EXPECT_EQ(code_of([&] { train(make_spec(t, a), t); }, &msg), ErrorCode::NumericOutOfRange);
		EXPECT_NE(msg.find("target column \"y\""), std::string::npos) << msg;
	}
	// within the square's range but beyond xgboost's single precision
	Table u = t;
	u.y[4] = num(1e100);
	EXPECT_EQ(code_of([&] { train(make_spec(u, Algorithm::GradientBoosting), u); }), ErrorCode::NumericOutOfRange);
	EXPECT_NO_THROW(train(make_spec(u, Algorithm::DecisionTree), u));
}

TEST(ValueRanges, SinglePrecisionOverflowForGradientBoosting)
{
	// fine in double, +-inf in xgboost's float: without scaling the value reaches xgboost as is
	Table t;
	t.features = {numeric_col("x")};
	t.target = numeric_col("y");
	for (int i = 0; i < 30; i++)
		t.add({num(i == 0 ? 1e100 : i)}, num(i % 5));
	pgml::TrainSpec spec = make_spec(t, Algorithm::GradientBoosting);
	spec.preprocess["scale"] = OptionValue::of_string("none");
	std::string msg;
	EXPECT_EQ(code_of([&] { train(spec, t); }, &msg), ErrorCode::NumericOutOfRange);
	EXPECT_NE(msg.find("\"x\""), std::string::npos) << msg;
}

TEST(ValueRanges, PredictionThatOverflowsIsOutOfRange)
{
	Table t = small_regression();
	Trained r = train(make_spec(t, Algorithm::LinearRegression), t);
	pgml::Value v[2];
	v[0].isnull = false;
	v[0].num = 1e308;
	v[1].isnull = false;
	v[1].str = "a";
	v[1].len = 1;
	double out[1];
	std::string msg;
	EXPECT_EQ(code_of([&] { r.model->predict(v, out); }, &msg), ErrorCode::NumericOutOfRange);
	EXPECT_NE(msg.find("\"x\""), std::string::npos) << msg;
	int klass;
	EXPECT_EQ(code_of([&] { r.model->predict_batch(v, 1, out, &klass); }), ErrorCode::NumericOutOfRange);
	v[0].num = 1e10; // large but fine
	EXPECT_NO_THROW(r.model->predict(v, out));
	EXPECT_TRUE(std::isfinite(out[0]));
}

// ---------------------------------------------------------------- finding 10: texts

TEST(ModelTexts, MapTextRewritesNamesLevelsAndClasses)
{
	Table t;
	t.features = {numeric_col("temp"), text_col("plan")};
	t.target = text_col("label");
	const char *lv[] = {"gold", "silver"};
	for (int i = 0; i < 40; i++)
		t.add({num(i), i % 5 == 0 ? null() : str(lv[i % 2])}, str(i < 20 ? "lo" : "hi"));
	for (Algorithm a : {Algorithm::LogisticRegression, Algorithm::RandomForest}) {
		SCOPED_TRACE(pgml::algorithm_name(a));
		pgml::TrainSpec spec = make_spec(t, a);
		spec.preprocess["columns.plan.max_levels"] = OptionValue::of_number(10);
		Trained r = train(spec, t);
		std::vector<std::string> seen;
		r.model->map_text([&](const char *, std::string &s) {
			seen.push_back(s);
			s = "X" + s;
		});
		EXPECT_EQ(r.model->features[0].name, "Xtemp");
		EXPECT_EQ(r.model->target.name, "Xlabel");
		EXPECT_EQ(r.model->classes, (std::vector<std::string>{"Xhi", "Xlo"}));
		EXPECT_EQ(r.model->prep.feature_names,
		          (std::vector<std::string>{"Xtemp", "Xplan=Xgold", "Xplan=Xsilver", "Xplan=NULL"}));
		EXPECT_EQ(r.model->prep.level_feature(1, "Xgold"), 1);
		EXPECT_EQ(r.model->prep.level_feature(1, "gold"), -1);
		// the rewritten model serializes and reads back with the new texts
		std::vector<uint8_t> blob = r.model->serialize();
		std::unique_ptr<Model> m = Model::deserialize(blob.data(), blob.size());
		EXPECT_EQ(m->prep.feature_names, r.model->prep.feature_names);
		if (m->has_stats) {
			EXPECT_EQ(m->encoder.find(1, "Xgold"), r.model->encoder.find(1, "Xgold"));
		}
		// same order every time: a second pass sees the rewritten texts in the same places
		size_t i = 0;
		r.model->map_text([&](const char *, std::string &s) {
			ASSERT_LT(i, seen.size());
			EXPECT_EQ(s, "X" + seen[i]);
			i++;
		});
		EXPECT_EQ(i, seen.size());
	}
}

TEST(ModelTexts, ImportRefusesABlobWithTextThatIsNotUtf8)
{
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = numeric_col("y");
	for (int i = 0; i < 20; i++)
		t.add({num(i), str(i % 2 ? "ok" : std::string("bad\xff"))}, num(i));
	Trained r = train(make_spec(t, Algorithm::RandomForest), t);
	pgml::ExportRecord rec;
	pgml::ModelDescription d = pgml::describe_model(*r.model);
	rec.pg_ml_version = "0.3.0";
	rec.model_name = "m";
	rec.version = 1;
	rec.task = "regression";
	rec.algorithm = "random_forest";
	rec.has_target = true;
	rec.target = "y";
	rec.features_json = d.features_json;
	rec.hyperparams_json = rec.preprocess_json = rec.preprocessing_state_json = "{}";
	rec.metrics_json = rec.report_json = rec.coefficients_json = "{}";
	rec.blob = r.model->serialize();
	std::vector<uint8_t> env = pgml::encode_export(rec);
	std::unique_ptr<Model> m;
	std::string msg;
	EXPECT_EQ(code_of([&] { pgml::decode_export(env.data(), env.size(), &m); }), ErrorCode::InvalidBinary);
}
