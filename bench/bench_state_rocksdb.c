/*
 * bench_state_rocksdb - the RocksDB keyed-state backend (core/state_rocksdb.c).
 *
 *  1. Hot path: value-state get and put on existing keys (16-byte keys,
 *     100-byte values, uniformly random access from a fixed-seed PRNG),
 *     through sl_keyed_state_set_key + sl_ks_get / sl_ks_put, against a bare
 *     RocksDB doing the same work with the C API: rocksdb_get (returns a
 *     malloc'd copy, freed) and rocksdb_put, on a database opened with the
 *     backend's own options (sl_state_rocksdb_options: same block cache,
 *     filters, write buffers; WAL off) and filled with the same keys and
 *     values. Both are flushed and fully compacted before measuring. The
 *     key group is computed once per key up front, as the host does.
 *  2. Snapshots: the task-thread pause of snapshot_begin, a directory
 *     snapshot (incremental checkpoint) first and after 1% of the keys
 *     changed (files written, bytes new), a blob snapshot (savepoint), and
 *     restores (directory with the same key groups: linked; into 4 instances:
 *     rows copied).
 *
 * Hot-path figures are CPU time of the calling thread, best of 10 short
 * alternated runs of each side (RocksDB's background threads are not
 * counted, on either side).
 *
 * usage: bench_state_rocksdb [keys] [ops] [dir]
 *   default 1M keys, 2M ops per figure, databases under $TMPDIR (or /tmp)
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "state.h"
#include "state_rocksdb.h"
#include "util.h"
#include "bench_keys.h"

#define VALUE_LEN 100
#define MAX_KG 128
#define ROUNDS 10





static void die(const char *what, const char *err) {
  fprintf(stderr, "bench_state_rocksdb: %s: %s\n", what, err ? err : "failed");
  exit(1);
}

/* ------------------------------------------------------------ the sides */

static double run_state_get(sl_keyed_state_t *ks, sl_state_t *st, const keys_t *keys, uint64_t ops,
                            uint64_t *sum) {
  uint64_t s = 0, t0 = cpu_ns();
  for (uint64_t o = 0; o < ops; o++) {
    size_t i = (size_t)(next_rand() % keys->n);
    sl_keyed_state_set_key(ks, keys->k[i], KEY_LEN);
    sl_bytes_t b;
    if (sl_ks_get(ks, st, &b) == 0) s += b.len + ((const unsigned char *)b.ptr)[0];
  }
  uint64_t t1 = cpu_ns();
  *sum += s;
  return (double)(t1 - t0) / (double)ops;
}

static double run_raw_get(rocksdb_t *db, const rocksdb_readoptions_t *ro, const keys_t *keys,
                          uint64_t ops, uint64_t *sum) {
  uint64_t s = 0, t0 = cpu_ns();
  for (uint64_t o = 0; o < ops; o++) {
    size_t i = (size_t)(next_rand() % keys->n);
    size_t vl = 0;
    char *e = NULL;
    char *v = rocksdb_get(db, ro, (const char *)keys->k[i], KEY_LEN, &vl, &e);
    if (e) die("rocksdb_get", e);
    if (v) s += vl + (unsigned char)v[0];
    free(v);
  }
  uint64_t t1 = cpu_ns();
  *sum += s;
  return (double)(t1 - t0) / (double)ops;
}

static double run_state_put(sl_keyed_state_t *ks, sl_state_t *st, const keys_t *keys,
                            uint64_t ops) {
  unsigned char v[VALUE_LEN];
  memset(v, 'w', sizeof(v));
  uint64_t t0 = cpu_ns();
  for (uint64_t o = 0; o < ops; o++) {
    size_t i = (size_t)(next_rand() % keys->n);
    v[0] = (unsigned char)o;
    sl_keyed_state_set_key(ks, keys->k[i], KEY_LEN);
    if (sl_ks_put(ks, st, v, VALUE_LEN) != 0) die("sl_ks_put", NULL);
  }
  return (double)(cpu_ns() - t0) / (double)ops;
}

static double run_raw_put(rocksdb_t *db, const rocksdb_writeoptions_t *wo, const keys_t *keys,
                          uint64_t ops) {
  unsigned char v[VALUE_LEN];
  memset(v, 'w', sizeof(v));
  uint64_t t0 = cpu_ns();
  for (uint64_t o = 0; o < ops; o++) {
    size_t i = (size_t)(next_rand() % keys->n);
    v[0] = (unsigned char)o;
    char *e = NULL;
    rocksdb_put(db, wo, (const char *)keys->k[i], KEY_LEN, (const char *)v, VALUE_LEN, &e);
    if (e) die("rocksdb_put", e);
  }
  return (double)(cpu_ns() - t0) / (double)ops;
}

static sl_keyed_state_t *fill_state(const keys_t *keys, const char *dir, sl_state_t **st_out) {
  char err[512];
  sl_keyed_state_t *ks = sl_keyed_state_new_rocksdb(dir, MAX_KG, 0, MAX_KG, err, sizeof(err));
  if (!ks) die("sl_keyed_state_new_rocksdb", err);
  sl_state_t *st = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 0, err, sizeof(err));
  if (!st) die("declare", err);
  unsigned char v[VALUE_LEN];
  memset(v, 'v', sizeof(v));
  for (size_t i = 0; i < keys->n; i++) {
    memcpy(v, &i, sizeof(i));
    sl_keyed_state_set_key(ks, keys->k[i], KEY_LEN);
    if (sl_ks_put(ks, st, v, VALUE_LEN) != 0) die("fill", NULL);
  }
  *st_out = st;
  return ks;
}

static void bench_hot_path(const char *base, size_t nkeys, uint64_t ops) {
  keys_t keys;
  keys_make(&keys, nkeys, 7);
  char *sdir = sl_xasprintf("%s/backend", base), *rdir = sl_xasprintf("%s/raw", base);
  sl_state_t *st;
  uint64_t t0 = sl_mono_ns();
  sl_keyed_state_t *ks = fill_state(&keys, sdir, &st);
  double fill_state_s = (double)(sl_mono_ns() - t0) / 1e9;
  char err[512];
  if (sl_state_rocksdb_compact(ks, err, sizeof(err)) != 0) die("compact", err);

  rocksdb_options_t *o = sl_state_rocksdb_options();
  char *e = NULL;
  rocksdb_t *db = rocksdb_open(o, rdir, &e);
  if (e) die("rocksdb_open", e);
  rocksdb_writeoptions_t *wo = sl_state_rocksdb_writeoptions();
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  unsigned char v[VALUE_LEN];
  memset(v, 'v', sizeof(v));
  t0 = sl_mono_ns();
  for (size_t i = 0; i < nkeys; i++) {
    memcpy(v, &i, sizeof(i));
    rocksdb_put(db, wo, (const char *)keys.k[i], KEY_LEN, (const char *)v, VALUE_LEN, &e);
    if (e) die("fill raw", e);
  }
  double fill_raw_s = (double)(sl_mono_ns() - t0) / 1e9;
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  rocksdb_flush(db, fo, &e);
  if (e) die("flush raw", e);
  rocksdb_compact_range(db, NULL, 0, NULL, 0);

  double best[4] = {1e18, 1e18, 1e18, 1e18};
  uint64_t sum = 0, chunk = ops / ROUNDS ? ops / ROUNDS : 1;
  for (int rep = 0; rep < ROUNDS; rep++) {
    double x;
    if ((x = run_raw_get(db, ro, &keys, chunk, &sum)) < best[0]) best[0] = x;
    if ((x = run_state_get(ks, st, &keys, chunk, &sum)) < best[1]) best[1] = x;
    if ((x = run_raw_put(db, wo, &keys, chunk)) < best[2]) best[2] = x;
    if ((x = run_state_put(ks, st, &keys, chunk)) < best[3]) best[3] = x;
  }
  printf(
      "value state on existing keys: %zu keys of %d bytes, %d-byte values, %llu random ops "
      "per figure, CPU ns/op (best of %d alternated runs); fill: backend %.1f s, raw %.1f s\n",
      nkeys, KEY_LEN, VALUE_LEN, (unsigned long long)ops, ROUNDS, fill_state_s, fill_raw_s);
  printf(
      "| op | sl_ks_* (set_key + call), RocksDB backend | raw RocksDB C API | backend / raw |\n"
      "|---|---:|---:|---:|\n");
  printf("| get | %.0f | %.0f | %.2fx |\n", best[1], best[0], best[1] / best[0]);
  printf("| put | %.0f | %.0f | %.2fx |\n", best[3], best[2], best[3] / best[2]);
  printf("(checksum %llu)\n\n", (unsigned long long)(sum & 0xffff));
  rocksdb_flushoptions_destroy(fo);
  rocksdb_readoptions_destroy(ro);
  rocksdb_writeoptions_destroy(wo);
  rocksdb_close(db);
  rocksdb_options_destroy(o);
  sl_keyed_state_free(ks);
  char *cmd = sl_xasprintf("rm -rf '%s'", rdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", rdir);
  free(cmd);
  free(sdir);
  free(rdir);
  keys_free(&keys);
}

/* ------------------------------------------------------------ snapshots */

static uint64_t dir_bytes(const sl_state_file_t *f, uint32_t n) {
  uint64_t b = 0;
  for (uint32_t i = 0; i < n; i++) b += f[i].size;
  return b;
}

/* Bytes of files in `cur` whose name is not in `prev` (new in this snapshot). */
static uint64_t new_bytes(const sl_state_file_t *prev, uint32_t np, const sl_state_file_t *cur,
                          uint32_t nc) {
  uint64_t b = 0;
  for (uint32_t i = 0; i < nc; i++) {
    bool old = false;
    for (uint32_t j = 0; j < np && !old; j++) old = strcmp(prev[j].name, cur[i].name) == 0;
    if (!old) b += cur[i].size;
  }
  return b;
}

static void bench_snapshots(const char *base, size_t nkeys) {
  keys_t keys;
  keys_make(&keys, nkeys, 11);
  char *sdir = sl_xasprintf("%s/snapshots", base);
  sl_state_t *st;
  sl_keyed_state_t *ks = fill_state(&keys, sdir, &st);
  char err[512];
  double mb = (double)nkeys * (KEY_LEN + VALUE_LEN) / 1e6;

  /* First directory snapshot. */
  uint64_t t0 = sl_mono_ns();
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(ks);
  double begin_us = (double)(sl_mono_ns() - t0) / 1e3;
  if (!s) die("snapshot_begin", NULL);
  char *d1 = sl_xasprintf("%s/chk-1", base), *d2 = sl_xasprintf("%s/chk-2", base);
  sl_state_file_t *f1, *f2;
  uint32_t n1, n2;
  t0 = sl_mono_ns();
  if (sl_state_snapshot_write_dir(s, d1, &f1, &n1, err, sizeof(err)) != 0) die("write_dir", err);
  double dir1_ms = (double)(sl_mono_ns() - t0) / 1e6;
  sl_state_snapshot_release(s);

  /* 1% of the keys change, half of them during the write (put back). */
  unsigned char v[VALUE_LEN];
  memset(v, 'c', sizeof(v));
  size_t changed = nkeys / 100 ? nkeys / 100 : 1;
  for (size_t i = 0; i < changed / 2; i++) {
    size_t k = (size_t)(next_rand() % nkeys);
    sl_keyed_state_set_key(ks, keys.k[k], KEY_LEN);
    sl_ks_put(ks, st, v, VALUE_LEN);
  }
  t0 = sl_mono_ns();
  s = sl_keyed_state_snapshot_begin(ks);
  double begin2_us = (double)(sl_mono_ns() - t0) / 1e3;
  for (size_t i = 0; i < changed - changed / 2; i++) {
    size_t k = (size_t)(next_rand() % nkeys);
    sl_keyed_state_set_key(ks, keys.k[k], KEY_LEN);
    sl_ks_put(ks, st, v, VALUE_LEN);
  }
  t0 = sl_mono_ns();
  if (sl_state_snapshot_write_dir(s, d2, &f2, &n2, err, sizeof(err)) != 0) die("write_dir", err);
  double dir2_ms = (double)(sl_mono_ns() - t0) / 1e6;
  sl_state_snapshot_release(s);

  /* A blob (savepoint). */
  sl_buf_t blob = {0};
  s = sl_keyed_state_snapshot_begin(ks);
  t0 = sl_mono_ns();
  if (sl_state_snapshot_write(s, &blob, err, sizeof(err)) != 0) die("write", err);
  double blob_ms = (double)(sl_mono_ns() - t0) / 1e6;
  sl_state_snapshot_release(s);

  /* Restores of chk-2: linked into one instance, copied into four. */
  t0 = sl_mono_ns();
  sl_keyed_state_t *r = sl_keyed_state_new_rocksdb(NULL, MAX_KG, 0, MAX_KG, err, sizeof(err));
  if (!r || sl_keyed_state_restore_dir(r, d2, 0, MAX_KG, err, sizeof(err)) != 0)
    die("restore_dir", err);
  double link_ms = (double)(sl_mono_ns() - t0) / 1e6;
  sl_keyed_state_free(r);
  t0 = sl_mono_ns();
  for (uint32_t c = 0; c < 4; c++) {
    r = sl_keyed_state_new_rocksdb(NULL, MAX_KG, c * MAX_KG / 4, (c + 1) * MAX_KG / 4, err,
                                   sizeof(err));
    if (!r || sl_keyed_state_restore_dir(r, d2, 0, MAX_KG, err, sizeof(err)) != 0)
      die("restore_dir", err);
    sl_keyed_state_free(r);
  }
  double copy_ms = (double)(sl_mono_ns() - t0) / 1e6;

  printf(
      "| %zu | %.0f | %.0f / %.0f | %.0f (%.1f MB, %u files) | %.0f (%.2f MB new of %.1f) | "
      "%.0f (%.1f MB) | %.0f | %.0f |\n",
      nkeys, mb, begin_us, begin2_us, dir1_ms, (double)dir_bytes(f1, n1) / 1e6, n1, dir2_ms,
      (double)new_bytes(f1, n1, f2, n2) / 1e6, (double)dir_bytes(f2, n2) / 1e6, blob_ms,
      (double)blob.len / 1e6, link_ms, copy_ms);
  sl_state_files_free(f1, n1);
  sl_state_files_free(f2, n2);
  sl_buf_free(&blob);
  sl_keyed_state_free(ks);
  char *cmd = sl_xasprintf("rm -rf '%s' '%s'", d1, d2);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d1);
  free(cmd);
  free(d1);
  free(d2);
  free(sdir);
  keys_free(&keys);
}

int main(int argc, char **argv) {
  size_t nkeys = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
  uint64_t ops = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000000ull;
  const char *t = getenv("TMPDIR");
  char *base = argc > 3
                   ? sl_xstrdup(argv[3])
                   : sl_xasprintf("%s/bench-state-rocksdb-%d", t && *t ? t : "/tmp", (int)getpid());
  if (nkeys == 0 || ops == 0) {
    fprintf(stderr, "usage: bench_state_rocksdb [keys] [ops] [dir]\n");
    return 2;
  }
  mkdir(base, 0755);
  bench_hot_path(base, nkeys, ops);
  printf(
      "snapshots of one value state (%d-byte keys, %d-byte values); times in ms except the "
      "pauses (us)\n",
      KEY_LEN, VALUE_LEN);
  printf(
      "| keys | state MB | begin pause, us (first / later) | directory snapshot, first | "
      "directory snapshot after 1%% changed | blob snapshot | restore, linked | restore into "
      "4 instances, copied |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  bench_snapshots(base, nkeys / 10);
  bench_snapshots(base, nkeys);
  char *cmd = sl_xasprintf("rm -rf '%s'", base);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
  free(cmd);
  free(base);
  return 0;
}
