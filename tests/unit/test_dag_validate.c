/*
 * test_dag_validate.c - DAG validation against real plugin descriptors
 * (tests/plugins/validate_ops.c, loaded through the real registry): use
 * resolution, inputs and ports, sources and sinks, cycles, partitioning,
 * config types, required keys and defaults. Positions are checked exactly.
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

#include "dag.h"
#include "diag.h"
#include "registry.h"

#define VPLUGIN SLUICE_TEST_BINARY_DIR "/testplugins/validate_ops.so"

static sl_registry_t *g_reg;

typedef struct fixture {
  sl_diag_list_t diags;
  sl_dag_t *dag;
  char *printed;
  size_t errors; /* returned by sl_dag_validate */
} fixture_t;

static int group_setup(void **state) {
  g_reg = sl_registry_new();
  char err[1024];
  if (!sl_registry_load(g_reg, VPLUGIN, err, sizeof(err))) {
    fprintf(stderr, "cannot load the test plugin: %s\n", err);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  sl_registry_free(g_reg);
  return 0;
}

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

/* Replace every "@P@" by the test plugin's path. Lines holding it only
 * change length after the marker, so columns of other lines are as written. */
static char *with_plugin(const char *yaml) {
  size_t n = 0;
  for (const char *p = yaml; (p = strstr(p, "@P@")); p += 3) n++;
  char *out = malloc(strlen(yaml) + n * strlen(VPLUGIN) + 1);
  char *o = out;
  for (const char *p = yaml; *p;) {
    if (strncmp(p, "@P@", 3) == 0) {
      o = stpcpy(o, VPLUGIN);
      p += 3;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  return out;
}

/* Load (must be clean) and validate; render the validation diagnostics. */
static sl_dag_t *validate(fixture_t *f, const char *yaml) {
  char *text = with_plugin(yaml);
  f->dag = sl_dag_load_string(text, strlen(text), "v.yaml", &f->diags);
  free(text);
  render(f);
  if (!f->dag || f->diags.errors) {
    print_error("the DAG does not load cleanly:\n%s", f->printed);
    fail();
  }
  f->errors = sl_dag_validate(f->dag, g_reg, &f->diags);
  assert_int_equal(f->errors, f->diags.errors);
  render(f);
  return f->dag;
}

static void expect_diag(fixture_t *f, const char *text) {
  if (!strstr(f->printed, text)) {
    print_error("expected diagnostic:\n  %s\ngot:\n%s", text, f->printed);
    fail();
  }
}

static void expect_errors(fixture_t *f, size_t n) {
  if (f->errors != n) {
    print_error("expected %zu errors, got %zu:\n%s", n, f->errors, f->printed);
    fail();
  }
}

/* ------------------------------------------------------------ valid DAG */

static void test_valid_dag(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  out:\n"
                           "    use: @P@:vsink\n"
                           "    from: [m, m.side, m.errors, src.errors]\n"
                           "  m:\n"
                           "    use: @P@:vmap\n"
                           "    from: src\n"
                           "    parallelism: 2\n"
                           "    key_by: user\n"
                           "  src:\n"
                           "    use: @P@:vsource\n"
                           "    config:\n"
                           "      name: clicks\n"
                           "      count: -5\n"
                           "      ratio: 2.5e-1\n"
                           "      enabled: Off\n"
                           "      interval: 2m\n"
                           "      label: 42\n");
  expect_errors(f, 0);
  sl_dag_node_t *src = sl_dag_find(dag, "src"), *m = sl_dag_find(dag, "m");
  sl_dag_node_t *out = sl_dag_find(dag, "out");
  assert_non_null(src->op);
  assert_string_equal(src->op->name, "vsource");
  assert_non_null(src->plugin);
  assert_string_equal(src->plugin->desc->name, "validate-ops");
  assert_string_equal(m->op->name, "vmap");
  assert_string_equal(out->op->name, "vsink");

  const sl_config_value_t *cv = sl_dag_node_config(src, "count");
  assert_int_equal(cv->type, SL_CONFIG_INT);
  assert_int_equal(cv->i, -5);
  assert_false(cv->from_default);
  cv = sl_dag_node_config(src, "ratio");
  assert_int_equal(cv->type, SL_CONFIG_DOUBLE);
  assert_true(cv->d > 0.2499 && cv->d < 0.2501);
  cv = sl_dag_node_config(src, "enabled");
  assert_int_equal(cv->type, SL_CONFIG_BOOL);
  assert_int_equal(cv->i, 0);
  cv = sl_dag_node_config(src, "interval");
  assert_int_equal(cv->type, SL_CONFIG_DURATION);
  assert_int_equal(cv->i, 120000);
  cv = sl_dag_node_config(src, "label"); /* a plain number is fine for a string key */
  assert_int_equal(cv->type, SL_CONFIG_STRING);
  assert_string_equal(cv->text, "42");
  assert_null(sl_dag_node_config(src, "nope"));

  /* m gets its default */
  assert_int_equal(m->config_count, 1);
  cv = sl_dag_node_config(m, "factor");
  assert_non_null(cv);
  assert_true(cv->from_default);
  assert_int_equal(cv->type, SL_CONFIG_INT);
  assert_int_equal(cv->i, 1);
  assert_string_equal(cv->text, "1");

  size_t order[3];
  assert_int_equal(sl_dag_topo_order(dag, order), 0);
  /* out is first in the file but last in topological order */
  assert_int_equal(order[0], 2);
  assert_int_equal(order[1], 1);
  assert_int_equal(order[2], 0);

  /* validating again adds nothing */
  assert_int_equal(sl_dag_validate(dag, g_reg, &f->diags), 0);
  assert_int_equal(m->config_count, 1);
  assert_int_equal(src->config_count, 6);
}

static void test_defaults_added(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  src:\n"
                           "    use: @P@:vsource\n"
                           "    config: { name: x }\n");
  expect_errors(f, 0);
  sl_dag_node_t *src = &dag->nodes[0];
  assert_int_equal(src->config_count, 6);
  const sl_config_value_t *cv = sl_dag_node_config(src, "count");
  assert_true(cv->from_default);
  assert_int_equal(cv->i, 10);
  assert_int_equal(cv->key_pos.line, 0);
  cv = sl_dag_node_config(src, "ratio");
  assert_true(cv->d == 0.5);
  cv = sl_dag_node_config(src, "enabled");
  assert_int_equal(cv->i, 1);
  cv = sl_dag_node_config(src, "interval");
  assert_int_equal(cv->i, 1000);
  cv = sl_dag_node_config(src, "label");
  assert_string_equal(cv->text, "none");
  assert_int_equal(cv->type, SL_CONFIG_STRING);
}

/* ------------------------------------------------------------ config errors */

static void test_config_errors(void **state) {
  fixture_t *f = *state;
  validate(f,
           "nodes:\n"
           "  src:\n"
           "    use: @P@:vsource\n"
           "    config:\n"
           "      count: abc\n"
           "      ratio: fast\n"
           "      enabled: maybe\n"
           "      interval: 10 minutes\n"
           "      cuont: 3\n"
           "      zzz: 1\n"
           "  m:\n"
           "    use: @P@:vmap\n"
           "    from: src\n"
           "    config: { factor: \"10\" }\n"
           "  m2:\n"
           "    use: @P@:vmap\n"
           "    from: src\n"
           "    config: { factor: 99999999999999999999 }\n"
           "  m3:\n"
           "    use: @P@:vmap\n"
           "    from: src\n"
           "    config: { factor: 1.5 }\n"
           "  s:\n"
           "    use: @P@:vsink\n"
           "    from: m\n"
           "    config: { x: 1 }\n");
  expect_diag(f, "v.yaml:4:5: error: node 'src': missing required config key 'name' for operator "
                 "'vsource' (a string)\n");
  expect_diag(f, "v.yaml:5:14: error: node 'src': config 'count' of operator 'vsource': expected "
                 "an integer, got 'abc'\n");
  expect_diag(f, "v.yaml:6:14: error: node 'src': config 'ratio' of operator 'vsource': expected "
                 "a number, got 'fast'\n");
  expect_diag(f, "v.yaml:7:16: error: node 'src': config 'enabled' of operator 'vsource': "
                 "expected a boolean (true/false), got 'maybe'\n");
  expect_diag(f, "v.yaml:8:17: error: node 'src': config 'interval' of operator 'vsource': "
                 "expected a duration (e.g. 500ms, 10s, 1m, 2h, 1d), got '10 minutes'\n");
  expect_diag(f, "v.yaml:9:7: error: node 'src': unknown config key 'cuont' for operator "
                 "'vsource' (known: name, count, ratio, enabled, interval, label); did you mean "
                 "'count'?\n");
  expect_diag(f, "v.yaml:10:7: error: node 'src': unknown config key 'zzz' for operator 'vsource' "
                 "(known: name, count, ratio, enabled, interval, label)\n");
  expect_diag(f, "v.yaml:14:23: error: node 'm': config 'factor' of operator 'vmap': expected an "
                 "integer, got a string \"10\" (remove the quotes)\n");
  expect_diag(f, "v.yaml:18:23: error: node 'm2': config 'factor' of operator 'vmap': expected "
                 "an integer, got '99999999999999999999'\n");
  expect_diag(f, "v.yaml:22:23: error: node 'm3': config 'factor' of operator 'vmap': expected "
                 "an integer, got '1.5'\n");
  expect_diag(f, "v.yaml:26:15: error: node 's': unknown config key 'x' for operator 'vsink' (it "
                 "takes no config)\n");
  expect_errors(f, 11);
}

static void test_missing_required_without_config(void **state) {
  fixture_t *f = *state;
  validate(f,
           "nodes:\n"
           "  src:\n"
           "    use: @P@:vsource\n");
  /* no `config:` at all: the error points at the node */
  expect_diag(f, "v.yaml:2:3: error: node 'src': missing required config key 'name'");
  expect_errors(f, 1);
}

static void test_bad_default_names_plugin(void **state) {
  fixture_t *f = *state;
  validate(f,
           "nodes:\n"
           "  src: { use: @P@:vsource, config: { name: a } }\n"
           "  bad:\n"
           "    use: @P@:vbaddefault\n"
           "    from: src\n");
  expect_diag(f, "v.yaml:3:3: error: node 'bad': plugin 'validate-ops' declares an invalid default "
                 "'lots' for config key 'limit' of operator 'vbaddefault': expected an integer\n");
  expect_errors(f, 1);
}

static void test_quoted_strings_and_durations_ok(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  src:\n"
                           "    use: @P@:vsource\n"
                           "    config: { name: \"10\", interval: \"500ms\", enabled: YES }\n");
  expect_errors(f, 0);
  assert_int_equal(sl_dag_node_config(&dag->nodes[0], "interval")->i, 500);
  assert_int_equal(sl_dag_node_config(&dag->nodes[0], "enabled")->i, 1);
}

/* ------------------------------------------------------------ use, inputs, ports */

static void test_unknown_use(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  src:\n"
                           "    use: no_such_operator_here\n"
                           "    config: { whatever: 1 }\n"
                           "  m:\n"
                           "    use: @P@:vnope\n"
                           "    from: src\n"
                           "  f:\n"
                           "    use: /nonexistent/libx.so\n"
                           "    from: src\n"
                           "  s:\n"
                           "    use: @P@:vsink\n"
                           "    from: [src, m.anything]\n");
  /* the registry's message, at the `use` value; nothing op-dependent on that node */
  expect_diag(f, "v.yaml:3:10: error: node 'src': unknown operator 'no_such_operator_here'");
  expect_diag(f, "v.yaml:6:10: error: node 'm': plugin 'validate-ops' (");
  expect_diag(f, "has no operator 'vnope' (it has: vsource, vmap, vsink, vbaddefault)\n");
  expect_diag(f, "v.yaml:9:10: error: node 'f': /nonexistent/libx.so: cannot open plugin: No such "
                 "file or directory\n");
  expect_errors(f, 3);
  assert_null(dag->nodes[0].op);
  assert_null(dag->nodes[1].op);
  assert_non_null(dag->nodes[3].op);
}

static void test_inputs_and_ports(void **state) {
  fixture_t *f = *state;
  validate(f,
           "nodes:\n"
           "  src:\n"
           "    use: @P@:vsource\n"
           "    config: { name: a }\n"
           "  parse:\n"
           "    use: @P@:vmap\n"
           "    from: [src.sde, src]\n"
           "  m:\n"
           "    use: @P@:vmap\n"
           "    from: [parse.sdie, parse.side, parse.errors, parse.zzzz, totally_unknown, prase]\n"
           "  sink:\n"
           "    use: @P@:vsink\n"
           "    from: m\n"
           "  after_sink:\n"
           "    use: @P@:vsink\n"
           "    from: [sink, sink.errors, sink.side]\n"
           "  lonely:\n"
           "    use: @P@:vmap\n"
           "  src2:\n"
           "    use: @P@:vsource\n"
           "    from: src\n"
           "    config: { name: b }\n");
  expect_diag(f, "v.yaml:10:79: error: node 'm': unknown input node 'prase' (did you mean "
                 "'parse'?)\n");
  expect_diag(f, "v.yaml:7:12: error: node 'parse': node 'src' (operator 'vsource') has no output "
                 "port 'sde' (ports: errors)\n");
  expect_diag(f, "v.yaml:10:12: error: node 'm': node 'parse' (operator 'vmap') has no output port "
                 "'sdie' (did you mean 'side'? ports: side, errors)\n");
  expect_diag(f, "v.yaml:10:50: error: node 'm': node 'parse' (operator 'vmap') has no output port "
                 "'zzzz' (ports: side, errors)\n");
  expect_diag(f, "v.yaml:10:62: error: node 'm': unknown input node 'totally_unknown'\n");
  expect_diag(f, "v.yaml:16:12: error: node 'after_sink': node 'sink' is a sink (operator 'vsink') "
                 "and has no default output; only its 'errors' port can be read ('from: "
                 "sink.errors')\n");
  expect_diag(f, "v.yaml:16:31: error: node 'after_sink': node 'sink' (operator 'vsink') has no "
                 "output port 'side' (ports: errors)\n");
  expect_diag(f, "v.yaml:17:3: error: node 'lonely': operator 'vmap' needs an input: add 'from: "
                 "<node>'\n");
  expect_diag(f, "v.yaml:21:11: error: node 'src2': operator 'vsource' is a source and reads no "
                 "input: remove 'from'\n");
  expect_errors(f, 9);
}

static void test_self_loop(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  src: { use: @P@:vsource, config: { name: a } }\n"
                           "  m:\n"
                           "    use: @P@:vmap\n"
                           "    from: [src, m.side]\n");
  expect_diag(f, "v.yaml:5:17: error: node 'm': a node cannot read its own output ('from: "
                 "m.side')\n");
  expect_errors(f, 1); /* not reported a second time as a cycle */
  size_t order[2];
  assert_int_not_equal(sl_dag_topo_order(dag, order), 0);
}

/* ------------------------------------------------------------ cycles */

static void test_cycles(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  src: { use: @P@:vsource, config: { name: a } }\n"
                           "  b: { use: @P@:vmap, from: [src, a] }\n"
                           "  a: { use: @P@:vmap, from: b }\n"
                           "  c: { use: @P@:vmap, from: e }\n"
                           "  d: { use: @P@:vmap, from: [c, c.side] }\n"
                           "  e: { use: @P@:vmap, from: [d, f] }\n"
                           "  f: { use: @P@:vmap, from: e }\n"
                           "  out: { use: @P@:vsink, from: [a, f] }\n");
  /* each cycle once, from its node that comes first in the file */
  expect_diag(f, "v.yaml:3:3: error: cycle: b -> a -> b\n");
  expect_diag(f, "v.yaml:5:3: error: cycle: c -> d -> e -> c\n");
  expect_diag(f, "v.yaml:7:3: error: cycle: e -> f -> e\n");
  expect_errors(f, 3);
  size_t order[7];
  assert_int_equal(sl_dag_topo_order(dag, order), SL_EINVAL);
}

static void test_many_cycles_capped(void **state) {
  fixture_t *f = *state;
  /* every node reads every other one: far more elementary cycles than reported */
  char yaml[4096];
  size_t used = (size_t)snprintf(yaml, sizeof(yaml), "nodes:\n");
  for (int i = 0; i < 8; i++) {
    used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "  n%d: { use: @P@:vmap, from: [", i);
    int first = 1;
    for (int j = 0; j < 8; j++) {
      if (j == i) continue;
      used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "%sn%d", first ? "" : ", ", j);
      first = 0;
    }
    used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "] }\n");
  }
  validate(f, yaml);
  expect_diag(f, "v.yaml:2:3: error: cycle: n0 -> n1 -> n0\n");
  expect_diag(f, "v.yaml:2:3: error: more cycles than shown: stopped looking after 32\n");
  expect_errors(f, 33);
}

/* ------------------------------------------------------------ event_time */

static void test_event_time_on_sources_only(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  src:\n"
                           "    use: @P@:vsource\n"
                           "    config: { name: a }\n"
                           "    event_time: { field: ts, max_out_of_order: 5s }\n"
                           "  m:\n"
                           "    use: @P@:vmap\n"
                           "    from: src\n"
                           "    event_time: { field: ts }\n"
                           "  out:\n"
                           "    use: @P@:vsink\n"
                           "    from: m\n"
                           "    event_time:\n"
                           "      timestamp: ingestion\n"
                           "  src2: { use: @P@:vsource, config: { name: b }, event_time: {} }\n"
                           "  lost: { use: @P@:nosuchop, from: src, event_time: { field: ts } }\n");
  expect_diag(f, "v.yaml:9:5: error: node 'm': event_time on operator 'vmap', which is not a "
                 "source: event_time belongs on the source node that produces the records\n");
  expect_diag(f, "v.yaml:13:5: error: node 'out': event_time on operator 'vsink', which is not a "
                 "source: event_time belongs on the source node that produces the records\n");
  /* `lost` does not resolve: only that is reported for it */
  expect_diag(f, "node 'lost': ");
  expect_errors(f, 3);
  const sl_event_time_t *et = &sl_dag_find(dag, "src")->event_time;
  assert_true(et->set);
  assert_int_equal(et->origin, SL_TS_ORIGIN_FIELD);
  assert_int_equal(et->max_out_of_order_ms, 5000);
}

/* ------------------------------------------------------------ partitioning */

static void test_partitioning(void **state) {
  fixture_t *f = *state;
  validate(f,
           "nodes:\n"
           "  src:\n"
           "    use: @P@:vsource\n"
           "    config: { name: a }\n"
           "    key_by: user\n"
           "  src2:\n"
           "    use: @P@:vsource\n"
           "    config: { name: a }\n"
           "    partition: rebalance\n"
           "  m:\n"
           "    use: @P@:vmap\n"
           "    from: src\n"
           "    parallelism: 2\n"
           "    partition: forward\n"
           "  ok:\n"
           "    use: @P@:vmap\n"
           "    from: m\n"
           "    parallelism: 2\n"
           "    partition: forward\n"
           "  keyed:\n"
           "    use: @P@:vmap\n"
           "    from: m\n"
           "    key_by: $key\n"
           "    parallelism: 3\n");
  expect_diag(f, "v.yaml:5:13: error: node 'src': key_by on a source (operator 'vsource') is "
                 "meaningless");
  expect_diag(f, "v.yaml:9:16: error: node 'src2': partition 'rebalance' on a source");
  expect_diag(f, "v.yaml:14:16: error: node 'm': partition 'forward' needs the same parallelism "
                 "as its input 'src' (2 here, 1 there)");
  expect_errors(f, 3);
}

static void test_topo_order_file_order(void **state) {
  fixture_t *f = *state;
  sl_dag_t *dag = validate(f,
                           "nodes:\n"
                           "  s1: { use: @P@:vsource, config: { name: a } }\n"
                           "  j: { use: @P@:vmap, from: [s1, s2] }\n"
                           "  s2: { use: @P@:vsource, config: { name: a } }\n"
                           "  k: { use: @P@:vsink, from: [j, s1] }\n");
  expect_errors(f, 0);
  size_t order[4];
  assert_int_equal(sl_dag_topo_order(dag, order), 0);
  /* every node after all of its inputs */
  size_t rank[4];
  for (size_t i = 0; i < 4; i++) rank[order[i]] = i;
  assert_true(rank[0] < rank[1] && rank[2] < rank[1] && rank[1] < rank[3]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_valid_dag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_defaults_added, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_required_without_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_default_names_plugin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quoted_strings_and_durations_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_use, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inputs_and_ports, setup, teardown),
      cmocka_unit_test_setup_teardown(test_self_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cycles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_cycles_capped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_partitioning, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_time_on_sources_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_topo_order_file_order, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
