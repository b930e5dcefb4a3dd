/*
 * window.c - built-in plugin "window": tumbling, sliding and session
 * windows over keyed input, with aggregates, allowed lateness, a `late`
 * output and early (processing-time) results. Built on the public SDK only
 * (keyed state, timers, the watermark); docs/time-and-windows.md is the
 * user's description.
 *
 * State, per key (everything is keyed state: the host checkpoints it and
 * moves it with its key group; the plugin keeps nothing per key on its own):
 *  - value state "window": a header and the key's panes, one byte string.
 *      header: magic, layout fingerprint (window kind + aggregate layout),
 *              pane count, next pane id, fired_wm, armed event-time timer,
 *              armed processing-time (early) timer.
 *      pane:   start, end, id, flags (dirty = changed since its last early
 *              result), then the FIXED accumulators of the aggregates.
 *    A pane is a window (tumbling, session) or a slice of gcd(size, slide)
 *    (sliding: a window's result merges its slices). Panes are sorted by
 *    start.
 *  - map state "window_items" (only when an aggregate needs it: distinct,
 *    approx_distinct, top_n): key = pane id (4 bytes, big-endian), the
 *    aggregate's index (1 byte), the item (a value's bytes; empty for the
 *    HyperLogLog registers); value = the item's payload (nothing, a count,
 *    a sum, the 4 KiB of registers).
 *
 * fired_wm is the watermark up to which the key's on-time results are
 * done: a window with end - 1 <= fired_wm has had its on-time result (or
 * had no record then), so a record that still reaches it re-fires it at
 * once as "late". A window is expired, its panes dropped, once
 * end - 1 + allowed_lateness < watermark; a record all of whose windows are
 * expired goes to the `late` port.
 *
 * Timers: one event-time timer per key, at the earliest pending action of
 * its panes (the next on-time firing at end - 1, or the expiry at
 * end + lateness), moved when that changes; one processing-time timer per
 * key while early firing is on and some unfired window changed.
 *
 * Cost per record (tumbling count, memory backend): one sl_watermark, one
 * state get (copied into a scratch buffer), one state put; a timer call
 * only when the key's next action time changes (a new window). No
 * allocation and no JSON per record. Items aggregates add one map put
 * (distinct) or one map get and at most one put (top_n, approx_distinct).
 * The value state is copied whole, so its cost grows with the live panes
 * of a key (size / gcd(size, slide) slices, more with lateness).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "wn_agg.h"
#include "wn_assign.h"
#include "wn_config.h"
#include "wn_json.h"
#include "wn_out.h"
#include "wn_parse.h"
#include "wn_tab.h"
#include "wn_udaf.h"

#define WN_MAGIC 0x314E4957u /* "WIN1" */
#define WN_NO_TIMER INT64_MIN
#define PANE_DIRTY 1u
#define ITEM_PREFIX 5 /* pane id (4) + aggregate index (1) */

typedef __int128 i128;

typedef struct hdr {
  uint32_t magic;
  uint32_t layout;
  uint32_t npanes;
  uint32_t next_id;
  int64_t fired_wm;
  int64_t timer_ts; /* armed event-time timer, or WN_NO_TIMER */
  int64_t early_ts; /* armed processing-time timer, or WN_NO_TIMER */
} hdr_t;

typedef struct pane {
  int64_t start;
  int64_t end;
  uint32_t id;
  uint32_t flags;
  /* FIXED accumulators follow (aggs.acc_size bytes) */
} pane_t;

typedef struct win {
  wn_win_t w;
  wn_aggs_t aggs;
  uint32_t layout;
  sl_state_t *st;       /* value: header + panes */
  sl_state_t *st_items; /* map: items (NULL when no aggregate has items) */
  int late_port;
  sl_counter_t *late_records;
  size_t stride; /* sizeof(pane_t) + acc_size */

  /* the current record's fields */
  wn_val_t *vals;
  char *dec;
  size_t dec_cap;

  /* the current key's state, copied out of the host */
  unsigned char *buf;
  size_t buf_cap;
  const void *key;
  size_t key_len;

  /* scratch for results and state rewrites */
  unsigned char *acc;   /* merged FIXED accumulators */
  wn_tab_t *tabs;       /* per aggregate: merged items */
  wn_tab_t **tabp;
  wn_buf_t out;         /* the JSON of a result */
  wn_buf_t ik;          /* an item key */
  wn_buf_t pay;         /* an item payload */
  wn_buf_t coll;        /* map entries collected during an iteration */
  uint64_t *src;        /* an item payload copied out of the host (8-aligned) */
  uint32_t *ids;        /* sorted ids of a window's panes */
  size_t ids_cap;
  wn_buf_t *vacc;       /* per aggregate (WN_STORE_VAR): a new or merged accumulator */
  int *vset;            /* per aggregate: vacc holds one (and, in add_record, it changed) */
  int restructured;     /* panes added, removed, moved or fired in this callback */
} win_t;

/* ------------------------------------------------------------ state buffer */

static hdr_t *H(win_t *w) { return (hdr_t *)(void *)w->buf; }
static pane_t *P(win_t *w, size_t i) {
  return (pane_t *)(void *)(w->buf + sizeof(hdr_t) + i * w->stride);
}
static unsigned char *ACC(pane_t *p) { return (unsigned char *)p + sizeof(pane_t); }
static size_t state_len(win_t *w) { return sizeof(hdr_t) + (size_t)H(w)->npanes * w->stride; }

static int reserve_panes(win_t *w, size_t npanes) {
  size_t need = sizeof(hdr_t) + npanes * w->stride;
  if (need <= w->buf_cap) return 0;
  size_t cap = w->buf_cap ? w->buf_cap : 256;
  while (cap < need) cap *= 2;
  unsigned char *b = realloc(w->buf, cap);
  if (!b) return SL_ENOMEM;
  w->buf = b;
  w->buf_cap = cap;
  return 0;
}

static int state_failed(sl_ctx_t *ctx, const char *what, int rc) {
  sl_fail(ctx, "window: %s failed: %s", what, sl_strerror(ctx, rc));
  return rc < 0 ? rc : SL_ESTATE;
}

/* Load the current key's state into w->buf. *fresh = 1 when the key had
 * none (a new header is set up with fired_wm = wm). */
static int load(win_t *w, sl_ctx_t *ctx, int64_t wm, int *fresh) {
  sl_bytes_t v;
  int rc = sl_state_get(ctx, w->st, &v);
  *fresh = 0;
  if (rc == SL_ENOTFOUND) {
    if ((rc = reserve_panes(w, 0)) != 0) return state_failed(ctx, "allocation", rc);
    hdr_t *h = H(w);
    memset(h, 0, sizeof *h);
    h->magic = WN_MAGIC;
    h->layout = w->layout;
    h->next_id = 1;
    h->fired_wm = wm;
    h->timer_ts = WN_NO_TIMER;
    h->early_ts = WN_NO_TIMER;
    *fresh = 1;
    return 0;
  }
  if (rc != 0) return state_failed(ctx, "reading keyed state 'window'", rc);
  hdr_t h;
  if (v.len < sizeof h) goto bad;
  memcpy(&h, v.ptr, sizeof h);
  if (h.magic != WN_MAGIC || h.layout != w->layout ||
      v.len != sizeof h + (size_t)h.npanes * w->stride)
    goto bad;
  if ((rc = reserve_panes(w, h.npanes)) != 0) return state_failed(ctx, "allocation", rc);
  memcpy(w->buf, v.ptr, v.len);
  return 0;
bad:
  sl_fail(ctx,
          "window: the keyed state 'window' of key '%.*s' does not match this configuration "
          "(the window type or the aggregate list changed since it was saved?); start the job "
          "without that state (sluice run --fresh)",
          (int)(w->key_len > 64 ? 64 : w->key_len), (const char *)w->key);
  return SL_ESTATE;
}

static int save(win_t *w, sl_ctx_t *ctx) {
  hdr_t *h = H(w);
  int rc;
  if (h->npanes == 0) {
    if (h->timer_ts != WN_NO_TIMER) sl_timer_delete(ctx, SL_TIME_EVENT, h->timer_ts);
    if (h->early_ts != WN_NO_TIMER) sl_timer_delete(ctx, SL_TIME_PROCESSING, h->early_ts);
    h->timer_ts = h->early_ts = WN_NO_TIMER; /* the scratch copy may go on being used */
    if ((rc = sl_state_clear(ctx, w->st)) != 0) return state_failed(ctx, "clearing keyed state", rc);
    return 0;
  }
  if ((rc = sl_state_put(ctx, w->st, w->buf, state_len(w))) != 0)
    return state_failed(ctx, "writing keyed state 'window'", rc);
  return 0;
}

/* first pane with start >= t */
static size_t lower_bound(win_t *w, int64_t t) {
  size_t lo = 0, hi = H(w)->npanes;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (P(w, mid)->start < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static uint32_t new_id(win_t *w) {
  hdr_t *h = H(w);
  for (;;) {
    uint32_t id = h->next_id++;
    if (h->next_id == 0) h->next_id = 1;
    if (id == 0) continue;
    int used = 0;
    for (size_t i = 0; i < h->npanes && !used; i++) used = P(w, i)->id == id;
    if (!used) return id;
  }
}

/* Insert a new, empty pane at index i. */
static pane_t *insert_pane(win_t *w, sl_ctx_t *ctx, size_t i, int64_t start, int64_t end) {
  hdr_t *h = H(w);
  if (h->npanes == UINT32_MAX || reserve_panes(w, (size_t)h->npanes + 1) != 0) {
    sl_fail(ctx, "window: out of memory");
    return NULL;
  }
  h = H(w);
  memmove(P(w, i + 1), P(w, i), (h->npanes - i) * w->stride);
  h->npanes++;
  w->restructured = 1;
  pane_t *p = P(w, i);
  p->start = start;
  p->end = end;
  p->id = 0; /* new_id scans every pane, this one too: 0 is never an id */
  p->id = new_id(w);
  p->flags = 0;
  wn_aggs_init(&w->aggs, ACC(p));
  return p;
}

static void remove_panes(win_t *w, size_t i, size_t n) {
  hdr_t *h = H(w);
  memmove(P(w, i), P(w, i + n), (h->npanes - i - n) * w->stride);
  h->npanes -= (uint32_t)n;
  w->restructured = 1;
}

/* ------------------------------------------------------------ items */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}
static uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int has_id(const uint32_t *ids, size_t n, uint32_t id) {
  return n && bsearch(&id, ids, n, sizeof id, cmp_u32) != NULL;
}

/* Put the ids of panes [a, b) in w->ids, sorted. */
static int collect_ids(win_t *w, size_t a, size_t b) {
  size_t n = b - a;
  if (n > w->ids_cap) {
    uint32_t *v = realloc(w->ids, n * sizeof *v);
    if (!v) return SL_ENOMEM;
    w->ids = v;
    w->ids_cap = n;
  }
  for (size_t i = 0; i < n; i++) w->ids[i] = P(w, a + i)->id;
  if (n > 1) qsort(w->ids, n, sizeof *w->ids, cmp_u32);
  return 0;
}

/* Build an item key in w->ik. */
static int item_key(win_t *w, uint32_t id, uint32_t agg, const void *k, size_t len) {
  w->ik.len = 0;
  if (wn_buf_reserve(&w->ik, ITEM_PREFIX + len) != 0) return SL_ENOMEM;
  put_be32((unsigned char *)w->ik.p, id);
  w->ik.p[4] = (char)agg;
  if (len) memcpy(w->ik.p + ITEM_PREFIX, k, len);
  w->ik.len = ITEM_PREFIX + len;
  return 0;
}

static int pay_reserve(win_t *w, size_t n) {
  w->pay.len = 0;
  return wn_buf_reserve(&w->pay, n ? n : 1) != 0 ? SL_ENOMEM : 0;
}

/* Copy an accumulator a user-defined function returned into w->vacc[g]
 * (its bytes last only until its next call). */
static int keep_acc(win_t *w, size_t g, const sl_acc_t *x) {
  wn_buf_t *b = &w->vacc[g];
  if (x->ptr == b->p) { /* dst handed back as it was: nothing to copy */
    if (x->len > b->len) return SL_EINVAL;
    b->len = x->len;
    return 0;
  }
  b->len = 0;
  b->oom = 0;
  wn_buf_put(b, x->ptr, x->len);
  return b->oom ? SL_ENOMEM : 0;
}

/* Collect the map entries whose pane id is in ids[0..n) into w->coll:
 * records of u32 key length, u32 value length, key, value. */
static int collect_items(win_t *w, sl_ctx_t *ctx, const uint32_t *ids, size_t n, size_t *count) {
  size_t cursor = 0;
  sl_bytes_t k, v;
  int rc;
  w->coll.len = 0;
  *count = 0;
  while ((rc = sl_state_map_next(ctx, w->st_items, &cursor, &k, &v)) == 0) {
    if (k.len < ITEM_PREFIX || !has_id(ids, n, get_be32(k.ptr))) continue;
    uint32_t lens[2] = {(uint32_t)k.len, (uint32_t)v.len};
    wn_buf_put(&w->coll, lens, sizeof lens);
    wn_buf_put(&w->coll, k.ptr, k.len);
    wn_buf_put(&w->coll, v.ptr, v.len);
    (*count)++;
  }
  if (rc != SL_DONE) return state_failed(ctx, "iterating keyed state 'window_items'", rc);
  if (w->coll.oom) return state_failed(ctx, "collecting items", SL_ENOMEM);
  return 0;
}

/* Remove the items of the panes whose ids are in ids[0..n). */
static int remove_items(win_t *w, sl_ctx_t *ctx, const uint32_t *ids, size_t n) {
  size_t count;
  int rc = collect_items(w, ctx, ids, n, &count);
  if (rc) return rc;
  size_t off = 0;
  for (size_t i = 0; i < count; i++) {
    uint32_t lens[2];
    memcpy(lens, w->coll.p + off, sizeof lens);
    off += sizeof lens;
    rc = sl_state_map_remove(ctx, w->st_items, w->coll.p + off, lens[0]);
    if (rc != 0 && rc != SL_ENOTFOUND) return state_failed(ctx, "removing items", rc);
    off += lens[0] + lens[1];
  }
  return 0;
}

/* A variable accumulator (aggregate agg) of a pane merged into pane `to`. */
static int rekey_var(win_t *w, sl_ctx_t *ctx, uint32_t agg, uint32_t to, const void *val,
                     size_t len) {
  int rc = item_key(w, to, agg, "", 0);
  if (rc) return state_failed(ctx, "allocation", rc);
  sl_bytes_t old;
  rc = sl_state_map_get(ctx, w->st_items, w->ik.p, w->ik.len, &old);
  sl_acc_t x = {(void *)val, len};
  if (rc == 0) {
    if (wn_udaf_var_merge(&w->aggs.v[agg], old.ptr, old.len, val, len, &x) < 0) return SL_EPLUGIN;
  } else if (rc != SL_ENOTFOUND) {
    return state_failed(ctx, "reading items", rc);
  }
  if ((rc = sl_state_map_put(ctx, w->st_items, w->ik.p, w->ik.len, x.ptr, x.len)) != 0)
    return state_failed(ctx, "writing items", rc);
  return 0;
}

/* Move the items of panes ids[0..n) to pane `to`, merging payloads. */
static int rekey_items(win_t *w, sl_ctx_t *ctx, const uint32_t *ids, size_t n, uint32_t to) {
  size_t count;
  int rc = collect_items(w, ctx, ids, n, &count);
  if (rc) return rc;
  size_t off = 0;
  for (size_t i = 0; i < count; i++) {
    uint32_t lens[2];
    memcpy(lens, w->coll.p + off, sizeof lens);
    off += sizeof lens;
    const unsigned char *key = (const unsigned char *)w->coll.p + off;
    const unsigned char *val = key + lens[0];
    off += lens[0] + lens[1];
    uint32_t agg = key[4];
    if (agg < w->aggs.n && w->aggs.v[agg].ops->storage == WN_STORE_VAR) {
      if ((rc = rekey_var(w, ctx, agg, to, val, lens[1])) != 0) return rc;
      rc = sl_state_map_remove(ctx, w->st_items, key, lens[0]);
      if (rc != 0 && rc != SL_ENOTFOUND) return state_failed(ctx, "removing items", rc);
      continue;
    }
    if (agg >= w->aggs.n || w->aggs.v[agg].ops->storage != WN_STORE_ITEMS) continue;
    const wn_agg_t *g = &w->aggs.v[agg];
    size_t sz = g->ops->size(g);
    if (item_key(w, to, agg, key + ITEM_PREFIX, lens[0] - ITEM_PREFIX) != 0 ||
        pay_reserve(w, sz) != 0)
      return state_failed(ctx, "allocation", SL_ENOMEM);
    sl_bytes_t old;
    rc = sl_state_map_get(ctx, w->st_items, w->ik.p, w->ik.len, &old);
    if (rc == 0 && old.len == sz) memcpy(w->pay.p, old.ptr, sz);
    else if (rc == 0 || rc == SL_ENOTFOUND) g->ops->init(g, w->pay.p);
    else return state_failed(ctx, "reading items", rc);
    if (lens[1] == sz) {
      if (sz) memcpy(w->src, val, sz);
      g->ops->merge(g, w->pay.p, w->src);
    }
    if ((rc = sl_state_map_put(ctx, w->st_items, w->ik.p, w->ik.len, w->pay.p, sz)) != 0)
      return state_failed(ctx, "writing items", rc);
    rc = sl_state_map_remove(ctx, w->st_items, key, lens[0]);
    if (rc != 0 && rc != SL_ENOTFOUND) return state_failed(ctx, "removing items", rc);
  }
  return 0;
}

/* ------------------------------------------------------------ results */

/* Emit the result of window [ws, we): the merge of the panes inside it. */
static int emit_window(win_t *w, sl_ctx_t *ctx, int64_t ws, int64_t we, const char *timing) {
  size_t a = lower_bound(w, ws), b = a;
  while (b < H(w)->npanes && P(w, b)->start < we) b++;
  if (a == b) return 0; /* no record: no result */
  wn_aggs_init(&w->aggs, w->acc);
  for (size_t i = a; i < b; i++) wn_aggs_merge(&w->aggs, w->acc, ACC(P(w, i)));
  if (w->aggs.items) {
    int rc = collect_ids(w, a, b);
    if (rc) return state_failed(ctx, "allocation", rc);
    for (size_t g = 0; g < w->aggs.n; g++) {
      if (w->aggs.v[g].ops->storage == WN_STORE_ITEMS)
        wn_tab_reset(&w->tabs[g], w->aggs.v[g].ops->size(&w->aggs.v[g]));
      w->vset[g] = 0;
    }
    size_t cursor = 0;
    sl_bytes_t k, v;
    while ((rc = sl_state_map_next(ctx, w->st_items, &cursor, &k, &v)) == 0) {
      const unsigned char *kp = k.ptr;
      if (k.len < ITEM_PREFIX || !has_id(w->ids, b - a, get_be32(kp))) continue;
      uint32_t gi = kp[4];
      if (gi < w->aggs.n && w->aggs.v[gi].ops->storage == WN_STORE_VAR) {
        sl_acc_t x = {(void *)v.ptr, v.len};
        if (w->vset[gi] && wn_udaf_var_merge(&w->aggs.v[gi], w->vacc[gi].p, w->vacc[gi].len,
                                             v.ptr, v.len, &x) < 0)
          return SL_EPLUGIN;
        if (keep_acc(w, gi, &x) != 0) return state_failed(ctx, "merging items", SL_ENOMEM);
        w->vset[gi] = 1;
        continue;
      }
      if (gi >= w->aggs.n || w->aggs.v[gi].ops->storage != WN_STORE_ITEMS) continue;
      const wn_agg_t *g = &w->aggs.v[gi];
      int created;
      void *dst = wn_tab_upsert(&w->tabs[gi], kp + ITEM_PREFIX, k.len - ITEM_PREFIX, &created);
      if (!dst) return state_failed(ctx, "merging items", SL_ENOMEM);
      if (created) g->ops->init(g, dst);
      size_t sz = g->ops->size(g);
      if (v.len == sz) {
        if (sz) memcpy(w->src, v.ptr, sz); /* host bytes are not aligned */
        g->ops->merge(g, dst, w->src);
      }
    }
    if (rc != SL_DONE) return state_failed(ctx, "iterating keyed state 'window_items'", rc);
    for (size_t g = 0; g < w->aggs.n; g++) {
      if (w->aggs.v[g].ops->storage != WN_STORE_VAR) continue;
      /* the merged accumulator is the table's one entry: its length (a
       * uint64), then its bytes (wn_udaf_var_ops) */
      uint64_t len = w->vset[g] ? w->vacc[g].len : 0;
      wn_tab_reset(&w->tabs[g], sizeof len + len);
      int created;
      unsigned char *dst = w->vset[g] ? wn_tab_upsert(&w->tabs[g], "", 0, &created) : NULL;
      if (w->vset[g] && !dst) return state_failed(ctx, "merging items", SL_ENOMEM);
      if (dst) {
        memcpy(dst, &len, sizeof len);
        if (len) memcpy(dst + sizeof len, w->vacc[g].p, len);
      }
    }
  }
  if (wn_out_window(&w->out, &w->aggs, w->key, w->key_len, ws, we, timing, w->acc, w->tabp) != 0)
    return state_failed(ctx, "building a result", SL_ENOMEM);
  if (w->aggs.nudafs && wn_udaf_failed(&w->aggs)) return SL_EPLUGIN; /* it called sl_fail */
  sl_record_t r = {.key = w->key, .key_len = w->key_len, .value = w->out.p,
                   .value_len = w->out.len, .ts = we - 1, .offset = SL_OFFSET_NONE};
  return sl_emit(ctx, &r);
}

/* Sliding: the aligned window start at or before / at or after t. */
static i128 floor_start(const wn_win_t *x, i128 t) {
  return wn_fdiv(t - x->offset, x->slide) * x->slide + x->offset;
}
static i128 ceil_start(const wn_win_t *x, i128 t) { return floor_start(x, t - 1) + x->slide; }

/*
 * Sliding: emit, in order, every window with start in [lo, hi] that holds
 * a pane (a pane with PANE_DIRTY when only_dirty).
 */
static int sliding_each(win_t *w, sl_ctx_t *ctx, i128 lo, i128 hi, int only_dirty,
                        const char *timing) {
  const wn_win_t *x = &w->w;
  i128 ws = ceil_start(x, lo);
  while (ws <= hi) {
    size_t j = ws < INT64_MIN ? 0 : lower_bound(w, (int64_t)ws);
    while (j < H(w)->npanes && only_dirty && !(P(w, j)->flags & PANE_DIRTY)) j++;
    if (j >= H(w)->npanes) break;
    int64_t ps = P(w, j)->start;
    if (ps < ws + x->size) {
      int rc = emit_window(w, ctx, (int64_t)ws, wn_sat_add((int64_t)ws, x->size), timing);
      if (rc) return rc;
      ws += x->slide;
    } else {
      i128 first = floor_start(x, (i128)ps - x->size) + x->slide; /* first window holding ps */
      ws = first > ws + x->slide ? first : ws + x->slide;
    }
  }
  return 0;
}

/* Sliding: windows containing the slice starting at s: starts first..last. */
static void slice_windows(const wn_win_t *x, int64_t s, i128 *first, i128 *last) {
  *last = floor_start(x, s);
  *first = floor_start(x, (i128)s - x->size) + x->slide;
}

/* The time at which a window ending at `end` expires (end - 1 + L < wm). */
static int64_t expiry_time(const wn_win_t *x, int64_t end) { return wn_sat_add(end, x->lateness); }

/* ------------------------------------------------------------ timers */

/* Sliding: the time at which the windows of the slice starting at s are
 * all expired. */
static int64_t slice_expiry(const wn_win_t *x, int64_t s) {
  i128 first, last;
  slice_windows(x, s, &first, &last);
  return expiry_time(x, wn_sat_add((int64_t)last, x->size));
}

/* The earliest pending action of the key's panes; 0 when there is none.
 * Panes are sorted by start and, in every kind, their expiry times and
 * their first unfired windows are in the same order. */
static int next_due(win_t *w, int64_t *due) {
  hdr_t *h = H(w);
  const wn_win_t *x = &w->w;
  if (!h->npanes) return 0;
  int64_t best;
  if (x->kind == WN_SLIDING) {
    best = slice_expiry(x, P(w, 0)->start);
    /* the first unfired window (end - 1 > fired_wm) that holds a slice */
    i128 u = ceil_start(x, (i128)h->fired_wm + 2 - x->size);
    size_t j = u > INT64_MAX ? h->npanes : lower_bound(w, u < INT64_MIN ? INT64_MIN : (int64_t)u);
    if (j < h->npanes) {
      i128 first, last;
      slice_windows(x, P(w, j)->start, &first, &last);
      i128 ws = first > u ? first : u;
      int64_t d = wn_sat_add((int64_t)ws, x->size - 1);
      if (d < best) best = d;
    }
  } else {
    best = expiry_time(x, P(w, 0)->end);
    for (size_t i = 0; i < h->npanes; i++) {
      pane_t *p = P(w, i);
      if (p->end - 1 > h->fired_wm) {
        if (p->end - 1 < best) best = p->end - 1;
        break;
      }
    }
  }
  if (best == WN_NO_TIMER) best++;
  *due = best;
  return 1;
}

static int rearm(win_t *w, sl_ctx_t *ctx) {
  hdr_t *h = H(w);
  /* nothing that moves the next action happened: keep the timer as it is */
  if (!w->restructured && (h->timer_ts != WN_NO_TIMER || !h->npanes)) return 0;
  int64_t due = 0;
  int have = next_due(w, &due);
  if (have && h->timer_ts == due) return 0;
  if (h->timer_ts != WN_NO_TIMER) {
    int rc = sl_timer_delete(ctx, SL_TIME_EVENT, h->timer_ts);
    if (rc != 0 && rc != SL_ENOTFOUND) return state_failed(ctx, "sl_timer_delete", rc);
    h->timer_ts = WN_NO_TIMER;
  }
  if (have) {
    int rc = sl_timer_set(ctx, SL_TIME_EVENT, due);
    if (rc != 0) return state_failed(ctx, "sl_timer_set", rc);
    h->timer_ts = due;
  }
  return 0;
}

/* ------------------------------------------------------------ advancing */

/* Fire the key's windows with fired_wm < end - 1 <= wm (on time), then
 * drop the panes whose windows are all expired at wm. */
static int advance(win_t *w, sl_ctx_t *ctx, int64_t wm) {
  hdr_t *h = H(w);
  const wn_win_t *x = &w->w;
  int rc;
  if (wm > h->fired_wm) {
    if (x->kind == WN_SLIDING) {
      if (h->npanes) {
        i128 lo = (i128)h->fired_wm + 2 - x->size, hi = (i128)wm + 1 - x->size;
        i128 first, last, f2, l2;
        slice_windows(x, P(w, 0)->start, &first, &last);
        slice_windows(x, P(w, h->npanes - 1)->start, &f2, &l2);
        if (lo < first) lo = first;
        if (hi > l2) hi = l2;
        if ((rc = sliding_each(w, ctx, lo, floor_start(x, hi), 0, "on_time")) != 0) return rc;
      }
    } else {
      for (size_t i = 0; i < H(w)->npanes; i++) {
        pane_t *p = P(w, i);
        if (p->end - 1 > h->fired_wm && p->end - 1 <= wm) {
          if ((rc = emit_window(w, ctx, p->start, p->end, "on_time")) != 0) return rc;
          P(w, i)->flags &= ~PANE_DIRTY;
        }
      }
    }
    H(w)->fired_wm = wm;
    w->restructured = 1;
  }
  /* expiry: expiry times grow with the pane start, so the expired panes
   * are a prefix */
  h = H(w);
  size_t n = h->npanes, gone = 0;
  while (gone < n) {
    pane_t *p = P(w, gone);
    int64_t t = x->kind == WN_SLIDING ? slice_expiry(x, p->start) : expiry_time(x, p->end);
    if (t > wm) break;
    gone++;
  }
  if (!gone) return 0;
  if (w->st_items) {
    if (gone == n) {
      if ((rc = sl_state_clear(ctx, w->st_items)) != 0) return state_failed(ctx, "clearing items", rc);
    } else {
      if ((rc = collect_ids(w, 0, gone)) != 0) return state_failed(ctx, "allocation", rc);
      if ((rc = remove_items(w, ctx, w->ids, gone)) != 0) return rc;
    }
  }
  remove_panes(w, 0, gone);
  return 0;
}

/* Bring the key up to watermark wm before anything else happens to it. */
static int catch_up(win_t *w, sl_ctx_t *ctx, int64_t wm) {
  hdr_t *h = H(w);
  if (wm <= h->fired_wm) return 0;
  if (h->timer_ts != WN_NO_TIMER && h->timer_ts <= wm) return advance(w, ctx, wm);
  h->fired_wm = wm; /* nothing was due: no window ends in (fired_wm, wm] */
  return 0;
}

/* ------------------------------------------------------------ records */

static int field_error(win_t *w, sl_ctx_t *ctx, const wn_field_t *f, const char *what) {
  if (f->is_key) sl_set_error(ctx, "window: the record key %s (needed by %s)", what, f->first_user);
  else sl_set_error(ctx, "window: field '%s' %s (needed by %s)", f->name, what, f->first_user);
  return SL_ERECORD;
}

static const char *json_kind(sl_json_type_t t) {
  switch (t) {
  case SL_JSON_STRING: return "a string";
  case SL_JSON_NUMBER: return "a number";
  case SL_JSON_BOOL: return "a boolean";
  case SL_JSON_NULL: return "null";
  case SL_JSON_OBJECT: return "an object";
  case SL_JSON_ARRAY: return "an array";
  default: return "missing";
  }
}

/* Read the fields the aggregates need into w->vals; a record error when one
 * is missing or of the wrong type. Nothing is changed before this passes. */
static int read_fields(win_t *w, sl_ctx_t *ctx, const sl_record_t *rec) {
  if (rec->value_len > w->dec_cap) {
    size_t cap = w->dec_cap ? w->dec_cap : 256;
    while (cap < rec->value_len) cap *= 2;
    char *d = realloc(w->dec, cap);
    if (!d) {
      sl_set_error(ctx, "window: out of memory");
      return SL_ENOMEM;
    }
    w->dec = d;
    w->dec_cap = cap;
  }
  size_t used = 0;
  char what[96];
  for (size_t i = 0; i < w->aggs.nfields; i++) {
    const wn_field_t *f = &w->aggs.fields[i];
    wn_val_t *v = &w->vals[i];
    memset(v, 0, sizeof *v);
    if (f->is_key) {
      v->s = rec->key;
      v->len = rec->key_len;
      v->type = WN_VAL_STRING;
      if (f->need_num && wn_num_parse(rec->key, rec->key_len, &v->num) != 0)
        return field_error(w, ctx, f, "is not a number");
      continue;
    }
    sl_json_value_t jv;
    int rc = sl_json_get(ctx, rec->value, rec->value_len, f->name, &jv);
    if (rc == SL_ERECORD) {
      sl_set_error(ctx, "window: the value is not a JSON object (field '%s' is needed by %s)",
                   f->name, f->first_user);
      return SL_ERECORD;
    }
    if (rc != 0) return field_error(w, ctx, f, "is missing");
    if (f->need_num) {
      if (jv.type != SL_JSON_NUMBER) {
        snprintf(what, sizeof what, "is not a number (it is %s)", json_kind(jv.type));
        return field_error(w, ctx, f, what);
      }
      if (wn_num_parse(jv.ptr, jv.len, &v->num) != 0)
        return field_error(w, ctx, f, "is not a valid JSON number");
    }
    if (f->need_any && jv.type == SL_JSON_NUMBER && !f->need_num &&
        wn_num_parse(jv.ptr, jv.len, &v->num) != 0)
      return field_error(w, ctx, f, "is not a valid JSON number");
    if (f->need_value || f->need_any) {
      v->type = jv.type == SL_JSON_STRING ? WN_VAL_STRING
                : jv.type == SL_JSON_NUMBER ? WN_VAL_NUMBER
                                            : WN_VAL_BOOL;
      if (jv.type == SL_JSON_STRING) {
        long n = wn_json_unescape(jv.ptr, jv.len, w->dec + used);
        if (n < 0) return field_error(w, ctx, f, "has an invalid escape sequence");
        v->s = w->dec + used;
        v->len = (size_t)n;
        used += (size_t)n;
      } else if (jv.type == SL_JSON_NUMBER || jv.type == SL_JSON_BOOL) {
        v->s = jv.ptr;
        v->len = jv.len;
      } else {
        snprintf(what, sizeof what, "is %s, not a string, number or boolean",
                 json_kind(jv.type));
        return field_error(w, ctx, f, what);
      }
    }
  }
  return 0;
}

/* Add the current record (w->vals) to pane i. What can refuse the record (a
 * user-defined aggregate's add) runs before anything is written to keyed
 * state: the FIXED accumulators are in the scratch copy of the key's state,
 * which the caller does not save when this fails, and the variable
 * accumulators are all computed before any is written. */
static int add_record(win_t *w, sl_ctx_t *ctx, size_t i) {
  pane_t *p = P(w, i);
  if (w->w.early) p->flags |= PANE_DIRTY;
  int rc;
  for (size_t g = 0; g < w->aggs.n; g++) {
    const wn_agg_t *a = &w->aggs.v[g];
    if (a->ops->storage == WN_STORE_FIXED && (rc = a->ops->add(a, ACC(p) + a->acc_off, w->vals)) < 0)
      return rc; /* refused by a user-defined aggregate (it set the error) */
    if (a->ops->storage != WN_STORE_VAR) continue;
    if ((rc = item_key(w, p->id, (uint32_t)g, "", 0)) != 0) return state_failed(ctx, "allocation", rc);
    sl_bytes_t old;
    rc = sl_state_map_get(ctx, w->st_items, w->ik.p, w->ik.len, &old);
    if (rc != 0 && rc != SL_ENOTFOUND) return state_failed(ctx, "reading items", rc);
    sl_acc_t x;
    int changed = wn_udaf_var_add(a, rc == 0 ? old.ptr : NULL, rc == 0 ? old.len : 0, w->vals, &x);
    if (changed < 0) return wn_udaf_failed(&w->aggs) ? SL_EPLUGIN : changed;
    if (keep_acc(w, g, &x) != 0) return state_failed(ctx, "allocation", SL_ENOMEM);
    w->vset[g] = changed;
  }
  for (size_t g = 0; g < w->aggs.n; g++) {
    const wn_agg_t *a = &w->aggs.v[g];
    if (a->ops->storage == WN_STORE_VAR && w->vset[g]) {
      if ((rc = item_key(w, p->id, (uint32_t)g, "", 0)) != 0)
        return state_failed(ctx, "allocation", rc);
      if ((rc = sl_state_map_put(ctx, w->st_items, w->ik.p, w->ik.len, w->vacc[g].p,
                                 w->vacc[g].len)) != 0)
        return state_failed(ctx, "writing items", rc);
    }
    if (a->ops->storage != WN_STORE_ITEMS) continue;
    const void *k;
    size_t klen;
    a->ops->item_key(a, w->vals, &k, &klen);
    rc = item_key(w, p->id, (uint32_t)g, k, klen);
    if (rc) return state_failed(ctx, "allocation", rc);
    if (a->ops->set_only) {
      if ((rc = sl_state_map_put(ctx, w->st_items, w->ik.p, w->ik.len, "", 0)) != 0)
        return state_failed(ctx, "writing items", rc);
      continue;
    }
    size_t sz = a->ops->size(a);
    if ((rc = pay_reserve(w, sz)) != 0) return state_failed(ctx, "allocation", rc);
    sl_bytes_t old;
    rc = sl_state_map_get(ctx, w->st_items, w->ik.p, w->ik.len, &old);
    int changed = 1;
    if (rc == 0 && old.len == sz) {
      memcpy(w->pay.p, old.ptr, sz);
      changed = 0;
    } else if (rc == 0 || rc == SL_ENOTFOUND) {
      a->ops->init(a, w->pay.p);
    } else {
      return state_failed(ctx, "reading items", rc);
    }
    if (a->ops->add(a, w->pay.p, w->vals)) changed = 1;
    if (changed && (rc = sl_state_map_put(ctx, w->st_items, w->ik.p, w->ik.len, w->pay.p, sz)) != 0)
      return state_failed(ctx, "writing items", rc);
  }
  return 0;
}

static int send_late(win_t *w, sl_ctx_t *ctx, const sl_record_t *rec) {
  sl_counter_add(w->late_records, 1);
  return sl_emit_to(ctx, w->late_port, rec);
}

/* Arm the early timer after a change to an unfired window. */
static int arm_early(win_t *w, sl_ctx_t *ctx) {
  hdr_t *h = H(w);
  if (!w->w.early || h->early_ts != WN_NO_TIMER) return 0;
  int64_t t = wn_sat_add(sl_now_ms(ctx), w->w.early);
  int rc = sl_timer_set(ctx, SL_TIME_PROCESSING, t);
  if (rc != 0) return state_failed(ctx, "sl_timer_set", rc);
  h->early_ts = t;
  return 0;
}

static int apply_tumbling(win_t *w, sl_ctx_t *ctx, int64_t ts, int64_t wm) {
  int64_t start, end;
  wn_tumbling_of(&w->w, ts, &start, &end);
  size_t i = lower_bound(w, start);
  if (i >= H(w)->npanes || P(w, i)->start != start)
    if (!insert_pane(w, ctx, i, start, end)) return SL_ENOMEM;
  int rc = add_record(w, ctx, i);
  if (rc) return rc;
  if (end - 1 <= H(w)->fired_wm) return emit_window(w, ctx, start, end, "late");
  return arm_early(w, ctx);
}

static int apply_sliding(win_t *w, sl_ctx_t *ctx, int64_t ts, int64_t wm) {
  const wn_win_t *x = &w->w;
  int64_t start, end;
  wn_slice_of(x, ts, &start, &end);
  size_t i = lower_bound(w, start);
  if (i >= H(w)->npanes || P(w, i)->start != start)
    if (!insert_pane(w, ctx, i, start, end)) return SL_ENOMEM;
  int rc = add_record(w, ctx, i);
  if (rc) return rc;
  i128 first, last;
  slice_windows(x, start, &first, &last);
  /* re-fire the windows of this slice that fired and have not expired */
  i128 fired_hi = floor_start(x, (i128)H(w)->fired_wm + 1 - x->size);
  for (i128 ws = first; ws <= last && ws <= fired_hi; ws += x->slide) {
    int64_t we = wn_sat_add((int64_t)ws, x->size);
    if (wn_expired(x, we, wm)) continue;
    if ((rc = emit_window(w, ctx, (int64_t)ws, we, "late")) != 0) return rc;
  }
  if (last + x->size - 1 > H(w)->fired_wm) return arm_early(w, ctx);
  return 0;
}

/* Returns 1 when the record is late (nothing changed), 0 when applied. */
static int apply_session(win_t *w, sl_ctx_t *ctx, int64_t ts, int64_t wm) {
  const wn_win_t *x = &w->w;
  int64_t ns = ts, ne = wn_sat_add(ts, x->gap);
  hdr_t *h = H(w);
  /* panes overlapping or touching [ns, ne): sorted and disjoint, so a run */
  size_t a = 0;
  while (a < h->npanes && P(w, a)->end < ns) a++;
  size_t b = a;
  while (b < h->npanes && P(w, b)->start <= ne) b++;
  int64_t ms = ns, me = ne;
  if (b > a) {
    if (P(w, a)->start < ms) ms = P(w, a)->start;
    if (P(w, b - 1)->end > me) me = P(w, b - 1)->end;
  }
  if (wn_expired(x, me, wm)) return 1;
  int rc;
  if (a == b && !insert_pane(w, ctx, a, ns, ne)) return SL_ENOMEM;
  /* The record goes into pane a before the panes it bridges are merged
   * into a (the same sum): an add that refuses the record then leaves
   * nothing changed. */
  if ((rc = add_record(w, ctx, a)) != 0) return rc;
  if (b - a > 1) {
    /* merge panes a+1 .. b-1 into a */
    pane_t *s = P(w, a);
    for (size_t i = a + 1; i < b; i++) {
      wn_aggs_merge(&w->aggs, ACC(s), ACC(P(w, i)));
      s->flags |= P(w, i)->flags;
    }
    if (w->st_items) {
      if ((rc = collect_ids(w, a + 1, b)) != 0) return state_failed(ctx, "allocation", rc);
      size_t n = b - a - 1;
      /* collect_ids fills w->ids; rekey collects entries before changing any */
      if ((rc = rekey_items(w, ctx, w->ids, n, s->id)) != 0) return rc;
    }
    remove_panes(w, a + 1, b - a - 1);
  }
  pane_t *p = P(w, a);
  if (p->start != ms || p->end != me) w->restructured = 1;
  p->start = ms;
  p->end = me;
  if (p->end - 1 <= H(w)->fired_wm) return emit_window(w, ctx, p->start, p->end, "late");
  return arm_early(w, ctx);
}

static int win_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  win_t *w = state;
  int rc = read_fields(w, ctx, rec);
  if (rc) return rc;
  int64_t wm = sl_watermark(ctx);
  if (w->w.kind != WN_SESSION && wn_is_late(&w->w, rec->ts, wm)) return send_late(w, ctx, rec);
  w->key = rec->key;
  w->key_len = rec->key_len;
  w->restructured = 0;
  int fresh;
  if ((rc = load(w, ctx, wm, &fresh)) != 0) return rc;
  if ((rc = catch_up(w, ctx, wm)) != 0) return rc;
  if (w->aggs.fallible && w->restructured) {
    /* catch_up fired or dropped windows: keep that even if a user-defined
     * aggregate refuses this record below */
    if ((rc = rearm(w, ctx)) != 0 || (rc = save(w, ctx)) != 0) return rc;
  }
  switch (w->w.kind) {
  case WN_TUMBLING: rc = apply_tumbling(w, ctx, rec->ts, wm); break;
  case WN_SLIDING: rc = apply_sliding(w, ctx, rec->ts, wm); break;
  default:
    rc = apply_session(w, ctx, rec->ts, wm);
    if (rc == 1) {
      if ((rc = send_late(w, ctx, rec)) != 0) return rc;
      if (fresh) return 0;
      if ((rc = rearm(w, ctx)) != 0) return rc;
      return save(w, ctx);
    }
  }
  if (rc) return rc;
  if (w->aggs.nudafs && wn_udaf_failed(&w->aggs)) return SL_EPLUGIN; /* it called sl_fail */
  if ((rc = rearm(w, ctx)) != 0) return rc;
  return save(w, ctx);
}

/* ------------------------------------------------------------ timers */

static int early_fire(win_t *w, sl_ctx_t *ctx) {
  const wn_win_t *x = &w->w;
  hdr_t *h = H(w);
  int rc;
  if (x->kind == WN_SLIDING) {
    size_t j = 0;
    while (j < h->npanes && !(P(w, j)->flags & PANE_DIRTY)) j++;
    if (j < h->npanes) {
      i128 first, last;
      slice_windows(x, P(w, j)->start, &first, &last);
      i128 lo = (i128)h->fired_wm + 2 - x->size;
      if (lo < first) lo = first;
      if ((rc = sliding_each(w, ctx, lo, (i128)INT64_MAX, 1, "early")) != 0) return rc;
    }
  } else {
    for (size_t i = 0; i < H(w)->npanes; i++) {
      pane_t *p = P(w, i);
      if ((p->flags & PANE_DIRTY) && p->end - 1 > H(w)->fired_wm) {
        if ((rc = emit_window(w, ctx, p->start, p->end, "early")) != 0) return rc;
      }
    }
  }
  for (size_t i = 0; i < H(w)->npanes; i++) P(w, i)->flags &= ~PANE_DIRTY;
  return 0;
}

static int win_on_timer(sl_ctx_t *ctx, void *state, sl_time_domain_t domain, int64_t ts) {
  win_t *w = state;
  sl_bytes_t key;
  int rc = sl_current_key(ctx, &key);
  if (rc != 0) return state_failed(ctx, "sl_current_key", rc);
  w->key = key.ptr;
  w->key_len = key.len;
  w->restructured = 0;
  int64_t wm = sl_watermark(ctx);
  int fresh;
  if ((rc = load(w, ctx, wm, &fresh)) != 0) return rc;
  if (fresh) return 0; /* a timer of a key whose state is gone: nothing to do */
  hdr_t *h = H(w);
  if (domain == SL_TIME_EVENT) {
    if (h->timer_ts == ts) h->timer_ts = WN_NO_TIMER; /* this one fired */
    if (ts > wm) wm = ts;
    if ((rc = advance(w, ctx, wm)) != 0) return rc;
  } else {
    if (h->early_ts == ts) h->early_ts = WN_NO_TIMER;
    if ((rc = catch_up(w, ctx, wm)) != 0) return rc;
    if ((rc = early_fire(w, ctx)) != 0) return rc;
  }
  if (w->aggs.nudafs && wn_udaf_failed(&w->aggs)) return SL_EPLUGIN; /* it called sl_fail */
  if ((rc = rearm(w, ctx)) != 0) return rc;
  return save(w, ctx);
}

/* ------------------------------------------------------------ life cycle */

static void win_close(void *state) {
  win_t *w = state;
  if (!w) return;
  if (w->tabs)
    for (size_t i = 0; i < w->aggs.n; i++) wn_tab_free(&w->tabs[i]);
  if (w->vacc)
    for (size_t i = 0; i < w->aggs.n; i++) wn_buf_free(&w->vacc[i]);
  free(w->vacc);
  free(w->vset);
  free(w->tabs);
  free(w->tabp);
  wn_aggs_free(&w->aggs);
  free(w->vals);
  free(w->dec);
  free(w->buf);
  free(w->acc);
  free(w->ids);
  free(w->src);
  wn_buf_free(&w->out);
  wn_buf_free(&w->ik);
  wn_buf_free(&w->pay);
  wn_buf_free(&w->coll);
  free(w);
}

/* ------------------------------------------------------------ user-defined functions */

#define WN_FUNCTIONS_MAX 32

/* The node's `functions`: name=REF pairs, pointing into text (owned). */
typedef struct wn_functions {
  sl_ctx_t *ctx;
  char *text;
  size_t n;
  const char *name[WN_FUNCTIONS_MAX];
  const char *ref[WN_FUNCTIONS_MAX];
} wn_functions_t;

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
  return s;
}

static int parse_functions(const char *text, wn_functions_t *f, char *err, size_t errlen) {
  if (!text || !*text) return 0;
  f->text = strdup(text);
  if (!f->text) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  char *save = NULL;
  for (char *item = strtok_r(f->text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    size_t col = (size_t)(item - f->text) + 1;
    char *eq = strchr(item, '=');
    if (!eq) {
      snprintf(err, errlen, "column %zu: expected name=REF (e.g. median=lua:median.lua)", col);
      return -1;
    }
    *eq = '\0';
    char *name = trim(item), *ref = trim(eq + 1);
    int ok = *name != '\0';
    for (const char *c = name; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '_'))
        ok = 0;
    if (!ok) {
      snprintf(err, errlen, "column %zu: a function name is [A-Za-z0-9_]+, got '%s'", col, name);
      return -1;
    }
    if (!*ref) {
      snprintf(err, errlen, "column %zu: no reference after '%s='", col, name);
      return -1;
    }
    if (wn_agg_ops_find(name, strlen(name))) {
      snprintf(err, errlen, "column %zu: '%s' is a built-in aggregate; give yours another name",
               col, name);
      return -1;
    }
    for (size_t i = 0; i < f->n; i++)
      if (strcmp(f->name[i], name) == 0) {
        snprintf(err, errlen, "column %zu: '%s' is defined twice", col, name);
        return -1;
      }
    if (f->n == WN_FUNCTIONS_MAX) {
      snprintf(err, errlen, "column %zu: at most %d functions", col, WN_FUNCTIONS_MAX);
      return -1;
    }
    f->name[f->n] = name;
    f->ref[f->n++] = ref;
  }
  return 0;
}

/* wn_udaf_resolve_fn: `functions` first, else a plugin's function of that name. */
static wn_udaf_t *resolve_udaf(void *ud, const char *name, char *err, size_t errlen) {
  wn_functions_t *f = ud;
  const char *ref = name;
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->name[i], name) == 0) ref = f->ref[i];
  const sl_host_api_t *host = SL__HOST(f->ctx);
  if (host->abi_minor < 4 ||
      host->struct_size < offsetof(sl_host_api_t, aggregate_find) + sizeof(host->aggregate_find)) {
    snprintf(err, errlen, "user-defined aggregates need SDK 1.4, which this host does not provide");
    return NULL;
  }
  const char *arg = NULL;
  char why[512];
  const sl_aggregate_t *d = sl_aggregate_find(f->ctx, ref, &arg, why, sizeof why);
  if (!d) {
    if (ref == name && strncmp(why, "unknown aggregate function", 26) == 0)
      snprintf(err, errlen,
               "unknown function '%s' (known: count, sum, min, max, avg, distinct, "
               "approx_distinct, top_n; no plugin has an aggregate function of that name and "
               "`functions` does not define it)",
               name);
    else
      snprintf(err, errlen, "function '%s' (%s): %s", name, ref, why);
    return NULL;
  }
  wn_udaf_t *u = wn_udaf_new(name, d, f->ctx);
  if (!u) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (d->open) {
    why[0] = '\0';
    if (d->open(f->ctx, arg, &u->inst, why, sizeof why) != 0) {
      snprintf(err, errlen, "function '%s' (%s): %s", name, ref, why[0] ? why : "open failed");
      wn_udaf_free(u);
      return NULL;
    }
    u->opened = 1;
  }
  return u;
}

/* A name of `functions` the aggregate list does not use, or NULL. */
static const char *unused_function(const wn_functions_t *f, const wn_aggs_t *a) {
  for (size_t i = 0; i < f->n; i++) {
    int used = 0;
    for (size_t k = 0; k < a->nudafs && !used; k++) used = strcmp(wn_udaf_name(a->udafs[k]), f->name[i]) == 0;
    if (!used) return f->name[i];
  }
  return NULL;
}

static int host_has_timers(sl_ctx_t *ctx) {
  const sl_host_api_t *h = SL__HOST(ctx);
  return h->abi_major == SL_ABI_MAJOR && h->abi_minor >= 3 &&
         h->struct_size >= offsetof(sl_host_api_t, current_key) + sizeof(h->current_key) &&
         h->timer_set && h->timer_delete && h->watermark && h->current_key;
}

static int win_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  if (!host_has_timers(ctx)) {
    snprintf(errbuf, errlen, "the window operator needs timers and watermarks (SDK 1.3), which "
                             "this host does not provide");
    return SL_EABI;
  }
  win_t *w = calloc(1, sizeof *w);
  if (!w) {
    snprintf(errbuf, errlen, "out of memory");
    return SL_ENOMEM;
  }
  wn_config_in_t in = {
      .type = sl_config_string(ctx, "type"),
      .size = sl_config_duration_ms(ctx, "size"),
      .slide = sl_config_duration_ms(ctx, "slide"),
      .gap = sl_config_duration_ms(ctx, "gap"),
      .offset = sl_config_duration_ms(ctx, "offset"),
      .allowed_lateness = sl_config_duration_ms(ctx, "allowed_lateness"),
      .early_fire = sl_config_duration_ms(ctx, "early_fire"),
  };
  char err[512];
  if (wn_config_check(&in, &w->w, err, sizeof err) != 0) {
    snprintf(errbuf, errlen, "%s", err);
    win_close(w);
    return SL_ECONFIG;
  }
  wn_functions_t fns = {.ctx = ctx};
  if (parse_functions(sl_config_string(ctx, "functions"), &fns, err, sizeof err) != 0) {
    snprintf(errbuf, errlen, "functions: %s", err);
    free(fns.text);
    win_close(w);
    return SL_ECONFIG;
  }
  int prc = wn_parse_aggs_ex(sl_config_string(ctx, "aggregate"), &w->aggs, resolve_udaf, &fns, err,
                             sizeof err);
  const char *unused = prc == 0 ? unused_function(&fns, &w->aggs) : NULL;
  if (prc != 0 || unused) {
    if (unused)
      snprintf(errbuf, errlen,
               "functions: '%s' is defined but the aggregate list does not use it (a typo?)",
               unused);
    else
      snprintf(errbuf, errlen, "aggregate: %s", err);
    free(fns.text);
    win_close(w);
    return SL_ECONFIG;
  }
  free(fns.text);
  w->layout = w->aggs.layout ^ (uint32_t)w->w.kind * 0x9E3779B9u;
  w->stride = sizeof(pane_t) + w->aggs.acc_size;
  w->st = sl_state_declare(ctx, "window", SL_STATE_VALUE, 0);
  if (w->st && w->aggs.items) w->st_items = sl_state_declare(ctx, "window_items", SL_STATE_MAP, 0);
  if (!w->st || (w->aggs.items && !w->st_items)) {
    snprintf(errbuf, errlen,
             "the window operator needs `key_by:` on its node (windows, their state and timers "
             "are per key: key_by: some_field, or key_by: $key for the record key); see the log");
    win_close(w);
    return SL_ECONFIG;
  }
  w->late_port = sl_port(ctx, "late");
  w->late_records = sl_counter(ctx, "late_records");
  w->vals = calloc(w->aggs.nfields ? w->aggs.nfields : 1, sizeof *w->vals);
  w->acc = malloc(w->aggs.acc_size ? w->aggs.acc_size : 8);
  w->tabs = calloc(w->aggs.n, sizeof *w->tabs);
  w->tabp = calloc(w->aggs.n, sizeof *w->tabp);
  w->vacc = calloc(w->aggs.n ? w->aggs.n : 1, sizeof *w->vacc);
  w->vset = calloc(w->aggs.n ? w->aggs.n : 1, sizeof *w->vset);
  size_t max_item = 8;
  for (size_t i = 0; i < w->aggs.n; i++)
    if (w->aggs.v[i].ops->storage == WN_STORE_ITEMS && w->aggs.v[i].ops->size(&w->aggs.v[i]) > max_item)
      max_item = w->aggs.v[i].ops->size(&w->aggs.v[i]);
  w->src = malloc((max_item + 7) & ~(size_t)7);
  if (w->late_port < 0 || !w->late_records || !w->vals || !w->acc || !w->tabs || !w->tabp ||
      !w->src || !w->vacc || !w->vset) {
    snprintf(errbuf, errlen, w->late_port < 0 ? "no `late` port" : "out of memory");
    win_close(w);
    return SL_ENOMEM;
  }
  for (size_t i = 0; i < w->aggs.n; i++) w->tabp[i] = &w->tabs[i];
  *state = w;
  return 0;
}

static const sl_config_key_t k_config[] = {
    {"type", SL_CONFIG_STRING, "tumbling", "tumbling, sliding or session"},
    {"size", SL_CONFIG_DURATION, "0", "window length (tumbling, sliding; required for them)"},
    {"slide", SL_CONFIG_DURATION, "0",
     "sliding: a window starts every `slide` (<= size; required for sliding)"},
    {"gap", SL_CONFIG_DURATION, "0",
     "session: a key's session closes after this much event time without records (required)"},
    {"offset", SL_CONFIG_DURATION, "0",
     "tumbling, sliding: windows start at offset + k * slide (k * size for tumbling)"},
    {"aggregate", SL_CONFIG_STRING, "count",
     "comma-separated aggregates, each optionally `name=`: count, sum(f), min(f), max(f), avg(f), "
     "distinct(f), approx_distinct(f), top_n(f, n), top_n(f, n, g); f = key for the record key"},
    {"functions", SL_CONFIG_STRING, "",
     "user-defined aggregate functions: `name=REF, ...`, REF = lua:FILE.lua, PLUGIN:NAME, "
     "PATH.so:NAME; a name used in `aggregate` that is not built in and not listed here is "
     "looked up as a plugin's function of that name"},
    {"allowed_lateness", SL_CONFIG_DURATION, "0",
     "keep a window this long (event time) after it fired: later records re-fire it as 'late'"},
    {"early_fire", SL_CONFIG_DURATION, "0",
     "emit 'early' results of changed, unfired windows every this much processing time (0 = off)"},
};

static const char *const k_outputs[] = {"late", NULL};

static const sl_operator_t window_op = {
    SL_OPERATOR_INIT,
    .name = "window",
    .version = "1.0.0",
    .description = "tumbling, sliding and session windows with aggregates over keyed input",
    .kind = SL_KIND_TRANSFORM,
    .config = k_config,
    .config_count = sizeof k_config / sizeof k_config[0],
    .outputs = k_outputs,
    .open = win_open,
    .process = win_process,
    .close = win_close,
    .on_timer = win_on_timer,
};

SL_PLUGIN_DEFINE("window", "1.0.0", "event-time windows with aggregates", &window_op);
