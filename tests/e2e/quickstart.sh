#!/usr/bin/env bash
# e2e: examples/quickstart runs and produces examples/quickstart/expected/counts.jsonl.
#
#  1. the DAG as committed (2 workers, counts with parallelism 2), cwd = scratch;
#  2. the same DAG with 1 worker and parallelism 1; the Lua flavour
#     (dag-lua.yaml, parse/filter in Lua) must give the same output;
#  3. an independent reference: the generator's raw clicks (written by a
#     file_sink, generator with parallelism 1 and 2, which must agree), counted
#     with grep/sort/uniq instead of the clicks plugin. The expected file must
#     equal that count too, so it cannot be a snapshot of a wrong pipeline.
# Outputs are compared sorted (LC_ALL=C): the two count tasks interleave.
set -euo pipefail

: "${SLUICE:?SLUICE (the sluice binary) must be set}"
: "${SLUICE_SOURCE_DIR:?}"
: "${SLUICE_SCRATCH:?}"
export LC_ALL=C

QS="$SLUICE_SOURCE_DIR/examples/quickstart"
EXPECTED="$QS/expected/counts.jsonl"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

rm -rf "$SLUICE_SCRATCH"
mkdir -p "$SLUICE_SCRATCH"
cd "$SLUICE_SCRATCH"

# The expected file itself must be meaningful: 100 products, 140423 views.
[ "$(wc -l < "$EXPECTED")" -eq 100 ] || fail "$EXPECTED should have 100 lines"
total=$(awk -F'"count":' '{ s += $2 + 0 } END { print s }' "$EXPECTED")
[ "$total" -eq 140423 ] || fail "$EXPECTED counts sum to $total, not 140423"

run_dag() { # run_dag NAME DAG: runs in scratch/NAME, leaves the sorted output in scratch/NAME.sorted
  local name=$1 dag=$2
  mkdir -p "$name"
  (cd "$name" && "$SLUICE" run "$dag") > "$name.log" 2>&1 || {
    cat "$name.log" >&2
    fail "$name: sluice run $dag failed"
  }
  [ -s "$name/quickstart-counts.jsonl" ] || fail "$name: no quickstart-counts.jsonl in the working directory"
  sort "$name/quickstart-counts.jsonl" > "$name.sorted"
}

# 1. As committed.
run_dag committed "$QS/dag.yaml"
diff -u "$EXPECTED" committed.sorted || fail "quickstart output (2 workers, parallelism 2) differs from $EXPECTED"

# 2. One worker, parallelism 1.
sed -e 's/^\(  workers:\) 2/\1 1/' -e 's/^\(    parallelism:\) 2/\1 1/' "$QS/dag.yaml" > serial.yaml
if ! grep -q '^  workers: 1' serial.yaml || ! grep -q '^    parallelism: 1' serial.yaml; then
  fail "could not derive a serial variant of $QS/dag.yaml (did its layout change?)"
fi
run_dag serial "$PWD/serial.yaml"
diff -u "$EXPECTED" serial.sorted || fail "quickstart output (1 worker, parallelism 1) differs from $EXPECTED"

# 2b. The Lua flavour (parse/filter written in Lua): the same output.
run_dag lua "$QS/dag-lua.yaml"
diff -u "$EXPECTED" lua.sorted || fail "Lua quickstart output differs from $EXPECTED"

# 3. Independent reference from the raw generator output.
raw_dag() { # raw_dag PARALLELISM OUT
  cat <<EOF
name: quickstart_raw
settings:
  workers: 2
nodes:
  clicks:
    use: generator
    parallelism: $1
    config: { kind: clicks, count: 200000, seed: 7 }
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
# Record i has ts = start_ts + 10*i: the first and last records are known.
head -n 1 raw1.jsonl | grep -q '^{"ts":1700000000000,"user_id":"u[0-9]*","session_id":"s[0-9]*-0","product_id":"p[0-9]*","page":"/products/p[0-9]*","action":"[a-z_]*","price_cents":[0-9]*}$' ||
  fail "unexpected first generator record: $(head -n 1 raw1.jsonl)"
grep -q '^{"ts":1700001999990,' raw1.jsonl || fail "no generator record with the last timestamp"

grep '"action":"view"' raw1.jsonl | grep -o '"product_id":"[^"]*"' | cut -d'"' -f4 | sort | uniq -c |
  awk '{ printf "{\"key\":\"%s\",\"count\":%d}\n", $2, $1 }' | sort > reference.sorted
diff -u reference.sorted "$EXPECTED" || fail "$EXPECTED differs from the grep/sort/uniq reference"

echo "quickstart: ok (100 products, 140423 views; 2 and 1 workers; reference agrees)"
