#!/usr/bin/env bash
# e2e: the built-in "io" plugin (file_source, stdin_source, stdout_sink,
# file_sink, null_sink) through the real binary.
#
# Documented behaviour asserted here (plugins/io/io_sources.c, io_sinks.c):
#  - one record per line; the newline, and a '\r' right before it, are not
#    part of the record (CRLF reads like LF, a lone '\r' stays); an empty line
#    is an (empty) record; a last line without a newline is a record; lines
#    longer than the 1 MiB read buffer survive;
#  - file_source -> file_sink (format value) reproduces the input byte for
#    byte, plus a final newline when it was missing;
#  - stdin_source reads a pipe to EOF (also from a slow writer), only task 0
#    reads with parallelism > 1, and a closed stdin fails at open;
#  - format envelope: one JSON object per line with key, value (verbatim when
#    a JSON object/array/number, else a JSON string, invalid UTF-8 replaced),
#    ts and headers;
#  - file_sink with parallelism 2 writes PATH.0 and PATH.1 (not PATH), whose
#    union is the input; append: true appends, the default truncates;
#  - file_source on a missing file and file_sink in a missing directory fail
#    at open (exit 1) naming the path;
#  - ts_field sets ts (integers, digit strings, exponent numbers), missing or
#    non-integer fields give ts 0, counted in ts_missing;
#  - stdout_sink with parallelism > 1 never interleaves inside a line, also
#    when stdout is a pipe.
source "$(dirname "$0")/lib.sh"

export LC_ALL=C

# dag_file_to_file NAME IN OUT [SINK-EXTRA] [SOURCE-EXTRA]: a file_source -> file_sink DAG.
dag_file_to_file() {
  cat > "$1.yaml" <<EOF
name: $1
nodes:
  src:
    use: file_source
    ${5:-}
    config: { path: "$2" ${6:-} }
  out:
    use: file_sink
    from: src
    ${4:-}
    config: { path: "$3" ${7:-} }
EOF
}
# summary_out NODE ERRFILE: the node's "records out" from the run summary.
summary_col() { awk -v n="$1" -v c="$3" '$1 == n && NF >= 6 { print $c; exit }' "$2"; }

# ------------------------------------------------------------ round trips
# Empty lines (leading, inner, consecutive), blanks, tabs, UTF-8, JSON,
# backslashes, a 3 MiB line, and no final newline.
python3 - <<'PY'
lines = ["", "alpha", "", "", "  spaced out  ", "tab\there", "caf\u00e9 \u2603",
         '{"a":1,"b":[true,null]}', "back\\slash \"quoted\"", "x" * (3 << 20), "after long", "last"]
with open("rt.in", "wb") as f:
    f.write("\n".join(lines).encode())          # no newline after "last"
with open("rt.expected", "wb") as f:
    f.write(("\n".join(lines) + "\n").encode())
PY
dag_file_to_file rt rt.in rt.out
st 0 rt.stdout rt.stderr "$SLUICE" run rt.yaml
cmp rt.expected rt.out || fail "file_source -> file_sink round trip changed the data"
[ "$(summary_col src rt.stderr 4)" = 12 ] || { cat rt.stderr >&2; fail "round trip: src should emit 12 records (empty lines are records)"; }
[ "$(summary_col out rt.stderr 3)" = 12 ] || fail "round trip: out should receive 12 records"

# CRLF: "\r\n" ends a line like "\n"; a '\r' elsewhere is data.
printf 'a\r\nb\r\n\r\nc\rd\r\nlast\r\n' > crlf.in
printf 'a\nb\n\nc\rd\nlast\n' > crlf.expected
dag_file_to_file crlf crlf.in crlf.out
st 0 /dev/null crlf.stderr "$SLUICE" run -q crlf.yaml
cmp crlf.expected crlf.out || { od -c crlf.out >&2; fail "CRLF input was not read like LF input"; }
# A CRLF file without a final line ending.
printf 'one\r\ntwo' > crlf2.in
printf 'one\ntwo\n' > crlf2.expected
dag_file_to_file crlf2 crlf2.in crlf2.out
st 0 /dev/null last.err "$SLUICE" run -q crlf2.yaml
cmp crlf2.expected crlf2.out || { od -c crlf2.out >&2; fail "CRLF input without a final newline"; }

# Only a newline: one empty record. An empty file: no records, an empty output file.
printf '\n' > nl.in
dag_file_to_file nl nl.in nl.out
st 0 /dev/null nl.stderr "$SLUICE" run nl.yaml
cmp nl.in nl.out || fail "a file holding one newline should give one empty record"
[ "$(summary_col src nl.stderr 4)" = 1 ] || fail "a file holding one newline: src should emit 1 record"
: > empty.in
dag_file_to_file empty empty.in empty.out
st 0 /dev/null empty.stderr "$SLUICE" run empty.yaml
[ -f empty.out ] && [ ! -s empty.out ] || fail "an empty input should give an empty output file"
[ "$(summary_col src empty.stderr 4)" = 0 ] || fail "an empty file: src should emit 0 records"

# ------------------------------------------------------------ stdin_source
cat > stdin.yaml <<'EOF'
name: stdin
nodes:
  src: { use: stdin_source }
  out: { use: stdout_sink, from: src }
EOF
printf 'one\n\ntwo words\nthree' | "$SLUICE" run stdin.yaml > stdin.out 2> stdin.err ||
  { cat stdin.err >&2; fail "stdin_source from a pipe failed"; }
printf 'one\n\ntwo words\nthree\n' | cmp - stdin.out || { od -c stdin.out >&2; fail "stdin_source -> stdout_sink changed the data"; }
has_summary=$(summary_col out stdin.err 3)
[ "$has_summary" = 4 ] || fail "stdin: the sink should count 4 records, summary says '$has_summary'"

# A slow writer: the job waits for more input and ends cleanly at EOF.
start=$(date +%s%N)
(echo a; sleep 1; echo b) | timeout 10 "$SLUICE" run -q stdin.yaml > slow.out 2> slow.err ||
  { cat slow.err >&2; fail "stdin_source with a slow writer did not exit 0 (124 = hung)"; }
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf 'a\nb\n' | cmp - slow.out || fail "slow writer: expected lines a and b, got: $(cat slow.out)"
[ "$elapsed_ms" -ge 900 ] || fail "slow writer: the job ended after ${elapsed_ms} ms, before the writer did"
[ "$elapsed_ms" -lt 6000 ] || fail "slow writer: the job took ${elapsed_ms} ms to see EOF"

# Parallelism 2: task 0 reads everything once, task 1 ends at once.
cat > stdin2.yaml <<'EOF'
name: stdin2
nodes:
  src: { use: stdin_source, parallelism: 2 }
  out: { use: file_sink, from: src, config: { path: stdin2.out } }
EOF
seq 1 5000 | "$SLUICE" run -q stdin2.yaml > /dev/null 2> stdin2.err || { cat stdin2.err >&2; fail "stdin_source parallelism 2 failed"; }
sort -n stdin2.out | cmp - <(seq 1 5000) || fail "stdin_source parallelism 2: lines lost or duplicated"
# Closed stdin: fails at open.
set +e
"$SLUICE" run stdin.yaml > closed.out 2> closed.err <&-
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "stdin_source with stdin closed exited $rc, expected 1"
grep -qF "standard input is not open" closed.err || fail "closed stdin: no 'standard input is not open' message"

# ------------------------------------------------------------ envelope
# Tricky values: structured JSON (kept verbatim), text, things that only look
# like JSON, control characters and invalid UTF-8 (become JSON strings).
# io_json.c validates at most 256 levels deep: deeper arrays become strings.
python3 - <<'PY'
vals = [b'{"a":1,"s":"x\\"y"}', b'[1,2,{"k":null}]', b'42', b'-3.5e2', b'  {"padded": true}  ',
        b'plain text "quoted" \\ back', b'{not json', b'01', b'-', b'1.', b'true', b'null', b'NaN',
        b'-Infinity', b'"a json string"', b'tab\there \x01\x1f', b'bad utf8 \xff\xfe end',
        b'{"bad":"\xc3"}', b'caf\xc3\xa9', b'', b'[' * 200 + b']' * 200, b'[' * 300 + b']' * 300]
open("env.in", "wb").write(b"\n".join(vals) + b"\n")
PY
dag_file_to_file env env.in env.out "" "" "" ", format: envelope"
st 0 /dev/null env.err "$SLUICE" run -q env.yaml
python3 - env.in env.out <<'PY' || fail "envelope output is not what the format documents"
import json, sys
def no_const(c):
    raise ValueError(c)
ins = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
outs = open(sys.argv[2], "rb").read().split(b"\n")
assert outs[-1] == b"", "output does not end with a newline"
outs = outs[:-1]
assert len(ins) == len(outs), f"{len(ins)} lines in, {len(outs)} out"
for raw, line in zip(ins, outs):
    env = json.loads(line)          # every line valid JSON (raises otherwise)
    assert isinstance(env, dict) and list(env) == ["key", "value", "ts", "headers"], env
    assert env["key"] == "" and env["ts"] == 0 and env["headers"] == {}, env
    text = raw.decode("utf-8", errors="replace")
    structured = None
    s = raw.strip(b" \t")
    if s[:1] in (b"{", b"[", b"-") or s[:1].isdigit():
        try:
            structured = json.loads(raw.decode("utf-8"), parse_constant=no_const)
        except (ValueError, UnicodeDecodeError, RecursionError):
            structured = None
    if raw.startswith(b"[" * 257):
        structured = None  # nested deeper than the validator's 256 levels: kept as a string
    if structured is not None:
        assert env["value"] == structured, (raw, env["value"])
    else:
        assert env["value"] == text, (raw, env["value"])
PY

# Keyed records (the generator keys clicks by user id, ts = event time).
cat > genenv.yaml <<'EOF'
name: genenv
nodes:
  gen: { use: generator, config: { kind: clicks, count: 1000 } }
  out: { use: file_sink, from: gen, config: { path: genenv.out, format: envelope } }
EOF
st 0 /dev/null last.err "$SLUICE" run -q genenv.yaml
python3 - genenv.out <<'PY' || fail "generator envelope: key/ts do not match the record"
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert e["key"] == e["value"]["user_id"], e
    assert e["ts"] == e["value"]["ts"] == 1700000000000 + 10 * n, e
    assert e["headers"] == {}, e
    n += 1
assert n == 1000, n
PY

# ------------------------------------------------------------ parallel file_sink
seq 1 20000 > par.in
dag_file_to_file par par.in par.out "parallelism: 2"
rm -f par.out par.out.*
st 0 /dev/null last.err "$SLUICE" run -q par.yaml
[ -s par.out.0 ] && [ -s par.out.1 ] || fail "file_sink parallelism 2 should write non-empty par.out.0 and par.out.1"
[ ! -e par.out ] || fail "file_sink parallelism 2 also created par.out"
[ ! -e par.out.2 ] || fail "file_sink parallelism 2 created par.out.2"
cat par.out.0 par.out.1 | sort -n | cmp - par.in || fail "par.out.0 + par.out.1 is not the input"
# file_source with parallelism 3: every line read exactly once.
dag_file_to_file par3 par.in par3.out "" "parallelism: 3"
st 0 /dev/null last.err "$SLUICE" run -q par3.yaml
sort -n par3.out | cmp - par.in || fail "file_source parallelism 3: lines lost or duplicated"

# append: true appends; the default truncates.
printf 'x\ny\n' > ap.in
dag_file_to_file ap ap.in ap.out "" "" "" ", append: true"
dag_file_to_file tr ap.in ap.out
st 0 /dev/null last.err "$SLUICE" run -q ap.yaml
st 0 /dev/null last.err "$SLUICE" run -q ap.yaml
printf 'x\ny\nx\ny\n' | cmp - ap.out || fail "append: true did not append"
st 0 /dev/null last.err "$SLUICE" run -q tr.yaml
cmp ap.in ap.out || fail "file_sink without append did not truncate"

# ------------------------------------------------------------ open failures
dag_file_to_file missing "$SLUICE_SCRATCH/no-such-dir/missing.txt" missing.out
st 1 /dev/null missing.err "$SLUICE" run missing.yaml
grep -qF "file_source: cannot open '$SLUICE_SCRATCH/no-such-dir/missing.txt': No such file or directory" missing.err ||
  { cat missing.err >&2; fail "missing input file: no message naming the path"; }
grep -qF "node 'src'" missing.err || fail "missing input file: the message does not name the node"
[ ! -s missing.out ] || fail "missing input file: output written"
mkdir -p adir
dag_file_to_file isdir "$SLUICE_SCRATCH/adir" isdir.out
st 1 /dev/null isdir.err "$SLUICE" run isdir.yaml
grep -qF "file_source: '$SLUICE_SCRATCH/adir' is a directory, not a file" isdir.err ||
  { cat isdir.err >&2; fail "a directory as input: not refused at open with a clear message"; }
dag_file_to_file unw ap.in "$SLUICE_SCRATCH/no-such-dir/o.txt"
st 1 /dev/null unw.err "$SLUICE" run unw.yaml
grep -qF "file_sink: cannot open '$SLUICE_SCRATCH/no-such-dir/o.txt' for writing" unw.err ||
  { cat unw.err >&2; fail "unwritable output: no message naming the path"; }

# ------------------------------------------------------------ ts_field
cat > ts.in <<'EOF'
{"t":1700000000123,"v":"a"}
{"v":"no t"}
{"t":"42"}
{"t":1.7e12}
not json
{"t":-5}
{"t":true}
EOF
dag_file_to_file ts ts.in ts.out "" "" ", ts_field: t" ", format: envelope"
st 0 /dev/null ts.err "$SLUICE" run ts.yaml
python3 -c '
import json, sys
got = [json.loads(l)["ts"] for l in open("ts.out")]
want = [1700000000123, 0, 42, 1700000000000, 0, -5, 0]
assert got == want, got
' || fail "ts_field: ts values differ from the field"
grep -qE '^ +counter ts_missing = 3$' ts.err || { cat ts.err >&2; fail "ts_field: expected 'counter ts_missing = 3' in the summary"; }
[ "$(grep -c "no integer field 't'" ts.err)" -eq 1 ] || fail "ts_field: the missing-field warning should appear exactly once"
grep -qF "ts.in line 2: no integer field 't'" ts.err || fail "ts_field: the warning should name the file and line 2"
# Without ts_field every record has ts 0.
dag_file_to_file ts0 ts.in ts0.out "" "" "" ", format: envelope"
st 0 /dev/null last.err "$SLUICE" run -q ts0.yaml
python3 -c 'import json; assert {json.loads(l)["ts"] for l in open("ts0.out")} == {0}' || fail "no ts_field: ts should be 0"

# ------------------------------------------------------------ null_sink
cat > null.yaml <<'EOF'
name: nullsink
nodes:
  gen: { use: generator, config: { count: 12345 } }
  out: { use: null_sink, from: gen, parallelism: 3 }
EOF
st 0 null.out null.err "$SLUICE" run null.yaml
[ ! -s null.out ] || fail "null_sink wrote to stdout"
grep -qE '^ +counter records = 12345$' null.err || fail "null_sink: counter records should be 12345"

# ------------------------------------------------------------ stdout_sink, parallel, into a pipe
# Documented: "written with write(2) in whole lines, so parallel tasks sharing
# stdout never interleave inside a line". Stdout is a pipe here (the usual
# `sluice run ... | consumer` case), read by a consumer slower than sluice.
cat > stdoutpar.yaml <<'EOF'
name: stdoutpar
settings: { workers: 4 }
nodes:
  gen: { use: generator, config: { kind: clicks, count: 200000 } }
  out: { use: stdout_sink, from: gen, parallelism: 4, config: { format: envelope } }
EOF
"$SLUICE" run -q stdoutpar.yaml 2> stdoutpar.err | python3 -c '
import json, sys, time
n = bad = 0
example = None
for line in sys.stdin:
    n += 1
    if n % 20000 == 0:
        time.sleep(0.05)  # a consumer that sometimes falls behind
    try:
        json.loads(line)
    except ValueError:
        bad += 1
        example = example or line[:200]
print(n, bad)
if bad:
    print("e.g.", example.rstrip(), file=sys.stderr)
' > stdoutpar.res || fail "stdout_sink parallelism 4 into a pipe: the consumer failed"
read -r n bad < stdoutpar.res
[ "$n" -eq 200000 ] || fail "stdout_sink parallelism 4 into a pipe: $n lines, expected 200000"
[ "$bad" -eq 0 ] || fail "stdout_sink parallelism 4 into a pipe: $bad of $n lines are broken (tasks' writes interleaved inside lines)"

# A broken output (a full disk) fails the job even under on_error: skip:
# buffered lines are lost, so it is not one record's problem.
if [ -w /dev/full ]; then
  cat > full.yaml <<'YAML'
nodes:
  g: { use: generator, config: { count: 100000 } }
  o: { use: file_sink, from: g, on_error: skip, config: { path: /dev/full } }
YAML
  st 1 /dev/null full.err "$SLUICE" run full.yaml
  grep -qF "No space left on device" full.err || { cat full.err >&2; fail "/dev/full: no ENOSPC message"; }
  grep -qF "node 'o'" full.err || fail "/dev/full: the message does not name the node"
else
  echo "SKIPPED: /dev/full not writable"
fi

echo "io_plugin: ok"
