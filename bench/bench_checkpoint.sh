#!/usr/bin/env bash
# Checkpoints of a whole job at several sizes of keyed state (memory
# backend): the pause they cost a task, their duration and size, and the
# time to restore them.
#
#   bench/bench_checkpoint.sh [BUILD_DIR] [SIZES...]
#
# SIZES are approximate state sizes in MB (default: 10 100 1000). For each,
# a generator (at least 8M records, users = the number of keys) feeds a
# keyed running count that stores value_bytes=100 per key (~160 bytes of
# state per key in memory) into a null sink, with a checkpoint every second
# to a directory under /tmp. Printed per size, from
# the job's own summary: checkpoints taken, the longest task pause (the
# moment a task freezes its state), the last checkpoint's bytes and
# duration; then a second run resumes from the final checkpoint and
# reports how long the restore took (process start to "running").
set -euo pipefail
BUILD=${1:-build}
shift || true
SIZES=${*:-10 100 1000}
SLUICE="$BUILD/sluice"
PLUGIN="$(cd "$BUILD" && pwd)/tests/testplugins/stateful.so"
[ -x "$SLUICE" ] && [ -f "$PLUGIN" ] || { echo "build $BUILD first (sluice and the test plugins)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/sluice-bench-ckpt.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

ms() { date +%s%3N; }

printf '| state (MB wanted) | keys | checkpoints | longest task pause | last checkpoint | restore |\n'
printf '|---:|---:|---:|---:|---:|---:|\n'
for mb in $SIZES; do
  keys=$((mb * 1000000 / 160)) # ~160 bytes per key in memory: entry, key, 100-byte value, slot
  # Enough records for several periodic checkpoints once the state is built.
  records=$((keys * 2 > 8000000 ? keys * 2 : 8000000))
  cat > "$WORK/job.yaml" << EOF
name: bench
settings:
  workers: 2
  checkpoints: { interval: 1s, dir: $WORK/ckpt, keep: 2 }
nodes:
  gen: { use: generator, config: { kind: clicks, count: $records, users: $keys } }
  count: { use: "$PLUGIN:running_count", from: gen, key_by: user_id, config: { value_bytes: 100 } }
  out: { use: null_sink, from: count }
EOF
  rm -rf "$WORK/ckpt"
  "$SLUICE" run --fresh "$WORK/job.yaml" 2> "$WORK/run.err" > /dev/null
  line=$(grep "checkpoints:" "$WORK/run.err")
  n=$(sed -E 's/.*checkpoints: ([0-9]+) completed.*/\1/' <<< "$line")
  pause=$(sed -E 's/.*longest task pause ([0-9.]+) ms.*/\1/' <<< "$line")
  last=$(sed -E 's/.*last [0-9]+ \(([0-9]+) bytes, ([0-9]+) ms\).*/\1 \2/' <<< "$line")
  bytes=${last% *}
  dur=${last#* }
  t0=$(ms)
  "$SLUICE" run -l info "$WORK/job.yaml" 2> "$WORK/rerun.err" > /dev/null
  run_at=$(grep -m1 "running:" "$WORK/rerun.err" | cut -c12-23)
  start_at=$(date -u -d "@$((t0 / 1000))" +%H:%M:%S).$(printf '%03d' $((t0 % 1000)))
  restore=$(python3 -c "import sys
def s(t): h,m,x=t.split(':'); return (int(h)*3600+int(m)*60+float(x))*1000
print(round(s('$run_at')-s('$start_at')))")
  printf '| %s | %s | %s | %s ms | %s MB in %s ms | %s ms |\n' "$mb" "$keys" "$n" "$pause" \
    "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')" "$dur" "$restore"
done
