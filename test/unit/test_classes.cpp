// A model's classes are part of its contract (issue 11): a retrain whose rows hold labels the
// base version does not know is an error naming each label and its rows, in every mode, unless
// new classes are allowed and the update can add them (a refit can, continued training cannot).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.hpp"

using pgml::Algorithm;
using pgml::ErrorCode;
using namespace pgml_test;

namespace {

// Two separated clusters labelled "neg" / "pos" (or 0 / 1 with a numeric target).
Table labelled(int rows, bool numeric_target, uint64_t seed)
{
	Rng rng(seed);
	Table t;
	t.features = {numeric_col("x"), numeric_col("z")};
	t.target = numeric_target ? pgml::ColumnInfo{"y", pgml::TypeClass::Numeric, "integer"} : text_col("y");
	for (int i = 0; i < rows; i++) {
		bool pos = i % 2 == 0;
		t.add({num((pos ? 2.0 : -2.0) + rng.normal()), num(rng.normal())},
		      numeric_target ? num(pos ? 1 : 0) : str(pos ? "pos" : "neg"));
	}
	return t;
}

// The error of a retrain of base on t (mode incremental or refit) that must fail.
pgml::Error retrain_error(const pgml::Model &base, const Table &t, bool incremental, bool allow, ErrorCode code)
{
	pgml::TrainSpec spec = make_spec(t, base.algorithm, 0.2);
	spec.allow_new_classes = allow;
	return expect_error([&]() { retrain(spec, base, incremental, t); }, code);
}

} // namespace

TEST(Classes, RefitRefusesUnknownLabelsNamingEachWithItsRows)
{
	Table t = labelled(80, false, 7);
	Trained v1 = train(make_spec(t, Algorithm::LogisticRegression, 0.2), t);
	ASSERT_EQ(v1.model->classes, (std::vector<std::string>{"neg", "pos"}));
	Table more = labelled(40, false, 8);
	more.y[17] = str("negative"); // one mistyped label
	more.y[3] = str("maybe");
	more.y[9] = str("maybe");
	pgml::Error e = retrain_error(*v1.model, more, false, false, ErrorCode::DataException);
	EXPECT_EQ(std::string(e.what()),
	          "target column \"y\" holds 2 classes the model does not know: \"maybe\" (2 rows), \"negative\" (1 row)");
	EXPECT_NE(e.detail().find("The model's classes are \"neg\", \"pos\"."), std::string::npos) << e.detail();
	EXPECT_NE(e.hint().find("allow_new_classes => true"), std::string::npos) << e.hint();
	EXPECT_EQ(e.hint().find("mode => 'refit'"), std::string::npos) << e.hint();

	// allowed: a refit learns the new classes, in the usual sorted order
	pgml::TrainSpec spec = make_spec(more, Algorithm::LogisticRegression, 0.2);
	spec.allow_new_classes = true;
	Trained v2 = retrain(spec, *v1.model, false, more);
	EXPECT_EQ(v2.model->classes, (std::vector<std::string>{"maybe", "neg", "negative", "pos"}));

	// rows holding only known classes (a subset) retrain as before
	Table known = labelled(40, false, 9);
	Trained v3 = retrain(make_spec(known, Algorithm::LogisticRegression, 0.2), *v1.model, false, known);
	EXPECT_EQ(v3.model->classes, v1.model->classes);
}

TEST(Classes, IncrementalRefusesUnknownLabelsAndCannotAddThem)
{
	Table t = labelled(80, false, 11);
	Trained v1 = train(make_spec(t, Algorithm::NaiveBayes, 0.2), t);
	ASSERT_TRUE(pgml::model_can_continue(*v1.model));
	Table more = labelled(30, false, 12);
	more.y[4] = str("negative");
	pgml::Error e = retrain_error(*v1.model, more, true, false, ErrorCode::DataException);
	EXPECT_EQ(std::string(e.what()), "target column \"y\" holds a class the model does not know: \"negative\" (1 row)");
	EXPECT_NE(e.hint().find("mode => 'refit' and allow_new_classes => true"), std::string::npos) << e.hint();

	// allowing new classes does not make an exact incremental update able to add one
	pgml::Error f = retrain_error(*v1.model, more, true, true, ErrorCode::FeatureNotSupported);
	EXPECT_EQ(std::string(f.what()),
	          "incremental retraining cannot add a class the model does not know: \"negative\" (1 row)");
	EXPECT_NE(f.hint().find("mode => 'refit'"), std::string::npos) << f.hint();

	// without unknown labels the incremental update keeps the model's classes
	Table known = labelled(30, false, 13);
	pgml::TrainSpec spec = make_spec(known, Algorithm::NaiveBayes, 0.2);
	spec.allow_new_classes = true;
	Trained v2 = retrain(spec, *v1.model, true, known);
	EXPECT_EQ(v2.model->classes, v1.model->classes);
}

TEST(Classes, NumericTargetsAndLongLists)
{
	Table t = labelled(60, true, 21);
	pgml::TrainSpec spec = make_spec(t, Algorithm::DecisionTree, 0.2);
	spec.task = pgml::Task::Classification; // an integer target with two values
	Trained v1 = train(spec, t);
	ASSERT_EQ(v1.model->task, pgml::Task::Classification);
	ASSERT_EQ(v1.model->classes, (std::vector<std::string>{"0", "1"}));
	Table more = labelled(60, true, 22);
	for (int i = 0; i < 12; i++)
		more.y[static_cast<size_t>(i)] = num(10 + i); // 12 unknown classes, listed in numeric order
	pgml::Error e = retrain_error(*v1.model, more, false, false, ErrorCode::DataException);
	std::string msg = e.what();
	EXPECT_EQ(
	    msg.rfind("target column \"y\" holds 12 classes the model does not know: \"10\" (1 row), \"11\" (1 row), ", 0),
	    0u)
	    << msg;
	EXPECT_NE(msg.find("\"19\" (1 row) and 2 more"), std::string::npos) << msg;
	EXPECT_EQ(msg.find("\"20\""), std::string::npos) << msg;
}
