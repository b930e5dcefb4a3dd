/*
 * test_json_valid.c - the strict JSON check (json_valid.c): texts RFC 8259
 * accepts, texts it refuses (with the byte offset in the reason), and the
 * nesting limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_valid.h"

static int check(const char *s, char *why, size_t whylen) {
  return sl_json_check(s, strlen(s), why, whylen);
}

static void test_valid(void **state) {
  (void)state;
  static const char *good[] = {
      "{}", "[]", " {\"a\":1} ", "0", "-0", "12.5e-3", "1E+9", "\"\"", "true", "false", "null",
      "{\"a\":[1,2,{\"b\":null}],\"c\":\"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\\u00e9\"}",
      "[\"caf\xc3\xa9\", \"\xe2\x82\xac\", \"\xf0\x9f\x98\x80\"]", "\t\r\n[ 1 , 2 ]\n",
      "{\"user\":\"u1\",\"ts\":1700000000000,\"page\":\"/p/7\"}"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    char why[128] = "";
    if (check(good[i], why, sizeof why) != 0) fail_msg("refused %s: %s", good[i], why);
  }
}

static void test_invalid(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *why; /* the start of the reason */
  } badcases[] = {
      {"", "byte 0: empty"},
      {"   ", "byte 3: empty"},
      {"{", "byte 1: a string key expected"},
      {"{\"a\"}", "byte 4: ':' expected"},
      {"{\"a\":}", "byte 5: a value expected"},
      {"{\"a\":1,}", "byte 7: a string key expected"},
      {"[1,]", "byte 3: a value expected"},
      {"[1 2]", "byte 3: ',' or ']' expected"},
      {"[1}", "byte 2: ',' or ']' expected"},
      {"[}", "byte 1: mismatched bracket"},
      {"{a:1}", "byte 1: a string key expected"},
      {"01", "byte 1: text after"},
      {"1.", "byte 2: a digit expected"},
      {"-", "byte 1: a digit expected"},
      {"1e", "byte 2: a digit expected"},
      {"+1", "byte 0: a value expected"},
      {"tru", "byte 0: a value expected"},
      {"nul", "byte 0: a value expected"},
      {"\"abc", "byte 4: unterminated"},
      {"\"a\\x\"", "byte 2: invalid escape"},
      {"\"\\u12g4\"", "byte 1: \\u needs 4 hex"},
      {"\"a\tb\"", "byte 2: control character"},
      {"\"\xff\"", "byte 1: invalid UTF-8"},
      {"\"\xc3\"", "byte 1: invalid UTF-8"},
      {"\"\xe0\x80\x80\"", "byte 1: invalid UTF-8"},   /* overlong */
      {"\"\xed\xa0\x80\"", "byte 1: invalid UTF-8"},   /* a surrogate */
      {"\"\xf4\x90\x80\x80\"", "byte 1: invalid UTF-8"}, /* above U+10FFFF */
      {"{} {}", "byte 3: text after"},
      {"[1] x", "byte 4: text after"},
      {"not json at all", "byte 0: a value expected"},
  };
  for (size_t i = 0; i < sizeof badcases / sizeof *badcases; i++) {
    char why[128] = "";
    if (check(badcases[i].text, why, sizeof why) == 0) fail_msg("accepted '%s'", badcases[i].text);
    if (strncmp(why, badcases[i].why, strlen(badcases[i].why)) != 0)
      fail_msg("'%s': reason '%s', expected '%s...'", badcases[i].text, why, badcases[i].why);
  }
}

/* A NUL inside the buffer is a control character, not an end. */
static void test_embedded_nul(void **state) {
  (void)state;
  char why[64];
  assert_int_equal(sl_json_check("\"a\0b\"", 5, why, sizeof why), -1);
  assert_int_equal(sl_json_check("[1]\0", 4, why, sizeof why), -1);
  assert_int_equal(sl_json_check("[1]", 3, NULL, 0), 0);
}

/* Nesting up to the limit passes; one more is refused, without recursion. */
static void test_depth(void **state) {
  (void)state;
  size_t n = SL_JSON_MAX_DEPTH + 1;
  char *s = malloc(2 * n + 1);
  char why[64];
  for (size_t i = 0; i < n - 1; i++) s[i] = '[';
  for (size_t i = 0; i < n - 1; i++) s[n - 1 + i] = ']';
  assert_int_equal(sl_json_check(s, 2 * (n - 1), why, sizeof why), 0);
  for (size_t i = 0; i < n; i++) s[i] = '[';
  for (size_t i = 0; i < n; i++) s[n + i] = ']';
  assert_int_equal(sl_json_check(s, 2 * n, why, sizeof why), -1);
  assert_non_null(strstr(why, "nested too deep"));
  /* objects and arrays mixed at depth: {"a":[{"a":[...]}]} */
  size_t len = 0;
  for (size_t i = 0; i < 100; i++) {
    memcpy(s + len, "{\"a\":[", 6);
    len += 6;
  }
  for (size_t i = 0; i < 100; i++) {
    memcpy(s + len, "]}", 2);
    len += 2;
  }
  assert_true(len <= 2 * n);
  assert_int_equal(sl_json_check(s, len, why, sizeof why), 0);
  s[len - 1] = ']'; /* the last } becomes ] */
  assert_int_equal(sl_json_check(s, len, why, sizeof why), -1);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_embedded_nul),
      cmocka_unit_test(test_depth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
