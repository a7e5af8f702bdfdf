// pg_ml command line: connection, errors, notices and the progress bar.
#include "client.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <termios.h>
#include <unistd.h>

namespace pgml_cli {

namespace {

std::string field(const PGresult *res, int code)
{
	const char *v = PQresultErrorField(res, code);
	return v != nullptr ? v : "";
}

std::string with_commas(int64_t n)
{
	std::string s = std::to_string(n);
	for (int i = static_cast<int>(s.size()) - 3; i > (n < 0 ? 1 : 0); i -= 3)
		s.insert(static_cast<size_t>(i), ",");
	return s;
}

// Reads a password from the terminal without echo (as psql does when the server asks for one).
std::string prompt_password(const std::string &prompt)
{
	FILE *tty = std::fopen("/dev/tty", "r+");
	if (tty == nullptr) {
		// no terminal (psql does the same): the prompt on standard error, the password from standard input
		std::fputs(prompt.c_str(), stderr);
		std::fflush(stderr);
		char line[1024];
		std::string pw = std::fgets(line, sizeof(line), stdin) != nullptr ? line : "";
		while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r'))
			pw.pop_back();
		return pw;
	}
	// echo off before the prompt is shown, so that nothing typed after it is echoed or discarded
	struct termios old, quiet;
	bool restore = tcgetattr(fileno(tty), &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
		tcsetattr(fileno(tty), TCSANOW, &quiet);
	}
	std::fputs(prompt.c_str(), tty);
	std::fflush(tty);
	char buf[1024];
	std::string pw;
	if (std::fgets(buf, sizeof(buf), tty) != nullptr)
		pw = buf;
	if (restore)
		tcsetattr(fileno(tty), TCSANOW, &old);
	std::fputs("\n", tty);
	std::fclose(tty);
	while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r'))
		pw.pop_back();
	return pw;
}

} // namespace

ServerError::ServerError(const PGresult *res, const std::string &fallback)
    : Failure(kExitServer, res != nullptr && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) != nullptr
                               ? field(res, PG_DIAG_MESSAGE_PRIMARY)
                               : fallback),
      sqlstate(field(res, PG_DIAG_SQLSTATE)), detail(field(res, PG_DIAG_MESSAGE_DETAIL)),
      hint(field(res, PG_DIAG_MESSAGE_HINT)), context(field(res, PG_DIAG_CONTEXT))
{
}

Result &Result::operator=(Result &&o) noexcept
{
	if (this != &o) {
		PQclear(r_);
		r_ = o.r_;
		o.r_ = nullptr;
	}
	return *this;
}

std::string Result::str(int row, const char *col) const
{
	int c = PQfnumber(r_, col);
	return c < 0 || PQgetisnull(r_, row, c) ? std::string() : std::string(PQgetvalue(r_, row, c));
}

std::map<std::string, std::string> parse_flat_json(const std::string &json)
{
	std::map<std::string, std::string> out;
	size_t i = 0;
	const size_t n = json.size();
	auto ws = [&]() {
		while (i < n && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r'))
			i++;
	};
	auto string = [&](std::string &s) -> bool {
		if (i >= n || json[i] != '"')
			return false;
		i++;
		while (i < n && json[i] != '"') {
			if (json[i] == '\\' && i + 1 < n) {
				char e = json[++i];
				if (e == 'u' && i + 4 < n) {
					unsigned cp = static_cast<unsigned>(std::strtoul(json.substr(i + 1, 4).c_str(), nullptr, 16));
					i += 4;
					if (cp < 0x80)
						s += static_cast<char>(cp);
					else if (cp < 0x800) {
						s += static_cast<char>(0xC0 | (cp >> 6));
						s += static_cast<char>(0x80 | (cp & 0x3F));
					} else {
						s += static_cast<char>(0xE0 | (cp >> 12));
						s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
						s += static_cast<char>(0x80 | (cp & 0x3F));
					}
				} else
					s += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
			} else
				s += json[i];
			i++;
		}
		if (i >= n)
			return false;
		i++;
		return true;
	};
	ws();
	if (i >= n || json[i] != '{')
		return out;
	i++;
	for (;;) {
		ws();
		std::string key, value;
		if (!string(key))
			return out;
		ws();
		if (i >= n || json[i] != ':')
			return out;
		i++;
		ws();
		bool is_null = false;
		if (i < n && json[i] == '"') {
			if (!string(value))
				return out;
		} else {
			size_t start = i;
			while (i < n && json[i] != ',' && json[i] != '}')
				i++;
			value = json.substr(start, i - start);
			while (!value.empty() && (value.back() == ' ' || value.back() == '\n'))
				value.pop_back();
			is_null = value == "null";
		}
		if (!is_null)
			out[key] = value;
		ws();
		if (i < n && json[i] == ',') {
			i++;
			continue;
		}
		return out;
	}
}

void ProgressView::update(const std::string &message, const std::string &json)
{
	if (!enabled_)
		return;
	if (!tty_) {
		std::fprintf(stderr, "%s\n", message.c_str());
		return;
	}
	std::map<std::string, std::string> f = parse_flat_json(json);
	auto num = [&](const char *k, double def) {
		auto it = f.find(k);
		return it == f.end() ? def : std::strtod(it->second.c_str(), nullptr);
	};
	const std::string phase = f.count("phase") ? f["phase"] : "";
	const int64_t rows = static_cast<int64_t>(num("rows", 0));
	int64_t total = total_ > 0 ? total_ : static_cast<int64_t>(num("rows_estimate", -1));
	char line[512];
	int len = std::snprintf(line, sizeof(line), "%s", f.count("model") ? f["model"].c_str() : "");
	if (phase == "reading" && total > 0) {
		double frac = std::min(1.0, static_cast<double>(rows) / static_cast<double>(total));
		const int width = 24;
		int filled = static_cast<int>(frac * width + 0.5);
		std::string bar(static_cast<size_t>(filled), '#');
		bar.append(static_cast<size_t>(width - filled), '.');
		len += std::snprintf(line + len, sizeof(line) - static_cast<size_t>(len), "  [%s] %3d%%  reading %s/%s rows",
		                     bar.c_str(), static_cast<int>(frac * 100 + 0.5), with_commas(rows).c_str(),
		                     with_commas(total).c_str());
	} else {
		len += std::snprintf(line + len, sizeof(line) - static_cast<size_t>(len), "  %s  %s rows", phase.c_str(),
		                     with_commas(rows).c_str());
		if (f.count("iteration"))
			len += std::snprintf(line + len, sizeof(line) - static_cast<size_t>(len), "  iteration %s",
			                     f["iteration"].c_str());
		if (f.count("metric") && f.count("value"))
			len += std::snprintf(line + len, sizeof(line) - static_cast<size_t>(len), "  %s %.6g", f["metric"].c_str(),
			                     num("value", 0));
	}
	if (len < static_cast<int>(sizeof(line)))
		std::snprintf(line + len, sizeof(line) - static_cast<size_t>(len), "  %.1f s", num("elapsed", 0));
	std::fprintf(stderr, "\r\033[K%s", line);
	std::fflush(stderr);
	drawn_ = true;
}

void ProgressView::clear()
{
	if (drawn_) {
		std::fprintf(stderr, "\r\033[K");
		std::fflush(stderr);
		drawn_ = false;
	}
}

void Client::connect(const ConnOptions &c, const char *password)
{
	// psql's order: a conninfo string or URI in dbname overrides host, port and user
	auto opt = [](const std::string &v) { return v.empty() ? nullptr : v.c_str(); };
	const char *keys[] = {"host", "port", "user", "password", "dbname", "fallback_application_name", nullptr};
	const char *values[] = {opt(c.host), opt(c.port), opt(c.user), password, opt(c.dbname), "pg_ml", nullptr};
	conn_ = PQconnectdbParams(keys, values, 1);
	if (conn_ == nullptr)
		throw Failure(kExitConnection, "out of memory");
}

Client::Client(const ConnOptions &c, bool progress, bool quiet)
    : quiet_(quiet), progress_(progress, isatty(STDERR_FILENO) != 0)
{
	std::string pw;
	bool have_pw = false;
	if (c.password == ConnOptions::kPrompt) {
		pw = prompt_password(c.user.empty() ? "Password: " : "Password for user " + c.user + ": ");
		have_pw = true;
	}
	connect(c, have_pw ? pw.c_str() : nullptr);
	if (PQstatus(conn_) == CONNECTION_BAD && PQconnectionNeedsPassword(conn_) && !have_pw &&
	    c.password != ConnOptions::kNever && isatty(STDIN_FILENO)) {
		// no password in the conninfo, the environment or ~/.pgpass: ask, like psql
		pw = prompt_password(std::string("Password for user ") + PQuser(conn_) + ": ");
		PQfinish(conn_);
		conn_ = nullptr;
		connect(c, pw.c_str());
	}
	if (PQstatus(conn_) != CONNECTION_OK) {
		std::string msg = PQerrorMessage(conn_);
		while (!msg.empty() && msg.back() == '\n')
			msg.pop_back();
		PQfinish(conn_);
		conn_ = nullptr;
		throw Failure(kExitConnection, msg);
	}
	PQsetNoticeReceiver(conn_, on_notice, this);
	if (quiet) // lower only: a stricter setting (PGOPTIONS) stays
		exec("SELECT pg_catalog.set_config('client_min_messages', 'warning', false) "
		     "WHERE pg_catalog.current_setting('client_min_messages') NOT IN ('warning', 'error')");
	if (progress) {
		// a bar on a terminal moves more smoothly than the server's default of one notice a second
		exec(isatty(STDERR_FILENO) ? "SET pg_ml.progress = on; SET pg_ml.progress_interval = 200"
		                           : "SET pg_ml.progress = on");
	} else {
		exec("SET pg_ml.progress = off");
	}
}

Client::~Client()
{
	progress_.clear();
	if (conn_ != nullptr)
		PQfinish(conn_);
}

void Client::on_notice(void *arg, const PGresult *res)
{
	Client *self = static_cast<Client *>(arg);
	std::string msg = field(res, PG_DIAG_MESSAGE_PRIMARY);
	static const char kPrefix[] = "pg_ml progress: ";
	if (msg.compare(0, sizeof(kPrefix) - 1, kPrefix) == 0) {
		self->progress_.update(msg, field(res, PG_DIAG_MESSAGE_DETAIL));
		return;
	}
	std::string severity = field(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	if (self->quiet_ && severity != "WARNING")
		return; // -q: NOTICE, INFO, LOG, DEBUG dropped (errors are results, not notices)
	self->progress_.clear();
	severity = field(res, PG_DIAG_SEVERITY);
	std::fprintf(stderr, "%s:  %s\n", severity.empty() ? "NOTICE" : severity.c_str(), msg.c_str());
	std::string detail = field(res, PG_DIAG_MESSAGE_DETAIL), hint = field(res, PG_DIAG_MESSAGE_HINT);
	if (!detail.empty())
		std::fprintf(stderr, "DETAIL:  %s\n", detail.c_str());
	if (!hint.empty())
		std::fprintf(stderr, "HINT:  %s\n", hint.c_str());
}

Result Client::exec(const std::string &sql, const std::vector<const char *> &params)
{
	Result r(params.empty() ? PQexec(conn_, sql.c_str())
	                        : PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(),
	                                       nullptr, nullptr, 0));
	progress_.clear();
	ExecStatusType st = r.get() != nullptr ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_COPY_IN && st != PGRES_COPY_OUT) {
		if (PQstatus(conn_) == CONNECTION_BAD) {
			std::string msg = PQerrorMessage(conn_);
			while (!msg.empty() && msg.back() == '\n')
				msg.pop_back();
			throw Failure(kExitConnection, msg);
		}
		throw ServerError(r.get(), PQerrorMessage(conn_));
	}
	return r;
}

const std::string &Client::schema()
{
	if (schema_.empty()) {
		Result r = exec("SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n "
		                "ON n.oid = e.extnamespace WHERE e.extname = 'pg_ml'");
		if (r.rows() == 0)
			throw Failure(kExitServer,
			              std::string("extension pg_ml is not installed in database \"") + PQdb(conn_) +
			                  "\"\nHINT:  Run CREATE EXTENSION pg_ml there, or connect to another database with -d.");
		schema_ = quote_ident(r.str(0, 0)) + ".";
	}
	return schema_;
}

std::string Client::quote_ident(const std::string &s) const
{
	char *q = PQescapeIdentifier(conn_, s.c_str(), s.size());
	if (q == nullptr)
		throw Failure(kExitServer, PQerrorMessage(conn_));
	std::string out(q);
	PQfreemem(q);
	return out;
}

std::string Client::quote_literal(const std::string &s) const
{
	char *q = PQescapeLiteral(conn_, s.c_str(), s.size());
	if (q == nullptr)
		throw Failure(kExitServer, PQerrorMessage(conn_));
	std::string out(q);
	PQfreemem(q);
	return out;
}

void print_table(const Result &r)
{
	const int nc = r.cols(), nr = r.rows();
	std::vector<size_t> w(static_cast<size_t>(nc));
	auto width = [](const std::string &s) {
		size_t n = 0;
		for (unsigned char c : s)
			n += (c & 0xC0) != 0x80; // UTF-8 code points
		return n;
	};
	for (int c = 0; c < nc; c++) {
		w[static_cast<size_t>(c)] = width(r.name(c));
		for (int i = 0; i < nr; i++)
			w[static_cast<size_t>(c)] = std::max(w[static_cast<size_t>(c)], width(r.str(i, c)));
	}
	auto cell = [&](const std::string &s, int c, bool last) {
		std::fputs(s.c_str(), stdout);
		if (!last)
			for (size_t k = width(s); k < w[static_cast<size_t>(c)] + 2; k++)
				std::fputc(' ', stdout);
	};
	for (int c = 0; c < nc; c++)
		cell(r.name(c), c, c == nc - 1);
	std::fputc('\n', stdout);
	for (int c = 0; c < nc; c++) {
		std::fputs(std::string(w[static_cast<size_t>(c)], '-').c_str(), stdout);
		if (c < nc - 1)
			std::fputs("  ", stdout);
	}
	std::fputc('\n', stdout);
	for (int i = 0; i < nr; i++) {
		for (int c = 0; c < nc; c++)
			cell(r.str(i, c), c, c == nc - 1);
		std::fputc('\n', stdout);
	}
	std::printf("(%d row%s)\n", nr, nr == 1 ? "" : "s");
}

} // namespace pgml_cli
