/* Channel and ring tests; the concurrent ones also run under ThreadSanitizer. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sched.h>
#include <cmocka.h>

#include "channel.h"

static void ring_fifo_and_capacity(void **st) {
  sl_ring_t r;
  sl_ring_init(&r, 4);
  uintptr_t v;
  for (v = 1; v <= 4; v++) assert_int_equal(sl_ring_push(&r, (void *)v), 0);
  assert_int_equal(sl_ring_push(&r, (void *)5), SL_AGAIN);
  assert_false(sl_ring_can_push(&r));
  for (v = 1; v <= 4; v++) assert_ptr_equal(sl_ring_pop(&r), (void *)v);
  assert_null(sl_ring_pop(&r));
  assert_false(sl_ring_can_pop(&r));
  sl_ring_destroy(&r);
}

static void channel_credit_is_exact_capacity(void **st) {
  /* 3 is not a power of two: credit must still be exactly 3 batches. */
  sl_channel_t *ch = sl_channel_new(3, 8);
  for (int i = 0; i < 3; i++) {
    assert_true(sl_channel_has_credit(ch));
    assert_int_equal(sl_channel_push(ch, sl_channel_acquire(ch)), 0);
  }
  assert_false(sl_channel_has_credit(ch));
  sl_batch_t *extra = sl_channel_acquire(ch);
  assert_int_equal(sl_channel_push(ch, extra), SL_AGAIN);
  sl_batch_free(extra);
  sl_batch_t *b = sl_channel_pop(ch);
  assert_non_null(b);
  assert_true(sl_channel_has_credit(ch));
  sl_channel_release(ch, b);
  sl_channel_free(ch);
}

static void channel_recycles_batches(void **st) {
  sl_channel_t *ch = sl_channel_new(4, 16);
  for (int round = 0; round < 1000; round++) {
    sl_batch_t *b = sl_channel_acquire(ch);
    sl_record_t r = {.value = "x", .value_len = 1};
    assert_int_equal(sl_batch_append(b, &r, NULL, 0, 0), 0);
    assert_int_equal(sl_channel_push(ch, b), 0);
    sl_batch_t *got = sl_channel_pop(ch);
    assert_ptr_equal(got, b);
    assert_int_equal(got->count, 1);
    sl_channel_release(ch, got);
  }
  /* Steady state allocates once, not per round. */
  assert_true(atomic_load(&ch->allocated) <= 2);
  sl_channel_free(ch);
}

#define N_BATCHES 200000
#define PER_BATCH 4

static void *producer_main(void *arg) {
  sl_channel_t *ch = arg;
  char buf[32];
  for (uint64_t i = 0; i < N_BATCHES; i++) {
    sl_batch_t *b = sl_channel_acquire(ch);
    for (int k = 0; k < PER_BATCH; k++) {
      uint64_t v = i * PER_BATCH + (uint64_t)k;
      memcpy(buf, &v, sizeof(v));
      sl_record_t r = {.value = buf, .value_len = sizeof(v), .offset = (int64_t)v};
      sl_batch_append(b, &r, NULL, 0, 0);
    }
    while (sl_channel_push(ch, b) != 0) sched_yield();
  }
  sl_batch_t *end = sl_channel_acquire(ch);
  end->kind = SL_BATCH_END;
  while (sl_channel_push(ch, end) != 0) sched_yield();
  return NULL;
}

/* One producer thread, one consumer thread: every record arrives, in order,
 * with its bytes intact, and batches are recycled (bounded allocation). */
static void channel_spsc_threads(void **st) {
  sl_channel_t *ch = sl_channel_new(8, PER_BATCH);
  pthread_t th;
  pthread_create(&th, NULL, producer_main, ch);
  uint64_t expect = 0;
  for (;;) {
    sl_batch_t *b = sl_channel_pop(ch);
    if (!b) {
      sched_yield();
      continue;
    }
    if (b->kind == SL_BATCH_END) {
      sl_channel_release(ch, b);
      break;
    }
    for (uint32_t k = 0; k < b->count; k++) {
      uint64_t v;
      memcpy(&v, b->records[k].value, sizeof(v));
      assert_int_equal(v, expect);
      assert_int_equal(b->records[k].offset, (int64_t)expect);
      expect++;
    }
    sl_channel_release(ch, b);
  }
  pthread_join(th, NULL);
  assert_int_equal(expect, (uint64_t)N_BATCHES * PER_BATCH);
  assert_true(atomic_load(&ch->allocated) <= 8 + 4);
  sl_channel_free(ch);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ring_fifo_and_capacity),
      cmocka_unit_test(channel_credit_is_exact_capacity),
      cmocka_unit_test(channel_recycles_batches),
      cmocka_unit_test(channel_spsc_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
