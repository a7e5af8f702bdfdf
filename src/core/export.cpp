#include "export.hpp"

#include <cmath>
#include <cstring>

#include "json.hpp"
#include "serialize.hpp"

namespace pgml {

namespace {

const char kExportMagic[8] = {'P', 'G', 'M', 'L', 'E', 'X', 'P', 'T'};

[[noreturn]] void bad(const std::string &detail)
{
	throw Error(ErrorCode::InvalidBinary, "invalid pg_ml export data", detail,
	            "Pass the bytes ml_export() returned, unchanged (e.g. COPY in binary, or decode('...', 'base64')).");
}

// Well-formed UTF-8 without NUL bytes, overlong forms or surrogates.
bool valid_utf8(const std::string &s)
{
	const auto *p = reinterpret_cast<const unsigned char *>(s.data());
	size_t n = s.size(), i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

// Whether JSON text holds the escape \u0000 (a NUL, which jsonb refuses).
bool has_nul_escape(const std::string &json)
{
	for (size_t i = 0; i + 1 < json.size(); i++) {
		if (json[i] != '\\')
			continue;
		if (json[i + 1] == 'u' && json.compare(i + 2, 4, "0000") == 0)
			return true;
		i++; // the escaped character
	}
	return false;
}

// Reads a string field, mapping the reader's DataCorrupted to InvalidBinary.
class FieldReader {
  public:
	FieldReader(const uint8_t *data, size_t len) : r_(data, len) {}
	std::string str(const char *field, size_t max_len = 64u << 20)
	{
		std::string s = wrap(field, [&] { return r_.str(); });
		if (s.size() > max_len)
			bad(std::string("The field \"") + field + "\" is too long.");
		if (!valid_utf8(s))
			bad(std::string("The field \"") + field + "\" is not valid UTF-8 text.");
		return s;
	}
	std::vector<uint8_t> bytes(const char *field)
	{
		return wrap(field, [&] {
			size_t n = r_.count(1);
			std::vector<uint8_t> out(n);
			for (size_t i = 0; i < n; i++)
				out[i] = r_.u8();
			return out;
		});
	}
	int64_t i64(const char *field) { return wrap(field, [&] { return r_.i64(); }); }
	uint32_t u32(const char *field) { return wrap(field, [&] { return r_.u32(); }); }
	uint8_t u8(const char *field) { return wrap(field, [&] { return r_.u8(); }); }
	double f64(const char *field) { return wrap(field, [&] { return r_.f64(); }); }
	bool at_end() const { return r_.at_end(); }

  private:
	template <typename F>
	auto wrap(const char *field, F &&f) -> decltype(f())
	{
		try {
			return f();
		} catch (const Error &e) {
			bad(std::string("The data ends inside the field \"") + field + "\".");
		}
	}
	Reader r_;
};

void write_bytes(Writer &w, const std::vector<uint8_t> &b)
{
	w.u64(b.size());
	for (uint8_t c : b)
		w.u8(c);
}

} // namespace

ModelDescription describe_model(const Model &m)
{
	ModelDescription d;
	d.hyperparams_json = m.hyperparams.to_json();
	d.preprocess_json = m.preprocess.to_json();
	d.state_json = m.prep.to_json();
	d.coefficients_json = m.coefficients_json();
	JsonWriter f;
	f.begin_array();
	for (const auto &c : m.features) {
		f.begin_object();
		f.key("name").value(c.name);
		f.key("type").value(c.type_name);
		f.key("class").value(type_class_name(c.type_class));
		f.end_object();
	}
	f.end_array();
	d.features_json = f.str();
	if (m.task == Task::Classification) {
		JsonWriter c;
		c.begin_array();
		for (const auto &k : m.classes)
			c.value(k);
		c.end_array();
		d.classes_json = c.str();
	}
	return d;
}

std::vector<uint8_t> encode_export(const ExportRecord &rec)
{
	Writer w;
	w.str(rec.pg_ml_version);
	w.str(rec.source_database);
	w.str(rec.exported_at);
	w.str(rec.exported_by);
	w.str(rec.model_name);
	w.i64(rec.model_id);
	w.u32(static_cast<uint32_t>(rec.version));
	w.str(rec.task);
	w.str(rec.algorithm);
	w.u8(rec.has_target ? 1 : 0);
	w.str(rec.target);
	w.str(rec.relation);
	w.str(rec.features_json);
	w.str(rec.classes_json);
	w.str(rec.hyperparams_json);
	w.str(rec.preprocess_json);
	w.str(rec.preprocessing_state_json);
	w.str(rec.metrics_json);
	w.str(rec.report_json);
	w.str(rec.coefficients_json);
	w.i64(rec.rows_train);
	w.i64(rec.rows_test);
	w.f64(rec.test_size);
	w.i64(rec.seed);
	w.str(rec.data_fingerprint);
	w.str(rec.trained_by);
	w.str(rec.trained_at);
	w.f64(rec.read_ms);
	w.f64(rec.fit_ms);
	w.f64(rec.duration_ms);
	write_bytes(w, rec.blob);
	const std::vector<uint8_t> &body = w.bytes();

	Writer h;
	for (char c : kExportMagic)
		h.u8(static_cast<uint8_t>(c));
	h.u16(kExportFormat);
	h.u16(0);
	h.u32(crc32(body.data(), body.size()));
	h.u64(body.size());
	std::vector<uint8_t> out = std::move(h.bytes());
	out.insert(out.end(), body.begin(), body.end());
	return out;
}

ExportRecord decode_export(const uint8_t *data, size_t len, std::unique_ptr<Model> *model)
{
	if (len < kExportHeaderSize)
		bad("The data is " + std::to_string(len) + " bytes long, shorter than the " +
		    std::to_string(kExportHeaderSize) + "-byte header.");
	if (std::memcmp(data, kExportMagic, sizeof kExportMagic) != 0)
		bad("The data does not start with the magic bytes \"PGMLEXPT\".");
	uint16_t format, flags;
	uint32_t checksum;
	uint64_t length;
	std::memcpy(&format, data + 8, 2);
	std::memcpy(&flags, data + 10, 2);
	std::memcpy(&checksum, data + 12, 4);
	std::memcpy(&length, data + 16, 8);
	if (format == 0 || format > kExportFormat)
		throw Error(ErrorCode::InvalidBinary, "unsupported pg_ml export format " + std::to_string(format),
		            "This build of pg_ml reads export formats 1 to " + std::to_string(kExportFormat) + ".",
		            "Import it with the pg_ml version that exported it, or a later one.");
	if (flags != 0)
		bad("The header has unknown flags set.");
	if (length != len - kExportHeaderSize)
		bad("The header declares a body of " + std::to_string(length) + " bytes but " +
		    std::to_string(len - kExportHeaderSize) + " follow it.");
	const uint8_t *body = data + kExportHeaderSize;
	if (crc32(body, static_cast<size_t>(length)) != checksum)
		bad("The checksum does not match the data: it was changed or truncated after export.");

	FieldReader r(body, static_cast<size_t>(length));
	ExportRecord rec;
	rec.pg_ml_version = r.str("pg_ml_version", 64);
	rec.source_database = r.str("source_database", 1024);
	rec.exported_at = r.str("exported_at", 128);
	rec.exported_by = r.str("exported_by", 1024);
	rec.model_name = r.str("model_name", 1024);
	rec.model_id = r.i64("model_id");
	rec.version = static_cast<int32_t>(r.u32("version"));
	rec.task = r.str("task", 64);
	rec.algorithm = r.str("algorithm", 64);
	uint8_t has_target = r.u8("has_target");
	if (has_target > 1)
		bad("The field \"has_target\" is neither 0 nor 1.");
	rec.has_target = has_target == 1;
	rec.target = r.str("target", 1024);
	rec.relation = r.str("relation", 4096);
	rec.features_json = r.str("features");
	rec.classes_json = r.str("classes");
	rec.hyperparams_json = r.str("hyperparams");
	rec.preprocess_json = r.str("preprocess");
	rec.preprocessing_state_json = r.str("preprocessing_state");
	rec.metrics_json = r.str("metrics");
	rec.report_json = r.str("report");
	rec.coefficients_json = r.str("coefficients");
	rec.rows_train = r.i64("rows_train");
	rec.rows_test = r.i64("rows_test");
	rec.test_size = r.f64("test_size");
	rec.seed = r.i64("seed");
	rec.data_fingerprint = r.str("data_fingerprint", 1024);
	rec.trained_by = r.str("trained_by", 1024);
	rec.trained_at = r.str("trained_at", 128);
	rec.read_ms = r.f64("read_ms");
	rec.fit_ms = r.f64("fit_ms");
	rec.duration_ms = r.f64("duration_ms");
	rec.blob = r.bytes("blob");
	if (!r.at_end())
		bad("Unexpected bytes after the model blob.");
	if (rec.version < 1)
		bad("The version number is not positive.");
	if (rec.rows_train < 0 || rec.rows_test < 0)
		bad("The row counts are negative.");
	if (!(rec.test_size >= 0 && rec.test_size < 1))
		bad("test_size is out of range.");
	if (!std::isfinite(rec.read_ms) || !std::isfinite(rec.fit_ms) || !std::isfinite(rec.duration_ms))
		bad("The timings are not finite.");
	if (rec.metrics_json.empty() || rec.report_json.empty())
		bad("The metrics or the report are missing.");

	// the model itself: a blob like any other, checked by its own reader
	std::unique_ptr<Model> m;
	try {
		m = Model::deserialize(rec.blob.data(), rec.blob.size());
	} catch (const Error &e) {
		if (e.code() == ErrorCode::Cancelled)
			throw;
		bad("The model blob inside is invalid: " + (e.detail().empty() ? std::string(e.what()) : e.detail()));
	}
	if (m->grouped)
		bad("The model blob inside is a per-group model, which ml_import does not take.");
	// its texts are UTF-8 too (the glue converts them to the database encoding), without NUL
	m->map_text([](const char *what, std::string &s) {
		if (!valid_utf8(s))
			bad(std::string("A ") + what + " inside the model blob is not valid UTF-8 text.");
	});
	// the metadata must describe that model
	if (rec.task != task_name(m->task))
		bad("The metadata says task \"" + rec.task + "\" but the model is a " + task_name(m->task) + " model.");
	if (rec.algorithm != algorithm_name(m->algorithm))
		bad("The metadata says algorithm \"" + rec.algorithm + "\" but the model is " + algorithm_name(m->algorithm) + ".");
	if (rec.has_target != m->has_target() || (rec.has_target && rec.target != m->target.name))
		bad("The metadata's target does not match the model's.");
	ModelDescription d = describe_model(*m);
	// what the glue stores as jsonb from the model (hyperparameters, options, state) too
	for (const std::string *json : {&d.hyperparams_json, &d.preprocess_json, &d.state_json, &d.coefficients_json})
		if (!valid_utf8(*json) || has_nul_escape(*json))
			bad("The model blob inside holds a text that is not valid UTF-8 or has a NUL character.");
	if (rec.features_json != d.features_json)
		bad("The metadata's features do not match the model's.");
	if (rec.classes_json != d.classes_json)
		bad("The metadata's classes do not match the model's.");
	*model = std::move(m);
	return rec;
}

std::string import_provenance_json(const ExportRecord &rec, size_t envelope_len, uint32_t checksum)
{
	JsonWriter w;
	w.begin_object();
	w.key("export_format").value(static_cast<int>(kExportFormat));
	w.key("bytes").value(static_cast<long long>(envelope_len));
	w.key("checksum").value(static_cast<long long>(checksum));
	w.key("pg_ml_version").value(rec.pg_ml_version);
	w.key("database").value(rec.source_database);
	w.key("model").value(rec.model_name);
	w.key("model_id").value(static_cast<long long>(rec.model_id));
	w.key("version").value(static_cast<long long>(rec.version));
	w.key("relation").value(rec.relation);
	w.key("exported_at").value(rec.exported_at);
	w.key("exported_by").value(rec.exported_by);
	w.key("trained_by").value(rec.trained_by);
	w.key("trained_at").value(rec.trained_at);
	w.end_object();
	return w.str();
}

} // namespace pgml
