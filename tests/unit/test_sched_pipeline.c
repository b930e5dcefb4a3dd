/*
 * Whole jobs run in-process through the real loader, planner and scheduler,
 * with test plugins: every record arrives (conservation) for every edge kind,
 * worker count, batch size and channel capacity; key_by sends a key to one
 * task; failures stop the job with a message naming the node. Also run under
 * ThreadSanitizer (label "concurrency").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dag.h"
#include "job.h"
#include "plan.h"
#include "registry.h"
#include "summary.h"

#define TPDIR SLUICE_TEST_BINARY_DIR "/testplugins"

typedef struct run_result {
  int open_rc, run_rc;
  char failure[1024];
  uint64_t in[8], out[8], skipped[8], dead[8]; /* per node, by file order */
  uint64_t per_task_in[8][8];                  /* node, subtask */
  uint32_t max_pending[8];                     /* per node: peak pending batches of its tasks */
  uint64_t calls[8];                           /* per node: counter "calls", if any */
} run_result_t;

static int run_yaml(const char *yaml, run_result_t *res) {
  memset(res, 0, sizeof(*res));
  sl_diag_list_t diags;
  sl_diag_init(&diags);
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, TPDIR);
  sl_registry_add_dir(reg, SLUICE_TEST_PLUGIN_DIR);
  sl_dag_t *dag = sl_dag_load_string(yaml, strlen(yaml), "test.yaml", &diags);
  assert_non_null(dag);
  sl_dag_validate(dag, reg, &diags);
  sl_plan_t *plan = diags.errors ? NULL : sl_plan_build(dag, &diags);
  if (diags.errors) {
    sl_diag_print(&diags, stderr);
    fail_msg("DAG invalid");
  }
  sl_job_t *job = sl_job_new(dag, plan);
  char err[1024] = "";
  res->open_rc = sl_job_open(job, err, sizeof(err));
  if (res->open_rc == 0) {
    res->run_rc = sl_job_run(job);
    if (job->failure) snprintf(res->failure, sizeof(res->failure), "%s", job->failure);
  } else {
    snprintf(res->failure, sizeof(res->failure), "%s", err);
  }
  for (uint32_t n = 0; n < dag->node_count && n < 8; n++) {
    sl_node_figures_t f;
    sl_summary_node(job, n, &f);
    res->in[n] = f.records_in;
    res->out[n] = f.records_out;
    res->skipped[n] = f.skipped;
    res->dead[n] = f.dead_lettered;
    res->calls[n] = sl_summary_counter(job, n, "calls");
    for (uint32_t s = 0; s < sl_dag_node_parallelism(&dag->nodes[n]) && s < 8; s++) {
      res->per_task_in[n][s] = atomic_load(&plan->instances[n][s]->stats.records_in);
      uint32_t mp = plan->instances[n][s]->task->max_pending_batches;
      if (mp > res->max_pending[n]) res->max_pending[n] = mp;
    }
  }
  sl_job_free(job);
  sl_dag_free(dag);
  sl_registry_free(reg);
  sl_diag_free(&diags);
  return res->open_rc ? res->open_rc : res->run_rc;
}

/* seq (p=2) -> upper (p=2, chained) -> key_by k -> keycheck (p=3), across
 * worker counts, batch sizes and channel capacities. */
static void key_by_conserves_and_partitions(void **st) {
  static const int workers[] = {1, 2, 4};
  static const int batch[] = {1, 7, 256};
  static const int cap[] = {1, 4};
  for (size_t w = 0; w < 3; w++)
    for (size_t b = 0; b < 3; b++)
      for (size_t c = 0; c < 2; c++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml),
                 "settings: { workers: %d, batch_size: %d, channel_capacity: %d }\n"
                 "nodes:\n"
                 "  src: { use: good:seq, parallelism: 2, config: { count: 20000 } }\n"
                 "  up: { use: good:upper, from: src, parallelism: 2 }\n"
                 "  sink: { use: good:keycheck, from: up, key_by: K, parallelism: 3 }\n",
                 workers[w], batch[b], cap[c]);
        run_result_t r;
        int rc = run_yaml(yaml, &r);
        if (rc != 0) fail_msg("w=%d b=%d c=%d: %s", workers[w], batch[b], cap[c], r.failure);
        assert_int_equal(r.out[0], 20000);
        assert_int_equal(r.in[1], 20000);
        assert_int_equal(r.in[2], 20000);
        /* 10 keys over 3 tasks: more than one task got keys. */
        int busy = 0;
        for (int s = 0; s < 3; s++) busy += r.per_task_in[2][s] > 0;
        assert_true(busy >= 2);
      }
}

static void rebalance_and_broadcast(void **st) {
  run_result_t r;
  const char *yaml = "settings: { workers: 2, batch_size: 16 }\n"
                     "nodes:\n"
                     "  src: { use: good:seq, config: { count: 9000 } }\n"
                     "  rr: { use: good:upper, from: src, parallelism: 3 }\n"
                     "  all: { use: null_sink, from: rr, partition: broadcast, parallelism: 2 }\n";
  assert_int_equal(run_yaml(yaml, &r), 0);
  assert_int_equal(r.in[1], 9000);
  for (int s = 0; s < 3; s++) assert_int_equal(r.per_task_in[1][s], 3000); /* round robin */
  assert_int_equal(r.in[2], 3 * 9000 * 2 / 3);                             /* 9000 each */
  assert_int_equal(r.per_task_in[2][0], 9000);
  assert_int_equal(r.per_task_in[2][1], 9000);
}

static void two_inputs_fan_in(void **st) {
  run_result_t r;
  const char *yaml = "settings: { workers: 2 }\n"
                     "nodes:\n"
                     "  a: { use: good:seq, config: { count: 1000 } }\n"
                     "  b: { use: good:seq, config: { count: 2500 } }\n"
                     "  both: { use: null_sink, from: [a, b] }\n";
  assert_int_equal(run_yaml(yaml, &r), 0);
  assert_int_equal(r.in[2], 3500);
}

static void open_failure_names_node(void **st) {
  run_result_t r;
  const char *yaml = "nodes:\n"
                     "  src: { use: good:seq }\n"
                     "  db: { use: misbehave:open_fails, from: src }\n"
                     "  out: { use: null_sink, from: db }\n";
  assert_int_not_equal(run_yaml(yaml, &r), 0);
  assert_non_null(strstr(r.failure, "node 'db'"));
  assert_non_null(strstr(r.failure, "imaginary database"));
}

static void unknown_port_fails_job(void **st) {
  run_result_t r;
  const char *yaml = "nodes:\n"
                     "  src: { use: good:seq }\n"
                     "  bad: { use: misbehave:bad_port, from: src }\n"
                     "  out: { use: null_sink, from: bad }\n";
  assert_int_not_equal(run_yaml(yaml, &r), 0);
  assert_non_null(strstr(r.failure, "node 'bad'"));
  assert_non_null(strstr(r.failure, "unknown port 7"));
}

static void on_error_fail_names_offset(void **st) {
  run_result_t r;
  const char *yaml = "nodes:\n"
                     "  src: { use: good:seq, config: { count: 100 } }\n"
                     "  f: { use: misbehave:fail_every, from: src, config: { every: 7 } }\n"
                     "  out: { use: null_sink, from: f }\n";
  assert_int_not_equal(run_yaml(yaml, &r), 0);
  /* n=0 is the first multiple of 7: offset 0. */
  assert_non_null(strstr(r.failure, "record at offset 0: poison record n=0"));
  assert_non_null(strstr(r.failure, "misbehave"));
}

/* After a failure nothing more flows: the source's remaining records in the
 * same poll are not delivered downstream. */
static void on_error_fail_stops_the_flow(void **st) {
  run_result_t r;
  const char *yaml = "settings: { batch_size: 256 }\n"
                     "nodes:\n"
                     "  src: { use: good:seq, config: { count: 1000 } }\n"
                     "  f: { use: misbehave:fail_every, from: src, config: { every: 7 } }\n"
                     "  out: { use: null_sink, from: f }\n";
  assert_int_not_equal(run_yaml(yaml, &r), 0);
  assert_int_equal(r.in[1], 1); /* n=0 failed; nothing after it reached f */
  assert_int_equal(r.in[2], 0);
}

/* A large final result (on_end) is backpressured: count_by_key emits 30000
 * results a budget at a time (SL_AGAIN), so its task never piles up more
 * than a batch or two beyond the channel's credit. */
static void on_end_output_is_backpressured(void **st) {
  run_result_t r;
  const char *yaml = "settings: { workers: 2, batch_size: 64, channel_capacity: 2 }\n"
                     "nodes:\n"
                     "  src: { use: good:seq, config: { count: 30000 } }\n"
                     "  cnt: { use: clicks:count_by_key, from: src, key_by: n }\n"
                     "  out: { use: null_sink, from: cnt, partition: rebalance }\n";
  assert_int_equal(run_yaml(yaml, &r), 0);
  assert_int_equal(r.out[1], 30000);
  assert_int_equal(r.in[2], 30000);
  if (r.max_pending[1] > 2) fail_msg("count task piled up %u batches", r.max_pending[1]);
}

/* A record with a NULL value and a length: the job fails with a message. */
static void null_pointer_record_fails_job(void **st) {
  run_result_t r;
  const char *yaml = "nodes:\n"
                     "  src: { use: good:seq, config: { count: 10 } }\n"
                     "  nv: { use: misbehave:null_value, from: src, on_error: skip }\n"
                     "  out: { use: null_sink, from: nv }\n";
  assert_int_not_equal(run_yaml(yaml, &r), 0);
  assert_non_null(strstr(r.failure, "NULL pointer and a non-zero length"));
  assert_int_equal(r.in[2], 0);
}

/* sl_fail is fatal even under on_error: skip. */
static void sl_fail_overrides_skip(void **st) {
  run_result_t r;
  const char *yaml = "nodes:\n"
                     "  src: { use: good:seq, config: { count: 10 } }\n"
                     "  g: { use: misbehave:give_up, from: src, on_error: skip }\n"
                     "  out: { use: null_sink, from: g }\n";
  assert_int_not_equal(run_yaml(yaml, &r), 0);
  assert_non_null(strstr(r.failure, "node 'g'"));
  assert_non_null(strstr(r.failure, "the disk caught fire"));
}

/* process_batch: whole input batches at the head of a task, single records
 * when chained; a failed call applies on_error to each of its records. */
static void process_batch_calls(void **st) {
  run_result_t r;
  const char *headed = "settings: { batch_size: 100 }\n"
                       "nodes:\n"
                       "  src: { use: good:seq, config: { count: 1000 } }\n"
                       "  b: { use: good:batcher, from: src, partition: rebalance }\n"
                       "  out: { use: null_sink, from: b }\n";
  assert_int_equal(run_yaml(headed, &r), 0);
  assert_int_equal(r.in[1], 1000);
  assert_int_equal(r.in[2], 1000);
  assert_true(r.calls[1] >= 10 && r.calls[1] <= 20); /* ~1000/100 batches */
  const char *chained = "settings: { batch_size: 100 }\n"
                        "nodes:\n"
                        "  src: { use: good:seq, config: { count: 1000 } }\n"
                        "  b: { use: good:batcher, from: src }\n"
                        "  out: { use: null_sink, from: b }\n";
  assert_int_equal(run_yaml(chained, &r), 0);
  assert_int_equal(r.calls[1], 1000);
  assert_int_equal(r.in[2], 1000);
  const char *failing = "settings: { batch_size: 100 }\n"
                        "nodes:\n"
                        "  src: { use: good:seq, config: { count: 1000 } }\n"
                        "  b: { use: good:batcher, from: src, partition: rebalance, on_error: skip,\n"
                        "       config: { fail_on: 150 } }\n"
                        "  out: { use: null_sink, from: b }\n";
  assert_int_equal(run_yaml(failing, &r), 0);
  /* The batch holding n=150 is skipped whole; everything else arrives. */
  assert_true(r.skipped[1] >= 1 && r.skipped[1] <= 100);
  assert_int_equal(r.skipped[1] + r.in[2], 1000);
  /* Declining (SL_AGAIN) switches to process() for good: one bad record is
   * one failure, each record counted once, process_batch asked only once. */
  const char *declined = "settings: { batch_size: 100 }\n"
                         "nodes:\n"
                         "  src: { use: good:seq, config: { count: 1000 } }\n"
                         "  b: { use: good:decliner, from: src, partition: rebalance, on_error: skip,\n"
                         "       config: { fail_on: 150 } }\n"
                         "  out: { use: null_sink, from: b }\n";
  assert_int_equal(run_yaml(declined, &r), 0);
  assert_int_equal(r.calls[1], 1);
  assert_int_equal(r.skipped[1], 1);
  assert_int_equal(r.in[1], 1000);
  assert_int_equal(r.in[2], 999);
}

static void on_error_skip_counts(void **st) {
  run_result_t r;
  const char *yaml = "settings: { workers: 2 }\n"
                     "nodes:\n"
                     "  src: { use: good:seq, config: { count: 1000 } }\n"
                     "  f: { use: misbehave:fail_every, from: src, on_error: skip, parallelism: 2 }\n"
                     "  out: { use: null_sink, from: f }\n";
  assert_int_equal(run_yaml(yaml, &r), 0);
  assert_int_equal(r.skipped[1], 100);
  assert_int_equal(r.in[2], 900);
}

static void on_error_dead_letter_routes(void **st) {
  run_result_t r;
  const char *yaml = "nodes:\n"
                     "  src: { use: good:seq, config: { count: 1000 } }\n"
                     "  f: { use: misbehave:fail_every, from: src, on_error: dead_letter }\n"
                     "  out: { use: null_sink, from: f }\n"
                     "  dlq: { use: null_sink, from: f.errors }\n";
  assert_int_equal(run_yaml(yaml, &r), 0);
  assert_int_equal(r.dead[1], 100);
  assert_int_equal(r.in[2], 900);
  assert_int_equal(r.in[3], 100);
}

static void key_by_missing_field_uses_consumer_policy(void **st) {
  run_result_t r;
  const char *yaml = "nodes:\n"
                     "  src: { use: good:seq, config: { count: 50 } }\n"
                     "  k: { use: null_sink, from: src, key_by: nope, on_error: skip, parallelism: 2 }\n";
  assert_int_equal(run_yaml(yaml, &r), 0);
  assert_int_equal(r.skipped[1], 50);
  const char *failing = "nodes:\n"
                        "  src: { use: good:seq, config: { count: 50 } }\n"
                        "  k: { use: null_sink, from: src, key_by: nope, parallelism: 2 }\n";
  assert_int_not_equal(run_yaml(failing, &r), 0);
  assert_non_null(strstr(r.failure, "key_by: field 'nope'"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(key_by_conserves_and_partitions),
      cmocka_unit_test(rebalance_and_broadcast),
      cmocka_unit_test(two_inputs_fan_in),
      cmocka_unit_test(open_failure_names_node),
      cmocka_unit_test(unknown_port_fails_job),
      cmocka_unit_test(on_error_fail_names_offset),
      cmocka_unit_test(on_error_fail_stops_the_flow),
      cmocka_unit_test(on_end_output_is_backpressured),
      cmocka_unit_test(null_pointer_record_fails_job),
      cmocka_unit_test(sl_fail_overrides_skip),
      cmocka_unit_test(process_batch_calls),
      cmocka_unit_test(on_error_skip_counts),
      cmocka_unit_test(on_error_dead_letter_routes),
      cmocka_unit_test(key_by_missing_field_uses_consumer_policy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
