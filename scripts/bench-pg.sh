#!/usr/bin/env bash
# Benchmarks `kmdb import` into PostgreSQL against the PostgreSQL floor, and
# writes a dated section to benches/RESULTS.md (beside scripts/bench.sh's
# MariaDB figures; `scripts/bench.sh --target postgres` runs this script).
#
#   scripts/bench-pg.sh [SIZE] [--runs N] [--note TEXT] [--keep]
#
#   SIZE        export size for `kmdb generate` (default 2GB), the same
#               export as scripts/bench.sh's (.bench/export-SIZE, reused)
#   --runs N    rounds of the import and the floors, taken in turn; the
#               figures are medians (default 1: the target is for one run)
#   --note TEXT a line added to the section
#   --keep      keep the bench databases and files afterwards
#
# It starts the private PostgreSQL (scripts/pg-db.sh) if it is not running,
# and stops it at the end only in that case. Each round:
#   import:  kmdb import EXPORT --keep-tsv on a fresh database (setup and the
#            partition plan of scripts/bench.sh), under /usr/bin/time -v
#   floor:   the rows that import loaded, from ready files, by psql on a
#            fresh database with the same schema and plan: the batches
#            merged into one file per (table, partition), sorted by (t, id),
#            users and keys dumped from the import's database; each file in
#            one transaction (TRUNCATE, then \copy ... (FREEZE), as kmdb
#            fills an empty partition), largest first, over 3 sessions (as
#            kmdb's --load-sessions) and over 2; text COPY, and binary COPY
#            of the same rows over 3 sessions (files made once, by COPY TO
#            ... (FORMAT binary) from the text floor's database)
# The database floor is the fastest way's median. A CHECKPOINT comes before
# each timed step, so that none pays for the WAL of the one before.
set -euo pipefail
# A failure inside $(...) ends the script too.
shopt -s inherit_errexit
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SIZE="2GB"
RUNS=1
NOTE=""
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="${2:?--runs needs a number}"; shift ;;
        --note) NOTE="${2:?--note needs a text}"; shift ;;
        --keep) KEEP=1 ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
        -*) echo "bench-pg.sh: unknown option $1" >&2; exit 2 ;;
        *) SIZE="$1" ;;
    esac
    shift
done

IMPORT_DB=kmdb_bench_import
FLOOR_DB=kmdb_bench_floor
SESSIONS=3 # kmdb import's default --load-sessions
BENCH="$ROOT/.bench"
EXPORT="$BENCH/export-$SIZE"
RUN="$BENCH/pg-run"
FLOOR="$RUN/floor"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KMDB="$TARGET/release/kmdb"
RESULTS="$ROOT/benches/RESULTS.md"

source "$ROOT/scripts/bench-common.sh"

SCRIPT_T0="$(now)"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 (for \$EPOCHREALTIME)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: install GNU time (apt-get install time)"
[ "$RUNS" -ge 1 ] 2>/dev/null || die "--runs needs a number of at least 1"
# The column lists of the TSV files (src/db/postgres/load.rs).
COLS_events='id, t, n, user_id'
COLS_properties='id, t, key, value, user_id, event_id'
COLS_aliases='id, t, name1, name2, applied'
COLS_users='id, name, alias_of'
COLS_keys='id, string'
for t in events properties aliases; do
    var="COLS_$t"
    grep -qF "\"${!var}\"" src/db/postgres/load.rs ||
        die "src/db/postgres/load.rs no longer lists the columns \"${!var}\" for $t: update bench-pg.sh"
done

step "building kmdb (cargo build --release)"
cargo build --release --quiet

# ---------------------------------------------------------------- database
step "private PostgreSQL (scripts/pg-db.sh)"
started_db=0
scripts/pg-db.sh status >/dev/null 2>&1 || started_db=1
URL="$(scripts/pg-db.sh start | tail -n 1)"
cleanup() {
    local rc=$?
    if [ "$KEEP" = 0 ]; then
        scripts/pg-db.sh client -q -d postgres -c "DROP DATABASE IF EXISTS $IMPORT_DB WITH (FORCE)" \
            -c "DROP DATABASE IF EXISTS $FLOOR_DB WITH (FORCE)" >/dev/null 2>&1 || true
        rm -rf "$RUN/work" "$FLOOR"
    fi
    if [ "$started_db" = 1 ]; then scripts/pg-db.sh stop >/dev/null 2>&1 || true; fi
    exit "$rc"
}
trap cleanup EXIT
[[ "$URL" =~ ^postgres://([^:@/]+):([^@]*)@([^:/]+):([0-9]+)/(.*)$ ]] ||
    die "cannot read the URL printed by scripts/pg-db.sh start"
# The password goes by the environment, never on a command line.
export PGUSER="${BASH_REMATCH[1]}" PGPASSWORD="${BASH_REMATCH[2]}"
export PGHOST="${BASH_REMATCH[3]}" PGPORT="${BASH_REMATCH[4]}"
BASE_URL="${URL%/*}"
PSQL="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/psql"
[ -x "$PSQL" ] || PSQL="$(command -v psql)" || die "psql not found"
export PSQL
# No NOTICEs ("... does not exist, skipping").
export PGOPTIONS="-c client_min_messages=warning"
# psql_db DB [psql args...]: as kmdb's user, stopping at the first error.
psql_db() { local db="$1"; shift; "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
PG_VERSION="$(psql_db postgres -tAc 'SHOW server_version')"
SETTINGS="$(psql_db postgres -tA -F ' = ' -c "SELECT name, setting || COALESCE(unit, '') FROM pg_settings
    WHERE name IN ('shared_buffers', 'wal_level', 'full_page_writes', 'fsync', 'synchronous_commit',
                   'max_wal_size', 'checkpoint_timeout', 'maintenance_work_mem', 'work_mem', 'wal_compression')
    ORDER BY name" | paste -sd, - | sed 's/,/, /g')"
say "server $PGHOST:$PGPORT (started by this run: $([ $started_db = 1 ] && echo yes || echo no)), PostgreSQL $PG_VERSION"

rm -rf "$RUN"
mkdir -p "$RUN"

# Empty database DB with kmdb's schema and the partition plan. The
# superuser drops the old one: only it may end the autovacuum worker that
# may still be in it.
fresh_db() {
    scripts/pg-db.sh client -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
    psql_db postgres -c "CREATE DATABASE $1"
    DATABASE_URL="$BASE_URL/$1" "$KMDB" setup >/dev/null
    DATABASE_URL="$BASE_URL/$1" "$KMDB" partition "${PLAN[@]}" >/dev/null
}
# Before each timed step: the dirty pages and WAL of the last one written out.
quiesce() { scripts/pg-db.sh client -q -c CHECKPOINT >/dev/null; }
# Row counts of the five tables kmdb stores, one "table n" a line.
counts() {
    local t
    for t in events properties aliases users keys; do
        printf '%s %s\n' "$t" "$(psql_db "$1" -tAc "SELECT COUNT(*) FROM $t")"
    done
}

ensure_export "$EXPORT" "$SIZE"
EXPORT_BYTES="$(find "$EXPORT/revisions" -maxdepth 1 -type f -name '*.json*' -printf '%s\n' | awk '{ s += $1 } END { print s }')"
# Into the page cache, so that no measurement reads the disk.
find "$EXPORT/revisions" -maxdepth 1 -type f -name '*.json*' -exec cat {} + >/dev/null

# timed_import N: kmdb import on a fresh database, as run N; prints the wall
# seconds. Its batch files stay in $RUN/work.
timed_import() {
    local n="$1" t0 t1
    fresh_db "$IMPORT_DB"
    rm -rf "$RUN/work" "$RUN/state.sqlite"
    quiesce
    t0=$(now)
    DATABASE_URL="$BASE_URL/$IMPORT_DB" /usr/bin/time -v -o "$RUN/import-$n.time" \
        "$KMDB" import "$EXPORT" --state "$RUN/state.sqlite" --work-dir "$RUN/work" --keep-tsv \
        >"$RUN/import-$n.out" 2>"$RUN/import-$n.log" ||
        { tail -n 20 "$RUN/import-$n.log" >&2; die "kmdb import (run $n) failed; logs in $RUN"; }
    t1=$(now)
    calc "$t1 - $t0"
}

# The floor's files (once, from run 1's batches and database): text, then
# binary after the first text floor.
make_floor_files() {
    local dir key
    mkdir -p "$FLOOR/text" "$FLOOR/binary"
    dir="$(ls -d "$RUN"/work/tsv/*/ | head -n 1)"
    for key in $(ls "$dir" | grep '\.tsv$' | sed -E 's/\.[0-9]+\.tsv$//' | sort -u); do
        sort -m -t $'\t' -k2,2 -k1,1n "$dir/$key".*.tsv >"$FLOOR/text/$key.tsv"
    done
    psql_db "$IMPORT_DB" -c "\\copy (SELECT $COLS_users FROM users ORDER BY id) TO '$FLOOR/text/users.tsv'"
    psql_db "$IMPORT_DB" -c "\\copy (SELECT $COLS_keys FROM keys ORDER BY id) TO '$FLOOR/text/keys.tsv'"
    rm -rf "$RUN/work"
}
make_binary_files() {
    local f base table target cols order
    for f in "$FLOOR"/text/*.tsv; do
        base="$(basename "$f" .tsv)"
        read -r table target cols < <(target_of "$base")
        order="t, id"
        case "$table" in users | keys) order=id ;; esac
        psql_db "$FLOOR_DB" -c "\\copy (SELECT $cols FROM $target ORDER BY $order) TO '$FLOOR/binary/$base.bin' (FORMAT binary)"
    done
}
# target_of BASE: "table target columns" of a floor file (TABLE.PARTITION or
# users/keys); a partition's table is TABLE_partition, lower case.
target_of() {
    local base="$1" table part cols
    table="${base%%.*}"
    part="${base#*.}"
    cols="COLS_$table"
    if [ "$part" = "$base" ]; then echo "$table $table ${!cols}"; else echo "$table ${table}_${part,,} ${!cols}"; fi
}
# load_one FORMAT FILE: one file in one transaction, as kmdb fills an empty
# partition (users and keys into their empty tables, unfrozen as kmdb's).
load_one() {
    local format="$1" f="$2" base table target cols opts
    base="$(basename "$f")"
    base="${base%.*}"
    read -r table target cols < <(target_of "$base")
    opts="(FREEZE)"
    [ "$format" = binary ] && opts="(FORMAT binary, FREEZE)"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$FLOOR_DB" -1 \
        -c "SET TimeZone = 'UTC'" -c "TRUNCATE $target" -c "\\copy $target ($cols) FROM '$f' $opts"
}
export -f load_one target_of
export FLOOR_DB COLS_events COLS_properties COLS_aliases COLS_users COLS_keys

# floor FORMAT SESSIONS: the floor's files into a fresh database, largest
# first; prints the wall seconds.
floor() {
    local format="$1" sessions="$2" ext=tsv t0 t1
    [ "$format" = binary ] && ext=bin
    fresh_db "$FLOOR_DB"
    quiesce
    t0=$(now)
    ls -S "$FLOOR/$format"/*."$ext" | xargs -P "$sessions" -n 1 bash -c 'load_one "$0" "$1"' "$format" ||
        die "the $format floor over $sessions sessions failed"
    t1=$(now)
    [ "$(counts "$FLOOR_DB")" = "$IMPORT_COUNTS" ] || die "the $format floor stored other rows than kmdb import"
    calc "$t1 - $t0"
}

# ---------------------------------------------------------------- rounds
IMPORT_RUNS=() TEXT3_RUNS=() TEXT2_RUNS=() BIN3_RUNS=()
for i in $(seq "$RUNS"); do
    step "round $i of $RUNS: kmdb import (fresh database $IMPORT_DB)"
    IMPORT_RUNS+=("$(timed_import "$i")")
    say "wall $(fmt1 "${IMPORT_RUNS[-1]}") s"
    c="$(counts "$IMPORT_DB")"
    [ "$i" = 1 ] && IMPORT_COUNTS="$c"
    [ "$c" = "$IMPORT_COUNTS" ] || die "kmdb import (run $i) stored other rows than run 1"
    if [ "$i" = 1 ]; then
        make_floor_files
        say "floor files: $(ls "$FLOOR/text" | wc -l), $(fmt1 "$(calc "$(cat "$FLOOR"/text/*.tsv | wc -c) / 1e6")") MB"
    fi
    scripts/pg-db.sh client -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE $IMPORT_DB WITH (FORCE)"
    step "round $i of $RUNS: the floors (fresh database $FLOOR_DB each)"
    TEXT3_RUNS+=("$(floor text "$SESSIONS")")
    say "text COPY, $SESSIONS sessions: $(fmt1 "${TEXT3_RUNS[-1]}") s"
    if [ "$i" = 1 ]; then
        make_binary_files
        say "binary files: $(fmt1 "$(calc "$(cat "$FLOOR"/binary/*.bin | wc -c) / 1e6")") MB"
    fi
    TEXT2_RUNS+=("$(floor text 2)")
    say "text COPY, 2 sessions: $(fmt1 "${TEXT2_RUNS[-1]}") s"
    BIN3_RUNS+=("$(floor binary "$SESSIONS")")
    say "binary COPY, $SESSIONS sessions: $(fmt1 "${BIN3_RUNS[-1]}") s"
done
IMPORT_S="$(median "${IMPORT_RUNS[@]}")"
TEXT3="$(median "${TEXT3_RUNS[@]}")"
TEXT2="$(median "${TEXT2_RUNS[@]}")"
BIN3="$(median "${BIN3_RUNS[@]}")"
FLOOR_S="$(printf '%s\n' "$TEXT3" "$TEXT2" "$BIN3" | sort -g | head -n 1)"
case "$FLOOR_S" in
    "$TEXT3") FLOOR_HOW="text COPY, $SESSIONS sessions" ;;
    "$TEXT2") FLOOR_HOW="text COPY, 2 sessions" ;;
    *) FLOOR_HOW="binary COPY, $SESSIONS sessions" ;;
esac
RSS_KB="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RUN/import-1.time")"
EVENTS="$(awk '$1 == "events" { print $2 }' <<<"$IMPORT_COUNTS")"
ROWS_TOTAL="$(awk '{ s += $2 } END { print s }' <<<"$IMPORT_COUNTS")"

# ---------------------------------------------------------------- results
step "writing benches/RESULTS.md"
RATIO="$(calc "$IMPORT_S / $FLOOR_S")"
DATE="$(date -u +%Y-%m-%d)"
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -n "$(git status --porcelain 2>/dev/null | grep -v '^??' || true)" ] && GIT_REV="$GIT_REV + uncommitted changes"
runs() { if [ "$RUNS" -gt 1 ]; then echo ", median of $RUNS runs ($(list1 "$@") s)"; fi; }
SECTION="$RUN/section.md"
{
    echo "<!-- bench-run $DATE $SIZE postgres -->"
    echo "## $DATE: $SIZE export into PostgreSQL"
    [ -n "$NOTE" ] && { echo; echo "$NOTE"; }
    echo
    echo "- machine: $(nproc) cores (nproc), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM (free -g), CPU$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), Linux $(uname -r)"
    echo "- load average at the start: $LOAD_AT_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- PostgreSQL $PG_VERSION (scripts/pg-db.sh settings: $SETTINGS), kmdb $GIT_REV"
    echo "- export: \`kmdb generate --size $SIZE --seed $SEED --gzip-every $GZIP_EVERY\`: $(commas "$EXPORT_BYTES") bytes on disk, $(commas "$EVENTS") events"
    echo "- rows stored: $(while read -r t c; do printf '%s%s %s' "${sep:-}" "$t" "$(commas "$c")"; sep=", "; done <<<"$IMPORT_COUNTS")"
    echo "- \`scripts/bench-pg.sh $SIZE --runs $RUNS\` took $(fmt0 "$(calc "$(now) - $SCRIPT_T0")") s"
    echo
    echo "| figure | value | target | |"
    echo "|---|---:|---|---|"
    echo "| floor: text COPY (FREEZE), $SESSIONS sessions$(runs "${TEXT3_RUNS[@]}") | $(fmt1 "$TEXT3") s | | |"
    echo "| floor: text COPY (FREEZE), 2 sessions$(runs "${TEXT2_RUNS[@]}") | $(fmt1 "$TEXT2") s | | |"
    echo "| floor: binary COPY (FREEZE), $SESSIONS sessions$(runs "${BIN3_RUNS[@]}") | $(fmt1 "$BIN3") s | | |"
    echo "| binary / text COPY, $SESSIONS sessions | $(fmt2 "$(calc "$BIN3 / $TEXT3")") × | | |"
    echo "| **database floor** (fastest: $FLOOR_HOW) | **$(fmt1 "$FLOOR_S") s** ($(commas "$(fmt0 "$(calc "$ROWS_TOTAL / $FLOOR_S")")") rows/s) | | |"
    echo "| **\`kmdb import\` wall time**$(runs "${IMPORT_RUNS[@]}") | **$(fmt1 "$IMPORT_S") s** | | |"
    echo "| import / database floor | $(fmt2 "$RATIO") × | ≤ 1.15 × | $(check "$RATIO" "<=" 1.15) |"
    echo "| peak RSS of the import (run 1) | $(fmt0 "$(calc "$RSS_KB / 1024")") MB | ≤ 1 GB | $(check "$(calc "$RSS_KB / 1024")" "<=" 1024) |"
    echo "| events/s end to end | $(commas "$(fmt0 "$(calc "$EVENTS / $IMPORT_S")")") | | |"
    echo
    echo "<details><summary>commands</summary>"
    echo
    echo '```sh'
    echo "# DATABASE_URL=$(sed 's/:[^:@]*@/:***@/' <<<"$BASE_URL")/$IMPORT_DB, fresh: kmdb setup; kmdb partition ${PLAN[*]}"
    echo "/usr/bin/time -v kmdb import .bench/export-$SIZE --state STATE --work-dir WORK --keep-tsv"
    echo "# floor files: per (table, partition) sort -m -t\$'\\t' -k2,2 -k1,1n WORK/tsv/TABLE.PART.*.tsv;"
    echo "#   users, keys: \\copy (SELECT ... ORDER BY id) TO FILE from $IMPORT_DB"
    echo "#   binary: \\copy (SELECT cols FROM partition ORDER BY t, id) TO FILE (FORMAT binary) from the text floor's database"
    echo "# each floor on a fresh $FLOOR_DB (setup + partition), files largest first over N sessions:"
    echo "ls -S FLOOR/*.tsv | xargs -P N -n 1 psql -1 -c \"SET TimeZone = 'UTC'\" -c 'TRUNCATE partition' \\"
    echo "    -c '\\copy partition (cols) FROM FILE (FREEZE)'   # binary: (FORMAT binary, FREEZE)"
    echo '```'
    echo
    echo "</details>"
    echo "<!-- /bench-run -->"
} >"$SECTION"
add_section "$RESULTS" "<!-- bench-run $DATE $SIZE postgres -->" "<!-- /bench-run -->" "$SECTION"
sed -n '/^| figure/,/^$/p' "$SECTION" >&2
say "logs in ${RUN#"$ROOT"/}/"
