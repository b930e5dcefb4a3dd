/*
 * timers.c - the timer queue of one operator instance (see timers.h).
 *
 * Per domain, the queued timers are items {ts, order, slot} in two ordered
 * containers: a "run", a ring buffer of items in ascending (ts, order), to
 * which a timer is appended when it sorts after the run's last item, and a
 * 4-ary min-heap for the others. Event-time timers are mostly set in
 * ascending time (a window's end, then the next window's), so in the common
 * case setting a timer is an append and firing one takes the run's front:
 * O(1), with sequential memory access, however many timers are queued.
 * The earliest timer is the smaller of the run's front and the heap's top.
 *
 * Removal is lazy: the slot is released at once and its item left where it
 * is; an item is live while its slot still carries the item's order (orders
 * are never reused, a released slot's order is 0). So items never need to
 * know their position, and sifting the heap writes to the heap array only.
 * Both fronts are kept live (dead items there are dropped after every
 * removal and pop), so peek needs no clean-up, and the containers are
 * compacted when they hold more dead items than live ones.
 */
#include "timers.h"

#include <stdlib.h>
#include <string.h>
/* inlined: the keys hashed here are short, a call through the PLT costs as much */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util.h"

#define INLINE_KEY 24u
#define NO_SLOT UINT32_MAX

typedef struct timer_slot {
  int64_t ts;
  uint64_t order; /* setting order (from 1): ties of ts fire in the order they were set; 0 = free */
  uint64_t hash;
  uint32_t key_len;
  uint32_t next_free; /* next free slot, when free */
  uint8_t domain;     /* 0 = event, 1 = processing */
  union {
    unsigned char inl[INLINE_KEY];
    unsigned char *ptr;
  } key;
} timer_slot_t;

/* An item carries its ordering key, so that ordering compares within the
 * item arrays instead of chasing each item's slot. */
typedef struct item {
  int64_t ts;
  uint64_t order;
  uint32_t slot;
} item_t;

typedef struct tqueue {
  item_t *heap; /* 4-ary min-heap: children of i are 4i+1 .. 4i+4 */
  uint32_t hn, hcap;
  item_t *run; /* ring buffer, ascending: [rhead, rhead + rn) modulo rcap (a power of two) */
  uint32_t rhead, rn, rcap;
  uint32_t live, dead; /* timers queued; items of removed timers still held */
} tqueue_t;

/* A table bucket: slot + 1 (0 = empty) and the low half of the timer's hash,
 * so that a probe compares hashes without touching the slot. */
typedef struct bucket {
  uint32_t slot1;
  uint32_t hash32;
} bucket_t;

struct sl_timers {
  timer_slot_t *slots;
  uint32_t slot_cap, slot_used, free_head;
  bucket_t *table; /* linear probing, backward-shift deletion */
  uint32_t table_mask;
  uint32_t live;
  tqueue_t dq[2];
  uint64_t next_order;
  unsigned char *scratch; /* the key of the last popped timer */
  size_t scratch_cap;
};

static inline int dom_index(sl_time_domain_t d) { return d == SL_TIME_PROCESSING ? 1 : 0; }

static inline const unsigned char *slot_key(const timer_slot_t *s) {
  return s->key_len <= INLINE_KEY ? s->key.inl : s->key.ptr;
}

/* Key equality without a call (keys are short): 8 bytes at a time, the
 * tail as an overlapping word. */
static inline int key_eq(const unsigned char *a, const unsigned char *b, size_t n) {
  uint64_t x, y;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      memcpy(&x, a + i, 8);
      memcpy(&y, b + i, 8);
      if (x != y) return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

static inline uint64_t timer_hash(int dom, int64_t ts, const void *key, size_t len) {
  return XXH3_64bits_withSeed(key, len, ((uint64_t)ts << 1) ^ (uint64_t)dom ^ ((uint64_t)ts >> 63));
}

sl_timers_t *sl_timers_new(void) {
  sl_timers_t *q = sl_xcalloc(1, sizeof(*q));
  q->table_mask = 63;
  q->table = sl_xcalloc(q->table_mask + 1, sizeof(bucket_t));
  q->free_head = NO_SLOT;
  q->next_order = 1;
  return q;
}

void sl_timers_free(sl_timers_t *q) {
  if (!q) return;
  for (uint32_t i = 0; i < q->slot_used; i++)
    if (q->slots[i].order && q->slots[i].key_len > INLINE_KEY) free(q->slots[i].key.ptr);
  free(q->slots);
  free(q->table);
  for (int d = 0; d < 2; d++) {
    free(q->dq[d].heap);
    free(q->dq[d].run);
  }
  free(q->scratch);
  free(q);
}

/* ---------------------------------------------------------------- items */

static inline int item_before(const item_t *x, const item_t *y) {
  return x->ts < y->ts || (x->ts == y->ts && x->order < y->order);
}

static inline int item_live(const sl_timers_t *q, const item_t *it) {
  return q->slots[it->slot].order == it->order;
}

/* ---------------------------------------------------------------- heap */

static void heap_up(item_t *h, uint32_t pos) {
  item_t it = h[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 4;
    if (!item_before(&it, &h[parent])) break;
    h[pos] = h[parent];
    pos = parent;
  }
  h[pos] = it;
}

static void heap_down(item_t *h, uint32_t n, uint32_t pos) {
  item_t it = h[pos];
  for (;;) {
    uint32_t c = 4 * pos + 1;
    if (c >= n) break;
    uint32_t end = c + 4 < n ? c + 4 : n, best = c;
    for (uint32_t k = c + 1; k < end; k++)
      if (item_before(&h[k], &h[best])) best = k;
    if (!item_before(&h[best], &it)) break;
    h[pos] = h[best];
    pos = best;
  }
  h[pos] = it;
}

static void heap_push(tqueue_t *t, item_t it) {
  if (t->hn == t->hcap) {
    t->hcap = t->hcap ? t->hcap * 2 : 64;
    t->heap = sl_xrealloc(t->heap, t->hcap * sizeof(item_t));
  }
  t->heap[t->hn] = it;
  heap_up(t->heap, t->hn++);
}

static void heap_pop_top(tqueue_t *t) {
  t->heap[0] = t->heap[--t->hn];
  if (t->hn > 1) heap_down(t->heap, t->hn, 0);
}

/* ----------------------------------------------------------------- run */

static inline item_t *run_at(const tqueue_t *t, uint32_t i) {
  return &t->run[(t->rhead + i) & (t->rcap - 1)];
}

static void run_push(tqueue_t *t, item_t it) {
  if (t->rn == t->rcap) { /* grow: unwrap into a new buffer twice the size */
    uint32_t cap = t->rcap ? t->rcap * 2 : 64;
    item_t *r = sl_xmalloc(cap * sizeof(item_t));
    for (uint32_t i = 0; i < t->rn; i++) r[i] = *run_at(t, i);
    free(t->run);
    t->run = r;
    t->rcap = cap;
    t->rhead = 0;
  }
  *run_at(t, t->rn++) = it;
}

static inline void run_pop_front(tqueue_t *t) {
  t->rhead = (t->rhead + 1) & (t->rcap - 1);
  t->rn--;
}

/* --------------------------------------------------------------- queue */

static void queue_push(tqueue_t *t, item_t it) {
  /* Orders grow, so "after the run's last item" is ts >= its ts. */
  if (t->rn == 0 || it.ts >= run_at(t, t->rn - 1)->ts)
    run_push(t, it);
  else
    heap_push(t, it);
}

/* The earliest item (both fronts are live), or NULL. */
static inline const item_t *queue_front(const tqueue_t *t) {
  const item_t *h = t->hn ? &t->heap[0] : NULL, *r = t->rn ? run_at(t, 0) : NULL;
  if (!h) return r;
  if (!r) return h;
  return item_before(h, r) ? h : r;
}

/* Drop dead items from both fronts. */
static void queue_trim(const sl_timers_t *q, tqueue_t *t) {
  while (t->hn && !item_live(q, &t->heap[0])) {
    heap_pop_top(t);
    t->dead--;
  }
  while (t->rn && !item_live(q, run_at(t, 0))) {
    run_pop_front(t);
    t->dead--;
  }
}

/* Drop every dead item: the run stays sorted, the heap is rebuilt. */
static void queue_compact(const sl_timers_t *q, tqueue_t *t) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < t->rn; i++) {
    item_t it = *run_at(t, i);
    if (item_live(q, &it)) *run_at(t, n++) = it;
  }
  t->rn = n;
  n = 0;
  for (uint32_t i = 0; i < t->hn; i++)
    if (item_live(q, &t->heap[i])) t->heap[n++] = t->heap[i];
  t->hn = n;
  if (n > 1)
    for (uint32_t i = (n - 2) / 4 + 1; i-- > 0;) heap_down(t->heap, n, i);
  t->dead = 0;
}

/* The earliest item of t (live) has been taken, or a timer of t removed. */
static void queue_after_removal(const sl_timers_t *q, tqueue_t *t) {
  queue_trim(q, t);
  if (t->dead > 64 && t->dead > t->live) queue_compact(q, t);
}

/* --------------------------------------------------------------- table */

static void table_grow(sl_timers_t *q) {
  uint32_t old_size = q->table_mask + 1;
  bucket_t *old = q->table;
  q->table_mask = old_size * 2 - 1;
  q->table = sl_xcalloc(q->table_mask + 1, sizeof(bucket_t));
  for (uint32_t i = 0; i < old_size; i++) {
    if (!old[i].slot1) continue;
    uint32_t b = old[i].hash32 & q->table_mask;
    while (q->table[b].slot1) b = (b + 1) & q->table_mask;
    q->table[b] = old[i];
  }
  free(old);
}

/* Bucket holding the timer, or the empty bucket where it would go (*found = 0). */
static uint32_t table_find(const sl_timers_t *q, int dom, int64_t ts, const void *key, size_t len,
                           uint64_t hash, int *found) {
  uint32_t h32 = (uint32_t)hash, b = h32 & q->table_mask;
  for (;;) {
    bucket_t e = q->table[b];
    if (!e.slot1) {
      *found = 0;
      return b;
    }
    if (e.hash32 == h32) {
      const timer_slot_t *s = &q->slots[e.slot1 - 1];
      if (s->hash == hash && s->ts == ts && s->domain == dom && s->key_len == len &&
          key_eq(slot_key(s), key, len)) {
        *found = 1;
        return b;
      }
    }
    b = (b + 1) & q->table_mask;
  }
}

/* Delete bucket b, moving later entries of its probe run back (no tombstones). */
static void table_delete(sl_timers_t *q, uint32_t b) {
  uint32_t hole = b, i = b;
  for (;;) {
    i = (i + 1) & q->table_mask;
    bucket_t e = q->table[i];
    if (!e.slot1) break;
    uint32_t home = e.hash32 & q->table_mask;
    /* Move e into the hole unless its home lies cyclically in (hole, i]. */
    int stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (!stays) {
      q->table[hole] = e;
      hole = i;
    }
  }
  q->table[hole] = (bucket_t){0, 0};
}

/* ---------------------------------------------------------------- slots */

static uint32_t slot_alloc(sl_timers_t *q) {
  if (q->free_head != NO_SLOT) {
    uint32_t s = q->free_head;
    q->free_head = q->slots[s].next_free;
    return s;
  }
  if (q->slot_used == q->slot_cap) {
    q->slot_cap = q->slot_cap ? q->slot_cap * 2 : 64;
    q->slots = sl_xrealloc(q->slots, q->slot_cap * sizeof(timer_slot_t));
  }
  return q->slot_used++;
}

static void slot_release(sl_timers_t *q, uint32_t s) {
  timer_slot_t *t = &q->slots[s];
  if (t->key_len > INLINE_KEY) free(t->key.ptr);
  t->key_len = 0;
  t->order = 0; /* free: its items, wherever they are, are dead */
  t->next_free = q->free_head;
  q->free_head = s;
}

/* ------------------------------------------------------------------ API */

int sl_timers_add(sl_timers_t *q, sl_time_domain_t domain, int64_t ts, const void *key,
                  size_t len) {
  int dom = dom_index(domain), found;
  uint64_t hash = timer_hash(dom, ts, key, len);
  uint32_t b = table_find(q, dom, ts, key, len, hash, &found);
  if (found) return 0;
  uint32_t s = slot_alloc(q);
  timer_slot_t *t = &q->slots[s];
  t->ts = ts;
  t->order = q->next_order++;
  t->hash = hash;
  t->key_len = (uint32_t)len;
  t->domain = (uint8_t)dom;
  if (len <= INLINE_KEY) {
    if (len) memcpy(t->key.inl, key, len);
  } else {
    t->key.ptr = sl_xmalloc(len);
    memcpy(t->key.ptr, key, len);
  }
  q->table[b] = (bucket_t){s + 1, (uint32_t)hash};
  q->live++;
  tqueue_t *tq = &q->dq[dom];
  tq->live++;
  queue_push(tq, (item_t){ts, t->order, s});
  if ((uint64_t)q->live * 4 > (uint64_t)(q->table_mask + 1) * 3) table_grow(q); /* load <= 3/4 */
  return 1;
}

int sl_timers_remove(sl_timers_t *q, sl_time_domain_t domain, int64_t ts, const void *key,
                     size_t len) {
  int dom = dom_index(domain), found;
  uint64_t hash = timer_hash(dom, ts, key, len);
  uint32_t b = table_find(q, dom, ts, key, len, hash, &found);
  if (!found) return SL_ENOTFOUND;
  uint32_t s = q->table[b].slot1 - 1;
  table_delete(q, b);
  slot_release(q, s);
  q->live--;
  tqueue_t *tq = &q->dq[dom];
  tq->live--;
  tq->dead++; /* its item stays until it reaches a front or a compaction */
  queue_after_removal(q, tq);
  return 0;
}

int64_t sl_timers_peek(const sl_timers_t *q, sl_time_domain_t domain) {
  const item_t *it = queue_front(&q->dq[dom_index(domain)]);
  return it ? it->ts : SL_TS_MAX;
}

int sl_timers_pop(sl_timers_t *q, sl_time_domain_t domain, int64_t limit, int64_t *ts,
                  const void **key, size_t *len) {
  int dom = dom_index(domain);
  tqueue_t *tq = &q->dq[dom];
  const item_t *front = queue_front(tq);
  if (!front || front->ts > limit) return 0;
  int from_heap = tq->hn && front == &tq->heap[0];
  uint32_t s = front->slot;
  timer_slot_t *t = &q->slots[s];
  if (t->key_len > q->scratch_cap) {
    q->scratch_cap = t->key_len < 64 ? 64 : t->key_len;
    q->scratch = sl_xrealloc(q->scratch, q->scratch_cap);
  }
  if (t->key_len) memcpy(q->scratch, slot_key(t), t->key_len);
  *ts = t->ts;
  *key = q->scratch;
  *len = t->key_len;
  int found;
  uint32_t b = table_find(q, dom, t->ts, slot_key(t), t->key_len, t->hash, &found);
  table_delete(q, b);
  if (from_heap)
    heap_pop_top(tq);
  else
    run_pop_front(tq);
  slot_release(q, s);
  q->live--;
  tq->live--;
  queue_after_removal(q, tq);
  return 1;
}

size_t sl_timers_count(const sl_timers_t *q, sl_time_domain_t domain) {
  return q->dq[dom_index(domain)].live;
}
