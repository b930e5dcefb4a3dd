/*
 * timers.c - test plugin "timers": operators built on event time and timers
 * (SDK 1.3), used by tests/e2e/event_time.sh.
 *
 *  - bucket_count (keyed): counts records per key and per `bucket` of event
 *    time (value state per bucket end, in a map), with one event-time timer
 *    per key and bucket at the bucket's last millisecond. When it fires it
 *    emits "k=<key> end=<bucket end> n=<count>" and forgets the bucket. It
 *    checks what the runtime promises and fails the job otherwise: a timer
 *    never fires before the watermark reached it, the current key in
 *    on_timer is the timer's, timers of a key fire in timestamp order, and
 *    the watermark never goes back. With `delete_every` N, every N-th record
 *    of a key deletes its bucket's timer and sets it again (the pair must
 *    change nothing). With `proc_after` > 0, a key's first record also sets
 *    a processing-time timer that far in the future; when it fires it emits
 *    "proc k=<key> n=<records of the key so far>".
 *  - Counters: "watermarks" (on_watermark calls), "late" (records whose
 *    bucket the watermark had already passed: their timer fires at the next
 *    watermark).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

typedef struct bc {
  sl_state_t *buckets; /* map: bucket end (8 bytes) -> count (8 bytes) */
  sl_state_t *total;   /* value: records of the key */
  sl_state_t *last_fired; /* value: end of the last bucket fired for the key */
  int64_t bucket;
  int64_t proc_after;
  int64_t delete_every;
  int64_t last_wm;
  sl_counter_t *watermarks, *late;
  char buf[512];
} bc_t;

static int bc_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  bc_t *o = calloc(1, sizeof(*o));
  if (!o) return SL_ENOMEM;
  o->buckets = sl_state_declare(ctx, "buckets", SL_STATE_MAP, 0);
  o->total = sl_state_declare(ctx, "total", SL_STATE_VALUE, 0);
  o->last_fired = sl_state_declare(ctx, "last_fired", SL_STATE_VALUE, 0);
  if (!o->buckets || !o->total || !o->last_fired) {
    snprintf(errbuf, errlen, "cannot declare keyed state (see the log)");
    free(o);
    return SL_ESTATE;
  }
  o->bucket = sl_config_duration_ms(ctx, "bucket");
  o->proc_after = sl_config_duration_ms(ctx, "proc_after");
  o->delete_every = sl_config_int(ctx, "delete_every");
  o->last_wm = SL_TS_MIN;
  o->watermarks = sl_counter(ctx, "watermarks");
  o->late = sl_counter(ctx, "late");
  if (o->bucket <= 0) {
    snprintf(errbuf, errlen, "bucket must be > 0");
    free(o);
    return SL_ECONFIG;
  }
  *state = o;
  return 0;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

static uint64_t get_u64(sl_ctx_t *ctx, sl_state_t *st) {
  sl_bytes_t v;
  uint64_t n = 0;
  if (sl_state_get(ctx, st, &v) == 0 && v.len == sizeof(n)) memcpy(&n, v.ptr, sizeof(n));
  return n;
}

static int bc_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  bc_t *o = state;
  int64_t end = floor_div(rec->ts, o->bucket) * o->bucket + o->bucket - 1;
  if (end <= sl_watermark(ctx)) sl_counter_add(o->late, 1);
  sl_bytes_t v;
  uint64_t n = 0;
  int rc = sl_state_map_get(ctx, o->buckets, &end, sizeof(end), &v);
  if (rc == 0 && v.len == sizeof(n)) memcpy(&n, v.ptr, sizeof(n));
  n++;
  if ((rc = sl_state_map_put(ctx, o->buckets, &end, sizeof(end), &n, sizeof(n))) != 0) return rc;
  uint64_t total = get_u64(ctx, o->total) + 1;
  if ((rc = sl_state_put(ctx, o->total, &total, sizeof(total))) != 0) return rc;
  if ((rc = sl_timer_set(ctx, SL_TIME_EVENT, end)) != 0) {
    sl_set_error(ctx, "sl_timer_set: %s", sl_strerror(ctx, rc));
    return rc;
  }
  if (o->delete_every > 0 && total % (uint64_t)o->delete_every == 0) {
    if ((rc = sl_timer_delete(ctx, SL_TIME_EVENT, end)) != 0) {
      sl_set_error(ctx, "sl_timer_delete of a timer just set: %s", sl_strerror(ctx, rc));
      return SL_EPLUGIN;
    }
    if (sl_timer_delete(ctx, SL_TIME_EVENT, end) != SL_ENOTFOUND) {
      sl_set_error(ctx, "a second sl_timer_delete did not say SL_ENOTFOUND");
      return SL_EPLUGIN;
    }
    if ((rc = sl_timer_set(ctx, SL_TIME_EVENT, end)) != 0) return rc;
  }
  if (o->proc_after > 0 && total == 1 &&
      (rc = sl_timer_set(ctx, SL_TIME_PROCESSING, sl_now_ms(ctx) + o->proc_after)) != 0)
    return rc;
  return 0;
}

static int emit_line(sl_ctx_t *ctx, bc_t *o, sl_bytes_t key, int64_t ts, int len) {
  sl_record_t r = {.key = key.ptr, .key_len = key.len, .value = o->buf, .value_len = (size_t)len,
                   .ts = ts, .offset = SL_OFFSET_NONE};
  return sl_emit(ctx, &r);
}

static int bc_on_timer(sl_ctx_t *ctx, void *state, sl_time_domain_t domain, int64_t ts) {
  bc_t *o = state;
  sl_bytes_t key;
  if (sl_current_key(ctx, &key) != 0) {
    sl_fail(ctx, "on_timer without a current key");
    return SL_EPLUGIN;
  }
  if (domain == SL_TIME_PROCESSING) {
    if (sl_now_ms(ctx) < ts) {
      sl_fail(ctx, "processing-time timer %" PRId64 " fired early", ts);
      return SL_EPLUGIN;
    }
    int len = snprintf(o->buf, sizeof(o->buf), "proc k=%.*s n=%" PRIu64, (int)key.len,
                       (const char *)key.ptr, get_u64(ctx, o->total));
    return emit_line(ctx, o, key, ts, len);
  }
  if (sl_watermark(ctx) < ts) {
    sl_fail(ctx, "event-time timer %" PRId64 " fired at watermark %" PRId64, ts, sl_watermark(ctx));
    return SL_EPLUGIN;
  }
  sl_bytes_t v;
  uint64_t n = 0;
  if (sl_state_map_get(ctx, o->buckets, &ts, sizeof(ts), &v) != 0 || v.len != sizeof(n)) {
    sl_fail(ctx, "timer %" PRId64 " of key %.*s has no bucket: not this key's timer?", ts,
            (int)key.len, (const char *)key.ptr);
    return SL_EPLUGIN;
  }
  memcpy(&n, v.ptr, sizeof(n));
  sl_state_map_remove(ctx, o->buckets, &ts, sizeof(ts));
  /* Timers of one key fire in timestamp order (a late record's timer, set
   * behind the watermark, fires at the next one: out of that order). */
  int64_t last = SL_TS_MIN;
  if (sl_state_get(ctx, o->last_fired, &v) == 0 && v.len == sizeof(last)) memcpy(&last, v.ptr, sizeof(last));
  if (ts <= last && o->late->value == 0) {
    sl_fail(ctx, "key %.*s: timer %" PRId64 " fired after timer %" PRId64, (int)key.len,
            (const char *)key.ptr, ts, last);
    return SL_EPLUGIN;
  }
  sl_state_put(ctx, o->last_fired, &ts, sizeof(ts));
  int len = snprintf(o->buf, sizeof(o->buf), "k=%.*s end=%" PRId64 " n=%" PRIu64, (int)key.len,
                     (const char *)key.ptr, ts, n);
  return emit_line(ctx, o, key, ts, len);
}

static int bc_on_watermark(sl_ctx_t *ctx, void *state, int64_t wm) {
  bc_t *o = state;
  if (wm < o->last_wm) {
    sl_fail(ctx, "watermark went back from %" PRId64 " to %" PRId64, o->last_wm, wm);
    return SL_EPLUGIN;
  }
  if (sl_watermark(ctx) != wm) {
    sl_fail(ctx, "on_watermark(%" PRId64 ") but sl_watermark() = %" PRId64, wm, sl_watermark(ctx));
    return SL_EPLUGIN;
  }
  o->last_wm = wm;
  sl_counter_add(o->watermarks, 1);
  return 0;
}

static void bc_close(void *state) { free(state); }

static const sl_config_key_t bc_config[] = {
    {"bucket", SL_CONFIG_DURATION, "1s", "width of a bucket of event time"},
    {"proc_after", SL_CONFIG_DURATION, "0", "processing-time timer after a key's first record; 0 = none"},
    {"delete_every", SL_CONFIG_INT, "0", "every N-th record of a key deletes and re-sets its timer"},
};

static const sl_operator_t bucket_count = {
    SL_OPERATOR_INIT,
    .name = "bucket_count",
    .version = "1.0.0",
    .description = "counts per key and event-time bucket, emitted by timers",
    .kind = SL_KIND_TRANSFORM,
    .config = bc_config,
    .config_count = sizeof(bc_config) / sizeof(bc_config[0]),
    .open = bc_open,
    .process = bc_process,
    .close = bc_close,
    .on_timer = bc_on_timer,
    .on_watermark = bc_on_watermark,
};

SL_PLUGIN_DEFINE("timers", "1.0.0", "event time and timer probes for tests", &bucket_count);
