#!/usr/bin/env bash
# Benchmarks kmdb end to end on a generated export and the private MariaDB,
# and writes a dated section to benches/RESULTS.md (see its header for what
# each figure means).
#
#   scripts/bench.sh [SIZE] [--format km|mixpanel] [--note TEXT] [--no-criterion] [--no-straight] [--keep]
#   scripts/bench.sh --target postgres [SIZE] [--runs N] [--note TEXT] [--keep]
#
#   --target T      mariadb (default, all below) or postgres: the import
#                   into the private PostgreSQL against PostgreSQL's COPY
#                   floor, by scripts/bench-pg.sh (see its --help)
#   SIZE            export size for `kmdb generate` (default 2GB); exports
#                   below 1GB are marked as smoke runs
#   --format F      the export's format (default km); mixpanel generates
#                   `kmdb generate --format mixpanel --days 730` (day files
#                   over the same two years as a KM export's times) and
#                   imports it with --format mixpanel, the same way, against
#                   the same database floor; its section also gives the
#                   state store's size (the duplicate keys)
#   --note TEXT     a line added to the section (e.g. what changed)
#   --no-criterion  skip `cargo bench` (the per-core parse/gzip/TSV figures)
#   --no-straight   skip the straight loads (the floor with 1 and 2 sessions
#                   straight into the partitions, kmdb import --no-staging):
#                   they show what the staging tables gain, are never the
#                   fastest, and take most of a run's time
#   --keep          keep the bench databases and TSV files afterwards
#   --runs N        time the import and each staging-table floor N times,
#                   alternately, and compare medians (default 3)
#
# Everything it writes lives in .bench/ at the repo root (the export is kept
# there and reused by later runs of the same SIZE). It starts the private
# MariaDB (scripts/dev-db.sh) if it is not running, and stops it at the end
# only in that case. Steps:
#   1. parse floor:    kmdb parse EXPORT --jobs 1, then --jobs $(nproc), and
#                      --jobs 1 on the plain .json files alone (the target
#                      is for JSON; gzip has its own)
#   2. import:         kmdb import EXPORT --keep-tsv on a fresh database,
#                      under /usr/bin/time -v, progress lines time-stamped
#   3. database floor: the TSV files that import loaded, merged per
#                      (table, partition) and sorted by (t, id), plus the
#                      users and keys rows, loaded by the mariadb client
#                      into a fresh database four ways: 1 and 2 sessions
#                      straight into the partitions, and 2 and 3 sessions
#                      through staging tables (bulk load) + EXCHANGE
#                      PARTITION
#   3b. straight:      kmdb import EXPORT --no-staging on a fresh database
#   3c. again:         RUNS-1 more rounds of: kmdb import EXPORT --keep-tsv
#                      on a fresh database, as in 2, then the two staging-
#                      table floors again. One run varies by several percent
#                      (up to a fifth) on a shared machine, so the import
#                      figure is the median of its RUNS runs, each floor the
#                      median of its RUNS runs, taken in turn with the
#                      imports so that a slow spell of the machine falls on
#                      both; the database floor is the faster floor median
#   4. criterion:      cargo bench --bench parse --bench tsv
set -euo pipefail
export LC_ALL=C

SCRIPT_T0="$EPOCHREALTIME"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# --target postgres: scripts/bench-pg.sh, with the other arguments.
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --target)
            case "${2:-}" in
                postgres) shift 2; exec "$ROOT/scripts/bench-pg.sh" "${args[@]}" "$@" ;;
                mariadb | mysql) shift 2; continue ;;
                *) echo "bench.sh: --target is mariadb or postgres, not ${2:-nothing}" >&2; exit 2 ;;
            esac ;;
    esac
    args+=("$1")
    shift
done
set -- "${args[@]}"

SIZE="2GB"
NOTE=""
FORMAT=km
CRITERION=1
STRAIGHT=1
KEEP=0
RUNS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --note) NOTE="${2:?--note needs a text}"; shift ;;
        --format) FORMAT="${2:?--format needs km or mixpanel}"; shift ;;
        --no-criterion) CRITERION=0 ;;
        --no-straight) STRAIGHT=0 ;;
        --keep) KEEP=1 ;;
        --runs) RUNS="${2:?--runs needs a number}"; shift ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
        -*) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
        *) SIZE="$1" ;;
    esac
    shift
done

IMPORT_DB=kmdb_bench_import
FLOOR_DB=kmdb_bench_floor

BENCH="$ROOT/.bench"
case "$FORMAT" in
    km) EXPORT="$BENCH/export-$SIZE" FILES="$EXPORT/revisions" GEN=() ;;
    # Day files over two years, as KM's generated times span.
    mixpanel) EXPORT="$BENCH/export-mixpanel-$SIZE" FILES="$EXPORT" GEN=(--format mixpanel --days 730) ;;
    *) echo "bench.sh: --format is km or mixpanel, not $FORMAT" >&2; exit 2 ;;
esac
FMT=(--format "$FORMAT")
RUN="$BENCH/run"          # this run's logs and work files (replaced each run)
WORK="$RUN/work"          # kmdb import --work-dir
FLOOR="$RUN/floor"        # the floor's TSV files
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KMDB="$TARGET/release/kmdb"
RESULTS="$ROOT/benches/RESULTS.md"

source "$ROOT/scripts/bench-common.sh"

# ---------------------------------------------------------------- tools
step "tools"
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 (for \$EPOCHREALTIME)"
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"
if [ ! -x /usr/bin/time ]; then
    command -v apt-get >/dev/null || die "/usr/bin/time is missing: install GNU time"
    say "installing GNU time (apt-get install time)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time; } >&2 ||
        die "apt-get install time failed"
fi
# The column lists below are Table::columns() of src/table.rs; fail loudly if
# they drift apart.
COLS_events='id, t, n, user_id'
COLS_properties='id, t, `key`, value, user_id, event_id'
COLS_aliases='id, t, name1, name2, applied'
COLS_users='id, name, alias_of'
COLS_keys='id, string'
for t in events properties aliases; do
    var="COLS_$t"
    grep -qF "\"${!var}\"" src/table.rs || die "src/table.rs no longer lists the columns \"${!var}\" for $t: update bench.sh"
done

step "building kmdb (cargo build --release)"
cargo build --release --quiet
BUILD_S="$(calc "$EPOCHREALTIME - $SCRIPT_T0")"
SCRIPT_T0="$EPOCHREALTIME"

# ---------------------------------------------------------------- database
step "private MariaDB (scripts/dev-db.sh)"
started_db=0
scripts/dev-db.sh status >/dev/null 2>&1 || started_db=1
URL="$(scripts/dev-db.sh start | tail -n 1)"
cleanup() {
    local rc=$?
    if declare -F restore_dirty_pct >/dev/null; then restore_dirty_pct; fi
    if [ "$KEEP" = 0 ] && [ -n "${CNF:-}" ] && [ -f "${CNF:-}" ]; then
        sql "" -e "DROP DATABASE IF EXISTS \`$IMPORT_DB\`; DROP DATABASE IF EXISTS \`$FLOOR_DB\`" 2>/dev/null || true
        rm -rf "$WORK/tsv" "$FLOOR"
    fi
    if [ "$started_db" = 1 ]; then scripts/dev-db.sh stop >/dev/null 2>&1 || true; fi
    exit "$rc"
}
trap cleanup EXIT
[[ "$URL" =~ ^mysql://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?/(.*)$ ]] ||
    die "cannot read the URL printed by scripts/dev-db.sh start"
DB_USER="${BASH_REMATCH[1]}" DB_PASS="${BASH_REMATCH[3]}"
DB_HOST="${BASH_REMATCH[4]}" DB_PORT="${BASH_REMATCH[6]:-3306}"
BASE_URL="${URL%/*}"
say "server $DB_HOST:$DB_PORT (started by this run: $([ $started_db = 1 ] && echo yes || echo no))"

mkdir -p "$BENCH"
rm -rf "$RUN"
mkdir -p "$RUN"
# A client options file: only it is read (never /etc/mysql), and the
# password stays off the command line.
CNF="$RUN/client.cnf"
(
    umask 077
    cat >"$CNF" <<EOF
[client]
host=$DB_HOST
port=$DB_PORT
user=$DB_USER
password=$DB_PASS
default-character-set=utf8mb4
local-infile=1
EOF
)
# sql DB [mariadb args...]
sql() { local db="$1"; shift; mariadb --defaults-file="$CNF" ${db:+"$db"} "$@"; }
MARIADB_VERSION="$(sql "" -N -B -e 'SELECT VERSION()')"

# Empty database DB with kmdb's schema and the partition plan.
fresh_db() {
    sql "" -e "DROP DATABASE IF EXISTS \`$1\`; CREATE DATABASE \`$1\` CHARACTER SET utf8mb4"
    DATABASE_URL="$BASE_URL/$1" "$KMDB" setup >/dev/null
    DATABASE_URL="$BASE_URL/$1" "$KMDB" partition "${PLAN[@]}" >/dev/null
}

# Before each timed step: has InnoDB write out the dirty pages of the
# previous step (innodb_max_dirty_pages_pct = 0 for the time being, as the
# page cleaner of a busy server is slow to do it by itself), so that no
# measurement pays for the one before. Waits up to 2 minutes.
ORIG_DIRTY_PCT=""
dirty_pages() {
    sql "" -N -B -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
                     WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'"
}
quiesce() {
    local dirty t0
    t0=$(now)
    ORIG_DIRTY_PCT="$(sql "" -N -B -e 'SELECT @@GLOBAL.innodb_max_dirty_pages_pct')"
    sql "" -e "SET GLOBAL innodb_max_dirty_pages_pct = 0" 2>/dev/null || true
    for _ in $(seq 240); do
        dirty="$(dirty_pages)"
        [ "${dirty:-0}" -lt 200 ] && break
        sleep 0.5
    done
    restore_dirty_pct
    if [ "${dirty:-0}" -ge 200 ]; then
        say "warning: InnoDB still has $dirty dirty pages; measuring anyway"
    else
        say "(InnoDB flushed in $(fmt1 "$(calc "$(now) - $t0")") s)"
    fi
}
restore_dirty_pct() {
    [ -n "$ORIG_DIRTY_PCT" ] || return 0
    sql "" -e "SET GLOBAL innodb_max_dirty_pages_pct = $ORIG_DIRTY_PCT" 2>/dev/null || true
    ORIG_DIRTY_PCT=""
}

# Row counts of the five tables kmdb stores, one "table n" a line.
counts() {
    local t
    for t in events properties aliases users keys; do
        printf '%s %s\n' "$t" "$(sql "$1" -N -B -e "SELECT COUNT(*) FROM \`$t\`")"
    done
}

# CHECKSUM TABLE of users and keys (the floor re-derives their files).
sums() { sql "$1" -N -B -e 'CHECKSUM TABLE users, `keys`' | cut -f2 | tr '\n' ' '; }

# ---------------------------------------------------------------- export
ensure_export "$EXPORT" "$SIZE" "${GEN[@]}"
EXPORT_FILES="$(find "$FILES" -maxdepth 1 -type f -name '*.json*' | wc -l)"
EXPORT_DISK="$(find "$FILES" -maxdepth 1 -type f -name '*.json*' -printf '%s\n' | awk '{ s += $1 } END { print s }')"
# Into the page cache, so that no measurement reads the disk.
find "$FILES" -maxdepth 1 -type f -name '*.json*' -exec cat {} + >/dev/null

# ---------------------------------------------------------------- 1. parse floor
NPROC="$(nproc)"
step "1. parse floor: kmdb parse (no database), 1 and $NPROC thread(s)"
# "parsed N file(s): B bytes, L lines (R records) in S s on J thread(s): X MB/s"
parse_run() {
    local out
    out="$("$KMDB" parse "${FMT[@]}" "$2" --jobs "$1" -q)"
    say "$out"
    echo "$out"
}
P1="$(parse_run 1 "$EXPORT")"
PN="$(parse_run "$NPROC" "$EXPORT")"
# The plain files alone: an export of links to them.
PLAIN="$RUN/plain-json"
rm -rf "$PLAIN" && mkdir -p "$PLAIN/revisions"
find "$FILES" -maxdepth 1 -name '*.json' -exec ln -s {} "$PLAIN/revisions/" \;
PP=""
[ -n "$(ls -A "$PLAIN/revisions")" ] && PP="$(parse_run 1 "$PLAIN/revisions")"
field() { sed -E "s|$1|\\1|" <<<"$2"; }
INPUT_BYTES="$(field '.*: ([0-9]+) bytes,.*' "$P1")"
INPUT_LINES="$(field '.*bytes, ([0-9]+) lines.*' "$P1")"
PARSE_1="$(field '.*: ([0-9.]+) MB/s$' "$P1")"
PARSE_N="$(field '.*: ([0-9.]+) MB/s$' "$PN")"
PARSE_PLAIN="$(field '.*: ([0-9.]+) MB/s$' "$PP")"
PLAIN_FILES="$(field 'parsed ([0-9]+) file.*' "$PP")"
INPUT_MB="$(calc "$INPUT_BYTES / 1e6")"

# ---------------------------------------------------------------- 2. import
step "2. kmdb import (fresh database $IMPORT_DB, --keep-tsv)"
fresh_db "$IMPORT_DB"
quiesce
# Plain progress lines (stderr is a pipe), each prefixed with the time.
IMPORT_CMD=("$KMDB" import "${FMT[@]}" "$EXPORT" --state "$RUN/state.sqlite" --work-dir "$WORK" --keep-tsv)
t0=$(now)
set +e
DATABASE_URL="$BASE_URL/$IMPORT_DB" /usr/bin/time -v -o "$RUN/import.time" \
    "${IMPORT_CMD[@]}" 2>&1 >"$RUN/import.out" | stamp >"$RUN/import.log"
rc=${PIPESTATUS[0]}
set -e
t1=$(now)
[ "$rc" = 0 ] || { tail -n 20 "$RUN/import.log" >&2; die "kmdb import failed (exit $rc); logs in $RUN"; }
IMPORT_S="$(calc "$t1 - $t0")"
IMPORT_RUNS=("$IMPORT_S")
sed 's/^/   /' "$RUN/import.out" >&2
EVENTS="$(awk '$1 == "events" { gsub(/,/, "", $2); print $2; exit }' "$RUN/import.out")"
RSS_KB="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RUN/import.time")"
IMPORT_COUNTS="$(counts "$IMPORT_DB")"
IMPORT_SUMS="$(sums "$IMPORT_DB")"
ROWS_TOTAL="$(awk '{ s += $2 } END { print s }' <<<"$IMPORT_COUNTS")"
say "wall $(fmt1 "$IMPORT_S") s, peak RSS $((RSS_KB / 1024)) MB"
# The state store after the import: its size, and what the duplicate keys
# (one row per day, 8 bytes a key) take of it.
STATE_BYTES="$(stat -c %s "$RUN/state.sqlite")"
read -r KEY_DAYS KEY_BYTES < <(python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(*c.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(keys)), 0) FROM duplicate_keys").fetchone())
' "$RUN/state.sqlite")
say "state store $STATE_BYTES bytes, duplicate keys $KEY_BYTES bytes in $KEY_DAYS day rows"

# 6. Rows/s over the first and the last quarter of the rows loaded, from the
# "load: X of Y rows" lines (at most one per 5 s, when a file finished
# loading), interpolated linearly; the clock starts when pass 1 ends
# ("aliases: ... done"), i.e. when pass 2 starts writing rows.
read -r Q1_RATE Q4_RATE LOAD_POINTS _ < <(awk '
    $2 == "aliases:" && $NF == "done" { t0 = $1 }
    $2 == "load:" && $4 == "of" { n++; T[n] = $1; x = $3; gsub(/,/, "", x); X[n] = x + 0 }
    function at(q,   i) {
        for (i = 1; i <= n; i++) if (X[i] >= q) break
        if (i == 1) return t0 + (q / X[1]) * (T[1] - t0)
        return T[i-1] + (q - X[i-1]) * (T[i] - T[i-1]) / (X[i] - X[i-1])
    }
    END {
        if (n == 0 || t0 == "") { print "nan nan 0 0"; exit }
        R = X[n]
        printf "%.0f %.0f %d %d\n", (R/4) / (at(R/4) - t0), (R/4) / (T[n] - at(3*R/4)), n, R
    }' "$RUN/import.log")

# ---------------------------------------------------------------- 3. database floor
step "3. database floor: the same rows from ready TSV files, mariadb client"
mkdir -p "$FLOOR"
# One file per (table, partition): the import's batches merged, sorted by
# (t, id) (each batch already is; `t` sorts as text).
# The import keeps its batch files in a directory of its own under tsv/.
TSV_DIR="$(ls -d "$WORK"/tsv/*/ | head -n 1)"
for key in $(ls "$TSV_DIR" | grep '\.tsv$' | sed -E 's/\.[0-9]+\.tsv$//' | sort -u); do
    sort -m -t $'\t' -k2,2 -k1,1n "$TSV_DIR/$key".*.tsv >"$FLOOR/$key.tsv"
done
# users and keys as kmdb writes them (escaped like the TSV files, NULL as \N),
# dumped from the import's database in primary key order.
ESC="$(cat <<'SQL'
REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(COL, '\\', '\\\\'), '\t', '\\t'), '\n', '\\n'), '\r', '\\r'), '\0', '\\0')
SQL
)"
sql "$IMPORT_DB" -N -B --raw -e "SELECT CONCAT(id, '\t', ${ESC//COL/name}, '\t', IFNULL(alias_of, '\\\\N'))
                                 FROM users ORDER BY id" >"$FLOOR/users.tsv"
sql "$IMPORT_DB" -N -B --raw -e "SELECT CONCAT(id, '\t', ${ESC//COL/string}) FROM \`keys\` ORDER BY id" >"$FLOOR/keys.tsv"
FLOOR_BYTES="$(cat "$FLOOR"/*.tsv | wc -c)"
say "$(ls "$FLOOR" | wc -l) files, $(fmt1 "$(calc "$FLOOR_BYTES / 1e6")") MB, $(commas "$ROWS_TOTAL") rows"
rm -rf "$WORK/tsv"
# Its pages would only stand in the way of the floor's.
sql "" -e "DROP DATABASE \`$IMPORT_DB\`"

# One LOAD DATA per file, run by xargs on up to N sessions at once (largest
# files first); kmdb's statement (src/db/mysql/load.rs) and session settings.
LOAD_OPTS="$(cat <<'SQL'
CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
SQL
)"
load_one() { # MODE FILE
    local mode="$1" f="$2" base table part cols q sql
    base="$(basename "$f" .tsv)"
    table="${base%%.*}"
    part="${base#*.}"
    cols="COLS_$table"
    cols="${!cols}"
    q="'${f//\'/\\\'}'"
    stmt() { echo "LOAD DATA LOCAL INFILE $q $2 INTO TABLE $1 $LOAD_OPTS ($cols)"; } # TARGET MODE
    sql="SET time_zone = '+00:00'; SET NAMES utf8mb4;"
    case "$table/$mode" in
        users/* | keys/*) sql+=" $(stmt "\`$table\`" REPLACE);" ;;
        */straight) sql+=" $(stmt "\`$table\` PARTITION (\`$part\`)" IGNORE);" ;;
        */exchange)
            # As kmdb fills an empty partition (src/db/mysql/load.rs): bulk load
            # (no IGNORE, unique and foreign key checks off) into the
            # session's empty unpartitioned copy, then exchange (which
            # leaves the copy empty again for the session's next file).
            local s="\`s_${table}_$SLOT\`"
            sql+=" SET unique_checks = 0, foreign_key_checks = 0; $(stmt "$s" "");
                  ALTER TABLE \`$table\` EXCHANGE PARTITION \`$part\` WITH TABLE $s;" ;;
    esac
    # -vvv: each statement with its duration, summed per kind afterwards;
    # a log per file, as concurrent sessions would interleave their output.
    mariadb --defaults-file="$CNF" -vvv --show-warnings "$FLOOR_DB" -e "$sql" >"$FLOOR_LOGS/$base.log" 2>&1

}
export -f load_one
export CNF FLOOR_DB LOAD_OPTS COLS_events COLS_properties COLS_aliases COLS_users COLS_keys

# Session-seconds per kind of statement in a floor log (mariadb -vvv).
statement_times() {
    awk '
        /^--------------$/ { inq = !inq; if (inq) stmt = ""; next }
        inq { stmt = stmt " " $0; next }
        /^(Query OK|Empty set|[0-9]+ rows? in set).*sec\)$/ {
            s = $0; sub(/.*\(/, "", s); sub(/ sec\)$/, "", s)
            n = split(s, w, " "); secs = w[n]
            for (i = 1; i < n; i += 2) secs += w[i] * (w[i+1] ~ /^hour/ ? 3600 : 60)
            if (stmt ~ /LOAD DATA/) k = "LOAD DATA"
            else if (stmt ~ /EXCHANGE PARTITION/) k = "EXCHANGE PARTITION"
            else if (stmt ~ /REMOVE PARTITIONING/) k = "REMOVE PARTITIONING"
            else if (stmt ~ /CREATE TABLE/) k = "CREATE TABLE LIKE"
            else if (stmt ~ /DROP TABLE/) k = "DROP TABLE"
            else k = "SET"
            sum[k] += secs
        }
        END {
            split("LOAD DATA,CREATE TABLE LIKE,REMOVE PARTITIONING,EXCHANGE PARTITION,DROP TABLE,SET", order, ",")
            for (i = 1; i <= 6; i++) if (order[i] in sum) {
                printf "%s%s %.1f", sep, order[i], sum[order[i]]; sep = ", "
            }
            print ""
        }' "$1"
}

# floor_run MODE SESSIONS ROUND: prints the seconds; the log and the
# statement times are left in $RUN/floor-MODE-N-ROUND.{log,times}.
floor_run() {
    local mode="$1" n="$2" round="$3" t0 t1 got log
    log="$RUN/floor-$mode-$n-$round.log"
    export FLOOR_LOGS="$RUN/floor-$mode-$n-$round"
    mkdir -p "$FLOOR_LOGS"
    fresh_db "$FLOOR_DB"
    quiesce
    t0=$(now)
    local ok=1
    # shellcheck disable=SC2011 # our own file names: no blanks or newlines
    # Staging tables: one per (session slot, table), made once, as kmdb's
    # sessions do; timed like the loads.
    local stages=() slot table
    if [ "$mode" = exchange ]; then
        for ((slot = 0; slot < n; slot++)); do
            for table in events properties aliases; do
                stages+=("s_${table}_$slot")
                sql "$FLOOR_DB" -e "CREATE TABLE \`s_${table}_$slot\` LIKE \`$table\`;
                                    ALTER TABLE \`s_${table}_$slot\` REMOVE PARTITIONING;
                                    ALTER TABLE \`s_${table}_$slot\` STATS_AUTO_RECALC = 0" || ok=0
            done
        done
    fi
    ls -S "$FLOOR"/*.tsv | xargs -d '\n' -n 1 -P "$n" --process-slot-var=SLOT bash -c 'load_one "$@"' _ "$mode" || ok=0
    for table in "${stages[@]}"; do
        sql "$FLOOR_DB" -e "DROP TABLE \`$table\`" || ok=0
    done
    t1=$(now)
    cat "$FLOOR_LOGS"/*.log >"$log"
    rm -rf "$FLOOR_LOGS"
    [ "$ok" = 1 ] || { grep -B 8 '^ERROR' "$log" | tail -n 30 >&2; die "floor load failed ($mode, $n): see ${log#"$ROOT"/}"; }
    if grep -qE '^(Warning|Error) \(Code' "$log"; then
        say "warning: the server reported (see ${log#"$ROOT"/}):"
        grep -E '^(Warning|Error) \(Code' "$log" | head -n 5 | sed 's/^/     /' >&2
    fi
    got="$(counts "$FLOOR_DB")"
    [ "$got" = "$IMPORT_COUNTS" ] || die "the floor ($mode, $n) loaded other rows than the import:
$got
vs
$IMPORT_COUNTS"
    [ "$(sums "$FLOOR_DB")" = "$IMPORT_SUMS" ] || die "the floor ($mode, $n) loaded other users or keys than the import"
    statement_times "$log" >"$RUN/floor-$mode-$n-$round.times"
    say "session-seconds: $(cat "$RUN/floor-$mode-$n-$round.times")"
    calc "$t1 - $t0"
}
# The staging-table floors, run again in each round of 3c.
FLOOR_X2_RUNS=()
FLOOR_X3_RUNS=()
exchange_floors() { # ROUND
    FLOOR_X2_RUNS+=("$(floor_run exchange 2 "$1")")
    say "2 sessions, staging table + EXCHANGE PARTITION: $(fmt1 "${FLOOR_X2_RUNS[-1]}") s"
    # A third session keeps both cores busy while another waits for its
    # exchange or its pages (kmdb's --load-sessions default).
    FLOOR_X3_RUNS+=("$(floor_run exchange 3 "$1")")
    say "3 sessions, staging table + EXCHANGE PARTITION: $(fmt1 "${FLOOR_X3_RUNS[-1]}") s"
}
# MariaDB before 11.4 always validates the rows of an exchange (a scan).
FLOOR_S1="" FLOOR_S2=""
if [ "$STRAIGHT" = 1 ]; then
    FLOOR_S1="$(floor_run straight 1 1)"
    say "1 session, straight into the partitions:      $(fmt1 "$FLOOR_S1") s"
    FLOOR_S2="$(floor_run straight 2 1)"
    say "2 sessions, straight into the partitions:     $(fmt1 "$FLOOR_S2") s"
fi
exchange_floors 1

# timed_import WHAT NAME [import flags...]: kmdb import on a fresh
# $IMPORT_DB, state and work dir named NAME in $RUN; prints its wall time.
# Checks that it stored the rows of the first import, then drops the
# database and the work dir.
timed_import() {
    local what="$1" name="$2" t0 t1
    shift 2
    fresh_db "$IMPORT_DB"
    rm -rf "$RUN/work-$name" "$RUN/state-$name.sqlite"
    quiesce
    t0=$(now)
    DATABASE_URL="$BASE_URL/$IMPORT_DB" "$KMDB" import "${FMT[@]}" "$EXPORT" --state "$RUN/state-$name.sqlite" \
        --work-dir "$RUN/work-$name" -q "$@" >/dev/null 2>"$RUN/import-$name.log" ||
        { tail -n 20 "$RUN/import-$name.log" >&2; die "$what failed; logs in $RUN"; }
    t1=$(now)
    [ "$(counts "$IMPORT_DB")" = "$IMPORT_COUNTS" ] || die "$what stored other rows than the first kmdb import"
    sql "" -e "DROP DATABASE \`$IMPORT_DB\`"
    rm -rf "$RUN/work-$name"
    calc "$t1 - $t0"
}

# ------------------------------------------------- 3b. import, straight loads
# The same import with every file loaded straight into its partition: what
# the staging tables gain (src/db/mysql/load.rs).
IMPORT_STRAIGHT_S=""
if [ "$STRAIGHT" = 1 ]; then
    step "3b. kmdb import --no-staging (fresh database $IMPORT_DB)"
    IMPORT_STRAIGHT_S="$(timed_import "kmdb import --no-staging" straight --no-staging)"
    say "wall $(fmt1 "$IMPORT_STRAIGHT_S") s"
fi

# ------------------------------------------------------- 3c. import, again
# RUNS-1 more rounds of the import as in 2 and the staging-table floors;
# the figures are the medians.
for i in $(seq 2 "$RUNS"); do
    step "3c. round $i of $RUNS: kmdb import again (fresh database $IMPORT_DB), then the floors"
    IMPORT_RUNS+=("$(timed_import "kmdb import (run $i)" again --keep-tsv)")
    say "wall $(fmt1 "${IMPORT_RUNS[-1]}") s"
    exchange_floors "$i"
done
IMPORT_S="$(median "${IMPORT_RUNS[@]}")"
IMPORT_LIST="$(list1 "${IMPORT_RUNS[@]}")"
FLOOR_X2="$(median "${FLOOR_X2_RUNS[@]}")"
FLOOR_X3="$(median "${FLOOR_X3_RUNS[@]}")"
# The database floor: the fastest way, by its median (a straight load, one
# run, would count too, but is far behind).
FLOOR_S="$(printf '%s\n' $FLOOR_S1 $FLOOR_S2 "$FLOOR_X2" "$FLOOR_X3" | sort -g | head -n 1)"
case "$FLOOR_S" in
    "$FLOOR_X3") FLOOR_HOW="3 sessions, exchange" ;;
    "$FLOOR_X2") FLOOR_HOW="2 sessions, exchange" ;;
    "$FLOOR_S2") FLOOR_HOW="2 sessions, straight" ;;
    *) FLOOR_HOW="1 session, straight" ;;
esac

# ---------------------------------------------------------------- criterion
declare -A CRIT=()
if [ "$CRITERION" = 1 ]; then
    step "4. criterion: cargo bench --bench parse --bench tsv (one core)"
        touch "$RUN/criterion.start"
    cargo bench --quiet --bench parse --bench tsv -- --noplot >"$RUN/criterion.log" 2>&1 ||
        { tail -n 30 "$RUN/criterion.log" >&2; die "cargo bench failed"; }
    # MB/s = throughput bytes / median ns per iteration * 1000 (the median
    # resists the noise of a busy machine better than the mean).
    for b in parse/parse_chunk parse/parse_line parse/chunk_aliases parse/decode_line mixpanel/parse_chunk mixpanel/chunk_aliases yardstick/sonic_rs_value gunzip/level1 gunzip/level6 tsv/format_rows tsv/tsv_writer tsv/tsv_writer_1_partition; do
        d="$TARGET/criterion/$b/new"
        [ "$d/estimates.json" -nt "$RUN/criterion.start" ] || continue
        ns="$(sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' "$d/estimates.json")"
        bytes="$(sed -E 's/.*"throughput":\{"Bytes":([0-9]+)\}.*/\1/' "$d/benchmark.json")"
        CRIT[$b]="$(fmt0 "$(calc "$bytes / $ns * 1000")")"
        say "$b: ${CRIT[$b]} MB/s"
    done
fi

# ---------------------------------------------------------------- results
step "writing benches/RESULTS.md"
RATIO="$(calc "$IMPORT_S / $FLOOR_S")"
EV_S="$(calc "$EVENTS / $IMPORT_S")"
MB_S="$(calc "$INPUT_MB / $IMPORT_S")"
RSS_MB="$(calc "$RSS_KB / 1024")"
DATE="$(date -u +%Y-%m-%d)"
SMOKE=0
[ "$INPUT_BYTES" -lt 1000000000 ] && SMOKE=1
crit() { if [ -n "${CRIT[$1]:-}" ]; then echo "${CRIT[$1]} MB/s"; else echo "(not run)"; fi; }
crit_check() { if [ -n "${CRIT[$1]:-}" ]; then check "${CRIT[$1]}" ">=" "$2"; else echo "–"; fi; }
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -n "$(git status --porcelain 2>/dev/null | grep -v '^??' || true)" ] && GIT_REV="$GIT_REV + uncommitted changes"
SECTION="$RUN/section.md"
# A Mixpanel run has a section of its own beside the KM run of the day.
SUFFIX="" TITLE=""
[ "$FORMAT" = mixpanel ] && SUFFIX=" mixpanel" TITLE=" Mixpanel"
{
    echo "<!-- bench-run $DATE $SIZE$SUFFIX -->"
    if [ "$SMOKE" = 1 ]; then
        echo "## $DATE: $SIZE$TITLE export (smoke run)"
        echo
        echo "Smoke run: an export this small checks that the script works end to end;"
        echo "its figures are dominated by fixed costs and are not comparable to the targets."
    else
        echo "## $DATE: $SIZE$TITLE export"
    fi
    [ -n "$NOTE" ] && { echo; echo "$NOTE"; }
    echo
    echo "- machine: $NPROC cores (nproc), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM (free -g), CPU$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), Linux $(uname -r)"
    echo "- load average at the start: $LOAD_AT_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
    echo "- MariaDB $MARIADB_VERSION (scripts/dev-db.sh settings), kmdb $GIT_REV"
    echo "- export: \`kmdb generate ${GEN[*]}${GEN:+ }--size $SIZE --seed $SEED --gzip-every $GZIP_EVERY\`: $EXPORT_FILES files, $(commas "$INPUT_BYTES") bytes ($(commas "$EXPORT_DISK") on disk), $(commas "$INPUT_LINES") lines, $(commas "$EVENTS") events"
    if [ "$FORMAT" = mixpanel ]; then
        echo "- duplicates rejected: $(commas "$(awk '$1 == "duplicate" { gsub(/,/, "", $2); print $2; exit }' "$RUN/import.out")"); state store after the import: $(commas "$STATE_BYTES") bytes, of which duplicate keys $(commas "$KEY_BYTES") bytes in $KEY_DAYS day rows: $(fmt1 "$(calc "$STATE_BYTES / $EVENTS")") bytes per event, i.e. MB per million events ($(fmt1 "$(calc "$KEY_BYTES / $EVENTS")") of them the duplicate keys)"
    fi
    echo "- rows stored: $(while read -r t c; do printf '%s%s %s' "${sep:-}" "$t" "$(commas "$c")"; sep=", "; done <<<"$IMPORT_COUNTS")"
    echo "- \`scripts/bench.sh $SIZE\` took $(fmt0 "$(calc "$(now) - $SCRIPT_T0")") s, plus $(fmt0 "$BUILD_S") s of \`cargo build --release\`"
    echo
    echo "| # | figure | value | target | |"
    echo "|---|---|---:|---|---|"
    if [ -n "$PP" ]; then
        echo "| 1 | parse floor, 1 thread, the $PLAIN_FILES plain \`.json\` files (\`kmdb parse --jobs 1\`) | $(fmt0 "$PARSE_PLAIN") MB/s | ≥ 450 MB/s per core | $(check "$PARSE_PLAIN" ">=" 450) |"
    fi
    echo "| 1 | parse floor, 1 thread, the whole export (gzip files too) | $(fmt0 "$PARSE_1") MB/s | | |"
    echo "| 1 | parse floor, $NPROC threads, the whole export (\`kmdb parse --jobs $NPROC\`) | $(fmt0 "$PARSE_N") MB/s | | |"
    echo "| 1 | criterion \`parse/parse_chunk\`, 1 core | $(crit parse/parse_chunk) | ≥ 450 MB/s | $(crit_check parse/parse_chunk 450) |"
    echo "| 1 | criterion \`parse/parse_line\`, 1 core | $(crit parse/parse_line) | | |"
    echo "| 1 | criterion \`mixpanel/parse_chunk\` (a Mixpanel export), 1 core | $(crit mixpanel/parse_chunk) | as KM's per byte | |"
    if [ -n "${CRIT[mixpanel/parse_chunk]:-}" ] && [ -n "${CRIT[parse/parse_chunk]:-}" ]; then
        r="$(calc "${CRIT[mixpanel/parse_chunk]} / ${CRIT[parse/parse_chunk]}")"
        echo "| 1 | \`mixpanel/parse_chunk\` / \`parse/parse_chunk\` | $(fmt2 "$r") × | ≥ 0.95 × (the same, within the noise) | $(check "$r" ">=" 0.95) |"
    fi
    echo "| 1 | criterion \`parse/chunk_aliases\` / \`mixpanel/chunk_aliases\` (the first pass), 1 core | $(crit parse/chunk_aliases) / $(crit mixpanel/chunk_aliases) | | |"
    echo "| 1 | criterion \`parse/decode_line\`, 1 core | $(crit parse/decode_line) | | |"
    echo "| 1 | criterion \`yardstick/sonic_rs_value\`: sonic-rs alone, each line into a \`sonic_rs::Value\`, 1 core (the machine's yardstick; about 520 MB/s where the 450 target was set) | $(crit yardstick/sonic_rs_value) | | |"
    if [ -n "${CRIT[yardstick/sonic_rs_value]:-}" ]; then
        # The per-core target scaled to this machine: 450 / 520 of sonic-rs alone.
        if [ -n "${CRIT[parse/parse_chunk]:-}" ]; then
            r="$(calc "${CRIT[parse/parse_chunk]} / ${CRIT[yardstick/sonic_rs_value]}")"
            echo "| 1 | \`parse_chunk\` / sonic-rs alone | $(fmt2 "$r") × | ≥ 0.87 × (450 / 520) | $(check "$r" ">=" 0.87) |"
        fi
        if [ -n "$PP" ]; then
            r="$(calc "$PARSE_PLAIN / ${CRIT[yardstick/sonic_rs_value]}")"
            echo "| 1 | parse floor on the plain files, 1 thread / sonic-rs alone | $(fmt2 "$r") × | ≥ 0.87 × (450 / 520) | $(check "$r" ">=" 0.87) |"
        fi
    fi
    echo "| 1 | criterion \`gunzip/level1\` (as generated), 1 core | $(crit gunzip/level1) | ≥ 250 MB/s | $(crit_check gunzip/level1 250) |"
    echo "| 1 | criterion \`gunzip/level6\` (as KM's files), 1 core | $(crit gunzip/level6) | ≥ 250 MB/s | $(crit_check gunzip/level6 250) |"
    echo "| 1 | criterion \`tsv/format_rows\`, 1 core, MB/s of input | $(crit tsv/format_rows) | | |"
    echo "| 1 | criterion \`tsv/tsv_writer\` (30 partitions), 1 core, MB/s of input | $(crit tsv/tsv_writer) | | |"
    echo "| 1 | criterion \`tsv/tsv_writer_1_partition\`, 1 core, MB/s of input | $(crit tsv/tsv_writer_1_partition) | | |"
    secs() { if [ -n "$1" ]; then echo "$(fmt1 "$1") s"; else echo "(not run: --no-straight)"; fi; }
    runs() { if [ "$RUNS" -gt 1 ]; then echo ", median of $RUNS runs ($(list1 "$@") s)"; fi; }
    echo "| 2 | database floor, 1 session straight into the partitions | $(secs "$FLOOR_S1") | | |"
    echo "| 2 | database floor, 2 sessions straight into the partitions | $(secs "$FLOOR_S2") | | |"
    echo "| 2 | database floor, 2 sessions, staging table + EXCHANGE PARTITION$(runs "${FLOOR_X2_RUNS[@]}") | $(fmt1 "$FLOOR_X2") s | | |"
    echo "| 2 | database floor, 3 sessions, staging table + EXCHANGE PARTITION$(runs "${FLOOR_X3_RUNS[@]}") | $(fmt1 "$FLOOR_X3") s | | |"
    echo "| 2 | **database floor** (fastest: $FLOOR_HOW) | **$(fmt1 "$FLOOR_S") s** ($(commas "$(fmt0 "$(calc "$ROWS_TOTAL / $FLOOR_S")")") rows/s) | | |"
    if [ "$RUNS" -gt 1 ]; then
        echo "| 3 | **\`kmdb import\` wall time**, median of $RUNS runs ($IMPORT_LIST s) | **$(fmt1 "$IMPORT_S") s** | | |"
    else
        echo "| 3 | **\`kmdb import\` wall time** | **$(fmt1 "$IMPORT_S") s** | | |"
    fi
    echo "| 3 | \`kmdb import --no-staging\` (every file straight into its partition) | $(secs "$IMPORT_STRAIGHT_S") | | |"
    echo "| 3 | import / database floor | $(fmt2 "$RATIO") × | ≤ 1.15 × | $(check "$RATIO" "<=" 1.15) |"
    echo "| 4 | peak RSS of the import (run 1) | $(fmt0 "$RSS_MB") MB | ≤ 1 GB for 2 GB | $(check "$RSS_MB" "<=" 1024) |"
    echo "| 5 | events/s end to end | $(commas "$(fmt0 "$EV_S")") | ≥ 100,000 | $(check "$EV_S" ">=" 100000) |"
    echo "| 5 | input MB/s end to end | $(fmt1 "$MB_S") MB/s | | |"
    if [ "$LOAD_POINTS" -gt 0 ]; then
        echo "| 6 | rows/s loaded, first quarter of the rows | $(commas "$Q1_RATE") | | |"
        echo "| 6 | rows/s loaded, last quarter of the rows | $(commas "$Q4_RATE") | | |"
        echo "| 6 | last / first quarter ($LOAD_POINTS progress points) | $(fmt2 "$(calc "$Q4_RATE / $Q1_RATE")") × | ≈ 1 (linear) | |"
    else
        echo "| 6 | rows/s loaded, first / last quarter | (no \`load:\` progress lines in the import's log) | | |"
    fi
    echo
    echo "Session-seconds per statement in the floor runs of the first round (mariadb -vvv, summed over sessions):"
    if [ "$STRAIGHT" = 1 ]; then
        echo "1 straight: $(cat "$RUN/floor-straight-1-1.times");"
        echo "2 straight: $(cat "$RUN/floor-straight-2-1.times");"
    fi
    echo "2 exchange: $(cat "$RUN/floor-exchange-2-1.times");"
    echo "3 exchange: $(cat "$RUN/floor-exchange-3-1.times")."
    echo
    echo "<details><summary>commands</summary>"
    echo
    echo '```sh'
    X=".bench/${EXPORT##*/}"
    F=""
    [ "$FORMAT" = mixpanel ] && F="--format mixpanel "
    echo "kmdb generate ${GEN[*]}${GEN:+ }--out $X --size $SIZE --seed $SEED --gzip-every $GZIP_EVERY -q"
    echo "kmdb parse $F$X --jobs 1 -q"
    echo "kmdb parse $F$X --jobs $NPROC -q"
    echo "kmdb parse ${F}PLAIN --jobs 1 -q   # PLAIN: links to the export's .json files"
    echo "# DATABASE_URL=$(sed 's/:[^:@]*@/:***@/' <<<"$BASE_URL")/$IMPORT_DB, fresh: kmdb setup; kmdb partition ${PLAN[*]}"
    echo "/usr/bin/time -v kmdb import $F$X --state STATE --work-dir WORK --keep-tsv 2>&1 | (time-stamp each line)"
    [ "$STRAIGHT" = 1 ] && echo "kmdb import $F$X --state STATE2 --work-dir WORK2 --no-staging -q   # on a fresh database again"
    [ "$RUNS" -gt 1 ] && echo "kmdb import $F$X --state STATE3 --work-dir WORK3 --keep-tsv -q   # $((RUNS - 1)) more time(s), each on a fresh database and followed by the exchange floors"
    echo "# floor: per (table, partition) sort -m -t\$'\\t' -k2,2 -k1,1n WORK/tsv/TABLE.PART.*.tsv; users and keys dumped from $IMPORT_DB;"
    echo "# then, for each way, on a fresh $FLOOR_DB (setup + partition), files largest first over N sessions:"
    echo "ls -S FLOOR/*.tsv | xargs -P N -n 1 (mariadb --local-infile=1 $FLOOR_DB -e \"SET time_zone = '+00:00'; SET NAMES utf8mb4; ...\")"
    echo "#   straight: LOAD DATA LOCAL INFILE 'f' IGNORE INTO TABLE t PARTITION (p) CHARACTER SET utf8mb4"
    echo "#             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (cols)"
    echo "#   exchange: once per session and table: CREATE TABLE s LIKE t; ALTER TABLE s REMOVE PARTITIONING;"
    echo "#             ALTER TABLE s STATS_AUTO_RECALC = 0;"
    echo "#             per file: SET unique_checks = 0, foreign_key_checks = 0;"
    echo "#             LOAD DATA ... INTO TABLE s ... (no IGNORE: a bulk load); ALTER TABLE t EXCHANGE PARTITION p WITH TABLE s"
    echo "#             (s is empty again after the exchange); at the end DROP TABLE s"
    echo "#   users, keys: LOAD DATA ... REPLACE INTO TABLE users|keys ... (as kmdb)"
    [ "$CRITERION" = 1 ] && echo "cargo bench --bench parse --bench tsv -- --noplot"
    echo '```'
    echo
    echo "</details>"
    echo "<!-- /bench-run -->"
} >"$SECTION"

# Replaces the section of the same day and size, else appends.
add_section "$RESULTS" "<!-- bench-run $DATE $SIZE$SUFFIX -->" "<!-- /bench-run -->" "$SECTION"
sed -n '/^| #/,/^$/p' "$SECTION" >&2
say "logs in ${RUN#"$ROOT"/}/"
