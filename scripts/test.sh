#!/usr/bin/env bash
# The README's test command: install what is missing, then build and run
# every test three times:
#   build/       optimised build: all unit and end-to-end tests
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer: all tests
#   build-tsan/  ThreadSanitizer: the scheduler and channel tests (label concurrency)
# Set SLUICE_TEST_QUICK=1 to run only the first. Exit status 0 = all passed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
JOBS="$(nproc)"

run_suite() {
  local dir=$1 label=$2
  shift 2
  echo "== $dir: configure and build ($*)"
  cmake -S "$ROOT" -B "$ROOT/$dir" "$@" >/dev/null
  cmake --build "$ROOT/$dir" -j"$JOBS" >/dev/null
  echo "== $dir: tests${label:+ (label $label)}"
  (cd "$ROOT/$dir" && ctest --output-on-failure -j"$JOBS" ${label:+-L "$label"})
}

run_suite build "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${SLUICE_TEST_QUICK:-0}" != 1 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan "" -DCMAKE_BUILD_TYPE=Debug -DSLUICE_ASAN=ON -DSLUICE_UBSAN=ON -DSLUICE_BUILD_BENCH=OFF
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run_suite build-tsan concurrency -DCMAKE_BUILD_TYPE=Debug -DSLUICE_TSAN=ON -DSLUICE_BUILD_BENCH=OFF
fi
echo "== all tests passed"
