#!/usr/bin/env bash
# e2e: late data in the window operator. The source reads one record per
# poll (settings.batch_size: 1) with max_out_of_order 0, so the watermark
# after each record is that record's ts - 1 (at least the previous one) and
# the order of records and watermarks is fixed: every result below is exact.
#
#  1. Tumbling, allowed_lateness 1s: a record within the lateness re-fires its
#     window at once as "late" with the updated totals (not a delta); a
#     record past it goes unchanged to the `late` port; so does a record for
#     a window that never existed; the first record of a new key behind the
#     watermark (within the lateness) fires its window at once as "late".
#  2. Sliding (2s every 1s), allowed_lateness 500ms: a record whose windows
#     are all expired goes to `late`; a record with one expired and one live
#     window updates and re-fires the live one only.
#  3. Session (gap 1s), allowed_lateness 5s: late records merge into fired
#     sessions (re-fired as "late"), two fired sessions bridged by a late
#     record merge into one; a record whose own session would be expired but
#     that falls into a live session is accepted; one with no live session
#     goes to `late`.
# Each time the late port holds exactly the expected records and the counter
# late_records (run summary) counts them. With allowed_lateness 0 nothing is
# kept after a window fired: any record behind it is late.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

run() { # NAME "WINDOW CONFIG" AGGREGATES [INPUT]
  cat > "$1.yaml" <<EOF
name: $1
settings: { batch_size: 1 }
nodes:
  src:
    use: file_source
    config: { path: ${4:-$1.jsonl} }
    event_time: { field: ts, max_out_of_order: 0 }
  win:
    use: window
    from: src
    key_by: k
    config: { $2, aggregate: "$3" }
  out: { use: file_sink, from: win, config: { path: $1.out } }
  late: { use: file_sink, from: win.late, config: { path: $1.late } }
EOF
  st 0 /dev/null "$1.err" "$SLUICE" run "$1.yaml"
}

same() { # LABEL EXPECTED GOT (sorted comparison)
  sort "$2" > "$2.sorted"
  sort "$3" > "$3.sorted"
  diff -u "$2.sorted" "$3.sorted" > "$3.diff" || { cat "$3.diff" >&3; fail "$1"; }
}

counter() { # NAME N
  grep -qE "^ +counter late_records = $2\$" "$1.err" || { cat "$1.err" >&3; fail "$1: expected counter late_records = $2"; }
}

# ------------------------------------------------------------ 1. tumbling
cat > tumbling.jsonl <<'EOF'
{"ts":1000,"k":"a","n":1}
{"ts":2500,"k":"a","n":2}
{"ts":1500,"k":"a","n":3}
{"ts":3500,"k":"a","n":4}
{"ts":1200,"k":"a","n":5}
{"ts":2999,"k":"a","n":6}
{"ts":100,"k":"a","n":7}
{"ts":2100,"k":"c","n":8}
{"ts":3200,"k":"b","n":9}
EOF
run tumbling "type: tumbling, size: 1s, allowed_lateness: 1s" "count, sum(n)"
cat > tumbling.expected <<'EOF'
{"key":"a","window_start":1000,"window_end":2000,"timing":"on_time","count":1,"sum_n":1}
{"key":"a","window_start":1000,"window_end":2000,"timing":"late","count":2,"sum_n":4}
{"key":"a","window_start":2000,"window_end":3000,"timing":"on_time","count":1,"sum_n":2}
{"key":"a","window_start":2000,"window_end":3000,"timing":"late","count":2,"sum_n":8}
{"key":"c","window_start":2000,"window_end":3000,"timing":"late","count":1,"sum_n":8}
{"key":"a","window_start":3000,"window_end":4000,"timing":"on_time","count":1,"sum_n":4}
{"key":"b","window_start":3000,"window_end":4000,"timing":"on_time","count":1,"sum_n":9}
EOF
same "tumbling: results differ" tumbling.expected tumbling.out
printf '%s\n' '{"ts":1200,"k":"a","n":5}' '{"ts":100,"k":"a","n":7}' > tumbling.late.expected
cmp -s tumbling.late.expected tumbling.late || fail "tumbling: late port holds: $(cat tumbling.late)"
counter tumbling 2
row tumbling.err win 1 9 9 0 0
echo "window_late: tumbling: late re-firings, late port and counter ok"

# allowed_lateness 0: once a window fired, a record behind the watermark is late
run tumbling0 "type: tumbling, size: 1s" "count, sum(n)" tumbling.jsonl
cat > tumbling0.expected <<'EOF'
{"key":"a","window_start":1000,"window_end":2000,"timing":"on_time","count":1,"sum_n":1}
{"key":"a","window_start":2000,"window_end":3000,"timing":"on_time","count":1,"sum_n":2}
{"key":"a","window_start":3000,"window_end":4000,"timing":"on_time","count":1,"sum_n":4}
{"key":"b","window_start":3000,"window_end":4000,"timing":"on_time","count":1,"sum_n":9}
EOF
same "tumbling, no lateness: results differ" tumbling0.expected tumbling0.out
[ "$(wc -l < tumbling0.late)" -eq 5 ] || fail "tumbling, no lateness: $(wc -l < tumbling0.late) late records, expected 5"
counter tumbling0 5
echo "window_late: tumbling without lateness ok"

# ------------------------------------------------------------- 2. sliding
cat > sliding.jsonl <<'EOF'
{"ts":1000,"k":"a","n":1}
{"ts":2200,"k":"a","n":2}
{"ts":1500,"k":"a","n":3}
{"ts":3100,"k":"a","n":4}
{"ts":900,"k":"a","n":5}
{"ts":1999,"k":"a","n":6}
EOF
run sliding "type: sliding, size: 2s, slide: 1s, allowed_lateness: 500ms" "count, sum(n)"
cat > sliding.expected <<'EOF'
{"key":"a","window_start":0,"window_end":2000,"timing":"on_time","count":1,"sum_n":1}
{"key":"a","window_start":0,"window_end":2000,"timing":"late","count":2,"sum_n":4}
{"key":"a","window_start":1000,"window_end":3000,"timing":"on_time","count":3,"sum_n":6}
{"key":"a","window_start":1000,"window_end":3000,"timing":"late","count":4,"sum_n":12}
{"key":"a","window_start":2000,"window_end":4000,"timing":"on_time","count":2,"sum_n":6}
{"key":"a","window_start":3000,"window_end":5000,"timing":"on_time","count":1,"sum_n":4}
EOF
same "sliding: results differ" sliding.expected sliding.out
printf '%s\n' '{"ts":900,"k":"a","n":5}' > sliding.late.expected
cmp -s sliding.late.expected sliding.late || fail "sliding: late port holds: $(cat sliding.late)"
counter sliding 1
echo "window_late: sliding: partly late record re-fires its live window only"

# ------------------------------------------------------------- 3. session
{
  cat <<'EOF'
{"ts":0,"k":"c","n":1}
{"ts":0,"k":"d","n":2}
{"ts":1500,"k":"d","n":3}
{"ts":5000,"k":"c","n":4}
{"ts":900,"k":"c","n":5}
{"ts":1850,"k":"c","n":6}
{"ts":1000,"k":"d","n":7}
{"ts":12000,"k":"c","n":8}
{"ts":100,"k":"d","n":9}
EOF
  # f: one long session [20000, 30600) built every 800 ms
  for t in 20000 20800 21600 22400 23200 24000 24800 25600 26400 27200 28000 28800 29600; do
    echo "{\"ts\":$t,\"k\":\"f\",\"n\":1}"
  done
  cat <<'EOF'
{"ts":30000,"k":"g","n":1}
{"ts":20500,"k":"f","n":100}
EOF
} > session.jsonl
run session "type: session, gap: 1s, allowed_lateness: 5s" "count, sum(n)"
cat > session.expected <<'EOF'
{"key":"c","window_start":0,"window_end":1000,"timing":"on_time","count":1,"sum_n":1}
{"key":"d","window_start":0,"window_end":1000,"timing":"on_time","count":1,"sum_n":2}
{"key":"d","window_start":1500,"window_end":2500,"timing":"on_time","count":1,"sum_n":3}
{"key":"c","window_start":0,"window_end":1900,"timing":"late","count":2,"sum_n":6}
{"key":"c","window_start":0,"window_end":2850,"timing":"late","count":3,"sum_n":12}
{"key":"d","window_start":0,"window_end":2500,"timing":"late","count":3,"sum_n":12}
{"key":"c","window_start":5000,"window_end":6000,"timing":"on_time","count":1,"sum_n":4}
{"key":"c","window_start":12000,"window_end":13000,"timing":"on_time","count":1,"sum_n":8}
{"key":"f","window_start":20000,"window_end":30600,"timing":"on_time","count":14,"sum_n":113}
{"key":"g","window_start":30000,"window_end":31000,"timing":"on_time","count":1,"sum_n":1}
EOF
same "session: results differ" session.expected session.out
printf '%s\n' '{"ts":100,"k":"d","n":9}' > session.late.expected
cmp -s session.late.expected session.late || fail "session: late port holds: $(cat session.late)"
counter session 1
echo "window_late: session: late merges, bridged sessions, late port ok"
echo "window_late: ok"
