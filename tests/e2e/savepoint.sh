#!/usr/bin/env bash
# e2e: savepoints. A paced generator -> keyed running count (2 tasks) ->
# transactional file_sink, checkpoints every second, runs in the background.
#
#  1. `sluice savepoint DAG` prints the savepoint's directory (a complete
#     checkpoint of kind savepoint under ckpt/savepoints/); the job goes on.
#  2. A second `sluice run` on the same checkpoint directory is refused
#     before it touches anything; `--into` an existing directory is refused
#     and the job goes on.
#  3. `sluice savepoint --stop --into DIR`: the job stops without draining,
#     exit 0, "stopped with a savepoint"; its output is exactly what was
#     committed with the savepoint (a prefix of the full result).
#  4. A changed DAG starts from the savepoint (`sluice run --from DIR`): the
#     keyed node's parallelism 2 -> 3, a node added; every key's running count
#     goes on from where it stopped: 1..n, no gap or repeat, total = count.
#  5. Lua code changed between the savepoint and the restart: the state the
#     script declared by name carries over (counts go on), the new code runs.
#  6. Errors: no job running; a DAG without checkpoints; --from a damaged
#     savepoint; --from with --fresh.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"
COUNT=60000

dag() { # dag FILE COUNT_PARALLELISM RATE [EXTRA_NODE_LINE]
  {
    echo "name: sp"
    echo "settings:"
    echo "  workers: 2"
    echo "  checkpoints: { interval: 1s, dir: ./ckpt, keep: 2 }"
    echo "nodes:"
    echo "  gen: { use: generator, config: { kind: clicks, count: $COUNT, rate: $3, users: 400 } }"
    echo "  count: { use: \"$T/stateful.so:running_count\", from: gen, key_by: user_id, parallelism: $2 }"
    echo "  out: { use: file_sink, from: count, config: { path: out.txt } }"
    [ -z "${4:-}" ] || echo "$4"
  } > "$1"
}
dag job.yaml 2 10000


"$SLUICE" run job.yaml > run.out 2> run.err &
pid=$!
trap 'kill -KILL $pid 2> /dev/null || true' EXIT
for _ in $(seq 100); do [ -S ckpt/control.sock ] && break; sleep 0.05; done
[ -S ckpt/control.sock ] || fail "the job has no control socket"
sleep 0.5

# 1.
st 0 sp.out sp.err "$SLUICE" savepoint job.yaml
sp=$(cat sp.out)
case $sp in ./ckpt/savepoints/sp-*) ;; *) fail "savepoint printed '$sp'" ;; esac
grep -q "^kind savepoint$" "$sp/MANIFEST" || fail "$sp/MANIFEST is not a savepoint's"
kill -0 $pid 2> /dev/null || fail "the job stopped after a plain savepoint"

# 2.
st 1 run2.out run2.err "$SLUICE" run job.yaml
grep -q "another sluice job is running with checkpoint directory ./ckpt" run2.err || { cat run2.err >&3; fail "second job: message"; }
st 1 sp2.out sp2.err "$SLUICE" savepoint --into "$sp" job.yaml
grep -q "already exists" sp2.err || { cat sp2.err >&3; fail "--into an existing dir: message"; }
kill -0 $pid 2> /dev/null || fail "the job stopped after a refused savepoint"

# 3.
st 0 stop.out stop.err "$SLUICE" savepoint --stop --into ./final-sp job.yaml
[ "$(cat stop.out)" = "$PWD/./final-sp" ] || fail "stop printed '$(cat stop.out)'"
for _ in $(seq 100); do kill -0 $pid 2> /dev/null || break; sleep 0.05; done
set +e
wait $pid
rc=$?
set -e
trap - EXIT
[ $rc -eq 0 ] || { cat run.err >&3; fail "the stopped job exited $rc"; }
grep -q "job 'sp' stopped with a savepoint" run.err || { cat run.err >&3; fail "no 'stopped with a savepoint' in the summary"; }
committed=$(wc -l < out.txt)
[ "$committed" -gt 0 ] && [ "$committed" -lt $COUNT ] || fail "stopped job committed $committed lines"
cp out.txt at-stop.txt

# 4.
dag changed.yaml 3 0 "  extra: { use: \"$T/stateful.so:last_n\", from: gen, key_by: user_id, config: { n: 2 } }
  extra_out: { use: file_sink, from: extra, config: { path: extra.txt } }"
st 0 run3.out run3.err "$SLUICE" run --from ./final-sp changed.yaml
grep -q "starting from savepoint [0-9]* (./final-sp)" run3.err || { cat run3.err >&3; fail "did not start from the savepoint"; }
cmp -s -n "$(stat -c %s at-stop.txt)" at-stop.txt out.txt || fail "output committed at the savepoint changed"
check_counts "started from the savepoint, rescaled" $COUNT
[ "$(wc -l < extra.txt)" -eq $((COUNT - committed)) ] || fail "the added node saw $(wc -l < extra.txt) records, expected $((COUNT - committed))"

# 5. A Lua operator whose code changes across a stop-with-savepoint.
mkdir -p lua
{
  echo 'local n'
  echo 'function open(ctx) n = ctx:value_state("n") end'
  echo 'function process(rec, ctx)'
  echo '  local c = (n:get() or 0) + 1'
  echo '  n:set(c)'
  echo '  ctx:emit(rec.key .. "," .. c)'
  echo 'end'
} > lua/count.lua
{
  echo "name: splua"
  echo "settings:"
  echo "  workers: 2"
  echo "  checkpoints: { interval: 1s, dir: ./ckpt-lua }"
  echo "nodes:"
  echo "  gen: { use: generator, config: { kind: clicks, count: 20000, rate: 8000, users: 50 } }"
  echo "  count: { use: lua:lua/count.lua, from: gen, key_by: user_id, parallelism: 2 }"
  echo "  out: { use: file_sink, from: count, config: { path: lua-out.txt } }"
} > lua.yaml
"$SLUICE" run lua.yaml > lrun.out 2> lrun.err &
pid=$!
for _ in $(seq 100); do [ -S ckpt-lua/control.sock ] && break; sleep 0.05; done
sleep 0.5
st 0 lsp.out lsp.err "$SLUICE" savepoint --stop --into ./lua-sp lua.yaml
wait $pid || { cat lrun.err >&3; fail "the Lua job failed"; }
sed -i 's/ctx:emit(rec.key/ctx:emit("v2:" .. rec.key/' lua/count.lua
st 0 lrun2.out lrun2.err "$SLUICE" run --from ./lua-sp lua.yaml
grep -q "^v2:" lua-out.txt || fail "the changed Lua code did not run"
sed 's/^v2://' lua-out.txt > lua-counts.txt
check_counts "Lua state across a code change" 20000 lua-counts.txt

# 6.
st 1 e.out e.err "$SLUICE" savepoint job.yaml
grep -q "no running job answers on ./ckpt/control.sock" e.err || { cat e.err >&3; fail "no job: message"; }
printf 'name: n\nnodes:\n  g: { use: generator, config: { count: 1 } }\n  o: { use: null_sink, from: g }\n' > nockpt.yaml
st 1 e.out e.err "$SLUICE" savepoint nockpt.yaml
grep -q "sets no settings.checkpoints.dir" e.err || { cat e.err >&3; fail "no checkpoints: message"; }
cp -a final-sp damaged-sp
truncate -s -5 damaged-sp/MANIFEST
st 1 e.out e.err "$SLUICE" run --from ./damaged-sp job.yaml
grep -q -- "--from ./damaged-sp: MANIFEST" e.err || { cat e.err >&3; fail "--from damaged: message"; }
st 2 e.out e.err "$SLUICE" run --fresh --from ./final-sp job.yaml
grep -q -- "--fresh and --from exclude each other" e.err || { cat e.err >&3; fail "--fresh --from: message"; }
echo "savepoints: on request, refused cases, stop, changed DAG from a savepoint: ok"
