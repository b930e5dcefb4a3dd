# Invalid Lua limit values stop the job at open with a message naming the key.
source "$(dirname "$0")/lib.sh"
printf 'function process(rec, ctx) end\n' > nop.lua
check() { # check CONFIG EXPECTED
  cat > lim.yaml <<YAML
nodes:
  s: { use: good:seq, config: { count: 1 } }
  l: { use: lua:nop.lua, from: s, config: { $1 } }
  o: { use: null_sink, from: l }
YAML
  set +e
  "$SLUICE" run -P "$SLUICE_TEST_PLUGIN_DIR" lim.yaml 2> lim.err
  local st=$?
  set -e
  [ "$st" -eq 1 ] || { cat lim.err >&3; fail "'$1': exit $st, expected 1"; }
  grep -qF "node 'l'" lim.err && grep -qF "$2" lim.err || { cat lim.err >&3; fail "'$1': expected '$2'"; }
}
check "lua_memory_mb: 0" "lua_memory_mb must be between 1 and 1048576"
check "lua_instructions: -5" "lua_instructions must be at least 1"
check "lua_timeout: 0ms" "lua_timeout must be at least 1ms"
check "lua_pattern_steps: 0" "lua_pattern_steps must be at least 1"
echo "lua_limits_config: ok"
