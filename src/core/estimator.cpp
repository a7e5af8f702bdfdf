#include "estimator.hpp"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "json.hpp"
#include "models/decision_tree.hpp"
#include "models/elastic_net.hpp"
#include "models/gradient_boosting.hpp"
#include "models/kmeans.hpp"
#include "models/mlp.hpp"
#include "models/naive_bayes.hpp"
#include "models/random_forest.hpp"
#include "models/svm.hpp"

namespace pgml {

namespace {

using K = ParamSpec::Kind;

// 1000000, 0.5, 1e-6: whole numbers in full, others short, exponents without padding
std::string fmt(double v)
{
	char buf[32];
	if (v == std::floor(v) && std::fabs(v) < 1e15)
		std::snprintf(buf, sizeof buf, "%.0f", v);
	else
		std::snprintf(buf, sizeof buf, "%g", v);
	std::string s = buf;
	size_t e = s.find("e-0");
	if (e != std::string::npos)
		s.erase(e + 2, 1);
	e = s.find("e+0");
	if (e != std::string::npos)
		s.erase(e + 2, 1);
	return s;
}

std::vector<std::string> split_choices(const std::string &s)
{
	std::vector<std::string> out;
	std::stringstream ss(s);
	std::string item;
	while (std::getline(ss, item, ','))
		out.push_back(item);
	return out;
}

// "number >= 0", "integer 1 to 1000000"
std::string range_text(const ParamSpec &p)
{
	std::string what = p.kind == K::Int ? "integer" : "number";
	if (std::isinf(p.max))
		return what + (p.min_exclusive ? " > " : " >= ") + fmt(p.min);
	return what + " " + fmt(p.min) + " to " + fmt(p.max);
}

// "alpha (number >= 0, default 1)"
std::string describe(const ParamSpec &p)
{
	std::string d = p.name + " (";
	switch (p.kind) {
	case K::Float:
	case K::Int:
		d += range_text(p) + ", default " + fmt(p.def);
		break;
	case K::Bool:
		d += std::string("true or false, default ") + (p.def != 0 ? "true" : "false");
		break;
	case K::Choice: {
		auto cs = split_choices(p.choices);
		for (size_t i = 0; i < cs.size(); i++)
			d += (i ? ", '" : "'") + cs[i] + "'";
		d += "; default '" + p.def_choice + "'";
		break;
	}
	}
	return d + ")";
}

std::string valid_keys(const AlgorithmDef &def)
{
	if (def.params.empty())
		return def.name + " takes no hyperparameters.";
	std::string h = "Valid keys for " + def.name + ": ";
	for (size_t i = 0; i < def.params.size(); i++)
		h += (i ? ", " : "") + describe(def.params[i]);
	return h + ".";
}

std::vector<AlgorithmDef> make_registry()
{
	const double inf = INFINITY;
	std::vector<AlgorithmDef> r;
	r.push_back({Algorithm::LinearRegression, "linear_regression", true, false, false, true,
	             {num_param("fit_intercept", K::Bool, 0, 1, 1)}, nullptr, nullptr});
	r.push_back({Algorithm::Ridge, "ridge", true, false, false, true, {num_param("alpha", K::Float, 0, inf, 1.0)},
	             nullptr, nullptr});
	r.push_back({Algorithm::Lasso, "lasso", true, false, false, true, lasso_params(), nullptr, nullptr});
	r.push_back({Algorithm::ElasticNet, "elastic_net", true, false, false, true, elastic_net_params(), nullptr, nullptr});
	r.push_back({Algorithm::LogisticRegression,
	             "logistic_regression",
	             false,
	             true,
	             false,
	             false,
	             {num_param("C", K::Float, 0, inf, 1.0, true), num_param("max_iter", K::Int, 1, 1e6, 1000),
	              num_param("tol", K::Float, 0, inf, 1e-6, true), choice_param("penalty", "l2,none", "l2")},
	             nullptr,
	             nullptr});
	r.push_back({Algorithm::DecisionTree, "decision_tree", true, true, false, false, decision_tree_params(),
	             fit_decision_tree, read_decision_tree});
	r.push_back({Algorithm::RandomForest, "random_forest", true, true, false, false, random_forest_params(),
	             fit_random_forest, read_random_forest});
	r.push_back({Algorithm::GradientBoosting, "gradient_boosting", true, true, false, false, gradient_boosting_params(),
	             fit_gradient_boosting, read_gradient_boosting});
	r.push_back({Algorithm::Svm, "svm", true, true, false, false, svm_params(), fit_svm, read_svm});
	r.push_back({Algorithm::Mlp, "mlp", true, true, false, false, mlp_params(), fit_mlp, read_mlp});
	r.push_back({Algorithm::KMeans, "kmeans", false, false, true, false, kmeans_params(), fit_kmeans, read_kmeans});
	r.push_back({Algorithm::NaiveBayes, "naive_bayes", false, true, false, false, naive_bayes_params(), fit_naive_bayes,
	             read_naive_bayes});
	return r;
}

} // namespace

ParamSpec num_param(const char *name, ParamSpec::Kind kind, double min, double max, double def, bool min_exclusive)
{
	ParamSpec s;
	s.name = name;
	s.kind = kind;
	s.min = min;
	s.max = max;
	s.def = def;
	s.min_exclusive = min_exclusive;
	return s;
}

ParamSpec choice_param(const char *name, const char *choices, const char *def)
{
	ParamSpec s;
	s.name = name;
	s.kind = ParamSpec::Kind::Choice;
	s.min = s.max = s.def = 0;
	s.choices = choices;
	s.def_choice = def;
	return s;
}

double Params::num(const std::string &name) const
{
	auto it = num_.find(name);
	if (it == num_.end())
		throw Error(ErrorCode::Internal, "hyperparameter " + name + " is not defined");
	return it->second;
}

const std::string &Params::choice(const std::string &name) const
{
	auto it = str_.find(name);
	if (it == str_.end())
		throw Error(ErrorCode::Internal, "hyperparameter " + name + " is not defined");
	return it->second;
}

void Params::write(Writer &w) const
{
	w.u64(num_.size());
	for (const auto &[k, v] : num_) {
		w.str(k);
		w.f64(v);
	}
	w.u64(str_.size());
	for (const auto &[k, v] : str_) {
		w.str(k);
		w.str(v);
	}
}

Params Params::read(Reader &r)
{
	Params p;
	size_t n = r.count(16);
	for (size_t i = 0; i < n; i++) {
		std::string k = r.str();
		double v = r.f64();
		if (!std::isfinite(v))
			throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "A hyperparameter is not finite.");
		p.num_[k] = v;
	}
	n = r.count(16);
	for (size_t i = 0; i < n; i++) {
		std::string k = r.str();
		p.str_[k] = r.str();
	}
	return p;
}

std::string Params::to_json() const
{
	JsonWriter w;
	w.begin_object();
	for (const auto &[k, v] : num_)
		w.key(k).value(v);
	for (const auto &[k, v] : str_)
		w.key(k).value(v);
	w.end_object();
	return w.str();
}

Params parse_params(const AlgorithmDef &def, const Options &opts, const Params *start)
{
	auto bad = [&](const std::string &key, const std::string &why) {
		throw Error(ErrorCode::InvalidParameter, "invalid hyperparameter \"" + key + "\" for " + def.name, why,
		            valid_keys(def));
	};
	Params p;
	for (const ParamSpec &s : def.params) {
		bool kept = start != nullptr && start->has(s.name);
		if (s.kind == K::Choice)
			p.set_choice(s.name, kept ? start->choice(s.name) : s.def_choice);
		else
			p.set_num(s.name, kept ? start->num(s.name) : s.def);
	}
	for (const auto &[key, v] : opts) {
		const ParamSpec *spec = nullptr;
		for (const ParamSpec &s : def.params)
			if (s.name == key)
				spec = &s;
		if (spec == nullptr)
			bad(key, "There is no such hyperparameter.");
		switch (spec->kind) {
		case K::Float:
		case K::Int: {
			if (v.type != OptionValue::Type::Number || !std::isfinite(v.number))
				bad(key, "The value must be a finite number.");
			double d = v.number;
			if (spec->kind == K::Int && d != std::floor(d))
				bad(key, key + " must be an integer; it was " + fmt(d) + ".");
			bool low = spec->min_exclusive ? d <= spec->min : d < spec->min;
			if (low || d > spec->max)
				bad(key, key + " must be a " + range_text(*spec) + "; it was " + fmt(d) + ".");
			p.set_num(key, d);
			break;
		}
		case K::Bool:
			if (v.type != OptionValue::Type::Bool)
				bad(key, "The value must be true or false.");
			p.set_num(key, v.boolean ? 1 : 0);
			break;
		case K::Choice: {
			if (v.type != OptionValue::Type::String)
				bad(key, "The value must be a string.");
			bool ok = false;
			for (const auto &c : split_choices(spec->choices))
				ok = ok || c == v.string;
			if (!ok)
				bad(key, "\"" + v.string + "\" is not one of the choices.");
			p.set_choice(key, v.string);
			break;
		}
		}
	}
	return p;
}

bool logistic_unpenalized(const Params &hp)
{
	// versions trained before the option existed have no "penalty": l2
	return hp.has("penalty") && hp.choice("penalty") == "none";
}

const std::vector<AlgorithmDef> &algorithms()
{
	static const std::vector<AlgorithmDef> registry = make_registry();
	return registry;
}

const AlgorithmDef *find_algorithm(const std::string &name)
{
	for (const AlgorithmDef &d : algorithms())
		if (d.name == name)
			return &d;
	return nullptr;
}

const AlgorithmDef &algorithm_def(Algorithm a)
{
	for (const AlgorithmDef &d : algorithms())
		if (d.id == a)
			return d;
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted",
	            "Unknown model kind " + std::to_string(static_cast<int>(a)) + ".");
}

const char *algorithm_name(Algorithm a)
{
	for (const AlgorithmDef &d : algorithms())
		if (d.id == a)
			return d.name.c_str();
	return "unknown";
}

bool parse_algorithm(const std::string &name, Algorithm *out)
{
	const AlgorithmDef *d = find_algorithm(name);
	if (d != nullptr)
		*out = d->id;
	return d != nullptr;
}

bool algorithm_streams(Algorithm a)
{
	for (const AlgorithmDef &d : algorithms())
		if (d.id == a)
			return d.streams;
	return false;
}

double algorithm_max_input(Algorithm a)
{
	return a == Algorithm::GradientBoosting ? static_cast<double>(FLT_MAX) : DBL_MAX;
}

void feature_out_of_range(const std::string &column, double value, const char *why, bool target)
{
	char buf[40];
	std::snprintf(buf, sizeof buf, "%.15g", value);
	if (std::strtod(buf, nullptr) != value)
		std::snprintf(buf, sizeof buf, "%.17g", value);
	// NaN: the value itself is not known (only that a sum of its square overflowed)
	std::string what = std::isnan(value) ? "a value" : "value " + std::string(buf);
	throw Error(ErrorCode::NumericOutOfRange,
	            what + (target ? " of target column \"" : " of feature \"") + column + "\" is out of range", why,
	            "Rescale the column (divide it by a constant or take its logarithm), or pass NULL for the value.");
}

bool algorithm_native_missing(Algorithm a)
{
	return a == Algorithm::DecisionTree || a == Algorithm::RandomForest || a == Algorithm::GradientBoosting;
}

std::string algorithm_list()
{
	std::string s;
	for (const AlgorithmDef &d : algorithms())
		s += (s.empty() ? "'" : ", '") + d.name + "'";
	return s;
}

AutoChoice auto_algorithm(Task task, double expected_rows)
{
	char rows[64];
	std::snprintf(rows, sizeof rows, "%.0f", expected_rows);
	if (task == Task::Clustering)
		return {Algorithm::KMeans, "kmeans is the clustering algorithm"};
	const bool regression = task == Task::Regression;
	const Algorithm linear = regression ? Algorithm::LinearRegression : Algorithm::LogisticRegression;
	const char *linear_name = regression ? "linear_regression" : "logistic_regression";
	if (expected_rows < 0)
		return {linear, std::string("the relation's size is unknown, and ") + linear_name +
		                    " reads any number of rows" + (regression ? " in one pass" : "")};
	if (expected_rows <= kAutoSmallRows)
		return {linear, std::string("the relation has ") + rows + " rows (at most 1000): " + linear_name +
		                    " needs the fewest rows to generalise"};
	if (expected_rows <= kAutoLargeRows)
		return {Algorithm::GradientBoosting, std::string("the relation has ") + rows +
		                                         " rows (1000 to 1000000): gradient_boosting is the most accurate "
		                                         "default for tables of that size"};
	return {linear, std::string("the relation has about ") + rows + " rows (over 1000000): " + linear_name +
	                    (regression ? " trains in one parallel pass over them" : " keeps training time linear in them")};
}

} // namespace pgml
