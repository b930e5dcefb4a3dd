#!/usr/bin/env bash
# e2e: SIGINT / SIGTERM stop a running job gracefully; a second signal exits
# at once.
#
#  1. SIGINT on an endless generator -> file_sink (one chained task): exit 0
#     within 5 s, "stopping" and the summary on stderr, and the sink's file is
#     complete: as many lines as the summary's records-in for the sink (and
#     records-out of the source), every line valid JSON, no gap (record i has
#     ts = start_ts + 10 i), a final newline.
#  2. SIGTERM, the same, with the sink behind a channel (rebalance, 2 tasks).
#  3. SIGTERM on generator -> parse -> key_by count (x2) -> file_sink: end of
#     input flows through the DAG, so the counts are emitted and sum to the
#     parsed records.
#  4. SIGINT while stdin_source waits on an idle pipe: exit 0 promptly, the
#     line read before is written.
#  5. Two signals while a slow sink drains a long backlog: still running after
#     the first (graceful), exit 128+signal within 2 s of the second (SIGINT
#     and SIGTERM).
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"

# Background processes this script started and has not reaped yet (only
# those are killed on an early exit: a reaped pid may belong to someone else).
declare -A live=()
cleanup() {
  for p in "${!live[@]}"; do kill -KILL "$p" 2> /dev/null || true; done
}
trap cleanup EXIT

# wait_file FILE: until FILE is non-empty (at most 10 s).
wait_file() {
  for _ in $(seq 200); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  fail "$1 still empty after 10 s"
}
# wait_exit PID SECONDS: until PID exits; sets $rc to its status. Fails (and
# kills it) when it is still running after SECONDS.
wait_exit() {
  local pid=$1 secs=$2 i
  for ((i = 0; i < secs * 20; i++)); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2> /dev/null; then
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    unset "live[$pid]"
    fail "pid $pid still running $secs s after the signal"
  fi
  set +e
  wait "$pid"
  rc=$?
  set -e
  unset "live[$pid]"
}
# col NODE FILE COLUMN: a column of the node's summary row (3 = records in, 4 = out).
col() { awk -v n="$1" -v c="$3" '$1 == n && NF == 6 { print $c; exit }' "$2"; }

# check_graceful NAME SINKFILE: exit 0, messages, summary, complete JSON lines.
check_graceful() {
  local name=$1 file=$2
  [ "$rc" -eq 0 ] || { cat "$name.err" >&2; fail "$name: exited $rc after one signal, expected 0"; }
  grep -qF "sluice: stopping (sources end, sinks flush" "$name.err" || fail "$name: no 'stopping' message"
  grep -qF "job '$name' finished in" "$name.err" || { cat "$name.err" >&2; fail "$name: no summary"; }
  grep -qF "records/s" "$name.err" || fail "$name: summary without the rate"
  local sink_in gen_out lines
  sink_in=$(col out "$name.err" 3)
  gen_out=$(col gen "$name.err" 4)
  lines=$(wc -l < "$file")
  [ -n "$sink_in" ] && [ "$sink_in" -gt 0 ] || { cat "$name.err" >&2; fail "$name: no records-in for node out in the summary"; }
  [ "$lines" -eq "$sink_in" ] || fail "$name: $file has $lines lines, the summary says the sink took $sink_in records (not flushed?)"
  [ "$gen_out" -eq "$sink_in" ] || fail "$name: the source emitted $gen_out records, the sink took $sink_in (lost in flight?)"
  [ "$(tail -c 1 "$file" | od -An -c | tr -d ' ')" = '\n' ] || fail "$name: $file ends inside a line"
  python3 - "$file" <<'PY' || fail "$name: $file is not complete, valid JSON lines in order"
import json, sys
ts = sorted(json.loads(line)["ts"] for line in open(sys.argv[1]))
want = [1700000000000 + 10 * i for i in range(len(ts))]
assert ts == want, "records missing or duplicated (ts not consecutive)"
PY
}

# 1. SIGINT, one chained task.
cat > sigint.yaml <<'EOF'
name: sigint
settings: { workers: 2 }
nodes:
  gen: { use: generator, config: { kind: clicks, count: 0, rate: 100000 } }
  out: { use: file_sink, from: gen, config: { path: sigint.jsonl } }
EOF
"$SLUICE" run sigint.yaml > sigint.out 2> sigint.err &
pid=$!
live[$pid]=1
wait_file sigint.jsonl
kill -INT "$pid"
wait_exit "$pid" 5
check_graceful sigint sigint.jsonl
echo "signals: SIGINT ok ($(wc -l < sigint.jsonl) records)"

# 2. SIGTERM, the sink behind a channel.
cat > sigterm.yaml <<'EOF'
name: sigterm
settings: { workers: 2 }
nodes:
  gen: { use: generator, config: { kind: clicks, count: 0, rate: 100000 } }
  out: { use: file_sink, from: gen, partition: rebalance, config: { path: sigterm.jsonl } }
EOF
"$SLUICE" run sigterm.yaml > sigterm.out 2> sigterm.err &
pid=$!
live[$pid]=1
wait_file sigterm.jsonl
kill -TERM "$pid"
wait_exit "$pid" 5
grep -qF "running: 2 tasks" sigterm.err || fail "sigterm: expected 2 tasks (source and sink apart)"
check_graceful sigterm sigterm.jsonl
echo "signals: SIGTERM ok ($(wc -l < sigterm.jsonl) records)"

# 3. SIGTERM: end of input reaches a keyed aggregation, which emits its counts.
cat > sigagg.yaml <<'EOF'
name: sigagg
settings: { workers: 3 }
nodes:
  gen: { use: generator, config: { kind: clicks, count: 0, rate: 100000 } }
  parse: { use: clicks:parse_views, from: gen }
  counts: { use: clicks:count_by_key, from: parse, key_by: $key, parallelism: 2 }
  out: { use: file_sink, from: counts, config: { path: sigagg.jsonl } }
EOF
"$SLUICE" run sigagg.yaml > sigagg.out 2> sigagg.err &
pid=$!
live[$pid]=1
sleep 1
kill -0 "$pid" 2> /dev/null || { cat sigagg.err >&2; fail "sigagg: the endless job ended by itself"; }
kill -TERM "$pid"
wait_exit "$pid" 5
[ "$rc" -eq 0 ] || { cat sigagg.err >&2; fail "sigagg: exited $rc after SIGTERM"; }
parsed=$(col parse sigagg.err 4)
[ -n "$parsed" ] && [ "$parsed" -gt 0 ] || { cat sigagg.err >&2; fail "sigagg: no parse figures in the summary"; }
[ -s sigagg.jsonl ] || fail "sigagg: the counts were not emitted after SIGTERM"
total=$(awk -F'"count":' '{ s += $2 + 0 } END { print s + 0 }' sigagg.jsonl)
[ "$total" -eq "$parsed" ] || fail "sigagg: counts sum to $total, parse emitted $parsed"
[ "$(wc -l < sigagg.jsonl)" -eq "$(col out sigagg.err 3)" ] || fail "sigagg: output lines differ from the sink's records-in"
echo "signals: SIGTERM through key_by ok ($parsed views counted)"

# 4. SIGINT while stdin_source waits on an idle pipe.
cat > sigstdin.yaml <<'EOF'
name: sigstdin
nodes:
  src: { use: stdin_source }
  out: { use: file_sink, from: src, config: { path: sigstdin.txt } }
EOF
mkfifo in.fifo
(echo first; exec sleep 60) > in.fifo &
writer=$!
live[$writer]=1
"$SLUICE" run sigstdin.yaml < in.fifo > sigstdin.out 2> sigstdin.err &
pid=$!
live[$pid]=1
for _ in $(seq 100); do grep -q 'running' sigstdin.err 2> /dev/null && break; sleep 0.05; done
sleep 1 # let it read "first" and go idle (it polls again within 50 ms)
kill -INT "$pid"
wait_exit "$pid" 5
kill -TERM "$writer" 2> /dev/null || true
wait "$writer" 2> /dev/null || true
unset "live[$writer]"
[ "$rc" -eq 0 ] || { cat sigstdin.err >&2; fail "sigstdin: exited $rc after SIGINT"; }
[ "$(cat sigstdin.txt)" = first ] || fail "sigstdin: expected the line 'first' in the output, got '$(cat sigstdin.txt)'"
grep -qF "job 'sigstdin' finished" sigstdin.err || fail "sigstdin: no summary"
echo "signals: SIGINT on an idle stdin ok"

# 5. A second signal exits at once, while a slow sink still drains a backlog.
cat > twice.yaml <<EOF
name: twice
settings: { workers: 2, channel_capacity: 16, batch_size: 64 }
nodes:
  gen: { use: generator, config: { count: 0 } }
  sink: { use: "$T/slow.so:slow_sink", from: gen, partition: rebalance, config: { delay_us: 100000, report: twice.txt } }
EOF
for sig in INT TERM; do
  "$SLUICE" run twice.yaml > "twice-$sig.out" 2> "twice-$sig.err" &
  pid=$!
  live[$pid]=1
  for _ in $(seq 100); do grep -q 'running' "twice-$sig.err" 2> /dev/null && break; sleep 0.05; done
  sleep 0.5
  kill "-$sig" "$pid"
  sleep 0.5
  kill -0 "$pid" 2> /dev/null || { cat "twice-$sig.err" >&2; fail "twice ($sig): exited on the first signal although the sink had a backlog to drain"; }
  kill "-$sig" "$pid"
  wait_exit "$pid" 2
  want=$((128 + $(kill -l "$sig")))
  [ "$rc" -eq "$want" ] || { cat "twice-$sig.err" >&2; fail "twice ($sig): second signal gave status $rc, expected $want"; }
  grep -qF "sluice: second signal, exiting now" "twice-$sig.err" || fail "twice ($sig): no 'second signal' message"
done
echo "signals: second signal ok"

echo "signals: ok"
