/*
 * wn_out.c - see wn_out.h.
 */
#include "wn_out.h"

#include <string.h>

int wn_out_window(wn_buf_t *b, const wn_aggs_t *a, const void *key, size_t key_len, int64_t start,
                  int64_t end, const char *timing, const void *acc, wn_tab_t *const *tabs) {
  b->len = 0;
  b->oom = 0;
  wn_buf_puts(b, "{\"key\":");
  wn_json_str(b, key, key_len);
  wn_buf_puts(b, ",\"window_start\":");
  wn_json_i64(b, start);
  wn_buf_puts(b, ",\"window_end\":");
  wn_json_i64(b, end);
  wn_buf_puts(b, ",\"timing\":\"");
  wn_buf_puts(b, timing);
  wn_buf_putc(b, '"');
  for (size_t i = 0; i < a->n; i++) {
    const wn_agg_t *g = &a->v[i];
    wn_buf_putc(b, ',');
    wn_json_str(b, g->name, strlen(g->name));
    wn_buf_putc(b, ':');
    if (g->ops->storage == WN_STORE_FIXED)
      g->ops->result(g, (const unsigned char *)acc + g->acc_off, NULL, b);
    else
      g->ops->result(g, NULL, tabs ? tabs[i] : NULL, b);
  }
  wn_buf_putc(b, '}');
  return b->oom ? -1 : 0;
}
