/*
 * channel.h - a bounded single-producer/single-consumer channel of batches.
 *
 * Two lock-free rings: `full` carries batches from the producer task to the
 * consumer task; `free` carries emptied batches back, so batches are
 * recycled instead of allocated. The capacity of `full` is the channel's
 * credit: when it is full the producer has no credit and must not take more
 * input (backpressure). Exactly one thread produces and one consumes at any
 * time (the tasks' workers); no locks anywhere.
 */
#ifndef SL_CHANNEL_H
#define SL_CHANNEL_H

#include <stdatomic.h>
#include <stdint.h>

#include "batch.h"

#define SL_CACHELINE 64

/* An SPSC ring of pointers. Indices grow forever; slot = index & mask. */
typedef struct sl_ring {
  _Alignas(SL_CACHELINE) _Atomic uint64_t head; /* next slot to read (consumer) */
  uint64_t cached_tail;                         /* consumer's last view of tail */
  _Alignas(SL_CACHELINE) _Atomic uint64_t tail; /* next slot to write (producer) */
  uint64_t cached_head;                         /* producer's last view of head */
  _Alignas(SL_CACHELINE) uint64_t mask;
  uint64_t capacity;
  void **slots;
} sl_ring_t;

void sl_ring_init(sl_ring_t *r, uint32_t capacity); /* capacity rounded up to a power of 2 */
void sl_ring_destroy(sl_ring_t *r);

static inline int sl_ring_push(sl_ring_t *r, void *item) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t - r->cached_head >= r->capacity) {
    r->cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (t - r->cached_head >= r->capacity) return SL_AGAIN;
  }
  r->slots[t & r->mask] = item;
  atomic_store_explicit(&r->tail, t + 1, memory_order_release);
  return 0;
}

static inline void *sl_ring_pop(sl_ring_t *r) {
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  if (h == r->cached_tail) {
    r->cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h == r->cached_tail) return NULL;
  }
  void *item = r->slots[h & r->mask];
  atomic_store_explicit(&r->head, h + 1, memory_order_release);
  return item;
}

/* Producer side: is there room for one more item? */
static inline int sl_ring_can_push(sl_ring_t *r) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t - r->cached_head < r->capacity) return 1;
  r->cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
  return t - r->cached_head < r->capacity;
}

/* Consumer side: is an item waiting? */
static inline int sl_ring_can_pop(sl_ring_t *r) {
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  if (h != r->cached_tail) return 1;
  r->cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  return h != r->cached_tail;
}

/* Any thread, approximate: items in the ring (for metrics). */
static inline uint64_t sl_ring_size(sl_ring_t *r) {
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  return t >= h ? t - h : 0;
}

typedef struct sl_channel {
  sl_ring_t full;
  sl_ring_t free;
  uint32_t batch_size;
  /* Batches created for this channel and not yet freed; bounded by the
   * ring's capacity plus the batches the two ends hold. Atomic: the consumer
   * frees surplus batches. */
  _Atomic uint32_t allocated;
  uint32_t id;
  uint32_t kind;   /* sl_edge_kind_t of the edge it belongs to (for the graph) */
  uint32_t producer_slot; /* index among the producer task's outputs */
  void *producer; /* the producing task (opaque to the channel) */
  void *consumer; /* the consuming task */
} sl_channel_t;

sl_channel_t *sl_channel_new(uint32_t capacity, uint32_t batch_size);
/** Frees every batch still in the channel. Call when neither end runs. */
void sl_channel_free(sl_channel_t *ch);

/** Producer: an empty batch, recycled when possible. Never NULL. */
sl_batch_t *sl_channel_acquire(sl_channel_t *ch);
/** Producer: hand a batch to the consumer. 0, or SL_AGAIN when full (no credit). */
static inline int sl_channel_push(sl_channel_t *ch, sl_batch_t *b) { return sl_ring_push(&ch->full, b); }
/** Producer: does the channel have credit for one more batch? */
static inline int sl_channel_has_credit(sl_channel_t *ch) { return sl_ring_can_push(&ch->full); }
/** Consumer: the next batch, or NULL. */
static inline sl_batch_t *sl_channel_pop(sl_channel_t *ch) { return (sl_batch_t *)sl_ring_pop(&ch->full); }
static inline int sl_channel_has_input(sl_channel_t *ch) { return sl_ring_can_pop(&ch->full); }
/** Consumer: give a processed batch back for reuse. */
void sl_channel_release(sl_channel_t *ch, sl_batch_t *b);

#endif
