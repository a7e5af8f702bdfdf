// pg_ml command line: the little CSV it reads itself, the header (the data goes to the server through COPY).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace pgml_cli {

// How a CSV file is written: its field separator and the string that stands for NULL (COPY's
// DELIMITER and NULL; has_null false: COPY's default, an empty unquoted field).
struct CsvFormat {
	char delimiter = ',';
	bool has_null = false;
	std::string null;
};

// The header record of a CSV file (RFC 4180 quoting, a UTF-8 byte order mark dropped).
// Throws InputError when the file cannot be read or has no header.
std::vector<std::string> read_csv_header(const std::string &path, char delimiter = ',');

// The physical line (1-based) on which each of the given data records of a CSV file starts
// (record 1 is the first after the header line), as COPY counts them: a quoted field may span
// lines. Records past the end are left out. Throws InputError when the file cannot be read.
std::map<int64_t, int64_t> csv_record_lines(const std::string &path, const std::set<int64_t> &records);

} // namespace pgml_cli
