/*
 * wn_assign.c - see wn_assign.h.
 */
#include "wn_assign.h"

typedef wn_i128 i128;

static int64_t clamp(i128 v) {
  if (v > INT64_MAX) return INT64_MAX;
  if (v < INT64_MIN) return INT64_MIN;
  return (int64_t)v;
}

int64_t wn_gcd(int64_t a, int64_t b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* floor(a / b), b > 0: 64-bit division when a fits (always, for sane
 * timestamps), 128-bit otherwise. */
static i128 floor_div128(i128 a, i128 b) {
  if (a >= INT64_MIN && a <= INT64_MAX && b <= INT64_MAX) {
    int64_t x = (int64_t)a, y = (int64_t)b;
    int64_t q = x / y;
    if (x % y != 0 && x < 0) q--;
    return q;
  }
  i128 q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

wn_i128 wn_fdiv(wn_i128 a, int64_t b) { return floor_div128(a, b); }

int64_t wn_floor_div(int64_t a, int64_t b) { return clamp(floor_div128(a, b)); }

int64_t wn_sat_add(int64_t a, int64_t b) { return clamp((i128)a + b); }

static i128 align128(int64_t ts, int64_t unit, int64_t offset) {
  return floor_div128((i128)ts - offset, unit) * unit + offset;
}

int64_t wn_align(int64_t ts, int64_t unit, int64_t offset) {
  return clamp(align128(ts, unit, offset));
}

void wn_win_init(wn_win_t *w) {
  switch (w->kind) {
  case WN_TUMBLING:
    w->slide = w->size;
    w->slice = w->size;
    break;
  case WN_SLIDING: w->slice = wn_gcd(w->size, w->slide); break;
  default: w->slice = w->gap; break;
  }
}

void wn_tumbling_of(const wn_win_t *w, int64_t ts, int64_t *start, int64_t *end) {
  i128 s = align128(ts, w->size, w->offset);
  *start = clamp(s);
  *end = clamp(s + w->size);
}

void wn_slice_of(const wn_win_t *w, int64_t ts, int64_t *start, int64_t *end) {
  i128 s = align128(ts, w->slice, w->offset);
  *start = clamp(s);
  *end = clamp(s + w->slice);
}

int64_t wn_windows_of(const wn_win_t *w, int64_t t, int64_t *first_start, int64_t *last_start) {
  /* windows [s, s + size) with s = k * slide + offset and s <= t < s + size */
  i128 last = align128(t, w->slide, w->offset);
  /* smallest aligned s with s > t - size: s = align(t - size) + slide */
  i128 first = floor_div128((i128)t - w->size - w->offset, w->slide) * w->slide + w->offset +
               w->slide;
  *first_start = clamp(first);
  *last_start = clamp(last);
  return (int64_t)((last - first) / w->slide + 1);
}

bool wn_expired(const wn_win_t *w, int64_t end, int64_t wm) {
  if (wm == INT64_MAX) return true; /* the end of input: everything is over */
  return (i128)end - 1 + w->lateness < wm;
}

bool wn_is_late(const wn_win_t *w, int64_t ts, int64_t wm) {
  if (wm == INT64_MIN) return false;
  /* the last window containing ts starts at align(ts, slide) */
  i128 end = align128(ts, w->slide, w->offset) + w->size;
  if (wm == INT64_MAX) return true;
  return end - 1 + w->lateness < wm;
}
