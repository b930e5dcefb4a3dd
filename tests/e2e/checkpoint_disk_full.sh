#!/usr/bin/env bash
# e2e: the checkpoint directory's disk fills up. The checkpoints live on a
# 2 MiB tmpfs mounted by this test in a private mount namespace (unshare -m;
# skipped, saying so, where that is not allowed). A paced generator ->
# keyed running count (2 tasks) -> transactional file_sink, checkpoints
# every 100 ms.
#
#  1. Once a checkpoint has completed, a filler file takes all the space:
#     the job logs a clear error ("No space left on device") for each failed
#     checkpoint, goes on running, leaves no partial checkpoint directory and
#     the previous checkpoint intact.
#  2. The job is killed while the disk is full; the space is freed; the
#     restart resumes from the intact checkpoint and the output is exact:
#     every key's running count goes 1, 2, ... n with no gap or repeat, and
#     the total is the generator's count.
#  3. Without a kill: freeing the space lets the next checkpoints complete
#     in the same run; the summary counts the failed ones.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"

if [ -z "${SLUICE_IN_MOUNT_NS:-}" ]; then
  if ! unshare -m true 2> /dev/null; then
    echo "SKIPPED: cannot create a mount namespace here (unshare -m), so no small filesystem to fill"
    exit 77
  fi
  exec unshare -m env SLUICE_IN_MOUNT_NS=1 SLUICE_SCRATCH="$SLUICE_SCRATCH" bash "$0"
fi

mkdir -p ckfs
mount -t tmpfs -o size=2m tmpfs ckfs || { echo "SKIPPED: cannot mount a tmpfs"; exit 77; }
COUNT=40000

cat > job.yaml << EOF
name: diskfull
settings:
  workers: 2
  checkpoints: { interval: 100ms, dir: ./ckfs/ckpt, keep: 2 }
nodes:
  gen: { use: generator, config: { kind: clicks, count: $COUNT, rate: 10000, users: 500 } }
  count: { use: "$T/stateful.so:running_count", from: gen, key_by: user_id, parallelism: 2 }
  out: { use: file_sink, from: count, config: { path: out.txt } }
EOF

wait_for() { # wait_for SECONDS CONDITION...
  local s=$1
  shift
  for _ in $(seq $((s * 20))); do
    if "$@"; then return 0; fi
    sleep 0.05
  done
  return 1
}
have_checkpoint() { [ "$(completed_checkpoints ckfs/ckpt)" -gt 0 ]; }
# The newest checkpoint directory with a MANIFEST (the job may be creating and
# removing others meanwhile: no `ls` that could race with them).
newest_complete() {
  local d last=""
  for d in ckfs/ckpt/chk-*; do [ -e "$d/MANIFEST" ] && last=$d; done
  echo "$last"
}
disk_error() { grep -q "No space left on device" run.err; }


fill_disk() { dd if=/dev/zero of=ckfs/filler bs=4k 2> /dev/null || true; }

# 1 + 2: fill, observe, kill, free, restart.
"$SLUICE" run job.yaml > run.out 2> run.err &
pid=$!
wait_for 20 have_checkpoint || fail "no checkpoint completed"
fill_disk
wait_for 10 disk_error || { cat run.err >&3; fail "no disk-full error logged"; }
grep -q "checkpoint [0-9]*: writing .*: No space left on device; the job goes on, the previous checkpoint stays the one to recover from" run.err ||
  { cat run.err >&3; fail "the disk-full message does not say what happened"; }
kill -0 $pid 2> /dev/null || fail "the job stopped on a full disk"
# The job goes on trying (each attempt makes a directory and removes it when
# the write fails), so look twice: a directory without a MANIFEST both times
# is one left behind.
partial=""
for d in ckfs/ckpt/chk-*; do [ -e "$d/MANIFEST" ] || partial="$partial $d"; done
sleep 0.5
for d in $partial; do
  [ ! -d "$d" ] || [ -e "$d/MANIFEST" ] || fail "partial checkpoint directory left: $d"
done
kept=$(newest_complete)
kill -KILL $pid
wait $pid 2> /dev/null || true
rm -f ckfs/filler
st 0 run.out run.err "$SLUICE" run job.yaml
grep -q "resuming from checkpoint .*$(basename "$kept")" run.err || { cat run.err >&3; fail "did not resume from the checkpoint kept intact ($kept)"; }
check_counts "after kill on a full disk" $COUNT

# 3: free the space within the run.
rm -rf ckfs/ckpt out.txt out.txt.pending-*
"$SLUICE" run job.yaml > run.out 2> run.err &
pid=$!
wait_for 20 have_checkpoint || fail "no checkpoint completed (second run)"
fill_disk
wait_for 10 disk_error || { cat run.err >&3; fail "no disk-full error logged (second run)"; }
before=$(newest_complete)
rm -f ckfs/filler
newer() { [ "$(newest_complete)" != "$before" ]; }
wait_for 10 newer || fail "no checkpoint completed after the space was freed"
wait $pid || fail "the job failed"
grep -qE "checkpoints: [0-9]+ completed, [1-9][0-9]* failed" run.err || { cat run.err >&3; fail "the summary does not count failed checkpoints"; }
check_counts "space freed during the run" $COUNT
echo "disk full: reported, survived, recovered"
