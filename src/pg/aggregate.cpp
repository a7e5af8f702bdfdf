// pg_ml glue: the training-statistics aggregate ml.train_stats (src/core/stats_state.hpp)
// and the one aggregate query ml_train runs with it; the row arguments every internal
// aggregate and function in schema ml shares.
//
//   ml.train_stats(params float8[], target float8, target_level text,
//                  num_features float8[], cat_features text[]) -> float8[]
//
// (sql/pg_ml--0.2.0--0.3.0.sql: fixed argument types in schema ml, which only the extension's
// owner can write, named schema-qualified in every query: no overload elsewhere can capture
// the call, and any number of features fits.)
//
// The transition and combine functions update the float8[] state in place, as agg_state.hpp
// describes for all three internal aggregates.
#include "pg_ml.hpp"

#include "../core/stats_state.hpp"
#include "agg_state.hpp"
#include "progress.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "utils/catcache.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "catalog/pg_proc.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(pgml_train_stats_trans);
PG_FUNCTION_INFO_V1(pgml_train_stats_trans_slots);
PG_FUNCTION_INFO_V1(pgml_stats_combinefn);
PG_FUNCTION_INFO_V1(pgml_numeric_to_float8);
PG_FUNCTION_INFO_V1(pgml_date_to_float8);
PG_FUNCTION_INFO_V1(pgml_timestamp_to_float8);
/* the 0.2.0 functions ("any" arguments), dropped by ALTER EXTENSION pg_ml UPDATE TO '0.3.0':
 * kept as symbols only because the 0.1.0 -> 0.2.0 script creates them before the update
 * drops them (a C function's symbol is checked when it is created) */
PG_FUNCTION_INFO_V1(pgml_stats_transfn);
PG_FUNCTION_INFO_V1(pgml_row_draw);
PG_FUNCTION_INFO_V1(pgml_row_band);
PG_FUNCTION_INFO_V1(pgml_eval_transfn);
PG_FUNCTION_INFO_V1(pgml_kmeans_step_transfn);
}

bool pgml_stats_aggregate = true;

/* ---- the row arguments of the internal aggregates and functions */

void
pgml_row_args_init(PgmlRowArgs *args, int nfeat, const uint8_t *categorical)
{
	args->nfeat = nfeat;
	args->categorical = categorical;
	args->ncat = 0;
	for (int i = 0; i < nfeat; i++)
		args->ncat += categorical[i] ? 1 : 0;
	args->nnum = nfeat - args->ncat;
	args->isnull = static_cast<bool *>(palloc0(sizeof(bool) * (nfeat + 1)));
	args->num = static_cast<double *>(palloc0(sizeof(double) * (nfeat + 1)));
	args->str = static_cast<const char **>(palloc0(sizeof(char *) * (nfeat + 1)));
	args->len = static_cast<size_t *>(palloc0(sizeof(size_t) * (nfeat + 1)));
}

namespace {

// The one-dimensional array argument `arg` holding `want` elements of type elemtype (NULL or
// an empty array when want is 0), or an error.
ArrayType *
row_array_arg(FunctionCallInfo fcinfo, int arg, int want, Oid elemtype, const char *fname, const char *what)
{
	ArrayType *a = PG_ARGISNULL(arg) ? nullptr : PG_GETARG_ARRAYTYPE_P(arg);
	if (a != nullptr && (ARR_NDIM(a) > 1 || ARR_ELEMTYPE(a) != elemtype))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s arguments", fname),
						errdetail("The %s features are a one-dimensional array.", what),
						errhint("%s is called by ml_train; its parameters describe the feature arrays that follow.",
								fname)));
	int n = a == nullptr ? 0 : ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if ((a == nullptr && want > 0) || n != want)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s arguments", fname),
						errdetail("The parameters describe %d %s features, but the call passes %s.", want, what,
								  a == nullptr ? "NULL" : psprintf("%d", n)),
						errhint("%s is called by ml_train; its parameters describe the feature arrays that follow.",
								fname)));
	return a;
}

} // namespace

namespace {

// The categorical features of a row from a text[] argument (its elements in place: aligned to
// int, NULL elements only in the bitmap, as array_iter_next walks them).
void
read_cat_features(ArrayType *ca, PgmlRowArgs *args)
{
	const char *cp = ca != nullptr ? ARR_DATA_PTR(ca) : nullptr;
	const bits8 *cbits = ca != nullptr ? ARR_NULLBITMAP(ca) : nullptr;
	int ci = 0;
	for (int i = 0; i < args->nfeat; i++) {
		if (!args->categorical[i])
			continue;
		bool isnull = cbits != nullptr && (cbits[ci / 8] & (1 << (ci % 8))) == 0;
		ci++;
		args->isnull[i] = isnull;
		if (!isnull) {
			args->str[i] = VARDATA_ANY(cp);
			args->len[i] = VARSIZE_ANY_EXHDR(cp);
			cp = att_addlength_pointer(cp, -1, cp);
			cp = reinterpret_cast<const char *>(att_align_nominal(cp, TYPALIGN_INT));
		}
	}
}

} // namespace

void
pgml_read_row_args(FunctionCallInfo fcinfo, PgmlRowArgs *args, int num_arg, int cat_arg, const char *fname)
{
	ArrayType *na = row_array_arg(fcinfo, num_arg, args->nnum, FLOAT8OID, fname, "numeric");
	ArrayType *ca = row_array_arg(fcinfo, cat_arg, args->ncat, TEXTOID, fname, "categorical");
	/* float8 values one after another, NULL elements only in the bitmap */
	const double *nd = na != nullptr ? reinterpret_cast<const double *>(ARR_DATA_PTR(na)) : nullptr;
	const bits8 *nbits = na != nullptr ? ARR_NULLBITMAP(na) : nullptr;
	int ni = 0;
	for (int i = 0; i < args->nfeat; i++) {
		if (args->categorical[i])
			continue;
		bool isnull = nbits != nullptr && (nbits[ni / 8] & (1 << (ni % 8))) == 0;
		ni++;
		args->isnull[i] = isnull;
		if (!isnull)
			args->num[i] = *nd++;
	}
	if (args->ncat > 0)
		read_cat_features(ca, args);
}

void
pgml_read_row_slots(FunctionCallInfo fcinfo, PgmlRowArgs *args, int cat_arg, int first_num_arg, const char *fname)
{
	if (PG_NARGS() - first_num_arg < args->nnum)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s arguments", fname),
						errdetail("The parameters describe %d numeric features, but the call has %d slots for them.",
								  args->nnum, PG_NARGS() - first_num_arg),
						errhint("%s is called by ml_train; its parameters describe the features that follow.", fname)));
	ArrayType *ca = args->ncat > 0 || !PG_ARGISNULL(cat_arg)
						? row_array_arg(fcinfo, cat_arg, args->ncat, TEXTOID, fname, "categorical")
						: nullptr;
	/* one float8 argument per numeric feature, in order (NULL padding after them) */
	const NullableDatum *slot = fcinfo->args + first_num_arg;
	if (args->ncat == 0) {
		for (int i = 0; i < args->nfeat; i++) {
			args->isnull[i] = slot[i].isnull;
			args->num[i] = slot[i].isnull ? 0 : DatumGetFloat8(slot[i].value);
		}
		return;
	}
	int ni = 0;
	for (int i = 0; i < args->nfeat; i++) {
		if (args->categorical[i])
			continue;
		args->isnull[i] = slot[ni].isnull;
		args->num[i] = slot[ni].isnull ? 0 : DatumGetFloat8(slot[ni].value);
		ni++;
	}
	read_cat_features(ca, args);
}

bool
pgml_read_target_args(FunctionCallInfo fcinfo, int target_arg, bool categorical, double *num, const char **str,
					  size_t *len, const char *fname)
{
	int arg = categorical ? target_arg + 1 : target_arg, other = categorical ? target_arg : target_arg + 1;
	if (!PG_ARGISNULL(other))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s arguments", fname),
						errdetail("The parameters describe a %s target, but the call passes a %s one.",
								  categorical ? "categorical" : "numeric", categorical ? "numeric" : "categorical"),
						errhint("%s is called by ml_train; a numeric target is passed as float8, a categorical one as text.",
								fname)));
	if (PG_ARGISNULL(arg))
		return true;
	if (categorical) {
		text *t = PG_GETARG_TEXT_PP(arg);
		*str = VARDATA_ANY(t);
		*len = VARSIZE_ANY_EXHDR(t);
	} else {
		*num = PG_GETARG_FLOAT8(arg);
	}
	return false;
}

/*
 * ml.to_float8(numeric, column name | date | timestamp | timestamptz): a value as the row reader
 * converts it (pgml_datum_to_double), for the internal aggregates' queries. A cast would differ:
 * numeric to float8 fails beyond float8's range without naming the column (the reader's 22003
 * names it), dates and timestamps have no cast.
 */
namespace {

Datum
to_float8(FunctionCallInfo fcinfo, Oid type)
{
	PgmlColumn col;
	memset(&col, 0, sizeof(col));
	col.type = col.basetype = type;
	/* the column's name, for the error of a value beyond float8's range (22003) */
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
		strlcpy(col.name, text_to_cstring(PG_GETARG_TEXT_PP(1)), sizeof(col.name));
	PG_RETURN_FLOAT8(pgml_datum_to_double(&col, PG_GETARG_DATUM(0)));
}

} // namespace

extern "C" PGDLLEXPORT Datum
pgml_numeric_to_float8(PG_FUNCTION_ARGS)
{
	return to_float8(fcinfo, NUMERICOID);
}

extern "C" PGDLLEXPORT Datum
pgml_date_to_float8(PG_FUNCTION_ARGS)
{
	return to_float8(fcinfo, DATEOID);
}

/* timestamp and timestamptz: the same representation (microseconds since 2000-01-01 UTC) */
extern "C" PGDLLEXPORT Datum
pgml_timestamp_to_float8(PG_FUNCTION_ARGS)
{
	return to_float8(fcinfo, TIMESTAMPOID);
}

namespace {

// A column as the float8 pgml_datum_to_double makes of it (numeric, boolean, temporal types):
// exact casts for integers, floats and booleans, ml.to_float8 for the others.
void
append_float8_expr(StringInfo buf, const PgmlColumn *col, const char *alias)
{
	const char *c = psprintf("%s%s", alias, quote_identifier(col->name));
	switch (col->basetype) {
	case BOOLOID:
		appendStringInfo(buf, "CAST(CAST(%s AS pg_catalog.int4) AS pg_catalog.float8)", c);
		break;
	case NUMERICOID:
		appendStringInfo(buf, "ml.to_float8(CAST(%s AS pg_catalog.numeric), %s)", c, quote_literal_cstr(col->name));
		break;
	case DATEOID:
		appendStringInfo(buf, "ml.to_float8(CAST(%s AS pg_catalog.date))", c);
		break;
	case TIMESTAMPOID:
		appendStringInfo(buf, "ml.to_float8(CAST(%s AS pg_catalog.timestamp))", c);
		break;
	case TIMESTAMPTZOID:
		appendStringInfo(buf, "ml.to_float8(CAST(%s AS pg_catalog.timestamptz))", c);
		break;
	default: /* integers and floats: exact */
		appendStringInfo(buf, "CAST(%s AS pg_catalog.float8)", c);
		break;
	}
}

// A categorical column as the text pgml_datum_to_cstring makes of it.
void
append_text_expr(StringInfo buf, const PgmlColumn *col, const char *alias)
{
	const char *c = psprintf("%s%s", alias, quote_identifier(col->name));
	if (col->basetype == BPCHAROID) /* with its padding, as the row reader reads it (a cast trims) */
		appendStringInfo(buf, "pg_catalog.textin(pg_catalog.bpcharout(%s))", c);
	else /* text and varchar as they are; enum, name and "char" through their output function */
		appendStringInfo(buf, "CAST(%s AS pg_catalog.text)", c);
}

} // namespace

void
pgml_append_row_args(StringInfo buf, const PgmlColumn *features, int nfeatures, const char *alias)
{
	for (int pass = 0; pass < 2; pass++) {
		bool cat = pass == 1;
		appendStringInfoString(buf, pass == 0 ? "ARRAY[" : ", ARRAY[");
		int n = 0;
		for (int i = 0; i < nfeatures; i++) {
			if ((features[i].tc == pgml::TypeClass::Categorical) != cat)
				continue;
			if (n++ > 0)
				appendStringInfoString(buf, ", ");
			if (cat)
				append_text_expr(buf, &features[i], alias);
			else
				append_float8_expr(buf, &features[i], alias);
		}
		appendStringInfoString(buf, cat ? "]::pg_catalog.text[]" : "]::pg_catalog.float8[]");
	}
}

/* the numeric slots of the overloads (sql/pg_ml--0.2.0--0.3.0.sql): ml.train_stats has all
 * (95 is the most it takes: FUNC_MAX_ARGS 100 with the state and 4 arguments), ml.row_draw,
 * ml.row_band, ml.eval_stats and ml.logit_step up to 64 */
static const int kStatsSlots[] = {8, 16, 32, 64, 95};

bool
pgml_append_row_slots(StringInfo buf, const PgmlColumn *features, int nfeatures, const char *alias, int max_slots)
{
	int nnum = 0, ncat = 0;
	for (int i = 0; i < nfeatures; i++)
		(features[i].tc == pgml::TypeClass::Categorical ? ncat : nnum)++;
	int slots = 0;
	for (int n : kStatsSlots)
		if (slots == 0 && n >= nnum && n <= max_slots)
			slots = n;
	if (slots == 0)
		return false;
	if (ncat == 0) {
		appendStringInfoString(buf, "NULL::pg_catalog.text[]");
	} else {
		appendStringInfoString(buf, "ARRAY[");
		int n = 0;
		for (int i = 0; i < nfeatures; i++) {
			if (features[i].tc != pgml::TypeClass::Categorical)
				continue;
			if (n++ > 0)
				appendStringInfoString(buf, ", ");
			append_text_expr(buf, &features[i], alias);
		}
		appendStringInfoString(buf, "]::pg_catalog.text[]");
	}
	for (int i = 0; i < nfeatures; i++) {
		if (features[i].tc == pgml::TypeClass::Categorical)
			continue;
		appendStringInfoString(buf, ", ");
		append_float8_expr(buf, &features[i], alias);
	}
	for (int i = nnum; i < slots; i++)
		appendStringInfoString(buf, ", NULL::pg_catalog.float8");
	return true;
}

void
pgml_append_row_call_args(StringInfo buf, const PgmlColumn *target, const PgmlColumn *features, int nfeatures,
						  const char *alias, int max_slots)
{
	pgml_append_target_args(buf, target, alias);
	appendStringInfoString(buf, ", ");
	if (!pgml_append_row_slots(buf, features, nfeatures, alias, max_slots))
		pgml_append_row_args(buf, features, nfeatures, alias);
}

void
pgml_append_target_args(StringInfo buf, const PgmlColumn *target, const char *alias)
{
	if (target == nullptr) {
		appendStringInfoString(buf, "NULL::pg_catalog.float8, NULL::pg_catalog.text");
	} else if (target->tc == pgml::TypeClass::Categorical) {
		appendStringInfoString(buf, "NULL::pg_catalog.float8, ");
		append_text_expr(buf, target, alias);
	} else {
		append_float8_expr(buf, target, alias);
		appendStringInfoString(buf, ", NULL::pg_catalog.text");
	}
}

/* ---- the 0.2.0 functions: an error if a database not yet updated calls them */

namespace {

Datum
removed_function(const char *name)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("%s was removed in pg_ml 0.3.0", name),
					errhint("Run ALTER EXTENSION pg_ml UPDATE: ml_train then uses the aggregates in schema ml.")));
	return (Datum) 0;
}

} // namespace

#define PGML_REMOVED_FUNCTION(symbol, name)                                                        \
	extern "C" PGDLLEXPORT Datum symbol(PG_FUNCTION_ARGS) { return removed_function(name); }

PGML_REMOVED_FUNCTION(pgml_stats_transfn, "ml_train_stats")
PGML_REMOVED_FUNCTION(pgml_row_draw, "ml_row_draw")
PGML_REMOVED_FUNCTION(pgml_row_band, "ml_row_band")
PGML_REMOVED_FUNCTION(pgml_eval_transfn, "ml_eval_stats")
PGML_REMOVED_FUNCTION(pgml_kmeans_step_transfn, "ml_kmeans_step")

namespace {

// state, params, target, target_level, num_features, cat_features
constexpr int kTargetArg = 2, kNumArg = 4, kCatArg = 5;
// the slots overloads: state, params, target, target_level, cat_features, numeric slots...
constexpr int kSlotCatArg = 4;

// Per call site (fn_extra): the parameters, row buffers, and the shape of the last state
// this function checked (states are only ever our own results afterwards).
struct TransCache {
	const pgml::stats::Params *params; // owned through pgml_own on fn_mcxt
	PgmlRowArgs args;
	int64 progress_rows; // rows since the last progress report (leader only)
	PgmlShapeCache<pgml::stats::State> shape;
};

void
delete_params(void *p)
{
	delete static_cast<pgml::stats::Params *>(p);
}

} // namespace

const pgml::stats::Params *
pgml_stats_params(FunctionCallInfo fcinfo, const double *pd, size_t pn)
{
	pgml::stats::Params *params = nullptr;
	PGML_CORE(params = new pgml::stats::Params(pgml::stats::Params::decode(pd, pn)));
	pgml_own(fcinfo->flinfo->fn_mcxt, params, delete_params);
	return params;
}

namespace {

TransCache *
make_trans_cache(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.train_stats parameters"),
						errdetail("The parameters are NULL."), errhint("ml.train_stats is called by ml_train; its first argument describes the feature arrays that follow.")));
	ArrayType *pa = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(pa) != 1 || ARR_HASNULL(pa))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.train_stats parameters"),
						errdetail("The parameters are a one-dimensional float8[] without NULLs."), errhint("ml.train_stats is called by ml_train; its first argument describes the feature arrays that follow.")));
	const double *pd = reinterpret_cast<const double *>(ARR_DATA_PTR(pa));
	size_t pn = static_cast<size_t>(ARR_DIMS(pa)[0]);

	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	TransCache *tc = static_cast<TransCache *>(palloc0(sizeof(TransCache)));
	tc->params = pgml_stats_params(fcinfo, pd, pn);
	pgml_row_args_init(&tc->args, tc->params->nfeat, tc->params->categorical.data());
	MemoryContextSwitchTo(old);
	return tc;
}

int
compare_groups(const void *a, const void *b)
{
	const PgmlGroup *x = static_cast<const PgmlGroup *>(a), *y = static_cast<const PgmlGroup *>(b);
	return pgml_compare_levels(x->levels, y->levels, x->nfeatures);
}

} // namespace

namespace {

/* ml.train_stats' transition: the row added to the state's moments and sample; its features
 * in two arrays (slots false) or a text[] of the categorical ones and a float8 argument per
 * numeric one (slots true: no array built per row) */
Datum
stats_trans(FunctionCallInfo fcinfo, bool slots)
{
	TransCache *tc = pgml_agg_transition_cache(fcinfo, "ml.train_stats", make_trans_cache);
	const pgml::stats::Params &p = *tc->params;

	pgml::stats::Row row;
	row.target_null = pgml_read_target_args(fcinfo, kTargetArg, p.target_categorical, &row.target, &row.target_str,
											&row.target_len, "ml.train_stats");
	if (slots)
		pgml_read_row_slots(fcinfo, &tc->args, kSlotCatArg, kSlotCatArg + 1, "ml.train_stats");
	else
		pgml_read_row_args(fcinfo, &tc->args, kNumArg, kCatArg, "ml.train_stats");
	row.isnull = tc->args.isnull;
	row.num = tc->args.num;
	row.str = tc->args.str;
	row.len = tc->args.len;

	PgmlAggState st = pgml_agg_state_arg<pgml::stats::State>(fcinfo, [&]() { return pgml::stats::initial_shape(p); });
	pgml_agg_state_add(&st, &tc->shape, [&](double *data, const pgml::stats::Shape &s, pgml::stats::Shape *need) {
		return pgml::stats::add_row(data, s, p, row, need);
	});
	/* live progress of the reading phase: the rows this process has added (a parallel
	 * worker's share is counted when the query ends) */
	return pgml_agg_state_result(&st, &tc->progress_rows, pgml_progress_rows);
}

} // namespace

extern "C" PGDLLEXPORT Datum
pgml_train_stats_trans(PG_FUNCTION_ARGS)
{
	return stats_trans(fcinfo, false);
}

extern "C" PGDLLEXPORT Datum
pgml_train_stats_trans_slots(PG_FUNCTION_ARGS)
{
	return stats_trans(fcinfo, true);
}

PGML_AGG_COMBINE_FUNCTION(pgml_stats_combinefn, pgml::stats::State)

/*
 * pgml_internal_function_schema: the OID of schema ml when it holds the extension's internal
 * function or aggregate `name` (0.3.0 on), else InvalidOid: a database whose pg_ml is older
 * (before ALTER EXTENSION pg_ml UPDATE) reads the rows instead. Only the extension's owner
 * can create objects in ml.
 */
Oid
pgml_internal_function_schema(const char *name, char prokind)
{
	Oid nsp = get_namespace_oid("ml", true);
	if (!OidIsValid(nsp))
		return InvalidOid;
	CatCList *list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(name));
	bool found = false;
	for (int i = 0; i < list->n_members && !found; i++) {
		HeapTuple tup = &list->members[i]->tuple;
		Form_pg_proc proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup));
		found = proc->pronamespace == nsp && proc->prokind == prokind;
	}
	ReleaseSysCacheList(list);
	return found ? nsp : InvalidOid;
}

/* pgml_stats_aggregate_schema: schema ml when it has train_stats, else InvalidOid */
Oid
pgml_stats_aggregate_schema(void)
{
	return pgml_internal_function_schema("train_stats", PROKIND_AGGREGATE);
}

/*
 * pgml_aggregate_relation computes the training statistics of a relation with one query,
 *   SELECT <categorical features>, ml.train_stats($1, <target>, <feature arrays>)
 *     FROM relation GROUP BY <categorical features>
 * as the current user (privileges and row-level security apply; parallel query may run it
 * on several workers), and hands the groups to the trainer in level order. Returns the rows read.
 */
int64
pgml_aggregate_relation(pgml::Trainer *trainer, Oid schema_oid, Oid relid, const PgmlColumn *features,
						int nfeatures, const PgmlColumn *target)
{
	/* the row estimate sizes the MAE sample's share per group */
	double expected = static_cast<double>(pgml_relation_row_estimate(relid));
	std::vector<double> *params = pgml_new_owned<std::vector<double>>();
	PGML_CORE(*params = trainer->stats_params(expected));

	const char *schema = quote_identifier(get_namespace_name(schema_oid)); /* ml */

	StringInfoData keys, sql;
	initStringInfo(&keys);
	int ncat = pgml_append_group_keys(&keys, features, nfeatures, "");
	initStringInfo(&sql);
	/* clustering has no target: both target arguments NULL */
	appendStringInfo(&sql, "SELECT %s%s%s.train_stats($1, ", keys.data, ncat ? ", " : "", schema);
	pgml_append_row_call_args(&sql, target, features, nfeatures, "", 95);
	appendStringInfo(&sql, ") FROM %s r", pgml_from_item(relid));
	/* (no ORDER BY: sorting would move the states around; the trainer orders the groups) */
	if (ncat > 0)
		appendStringInfo(&sql, " GROUP BY %s", keys.data);

	Oid ptype = FLOAT8ARRAYOID;
	Datum pvalue = PointerGetDatum(pgml_float8_array(params));
	ParamListInfo qparams = pgml_query_params(1, &ptype, &pvalue);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	/* the groups arrive at a receiver of ours, which keeps them and has the trainer count
	 * their levels as they come (agg_state.hpp) */
	PgmlGroupQuery *q =
		pgml_group_query_new(trainer, features, nfeatures, ncat, ncat + 1, "statistics", "train_stats", sizeof(PgmlGroup));
	/* For this query only (the settings are restored after it, and on error by the
	 * transaction): the states are large, so group them by hashing rather than by sorting
	 * them; and no JIT: the per-row work is the C transition function, which JIT cannot
	 * speed up, while on a large table (a high cost estimate) compiling, optimizing and
	 * inlining the query costs time and LLVM's memory (+10 MB per process at 10M rows: the
	 * backend's footprint would grow with the table). */
	int nest = NewGUCNestLevel();
	if (ncat > 0)
		(void)set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void)set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* the groups in level order, so the sums are added in one order */
	pgml_group_query_run(q, sql.data, qparams, compare_groups);
	AtEOXact_GUC(true, nest);
	int64 rows = 0;
	for (uint64 r = 0; r < q->n; r++) {
		CHECK_FOR_INTERRUPTS();
		const PgmlGroup *g = static_cast<const PgmlGroup *>(pgml_group_entry(q, r));
		if (g->state == nullptr)
			continue; /* no rows at all */
		size_t len;
		const double *data = pgml_state_array_data("train_stats", g->state, &len);
		const char **levels = g->levels;
		PGML_CORE({
			std::vector<const char *> v(levels, levels + nfeatures);
			trainer->add_stats_group(v, data, len, pgml_interrupt_pending);
		});
	}
	SPI_finish();
	PGML_CORE(rows = trainer->rows_read());
	pgml_progress_set_rows(rows);
	return rows;
}
