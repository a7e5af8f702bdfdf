// pg_ml glue: what a version learned from (ml.versions.sources), and reading only the rows
// a version has not learned.
//
// A training run reads its relation with the statement's snapshot (every read is a read-only
// SPI query, which uses the active snapshot), and records that snapshot with the relation: the
// rows it learned are exactly the rows whose inserting transaction the snapshot sees. A later
// incremental retrain on the same table reads only rows whose xmin that snapshot does not see
// (ml.row_is_new below), so no row is learned twice and none is skipped, however transactions
// interleave. The recorded snapshot is the active one widened to 64-bit ids, with subtransaction
// ids listed too; when the current transaction itself wrote rows (its ids may lie past the
// snapshot's xmax) the ids between xmax and the next id are listed as not seen except our own.
// When a concurrent transaction overflowed its subtransaction cache the snapshot cannot list
// them: then a stricter snapshot is recorded (nothing at or past xmin seen) and the read is
// filtered by it too, so what is recorded is still exactly what was read.
//
// Only tables and partitioned tables have a snapshot (their rows carry xmin); a view, a
// materialized view (REFRESH rewrites every row) or a foreign table is recorded without one.
// An UPDATE gives a row a new xmin: it counts as a new row (exact incremental models cannot
// unlearn the old values; refit to forget them). A frozen row keeps its xmin (PostgreSQL 9.4+);
// ids are widened against the current next id, so a recorded snapshot older than 2^31
// transactions cannot be used (the retrain says so).
#include "pg_ml.hpp"

#include <algorithm>
#include <vector>

extern "C" {
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "utils/acl.h"
#include "utils/json.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(pgml_row_is_new);
}

namespace {

/* a parsed snapshot: xid seen iff xid < xmin, or xid < xmax and not in xip (sorted) */
struct LearnedSnapshot {
	uint64 xmin = 0, xmax = 0;
	uint64 *xip = nullptr;
	int nxip = 0;
};

uint64
widen(TransactionId xid, FullTransactionId next)
{
	if (!TransactionIdIsNormal(xid))
		return xid; /* frozen / bootstrap: older than any snapshot */
	uint32 epoch = EpochFromFullTransactionId(next);
	if (xid > XidFromFullTransactionId(next) && epoch > 0)
		epoch--;
	return U64FromFullTransactionId(FullTransactionIdFromEpochAndXid(epoch, xid));
}

bool
seen_by(const LearnedSnapshot *s, uint64 xid)
{
	if (xid < s->xmin)
		return true;
	if (xid >= s->xmax)
		return false;
	return !std::binary_search(s->xip, s->xip + s->nxip, xid);
}

/* "xmin:xmax:xip,xip,..." (pg_snapshot's text form); false if malformed */
bool
parse_snapshot(const char *text, LearnedSnapshot *out)
{
	char *end;
	errno = 0;
	out->xmin = strtoull(text, &end, 10);
	if (*end != ':' || errno)
		return false;
	out->xmax = strtoull(end + 1, &end, 10);
	if (*end != ':' || errno || out->xmax < out->xmin)
		return false;
	const char *p = end + 1;
	int n = 0;
	for (const char *q = p; *q; q++)
		n += *q == ',';
	out->xip = static_cast<uint64 *>(palloc(sizeof(uint64) * (n + 1)));
	out->nxip = 0;
	while (*p) {
		uint64 x = strtoull(p, &end, 10);
		if (end == p || errno || (*end != ',' && *end != '\0'))
			return false;
		out->xip[out->nxip++] = x;
		p = *end ? end + 1 : end;
	}
	std::sort(out->xip, out->xip + out->nxip);
	return true;
}

void
append_snapshot(StringInfo buf, uint64 xmin, uint64 xmax, const uint64 *xip, int n)
{
	appendStringInfo(buf, UINT64_FORMAT ":" UINT64_FORMAT ":", xmin, xmax);
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s" UINT64_FORMAT, i ? "," : "", xip[i]);
}

const char *read_from_sql = NULL; /* the FROM item while a training run reads (see pg_ml.hpp) */
Oid read_from_relid = InvalidOid;
bool callbacks_registered = false;

/* an error while reading leaves the override set: any end of a (sub)transaction clears it */
void
clear_read_from(XactEvent, void *)
{
	read_from_sql = NULL;
	read_from_relid = InvalidOid;
}

void
clear_read_from_sub(SubXactEvent event, SubTransactionId, SubTransactionId, void *)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		clear_read_from(XACT_EVENT_ABORT, NULL);
}

} // namespace

char *
pgml_snapshot_record(bool *strict)
{
	Snapshot s = GetActiveSnapshot();
	if (s == NULL)
		elog(ERROR, "pg_ml: no active snapshot");
	FullTransactionId next = ReadNextFullTransactionId();
	uint64 xmin = widen(s->xmin, next), xmax = widen(s->xmax, next);
	int cap = s->xcnt + (s->suboverflowed ? 0 : s->subxcnt);
	uint64 *xip = static_cast<uint64 *>(palloc(sizeof(uint64) * (cap + 1)));
	int n = 0;
	*strict = s->suboverflowed;
	if (*strict) {
		/* the in-progress subtransactions are unknown: see nothing from xmin on */
		xmax = xmin;
	} else {
		for (uint32 i = 0; i < s->xcnt; i++)
			xip[n++] = widen(s->xip[i], next);
		for (int32 i = 0; i < s->subxcnt; i++)
			xip[n++] = widen(s->subxip[i], next);
	}
	uint64 next64 = U64FromFullTransactionId(next);
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()) && next64 > xmax) {
		/* this transaction's own ids may lie past xmax: the ids in between are seen iff ours */
		if (*strict || next64 - xmax > 100000) {
			*strict = true; /* too many to list: rows of ours past xmax wait for the next read */
		} else {
			xip = static_cast<uint64 *>(repalloc(xip, sizeof(uint64) * (n + (next64 - xmax) + 1)));
			for (uint64 x = xmax; x < next64; x++)
				if (!TransactionIdIsCurrentTransactionId(static_cast<TransactionId>(x)))
					xip[n++] = x;
			xmax = next64;
		}
	}
	std::sort(xip, xip + n);
	StringInfoData buf;
	initStringInfo(&buf);
	append_snapshot(&buf, xmin, xmax, xip, n);
	return buf.data;
}

char *
pgml_system_identifier(void)
{
	/* relation OIDs and transaction ids mean something in this database of this cluster only */
	return psprintf(UINT64_FORMAT "/%u", GetSystemIdentifier(), MyDatabaseId);
}

/*
 * ml.row_is_new(xmin xid, learned text, seen text) -> bool: whether a row with this xmin is
 * not seen by the snapshot `learned` (NULL: no row learned yet) and is seen by `seen` (NULL:
 * every row the query sees). PARALLEL SAFE; parses its (constant) snapshots once per query.
 */
Datum
pgml_row_is_new(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	struct Cache {
		text *arg[2];
		LearnedSnapshot snap[2];
		FullTransactionId next;
	};
	Cache *c = static_cast<Cache *>(fcinfo->flinfo->fn_extra);
	if (c == NULL) {
		c = static_cast<Cache *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(Cache)));
		c->next = ReadNextFullTransactionId();
		fcinfo->flinfo->fn_extra = c;
	}
	uint64 xid = widen(DatumGetTransactionId(PG_GETARG_DATUM(0)), c->next);
	for (int i = 0; i < 2; i++) {
		if (PG_ARGISNULL(i + 1))
			continue;
		text *t = PG_GETARG_TEXT_PP(i + 1);
		if (c->arg[i] == NULL || VARSIZE_ANY_EXHDR(c->arg[i]) != VARSIZE_ANY_EXHDR(t) ||
			memcmp(VARDATA_ANY(c->arg[i]), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) != 0) {
			MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
			c->arg[i] = static_cast<text *>(palloc(VARSIZE_ANY(t)));
			memcpy(c->arg[i], t, VARSIZE_ANY(t));
			char *s = text_to_cstring(t);
			bool ok = parse_snapshot(s, &c->snap[i]);
			MemoryContextSwitchTo(old);
			if (!ok)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid snapshot \"%s\"", s)));
		}
		bool seen = seen_by(&c->snap[i], xid);
		if (i == 0 ? seen : !seen)
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}

bool
pgml_snapshot_usable(const char *snapshot)
{
	LearnedSnapshot s;
	if (!parse_snapshot(snapshot, &s))
		return false;
	/* ids are widened against the next id: a snapshot 2^31 transactions old is ambiguous */
	uint64 next = U64FromFullTransactionId(ReadNextFullTransactionId());
	return next >= s.xmax && next - s.xmin < (UINT64CONST(1) << 31);
}

const char *
pgml_from_item(Oid relid)
{
	if (read_from_sql != NULL && relid == read_from_relid)
		return read_from_sql;
	return pgml_relation_sql_name(relid);
}

void
pgml_set_read_from(Oid relid, const char *from_sql)
{
	if (!callbacks_registered) {
		RegisterXactCallback(clear_read_from, NULL);
		RegisterSubXactCallback(clear_read_from_sub, NULL);
		callbacks_registered = true;
	}
	read_from_relid = relid;
	read_from_sql = from_sql;
}

void
pgml_json_string(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, s);
}
