#!/usr/bin/env bash
# Runs every test: starts (installing if needed) the private MariaDB, the
# private PostgreSQL and the local S3 server, points the tests at them, runs
# `cargo test "$@"`, and stops the services it started, whether the tests
# pass or fail.
#
#   scripts/test.sh                          # all tests
#   scripts/test.sh --all-targets -- --test-threads=2
#
# A full run (no arguments) then runs the database suites again against
# PostgreSQL (KMDB_TEST_TARGET=postgres); KMDB_TEST_TARGET=postgres
# scripts/test.sh --test NAME runs one suite there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

command -v cargo >/dev/null || { echo "test.sh: cargo not found" >&2; exit 1; }

# Services a developer already had running are left running afterwards;
# the ones this run starts are stopped on any exit.
started=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local s
    for s in ${started[@]+"${started[@]}"}; do
        "scripts/$s.sh" stop || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The analysis tests load kmdb's HTML page in a real headless browser:
# Debian's chromium, installed like scripts/dev-db.sh installs MariaDB.
if ! command -v chromium >/dev/null; then
    command -v apt-get >/dev/null || { echo "test.sh: chromium not found and apt-get unavailable; install Chromium" >&2; exit 1; }
    echo "test.sh: installing chromium with apt-get (takes a minute)" >&2
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } >&2 ||
        { echo "test.sh: apt-get could not install chromium" >&2; exit 1; }
fi

for s in dev-db pg-db s3-server; do
    "scripts/$s.sh" status >/dev/null || started+=("$s")
    "scripts/$s.sh" start >/dev/null
done

DATABASE_URL="$(scripts/dev-db.sh url)"
export DATABASE_URL
export KMDB_TEST_DATABASE_URL="$DATABASE_URL"
KMDB_TEST_PG_URL="$(scripts/pg-db.sh url)"
export KMDB_TEST_PG_URL
KMDB_TEST_S3_ENDPOINT="$(scripts/s3-server.sh url)"
export KMDB_TEST_S3_ENDPOINT
# moto accepts any credentials; the AWS SDK just needs some to sign with.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1

# Not exec: the EXIT trap must still run. set -e would skip saving the code.
rc=0
cargo test "$@" || rc=$?
# The database-outage test stops the shared server, so it runs alone, after
# everything else, on a full run.
if [ "$rc" = 0 ] && [ "$#" = 0 ]; then
    cargo test --test crash -- --ignored --exact mariadb_stopped_mid_import_then_rerun_completes || rc=$?
fi
# The suites that hold for every target, against PostgreSQL.
if [ "$rc" = 0 ] && [ "$#" = 0 ]; then
    pg_suites=(conformance spec_rules prune crash robust hostile partition s3_import analysis mixpanel)
    KMDB_TEST_TARGET=postgres cargo test "${pg_suites[@]/#/--test=}" || rc=$?
fi
if [ "$rc" = 0 ] && [ "$#" = 0 ]; then
    KMDB_TEST_TARGET=postgres cargo test --test crash -- --ignored --exact mariadb_stopped_mid_import_then_rerun_completes || rc=$?
fi
exit "$rc"
