#!/usr/bin/env bash
# Install the Debian packages Sluice needs to build and test, if missing.
# The one place that lists them; README's two commands call it.
# Each package and why it is there: docs/dependencies.md.
set -euo pipefail

PACKAGES=(
  cmake gcc g++ make pkg-config   # build
  libyaml-dev                     # DAG files (YAML with line:column marks)
  libxxhash-dev                   # key_by hashing (XXH3)
  librocksdb-dev                  # the RocksDB keyed-state backend (state.backend: rocksdb)
  librdkafka-dev                  # Kafka: sluice kafka-dev (librdkafka's mock cluster)
  liblua5.4-dev lua-cjson-dev     # the Lua operator host (lua/): Lua 5.4 and its JSON codec
  libcmocka-dev                   # unit tests
  valgrind                        # memcheck runs in tests/e2e/valgrind.sh
  python3                         # e2e tests check JSON output with it
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
