#!/usr/bin/env bash
# e2e: kafka_source in a consumer group (`subscribe: true`) on librdkafka's
# mock cluster (`sluice kafka-dev`, started here on 127.0.0.1):
#
#   producers: generator (20000 records in three phases, 2500/s) ->
#              kafka_sink, topic grp:8
#   jobs a and b: kafka_source (2 tasks, subscribe, group g) -> file_sink
#
#  1. a starts alone and takes the 8 partitions (phase 1 is written); b
#     joins: the group rebalances, both read phase 2; a is killed (SIGKILL)
#     while phase 2 is written: after its session expires b takes
#     everything; a starts again from its checkpoint and rejoins, and both
#     read phase 3. Then a and b stop on SIGTERM. Every record of the
#     producer is in a's or b's output: rebalances and the kill lose nothing.
#     Records read twice are counted and shown, not failed: librdkafka's mock
#     refuses offset commits while a group rebalances (Kafka takes them), so
#     a revoked partition's next reader starts from the last commit before
#     the rebalance; a kill does the same on any broker.
#  2. c (one task) reads the topic in group g2 and stops (the consumer-lag
#     gauge is 0: everything was read); 1000 more records are written; c
#     resumes from its checkpoint in group g3, which has no committed
#     offsets: the start brings g3's offsets up to the checkpoint's, so c
#     reads only the 1000 new records (group offsets that missed a
#     checkpoint's commit, as after a crash, are caught up the same way).
#  3. backpressure in a group: a sink that stalls makes the source pause its
#     group-assigned partition, and resume it; every offset once, in order.
#  4. bad configurations: subscribe with bounded, with a start time, with
#     use_group_offsets false, with max.poll.interval.ms under two checkpoint
#     intervals.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

source "$(dirname "$0")/kafka_lib.sh"
KD_OPTS="--topic grp:8 --topic bad:1 --topic bpg:1" kafka_dev_start
trap 'kill -9 $KD_PID $(jobs -p) 2> /dev/null || true' EXIT

# phase NAME COUNT SEED START_TS: the generator's records (distinct per
# START_TS): NAME.sorted holds them, NAME.yaml writes them to the topic at
# 2500/s
phase() {
  generated "$@"
  cat > "$1.yaml" << EOF
nodes:
  gen: { use: generator, config: { count: $2, rate: 2500, seed: $3, start_ts: $4 } }
  k: { use: kafka_sink, from: gen, config: { brokers: "$BS", topic: grp } }
EOF
}
# Each phase is written while the members it is about hold partitions, so
# every member has something to read however slow the machine is.
phase p1 6000 11 1700000000000
phase p2 7000 12 1710000000000
phase p3 7000 13 1720000000000
sort -m p1.sorted p2.sorted p3.sorted > ref.sorted

# member NAME: a job of the group writing NAME.txt
member() {
  cat > "$1.yaml" << EOF
name: $1
settings:
  workers: 2
  checkpoints: { interval: 200ms, dir: ./ckpt-$1 }
nodes:
  src:
    use: kafka_source
    parallelism: 2
    config:
      brokers: "$BS"
      topic: grp
      subscribe: true
      group_id: g
      librdkafka: { session.timeout.ms: 6000, heartbeat.interval.ms: 500 }
  out: { use: file_sink, from: src, config: { path: $1.txt } }
EOF
}
member a
member b

# wait_for PATTERN FILE SECONDS
wait_for() {
  for _ in $(seq $(($3 * 10))); do grep -q "$1" "$2" 2> /dev/null && return 0; sleep 0.1; done
  tail -5 "$2" >&3
  fail "no '$1' in $2 after $3 s"
}

# held FILE: how many partitions the tasks logging to FILE hold now, from
# their "the group gave this task K ... (now N)" and "gave up K ..." lines
held() {
  awk '
    match($0, /\[node [^]]*\]/) { t = substr($0, RSTART, RLENGTH) }
    /the group gave this task/ && match($0, /\(now [0-9]+\)/) { n[t] = substr($0, RSTART + 5, RLENGTH - 6) + 0 }
    /\] gave up [0-9]+ partition/ && match($0, /gave up [0-9]+/) { n[t] -= substr($0, RSTART + 8, RLENGTH - 8) + 0 }
    /lost [0-9]+ partitions/ { n[t] = 0 }
    END { s = 0; for (k in n) s += n[k]; print s }' "$1"
}

echo "kafka_group: a alone, b joins, a killed and restarted"
"$SLUICE" run -l info p1.yaml > p1.out 2> p1.err &
prod=$!
"$SLUICE" run -l info a.yaml > a.out 2> a.err &
a=$!
wait_for "the group gave this task" a.err 20
# b joins once a has committed some checkpoints to the group
for _ in $(seq 100); do [ -s a.txt ] && break; sleep 0.1; done
sleep 1
"$SLUICE" run -l info b.yaml > b.out 2> b.err &
b=$!
wait_for "the group gave this task" b.err 30
grep -q "the group takes .* away" a.err || fail "a: b joined but a gave nothing up"
wait $prod || fail "the producer failed: $(tail -3 p1.err)"
# a and b both read phase 2; a is killed while it is being written
"$SLUICE" run -l info p2.yaml > p2.out 2> p2.err &
prod=$!
sleep 1.5
kill -9 $a
wait $a 2> /dev/null || true
lines_a=$(wc -l < a.txt)
# b must now get a's partitions (a's session expires after 6 s): all 8
for _ in $(seq 300); do [ "$(held b.err)" -eq 8 ] && break; sleep 0.1; done
[ "$(held b.err)" -eq 8 ] || { tail -8 b.err >&3; fail "b holds $(held b.err) of the 8 partitions 30 s after a was killed"; }
wait $prod || fail "the producer failed: $(tail -3 p2.err)"
"$SLUICE" run -l info a.yaml > a2.out 2> a2.err &
a=$!
wait_for "the group gave this task" a2.err 30
"$SLUICE" run -l info p3.yaml > p3.out 2> p3.err &
prod=$!
wait $prod || fail "the producer failed: $(tail -3 p3.err)"
# everything read: stop both (SIGTERM: final checkpoint, clean exit)
for _ in $(seq 600); do
  [ "$(cat a.txt b.txt 2> /dev/null | sort -u | wc -l)" -ge 20000 ] && break
  sleep 0.1
done
kill -TERM $a $b
set +e
wait $a
rc_a=$?
wait $b
rc_b=$?
set -e
[ "$rc_a" -eq 0 ] || { tail -5 a2.err >&3; fail "a (restarted): exit $rc_a"; }
[ "$rc_b" -eq 0 ] || { tail -5 b.err >&3; fail "b: exit $rc_b"; }
cat a.txt b.txt | sort > got.sorted
sort -u got.sorted > got.uniq
missing=$(comm -23 ref.sorted got.uniq | wc -l)
extra=$(comm -13 ref.sorted got.uniq | wc -l)
dups=$(($(wc -l < got.sorted) - $(wc -l < got.uniq)))
echo "  a read $lines_a before the kill; a+b: $(wc -l < got.uniq) distinct records, $missing missing, $dups read twice"
[ "$missing" -eq 0 ] || fail "$missing records of the producer were read by neither a nor b"
[ "$extra" -eq 0 ] || fail "$extra records that the producer did not write"
[ -s a.txt ] && [ -s b.txt ] || fail "a or b read nothing: the partitions were not shared"

echo "kafka_group: a checkpoint ahead of the group's offsets"
# c (one task: one member, so no rebalance) reads the topic in group g2 and
# stops; it then resumes from its checkpoint in group g3, which has no
# offsets: the start brings g3 up to the checkpoint, so c reads only the
# 1000 records written since.
sed 's/^name: a/name: c/; s/ckpt-a/ckpt-c/; s/a.txt/c.txt/; s/group_id: g$/group_id: g2/; s/parallelism: 2/parallelism: 1/' a.yaml > c.yaml
distinct() { [ -f c.txt ] && sort -u c.txt | wc -l || echo 0; }
"$SLUICE" run -l info c.yaml > c.out 2> c.err &
c=$!
for _ in $(seq 300); do [ "$(distinct)" -ge 20000 ] && break; sleep 0.1; done
sleep 1.5 # the lag gauge is brought up to date once a second
kill -TERM $c
wait $c || { tail -5 c.err >&3; fail "c: exit $?"; }
grep -q "gauge consumer_lag = 0$" c.err || { cat c.err >&3; fail "c: no consumer_lag gauge at 0"; }
phase p4 1000 14 1730000000000
st 0 p4.out p4.err "$SLUICE" run p4.yaml
sed -i 's/group_id: g2$/group_id: g3/' c.yaml
"$SLUICE" run -l info c.yaml > c2.out 2> c2.err &
c=$!
for _ in $(seq 300); do [ "$(distinct)" -ge 21000 ] && break; sleep 0.1; done
sleep 1 # time for records that should not come
kill -TERM $c
wait $c || { tail -5 c2.err >&3; fail "c (group g3): exit $?"; }
grep -q "brought the group's offsets of 8 partitions up to the restored checkpoint" c2.err ||
  { cat c2.err >&3; fail "c: the group's offsets were not brought up to the checkpoint"; }
sort -m ref.sorted p4.sorted > ref12.sorted
sort -u c.txt > c.uniq
cmp -s ref12.sorted c.uniq || fail "c: $(comm -23 ref12.sorted c.uniq | wc -l) records missing"
row c2.err src 1 0 1000 0 0

echo "kafka_group: backpressure in a group"
# d (subscribe, group gbp) reads topic bpg:1 into a sink that stalls for
# 300 ms every 5000 records: the source pauses its group-assigned partition
# at each stall and resumes it; every offset comes once, in order.
cat > bpg-fill.yaml << EOF
nodes:
  gen: { use: generator, config: { count: 30000, seed: 21 } }
  k: { use: kafka_sink, from: gen, config: { brokers: "$BS", topic: bpg } }
EOF
st 0 bpgf.out bpgf.err "$SLUICE" run bpg-fill.yaml
cat > d.yaml << EOF
settings: { workers: 2, channel_capacity: 2, batch_size: 64, checkpoints: { interval: 1s, dir: ./ckpt-d } }
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: bpg, subscribe: true, group_id: gbp } }
  sink:
    use: "$SLUICE_TEST_PLUGIN_DIR/slow.so:slow_sink"
    from: src
    partition: rebalance
    config: { delay_us: 1, stall_every: 5000, stall_ms: 300, report: d-report.txt, progress: d-progress.txt }
EOF
"$SLUICE" run d.yaml > d.out 2> d.err &
d=$!
for _ in $(seq 600); do [ "$(cat d-progress.txt 2> /dev/null)" = 30000 ] && break; sleep 0.1; done
kill -TERM $d
wait $d || { tail -5 d.err >&3; fail "d (group gbp): exit $?"; }
grep -q "consumed=30000 .*in_order=1" d-report.txt || { cat d.err >&3; fail "d: $(cat d-report.txt)"; }
holds=$(holds d.err)
[ "$holds" -ge 4 ] || { cat d.err >&3; fail "d: the source was held back $holds times"; }
echo "  30000 records in order; held back $holds times"

echo "kafka_group: bad configurations"
# bad KEY: VALUE... -> must fail at open, naming the problem
bad() {
  local want=$1
  shift
  cat > bad.yaml << EOF
settings: { checkpoints: { interval: 1s, dir: ./ckpt-bad } }
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: bad, subscribe: true, $* } }
  out: { use: null_sink, from: src }
EOF
  st 1 bad.out bad.err "$SLUICE" run bad.yaml
  grep -q "$want" bad.err || { cat bad.err >&3; fail "subscribe with $*: no '$want'"; }
}
bad "needs a fixed set of partitions" "bounded: true"
bad "with 'subscribe: true' it is earliest or latest" "start: '1700000000000'"
bad "use_group_offsets: false' cannot be used" "use_group_offsets: false"
bad "max.poll.interval.ms (1500) must be at least twice" "librdkafka: { max.poll.interval.ms: 1500 }"
echo "kafka_group: ok"
