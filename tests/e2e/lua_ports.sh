# Lua emit_to: a port name with an embedded NUL is refused (not cut short to
# "errors"), and an unknown port names itself.
source "$(dirname "$0")/lib.sh"
try() { # try NAME LUA_PORT_EXPR EXPECTED
  printf 'function process(rec, ctx) ctx:emit_to(%s, "x") end\n' "$2" > "$1.lua"
  cat > "$1.yaml" <<YAML
nodes:
  s: { use: good:seq, config: { count: 1 } }
  l: { use: lua:$1.lua, from: s }
  o: { use: null_sink, from: l }
  e: { use: file_sink, from: l.errors, config: { path: $1.errors } }
YAML
  set +e
  "$SLUICE" run -q -P "$SLUICE_TEST_PLUGIN_DIR" "$1.yaml" 2> "$1.err"
  local st=$?
  set -e
  [ "$st" -eq 1 ] || { cat "$1.err" >&3; fail "$1: exit $st, expected 1"; }
  grep -qF "$3" "$1.err" || { cat "$1.err" >&3; fail "$1: expected '$3'"; }
  [ ! -s "$1.errors" ] || fail "$1: something reached the errors port"
}
try nul '"errors\0junk"' "ctx:emit_to: a port name cannot contain '\\0'"
try unknown '"nope"' "ctx:emit_to: unknown output port 'nope'"
echo "lua_ports: ok"
