/*
 * kafka_sink_stash.h - the records a kafka_sink task could not queue
 * because librdkafka's queue was full, kept in order and sent by a thread
 * of their own once there is room, so that the worker never waits for it.
 *
 * While a stash holds records, the task sends nothing directly (every new
 * record joins the stash, so the order is kept) and the sink pauses its
 * input (sl_input_pause); the stash's thread calls `drained` once it has
 * sent everything, and the sink resumes its input then.
 */
#ifndef SLUICE_KAFKA_SINK_STASH_H
#define SLUICE_KAFKA_SINK_STASH_H

#include <stdint.h>

#include "kafka.h"

typedef struct kstash kstash_t;

/* Queues one record: 0 queued, 1 the queue is full (tried again later), -1
 * failed for good (the callee reports it; the record is dropped). */
typedef int (*kstash_send_fn)(void *arg, const char *topic, const sl_record_t *r, uintptr_t tag);
/* The stash has sent everything (on the stash's thread). */
typedef void (*kstash_drained_fn)(void *arg);

/* A stash and its thread. poll_rk, if not NULL, is polled by that thread
 * (rd_kafka_poll: delivery reports are served there). NULL when the thread
 * cannot start. */
kstash_t *kstash_new(rd_kafka_t *poll_rk, kstash_send_fn send, kstash_drained_fn drained,
                     void *arg);
/* Stops the thread (what is still stashed is dropped: close() after a
 * failure) and frees the stash. */
void kstash_free(kstash_t *s);
/* If the stash holds records, appends a copy of r (after them) and returns
 * 1; returns 0 when it is empty (send directly). SL_ENOMEM when out of
 * memory. topic is NULL for the sink's fixed topic. force: append even
 * when empty (the direct send just found the queue full). */
int kstash_add(kstash_t *s, const char *topic, const sl_record_t *r, uintptr_t tag, int force);
/* Does the stash hold records? (any thread) */
int kstash_busy(kstash_t *s);
/* Waits until the stash is empty: 0, or -1 after timeout_ms. */
int kstash_wait_empty(kstash_t *s, int64_t timeout_ms);

#endif /* SLUICE_KAFKA_SINK_STASH_H */
