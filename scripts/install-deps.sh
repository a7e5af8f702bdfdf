#!/usr/bin/env bash
# Installs everything pg_ml needs on Debian 12 (bookworm) from Debian's own packages:
# the compiler and build tools, PostgreSQL 15 server + headers, Eigen 3, libxgboost, libpq, GoogleTest,
# and for the tests python3 with psycopg2 and scikit-learn (dataset files + test oracle only),
# R with mlbench (r-base-core, r-cran-mlbench: the datasets of scripts/compare_sklearn.py), and
# clang 14 with its sanitizer and libFuzzer runtimes (clang-14, libclang-rt-14-dev: scripts/sanitize.sh).
#
# Idempotent: when every package is already installed, apt is not touched at all.
set -euo pipefail

PACKAGES=(
    build-essential g++ cmake make pkg-config
    postgresql-common postgresql-15 postgresql-client-15 postgresql-server-dev-15
    libeigen3-dev libpq-dev libgtest-dev libxgboost-dev
    python3 python3-psycopg2 python3-sklearn python3-numpy python3-xgboost
    r-base-core r-cran-mlbench
    clang-14 libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: not root and sudo is missing; install: ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
