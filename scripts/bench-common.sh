# Helpers the bench scripts share (sourced, not run): messages, float
# arithmetic, medians, number formatting, the targets' check, and the
# generated export they all measure.
#
# A sourcing script sets ROOT, BENCH and KMDB first.

step() { printf '\n== %s\n' "$*" >&2; }
say() { printf '   %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
# Float arithmetic: calc 'EXPR' (awk syntax).
calc() { awk "BEGIN { print $1 }"; }
fmt0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
fmt1() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
fmt2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
# The median of the arguments (of an even count, the mean of the middle two).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# "1.0, 2.0, 3.0" of the arguments.
list1() { local s; for s in "$@"; do fmt1 "$s"; echo; done | paste -sd, - | sed 's/,/, /g'; }
# 1234567 -> 1,234,567
commas() { printf '%s' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }
# check VALUE OP TARGET -> "ok" / "**missed**"
check() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == "<=") ? v <= t : v >= t; print ok ? "ok" : "**missed**" }'; }
# Each line of stdin prefixed with the time it was read.
stamp() { local line; while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }

# The partition plan of every bench (as scripts/quickstart.sh: generated
# data spans 2014-01-01 .. 2016-01-01 whatever its size), and the export's
# seed and gzip share.
PLAN=(--min-date 2013-12-01 --max-date 2016-02-01 --days-per-partition 28)
SEED=1
GZIP_EVERY=4

# ensure_export DIR SIZE [GENERATE ARGS...]: the generated export in DIR,
# made once and reused by later runs (DIR.done marks a finished one).
ensure_export() {
    local dir="$1" size="$2" t0
    shift 2
    if [ -f "$dir.done" ]; then
        step "reusing the $size export in ${dir#"$ROOT"/}"
        return
    fi
    step "generating a $size export (kmdb generate $* --seed $SEED --gzip-every $GZIP_EVERY)"
    rm -rf "$dir" "$dir.done"
    mkdir -p "$BENCH"
    t0=$(now)
    "$KMDB" generate "$@" --out "$dir" --size "$size" --seed "$SEED" --gzip-every "$GZIP_EVERY" -q >"$dir.done.tmp"
    say "$(cat "$dir.done.tmp") in $(fmt1 "$(calc "$(now) - $t0")") s"
    mv "$dir.done.tmp" "$dir.done"
}

# add_section RESULTS KEY END FILE: FILE replaces the section of RESULTS
# from the line KEY to the line END, or is appended.
add_section() {
    local results="$1" key="$2" end="$3" section="$4"
    [ -f "$results" ] || printf '# kmdb benchmark results\n' >"$results"
    awk -v key="$key" -v end="$end" -v new="$section" '
        $0 == key { while ((getline l < new) > 0) print l; skip = 1; found = 1; next }
        skip && $0 == end { skip = 0; next }
        !skip { print }
        END {
            if (!found) { print ""; while ((getline l < new) > 0) print l }
        }' "$results" >"$results.tmp"
    mv "$results.tmp" "$results"
}
