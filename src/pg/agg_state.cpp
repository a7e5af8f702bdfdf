// pg_ml glue: the float8[] aggregate states (agg_state.hpp).
#include "agg_state.hpp"

extern "C" {
#include "access/parallel.h"
}

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

Datum
pgml_agg_state_result(const PgmlAggState *st, int64 *rows, void (*tick)(int64 rows))
{
	if (++*rows >= pgml_batch_rows && !IsParallelWorker()) {
		tick(*rows);
		*rows = 0;
	}
	PG_RETURN_ARRAYTYPE_P(st->array);
}

/* A combine call with a NULL state: the other one (a copy in the aggregate's context, where
 * nodeAgg expects the state of a non-strict combine function), or NULL. */
Datum
pgml_agg_combine_nulls(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1)) {
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	MemoryContext aggcxt;
	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "pg_ml: combine function called outside an aggregate");
	MemoryContext old = MemoryContextSwitchTo(aggcxt);
	ArrayType *b = PG_GETARG_ARRAYTYPE_P_COPY(1);
	MemoryContextSwitchTo(old);
	PG_RETURN_ARRAYTYPE_P(b);
}

/* ---- the aggregates' queries */

ArrayType *
pgml_float8_array(const std::vector<double> *values)
{
	Datum *d = static_cast<Datum *>(palloc(sizeof(Datum) * (values->size() + 1)));
	for (size_t i = 0; i < values->size(); i++)
		d[i] = Float8GetDatum((*values)[i]);
	return construct_array(d, static_cast<int>(values->size()), FLOAT8OID, sizeof(double), FLOAT8PASSBYVAL,
						   TYPALIGN_DOUBLE);
}

ParamListInfo
pgml_query_params(int n, const Oid *types, const Datum *values)
{
	ParamListInfo params = makeParamList(n);
	for (int i = 0; i < n; i++) {
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	return params;
}

int
pgml_append_group_keys(StringInfo buf, const PgmlColumn *features, int nfeatures, const char *alias)
{
	int ncat = 0;
	for (int i = 0; i < nfeatures; i++) {
		if (features[i].tc != pgml::TypeClass::Categorical)
			continue;
		appendStringInfo(buf, "%s%s%s%s", ncat ? ", " : "", alias, quote_identifier(features[i].name),
						 features[i].text_like ? " COLLATE pg_catalog.\"C\"" : "");
		ncat++;
	}
	return ncat;
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

namespace {

/* The levels of a group's categorical GROUP BY columns (the first of the slot's columns), one
 * per feature (NULL for a numeric feature or a NULL level), palloc'd in the current context. */
const char **
group_levels(TupleTableSlot *slot, const PgmlColumn *features, int nfeatures)
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

/* Hands a group's state to the trainer, which counts its levels (max_levels, the memory cap)
 * as the groups arrive; false (with err set) when the trainer refused it. */
bool
note_stats_group(pgml::Trainer *trainer, const char *const *levels, int nfeatures, ArrayType *state,
				 const char *name, PgmlCoreError *err)
{
	size_t len;
	const double *data = pgml_state_array_data(name, state, &len);
	return pgml_try(err, [&]() {
		std::vector<const char *> v(levels, levels + nfeatures);
		trainer->note_stats_group(v, data, len, pgml_interrupt_pending);
	});
}

bool
group_query_receive(TupleTableSlot *slot, DestReceiver *self)
{
	PgmlGroupQuery *q = reinterpret_cast<PgmlGroupQuery *>(self);
	slot_getallattrs(slot);
	MemoryContext old = MemoryContextSwitchTo(q->cxt);
	if (q->n == q->cap) {
		q->cap *= 2;
		q->entries = static_cast<char *>(repalloc(q->entries, q->entry_size * q->cap));
	}
	void *entry = pgml_group_entry(q, q->n++);
	memset(entry, 0, q->entry_size);
	PgmlGroup *g = static_cast<PgmlGroup *>(entry);
	g->nfeatures = q->nfeatures;
	g->levels = group_levels(slot, q->features, q->nfeatures);
	const int last = q->natts - 1;
	if (!slot->tts_isnull[last])
		g->state = DatumGetArrayTypePCopy(slot->tts_values[last]);
	const bool training = q->fill == nullptr || q->fill(q, slot, entry);
	MemoryContextSwitchTo(old);
	if (g->state != nullptr && training &&
		!note_stats_group(q->trainer, g->levels, q->nfeatures, g->state, q->state_name, &q->err)) {
		q->failed = true;
		return false; /* stops the query */
	}
	return true;
}

void
group_query_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	PgmlGroupQuery *q = reinterpret_cast<PgmlGroupQuery *>(self);
	if (typeinfo->natts != q->natts)
		elog(ERROR, "pg_ml: the %s query returned %d columns, not %d", q->what, typeinfo->natts, q->natts);
}

void
group_query_noop(DestReceiver *self)
{
}

} // namespace

PgmlGroupQuery *
pgml_group_query_new(pgml::Trainer *trainer, const PgmlColumn *features, int nfeatures, int ncat, int natts,
					 const char *what, const char *state_name, size_t entry_size)
{
	PgmlGroupQuery *q = static_cast<PgmlGroupQuery *>(palloc0(sizeof(PgmlGroupQuery)));
	q->pub.receiveSlot = group_query_receive;
	q->pub.rStartup = group_query_startup;
	q->pub.rShutdown = group_query_noop;
	q->pub.rDestroy = group_query_noop;
	q->pub.mydest = DestNone;
	q->trainer = trainer;
	q->features = features;
	q->nfeatures = nfeatures;
	q->ncat = ncat;
	q->natts = natts;
	q->what = what;
	q->state_name = state_name;
	q->entry_size = entry_size;
	q->cxt = CurrentMemoryContext;
	q->cap = 64;
	q->entries = static_cast<char *>(palloc0(entry_size * q->cap));
	return q;
}

void
pgml_group_query_run(PgmlGroupQuery *q, const char *sql, ParamListInfo params, int (*cmp)(const void *, const void *))
{
	SPIExecuteOptions opts;
	memset(&opts, 0, sizeof(opts));
	opts.params = params;
	opts.read_only = true;
	opts.dest = &q->pub;
	int rc = SPI_execute_extended(sql, &opts);
	if (q->failed)
		pgml_raise(&q->err);
	/* (a SELECT whose rows go to a receiver of ours reports SPI_OK_UTILITY) */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "pg_ml: statistics query failed: %s", SPI_result_code_string(rc));
	qsort(q->entries, q->n, q->entry_size, cmp);
}
