/* channel.c - see channel.h. */
#include "channel.h"

#include <stdlib.h>

#include "util.h"

static uint64_t round_pow2(uint64_t n) {
  uint64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

void sl_ring_init(sl_ring_t *r, uint32_t capacity) {
  uint64_t cap = round_pow2(capacity ? capacity : 1);
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  r->cached_head = 0;
  r->cached_tail = 0;
  r->mask = cap - 1;
  r->capacity = cap;
  r->slots = sl_xcalloc(cap, sizeof(void *));
}

void sl_ring_destroy(sl_ring_t *r) {
  free(r->slots);
  r->slots = NULL;
}

sl_channel_t *sl_channel_new(uint32_t capacity, uint32_t batch_size) {
  sl_channel_t *ch = NULL;
  if (posix_memalign((void **)&ch, SL_CACHELINE, sizeof(*ch)) != 0) abort();
  *ch = (sl_channel_t){0};
  sl_ring_init(&ch->full, capacity);
  /* The exact credit is the requested capacity, not the power of two. */
  ch->full.capacity = capacity ? capacity : 1;
  /* Room for every batch that can exist in steady state, so release never
   * has to free: the ring's batches, one at each end, one in flight. */
  sl_ring_init(&ch->free, capacity + 4);
  ch->batch_size = batch_size;
  atomic_init(&ch->allocated, 0);
  return ch;
}

void sl_channel_free(sl_channel_t *ch) {
  if (!ch) return;
  sl_batch_t *b;
  while ((b = sl_ring_pop(&ch->full)) != NULL) sl_batch_free(b);
  while ((b = sl_ring_pop(&ch->free)) != NULL) sl_batch_free(b);
  sl_ring_destroy(&ch->full);
  sl_ring_destroy(&ch->free);
  free(ch);
}

sl_batch_t *sl_channel_acquire(sl_channel_t *ch) {
  sl_batch_t *b = sl_ring_pop(&ch->free);
  if (b) {
    sl_batch_reset(b);
    return b;
  }
  atomic_fetch_add_explicit(&ch->allocated, 1, memory_order_relaxed);
  return sl_batch_new(ch->batch_size);
}

void sl_channel_release(sl_channel_t *ch, sl_batch_t *b) {
  if (sl_ring_push(&ch->free, b) != 0) {
    /* Surplus from an overflow burst: give the memory back. */
    atomic_fetch_sub_explicit(&ch->allocated, 1, memory_order_relaxed);
    sl_batch_free(b);
  }
}
