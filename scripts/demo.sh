#!/usr/bin/env bash
# pg_ml demo: installs the dependencies, builds and installs the extension, then runs
# scripts/demo.sql in a throw-away PostgreSQL cluster (Debian's pg_virtualenv) that is
# deleted afterwards. Nothing is left running and no existing cluster is touched.
#
#   scripts/demo.sh
#
# Environment: PG_CONFIG (default: PostgreSQL 15's pg_config), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

export PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
JOBS="${JOBS:-2}"
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)

echo "== installing dependencies (Debian packages)"
scripts/install-deps.sh

echo "== building pg_ml"
make -j"$JOBS" PG_CONFIG="$PG_CONFIG"
echo "== installing pg_ml into $("$PG_CONFIG" --pkglibdir)"
"${SUDO[@]}" make install PG_CONFIG="$PG_CONFIG"

PGVER=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')

# Everything below runs inside pg_virtualenv, which creates a temporary cluster
# (-t: in a temporary directory, also when run as root, where the server runs as the
# postgres OS user), exports PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, and drops the
# cluster when the command exits. psql runs as the calling user and reads the files.
echo "== starting a throw-away PostgreSQL $PGVER cluster"
pg_virtualenv -t -v "$PGVER" bash -c '
    set -euo pipefail
    createdb pgml_demo
    export PGDATABASE=pgml_demo
    echo "== loading the diabetes and iris datasets (from python3-sklearn data files)"
    /usr/bin/python3 "$1/scripts/load_datasets.py" diabetes iris | psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -f - >/dev/null
    psql -X -v ON_ERROR_STOP=1 < "$1/scripts/demo.sql"
' demo "$ROOT"
