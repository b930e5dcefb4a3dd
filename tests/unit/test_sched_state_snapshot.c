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
#define DUMP_CAP 4096

typedef struct inst {
  sl_keyed_state_t *ks;
  sl_state_t *v, *l, *m, *t;
} inst_t;

static void inst_open(inst_t *in) {
  char err[256];
  in->ks = sl_keyed_state_new_memory(G, 0, G);
  assert_non_null(in->ks);
  in->v = sl_keyed_state_declare(in->ks, "v", SL_STATE_VALUE, 0, err, sizeof(err));
  in->l = sl_keyed_state_declare(in->ks, "l", SL_STATE_LIST, 0, err, sizeof(err));
  in->m = sl_keyed_state_declare(in->ks, "m", SL_STATE_MAP, 0, err, sizeof(err));
  in->t = sl_keyed_state_declare(in->ks, "t", SL_STATE_VALUE, 40, err, sizeof(err));
  assert_true(in->v && in->l && in->m && in->t);
}

static void setk(sl_keyed_state_t *ks, char *buf, int i) {
  int n = snprintf(buf, 32, "key-%d", i);
  sl_keyed_state_set_key(ks, buf, (size_t)n, sl_key_group_of(buf, (size_t)n, G));
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_key(inst_t *in, int i, char *out, size_t cap) {
  char kb[32];
  setk(in->ks, kb, i);
  size_t o = 0, n = 0, cur = 0, np = 0;
  sl_bytes_t b, mk;
  if (sl_ks_get(in->ks, in->v, &b) == 0)
    o += (size_t)snprintf(out + o, cap - o, "v=%.*s|", (int)b.len, (const char *)b.ptr);
  else
    o += (size_t)snprintf(out + o, cap - o, "v=-|");
  if (sl_ks_get(in->ks, in->t, &b) == 0)
    o += (size_t)snprintf(out + o, cap - o, "t=%.*s|", (int)b.len, (const char *)b.ptr);
  assert_int_equal(sl_ks_list_count(in->ks, in->l, &n), 0);
  for (size_t k = 0; k < n; k++) {
    assert_int_equal(sl_ks_list_get(in->ks, in->l, k, &b), 0);
    o += (size_t)snprintf(out + o, cap - o, "%.*s,", (int)b.len, (const char *)b.ptr);
  }
  char *pairs[64];
  while (sl_ks_map_next(in->ks, in->m, &cur, &mk, &b) == 0) {
    assert_true(np < 64);
    pairs[np] = malloc(mk.len + b.len + 2);
    sprintf(pairs[np++], "%.*s:%.*s", (int)mk.len, (const char *)mk.ptr, (int)b.len,
            (const char *)b.ptr);
  }
  qsort(pairs, np, sizeof(char *), cmp_str);
  for (size_t k = 0; k < np; k++) {
    o += (size_t)snprintf(out + o, cap - o, "|%s", pairs[k]);
    free(pairs[k]);
  }
  assert_true(o < cap - 1);
}

static char **dump_all(inst_t *in) {
  char **d = calloc(NKEYS + NEWKEYS, sizeof(char *));
  for (int i = 0; i < NKEYS + NEWKEYS; i++) {
    d[i] = malloc(DUMP_CAP);
    dump_key(in, i, d[i], DUMP_CAP);
  }
  return d;
}

static void dumps_free(char **d) {
  for (int i = 0; i < NKEYS + NEWKEYS; i++) free(d[i]);
  free(d);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* One random change to a random key. */
static void mutate(inst_t *in, int round) {
  char kb[32], v[160], mk[16];
  uint64_t r = next_rand();
  int i = (int)((r >> 32) % (NKEYS + NEWKEYS));
  setk(in->ks, kb, i);
  switch (r % 9) {
  case 0:
    sl_ks_clear(in->ks, in->v);
    break;
  case 1: {
    int n = snprintf(v, sizeof(v), "%0*d", (int)((r >> 8) % 120), round);
    assert_int_equal(sl_ks_put(in->ks, in->v, v, (size_t)n), 0);
    break;
  }
  case 2:
    assert_int_equal(sl_ks_put(in->ks, in->v, "s", 1), 0);
    break;
  case 3:
    assert_int_equal(sl_ks_list_append(in->ks, in->l, "x", 1), 0);
    break;
  case 4:
    assert_int_equal(sl_ks_list_trim_front(in->ks, in->l, 1), 0);
    break;
  case 5: {
    int n = snprintf(mk, sizeof(mk), "f%d", (int)((r >> 8) % 6));
    assert_int_equal(sl_ks_map_put(in->ks, in->m, mk, (size_t)n, "y", 1), 0);
    break;
  }
  case 6: {
    int n = snprintf(mk, sizeof(mk), "f%d", (int)((r >> 8) % 6));
    sl_ks_map_remove(in->ks, in->m, mk, (size_t)n);
    break;
  }
  case 7:
    assert_int_equal(sl_ks_put(in->ks, in->t, "ttl", 3), 0);
    break;
  default:
    sl_ks_clear(in->ks, in->l);
  }
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
