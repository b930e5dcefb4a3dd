/*
 * wn_assign.h - window assignment arithmetic of the window plugin. Pure:
 * no host calls, no state.
 *
 * Times are int64 milliseconds. Every function is defined on the whole
 * int64 range: intermediate values are computed in 128 bits and results
 * clamped to [INT64_MIN, INT64_MAX] (a window that would end after
 * INT64_MAX ends at INT64_MAX).
 *
 * Tumbling windows of `size` aligned to `offset`: [start, start + size)
 * with start = floor((ts - offset) / size) * size + offset.
 * Sliding windows: windows of `size` starting every `slide` (aligned to
 * `offset`); they are cut into slices of gcd(size, slide): a record belongs
 * to exactly one slice, and a window is the union of size/slice slices.
 */
#ifndef WN_ASSIGN_H
#define WN_ASSIGN_H

#include <stdbool.h>
#include <stdint.h>

enum { WN_TUMBLING = 1, WN_SLIDING = 2, WN_SESSION = 3 };

typedef struct wn_win {
  int kind;          /* WN_TUMBLING, WN_SLIDING, WN_SESSION */
  int64_t size;      /* tumbling, sliding */
  int64_t slide;     /* sliding; = size for tumbling */
  int64_t gap;       /* session */
  int64_t offset;    /* tumbling, sliding */
  int64_t lateness;  /* allowed lateness L */
  int64_t early;     /* early firing period (processing time), 0 = off */
  int64_t slice;     /* gcd(size, slide) for sliding; size for tumbling; gap for sessions */
} wn_win_t;

typedef __int128 wn_i128;

int64_t wn_gcd(int64_t a, int64_t b);
/** floor(a / b) for b > 0, on 128 bits (fast when a fits in 64). */
wn_i128 wn_fdiv(wn_i128 a, int64_t b);
/** floor(a / b) for b > 0, also for negative a. */
int64_t wn_floor_div(int64_t a, int64_t b);
/** a + b, clamped to the int64 range. */
int64_t wn_sat_add(int64_t a, int64_t b);
/** floor((ts - offset) / unit) * unit + offset, clamped; unit > 0. */
int64_t wn_align(int64_t ts, int64_t unit, int64_t offset);

/** Fill slice from kind, size, slide, gap. */
void wn_win_init(wn_win_t *w);

/** Tumbling: the window of ts. */
void wn_tumbling_of(const wn_win_t *w, int64_t ts, int64_t *start, int64_t *end);
/** Sliding (and tumbling): the slice of ts, [start, start + slice). */
void wn_slice_of(const wn_win_t *w, int64_t ts, int64_t *start, int64_t *end);
/**
 * Sliding: the windows that contain the time t (a slice start: the slice
 * lies in a window iff its start does). Their starts are first..last in
 * steps of slide; returns their number (size/slide rounded either way).
 */
int64_t wn_windows_of(const wn_win_t *w, int64_t t, int64_t *first_start, int64_t *last_start);

/**
 * Is a record with time ts late for a tumbling or sliding operator whose
 * watermark is wm: is every window it belongs to past end - 1 + lateness?
 * (window_end - 1 + L < wm for the last window containing ts.)
 */
bool wn_is_late(const wn_win_t *w, int64_t ts, int64_t wm);
/** Is the window ending at `end` expired: end - 1 + L < wm. */
bool wn_expired(const wn_win_t *w, int64_t end, int64_t wm);

#endif
