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
