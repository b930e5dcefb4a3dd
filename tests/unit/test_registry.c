/*
 * Plugin contract tests: real .so files (tests/plugins/ sources, built by CMake)
 * loaded through the real loader. A bad plugin is a clear error, and none
 * of its code runs (the bad ones abort() if called).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <cmocka.h>

#include "registry.h"

#define TP(name) SLUICE_TEST_BINARY_DIR "/testplugins/" name ".so"

static int setup(void **st) {
  *st = sl_registry_new();
  return 0;
}
static int teardown(void **st) {
  sl_registry_free(*st);
  return 0;
}

static void loads_good_plugin(void **st) {
  char err[512] = "";
  sl_plugin_handle_t *h = sl_registry_load(*st, TP("good"), err, sizeof(err));
  assert_non_null(h);
  assert_string_equal(h->desc->name, "good");
  assert_int_equal(h->desc->operator_count, 5);
  /* Loading again returns the same handle. */
  assert_ptr_equal(sl_registry_load(*st, TP("good"), err, sizeof(err)), h);
}

static void expect_load_error(void **st, const char *path, const char *needle) {
  char err[512] = "";
  assert_null(sl_registry_load(*st, path, err, sizeof(err)));
  if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
  /* The message names the file. */
  assert_non_null(strstr(err, path));
}

static void refuses_wrong_abi_major(void **st) {
  expect_load_error(st, TP("bad_abi"), "ABI major version 99");
}
static void refuses_newer_minor(void **st) {
  expect_load_error(st, TP("future_minor"), "upgrade sluice");
}
static void refuses_missing_symbol(void **st) {
  expect_load_error(st, TP("no_symbol"), "does not export the symbol 'sluice_plugin'");
}
static void refuses_small_operator_struct(void **st) {
  expect_load_error(st, TP("bad_struct"), "descriptor is 8 bytes");
}
static void missing_file(void **st) {
  expect_load_error(st, "/nonexistent/dir/x.so", "No such file");
}
static void not_a_shared_object(void **st) {
  char path[] = "/tmp/sluice-test-notso-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "hello", 5), 5);
  close(fd);
  expect_load_error(st, path, "cannot load plugin");
  unlink(path);
}

static void resolves_use_strings(void **st) {
  sl_registry_t *reg = *st;
  sl_registry_add_dir(reg, SLUICE_TEST_BINARY_DIR "/testplugins");
  char err[512];
  sl_plugin_handle_t *h = NULL;
  const sl_operator_t *op = sl_registry_resolve(reg, "good:upper", NULL, &h, err, sizeof(err));
  assert_non_null(op);
  assert_string_equal(op->name, "upper");
  assert_string_equal(h->desc->name, "good");
  op = sl_registry_resolve(reg, TP("good") ":seq", NULL, &h, err, sizeof(err));
  assert_non_null(op);
  assert_string_equal(op->name, "seq");
  op = sl_registry_resolve(reg, "seq", NULL, &h, err, sizeof(err));
  assert_non_null(op);
  /* A plugin file with several operators needs one named. */
  assert_null(sl_registry_resolve(reg, TP("good"), NULL, &h, err, sizeof(err)));
  assert_non_null(strstr(err, "several operators"));
  assert_null(sl_registry_resolve(reg, "good:nope", NULL, &h, err, sizeof(err)));
  assert_non_null(strstr(err, "has no operator 'nope' (it has: seq, upper, keycheck, batcher, decliner)"));
  assert_null(sl_registry_resolve(reg, "nosuchop", NULL, &h, err, sizeof(err)));
  assert_non_null(strstr(err, "unknown operator 'nosuchop'"));
  assert_null(sl_registry_resolve(reg, "nosuch:op", NULL, &h, err, sizeof(err)));
  assert_non_null(strstr(err, "unknown plugin 'nosuch'"));
  /* lua.so (the Lua host) is built into the plugin dir: lua: resolves. */
  op = sl_registry_resolve(reg, "lua:x.lua", NULL, &h, err, sizeof(err));
  assert_non_null(op);
  assert_string_equal(op->scheme, "lua");
}

static void relative_paths_use_base_dir(void **st) {
  char err[512];
  const sl_operator_t *op =
      sl_registry_resolve(*st, "./good.so:upper", SLUICE_TEST_BINARY_DIR "/testplugins", NULL,
                          err, sizeof(err));
  assert_non_null(op);
}

/* A name is a path only when it contains '/' or its file part ends in .so. */
static void so_suffix_rule(void **st) {
  char err[512];
  assert_null(sl_registry_resolve(*st, "good.sox", NULL, NULL, err, sizeof(err)));
  assert_non_null(strstr(err, "unknown operator 'good.sox'"));
  assert_null(sl_registry_resolve(*st, "nope.so:seq", "/nonexistent", NULL, err, sizeof(err)));
  assert_non_null(strstr(err, "/nonexistent/nope.so"));
}

/* The same plugin in two directories of the search path: the first wins and
 * bare operator names still resolve (no "in several plugins" error). */
static void duplicate_plugin_is_shadowed(void **st) {
  char dir[] = "/tmp/sluice-test-dup-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s/good-copy.so'", TP("good"), dir);
  assert_int_equal(system(cmd), 0);
  sl_registry_t *reg = *st;
  sl_registry_add_dir(reg, dir);
  sl_registry_add_dir(reg, SLUICE_TEST_BINARY_DIR "/testplugins");
  char err[512];
  sl_plugin_handle_t *h = NULL;
  const sl_operator_t *op = sl_registry_resolve(reg, "upper", NULL, &h, err, sizeof(err));
  if (!op) fail_msg("%s", err);
  assert_non_null(strstr(h->path, "/testplugins/good.so"));
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* `lua:` with no plugin declaring the scheme: a message saying so. */
static void scheme_without_provider(void **st) {
  unsetenv("SLUICE_PLUGIN_PATH");
  sl_registry_t *reg = sl_registry_new(); /* only the test binary's own dirs: no lua.so */
  char err[512];
  assert_null(sl_registry_resolve(reg, "lua:x.lua", NULL, NULL, err, sizeof(err)));
  assert_non_null(strstr(err, "no plugin provides 'lua:' operators"));
  /* An unknown scheme-like prefix is read as PLUGIN:OP. */
  assert_null(sl_registry_resolve(reg, "nosuch:thing", NULL, NULL, err, sizeof(err)));
  assert_non_null(strstr(err, "unknown plugin 'nosuch'"));
  sl_registry_free(reg);
}

/* A scheme resolves with its argument joined to the base dir. */
static void scheme_resolves_with_arg(void **st) {
  sl_registry_t *reg = *st;
  sl_registry_add_dir(reg, SLUICE_TEST_BINARY_DIR "/testplugins");
  char err[512], *arg = NULL;
  sl_plugin_handle_t *h = NULL;
  const sl_operator_t *op =
      sl_registry_resolve_use(reg, "echo:a/b.txt", "/base", &h, &arg, err, sizeof(err));
  if (!op) fail_msg("%s", err);
  assert_string_equal(op->name, "echo_config");
  assert_string_equal(arg, "/base/a/b.txt");
  free(arg);
  op = sl_registry_resolve_use(reg, "echo:/abs.txt", "/base", &h, &arg, err, sizeof(err));
  assert_non_null(op);
  assert_string_equal(arg, "/abs.txt");
  free(arg);
  assert_null(sl_registry_resolve_use(reg, "echo:", "/base", &h, &arg, err, sizeof(err)));
  assert_non_null(strstr(err, "a file path must follow 'echo:'"));
}

static void error_table_texts(void **st) {
  assert_string_equal(sl_error_text(SL_OK), "ok");
  assert_string_equal(sl_error_text(SL_ENOPORT), "unknown output port");
  assert_string_equal(sl_error_text(-999), "unknown error code");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(loads_good_plugin, setup, teardown),
      cmocka_unit_test_setup_teardown(refuses_wrong_abi_major, setup, teardown),
      cmocka_unit_test_setup_teardown(refuses_newer_minor, setup, teardown),
      cmocka_unit_test_setup_teardown(refuses_missing_symbol, setup, teardown),
      cmocka_unit_test_setup_teardown(refuses_small_operator_struct, setup, teardown),
      cmocka_unit_test_setup_teardown(missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(not_a_shared_object, setup, teardown),
      cmocka_unit_test_setup_teardown(resolves_use_strings, setup, teardown),
      cmocka_unit_test_setup_teardown(relative_paths_use_base_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(so_suffix_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(duplicate_plugin_is_shadowed, setup, teardown),
      cmocka_unit_test(scheme_without_provider),
      cmocka_unit_test_setup_teardown(scheme_resolves_with_arg, setup, teardown),
      cmocka_unit_test(error_table_texts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
