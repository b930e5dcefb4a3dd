#!/usr/bin/env bash
# e2e: event time, watermarks and timers through the real sluice binary, with
# the test plugin tests/plugins/timers.c (bucket_count: a count per key and
# 1 s bucket of event time, emitted by one event-time timer per key and
# bucket; the plugin itself fails the job if a timer fires before the
# watermark reached it, out of order, or under another key, or if the
# watermark goes back).
#
#  1. Timestamps from a JSON field in three formats (epoch ms, epoch s with a
#     fraction, RFC 3339 with an offset), records out of order within
#     max_out_of_order: the counts equal awk's, with parallelism 1 and 2, and
#     with timers deleted and set again. Watermarks arrive during the run
#     (many on_watermark calls), not only at the end.
#  2. A record without a valid timestamp follows the source's on_error:
#     skip (counted), dead_letter (the record on `errors` with the reason),
#     fail (the message names the node, the field and the record offset).
#  3. Timers are checkpointed: a job killed with timers pending resumes and
#     its output equals an uninterrupted run's, on the memory and RocksDB
#     backends, and rescaled 2 -> 3 (timers follow their keys).
#  4. Idleness: a job reading an open but silent stdin and a generator only
#     makes progress with idle_timeout on the silent source; without it the
#     watermark is held back and nothing fires before the end.
#  5. Processing-time timers fire (not before their time) while the job runs.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
P="$SLUICE_TEST_PLUGIN_DIR/timers.so"

has() { grep -qF -- "$2" "$1" || { sed 's/^/    | /' "$1" >&3; fail "$1 does not say: $2"; }; }

# ------------------------------------------------------ 1. formats, counts
# gen_input N INPUT REF: N records, 10 ms apart, each moved back by up to
# 1.5 s (disorder within max_out_of_order: 2s, so none is late); 7 keys; and
# the counts per key and 1 s bucket they must give.
gen_input() {
  awk -v n="$1" -v ref="$3" 'BEGIN {
    srand(11)
    for (i = 0; i < n; i++) {
      ts = 1700000000000 + i * 10 - int(rand() * 1500)
      k = "u" int(rand() * 7)
      s = int(ts / 1000); ms = ts - s * 1000
      # RFC 3339 at +01:00: the wall time one hour ahead of UTC.
      printf "{\"k\":\"%s\",\"ms\":%.0f,\"s\":%d.%03d,\"iso\":\"%s.%03d+01:00\"}\n", k, ts, s, ms,
        strftime("%Y-%m-%dT%H:%M:%S", s + 3600, 1), ms
      end = sprintf("%.0f", int(ts / 1000) * 1000 + 999)
      c[k " " end]++
    }
    for (x in c) { split(x, a, " "); print "k=" a[1] " end=" a[2] " n=" c[x] > ref }
  }' > "$2"
  sort -o "$3" "$3"
}
gen_input 30000 input.jsonl ref.txt

run_counts() { # NAME FIELD FORMAT PARALLELISM [EXTRA CONFIG]
  cat > "$1.yaml" <<EOF
name: $1
settings: { workers: 2 }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: $2, format: $3, max_out_of_order: 2s }
  cnt: { use: "$P:bucket_count", from: src, key_by: k, parallelism: $4, config: { bucket: 1s ${5:-} } }
  out: { use: file_sink, from: cnt, config: { path: $1.out } }
EOF
  st 0 /dev/null "$1.err" "$SLUICE" run "$1.yaml"
  cat "$1".out* | sort > "$1.got"
  cmp -s "$1.got" ref.txt || fail "$1: counts differ from awk's: $(diff "$1.got" ref.txt | head -5)"
}
run_counts ms ms epoch_ms 1
run_counts s s epoch_s 2
run_counts iso iso rfc3339 2 ", delete_every: 3"
n=$(awk '/counter watermarks/ { s += $4 } END { print s + 0 }' ms.err)
[ "$n" -gt 10 ] || { cat ms.err >&3; fail "only $n watermarks reached the operator: they should arrive during the run"; }
late=$(awk '/counter late/ { s += $4 } END { print s + 0 }' s.err)
[ "$late" -eq 0 ] || fail "$late records were late although the disorder is within max_out_of_order"
echo "counts per key and event-time bucket equal awk's: epoch_ms, epoch_s, rfc3339; p=1 and p=2; $n watermarks"

# ------------------------------------------------ 2. bad timestamps, on_error
{
  echo '{"k":"a","ms":1700000000000}'
  echo '{"k":"a"}'
  echo '{"k":"a","ms":"soon"}'
  echo 'not json'
  echo '{"k":"a","ms":1700000000500}'
} > bad.jsonl
bad_dag() { # ON_ERROR
  cat > "bad_$1.yaml" <<EOF
name: bad_$1
nodes:
  src:
    use: file_source
    config: { path: bad.jsonl }
    on_error: $1
    event_time: { field: ms }
  cnt: { use: "$P:bucket_count", from: src, key_by: k, config: { bucket: 1s } }
  out: { use: file_sink, from: cnt, config: { path: bad_$1.out } }
EOF
  [ "$1" != dead_letter ] || cat >> "bad_$1.yaml" <<EOF
  dead: { use: file_sink, from: src.errors, config: { path: dead.out, format: envelope } }
EOF
}
bad_dag skip
st 0 /dev/null bad_skip.err "$SLUICE" run bad_skip.yaml
has bad_skip.out "k=a end=1700000000999 n=2"
row bad_skip.err src 1 0 2 3 0
bad_dag dead_letter
st 0 /dev/null bad_dl.err "$SLUICE" run bad_dead_letter.yaml
has bad_dead_letter.out "k=a end=1700000000999 n=2"
[ "$(wc -l < dead.out)" -eq 3 ] || fail "dead_letter: $(wc -l < dead.out) records on errors, expected 3"
has dead.out "event_time: the record has no field 'ms'"
has dead.out "event_time: field 'ms':"
has dead.out "event_time: the value is not a JSON object"
bad_dag fail
st 1 /dev/null bad_fail.err "$SLUICE" run bad_fail.yaml
has bad_fail.err "node 'src'"
has bad_fail.err "record at offset 2: event_time: the record has no field 'ms'"
echo "records without a valid timestamp: skip, dead_letter and fail as the source's on_error says"

# ------------------------------------------------ 3. timers in checkpoints
# max_out_of_order is 1000 s: no timer fires before the end, so every
# checkpoint holds all the timers set so far. 300000 records, so that even an
# optimised build is still running at its fourth checkpoint.
ckpt_dag() { # FILE BACKEND PARALLELISM
  cat > "$1" <<EOF
name: ckpt
settings: { workers: 2, batch_size: 64, state: { backend: $2 }, checkpoints: { interval: 30ms, dir: ckpt } }
nodes:
  src:
    use: file_source
    config: { path: big.jsonl }
    event_time: { field: ms, max_out_of_order: 1000s }
  cnt: { use: "$P:bucket_count", from: src, key_by: k, parallelism: $3, config: { bucket: 1s } }
  out: { use: file_sink, from: cnt, config: { path: ckpt.out } }
EOF
}
gen_input 300000 big.jsonl big_ref.txt
for backend in memory rocksdb; do
  for par in 2 3; do
    rm -rf ckpt ckpt.out*
    ckpt_dag crash.yaml $backend 2
    set +e
    SLUICE_FAULT=rename:4 timeout -k 5 120 "$SLUICE" run -q crash.yaml > /dev/null 2> crash.err
    rc=$?
    set -e
    [ $rc -eq 137 ] || { cat crash.err >&3; fail "$backend: the job was not killed at checkpoint 4 (exit $rc)"; }
    ckpt_dag resume.yaml $backend $par
    st 0 /dev/null resume.err "$SLUICE" run resume.yaml
    has resume.err "resuming from checkpoint 4"
    cat ckpt.out* | sort > ckpt.got
    cmp -s ckpt.got big_ref.txt || fail "$backend, resumed with parallelism $par: output differs: $(diff ckpt.got big_ref.txt | head -5)"
    echo "$backend: killed with timers pending, resumed with parallelism $par: exact"
  done
done

# ------------------------------------------------------------- 4. idleness
# `quiet` reads a stdin that stays open and silent; `gen` produces 10 s of
# event time per second of wall time.
idle_dag() { # FILE IDLE_TIMEOUT
  cat > "$1" <<EOF
name: idle
settings: { workers: 2 }
nodes:
  quiet: { use: stdin_source, event_time: { field: ts, idle_timeout: $2 } }
  gen:
    use: generator
    config: { count: 0, rate: 1000, users: 5 }
    event_time: { timestamp: source }
  cnt: { use: "$P:bucket_count", from: [quiet, gen], key_by: \$key, config: { bucket: 1s } }
  out: { use: stdout_sink, from: cnt }
EOF
}
idle_run() { # DAG OUT: run 3 s with a silent stdin; OUT.during = lines before the stop
  rm -f fifo && mkfifo fifo
  (sleep 30 > fifo) &
  local holder=$!
  "$SLUICE" run -q "$1" < fifo > "$2" 2> "$2.err" &
  local job=$!
  sleep 3
  wc -l < "$2" > "$2.during"
  kill -INT $job
  wait $job || true
  kill $holder 2> /dev/null || true
  wait $holder 2> /dev/null || true
}
idle_dag idle.yaml 200ms
idle_run idle.yaml idle.out
during=$(cat idle.out.during)
[ "$during" -gt 20 ] || { cat idle.out.err >&3; fail "idle_timeout: only $during results during the run: the silent source held the watermark back"; }
idle_dag held.yaml 0
idle_run held.yaml held.out
[ "$(cat held.out.during)" -eq 0 ] || fail "without idle_timeout, results came out although a source was silent"
[ "$(wc -l < held.out)" -gt 20 ] || fail "without idle_timeout: the final watermark did not fire the timers at the stop"
echo "idle source: $during results during 3 s with idle_timeout, none without (all at the stop)"

# --------------------------------------------- 5. processing-time timers
cat > proc.yaml <<EOF
name: proc
settings: { workers: 2 }
nodes:
  gen: { use: generator, config: { count: 0, rate: 500, users: 4 } }
  cnt: { use: "$P:bucket_count", from: gen, key_by: \$key, config: { bucket: 1s, proc_after: 300ms } }
  out: { use: stdout_sink, from: cnt }
EOF
"$SLUICE" run -q proc.yaml > proc.out 2> proc.err &
job=$!
sleep 2
kill -INT $job
wait $job || { cat proc.err >&3; fail "processing-time timers: the job failed"; }
n=$(grep -c '^proc k=' proc.out || true)
[ "$n" -eq 4 ] || { head proc.out >&3; fail "expected one processing-time result per key (4), got $n"; }
echo "processing-time timers: one per key, none early"

echo "event_time: all checks passed"
