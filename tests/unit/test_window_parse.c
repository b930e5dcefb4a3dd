/* The window plugin's aggregate list parser (plugins/window/wn_parse.c):
 * default and aliased output names, shared fields, `$key` (the record key)
 * and `key` (a field), the accumulator layout, and errors with their column in
 * the string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "wn_parse.h"

static void parses_the_full_list(void **st) {
  wn_aggs_t a;
  char err[256] = "";
  const char *text = "count, sum(bytes), max(bytes), avg(latency), distinct(dst), "
                     "approx_distinct(dst), top_n(page, 3), views=top_n(product, 5, views), "
                     "min( bytes ) ,n=count()";
  int rc = wn_parse_aggs(text, &a, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_int_equal(a.n, 10);
  const char *names[] = {"count",    "sum_bytes", "max_bytes",  "avg_latency", "distinct_dst",
                         "approx_distinct_dst", "top_page", "views", "min_bytes", "n"};
  const enum wn_fn fns[] = {WN_FN_COUNT,           WN_FN_SUM,   WN_FN_MAX,   WN_FN_AVG,
                            WN_FN_DISTINCT,        WN_FN_APPROX_DISTINCT, WN_FN_TOP_N, WN_FN_TOP_N,
                            WN_FN_MIN,             WN_FN_COUNT};
  for (size_t i = 0; i < a.n; i++) {
    assert_string_equal(a.v[i].name, names[i]);
    assert_int_equal(a.v[i].fn, fns[i]);
    assert_int_equal(a.v[i].index, i);
  }
  /* fields: bytes, latency, dst, page, product, views: each once */
  assert_int_equal(a.nfields, 6);
  assert_string_equal(a.fields[a.v[1].field].name, "bytes");
  assert_int_equal(a.v[1].field, a.v[2].field);
  assert_int_equal(a.v[1].field, a.v[8].field);
  assert_int_equal(a.v[4].field, a.v[5].field);
  assert_true(a.fields[a.v[1].field].need_num);
  assert_false(a.fields[a.v[1].field].need_value);
  assert_true(a.fields[a.v[4].field].need_value);
  assert_int_equal(a.v[6].n, 3);
  assert_int_equal(a.v[6].weight, WN_FIELD_NONE);
  assert_int_equal(a.v[7].n, 5);
  assert_string_equal(a.fields[a.v[7].weight].name, "views");
  assert_true(a.fields[a.v[7].weight].need_num);
  /* layout: FIXED accumulators in order, 8-aligned; 4 items aggregates */
  assert_int_equal(a.items, 4);
  assert_int_equal(a.v[0].acc_off, 0);
  assert_int_equal(a.v[1].acc_off, 8);
  assert_int_equal(a.v[2].acc_off, 24);
  assert_int_equal(a.v[3].acc_off, 40);
  assert_int_equal(a.acc_size, 8 + 16 + 16 + 24 + 16 + 8);
  wn_aggs_free(&a);
}

static void key_field_and_layout_fingerprint(void **st) {
  wn_aggs_t a, b, c, d;
  char err[256];
  /* `$key` is the record key (as in key_by), shared by all three */
  assert_int_equal(wn_parse_aggs("distinct($key), top_n($key, 2), sum($key)", &a, err, sizeof err),
                   0);
  assert_int_equal(a.nfields, 1);
  assert_true(a.fields[0].is_key);
  assert_null(a.fields[0].name);
  assert_true(a.fields[0].need_num && a.fields[0].need_value);
  assert_string_equal(a.v[0].name, "distinct_key");
  assert_string_equal(a.v[1].name, "top_key");
  assert_string_equal(a.v[2].name, "sum_key");
  /* same functions, other names: same layout; another function: another */
  assert_int_equal(wn_parse_aggs("x=distinct(y), top_n(z, 9), sum(w)", &b, err, sizeof err), 0);
  assert_int_equal(wn_parse_aggs("distinct($key), top_n($key, 2, q), sum($key)", &c, err, sizeof err),
                   0);
  assert_int_equal(a.layout, b.layout);
  assert_int_not_equal(a.layout, c.layout);
  /* plain `key` is the JSON field "key", like any other name: a field of its
   * own beside the record key; its default names collide with $key's */
  assert_int_equal(wn_parse_aggs("top_n(key, 5, views), dk=distinct($key), sum(key)", &d, err,
                                 sizeof err),
                   0);
  assert_int_equal(d.nfields, 3);
  assert_false(d.fields[d.v[0].field].is_key);
  assert_string_equal(d.fields[d.v[0].field].name, "key");
  assert_string_equal(d.v[0].name, "top_key");
  assert_true(d.fields[d.v[1].field].is_key);
  assert_null(d.fields[d.v[1].field].name);
  assert_int_equal(d.v[2].field, d.v[0].field);
  assert_string_equal(d.v[2].name, "sum_key");
  assert_true(d.fields[d.v[0].field].need_num && d.fields[d.v[0].field].need_value);
  wn_aggs_free(&a);
  wn_aggs_free(&b);
  wn_aggs_free(&c);
  wn_aggs_free(&d);
}

static void expect_error(const char *text, const char *want) {
  wn_aggs_t a;
  char err[256] = "";
  int rc = wn_parse_aggs(text, &a, err, sizeof err);
  if (rc != -1 || !strstr(err, want)) {
    fprintf(stderr, "parse(\"%s\"): rc %d, error \"%s\", expected \"%s\"\n", text, rc, err, want);
    fail();
  }
  wn_aggs_free(&a);
}

static void errors_name_the_column(void **st) {
  expect_error("count, sum(x), mdian(y)", "column 16: unknown function 'mdian' (known: count,");
  expect_error("mdian(y)", "column 1: unknown function 'mdian'");
  expect_error("", "column 1: no aggregate given");
  expect_error("   ", "column 1: no aggregate given");
  expect_error("count,", "column 7: expected an aggregate such as count or sum(field), found the end");
  expect_error("count,,sum(x)", "column 7: expected an aggregate such as count or sum(field), found ','");
  expect_error("count sum(x)", "column 7: expected ',' between aggregates, found 's'");
  expect_error("sum(x", "column 6: sum: expected ',' or ')', found the end");
  expect_error("sum(x y)", "column 7: sum: expected ',' or ')', found 'y'");
  expect_error("sum()", "column 4: sum needs exactly one field: sum(field)");
  expect_error("sum", "column 4: sum needs exactly one field");
  expect_error("avg(a, b)", "column 8: avg needs exactly one field");
  expect_error("sum(,)", "column 5: sum: expected a field name, found ','");
  expect_error("count(x)", "column 7: count takes no argument");
  expect_error("top_n(page)", "column 7: top_n needs a field and a count");
  expect_error("top_n(page, 0)", "column 13: top_n: n must be an integer from 1 to 1000, got '0'");
  expect_error("top_n(page, 1001)", "got '1001'");
  expect_error("top_n(page, x)", "got 'x'");
  expect_error("top_n(page, 3, a, b)", "column 7: top_n needs a field and a count");
  expect_error("count, count", "column 8: duplicate output name 'count'");
  expect_error("sum(x), a=count, a=max(x)", "column 18: duplicate output name 'a'");
  expect_error("max(x), max_x=min(x)", "column 9: duplicate output name 'max_x'");
  expect_error("timing=count", "column 1: output name 'timing' is taken by the window's own fields");
  expect_error("key=count", "output name 'key' is taken");
  expect_error("top_n(key, 2), top_n($key, 2)", "column 16: duplicate output name 'top_key'");
  expect_error("n=", "column 3: expected a function after 'n=', found the end");
  expect_error("count; sum(x)", "column 6: expected ',' between aggregates, found ';'");
}

static void too_many(void **st) {
  char text[4096] = "";
  size_t len = 0;
  for (int i = 0; i <= WN_AGGS_MAX; i++)
    len += (size_t)snprintf(text + len, sizeof text - len, "%sc%d=count", i ? "," : "", i);
  char want[64];
  snprintf(want, sizeof want, "too many aggregates (at most %d)", WN_AGGS_MAX);
  expect_error(text, want);
}

/* ---- user-defined functions (wn_parse_aggs_ex with a resolver) ---- */

static int fake_create(sl_ctx_t *c, void *i, sl_acc_t *a) { return 0; }
static int fake_add(sl_ctx_t *c, void *i, sl_acc_t *a, const sl_agg_arg_t *v, size_t n) { return 1; }
static int fake_merge(sl_ctx_t *c, void *i, sl_acc_t *d, const void *s, size_t n) { return 0; }
static long fake_result(sl_ctx_t *c, void *i, const void *a, size_t n, char *j, size_t cap) { return 0; }
static const sl_aggregate_t k_fixed = {SL_AGGREGATE_INIT, .name = "fixed", .min_args = 1,
                                       .max_args = 2, .acc_size = 12, .create = fake_create,
                                       .add = fake_add, .merge = fake_merge,
                                       .result = fake_result};
static const sl_aggregate_t k_var = {SL_AGGREGATE_INIT, .name = "var", .min_args = 0,
                                     .max_args = 0, .acc_size = 0, .create = fake_create,
                                     .add = fake_add, .merge = fake_merge, .result = fake_result};

typedef struct resolver {
  int calls;
} resolver_t;

/* "p"/"q": fixed (1-2 arguments), "v": variable (none); else unknown */
static wn_udaf_t *resolve(void *ud, const char *name, char *err, size_t errlen) {
  resolver_t *r = ud;
  r->calls++;
  const sl_aggregate_t *d = strcmp(name, "v") == 0 ? &k_var
                            : strcmp(name, "p") == 0 || strcmp(name, "q") == 0 ? &k_fixed
                                                                               : NULL;
  if (!d) {
    snprintf(err, errlen, "no function '%s'", name);
    return NULL;
  }
  return wn_udaf_new(name, d, NULL);
}

static void user_defined_functions(void **st) {
  wn_aggs_t a;
  char err[256] = "";
  resolver_t r = {0};
  assert_int_equal(wn_parse_aggs_ex("count, p(bytes, $key), x=p(page), v, sum(bytes)", &a,
                                    resolve, &r, err, sizeof err), 0);
  assert_int_equal(r.calls, 2); /* p resolved once, used twice */
  assert_int_equal(a.nudafs, 2);
  assert_int_equal(a.n, 5);
  assert_string_equal(a.v[1].name, "p_bytes");
  assert_string_equal(a.v[2].name, "x");
  assert_string_equal(a.v[3].name, "v");
  assert_int_equal(a.v[1].fn, WN_FN_UDAF);
  assert_ptr_equal(a.v[1].udaf, a.v[2].udaf);
  assert_int_equal(a.v[1].nargs, 2);
  assert_true(a.fields[a.v[1].args[0]].need_any);
  assert_true(a.fields[a.v[1].args[1]].is_key);
  assert_int_equal(a.v[1].args[0], a.v[4].field); /* bytes: one field for p and sum */
  assert_true(a.fields[a.v[4].field].need_num);
  /* fixed accumulators in the pane (12 bytes, rounded to 16), the variable one as items */
  assert_int_equal(a.v[1].ops->storage, WN_STORE_FIXED);
  assert_int_equal(a.v[3].ops->storage, WN_STORE_VAR);
  assert_int_equal(a.items, 1);
  assert_int_equal(a.acc_size, 8 + 16 + 16 + 16);
  assert_true(a.fallible);
  uint32_t layout = a.layout;
  wn_aggs_free(&a);
  /* another function of the same size: another layout */
  assert_int_equal(wn_parse_aggs_ex("count, q(bytes, $key), x=q(page), v, sum(bytes)", &a,
                                    resolve, &r, err, sizeof err), 0);
  assert_int_not_equal(a.layout, layout);
  wn_aggs_free(&a);

  assert_int_equal(wn_parse_aggs_ex("count, p()", &a, resolve, &r, err, sizeof err), -1);
  assert_string_equal(err, "column 9: p takes 1 to 2 arguments, got 0");
  wn_aggs_free(&a);
  assert_int_equal(wn_parse_aggs_ex("v(a)", &a, resolve, &r, err, sizeof err), -1);
  assert_string_equal(err, "column 3: v takes 0 arguments, got 1");
  wn_aggs_free(&a);
  assert_int_equal(wn_parse_aggs_ex("count, zz(a)", &a, resolve, &r, err, sizeof err), -1);
  assert_string_equal(err, "column 8: no function 'zz'");
  wn_aggs_free(&a);
  /* without a resolver, an unknown name is the built-ins' error */
  assert_int_equal(wn_parse_aggs("p(a)", &a, err, sizeof err), -1);
  assert_non_null(strstr(err, "unknown function 'p'"));
  wn_aggs_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parses_the_full_list),
      cmocka_unit_test(key_field_and_layout_fingerprint),
      cmocka_unit_test(errors_name_the_column),
      cmocka_unit_test(too_many),
      cmocka_unit_test(user_defined_functions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
