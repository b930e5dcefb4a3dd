#!/usr/bin/env bash
# e2e: Lua resource bombs (issue 3). Each bomb runs in one DAG next to an
# independent C pipeline (the quickstart: generator -> clicks:parse_views ->
# key_by -> clicks:count_by_key x2 -> file_sink):
#
#   bsrc (generator, 3 records) -> bomb (lua:bomb.lua, on_error: skip,
#        lua_memory_mb 16, lua_instructions 1000000, lua_timeout 200ms) -> null_sink x2
#
# tests/lua/bombs/bomb.lua sets the bomb off on records 1 and 3 and emits
# "alive" on record 2. For every bomb:
#  - exit 0 within a few seconds (never a hang: killed after 60 s; never a crash);
#  - the skip warning names the limit that stopped it (the node's config key,
#    or "stack overflow" for recursion);
#  - the summary row of `bomb`: 3 in, 2 skipped, 1 out (the state still works
#    after a limit broke);
#  - the C pipeline's output equals examples/quickstart/expected/counts.jsonl;
#  - the process's peak RSS stays below the baseline (the same DAG with a
#    no-op bomb) + lua_memory_mb + 10%.
# Also: limits raised through ctx.config have no effect; a loop in the main
# chunk, in open and in on_end fails the job (exit 1) with the limit's
# message; finalizers that loop (during a call, at the state's close) do not
# hang the job.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
export LC_ALL=C
START=$(date +%s)
cp "$SLUICE_SOURCE_DIR"/tests/lua/bombs/*.lua .
sort "$SLUICE_SOURCE_DIR/examples/quickstart/expected/counts.jsonl" > expected.sorted
CAP_MB=16
# Wall-clock bound of one run: generous (sanitizer builds are slower), but far
# below a hang. The bombs themselves are stopped at 200 ms.
MAX_S=${SLUICE_LUA_BOMB_MAX_S:-10}
# A run still going after HANG_S is a hang (a bomb that escaped every limit).
HANG_S=${SLUICE_LUA_BOMB_HANG_S:-20}

# Sanitizer builds (shadow memory, quarantine) make RSS meaningless: the
# memory bound is only checked in a plain build.
CHECK_RSS=yes
if grep -qa -e __asan_init -e __tsan_init "$SLUICE"; then CHECK_RSS=no; fi
HAVE_TIME=no
if [ -x /usr/bin/time ] && /usr/bin/time -f '%M' true 2> /dev/null; then HAVE_TIME=yes; fi

# Failed checks of a bomb are collected and reported together at the end, so
# one run shows every bomb that is not contained.
FAILED=""
bfail() {
  echo "  FAIL: $*" >&3
  FAILED="$FAILED
  $*"
}

# dag NAME BOMB [SCRIPT [LIMITS]]
dag() {
  local name=$1 bomb=$2 script=${3:-bomb.lua} limits=${4:-"lua_memory_mb: $CAP_MB, lua_instructions: 1000000, lua_timeout: 200ms"}
  cat > "$name.yaml" <<EOF
name: $name
settings: { workers: 2 }
nodes:
  clicks: { use: generator, config: { kind: clicks, count: 200000, seed: 7 } }
  parse: { use: clicks:parse_views, from: clicks, config: { action: view } }
  counts: { use: clicks:count_by_key, from: parse, key_by: \$key, parallelism: 2 }
  counts_out: { use: file_sink, from: counts, config: { path: $name.counts } }
  bsrc: { use: generator, config: { kind: clicks, count: 3, seed: 1 } }
  bomb:
    use: lua:$script
    from: bsrc
    on_error: skip
    config: { bomb: $bomb, $limits }
  bout: { use: null_sink, from: bomb, parallelism: 2 }
EOF
}

# run NAME: run NAME.yaml; sets RC, SECS, RSS_KB (peak); stderr in NAME.err.
run() {
  local name=$1
  local t0 t1
  t0=$(date +%s%N)
  set +e
  if [ "$HAVE_TIME" = yes ]; then
    /usr/bin/time -f '%M' -o "$name.rss" timeout -k 5 "$HANG_S" "$SLUICE" run "$name.yaml" > "$name.out" 2> "$name.err"
    RC=$?
    RSS_KB=$(tail -n 1 "$name.rss" | grep -oE '^[0-9]+$' || echo 0)
  else
    timeout -k 5 "$HANG_S" "$SLUICE" run "$name.yaml" > "$name.out" 2> "$name.err" &
    local pid=$! hwm=0 v
    # timeout(1) forks sluice: follow its child
    sleep 0.02
    local child
    child=$(pgrep -P "$pid" | head -n 1 || true)
    while kill -0 "$pid" 2> /dev/null; do
      v=$(awk '/^VmHWM/ { print $2 }' "/proc/${child:-$pid}/status" 2> /dev/null || echo 0)
      [ "${v:-0}" -gt "$hwm" ] && hwm=$v
      sleep 0.01
    done
    wait "$pid"
    RC=$?
    RSS_KB=$hwm
  fi
  set -e
  t1=$(date +%s%N)
  SECS=$(((t1 - t0) / 1000000))
  HUNG=no
  if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then HUNG=yes; return 0; fi
  if [ "$RC" -ge 128 ]; then sed 's/^/    | /' "$name.err" >&3; fail "$name: sluice crashed (status $RC)"; fi
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer' "$name.err"; then
    sed 's/^/    | /' "$name.err" >&3
    fail "$name: sanitizer report"
  fi
  [ "$SECS" -le $((MAX_S * 1000)) ] || bfail "$name: took ${SECS} ms (more than ${MAX_S} s)"
}

# c_branch_ok NAME: the C pipeline completed with all its records.
c_branch_ok() {
  local name=$1
  sort "$name.counts" > "$name.counts.sorted"
  diff -q expected.sorted "$name.counts.sorted" > /dev/null ||
    fail "$name: the C pipeline's counts differ from the quickstart's expected output"
  grep -qE '^  counts +2 +[0-9]+ +100 +0 +0$' "$name.err" || { cat "$name.err" >&3; fail "$name: no summary row for counts (2 tasks, 100 keys out)"; }
}

# Baseline: the same DAG with a no-op Lua operator (the largest of two runs).
dag baseline noop
run baseline
[ "$RC" -eq 0 ] || { cat baseline.err >&3; fail "baseline: exit $RC"; }
c_branch_ok baseline
grep -qE '^  bomb +1 +3 +1 +0 +0$' baseline.err || { cat baseline.err >&3; fail "baseline: bomb row is not '1 3 1 0 0'"; }
BASE_KB=$RSS_KB
run baseline
[ "$RSS_KB" -gt "$BASE_KB" ] && BASE_KB=$RSS_KB
LIMIT_KB=$((BASE_KB + CAP_MB * 1024 * 110 / 100))
echo "lua_bombs: baseline peak RSS ${BASE_KB} kB, limit ${LIMIT_KB} kB (/usr/bin/time: $HAVE_TIME; RSS checked: $CHECK_RSS)"

INSTR='lua_instructions|lua_timeout'
MEM='lua_memory_mb'
PAT='lua_pattern_steps|lua_timeout'
STACK='stack overflow|lua_memory_mb|lua_instructions'
ANY='lua_instructions|lua_timeout|lua_memory_mb|lua_pattern_steps|stack overflow'

# bomb NAME REGEX [OUT]: OUT is the bomb node's expected records out (default 1;
# "any" for the floods, whose first records get out before the limit).
bomb() {
  local name=$1 re=$2 want_out=${3:-1} limits=${4:-} cap_mb=${5:-$CAP_MB}
  local limit_kb=$((BASE_KB + cap_mb * 1024 * 110 / 100))
  dag "$name" "$name" bomb.lua "$limits"
  run "$name"
  if [ "$HUNG" = yes ]; then bfail "$name: the job hung (killed after $HANG_S s)"; return 0; fi
  if [ "$RC" -ne 0 ]; then sed 's/^/    | /' "$name.err" | tail -n 5 >&3; bfail "$name: exit $RC, expected 0 (on_error: skip)"; return 0; fi
  c_branch_ok "$name"
  local warn
  warn=$(grep -F 'skipping record' "$name.err" | head -n 1 || true)
  [ -n "$warn" ] || { bfail "$name: no 'skipping record' warning"; return 0; }
  echo "$warn" | grep -qE "$re" || bfail "$name: the error does not name the limit (/$re/): $warn"
  if [ "$want_out" = any ]; then
    grep -qE '^  bomb +1 +3 +[0-9]+ +2 +0$' "$name.err" || bfail "$name: bomb row is not '1 3 N 2 0': $(grep -E '^  bomb ' "$name.err")"
  else
    grep -qE "^  bomb +1 +3 +$want_out +2 +0\$" "$name.err" || bfail "$name: bomb row is not '1 3 $want_out 2 0': $(grep -E '^  bomb ' "$name.err")"
  fi
  [ "$CHECK_RSS" = no ] || [ "$RSS_KB" -le "$limit_kb" ] || bfail "$name: peak RSS ${RSS_KB} kB over the limit ${limit_kb} kB (baseline ${BASE_KB} kB + ${cap_mb} MB + 10%)"
  printf '  %-22s %5d ms  %7d kB  %s\n' "$name" "$SECS" "$RSS_KB" "$(echo "$warn" | sed 's/.*skipping record at offset [0-9a-z]*: //' | head -c 110)"
}

echo "lua_bombs: CPU"
bomb loop "$INSTR"
bomb loop_pcall "$INSTR"
bomb loop_coroutine "$INSTR"
bomb coroutine_swallow "$INSTR"
bomb coroutine_trip_escape "$INSTR"
bomb coroutine_many "$INSTR"
bomb coroutine_early "$INSTR"
bomb loop_config "$INSTR"
bomb err_tostring_loop "$INSTR"
echo "lua_bombs: memory"
bomb rep "$MEM|resulting string too large"
bomb rep_1g "$MEM"
bomb rep_sep "$MEM"
bomb table_growth "$MEM|$INSTR"
bomb string_growth "$MEM|$INSTR"
bomb concat_double "$MEM|$INSTR"
bomb table_concat "$MEM|$INSTR"
bomb gsub_big "$MEM|$PAT"
bomb gsub_fn "$ANY"
# time inside one C function (no Lua instructions to hook): lua_timeout 100ms
bomb sort "lua_timeout" 1 "lua_memory_mb: 64, lua_instructions: 1000000, lua_timeout: 100ms" 64
echo "lua_bombs: patterns"
bomb pattern "$PAT"
bomb pattern_gmatch "$PAT"
bomb pattern_gsub "$PAT"
bomb pattern_backref "$PAT"
echo "lua_bombs: stack"
bomb recursion "$STACK|lua_timeout"   # slow builds (ASan) may hit the clock first
bomb recursion_c "$STACK|C stack|lua_timeout"
bomb recursion_pcall "$ANY|C stack"
echo "lua_bombs: host memory fed by the script (emits, headers, counters)"
bomb emit_flood "$INSTR|$MEM" any
bomb header_flood "$INSTR|$MEM" any
bomb counter_flood "$INSTR|$MEM"
# Names made up per call must not pile up in the state (a cache of counter
# objects once kept each name, so the state was full for good and the
# "alive" call after the bomb failed too).
bomb counter_flood_long "$INSTR|$MEM" 1 "lua_memory_mb: $CAP_MB, lua_instructions: 20000000, lua_timeout: 1000ms"

echo "lua_bombs: finalizers"
# Finalizers run with hooks off (Lua 5.4 disables them in __gc), so a
# looping __gc must be refused (setmetatable with __gc) or otherwise stopped.
bomb gc_finalizer "__gc|$INSTR"
# __gc added after setmetatable does not mark the object: nothing runs.
dag gc_added_later gc_added_later
run gc_added_later
if [ "$HUNG" = yes ]; then
  bfail "gc_added_later: the job hung (killed after $HANG_S s)"
elif [ "$RC" -ne 0 ]; then
  bfail "gc_added_later: exit $RC"
else
  c_branch_ok gc_added_later
  printf '  %-22s %5d ms  %7d kB\n' gc_added_later "$SECS" "$RSS_KB"
fi
# A finalizer that loops when the state is closed: the job still ends.
dag gc_at_close gc_at_close
run gc_at_close
if [ "$HUNG" = yes ]; then
  bfail "gc_at_close: the job hung (killed after $HANG_S s): a __gc finalizer's loop at lua_close escapes the limits"
elif [ "$RC" -gt 1 ]; then
  bfail "gc_at_close: exit $RC"
elif ! grep -qE "__gc|$INSTR" gc_at_close.err; then
  bfail "gc_at_close: neither refused (__gc) nor stopped by a limit"
else
  printf '  %-22s %5d ms  exit %d\n' gc_at_close "$SECS" "$RC"
fi

echo "lua_bombs: loops outside process fail the job with the limit's message"
for what in open_loop on_end_loop toplevel; do
  if [ "$what" = toplevel ]; then dag toplevel toplevel_loop toplevel_loop.lua; else dag "$what" "$what"; fi
  run "$what"
  if [ "$HUNG" = yes ]; then bfail "$what: the job hung (killed after $HANG_S s)"; continue; fi
  [ "$RC" -eq 1 ] || { sed 's/^/    | /' "$what.err" | tail -n 5 >&3; bfail "$what: exit $RC, expected 1"; continue; }
  grep -qE "$INSTR" "$what.err" || { sed 's/^/    | /' "$what.err" | tail -n 5 >&3; bfail "$what: the error does not name the limit"; }
  grep -qF "node 'bomb'" "$what.err" || bfail "$what: the error does not name the node"
  printf '  %-22s %5d ms\n' "$what" "$SECS"
done

echo "lua_bombs: a message handler that loops (an error raised by the hook must not run it unbounded)"
bomb loop_xpcall_handler "$INSTR"

[ -z "$FAILED" ] || fail "bombs not contained:$FAILED"
echo "lua_bombs: ok ($(($(date +%s) - START)) s)"
