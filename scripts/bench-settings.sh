#!/usr/bin/env bash
# Measures the effect of MariaDB server settings on `kmdb import`, and adds
# a dated section to benches/RESULTS.md.
#
#   scripts/bench-settings.sh [SIZE]     (default 500MB)
#
# For each variant below, the private MariaDB (scripts/dev-db.sh) is
# restarted with the dev settings plus the variant's (KMDB_DEV_DB_SETTINGS),
# and the same generated export is imported into a fresh database (the
# partition plan of scripts/bench.sh). The dev server is left running with its
# own settings at the end. Each variant changes one dev setting back to
# MariaDB's default (or to a durable value), so the table reads as "what this
# dev setting is worth".
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SIZE="${1:-500MB}"
SEED=1
BENCH="$ROOT/.bench"
EXPORT="$BENCH/export-$SIZE"
RUN="$BENCH/settings"
RESULTS="$ROOT/benches/RESULTS.md"
DB=kmdb_bench_settings
PLAN=(--min-date 2013-12-01 --max-date 2016-02-01 --days-per-partition 28)

# name|settings (';'-separated, empty: the dev settings as they are)
VARIANTS=(
    "dev settings (scripts/dev-db.sh)|"
    "innodb_doublewrite=1 (default)|innodb_doublewrite=1"
    "innodb_flush_log_at_trx_commit=1 (default, durable)|innodb_flush_log_at_trx_commit=1"
    "innodb_log_file_size=96M (default)|innodb_log_file_size=96M"
    "innodb_buffer_pool_size=128M (default)|innodb_buffer_pool_size=128M"
    "binary log on (log_bin, sync_binlog=0)|log_bin=kmdb-bin;sync_binlog=0"
)

say() { echo "bench-settings: $*" >&2; }
die() { say "$*"; exit 1; }

cargo build --release --quiet
KMDB="$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]+)".*/\1/')/release/kmdb"
mkdir -p "$RUN"
if [ ! -f "$EXPORT.done" ]; then
    rm -rf "$EXPORT"
    "$KMDB" generate --out "$EXPORT" --size "$SIZE" --seed "$SEED" --gzip-every 4 -q
    touch "$EXPORT.done"
fi

restart() { # SETTINGS
    scripts/dev-db.sh stop >/dev/null 2>&1 || true
    KMDB_DEV_DB_SETTINGS="$1" scripts/dev-db.sh start >/dev/null 2>"$RUN/dev-db.log" ||
        { cat "$RUN/dev-db.log" >&2; die "the server did not start with: $1"; }
}
sql() { scripts/dev-db.sh client "$@"; }

declare -a NAMES=() SECS=()
for v in "${VARIANTS[@]}"; do
    name="${v%%|*}"
    settings="${v#*|}"
    say "$name"
    restart "$settings"
    base="$(scripts/dev-db.sh url)"
    base="${base%/*}"
    sql -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"
    DATABASE_URL="$base/$DB" "$KMDB" setup >/dev/null
    DATABASE_URL="$base/$DB" "$KMDB" partition "${PLAN[@]}" >/dev/null
    rm -rf "$RUN/state.sqlite" "$RUN/work"
    t0=$EPOCHREALTIME
    DATABASE_URL="$base/$DB" "$KMDB" import "$EXPORT" --state "$RUN/state.sqlite" \
        --work-dir "$RUN/work" -q >"$RUN/import.out" 2>"$RUN/import.log" ||
        { tail -n 20 "$RUN/import.log" >&2; die "import failed ($name)"; }
    t1=$EPOCHREALTIME
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
    say "  $secs s"
    NAMES+=("$name")
    SECS+=("$secs")
    sql -e "DROP DATABASE \`$DB\`"
done
restart ""

{
    echo "<!-- bench-settings $(date -u +%Y-%m-%d) $SIZE -->"
    echo "## $(date -u +%Y-%m-%d): server settings, $SIZE export"
    echo
    echo "\`scripts/bench-settings.sh $SIZE\`: \`kmdb import\` of the same export into a fresh"
    echo "database, the server restarted with the dev settings and one of them changed."
    echo "MariaDB $(sql -N -B -e 'SELECT VERSION()'), kmdb $(git rev-parse --short HEAD), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| server settings | import | vs dev settings |"
    echo "|---|---:|---:|"
    for i in "${!NAMES[@]}"; do
        echo "| ${NAMES[$i]} | ${SECS[$i]} s | $(awk -v a="${SECS[$i]}" -v b="${SECS[0]}" 'BEGIN { printf "%+.0f %%", (a / b - 1) * 100 }') |"
    done
    echo "<!-- /bench-settings -->"
} >"$RUN/section.md"
cat "$RUN/section.md" >>"$RESULTS"
cat "$RUN/section.md"
