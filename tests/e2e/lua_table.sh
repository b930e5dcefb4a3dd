# The sandbox's own table.sort and table.move: correct (self-checking script),
# and stopped by lua_timeout while they run in C.
source "$(dirname "$0")/lib.sh"
T="$SLUICE_SOURCE_DIR/tests/lua/table"
cat > check.yaml <<YAML
nodes:
  one: { use: good:seq, config: { count: 1 } }
  chk: { use: "lua:$T/sortmove.lua", from: one }
  out: { use: file_sink, from: chk, config: { path: check.out } }
YAML
"$SLUICE" run -q -P "$SLUICE_TEST_PLUGIN_DIR" check.yaml 2> check.err || { cat check.err >&3; fail "sort/move self-check failed"; }
[ "$(cat check.out)" = ok ] || fail "sort/move self-check emitted '$(cat check.out)'"

for what in sort move; do
  printf '%s\n' "$what" > in.txt
  cat > slow.yaml <<YAML
nodes:
  src: { use: file_source, config: { path: in.txt } }
  s: { use: "lua:$T/slow.lua", from: src, on_error: skip, config: { lua_timeout: 100ms, lua_instructions: 100000000 } }
  out: { use: file_sink, from: s, config: { path: slow.out } }
YAML
  start=$(date +%s%N)
  "$SLUICE" run slow.yaml 2> slow.err || { cat slow.err >&3; fail "$what: the job failed"; }
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  grep -qF "table.$what exceeded the time limit of 100 ms (lua_timeout)" slow.err ||
    { cat slow.err >&3; fail "$what: not stopped by lua_timeout"; }
  [ ! -s slow.out ] || fail "$what: the record was emitted after the limit"
  [ "$ms" -lt 5000 ] || fail "$what: took $ms ms"
  echo "table.$what stopped after the deadline; run took $ms ms"
done
# A pattern call first thing in process (the hook's clock not started yet),
# with a huge step budget: lua_timeout still stops it.
cat > pfirst.yaml <<YAML
nodes:
  src: { use: good:seq, config: { count: 1 } }
  p: { use: "lua:$T/pattern_first.lua", from: src, on_error: skip,
       config: { lua_timeout: 100ms, lua_pattern_steps: 1000000000000 } }
  out: { use: file_sink, from: p, config: { path: pfirst.out } }
YAML
start=$(date +%s%N)
timeout 20 "$SLUICE" run -P "$SLUICE_TEST_PLUGIN_DIR" pfirst.yaml 2> pfirst.err || { cat pfirst.err >&3; fail "pattern first: the job failed or hung"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep -qF "pattern matching exceeded the time limit (lua_timeout)" pfirst.err ||
  { cat pfirst.err >&3; fail "pattern first: not stopped by lua_timeout"; }
[ "$ms" -lt 5000 ] || fail "pattern first: took $ms ms"
echo "a pattern first in process stopped by lua_timeout; run took $ms ms"
echo "lua_table: ok"
