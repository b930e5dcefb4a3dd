/*
 * test_timers.c - the timer queue (core/timers.c) against a simple model:
 * random adds (many duplicates), removes and pops over short and long keys
 * and both domains, and the same with mostly ascending times (the sorted
 * run, lazy removal and compaction); pops must come in (ts, order of
 * setting) order, each timer once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "timers.h"

/* The model: a flat array, searched linearly. */
typedef struct mtimer {
  int domain;
  int64_t ts;
  char key[64];
  size_t len;
  uint64_t order;
  int live;
} mtimer_t;

#define MAX_MODEL 20000
static mtimer_t model[MAX_MODEL];
static size_t model_n;
static uint64_t model_order;

static mtimer_t *model_find(int d, int64_t ts, const char *key, size_t len) {
  for (size_t i = 0; i < model_n; i++)
    if (model[i].live && model[i].domain == d && model[i].ts == ts && model[i].len == len &&
        memcmp(model[i].key, key, len) == 0)
      return &model[i];
  return NULL;
}

static mtimer_t *model_min(int d) {
  mtimer_t *best = NULL;
  for (size_t i = 0; i < model_n; i++)
    if (model[i].live && model[i].domain == d &&
        (!best || model[i].ts < best->ts || (model[i].ts == best->ts && model[i].order < best->order)))
      best = &model[i];
  return best;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Keys: short (inline) and long (heap) ones, from a small set so that adds collide. */
static size_t make_key(char *buf, uint64_t r) {
  unsigned id = (unsigned)(r % 40);
  if (id % 3 == 0) return (size_t)snprintf(buf, 64, "a-long-key-that-does-not-fit-inline-%u", id);
  if (id == 1) return 0; /* the empty key */
  return (size_t)snprintf(buf, 64, "k%u", id);
}

static void test_random_against_model(void **unused) {
  (void)unused;
  sl_timers_t *q = sl_timers_new();
  model_n = 0;
  for (int step = 0; step < 15000; step++) {
    uint64_t r = next_rand();
    int d = (r >> 8) & 1 ? SL_TIME_PROCESSING : SL_TIME_EVENT;
    char key[64];
    size_t len = make_key(key, r >> 16);
    int64_t ts = (int64_t)((r >> 32) % 200) - 50; /* negative timestamps too */
    unsigned op = (unsigned)(r % 10);
    if (op < 6) {
      mtimer_t *m = model_find(d, ts, key, len);
      int added = sl_timers_add(q, (sl_time_domain_t)d, ts, key, len);
      assert_int_equal(added, m ? 0 : 1);
      if (!m) {
        assert_true(model_n < MAX_MODEL);
        model[model_n] = (mtimer_t){d, ts, "", len, model_order++, 1};
        memcpy(model[model_n].key, key, len);
        model_n++;
      }
    } else if (op < 8) {
      mtimer_t *m = model_find(d, ts, key, len);
      assert_int_equal(sl_timers_remove(q, (sl_time_domain_t)d, ts, key, len), m ? 0 : SL_ENOTFOUND);
      if (m) m->live = 0;
    } else {
      int64_t limit = (int64_t)((r >> 40) % 200) - 50;
      mtimer_t *m = model_min(d);
      assert_int_equal(sl_timers_peek(q, (sl_time_domain_t)d), m ? m->ts : SL_TS_MAX);
      int64_t got_ts;
      const void *got_key;
      size_t got_len;
      int popped = sl_timers_pop(q, (sl_time_domain_t)d, limit, &got_ts, &got_key, &got_len);
      if (m && m->ts <= limit) {
        assert_int_equal(popped, 1);
        assert_int_equal(got_ts, m->ts);
        assert_int_equal(got_len, m->len);
        assert_memory_equal(got_key, m->key, m->len);
        m->live = 0;
      } else {
        assert_int_equal(popped, 0);
      }
    }
    size_t live[2] = {0, 0};
    for (size_t i = 0; i < model_n; i++)
      if (model[i].live) live[model[i].domain == SL_TIME_PROCESSING]++;
    assert_int_equal(sl_timers_count(q, SL_TIME_EVENT), live[0]);
    assert_int_equal(sl_timers_count(q, SL_TIME_PROCESSING), live[1]);
  }
  /* Drain both domains: everything left comes out once, in order. */
  for (int d = SL_TIME_EVENT; d <= SL_TIME_PROCESSING; d++) {
    int64_t ts;
    const void *key;
    size_t len;
    mtimer_t *m;
    while ((m = model_min(d)) != NULL) {
      assert_int_equal(sl_timers_pop(q, (sl_time_domain_t)d, SL_TS_MAX, &ts, &key, &len), 1);
      assert_int_equal(ts, m->ts);
      assert_int_equal(len, m->len);
      assert_memory_equal(key, m->key, len);
      m->live = 0;
    }
    assert_int_equal(sl_timers_pop(q, (sl_time_domain_t)d, SL_TS_MAX, &ts, &key, &len), 0);
  }
  sl_timers_free(q);
}

/* Checks peek and pop of domain d against the model (limit: the pop's). */
static void check_pop(sl_timers_t *q, int d, int64_t limit) {
  mtimer_t *m = model_min(d);
  assert_int_equal(sl_timers_peek(q, (sl_time_domain_t)d), m ? m->ts : SL_TS_MAX);
  int64_t got_ts;
  const void *got_key;
  size_t got_len;
  int popped = sl_timers_pop(q, (sl_time_domain_t)d, limit, &got_ts, &got_key, &got_len);
  if (m && m->ts <= limit) {
    assert_int_equal(popped, 1);
    assert_int_equal(got_ts, m->ts);
    assert_int_equal(got_len, m->len);
    assert_memory_equal(got_key, m->key, m->len);
    m->live = 0;
  } else {
    assert_int_equal(popped, 0);
  }
}

static void check_counts(sl_timers_t *q) {
  size_t live[2] = {0, 0};
  for (size_t i = 0; i < model_n; i++)
    if (model[i].live) live[model[i].domain == SL_TIME_PROCESSING]++;
  assert_int_equal(sl_timers_count(q, SL_TIME_EVENT), live[0]);
  assert_int_equal(sl_timers_count(q, SL_TIME_PROCESSING), live[1]);
}

/* The shape of event-time timers: mostly set in ascending time (the queue's
 * sorted run), some behind (its heap), many removed soon after being set
 * (lazy removal, compaction), pops trailing the latest time. */
static void test_mostly_ascending_against_model(void **unused) {
  (void)unused;
  sl_timers_t *q = sl_timers_new();
  model_n = 0;
  size_t recent[256];
  size_t nrecent = 0;
  for (int step = 0; step < 16000; step++) {
    uint64_t r = next_rand();
    int d = (r >> 8) % 8 == 0 ? SL_TIME_PROCESSING : SL_TIME_EVENT;
    int64_t now = step / 3;
    unsigned op = (unsigned)(r % 20);
    if (op < 11) {
      char key[64];
      size_t len = make_key(key, r >> 16);
      int64_t ts = op < 10 ? now + (int64_t)((r >> 32) % 8) : now - (int64_t)((r >> 32) % 60);
      mtimer_t *m = model_find(d, ts, key, len);
      assert_int_equal(sl_timers_add(q, (sl_time_domain_t)d, ts, key, len), m ? 0 : 1);
      if (!m) {
        assert_true(model_n < MAX_MODEL);
        model[model_n] = (mtimer_t){d, ts, "", len, model_order++, 1};
        memcpy(model[model_n].key, key, len);
        recent[nrecent++ % 256] = model_n;
        model_n++;
      }
    } else if (op < 17) {
      if (!nrecent) continue;
      const mtimer_t *r0 = &model[recent[(r >> 24) % (nrecent < 256 ? nrecent : 256)]];
      /* that timer, or one set again since with the same (domain, ts, key) */
      mtimer_t *m = model_find(r0->domain, r0->ts, r0->key, r0->len);
      assert_int_equal(sl_timers_remove(q, (sl_time_domain_t)r0->domain, r0->ts, r0->key, r0->len),
                       m ? 0 : SL_ENOTFOUND);
      if (m) m->live = 0;
    } else {
      check_pop(q, d, now - 10);
    }
    check_counts(q);
  }
  for (int d = SL_TIME_EVENT; d <= SL_TIME_PROCESSING; d++) {
    while (model_min(d)) check_pop(q, d, SL_TS_MAX);
    check_pop(q, d, SL_TS_MAX);
  }
  check_counts(q);
  sl_timers_free(q);
}

/* Removing most timers away from the front (compaction of the run and the
 * heap), then re-adding removed ones: the rest still pops in order, once. */
static void test_remove_most(void **unused) {
  (void)unused;
  sl_timers_t *q = sl_timers_new();
  char key[32];
  for (int i = 0; i < 3000; i++) { /* ascending: the run; every 7th behind: the heap */
    int len = snprintf(key, sizeof(key), "k%d", i);
    int64_t ts = i % 7 == 3 ? i - 500 : i;
    assert_int_equal(sl_timers_add(q, SL_TIME_EVENT, ts, key, (size_t)len), 1);
  }
  for (int i = 0; i < 3000; i++) {
    if (i % 10 == 0) continue;
    int len = snprintf(key, sizeof(key), "k%d", i);
    int64_t ts = i % 7 == 3 ? i - 500 : i;
    assert_int_equal(sl_timers_remove(q, SL_TIME_EVENT, ts, key, (size_t)len), 0);
    assert_int_equal(sl_timers_remove(q, SL_TIME_EVENT, ts, key, (size_t)len), SL_ENOTFOUND);
  }
  assert_int_equal(sl_timers_count(q, SL_TIME_EVENT), 300);
  /* a removed timer set again is a new timer */
  assert_int_equal(sl_timers_add(q, SL_TIME_EVENT, 1, "k1", 2), 1);
  assert_int_equal(sl_timers_add(q, SL_TIME_EVENT, 1, "k1", 2), 0);
  int64_t ts, last = INT64_MIN;
  const void *k;
  size_t len;
  int n = 0;
  while (sl_timers_pop(q, SL_TIME_EVENT, SL_TS_MAX, &ts, &k, &len)) {
    char text[32];
    memcpy(text, k, len);
    text[len] = '\0';
    int i = atoi(text + 1);
    assert_true(i % 10 == 0 || i == 1);
    assert_int_equal(ts, i % 7 == 3 ? i - 500 : i);
    assert_true(ts >= last);
    last = ts;
    n++;
  }
  assert_int_equal(n, 301);
  assert_int_equal(sl_timers_count(q, SL_TIME_EVENT), 0);
  assert_int_equal(sl_timers_peek(q, SL_TIME_EVENT), SL_TS_MAX);
  sl_timers_free(q);
}

/* Many timers (growth of every array), equal timestamps fire in setting order. */
static void test_growth_and_ties(void **unused) {
  (void)unused;
  sl_timers_t *q = sl_timers_new();
  char key[32];
  for (int i = 0; i < 100000; i++) {
    int len = snprintf(key, sizeof(key), "key-%d", i);
    assert_int_equal(sl_timers_add(q, SL_TIME_EVENT, i % 10, key, (size_t)len), 1);
  }
  int64_t ts, last_ts = INT64_MIN;
  const void *k;
  size_t len;
  int last_i = -1;
  for (int n = 0; n < 100000; n++) {
    assert_int_equal(sl_timers_pop(q, SL_TIME_EVENT, SL_TS_MAX, &ts, &k, &len), 1);
    char text[32];
    assert_true(len < sizeof(text));
    memcpy(text, k, len); /* the popped key is not NUL-terminated */
    text[len] = '\0';
    int i = atoi(text + 4);
    if (ts != last_ts) last_i = -1;
    assert_true(ts >= last_ts);
    assert_true(i > last_i); /* same ts: set earlier, fired earlier */
    assert_int_equal(i % 10, ts);
    last_ts = ts;
    last_i = i;
  }
  assert_int_equal(sl_timers_count(q, SL_TIME_EVENT), 0);
  sl_timers_free(q);
}

/* Extreme timestamps and freeing a queue that still holds long keys. */
static void test_extremes(void **unused) {
  (void)unused;
  sl_timers_t *q = sl_timers_new();
  const char *long_key = "a key long enough to live outside the slot, on the heap";
  assert_int_equal(sl_timers_add(q, SL_TIME_EVENT, SL_TS_MAX, long_key, strlen(long_key)), 1);
  assert_int_equal(sl_timers_add(q, SL_TIME_EVENT, SL_TS_MIN, "k", 1), 1);
  assert_int_equal(sl_timers_add(q, SL_TIME_EVENT, SL_TS_MIN, "k", 1), 0);
  assert_int_equal(sl_timers_peek(q, SL_TIME_EVENT), SL_TS_MIN);
  int64_t ts;
  const void *k;
  size_t len;
  assert_int_equal(sl_timers_pop(q, SL_TIME_EVENT, SL_TS_MIN, &ts, &k, &len), 1);
  assert_int_equal(ts, SL_TS_MIN);
  assert_int_equal(sl_timers_pop(q, SL_TIME_EVENT, SL_TS_MAX - 1, &ts, &k, &len), 0);
  assert_int_equal(sl_timers_peek(q, SL_TIME_PROCESSING), SL_TS_MAX);
  sl_timers_free(q); /* the long key still queued: freed here (ASan checks) */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_against_model),
      cmocka_unit_test(test_mostly_ascending_against_model),
      cmocka_unit_test(test_remove_most),
      cmocka_unit_test(test_growth_and_ties),
      cmocka_unit_test(test_extremes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
