#!/usr/bin/env bash
# e2e: per-node on_error policies with a real failing operator.
#
# good:seq emits {"n":i,"k":"k<i%10>"} (ts = i) for i in [0, count);
# misbehave:fail_every fails the records whose n is a multiple of `every`
# with the message "poison record n=<n>" and passes the others through.
#
#  1. on_error: dead_letter, `from: f.errors` -> file_sink (envelope): the
#     errors file holds exactly the poison records, unchanged (value, ts), each
#     with the headers sluice.error = "poison record n=<n>" and sluice.node =
#     "f"; the good output holds exactly the rest; counts add up; the summary
#     shows the dead-lettered count. Then the same with parallel source,
#     operator and errors sink (3 workers).
#  2. on_error: dead_letter for a key_by failure (missing key field): every
#     record goes to the errors port with the key_by message.
#  3. on_error: skip: the poison records are dropped, the summary shows the
#     skipped count, one warning names the first.
#  4. on_error: fail (and the default): exit 1 naming the node and the record.
#  5. on_error: dead_letter with no reader of f.errors: `validate` (and `run`)
#     exit 2 with "no node reads 'f.errors'".
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"


# dag NAME COUNT EVERY ON_ERROR [SRC_PAR F_PAR ERRS_PAR] [no-errs]
dag() {
  local name=$1 count=$2 every=$3 policy=$4 sp=${5:-1} fp=${6:-1} ep=${7:-1} errs=${8:-yes}
  cat > "$name.yaml" <<EOF
name: $name
settings: { workers: 3 }
nodes:
  src: { use: "$T/good.so:seq", parallelism: $sp, config: { count: $count } }
  f:
    use: "$T/misbehave.so:fail_every"
    from: src
    parallelism: $fp
    on_error: $policy
    config: { every: $every }
  good: { use: file_sink, from: f, config: { path: $name.good } }
EOF
  if [ "$errs" = yes ]; then
    echo "  errs: { use: file_sink, from: f.errors, parallelism: $ep, config: { path: $name.errs, format: envelope } }" >> "$name.yaml"
  fi
}

# check_split NAME COUNT EVERY GOODFILES ERRFILES: poison records (and only
# them) in the errors files with the documented headers, the rest in good.
check_split() {
  local name=$1 count=$2 every=$3 good=$4 errs=$5
  python3 - "$count" "$every" "$good" "$errs" <<'PY' || fail "$name: dead-letter split is wrong"
import json, sys
count, every = int(sys.argv[1]), int(sys.argv[2])
def lines(spec):
    out = []
    for path in spec.split(","):
        out += open(path).read().splitlines()
    return out
good = [json.loads(l) for l in lines(sys.argv[3])]
errs = [json.loads(l) for l in lines(sys.argv[4])]
want_bad = {n for n in range(count) if n % every == 0}
want_good = set(range(count)) - want_bad
good_n = [r["n"] for r in good]
assert len(good_n) == len(set(good_n)), "a good record was written twice"
assert set(good_n) == want_good, f"good output: {len(good_n)} records, expected {len(want_good)}"
for r in good:
    assert r == {"n": r["n"], "k": f"k{r['n'] % 10}"}, f"good record changed: {r}"
err_n = []
for e in errs:
    assert list(e) == ["key", "value", "ts", "headers"], e
    n = e["value"]["n"]
    err_n.append(n)
    assert e["value"] == {"n": n, "k": f"k{n % 10}"}, f"dead letter value changed: {e}"
    assert e["ts"] == n, f"dead letter lost its ts: {e}"
    assert e["headers"] == {"sluice.error": f"poison record n={n}", "sluice.node": "f"}, e["headers"]
assert len(err_n) == len(set(err_n)), "a dead letter was written twice"
assert set(err_n) == want_bad, f"errors output: {len(err_n)} records, expected {len(want_bad)}"
assert len(good) + len(errs) == count
PY
}

# 1a. Serial.
dag dl 1000 7 dead_letter
st 0 dl.out dl.err "$SLUICE" run dl.yaml
check_split dl 1000 7 dl.good dl.errs
row dl.err f 1 1000 857 0 143
row dl.err good 1 857 0 0 0
row dl.err errs 1 143 0 0 0
grep -qF "job 'dl' finished" dl.err || fail "dl: no 'finished' summary"

# 1b. Parallel: source x2, operator x3, errors sink x2 (PATH.0 and PATH.1).
dag dlpar 5000 7 dead_letter 2 3 2
st 0 dlpar.out dlpar.err "$SLUICE" run dlpar.yaml
[ ! -e dlpar.errs ] || fail "dlpar: errors sink with parallelism 2 wrote dlpar.errs itself"
check_split dlpar 5000 7 dlpar.good dlpar.errs.0,dlpar.errs.1
row dlpar.err f 3 5000 4285 0 715

# 2. A key_by failure is a record error of the consuming node.
cat > kb.yaml <<EOF
name: kb
nodes:
  src: { use: "$T/good.so:seq", config: { count: 50 } }
  u: { use: "$T/good.so:upper", from: src, key_by: nosuch, parallelism: 2, on_error: dead_letter }
  good: { use: file_sink, from: u, config: { path: kb.good } }
  errs: { use: file_sink, from: u.errors, config: { path: kb.errs, format: envelope } }
EOF
st 0 kb.out kb.err "$SLUICE" run kb.yaml
[ ! -s kb.good ] || fail "kb: records without the key field reached the good output"
python3 - kb.errs <<'PY' || fail "kb: key_by dead letters are wrong"
import json, sys
errs = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(e["value"]["n"] for e in errs) == list(range(50)), len(errs)
for e in errs:
    assert e["headers"]["sluice.node"] == "u", e
    assert e["headers"]["sluice.error"].startswith("key_by: field 'nosuch' is missing"), e
PY
row kb.err u 2 50 0 0 50

# 3. skip.
dag sk 1000 7 skip 1 1 1 no
st 0 sk.out sk.err "$SLUICE" run sk.yaml
row sk.err f 1 1000 857 143 0
row sk.err good 1 857 0 0 0
[ "$(wc -l < sk.good)" -eq 857 ] || fail "skip: good output has $(wc -l < sk.good) lines, expected 857"
grep -q '"n":7,' sk.good && fail "skip: a poison record reached the output"
[ "$(grep -c 'skipping record' sk.err)" -eq 1 ] || fail "skip: expected exactly one 'skipping record' warning"
grep -qF "skipping record at offset 0: poison record n=0 (further skips are only counted)" sk.err ||
  fail "skip: the warning does not name the first skipped record"

# 4. fail, explicit and by default.
dag fl 1000 7 fail 1 1 1 no
st 1 fl.out fl.err "$SLUICE" run fl.yaml
grep -qF "node 'f' (operator 'fail_every'" fl.err || fail "fail: the error does not name the node"
grep -qF "record at offset 0: poison record n=0" fl.err || fail "fail: the error does not name the record"
grep -qF "job 'fl' FAILED" fl.err || fail "fail: the summary does not say FAILED"
grep -v 'on_error' fl.yaml > fldef.yaml
sed -i 's/^name: fl$/name: fldef/' fldef.yaml
st 1 fldef.out fldef.err "$SLUICE" run fldef.yaml
grep -qF "poison record n=0" fldef.err || fail "default on_error should be fail"

# 5. dead_letter without a reader of f.errors.
dag nr 100 7 dead_letter 1 1 1 no
st 2 nr.out nr.err "$SLUICE" validate nr.yaml
grep -qE "^nr\.yaml:[0-9]+:[0-9]+: error: node 'f': on_error is dead_letter but no node reads 'f.errors'" nr.err ||
  { cat nr.err >&2; fail "validate: expected \"no node reads 'f.errors'\" with its position"; }
st 2 nrrun.out nrrun.err "$SLUICE" run nr.yaml
grep -qF "no node reads 'f.errors'" nrrun.err || fail "run of nr.yaml: no \"no node reads 'f.errors'\""
[ ! -e nr.good ] || fail "run of an invalid DAG wrote output"
# ... and adding the reader makes it valid.
dag nrok 100 7 dead_letter
st 0 nrok.out nrok.err "$SLUICE" validate nrok.yaml
grep -qF "nrok.yaml: ok (4 nodes)" nrok.out || fail "validate of the DAG with an errors reader did not say ok"

echo "dead_letter: ok"
