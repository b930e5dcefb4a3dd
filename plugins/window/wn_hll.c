/*
 * wn_hll.c - see wn_hll.h.
 */
#include "wn_hll.h"

#include <math.h>
#include <string.h>

uint64_t wn_hash64(const void *key, size_t len, uint64_t seed) {
  const uint64_t m = UINT64_C(0xc6a4a7935bd1e995);
  const int r = 47;
  uint64_t h = seed ^ (len * m);
  const unsigned char *p = key;
  size_t n = len / 8;
  for (size_t i = 0; i < n; i++) {
    uint64_t k;
    memcpy(&k, p + 8 * i, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const unsigned char *t = p + 8 * n;
  switch (len & 7) {
  case 7: h ^= (uint64_t)t[6] << 48; /* fall through */
  case 6: h ^= (uint64_t)t[5] << 40; /* fall through */
  case 5: h ^= (uint64_t)t[4] << 32; /* fall through */
  case 4: h ^= (uint64_t)t[3] << 24; /* fall through */
  case 3: h ^= (uint64_t)t[2] << 16; /* fall through */
  case 2: h ^= (uint64_t)t[1] << 8;  /* fall through */
  case 1:
    h ^= (uint64_t)t[0];
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

int wn_hll_add(uint8_t *regs, uint64_t hash) {
  uint32_t idx = (uint32_t)(hash >> (64 - WN_HLL_P));
  uint64_t rest = hash << WN_HLL_P;
  /* rank: position of the first 1 bit in the remaining 64 - P bits, from 1 */
  uint8_t rank = rest ? (uint8_t)(__builtin_clzll(rest) + 1) : (uint8_t)(64 - WN_HLL_P + 1);
  if (regs[idx] >= rank) return 0;
  regs[idx] = rank;
  return 1;
}

void wn_hll_merge(uint8_t *dst, const uint8_t *src) {
  for (uint32_t i = 0; i < WN_HLL_M; i++)
    if (src[i] > dst[i]) dst[i] = src[i];
}

/* Ertl's improved estimator ("New cardinality estimation algorithms for
 * HyperLogLog sketches", 2017): no bias tables, no switch to linear
 * counting, and no bias bump between small and large counts. */
static double hll_sigma(double x) {
  if (x == 1.0) return INFINITY;
  double y = 1, z = x, old;
  do {
    x *= x;
    old = z;
    z += x * y;
    y += y;
  } while (z != old);
  return z;
}

static double hll_tau(double x) {
  if (x == 0.0 || x == 1.0) return 0;
  double y = 1, z = 1 - x, old;
  do {
    x = sqrt(x);
    old = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
  } while (z != old);
  return z / 3;
}

uint64_t wn_hll_estimate(const uint8_t *regs) {
  enum { Q = 64 - WN_HLL_P };
  const double m = WN_HLL_M;
  uint32_t c[Q + 2] = {0};
  for (uint32_t i = 0; i < WN_HLL_M; i++) c[regs[i] <= Q + 1 ? regs[i] : Q + 1]++;
  if (c[0] == WN_HLL_M) return 0;
  double z = m * hll_tau(1 - c[Q + 1] / m);
  for (int k = Q; k >= 1; k--) z = 0.5 * (z + c[k]);
  z += m * hll_sigma(c[0] / m);
  return (uint64_t)llround(m * m / (2 * log(2)) / z);
}
