#!/usr/bin/env bash
# e2e: recovery from checkpoints. file_source -> keyed running count (2
# tasks) -> transactional file_sink; the job is killed right after
# checkpoint 3 completes (SLUICE_FAULT=rename:3), leaving checkpoints 1-3.
#
#  1. Damaged newest checkpoint (truncated MANIFEST, a flipped bit in a state
#     file, a missing state file): the restart warns why, falls back to
#     checkpoint 2, and the output is exact. Every checkpoint damaged: a
#     warning for each, a fresh start, exact output.
#  2. A checkpoint that does not fit the DAG is refused, naming the node: the
#     keyed node renamed, the source's parallelism changed, key_by removed.
#  3. Rescaling: the keyed node restarted with parallelism 3, and with 1: its
#     state follows its key groups; the output is exact.
#  4. A completed job run again resumes from its final checkpoint and adds
#     nothing; --fresh starts over and gives the same output, and moves the
#     old checkpoints aside so that a crash before its first checkpoint does
#     not resume from them.
#  5. A checkpoint directory that is a file: a clear error.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"

awk 'BEGIN { for (i = 0; i < 1000000; i++) printf "{\"k\":\"k%d\",\"i\":%d}\n", (i * 7919) % 101, i }' > input.jsonl
awk -F'"' '{ c[$4]++; print $4 "," c[$4] }' input.jsonl | sort > reference.txt

# dag FILE [COUNT_NAME] [COUNT_PAR] [SRC_PAR] [KEY_BY]
dag() {
  local name=${2:-count} par=${3:-2} spar=${4:-1} key=${5-"key_by: k,"}
  {
    echo "name: recovery"
    echo "settings:"
    echo "  workers: 2"
    echo "  checkpoints: { interval: 50ms, dir: ./ckpt, keep: 3 }"
    echo "nodes:"
    echo "  src: { use: file_source, parallelism: $spar, config: { path: input.jsonl } }"
    echo "  $name: { use: \"$T/stateful.so:running_count\", from: src, $key parallelism: $par }"
    echo "  out: { use: file_sink, from: $name, config: { path: out.txt } }"
  } > "$1"
}
dag job.yaml


# Leave checkpoints 1..3 and the sink's files as a crash after checkpoint 3 does.
crash_after_3() {
  rm -rf ckpt out.txt out.txt.pending-*
  set +e
  SLUICE_FAULT=rename:3 "$SLUICE" run -q job.yaml > /dev/null 2> crash.err
  local rc=$?
  set -e
  [ $rc -eq 137 ] || { cat crash.err >&3; fail "expected the fault to kill the job (137), got $rc"; }
  for i in 1 2 3; do [ -e ckpt/chk-00000000000$i/MANIFEST ] || fail "checkpoint $i missing"; done
  rm -rf saved && mkdir saved && cp -a ckpt out.txt* saved/
}
restore_saved() {
  rm -rf ckpt out.txt out.txt.pending-*
  cp -a saved/. .
}

crash_after_3

# 1. Damaged newest checkpoint -> fallback to 2.
damage() {
  local f off b
  case $1 in
    truncated) truncate -s -30 ckpt/chk-000000000003/MANIFEST ;;
    bitflip)
      f=ckpt/chk-000000000003/count.0.snap
      off=$(($(stat -c %s $f) / 2))
      b=$(od -An -tu1 -j $off -N1 $f | tr -d ' ')
      printf "$(printf '\\%03o' $((b ^ 16)))" | dd of=$f bs=1 seek=$off conv=notrunc status=none
      ;;
    missing) rm ckpt/chk-000000000003/count.1.snap ;;
  esac
}
declare -A why=([truncated]="checksum" [bitflip]="does not match its checksum" [missing]="cannot be read")
for kind in truncated bitflip missing; do
  restore_saved
  damage $kind
  st 0 run.out run.err "$SLUICE" run job.yaml
  grep -q "chk-000000000003 is damaged, falling back to an older one: .*${why[$kind]}" run.err ||
    { cat run.err >&3; fail "$kind: no warning saying why checkpoint 3 was skipped"; }
  grep -q "resuming from checkpoint 2 " run.err || { cat run.err >&3; fail "$kind: did not resume from checkpoint 2"; }
  check_output "damaged ($kind)"
done

restore_saved
for i in 1 2 3; do truncate -s 10 ckpt/chk-00000000000$i/MANIFEST; done
st 0 run.out run.err "$SLUICE" run job.yaml
[ "$(grep -c 'is damaged, falling back' run.err)" -eq 3 ] || { cat run.err >&3; fail "expected 3 damage warnings"; }
if grep -q "resuming from" run.err; then fail "resumed from a damaged checkpoint"; fi
check_output "all damaged"

# 2. Checkpoints that do not fit.
restore_saved
dag renamed.yaml counter
st 1 run.out run.err "$SLUICE" run renamed.yaml
grep -q "holds state of node 'count', which this DAG does not have" run.err || { cat run.err >&3; fail "renamed node: message"; }
dag srcpar.yaml count 2 2
st 1 run.out run.err "$SLUICE" run srcpar.yaml
grep -q "node 'src' has operator state for parallelism 1, the DAG now says 2" run.err || { cat run.err >&3; fail "source parallelism: message"; }
dag nokey.yaml count 2 1 ""
st 1 run.out run.err "$SLUICE" run nokey.yaml
grep -q "node 'count' has keyed state but no key_by" run.err || { cat run.err >&3; fail "no key_by: message"; }
cmp -s ckpt/chk-000000000003/MANIFEST saved/ckpt/chk-000000000003/MANIFEST || fail "a refused restore changed the checkpoint"

# 3. Rescaling the keyed node.
for p in 3 1; do
  restore_saved
  dag rescale.yaml count $p
  st 0 run.out run.err "$SLUICE" run rescale.yaml
  grep -q "resuming from checkpoint 3 " run.err || { cat run.err >&3; fail "rescale to $p: did not resume from 3"; }
  check_output "rescaled to $p"
done

# 4. Run again after completion; --fresh.
st 0 run.out run.err "$SLUICE" run job.yaml
grep -q "resuming from checkpoint [0-9]* (final" run.err || { cat run.err >&3; fail "rerun: did not resume from the final checkpoint"; }
check_output "rerun after completion"
st 0 run.out run.err "$SLUICE" run --fresh job.yaml
if grep -q "resuming from" run.err; then fail "--fresh resumed"; fi
check_output "--fresh"
# --fresh moves the old run's checkpoints aside: a crash before the new run's
# first checkpoint must not resume from them (the sink already started over).
set +e
SLUICE_FAULT=barrier:1 "$SLUICE" run -q --fresh job.yaml > /dev/null 2> crash.err
rc=$?
set -e
[ $rc -eq 137 ] || { cat crash.err >&3; fail "--fresh + fault: expected 137, got $rc"; }
compgen -G 'ckpt/superseded-*/chk-*' > /dev/null || fail "--fresh did not move the old checkpoints aside"
st 0 run.out run.err "$SLUICE" run job.yaml
if grep -q "resuming from" run.err; then cat run.err >&3; fail "resumed from a checkpoint of the superseded run"; fi
check_output "--fresh, crash before its first checkpoint, restart"

# 5. The checkpoint directory is a file.
rm -rf ckpt && touch ckpt
st 1 run.out run.err "$SLUICE" run job.yaml
grep -q "checkpoint directory ./ckpt is not a directory" run.err || { cat run.err >&3; fail "ckpt is a file: message"; }
echo "checkpoint recovery: fallback, refusals, rescaling, rerun, --fresh: ok"
