#!/bin/bash
# Per-statement and per-row prediction cost (issue 15).
#
#   bench/predict.sh [--rows N] [--clients C] [--jobs J] [--seconds S] [--runs R]
#
# pgbench, C clients on J threads, S seconds: the TPS of a one-row SELECT ml_predict(...) over
# the TPS of the same SELECT without ml_predict (a float8[] array, and a row as users pass a
# table's row), for linear_regression, gradient_boosting (100 trees of depth 6, the default)
# and random_forest (100 trees of depth 10); then the microseconds per row of
# SELECT sum(ml_predict('bench_gb', t)) FROM t over N rows with the server's default settings
# (and its plan's top nodes). Each figure is the median of R runs; a run measures the plain
# SELECT and the prediction back to back, so both see the same load.
#
# Connection: the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE; default database
# postgres). Creates (and reuses) table bench_predict_<N>, its training sample and the models
# bench_lin, bench_gb, bench_rf; delete them to start over. Defaults: 1000000 rows, 8 clients,
# 2 threads, 20 seconds, 3 runs. Needs pgbench and psql on PATH.
set -euo pipefail

ROWS=1000000 CLIENTS=8 JOBS=2 SECONDS_=20 RUNS=3
while [ $# -gt 0 ]; do
	case "$1" in
	--rows) ROWS=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	--jobs) JOBS=$2; shift 2 ;;
	--seconds) SECONDS_=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "predict.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
export PGDATABASE=${PGDATABASE:-postgres}
TABLE=bench_predict_$ROWS
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

setup() {
	psql_q <<-EOF
	SET client_min_messages = warning;
	CREATE EXTENSION IF NOT EXISTS pg_ml;
	CREATE TABLE IF NOT EXISTS $TABLE AS
	  SELECT s.*, s.x0 * 2 + s.x1 - s.x2 * s.x3 / 10 + sin(s.x4) + (hashint8extended(s.id, 9) % 100) / 100.0 AS y
	    FROM (SELECT i AS id$(for k in 0 1 2 3 4 5 6 7; do printf ', (hashint8extended(i, %d) %% 1000) / 100.0::float8 AS x%d' $((k + 1)) $k; done)
	            FROM generate_series(1, $ROWS) i) s;
	VACUUM ANALYZE $TABLE;
	CREATE TABLE IF NOT EXISTS ${TABLE}_train AS SELECT x0, x1, x2, x3, x4, x5, x6, x7, y FROM $TABLE WHERE id <= 20000;
	SELECT FROM ml_train('${TABLE}_train', 'y', algorithm => 'linear_regression', name => 'bench_lin')
	 WHERE NOT EXISTS (SELECT FROM ml_models WHERE name = 'bench_lin');
	SELECT FROM ml_train('${TABLE}_train', 'y', algorithm => 'gradient_boosting', name => 'bench_gb')
	 WHERE NOT EXISTS (SELECT FROM ml_models WHERE name = 'bench_gb');
	SELECT FROM ml_train('${TABLE}_train', 'y', algorithm => 'random_forest', name => 'bench_rf',
	                hyperparams => '{"n_estimators": 100, "max_depth": 10}')
	 WHERE NOT EXISTS (SELECT FROM ml_models WHERE name = 'bench_rf');
	EOF
}

ARR="ARRAY[1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5]::float8[]"
ROW="(SELECT 1.5::float8 AS x0, 2.5::float8 AS x1, 3.5::float8 AS x2, 4.5::float8 AS x3, 5.5::float8 AS x4, 6.5::float8 AS x5, 7.5::float8 AS x6, 8.5::float8 AS x7) r"

tps() { # script file -> TPS
	pgbench -n -c "$CLIENTS" -j "$JOBS" -T "$SECONDS_" -f "$1" 2>&1 | awk '/^tps/ { print $3 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# pgbench ratio for one form (array | row) and model
ratio() {
	local form=$1 model=$2 r=()
	if [ "$form" = array ]; then
		echo "SELECT $ARR;" >"$WORK/base.sql"
		echo "SELECT ml_predict('$model', $ARR);" >"$WORK/pred.sql"
	else
		echo "SELECT r FROM $ROW;" >"$WORK/base.sql"
		echo "SELECT ml_predict('$model', r) FROM $ROW;" >"$WORK/pred.sql"
	fi
	for ((i = 0; i < RUNS; i++)); do
		local b p
		b=$(tps "$WORK/base.sql")
		p=$(tps "$WORK/pred.sql")
		echo "$form $model run $((i + 1)): plain $b TPS, ml_predict $p TPS" >&2
		r+=("$(awk -v p="$p" -v b="$b" 'BEGIN { printf "%.3f", p / b }')")
	done
	printf '%s\n' "${r[@]}" | median
}

scan_us() { # model -> median microseconds per row
	local t=()
	for ((i = 0; i < RUNS; i++)); do
		local ms
		ms=$(psql -X -At -c '\timing on' -c "SELECT sum(ml_predict('$1', t)) FROM $TABLE t" | awk '/^Time:/ { print $2 }')
		echo "scan $1 run $((i + 1)): $ms ms" >&2
		t+=("$(awk -v ms="$ms" -v n="$ROWS" 'BEGIN { printf "%.3f", ms * 1000 / n }')")
	done
	printf '%s\n' "${t[@]}" | median
}

setup
echo "pg_ml predict bench: $ROWS rows, pgbench -c $CLIENTS -j $JOBS -T $SECONDS_, median of $RUNS runs ($(date -u '+%F %T UTC'))"
for form in array row; do
	for m in bench_lin bench_gb bench_rf; do
		printf 'TPS ratio %-5s %-9s %s\n' "$form" "$m" "$(ratio "$form" "$m")"
	done
done
plan=$(psql_q -c "EXPLAIN (COSTS OFF) SELECT sum(ml_predict('bench_gb', t)) FROM $TABLE t" | sed -n '1,2p' | tr -s ' ' | tr '\n' ' ')
echo "scan plan: $plan"
for m in bench_gb bench_lin; do
	printf 'scan us/row %-9s %s\n' "$m" "$(scan_us "$m")"
done
