// pg_ml command line: reading a CSV file's header.
#include "csv.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "errors.hpp"

namespace pgml_cli {

std::vector<std::string> read_csv_header(const std::string &path, char delimiter)
{
	FILE *f = std::fopen(path.c_str(), "rb");
	if (f == nullptr)
		throw InputError(path + ": " + std::strerror(errno));
	std::vector<std::string> fields;
	std::string field;
	bool quoted = false, field_started = false, any = false;
	int c;
	while ((c = std::fgetc(f)) != EOF) {
		any = true;
		if (quoted) {
			if (c == '"') {
				int next = std::fgetc(f);
				if (next == '"') {
					field += '"';
					continue;
				}
				quoted = false;
				if (next == EOF)
					break;
				c = next;
			} else {
				field += static_cast<char>(c);
				continue;
			}
		}
		if (c == '"' && !field_started) {
			quoted = true;
			field_started = true;
		} else if (c == delimiter) {
			fields.push_back(field);
			field.clear();
			field_started = false;
		} else if (c == '\n') {
			break;
		} else if (c != '\r') {
			field += static_cast<char>(c);
			field_started = true;
		}
	}
	bool read_error = std::ferror(f) != 0;
	std::fclose(f);
	if (read_error)
		throw InputError(path + ": could not read the file");
	if (!any)
		throw InputError(path + ": the file is empty; expected a header line naming the columns");
	if (quoted)
		throw InputError(path + ":1: unterminated quoted field in the header");
	fields.push_back(field);
	if (!fields.empty() && fields[0].compare(0, 3, "\xEF\xBB\xBF") == 0)
		fields[0].erase(0, 3);
	return fields;
}

std::map<int64_t, int64_t> csv_record_lines(const std::string &path, const std::set<int64_t> &records)
{
	std::map<int64_t, int64_t> out;
	if (records.empty())
		return out;
	FILE *f = std::fopen(path.c_str(), "rb");
	if (f == nullptr)
		throw InputError(path + ": " + std::strerror(errno));
	const int64_t last = *records.rbegin();
	int64_t line = 1, record = 0; // the header is record 0, on line 1
	bool quoted = false, at_start = false;
	int c;
	while (record <= last && (c = std::fgetc(f)) != EOF) {
		if (at_start) {
			// the first character of record `record`
			if (records.count(record) != 0)
				out[record] = line;
			at_start = false;
		}
		if (c == '"') {
			quoted = !quoted; // a doubled quote inside a quoted field toggles twice
		} else if (c == '\n') {
			line++;
			if (!quoted) {
				record++;
				at_start = true;
			}
		}
	}
	bool read_error = std::ferror(f) != 0;
	std::fclose(f);
	if (read_error)
		throw InputError(path + ": could not read the file");
	return out;
}

} // namespace pgml_cli
