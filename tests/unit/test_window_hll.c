/* The window plugin's HyperLogLog (plugins/window/wn_hll.c), the sketch of
 * approx_distinct: 1e5 distinct values are estimated within the documented
 * bound (4.9% = 3 standard errors of 1.63%) for several seeds, small counts
 * are (nearly) exact, duplicates change nothing, and merging two sketches
 * gives exactly the sketch of the union. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "wn_hll.h"

static uint64_t h(const char *prefix, uint64_t i, uint64_t seed) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%s%llu", prefix, (unsigned long long)i);
  return wn_hash64(buf, (size_t)n, seed);
}

static void accuracy_1e5(void **st) {
  static uint8_t regs[WN_HLL_M];
  const char *prefixes[] = {"10.0.", "user-", "", "dst:"};
  double worst = 0;
  for (uint64_t seed = 0; seed < 4; seed++) {
    memset(regs, 0, sizeof regs);
    const uint64_t n = 100000;
    for (uint64_t i = 0; i < n; i++) wn_hll_add(regs, h(prefixes[seed], i, 0x5eed5a11ce + seed));
    double est = (double)wn_hll_estimate(regs);
    double err = fabs(est - (double)n) / (double)n;
    if (err > worst) worst = err;
    printf("hll: seed %llu: %llu distinct -> %.0f (error %.2f%%)\n", (unsigned long long)seed,
           (unsigned long long)n, est, err * 100);
    assert_true(err < 0.049);
  }
  printf("hll: worst error %.2f%% (bound 4.9%%, standard error 1.63%%)\n", worst * 100);
}

static void small_counts_and_duplicates(void **st) {
  static uint8_t regs[WN_HLL_M];
  memset(regs, 0, sizeof regs);
  assert_int_equal(wn_hll_estimate(regs), 0);
  const uint64_t checks[] = {1, 2, 10, 100, 500, 1000};
  uint64_t added = 0;
  for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
    for (; added < checks[c]; added++) wn_hll_add(regs, h("v", added, 1));
    double est = (double)wn_hll_estimate(regs);
    double tol = checks[c] <= 10 ? 1 : checks[c] * 0.049;
    assert_true(fabs(est - (double)checks[c]) <= tol);
  }
  /* adding the same values again changes no register */
  for (uint64_t i = 0; i < added; i++) assert_int_equal(wn_hll_add(regs, h("v", i, 1)), 0);
  assert_true(fabs((double)wn_hll_estimate(regs) - 1000) <= 49);
}

static void merge_is_union(void **st) {
  static uint8_t a[WN_HLL_M], b[WN_HLL_M], u[WN_HLL_M];
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  memset(u, 0, sizeof u);
  for (uint64_t i = 0; i < 30000; i++) {
    uint64_t x = h("x", i, 9);
    wn_hll_add(i % 3 ? a : b, x);
    if (i % 5 == 0) wn_hll_add(b, x); /* overlap */
    wn_hll_add(u, x);
  }
  wn_hll_merge(a, b);
  assert_memory_equal(a, u, WN_HLL_M);
  double est = (double)wn_hll_estimate(a);
  assert_true(fabs(est - 30000) / 30000 < 0.049);
}

static void hash_is_stable(void **st) {
  /* the sketch is stored in checkpoints: the hash must not change */
  assert_true(wn_hash64("", 0, 0) == wn_hash64("", 0, 0));
  assert_true(wn_hash64("abc", 3, 1) != wn_hash64("abd", 3, 1));
  assert_true(wn_hash64("abc", 3, 1) != wn_hash64("abc", 3, 2));
  assert_true(wn_hash64("abcdefgh", 8, 0) != wn_hash64("abcdefgh\0", 9, 0));
  /* known answers: a change here invalidates the sketches in checkpoints */
  assert_true(wn_hash64("hello", 5, 0) == UINT64_C(0x1e68d17c457bf117));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accuracy_1e5),
      cmocka_unit_test(small_counts_and_duplicates),
      cmocka_unit_test(merge_is_union),
      cmocka_unit_test(hash_is_stable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
