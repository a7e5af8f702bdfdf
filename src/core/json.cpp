#include "json.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common.hpp"

namespace pgml {

std::string json_quote(const std::string &s)
{
	std::string out;
	out.reserve(s.size() + 2);
	out.push_back('"');
	for (unsigned char c : s) {
		switch (c) {
		case '"': out += "\\\""; break;
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		case '\r': out += "\\r"; break;
		case '\t': out += "\\t"; break;
		case '\b': out += "\\b"; break;
		case '\f': out += "\\f"; break;
		default:
			if (c < 0x20) {
				char buf[8];
				std::snprintf(buf, sizeof buf, "\\u%04x", c);
				out += buf;
			} else {
				out.push_back(static_cast<char>(c));
			}
		}
	}
	out.push_back('"');
	return out;
}

void JsonWriter::before_value()
{
	if (after_key_) {
		after_key_ = false;
		return;
	}
	if (!first_.empty()) {
		if (!first_.back())
			out_.push_back(',');
		first_.back() = false;
	}
}

JsonWriter &JsonWriter::begin_object()
{
	before_value();
	out_.push_back('{');
	first_.push_back(true);
	return *this;
}

JsonWriter &JsonWriter::end_object()
{
	out_.push_back('}');
	first_.pop_back();
	return *this;
}

JsonWriter &JsonWriter::begin_array()
{
	before_value();
	out_.push_back('[');
	first_.push_back(true);
	return *this;
}

JsonWriter &JsonWriter::end_array()
{
	out_.push_back(']');
	first_.pop_back();
	return *this;
}

JsonWriter &JsonWriter::key(const std::string &k)
{
	before_value();
	out_ += json_quote(k);
	out_.push_back(':');
	after_key_ = true;
	return *this;
}

JsonWriter &JsonWriter::value(double v)
{
	before_value();
	if (!std::isfinite(v)) {
		out_ += "null";
		return *this;
	}
	// shortest of %.15g / %.17g that reads back exactly
	char buf[32];
	std::snprintf(buf, sizeof buf, "%.15g", v);
	if (std::strtod(buf, nullptr) != v)
		std::snprintf(buf, sizeof buf, "%.17g", v);
	out_ += buf;
	return *this;
}

JsonWriter &JsonWriter::value(long long v)
{
	before_value();
	out_ += std::to_string(v);
	return *this;
}

JsonWriter &JsonWriter::value(bool v)
{
	before_value();
	out_ += v ? "true" : "false";
	return *this;
}

JsonWriter &JsonWriter::value(const std::string &v)
{
	before_value();
	out_ += json_quote(v);
	return *this;
}

JsonWriter &JsonWriter::null()
{
	before_value();
	out_ += "null";
	return *this;
}

JsonWriter &JsonWriter::raw(const std::string &json)
{
	before_value();
	out_ += json;
	return *this;
}

std::string OptionValue::to_json() const
{
	JsonWriter w;
	switch (type) {
	case Type::Number: w.value(number); break;
	case Type::String: w.value(string); break;
	case Type::Bool: w.value(boolean); break;
	case Type::Null: w.null(); break;
	}
	return w.str();
}

const char *task_name(Task t)
{
	switch (t) {
	case Task::Regression: return "regression";
	case Task::Classification: return "classification";
	case Task::Clustering: return "clustering";
	}
	return "unknown";
}

} // namespace pgml
