#!/usr/bin/env bash
# The main job in one command on a fresh machine: build kmdb, start a private
# MariaDB, generate a fixture export, set up the schema and partitions, import
# with progress bars, then print the accounting and two example queries.
#
#   scripts/quickstart.sh            # 300MB fixture, database stopped at the end
#   scripts/quickstart.sh 2GB --keep # bigger, and keep the database running
#   scripts/quickstart.sh --postgres # into a private PostgreSQL (scripts/pg-db.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SIZE="300MB"
KEEP=0
# The script of the private server, and how its client runs one query.
DB=dev-db
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        --postgres) DB=pg-db ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) SIZE="$arg" ;;
    esac
done

WORK="$ROOT/.quickstart"
EXPORT="$WORK/export-$SIZE"
KMDB="$ROOT/target/release/kmdb"

step() { printf '\n== %s\n' "$*"; }

step "building kmdb (cargo build --release)"
if [ ! -x "$KMDB" ]; then
    echo "The first build compiles kmdb and its dependencies: a few minutes (about 6 on 2 cores)."
fi
cargo build --release

step "starting the private database server (scripts/$DB.sh)"
started_db=0
"scripts/$DB.sh" status >/dev/null 2>&1 || started_db=1
DATABASE_URL="$("scripts/$DB.sh" start | tail -n 1)"
export DATABASE_URL
if [ "$KEEP" = 0 ] && [ "$started_db" = 1 ]; then
    trap '"scripts/$DB.sh" stop >/dev/null || true' EXIT
fi

if [ ! -d "$EXPORT/revisions" ]; then
    step "generating a $SIZE fixture export (kmdb generate, seed 1)"
    rm -rf "$EXPORT"
    "$KMDB" generate --out "$EXPORT" --size "$SIZE" --seed 1 --gzip-every 4
else
    step "reusing the $SIZE fixture in $EXPORT"
fi

step "schema and partitions"
"$KMDB" setup
# Start from empty tables so the quickstart can be run again.
"$KMDB" flush --yes --state "$WORK/state.sqlite" >/dev/null
# The date range comes from the export's index.csv; --replan keeps the plan
# 28-day partitions even if an earlier run chose another.
"$KMDB" partition --from-export "$EXPORT" --days-per-partition 28 --replan

step "import"
echo "The generator writes about 1.4 % faulty lines on purpose (bad JSON, no identity,"
echo "bad timestamps, ...), as real KM exports have: the accounting counts them as rejected,"
echo "by reason, and writes them to the rejects file."
"$KMDB" import "$EXPORT" --state "$WORK/state.sqlite" --work-dir "$WORK/work"

step "status"
"$KMDB" status --state "$WORK/state.sqlite"

if [ "$DB" = pg-db ]; then
    q() { scripts/pg-db.sh client -c "${1//\`/\"}"; }
else
    q() { scripts/dev-db.sh client -t -e "$1"; }
fi
step "events per name (top 10)"
q "SELECT k.string AS event, COUNT(*) AS events
   FROM events e JOIN \`keys\` k ON k.id = e.n
   GROUP BY k.string ORDER BY events DESC LIMIT 10"

step "the history of the most active user (first 15 events, with their aliases)"
q "SELECT u.name AS user, e.t, k.string AS event
   FROM events e JOIN \`keys\` k ON k.id = e.n JOIN users u ON u.id = e.user_id
   WHERE e.user_id = (SELECT user_id FROM events GROUP BY user_id ORDER BY COUNT(*) DESC LIMIT 1)
   ORDER BY e.t LIMIT 15"
q "SELECT a.name AS alias, c.name AS canonical
   FROM users a JOIN users c ON c.id = a.alias_of
   WHERE a.alias_of = (SELECT user_id FROM events GROUP BY user_id ORDER BY COUNT(*) DESC LIMIT 1)"

if [ "$KEEP" = 1 ]; then
    echo
    echo "The database is still running: DATABASE_URL=$("scripts/$DB.sh" url | sed 's/:[^:@]*@/:***@/')"
    echo "Query it with scripts/$DB.sh client; stop it with scripts/$DB.sh stop."
fi
