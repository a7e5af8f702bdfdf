// pg_ml command line: parsing the options, psql's way for the connection.
#include "args.hpp"

#include <set>

#include "errors.hpp"

namespace pgml_cli {

namespace {

// Options of each command (long only; all take a value but the flags of kFlags).
const std::map<std::string, std::set<std::string>> kOptions = {
    {"train",
     {"relation", "target", "algorithm", "name", "task", "features", "exclude", "hyperparams", "preprocess",
      "test-size", "seed", "deploy-metric", "search", "search-params", "search-args", "group-by", "group-fallback"}},
    {"retrain", {"model", "csv", "keep", "relation", "mode", "deploy", "allow-new-classes", "null", "delimiter"}},
    {"predict", {"model", "csv", "out", "proba", "null", "delimiter"}},
    {"models", {}},
    {"versions", {}},
    {"deploy", {}},
    {"rollback", {}},
    {"jobs", {}},
    {"help", {}},
};

// Options that take no value (present or not).
const std::set<std::string> kFlags = {"allow-new-classes", "proba"};

// Options that may be given more than once, each time adding comma-separated items.
const std::set<std::string> kLists = {"features", "exclude", "group-by"};

// The general options, short and long; `value`: takes a value.
struct GeneralOption {
	char short_name;
	const char *long_name;
	bool value;
};
const GeneralOption kGeneral[] = {
    {'h', "host", true},   {'p', "port", true},      {'U', "username", true},
    {'d', "dbname", true}, {'W', "password", false}, {'w', "no-password", false},
    {'q', "quiet", false}, {'?', "help", false},     {'V', "version", false},
};

void set_general(Args &a, char which, const std::string &value)
{
	switch (which) {
	case 'h':
		a.conn.host = value;
		break;
	case 'p':
		a.conn.port = value;
		break;
	case 'U':
		a.conn.user = value;
		break;
	case 'd':
		a.conn.dbname = value;
		break;
	case 'W':
		a.conn.password = ConnOptions::kPrompt;
		break;
	case 'w':
		a.conn.password = ConnOptions::kNever;
		break;
	case 'q':
		a.quiet = true;
		break;
	case '?':
		a.help = true;
		break;
	default:
		a.version = true;
	}
}

// A cluster of short options (-qW, -h HOST, -hHOST, -p5432).
void parse_short(Args &a, const std::string &s, int argc, char **argv, int &i)
{
	for (size_t k = 1; k < s.size(); k++) {
		const GeneralOption *o = nullptr;
		for (const auto &g : kGeneral)
			if (g.short_name == s[k])
				o = &g;
		if (o == nullptr)
			throw UsageError("unknown option -" + std::string(1, s[k]), a.command);
		if (!o->value) {
			set_general(a, o->short_name, "");
			continue;
		}
		if (k + 1 < s.size()) {
			set_general(a, o->short_name, s.substr(k + 1));
		} else {
			if (i + 1 >= argc)
				throw UsageError(std::string("option -") + o->short_name + " needs a value", a.command);
			set_general(a, o->short_name, argv[++i]);
		}
		return;
	}
}

// --name[=value] [value]
void parse_long(Args &a, const std::string &s, int argc, char **argv, int &i)
{
	size_t eq = s.find('=');
	const bool has_inline = eq != std::string::npos;
	std::string name = s.substr(2, has_inline ? eq - 2 : std::string::npos);
	auto value = [&]() -> std::string {
		if (has_inline)
			return s.substr(eq + 1);
		if (i + 1 >= argc)
			throw UsageError("option --" + name + " needs a value", a.command);
		return argv[++i];
	};
	for (const auto &g : kGeneral)
		if (name == g.long_name) {
			if (!g.value && has_inline)
				throw UsageError("option --" + name + " takes no value", a.command);
			set_general(a, g.short_name, g.value ? value() : "");
			return;
		}
	if (a.command.empty())
		throw UsageError("unknown option --" + name + " (options of a command come after it)");
	if (kOptions.at(a.command).count(name) == 0)
		throw UsageError("command " + a.command + " has no option --" + name, a.command);
	if (kFlags.count(name) != 0) {
		if (has_inline)
			throw UsageError("option --" + name + " takes no value", a.command);
		a.options[name] = "true";
		return;
	}
	std::string v = value();
	auto it = a.options.find(name);
	if (kLists.count(name) != 0 && it != a.options.end())
		it->second += "," + v;
	else
		a.options[name] = v;
}

} // namespace

bool is_command(const std::string &name)
{
	return kOptions.count(name) != 0;
}

Args parse_args(int argc, char **argv)
{
	Args a;
	for (int i = 1; i < argc; i++) {
		std::string s = argv[i];
		if (s.compare(0, 2, "--") == 0 && s.size() > 2) {
			parse_long(a, s, argc, argv, i);
		} else if (s.size() > 1 && s[0] == '-') {
			parse_short(a, s, argc, argv, i);
		} else if (a.command.empty()) {
			if (!is_command(s))
				throw UsageError("unknown command \"" + s + "\"");
			a.command = s;
		} else {
			a.positional.push_back(s);
		}
	}
	return a;
}

std::vector<std::string> split_list(const std::string &option, const std::string &value)
{
	std::vector<std::string> out;
	size_t at = 0;
	for (;;) {
		size_t end = value.find(',', at);
		std::string item = value.substr(at, end == std::string::npos ? std::string::npos : end - at);
		size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
		if (b == std::string::npos)
			throw UsageError("option --" + option + " has an empty item in \"" + value + "\"");
		out.push_back(item.substr(b, e - b + 1));
		if (end == std::string::npos)
			return out;
		at = end + 1;
	}
}

} // namespace pgml_cli
