#!/usr/bin/env bash
# User-defined window aggregates against the built-ins they imitate, in the
# same run: events/s and CPU ns per event of
#   generator (clicks, event time) -> window (tumbling 1 min, key_by $key) -> null_sink
# with one aggregate per row:
#   count                 built-in (baseline of the next two rows)
#   vcount()              C, variable accumulator (tests/plugins/aggs.c), kept in map state
#   lcount()              Lua (a count: create/add/merge/result in a script)
#   sum(price_cents)      built-in (baseline of the next two rows)
#   isum(price_cents)     C, fixed accumulator, in the pane like the built-in
#   lsum(price_cents)     Lua (tests/lua/aggregates/lsum.lua)
#
#   bench/bench_udaf.sh [BUILD_DIR] [EVENTS] [KEYS] [REPS]
#
# Defaults: build, 2,000,000 events, 10,000 keys (about 6 events per key and
# window, so the per-record cost dominates rather than the per-window one),
# best of 3 runs per row (this 2-core VM's run-to-run noise reaches 50%).
# One worker, parallelism 1, memory backend. CPU time is the process's
# (user + system), so a core kept busy by something else counts less than
# in the wall-clock rate.
set -euo pipefail
BUILD=${1:-build}
EVENTS=${2:-2000000}
KEYS=${3:-10000}
REPS=${4:-3}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SLUICE="$BUILD/sluice"
AGGS="$(cd "$BUILD" && pwd)/tests/testplugins/aggs.so"
[ -x "$SLUICE" ] && [ -f "$AGGS" ] || { echo "build $BUILD first (sluice and the test plugins)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/sluice-bench-udaf.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp "$ROOT/tests/lua/aggregates/lsum.lua" "$WORK/"
cat > "$WORK/lcount.lua" <<'LUA'
function create() return 0 end
function add(acc) return acc + 1 end
function merge(a, b) return a + b end
function result(acc) return acc end
LUA

run() { # AGGREGATE -> "events/s cpu_ns_per_event results"
  # `functions` names only what the row uses (an unused name is an error)
  local fns="" f
  for f in vcount isum lcount lsum; do
    case $1 in
    *"$f("*)
      case $f in
      vcount | isum) fns="${fns:+$fns, }$f=$AGGS:$f" ;;
      *) fns="${fns:+$fns, }$f=lua:$f.lua" ;;
      esac ;;
    esac
  done
  cat > "$WORK/b.yaml" <<YAML
name: bench_udaf
settings: { workers: 1, parallelism: 1, state: { backend: memory } }
nodes:
  gen:
    use: generator
    config: { kind: clicks, count: $EVENTS, seed: 7, users: $KEYS, ts_step_ms: 1 }
    event_time: { timestamp: source }
  win:
    use: window
    from: gen
    key_by: \$key
    config: { type: tumbling, size: 1m, functions: "$fns", aggregate: "$1" }
  sink: { use: null_sink, from: win }
YAML
  local t i
  TIMEFORMAT='%R %U %S'
  for ((i = 0; i < REPS; i++)); do
    t=$( { time "$SLUICE" run "$WORK/b.yaml" > /dev/null 2> "$WORK/err"; } 2>&1 ) ||
      { cat "$WORK/err" >&2; exit 1; }
    echo "$t" | awk -v n="$EVENTS" -v r="$(awk '$1 == "sink" { print $3 }' "$WORK/err")" \
      '{ printf "%.0f %.1f %s\n", n / $1, ($2 + $3) * 1e9 / n, r }'
  done | sort -k2,2g | head -n 1 # the run with the least CPU per event
}

printf '| aggregate | kind | events/s | CPU ns/event | results | CPU vs built-in |\n'
printf '|---|---|---:|---:|---:|---:|\n'
base=0
for row in "count|built-in" "vcount()|C, variable" "lcount()|Lua" \
           "sum(price_cents)|built-in" "isum(price_cents)|C, fixed" "lsum(price_cents)|Lua"; do
  agg=${row%|*} kind=${row#*|}
  read -r rate cpu results < <(run "$agg")
  [ "$kind" = built-in ] && base=$cpu
  printf '| `%s` | %s | %s | %s | %s | %s |\n' "$agg" "$kind" "$rate" "$cpu" "$results" \
    "$(awk -v c="$cpu" -v b="$base" 'BEGIN { printf "%.2fx", c / b }')"
done
