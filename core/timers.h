/*
 * timers.h - the timer queue of one operator instance: timers by (domain,
 * timestamp, key), deduplicated, popped in timestamp order.
 *
 * Per domain (event time, processing time), items ordered by (ts, order
 * of setting) in a sorted run (appends: timers set in ascending time, the
 * common case, cost O(1)) and a 4-ary heap (the others); one
 * open-addressing hash table over the timers' slots for deduplication and
 * deletion (removal is lazy in the run and heap: see timers.c). A slot
 * keeps short keys inline, so setting a timer costs no malloc unless its
 * key is long; the arrays grow by doubling and slots are reused through a
 * free list.
 *
 * This is memory only: the host (host_time.c) also writes each timer into
 * the instance's keyed state, which is what checkpoints save and what a
 * restore rebuilds the queue from. Only the instance's task thread uses it.
 */
#ifndef SL_TIMERS_H
#define SL_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.h"

typedef struct sl_timers sl_timers_t;

sl_timers_t *sl_timers_new(void);
void sl_timers_free(sl_timers_t *q); /* NULL ok */

/** Add a timer. 1 = added, 0 = it was already there. Aborts on out of memory. */
int sl_timers_add(sl_timers_t *q, sl_time_domain_t domain, int64_t ts, const void *key,
                  size_t len);
/** Remove a timer. 0, or SL_ENOTFOUND. */
int sl_timers_remove(sl_timers_t *q, sl_time_domain_t domain, int64_t ts, const void *key,
                     size_t len);
/** Timestamp of the earliest timer of a domain, SL_TS_MAX when there is none. */
int64_t sl_timers_peek(const sl_timers_t *q, sl_time_domain_t domain);
/**
 * Remove and return the earliest timer of `domain` if its ts <= limit: 1
 * with *ts and the key (copied into the queue's scratch buffer, valid until
 * the next pop), 0 when none is due.
 */
int sl_timers_pop(sl_timers_t *q, sl_time_domain_t domain, int64_t limit, int64_t *ts,
                  const void **key, size_t *len);
/** Timers of a domain. */
size_t sl_timers_count(const sl_timers_t *q, sl_time_domain_t domain);

#endif
