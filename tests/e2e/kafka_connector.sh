#!/usr/bin/env bash
# e2e: kafka_source and kafka_sink against librdkafka's mock cluster
# (`sluice kafka-dev`, started here on 127.0.0.1):
#  1. generator -> kafka_sink, then kafka_source (bounded, 2 tasks) ->
#     file_sink: the values read back equal the generator's, keys and
#     timestamps kept;
#  2. headers set by a Lua operator go through a second topic and back;
#  3. a job killed right after checkpoint 3 and run again resumes from the
#     checkpointed offsets: with the transactional file_sink, the output is
#     exactly the input (no duplicate, no loss);
#  3b. the same kill with kafka_sink (at least once): no record missing;
#  4. bad input: a bad topic name, unreachable brokers, a wrong librdkafka key,
#     exactly_once without checkpoints, a checkpoint of another topic, a record
#     without its topic_field (dead-lettered), a nested config not scalar;
#  4b. the topic from a header (topic_header): records without it are
#     dead-lettered with the reason; topic and topic_header together refused;
#  4c. `format: json`: values that are not JSON are dead-lettered with their
#      partition, offset and reason, or fail the job with on_error: fail;
#  5. `brokers: embedded`: a DAG writing and reading a topic of a mock
#     cluster inside the process stops cleanly on SIGINT;
#  6. backpressure: a sink that stalls makes the source pause its partition
#     and resume it; every record arrives once, in offset order;
#  7. a producer queue of 20 messages: kafka_sink keeps what does not fit
#     and pauses its input instead of waiting on the worker; at least once
#     and exactly once, every record arrives once.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

"$SLUICE" kafka-dev --topic clicks:4 --topic tagged:3 --topic big:4 --topic alo:8 --topic fmt:1 --topic bp:1 --topic qf:4 --topic qfx:4 --topic qfx.commits:1 --write boot.txt > kd.out 2> kd.err &
kd=$!
trap 'kill -9 $kd 2> /dev/null || true' EXIT
for _ in $(seq 100); do [ -s boot.txt ] && break; sleep 0.1; done
[ -s boot.txt ] || fail "kafka-dev wrote no address"
BS=$(cat boot.txt)

# ---- 1. a round trip
generated ref 5000 7
cat > produce.yaml << EOF
nodes:
  gen: { use: generator, config: { count: 5000 } }
  k: { use: kafka_sink, from: gen, config: { brokers: "$BS", topic: clicks, librdkafka: { linger.ms: 2 } } }
EOF
st 0 p.out p.err "$SLUICE" run produce.yaml
row p.err k 1 5000 0 0 0
cat > consume.yaml << EOF
nodes:
  src: { use: kafka_source, parallelism: 2, config: { brokers: "$BS", topic: clicks, bounded: true } }
  out: { use: file_sink, from: src, config: { path: got.jsonl, format: envelope } }
EOF
st 0 c.out c.err "$SLUICE" run consume.yaml
row c.err src 2 0 5000 0 0
# key = the generator's user_id, ts = the value's ts (the Kafka timestamp)
n=$(grep -cE '^\{"key":"(u[0-9]+)","value":\{"ts":([0-9]+),"user_id":"\1".*\},"ts":\2,"headers":\{\}\}$' got.jsonl || true)
[ "$n" -eq 5000 ] || { head -3 got.jsonl >&3; fail "round trip: $n of 5000 records kept key and ts"; }
sed -E 's/^\{"key":"[^"]*","value":(.*),"ts":[0-9]+,"headers":\{\}\}$/\1/' got.jsonl | sort > got.sorted
cmp -s got.sorted ref.sorted || fail "round trip: values differ from the generator's ($(comm -3 got.sorted ref.sorted | wc -l) lines)"

# ---- 2. headers, through a Lua operator and a second topic
cat > tag.lua << 'EOF'
function process(rec, ctx)
  ctx:emit(rec.value, rec.key, rec.ts, { trace = "t-" .. rec.key, src = "sluice" })
end
EOF
cat > tag.yaml << EOF
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: clicks, bounded: true, group_id: tagger } }
  tag: { use: lua:tag.lua, from: src }
  k: { use: kafka_sink, from: tag, config: { brokers: "$BS", topic: tagged } }
EOF
st 0 t.out t.err "$SLUICE" run tag.yaml
cat > tagged.yaml << EOF
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: tagged, bounded: true } }
  out: { use: file_sink, from: src, config: { path: tagged.jsonl, format: envelope } }
EOF
st 0 tg.out tg.err "$SLUICE" run tagged.yaml
n=$(grep -cE '^\{"key":"(u[0-9]+)",.*"headers":\{("trace":"t-\1","src":"sluice"|"src":"sluice","trace":"t-\1")\}\}$' tagged.jsonl || true)
[ "$n" -eq 5000 ] || { head -2 tagged.jsonl >&3; fail "headers: $n of 5000 records carry both headers"; }

# ---- 3. recovery from checkpointed offsets
cat > big.yaml << EOF
nodes:
  gen: { use: generator, config: { count: 60000 } }
  k: { use: kafka_sink, from: gen, config: { brokers: "$BS", topic: big } }
EOF
st 0 b.out b.err "$SLUICE" run big.yaml
cat > bigref.yaml << EOF
nodes:
  gen: { use: generator, config: { count: 60000 } }
  out: { use: file_sink, from: gen, config: { path: bigref.txt } }
EOF
st 0 br.out br.err "$SLUICE" run bigref.yaml
sort bigref.txt > reference.txt
cat > slow.lua << 'EOF'
function process(rec, ctx)
  local x = 0
  for i = 1, 3000 do x = x + i end
  ctx:emit(rec.value)
end
EOF
cat > recover.yaml << EOF
settings:
  checkpoints: { interval: 100ms, dir: ckpt }
nodes:
  src: { use: kafka_source, parallelism: 2,
         config: { brokers: "$BS", topic: big, bounded: true, use_group_offsets: false } }
  slow: { use: lua:slow.lua, from: src }
  out: { use: file_sink, from: slow, config: { path: out.txt } }
EOF
set +e
SLUICE_FAULT=rename:3 timeout -k 5 120 "$SLUICE" run -q recover.yaml > k.out 2> k.err
rc=$?
set -e
[ $rc -eq 137 ] || { sed 's/^/    | /' k.err >&3; fail "recovery: expected a SIGKILL after checkpoint 3, got $rc"; }
[ "$(completed_checkpoints)" -ge 3 ] || fail "recovery: checkpoint 3 is not complete"
lines_at_kill=$(wc -l < out.txt)
[ "$lines_at_kill" -lt 60000 ] || fail "recovery: the job had read everything before the kill"
st 0 k2.out k2.err "$SLUICE" run recover.yaml
grep -q "resum\|restor" k2.err || true
check_output "recovery after a kill at checkpoint 3"

# (the mock keeps only about 30,000 messages per partition and deletes older
# ones: topics here have partitions enough for what they receive)
# ---- 3b. kafka_sink at least once: killed after checkpoint 3 and run again,
# every record is in the topic (some twice, none missing). linger.ms 300
# keeps messages in the producer for a while: a checkpoint that did not wait
# for their delivery would complete ahead of them, and they would be lost.
sed 's/3000/12000/' slow.lua > slower.lua # ~3 s for the job: time for 3 checkpoints
cat > alo.yaml << EOF
settings:
  checkpoints: { interval: 100ms, dir: ckpt_alo }
nodes:
  gen: { use: generator, config: { count: 60000 } }
  slow: { use: lua:slower.lua, from: gen }
  k: { use: kafka_sink, from: slow, config: { brokers: "$BS", topic: alo, librdkafka: { linger.ms: 300 } } }
EOF
set +e
SLUICE_FAULT=rename:3 timeout -k 5 120 "$SLUICE" run -q alo.yaml > a.out 2> a.err
rc=$?
set -e
[ $rc -eq 137 ] || { sed 's/^/    | /' a.err >&3; fail "at least once: expected a SIGKILL after checkpoint 3, got $rc"; }
st 0 a2.out a2.err "$SLUICE" run alo.yaml
cat > alo_read.yaml << EOF
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: alo, bounded: true } }
  out: { use: file_sink, from: src, config: { path: alo.txt } }
EOF
st 0 ar.out ar.err "$SLUICE" run alo_read.yaml
sort -u alo.txt > alo.sorted
cmp -s alo.sorted reference.txt || fail "at least once: $(comm -13 alo.sorted reference.txt | wc -l) records missing from the topic"
[ "$(wc -l < alo.txt)" -ge 60000 ] || fail "at least once: fewer messages than records"

# ---- 4. bad input
bad() { # bad LABEL EXPECTED-TEXT YAML [STATUS]: EXPECTED-TEXT is an extended regexp
  printf '%s\n' "$3" > bad.yaml
  st "${4:-1}" bad.out bad.err "$SLUICE" run bad.yaml
  grep -qE -- "$2" bad.err || { sed 's/^/    | /' bad.err >&3; fail "$1: expected '$2'"; }
}
# (an unknown topic cannot be tested here: the mock creates topics on demand)
bad "topic name" "kafka_source: topic 'no such': a name has only letters, digits, '.', '_' and '-'" "nodes:
  src: { use: kafka_source, config: { brokers: \"$BS\", topic: no such, bounded: true } }
  out: { use: null_sink, from: src }"
bad "unreachable brokers" "kafka_source: cannot get the metadata of topic 'clicks' within 1000 ms" "nodes:
  src: { use: kafka_source, config: { brokers: \"127.0.0.1:1\", topic: clicks, open_timeout: 1s } }
  out: { use: null_sink, from: src }"
bad "librdkafka key" "config 'librdkafka' key no\\.such\\.setting: No such configuration property" "nodes:
  src: { use: kafka_source, config: { brokers: \"$BS\", topic: clicks, librdkafka: { no.such.setting: 1 } } }
  out: { use: null_sink, from: src }"
bad "exactly_once" "kafka_sink: delivery: exactly_once needs checkpoints" "nodes:
  gen: { use: generator, config: { count: 1 } }
  k: { use: kafka_sink, from: gen, config: { brokers: \"$BS\", topic: clicks, delivery: exactly_once } }"
bad "nested config" "^bad.yaml:2:[0-9]+: error: node 'src': config 'librdkafka.x' must be a scalar value, got a list" "nodes:
  src: { use: kafka_source, config: { brokers: \"$BS\", librdkafka: { x: [1] }, topic: clicks } }
  out: { use: null_sink, from: src }" 2
# a checkpoint of topic big restored into a source of topic clicks
sed 's/topic: big/topic: clicks/' recover.yaml > moved.yaml
st 1 mv.out mv.err "$SLUICE" run moved.yaml
grep -qF "holds offsets of topic 'big', not 'clicks'" mv.err || { cat mv.err >&3; fail "moved topic: no clear error"; }
# poison record: no topic_field
cat > poison.yaml << EOF
nodes:
  gen: { use: generator, config: { count: 10 } }
  k: { use: kafka_sink, from: gen, on_error: dead_letter, config: { brokers: "$BS", topic_field: dest } }
  dl: { use: file_sink, from: k.errors, config: { path: dl.jsonl, format: envelope } }
EOF
st 0 po.out po.err "$SLUICE" run poison.yaml
row po.err k 1 10 0 0 10
grep -qF "topic_field 'dest' is missing from the record" dl.jsonl || { head -2 dl.jsonl >&3; fail "poison: no reason in the dead letters"; }
# the topic from a header: set by a Lua operator for even keys only; the
# others are dead-lettered with the reason
cat > route.lua << 'LUA'
function process(rec, ctx)
  local n = tonumber(string.match(rec.key, "%d+"))
  if n % 2 == 0 then ctx:emit(rec.value, rec.key, rec.ts, { dest = "tagged" })
  else ctx:emit(rec.value, rec.key, rec.ts) end
end
LUA
cat > hdr.yaml << YAML
nodes:
  gen: { use: generator, config: { count: 200, seed: 11 } }
  route: { use: lua:route.lua, from: gen }
  k: { use: kafka_sink, from: route, on_error: dead_letter, config: { brokers: "$BS", topic_header: dest } }
  dl: { use: file_sink, from: k.errors, config: { path: hdl.jsonl, format: envelope } }
YAML
st 0 h.out h.err "$SLUICE" run hdr.yaml
odd=$(wc -l < hdl.jsonl)
[ "$odd" -gt 0 ] && [ "$odd" -lt 200 ] || fail "topic_header: $odd of 200 records dead-lettered"
row h.err k 1 200 0 0 "$odd"
grep -qF "topic_header 'dest' is missing: the record has no headers" hdl.jsonl || { head -2 hdl.jsonl >&3; fail "topic_header: no reason in the dead letters"; }
bad "two topics" "kafka_sink: set exactly one of 'topic', 'topic_field' and 'topic_header'" "nodes:
  gen: { use: generator, config: { count: 1 } }
  k: { use: kafka_sink, from: gen, config: { brokers: \"$BS\", topic: clicks, topic_header: dest } }"

# ---- 4c. format: json: values that are not one JSON text are poison records,
# dead-lettered with their partition, offset and the reason
printf '%s\n' '{"a":1}' 'not json' '[1,2]' '{"b":' '"x"' > fmt.in
cat > fmt-produce.yaml << EOF
nodes:
  src: { use: file_source, config: { path: fmt.in } }
  k: { use: kafka_sink, from: src, config: { brokers: "$BS", topic: fmt } }
EOF
st 0 fp.out fp.err "$SLUICE" run fmt-produce.yaml
cat > fmt.yaml << EOF
nodes:
  src: { use: kafka_source, on_error: dead_letter, config: { brokers: "$BS", topic: fmt, bounded: true, format: json } }
  out: { use: file_sink, from: src, config: { path: fmt.txt } }
  dl: { use: file_sink, from: src.errors, config: { path: fmt-dl.jsonl, format: envelope } }
EOF
st 0 fm.out fm.err "$SLUICE" run fmt.yaml
printf '%s\n' '{"a":1}' '[1,2]' '"x"' > fmt.want
cmp -s fmt.want fmt.txt || { cat fmt.txt >&3; fail "format json: the valid values did not all pass, in order"; }
[ "$(wc -l < fmt-dl.jsonl)" -eq 2 ] || { cat fmt-dl.jsonl >&3; fail "format json: expected 2 dead letters"; }
grep -qF "partition 0 offset 1: the value is not JSON (byte 0: a value expected)" fmt-dl.jsonl &&
  grep -qF "partition 0 offset 3: the value is not JSON (byte 5: unexpected end)" fmt-dl.jsonl ||
  { cat fmt-dl.jsonl >&3; fail "format json: the dead letters do not say where and why"; }
# on_error: fail (the default) stops the job naming the record
sed 's/on_error: dead_letter, //; /^  dl:/d' fmt.yaml > fmt-fail.yaml
st 1 ff.out ff.err "$SLUICE" run fmt-fail.yaml
grep -qF "record at offset 1: partition 0 offset 1: the value is not JSON" ff.err ||
  { cat ff.err >&3; fail "format json, on_error fail: no clear error"; }
sed 's/format: json/format: xml/' fmt.yaml > fmt-bad.yaml
st 1 fb.out fb.err "$SLUICE" run fmt-bad.yaml
grep -qF "config 'format': expected raw or json, got 'xml'" fb.err || { cat fb.err >&3; fail "format xml: no clear error"; }

# ---- 5. brokers: embedded, stopped by SIGINT
cat > emb.yaml << 'EOF'
nodes:
  gen: { use: generator, config: { count: 0, rate: 5000 } }
  k: { use: kafka_sink, from: gen, config: { brokers: embedded, topic: loop } }
  src: { use: kafka_source, config: { brokers: embedded, topic: loop } }
  out: { use: file_sink, from: src, config: { path: emb.txt } }
EOF
"$SLUICE" run emb.yaml > emb.out 2> emb.err &
pid=$!
for _ in $(seq 100); do [ -s emb.txt ] && [ "$(wc -l < emb.txt)" -ge 1000 ] && break; sleep 0.1; done
kill -INT "$pid"
set +e
timeout 30 tail --pid="$pid" -f /dev/null
wait "$pid"
rc=$?
set -e
[ $rc -eq 0 ] || { sed 's/^/    | /' emb.err >&3; fail "embedded: exit $rc after SIGINT"; }
[ "$(wc -l < emb.txt)" -ge 1000 ] || fail "embedded: only $(wc -l < emb.txt) records came back through the topic"

# ---- 6. backpressure: stalls pause the partition, nothing lost or repeated
# (librdkafka drops what it prefetched on pause and fetches again on resume)
cat > bp-produce.yaml << EOF
nodes:
  gen: { use: generator, config: { count: 30000 } }
  k: { use: kafka_sink, from: gen, config: { brokers: "$BS", topic: bp } }
EOF
st 0 bpp.out bpp.err "$SLUICE" run bp-produce.yaml
# (workers: 2: the stall must be seen from the source's own worker)
cat > bp.yaml << EOF
settings: { workers: 2, channel_capacity: 2, batch_size: 64 }
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: bp, bounded: true } }
  sink:
    use: "$SLUICE_TEST_PLUGIN_DIR/slow.so:slow_sink"
    from: src
    partition: rebalance
    config: { delay_us: 1, stall_every: 5000, stall_ms: 300, report: bp-report.txt }
EOF
st 0 bp.out bp.err "$SLUICE" run bp.yaml
# offsets 0..29999 in order, each once (the sink checks each follows the last)
grep -q "consumed=30000 .*in_order=1" bp-report.txt || fail "backpressure: $(cat bp-report.txt)"
# stalls at 5000 ... 25000 find the source ahead of the sink, held back
holds=$(holds bp.err)
[ "$holds" -ge 4 ] || { cat bp.err >&3; fail "backpressure: the source was held back $holds times"; }

# ---- 7. the producer's queue full: records kept, input paused, none lost
generated qref 20000 7
for mode in at_least_once exactly_once; do
  t=qf
  [ $mode = exactly_once ] && t=qfx
  cat > q-$mode.yaml << EOF
settings: { checkpoints: { interval: 200ms, dir: ./ckpt-q-$mode } }
nodes:
  gen: { use: generator, config: { count: 20000, seed: 7 } }
  k:
    use: kafka_sink
    from: gen
    parallelism: 2
    config:
      brokers: "$BS"
      topic: $t
      delivery: $mode
      commit_topic: qfx.commits
      librdkafka: { queue.buffering.max.messages: 20, linger.ms: 1 }
EOF
  st 0 q.out "q-$mode.err" "$SLUICE" run "q-$mode.yaml"
  full=$(counter "q-$mode.err" queue_full)
  [ "${full:-0}" -gt 0 ] || { cat "q-$mode.err" >&3; fail "queue full ($mode): the queue never filled up"; }
  cat > q-read.yaml << EOF
nodes:
  src: { use: kafka_source, config: { brokers: "$BS", topic: $t, bounded: true } }
  out: { use: file_sink, from: src, config: { path: q-$mode.txt } }
EOF
  st 0 qrd.out qrd.err "$SLUICE" run q-read.yaml
  sort "q-$mode.txt" > "q-$mode.sorted"
  cmp -s qref.sorted "q-$mode.sorted" ||
    fail "queue full ($mode): $(comm -23 qref.sorted "q-$mode.sorted" | wc -l) missing, $(($(wc -l < "q-$mode.sorted") - $(sort -u "q-$mode.sorted" | wc -l))) twice"
  echo "  queue full ($mode): input held $full times, 20000 records once each"
done
echo "kafka_connector: ok"
