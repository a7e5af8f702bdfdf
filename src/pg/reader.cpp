// pg_ml glue: relations, column types, and reading rows in batches through SPI.
#include "pg_ml.hpp"

#include <cmath>

extern "C" {
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_enum.h"
#include "storage/bufmgr.h"
#include "utils/date.h"
#include "utils/plancache.h"
#include "utils/numeric.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/objectaddress.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parser.h"
#include "parser/scansup.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/varlena.h"
}

/* pgml_relation_oid resolves a (possibly qualified) relation name as the caller would. */
Oid
pgml_relation_oid(const char *relname)
{
	List *names = stringToQualifiedNameList(relname);
	RangeVar *rv = makeRangeVarFromNameList(names);
	Oid relid = RangeVarGetRelid(rv, NoLock, true);
	/* one rule for relations and columns (pgml_find_column): a name without quotes or dots
	 * that folding does not find is tried as it is written ('Sales' for a table "Sales") */
	if (!OidIsValid(relid) && strpbrk(relname, "\".") == nullptr)
		relid = RangeVarGetRelid(makeRangeVar(nullptr, pstrdup(relname), -1), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation \"%s\" does not exist", NameListToString(names)),
						strchr(relname, '"') == nullptr && strcmp(relname, NameListToString(names)) != 0
							? errhint("A name without double quotes is folded to lower case; quote a mixed-case name: '\"%s\"'.", relname)
							: 0));
	char kind = get_rel_relkind(relid);
	if (kind != RELKIND_RELATION && kind != RELKIND_VIEW && kind != RELKIND_MATVIEW &&
		kind != RELKIND_PARTITIONED_TABLE && kind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a table, view, materialized view or foreign table", relname)));
	return relid;
}

namespace {

int64 query_view_count = 0; /* names the temporary views of queries apart */

// Whether a source argument is a query rather than a relation name: it starts with SELECT,
// WITH, VALUES or TABLE (any case), or a parenthesis.
bool
looks_like_query(const char *source)
{
	while (scanner_isspace(*source))
		source++;
	if (*source == '(')
		return true;
	static const char *const kWords[] = {"select", "with", "values", "table"};
	for (const char *w : kWords) {
		size_t n = strlen(w);
		if (pg_strncasecmp(source, w, n) == 0 && (source[n] == '\0' || scanner_isspace(source[n]) || source[n] == '('))
			return true;
	}
	return false;
}

} // namespace

/*
 * pgml_source_oid: the relation a source argument names (pgml_relation_oid), or for a query
 * (looks_like_query) a temporary view of it, made with the caller's rights in the caller's
 * transaction, as `CREATE TEMP VIEW ... AS <query>` would be: the query runs as any query the
 * caller writes. It must be one SELECT statement (42601 otherwise). *display is what messages
 * call the source.
 */
Oid
pgml_source_oid(const char *source, const char **display, bool *is_query)
{
	*display = source;
	*is_query = looks_like_query(source);
	if (!*is_query) {
		Oid relid = pgml_relation_oid(source);
		if (strchr(source, '"') != nullptr)
			*display = get_rel_name(relid); /* messages name the relation, not '""Sales""' */
		return relid;
	}
	/* a name of this session's temporary schema no other session sees: a counter suffices */
	char *name = psprintf("pgml_query_" INT64_FORMAT, ++query_view_count);
	char *sql = psprintf("CREATE TEMPORARY VIEW %s AS %s", quote_identifier(name), source);
	/* exactly one statement, a view of one query: nothing can follow the query */
	List *parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(parsed) != 1 || !IsA(linitial_node(RawStmt, parsed)->stmt, ViewStmt) ||
		!IsA(castNode(ViewStmt, linitial_node(RawStmt, parsed)->stmt)->query, SelectStmt))
		ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR), errmsg("the source query must be one SELECT statement"),
						errhint("Pass a table or view name, or one query such as 'SELECT * FROM sales WHERE year = 2024'.")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	int rc = SPI_execute(sql, false, 0);
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: creating the source view failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	CommandCounterIncrement();
	*display = "query";
	return RangeVarGetRelid(makeRangeVar(pstrdup("pg_temp"), name, -1), NoLock, false);
}

/* pgml_source_drop drops the temporary view pgml_source_oid made for a query, at the end of
 * a call that succeeded (an error rolls it back with the transaction). */
void
pgml_source_drop(Oid relid)
{
	ObjectAddress obj;
	ObjectAddressSet(obj, RelationRelationId, relid);
	performDeletion(&obj, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
}

char *
pgml_relation_sql_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

const char *
pgml_type_name(Oid type)
{
	return format_type_be(type);
}

/* numeric to float8 as training and prediction read it (NaN and +-Infinity kept as such) */
double
pgml_numeric_to_double(Datum d, bool *overflow)
{
	double v = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
	*overflow = std::isinf(v) && !numeric_is_inf(DatumGetNumeric(d));
	return v;
}

/* pgml_classify_type maps a type to its use (DESIGN.md "Data handling"). */
bool
pgml_classify_type(Oid type, PgmlColumn *col)
{
	Oid base = getBaseType(type);
	col->type = type;
	col->basetype = base;
	col->outfunc = InvalidOid;
	col->text_like = false;
	switch (base) {
	case INT2OID:
	case INT4OID:
	case INT8OID:
	case FLOAT4OID:
	case FLOAT8OID:
	case NUMERICOID:
		col->tc = pgml::TypeClass::Numeric;
		return true;
	case BOOLOID:
		col->tc = pgml::TypeClass::Boolean;
		return true;
	case DATEOID:
	case TIMESTAMPOID:
	case TIMESTAMPTZOID:
		col->tc = pgml::TypeClass::Temporal;
		return true;
	case TEXTOID:
	case VARCHAROID:
	case BPCHAROID:
		col->tc = pgml::TypeClass::Categorical;
		col->text_like = true;
		return true;
	case NAMEOID:
	case CHAROID:
		break;
	default:
		if (!type_is_enum(base))
			return false;
		break;
	}
	bool isvarlena;
	col->tc = pgml::TypeClass::Categorical;
	getTypeOutputInfo(base, &col->outfunc, &isvarlena);
	return true;
}

namespace {

bool
find_column_exact(TupleDesc desc, const char *name, PgmlColumn *col)
{
	for (int i = 0; i < desc->natts; i++) {
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		memset(col, 0, sizeof(*col));
		strlcpy(col->name, NameStr(att->attname), NAMEDATALEN);
		col->attnum = i + 1;
		col->type = att->atttypid;
		if (!pgml_classify_type(att->atttypid, col))
			col->tc = static_cast<pgml::TypeClass>(255); /* unsupported: callers check */
		return true;
	}
	return false;
}

} // namespace

/*
 * pgml_find_column: the column `name` names, by the rule relation names follow too (README,
 * "Names"): a name in double quotes is taken as it is written inside them; a name without
 * quotes is folded to lower case as SQL folds identifiers. A name that is exactly a column's
 * name (as the catalog and earlier versions give it, 'Revenue' for a column "Revenue") finds
 * that column first. col->name is the column's own name.
 */
bool
pgml_find_column(TupleDesc desc, const char *name, PgmlColumn *col)
{
	if (find_column_exact(desc, name, col))
		return true;
	/* PostgreSQL's identifier parsing: quotes stripped ("" is one), unquoted names folded */
	List *parts = NIL;
	if (!SplitIdentifierString(pstrdup(name), '.', &parts) || list_length(parts) != 1)
		return false;
	const char *parsed = static_cast<const char *>(linitial(parts));
	return strcmp(parsed, name) != 0 && find_column_exact(desc, parsed, col);
}

void
pgml_unsupported_column(const char *relname, const PgmlColumn *col)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("column \"%s\" of relation \"%s\" has unsupported type %s", col->name, relname,
						   pgml_type_name(col->type)),
					errdetail("pg_ml uses numeric, boolean, text, enum, date and timestamp columns."),
					errhint("Exclude it with exclude => ARRAY['%s'], or cast it to a supported type in a view.",
							col->name)));
}

double
pgml_datum_to_double(const PgmlColumn *col, Datum d)
{
	switch (col->basetype) {
	case INT2OID: return DatumGetInt16(d);
	case INT4OID: return DatumGetInt32(d);
	case INT8OID: return static_cast<double>(DatumGetInt64(d));
	case FLOAT4OID: return DatumGetFloat4(d);
	case FLOAT8OID: return DatumGetFloat8(d);
	case NUMERICOID: {
		bool overflow;
		double v = pgml_numeric_to_double(d, &overflow);
		/* a finite numeric beyond double precision: 22003, not "contains Infinity" */
		if (overflow)
			ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							col->name[0] ? errmsg("value of column \"%s\" is out of range for type double precision", col->name)
										 : errmsg("a feature value is out of range for type double precision"),
							errhint("Rescale the column (divide it by a constant or take its logarithm).")));
		return v;
	}
	case BOOLOID: return DatumGetBool(d) ? 1.0 : 0.0;
	case DATEOID: {
		DateADT v = DatumGetDateADT(d);
		if (DATE_NOT_FINITE(v))
			return DATE_IS_NOBEGIN(v) ? -INFINITY : INFINITY;
		return (static_cast<double>(v) + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE)) * SECS_PER_DAY;
	}
	case TIMESTAMPOID:
	case TIMESTAMPTZOID: {
		Timestamp v = DatumGetTimestamp(d);
		if (TIMESTAMP_NOT_FINITE(v))
			return TIMESTAMP_IS_NOBEGIN(v) ? -INFINITY : INFINITY;
		return static_cast<double>(v) / USECS_PER_SEC +
			   static_cast<double>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	}
	}
	elog(ERROR, "pg_ml: unexpected type %u for a numeric column", col->basetype);
	return 0;
}

char *
pgml_datum_to_cstring(const PgmlColumn *col, Datum d)
{
	if (col->text_like)
		return TextDatumGetCString(d);
	return OidOutputFunctionCall(col->outfunc, d);
}

// Rows the relation probably has: pg_class.reltuples scaled to its current size like the
// planner does, -1 when never counted (no VACUUM / ANALYZE yet) or not a table.
int64
pgml_relation_row_estimate(Oid relid)
{
	Relation rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return -1;
	int64 estimate = -1;
	double reltuples = rel->rd_rel->reltuples;
	BlockNumber relpages = rel->rd_rel->relpages;
	char kind = rel->rd_rel->relkind;
	if (reltuples >= 0) {
		if ((kind == RELKIND_RELATION || kind == RELKIND_MATVIEW) && relpages > 0)
			estimate = (int64) (reltuples / relpages * RelationGetNumberOfBlocks(rel) + 0.5);
		else
			estimate = (int64) reltuples;
	}
	relation_close(rel, AccessShareLock);
	return estimate;
}

/*
 * pgml_estimate_rows: how many rows a relation has, for algorithm => 'auto'. The planner's
 * estimate, and where that is under `exact_below` (small tables, never-analyzed tables, views
 * the planner cannot size well) an exact count that stops at exact_below + 1 rows, so it never
 * reads more than that. Runs as the caller. -1 if it cannot tell.
 */
double
pgml_estimate_rows(Oid relid, double exact_below)
{
	const char *rel = pgml_relation_sql_name(relid);
	char *sql = psprintf("SELECT 1 FROM %s", rel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	double rows = -1;
	SPIPlanPtr plan = SPI_prepare(sql, 0, NULL);
	if (plan != NULL) {
		List *stmts = SPI_plan_get_plan_sources(plan);
		CachedPlanSource *src = stmts != NIL ? static_cast<CachedPlanSource *>(linitial(stmts)) : NULL;
		CachedPlan *cp = src ? GetCachedPlan(src, NULL, NULL, NULL) : NULL;
		if (cp != NULL) {
			PlannedStmt *ps = linitial_node(PlannedStmt, cp->stmt_list);
			if (ps->planTree != NULL)
				rows = ps->planTree->plan_rows;
			ReleaseCachedPlan(cp, NULL);
		}
	}
	if (rows < 2 * exact_below) {
		char *count = psprintf("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM %s LIMIT %.0f) AS rows", rel, exact_below + 1);
		if (SPI_execute(count, true, 0) == SPI_OK_SELECT && SPI_processed == 1) {
			bool isnull;
			Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
				rows = static_cast<double>(DatumGetInt64(d));
		}
	}
	SPI_finish();
	return rows;
}

/*
 * The row reader: a DestReceiver that converts each row the executor produces straight into
 * the column buffers of the current batch (no SPI tuple table, no copy of the tuple), and
 * hands full batches to the consumer.
 */
struct BatchReceiver {
	DestReceiver pub; /* must be first */
	const PgmlColumn *features;
	int nfeatures;
	const PgmlColumn *target;
	int ncols;
	int cap;
	int n;
	int64 total;
	pgml::ColumnData *cols;
	double **num;
	char ***str;
	bool **nulls;
	MemoryContext batch_cxt; /* strings of the current batch */
	Size batch_bytes;        /* flush the batch early when its strings take more than this */
	PgmlBatchConsumer consume;
	void *arg;
};

static void
flush_batch(BatchReceiver *r)
{
	if (r->n == 0)
		return;
	pgml::Batch batch;
	batch.nrows = static_cast<size_t>(r->n);
	batch.nfeatures = static_cast<size_t>(r->nfeatures);
	batch.features = r->cols;
	batch.target = r->target ? &r->cols[r->nfeatures] : nullptr;
	r->consume(r->arg, &batch);
	MemoryContextReset(r->batch_cxt);
	r->total += r->n;
	r->n = 0;
}

static bool
receive_row(TupleTableSlot *slot, DestReceiver *self)
{
	BatchReceiver *r = reinterpret_cast<BatchReceiver *>(self);
	slot_getallattrs(slot);
	const int i = r->n;
	MemoryContext old = MemoryContextSwitchTo(r->batch_cxt);
	for (int c = 0; c < r->ncols; c++) {
		const PgmlColumn *col = c < r->nfeatures ? &r->features[c] : r->target;
		bool isnull = slot->tts_isnull[c];
		Datum d = slot->tts_values[c];
		r->nulls[c][i] = isnull;
		if (col->tc == pgml::TypeClass::Categorical)
			r->str[c][i] = isnull ? nullptr : pgml_datum_to_cstring(col, d);
		else
			r->num[c][i] = isnull ? 0.0 : pgml_datum_to_double(col, d);
	}
	MemoryContextSwitchTo(old);
	if (++r->n == r->cap || MemoryContextMemAllocated(r->batch_cxt, false) > r->batch_bytes)
		flush_batch(r);
	return true;
}

static void
receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	BatchReceiver *r = reinterpret_cast<BatchReceiver *>(self);
	if (typeinfo->natts != r->ncols)
		elog(ERROR, "pg_ml: the row query returned %d columns, not %d", typeinfo->natts, r->ncols);
}

static void
receiver_shutdown(DestReceiver *self)
{
}

static void
receiver_destroy(DestReceiver *self)
{
}

/*
 * pgml_scan_relation reads the feature and target columns of a relation with one query,
 * as the current user (privileges and row-level security apply), and hands the rows to
 * consume in batches of pgml_batch_rows. Returns the number of rows read.
 */
int64
pgml_scan_relation(Oid relid, const PgmlColumn *features, int nfeatures, const PgmlColumn *target,
				   PgmlBatchConsumer consume, void *arg)
{
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < nfeatures; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(features[i].name));
	if (target != nullptr)
		appendStringInfo(&sql, ", %s", quote_identifier(target->name));
	appendStringInfo(&sql, " FROM %s r", pgml_from_item(relid));

	BatchReceiver *r = static_cast<BatchReceiver *>(palloc0(sizeof(BatchReceiver)));
	r->pub.receiveSlot = receive_row;
	r->pub.rStartup = receiver_startup;
	r->pub.rShutdown = receiver_shutdown;
	r->pub.rDestroy = receiver_destroy;
	r->pub.mydest = DestNone;
	r->features = features;
	r->nfeatures = nfeatures;
	r->target = target;
	r->ncols = nfeatures + (target ? 1 : 0);
	/*
	 * The batch buffers are the reader's own memory next to what the trainer keeps: they get at
	 * most an eighth of pg_ml.max_memory (fewer rows per batch when the columns are many), and a
	 * batch whose strings outgrow that is handed over early.
	 */
	const Size budget = Max(static_cast<Size>(pgml_max_memory_mb) << 20, static_cast<Size>(1) << 20) / 8;
	const Size per_row = static_cast<Size>(r->ncols) * (sizeof(double) + sizeof(char *) + sizeof(bool));
	r->cap = static_cast<int>(Max(static_cast<Size>(1), Min(static_cast<Size>(pgml_batch_rows), budget / per_row)));
	r->batch_bytes = budget;
	r->consume = consume;
	r->arg = arg;
	r->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_ml batch", ALLOCSET_DEFAULT_SIZES);
	/* column buffers live for the whole scan, sized once */
	r->cols = static_cast<pgml::ColumnData *>(palloc0(sizeof(pgml::ColumnData) * r->ncols));
	r->num = static_cast<double **>(palloc0(sizeof(double *) * r->ncols));
	r->str = static_cast<char ***>(palloc0(sizeof(char **) * r->ncols));
	r->nulls = static_cast<bool **>(palloc0(sizeof(bool *) * r->ncols));
	for (int c = 0; c < r->ncols; c++) {
		const PgmlColumn *col = c < nfeatures ? &features[c] : target;
		r->nulls[c] = static_cast<bool *>(palloc(sizeof(bool) * r->cap));
		if (col->tc == pgml::TypeClass::Categorical)
			r->str[c] = static_cast<char **>(palloc(sizeof(char *) * r->cap));
		else
			r->num[c] = static_cast<double *>(palloc(sizeof(double) * r->cap));
		r->cols[c].num = r->num[c];
		r->cols[c].str = r->str[c];
		r->cols[c].isnull = r->nulls[c];
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	SPIExecuteOptions opts;
	memset(&opts, 0, sizeof(opts));
	opts.read_only = true;
	opts.dest = &r->pub;
	int rc = SPI_execute_extended(sql.data, &opts);
	/* (a SELECT whose rows go to a receiver of ours reports SPI_OK_UTILITY) */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: reading rows failed: %s", SPI_result_code_string(rc));
	flush_batch(r);
	SPI_finish();
	MemoryContextDelete(r->batch_cxt);
	return r->total;
}
