#!/usr/bin/env bash
# e2e: the installed SDK is usable from outside the tree.
#
#  1. cmake --install the build into a scratch prefix; check the layout.
#  2. build examples/plugins/clicks out of tree with find_package(Sluice).
#  3. build a one-file plugin with cc and `pkg-config --cflags sluice`.
#  4. sluice.h compiles alone as C99 and as C++20 (-Wall -Werror).
#  5. run a DAG that uses both out-of-tree .so files by absolute path and check
#     its output against an independent count of the generator's output.
#  6. the installed `sluice` finds the installed built-in plugins by itself.
set -euo pipefail

: "${SLUICE:?SLUICE (the sluice binary) must be set}"
: "${SLUICE_SOURCE_DIR:?}"
: "${SLUICE_BUILD_DIR:?}"
: "${SLUICE_SCRATCH:?}"
export LC_ALL=C

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

rm -rf "$SLUICE_SCRATCH"
mkdir -p "$SLUICE_SCRATCH"
cd "$SLUICE_SCRATCH"
PREFIX="$SLUICE_SCRATCH/prefix"

# ------------------------------------------------------------------ 1. install
step "cmake --install into $PREFIX"
cmake --install "$SLUICE_BUILD_DIR" --prefix "$PREFIX" > install.log 2>&1 || {
  cat install.log >&2
  fail "cmake --install failed"
}
[ -f "$PREFIX/include/sluice.h" ] || fail "include/sluice.h not installed"
cmp -s "$PREFIX/include/sluice.h" "$SLUICE_SOURCE_DIR/sdk/include/sluice.h" || fail "installed sluice.h differs from the source"
config=$(find "$PREFIX" -path '*/cmake/Sluice/SluiceConfig.cmake' | head -n 1)
[ -n "$config" ] || fail "SluiceConfig.cmake not installed"
cmakedir=$(dirname "$config")
for f in SluiceConfigVersion.cmake SluiceTargets.cmake SluicePlugin.cmake; do
  [ -f "$cmakedir/$f" ] || fail "$cmakedir/$f not installed"
done
pc=$(find "$PREFIX" -path '*/pkgconfig/sluice.pc' | head -n 1)
[ -n "$pc" ] || fail "pkgconfig/sluice.pc not installed"
plugindir=$(find "$PREFIX" -type d -path '*/sluice/plugins' | head -n 1)
[ -n "$plugindir" ] || fail "no sluice/plugins directory installed"
for p in generator io clicks; do
  [ -f "$plugindir/$p.so" ] || fail "built-in plugin $p.so not installed in $plugindir"
done

# ------------------------------------------------------------------ 2. CMake, out of tree
step "configure and build examples/plugins/clicks out of tree"
cmake -S "$SLUICE_SOURCE_DIR/examples/plugins/clicks" -B clicks-build \
  -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release > clicks-configure.log 2>&1 || {
  cat clicks-configure.log >&2
  fail "configuring the clicks example against the installed package failed"
}
cmake --build clicks-build > clicks-build.log 2>&1 || {
  cat clicks-build.log >&2
  fail "building the clicks example out of tree failed"
}
CLICKS_SO="$SLUICE_SCRATCH/clicks-build/clicks.so"
[ -f "$CLICKS_SO" ] || fail "out-of-tree build did not produce $CLICKS_SO"
# It must have used the installed header, not the source tree's.
grep -rq -- "$PREFIX/include" clicks-build/CMakeFiles/clicks.dir/flags.make ||
  fail "out-of-tree build does not use $PREFIX/include"
if command -v nm > /dev/null; then
  exports=$(nm -D --defined-only "$CLICKS_SO" | awk '$2 ~ /^[A-Z]$/ && $2 != "A" { print $3 }' | grep -v '^_' || true)
  [ "$exports" = "sluice_plugin" ] || fail "clicks.so should export only sluice_plugin, exports: $exports"
fi
# A version the package cannot satisfy must be refused.
mkdir -p badver
cat > badver/CMakeLists.txt << 'EOF'
cmake_minimum_required(VERSION 3.20)
project(badver C)
find_package(Sluice 99.0 REQUIRED)
EOF
if cmake -S badver -B badver/build -DCMAKE_PREFIX_PATH="$PREFIX" > badver.log 2>&1; then
  fail "find_package(Sluice 99.0) should fail against the installed 0.x package"
fi

# ------------------------------------------------------------------ 3. pkg-config + cc
step "one-file plugin with cc and pkg-config"
cflags=$(PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config --cflags sluice) || fail "pkg-config --cflags sluice failed"
# The .pc file is relocatable (prefix from ${pcfiledir}): compare real paths.
inc=${cflags#-I}
inc=${inc%% *}
[ "$(cd "$inc" 2> /dev/null && pwd -P)" = "$(cd "$PREFIX/include" && pwd -P)" ] ||
  fail "pkg-config --cflags sluice gave '$cflags', expected -I$PREFIX/include"
cat > stamp.c << 'EOF'
/* A one-operator plugin: wraps each value as {"stamped":<value>}. */
#include <stdlib.h>
#include <string.h>
#include <sluice.h>

typedef struct { char *buf; size_t cap; } stamp_t;

static int stamp_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  (void)ctx; (void)errbuf; (void)errbuf_len;
  stamp_t *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  *state = s;
  return SL_OK;
}

static int stamp_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  stamp_t *s = state;
  size_t need = rec->value_len + 16;
  if (need > s->cap) {
    char *b = realloc(s->buf, need);
    if (!b) return SL_ENOMEM;
    s->buf = b;
    s->cap = need;
  }
  memcpy(s->buf, "{\"stamped\":", 11);
  memcpy(s->buf + 11, rec->value, rec->value_len);
  s->buf[11 + rec->value_len] = '}';
  sl_record_t out = *rec;
  out.value = s->buf;
  out.value_len = rec->value_len + 12;
  return sl_emit(ctx, &out);
}

static void stamp_close(void *state) {
  stamp_t *s = state;
  if (s) free(s->buf);
  free(s);
}

static const sl_operator_t stamp_op = {
    SL_OPERATOR_INIT,
    .name = "stamp",
    .version = "1.0.0",
    .description = "wraps a JSON value as {\"stamped\":value}",
    .kind = SL_KIND_TRANSFORM,
    .open = stamp_open,
    .process = stamp_process,
    .close = stamp_close,
};

SL_PLUGIN_DEFINE("stamp", "1.0.0", "out-of-tree test plugin", &stamp_op);
EOF
# shellcheck disable=SC2086 # cflags is a list of flags
cc -shared -fPIC -fvisibility=hidden -Wall -Wextra -Werror $cflags -o stamp.so stamp.c ||
  fail "compiling a one-file plugin with pkg-config's flags failed"
STAMP_SO="$SLUICE_SCRATCH/stamp.so"

# ------------------------------------------------------------------ 4. header alone
step "sluice.h compiles alone as C99 and C++20"
cat > header_c99.c << 'EOF'
#include <sluice.h>
static int f(sl_ctx_t *ctx) {
  sl_record_t r = {0};
  return sl_emit(ctx, &r) + (int)sl_budget(ctx) + sl_stopping(ctx);
}
static const sl_operator_t op = {SL_OPERATOR_INIT, .name = "x", .kind = SL_KIND_SINK};
SL_PLUGIN_DEFINE("x", "1", "x", &op);
int main(void) {
  (void)f;
  return 0;
}
EOF
gcc -std=c99 -Wall -Werror -fsyntax-only -I"$PREFIX/include" header_c99.c ||
  fail "sluice.h does not compile alone as C99 (gcc -std=c99 -Wall -Werror)"
cat > header_cxx.cpp << 'EOF'
#include <sluice.h>
static int f(sl_ctx_t *ctx) {
  sl_record_t r = {};
  sl_log(ctx, SL_LOG_INFO, "%d", 1);
  return sl_emit(ctx, &r) + static_cast<int>(sl_budget(ctx)) + sl_stopping(ctx);
}
static const sl_operator_t op = {SL_OPERATOR_INIT, .name = "x", .kind = SL_KIND_SINK};
SL_PLUGIN_DEFINE("x", "1", "x", &op);
int main() {
  (void)f;
  return 0;
}
EOF
g++ -std=c++20 -Wall -Werror -fsyntax-only -I"$PREFIX/include" header_cxx.cpp ||
  fail "sluice.h does not compile alone as C++20 (g++ -std=c++20 -Wall -Werror)"

# ------------------------------------------------------------------ 5. run a DAG with them
step "run a DAG using the out-of-tree plugins by absolute path"
cat > dag.yaml << EOF
name: out_of_tree
settings:
  workers: 2
nodes:
  clicks:
    use: generator
    config: { kind: clicks, count: 20000, seed: 11, products: 30 }
  parse:
    use: $CLICKS_SO:parse_views
    from: clicks
    config: { action: purchase }
  counts:
    use: $CLICKS_SO:count_by_key
    from: parse
    key_by: \$key
    parallelism: 2
  stamp:
    use: $STAMP_SO
    from: counts
  out:
    use: file_sink
    from: stamp
    config: { path: counts.jsonl }
  raw:
    use: file_sink
    from: clicks
    config: { path: raw.jsonl }
EOF
"$SLUICE" run dag.yaml > run.log 2>&1 || {
  cat run.log >&2
  fail "sluice run with out-of-tree plugins failed"
}
[ "$(wc -l < raw.jsonl)" -eq 20000 ] || fail "expected 20000 raw clicks, got $(wc -l < raw.jsonl)"
grep '"action":"purchase"' raw.jsonl | grep -o '"product_id":"[^"]*"' | cut -d'"' -f4 | sort | uniq -c |
  awk '{ printf "{\"stamped\":{\"key\":\"%s\",\"count\":%d}}\n", $2, $1 }' | sort > expected.sorted
[ "$(wc -l < expected.sorted)" -ge 20 ] || fail "reference has too few products: $(wc -l < expected.sorted)"
sort counts.jsonl > counts.sorted
diff -u expected.sorted counts.sorted || fail "out-of-tree pipeline output differs from the reference count"

# ------------------------------------------------------------------ 6. installed binary
step "the installed sluice finds the installed plugins"
if [ -x "$PREFIX/bin/sluice" ]; then
  env -u SLUICE_PLUGIN_PATH "$PREFIX/bin/sluice" plugins > installed-plugins.txt 2>&1 || true
  for p in generator io clicks; do
    grep -q "^$p " installed-plugins.txt || {
      cat installed-plugins.txt >&2
      fail "installed sluice does not list the installed plugin '$p'"
    }
  done
else
  fail "bin/sluice not installed"
fi

echo "out_of_tree_plugin: ok"
