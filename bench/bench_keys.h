/*
 * bench_keys.h - what the keyed-state benchmarks (bench_state.c,
 * bench_state_rocksdb.c) share: thread CPU time, a seeded PRNG, and a set
 * of unique 16-byte keys.
 */
#ifndef SL_BENCH_KEYS_H
#define SL_BENCH_KEYS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define KEY_LEN 16

/* CPU time of this thread: the figures stay meaningful on a loaded machine
 * (time spent descheduled is not counted; cache pollution still is). */
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state;
static inline uint64_t next_rand(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

typedef struct keys {
  unsigned char (*k)[KEY_LEN];
  size_t n;
} keys_t;

/* n unique keys: 8 random bytes, then the index. */
static void keys_make(keys_t *ks, size_t n, uint64_t seed) {
  ks->k = sl_xmalloc(n * KEY_LEN);
  ks->n = n;
  rng_state = seed;
  for (size_t i = 0; i < n; i++) {
    uint64_t a = next_rand(), b = (uint64_t)i;
    memcpy(ks->k[i], &a, 8);
    memcpy(ks->k[i] + 8, &b, 8);
  }
}

static inline void keys_free(keys_t *ks) { free(ks->k); }

#endif
