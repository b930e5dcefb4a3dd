#!/usr/bin/env bash
# e2e: session windows merging, with every kind of aggregate state (fixed
# accumulators, distinct values, top_n counts and sums, HyperLogLog
# registers). One record per poll (batch_size: 1) and max_out_of_order 10s:
# the watermark trails the largest timestamp by 10001 ms, so the order of
# records and watermarks is fixed and the output exact.
#
#  - Key a: [0,1000) and [3000,4000) open; 2000 extends the second to the
#    left ([2000,4000), a session that starts earlier keeps its state); 1000
#    touches both (adjacent sessions merge) and merges everything into
#    [0,4000): the first session's timer (999) is moved to 3999, so when the
#    watermark passes 999 and 1999 nothing of a fires; at 5999 the merged
#    session fires once, with the items of both parts merged (top_n ties
#    are ordered by value).
#  - Key b: sessions that never touch stay apart, an out-of-order record
#    that overlaps one session extends it; all fire at the end of input.
#  - The same input with parallelism 2 gives the same output.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

cat > input.jsonl <<'EOF'
{"ts":0,"k":"a","s":"x","w":1}
{"ts":3000,"k":"a","s":"y","w":2}
{"ts":2000,"k":"a","s":"z","w":3}
{"ts":0,"k":"b","s":"x","w":1}
{"ts":5000,"k":"b","s":"x","w":1}
{"ts":1000,"k":"a","s":"x","w":4}
{"ts":500,"k":"a","s":"w","w":5}
{"ts":12000,"k":"c","s":"x","w":1}
{"ts":4800,"k":"b","s":"y","w":7}
{"ts":16000,"k":"c","s":"y","w":1}
EOF

AGG='count, sum(w), distinct(s), top_n(s, 2), tw=top_n(s, 1, w), approx_distinct(s)'
run() { # NAME PARALLELISM
  cat > "$1.yaml" <<EOF
name: $1
settings: { batch_size: 1, workers: 2 }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts, max_out_of_order: 10s }
  win:
    use: window
    from: src
    key_by: k
    parallelism: $2
    config: { type: session, gap: 1s, aggregate: "$AGG" }
  out: { use: file_sink, from: win, config: { path: $1.out } }
  late: { use: file_sink, from: win.late, config: { path: $1.late } }
EOF
  st 0 /dev/null "$1.err" "$SLUICE" run "$1.yaml"
  [ ! -s "$1.late" ] || fail "$1: records on the late port: $(cat "$1.late")"
}

cat > expected.txt <<'EOF'
{"key":"a","window_start":0,"window_end":4000,"timing":"on_time","count":5,"sum_w":15,"distinct_s":4,"top_s":[{"value":"x","count":2},{"value":"w","count":1}],"tw":[{"value":"w","sum":5}],"approx_distinct_s":4}
{"key":"b","window_start":0,"window_end":1000,"timing":"on_time","count":1,"sum_w":1,"distinct_s":1,"top_s":[{"value":"x","count":1}],"tw":[{"value":"x","sum":1}],"approx_distinct_s":1}
{"key":"b","window_start":4800,"window_end":6000,"timing":"on_time","count":2,"sum_w":8,"distinct_s":2,"top_s":[{"value":"x","count":1},{"value":"y","count":1}],"tw":[{"value":"y","sum":7}],"approx_distinct_s":2}
{"key":"c","window_start":12000,"window_end":13000,"timing":"on_time","count":1,"sum_w":1,"distinct_s":1,"top_s":[{"value":"x","count":1}],"tw":[{"value":"x","sum":1}],"approx_distinct_s":1}
{"key":"c","window_start":16000,"window_end":17000,"timing":"on_time","count":1,"sum_w":1,"distinct_s":1,"top_s":[{"value":"y","count":1}],"tw":[{"value":"y","sum":1}],"approx_distinct_s":1}
EOF

run session1 1
# Emission order with one task: b's first session at watermark 1999 (a's
# parts, which would have fired at 999, are merged by then), a's merged
# session at 5999, then the rest at the end of input.
sed -n 2p session1.out | grep -q '"key":"a","window_start":0,"window_end":4000,"timing":"on_time"' ||
  { cat session1.out >&3; fail "the merged session of a did not fire second, on its moved timer"; }
sort session1.out > got1.txt
diff -u expected.txt got1.txt > diff1.txt || { cat diff1.txt >&3; fail "session merges: output differs"; }
echo "window_session: merges (left extension, adjacent bridge, items merged, timer moved) ok"

run session2 2
sort session2.out > got2.txt
cmp -s got1.txt got2.txt || fail "session merges: parallelism 2 differs: $(diff got1.txt got2.txt | head -n 4)"
echo "window_session: parallelism 2 ok"
echo "window_session: ok"
