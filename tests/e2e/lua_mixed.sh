#!/usr/bin/env bash
# e2e: DAGs mixing Lua and C operators (issue 3). Scripts and DAG fixtures in
# tests/lua/mixed/.
#
#  1. The quickstart with its parse step in Lua (examples/quickstart/dag-lua.yaml:
#     generator -> lua:parse_views.lua (sluice.json) -> key_by $key ->
#     window views x2 -> key_by window_start -> window top -> file_sinks):
#     the views per product and minute and the top 5 of every minute equal
#     examples/quickstart/expected/{views,top}.jsonl, and the views summed per
#     product equal expected/counts.jsonl; and the Lua parse step's own
#     output equals clicks:parse_views' record for record (key, ts, value as
#     JSON). The same with process_batch behind a rebalance edge, parallelism
#     2, keyed downstream by the JSON field product_id
#     (quickstart_lua_batch.yaml); the batches were real (fewer calls than
#     records).
#  2. C -> Lua -> C with process_batch: good:seq -> good:upper (C) ->
#     lua:square_batch.lua -> clicks:count_by_key -> file_sink, plus the Lua
#     output itself: values and counts exact; run with the Lua node heading
#     its task (rebalance: whole batches) and chained (one record per call):
#     same results. A failing process_batch call dead-letters every record of
#     that call, and only those.
#  3. Lua errors under dead_letter in a C pipeline: seq -> lua:fail7.lua ->
#     good:upper -> file_sink; the dead letters are exactly the multiples of
#     7 with sluice.error naming fail7.lua:LINE and "poison n=<n>" and
#     sluice.node; the others pass with the header the script added.
#  4. A Lua operator with parallelism 2 after key_by: every key is counted
#     by exactly one task, the counts are exact, both tasks ran with
#     ctx.parallelism 2 and ctx.task 0/1, and the per-task totals add up.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"
M="$SLUICE_SOURCE_DIR/tests/lua/mixed"

sort "$SLUICE_SOURCE_DIR/examples/quickstart/expected/counts.jsonl" > expected.sorted

# ------------------------------------------------------------------ 1. quickstart
QS="$SLUICE_SOURCE_DIR/examples/quickstart"
st 0 /dev/null v.err "$SLUICE" validate "$QS/dag-lua.yaml"
st 0 q.out q.err "$SLUICE" run "$QS/dag-lua.yaml"
for f in views top; do
  sort "quickstart-$f.jsonl" > "q.$f.sorted"
  diff -u "$QS/expected/$f.jsonl" "q.$f.sorted" > "q.$f.diff" ||
    { head -n 20 "q.$f.diff" >&2; fail "quickstart with a Lua parse: quickstart-$f.jsonl differs from the expected output"; }
done
# The per-minute views, summed per product: the whole run's counts.
python3 - q.views.sorted > q.sorted <<'PY'
import json, sys
n = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    n[r["key"]] = n.get(r["key"], 0) + r["views"]
for k in n:
    print(json.dumps({"key": k, "count": n[k]}, separators=(",", ":")))
PY
sort -o q.sorted q.sorted
diff -u expected.sorted q.sorted > q.diff || { head -n 20 q.diff >&2; fail "quickstart with a Lua parse: views per product differ from expected/counts.jsonl"; }
views=$(python3 -c 'import json,sys; print(sum(json.loads(l)["count"] for l in open(sys.argv[1])))' expected.sorted)
minutes=$(wc -l < q.top.sorted)
products=$(wc -l < expected.sorted)
row q.err parse 1 200000 "$views" 0 0
row q.err views 2 "$views" $((products * minutes)) 0 0
row q.err top 1 $((products * minutes)) "$minutes" 0 0

# The Lua parse step against clicks:parse_views, record for record.
cat > cmp.yaml <<EOF
name: cmp
settings: { workers: 2 }
nodes:
  clicks: { use: generator, config: { kind: clicks, count: 20000, seed: 11 } }
  c_parse: { use: clicks:parse_views, from: clicks, config: { action: view } }
  l_parse: { use: "lua:$QS/parse_views.lua", from: clicks, config: { action: view } }
  c_out: { use: file_sink, from: c_parse, config: { path: c.jsonl, format: envelope } }
  l_out: { use: file_sink, from: l_parse, config: { path: l.jsonl, format: envelope } }
EOF
st 0 cmp.out cmp.err "$SLUICE" run cmp.yaml
python3 - c.jsonl l.jsonl <<'PY' || fail "the Lua parse step differs from clicks:parse_views"
import json, sys
c = [json.loads(l) for l in open(sys.argv[1])]
l = [json.loads(x) for x in open(sys.argv[2])]
assert len(c) == len(l) and len(c) > 1000, (len(c), len(l))
for a, b in zip(c, l):   # both run in the source's task, in input order
    assert a["key"] == b["key"] and a["ts"] == b["ts"] and a["value"] == b["value"], (a, b)
PY

st 0 qb.out qb.err "$SLUICE" run "$M/quickstart_lua_batch.yaml"
sort quickstart-lua-batch-counts.jsonl > qb.sorted
diff -u expected.sorted qb.sorted > qb.diff || { head -n 20 qb.diff >&2; fail "quickstart with a batched Lua parse: counts differ from the expected output"; }
row qb.err parse 2 200000 "$views" 0 0
calls=$(counter qb.err calls)
[ -n "$calls" ] || { cat qb.err >&2; fail "quickstart batch: no 'counter calls' line in the summary"; }
[ "$calls" -lt 20000 ] || fail "quickstart batch: $calls process_batch calls for 200000 records: no batching"
echo "lua_mixed: quickstart ok ($calls process_batch calls for 200000 records)"

# ------------------------------------------------------------------ 2. C -> Lua -> C, batched
# mk_sq NAME PARTITION_LINE
mk_sq() {
  cat > "$1.yaml" <<EOF
name: $1
settings: { workers: 2 }
nodes:
  src: { use: "$T/good.so:seq", config: { count: 10000 } }
  up: { use: "$T/good.so:upper", from: src }
  sq:
    use: "lua:$M/square_batch.lua"
    from: up
    $2
    config: { divisor: 3 }
  counts: { use: clicks:count_by_key, from: sq, key_by: \$key, parallelism: 2 }
  counts_out: { use: file_sink, from: counts, config: { path: $1.counts } }
  sq_out: { use: file_sink, from: sq, config: { path: $1.values, format: envelope } }
EOF
}
mk_sq sqb "partition: rebalance"
mk_sq sqc "parallelism: 1"
st 0 sqb.out sqb.err "$SLUICE" run sqb.yaml
st 0 sqc.out sqc.err "$SLUICE" run sqc.yaml
"$SLUICE" graph sqc.yaml | grep -qF 'up[0] -> sq[0]' || fail "sqc: the Lua node is not chained after good:upper"
for r in sqb sqc; do
  python3 - "$r.counts" "$r.values" <<'PY' || fail "$r: C -> Lua -> C results are wrong"
import json, sys
counts = {json.loads(l)["key"]: json.loads(l)["count"] for l in open(sys.argv[1])}
want = {}
for n in range(0, 10000, 3):
    want[f"K{n % 10}"] = want.get(f"K{n % 10}", 0) + 1
assert counts == want, (counts, want)
vals = [json.loads(l) for l in open(sys.argv[2])]
assert sorted(v["value"]["n"] for v in vals) == list(range(0, 10000, 3))
for v in vals:
    n = v["value"]["n"]
    assert v["value"] == {"n": n, "k": f"K{n % 10}", "sq": n * n}, v
    assert v["key"] == f"K{n % 10}" and v["ts"] == n, v
PY
  row "$r.err" sq 1 10000 3334 0 0
  [ "$(counter "$r.err" records)" = 10000 ] || fail "$r: the script's records counter is not 10000"
done
[ "$(counter sqc.err calls)" -eq 10000 ] || fail "sqc (chained): expected one process_batch call per record, got $(counter sqc.err calls)"
[ "$(counter sqb.err calls)" -lt 1000 ] || fail "sqb (rebalance): $(counter sqb.err calls) calls for 10000 records: no batching"
cmp -s <(sort sqb.counts) <(sort sqc.counts) || fail "batched and chained runs differ"
echo "lua_mixed: C -> Lua -> C ok (batched: $(counter sqb.err calls) calls, chained: $(counter sqc.err calls))"

# A failing process_batch call dead-letters every record of that call.
cat > pb.yaml <<EOF
name: pb
settings: { workers: 2, batch_size: 64 }
nodes:
  src: { use: "$T/good.so:seq", config: { count: 2000 } }
  pb:
    use: "lua:$M/poison_batch.lua"
    from: src
    partition: rebalance
    on_error: dead_letter
    config: { poison: 500 }
  good: { use: file_sink, from: pb, config: { path: pb.good } }
  errs: { use: file_sink, from: pb.errors, config: { path: pb.errs, format: envelope } }
EOF
st 0 pb.out pb.err "$SLUICE" run pb.yaml
python3 - pb.good pb.errs <<'PY' || fail "pb: a failed process_batch call did not dead-letter exactly its records"
import json, sys
good = [json.loads(l)["n"] for l in open(sys.argv[1])]
errs = [json.loads(l) for l in open(sys.argv[2])]
bad = sorted(e["value"]["n"] for e in errs)
assert 500 in bad and 1 < len(bad) <= 64, bad
assert bad == list(range(bad[0], bad[-1] + 1)), "the dead letters are not one batch"
assert sorted(good + bad) == list(range(2000))
for e in errs:
    assert e["headers"]["sluice.node"] == "pb", e
    assert "poison batch (n=500)" in e["headers"]["sluice.error"], e
PY

# ------------------------------------------------------------------ 3. Lua errors in a C pipeline
cat > f7.yaml <<EOF
name: f7
settings: { workers: 2 }
nodes:
  src: { use: "$T/good.so:seq", config: { count: 1000 } }
  f: { use: "lua:$M/fail7.lua", from: src, on_error: dead_letter }
  up: { use: "$T/good.so:upper", from: f }
  good: { use: file_sink, from: up, config: { path: f7.good, format: envelope } }
  errs: { use: file_sink, from: f.errors, config: { path: f7.errs, format: envelope } }
EOF
st 0 f7.out f7.err "$SLUICE" run f7.yaml
python3 - f7.good f7.errs <<'PY' || fail "f7: Lua errors were not dead-lettered as documented"
import json, re, sys
good = [json.loads(l) for l in open(sys.argv[1])]
errs = [json.loads(l) for l in open(sys.argv[2])]
assert sorted(g["value"]["N"] for g in good) == [n for n in range(1000) if n % 7], "good records"
for g in good:
    n = g["value"]["N"]
    assert g["value"] == {"N": n, "K": f"K{n % 10}"} and g["ts"] == n, g
    assert g["headers"] == {"via": "lua"}, g
assert sorted(e["value"]["n"] for e in errs) == list(range(0, 1000, 7)), "dead letters"
for e in errs:
    n = e["value"]["n"]
    assert e["value"] == {"n": n, "k": f"k{n % 10}"} and e["ts"] == n, e
    assert e["headers"]["sluice.node"] == "f", e
    msg = e["headers"]["sluice.error"]
    assert re.search(r"fail7\.lua:6: poison n=%d\b" % n, msg), msg
PY
row f7.err f 1 1000 857 0 143

# ------------------------------------------------------------------ 4. parallelism 2 after key_by
cat > kc.yaml <<EOF
name: kc
settings: { workers: 3 }
nodes:
  src: { use: "$T/good.so:seq", parallelism: 2, config: { count: 10000 } }
  kc: { use: "lua:$M/keyed_count.lua", from: src, key_by: k, parallelism: 2 }
  out: { use: file_sink, from: kc, config: { path: kc.jsonl } }
EOF
st 0 kc.out kc.err "$SLUICE" run kc.yaml
python3 - kc.jsonl <<'PY' || fail "kc: keyed Lua counting with parallelism 2 is wrong"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = [r["key"] for r in rows]
assert sorted(keys) == [f"k{i}" for i in range(10)], f"keys: {sorted(keys)} (a key counted by two tasks?)"
assert all(r["count"] == 1000 for r in rows), rows
assert {r["parallelism"] for r in rows} == {2}, rows
tasks = {r["task"] for r in rows}
assert tasks == {0, 1}, f"tasks used: {tasks}"
for t in tasks:
    mine = [r for r in rows if r["task"] == t]
    assert all(r["total"] == sum(x["count"] for x in mine) for r in mine), "per-task state is shared or lost"
PY
row kc.err kc 2 10000 10 0 0

echo "lua_mixed: ok"
