/*
 * batch.h - a batch of records with the arena that holds their bytes.
 *
 * Records cross task boundaries only in batches. A batch owns its memory:
 * an array of sl_record_t plus a chunked arena for keys, values and headers.
 * Appending copies a record in; resetting keeps the memory, so a recycled
 * batch costs no malloc (chunks are never moved, so record pointers stay
 * valid while the batch fills). Control messages (end of input, watermarks
 * for channels without data, checkpoint barriers) travel in-band as batches
 * of another kind, so they keep their order with the data.
 */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice.h"

typedef enum sl_batch_kind {
  SL_BATCH_DATA = 0,
  SL_BATCH_END = 1, /* the producer has no more records for this channel */
  SL_BATCH_BARRIER = 2, /* checkpoint barrier `ckpt_id`: records before it belong to the checkpoint */
  SL_BATCH_WATERMARK = 3 /* no records: `wm` (and `idle`) for a channel that got no data batch */
} sl_batch_kind_t;

/* Per-record flags carried beside the records (internal, not in the SDK). */
#define SL_REC_KEY_ERROR 0x1u /* key_by could not extract the key: the consumer applies on_error */

typedef struct sl_arena_chunk {
  struct sl_arena_chunk *next;
  size_t cap;
  size_t used;
  unsigned char data[];
} sl_arena_chunk_t;

typedef struct sl_batch {
  sl_batch_kind_t kind;
  uint32_t count;
  uint64_t ckpt_id; /* SL_BATCH_BARRIER */
  /* DATA and WATERMARK: the producer's watermark once these records are in
   * (stamped when the batch is sealed; see "Watermarks" in task.c). */
  int64_t wm;
  bool idle; /* WATERMARK: the producer is idle (no data, no progress) */
  uint32_t capacity;
  sl_record_t *records;
  uint8_t *flags;
  sl_arena_chunk_t *chunks;  /* first chunk */
  sl_arena_chunk_t *current; /* chunk being filled */
  size_t bytes;              /* payload bytes appended (keys, values, headers) */
  struct sl_batch *next;     /* link for the owner's pending list */
} sl_batch_t;

/** A batch for up to `capacity` records. Aborts on out of memory (set-up path). */
sl_batch_t *sl_batch_new(uint32_t capacity);
void sl_batch_free(sl_batch_t *b);
/** Empty the batch, keeping its memory; kind back to DATA. */
void sl_batch_reset(sl_batch_t *b);
static inline int sl_batch_full(const sl_batch_t *b) { return b->count >= b->capacity; }
/**
 * Copy a record into the batch. `key`/`key_len` override the record's key
 * when key != NULL (key_by on a field). Returns 0, or SL_AGAIN when full.
 */
int sl_batch_append(sl_batch_t *b, const sl_record_t *rec, const void *key, size_t key_len,
                    uint8_t flags);

#endif
