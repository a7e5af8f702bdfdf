// pg_ml glue: auto-retrain (ml_auto_retrain and its counting trigger) and the job queue
// (ml_run_jobs, and the per-database background worker's loop).
//
// Counting. The trigger is statement-level with a transition table, so a statement costs a
// few catalog statements whatever its row count. The transaction that finds the model's
// counter row (ml.auto_retrain) unlocked takes it (FOR NO KEY UPDATE SKIP LOCKED: never
// waits), adds its rows and the rows others counted meanwhile (ml.auto_retrain_batches, rows
// only visible once their transaction committed) to the open window, and queues one job when
// the window reaches min_new_rows. A transaction that finds the row locked only appends a
// batch row, which never waits either. REPEATABLE READ and SERIALIZABLE transactions always
// append (taking the lock could fail them with a serialization error); the worker and
// ml_run_jobs fold what is left (the "sweep"). One holder at a time means one job per
// threshold crossing.
//
// What a job learns. A job runs ml_retrain(model, table, mode) on the table itself, which reads
// what the README's retrain table says: for incremental and continued training, the rows the
// deployed version has not learned (by their inserting transaction, against the snapshot the
// version recorded in ml.versions.sources), through the model owner's privileges and row-level
// security; nothing is copied. A job therefore takes every row committed before it ran, also
// rows of later windows; the job of such a window finds nothing left and ends without a version
// (ml.retrain returns no version then, pgml_retrain_nothing_new_is_ok). The batch rows (each
// statement's count and inserting transaction) only count rows towards the windows.
// Identity. A model's trigger is the trigger whose function is ml.auto_retrain_trigger (which
// only pg_ml can attach) and whose argument is the model's id; its name is only for people (a
// table's owner may rename it to anything).
//
// Running. A job runs as the model's owner (SECURITY_RESTRICTED_OPERATION, setting changes
// rolled back) through ml.retrain() (ml_retrain by id, in schema ml), in a subtransaction (ml_run_jobs) or a transaction (the
// worker), so a failed job leaves no version behind and the deployed one untouched; its error
// is recorded and it is retried later until pg_ml.job_max_attempts. Claims use FOR UPDATE
// SKIP LOCKED, and a job waits for the earlier jobs of its model. A worker's claim is
// committed ('running', with its pid): a job whose runner process is gone is reset by the
// next runner.
#include "jobs.hpp"

extern "C" {
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(pgml_auto_retrain);
PG_FUNCTION_INFO_V1(pgml_auto_retrain_trigger);
PG_FUNCTION_INFO_V1(pgml_run_jobs);
PG_FUNCTION_INFO_V1(pgml_job_runner);
}

#define TRIGGER_PREFIX "pgml_auto_retrain_"
#define TRANSITION_TABLE "pgml_new_rows"

// ---------------------------------------------------------------- small SPI helpers
// All run as the catalog owner with SPI connected.

static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
	int rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	if (expect < 0 ? rc < 0 : rc != expect)
		elog(ERROR, "pg_ml: catalog statement failed (%s): %s", SPI_result_code_string(rc), sql);
}

static int64
spi_int8(int col, bool *isnull)
{
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
	return *isnull ? 0 : DatumGetInt64(d);
}

/* a saved plan, prepared on first use (plans are revalidated by the plan cache) */
static SPIPlanPtr
saved_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL) {
		SPIPlanPtr p = SPI_prepare(sql, nargs, types);
		if (p == NULL)
			elog(ERROR, "pg_ml: could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "pg_ml: could not keep a plan");
		*slot = p;
	}
	return *slot;
}

static Oid
trigger_function_oid(void)
{
	Oid nsp = get_namespace_oid("ml", false);
	List *name = list_make2(makeString(get_namespace_name(nsp)), makeString(pstrdup("auto_retrain_trigger")));
	return LookupFuncName(name, 0, NULL, false);
}

/*
 * find_triggers: the auto-retrain triggers of a model, found by what nobody but pg_ml can set:
 * the trigger function (ml.auto_retrain_trigger, not executable by PUBLIC) and its argument,
 * the model's id. Never by name: a table's owner may rename a trigger to anything. The result
 * is in SPI_tuptable: (trigger oid, table oid). SPI connected, catalog owner.
 */
static uint64
find_triggers(int64 model_id)
{
	char arg[32];
	int len = snprintf(arg, sizeof arg, "%lld", (long long) model_id) + 1; /* with its terminating NUL, as tgargs */
	bytea *args = static_cast<bytea *>(palloc(VARHDRSZ + len));
	SET_VARSIZE(args, VARHDRSZ + len);
	memcpy(VARDATA(args), arg, len);
	Oid t[2] = {OIDOID, BYTEAOID};
	Datum v[2] = {ObjectIdGetDatum(trigger_function_oid()), PointerGetDatum(args)};
	spi_exec("SELECT t.oid, t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.tgfoid OPERATOR(pg_catalog.=) $1 "
			 "AND t.tgnargs OPERATOR(pg_catalog.=) 1 AND t.tgargs OPERATOR(pg_catalog.=) $2 ORDER BY t.oid",
			 2, t, v, SPI_OK_SELECT);
	return SPI_processed;
}

// ---------------------------------------------------------------- counting

/*
 * fold_locked: the caller holds the model's counter row (locked FOR NO KEY UPDATE). Adds
 * own_rows and the batches counted meanwhile by others to the open window; queues one job
 * once the window holds min_new_rows. Returns whether a job was queued. Batches a job is
 * deleting (its transaction's rows were trained on already) are skipped, not waited for.
 */
static SPIPlanPtr plan_fold_refit, plan_fold_incremental, plan_queue, plan_counter;

static bool
fold_locked(int64 model_id, bool incremental, int64 min_new_rows, int64 pending, int64 window_no, Datum relation,
			int64 own_rows)
{
	Oid t2[2] = {INT8OID, INT8OID};
	Datum v2[2] = {Int64GetDatum(model_id), Int64GetDatum(window_no)};
	SPIPlanPtr fold =
		incremental
			? saved_plan(&plan_fold_incremental,
						 "WITH f AS (UPDATE ml.auto_retrain_batches SET window_no = $2 WHERE id OPERATOR(pg_catalog.=) ANY (SELECT id "
						 "FROM ml.auto_retrain_batches WHERE model_id OPERATOR(pg_catalog.=) $1 AND window_no IS NULL "
						 "FOR UPDATE SKIP LOCKED) RETURNING rows) SELECT pg_catalog.sum(rows)::pg_catalog.int8 FROM f",
						 2, t2)
			: saved_plan(&plan_fold_refit,
						 "WITH f AS (DELETE FROM ml.auto_retrain_batches WHERE id OPERATOR(pg_catalog.=) ANY (SELECT id "
						 "FROM ml.auto_retrain_batches WHERE model_id OPERATOR(pg_catalog.=) $1 AND window_no IS NULL "
						 "FOR UPDATE SKIP LOCKED) RETURNING rows) SELECT pg_catalog.sum(rows)::pg_catalog.int8 FROM f",
						 2, t2);
	if (SPI_execute_plan(fold, v2, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_ml: could not count the new rows");
	bool isnull;
	int64 folded = spi_int8(1, &isnull);
	int64 total = pending + own_rows + folded;
	if (total == pending)
		return false;
	bool queue = total >= min_new_rows;
	if (queue) {
		Oid t[4] = {INT8OID, TEXTOID, INT8OID, INT8OID};
		Datum v[4] = {Int64GetDatum(model_id), relation, Int64GetDatum(total), Int64GetDatum(window_no)};
		char nulls[4] = {' ', ' ', ' ', incremental ? ' ' : 'n'};
		SPIPlanPtr p = saved_plan(&plan_queue,
								  "INSERT INTO ml.jobs (model_id, kind, mode, relation, rows, window_no) "
								  "SELECT $1, 'auto_retrain', a.mode, $2, $3, $4 FROM ml.auto_retrain a "
								  "WHERE a.model_id OPERATOR(pg_catalog.=) $1",
								  4, t);
		if (SPI_execute_plan(p, v, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "pg_ml: could not queue a job");
		total = 0;
		window_no++;
	}
	Oid t3[3] = {INT8OID, INT8OID, INT8OID};
	Datum v3[3] = {Int64GetDatum(model_id), Int64GetDatum(total), Int64GetDatum(window_no)};
	SPIPlanPtr p = saved_plan(&plan_counter,
							  "UPDATE ml.auto_retrain SET pending_rows = $2, window_no = $3 "
							  "WHERE model_id OPERATOR(pg_catalog.=) $1",
							  3, t3);
	if (SPI_execute_plan(p, v3, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_ml: could not update the row counter");
	return queue;
}

static SPIPlanPtr plan_take, plan_peek, plan_batch;

/* take_counter: locks the model's counter row unless another transaction holds it */
static bool
take_counter(int64 model_id, bool *incremental, int64 *min_new_rows, int64 *pending, int64 *window_no, Datum *relation)
{
	Oid t = INT8OID;
	Datum v = Int64GetDatum(model_id);
	SPIPlanPtr p = saved_plan(&plan_take,
							  "SELECT mode, min_new_rows, pending_rows, window_no, relation FROM ml.auto_retrain "
							  "WHERE model_id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE SKIP LOCKED",
							  1, &t);
	if (SPI_execute_plan(p, &v, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_ml: could not read the auto-retrain settings");
	if (SPI_processed != 1)
		return false;
	HeapTuple tup = SPI_tuptable->vals[0];
	TupleDesc desc = SPI_tuptable->tupdesc;
	bool isnull;
	*incremental = strcmp(SPI_getvalue(tup, desc, 1), "refit") != 0;
	*min_new_rows = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	*pending = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	*window_no = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	*relation = SPI_getbinval(tup, desc, 5, &isnull);
	return true;
}

/*
 * The trigger: AFTER INSERT FOR EACH STATEMENT, REFERENCING NEW TABLE, argument the model id.
 * Errors only for a misuse (or a catalog failure): the user's insert must go through.
 */
Datum
pgml_auto_retrain_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("ml.auto_retrain_trigger() can only be called as a trigger")));
	TriggerData *td = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(td->tg_event) || td->tg_newtable == NULL || td->tg_trigger->tgnargs != 1)
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("ml.auto_retrain_trigger() must be fired AFTER INSERT FOR EACH STATEMENT with a transition table"),
						errdetail("Trigger \"%s\" on \"%s\" is not.", td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation)),
						errhint("Create it with ml_auto_retrain(); it never counts rows one by one.")));
	char *end;
	int64 model_id = strtoll(td->tg_trigger->tgargs[0], &end, 10);
	if (*end != '\0' || model_id <= 0)
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("ml.auto_retrain_trigger() needs a model id argument, not \"%s\"", td->tg_trigger->tgargs[0])));
	int64 n = tuplestore_tuple_count(td->tg_newtable);
	if (n == 0)
		return PointerGetDatum(NULL);

	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t = INT8OID;
	Datum v = Int64GetDatum(model_id);
	bool incremental = false;
	int64 min_new_rows = 0, pending = 0, window_no = 0;
	Datum relation = 0;
	bool holder = !IsolationUsesXactSnapshot() &&
				  take_counter(model_id, &incremental, &min_new_rows, &pending, &window_no, &relation);
	bool active = holder;
	if (!holder) {
		SPIPlanPtr p = saved_plan(&plan_peek, "SELECT mode FROM ml.auto_retrain WHERE model_id OPERATOR(pg_catalog.=) $1",
								  1, &t);
		if (SPI_execute_plan(p, &v, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "pg_ml: could not read the auto-retrain settings");
		active = SPI_processed == 1; /* else: auto-retrain was turned off; nothing to count */
		if (active)
			incremental = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "refit") != 0;
	}
	if (active && (incremental || !holder)) {
		/* a batch row: rows counted by someone else later (window NULL); for incremental mode also
		   the watermark of the rows (the inserting transaction, which is the rows' xmin) */
		Oid bt[4] = {INT8OID, INT8OID, INT8OID, INT8OID};
		Datum bv[4] = {Int64GetDatum(model_id), Int64GetDatum(n), Int64GetDatum(window_no),
					   Int64GetDatum(incremental ? (int64) U64FromFullTransactionId(GetCurrentFullTransactionId()) : 0)};
		char bn[4] = {' ', ' ', holder ? ' ' : 'n', incremental ? ' ' : 'n'};
		SPIPlanPtr p = saved_plan(&plan_batch,
								  "INSERT INTO ml.auto_retrain_batches (model_id, rows, window_no, xid) VALUES ($1, $2, $3, $4)",
								  4, bt);
		if (SPI_execute_plan(p, bv, bn, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "pg_ml: could not count the new rows");
	}
	if (holder)
		fold_locked(model_id, incremental, min_new_rows, pending, window_no, relation, n);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	return PointerGetDatum(NULL);
}

/* sweep: folds the batches left by transactions that could not (runner's own transaction) */
static int
sweep(Oid runner_role)
{
	Oid t = OIDOID;
	Datum v = ObjectIdGetDatum(runner_role);
	spi_exec("SELECT a.model_id FROM ml.auto_retrain a JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) a.model_id "
			 "JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid "
			 "WHERE pg_catalog.pg_has_role($1, s.relowner, 'USAGE') ORDER BY a.model_id",
			 1, &t, &v, SPI_OK_SELECT);
	uint64 nmodels = SPI_processed;
	int64 *ids = static_cast<int64 *>(palloc(sizeof(int64) * (nmodels + 1)));
	for (uint64 i = 0; i < nmodels; i++) {
		bool isnull;
		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	int queued = 0;
	for (uint64 i = 0; i < nmodels; i++) {
		bool incremental;
		int64 min_new_rows, pending, window_no;
		Datum relation;
		if (take_counter(ids[i], &incremental, &min_new_rows, &pending, &window_no, &relation) &&
			fold_locked(ids[i], incremental, min_new_rows, pending, window_no, relation, 0))
			queued++;
	}
	return queued;
}

/* reset_dead_jobs: jobs a worker claimed whose process is gone are queued again (or failed) */
static void
reset_dead_jobs(void)
{
	Oid t = INT4OID;
	Datum v = Int32GetDatum(pgml_job_max_attempts);
	spi_exec("UPDATE ml.jobs j SET status = CASE WHEN j.attempts OPERATOR(pg_catalog.>=) $1 THEN 'failed' ELSE 'queued' END, "
			 "finished_at = CASE WHEN j.attempts OPERATOR(pg_catalog.>=) $1 THEN pg_catalog.clock_timestamp() END, "
			 "retry_at = pg_catalog.clock_timestamp(), error_code = '57P01', "
			 "error = pg_catalog.format('the process running the job (pid %s) stopped before the job finished', j.runner_pid) "
			 "WHERE j.status OPERATOR(pg_catalog.=) 'running' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a "
			 "WHERE a.pid OPERATOR(pg_catalog.=) j.runner_pid AND a.backend_start OPERATOR(pg_catalog.<=) j.started_at)",
			 1, &t, &v, SPI_OK_UPDATE);
}

// ---------------------------------------------------------------- who runs the jobs
//
// The queue is only as good as what runs it. A database's jobs are run by
//  - "worker": pg_ml is in shared_preload_libraries, its launcher is alive, and
//    pg_ml.worker_enabled is on for the database (as the worker reads it: the database's
//    ALTER DATABASE setting, else the server's);
//  - "ml_run_jobs": no worker, but ml_run_jobs() ran in the database within the last day
//    (ml.job_runners records its last call): taken as scheduled (pg_cron, cron + psql);
//  - "none": nothing does; queued jobs wait.
// ml_auto_retrain says so with a NOTICE, and ml_jobs / ml_auto_retrains show it (job_runner).

static bool worker_enabled_here(void);

enum PgmlRunner { PGML_RUNNER_WORKER, PGML_RUNNER_RUN_JOBS, PGML_RUNNER_NONE };

static const char *const runner_names[] = {"worker", "ml_run_jobs", "none"};

/* ml.job_runners, where ml_run_jobs() records its calls (InvalidOid: a catalog older than 0.3.0) */
static Oid
job_runners_relid(void)
{
	Oid nsp = get_namespace_oid("ml", true);
	return OidIsValid(nsp) ? get_relname_relid("job_runners", nsp) : InvalidOid;
}

/*
 * job_runner: what runs this database's jobs; *why (when not the worker) says why no worker
 * does, *last_run when ml_run_jobs() last ran (NULL if never, or not within the last day).
 */
static PgmlRunner
job_runner(const char **why, char **last_run)
{
	*why = NULL;
	*last_run = NULL;
	if (!pgml_preloaded)
		*why = "pg_ml is not in shared_preload_libraries, so no background worker runs jobs.";
	else if (!pgml_launcher_running())
		*why = "pg_ml is in shared_preload_libraries, but its background worker (pg_ml launcher) is not running; "
			   "the server log says why.";
	else if (!worker_enabled_here())
		*why = "pg_ml.worker_enabled is off for this database.";
	else
		return PGML_RUNNER_WORKER;
	if (!OidIsValid(job_runners_relid()))
		return PGML_RUNNER_NONE;
	MemoryContext cxt = CurrentMemoryContext;
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	spi_exec("SELECT last_run::pg_catalog.text FROM ml.job_runners WHERE runner OPERATOR(pg_catalog.=) 'ml_run_jobs' "
			 "AND last_run OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 day'::pg_catalog.interval)",
			 0, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1) {
		char *t = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		*last_run = t ? MemoryContextStrdup(cxt, t) : NULL;
	}
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	return *last_run ? PGML_RUNNER_RUN_JOBS : PGML_RUNNER_NONE;
}

/* note_run_jobs: ml_run_jobs() records its call (never waits: a concurrent call holding the row counts too) */
static void
note_run_jobs(Oid caller)
{
	if (!OidIsValid(job_runners_relid()))
		return;
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t = TEXTOID;
	Datum v = CStringGetTextDatum(GetUserNameFromId(caller, false));
	spi_exec("UPDATE ml.job_runners SET last_run = pg_catalog.now(), last_role = $1 WHERE runner OPERATOR(pg_catalog.=) "
			 "(SELECT runner FROM ml.job_runners WHERE runner OPERATOR(pg_catalog.=) 'ml_run_jobs' "
			 "FOR NO KEY UPDATE SKIP LOCKED)",
			 1, &t, &v, SPI_OK_UPDATE);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
}

/*
 * ml.job_runner() -> text: 'worker', 'ml_run_jobs' or 'none' (above), for the views ml_jobs and
 * ml_auto_retrains. STABLE: the backends' status is read once per transaction.
 */
Datum
pgml_job_runner(PG_FUNCTION_ARGS)
{
	const char *why;
	char *last_run;
	PgmlRunner r = job_runner(&why, &last_run);
	PG_RETURN_TEXT_P(cstring_to_text(runner_names[r]));
}

/* notice_no_worker: ml_auto_retrain's NOTICE when no background worker will run the model's jobs */
static void
notice_no_worker(const char *model)
{
	const char *why;
	char *last_run;
	PgmlRunner r = job_runner(&why, &last_run);
	if (r == PGML_RUNNER_WORKER)
		return;
	bool disabled = pgml_preloaded && strstr(why, "worker_enabled") != NULL;
	ereport(NOTICE,
			(errmsg("no background worker runs the auto-retrain jobs of model \"%s\" in this database", model),
			 r == PGML_RUNNER_RUN_JOBS
				 ? errdetail("%s Its jobs run when ml_run_jobs() runs (it last ran at %s).", why, last_run)
				 : errdetail("%s Its jobs wait in ml_jobs until ml_run_jobs() runs them.", why),
			 disabled ? errhint("Turn the worker on for this database (ALTER DATABASE ... RESET pg_ml.worker_enabled), "
								"or run SELECT ml_run_jobs() on a schedule (pg_cron, or cron with psql).")
					  : errhint("Add pg_ml to shared_preload_libraries and restart the server, or run SELECT "
								"ml_run_jobs() on a schedule (pg_cron, or cron with psql).")));
}

// ---------------------------------------------------------------- ml_auto_retrain

static void
drop_triggers(int64 model_id)
{
	uint64 n = find_triggers(model_id);
	Oid *trigs = static_cast<Oid *>(palloc(sizeof(Oid) * (n + 1)));
	for (uint64 i = 0; i < n; i++) {
		bool isnull;
		trigs[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	for (uint64 i = 0; i < n; i++) {
		/* by its OID (the table is locked as DROP TRIGGER locks it) */
		ObjectAddress trig;
		ObjectAddressSet(trig, TriggerRelationId, trigs[i]);
		performDeletion(&trig, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
		CommandCounterIncrement();
	}
}

/* forget_pending: uncounted and not yet trained batches of a model go; its queued jobs fail with reason */
static void
forget_pending(int64 model_id, const char *reason)
{
	Oid t[2] = {INT8OID, TEXTOID};
	Datum v[2] = {Int64GetDatum(model_id), reason ? CStringGetTextDatum(reason) : (Datum) 0};
	spi_exec("DELETE FROM ml.auto_retrain_batches WHERE model_id OPERATOR(pg_catalog.=) $1", 1, t, v, SPI_OK_DELETE);
	if (reason)
		spi_exec("UPDATE ml.jobs SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), error = $2 "
				 "WHERE model_id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued'",
				 2, t, v, SPI_OK_UPDATE);
}

void
pgml_jobs_forget_model(int64 model_id)
{
	if (!OidIsValid(get_relname_relid("jobs", get_namespace_oid("ml", false))))
		return; /* catalog of 0.1.0: no jobs */
	drop_triggers(model_id);
	forget_pending(model_id, NULL);
	Oid t = INT8OID;
	Datum v = Int64GetDatum(model_id);
	spi_exec("DELETE FROM ml.jobs WHERE model_id OPERATOR(pg_catalog.=) $1", 1, &t, &v, SPI_OK_DELETE);
}

/*
 * ml_auto_retrain(model, relation, min_new_rows, mode): owner only. relation NULL turns
 * auto-retrain off. Called again, it changes the settings (the count goes on when the
 * relation and mode stay the same).
 */
Datum
pgml_auto_retrain(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("model of ml_auto_retrain must not be NULL")));
	PgmlModelRef ref;
	pgml_resolve_model(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0), PGML_OWN, true, &ref);
	Oid caller = GetUserId();
	Oid save_user;
	int save_sec;

	if (PG_ARGISNULL(1)) {
		/* off */
		pgml_catalog_begin(&save_user, &save_sec);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "pg_ml: SPI_connect failed");
		Oid t = INT8OID;
		Datum v = Int64GetDatum(ref.id);
		spi_exec("DELETE FROM ml.auto_retrain WHERE model_id OPERATOR(pg_catalog.=) $1", 1, &t, &v, SPI_OK_DELETE);
		bool was_on = SPI_processed > 0;
		drop_triggers(ref.id);
		forget_pending(ref.id, "auto-retrain was turned off");
		SPI_finish();
		pgml_catalog_end(save_user, save_sec);
		if (!was_on)
			ereport(NOTICE, (errmsg("auto-retrain of model \"%s\" is not on", ref.name)));
		PG_RETURN_VOID();
	}

	char *relname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("min_new_rows must be at least 1"),
						PG_ARGISNULL(2) ? 0 : errdetail("It is %d.", PG_GETARG_INT32(2))));
	int64 min_new_rows = PG_GETARG_INT32(2);
	if (PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("mode of ml_auto_retrain must not be NULL"),
						errhint("Use 'auto', 'refit' or 'incremental'.")));
	const char *mode = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(mode, "auto") != 0 && strcmp(mode, "refit") != 0 && strcmp(mode, "incremental") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown auto-retrain mode \"%s\"", mode),
						errhint("Use 'auto', 'refit' or 'incremental'.")));

	/* the relation: a table (or partitioned table) that outlives this session, that the caller may read and trigger on */
	Oid relid = pgml_relation_oid(relname);
	char kind = get_rel_relkind(relid);
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a table", relname),
						errdetail("Auto-retrain counts the rows inserted into a table with a trigger."),
						errhint("Point it at the table the new rows are inserted into.")));
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("auto-retrain cannot watch temporary table \"%s\"", relname),
						errdetail("Its jobs run in other sessions, which cannot read it.")));
	if (pg_class_aclcheck(relid, caller, ACL_SELECT) != ACLCHECK_OK || pg_class_aclcheck(relid, caller, ACL_TRIGGER) != ACLCHECK_OK)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for table %s", relname),
						errdetail("ml_auto_retrain needs the SELECT and TRIGGER privileges on the table.")));

	/* the model's columns must be there; auto picks incremental where the algorithm can continue */
	pgml::Model *base = pgml_load_deployed(&ref);
	Relation rel = relation_open(relid, AccessShareLock);
	TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(rel));
	relation_close(rel, NoLock);
	int nfeatures = static_cast<int>(base->features.size());
	PgmlColumn *features = static_cast<PgmlColumn *>(palloc0(sizeof(PgmlColumn) * (nfeatures + 1)));
	PgmlColumn target;
	pgml_match_columns(desc, base, relname, ref.name, features, &target, false);
	bool can_continue = false;
	PGML_CORE(can_continue = pgml::model_can_continue(*base));
	if (strcmp(mode, "incremental") == 0 && !can_continue)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("model \"%s\" (%s) cannot be retrained incrementally", ref.name, ref.algorithm),
						errhint("Use mode => 'refit' (or 'auto', which picks refit for it).")));
	const char *effective = mode; /* 'auto' is resolved by each retrain (the README's retrain table) */
	char *rel_sql = pgml_relation_sql_name(relid);

	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t[5] = {INT8OID, TEXTOID, INT8OID, TEXTOID, OIDOID};
	Datum v[5] = {Int64GetDatum(ref.id), CStringGetTextDatum(rel_sql), Int64GetDatum(min_new_rows),
				  CStringGetTextDatum(effective), ObjectIdGetDatum(caller)};
	spi_exec("SELECT relation OPERATOR(pg_catalog.=) $2 AND mode OPERATOR(pg_catalog.=) $4 FROM ml.auto_retrain "
			 "WHERE model_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
			 5, t, v, SPI_OK_SELECT);
	bool existed = SPI_processed == 1;
	bool isnull;
	bool same = existed && DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	drop_triggers(ref.id);
	if (same)
		spi_exec("UPDATE ml.auto_retrain SET min_new_rows = $3, created_by = $5::pg_catalog.regrole, "
				 "created_at = pg_catalog.now() WHERE model_id OPERATOR(pg_catalog.=) $1",
				 5, t, v, SPI_OK_UPDATE);
	else {
		if (existed) {
			spi_exec("DELETE FROM ml.auto_retrain WHERE model_id OPERATOR(pg_catalog.=) $1", 1, t, v, SPI_OK_DELETE);
			forget_pending(ref.id, "auto-retrain was changed to another relation or mode");
		}
		spi_exec("INSERT INTO ml.auto_retrain (model_id, relation, min_new_rows, mode, created_by) "
				 "VALUES ($1, $2, $3, $4, $5::pg_catalog.regrole)",
				 5, t, v, SPI_OK_INSERT);
	}
	/* its name is only for people: a name another trigger of the table took (renamed) gets a suffix */
	char name[NAMEDATALEN];
	snprintf(name, sizeof name, TRIGGER_PREFIX "%lld", (long long) ref.id);
	for (int i = 2;; i++) {
		Oid nt[2] = {OIDOID, TEXTOID};
		Datum nv[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(name)};
		spi_exec("SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 "
				 "AND t.tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
				 2, nt, nv, SPI_OK_SELECT);
		if (SPI_processed == 0)
			break;
		snprintf(name, sizeof name, TRIGGER_PREFIX "%lld_%d", (long long) ref.id, i);
	}
	char *sql = psprintf("CREATE TRIGGER %s AFTER INSERT ON %s REFERENCING NEW TABLE AS " TRANSITION_TABLE
						 " FOR EACH STATEMENT EXECUTE FUNCTION ml.auto_retrain_trigger('%lld')",
						 quote_identifier(name), rel_sql, (long long) ref.id);
	spi_exec(sql, 0, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	notice_no_worker(ref.name);
	PG_RETURN_VOID();
}

// ---------------------------------------------------------------- running jobs

struct PgmlJob {
	int64 id;
	int64 model_id;
	Oid owner;
	char *model;
	char *mode;
	char *relation;
	int64 window_no; /* incremental only */
	int32 attempts;
};

struct PgmlJobResult {
	int32 version;
	bool deployed;
	bool failed;
	bool final; /* failed and not retried */
	char *error;
};

/* claim_job: the next runnable job of a model runner_role may run, marked running (SPI, catalog owner) */
static bool
claim_job(Oid runner_role, const char *runner, MemoryContext cxt, PgmlJob *job)
{
	Oid t = OIDOID;
	Datum v = ObjectIdGetDatum(runner_role);
	/* the job runs as the model's owner: the owner of its sequence */
	spi_exec("SELECT c.id, c.model_id, s.relowner, m.name, c.mode, c.relation, c.window_no, c.attempts "
			 "FROM ml.jobs c JOIN ml.models m ON m.id OPERATOR(pg_catalog.=) c.model_id "
			 "JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) m.seq::pg_catalog.oid "
			 "WHERE c.status OPERATOR(pg_catalog.=) 'queued' AND c.retry_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() "
			 "AND pg_catalog.pg_has_role($1, s.relowner, 'USAGE') "
			 "AND NOT EXISTS (SELECT 1 FROM ml.jobs e WHERE e.model_id OPERATOR(pg_catalog.=) c.model_id "
			 "AND e.id OPERATOR(pg_catalog.<) c.id "
			 "AND e.status OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])) "
			 "ORDER BY c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED",
			 1, &t, &v, SPI_OK_SELECT);
	if (SPI_processed != 1)
		return false;
	HeapTuple tup = SPI_tuptable->vals[0];
	TupleDesc desc = SPI_tuptable->tupdesc;
	bool isnull;
	job->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	job->model_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	job->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
	job->model = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 4));
	job->mode = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 5));
	job->relation = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 6));
	Datum w = SPI_getbinval(tup, desc, 7, &isnull);
	job->window_no = isnull ? 0 : DatumGetInt64(w);
	job->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull)) + 1;
	Oid ut[2] = {INT8OID, TEXTOID};
	Datum uv[2] = {Int64GetDatum(job->id), CStringGetTextDatum(runner)};
	spi_exec("UPDATE ml.jobs SET status = 'running', attempts = attempts OPERATOR(pg_catalog.+) 1, "
			 "started_at = pg_catalog.clock_timestamp(), finished_at = NULL, runner = $2, "
			 "runner_pid = pg_catalog.pg_backend_pid() WHERE id OPERATOR(pg_catalog.=) $1",
			 2, ut, uv, SPI_OK_UPDATE);
	return true;
}

/*
 * run_job: the job's work in the current (sub)transaction: ml_retrain as the model's owner,
 * then the job is marked succeeded and an incremental job's batches are deleted.
 */
static void
run_job(const PgmlJob *job, PgmlJobResult *res)
{
	Oid save_user;
	int save_sec;
	bool incremental = strcmp(job->mode, "refit") != 0; /* its batches are deleted with the window */

	GetUserIdAndSecContext(&save_user, &save_sec);
	Oid catalog_user;
	{
		Oid u;
		int s;
		pgml_catalog_begin(&u, &s);
		catalog_user = GetUserId();
		pgml_catalog_end(u, s);
	}
	/* not a security-restricted operation yet: it may create a temporary view (which runs no user code) */
	SetUserIdAndSecContext(catalog_user, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	/* the relation, followed through the model's trigger (so a renamed table is found) */
	if (find_triggers(job->model_id) != 1)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("auto-retrain of model \"%s\" no longer has a table", job->model),
						errdetail("The trigger on %s is gone (the table was dropped, or auto-retrain turned off).", job->relation)));
	bool isnull;
	Oid relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	char *rel_sql = pgml_relation_sql_name(relid);
	/* the retrain, as the model's owner, on the table itself: what the deployed version has not
	   learned of it is what ml_retrain reads (ml.versions.sources); settings it changes are rolled
	   back. A job whose rows an earlier job learned has nothing left: no version. */
	res->version = 0;
	res->deployed = false;
	SetUserIdAndSecContext(job->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	int nest = NewGUCNestLevel();
	/* ml.retrain is ml_retrain(bigint, ...) in schema ml, where nobody else can create a function;
	   every argument given with its exact type */
	Oid rt[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum rv[3] = {Int64GetDatum(job->model_id), CStringGetTextDatum(rel_sql), CStringGetTextDatum(job->mode)};
	pgml_retrain_nothing_new_is_ok = true;
	PG_TRY();
	{
		spi_exec("SELECT r.version, r.deployed FROM ml.retrain($1, $2, $3, 'if_better'::pg_catalog.text, "
				 "NULL::pg_catalog.float8, NULL::pg_catalog.int4) r",
				 3, rt, rv, SPI_OK_SELECT);
	}
	PG_FINALLY();
	{
		pgml_retrain_nothing_new_is_ok = false;
	}
	PG_END_TRY();
	if (SPI_processed != 1)
		elog(ERROR, "pg_ml: ml_retrain returned no row");
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	res->version = isnull ? 0 : DatumGetInt32(d);
	res->deployed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	AtEOXact_GUC(false, nest);
	SetUserIdAndSecContext(catalog_user, save_sec | SECURITY_LOCAL_USERID_CHANGE);

	/* done: the job's record and the rows it consumed, in the same transaction as the version */
	Oid jt[3] = {INT8OID, INT4OID, BOOLOID};
	Datum jv[3] = {Int64GetDatum(job->id), Int32GetDatum(res->version), BoolGetDatum(res->deployed)};
	char jn[3] = {' ', res->version ? ' ' : 'n', res->version ? ' ' : 'n'};
	if (SPI_execute_with_args("UPDATE ml.jobs SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(), "
							  "version = $2, deployed = $3, error = NULL, error_code = NULL WHERE id OPERATOR(pg_catalog.=) $1",
							  3, jt, jv, jn, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_ml: could not record the job");
	if (incremental) {
		/* the batches of the window and of earlier ones */
		Oid dt[2] = {INT8OID, INT8OID};
		Datum dv[2] = {Int64GetDatum(job->model_id), Int64GetDatum(job->window_no)};
		spi_exec("DELETE FROM ml.auto_retrain_batches WHERE model_id OPERATOR(pg_catalog.=) $1 "
				 "AND window_no OPERATOR(pg_catalog.<=) $2",
				 2, dt, dv, SPI_OK_DELETE);
	}
	SPI_finish();
	SetUserIdAndSecContext(save_user, save_sec);
	res->failed = false;
	res->final = false;
	res->error = NULL;
}

/* record_failure: the job is queued again (after a delay growing with its attempts) or failed */
static void
record_failure(const PgmlJob *job, const ErrorData *edata, PgmlJobResult *res)
{
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	Oid t[4] = {INT8OID, INT4OID, TEXTOID, TEXTOID};
	Datum v[4] = {Int64GetDatum(job->id), Int32GetDatum(pgml_job_max_attempts),
				  CStringGetTextDatum(edata->message ? edata->message : "unknown error"),
				  CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode))};
	spi_exec("UPDATE ml.jobs SET status = CASE WHEN attempts OPERATOR(pg_catalog.>=) $2 THEN 'failed' ELSE 'queued' END, "
			 "finished_at = pg_catalog.clock_timestamp(), error = $3, error_code = $4, "
			 "retry_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => "
			 "LEAST(600, 10 OPERATOR(pg_catalog.*) (2 OPERATOR(pg_catalog.^) (attempts OPERATOR(pg_catalog.-) 1)))) "
			 "WHERE id OPERATOR(pg_catalog.=) $1 RETURNING status",
			 4, t, v, SPI_OK_UPDATE_RETURNING);
	res->failed = true;
	res->final = SPI_processed == 1 && strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "failed") == 0;
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
}

/* maintain: dead runners' jobs reset, leftover counts folded (SPI, catalog owner) */
static void
maintain(Oid runner_role)
{
	reset_dead_jobs();
	sweep(runner_role);
}

static bool
claim_in_catalog(Oid runner_role, const char *runner, MemoryContext cxt, PgmlJob *job)
{
	/* jobs of a catalog older than the library (before ALTER EXTENSION UPDATE) wait for the update */
	if (!pgml_catalog_owned_models())
		return false;
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	bool got = claim_job(runner_role, runner, cxt, job);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
	return got;
}

static void
maintain_in_catalog(Oid runner_role)
{
	if (!pgml_catalog_owned_models())
		return;
	Oid save_user;
	int save_sec;
	pgml_catalog_begin(&save_user, &save_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	maintain(runner_role);
	SPI_finish();
	pgml_catalog_end(save_user, save_sec);
}

/*
 * ml_run_jobs(max_jobs) -> (job_id, model, status, attempts, version, deployed, error): runs
 * queued jobs of the models the caller owns (all for a superuser) in this database, each in a
 * subtransaction, and returns a row per job run.
 */
Datum
pgml_run_jobs(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0) && PG_GETARG_INT32(0) < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_jobs must not be negative")));
	int max_jobs = PG_ARGISNULL(0) ? INT_MAX : PG_GETARG_INT32(0);
	if (IsolationUsesXactSnapshot())
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("ml_run_jobs() must run in a READ COMMITTED transaction"),
						errdetail("Each job sees the rows committed when it starts.")));
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid caller = GetUserId();

	maintain_in_catalog(caller);
	note_run_jobs(caller);
	for (int i = 0; i < max_jobs; i++) {
		CHECK_FOR_INTERRUPTS();
		PgmlJob job;
		if (!claim_in_catalog(caller, "ml_run_jobs", cxt, &job))
			break;
		PgmlJobResult res;
		memset(&res, 0, sizeof res);
		ErrorData *volatile edata = NULL;
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			run_job(&job, &res);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_END_TRY();
		if (edata != NULL) {
			/* a cancel (or statement_timeout) stops ml_run_jobs itself; the claim rolls back with it */
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
				ReThrowError(edata);
			record_failure(&job, edata, &res);
			res.error = edata->message;
		}
		Datum values[7];
		bool nulls[7] = {false};
		values[0] = Int64GetDatum(job.id);
		values[1] = CStringGetTextDatum(job.model);
		values[2] = CStringGetTextDatum(!res.failed ? "succeeded" : res.final ? "failed" : "queued");
		values[3] = Int32GetDatum(job.attempts);
		values[4] = Int32GetDatum(res.version);
		nulls[4] = res.failed || res.version == 0;
		values[5] = BoolGetDatum(res.deployed);
		nulls[5] = res.failed || res.version == 0;
		if (res.error)
			values[6] = CStringGetTextDatum(res.error);
		else
			nulls[6] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

// ---------------------------------------------------------------- the worker's loop

/* worker_enabled_here: pg_ml.worker_enabled as ALTER DATABASE set it now (else the server's) */
static bool
worker_enabled_here(void)
{
	bool enabled = pgml_worker_enabled;
	Oid t = OIDOID;
	Datum v = ObjectIdGetDatum(MyDatabaseId);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_ml: SPI_connect failed");
	spi_exec("SELECT pg_catalog.substr(c, 22) FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c "
			 "WHERE s.setdatabase OPERATOR(pg_catalog.=) $1 AND s.setrole OPERATOR(pg_catalog.=) 0 "
			 "AND pg_catalog.lower(c) OPERATOR(pg_catalog.~~) 'pg\\_ml.worker\\_enabled=%'",
			 1, &t, &v, SPI_OK_SELECT);
	if (SPI_processed == 1) {
		bool b;
		if (parse_bool(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), &b))
			enabled = b;
	}
	SPI_finish();
	return enabled;
}

static void
begin_xact(const char *activity)
{
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_xact(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
pgml_jobs_worker_run(void)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_ml jobs", ALLOCSET_DEFAULT_SIZES);
	begin_xact("pg_ml: checking for jobs");
	Oid nsp = get_namespace_oid("ml", true);
	bool ready = OidIsValid(get_extension_oid("pg_ml", true)) && OidIsValid(nsp) &&
				 OidIsValid(get_relname_relid("jobs", nsp)) && worker_enabled_here();
	if (ready)
		maintain_in_catalog(GetUserId());
	end_xact();
	if (!ready)
		return;

	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(cxt);
		PgmlJob job;
		begin_xact("pg_ml: claiming a job");
		bool got = worker_enabled_here() && claim_in_catalog(GetUserId(), "worker", cxt, &job);
		end_xact();
		if (!got)
			break;

		MemoryContextSwitchTo(cxt); /* after a commit: TopMemoryContext */
		char *activity = psprintf("pg_ml: job %lld, retrain of model \"%s\"", (long long) job.id, job.model);
		PgmlJobResult res;
		memset(&res, 0, sizeof res);
		ErrorData *volatile edata = NULL;
		PG_TRY();
		{
			begin_xact(activity);
			run_job(&job, &res);
			end_xact();
		}
		PG_CATCH();
		{
			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			RESUME_INTERRUPTS();
		}
		PG_END_TRY();
		if (edata != NULL) {
			begin_xact("pg_ml: recording a failed job");
			record_failure(&job, edata, &res);
			end_xact();
		}
		if (edata == NULL)
			ereport(LOG, (errmsg("pg_ml: job %lld (model \"%s\") made version %d%s", (long long) job.id, job.model,
								 res.version, res.deployed ? ", deployed" : "")));
	}
	pgstat_report_activity(STATE_IDLE, NULL);
}
