// pg_ml glue: the float8[] states of the internal aggregates (ml.train_stats: aggregate.cpp,
// ml.eval_stats: eval_aggregate.cpp, ml.kmeans_step: kmeans_aggregate.cpp), as their
// transition and combine functions share them.
//
// S is a core state's protocol (src/core/agg_state.hpp: stats::State, evalstate::State,
// kmeans_step::State). Transition and combine functions update the state in place
// (AggCheckCallContext guarantees the state belongs to the aggregate); a state that must grow
// is returned as a new array, which nodeAgg copies into the aggregate's context and frees the
// old one. With a combine function and no serialize functions, parallel query spreads the
// scan over workers and a distributed PostgreSQL can push the aggregate down to its nodes.
//
// The templates below are C-style code: every core call runs inside PGML_CORE, and the only
// C++ values on their stack while PostgreSQL may raise an error are shapes (plain structs)
// and lambdas that capture by reference.
#pragma once

#include "pg_ml.hpp"

// A new state of len doubles ("<aggregate> state is too large" beyond MaxAllocSize), palloc'd
// in the current context.
ArrayType *pgml_state_array_new(const char *aggregate, size_t len);
// A state's doubles, or "invalid <state> state" when it is not a one-dimensional float8[]
// without NULLs.
double *pgml_state_array_data(const char *state, ArrayType *a, size_t *len);
// Raises unless a transition / combine function (what) runs inside an aggregate (it updates
// its state in place).
void pgml_require_aggregate(FunctionCallInfo fcinfo, const char *aggregate, const char *what);

// The per-call-site data of a transition function (fn_extra): made by make(fcinfo) (in the
// function's memory context, fn_mcxt) on the first call, once the function is known to run
// inside an aggregate ("<aggregate> transition function called outside an aggregate" otherwise).
template <typename T>
T *
pgml_agg_transition_cache(FunctionCallInfo fcinfo, const char *aggregate, T *(*make)(FunctionCallInfo))
{
	pgml_require_aggregate(fcinfo, aggregate, "transition");
	T *c = static_cast<T *>(fcinfo->flinfo->fn_extra);
	if (c == nullptr) {
		c = make(fcinfo);
		fcinfo->flinfo->fn_extra = c;
	}
	return c;
}

namespace pgml::stats {
struct Params;
}
// ml.train_stats' parameter array (pd, pn doubles) decoded (InvalidParameter when malformed)
// into an object owned by the memory context of the function (aggregate.cpp).
const pgml::stats::Params *pgml_stats_params(FunctionCallInfo fcinfo, const double *pd, size_t pn);

// The state a transition function updates: its array and the array's doubles.
struct PgmlAggState {
	ArrayType *array;
	double *data;
	size_t len;
};

// The shape of the last state a function checked (kept in its fn_extra): a state is checked
// once, then only ever our own result comes back.
template <typename S>
struct PgmlShapeCache {
	/* the states last checked, by address (a grouped query alternates between its groups'
	 * states: one entry would check a state again at almost every row); zeroed = empty */
	static constexpr size_t kEntries = 32; /* the index below takes 5 bits */
	struct Entry {
		const double *checked;
		size_t checked_len;
		typename S::Shape shape;
	} entries[kEntries];
	Entry &entry(const double *data)
	{
		/* states are large allocations, often page-aligned: all of the address's bits count */
		return entries[(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)) * 0x9E3779B97F4A7C15ull) >> 59];
	}
};

// A new state of shape s, written by S::init.
template <typename S>
void
pgml_agg_state_new(PgmlAggState *st, const typename S::Shape &s)
{
	size_t len = 0;
	PGML_CORE(len = s.length());
	st->array = pgml_state_array_new(S::kind.aggregate, len);
	st->data = reinterpret_cast<double *>(ARR_DATA_PTR(st->array));
	st->len = len;
	PGML_CORE(S::init(st->data, s));
}

// The state of a transition function: argument 0, or for the first row a new state of the
// shape initial() gives (called inside the core guard).
template <typename S, typename Initial>
PgmlAggState
pgml_agg_state_arg(FunctionCallInfo fcinfo, Initial initial)
{
	PgmlAggState st;
	if (PG_ARGISNULL(0)) {
		typename S::Shape s;
		PGML_CORE(s = initial());
		pgml_agg_state_new<S>(&st, s);
	} else {
		st.array = PG_GETARG_ARRAYTYPE_P(0);
		st.data = pgml_state_array_data(S::kind.name, st.array, &st.len);
	}
	return st;
}

// Replaces *st by a new array of shape need (need_len doubles) holding the same state.
template <typename S>
void
pgml_agg_state_grow(PgmlAggState *st, const typename S::Shape &need, size_t need_len)
{
	ArrayType *grown = pgml_state_array_new(S::kind.aggregate, need_len);
	double *gdata = reinterpret_cast<double *>(ARR_DATA_PTR(grown));
	const double *data = st->data;
	size_t len = st->len;
	PGML_CORE(S::relayout(data, len, gdata, need));
	st->array = grown;
	st->data = gdata;
	st->len = need_len;
}

// The shape of a state, checked by S::shape_of and then verify(shape) (which may raise) when
// the cache has not seen it.
template <typename S, typename Verify>
const typename S::Shape &
pgml_agg_checked_shape(PgmlShapeCache<S> *cache, const double *data, size_t len, Verify verify)
{
	auto &e = cache->entry(data);
	if (data != e.checked || len != e.checked_len) {
		typename S::Shape s;
		PGML_CORE(s = S::shape_of(data, len));
		verify(s);
		e.shape = s;
		e.checked = data;
		e.checked_len = len;
	}
	return e.shape;
}

template <typename S>
const typename S::Shape &
pgml_agg_checked_shape(PgmlShapeCache<S> *cache, const double *data, size_t len)
{
	return pgml_agg_checked_shape(cache, data, len, [](const typename S::Shape &) {});
}

// Adds a row: add(data, shape, &need) (inside the core guard) returns 0 when done, else the
// length the state must grow to first; then the state is grown to need and the row added
// again. check(data, len) gives a state's shape (pgml_agg_checked_shape).
template <typename S, typename Check, typename Add>
void
pgml_agg_state_add(PgmlAggState *st, Check check, Add add)
{
	for (;;) {
		const typename S::Shape &s = check(st->data, st->len); /* (a reference into the cache) */
		typename S::Shape need;
		size_t need_len = 0;
		double *data = st->data;
		PGML_CORE(need_len = add(data, s, &need));
		if (need_len == 0)
			return;
		pgml_agg_state_grow<S>(st, need, need_len);
	}
}

// The same with the shapes of a cache (pgml_agg_checked_shape without a further check).
template <typename S, typename Add>
void
pgml_agg_state_add(PgmlAggState *st, PgmlShapeCache<S> *cache, Add add)
{
	pgml_agg_state_add<S>(
		st, [&](const double *data, size_t len) -> const typename S::Shape & {
			return pgml_agg_checked_shape(cache, data, len);
		},
		add);
}

// The transition function's result: the state. Every pgml_batch_rows rows (*rows counts them)
// of a leader, not a parallel worker, tick(rows) runs first (live progress, interrupts).
Datum pgml_agg_state_result(const PgmlAggState *st, int64 *rows, void (*tick)(int64 rows));

// The combine function of S's aggregate: state b merged into a (in place, or into a grown
// copy when the merged shape is wider). The functions are declared STRICT, so nodeAgg keeps
// NULL states away; called with one anyway, the other state is the result.
Datum pgml_agg_combine_nulls(FunctionCallInfo fcinfo);

#define PGML_AGG_COMBINE_FUNCTION(symbol, S)                                                       \
	extern "C" PGDLLEXPORT Datum symbol(PG_FUNCTION_ARGS) { return pgml_agg_combine<S>(fcinfo); }

template <typename S>
Datum
pgml_agg_combine(FunctionCallInfo fcinfo)
{
	pgml_require_aggregate(fcinfo, S::kind.aggregate, "combine");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return pgml_agg_combine_nulls(fcinfo);
	PgmlAggState a;
	a.array = PG_GETARG_ARRAYTYPE_P(0);
	a.data = pgml_state_array_data(S::kind.name, a.array, &a.len);
	ArrayType *b = PG_GETARG_ARRAYTYPE_P(1);
	size_t blen;
	const double *bd = pgml_state_array_data(S::kind.name, b, &blen);
	typename S::Shape need;
	size_t need_len = 0;
	PGML_CORE({
		need = S::merged_shape(a.data, a.len, bd, blen);
		need_len = need.length();
	});
	if (need_len != a.len)
		pgml_agg_state_grow<S>(&a, need, need_len);
	double *ad = a.data;
	size_t alen = a.len;
	PGML_CORE(S::merge(ad, alen, bd, blen));
	PG_RETURN_ARRAYTYPE_P(a.array);
}

// ---------------------------------------------------------------- the aggregates' queries

// A float8[] of the values (a query argument), palloc'd.
ArrayType *pgml_float8_array(const std::vector<double> *values);
// n constant query parameters of the given types and values, for SPI_execute_extended.
ParamListInfo pgml_query_params(int n, const Oid *types, const Datum *values);

// One row of a grouped statistics query (aggregate.cpp, eval_aggregate.cpp): the levels of its
// categorical GROUP BY columns (the first ncat columns) and a copy of its train_stats state
// (the last column; NULL when the group has no rows). An entry of the query starts with one.
struct PgmlGroup {
	int nfeatures;
	const char **levels; /* per feature; NULL for numeric features and NULL levels */
	ArrayType *state;
};

// The groups of such a query, collected by a DestReceiver of ours: each row becomes one entry
// of entry_size bytes in the caller's memory context, its PgmlGroup filled here and the rest
// by fill(q, slot, entry) (when given), which says whether the group holds training rows. The
// trainer counts the levels of a training group as it arrives (pgml_note_stats_group): a
// column past max_levels stops the query then, not after every group's state has been
// collected; its error is raised after the query, without the internal query as its context.
struct PgmlGroupQuery {
	DestReceiver pub; /* must be first */
	pgml::Trainer *trainer;
	const PgmlColumn *features;
	int nfeatures;
	int ncat;                  /* categorical features: the GROUP BY columns */
	const PgmlColumn *target;  /* for fill */
	int natts;                 /* the columns the query returns */
	const char *what;          /* "statistics", "class statistics": for the errors */
	const char *state_name;    /* for pgml_note_stats_group */
	size_t entry_size;
	bool (*fill)(PgmlGroupQuery *q, TupleTableSlot *slot, void *entry);
	MemoryContext cxt;
	char *entries;
	uint64 n;
	uint64 cap;
	bool failed;
	PgmlCoreError err;
};

// Appends the categorical features as GROUP BY keys ("<alias>name", comma-separated), byte-wise
// for text (a nondeterministic collation must not merge distinct levels); returns their number.
int pgml_append_group_keys(StringInfo buf, const PgmlColumn *features, int nfeatures, const char *alias);
// Orders two groups' levels (NULL first), for a deterministic order of the groups.
int pgml_compare_levels(const char *const *x, const char *const *y, int nfeatures);

PgmlGroupQuery *pgml_group_query_new(pgml::Trainer *trainer, const PgmlColumn *features, int nfeatures, int ncat,
									 int natts, const char *what, const char *state_name, size_t entry_size);
// Runs sql (read-only, with params) into q inside the caller's SPI connection, raises the
// error a note kept or the query's failure, and sorts the entries with cmp (so the trainer
// adds the groups in one order, whatever order the query returned them in).
void pgml_group_query_run(PgmlGroupQuery *q, const char *sql, ParamListInfo params,
						  int (*cmp)(const void *, const void *));
// Entry i.
static inline void *
pgml_group_entry(PgmlGroupQuery *q, uint64 i)
{
	return q->entries + i * q->entry_size;
}
