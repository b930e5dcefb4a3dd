#!/usr/bin/env bash
# e2e: event time and timers for Lua operators (SDK 1.3) through the real
# sluice binary. Scripts in tests/lua/time/; expected outputs computed here
# with awk.
#
#  1. A per-key tumbling count driven by event-time timers (window_count.lua,
#     the example of docs/lua.md) over JSON records with bounded disorder
#     (event_time field ts, max_out_of_order 1s): equal to awk's, with
#     parallelism 1 and 2.
#  2. Timers are deduplicated (the same ts set twice, or by two records,
#     fires once), timer_delete returns true then false and a deleted timer
#     never fires, a timer set in on_timer fires (dedup.lua).
#  3. on_timer sees the timer's key (ctx:current_key()) and the key's state,
#     and ctx:watermark() >= ts; on_watermark values never decrease and the
#     last is math.maxinteger; timers fire during the run, not only at the
#     end (observe.lua checks with assert; the counts equal awk's).
#  4. A processing-time timer fires while the job runs (a paced endless
#     generator, stopped with SIGINT), not before its time (proc.lua).
#  5. Misuse fails the job with a message naming script:line: timer_set on a
#     node without key_by, in open, in on_watermark, in process_batch, with a
#     bad domain, with a float ts, without on_timer.
#  6. A runtime error in on_timer or on_watermark fails the job with
#     script:line and a traceback; the instruction budget applies in
#     on_timer.
#  7. process_batch still gets whole batches on a node without key_by; on a
#     key_by node the runtime calls it with one record at a time.
#  8. Lua timers are checkpointed: window_count.lua killed at checkpoint 4
#     with timers pending resumes (parallelism 2 -> 3: timers follow their
#     keys) and its output equals awk's.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
export LC_ALL=C
S="$SLUICE_SOURCE_DIR/tests/lua/time"

# has FILE TEXT: FILE contains TEXT (fixed string).
has() { grep -qF -- "$2" "$1" || { sed 's/^/    | /' "$1" >&3; fail "$1 does not say: $2"; }; }

# ------------------------------------------------ 1. tumbling count, awk
# 30000 records, 10 ms apart, each moved back by up to 0.9 s (within
# max_out_of_order: 1s, so none is late); 7 keys; 10 s windows.
# gen N INPUT EXPECTED: the records and awk's counts per key and window.
gen() {
  awk -v n="$1" -v expfile="$3" 'BEGIN {
    srand(5)
    for (i = 0; i < n; i++) {
      ts = 1700000000000 + i * 10 - int(rand() * 900)
      k = "u" int(rand() * 7)
      printf "{\"k\":\"%s\",\"ts\":%.0f}\n", k, ts
      c[k "," sprintf("%.0f", ts - ts % 10000)]++
    }
    for (x in c) print x "," c[x] > expfile
  }' > "$2"
  sort -o "$3" "$3"
}
N=30000
gen $N input.jsonl window.expected

for p in 1 2; do
  cat > window$p.yaml <<EOF
name: window$p
settings: { workers: 2 }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts, max_out_of_order: 1s }
  win: { use: "lua:$S/window_count.lua", from: src, key_by: k, parallelism: $p, config: { window_ms: 10000 } }
  out: { use: file_sink, from: win, config: { path: window$p.out } }
EOF
  st 0 /dev/null window$p.err "$SLUICE" run window$p.yaml
  sort window$p.out > window$p.got
  diff -u window.expected window$p.got > window$p.diff ||
    { head -n 20 window$p.diff >&3; fail "window count (parallelism $p): output differs from awk's"; }
  row window$p.err win $p $N "$(wc -l < window.expected)" 0 0
done
echo "lua_timers: per-key tumbling count equals awk's ($N records, $(wc -l < window.expected) windows, parallelism 1 and 2)"

# ------------------------------------------------ 2. dedup and delete
cat > dedup.jsonl <<EOF
{"k":"a","ts":1000,"op":"set"}
{"k":"a","ts":1500,"op":"set"}
{"k":"b","ts":1200,"op":"set"}
{"k":"a","ts":2000,"op":"del"}
{"k":"b","ts":2100,"op":"del"}
{"k":"c","ts":2200,"op":"del"}
EOF
cat > dedup.expected <<EOF
del a true false
del b true false
del c false false
fired a 10000 event
fired a 30000 event
fired b 10000 event
fired b 30000 event
set a
set a
set b
EOF
for p in 1 2; do
  cat > dedup$p.yaml <<EOF
name: dedup$p
settings: { workers: 2 }
nodes:
  src:
    use: file_source
    config: { path: dedup.jsonl }
    event_time: { field: ts, max_out_of_order: 1s }
  dd: { use: "lua:$S/dedup.lua", from: src, key_by: k, parallelism: $p }
  out: { use: file_sink, from: dd, config: { path: dedup$p.out } }
EOF
  st 0 /dev/null dedup$p.err "$SLUICE" run dedup$p.yaml
  sort dedup$p.out > dedup$p.got
  diff -u dedup.expected dedup$p.got > dedup$p.diff ||
    { cat dedup$p.diff >&3; fail "dedup/delete (parallelism $p): unexpected output"; }
done
echo "lua_timers: timers deduplicated, timer_delete true/false, deleted timers never fire"

# ------------------------------------------------ 3. what the callbacks see
awk -F'[":,}]+' '{ b = sprintf("%.0f", $5 - $5 % 1000 + 999); c[$3 " " b]++ }
  END { for (x in c) print "t " x " " c[x] }' input.jsonl | sort > observe.expected
cat > observe.yaml <<EOF
name: observe
settings: { workers: 2 }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts, max_out_of_order: 1s }
  obs: { use: "lua:$S/observe.lua", from: src, key_by: k, parallelism: 2 }
  out: { use: file_sink, from: obs, config: { path: observe.out } }
EOF
st 0 /dev/null observe.err "$SLUICE" run observe.yaml
grep '^t ' observe.out | sort > observe.got
diff -u observe.expected observe.got > observe.diff ||
  { head -n 20 observe.diff >&3; fail "observe: per-key 1 s bucket counts differ from awk's"; }
[ "$(grep -c '^summary ' observe.out)" -eq 2 ] || { cat observe.out | grep -v '^t ' >&3; fail "observe: expected one summary per task"; }
for t in 0 1; do
  grep -qE "^summary task=$t wms=[0-9]+ monotone=true last_is_max=true early=[0-9]+\$" observe.out ||
    { grep '^summary' observe.out >&3; fail "observe: task $t: watermarks went back, or the last was not math.maxinteger"; }
done
wms=$(sed -n 's/^summary .* wms=\([0-9]*\) .*/\1/p' observe.out | awk '{ s += $1 } END { print s + 0 }')
early=$(sed -n 's/^summary .* early=\([0-9]*\)$/\1/p' observe.out | awk '{ s += $1 } END { print s + 0 }')
[ "$wms" -gt 10 ] || fail "observe: only $wms on_watermark calls: watermarks should arrive during the run"
[ "$early" -gt 0 ] || fail "observe: no timer fired before the end of input"
echo "lua_timers: on_timer sees its key, its state and watermark >= ts; $wms watermarks, non-decreasing, last math.maxinteger; $early of $(wc -l < observe.got) timers fired before the end"

# ------------------------------------------------ 4. processing-time timers
cat > proc.yaml <<EOF
name: proc
settings: { workers: 2 }
nodes:
  gen: { use: generator, config: { count: 0, rate: 200, users: 4 } }
  pt: { use: "lua:$S/proc.lua", from: gen, key_by: \$key }
  out: { use: stdout_sink, from: pt }
EOF
"$SLUICE" run -q proc.yaml > proc.out 2> proc.err &
job=$!
sleep 1.5
kill -INT $job
wait $job || { cat proc.err >&3; fail "processing-time timers: the job failed"; }
n=$(grep -c '^proc ' proc.out || true)
[ "$n" -ge 4 ] || { cat proc.out proc.err >&3; fail "processing-time timers: $n fired in 1.5 s, expected at least 4 (4 keys, 300 ms)"; }
bad=$(grep '^proc ' proc.out | awk '$3 != "processing" || $4 < 0' | head -n 3)
[ -z "$bad" ] || fail "processing-time timers: wrong domain or fired early: $bad"
echo "lua_timers: $n processing-time timers fired during a 1.5 s run, none early"

# ------------------------------------------------ 5. misuse
printf '{"k":"a","ts":1000}\n{"k":"b","ts":2000}\n' > small.jsonl
# misuse NAME SCRIPT KEYED WHERE
misuse() {
  local key_by=""
  [ "$3" = keyed ] && key_by="key_by: k,"
  cat > misuse_$1.yaml <<EOF
name: misuse_$1
nodes:
  src:
    use: file_source
    config: { path: small.jsonl }
    event_time: { field: ts }
  bad: { use: "lua:$S/$2", from: src, $key_by config: { where: $4 } }
  out: { use: null_sink, from: bad }
EOF
  st 1 /dev/null misuse_$1.err "$SLUICE" run misuse_$1.yaml
  has misuse_$1.err "node 'bad' (operator 'script'"
}
misuse nokey misuse.lua plain nokey
has misuse_nokey.err "record at offset 1: $S/misuse.lua:16: ctx:timer_set: timers need the node to have key_by (a JSON field, or \$key for the record key)"
misuse open misuse.lua keyed open
has misuse_open.err "open failed: $S/misuse.lua:12: ctx:timer_set is only allowed in process(rec, ctx) and on_timer(ts, domain, ctx), where a key is current (called in open)"
misuse domain misuse.lua keyed domain
has misuse_domain.err "misuse.lua:17: ctx:timer_set: domain must be \"event\" or \"processing\", got \"wall\""
misuse float misuse.lua keyed float
has misuse_float.err "misuse.lua:18: ctx:timer_set: ts must be an integer (ms since the epoch), got 1000.5"
misuse watermark misuse.lua keyed watermark
has misuse_watermark.err "on_watermark failed: $S/misuse.lua:23: ctx:timer_set is only allowed in process(rec, ctx) and on_timer(ts, domain, ctx), where a key is current (called in on_watermark)"
misuse batch batch_misuse.lua plain none
has misuse_batch.err "batch_misuse.lua:3: ctx:timer_set: timers belong to a key: use them in process(rec, ctx) on a node with key_by, not in process_batch"
misuse no_on_timer no_on_timer.lua keyed none
has misuse_no_on_timer.err "no_on_timer.lua:3: ctx:timer_set: the script defines no on_timer(ts, domain, ctx) to call when the timer is due"
echo "lua_timers: misuse fails the job naming script:line (no key_by, open, on_watermark, process_batch, domain, float ts, no on_timer)"

# ------------------------------------------------ 6. errors in the callbacks
for w in on_timer on_watermark loop; do
  cat > fail_$w.yaml <<EOF
name: fail_$w
nodes:
  src:
    use: file_source
    config: { path: small.jsonl }
    event_time: { field: ts }
  bad: { use: "lua:$S/fail.lua", from: src, key_by: k, config: { fail_in: $w, lua_instructions: 100000 } }
  out: { use: null_sink, from: bad }
EOF
  st 1 /dev/null fail_$w.err "$SLUICE" run fail_$w.yaml
  has fail_$w.err "node 'bad' (operator 'script'"
done
has fail_on_timer.err "on_timer(event time, 1000) failed: $S/fail.lua:16: attempt to index a nil value (local 't')"
has fail_on_timer.err "stack traceback:"
has fail_on_watermark.err "on_watermark failed: $S/fail.lua:24: watermark boom"
has fail_on_watermark.err "stack traceback:"
has fail_loop.err "on_timer(event time, 1000) failed: $S/fail.lua:19: instruction budget of 100000 per call exceeded (lua_instructions)"
echo "lua_timers: errors in on_timer / on_watermark fail the job with script:line; limits apply"

# ------------------------------------------------ 7. process_batch
awk -F'"' '{ c[$4]++ } END { for (k in c) print k "," c[k] }' input.jsonl | sort > batch.expected
for mode in plain keyed; do
  if [ $mode = keyed ]; then edge="key_by: k"; else edge="partition: rebalance"; fi
  cat > batch_$mode.yaml <<EOF
name: batch_$mode
settings: { workers: 2 }
nodes:
  src: { use: file_source, config: { path: input.jsonl } }
  bc: { use: "lua:$S/batch_count.lua", from: src, $edge }
  out: { use: file_sink, from: bc, config: { path: batch_$mode.out } }
EOF
  st 0 /dev/null batch_$mode.err "$SLUICE" run batch_$mode.yaml
done
# keyed: rec.key is the k field, counted per key
grep -v '^max_batch,' batch_keyed.out | sort > batch_keyed.got
diff -u batch.expected batch_keyed.got > batch_keyed.diff ||
  { cat batch_keyed.diff >&3; fail "process_batch on a key_by node: counts differ from awk's"; }
has batch_keyed.out "max_batch,1"
# plain: every record has the key "" and the calls get whole batches
has batch_plain.out ",$N"
mb=$(sed -n 's/^max_batch,//p' batch_plain.out)
[ "$mb" -gt 1 ] || fail "process_batch on a node without key_by got batches of at most $mb record(s)"
echo "lua_timers: process_batch gets batches of up to $mb records without key_by, one record with key_by"

# ------------------------------------------------ 8. timers in checkpoints
# max_out_of_order is 1000 s: no timer fires before the end, so every
# checkpoint holds the timers set so far. 300000 records, so that even an
# optimised build is still running at its fourth checkpoint.
ckpt_dag() { # FILE PARALLELISM
  cat > "$1" <<EOF
name: luackpt
settings: { workers: 2, batch_size: 64, checkpoints: { interval: 30ms, dir: ckpt } }
nodes:
  src:
    use: file_source
    config: { path: big.jsonl }
    event_time: { field: ts, max_out_of_order: 1000s }
  win: { use: "lua:$S/window_count.lua", from: src, key_by: k, parallelism: $2, config: { window_ms: 10000 } }
  out: { use: file_sink, from: win, config: { path: ckpt.out } }
EOF
}
gen 300000 big.jsonl big.expected
rm -rf ckpt ckpt.out*
ckpt_dag crash.yaml 2
set +e
SLUICE_FAULT=rename:4 timeout -k 5 120 "$SLUICE" run -q crash.yaml > /dev/null 2> crash.err
rc=$?
set -e
[ $rc -eq 137 ] || { cat crash.err >&3; fail "checkpoints: the job was not killed at checkpoint 4 (exit $rc)"; }
ckpt_dag resume.yaml 3
st 0 /dev/null resume.err "$SLUICE" run resume.yaml
has resume.err "resuming from checkpoint 4"
cat ckpt.out* | sort > ckpt.got
diff -u big.expected ckpt.got > ckpt.diff ||
  { head -n 20 ckpt.diff >&3; fail "checkpoints: killed with timers pending and resumed with parallelism 3: output differs from awk's"; }
echo "lua_timers: killed at checkpoint 4 with timers pending, resumed with parallelism 3: output equals awk's"

echo "lua_timers: ok"
