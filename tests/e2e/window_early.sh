#!/usr/bin/env bash
# e2e: early (processing-time) results of the window operator. A paced
# generator (300 records/s, event time 10 ms apart, so a 2 s window lasts
# about 0.7 s of wall time) feeds tumbling windows with early_fire: 150ms.
# For every (key, window): zero or more "early" results with strictly
# increasing counts (one only when the window changed since the last), then
# exactly one "on_time" result with the exact count (checked against the
# generator's own records), and nothing after it; early results appear at
# all (at least 3 in the run).
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

cat > early.yaml <<'EOF'
name: early
settings: { workers: 2 }
nodes:
  src:
    use: generator
    config: { kind: clicks, count: 600, rate: 300, users: 3, seed: 5 }
    event_time: { field: ts, max_out_of_order: 0 }
  win:
    use: window
    from: src
    key_by: user_id
    config: { type: tumbling, size: 2s, early_fire: 150ms, aggregate: "count" }
  out: { use: file_sink, from: win, config: { path: early.out } }
  raw: { use: file_sink, from: src, config: { path: raw.jsonl } }
EOF
st 0 /dev/null early.err "$SLUICE" run early.yaml
[ "$(wc -l < raw.jsonl)" -eq 600 ] || fail "the generator wrote $(wc -l < raw.jsonl) records, expected 600"

# exact counts per (user, 2 s window) from the generator's records
sed 's/^{"ts":\([0-9]*\),"user_id":"\([^"]*\)".*/\2 \1/' raw.jsonl |
  awk '{ s = sprintf("%.0f", int($2 / 2000) * 2000); c[$1 " " s]++ } END { for (x in c) print x, c[x] }' |
  sort > counts.expected

# per (key, window): early* on_time, early counts increasing, final exact
sed 's/^{"key":"\([^"]*\)","window_start":\([0-9]*\),"window_end":[0-9]*,"timing":"\([a-z_]*\)","count":\([0-9]*\)}$/\1 \2 \3 \4/' \
  early.out > early.parsed
awk '
  NF != 4 { print "unparsable line " NR ": " $0; bad++; next }
  {
    w = $1 " " $2
    if (done[w]) { print "result after on_time: " $0; bad++ }
    if ($3 == "early") {
      if ($4 <= last[w]) { print "early count not increasing: " $0; bad++ }
      if (done[w]) { print "early after on_time: " $0; bad++ }
      last[w] = $4; early++
    } else if ($3 == "on_time") {
      if ($4 < last[w]) { print "on_time count below an early one: " $0; bad++ }
      done[w] = 1; print w, $4 > "counts.got"
    } else { print "unexpected timing: " $0; bad++ }
  }
  END { print "early results: " early > "early.n"; exit bad > 0 }' early.parsed > early.bad ||
  { head -n 10 early.bad >&3; fail "early results break their order"; }
sort -o counts.got counts.got
diff -u counts.expected counts.got > counts.diff || { head -n 20 counts.diff >&3; fail "on_time counts differ from the generator's records"; }
n=$(sed 's/early results: //' early.n)
[ "$n" -ge 3 ] || fail "only $n early results in a 2 s run with early_fire 150ms"
echo "window_early: $n early results, then one exact on_time result per window"
echo "window_early: ok"
