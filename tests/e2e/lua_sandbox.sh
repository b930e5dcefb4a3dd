#!/usr/bin/env bash
# e2e: the Lua sandbox escape suite (issue 3, contract in docs/lua.md).
#
# Every case runs one small DAG:  generator (count 1) -> op -> file_sink, with
# op = `lua:../script/escape.lua` (tests/lua/sandbox/escape.lua) whose
# config.attempt names what process() tries. on_error: dead_letter sends the
# error to an envelope file_sink, so the refusal text is checked. Layout in
# the scratch dir (what "beside the script / the DAG file" means here):
#   script/  escape.lua peek.lua sub/mod.lua, evil.so (a fake C module whose
#            constructor writes a marker), bin_chunk.lua (a real binary chunk
#            as a string), binmod.lua (a binary chunk as a module file)
#   dag/     the DAG files, dagmod.lua
#   secret.lua, abs/secret.lua   modules OUTSIDE both: loading one is an escape
#
# Kinds of cases:
#  - refused CASE REGEX: exit 0, nothing emitted (no "ESCAPED"), exactly one
#    dead letter whose sluice.node is "op" and whose sluice.error names
#    escape.lua:LINE and matches REGEX (the name of what was refused);
#  - works CASE PREFIX: exit 0, no dead letter, one output line starting with
#    PREFIX (never "ESCAPED");
#  - survives CASE: a hostile script (odd error objects, bad emits, stale
#    records, type-confused metatable functions): exit 0 or 1, never a crash,
#    a hang or a sanitizer report, nothing "ESCAPED".
# Records kept past their call: reading one raises "record used after the
# call" (also 200 records later, and from process_batch: batch_stale.lua);
# process_batch poking at recs/rec/sluice.json.null with odd keys survives
# (batch_hostile.lua). Plus side effects: no marker file from os.execute / package.loadlib /
# evil.so's constructor, the victim file neither removed nor renamed, print()
# goes to the log at info level, the exact set of globals / os / string
# names, and on_error: fail stops the job (exit 1) with the message.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
export LC_ALL=C
S="$PWD"
LUADIR="$SLUICE_SOURCE_DIR/tests/lua/sandbox"

if ! "$SLUICE" plugins 2> /dev/null | grep -qw lua; then
  [ -e "${SLUICE_PLUGIN_PATH%%:*}/lua.so" ] || fail "the lua plugin is not built (no lua.so in ${SLUICE_PLUGIN_PATH%%:*})"
fi

mkdir -p script dag out abs
cp -r "$LUADIR/escape.lua" "$LUADIR/peek.lua" "$LUADIR/sub" script/
cp "$LUADIR/dagdir/dagmod.lua" dag/
cp "$LUADIR/outside/secret.lua" secret.lua
cp "$LUADIR/outside/secret.lua" abs/secret.lua
echo "precious" > victim
MARKER="$S/marker"
EVIL_MARKER="$S/evil-marker"

# A fake C module beside the script (and the DAG): require("evil") must not
# dlopen it. Its ELF constructor and luaopen_evil both write a marker.
HAVE_EVIL=no
if command -v cc > /dev/null 2>&1; then
  cat > evil.c <<EOF
#include <stdio.h>
static void mark(const char *how) { FILE *f = fopen("$EVIL_MARKER", "a"); if (f) { fputs(how, f); fclose(f); } }
__attribute__((constructor)) static void evil_ctor(void) { mark("constructor\n"); }
int luaopen_evil(void *L) { (void)L; mark("luaopen_evil\n"); return 0; }
EOF
  if cc -shared -fPIC -o script/evil.so evil.c 2> evil.cc.err; then
    cp script/evil.so dag/evil.so
    HAVE_EVIL=yes
  fi
fi
# A real binary chunk when a standalone Lua 5.4 is around (else escape.lua
# crafts a header): as a string literal module, and as a module file.
HAVE_LUAC=no
LUA54=$(command -v lua5.4 || command -v lua || true)
if [ -n "$LUA54" ] && "$LUA54" -v 2>&1 | grep -q 'Lua 5\.4'; then
  "$LUA54" -e 'io.write("return ", string.format("%q", string.dump(load("return \"ESCAPED-BINARY-RAN\""))), "\n")' > script/bin_chunk.lua
  "$LUA54" -e 'io.write(string.dump(load("return \"ESCAPED-BINARY-MODULE\"")))' > script/binmod.lua
  HAVE_LUAC=yes
else
  printf '\033Lua\124\000binary' > script/binmod.lua
fi

# case_dag NAME ATTEMPT POLICY COUNT [EXTRA_CONFIG]
case_dag() {
  local name=$1 attempt=$2 policy=$3 count=$4 extra=${5:-}
  cat > "dag/$name.yaml" <<EOF
name: $name
nodes:
  src: { use: generator, config: { kind: clicks, count: $count, seed: 1 } }
  op:
    use: lua:../script/escape.lua
    from: src
    on_error: $policy
    config: { attempt: $attempt, marker: "$MARKER", victim: "$S/victim", absdir: "$S/abs"$extra }
  out: { use: file_sink, from: op, config: { path: "$S/out/$name.out" } }
EOF
  if [ "$policy" = dead_letter ]; then
    echo "  errs: { use: file_sink, from: op.errors, config: { path: \"$S/out/$name.errs\", format: envelope } }" >> "dag/$name.yaml"
  fi
}

# run_case NAME: run dag/NAME.yaml; sets RC; stdout/stderr in out/NAME.{stdout,log}.
run_case() {
  local name=$1
  set +e
  timeout -k 5 60 "$SLUICE" run "dag/$name.yaml" > "out/$name.stdout" 2> "out/$name.log"
  RC=$?
  set -e
  if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then fail "$name: the job hung (killed after 60 s)"; fi
  if [ "$RC" -ge 128 ]; then sed 's/^/    | /' "out/$name.log" >&3; fail "$name: sluice crashed (status $RC)"; fi
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer' "out/$name.log"; then
    sed 's/^/    | /' "out/$name.log" >&3
    fail "$name: sanitizer report"
  fi
  if grep -q ESCAPED "out/$name.stdout" "out/$name.log" 2> /dev/null; then
    sed 's/^/    | /' "out/$name.log" >&3
    fail "$name: ESCAPED (on stdout or in the log)"
  fi
  if [ -e "out/$name.out" ] && grep -q ESCAPED "out/$name.out"; then
    fail "$name: ESCAPED: $(grep ESCAPED "out/$name.out" | head -c 400)"
  fi
  return 0
}

# refused CASE REGEX [COUNT [EXTRA_CONFIG]]: the run's own checks here; the
# dead letters' JSON is checked for all cases at once at the end (check_all:
# one python run instead of one per case).
: > checks.tsv
refused() {
  local name=$1 re=$2 count=${3:-1} extra=${4:-}
  case_dag "$name" "$name" dead_letter "$count" "$extra"
  run_case "$name"
  if [ "$RC" -ne 0 ]; then sed 's/^/    | /' "out/$name.log" >&3; fail "$name: exit $RC, expected 0 (dead_letter)"; fi
  [ ! -s "out/$name.out" ] || fail "$name: emitted: $(head -c 300 "out/$name.out")"
  [ "$(grep -c '' "out/$name.errs" 2> /dev/null || echo 0)" -eq "$count" ] ||
    fail "$name: expected $count dead letter(s), got: $(head -c 300 "out/$name.errs" 2> /dev/null)"
  printf 'refused\t%s\t%s\n' "$name" "$re" >> checks.tsv
}

# works CASE PREFIX [COUNT [EXTRA_CONFIG]]
works() {
  local name=$1 prefix=$2 count=${3:-1} extra=${4:-}
  case_dag "$name" "$name" dead_letter "$count" "$extra"
  run_case "$name"
  if [ "$RC" -ne 0 ]; then sed 's/^/    | /' "out/$name.log" >&3; fail "$name: exit $RC, expected 0"; fi
  if [ -s "out/$name.errs" ]; then fail "$name: failed: $(head -c 600 "out/$name.errs")"; fi
  [ "$(grep -c '' "out/$name.out" 2> /dev/null || echo 0)" -eq "$count" ] || fail "$name: expected $count output lines, got: $(head -c 300 "out/$name.out" 2> /dev/null)"
  while IFS= read -r l; do
    case "$l" in "$prefix"*) ;; *) fail "$name: output '$l' does not start with '$prefix'" ;; esac
  done < "out/$name.out"
  echo "  works $name: $(head -n 1 "out/$name.out" | head -c 150)"
}

# survives CASE [COUNT [EXTRA_CONFIG]]: exit 0 or 1, nothing escaped.
survives() {
  local name=$1 count=${2:-1} extra=${3:-}
  case_dag "$name" "$name" dead_letter "$count" "$extra"
  run_case "$name"
  [ "$RC" -le 1 ] || { sed 's/^/    | /' "out/$name.log" >&3; fail "$name: exit $RC"; }
  printf 'survives\t%s\t%s\n' "$name" "$RC" >> checks.tsv
}

# check_all: every refused case's dead letter names the node "op", the
# script:line and matches the case's regex; print one line per case.
check_all() {
  python3 - checks.tsv <<'PY' || fail "some cases were not refused as expected (above)"
import json, re, sys
bad = 0
for line in open(sys.argv[1]):
    kind, name, arg = line.rstrip("\n").split("\t")
    letters = []
    try:
        letters = [json.loads(l) for l in open(f"out/{name}.errs").read().splitlines()]
    except FileNotFoundError:
        pass
    first = letters[0]["headers"].get("sluice.error", "") if letters else ""
    if kind == "survives":
        out = open(f"out/{name}.out").read()[:60].strip() if __import__("os").path.exists(f"out/{name}.out") else ""
        print(f"  survives {name}: exit {arg}" + (f", dead letter: {first.splitlines()[0][:110]}" if letters else "")
              + (f", output: {out}" if out else ""))
        continue
    problems = []
    for e in letters:
        h = e.get("headers", {})
        err = h.get("sluice.error", "")
        if h.get("sluice.node") != "op": problems.append(f"sluice.node = {h.get('sluice.node')!r}")
        if "ESCAPED" in err: problems.append("ESCAPED in the error")
        if "escape.lua:" not in err: problems.append("the error does not name escape.lua:LINE")
        if not re.search(arg, err): problems.append(f"the error does not match /{arg}/")
    if problems:
        bad += 1
        print(f"FAIL: {name}: {'; '.join(sorted(set(problems)))}: {first[:300]!r}", file=sys.stderr)
    else:
        print(f"  refused {name}: {first.splitlines()[0][:130] if first else ''}")
sys.exit(1 if bad else 0)
PY
}

NIL='nil value|not available|not allowed|sandbox|disabled|refused|forbidden'
echo "lua_sandbox: io"
refused io_open "'io'|io"
refused io_popen "'io'|io"
refused io_lines "'io'|io"
refused io_write "'io'|io"

echo "lua_sandbox: os"
refused os_execute "'execute'|execute"
refused os_exit "'exit'|exit"
refused os_getenv "'getenv'|getenv"
refused os_remove "'remove'|remove"
refused os_rename "'rename'|rename"
refused os_tmpname "'tmpname'|tmpname"
refused os_setlocale "'setlocale'|setlocale"
works os_works "OK os.time os.clock os.date"
[ ! -e "$MARKER" ] || fail "os.execute/package.loadlib ran a command (marker file exists)"
[ "$(cat victim)" = precious ] || fail "the victim file was changed"
[ ! -e victim.moved ] || fail "os.rename moved the victim file"

echo "lua_sandbox: package and require"
refused pkg_loadlib "'package'|package|loadlib"
refused pkg_cpath "'package'|package|cjson"
refused pkg_path "'package'|package|secret"
refused pkg_searchers "'package'|package|searchers"
refused pkg_loaded "'package'|package|loaded"
refused require_io "'io'"
refused require_os "'os'"
refused require_debug "'debug'"
refused require_package "'package'"
refused require_G "'_G'"
refused require_cjson "'cjson'"
refused require_cjson_safe "cjson"
if [ "$HAVE_EVIL" = yes ]; then
  refused require_evil_so "'evil'"
  [ ! -e "$EVIL_MARKER" ] || fail "require('evil') loaded evil.so beside the script: $(cat "$EVIL_MARKER")"
else
  echo "  (no C compiler: skipped require of a fake C module)"
fi
refused require_dotdot "secret"
refused require_dotdot2 "secret"
refused require_dots "secret"
refused require_abs "secret"
refused require_abs_dotted "secret"
refused require_outside "'secret'"
refused require_binary "binmod|binary|text"
works require_ok "OK sub.mod dagmod"
works require_sandboxed "OK module sees the sandbox"

echo "lua_sandbox: debug"
refused debug_getinfo "'debug'"
refused debug_sethook "'debug'"
refused debug_getregistry "'debug'"
refused debug_upvalueid "'debug'"

echo "lua_sandbox: load and string.dump (real binary chunk: $HAVE_LUAC)"
refused load_binary "binary chunk"
refused load_binary_b "binary chunk"
refused load_binary_bt "binary chunk"
refused load_binary_reader "binary chunk"
works load_text_env "OK load runs text in the sandbox"
refused string_dump "'dump'|dump"
refused string_dump_method "'dump'|dump"

echo "lua_sandbox: string metatable, _G, _ENV, host objects"
works strmeta_get "OK getmetatable('') is false"
refused strmeta_index "boolean|metatable|protected"
refused strmeta_set "setmetatable"
refused strmeta_rawset "rawset|boolean|table expected"
works rawget_hidden "OK nothing hidden"
refused env_local "'io'|io"
works env_upvalues "OK"
survives userdata_meta
grep -q '^survived ' out/userdata_meta.out || fail "userdata_meta: the operator did not survive its own metatable probing"

echo "lua_sandbox: collectgarbage, dofile, loadfile, print, globals"
works gc_count "OK count works"
works gc_control "OK gc control refused" 1 ", lua_memory_mb: 16, lua_timeout: 30s, lua_instructions: 1000000000"
refused dofile "'dofile'|dofile"
refused loadfile "'loadfile'|loadfile"
works print_log "OK printed"
grep -E ' info .*op.*hello-from-lua	42	nil	true' out/print_log.log > /dev/null ||
  { sed 's/^/    | /' out/print_log.log >&3; fail "print_log: print() did not reach the log at info level, tagged with the node"; }
works config_limits "OK limit keys hidden" 1 ", lua_memory_mb: 32, lua_instructions: 5000000, lua_timeout: 2s, lua_pattern_steps: 100000"
works globals "OK "
python3 - out/globals.out <<'PY' || fail "globals: the sandbox's global names differ from docs/lua.md"
import sys
line = open(sys.argv[1]).read().strip()[3:]
g, names = line.split(" | ")
g, names = set(g.split()), set(names.split())
want = set("""assert error ipairs next pairs pcall xpcall select tonumber tostring type setmetatable
getmetatable rawequal rawget rawset rawlen print require load _G _VERSION string table math utf8
coroutine os sluice""".split()) | {"process"}
optional = {"collectgarbage"}   # present only to answer collectgarbage("count")
missing, extra = want - g, g - want - optional
assert not missing and not extra, f"missing {sorted(missing)}, extra {sorted(extra)}"
os_names = {n for n in names if n.startswith("os.")}
assert os_names == {"os.clock", "os.date", "os.time"}, f"os has {sorted(os_names)}"
str_names = {n[7:] for n in names if n.startswith("string.")}
want_str = set("byte char find format gmatch gsub len lower match pack packsize rep reverse sub unpack upper".split())
assert str_names == want_str, f"string: missing {sorted(want_str - str_names)}, extra {sorted(str_names - want_str)}"
PY

echo "lua_sandbox: hostile scripts do not harm the host"
for c in err_table err_nil err_tostring_errors err_tostring_table err_gc err_huge err_level err_yield \
  emit_table emit_nil emit_function emit_bad_key emit_bad_ts emit_nan_ts emit_huge_ts emit_bad_headers \
  emit_headers_string emit_huge_headers emit_dot_call emit_rec_self emit_to_unknown rec_assign json_hostile; do
  survives "$c"
done
for c in err_table err_nil err_tostring_errors err_tostring_table err_gc err_huge err_level err_yield; do
  [ -s "out/$c.errs" ] || fail "$c: the failing record was not dead-lettered"
done
for c in emit_table emit_nil emit_function emit_bad_key emit_bad_ts emit_bad_headers emit_headers_string \
  emit_dot_call emit_to_unknown; do
  [ -s "out/$c.errs" ] || fail "$c: a bad emit was accepted (no dead letter)"
done
grep -qF 'sluice.json.encode' out/emit_table.errs || fail "emit_table: the error does not tell to use sluice.json.encode"
grep -qF 'no_such_port' out/emit_to_unknown.errs || fail "emit_to_unknown: the error does not name the port"
# A record kept past its call: the second record's read fails with the
# documented message (count 2: the first record stores it, emits nothing).
case_dag rec_after_call rec_after_call dead_letter 2
run_case rec_after_call
[ "$RC" -eq 0 ] || fail "rec_after_call: exit $RC"
[ ! -s out/rec_after_call.out ] || fail "rec_after_call: a stale record was read: $(cat out/rec_after_call.out)"
grep -q 'record used after the call' out/rec_after_call.errs || fail "rec_after_call: no 'record used after the call' error"
case_dag rec_after_coroutine rec_after_coroutine dead_letter 2
run_case rec_after_coroutine
[ "$RC" -eq 0 ] || fail "rec_after_coroutine: exit $RC"
[ ! -s out/rec_after_coroutine.out ] || fail "rec_after_coroutine: a stale record was read: $(cat out/rec_after_coroutine.out)"
grep -q 'record used after the call' out/rec_after_coroutine.errs || fail "rec_after_coroutine: no 'record used after the call' error"
# process_batch: the recs userdata and a rec kept from an earlier call.
sed -e 's/escape.lua/batch_stale.lua/' -e 's/^name: .*/name: batch_stale/' -e 's/count: 1,/count: 300,/' \
  -e 's/out\/[a-z_]*\.out/out\/batch_stale.out/' -e 's/out\/[a-z_]*\.errs/out\/batch_stale.errs/' dag/io_open.yaml > dag/batch_stale.yaml
sed -i 's/^  op:$/  op:\n    partition: rebalance/' dag/batch_stale.yaml
cp "$LUADIR/batch_stale.lua" script/
run_case batch_stale
[ "$RC" -eq 0 ] || { sed 's/^/    | /' out/batch_stale.log >&3; fail "batch_stale: exit $RC"; }
[ ! -s out/batch_stale.out ] || fail "batch_stale: $(head -n 1 out/batch_stale.out)"
grep -q 'record used after the call' out/batch_stale.errs || fail "batch_stale: no 'record used after the call' error"

# process_batch poking at recs / rec / sluice.json.null with odd keys and
# operations (tests/lua/sandbox/batch_hostile.lua): survives, every record
# still read.
sed -e 's/escape.lua/batch_hostile.lua/' -e 's/^name: .*/name: batch_hostile/' -e 's/count: 1,/count: 3000,/' \
  -e 's/out\/[a-z_]*\.out/out\/batch_hostile.out/' -e 's/out\/[a-z_]*\.errs/out\/batch_hostile.errs/' dag/io_open.yaml > dag/batch_hostile.yaml
sed -i 's/^  op:$/  op:\n    partition: rebalance/' dag/batch_hostile.yaml
cp "$LUADIR/batch_hostile.lua" script/
run_case batch_hostile
[ "$RC" -eq 0 ] || { sed 's/^/    | /' out/batch_hostile.log >&3; fail "batch_hostile: exit $RC"; }
[ ! -s out/batch_hostile.errs ] || fail "batch_hostile: a call failed: $(head -c 300 out/batch_hostile.errs)"
[ "$(awk '{ s += $2 } END { print s }' out/batch_hostile.out)" = 3000 ] || fail "batch_hostile: not every record was read"

case_dag return_weird return_weird dead_letter 3
run_case return_weird
[ "$RC" -eq 0 ] || fail "return_weird: exit $RC"
[ ! -s out/return_weird.errs ] || fail "return_weird: odd return values were treated as failures: $(head -c 300 out/return_weird.errs)"

echo "lua_sandbox: on_error: fail"
case_dag fail_io io_open fail 1
run_case fail_io
[ "$RC" -eq 1 ] || { sed 's/^/    | /' out/fail_io.log >&3; fail "fail_io: exit $RC, expected 1"; }
grep -q "node 'op'" out/fail_io.log || fail "fail_io: the error does not name the node"
grep -q "escape.lua:[0-9]*:.*io" out/fail_io.log || fail "fail_io: the error does not name escape.lua:LINE and io"
grep -q "FAILED" out/fail_io.log || fail "fail_io: the summary does not say FAILED"
# A script with a syntax error fails at open, naming script:line.
printf 'function process(rec, ctx)\n  ctx:emit(\nend\n' > script/syntax.lua
cat > dag/syntax.yaml <<EOF
nodes:
  src: { use: generator, config: { count: 1 } }
  op: { use: lua:../script/syntax.lua, from: src }
  out: { use: null_sink, from: op }
EOF
run_case syntax
[ "$RC" -eq 1 ] || fail "syntax: exit $RC, expected 1"
grep -q 'syntax.lua:[0-9]' out/syntax.log || fail "syntax: the error does not name syntax.lua:LINE"
# A script without process/process_batch is refused at open.
echo 'local function process() end' > script/noproc.lua
sed 's/syntax.lua/noproc.lua/' dag/syntax.yaml > dag/noproc.yaml
run_case noproc
[ "$RC" -eq 1 ] || fail "noproc: exit $RC, expected 1"
grep -q 'neither process nor process_batch' out/noproc.log || fail "noproc: no 'script defines neither process nor process_batch'"

echo "lua_sandbox: the dead letters of every case"
check_all
echo "lua_sandbox: stale records after the rec pool wrapped around"
# ... also 200 records later, when the rec objects' pool has wrapped around
# (a stale rec must never read another call's record).
case_dag rec_after_call_200 rec_after_call dead_letter 201
run_case rec_after_call_200
[ "$RC" -eq 0 ] || fail "rec_after_call_200: exit $RC"
[ ! -s out/rec_after_call_200.out ] || fail "rec_after_call_200: a rec kept from record 1 read a later record: $(head -n 1 out/rec_after_call_200.out)"
[ "$(grep -c 'record used after the call' out/rec_after_call_200.errs)" -eq 200 ] ||
  fail "rec_after_call_200: expected 200 'record used after the call' dead letters, got $(grep -c 'record used after the call' out/rec_after_call_200.errs)"
echo "lua_sandbox: ok"
