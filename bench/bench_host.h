/*
 * bench_host.h - a minimal host function table for the hand-written
 * baselines of the benchmarks, which call plugin callbacks directly (no
 * engine). A stage is an operator instance: its config is a key/value list,
 * then the operator's declared defaults. Each benchmark supplies emit (what
 * the baseline does with a record) and the budget:
 *
 *   static const sl_host_api_t host = BENCH_HOST_API(my_emit, my_budget);
 *
 * One table for every baseline, so that a host call a plugin starts making
 * (the generator asks for its checkpoint state since SDK 1.2) is answered
 * everywhere at once.
 */
#ifndef SL_BENCH_HOST_H
#define SL_BENCH_HOST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "registry.h"
#include "sluice.h"
#include "util.h"

typedef struct bench_stage {
  sl_ctx_head_t head; /* first: the SDK finds the function table here */
  const sl_operator_t *op;
  const char *const *config; /* key, value, key, value, ..., NULL */
} bench_stage_t;

static const char *bench_config(sl_ctx_t *ctx, const char *key) {
  const bench_stage_t *s = (const bench_stage_t *)(const void *)ctx;
  for (const char *const *c = s->config; c && *c; c += 2)
    if (strcmp(c[0], key) == 0) return c[1];
  for (size_t i = 0; i < s->op->config_count; i++)
    if (strcmp(s->op->config[i].name, key) == 0) return s->op->config[i].default_value;
  return NULL;
}
static int bench_port(sl_ctx_t *ctx, const char *name) { return name && *name ? 1 : 0; }
static void bench_logv(sl_ctx_t *ctx, sl_log_level_t l, const char *fmt, va_list ap) {}
static void bench_set_error(sl_ctx_t *ctx, const char *fmt, va_list ap) {}
static sl_counter_t bench_counter_storage[64];
static int bench_counter_next;
static sl_counter_t *bench_counter(sl_ctx_t *ctx, const char *name) {
  return &bench_counter_storage[bench_counter_next++ % 64];
}
static const char *bench_config_string(sl_ctx_t *ctx, const char *key) { return bench_config(ctx, key); }
static int64_t bench_config_int(sl_ctx_t *ctx, const char *key) {
  const char *v = bench_config(ctx, key);
  return v ? strtoll(v, NULL, 10) : 0;
}
static double bench_config_double(sl_ctx_t *ctx, const char *key) {
  const char *v = bench_config(ctx, key);
  return v ? strtod(v, NULL) : 0;
}
static int bench_config_bool(sl_ctx_t *ctx, const char *key) {
  const char *v = bench_config(ctx, key);
  return v && strcmp(v, "true") == 0;
}
static int64_t bench_config_duration(sl_ctx_t *ctx, const char *key) { return bench_config_int(ctx, key); }
static const char *bench_node_name(sl_ctx_t *ctx) { return "baseline"; }
static uint32_t bench_task_index(sl_ctx_t *ctx) { return 0; }
static uint32_t bench_parallelism(sl_ctx_t *ctx) { return 1; }
static int bench_stopping(sl_ctx_t *ctx) { return 0; }
static int64_t bench_now_ms(sl_ctx_t *ctx) { return sl_wall_ms(); }
static void bench_failv(sl_ctx_t *ctx, const char *fmt, va_list ap) {
  vfprintf(stderr, fmt, ap);
  exit(1);
}
/* A fresh start: no checkpoint, no operator state. */
static uint64_t bench_checkpoint_restored(sl_ctx_t *ctx) { return 0; }
static int bench_op_state_get(sl_ctx_t *ctx, const char *name, sl_bytes_t *out) {
  return SL_ENOTFOUND;
}

#define BENCH_HOST_API(emit_fn, budget_fn)                                                       \
  {                                                                                            \
    .abi_major = SL_ABI_MAJOR, .abi_minor = SL_ABI_MINOR, .struct_size = sizeof(sl_host_api_t), \
    .emit = emit_fn, .port = bench_port, .budget = budget_fn, .logv = bench_logv,              \
    .set_error = bench_set_error, .counter = bench_counter,                                    \
    .config_string = bench_config_string, .config_int = bench_config_int,                      \
    .config_double = bench_config_double, .config_bool = bench_config_bool,                    \
    .config_duration_ms = bench_config_duration, .node_name = bench_node_name,                 \
    .task_index = bench_task_index, .parallelism = bench_parallelism,                          \
    .stopping = bench_stopping, .now_ms = bench_now_ms, .json_get = sl_json_scan_get,          \
    .strerror = sl_error_text, .failv = bench_failv, .op_state_get = bench_op_state_get,       \
    .checkpoint_restored = bench_checkpoint_restored,                                          \
  }

#endif
