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
