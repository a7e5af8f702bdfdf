// pg_ml glue: progress of ml_train, ml_retrain and ml_evaluate.
//
// One backend-local record of the running operation feeds two outputs:
//  - NOTICE lines (pg_ml.progress): at most one per pg_ml.progress_interval, plus one at each
//    phase change. 'auto' (the default) sends none before the command has run
//    pg_ml.progress_delay, and no DETAIL; 'on' (programs: the pg_ml command line) sends them from
//    the start, each with the JSON detail; 'off' sends none. The format is a contract:
//      message  pg_ml progress: <model>: <phase>, <rows>[ of ~<estimate>] rows[, iteration N[ of M]][, <metric> <value>], <seconds> s
//      detail   {"model":..,"phase":..,"rows":N,"rows_estimate":N,"iteration":N,"metric":..,"value":x,"elapsed":s}
//    ("of ~<estimate>" while reading, when the estimate is known and not passed; "of M" when the
//    caller set the fit's planned iterations and N is within them; in the detail rows_estimate
//    is -1 when unknown, iteration, metric and value null when there are none yet).
//  - when pg_ml is in shared_preload_libraries: one shared-memory slot per backend, written with
//    the changecount protocol of pgstat's st_changecount (no lock: the writer bumps the counter
//    to odd, writes, bumps it to even; a reader retries until it copies an even, unchanged
//    counter), read by ml.training_progress() behind the ml_training_progress view.
//
// The API is C-style and cheap enough per batch and per iteration: a clock read, a few stores and,
// only when a notice is due, the notice itself. pgml_progress_core is the core's ProgressCallback;
// it runs inside PGML_CORE (C++ frames live below it), so it holds interrupts while it sends a
// notice, swallows any error that sending raises (never longjmps through the core), and ignores
// calls from any thread but the backend's own.
#include "pg_ml.hpp"

#include <cmath>
#include <pthread.h>

extern "C" {
#include "access/relation.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "port/atomics.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#else
#include "storage/backendid.h"
#endif

PG_FUNCTION_INFO_V1(pgml_training_progress);
}

#include "progress.hpp"

#define PGML_PROGRESS_MODEL_LEN 256
#define PGML_PROGRESS_WORD_LEN 32

int pgml_progress_mode = PGML_PROGRESS_AUTO;
int pgml_progress_delay_ms = 3000;
int pgml_progress_interval_ms = 1000;

namespace {

// What one backend is doing; the same fields in the backend-local record and in a shared slot.
struct ProgressData {
	int pid; // 0: no operation running
	Oid dbid;
	Oid userid;
	char command[PGML_PROGRESS_WORD_LEN];
	char model[PGML_PROGRESS_MODEL_LEN];
	char phase[PGML_PROGRESS_WORD_LEN];
	char metric[PGML_PROGRESS_WORD_LEN]; // "" when none
	int64 rows;
	int64 rows_estimate; // -1 unknown
	int32 iteration;     // 0 when none
	int32 iterations;    // the fit's planned iterations, 0 when not known
	double value;        // NaN when none
	TimestampTz started;
};

struct ProgressSlot {
	int changecount; // odd while the owner writes
	ProgressData data;
};

struct LocalProgress {
	ProgressData data;
	uint64 run; // increases with every begin; the reset callback ends only its own run
	TimestampTz last_notice;
	bool sent; // a notice was sent this run (before: 'auto' waits for pg_ml.progress_delay)
	pthread_t thread;
	bool notices_failed; // a notice could not be sent from the core: no more notices this run
};

LocalProgress local;
// pg_ml.progress: the boolean spellings too, as PostgreSQL's own on/off enums take them
const struct config_enum_entry progress_modes[] = {
	{"off", PGML_PROGRESS_OFF, false}, {"auto", PGML_PROGRESS_AUTO, false}, {"on", PGML_PROGRESS_ON, false},
	{"false", PGML_PROGRESS_OFF, true}, {"no", PGML_PROGRESS_OFF, true},    {"0", PGML_PROGRESS_OFF, true},
	{"true", PGML_PROGRESS_ON, true},   {"yes", PGML_PROGRESS_ON, true},    {"1", PGML_PROGRESS_ON, true},
	{NULL, 0, false}};
uint64 run_counter = 0;
ProgressSlot *slots = NULL; // NULL without shared_preload_libraries
int nslots = 0;
bool exit_callback_registered = false;

#if PG_VERSION_NUM >= 150000
shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
shmem_startup_hook_type prev_shmem_startup_hook = NULL;

Size
slots_size(void)
{
	return mul_size(MaxBackends, sizeof(ProgressSlot));
}

void
progress_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(slots_size());
}

void
progress_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	bool found;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = static_cast<ProgressSlot *>(ShmemInitStruct("pg_ml training progress", slots_size(), &found));
	if (!found)
		memset(slots, 0, slots_size());
	nslots = MaxBackends;
	LWLockRelease(AddinShmemInitLock);
}

// This backend's slot, or NULL (not preloaded, or a process without a backend number).
ProgressSlot *
my_slot(void)
{
	if (slots == NULL)
		return NULL;
#if PG_VERSION_NUM >= 170000
	int i = MyProcNumber;
#else
	int i = MyBackendId - 1;
#endif
	return i >= 0 && i < nslots ? &slots[i] : NULL;
}

// Copies the local record into the shared slot (changecount protocol, no lock).
void
publish(void)
{
	volatile ProgressSlot *s = my_slot();
	if (s == NULL)
		return;
	s->changecount++;
	pg_write_barrier();
	memcpy(const_cast<ProgressData *>(&s->data), &local.data, sizeof(ProgressData));
	pg_write_barrier();
	s->changecount++;
}

void
copy_word(char *dst, const char *src, size_t size)
{
	strlcpy(dst, src != NULL ? src : "", size);
}

// Appends s as a JSON string to buf (at most size bytes in all, always terminated).
void
json_string(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);
	auto put = [&](const char *t) {
		size_t l = strlen(t);
		if (n + l + 1 < size) {
			memcpy(buf + n, t, l + 1);
			n += l;
		}
	};
	put("\"");
	for (const unsigned char *p = reinterpret_cast<const unsigned char *>(s); *p; p++) {
		char one[8];
		if (*p == '"' || *p == '\\')
			snprintf(one, sizeof(one), "\\%c", *p);
		else if (*p < 0x20)
			snprintf(one, sizeof(one), "\\u%04x", *p);
		else
			snprintf(one, sizeof(one), "%c", *p);
		put(one);
	}
	put("\"");
}

// "<rows>[ of ~<estimate>] rows[, iteration N[ of M]][, <metric> <value>]" into buf.
void
notice_counts(char *buf, size_t size, const ProgressData *d)
{
	size_t n;
	if (strcmp(d->phase, "reading") == 0 && d->rows_estimate > 0 && d->rows <= d->rows_estimate)
		snprintf(buf, size, INT64_FORMAT " of ~" INT64_FORMAT " rows", d->rows, d->rows_estimate);
	else
		snprintf(buf, size, INT64_FORMAT " rows", d->rows);
	n = strlen(buf);
	if (d->iteration > 0 && d->iterations >= d->iteration)
		snprintf(buf + n, size - n, ", iteration %d of %d", d->iteration, d->iterations);
	else if (d->iteration > 0)
		snprintf(buf + n, size - n, ", iteration %d", d->iteration);
	n = strlen(buf);
	if (d->metric[0] != '\0' && std::isfinite(d->value))
		snprintf(buf + n, size - n, ", %s %.6g", d->metric, d->value);
}

// The JSON detail of the current state into buf (size bytes, always terminated).
void
notice_json(char *json, size_t size, const ProgressData *d, double elapsed)
{
	bool has_value = d->metric[0] != '\0' && std::isfinite(d->value);
	strlcpy(json, "{\"model\":", size);
	json_string(json, size, d->model);
	strlcat(json, ",\"phase\":", size);
	json_string(json, size, d->phase);
	char tail[256];
	char iter[16] = "null";
	if (d->iteration > 0)
		snprintf(iter, sizeof(iter), "%d", d->iteration);
	snprintf(tail, sizeof(tail), ",\"rows\":" INT64_FORMAT ",\"rows_estimate\":" INT64_FORMAT ",\"iteration\":%s,\"metric\":",
			 d->rows, d->rows_estimate, iter);
	strlcat(json, tail, size);
	if (d->metric[0] != '\0')
		json_string(json, size, d->metric);
	else
		strlcat(json, "null", size);
	if (has_value)
		snprintf(tail, sizeof(tail), ",\"value\":%.17g,\"elapsed\":%.3f}", d->value, elapsed);
	else
		snprintf(tail, sizeof(tail), ",\"value\":null,\"elapsed\":%.3f}", elapsed);
	strlcat(json, tail, size);
}

// Sends the notice for the current state; the JSON detail only with pg_ml.progress = on.
// Plain C: stack buffers only.
void
send_notice(TimestampTz now)
{
	const ProgressData *d = &local.data;
	double elapsed = (double) (now - d->started) / USECS_PER_SEC;
	char counts[192];
	notice_counts(counts, sizeof(counts), d);
	if (pgml_progress_mode == PGML_PROGRESS_ON) {
		char json[1024];
		notice_json(json, sizeof(json), d, elapsed);
		ereport(NOTICE, (errmsg_internal("pg_ml progress: %s: %s, %s, %.0f s", d->model, d->phase, counts, elapsed),
						 errdetail_internal("%s", json)));
	} else
		ereport(NOTICE, (errmsg_internal("pg_ml progress: %s: %s, %s, %.0f s", d->model, d->phase, counts, elapsed)));
}

// A notice if one is due (force: a phase change), then the shared slot. With 'auto', nothing
// until the command has run pg_ml.progress_delay; the first notice then comes at once.
void
report(bool force)
{
	if (local.data.pid == 0)
		return;
	if (pgml_progress_mode != PGML_PROGRESS_OFF && !local.notices_failed) {
		TimestampTz now = GetCurrentTimestamp();
		bool waiting = pgml_progress_mode == PGML_PROGRESS_AUTO && !local.sent;
		if (waiting)
			force = TimestampDifferenceExceeds(local.data.started, now, pgml_progress_delay_ms);
		if (force || (!waiting && TimestampDifferenceExceeds(local.last_notice, now, pgml_progress_interval_ms))) {
			local.last_notice = now;
			local.sent = true;
			send_notice(now);
		}
	}
	publish();
}

void
end_run_callback(void *arg)
{
	uint64 run = *static_cast<uint64 *>(arg);
	if (local.data.pid != 0 && local.run == run)
		pgml_progress_end();
}

void
clear_slot_at_exit(int code, Datum arg)
{
	if (local.data.pid != 0)
		pgml_progress_end();
}

} // namespace

/* pgml_progress_init registers the settings and, when preloaded, asks for the shared slots. */
void
pgml_progress_init(void)
{
	DefineCustomEnumVariable("pg_ml.progress", "Sends progress notices while ml_train, ml_retrain and ml_evaluate run.",
							 "auto: once the command has run pg_ml.progress_delay, without detail; on: from the start, "
							 "each with a JSON detail for programs; off: none.",
							 &pgml_progress_mode, PGML_PROGRESS_AUTO, progress_modes, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_ml.progress_delay", "Time a command runs before its first progress notice (pg_ml.progress = auto).",
							"A command that ends sooner sends none; 0 reports from the start.", &pgml_progress_delay_ms,
							3000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_ml.progress_interval", "Least time between two progress notices.",
							"Phase changes are reported at once; 0 reports every batch and iteration.",
							&pgml_progress_interval_ms, 1000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = progress_shmem_request;
#else
	progress_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = progress_shmem_startup;
}

/*
 * pgml_progress_begin starts reporting an operation (command "ml_train" ...) on a model that reads
 * relid, in phase `phase`. It ends with pgml_progress_end, or when the current memory context
 * goes away (an error), or when the backend exits.
 */
void
pgml_progress_begin(const char *command, const char *model, Oid relid, const char *phase)
{
	int64 estimate = pgml_relation_row_estimate(relid);
	uint64 *run = static_cast<uint64 *>(palloc(sizeof(uint64)));
	MemoryContextCallback *cb = static_cast<MemoryContextCallback *>(palloc(sizeof(MemoryContextCallback)));
	if (!exit_callback_registered) {
		before_shmem_exit(clear_slot_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	memset(&local.data, 0, sizeof(local.data));
	local.data.pid = MyProcPid;
	local.data.dbid = MyDatabaseId;
	local.data.userid = GetUserId();
	copy_word(local.data.command, command, sizeof(local.data.command));
	copy_word(local.data.model, model, sizeof(local.data.model));
	copy_word(local.data.phase, phase, sizeof(local.data.phase));
	local.data.rows_estimate = estimate;
	local.data.value = NAN;
	local.data.started = GetCurrentTimestamp();
	local.last_notice = local.data.started;
	local.sent = false;
	local.thread = pthread_self();
	local.notices_failed = false;
	local.run = ++run_counter;
	*run = local.run;
	cb->func = end_run_callback;
	cb->arg = run;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	report(true);
}

/* pgml_progress_phase moves to another phase, with a notice. */
void
pgml_progress_phase(const char *phase)
{
	if (local.data.pid == 0)
		return;
	copy_word(local.data.phase, phase, sizeof(local.data.phase));
	report(true);
}

/* pgml_progress_iterations sets the planned iterations of the fit about to start (0: not known),
 * shown as "of M"; an earlier fit's iteration and metric (a search's trials) are forgotten. */
void
pgml_progress_iterations(int iterations)
{
	if (local.data.pid == 0)
		return;
	local.data.iterations = iterations > 0 ? iterations : 0;
	local.data.iteration = 0;
	local.data.metric[0] = '\0';
	local.data.value = NAN;
}

/* pgml_progress_rows counts n more rows read. */
void
pgml_progress_rows(int64 n)
{
	if (local.data.pid == 0)
		return;
	local.data.rows += n;
	report(false);
}

/* pgml_progress_set_rows sets the rows read (the aggregate query's exact total, after the
 * leader's running count of its own share). */
void
pgml_progress_set_rows(int64 n)
{
	if (local.data.pid == 0)
		return;
	local.data.rows = n;
	report(false);
}

/* pgml_progress_iteration records an iteration of the fit and a metric's value (NaN: none). */
void
pgml_progress_iteration(int iteration, const char *metric, double value)
{
	if (local.data.pid == 0)
		return;
	local.data.iteration = iteration;
	copy_word(local.data.metric, metric, sizeof(local.data.metric));
	local.data.value = value;
	report(false);
}

/*
 * pgml_progress_core is the core's ProgressCallback: a phase (iteration ignored) or an iteration.
 * Called from inside the core, on the backend's thread only: errors raised while sending the
 * notice are caught here and end the notices of this run; interrupts wait until the core polls them.
 */
void
pgml_progress_core(const char *phase, int iteration, const char *metric, double value)
{
	if (local.data.pid == 0 || !pthread_equal(pthread_self(), local.thread))
		return;
	MemoryContext cxt = CurrentMemoryContext;
	HOLD_INTERRUPTS();
	PG_TRY();
	{
		if (phase != NULL)
			pgml_progress_phase(phase);
		else
			pgml_progress_iteration(iteration, metric, value);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		local.notices_failed = true;
	}
	PG_END_TRY();
	RESUME_INTERRUPTS();
}

/* pgml_progress_end stops reporting; the shared slot is cleared. */
void
pgml_progress_end(void)
{
	memset(&local.data, 0, sizeof(local.data));
	publish();
}

/*
 * ml.training_progress() -> setof record: the running operations of every backend whose role the
 * caller has the privileges of (all of them with pg_read_all_stats), like pg_stat_activity.
 * No rows when pg_ml is not in shared_preload_libraries.
 */
Datum
pgml_training_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	InitMaterializedSRF(fcinfo, 0);
	if (slots == NULL)
		return (Datum) 0;
	Oid me = GetUserId();
	bool all = has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
	TimestampTz now = GetCurrentTimestamp();
	for (int i = 0; i < nslots; i++) {
		volatile ProgressSlot *s = &slots[i];
		ProgressData d;
		for (;;) {
			int before = s->changecount;
			pg_read_barrier();
			memcpy(&d, const_cast<ProgressData *>(&s->data), sizeof(d));
			pg_read_barrier();
			if (before == s->changecount && (before & 1) == 0)
				break;
			CHECK_FOR_INTERRUPTS();
		}
		if (d.pid == 0 || !(all || has_privs_of_role(me, d.userid)))
			continue;
		d.model[sizeof(d.model) - 1] = d.command[sizeof(d.command) - 1] = d.phase[sizeof(d.phase) - 1] =
			d.metric[sizeof(d.metric) - 1] = '\0';
		Datum values[13];
		bool nulls[13] = {false};
		values[0] = Int32GetDatum(d.pid);
		char *db = get_database_name(d.dbid);
		if (db != NULL)
			values[1] = DirectFunctionCall1(namein, CStringGetDatum(db));
		else
			nulls[1] = true;
		char *user = GetUserNameFromId(d.userid, true);
		if (user != NULL)
			values[2] = DirectFunctionCall1(namein, CStringGetDatum(user));
		else
			nulls[2] = true;
		values[3] = CStringGetTextDatum(d.command);
		values[4] = CStringGetTextDatum(d.model);
		values[5] = CStringGetTextDatum(d.phase);
		values[6] = Int64GetDatum(d.rows);
		if (d.rows_estimate >= 0)
			values[7] = Int64GetDatum(d.rows_estimate);
		else
			nulls[7] = true;
		values[8] = Int32GetDatum(d.iteration);
		nulls[8] = d.iteration <= 0;
		values[9] = CStringGetTextDatum(d.metric);
		nulls[9] = d.metric[0] == '\0';
		values[10] = Float8GetDatum(d.value);
		nulls[10] = std::isnan(d.value);
		values[11] = TimestampTzGetDatum(d.started);
		values[12] = Float8GetDatum((double) (now - d.started) / USECS_PER_SEC);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
