#!/usr/bin/env bash
# e2e: kafka_sink with delivery: exactly_once, on librdkafka's mock cluster
# (`sluice kafka-dev`, started here on 127.0.0.1):
#
#   gen (generator, 30000 records at 30000/s) -> k (kafka_sink, 2 tasks,
#   exactly_once) ; checkpoints every 100 ms
#
# The verifying consumer (tests/tools/kafka_verify.c) prints what a
# read_committed reader of the topic sees; it must be the generator's
# records, each exactly once:
#  1. a clean run, in which records arriving during commits wait behind the
#     sink's gate (counter commit_buffered); and one whose gate may hold
#     only 2000 bytes, so that the input pauses (counter commit_buffer_full);
#  2. SIGKILL at random moments, the job run again until it completes
#     (SLUICE_KAFKA_EO_TRIALS trials, default 4);
#  3. checkpoint 3 fails to write (SLUICE_FAULT=write-error:3): the job goes
#     on, and the records of its transaction commit with checkpoint 4;
#     killed at checkpoint 3 before its transaction committed
#     (SLUICE_FAULT=manifest:3): the restart hears from Kafka that it did not
#     take effect; and after (decided:3): that it did;
#  4. bad configurations: a transaction timeout shorter than three checkpoint
#     intervals, a message timeout above the transaction timeout, a second
#     exactly_once node, no checkpoints.
# The mock writes no transaction markers: the verifier rebuilds what
# read_committed shows from the sink's commit records (see kafka_verify.c).
# With SLUICE_TEST_KAFKA=host:port naming a real broker, 1 and 2 also run
# there, verified with read_committed itself, and a zombie instance must be
# fenced by a second one with the same transactional id (the mock fences
# nobody); otherwise the test says they were skipped.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C
TRIALS=${SLUICE_KAFKA_EO_TRIALS:-4}

source "$(dirname "$0")/kafka_lib.sh"
# shellcheck disable=SC2046
kafka_dev_start clean small wfail f1 f2 $(seq -f 'trial%g' 1 "$TRIALS")
reference

# trials BROKERS PREFIX: random kills, then verification.
trials() {
  local bs=$1 prefix=$2
  for i in $(seq 1 "$TRIALS"); do
    local name="$prefix$i"
    job "$name" "$bs"
    "$SLUICE" run "$name.yaml" > "$name.out" 2> "$name.err" &
    local pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    until_done "$name"
    verify "$name" "$bs"
    echo "  $name: $(cat "$name.verify")"
  done
}

# zombie BROKERS NAME: a second instance with the same transactional id fences
# the first, which fails saying so. (librdkafka's mock gives every
# InitProducerId a new producer id instead of bumping the epoch of the
# transactional id's, so it fences nobody: this runs on a real broker.)
zombie() {
  local bs=$1 name=$2
  job "$name" "$bs"
  sed -i 's/count: 30000, rate: 30000/count: 0, rate: 5000/' "$name.yaml"
  "$SLUICE" run "$name.yaml" > z1.out 2> z1.err &
  local z1=$!
  for _ in $(seq 100); do [ -d "ckpt-$name/chk-000000000002" ] && break; sleep 0.1; done
  sed "s#ckpt-$name#ckpt-$name-2#; s/count: 0, rate: 5000/count: 100/" "$name.yaml" > "$name-2.yaml"
  st 0 z2.out z2.err "$SLUICE" run "$name-2.yaml"
  set +e
  timeout 30 tail --pid="$z1" -f /dev/null
  kill -9 "$z1" 2> /dev/null && fail "zombie: the first instance still runs after the second started"
  wait "$z1"
  local rc=$?
  set -e
  [ "$rc" -eq 1 ] || { cat z1.err >&3; fail "zombie: exit $rc, expected 1"; }
  grep -q "fenced: another instance started with the same transactional id" z1.err ||
    { tail -5 z1.err >&3; fail "zombie: the failure does not say it was fenced"; }
}

echo "kafka_exactly_once: clean run"
job clean "$BS"
st 0 clean.out clean.err "$SLUICE" run clean.yaml
row clean.err k 2 30000 0 0 0
verify clean
echo "  $(cat clean.verify)"
buffered=$(counter clean.err commit_buffered)
[ "${buffered:-0}" -gt 0 ] || { cat clean.err >&3; fail "clean: no record waited behind the gate during a commit"; }
echo "  $buffered records waited behind the gate during commits"

echo "kafka_exactly_once: a commit buffer of 2000 bytes"
job small "$BS" "commit_buffer_bytes: 2000"
st 0 small.out small.err "$SLUICE" run small.yaml
row small.err k 2 30000 0 0 0
verify small
full=$(counter small.err commit_buffer_full)
[ "${full:-0}" -gt 0 ] || { cat small.err >&3; fail "small: the input never paused for a full commit buffer"; }
echo "  $(cat small.verify); the buffer filled $full times"

echo "kafka_exactly_once: SIGKILL at random moments ($TRIALS trials)"
trials "$BS" trial

echo "kafka_exactly_once: checkpoint 3 fails to write"
job wfail "$BS"
SLUICE_FAULT=write-error:3 st 0 wfail.out wfail.err "$SLUICE" run -l debug wfail.yaml
grep -q "checkpoint 3: cannot create .*No space left on device (SLUICE_FAULT); the job goes on" wfail.err ||
  { cat wfail.err >&3; fail "wfail: checkpoint 3 did not fail as injected"; }
grep -q "checkpoint 4 complete" wfail.err || { cat wfail.err >&3; fail "wfail: no checkpoint after the failed one"; }
verify wfail
echo "  $(cat wfail.verify)"

echo "kafka_exactly_once: killed around the commit of checkpoint 3"
# killed_at NAME FAULT EXPECTED-LOG: killed at FAULT, run again, the restart
# logs EXPECTED-LOG, and read_committed shows the records exactly once.
killed_at() {
  job "$1" "$BS"
  set +e
  SLUICE_FAULT=$2 "$SLUICE" run "$1.yaml" > "$1.out" 2> "$1.err"
  local rc=$?
  set -e
  [ "$rc" -eq 137 ] || { cat "$1.err" >&3; fail "$1: expected a kill at $2, got $rc"; }
  st 0 "$1.out2" "$1.err2" "$SLUICE" run "$1.yaml"
  grep -q "$3" "$1.err2" || { cat "$1.err2" >&3; fail "$1: the restart did not log '$3'"; }
  verify "$1"
}
killed_at f1 manifest:3 "checkpoint 3 was written but not marked complete; node 'k' says it did not take effect"
killed_at f2 decided:3 "node 'k' says it took effect: resuming from it"

echo "kafka_exactly_once: bad configurations"
# refused NAME EXTRA-CONFIG TEXT: the job is refused at start, saying TEXT
refused() {
  job "$1" "$BS" "$2"
  st 1 "$1.out" "$1.err" "$SLUICE" run "$1.yaml"
  grep -qF -- "$3" "$1.err" || { cat "$1.err" >&3; fail "$1: the error does not say '$3'"; }
}
refused badto "librdkafka: { transaction.timeout.ms: 250 }" \
  "librdkafka.transaction.timeout.ms (250 ms) must be at least three times the checkpoint interval (100 ms)"
refused badmto "librdkafka: { message.timeout.ms: 120000 }" \
  'message.timeout.ms` must be set <= `transaction.timeout.ms`'
refused badbuf "commit_buffer_bytes: -5" "config 'commit_buffer_bytes': expected 0 or more, got -5"
job two "$BS"
cat >> two.yaml << YAML
  k2: { use: kafka_sink, from: gen, config: { brokers: "$BS", topic: two, delivery: exactly_once, transactional_id: other } }
YAML
st 1 b2.out b2.err "$SLUICE" run two.yaml
grep -qE "node '(k|k2)' already writes exactly once in this job" b2.err || { cat b2.err >&3; fail "two nodes: no clear error"; }
# A record the producer refuses (larger than message.max.bytes) fails the
# job; it is never dropped from a transaction that then commits. With a
# queue of one message most records go through the stash, where the refusal
# comes on the stash's thread.
awk 'BEGIN { for (i = 1; i <= 300; i++) { if (i == 200) { s = ""; for (j = 0; j < 300; j++) s = s "0123456789"; print s } else print "line " i } }' > big.txt
cat > big.yaml << YAML
name: big
settings:
  checkpoints: { interval: 100ms, dir: ./ckpt-big }
nodes:
  src: { use: file_source, config: { path: big.txt } }
  k: { use: kafka_sink, from: src, config: { brokers: "$BS", topic: clean, delivery: exactly_once, transactional_id: sluice.clean, librdkafka: { message.max.bytes: 2000, queue.buffering.max.messages: 1 } } }
YAML
st 1 b6.out b6.err "$SLUICE" run big.yaml
grep -q "kafka_sink: .*cannot queue a message: .*too large" b6.err ||
  { cat b6.err >&3; fail "a record larger than message.max.bytes: the job did not fail saying so"; }
sed '/checkpoints:/d' clean.yaml > nockpt.yaml
st 1 b3.out b3.err "$SLUICE" run nockpt.yaml
grep -q "delivery: exactly_once needs checkpoints" b3.err || { cat b3.err >&3; fail "no checkpoints: no clear error"; }

if [ -n "${SLUICE_TEST_KAFKA:-}" ]; then
  echo "kafka_exactly_once: on the real broker $SLUICE_TEST_KAFKA (read_committed)"
  run_id=$(date +%s)
  job "real$run_id" "$SLUICE_TEST_KAFKA"
  st 0 real.out real.err "$SLUICE" run "real$run_id.yaml"
  verify "real$run_id" "$SLUICE_TEST_KAFKA"
  trials "$SLUICE_TEST_KAFKA" "realtrial$run_id-"
  echo "kafka_exactly_once: a zombie instance is fenced (real broker)"
  zombie "$SLUICE_TEST_KAFKA" "realzombie$run_id"
else
  echo "kafka_exactly_once: SKIPPED on a real broker: read_committed checks and the fencing of a zombie (set SLUICE_TEST_KAFKA=host:port to run them)"
fi
echo "kafka_exactly_once: ok"
