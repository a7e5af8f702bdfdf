// pg_ml command line: the little CSV it reads itself, the header (the data goes to the server through COPY).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pgml_cli {

// The header record of a CSV file (RFC 4180 quoting, a UTF-8 byte order mark dropped).
// Throws InputError when the file cannot be read or has no header.
std::vector<std::string> read_csv_header(const std::string &path);

} // namespace pgml_cli
