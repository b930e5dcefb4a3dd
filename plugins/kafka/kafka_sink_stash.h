/*
 * kafka_sink_stash.h - records a kafka_sink task cannot hand to librdkafka
 * yet, kept in order and sent by a thread of their own, so that the worker
 * never waits. Two reasons keep a record here:
 *
 *  - room: librdkafka's queue was full. The sink pauses its input
 *    (sl_input_pause) until the stash has sent everything.
 *  - the gate (exactly_once): from a barrier to the end of its commit, the
 *    records after the barrier must not join the transaction being
 *    committed. They wait behind the gate, and the input keeps flowing
 *    until they take more than the sink's limit.
 *
 * While a stash holds records (or its gate is closed), the task sends
 * nothing directly: every new record joins the stash, so the order is kept.
 * The stash's thread calls `drained` once it has sent everything.
 */
#ifndef SLUICE_KAFKA_SINK_STASH_H
#define SLUICE_KAFKA_SINK_STASH_H

#include <stddef.h>
#include <stdint.h>

#include "kafka.h"

typedef struct kstash kstash_t;

/* Queues one record: 0 queued, 1 the queue is full (tried again later), -1
 * failed for good (the callee reports it; the record is dropped). On the
 * stash's thread, or on the task's thread inside kstash_add; one call at a
 * time, without the stash's lock. */
typedef int (*kstash_send_fn)(void *arg, const char *topic, const sl_record_t *r, uintptr_t tag);
/* The stash has nothing left to send: on whichever thread emptied it (the
 * stash's, the task's in kstash_add, the one opening the gate), with the
 * stash's lock held; called again from time to time while it stays empty.
 * It must not call back into the stash. */
typedef void (*kstash_drained_fn)(void *arg);

/* What kstash_add did. */
enum {
  KSTASH_EMPTY = 0,  /* nothing kept: send the record directly */
  KSTASH_ROOM = 1,   /* kept, behind records waiting for queue room */
  KSTASH_GATED = 2,  /* kept behind the closed gate */
};

/* A stash and its thread. poll_rk, if not NULL, is polled by that thread
 * (rd_kafka_poll: delivery reports are served there). NULL when the thread
 * cannot start. */
kstash_t *kstash_new(rd_kafka_t *poll_rk, kstash_send_fn send, kstash_drained_fn drained,
                     void *arg);
/* Stops the thread (what is still stashed is dropped: close() after a
 * failure) and frees the stash. */
void kstash_free(kstash_t *s);
/* If the stash holds records or its gate is closed, appends a copy of r
 * (after them) and returns KSTASH_ROOM or KSTASH_GATED; returns
 * KSTASH_EMPTY otherwise (send directly). SL_ENOMEM when out of memory.
 * topic is NULL for the sink's fixed topic. force: append even when empty
 * (the direct send just found the queue full). The task's thread only. */
int kstash_add(kstash_t *s, const char *topic, const sl_record_t *r, uintptr_t tag, int force);
/* Does the stash hold records, or is its gate closed? (any thread) */
int kstash_busy(kstash_t *s);
/* Does it hold no record? (any thread; takes the lock) */
int kstash_empty(kstash_t *s);
/* Bytes the stash's buffers hold since it was last empty (any thread). */
size_t kstash_bytes(kstash_t *s);
/* Closes the gate behind what the stash holds now: the thread sends those
 * records, and keeps every record added later until kstash_open_gate.
 * On the task's thread (its snapshot). */
void kstash_close_gate(kstash_t *s);
/* Waits until every record in front of the gate is handed to librdkafka:
 * 0, or -1 after timeout_ms. (0 at once when the gate is open and the
 * stash empty.) */
int kstash_wait_gate(kstash_t *s, int64_t timeout_ms);
/* Opens the gate: the records behind it are sent, in order (any thread). */
void kstash_open_gate(kstash_t *s);

#endif /* SLUICE_KAFKA_SINK_STASH_H */
