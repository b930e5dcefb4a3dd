#!/usr/bin/env bash
# e2e: memcheck on the real binary and plugins (skipped without valgrind, and
# in sanitizer builds, where valgrind cannot run the binary).
#
# Each run uses `valgrind --error-exitcode=99 --leak-check=full
# --errors-for-leak-kinds=definite --track-fds=no`: an invalid read/write, a
# use of uninitialised memory or a definite leak turns the exit status into
# 99. Runs and their expected status:
#   - run of the quickstart DAG (5000 clicks, 100 ms apart: 9
#     minutes, so both windows fire 9 times)                       -> 0
#   - validate of bad-input files (many errors, a YAML error,
#     unknown plugins)                                              -> 2
#   - run with on_error: dead_letter                                -> 0
#   - run whose operator fails in open, run failing on a record     -> 1
#   - graph, plugins --describe                                     -> 0
#   - SIGINT on an endless job (graceful stop)                      -> 0
# The outputs are checked too, so a run that exits early cannot pass.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"

if ! command -v valgrind > /dev/null 2>&1; then
  echo "SKIPPED: valgrind not installed"
  exit 0
fi
cache="${SLUICE_BUILD_DIR:-}/CMakeCache.txt"
if { [ -f "$cache" ] && grep -qE '^SLUICE_(ASAN|TSAN):BOOL=(ON|1|TRUE|YES)' "$cache"; } ||
  ldd "$SLUICE" 2> /dev/null | grep -qE 'lib(a|t)san'; then
  echo "SKIPPED: sanitizer build (valgrind cannot run AddressSanitizer/ThreadSanitizer binaries)"
  exit 0
fi

n=0
# vg WANT NAME ARGS...: sluice ARGS under memcheck, stdout NAME.out, stderr
# NAME.err, valgrind's report NAME.vg; expect exit status WANT.
vg() {
  local want=$1 name=$2
  shift 2
  n=$((n + 1))
  set +e
  valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-fds=no \
    --log-file="$name.vg" "$SLUICE" "$@" > "$name.out" 2> "$name.err"
  local got=$?
  set -e
  if [ "$got" -eq 99 ]; then
    sed 's/^/    | /' "$name.vg" >&2
    fail "$name: memcheck found errors (sluice $*)"
  fi
  if [ "$got" -ne "$want" ]; then
    sed 's/^/    | /' "$name.err" "$name.vg" >&2
    fail "$name: 'sluice $*' under valgrind exited $got, expected $want"
  fi
  grep -qE 'ERROR SUMMARY: 0 errors from 0 contexts' "$name.vg" || { cat "$name.vg" >&2; fail "$name: memcheck reported errors"; }
  grep -qE 'definitely lost: [1-9]' "$name.vg" && { cat "$name.vg" >&2; fail "$name: definite leak"; }
  return 0
}

# The quickstart with 5000 clicks, 100 ms of event time apart (500 s from a
# whole minute: 9 one-minute windows per product, and 9 top-5 lines).
sed -e 's/count: 200000/count: 5000/' -e 's/ts_step_ms: 3 }/ts_step_ms: 100 }/' \
  "$SLUICE_SOURCE_DIR/examples/quickstart/dag.yaml" > qs.yaml
grep -q 'count: 5000,.*ts_step_ms: 100 }' qs.yaml ||
  fail "could not reduce the quickstart count and spread its clicks (did examples/quickstart/dag.yaml change?)"
vg 0 qs run qs.yaml
[ -s quickstart-views.jsonl ] && [ -s quickstart-top.jsonl ] || fail "qs: no output"
views=$(awk '$1 == "parse" && NF == 6 { print $4 }' qs.err)
total=$(awk -F'"views":' '{ s += $2 + 0 } END { print s + 0 }' quickstart-views.jsonl)
[ -n "$views" ] && [ "$total" -eq "$views" ] || fail "qs: views sum to $total, parse emitted '$views'"
minutes=$(sed 's/.*"window_start":\([0-9]*\),.*/\1/' quickstart-views.jsonl | sort -u | wc -l)
[ "$minutes" -eq 9 ] || fail "qs: views in $minutes minutes, not 9"
[ "$(wc -l < quickstart-top.jsonl)" -eq 9 ] || fail "qs: $(wc -l < quickstart-top.jsonl) top lines, not 9"
[ "$(grep -o '{"value":"p[0-9]*","sum":[0-9]*}' quickstart-top.jsonl | wc -l)" -eq 45 ] ||
  fail "qs: quickstart-top.jsonl does not hold 5 products per minute"
[ "$(grep -c '^    counter late_records = 0$' qs.err)" -eq 2 ] || { cat qs.err >&2; fail "qs: a window counted late records"; }

# validate on bad input: the errors are found, and the status is 2, not 99.
mkdir -p bad
for f in all_errors yaml_unclosed_quote unknown_plugin; do
  src="$SLUICE_SOURCE_DIR/tests/bad_input/$f.yaml"
  [ -f "$src" ] || fail "missing $src"
  esc="$(printf '%s' "$T" | sed 's/[\\&|]/\\&/g')"
  sed "s|@TESTPLUGINS@|$esc|g" "$src" > "bad/$f.yaml"
  vg 2 "bad-$f" validate "bad/$f.yaml"
  first=$(sed -n 's/^# expect: //p' "$src" | head -n 1)
  grep -qF -- "$first" "bad-$f.err" || { cat "bad-$f.err" >&2; fail "bad-$f: expected '$first'"; }
done

# dead_letter: records take the errors port.
cat > dl.yaml <<EOF
name: dl
settings: { workers: 2 }
nodes:
  src: { use: "$T/good.so:seq", config: { count: 3000 } }
  f: { use: "$T/misbehave.so:fail_every", from: src, parallelism: 2, on_error: dead_letter, config: { every: 3 } }
  good: { use: file_sink, from: f, config: { path: dl.good } }
  errs: { use: file_sink, from: f.errors, config: { path: dl.errs, format: envelope } }
EOF
vg 0 dl run dl.yaml
[ "$(wc -l < dl.good)" -eq 2000 ] && [ "$(wc -l < dl.errs)" -eq 1000 ] || fail "dl: expected 2000 good and 1000 dead letters"

# Failures: in open (other operators were opened and must be closed), and on a record.
cat > openfail.yaml <<EOF
name: openfail
nodes:
  src: { use: file_source, config: { path: qs.yaml } }
  bad: { use: "$T/misbehave.so:open_fails", from: src }
  out: { use: file_sink, from: bad, config: { path: openfail.out } }
EOF
vg 1 openfail run openfail.yaml
grep -qF "cannot reach the imaginary database" openfail.err || fail "openfail: no error message"
sed -e 's/on_error: dead_letter, //' -e '/errs:/d' -e 's/^name: dl$/name: recfail/' dl.yaml > recfail.yaml
vg 1 recfail run recfail.yaml
grep -qE "record at offset [0-9]+: poison record n=[0-9]+" recfail.err || fail "recfail: no error message"

# graph and plugins.
vg 0 graph graph qs.yaml
grep -qF 'clicks[0] -> parse[0]' graph.out || fail "graph: no chained task"
vg 0 describe plugins --describe io
[ "$(grep -c '^operator ' describe.out)" -eq 5 ] || fail "describe: expected 5 operators"
vg 2 describe-nosuch plugins --describe nosuch

# A graceful stop by SIGINT.
cat > endless.yaml <<'EOF'
name: endless
settings: { workers: 2 }
nodes:
  gen: { use: generator, config: { count: 0, rate: 50000 } }
  out: { use: file_sink, from: gen, partition: rebalance, config: { path: endless.jsonl } }
EOF
valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-fds=no \
  --log-file=endless.vg "$SLUICE" run endless.yaml > endless.out 2> endless.err &
pid=$!
for _ in $(seq 300); do
  [ -s endless.jsonl ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.05
done
[ -s endless.jsonl ] || { kill -KILL "$pid" 2> /dev/null; cat endless.err endless.vg >&2; fail "endless: no output after 15 s"; }
kill -INT "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2> /dev/null || break; sleep 0.05; done
if kill -0 "$pid" 2> /dev/null; then
  kill -KILL "$pid" 2> /dev/null || true
  fail "endless: still running 10 s after SIGINT under valgrind"
fi
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" -ne 99 ] || { cat endless.vg >&2; fail "endless: memcheck found errors after SIGINT"; }
[ "$rc" -eq 0 ] || { cat endless.err >&2; fail "endless: exited $rc after SIGINT, expected 0"; }
grep -qE 'ERROR SUMMARY: 0 errors from 0 contexts' endless.vg || { cat endless.vg >&2; fail "endless: memcheck reported errors"; }
n=$((n + 1))

# No malloc per record: the number of heap allocations of a run does not
# grow with its input. 10x the records may cost a few more batches (overflow
# under scheduling variance), never thousands more allocations.
allocs() {
  cat > "alloc$1.yaml" <<YAML
settings: { workers: 2, parallelism: 2, batch_size: 64, channel_capacity: 4 }
nodes:
  g: { use: generator, config: { count: $1 } }
  m: { use: clicks:add_field, from: g }
  c: { use: clicks:count_by_key, from: m, key_by: product_id }
  r: { use: clicks:parse_views, from: g, partition: rebalance, parallelism: 3, on_error: dead_letter }
  o: { use: null_sink, from: [c, r] }
  e: { use: null_sink, from: r.errors }
YAML
  vg 0 "alloc$1" run -q "alloc$1.yaml"
  sed -nE 's/.*total heap usage: ([0-9,]+) allocs.*/\1/p' "alloc$1.vg" | tr -d ,
}
small=$(allocs 20000)
large=$(allocs 200000)
[ -n "$small" ] && [ -n "$large" ] || fail "could not read valgrind's heap summary"
echo "heap allocations: $small for 20000 records, $large for 200000"
[ $((large - small)) -lt 200 ] ||
  fail "allocations grow with the input ($small for 20000 records, $large for 200000): a malloc per record?"

echo "valgrind: ok ($n runs clean)"
