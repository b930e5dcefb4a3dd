/*
 * Test plugin "aggs": user-defined aggregate functions in C (SDK 1.4), for
 * tests/e2e/window_udaf.sh. Each computes something a built-in aggregate
 * also computes, so the test can compare them on the same windows.
 *  - isum(x):   fixed accumulator, the sum of integers (like sum(x))
 *  - spread(x): fixed, max(x) - min(x) (like max(x) - min(x))
 *  - vcount(x...): variable accumulator (acc_size 0), a count (like count)
 *  - picky(x):  fixed, a count that refuses records whose x is negative
 *               (sl_set_error): the record fails under on_error
 *  - bad_merge(x): fixed, a count whose merge fails the job (sl_fail)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

/* ------------------------------------------------------------ isum */

static int isum_create(sl_ctx_t *ctx, void *inst, sl_acc_t *acc) {
  memset(acc->ptr, 0, acc->len);
  return 0;
}
static int isum_add(sl_ctx_t *ctx, void *inst, sl_acc_t *acc, const sl_agg_arg_t *a, size_t n) {
  if (a[0].type != SL_JSON_NUMBER) {
    sl_set_error(ctx, "isum: not a number");
    return SL_ERECORD;
  }
  *(int64_t *)acc->ptr += (int64_t)a[0].num;
  return 1;
}
static int isum_merge(sl_ctx_t *ctx, void *inst, sl_acc_t *dst, const void *src, size_t len) {
  *(int64_t *)dst->ptr += *(const int64_t *)src;
  return 0;
}
static long isum_result(sl_ctx_t *ctx, void *inst, const void *acc, size_t len, char *json,
                        size_t cap) {
  return snprintf(json, cap, "%" PRId64, *(const int64_t *)acc);
}
static const sl_aggregate_t isum = {SL_AGGREGATE_INIT, .name = "isum",
                                    .description = "sum of integers (fixed accumulator)",
                                    .min_args = 1, .max_args = 1, .acc_size = sizeof(int64_t),
                                    .create = isum_create, .add = isum_add, .merge = isum_merge,
                                    .result = isum_result};

/* ------------------------------------------------------------ spread */

typedef struct spread_acc {
  double lo, hi;
  int64_t any;
} spread_acc_t;

static int spread_create(sl_ctx_t *ctx, void *inst, sl_acc_t *acc) {
  memset(acc->ptr, 0, sizeof(spread_acc_t));
  return 0;
}
static void take(spread_acc_t *s, double lo, double hi) {
  if (!s->any || lo < s->lo) s->lo = lo;
  if (!s->any || hi > s->hi) s->hi = hi;
  s->any = 1;
}
static int spread_add(sl_ctx_t *ctx, void *inst, sl_acc_t *acc, const sl_agg_arg_t *a, size_t n) {
  take(acc->ptr, a[0].num, a[0].num);
  return 1;
}
static int spread_merge(sl_ctx_t *ctx, void *inst, sl_acc_t *dst, const void *src, size_t len) {
  spread_acc_t s;
  memcpy(&s, src, sizeof s);
  if (s.any) take(dst->ptr, s.lo, s.hi);
  return 0;
}
static long spread_result(sl_ctx_t *ctx, void *inst, const void *acc, size_t len, char *json,
                          size_t cap) {
  const spread_acc_t *s = acc;
  return snprintf(json, cap, "%.2f", s->any ? s->hi - s->lo : 0.0);
}
static const sl_aggregate_t spread = {SL_AGGREGATE_INIT, .name = "spread",
                                      .description = "max - min (fixed accumulator)",
                                      .min_args = 1, .max_args = 1,
                                      .acc_size = sizeof(spread_acc_t), .create = spread_create,
                                      .add = spread_add, .merge = spread_merge,
                                      .result = spread_result};

/* ------------------------------------------------------------ vcount */

/* A variable accumulator: the instance owns the bytes it hands back. */
typedef struct vcount_inst {
  int64_t out;
} vcount_inst_t;

static int vcount_open(sl_ctx_t *ctx, const char *arg, void **inst, char *err, size_t len) {
  *inst = calloc(1, sizeof(vcount_inst_t));
  return *inst ? 0 : SL_ENOMEM;
}
static void vcount_close(void *inst) { free(inst); }
static int64_t get(const void *p, size_t len) {
  int64_t v = 0;
  if (len == sizeof v) memcpy(&v, p, sizeof v);
  return v;
}
static int vcount_create(sl_ctx_t *ctx, void *inst, sl_acc_t *acc) {
  vcount_inst_t *v = inst;
  v->out = 0;
  acc->ptr = &v->out;
  acc->len = sizeof v->out;
  return 0;
}
static int vcount_add(sl_ctx_t *ctx, void *inst, sl_acc_t *acc, const sl_agg_arg_t *a, size_t n) {
  vcount_inst_t *v = inst;
  v->out = get(acc->ptr, acc->len) + 1;
  acc->ptr = &v->out;
  acc->len = sizeof v->out;
  return 1;
}
static int vcount_merge(sl_ctx_t *ctx, void *inst, sl_acc_t *dst, const void *src, size_t len) {
  vcount_inst_t *v = inst;
  v->out = get(dst->ptr, dst->len) + get(src, len);
  dst->ptr = &v->out;
  dst->len = sizeof v->out;
  return 0;
}
static long vcount_result(sl_ctx_t *ctx, void *inst, const void *acc, size_t len, char *json,
                          size_t cap) {
  return snprintf(json, cap, "%" PRId64, get(acc, len));
}
static const sl_aggregate_t vcount = {SL_AGGREGATE_INIT, .name = "vcount",
                                      .description = "a count (variable accumulator)",
                                      .min_args = 0, .max_args = 3, .acc_size = 0,
                                      .open = vcount_open, .close = vcount_close,
                                      .create = vcount_create, .add = vcount_add,
                                      .merge = vcount_merge, .result = vcount_result};

/* ------------------------------------------------------------ picky, bad_merge */

static int picky_add(sl_ctx_t *ctx, void *inst, sl_acc_t *acc, const sl_agg_arg_t *a, size_t n) {
  if (a[0].type == SL_JSON_NUMBER && a[0].num < 0) {
    sl_set_error(ctx, "picky: %.*s is negative", (int)a[0].len, a[0].text);
    return SL_ERECORD;
  }
  (*(int64_t *)acc->ptr)++;
  return 1;
}
static const sl_aggregate_t picky = {SL_AGGREGATE_INIT, .name = "picky",
                                     .description = "a count that refuses negative numbers",
                                     .min_args = 1, .max_args = 1, .acc_size = sizeof(int64_t),
                                     .create = isum_create, .add = picky_add,
                                     .merge = isum_merge, .result = isum_result};

static int bad_merge_merge(sl_ctx_t *ctx, void *inst, sl_acc_t *dst, const void *src, size_t len) {
  sl_fail(ctx, "bad_merge: merge always fails");
  return SL_EPLUGIN;
}
static const sl_aggregate_t bad_merge = {SL_AGGREGATE_INIT, .name = "bad_merge",
                                         .description = "a count whose merge fails",
                                         .min_args = 1, .max_args = 1,
                                         .acc_size = sizeof(int64_t), .create = isum_create,
                                         .add = picky_add, .merge = bad_merge_merge,
                                         .result = isum_result};

static const sl_aggregate_t *const aggs[] = {&isum, &spread, &vcount, &picky, &bad_merge};
SL_PLUGIN_DEFINE_FULL("aggs", "1.0.0", "test aggregate functions", NULL, 0, aggs, 5);
