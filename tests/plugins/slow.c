/*
 * Backpressure test plugin: a source and a deliberately slow sink in one
 * shared object, sharing two counters, so the sink can measure how far the
 * source ever ran ahead of it (records produced but not yet consumed).
 * With bounded channels that lead stays below a bound set by the channel
 * capacity and batch size; without backpressure it would grow to `count`.
 * The sink writes "consumed=N max_lead=M" to the file named by `report`.
 *
 * The sink can also stall (`stall_ms` every `stall_every` records), long
 * enough for the host to tell the source to hold back (SDK 1.8
 * backpressure): the source fails the job if it is told the same thing
 * twice in a row or polled while held back.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sluice.h"

static _Atomic long long g_produced;
static _Atomic long long g_consumed;

typedef struct src_state {
  long long next, count;
  int held; /* told backpressure(1), not yet (0) */
  char buf[64];
} src_state_t;

static int src_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  src_state_t *s = calloc(1, sizeof(*s));
  if (!s) return SL_ENOMEM;
  s->count = sl_config_int(ctx, "count");
  *state = s;
  return 0;
}

static int src_poll(sl_ctx_t *ctx, void *state) {
  src_state_t *s = state;
  if (s->held) {
    sl_fail(ctx, "fast_source: polled while held back");
    return SL_ESTATE;
  }
  uint32_t budget = sl_budget(ctx);
  for (uint32_t i = 0; i < budget; i++) {
    if (s->next >= s->count) return SL_DONE;
    int n = snprintf(s->buf, sizeof(s->buf), "{\"n\":%lld}", s->next);
    sl_record_t r = {.value = s->buf, .value_len = (size_t)n, .offset = s->next};
    atomic_fetch_add(&g_produced, 1);
    sl_emit(ctx, &r);
    s->next++;
  }
  return SL_OK;
}

static int src_backpressure(sl_ctx_t *ctx, void *state, int blocked) {
  src_state_t *s = state;
  if (s->held == blocked) {
    sl_fail(ctx, "fast_source: told backpressure(%d) twice in a row", blocked);
    return SL_ESTATE;
  }
  s->held = blocked;
  return 0;
}

static void free_state(void *state) { free(state); }

static const sl_config_key_t src_config[] = {{"count", SL_CONFIG_INT, "10000", "records"}};
static const sl_operator_t src_op = {
    SL_OPERATOR_INIT, .name = "fast_source", .kind = SL_KIND_SOURCE,
    .description = "emits count records as fast as it is allowed", .config = src_config,
    .config_count = 1, .open = src_open, .poll = src_poll, .close = free_state,
    .backpressure = src_backpressure};

typedef struct sink_state {
  long long delay_us, max_lead, next_expected, stall_every, stall_ms, seen;
  int out_of_order;
  const char *report;
  const char *progress;
} sink_state_t;

static int sink_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  sink_state_t *s = calloc(1, sizeof(*s));
  if (!s) return SL_ENOMEM;
  s->delay_us = sl_config_int(ctx, "delay_us");
  s->report = sl_config_string(ctx, "report");
  s->progress = sl_config_string(ctx, "progress");
  s->stall_every = sl_config_int(ctx, "stall_every");
  s->stall_ms = sl_config_int(ctx, "stall_ms");
  *state = s;
  return 0;
}

static int sink_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  sink_state_t *s = state;
  long long consumed = atomic_fetch_add(&g_consumed, 1) + 1;
  long long lead = atomic_load(&g_produced) - consumed;
  if (lead > s->max_lead) s->max_lead = lead;
  if (rec->offset != s->next_expected) s->out_of_order = 1;
  s->next_expected = rec->offset + 1;
  /* Deliberately slow (a test, so sleeping on the worker is the point). */
  struct timespec ts = {0, (long)s->delay_us * 1000};
  if (*s->progress && consumed % 1000 == 0) { /* for a test that waits for a count */
    FILE *f = fopen(s->progress, "w");
    if (f) {
      fprintf(f, "%lld\n", consumed);
      fclose(f);
    }
  }
  if (s->stall_every > 0 && ++s->seen % s->stall_every == 0)
    ts = (struct timespec){s->stall_ms / 1000, (long)(s->stall_ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  return 0;
}

static int sink_end(sl_ctx_t *ctx, void *state) {
  sink_state_t *s = state;
  FILE *f = fopen(s->report, "w");
  if (!f) return SL_EIO;
  fprintf(f, "consumed=%lld max_lead=%lld in_order=%d\n", atomic_load(&g_consumed), s->max_lead,
          !s->out_of_order);
  fclose(f);
  return 0;
}

static const sl_config_key_t sink_config[] = {
    {"delay_us", SL_CONFIG_INT, "20", "microseconds to sleep per record"},
    {"report", SL_CONFIG_STRING, NULL, "file to write the figures to"},
    {"stall_every", SL_CONFIG_INT, "0", "stall after every N records (0: never)"},
    {"stall_ms", SL_CONFIG_INT, "300", "how long a stall lasts"},
    {"progress", SL_CONFIG_STRING, "", "file rewritten with the count every 1000 records"}};
static const sl_operator_t sink_op = {
    SL_OPERATOR_INIT, .name = "slow_sink", .kind = SL_KIND_SINK,
    .description = "sleeps per record and reports the source's maximum lead",
    .config = sink_config, .config_count = 5, .open = sink_open, .process = sink_process,
    .on_end = sink_end, .close = free_state};

SL_PLUGIN_DEFINE("slow", "1.0.0", "backpressure test plugin", &src_op, &sink_op);
