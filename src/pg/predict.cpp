// pg_ml glue: ml_predict, ml_predict_label, ml_predict_proba, ml_class_probabilities (the hot path).
//
// Per backend, deserialized models are cached by (model id, version, xmin of the version
// row): versions are immutable, and any write to the row changes its xmin. Per query
// (fn_extra of the call site), the argument types, the model reference and the row's column
// mapping are resolved once, into buffers that live as long as the call site; each row then
// costs one heap_deform_tuple (of the attributes up to the last feature), the conversion of
// its values and the model's arithmetic: no catalog lookup, no allocation (beyond the result
// of ml_predict_label / ml_predict_proba) and no type resolution per row. The model argument
// is compared with the resolved one per row only when it is not a constant (or parameter).
// A call site can outlive its statement (PL/pgSQL keeps a transaction's simple expressions):
// the model is resolved again when the active snapshot is another one (the next statement of
// a READ COMMITTED transaction, or one after the transaction's own writes), so that every
// statement uses the version its snapshot sees deployed.
//
// Across statements, a backend memo maps (name or id, user) to the resolved model and serves
// a new call site without reading the catalog when the active snapshot sees exactly the rows
// the resolving one saw (same xmin, xmax and in-progress transactions) and the transaction has
// not written: a one-row SELECT ml_predict(...) then costs about what the prediction costs.
// Any commit or abort in between (a deploy, retrain, drop, grant or revoke among them) makes
// the next snapshot differ, so the memo never serves what the statement's snapshot would not.
#include "pg_ml.hpp"
#include "grouped.hpp"

#include <cmath>
#include <memory>

extern "C" {
#include "access/relation.h"
#include "access/xact.h"
#include "access/tupdesc.h"
#include "catalog/pg_class.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "executor/tuptable.h"
#include "utils/arrayaccess.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/typcache.h"
#include "common/shortest_dec.h"

PG_FUNCTION_INFO_V1(pgml_predict);
PG_FUNCTION_INFO_V1(pgml_predict_label);
PG_FUNCTION_INFO_V1(pgml_predict_proba);
PG_FUNCTION_INFO_V1(pgml_class_probabilities);
PG_FUNCTION_INFO_V1(pgml_explain);
}

namespace {

constexpr int kCacheSize = 16;

struct CacheEntry {
	int64 model_id = 0;
	int32 version = 0;
	TransactionId xmin = InvalidTransactionId;
	uint64 last_used = 0;
	std::shared_ptr<const pgml::Model> model;
};

// Allocated once and never destroyed: at backend exit, C++ static destructors would run after
// the libraries the cached models use (xgboost, libgomp) have torn down their own state, and
// freeing a booster then corrupts the heap. The process is ending; the OS takes the memory back.
CacheEntry *const g_cache = new CacheEntry[kCacheSize];
uint64 g_clock = 0;

// Keeps a model alive for a call site while the backend cache may evict it.
struct ModelPin {
	std::shared_ptr<const pgml::Model> model;
};

void
delete_pin(void *p)
{
	delete static_cast<ModelPin *>(p);
}

// What makes an MVCC snapshot's view of committed rows: two snapshots with the same bounds and
// the same in-progress transactions see the same rows (of every transaction but the backend's
// own, and of that one too at the same command id).
struct SnapKey {
	bool valid;
	bool suboverflowed;
	TransactionId xmin;
	TransactionId xmax;
	CommandId curcid;
	uint32 xcnt;
	int32 subxcnt;
	TransactionId *xip; /* allocated in the key's context, cap entries */
	TransactionId *subxip;
	uint32 cap;
	uint32 subcap;
};

// Whether the active snapshot is the one the key was taken from (false when there is none).
bool
snap_key_matches(const SnapKey *k)
{
	if (!k->valid || !ActiveSnapshotSet())
		return false;
	Snapshot snap = GetActiveSnapshot();
	return snap->xmin == k->xmin && snap->xmax == k->xmax && snap->curcid == k->curcid && snap->xcnt == k->xcnt &&
		   snap->subxcnt == k->subxcnt && snap->suboverflowed == k->suboverflowed &&
		   (k->xcnt == 0 || memcmp(snap->xip, k->xip, sizeof(TransactionId) * k->xcnt) == 0) &&
		   (k->subxcnt <= 0 || memcmp(snap->subxip, k->subxip, sizeof(TransactionId) * k->subxcnt) == 0);
}

TransactionId *
grow_xids(TransactionId *xids, uint32 *cap, uint32 n, MemoryContext cxt)
{
	if (n <= *cap)
		return xids;
	if (xids != NULL)
		pfree(xids);
	*cap = Max(n, 8);
	return static_cast<TransactionId *>(MemoryContextAlloc(cxt, sizeof(TransactionId) * *cap));
}

// Takes the active snapshot's key (valid false when there is none); the arrays grow in cxt.
void
snap_key_take(SnapKey *k, MemoryContext cxt)
{
	k->valid = false;
	if (!ActiveSnapshotSet())
		return;
	Snapshot snap = GetActiveSnapshot();
	uint32 nsub = snap->subxcnt > 0 ? static_cast<uint32>(snap->subxcnt) : 0;
	k->xip = grow_xids(k->xip, &k->cap, snap->xcnt, cxt);
	k->subxip = grow_xids(k->subxip, &k->subcap, nsub, cxt);
	k->xmin = snap->xmin;
	k->xmax = snap->xmax;
	k->curcid = snap->curcid;
	k->xcnt = snap->xcnt;
	k->subxcnt = snap->subxcnt;
	k->suboverflowed = snap->suboverflowed;
	if (snap->xcnt > 0)
		memcpy(k->xip, snap->xip, sizeof(TransactionId) * snap->xcnt);
	if (nsub > 0)
		memcpy(k->subxip, snap->subxip, sizeof(TransactionId) * nsub);
	k->valid = true;
}

enum InputKind { INPUT_NONE, INPUT_ROW, INPUT_ARRAY, INPUT_JSONB };

constexpr int kRefCache = 8;

// What a call site resolved once per query.
struct CallSite {
	/* the argument types, resolved on the first call */
	bool types_known;
	bool by_id_arg;    /* the model argument is an integer (id), not text (name) */
	bool int4_arg;
	bool model_stable; /* the model argument is a constant or parameter: resolved once */
	InputKind argkind; /* how features are passed */
	Oid features_type;
	/* the models this call site has resolved in this query (a model argument that is not a
	 * constant): switching between them needs no catalog lookup */
	int nrefs;
	PgmlModelRef refs[kRefCache];
	bool ref_by_id[kRefCache];
	int64 ref_id[kRefCache];
	char *ref_key[kRefCache]; /* the name as given, NUL-terminated (by name only) */
	MemoryContext refs_cxt;   /* the refs' strings; child of fn_mcxt, reset with the snapshot */
	/* the snapshot the models were resolved under (what makes its visibility); snap_ok once
	 * the model was resolved under it (not after an error) */
	bool snap_ok;
	SnapKey snap; /* its arrays in fn_mcxt */
	MemoryContext model_cxt; /* everything below; child of fn_mcxt */
	/* the model argument as given */
	bool by_id;
	int64 key_id;
	char *key_name;
	int key_len;
	/* the model */
	int64 model_id;
	int32 model_version;
	TransactionId model_xmin;
	ModelPin *pin;
	const pgml::Model *model;
	char *model_name;
	int nfeatures;
	int nout;
	/* input mapping */
	InputKind kind;
	Oid rowtype;
	int32 rowtypmod;
	int natts;
	TupleDesc rowdesc; /* a copy of the row type, truncated after the last feature column, in fn_mcxt */
	int *attnum;       /* per feature: 0-based attribute index in the row */
	PgmlColumn *cols;  /* per feature: how to convert the row's column (or the array element) */
	TupleTableSlot *slot; /* deforms the rows (over rowdesc) */
	HeapTupleData tuple;
	char **jsonb_keys;
	/* array input: the element type, classified once */
	Oid elemtype;
	PgmlColumn elem;
	int16 elemlen;
	bool elembyval;
	char elemalign;
	bool array_checked; /* no feature of the model is categorical */
	pgml::Value *values;
	double *out;
	Datum *proba;        /* nout: ml_predict_proba's elements */
	double *class_value; /* per class: the value ml_predict returns (numeric / boolean targets) */
};

// Finds or loads the model version; the returned pin is owned by cxt.
ModelPin *
pin_model(const PgmlModelRef *ref, MemoryContext cxt)
{
	CacheEntry *hit = nullptr, *victim = &g_cache[0];
	for (int i = 0; i < kCacheSize; i++) {
		CacheEntry &e = g_cache[i];
		if (e.model && e.model_id == ref->id && e.version == ref->deployed_version && e.xmin == ref->deployed_xmin) {
			hit = &e;
			break;
		}
		if (!e.model || e.last_used < victim->last_used)
			victim = &e;
	}
	if (hit == nullptr) {
		TransactionId xmin;
		char *kind = NULL;
		bytea *blob = pgml_load_blob(ref->id, ref->deployed_version, &xmin, false, &kind);
		if (blob == NULL)
			pgml_missing_deployed(ref);
		pgml::Model *m = pgml_deserialize(blob, NULL, ref, ref->deployed_version, kind);
		PGML_CORE({
			victim->model.reset(m);
			victim->model_id = ref->id;
			victim->version = ref->deployed_version;
			victim->xmin = xmin;
		});
		hit = victim;
	}
	hit->last_used = ++g_clock;
	ModelPin *pin = nullptr;
	PGML_CORE(pin = new ModelPin{hit->model});
	pgml_own(cxt, pin, delete_pin);
	return pin;
}

// Whether text t equals the C string s (without copying t).
bool
text_equals_cstring(text *t, const char *s)
{
	size_t len = VARSIZE_ANY_EXHDR(t);
	return strlen(s) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

bool
same_key(const CallSite *cs, bool by_id, Datum arg)
{
	if (cs->model == nullptr || cs->by_id != by_id)
		return false;
	if (by_id)
		return cs->key_id == DatumGetInt64(arg);
	text *t = DatumGetTextPP(arg);
	return VARSIZE_ANY_EXHDR(t) == static_cast<size_t>(cs->key_len) && memcmp(VARDATA_ANY(t), cs->key_name, cs->key_len) == 0;
}

// Resolves the argument types of this call site (once).
void
resolve_types(FunctionCallInfo fcinfo, CallSite *cs)
{
	Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	cs->by_id_arg = argtype == INT8OID || argtype == INT4OID;
	cs->int4_arg = argtype == INT4OID;
	cs->model_stable = get_fn_expr_arg_stable(fcinfo->flinfo, 0);
	Oid ftype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	cs->features_type = ftype;
	if (ftype == JSONBOID)
		cs->argkind = INPUT_JSONB;
	else if (type_is_rowtype(ftype))
		cs->argkind = INPUT_ROW;
	else if (OidIsValid(get_element_type(ftype)))
		cs->argkind = INPUT_ARRAY;
	else
		cs->argkind = INPUT_NONE;
	cs->types_known = true;
}

// Whether the active snapshot is the one the call site resolved under; if not, remembers it
// and forgets the models resolved under the previous one.
bool
same_snapshot(CallSite *cs, MemoryContext fn_mcxt)
{
	if (!ActiveSnapshotSet())
		return cs->snap_ok;
	if (cs->snap_ok && snap_key_matches(&cs->snap))
		return true;
	cs->snap_ok = false;
	snap_key_take(&cs->snap, fn_mcxt);
	cs->nrefs = 0;
	if (cs->refs_cxt == NULL)
		cs->refs_cxt = AllocSetContextCreate(fn_mcxt, "pg_ml call site models", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(cs->refs_cxt);
	return false;
}

// The backend's memo of name (or id) -> model resolutions, so that a statement that names a
// model resolved before reads no catalog. An entry is served only under a snapshot with the
// same count of completed transactions as the one it was resolved under (PostgreSQL's own
// test for reusing a snapshot: such snapshots see the same committed rows), for the same
// user, and never in a transaction that has written (it may have changed the model itself):
// a deploy, retrain, drop, grant or revoke committed anywhere changes the count, so no entry
// can outlive what it saw. Parallel workers' snapshots carry no count and never use it.
constexpr int kNameCache = 32;

struct NameEntry {
	bool used;
	bool by_id;
	int64 key_id;
	char *key_name; /* in TopMemoryContext */
	int key_len;
	Oid user;
	SnapKey snap; /* its arrays in TopMemoryContext */
	uint64 last_used;
	PgmlModelRef ref; /* its strings in TopMemoryContext */
};

NameEntry *const g_names = new NameEntry[kNameCache]();

// Whether the memo may serve this statement: not in a transaction that has written, nor in a
// SERIALIZABLE one (whose catalog reads take the predicate locks its conflicts are found by).
bool
memo_usable(void)
{
	return ActiveSnapshotSet() && !TransactionIdIsValid(GetTopTransactionIdIfAny()) && !IsolationIsSerializable();
}

bool
memo_matches(const NameEntry &e, bool by_id, Datum arg, Oid user)
{
	if (!e.used || e.by_id != by_id || e.user != user)
		return false;
	if (by_id ? e.key_id != DatumGetInt64(arg) : !text_equals_cstring(DatumGetTextPP(arg), e.key_name))
		return false;
	return snap_key_matches(&e.snap);
}

bool
memo_find(bool by_id, Datum arg, PgmlModelRef *ref)
{
	if (!memo_usable())
		return false;
	Oid user = GetUserId();
	for (int i = 0; i < kNameCache; i++) {
		NameEntry &e = g_names[i];
		if (memo_matches(e, by_id, arg, user)) {
			e.last_used = ++g_clock;
			*ref = e.ref;
			return true;
		}
	}
	return false;
}

void
memo_free(NameEntry *e)
{
	if (!e->used)
		return;
	if (e->key_name)
		pfree(e->key_name);
	pfree(e->ref.name);
	pfree(e->ref.task);
	pfree(e->ref.algorithm);
	e->used = false;
}

void
memo_store(bool by_id, Datum arg, const PgmlModelRef *ref)
{
	if (!memo_usable())
		return;
	Oid user = GetUserId();
	NameEntry *victim = &g_names[0];
	for (int i = 0; i < kNameCache; i++) {
		NameEntry &e = g_names[i];
		bool same_key = e.used && e.by_id == by_id && e.user == user &&
						(by_id ? e.key_id == DatumGetInt64(arg)
							   : text_equals_cstring(DatumGetTextPP(arg), e.key_name));
		if (same_key) {
			victim = &e;
			break;
		}
		if (!e.used || (victim->used && e.last_used < victim->last_used))
			victim = &e;
	}
	memo_free(victim);
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	victim->by_id = by_id;
	victim->key_id = by_id ? DatumGetInt64(arg) : 0;
	victim->key_name = by_id ? NULL : text_to_cstring(DatumGetTextPP(arg));
	victim->key_len = by_id ? 0 : static_cast<int>(strlen(victim->key_name));
	victim->user = user;
	snap_key_take(&victim->snap, TopMemoryContext);
	victim->ref = *ref;
	victim->ref.name = pstrdup(ref->name);
	victim->ref.task = pstrdup(ref->task);
	victim->ref.algorithm = pstrdup(ref->algorithm);
	victim->last_used = ++g_clock;
	victim->used = true;
	MemoryContextSwitchTo(old);
}

// The model the argument names, with the caller's right to use it checked: from the memo, or
// the catalog.
void
lookup_model(bool by_id, Datum arg, PgmlModelRef *ref)
{
	if (memo_find(by_id, arg, ref))
		return;
	pgml_resolve_model(arg, by_id ? INT8OID : TEXTOID, PGML_USE, false, ref);
	if (ref->deployed_version == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("model \"%s\" has no deployed version", ref->name)));
	memo_store(by_id, arg, ref);
}

// Resolves the model argument for this call site (once per query and snapshot unless it changes).
void
resolve(FunctionCallInfo fcinfo, CallSite *cs)
{
	bool same_snap = same_snapshot(cs, fcinfo->flinfo->fn_mcxt);
	if (cs->model != nullptr && cs->model_stable && same_snap)
		return;
	bool by_id = cs->by_id_arg;
	Datum arg = PG_GETARG_DATUM(0);
	if (cs->int4_arg)
		arg = Int64GetDatum(DatumGetInt32(arg));
	if (same_snap && same_key(cs, by_id, arg))
		return;
	/* resolved before under this snapshot? (the catalog is read once per snapshot and model) */
	PgmlModelRef ref;
	int hit = -1;
	for (int i = 0; i < cs->nrefs && hit < 0; i++) {
		if (cs->ref_by_id[i] != by_id)
			continue;
		if (by_id ? cs->ref_id[i] == DatumGetInt64(arg) : text_equals_cstring(DatumGetTextPP(arg), cs->ref_key[i]))
			hit = i;
	}
	if (hit >= 0) {
		ref = cs->refs[hit];
	} else {
		lookup_model(by_id, arg, &ref);
		if (cs->nrefs < kRefCache) {
			int i = cs->nrefs++;
			MemoryContext o = MemoryContextSwitchTo(cs->refs_cxt);
			cs->refs[i] = ref;
			cs->refs[i].name = pstrdup(ref.name);
			cs->refs[i].task = pstrdup(ref.task);
			cs->refs[i].algorithm = pstrdup(ref.algorithm);
			cs->ref_by_id[i] = by_id;
			cs->ref_id[i] = by_id ? DatumGetInt64(arg) : 0;
			cs->ref_key[i] = by_id ? NULL : text_to_cstring(DatumGetTextPP(arg));
			MemoryContextSwitchTo(o);
		}
	}
	cs->snap_ok = true;
	/* the same version of the same model under a new snapshot: everything resolved stays */
	if (cs->model != nullptr && same_key(cs, by_id, arg) && cs->model_id == ref.id &&
		cs->model_version == ref.deployed_version && cs->model_xmin == ref.deployed_xmin)
		return;
	/* what belongs to the model lives in a context of its own, replaced when the model
	 * argument changes (so a model name that changes from row to row does not pile up memory) */
	if (cs->model_cxt != NULL)
		MemoryContextDelete(cs->model_cxt); /* also unpins the previous model */
	cs->model = nullptr;
	cs->model_cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "pg_ml call site", ALLOCSET_SMALL_SIZES);
	MemoryContext cxt = cs->model_cxt;
	ModelPin *pin = pin_model(&ref, cxt);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	cs->by_id = by_id;
	if (by_id) {
		cs->key_id = DatumGetInt64(arg);
	} else {
		text *t = DatumGetTextPP(arg);
		cs->key_len = VARSIZE_ANY_EXHDR(t);
		cs->key_name = static_cast<char *>(palloc(cs->key_len + 1));
		memcpy(cs->key_name, VARDATA_ANY(t), cs->key_len);
	}
	cs->model_id = ref.id;
	cs->model_version = ref.deployed_version;
	cs->model_xmin = ref.deployed_xmin;
	cs->pin = pin;
	cs->model = pin->model.get();
	cs->model_name = pstrdup(ref.name);
	cs->nfeatures = static_cast<int>(cs->model->features.size());
	cs->nout = cs->model->n_outputs();
	cs->values = static_cast<pgml::Value *>(palloc0(sizeof(pgml::Value) * cs->nfeatures));
	cs->out = static_cast<double *>(palloc0(sizeof(double) * Max(cs->nout, 1)));
	cs->proba = static_cast<Datum *>(palloc0(sizeof(Datum) * Max(cs->nout, 1)));
	cs->class_value = NULL;
	if (cs->model->task == pgml::Task::Classification && !cs->model->target.categorical()) {
		const pgml::Model *m = cs->model;
		cs->class_value = static_cast<double *>(palloc(sizeof(double) * m->n_classes()));
		for (int k = 0; k < m->n_classes(); k++) {
			const char *label = m->classes[static_cast<size_t>(k)].c_str();
			cs->class_value[k] = m->target.type_class == pgml::TypeClass::Boolean ? (strcmp(label, "true") == 0 ? 1.0 : 0.0)
																				   : strtod(label, NULL);
		}
	}
	cs->kind = INPUT_NONE;
	cs->array_checked = false;
	cs->elemtype = InvalidOid;
	MemoryContextSwitchTo(old);
}

// Checks that a column of the input can feed feature i; errors name both.
void
check_compatible(const CallSite *cs, int i, const PgmlColumn *col, bool supported)
{
	const pgml::ColumnInfo &want = cs->model->features[i];
	if (!supported || col->tc != want.type_class)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("column \"%s\" has type %s, but model \"%s\" expects %s", want.name.c_str(),
							   pgml_type_name(col->type), cs->model_name, want.type_name.c_str())));
}

// Maps the row type's columns to the model's features by name (once per query and row type).
void
map_row(CallSite *cs, HeapTupleHeader th, MemoryContext cxt)
{
	Oid rowtype = HeapTupleHeaderGetTypeId(th);
	int32 typmod = HeapTupleHeaderGetTypMod(th);
	if (cs->kind == INPUT_ROW && cs->rowtype == rowtype && cs->rowtypmod == typmod)
		return;
	TupleDesc desc = lookup_rowtype_tupdesc(rowtype, typmod);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	cs->attnum = static_cast<int *>(palloc(sizeof(int) * cs->nfeatures));
	cs->cols = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * cs->nfeatures));
	MemoryContextSwitchTo(old);
	int last = 0;
	for (int i = 0; i < cs->nfeatures; i++) {
		const pgml::ColumnInfo &want = cs->model->features[i];
		PgmlColumn *col = &cs->cols[i];
		if (!pgml_find_column(desc, want.name.c_str(), col)) {
			ReleaseTupleDesc(desc);
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
							errmsg("feature column \"%s\" of model \"%s\" is missing from the row", want.name.c_str(),
								   cs->model_name),
							errhint("Pass a row that has every feature column, e.g. SELECT ml_predict('%s', t) FROM t.",
									cs->model_name)));
		}
		cs->attnum[i] = col->attnum - 1;
		last = Max(last, col->attnum);
		check_compatible(cs, i, col, static_cast<int>(col->tc) <= 3);
	}
	/* rows are deformed through a slot up to the last feature column only (the slot's
	 * descriptor caches attribute offsets); the columns after it are never deformed */
	old = MemoryContextSwitchTo(cxt);
	cs->natts = last;
	cs->rowdesc = CreateTupleDescCopy(desc);
	cs->slot = MakeSingleTupleTableSlot(cs->rowdesc, &TTSOpsHeapTuple);
	MemoryContextSwitchTo(old);
	ReleaseTupleDesc(desc);
	cs->kind = INPUT_ROW;
	cs->rowtype = rowtype;
	cs->rowtypmod = typmod;
}

// Fills a Value of a categorical column without copying text where it can.
void
categorical_value(const PgmlColumn *col, Datum d, pgml::Value *v)
{
	if (col->text_like) {
		text *t = DatumGetTextPP(d);
		v->str = VARDATA_ANY(t);
		v->len = VARSIZE_ANY_EXHDR(t);
	} else {
		char *s = pgml_datum_to_cstring(col, d);
		v->str = s;
		v->len = strlen(s);
	}
}

// A numeric column's value as double: the common types inline, the rest through the reader.
inline double
to_double(const PgmlColumn *col, Datum d)
{
	switch (col->basetype) {
	case FLOAT8OID: return DatumGetFloat8(d);
	case INT4OID: return DatumGetInt32(d);
	case INT8OID: return static_cast<double>(DatumGetInt64(d));
	case FLOAT4OID: return DatumGetFloat4(d);
	case INT2OID: return DatumGetInt16(d);
	case BOOLOID: return DatumGetBool(d) ? 1.0 : 0.0;
	default: return pgml_datum_to_double(col, d);
	}
}

void
fill_from_row(CallSite *cs, HeapTupleHeader th)
{
	HeapTuple tuple = &cs->tuple;
	tuple->t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple->t_self);
	tuple->t_tableOid = InvalidOid;
	tuple->t_data = th;
	ExecStoreHeapTuple(tuple, cs->slot, false);
	slot_getsomeattrs(cs->slot, cs->natts);
	const Datum *row_values = cs->slot->tts_values;
	const bool *row_nulls = cs->slot->tts_isnull;
	for (int i = 0; i < cs->nfeatures; i++) {
		int a = cs->attnum[i];
		pgml::Value *v = &cs->values[i];
		v->isnull = row_nulls[a];
		if (v->isnull)
			continue;
		if (cs->cols[i].tc == pgml::TypeClass::Categorical)
			categorical_value(&cs->cols[i], row_values[a], v);
		else
			v->num = to_double(&cs->cols[i], row_values[a]);
	}
}

void
fill_from_array(CallSite *cs, ArrayType *arr)
{
	Oid elemtype = ARR_ELEMTYPE(arr);
	if (elemtype != cs->elemtype) {
		/* once per query (and element type) */
		memset(&cs->elem, 0, sizeof(cs->elem));
		bool supported = pgml_classify_type(elemtype, &cs->elem);
		if (!supported || cs->elem.tc == pgml::TypeClass::Categorical)
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
							errmsg("an array of features must be numeric, not %s", pgml_type_name(get_array_type(elemtype))),
							errhint("Pass a row or jsonb for text features.")));
		get_typlenbyvalalign(elemtype, &cs->elemlen, &cs->elembyval, &cs->elemalign);
		cs->elemtype = elemtype;
	}
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("the features array must be one-dimensional")));
	int n = ARR_NDIM(arr) == 0 ? 0 : ARR_DIMS(arr)[0];
	if (n != cs->nfeatures) {
		StringInfoData names;
		initStringInfo(&names);
		for (int i = 0; i < cs->nfeatures; i++)
			appendStringInfo(&names, "%s%s", i ? ", " : "", cs->model->features[i].name.c_str());
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("model \"%s\" expects %d features, got an array of %d", cs->model_name, cs->nfeatures, n),
						errdetail("The features, in order: %s.", names.data)));
	}
	if (!cs->array_checked) {
		/* once per query and model */
		for (int i = 0; i < n; i++)
			if (cs->model->features[i].categorical())
				ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
								errmsg("feature \"%s\" of model \"%s\" is text and cannot be passed in a numeric array",
									   cs->model->features[i].name.c_str(), cs->model_name),
								errhint("Pass a row or jsonb instead.")));
		cs->array_checked = true;
	}
	if (elemtype == FLOAT8OID && !ARR_HASNULL(arr)) {
		/* the common case: read the doubles in place */
		const char *p = ARR_DATA_PTR(arr);
		for (int i = 0; i < n; i++) {
			double x;
			memcpy(&x, p + sizeof(double) * i, sizeof(double));
			cs->values[i].isnull = false;
			cs->values[i].num = x;
		}
		return;
	}
	array_iter it;
	array_iter_setup(&it, (AnyArrayType *) arr);
	for (int i = 0; i < n; i++) {
		pgml::Value *v = &cs->values[i];
		bool isnull;
		Datum d = array_iter_next(&it, &isnull, i, cs->elemlen, cs->elembyval, cs->elemalign);
		v->isnull = isnull;
		if (!isnull)
			v->num = to_double(&cs->elem, d);
	}
}

void
fill_from_jsonb(CallSite *cs, Jsonb *jb)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("jsonb features must be an object"),
						errhint("Write them like '{\"column\": value, ...}'.")));
	for (int i = 0; i < cs->nfeatures; i++) {
		const pgml::ColumnInfo &want = cs->model->features[i];
		JsonbValue found;
		JsonbValue *jv = getKeyJsonValueFromContainer(&jb->root, want.name.data(), static_cast<int>(want.name.size()),
													  &found);
		if (jv == NULL)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
							errmsg("feature \"%s\" of model \"%s\" is missing from the jsonb", want.name.c_str(),
								   cs->model_name),
							errhint("Give every feature a key; use null for a missing value.")));
		pgml::Value *v = &cs->values[i];
		v->isnull = jv->type == jbvNull;
		if (v->isnull)
			continue;
		bool ok = true;
		if (want.categorical()) {
			if (jv->type == jbvString) {
				v->str = jv->val.string.val;
				v->len = jv->val.string.len;
			} else if (jv->type == jbvNumeric) {
				char *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(jv->val.numeric)));
				v->str = s;
				v->len = strlen(s);
			} else if (jv->type == jbvBool) {
				v->str = jv->val.boolean ? "true" : "false";
				v->len = strlen(v->str);
			} else {
				ok = false;
			}
		} else if (jv->type == jbvNumeric) {
			bool overflow;
			v->num = pgml_numeric_to_double(NumericGetDatum(jv->val.numeric), &overflow);
			if (overflow)
				ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								errmsg("value of feature \"%s\" of model \"%s\" is out of range for type double precision",
									   want.name.c_str(), cs->model_name),
								errhint("Rescale the column (divide it by a constant or take its logarithm).")));
		} else if (jv->type == jbvString && want.type_class == pgml::TypeClass::Temporal) {
			/* a date or timestamp written as text, read as the model's column type would be */
			char *s = pnstrdup(jv->val.string.val, jv->val.string.len);
			PgmlColumn tcol;
			memset(&tcol, 0, sizeof(tcol));
			Oid in = want.type_name == "timestamp with time zone" ? TIMESTAMPTZOID
					 : want.type_name == "date"                   ? DATEOID
																  : TIMESTAMPOID;
			pgml_classify_type(in, &tcol);
			Oid infunc, ioparam;
			getTypeInputInfo(in, &infunc, &ioparam);
			v->num = pgml_datum_to_double(&tcol, OidInputFunctionCall(infunc, s, ioparam, -1));
		} else if (jv->type == jbvBool) {
			v->num = jv->val.boolean ? 1 : 0;
		} else {
			ok = false;
		}
		if (!ok)
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
							errmsg("feature \"%s\" of model \"%s\" must be a %s in the jsonb", want.name.c_str(),
								   cs->model_name,
								   want.categorical()                                  ? "string"
								   : want.type_class == pgml::TypeClass::Temporal ? "date or timestamp string"
																				   : "number")));
	}
}

// Resolves, converts the input and runs the model; returns the predicted class (or 0).
CallSite *
predict_common(FunctionCallInfo fcinfo, int *klass)
{
	CallSite *cs = static_cast<CallSite *>(fcinfo->flinfo->fn_extra);
	if (cs == nullptr) {
		cs = static_cast<CallSite *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallSite)));
		fcinfo->flinfo->fn_extra = cs;
	}
	if (!cs->types_known)
		resolve_types(fcinfo, cs);
	resolve(fcinfo, cs);
	if (cs->argkind == INPUT_ROW) {
		HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(1);
		map_row(cs, th, cs->model_cxt);
		fill_from_row(cs, th);
	} else if (cs->argkind == INPUT_JSONB) {
		fill_from_jsonb(cs, PG_GETARG_JSONB_P(1));
	} else if (cs->argkind == INPUT_ARRAY) {
		if (cs->model->grouped)
			ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
							errmsg("model \"%s\" has one model per group and cannot predict from an array", cs->model_name),
							errdetail("The group columns route each row to its group's model."),
							errhint("Pass a row or jsonb that has the features and the group columns.")));
		fill_from_array(cs, PG_GETARG_ARRAYTYPE_P(1));
	} else {
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("features must be a row, a numeric array or jsonb, not %s",
							   pgml_type_name(cs->features_type)),
						errhint("Write ml_predict('%s', t) with t a table alias, or pass ARRAY[...] or jsonb.",
								cs->model_name)));
	}
	const pgml::Model *model = cs->model;
	int k = 0;
	if (model->grouped && !model->grouped->fallback) {
		/* a per-group model: an unseen group is an error naming the model and the group */
		const pgml::GroupedModel::Group *g = nullptr;
		PGML_CORE(g = model->grouped->find(cs->values + (cs->nfeatures - model->grouped->columns.size())));
		if (g == nullptr)
			pgml_unseen_group(model, cs->values, cs->model_name);
	}
	PGML_CORE(k = model->predict(cs->values, cs->out));
	*klass = k;
	return cs;
}

// jsonb building: a string as a key (WJB_KEY) or a value (WJB_VALUE), a number (the shortest
// decimal that reads back as the same float8, whatever extra_float_digits says; null where not
// finite: JSON has no NaN)
void
push_text(JsonbParseState **state, JsonbIteratorToken token, const char *s, size_t len)
{
	JsonbValue v;
	v.type = jbvString;
	v.val.string.val = const_cast<char *>(s);
	v.val.string.len = static_cast<int>(len);
	pushJsonbValue(state, token, &v);
}

void
push_number(JsonbParseState **state, double d)
{
	JsonbValue v;
	if (std::isfinite(d)) {
		char buf[DOUBLE_SHORTEST_DECIMAL_LEN];
		double_to_shortest_decimal_buf(d, buf);
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(
			DirectFunctionCall3(numeric_in, CStringGetDatum(buf), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	} else {
		v.type = jbvNull;
	}
	pushJsonbValue(state, WJB_VALUE, &v);
}

void
require_classifier(const CallSite *cs, const char *fn)
{
	if (cs->model->task != pgml::Task::Classification)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("%s needs a classification model, and \"%s\" is a %s model", fn, cs->model_name,
							   pgml::task_name(cs->model->task)),
						errhint("Use ml_predict().")));
}

} // namespace

/* ml_predict(model, features) -> float8: the regression value, or the class of a numeric / boolean target */
Datum
pgml_predict(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	int k;
	CallSite *cs = predict_common(fcinfo, &k);
	const pgml::Model *m = cs->model;
	if (m->task == pgml::Task::Regression)
		PG_RETURN_FLOAT8(cs->out[0]);
	if (m->task == pgml::Task::Clustering)
		PG_RETURN_FLOAT8(k); /* the cluster */
	if (m->target.categorical())
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("model \"%s\" predicts text classes, which ml_predict cannot return as float8",
							   cs->model_name),
						errhint("Use ml_predict_label(), which returns the class as text.")));
	PG_RETURN_FLOAT8(cs->class_value[k]);
}

/* ml_predict_label(model, features) -> text: the predicted class */
Datum
pgml_predict_label(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	int k;
	CallSite *cs = predict_common(fcinfo, &k);
	require_classifier(cs, "ml_predict_label");
	const std::string &label = cs->model->classes[static_cast<size_t>(k)];
	PG_RETURN_TEXT_P(cstring_to_text_with_len(label.data(), static_cast<int>(label.size())));
}

/* ml_predict_proba(model, features) -> float8[]: class probabilities in the model's class order */
Datum
pgml_predict_proba(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	int k;
	CallSite *cs = predict_common(fcinfo, &k);
	require_classifier(cs, "ml_predict_proba");
	for (int i = 0; i < cs->nout; i++)
		cs->proba[i] = Float8GetDatum(cs->out[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(cs->proba, cs->nout, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * ml_class_probabilities(model, features) -> jsonb: {"class": probability, ...}, the same
 * probabilities as ml_predict_proba, each under its class label (no position to get wrong).
 * A probability is written as the shortest decimal that reads back as the same float8 (what
 * ml_predict_proba shows), whatever extra_float_digits says.
 */
Datum
pgml_class_probabilities(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	int k;
	CallSite *cs = predict_common(fcinfo, &k);
	require_classifier(cs, "ml_class_probabilities");
	const pgml::Model *m = cs->model;
	JsonbParseState *state = NULL;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < cs->nout && i < m->n_classes(); i++) {
		const std::string &label = m->classes[static_cast<size_t>(i)];
		push_text(&state, WJB_KEY, label.data(), label.size());
		push_number(&state, cs->out[i]); /* (a probability is finite) */
	}
	JsonbValue *res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

/*
 * ml_explain(model, features) -> jsonb: why the model predicts what it does for this row,
 *   {"output": "value" | "log-odds" | "margin" | "probability", "class": <the predicted class>,
 *    "base": b, "value": v, "features": {"<feature>": c, ...}, "columns": {"<column>": c, ...}}
 * where base plus the contributions of the features (or of the columns, their one-hot levels
 * summed) is value: the prediction (regression), the predicted class's log-odds (two classes)
 * or margin (more), or its probability (decision_tree, random_forest). Exact for the linear
 * family, tree SHAP for the trees (libxgboost's for gradient_boosting). A per-group model: the
 * row's group's model explains it (its features and columns), and "group" names the group
 * ({"<group column>": "<value>", ...}, or null when the fallback model served the row).
 */
Datum
pgml_explain(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	int k;
	CallSite *cs = predict_common(fcinfo, &k);
	const pgml::Model *m = cs->model;
	const pgml::Model *em = m;       /* the model whose features explain the row */
	const pgml::GroupKey *gk = NULL; /* a per-group model: the row's group (NULL: the fallback served it) */
	PGML_CORE({
		if (m->grouped) {
			const pgml::GroupedModel::Group *g = nullptr;
			const std::vector<int> *map = nullptr;
			em = &m->grouped->serving(*m, cs->values, &g, &map);
			gk = g != nullptr ? &g->key : nullptr;
		}
	});
	int p = em->prep.p();
	int ncol = static_cast<int>(em->features.size());
	double *feat = static_cast<double *>(palloc(sizeof(double) * Max(p, 1)));
	double *col = static_cast<double *>(palloc(sizeof(double) * Max(ncol, 1)));
	double base = 0, value = 0;
	int klass = 0;
	const char *output = NULL;
	PGML_CORE({
		pgml::Explanation e = m->explain(cs->values);
		std::copy(e.feature.begin(), e.feature.end(), feat);
		std::copy(e.column.begin(), e.column.end(), col);
		base = e.base;
		value = e.value;
		klass = e.klass;
		output = e.output; /* a literal */
	});
	JsonbParseState *state = NULL;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_text(&state, WJB_KEY, "output", 6);
	push_text(&state, WJB_VALUE, output, strlen(output));
	if (m->task == pgml::Task::Classification) {
		const std::string &label = m->classes[static_cast<size_t>(klass)];
		push_text(&state, WJB_KEY, "class", 5);
		push_text(&state, WJB_VALUE, label.data(), label.size());
	}
	push_text(&state, WJB_KEY, "base", 4);
	push_number(&state, base);
	push_text(&state, WJB_KEY, "value", 5);
	push_number(&state, value);
	push_text(&state, WJB_KEY, "features", 8);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int f = 0; f < p; f++) {
		const std::string &name = em->prep.feature_names[static_cast<size_t>(f)];
		push_text(&state, WJB_KEY, name.data(), name.size());
		push_number(&state, feat[f]);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	push_text(&state, WJB_KEY, "columns", 7);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int c = 0; c < ncol; c++) {
		const std::string &name = em->features[static_cast<size_t>(c)].name;
		push_text(&state, WJB_KEY, name.data(), name.size());
		push_number(&state, col[c]);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	if (m->grouped) {
		/* "group": the row's group's values (text, as the group keys keep them), or null when
		 * the fallback model served the row */
		push_text(&state, WJB_KEY, "group", 5);
		if (gk == NULL) {
			JsonbValue jnull;
			jnull.type = jbvNull;
			pushJsonbValue(&state, WJB_VALUE, &jnull);
		} else {
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			for (size_t c = 0; c < m->grouped->columns.size(); c++) {
				const std::string &name = m->grouped->columns[c].name;
				push_text(&state, WJB_KEY, name.data(), name.size());
				if (gk->null[c]) {
					JsonbValue jnull;
					jnull.type = jbvNull;
					pushJsonbValue(&state, WJB_VALUE, &jnull);
				} else {
					push_text(&state, WJB_VALUE, gk->values[c].data(), gk->values[c].size());
				}
			}
			pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		}
	}
	JsonbValue *res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

// ---------------------------------------------------------------- ml_predict_batch

namespace {

// What one ml_predict_batch call holds across batches (palloc'd in its memory context).
struct BatchScan {
	const pgml::Model *model;
	int nfeatures;
	int nout;
	PgmlColumn *cols;     // per feature, in the model's order
	pgml::Value *values;  // batch_rows x nfeatures
	double *out;          // batch_rows x nout
	int *klass;           // batch_rows
	double *class_value;  // per class: its value as float8 (numeric / boolean targets), else NULL
	Datum *proba;         // nout
};

// The relation's columns for the model's features; one error names every missing or mistyped one.
void
batch_match_columns(TupleDesc desc, const pgml::Model *model, const char *relname, const char *model_name,
					PgmlColumn *cols)
{
	StringInfoData problems;
	initStringInfo(&problems);
	bool missing = false;
	for (size_t i = 0; i < model->features.size(); i++) {
		const pgml::ColumnInfo &want = model->features[i];
		PgmlColumn *col = &cols[i];
		if (!pgml_find_column(desc, want.name.c_str(), col)) {
			appendStringInfo(&problems, "%sColumn \"%s\" is missing (the model expects %s).", problems.len ? " " : "",
							 want.name.c_str(), want.type_name.c_str());
			missing = true;
		} else if (static_cast<int>(col->tc) > 3 || col->tc != want.type_class) {
			appendStringInfo(&problems, "%sColumn \"%s\" has type %s; the model expects %s.", problems.len ? " " : "",
							 want.name.c_str(), pgml_type_name(col->type), want.type_name.c_str());
		}
	}
	if (problems.len > 0)
		ereport(ERROR, (errcode(missing ? ERRCODE_UNDEFINED_COLUMN : ERRCODE_DATATYPE_MISMATCH),
						errmsg("relation \"%s\" does not match model \"%s\"", relname, model_name),
						errdetail_internal("%s", problems.data),
						errhint("Use a relation (or a view) with the model's feature columns and types.")));
}

} // namespace

/*
 * ml_predict_batch(model, relation, key_column) -> SETOF (key, prediction, label, probabilities)
 *
 * Scores every row of a relation with the deployed version: the rows are read with the
 * caller's rights (privileges and row-level security apply) through a cursor, pg_ml.batch_rows
 * at a time, and each batch is predicted by the core at once. Materialize mode: the result
 * is a tuplestore.
 */
extern "C" {
PG_FUNCTION_INFO_V1(pgml_predict_batch);
}

Datum
pgml_predict_batch(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model and relation must not be NULL")));
	char *relname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char *keyname = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), argtype == INT8OID ? INT8OID : TEXTOID, PGML_USE, false, &ref);
	if (ref.deployed_version == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("model \"%s\" has no deployed version", ref.name)));

	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

	/* everything of this call lives in its own context, deleted at the end (or on error) */
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext cxt = AllocSetContextCreate(outer, "pg_ml predict batch", ALLOCSET_DEFAULT_SIZES);
	MemoryContext batch_cxt = AllocSetContextCreate(cxt, "pg_ml predict batch rows", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);
	ModelPin *pin = pin_model(&ref, cxt);
	const pgml::Model *model = pin->model.get();

	Oid relid = pgml_relation_oid(relname);
	char *rel_sql = pgml_relation_sql_name(relid);
	/* rights first, so that a relation the caller cannot read reveals nothing of its columns
	 * (the cursor's query checks them again, with row-level security) */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(get_rel_relkind(relid)), get_rel_name(relid));
	BatchScan *bs = static_cast<BatchScan *>(palloc0(sizeof(BatchScan)));
	bs->model = model;
	bs->nfeatures = static_cast<int>(model->features.size());
	bs->nout = Max(model->n_outputs(), 1);
	bs->cols = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * bs->nfeatures));
	PgmlColumn keycol;
	memset(&keycol, 0, sizeof(keycol));
	{
		Relation rel = relation_open(relid, AccessShareLock);
		TupleDesc desc = RelationGetDescr(rel);
		if (keyname != NULL && !pgml_find_column(desc, keyname, &keycol)) {
			relation_close(rel, AccessShareLock);
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
							errmsg("key column \"%s\" does not exist in relation \"%s\"", keyname, relname),
							errhint("Pass the name of a column that identifies the rows, or NULL for no key.")));
		}
		batch_match_columns(desc, model, relname, ref.name, bs->cols);
		relation_close(rel, AccessShareLock);
	}
	const int cap = pgml_batch_rows;
	bs->values = static_cast<pgml::Value *>(palloc0(sizeof(pgml::Value) * static_cast<size_t>(cap) * bs->nfeatures));
	bs->out = static_cast<double *>(palloc0(sizeof(double) * static_cast<size_t>(cap) * bs->nout));
	bs->klass = static_cast<int *>(palloc0(sizeof(int) * cap));
	bs->proba = static_cast<Datum *>(palloc0(sizeof(Datum) * bs->nout));
	bool classifier = model->task == pgml::Task::Classification;
	bool numeric_classes = classifier && !model->target.categorical();
	if (numeric_classes) {
		bs->class_value = static_cast<double *>(palloc(sizeof(double) * model->n_classes()));
		for (int k = 0; k < model->n_classes(); k++) {
			const std::string &label = model->classes[static_cast<size_t>(k)];
			bs->class_value[k] = model->target.type_class == pgml::TypeClass::Boolean ? (label == "true" ? 1.0 : 0.0)
																					  : strtod(label.c_str(), NULL);
		}
	}
	text **labels = NULL;
	if (classifier) {
		labels = static_cast<text **>(palloc(sizeof(text *) * model->n_classes()));
		for (int k = 0; k < model->n_classes(); k++) {
			const std::string &label = model->classes[static_cast<size_t>(k)];
			labels[k] = cstring_to_text_with_len(label.data(), static_cast<int>(label.size()));
		}
	}

	/* the query: the key as text, then the features in the model's order */
	StringInfoData sql;
	initStringInfo(&sql);
	if (keyname != NULL)
		appendStringInfo(&sql, "SELECT %s::pg_catalog.text", quote_identifier(keyname));
	else
		appendStringInfoString(&sql, "SELECT NULL::pg_catalog.text");
	for (int i = 0; i < bs->nfeatures; i++)
		appendStringInfo(&sql, ", %s", quote_identifier(bs->cols[i].name));
	appendStringInfo(&sql, " FROM %s", rel_sql);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Portal portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, cap);
		uint64 n = SPI_processed;
		if (n == 0)
			break;
		SPITupleTable *tt = SPI_tuptable;
		MemoryContext spi_cxt = MemoryContextSwitchTo(batch_cxt);
		for (uint64 r = 0; r < n; r++) {
			HeapTuple tup = tt->vals[r];
			pgml::Value *row = &bs->values[r * bs->nfeatures];
			for (int c = 0; c < bs->nfeatures; c++) {
				bool isnull;
				Datum d = SPI_getbinval(tup, tt->tupdesc, c + 2, &isnull);
				row[c].isnull = isnull;
				if (isnull)
					continue;
				if (bs->cols[c].tc == pgml::TypeClass::Categorical)
					categorical_value(&bs->cols[c], d, &row[c]);
				else
					row[c].num = to_double(&bs->cols[c], d);
			}
		}
		size_t nrows = static_cast<size_t>(n);
		PGML_CORE(model->predict_batch(bs->values, nrows, bs->out, bs->klass));
		for (uint64 r = 0; r < n; r++) {
			Datum values[4];
			bool nulls[4] = {false, false, false, false};
			values[0] = SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &nulls[0]);
			const double *o = &bs->out[r * bs->nout];
			int k = bs->klass[r];
			/* prediction: what ml_predict returns (NULL for text classes) */
			if (model->task == pgml::Task::Regression)
				values[1] = Float8GetDatum(o[0]);
			else if (model->task == pgml::Task::Clustering)
				values[1] = Float8GetDatum(k);
			else if (numeric_classes)
				values[1] = Float8GetDatum(bs->class_value[k]);
			else
				nulls[1] = true;
			/* label and probabilities: classifiers only */
			if (classifier) {
				values[2] = PointerGetDatum(labels[k]);
				for (int j = 0; j < bs->nout; j++)
					bs->proba[j] = Float8GetDatum(o[j]);
				values[3] = PointerGetDatum(
					construct_array(bs->proba, bs->nout, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			} else {
				nulls[2] = nulls[3] = true;
			}
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		MemoryContextSwitchTo(spi_cxt);
		SPI_freetuptable(tt);
		MemoryContextReset(batch_cxt);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
