// pg_ml core: per-group models (grouped.hpp).
#include "grouped.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <numeric>

#include "json.hpp"
#include "limits.hpp"
#include "metrics.hpp"
#include "serialize.hpp"
#include "threads.hpp"

namespace pgml {

namespace {

const char *kGroupedMagic = "pg_ml grouped v1";
constexpr size_t kMaxGroupColumns = 32;
constexpr size_t kTrainSampleRows = 20000; // training rows kept for the pooled training metrics

void append_key_part(std::string &out, bool isnull, const char *s, size_t len)
{
	if (isnull) {
		out.push_back('N');
		return;
	}
	out.push_back('V');
	uint32_t n = static_cast<uint32_t>(len);
	out.append(reinterpret_cast<const char *>(&n), 4);
	out.append(s, len);
}

// A key part's SQL literal for messages: 'a' (quotes doubled), 3, true.
std::string literal(const ColumnInfo &c, const std::string &v)
{
	if (c.categorical()) {
		std::string q = "'";
		for (char ch : v) {
			q.push_back(ch);
			if (ch == '\'')
				q.push_back('\'');
		}
		return q + "'";
	}
	return v;
}

// Orders keys: column by column, NULL last, numbers numerically, text by bytes.
bool key_less(const GroupKey &a, const GroupKey &b, const std::vector<ColumnInfo> &cols)
{
	for (size_t c = 0; c < cols.size(); c++) {
		if (a.null[c] != b.null[c])
			return b.null[c];
		if (a.null[c])
			continue;
		if (cols[c].type_class == TypeClass::Numeric) {
			double x = std::strtod(a.values[c].c_str(), nullptr), y = std::strtod(b.values[c].c_str(), nullptr);
			if (x != y)
				return x < y;
		}
		if (a.values[c] != b.values[c])
			return a.values[c] < b.values[c];
	}
	return false;
}

// Classes in the order a classifier keeps them: numerically for numeric / boolean targets, else by bytes.
void sort_classes(std::vector<std::string> &classes, const ColumnInfo &target)
{
	auto num = [](const std::string &s) { return s == "true" ? 1.0 : s == "false" ? 0.0 : std::strtod(s.c_str(), nullptr); };
	std::sort(classes.begin(), classes.end(), [&](const std::string &a, const std::string &b) {
		return target.categorical() ? a < b : num(a) < num(b);
	});
}

std::vector<int> class_map_of(const Model &sub, const std::vector<std::string> &classes)
{
	std::vector<int> map;
	for (const auto &k : sub.classes) {
		auto it = std::find(classes.begin(), classes.end(), k);
		if (it == classes.end())
			corrupt("A group's model has a class the grouped model does not list.");
		map.push_back(static_cast<int>(it - classes.begin()));
	}
	return map;
}

std::string hex(uint64_t v)
{
	char buf[17];
	std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
	return buf;
}

// A run's training metrics: its metrics_json is {"train":X} or {"train":X,"test":T} (T its test_json)
std::string train_part(const TrainResult &r)
{
	const std::string &j = r.metrics_json;
	const std::string prefix = "{\"train\":";
	const size_t tail = 1 + (r.test_json.empty() ? 0 : r.test_json.size() + 8); // },"test":T}
	if (j.compare(0, prefix.size(), prefix) != 0 || j.size() < prefix.size() + tail)
		return "null";
	return j.substr(prefix.size(), j.size() - prefix.size() - tail);
}

// Regression metrics pooled exactly from several runs' sums (TrainResult::RegressionSums), in
// the form of RegressionMetrics::to_json; *n gets the rows, *r2 the r2.
std::string pooled_regression(const std::vector<const TrainResult::RegressionSums *> &parts, int64_t *n, double *r2)
{
	int64_t N = 0, mae_rows = 0;
	double mean = 0, sse = 0, sae = 0;
	for (const auto *p : parts) {
		if (p->n <= 0)
			continue;
		N += p->n;
		mean += (p->mean_y - mean) * static_cast<double>(p->n) / static_cast<double>(N);
		sse += p->sse;
		if (std::isfinite(p->mae)) {
			sae += p->mae * static_cast<double>(p->n);
			mae_rows += p->mae_rows;
		}
	}
	double sst = 0;
	for (const auto *p : parts)
		if (p->n > 0)
			sst += p->syy + static_cast<double>(p->n) * (p->mean_y - mean) * (p->mean_y - mean);
	*n = N;
	*r2 = sst > 0 ? 1.0 - sse / sst : (sse <= 0 ? 1.0 : 0.0);
	const double mse = N > 0 ? sse / static_cast<double>(N) : NAN;
	JsonWriter w;
	w.begin_object();
	w.key("r2").value(*r2);
	w.key("rmse").value(std::sqrt(mse));
	w.key("mse").value(mse);
	w.key("mae").value(N > 0 ? sae / static_cast<double>(N) : NAN);
	w.key("rows").value(static_cast<long long>(N));
	if (mae_rows < N)
		w.key("mae_sample_rows").value(static_cast<long long>(mae_rows));
	w.end_object();
	return w.str();
}

} // namespace

// ---------------------------------------------------------------- keys

std::string group_value_text(TypeClass tc, const Value &v)
{
	if (tc == TypeClass::Categorical)
		return std::string(v.str, v.len);
	if (tc == TypeClass::Boolean)
		return v.num != 0 ? "true" : "false";
	char buf[40];
	if (std::nearbyint(v.num) == v.num && std::fabs(v.num) < 9.2e18)
		std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v.num));
	else
		std::snprintf(buf, sizeof buf, "%.17g", v.num);
	return buf;
}

std::string GroupKey::encode() const
{
	std::string out;
	for (size_t c = 0; c < values.size(); c++)
		append_key_part(out, null[c] != 0, values[c].data(), values[c].size());
	return out;
}

std::string GroupKey::describe(const std::vector<ColumnInfo> &columns) const
{
	std::string out;
	for (size_t c = 0; c < columns.size() && c < values.size(); c++) {
		if (c > 0)
			out += ", ";
		out += columns[c].name + (null[c] ? " IS NULL" : " = " + literal(columns[c], values[c]));
	}
	return out;
}

std::string GroupKey::to_json(const std::vector<ColumnInfo> &columns) const
{
	JsonWriter w;
	w.begin_object();
	for (size_t c = 0; c < columns.size() && c < values.size(); c++) {
		w.key(columns[c].name);
		if (null[c])
			w.null();
		else if (columns[c].type_class == TypeClass::Numeric)
			w.raw(values[c]);
		else if (columns[c].type_class == TypeClass::Boolean)
			w.value(values[c] == "true");
		else
			w.value(values[c]);
	}
	w.end_object();
	return w.str();
}

// ---------------------------------------------------------------- routing

void GroupedModel::index(const std::vector<std::string> &classes)
{
	index_.clear();
	for (size_t i = 0; i < groups.size(); i++) {
		if (!index_.emplace(groups[i].key.encode(), i).second)
			corrupt("Two groups of the grouped model have the same key.");
		groups[i].class_map = class_map_of(*groups[i].model, classes);
	}
	if (fallback)
		fallback_map = class_map_of(*fallback, classes);
}

const GroupedModel::Group *GroupedModel::find(const Value *group_values) const
{
	key_scratch_.clear();
	for (size_t c = 0; c < columns.size(); c++) {
		const Value &v = group_values[c];
		if (v.isnull || columns[c].categorical()) {
			append_key_part(key_scratch_, v.isnull, v.str, v.len);
		} else {
			std::string t = group_value_text(columns[c].type_class, v);
			append_key_part(key_scratch_, false, t.data(), t.size());
		}
	}
	auto it = index_.find(key_scratch_);
	return it == index_.end() ? nullptr : &groups[it->second];
}

const Model &GroupedModel::serving(const Model &container, const Value *values, const Group **group,
                                   const std::vector<int> **map) const
{
	const size_t nf = container.features.size() - columns.size();
	const Group *g = find(values + nf);
	*group = g;
	*map = g != nullptr ? &g->class_map : &fallback_map;
	if (g != nullptr)
		return *g->model;
	if (fallback)
		return *fallback;
	throw Error(ErrorCode::InvalidParameter, "no model for group " + key_of(values + nf).describe(columns),
	            "The grouped model has a model for each of its " + std::to_string(groups.size()) +
	                " training groups and no fallback model.",
	            "Predict rows of the training groups, or retrain with group_fallback => 'all' to serve other "
	            "groups with a model of every row.");
}

GroupKey GroupedModel::key_of(const Value *group_values) const
{
	GroupKey k;
	for (size_t c = 0; c < columns.size(); c++) {
		const Value &v = group_values[c];
		k.null.push_back(v.isnull ? 1 : 0);
		k.values.push_back(v.isnull ? std::string() : group_value_text(columns[c].type_class, v));
	}
	return k;
}

int GroupedModel::predict(const Model &container, const Value *values, double *out, int64_t *unseen) const
{
	const Group *g = nullptr;
	const std::vector<int> *map = nullptr;
	const Model &m = serving(container, values, &g, &map);
	if (container.task != Task::Classification)
		return m.predict(values, out, unseen);
	out_scratch_.resize(static_cast<size_t>(std::max(m.n_outputs(), 1)));
	int k = m.predict(values, out_scratch_.data(), unseen);
	std::fill(out, out + container.n_outputs(), 0.0);
	for (size_t j = 0; j < map->size(); j++)
		out[(*map)[j]] = out_scratch_[j];
	return (*map)[static_cast<size_t>(k)];
}

void GroupedModel::predict_batch(const Model &container, const Value *values, size_t n, double *out, int *klass,
                                 int64_t *unseen) const
{
	const size_t nv = container.features.size(), nf = nv - columns.size();
	const size_t nout = static_cast<size_t>(std::max(container.n_outputs(), 1));
	std::vector<std::vector<size_t>> rows(groups.size() + 1); // per group, then the fallback's
	for (size_t i = 0; i < n; i++) {
		const Group *g = find(values + i * nv + nf);
		if (g == nullptr && !fallback)
			predict(container, values + i * nv, out + i * nout, unseen); // the unseen group's error
		rows[g != nullptr ? static_cast<size_t>(g - groups.data()) : groups.size()].push_back(i);
	}
	std::vector<Value> sub;
	std::vector<double> sub_out;
	std::vector<int> sub_klass;
	for (size_t s = 0; s <= groups.size(); s++) {
		const std::vector<size_t> &r = rows[s];
		if (r.empty())
			continue;
		const Model &m = s < groups.size() ? *groups[s].model : *fallback;
		const size_t mout = static_cast<size_t>(std::max(m.n_outputs(), 1));
		sub.resize(r.size() * nf);
		for (size_t j = 0; j < r.size(); j++)
			std::copy(values + r[j] * nv, values + r[j] * nv + nf, sub.data() + j * nf);
		sub_out.resize(r.size() * mout);
		sub_klass.resize(r.size());
		m.predict_batch(sub.data(), r.size(), sub_out.data(), sub_klass.data(), unseen);
		const bool classes = container.task == Task::Classification;
		const std::vector<int> &map = s < groups.size() ? groups[s].class_map : fallback_map;
		for (size_t j = 0; j < r.size(); j++) {
			double *o = out + r[j] * nout;
			if (!classes) {
				std::copy(sub_out.data() + j * mout, sub_out.data() + (j + 1) * mout, o);
				klass[r[j]] = sub_klass[j];
				continue;
			}
			std::fill(o, o + nout, 0.0);
			for (size_t k = 0; k < map.size(); k++)
				o[map[k]] = sub_out[j * mout + k];
			klass[r[j]] = map[static_cast<size_t>(sub_klass[j])];
		}
	}
}

// ---------------------------------------------------------------- blob

std::vector<uint8_t> serialize_grouped(const Model &m)
{
	const GroupedModel &g = *m.grouped;
	Writer w;
	w.str(kGroupedMagic);
	w.i64(m.binding.model_id);
	w.i32(m.binding.version);
	w.u16(static_cast<uint16_t>(m.algorithm));
	w.u8(static_cast<uint8_t>(m.task));
	write_column(w, m.target);
	w.f64(m.test_size);
	w.u64(m.seed);
	w.u64(g.columns.size());
	for (const auto &c : g.columns)
		write_column(w, c);
	w.u64(m.classes.size());
	for (const auto &k : m.classes)
		w.str(k);
	auto sub = [&](const Model &s) {
		// each sub-model is bound to the container's row
		Model &bound = const_cast<Model &>(s);
		bound.binding = m.binding;
		std::vector<uint8_t> b = s.serialize();
		w.str(std::string(b.begin(), b.end()));
	};
	w.u64(g.groups.size());
	for (const auto &grp : g.groups) {
		for (size_t c = 0; c < g.columns.size(); c++) {
			w.u8(grp.key.null[c]);
			w.str(grp.key.values[c]);
		}
		sub(*grp.model);
	}
	w.u8(g.fallback ? 1 : 0);
	if (g.fallback)
		sub(*g.fallback);
	return seal_blob(kGroupedKind, w.bytes());
}

namespace {

// A sub-model's blob: a complete model blob (never another container), bound as the container.
std::shared_ptr<Model> read_sub(Reader &r, const Model &top)
{
	std::string b = r.str();
	const uint8_t *data = reinterpret_cast<const uint8_t *>(b.data());
	const uint8_t *payload = nullptr;
	if (open_blob(data, b.size(), &payload).kind == kGroupedKind)
		corrupt("A group's model is itself a grouped model.");
	std::shared_ptr<Model> s(Model::deserialize(data, b.size()).release());
	if (s->algorithm != top.algorithm || s->task != top.task)
		corrupt("A group's model is not of the grouped model's algorithm and task.");
	if (s->binding.model_id != top.binding.model_id || s->binding.version != top.binding.version)
		corrupt("A group's model belongs to another catalog row.");
	if (s->target.name != top.target.name || s->target.type_class != top.target.type_class)
		corrupt("A group's model has another target.");
	return s;
}

} // namespace

std::unique_ptr<Model> deserialize_grouped(uint16_t format, const uint8_t *payload, size_t len)
{
	if (format < kFirstBoundFormat)
		corrupt("A grouped model needs a blob format that binds it to its catalog row.");
	Reader r(payload, len);
	if (r.str() != kGroupedMagic)
		corrupt("The payload does not start with the grouped model marker.");
	auto m = std::make_unique<Model>();
	auto g = std::make_shared<GroupedModel>();
	m->binding.model_id = r.i64();
	m->binding.version = r.i32();
	if (m->binding.model_id < 0 || m->binding.version < 0 || (m->binding.model_id == 0) != (m->binding.version == 0))
		corrupt("The blob's model id or version is invalid.");
	m->algorithm = static_cast<Algorithm>(r.u16());
	const AlgorithmDef &def = algorithm_def(m->algorithm); // an unknown algorithm is corrupt
	uint8_t task = r.u8();
	if (task > 1 || !def.supports(static_cast<Task>(task)))
		corrupt("The grouped model's task does not match its algorithm.");
	m->task = static_cast<Task>(task);
	m->target = read_column(r);
	m->test_size = r.f64();
	m->seed = r.u64();
	if (!(m->test_size >= 0 && m->test_size < 1))
		corrupt("test_size is out of range.");
	size_t ncols = r.count(18);
	if (ncols == 0 || ncols > kMaxGroupColumns)
		corrupt("The grouped model's group columns are invalid.");
	for (size_t c = 0; c < ncols; c++)
		g->columns.push_back(read_column(r));
	size_t nc = r.count(8);
	for (size_t i = 0; i < nc; i++)
		m->classes.push_back(r.str());
	if ((m->task == Task::Classification) != (nc >= 2) || (m->task != Task::Classification && nc != 0))
		corrupt("The grouped model's classes do not match its task.");
	size_t ngroups = r.count(ncols * 9 + 8);
	if (ngroups == 0)
		corrupt("The grouped model has no groups.");
	for (size_t i = 0; i < ngroups; i++) {
		GroupedModel::Group grp;
		for (size_t c = 0; c < ncols; c++) {
			uint8_t isnull = r.u8();
			std::string v = r.str();
			if (isnull > 1 || (isnull == 1 && !v.empty()))
				corrupt("A group key is invalid.");
			grp.key.null.push_back(isnull);
			grp.key.values.push_back(std::move(v));
		}
		grp.model = read_sub(r, *m);
		g->groups.push_back(std::move(grp));
	}
	uint8_t has_fallback = r.u8();
	if (has_fallback > 1)
		corrupt("The fallback flag is invalid.");
	if (has_fallback == 1)
		g->fallback = read_sub(r, *m);
	if (!r.at_end())
		corrupt("Unexpected bytes after the grouped model.");

	// every sub-model has the same features; the group columns are none of them
	const Model &first = *g->groups[0].model;
	auto same_features = [&](const Model &s) {
		if (s.features.size() != first.features.size())
			return false;
		for (size_t i = 0; i < s.features.size(); i++)
			if (s.features[i].name != first.features[i].name || s.features[i].type_class != first.features[i].type_class)
				return false;
		return true;
	};
	for (const auto &grp : g->groups)
		if (!same_features(*grp.model))
			corrupt("The groups' models have different features.");
	if (g->fallback && !same_features(*g->fallback))
		corrupt("The fallback model has other features than the groups' models.");
	m->features = first.features;
	for (const auto &c : g->columns) {
		for (const auto &f : m->features)
			if (f.name == c.name)
				corrupt("A group column is also a feature.");
		if (m->task != Task::Clustering && c.name == m->target.name)
			corrupt("A group column is also the target.");
		m->features.push_back(c);
	}
	for (size_t a = 0; a < g->columns.size(); a++)
		for (size_t b = a + 1; b < g->columns.size(); b++)
			if (g->columns[a].name == g->columns[b].name)
				corrupt("A group column is listed twice.");
	m->hyperparams = first.hyperparams;
	m->preprocess = first.preprocess;
	g->index(m->classes);
	m->grouped = std::move(g);
	return m;
}

// ---------------------------------------------------------------- training

namespace {

// Rows the trainer keeps itself (the held-out rows, a sample of the training rows), compactly.
struct KeptRows {
	std::vector<uint32_t> group;
	std::vector<double> y;       // regression
	std::vector<int32_t> label;  // classification: id in GroupedTrainer's labels
	std::vector<std::vector<double>> num;
	std::vector<std::vector<int32_t>> cat;
	size_t size() const { return group.size(); }
};

// The columns of one sub-batch, gathered from a batch.
struct Gather {
	std::vector<std::vector<double>> num;
	std::vector<std::vector<const char *>> str;
	std::vector<std::unique_ptr<bool[]>> nulls;
	std::vector<ColumnData> cols;
	ColumnData target;
	std::vector<double> tnum;
	std::vector<const char *> tstr;
	std::unique_ptr<bool[]> tnull;
	size_t cap = 0;
};

} // namespace

namespace {

// Scores a model on kept rows: per group (when per_group is given) and pooled.
struct Scores {
	std::unique_ptr<RegressionMetrics> reg;
	std::unique_ptr<ClassificationMetrics> cls;
	explicit Scores(const Model &m)
	{
		if (m.task == Task::Classification)
			cls = std::make_unique<ClassificationMetrics>(m.classes);
		else
			reg = std::make_unique<RegressionMetrics>();
	}
	std::string json() const { return reg ? reg->to_json() : cls->to_json(); }
	double primary() const { return reg ? reg->r2() : cls->accuracy(); }
	int64_t count() const { return reg ? reg->count() : cls->count(); }
	// one row's prediction (o, klass: what model.predict returned) against its label
	void add(const Model &model, const KeptRows &k, size_t i, const Dictionary &labels, const double *o, int klass)
	{
		if (reg) {
			reg->add(k.y[i], o[0]);
			return;
		}
		auto it = std::find(model.classes.begin(), model.classes.end(), labels.name(k.label[i]));
		if (it != model.classes.end())
			cls->add(static_cast<int>(it - model.classes.begin()), klass, o);
	}
};

// The scores of a grouped version on the kept rows: on the test rows pooled and per group, and
// (against `compare`) both versions on the test rows the compared one serves; on the training sample.
struct ScoreSet {
	Scores pooled, pooled_train;
	std::vector<Scores> per_group;
	std::unique_ptr<Scores> prev, new_on_prev;
	int64_t unknown_labels = 0, unseen_by_compare = 0;
	ScoreSet(const Model &top, size_t groups, const Model *compare) : pooled(top), pooled_train(top)
	{
		for (size_t g = 0; g < groups; g++)
			per_group.emplace_back(top);
		if (compare != nullptr && compare->task == top.task) {
			prev = std::make_unique<Scores>(*compare);
			new_on_prev = std::make_unique<Scores>(top);
		}
	}
};

} // namespace

struct GroupedTrainer::Impl {
	TrainSpec spec;     // the container's (test_size, seed)
	TrainSpec sub_spec; // each group's: no split of its own (the statistics aggregate: its own)
	bool aggregated = false; // fed by add_stats_group
	GroupSpec gs;
	std::vector<GroupKey> keys;
	std::unordered_map<std::string, size_t> index;
	std::vector<std::unique_ptr<Trainer>> trainers;
	std::unique_ptr<Trainer> all;
	std::vector<std::shared_ptr<Model>> models; // shared with the containers finish() makes
	std::shared_ptr<Model> all_model;
	std::vector<uint8_t> precise; // groups whose fit wants the precise pass (index ngroups: the fallback)
	std::vector<int64_t> held_rows;
	std::vector<Dictionary> dict; // per feature column (categorical ones)
	Dictionary labels;
	KeptRows test, sample;
	std::vector<std::pair<double, size_t>> sample_heap; // (draw, slot): a max-heap of the kept sample
	uint64_t fingerprint = 0;
	Gather gather;
	std::vector<std::vector<uint32_t>> rows_of; // per group: this batch's rows
	std::string key;

	size_t nf() const { return spec.features.size(); }
	void add_rows(const Batch &batch, CancelCheck cancel, bool precise_pass);
	size_t add_group(const std::string &encoded, GroupKey key);
	void check_group_count() const;
	void start(bool aggregate);
	std::unique_ptr<Trainer> new_trainer() const;
	size_t group_of(const Batch &batch, size_t i);
	void feed(Trainer &t, const Batch &batch, const std::vector<uint32_t> &rows, CancelCheck cancel, bool precise_pass,
	          size_t g);
	void keep(KeptRows &k, size_t slot, const Batch &batch, size_t i, size_t g);
	[[noreturn]] void rethrow(const Error &e, size_t g) const;
	std::string describe(size_t g) const { return g < keys.size() ? keys[g].describe(gs.columns) : "(all rows)"; }
	// finish(): each group's model fitted (after the precise pass: those that asked for it)
	void fit_groups(CancelCheck cancel);
	void fit_all(const std::vector<size_t> &todo, CancelCheck cancel);
	// the version's profile (ml_monitor): of the features and the group columns (empty: none);
	// with drift_ref, the drift of the same rows against it in *drift
	std::string container_profile(std::string *drift) const;
	std::unique_ptr<Profile> drift_ref;
	// the container's features of kept row i
	void row_values(const KeptRows &k, size_t i, Value *vals) const;
	// scores the kept rows (test: the held-out rows, else the training sample) in batches
	void score_kept(const Model &top, const Model *compare, const std::vector<int> &class_of, const KeptRows &k,
	                bool test, ScoreSet &sc, CancelCheck cancel) const;
	std::vector<size_t> key_order() const
	{
		std::vector<size_t> order(keys.size());
		std::iota(order.begin(), order.end(), 0);
		std::sort(order.begin(), order.end(),
		          [&](size_t a, size_t b) { return key_less(keys[a], keys[b], gs.columns); });
		return order;
	}
	// the container of the groups' models in key order (order: the groups' indexes in that order)
	std::unique_ptr<Model> container(const std::vector<size_t> &order) const;
	// the metrics of each group (JSON array) and their reports; adds the groups' warnings to res
	std::pair<std::string, std::string> group_metrics(const std::vector<size_t> &order,
	                                                  const std::vector<Scores> &per_group, TrainResult &res,
	                                                  int64_t &rows_train) const;
	std::string report(int64_t rows_read, int64_t rows_train, int64_t rows_test, long long train_sample_rows,
	                   int64_t unknown_labels, int64_t unseen_by_compare, const std::string &group_reports) const;
};

// A group's failure names the group (the primary line) beside the core's own text.
void GroupedTrainer::Impl::rethrow(const Error &e, size_t g) const
{
	if (e.code() == ErrorCode::Cancelled || e.code() == ErrorCode::Internal)
		throw e;
	throw Error(e.code(), std::string(e.what()) + (g < keys.size() ? " in group " : " in the fallback model of ") +
	                          describe(g),
	            e.detail(), e.hint());
}

GroupedTrainer::GroupedTrainer(const TrainSpec &spec, GroupSpec groups) : impl_(std::make_unique<Impl>())
{
	Impl &m = *impl_;
	if (groups.columns.empty() || groups.columns.size() > kMaxGroupColumns)
		throw Error(ErrorCode::InvalidParameter, "group_by must name 1 to " + std::to_string(kMaxGroupColumns) + " columns");
	if (spec.task == Task::Clustering)
		throw Error(ErrorCode::FeatureNotSupported, "group_by does not support clustering",
		            "Per-group models are trained for regression and classification.",
		            "Cluster each group's rows with a WHERE clause in a view.");
	validate_spec(spec);
	m.spec = spec;
	m.sub_spec = spec;
	m.sub_spec.test_size = 0;
	m.sub_spec.progress = nullptr;
	m.sub_spec.allow_new_classes = true; // a refit's class contract is the container's (finish)
	m.gs = std::move(groups);
	m.dict.resize(spec.features.size());
	m.test.num.resize(m.nf());
	m.test.cat.resize(m.nf());
	m.sample.num.resize(m.nf());
	m.sample.cat.resize(m.nf());
}

std::unique_ptr<Trainer> GroupedTrainer::Impl::new_trainer() const
{
	return gs.base ? std::make_unique<Trainer>(sub_spec, *gs.base, false) : std::make_unique<Trainer>(sub_spec);
}

GroupedTrainer::~GroupedTrainer() = default;

size_t GroupedTrainer::group_count() const { return impl_->keys.size(); }

// The group of row i (a new one gets its trainer).
size_t GroupedTrainer::Impl::group_of(const Batch &batch, size_t i)
{
	key.clear();
	for (size_t c = 0; c < gs.columns.size(); c++) {
		const ColumnData &col = batch.features[nf() + c];
		if (col.isnull[i] || gs.columns[c].categorical()) {
			const char *s = col.isnull[i] ? nullptr : col.str[i];
			append_key_part(key, col.isnull[i], s, s ? std::strlen(s) : 0);
		} else {
			Value v;
			v.isnull = false;
			v.num = col.num[i];
			std::string t = group_value_text(gs.columns[c].type_class, v);
			append_key_part(key, false, t.data(), t.size());
		}
	}
	auto it = index.find(key);
	if (it != index.end())
		return it->second;
	check_group_count();
	GroupKey k;
	for (size_t c = 0; c < gs.columns.size(); c++) {
		const ColumnData &col = batch.features[nf() + c];
		k.null.push_back(col.isnull[i] ? 1 : 0);
		Value v;
		v.isnull = col.isnull[i];
		v.num = col.isnull[i] || gs.columns[c].categorical() ? 0 : col.num[i];
		v.str = col.isnull[i] || !gs.columns[c].categorical() ? nullptr : col.str[i];
		v.len = v.str ? std::strlen(v.str) : 0;
		k.values.push_back(col.isnull[i] ? std::string() : group_value_text(gs.columns[c].type_class, v));
	}
	return add_group(key, std::move(k));
}

// Past max_groups: an error naming the count.
void GroupedTrainer::Impl::check_group_count() const
{
	if (keys.size() >= gs.max_groups) {
		std::string names;
		for (const auto &c : gs.columns)
			names += (names.empty() ? "" : ", ") + c.name;
		throw Error(ErrorCode::ProgramLimit,
		            "group_by (" + names + ") makes more than " + std::to_string(gs.max_groups) + " groups",
		            "At most " + std::to_string(gs.max_groups) + " groups are trained in one call (pg_ml.max_groups).",
		            "Group by a coarser column, filter the rows in a view, or raise pg_ml.max_groups.");
	}
}

// A new group and its trainer (past max_groups: check_group_count first).
size_t GroupedTrainer::Impl::add_group(const std::string &encoded, GroupKey k)
{
	keys.push_back(std::move(k));
	trainers.push_back(new_trainer());
	held_rows.push_back(0);
	index.emplace(encoded, keys.size() - 1);
	return keys.size() - 1;
}

// The first rows: how they come (rows or aggregate statistics) decides the groups' split.
void GroupedTrainer::Impl::start(bool aggregate)
{
	if (!keys.empty() || all)
		return;
	aggregated = aggregate;
	if (aggregate)
		sub_spec.test_size = spec.test_size;
	if (gs.fallback_all)
		all = new_trainer();
}

// Copies row i (its features and target) into slot `slot` of k (slot == size: appended).
void GroupedTrainer::Impl::keep(KeptRows &k, size_t slot, const Batch &batch, size_t i, size_t g)
{
	const bool append = slot == k.size();
	const ColumnData &t = *batch.target;
	double y = 0;
	int32_t label = -1;
	if (spec.task == Task::Classification)
		label = labels.intern(spec.target.categorical() ? std::string(t.str[i])
		                                                : numeric_label(spec.target.type_class, t.num[i]));
	else
		y = t.num[i];
	auto put = [&](auto &v, auto x) {
		if (append)
			v.push_back(x);
		else
			v[slot] = x;
	};
	put(k.group, static_cast<uint32_t>(g));
	put(k.y, y);
	put(k.label, label);
	for (size_t c = 0; c < nf(); c++) {
		const ColumnData &col = batch.features[c];
		if (spec.features[c].categorical())
			put(k.cat[c], col.isnull[i] ? int32_t(-1) : dict[c].intern(col.str[i]));
		else
			put(k.num[c], col.isnull[i] ? NAN : col.num[i]);
	}
}

// Hands the rows of a batch to a trainer (gathered into a sub-batch).
void GroupedTrainer::Impl::feed(Trainer &t, const Batch &batch, const std::vector<uint32_t> &rows, CancelCheck cancel,
                                bool precise_pass, size_t g)
{
	Gather &G = gather;
	const size_t n = rows.size(), F = nf();
	if (G.cols.size() != F) {
		G.num.assign(F, {});
		G.str.assign(F, {});
		G.nulls.resize(F);
		G.cols.assign(F, ColumnData());
		G.cap = 0;
	}
	if (n > G.cap) {
		for (size_t c = 0; c < F; c++)
			G.nulls[c].reset(new bool[n]);
		G.tnull.reset(new bool[n]);
		G.cap = n;
	}
	for (size_t c = 0; c < F; c++) {
		const ColumnData &src = batch.features[c];
		bool *nl = G.nulls[c].get();
		if (spec.features[c].categorical()) {
			G.str[c].resize(n);
			for (size_t j = 0; j < n; j++) {
				nl[j] = src.isnull[rows[j]];
				G.str[c][j] = src.str[rows[j]];
			}
			G.cols[c].str = G.str[c].data();
		} else {
			G.num[c].resize(n);
			for (size_t j = 0; j < n; j++) {
				nl[j] = src.isnull[rows[j]];
				G.num[c][j] = src.num[rows[j]];
			}
			G.cols[c].num = G.num[c].data();
		}
		G.cols[c].isnull = nl;
	}
	const ColumnData &t0 = *batch.target;
	if (spec.target.categorical()) {
		G.tstr.resize(n);
		for (size_t j = 0; j < n; j++)
			G.tstr[j] = t0.str[rows[j]];
		G.target.str = G.tstr.data();
	} else {
		G.tnum.resize(n);
		for (size_t j = 0; j < n; j++)
			G.tnum[j] = t0.num[rows[j]];
		G.target.num = G.tnum.data();
	}
	for (size_t j = 0; j < n; j++)
		G.tnull[j] = t0.isnull[rows[j]];
	G.target.isnull = G.tnull.get();
	Batch sub;
	sub.nrows = n;
	sub.nfeatures = F;
	sub.features = G.cols.data();
	sub.target = &G.target;
	try {
		if (precise_pass)
			t.add_precise_batch(sub, cancel);
		else
			t.add_batch(sub, cancel);
	} catch (const Error &e) {
		rethrow(e, g);
	}
}

void GroupedTrainer::Impl::add_rows(const Batch &batch, CancelCheck cancel, bool precise_pass)
{
	const size_t F = nf();
	if (batch.nfeatures != F + gs.columns.size() || batch.target == nullptr)
		throw Error(ErrorCode::Internal, "batch does not match the grouped training columns");
	for (auto &r : rows_of)
		r.clear();
	std::vector<uint32_t> all_rows;
	for (size_t i = 0; i < batch.nrows; i++) {
		const size_t g = group_of(batch, i);
		if (rows_of.size() < keys.size())
			rows_of.resize(keys.size());
		// the row hash of every route (data.hpp): the target, then the features in order; a row
		// the trainer skips or refuses (NULL target, a value that is not finite) is never held out
		const ColumnData &t = *batch.target;
		bool valid = !t.isnull[i] && (spec.target.categorical() || std::isfinite(t.num[i]));
		uint64_t h = kRowHashSeed;
		if (valid)
			h = spec.target.categorical() ? hash_target_str(h, t.str[i], std::strlen(t.str[i])) : hash_target_num(h, t.num[i]);
		for (size_t c = 0; c < F && valid; c++) {
			const ColumnData &col = batch.features[c];
			if (spec.features[c].categorical()) {
				const char *s = col.isnull[i] ? nullptr : col.str[i];
				h = hash_str(h, c, s, s ? std::strlen(s) : 0);
			} else {
				valid = col.isnull[i] || std::isfinite(col.num[i]);
				h = hash_num(h, c, col.isnull[i], col.isnull[i] ? NAN : col.num[i]);
			}
		}
		// (the statistics aggregate's groups split their rows themselves, the precise pass too)
		if (valid && !aggregated && is_test_row(h, spec.seed, spec.test_size)) {
			if (!precise_pass) {
				keep(test, test.size(), batch, i, g);
				held_rows[g]++;
				fingerprint += mix64(h);
			}
			continue;
		}
		if (valid && !precise_pass) {
			fingerprint += mix64(h);
			if (aggregated) // (not reached: aggregated runs read rows only in the precise pass)
				continue;
			// the training sample: the kTrainSampleRows rows with the smallest draws
			double d = sample_draw(h, spec.seed);
			if (sample.size() < kTrainSampleRows) {
				sample_heap.emplace_back(d, sample.size());
				std::push_heap(sample_heap.begin(), sample_heap.end());
				keep(sample, sample.size(), batch, i, g);
			} else if (d < sample_heap.front().first) {
				std::pop_heap(sample_heap.begin(), sample_heap.end());
				size_t slot = sample_heap.back().second;
				sample_heap.back() = {d, slot};
				std::push_heap(sample_heap.begin(), sample_heap.end());
				keep(sample, slot, batch, i, g);
			}
		}
		rows_of[g].push_back(static_cast<uint32_t>(i));
		all_rows.push_back(static_cast<uint32_t>(i));
	}
	for (size_t g = 0; g < rows_of.size(); g++) {
		if (rows_of[g].empty() || (precise_pass && !precise[g]))
			continue;
		feed(*trainers[g], batch, rows_of[g], cancel, precise_pass, g);
	}
	if (all && !all_rows.empty() && (!precise_pass || precise[keys.size()]))
		feed(*all, batch, all_rows, cancel, precise_pass, keys.size());
}

void GroupedTrainer::add_batch(const Batch &batch, CancelCheck cancel)
{
	check_cancel(cancel);
	if (impl_->aggregated)
		throw Error(ErrorCode::Internal, "a grouped run is fed by rows or by statistics, not both");
	impl_->start(false);
	rows_read_ += static_cast<int64_t>(batch.nrows);
	impl_->add_rows(batch, cancel, false);
}

bool GroupedTrainer::uses_stats_aggregate() const
{
	const Impl &m = *impl_;
	if (!m.keys.empty() || m.gs.base || m.gs.fallback_all) // (the fallback reads rows)
		return false;
	TrainSpec probe = m.spec;
	probe.progress = nullptr;
	return Trainer(probe).uses_stats_aggregate();
}

std::vector<double> GroupedTrainer::stats_params(double expected_rows) const
{
	TrainSpec probe = impl_->spec;
	probe.progress = nullptr;
	return Trainer(probe).stats_params(expected_rows);
}

void GroupedTrainer::add_stats_group(const std::vector<const char *> &group_values,
                                     const std::vector<const char *> &levels, const double *state, size_t len,
                                     CancelCheck cancel)
{
	Impl &m = *impl_;
	if (!m.aggregated && (!m.keys.empty() || m.all))
		throw Error(ErrorCode::Internal, "a grouped run is fed by rows or by statistics, not both");
	m.start(true);
	if (group_values.size() != m.gs.columns.size())
		throw Error(ErrorCode::Internal, "a statistics group does not match the group columns");
	m.key.clear();
	GroupKey k;
	for (const char *v : group_values) {
		append_key_part(m.key, v == nullptr, v, v ? std::strlen(v) : 0);
		k.null.push_back(v == nullptr ? 1 : 0);
		k.values.push_back(v ? v : "");
	}
	auto it = m.index.find(m.key);
	size_t g;
	if (it != m.index.end()) {
		g = it->second;
	} else {
		m.check_group_count();
		g = m.add_group(m.key, std::move(k));
	}
	const int64_t before = m.trainers[g]->rows_read();
	try {
		m.trainers[g]->add_stats_group(levels, state, len, cancel);
	} catch (const Error &e) {
		m.rethrow(e, g);
	}
	rows_read_ += m.trainers[g]->rows_read() - before;
}

bool GroupedTrainer::needs_precise_pass() const
{
	for (uint8_t p : impl_->precise)
		if (p)
			return true;
	return false;
}

void GroupedTrainer::add_precise_batch(const Batch &batch, CancelCheck cancel)
{
	check_cancel(cancel);
	impl_->add_rows(batch, cancel, true);
}

void GroupedTrainer::end_precise_pass()
{
	Impl &m = *impl_;
	for (size_t g = 0; g < m.precise.size(); g++) {
		if (!m.precise[g])
			continue;
		Trainer &t = g < m.trainers.size() ? *m.trainers[g] : *m.all;
		try {
			t.end_precise_pass();
		} catch (const Error &e) {
			m.rethrow(e, g);
		}
	}
}

// Fits the given trainers (index g < G: a group, G: the fallback). With pg_ml.max_threads
// above 1 several fit at once, each on its share of the threads and of the memory limit (a fit
// past its share is the limit's error, saying so: a trainer's rows are consumed by its fit, so
// it cannot fit again alone). A failure is the failure of the first such trainer in index order
// (the fits are taken in that order, and one that fails only stops those not started yet),
// whatever the threads did.
void GroupedTrainer::Impl::fit_all(const std::vector<size_t> &todo, CancelCheck cancel)
{
	const size_t G = keys.size();
	auto trainer = [&](size_t g) -> Trainer & { return g < G ? *trainers[g] : *all; };
	const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, spec.threads)), todo.size()));
	if (workers <= 1) {
		for (size_t g : todo) {
			check_cancel(cancel);
			try {
				(g < G ? models[g] : all_model) = trainer(g).finish(cancel, nullptr);
			} catch (const Error &e) {
				rethrow(e, g);
			}
		}
		return;
	}
	const size_t share = spec.memory_limit / static_cast<size_t>(workers);
	std::vector<std::exception_ptr> failed(todo.size());
	std::atomic<bool> stop{false};
	parallel_for(static_cast<int>(todo.size()), workers, [&](int i) {
		if (stop.load())
			return;
		const size_t at = static_cast<size_t>(i), g = todo[at];
		try {
			check_cancel(cancel);
			trainer(g).set_fit_resources(std::max(1, spec.threads / workers), share);
			(g < G ? models[g] : all_model) = trainer(g).finish(cancel, nullptr);
		} catch (const Error &e) {
			failed[at] = e.code() != ErrorCode::ProgramLimit || spec.memory_limit == 0
			                 ? std::current_exception()
			                 : std::make_exception_ptr(Error(
			                       ErrorCode::ProgramLimit, e.what(),
			                       e.detail() + (e.detail().empty() ? "" : " ") + "Per-group training fits " +
			                           std::to_string(workers) + " groups at once (pg_ml.max_threads), each within " +
			                           "1/" + std::to_string(workers) + " of pg_ml.max_memory.",
			                       "Lower pg_ml.max_threads to fit fewer groups at once, or raise pg_ml.max_memory."));
			stop.store(true);
		} catch (...) {
			failed[at] = std::current_exception();
			stop.store(true);
		}
	});
	for (size_t at = 0; at < todo.size(); at++) {
		if (!failed[at])
			continue;
		try {
			std::rethrow_exception(failed[at]);
		} catch (const Error &e) {
			rethrow(e, todo[at]);
		}
	}
}

void GroupedTrainer::Impl::fit_groups(CancelCheck cancel)
{
	Impl &m = *this;
	const size_t G = m.keys.size();
	const bool again = !m.precise.empty();
	m.models.resize(G);
	std::vector<size_t> todo;
	for (size_t g = 0; g < G; g++) {
		if (again && !m.precise[g])
			continue;
		const int64_t rows = m.trainers[g]->rows_read();
		if (rows < static_cast<int64_t>(m.gs.min_rows))
			throw Error(ErrorCode::DataException,
			            "group " + m.describe(g) + " has " + std::to_string(rows) + " training rows",
			            "Each group needs at least " + std::to_string(m.gs.min_rows) + " training rows; " +
			                std::to_string(m.held_rows[g]) + " more of its rows were held out for testing.",
			            "Leave the group out with a view, or lower test_size.");
		todo.push_back(g);
	}
	if (m.all && (!again || m.precise[G]))
		todo.push_back(G);
	m.fit_all(todo, cancel);
	if (!again) {
		m.precise.assign(G + 1, 0);
		for (size_t g = 0; g < G; g++)
			m.precise[g] = m.trainers[g]->needs_precise_pass() ? 1 : 0;
		m.precise[G] = m.all && m.all->needs_precise_pass() ? 1 : 0;
	} else {
		std::fill(m.precise.begin(), m.precise.end(), 0);
	}
}

std::unique_ptr<Model> GroupedTrainer::Impl::container(const std::vector<size_t> &order) const
{
	const Impl &m = *this;
	auto top = std::make_unique<Model>();
	auto gm = std::make_shared<GroupedModel>();
	const Model &first = *m.models[order[0]];
	top->task = m.spec.task;
	top->algorithm = m.spec.algorithm;
	top->target = m.spec.target;
	top->features = first.features;
	for (const auto &c : m.gs.columns)
		top->features.push_back(c);
	top->hyperparams = first.hyperparams;
	top->preprocess = first.preprocess;
	top->test_size = m.spec.test_size;
	top->seed = m.spec.seed;
	gm->columns = m.gs.columns;
	for (size_t g : order) {
		GroupedModel::Group grp;
		grp.key = m.keys[g];
		grp.model = m.models[g];
		gm->groups.push_back(std::move(grp));
		for (const auto &k : m.models[g]->classes)
			if (std::find(top->classes.begin(), top->classes.end(), k) == top->classes.end())
				top->classes.push_back(k);
	}
	if (m.all_model) {
		gm->fallback = m.all_model;
		for (const auto &k : gm->fallback->classes)
			if (std::find(top->classes.begin(), top->classes.end(), k) == top->classes.end())
				top->classes.push_back(k);
	}
	sort_classes(top->classes, top->target);
	if (top->task == Task::Classification && !m.gs.known_classes.empty() && !m.gs.allow_new_classes) {
		// every label of the rows: the groups' classes and those of the held-out rows
		std::vector<std::string> labels = top->classes;
		for (size_t l = 0; l < m.labels.size(); l++)
			if (std::find(labels.begin(), labels.end(), m.labels.name(static_cast<int32_t>(l))) == labels.end())
				labels.push_back(m.labels.name(static_cast<int32_t>(l)));
		std::string unknown;
		for (const auto &k : labels)
			if (std::find(m.gs.known_classes.begin(), m.gs.known_classes.end(), k) == m.gs.known_classes.end())
				unknown += (unknown.empty() ? "" : ", ") + k;
		if (!unknown.empty())
			throw Error(ErrorCode::DataException, "the rows have labels the model does not know: " + unknown,
			            "A classifier's classes are part of its contract (the columns of ml_predict_proba).",
			            "Pass allow_new_classes => true to train a version with them.");
	}
	gm->index(top->classes);
	top->grouped = gm;
	return top;

}

std::pair<std::string, std::string> GroupedTrainer::Impl::group_metrics(const std::vector<size_t> &order,
                                                                  const std::vector<Scores> &per_group,
                                                                  TrainResult &res, int64_t &rows_train) const
{
	const Impl &m = *this;
	JsonWriter groups, reports;
	groups.begin_array();
	reports.begin_array();
	for (size_t g : order) {
		const TrainResult &r = m.trainers[g]->result();
		rows_train += r.rows_train;
		groups.begin_object();
		groups.key("group").raw(m.keys[g].to_json(m.gs.columns));
		groups.key("rows_train").value(static_cast<long long>(r.rows_train));
		groups.key("rows_test").value(static_cast<long long>(m.aggregated ? r.rows_test : per_group[g].count()));
		groups.key("train").raw(train_part(r));
		if (m.aggregated && !r.test_json.empty())
			groups.key("test").raw(r.test_json); // the group's own split (the aggregate's)
		else if (per_group[g].count() > 0)
			groups.key("test").raw(per_group[g].json());
		groups.end_object();
		reports.begin_object();
		reports.key("group").raw(m.keys[g].to_json(m.gs.columns));
		reports.key("report").raw(r.report_json);
		reports.end_object();
		for (const auto &w : r.warnings)
			res.warnings.push_back({w.message + " in group " + m.describe(g), w.detail, w.hint});
	}
	groups.end_array();
	reports.end_array();
	return {groups.str(), reports.str()};
}

std::string GroupedTrainer::Impl::report(int64_t rows_read, int64_t rows_train, int64_t rows_test,
                                         long long train_sample_rows, int64_t unknown_labels,
                                         int64_t unseen_by_compare, const std::string &group_reports) const
{
	const Impl &m = *this;
	const size_t G = m.keys.size();
	JsonWriter rep;
	rep.begin_object();
	rep.key("group_by").begin_array();
	for (const auto &c : m.gs.columns)
		rep.value(c.name);
	rep.end_array();
	rep.key("groups").value(static_cast<long long>(G));
	rep.key("fallback").value(m.all_model ? "all" : "error");
	rep.key("split").value("random");
	rep.key("reader").value(m.aggregated ? "statistics aggregate" : "cursor");
	rep.key("rows_read").value(static_cast<long long>(rows_read));
	rep.key("rows_train").value(static_cast<long long>(rows_train));
	rep.key("rows_test").value(static_cast<long long>(rows_test));
	if (!m.aggregated)
		rep.key("train_metrics_sample_rows").value(static_cast<long long>(train_sample_rows));
	if (unknown_labels > 0)
		rep.key("test_rows_with_unknown_labels").value(static_cast<long long>(unknown_labels));
	if (unseen_by_compare > 0)
		rep.key("test_rows_unseen_by_compared_version").value(static_cast<long long>(unseen_by_compare));
	if (!m.spec.algorithm_choice.empty())
		rep.key("algorithm_choice").value(m.spec.algorithm_choice);
	rep.key("group_reports").raw(group_reports);
	if (m.all_model)
		rep.key("fallback_report").raw(m.all->result().report_json);
	rep.end_object();
	return rep.str();
}

void GroupedTrainer::Impl::row_values(const KeptRows &k, size_t i, Value *vals) const
{
	const size_t F = nf();
	for (size_t c = 0; c < F; c++) {
		Value &v = vals[c];
		if (spec.features[c].categorical()) {
			int32_t id = k.cat[c][i];
			v.isnull = id < 0;
			v.str = id < 0 ? nullptr : dict[c].name(id).c_str();
			v.len = id < 0 ? 0 : dict[c].name(id).size();
		} else {
			v.num = k.num[c][i];
			v.isnull = std::isnan(v.num);
		}
	}
	const GroupKey &key = keys[k.group[i]];
	for (size_t c = 0; c < gs.columns.size(); c++) {
		Value &v = vals[F + c];
		v.isnull = key.null[c] != 0;
		v.str = key.values[c].c_str();
		v.len = key.values[c].size();
		v.num = key.values[c] == "true" ? 1 : std::strtod(key.values[c].c_str(), nullptr);
	}
}

void GroupedTrainer::Impl::score_kept(const Model &top, const Model *compare, const std::vector<int> &class_of,
                                      const KeptRows &k, bool test, ScoreSet &sc, CancelCheck cancel) const
{
	constexpr size_t kBatch = 1024;
	const size_t nv = top.features.size();
	const size_t nout = static_cast<size_t>(std::max(top.n_outputs(), 1));
	const size_t cout_n = compare != nullptr ? static_cast<size_t>(std::max(compare->n_outputs(), 1)) : 1;
	std::vector<size_t> idx;
	std::vector<Value> vals;
	std::vector<double> out, cout;
	std::vector<int> klass, cklass;
	std::vector<uint8_t> served;
	for (size_t start = 0; start < k.size(); start += kBatch) {
		check_cancel(cancel);
		idx.clear();
		for (size_t i = start; i < std::min(k.size(), start + kBatch); i++) {
			if (top.task == Task::Classification && class_of[static_cast<size_t>(k.label[i])] < 0) {
				if (test)
					sc.unknown_labels++; // a label only held-out rows have: no model knows it
				continue;
			}
			idx.push_back(i);
		}
		const size_t n = idx.size();
		vals.resize(n * nv);
		for (size_t j = 0; j < n; j++)
			row_values(k, idx[j], vals.data() + j * nv);
		out.resize(n * nout);
		klass.resize(n);
		top.predict_batch(vals.data(), n, out.data(), klass.data());
		const bool against = test && sc.prev != nullptr;
		if (against) {
			cout.resize(n * cout_n);
			cklass.resize(n);
			served.assign(n, 1);
			bool one_by_one = compare->features.size() != nv; // a version with other columns reads its own
			if (!one_by_one) {
				try {
					compare->predict_batch(vals.data(), n, cout.data(), cklass.data());
				} catch (const Error &e) {
					if (e.code() != ErrorCode::InvalidParameter)
						throw;
					one_by_one = true; // row by row: which rows it serves
				}
			}
			if (one_by_one) {
				for (size_t j = 0; j < n; j++) {
					try {
						cklass[j] = compare->predict(vals.data() + j * nv, cout.data() + j * cout_n);
					} catch (const Error &e2) {
						if (e2.code() != ErrorCode::InvalidParameter)
							throw;
						served[j] = 0; // a group the compared version has no model for
					}
				}
			}
		}
		for (size_t j = 0; j < n; j++) {
			const size_t i = idx[j];
			const double *o = out.data() + j * nout;
			if (!test) {
				sc.pooled_train.add(top, k, i, labels, o, klass[j]);
				continue;
			}
			sc.pooled.add(top, k, i, labels, o, klass[j]);
			sc.per_group[k.group[i]].add(top, k, i, labels, o, klass[j]);
			if (!against)
				continue;
			if (!served[j]) {
				sc.unseen_by_compare++;
				continue;
			}
			sc.prev->add(*compare, k, i, labels, cout.data() + j * cout_n, cklass[j]);
			sc.new_on_prev->add(top, k, i, labels, o, klass[j]);
		}
	}
}

// The container's profile describes the training rows of every group together, the group
// columns too (a shift in the groups' mix is drift as well): each group's profile rows (trainer
// profile_rows), each group in proportion to its training rows, at most kContainerProfileRows
// rows in all. None where a group's profile came from statistics alone.
std::string GroupedTrainer::Impl::container_profile(std::string *drift) const
{
	constexpr double kContainerProfileRows = 100000;
	const size_t G = keys.size(), F = nf(), C = gs.columns.size();
	std::vector<const RowStore *> src(G);
	std::vector<std::vector<const Dictionary *>> sdicts(G);
	std::vector<double> rows(G);
	double total = 0, frac = 1;
	for (size_t g = 0; g < G; g++) {
		src[g] = trainers[g]->profile_rows(sdicts[g]);
		if (src[g] == nullptr)
			return {};
		rows[g] = static_cast<double>(std::max<int64_t>(trainers[g]->result().rows_train, 0));
		total += rows[g];
		if (rows[g] > 0)
			frac = std::min(frac, static_cast<double>(src[g]->size()) / rows[g]);
	}
	if (!(total > 0))
		return {};
	frac = std::min(frac, kContainerProfileRows / total);
	std::vector<ColumnInfo> cols = spec.features;
	cols.insert(cols.end(), gs.columns.begin(), gs.columns.end());
	check_memory(spec.memory_limit, std::min(total, kContainerProfileRows) * static_cast<double>(cols.size()) * 16.0,
	             "the version's profile", "The profile of " + count_text(std::min(total, kContainerProfileRows)) +
	                                          " training rows of " + std::to_string(cols.size()) + " columns.",
	             "the number of features");
	std::vector<Dictionary> dicts(cols.size());
	RowStore s;
	s.reset(cols);
	for (size_t g = 0; g < G; g++) {
		const RowStore &r = *src[g];
		const size_t take = std::min(r.size(), static_cast<size_t>(std::llround(rows[g] * frac)));
		for (size_t j = 0; j < take; j++) {
			const size_t i = j * r.size() / take; // evenly through the group's rows
			for (size_t c = 0; c < F; c++) {
				if (!cols[c].categorical()) {
					s.num[c].push_back(r.num[c][i]);
					continue;
				}
				const int32_t id = r.cat[c][i];
				s.cat[c].push_back(id < 0 ? -1 : dicts[c].intern(sdicts[g][c]->name(id)));
			}
			for (size_t c = 0; c < C; c++) {
				const std::string &v = keys[g].values[c];
				const bool null = keys[g].null[c] != 0;
				if (cols[F + c].categorical())
					s.cat[F + c].push_back(null ? -1 : dicts[F + c].intern(v));
				else
					s.num[F + c].push_back(null ? NAN : v == "true" ? 1.0 : v == "false" ? 0.0 : std::strtod(v.c_str(), nullptr));
			}
			s.hash.push_back(0);
		}
	}
	std::vector<const Dictionary *> dp(cols.size(), nullptr);
	for (size_t c = 0; c < cols.size(); c++)
		if (cols[c].categorical())
			dp[c] = &dicts[c];
	const Profile p = build_profile(cols, dp, s, frac < 1 ? "training sample" : "training rows");
	bool comparable = drift_ref != nullptr && s.size() > 0;
	for (size_t c = 0; c < cols.size() && comparable; c++) {
		const FeatureProfile *f = drift_ref->find(cols[c].name);
		comparable = f != nullptr && f->categorical == cols[c].categorical();
	}
	if (comparable) {
		DriftMonitor dm(*drift_ref, cols);
		dm.add_rows(s, dp);
		*drift = dm.summary_json();
	}
	return p.to_json();
}

void GroupedTrainer::set_drift_reference(const Profile &parent)
{
	impl_->drift_ref = std::make_unique<Profile>(parent);
}

std::unique_ptr<Model> GroupedTrainer::finish(CancelCheck cancel, const Model *compare)
{
	Impl &m = *impl_;
	const size_t G = m.keys.size();
	if (G == 0)
		throw Error(ErrorCode::DataException, "no rows to train on", "The relation has no rows.",
		            "Train on a relation with labelled rows.");
	m.fit_groups(cancel);
	const std::vector<size_t> order = m.key_order(); // the container: groups in key order
	std::unique_ptr<Model> top = m.container(order);

	// scoring on the kept rows: the version (per group and pooled), and `compare` on the same rows
	std::vector<int> class_of(m.labels.size(), -1); // label id -> the container's class
	for (size_t l = 0; l < m.labels.size(); l++) {
		auto it = std::find(top->classes.begin(), top->classes.end(), m.labels.name(static_cast<int32_t>(l)));
		if (it != top->classes.end())
			class_of[l] = static_cast<int>(it - top->classes.begin());
	}
	ScoreSet sc(*top, G, compare);
	m.score_kept(*top, compare, class_of, m.test, true, sc, cancel);
	m.score_kept(*top, compare, class_of, m.sample, false, sc, cancel);
	Scores &pooled = sc.pooled, &pooled_train = sc.pooled_train;
	std::vector<Scores> &per_group = sc.per_group;
	std::unique_ptr<Scores> &prev = sc.prev, &new_on_prev = sc.new_on_prev;
	const int64_t unknown_labels = sc.unknown_labels, unseen_by_compare = sc.unseen_by_compare;

	// the metrics and the report
	TrainResult res;
	int64_t rows_train = 0;
	const auto [groups_json, reports_json] = m.group_metrics(order, per_group, res, rows_train);
	// pooled: over the kept rows, or (the statistics aggregate) from the groups' sums
	std::string test_json = pooled.count() > 0 ? pooled.json() : std::string();
	std::string train_json = pooled_train.count() > 0 ? pooled_train.json() : "null";
	int64_t rows_test = pooled.count();
	double primary = pooled.count() > 0 ? pooled.primary() : NAN;
	if (m.aggregated) {
		std::vector<const TrainResult::RegressionSums *> tr, te;
		uint64_t fp = 0;
		for (size_t g = 0; g < G; g++) {
			tr.push_back(&m.trainers[g]->result().train_sums);
			te.push_back(&m.trainers[g]->result().test_sums);
			fp += std::strtoull(m.trainers[g]->result().fingerprint.c_str(), nullptr, 16);
		}
		int64_t n = 0;
		double r2 = NAN;
		train_json = pooled_regression(tr, &n, &r2);
		test_json = pooled_regression(te, &rows_test, &primary);
		if (rows_test == 0) {
			test_json.clear();
			primary = NAN;
		}
		m.fingerprint = fp;
	}
	const bool has_test = !test_json.empty();
	JsonWriter w;
	w.begin_object();
	w.key("train").raw(train_json);
	if (has_test)
		w.key("test").raw(test_json);
	w.key("groups").raw(groups_json);
	if (m.all_model)
		w.key("fallback").raw(train_part(m.all->result()));
	w.end_object();
	res.metrics_json = w.str();
	res.test_json = test_json;
	res.primary_metric = top->task == Task::Classification ? "accuracy" : "r2";
	res.primary_test = primary;
	res.rows_train = rows_train;
	res.rows_test = rows_test;
	res.fingerprint = hex(m.fingerprint ^ mix64(static_cast<uint64_t>(rows_train + rows_test)));
	// the versions are compared on the same rows: only when the compared one serves every group
	if (prev && prev->count() > 0 && unseen_by_compare == 0) {
		res.compared = true;
		res.previous_metrics_json = prev->json();
		res.previous_primary = prev->primary();
		res.primary_compare_new = new_on_prev->primary();
	}
	res.report_json = m.report(rows_read_, rows_train, rows_test, pooled_train.count(), unknown_labels, unseen_by_compare,
	                           reports_json);
	res.profile_json = m.container_profile(&res.drift_json);
	result_ = std::move(res);
	return top;
}

} // namespace pgml
