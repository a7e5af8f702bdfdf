// pg_ml glue: the only code that sees PostgreSQL.
//
// Rules (STYLE.md "The C++/PostgreSQL boundary"):
//  - Code here is C-style: while PostgreSQL functions that can raise an error run, no
//    C++ object with a destructor is alive on the stack. Core objects are held by raw
//    pointer and freed by a memory-context callback (pgml_own), so an error cleans them up.
//  - The core is entered only through PGML_CORE(...) (boundary.hpp), which catches every
//    C++ exception and turns it into ereport() after the C++ frames are gone.
#pragma once

// The core first: its headers pull in the C++ standard library, which must not see
// the macros PostgreSQL's headers define (printf, Max, ...).
#include "../core/data.hpp"
#include "../core/json.hpp"
#include "../core/model.hpp"
#include "../core/trainer.hpp"

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
}

#include "boundary.hpp"

// ---------------------------------------------------------------- settings (init.cpp)
extern int pgml_max_memory_mb;
extern int pgml_batch_rows;
extern int pgml_max_threads;
extern bool pgml_stats_aggregate;

// ---------------------------------------------------------------- ownership of core objects
// Deletes obj with deleter when cxt is reset or deleted (including on error).
void pgml_own(MemoryContext cxt, void *obj, void (*deleter)(void *));

// A default-constructed T, created through the boundary and deleted with CurrentMemoryContext.
template <typename T>
T *
pgml_new_owned(void)
{
	T *obj = nullptr;
	PGML_CORE(obj = new T());
	pgml_own(CurrentMemoryContext, obj, [](void *p) { delete static_cast<T *>(p); });
	return obj;
}

// ---------------------------------------------------------------- relations (reader.cpp)
struct PgmlColumn {
	char name[NAMEDATALEN];
	Oid type;           // as declared
	Oid basetype;       // domains resolved
	pgml::TypeClass tc;
	int attnum;         // in the relation / row type (1-based), 0 if absent
	Oid outfunc;        // categorical types read through their output function
	bool text_like;     // text / varchar / bpchar: read directly
};

// Resolves a relation name with the caller's search_path; errors if missing.
Oid pgml_relation_oid(const char *relname);
// A relation name or a query (*is_query: a temporary view of it, made with the caller's
// rights); *display is what messages call it. pgml_source_drop drops such a view at the end
// of a call that succeeded.
Oid pgml_source_oid(const char *source, const char **display, bool *is_query);
void pgml_source_drop(Oid relid);
// Schema-qualified, quoted name of a relation (palloc'd).
char *pgml_relation_sql_name(Oid relid);
// How a type is used; false if unsupported.
bool pgml_classify_type(Oid type, PgmlColumn *col);
// The type name for messages ("integer", "text", ...).
const char *pgml_type_name(Oid type);
// Fills col from attribute `name` of tupdesc; false if the column does not exist.
bool pgml_find_column(TupleDesc desc, const char *name, PgmlColumn *col);
// Converts one datum of a non-categorical column to double.
double pgml_datum_to_double(const PgmlColumn *col, Datum d);
// A numeric Datum as float8, NaN and +-Infinity as their float8 counterparts; *overflow is set
// when a finite numeric lies beyond double precision (the caller raises 22003 naming the value's column).
double pgml_numeric_to_double(Datum d, bool *overflow);
// Converts one datum of a categorical column to a C string (palloc'd in the current context).
char *pgml_datum_to_cstring(const PgmlColumn *col, Datum d);

// Streams "SELECT cols..., target FROM rel" into a consumer, in batches of pgml_batch_rows.
// The consumer is called with a filled batch; it crosses into the core itself.
typedef void (*PgmlBatchConsumer)(void *arg, const pgml::Batch *batch);
int64 pgml_scan_relation(Oid relid, const PgmlColumn *features, int nfeatures, const PgmlColumn *target,
                         PgmlBatchConsumer consume, void *arg);

// ---------------------------------------------------------------- what a version learned (learned.cpp)
// The active snapshot as recorded with a read (pg_snapshot's text form, 64-bit ids, subtransactions
// listed); *strict: the read must also be filtered by it (ml.row_is_new(xmin, NULL, it)).
char *pgml_snapshot_record(bool *strict);
// Whether a recorded snapshot can still tell rows apart (parses, and is less than 2^31 ids old).
bool pgml_snapshot_usable(const char *snapshot);
char *pgml_system_identifier(void); // "<cluster system identifier>/<database oid>"
// The FROM item the readers put before their alias " r": relid's name, or while a training run
// reads part of it or several relations, the subquery set for it (cleared at any (sub)transaction end).
const char *pgml_from_item(Oid relid);
void pgml_set_read_from(Oid relid, const char *from_sql); // NULL: read relid itself
// s as a JSON string (null for NULL)
void pgml_json_string(StringInfo buf, const char *s);
// Set by an auto-retrain job around its ml.retrain call: a relation with no row the deployed
// version has not learned gives a row without a version instead of an error (train.cpp).
extern bool pgml_retrain_nothing_new_is_ok;

// Computes the training statistics with one ml.train_stats aggregate query (aggregate.cpp)
// and feeds them to the trainer (which must say uses_stats_aggregate()). Returns rows read.
Oid pgml_stats_aggregate_schema(void); // InvalidOid: this database's pg_ml has no ml.train_stats
// Schema ml when it holds the internal function or aggregate `name` (prokind), else InvalidOid.
Oid pgml_internal_function_schema(const char *name, char prokind);
int64 pgml_aggregate_relation(pgml::Trainer *trainer, Oid schema_oid, Oid relid, const PgmlColumn *features,
                              int nfeatures, const PgmlColumn *target);
// k-means after pgml_aggregate_relation: the Lloyd steps as ml.kmeans_step queries
// (kmeans_aggregate.cpp); nothing for other algorithms.
void pgml_kmeans_steps(pgml::Trainer *trainer, Oid schema_oid, Oid relid, const PgmlColumn *features, int nfeatures);
// Whether the trainer can run through the aggregates in schema_oid: false when it needs
// ml.kmeans_step and the database's pg_ml has none (installed before it existed).
bool pgml_kmeans_steps_available(const pgml::Trainer *trainer, Oid schema_oid);

// Naive Bayes and binary logistic regression through aggregates (eval_aggregate.cpp): the
// trainer must say uses_class_aggregate(). Returns rows read, or -1 (nothing given to the
// trainer) when the split cannot be reproduced from aggregates (or logistic regression's
// target has more than two classes): then read the rows. *stats_ms: the milliseconds the
// class statistics took (the reading; the Newton steps and the evaluation are the fit's).
Oid pgml_class_aggregate_schema(void); // InvalidOid: this database's pg_ml has no ml.eval_stats
int64 pgml_class_aggregate_relation(pgml::Trainer *trainer, Oid schema_oid, Oid relid, const PgmlColumn *features,
                                    int nfeatures, const PgmlColumn *target, double test_size,
                                    const pgml::Model *compare, double *stats_ms);

// Rows the relation probably has: pg_class.reltuples scaled to its current size like the
// planner does, -1 when never counted (no VACUUM / ANALYZE yet) or not a table. Cheap (no
// planning): it sizes buffers and samples and feeds the progress report.
int64 pgml_relation_row_estimate(Oid relid);


// The row arguments of the internal aggregates and functions in schema ml (aggregate.cpp):
// fixed types, no argument type looked up at call time. A row's features are two arrays,
// the numeric ones as float8[] and the categorical ones as text[], each in feature order
// (categorical[i] says which array feature i is in); the target is a float8 argument
// (numeric) or a text one (categorical), the other NULL.
struct PgmlRowArgs {
	int nfeat;
	const uint8_t *categorical; // per feature (kept by the caller)
	int nnum, ncat;
	bool *isnull;               // per feature, filled by pgml_read_row_args
	double *num;
	const char **str;
	size_t *len;
};
// Sets up args in the current memory context.
void pgml_row_args_init(PgmlRowArgs *args, int nfeat, const uint8_t *categorical);
// Reads the features from arguments num_arg (float8[]) and cat_arg (text[]); an array of the
// wrong length is an error (22023) naming fname. Strings point into the arguments.
void pgml_read_row_args(FunctionCallInfo fcinfo, PgmlRowArgs *args, int num_arg, int cat_arg, const char *fname);
// Reads the target from arguments target_arg (float8) and target_arg + 1 (text); returns
// whether it is NULL.
bool pgml_read_target_args(FunctionCallInfo fcinfo, int target_arg, bool categorical, double *num, const char **str,
						   size_t *len, const char *fname);
// SQL for those arguments, from the columns of a relation (alias "r." or ""): the
// "<num features>, <cat features>" arrays and the "<target float8>, <target text>" pair (both
// NULL without a target). Every cast and function is pg_catalog-qualified, and converts as
// the row reader does (pgml_datum_to_double, pgml_datum_to_cstring).
void pgml_append_row_args(StringInfo buf, const PgmlColumn *features, int nfeatures, const char *alias);
void pgml_append_target_args(StringInfo buf, const PgmlColumn *target, const char *alias);
// The internal functions' cheaper overloads: "<cat features text[]>, <numeric feature>, ...,
// NULL padding" (one float8 argument per numeric feature, 8/16/32/64/95 slots, at most
// max_slots: 95 for ml.train_stats, 64 for the others; false when there are more features: use
// pgml_append_row_args), read by pgml_read_row_slots (cat_arg, then the slots from first_num_arg).
bool pgml_append_row_slots(StringInfo buf, const PgmlColumn *features, int nfeatures, const char *alias, int max_slots);
void pgml_read_row_slots(FunctionCallInfo fcinfo, PgmlRowArgs *args, int cat_arg, int first_num_arg, const char *fname);
// "<target float8>, <target text>, <features>": the slots form when it fits max_slots, else the arrays.
void pgml_append_row_call_args(StringInfo buf, const PgmlColumn *target, const PgmlColumn *features, int nfeatures,
							   const char *alias, int max_slots);

// A relation's row count for algorithm => 'auto': the planner's estimate, exact below
// 2 * exact_below (-1 when it cannot tell).
double pgml_estimate_rows(Oid relid, double exact_below);

// The error for a column whose type pg_ml cannot use.
void pgml_unsupported_column(const char *relname, const PgmlColumn *col) pg_attribute_noreturn();

// ---------------------------------------------------------------- monitoring (monitor.cpp)
// A version's training profile (ml.versions.profile), owned by CurrentMemoryContext; NULL when
// the version has none. metrics (optional): the version's test metrics as JSON text ("train"
// when it held no rows out: *which says which), NULL when none.
namespace pgml {
struct Profile;
}
pgml::Profile *pgml_load_profile(int64 model_id, int32 version, char **metrics = nullptr, const char **which = nullptr);

// ---------------------------------------------------------------- catalog (catalog.cpp)
struct PgmlModelRef {
	int64 id;
	char *name;
	Oid owner; // the owner of the model's sequence (InvalidOid if it is gone)
	Oid seq;   // the model's sequence ml.model_<id>: its owner and SELECT grants are the model's
	int32 deployed_version; // 0 if none
	TransactionId deployed_xmin; // changes whenever the version row is written
	char *task;
	char *algorithm;
};

enum PgmlAccess { PGML_USE, PGML_OWN };

// Looks a model up by name (text) or id (bigint) as passed to a SQL function, checks the
// caller's access and optionally locks the row (FOR UPDATE) against concurrent changes.
void pgml_resolve_model(Datum arg, Oid argtype, PgmlAccess access, bool lock, PgmlModelRef *out);
// Reads a version's blob (palloc'd in the current context) and the row's xmin.
// *kind gets the row's model_kind (the algorithm its blob must hold).
bytea *pgml_load_blob(int64 model_id, int32 version, TransactionId *xmin, bool fresh, char **kind);
// Switches to the catalog owner for catalog access; returns what pgml_catalog_end restores.
void pgml_catalog_begin(Oid *save_user, int *save_sec);
void pgml_catalog_end(Oid save_user, int save_sec);
// Raises 55000 unless the database's pg_ml objects are the version this library serves (version.cpp).
void pgml_require_current_catalog(void);
Datum pgml_jsonb_from_cstring(const char *json);
// Matches a relation's columns to a model's: fills features (model order) and target (when
// the model has one);
// one error names every missing or mistyped column. NOTICE lists ignored columns if notice_extra.
// target_optional: the target is not matched (ml_monitor without labels).
void pgml_match_columns(TupleDesc desc, const pgml::Model *model, const char *relname, const char *model_name,
                        PgmlColumn *features, PgmlColumn *target, bool notice_extra, bool target_optional = false);
// Inserts a new model (SPI connected under catalog identity) and creates its sequence, owned by
// the owner: types / values / nulls (' ' or 'n') of name, owner (regrole), task, algorithm,
// target, relation, features, classes. Returns the model's id.
int64 pgml_insert_model(const Oid *types, const Datum *values, const char *nulls);
// One row of ml.versions, as training and import write it. jsonb fields are Datums; parent 0 and
// classes 0 are NULL, sources 0 the empty list (no recorded reads); the blob is already bound to
// (model_id, version).
struct PgmlVersionRow {
	int64 model_id = 0;
	int32 version = 0;
	int32 parent = 0; // 0: none (NULL)
	const char *algorithm = nullptr, *mode = nullptr, *relation = nullptr;
	Datum hyperparams = 0, preprocess = 0, preprocessing_state = 0, metrics = 0, report = 0, coefficients = 0;
	int64 rows_train = 0, rows_test = 0;
	double test_size = 0;
	uint64 seed = 0;
	const char *fingerprint = nullptr;
	bytea *blob = nullptr;
	uint16 format = 0;
	int32 blob_length = 0;
	uint32 checksum = 0;
	Oid trained_by = InvalidOid;
	double read_ms = 0, fit_ms = 0, duration_ms = 0;
	Datum sources = 0, classes = 0;
	Datum profile = 0; // 0: NULL (ml_monitor's training profile)
};
// Inserts the row (SPI connected under catalog identity); model_kind is the algorithm.
void pgml_insert_version(const PgmlVersionRow *row);
// Whether the catalog is 0.3.0's: models owned through their sequences (false before ALTER
// EXTENSION UPDATE: ml.models.owner and ml.grants).
bool pgml_catalog_owned_models(void);
// The model sequence's name, quoted and schema-qualified (an error if it is gone).
char *pgml_model_seq_sql(Oid seq);
// Sets the deployed version (SPI connected under catalog identity) and the model's algorithm to its.
void pgml_set_deployed(int64 model_id, int32 version);
// Deploys version (SPI connected under catalog identity): sets it and records the deployment.
void pgml_record_deploy(int64 model_id, int32 version, const char *reason, Oid by);
// Deserializes the blob of version `version` of model ref (an error for a corrupt one, and
// XX001 for a blob bound to another row: model id, version, algorithm (the row's model_kind,
// `kind`: versions of one model may differ in algorithm) or task differ); the model is owned by cxt.
pgml::Model *pgml_deserialize(bytea *blob, MemoryContext cxt, const PgmlModelRef *ref, int32 version,
							  const char *kind);
// The model's blob bound to the catalog row it goes into (model id, version): serialized into
// *buf (which the caller keeps) and copied into the returned bytea; *format and *checksum are
// its header's (ml.versions.format_version, checksum).
bytea *pgml_serialize_bound(pgml::Model *model, int64 model_id, int32 version, std::vector<uint8_t> *buf,
							uint16 *format, uint32 *checksum);
// The error for a model whose deployed version's row is gone (55000).
void pgml_missing_deployed(const PgmlModelRef *ref) pg_attribute_noreturn();
// The model of argument 0 (name or id; the caller may use it) and its version of argument
// version_arg (NULL: the deployed one), deserialized (owned by CurrentMemoryContext); errors for
// an unknown model or version, and for a NULL model or relation (argument 1) of function fname
// (ml_evaluate, ml_monitor; admin.cpp).
pgml::Model *pgml_load_version_arg(FunctionCallInfo fcinfo, const char *fname, int version_arg, PgmlModelRef *ref,
                                   int32 *version);
// A copy of a relation's tuple descriptor (admin.cpp).
TupleDesc pgml_relation_desc(Oid relid);
// The deployed version of a resolved model, read fresh and deserialized (owned by
// CurrentMemoryContext); an error when the model has no deployed version.
pgml::Model *pgml_load_deployed(const PgmlModelRef *ref);
