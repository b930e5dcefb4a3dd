/* RocksDB keyed-state snapshots written on another thread while the task
 * thread keeps updating the state (core/state_rocksdb.c), as
 * test_sched_state_snapshot.c does for the memory backend. Runs under
 * ThreadSanitizer (label "concurrency"). The writer alternates the two
 * forms: a blob (iterates the RocksDB snapshot) and a directory (a RocksDB
 * checkpoint of the live database, with what the task wrote since
 * snapshot_begin put back from the snapshot). Each must equal the state at
 * snapshot_begin. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

#define G 32u
#define NKEYS 3000
#define NEWKEYS 1000

static char root[512];

/* ThreadSanitizer: librocksdb is not built with it. Its memtable is a
 * lock-free skip list that publishes entries through atomics TSan cannot
 * see, so the memcpy and memcmp it makes (which TSan intercepts) look like
 * races between a writer and a reader. Accesses that uninstrumented code
 * makes through interceptors are RocksDB's, not ours: ignore them (TSan
 * reads this hook at start-up; TSAN_OPTIONS still adds to it). */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "ignore_noninstrumented_modules=1"; }

#include "state_snapshot_model.h"

static void inst_open(inst_t *in) {
  char err[256];
  in->ks = sl_keyed_state_new_rocksdb(NULL, G, 0, G, err, sizeof(err));
  if (!in->ks) fail_msg("%s", err);
  inst_declare(in);
}

typedef struct writer {
  sl_state_snapshot_t *snap;
  const char *dir; /* NULL: a blob */
  sl_buf_t out;
  sl_state_file_t *files;
  uint32_t nfiles;
  int rc;
  char err[512];
  atomic_int go, done;
} writer_t;

static void *write_snapshot(void *arg) {
  writer_t *w = arg;
  /* Start once the task thread is busy changing the state, so that the
   * whole write overlaps with its updates. */
  while (!atomic_load_explicit(&w->go, memory_order_acquire)) sched_yield();
  if (w->dir)
    w->rc =
        sl_state_snapshot_write_dir(w->snap, w->dir, &w->files, &w->nfiles, w->err, sizeof(w->err));
  else
    w->rc = sl_state_snapshot_write(w->snap, &w->out, w->err, sizeof(w->err));
  sl_state_snapshot_release(w->snap);
  atomic_store_explicit(&w->done, 1, memory_order_release);
  return NULL;
}

/* The blob or the directory of w, restored into a fresh instance (the
 * memory backend for a blob, RocksDB for a directory), equals want. */
static void check_written(const writer_t *w, char **want, int64_t now) {
  inst_t r;
  char err[512] = "";
  if (w->dir) {
    r.ks = sl_keyed_state_new_rocksdb(NULL, G, 0, G, err, sizeof(err));
    if (!r.ks || sl_keyed_state_restore_dir(r.ks, w->dir, 0, G, err, sizeof(err)) != 0)
      fail_msg("restore %s: %s", w->dir, err);
  } else {
    r.ks = sl_keyed_state_new_memory(G, 0, G);
    if (sl_keyed_state_restore(r.ks, w->out.data, w->out.len, err, sizeof(err)) != 0)
      fail_msg("restore: %s", err);
  }
  sl_keyed_state_t *ks = r.ks;
  r.v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 0, err, sizeof(err));
  r.l = sl_keyed_state_declare(ks, "l", SL_STATE_LIST, 0, err, sizeof(err));
  r.m = sl_keyed_state_declare(ks, "m", SL_STATE_MAP, 0, err, sizeof(err));
  r.t = sl_keyed_state_declare(ks, "t", SL_STATE_VALUE, 40, err, sizeof(err));
  sl_keyed_state_set_now(ks, now);
  char got[DUMP_CAP];
  for (int i = 0; i < NKEYS + NEWKEYS; i++) {
    dump_key(&r, i, got, sizeof(got));
    if (strcmp(got, want[i]) != 0)
      fail_msg("key-%d: snapshot has %s, begin had %s", i, got, want[i]);
  }
  sl_keyed_state_free(ks);
}

static void snapshot_written_while_task_updates(void **unused) {
  inst_t in;
  inst_open(&in);
  writer_t *prev_dir = NULL;
  int64_t now = 0;
  sl_keyed_state_set_now(in.ks, now);
  for (int i = 0; i < NKEYS * 4; i++) mutate(&in, 0);
  for (int round = 1; round <= 6; round++) {
    now += 10; /* TTL entries written 40 ms ago expire as the rounds go */
    sl_keyed_state_set_now(in.ks, now);
    char **want = dump_all(&in);
    int64_t begin_now = now;
    writer_t *w = calloc(1, sizeof(*w));
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/round%d", root, round);
    if (round % 2 == 0) w->dir = strdup(dir);
    w->snap = sl_keyed_state_snapshot_begin(in.ks);
    assert_non_null(w->snap);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_snapshot, w), 0);
    /* Keep working while it writes, and a while after (the release is seen
     * on a later call). */
    long ops = 0;
    while (!atomic_load_explicit(&w->done, memory_order_acquire) || ops < 20000) {
      mutate(&in, round);
      if (++ops == 1000) atomic_store_explicit(&w->go, 1, memory_order_release);
      if (ops % 5000 == 0) sl_keyed_state_set_now(in.ks, ++now);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    if (w->rc != 0) fail_msg("write: %s", w->err);
    check_written(w, want, begin_now);
    dumps_free(want);
    if (!w->dir) {
      sl_buf_free(&w->out);
      free(w);
      continue;
    }
    /* Kept until the next directory is written: its hard links stay valid
     * while the database compacts the files away. */
    if (prev_dir) {
      sl_state_files_free(prev_dir->files, prev_dir->nfiles);
      free((char *)prev_dir->dir);
      free(prev_dir);
    }
    prev_dir = w;
  }
  if (prev_dir) {
    sl_state_files_free(prev_dir->files, prev_dir->nfiles);
    free((char *)prev_dir->dir);
    free(prev_dir);
  }
  sl_keyed_state_free(in.ks);
}

/* The task frees its state (job teardown) while the writer still writes:
 * the snapshot keeps the database open until its release. */
static void state_freed_while_writing(void **unused) {
  for (int round = 0; round < 4; round++) {
    inst_t in;
    inst_open(&in);
    for (int i = 0; i < NKEYS * 3; i++) mutate(&in, round);
    char **want = dump_all(&in);
    writer_t *w = calloc(1, sizeof(*w));
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/freed%d", root, round);
    if (round % 2) w->dir = strdup(dir);
    w->snap = sl_keyed_state_snapshot_begin(in.ks);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_snapshot, w), 0);
    for (int i = 0; i < 200 * round; i++) mutate(&in, round + 1);
    atomic_store_explicit(&w->go, 1, memory_order_release);
    for (int i = 0; i < 100 * round; i++) mutate(&in, round + 1);
    sl_keyed_state_free(in.ks);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (w->rc != 0) fail_msg("write: %s", w->err);
    check_written(w, want, 0);
    sl_buf_free(&w->out);
    sl_state_files_free(w->files, w->nfiles);
    free((char *)w->dir);
    free(w);
    dumps_free(want);
  }
}

static int setup_root(void **st) {
  (void)st;
  snprintf(root, sizeof(root), "%s/sched-rocksdb-XXXXXX", SLUICE_TEST_BINARY_DIR);
  return mkdtemp(root) ? 0 : -1;
}

static int teardown_root(void **st) {
  (void)st;
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(snapshot_written_while_task_updates, setup_root,
                                      teardown_root),
      cmocka_unit_test_setup_teardown(state_freed_while_writing, setup_root, teardown_root),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
