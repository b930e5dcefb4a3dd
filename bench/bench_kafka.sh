#!/usr/bin/env bash
# Kafka through Sluice against a bare librdkafka loop, in the same run, on
# librdkafka's mock cluster (`sluice kafka-dev`, 1 broker on 127.0.0.1):
#
#   bare            bench_kafka_bare: consume topic `in`, uppercase each value,
#                   produce it to a topic (bench/bench_kafka_bare.c)
#   bare, txn 1 s   the same with a transactional producer committing every 1 s
#   bare, txn 100 ms     committing every 100 ms
#   at_least_once   kafka_source -> good.so:upper (the same map, in C) ->
#                   kafka_sink, checkpoints every 1 s
#   at_least_once, json  the same with the source's `format: json` (each
#                   value checked to be one JSON text)
#   exactly_once 1 s     the same with delivery: exactly_once, checkpoints every 1 s
#   exactly_once 100 ms  checkpoints every 100 ms
#
#   bench/bench_kafka.sh [BUILD_DIR] [RECORDS] [REPS] [PARTITIONS]
#
# Defaults: build, 600,000 records (the clicks generator's, ~200 bytes) in 32
# partitions (the mock keeps ~31,000 per partition), best of 5 runs per row,
# the rows taking turns.
# One task per node, 2 workers. Records/s is RECORDS over the wall time of
# the whole command (client set-up included, for both sides).
set -euo pipefail
BUILD=${1:-build}
RECORDS=${2:-600000}
REPS=${3:-5}
PARTS=${4:-32}
SLUICE="$BUILD/sluice"
BARE="$BUILD/bench/bench_kafka_bare"
GOOD="$(cd "$BUILD" && pwd)/tests/testplugins/good.so"
[ -x "$SLUICE" ] && [ -x "$BARE" ] && [ -f "$GOOD" ] ||
  { echo "build $BUILD first (sluice, bench_kafka_bare, the test plugins)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/sluice-bench-kafka.XXXXXX)
topics="--topic in:$PARTS"
for i in $(seq 1 $((REPS * 7))); do topics="$topics --topic out$i:$PARTS --topic sluice.out$i.commits:1"; done
# shellcheck disable=SC2086
"$SLUICE" kafka-dev $topics --write "$WORK/boot" > /dev/null 2> "$WORK/kd.err" &
KD=$!
trap 'kill "$KD" 2> /dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 300); do [ -s "$WORK/boot" ] && break; sleep 0.1; done
BS=$(cat "$WORK/boot")

cat > "$WORK/fill.yaml" << YAML
nodes:
  gen: { use: generator, config: { kind: clicks, count: $RECORDS, seed: 7 } }
  k: { use: kafka_sink, from: gen, config: { brokers: "$BS", topic: in } }
YAML
"$SLUICE" run -q "$WORK/fill.yaml"

# A fresh output topic per run (a counter in a file: rows run in subshells).
echo 0 > "$WORK/n"
next_topic() {
  local n=$(($(cat "$WORK/n") + 1))
  echo "$n" > "$WORK/n"
  echo "out$n"
}

secs_of() { # CMD... -> wall seconds
  local t0 t1
  t0=$(date +%s%N)
  "$@" > /dev/null 2> "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "scale=3; ($t1 - $t0) / 1000000000" | bc | sed 's/^\./0./'
}

sluice_job() { # DELIVERY INTERVAL [FORMAT] -> wall seconds
  local topic
  topic=$(next_topic)
  rm -rf "$WORK/ckpt"
  cat > "$WORK/job.yaml" << YAML
name: bench_kafka
settings:
  workers: 2
  checkpoints: { interval: $2, dir: $WORK/ckpt, keep: 2 }
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: in, bounded: true, group_id: bench.$topic, format: ${3:-raw} } }
  map: { use: "$GOOD:upper", from: src }
  k: { use: kafka_sink, from: map, config: { brokers: "$BS", topic: $topic, delivery: $1, transactional_id: sluice.$topic } }
YAML
  secs_of "$SLUICE" run "$WORK/job.yaml"
  # every record must have reached the sink (the summary row of k)
  grep -qE "^  k +1 +$RECORDS +0 +0 +0\$" "$WORK/last.err" ||
    { cat "$WORK/last.err" >&2; echo "bench_kafka: the job did not write $RECORDS records" >&2; exit 1; }
}

bare() { secs_of "$BARE" "$BS" in "$(next_topic)" "$RECORDS" "$@"; }

# The cases run in rounds, one run of each per round, so that a slow
# moment of the machine hits every case alike; each keeps its best run.
names=("bare" "bare, txn every 1 s" "bare, txn every 100 ms" "at_least_once"
       "at_least_once, json" "exactly_once, 1 s" "exactly_once, 100 ms")
cmds=("bare" "bare 1000" "bare 100" "sluice_job at_least_once 1s"
      "sluice_job at_least_once 1s json" "sluice_job exactly_once 1s"
      "sluice_job exactly_once 100ms")
declare -a bestv
for _ in $(seq "$REPS"); do
  for i in "${!cmds[@]}"; do
    # shellcheck disable=SC2086
    v=$(${cmds[$i]})
    if [ -z "${bestv[$i]:-}" ] || [ "$(echo "$v < ${bestv[$i]}" | bc)" = 1 ]; then bestv[$i]=$v; fi
  done
done

printf '%-22s %10s %12s %8s\n' case seconds records/s "vs bare"
for i in "${!cmds[@]}"; do
  printf '%-22s %10s %12.0f %7.0f%%\n' "${names[$i]}" "${bestv[$i]}" \
    "$(echo "$RECORDS / ${bestv[$i]}" | bc -l)" "$(echo "100 * ${bestv[0]} / ${bestv[$i]}" | bc -l)"
done
# The last row run was exactly_once at 100 ms: how many records waited
# behind the sink's gate during commits (its run summary's counter).
buffered=$(sed -n 's/^    counter commit_buffered = \([0-9]*\)$/\1/p' "$WORK/last.err" | head -n 1)
echo "exactly_once, 100 ms (last run): ${buffered:-0} of $RECORDS records waited behind the gate during commits"
