#include "preprocess.hpp"

#include <algorithm>
#include <cmath>

#include "json.hpp"

namespace pgml {

namespace {

const char *impute_name(Impute i)
{
	switch (i) {
	case Impute::Mean: return "mean";
	case Impute::Median: return "median";
	case Impute::Constant: return "constant";
	}
	return "?";
}

const char *scale_name(Scale s)
{
	switch (s) {
	case Scale::Standard: return "standard";
	case Scale::MinMax: return "minmax";
	case Scale::None: return "none";
	}
	return "?";
}

const char *kValidKeys = "Valid keys: scale ('standard', 'minmax', 'none'), impute ('mean', 'median', 'constant'), "
                         "impute_value (number), max_levels (1 to 100000), dedupe (boolean), "
                         "nonfinite ('error', 'drop'), "
                         "nulls ('impute', 'drop'), encoding ('onehot', 'drop_first'), and columns.<column>.{scale, impute, impute_value, max_levels}.";

[[noreturn]] void bad_option(const std::string &key, const std::string &why)
{
	throw Error(ErrorCode::InvalidParameter, "invalid preprocess option \"" + key + "\"", why, kValidKeys);
}

std::string want_string(const std::string &key, const OptionValue &v)
{
	if (v.type != OptionValue::Type::String)
		bad_option(key, "The value must be a string.");
	return v.string;
}

double want_number(const std::string &key, const OptionValue &v)
{
	if (v.type != OptionValue::Type::Number || !std::isfinite(v.number))
		bad_option(key, "The value must be a finite number.");
	return v.number;
}

// Applies one per-column-capable key to opts; returns false if key is not one of them.
bool apply_column_key(const std::string &full, const std::string &key, const OptionValue &v, ColumnOptions &opts)
{
	if (key == "scale") {
		std::string s = want_string(full, v);
		if (s == "standard")
			opts.scale = Scale::Standard;
		else if (s == "minmax")
			opts.scale = Scale::MinMax;
		else if (s == "none")
			opts.scale = Scale::None;
		else
			bad_option(full, "\"" + s + "\" is not a scaling; use 'standard', 'minmax' or 'none'.");
		return true;
	}
	if (key == "impute") {
		std::string s = want_string(full, v);
		if (s == "mean")
			opts.impute = Impute::Mean;
		else if (s == "median")
			opts.impute = Impute::Median;
		else if (s == "constant")
			opts.impute = Impute::Constant;
		else
			bad_option(full, "\"" + s + "\" is not an imputation; use 'mean', 'median' or 'constant'.");
		return true;
	}
	if (key == "impute_value") {
		opts.impute_value = want_number(full, v);
		return true;
	}
	if (key == "max_levels") {
		double d = want_number(full, v);
		if (d != std::floor(d) || d < 1 || d > 100000)
			bad_option(full, "The value must be an integer from 1 to 100000.");
		opts.max_levels = static_cast<int>(d);
		return true;
	}
	return false;
}

} // namespace

const ColumnOptions &PreprocessOptions::for_column(const std::string &name) const
{
	auto it = columns.find(name);
	return it == columns.end() ? defaults : it->second;
}

PreprocessOptions parse_preprocess(const Options &opts, const std::vector<ColumnInfo> &features)
{
	PreprocessOptions out;
	// global keys first, so per-column overrides start from the final defaults
	for (const auto &[key, v] : opts) {
		if (key.rfind("columns.", 0) == 0)
			continue;
		if (apply_column_key(key, key, v, out.defaults))
			continue;
		if (key == "dedupe") {
			if (v.type != OptionValue::Type::Bool)
				bad_option(key, "The value must be true or false.");
			out.dedupe = v.boolean;
		} else if (key == "nonfinite") {
			std::string s = want_string(key, v);
			if (s == "error")
				out.drop_nonfinite = false;
			else if (s == "drop")
				out.drop_nonfinite = true;
			else
				bad_option(key, "\"" + s + "\" is not a choice; use 'error' or 'drop'.");
		} else if (key == "nulls") {
			std::string s = want_string(key, v);
			if (s == "impute")
				out.drop_nulls = false;
			else if (s == "drop")
				out.drop_nulls = true;
			else
				bad_option(key, "\"" + s + "\" is not a choice; use 'impute' or 'drop'.");
		} else if (key == "encoding") {
			std::string s = want_string(key, v);
			if (s == "onehot")
				out.drop_first = false;
			else if (s == "drop_first")
				out.drop_first = true;
			else
				bad_option(key, "\"" + s + "\" is not a choice; use 'onehot' or 'drop_first'.");
		} else {
			bad_option(key, "There is no such option.");
		}
	}
	for (const auto &[key, v] : opts) {
		if (key.rfind("columns.", 0) != 0)
			continue;
		std::string rest = key.substr(8);
		size_t dot = rest.rfind('.');
		if (dot == std::string::npos)
			bad_option(key, "Per-column options are objects: {\"columns\": {\"<column>\": {\"impute\": ...}}}.");
		std::string col = rest.substr(0, dot), sub = rest.substr(dot + 1);
		bool known = std::any_of(features.begin(), features.end(), [&](const ColumnInfo &c) { return c.name == col; });
		if (!known)
			bad_option(key, "\"" + col + "\" is not a feature column of this model.");
		auto it = out.columns.emplace(col, out.defaults).first;
		if (!apply_column_key(key, sub, v, it->second))
			bad_option(key, "There is no such per-column option.");
	}
	return out;
}

void PreprocessOptions::write(Writer &w) const
{
	auto put = [&w](const ColumnOptions &c) {
		w.u8(static_cast<uint8_t>(c.impute));
		w.f64(c.impute_value);
		w.u8(static_cast<uint8_t>(c.scale));
		w.u32(static_cast<uint32_t>(c.max_levels));
	};
	put(defaults);
	w.u64(columns.size());
	for (const auto &[name, c] : columns) {
		w.str(name);
		put(c);
	}
	w.u8(dedupe ? 1 : 0);
	// one byte of flags (format 2 readers of 0.3.0 before "nulls" and "encoding" wrote 0 or 1)
	w.u8((drop_nonfinite ? 1 : 0) | (drop_nulls ? 2 : 0) | (drop_first ? 4 : 0));
}

PreprocessOptions PreprocessOptions::read(Reader &r)
{
	auto get = [&r]() {
		ColumnOptions c;
		uint8_t imp = r.u8();
		c.impute_value = r.f64();
		uint8_t sc = r.u8();
		uint32_t ml = r.u32();
		if (imp > 2 || sc > 2 || ml < 1 || ml > 100000)
			throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "Invalid preprocessing options.");
		c.impute = static_cast<Impute>(imp);
		c.scale = static_cast<Scale>(sc);
		c.max_levels = static_cast<int>(ml);
		return c;
	};
	PreprocessOptions o;
	o.defaults = get();
	size_t n = r.count(8 + 14);
	for (size_t i = 0; i < n; i++) {
		std::string name = r.str();
		o.columns[name] = get();
	}
	o.dedupe = r.u8() != 0;
	const uint8_t flags = r.u8();
	if (flags > 7)
		throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "Invalid preprocessing options.");
	o.drop_nonfinite = (flags & 1) != 0;
	o.drop_nulls = (flags & 2) != 0;
	o.drop_first = (flags & 4) != 0;
	return o;
}

std::string PreprocessOptions::to_json() const
{
	auto put = [](JsonWriter &w, const ColumnOptions &c) {
		w.key("scale").value(scale_name(c.scale));
		w.key("impute").value(impute_name(c.impute));
		if (c.impute == Impute::Constant)
			w.key("impute_value").value(c.impute_value);
		w.key("max_levels").value(c.max_levels);
	};
	JsonWriter w;
	w.begin_object();
	put(w, defaults);
	w.key("dedupe").value(dedupe);
	w.key("nonfinite").value(drop_nonfinite ? "drop" : "error");
	if (drop_nulls) // the new options only where set: the JSON of earlier versions stays as it was
		w.key("nulls").value("drop");
	if (drop_first)
		w.key("encoding").value("drop_first");
	if (!columns.empty()) {
		w.key("columns").begin_object();
		for (const auto &[name, c] : columns) {
			w.key(name).begin_object();
			put(w, c);
			w.end_object();
		}
		w.end_object();
	}
	w.end_object();
	return w.str();
}

// ---------------------------------------------------------------- Encoder

Encoder::Encoder(const std::vector<ColumnInfo> &features, bool target_slot)
	: features_(features), dict_(features.size()), value_slot_(features.size(), -1),
	  missing_slot_(features.size(), -1), level_slot_(features.size()), null_slot_(features.size(), -1)
{
	if (target_slot)
		target_slot_ = next_slot_++;
	for (size_t c = 0; c < features.size(); c++)
		if (!features[c].categorical())
			value_slot_[c] = next_slot_++;
}

void Encoder::allocate(const RowStore &store, size_t begin, size_t end)
{
	for (size_t c = 0; c < features_.size(); c++) {
		if (features_[c].categorical()) {
			auto &slots = level_slot_[c];
			const auto &ids = store.cat[c];
			for (size_t i = begin; i < end; i++) {
				int32_t id = ids[i];
				if (id < 0) {
					if (null_slot_[c] < 0)
						null_slot_[c] = next_slot_++;
					continue;
				}
				while (slots.size() <= static_cast<size_t>(id))
					slots.push_back(-1);
				if (slots[static_cast<size_t>(id)] < 0)
					slots[static_cast<size_t>(id)] = next_slot_++;
			}
		} else if (missing_slot_[c] < 0) {
			const auto &vals = store.num[c];
			for (size_t i = begin; i < end; i++)
				if (std::isnan(vals[i])) {
					missing_slot_[c] = next_slot_++;
					break;
				}
		}
	}
}

void Encoder::encode(const RowStore &store, size_t begin, size_t end, Eigen::MatrixXd &out) const
{
	const Eigen::Index rows = static_cast<Eigen::Index>(end - begin);
	out.setZero(rows, next_slot_);
	if (target_slot_ >= 0)
		for (Eigen::Index i = 0; i < rows; i++)
			out(i, target_slot_) = store.y[begin + static_cast<size_t>(i)];
	for (size_t c = 0; c < features_.size(); c++) {
		if (features_[c].categorical()) {
			const auto &ids = store.cat[c];
			for (Eigen::Index i = 0; i < rows; i++) {
				int32_t id = ids[begin + static_cast<size_t>(i)];
				int slot = level_slot(c, id);
				if (slot < 0)
					throw Error(ErrorCode::Internal, "category slot was not allocated");
				out(i, slot) = 1.0;
			}
		} else {
			const auto &vals = store.num[c];
			const int vs = value_slot_[c], ms = missing_slot_[c];
			for (Eigen::Index i = 0; i < rows; i++) {
				double v = vals[begin + static_cast<size_t>(i)];
				if (std::isnan(v)) {
					if (ms < 0)
						throw Error(ErrorCode::Internal, "missing slot was not allocated");
					out(i, ms) = 1.0;
				} else {
					out(i, vs) = v;
				}
			}
		}
	}
}

void Encoder::write(Writer &w) const
{
	w.u32(static_cast<uint32_t>(next_slot_));
	w.u32(static_cast<uint32_t>(target_slot_ + 1));
	for (size_t c = 0; c < features_.size(); c++) {
		w.u32(static_cast<uint32_t>(value_slot_[c] + 1));
		w.u32(static_cast<uint32_t>(missing_slot_[c] + 1));
		w.u32(static_cast<uint32_t>(null_slot_[c] + 1));
		const Dictionary &d = dict_[c];
		w.u64(d.size());
		for (size_t l = 0; l < d.size(); l++) {
			w.str(d.name(static_cast<int32_t>(l)));
			int slot = l < level_slot_[c].size() ? level_slot_[c][l] : -1;
			w.u32(static_cast<uint32_t>(slot + 1));
		}
	}
}

Encoder Encoder::read(Reader &r, const std::vector<ColumnInfo> &features)
{
	Encoder e(features, false);
	auto slot = [&r](uint32_t limit) {
		uint32_t v = r.u32();
		if (v > limit)
			throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "A slot index is out of range.");
		return static_cast<int>(v) - 1;
	};
	uint32_t q = r.u32();
	if (q > (1u << 20))
		throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "Implausible number of slots.");
	e.next_slot_ = static_cast<int>(q);
	e.target_slot_ = slot(q);
	for (size_t c = 0; c < features.size(); c++) {
		e.value_slot_[c] = slot(q);
		e.missing_slot_[c] = slot(q);
		e.null_slot_[c] = slot(q);
		size_t n = r.count(12);
		for (size_t l = 0; l < n; l++) {
			std::string name = r.str();
			if (e.dict_[c].intern(name) != static_cast<int32_t>(l))
				throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "A category level is repeated.");
			e.level_slot_[c].push_back(slot(q));
		}
		if (features[c].categorical() == (e.value_slot_[c] >= 0))
			throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "Column layout does not match the column types.");
	}
	return e;
}

void Encoder::map_text(const std::function<void(const char *what, std::string &)> &f,
                       const std::vector<ColumnInfo> &features)
{
	features_ = features;
	for (size_t c = 0; c < dict_.size(); c++) {
		Dictionary d;
		for (size_t l = 0; l < dict_[c].size(); l++) {
			std::string name = dict_[c].name(static_cast<int32_t>(l));
			f("category level", name);
			if (d.intern(name) != static_cast<int32_t>(l))
				throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "A category level is repeated.");
		}
		dict_[c] = std::move(d);
	}
}

// ---------------------------------------------------------------- feature names

namespace {

// s between double quotes, each double quote in it doubled (as SQL quotes identifiers).
std::string double_quoted(const std::string &s)
{
	std::string out = "\"";
	for (char ch : s) {
		out += ch;
		if (ch == '"')
			out += '"';
	}
	out += '"';
	return out;
}

// A column's name inside a feature name: as it is, unless it holds '=' or '"' (or is empty).
std::string column_part(const std::string &col)
{
	return col.empty() || col.find_first_of("=\"") != std::string::npos ? double_quoted(col) : col;
}

} // namespace

std::string numeric_feature_name(const std::string &col) { return column_part(col); }

std::string level_feature_name(const std::string &col, const std::string &level)
{
	// the level as it is, unless it could be read as the NULL marker or as a quoted level
	bool quote = level == "NULL" || (!level.empty() && level[0] == '"');
	return column_part(col) + "=" + (quote ? double_quoted(level) : level);
}

std::string null_level_feature_name(const std::string &col) { return column_part(col) + "=NULL"; }

// ---------------------------------------------------------------- Preprocessor

Preprocessor fit_preprocessor(const std::vector<ColumnInfo> &features, const PreprocessOptions &opts,
                              const Encoder &enc, const Moments &train, const std::vector<double> &col_min,
                              const std::vector<double> &col_max, const std::vector<double> &medians)
{
	Preprocessor pp;
	pp.features = features;
	pp.columns.resize(features.size());
	const double n = static_cast<double>(train.n());
	const Eigen::VectorXd &mean = train.mean();
	auto slot_count = [&](int slot) -> double {
		if (slot < 0 || slot >= mean.size())
			return 0.0;
		return std::round(mean(slot) * n);
	};
	std::vector<Scale> scales;
	int f = 0;
	for (size_t c = 0; c < features.size(); c++) {
		const ColumnInfo &col = features[c];
		const ColumnOptions &co = opts.for_column(col.name);
		FittedColumn &fc = pp.columns[c];
		fc.first_feature = f;
		if (col.categorical()) {
			const Dictionary &d = enc.dictionary(c);
			std::vector<std::string> kept;
			for (size_t l = 0; l < d.size(); l++)
				if (slot_count(enc.level_slot(c, static_cast<int32_t>(l))) > 0)
					kept.push_back(d.name(static_cast<int32_t>(l)));
			std::sort(kept.begin(), kept.end());
			if (opts.drop_first && !kept.empty()) {
				fc.has_reference = true;
				fc.reference = kept.front();
				kept.erase(kept.begin());
			}
			bool has_null = slot_count(enc.level_slot(c, -1)) > 0;
			size_t nlev = kept.size() + (has_null ? 1 : 0);
			if (nlev > static_cast<size_t>(co.max_levels))
				throw Error(ErrorCode::ProgramLimit,
				            "column \"" + col.name + "\" has " + std::to_string(nlev) + " distinct values, more than max_levels (" +
				                std::to_string(co.max_levels) + ")",
				            "One-hot encoding creates one feature per distinct value.",
				            "Raise the limit with preprocess => '{\"columns\": {\"" + col.name +
				                "\": {\"max_levels\": N}}}', or exclude the column.");
			for (const auto &l : kept) {
				pp.feature_names.push_back(level_feature_name(col.name, l));
				scales.push_back(Scale::None);
			}
			fc.levels = std::move(kept);
			if (has_null) {
				fc.null_feature = f + static_cast<int>(fc.levels.size());
				pp.feature_names.push_back(null_level_feature_name(col.name));
				scales.push_back(Scale::None);
			}
			fc.n_features = static_cast<int>(nlev);
		} else {
			double missing = slot_count(enc.missing_slot(c));
			double present = n - missing;
			if (present <= 0)
				throw Error(ErrorCode::DataException, "column \"" + col.name + "\" has no non-NULL value in the training rows",
				            "", "Exclude the column with exclude => ARRAY['" + col.name + "'].");
			switch (co.impute) {
			case Impute::Mean: {
				int vs = enc.value_slot(c);
				fc.impute_value = mean(vs) * n / present; // the value slot is 0 where NULL
				break;
			}
			case Impute::Median:
				fc.impute_value = medians[c];
				break;
			case Impute::Constant:
				fc.impute_value = co.impute_value;
				break;
			}
			pp.feature_names.push_back(numeric_feature_name(col.name));
			scales.push_back(co.scale);
			fc.n_features = 1;
		}
		f += fc.n_features;
	}
	// feature means and variances through the affine map
	Eigen::MatrixXd A;
	Eigen::VectorXd c0;
	pp.affine(enc, A, c0);
	Eigen::VectorXd fmean = A * mean + c0;
	Eigen::VectorXd fvar = ((A * train.comoment()).cwiseProduct(A)).rowwise().sum() / std::max(n, 1.0);
	pp.center = Eigen::VectorXd::Zero(pp.p());
	pp.scale = Eigen::VectorXd::Ones(pp.p());
	for (size_t c = 0; c < features.size(); c++) {
		const FittedColumn &fc = pp.columns[c];
		for (int k = fc.first_feature; k < fc.first_feature + fc.n_features; k++) {
			switch (scales[static_cast<size_t>(k)]) {
			case Scale::Standard: {
				pp.center(k) = fmean(k);
				double sd = std::sqrt(std::max(fvar(k), 0.0));
				pp.scale(k) = sd > 1e-12 * std::max(1.0, std::fabs(fmean(k))) ? sd : 1.0;
				break;
			}
			case Scale::MinMax: {
				double lo = col_min[c], hi = col_max[c];
				if (slot_count(enc.missing_slot(c)) > 0) {
					lo = std::min(lo, fc.impute_value);
					hi = std::max(hi, fc.impute_value);
				}
				pp.center(k) = lo;
				pp.scale(k) = hi - lo > 0 ? hi - lo : 1.0;
				break;
			}
			case Scale::None:
				break;
			}
		}
	}
	pp.build_index();
	return pp;
}

void Preprocessor::affine(const Encoder &enc, Eigen::MatrixXd &A, Eigen::VectorXd &c) const
{
	A.setZero(p(), enc.dim());
	c.setZero(p());
	for (size_t col = 0; col < features.size(); col++) {
		const FittedColumn &fc = columns[col];
		if (features[col].categorical()) {
			const Dictionary &d = enc.dictionary(col);
			for (size_t l = 0; l < fc.levels.size(); l++) {
				int32_t id = d.find(fc.levels[l]);
				int slot = id < 0 ? -1 : enc.level_slot(col, id);
				if (slot >= 0)
					A(fc.first_feature + static_cast<int>(l), slot) = 1.0;
			}
			if (fc.null_feature >= 0 && enc.level_slot(col, -1) >= 0)
				A(fc.null_feature, enc.level_slot(col, -1)) = 1.0;
		} else {
			A(fc.first_feature, enc.value_slot(col)) = 1.0;
			if (enc.missing_slot(col) >= 0)
				A(fc.first_feature, enc.missing_slot(col)) = fc.impute_value;
		}
	}
}

void Preprocessor::transform(const Encoder &enc, const RowStore &store, size_t row, double *x) const
{
	for (int k = 0; k < p(); k++)
		x[k] = 0;
	for (size_t col = 0; col < features.size(); col++) {
		const FittedColumn &fc = columns[col];
		if (features[col].categorical()) {
			int32_t id = store.cat[col][row];
			if (id < 0) {
				if (fc.null_feature >= 0)
					x[fc.null_feature] = 1.0;
				continue;
			}
			int k = level_feature(col, enc.dictionary(col).name(id));
			if (k >= 0)
				x[k] = 1.0;
		} else {
			double v = store.num[col][row];
			x[fc.first_feature] = std::isnan(v) ? (native_missing ? NAN : fc.impute_value) : v;
		}
	}
}

size_t Preprocessor::column_of(int f) const
{
	for (size_t c = 0; c < columns.size(); c++)
		if (f >= columns[c].first_feature && f < columns[c].first_feature + columns[c].n_features)
			return c;
	return 0;
}

void Preprocessor::name_features()
{
	feature_names.clear();
	for (size_t c = 0; c < features.size(); c++) {
		const FittedColumn &fc = columns[c];
		if (!features[c].categorical()) {
			feature_names.push_back(numeric_feature_name(features[c].name));
			continue;
		}
		for (const auto &l : fc.levels)
			feature_names.push_back(level_feature_name(features[c].name, l));
		if (fc.null_feature >= 0)
			feature_names.push_back(null_level_feature_name(features[c].name));
	}
	build_index();
}

void Preprocessor::build_index()
{
	level_index_.assign(columns.size(), {});
	for (size_t col = 0; col < columns.size(); col++) {
		const FittedColumn &fc = columns[col];
		for (size_t l = 0; l < fc.levels.size(); l++)
			level_index_[col].emplace(fc.levels[l], fc.first_feature + static_cast<int>(l));
		if (fc.has_reference)
			level_index_[col].emplace(fc.reference, kReferenceLevel);
	}
}

int Preprocessor::level_feature(size_t col, std::string_view s) const
{
	const auto &idx = level_index_[col];
	auto it = idx.find(std::string(s));
	return it == idx.end() ? -1 : it->second; // the reference level (drop_first) is kReferenceLevel
}

void Preprocessor::write(Writer &w) const
{
	for (const FittedColumn &fc : columns) {
		w.f64(fc.impute_value);
		// the reference level (drop_first) first, flagged by bit 2 of the NULL byte
		w.u64(fc.levels.size() + (fc.has_reference ? 1 : 0));
		if (fc.has_reference)
			w.str(fc.reference);
		for (const auto &l : fc.levels)
			w.str(l);
		w.u8((fc.null_feature >= 0 ? 1 : 0) | (fc.has_reference ? 2 : 0));
	}
	w.vec(center);
	w.vec(scale);
}

Preprocessor Preprocessor::read(Reader &r, const std::vector<ColumnInfo> &features)
{
	Preprocessor pp;
	pp.features = features;
	pp.columns.resize(features.size());
	int f = 0;
	for (size_t c = 0; c < features.size(); c++) {
		FittedColumn &fc = pp.columns[c];
		fc.first_feature = f;
		fc.impute_value = r.f64();
		size_t n = r.count(8);
		if (n > 0 && !features[c].categorical())
			throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "A numeric column has category levels.");
		for (size_t l = 0; l < n; l++)
			fc.levels.push_back(r.str());
		const uint8_t flags = r.u8();
		if (flags > 3 || ((flags & 2) != 0 && n == 0))
			throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "Invalid category levels.");
		const bool has_null = (flags & 1) != 0;
		if ((flags & 2) != 0) {
			fc.has_reference = true;
			fc.reference = fc.levels.front();
			fc.levels.erase(fc.levels.begin());
		}
		for (const auto &l : fc.levels)
			pp.feature_names.push_back(level_feature_name(features[c].name, l));
		if (features[c].categorical()) {
			fc.n_features = static_cast<int>(fc.levels.size());
			if (has_null) {
				fc.null_feature = f + fc.n_features;
				fc.n_features++;
				pp.feature_names.push_back(null_level_feature_name(features[c].name));
			}
		} else {
			fc.n_features = 1;
			pp.feature_names.push_back(numeric_feature_name(features[c].name));
		}
		f += fc.n_features;
	}
	pp.center = r.vec();
	pp.scale = r.vec();
	if (pp.center.size() != f || pp.scale.size() != f)
		throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", "Scaling has the wrong number of features.");
	pp.build_index();
	return pp;
}

std::string Preprocessor::to_json() const
{
	JsonWriter w;
	w.begin_object();
	w.key("columns").begin_array();
	for (size_t c = 0; c < features.size(); c++) {
		const FittedColumn &fc = columns[c];
		w.begin_object();
		w.key("name").value(features[c].name);
		w.key("type").value(features[c].type_name);
		w.key("class").value(type_class_name(features[c].type_class));
		if (features[c].categorical()) {
			w.key("encoding").value(fc.has_reference ? "drop_first" : "onehot");
			if (fc.has_reference)
				w.key("reference").value(fc.reference);
			w.key("levels").begin_array();
			for (const auto &l : fc.levels)
				w.value(l);
			w.end_array();
			w.key("null_level").value(fc.null_feature >= 0);
		} else {
			if (native_missing)
				w.key("missing").value("native");
			else
				w.key("impute_value").value(fc.impute_value);
			w.key("center").value(center(fc.first_feature));
			w.key("scale").value(scale(fc.first_feature));
		}
		w.end_object();
	}
	w.end_array();
	w.key("features").value(p());
	w.end_object();
	return w.str();
}

// ---------------------------------------------------------------- LevelCounter

LevelCounter::LevelCounter(const std::vector<ColumnInfo> &features, const PreprocessOptions &opts)
	: names_(features.size()), max_(features.size(), 0), seen_(features.size()), count_(features.size(), 0)
{
	for (size_t c = 0; c < features.size(); c++) {
		names_[c] = features[c].name;
		if (features[c].categorical())
			max_[c] = opts.for_column(features[c].name).max_levels;
	}
}

void LevelCounter::too_many(size_t col) const
{
	const std::string &name = names_[col];
	const std::string limit = std::to_string(max_[col]);
	throw Error(ErrorCode::ProgramLimit,
	            "column \"" + name + "\" has at least " + std::to_string(count_[col]) +
	                " distinct values, more than max_levels (" + limit + ")",
	            "One-hot encoding creates one feature per distinct value; training stops at the first value past "
	            "the limit.",
	            "Raise the limit with preprocess => '{\"columns\": {\"" + name +
	                "\": {\"max_levels\": N}}}', or exclude the column.");
}

} // namespace pgml
