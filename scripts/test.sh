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

# A full run: every test binary against MariaDB, and the suites that hold
# for every target against PostgreSQL, each suite a job of its own, up to
# KMDB_TEST_JOBS (default 3) at a time. The tests mostly wait on the
# servers: one suite after another kept the 2 cores less than half busy.
# The binaries run straight (a second `cargo test` would wait for the
# first's lock on the build directory); each job's output is kept and shown
# when all have ended, a line per job as each ends.
JOBS="${KMDB_TEST_JOBS:-3}"
pg_suites=(conformance spec_rules prune crash robust hostile partition s3_import analysis mixpanel)
# The longest first, so that they do not start last.
slow=(postgres/crash postgres/robust mariadb/crash mariadb/robust postgres/mixpanel mariadb/mixpanel)
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"; cleanup' EXIT
cargo test --no-run --message-format=json-render-diagnostics >"$LOGS/build.json" || exit $?
# "name<TAB>path" of every test binary, from cargo's compiler-artifact
# messages (the unit tests of the library and of main.rs as lib and main).
declare -A bin=()
while IFS=$'\t' read -r name path; do bin[$name]="$path"; done < <(python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        kind = m["target"]["kind"][0]
        print("main" if kind == "bin" else m["target"]["name"] if kind == "test" else kind, m["executable"], sep="\t")
' <"$LOGS/build.json")
for suite in "${pg_suites[@]}"; do
    [ -n "${bin[$suite]:-}" ] || { echo "test.sh: no test binary for the suite $suite" >&2; exit 1; }
done
{
    printf '%s\n' "${slow[@]}"
    for name in "${!bin[@]}"; do echo "mariadb/$name"; done | sort
    for suite in "${pg_suites[@]}"; do echo "postgres/$suite"; done
} | awk '!seen[$0]++' | while IFS=/ read -r target name; do
    printf '%s\t%s\t%s\n' "$target" "$name" "${bin[$name]}"
done >"$LOGS/jobs"

# run_job "TARGET<TAB>NAME<TAB>BINARY[<TAB>ARGS]": one suite, its output in
# $LOGS/TARGET.NAME.log, its exit code and seconds in .rc. ARGS are words
# split on spaces (test names and flags); BINARY may hold any character.
run_job() {
    local target name binary args t0 rc=0 secs
    IFS=$'\t' read -r target name binary args <<<"$1"
    t0="$EPOCHREALTIME"
    # shellcheck disable=SC2086 # args: words on purpose
    if [ "$target" = postgres ]; then
        KMDB_TEST_TARGET=postgres "$binary" $args >"$LOGS/$target.$name.log" 2>&1 || rc=$?
    else
        "$binary" $args >"$LOGS/$target.$name.log" 2>&1 || rc=$?
    fi
    secs="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
    echo "$rc $secs" >"$LOGS/$target.$name.rc"
    printf '%-6s %-8s %-12s %7s s\n' "$([ "$rc" = 0 ] && echo ok || echo FAILED)" "$target" "$name" "$secs"
}
export -f run_job
export LOGS

echo "== $(wc -l <"$LOGS/jobs") test suites, up to $JOBS at a time"
xargs -P "$JOBS" -d '\n' -n 1 bash -c 'run_job "$1"' _ <"$LOGS/jobs" || true
cargo test --doc --quiet || rc=$?
# The database-outage test stops its server, so it runs alone, after
# everything else: the two targets' at once, as they stop different servers.
outage="--ignored --exact mariadb_stopped_mid_import_then_rerun_completes"
printf '%s\toutage\t%s\t%s\n' mariadb "${bin[crash]}" "$outage" postgres "${bin[crash]}" "$outage" |
    xargs -P 2 -d '\n' -n 1 bash -c 'run_job "$1"' _ || true

# Every job's code: a job without one did not end.
failed=()
while IFS=$'\t' read -r target name _; do
    code=missing
    [ -f "$LOGS/$target.$name.rc" ] && read -r code _ <"$LOGS/$target.$name.rc"
    [ "$code" = 0 ] || failed+=("$target.$name")
done < <(cat "$LOGS/jobs"; printf 'mariadb\toutage\npostgres\toutage\n')
for f in "$LOGS"/*.log; do
    echo
    echo "== $(basename "$f" .log)"
    cat "$f"
done
if [ "${#failed[@]}" -gt 0 ] || [ "$rc" != 0 ]; then
    for f in ${failed[@]+"${failed[@]}"}; do
        echo
        echo "== FAILED: $f (its output again)"
        cat "$LOGS/$f.log"
    done
    echo "test.sh: failed: ${failed[*]:-doc tests}" >&2
    exit 1
fi
echo "test.sh: every suite passed"
