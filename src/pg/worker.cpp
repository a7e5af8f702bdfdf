// pg_ml glue: the background worker, when pg_ml is in shared_preload_libraries.
//
// One launcher (a static background worker, restarted bgw_restart_time seconds after it
// exits abnormally) connects to no database. Every pg_ml.worker_naptime seconds it lists the
// databases that accept connections and starts, at most pg_ml.max_workers at a time, one
// short-lived worker per database (a dynamic background worker). A database worker returns
// at once where pg_ml is not installed or pg_ml.worker_enabled is off for the database;
// otherwise it runs the runnable jobs (pgml_jobs_worker_run, jobs.cpp: each job in its own
// transaction, errors recorded on the job) and exits. A database never has two workers.
#include "jobs.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void pgml_launcher_main(Datum arg);
PGDLLEXPORT void pgml_database_worker_main(Datum arg);
}

int pgml_worker_naptime = 10;
bool pgml_worker_enabled = true;
int pgml_job_max_attempts = 3;
int pgml_worker_max = 2;
bool pgml_preloaded = false;

void
pgml_worker_init(void)
{
	DefineCustomIntVariable("pg_ml.worker_naptime",
							"Seconds between the background worker's rounds over the databases.",
							"Each round runs the queued jobs (auto-retrain) of every database with pg_ml.",
							&pgml_worker_naptime, 10, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_ml.worker_enabled",
							 "Whether the background worker runs the jobs of a database.",
							 "Set it per database with ALTER DATABASE ... SET; ml_run_jobs() runs them in any case.",
							 &pgml_worker_enabled, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_ml.job_max_attempts",
							"How often a failing job is tried before it is marked failed.",
							NULL, &pgml_job_max_attempts, 3, 1, 100, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_ml.max_workers",
							"Databases whose jobs the background worker runs at the same time.",
							"Each takes a background worker slot (max_worker_processes) while it runs.",
							&pgml_worker_max, 2, 1, 64, PGC_SIGHUP, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	pgml_preloaded = true; /* set in the postmaster: every backend it forks inherits it */

	BackgroundWorker w;
	memset(&w, 0, sizeof w);
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 5;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_ml");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "pgml_launcher_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_ml launcher");
	snprintf(w.bgw_type, BGW_MAXLEN, "pg_ml launcher");
	RegisterBackgroundWorker(&w);
}

// ---------------------------------------------------------------- launcher

/*
 * pgml_launcher_running: whether the launcher is alive now, found among the server's processes
 * by its background worker type (this transaction's snapshot of the backends' status, which every
 * process has whatever track_activities says; no privilege is needed to read it from C).
 */
bool
pgml_launcher_running(void)
{
	if (!pgml_preloaded)
		return false; /* it is registered only when the postmaster loads the library */
	int n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++) {
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);
		if (l == NULL || l->backendStatus.st_backendType != B_BG_WORKER)
			continue;
		const char *type = GetBackgroundWorkerTypeByPid(l->backendStatus.st_procpid);
		if (type != NULL && strcmp(type, "pg_ml launcher") == 0)
			return true;
	}
	return false;
}

#define MAX_SLOTS 64

struct LauncherSlot {
	Oid db;
	BackgroundWorkerHandle *handle;
};

static LauncherSlot slots[MAX_SLOTS];

/* list_databases: the databases that accept connections (templates excluded) */
static Oid *
list_databases(MemoryContext cxt, int *n)
{
	int cap = 16;
	Oid *dbs = static_cast<Oid *>(MemoryContextAlloc(cxt, sizeof(Oid) * cap));
	*n = 0;
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	Relation rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple tup;
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL) {
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);
		if (!d->datallowconn || d->datistemplate)
			continue;
#ifdef DATCONNLIMIT_INVALID_DB
		if (database_is_invalid_form(d))
			continue;
#endif
		if (*n == cap) {
			cap *= 2;
			dbs = static_cast<Oid *>(repalloc(dbs, sizeof(Oid) * cap));
		}
		dbs[(*n)++] = d->oid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

static int
reap_workers(void)
{
	int running = 0;
	for (int i = 0; i < MAX_SLOTS; i++) {
		if (slots[i].handle == NULL)
			continue;
		pid_t pid;
		if (GetBackgroundWorkerPid(slots[i].handle, &pid) == BGWH_STOPPED) {
			pfree(slots[i].handle);
			slots[i].handle = NULL;
			slots[i].db = InvalidOid;
		} else
			running++;
	}
	return running;
}

static bool
worker_running_for(Oid db)
{
	for (int i = 0; i < MAX_SLOTS; i++)
		if (slots[i].handle != NULL && slots[i].db == db)
			return true;
	return false;
}

/* start_worker: false when no background worker slot is free now */
static bool
start_worker(Oid db, MemoryContext cxt)
{
	int free_slot = -1;
	for (int i = 0; i < MAX_SLOTS && free_slot < 0; i++)
		if (slots[i].handle == NULL)
			free_slot = i;
	if (free_slot < 0)
		return false;
	BackgroundWorker w;
	memset(&w, 0, sizeof w);
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_ml");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "pgml_database_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_ml worker for database %u", db);
	snprintf(w.bgw_type, BGW_MAXLEN, "pg_ml worker");
	w.bgw_main_arg = ObjectIdGetDatum(db);
	w.bgw_notify_pid = MyProcPid;
	MemoryContext old = MemoryContextSwitchTo(cxt);
	BackgroundWorkerHandle *handle;
	bool ok = RegisterDynamicBackgroundWorker(&w, &handle);
	MemoryContextSwitchTo(old);
	if (!ok)
		return false;
	slots[free_slot].db = db;
	slots[free_slot].handle = handle;
	return true;
}

void
pgml_launcher_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_ml launcher", ALLOCSET_DEFAULT_SIZES);
	MemoryContext round_cxt = AllocSetContextCreate(cxt, "pg_ml launcher round", ALLOCSET_DEFAULT_SIZES);
	memset(slots, 0, sizeof slots);
	ereport(LOG, (errmsg("pg_ml launcher started")));

	Oid *queue = NULL;
	int nqueue = 0, next = 0;
	TimestampTz next_round = 0;
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		int running = reap_workers();
		TimestampTz now = GetCurrentTimestamp();
		if (now >= next_round) {
			MemoryContextReset(round_cxt);
			queue = pgml_worker_enabled ? list_databases(round_cxt, &nqueue) : NULL;
			if (queue == NULL)
				nqueue = 0;
			next = 0;
			next_round = TimestampTzPlusMilliseconds(now, (int64) pgml_worker_naptime * 1000);
		}
		bool blocked = false;
		while (next < nqueue && running < pgml_worker_max) {
			Oid db = queue[next];
			if (worker_running_for(db)) {
				next++;
				continue;
			}
			if (!start_worker(db, cxt)) {
				blocked = true; /* no free slot: try again a little later */
				break;
			}
			next++;
			running++;
		}
		long timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_round);
		if (blocked || (next < nqueue && timeout > 1000))
			timeout = Min(timeout, 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Max(timeout, 10), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

// ---------------------------------------------------------------- database worker

void
pgml_database_worker_main(Datum arg)
{
	Oid db = DatumGetObjectId(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(db, InvalidOid, 0);
	pgml_jobs_worker_run();
	proc_exit(0);
}
