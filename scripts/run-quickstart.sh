#!/usr/bin/env bash
# The README's run command: install what is missing, build, and run the
# quickstart pipeline (generator -> parse/filter -> views per product and minute
# -> top 5 products per minute -> files).
# Extra arguments go to `sluice run` (e.g. --workers 1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
BUILD="${SLUICE_BUILD_DIR:-$ROOT/build}"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
OUT="${SLUICE_QUICKSTART_OUT:-$ROOT/tmp/quickstart}"
mkdir -p "$OUT"
cd "$OUT"
"$BUILD/sluice" run "$@" "$ROOT/examples/quickstart/dag.yaml"
echo
echo "output: $OUT/quickstart-views.jsonl ($(wc -l < quickstart-views.jsonl) lines: views per product and minute)"
echo "        $OUT/quickstart-top.jsonl ($(wc -l < quickstart-top.jsonl) lines: the top 5 products of each minute; first 3:)"
head -3 quickstart-top.jsonl
