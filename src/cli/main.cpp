// pg_ml command line: train, retrain from a CSV file, predict a CSV file, and manage versions.
//
// Every command is a few SQL statements over libpq; the connection comes from -d (a database
// name, a conninfo string or a URI) and libpq's environment (PGHOST, PGPORT, PGUSER, ~/.pgpass,
// PGSSLMODE ...). A CSV file goes to the server with COPY into a temporary table typed like the
// model's columns, inside one transaction, so a bad value is reported with its line and column
// and nothing is written.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "args.hpp"
#include "client.hpp"
#include "csv.hpp"
#include "errors.hpp"

#ifndef PGML_VERSION
#define PGML_VERSION "0.3.0"
#endif

using namespace pgml_cli;

namespace {

// ------------------------------------------------------------------ command line

void expect_positional(const Args &a, size_t n, const char *what)
{
	if (a.positional.size() < n)
		throw UsageError(std::string("missing ") + what, a.command);
	if (a.positional.size() > n)
		throw UsageError("unexpected argument \"" + a.positional[n] + "\"", a.command);
}

void require(const Args &a, const char *opt)
{
	if (!a.has(opt))
		throw UsageError(std::string("option --") + opt + " is required", a.command);
}

bool is_integer(const std::string &s)
{
	if (s.empty())
		return false;
	for (char c : s)
		if (c < '0' || c > '9')
			return false;
	return true;
}

// "name" or "(id)": the SQL argument that selects a model by name (text) or id (bigint).
std::string model_arg(const std::string &m, std::vector<const char *> &params, int index)
{
	params.push_back(m.c_str());
	return "$" + std::to_string(index) + (is_integer(m) ? "::pg_catalog.int8" : "::pg_catalog.text");
}

// The headline test metric of a metrics jsonb column, as SQL.
std::string headline(const std::string &col)
{
	return "CASE WHEN " + col + " ? 'r2' THEN 'r2 ' || pg_catalog.round((" + col + "->>'r2')::numeric, 4) " + "WHEN " +
	       col + " ? 'accuracy' THEN 'accuracy ' || pg_catalog.round((" + col + "->>'accuracy')::numeric, 4) " +
	       "WHEN " + col + " ? 'silhouette' THEN 'silhouette ' || pg_catalog.round((" + col +
	       "->>'silhouette')::numeric, 4) END";
}

// ------------------------------------------------------------------ CSV staging

struct ModelColumn {
	std::string name, type, role;
};

std::vector<ModelColumn> model_columns(Client &db, const std::string &model)
{
	std::vector<const char *> p;
	std::string arg = model_arg(model, p, 1);
	Result r =
	    db.exec("SELECT name, type, role FROM " + db.schema() + "ml_model_columns(" + arg + ") ORDER BY ordinal", p);
	std::vector<ModelColumn> cols;
	for (int i = 0; i < r.rows(); i++) {
		// the type names come from the model (whose owner may not be the caller): never pasted into
		// SQL as they are, only as the server's own spelling of a type that exists
		std::string declared = r.str(i, 1);
		Result t = db.exec("SELECT pg_catalog.format_type(pg_catalog.to_regtype($1), NULL)", {declared.c_str()});
		if (t.null(0, 0))
			throw Failure(kExitServer, "column \"" + r.str(i, 0) + "\" of model \"" + model + "\" has type \"" +
			                               declared + "\", which does not exist in this database");
		cols.push_back({r.str(i, 0), t.str(0, 0), r.str(i, 2)});
	}
	return cols;
}

// Copies a CSV file into a new temporary table (dropped at commit) typed like the model's columns;
// the header's other columns come along as text. Inside a transaction. Returns the table's name
// and the number of rows. need_target: the model's target column must be in the file.
// --null and --delimiter.
CsvFormat csv_format(const Args &a)
{
	CsvFormat f;
	if (a.has("null")) {
		f.has_null = true;
		f.null = a.opt("null");
	}
	if (a.has("delimiter")) {
		std::string d = a.opt("delimiter");
		if (d == "\\t" || d == "tab")
			d = "\t";
		if (d.size() != 1 || d[0] == '"' || d[0] == '\n' || d[0] == '\r')
			throw UsageError("--delimiter must be one character (not a quote or a line break), not \"" + d + "\"",
			                 a.command);
		f.delimiter = d[0];
	}
	return f;
}

// The options of a COPY in CSV of that format (COPY takes no parameters: the values are quoted).
std::string copy_options(const Client &db, const CsvFormat &f)
{
	std::string o = "(FORMAT csv, HEADER true, DELIMITER " + db.quote_literal(std::string(1, f.delimiter));
	if (f.has_null)
		o += ", NULL " + db.quote_literal(f.null);
	return o + ")";
}

std::pair<std::string, int64_t> stage_csv(Client &db, const std::string &model, const std::string &path,
                                          const CsvFormat &fmt, bool need_target, bool line_numbers,
                                          std::vector<std::string> *header_out)
{
	std::vector<std::string> header = read_csv_header(path, fmt.delimiter);
	std::vector<ModelColumn> cols = model_columns(db, model);
	std::set<std::string> seen;
	for (const auto &h : header) {
		if (h.empty())
			throw InputError(path + ":1: the header has an empty column name");
		if (!seen.insert(h).second)
			throw InputError(path + ":1: column \"" + h + "\" appears twice in the header");
	}
	std::string missing;
	int nmissing = 0;
	for (const auto &c : cols)
		if (seen.count(c.name) == 0 && (c.role == "feature" || need_target)) {
			missing += (missing.empty() ? "" : ", ") + ("\"" + c.name + "\" (" + c.type + ")");
			nmissing++;
		}
	if (nmissing > 0)
		throw InputError(path + ":1: the header lacks " + (nmissing == 1 ? "column " : "columns ") + missing +
		                 " of model \"" + model + "\"");

	std::string table = "pg_ml_staging_" + std::to_string(getpid());
	std::string ddl = "CREATE TEMP TABLE " + db.quote_ident(table) + " (";
	std::string list;
	for (size_t i = 0; i < header.size(); i++) {
		std::string type = "text";
		for (const auto &c : cols)
			if (c.name == header[i])
				type = c.type;
		ddl += (i ? ", " : "") + db.quote_ident(header[i]) + " " + type;
		list += (i ? ", " : "") + db.quote_ident(header[i]);
	}
	if (line_numbers)
		ddl += ", pg_ml_line bigint GENERATED ALWAYS AS IDENTITY";
	ddl += ") ON COMMIT DROP";
	db.exec(ddl);

	Result copy = db.exec("COPY " + db.quote_ident(table) + " (" + list + ") FROM STDIN " + copy_options(db, fmt));
	FILE *f = std::fopen(path.c_str(), "rb");
	if (f == nullptr)
		throw InputError(path + ": " + std::strerror(errno));
	std::vector<char> buf(1 << 16);
	size_t n;
	bool sent = true;
	while (sent && (n = std::fread(buf.data(), 1, buf.size(), f)) > 0)
		sent = PQputCopyData(db.conn(), buf.data(), static_cast<int>(n)) == 1;
	bool read_error = std::ferror(f) != 0;
	std::fclose(f);
	PQputCopyEnd(db.conn(), read_error ? "could not read the file" : nullptr);
	Result done(PQgetResult(db.conn()));
	while (PGresult *extra = PQgetResult(db.conn()))
		PQclear(extra);
	if (read_error)
		throw InputError(path + ": could not read the file");
	if (PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
		if (PQstatus(db.conn()) == CONNECTION_BAD)
			throw Failure(kExitConnection, PQerrorMessage(db.conn()));
		ServerError e(done.get(), PQerrorMessage(db.conn()));
		// CONTEXT: COPY <table>, line N[, column C: "value"]
		size_t at = e.context.find(", line ");
		if (at == std::string::npos)
			throw e;
		// COPY counts physical lines, also inside quoted CSV fields that span lines
		int64_t line = std::strtoll(e.context.c_str() + at + 7, nullptr, 10);
		std::string where = path + ":" + std::to_string(line) + ": ";
		size_t col = e.context.find(", column ", at);
		if (col != std::string::npos) {
			size_t start = col + 9;
			size_t end = e.context.find(": ", start);
			where +=
			    "column " + e.context.substr(start, end == std::string::npos ? std::string::npos : end - start) + ": ";
		}
		throw InputError(where + e.what());
	}
	int64_t rows = std::strtoll(PQcmdTuples(done.get()), nullptr, 10);
	if (rows == 0)
		throw InputError(path + ": the file has no rows after the header");
	if (header_out != nullptr)
		*header_out = header;
	return {table, rows};
}

// ------------------------------------------------------------------ unknown labels

// Whether the server refused the retrain's rows for labels the deployed version does not know.
bool unknown_class_error(const ServerError &e)
{
	return (e.sqlstate == "22000" || e.sqlstate == "0A000") &&
	       std::string(e.what()).find(" the model does not know: ") != std::string::npos;
}

// After the server refused the labels of a staged CSV file: names, per unknown label (in the
// order of its first line), its rows and the file's lines holding it (the first kLines), then
// throws an InputError (exit 3; the transaction is not committed, nothing is written). When the
// lines cannot be told (a server without ml_models.classes of the deployed version, or a target
// type whose classes do not read back as that type), returns and the server's error stands.
void report_unknown_labels(Client &db, const std::string &model, const std::string &path, const std::string &table,
                           const ServerError &refusal)
{
	constexpr int kLines = 10;
	db.exec("ROLLBACK TO SAVEPOINT pg_ml_retrain");
	std::string target, type;
	for (const ModelColumn &c : model_columns(db, model))
		if (c.role == "target") {
			target = c.name;
			type = c.type;
		}
	std::vector<const char *> p;
	std::string arg = model_arg(model, p, 1);
	Result classes = db.exec("SELECT classes::text FROM " + db.schema() + "ml_models WHERE " +
	                             (is_integer(model) ? "id" : "name") + " = " + arg,
	                         p);
	if (target.empty() || classes.rows() != 1 || classes.null(0, 0))
		return;
	std::string known = classes.str(0, 0);
	// row n of the staged table is the file's data record n (COPY appends the rows in order)
	std::string sql = "SELECT s.t::pg_catalog.text, pg_catalog.count(*), pg_catalog.min(s.n), "
	                  "pg_catalog.array_to_string((pg_catalog.array_agg(s.n ORDER BY s.n))[1:" +
	                  std::to_string(kLines) +
	                  "], ' ') "
	                  "FROM (SELECT pg_catalog.row_number() OVER (ORDER BY ctid) AS n, " +
	                  db.quote_ident(target) + " AS t FROM pg_temp." + db.quote_ident(table) +
	                  ") s WHERE s.t IS NOT NULL AND NOT (s.t OPERATOR(pg_catalog.=) ANY (ARRAY("
	                  "SELECT pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb))::" +
	                  type + "[])) GROUP BY s.t ORDER BY 3";
	db.exec("SAVEPOINT pg_ml_labels");
	Result r;
	try {
		r = db.exec(sql, {known.c_str()});
	} catch (const ServerError &) {
		db.exec("ROLLBACK TO SAVEPOINT pg_ml_labels");
		return;
	}
	if (r.rows() == 0)
		return;
	// the records' physical lines (quoted fields may span lines)
	std::vector<std::vector<int64_t>> records(static_cast<size_t>(r.rows()));
	std::set<int64_t> wanted;
	for (int i = 0; i < r.rows(); i++) {
		std::string list = r.str(i, 3);
		for (size_t at = 0; at < list.size();) {
			size_t end = list.find(' ', at);
			int64_t n = std::strtoll(list.substr(at, end - at).c_str(), nullptr, 10);
			records[static_cast<size_t>(i)].push_back(n);
			wanted.insert(n);
			at = end == std::string::npos ? list.size() : end + 1;
		}
	}
	std::map<int64_t, int64_t> lines = csv_record_lines(path, wanted);
	// (a line break inside a label is shown as \n, so each label stays on its line)
	auto quoted = [](const std::string &s) {
		std::string q = "\"";
		for (char c : s)
			q += c == '\n' ? std::string("\\n") : c == '\r' ? std::string("\\r") : std::string(1, c);
		return q + "\"";
	};
	std::string msg = path + ": column " + quoted(target) + " holds " +
	                  (r.rows() == 1 ? std::string("a class") : std::to_string(r.rows()) + " classes") + " model " +
	                  quoted(model) + " does not know; nothing was written";
	for (int i = 0; i < r.rows(); i++) {
		int64_t rows = std::strtoll(r.str(i, 1).c_str(), nullptr, 10);
		const std::vector<int64_t> &recs = records[static_cast<size_t>(i)];
		msg +=
		    "\n  " + quoted(r.str(i, 0)) + " (" + std::to_string(rows) + (rows == 1 ? " row): line" : " rows): lines");
		for (size_t j = 0; j < recs.size(); j++) {
			auto it = lines.find(recs[j]);
			msg += (j ? ", " : " ") + (it != lines.end() ? std::to_string(it->second) : "?");
		}
		if (rows > static_cast<int64_t>(recs.size()))
			msg += " and " + std::to_string(rows - static_cast<int64_t>(recs.size())) + " more";
	}
	if (!refusal.detail.empty())
		msg += "\nDETAIL:  " + refusal.detail;
	if (refusal.sqlstate == "0A000")
		msg += "\nHINT:  An incremental retrain cannot add a class: retrain with --mode refit --allow-new-classes "
		       "on the rows the model learned from and the new ones (--keep TABLE) to train a version with the new "
		       "classes.";
	else if (refusal.hint.find("mode => 'refit'") != std::string::npos)
		msg += "\nHINT:  Correct the labels, or retrain with --mode refit --allow-new-classes on the rows the model "
		       "learned from and the new ones (--keep TABLE) to train a version with the new classes.";
	else
		msg += "\nHINT:  Correct the labels, or retrain with --allow-new-classes to train a version with the new "
		       "classes.";
	throw InputError(msg);
}

// ------------------------------------------------------------------ commands

// A text[] value in PostgreSQL's array syntax (each item quoted), for a bound parameter.
std::string array_literal(const std::vector<std::string> &items)
{
	std::string out = "{";
	for (size_t i = 0; i < items.size(); i++) {
		out += i ? ",\"" : "\"";
		for (char c : items[i]) {
			if (c == '"' || c == '\\')
				out += '\\';
			out += c;
		}
		out += '"';
	}
	return out + "}";
}

bool is_number(const std::string &s, bool integer)
{
	if (s.empty())
		return false;
	char *end = nullptr;
	errno = 0;
	if (integer)
		std::strtol(s.c_str(), &end, 10);
	else
		std::strtod(s.c_str(), &end);
	return errno == 0 && *end == '\0';
}

// train's options and the ml_train arguments they are passed as (bound parameters, cast).
struct TrainOption {
	const char *option, *argument, *cast;
};
const TrainOption kTrainOptions[] = {
    {"algorithm", "algorithm", "text"},
    {"task", "task", "text"},
    {"name", "name", "text"},
    {"features", "features", "text[]"},
    {"exclude", "exclude", "text[]"},
    {"hyperparams", "hyperparams", "jsonb"},
    {"preprocess", "preprocess", "jsonb"},
    {"test-size", "test_size", "float8"},
    {"seed", "seed", "int4"},
    {"deploy-metric", "deploy_metric", "text"},
    {"search", "search", "text"},
    {"search-params", "search_params", "jsonb"},
    {"search-args", "search_args", "jsonb"},
    {"group-by", "group_by", "text[]"},
    {"group-fallback", "group_fallback", "text"},
};

// The ml_train call of train's options; values (kept alive by `storage`) go to params.
std::string train_call(const Args &a, std::vector<std::string> &storage, std::vector<const char *> &params)
{
	require(a, "relation");
	if (a.has("seed") && !is_number(a.opt("seed"), true))
		throw UsageError("--seed must be an integer, not \"" + a.opt("seed") + "\"", a.command);
	if (a.has("test-size") && !is_number(a.opt("test-size"), false))
		throw UsageError("--test-size must be a number, not \"" + a.opt("test-size") + "\"", a.command);
	storage.reserve(sizeof(kTrainOptions) / sizeof(kTrainOptions[0]));
	params = {a.opt("relation").c_str(), a.opt_or_null("target")};
	std::string call = "relation => $1, target => $2";
	for (const auto &o : kTrainOptions) {
		if (!a.has(o.option))
			continue;
		const bool list = std::string(o.cast) == "text[]";
		storage.push_back(list ? array_literal(split_list(o.option, a.opt(o.option))) : a.opt(o.option));
		params.push_back(storage.back().c_str());
		call += std::string(", ") + o.argument + " => $" + std::to_string(params.size()) + "::pg_catalog." + o.cast;
	}
	return call;
}

int cmd_train(Client &db, const Args &a)
{
	std::vector<std::string> storage;
	std::vector<const char *> p;
	std::string call = train_call(a, storage, p);
	Result r = db.exec("SELECT model_id, model, version, task, algorithm, metrics::text, rows_train, rows_test, "
	                   "deployed FROM " +
	                       db.schema() + "ml_train(" + call + ")",
	                   p);
	std::printf("Trained model \"%s\" (id %s), version %s: %s by %s\n", r.str(0, 1).c_str(), r.str(0, 0).c_str(),
	            r.str(0, 2).c_str(), r.str(0, 3).c_str(), r.str(0, 4).c_str());
	std::printf("Rows: %s for training, %s held out for testing\n", r.str(0, 6).c_str(), r.str(0, 7).c_str());
	std::string metrics = r.str(0, 5);
	Result m = db.exec("SELECT key, value FROM pg_catalog.jsonb_each($1::pg_catalog.jsonb) "
	                   "WHERE pg_catalog.jsonb_typeof(value) = 'number'",
	                   {metrics.c_str()});
	if (r.str(0, 7) == "0") // metrics_from 'train' (read from rows_test: a 0.2.0 server has no metrics_from)
		std::printf("Metrics (training rows: test_size 0 held none out, so these are not test metrics):\n");
	else
		std::printf("Metrics (test rows):\n");
	for (int i = 0; i < m.rows(); i++)
		std::printf("  %-12s %s\n", m.str(i, 0).c_str(), m.str(i, 1).c_str());
	std::printf("Deployed: %s\n", r.str(0, 8) == "t" ? "yes" : "no");
	return kExitOk;
}

// --keep TABLE: appends the staged rows' model columns to TABLE (created with those columns and
// the model's types when it does not exist); returns TABLE's qualified name.
std::string keep_rows(Client &db, const std::string &model, const std::string &staged, const std::string &keep)
{
	Result name = db.exec("SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p), '.' ORDER BY o) "
	                      "FROM pg_catalog.unnest(pg_catalog.parse_ident($1)) WITH ORDINALITY AS u(p, o)",
	                      {keep.c_str()});
	std::string table = name.str(0, 0);
	std::vector<ModelColumn> cols = model_columns(db, model);
	std::string list, ddl;
	for (size_t i = 0; i < cols.size(); i++) {
		list += (i ? ", " : "") + db.quote_ident(cols[i].name);
		ddl += (i ? ", " : "") + db.quote_ident(cols[i].name) + " " + cols[i].type;
	}
	Result exists = db.exec("SELECT pg_catalog.to_regclass($1) IS NOT NULL", {table.c_str()});
	if (exists.str(0, 0) != "t") {
		db.exec("CREATE TABLE " + table + " (" + ddl + ")");
		if (!db.quiet())
			std::fprintf(stderr, "created table %s for the uploaded rows\n", table.c_str());
	}
	Result ins = db.exec("INSERT INTO " + table + " (" + list + ") SELECT " + list + " FROM " + staged);
	if (!db.quiet())
		std::fprintf(stderr, "%s rows appended to %s\n", PQcmdTuples(ins.get()), table.c_str());
	Result q = db.exec("SELECT pg_catalog.to_regclass($1)::pg_catalog.text", {table.c_str()});
	return q.str(0, 0);
}

int cmd_retrain(Client &db, const Args &a)
{
	require(a, "model");
	if (a.has("csv") == a.has("relation"))
		throw UsageError("give either --csv FILE or --relation REL", a.command);
	if (a.has("keep") && !a.has("csv"))
		throw UsageError("--keep goes with --csv", a.command);
	const std::string &model = a.opt("model");
	db.exec("BEGIN");
	std::string relation, staged_table;
	int64_t rows = -1;
	if (a.has("csv")) {
		auto staged = stage_csv(db, model, a.opt("csv"), csv_format(a), true, false, nullptr);
		staged_table = staged.first;
		relation = "pg_temp." + db.quote_ident(staged.first);
		rows = staged.second;
		db.progress().set_total(rows);
		if (!db.quiet())
			std::fprintf(stderr, "%s: %lld rows staged\n", a.opt("csv").c_str(), static_cast<long long>(rows));
		if (a.has("keep"))
			relation = keep_rows(db, model, relation, a.opt("keep"));
	} else {
		relation = a.opt("relation");
	}
	std::vector<const char *> p;
	std::string arg = model_arg(model, p, 1);
	p.push_back(relation.c_str());
	std::string call = arg + ", $2";
	if (a.has("mode")) {
		p.push_back(a.opt("mode").c_str());
		call += ", mode => $" + std::to_string(p.size()) + "::pg_catalog.text";
	}
	if (a.has("deploy")) {
		p.push_back(a.opt("deploy").c_str());
		call += ", deploy => $" + std::to_string(p.size()) + "::pg_catalog.text";
	}
	if (a.has("allow-new-classes"))
		call += ", allow_new_classes => true";
	// a refusal of the file's labels is reported with their lines (the staged rows stay readable
	// after a rollback to the savepoint)
	if (!staged_table.empty())
		db.exec("SAVEPOINT pg_ml_retrain");
	Result r;
	try {
		r = db.exec("SELECT r.model_id, r.version, r.parent_version, r.mode, r.rows_train, r.rows_test, "
		            "r.metrics::text, r.previous_metrics::text, r.deployed, r.reason, m.name, r.learned "
		            "FROM " +
		                db.schema() + "ml_retrain(" + call +
		                ") r "
		                "LEFT JOIN " +
		                db.schema() + "ml_models m ON m.id = r.model_id",
		            p);
	} catch (const ServerError &e) {
		if (!staged_table.empty() && unknown_class_error(e))
			report_unknown_labels(db, model, a.opt("csv"), staged_table, e); // throws
		throw;
	}
	std::string metrics = r.str(0, 6), previous = r.null(0, 7) ? "{}" : r.str(0, 7);
	Result side =
	    db.exec("SELECT n.key, n.value::text, p.value::text FROM pg_catalog.jsonb_each($1::pg_catalog.jsonb) n "
	            "LEFT JOIN pg_catalog.jsonb_each($2::pg_catalog.jsonb) p ON p.key = n.key "
	            "WHERE pg_catalog.jsonb_typeof(n.value) = 'number' AND n.key <> 'rows'",
	            {metrics.c_str(), previous.c_str()});
	db.exec("COMMIT");

	std::string name = r.str(0, 10).empty() ? model : r.str(0, 10);
	std::printf("Model \"%s\" (id %s): new version %s (parent version %s), mode %s\n", name.c_str(),
	            r.str(0, 0).c_str(), r.str(0, 1).c_str(), r.str(0, 2).c_str(), r.str(0, 3).c_str());
	std::printf("Rows: %s for training, %s held out for testing\n", r.str(0, 4).c_str(), r.str(0, 5).c_str());
	std::printf("Learned: %s\n", r.str(0, 11).c_str());
	std::printf("Metrics on the %s rows:\n  %-12s %-22s %s\n", r.str(0, 5) != "0" ? "held-out" : "training", "metric",
	            ("version " + r.str(0, 1)).c_str(), r.null(0, 7) ? "" : ("version " + r.str(0, 2)).c_str());
	for (int i = 0; i < side.rows(); i++)
		std::printf("  %-12s %-22s %s\n", side.str(i, 0).c_str(), side.str(i, 1).c_str(), side.str(i, 2).c_str());
	std::printf("Deployed: %s (%s)\n", r.str(0, 8) == "t" ? "yes" : "no", r.str(0, 9).c_str());
	return kExitOk;
}

// A column name not among the file's: name, else name_, name__ ...
std::string unused_name(std::string name, const std::vector<std::string> &header)
{
	for (bool clash = true; clash;) {
		clash = false;
		for (const auto &h : header)
			if (h == name) {
				name += "_";
				clash = true;
			}
	}
	return name;
}

// The model's task and, for a classifier, its deployed version's classes (ml_predict_proba's order).
std::string model_task(Client &db, const std::string &model, std::vector<std::string> *classes)
{
	std::vector<const char *> p;
	std::string arg = model_arg(model, p, 1);
	Result r =
	    db.exec("SELECT m.task, c.label FROM " + db.schema() + "ml_models m LEFT JOIN LATERAL " +
	                "pg_catalog.jsonb_array_elements_text(CASE WHEN pg_catalog.jsonb_typeof(m.classes) = 'array' "
	                "THEN m.classes END) WITH ORDINALITY AS c(label, n) ON true WHERE m." +
	                (is_integer(model) ? "id = " : "name = ") + arg + " ORDER BY c.n",
	            p);
	for (int i = 0; classes != nullptr && i < r.rows(); i++)
		if (!r.null(i, 1))
			classes->push_back(r.str(i, 1));
	return r.rows() > 0 ? r.str(0, 0) : "";
}

// Streams the result of a COPY ... TO STDOUT to out.
void copy_out(Client &db, const std::string &sql, FILE *out)
{
	db.exec(sql);
	char *buf = nullptr;
	int n;
	while ((n = PQgetCopyData(db.conn(), &buf, 0)) > 0) {
		std::fwrite(buf, 1, static_cast<size_t>(n), out);
		PQfreemem(buf);
	}
	Result done(PQgetResult(db.conn()));
	while (PGresult *extra = PQgetResult(db.conn()))
		PQclear(extra);
	if (PQresultStatus(done.get()) != PGRES_COMMAND_OK)
		throw ServerError(done.get(), PQerrorMessage(db.conn()));
	if (std::fflush(out) != 0)
		throw Failure(kExitUsage, "could not write the predictions: " + std::string(std::strerror(errno)));
}

// The file's rows (one COPY into a temporary table), predicted by one ml_predict_batch over the
// table, joined back on their line numbers and written in the file's order by one COPY TO.
int cmd_predict(Client &db, const Args &a)
{
	require(a, "model");
	require(a, "csv");
	const std::string &model = a.opt("model");
	CsvFormat fmt = csv_format(a);
	db.exec("BEGIN");
	std::vector<std::string> header, classes;
	auto staged = stage_csv(db, model, a.opt("csv"), fmt, false, true, &header);
	std::string task = model_task(db, model, &classes);
	if (a.has("proba") && (task != "classification" || classes.empty()))
		throw UsageError("--proba needs a classifier; model \"" + model + "\" is " +
		                     (task.empty() ? std::string("not known") : "a " + task + " model"),
		                 a.command);
	std::string cols;
	for (const auto &h : header)
		cols += "s." + db.quote_ident(h) + ", ";
	cols += std::string(task == "classification" ? "b.label" : "b.prediction") + " AS " +
	        db.quote_ident(unused_name("prediction", header));
	for (size_t k = 0; a.has("proba") && k < classes.size(); k++)
		cols += ", b.probabilities[" + std::to_string(k + 1) + "] AS " +
		        db.quote_ident(unused_name("proba_" + classes[k], header));
	std::string lit = is_integer(model) ? model + "::pg_catalog.int8" : db.quote_literal(model) + "::pg_catalog.text";
	std::string rel = "pg_temp." + db.quote_ident(staged.first);
	std::string sql = "COPY (SELECT " + cols + " FROM " + rel + " s JOIN " + db.schema() + "ml_predict_batch(" + lit +
	                  ", " + db.quote_literal(rel) +
	                  ", 'pg_ml_line') b ON s.pg_ml_line OPERATOR(pg_catalog.=) b.key::pg_catalog.int8 "
	                  "ORDER BY s.pg_ml_line) TO STDOUT " +
	                  copy_options(db, fmt);
	FILE *out = stdout;
	if (a.has("out")) {
		out = std::fopen(a.opt("out").c_str(), "wb");
		if (out == nullptr)
			throw Failure(kExitUsage, a.opt("out") + ": " + std::strerror(errno));
	}
	std::unique_ptr<FILE, int (*)(FILE *)> closer(out == stdout ? nullptr : out, std::fclose);
	// the join on the line numbers sorts both sides: in memory rather than on disk (this
	// transaction only; a larger setting of the caller's stays)
	db.exec("SELECT pg_catalog.set_config('work_mem', '64MB', true) WHERE pg_catalog.pg_size_bytes("
	        "pg_catalog.current_setting('work_mem')) < 64 * 1024 * 1024");
	copy_out(db, sql, out);
	db.exec("COMMIT");
	if (a.has("out") && !db.quiet())
		std::fprintf(stderr, "%s: %lld rows predicted\n", a.opt("out").c_str(), static_cast<long long>(staged.second));
	return kExitOk;
}

int cmd_models(Client &db, const Args &a)
{
	expect_positional(a, 0, "");
	Result r = db.exec("SELECT name, id, owner::text AS owner, task, algorithm, deployed_version AS deployed, " +
	                   headline("COALESCE(test_metrics, train_metrics)") +
	                   " || CASE WHEN test_metrics IS NULL THEN ' (training rows)' ELSE '' END AS metric, "
	                   "pg_catalog.to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS') AS updated FROM " +
	                   db.schema() + "ml_models ORDER BY name");
	print_table(r);
	return kExitOk;
}

int cmd_versions(Client &db, const Args &a)
{
	expect_positional(a, 1, "model name");
	const std::string &model = a.positional[0];
	std::vector<const char *> p{model.c_str()};
	std::string where = is_integer(model) ? "model_id = $1::pg_catalog.int8" : "model = $1";
	Result r = db.exec("SELECT version, parent_version AS parent, CASE WHEN deployed THEN '*' ELSE '' END AS deployed, "
	                   "algorithm, mode, rows_train, rows_test, " +
	                       headline("COALESCE(test_metrics, train_metrics)") +
	                       " || CASE WHEN test_metrics IS NULL THEN ' (training rows)' ELSE '' END"
	                       " AS metric, pg_catalog.to_char(trained_at, 'YYYY-MM-DD HH24:MI:SS') AS trained_at, "
	                       "trained_by::text AS trained_by FROM " +
	                       db.schema() + "ml_versions WHERE " + where + " ORDER BY version",
	                   p);
	if (r.rows() == 0)
		throw Failure(kExitServer,
		              "model \"" + model + "\" does not exist\nHINT:  pg_ml models lists the models you can use.");
	print_table(r);
	return kExitOk;
}

int cmd_deploy(Client &db, const Args &a)
{
	expect_positional(a, 2, a.positional.empty() ? "model name and version" : "version");
	if (!is_integer(a.positional[1]))
		throw UsageError("version must be a number, not \"" + a.positional[1] + "\"", a.command);
	std::vector<const char *> p;
	std::string arg = model_arg(a.positional[0], p, 1);
	p.push_back(a.positional[1].c_str());
	Result r = db.exec("SELECT " + db.schema() + "ml_deploy(" + arg + ", $2::pg_catalog.int4)", p);
	std::printf("Deployed version %s of model \"%s\" (version %s was deployed before)\n", a.positional[1].c_str(),
	            a.positional[0].c_str(), r.str(0, 0).c_str());
	return kExitOk;
}

int cmd_rollback(Client &db, const Args &a)
{
	expect_positional(a, 1, "model name");
	std::vector<const char *> p;
	std::string arg = model_arg(a.positional[0], p, 1);
	Result r = db.exec("SELECT " + db.schema() + "ml_rollback(" + arg + ")", p);
	std::printf("Model \"%s\" rolled back: version %s is deployed\n", a.positional[0].c_str(), r.str(0, 0).c_str());
	return kExitOk;
}

int cmd_jobs(Client &db, const Args &a)
{
	expect_positional(a, 0, "");
	const std::string &schema = db.schema();
	Result exists = db.exec("SELECT pg_catalog.to_regclass($1) IS NOT NULL", {(schema + "ml_jobs").c_str()});
	if (exists.str(0, 0) != "t")
		throw Failure(kExitServer, "the server's pg_ml has no ml_jobs view\nHINT:  Update the extension to a version "
		                           "with retraining jobs (ALTER EXTENSION pg_ml UPDATE).");
	print_table(db.exec("SELECT * FROM " + schema + "ml_jobs"));
	return kExitOk;
}

void print_failure(const Failure &f, const std::string &command)
{
	if (f.code() == kExitInput) {
		std::fprintf(stderr, "%s\n", f.what()); // FILE:LINE: ..., like a compiler
		return;
	}
	std::fprintf(stderr, "pg_ml: error: %s\n", f.what());
	if (const ServerError *s = dynamic_cast<const ServerError *>(&f)) {
		if (!s->detail.empty())
			std::fprintf(stderr, "DETAIL:  %s\n", s->detail.c_str());
		if (!s->hint.empty())
			std::fprintf(stderr, "HINT:  %s\n", s->hint.c_str());
	}
	if (f.code() == kExitUsage)
		std::fprintf(stderr, "Try \"pg_ml help%s%s\" for more information.\n", command.empty() ? "" : " ",
		             command.c_str());
}

} // namespace

int main(int argc, char **argv)
{
	Args a;
	try {
		a = parse_args(argc, argv);
		if (a.version) {
			std::printf("pg_ml %s\n", PGML_VERSION);
			return kExitOk;
		}
		if (a.command == "help" || a.help) {
			std::string topic = a.command == "help" ? (a.positional.empty() ? "" : a.positional[0]) : a.command;
			if (topic.empty())
				print_main_help();
			else if (!print_command_help(topic))
				throw UsageError("unknown command \"" + topic + "\"");
			return kExitOk;
		}
		if (a.command.empty())
			throw UsageError("no command given");
		Client db(a.conn, !a.quiet, a.quiet);
		if (a.command == "train")
			return cmd_train(db, a);
		if (a.command == "retrain")
			return cmd_retrain(db, a);
		if (a.command == "predict")
			return cmd_predict(db, a);
		if (a.command == "models")
			return cmd_models(db, a);
		if (a.command == "versions")
			return cmd_versions(db, a);
		if (a.command == "deploy")
			return cmd_deploy(db, a);
		if (a.command == "rollback")
			return cmd_rollback(db, a);
		return cmd_jobs(db, a);
	} catch (const UsageError &e) {
		print_failure(e, e.command.empty() ? a.command : e.command);
		return e.code();
	} catch (const Failure &e) {
		print_failure(e, a.command);
		return e.code();
	} catch (const std::exception &e) {
		std::fprintf(stderr, "pg_ml: error: %s\n", e.what());
		return kExitServer;
	}
}
