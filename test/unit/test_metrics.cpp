// Unit tests for RegressionMetrics and ClassificationMetrics. Expected constants
// were computed with scikit-learn 1.2.1 (r2_score, mean_squared_error, ...,
// precision_score(average='macro', labels=all, zero_division=0), roc_auc_score,
// log_loss(eps=1e-15)) and pasted here as literals.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"
#include "metrics.hpp"

using pgml::ClassificationMetrics;
using pgml::RegressionMetrics;

namespace {

constexpr double kTight = 1e-12;

// Feeds truth / prediction vectors into a fresh RegressionMetrics.
RegressionMetrics regression_of(const std::vector<double> &y, const std::vector<double> &yhat)
{
	RegressionMetrics m;
	for (size_t i = 0; i < y.size(); ++i)
		m.add(y[i], yhat[i]);
	return m;
}

// Feeds rows (truth, predicted, probability row) into a fresh ClassificationMetrics.
ClassificationMetrics classification_of(std::vector<std::string> names, const std::vector<int> &truth,
                                        const std::vector<int> &pred, const std::vector<std::vector<double>> &proba)
{
	ClassificationMetrics m(std::move(names));
	for (size_t i = 0; i < truth.size(); ++i)
		m.add(truth[i], pred[i], proba.empty() ? nullptr : proba[i].data());
	return m;
}

// The binary example: ten rows with tied scores (0.4 appears for both classes).
const std::vector<int> kBinTruth = {0, 1, 1, 0, 1, 0, 1, 1, 0, 0};
const std::vector<double> kBinP1 = {0.1, 0.8, 0.4, 0.4, 0.9, 0.3, 0.4, 0.6, 0.7, 0.2};
const std::vector<int> kBinPred = {0, 1, 0, 0, 1, 0, 0, 1, 1, 0};

// Binary probability rows [1 - p1, p1].
std::vector<std::vector<double>> binary_rows()
{
	std::vector<std::vector<double>> rows;
	for (double p : kBinP1)
		rows.push_back({1.0 - p, p});
	return rows;
}

// The 3-class example.
const std::vector<int> kMcTruth = {0, 1, 2, 2, 1, 0, 2, 1, 0, 2, 1, 1};
const std::vector<std::vector<double>> kMcProba = {
	{0.7, 0.2, 0.1}, {0.2, 0.5, 0.3}, {0.1, 0.3, 0.6},    {0.3, 0.3, 0.4},    {0.5, 0.4, 0.1},   {0.6, 0.3, 0.1},
	{0.2, 0.2, 0.6}, {0.1, 0.8, 0.1}, {0.3, 0.4, 0.3}, {0.25, 0.25, 0.5}, {0.4, 0.35, 0.25}, {0.1, 0.6, 0.3}};
const std::vector<int> kMcPred = {0, 1, 2, 2, 0, 0, 2, 1, 1, 2, 0, 1};

} // namespace

// ---------------------------------------------------------------------------
// Regression

TEST(RegressionMetrics, SklearnDocExample)
{
	const RegressionMetrics m = regression_of({3, -0.5, 2, 7}, {2.5, 0.0, 2, 8});
	EXPECT_EQ(m.count(), 4);
	EXPECT_NEAR(m.r2(), 0.9486081370449679, kTight);
	EXPECT_NEAR(m.mse(), 0.375, kTight);
	EXPECT_NEAR(m.rmse(), 0.6123724356957945, kTight);
	EXPECT_NEAR(m.mae(), 0.5, kTight);
}

TEST(RegressionMetrics, SecondExample)
{
	const RegressionMetrics m =
		regression_of({1.5, 2.25, -3.0, 10.0, 4.0, 0.5, 8.0}, {1.0, 2.0, -2.0, 9.0, 5.5, 0.0, 7.0});
	EXPECT_NEAR(m.r2(), 0.9512943288942092, kTight);
	EXPECT_NEAR(m.mse(), 0.8303571428571429, kTight);
	EXPECT_NEAR(m.mae(), 0.8214285714285714, kTight);
}

TEST(RegressionMetrics, MergeEqualsSequential)
{
	const std::vector<double> y = {1.5, 2.25, -3.0, 10.0, 4.0, 0.5, 8.0};
	const std::vector<double> yhat = {1.0, 2.0, -2.0, 9.0, 5.5, 0.0, 7.0};
	for (size_t split = 0; split <= y.size(); ++split) {
		RegressionMetrics a, b;
		for (size_t i = 0; i < y.size(); ++i)
			(i < split ? a : b).add(y[i], yhat[i]);
		a.merge(b);
		EXPECT_EQ(a.count(), 7);
		EXPECT_NEAR(a.r2(), 0.9512943288942092, kTight) << "split " << split;
		EXPECT_NEAR(a.mse(), 0.8303571428571429, kTight);
		EXPECT_NEAR(a.mae(), 0.8214285714285714, kTight);
	}
}

TEST(RegressionMetrics, ConstantTruth)
{
	// sklearn: perfect predictions of a constant give 1, anything else 0
	EXPECT_EQ(regression_of({2, 2, 2}, {2, 2, 2}).r2(), 1.0);
	EXPECT_EQ(regression_of({2, 2, 2}, {2, 2, 3}).r2(), 0.0);
}

TEST(RegressionMetrics, TooFewRows)
{
	RegressionMetrics empty;
	EXPECT_TRUE(std::isnan(empty.r2()));
	EXPECT_TRUE(std::isnan(empty.mse()));
	EXPECT_TRUE(std::isnan(empty.rmse()));
	EXPECT_TRUE(std::isnan(empty.mae()));
	// sklearn returns nan for r2 with fewer than two samples
	const RegressionMetrics one = regression_of({1.0}, {2.0});
	EXPECT_TRUE(std::isnan(one.r2()));
	EXPECT_EQ(one.mse(), 1.0);
	EXPECT_EQ(one.mae(), 1.0);
}

TEST(RegressionMetrics, WelfordIsStableWithLargeOffset)
{
	// y = 1e9 + {0, 1, 2, 3}: naive sum-of-squares would lose all digits
	RegressionMetrics m;
	for (int i = 0; i < 4; ++i)
		m.add(1e9 + i, 1e9 + i + (i % 2 == 0 ? 0.5 : -0.5));
	// SST = 5, SSE = 1
	EXPECT_NEAR(m.r2(), 0.8, 1e-9);
}

TEST(RegressionMetrics, Json)
{
	const RegressionMetrics m = regression_of({1, 2, 3, 4}, {1, 2, 3, 5});
	// SSE = 1, SST = 5, SAE = 1
	EXPECT_EQ(m.to_json(), "{\"r2\":0.8,\"rmse\":0.5,\"mse\":0.25,\"mae\":0.25,\"rows\":4}");
	EXPECT_EQ(RegressionMetrics().to_json(), "{\"r2\":null,\"rmse\":null,\"mse\":null,\"mae\":null,\"rows\":0}");
}

// ---------------------------------------------------------------------------
// Classification: binary

TEST(ClassificationMetrics, BinaryWithTies)
{
	const ClassificationMetrics m = classification_of({"no", "yes"}, kBinTruth, kBinPred, binary_rows());
	EXPECT_EQ(m.count(), 10);
	EXPECT_NEAR(m.accuracy(), 0.7, kTight);
	EXPECT_NEAR(m.precision_macro(), 0.7083333333333333, kTight);
	EXPECT_NEAR(m.recall_macro(), 0.7, kTight);
	EXPECT_NEAR(m.f1_macro(), 0.6969696969696968, kTight);
	EXPECT_NEAR(m.roc_auc(), 0.8400000000000001, kTight);
	EXPECT_NEAR(m.log_loss(), 0.5071888593489031, kTight);
	Eigen::MatrixXd expected(2, 2);
	expected << 4, 1, 2, 3;
	EXPECT_EQ(m.confusion(), expected);
}

TEST(ClassificationMetrics, BinaryAucAllTied)
{
	// every score equal: AUC 0.5
	const ClassificationMetrics m =
		classification_of({"a", "b"}, {0, 1, 0, 1}, {0, 0, 0, 0}, {{0.5, 0.5}, {0.5, 0.5}, {0.5, 0.5}, {0.5, 0.5}});
	EXPECT_NEAR(m.roc_auc(), 0.5, kTight);
}

TEST(ClassificationMetrics, BinaryAucUndefinedWithOneClass)
{
	const ClassificationMetrics m =
		classification_of({"a", "b"}, {1, 1, 1}, {1, 0, 1}, {{0.2, 0.8}, {0.6, 0.4}, {0.1, 0.9}});
	EXPECT_TRUE(std::isnan(m.roc_auc()));
	const std::string json = m.to_json();
	EXPECT_EQ(json.find("roc_auc"), std::string::npos);
	EXPECT_NE(json.find("\"log_loss\":"), std::string::npos);
}

TEST(ClassificationMetrics, PerfectBinary)
{
	const ClassificationMetrics m = classification_of({"a", "b"}, {0, 1, 0, 1}, {0, 1, 0, 1},
	                                                  {{1.0, 0.0}, {0.0, 1.0}, {0.9, 0.1}, {0.2, 0.8}});
	EXPECT_EQ(m.accuracy(), 1.0);
	EXPECT_EQ(m.precision_macro(), 1.0);
	EXPECT_EQ(m.recall_macro(), 1.0);
	EXPECT_EQ(m.f1_macro(), 1.0);
	EXPECT_EQ(m.roc_auc(), 1.0);
	// (-log(1-1e-15)*2 - log(0.9) - log(0.8)) / 4 after clipping and renormalisation
	EXPECT_NEAR(m.log_loss(), (-std::log(0.9) - std::log(0.8)) / 4, 1e-14);
}

// ---------------------------------------------------------------------------
// Classification: multiclass

TEST(ClassificationMetrics, ThreeClasses)
{
	const ClassificationMetrics m = classification_of({"a", "b", "c"}, kMcTruth, kMcPred, kMcProba);
	EXPECT_NEAR(m.accuracy(), 0.75, kTight);
	EXPECT_NEAR(m.precision_macro(), 0.75, kTight);
	EXPECT_NEAR(m.recall_macro(), 0.7555555555555555, kTight);
	EXPECT_NEAR(m.f1_macro(), 0.746031746031746, kTight);
	EXPECT_NEAR(m.roc_auc(), 0.9548500881834215, kTight);
	EXPECT_NEAR(m.log_loss(), 0.67464931200081, kTight);
	Eigen::MatrixXd expected(3, 3);
	expected << 2, 1, 0, 2, 3, 0, 0, 0, 4;
	EXPECT_EQ(m.confusion(), expected);
}

TEST(ClassificationMetrics, LabelsNeverSeenCountInMacroAverage)
{
	// 4 labels; class 3 never in the truth (but predicted once), class 2 never predicted.
	// sklearn with labels=[0,1,2,3], zero_division=0.
	const ClassificationMetrics m =
		classification_of({"a", "b", "c", "d"}, {0, 1, 2, 0, 1, 2, 0, 1}, {0, 1, 1, 0, 3, 1, 1, 1}, {});
	EXPECT_NEAR(m.accuracy(), 0.5, kTight);
	EXPECT_NEAR(m.precision_macro(), 0.35, kTight);
	EXPECT_NEAR(m.recall_macro(), 0.3333333333333333, kTight);
	EXPECT_NEAR(m.f1_macro(), 0.325, kTight);
	// no probabilities: both undefined and absent from the JSON
	EXPECT_TRUE(std::isnan(m.roc_auc()));
	EXPECT_TRUE(std::isnan(m.log_loss()));
	const std::string json = m.to_json();
	EXPECT_EQ(json.find("roc_auc"), std::string::npos);
	EXPECT_EQ(json.find("log_loss"), std::string::npos);
}

TEST(ClassificationMetrics, LogLossClipsAndRenormalises)
{
	// first row gives the true class probability 0 (clipped to 1e-15), second and
	// fourth rows do not sum to 1
	const ClassificationMetrics m = classification_of(
		{"a", "b", "c"}, {0, 1, 2, 1}, {1, 1, 2, 0},
		{{0.0, 0.5, 0.5}, {0.2, 0.6, 0.4}, {0.1, 0.1, 0.8}, {0.3, 0.3, 0.3}});
	EXPECT_NEAR(m.log_loss(), 9.138419853863237, 1e-12);
}

TEST(ClassificationMetrics, MulticlassAucOverPresentClasses)
{
	// class 2 is absent from the truth: sklearn refuses; we average the one-vs-rest
	// AUCs of the present classes (roc_auc_score(y==c, p[:,c]) for c in {0, 1})
	const ClassificationMetrics m = classification_of(
		{"a", "b", "c"}, {0, 1, 0, 1, 1, 0}, {0, 1, 0, 2, 1, 0},
		{{0.6, 0.3, 0.1}, {0.2, 0.5, 0.3}, {0.5, 0.2, 0.3}, {0.3, 0.3, 0.4}, {0.1, 0.7, 0.2}, {0.4, 0.4, 0.2}});
	EXPECT_NEAR(m.roc_auc(), 0.9166666666666666, kTight);
}

TEST(ClassificationMetrics, MulticlassAucUndefinedWithOnePresentClass)
{
	const ClassificationMetrics m =
		classification_of({"a", "b", "c"}, {1, 1}, {1, 0}, {{0.2, 0.5, 0.3}, {0.5, 0.2, 0.3}});
	EXPECT_TRUE(std::isnan(m.roc_auc()));
}

TEST(ClassificationMetrics, MissingProbabilityDisablesProbabilisticMetrics)
{
	ClassificationMetrics m({"a", "b"});
	const double p[2] = {0.3, 0.7};
	m.add(1, 1, p);
	m.add(0, 1, nullptr);
	m.add(0, 0, p);
	EXPECT_EQ(m.count(), 3);
	EXPECT_TRUE(std::isnan(m.roc_auc()));
	EXPECT_TRUE(std::isnan(m.log_loss()));
	EXPECT_NEAR(m.accuracy(), 2.0 / 3.0, kTight);
}

TEST(ClassificationMetrics, EmptyAndInvalid)
{
	ClassificationMetrics m({"a", "b"});
	EXPECT_TRUE(std::isnan(m.accuracy()));
	EXPECT_TRUE(std::isnan(m.roc_auc()));
	EXPECT_TRUE(std::isnan(m.log_loss()));
	EXPECT_THROW(m.add(2, 0, nullptr), pgml::Error);
	EXPECT_THROW(m.add(0, -1, nullptr), pgml::Error);
	EXPECT_THROW(ClassificationMetrics(std::vector<std::string>{}), pgml::Error);
}

TEST(ClassificationMetrics, JsonLayout)
{
	// 3 rows, all probabilities exact binary fractions so the text is predictable
	ClassificationMetrics m({"neg", "pos"});
	const double r0[2] = {0.75, 0.25}, r1[2] = {0.25, 0.75}, r2[2] = {0.5, 0.5};
	m.add(0, 0, r0);
	m.add(1, 1, r1);
	m.add(1, 0, r2);
	// precision: neg 1/2, pos 1/1; recall: neg 1/1, pos 1/2; f1: 2/3 each
	const std::string expected = "{\"accuracy\":0.66666666666666663,"
	                             "\"precision\":0.75,\"recall\":0.75,\"f1\":0.66666666666666663,"
	                             "\"roc_auc\":1,"
	                             "\"log_loss\":0.42283710848783568,"
	                             "\"per_class\":{"
	                             "\"neg\":{\"precision\":0.5,\"recall\":1,\"f1\":0.66666666666666663,\"support\":1},"
	                             "\"pos\":{\"precision\":1,\"recall\":0.5,\"f1\":0.66666666666666663,\"support\":2}},"
	                             "\"confusion_matrix\":[[1,0],[1,1]],"
	                             "\"classes\":[\"neg\",\"pos\"],"
	                             "\"rows\":3}";
	EXPECT_EQ(m.to_json(), expected);
	// log_loss: (-log 0.75 - log 0.75 - log 0.5) / 3 (sklearn: 0.4228371084878357)
	EXPECT_NEAR(m.log_loss(), 0.4228371084878357, 1e-15);
}
