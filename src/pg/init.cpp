// pg_ml glue: module magic, settings, and ownership of core objects by memory contexts.
#include "pg_ml.hpp"
#include "grouped.hpp"
#include "progress.hpp"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

void pgml_worker_init(void); /* worker.cpp: the background worker's settings and launcher */

int pgml_max_memory_mb = 1024;
int pgml_batch_rows = 10000;
int pgml_max_threads = 1;

/* _PG_init registers every setting of the extension, then reserves the prefix. */
void
_PG_init(void)
{
	DefineCustomIntVariable("pg_ml.max_memory",
							"Memory, in megabytes, that one training may use outside PostgreSQL's memory contexts.",
							"Checked before allocating: rows kept in memory, the feature matrix, the statistics of "
							"the encoded columns, and each algorithm's model and caches (trees, xgboost, the svm kernel, "
							"mlp layers, k-means); past it training fails with program_limit_exceeded.",
							&pgml_max_memory_mb, 1024, 1, INT_MAX / 2, PGC_USERSET, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_ml.max_groups",
							"Groups that one ml_train(group_by => ...) may train.",
							"Past it training fails with program_limit_exceeded naming the count.",
							&pgml_max_groups, 1000, 1, 1000000, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_ml.batch_rows",
							"Rows fetched from the relation per batch while training.",
							NULL, &pgml_batch_rows, 10000, 100, 1000000, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_ml.max_threads",
							"Threads one training may use (random_forest, gradient_boosting).",
							"The threads never call into PostgreSQL and block signals; 1 keeps training on the backend's own thread.",
							&pgml_max_threads, 1, 1, 64, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_ml.stats_aggregate",
							 "Train the linear family with one aggregate query (parallel when the planner chooses).",
							 "Off: read the rows through a cursor instead (the same statistics, one backend).",
							 &pgml_stats_aggregate, true, PGC_USERSET, 0, NULL, NULL, NULL);
	pgml_progress_init(); /* pg_ml.progress, _delay, _interval; shared slots when preloaded */
	pgml_worker_init();
	MarkGUCPrefixReserved("pg_ml");
}

struct PgmlOwned {
	MemoryContextCallback cb;
	void *obj;
	void (*deleter)(void *);
};

static void
pgml_owned_reset(void *arg)
{
	PgmlOwned *o = static_cast<PgmlOwned *>(arg);
	if (o->obj != nullptr) {
		o->deleter(o->obj); /* destructors of core objects do not throw */
		o->obj = nullptr;
	}
}

void
pgml_own(MemoryContext cxt, void *obj, void (*deleter)(void *))
{
	PgmlOwned *o = static_cast<PgmlOwned *>(MemoryContextAllocZero(cxt, sizeof(PgmlOwned)));
	o->obj = obj;
	o->deleter = deleter;
	o->cb.func = pgml_owned_reset;
	o->cb.arg = o;
	MemoryContextRegisterResetCallback(cxt, &o->cb);
}
