/*
 * wn_out.h - the JSON value of one window result:
 *   {"key":"<key>","window_start":<ms>,"window_end":<ms>,"timing":"on_time",
 *    <one member per aggregate, in the order of the aggregate list>}
 * Pure: no host calls.
 */
#ifndef WN_OUT_H
#define WN_OUT_H

#include "wn_agg.h"

/**
 * Replace b's content with the result of a window: key bytes, bounds,
 * timing ("early", "on_time", "late"), the merged FIXED accumulator area
 * `acc` and, for each aggregate i of ITEMS storage, its merged items
 * tabs[i] (other entries unused). Returns 0, or -1 when out of memory.
 */
int wn_out_window(wn_buf_t *b, const wn_aggs_t *a, const void *key, size_t key_len, int64_t start,
                  int64_t end, const char *timing, const void *acc, wn_tab_t *const *tabs);

#endif
