# A Lua on_end with a large final result: emitted a budget at a time
# (return true = call me again), it stays within budget and loses nothing;
# emitted at once, the runtime says it went over budget.
source "$(dirname "$0")/lib.sh"
S="$SLUICE_SOURCE_DIR/tests/lua/on_end/final_results.lua"
run() { # run NAME ALL_AT_ONCE
  cat > "$1.yaml" <<YAML
settings: { batch_size: 64, channel_capacity: 2 }
nodes:
  src: { use: good:seq, config: { count: 20000 } }
  fin: { use: "lua:$S", from: src, config: { all_at_once: $2 } }
  out: { use: file_sink, from: fin, partition: rebalance, config: { path: $1.out } }
YAML
  "$SLUICE" run -P "$SLUICE_TEST_PLUGIN_DIR" "$1.yaml" 2> "$1.err" || { cat "$1.err" >&3; fail "$1: run failed"; }
  [ "$(wc -l < "$1.out")" -eq 20000 ] || fail "$1: $(wc -l < "$1.out") of 20000 final records"
  [ "$(sort -u "$1.out" | wc -l)" -eq 20000 ] || fail "$1: duplicates in the final records"
}
run budgeted false
if grep -q "over its budget" budgeted.err; then cat budgeted.err >&3; fail "budgeted on_end went over budget"; fi
run burst true
grep -qF "on_end emitted 20000 records in one call, over its budget of 64" burst.err ||
  { cat burst.err >&3; fail "an on_end burst was not reported"; }
echo "lua_on_end: ok"
