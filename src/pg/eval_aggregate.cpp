// pg_ml glue: naive Bayes through aggregates (src/core/eval_state.hpp, Trainer::add_class_group).
//
//   ml.row_draw(params float8[], target float8, target_level text, num_features float8[],
//               cat_features text[]) -> float8
//     the row's split draw (NULL for rows training skips), params as ml.train_stats's
//   ml.row_band(params float8[], lo float8, hi float8, <the row as ml.row_draw's>) -> float8
//   ml.eval_stats(params float8[], model bytea, classes text[], draw float8, cut float8,
//                 target float8, target_level text, num_features float8[], cat_features text[])
//     -> float8[]: classification metrics of a model over rows; a row with draw < cut is a test row
//     (a NaN draw: the row's ml.row_draw, computed from the model's seed and columns)
//   ml.logit_step(params float8[], model bytea, classes text[], draw float8, cut float8,
//                 target float8, target_level text, num_features float8[], cat_features text[])
//     -> float8[]: one Newton step of binary logistic regression over the training rows
//     (draw >= cut, a NaN draw as above), src/core/logit_step.hpp
// (the row arguments as aggregate.cpp describes: fixed types, in schema ml)
//
// ml_train of naive_bayes runs three queries over the relation, all plain aggregates that
// parallel query spreads over workers:
//   1. the stratified split: per class its row count (a count), then the rows' draws in a
//      narrow band around the cut (a grouped count);
//   2. SELECT <categorical features>, target, draw < cut, ml.train_stats(...) GROUP BY 1, ...
//   2b. binary logistic_regression: SELECT ml.logit_step(<coefficients>, <model>, ...) once per
//      Newton step (the first ones over a page sample, logit_steps below);
//   3. SELECT ml.eval_stats(<params>, <fitted model>, ...) (and for ml_retrain the deployed
//      model's, on the same rows).
// Duplicate rows whose equal draws fall on both sides of a class's cut cannot be split as the
// row reader splits them: then the relation is read by the row reader instead.
#include "pg_ml.hpp"

#include "../core/eval_state.hpp"
#include "../core/logit_step.hpp"
#include "agg_state.hpp"
#include "progress.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "portability/instr_time.h"
#include "catalog/pg_proc.h"
#include "utils/catcache.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pgml_split_draw);
PG_FUNCTION_INFO_V1(pgml_split_band);
PG_FUNCTION_INFO_V1(pgml_eval_stats_trans);
PG_FUNCTION_INFO_V1(pgml_eval_combinefn);
PG_FUNCTION_INFO_V1(pgml_logit_step_trans);
PG_FUNCTION_INFO_V1(pgml_logit_step_combinefn);
}

namespace {

// ---------------------------------------------------------------- reading one row's arguments

// The row of a call: the target at arguments target_arg (float8) and target_arg + 1 (text),
// the features in the arrays at target_arg + 2 (float8[]) and target_arg + 3 (text[]).
struct ArgRow {
	int target_arg;
	bool target_categorical;
	PgmlRowArgs args;
	pgml::stats::Row row;
};

// Sets up an ArgRow in the current memory context; categorical[i] and target_categorical say
// what the caller's parameters describe (categorical is kept, not copied).
void
init_arg_row(ArgRow *ar, int target_arg, int nfeat, const uint8_t *categorical, bool target_categorical)
{
	ar->target_arg = target_arg;
	ar->target_categorical = target_categorical;
	pgml_row_args_init(&ar->args, nfeat, categorical);
	ar->row.isnull = ar->args.isnull;
	ar->row.num = ar->args.num;
	ar->row.str = ar->args.str;
	ar->row.len = ar->args.len;
}

// Reads the row's target and features into ar->row.
void
read_arg_row(FunctionCallInfo fcinfo, ArgRow *ar, const char *fname)
{
	ar->row.target_null = pgml_read_target_args(fcinfo, ar->target_arg, ar->target_categorical, &ar->row.target,
												&ar->row.target_str, &ar->row.target_len, fname);
	/* the arrays (float8[], text[]) or the slots form (text[], then a float8 per numeric
	 * feature: 8 or more arguments after the target's two) */
	if (PG_NARGS() > ar->target_arg + 4)
		pgml_read_row_slots(fcinfo, &ar->args, ar->target_arg + 2, ar->target_arg + 3, fname);
	else
		pgml_read_row_args(fcinfo, &ar->args, ar->target_arg + 2, ar->target_arg + 3, fname);
}

// A one-dimensional float8[] without NULLs, or an error.
const double *
float8_array(ArrayType *a, size_t *len, const char *what)
{
	if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s", what),
						errdetail("It must be a one-dimensional float8[] without NULLs.")));
	*len = static_cast<size_t>(ARR_DIMS(a)[0]);
	return reinterpret_cast<const double *>(ARR_DATA_PTR(a));
}

// ---------------------------------------------------------------- ml.row_draw

struct DrawCache {
	const pgml::stats::Params *params;
	ArgRow ar;
};

} // namespace

namespace {

// The draw of the row whose target is argument target_arg (NaN: a row training skips).
double
row_draw_at(FunctionCallInfo fcinfo, int target_arg, const char *fname)
{
	DrawCache *dc = static_cast<DrawCache *>(fcinfo->flinfo->fn_extra);
	if (dc == nullptr) {
		if (PG_ARGISNULL(0))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s parameters", fname),
							errdetail("The parameters are NULL."),
							errhint("%s is called by ml_train; its first argument describes the columns that follow.", fname)));
		size_t pn;
		const double *pd = float8_array(PG_GETARG_ARRAYTYPE_P(0), &pn, psprintf("%s parameters", fname));
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		dc = static_cast<DrawCache *>(palloc0(sizeof(DrawCache)));
		const pgml::stats::Params *params = dc->params = pgml_stats_params(fcinfo, pd, pn);
		init_arg_row(&dc->ar, target_arg, params->nfeat, params->categorical.data(),
					 params->has_target && params->target_categorical);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = dc;
	}
	read_arg_row(fcinfo, &dc->ar, fname);
	double d = NAN;
	PGML_CORE(d = pgml::evalstate::row_draw(*dc->params, dc->ar.row));
	return d;
}

} // namespace

extern "C" PGDLLEXPORT Datum
pgml_split_draw(PG_FUNCTION_ARGS)
{
	double d = row_draw_at(fcinfo, 1, "ml.row_draw");
	if (std::isnan(d))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(d);
}

/* ml.row_band(params, lo, hi, <row>): -1 for a draw under lo, 2 for one at or over hi, else
 * the draw; NULL for a row training skips (one call per row in a GROUP BY) */
extern "C" PGDLLEXPORT Datum
pgml_split_band(PG_FUNCTION_ARGS)
{
	double d = row_draw_at(fcinfo, 3, "ml.row_band");
	if (std::isnan(d) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	double lo = PG_GETARG_FLOAT8(1), hi = PG_GETARG_FLOAT8(2);
	PG_RETURN_FLOAT8(d < lo ? -1.0 : d >= hi ? 2.0 : d);
}

// ---------------------------------------------------------------- ml.eval_stats

namespace {

constexpr int kEvalTargetArg = 6; // state, params, model, classes, draw, cut, target, target_level, features

struct EvalCache {
	pgml::evalstate::Params params;
	pgml::Model *model;        // owned through pgml_own on fn_mcxt
	int K;                     // classes given
	char **classes;            // given (the truth's class ids)
	int *pred_map;             // model class -> given class, or -1
	bool proba;                // probabilities over the given classes (always: mapped by label)
	double *mapped;            // the model's probabilities carried over to the given classes
	ArgRow ar;
	pgml::TypeClass target_tc; // the model's target (labels of a numeric target)
	pgml::Value *values;
	double *out;               // the model's outputs
	double last_num, prev_num; // the last two numeric targets seen and their classes (-1: unknown)
	int last_class, prev_class;
	bool have_last, have_prev;
	PgmlShapeCache<pgml::evalstate::State> shape;
	pgml::stats::Params *draw_params; // a NaN draw: the row's draw from the model (own_draw)
	int64 progress_rows;
};

void
delete_model(void *p)
{
	delete static_cast<pgml::Model *>(p);
}

void
eval_param_error(const char *detail)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.eval_stats parameters"),
					errdetail("%s", detail),
					errhint("ml.eval_stats is called by ml_train with the model it evaluates and its classes.")));
}

// Loads the model (argument 2) and the classes (argument 3) into ec, in fn_mcxt; fname names
// the aggregate in errors.
void
load_eval_model(FunctionCallInfo fcinfo, EvalCache *ec)
{
	bytea *blob = PG_GETARG_BYTEA_PP(2);
	ArrayType *ca = PG_GETARG_ARRAYTYPE_P(3);
	if (ARR_NDIM(ca) != 1 || ARR_HASNULL(ca) || ARR_ELEMTYPE(ca) != TEXTOID)
		eval_param_error("The classes are a one-dimensional text[] without NULLs.");

	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	pgml::Model *model = nullptr;
	const uint8_t *bd = reinterpret_cast<const uint8_t *>(VARDATA_ANY(blob));
	size_t bl = VARSIZE_ANY_EXHDR(blob);
	PGML_CORE(model = pgml::Model::deserialize(bd, bl).release());
	pgml_own(fcinfo->flinfo->fn_mcxt, model, delete_model);
	ec->model = model;
	if (model->task != pgml::Task::Classification)
		eval_param_error("The model is not a classification model.");
	Datum *cd;
	int nc;
	deconstruct_array(ca, TEXTOID, -1, false, TYPALIGN_INT, &cd, nullptr, &nc);
	if (nc < 1)
		eval_param_error("There are no classes.");
	ec->K = nc;
	ec->classes = static_cast<char **>(palloc(sizeof(char *) * nc));
	for (int i = 0; i < nc; i++)
		ec->classes[i] = TextDatumGetCString(cd[i]);
	const int mk = model->n_classes();
	ec->pred_map = static_cast<int *>(palloc(sizeof(int) * mk));
	/* the deployed version compared with a retrain may know other classes, or order them
	 * otherwise: its probabilities are carried over to the given classes by label (a class the
	 * given ones lack loses its share: log loss renormalises, as sklearn does), so it gets a
	 * log loss and roc_auc on the same rows as the new version */
	ec->proba = true;
	for (int k = 0; k < mk; k++) {
		ec->pred_map[k] = -1;
		for (int i = 0; i < nc; i++)
			if (strcmp(model->classes[static_cast<size_t>(k)].c_str(), ec->classes[i]) == 0)
				ec->pred_map[k] = i;
	}
	ec->mapped = static_cast<double *>(palloc0(sizeof(double) * nc));
	int nf = static_cast<int>(model->features.size());
	uint8_t *cat = static_cast<uint8_t *>(palloc(sizeof(uint8_t) * nf));
	for (int i = 0; i < nf; i++)
		cat[i] = model->features[static_cast<size_t>(i)].categorical() ? 1 : 0;
	init_arg_row(&ec->ar, kEvalTargetArg, nf, cat, model->target.categorical());
	ec->target_tc = model->target.type_class;
	ec->values = static_cast<pgml::Value *>(palloc0(sizeof(pgml::Value) * nf));
	ec->out = static_cast<double *>(palloc0(sizeof(double) * mk));
	MemoryContextSwitchTo(old);
}

EvalCache *
make_eval_cache(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		eval_param_error("The parameters, the model and the classes must not be NULL.");
	size_t pn;
	const double *pd = float8_array(PG_GETARG_ARRAYTYPE_P(1), &pn, "ml.eval_stats parameters");
	EvalCache *ec = static_cast<EvalCache *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(EvalCache)));
	PGML_CORE(ec->params = pgml::evalstate::Params::decode(pd, pn));
	load_eval_model(fcinfo, ec);
	return ec;
}

// The row's feature values (ec->values) from its arguments.
void
fill_values(EvalCache *ec)
{
	const int nf = ec->ar.args.nfeat;
	for (int i = 0; i < nf; i++) {
		pgml::Value &v = ec->values[i];
		v.isnull = ec->ar.args.isnull[i];
		if (v.isnull)
			continue;
		if (ec->ar.args.categorical[i]) {
			v.str = ec->ar.args.str[i];
			v.len = ec->ar.args.len[i];
		} else {
			v.num = ec->ar.args.num[i];
		}
	}
}

void
delete_draw_params(void *p)
{
	delete static_cast<pgml::stats::Params *>(p);
}

// The row's draw when the call passes NaN for it: ml.row_draw's, with the model's seed and
// columns (the model ml_train evaluates is the one it trains: its seed is the split's). NaN
// for a row training skips.
double
own_draw(FunctionCallInfo fcinfo, EvalCache *ec)
{
	if (ec->draw_params == nullptr) {
		pgml::stats::Params *p = nullptr;
		const pgml::Model *m = ec->model;
		PGML_CORE({
			p = new pgml::stats::Params();
			p->nfeat = static_cast<int>(m->features.size());
			p->has_target = true;
			p->target_categorical = m->target.categorical();
			p->seed = m->seed & ((uint64_t(1) << 53) - 1); /* as the parameters carry it */
			for (const pgml::ColumnInfo &c : m->features)
				p->categorical.push_back(c.categorical() ? 1 : 0);
		});
		pgml_own(fcinfo->flinfo->fn_mcxt, p, delete_draw_params);
		ec->draw_params = p;
	}
	double d = NAN;
	PGML_CORE(d = pgml::evalstate::row_draw(*ec->draw_params, ec->ar.row));
	return d;
}

const pgml::evalstate::Shape &
eval_checked_shape(EvalCache *ec, const double *data, size_t len)
{
	return pgml_agg_checked_shape(&ec->shape, data, len, [&](const pgml::evalstate::Shape &s) {
		/* add_row reads the model's K outputs for the state's K classes: they must agree (a state
		   forged by a superuser calling the transition function directly would over-read) */
		if (s.K != ec->K || s.proba != ec->proba)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("ml.eval_stats state does not match its model"),
							errdetail("The state has %d classes%s, the model's evaluation %d%s.", s.K,
									  s.proba ? " with probabilities" : "", ec->K, ec->proba ? " with probabilities" : "")));
	});
}

// The class (index into the given classes) of the row's target, or -1.
int
target_class(EvalCache *ec)
{
	const pgml::stats::Row &r = ec->ar.row;
	if (ec->ar.target_categorical) {
		for (int i = 0; i < ec->K; i++)
			if (strlen(ec->classes[i]) == r.target_len && memcmp(ec->classes[i], r.target_str, r.target_len) == 0)
				return i;
		return -1;
	}
	if (ec->have_last && (r.target == ec->last_num || (std::isnan(r.target) && std::isnan(ec->last_num))))
		return ec->last_class;
	if (ec->have_prev && r.target == ec->prev_num)
		return ec->prev_class; /* two classes alternating: no label built per row */
	int found = -1;
	pgml::TypeClass tc = ec->target_tc;
	double v = r.target;
	PGML_CORE({
		std::string label = pgml::numeric_label(tc, v);
		for (int i = 0; i < ec->K && found < 0; i++)
			if (label == ec->classes[i])
				found = i;
	});
	ec->have_prev = ec->have_last;
	ec->prev_num = ec->last_num;
	ec->prev_class = ec->last_class;
	ec->have_last = true;
	ec->last_num = v;
	ec->last_class = found;
	return found;
}

} // namespace

/* ml.eval_stats' transition: the row's prediction by the model, counted in its split */
extern "C" PGDLLEXPORT Datum
pgml_eval_stats_trans(PG_FUNCTION_ARGS)
{
	EvalCache *ec = pgml_agg_transition_cache(fcinfo, "ml.eval_stats", make_eval_cache);
	read_arg_row(fcinfo, &ec->ar, "ml.eval_stats");

	PgmlAggState st = pgml_agg_state_arg<pgml::evalstate::State>(
		fcinfo, [&]() { return pgml::evalstate::initial_shape(ec->K, ec->proba, ec->params); });
	const pgml::evalstate::Shape &s0 = eval_checked_shape(ec, st.data, st.len);

	pgml::evalstate::Skip skip = pgml::evalstate::Skip::NoSplit;
	bool skipped = true;
	int truth = -1;
	if (PG_ARGISNULL(4) || PG_ARGISNULL(5))
		skip = pgml::evalstate::Skip::NoSplit;
	else if (ec->ar.row.target_null)
		skip = pgml::evalstate::Skip::NullTarget;
	else if ((truth = target_class(ec)) < 0)
		skip = pgml::evalstate::Skip::UnknownLabel;
	else
		skipped = false;
	if (skipped) {
		PGML_CORE(pgml::evalstate::add_skipped(st.data, s0, skip));
		PG_RETURN_ARRAYTYPE_P(st.array);
	}
	double draw = PG_GETARG_FLOAT8(4);
	const double cut = PG_GETARG_FLOAT8(5);
	if (std::isnan(draw) && std::isnan(draw = own_draw(fcinfo, ec))) {
		PGML_CORE(pgml::evalstate::add_skipped(st.data, s0, pgml::evalstate::Skip::NoSplit));
		PG_RETURN_ARRAYTYPE_P(st.array);
	}
	const int t = draw < cut ? 1 : 0;
	fill_values(ec);
	int pred = 0;
	PGML_CORE(pred = ec->model->predict(ec->values, ec->out, nullptr));
	int mapped = ec->pred_map[pred];
	if (mapped < 0)
		mapped = (truth + 1) % ec->K; /* a class the given ones do not have: wrong */
	for (int i = 0; i < ec->K; i++)
		ec->mapped[i] = 0;
	for (int k = 0; k < ec->model->n_classes(); k++)
		if (ec->pred_map[k] >= 0)
			ec->mapped[ec->pred_map[k]] += ec->out[k];
	pgml_agg_state_add<pgml::evalstate::State>(
		&st, [&](const double *data, size_t len) { return eval_checked_shape(ec, data, len); },
		[&](double *data, const pgml::evalstate::Shape &s, pgml::evalstate::Shape *need) {
			return pgml::evalstate::add_row(data, s, t, truth, mapped, ec->mapped, draw, need);
		});
	return pgml_agg_state_result(&st, &ec->progress_rows, [](int64) { CHECK_FOR_INTERRUPTS(); });
}

PGML_AGG_COMBINE_FUNCTION(pgml_eval_combinefn, pgml::evalstate::State)

// ---------------------------------------------------------------- ml.logit_step

namespace {

// Per call site: the model (preprocessing, classes, the row's arguments) and the coefficients.
struct LogitCache {
	EvalCache ec;
	pgml::logit_step::Params *params; // owned through pgml_own on fn_mcxt
	double *x;                        // the row's feature vector, then scaled in place
	const double *center, *scale;
	int p;
};

void
delete_logit_params(void *p)
{
	delete static_cast<pgml::logit_step::Params *>(p);
}

LogitCache *
make_logit_cache(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.logit_step parameters"),
						errdetail("The parameters, the model and the classes must not be NULL."),
						errhint("ml.logit_step is called by ml_train with the coefficients of a Newton step.")));
	size_t pn;
	const double *pd = float8_array(PG_GETARG_ARRAYTYPE_P(1), &pn, "ml.logit_step parameters");
	LogitCache *lc = static_cast<LogitCache *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(LogitCache)));
	load_eval_model(fcinfo, &lc->ec);
	pgml::logit_step::Params *params = nullptr;
	const pgml::Model *model = lc->ec.model;
	PGML_CORE(params = new pgml::logit_step::Params(pgml::logit_step::Params::decode(pd, pn)));
	pgml_own(fcinfo->flinfo->fn_mcxt, params, delete_logit_params);
	lc->params = params;
	int p = 0;
	PGML_CORE(p = model->prep.p());
	if (params->p != p || lc->ec.K != 2 || model->prep.center.size() != p || model->prep.scale.size() != p)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid ml.logit_step parameters"),
						errdetail("The coefficients do not match the model's %d features and two classes.", p)));
	lc->p = p;
	lc->center = model->prep.center.data();
	lc->scale = model->prep.scale.data();
	lc->x = static_cast<double *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(double) * (p + 1)));
	return lc;
}

} // namespace

/* ml.logit_step's transition: a training row's log loss, gradient and Hessian at the
 * coefficients (other rows are skipped; the state is a fixed-size float8[]) */
extern "C" PGDLLEXPORT Datum
pgml_logit_step_trans(PG_FUNCTION_ARGS)
{
	LogitCache *lc = pgml_agg_transition_cache(fcinfo, "ml.logit_step", make_logit_cache);
	EvalCache *ec = &lc->ec;
	read_arg_row(fcinfo, &ec->ar, "ml.logit_step");
	const int p = lc->p;
	PgmlAggState st = pgml_agg_state_arg<pgml::logit_step::State>(fcinfo, [&]() { return pgml::logit_step::Shape{p}; });
	if (PG_ARGISNULL(4) || PG_ARGISNULL(5) || ec->ar.row.target_null)
		PG_RETURN_ARRAYTYPE_P(st.array); /* not a training row */
	double draw = PG_GETARG_FLOAT8(4);
	if (std::isnan(draw) && std::isnan(draw = own_draw(fcinfo, ec)))
		PG_RETURN_ARRAYTYPE_P(st.array); /* a row training skips */
	if (draw < PG_GETARG_FLOAT8(5))
		PG_RETURN_ARRAYTYPE_P(st.array); /* a test row */
	const int truth = target_class(ec);
	if (truth < 0)
		PG_RETURN_ARRAYTYPE_P(st.array); /* counted as missing: the fit reports the changed rows */
	fill_values(ec);
	for (int i = 0; i < ec->ar.args.nfeat; i++)
		if (!ec->ar.args.categorical[i] && !ec->ar.args.isnull[i] && !std::isfinite(ec->ar.args.num[i]))
			PG_RETURN_ARRAYTYPE_P(st.array); /* a row training drops (without a test split the draw is not computed) */
	double *x = lc->x;
	PGML_CORE({
		ec->model->features_of(ec->values, x);
		for (int j = 0; j < p; j++)
			x[j] = (x[j] - lc->center[j]) / lc->scale[j];
		pgml::logit_step::add_row(st.data, st.len, *lc->params, x, truth);
	});
	PG_RETURN_ARRAYTYPE_P(st.array);
}

PGML_AGG_COMBINE_FUNCTION(pgml_logit_step_combinefn, pgml::logit_step::State)

// ---------------------------------------------------------------- ml_train's queries

/*
 * pgml_class_aggregate_schema: schema ml when it has train_stats, eval_stats, row_draw and
 * row_band, else InvalidOid (an older pg_ml: the rows are read instead).
 */
Oid
pgml_class_aggregate_schema(void)
{
	Oid nsp = pgml_stats_aggregate_schema();
	if (!OidIsValid(nsp) || !OidIsValid(pgml_internal_function_schema("eval_stats", PROKIND_AGGREGATE)) ||
		!OidIsValid(pgml_internal_function_schema("row_draw", PROKIND_FUNCTION)) ||
		!OidIsValid(pgml_internal_function_schema("row_band", PROKIND_FUNCTION)))
		return InvalidOid;
	return nsp;
}

namespace {

struct ClassGroupRef {
	PgmlGroup group;   // levels, state
	const char *label; // categorical target (NULL: NULL)
	double label_num;  // numeric target
	bool label_null;
	int split;         // 0 train, 1 test, -1 NULL
};

/* The class and split of a group of the class statistics query; whether it holds training rows. */
bool
fill_class_group(PgmlGroupQuery *q, TupleTableSlot *slot, void *entry)
{
	ClassGroupRef *g = static_cast<ClassGroupRef *>(entry);
	const int ncat = q->ncat;
	g->label_null = slot->tts_isnull[ncat];
	if (!g->label_null) {
		if (q->target->tc == pgml::TypeClass::Categorical)
			g->label = pgml_datum_to_cstring(q->target, slot->tts_values[ncat]);
		else
			g->label_num = pgml_datum_to_double(q->target, slot->tts_values[ncat]);
	}
	g->split = slot->tts_isnull[ncat + 1] ? -1 : DatumGetBool(slot->tts_values[ncat + 1]) ? 1 : 0;
	return g->split == 0;
}

int
compare_class_groups(const void *a, const void *b)
{
	const ClassGroupRef *x = static_cast<const ClassGroupRef *>(a), *y = static_cast<const ClassGroupRef *>(b);
	int c = pgml_compare_levels(x->group.levels, y->group.levels, x->group.nfeatures);
	if (c != 0)
		return c;
	if (x->label_null != y->label_null)
		return x->label_null ? -1 : 1;
	if (x->label != nullptr && y->label != nullptr) {
		int c = strcmp(x->label, y->label);
		if (c != 0)
			return c;
	} else if (x->label_num != y->label_num) {
		return x->label_num < y->label_num ? -1 : 1;
	}
	return x->split - y->split;
}

// The target's expression in the queries: byte-wise for text (GROUP BY and the join must
// not merge distinct labels under a nondeterministic collation).
const char *
target_expr(const PgmlColumn *target)
{
	return psprintf("r.%s%s", quote_identifier(target->name), target->text_like ? " COLLATE pg_catalog.\"C\"" : "");
}

// Runs one float8[]-state query returning one row and hands its state to the trainer.
void
run_eval(pgml::Trainer *trainer, const char *sql, int nargs, Oid *argtypes, Datum *args, bool of_compare)
{
	int rc = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_ml: evaluating query failed: %s", SPI_result_code_string(rc));
	bool isnull;
	Datum sd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "pg_ml: the evaluating query saw no rows");
	size_t len;
	const double *data = pgml_state_array_data("eval_stats", DatumGetArrayTypeP(sd), &len);
	PGML_CORE(trainer->add_eval_state(data, len, of_compare));
}

void
end_queries(int nest)
{
	AtEOXact_GUC(true, nest);
	SPI_finish();
}

/*
 * stratified_cuts: the stratified split, in the caller's SPI connection. The cut of a class
 * holding n rows is near the test_size quantile of its draws (uniform in [0, 1)): per class,
 * the rows (a count; the planner's estimate would do, the split is checked exactly below),
 * then the rows under a band [lo, hi) around test_size (a count), the band's draws (a few per
 * thousand rows) and the rows above it. Sets each class's label and cut and returns true, or
 * false when the split cannot be reproduced (the caller reads the rows instead).
 */
bool
stratified_cuts(const char *schema, const char *rel, const char *texpr, const char *cols, const PgmlColumn *target,
				double test_size, ArrayType *parr, Oid target_array_type, bool binary_only, ArrayType **cut_labels,
				ArrayType **cut_values)
{
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s AS t, pg_catalog.count(*) FROM %s r WHERE r.%s IS NOT NULL GROUP BY 1", texpr, rel,
					 quote_identifier(target->name));
	int rc = SPI_execute(sql.data, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: class count query failed: %s", SPI_result_code_string(rc));
	uint64 nclasses = SPI_processed;
	if (nclasses == 0)
		return false; /* no labelled rows: the row reader reports it */
	if (binary_only && nclasses != 2)
		return false; /* multinomial logistic regression: the row reader */
	Datum *labels = static_cast<Datum *>(palloc(sizeof(Datum) * nclasses));
	Datum *los = static_cast<Datum *>(palloc(sizeof(Datum) * nclasses));
	Datum *his = static_cast<Datum *>(palloc(sizeof(Datum) * nclasses));
	for (uint64 r = 0; r < nclasses; r++) {
		bool isnull;
		labels[r] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);
		double n = static_cast<double>(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)));
		/* 8 standard deviations of the quantile, and a few rows, either side */
		double w = 8 * sqrt(test_size * (1 - test_size) / n) + 4 / n;
		los[r] = Float8GetDatum(test_size - w > 0 ? test_size - w : 0.0);
		his[r] = Float8GetDatum(test_size + w < 1 ? test_size + w : 1.0);
	}
	int16 typlen;
	bool typbyval;
	char typalign;
	get_typlenbyvalalign(target->type, &typlen, &typbyval, &typalign);
	ArrayType *band_labels = construct_array(labels, static_cast<int>(nclasses), target->type, typlen, typbyval, typalign);
	ArrayType *band_lo = construct_array(los, static_cast<int>(nclasses), FLOAT8OID, sizeof(double), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	ArrayType *band_hi = construct_array(his, static_cast<int>(nclasses), FLOAT8OID, sizeof(double), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);

	/* per class: key -1 counts the rows under lo, 2 those at or over hi, a draw in between
	 * its rows (rows with equal draws are duplicates) */
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT %s AS t, %s.row_band($1, b.lo, b.hi, %s) AS k, pg_catalog.count(*), pg_catalog.max(b.hi) "
					 "FROM %s r JOIN ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)) AS b(t, lo, hi) "
					 "ON %s OPERATOR(pg_catalog.=) b.t GROUP BY 1, 2 ORDER BY 1, 2",
					 texpr, schema, cols, rel, texpr);
	Oid argtypes[4] = {FLOAT8ARRAYOID, target_array_type, FLOAT8ARRAYOID, FLOAT8ARRAYOID};
	Datum args[4] = {PointerGetDatum(parr), PointerGetDatum(band_labels), PointerGetDatum(band_lo),
					 PointerGetDatum(band_hi)};
	rc = SPI_execute_with_args(sql.data, 4, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: split query failed: %s", SPI_result_code_string(rc));
	uint64 nrows = SPI_processed;
	SPITupleTable *tt = SPI_tuptable;
	Datum *cl = static_cast<Datum *>(palloc(sizeof(Datum) * (nrows + 1)));
	Datum *cuts = static_cast<Datum *>(palloc(sizeof(Datum) * (nrows + 1)));
	int ncut = 0;
	std::vector<std::pair<double, int64_t>> *band = pgml_new_owned<std::vector<std::pair<double, int64_t>>>();
	Form_pg_attribute att = TupleDescAttr(tt->tupdesc, 0);
	for (uint64 r = 0; r < nrows;) {
		bool isnull;
		Datum label = SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull);
		int64 below = 0, above = 0;
		PGML_CORE(band->clear());
		uint64 e = r;
		for (; e < nrows; e++) {
			/* the rows of one class are adjacent (ORDER BY 1) */
			if (e > r && !datumIsEqual(label, SPI_getbinval(tt->vals[e], tt->tupdesc, 1, &isnull), att->attbyval, att->attlen))
				break;
			Datum kd = SPI_getbinval(tt->vals[e], tt->tupdesc, 2, &isnull);
			if (isnull)
				continue; /* rows training skips */
			double k = DatumGetFloat8(kd);
			int64 cnt = DatumGetInt64(SPI_getbinval(tt->vals[e], tt->tupdesc, 3, &isnull));
			if (k < 0)
				below = cnt;
			else if (k > 1)
				above = cnt;
			else
				PGML_CORE(band->emplace_back(k, cnt));
		}
		double hi = DatumGetFloat8(SPI_getbinval(tt->vals[r], tt->tupdesc, 4, &isnull)); /* the class's */
		double cut = 0;
		int ok = 0;
		PGML_CORE(ok = pgml::stratified_cut(test_size, below, *band, above, hi, &cut));
		if (ok != 1)
			return false;
		cl[ncut] = label;
		cuts[ncut] = Float8GetDatum(cut);
		ncut++;
		r = e;
	}
	*cut_labels = construct_array(cl, ncut, target->type, typlen, typbyval, typalign);
	*cut_values = construct_array(cuts, ncut, FLOAT8OID, sizeof(double), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	return true;
}

// Whether pg_stats (ANALYZE's statistics, visible to the caller) gives the target column of a
// table more than two distinct values (false when there are none, as for a view).
bool
planner_says_multiclass(Oid relid, const PgmlColumn *target)
{
	Oid argtypes[2] = {OIDOID, TEXTOID};
	Datum args[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(target->name)};
	int rc = SPI_execute_with_args(
		"SELECT s.n_distinct, c.reltuples FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid "
		"OPERATOR(pg_catalog.=) c.relnamespace JOIN pg_catalog.pg_stats s ON s.schemaname OPERATOR(pg_catalog.=) "
		"n.nspname AND s.tablename OPERATOR(pg_catalog.=) c.relname WHERE c.oid OPERATOR(pg_catalog.=) $1 AND "
		"s.attname OPERATOR(pg_catalog.=) $2 AND NOT s.inherited",
		2, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		return false;
	bool null1, null2;
	Datum nd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &null1);
	Datum rt = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &null2);
	if (null1)
		return false;
	double n = DatumGetFloat4(nd);
	/* negative: minus the distinct values' share of the rows */
	if (n < 0)
		n = null2 ? 0 : -n * DatumGetFloat4(rt);
	return n > 2.5;
}

// Whether the class statistics groups with rows hold exactly two labels.
bool
two_classes(PgmlGroupQuery *q, const PgmlColumn *target)
{
	const ClassGroupRef *seen[2] = {nullptr, nullptr};
	int n = 0;
	for (uint64 r = 0; r < q->n; r++) {
		const ClassGroupRef *g = static_cast<const ClassGroupRef *>(pgml_group_entry(q, r));
		if (g->group.state == nullptr || g->label_null || g->split < 0)
			continue;
		bool known = false;
		for (int i = 0; i < n && !known; i++)
			known = target->tc == pgml::TypeClass::Categorical ? strcmp(seen[i]->label, g->label) == 0
															   : seen[i]->label_num == g->label_num;
		if (known)
			continue;
		if (n == 2)
			return false;
		seen[n++] = g;
	}
	return n == 2;
}

/*
 * logit_steps runs the Newton steps of a binary logistic regression (logit_step.hpp) in the
 * caller's SPI connection:
 *   SELECT ml.logit_step($k, $k+1, $k+2, ml.row_draw($1, <row>), <split>, <row>) FROM <from>
 * once per step, with the split's arguments first (as the evaluating query).
 */
void
logit_steps(pgml::Trainer *trainer, const char *schema, const char *cols, const char *from, const char *sample_from,
			const char *split, int nargs, const Oid *argtypes, const Datum *args)
{
	std::vector<double> *params = pgml_new_owned<std::vector<double>>();
	std::vector<uint8_t> *blob = pgml_new_owned<std::vector<uint8_t>>();
	std::vector<std::string> *classes = pgml_new_owned<std::vector<std::string>>();
	double fraction = 1;
	const bool can_sample = sample_from != nullptr;
	PGML_CORE(*params = trainer->logit_step_params(blob, classes, can_sample, &fraction, pgml_interrupt_pending));
	if (params->empty())
		return;
	pgml_progress_phase("fitting"); /* progress */
	Oid sargtypes[7];
	Datum sargs[7];
	int n = 0;
	for (int i = 0; i < nargs; i++) {
		sargtypes[n] = argtypes[i];
		sargs[n++] = args[i];
	}
	const int pp = n + 1;
	sargtypes[n++] = FLOAT8ARRAYOID;
	sargtypes[n] = BYTEAOID;
	bytea *mb = static_cast<bytea *>(palloc(VARHDRSZ + blob->size()));
	SET_VARSIZE(mb, VARHDRSZ + blob->size());
	memcpy(VARDATA(mb), blob->data(), blob->size());
	sargs[n++] = PointerGetDatum(mb);
	Datum *cd = static_cast<Datum *>(palloc(sizeof(Datum) * classes->size()));
	for (size_t i = 0; i < classes->size(); i++)
		cd[i] = CStringGetTextDatum((*classes)[i].c_str());
	sargtypes[n] = TEXTARRAYOID;
	sargs[n++] = PointerGetDatum(construct_array(cd, static_cast<int>(classes->size()), TEXTOID, -1, false, TYPALIGN_INT));
	/* the sample's percentage of pages (sample_from's last parameter; the full scan ignores it) */
	const int ppct = n;
	sargtypes[n] = FLOAT4OID;
	sargs[n++] = Float4GetDatum(100.0f);
	StringInfoData sql, ssql;
	initStringInfo(&sql);
	initStringInfo(&ssql);
	/* the row's draw from the model (NaN: ml.row_draw's, computed by ml.logit_step itself);
	 * without a test split none is needed (1 >= cut 0) */
	const char *draw = nargs > 1 ? "'NaN'::pg_catalog.float8" : "1::pg_catalog.float8";
	appendStringInfo(&sql, "SELECT %s.logit_step($%d, $%d, $%d, %s, %s, %s) FROM %s", schema, pp, pp + 1, pp + 2, draw,
					 split, cols, from);
	if (can_sample)
		appendStringInfo(&ssql, "SELECT %s.logit_step($%d, $%d, $%d, %s, %s, %s) FROM %s", schema, pp, pp + 1, pp + 2,
						 draw, split, cols, sample_from);
	while (!params->empty()) {
		CHECK_FOR_INTERRUPTS();
		ArrayType *pa = pgml_float8_array(params);
		sargs[pp - 1] = PointerGetDatum(pa);
		const bool sample = can_sample && fraction < 1;
		sargs[ppct] = Float4GetDatum(static_cast<float>(100.0 * fraction));
		int rc = SPI_execute_with_args(sample ? ssql.data : sql.data, n, sargtypes, sargs, NULL, true, 0);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "pg_ml: Newton step query failed: %s", SPI_result_code_string(rc));
		bool isnull;
		Datum sd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		const double *data = nullptr;
		size_t len = 0;
		if (!isnull)
			data = pgml_state_array_data("logit_step", DatumGetArrayTypeP(sd), &len);
		PGML_CORE(trainer->add_logit_step(data, len));
		SPI_freetuptable(SPI_tuptable);
		pfree(pa);
		PGML_CORE(*params = trainer->logit_step_params(blob, classes, can_sample, &fraction, pgml_interrupt_pending));
	}
}

} // namespace

/*
 * pgml_class_aggregate_relation trains naive Bayes from the aggregate queries described at the
 * top of this file, as the current user. Returns the rows read, or -1 when the split cannot be
 * reproduced (the caller reads the rows instead; nothing was given to the trainer then).
 */
int64
pgml_class_aggregate_relation(pgml::Trainer *trainer, Oid schema_oid, Oid relid, const PgmlColumn *features,
							  int nfeatures, const PgmlColumn *target, double test_size, const pgml::Model *compare,
							  double *stats_ms)
{
	instr_time started;
	INSTR_TIME_SET_CURRENT(started);
	std::vector<double> *params = pgml_new_owned<std::vector<double>>();
	std::vector<double> *eparams = pgml_new_owned<std::vector<double>>();
	PGML_CORE({
		*params = trainer->class_stats_params();
		*eparams = trainer->eval_params();
	});
	const char *schema = quote_identifier(get_namespace_name(schema_oid));
	const char *rel = pgml_from_item(relid);
	const char *texpr = target_expr(target);

	/* the row arguments every function gets after its own: the target, the features (a float8
	 * argument per numeric one where every function has the slots: no array per row and call) */
	StringInfoData cols;
	initStringInfo(&cols);
	pgml_append_row_call_args(&cols, target, features, nfeatures, "r.", 64);

	ArrayType *parr = pgml_float8_array(params);

	/* binary logistic regression: Newton steps through ml.logit_step (an older pg_ml without
	 * it reads the rows) */
	bool binary_only = false;
	PGML_CORE(binary_only = trainer->binary_only());
	if (binary_only && !OidIsValid(pgml_internal_function_schema("logit_step", PROKIND_AGGREGATE)))
		return -1;

	Oid target_array_type = get_array_type(target->type);
	if (test_size > 0 && !OidIsValid(target_array_type))
		return -1;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	/* for these queries only (restored by end_queries, and on error by the transaction): the
	 * grouped states are large, so group by hashing rather than sorting; the queries are
	 * short, and JIT compiling them would cost more than it saves */
	int nest = NewGUCNestLevel();
	(void)set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void)set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	/* logistic regression: a target the planner's statistics say has more than two values is
	 * multinomial, read by the row reader; spare the scans that would find it out */
	if (binary_only && planner_says_multiclass(relid, target)) {
		end_queries(nest);
		return -1;
	}

	/* 1. the stratified split: the cut of each class */
	ArrayType *cut_labels = nullptr, *cut_values = nullptr;
	if (test_size > 0 && !stratified_cuts(schema, rel, texpr, cols.data, target, test_size, parr, target_array_type,
										  binary_only, &cut_labels, &cut_values)) {
		end_queries(nest);
		return -1;
	}
	/* the split of a row: NULL for rows training skips */
	StringInfoData from, split;
	initStringInfo(&from);
	initStringInfo(&split);
	if (test_size > 0) {
		appendStringInfo(&from, "%s r LEFT JOIN ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS c(t, cut) ON %s OPERATOR(pg_catalog.=) c.t",
						 rel, texpr);
		appendStringInfo(&split, "c.cut");
	} else {
		appendStringInfo(&from, "%s r", rel);
		appendStringInfo(&split, "0::pg_catalog.float8");
	}
	/* logistic regression's start on a page sample: tables and materialized views read as they
	 * are (its percentage is the Newton step query's last parameter, logit_steps) */
	const char *sample_from = nullptr;
	if (binary_only && (get_rel_relkind(relid) == RELKIND_RELATION || get_rel_relkind(relid) == RELKIND_MATVIEW) &&
		strcmp(rel, pgml_relation_sql_name(relid)) == 0) {
		const int ppct = (test_size > 0 ? 3 : 1) + 4;
		if (test_size > 0)
			sample_from = psprintf("%s r TABLESAMPLE SYSTEM ($%d) REPEATABLE (0) LEFT JOIN ROWS FROM (pg_catalog.unnest($2), "
								   "pg_catalog.unnest($3)) AS c(t, cut) ON %s OPERATOR(pg_catalog.=) c.t",
								   rel, ppct, texpr);
		else
			sample_from = psprintf("%s r TABLESAMPLE SYSTEM ($%d) REPEATABLE (0)", rel, ppct);
	}
	Oid argtypes[6] = {FLOAT8ARRAYOID, target_array_type, FLOAT8ARRAYOID, FLOAT8ARRAYOID, BYTEAOID, TEXTARRAYOID};
	Datum args[6] = {PointerGetDatum(parr), PointerGetDatum(cut_labels), PointerGetDatum(cut_values), 0, 0, 0};
	int nargs = test_size > 0 ? 3 : 1;

	/* 2. the statistics, grouped by the categorical features, the class and the split */
	{
		StringInfoData keys, sql;
		initStringInfo(&keys);
		int ncat = pgml_append_group_keys(&keys, features, nfeatures, "r.");
		initStringInfo(&sql);
		/* without a test split every row is a training row: no draw (ml.train_stats skips and
		 * counts the rows training skips, as it does in a group of its own) */
		const char *is_test = test_size > 0 ? psprintf("(%s.row_draw($1, %s) OPERATOR(pg_catalog.<) %s)", schema, cols.data, split.data)
											: "false";
		/* ml.train_stats has slots for more numeric features than the others */
		StringInfoData scols;
		initStringInfo(&scols);
		pgml_append_row_call_args(&scols, target, features, nfeatures, "r.", 95);
		appendStringInfo(&sql, "SELECT %s%s%s, %s, %s.train_stats($1, %s) FROM %s GROUP BY ", keys.data, ncat ? ", " : "",
						 texpr, is_test, schema, scols.data, from.data);
		for (int i = 1; i <= ncat + 2; i++)
			appendStringInfo(&sql, "%s%d", i > 1 ? ", " : "", i);
		/* the groups go to a receiver that counts their levels as they come (agg_state.hpp) */
		PgmlGroupQuery *q = pgml_group_query_new(trainer, features, nfeatures, ncat, ncat + 3, "class statistics",
												 "eval_stats", sizeof(ClassGroupRef));
		q->target = target;
		q->fill = fill_class_group;
		pgml_group_query_run(q, sql.data, pgml_query_params(nargs, argtypes, args), compare_class_groups);
		if (binary_only && !two_classes(q, target)) {
			end_queries(nest);
			return -1; /* multinomial logistic regression: the row reader (nothing given to the trainer yet) */
		}
		for (uint64 r = 0; r < q->n; r++) {
			CHECK_FOR_INTERRUPTS();
			const ClassGroupRef *g = static_cast<const ClassGroupRef *>(pgml_group_entry(q, r));
			if (g->group.state == nullptr)
				continue;
			size_t len;
			const double *data = pgml_state_array_data("eval_stats", g->group.state, &len);
			PGML_CORE({
				std::vector<const char *> v(g->group.levels, g->group.levels + nfeatures);
				trainer->add_class_group(v, g->label, g->label_num, g->split, data, len, pgml_interrupt_pending);
			});
		}
	}

	int64 rows = 0;
	PGML_CORE(rows = trainer->rows_read());
	pgml_progress_set_rows(rows);
	{
		instr_time now;
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, started);
		*stats_ms = INSTR_TIME_GET_MILLISEC(now);
	}
	if (rows == 0) {
		end_queries(nest);
		return 0; /* the caller reports the empty relation */
	}

	/* 2b. logistic regression: the Newton steps */
	if (binary_only)
		logit_steps(trainer, schema, cols.data, from.data, sample_from, split.data, nargs, argtypes, args);

	/* 3. the fitted model on every row, and (ml_retrain) the deployed model on the same rows */
	pgml_progress_phase("evaluating"); /* progress */
	std::vector<uint8_t> *blob = pgml_new_owned<std::vector<uint8_t>>();
	std::vector<std::string> *classes = pgml_new_owned<std::vector<std::string>>();
	PGML_CORE({
		*blob = trainer->class_fit(pgml_interrupt_pending);
		*classes = trainer->class_names();
		*eparams = trainer->eval_params(); /* the sample it keeps may depend on the splits' rows */
	});
	Datum *cd = static_cast<Datum *>(palloc(sizeof(Datum) * classes->size()));
	for (size_t i = 0; i < classes->size(); i++)
		cd[i] = CStringGetTextDatum((*classes)[i].c_str());
	args[4] = PointerGetDatum(construct_array(cd, static_cast<int>(classes->size()), TEXTOID, -1, false, TYPALIGN_INT));
	/* $4 eval params, $5 model, $6 classes: shift them after the split arguments */
	Oid eargtypes[6];
	Datum eargs[6];
	int en = 0;
	for (int i = 0; i < nargs; i++) {
		eargtypes[en] = argtypes[i];
		eargs[en++] = args[i];
	}
	int pe = en + 1, pm = en + 2, pc = en + 3;
	eargtypes[en] = FLOAT8ARRAYOID;
	eargs[en++] = PointerGetDatum(pgml_float8_array(eparams));
	eargtypes[en] = BYTEAOID;
	bytea *mb = static_cast<bytea *>(palloc(VARHDRSZ + blob->size()));
	SET_VARSIZE(mb, VARHDRSZ + blob->size());
	memcpy(VARDATA(mb), blob->data(), blob->size());
	eargs[en++] = PointerGetDatum(mb);
	eargtypes[en] = TEXTARRAYOID;
	eargs[en++] = args[4];

	StringInfoData sql;
	initStringInfo(&sql);
	/* the fitted model draws each row itself (a NaN draw: ml.row_draw's, from its seed and
	 * columns, without a second call building the row's arrays) */
	appendStringInfo(&sql, "SELECT %s.eval_stats($%d, $%d, $%d, 'NaN'::pg_catalog.float8, %s, %s) FROM %s", schema, pe,
					 pm, pc, split.data, cols.data, from.data);
	run_eval(trainer, sql.data, en, eargtypes, eargs, false);
	if (compare != nullptr) {
		/* the deployed version's seed may be another: the split's draws come from ml.row_draw */
		resetStringInfo(&sql);
		appendStringInfo(&sql, "SELECT %s.eval_stats($%d, $%d, $%d, %s.row_draw($1, %s), %s, %s) FROM %s", schema, pe,
						 pm, pc, schema, cols.data, split.data, cols.data, from.data);
		std::vector<uint8_t> *cblob = pgml_new_owned<std::vector<uint8_t>>();
		PGML_CORE(*cblob = compare->serialize());
		bytea *cb = static_cast<bytea *>(palloc(VARHDRSZ + cblob->size()));
		SET_VARSIZE(cb, VARHDRSZ + cblob->size());
		memcpy(VARDATA(cb), cblob->data(), cblob->size());
		eargs[pm - 1] = PointerGetDatum(cb);
		run_eval(trainer, sql.data, en, eargtypes, eargs, true);
	}
	end_queries(nest);
	return rows;
}
