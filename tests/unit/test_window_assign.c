/* Window assignment of the window plugin (plugins/window/wn_assign.c) and
 * its configuration checks (wn_config.c): tumbling windows and slices for
 * negative timestamps and offsets, gcd slicing of sliding windows checked
 * against a brute-force enumeration, the lateness predicates, the int64
 * edges, and every refused combination of settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "wn_assign.h"
#include "wn_config.h"

static wn_win_t tumbling(int64_t size, int64_t offset, int64_t lateness) {
  wn_win_t w = {.kind = WN_TUMBLING, .size = size, .offset = offset, .lateness = lateness};
  wn_win_init(&w);
  return w;
}

static wn_win_t sliding(int64_t size, int64_t slide, int64_t offset, int64_t lateness) {
  wn_win_t w = {.kind = WN_SLIDING, .size = size, .slide = slide, .offset = offset,
                .lateness = lateness};
  wn_win_init(&w);
  return w;
}

static void floor_div_and_gcd(void **st) {
  assert_int_equal(wn_floor_div(7, 2), 3);
  assert_int_equal(wn_floor_div(-7, 2), -4);
  assert_int_equal(wn_floor_div(-8, 2), -4);
  assert_int_equal(wn_floor_div(-1, 1000), -1);
  assert_int_equal(wn_floor_div(0, 5), 0);
  assert_int_equal(wn_gcd(60000, 30000), 30000);
  assert_int_equal(wn_gcd(10000, 4000), 2000);
  assert_int_equal(wn_gcd(7, 3), 1);
  assert_int_equal(wn_gcd(5, 5), 5);
  assert_int_equal(wn_sat_add(INT64_MAX, 1), INT64_MAX);
  assert_int_equal(wn_sat_add(INT64_MIN, -1), INT64_MIN);
  assert_int_equal(wn_sat_add(5, -7), -2);
}

static void tumbling_windows(void **st) {
  wn_win_t w = tumbling(1000, 0, 0);
  int64_t s, e;
  wn_tumbling_of(&w, 0, &s, &e);
  assert_int_equal(s, 0);
  assert_int_equal(e, 1000);
  wn_tumbling_of(&w, 999, &s, &e);
  assert_int_equal(s, 0);
  wn_tumbling_of(&w, 1000, &s, &e);
  assert_int_equal(s, 1000);
  /* negative ts: floor, not truncation */
  wn_tumbling_of(&w, -1, &s, &e);
  assert_int_equal(s, -1000);
  assert_int_equal(e, 0);
  wn_tumbling_of(&w, -1000, &s, &e);
  assert_int_equal(s, -1000);
  wn_tumbling_of(&w, -1001, &s, &e);
  assert_int_equal(s, -2000);
  /* offsets */
  w = tumbling(1000, 300, 0);
  wn_tumbling_of(&w, 299, &s, &e);
  assert_int_equal(s, -700);
  assert_int_equal(e, 300);
  wn_tumbling_of(&w, 300, &s, &e);
  assert_int_equal(s, 300);
  wn_tumbling_of(&w, -701, &s, &e);
  assert_int_equal(s, -1700);
  /* an offset larger than size aligns the same as offset % size */
  wn_win_t w2 = tumbling(1000, 2300, 0);
  for (int64_t ts = -5000; ts <= 5000; ts += 37) {
    int64_t s1, e1, s2, e2;
    wn_tumbling_of(&w, ts, &s1, &e1);
    wn_tumbling_of(&w2, ts, &s2, &e2);
    assert_int_equal(s1, s2);
    assert_true(s1 <= ts && ts < e1 && e1 - s1 == 1000);
  }
  /* the int64 edges: clamped, no overflow */
  w = tumbling(60000, 0, 0);
  wn_tumbling_of(&w, INT64_MAX, &s, &e);
  assert_true(s <= INT64_MAX && e == INT64_MAX);
  wn_tumbling_of(&w, INT64_MIN, &s, &e);
  assert_int_equal(s, INT64_MIN);
  assert_true(e > INT64_MIN);
}

/* Every (size, slide, offset) below: for each ts, the windows from
 * wn_windows_of equal a brute-force enumeration, the slice of ts lies inside
 * each of them, and window bounds fall on slice bounds. */
static void sliding_windows_and_slices(void **st) {
  const int64_t cfg[][3] = {{10, 5, 0}, {10, 4, 0}, {10, 4, 3}, {9, 6, 1}, {12, 12, 5},
                            {7, 3, 0},  {7, 3, 11}, {60, 25, 7}, {5, 1, 0}};
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
    wn_win_t w = sliding(cfg[c][0], cfg[c][1], cfg[c][2], 0);
    assert_int_equal(w.slice, wn_gcd(cfg[c][0], cfg[c][1]));
    for (int64_t ts = -200; ts <= 200; ts++) {
      int64_t first, last;
      int64_t n = wn_windows_of(&w, ts, &first, &last);
      /* brute force: aligned starts k*slide+offset with start <= ts < start+size */
      int64_t bf_first = INT64_MAX, bf_last = INT64_MIN, bf_n = 0;
      for (int64_t k = -400; k <= 400; k++) {
        int64_t s = k * w.slide + w.offset;
        if (s <= ts && ts < s + w.size) {
          bf_n++;
          if (s < bf_first) bf_first = s;
          if (s > bf_last) bf_last = s;
        }
      }
      assert_int_equal(n, bf_n);
      assert_int_equal(first, bf_first);
      assert_int_equal(last, bf_last);
      int64_t ss, se;
      wn_slice_of(&w, ts, &ss, &se);
      assert_true(ss <= ts && ts < se && se - ss == w.slice);
      /* the slice is inside every window of ts, and in no other window */
      int64_t f2, l2;
      assert_int_equal(wn_windows_of(&w, ss, &f2, &l2), n);
      assert_int_equal(f2, first);
      assert_int_equal(l2, last);
      for (int64_t s = first; s <= last; s += w.slide) assert_true(s <= ss && se <= s + w.size);
    }
  }
}

static void lateness_predicates(void **st) {
  /* tumbling [0, 1000): fires at wm 999; late once 999 + L < wm */
  wn_win_t w = tumbling(1000, 0, 0);
  assert_false(wn_is_late(&w, 500, INT64_MIN));
  assert_false(wn_is_late(&w, 500, 998));
  assert_false(wn_is_late(&w, 500, 999));
  assert_true(wn_is_late(&w, 500, 1000));
  assert_false(wn_expired(&w, 1000, 999));
  assert_true(wn_expired(&w, 1000, 1000));
  w = tumbling(1000, 0, 500);
  assert_false(wn_is_late(&w, 0, 1499));
  assert_true(wn_is_late(&w, 0, 1500));
  assert_false(wn_is_late(&w, -1, 499));
  assert_true(wn_is_late(&w, -1, 500));
  /* sliding: late only when the last window of ts is expired */
  w = sliding(10, 5, 0, 0); /* ts 7 is in [0,10) and [5,15) */
  assert_false(wn_is_late(&w, 7, 10));
  assert_false(wn_is_late(&w, 7, 14));
  assert_true(wn_is_late(&w, 7, 15));
  w = sliding(10, 5, 0, 3);
  assert_false(wn_is_late(&w, 7, 17));
  assert_true(wn_is_late(&w, 7, 18));
  /* the end of input: everything is over, whatever the lateness */
  w = tumbling(1000, 0, INT64_MAX / 2);
  assert_true(wn_expired(&w, INT64_MAX, INT64_MAX));
  assert_true(wn_is_late(&w, 5, INT64_MAX));
  assert_false(wn_expired(&w, INT64_MAX - 10, INT64_MAX - 1)); /* no overflow */
  assert_true(wn_expired(&w, 1000, INT64_MAX - 1));
}

static int check(const char *type, int64_t size, int64_t slide, int64_t gap, int64_t offset,
                 char *err) {
  wn_config_in_t in = {.type = type, .size = size, .slide = slide, .gap = gap, .offset = offset};
  wn_win_t w;
  return wn_config_check(&in, &w, err, 256);
}

static void config_checks(void **st) {
  char err[256];
  assert_int_equal(check("tumbling", 60000, 0, 0, 0, err), 0);
  assert_int_equal(check("sliding", 60000, 30000, 0, 0, err), 0);
  assert_int_equal(check("sliding", 10000, 4000, 0, 1000, err), 0);
  assert_int_equal(check("session", 0, 0, 300000, 0, err), 0);

  assert_int_equal(check("hopping", 1, 0, 0, 0, err), -1);
  assert_non_null(strstr(err, "unknown window type 'hopping'"));
  assert_int_equal(check("tumbling", 0, 0, 0, 0, err), -1);
  assert_non_null(strstr(err, "tumbling windows need size"));
  assert_int_equal(check("tumbling", 1000, 500, 0, 0, err), -1);
  assert_non_null(strstr(err, "slide is for sliding windows"));
  assert_int_equal(check("tumbling", 1000, 0, 500, 0, err), -1);
  assert_non_null(strstr(err, "gap is for session windows"));
  assert_int_equal(check("sliding", 1000, 0, 0, 0, err), -1);
  assert_non_null(strstr(err, "sliding windows need slide"));
  assert_int_equal(check("sliding", 0, 10, 0, 0, err), -1);
  assert_non_null(strstr(err, "sliding windows need size"));
  assert_int_equal(check("sliding", 1000, 2000, 0, 0, err), -1);
  assert_non_null(strstr(err, "slide (2000 ms) is larger than size (1000 ms)"));
  assert_int_equal(check("sliding", 1000, 500, 10, 0, err), -1);
  assert_non_null(strstr(err, "gap is for session windows"));
  assert_int_equal(check("session", 0, 0, 0, 0, err), -1);
  assert_non_null(strstr(err, "session windows need gap"));
  assert_int_equal(check("session", 1000, 0, 10, 0, err), -1);
  assert_non_null(strstr(err, "session windows take gap only, not size"));
  assert_int_equal(check("session", 0, 5, 10, 0, err), -1);
  assert_non_null(strstr(err, "not slide"));
  assert_int_equal(check("session", 0, 0, 10, 5, err), -1);
  assert_non_null(strstr(err, "not offset"));
  assert_int_equal(check("tumbling", -5, 0, 0, 0, err), -1);
  assert_non_null(strstr(err, "must not be negative"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(floor_div_and_gcd),
      cmocka_unit_test(tumbling_windows),
      cmocka_unit_test(sliding_windows_and_slices),
      cmocka_unit_test(lateness_predicates),
      cmocka_unit_test(config_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
