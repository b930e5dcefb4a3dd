/*
 * state_blob.h - reading the portable keyed-state snapshot format
 * ("SLKS-MEM"; the layout is described at the top of state_mem.c). Both
 * backends restore from it; this file holds what is common: bounds-checked
 * little-endian reads with messages that name the byte offset, the header,
 * the table of states, the key-group framing (groups outside the
 * instance's range are skipped) and the checksum. What a backend does with
 * a state or an entry it supplies as callbacks.
 */
#ifndef SL_STATE_BLOB_H
#define SL_STATE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice.h"

#define SL_BLOB_MAGIC "SLKS-MEM"
#define SL_BLOB_VERSION 1u
#define SL_BLOB_MAX_STATES 1024u
#define SL_BLOB_MAX_NAME 1024u

/* A reader over [pos, end) of p; failures write err and return -1. */
typedef struct sl_blob_rd {
  const unsigned char *p;
  size_t pos, end;   /* absolute offsets into p */
  const char *scope; /* "the snapshot" or "key group N" */
  char *err;
  size_t errlen;
} sl_blob_rd_t;

int sl_blob_fail(sl_blob_rd_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sl_blob_need(sl_blob_rd_t *r, size_t n, const char *what);
int sl_blob_u32(sl_blob_rd_t *r, uint32_t *v, const char *what);
int sl_blob_u64(sl_blob_rd_t *r, uint64_t *v, const char *what);
/* u32 length, then that many bytes. */
int sl_blob_bytes(sl_blob_rd_t *r, const unsigned char **b, uint32_t *len, const char *what);

/* One state of the snapshot's table, validated (id, kind, TTL, name, unique). */
typedef struct sl_blob_state {
  uint32_t kind;
  int64_t ttl;
  const unsigned char *name;
  uint32_t nlen;
  struct sl_state *bound; /* set by the backend when applying */
} sl_blob_state_t;

/**
 * The check every backend's state callback starts with: a snapshot state
 * whose name the instance already has (`have`, NULL = none) must have its
 * kind. `declared`: `have` was declared (else it came from an earlier
 * restore). 0, or -1 after sl_blob_fail.
 */
int sl_blob_check_kind(sl_blob_rd_t *r, const sl_blob_state_t *st, const struct sl_state *have,
                       bool declared);

typedef struct sl_blob_reader {
  uint32_t max_kg, kg_begin, kg_end;
  void *ctx;
  /* State i (starting at byte `at`): check it against the backend's states;
   * when applying, set st->bound. 0, or -1 after sl_blob_fail. */
  int (*state)(void *ctx, sl_blob_rd_t *r, uint32_t i, sl_blob_state_t *st, size_t at, bool apply);
  /* One entry of key group g (in range), read from r. 0 or -1. */
  int (*entry)(void *ctx, sl_blob_rd_t *r, const sl_blob_state_t *states, uint32_t nstates,
               uint32_t g, bool apply);
  /* Optional, when applying: after each entry (last = false) and once at the end (last = true). */
  int (*applied)(void *ctx, bool last, char *err, size_t errlen);
} sl_blob_reader_t;

/**
 * Parse a snapshot. apply = false checks everything (checksum included)
 * and changes nothing; apply = true (after a successful check) feeds the
 * states and the entries of the reader's key groups to the callbacks.
 * *entries (may be NULL) gets the number of entries in range.
 */
int sl_blob_parse(const sl_blob_reader_t *rd, const unsigned char *data, size_t len, bool apply,
                  size_t *entries, char *err, size_t errlen);

#endif
