/*
 * watermark.c - timestamps and watermarks at a source (see watermark.h).
 */
#include "watermark.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "event_time.h"
#include "json_scan.h"
#include "util.h"

sl_wm_gen_t *sl_wm_gen_new(const sl_event_time_t *cfg, int64_t now_ms) {
  sl_wm_gen_t *g = sl_xcalloc(1, sizeof(*g));
  g->cfg = cfg;
  g->started_ms = now_ms;
  g->poll_ms = now_ms;
  return g;
}

void sl_wm_gen_free(sl_wm_gen_t *g) {
  if (!g) return;
  free(g->parts);
  free(g);
}

void sl_wm_gen_set_partition(sl_wm_gen_t *g, uint32_t p) { g->current = p; }

/* As if never used: last_seen_ms < 0 leaves it out of the minimum. */
void sl_wm_gen_release(sl_wm_gen_t *g, uint32_t p) {
  if (p >= g->count) return;
  g->parts[p] = (sl_wm_partition_t){.max_ts = SL_TS_MIN, .last_seen_ms = -1};
}

/* The current partition, known from its first record on (a partition that
 * never brings a record never holds the watermark back). */
static sl_wm_partition_t *current_partition(sl_wm_gen_t *g) {
  uint32_t p = g->current;
  if (p >= g->count) {
    g->parts = sl_xrealloc(g->parts, ((size_t)p + 1) * sizeof(sl_wm_partition_t));
    for (uint32_t i = g->count; i <= p; i++)
      g->parts[i] = (sl_wm_partition_t){.max_ts = SL_TS_MIN, .last_seen_ms = -1};
    g->count = p + 1;
  }
  return &g->parts[p];
}

int sl_wm_gen_stamp(sl_wm_gen_t *g, const sl_record_t *rec, int64_t *ts, char *why,
                    size_t whylen) {
  int64_t t;
  switch (g->cfg->origin) {
  case SL_TS_ORIGIN_FIELD: {
    sl_json_value_t v;
    int rc = sl_json_scan_get(rec->value, rec->value_len, g->cfg->field, &v);
    if (rc == SL_ENOTFOUND) {
      snprintf(why, whylen, "event_time: the record has no field '%s'", g->cfg->field);
      return -1;
    }
    if (rc != 0) {
      snprintf(why, whylen, "event_time: the value is not a JSON object (looking for field '%s')",
               g->cfg->field);
      return -1;
    }
    char reason[160];
    if (sl_ts_parse(&v, g->cfg->format, &t, reason, sizeof(reason)) != 0) {
      snprintf(why, whylen, "event_time: field '%s': %s", g->cfg->field, reason);
      return -1;
    }
    break;
  }
  case SL_TS_ORIGIN_INGESTION:
    t = g->poll_ms;
    break;
  default:
    t = rec->ts;
    break;
  }
  sl_wm_partition_t *p = current_partition(g);
  if (t > p->max_ts) p->max_ts = t;
  p->seen_since_check = true;
  *ts = t;
  return 0;
}

int64_t sl_wm_gen_watermark(sl_wm_gen_t *g, int64_t now_ms, bool *idle) {
  const int64_t idle_ms = g->cfg->idle_timeout_ms;
  const int64_t ooo = g->cfg->max_out_of_order_ms;
  const int64_t lag = ooo < INT64_MAX ? ooo + 1 : INT64_MAX;
  int64_t wm = SL_TS_MAX;
  uint32_t active = 0;
  for (uint32_t i = 0; i < g->count; i++) {
    sl_wm_partition_t *p = &g->parts[i];
    if (p->seen_since_check) {
      p->last_seen_ms = now_ms;
      p->seen_since_check = false;
    }
    if (p->last_seen_ms < 0) continue; /* a gap in the numbering: never used */
    if (idle_ms > 0 && now_ms - p->last_seen_ms >= idle_ms) continue; /* idle */
    active++;
    /* max_ts - max_out_of_order - 1, saturating at SL_TS_MIN. */
    int64_t pw = p->max_ts < SL_TS_MIN + lag ? SL_TS_MIN : p->max_ts - lag;
    if (pw < wm) wm = pw;
  }
  g->poll_ms = now_ms;
  if (active) {
    *idle = false;
    return wm;
  }
  /* No active partition: idle once idle_timeout has passed since the last
   * record (or the start); until then (or without a timeout) simply nothing
   * is known yet, which holds the job back as it should. */
  int64_t last = g->started_ms;
  for (uint32_t i = 0; i < g->count; i++)
    if (g->parts[i].last_seen_ms > last) last = g->parts[i].last_seen_ms;
  *idle = idle_ms > 0 && now_ms - last >= idle_ms;
  return SL_TS_MIN;
}
