#!/usr/bin/env bash
# Peak memory of kmdb on a line far longer than its read chunk (README,
# Reliability): one-line exports of SIZE MB (default 300) in several shapes,
# plain and gzip, through `kmdb parse` and `kmdb import`, each under
# /usr/bin/time -v. Prints one row per run: peak RSS, and peak RSS over the
# line's length.
#
#   scripts/long-line-memory.sh [SIZE_MB] [--no-import]
#
# Shapes of the long line (each a `visit` event between two short ones):
#   string     one huge string value
#   octal      a huge value of octal escapes (`Caf\303\251 `, decoded first)
#   escaped    a huge value of JSON escapes (`say \"hi\" `)
#   array      a huge nested array value (stored as compact JSON, cut)
#   malformed  a huge string and no closing brace (rejected, written whole
#              to the rejects file)
#   invalid    a huge value with bytes that are not UTF-8 (decoded first)
# The exports are kept in .bench/long-line/SIZE/ for later runs. The
# imports go to a database of their own (kmdb_long_line) on the private
# MariaDB of scripts/dev-db.sh, started if needed and then stopped again.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SIZE=300
IMPORT=1
for arg in "$@"; do
    case "$arg" in
        --no-import) IMPORT=0 ;;
        '' | *[!0-9]*) echo "usage: $0 [SIZE_MB] [--no-import]" >&2; exit 2 ;;
        *) SIZE="$arg" ;;
    esac
done
SHAPES=(string octal escaped array malformed invalid)
DIR="$ROOT/.bench/long-line/$SIZE"
KMDB="$ROOT/target/release/kmdb"

cargo build --release --quiet
mkdir -p "$DIR"
python3 - "$DIR" "$SIZE" "${SHAPES[@]}" <<'EOF'
import gzip, os, sys
out, size, shapes = sys.argv[1], int(sys.argv[2]) * 1000 * 1000, sys.argv[3:]
head = b'{"_n":"visit","_p":"long","_t":1400000000,"v":'
units = {
    "string": (b'"', b"abcdefghij", b'"}'),
    "octal": (b'"', b"Caf\\303\\251 ", b'"}'),
    "escaped": (b'"', b'say \\"hi\\" ', b'"}'),
    "array": (b'[', b'[1,"x",{"a":[2]}],', b'0]}'),
    "malformed": (b'"', b"abcdefghij", b'" oops'),
    "invalid": (b'"', b"ab\xffcd", b'"}'),
}
for shape in shapes:
    opening, unit, closing = units[shape]
    for gz in (False, True):
        rev = os.path.join(out, shape + ("-gz" if gz else ""), "revisions")
        path = os.path.join(rev, "1.json" + (".gz" if gz else ""))
        if os.path.exists(path):
            continue
        os.makedirs(rev, exist_ok=True)
        part = path + ".part"
        with (gzip.open(part, "wb", compresslevel=1) if gz else open(part, "wb")) as f:
            f.write(b'{"_n":"visit","_p":"short","_t":1400000000}\n' + head + opening)
            n, per = size // len(unit), (1 << 20) // len(unit)
            while n > 0:
                f.write(unit * min(per, n))
                n -= per
            f.write(closing + b'\n{"_n":"visit","_p":"short","_t":1400000001}\n')
        os.rename(part, path)
EOF

started_db=0
if [ "$IMPORT" = 1 ]; then
    scripts/dev-db.sh status >/dev/null 2>&1 || started_db=1
    URL="$(scripts/dev-db.sh start | tail -n 1)"
    DB_URL="${URL%/*}/kmdb_long_line"
fi
WORK="$(mktemp -d)"
cleanup() {
    rm -rf "$WORK"
    if [ "$IMPORT" = 1 ]; then
        scripts/dev-db.sh client -e 'DROP DATABASE IF EXISTS kmdb_long_line' >/dev/null 2>&1 || true
    fi
    if [ "$started_db" = 1 ]; then scripts/dev-db.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# run NAME COMMAND...: one row of the table.
run() {
    local name="$1" line_mb="$2"
    shift 2
    local rc=0
    /usr/bin/time -v -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || rc=$?
    local kb wall
    kb="$(awk '/Maximum resident/ {print $NF}' "$WORK/time")"
    wall="$(awk '/Elapsed \(wall/ {print $NF}' "$WORK/time")"
    printf '%-22s %7d MB  %5.2f x the line  %9s  exit %s\n' \
        "$name" "$((kb / 1024))" "$(awk -v k="$kb" -v l="$line_mb" 'BEGIN {print k / 1024 / l}')" \
        "$wall" "$rc"
}

echo "peak RSS of kmdb on a ${SIZE} MB line ($(git rev-parse --short HEAD), $(nproc) cores)"
for shape in "${SHAPES[@]}"; do
    for kind in "" "-gz"; do
        export_dir="$DIR/$shape$kind"
        line_mb=$((SIZE * 1000 * 1000 / 1048576))
        run "parse  $shape$kind" "$line_mb" "$KMDB" parse -q "$export_dir"
        if [ "$IMPORT" = 1 ]; then
            scripts/dev-db.sh client -e 'DROP DATABASE IF EXISTS kmdb_long_line;
                CREATE DATABASE kmdb_long_line CHARACTER SET utf8mb4' >/dev/null
            DATABASE_URL="$DB_URL" "$KMDB" setup >/dev/null
            rm -rf "$WORK/kmdb-work" "$WORK/state.sqlite"
            run "import $shape$kind" "$line_mb" env DATABASE_URL="$DB_URL" "$KMDB" import -q \
                --state "$WORK/state.sqlite" --work-dir "$WORK/kmdb-work" "$export_dir"
        fi
    done
done
