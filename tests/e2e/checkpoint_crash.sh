#!/usr/bin/env bash
# e2e: exactly-once under SIGKILL. file_source (replayable by offset) ->
# keyed running count (value state, key_by, 2 tasks) -> transactional
# file_sink, checkpoints every 50 ms.
#
#  1. Random kills: each trial starts the job, SIGKILLs it at a random moment,
#     restarts it until it completes, and compares the committed output with
#     a reference computed here with awk: the same multiset of lines (every
#     "key,n" exactly once: 0 duplicates, 0 losses). A trial counts only if a
#     checkpoint completed before the kill (it says how many counted).
#     SLUICE_CRASH_TRIALS sets the number (default 20; the long mode in
#     docs/testing.md runs 200).
#  2. A kill at each checkpoint phase (SLUICE_FAULT=phase:id): barrier,
#     snapshot, manifest, rename, commit; the same check after the restart.
#  3. The same random kills (SLUICE_CRASH_TRIALS_EXTRA, default 5) on two
#     variants: fan-in (two file sources into the keyed count, whose tasks
#     then align barriers from two inputs) and the count written in Lua
#     (value state from a script). Any interleaving of the inputs gives the
#     same multiset of "key,n" lines, so the reference is the same.
#  4. What a kill leaves visible in the output file is committed output: it is
#     a byte prefix of the output once the job has completed after restarts
#     (a commit cut short by the kill may leave part of a line; recovery
#     appends the same bytes again).
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"
TRIALS=${SLUICE_CRASH_TRIALS:-20}
LINES=${SLUICE_CRASH_LINES:-1500000}

awk -v n="$LINES" 'BEGIN { for (i = 0; i < n; i++) printf "{\"k\":\"k%d\",\"i\":%d}\n", (i * 7919) % 101, i }' > input.jsonl
awk -F'"' '{ c[$4]++; print $4 "," c[$4] }' input.jsonl | sort > reference.txt

cat > crash.yaml << EOF
name: crash
settings:
  workers: 2
  checkpoints: { interval: 50ms, dir: ./ckpt, keep: 3 }
nodes:
  src: { use: file_source, config: { path: input.jsonl } }
  count: { use: "$T/stateful.so:running_count", from: src, key_by: k, parallelism: 2 }
  out: { use: file_sink, from: count, config: { path: out.txt } }
EOF

# The fan-in variant: the same lines in two files.
half=$((LINES / 2))
head -n $half input.jsonl > a.jsonl
tail -n +$((half + 1)) input.jsonl > b.jsonl
cat > fanin.yaml << EOF
name: crash
settings:
  workers: 2
  checkpoints: { interval: 50ms, dir: ./ckpt, keep: 3 }
nodes:
  a: { use: file_source, config: { path: a.jsonl } }
  b: { use: file_source, config: { path: b.jsonl } }
  count: { use: "$T/stateful.so:running_count", from: [a, b], key_by: k, parallelism: 2 }
  out: { use: file_sink, from: count, config: { path: out.txt } }
EOF

# The Lua variant.
{
  echo 'local n'
  echo 'function open(ctx) n = ctx:value_state("n") end'
  echo 'function process(rec, ctx)'
  echo '  local c = (n:get() or 0) + 1'
  echo '  n:set(c)'
  echo '  ctx:emit(rec.key .. "," .. c)'
  echo 'end'
} > count.lua
sed 's|use: "'"$T"'/stateful.so:running_count"|use: lua:count.lua|' crash.yaml > lua.yaml
grep -q "lua:count.lua" lua.yaml || fail "lua.yaml was not derived"

DAG=crash.yaml
reset_run() { rm -rf ckpt out.txt out.txt.pending-*; }



# finish LABEL: restart (more than once if needed) until the job completes.
finish() {
  for attempt in 1 2 3; do
    set +e
    timeout -k 5 120 "$SLUICE" run -q "$DAG" > run.out 2> run.err
    local rc=$?
    set -e
    [ $rc -eq 0 ] && return 0
    [ $rc -eq 124 ] && fail "$1: the restarted job hung"
    sed 's/^/    | /' run.err >&3
    fail "$1: the restarted job exited $rc"
  done
}


# 0. The run without a crash gives the reference (and the run is long enough
#    for checkpoints to happen).
reset_run
start=$(date +%s%N)
finish "uninterrupted"
check_output "uninterrupted"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "uninterrupted run: ${ms} ms"

# 1. Random kills: random_kills TRIALS LABEL (on $DAG).
random_kills() {
  local trials=$1 label=$2 counted=0 trial pid delay had
  for trial in $(seq "$trials"); do
    reset_run
    "$SLUICE" run -q "$DAG" > run.out 2> run.err &
    pid=$!
    # Somewhere between 150 ms and the length of an uninterrupted run.
    delay=$(awk -v r=$RANDOM -v ms="$ms" 'BEGIN { printf "%.3f", (150 + (r % (ms > 200 ? ms : 200))) / 1000 }')
    sleep "$delay"
    kill -KILL $pid 2> /dev/null || true
    wait $pid 2> /dev/null || true
    had=$(completed_checkpoints)
    save_partial
    finish "$label trial $trial"
    check_partial "$label trial $trial"
    check_output "$label trial $trial (killed after ${delay}s, $had checkpoint(s) on disk)"
    [ "$had" -gt 0 ] && counted=$((counted + 1))
  done
  echo "$label random kills: $counted of $trials trials had a completed checkpoint before the kill"
  [ "$counted" -ge $((trials * 3 / 4)) ] || fail "$label: only $counted of $trials trials counted: make the run longer"
}
random_kills "$TRIALS" "basic"

# 2. A kill at each phase of checkpoint 3 (two complete before it).
for phase in barrier snapshot manifest rename commit; do
  reset_run
  set +e
  SLUICE_FAULT="$phase:3" timeout -k 5 120 "$SLUICE" run -q "$DAG" > run.out 2> run.err
  rc=$?
  set -e
  [ $rc -eq 137 ] || { sed 's/^/    | /' run.err >&3; fail "SLUICE_FAULT=$phase:3: expected a SIGKILL (137), got $rc"; }
  grep -q "killing the process at $phase of checkpoint 3" run.err || fail "$phase: no fault message"
  case $phase in
    rename | commit) [ -e ckpt/chk-000000000003/MANIFEST ] || fail "$phase: checkpoint 3 should be complete" ;;
    *) [ ! -e ckpt/chk-000000000003/MANIFEST ] || fail "$phase: checkpoint 3 should not be complete" ;;
  esac
  save_partial
  finish "phase $phase"
  check_partial "phase $phase"
  check_output "phase $phase"
done
echo "phase kills: barrier snapshot manifest rename commit: all exact"

# 3. Fan-in and Lua.
EXTRA=${SLUICE_CRASH_TRIALS_EXTRA:-5}
for DAG in fanin.yaml lua.yaml; do
  reset_run
  start=$(date +%s%N)
  finish "${DAG%.yaml} uninterrupted"
  check_output "${DAG%.yaml} uninterrupted"
  ms=$((($(date +%s%N) - start) / 1000000))
  random_kills "$EXTRA" "${DAG%.yaml}"
done
