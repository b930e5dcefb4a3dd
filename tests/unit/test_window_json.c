/* The window plugin's JSON text (plugins/window/wn_json.c, wn_out.c):
 * string escaping (quotes, backslashes, control characters, valid and
 * invalid UTF-8), integers, doubles (shortest round trip; -0, NaN and
 * infinities), unescaping of input strings, and a whole result object. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wn_json.h"
#include "wn_out.h"
#include "wn_parse.h"

static char *str_of(const void *s, size_t n) {
  wn_buf_t b = {0};
  wn_json_str(&b, s, n);
  char *r = strndup(b.p, b.len);
  wn_buf_free(&b);
  return r;
}

static void expect_str(const char *in, size_t n, const char *want) {
  char *got = str_of(in, n);
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "json_str: got %s, want %s\n", got, want);
    fail();
  }
  free(got);
}

static void string_escaping(void **st) {
  expect_str("", 0, "\"\"");
  expect_str("plain", 5, "\"plain\"");
  expect_str("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
  expect_str("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
  expect_str("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
  expect_str("nul\0in", 6, "\"nul\\u0000in\"");
  /* valid UTF-8 is kept: 2, 3 and 4 byte sequences */
  expect_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  /* invalid: a lone continuation byte, a truncated sequence, an overlong
   * encoding, a UTF-16 surrogate, beyond U+10FFFF, 0xFF */
  expect_str("a\x80z", 3, "\"a\\ufffdz\"");
  expect_str("a\xe2\x82", 3, "\"a\\ufffd\\ufffd\"");
  expect_str("\xc0\x80", 2, "\"\\ufffd\\ufffd\"");
  expect_str("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
  expect_str("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  expect_str("\xff", 1, "\"\\ufffd\"");
}

static char *dbl(double v) {
  wn_buf_t b = {0};
  wn_json_double(&b, v);
  char *r = strndup(b.p, b.len);
  wn_buf_free(&b);
  return r;
}

static void expect_dbl(double v, const char *want) {
  char *got = dbl(v);
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "json_double(%.17g): got %s, want %s\n", v, got, want);
    fail();
  }
  free(got);
}

static void numbers(void **st) {
  expect_dbl(0.1, "0.1");
  expect_dbl(1.0 / 3, "0.3333333333333333");
  expect_dbl(2.0 / 3, "0.6666666666666666");
  expect_dbl(0.1 + 0.2, "0.30000000000000004"); /* 17 digits when 16 do not round-trip */
  expect_dbl(5.0, "5");
  expect_dbl(-2.5, "-2.5");
  expect_dbl(1e300, "1e+300");
  expect_dbl(123456789012345680.0, "1.2345678901234568e+17");
  expect_dbl(1e21, "1e+21");
  expect_dbl(1.5e-7, "1.5e-07");
  expect_dbl(0.0, "0");
  expect_dbl(-0.0, "0");
  expect_dbl(NAN, "null");
  expect_dbl(INFINITY, "null");
  expect_dbl(-INFINITY, "null");
  /* every double printed reads back as itself */
  srand(7);
  for (int i = 0; i < 100000; i++) {
    uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
    double v;
    memcpy(&v, &bits, sizeof v);
    if (!isfinite(v)) continue;
    char *s = dbl(v);
    if (v == 0) assert_string_equal(s, "0");
    else assert_true(strtod(s, NULL) == v);
    free(s);
  }
  wn_buf_t b = {0};
  wn_json_i64(&b, INT64_MIN);
  wn_buf_putc(&b, ' ');
  wn_json_i64(&b, INT64_MAX);
  wn_buf_putc(&b, ' ');
  wn_json_i64(&b, 0);
  wn_buf_putc(&b, ' ');
  wn_num_t n = {.kind = WN_NUM_DBL, .v.d = 0.5}, none = {0};
  wn_json_num(&b, &n);
  wn_buf_putc(&b, ' ');
  wn_json_num(&b, &none);
  assert_int_equal(b.len, strlen("-9223372036854775808 9223372036854775807 0 0.5 null"));
  assert_memory_equal(b.p, "-9223372036854775808 9223372036854775807 0 0.5 null", b.len);
  wn_buf_free(&b);
}

static void expect_unescape(const char *in, const char *want, long want_len) {
  char out[64];
  long n = wn_json_unescape(in, strlen(in), out);
  assert_int_equal(n, want_len);
  if (want_len >= 0) assert_memory_equal(out, want, (size_t)want_len);
}

static void unescaping(void **st) {
  expect_unescape("plain", "plain", 5);
  expect_unescape("a\\\"b\\\\c\\/d", "a\"b\\c/d", 7);
  expect_unescape("\\n\\t\\r\\b\\f", "\n\t\r\b\f", 5);
  expect_unescape("\\u0041\\u00e9\\u20ac", "A\xc3\xa9\xe2\x82\xac", 6);
  expect_unescape("\\ud83d\\ude00", "\xf0\x9f\x98\x80", 4);
  expect_unescape("\\ud83dx", "\xef\xbf\xbdx", 4);  /* lone high surrogate */
  expect_unescape("\\ude00", "\xef\xbf\xbd", 3);    /* lone low surrogate */
  expect_unescape("\\u0000", "\0", 1);
  expect_unescape("\\x", NULL, -1);
  expect_unescape("\\u12", NULL, -1);
  expect_unescape("\\u12g4", NULL, -1);
  expect_unescape("end\\", NULL, -1);
}

static void whole_result(void **st) {
  wn_aggs_t a;
  char err[256];
  assert_int_equal(wn_parse_aggs("n=count, \"odd\"=count", &a, err, sizeof err), -1);
  wn_aggs_free(&a);
  assert_int_equal(wn_parse_aggs("n=count, avg(x), distinct(s)", &a, err, sizeof err), 0);
  uint64_t acc[8];
  wn_aggs_init(&a, acc);
  wn_val_t vals[2] = {0};
  int xi = strcmp(a.fields[0].name, "x") == 0 ? 0 : 1;
  assert_int_equal(wn_num_parse("1", 1, &vals[xi].num), 0);
  a.v[0].ops->add(&a.v[0], (unsigned char *)acc + a.v[0].acc_off, vals);
  a.v[1].ops->add(&a.v[1], (unsigned char *)acc + a.v[1].acc_off, vals);
  assert_int_equal(wn_num_parse("2", 1, &vals[xi].num), 0);
  a.v[0].ops->add(&a.v[0], (unsigned char *)acc + a.v[0].acc_off, vals);
  a.v[1].ops->add(&a.v[1], (unsigned char *)acc + a.v[1].acc_off, vals);
  wn_tab_t t = {0};
  wn_tab_reset(&t, 0);
  int created;
  wn_tab_upsert(&t, "q", 1, &created);
  wn_tab_t *tabs[3] = {NULL, NULL, &t};
  wn_buf_t b = {0};
  const char key[] = "we\"ird\nkey\xff";
  assert_int_equal(wn_out_window(&b, &a, key, sizeof key - 1, -60000, 0, "late", acc, tabs), 0);
  const char *want = "{\"key\":\"we\\\"ird\\nkey\\ufffd\",\"window_start\":-60000,\"window_end\":0,"
                     "\"timing\":\"late\",\"n\":2,\"avg_x\":1.5,\"distinct_s\":1}";
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.p, want, b.len);
  /* the buffer is reused: a second result replaces the first */
  assert_int_equal(wn_out_window(&b, &a, "k", 1, 0, 10, "early", acc, tabs), 0);
  assert_memory_equal(b.p, "{\"key\":\"k\",\"window_start\":0,", 28);
  wn_buf_free(&b);
  wn_tab_free(&t);
  wn_aggs_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(string_escaping),
      cmocka_unit_test(numbers),
      cmocka_unit_test(unescaping),
      cmocka_unit_test(whole_result),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
