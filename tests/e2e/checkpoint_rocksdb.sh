#!/usr/bin/env bash
# e2e: the RocksDB keyed-state backend (settings.state.backend: rocksdb) in
# the crash test's pipeline: file_source -> keyed running count (2 tasks) ->
# transactional file_sink, checkpoints every 100 ms.
#
#  1. Exactly-once under SIGKILL, as tests/e2e/checkpoint_crash.sh: random
#     kills (SLUICE_CRASH_TRIALS, default 6) and a kill at each checkpoint
#     phase; the committed output equals the reference. Checkpoints hold the
#     keyed state as <node>.<task>.rocksdb/ directories listed file by file
#     in the MANIFEST.
#  2. Incremental checkpoints: consecutive checkpoints share their unchanged
#     SST files (the same inode, `stat -c %i`), and so does the final
#     checkpoint of a second run on a little more input with the first run's.
#  3. Rescaling: killed after checkpoint 3, restarted with parallelism 3, and
#     with 1: the output is exact (each new task copies its key groups out of
#     the old tasks' databases).
#  4. A damaged SST file in the newest checkpoint: the restart says which file
#     and falls back to the previous checkpoint; the output is exact.
#  5. Where the databases live: <checkpoints.dir>/state/<job>/<node>.<task>/
#     by default, <state.dir>/<job>/<node>.<task>/ when set (what a kill
#     leaves there is cleared at the next start), removed when the job ends;
#     a job without checkpoints uses a temporary directory.
#  6. A savepoint-style restore across backends: a RocksDB checkpoint restored
#     by a job on the memory backend, and the other way round.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"
TRIALS=${SLUICE_CRASH_TRIALS:-6}
LINES=${SLUICE_CRASH_LINES:-1000000}

awk -v n="$LINES" 'BEGIN { for (i = 0; i < n; i++) printf "{\"k\":\"k%d\",\"i\":%d}\n", (i * 7919) % 101, i }' > input.jsonl
awk -F'"' '{ c[$4]++; print $4 "," c[$4] }' input.jsonl | sort > reference.txt

# dag FILE [PARALLELISM] [BACKEND] [STATE_SETTINGS] [CHECKPOINTS]
dag() {
  local par=${2:-2} backend=${3:-rocksdb} extra=${4:-} ck=${5-"checkpoints: { interval: 100ms, dir: ./ckpt, keep: 3 }"}
  {
    echo "name: crash"
    echo "settings:"
    echo "  workers: 2"
    [ -n "$ck" ] && echo "  $ck"
    echo "  state: { backend: $backend$extra }"
    echo "nodes:"
    echo "  src: { use: file_source, config: { path: input.jsonl } }"
    echo "  count: { use: \"$T/stateful.so:running_count\", from: src, key_by: k, parallelism: $par }"
    echo "  out: { use: file_sink, from: count, config: { path: out.txt } }"
  } > "$1"
}
dag crash.yaml

reset_run() { rm -rf ckpt out.txt out.txt.pending-* statedir; }
# The runs' temporary state directories go to a TMPDIR of this test's own, so
# that other tests (or another checkout's) running at the same time do not
# change the count below.
mkdir -p tmp
export TMPDIR="$PWD/tmp"
# Temporary state directories present now (compgen: no error when there is none).
state_dirs() { compgen -G "${TMPDIR:-/tmp}/sluice-state-*" | wc -l || true; }

# finish LABEL [DAG]: run until the job completes.
finish() {
  set +e
  timeout -k 5 120 "$SLUICE" run -q "${2:-crash.yaml}" > run.out 2> run.err
  local rc=$?
  set -e
  [ $rc -eq 0 ] && return 0
  [ $rc -eq 124 ] && fail "$1: the job hung"
  sed 's/^/    | /' run.err >&3
  fail "$1: the job exited $rc"
}

reset_run
set +e
timeout -k 5 120 "$SLUICE" run -q crash.yaml > run.out 2> run.err
rc=$?
set -e
[ $rc -eq 0 ] || { sed 's/^/    | /' run.err >&3; fail "uninterrupted run exited $rc"; }

# 0. The run without a crash gives the reference; its final checkpoint holds
#    the state as directories, every file listed.
check_output "uninterrupted"
final=$(ls -d ckpt/chk-* | tail -1)
for t in 0 1; do
  [ -d "$final/count.$t.rocksdb" ] || fail "no count.$t.rocksdb in $final: $(ls "$final")"
  [ -n "$(compgen -G "$final/count.$t.rocksdb/*.sst")" ] || fail "no SST file in $final/count.$t.rocksdb"
  listed=$(grep -c "^file count $t count.$t.rocksdb/" "$final/MANIFEST")
  present=$(ls "$final/count.$t.rocksdb" | wc -l)
  [ "$listed" -eq "$present" ] || fail "$final: $present files in count.$t.rocksdb, $listed in the MANIFEST"
done
head -1 "$final/MANIFEST" | grep -qx "sluice-checkpoint 2" || fail "MANIFEST version: $(head -1 "$final/MANIFEST")"
[ ! -e ckpt/state/crash/count.0 ] || fail "the working directory ckpt/state/crash/count.0 is left after the job"

# 1. Random kills, then a kill at each phase of checkpoint 3.
counted=0
for trial in $(seq "$TRIALS"); do
  reset_run
  "$SLUICE" run -q crash.yaml > run.out 2> run.err &
  pid=$!
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", (200 + r % 1500) / 1000 }')"
  kill -KILL $pid 2> /dev/null || true
  wait $pid 2> /dev/null || true
  had=$(completed_checkpoints)
  save_partial
  finish "trial $trial"
  check_partial "trial $trial"
  check_output "trial $trial ($had checkpoint(s) before the kill)"
  [ "$had" -gt 0 ] && counted=$((counted + 1))
done
echo "random kills: $counted of $TRIALS trials had a completed checkpoint before the kill"
for phase in barrier snapshot manifest rename commit; do
  reset_run
  set +e
  SLUICE_FAULT="$phase:3" timeout -k 5 120 "$SLUICE" run -q crash.yaml > run.out 2> run.err
  rc=$?
  set -e
  [ $rc -eq 137 ] || { sed 's/^/    | /' run.err >&3; fail "SLUICE_FAULT=$phase:3: expected a SIGKILL (137), got $rc"; }
  save_partial
  finish "phase $phase"
  check_partial "phase $phase"
  check_output "phase $phase"
done
echo "phase kills: barrier snapshot manifest rename commit: all exact"

# 2. Incremental: checkpoints 2 and 3 of one run share SST files (flushes
#    add files; fewer than 4 in level 0 are not compacted).
# inodes DIR: "name inode" of the SST files in DIR, sorted.
inodes() { for f in "$1"/*.sst; do echo "$(basename "$f") $(stat -c %i "$f")"; done | sort; }
shared() { comm -12 <(inodes "$1") <(inodes "$2") | wc -l; }
reset_run
set +e
SLUICE_FAULT=rename:3 timeout -k 5 120 "$SLUICE" run -q crash.yaml > /dev/null 2> crash.err
rc=$?
set -e
[ $rc -eq 137 ] || { cat crash.err >&3; fail "expected the fault to kill the job (137), got $rc"; }
for t in 0 1; do
  n=$(shared ckpt/chk-000000000002/count.$t.rocksdb ckpt/chk-000000000003/count.$t.rocksdb)
  [ "$n" -ge 1 ] || fail "checkpoints 2 and 3 share no SST file of count.$t: $(inodes ckpt/chk-000000000002/count.$t.rocksdb) / $(inodes ckpt/chk-000000000003/count.$t.rocksdb)"
  echo "count.$t: checkpoints 2 and 3 share $n SST file(s) (same inode)"
done
[ -e ckpt/state/crash/count.0/db/CURRENT ] || fail "no database in ckpt/state/crash/count.0 after the kill"
rm -rf saved && mkdir saved && cp -a ckpt out.txt* saved/
restore_saved() {
  rm -rf ckpt out.txt out.txt.pending-*
  cp -a saved/. .
}
#    A second run on more input resumes from the first run's final
#    checkpoint (its files linked into the new databases) and shares them
#    (final checkpoints only: one flush each, no compaction in between).
reset_run
awk 'NR <= 200000' input.jsonl > part.jsonl
sed 's/input.jsonl/part.jsonl/; s/interval: 100ms, //' crash.yaml > part.yaml
finish "first part" part.yaml
first=$(ls -d ckpt/chk-* | tail -1)
awk 'NR > 200000 && NR <= 201000' input.jsonl >> part.jsonl
finish "second part" part.yaml
second=$(ls -d ckpt/chk-* | tail -1)
[ "$first" != "$second" ] || fail "the second run wrote no checkpoint"
for t in 0 1; do
  n=$(shared "$first/count.$t.rocksdb" "$second/count.$t.rocksdb")
  [ "$n" -ge 1 ] || fail "$first and $second share no SST file of count.$t"
  echo "count.$t: the second run's final checkpoint shares $n SST file(s) with the first's"
done
awk 'NR <= 201000' input.jsonl | awk -F'"' '{ c[$4]++; print $4 "," c[$4] }' | sort > part_ref.txt
sort out.txt > got.txt
cmp -s got.txt part_ref.txt || fail "two runs over a growing file: output differs"

# 3. Rescaling from checkpoint 3 (of a run killed right after it).
for par in 3 1; do
  restore_saved
  dag rescale.yaml $par
  finish "rescaled to $par" rescale.yaml
  check_output "rescaled to $par"
  grep -q "resuming from checkpoint 3" run.err || true
  echo "rescaled 2 -> $par from a RocksDB checkpoint: exact"
done

# 4. A damaged SST file in checkpoint 3: fall back to 2.
restore_saved
f=$(ls ckpt/chk-000000000003/count.1.rocksdb/*.sst | head -1)
# Break the link first: the same inode is in checkpoint 2.
cp "$f" "$f.tmp" && mv "$f.tmp" "$f"
off=$(($(stat -c %s "$f") / 2))
b=$(od -An -tu1 -j $off -N1 "$f" | tr -d ' ')
printf "$(printf '\\%03o' $((b ^ 16)))" | dd of="$f" bs=1 seek=$off conv=notrunc status=none
set +e
timeout -k 5 120 "$SLUICE" run crash.yaml > run.out 2> run.err
rc=$?
set -e
[ $rc -eq 0 ] || { sed 's/^/    | /' run.err >&3; fail "damaged SST: the job exited $rc"; }
grep -q "chk-000000000003 is damaged, falling back.*count.1.rocksdb/.*does not match its checksum" run.err ||
  { cat run.err >&3; fail "damaged SST: no warning naming the file"; }
grep -q "resuming from checkpoint 2" run.err || { cat run.err >&3; fail "damaged SST: did not resume from checkpoint 2"; }
check_output "damaged SST"

# 5. state.dir: the databases live there; a kill leaves them, the next start
#    clears them; they are gone once the job ends.
reset_run
dag statedir.yaml 2 rocksdb ", dir: ./statedir"
set +e
SLUICE_FAULT=rename:2 timeout -k 5 120 "$SLUICE" run -q statedir.yaml > /dev/null 2> crash.err
set -e
[ -e statedir/crash/count.1/db/CURRENT ] || fail "no database in statedir/crash/count.1: $(find statedir 2>&1 | head)"
[ ! -e ckpt/state ] || fail "state.dir set, yet ckpt/state exists"
finish "state.dir" statedir.yaml
check_output "state.dir"
[ ! -e statedir/crash/count.1 ] || fail "statedir/crash/count.1 left after the job"
#    No checkpoints: a temporary directory, removed.
rm -f out.txt
dag nockpt.yaml 2 rocksdb "" ""
before=$(state_dirs)
finish "no checkpoints" nockpt.yaml
check_output "no checkpoints"
after=$(state_dirs)
[ "$after" -le "$before" ] || fail "temporary state directories left: $(ls -d "${TMPDIR:-/tmp}"/sluice-state-*)"

# 6. Across backends: the RocksDB checkpoint 3 restored by the memory
#    backend (read through RocksDB), and a memory checkpoint by RocksDB.
restore_saved
dag mem.yaml 2 memory
finish "rocksdb -> memory" mem.yaml
check_output "rocksdb -> memory"
reset_run
set +e
SLUICE_FAULT=rename:3 timeout -k 5 120 "$SLUICE" run -q mem.yaml > /dev/null 2> crash.err
set -e
dag rescale.yaml 3
finish "memory -> rocksdb (and 2 -> 3 tasks)" rescale.yaml
check_output "memory -> rocksdb"
echo "across backends: exact both ways"
