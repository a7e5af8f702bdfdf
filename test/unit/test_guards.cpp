// Guards for common modelling mistakes (issue 11) that need the data: a constant regression
// target, a classification whose every row is its own class, and a classification of a
// floating-point target with hundreds of classes. (Key-like columns are found by the glue.)
#include "test_util.hpp"

using namespace pgml_test;
using pgml::Algorithm;
using pgml::ErrorCode;

namespace {

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

Table constant_table(int n)
{
	Table t;
	t.features = {numeric_col("x"), text_col("c")};
	t.target = numeric_col("y");
	for (int i = 0; i < n; i++)
		t.add({num(i), str(i % 2 ? "odd" : "even")}, num(2.5));
	return t;
}

} // namespace

TEST(Guards, ConstantRegressionTargetIsRefused)
{
	Table t = constant_table(40);
	// the linear family (statistics) and an in-memory algorithm, with and without test rows
	for (Algorithm a : {Algorithm::LinearRegression, Algorithm::Ridge, Algorithm::DecisionTree, Algorithm::RandomForest})
		for (double test_size : {0.0, 0.2}) {
			pgml::Error e = expect_error([&] { train(make_spec(t, a, test_size), t); }, ErrorCode::DataException);
			EXPECT_TRUE(contains(e.what(), "target column \"y\" has the same value (2.5) in every training row")) << e.what();
			EXPECT_FALSE(e.hint().empty());
		}
	// one other value is enough
	t.add({num(99), str("odd")}, num(3));
	EXPECT_NO_THROW(train(make_spec(t, Algorithm::LinearRegression), t));
	EXPECT_NO_THROW(train(make_spec(t, Algorithm::DecisionTree), t));
}

TEST(Guards, EveryRowItsOwnClassIsRefused)
{
	Table t;
	t.features = {numeric_col("x")};
	t.target = text_col("who");
	for (int i = 0; i < 30; i++)
		t.add({num(i)}, str("name " + std::to_string(i)));
	pgml::Error e = expect_error([&] { train(make_spec(t, Algorithm::DecisionTree, 0.2), t); }, ErrorCode::DataException);
	EXPECT_TRUE(contains(e.what(), "target column \"who\" has a different value in every row")) << e.what();
	// naive Bayes (its own path through the trainer) too
	expect_error([&] { train(make_spec(t, Algorithm::NaiveBayes), t); }, ErrorCode::DataException);
	// a tiny table (under 10 rows) is not judged
	Table small = t.slice(0, 6);
	EXPECT_NO_THROW(train(make_spec(small, Algorithm::DecisionTree), small));
	// one repeated class is enough
	t.add({num(100)}, str("name 3"));
	EXPECT_NO_THROW(train(make_spec(t, Algorithm::DecisionTree), t));
}

TEST(Guards, FloatTargetWithHundredsOfClassesIsRefused)
{
	Table t;
	t.features = {numeric_col("x")};
	t.target = numeric_col("price"); // double precision
	for (int i = 0; i < 300; i++)
		t.add({num(i)}, num(10 + (i % 150) * 1.25));
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree);
	spec.task = pgml::Task::Classification;
	pgml::Error e = expect_error([&] { train(spec, t); }, ErrorCode::InvalidParameter);
	EXPECT_TRUE(contains(e.what(), "classification of target column \"price\" (double precision) would have 150 classes"))
	    << e.what();
	EXPECT_TRUE(contains(e.hint(), "task => 'regression'")) << e.hint();
	// whole numbers in an integer column: as many classes as the data has
	t.target = pgml::ColumnInfo{"units", pgml::TypeClass::Numeric, "integer"};
	for (auto &y : t.y)
		y.num = std::floor(y.num);
	spec = make_spec(t, Algorithm::DecisionTree);
	spec.task = pgml::Task::Classification;
	EXPECT_NO_THROW(train(spec, t));
	// a float target with at most 100 classes is a classification like any other
	Table few;
	few.features = t.features;
	few.target = numeric_col("grade");
	for (int i = 0; i < 300; i++)
		few.add({num(i)}, num((i % 20) * 0.5));
	spec = make_spec(few, Algorithm::DecisionTree);
	spec.task = pgml::Task::Classification;
	EXPECT_NO_THROW(train(spec, few));
}
