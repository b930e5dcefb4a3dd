/*
 * Planner tests: which nodes chain into one task, which edge kind each input
 * gets, how many channels and tasks result, and plan-level errors.
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
#include "plan.h"
#include "registry.h"

typedef struct fixture {
  sl_registry_t *reg;
  sl_dag_t *dag;
  sl_plan_t *plan;
  sl_diag_list_t diags;
} fixture_t;

static int setup(void **st) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->reg = sl_registry_new();
  sl_registry_add_dir(f->reg, SLUICE_TEST_BINARY_DIR "/testplugins");
  sl_registry_add_dir(f->reg, SLUICE_TEST_PLUGIN_DIR);
  sl_diag_init(&f->diags);
  *st = f;
  return 0;
}

static int teardown(void **st) {
  fixture_t *f = *st;
  sl_plan_free(f->plan);
  sl_dag_free(f->dag);
  sl_registry_free(f->reg);
  sl_diag_free(&f->diags);
  free(f);
  return 0;
}

static sl_plan_t *plan(fixture_t *f, const char *yaml) {
  f->dag = sl_dag_load_string(yaml, strlen(yaml), "p.yaml", &f->diags);
  assert_non_null(f->dag);
  sl_dag_validate(f->dag, f->reg, &f->diags);
  if (f->diags.errors) {
    sl_diag_print(&f->diags, stderr);
    fail_msg("invalid DAG");
  }
  f->plan = sl_plan_build(f->dag, &f->diags);
  return f->plan;
}

static uint32_t node_of(fixture_t *f, const char *name) {
  for (uint32_t i = 0; i < f->dag->node_count; i++)
    if (strcmp(f->dag->nodes[i].name, name) == 0) return i;
  fail_msg("no node %s", name);
  return 0;
}

static sl_edge_kind_t edge(fixture_t *f, const char *from, const char *to) {
  uint32_t a = node_of(f, from), b = node_of(f, to);
  for (uint32_t e = 0; e < f->plan->edge_count; e++)
    if (f->plan->edges[e].from_node == a && f->plan->edges[e].to_node == b)
      return f->plan->edges[e].kind;
  fail_msg("no edge %s -> %s", from, to);
  return SL_EDGE_CHAINED;
}

/* Same parallelism, single forward input: one task per subtask, no channel. */
static void forward_chain_fuses(void **st) {
  fixture_t *f = *st;
  sl_plan_t *p = plan(f, "nodes:\n"
                         "  a: { use: good:seq, parallelism: 3 }\n"
                         "  b: { use: good:upper, from: a, parallelism: 3 }\n"
                         "  c: { use: null_sink, from: b, parallelism: 3 }\n");
  assert_non_null(p);
  assert_int_equal(p->task_count, 3);
  assert_int_equal(p->channel_count, 0);
  assert_int_equal(edge(f, "a", "b"), SL_EDGE_CHAINED);
  assert_int_equal(edge(f, "b", "c"), SL_EDGE_CHAINED);
  for (uint32_t t = 0; t < 3; t++) {
    assert_int_equal(p->tasks[t]->op_count, 3);
    assert_string_equal(p->tasks[t]->ops[0]->node->name, "a");
    assert_string_equal(p->tasks[t]->ops[2]->node->name, "c");
    assert_int_equal(p->tasks[t]->ops[2]->subtask, p->tasks[t]->ops[0]->subtask);
  }
}

/* Different parallelism -> rebalance (all-to-all); key_by -> key_by;
 * explicit broadcast; two inputs -> no chaining even when forward. */
static void edge_kinds_and_channels(void **st) {
  fixture_t *f = *st;
  sl_plan_t *p = plan(f, "nodes:\n"
                         "  a: { use: good:seq, parallelism: 2 }\n"
                         "  b: { use: good:upper, from: a, parallelism: 3 }\n"
                         "  k: { use: good:upper, from: b, key_by: K, parallelism: 3 }\n"
                         "  bc: { use: null_sink, from: k, partition: broadcast, parallelism: 2 }\n"
                         "  x: { use: good:seq, parallelism: 3 }\n"
                         "  two: { use: null_sink, from: [k, x], parallelism: 3 }\n");
  assert_non_null(p);
  assert_int_equal(edge(f, "a", "b"), SL_EDGE_REBALANCE);
  assert_int_equal(edge(f, "b", "k"), SL_EDGE_KEY_BY);
  assert_int_equal(edge(f, "k", "bc"), SL_EDGE_BROADCAST);
  assert_int_equal(edge(f, "k", "two"), SL_EDGE_FORWARD);
  assert_int_equal(edge(f, "x", "two"), SL_EDGE_FORWARD);
  /* a->b 2x3, b->k 3x3, k->bc 3x2, k->two 3 (forward), x->two 3 (forward) */
  assert_int_equal(p->channel_count, 6 + 9 + 6 + 3 + 3);
  /* Every node is its own task set here: 2+3+3+2+3+3. */
  assert_int_equal(p->task_count, 16);
}

/* A named port can chain too, and the errors port exists on every node. */
static void ports_get_targets(void **st) {
  fixture_t *f = *st;
  sl_plan_t *p = plan(f, "nodes:\n"
                         "  a: { use: good:seq }\n"
                         "  f: { use: misbehave:fail_every, from: a, on_error: dead_letter }\n"
                         "  ok: { use: null_sink, from: f }\n"
                         "  bad: { use: null_sink, from: f.errors }\n");
  assert_non_null(p);
  assert_int_equal(p->task_count, 1); /* all chained: one input each, parallelism 1 */
  sl_op_instance_t *fi = p->instances[node_of(f, "f")][0];
  assert_int_equal(fi->ports[0].target_count, 1);
  assert_int_equal(fi->ports[fi->errors_port].target_count, 1);
  assert_string_equal(fi->ports[fi->errors_port].name, "errors");
}

static void dot_names_tasks_and_edges(void **st) {
  fixture_t *f = *st;
  sl_plan_t *p = plan(f, "name: g\nsettings: { workers: 2 }\nnodes:\n"
                         "  a: { use: good:seq }\n"
                         "  b: { use: good:upper, from: a }\n"
                         "  k: { use: null_sink, from: b, key_by: $key, parallelism: 2 }\n");
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  sl_plan_write_dot(p, mem);
  fclose(mem);
  assert_non_null(strstr(text, "digraph \"g\""));
  assert_non_null(strstr(text, "a[0] -> b[0]"));
  assert_non_null(strstr(text, "t0 -> t1 [label=\"key_by\""));
  assert_non_null(strstr(text, "t0 -> t2 [label=\"key_by\""));
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(forward_chain_fuses, setup, teardown),
      cmocka_unit_test_setup_teardown(edge_kinds_and_channels, setup, teardown),
      cmocka_unit_test_setup_teardown(ports_get_targets, setup, teardown),
      cmocka_unit_test_setup_teardown(dot_names_tasks_and_edges, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
