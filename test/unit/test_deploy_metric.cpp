// Unit tests for the deploy metric (deploy_metric.hpp): names per task, defaults, direction,
// the decision and its sentence, and reading a metric back from the stored JSON.
#include <gtest/gtest.h>

#include <cmath>

#include "common.hpp"
#include "deploy_metric.hpp"

using pgml::Task;

TEST(DeployMetric, DefaultsPerTask)
{
	EXPECT_EQ(pgml::default_deploy_metric(Task::Classification, 2), "roc_auc");
	EXPECT_EQ(pgml::default_deploy_metric(Task::Classification, 3), "f1");
	EXPECT_EQ(pgml::default_deploy_metric(Task::Regression, 0), "r2");
	EXPECT_EQ(pgml::default_deploy_metric(Task::Clustering, 0), "silhouette");
	for (Task t : {Task::Regression, Task::Classification, Task::Clustering})
		EXPECT_NO_THROW(pgml::check_deploy_metric(pgml::default_deploy_metric(t, 2), t));
}

TEST(DeployMetric, ValidationNamesTheMetricAndListsTheTasks)
{
	EXPECT_NO_THROW(pgml::check_deploy_metric("log_loss", Task::Classification));
	EXPECT_NO_THROW(pgml::check_deploy_metric("mae", Task::Regression));
	EXPECT_NO_THROW(pgml::check_deploy_metric("inertia", Task::Clustering));
	try {
		pgml::check_deploy_metric("r2", Task::Classification);
		FAIL() << "r2 accepted for classification";
	} catch (const pgml::Error &e) {
		EXPECT_EQ(e.code(), pgml::ErrorCode::InvalidParameter);
		EXPECT_STREQ(e.what(), "deploy metric \"r2\" is not a classification metric");
		EXPECT_EQ(e.hint(), "Use accuracy, precision, recall, f1, roc_auc or log_loss for classification.");
	}
	try {
		pgml::check_deploy_metric("auc", Task::Regression);
		FAIL() << "auc accepted";
	} catch (const pgml::Error &e) {
		EXPECT_STREQ(e.what(), "unknown deploy metric \"auc\"");
		EXPECT_EQ(e.hint(), "Use r2, rmse, mse or mae for regression.");
	}
}

TEST(DeployMetric, LowerIsBetterComparedThatWay)
{
	for (const char *m : {"rmse", "mse", "mae", "log_loss", "inertia"})
		EXPECT_TRUE(pgml::metric_lower_is_better(m)) << m;
	for (const char *m : {"r2", "accuracy", "f1", "roc_auc", "silhouette", "precision", "recall"})
		EXPECT_FALSE(pgml::metric_lower_is_better(m)) << m;
	pgml::DeployDecision d = pgml::decide_deploy("rmse", 3.2, 3.45, 1, 154);
	EXPECT_TRUE(d.deploy);
	EXPECT_EQ(d.reason(), "test rmse 3.2 vs 3.45 of version 1 (-0.25, lower is better) on the same 154 held-out rows: deployed");
	d = pgml::decide_deploy("log_loss", 0.5, 0.4, 2, 10);
	EXPECT_FALSE(d.deploy);
	EXPECT_EQ(d.reason(), "test log_loss 0.5 vs 0.4 of version 2 (+0.1, lower is better) on the same 10 held-out rows: "
	                      "not deployed, version 2 stays");
}

TEST(DeployMetric, ReasonHasBothValuesAndTheMargin)
{
	pgml::DeployDecision d = pgml::decide_deploy("f1", 0.71234, 0.69876, 1, 154);
	EXPECT_TRUE(d.deploy);
	EXPECT_EQ(d.reason(), "test f1 0.7123 vs 0.6988 of version 1 (+0.0136) on the same 154 held-out rows: deployed");
	// values that print alike get the digits that tell them apart (the 0.997634 case)
	d = pgml::decide_deploy("r2", 0.9976341, 0.9976402, 1, 2000);
	EXPECT_FALSE(d.deploy);
	EXPECT_EQ(d.comparison, "test r2 0.99763 vs 0.99764 of version 1 (-6.1e-06) on the same 2000 held-out rows");
	// equal values deploy (not worse)
	d = pgml::decide_deploy("accuracy", 0.8, 0.8, 3, 5);
	EXPECT_TRUE(d.deploy);
	EXPECT_EQ(d.comparison, "test accuracy 0.8 vs 0.8 of version 3 (+0) on the same 5 held-out rows");
	// a metric the deployed version lacks, or the new one
	EXPECT_TRUE(pgml::decide_deploy("roc_auc", 0.7, NAN, 1, 5).deploy);
	EXPECT_FALSE(pgml::decide_deploy("roc_auc", NAN, 0.7, 1, 5).deploy);
	EXPECT_TRUE(pgml::decide_deploy("roc_auc", NAN, NAN, 1, 5).deploy);
}

TEST(DeployMetric, ReadsTopLevelNumbersOnly)
{
	const std::string js = "{\"accuracy\":0.9,\"f1\":0.712345678901234,\"roc_auc\":null,"
	                       "\"per_class\":{\"a\":{\"f1\":0.1}},\"classes\":[\"x\\\"f1\\\"\"],\"rows\":154}";
	EXPECT_EQ(pgml::json_number_field(js, "f1"), 0.712345678901234);
	EXPECT_EQ(pgml::json_number_field(js, "rows"), 154);
	EXPECT_TRUE(std::isnan(pgml::json_number_field(js, "roc_auc")));
	EXPECT_TRUE(std::isnan(pgml::json_number_field(js, "log_loss")));
	const std::string nested = "{\"per_class\":{\"a\":{\"recall\":0.1}},\"recall\":0.25}";
	EXPECT_EQ(pgml::json_number_field(nested, "recall"), 0.25);
}
