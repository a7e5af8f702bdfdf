#include "monitor.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "json.hpp"

namespace pgml {

namespace {

constexpr size_t kLinearLevels = 16;
constexpr size_t kQuantileSample =
    200000; // values the edges are chosen from at most // up to this many levels a value is looked up by comparing

// a number as the JSON writer writes it
std::string json_number(double v)
{
	JsonWriter w;
	w.value(v);
	return w.str();
}

} // namespace

std::vector<double> quantile_edges(std::vector<double> &values, int bins)
{
	std::vector<double> edges;
	const size_t n = values.size();
	if (n == 0)
		return edges;
	// the order statistics at k n / bins, each selected in the part right of the one before
	// (linear time, no full sort)
	const auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
	const double lo = *lo_it, hi = *hi_it;
	auto from = values.begin();
	for (int k = 1; k < bins; k++) {
		const size_t at = std::min(n - 1, static_cast<size_t>(static_cast<double>(k) * static_cast<double>(n) / bins));
		auto nth = values.begin() + static_cast<std::ptrdiff_t>(at);
		std::nth_element(from, nth, values.end());
		from = nth;
		const double e = *nth;
		if (e > lo && (edges.empty() || e > edges.back()))
			edges.push_back(e);
	}
	if (edges.empty()) {
		if (lo == hi) {
			// constant: (< c), (= c), (> c)
			edges.push_back(lo);
			edges.push_back(std::nextafter(lo, INFINITY));
		} else {
			// at least 90% at the minimum: the minimum against the rest
			edges.push_back(std::nextafter(lo, INFINITY));
		}
	}
	return edges;
}

size_t value_bin(const std::vector<double> &edges, double v)
{
	if (edges.size() > 16)
		return static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin());
	size_t k = 0; // a few edges (the deciles): counting them is branch-free
	for (double e : edges)
		k += v >= e;
	return k;
}

double psi(const std::vector<double> &expected, const std::vector<double> &actual)
{
	double s = 0;
	for (size_t i = 0; i < expected.size() && i < actual.size(); i++) {
		const double e = std::max(expected[i], kPsiEpsilon), a = std::max(actual[i], kPsiEpsilon);
		s += (a - e) * std::log(a / e);
	}
	return s;
}

const char *psi_severity(double v)
{
	if (std::isnan(v))
		return nullptr;
	return v < kPsiModerate ? "none" : v < kPsiMajor ? "moderate" : "major";
}

std::string Profile::to_json() const
{
	JsonWriter w;
	w.begin_object();
	w.key("rows").value(static_cast<long long>(rows));
	w.key("from").value(from);
	w.key("features").begin_array();
	for (const FeatureProfile &f : features) {
		w.begin_object();
		w.key("name").value(f.name);
		w.key("kind").value(f.categorical ? "categorical" : "numeric");
		w.key("rows").value(static_cast<long long>(f.rows));
		w.key("null_share").value(f.null_share);
		if (f.categorical) {
			w.key("levels").begin_array();
			for (const auto &l : f.levels)
				w.value(l);
			w.end_array();
			w.key("other_share").value(f.other_share);
		} else if (f.binned) {
			w.key("edges").begin_array();
			for (double e : f.edges)
				w.value(e);
			w.end_array();
		} else {
			w.key("edges").null();
		}
		w.key("shares").begin_array();
		for (double s : f.shares)
			w.value(s);
		w.end_array();
		w.end_object();
	}
	w.end_array();
	w.end_object();
	return w.str();
}

const FeatureProfile *Profile::find(const std::string &name) const
{
	for (const FeatureProfile &f : features)
		if (f.name == name)
			return &f;
	return nullptr;
}

FeatureProfile level_profile(const std::string &name, std::vector<std::pair<std::string, int64_t>> levels,
                             int64_t nulls, int64_t rows)
{
	FeatureProfile f;
	f.name = name;
	f.categorical = true;
	f.rows = rows;
	const double n = static_cast<double>(rows);
	std::sort(levels.begin(), levels.end(), [](const auto &a, const auto &b) {
		return a.second != b.second ? a.second > b.second : a.first < b.first;
	});
	for (size_t k = 0; k < levels.size(); k++) {
		const double share = static_cast<double>(levels[k].second) / n;
		if (k < kMaxProfileLevels) {
			f.levels.push_back(levels[k].first);
			f.shares.push_back(share);
		} else {
			f.other_share += share;
		}
	}
	f.null_share = rows > 0 ? static_cast<double>(nulls) / n : 0.0;
	return f;
}

Profile build_profile(const std::vector<ColumnInfo> &features, const std::vector<const Dictionary *> &dicts,
                      const RowStore &s, const char *from)
{
	Profile p;
	p.rows = static_cast<int64_t>(s.size());
	p.from = from;
	const double n = static_cast<double>(s.size());
	for (size_t c = 0; c < features.size(); c++) {
		int64_t nulls = 0;
		if (features[c].categorical()) {
			const Dictionary &d = *dicts[c];
			std::vector<int64_t> count(d.size(), 0);
			for (int32_t id : s.cat[c]) {
				if (id < 0 || static_cast<size_t>(id) >= count.size())
					nulls++;
				else
					count[static_cast<size_t>(id)]++;
			}
			std::vector<std::pair<std::string, int64_t>> levels;
			for (size_t l = 0; l < count.size(); l++)
				if (count[l] > 0)
					levels.emplace_back(d.name(static_cast<int32_t>(l)), count[l]);
			p.features.push_back(level_profile(features[c].name, std::move(levels), nulls, p.rows));
			continue;
		}
		FeatureProfile f;
		f.name = features[c].name;
		f.rows = p.rows;
		std::vector<double> vals;
		vals.reserve(s.size());
		for (double v : s.num[c]) {
			if (std::isnan(v))
				nulls++;
			else
				vals.push_back(v);
		}
		std::vector<int64_t> count;
		if (vals.size() > kQuantileSample) {
			// the edges from every k-th value (rows come in an order of their own, not of the
			// values), the shares from all of them
			std::vector<double> sample;
			const size_t step = (vals.size() + kQuantileSample - 1) / kQuantileSample;
			for (size_t i = 0; i < vals.size(); i += step)
				sample.push_back(vals[i]);
			f.edges = quantile_edges(sample, kProfileBins);
		} else {
			f.edges = quantile_edges(vals, kProfileBins);
		}
		count.assign(f.edges.size() + 1, 0);
		for (double v : vals)
			count[value_bin(f.edges, v)]++;
		for (int64_t k : count)
			f.shares.push_back(n > 0 ? static_cast<double>(k) / n : 0.0);
		f.null_share = n > 0 ? static_cast<double>(nulls) / n : 0.0;
		p.features.push_back(std::move(f));
	}
	return p;
}

Profile merge_profile(const Profile &base, double base_weight, const std::vector<ColumnInfo> &features,
                      const std::vector<const Dictionary *> &dicts, const RowStore &added, double added_weight,
                      const char *from)
{
	Profile p;
	p.rows = base.rows + static_cast<int64_t>(added.size());
	p.from = from;
	const double na = static_cast<double>(added.size());
	if (na == 0)
		added_weight = 0;
	const double wb = base_weight / (base_weight + added_weight), wa = 1 - wb;
	for (size_t c = 0; c < features.size(); c++) {
		const FeatureProfile *b = base.find(features[c].name);
		if (b == nullptr || b->categorical != features[c].categorical())
			throw Error(ErrorCode::Internal, "the base profile lacks column \"" + features[c].name + "\"");
		FeatureProfile f = *b;
		f.rows = p.rows;
		if (f.categorical) {
			// shares by level name, the added rows' levels included
			std::unordered_map<std::string, double> share;
			for (size_t l = 0; l < b->levels.size(); l++)
				share[b->levels[l]] += wb * b->shares[l];
			double nulls = 0;
			for (int32_t id : added.cat[c]) {
				if (id < 0)
					nulls++;
				else
					share[dicts[c]->name(id)] += wa / na;
			}
			std::vector<std::pair<std::string, double>> levels(share.begin(), share.end());
			std::sort(levels.begin(), levels.end(), [](const auto &x, const auto &y) {
				return x.second != y.second ? x.second > y.second : x.first < y.first;
			});
			f.levels.clear();
			f.shares.clear();
			f.other_share = wb * b->other_share;
			for (size_t k = 0; k < levels.size(); k++) {
				if (k < kMaxProfileLevels) {
					f.levels.push_back(levels[k].first);
					f.shares.push_back(levels[k].second);
				} else {
					f.other_share += levels[k].second;
				}
			}
			f.null_share = wb * b->null_share + (na > 0 ? wa * nulls / na : 0.0);
		} else if (f.binned) {
			// the base's bins, the added rows counted into them
			std::vector<double> count(f.shares.size(), 0.0);
			double nulls = 0;
			for (double v : added.num[c]) {
				if (std::isnan(v))
					nulls++;
				else
					count[value_bin(f.edges, v)]++;
			}
			for (size_t k = 0; k < f.shares.size(); k++)
				f.shares[k] = wb * f.shares[k] + (na > 0 ? wa * count[k] / na : 0.0);
			f.null_share = wb * b->null_share + (na > 0 ? wa * nulls / na : 0.0);
		}
		p.features.push_back(std::move(f));
	}
	return p;
}

DriftMonitor::DriftMonitor(const Profile &profile, const std::vector<ColumnInfo> &columns)
{
	for (const ColumnInfo &ci : columns) {
		Column c;
		c.prof = profile.find(ci.name);
		if (c.prof == nullptr || c.prof->categorical != ci.categorical())
			throw Error(ErrorCode::DataCorrupted,
			            "the training profile has no " + std::string(ci.categorical() ? "categorical" : "numeric") +
			                " column \"" + ci.name + "\"",
			            "", "Retrain the model to store a new profile.");
		if (c.prof->categorical) {
			for (size_t l = 0; l < c.prof->levels.size(); l++)
				c.level_index.emplace(c.prof->levels[l], l);
			c.counts.assign(c.prof->levels.size() + 3, 0);
		} else {
			c.counts.assign(c.prof->edges.size() + 2, 0);
		}
		cols_.push_back(std::move(c));
	}
}

void DriftMonitor::add_num(Column &c, bool isnull, double v)
{
	if (isnull || std::isnan(v))
		c.counts.back()++;
	else
		c.counts[value_bin(c.prof->edges, v)]++;
}

void DriftMonitor::add_level(Column &c, const char *s, size_t len)
{
	const size_t nl = c.prof->levels.size();
	if (s == nullptr) {
		c.counts[nl + 2]++;
		return;
	}
	if (nl <= kLinearLevels) {
		// a few levels: compared in place (no copy, no hash)
		for (size_t l = 0; l < nl; l++) {
			const std::string &name = c.prof->levels[l];
			if (name.size() == len && std::memcmp(name.data(), s, len) == 0) {
				c.counts[l]++;
				return;
			}
		}
		c.counts[c.prof->other_share > 0 ? nl : nl + 1]++;
		return;
	}
	key_.assign(s, len);
	auto it = c.level_index.find(key_);
	if (it != c.level_index.end())
		c.counts[it->second]++;
	else if (c.prof->other_share > 0)
		c.counts[nl]++; // not among the kept levels: other (or unseen: cannot tell)
	else
		c.counts[nl + 1]++;
}

void DriftMonitor::add_batch(const Batch &batch, CancelCheck cancel)
{
	check_cancel(cancel);
	if (batch.nfeatures != cols_.size())
		throw Error(ErrorCode::Internal, "batch does not match the monitored columns");
	for (size_t c = 0; c < cols_.size(); c++) {
		Column &col = cols_[c];
		const ColumnData &d = batch.features[c];
		if (col.prof->categorical) {
			for (size_t i = 0; i < batch.nrows; i++)
				add_level(col, d.isnull[i] ? nullptr : d.str[i], d.isnull[i] ? 0 : std::strlen(d.str[i]));
		} else {
			for (size_t i = 0; i < batch.nrows; i++)
				add_num(col, d.isnull[i], d.num[i]);
		}
	}
	rows_ += static_cast<int64_t>(batch.nrows);
}

void DriftMonitor::add_rows(const RowStore &s, const std::vector<const Dictionary *> &dicts)
{
	for (size_t c = 0; c < cols_.size(); c++) {
		Column &col = cols_[c];
		if (col.prof->categorical) {
			for (int32_t id : s.cat[c]) {
				if (id < 0) {
					add_level(col, nullptr, 0);
				} else {
					const std::string &name = dicts[c]->name(id);
					add_level(col, name.data(), name.size());
				}
			}
		} else {
			for (double v : s.num[c])
				add_num(col, std::isnan(v), v);
		}
	}
	rows_ += static_cast<int64_t>(s.size());
}

std::vector<DriftMonitor::Drift> DriftMonitor::drifts() const
{
	std::vector<Drift> out;
	const double n = static_cast<double>(rows_);
	for (const Column &c : cols_) {
		const FeatureProfile &f = *c.prof;
		Drift d;
		d.name = f.name;
		d.categorical = f.categorical;
		d.rows = rows_;
		d.train_null_share = f.null_share;
		// the bins' training and relation shares, NULL last
		std::vector<double> e(f.shares), a;
		std::vector<std::string> label;
		if (f.categorical) {
			label = f.levels;
			e.push_back(f.other_share);
			label.push_back("(other)");
			e.push_back(0.0);
			label.push_back("(unseen)");
		} else {
			for (size_t k = 0; k < f.shares.size(); k++) {
				std::string l = k == 0 ? "(-inf" : "[" + json_number(f.edges[k - 1]);
				l += ", " + (k == f.edges.size() ? std::string("inf)") : json_number(f.edges[k]) + ")");
				label.push_back(l);
			}
		}
		e.push_back(f.null_share);
		label.push_back("NULL");
		for (int64_t k : c.counts)
			a.push_back(n > 0 ? static_cast<double>(k) / n : NAN);
		if (rows_ > 0) {
			if (f.categorical || f.binned)
				d.psi = psi(e, a);
			d.null_share = a.back();
			if (f.categorical)
				d.unseen_share = a[a.size() - 2];
		}
		d.severity = psi_severity(d.psi);
		JsonWriter w;
		w.begin_array();
		for (size_t k = 0; k < e.size(); k++) {
			if (f.categorical && k == f.levels.size() && e[k] == 0 && c.counts[k] == 0)
				continue; // no "other" bin
			w.begin_object();
			w.key("bin").value(label[k]);
			w.key("train").value(e[k]);
			w.key("relation").value(a[k]);
			w.end_object();
		}
		w.end_array();
		d.detail_json = w.str();
		out.push_back(std::move(d));
	}
	return out;
}

std::string DriftMonitor::summary_json() const
{
	JsonWriter w;
	w.begin_object();
	for (const Drift &d : drifts()) {
		w.key(d.name).begin_object();
		w.key("psi").value(d.psi);
		if (d.severity != nullptr)
			w.key("severity").value(d.severity);
		else
			w.key("severity").null();
		w.key("null_share").value(d.null_share);
		if (d.categorical)
			w.key("unseen_share").value(d.unseen_share);
		w.end_object();
	}
	w.end_object();
	return w.str();
}

} // namespace pgml
