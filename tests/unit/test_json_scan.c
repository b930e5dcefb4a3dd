/* Top-level JSON field lookup (key_by and sl_json_get). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "json_scan.h"

static int get(const char *doc, const char *field, sl_json_value_t *v) {
  return sl_json_scan_get(doc, strlen(doc), field, v);
}

static void finds_each_type(void **st) {
  const char *doc = " { \"s\" : \"p17\", \"n\": -12.5e3, \"b\":true, \"z\":null, "
                    "\"o\":{\"s\":\"inner\"}, \"a\":[1,\"]\",{}] } ";
  sl_json_value_t v;
  assert_int_equal(get(doc, "s", &v), 0);
  assert_int_equal(v.type, SL_JSON_STRING);
  assert_int_equal(v.len, 3);
  assert_memory_equal(v.ptr, "p17", 3);
  assert_int_equal(get(doc, "n", &v), 0);
  assert_int_equal(v.type, SL_JSON_NUMBER);
  assert_memory_equal(v.ptr, "-12.5e3", v.len);
  assert_int_equal(get(doc, "b", &v), 0);
  assert_int_equal(v.type, SL_JSON_BOOL);
  assert_int_equal(get(doc, "z", &v), 0);
  assert_int_equal(v.type, SL_JSON_NULL);
  assert_int_equal(get(doc, "o", &v), 0);
  assert_int_equal(v.type, SL_JSON_OBJECT);
  assert_memory_equal(v.ptr, "{\"s\":\"inner\"}", v.len);
  assert_int_equal(get(doc, "a", &v), 0);
  assert_int_equal(v.type, SL_JSON_ARRAY);
  assert_memory_equal(v.ptr, "[1,\"]\",{}]", v.len);
}

static void nested_fields_are_not_top_level(void **st) {
  sl_json_value_t v;
  assert_int_equal(get("{\"o\":{\"x\":1},\"y\":2}", "x", &v), SL_ENOTFOUND);
  assert_int_equal(v.type, SL_JSON_NONE);
  assert_int_equal(get("{}", "x", &v), SL_ENOTFOUND);
}

static void escaped_quotes_in_strings(void **st) {
  sl_json_value_t v;
  const char *doc = "{\"a\":\"say \\\"hi\\\" \\\\\",\"b\":\"x\"}";
  assert_int_equal(get(doc, "b", &v), 0);
  assert_memory_equal(v.ptr, "x", 1);
  assert_int_equal(get(doc, "a", &v), 0);
  assert_int_equal(v.len, strlen("say \\\"hi\\\" \\\\"));
}

static void rejects_non_objects_and_garbage(void **st) {
  sl_json_value_t v;
  assert_int_equal(get("[1,2]", "a", &v), SL_ERECORD);
  assert_int_equal(get("hello", "a", &v), SL_ERECORD);
  assert_int_equal(get("", "a", &v), SL_ERECORD);
  assert_int_equal(get("{\"a\":", "a", &v), SL_ERECORD);
  assert_int_equal(get("{\"a\" 1}", "a", &v), SL_ERECORD);
  assert_int_equal(get("{\"x\":\"unterminated}", "a", &v), SL_ERECORD);
  assert_int_equal(get("{\"x\":1 \"a\":2}", "a", &v), SL_ERECORD);
  assert_int_equal(get("{\"x\":[1,2}", "a", &v), SL_ERECORD);
  assert_int_equal(get("{\"x\":wat,\"a\":1}", "a", &v), SL_ERECORD);
}

static void does_not_read_past_length(void **st) {
  /* The buffer continues after len; the scanner must stop at len. */
  const char buf[] = "{\"a\":1}{\"b\":2}";
  sl_json_value_t v;
  assert_int_equal(sl_json_scan_get(buf, 7, "b", &v), SL_ENOTFOUND);
  assert_int_equal(sl_json_scan_get(buf, 5, "a", &v), SL_ERECORD);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(finds_each_type),
      cmocka_unit_test(nested_fields_are_not_top_level),
      cmocka_unit_test(escaped_quotes_in_strings),
      cmocka_unit_test(rejects_non_objects_and_garbage),
      cmocka_unit_test(does_not_read_past_length),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
