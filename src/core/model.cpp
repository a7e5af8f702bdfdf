#include "model.hpp"

#include <cfloat>
#include <cmath>
#include <cstdio>

#include "grouped.hpp"
#include "json.hpp"
#include "optimize.hpp"

namespace pgml {

[[noreturn]] void corrupt(const std::string &detail)
{
	throw Error(ErrorCode::DataCorrupted, "model blob is corrupted", detail,
	            "Deploy another version with ml_deploy(), or retrain the model.");
}

namespace {
const char *kPayloadMagic = "pg_ml model v1";
} // namespace

void write_column(Writer &w, const ColumnInfo &c)
{
	w.str(c.name);
	w.u8(static_cast<uint8_t>(c.type_class));
	w.str(c.type_name);
}

ColumnInfo read_column(Reader &r)
{
	ColumnInfo c;
	c.name = r.str();
	uint8_t tc = r.u8();
	if (tc > 3)
		corrupt("A column has an unknown type class.");
	c.type_class = static_cast<TypeClass>(tc);
	c.type_name = r.str();
	return c;
}

std::string numeric_label(TypeClass tc, double v)
{
	if (tc == TypeClass::Boolean)
		return v != 0 ? "true" : "false";
	char buf[32];
	std::snprintf(buf, sizeof buf, "%.15g", v);
	if (std::strtod(buf, nullptr) != v)
		std::snprintf(buf, sizeof buf, "%.17g", v);
	return buf;
}

// ---------------------------------------------------------------- prediction

void Model::encode(const Value *values, double *x, int64_t *unseen) const
{
	const int p = prep.p();
	std::fill(x, x + p, 0.0);
	for (size_t c = 0; c < features.size(); c++) {
		const FittedColumn &fc = prep.columns[c];
		const Value &v = values[c];
		if (features[c].categorical()) {
			if (v.isnull) {
				if (fc.null_feature >= 0)
					x[fc.null_feature] = 1.0;
				else if (unseen)
					(*unseen)++;
				continue;
			}
			int k = prep.level_feature(c, std::string_view(v.str, v.len));
			if (k >= 0)
				x[k] = 1.0;
			else if (unseen && k != kReferenceLevel)
				(*unseen)++;
		} else if (v.isnull) {
			x[fc.first_feature] = prep.native_missing ? NAN : fc.impute_value;
		} else {
			if (!std::isfinite(v.num))
				throw Error(ErrorCode::DataException,
				            "feature \"" + features[c].name + "\" is " + (std::isnan(v.num) ? "NaN" : "infinite"),
				            "", prep.native_missing ? "Pass NULL for a missing value; the model routes it down each split's missing-value branch."
				                                       : "Pass NULL for a missing value; the model imputes it.");
			x[fc.first_feature] = v.num;
		}
	}
}

int Model::predict(const Value *values, double *out, int64_t *unseen) const
{
	if (grouped)
		return grouped->predict(*this, values, out, unseen);
	const int p = prep.p();
	if (static_cast<int>(scratch_.size()) < p)
		scratch_.resize(static_cast<size_t>(p));
	double *x = scratch_.data();
	encode(values, x, unseen);
	return predict_features(x, out);
}

int Model::linear_link(const double *s, double *out) const
{
	if (task == Task::Regression) {
		out[0] = s[0];
		return 0;
	}
	const int K = n_classes();
	if (W.cols() == 1) {
		double z = s[0];
		double p1 = z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
		out[0] = 1.0 - p1;
		out[1] = p1;
		return p1 > 0.5 ? 1 : 0;
	}
	double mx = -INFINITY;
	for (int j = 0; j < K; j++) {
		out[j] = s[j];
		mx = std::max(mx, out[j]);
	}
	double sum = 0;
	for (int j = 0; j < K; j++) {
		out[j] = std::exp(out[j] - mx);
		sum += out[j];
	}
	int best = 0;
	for (int j = 0; j < K; j++) {
		out[j] /= sum;
		if (out[j] > out[best])
			best = j;
	}
	return best;
}

void Model::input_out_of_range(const double *x) const
{
	const int p = prep.p();
	int worst = 0;
	double worst_mag = -1;
	for (int f = 0; f < p; f++) {
		double mag;
		if (estimator) {
			mag = std::fabs((x[f] - prep.center(f)) / prep.scale(f));
		} else {
			mag = 0;
			for (Eigen::Index j = 0; j < W.cols(); j++)
				mag = std::max(mag, std::fabs(W(f, j) * x[f]));
		}
		if (std::isnan(mag))
			mag = INFINITY;
		if (mag > worst_mag) {
			worst_mag = mag;
			worst = f;
		}
	}
	feature_out_of_range(features[prep.column_of(worst)].name, x[worst],
	                     estimator && algorithm_max_input(algorithm) < DBL_MAX
	                         ? "The model works in single precision: scaled, the value exceeds 3.4e38."
	                         : "The prediction overflows double precision.");
}

[[noreturn]] void Model::not_for_grouped(const char *what) const
{
	throw Error(ErrorCode::FeatureNotSupported, std::string(what) + " does not support per-group models",
	            "The model has one model per group of " + grouped_columns() + ".",
	            "Use ml_predict, ml_predict_proba or ml_evaluate, or train a model without group_by.");
}

std::string Model::grouped_columns() const
{
	std::string names;
	if (grouped)
		for (const auto &c : grouped->columns)
			names += (names.empty() ? "" : ", ") + c.name;
	return names;
}

int Model::predict_features(const double *x, double *out) const
{
	if (grouped)
		not_for_grouped("prediction from transformed features");
	if (estimator) {
		const int p = prep.p();
		if (static_cast<int>(zscratch_.size()) < p)
			zscratch_.resize(static_cast<size_t>(p));
		const double limit = algorithm_max_input(algorithm);
		for (int f = 0; f < p; f++) {
			double z = (x[f] - prep.center(f)) / prep.scale(f);
			if (std::fabs(z) > limit) // NaN (a missing value, native) passes
				input_out_of_range(x);
			zscratch_[static_cast<size_t>(f)] = z;
		}
		int k = estimator->predict(zscratch_.data(), out);
		if (task == Task::Regression && !std::isfinite(out[0]))
			input_out_of_range(x);
		return k;
	}
	const Eigen::Index p = W.rows(), k = W.cols();
	Eigen::Map<const Eigen::VectorXd> xv(x, p);
	if (k == 1) {
		double s = b(0) + W.col(0).dot(xv);
		if (!std::isfinite(s))
			input_out_of_range(x);
		return linear_link(&s, out);
	}
	// multinomial: out has k entries; the link works in place
	for (Eigen::Index j = 0; j < k; j++) {
		out[j] = b(j) + W.col(j).dot(xv);
		if (!std::isfinite(out[j]))
			input_out_of_range(x);
	}
	return linear_link(out, out);
}

void Model::predict_batch(const Value *values, size_t n, double *out, int *klass, int64_t *unseen) const
{
	if (n == 0)
		return;
	const size_t p = static_cast<size_t>(prep.p());
	const size_t nf = features.size();
	if (grouped) {
		grouped->predict_batch(*this, values, n, out, klass, unseen); // each group's rows together
		return;
	}
	// one row after the other: the transformed features
	std::vector<double> X(p * n);
	for (size_t i = 0; i < n; i++)
		encode(values + i * nf, X.data() + i * p, unseen);
	predict_features_many(X.data(), n, out, klass);
}

void Model::predict_features_many(double *x, size_t n, double *out, int *klass) const
{
	if (grouped)
		not_for_grouped("prediction from transformed features");
	if (n == 0)
		return;
	const Eigen::Index p = prep.p();
	const size_t nout = static_cast<size_t>(n_outputs());
	Eigen::Map<Eigen::MatrixXd> X(x, p, static_cast<Eigen::Index>(n)); // one column per row
	if (estimator) {
		X = (X.colwise() - prep.center).array().colwise() / prep.scale.array();
		// the row again, unscaled, for the message of a value out of range
		auto out_of_range = [&](size_t i) {
			Eigen::VectorXd row = X.col(static_cast<Eigen::Index>(i)).cwiseProduct(prep.scale) + prep.center;
			input_out_of_range(row.data());
		};
		const double limit = algorithm_max_input(algorithm);
		for (size_t i = 0; i < n; i++)
			for (Eigen::Index f = 0; f < p; f++)
				if (std::fabs(X(f, static_cast<Eigen::Index>(i))) > limit) // NaN (missing, native) passes
					out_of_range(i);
		estimator->predict_many(x, n, static_cast<size_t>(p), nout, out, klass);
		if (task == Task::Regression)
			for (size_t i = 0; i < n; i++)
				if (!std::isfinite(out[i * nout]))
					out_of_range(i);
		return;
	}
	// scores: k x n in one product
	Eigen::MatrixXd S = W.transpose() * X;
	S.colwise() += b;
	for (size_t i = 0; i < n; i++) {
		if (!S.col(static_cast<Eigen::Index>(i)).allFinite())
			input_out_of_range(X.col(static_cast<Eigen::Index>(i)).data());
		klass[i] = linear_link(S.col(static_cast<Eigen::Index>(i)).data(), out + i * nout);
	}
}

std::string Model::coefficients_json() const
{
	// {"intercept": b or [b_k], "coefficients": {feature: w or [w_k]}, "standardized": {...}}
	// coefficients apply to the unscaled feature values; standardized ones to the scaled features.
	// A grouped model: {"group_by": [...], "groups": [{"group": {...}, "coefficients": {...}}], "fallback": {...}}
	if (grouped) {
		JsonWriter w;
		w.begin_object();
		w.key("group_by").begin_array();
		for (const auto &c : grouped->columns)
			w.value(c.name);
		w.end_array();
		w.key("groups").begin_array();
		for (const auto &g : grouped->groups) {
			w.begin_object();
			w.key("group").raw(g.key.to_json(grouped->columns));
			w.key("coefficients").raw(g.model->coefficients_json());
			w.end_object();
		}
		w.end_array();
		if (grouped->fallback)
			w.key("fallback").raw(grouped->fallback->coefficients_json());
		w.end_object();
		return w.str();
	}
	if (estimator) {
		// {"kind": "gain", "importance": {feature: value}}
		bool perm = permutation_importance.size() == prep.p();
		Eigen::VectorXd imp = perm ? permutation_importance : estimator->importance();
		JsonWriter w;
		w.begin_object();
		w.key("kind").value(perm ? "permutation" : estimator->importance_kind());
		w.key("importance").begin_object();
		for (int f = 0; f < prep.p() && f < imp.size(); f++)
			w.key(prep.feature_names[static_cast<size_t>(f)]).value(imp(f));
		w.end_object();
		w.end_object();
		return w.str();
	}
	auto put = [this](JsonWriter &w, int f, double factor) {
		if (W.cols() == 1) {
			w.value(W(f, 0) * factor);
			return;
		}
		w.begin_array();
		for (Eigen::Index j = 0; j < W.cols(); j++)
			w.value(W(f, j) * factor);
		w.end_array();
	};
	JsonWriter w;
	w.begin_object();
	w.key("intercept");
	if (b.size() == 1) {
		w.value(b(0));
	} else {
		w.begin_array();
		for (Eigen::Index j = 0; j < b.size(); j++)
			w.value(b(j));
		w.end_array();
	}
	for (int standardized = 0; standardized < 2; standardized++) {
		w.key(standardized ? "standardized" : "coefficients").begin_object();
		for (int f = 0; f < prep.p(); f++) {
			w.key(prep.feature_names[static_cast<size_t>(f)]);
			put(w, f, standardized ? prep.scale(f) : 1.0);
		}
		w.end_object();
	}
	w.end_object();
	return w.str();
}

// ---------------------------------------------------------------- texts

void Model::map_text(const std::function<void(const char *what, std::string &)> &f)
{
	if (grouped)
		not_for_grouped("moving a model between encodings");
	auto column = [&f](ColumnInfo &c) {
		f("column name", c.name);
		f("type name", c.type_name);
	};
	if (has_target())
		column(target);
	for (auto &c : features)
		column(c);
	for (auto &k : classes)
		f("class label", k);
	std::map<std::string, ColumnOptions> options; // keyed by column name
	for (const auto &kv : preprocess.columns) {
		std::string key = kv.first;
		f("column name", key);
		options.emplace(std::move(key), kv.second);
	}
	preprocess.columns = std::move(options);
	prep.features = features;
	for (auto &fc : prep.columns)
		for (auto &l : fc.levels)
			f("category level", l);
	prep.name_features();
	if (has_stats)
		encoder.map_text(f, features);
}

// ---------------------------------------------------------------- blob

void Model::check_binding(int64_t model_id, int32_t version, const std::string &algo, const std::string &task_) const
{
	if (algo != algorithm_name(algorithm) || task_ != task_name(task))
		corrupt(std::string("The blob holds a ") + task_name(task) + " model of algorithm " + algorithm_name(algorithm) +
		        "; its catalog row says " + task_ + " with " + algo + ".");
	if (binding.bound() && (binding.model_id != model_id || binding.version != version))
		corrupt("The blob belongs to version " + std::to_string(binding.version) + " of the model with id " +
		        std::to_string(binding.model_id) + ", not to this row (model id " + std::to_string(model_id) +
		        ", version " + std::to_string(version) + ").");
}

std::vector<uint8_t> Model::serialize() const
{
	if (grouped)
		return serialize_grouped(*this);
	Writer w;
	w.str(kPayloadMagic);
	w.i64(binding.model_id); // the catalog row, under the checksum (format 2)
	w.i32(binding.version);
	w.u16(static_cast<uint16_t>(algorithm)); // repeats the header's kind under the checksum
	w.u8(static_cast<uint8_t>(task));
	write_column(w, target);
	w.u64(features.size());
	for (const auto &c : features)
		write_column(w, c);
	w.u64(classes.size());
	for (const auto &c : classes)
		w.str(c);
	hyperparams.write(w);
	preprocess.write(w);
	w.f64(test_size);
	w.u64(seed);
	prep.write(w);
	w.u8(estimator ? 1 : 0);
	if (estimator) {
		estimator->write(w);
	} else {
		w.mat(W);
		w.vec(b);
	}
	w.u8(has_stats ? 1 : 0);
	if (has_stats) {
		encoder.write(w);
		stats.write(w);
		for (size_t c = 0; c < features.size(); c++) {
			w.f64(col_min[c]);
			w.f64(col_max[c]);
		}
	}
	// format 3: whether the statistics' low parts follow (every model writes the flag, so the
	// payload also tells format 3 from 2)
	w.u8(has_stats && has_precise_stats ? 1 : 0);
	if (has_stats && has_precise_stats) {
		w.vec(stats_mean_lo);
		w.mat(stats_comoment_lo);
	}
	return seal_blob(static_cast<uint16_t>(algorithm), w.bytes());
}

std::unique_ptr<Model> Model::deserialize(const uint8_t *data, size_t len)
{
	const uint8_t *payload = nullptr;
	BlobHeader h = open_blob(data, len, &payload);
	if (h.kind == kGroupedKind)
		return deserialize_grouped(h.format, payload, h.length);
	auto m = std::make_unique<Model>();
	Algorithm a = static_cast<Algorithm>(h.kind);
	const AlgorithmDef &def = algorithm_def(a); // an unknown kind is corrupt
	m->algorithm = a;
	// format 2 adds the binding after the marker; format 1 has none (model id 0)
	Reader r(payload, h.length);
	if (r.str() != kPayloadMagic)
		corrupt("The payload does not start with the model marker.");
	if (h.format >= kFirstBoundFormat) {
		m->binding.model_id = r.i64();
		m->binding.version = r.i32();
		if (m->binding.model_id < 0 || m->binding.version < 0 || (m->binding.model_id == 0) != (m->binding.version == 0))
			corrupt("The blob's model id or version is invalid.");
	}
	if (r.u16() != h.kind)
		corrupt("The model kind in the header does not match the payload.");
	uint8_t task = r.u8();
	if (task > 2)
		corrupt("Unknown task.");
	m->task = static_cast<Task>(task);
	if (!def.supports(m->task))
		corrupt("The task does not match the algorithm.");
	m->target = read_column(r);
	size_t nf = r.count(18);
	for (size_t i = 0; i < nf; i++)
		m->features.push_back(read_column(r));
	if (nf == 0)
		corrupt("The model has no feature columns.");
	size_t nc = r.count(8);
	for (size_t i = 0; i < nc; i++)
		m->classes.push_back(r.str());
	if (m->task == Task::Classification && nc < 2)
		corrupt("A classifier needs at least two classes.");
	if (m->task != Task::Classification && nc != 0)
		corrupt("Only a classifier has classes.");
	m->hyperparams = Params::read(r);
	m->preprocess = PreprocessOptions::read(r);
	m->test_size = r.f64();
	m->seed = r.u64();
	if (!(m->test_size >= 0 && m->test_size < 1))
		corrupt("test_size is out of range.");
	m->prep = Preprocessor::read(r, m->features);
	bool has_estimator = r.u8() != 0;
	if (has_estimator != (def.read != nullptr))
		corrupt("The model's parameters do not match its kind.");
	if (has_estimator) {
		EstimatorShape shape;
		shape.p = m->prep.p();
		shape.n_classes = static_cast<int>(nc);
		shape.task = m->task;
		m->estimator = def.read(r, shape);
		m->prep.native_missing = m->estimator->native_missing();
	} else {
		m->W = r.mat();
		m->b = r.vec();
		Eigen::Index k = m->task == Task::Regression ? 1 : (nc == 2 ? 1 : static_cast<Eigen::Index>(nc));
		if (m->W.rows() != m->prep.p() || m->W.cols() != k || m->b.size() != k)
			corrupt("The coefficients do not match the features.");
		if (!m->W.allFinite() || !m->b.allFinite())
			corrupt("The coefficients are not finite.");
	}
	m->has_stats = r.u8() != 0;
	if (m->has_stats) {
		m->encoder = Encoder::read(r, m->features);
		m->stats = Moments::read(r);
		if (m->stats.dim() != m->encoder.dim() || !m->encoder.has_target_slot()) // as finish() writes them
			corrupt("The statistics do not match the column layout.");
		m->col_min.resize(nf);
		m->col_max.resize(nf);
		for (size_t c = 0; c < nf; c++) {
			m->col_min[c] = r.f64();
			m->col_max[c] = r.f64();
			bool empty = m->col_min[c] == INFINITY && m->col_max[c] == -INFINITY; // no value seen
			if (std::isnan(m->col_min[c]) || std::isnan(m->col_max[c]) || (m->col_min[c] > m->col_max[c] && !empty))
				corrupt("A column's minimum exceeds its maximum.");
		}
	}
	if (h.format >= kFirstPreciseFormat) {
		const uint8_t precise = r.u8();
		if (precise > 1 || (precise == 1 && !m->has_stats))
			corrupt("The statistics' precision flag is invalid.");
		m->has_precise_stats = precise == 1;
		if (m->has_precise_stats) {
			m->stats_mean_lo = r.vec();
			m->stats_comoment_lo = r.mat();
			const Eigen::Index q = m->stats.dim();
			if (m->stats_mean_lo.size() != q || m->stats_comoment_lo.rows() != q || m->stats_comoment_lo.cols() != q)
				corrupt("The precise statistics do not match the column layout.");
			if (!m->stats_mean_lo.allFinite() || !m->stats_comoment_lo.allFinite())
				corrupt("The precise statistics are not finite.");
		}
	}
	if (!r.at_end())
		corrupt("Unexpected bytes after the model.");
	return m;
}

} // namespace pgml
