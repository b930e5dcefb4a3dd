#!/usr/bin/env bash
# e2e: the `sluice` command line.
#
#  - help: `sluice --help`, `sluice help [CMD]`, `sluice CMD --help|-h` exit 0
#    and print a usage line naming the command; no command / unknown command /
#    unknown help topic / missing or extra DAG operand exit 2 with a message;
#  - version: the project version and the plugin ABI of sdk/include/sluice.h;
#  - plugins: the built-in plugins and their operators; --describe of an
#    operator (config keys, types, defaults), of a whole plugin, of an unknown
#    name (exit 2);
#  - graph: the quickstart plan as DOT (chained tasks clicks -> parse and
#    top -> out, two views tasks, per_product; key_by edges into views and
#    into top, rebalance edges into per_product; well-formed, and accepted by
#    `dot` when installed); -o FILE;
#  - run: tiny batches/channels/one worker give the same result as the
#    defaults, and both equal an independent count of the generator's raw
#    output; the summary (and -q without it); invalid DAG -> 2; a failing
#    open -> 1 naming the node and the plugin's message; an undeclared port
#    -> 1; --log-level (bogus -> 2, error silences info); JSON log lines.
source "$(dirname "$0")/lib.sh"

: "${SLUICE_SOURCE_DIR:?}"
: "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C
T="$SLUICE_TEST_PLUGIN_DIR"
QS="$SLUICE_SOURCE_DIR/examples/quickstart/dag.yaml"

# has FILE TEXT...: every TEXT occurs (fixed string) in FILE.
has() {
  local f=$1
  shift
  for t in "$@"; do
    grep -qF -- "$t" "$f" || { sed 's/^/    | /' "$f" >&2; fail "'$t' not found in $f"; }
  done
}
hasnt() {
  local f=$1
  shift
  for t in "$@"; do
    if grep -qF -- "$t" "$f"; then sed 's/^/    | /' "$f" >&2; fail "'$t' unexpectedly found in $f"; fi
  done
}

# ------------------------------------------------------------------ help
for cmd in run validate graph plugins version; do
  for form in "help $cmd" "$cmd --help" "$cmd -h"; do
    # shellcheck disable=SC2086
    st 0 help.out help.err "$SLUICE" $form
    head -n 1 help.out | grep -q "^usage: sluice $cmd\b" ||
      fail "'sluice $form': first line is '$(head -n 1 help.out)', expected 'usage: sluice $cmd ...'"
    [ ! -s help.err ] || fail "'sluice $form' wrote to stderr: $(cat help.err)"
  done
done
# The per-command help describes the command's own options.
"$SLUICE" run --help > h.run
has h.run --workers --batch-size --channel-capacity --quiet --log-level "Exit status"
"$SLUICE" graph --help > h.graph
has h.graph --output
"$SLUICE" plugins --help > h.plugins
has h.plugins --describe

for form in "--help" "help" "-h"; do
  # shellcheck disable=SC2086
  st 0 main.out main.err "$SLUICE" $form
  head -n 1 main.out | grep -q '^usage: sluice <command>' || fail "'sluice $form' printed no main usage line"
  for cmd in run validate graph plugins version help; do
    grep -q "^  $cmd\b" main.out || fail "'sluice $form' does not list the command '$cmd'"
  done
done

st 2 none.out none.err "$SLUICE"
has none.err "usage: sluice <command>"
[ ! -s none.out ] || fail "sluice without a command wrote its usage to stdout, expected stderr"

st 2 unk.out unk.err "$SLUICE" frobnicate
has unk.err "unknown command 'frobnicate'" "usage: sluice <command>"

st 2 unkh.out unkh.err "$SLUICE" help frobnicate
has unkh.err "no help for 'frobnicate'"

for cmd in run validate graph; do
  st 2 miss.out miss.err "$SLUICE" "$cmd"
  has miss.err "expected exactly one DAG file" "usage: sluice $cmd"
  st 2 two.out two.err "$SLUICE" "$cmd" "$QS" "$QS"
  has two.err "expected exactly one DAG file"
done
st 2 badopt.out badopt.err "$SLUICE" run --no-such-option "$QS"
has badopt.err "usage: sluice run"
st 2 w0.out w0.err "$SLUICE" run --workers 0 "$QS"
has w0.err "--workers must be" "got '0'"
st 2 pextra.out pextra.err "$SLUICE" plugins extra
has pextra.err "plugins takes no operands"

# ------------------------------------------------------------------ version
want_version=$(sed -n 's/^project(Sluice VERSION \([0-9.]*\).*/\1/p' "$SLUICE_SOURCE_DIR/CMakeLists.txt")
[ -n "$want_version" ] || fail "cannot read the project version from CMakeLists.txt"
abi_major=$(sed -n 's/^#define SL_ABI_MAJOR \([0-9]*\).*/\1/p' "$SLUICE_SOURCE_DIR/sdk/include/sluice.h")
abi_minor=$(sed -n 's/^#define SL_ABI_MINOR \([0-9]*\).*/\1/p' "$SLUICE_SOURCE_DIR/sdk/include/sluice.h")
abi="$abi_major.$abi_minor"
[ "$abi" != . ] || fail "cannot read the ABI version from sluice.h"
for form in version --version; do
  st 0 ver.out ver.err "$SLUICE" $form
  want="sluice $want_version (plugin ABI $abi)"
  [ "$(cat ver.out)" = "$want" ] || fail "'sluice $form' printed '$(cat ver.out)', expected '$want'"
done

st 2 vextra.out vextra.err "$SLUICE" version extra
has vextra.err "version takes no arguments"

# A reader that goes away: the sink fails with EPIPE (exit 1, a message),
# never a silent SIGPIPE kill (141).
cat > pipe.yaml <<'YAML'
nodes:
  g: { use: generator, config: { count: 200000 } }
  o: { use: stdout_sink, from: g }
YAML
set +e
"$SLUICE" run -q pipe.yaml 2> pipe.err | head -1 > /dev/null
pipe_status=${PIPESTATUS[0]}
set -e
[ "$pipe_status" -eq 1 ] || fail "run into a closed pipe exited $pipe_status, expected 1"
has pipe.err "Broken pipe" "node 'o'"

# ------------------------------------------------------------------ plugins
st 0 plugins.out plugins.err "$SLUICE" plugins
for p in generator io clicks; do
  grep -qE "^$p [0-9]+\.[0-9]+\.[0-9]+  /.*/$p\.so\$" plugins.out || fail "sluice plugins does not list plugin '$p' with its version and path"
done
check_op_line() { # NAME KIND
  grep -qE "^    $1 +$2 +[^ ]" plugins.out || fail "sluice plugins does not list operator '$1' ($2) with a description"
}
check_op_line generator source
check_op_line file_source source
check_op_line stdin_source source
check_op_line stdout_sink sink
check_op_line file_sink sink
check_op_line null_sink sink
check_op_line parse_views transform
check_op_line count_by_key transform
# The test plugin directory adds plugins, and the broken ones there are
# reported as warnings without failing the listing.
st 0 plugins_t.out plugins_t.err "$SLUICE" plugins -P "$T"
grep -q '^good 1\.0\.0 ' plugins_t.out || fail "plugins -P $T does not list the 'good' test plugin"
grep -q '^misbehave 1\.0\.0 ' plugins_t.out || fail "plugins -P $T does not list the 'misbehave' test plugin"
has plugins_t.err "bad_abi.so: plugin ABI major version 99"

st 0 desc.out desc.err "$SLUICE" plugins --describe generator
has desc.out "operator generator" "kind:        source"
for row in "count int 1000000" "rate int 0" "seed int 7" "kind string clicks" "start_ts int 1700000000000"; do
  set -- $row
  grep -qE "^    $1 +$2 +$3 +[^ ]" desc.out || fail "describe generator: no row '$1 $2 $3 <description>'"
done
# The same through the short option and the PLUGIN:OP form.
st 0 desc2.out desc2.err "$SLUICE" plugins -d generator:generator
cmp -s desc.out desc2.out || fail "'-d generator:generator' differs from '--describe generator'"

st 0 io.out io.err "$SLUICE" plugins --describe io
[ "$(grep -c '^operator ' io.out)" -eq 5 ] || fail "describe io: $(grep -c '^operator ' io.out) operators, expected 5"
for op in file_source stdin_source stdout_sink file_sink null_sink; do
  grep -q "^operator $op  (plugin io " io.out || fail "describe io does not describe $op"
done
grep -qE '^    path +string +\(required\)' io.out || fail "describe io: file_source/file_sink 'path' not shown as a required string"
# A source that ignores its budget is named in a warning (once), and nothing is lost.
cat > greedy.yaml <<YAML
settings: { batch_size: 16 }
nodes:
  g: { use: "$T/misbehave.so:greedy" }
  o: { use: null_sink, from: g }
YAML
st 0 greedy.out greedy.err "$SLUICE" run greedy.yaml
has greedy.err "node g[0]" "poll emitted 160 records in one call, over its budget of 16"
[ "$(grep -c 'over its budget' greedy.err)" -eq 1 ] || fail "the budget warning was not logged exactly once"
grep -qE '^  o +1 +480 ' greedy.err || { cat greedy.err >&2; fail "greedy: the sink did not get all 480 records"; }
# A scheme operator says how to use it, and that it takes free config keys.
st 0 luad.out luad.err "$SLUICE" plugins --describe lua
has luad.out "use as:      lua:PATH (a file, relative to the DAG file)" "(and any other key, for the operator)" "lua_memory_mb"
# A .so path with several operators describes all of them.
st 0 iop.out iop.err "$SLUICE" plugins --describe "$SLUICE_PLUGIN_PATH/io.so"
[ "$(grep -c '^operator ' iop.out)" -eq 5 ] || fail "describe io.so by path: $(grep -c '^operator ' iop.out) operators, expected 5"
# An empty plugin directory on the path is fine (no crash, no UB).
mkdir -p emptyplugins
SLUICE_PLUGIN_PATH="$PWD/emptyplugins:$SLUICE_PLUGIN_PATH" st 0 ep.out ep.err "$SLUICE" plugins
has ep.out "generator"
# Hostile generator config: timestamps saturate instead of overflowing
# (the ASan+UBSan build halts on signed overflow).
cat > ovf.yaml <<'YAML'
nodes:
  g: { use: generator, config: { count: 5, ts_step_ms: 4611686018427387904 } }
  o: { use: file_sink, from: g, config: { path: ovf.out, format: envelope } }
YAML
st 0 ovf.run.out ovf.err "$SLUICE" run -q ovf.yaml
grep -q '"ts":9223372036854775807' ovf.out || fail "generator: an overflowing ts did not saturate"
grep -qE '^    append +bool +false' io.out || fail "describe io: file_sink 'append' bool default false missing"
grep -qE '^    format +string +value' io.out || fail "describe io: sinks' 'format' string default value missing"

st 0 seq.out seq.err "$SLUICE" plugins --describe "$T/good.so:seq"
has seq.out "operator seq  (plugin good 1.0.0"
grep -qE '^    count +int +100 ' seq.out || fail "describe good.so:seq: no 'count int 100' row"

st 2 nosuch.out nosuch.err "$SLUICE" plugins --describe nosuch
has nosuch.err "unknown operator 'nosuch'"
[ ! -s nosuch.out ] || fail "--describe nosuch printed on stdout: $(cat nosuch.out)"

# ------------------------------------------------------------------ graph
st 0 plan.dot graph.err "$SLUICE" graph "$QS"
head -n 1 plan.dot | grep -qF 'digraph "quickstart" {' || fail "graph: first line is '$(head -n 1 plan.dot)'"
[ "$(tail -n 1 plan.dot)" = "}" ] || fail "graph: the DOT text does not end with '}'"
chain_task=$(grep -F 'clicks[0] -> parse[0]' plan.dot | sed -n 's/^ *\(t[0-9]*\) \[.*/\1/p')
[ -n "$chain_task" ] || fail "graph: no task labelled with the chain 'clicks[0] -> parse[0]'"
[ "$(grep -cE '^ *t[0-9]+ \[label=.*\\nviews\[[01]\]"' plan.dot)" -eq 2 ] ||
  fail "graph: expected two tasks views[0] and views[1]"
views_tasks=$(grep -E '^ *t[0-9]+ \[label=.*\\nviews\[[01]\]"' plan.dot | sed 's/^ *\(t[0-9]*\) .*/\1/' | sort)
top_task=$(grep -F 'top[0] -> out[0]' plan.dot | sed -n 's/^ *\(t[0-9]*\) \[.*/\1/p')
[ -n "$top_task" ] || fail "graph: no task labelled with the chain 'top[0] -> out[0]'"
pp_task=$(grep -E '^ *t[0-9]+ \[label=.*\\nper_product\[0\]"' plan.dot | sed 's/^ *\(t[0-9]*\) .*/\1/')
[ -n "$pp_task" ] || fail "graph: no task per_product[0]"
[ "$(grep -cE '^ *t[0-9]+ \[label=' plan.dot)" -eq 5 ] || fail "graph: expected 5 tasks"
keyby_targets=$(grep -E "^ *$chain_task -> t[0-9]+ \[label=\"key_by\"" plan.dot | sed 's/.*-> \(t[0-9]*\) .*/\1/' | sort)
[ "$keyby_targets" = "$views_tasks" ] ||
  fail "graph: key_by edges from $chain_task go to '$keyby_targets', expected the views tasks '$views_tasks'"
for t in $views_tasks; do # each views task: key_by to top, rebalance to per_product
  grep -qE "^ *$t -> $top_task \[label=\"key_by\"" plan.dot || fail "graph: no key_by edge $t -> $top_task (top)"
  grep -qE "^ *$t -> $pp_task \[label=\"rebalance\"" plan.dot || fail "graph: no rebalance edge $t -> $pp_task (per_product)"
done
[ "$(grep -c 'label="key_by"' plan.dot)" -eq 4 ] || fail "graph: expected exactly 4 key_by edges"
[ "$(grep -c 'label="rebalance"' plan.dot)" -eq 2 ] || fail "graph: expected exactly 2 rebalance edges"
# Structure: every edge joins declared tasks, braces balance.
python3 - plan.dot <<'PY' || fail "graph: the DOT text is not well-formed"
import re, sys
text = open(sys.argv[1]).read()
assert text.count("{") == text.count("}"), "unbalanced braces"
nodes = set(re.findall(r"^\s*(t\d+) \[label=", text, re.M))
edges = re.findall(r"^\s*(t\d+) -> (t\d+) \[", text, re.M)
assert nodes and edges, "no tasks or no edges"
for a, b in edges:
    assert a in nodes and b in nodes, f"edge {a} -> {b} names an undeclared task"
for line in text.splitlines()[1:-1]:
    assert line.rstrip().endswith(";") or line.strip() == "", f"statement without ';': {line}"
PY
if command -v dot > /dev/null 2>&1; then
  dot -Tsvg plan.dot > plan.svg 2> dot.err || fail "dot rejects the graph: $(cat dot.err)"
  grep -q '<svg' plan.svg || fail "dot produced no SVG"
else
  echo "cli: graphviz 'dot' not installed: skipped rendering the DOT output (structure checked with python)"
fi
st 0 graph-o.out graph-o.err "$SLUICE" graph -o plan-o.dot "$QS"
[ ! -s graph-o.out ] || fail "graph -o FILE also wrote to stdout"
cmp -s plan.dot plan-o.dot || fail "graph -o FILE differs from the stdout output"
# -w 1: every task placed on worker 0.
st 0 plan-w1.dot /dev/null "$SLUICE" graph -w 1 "$QS"
[ "$(grep -c '(worker 0)' plan-w1.dot)" -eq 5 ] || fail "graph -w 1: not all 5 tasks on worker 0"

# ------------------------------------------------------------------ run
cat > small.yaml <<'EOF'
name: small
nodes:
  clicks:
    use: generator
    config: { kind: clicks, count: 2000, seed: 3 }
  parse:
    use: clicks:parse_views
    from: clicks
  counts:
    use: clicks:count_by_key
    from: parse
    key_by: $key
    parallelism: 2
  out:
    use: file_sink
    from: counts
    config: { path: small.jsonl }
EOF
st 0 run.out run.err "$SLUICE" run small.yaml
sort small.jsonl > default.sorted
st 0 tiny.out tiny.err "$SLUICE" run --workers 1 --batch-size 1 --channel-capacity 1 small.yaml
sort small.jsonl > tiny.sorted
diff -u default.sorted tiny.sorted || fail "--workers 1 --batch-size 1 --channel-capacity 1 changes the output"
has tiny.err "running: 4 tasks on 1 worker"
st 0 quiet.out quiet.err "$SLUICE" run -q small.yaml
sort small.jsonl > quiet.sorted
diff -u default.sorted quiet.sorted || fail "run -q changes the output"
# Independent reference: the generator's raw records, counted with grep/sort/uniq.
cat > raw.yaml <<'EOF'
name: raw
nodes:
  clicks: { use: generator, config: { kind: clicks, count: 2000, seed: 3 } }
  out: { use: file_sink, from: clicks, config: { path: raw.jsonl } }
EOF
st 0 /dev/null last.err "$SLUICE" run -q raw.yaml
[ "$(wc -l < raw.jsonl)" -eq 2000 ] || fail "raw generator output has $(wc -l < raw.jsonl) lines, not 2000"
grep '"action":"view"' raw.jsonl | grep -o '"product_id":"[^"]*"' | cut -d'"' -f4 | sort | uniq -c |
  awk '{ printf "{\"key\":\"%s\",\"count\":%d}\n", $2, $1 }' | sort > reference.sorted
[ -s reference.sorted ] || fail "reference count is empty"
diff -u reference.sorted default.sorted || fail "run output differs from the grep/sort/uniq reference"
views=$(grep -c '"action":"view"' raw.jsonl)

# The summary: a header, a line per node with its task count and figures, the rate.
[ ! -s run.out ] || fail "run wrote to stdout: $(head -n 3 run.out)"
has run.err "job 'small' finished in " "records/s"
nkeys=$(wc -l < default.sorted)
row run.err clicks 1 0 2000 0 0
row run.err parse 1 2000 "$views" 0 0
row run.err counts 2 "$views" "$nkeys" 0 0
row run.err out 1 "$nkeys" 0 0 0
has run.err "sources emitted 2000 records"
# -q: no summary (and, when its help says so, no info lines either).
hasnt quiet.err "records/s" "job 'small' finished" "records in"
if "$SLUICE" run --help | grep -q -- '-q, --quiet .*only warnings and errors'; then
  hasnt quiet.err " info "
fi

# An invalid DAG is not run: exit 2, the error, no output file.
sed 's/from: parse$/from: prase/' small.yaml | sed 's/small.jsonl/never.jsonl/' > invalid.yaml
grep -q 'from: prase' invalid.yaml || fail "could not derive invalid.yaml"
st 2 inv.out inv.err "$SLUICE" run invalid.yaml
has inv.err "invalid.yaml:" "error: node 'counts': unknown input node 'prase'" "(did you mean 'parse'?)"
[ ! -e never.jsonl ] || fail "an invalid DAG was run (never.jsonl exists)"
st 2 ginv.out ginv.err "$SLUICE" graph invalid.yaml
has ginv.err "unknown input node 'prase'"
[ ! -s ginv.out ] || fail "graph of an invalid DAG printed a graph"
st 2 nof.out nof.err "$SLUICE" run no-such-file.yaml
has nof.err "no-such-file.yaml: error: cannot read the DAG file"

# A plugin whose open fails: exit 1, the node and the plugin's own message.
cat > openfail.yaml <<EOF
name: openfail
nodes:
  src: { use: "$T/good.so:seq", config: { count: 10 } }
  bad: { use: "$T/misbehave.so:open_fails", from: src }
  out: { use: file_sink, from: bad, config: { path: openfail.jsonl } }
EOF
st 0 /dev/null last.err "$SLUICE" validate openfail.yaml
st 1 of.out of.err "$SLUICE" run openfail.yaml
has of.err "node 'bad'" "open_fails" "cannot reach the imaginary database at 10.0.0.1"
[ ! -s openfail.jsonl ] || fail "records were written although an operator failed to open"

sed -e 's/open_fails/bad_port/' -e 's/openfail/badport/g' openfail.yaml > badport.yaml
st 1 bp.out bp.err "$SLUICE" run badport.yaml
has bp.err "node 'bad'" "unknown port 7" "job 'badport' FAILED"
[ ! -s badport.jsonl ] || fail "bad_port: records reached the sink"

# Log levels.
st 2 ll.out ll.err "$SLUICE" run --log-level bogus small.yaml
has ll.err "unknown log level 'bogus'"
st 0 lle.out lle.err "$SLUICE" run --log-level error small.yaml
hasnt lle.err "info" "running:"
has lle.err "job 'small' finished"
SLUICE_LOG_LEVEL=error st 0 lle2.out lle2.err "$SLUICE" run small.yaml
hasnt lle2.err "running:"
st 0 lli.out lli.err "$SLUICE" run small.yaml
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info +\[runtime\] job .small. running' lli.err ||
  fail "default log level: no 'info [runtime] job ... running' line"

# JSON logs: every log line is a JSON object with ts, level, where, msg; the
# messages keep quotes, backslashes and control characters intact.
cat > jsonlog.yaml <<'EOF'
name: jsonlog
nodes:
  src: { use: file_source, config: { path: "no\"such\\dir\t/x.txt" } }
  out: { use: null_sink, from: src }
EOF
printf '{"t":5}\nnot json\n' > tsin.txt
cat > jsonwarn.yaml <<'EOF'
name: jsonwarn
nodes:
  src: { use: file_source, config: { path: tsin.txt, ts_field: t } }
  out: { use: null_sink, from: src }
EOF
SLUICE_LOG_FORMAT=json st 1 jl.out jl.err "$SLUICE" run jsonlog.yaml
SLUICE_LOG_FORMAT=json st 0 jw.out jw.err "$SLUICE" run jsonwarn.yaml
cat jl.err jw.err > json.err
grep '^{' json.err > json.lines || true
[ "$(wc -l < json.lines)" -ge 3 ] || { cat json.err >&2; fail "SLUICE_LOG_FORMAT=json: expected at least 3 JSON log lines (error, info, warn)"; }
python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' < json.lines || fail "a JSON log line is not valid JSON"
python3 - json.lines <<'PY' || fail "JSON log lines lack fields or lost characters"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for r in recs:
    assert isinstance(r, dict) and set(r) >= {"ts", "level", "where", "msg"}, r
    assert r["level"] in ("error", "warn", "info", "debug"), r
levels = {r["level"] for r in recs}
assert {"error", "warn", "info"} <= levels, levels
err = [r for r in recs if r["level"] == "error"][0]
assert "cannot open 'no\"such\\dir\t/x.txt'" in err["msg"], err["msg"]
warn = [r for r in recs if r["level"] == "warn"][0]
assert warn["where"] == "node src[0]" and "line 2" in warn["msg"], warn
PY
# ... and no text-format log line is left among them.
if grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.* (error|warn|info|debug) ' json.err; then
  fail "SLUICE_LOG_FORMAT=json still printed text log lines"
fi

echo "cli: ok"
