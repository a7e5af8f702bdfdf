// pg_ml core: the deploy metric (deploy_metric.hpp).
#include "deploy_metric.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pgml {

namespace {

std::string listed(const std::vector<std::string> &names)
{
	std::string out;
	for (size_t i = 0; i < names.size(); i++)
		out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
	return out;
}

// v with `digits` significant digits.
std::string number(double v, int digits)
{
	if (std::isnan(v))
		return "undefined";
	char buf[48];
	std::snprintf(buf, sizeof buf, "%.*g", digits, v);
	return buf;
}

} // namespace

const std::vector<std::string> &deploy_metrics(Task task)
{
	static const std::vector<std::string> regression = {"r2", "rmse", "mse", "mae"};
	static const std::vector<std::string> classification = {"accuracy", "precision", "recall", "f1", "roc_auc",
	                                                         "log_loss"};
	static const std::vector<std::string> clustering = {"silhouette", "inertia"};
	switch (task) {
	case Task::Regression:
		return regression;
	case Task::Classification:
		return classification;
	case Task::Clustering:
		break;
	}
	return clustering;
}

bool metric_lower_is_better(const std::string &metric)
{
	return metric == "rmse" || metric == "mse" || metric == "mae" || metric == "log_loss" || metric == "inertia";
}

std::string default_deploy_metric(Task task, int n_classes)
{
	switch (task) {
	case Task::Regression:
		return "r2";
	case Task::Classification:
		return n_classes == 2 ? "roc_auc" : "f1";
	case Task::Clustering:
		break;
	}
	return "silhouette";
}

void check_deploy_metric(const std::string &metric, Task task)
{
	const std::vector<std::string> &mine = deploy_metrics(task);
	for (const std::string &m : mine)
		if (m == metric)
			return;
	const std::string hint = "Use " + listed(mine) + " for " + task_name(task) + ".";
	for (Task other : {Task::Regression, Task::Classification, Task::Clustering})
		for (const std::string &m : deploy_metrics(other))
			if (m == metric)
				throw Error(ErrorCode::InvalidParameter,
				            "deploy metric \"" + metric + "\" is not a " + task_name(task) + " metric",
				            "\"" + metric + "\" measures " + task_name(other) + "; the model does " + task_name(task) + ".",
				            hint);
	throw Error(ErrorCode::InvalidParameter, "unknown deploy metric \"" + metric + "\"", "", hint);
}

DeployDecision decide_deploy(const std::string &metric, double now, double prev, int prev_version, long long rows)
{
	DeployDecision d;
	const bool lower = metric_lower_is_better(metric);
	const std::string on = " on the same " + std::to_string(rows) + " held-out rows";
	const std::string of = " of version " + std::to_string(prev_version);
	d.prev_version = prev_version;
	if (std::isnan(prev) && std::isnan(now)) {
		d.deploy = true;
		d.comparison = "test " + metric + " is not defined for either version" + on;
		return d;
	}
	if (std::isnan(prev)) {
		d.deploy = true;
		d.comparison = "test " + metric + " " + number(now, 4) + "; version " + std::to_string(prev_version) +
		               " has no " + metric + on;
		return d;
	}
	if (std::isnan(now)) {
		d.deploy = false;
		d.comparison = "test " + metric + " is not defined for the new version, " + number(prev, 4) + of + on;
		return d;
	}
	const double tol = 1e-12 * std::max(1.0, std::fabs(prev));
	d.deploy = lower ? now <= prev + tol : now >= prev - tol;
	// as many significant digits as tell the two values apart (at least 4)
	int digits = 4;
	while (digits < 17 && now != prev && number(now, digits) == number(prev, digits))
		digits++;
	char margin[48];
	std::snprintf(margin, sizeof margin, "%+.3g", now - prev);
	if (now == prev)
		std::snprintf(margin, sizeof margin, "+0");
	d.comparison = "test " + metric + " " + number(now, digits) + " vs " + number(prev, digits) + of + " (" + margin +
	               (lower ? ", lower is better" : "") + ")" + on;
	return d;
}

std::string DeployDecision::reason() const
{
	return comparison + (deploy ? ": deployed" : ": not deployed, version " + std::to_string(prev_version) + " stays");
}

double json_number_field(const std::string &json, const std::string &key)
{
	// our own writer's output: strings have no raw quotes inside except escaped ones
	const std::string want = "\"" + key + "\"";
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < json.size(); i++) {
		const char c = json[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == '"') {
			if (depth == 1 && json.compare(i, want.size(), want) == 0 && i + want.size() < json.size() &&
			    json[i + want.size()] == ':') {
				const char *p = json.c_str() + i + want.size() + 1;
				if (std::strncmp(p, "null", 4) == 0)
					return NAN;
				char *end = nullptr;
				double v = std::strtod(p, &end);
				return end == p ? NAN : v;
			}
			in_string = true;
		}
	}
	return NAN;
}

} // namespace pgml
