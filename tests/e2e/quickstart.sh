#!/usr/bin/env bash
# e2e: examples/quickstart runs and produces examples/quickstart/expected/.
#
# The pipeline: generator clicks (event time from the generator's ts) -> parse
# (views only, keyed by product) -> `views`: 1-minute tumbling windows per
# product, views=count (parallelism 2) -> `top`: 1-minute windows keyed by
# window_start, top_products=top_n(key, 5, views) (`key`: the views results'
# JSON field, the product). Two files: quickstart-views.jsonl (one line per
# product and minute) and quickstart-top.jsonl (one line per minute).
#
#  1. an independent reference: the generator's raw clicks (written by a
#     file_sink, generator with parallelism 1 and 2, which must agree), counted
#     with grep/sed/awk/sort instead of the clicks plugin and the window
#     operator: views per product (expected/counts.jsonl), per minute and
#     product (expected/views.jsonl), and the 5 products with the most views of
#     every minute, ties by product name, bytewise (expected/top.jsonl). The
#     expected files must equal it, so they cannot be snapshots of a wrong
#     pipeline;
#  2. the DAG as committed (2 workers, views with parallelism 2), cwd = scratch;
#  3. the same DAG with 1 worker and parallelism 1; the Lua flavour
#     (dag-lua.yaml, parse/filter in Lua) must give the same output.
# Outputs are compared sorted (LC_ALL=C): the two `views` tasks interleave.
set -euo pipefail

: "${SLUICE:?SLUICE (the sluice binary) must be set}"
: "${SLUICE_SOURCE_DIR:?}"
: "${SLUICE_SCRATCH:?}"
export LC_ALL=C

QS="$SLUICE_SOURCE_DIR/examples/quickstart"
EXP_TOP="$QS/expected/top.jsonl"
EXP_VIEWS="$QS/expected/views.jsonl"
EXP_COUNTS="$QS/expected/counts.jsonl"
GEN='{ kind: clicks, count: 200000, seed: 7, start_ts: 1700000040000, ts_step_ms: 3 }'
MINUTES=10 # 200000 clicks, 3 ms apart, from a whole minute: 600 s

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

rm -rf "$SLUICE_SCRATCH"
mkdir -p "$SLUICE_SCRATCH"
cd "$SLUICE_SCRATCH"

grep -qF "config: $GEN" "$QS/dag.yaml" || fail "$QS/dag.yaml no longer has the generator config $GEN (update this test)"
grep -qF "config: $GEN" "$QS/dag-lua.yaml" || fail "$QS/dag-lua.yaml no longer has the generator config $GEN"

# The expected files themselves must be meaningful: 100 products, 140423 views,
# 10 minutes.
[ "$(wc -l < "$EXP_COUNTS")" -eq 100 ] || fail "$EXP_COUNTS should have 100 lines"
total=$(awk -F'"count":' '{ s += $2 + 0 } END { print s }' "$EXP_COUNTS")
[ "$total" -eq 140423 ] || fail "$EXP_COUNTS counts sum to $total, not 140423"
[ "$(wc -l < "$EXP_VIEWS")" -eq $((100 * MINUTES)) ] || fail "$EXP_VIEWS should have $((100 * MINUTES)) lines"
total=$(awk -F'"views":' '{ s += $2 + 0 } END { print s }' "$EXP_VIEWS")
[ "$total" -eq 140423 ] || fail "$EXP_VIEWS views sum to $total, not 140423"
[ "$(wc -l < "$EXP_TOP")" -eq "$MINUTES" ] || fail "$EXP_TOP should have $MINUTES lines"
[ "$(grep -o '{"value":"p[0-9]*","sum":[0-9]*}' "$EXP_TOP" | wc -l)" -eq $((5 * MINUTES)) ] ||
  fail "$EXP_TOP should hold 5 products per minute"
for f in "$EXP_COUNTS" "$EXP_VIEWS" "$EXP_TOP"; do
  sort -c "$f" 2> /dev/null || fail "$f is not sorted (LC_ALL=C sort)"
done

# ------------------------------------------------ 1. the independent reference
raw_dag() { # raw_dag PARALLELISM OUT
  cat <<EOF
name: quickstart_raw
settings:
  workers: 2
nodes:
  clicks:
    use: generator
    parallelism: $1
    config: $GEN
  out:
    use: file_sink
    from: clicks
    config: { path: $2 }
EOF
}
raw_dag 1 raw1.jsonl > raw1.yaml
raw_dag 2 raw2.jsonl > raw2.yaml
"$SLUICE" run raw1.yaml > raw1.log 2>&1 || { cat raw1.log >&2; fail "raw generator run (parallelism 1) failed"; }
"$SLUICE" run raw2.yaml > raw2.log 2>&1 || { cat raw2.log >&2; fail "raw generator run (parallelism 2) failed"; }
[ "$(wc -l < raw1.jsonl)" -eq 200000 ] || fail "generator emitted $(wc -l < raw1.jsonl) records, not 200000"
sort raw1.jsonl > raw1.sorted
sort raw2.jsonl > raw2.sorted
cmp -s raw1.sorted raw2.sorted || fail "generator output differs between parallelism 1 and 2"
# Record i has ts = start_ts + 3*i: the first and last records are known.
head -n 1 raw1.jsonl | grep -q '^{"ts":1700000040000,"user_id":"u[0-9]*","session_id":"s[0-9]*-0","product_id":"p[0-9]*","page":"/products/p[0-9]*","action":"[a-z_]*","price_cents":[0-9]*}$' ||
  fail "unexpected first generator record: $(head -n 1 raw1.jsonl)"
grep -q '^{"ts":1700000639997,' raw1.jsonl || fail "no generator record with the last timestamp"

# Views per product over the whole run.
grep '"action":"view"' raw1.jsonl | grep -o '"product_id":"[^"]*"' | cut -d'"' -f4 | sort | uniq -c |
  awk '{ printf "{\"key\":\"%s\",\"count\":%d}\n", $2, $1 }' | sort > ref-counts.sorted
diff -u ref-counts.sorted "$EXP_COUNTS" || fail "$EXP_COUNTS differs from the grep/sort/uniq reference"

# Views per minute and product: "MINUTE PRODUCT N", MINUTE = floor(ts / 60000).
# (mawk prints large numbers as 1.7e+12: minutes stay small, the
# milliseconds are printed with %.0f.)
grep '"action":"view"' raw1.jsonl |
  sed -n 's/^{"ts":\([0-9]*\),.*"product_id":"\([^"]*\)".*$/\1 \2/p' |
  awk '{ n[int($1 / 60000) " " $2]++ } END { for (k in n) print k, n[k] }' > minute-counts.txt
[ "$(awk '{ s += $3 } END { print s }' minute-counts.txt)" -eq 140423 ] || fail "reference: per-minute counts do not add up to 140423"
[ "$(cut -d' ' -f1 minute-counts.txt | sort -u | wc -l)" -eq "$MINUTES" ] || fail "reference: not $MINUTES minutes"
awk '{ printf "{\"key\":\"%s\",\"window_start\":%.0f,\"window_end\":%.0f,\"timing\":\"on_time\",\"views\":%d}\n",
         $2, $1 * 60000, ($1 + 1) * 60000, $3 }' minute-counts.txt | sort > ref-views.sorted
diff -u ref-views.sorted "$EXP_VIEWS" || fail "$EXP_VIEWS differs from the awk reference"

# Top 5 per minute: views descending, then product ascending (bytewise, as
# top_n does: "p1" < "p13" < "p2").
sort -k1,1n -k3,3nr -k2,2 minute-counts.txt |
  awk 'function flush() { if (line != "") print line "]}" }
       $1 != m { flush(); m = $1; k = 0
                 line = sprintf("{\"key\":\"%.0f\",\"window_start\":%.0f,\"window_end\":%.0f,\"timing\":\"on_time\",\"top_products\":[",
                                m * 60000, m * 60000, (m + 1) * 60000) }
       k < 5 { line = line (k ? "," : "") sprintf("{\"value\":\"%s\",\"sum\":%d}", $2, $3); k++ }
       END { flush() }' | sort > ref-top.sorted
diff -u ref-top.sorted "$EXP_TOP" || fail "$EXP_TOP differs from the awk reference"

# ------------------------------------------------ 2. and 3. the pipeline
run_dag() { # run_dag NAME DAG: runs in scratch/NAME, leaves the sorted outputs in scratch/NAME.{top,views}
  local name=$1 dag=$2 f
  mkdir -p "$name"
  (cd "$name" && "$SLUICE" run "$dag") > "$name.log" 2>&1 || {
    cat "$name.log" >&2
    fail "$name: sluice run $dag failed"
  }
  for f in top views; do
    [ -s "$name/quickstart-$f.jsonl" ] || fail "$name: no quickstart-$f.jsonl in the working directory"
    sort "$name/quickstart-$f.jsonl" > "$name.$f"
  done
  # Watermarks flowed: nothing was late in either window.
  [ "$(grep -c '^    counter late_records = 0$' "$name.log")" -eq 2 ] || {
    cat "$name.log" >&2
    fail "$name: expected 'late_records = 0' for views and top"
  }
}
check_dag() { # check_dag NAME WHAT
  diff -u "$EXP_VIEWS" "$1.views" || fail "quickstart views ($2) differ from $EXP_VIEWS"
  diff -u "$EXP_TOP" "$1.top" || fail "quickstart top 5 ($2) differs from $EXP_TOP"
}

# 2. As committed.
run_dag committed "$QS/dag.yaml"
check_dag committed "2 workers, parallelism 2"

# 3. One worker, parallelism 1 (the serial DAG is written to scratch).
sed -e 's/^\(  workers:\) 2/\1 1/' -e 's/^\(    parallelism:\) 2/\1 1/' "$QS/dag.yaml" > serial.yaml
if ! grep -q '^  workers: 1' serial.yaml || ! grep -q '^    parallelism: 1' serial.yaml; then
  fail "could not derive a serial variant of $QS/dag.yaml (did its layout change?)"
fi
run_dag serial "$PWD/serial.yaml"
check_dag serial "1 worker, parallelism 1"

# 3b. The Lua flavour (parse/filter written in Lua): the same output.
run_dag lua "$QS/dag-lua.yaml"
check_dag lua "dag-lua.yaml"

echo "quickstart: ok ($MINUTES minutes, 100 products, 140423 views; top 5 per minute; 2 and 1 workers, Lua; reference agrees)"
