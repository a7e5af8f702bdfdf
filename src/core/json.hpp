// pg_ml core: a tiny JSON writer for metrics, reports and preprocessing descriptions.
// The glue turns the text into jsonb; nothing in the core parses JSON.
#pragma once

#include <string>
#include <vector>

namespace pgml {

// Appends JSON text. Commas are inserted automatically.
// Usage: JsonWriter w; w.begin_object(); w.key("r2"); w.value(0.5); w.end_object(); w.str();
class JsonWriter {
  public:
	JsonWriter &begin_object();
	JsonWriter &end_object();
	JsonWriter &begin_array();
	JsonWriter &end_array();
	JsonWriter &key(const std::string &k);
	JsonWriter &value(double v);  // non-finite numbers are written as null
	JsonWriter &value(long long v);
	JsonWriter &value(int v) { return value(static_cast<long long>(v)); }
	JsonWriter &value(bool v);
	JsonWriter &value(const std::string &v);
	JsonWriter &value(const char *v) { return value(std::string(v)); }
	JsonWriter &null();
	JsonWriter &raw(const std::string &json); // an already valid JSON value
	const std::string &str() const { return out_; }

  private:
	void before_value();
	std::string out_;
	std::vector<bool> first_; // one entry per open container: nothing written in it yet
	bool after_key_ = false;
};

std::string json_quote(const std::string &s);

} // namespace pgml
