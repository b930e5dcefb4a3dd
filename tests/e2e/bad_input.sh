#!/usr/bin/env bash
# bad_input.sh - `sluice validate` on malformed DAG files (tests/bad_input/*.yaml).
#
# Each file starts with one or more lines
#     # expect: <substring of stderr>
# e.g. "# expect: cycle.yaml:7:3: error: cycle: a -> b -> a". For every file,
# `sluice validate FILE` must exit with a non-zero status that is not a crash
# (status < 128, no sanitizer report), and every expected substring must
# appear in its stderr. "@TESTPLUGINS@" in a file is replaced by the
# directory of the test plugins (the file is copied to the scratch dir under
# the same name, so the messages still name it the same way).
#
# Environment (set by CTest): SLUICE, SLUICE_SOURCE_DIR, SLUICE_TEST_PLUGIN_DIR,
# SLUICE_SCRATCH, SLUICE_PLUGIN_PATH. Extra arguments: only run files whose
# name contains one of them.
set -u

here="$(cd "$(dirname "$0")" && pwd)"
src="${SLUICE_SOURCE_DIR:-$here/../..}"
bad_dir="$src/tests/bad_input"
: "${SLUICE:?SLUICE must name the sluice binary}"
plugins="${SLUICE_TEST_PLUGIN_DIR:-}"
scratch="${SLUICE_SCRATCH:-$(mktemp -d)}"
mkdir -p "$scratch"

pass=0
failures=0
fail() {
  failures=$((failures + 1))
  printf 'FAIL %s: %s\n' "$1" "$2"
}

# check NAME FILE EXPECTFILE: run validate, check status and stderr.
check() {
  local name="$1" file="$2" expects="$3"
  local out="$scratch/$name.stdout" err="$scratch/$name.stderr"
  "$SLUICE" validate "$file" >"$out" 2>"$err"
  local rc=$?
  local ok=1
  if [ "$rc" -eq 0 ]; then
    fail "$name" "exit status 0, expected a failure"
    ok=0
  elif [ "$rc" -ge 128 ]; then
    fail "$name" "exit status $rc: crashed (signal $((rc - 128)))"
    ok=0
  fi
  if grep -qE 'Sanitizer|runtime error:' "$err"; then
    fail "$name" "sanitizer report"
    ok=0
  fi
  local missing="$scratch/$name.missing"
  : >"$missing"
  while IFS= read -r want; do
    grep -qF -- "$want" "$err" || printf '%s\n' "$want" >>"$missing"
  done <"$expects"
  if [ -s "$missing" ]; then
    fail "$name" "expected diagnostics missing from stderr"
    ok=0
  fi
  if [ "$ok" -eq 1 ]; then
    pass=$((pass + 1))
    printf 'ok   %s\n' "$name"
    return
  fi
  if [ -s "$missing" ]; then
    echo "  missing (expected substrings):"
    sed 's/^/    /' "$missing"
  fi
  # The file's directory is left out of stderr so that lines compare as written.
  local dir
  dir="$(dirname "$file")/"
  echo "  diff (expected lines vs actual stderr, without '$dir'):"
  awk -v d="$dir" '{ while ((i = index($0, d)) > 0) $0 = substr($0, 1, i - 1) substr($0, i + length(d)); print }' \
    "$err" | diff -u --label expected --label "stderr of sluice validate $name" "$expects" - |
    sed 's/^/    /'
}

selected() {
  [ "$#" -le 1 ] && return 0
  local name="$1"
  shift
  for pat in "$@"; do
    case "$name" in *"$pat"*) return 0 ;; esac
  done
  return 1
}

shopt -s nullglob
files=("$bad_dir"/*.yaml)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files in $bad_dir"
  exit 1
fi

for f in "${files[@]}"; do
  name="$(basename "$f")"
  selected "$name" "$@" || continue
  expects="$scratch/$name.expect"
  sed -n 's/^# expect: //p' "$f" >"$expects"
  if [ ! -s "$expects" ]; then
    fail "$name" "no '# expect: ' line"
    continue
  fi
  target="$f"
  if grep -q '@TESTPLUGINS@' "$f"; then
    if [ -z "$plugins" ] || [ ! -f "$plugins/validate_ops.so" ]; then
      fail "$name" "needs the test plugins: SLUICE_TEST_PLUGIN_DIR='$plugins' has no validate_ops.so"
      continue
    fi
    mkdir -p "$scratch/dags"
    target="$scratch/dags/$name"
    # '|' cannot appear in the plugin dir we substitute (a path), '&' and '\' might
    esc="$(printf '%s' "$plugins" | sed 's/[\\&|]/\\&/g')"
    sed "s|@TESTPLUGINS@|$esc|g" "$f" >"$target"
  fi
  check "$name" "$target" "$expects"
done

# A file that does not exist.
if selected "nonexistent.yaml" "$@"; then
  missing_file="$scratch/no-such-dir/nonexistent.yaml"
  printf '%s\n' "$missing_file: error: cannot read the DAG file: No such file or directory" \
    >"$scratch/nonexistent.expect"
  check "nonexistent.yaml" "$missing_file" "$scratch/nonexistent.expect"
fi

echo "bad_input: $pass passed, $failures failed"
[ "$failures" -eq 0 ]
