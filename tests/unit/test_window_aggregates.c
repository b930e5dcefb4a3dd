/* The window plugin's aggregates (plugins/window/wn_agg.c), through their
 * vtable: add, merge and result of each, number parsing and arithmetic, and
 * the property that matters for sliding and session windows: splitting the
 * records over panes in any way and merging the panes gives the same result
 * as one pane. A "pane" here stores ITEMS aggregates in wn_tab_t tables,
 * as the operator stores them in map state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wn_out.h"
#include "wn_parse.h"

typedef struct pane {
  uint64_t acc[512]; /* FIXED area (8-aligned) */
  wn_tab_t tabs[WN_AGGS_MAX];
} pane_t;

static void pane_init(const wn_aggs_t *a, pane_t *p) {
  memset(p, 0, sizeof *p);
  wn_aggs_init(a, p->acc);
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i].ops->storage == WN_STORE_ITEMS) wn_tab_reset(&p->tabs[i], a->v[i].ops->size(&a->v[i]));
}

static void pane_free(const wn_aggs_t *a, pane_t *p) {
  for (size_t i = 0; i < WN_AGGS_MAX; i++) wn_tab_free(&p->tabs[i]);
}

static void pane_add(const wn_aggs_t *a, pane_t *p, const wn_val_t *vals) {
  for (size_t i = 0; i < a->n; i++) {
    const wn_agg_t *g = &a->v[i];
    if (g->ops->storage == WN_STORE_FIXED) {
      g->ops->add(g, (unsigned char *)p->acc + g->acc_off, vals);
      continue;
    }
    const void *k;
    size_t len;
    int created;
    g->ops->item_key(g, vals, &k, &len);
    void *v = wn_tab_upsert(&p->tabs[i], k, len, &created);
    assert_non_null(v);
    if (created) g->ops->init(g, v);
    g->ops->add(g, v, vals);
  }
}

static void pane_merge(const wn_aggs_t *a, pane_t *dst, const pane_t *src) {
  wn_aggs_merge(a, dst->acc, src->acc);
  for (size_t i = 0; i < a->n; i++) {
    const wn_agg_t *g = &a->v[i];
    if (g->ops->storage != WN_STORE_ITEMS) continue;
    for (size_t e = 0; e < wn_tab_count(&src->tabs[i]); e++) {
      const void *k;
      size_t len;
      void *sv;
      int created;
      wn_tab_at(&src->tabs[i], e, &k, &len, &sv);
      void *dv = wn_tab_upsert(&dst->tabs[i], k, len, &created);
      if (created) g->ops->init(g, dv);
      g->ops->merge(g, dv, sv);
    }
  }
}

static char *result(const wn_aggs_t *a, pane_t *p) {
  wn_buf_t b = {0};
  wn_tab_t *tp[WN_AGGS_MAX];
  for (size_t i = 0; i < WN_AGGS_MAX; i++) tp[i] = &p->tabs[i];
  assert_int_equal(wn_out_window(&b, a, "k", 1, 0, 1000, "on_time", p->acc, tp), 0);
  char *s = strndup(b.p, b.len);
  wn_buf_free(&b);
  return s;
}

/* records: fields x (number), s (value), w (number) */
typedef struct rec {
  const char *x;
  const char *s;
  const char *w;
} rec_t;

static void vals_of(const wn_aggs_t *a, const rec_t *r, wn_val_t *vals) {
  for (size_t f = 0; f < a->nfields; f++) {
    const wn_field_t *fd = &a->fields[f];
    const char *t = strcmp(fd->name, "x") == 0 ? r->x : strcmp(fd->name, "s") == 0 ? r->s : r->w;
    memset(&vals[f], 0, sizeof vals[f]);
    vals[f].s = t;
    vals[f].len = strlen(t);
    if (fd->need_num) assert_int_equal(wn_num_parse(t, strlen(t), &vals[f].num), 0);
  }
}

static char *run(const char *aggs, const rec_t *recs, size_t n) {
  wn_aggs_t a;
  char err[256];
  assert_int_equal(wn_parse_aggs(aggs, &a, err, sizeof err), 0);
  pane_t *p = malloc(sizeof *p);
  pane_init(&a, p);
  wn_val_t vals[8];
  for (size_t i = 0; i < n; i++) {
    vals_of(&a, &recs[i], vals);
    pane_add(&a, p, vals);
  }
  char *s = result(&a, p);
  pane_free(&a, p);
  free(p);
  wn_aggs_free(&a);
  return s;
}

#define HEAD "{\"key\":\"k\",\"window_start\":0,\"window_end\":1000,\"timing\":\"on_time\","

static void scalar_aggregates(void **st) {
  const rec_t r[] = {{"3", "a", "1"}, {"-1", "b", "1"}, {"7", "a", "1"}};
  char *s = run("count, sum(x), min(x), max(x), avg(x)", r, 3);
  assert_string_equal(s, HEAD "\"count\":3,\"sum_x\":9,\"min_x\":-1,\"max_x\":7,\"avg_x\":3}");
  free(s);
  const rec_t d[] = {{"0.5", "a", "1"}, {"0.25", "b", "1"}, {"2", "c", "1"}};
  s = run("sum(x), min(x), max(x), avg(x)", d, 3);
  assert_string_equal(s, HEAD "\"sum_x\":2.75,\"min_x\":0.25,\"max_x\":2,\"avg_x\":0.9166666666666666}");
  free(s);
  /* an integer sum that overflows goes on as a double */
  const rec_t o[] = {{"9223372036854775807", "a", "1"}, {"1", "a", "1"}};
  s = run("sum(x), max(x)", o, 2);
  assert_string_equal(s, HEAD "\"sum_x\":9.223372036854776e+18,\"max_x\":9223372036854775807}");
  free(s);
  /* ties keep the first value; 1 and 1.0 print the same */
  const rec_t t[] = {{"1.0", "a", "1"}, {"1", "a", "1"}, {"1e0", "a", "1"}};
  s = run("min(x), max(x), sum(x)", t, 3);
  assert_string_equal(s, HEAD "\"min_x\":1,\"max_x\":1,\"sum_x\":3}");
  free(s);
  /* no record: avg is null, sum 0, min/max null, count 0 (the operator never emits this) */
  s = run("count, sum(x), avg(x), min(x), distinct(s), top_n(s, 2), approx_distinct(s)", NULL, 0);
  assert_string_equal(s, HEAD "\"count\":0,\"sum_x\":0,\"avg_x\":null,\"min_x\":null,"
                              "\"distinct_s\":0,\"top_s\":[],\"approx_distinct_s\":0}");
  free(s);
}

static void items_aggregates(void **st) {
  const rec_t r[] = {{"1", "b", "2"},  {"1", "a", "5"},   {"1", "c", "1.5"}, {"1", "b", "-1"},
                     {"1", "a", "0"},  {"1", "d", "10"},  {"1", "c", "1"},   {"1", "e\"q", "1"}};
  char *s = run("distinct(s), top_n(s, 3), tw=top_n(s, 2, w), approx_distinct(s)", r, 8);
  /* counts: a 2, b 2, c 2, d 1, e"q 1 -> ties by value ascending */
  assert_string_equal(s, HEAD "\"distinct_s\":5,"
                              "\"top_s\":[{\"value\":\"a\",\"count\":2},{\"value\":\"b\",\"count\":2},"
                              "{\"value\":\"c\",\"count\":2}],"
                              "\"tw\":[{\"value\":\"d\",\"sum\":10},{\"value\":\"a\",\"sum\":5}],"
                              "\"approx_distinct_s\":5}");
  free(s);
}

static void topn_order(void **st) {
  /* sums: x 2.5, y 2.5, xy 2.5, "" 3 -> "" first, then x, xy, y (prefix first) */
  const rec_t r[] = {{"1", "x", "2.5"}, {"1", "y", "2.5"}, {"1", "xy", "2.5"}, {"1", "", "3"}};
  char *s = run("t=top_n(s, 10, w)", r, 4);
  assert_string_equal(s, HEAD "\"t\":[{\"value\":\"\",\"sum\":3},{\"value\":\"x\",\"sum\":2.5},"
                              "{\"value\":\"xy\",\"sum\":2.5},{\"value\":\"y\",\"sum\":2.5}]}");
  free(s);
}

/* Property: any split of the records over panes, merged in any order,
 * gives the result of one pane. Values are integers and quarters, so double
 * sums are exact whatever the order. */
static void merge_equals_single_pane(void **st) {
  const char *aggs = "count, sum(x), min(x), max(x), avg(x), distinct(s), approx_distinct(s), "
                     "top_n(s, 4), tw=top_n(s, 3, w), sum(w)";
  wn_aggs_t a;
  char err[256];
  assert_int_equal(wn_parse_aggs(aggs, &a, err, sizeof err), 0);
  srand(42);
  for (int trial = 0; trial < 200; trial++) {
    size_t n = 1 + (size_t)(rand() % 60);
    char xs[64][32], ss[64][8], ws[64][32];
    rec_t recs[64];
    for (size_t i = 0; i < n; i++) {
      int q = rand() % 4;
      snprintf(xs[i], sizeof xs[i], q ? "%d.%s" : "%d", rand() % 200 - 100,
               q == 1 ? "25" : q == 2 ? "5" : "75");
      snprintf(ss[i], sizeof ss[i], "v%d", rand() % 12);
      snprintf(ws[i], sizeof ws[i], "%d", rand() % 50);
      recs[i] = (rec_t){xs[i], ss[i], ws[i]};
    }
    pane_t *one = malloc(sizeof *one), *parts = malloc(4 * sizeof *parts), *m = malloc(sizeof *m);
    pane_init(&a, one);
    pane_init(&a, m);
    for (int k = 0; k < 4; k++) pane_init(&a, &parts[k]);
    wn_val_t vals[8];
    for (size_t i = 0; i < n; i++) {
      vals_of(&a, &recs[i], vals);
      pane_add(&a, one, vals);
      pane_add(&a, &parts[rand() % 4], vals);
    }
    int order[4] = {0, 1, 2, 3};
    for (int k = 3; k > 0; k--) {
      int j = rand() % (k + 1), t = order[k];
      order[k] = order[j];
      order[j] = t;
    }
    for (int k = 0; k < 4; k++) pane_merge(&a, m, &parts[order[k]]);
    char *r1 = result(&a, one), *r2 = result(&a, m);
    assert_string_equal(r1, r2);
    free(r1);
    free(r2);
    pane_free(&a, one);
    pane_free(&a, m);
    for (int k = 0; k < 4; k++) pane_free(&a, &parts[k]);
    free(one);
    free(parts);
    free(m);
  }
  wn_aggs_free(&a);
}

static void number_parsing(void **st) {
  wn_num_t n;
  assert_int_equal(wn_num_parse("12", 2, &n), 0);
  assert_int_equal(n.kind, WN_NUM_INT);
  assert_int_equal(n.v.i, 12);
  assert_int_equal(wn_num_parse("-0", 2, &n), 0);
  assert_int_equal(n.kind, WN_NUM_INT);
  assert_int_equal(n.v.i, 0);
  assert_int_equal(wn_num_parse("9223372036854775807", 19, &n), 0);
  assert_int_equal(n.kind, WN_NUM_INT);
  assert_true(n.v.i == INT64_MAX);
  assert_int_equal(wn_num_parse("-9223372036854775808", 20, &n), 0);
  assert_int_equal(n.kind, WN_NUM_INT);
  assert_true(n.v.i == INT64_MIN);
  assert_int_equal(wn_num_parse("9223372036854775808", 19, &n), 0);
  assert_int_equal(n.kind, WN_NUM_DBL);
  assert_true(n.v.d == 9223372036854775808.0);
  assert_int_equal(wn_num_parse("1.5", 3, &n), 0);
  assert_int_equal(n.kind, WN_NUM_DBL);
  assert_true(n.v.d == 1.5);
  assert_int_equal(wn_num_parse("-2.5E+2", 7, &n), 0);
  assert_true(n.v.d == -250);
  assert_int_equal(wn_num_parse("1e3", 3, &n), 0);
  assert_int_equal(n.kind, WN_NUM_DBL);
  const char *bad[] = {"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1 ", "NaN", "--1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(wn_num_parse(bad[i], strlen(bad[i]), &n), -1);
  /* only the given length is read */
  assert_int_equal(wn_num_parse("12,", 2, &n), 0);
  assert_int_equal(n.v.i, 12);

  wn_num_t a = {.kind = WN_NUM_INT, .v.i = 3}, b = {.kind = WN_NUM_DBL, .v.d = 2.5},
           c = {.kind = WN_NUM_INT, .v.i = INT64_MAX}, d = {.kind = WN_NUM_INT, .v.i = INT64_MAX - 1},
           none = {0};
  assert_true(wn_num_cmp(&a, &b) > 0);
  assert_true(wn_num_cmp(&b, &a) < 0);
  assert_true(wn_num_cmp(&c, &d) > 0);
  assert_true(wn_num_cmp(&none, &a) < 0);
  wn_num_add(&a, &b);
  assert_int_equal(a.kind, WN_NUM_DBL);
  assert_true(a.v.d == 5.5);
  wn_num_t s = {0};
  wn_num_add(&s, &c);
  assert_int_equal(s.kind, WN_NUM_INT);
  wn_num_add(&s, &c);
  assert_int_equal(s.kind, WN_NUM_DBL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scalar_aggregates),
      cmocka_unit_test(items_aggregates),
      cmocka_unit_test(topn_order),
      cmocka_unit_test(merge_equals_single_pane),
      cmocka_unit_test(number_parsing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
