/*
 * RocksDB keyed state (core/state_rocksdb.c), what is RocksDB's own:
 * directory snapshots (incremental: unchanged SST files are the same inode
 * from one snapshot to the next), consistent while the task keeps writing,
 * restored by linking (same key groups) or by copying rows (another
 * parallelism, or into the memory backend), refused restores, the working
 * directory's lock and cleanup. The operations themselves are tested in
 * test_state_rocksdb.c.
 */
#define _GNU_SOURCE
#define NEW_KS(g, b, e) sl_keyed_state_new_rocksdb(NULL, (g), (b), (e), NULL, 0)
#define EXACT_COUNTS 0
#define CORRUPT_FLIP_STRIDE 1
#define CORRUPT_ROUNDS 0
#define STATE_TEST_HELPERS_ONLY

#include "state_backend_tests.h"
#include "state_rocksdb.h"

#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static char root[512];

static int setup_root(void **st) {
  (void)st;
  snprintf(root, sizeof(root), "%s/state-rocksdb-XXXXXX", SLUICE_TEST_BINARY_DIR);
  return mkdtemp(root) ? 0 : -1;
}

static int teardown_root(void **st) {
  (void)st;
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : -1;
}

/* Write a directory snapshot of ks into root/<name>; files listed in *files. */
static void dir_write(sl_state_snapshot_t *s, const char *name, sl_state_file_t **files,
                      uint32_t *n) {
  char dir[600], err[512] = "";
  snprintf(dir, sizeof(dir), "%s/%s", root, name);
  assert_true(sl_state_snapshot_has_dir(s));
  if (sl_state_snapshot_write_dir(s, dir, files, n, err, sizeof(err)) != 0)
    fail_msg("write_dir %s: %s", name, err);
}

static void dir_snap(sl_keyed_state_t *ks, const char *name, sl_state_file_t **files, uint32_t *n) {
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(ks);
  assert_non_null(s);
  dir_write(s, name, files, n);
  sl_state_snapshot_release(s);
}

/* Every listed file exists with its size and hash. */
static void check_files(const char *name, const sl_state_file_t *files, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    char path[900];
    snprintf(path, sizeof(path), "%s/%s/%s", root, name, files[i].name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    sl_buf_t b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) sl_buf_append(&b, chunk, got);
    fclose(f);
    assert_int_equal(b.len, files[i].size);
    assert_int_equal(XXH3_64bits(b.data, b.len), files[i].hash);
    sl_buf_free(&b);
  }
}

static uint64_t inode_of(const char *name, const char *file) {
  char path[900];
  snprintf(path, sizeof(path), "%s/%s/%s", root, name, file);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_ino;
}

static void restore_dir_into(sl_keyed_state_t *ks, const char *name, uint32_t sb, uint32_t se) {
  char dir[600], err[512] = "";
  snprintf(dir, sizeof(dir), "%s/%s", root, name);
  if (sl_keyed_state_restore_dir(ks, dir, sb, se, err, sizeof(err)) != 0)
    fail_msg("restore_dir %s: %s", name, err);
}

/* Restore directory `name` (written by an instance owning [0, G)) into p
 * instances of `backend`, check that their union is `want`. */
static void check_dir_union(const char *name, char **want, int nkeys, uint32_t p, bool memory) {
  inst_t in[8];
  for (uint32_t c = 0; c < p; c++) {
    uint32_t b = (uint32_t)(((uint64_t)c * G + p - 1) / p);
    uint32_t e = (uint32_t)(((uint64_t)(c + 1) * G + p - 1) / p);
    in[c].ks = memory ? sl_keyed_state_new_memory(G, b, e) : NEW_KS(G, b, e);
    restore_dir_into(in[c].ks, name, 0, G);
    inst_declare(&in[c]);
  }
  char got[DUMP_CAP];
  for (int i = 0; i < nkeys; i++) {
    uint32_t g = group_of_key(i);
    for (uint32_t c = 0; c < p; c++) {
      uint32_t b = (uint32_t)(((uint64_t)c * G + p - 1) / p);
      uint32_t e = (uint32_t)(((uint64_t)(c + 1) * G + p - 1) / p);
      dump_key(&in[c], i, got, sizeof(got));
      if (g >= b && g < e) {
        if (strcmp(got, want[i]) != 0)
          fail_msg("key-%d (group %u) in instance %u of %u (%s): got %s, want %s", i, g, c, p,
                   memory ? "memory" : "rocksdb", got, want[i]);
      } else {
        assert_string_equal(got, EMPTY);
      }
    }
  }
  for (uint32_t c = 0; c < p; c++) sl_keyed_state_free(in[c].ks);
}

/* ----------------------------------------------------------- the tests */

/* A directory snapshot restores whole (linked: same range), split (copied:
 * 2 and 4 instances), into the memory backend, and its files are listed
 * with the right sizes and hashes. */
static void dir_snapshot_round_trip(void **unused) {
  const int nkeys = 1500;
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, nkeys, 1);
  char kb[32];
  for (int i = 0; i < nkeys; i += 3) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 1), 0);
    sl_ks_map_remove(in.ks, in.m, "f0", 2);
    if (i % 2) assert_int_equal(sl_ks_clear(in.ks, in.v), 0);
  }
  char **want = dump_all(&in, nkeys);
  sl_state_file_t *files;
  uint32_t n;
  dir_snap(in.ks, "one", &files, &n);
  assert_true(n >= 3); /* CURRENT, MANIFEST, OPTIONS, an SST at least */
  check_files("one", files, n);
  sl_state_files_free(files, n);
  for (uint32_t p = 1; p <= 4; p *= 2) check_dir_union("one", want, nkeys, p, false);
  check_dir_union("one", want, nkeys, 1, true);
  check_dir_union("one", want, nkeys, 2, true);
  /* The live instance still works after its snapshot, and again. */
  fill_random(&in, 100, 2);
  char **want2 = dump_all(&in, nkeys);
  dir_snap(in.ks, "two", &files, &n);
  sl_state_files_free(files, n);
  check_dir_union("two", want2, nkeys, 1, false);
  check_dir_union("two", want2, nkeys, 3, false);
  /* Restored by linking, written again: the copy carries everything. */
  sl_keyed_state_t *again = NEW_KS(G, 0, G);
  restore_dir_into(again, "two", 0, G);
  dir_snap(again, "three", &files, &n);
  sl_state_files_free(files, n);
  sl_keyed_state_free(again);
  check_dir_union("three", want2, nkeys, 2, false);
  /* Directories written by 2 instances, read by 3. */
  inst_t half[2];
  for (uint32_t h = 0; h < 2; h++) {
    half[h].ks = NEW_KS(G, h * G / 2, (h + 1) * G / 2);
    restore_dir_into(half[h].ks, "two", 0, G);
    inst_declare(&half[h]);
    char name[16];
    snprintf(name, sizeof(name), "half%u", h);
    dir_snap(half[h].ks, name, &files, &n);
    sl_state_files_free(files, n);
    sl_keyed_state_free(half[h].ks);
  }
  inst_t third[3];
  for (uint32_t c = 0; c < 3; c++) {
    uint32_t b = (c * G + 2) / 3, e = ((c + 1) * G + 2) / 3;
    third[c].ks = NEW_KS(G, b, e);
    restore_dir_into(third[c].ks, "half0", 0, G / 2);
    restore_dir_into(third[c].ks, "half1", G / 2, G);
    inst_declare(&third[c]);
  }
  char got[DUMP_CAP];
  for (int i = 0; i < nkeys; i++) {
    uint32_t g = group_of_key(i);
    for (uint32_t c = 0; c < 3; c++) {
      uint32_t b = (c * G + 2) / 3, e = ((c + 1) * G + 2) / 3;
      dump_key(&third[c], i, got, sizeof(got));
      assert_string_equal(got, g >= b && g < e ? want2[i] : EMPTY);
    }
  }
  for (uint32_t c = 0; c < 3; c++) sl_keyed_state_free(third[c].ks);
  dumps_free(want, nkeys);
  dumps_free(want2, nkeys);
  sl_keyed_state_free(in.ks);
}

/* Begin, then change everything while the directory is not written yet:
 * the directory holds the state at begin (the writes made meanwhile are
 * put back), the live state the state after. */
static void dir_snapshot_consistent_under_writes(void **unused) {
  const int nkeys = 1500, added = 500;
  inst_t in;
  inst_open(&in, 0, G);
  char err[256], kb[32], v[300];
  sl_state_t *t = sl_keyed_state_declare(in.ks, "t", SL_STATE_VALUE, 50, err, sizeof(err));
  sl_keyed_state_set_now(in.ks, 100);
  fill_random(&in, nkeys, 4);
  for (int i = 0; i < nkeys; i += 5) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_put(in.ks, t, "ttl", 3), 0);
  }
  for (int round = 0; round < 2; round++) {
    char **at_begin = dump_all(&in, nkeys + added);
    sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(in.ks);
    assert_non_null(s);
    assert_null(sl_keyed_state_snapshot_begin(in.ks)); /* one at a time */
    for (int i = 0; i < nkeys + added; i++) {
      setk(in.ks, kb, i);
      uint64_t r = next_rand();
      switch (r % 7) {
      case 0:
        sl_ks_clear(in.ks, in.v);
        break;
      case 1: {
        int n = snprintf(v, sizeof(v), "%0*d", (int)(r >> 8) % 250, i);
        assert_int_equal(sl_ks_put(in.ks, in.v, v, (size_t)n), 0);
        break;
      }
      case 2:
        assert_int_equal(sl_ks_list_append(in.ks, in.l, "more", 4), 0);
        break;
      case 3:
        assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 1), 0);
        break;
      case 4:
        assert_int_equal(sl_ks_map_put(in.ks, in.m, "f1", 2, "changed", 7), 0);
        break;
      case 5:
        sl_ks_map_remove(in.ks, in.m, "f0", 2);
        break;
      default:
        sl_ks_clear(in.ks, in.l);
        sl_ks_clear(in.ks, in.m);
      }
    }
    char **after = dump_all(&in, nkeys + added);
    char name[32];
    snprintf(name, sizeof(name), "round%d", round);
    sl_state_file_t *files;
    uint32_t n;
    dir_write(s, name, &files, &n);
    check_files(name, files, n);
    sl_state_files_free(files, n);
    /* More writes after write_dir, before the release: not logged into anything. */
    setk(in.ks, kb, 0);
    assert_int_equal(sl_ks_put(in.ks, in.v, "late", 4), 0);
    sl_state_snapshot_release(s);
    inst_t r;
    r.ks = NEW_KS(G, 0, G);
    restore_dir_into(r.ks, name, 0, G);
    inst_declare(&r);
    sl_state_t *rt = sl_keyed_state_declare(r.ks, "t", SL_STATE_VALUE, 50, err, sizeof(err));
    sl_keyed_state_set_now(r.ks, 100);
    char got[DUMP_CAP];
    sl_bytes_t b;
    for (int i = 0; i < nkeys + added; i++) {
      dump_key(&r, i, got, sizeof(got));
      if (strcmp(got, at_begin[i]) != 0)
        fail_msg("round %d key-%d: got %s, want %s", round, i, got, at_begin[i]);
      setk(r.ks, kb, i);
      assert_int_equal(sl_ks_get(r.ks, rt, &b), i % 5 == 0 && i < nkeys ? 0 : SL_ENOTFOUND);
      dump_key(&in, i, got, sizeof(got));
      if (i > 0) assert_string_equal(got, after[i]);
    }
    sl_keyed_state_free(r.ks);
    dumps_free(at_begin, nkeys + added);
    dumps_free(after, nkeys + added);
  }
  sl_keyed_state_free(in.ks);
}

/* Two snapshots with a small change between them share the SST files that
 * did not change: same inode, same hash; the second adds a small file. */
static void dir_snapshots_share_unchanged_files(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, 8000, 1);
  sl_state_file_t *f1, *f2, *f3;
  uint32_t n1, n2, n3;
  dir_snap(in.ks, "c1", &f1, &n1);
  char kb[32];
  setk(in.ks, kb, 7);
  assert_int_equal(sl_ks_put(in.ks, in.v, "changed", 7), 0);
  dir_snap(in.ks, "c2", &f2, &n2);
  dir_snap(in.ks, "c3", &f3, &n3); /* nothing changed at all */
  uint32_t shared = 0, ssts = 0;
  uint64_t new_bytes = 0, total = 0;
  for (uint32_t j = 0; j < n2; j++) {
    size_t len = strlen(f2[j].name);
    if (len < 4 || strcmp(f2[j].name + len - 4, ".sst") != 0) continue;
    ssts++;
    total += f2[j].size;
    bool found = false;
    for (uint32_t i = 0; i < n1; i++)
      if (strcmp(f1[i].name, f2[j].name) == 0) {
        found = true;
        assert_int_equal(inode_of("c1", f1[i].name), inode_of("c2", f2[j].name));
        assert_int_equal(f1[i].hash, f2[j].hash);
        shared++;
      }
    if (!found) new_bytes += f2[j].size;
  }
  assert_true(shared >= 1);
  assert_true(new_bytes * 10 < total); /* the change is a small new file */
  for (uint32_t j = 0; j < n3; j++) {
    size_t len = strlen(f3[j].name);
    if (len < 4 || strcmp(f3[j].name + len - 4, ".sst") != 0) continue;
    bool in2 = false;
    for (uint32_t i = 0; i < n2; i++)
      if (strcmp(f2[i].name, f3[j].name) == 0) {
        in2 = true;
        assert_int_equal(inode_of("c2", f2[i].name), inode_of("c3", f3[j].name));
      }
    assert_true(in2);
  }
  check_files("c2", f2, n2);
  check_files("c3", f3, n3);
  sl_state_files_free(f1, n1);
  sl_state_files_free(f2, n2);
  sl_state_files_free(f3, n3);
  sl_keyed_state_free(in.ks);
}

/* The instance freed while its directory snapshot is still to be written
 * (job teardown): the snapshot keeps the database open. */
static void dir_snapshot_after_free(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, 500, 3);
  char **want = dump_all(&in, 500);
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(in.ks);
  char kb[32];
  for (int i = 0; i < 500; i += 2) {
    setk(in.ks, kb, i);
    sl_ks_put(in.ks, in.v, "changed", 7);
    sl_ks_clear(in.ks, in.l);
  }
  sl_keyed_state_free(in.ks);
  sl_state_file_t *files;
  uint32_t n;
  dir_write(s, "freed", &files, &n);
  sl_state_files_free(files, n);
  sl_state_snapshot_release(s);
  check_dir_union("freed", want, 500, 2, false);
  dumps_free(want, 500);
}

/* A restore that does not fit is refused, before anything is written. */
static void dir_restore_refusals(void **unused) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  char err[512], kb[32];
  sl_state_t *m = sl_keyed_state_declare(ks, "v", SL_STATE_MAP, 0, err, sizeof(err));
  setk(ks, kb, 1);
  assert_int_equal(sl_ks_map_put(ks, m, "a", 1, "b", 1), 0);
  sl_state_file_t *files;
  uint32_t n;
  dir_snap(ks, "kinds", &files, &n);
  sl_state_files_free(files, n);
  sl_keyed_state_free(ks);
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/kinds", root);
  /* "v" is a value state here. */
  ks = NEW_KS(G, 0, G / 2);
  assert_non_null(sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 0, err, sizeof(err)));
  assert_int_equal(sl_keyed_state_restore_dir(ks, dir, 0, G, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "'v'"));
  sl_keyed_state_free(ks);
  /* Another max_key_groups: both paths. */
  ks = NEW_KS(G * 2, 0, G * 2);
  assert_int_equal(sl_keyed_state_restore_dir(ks, dir, 0, G * 2, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "max_key_groups"));
  sl_keyed_state_free(ks);
  ks = NEW_KS(G * 2, 0, G);
  assert_int_equal(sl_keyed_state_restore_dir(ks, dir, 0, G * 2, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "max_key_groups"));
  sl_keyed_state_free(ks);
  /* Not a database. */
  ks = NEW_KS(G, 0, G / 2);
  assert_int_equal(sl_keyed_state_restore_dir(ks, root, 0, G, err, sizeof(err)), -1);
  sl_keyed_state_free(ks);
  /* Nothing of ours in the directory's range: nothing to do. */
  ks = NEW_KS(G, 0, G / 2);
  assert_int_equal(sl_keyed_state_restore_dir(ks, "/nonexistent", G / 2, G, err, sizeof(err)), 0);
  sl_keyed_state_free(ks);
  /* The directory was only read: still restores. */
  ks = NEW_KS(G, 0, G);
  restore_dir_into(ks, "kinds", 0, G);
  sl_keyed_state_free(ks);
}

/* The working directory: created, locked against a second user, refused
 * when it holds something else, removed at free. */
static void working_directory(void **unused) {
  char dir[600], err[512], path[1400];
  snprintf(dir, sizeof(dir), "%s/state/job/count.0", root);
  sl_keyed_state_t *ks = sl_keyed_state_new_rocksdb(dir, G, 0, G, err, sizeof(err));
  if (!ks) fail_msg("%s", err);
  assert_string_equal(sl_keyed_state_backend(ks), "rocksdb");
  assert_non_null(sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 0, err, sizeof(err)));
  snprintf(path, sizeof(path), "%s/db/CURRENT", dir);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  err[0] = 0;
  assert_null(sl_keyed_state_new_rocksdb(dir, G, 0, G, err, sizeof(err)));
  assert_non_null(strstr(err, "in use"));
  assert_int_equal(stat(path, &st), 0); /* untouched by the refused one */
  sl_keyed_state_free(ks);
  assert_int_not_equal(stat(dir, &st), 0);
  /* Left over by a crash: emptied. */
  snprintf(path, sizeof(path), "%s/db", dir);
  assert_int_equal(system("true"), 0);
  char cmd[2000];
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s/db' '%s/stage-3' && touch '%s/db/000001.sst'", dir, dir,
           dir);
  assert_int_equal(system(cmd), 0);
  ks = sl_keyed_state_new_rocksdb(dir, G, 0, G, err, sizeof(err));
  if (!ks) fail_msg("%s", err);
  snprintf(path, sizeof(path), "%s/db/000001.sst", dir);
  assert_int_not_equal(stat(path, &st), 0);
  sl_keyed_state_free(ks);
  /* Something that is not ours: refused, kept. */
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && touch '%s/precious.txt'", dir, dir);
  assert_int_equal(system(cmd), 0);
  assert_null(sl_keyed_state_new_rocksdb(dir, G, 0, G, err, sizeof(err)));
  assert_non_null(strstr(err, "precious.txt"));
  snprintf(path, sizeof(path), "%s/precious.txt", dir);
  assert_int_equal(stat(path, &st), 0);
  /* Bad ranges. */
  assert_null(sl_keyed_state_new_rocksdb(NULL, 65536, 0, 1, err, sizeof(err)));
  assert_null(sl_keyed_state_new_rocksdb(NULL, G, 3, 2, err, sizeof(err)));
}

/* Blob snapshots (savepoints) and directory snapshots of the same state
 * agree, including a map with many fields and long keys. */
static void blob_and_dir_agree(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  char kb[32], mk[600], v[64];
  setk(in.ks, kb, 1);
  for (int i = 0; i < 200; i++) {
    int a = snprintf(mk, sizeof(mk), "%0*d", 1 + i % 20, i);
    int c = snprintf(v, sizeof(v), "%d", i);
    assert_int_equal(sl_ks_map_put(in.ks, in.m, mk, (size_t)a, v, (size_t)c), 0);
  }
  for (int i = 0; i < 300; i++) assert_int_equal(sl_ks_list_append(in.ks, in.l, kb, 5), 0);
  assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 250), 0); /* a range deletion */
  fill_random(&in, 200, 9);
  /* A record key of 300 bytes (two bytes of length in the row key). */
  memset(mk, 'k', 300);
  sl_keyed_state_set_key(in.ks, mk, 300);
  assert_int_equal(sl_ks_put(in.ks, in.v, "long", 4), 0);
  char **want = dump_all(&in, 200);
  sl_buf_t blob = {0};
  snap_write(in.ks, &blob);
  check_restored_union(&blob, want, 200, 3);
  sl_state_file_t *files;
  uint32_t n;
  dir_snap(in.ks, "agree", &files, &n);
  sl_state_files_free(files, n);
  check_dir_union("agree", want, 200, 3, false);
  sl_buf_t exported = {0};
  char err[256];
  char dir[700];
  snprintf(dir, sizeof(dir), "%s/agree", root);
  assert_int_equal(sl_state_rocksdb_export(dir, G, 0, G, &exported, err, sizeof(err)), 0);
  check_restored_union(&exported, want, 200, 2);
  sl_keyed_state_t *r = sl_keyed_state_new_memory(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(r, exported.data, exported.len, err, sizeof(err)), 0);
  sl_state_t *rv = sl_keyed_state_declare(r, "v", SL_STATE_VALUE, 0, err, sizeof(err));
  sl_keyed_state_set_key(r, mk, 300);
  sl_bytes_t b;
  assert_int_equal(sl_ks_get(r, rv, &b), 0);
  assert_memory_equal(b.ptr, "long", 4);
  sl_keyed_state_free(r);
  sl_buf_free(&exported);
  sl_buf_free(&blob);
  dumps_free(want, 200);
  sl_keyed_state_free(in.ks);
}

/* Expired value rows are dropped by compaction (the TTL filter), at the
 * instance's processing time, but not those a snapshot still calls live;
 * rows without TTL, and lists, stay. */
static void ttl_rows_dropped_by_compaction(void **unused) {
  char err[256], kb[32];
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  sl_state_t *t = sl_keyed_state_declare(ks, "t", SL_STATE_VALUE, 100, err, sizeof(err));
  sl_state_t *f = sl_keyed_state_declare(ks, "f", SL_STATE_VALUE, 0, err, sizeof(err));
  sl_state_t *l = sl_keyed_state_declare(ks, "l", SL_STATE_LIST, 100, err, sizeof(err));
  sl_keyed_state_set_now(ks, 1000);
  for (int i = 0; i < 50; i++) {
    setk(ks, kb, i);
    assert_int_equal(sl_ks_put(ks, t, "ttl", 3), 0); /* expires at 1100 */
    assert_int_equal(sl_ks_put(ks, f, "keep", 4), 0);
    assert_int_equal(sl_ks_list_append(ks, l, "i", 1), 0);
  }
  /* A snapshot taken at 1000 keeps them through a compaction at 5000. */
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(ks);
  sl_keyed_state_set_now(ks, 5000);
  assert_int_equal(sl_state_rocksdb_compact(ks, err, sizeof(err)), 0);
  sl_keyed_state_set_now(ks, 1050); /* back in time: shows what is still stored */
  sl_bytes_t b;
  size_t n;
  setk(ks, kb, 3);
  assert_int_equal(sl_ks_get(ks, t, &b), 0);
  sl_state_snapshot_release(s);
  /* Without it, they go. */
  sl_keyed_state_set_now(ks, 5000);
  assert_int_equal(sl_state_rocksdb_compact(ks, err, sizeof(err)), 0);
  sl_keyed_state_set_now(ks, 1050);
  for (int i = 0; i < 50; i++) {
    setk(ks, kb, i);
    assert_int_equal(sl_ks_get(ks, t, &b), SL_ENOTFOUND);
    assert_int_equal(sl_ks_get(ks, f, &b), 0);
    assert_int_equal(sl_ks_list_count(ks, l, &n), 0);
    assert_int_equal(n, 1);
  }
  sl_keyed_state_free(ks);
  ks = sl_keyed_state_new_memory(G, 0, G);
  assert_int_equal(sl_state_rocksdb_compact(ks, err, sizeof(err)), -1); /* not RocksDB */
  sl_keyed_state_free(ks);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(dir_snapshot_round_trip, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(dir_snapshot_consistent_under_writes, setup_root,
                                      teardown_root),
      cmocka_unit_test_setup_teardown(dir_snapshots_share_unchanged_files, setup_root,
                                      teardown_root),
      cmocka_unit_test_setup_teardown(dir_snapshot_after_free, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(dir_restore_refusals, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(working_directory, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(blob_and_dir_agree, setup_root, teardown_root),
      cmocka_unit_test(ttl_rows_dropped_by_compaction),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
