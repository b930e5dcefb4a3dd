/*
 * test_watermark.c - the per-partition watermark of a source (watermark.c):
 * the minimum over active partitions, idleness, and a partition released by
 * the source (sl_source_partition_release, a Kafka rebalance).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "watermark.h"

static void emit(sl_wm_gen_t *g, uint32_t partition, int64_t ts) {
  sl_record_t r = {.ts = ts};
  int64_t out;
  char why[64];
  sl_wm_gen_set_partition(g, partition);
  assert_int_equal(sl_wm_gen_stamp(g, &r, &out, why, sizeof why), 0);
  assert_int_equal(out, ts);
}

/* The slowest partition holds the watermark back; max_out_of_order - 1. */
static void test_minimum_over_partitions(void **state) {
  (void)state;
  sl_event_time_t cfg = {.set = true, .max_out_of_order_ms = 10};
  sl_wm_gen_t *g = sl_wm_gen_new(&cfg, 0);
  bool idle = true;
  assert_int_equal(sl_wm_gen_watermark(g, 0, &idle), SL_TS_MIN);
  emit(g, 0, 1000);
  emit(g, 3, 500);
  assert_int_equal(sl_wm_gen_watermark(g, 1, &idle), 500 - 11);
  assert_false(idle);
  emit(g, 3, 2000);
  assert_int_equal(sl_wm_gen_watermark(g, 2, &idle), 1000 - 11);
  sl_wm_gen_free(g);
}

/* A partition without records for idle_timeout stops holding it back. */
static void test_idle_partition(void **state) {
  (void)state;
  sl_event_time_t cfg = {.set = true, .idle_timeout_ms = 100};
  sl_wm_gen_t *g = sl_wm_gen_new(&cfg, 0);
  bool idle;
  emit(g, 0, 1000);
  emit(g, 1, 100);
  assert_int_equal(sl_wm_gen_watermark(g, 10, &idle), 99);
  emit(g, 0, 1500);
  assert_int_equal(sl_wm_gen_watermark(g, 60, &idle), 99);
  emit(g, 0, 1600);
  assert_int_equal(sl_wm_gen_watermark(g, 110, &idle), 1599); /* 1 idle since 10 */
  assert_false(idle);
  sl_wm_gen_free(g);
}

/* A released partition is forgotten at once (no idle_timeout needed), and
 * counts again from its next record. */
static void test_release(void **state) {
  (void)state;
  sl_event_time_t cfg = {.set = true};
  sl_wm_gen_t *g = sl_wm_gen_new(&cfg, 0);
  bool idle;
  emit(g, 0, 1000);
  emit(g, 5, 200);
  assert_int_equal(sl_wm_gen_watermark(g, 1, &idle), 199);
  sl_wm_gen_release(g, 5);
  assert_int_equal(sl_wm_gen_watermark(g, 2, &idle), 999);
  assert_false(idle);
  sl_wm_gen_release(g, 42); /* never seen: nothing happens */
  assert_int_equal(sl_wm_gen_watermark(g, 3, &idle), 999);
  emit(g, 5, 3000);
  assert_int_equal(sl_wm_gen_watermark(g, 4, &idle), 999);
  emit(g, 0, 5000);
  assert_int_equal(sl_wm_gen_watermark(g, 5, &idle), 2999);
  /* every partition released: nothing is known */
  sl_wm_gen_release(g, 0);
  sl_wm_gen_release(g, 5);
  assert_int_equal(sl_wm_gen_watermark(g, 6, &idle), SL_TS_MIN);
  sl_wm_gen_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minimum_over_partitions),
      cmocka_unit_test(test_idle_partition),
      cmocka_unit_test(test_release),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
