#!/usr/bin/env bash
# Runs every test: starts (installing if needed) the private MariaDB, the
# private PostgreSQL and the local S3 server, points the tests at them, runs
# `cargo test "$@"`, and stops the services it started, whether the tests
# pass or fail.
#
#   scripts/test.sh                          # all tests
#   scripts/test.sh --all-targets -- --test-threads=2
#
# A full run (no arguments) also runs the database suites against
# PostgreSQL (KMDB_TEST_TARGET=postgres), beside the MariaDB run;
# KMDB_TEST_TARGET=postgres scripts/test.sh --test NAME runs one suite there.
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

# The throwaway PostgreSQL of a test run syncs nothing to disk: its tests
# create hundreds of databases, and a stopped or killed server loses no
# write the OS has (only a crash of the machine would).
export KMDB_PG_SETTINGS="fsync=off${KMDB_PG_SETTINGS:+;$KMDB_PG_SETTINGS}"
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
if [ "$#" -gt 0 ]; then
    cargo test "$@" || rc=$?
    exit "$rc"
fi

# A full run. The two targets have servers of their own, so the suites that
# hold for every target run against PostgreSQL beside the whole run against
# MariaDB: their test binaries straight (a second `cargo test` would wait
# for the first's lock on the build directory), their output kept and shown
# once the MariaDB run has ended.
pg_suites=(conformance spec_rules prune crash robust hostile partition s3_import analysis mixpanel)
outage=(--ignored --exact mariadb_stopped_mid_import_then_rerun_completes)
BUILD_LOG="$(mktemp)"
PG_LOG="$(mktemp)"
trap 'rm -f "$BUILD_LOG" "$PG_LOG"; cleanup' EXIT
cargo test --no-run --message-format=json-render-diagnostics >"$BUILD_LOG" || exit $?
# "name path" of every test binary, from cargo's compiler-artifact messages.
declare -A bin=()
while read -r name path; do bin[$name]="$path"; done < <(python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])
' <"$BUILD_LOG")
for suite in "${pg_suites[@]}"; do
    [ -n "${bin[$suite]:-}" ] || { echo "test.sh: no test binary for the suite $suite" >&2; exit 1; }
done
(
    pg_rc=0
    for suite in "${pg_suites[@]}"; do
        echo "     Running tests/$suite.rs on PostgreSQL"
        KMDB_TEST_TARGET=postgres "${bin[$suite]}" || pg_rc=$?
    done
    exit "$pg_rc"
) >"$PG_LOG" 2>&1 &
pg_pid=$!
cargo test || rc=$?
pg_rc=0
wait "$pg_pid" || pg_rc=$?
echo
echo "== the suites against PostgreSQL (run beside the ones above)"
cat "$PG_LOG"
[ "$rc" = 0 ] && rc="$pg_rc"
# The database-outage test stops the shared server, so it runs alone, after
# everything else, once per target.
if [ "$rc" = 0 ]; then
    "${bin[crash]}" "${outage[@]}" || rc=$?
fi
if [ "$rc" = 0 ]; then
    KMDB_TEST_TARGET=postgres "${bin[crash]}" "${outage[@]}" || rc=$?
fi
exit "$rc"
