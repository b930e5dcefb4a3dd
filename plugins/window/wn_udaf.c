/*
 * wn_udaf.c - see wn_udaf.h.
 */
#include "wn_udaf.h"

#include <stdlib.h>
#include <string.h>

wn_udaf_t *wn_udaf_new(const char *name, const sl_aggregate_t *desc, sl_ctx_t *ctx) {
  wn_udaf_t *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  u->name = strdup(name);
  if (!u->name) {
    free(u);
    return NULL;
  }
  u->desc = desc;
  u->ctx = ctx;
  return u;
}

void wn_udaf_free(wn_udaf_t *u) {
  if (!u) return;
  if (u->opened && u->desc->close) u->desc->close(u->inst);
  free(u->json);
  free(u->name);
  free(u);
}

const char *wn_udaf_name(const wn_udaf_t *u) { return u->name; }

int wn_udaf_failed(const wn_aggs_t *a) {
  for (size_t i = 0; i < a->nudafs; i++)
    if (a->udafs[i]->failed) return 1;
  return 0;
}

/* The record's arguments, as the SDK hands them over. */
static const sl_agg_arg_t *args_of(const wn_agg_t *a, const wn_val_t *vals) {
  sl_agg_arg_t *out = a->udaf->args;
  for (uint32_t i = 0; i < a->nargs; i++) {
    const wn_val_t *v = &vals[a->args[i]];
    out[i].type = v->type == WN_VAL_NUMBER ? SL_JSON_NUMBER
                  : v->type == WN_VAL_BOOL ? SL_JSON_BOOL
                                           : SL_JSON_STRING;
    out[i].text = v->s;
    out[i].len = v->len;
    out[i].num = v->type == WN_VAL_NUMBER ? wn_num_to_double(&v->num) : 0.0;
  }
  return out;
}

static int fails(wn_udaf_t *u, int rc) {
  if (rc < 0) u->failed = 1;
  return rc;
}

/* ------------------------------------------------------------ fixed */

static size_t fixed_size(const wn_agg_t *a) { return a->udaf->desc->acc_size; }
static void fixed_init(const wn_agg_t *a, void *acc) {
  wn_udaf_t *u = a->udaf;
  sl_acc_t x = {acc, u->desc->acc_size};
  memset(acc, 0, x.len);
  fails(u, u->desc->create(u->ctx, u->inst, &x));
}
static int fixed_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) {
  wn_udaf_t *u = a->udaf;
  sl_acc_t x = {acc, u->desc->acc_size};
  int rc = u->desc->add(u->ctx, u->inst, &x, args_of(a, vals), a->nargs);
  return rc < 0 ? rc : rc != 0;
}
static void fixed_merge(const wn_agg_t *a, void *dst, const void *src) {
  wn_udaf_t *u = a->udaf;
  sl_acc_t x = {dst, u->desc->acc_size};
  fails(u, u->desc->merge(u->ctx, u->inst, &x, src, u->desc->acc_size));
}

/* Append the function's JSON result for acc[0..len) to out. */
static void put_result(wn_udaf_t *u, const void *acc, size_t len, wn_buf_t *out) {
  if (!u->json) {
    u->json = malloc(256);
    if (!u->json) {
      out->oom = 1;
      return;
    }
    u->json_cap = 256;
  }
  for (int tries = 0; tries < 2; tries++) {
    long n = u->desc->result(u->ctx, u->inst, acc, len, u->json, u->json_cap);
    if (n < 0) {
      u->failed = 1;
      wn_buf_puts(out, "null");
      return;
    }
    if ((size_t)n < u->json_cap) {
      if (n == 0) wn_buf_puts(out, "null"); /* no text is not JSON */
      else wn_buf_put(out, u->json, (size_t)n);
      return;
    }
    size_t cap = (size_t)n + 1;
    char *j = realloc(u->json, cap);
    if (!j) {
      out->oom = 1;
      return;
    }
    u->json = j;
    u->json_cap = cap;
  }
  sl_fail(u->ctx, "aggregate function '%s': result asked for more room twice", u->name);
  u->failed = 1;
  wn_buf_puts(out, "null");
}

static void fixed_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  put_result(a->udaf, acc, a->udaf->desc->acc_size, out);
}

const wn_agg_ops_t wn_udaf_fixed_ops = {"user-defined", WN_STORE_FIXED, fixed_size, fixed_init,
                                        fixed_add, fixed_merge, NULL, 0, fixed_result};

/* ------------------------------------------------------------ variable */

int wn_udaf_var_create(const wn_agg_t *a, sl_acc_t *out) {
  wn_udaf_t *u = a->udaf;
  out->ptr = NULL;
  out->len = 0;
  return fails(u, u->desc->create(u->ctx, u->inst, out));
}

int wn_udaf_var_add(const wn_agg_t *a, const void *cur, size_t len, const wn_val_t *vals,
                    sl_acc_t *out) {
  wn_udaf_t *u = a->udaf;
  if (!cur) {
    int rc = wn_udaf_var_create(a, out);
    if (rc < 0) return rc;
  } else {
    out->ptr = (void *)cur;
    out->len = len;
  }
  int rc = u->desc->add(u->ctx, u->inst, out, args_of(a, vals), a->nargs);
  return rc < 0 ? rc : (rc != 0 || !cur);
}

int wn_udaf_var_merge(const wn_agg_t *a, const void *dst, size_t dst_len, const void *src,
                      size_t src_len, sl_acc_t *out) {
  wn_udaf_t *u = a->udaf;
  out->ptr = (void *)dst;
  out->len = dst_len;
  return fails(u, u->desc->merge(u->ctx, u->inst, out, src, src_len));
}

static size_t var_size(const wn_agg_t *a) { return 0; }
static void var_init(const wn_agg_t *a, void *acc) {}
static int var_add(const wn_agg_t *a, void *acc, const wn_val_t *vals) { return 0; }
static void var_merge(const wn_agg_t *a, void *dst, const void *src) {}
static void var_key(const wn_agg_t *a, const wn_val_t *vals, const void **key, size_t *len) {
  *key = "";
  *len = 0;
}

/* items: the merged accumulator as the entry "" (its length as a uint64,
 * then its bytes), or no entry (a window without records for it: a new
 * accumulator's result). */
static void var_result(const wn_agg_t *a, const void *acc, const wn_tab_t *items, wn_buf_t *out) {
  const unsigned char *v = items ? wn_tab_find(items, "", 0) : NULL;
  if (v) {
    uint64_t len;
    memcpy(&len, v, sizeof len);
    put_result(a->udaf, v + sizeof len, (size_t)len, out);
    return;
  }
  sl_acc_t x;
  if (wn_udaf_var_create(a, &x) < 0) {
    wn_buf_puts(out, "null");
    return;
  }
  put_result(a->udaf, x.ptr, x.len, out);
}

const wn_agg_ops_t wn_udaf_var_ops = {"user-defined", WN_STORE_VAR, var_size, var_init, var_add,
                                      var_merge, var_key, 0, var_result};
