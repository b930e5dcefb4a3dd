/* Keyed-state snapshots written on another thread while the task thread
 * keeps updating the state (core/state_mem.c). Runs under ThreadSanitizer
 * (label "concurrency"): the writer only reads frozen entries, the task
 * thread copies before writing and frees replaced entries only after the
 * release. Each written snapshot must equal the state at snapshot_begin. */
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

#include "state.h"

#define G 32u
#define NKEYS 6000
#define NEWKEYS 2000

#include "state_snapshot_model.h"

static void inst_open(inst_t *in) {
  in->ks = sl_keyed_state_new_memory(G, 0, G);
  assert_non_null(in->ks);
  inst_declare(in);
}

typedef struct writer {
  sl_state_snapshot_t *snap;
  sl_buf_t out;
  int rc;
  char err[256];
  atomic_int go, done;
} writer_t;

static void *write_snapshot(void *arg) {
  writer_t *w = arg;
  /* Start once the task thread is busy changing the state, so that the
   * whole write overlaps with its updates. */
  while (!atomic_load_explicit(&w->go, memory_order_acquire)) sched_yield();
  w->rc = sl_state_snapshot_write(w->snap, &w->out, w->err, sizeof(w->err));
  sl_state_snapshot_release(w->snap);
  atomic_store_explicit(&w->done, 1, memory_order_release);
  return NULL;
}

static void check_blob(const sl_buf_t *blob, char **want, int64_t now) {
  inst_t r;
  char err[256] = "";
  r.ks = sl_keyed_state_new_memory(G, 0, G);
  if (sl_keyed_state_restore(r.ks, blob->data, blob->len, err, sizeof(err)) != 0)
    fail_msg("restore: %s", err);
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
  int64_t now = 0;
  sl_keyed_state_set_now(in.ks, now);
  for (int i = 0; i < NKEYS * 4; i++) mutate(&in, 0);
  for (int round = 1; round <= 6; round++) {
    now += 10; /* TTL entries written 40 ms ago expire as the rounds go */
    sl_keyed_state_set_now(in.ks, now);
    char **want = dump_all(&in);
    int64_t begin_now = now;
    writer_t *w = calloc(1, sizeof(*w));
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
    check_blob(&w->out, want, begin_now);
    sl_buf_free(&w->out);
    free(w);
    dumps_free(want);
  }
  sl_keyed_state_free(in.ks);
}

/* The task frees its state (job teardown) while the writer still writes:
 * the snapshot keeps the frozen entries alive and frees them on release. */
static void state_freed_while_writing(void **unused) {
  for (int round = 0; round < 4; round++) {
    inst_t in;
    inst_open(&in);
    for (int i = 0; i < NKEYS * 3; i++) mutate(&in, round);
    char **want = dump_all(&in);
    writer_t *w = calloc(1, sizeof(*w));
    w->snap = sl_keyed_state_snapshot_begin(in.ks);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_snapshot, w), 0);
    for (int i = 0; i < 200 * round; i++) mutate(&in, round + 1);
    atomic_store_explicit(&w->go, 1, memory_order_release);
    for (int i = 0; i < 100 * round; i++) mutate(&in, round + 1);
    sl_keyed_state_free(in.ks);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w->rc, 0);
    check_blob(&w->out, want, 0);
    sl_buf_free(&w->out);
    free(w);
    dumps_free(want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(snapshot_written_while_task_updates),
      cmocka_unit_test(state_freed_while_writing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
