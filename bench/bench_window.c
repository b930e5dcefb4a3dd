/*
 * bench_window - events/s per core through the built-in window operator:
 *
 *     generator (clicks, event_time: { timestamp: source })
 *       -> window (key_by: $key) -> null_sink
 *
 * on one worker at parallelism 1 with the in-memory state backend, for
 *   (a) a tumbling 1 s window and a tumbling 1 min window, aggregate "count";
 *   (b) a sliding 10 s window every 2 s, aggregate "count, max(price_cents)"
 *       (Nexmark q5's shape),
 * each with 10,000 and 1,000,000 distinct keys (generator `users`), against a
 * hand-written C loop in the same run that does the same work without the
 * engine: it calls the same generator callbacks to produce the same records,
 * takes the record key, extracts price_cents with the same JSON scanner, keeps
 * a count (and max) per key and window in plain open-addressing hash tables
 * (one per open window), fires a window once the event time passes its end
 * (the watermark of `max_out_of_order: 0`), formats each result as the same
 * JSON object the operator emits, and discards it.
 *
 * Both sides must produce the same number of window results; the program
 * stops if they do not.
 *
 * usage: bench_window [records [reps [tumbling|sliding]]]
 *        (default 4000000 records, best of 3, both cases; the third argument
 *        runs one case only, e.g. under perf)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dag.h"
#include "job.h"
#include "json_scan.h"
#include "plan.h"
#include "registry.h"
#include "summary.h"
#include "util.h"

#include "bench_host.h"

#define TS_STEP_MS 1 /* event time between records: 1000 events per second of event time */

typedef struct bcase {
  const char *name;
  int sliding;
  int64_t size_ms, slide_ms;
  const char *aggregate;
} bcase_t;

static const bcase_t k_cases[] = {
    {"tumbling 1s count", 0, 1000, 1000, "count"},
    /* The same count over 1-minute windows: 60 events of a key's stream per window
     * with 1,000 keys, 6 with 10,000; with 1,000,000 keys still about one. */
    {"tumbling 1m count", 0, 60000, 60000, "count"},
    {"sliding 10s/2s count, max(price_cents)", 1, 10000, 2000, "count, max(price_cents)"},
};

static uint64_t cpu_process_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct figures {
  double wall_s, cpu_s;
  uint64_t results;
} figures_t;

/* ------------------------------------------------------ the engine */

static void run_engine(const bcase_t *c, uint64_t records, uint64_t users, figures_t *out) {
  char window_cfg[256];
  if (c->sliding)
    snprintf(window_cfg, sizeof(window_cfg), "type: sliding, size: %lldms, slide: %lldms, aggregate: \"%s\"",
             (long long)c->size_ms, (long long)c->slide_ms, c->aggregate);
  else
    snprintf(window_cfg, sizeof(window_cfg), "type: tumbling, size: %lldms, aggregate: \"%s\"",
             (long long)c->size_ms, c->aggregate);
  char yaml[1024];
  snprintf(yaml, sizeof(yaml),
           "name: bench_window\n"
           "settings: { workers: 1, parallelism: 1, state: { backend: memory } }\n"
           "nodes:\n"
           "  gen:\n"
           "    use: generator\n"
           "    config: { kind: clicks, count: %llu, seed: 7, users: %llu, ts_step_ms: %d }\n"
           "    event_time: { timestamp: source }\n"
           "  win: { use: window, from: gen, key_by: $key, config: { %s } }\n"
           "  sink: { use: null_sink, from: win }\n",
           (unsigned long long)records, (unsigned long long)users, TS_STEP_MS, window_cfg);
  sl_diag_list_t diags;
  sl_diag_init(&diags);
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, SLUICE_BENCH_PLUGIN_DIR);
  sl_dag_t *dag = sl_dag_load_string(yaml, strlen(yaml), "bench_window.yaml", &diags);
  if (dag) sl_dag_validate(dag, reg, &diags);
  sl_plan_t *plan = (dag && !diags.errors) ? sl_plan_build(dag, &diags) : NULL;
  if (!plan) {
    sl_diag_print(&diags, stderr);
    exit(1);
  }
  sl_job_t *job = sl_job_new(dag, plan);
  char err[1024];
  if (sl_job_open(job, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench: %s\n", err);
    exit(1);
  }
  uint64_t c0 = cpu_process_ns();
  if (sl_job_run(job) != 0) {
    fprintf(stderr, "bench: %s\n", job->failure ? job->failure : "job failed");
    exit(1);
  }
  uint64_t c1 = cpu_process_ns();
  out->wall_s = (double)(job->end_ns - job->start_ns) / 1e9;
  out->cpu_s = (double)(c1 - c0) / 1e9;
  sl_node_figures_t f;
  sl_summary_node(job, 2, &f); /* sink */
  out->results = f.records_in;
  sl_job_free(job);
  sl_dag_free(dag);
  sl_registry_free(reg);
  sl_diag_free(&diags);
}

/* ------------------------------------------- the hand-written loop */

/* One (key, window) accumulator. Keys are the generator's user ids
 * ("u0" .. "u999999"), at most 23 bytes here. */
typedef struct ent {
  uint64_t hash; /* 0 = empty slot */
  int64_t count, max;
  uint8_t klen;
  char key[23];
} ent_t;

/* The accumulators of one open window: linear probing, plus the list of used
 * slots so firing visits (and clears) only those. */
typedef struct wtab {
  int64_t start; /* INT64_MIN = not open */
  ent_t *slots;
  uint32_t *used;
  uint32_t mask, n;
} wtab_t;

#define RING 8 /* open windows at a time: size / slide + 1 <= RING */

typedef struct loop {
  const bcase_t *c;
  wtab_t ring[RING];
  uint32_t cap;    /* slots per table, a power of two */
  int64_t lowest;  /* start of the oldest open window, INT64_MIN if none */
  uint64_t results, out_bytes;
  char out[256];
} loop_t;

static inline uint64_t hash_bytes(const char *p, size_t n) { /* FNV-1a, then a finaliser */
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h | 1;
}

static char *put_i64(char *p, int64_t v) {
  char tmp[24];
  char *t = tmp + sizeof tmp;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--t = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *p++ = '-';
  size_t n = (size_t)(tmp + sizeof tmp - t);
  memcpy(p, t, n);
  return p + n;
}
#define PUT(p, lit) (memcpy((p), lit, sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static void loop_fire(loop_t *L, wtab_t *w) {
  for (uint32_t i = 0; i < w->n; i++) {
    ent_t *e = &w->slots[w->used[i]];
    char *p = L->out;
    p = PUT(p, "{\"key\":\"");
    memcpy(p, e->key, e->klen);
    p += e->klen;
    p = PUT(p, "\",\"window_start\":");
    p = put_i64(p, w->start);
    p = PUT(p, ",\"window_end\":");
    p = put_i64(p, w->start + L->c->size_ms);
    p = PUT(p, ",\"timing\":\"on_time\",\"count\":");
    p = put_i64(p, e->count);
    if (L->c->sliding) {
      p = PUT(p, ",\"max_price_cents\":");
      p = put_i64(p, e->max);
    }
    *p++ = '}';
    L->out_bytes += (uint64_t)(p - L->out) + (unsigned char)L->out[9];
    L->results++;
    e->hash = 0;
  }
  w->n = 0;
  w->start = INT64_MIN;
}

/* Fire every open window whose end is <= wm + 1, oldest first. */
static void loop_advance(loop_t *L, int64_t wm) {
  while (L->lowest != INT64_MIN && L->lowest + L->c->size_ms - 1 <= wm) {
    wtab_t *w = &L->ring[(uint64_t)(L->lowest / L->c->slide_ms) % RING];
    if (w->start == L->lowest) loop_fire(L, w);
    L->lowest += L->c->slide_ms;
    /* skip empty starts, stop when nothing is open */
    int any = 0;
    for (int i = 0; i < RING; i++)
      if (L->ring[i].start != INT64_MIN) any = 1;
    if (!any) L->lowest = INT64_MIN;
  }
}

static inline void loop_add(loop_t *L, int64_t start, const char *key, size_t klen, uint64_t h, int64_t price) {
  wtab_t *w = &L->ring[(uint64_t)(start / L->c->slide_ms) % RING];
  if (w->start != start) { /* its previous window has fired */
    w->start = start;
    if (L->lowest == INT64_MIN || start < L->lowest) L->lowest = start;
  }
  uint32_t i = (uint32_t)h & w->mask;
  for (;;) {
    ent_t *e = &w->slots[i];
    if (e->hash == 0) {
      if (w->n >= L->cap / 2) {
        fprintf(stderr, "bench: window table full\n");
        exit(1);
      }
      e->hash = h;
      e->klen = (uint8_t)klen;
      memcpy(e->key, key, klen);
      e->count = 1;
      e->max = price;
      w->used[w->n++] = i;
      return;
    }
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
      e->count++;
      if (price > e->max) e->max = price;
      return;
    }
    i = (i + 1) & w->mask;
  }
}

static loop_t *g_loop;

static int loop_emit(sl_ctx_t *ctx, int port, const sl_record_t *rec) {
  loop_t *L = g_loop;
  const bcase_t *c = L->c;
  /* the watermark of max_out_of_order 0 after this record: ts - 1 */
  loop_advance(L, rec->ts - 1);
  int64_t price = 0;
  if (c->sliding) {
    sl_json_value_t v;
    if (sl_json_scan_get(rec->value, rec->value_len, "price_cents", &v) != 0) {
      fprintf(stderr, "bench: record without price_cents\n");
      exit(1);
    }
    price = strtoll(v.ptr, NULL, 10);
  }
  if (rec->key_len > 23) {
    fprintf(stderr, "bench: key too long\n");
    exit(1);
  }
  uint64_t h = hash_bytes(rec->key, rec->key_len);
  int64_t last = rec->ts - (((rec->ts % c->slide_ms) + c->slide_ms) % c->slide_ms);
  for (int64_t s = last; s > rec->ts - c->size_ms; s -= c->slide_ms) loop_add(L, s, rec->key, rec->key_len, h, price);
  return 0;
}

/* The generator's host (bench_host.h): emit goes to loop_emit. */
static uint32_t loop_budget(sl_ctx_t *ctx) { return 256; }
static const sl_host_api_t loop_host = BENCH_HOST_API(loop_emit, loop_budget);

static void run_baseline(const bcase_t *c, uint64_t records, uint64_t users, figures_t *out) {
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, SLUICE_BENCH_PLUGIN_DIR);
  char err[512];
  const sl_operator_t *op = sl_registry_resolve(reg, "generator", NULL, NULL, err, sizeof(err));
  if (!op) {
    fprintf(stderr, "bench: %s\n", err);
    exit(1);
  }
  char count_text[32], users_text[32], step_text[16];
  snprintf(count_text, sizeof(count_text), "%llu", (unsigned long long)records);
  snprintf(users_text, sizeof(users_text), "%llu", (unsigned long long)users);
  snprintf(step_text, sizeof(step_text), "%d", TS_STEP_MS);
  const char *gen_cfg[] = {"kind",  "clicks",   "count",      count_text, "seed", "7",
                           "users", users_text, "ts_step_ms", step_text,  NULL};
  bench_stage_t gen = {{&loop_host}, op, gen_cfg};
  void *gstate = NULL;
  if (op->open && op->open((sl_ctx_t *)&gen, &gstate, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench: generator open failed: %s\n", err);
    exit(1);
  }

  loop_t *L = sl_xcalloc(1, sizeof(*L));
  L->c = c;
  /* distinct keys of a window: at most min(users, events per window) */
  uint64_t per_window = (uint64_t)(c->size_ms / TS_STEP_MS) + 1;
  uint64_t most = users < per_window ? users : per_window;
  L->cap = 16;
  while (L->cap < 2 * most + 2) L->cap *= 2;
  for (int i = 0; i < RING; i++) {
    L->ring[i].start = INT64_MIN;
    L->ring[i].slots = sl_xcalloc(L->cap, sizeof(ent_t));
    L->ring[i].used = sl_xmalloc(L->cap * sizeof(uint32_t));
    L->ring[i].mask = L->cap - 1;
  }
  L->lowest = INT64_MIN;
  g_loop = L;

  uint64_t c0 = cpu_process_ns(), t0 = sl_mono_ns();
  for (;;) {
    int rc = op->poll((sl_ctx_t *)&gen, gstate);
    if (rc == SL_DONE) break;
    if (rc < 0) {
      fprintf(stderr, "bench: generator failed\n");
      exit(1);
    }
  }
  loop_advance(L, INT64_MAX); /* end of input: the final watermark */
  uint64_t t1 = sl_mono_ns(), c1 = cpu_process_ns();
  out->wall_s = (double)(t1 - t0) / 1e9;
  out->cpu_s = (double)(c1 - c0) / 1e9;
  out->results = L->results;
  if (L->out_bytes == 42) fputc(' ', stderr); /* keep the formatting alive */

  if (op->close) op->close(gstate);
  for (int i = 0; i < RING; i++) {
    free(L->ring[i].slots);
    free(L->ring[i].used);
  }
  free(L);
  sl_registry_free(reg);
}

/* ------------------------------------------------------------ main */

static void best_of(int reps, void (*fn)(const bcase_t *, uint64_t, uint64_t, figures_t *), const bcase_t *c,
                    uint64_t records, uint64_t users, figures_t *best) {
  *best = (figures_t){1e18, 0, 0};
  for (int r = 0; r < reps; r++) {
    figures_t f;
    fn(c, records, users, &f);
    if (f.wall_s < best->wall_s) *best = f;
  }
}

int main(int argc, char **argv) {
  uint64_t records = argc > 1 ? strtoull(argv[1], NULL, 10) : 4000000ull;
  int reps = argc > 2 ? atoi(argv[2]) : 3;
  if (reps < 1) reps = 1;
  const char *only = argc > 3 ? argv[3] : NULL;
  static const uint64_t k_users[] = {10000, 1000000};
  printf("generator (clicks, ts_step_ms %d) -> window (key_by $key) -> null_sink, 1 worker, parallelism 1,\n"
         "memory backend; %llu events per run, best of %d runs each\n\n",
         TS_STEP_MS, (unsigned long long)records, reps);
  printf("| window | keys | run | events/s | ns/event | CPU ns/event | results | vs loop |\n"
         "|---|---:|---|---:|---:|---:|---:|---:|\n");
  fflush(stdout);
  for (size_t ci = 0; ci < sizeof k_cases / sizeof k_cases[0]; ci++)
    for (size_t ui = 0; ui < sizeof k_users / sizeof k_users[0]; ui++) {
      const bcase_t *c = &k_cases[ci];
      if (only && strncmp(c->name, only, strlen(only)) != 0) continue;
      figures_t base, eng;
      best_of(reps, run_baseline, c, records, k_users[ui], &base);
      best_of(reps, run_engine, c, records, k_users[ui], &eng);
      if (base.results != eng.results) {
        fprintf(stderr, "bench: %s, %llu keys: the engine emitted %llu results, the loop %llu\n", c->name,
                (unsigned long long)k_users[ui], (unsigned long long)eng.results,
                (unsigned long long)base.results);
        return 1;
      }
      double base_rate = (double)records / base.wall_s, eng_rate = (double)records / eng.wall_s;
      printf("| %s | %llu | hand-written loop | %.0f | %.1f | %.1f | %llu | 100%% |\n", c->name,
             (unsigned long long)k_users[ui], base_rate, base.wall_s * 1e9 / (double)records,
             base.cpu_s * 1e9 / (double)records, (unsigned long long)base.results);
      printf("| %s | %llu | engine | %.0f | %.1f | %.1f | %llu | %.0f%% |\n", c->name,
             (unsigned long long)k_users[ui], eng_rate, eng.wall_s * 1e9 / (double)records,
             eng.cpu_s * 1e9 / (double)records, (unsigned long long)eng.results, 100.0 * eng_rate / base_rate);
      fflush(stdout);
    }
  return 0;
}
