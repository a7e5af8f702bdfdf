// pg_ml command line: the connection (libpq), errors from the server, progress notices.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include "args.hpp"
#include "errors.hpp"

namespace pgml_cli {

// An error the server reported: main prints message, detail and hint (exit code 4).
struct ServerError : Failure {
	std::string sqlstate, detail, hint, context;
	explicit ServerError(const PGresult *res, const std::string &fallback);
};

// A query result, freed with the object.
class Result {
  public:
	explicit Result(PGresult *r = nullptr) : r_(r) {}
	Result(Result &&o) noexcept : r_(o.r_) { o.r_ = nullptr; }
	Result &operator=(Result &&o) noexcept;
	Result(const Result &) = delete;
	Result &operator=(const Result &) = delete;
	~Result() { PQclear(r_); }
	PGresult *get() const { return r_; }
	int rows() const { return PQntuples(r_); }
	int cols() const { return PQnfields(r_); }
	bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
	std::string str(int row, int col) const { return PQgetvalue(r_, row, col); }
	std::string str(int row, const char *col) const;
	std::string name(int col) const { return PQfname(r_, col); }

  private:
	PGresult *r_;
};

// Shows the server's "pg_ml progress:" notices: a bar on a terminal, plain lines otherwise.
class ProgressView {
  public:
	ProgressView(bool enabled, bool tty) : enabled_(enabled), tty_(tty) {}
	// The rows the relation is known to have (from COPY), when the server cannot estimate them.
	void set_total(int64_t rows) { total_ = rows; }
	// A progress notice: message text and its JSON detail.
	void update(const std::string &message, const std::string &json);
	// Erases the bar (before other output, and at the end).
	void clear();

  private:
	bool enabled_, tty_;
	bool drawn_ = false;
	int64_t total_ = -1;
};

class Client {
  public:
	// Connects as psql does: host, port, user, then dbname (a name, conninfo string or URI whose
	// settings override the others); what is empty comes from libpq's environment. Asks for a
	// password on the terminal with -W, or when the server wants one (unless -w). quiet: the
	// server's notices are not shown (client_min_messages = warning; warnings still are).
	// Throws Failure(kExitConnection) with libpq's message.
	Client(const ConnOptions &conn, bool progress, bool quiet);
	~Client();
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;

	// Runs sql with text parameters (nullptr: NULL); throws ServerError unless it returns rows or
	// completes a command.
	Result exec(const std::string &sql, const std::vector<const char *> &params = {});
	// The schema pg_ml is installed in, quoted for SQL ("public."); throws if it is not installed.
	const std::string &schema();
	std::string quote_ident(const std::string &s) const;
	std::string quote_literal(const std::string &s) const;
	PGconn *conn() const { return conn_; }
	ProgressView &progress() { return progress_; }
	bool quiet() const { return quiet_; }

  private:
	static void on_notice(void *arg, const PGresult *res);
	void connect(const ConnOptions &conn, const char *password);
	PGconn *conn_ = nullptr;
	bool quiet_;
	std::string schema_;
	ProgressView progress_;
};

// Prints a result as an aligned table (psql's style, without the footer when empty is false).
void print_table(const Result &r);

// The fields of a flat JSON object (strings unescaped, numbers as written, null left out).
std::map<std::string, std::string> parse_flat_json(const std::string &json);

} // namespace pgml_cli
