/*
 * bench_pipeline - records/s through
 *     generator -> add_field (map) -> key_by product_id -> count_by_key -> null_sink
 * run by the engine with 1 and 2 workers and batch sizes 1, 64 and 1024,
 * against a hand-written single-threaded loop that does the same work by
 * calling the same plugin callbacks directly (generator poll, add_field,
 * extract the key, count_by_key, discard), so the difference between the two
 * is exactly what the engine costs: batches, channels, routing, scheduling.
 *
 * usage: bench_pipeline [records]   (default 2000000)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "job.h"
#include "json_scan.h"
#include "plan.h"
#include "registry.h"
#include "summary.h"
#include "util.h"

/* ------------------------------------------------------ the engine */

static double run_engine(uint64_t records, int workers, int par, int batch, uint64_t *sink_in) {
  char yaml[1024];
  snprintf(yaml, sizeof(yaml),
           "name: bench\n"
           "settings: { workers: %d, parallelism: %d, batch_size: %d, channel_capacity: 16 }\n"
           "nodes:\n"
           "  gen: { use: generator, config: { kind: clicks, count: %llu, seed: 7 } }\n"
           "  map: { use: clicks:add_field, from: gen }\n"
           "  count: { use: clicks:count_by_key, from: map, key_by: product_id }\n"
           "  sink: { use: null_sink, from: count }\n",
           workers, par, batch, (unsigned long long)records);
  sl_diag_list_t diags;
  sl_diag_init(&diags);
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, SLUICE_BENCH_PLUGIN_DIR);
  sl_dag_t *dag = sl_dag_load_string(yaml, strlen(yaml), "bench.yaml", &diags);
  if (dag) sl_dag_validate(dag, reg, &diags);
  sl_plan_t *plan = (dag && !diags.errors) ? sl_plan_build(dag, &diags) : NULL;
  if (!plan) {
    sl_diag_print(&diags, stderr);
    exit(1);
  }
  sl_job_t *job = sl_job_new(dag, plan);
  char err[1024];
  if (sl_job_open(job, err, sizeof(err)) != 0 || sl_job_run(job) != 0) {
    fprintf(stderr, "bench: %s\n", job->failure ? job->failure : err);
    exit(1);
  }
  double secs = (double)(job->end_ns - job->start_ns) / 1e9;
  sl_node_figures_t f;
  sl_summary_node(job, 2, &f); /* count */
  *sink_in = f.records_in;
  sl_job_free(job);
  sl_dag_free(dag);
  sl_registry_free(reg);
  sl_diag_free(&diags);
  return secs;
}

/* ------------------------------------------- the hand-written loop */

/* A minimal host: each stage's emit calls the next stage directly. */
typedef struct stage {
  sl_ctx_head_t head; /* first: the SDK finds the function table here */
  const sl_operator_t *op;
  void *state;
  struct stage *next;
  const char *const *config; /* key, value, key, value, ..., NULL */
  int extract_key;           /* set the record key from product_id before calling next */
  uint64_t seen;
} stage_t;

static const char *stage_config(sl_ctx_t *ctx, const char *key) {
  stage_t *s = (stage_t *)(void *)ctx;
  for (const char *const *c = s->config; c && *c; c += 2)
    if (strcmp(c[0], key) == 0) return c[1];
  for (size_t i = 0; i < s->op->config_count; i++)
    if (strcmp(s->op->config[i].name, key) == 0) return s->op->config[i].default_value;
  return NULL;
}

static int fake_emit(sl_ctx_t *ctx, int port, const sl_record_t *rec) {
  stage_t *s = (stage_t *)(void *)ctx;
  stage_t *n = s->next;
  if (!n) return 0;
  n->seen++;
  if (n->extract_key) {
    sl_json_value_t v;
    sl_record_t keyed = *rec;
    if (sl_json_scan_get(rec->value, rec->value_len, "product_id", &v) == 0) {
      keyed.key = v.ptr;
      keyed.key_len = v.len;
    }
    return n->op->process((sl_ctx_t *)n, n->state, &keyed);
  }
  return n->op ? n->op->process((sl_ctx_t *)n, n->state, rec) : 0;
}
static int fake_port(sl_ctx_t *ctx, const char *name) { return name && *name ? 1 : 0; }
static uint32_t fake_budget(sl_ctx_t *ctx) { return 1024; }
static void fake_logv(sl_ctx_t *ctx, sl_log_level_t l, const char *fmt, va_list ap) {}
static void fake_set_error(sl_ctx_t *ctx, const char *fmt, va_list ap) {}
static sl_counter_t fake_counter_storage[64];
static int fake_counter_next;
static sl_counter_t *fake_counter(sl_ctx_t *ctx, const char *name) {
  return &fake_counter_storage[fake_counter_next++ % 64];
}
/* The generator asks, in open(), whether the job resumed from a checkpoint. */
static uint64_t fake_checkpoint_restored(sl_ctx_t *ctx) { return 0; }
static int fake_op_state_get(sl_ctx_t *ctx, const char *name, sl_bytes_t *out) {
  return SL_ENOTFOUND;
}
static const char *fake_config_string(sl_ctx_t *ctx, const char *key) { return stage_config(ctx, key); }
static int64_t fake_config_int(sl_ctx_t *ctx, const char *key) {
  const char *v = stage_config(ctx, key);
  return v ? strtoll(v, NULL, 10) : 0;
}
static double fake_config_double(sl_ctx_t *ctx, const char *key) {
  const char *v = stage_config(ctx, key);
  return v ? strtod(v, NULL) : 0;
}
static int fake_config_bool(sl_ctx_t *ctx, const char *key) {
  const char *v = stage_config(ctx, key);
  return v && strcmp(v, "true") == 0;
}
static int64_t fake_config_duration(sl_ctx_t *ctx, const char *key) { return fake_config_int(ctx, key); }
static const char *fake_node_name(sl_ctx_t *ctx) { return "baseline"; }
static uint32_t fake_task_index(sl_ctx_t *ctx) { return 0; }
static uint32_t fake_parallelism(sl_ctx_t *ctx) { return 1; }
static int fake_stopping(sl_ctx_t *ctx) { return 0; }
static int64_t fake_now_ms(sl_ctx_t *ctx) { return sl_wall_ms(); }
static void fake_failv(sl_ctx_t *ctx, const char *fmt, va_list ap) {
  vfprintf(stderr, fmt, ap);
  exit(1);
}

static const sl_host_api_t fake_host = {
    .abi_major = SL_ABI_MAJOR,
    .abi_minor = SL_ABI_MINOR,
    .struct_size = sizeof(sl_host_api_t),
    .emit = fake_emit,
    .port = fake_port,
    .budget = fake_budget,
    .logv = fake_logv,
    .set_error = fake_set_error,
    .counter = fake_counter,
    .config_string = fake_config_string,
    .config_int = fake_config_int,
    .config_double = fake_config_double,
    .config_bool = fake_config_bool,
    .config_duration_ms = fake_config_duration,
    .node_name = fake_node_name,
    .task_index = fake_task_index,
    .parallelism = fake_parallelism,
    .stopping = fake_stopping,
    .now_ms = fake_now_ms,
    .json_get = sl_json_scan_get,
    .strerror = sl_error_text,
    .failv = fake_failv,
    .operator_arg = NULL,
    .dag_dir = NULL,
    .config_count = NULL,
    .config_at = NULL,
    .op_state_get = fake_op_state_get,
    .checkpoint_restored = fake_checkpoint_restored,
};

static const sl_operator_t *find_op(sl_registry_t *reg, const char *use) {
  char err[512];
  const sl_operator_t *op = sl_registry_resolve(reg, use, NULL, NULL, err, sizeof(err));
  if (!op) {
    fprintf(stderr, "bench: %s\n", err);
    exit(1);
  }
  return op;
}

static double run_baseline(uint64_t records, uint64_t *count_in) {
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, SLUICE_BENCH_PLUGIN_DIR);
  char count_text[32];
  snprintf(count_text, sizeof(count_text), "%llu", (unsigned long long)records);
  const char *gen_cfg[] = {"kind", "clicks", "count", count_text, "seed", "7", NULL};
  stage_t sink = {{&fake_host}, NULL, NULL, NULL, NULL, 0, 0};
  stage_t count = {{&fake_host}, find_op(reg, "clicks:count_by_key"), NULL, &sink, NULL, 1, 0};
  stage_t map = {{&fake_host}, find_op(reg, "clicks:add_field"), NULL, &count, NULL, 0, 0};
  stage_t gen = {{&fake_host}, find_op(reg, "generator"), NULL, &map, gen_cfg, 0, 0};
  stage_t *stages[] = {&gen, &map, &count};
  char err[512];
  for (int i = 0; i < 3; i++)
    if (stages[i]->op->open && stages[i]->op->open((sl_ctx_t *)stages[i], &stages[i]->state, err, sizeof(err)) != 0) {
      fprintf(stderr, "bench: open failed: %s\n", err);
      exit(1);
    }
  uint64_t t0 = sl_mono_ns();
  while (gen.op->poll((sl_ctx_t *)&gen, gen.state) != SL_DONE) {
  }
  for (int i = 0; i < 3; i++)
    if (stages[i]->op->on_end) stages[i]->op->on_end((sl_ctx_t *)stages[i], stages[i]->state);
  uint64_t t1 = sl_mono_ns();
  for (int i = 0; i < 3; i++)
    if (stages[i]->op->close) stages[i]->op->close(stages[i]->state);
  *count_in = count.seen;
  sl_registry_free(reg);
  return (double)(t1 - t0) / 1e9;
}

int main(int argc, char **argv) {
  uint64_t records = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000ull;
  uint64_t base_in = 0;
  double base = 1e18;
  for (int rep = 0; rep < 3; rep++) {
    double s = run_baseline(records, &base_in);
    if (s < base) base = s;
  }
  printf("generator -> add_field -> key_by product_id -> count_by_key -> null_sink, %llu records\n",
         (unsigned long long)records);
  printf("(best of 3 runs each; the count stage sees %llu records)\n\n", (unsigned long long)base_in);
  printf("| run | workers | parallelism | batch | records/s | ns/record | vs loop |\n"
         "|---|---:|---:|---:|---:|---:|---:|\n");
  printf("| hand-written loop | 1 | - | - | %.0f | %.1f | 100%% |\n", (double)records / base,
         base * 1e9 / (double)records);
  /* 1 worker; 2 workers with every node at parallelism 1 (only pipeline
   * parallelism: the second core gets the count stage); 2 workers with every
   * node at parallelism 2 (data parallelism, as Flink would run it). */
  static const int workers[] = {1, 2, 2};
  static const int pars[] = {1, 1, 2};
  static const int batches[] = {1, 64, 1024};
  for (int w = 0; w < 3; w++)
    for (int b = 0; b < 3; b++) {
      double best = 1e18;
      uint64_t n = batches[b] == 1 ? records / 4 : records;
      uint64_t in = 0;
      for (int rep = 0; rep < 3; rep++) {
        double s = run_engine(n, workers[w], pars[w], batches[b], &in);
        if (s < best) best = s;
      }
      uint64_t expect = batches[b] == 1 ? 0 : base_in;
      if (expect && in != expect) {
        fprintf(stderr, "bench: engine counted %llu records, loop %llu\n", (unsigned long long)in,
                (unsigned long long)expect);
        return 1;
      }
      double rate = (double)n / best;
      printf("| engine | %d | %d | %d | %.0f | %.1f | %.0f%% |\n", workers[w], pars[w], batches[b], rate,
             best * 1e9 / (double)n, 100.0 * rate / ((double)records / base));
    }
  return 0;
}
