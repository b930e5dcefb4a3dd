/*
 * wn_agg.c - the aggregate vtables (see wn_agg.h).
 */
#include "wn_agg.h"

#include <stdlib.h>
#include <string.h>

#include "wn_hll.h"
#include "wn_udaf.h"

#define ACC(T, p) ((T *)(void *)(p))

static size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ------------------------------------------------------------ count */

static size_t count_size(const wn_agg_t *a) { return sizeof(int64_t); }
static void count_init(const wn_agg_t *a, void *acc) { *ACC(int64_t, acc) = 0; }
static int count_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  (*ACC(int64_t, acc))++;
  return 1;
}
static void count_merge(const wn_agg_t *a, void *dst, const void *src) {
  *ACC(int64_t, dst) += *ACC(const int64_t, src);
}
static void count_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  wn_json_i64(out, *ACC(const int64_t, acc));
}

/* ------------------------------------------------------------ sum */

static size_t num_size(const wn_agg_t *a) { return sizeof(wn_num_t); }
static void num_init(const wn_agg_t *a, void *acc) { memset(acc, 0, sizeof(wn_num_t)); }
static int sum_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  wn_num_add(ACC(wn_num_t, acc), &vals[a->field].num);
  return 1;
}
static void sum_merge(const wn_agg_t *a, void *dst, const void *src) {
  wn_num_add(ACC(wn_num_t, dst), ACC(const wn_num_t, src));
}
static void sum_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  const wn_num_t *n = ACC(const wn_num_t, acc);
  if (n->kind == WN_NUM_NONE) wn_buf_putc(out, '0');
  else wn_json_num(out, n);
}

/* ------------------------------------------------------------ min, max */

/* Keep the first value on ties, so the result does not depend on how a
 * value was written (1 vs 1.0 print the same anyway). */
static int minmax_take(wn_num_t *acc, const wn_num_t *v, int want) {
  if (v->kind == WN_NUM_NONE) return 0;
  if (acc->kind == WN_NUM_NONE || wn_num_cmp(v, acc) * want > 0) {
    *acc = *v;
    return 1;
  }
  return 0;
}
static int min_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  return minmax_take(ACC(wn_num_t, acc), &vals[a->field].num, -1);
}
static void min_merge(const wn_agg_t *a, void *dst, const void *src) {
  minmax_take(ACC(wn_num_t, dst), ACC(const wn_num_t, src), -1);
}
static int max_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  return minmax_take(ACC(wn_num_t, acc), &vals[a->field].num, 1);
}
static void max_merge(const wn_agg_t *a, void *dst, const void *src) {
  minmax_take(ACC(wn_num_t, dst), ACC(const wn_num_t, src), 1);
}
static void num_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  wn_json_num(out, ACC(const wn_num_t, acc));
}

/* ------------------------------------------------------------ avg */

typedef struct avg_acc {
  wn_num_t sum;
  int64_t count;
} avg_acc_t;

static size_t avg_size(const wn_agg_t *a) { return sizeof(avg_acc_t); }
static void avg_init(const wn_agg_t *a, void *acc) { memset(acc, 0, sizeof(avg_acc_t)); }
static int avg_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  avg_acc_t *x = ACC(avg_acc_t, acc);
  wn_num_add(&x->sum, &vals[a->field].num);
  x->count++;
  return 1;
}
static void avg_merge(const wn_agg_t *a, void *dst, const void *src) {
  avg_acc_t *d = ACC(avg_acc_t, dst);
  const avg_acc_t *s = ACC(const avg_acc_t, src);
  wn_num_add(&d->sum, &s->sum);
  d->count += s->count;
}
static void avg_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  const avg_acc_t *x = ACC(const avg_acc_t, acc);
  if (!x->count) {
    wn_buf_put(out, "null", 4);
    return;
  }
  wn_json_double(out, wn_num_to_double(&x->sum) / (double)x->count);
}

/* ------------------------------------------------------------ items: the value */

static void value_key(const wn_agg_t *a, const wn_val_t *vals, const void **key, size_t *len) {
  *key = vals[a->field].s;
  *len = vals[a->field].len;
}

/* ------------------------------------------------------------ distinct */

static size_t zero_size(const wn_agg_t *a) { return 0; }
static void nop_init(const wn_agg_t *a, void *acc) {}
static int nop_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) { return 0; }
static void nop_merge(const wn_agg_t *a, void *dst, const void *src) {}
static void distinct_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items,
                            wn_buf_t *out) {
  wn_json_i64(out, items ? (int64_t)wn_tab_count(items) : 0);
}

/* ------------------------------------------------------------ approx_distinct */

static size_t hll_size(const wn_agg_t *a) { return WN_HLL_M; }
static void hll_init(const wn_agg_t *a, void *acc) { memset(acc, 0, WN_HLL_M); }
static int hll_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  const wn_val_t *v = &vals[a->field];
  return wn_hll_add(acc, wn_hash64(v->s, v->len, WN_HLL_SEED));
}
static void hll_merge(const wn_agg_t *a, void *dst, const void *src) { wn_hll_merge(dst, src); }
static void hll_key(const wn_agg_t *a, const wn_val_t *vals, const void **key, size_t *len) {
  *key = "";
  *len = 0;
}
static void hll_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  const void *regs = items ? wn_tab_find(items, "", 0) : NULL;
  wn_json_i64(out, regs ? (int64_t)wn_hll_estimate(regs) : 0);
}

/* ------------------------------------------------------------ top_n */

/* payload: int64 count for top_n(f, n), wn_num_t sum of g for top_n(f, n, g) */
static size_t top_size(const wn_agg_t *a) {
  return a->weight == WN_FIELD_NONE ? sizeof(int64_t) : sizeof(wn_num_t);
}
static void top_init(const wn_agg_t *a, void *acc) { memset(acc, 0, top_size(a)); }
static int top_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  if (a->weight == WN_FIELD_NONE) (*ACC(int64_t, acc))++;
  else wn_num_add(ACC(wn_num_t, acc), &vals[a->weight].num);
  return 1;
}
static void top_merge(const wn_agg_t *a, void *dst, const void *src) {
  if (a->weight == WN_FIELD_NONE) *ACC(int64_t, dst) += *ACC(const int64_t, src);
  else wn_num_add(ACC(wn_num_t, dst), ACC(const wn_num_t, src));
}

typedef struct top_ent {
  const unsigned char *k;
  size_t len;
  wn_num_t v;
} top_ent_t;

/* by value descending, then key ascending (bytewise, a prefix first) */
static int top_cmp(const void *x, const void *y) {
  const top_ent_t *a = x, *b = y;
  int c = wn_num_cmp(&b->v, &a->v);
  if (c) return c;
  size_t n = a->len < b->len ? a->len : b->len;
  int m = n ? memcmp(a->k, b->k, n) : 0;
  if (m) return m;
  return (a->len > b->len) - (a->len < b->len);
}

static void top_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  size_t n = items ? wn_tab_count(items) : 0;
  top_ent_t *e = n ? malloc(n * sizeof *e) : NULL;
  if (n && !e) {
    out->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const void *k;
    void *v;
    wn_tab_at(items, i, &k, &e[i].len, &v);
    e[i].k = k;
    if (a->weight == WN_FIELD_NONE) {
      memset(&e[i].v, 0, sizeof e[i].v);
      e[i].v.kind = WN_NUM_INT;
      e[i].v.v.i = *ACC(int64_t, v);
    } else {
      e[i].v = *ACC(wn_num_t, v);
    }
  }
  if (n > 1) qsort(e, n, sizeof *e, top_cmp);
  wn_buf_putc(out, '[');
  for (size_t i = 0; i < n && i < a->n; i++) {
    if (i) wn_buf_putc(out, ',');
    wn_buf_puts(out, "{\"value\":");
    wn_json_str(out, e[i].k, e[i].len);
    wn_buf_puts(out, a->weight == WN_FIELD_NONE ? ",\"count\":" : ",\"sum\":");
    wn_json_num(out, &e[i].v);
    wn_buf_putc(out, '}');
  }
  wn_buf_putc(out, ']');
  free(e);
}

/* ------------------------------------------------------------ the table */

static const wn_agg_ops_t k_ops[] = {
    {"count", WN_STORE_FIXED, count_size, count_init, count_add, count_merge, NULL, 0, count_result},
    {"sum", WN_STORE_FIXED, num_size, num_init, sum_add, sum_merge, NULL, 0, sum_result},
    {"min", WN_STORE_FIXED, num_size, num_init, min_add, min_merge, NULL, 0, num_result},
    {"max", WN_STORE_FIXED, num_size, num_init, max_add, max_merge, NULL, 0, num_result},
    {"avg", WN_STORE_FIXED, avg_size, avg_init, avg_add, avg_merge, NULL, 0, avg_result},
    {"distinct", WN_STORE_ITEMS, zero_size, nop_init, nop_add, nop_merge, value_key, 1,
     distinct_result},
    {"approx_distinct", WN_STORE_ITEMS, hll_size, hll_init, hll_add, hll_merge, hll_key, 0,
     hll_result},
    {"top_n", WN_STORE_ITEMS, top_size, top_init, top_add, top_merge, value_key, 0, top_result},
};

const wn_agg_ops_t *wn_agg_ops_find(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof k_ops / sizeof k_ops[0]; i++)
    if (strlen(k_ops[i].fn) == len && memcmp(k_ops[i].fn, name, len) == 0) return &k_ops[i];
  return NULL;
}

void wn_aggs_free(wn_aggs_t *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n; i++) free(a->v[i].name);
  for (size_t i = 0; i < a->nfields; i++) free(a->fields[i].name);
  for (size_t i = 0; i < a->nudafs; i++) wn_udaf_free(a->udafs[i]);
  free(a->udafs);
  free(a->v);
  free(a->fields);
  memset(a, 0, sizeof *a);
}

void wn_aggs_finish(wn_aggs_t *a) {
  size_t off = 0;
  uint32_t h = 2166136261u; /* FNV-1a over (fn, size, storage) of each aggregate */
  a->items = 0;
  a->fallible = 0;
  for (size_t i = 0; i < a->n; i++) {
    wn_agg_t *g = &a->v[i];
    g->index = (uint32_t)i;
    size_t sz = g->ops->size(g);
    if (g->ops->storage == WN_STORE_FIXED) {
      g->acc_off = off;
      off += round8(sz);
    } else {
      a->items++;
    }
    if (g->fn == WN_FN_UDAF) a->fallible = 1;
    uint32_t parts[3] = {(uint32_t)g->fn, (uint32_t)sz, (uint32_t)g->ops->storage};
    const unsigned char *p = (const unsigned char *)parts;
    for (size_t k = 0; k < sizeof parts; k++) h = (h ^ p[k]) * 16777619u;
    /* a user-defined one: its name too (another function of the same size
     * must not read this one's accumulators) */
    const char *un = g->fn == WN_FN_UDAF ? wn_udaf_name(g->udaf) : "";
    for (; *un; un++) h = (h ^ (unsigned char)*un) * 16777619u;
  }
  a->acc_size = off;
  a->layout = h;
}

void wn_aggs_init(const wn_aggs_t *a, void *area) {
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i].ops->storage == WN_STORE_FIXED)
      a->v[i].ops->init(&a->v[i], (unsigned char *)area + a->v[i].acc_off);
}

void wn_aggs_merge(const wn_aggs_t *a, void *dst, const void *src) {
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i].ops->storage == WN_STORE_FIXED)
      a->v[i].ops->merge(&a->v[i], (unsigned char *)dst + a->v[i].acc_off,
                         (const unsigned char *)src + a->v[i].acc_off);
}
