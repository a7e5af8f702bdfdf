// pg_ml glue: progress reports of ml_train, ml_retrain and ml_evaluate (progress.cpp).
//
//   pgml_progress_begin("ml_train", name, relid, "reading");   at the start (a notice)
//   pgml_progress_rows(batch->nrows);                         per batch read
//   pgml_progress_phase("fitting");                           at each phase change (a notice)
//   spec.progress = pgml_progress_core;                       iterations reported by the core
//   pgml_progress_iterations(n_estimators);                   when the planned iterations are known
//   pgml_progress_end();                                      at the end (an error ends it too)
//
// Phases: reading, fitting, evaluating, saving. Include after pg_ml.hpp.
#pragma once

// pg_ml.progress: off, auto (after pg_ml.progress_delay, no detail), on (from the start, JSON detail)
enum { PGML_PROGRESS_OFF, PGML_PROGRESS_AUTO, PGML_PROGRESS_ON };
extern int pgml_progress_mode;        // pg_ml.progress
extern int pgml_progress_delay_ms;    // pg_ml.progress_delay
extern int pgml_progress_interval_ms; // pg_ml.progress_interval

// Registers pg_ml.progress, pg_ml.progress_delay and pg_ml.progress_interval; when preloaded, the
// shared slots. From _PG_init.
void pgml_progress_init(void);
void pgml_progress_begin(const char *command, const char *model, Oid relid, const char *phase);
void pgml_progress_phase(const char *phase);
void pgml_progress_rows(int64 n);
void pgml_progress_set_rows(int64 n); // the exact count, once known (after an aggregate query)
void pgml_progress_iteration(int iteration, const char *metric, double value);
void pgml_progress_iterations(int iterations); // the fit's planned iterations ("iteration k of n"), 0: unknown
// The core's pgml::ProgressCallback (a phase, or an iteration when phase is NULL).
void pgml_progress_core(const char *phase, int iteration, const char *metric, double value);
void pgml_progress_end(void);
