// pg_ml glue: the Lloyd-step aggregate ml.kmeans_step (src/core/kmeans_step.hpp) and the
// scans ml_train runs with it after the statistics query (aggregate.cpp).
//
//   ml.kmeans_step(params float8[], levels text[], num_features float8[], cat_features text[])
//     -> float8[]
//
// (the row arguments as aggregate.cpp describes: fixed types, in schema ml)
// params carries the centres and each column's preprocessing, levels the kept levels of the
// categorical columns (both bound as query parameters: no user value is ever spliced into
// the SQL). The state is a fixed-size float8[] (per cluster the count and feature sums of
// the training rows, the inertia of the training and the held-out rows) that the transition
// and combine functions update in place when AggCheckCallContext says nodeAgg calls them;
// with a combine function and no internal state, parallel query spreads each scan over
// workers.
#include "pg_ml.hpp"

#include "../core/kmeans_step.hpp"
#include "agg_state.hpp"

extern "C" {
#include "catalog/pg_proc.h"
#include "utils/catcache.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pgml_kmeans_step_trans);
PG_FUNCTION_INFO_V1(pgml_kmeans_step_combinefn);
}

namespace {

constexpr int kNumArg = 3, kCatArg = 4; // state, params, levels, num_features, cat_features

#define PGML_KM_HINT "ml.kmeans_step is called by ml_train; its first argument describes the centres and the feature arrays that follow."

// Per call site (fn_extra): the step (parameters, level lookup) and the row buffers.
struct StepCache {
	pgml::kmeans_step::Step *step; // owned through pgml_own on fn_mcxt
	uint8_t *categorical;          // per column
	PgmlRowArgs args;
};

void
delete_step(void *p)
{
	delete static_cast<pgml::kmeans_step::Step *>(p);
}

StepCache *
make_step_cache(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.kmeans_step parameters"),
						errdetail("The parameters or the levels are NULL."), errhint(PGML_KM_HINT)));
	ArrayType *pa = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(pa) != 1 || ARR_HASNULL(pa))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.kmeans_step parameters"),
						errdetail("The parameters are a one-dimensional float8[] without NULLs."),
						errhint(PGML_KM_HINT)));
	const double *pd = reinterpret_cast<const double *>(ARR_DATA_PTR(pa));
	size_t pn = static_cast<size_t>(ARR_DIMS(pa)[0]);

	ArrayType *la = PG_GETARG_ARRAYTYPE_P(2);
	Datum *ld;
	bool *lnull;
	int nl;
	if (ARR_NDIM(la) > 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.kmeans_step parameters"),
						errdetail("The levels are a one-dimensional text[] without NULLs."), errhint(PGML_KM_HINT)));
	deconstruct_array(la, TEXTOID, -1, false, TYPALIGN_INT, &ld, &lnull, &nl);
	const char **lp = static_cast<const char **>(palloc0(sizeof(char *) * (nl + 1)));
	size_t *ll = static_cast<size_t *>(palloc0(sizeof(size_t) * (nl + 1)));
	for (int i = 0; i < nl; i++) {
		if (lnull[i])
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.kmeans_step parameters"),
							errdetail("The levels are a one-dimensional text[] without NULLs."),
							errhint(PGML_KM_HINT)));
		text *t = reinterpret_cast<text *>(DatumGetPointer(ld[i]));
		lp[i] = VARDATA_ANY(t);
		ll[i] = VARSIZE_ANY_EXHDR(t);
	}

	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	StepCache *sc = static_cast<StepCache *>(palloc0(sizeof(StepCache)));
	pgml::kmeans_step::Step *step = nullptr;
	PGML_CORE({
		std::vector<std::string> levels;
		for (int i = 0; i < nl; i++)
			levels.emplace_back(lp[i], ll[i]);
		step = new pgml::kmeans_step::Step(pgml::kmeans_step::Params::decode(pd, pn), levels);
	});
	pgml_own(fcinfo->flinfo->fn_mcxt, step, delete_step);
	sc->step = step;
	const int nc = static_cast<int>(step->params().columns.size());
	sc->categorical = static_cast<uint8_t *>(palloc0(sizeof(uint8_t) * (nc + 1)));
	for (int i = 0; i < nc; i++)
		sc->categorical[i] = step->params().columns[static_cast<size_t>(i)].categorical ? 1 : 0;
	pgml_row_args_init(&sc->args, nc, sc->categorical);
	MemoryContextSwitchTo(old);
	return sc;
}

} // namespace

/* ml.kmeans_step's transition: the row's nearest centre gets its count and scaled features
 * (the state is a fixed-size float8[], made for the first row) */
extern "C" PGDLLEXPORT Datum
pgml_kmeans_step_trans(PG_FUNCTION_ARGS)
{
	StepCache *sc = pgml_agg_transition_cache(fcinfo, "ml.kmeans_step", make_step_cache);
	pgml_read_row_args(fcinfo, &sc->args, kNumArg, kCatArg, "ml.kmeans_step");
	pgml::kmeans_step::Row row;
	row.isnull = sc->args.isnull;
	row.num = sc->args.num;
	row.str = sc->args.str;
	row.len = sc->args.len;

	const pgml::kmeans_step::Step *step = sc->step;
	PgmlAggState st = pgml_agg_state_arg<pgml::kmeans_step::State>(fcinfo, [&]() { return step->shape(); });
	/* the state never grows; add_row checks it against the step */
	double *data = st.data;
	size_t len = st.len;
	PGML_CORE(sc->step->add_row(data, len, row));
	PG_RETURN_ARRAYTYPE_P(st.array);
}

PGML_AGG_COMBINE_FUNCTION(pgml_kmeans_step_combinefn, pgml::kmeans_step::State)

/*
 * pgml_kmeans_steps runs the Lloyd steps of a k-means fit that the statistics query started:
 *   SELECT ml.kmeans_step($1, $2, <feature arrays>) FROM relation
 * once per step, as the current user and with the statement's snapshot (read-only SPI), so
 * every scan sees the rows the statistics scan saw. Does nothing for other algorithms.
 */
void
pgml_kmeans_steps(pgml::Trainer *trainer, Oid schema_oid, Oid relid, const PgmlColumn *features, int nfeatures)
{
	std::vector<double> *params = pgml_new_owned<std::vector<double>>();
	std::vector<std::string> *levels = pgml_new_owned<std::vector<std::string>>();
	bool more = false;
	PGML_CORE({
		*params = trainer->kmeans_step_params(levels, pgml_interrupt_pending);
		more = !params->empty();
	});
	if (!more)
		return;

	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s.kmeans_step($1, $2, ", quote_identifier(get_namespace_name(schema_oid)));
	pgml_append_row_args(&sql, features, nfeatures, "");
	appendStringInfo(&sql, ") FROM %s r", pgml_from_item(relid));

	while (more) {
		CHECK_FOR_INTERRUPTS();
		size_t np = params->size(), nl = levels->size();
		Datum *pd = static_cast<Datum *>(palloc(sizeof(Datum) * np));
		for (size_t i = 0; i < np; i++)
			pd[i] = Float8GetDatum((*params)[i]);
		Datum *ld = static_cast<Datum *>(palloc(sizeof(Datum) * (nl + 1)));
		for (size_t i = 0; i < nl; i++)
			ld[i] = PointerGetDatum(cstring_to_text_with_len((*levels)[i].data(), static_cast<int>((*levels)[i].size())));
		Oid argtypes[2] = {FLOAT8ARRAYOID, TEXTARRAYOID};
		Datum args[2] = {
			PointerGetDatum(construct_array(pd, static_cast<int>(np), FLOAT8OID, sizeof(double), FLOAT8PASSBYVAL,
											TYPALIGN_DOUBLE)),
			PointerGetDatum(construct_array(ld, static_cast<int>(nl), TEXTOID, -1, false, TYPALIGN_INT))};
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "pg_ml: SPI_connect failed");
		int rc = SPI_execute_with_args(sql.data, 2, argtypes, args, NULL, true, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "pg_ml: k-means step query failed: %s", SPI_result_code_string(rc));
		bool isnull;
		Datum sd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		const double *data = nullptr;
		size_t len = 0;
		if (!isnull)
			data = pgml_state_array_data("kmeans_step", DatumGetArrayTypeP(sd), &len);
		/* an empty relation gives NULL: the trainer reports that the rows changed */
		PGML_CORE(trainer->add_kmeans_step(data, len));
		SPI_finish();
		PGML_CORE({
			*params = trainer->kmeans_step_params(levels, pgml_interrupt_pending);
			more = !params->empty();
		});
		pfree(pd);
		pfree(ld);
	}
}

bool
pgml_kmeans_steps_available(const pgml::Trainer *trainer, Oid schema_oid)
{
	bool needed = false;
	PGML_CORE(needed = trainer->uses_kmeans_steps());
	if (!needed)
		return true;
	return OidIsValid(schema_oid) && pgml_internal_function_schema("kmeans_step", PROKIND_AGGREGATE) == schema_oid;
}
