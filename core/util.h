/*
 * util.h - small helpers shared by the core: allocation that cannot return
 * NULL (out of memory at set-up time is fatal, with a message), clocks.
 * The hot path allocates nothing: these are for set-up and control paths.
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

void *sl_xmalloc(size_t n);
void *sl_xcalloc(size_t count, size_t size);
void *sl_xrealloc(void *p, size_t n);
char *sl_xstrdup(const char *s);
char *sl_xstrndup(const char *s, size_t n);
/** printf into a new string. */
char *sl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline uint64_t sl_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int64_t sl_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A growable byte buffer (control paths: snapshots, manifests). */
typedef struct sl_buf {
  unsigned char *data;
  size_t len;
  size_t cap;
} sl_buf_t;

void sl_buf_reserve(sl_buf_t *b, size_t extra);
void sl_buf_append(sl_buf_t *b, const void *p, size_t n);
void sl_buf_append_u32(sl_buf_t *b, uint32_t v); /* little-endian */
void sl_buf_append_u64(sl_buf_t *b, uint64_t v); /* little-endian */
void sl_buf_free(sl_buf_t *b);

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
