#!/usr/bin/env bash
# e2e: external commit points (SDK 1.6, sl_checkpoint_commit_point and
# resolve()), with the test plugin extcommit.so:log_sink, whose "external
# system" is a log file of transactions (see tests/plugins/extcommit.c).
#
#   gen (generator, 10000 records at 20000/s) -> out (log_sink), checkpoints
#   every 50 ms; chained into one task (the sink's pause stops the source's
#   polling), or with key_by into two (case 3: the pause holds the channel)
#
# The committed records of the log (the lines before its last "#commit")
# must equal the generator's records, in order, exactly once:
#  1. a clean run;
#  2. killed after checkpoint 3 was written but before its commit point ran
#     (SLUICE_FAULT=manifest:3): the restart hears "did not take effect",
#     discards checkpoint 3 and resumes from 2;
#  3. killed after the commit point, before the checkpoint was marked
#     complete (SLUICE_FAULT=decided:3): the restart hears "took effect" and
#     resumes from 3;
#  3b. the same with the sink's input flooded (no rate): records queued
#     behind the barrier must not join the checkpoint's transaction;
#  4. a commit point that fails: the job fails (exit 1) saying so, and the
#     restart settles the checkpoint;
#  5. bad answers: two nodes that disagree, and a resolve() that fails,
#     stop the start with a message naming the node.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"

cat > ref.yaml << YAML
name: ref
nodes:
  gen: { use: generator, config: { count: 10000, seed: 3 } }
  out: { use: file_sink, from: gen, config: { path: reference.txt } }
YAML
st 0 ref.out ref.err "$SLUICE" run ref.yaml

# job NAME [EXTRA CONFIG OF out [EXTRA SETTINGS OF out]]
job() {
  cat > "$1.yaml" << YAML
name: ext
settings:
  workers: 2
  checkpoints: { interval: 50ms, dir: ./ckpt-$1, keep: 3 }
nodes:
  gen: { use: generator, config: { count: 10000, rate: 20000, seed: 3 } }
  out: { use: "$T/extcommit.so:log_sink", from: gen, config: { path: $1.log${2:+, $2} }${3:+, $3} }
YAML
}

# committed LOG: the records of the committed transactions.
committed() {
  local last
  last=$(grep -n '^#commit [0-9]*$' "$1" | tail -n 1 | cut -d: -f1)
  [ -n "$last" ] || return 1
  head -n "$last" "$1" | grep -v '^#commit [0-9]*$'
}

check_log() {
  committed "$1.log.0" > "$1.committed" || fail "$1: no transaction committed"
  if ! cmp -s reference.txt "$1.committed"; then
    echo "  reference: $(wc -l < reference.txt) lines; committed: $(wc -l < "$1.committed") lines," \
      "$(sort "$1.committed" | uniq -d | wc -l) duplicated" >&3
    fail "$1: the committed records differ from the generator's"
  fi
}

# killed NAME PHASE:ID: the run dies by SIGKILL at that fault point.
killed() {
  set +e
  SLUICE_FAULT=$2 timeout -k 5 120 "$SLUICE" run "$1.yaml" > "$1.out1" 2> "$1.err1"
  local rc=$?
  set -e
  [ "$rc" -eq 137 ] || { cat "$1.err1" >&3; fail "$1: expected a SIGKILL at $2, got exit $rc"; }
}

echo "external_commit: clean run"
job clean
st 0 clean.out clean.err "$SLUICE" run clean.yaml
check_log clean
n=$(grep -c '^#commit' clean.log.0)
[ "$n" -ge 3 ] || fail "clean: only $n commits (checkpoints every 50 ms over about 0.5 s)"
echo "  $n transactions committed"

echo "external_commit: killed before the commit point"
job early
killed early manifest:3
[ -f ckpt-early/chk-000000000003/MANIFEST.tmp ] && [ ! -f ckpt-early/chk-000000000003/MANIFEST ] ||
  fail "early: checkpoint 3 is not left written-but-unmarked"
if grep -q '^#commit 3$' early.log.0; then fail "early: checkpoint 3 committed before its commit point"; fi
st 0 early.out early.err "$SLUICE" run early.yaml
grep -q 'checkpoint 3 was written but not marked complete; node .out. says it did not take effect' early.err ||
  { cat early.err >&3; fail "early: the restart did not discard checkpoint 3"; }
grep -q 'resuming from checkpoint 2' early.err || fail "early: did not resume from checkpoint 2"
check_log early

echo "external_commit: killed after the commit point"
job late "" 'key_by: $key'
killed late decided:3
grep -q '^#commit 3$' late.log.0 || fail "late: checkpoint 3 did not commit before the kill"
[ ! -f ckpt-late/chk-000000000003/MANIFEST ] || fail "late: checkpoint 3 was marked complete"
st 0 late.out late.err "$SLUICE" run late.yaml
grep -q 'node .out. says it took effect: resuming from it' late.err ||
  { cat late.err >&3; fail "late: the restart did not take checkpoint 3"; }
grep -q 'resuming from checkpoint 3' late.err || fail "late: did not resume from checkpoint 3"
check_log late

echo "external_commit: killed after the commit point, input flooding the sink"
# No rate limit: batches wait behind every barrier in the sink's channel. A
# record taken after the barrier would join checkpoint 2's transaction and
# come again in the replay from 2.
sed 's/count: 10000, seed: 3/count: 300000, seed: 3/' ref.yaml > ref300k.yaml
sed -i 's/reference.txt/reference300k.txt/' ref300k.yaml
st 0 ref300k.out ref300k.err "$SLUICE" run ref300k.yaml
job flood "" 'key_by: $key'
sed -i 's/count: 10000, rate: 20000/count: 300000/' flood.yaml
killed flood decided:2
st 0 flood.out flood.err "$SLUICE" run flood.yaml
grep -q 'node .out. says it took effect: resuming from it' flood.err ||
  { cat flood.err >&3; fail "flood: the restart did not take checkpoint 2"; }
committed flood.log.0 > flood.committed || fail "flood: no transaction committed"
cmp -s reference300k.txt flood.committed ||
  fail "flood: the committed records differ from the generator's ($(sort flood.committed | uniq -d | wc -l) duplicated)"

echo "external_commit: a commit point that fails"
job failing "fail_commit_at: 3"
st 1 failing.out failing.err "$SLUICE" run failing.yaml
grep -q "checkpoint 3: node 'out' task 0: commit failed: log_sink: injected failure" failing.err ||
  { cat failing.err >&3; fail "failing: the failure does not name the node and the cause"; }
grep -q 'asks the external system whether checkpoint 3 took effect' failing.err ||
  fail "failing: the message does not say what happens next"
job failing
st 0 failing.out2 failing.err2 "$SLUICE" run failing.yaml
grep -q 'says it did not take effect' failing.err2 || { cat failing.err2 >&3; fail "failing: not settled at restart"; }
check_log failing

echo "external_commit: answers that stop the start"
job late2
killed late2 decided:3
cat > two.yaml << YAML
name: ext
settings:
  workers: 2
  checkpoints: { interval: 50ms, dir: ./ckpt-late2, keep: 3 }
nodes:
  gen: { use: generator, config: { count: 10000, rate: 20000, seed: 3 } }
  out: { use: "$T/extcommit.so:log_sink", from: gen, config: { path: late2.log, answer: "yes" } }
  out2: { use: "$T/extcommit.so:log_sink", from: gen, config: { path: two2.log, answer: "no" } }
YAML
st 1 two.out two.err "$SLUICE" run two.yaml
grep -q "took effect for node 'out' but not for node 'out2'" two.err || { cat two.err >&3; fail "two: no disagreement error"; }
[ -f ckpt-late2/chk-000000000003/MANIFEST.tmp ] || fail "two: the undecided checkpoint was settled anyway"
job late2 "answer: error"
st 1 err.out err.err "$SLUICE" run late2.yaml
grep -q "node 'out' (operator 'log_sink'): cannot tell whether checkpoint 3 .* took effect: the log cannot be reached" err.err ||
  { cat err.err >&3; fail "error: resolve()'s failure is not reported"; }
echo "external_commit: ok"
