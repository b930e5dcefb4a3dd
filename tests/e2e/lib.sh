# Shared helpers for the e2e shell tests (sourced, not run).
set -euo pipefail
: "${SLUICE:?SLUICE must name the sluice binary}"
: "${SLUICE_SCRATCH:=$(mktemp -d)}"
rm -rf "$SLUICE_SCRATCH"
mkdir -p "$SLUICE_SCRATCH"
cd "$SLUICE_SCRATCH"

# fd 3 is the test's real stderr: a FAIL message reaches the test log even
# inside a command whose stderr is redirected to a file.
exec 3>&2
fail() {
  echo "FAIL: $*" >&3
  exit 1
}

# Run a command, expect exit status $1 (and never a crash by signal).
expect_status() {
  local want=$1
  shift
  set +e
  "$@"
  local got=$?
  set -e
  if [ "$got" -ge 128 ]; then fail "'$*' crashed (status $got)"; fi
  if [ "$want" = nonzero ]; then
    [ "$got" -ne 0 ] || fail "'$*' succeeded, expected failure"
  elif [ "$got" -ne "$want" ]; then
    fail "'$*' exited $got, expected $want"
  fi
}

# st WANT OUT ERR CMD...: run CMD with stdout in OUT and stderr in ERR; expect
# exit status WANT, no crash and no hang (killed after 120 s).
st() {
  local want=$1 out=$2 err=$3
  shift 3
  set +e
  timeout -k 5 120 "$@" > "$out" 2> "$err"
  local got=$?
  set -e
  if [ "$got" -eq 124 ]; then fail "'$*' hung"; fi
  if [ "$got" -ge 128 ]; then sed 's/^/    | /' "$err" >&3; fail "'$*' crashed (status $got)"; fi
  if [ "$got" -ne "$want" ]; then sed 's/^/    | /' "$err" >&3; fail "'$*' exited $got, expected $want"; fi
}

# row FILE NODE TASKS IN OUT SKIPPED DEADLETTERED: the run summary in FILE has this row.
row() {
  grep -qE "^  $2 +$3 +$4 +$5 +$6 +$7\$" "$1" ||
    { cat "$1" >&3; fail "$1: no summary row '$2 tasks=$3 in=$4 out=$5 skipped=$6 dead-lettered=$7'"; }
}

# counter FILE NAME: the value of the first "counter NAME = N" line of the
# run summary in FILE (empty when there is none)
counter() {
  sed -n "s/^    counter $2 = \\([0-9]*\\)\$/\\1/p" "$1" | head -n 1
}

# holds FILE: how many times the run summary in FILE says the sources were
# told to hold back (SDK 1.8 backpressure); 0 when it does not say
holds() {
  local n
  n=$(sed -nE 's/.*sources told to hold back ([0-9]+) times.*/\1/p' "$1")
  echo "${n:-0}"
}

# generated NAME COUNT SEED [START_TS]: the generator's records, as file_sink
# writes them, sorted, in NAME.sorted (the reference a test compares with).
generated() {
  cat > "$1-gen.yaml" << EOF
nodes:
  gen: { use: generator, config: { count: $2, seed: $3, start_ts: ${4:-1700000000000} } }
  out: { use: file_sink, from: gen, config: { path: $1.txt } }
EOF
  st 0 "$1-gen.out" "$1-gen.err" "$SLUICE" run "$1-gen.yaml"
  sort "$1.txt" > "$1.sorted"
}

# ---- Checkpoint tests: a keyed running count ("key,n" lines) written to out.txt.

# check_output LABEL: sorted out.txt equals reference.txt (0 duplicates, 0
# losses), and no staging file of the transactional sink is left.
check_output() {
  sort out.txt > got.txt
  cmp -s got.txt reference.txt ||
    fail "$1: output differs from the reference: $(uniq -d got.txt | wc -l) duplicated, $(comm -13 got.txt reference.txt | wc -l) lost, $(comm -23 got.txt reference.txt | wc -l) unexpected lines"
  if ls out.txt.pending-* > /dev/null 2>&1; then fail "$1: staging files left behind: $(ls out.txt.pending-*)"; fi
  return 0
}

# save_partial, then check_partial LABEL once the job has completed: what a
# kill left visible in out.txt is a byte prefix of the final output.
save_partial() { if [ -e out.txt ]; then cp out.txt partial.txt; else : > partial.txt; fi; }
check_partial() {
  local n
  n=$(stat -c %s partial.txt)
  cmp -s -n "$n" partial.txt out.txt || fail "$1: output visible after the kill ($n bytes) is not a prefix of the final output"
}

# completed_checkpoints [DIR]: how many checkpoints in DIR (default ckpt) have a MANIFEST.
completed_checkpoints() {
  local m
  m=$(compgen -G "${1:-ckpt}/chk-*/MANIFEST" || true)
  if [ -n "$m" ]; then echo "$m" | wc -l; else echo 0; fi
}

# check_counts LABEL TOTAL [FILE]: FILE (default out.txt) has TOTAL lines and
# every key's running count goes 1, 2, ... n with no gap or repeat.
check_counts() {
  local f=${3:-out.txt}
  [ "$(wc -l < "$f")" -eq "$2" ] || fail "$1: $(wc -l < "$f") lines, expected $2"
  sort -t, -k1,1 -k2,2n "$f" | awk -F, -v label="$1" '
    $1 != key { key = $1; n = 0 }
    { n++; if ($2 != n) { print label ": key " $1 " has count " $2 " where " n " was expected"; exit 1 } }' >&3 ||
    fail "$1: running counts have gaps or repeats"
}

# window_model_bin: the path of the window reference model
# (tests/tools/window_model.c): the one built with the tests, or one built
# here in the scratch directory. Needs SLUICE_SOURCE_DIR.
window_model_bin() {
  local built="${SLUICE_BUILD_DIR:-/nonexistent}/tests/window_model"
  if [ -x "$built" ]; then
    echo "$built"
    return
  fi
  cc -O2 -I"$SLUICE_SOURCE_DIR/plugins/window" "$SLUICE_SOURCE_DIR/tests/tools/window_model.c" \
    "$SLUICE_SOURCE_DIR/plugins/window/wn_hll.c" -lm -o window_model >&2
  echo "$PWD/window_model"
}
