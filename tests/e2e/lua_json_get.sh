# sluice.json.get: one top-level field of a JSON object, found in place.
source "$(dirname "$0")/lib.sh"
cat > get.yaml <<YAML
nodes:
  one: { use: good:seq, config: { count: 3 } }
  chk: { use: "lua:$SLUICE_SOURCE_DIR/tests/lua/json/get.lua", from: one }
  out: { use: file_sink, from: chk, config: { path: get.out } }
YAML
"$SLUICE" run -q -P "$SLUICE_TEST_PLUGIN_DIR" get.yaml 2> get.err || { cat get.err >&3; fail "sluice.json.get self-check failed"; }
[ "$(sort -u get.out)" = ok ] || fail "self-check emitted '$(cat get.out)'"
[ "$(wc -l < get.out)" -eq 3 ] || fail "not every record was checked"
echo "lua_json_get: ok"
