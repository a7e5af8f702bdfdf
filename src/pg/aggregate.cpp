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
// Transition and combine functions update the float8[] state in place (AggCheckCallContext
// guarantees the state belongs to the aggregate); a state that must grow is returned as a
// new array, which nodeAgg copies into the aggregate's context and frees the old one.
// The state is a plain float8[] with a combine function and no serialize functions, so
// parallel query spreads the scan over workers and a distributed PostgreSQL can push the
// aggregate down to its nodes.
#include "pg_ml.hpp"

#include "../core/stats_state.hpp"
#include "progress.hpp"

extern "C" {
#include "access/parallel.h"
#include "catalog/namespace.h"
#include "utils/catcache.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "catalog/pg_proc.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(pgml_train_stats_trans);
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

/* ---- float8[] aggregate states (ml.train_stats, ml.eval_stats, ml.kmeans_step) */

ArrayType *
pgml_state_array_new(const char *aggregate, size_t len)
{
	if (len > (MaxAllocSize - ARR_OVERHEAD_NONULLS(1)) / sizeof(double))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("%s state is too large", aggregate)));
	Size bytes = ARR_OVERHEAD_NONULLS(1) + len * sizeof(double);
	ArrayType *a = static_cast<ArrayType *>(palloc(bytes));
	SET_VARSIZE(a, bytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = FLOAT8OID;
	ARR_DIMS(a)[0] = static_cast<int>(len);
	ARR_LBOUND(a)[0] = 1;
	return a;
}

double *
pgml_state_array_data(const char *state, ArrayType *a, size_t *len)
{
	if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("invalid %s state", state),
						errdetail("A state is a one-dimensional float8[] without NULLs.")));
	*len = static_cast<size_t>(ARR_DIMS(a)[0]);
	return reinterpret_cast<double *>(ARR_DATA_PTR(a));
}

void
pgml_require_aggregate(FunctionCallInfo fcinfo, const char *aggregate, const char *what)
{
	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("%s %s function called outside an aggregate", aggregate, what)));
}


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

void
pgml_read_row_args(FunctionCallInfo fcinfo, PgmlRowArgs *args, int num_arg, int cat_arg, const char *fname)
{
	ArrayType *na = row_array_arg(fcinfo, num_arg, args->nnum, FLOAT8OID, fname, "numeric");
	ArrayType *ca = row_array_arg(fcinfo, cat_arg, args->ncat, TEXTOID, fname, "categorical");
	/* the elements in place: float8 values one after another, text values aligned to int,
	 * NULL elements only in the bitmap (as array_iter_next walks them) */
	const double *nd = na != nullptr ? reinterpret_cast<const double *>(ARR_DATA_PTR(na)) : nullptr;
	const bits8 *nbits = na != nullptr ? ARR_NULLBITMAP(na) : nullptr;
	const char *cp = ca != nullptr ? ARR_DATA_PTR(ca) : nullptr;
	const bits8 *cbits = ca != nullptr ? ARR_NULLBITMAP(ca) : nullptr;
	int ni = 0, ci = 0;
	for (int i = 0; i < args->nfeat; i++) {
		if (!args->categorical[i]) {
			bool isnull = nbits != nullptr && (nbits[ni / 8] & (1 << (ni % 8))) == 0;
			ni++;
			args->isnull[i] = isnull;
			if (!isnull)
				args->num[i] = *nd++;
		} else {
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

extern "C" PGDLLEXPORT Datum
pgml_stats_transfn(PG_FUNCTION_ARGS)
{
	return removed_function("ml_train_stats");
}

extern "C" PGDLLEXPORT Datum
pgml_row_draw(PG_FUNCTION_ARGS)
{
	return removed_function("ml_row_draw");
}

extern "C" PGDLLEXPORT Datum
pgml_row_band(PG_FUNCTION_ARGS)
{
	return removed_function("ml_row_band");
}

extern "C" PGDLLEXPORT Datum
pgml_eval_transfn(PG_FUNCTION_ARGS)
{
	return removed_function("ml_eval_stats");
}

extern "C" PGDLLEXPORT Datum
pgml_kmeans_step_transfn(PG_FUNCTION_ARGS)
{
	return removed_function("ml_kmeans_step");
}

namespace {

// state, params, target, target_level, num_features, cat_features
constexpr int kTargetArg = 2, kNumArg = 4, kCatArg = 5;

// Per call site (fn_extra): the parameters, row buffers, and the shape of the last state
// this function checked (states are only ever our own results afterwards).
struct TransCache {
	pgml::stats::Params *params; // owned through pgml_own on fn_mcxt
	PgmlRowArgs args;
	int64 progress_rows;   // rows since the last progress report (leader only)
	const double *checked; // data pointer of the last checked state
	size_t checked_len;
	pgml::stats::Shape shape;
};

void
delete_params(void *p)
{
	delete static_cast<pgml::stats::Params *>(p);
}

TransCache *
trans_cache(FunctionCallInfo fcinfo)
{
	TransCache *tc = static_cast<TransCache *>(fcinfo->flinfo->fn_extra);
	if (tc != nullptr)
		return tc;
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
	tc = static_cast<TransCache *>(palloc0(sizeof(TransCache)));
	pgml::stats::Params *params = nullptr;
	PGML_CORE(params = new pgml::stats::Params(pgml::stats::Params::decode(pd, pn)));
	pgml_own(fcinfo->flinfo->fn_mcxt, params, delete_params);
	tc->params = params;
	pgml_row_args_init(&tc->args, params->nfeat, params->categorical.data());
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = tc;
	return tc;
}

// The shape of a state, checked once per state the function has not seen before.
const pgml::stats::Shape &
checked_shape(TransCache *tc, const double *data, size_t len)
{
	if (data != tc->checked || len != tc->checked_len) {
		pgml::stats::Shape s;
		PGML_CORE(s = pgml::stats::shape_of(data, len));
		tc->shape = s;
		tc->checked = data;
		tc->checked_len = len;
	}
	return tc->shape;
}

// One result group of the statistics query.
struct GroupRef {
	int nfeatures;
	const char **levels; // per feature; NULL for numeric features and NULL levels
	ArrayType *state;
};

/* Receives the groups of the statistics query: keeps each group's levels and a copy of its
 * state, and has the trainer count the levels of its training rows (note_stats_group). */
struct GroupReceiver {
	DestReceiver pub; /* must be first */
	pgml::Trainer *trainer;
	const PgmlColumn *features;
	int nfeatures;
	int ncat;
	MemoryContext cxt; /* where the groups are kept */
	GroupRef *groups;
	uint64 n;
	uint64 cap;
	/* the trainer's error (a column past max_levels, a cancel): the receiver stops the query
	 * and the caller raises it after the query, without the internal query as its context */
	bool failed;
	PgmlCoreError err;
};

bool
receive_group(TupleTableSlot *slot, DestReceiver *self)
{
	GroupReceiver *r = reinterpret_cast<GroupReceiver *>(self);
	slot_getallattrs(slot);
	MemoryContext old = MemoryContextSwitchTo(r->cxt);
	if (r->n == r->cap) {
		r->cap *= 2;
		r->groups = static_cast<GroupRef *>(repalloc(r->groups, sizeof(GroupRef) * r->cap));
	}
	GroupRef *g = &r->groups[r->n++];
	g->nfeatures = r->nfeatures;
	g->levels = pgml_group_levels(slot, r->features, r->nfeatures);
	g->state = nullptr;
	if (!slot->tts_isnull[r->ncat])
		g->state = DatumGetArrayTypePCopy(slot->tts_values[r->ncat]);
	MemoryContextSwitchTo(old);
	if (g->state != nullptr &&
		!pgml_note_stats_group(r->trainer, g->levels, r->nfeatures, g->state, "train_stats", &r->err)) {
		r->failed = true;
		return false; /* stops the query */
	}
	return true;
}

void
group_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	GroupReceiver *r = reinterpret_cast<GroupReceiver *>(self);
	if (typeinfo->natts != r->ncat + 1)
		elog(ERROR, "pg_ml: the statistics query returned %d columns, not %d", typeinfo->natts, r->ncat + 1);
}

void
group_receiver_noop(DestReceiver *self)
{
}

int
compare_groups(const void *a, const void *b)
{
	const GroupRef *x = static_cast<const GroupRef *>(a), *y = static_cast<const GroupRef *>(b);
	return pgml_compare_levels(x->levels, y->levels, x->nfeatures);
}

} // namespace

const char **
pgml_group_levels(TupleTableSlot *slot, const PgmlColumn *features, int nfeatures)
{
	const char **levels = static_cast<const char **>(palloc0(sizeof(char *) * nfeatures));
	int k = 0;
	for (int i = 0; i < nfeatures; i++) {
		if (features[i].tc != pgml::TypeClass::Categorical)
			continue;
		if (!slot->tts_isnull[k])
			levels[i] = pgml_datum_to_cstring(&features[i], slot->tts_values[k]);
		k++;
	}
	return levels;
}

int
pgml_compare_levels(const char *const *x, const char *const *y, int nfeatures)
{
	for (int i = 0; i < nfeatures; i++) {
		const char *p = x[i], *q = y[i];
		if (p == q)
			continue;
		if (p == nullptr || q == nullptr)
			return p == nullptr ? -1 : 1;
		int c = strcmp(p, q);
		if (c != 0)
			return c;
	}
	return 0;
}

bool
pgml_note_stats_group(pgml::Trainer *trainer, const char *const *levels, int nfeatures, ArrayType *state,
					  const char *name, PgmlCoreError *err)
{
	size_t len;
	const double *data = pgml_state_array_data(name, state, &len);
	return pgml_try(err, [&]() {
		std::vector<const char *> v(levels, levels + nfeatures);
		trainer->note_stats_group(v, data, len, pgml_interrupt_pending);
	});
}

extern "C" PGDLLEXPORT Datum
pgml_train_stats_trans(PG_FUNCTION_ARGS)
{
	pgml_require_aggregate(fcinfo, "ml.train_stats", "transition");
	TransCache *tc = trans_cache(fcinfo);
	const pgml::stats::Params &p = *tc->params;

	pgml::stats::Row row;
	row.target_null = pgml_read_target_args(fcinfo, kTargetArg, p.target_categorical, &row.target, &row.target_str,
											&row.target_len, "ml.train_stats");
	pgml_read_row_args(fcinfo, &tc->args, kNumArg, kCatArg, "ml.train_stats");
	row.isnull = tc->args.isnull;
	row.num = tc->args.num;
	row.str = tc->args.str;
	row.len = tc->args.len;

	ArrayType *state;
	double *data;
	size_t len;
	if (PG_ARGISNULL(0)) {
		pgml::stats::Shape s = pgml::stats::initial_shape(p);
		state = pgml_state_array_new("ml.train_stats", s.length());
		data = reinterpret_cast<double *>(ARR_DATA_PTR(state));
		len = s.length();
		PGML_CORE(pgml::stats::init(data, s));
	} else {
		state = PG_GETARG_ARRAYTYPE_P(0);
		data = pgml_state_array_data("train_stats", state, &len);
	}
	for (;;) {
		const pgml::stats::Shape &s = checked_shape(tc, data, len);
		pgml::stats::Shape need;
		size_t need_len = 0;
		PGML_CORE(need_len = pgml::stats::add_row(data, s, p, row, &need));
		if (need_len == 0)
			break;
		/* a wider state: nodeAgg copies the returned array into its context and frees the old one */
		ArrayType *grown = pgml_state_array_new("ml.train_stats", need_len);
		double *gdata = reinterpret_cast<double *>(ARR_DATA_PTR(grown));
		PGML_CORE(pgml::stats::relayout(data, len, gdata, need));
		state = grown;
		data = gdata;
		len = need_len;
	}
	/* live progress of the reading phase: the rows this process has added (a parallel
	 * worker's share is counted when the query ends) */
	if (++tc->progress_rows >= pgml_batch_rows && !IsParallelWorker()) {
		pgml_progress_rows(tc->progress_rows);
		tc->progress_rows = 0;
	}
	PG_RETURN_ARRAYTYPE_P(state);
}

extern "C" PGDLLEXPORT Datum
pgml_stats_combinefn(PG_FUNCTION_ARGS)
{
	pgml_require_aggregate(fcinfo, "ml.train_stats", "combine");
	/* strict: nodeAgg handles NULL states */
	ArrayType *a = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType *b = PG_GETARG_ARRAYTYPE_P(1);
	size_t alen, blen;
	double *ad = pgml_state_array_data("train_stats", a, &alen);
	const double *bd = pgml_state_array_data("train_stats", b, &blen);
	pgml::stats::Shape need;
	size_t need_len = 0;
	PGML_CORE({
		need = pgml::stats::merged_shape(ad, alen, bd, blen);
		need_len = need.length();
	});
	if (need_len != alen) {
		ArrayType *grown = pgml_state_array_new("ml.train_stats", need_len);
		double *gdata = reinterpret_cast<double *>(ARR_DATA_PTR(grown));
		PGML_CORE(pgml::stats::relayout(ad, alen, gdata, need));
		a = grown;
		ad = gdata;
		alen = need_len;
	}
	PGML_CORE(pgml::stats::merge(ad, alen, bd, blen));
	PG_RETURN_ARRAYTYPE_P(a);
}

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
	int ncat = 0;
	for (int i = 0; i < nfeatures; i++) {
		if (features[i].tc != pgml::TypeClass::Categorical)
			continue;
		/* byte-wise grouping: a nondeterministic collation must not merge distinct levels */
		appendStringInfo(&keys, "%s%s%s", ncat ? ", " : "", quote_identifier(features[i].name),
						 features[i].text_like ? " COLLATE pg_catalog.\"C\"" : "");
		ncat++;
	}
	initStringInfo(&sql);
	/* clustering has no target: both target arguments NULL */
	appendStringInfo(&sql, "SELECT %s%s%s.train_stats($1, ", keys.data, ncat ? ", " : "", schema);
	pgml_append_target_args(&sql, target, "");
	appendStringInfoString(&sql, ", ");
	pgml_append_row_args(&sql, features, nfeatures, "");
	appendStringInfo(&sql, ") FROM %s r", pgml_from_item(relid));
	/* (no ORDER BY: sorting would move the states around; the trainer orders the groups) */
	if (ncat > 0)
		appendStringInfo(&sql, " GROUP BY %s", keys.data);

	Datum *pd = static_cast<Datum *>(palloc(sizeof(Datum) * params->size()));
	for (size_t i = 0; i < params->size(); i++)
		pd[i] = Float8GetDatum((*params)[i]);
	ArrayType *parr = construct_array(pd, static_cast<int>(params->size()), FLOAT8OID, sizeof(double),
									  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	ParamListInfo qparams = makeParamList(1);
	qparams->params[0].value = PointerGetDatum(parr);
	qparams->params[0].isnull = false;
	qparams->params[0].pflags = PARAM_FLAG_CONST;
	qparams->params[0].ptype = FLOAT8ARRAYOID;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	/* the groups arrive at a receiver of ours, which keeps them and has the trainer count
	 * their levels as they come: a column over its max_levels stops the query then, not after
	 * every group's state has been collected */
	GroupReceiver *recv = static_cast<GroupReceiver *>(palloc0(sizeof(GroupReceiver)));
	recv->pub.receiveSlot = receive_group;
	recv->pub.rStartup = group_receiver_startup;
	recv->pub.rShutdown = group_receiver_noop;
	recv->pub.rDestroy = group_receiver_noop;
	recv->pub.mydest = DestNone;
	recv->trainer = trainer;
	recv->features = features;
	recv->nfeatures = nfeatures;
	recv->ncat = ncat;
	recv->cxt = CurrentMemoryContext;
	recv->cap = 64;
	recv->groups = static_cast<GroupRef *>(palloc0(sizeof(GroupRef) * recv->cap));
	SPIExecuteOptions opts;
	memset(&opts, 0, sizeof(opts));
	opts.params = qparams;
	opts.read_only = true;
	opts.dest = &recv->pub;
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
	int rc = SPI_execute_extended(sql.data, &opts);
	AtEOXact_GUC(true, nest);
	if (recv->failed)
		pgml_raise(&recv->err);
	/* (a SELECT whose rows go to a receiver of ours reports SPI_OK_UTILITY) */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: statistics query failed: %s", SPI_result_code_string(rc));
	int64 rows = 0;
	/* the groups in level order, so the sums are added in one order */
	uint64 ngroups = recv->n;
	GroupRef *groups = recv->groups;
	qsort(groups, ngroups, sizeof(GroupRef), compare_groups);
	for (uint64 r = 0; r < ngroups; r++) {
		CHECK_FOR_INTERRUPTS();
		if (groups[r].state == nullptr)
			continue; /* no rows at all */
		size_t len;
		const double *data = pgml_state_array_data("train_stats", groups[r].state, &len);
		const char **levels = groups[r].levels;
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
