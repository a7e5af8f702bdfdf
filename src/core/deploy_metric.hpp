// pg_ml core: the deploy metric, the metric ml_retrain's deploy => 'if_better' compares.
//
// A model's deploy metric is its owner's choice (ml_train(deploy_metric => ...),
// ml_set_deploy_metric()); without one the task's default applies:
//   classification, two classes: roc_auc (threshold-free, and not fooled by a majority class:
//     on a 15%-positive table accuracy prefers a model that says "no" to everyone);
//   classification, more classes: f1 (macro: each class counts the same);
//   regression: r2 (on the same rows it orders versions as mse / rmse do, and reads the same
//     whatever the target's unit); clustering: silhouette (inertia depends on each version's
//     own scaling).
// Both versions are scored with every metric on the same held-out rows; the decision and its
// sentence (the `reason` of ml_retrain) come from decide_deploy().
#pragma once

#include <string>
#include <vector>

#include "common.hpp"

namespace pgml {

// The metrics a deploy decision can use for a task, in the order they are listed to users.
const std::vector<std::string> &deploy_metrics(Task task);
// Whether a smaller value is better (rmse, mse, mae, log_loss, inertia).
bool metric_lower_is_better(const std::string &metric);
// The task's default (n_classes: the classes of a classification model).
std::string default_deploy_metric(Task task, int n_classes);
// Throws InvalidParameter for a metric that is unknown or not one of the task's, naming the
// metric and listing the task's.
void check_deploy_metric(const std::string &metric, Task task);

struct DeployDecision {
	bool deploy = false;
	int prev_version = 0;
	// e.g. "test f1 0.7123 vs 0.6988 of version 1 (+0.0135) on the same 154 held-out rows": the
	// values with as many significant digits (at least 4) as tell them apart
	std::string comparison;
	// comparison + ": deployed" / ": not deployed, version N stays"
	std::string reason() const;
};
// if_better: the new version's value of the metric against the deployed version's (NaN: not
// defined on these rows), both on the same `rows` held-out rows. The new version is deployed
// when it is not worse; a value the deployed version lacks counts as worse.
DeployDecision decide_deploy(const std::string &metric, double now, double prev, int prev_version, long long rows);

// The number at top-level key `key` of a flat JSON object written by JsonWriter (NaN when
// absent or null): how metric values are read back from the metrics the version stores.
double json_number_field(const std::string &json, const std::string &key);

} // namespace pgml
