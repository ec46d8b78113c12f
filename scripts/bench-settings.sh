#!/usr/bin/env bash
# Measures the effect of the private servers' settings on `kmdb import`, and
# adds a dated section to benches/RESULTS.md.
#
#   scripts/bench-settings.sh [SIZE] [--target mariadb|postgres]   (default 500MB, mariadb)
#
# For each variant below, the private server (scripts/dev-db.sh or
# scripts/pg-db.sh) is restarted with its dev settings plus the variant's
# (KMDB_DEV_DB_SETTINGS or KMDB_PG_SETTINGS), and the same generated export
# is imported into a fresh database (the partition plan of scripts/bench.sh).
# The server is left running with its own settings at the end. Each variant
# changes one dev setting back to the server's default (or to a durable
# value), so the table reads as "what this dev setting is worth".
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SIZE=500MB
TARGET_DB=mariadb
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET_DB="${2:?--target needs mariadb or postgres}"; shift ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
        -*) echo "bench-settings.sh: unknown option $1" >&2; exit 2 ;;
        *) SIZE="$1" ;;
    esac
    shift
done
BENCH="$ROOT/.bench"
EXPORT="$BENCH/export-$SIZE"
RUN="$BENCH/settings"
RESULTS="$ROOT/benches/RESULTS.md"
DB=kmdb_bench_settings
KMDB="${CARGO_TARGET_DIR:-$ROOT/target}/release/kmdb"
source "$ROOT/scripts/bench-common.sh"

# name|settings (';'-separated, empty: the dev settings as they are)
case "$TARGET_DB" in
    mariadb)
        SERVER=dev-db SETTINGS_VAR=KMDB_DEV_DB_SETTINGS
        VARIANTS=(
            "dev settings (scripts/dev-db.sh)|"
            "innodb_doublewrite=1 (default)|innodb_doublewrite=1"
            "innodb_flush_log_at_trx_commit=1 (default, durable)|innodb_flush_log_at_trx_commit=1"
            "innodb_log_file_size=96M (default)|innodb_log_file_size=96M"
            "innodb_buffer_pool_size=128M (default)|innodb_buffer_pool_size=128M"
            "binary log on (log_bin, sync_binlog=0)|log_bin=kmdb-bin;sync_binlog=0"
        )
        create_db() { scripts/dev-db.sh client -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"; }
        drop_db() { scripts/dev-db.sh client -e "DROP DATABASE \`$DB\`"; }
        version() { scripts/dev-db.sh client -N -B -e 'SELECT VERSION()'; }
        ;;
    postgres)
        SERVER=pg-db SETTINGS_VAR=KMDB_PG_SETTINGS
        VARIANTS=(
            "dev settings (scripts/pg-db.sh)|"
            "wal_level=replica (default: a COPY into a partition truncated in its transaction writes WAL)|wal_level=replica;max_wal_senders=10"
            "full_page_writes=on (default)|full_page_writes=on"
            "max_wal_size=1GB, checkpoint_timeout=5min (defaults)|max_wal_size=1GB;checkpoint_timeout=5min"
            "shared_buffers=128MB (default)|shared_buffers=128MB"
        )
        admin() { scripts/pg-db.sh client -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
        create_db() { admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB OWNER kmdb"; }
        drop_db() { admin -c "DROP DATABASE $DB WITH (FORCE)"; }
        version() { echo "PostgreSQL $(admin -tAc 'SHOW server_version')"; }
        ;;
    *) echo "bench-settings.sh: --target is mariadb or postgres, not $TARGET_DB" >&2; exit 2 ;;
esac

cargo build --release --quiet
mkdir -p "$RUN"
ensure_export "$EXPORT" "$SIZE"

restart() { # SETTINGS
    "scripts/$SERVER.sh" stop >/dev/null 2>&1 || true
    env "$SETTINGS_VAR=$1" "scripts/$SERVER.sh" start >/dev/null 2>"$RUN/server.log" ||
        { cat "$RUN/server.log" >&2; die "the server did not start with: $1"; }
}

declare -a NAMES=() SECS=()
for v in "${VARIANTS[@]}"; do
    name="${v%%|*}"
    settings="${v#*|}"
    step "$name"
    restart "$settings"
    base="$("scripts/$SERVER.sh" url)"
    base="${base%/*}"
    create_db
    DATABASE_URL="$base/$DB" "$KMDB" setup >/dev/null
    DATABASE_URL="$base/$DB" "$KMDB" partition "${PLAN[@]}" >/dev/null
    rm -rf "$RUN/state.sqlite" "$RUN/work"
    t0=$(now)
    DATABASE_URL="$base/$DB" "$KMDB" import "$EXPORT" --state "$RUN/state.sqlite" \
        --work-dir "$RUN/work" -q >"$RUN/import.out" 2>"$RUN/import.log" ||
        { tail -n 20 "$RUN/import.log" >&2; die "import failed ($name)"; }
    secs="$(fmt1 "$(calc "$(now) - $t0")")"
    say "$secs s"
    NAMES+=("$name")
    SECS+=("$secs")
    drop_db
done
restart ""

TITLE="server settings" KEY="bench-settings"
[ "$TARGET_DB" = postgres ] && TITLE="PostgreSQL server settings" KEY="bench-settings-postgres"
{
    echo "<!-- $KEY $(date -u +%Y-%m-%d) $SIZE -->"
    echo "## $(date -u +%Y-%m-%d): $TITLE, $SIZE export"
    echo
    echo "\`scripts/bench-settings.sh $SIZE --target $TARGET_DB\`: \`kmdb import\` of the same export into a fresh"
    echo "database, the server restarted with the dev settings and one of them changed."
    echo "$(version), kmdb $(git rev-parse --short HEAD), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| server settings | import | vs dev settings |"
    echo "|---|---:|---:|"
    for i in "${!NAMES[@]}"; do
        echo "| ${NAMES[$i]} | ${SECS[$i]} s | $(awk -v a="${SECS[$i]}" -v b="${SECS[0]}" 'BEGIN { printf "%+.0f %%", (a / b - 1) * 100 }') |"
    done
    echo "<!-- /$KEY -->"
} >"$RUN/section.md"
add_section "$RESULTS" "$(head -n 1 "$RUN/section.md")" "<!-- /$KEY -->" "$RUN/section.md"
cat "$RUN/section.md"
