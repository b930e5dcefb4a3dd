/*
 * Checkpoint files: operator-state encoding, MANIFEST parsing and
 * verification (every truncation and many byte flips of a valid manifest
 * are refused or read back whole, never crash), the choice of the newest
 * valid checkpoint with fallback, and pruning.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <xxhash.h>

#include "checkpoint.h"

/* ------------------------------------------------------- operator state */

static void op_state_round_trip_and_truncation(void **st) {
  (void)st;
  sl_op_state_t *s = sl_op_state_new();
  assert_int_equal(sl_op_state_set(s, "position", "\x01\x02\x00\x04", 4), 0);
  assert_int_equal(sl_op_state_set(s, "empty", NULL, 0), 0);
  assert_int_equal(sl_op_state_set(s, "position", "xyz", 3), 0); /* replaces */
  assert_int_equal(sl_op_state_set(s, "", "a", 1), SL_EINVAL);
  sl_buf_t b = {0};
  sl_op_state_write(s, &b);

  sl_op_state_t *r = sl_op_state_new();
  char err[256];
  assert_int_equal(sl_op_state_read(r, b.data, b.len, err, sizeof(err)), 0);
  sl_bytes_t v;
  assert_int_equal(sl_op_state_find(r, "position", &v), 0);
  assert_int_equal(v.len, 3);
  assert_memory_equal(v.ptr, "xyz", 3);
  assert_int_equal(sl_op_state_find(r, "empty", &v), 0);
  assert_int_equal(v.len, 0);
  assert_int_equal(sl_op_state_find(r, "nope", &v), SL_ENOTFOUND);
  sl_op_state_free(r);

  /* Every truncation is refused with a message; flips never crash. */
  for (size_t cut = 0; cut < b.len; cut++) {
    r = sl_op_state_new();
    err[0] = 0;
    assert_int_equal(sl_op_state_read(r, b.data, cut, err, sizeof(err)), -1);
    assert_true(err[0] != 0);
    sl_op_state_free(r);
  }
  for (size_t i = 0; i < b.len; i++)
    for (int bit = 0; bit < 8; bit++) {
      b.data[i] ^= (unsigned char)(1u << bit);
      r = sl_op_state_new();
      (void)sl_op_state_read(r, b.data, b.len, err, sizeof(err));
      sl_op_state_free(r);
      b.data[i] ^= (unsigned char)(1u << bit);
    }
  sl_buf_free(&b);
  sl_op_state_free(s);
}

/* ------------------------------------------------------------ manifests */

static char root[256];

static void write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

/* A valid checkpoint `id` in root with one empty .snap file; returns the
 * manifest text length (text in *out, malloc'd). */
static size_t make_checkpoint(uint64_t id, char **out) {
  char dir[512], path[600];
  snprintf(dir, sizeof(dir), "%s/chk-%012llu", root, (unsigned long long)id);
  mkdir(dir, 0755);
  sl_buf_t snap = {0};
  sl_buf_append(&snap, "SLSNAP01", 8);
  sl_buf_append_u64(&snap, 4);
  sl_buf_append_u32(&snap, 0);
  sl_buf_append_u64(&snap, 0);
  snprintf(path, sizeof(path), "%s/n.0.snap", dir);
  write_file(path, snap.data, snap.len);
  char *body = NULL;
  int k = asprintf(&body,
                   "sluice-checkpoint 1\nid %llu\nkind checkpoint\njob t\nmax_key_groups 128\n"
                   "created_ms 1\nnode n 1 0\nfile n 0 n.0.snap %zu %016llx\n",
                   (unsigned long long)id, snap.len,
                   (unsigned long long)XXH3_64bits(snap.data, snap.len));
  assert_true(k > 0);
  char *text = NULL;
  k = asprintf(&text, "%schecksum %016llx\n", body,
               (unsigned long long)XXH3_64bits(body, strlen(body)));
  assert_true(k > 0);
  snprintf(path, sizeof(path), "%s/MANIFEST", dir);
  write_file(path, text, strlen(text));
  free(body);
  sl_buf_free(&snap);
  *out = text;
  return strlen(text);
}

static int setup_root(void **st) {
  (void)st;
  snprintf(root, sizeof(root), "%s/ckpt-store-XXXXXX", SLUICE_TEST_BINARY_DIR);
  return mkdtemp(root) ? 0 : -1;
}

static int teardown_root(void **st) {
  (void)st;
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : -1;
}

static void manifest_reads_back(void **st) {
  (void)st;
  char *text;
  make_checkpoint(7, &text);
  free(text);
  char dir[512], err[512];
  snprintf(dir, sizeof(dir), "%s/chk-000000000007", root);
  sl_ckpt_manifest_t *m = NULL;
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), 0);
  assert_int_equal(m->id, 7);
  assert_string_equal(m->kind, "checkpoint");
  assert_int_equal(m->max_key_groups, 128);
  assert_int_equal(m->node_count, 1);
  assert_int_equal(m->file_count, 1);
  assert_string_equal(m->files[0].node, "n");
  sl_ckpt_manifest_free(m);
}

static void manifest_mutations_refused(void **st) {
  (void)st;
  char *text;
  size_t len = make_checkpoint(8, &text);
  char dir[512], path[600], err[512];
  snprintf(dir, sizeof(dir), "%s/chk-000000000008", root);
  snprintf(path, sizeof(path), "%s/MANIFEST", dir);
  for (size_t cut = 0; cut < len; cut++) {
    write_file(path, text, cut);
    sl_ckpt_manifest_t *m = NULL;
    err[0] = 0;
    assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), -1);
    assert_null(m);
    assert_true(err[0] != 0);
  }
  for (size_t i = 0; i < len; i++) {
    char saved = text[i];
    text[i] = (char)(text[i] ^ 0x04);
    write_file(path, text, len);
    sl_ckpt_manifest_t *m = NULL;
    int rc = sl_ckpt_load_dir(dir, &m, err, sizeof(err));
    if (rc != -1) fprintf(stderr, "flip at %zu (%c) accepted\n", i, saved);
    sl_ckpt_manifest_free(m);
    assert_int_equal(rc, -1);
    text[i] = saved;
  }
  free(text);
}

static void snap_damage_refused(void **st) {
  (void)st;
  char *text;
  make_checkpoint(9, &text);
  free(text);
  char dir[512], path[600], err[512];
  snprintf(dir, sizeof(dir), "%s/chk-000000000009", root);
  snprintf(path, sizeof(path), "%s/n.0.snap", dir);
  sl_ckpt_manifest_t *m = NULL;
  write_file(path, "SLSNAP01\x04\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0", 28); /* one bit */
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "does not match its checksum"));
  write_file(path, "SLSNAP01", 8);
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "the MANIFEST says"));
  unlink(path);
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "cannot be read"));
}

static void latest_falls_back_and_prune_keeps(void **st) {
  (void)st;
  char *text, err[512], path[600];
  for (uint64_t id = 1; id <= 4; id++) {
    make_checkpoint(id, &text);
    free(text);
  }
  /* 5: no manifest (never completed); 4: damaged. */
  snprintf(path, sizeof(path), "%s/chk-000000000005", root);
  mkdir(path, 0755);
  snprintf(path, sizeof(path), "%s/chk-000000000004/MANIFEST", root);
  truncate(path, 20);
  sl_ckpt_manifest_t *m = sl_ckpt_load_latest(root, err, sizeof(err));
  assert_non_null(m);
  assert_int_equal(m->id, 3);
  sl_ckpt_manifest_free(m);
  assert_int_equal(sl_ckpt_newest_id(root), 5);

  /* Keep the 2 newest complete ones up to 5: 4 (damaged but has a manifest)
   * and 3; 1 and 2 go; 5 is the newest and stays. */
  sl_ckpt_prune(root, 2, 5);
  struct stat sb;
  snprintf(path, sizeof(path), "%s/chk-000000000001", root);
  assert_int_not_equal(stat(path, &sb), 0);
  snprintf(path, sizeof(path), "%s/chk-000000000002", root);
  assert_int_not_equal(stat(path, &sb), 0);
  snprintf(path, sizeof(path), "%s/chk-000000000003/MANIFEST", root);
  assert_int_equal(stat(path, &sb), 0);
  snprintf(path, sizeof(path), "%s/chk-000000000005", root);
  assert_int_equal(stat(path, &sb), 0);

  /* No directory at all: NULL without an error; a file: an error. */
  snprintf(path, sizeof(path), "%s/absent", root);
  err[0] = 0;
  assert_null(sl_ckpt_load_latest(path, err, sizeof(err)));
  assert_int_equal(err[0], 0);
  snprintf(path, sizeof(path), "%s/chk-000000000003/MANIFEST", root);
  assert_null(sl_ckpt_load_latest(path, err, sizeof(err)));
  assert_non_null(strstr(err, "not a directory"));
}

/* A checkpoint with a state directory (RocksDB): its files are listed as
 * <node>.<task>.rocksdb/<file> in a version 2 manifest, verified by size and
 * checksum (streamed), and removed with the checkpoint. */
static void state_directory_files(void **st) {
  (void)st;
  char dir[512], sub[600], path[700], err[512];
  snprintf(dir, sizeof(dir), "%s/chk-000000000011", root);
  mkdir(dir, 0755);
  snprintf(sub, sizeof(sub), "%s/n.0.rocksdb", dir);
  mkdir(sub, 0755);
  static const char sst[] = "not really an SST, but bytes all the same";
  snprintf(path, sizeof(path), "%s/000007.sst", sub);
  write_file(path, sst, sizeof(sst));
  sl_buf_t snap = {0};
  sl_buf_append(&snap, "SLSNAP01", 8);
  sl_buf_append_u64(&snap, 4);
  sl_buf_append_u32(&snap, 0);
  sl_buf_append_u64(&snap, 0);
  snprintf(path, sizeof(path), "%s/n.0.snap", dir);
  write_file(path, snap.data, snap.len);
  const char *names[] = {"n.0.rocksdb/000007.sst", "x.0.rocksdb/000007.sst",
                         "n.1.rocksdb/000007.sst", "n.0.rocksdb/..", "n.0.rocksdb/a/b"};
  for (size_t v = 0; v < sizeof(names) / sizeof(names[0]); v++) {
    char *body = NULL, *text = NULL;
    int k = asprintf(&body,
                     "sluice-checkpoint 2\nid 11\nkind checkpoint\njob t\nmax_key_groups 128\n"
                     "created_ms 1\nnode n 1 1\nfile n 0 n.0.snap %zu %016llx\n"
                     "file n 0 %s %zu %016llx\n",
                     snap.len, (unsigned long long)XXH3_64bits(snap.data, snap.len), names[v],
                     sizeof(sst), (unsigned long long)XXH3_64bits(sst, sizeof(sst)));
    assert_true(k > 0);
    k = asprintf(&text, "%schecksum %016llx\n", body,
                 (unsigned long long)XXH3_64bits(body, strlen(body)));
    assert_true(k > 0);
    snprintf(path, sizeof(path), "%s/MANIFEST", dir);
    write_file(path, text, strlen(text));
    free(body);
    free(text);
    sl_ckpt_manifest_t *m = NULL;
    int rc = sl_ckpt_load_dir(dir, &m, err, sizeof(err));
    if (v == 0) {
      if (rc != 0) fail_msg("%s", err);
      assert_int_equal(m->file_count, 2);
      assert_null(m->files[1].data); /* streamed, not loaded */
      sl_ckpt_manifest_free(m);
    } else {
      assert_int_equal(rc, -1); /* another node's or task's directory, a path: refused */
      assert_non_null(strstr(err, "malformed"));
    }
  }
  /* (The manifest now names a bad path; write the good one back.) */
  char *body = NULL, *text = NULL;
  assert_true(asprintf(&body,
                       "sluice-checkpoint 2\nid 11\nkind checkpoint\njob t\nmax_key_groups 128\n"
                       "created_ms 1\nnode n 1 1\nfile n 0 n.0.snap %zu %016llx\n"
                       "file n 0 n.0.rocksdb/000007.sst %zu %016llx\n",
                       snap.len, (unsigned long long)XXH3_64bits(snap.data, snap.len),
                       sizeof(sst), (unsigned long long)XXH3_64bits(sst, sizeof(sst))) > 0);
  assert_true(asprintf(&text, "%schecksum %016llx\n", body,
                       (unsigned long long)XXH3_64bits(body, strlen(body))) > 0);
  snprintf(path, sizeof(path), "%s/MANIFEST", dir);
  write_file(path, text, strlen(text));
  free(body);
  free(text);
  /* Damage to the state file: a flipped byte, another size, gone. */
  snprintf(path, sizeof(path), "%s/000007.sst", sub);
  char bad[sizeof(sst)];
  memcpy(bad, sst, sizeof(sst));
  bad[3] ^= 1;
  write_file(path, bad, sizeof(bad));
  sl_ckpt_manifest_t *m = NULL;
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "n.0.rocksdb/000007.sst does not match its checksum"));
  write_file(path, sst, sizeof(sst) - 1);
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "the MANIFEST says"));
  unlink(path);
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "cannot be read"));
  write_file(path, sst, sizeof(sst));
  assert_int_equal(sl_ckpt_load_dir(dir, &m, err, sizeof(err)), 0);
  sl_ckpt_manifest_free(m);
  /* Pruned with its state directory. */
  sl_ckpt_prune(root, 1, 12);
  make_checkpoint(12, &text);
  free(text);
  sl_ckpt_prune(root, 1, 12);
  struct stat sb;
  assert_int_not_equal(stat(dir, &sb), 0);
  sl_buf_free(&snap);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(op_state_round_trip_and_truncation),
      cmocka_unit_test_setup_teardown(manifest_reads_back, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(manifest_mutations_refused, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(snap_damage_refused, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(latest_falls_back_and_prune_keeps, setup_root, teardown_root),
      cmocka_unit_test_setup_teardown(state_directory_files, setup_root, teardown_root),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
