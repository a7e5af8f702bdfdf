// pg_ml command line: the options (psql's connection options, then each command's own).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace pgml_cli {

// How to connect: what was given on the command line (empty: libpq's environment decides).
struct ConnOptions {
	std::string host, port, user, dbname;
	enum Password { kAsk = 0, kPrompt, kNever } password = kAsk; // default / -W / -w
};

struct Args {
	std::string command;
	std::vector<std::string> positional;
	std::map<std::string, std::string> options;
	ConnOptions conn;
	bool quiet = false;
	bool help = false;
	bool version = false;

	bool has(const char *k) const { return options.count(k) != 0; }
	const std::string &opt(const char *k) const { return options.at(k); }
	const char *opt_or_null(const char *k) const
	{
		auto it = options.find(k);
		return it == options.end() ? nullptr : it->second.c_str();
	}
};

// Whether a command exists.
bool is_command(const std::string &name);

// Parses the command line; throws UsageError. The connection and general options (-h, -p, -U,
// -d, -W, -w, -q, -?, -V and their long forms) go anywhere; a command's options (long only)
// after it. A list option given twice (--features a --features b) adds to the list.
Args parse_args(int argc, char **argv);

// The values of a list option: comma-separated, surrounding blanks dropped, empty items refused.
std::vector<std::string> split_list(const std::string &option, const std::string &value);

// The help texts (help.cpp).
void print_main_help();
// false: no such command
bool print_command_help(const std::string &command);

} // namespace pgml_cli
