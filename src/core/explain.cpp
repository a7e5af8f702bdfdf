// pg_ml core: per-row explanations (ml_explain), see Model::explain in model.hpp.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "grouped.hpp"
#include "model.hpp"

namespace pgml {

namespace {

// Linear family: the score s_k = b_k + sum_j W_jk x_j is split at the reference r (the centre of
// the scaling) as base = b_k + sum_j W_jk r_j and contribution_j = W_jk (x_j - r_j).
void explain_linear(const Model &m, const double *x, int klass, Explanation &e)
{
	const Eigen::Index p = m.W.rows();
	const bool binary = m.task == Task::Classification && m.W.cols() == 1;
	const Eigen::Index col = binary || m.task == Task::Regression ? 0 : klass;
	const double sign = binary && klass == 0 ? -1.0 : 1.0; // class 0's log-odds are the negated score
	double base = m.b(col);
	for (Eigen::Index j = 0; j < p; j++) {
		double r = m.prep.center(j);
		base += m.W(j, col) * r;
		e.feature[static_cast<size_t>(j)] = sign * m.W(j, col) * (x[j] - r);
	}
	e.base = sign * base;
	e.output = m.task == Task::Regression ? "value" : binary ? "log-odds" : "margin";
}

} // namespace

Explanation Model::explain(const Value *values) const
{
	if (grouped) { // the row's group's model explains it (its features; the class the container's)
		const GroupedModel::Group *g = nullptr;
		const std::vector<int> *map = nullptr;
		const Model &sub = grouped->serving(*this, values, &g, &map);
		Explanation e = sub.explain(values);
		if (task == Task::Classification)
			e.klass = (*map)[static_cast<size_t>(e.klass)];
		return e;
	}
	const int p = prep.p();
	std::vector<double> x(static_cast<size_t>(p)), out(static_cast<size_t>(std::max(1, n_outputs())));
	encode(values, x.data(), nullptr);
	Explanation e;
	e.klass = predict_features(x.data(), out.data()); // also checks the row's range
	if (task == Task::Clustering)
		throw Error(ErrorCode::FeatureNotSupported, "ml_explain does not explain clustering",
		            "A cluster is the nearest centre, not a sum of feature contributions.",
		            "ml_predict gives the cluster; compare the row with the centres in ml_versions.coefficients.");
	if (task == Task::Regression)
		e.klass = 0;
	e.feature.assign(static_cast<size_t>(p), 0.0);
	if (!estimator) {
		explain_linear(*this, x.data(), e.klass, e);
	} else {
		std::vector<double> z(static_cast<size_t>(p)), c(static_cast<size_t>(p) + 1);
		for (int f = 0; f < p; f++)
			z[static_cast<size_t>(f)] = (x[static_cast<size_t>(f)] - prep.center(f)) / prep.scale(f);
		if (!estimator->contributions(z.data(), e.klass, c.data()))
			throw Error(ErrorCode::FeatureNotSupported,
			            std::string("ml_explain does not explain ") + algorithm_name(algorithm) + " models yet",
			            "Per-row contributions are exact for the linear family (linear_regression, ridge, lasso, "
			            "elastic_net, logistic_regression) and tree SHAP values for decision_tree, random_forest "
			            "and gradient_boosting.",
			            "ml_feature_importance gives this model's importance per feature.");
		for (int f = 0; f < p; f++)
			e.feature[static_cast<size_t>(f)] = c[static_cast<size_t>(f)];
		e.base = c[static_cast<size_t>(p)];
		// the trees of decision_tree and random_forest hold class frequencies: a probability
		const bool frequencies = algorithm == Algorithm::DecisionTree || algorithm == Algorithm::RandomForest;
		e.output = task == Task::Regression ? "value" : frequencies ? "probability" : n_classes() == 2 ? "log-odds" : "margin";
	}
	e.value = e.base;
	for (double v : e.feature)
		e.value += v;
	e.column.assign(features.size(), 0.0);
	for (int f = 0; f < p; f++)
		e.column[prep.column_of(f)] += e.feature[static_cast<size_t>(f)];
	return e;
}

} // namespace pgml
