/*
 * state.c - the keyed-state interface (state.h): each public function is one
 * call through the instance's backend operations table. The hot path
 * (set_key, get, put, ...) compiles to a jump through the table.
 */
#include <stdio.h>
#include <stdlib.h>

#include <xxhash.h>

#include "state.h"

uint32_t sl_key_group_of(const void *key, size_t len, uint32_t max_key_groups) {
  if (!max_key_groups) return 0;
  return (uint32_t)(XXH3_64bits(key, len) % max_key_groups);
}

const char *sl_state_kind_name(uint32_t kind) {
  return kind == SL_STATE_VALUE  ? "value"
         : kind == SL_STATE_LIST ? "list"
         : kind == SL_STATE_MAP  ? "map"
                                 : "?";
}

const char *sl_keyed_state_backend(const sl_keyed_state_t *ks) {
  return ks ? ks->ops->name : "none";
}

void sl_keyed_state_free(sl_keyed_state_t *ks) {
  if (ks) ks->ops->free(ks);
}

sl_state_t *sl_keyed_state_declare(sl_keyed_state_t *ks, const char *name, sl_state_kind_t kind,
                                   int64_t ttl_ms, char *err, size_t errlen) {
  if (!ks) {
    if (err && errlen) snprintf(err, errlen, "no keyed state backend (see the log)");
    return NULL;
  }
  return ks->ops->declare(ks, name, kind, ttl_ms, err, errlen);
}

void sl_keyed_state_set_key(sl_keyed_state_t *ks, const void *key, size_t len) {
  ks->ops->set_key(ks, key, len, XXH3_64bits(key, len));
}

void sl_keyed_state_set_now(sl_keyed_state_t *ks, int64_t now_ms) { ks->ops->set_now(ks, now_ms); }

int sl_ks_get(sl_keyed_state_t *ks, sl_state_t *st, sl_bytes_t *out) {
  return ks->ops->get(ks, st, out);
}

int sl_ks_put(sl_keyed_state_t *ks, sl_state_t *st, const void *v, size_t len) {
  return ks->ops->put(ks, st, v, len);
}

int sl_ks_clear(sl_keyed_state_t *ks, sl_state_t *st) { return ks->ops->clear(ks, st); }

int sl_ks_list_append(sl_keyed_state_t *ks, sl_state_t *st, const void *v, size_t len) {
  return ks->ops->list_append(ks, st, v, len);
}

int sl_ks_list_count(sl_keyed_state_t *ks, sl_state_t *st, size_t *out) {
  return ks->ops->list_count(ks, st, out);
}

int sl_ks_list_get(sl_keyed_state_t *ks, sl_state_t *st, size_t i, sl_bytes_t *out) {
  return ks->ops->list_get(ks, st, i, out);
}

int sl_ks_list_trim_front(sl_keyed_state_t *ks, sl_state_t *st, size_t n) {
  return ks->ops->list_trim_front(ks, st, n);
}

int sl_ks_map_get(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen,
                  sl_bytes_t *out) {
  return ks->ops->map_get(ks, st, mk, mklen, out);
}

int sl_ks_map_put(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen, const void *v,
                  size_t len) {
  return ks->ops->map_put(ks, st, mk, mklen, v, len);
}

int sl_ks_map_remove(sl_keyed_state_t *ks, sl_state_t *st, const void *mk, size_t mklen) {
  return ks->ops->map_remove(ks, st, mk, mklen);
}

int sl_ks_map_next(sl_keyed_state_t *ks, sl_state_t *st, size_t *cursor, sl_bytes_t *mk,
                   sl_bytes_t *v) {
  return ks->ops->map_next(ks, st, cursor, mk, v);
}

int sl_ks_scan(sl_keyed_state_t *ks, sl_state_t *st, sl_state_scan_fn fn, void *arg) {
  if (!ks || !fn) return SL_EINVAL;
  return ks->ops->scan(ks, st, fn, arg);
}

uint64_t sl_keyed_state_entries(const sl_keyed_state_t *ks) {
  return ks ? ks->ops->entries(ks) : 0;
}

uint64_t sl_keyed_state_bytes(const sl_keyed_state_t *ks) { return ks ? ks->ops->bytes(ks) : 0; }

sl_state_snapshot_t *sl_keyed_state_snapshot_begin(sl_keyed_state_t *ks) {
  return ks ? ks->ops->snapshot_begin(ks) : NULL;
}

int sl_state_snapshot_write(sl_state_snapshot_t *snap, sl_buf_t *out, char *err, size_t errlen) {
  if (!snap || !out) {
    if (err && errlen) snprintf(err, errlen, "no snapshot or no output buffer");
    return -1;
  }
  return snap->ops->write(snap, out, err, errlen);
}

int sl_state_snapshot_has_dir(const sl_state_snapshot_t *snap) {
  return snap && snap->ops->write_dir != NULL;
}

int sl_state_snapshot_write_dir(sl_state_snapshot_t *snap, const char *dir, sl_state_file_t **files,
                                uint32_t *n, char *err, size_t errlen) {
  *files = NULL;
  *n = 0;
  if (!snap || !snap->ops->write_dir) {
    if (err && errlen) snprintf(err, errlen, "this snapshot cannot be written as a directory");
    return -1;
  }
  return snap->ops->write_dir(snap, dir, files, n, err, errlen);
}

void sl_state_files_free(sl_state_file_t *files, uint32_t n) {
  if (!files) return;
  for (uint32_t i = 0; i < n; i++) free(files[i].name);
  free(files);
}

void sl_state_snapshot_release(sl_state_snapshot_t *snap) {
  if (snap) snap->ops->release(snap);
}

int sl_keyed_state_restore(sl_keyed_state_t *ks, const void *data, size_t len, char *err,
                           size_t errlen) {
  if (!ks || (!data && len)) {
    if (err && errlen) snprintf(err, errlen, "no keyed state or no data");
    return -1;
  }
  return ks->ops->restore(ks, data, len, err, errlen);
}

int sl_keyed_state_restore_dir(sl_keyed_state_t *ks, const char *dir, uint32_t src_begin,
                               uint32_t src_end, char *err, size_t errlen) {
  if (!ks || !dir) {
    if (err && errlen) snprintf(err, errlen, "no keyed state or no directory");
    return -1;
  }
  if (ks->ops->restore_dir) return ks->ops->restore_dir(ks, dir, src_begin, src_end, err, errlen);
  /* Another backend: read the entries of our range through RocksDB into a
   * portable blob, and restore that. */
  uint32_t b = ks->kg_begin > src_begin ? ks->kg_begin : src_begin;
  uint32_t e = ks->kg_end < src_end ? ks->kg_end : src_end;
  if (b >= e) return 0; /* nothing of ours there */
  sl_buf_t blob = {0};
  int rc = sl_state_rocksdb_export(dir, ks->max_kg, b, e, &blob, err, errlen);
  if (rc == 0) rc = ks->ops->restore(ks, blob.data, blob.len, err, errlen);
  sl_buf_free(&blob);
  return rc;
}
