/*
 * window_model.c - the reference model of the window operator's end-to-end
 * test (tests/e2e/window_model.sh).
 *
 *   window_model gen SEED N KEYS DISORDER_MS DUP_PERCENT START_TS > input.jsonl
 *     Random records {"ts":..,"k":..,"v":..,"s":..,"w":..}: timestamps are
 *     multiples of 10 ms, out of order by at most DISORDER_MS (each record's
 *     ts >= the largest ts before it - DISORDER_MS), DUP_PERCENT % of the lines
 *     written twice in a row; v integers and quarters, s from a table that
 *     holds JSON escapes and non-ASCII text, w small integers.
 *
 *   window_model expect tumbling SIZE OFFSET < input.jsonl
 *   window_model expect sliding SIZE SLIDE OFFSET < input.jsonl
 *   window_model expect session GAP < input.jsonl
 *     The lines the window operator must emit (in no particular order) for
 *       aggregate: "count, sum(v), min(v), max(v), avg(v), distinct(s),
 *                   approx_distinct(s), top_n(s, 3), tw=top_n(s, 2, w),
 *                   dk=distinct($key)"
 *     with no lateness and no early firing, when no record is late: every
 *     window with records gives exactly one "on_time" result. Windows are
 *     computed offline, the simple way (every record into every window it
 *     belongs to; sessions by sorting a key's timestamps), not the way the
 *     operator does it (slices, merges, timers). For sessions the generator's
 *     timestamps (multiples of 10) never differ by exactly GAP when GAP is not
 *     a multiple of 10, so a session can never be extended after it fired.
 *
 * Only approx_distinct borrows code from the plugin: the HyperLogLog of the
 * window's distinct values is built with plugins/window/wn_hll.c (its
 * accuracy has its own unit test); the test checks that the operator's merged
 * sketches equal the sketch of the union.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wn_hll.h"

/* ------------------------------------------------------------ values */

/* s values: as written in the input (JSON string body), decoded, and as the
 * operator writes them in its output (JSON string body). */
static const struct {
  const char *in, *dec, *out;
} k_s[] = {
    {"s0", "s0", "s0"},
    {"s1", "s1", "s1"},
    {"s2", "s2", "s2"},
    {"s3", "s3", "s3"},
    {"s4", "s4", "s4"},
    {"s10", "s10", "s10"},
    {"q\\\"x", "q\"x", "q\\\"x"},
    {"back\\\\slash", "back\\slash", "back\\\\slash"},
    {"\\u00e9t\\u00e9", "\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},
    {"tab\\there", "tab\there", "tab\\there"},
    {"\\u0073\\u0030", "s0", "s0"}, /* the same value as "s0", written with escapes */
    {"", "", ""},
};
#define NS (sizeof k_s / sizeof k_s[0])

static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t x = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
  x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
  return x ^ (x >> 31);
}
static int64_t below(int64_t n) { return (int64_t)(rnd() % (uint64_t)n); }

static int gen(int argc, char **argv) {
  if (argc != 8) return 2;
  rng_state = strtoull(argv[2], NULL, 10) * 7919 + 1;
  long n = atol(argv[3]), keys = atol(argv[4]);
  int64_t disorder = atoll(argv[5]), dup = atoll(argv[6]), t = atoll(argv[7]);
  for (long i = 0; i < n; i++) {
    t += 10 * below(40); /* sometimes 0: equal timestamps */
    int64_t ts = t - 10 * below(disorder / 10 + 1);
    long k = (long)below(keys);
    char key[32];
    if (k == 1) snprintf(key, sizeof key, "k\\\"q"); /* a key with an escape as written */
    else snprintf(key, sizeof key, "k%ld", k);
    char v[32];
    int64_t vi = below(2001) - 1000;
    int q = (int)below(4);
    if (q == 0) snprintf(v, sizeof v, "%lld", (long long)vi);
    else snprintf(v, sizeof v, "%s%lld.%s", vi < 0 ? "-" : "", (long long)llabs(vi),
                  q == 1 ? "25" : q == 2 ? "5" : "75");
    char line[256];
    snprintf(line, sizeof line, "{\"ts\":%lld,\"k\":\"%s\",\"v\":%s,\"s\":\"%s\",\"w\":%lld}\n",
             (long long)ts, key, v, k_s[below((int64_t)NS)].in, (long long)below(20));
    fputs(line, stdout);
    if (below(100) < dup) fputs(line, stdout);
  }
  return 0;
}

/* ------------------------------------------------------------ records */

typedef struct rec {
  int64_t ts;
  char key[32];
  double v;
  int v_int;
  int s; /* index of the decoded value in the distinct table below */
  int64_t w;
} rec_t;

/* distinct decoded s values (s0 and its escaped form are one) */
static int s_of_input(const char *in, size_t len) {
  for (size_t i = 0; i < NS; i++)
    if (strlen(k_s[i].in) == len && memcmp(k_s[i].in, in, len) == 0) {
      for (size_t j = 0; j <= i; j++)
        if (strcmp(k_s[j].dec, k_s[i].dec) == 0) return (int)j;
    }
  fprintf(stderr, "window_model: unknown s value '%.*s'\n", (int)len, in);
  exit(2);
}

static const char *after(const char *line, const char *tag) {
  const char *p = strstr(line, tag);
  if (!p) {
    fprintf(stderr, "window_model: no %s in %s", tag, line);
    exit(2);
  }
  return p + strlen(tag);
}

/* end of a JSON string body starting at p */
static const char *str_end(const char *p) {
  while (*p && *p != '"') p += (*p == '\\') ? 2 : 1;
  return p;
}

static rec_t *read_input(size_t *count) {
  size_t cap = 1024, n = 0;
  rec_t *r = malloc(cap * sizeof *r);
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    if (n == cap) r = realloc(r, (cap *= 2) * sizeof *r);
    rec_t *x = &r[n++];
    x->ts = strtoll(after(line, "\"ts\":"), NULL, 10);
    const char *k = after(line, "\"k\":\""), *ke = str_end(k);
    snprintf(x->key, sizeof x->key, "%.*s", (int)(ke - k), k);
    const char *v = after(line, "\"v\":");
    x->v = strtod(v, NULL);
    x->v_int = strcspn(v, ".,") == strcspn(v, ",");
    const char *s = after(line, "\"s\":\""), *se = str_end(s);
    x->s = s_of_input(s, (size_t)(se - s));
    x->w = strtoll(after(line, "\"w\":"), NULL, 10);
  }
  *count = n;
  return r;
}

/* ------------------------------------------------------------ windows */

typedef struct win {
  char key[32];
  int64_t start, end;
  int64_t count;
  double sum;
  int all_int;
  double min, max;
  int64_t s_count[NS];
  int64_t s_wsum[NS];
} win_t;

static win_t *wins;
static size_t nwins, capwins;
static size_t *slots;
static size_t nslots;

static uint64_t whash(const char *key, int64_t start) {
  uint64_t h = 1469598103934665603u;
  for (const char *p = key; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211u;
  h ^= (uint64_t)start * 0x9E3779B97F4A7C15u;
  return h ^ (h >> 29);
}

static void rehash(void) {
  nslots = nslots ? nslots * 2 : 1024;
  free(slots);
  slots = calloc(nslots, sizeof *slots);
  for (size_t i = 0; i < nwins; i++) {
    size_t j = whash(wins[i].key, wins[i].start) & (nslots - 1);
    while (slots[j]) j = (j + 1) & (nslots - 1);
    slots[j] = i + 1;
  }
}

static win_t *window(const char *key, int64_t start, int64_t end) {
  if ((nwins + 1) * 2 > nslots) rehash();
  size_t j = whash(key, start) & (nslots - 1);
  while (slots[j]) {
    win_t *w = &wins[slots[j] - 1];
    if (w->start == start && strcmp(w->key, key) == 0) return w;
    j = (j + 1) & (nslots - 1);
  }
  if (nwins == capwins) wins = realloc(wins, (capwins = capwins ? capwins * 2 : 1024) * sizeof *wins);
  win_t *w = &wins[nwins];
  memset(w, 0, sizeof *w);
  snprintf(w->key, sizeof w->key, "%s", key);
  w->start = start;
  w->end = end;
  w->all_int = 1;
  slots[j] = ++nwins;
  return w;
}

static void add(win_t *w, const rec_t *r) {
  if (!w->count || r->v < w->min) w->min = r->v;
  if (!w->count || r->v > w->max) w->max = r->v;
  w->count++;
  w->sum += r->v;
  if (!r->v_int) w->all_int = 0;
  w->s_count[r->s]++;
  w->s_wsum[r->s] += r->w;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b && (a < 0) != (b < 0)) q--;
  return q;
}

/* ------------------------------------------------------------ output */

static void num(double d) {
  if (d == 0) {
    fputs("0", stdout);
    return;
  }
  if (d == floor(d) && fabs(d) < 1e15) {
    printf("%lld", (long long)d);
    return;
  }
  char tmp[40];
  for (int p = 15; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*g", p, d);
    if (strtod(tmp, NULL) == d) break;
  }
  fputs(tmp, stdout);
}

/* the key as the operator writes it: the raw bytes, JSON-escaped */
static void key_json(const char *k) {
  putchar('"');
  for (const char *p = k; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    putchar(*p);
  }
  putchar('"');
}

static int top_by;   /* 0: count, 1: w sum */
static win_t *top_w;
static int top_cmp(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  int64_t vx = top_by ? top_w->s_wsum[x] : top_w->s_count[x];
  int64_t vy = top_by ? top_w->s_wsum[y] : top_w->s_count[y];
  if (vx != vy) return vx > vy ? -1 : 1;
  const char *dx = k_s[x].dec, *dy = k_s[y].dec;
  size_t lx = strlen(dx), ly = strlen(dy), n = lx < ly ? lx : ly;
  int c = memcmp(dx, dy, n);
  if (c) return c;
  return (lx > ly) - (lx < ly);
}

static void top(win_t *w, int by, int n) {
  int idx[NS], m = 0;
  for (size_t i = 0; i < NS; i++)
    if (w->s_count[i]) idx[m++] = (int)i;
  top_by = by;
  top_w = w;
  qsort(idx, (size_t)m, sizeof idx[0], top_cmp);
  putchar('[');
  for (int i = 0; i < m && i < n; i++) {
    printf("%s{\"value\":\"%s\",\"%s\":%lld}", i ? "," : "", k_s[idx[i]].out, by ? "sum" : "count",
           (long long)(by ? w->s_wsum[idx[i]] : w->s_count[idx[i]]));
  }
  putchar(']');
}

static void print(win_t *w) {
  printf("{\"key\":");
  key_json(w->key);
  printf(",\"window_start\":%lld,\"window_end\":%lld,\"timing\":\"on_time\",\"count\":%lld",
         (long long)w->start, (long long)w->end, (long long)w->count);
  fputs(",\"sum_v\":", stdout);
  num(w->sum);
  fputs(",\"min_v\":", stdout);
  num(w->min);
  fputs(",\"max_v\":", stdout);
  num(w->max);
  fputs(",\"avg_v\":", stdout);
  num(w->sum / (double)w->count);
  int distinct = 0;
  static uint8_t regs[WN_HLL_M];
  memset(regs, 0, sizeof regs);
  for (size_t i = 0; i < NS; i++)
    if (w->s_count[i]) {
      distinct++;
      wn_hll_add(regs, wn_hash64(k_s[i].dec, strlen(k_s[i].dec), WN_HLL_SEED));
    }
  printf(",\"distinct_s\":%d,\"approx_distinct_s\":%llu,\"top_s\":", distinct,
         (unsigned long long)wn_hll_estimate(regs));
  top(w, 0, 3);
  fputs(",\"tw\":", stdout);
  top(w, 1, 2);
  fputs(",\"dk\":1}\n", stdout);
}

static int cmp_key_ts(const void *a, const void *b) {
  const rec_t *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c) return c;
  return (x->ts > y->ts) - (x->ts < y->ts);
}

static int expect(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *type = argv[2];
  size_t n;
  rec_t *r = read_input(&n);
  if (strcmp(type, "tumbling") == 0 && argc == 5) {
    int64_t size = atoll(argv[3]), off = atoll(argv[4]);
    for (size_t i = 0; i < n; i++) {
      int64_t s = floor_div(r[i].ts - off, size) * size + off;
      add(window(r[i].key, s, s + size), &r[i]);
    }
  } else if (strcmp(type, "sliding") == 0 && argc == 6) {
    int64_t size = atoll(argv[3]), slide = atoll(argv[4]), off = atoll(argv[5]);
    for (size_t i = 0; i < n; i++)
      for (int64_t s = floor_div(r[i].ts - off, slide) * slide + off; s > r[i].ts - size; s -= slide)
        add(window(r[i].key, s, s + size), &r[i]);
  } else if (strcmp(type, "session") == 0 && argc == 4) {
    int64_t gap = atoll(argv[3]);
    qsort(r, n, sizeof *r, cmp_key_ts);
    for (size_t i = 0; i < n;) {
      size_t j = i + 1;
      while (j < n && strcmp(r[j].key, r[i].key) == 0 && r[j].ts <= r[j - 1].ts + gap) j++;
      win_t *w = window(r[i].key, r[i].ts, r[j - 1].ts + gap);
      for (size_t k = i; k < j; k++) add(w, &r[k]);
      i = j;
    }
  } else {
    return 2;
  }
  for (size_t i = 0; i < nwins; i++) print(&wins[i]);
  free(r);
  return 0;
}

int main(int argc, char **argv) {
  int rc = 2;
  if (argc >= 2 && strcmp(argv[1], "gen") == 0) rc = gen(argc, argv);
  else if (argc >= 2 && strcmp(argv[1], "expect") == 0) rc = expect(argc, argv);
  if (rc == 2)
    fprintf(stderr, "usage: window_model gen SEED N KEYS DISORDER_MS DUP_PERCENT START_TS\n"
                    "       window_model expect tumbling SIZE OFFSET | sliding SIZE SLIDE OFFSET | "
                    "session GAP  (input on stdin)\n");
  return rc;
}
