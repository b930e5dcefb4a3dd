/*
 * timers.c - the timer queue of one operator instance (see timers.h).
 */
#include "timers.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util.h"

#define INLINE_KEY 24u
#define NO_SLOT UINT32_MAX

typedef struct timer_slot {
  int64_t ts;
  uint64_t order; /* setting order: ties of ts fire in the order they were set */
  uint64_t hash;
  uint32_t key_len;
  uint32_t heap_pos; /* index in its domain's heap; next free slot when free */
  uint8_t domain;    /* 0 = event, 1 = processing */
  union {
    unsigned char inl[INLINE_KEY];
    unsigned char *ptr;
  } key;
} timer_slot_t;

/* A heap entry carries its ordering key, so that sifting compares within
 * the heap array instead of chasing each entry's slot (a cache miss per
 * level once the queue is large). */
typedef struct heap_item {
  int64_t ts;
  uint64_t order;
  uint32_t slot;
} heap_item_t;

typedef struct timer_heap {
  heap_item_t *items;
  uint32_t n, cap;
} timer_heap_t;

struct sl_timers {
  timer_slot_t *slots;
  uint32_t slot_cap, slot_used, free_head;
  uint32_t *table; /* slot index + 1, 0 = empty; linear probing, backward-shift deletion */
  uint32_t table_mask;
  uint32_t live;
  timer_heap_t heap[2];
  uint64_t next_order;
  unsigned char *scratch; /* the key of the last popped timer */
  size_t scratch_cap;
};

static inline int dom_index(sl_time_domain_t d) { return d == SL_TIME_PROCESSING ? 1 : 0; }

static inline const unsigned char *slot_key(const timer_slot_t *s) {
  return s->key_len <= INLINE_KEY ? s->key.inl : s->key.ptr;
}

static inline uint64_t timer_hash(int dom, int64_t ts, const void *key, size_t len) {
  return XXH3_64bits_withSeed(key, len, ((uint64_t)ts << 1) ^ (uint64_t)dom ^ ((uint64_t)ts >> 63));
}

sl_timers_t *sl_timers_new(void) {
  sl_timers_t *q = sl_xcalloc(1, sizeof(*q));
  q->table_mask = 63;
  q->table = sl_xcalloc(q->table_mask + 1, sizeof(uint32_t));
  q->free_head = NO_SLOT;
  return q;
}

void sl_timers_free(sl_timers_t *q) {
  if (!q) return;
  for (uint32_t i = 0; i < q->slot_used; i++)
    if (q->slots[i].domain != 0xff && q->slots[i].key_len > INLINE_KEY) free(q->slots[i].key.ptr);
  free(q->slots);
  free(q->table);
  free(q->heap[0].items);
  free(q->heap[1].items);
  free(q->scratch);
  free(q);
}

/* ---------------------------------------------------------------- heap */

static inline int item_before(const heap_item_t *x, const heap_item_t *y) {
  return x->ts < y->ts || (x->ts == y->ts && x->order < y->order);
}

static inline void heap_place(sl_timers_t *q, timer_heap_t *h, uint32_t pos, heap_item_t it) {
  h->items[pos] = it;
  q->slots[it.slot].heap_pos = pos;
}

static void heap_up(sl_timers_t *q, timer_heap_t *h, uint32_t pos) {
  heap_item_t it = h->items[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 2;
    if (!item_before(&it, &h->items[parent])) break;
    heap_place(q, h, pos, h->items[parent]);
    pos = parent;
  }
  heap_place(q, h, pos, it);
}

static void heap_down(sl_timers_t *q, timer_heap_t *h, uint32_t pos) {
  heap_item_t it = h->items[pos];
  for (;;) {
    uint32_t c = 2 * pos + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && item_before(&h->items[c + 1], &h->items[c])) c++;
    if (!item_before(&h->items[c], &it)) break;
    heap_place(q, h, pos, h->items[c]);
    pos = c;
  }
  heap_place(q, h, pos, it);
}

static void heap_push(sl_timers_t *q, timer_heap_t *h, uint32_t slot) {
  if (h->n == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 64;
    h->items = sl_xrealloc(h->items, h->cap * sizeof(heap_item_t));
  }
  const timer_slot_t *t = &q->slots[slot];
  h->items[h->n] = (heap_item_t){t->ts, t->order, slot};
  heap_up(q, h, h->n++);
}

static void heap_remove_at(sl_timers_t *q, timer_heap_t *h, uint32_t pos) {
  heap_item_t last = h->items[--h->n];
  if (pos == h->n) return;
  heap_place(q, h, pos, last);
  if (pos > 0 && item_before(&last, &h->items[(pos - 1) / 2]))
    heap_up(q, h, pos);
  else
    heap_down(q, h, pos);
}

/* --------------------------------------------------------------- table */

static void table_grow(sl_timers_t *q) {
  uint32_t old_size = q->table_mask + 1, *old = q->table;
  q->table_mask = old_size * 2 - 1;
  q->table = sl_xcalloc(q->table_mask + 1, sizeof(uint32_t));
  for (uint32_t i = 0; i < old_size; i++) {
    if (!old[i]) continue;
    uint32_t b = (uint32_t)q->slots[old[i] - 1].hash & q->table_mask;
    while (q->table[b]) b = (b + 1) & q->table_mask;
    q->table[b] = old[i];
  }
  free(old);
}

/* Bucket holding the timer, or the empty bucket where it would go (*found = 0). */
static uint32_t table_find(const sl_timers_t *q, int dom, int64_t ts, const void *key, size_t len,
                           uint64_t hash, int *found) {
  uint32_t b = (uint32_t)hash & q->table_mask;
  for (;;) {
    uint32_t e = q->table[b];
    if (!e) {
      *found = 0;
      return b;
    }
    const timer_slot_t *s = &q->slots[e - 1];
    if (s->hash == hash && s->ts == ts && s->domain == dom && s->key_len == len &&
        memcmp(slot_key(s), key, len) == 0) {
      *found = 1;
      return b;
    }
    b = (b + 1) & q->table_mask;
  }
}

/* Delete bucket b, moving later entries of its probe run back (no tombstones). */
static void table_delete(sl_timers_t *q, uint32_t b) {
  uint32_t hole = b, i = b;
  for (;;) {
    i = (i + 1) & q->table_mask;
    uint32_t e = q->table[i];
    if (!e) break;
    uint32_t home = (uint32_t)q->slots[e - 1].hash & q->table_mask;
    /* Move e into the hole unless its home lies cyclically in (hole, i]. */
    int stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (!stays) {
      q->table[hole] = e;
      hole = i;
    }
  }
  q->table[hole] = 0;
}

/* ---------------------------------------------------------------- slots */

static uint32_t slot_alloc(sl_timers_t *q) {
  if (q->free_head != NO_SLOT) {
    uint32_t s = q->free_head;
    q->free_head = q->slots[s].heap_pos;
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
  t->domain = 0xff; /* free */
  t->heap_pos = q->free_head;
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
  q->table[b] = s + 1;
  q->live++;
  heap_push(q, &q->heap[dom], s);
  if ((uint64_t)q->live * 4 > (uint64_t)(q->table_mask + 1) * 3) table_grow(q); /* load <= 3/4 */
  return 1;
}

int sl_timers_remove(sl_timers_t *q, sl_time_domain_t domain, int64_t ts, const void *key,
                     size_t len) {
  int dom = dom_index(domain), found;
  uint64_t hash = timer_hash(dom, ts, key, len);
  uint32_t b = table_find(q, dom, ts, key, len, hash, &found);
  if (!found) return SL_ENOTFOUND;
  uint32_t s = q->table[b] - 1;
  table_delete(q, b);
  heap_remove_at(q, &q->heap[dom], q->slots[s].heap_pos);
  slot_release(q, s);
  q->live--;
  return 0;
}

int64_t sl_timers_peek(const sl_timers_t *q, sl_time_domain_t domain) {
  const timer_heap_t *h = &q->heap[dom_index(domain)];
  return h->n ? h->items[0].ts : SL_TS_MAX;
}

int sl_timers_pop(sl_timers_t *q, sl_time_domain_t domain, int64_t limit, int64_t *ts,
                  const void **key, size_t *len) {
  int dom = dom_index(domain);
  timer_heap_t *h = &q->heap[dom];
  if (!h->n || h->items[0].ts > limit) return 0;
  uint32_t s = h->items[0].slot;
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
  heap_remove_at(q, h, 0);
  slot_release(q, s);
  q->live--;
  return 1;
}

size_t sl_timers_count(const sl_timers_t *q, sl_time_domain_t domain) {
  return q->heap[dom_index(domain)].n;
}
