// pg_ml glue: the training-statistics aggregate ml_train_stats (src/core/stats_state.hpp)
// and the one aggregate query ml_train runs with it.
//
//   ml_train_stats(params float8[], target "any", VARIADIC features "any") -> float8[]
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
#include "access/genam.h"
#include "access/parallel.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "catalog/pg_proc.h"
#include "utils/rel.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(pgml_stats_transfn);
PG_FUNCTION_INFO_V1(pgml_stats_combinefn);
}

bool pgml_stats_aggregate = true;

/* ---- float8[] aggregate states (ml_train_stats, ml_eval_stats, ml_kmeans_step) */

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

namespace {

constexpr int kFirstFeatureArg = 3; // state, params, target, features...

// Per call site (fn_extra): the parameters, the argument types, row buffers, and the shape of
// the last state this function checked (states are only ever our own results afterwards).
struct TransCache {
	pgml::stats::Params *params; // owned through pgml_own on fn_mcxt
	PgmlColumn target;
	PgmlColumn *cols;
	bool *isnull;
	double *num;
	const char **str;
	size_t *len;
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
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml_train_stats parameters"),
						errdetail("The parameters are NULL."), errhint("ml_train_stats is called by ml_train; its first argument describes the columns that follow.")));
	ArrayType *pa = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(pa) != 1 || ARR_HASNULL(pa))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml_train_stats parameters"),
						errdetail("The parameters are a one-dimensional float8[] without NULLs."), errhint("ml_train_stats is called by ml_train; its first argument describes the columns that follow.")));
	const double *pd = reinterpret_cast<const double *>(ARR_DATA_PTR(pa));
	size_t pn = static_cast<size_t>(ARR_DIMS(pa)[0]);

	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	tc = static_cast<TransCache *>(palloc0(sizeof(TransCache)));
	pgml::stats::Params *params = nullptr;
	PGML_CORE(params = new pgml::stats::Params(pgml::stats::Params::decode(pd, pn)));
	pgml_own(fcinfo->flinfo->fn_mcxt, params, delete_params);
	tc->params = params;
	const int nf = params->nfeat;
	if (PG_NARGS() != kFirstFeatureArg + nf)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml_train_stats parameters"),
						errdetail("The parameters describe %d features, but the call passes %d.", nf,
								  PG_NARGS() - kFirstFeatureArg),
						errhint("ml_train_stats is called by ml_train; its first argument describes the columns that follow.")));
	tc->cols = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * nf));
	tc->isnull = static_cast<bool *>(palloc0(sizeof(bool) * nf));
	tc->num = static_cast<double *>(palloc0(sizeof(double) * nf));
	tc->str = static_cast<const char **>(palloc0(sizeof(char *) * nf));
	tc->len = static_cast<size_t *>(palloc0(sizeof(size_t) * nf));
	for (int i = 0; i <= nf; i++) {
		PgmlColumn *col = i < nf ? &tc->cols[i] : &tc->target;
		Oid type = get_fn_expr_argtype(fcinfo->flinfo, i < nf ? kFirstFeatureArg + i : 2);
		bool categorical = i < nf ? params->categorical[static_cast<size_t>(i)] != 0 : params->target_categorical;
		if (!OidIsValid(type) || !pgml_classify_type(type, col) ||
			(col->tc == pgml::TypeClass::Categorical) != categorical)
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
							errmsg("argument %d of ml_train_stats has type %s, which its parameters do not describe",
								   i < nf ? kFirstFeatureArg + i + 1 : 3,
								   OidIsValid(type) ? format_type_be(type) : "unknown"),
							errdetail("The parameters say whether each feature is numeric (numeric, boolean, date or "
									  "timestamp types) or categorical (text or enum types)."),
							errhint("ml_train_stats is called by ml_train; its first argument describes the columns that follow.")));
	}
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

void
read_value(const PgmlColumn *col, Datum d, double *num, const char **str, size_t *len)
{
	if (col->tc != pgml::TypeClass::Categorical) {
		*num = pgml_datum_to_double(col, d);
	} else if (col->text_like) {
		text *t = DatumGetTextPP(d);
		*str = VARDATA_ANY(t);
		*len = VARSIZE_ANY_EXHDR(t);
	} else {
		char *s = pgml_datum_to_cstring(col, d);
		*str = s;
		*len = strlen(s);
	}
}

// The schema pg_ml is installed in (PostgreSQL 16 has get_extension_schema; 15 keeps it static).
Oid
extension_schema(void)
{
	Oid ext = get_extension_oid("pg_ml", false);
	Relation rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
	SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	Oid nsp = HeapTupleIsValid(tup) ? reinterpret_cast<Form_pg_extension>(GETSTRUCT(tup))->extnamespace : InvalidOid;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(nsp))
		elog(ERROR, "pg_ml: extension schema not found");
	return nsp;
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
	g->levels = static_cast<const char **>(palloc0(sizeof(char *) * r->nfeatures));
	g->state = nullptr;
	int k = 0;
	for (int i = 0; i < r->nfeatures; i++) {
		if (r->features[i].tc != pgml::TypeClass::Categorical)
			continue;
		if (!slot->tts_isnull[k])
			g->levels[i] = pgml_datum_to_cstring(&r->features[i], slot->tts_values[k]);
		k++;
	}
	if (!slot->tts_isnull[r->ncat])
		g->state = DatumGetArrayTypePCopy(slot->tts_values[r->ncat]);
	MemoryContextSwitchTo(old);
	if (g->state != nullptr) {
		size_t len;
		const double *data = pgml_state_array_data("train_stats", g->state, &len);
		const char **levels = g->levels;
		const int nf = r->nfeatures;
		pgml::Trainer *trainer = r->trainer;
		if (!pgml_try(&r->err, [&]() {
				std::vector<const char *> v(levels, levels + nf);
				trainer->note_stats_group(v, data, len, pgml_interrupt_pending);
			})) {
			r->failed = true;
			return false; /* stops the query */
		}
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
	for (int i = 0; i < x->nfeatures; i++) {
		const char *p = x->levels[i], *q = y->levels[i];
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

} // namespace

extern "C" PGDLLEXPORT Datum
pgml_stats_transfn(PG_FUNCTION_ARGS)
{
	pgml_require_aggregate(fcinfo, "ml_train_stats", "transition");
	TransCache *tc = trans_cache(fcinfo);
	const pgml::stats::Params &p = *tc->params;

	pgml::stats::Row row;
	row.target_null = PG_ARGISNULL(2);
	if (!row.target_null)
		read_value(&tc->target, PG_GETARG_DATUM(2), &row.target, &row.target_str, &row.target_len);
	for (int i = 0; i < p.nfeat; i++) {
		int a = kFirstFeatureArg + i;
		tc->isnull[i] = PG_ARGISNULL(a);
		if (!tc->isnull[i])
			read_value(&tc->cols[i], PG_GETARG_DATUM(a), &tc->num[i], &tc->str[i], &tc->len[i]);
	}
	row.isnull = tc->isnull;
	row.num = tc->num;
	row.str = tc->str;
	row.len = tc->len;

	ArrayType *state;
	double *data;
	size_t len;
	if (PG_ARGISNULL(0)) {
		pgml::stats::Shape s = pgml::stats::initial_shape(p);
		state = pgml_state_array_new("ml_train_stats", s.length());
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
		ArrayType *grown = pgml_state_array_new("ml_train_stats", need_len);
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
	pgml_require_aggregate(fcinfo, "ml_train_stats", "combine");
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
		ArrayType *grown = pgml_state_array_new("ml_train_stats", need_len);
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
 * pgml_stats_aggregate_schema: the schema of the installed extension's ml_train_stats, or
 * InvalidOid when it has none: a database still at version 0.1.0 (before ALTER EXTENSION
 * pg_ml UPDATE) reads the rows instead.
 */
Oid
pgml_stats_aggregate_schema(void)
{
	Oid nsp = extension_schema();
	CatCList *list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum("ml_train_stats"));
	bool found = false;
	for (int i = 0; i < list->n_members && !found; i++) {
		HeapTuple tup = &list->members[i]->tuple;
		Form_pg_proc proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup));
		found = proc->pronamespace == nsp && proc->prokind == PROKIND_AGGREGATE;
	}
	ReleaseSysCacheList(list);
	return found ? nsp : InvalidOid;
}

/*
 * pgml_aggregate_relation computes the training statistics of a relation with one query,
 *   SELECT <categorical features>, <schema_oid>.ml_train_stats($1, target, features...)
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

	const char *schema = quote_identifier(get_namespace_name(schema_oid));

	StringInfoData keys, sql;
	initStringInfo(&keys);
	int ncat = 0;
	for (int i = 0; i < nfeatures; i++) {
		if (features[i].tc != pgml::TypeClass::Categorical)
			continue;
		/* byte-wise grouping: a nondeterministic collation must not merge distinct levels */
		appendStringInfo(&keys, "%s%s%s", ncat ? ", " : "", quote_identifier(features[i].name),
						 features[i].text_like ? " COLLATE \"C\"" : "");
		ncat++;
	}
	initStringInfo(&sql);
	/* clustering has no target: a NULL of a numeric type */
	appendStringInfo(&sql, "SELECT %s%s%s.ml_train_stats($1, %s", keys.data, ncat ? ", " : "", schema,
					 target != nullptr ? quote_identifier(target->name) : "NULL::pg_catalog.float8");
	for (int i = 0; i < nfeatures; i++)
		appendStringInfo(&sql, ", %s", quote_identifier(features[i].name));
	appendStringInfo(&sql, ") FROM %s", pgml_relation_sql_name(relid));
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
