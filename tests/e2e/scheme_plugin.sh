# SDK 1.1: `use: SCHEME:ARG` selects the operator declaring that scheme and
# hands it ARG joined to the DAG's directory; SL_OP_FREE_CONFIG accepts
# undeclared keys typed from YAML; sl_config_at iterates them.
source "$(dirname "$0")/lib.sh"
mkdir -p dags/sub
touch dags/sub/input.txt
cat > dags/echo.yaml <<YAML
nodes:
  e:
    use: echo:sub/input.txt
    config: { n: 42, x: 2.5, flag: true, word: hello, quoted: "7", limit: 250ms }
  out: { use: file_sink, from: e, config: { path: "$SLUICE_SCRATCH/echo.out" } }
YAML
"$SLUICE" run -q -P "$SLUICE_TEST_PLUGIN_DIR" dags/echo.yaml
cat > want.txt <<EOF2
arg=dags/sub/input.txt
arg_under_dag_dir=1
n=42 int 0 i=42
x=2.5 double 0 i=0
flag=true bool 0 i=1
word=hello string 0 i=0
quoted=7 string 0 i=0
limit=250ms duration 1 i=250
out_of_range=-1
EOF2
diff want.txt echo.out || fail "scheme/free-config output differs (above)"

# A missing ARG file is a validation error at the use: position.
cat > dags/missing.yaml <<'YAML'
nodes:
  e: { use: echo:nope.txt }
  out: { use: null_sink, from: e }
YAML
set +e
"$SLUICE" validate -P "$SLUICE_TEST_PLUGIN_DIR" dags/missing.yaml 2> missing.err
st=$?
set -e
[ "$st" -eq 2 ] || fail "missing ARG file: validate exited $st, expected 2"
grep -qF "missing.yaml:2:13: error: node 'e': cannot read 'dags/nope.txt': No such file or directory" missing.err ||
  { cat missing.err >&3; fail "missing ARG file: wrong message"; }
# Declared keys are still checked; a null free key is an error.
cat > dags/bad.yaml <<'YAML'
nodes:
  e: { use: echo:sub/input.txt, config: { limit: soon, empty: } }
  out: { use: null_sink, from: e }
YAML
set +e
"$SLUICE" validate -P "$SLUICE_TEST_PLUGIN_DIR" dags/bad.yaml 2> bad.err
set -e
grep -qF "node 'e': config 'limit' of operator 'echo_config': expected a duration" bad.err || { cat bad.err >&3; fail "declared key not checked"; }
grep -qF "node 'e': config 'empty' has no value" bad.err || { cat bad.err >&3; fail "null free key accepted"; }
echo "scheme_plugin: ok"
