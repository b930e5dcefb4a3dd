/* diag.c - collected diagnostics, see diag.h. */
#define _GNU_SOURCE
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void sl_diag_init(sl_diag_list_t *list) { memset(list, 0, sizeof(*list)); }

void sl_diag_free(sl_diag_list_t *list) {
  if (!list) return;
  for (size_t i = 0; i < list->count; i++) {
    free(list->items[i].file);
    free(list->items[i].message);
  }
  free(list->items);
  memset(list, 0, sizeof(*list));
}

void sl_diag_add(sl_diag_list_t *list, sl_diag_severity_t sev, const char *file, sl_pos_t pos,
                 const char *fmt, ...) {
  if (list->count == list->capacity) {
    list->capacity = list->capacity ? list->capacity * 2 : 16;
    list->items = sl_xrealloc(list->items, list->capacity * sizeof(*list->items));
  }
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  sl_diag_t *d = &list->items[list->count++];
  d->severity = sev;
  d->file = file ? sl_xstrdup(file) : NULL;
  d->pos = pos;
  d->message = msg ? msg : sl_xstrdup("(out of memory formatting a diagnostic)");
  if (sev == SL_DIAG_ERROR) list->errors++;
}

/* NULL files sort first; then by name. */
static int diag_cmp(const sl_diag_t *a, const sl_diag_t *b) {
  if (a->file != b->file) {
    if (!a->file) return -1;
    if (!b->file) return 1;
    int c = strcmp(a->file, b->file);
    if (c) return c;
  }
  if (a->pos.line != b->pos.line) return a->pos.line < b->pos.line ? -1 : 1;
  if (a->pos.col != b->pos.col) return a->pos.col < b->pos.col ? -1 : 1;
  return 0;
}

/* Stable merge sort of indices (qsort is not stable). */
static void sort_indices(const sl_diag_t *items, size_t *idx, size_t *tmp, size_t n) {
  if (n < 2) return;
  size_t half = n / 2;
  sort_indices(items, idx, tmp, half);
  sort_indices(items, idx + half, tmp, n - half);
  size_t i = 0, j = half, k = 0;
  while (i < half && j < n) {
    if (diag_cmp(&items[idx[j]], &items[idx[i]]) < 0)
      tmp[k++] = idx[j++];
    else
      tmp[k++] = idx[i++];
  }
  while (i < half) tmp[k++] = idx[i++];
  while (j < n) tmp[k++] = idx[j++];
  memcpy(idx, tmp, n * sizeof(*idx));
}

static size_t *sorted_order(const sl_diag_list_t *list) {
  size_t n = list->count;
  size_t *idx = sl_xmalloc(n * sizeof(*idx));
  size_t *tmp = sl_xmalloc(n * sizeof(*tmp));
  for (size_t i = 0; i < n; i++) idx[i] = i;
  sort_indices(list->items, idx, tmp, n);
  free(tmp);
  return idx;
}

void sl_diag_sort(sl_diag_list_t *list) {
  if (list->count < 2) return;
  size_t *idx = sorted_order(list);
  sl_diag_t *sorted = sl_xmalloc(list->count * sizeof(*sorted));
  for (size_t i = 0; i < list->count; i++) sorted[i] = list->items[idx[i]];
  memcpy(list->items, sorted, list->count * sizeof(*sorted));
  free(sorted);
  free(idx);
}

static void print_one(const sl_diag_t *d, FILE *out) {
  const char *sev = d->severity == SL_DIAG_ERROR ? "error" : "warning";
  if (d->file) fprintf(out, "%s:", d->file);
  if (d->pos.line > 0) {
    if (d->pos.col > 0)
      fprintf(out, "%d:%d:", d->pos.line, d->pos.col);
    else
      fprintf(out, "%d:", d->pos.line);
  }
  if (d->file || d->pos.line > 0) fputc(' ', out);
  fprintf(out, "%s: %s\n", sev, d->message);
}

/* Prints in sorted order without reordering the (const) list. */
void sl_diag_print(const sl_diag_list_t *list, FILE *out) {
  if (list->count == 0) return;
  size_t *idx = sorted_order(list);
  for (size_t i = 0; i < list->count; i++) print_one(&list->items[idx[i]], out);
  free(idx);
}
