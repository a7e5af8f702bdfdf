// pg_ml glue: which version of the extension's SQL objects this library serves.
//
// The library and the SQL objects of a database are installed separately (make install, then
// ALTER EXTENSION pg_ml UPDATE in each database), and a preloaded library stays in the server's
// memory until a restart. Both ways round, a mismatch is refused with a clear error instead of
// half-working on objects the code was not written for:
//  - the new objects with an old library: the update script first creates ml.library_version(),
//    whose C symbol only this library has (pgml_library_version_0_3), and turns the old library's
//    "could not find function" into an error that says to install the library and restart;
//  - this library with objects of an older (or newer) version: every entry that reads or writes
//    the catalog (pgml_catalog_begin) checks the database's pg_ml version first.
#include "pg_ml.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(pgml_library_version_0_3);
}

// the version of the SQL objects this library is written for (pg_ml.control's default_version)
#define PGML_LIBRARY_VERSION "0.3.0"

/* ml.library_version(): the version of the loaded library. */
Datum
pgml_library_version_0_3(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PGML_LIBRARY_VERSION));
}

/* The installed version of extension pg_ml in this database (palloc'd), or NULL. */
static char *
installed_version(void)
{
	char *version = NULL;
	Relation rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum("pg_ml"));
	SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup)) {
		bool isnull;
		Datum d = heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * pgml_require_current_catalog: raises 55000 unless this database's pg_ml objects are the
 * version this library serves. Called before the catalog is touched.
 */
void
pgml_require_current_catalog(void)
{
	char *version = installed_version();
	/* not installed (being dropped, or created): nothing to compare, the catalog says the rest */
	if (version == NULL || strcmp(version, PGML_LIBRARY_VERSION) == 0)
		return;
	/* versions compare as numbers: 0.10.0 is newer than 0.9.0 */
	int a[3] = {0, 0, 0}, b[3] = {0, 0, 0};
	sscanf(version, "%d.%d.%d", &a[0], &a[1], &a[2]);
	sscanf(PGML_LIBRARY_VERSION, "%d.%d.%d", &b[0], &b[1], &b[2]);
	bool older = a[0] != b[0] ? a[0] < b[0] : a[1] != b[1] ? a[1] < b[1] : a[2] < b[2];
	if (older)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("pg_ml's objects in database \"%s\" are version %s, older than its library (%s)",
							   get_database_name(MyDatabaseId), version, PGML_LIBRARY_VERSION),
						errdetail("The library was updated but the database was not: models keep their data, "
								  "but the library cannot use the old catalog."),
						errhint("Run ALTER EXTENSION pg_ml UPDATE; in this database.")));
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("pg_ml's objects in database \"%s\" are version %s, newer than its library (%s)",
						   get_database_name(MyDatabaseId), version, PGML_LIBRARY_VERSION),
					errhint("Install pg_ml %s's library (make install) and restart the server.", version)));
}
