// pg_ml command line: `pg_ml --help` and `pg_ml COMMAND --help` (laid out like a manual page).
#include <cstdio>
#include <string>

#include "args.hpp"

namespace pgml_cli {

namespace {

const char kConnection[] =
    "Connection options (as psql's; what is not given comes from libpq's environment):\n"
    "  -h, --host=HOST        database server host or socket directory (PGHOST)\n"
    "  -p, --port=PORT        database server port (PGPORT)\n"
    "  -U, --username=USER    database user name (PGUSER)\n"
    "  -d, --dbname=DB        database name, or a conninfo string (\"host=h dbname=d\") or URI\n"
    "                         (postgresql://...) whose settings override -h, -p and -U (PGDATABASE)\n"
    "  -W, --password         ask for a password before connecting\n"
    "  -w, --no-password      never ask for a password (fail if the server wants one)\n"
    "\n"
    "General options:\n"
    "  -q, --quiet            print only results and errors: no progress, no NOTICE from the\n"
    "                         server (client_min_messages = warning), no row counts\n"
    "  -?, --help             show this help (also: pg_ml help COMMAND, pg_ml COMMAND --help)\n"
    "  -V, --version          print the version of this program and exit\n";

const char kEnvironment[] =
    "Environment:\n"
    "  PGHOST, PGPORT, PGUSER, PGDATABASE   defaults for -h, -p, -U, -d\n"
    "  PGPASSWORD, PGPASSFILE (~/.pgpass)   the password; without one, pg_ml asks on a terminal\n"
    "                                       when the server wants one\n"
    "  PGSSLMODE, PGSERVICE, PGOPTIONS ...  every other libpq variable, as for psql\n";

const char kExitCodes[] = "Exit status:\n"
                          "  0  success\n"
                          "  1  bad command line (usage)\n"
                          "  2  could not connect or authenticate (libpq's message is printed)\n"
                          "  3  bad input file (the file, line and column are named; nothing was written)\n"
                          "  4  the server reported an error (its message, detail and hint are printed)\n";

const char kCsvOptions[] =
    "  --null STRING        the string that stands for NULL in the file, as COPY's NULL: an\n"
    "                       unquoted field equal to it is NULL (default: an empty unquoted field;\n"
    "                       R writes NA: --null NA)\n"
    "  --delimiter C        the field separator, one character (default ','; \\t for a tab)\n";

struct CommandHelp {
	const char *name;
	const char *usage;
	const char *summary;
	const char *text;
	const char *examples;
};

const CommandHelp kHelp[] = {
    {"train", "pg_ml [CONNECTION] train --relation REL [--target COL] [OPTION]...",
     "train a new model on a table or view and deploy its version 1",
     "Trains a new model on a table, view or materialized view (ml_train) and deploys its\n"
     "version 1. Every option is passed to ml_train as a parameter of the same name.\n\n"
     "Options:\n"
     "  --relation REL       table, view or materialized view to train on (required)\n"
     "  --target COL         column to predict; leave out to cluster the rows\n"
     "  --algorithm NAME     linear_regression, ridge, logistic_regression, random_forest,\n"
     "                       gradient_boosting, kmeans, ... (default: auto)\n"
     "  --name NAME          model name (default: <relation>_<target>)\n"
     "  --task TASK          regression, classification or clustering (default: auto)\n"
     "  --features COLS      the feature columns, comma-separated (default: every column but\n"
     "                       the target); may be given more than once\n"
     "  --exclude COLS       columns not to use as features (ids, leaks), comma-separated\n"
     "  --hyperparams JSON   hyperparameters, e.g. '{\"max_depth\": 6}'\n"
     "  --preprocess JSON    preprocessing, e.g. '{\"impute\": \"median\", \"max_levels\": 20}'\n"
     "  --test-size F        fraction of rows held out for the test metrics (default 0.2; 0: none)\n"
     "  --seed N             seed of the split and of randomized algorithms (default 42)\n"
     "  --deploy-metric M    the metric later retrains compare (default: the task's)\n"
     "  --search KIND        grid or random: choose hyperparameters by cross-validation\n"
     "  --search-params JSON the values to search, e.g. '{\"alpha\": [0.1, 1, 10]}'\n"
     "  --search-args JSON   folds, iterations ... of the search\n"
     "  --group-by COLS      one model per group of rows (comma-separated columns)\n"
     "  --group-fallback F   error (default) or all: a group unseen in training is an error, or is\n"
     "                       predicted by a model of every training row\n",
     "  pg_ml -h db1 -U analyst -d sales train --relation houses --target price\n"
     "  pg_ml train --relation houses --target price --algorithm ridge \\\n"
     "      --exclude id,listed_at --hyperparams '{\"alpha\": 0.5}' --seed 7 --test-size 0.25\n"},
    {"retrain", "pg_ml [CONNECTION] retrain --model NAME (--csv FILE | --relation REL) [OPTION]...",
     "train a new version of a model on new rows",
     "Trains a new version of a model on new rows and prints it with its metrics next to the\n"
     "previous version's (on the same held-out rows) and whether it was deployed.\n\n"
     "With --csv, the file (CSV with a header line) is copied into a temporary table typed like the\n"
     "model's columns (header columns matched by name; extra columns ignored; a missing column is an\n"
     "error). A bad value is reported as FILE:LINE: column C: message, and nothing is written.\n"
     "The temporary table is gone after the command: algorithms that refit on all the rows a model\n"
     "learned from (logistic_regression, trees, svm) cannot read it again at the next retrain. With\n"
     "--keep TABLE the rows are appended to TABLE (created with the model's columns if it does not\n"
     "exist) and the retrain reads it; the next upload to the same TABLE adds to it, and a retrain\n"
     "reads again only what the model has not learned.\n\n"
     "Options:\n"
     "  --model NAME         model name or id (required)\n"
     "  --csv FILE           the new rows, as CSV with a header line\n"
     "  --keep TABLE         with --csv: append the rows to TABLE and retrain on it\n"
     "  --relation REL       or: a table or view with the new rows\n"
     "  --mode MODE          auto, refit or incremental (default: auto)\n"
     "  --deploy POLICY      if_better, always or never (default: if_better)\n"
     "  --allow-new-classes  labels the deployed version does not know make a version with more\n"
     "                       classes (a refit) instead of an error naming their lines\n",
     "  pg_ml -d analytics retrain --model houses_price --csv new_sales.csv\n"
     "  pg_ml retrain --model pima --csv pima.csv --null NA --deploy always\n"},
    {"predict", "pg_ml [CONNECTION] predict --model NAME --csv FILE [--proba] [--out FILE]",
     "predict every row of a CSV file",
     "Predicts every row of a CSV file: writes the file's rows with a \"prediction\" column as CSV\n"
     "(the class label for classifiers, the value for regression, the cluster for clustering), in\n"
     "the file's order. The file goes to the server with one COPY into a temporary table and is\n"
     "predicted by one set-based query (ml_predict_batch).\n\n"
     "Options:\n"
     "  --model NAME         model name or id (required)\n"
     "  --csv FILE           input rows, CSV with a header line (required)\n"
     "  --proba              classifiers: also a column per class, \"proba_<class>\", with its\n"
     "                       probability (in the order of ml_models.classes)\n"
     "  --out FILE           output file (default: standard output); it is written with the\n"
     "                       same --null and --delimiter\n",
     "  pg_ml predict --model houses_price --csv listings.csv --out priced.csv\n"
     "  pg_ml -q predict --model churn --csv customers.csv --proba > scored.csv\n"},
    {"models", "pg_ml [CONNECTION] models", "list the models",
     "Lists the models you can use, with their deployed version and its test metric.\n",
     "  pg_ml -d analytics models\n"},
    {"versions", "pg_ml [CONNECTION] versions MODEL", "list the versions of a model",
     "Lists the versions of a model: parent, mode, rows, test metric, deployed.\n", "  pg_ml versions houses_price\n"},
    {"deploy", "pg_ml [CONNECTION] deploy MODEL VERSION", "deploy a version of a model",
     "Deploys a version of a model (predictions use it from then on).\n", "  pg_ml deploy houses_price 3\n"},
    {"rollback", "pg_ml [CONNECTION] rollback MODEL", "deploy again the previous version",
     "Deploys again the version deployed before the current one.\n", "  pg_ml rollback houses_price\n"},
    {"jobs", "pg_ml [CONNECTION] jobs", "list the retraining jobs",
     "Lists the retraining jobs (the ml_jobs view of the server).\n", "  pg_ml jobs\n"},
    {"help", "pg_ml help [COMMAND]", "show help on a command", "Shows help on a command.\n", "  pg_ml help train\n"},
};

const CommandHelp *find_help(const std::string &cmd)
{
	for (const auto &h : kHelp)
		if (cmd == h.name)
			return &h;
	return nullptr;
}

} // namespace

void print_main_help()
{
	std::printf("pg_ml trains, retrains, versions and uses the models of the pg_ml PostgreSQL extension.\n\n"
	            "Usage:\n  pg_ml [OPTION]... COMMAND [ARG]...\n\nCommands:\n");
	for (const auto &h : kHelp)
		std::printf("  %-10s %s\n", h.name, h.summary);
	std::printf("\n%s\n%s\n%s\nExamples:\n"
	            "  pg_ml -h /var/run/postgresql -p 5432 -U analyst -d sales models\n"
	            "  pg_ml -d \"host=db1 dbname=sales sslmode=verify-full\" train --relation houses --target price\n"
	            "  pg_ml -d postgresql://analyst@db1/sales predict --model houses_price --csv listings.csv\n"
	            "  PGHOST=db1 PGDATABASE=sales pg_ml versions houses_price\n\n"
	            "Run \"pg_ml help COMMAND\" (or \"pg_ml COMMAND --help\") for a command's options.\n",
	            kConnection, kEnvironment, kExitCodes);
}

bool print_command_help(const std::string &command)
{
	const CommandHelp *h = find_help(command);
	if (h == nullptr)
		return false;
	std::string name = h->name;
	std::printf("pg_ml %s: %s.\n\nUsage:\n  %s\n\n%s", h->name, h->summary, h->usage, h->text);
	if (name == "retrain" || name == "predict")
		std::printf("%s", kCsvOptions);
	std::printf("\n%s\n%s\n%s\nExamples:\n%s", kConnection, kEnvironment, kExitCodes, h->examples);
	return true;
}

} // namespace pgml_cli
