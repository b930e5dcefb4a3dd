/*
 * stateful.c - test plugin "stateful": operators built on keyed state, used
 * by the checkpoint and recovery tests.
 *  - running_count: value state; emits "<key>,<n>" where n counts the key's
 *    records so far (a running count: its output depends on every earlier
 *    record, so a lost or replayed record shows).
 *  - last_n: list state; keeps the last `n` values per key and emits
 *    "<key>:<v1>|<v2>|..." oldest first.
 *  - distinct: map state; emits "<key>,<distinct values so far>" for each
 *    record (map keys are the values seen).
 * Each takes an optional `ttl` (duration) for its state; running_count also
 * `value_bytes`, the size of the value it stores (padding after the count),
 * so that benchmarks can build state of a chosen size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

typedef struct op {
  sl_state_t *st;
  int64_t n;
  size_t value_bytes;
  char buf[4096];
  unsigned char value[4096];
} op_t;

static int open_kind(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen, const char *name,
                     sl_state_kind_t kind) {
  op_t *o = calloc(1, sizeof(*o));
  if (!o) {
    snprintf(errbuf, errlen, "out of memory");
    return SL_ENOMEM;
  }
  o->st = sl_state_declare(ctx, name, kind, sl_config_duration_ms(ctx, "ttl"));
  if (!o->st) {
    snprintf(errbuf, errlen, "cannot declare keyed state '%s' (see the log)", name);
    free(o);
    return SL_ESTATE;
  }
  o->n = sl_config_int(ctx, "n");
  int64_t vb = sl_config_int(ctx, "value_bytes");
  o->value_bytes = vb < 8 ? 8 : vb > 4096 ? 4096 : (size_t)vb;
  *state = o;
  return 0;
}

static int emit_text(sl_ctx_t *ctx, const sl_record_t *in, const char *text, size_t len) {
  sl_record_t r = {.key = in->key, .key_len = in->key_len, .value = text, .value_len = len,
                   .ts = in->ts, .offset = in->offset};
  return sl_emit(ctx, &r);
}

/* ------------------------------------------------------ running_count */

static int rc_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  return open_kind(ctx, state, errbuf, errlen, "count", SL_STATE_VALUE);
}

static int rc_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  op_t *o = state;
  sl_bytes_t v;
  uint64_t n = 0;
  int rc = sl_state_get(ctx, o->st, &v);
  if (rc == 0 && v.len >= sizeof(n)) memcpy(&n, v.ptr, sizeof(n));
  else if (rc != SL_ENOTFOUND && rc != 0) return rc;
  n++;
  memcpy(o->value, &n, sizeof(n));
  if ((rc = sl_state_put(ctx, o->st, o->value, o->value_bytes)) != 0) return rc;
  int len = snprintf(o->buf, sizeof(o->buf), "%.*s,%llu", (int)rec->key_len,
                     (const char *)rec->key, (unsigned long long)n);
  return emit_text(ctx, rec, o->buf, (size_t)len);
}

/* ------------------------------------------------------------ last_n */

static int ln_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  return open_kind(ctx, state, errbuf, errlen, "last", SL_STATE_LIST);
}

static int ln_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  op_t *o = state;
  int rc = sl_state_list_append(ctx, o->st, rec->value, rec->value_len);
  if (rc) return rc;
  size_t count = 0;
  if ((rc = sl_state_list_count(ctx, o->st, &count)) != 0) return rc;
  if (o->n > 0 && count > (size_t)o->n) {
    if ((rc = sl_state_list_trim_front(ctx, o->st, count - (size_t)o->n)) != 0) return rc;
    count = (size_t)o->n;
  }
  size_t len = (size_t)snprintf(o->buf, sizeof(o->buf), "%.*s:", (int)rec->key_len,
                                (const char *)rec->key);
  for (size_t i = 0; i < count; i++) {
    sl_bytes_t v;
    if ((rc = sl_state_list_get(ctx, o->st, i, &v)) != 0) return rc;
    if (len + v.len + 2 >= sizeof(o->buf)) break;
    if (i) o->buf[len++] = '|';
    memcpy(o->buf + len, v.ptr, v.len);
    len += v.len;
  }
  return emit_text(ctx, rec, o->buf, len);
}

/* ----------------------------------------------------------- distinct */

static int ds_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  return open_kind(ctx, state, errbuf, errlen, "seen", SL_STATE_MAP);
}

static int ds_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  op_t *o = state;
  int rc = sl_state_map_put(ctx, o->st, rec->value, rec->value_len, "", 0);
  if (rc) return rc;
  size_t cursor = 0, n = 0;
  sl_bytes_t k, v;
  while ((rc = sl_state_map_next(ctx, o->st, &cursor, &k, &v)) == 0) n++;
  if (rc != SL_DONE) return rc;
  int len = snprintf(o->buf, sizeof(o->buf), "%.*s,%zu", (int)rec->key_len,
                     (const char *)rec->key, n);
  return emit_text(ctx, rec, o->buf, (size_t)len);
}

static const sl_config_key_t cfg[] = {
    {"ttl", SL_CONFIG_DURATION, "0", "time to live of the state (0 = forever)"},
    {"n", SL_CONFIG_INT, "3", "last_n: values kept per key"},
    {"value_bytes", SL_CONFIG_INT, "8", "running_count: bytes stored per key (8..4096)"},
};

#define STATEFUL_OP(id, nm, desc, op, pr)                                                   \
  static const sl_operator_t id = {SL_OPERATOR_INIT, .name = nm, .version = "1.0.0",        \
                                   .description = desc, .kind = SL_KIND_TRANSFORM,          \
                                   .config = cfg, .config_count = 3, .open = op,            \
                                   .process = pr, .close = free}

STATEFUL_OP(running_count_op, "running_count", "per-key running count (value state)", rc_open,
            rc_process);
STATEFUL_OP(last_n_op, "last_n", "last n values per key (list state)", ln_open, ln_process);
STATEFUL_OP(distinct_op, "distinct", "distinct values per key (map state)", ds_open, ds_process);

SL_PLUGIN_DEFINE("stateful", "1.0.0", "keyed-state test operators", &running_count_op, &last_n_op,
                 &distinct_op);
