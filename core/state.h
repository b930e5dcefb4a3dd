/*
 * state.h - keyed state of one operator instance, behind one interface for
 * every backend: memory (state_mem.c) and RocksDB (state_rocksdb.c).
 *
 * Dispatch: every sl_keyed_state_t starts with the backend's operations
 * table (struct sl_state_backend_ops); the public functions below (state.c)
 * are one indirect call into it, and so are a snapshot's (struct
 * sl_state_snapshot_ops).
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

/* A file of a snapshot written as a directory (sl_state_snapshot_write_dir). */
typedef struct sl_state_file {
  char *name;    /* inside the directory */
  uint64_t size;
  uint64_t hash; /* XXH3-64 of the contents */
} sl_state_file_t;

/* One entry seen by sl_ks_scan: the key it belongs to, its map key (map
 * states; NULL/0 for value and list states) and its value (for a list: one
 * element, in list order). Return 0 to go on, non-zero to stop the scan. */
typedef int (*sl_state_scan_fn)(void *arg, const void *key, size_t key_len, const void *mk,
                                size_t mk_len, const void *value, size_t value_len);

/* What a backend implements (see the functions of the same names below). */
typedef struct sl_state_backend_ops {
  const char *name; /* "memory", "rocksdb" */
  void (*free)(sl_keyed_state_t *ks);
  sl_state_t *(*declare)(sl_keyed_state_t *ks, const char *name, sl_state_kind_t kind,
                         int64_t ttl_ms, char *err, size_t errlen);
  /* hash = XXH3-64 of the key, computed once by state.c: the key group is
   * hash % max_key_groups, and a backend may reuse it for its own lookups. */
  void (*set_key)(sl_keyed_state_t *ks, const void *key, size_t len, uint64_t hash);
  void (*set_now)(sl_keyed_state_t *ks, int64_t now_ms);
  int (*get)(sl_keyed_state_t *ks, sl_state_t *st, sl_bytes_t *out);
  int (*put)(sl_keyed_state_t *ks, sl_state_t *st, const void *v, size_t len);
  int (*clear)(sl_keyed_state_t *ks, sl_state_t *st);
  int (*list_append)(sl_keyed_state_t *ks, sl_state_t *st, const void *v, size_t len);
  int (*list_count)(sl_keyed_state_t *ks, sl_state_t *st, size_t *out);
  int (*list_get)(sl_keyed_state_t *ks, sl_state_t *st, size_t i, sl_bytes_t *out);
  int (*list_trim_front)(sl_keyed_state_t *ks, sl_state_t *st, size_t n);
  int (*map_get)(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen,
                 sl_bytes_t *out);
  int (*map_put)(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen,
                 const void *v, size_t len);
  int (*map_remove)(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen);
  int (*map_next)(sl_keyed_state_t *ks, sl_state_t *st, size_t *cursor, sl_bytes_t *mk,
                  sl_bytes_t *v);
  /* fn is not NULL (state.c checks); the backend checks st as for the other ops. */
  int (*scan)(sl_keyed_state_t *ks, sl_state_t *st, sl_state_scan_fn fn, void *arg);
  uint64_t (*entries)(const sl_keyed_state_t *ks);
  uint64_t (*bytes)(const sl_keyed_state_t *ks);
  sl_state_snapshot_t *(*snapshot_begin)(sl_keyed_state_t *ks);
  int (*restore)(sl_keyed_state_t *ks, const void *data, size_t len, char *err, size_t errlen);
  /* NULL: state.c reads the directory through RocksDB and restores the blob. */
  int (*restore_dir)(sl_keyed_state_t *ks, const char *dir, uint32_t src_begin, uint32_t src_end,
                     char *err, size_t errlen);
} sl_state_backend_ops_t;

/* The head of every backend's instance (a backend's struct embeds it first). */
struct sl_keyed_state {
  const sl_state_backend_ops_t *ops;
  uint32_t max_kg, kg_begin, kg_end; /* key groups [kg_begin, kg_end) of max_kg */
};

typedef struct sl_state_snapshot_ops {
  int (*write)(sl_state_snapshot_t *snap, sl_buf_t *out, char *err, size_t errlen);
  /* NULL: the backend writes blobs only. */
  int (*write_dir)(sl_state_snapshot_t *snap, const char *dir, sl_state_file_t **files,
                   uint32_t *n, char *err, size_t errlen);
  void (*release)(sl_state_snapshot_t *snap);
} sl_state_snapshot_ops_t;

struct sl_state_snapshot {
  const sl_state_snapshot_ops_t *ops;
};

/** "value", "list", "map" (or "?"), for messages. */
const char *sl_state_kind_name(uint32_t kind);

/** The key group of a key (same function as the key_by router). */
uint32_t sl_key_group_of(const void *key, size_t len, uint32_t max_key_groups);

/** In-memory keyed state for key groups [kg_begin, kg_end) of max_key_groups. */
sl_keyed_state_t *sl_keyed_state_new_memory(uint32_t max_key_groups, uint32_t kg_begin,
                                            uint32_t kg_end);
/**
 * RocksDB keyed state (state_rocksdb.c) for key groups [kg_begin, kg_end) of
 * max_key_groups (at most 32768), in the working directory `dir` (created;
 * whatever it held is removed: state comes from checkpoints only; locked
 * against a second process), removed again by free. NULL dir: a fresh
 * temporary directory. NULL with a message.
 */
sl_keyed_state_t *sl_keyed_state_new_rocksdb(const char *dir, uint32_t max_key_groups,
                                             uint32_t kg_begin, uint32_t kg_end, char *err,
                                             size_t errlen);
/** "memory" or "rocksdb". */
const char *sl_keyed_state_backend(const sl_keyed_state_t *ks);
/* NULL ok. A snapshot not yet released stays valid: it keeps what it needs. */
void sl_keyed_state_free(sl_keyed_state_t *ks);

/**
 * Declare a state. Same name again: the same handle if the kind matches
 * (TTL updated), else NULL with a message. A state restored from a snapshot
 * is bound to the declaration with its name (kind must match).
 */
sl_state_t *sl_keyed_state_declare(sl_keyed_state_t *ks, const char *name, sl_state_kind_t kind,
                                   int64_t ttl_ms, char *err, size_t errlen);

/**
 * Current key and processing time for the calls that follow. `key` must stay
 * valid until the next set_key (the host points it at the input record), and
 * its key group (sl_key_group_of) must lie in the instance's range. The key
 * is hashed once here, for the key group and the backend's lookups.
 */
void sl_keyed_state_set_key(sl_keyed_state_t *ks, const void *key, size_t len);
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

/**
 * Task thread: call fn for every live (not expired) entry of state st,
 * over all keys of the instance, in no particular order. fn must not call
 * back into ks. The current key afterwards is unspecified (set it again).
 * Returns 0, the non-zero value fn stopped with, or a negative SL_ error.
 *
 * For rebuilding what lives outside the state after a restore (the timer
 * queues: timers are a map state of each key). Needs no current key. Sees
 * what restore put there (only the instance's key groups) and what was
 * written since; an entry expired at the processing time of the last
 * set_now is skipped, exactly as get would skip it. The pointers given to fn
 * are valid during that call only. SL_EINVAL for a NULL ks or fn, or an st
 * that is not a state of ks.
 */
int sl_ks_scan(sl_keyed_state_t *ks, sl_state_t *st, sl_state_scan_fn fn, void *arg);

/** Live entries (keys with some state, over all states) and payload bytes, for metrics
 * (exact for the memory backend; RocksDB's estimates for the RocksDB backend). */
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

/** Can this snapshot be written as a directory of files (RocksDB: incremental)? */
int sl_state_snapshot_has_dir(const sl_state_snapshot_t *snap);
/**
 * Instead of sl_state_snapshot_write, on the writer thread: the frozen
 * contents as files in `dir` (created here, must not exist). Files that did
 * not change since an earlier snapshot of the instance are hard links to the
 * same inode (so checkpoints share them), new ones are fsynced, and so is
 * `dir`. Lists them in *files (allocated; sl_state_files_free). 0, or -1 with
 * a message (the caller removes `dir`).
 */
int sl_state_snapshot_write_dir(sl_state_snapshot_t *snap, const char *dir,
                                sl_state_file_t **files, uint32_t *n, char *err, size_t errlen);
void sl_state_files_free(sl_state_file_t *files, uint32_t n);

/**
 * Before any declare: add the entries of a snapshot (written by any
 * instance of the same node, with the same max_key_groups) whose key group
 * lies in this instance's range. Call once per snapshot file of the node.
 * Corrupt or truncated data: -1 with a message, never a crash.
 */
int sl_keyed_state_restore(sl_keyed_state_t *ks, const void *data, size_t len, char *err,
                           size_t errlen);
/**
 * The same from a directory snapshot (sl_state_snapshot_write_dir; its files
 * already verified) of an instance that owned key groups [src_begin,
 * src_end): the entries of this instance's range. The directory is only
 * read. Any backend (another backend reads it through RocksDB). -1 with a
 * message.
 */
int sl_keyed_state_restore_dir(sl_keyed_state_t *ks, const char *dir, uint32_t src_begin,
                               uint32_t src_end, char *err, size_t errlen);

/**
 * Read a directory snapshot and append the entries of key groups [kg_begin,
 * kg_end) to `out` as a blob in the portable format (what
 * sl_state_snapshot_write writes). state_rocksdb.c. -1 with a message.
 */
int sl_state_rocksdb_export(const char *dir, uint32_t max_key_groups, uint32_t kg_begin,
                            uint32_t kg_end, sl_buf_t *out, char *err, size_t errlen);

#endif
