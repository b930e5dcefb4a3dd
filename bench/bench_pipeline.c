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

#include "bench_host.h"

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

/* Each stage's emit calls the next stage directly (bench_host.h has the rest). */
typedef struct stage {
  bench_stage_t base; /* first: the plugin's ctx */
  void *state;
  struct stage *next;
  int extract_key; /* set the record key from product_id before calling next */
  uint64_t seen;
} stage_t;

static int stage_emit(sl_ctx_t *ctx, int port, const sl_record_t *rec) {
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
    return n->base.op->process((sl_ctx_t *)n, n->state, &keyed);
  }
  return n->base.op ? n->base.op->process((sl_ctx_t *)n, n->state, rec) : 0;
}
static uint32_t stage_budget(sl_ctx_t *ctx) { return 1024; }

static const sl_host_api_t stage_host = BENCH_HOST_API(stage_emit, stage_budget);

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
  stage_t sink = {{{&stage_host}, NULL, NULL}, NULL, NULL, 0, 0};
  stage_t count = {{{&stage_host}, find_op(reg, "clicks:count_by_key"), NULL}, NULL, &sink, 1, 0};
  stage_t map = {{{&stage_host}, find_op(reg, "clicks:add_field"), NULL}, NULL, &count, 0, 0};
  stage_t gen = {{{&stage_host}, find_op(reg, "generator"), gen_cfg}, NULL, &map, 0, 0};
  stage_t *stages[] = {&gen, &map, &count};
  char err[512];
  for (int i = 0; i < 3; i++)
    if (stages[i]->base.op->open && stages[i]->base.op->open((sl_ctx_t *)stages[i], &stages[i]->state, err, sizeof(err)) != 0) {
      fprintf(stderr, "bench: open failed: %s\n", err);
      exit(1);
    }
  uint64_t t0 = sl_mono_ns();
  while (gen.base.op->poll((sl_ctx_t *)&gen, gen.state) != SL_DONE) {
  }
  for (int i = 0; i < 3; i++)
    if (stages[i]->base.op->on_end) stages[i]->base.op->on_end((sl_ctx_t *)stages[i], stages[i]->state);
  uint64_t t1 = sl_mono_ns();
  for (int i = 0; i < 3; i++)
    if (stages[i]->base.op->close) stages[i]->base.op->close(stages[i]->state);
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
