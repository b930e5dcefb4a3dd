/* util.c - see util.h. */
#define _GNU_SOURCE
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n) {
  fprintf(stderr, "sluice: out of memory (allocating %zu bytes)\n", n);
  abort();
}

void *sl_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory(n);
  return p;
}

void *sl_xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) out_of_memory(count * size);
  return p;
}

void *sl_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory(n);
  return q;
}

char *sl_xstrdup(const char *s) { return sl_xstrndup(s, strlen(s)); }

char *sl_xstrndup(const char *s, size_t n) {
  char *p = sl_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *sl_xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *out = NULL;
  int n = vasprintf(&out, fmt, ap);
  va_end(ap);
  if (n < 0) out_of_memory(0);
  return out;
}

void sl_buf_reserve(sl_buf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) cap *= 2;
  b->data = sl_xrealloc(b->data, cap);
  b->cap = cap;
}

void sl_buf_append(sl_buf_t *b, const void *p, size_t n) {
  if (!n) return;
  sl_buf_reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void sl_buf_append_u32(sl_buf_t *b, uint32_t v) {
  unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  sl_buf_append(b, x, 4);
}

void sl_buf_append_u64(sl_buf_t *b, uint64_t v) {
  sl_buf_append_u32(b, (uint32_t)v);
  sl_buf_append_u32(b, (uint32_t)(v >> 32));
}

void sl_buf_free(sl_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
