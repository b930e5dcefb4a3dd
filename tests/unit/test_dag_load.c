/*
 * test_dag_load.c - the DAG loader (YAML -> sl_dag_t) and diagnostics:
 * defaults, positions of values, and that every problem is reported with
 * its exact line:column.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dag.h"
#include "diag.h"

typedef struct fixture {
  sl_diag_list_t diags;
  sl_dag_t *dag;
  char *printed; /* the diagnostics as sl_diag_print writes them */
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  sl_diag_init(&f->diags);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  sl_dag_free(f->dag);
  sl_diag_free(&f->diags);
  free(f->printed);
  free(f);
  return 0;
}

static void render(fixture_t *f) {
  free(f->printed);
  size_t len = 0;
  FILE *mem = open_memstream(&f->printed, &len);
  sl_diag_print(&f->diags, mem);
  fclose(mem);
}

/* Load YAML text as the file "t.yaml" and render the diagnostics. */
static sl_dag_t *load(fixture_t *f, const char *yaml) {
  f->dag = sl_dag_load_string(yaml, strlen(yaml), "t.yaml", &f->diags);
  render(f);
  return f->dag;
}

/* The rendered diagnostics contain this line (or line prefix). */
static void expect_diag(fixture_t *f, const char *text) {
  if (!strstr(f->printed, text)) {
    print_error("expected diagnostic:\n  %s\ngot:\n%s", text, f->printed);
    fail();
  }
}

static void expect_clean(fixture_t *f) {
  if (f->diags.count) {
    print_error("unexpected diagnostics:\n%s", f->printed);
    fail();
  }
}

/* ------------------------------------------------------------ valid input */

static void test_minimal_defaults(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  clicks:\n"
                       "    use: generator\n"
                       "  out:\n"
                       "    use: stdout_sink\n"
                       "    from: clicks\n");
  assert_non_null(dag);
  expect_clean(f);
  assert_string_equal(dag->name, "t");
  assert_string_equal(dag->path, "t.yaml");
  assert_string_equal(dag->dir, ".");
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus > SL_MAX_WORKERS) cpus = SL_MAX_WORKERS;
  assert_int_equal(dag->settings.workers, cpus < 1 ? 1 : cpus);
  assert_int_equal(dag->settings.channel_capacity, 16);
  assert_int_equal(dag->settings.batch_size, 256);
  assert_int_equal(dag->settings.max_key_groups, 128);
  assert_string_equal(dag->settings.state_backend, "memory");
  assert_null(dag->settings.state_dir);
  assert_int_equal(dag->settings.checkpoint_interval_ms, 0);
  assert_null(dag->settings.checkpoint_dir);
  assert_int_equal(dag->settings.checkpoint_keep, 3);

  assert_int_equal(dag->node_count, 2);
  sl_dag_node_t *c = &dag->nodes[0], *o = &dag->nodes[1];
  assert_string_equal(c->name, "clicks");
  assert_int_equal(c->pos.line, 2);
  assert_int_equal(c->pos.col, 3);
  assert_string_equal(c->use, "generator");
  assert_int_equal(c->use_pos.line, 3);
  assert_int_equal(c->use_pos.col, 10);
  assert_int_equal(c->input_count, 0);
  assert_int_equal(c->parallelism, 0);
  assert_int_equal(sl_dag_node_parallelism(c), 1);
  assert_int_equal(c->on_error, SL_ON_ERROR_FAIL);
  assert_int_equal(c->partition, SL_PARTITION_AUTO);
  assert_null(c->key_by);
  assert_int_equal(c->config_count, 0);

  assert_int_equal(o->input_count, 1);
  assert_string_equal(o->inputs[0].node, "clicks");
  assert_null(o->inputs[0].port);
  assert_int_equal(o->inputs[0].pos.line, 6);
  assert_int_equal(o->inputs[0].pos.col, 11);

  assert_ptr_equal(sl_dag_find(dag, "out"), o);
  assert_null(sl_dag_find(dag, "nope"));
}

static void test_full_file(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "name: quickstart\n"
                       "settings:\n"
                       "  workers: 2\n"
                       "  channel_capacity: 32\n"
                       "  batch_size: 100\n"
                       "  max_key_groups: 64\n"
                       "  state: { backend: rocksdb, dir: ./state }\n"
                       "  checkpoints: { interval: 10s, dir: ./checkpoints, keep: 5 }\n"
                       "nodes:\n"
                       "  sink:\n"
                       "    use: ./libx.so:pg\n"
                       "    from: [views, parse.errors]\n"
                       "  clicks:\n"
                       "    use: generator\n"
                       "    config: { kind: clicks, count: 1000, label: \"10\", note: 'x y' }\n"
                       "  parse:\n"
                       "    use: clicks:parse_views\n"
                       "    from: clicks\n"
                       "    on_error: dead_letter\n"
                       "    parallelism: 4\n"
                       "  views:\n"
                       "    use: window\n"
                       "    from:\n"
                       "      - parse\n"
                       "    key_by: product_id\n"
                       "    on_error: skip\n"
                       "  spread:\n"
                       "    use: x\n"
                       "    from: parse.side\n"
                       "    partition: broadcast\n");
  assert_non_null(dag);
  expect_clean(f);
  assert_string_equal(dag->name, "quickstart");
  assert_int_equal(dag->settings.workers, 2);
  assert_int_equal(dag->settings.channel_capacity, 32);
  assert_int_equal(dag->settings.batch_size, 100);
  assert_int_equal(dag->settings.max_key_groups, 64);
  assert_string_equal(dag->settings.state_backend, "rocksdb");
  assert_string_equal(dag->settings.state_dir, "./state");
  assert_int_equal(dag->settings.checkpoint_interval_ms, 10000);
  assert_string_equal(dag->settings.checkpoint_dir, "./checkpoints");
  assert_int_equal(dag->settings.checkpoint_keep, 5);

  assert_int_equal(dag->node_count, 5);
  /* file order is kept */
  assert_string_equal(dag->nodes[0].name, "sink");
  assert_string_equal(dag->nodes[4].name, "spread");

  sl_dag_node_t *sink = sl_dag_find(dag, "sink");
  assert_string_equal(sink->use, "./libx.so:pg");
  assert_int_equal(sink->input_count, 2);
  assert_string_equal(sink->inputs[0].node, "views");
  assert_null(sink->inputs[0].port);
  assert_int_equal(sink->inputs[0].pos.line, 12);
  assert_int_equal(sink->inputs[0].pos.col, 12);
  assert_string_equal(sink->inputs[1].node, "parse");
  assert_string_equal(sink->inputs[1].port, "errors");
  assert_int_equal(sink->inputs[1].pos.col, 19);

  sl_dag_node_t *clicks = sl_dag_find(dag, "clicks");
  assert_int_equal(clicks->config_count, 4);
  assert_int_equal(clicks->config_pos.line, 15);
  assert_int_equal(clicks->config_pos.col, 5);
  sl_config_value_t *cv = clicks->config;
  assert_string_equal(cv[0].key, "kind");
  assert_string_equal(cv[0].text, "clicks");
  assert_false(cv[0].quoted);
  assert_int_equal(cv[0].key_pos.line, 15);
  assert_int_equal(cv[0].key_pos.col, 15);
  assert_int_equal(cv[0].value_pos.col, 21);
  assert_int_equal(cv[0].type, 0); /* not validated yet */
  assert_string_equal(cv[1].key, "count");
  assert_string_equal(cv[1].text, "1000");
  assert_false(cv[1].quoted);
  assert_string_equal(cv[2].text, "10");
  assert_true(cv[2].quoted);
  assert_string_equal(cv[3].text, "x y");
  assert_true(cv[3].quoted);
  assert_false(cv[3].from_default);

  sl_dag_node_t *parse = sl_dag_find(dag, "parse");
  assert_int_equal(parse->on_error, SL_ON_ERROR_DEAD_LETTER);
  assert_int_equal(parse->on_error_pos.line, 19);
  assert_int_equal(parse->on_error_pos.col, 15);
  assert_int_equal(parse->parallelism, 4);
  assert_int_equal(parse->parallelism_pos.line, 20);
  assert_int_equal(parse->parallelism_pos.col, 18);

  sl_dag_node_t *views = sl_dag_find(dag, "views");
  assert_string_equal(views->key_by, "product_id");
  assert_int_equal(views->key_by_pos.line, 25);
  assert_int_equal(views->partition, SL_PARTITION_KEY_BY);
  assert_int_equal(views->on_error, SL_ON_ERROR_SKIP);
  assert_int_equal(views->inputs[0].pos.line, 24);
  assert_int_equal(views->inputs[0].pos.col, 9);

  sl_dag_node_t *spread = sl_dag_find(dag, "spread");
  assert_int_equal(spread->partition, SL_PARTITION_BROADCAST);
  assert_string_equal(spread->inputs[0].port, "side");
}

static void test_name_from_path(void **state) {
  fixture_t *f = *state;
  const char *y = "nodes: { a: { use: generator } }\n";
  f->dag = sl_dag_load_string(y, strlen(y), "/srv/jobs/click.stream.yaml", &f->diags);
  assert_non_null(f->dag);
  assert_int_equal(f->diags.errors, 0);
  assert_string_equal(f->dag->name, "click.stream");
  assert_string_equal(f->dag->dir, "/srv/jobs");
}

static void test_empty_config_and_settings(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "settings:\n"
                       "nodes:\n"
                       "  a:\n"
                       "    use: generator\n"
                       "    config:\n"
                       "    parallelism: 1024\n");
  expect_clean(f);
  assert_int_equal(dag->nodes[0].config_count, 0);
  assert_int_equal(dag->nodes[0].config_pos.line, 5);
  assert_int_equal(dag->nodes[0].parallelism, 1024);
}

/* ------------------------------------------------------------ durations */

static void test_durations(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t ms;
  } good[] = {{"500ms", 500}, {"10s", 10000},      {"1m", 60000}, {"2h", 7200000},
              {"1d", 86400000}, {"250", 250},      {"0", 0},      {"0s", 0},
              {"9223372036854775807", INT64_MAX}, {"106751991167d", INT64_C(106751991167) * 86400000}};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    int64_t ms = -1;
    if (sl_parse_duration_ms(good[i].text, &ms) != 0) fail_msg("'%s' rejected", good[i].text);
    assert_int_equal(ms, good[i].ms);
  }
  static const char *const bad[] = {"",     "-1s",  "-5",   "s",   "10x",  "1.5s", " 10s",
                                    "10s ", "10 s", "10S",  "1m30s", "ms", "+1s",
                                    "9223372036854775808", "106751991168d", "99999999999999999999s"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t ms = 42;
    if (sl_parse_duration_ms(bad[i], &ms) == 0) fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(ms, 42); /* untouched on error */
  }
  int64_t ms;
  assert_int_not_equal(sl_parse_duration_ms(NULL, &ms), 0);
}

static void test_bad_duration_setting(void **state) {
  fixture_t *f = *state;
  load(f,
       "settings:\n"
       "  checkpoints: { interval: soon, keep: 0 }\n"
       "nodes: { a: { use: generator } }\n");
  expect_diag(f, "t.yaml:2:28: error: settings: checkpoints.interval: invalid duration 'soon'");
  expect_diag(f, "t.yaml:2:40: error: settings: checkpoints.keep must be between 1 and");
  assert_int_equal(f->diags.errors, 2);
}

/* ------------------------------------------------------------ errors */

static void test_wrong_type_parallelism(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  parse:\n"
                       "    use: x\n"
                       "    parallelism: two\n");
  assert_non_null(dag);
  expect_diag(f, "t.yaml:4:18: error: node 'parse': parallelism must be an integer, got 'two'\n");
  assert_int_equal(f->diags.errors, 1);
  assert_int_equal(dag->nodes[0].parallelism, 0);
}

/* settings.parallelism is the default for nodes that set none. */
static void test_default_parallelism(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "settings: { parallelism: 3 }\n"
                       "nodes:\n"
                       "  a: { use: x }\n"
                       "  b: { use: y, from: a, parallelism: 5 }\n");
  expect_clean(f);
  assert_int_equal(dag->settings.default_parallelism, 3);
  assert_int_equal(sl_dag_node_parallelism(&dag->nodes[0]), 3);
  assert_int_equal(sl_dag_node_parallelism(&dag->nodes[1]), 5);
  sl_dag_free(f->dag);
  f->dag = NULL;
  sl_diag_free(&f->diags);
  sl_diag_init(&f->diags);
  load(f, "settings: { parallelism: 0 }\nnodes:\n  a: { use: x }\n");
  expect_diag(f, "t.yaml:1:26: error: settings: parallelism must be between 1 and 1024, got 0");
}

static void test_all_errors_reported(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nmae: x\n"
                       "settings:\n"
                       "  wrokers: 3\n"
                       "  batch_size: 0\n"
                       "  channel_capacity: 70000\n"
                       "  max_key_groups: \"12\"\n"
                       "  state: { backend: redis }\n"
                       "nodes:\n"
                       "  a:\n"
                       "    use: generator\n"
                       "    form: b\n"
                       "    on_error: ignore\n"
                       "    parallelism: 0\n"
                       "  b:\n"
                       "    use: x\n"
                       "    from: a\n"
                       "    parallelism: 5000\n"
                       "    partition: hash\n"
                       "    surprise: 1\n");
  assert_non_null(dag);
  expect_diag(f, "t.yaml:1:1: error: unknown top-level key 'nmae' (did you mean 'name'? valid: "
                 "name, settings, nodes)\n");
  expect_diag(f, "t.yaml:3:3: error: settings: unknown key 'wrokers' (did you mean 'workers'?");
  expect_diag(f, "t.yaml:4:15: error: settings: batch_size must be between 1 and 65536, got 0\n");
  expect_diag(f, "t.yaml:5:21: error: settings: channel_capacity must be between 1 and 65536, "
                 "got 70000\n");
  expect_diag(f, "t.yaml:6:19: error: settings: max_key_groups must be an integer, got a string");
  expect_diag(f, "t.yaml:7:21: error: settings: unknown state.backend value 'redis' (valid: "
                 "memory, rocksdb)\n");
  expect_diag(f, "t.yaml:11:5: error: node 'a': unknown key 'form' (did you mean 'from'?");
  expect_diag(f, "t.yaml:12:15: error: node 'a': unknown on_error value 'ignore' (valid: fail, "
                 "skip, dead_letter)\n");
  expect_diag(f, "t.yaml:13:18: error: node 'a': parallelism must be between 1 and 1024, got 0\n");
  expect_diag(f, "t.yaml:17:18: error: node 'b': parallelism must be between 1 and 1024, got "
                 "5000\n");
  expect_diag(f, "t.yaml:18:16: error: node 'b': unknown partition value 'hash' (valid: forward, "
                 "rebalance, broadcast)\n");
  expect_diag(f, "t.yaml:19:5: error: node 'b': unknown key 'surprise' (valid: use, from, config, "
                 "on_error, parallelism, key_by, partition, event_time)\n");
  assert_int_equal(f->diags.errors, 12);
  /* both nodes are still there, with what could be read */
  assert_int_equal(dag->node_count, 2);
  assert_string_equal(dag->nodes[1].inputs[0].node, "a");
}

static void test_errors_are_sorted(void **state) {
  fixture_t *f = *state;
  load(f,
       "nodes:\n"
       "  b:\n"
       "    use: x\n"
       "    parallelism: -1\n"
       "  a:\n"
       "    use: y\n"
       "    on_error: nope\n");
  /* add one out of order by hand, and one without position */
  sl_diag_error(&f->diags, "t.yaml", ((sl_pos_t){2, 1}), "early");
  sl_diag_error(&f->diags, "t.yaml", ((sl_pos_t){0, 0}), "whole file");
  render(f);
  const char *p1 = strstr(f->printed, "t.yaml: error: whole file\n");
  const char *p2 = strstr(f->printed, "t.yaml:2:1: error: early\n");
  const char *p3 = strstr(f->printed, "t.yaml:4:18: error:");
  const char *p4 = strstr(f->printed, "t.yaml:7:15: error:");
  assert_non_null(p1);
  assert_true(p1 < p2 && p2 < p3 && p3 < p4);
  assert_int_equal(f->diags.errors, 4);
  sl_diag_sort(&f->diags);
  assert_string_equal(f->diags.items[0].message, "whole file");
  assert_int_equal(f->diags.items[1].pos.line, 2);
  assert_int_equal(f->diags.items[3].pos.line, 7);
}

static void test_duplicate_nodes(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a:\n"
                       "    use: generator\n"
                       "  b:\n"
                       "    use: x\n"
                       "    from: a\n"
                       "  a:\n"
                       "    use: other\n");
  expect_diag(f, "t.yaml:7:3: error: duplicate node 'a' (first defined at line 2)\n");
  assert_int_equal(f->diags.errors, 1);
  assert_int_equal(dag->node_count, 2);
  assert_string_equal(sl_dag_find(dag, "a")->use, "generator");
}

static void test_duplicate_keys(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a:\n"
                       "    use: generator\n"
                       "    config:\n"
                       "      count: 1\n"
                       "      count: 2\n"
                       "    use: other\n"
                       "nodes: {}\n");
  expect_diag(f, "t.yaml:6:7: error: node 'a': duplicate config key 'count' (first at line 5)\n");
  expect_diag(f, "t.yaml:7:5: error: node 'a': duplicate key 'use' (first at line 3)\n");
  expect_diag(f, "t.yaml:8:1: error: duplicate top-level key 'nodes' (first at line 1)\n");
  assert_int_equal(f->diags.errors, 3);
  assert_string_equal(dag->nodes[0].use, "generator");
  assert_int_equal(dag->nodes[0].config_count, 1);
  assert_string_equal(dag->nodes[0].config[0].text, "1");
}

static void test_node_names_and_inputs(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a.b:\n"
                       "    use: generator\n"
                       "  \"sp ace\":\n"
                       "    use: generator\n"
                       "  ok-name_1:\n"
                       "    use: x\n"
                       "    from: [\"\", a.b.c, .x, y., good.port, ok, ok]\n");
  expect_diag(f, "t.yaml:2:3: error: invalid node name 'a.b': use letters, digits, '_' and '-'");
  expect_diag(f, "t.yaml:4:3: error: invalid node name 'sp ace'");
  expect_diag(f, "t.yaml:8:12: error: node 'ok-name_1': empty input in 'from'\n");
  expect_diag(f, "t.yaml:8:16: error: node 'ok-name_1': invalid input 'a.b.c' in 'from': "
                 "expected 'node' or 'node.port'\n");
  expect_diag(f, "t.yaml:8:23: error: node 'ok-name_1': invalid input '.x'");
  expect_diag(f, "t.yaml:8:27: error: node 'ok-name_1': invalid input 'y.'");
  expect_diag(f, "t.yaml:8:46: error: node 'ok-name_1': input 'ok' is listed twice in 'from'");
  assert_int_equal(f->diags.errors, 7);
  sl_dag_node_t *n = sl_dag_find(dag, "ok-name_1");
  assert_int_equal(n->input_count, 2);
  assert_string_equal(n->inputs[0].node, "good");
  assert_string_equal(n->inputs[0].port, "port");
  assert_string_equal(n->inputs[1].node, "ok");
}

static void test_node_shapes(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  nouse:\n"
                       "    from: a\n"
                       "  scalar: generator\n"
                       "  list: [1, 2]\n"
                       "  empty:\n"
                       "  badfrom:\n"
                       "    use: x\n"
                       "    from: { a: 1 }\n"
                       "  emptyfrom:\n"
                       "    use: x\n"
                       "    from: []\n"
                       "  nested:\n"
                       "    use: generator\n"
                       "    config:\n"
                       "      kind: clicks\n"
                       "      opts: { a: [1] }\n"
                       "      list: [1]\n"
                       "      seed: 7\n"
                       "  badconfig:\n"
                       "    use: generator\n"
                       "    config: [a]\n"
                       "  emptyuse:\n"
                       "    use: \"\"\n");
  expect_diag(f, "t.yaml:2:3: error: node 'nouse': missing 'use' (the operator to run)\n");
  expect_diag(f, "t.yaml:4:11: error: node 'scalar': a node must be a mapping");
  expect_diag(f, "t.yaml:5:9: error: node 'list': a node must be a mapping (use, from, config "
                 "...), got a list\n");
  expect_diag(f, "t.yaml:6:3: error: node 'empty': empty node: it needs at least 'use'\n");
  expect_diag(f, "t.yaml:9:11: error: node 'badfrom': 'from' must be a node name or a list of "
                 "them, got a mapping\n");
  expect_diag(f, "t.yaml:12:11: error: node 'emptyfrom': 'from' is an empty list\n");
  expect_diag(f, "t.yaml:17:18: error: node 'nested': config 'opts.a' must be a scalar value, got "
                 "a list\n");
  expect_diag(f, "t.yaml:18:13: error: node 'nested': config 'list' must be a scalar value or a "
                 "mapping of them, got a list\n");
  expect_diag(f, "t.yaml:22:13: error: node 'badconfig': config must be a mapping, got a list\n");
  expect_diag(f, "t.yaml:24:10: error: node 'emptyuse': use must not be empty\n");
  assert_int_equal(f->diags.errors, 10);
  /* every node is kept so that later checks do not cascade */
  assert_int_equal(dag->node_count, 9);
  sl_dag_node_t *nested = sl_dag_find(dag, "nested");
  assert_int_equal(nested->config_count, 2);
  assert_string_equal(nested->config[1].key, "seed");
  assert_int_equal(nested->config[1].value_pos.line, 19);
  assert_int_equal(nested->config[1].value_pos.col, 13);
}

/* One level of mapping in config becomes keys "parent.child", each with its
 * own position; the order is kept. */
static void test_config_mapping_flattened(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  k:\n"
                       "    use: kafka_sink\n"
                       "    config:\n"
                       "      topic: t\n"
                       "      librdkafka: { linger.ms: 5, acks: \"all\" }\n");
  expect_clean(f);
  sl_dag_node_t *k = sl_dag_find(dag, "k");
  assert_int_equal(k->config_count, 3);
  assert_string_equal(k->config[0].key, "topic");
  assert_string_equal(k->config[1].key, "librdkafka.linger.ms");
  assert_string_equal(k->config[1].text, "5");
  assert_false(k->config[1].quoted);
  assert_int_equal(k->config[1].value_pos.line, 6);
  assert_int_equal(k->config[1].value_pos.col, 32);
  assert_string_equal(k->config[2].key, "librdkafka.acks");
  assert_string_equal(k->config[2].text, "all");
  assert_true(k->config[2].quoted);
}

static void test_key_by_partition(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a: { use: generator }\n"
                       "  b: { use: x, from: a, key_by: $key, partition: rebalance }\n"
                       "  c: { use: x, from: a, key_by: [x] }\n"
                       "  d: { use: x, from: a, partition: forward }\n");
  expect_diag(f, "t.yaml:3:50: error: node 'b': 'partition' conflicts with 'key_by'");
  expect_diag(f, "t.yaml:4:33: error: node 'c': key_by must be a string, got a list\n");
  assert_int_equal(f->diags.errors, 2);
  assert_string_equal(sl_dag_find(dag, "b")->key_by, "$key");
  assert_int_equal(sl_dag_find(dag, "b")->partition, SL_PARTITION_KEY_BY);
  assert_int_equal(sl_dag_find(dag, "d")->partition, SL_PARTITION_FORWARD);
  assert_int_equal(sl_dag_find(dag, "d")->partition_pos.col, 36);
}

static void test_top_level_shapes(void **state) {
  fixture_t *f = *state;
  load(f, "- a\n- b\n");
  expect_diag(f, "t.yaml:1:1: error: the top level must be a mapping (name, settings, nodes), got "
                 "a list\n");
  assert_int_equal(f->diags.errors, 1);
  sl_dag_free(f->dag);
  sl_diag_free(&f->diags);

  load(f, "");
  assert_non_null(f->dag);
  expect_diag(f, "t.yaml: error: the file is empty: a DAG needs 'nodes'\n");
  sl_dag_free(f->dag);
  sl_diag_free(&f->diags);

  load(f, "name: x\n");
  expect_diag(f, "t.yaml:1:1: error: missing 'nodes': a DAG needs at least one node\n");
  sl_dag_free(f->dag);
  sl_diag_free(&f->diags);

  load(f, "nodes:\n");
  expect_diag(f, "t.yaml:1:1: error: 'nodes' is empty: a DAG needs at least one node\n");
  sl_dag_free(f->dag);
  sl_diag_free(&f->diags);

  load(f, "nodes: {}\n");
  expect_diag(f, "t.yaml:1:8: error: 'nodes' is empty: a DAG needs at least one node\n");
  sl_dag_free(f->dag);
  sl_diag_free(&f->diags);

  load(f, "nodes:\n  - a: { use: x }\n");
  expect_diag(f, "t.yaml:2:3: error: 'nodes' must be a mapping of node name -> node, got a list");
  sl_dag_free(f->dag);
  sl_diag_free(&f->diags);

  load(f, "just text\n");
  expect_diag(f, "t.yaml:1:1: error: the top level must be a mapping (name, settings, nodes), got "
                 "a plain value\n");
}

/* ------------------------------------------------------------ YAML problems */

static void test_yaml_unclosed_quote(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a:\n"
                       "    use: generator\n"
                       "  b:\n"
                       "    use: \"stdout_sink\n"
                       "    from: a\n");
  /* libyaml reports the end of the stream, and where the quote started */
  expect_diag(f, "t.yaml:7:1: error: YAML syntax error: found unexpected end of stream (while "
                 "scanning a quoted scalar at line 5, column 10)\n");
  assert_int_equal(f->diags.errors, 1); /* the cut-short node 'b' is not "missing use" */
  assert_non_null(dag);
  assert_int_equal(dag->node_count, 2);
  assert_string_equal(dag->nodes[0].use, "generator");
}

static void test_yaml_tab(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a:\n"
                       "\tuse: generator\n");
  expect_diag(f, "t.yaml:3:1: error: YAML syntax error: found character that cannot start any "
                 "token (while scanning for the next token at line 3, column 1)\n");
  assert_int_equal(f->diags.errors, 1);
  assert_non_null(dag);
}

static void test_yaml_bad_indentation(void **state) {
  fixture_t *f = *state;
  load(f,
       "nodes:\n"
       "  a:\n"
       "    use: generator\n"
       "   from: x\n");
  expect_diag(f, "t.yaml:4:4: error: YAML syntax error: did not find expected key (while parsing "
                 "a block mapping at line 2, column 3)\n");
  assert_int_equal(f->diags.errors, 1);
}

static void test_yaml_nothing_parsed(void **state) {
  fixture_t *f = *state;
  /* an error before any node: nothing to return */
  assert_null(load(f, "\"unclosed\n"));
  expect_diag(f, "t.yaml:2:1: error: YAML syntax error: found unexpected end of stream");
  assert_int_equal(f->diags.errors, 1);
}

static void test_yaml_multi_document(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes: { a: { use: generator } }\n"
                       "---\n"
                       "nodes: { b: { use: generator } }\n");
  expect_diag(f, "t.yaml:2:1: error: a DAG file holds one YAML document");
  assert_int_equal(f->diags.errors, 1);
  assert_int_equal(dag->node_count, 1);
}

static void test_yaml_alias(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a:\n"
                       "    use: generator\n"
                       "    config: &cfg { kind: clicks }\n"
                       "  b:\n"
                       "    use: generator\n"
                       "    config: *cfg\n");
  expect_diag(f, "t.yaml:7:13: error: YAML aliases are not supported ('*cfg')");
  assert_int_equal(f->diags.errors, 1);
  assert_int_equal(dag->node_count, 2);
  assert_int_equal(dag->nodes[0].config_count, 1);
}

static void test_str_tag_is_quoted(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a:\n"
                       "    use: g\n"
                       "    config:\n"
                       "      n: !!str 10\n"
                       "      m: |\n"
                       "        text\n"
                       "      k: 10\n");
  expect_clean(f);
  assert_true(dag->nodes[0].config[0].quoted);
  assert_string_equal(dag->nodes[0].config[0].text, "10");
  assert_true(dag->nodes[0].config[1].quoted);
  assert_string_equal(dag->nodes[0].config[1].text, "text\n");
  assert_false(dag->nodes[0].config[2].quoted);
}

/* ------------------------------------------------------------ event_time */

static void reload(fixture_t *f) {
  sl_dag_free(f->dag);
  f->dag = NULL;
  sl_diag_free(&f->diags);
  sl_diag_init(&f->diags);
}

static void test_event_time_full(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  clicks:\n"
                       "    use: generator\n"
                       "    event_time:\n"
                       "      timestamp: field\n"
                       "      field: ts\n"
                       "      format: rfc3339\n"
                       "      max_out_of_order: 5s\n"
                       "      idle_timeout: 30s\n"
                       "  out:\n"
                       "    use: x\n"
                       "    from: clicks\n");
  expect_clean(f);
  const sl_event_time_t *et = &dag->nodes[0].event_time;
  assert_true(et->set);
  assert_int_equal(et->pos.line, 4);
  assert_int_equal(et->pos.col, 5);
  assert_int_equal(et->origin, SL_TS_ORIGIN_FIELD);
  assert_string_equal(et->field, "ts");
  assert_int_equal(et->field_pos.line, 6);
  assert_int_equal(et->field_pos.col, 14);
  assert_int_equal(et->format, SL_TS_FORMAT_RFC3339);
  assert_int_equal(et->max_out_of_order_ms, 5000);
  assert_int_equal(et->idle_timeout_ms, 30000);
  /* a node without the block */
  const sl_event_time_t *none = &dag->nodes[1].event_time;
  assert_false(none->set);
  assert_null(none->field);
  assert_int_equal(none->max_out_of_order_ms, 0);
}

static void test_event_time_defaults(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a: { use: g, event_time: { field: ts } }\n"
                       "  b: { use: g, event_time: {} }\n"
                       "  c:\n"
                       "    use: g\n"
                       "    event_time:\n"
                       "  d: { use: g, event_time: { timestamp: ingestion, idle_timeout: 1m } }\n"
                       "  e: { use: g, event_time: { timestamp: source, max_out_of_order: 250 } }\n"
                       "  f: { use: g, event_time: { field: \"event time\", format: epoch_s, "
                       "max_out_of_order: \"2s\", idle_timeout: 0s } }\n"
                       "  g: { use: g, event_time: { format: epoch_ms, field: t, timestamp: field } "
                       "}\n");
  expect_clean(f);
  const sl_event_time_t *a = &sl_dag_find(dag, "a")->event_time;
  assert_true(a->set);
  assert_int_equal(a->pos.line, 2);
  assert_int_equal(a->pos.col, 16);
  assert_int_equal(a->origin, SL_TS_ORIGIN_FIELD); /* implied by `field` */
  assert_string_equal(a->field, "ts");
  assert_int_equal(a->field_pos.col, 37);
  assert_int_equal(a->format, SL_TS_FORMAT_EPOCH_MS);
  assert_int_equal(a->max_out_of_order_ms, 0);
  assert_int_equal(a->idle_timeout_ms, 0);

  /* an empty block, or an empty value: the source's timestamps, watermarks on */
  static const char *const empty_blocks[] = {"b", "c"};
  for (size_t i = 0; i < 2; i++) {
    const sl_event_time_t *et = &sl_dag_find(dag, empty_blocks[i])->event_time;
    assert_true(et->set);
    assert_int_equal(et->origin, SL_TS_ORIGIN_SOURCE);
    assert_null(et->field);
    assert_int_equal(et->format, SL_TS_FORMAT_EPOCH_MS);
  }
  assert_int_equal(sl_dag_find(dag, "c")->event_time.pos.line, 6);

  const sl_event_time_t *d = &sl_dag_find(dag, "d")->event_time;
  assert_int_equal(d->origin, SL_TS_ORIGIN_INGESTION);
  assert_int_equal(d->idle_timeout_ms, 60000);
  const sl_event_time_t *e = &sl_dag_find(dag, "e")->event_time;
  assert_int_equal(e->origin, SL_TS_ORIGIN_SOURCE);
  assert_int_equal(e->max_out_of_order_ms, 250);
  const sl_event_time_t *ff = &sl_dag_find(dag, "f")->event_time;
  assert_int_equal(ff->origin, SL_TS_ORIGIN_FIELD);
  assert_string_equal(ff->field, "event time");
  assert_int_equal(ff->format, SL_TS_FORMAT_EPOCH_S);
  assert_int_equal(ff->max_out_of_order_ms, 2000);
  /* keys in any order */
  const sl_event_time_t *g = &sl_dag_find(dag, "g")->event_time;
  assert_int_equal(g->origin, SL_TS_ORIGIN_FIELD);
  assert_string_equal(g->field, "t");
}

static void test_event_time_shapes_and_types(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a:\n"
                       "    use: g\n"
                       "    event_time: ts\n"
                       "  b:\n"
                       "    use: g\n"
                       "    event_time: [ts]\n"
                       "  c:\n"
                       "    use: g\n"
                       "    event_time:\n"
                       "      feild: ts\n"
                       "      timestamp: kafka\n"
                       "      format: iso8601\n"
                       "      max_out_of_order: -5s\n"
                       "      idle_timeout: soon\n"
                       "  d:\n"
                       "    use: g\n"
                       "    event_time:\n"
                       "      field: [ts]\n"
                       "      format: { a: 1 }\n"
                       "      max_out_of_order: { a: 1 }\n"
                       "      idle_timeout: 1.5s\n"
                       "      timestamp: [field]\n"
                       "  e:\n"
                       "    use: g\n"
                       "    event_time: { watermark: 5s, field: a, field: b, idle_timeout: -1 }\n"
                       "  f: { use: g, event_time: { field: \"\" } }\n"
                       "  h: { use: g, event_time: { timestamp: field, field: } }\n");
  assert_non_null(dag);
  expect_diag(f, "t.yaml:4:17: error: node 'a': event_time must be a mapping such as { field: ts, "
                 "max_out_of_order: 5s }, got a plain value 'ts'\n");
  expect_diag(f, "t.yaml:7:17: error: node 'b': event_time must be a mapping, got a list\n");
  expect_diag(f, "t.yaml:11:7: error: node 'c': event_time: unknown key 'feild' (did you mean "
                 "'field'? valid: timestamp, field, format, max_out_of_order, idle_timeout)\n");
  expect_diag(f, "t.yaml:12:18: error: node 'c': unknown event_time.timestamp value 'kafka' "
                 "(valid: field, source, ingestion)\n");
  expect_diag(f, "t.yaml:13:15: error: node 'c': unknown event_time.format value 'iso8601' "
                 "(valid: epoch_ms, epoch_s, rfc3339)\n");
  expect_diag(f, "t.yaml:14:25: error: node 'c': event_time.max_out_of_order must not be "
                 "negative, got '-5s'\n");
  expect_diag(f, "t.yaml:15:21: error: node 'c': event_time.idle_timeout: invalid duration 'soon' "
                 "(expected a non-negative whole number with a unit ms, s, m, h or d, e.g. 500ms, "
                 "10s, 1m)\n");
  expect_diag(f, "t.yaml:19:14: error: node 'd': event_time.field must be a string, got a list\n");
  expect_diag(f, "t.yaml:20:15: error: node 'd': event_time.format must be one of epoch_ms, "
                 "epoch_s, rfc3339, got a mapping\n");
  expect_diag(f, "t.yaml:21:25: error: node 'd': event_time.max_out_of_order must be a duration, "
                 "got a mapping\n");
  expect_diag(f, "t.yaml:22:21: error: node 'd': event_time.idle_timeout: invalid duration '1.5s'");
  expect_diag(f, "t.yaml:23:18: error: node 'd': event_time.timestamp must be one of field, "
                 "source, ingestion, got a list\n");
  expect_diag(f, "t.yaml:26:19: error: node 'e': event_time: unknown key 'watermark' (valid: "
                 "timestamp, field, format, max_out_of_order, idle_timeout)\n");
  expect_diag(f, "t.yaml:26:44: error: node 'e': event_time: duplicate key 'field' (first at "
                 "line 26)\n");
  expect_diag(f, "t.yaml:26:68: error: node 'e': event_time.idle_timeout must not be negative, "
                 "got '-1'\n");
  expect_diag(f, "t.yaml:27:37: error: node 'f': event_time.field must not be empty\n");
  expect_diag(f, "t.yaml:28:55: error: node 'h': event_time.field must not be empty\n");
  assert_int_equal(f->diags.errors, 17);
  /* the block is marked present even when wrong: validation still checks
   * where it is */
  assert_true(sl_dag_find(dag, "a")->event_time.set);
  assert_true(sl_dag_find(dag, "b")->event_time.set);
  const sl_event_time_t *e = &sl_dag_find(dag, "e")->event_time;
  assert_string_equal(e->field, "a"); /* the first of the duplicates */
  assert_int_equal(e->idle_timeout_ms, 0);
}

static void test_event_time_conflicts(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = load(f,
                       "nodes:\n"
                       "  a: { use: g, event_time: { timestamp: field } }\n"
                       "  b: { use: g, event_time: { timestamp: field, format: epoch_s } }\n"
                       "  c: { use: g, event_time: { timestamp: source, field: ts } }\n"
                       "  d: { use: g, event_time: { field: ts, timestamp: ingestion } }\n"
                       "  e: { use: g, event_time: { timestamp: ingestion, format: rfc3339 } }\n"
                       "  h: { use: g, event_time: { timestamp: source, format: epoch_s, field: ts "
                       "} }\n"
                       "  i: { use: g, event_time: { format: rfc3339, max_out_of_order: 1s } }\n");
  assert_non_null(dag);
  expect_diag(f, "t.yaml:2:30: error: node 'a': event_time.timestamp is 'field' but "
                 "event_time.field is missing (the name of the top-level JSON field of the value "
                 "that holds the timestamp)\n");
  expect_diag(f, "t.yaml:3:30: error: node 'b': event_time.timestamp is 'field' but "
                 "event_time.field is missing");
  expect_diag(f, "t.yaml:4:49: error: node 'c': event_time.field conflicts with 'timestamp: "
                 "source' (the source plugin sets the timestamps); use 'timestamp: field' to read "
                 "the field, or remove it\n");
  expect_diag(f, "t.yaml:5:30: error: node 'd': event_time.field conflicts with 'timestamp: "
                 "ingestion' (records are stamped with the time they enter the job)");
  expect_diag(f, "t.yaml:6:52: error: node 'e': event_time.format conflicts with 'timestamp: "
                 "ingestion' (records are stamped with the time they enter the job); format "
                 "applies to 'timestamp: field' only\n");
  expect_diag(f, "t.yaml:7:49: error: node 'h': event_time.format conflicts with 'timestamp: "
                 "source'");
  expect_diag(f, "t.yaml:7:66: error: node 'h': event_time.field conflicts with 'timestamp: "
                 "source'");
  expect_diag(f, "t.yaml:8:30: error: node 'i': event_time.format needs event_time.field (the "
                 "JSON field that holds the timestamp); without a field the source's own "
                 "timestamps are used\n");
  assert_int_equal(f->diags.errors, 8);
  /* a conflicting field is not kept: the runtime reads fields only with `timestamp: field` */
  assert_null(sl_dag_find(dag, "c")->event_time.field);
  assert_int_equal(sl_dag_find(dag, "d")->event_time.origin, SL_TS_ORIGIN_INGESTION);
}

/* After a syntax error the block is cut short: no "missing field" on top. */
static void test_event_time_cut_short(void **state) {
  fixture_t *f = *state;
  load(f,
       "nodes:\n"
       "  a:\n"
       "    use: g\n"
       "    event_time: { timestamp: field\n");
  assert_int_equal(f->diags.errors, 1);
  expect_diag(f, "YAML syntax error");
  reload(f);
  /* a bad `field` value is reported once, not also as missing */
  load(f, "nodes:\n  a: { use: g, event_time: { timestamp: field, field: [x] } }\n");
  assert_int_equal(f->diags.errors, 1);
  expect_diag(f, "t.yaml:2:55: error: node 'a': event_time.field must be a string, got a list\n");
  reload(f);
  /* a bad `timestamp` is reported once; a given field still means "read it" */
  sl_dag_t *dag = load(f, "nodes:\n  a: { use: g, event_time: { timestamp: kafka, field: ts, "
                          "format: epoch_s } }\n");
  assert_int_equal(f->diags.errors, 1);
  expect_diag(f, "t.yaml:2:41: error: node 'a': unknown event_time.timestamp value 'kafka'");
  assert_int_equal(dag->nodes[0].event_time.origin, SL_TS_ORIGIN_FIELD);
  assert_string_equal(dag->nodes[0].event_time.field, "ts");
  reload(f);
  load(f, "nodes:\n  a: { use: g, event_time: { timestamp: 1, format: epoch_s } }\n");
  assert_int_equal(f->diags.errors, 1);
  expect_diag(f, "unknown event_time.timestamp value '1'");
  reload(f);
  load(f, "nodes:\n  a: { use: g, event_time: { format: epoch_s\n");
  assert_int_equal(f->diags.errors, 1);
  expect_diag(f, "YAML syntax error");
}

/* ------------------------------------------------------------ files */

static void test_missing_file(void **state) {
  fixture_t *f = *state;
  assert_null(sl_dag_load("/nonexistent/dir/dag.yaml", &f->diags));
  render(f);
  expect_diag(f, "/nonexistent/dir/dag.yaml: error: cannot read the DAG file: No such file or "
                 "directory\n");
  assert_int_equal(f->diags.errors, 1);

  /* a directory is not readable as a file either */
  assert_null(sl_dag_load("/", &f->diags));
  assert_int_equal(f->diags.errors, 2);
}

static void test_load_file(void **state) {
  fixture_t *f = *state;
  char path[] = "/tmp/sluice_dag_XXXXXX.yaml";
  int fd = mkstemps(path, 5);
  assert_true(fd >= 0);
  const char *y = "nodes:\n  a:\n    use: generator\n    parallelism: x\n";
  assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
  close(fd);
  f->dag = sl_dag_load(path, &f->diags);
  unlink(path);
  assert_non_null(f->dag);
  assert_string_equal(f->dag->dir, "/tmp");
  assert_int_equal(f->diags.errors, 1);
  assert_string_equal(f->diags.items[0].file, path);
  assert_int_equal(f->diags.items[0].pos.line, 4);
  assert_int_equal(f->diags.items[0].pos.col, 18);
}

static void test_diag_print_formats(void **state) {
  fixture_t *f = *state;
  sl_diag_add(&f->diags, SL_DIAG_WARNING, "w.yaml", ((sl_pos_t){3, 4}), "careful %d", 1);
  sl_diag_error(&f->diags, NULL, ((sl_pos_t){0, 0}), "no file");
  render(f);
  assert_string_equal(f->printed, "error: no file\nw.yaml:3:4: warning: careful 1\n");
  assert_int_equal(f->diags.errors, 1);
  assert_int_equal(f->diags.count, 2);
  sl_diag_free(&f->diags);
  sl_diag_free(&f->diags); /* freeing twice (an emptied list) is harmless */
  sl_dag_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_minimal_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_default_parallelism, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_from_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_config_and_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_durations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_duration_setting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_type_parallelism, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_errors_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors_are_sorted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_nodes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_node_names_and_inputs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_node_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_mapping_flattened, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_by_partition, setup, teardown),
      cmocka_unit_test_setup_teardown(test_top_level_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_unclosed_quote, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_tab, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_bad_indentation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_nothing_parsed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_multi_document, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_alias, setup, teardown),
      cmocka_unit_test_setup_teardown(test_str_tag_is_quoted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_time_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_time_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_time_shapes_and_types, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_time_conflicts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_time_cut_short, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_diag_print_formats, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
