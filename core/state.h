/*
 * state.h - keyed state of one operator instance, behind one interface for
 * every backend (memory now; RocksDB next).
 *
 * The host (host_api.c) owns one sl_keyed_state_t per instance of a node
 * that has `key_by`, sets the current key before a state call, and turns the
 * SDK's sl_state_*() calls into the functions below. Only the instance's
 * task thread calls them, except where a function says otherwise.
 *
 * Layout by key group: every entry belongs to the key group of its key
 * (XXH3-64 of the key bytes modulo max_key_groups, as the key_by router
 * computes it). An instance owns the contiguous range [kg_begin, kg_end) of
 * key groups; snapshots are written grouped by key group in ascending order
 * so that a restore (maybe with another parallelism) takes exactly the groups
 * of its range from any snapshot of the same node.
 *
 * Snapshots are two-phase so that the task is paused as little as possible:
 * snapshot_begin (task thread, cheap: freezes a view, copy-on-write from
 * then on), snapshot_write (the checkpoint writer thread, while the task
 * keeps processing), snapshot_release (any thread).
 */
#ifndef SL_STATE_H
#define SL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.h"
#include "util.h"

/* A declared state (the SDK's opaque sl_state_t). */
struct sl_state {
  uint32_t id;           /* index among the instance's declared states */
  sl_state_kind_t kind;
  int64_t ttl_ms;        /* 0 = never expires */
  char *name;            /* owned */
};

typedef struct sl_keyed_state sl_keyed_state_t;
typedef struct sl_state_snapshot sl_state_snapshot_t;

/** The key group of a key (same function as the key_by router). */
uint32_t sl_key_group_of(const void *key, size_t len, uint32_t max_key_groups);

/** In-memory keyed state for key groups [kg_begin, kg_end) of max_key_groups. */
sl_keyed_state_t *sl_keyed_state_new_memory(uint32_t max_key_groups, uint32_t kg_begin,
                                            uint32_t kg_end);
void sl_keyed_state_free(sl_keyed_state_t *ks); /* NULL ok; waits for no one: release snapshots first */

/**
 * Declare a state. Same name again: the same handle if the kind matches
 * (TTL updated), else NULL with a message. A state restored from a snapshot
 * is bound to the declaration with its name (kind must match).
 */
sl_state_t *sl_keyed_state_declare(sl_keyed_state_t *ks, const char *name, sl_state_kind_t kind,
                                   int64_t ttl_ms, char *err, size_t errlen);

/**
 * Current key and processing time for the calls that follow. `key` must stay
 * valid until the next set_key (the host points it at the input record).
 * key_group must be sl_key_group_of(key) and lie in the instance's range.
 */
void sl_keyed_state_set_key(sl_keyed_state_t *ks, const void *key, size_t len, uint32_t key_group);
void sl_keyed_state_set_now(sl_keyed_state_t *ks, int64_t now_ms);

/* The SDK operations, on the current key. Return 0, SL_ENOTFOUND, SL_EINVAL
 * (wrong kind for the call), SL_ENOMEM. Bytes returned are owned by the
 * backend and valid until the next call on ks. */
int sl_ks_get(sl_keyed_state_t *ks, sl_state_t *st, sl_bytes_t *out);
int sl_ks_put(sl_keyed_state_t *ks, sl_state_t *st, const void *v, size_t len);
int sl_ks_clear(sl_keyed_state_t *ks, sl_state_t *st);
int sl_ks_list_append(sl_keyed_state_t *ks, sl_state_t *st, const void *v, size_t len);
int sl_ks_list_count(sl_keyed_state_t *ks, sl_state_t *st, size_t *out);
int sl_ks_list_get(sl_keyed_state_t *ks, sl_state_t *st, size_t i, sl_bytes_t *out);
int sl_ks_list_trim_front(sl_keyed_state_t *ks, sl_state_t *st, size_t n);
int sl_ks_map_get(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen,
                  sl_bytes_t *out);
int sl_ks_map_put(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen,
                  const void *v, size_t len);
int sl_ks_map_remove(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen);
/* SL_DONE at the end; *cursor starts at 0. */
int sl_ks_map_next(sl_keyed_state_t *ks, sl_state_t *st, size_t *cursor, sl_bytes_t *mk,
                   sl_bytes_t *v);

/** Live entries (keys with some state, over all states) and payload bytes, for metrics. */
uint64_t sl_keyed_state_entries(const sl_keyed_state_t *ks);
uint64_t sl_keyed_state_bytes(const sl_keyed_state_t *ks);

/** Task thread: freeze the current contents (cheap; see the top of this file). */
sl_state_snapshot_t *sl_keyed_state_snapshot_begin(sl_keyed_state_t *ks);
/**
 * Any one thread, concurrently with the task using ks: append the frozen
 * contents (states by name, then entries by key group, expired entries
 * left out) to `out`. 0, or -1 with a message.
 */
int sl_state_snapshot_write(sl_state_snapshot_t *snap, sl_buf_t *out, char *err, size_t errlen);
/** Any thread, once, after write (or instead of it). */
void sl_state_snapshot_release(sl_state_snapshot_t *snap);

/**
 * Before any declare: add the entries of a snapshot (written by any
 * instance of the same node, with the same max_key_groups) whose key group
 * lies in this instance's range. Call once per snapshot file of the node.
 * Corrupt or truncated data: -1 with a message, never a crash.
 */
int sl_keyed_state_restore(sl_keyed_state_t *ks, const void *data, size_t len, char *err,
                           size_t errlen);

#endif
