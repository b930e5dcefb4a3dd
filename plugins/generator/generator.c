/*
 * generator.c - built-in plugin "generator": a deterministic synthetic source.
 *
 * Record i (i = 0, 1, 2, ... count-1) is a pure function of (seed, i): every
 * random choice comes from a counter-based PRNG (splitmix64 of the seed and
 * the sequence number), never from a running state. So:
 *  - the same config gives the same records, byte for byte, on every run;
 *  - with parallelism p, task t generates exactly the records i with
 *    i % p == t, and the union over the tasks is the same for every p;
 *  - ts = start_ts + i * ts_step_ms and offset = i, whatever task emits it.
 *
 * Formatting is hand-rolled (no snprintf) into a per-instance buffer; the
 * record the host receives points into it (the host copies emitted records).
 *
 * Checkpoints: since records are a function of (seed, i), a task's whole
 * position is its next sequence number. snapshot() saves it as the operator
 * state "next" (8 bytes, little-endian); open() after a restore continues
 * from it, so the records after the checkpoint are the same, byte for byte,
 * as in an uninterrupted run. Pacing (rate) restarts at the restored position.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

enum gen_kind { GEN_CLICKS = 0, GEN_PAYMENTS = 1 };

#define GEN_BUF 512 /* far above the longest record (about 320 bytes) */

typedef struct gen {
  enum gen_kind kind;
  uint64_t count; /* 0 = endless */
  int64_t rate;   /* records per second for the whole node, 0 = unpaced */
  uint64_t seed_mix;
  int64_t start_ts;
  int64_t ts_step_ms;
  uint64_t users;
  uint64_t products;
  uint64_t next; /* next sequence number this task generates */
  uint64_t step; /* parallelism */
  uint64_t base; /* pacing origin: next - task at open (0 on a fresh start) */
  int64_t t0;    /* wall clock of the first poll (pacing), -1 before */
  char key[32];
  char buf[GEN_BUF];
} gen_t;

/* ---------------------------------------------------------- PRNG */

static inline uint64_t splitmix64(uint64_t x) {
  x += UINT64_C(0x9E3779B97F4A7C15);
  x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
  return x ^ (x >> 31);
}

/* Uniform in [0, n) without modulo bias worth caring about (n << 2^64). */
static inline uint64_t below(uint64_t r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

/* ---------------------------------------------------------- formatting */

static inline char *put_lit(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}
#define PUT(p, lit) put_lit((p), (lit), sizeof(lit) - 1)

static inline char *put_u64(char *p, uint64_t v) {
  char tmp[20];
  char *t = tmp + sizeof tmp;
  do {
    *--t = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  size_t n = (size_t)(tmp + sizeof tmp - t);
  memcpy(p, t, n);
  return p + n;
}

static inline char *put_i64(char *p, int64_t v) {
  if (v < 0) {
    *p++ = '-';
    return put_u64(p, (uint64_t)0 - (uint64_t)v);
  }
  return put_u64(p, (uint64_t)v);
}

/* Zero-padded to `width` digits (more digits when the value needs them). */
static inline char *put_u64_pad(char *p, uint64_t v, int width) {
  char tmp[20];
  char *t = tmp + sizeof tmp;
  do {
    *--t = (char)('0' + v % 10);
    v /= 10;
    width--;
  } while (v);
  while (width-- > 0) *p++ = '0';
  size_t n = (size_t)(tmp + sizeof tmp - t);
  memcpy(p, t, n);
  return p + n;
}

/* ---------------------------------------------------------- records */

typedef struct lit {
  const char *s;
  size_t n;
} lit_t;
#define LIT(x) {x, sizeof(x) - 1}

static const lit_t k_currencies[] = {LIT("EUR"), LIT("USD"), LIT("GBP"), LIT("PLN")};
static const struct {
  lit_t code;
  int currency;
} k_countries[] = {{LIT("DE"), 0}, {LIT("FR"), 0}, {LIT("NL"), 0}, {LIT("ES"), 0},
                   {LIT("IT"), 0}, {LIT("US"), 1}, {LIT("GB"), 2}, {LIT("PL"), 3}};
#define N_COUNTRIES (sizeof k_countries / sizeof k_countries[0])
#define N_MERCHANTS 50
#define SESSION_MS INT64_C(1800000) /* a session number changes every 30 minutes */

/* Fill key and value for record i; returns the value length. */
static size_t gen_clicks(gen_t *g, uint64_t i, int64_t ts, size_t *key_len) {
  uint64_t r0 = splitmix64(g->seed_mix ^ i);
  uint64_t r1 = splitmix64(r0);
  uint64_t r2 = splitmix64(r1);
  uint64_t user = below(r0, g->users);
  /* Mildly skewed popularity: the smaller of two uniform draws. */
  uint64_t pa = below(r1, g->products), pb = below(r2, g->products);
  uint64_t product = pa < pb ? pa : pb;
  uint64_t a = below(splitmix64(r2), 100);
  /* A product's price is a property of the product, not of the event. */
  uint64_t price = (below(splitmix64(product ^ UINT64_C(0x5052494345)), 200) + 1) * 100 - 1;
  uint64_t session = ((uint64_t)ts - (uint64_t)g->start_ts) / SESSION_MS;

  char *k = put_u64(PUT(g->key, "u"), user);
  *key_len = (size_t)(k - g->key);

  char *p = g->buf;
  p = PUT(p, "{\"ts\":");
  p = put_i64(p, ts);
  p = PUT(p, ",\"user_id\":\"u");
  p = put_u64(p, user);
  p = PUT(p, "\",\"session_id\":\"s");
  p = put_u64(p, user);
  *p++ = '-';
  p = put_u64(p, session);
  p = PUT(p, "\",\"product_id\":\"p");
  p = put_u64(p, product);
  p = PUT(p, "\",\"page\":\"/products/p");
  p = put_u64(p, product);
  if (a < 70)
    p = PUT(p, "\",\"action\":\"view\",\"price_cents\":");
  else if (a < 85)
    p = PUT(p, "\",\"action\":\"click\",\"price_cents\":");
  else if (a < 95)
    p = PUT(p, "\",\"action\":\"add_to_cart\",\"price_cents\":");
  else
    p = PUT(p, "\",\"action\":\"purchase\",\"price_cents\":");
  p = put_u64(p, price);
  *p++ = '}';
  return (size_t)(p - g->buf);
}

static size_t gen_payments(gen_t *g, uint64_t i, int64_t ts, size_t *key_len) {
  uint64_t r0 = splitmix64(g->seed_mix ^ i);
  uint64_t r1 = splitmix64(r0);
  uint64_t r2 = splitmix64(r1);
  uint64_t user = below(r0, g->users);
  /* Amounts: mostly small, a long tail up to 5000.00. */
  uint64_t u1 = below(r1, 500000), u2 = below(splitmix64(r2), 500000);
  uint64_t amount = 100 + (u1 < u2 ? u1 : u2) * (u1 < u2 ? u1 : u2) / 500000;
  uint64_t merchant = below(r2, N_MERCHANTS);
  /* A user lives in one country. */
  const size_t c = (size_t)below(splitmix64(user ^ UINT64_C(0x434f554e545259)), N_COUNTRIES);

  char *k = put_u64(PUT(g->key, "u"), user);
  *key_len = (size_t)(k - g->key);

  char *p = g->buf;
  p = PUT(p, "{\"ts\":");
  p = put_i64(p, ts);
  p = PUT(p, ",\"tx_id\":\"tx");
  p = put_u64_pad(p, i, 12);
  p = PUT(p, "\",\"user_id\":\"u");
  p = put_u64(p, user);
  p = PUT(p, "\",\"amount_cents\":");
  p = put_u64(p, amount);
  p = PUT(p, ",\"currency\":\"");
  const lit_t *cur = &k_currencies[k_countries[c].currency];
  p = put_lit(p, cur->s, cur->n);
  p = PUT(p, "\",\"merchant\":\"m");
  p = put_u64(p, merchant);
  p = PUT(p, "\",\"country\":\"");
  p = put_lit(p, k_countries[c].code.s, k_countries[c].code.n);
  p = PUT(p, "\"}");
  return (size_t)(p - g->buf);
}

/* ---------------------------------------------------------- callbacks */

#define GEN_STATE_NAME "next"

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/*
 * After a restore: continue from the saved "next". It must be 8 bytes, in
 * this task's residue class (i % parallelism == task), and not past the end
 * (the last value a task reaches is below count + parallelism); an endless
 * run may also have saturated at UINT64_MAX.
 */
static int gen_restore(sl_ctx_t *ctx, gen_t *g, uint32_t task, char *errbuf, size_t errbuf_len) {
  uint64_t ckpt = sl_checkpoint_restored(ctx);
  if (ckpt == 0) return SL_OK;
  sl_bytes_t b;
  int rc = sl_op_state_get(ctx, GEN_STATE_NAME, &b);
  if (rc == SL_ENOTFOUND) {
    sl_log(ctx, SL_LOG_WARN,
           "checkpoint %llu has no position for this task: generating from the start",
           (unsigned long long)ckpt);
    return SL_OK;
  }
  if (rc < 0) {
    snprintf(errbuf, errbuf_len, "generator: cannot read operator state '%s' of checkpoint %llu: %s",
             GEN_STATE_NAME, (unsigned long long)ckpt, sl_strerror(ctx, rc));
    return rc;
  }
  if (b.len != 8) {
    snprintf(errbuf, errbuf_len,
             "generator: operator state '%s' of checkpoint %llu is %zu bytes, expected 8",
             GEN_STATE_NAME, (unsigned long long)ckpt, b.len);
    return SL_EINVAL;
  }
  uint64_t next = get_le64(b.ptr);
  int saturated = g->count == 0 && next == UINT64_MAX;
  if (!saturated && next % g->step != task) {
    snprintf(errbuf, errbuf_len,
             "generator: checkpoint %llu says task %u continues at record %llu, which is not one "
             "of its records (i %% %llu == %u); was the parallelism changed?",
             (unsigned long long)ckpt, (unsigned)task, (unsigned long long)next,
             (unsigned long long)g->step, (unsigned)task);
    return SL_EINVAL;
  }
  if (g->count && next >= g->count + g->step) {
    snprintf(errbuf, errbuf_len,
             "generator: checkpoint %llu says task %u continues at record %llu, beyond count "
             "%llu; was count lowered?",
             (unsigned long long)ckpt, (unsigned)task, (unsigned long long)next,
             (unsigned long long)g->count);
    return SL_EINVAL;
  }
  g->next = next;
  g->base = saturated ? next : next - task;
  sl_log(ctx, SL_LOG_DEBUG, "resuming at record %llu (checkpoint %llu)", (unsigned long long)next,
         (unsigned long long)ckpt);
  return SL_OK;
}

static int gen_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  const char *kind = sl_config_string(ctx, "kind");
  int64_t count = sl_config_int(ctx, "count");
  int64_t rate = sl_config_int(ctx, "rate");
  int64_t users = sl_config_int(ctx, "users");
  int64_t products = sl_config_int(ctx, "products");
  int64_t ts_step = sl_config_int(ctx, "ts_step_ms");
  enum gen_kind k;

  if (!kind || strcmp(kind, "clicks") == 0) {
    k = GEN_CLICKS;
  } else if (strcmp(kind, "payments") == 0) {
    k = GEN_PAYMENTS;
  } else {
    snprintf(errbuf, errbuf_len, "generator: kind must be clicks or payments, not '%s'", kind);
    return SL_ECONFIG;
  }
  if (count < 0 || rate < 0 || ts_step < 0) {
    snprintf(errbuf, errbuf_len, "generator: count, rate and ts_step_ms must not be negative");
    return SL_ECONFIG;
  }
  if (users < 1 || products < 1) {
    snprintf(errbuf, errbuf_len, "generator: users and products must be at least 1");
    return SL_ECONFIG;
  }
  gen_t *g = calloc(1, sizeof *g);
  if (!g) {
    snprintf(errbuf, errbuf_len, "generator: out of memory");
    return SL_ENOMEM;
  }
  g->kind = k;
  g->count = (uint64_t)count;
  g->rate = rate;
  g->seed_mix = splitmix64((uint64_t)sl_config_int(ctx, "seed"));
  g->start_ts = sl_config_int(ctx, "start_ts");
  g->ts_step_ms = ts_step;
  g->users = (uint64_t)users;
  g->products = (uint64_t)products;
  g->step = sl_parallelism(ctx);
  if (g->step == 0) g->step = 1;
  uint32_t task = sl_task_index(ctx);
  g->next = task;
  g->base = 0;
  g->t0 = -1;
  int rc = gen_restore(ctx, g, task, errbuf, errbuf_len);
  if (rc < 0) {
    free(g);
    return rc;
  }
  *state = g;
  return SL_OK;
}

static int gen_snapshot(sl_ctx_t *ctx, void *state, uint64_t checkpoint_id) {
  gen_t *g = state;
  unsigned char b[8];
  put_le64(b, g->next);
  int rc = sl_op_state_put(ctx, GEN_STATE_NAME, b, sizeof b);
  if (rc < 0) {
    sl_fail(ctx, "generator: saving the position for checkpoint %llu failed: %s",
            (unsigned long long)checkpoint_id, sl_strerror(ctx, rc));
    return rc;
  }
  return SL_OK;
}

/* start_ts + i * ts_step_ms, saturating instead of overflowing (an endless
 * run with a huge step, or a hostile config). */
static inline int64_t gen_ts(const gen_t *g, uint64_t i) {
  int64_t step_total, ts;
  if (i > (uint64_t)INT64_MAX || __builtin_mul_overflow((int64_t)i, g->ts_step_ms, &step_total) ||
      __builtin_add_overflow(g->start_ts, step_total, &ts))
    return INT64_MAX;
  return ts;
}

static int gen_poll(sl_ctx_t *ctx, void *state) {
  gen_t *g = state;
  if (sl_stopping(ctx)) return SL_DONE;
  if (g->count && g->next >= g->count) return SL_DONE;

  uint64_t limit = g->count ? g->count : UINT64_MAX; /* first sequence number not allowed yet */
  if (g->rate > 0) {
    int64_t now = sl_now_ms(ctx);
    if (g->t0 < 0) g->t0 = now;
    int64_t elapsed = now > g->t0 ? now - g->t0 : 0;
    /* Record i is due (i - base) * 1000 / rate ms after the start (base is 0
     * on a fresh start, the restored position after a restore). */
    unsigned __int128 due =
        (unsigned __int128)g->base + (unsigned __int128)(uint64_t)elapsed * (uint64_t)g->rate / 1000 + 1;
    if (due < limit) limit = (uint64_t)due;
    if (g->next >= limit) return SL_AGAIN;
  }

  uint32_t budget = sl_budget(ctx);
  sl_record_t rec = {.key = g->key, .headers = NULL, .header_count = 0};
  rec.value = g->buf;
  for (uint32_t n = 0; n < budget && g->next < limit; n++) {
    uint64_t i = g->next;
    int64_t ts = gen_ts(g, i);
    rec.value_len = g->kind == GEN_CLICKS ? gen_clicks(g, i, ts, &rec.key_len)
                                          : gen_payments(g, i, ts, &rec.key_len);
    rec.ts = ts;
    rec.offset = (int64_t)i;
    int rc = sl_emit(ctx, &rec);
    if (rc < 0) return rc;
    /* Saturate instead of wrapping for endless runs. */
    g->next = i > UINT64_MAX - g->step ? UINT64_MAX : i + g->step;
  }
  if (g->count && g->next >= g->count) return SL_DONE;
  return g->rate > 0 && g->next >= limit ? SL_AGAIN : SL_OK;
}

static void gen_close(void *state) { free(state); }

static const sl_config_key_t gen_config[] = {
    {"kind", SL_CONFIG_STRING, "clicks", "what to generate: clicks | payments"},
    {"count", SL_CONFIG_INT, "1000000", "number of records for the whole node; 0 = endless"},
    {"rate", SL_CONFIG_INT, "0",
     "records per second for the whole node (split across its tasks); 0 = as fast as possible; "
     "after a restore, pacing restarts at the restored position"},
    {"seed", SL_CONFIG_INT, "7", "PRNG seed: the same seed gives the same records, byte for byte"},
    {"start_ts", SL_CONFIG_INT, "1700000000000", "event time of record 0, ms since the epoch"},
    {"ts_step_ms", SL_CONFIG_INT, "10", "event time between consecutive records, ms"},
    {"users", SL_CONFIG_INT, "1000", "number of distinct users (u0 .. u<users-1>)"},
    {"products", SL_CONFIG_INT, "100", "clicks: number of distinct products (p0 .. p<products-1>)"},
};

static const sl_operator_t gen_op = {
    SL_OPERATOR_INIT,
    .name = "generator",
    .version = "1.0.0",
    .description = "Deterministic synthetic records (clicks or payments): record i depends only on "
                   "seed and i; key = user id, ts = start_ts + i*ts_step_ms, offset = i; with "
                   "parallelism p, task t emits the records i with i % p == t; replayable: a "
                   "checkpoint saves each task's next i, a restore continues from it",
    .kind = SL_KIND_SOURCE,
    .config = gen_config,
    .config_count = sizeof gen_config / sizeof gen_config[0],
    .open = gen_open,
    .poll = gen_poll,
    .close = gen_close,
    .snapshot = gen_snapshot,
};

SL_PLUGIN_DEFINE("generator", "1.0.0", "Synthetic, deterministic test data sources", &gen_op);
