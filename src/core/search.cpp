// pg_ml core: hyperparameter search and algorithm => 'auto' by cross-validation (search.hpp).
#include "search.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <unordered_set>

#include "deploy_metric.hpp"
#include "json.hpp"

namespace pgml {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string number_text(double v)
{
	char b[64];
	std::snprintf(b, sizeof b, "%.4g", v);
	return b;
}

[[noreturn]] void bad_search(const std::string &message, const std::string &detail, const std::string &hint)
{
	throw Error(ErrorCode::InvalidParameter, message, detail, hint);
}

const ParamSpec *find_param(const AlgorithmDef &def, const std::string &name)
{
	for (const ParamSpec &p : def.params)
		if (p.name == name)
			return &p;
	return nullptr;
}

std::string param_names(const AlgorithmDef &def)
{
	std::string s;
	for (const ParamSpec &p : def.params)
		s += (s.empty() ? "" : ", ") + p.name;
	return s;
}

// search_args: the keys a search takes, checked and copied into spec.
void parse_args(const Options &args, SearchSpec &spec)
{
	bool folds_given = false;
	for (const auto &[key, v] : args) {
		auto number = [&, &key = key, &v = v](double lo, double hi, bool integer) {
			if (v.type != OptionValue::Type::Number || !(v.number >= lo && v.number <= hi) ||
			    (integer && v.number != std::floor(v.number)))
				bad_search("search_args \"" + key + "\" must be " + (integer ? "an integer" : "a number") + " from " +
				               number_text(lo) + " to " + number_text(hi),
				           "It was " + v.to_json() + ".", "");
			return v.number;
		};
		if (key == "trials") {
			spec.trials = static_cast<int>(number(1, kMaxTrials, true));
		} else if (key == "folds") {
			spec.folds = static_cast<int>(number(2, kMaxFolds, true));
			folds_given = true;
		} else if (key == "validation_size") {
			spec.validation_size = number(0.01, 0.9, false);
		} else if (key == "time_budget") {
			spec.time_budget = number(0.001, 1e9, false);
		} else if (key == "metric") {
			if (v.type != OptionValue::Type::String)
				bad_search("search_args \"metric\" must be a metric's name", "It was " + v.to_json() + ".",
				           "For example {\"metric\": \"rmse\"}.");
			spec.metric = v.string;
		} else {
			bad_search("unknown search_args key \"" + key + "\"", "",
			           "search_args takes trials, folds, validation_size, metric and time_budget.");
		}
	}
	if (folds_given && spec.validation_size > 0)
		bad_search("search_args cannot have both folds and validation_size",
		           "folds scores each trial by k-fold cross-validation; validation_size on one validation split.",
		           "Keep one of them.");
	if (spec.kind == SearchSpec::Kind::Grid && args.count("trials") > 0)
		bad_search("search_args \"trials\" is for random search", "A grid search tries every combination.",
		           "Use search => 'random', or leave trials out.");
}

// The hyperparameters a trial trains with: hyperparams => plus the trial's own values.
Options with_values(const Options &base, const std::vector<std::pair<std::string, OptionValue>> &set)
{
	Options o = base;
	for (const auto &[k, v] : set)
		o[k] = v;
	return o;
}

} // namespace

std::string SearchSpec::kind_name() const
{
	return kind == Kind::Grid ? "grid" : kind == Kind::Random ? "random" : "algorithms";
}

SearchSpec parse_search(const std::string &kind, const std::vector<std::pair<std::string, OptionValue>> &params,
                        const Options &args, const TrainSpec &base)
{
	SearchSpec spec;
	if (kind == "grid")
		spec.kind = SearchSpec::Kind::Grid;
	else if (kind == "random")
		spec.kind = SearchSpec::Kind::Random;
	else
		bad_search("unknown search \"" + kind + "\"", "", "Use search => 'grid' or 'random'.");
	if (base.task == Task::Clustering)
		throw Error(ErrorCode::FeatureNotSupported, "search needs a target column",
		            "A search scores hyperparameters by a metric on held-out labelled rows; clustering has none.",
		            "Train kmeans with the number of clusters you want, and compare versions with ml_retrain.");
	const AlgorithmDef &def = algorithm_def(base.algorithm);
	std::map<std::string, size_t> at;
	std::map<std::string, int> bounds; // per ranged hyperparameter: how many of min and max were given
	for (const auto &[key, v] : params) {
		const size_t cut = key.find_first_of(".[");
		const std::string name = key.substr(0, cut);
		const std::string rest = cut == std::string::npos ? "" : key.substr(cut);
		const ParamSpec *ps = find_param(def, name);
		if (ps == nullptr)
			bad_search("algorithm " + def.name + " has no hyperparameter \"" + name + "\" to search",
			           def.name + "'s hyperparameters: " + param_names(def) + ".", "Search some of those.");
		if (base.hyperparams.count(name) > 0)
			bad_search("hyperparameter \"" + name + "\" is in both hyperparams and search_params", "",
			           "hyperparams sets what stays fixed, search_params what is searched: name it in one of them.");
		if (at.count(name) == 0) {
			at[name] = spec.params.size();
			spec.params.push_back({});
			spec.params.back().name = name;
		}
		SearchParam &p = spec.params[at[name]];
		if (rest == "[]") {
			p.values.push_back(v);
		} else if (rest == ".min" || rest == ".max") {
			if (ps->kind != ParamSpec::Kind::Float && ps->kind != ParamSpec::Kind::Int)
				bad_search("hyperparameter \"" + name + "\" cannot be searched over a range",
				           "It takes " + std::string(ps->kind == ParamSpec::Kind::Bool ? "true or false" : "one of " + ps->choices) + ".",
				           "List its values: {\"" + name + "\": [...]}.");
			if (v.type != OptionValue::Type::Number)
				bad_search("search_params \"" + name + rest + "\" must be a number", "It was " + v.to_json() + ".", "");
			p.range = true;
			(rest == ".min" ? p.lo : p.hi) = v.number;
			bounds[name]++; // min and max are keys of one JSON object: each comes at most once
		} else if (rest == ".scale") {
			if (v.type != OptionValue::Type::String || (v.string != "log" && v.string != "linear"))
				bad_search("search_params \"" + name + ".scale\" must be \"linear\" or \"log\"",
				           "It was " + v.to_json() + ".", "");
			p.log = v.string == "log";
			p.range = true;
		} else {
			bad_search("search_params \"" + name + "\" must be a list of values or a range",
			           "It was " + (rest.empty() ? v.to_json() : "\"" + key + "\"") + ".",
			           "Write {\"" + name + "\": [1, 2, 3]} or, for random search, {\"" + name +
			               "\": {\"min\": 0.01, \"max\": 1, \"scale\": \"log\"}}.");
		}
	}
	if (spec.params.empty())
		bad_search("search_params names no hyperparameter", "",
		           "Write for example search_params => '{\"max_depth\": [2, 4, 8]}'.");
	for (SearchParam &p : spec.params) {
		if (!p.range)
			continue;
		if (bounds[p.name] != 2)
			bad_search("search_params \"" + p.name + "\" needs both min and max", "",
			           "Write {\"" + p.name + "\": {\"min\": ..., \"max\": ...}}.");
		if (!(p.lo < p.hi))
			bad_search("search_params \"" + p.name + "\" needs min below max",
			           "min was " + number_text(p.lo) + ", max " + number_text(p.hi) + ".", "");
		if (p.log && !(p.lo > 0))
			bad_search("search_params \"" + p.name + "\" on a log scale needs min above 0",
			           "min was " + number_text(p.lo) + ".", "Use \"scale\": \"linear\", or a positive min.");
		if (spec.kind == SearchSpec::Kind::Grid)
			bad_search("grid search takes lists of values, not ranges",
			           "search_params \"" + p.name + "\" is a range.",
			           "List the values to try, or use search => 'random'.");
	}
	parse_args(args, spec);
	if (spec.kind == SearchSpec::Kind::Grid) {
		double combos = 1;
		for (const SearchParam &p : spec.params)
			combos *= static_cast<double>(p.values.size());
		if (combos > kMaxTrials)
			throw Error(ErrorCode::ProgramLimit, "the grid has " + number_text(combos) + " combinations",
			            "A grid search trains every combination once per fold; at most " +
			                std::to_string(kMaxTrials) + " are allowed.",
			            "List fewer values, or use search => 'random' with search_args => '{\"trials\": 50}'.");
	}
	return spec;
}

SearchSpec auto_search(Task task, const Options &args)
{
	SearchSpec spec;
	spec.kind = SearchSpec::Kind::Algorithms;
	if (task == Task::Classification)
		spec.algorithms = {Algorithm::LogisticRegression, Algorithm::NaiveBayes, Algorithm::DecisionTree,
		                   Algorithm::GradientBoosting, Algorithm::RandomForest};
	else
		spec.algorithms = {Algorithm::LinearRegression, Algorithm::DecisionTree, Algorithm::GradientBoosting,
		                   Algorithm::RandomForest};
	spec.time_budget = 30;
	parse_args(args, spec);
	return spec;
}

// ---------------------------------------------------------------- the rows

struct Search::Rows {
	struct Col {
		bool text = false;
		std::vector<double> num;
		std::vector<uint8_t> null;
		std::string arena;        // text values, each NUL-terminated
		std::vector<size_t> off;  // text: offset of the row's value in arena
	};
	std::vector<Col> features;
	Col target;
	bool has_target = false;
	size_t n = 0;
	size_t bytes = 0;
	std::unordered_set<std::string> labels; // classification: the distinct labels (the default metric)

	static void append(Col &c, const ColumnData &d, size_t nrows, size_t &bytes)
	{
		for (size_t i = 0; i < nrows; i++) {
			const bool isnull = d.isnull != nullptr && d.isnull[i];
			c.null.push_back(isnull ? 1 : 0);
			if (c.text) {
				c.off.push_back(c.arena.size());
				if (!isnull)
					c.arena.append(d.str[i]);
				c.arena.push_back('\0');
			} else {
				c.num.push_back(isnull ? 0 : d.num[i]);
			}
		}
		bytes += nrows * (c.text ? sizeof(size_t) + 2 : sizeof(double) + 1);
	}

	// Feeds the rows to a training run, a block at a time.
	void feed(Trainer &t, CancelCheck cancel) const
	{
		constexpr size_t kBlock = 4096;
		const size_t nf = features.size();
		std::vector<ColumnData> cd(nf + 1);
		std::vector<std::unique_ptr<bool[]>> nulls(nf + 1);
		std::vector<std::vector<const char *>> strs(nf + 1);
		for (size_t c = 0; c <= nf; c++) {
			nulls[c] = std::make_unique<bool[]>(kBlock);
			strs[c].resize(kBlock);
		}
		for (size_t i0 = 0; i0 < n; i0 += kBlock) {
			const size_t nb = std::min(kBlock, n - i0);
			for (size_t c = 0; c <= nf; c++) {
				if (c == nf && !has_target)
					break;
				const Col &col = c < nf ? features[c] : target;
				for (size_t r = 0; r < nb; r++)
					nulls[c][r] = col.null[i0 + r] != 0;
				cd[c].isnull = nulls[c].get();
				if (col.text) {
					for (size_t r = 0; r < nb; r++)
						strs[c][r] = col.null[i0 + r] ? nullptr : col.arena.data() + col.off[i0 + r];
					cd[c].str = strs[c].data();
					cd[c].num = nullptr;
				} else {
					cd[c].num = col.num.data() + i0;
					cd[c].str = nullptr;
				}
			}
			Batch b;
			b.nrows = nb;
			b.nfeatures = nf;
			b.features = cd.data();
			b.target = has_target ? &cd[nf] : nullptr;
			t.add_batch(b, cancel);
		}
	}
};

Search::Search(const TrainSpec &base, SearchSpec spec)
    : base_(base), spec_(std::move(spec)), rows_(std::make_unique<Rows>())
{
	rows_->features.resize(base.features.size());
	for (size_t c = 0; c < base.features.size(); c++)
		rows_->features[c].text = base.features[c].categorical();
	rows_->has_target = base.task != Task::Clustering;
	rows_->target.text = base.target.categorical();
	// the spec and every trial's hyperparameters are checked before any row is read
	validate_spec(base_);
	plan();
}

Search::~Search() = default;

void Search::add_batch(const Batch &batch, CancelCheck cancel)
{
	check_cancel(cancel);
	Rows &r = *rows_;
	if (batch.nfeatures != r.features.size() || (batch.target != nullptr) != r.has_target)
		throw Error(ErrorCode::Internal, "batch does not match the search's columns");
	for (size_t c = 0; c < r.features.size(); c++)
		Rows::append(r.features[c], batch.features[c], batch.nrows, r.bytes);
	if (r.has_target) {
		Rows::append(r.target, *batch.target, batch.nrows, r.bytes);
		if (base_.task == Task::Classification)
			for (size_t i = 0; i < batch.nrows; i++)
				if (!batch.target->isnull[i])
					r.labels.insert(r.target.text ? std::string(batch.target->str[i])
					                              : numeric_label(base_.target.type_class, batch.target->num[i]));
	}
	r.n += batch.nrows;
	size_t text = 0;
	for (const Rows::Col &c : r.features)
		text += c.arena.size();
	if (r.bytes + text > base_.memory_limit / 2)
		throw Error(ErrorCode::ProgramLimit,
		            "a search needs more than half of " + std::to_string(base_.memory_limit >> 20) +
		                " MB of memory for its rows",
		            "A search keeps the rows to train a model per trial and fold; " + std::to_string(r.n) +
		                " rows had been read.",
		            "Raise pg_ml.max_memory, or search on a sample (a view with TABLESAMPLE) and train the chosen "
		            "hyperparameters on all rows.");
}

// The trials: the hyperparameters as given first (the baseline), then the grid's combinations
// or the random draws; or one trial per candidate algorithm.
void Search::plan()
{
	trials_.clear();
	// dedupe: not when an earlier trial trains with the same hyperparameters
	std::vector<Params> parsed_trials; // each trial's hyperparameters, parsed once (for dedupe)
	auto add = [&](Algorithm a, const Options &hp, bool dedupe) -> bool {
		Params parsed = parse_params(algorithm_def(a), hp);
		if (dedupe)
			for (size_t i = 0; i < trials_.size(); i++)
				if (trials_[i].algorithm == a && parsed_trials[i] == parsed)
					return false;
		parsed_trials.push_back(parsed);
		Trial t;
		t.number = static_cast<int>(trials_.size()) + 1;
		t.algorithm = a;
		t.hyperparams = hp;
		t.hyperparams_json = parsed.to_json();
		trials_.push_back(std::move(t));
		return true;
	};
	if (spec_.kind == SearchSpec::Kind::Algorithms) {
		for (Algorithm a : spec_.algorithms)
			add(a, {}, false);
		return;
	}
	const Algorithm a = base_.algorithm;
	if (spec_.kind == SearchSpec::Kind::Grid) {
		// every combination, the first parameter varying slowest
		std::vector<size_t> idx(spec_.params.size(), 0);
		std::vector<Options> combos;
		for (;;) {
			std::vector<std::pair<std::string, OptionValue>> set;
			for (size_t k = 0; k < idx.size(); k++)
				set.push_back({spec_.params[k].name, spec_.params[k].values[idx[k]]});
			combos.push_back(with_values(base_.hyperparams, set));
			size_t k = idx.size();
			while (k > 0 && ++idx[k - 1] == spec_.params[k - 1].values.size())
				idx[--k] = 0;
			if (k == 0)
				break;
		}
		// the baseline first; a combination equal to it is not trained twice (dedupe)
		add(a, base_.hyperparams, false);
		for (const Options &o : combos)
			add(a, o, true);
		return;
	}
	add(a, base_.hyperparams, false);
	std::mt19937_64 rng(base_.seed ^ 0x5EA2C4D1B7E3F601ull);
	std::uniform_real_distribution<double> unit(0.0, 1.0);
	const AlgorithmDef &def = algorithm_def(a);
	int drawn = 0;
	for (int attempt = 0; drawn < spec_.trials && attempt < spec_.trials * 50; attempt++) {
		std::vector<std::pair<std::string, OptionValue>> set;
		for (const SearchParam &p : spec_.params) {
			if (!p.range) {
				std::uniform_int_distribution<size_t> pick(0, p.values.size() - 1);
				set.push_back({p.name, p.values[pick(rng)]});
				continue;
			}
			const double u = unit(rng);
			double v = p.log ? std::exp(std::log(p.lo) + u * (std::log(p.hi) - std::log(p.lo)))
			                 : p.lo + u * (p.hi - p.lo);
			if (find_param(def, p.name)->kind == ParamSpec::Kind::Int)
				v = std::min(std::floor(p.hi), std::max(std::ceil(p.lo), std::round(v)));
			set.push_back({p.name, OptionValue::of_number(v)});
		}
		if (add(a, with_values(base_.hyperparams, set), true))
			drawn++;
	}
}

void Search::score(Trial &t, CancelCheck cancel, double started)
{
	const auto t0 = std::chrono::steady_clock::now();
	const int folds = spec_.validation_size > 0 ? 1 : spec_.folds;
	const size_t kept = rows_->bytes;
	for (int f = 0; f < folds; f++) {
		// the first trial always runs to its end: there is always a result to choose
		if (spec_.time_budget > 0 && t.number > 1 && started + seconds_since(t0) > spec_.time_budget) {
			t.error = "skipped: the time budget of " + number_text(spec_.time_budget) + " s was spent";
			t.fold_scores.clear();
			return;
		}
		TrainSpec s = base_;
		s.algorithm = t.algorithm;
		s.hyperparams = t.hyperparams;
		s.progress = nullptr;
		s.algorithm_choice.clear();
		s.cv_folds = spec_.validation_size > 0 ? 0 : folds;
		s.cv_fold = f;
		s.cv_holdout = spec_.validation_size;
		s.memory_limit = base_.memory_limit - std::min(base_.memory_limit, kept);
		try {
			Trainer tr(s);
			rows_->feed(tr, cancel);
			tr.finish(cancel, nullptr);
			if (tr.result().rows_test == 0)
				throw Error(ErrorCode::DataException,
				            folds > 1 ? "fold " + std::to_string(f + 1) + " of " + std::to_string(folds) + " holds no rows"
				                      : "the validation split holds no rows",
				            std::to_string(tr.result().rows_train) + " rows trained the fold's model.",
				            folds > 1 ? "Train on more rows, or use fewer folds (search_args => '{\"folds\": 3}')."
				                      : "Train on more rows, or use a larger validation_size.");
			t.fold_scores.push_back(json_number_field(tr.result().test_json, metric_));
		} catch (const Error &e) {
			if (e.code() != ErrorCode::DataException && e.code() != ErrorCode::InvalidParameter &&
			    e.code() != ErrorCode::NumericOutOfRange && e.code() != ErrorCode::FeatureNotSupported)
				throw;
			if (!first_error_)
				first_error_ = std::make_unique<Error>(e);
			t.error = e.what();
			if (!e.detail().empty())
				t.error += ": " + e.detail();
			if (!t.error.empty() && t.error.back() == '.')
				t.error.pop_back();
			break;
		}
	}
	t.ms = seconds_since(t0) * 1000;
	double sum = 0, n = 0;
	for (double v : t.fold_scores)
		if (std::isfinite(v)) {
			sum += v;
			n++;
		}
	if (!t.error.empty() || n == 0) {
		if (t.error.empty())
			t.error = "no fold could be scored by " + metric_;
		return;
	}
	t.mean = sum / n;
	double ss = 0;
	for (double v : t.fold_scores)
		if (std::isfinite(v))
			ss += (v - t.mean) * (v - t.mean);
	t.sd = n > 1 ? std::sqrt(ss / (n - 1)) : NAN;
}

void Search::run(CancelCheck cancel)
{
	const Rows &r = *rows_;
	if (r.n == 0)
		throw Error(ErrorCode::DataException, "no rows to search on");
	metric_ = spec_.metric.empty()
	              ? default_deploy_metric(base_.task, static_cast<int>(std::max<size_t>(2, r.labels.size())))
	              : spec_.metric;
	try {
		check_deploy_metric(metric_, base_.task);
	} catch (const Error &e) {
		std::string m = e.what();
		const size_t at = m.find("deploy metric");
		if (at != std::string::npos)
			m.replace(at, 13, "search metric");
		throw Error(e.code(), m, e.detail(), e.hint());
	}
	const bool lower = metric_lower_is_better(metric_);
	const auto t0 = std::chrono::steady_clock::now();
	best_ = -1;
	for (Trial &t : trials_) {
		check_cancel(cancel);
		const std::string phase = "trial " + std::to_string(t.number) + " of " + std::to_string(trials_.size());
		report_phase(base_.progress, phase.c_str());
		score(t, cancel, seconds_since(t0));
		if (!t.ok())
			continue;
		report_iteration(base_.progress, t.number, metric_.c_str(), t.mean);
		const Trial *b = best_ < 0 ? nullptr : &trials_[static_cast<size_t>(best_)];
		if (b == nullptr || (lower ? t.mean < b->mean : t.mean > b->mean))
			best_ = t.number - 1;
	}
	if (best_ < 0) {
		// no trial could be scored: the first one's error, as training without a search gives it
		if (first_error_)
			throw Error(*first_error_);
		throw Error(ErrorCode::DataException, "no trial of the search could be scored",
		            "Trial 1 (" + std::string(algorithm_name(trials_.front().algorithm)) + "): " +
		                trials_.front().error + ".",
		            "Train on more rows.");
	}
}

TrainSpec Search::chosen() const
{
	TrainSpec s = base_;
	s.algorithm = best().algorithm;
	s.hyperparams = best().hyperparams;
	s.search_json = report_json();
	return s;
}

std::string Search::report_json() const
{
	JsonWriter w;
	w.begin_object();
	w.key("kind").value(spec_.kind_name());
	w.key("metric").value(metric_);
	if (spec_.validation_size > 0)
		w.key("validation_size").value(spec_.validation_size);
	else
		w.key("folds").value(spec_.folds);
	int run = 0, skipped = 0, failed = 0;
	for (const Trial &t : trials_) {
		const bool skip = t.error.rfind("skipped", 0) == 0;
		skipped += skip ? 1 : 0;
		failed += !skip && !t.ok() ? 1 : 0;
		run += skip ? 0 : 1;
	}
	w.key("trials").value(run);
	if (skipped > 0)
		w.key("skipped").value(skipped);
	if (failed > 0)
		w.key("failed").value(failed);
	if (spec_.time_budget > 0)
		w.key("time_budget").value(spec_.time_budget);
	w.key("rows").value(static_cast<long long>(rows_->n));
	if (best_ >= 0) {
		const Trial &b = best();
		w.key("best").begin_object();
		w.key("trial").value(b.number);
		w.key("algorithm").value(algorithm_name(b.algorithm));
		w.key("hyperparams").raw(b.hyperparams_json);
		w.key("mean").value(b.mean);
		w.key("sd").value(b.sd);
		w.end_object();
		const Trial &first = trials_.front();
		if (first.ok()) {
			w.key("baseline").begin_object();
			w.key("trial").value(first.number);
			w.key("algorithm").value(algorithm_name(first.algorithm));
			w.key("mean").value(first.mean);
			w.end_object();
		}
	}
	w.key("summary").value(summary());
	w.end_object();
	return w.str();
}

std::string Search::summary() const
{
	if (best_ < 0)
		return "";
	const Trial &b = best();
	const std::string how = spec_.validation_size > 0
	                            ? "on a validation split of " + number_text(spec_.validation_size * 100) + "%"
	                            : "in " + std::to_string(spec_.folds) + "-fold cross-validation";
	std::string s = spec_.kind == SearchSpec::Kind::Algorithms
	                    ? std::string(algorithm_name(b.algorithm))
	                    : "trial " + std::to_string(b.number) + " of " + std::to_string(trials_.size());
	s += ": mean " + metric_ + " " + number_text(b.mean) + " " + how;
	// the runner-up (algorithms) or the baseline (the hyperparameters as given)
	const Trial *other = nullptr;
	if (spec_.kind == SearchSpec::Kind::Algorithms) {
		const bool lower = metric_lower_is_better(metric_);
		for (const Trial &t : trials_)
			if (t.ok() && t.number != b.number && (other == nullptr || (lower ? t.mean < other->mean : t.mean > other->mean)))
				other = &t;
	} else if (trials_.front().ok() && trials_.front().number != b.number) {
		other = &trials_.front();
	}
	if (other != nullptr) {
		const double d = b.mean - other->mean;
		s += d == 0 ? ", tied with " : ", " + std::string(d > 0 ? "+" : "") + number_text(d) + " over ";
		s += (spec_.kind == SearchSpec::Kind::Algorithms ? std::string(algorithm_name(other->algorithm))
		                                                  : std::string("the hyperparameters as given")) +
		     " (" + number_text(other->mean) + ")";
		if (d == 0 && spec_.kind == SearchSpec::Kind::Algorithms)
			s += "; the cheaper one is kept";
	} else if (b.number == 1 && spec_.kind != SearchSpec::Kind::Algorithms) {
		s += "; no trial beat the hyperparameters as given";
	}
	return s;
}

} // namespace pgml
