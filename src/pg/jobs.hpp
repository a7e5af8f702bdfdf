// pg_ml glue: auto-retrain and the job queue (jobs.cpp), the background worker (worker.cpp).
#pragma once

#include "pg_ml.hpp"

// ---------------------------------------------------------------- settings (worker.cpp)
extern int pgml_worker_naptime;    // seconds between the launcher's rounds over the databases
extern bool pgml_worker_enabled;   // per database (ALTER DATABASE ... SET) or server-wide
extern int pgml_job_max_attempts;  // a job that failed this often is not retried
extern int pgml_worker_max;        // databases whose jobs run at the same time
extern bool pgml_preloaded;        // the postmaster loaded pg_ml (shared_preload_libraries)

// Whether the background worker's launcher is alive now (false when pg_ml is not preloaded).
bool pgml_launcher_running(void);

// Defines the worker's settings; registers the launcher when called while the server loads
// shared_preload_libraries. Called from _PG_init.
void pgml_worker_init(void);

// ---------------------------------------------------------------- jobs (jobs.cpp)
// The per-database worker's work: when pg_ml is installed here and the worker is enabled for
// this database, runs every runnable job, each in its own transaction. Errors of a job are
// recorded on the job; the function returns when no job is left. Not in a transaction.
void pgml_jobs_worker_run(void);

// Forgets a model's auto-retrain (drops its trigger, batches, jobs). SPI connected, as the
// catalog owner; used by ml_drop_model and the sql_drop event trigger (DROP OWNED).
void pgml_jobs_forget_model(int64 model_id);
