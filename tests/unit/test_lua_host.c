/*
 * The Lua operator host (lua/, build/plugins/lua.so) in-process: whole DAGs
 * through the real loader, planner and scheduler, with Lua scripts written
 * to a scratch directory. One test per part of the API of
 * notes/lua_api.md; outputs are read back from file_sink files, counters and
 * node figures from the job summary, log lines from a captured stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "dag.h"
#include "job.h"
#include "log.h"
#include "plan.h"
#include "registry.h"
#include "summary.h"

#define TPDIR SLUICE_TEST_BINARY_DIR "/testplugins"

static char tmp[256];

typedef struct run_result {
  int rc;
  char failure[2048];
  uint64_t in[8], out[8], skipped[8], dead[8];
  uint64_t ctr[8][3]; /* counters "a", "b", "calls" per node */
  char *log;          /* captured stderr */
} run_result_t;

static void write_file(const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmp, rel);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *read_file(const char *rel) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmp, rel);
  FILE *f = fopen(path, "r");
  if (!f) return strdup("");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = calloc(1, (size_t)n + 1);
  if (fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
  fclose(f);
  return s;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Runs the DAG text as if it were the file <tmp>/test.yaml ("%T" in it is
 * replaced by the scratch dir). Returns the job's status. */
static int run(const char *yaml_fmt, run_result_t *res) {
  memset(res, 0, sizeof(*res));
  char yaml[8192];
  size_t o = 0;
  for (const char *p = yaml_fmt; *p && o < sizeof(yaml) - 300; p++) {
    if (p[0] == '%' && p[1] == 'T') {
      o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "%s", tmp);
      p++;
    } else {
      yaml[o++] = *p;
    }
  }
  yaml[o] = '\0';
  char dagpath[512], logpath[512];
  snprintf(dagpath, sizeof(dagpath), "%s/test.yaml", tmp);
  snprintf(logpath, sizeof(logpath), "%s/stderr.log", tmp);
  sl_diag_list_t diags;
  sl_diag_init(&diags);
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, TPDIR);
  sl_registry_add_dir(reg, SLUICE_TEST_PLUGIN_DIR);
  sl_dag_t *dag = sl_dag_load_string(yaml, strlen(yaml), dagpath, &diags);
  assert_non_null(dag);
  sl_dag_validate(dag, reg, &diags);
  sl_plan_t *plan = diags.errors ? NULL : sl_plan_build(dag, &diags);
  if (diags.errors) {
    sl_diag_print(&diags, stderr);
    fail_msg("DAG invalid");
  }
  fflush(stderr);
  int saved = dup(2);
  FILE *logf = fopen(logpath, "w");
  dup2(fileno(logf), 2);
  sl_job_t *job = sl_job_new(dag, plan);
  char err[1024] = "";
  int rc = sl_job_open(job, err, sizeof(err));
  if (rc == 0) {
    rc = sl_job_run(job);
    if (job->failure) snprintf(res->failure, sizeof(res->failure), "%s", job->failure);
  } else {
    snprintf(res->failure, sizeof(res->failure), "%s", err);
  }
  static const char *const names[] = {"a", "b", "calls"};
  for (uint32_t n = 0; n < dag->node_count && n < 8; n++) {
    sl_node_figures_t f;
    sl_summary_node(job, n, &f);
    res->in[n] = f.records_in;
    res->out[n] = f.records_out;
    res->skipped[n] = f.skipped;
    res->dead[n] = f.dead_lettered;
    for (int c = 0; c < 3; c++) res->ctr[n][c] = sl_summary_counter(job, n, names[c]);
  }
  sl_job_free(job); /* closes: close() may log */
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  fclose(logf);
  res->log = read_file("stderr.log");
  sl_dag_free(dag);
  sl_registry_free(reg);
  sl_diag_free(&diags);
  res->rc = rc;
  return rc;
}

static void done(run_result_t *r) { free(r->log); }

#define HAS(hay, needle)                                                                   \
  do {                                                                                     \
    if (!strstr((hay), (needle))) fail_msg("missing \"%s\" in:\n%s", (needle), (hay));     \
  } while (0)

/* ------------------------------------------------------------- emit */

/* A emits with key and ts; B emits with the defaults, which carry them. */
static void emit_defaults_pass_key_and_ts(void **st) {
  write_file("a.lua", "function process(rec, ctx)\n"
                      "  local n = sluice.json.decode(rec.value).n\n"
                      "  ctx:emit('v' .. n, 'key' .. n, 1000 + n)\n"
                      "end\n");
  write_file("b.lua", "function process(rec, ctx) ctx:emit(rec.value .. '!') end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 3 } }\n"
               "  a: { use: lua:a.lua, from: src }\n"
               "  b: { use: lua:b.lua, from: a }\n"
               "  out: { use: file_sink, from: b, config: { path: %T/out.jsonl, format: envelope } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("out.jsonl");
  HAS(out, "\"key\":\"key0\",\"value\":\"v0!\",\"ts\":1000");
  HAS(out, "\"key\":\"key2\",\"value\":\"v2!\",\"ts\":1002");
  assert_int_equal(count_lines(out), 3);
  free(out);
  done(&r);
}

static void emit_to_errors_and_unknown_port(void **st) {
  write_file("e.lua", "function process(rec, ctx) ctx:emit_to('errors', 'side', 'k') end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 4 } }\n"
               "  e: { use: lua:e.lua, from: src }\n"
               "  main: { use: null_sink, from: e }\n"
               "  side: { use: file_sink, from: e.errors, config: { path: %T/side.txt } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("side.txt");
  assert_string_equal(out, "side\nside\nside\nside\n");
  free(out);
  done(&r);
  write_file("u.lua", "function process(rec, ctx) ctx:emit_to('nope', 'x') end\n");
  rc = run("nodes:\n"
           "  src: { use: good:seq, config: { count: 4 } }\n"
           "  u: { use: lua:u.lua, from: src }\n"
           "  out: { use: null_sink, from: u }\n",
           &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "u.lua:1: ctx:emit_to: unknown output port 'nope'");
  done(&r);
}

/* A table value is refused with a hint; emit is refused in open. */
static void emit_refusals(void **st) {
  write_file("t.lua", "function process(rec, ctx) ctx:emit({1}) end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 1 } }\n"
               "  t: { use: lua:t.lua, from: src }\n"
               "  out: { use: null_sink, from: t }\n",
               &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "sluice.json.encode");
  done(&r);
  write_file("o.lua", "function open(ctx) ctx:emit('x') end\nfunction process() end\n");
  rc = run("nodes:\n"
           "  src: { use: good:seq, config: { count: 1 } }\n"
           "  o: { use: lua:o.lua, from: src }\n"
           "  out: { use: null_sink, from: o }\n",
           &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "o.lua:1: ctx:emit is only allowed in process");
  done(&r);
}

/* ------------------------------------------------------ ctx fields */

static void config_is_typed_without_limit_keys(void **st) {
  write_file("c.lua",
             "local c\n"
             "function open(ctx) c = ctx.config end\n"
             "function process(rec, ctx)\n"
             "  assert(math.type(c.i) == 'integer' and c.i == 3)\n"
             "  assert(math.type(c.d) == 'float' and c.d == 2.5)\n"
             "  assert(c.b == true and c.f == false)\n"
             "  assert(c.s == 'hello')\n"
             "  assert(c.lua_instructions == nil and c.lua_timeout == nil)\n"
             "  assert(c.lua_memory_mb == nil and c.lua_pattern_steps == nil)\n"
             "  ctx:emit('ok')\n"
             "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 1 } }\n"
               "  c: { use: lua:c.lua, from: src, config: { i: 3, d: 2.5, b: true, f: false,\n"
               "       s: hello, lua_instructions: 5000000, lua_timeout: 2s } }\n"
               "  out: { use: file_sink, from: c, config: { path: %T/c.txt } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("c.txt");
  assert_string_equal(out, "ok\n");
  free(out);
  done(&r);
}

static void log_levels_and_print(void **st) {
  sl_log_set_level(SL_LOG_DEBUG);
  write_file("l.lua", "function process(rec, ctx)\n"
                      "  ctx:log('error', 'E-msg') ctx:log('warn', 'W-msg')\n"
                      "  ctx:log('info', 'I-msg') ctx:log('debug', 'D-msg')\n"
                      "  print('P-msg', 1, nil, true)\n"
                      "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 1 } }\n"
               "  l: { use: lua:l.lua, from: src }\n"
               "  out: { use: null_sink, from: l }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  HAS(r.log, "error [node l[0]] E-msg");
  HAS(r.log, "warn  [node l[0]] W-msg");
  HAS(r.log, "info  [node l[0]] I-msg");
  HAS(r.log, "debug [node l[0]] D-msg");
  HAS(r.log, "P-msg\t1\tnil\ttrue");
  done(&r);
  sl_log_set_level(SL_LOG_INFO);
  write_file("lb.lua", "function process(rec, ctx) ctx:log('loud', 'x') end\n");
  rc = run("nodes:\n"
           "  src: { use: good:seq, config: { count: 1 } }\n"
           "  l: { use: lua:lb.lua, from: src }\n"
           "  out: { use: null_sink, from: l }\n",
           &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "invalid option 'loud'");
  done(&r);
}

/* Counters of two tasks are summed per node; counter(name) is the same
 * object on every call. */
static void counters_summed(void **st) {
  write_file("k.lua", "function process(rec, ctx)\n"
                      "  ctx:counter('a'):add()\n"
                      "  ctx:counter('b'):add(2)\n"
                      "  assert(ctx:counter('a') == ctx:counter('a'))\n"
                      "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 100 } }\n"
               "  k: { use: lua:k.lua, from: src, parallelism: 2 }\n"
               "  out: { use: null_sink, from: k }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.ctr[1][0], 100);
  assert_int_equal(r.ctr[1][1], 200);
  done(&r);
}

/* node, task, parallelism, now; on_end emits; one lua_State per task: a
 * global count differs per task. */
static void node_task_parallelism_now_and_state_per_task(void **st) {
  write_file("n.lua", "seen = 0\n"
                      "function process(rec, ctx) seen = seen + 1 end\n"
                      "function on_end(ctx)\n"
                      "  ctx:emit(string.format('%s t%d/%d seen=%d now=%d', ctx.node, ctx.task,\n"
                      "           ctx.parallelism, seen, ctx:now()))\n"
                      "end\n");
  run_result_t r;
  int64_t before = (int64_t)time(NULL) * 1000;
  int rc = run("settings: { workers: 2, batch_size: 16 }\n"
               "nodes:\n"
               "  src: { use: good:seq, config: { count: 1000 } }\n"
               "  n: { use: lua:n.lua, from: src, parallelism: 2, partition: rebalance }\n"
               "  out: { use: file_sink, from: n, config: { path: %T/n.txt } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("n.txt");
  HAS(out, "n t0/2 seen=500 now=");
  HAS(out, "n t1/2 seen=500 now=");
  int64_t now = atoll(strstr(out, "now=") + 4);
  assert_true(now >= before - 1000 && now <= before + 60000);
  free(out);
  done(&r);
}

/* ----------------------------------------------------------- rec */

/* Fields, headers and a nil offset (records emitted from on_end have no
 * offset); a script touching only rec.value works. */
static void rec_fields(void **st) {
  write_file("h.lua", "function process(rec, ctx) end\n"
                      "function on_end(ctx) ctx:emit('v', 'K', 77, { a = '1', b = 'two' }) end\n");
  write_file("r.lua",
             "function process(rec, ctx)\n"
             "  local h = rec.headers\n"
             "  assert(h == rec.headers) -- built once per record\n"
             "  ctx:emit(string.format('key=%s value=%s ts=%d off=%s a=%s b=%s nope=%s', rec.key,\n"
             "    rec.value, rec.ts, tostring(rec.offset), h.a, h.b, tostring(rec.nope)))\n"
             "end\n");
  write_file("v.lua", "function process(rec, ctx) ctx:emit(rec.value) end\n");
  write_file("o.lua", "function process(rec, ctx)\n"
                      "  local h = rec.headers\n"
                      "  assert(type(h) == 'table' and next(h) == nil)\n"
                      "  ctx:emit('off=' .. tostring(rec.offset) .. ' key=[' .. rec.key .. ']')\n"
                      "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 2 } }\n"
               "  h: { use: lua:h.lua, from: src }\n"
               "  r: { use: lua:r.lua, from: h }\n"
               "  out: { use: file_sink, from: r, config: { path: %T/r.txt } }\n"
               "  v: { use: lua:v.lua, from: src }\n"
               "  out2: { use: file_sink, from: v, config: { path: %T/v.txt } }\n"
               "  o: { use: lua:o.lua, from: src }\n"
               "  out3: { use: file_sink, from: o, config: { path: %T/o.txt } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("r.txt");
  assert_string_equal(out, "key=K value=v ts=77 off=nil a=1 b=two nope=nil\n");
  free(out);
  out = read_file("v.txt");
  assert_string_equal(out, "{\"n\":0,\"k\":\"k0\"}\n{\"n\":1,\"k\":\"k1\"}\n");
  free(out);
  out = read_file("o.txt");
  assert_string_equal(out, "off=0 key=[]\noff=1 key=[]\n");
  free(out);
  done(&r);
}

static void rec_kept_after_call_raises(void **st) {
  write_file("kept.lua", "local kept\n"
                         "function process(rec, ctx)\n"
                         "  if kept then return kept.value end\n"
                         "  kept = rec\n"
                         "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 5 } }\n"
               "  k: { use: lua:kept.lua, from: src }\n"
               "  out: { use: null_sink, from: k }\n",
               &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "kept.lua:3: record used after the call that received it");
  done(&r);
  /* however many records later: a rec is never reused */
  write_file("kept1.lua", "local kept\n"
                          "function process(rec, ctx)\n"
                          "  kept = kept or rec\n"
                          "  if sluice.json.decode(rec.value).n == 1000 then return kept.value end\n"
                          "end\n");
  rc = run("nodes:\n"
           "  src: { use: good:seq, config: { count: 2000 } }\n"
           "  k: { use: lua:kept1.lua, from: src }\n"
           "  out: { use: null_sink, from: k }\n",
           &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "record at offset 1000: kept1.lua:4: record used after the call");
  done(&r);
  /* and in on_end, after a batch */
  write_file("kept2.lua", "local kept\n"
                          "function process_batch(recs, ctx) kept = recs[1] end\n"
                          "function on_end(ctx) return kept.key end\n");
  rc = run("nodes:\n"
           "  src: { use: good:seq, config: { count: 5 } }\n"
           "  k: { use: lua:kept2.lua, from: src }\n"
           "  out: { use: null_sink, from: k }\n",
           &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "record used after the call that received it");
  done(&r);
}

/* process_batch is used when defined: whole batches when the node heads its
 * task, #recs and recs[i]; ipairs works. */
static void process_batch_used(void **st) {
  write_file("pb.lua", "function process(rec, ctx) error('process must not be called') end\n"
                       "function process_batch(recs, ctx)\n"
                       "  ctx:counter('calls'):add()\n"
                       "  ctx:counter('a'):add(#recs)\n"
                       "  local n = 0\n"
                       "  for i, rec in ipairs(recs) do n = n + 1; ctx:emit(rec.value) end\n"
                       "  assert(n == #recs and recs[0] == nil and recs[#recs + 1] == nil)\n"
                       "  assert(recs[1] == recs[1])\n"
                       "end\n");
  run_result_t r;
  int rc = run("settings: { batch_size: 50 }\n"
               "nodes:\n"
               "  src: { use: good:seq, config: { count: 500 } }\n"
               "  pb: { use: lua:pb.lua, from: src, partition: rebalance }\n"
               "  out: { use: null_sink, from: pb }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.ctr[1][1 - 1], 500); /* "a": records seen */
  assert_true(r.ctr[1][2] >= 10 && r.ctr[1][2] <= 40);
  assert_int_equal(r.in[2], 500);
  done(&r);
}

/* The column API of process_batch: recs:values(), recs:keys() and
 * recs:timestamps() equal the fields; ctx:emit_values gives one output per
 * record, with that record's key and ts, and drops nil and false. */
static void process_batch_columns(void **st) {
  write_file("k.lua", "function process(rec, ctx)\n"
                      "  local n = sluice.json.decode(rec.value).n\n"
                      "  ctx:emit(rec.value, 'key' .. n, 1000 + n)\n"
                      "end\n");
  write_file("cols.lua",
             "function process_batch(recs, ctx)\n"
             "  ctx:counter('calls'):add()\n"
             "  local vals, keys, ts = recs:values(), recs:keys(), recs:timestamps()\n"
             "  assert(#vals == #recs and #keys == #recs and #ts == #recs)\n"
             "  for i = 1, #recs do\n"
             "    local r = recs[i]\n"
             "    assert(vals[i] == r.value and keys[i] == r.key and ts[i] == r.ts)\n"
             "    local n = sluice.json.decode(vals[i]).n\n"
             "    if n % 3 == 0 then vals[i] = nil\n"
             "    elseif n % 3 == 1 then vals[i] = false\n"
             "    else vals[i] = 'v' .. n end\n"
             "  end\n"
             "  ctx:emit_values(vals)\n"
             "end\n");
  run_result_t r;
  int rc = run("settings: { batch_size: 8 }\n"
               "nodes:\n"
               "  src: { use: good:seq, config: { count: 30 } }\n"
               "  k: { use: lua:k.lua, from: src }\n"
               "  cols: { use: lua:cols.lua, from: k, partition: rebalance }\n"
               "  out: { use: file_sink, from: cols, config: { path: %T/cols.jsonl, format: envelope } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("cols.jsonl");
  assert_int_equal(count_lines(out), 10);
  for (int n = 2; n < 30; n += 3) {
    char want[128];
    snprintf(want, sizeof(want), "\"key\":\"key%d\",\"value\":\"v%d\",\"ts\":%d", n, n, 1000 + n);
    HAS(out, want);
  }
  assert_true(r.ctr[2][2] >= 4 && r.ctr[2][2] < 30); /* batched */
  free(out);
  done(&r);
}

/* Misuse of the column API fails with a message naming the mistake. */
static void process_batch_columns_misuse(void **st) {
  static const struct {
    const char *script, *want;
  } cases[] = {
      {"function process(rec, ctx) ctx:emit_values({rec.value}) end\n",
       "ctx:emit_values is only allowed in process_batch (called in process)"},
      {"function process_batch(recs, ctx) ctx:emit_values({'a', {}}) end\n",
       "ctx:emit_values: values[2] must be a string, nil or false, got table"},
      {"function process_batch(recs, ctx) ctx:emit_values('a') end\n",
       "bad argument #1 to 'emit_values' (table expected, got string)"},
      {"local kept\n"
       "function process_batch(recs, ctx) kept = recs end\n"
       "function on_end(ctx) kept:values() end\n",
       "record used after the call that received it"},
      {"function process_batch(recs, ctx) recs.values({}) end\n",
       "recs:values(): call it on the recs of process_batch"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    write_file("m.lua", cases[i].script);
    run_result_t r;
    int rc = run("settings: { batch_size: 4 }\n"
                 "nodes:\n"
                 "  src: { use: good:seq, config: { count: 10 } }\n"
                 "  m: { use: lua:m.lua, from: src, partition: rebalance }\n"
                 "  out: { use: null_sink, from: m }\n",
                 &r);
    assert_int_not_equal(rc, 0);
    HAS(r.failure, cases[i].want);
    HAS(r.failure, "m.lua:");
    done(&r);
  }
}

/* ---------------------------------------------------- life cycle */

static void open_on_end_close_order(void **st) {
  sl_log_set_level(SL_LOG_INFO);
  write_file("lc.lua", "local order = {}\n"
                       "function open(ctx) order[#order + 1] = 'open' end\n"
                       "function process(rec, ctx)\n"
                       "  if order[#order] ~= 'process' then order[#order + 1] = 'process' end\n"
                       "end\n"
                       "function on_end(ctx)\n"
                       "  order[#order + 1] = 'on_end'\n"
                       "  ctx:emit(table.concat(order, ','))\n"
                       "end\n"
                       "function close(ctx) print('closing after ' .. table.concat(order, ',')) end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 10 } }\n"
               "  lc: { use: lua:lc.lua, from: src }\n"
               "  out: { use: file_sink, from: lc, config: { path: %T/lc.txt } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("lc.txt");
  assert_string_equal(out, "open,process,on_end\n");
  free(out);
  HAS(r.log, "closing after open,process,on_end");
  done(&r);
}

/* ------------------------------------------------------------ json */

static void json_roundtrip(void **st) {
  write_file("j.lua",
             "local J = sluice.json\n"
             "function process(rec, ctx)\n"
             "  local t = J.decode('{\"a\":1,\"f\":1.5,\"b\":[1,2,{\"c\":null}],\"s\":\"x\\\\u00e9\"}')\n"
             "  assert(math.type(t.a) == 'integer' and t.a == 1 and t.f == 1.5)\n"
             "  assert(t.b[3].c == J.null and #t.b == 3 and t.s == 'x\\u{e9}')\n"
             "  local again = J.decode(J.encode(t))\n"
             "  assert(again.a == 1 and again.b[2] == 2 and again.b[3].c == J.null)\n"
             "  assert(J.encode({x = 1}) == '{\"x\":1}' and J.encode(J.null) == 'null')\n"
             "  assert(not pcall(J.decode, '{bad'))\n"
             "  assert(J.new == nil and J.encode_keep_buffer == nil)\n"
             "  local n = J.decode(rec.value).n\n"
             "  ctx:emit(J.encode({ id = 'p' .. n }))\n"
             "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 2 } }\n"
               "  j: { use: lua:j.lua, from: src }\n"
               "  out: { use: file_sink, from: j, config: { path: %T/j.txt } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("j.txt");
  assert_string_equal(out, "{\"id\":\"p0\"}\n{\"id\":\"p1\"}\n");
  free(out);
  done(&r);
}

/* ---------------------------------------------------------- errors */

static const char *fail_script = "function process(rec, ctx)\n"
                                 "  local n = sluice.json.decode(rec.value).n\n"
                                 "  if n % 2 == 1 then error('odd ' .. n) end\n"
                                 "  ctx:emit(rec.value)\n"
                                 "end\n";

static void error_under_fail_names_line(void **st) {
  write_file("f.lua", fail_script);
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 10 } }\n"
               "  f: { use: lua:f.lua, from: src }\n"
               "  out: { use: null_sink, from: f }\n",
               &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "node 'f'");
  HAS(r.failure, "record at offset 1: f.lua:3: odd 1");
  HAS(r.failure, "stack traceback:");
  HAS(r.failure, "f.lua:3: in function <f.lua:1>");
  done(&r);
}

static void error_under_skip_counts(void **st) {
  write_file("f.lua", fail_script);
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 10 } }\n"
               "  f: { use: lua:f.lua, from: src, on_error: skip }\n"
               "  out: { use: null_sink, from: f }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.skipped[1], 5);
  assert_int_equal(r.in[2], 5);
  done(&r);
}

static void error_under_dead_letter(void **st) {
  write_file("f.lua", fail_script);
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 4 } }\n"
               "  f: { use: lua:f.lua, from: src, on_error: dead_letter }\n"
               "  out: { use: null_sink, from: f }\n"
               "  dl: { use: file_sink, from: f.errors, config: { path: %T/dl.jsonl, format: envelope } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.dead[1], 2);
  char *out = read_file("dl.jsonl");
  assert_int_equal(count_lines(out), 2);
  HAS(out, "\"value\":{\"n\":1,\"k\":\"k1\"}");
  HAS(out, "\"sluice.error\":\"f.lua:3: odd 1");
  HAS(out, "\"sluice.node\":\"f\"");
  free(out);
  done(&r);
}

/* A failing process_batch applies on_error to every record of the call. */
static void process_batch_failure_applies_to_all(void **st) {
  write_file("bf.lua", "function process_batch(recs, ctx)\n"
                       "  ctx:counter('calls'):add()\n"
                       "  for i = 1, #recs do\n"
                       "    if sluice.json.decode(recs[i].value).n == 7 then error('seven') end\n"
                       "  end\n"
                       "end\n");
  run_result_t r;
  int rc = run("settings: { batch_size: 10 }\n"
               "nodes:\n"
               "  src: { use: good:seq, config: { count: 100 } }\n"
               "  bf: { use: lua:bf.lua, from: src, partition: rebalance, on_error: skip }\n"
               "  out: { use: null_sink, from: bf }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.in[1], 100);
  assert_true(r.ctr[1][2] < 100); /* batched */
  assert_true(r.skipped[1] > 1);  /* the whole failed call */
  assert_true(r.skipped[1] <= 10);
  done(&r);
}

/* ---------------------------------------------------------- require */

static void require_beside_script_and_dag_only(void **st) {
  char d[512];
  snprintf(d, sizeof(d), "%s/scripts", tmp);
  mkdir(d, 0755);
  snprintf(d, sizeof(d), "%s/elsewhere", tmp);
  mkdir(d, 0755);
  write_file("scripts/m1.lua", "return { name = 'm1' }\n");
  write_file("m2.lua", "local M = {} function M.name() return 'm2' end return M\n");
  write_file("elsewhere/m3.lua", "return 'm3'\n");
  write_file("scripts/req.lua",
             "local m1 = require('m1')\n"
             "local m2 = require('m2')\n"
             "assert(require('m1') == m1) -- cached\n"
             "local ok, e3 = pcall(require, 'm3')\n"
             "assert(not ok and e3:find('not found'), e3)\n"
             "local ok2, e4 = pcall(require, '../m2')\n"
             "assert(not ok2 and e4:find('bad module name'), e4)\n"
             "assert(package == nil)\n"
             "function process(rec, ctx) ctx:emit(m1.name .. m2.name()) end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 1 } }\n"
               "  q: { use: lua:scripts/req.lua, from: src }\n"
               "  out: { use: file_sink, from: q, config: { path: %T/q.txt } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  char *out = read_file("q.txt");
  assert_string_equal(out, "m1m2\n");
  free(out);
  done(&r);
}

/* ---------------------------------------------------- open failures */

static void syntax_error_fails_open(void **st) {
  write_file("syn.lua", "function process(rec, ctx)\n  local x = = 1\nend\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 1 } }\n"
               "  s: { use: lua:syn.lua, from: src }\n"
               "  out: { use: null_sink, from: s }\n",
               &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "node 's'");
  HAS(r.failure, "syn.lua:2:");
  done(&r);
}

static void missing_process_fails_open(void **st) {
  write_file("np.lua", "function open(ctx) end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 1 } }\n"
               "  np: { use: lua:np.lua, from: src }\n"
               "  out: { use: null_sink, from: np }\n",
               &r);
  assert_int_not_equal(rc, 0);
  HAS(r.failure, "script defines neither process nor process_batch");
  done(&r);
}

/* ------------------------------------------------ sandbox and limits */

static void sandbox_basics(void **st) {
  write_file("sb.lua",
             "assert(io == nil and debug == nil and package == nil and dofile == nil)\n"
             "assert(loadfile == nil and string.dump == nil and os.execute == nil)\n"
             "assert(os.getenv == nil and os.exit == nil and os.remove == nil)\n"
             "assert(type(os.clock()) == 'number' and type(os.time()) == 'number')\n"
             "assert(type(os.date('%Y')) == 'string')\n"
             "assert(getmetatable('') == false)\n"
             "assert(not pcall(setmetatable, '', {}))\n"
             "assert(('abc'):upper() == 'ABC' and ('x').dump == nil)\n"
             "assert(type(collectgarbage('count')) == 'number')\n"
             "assert(not pcall(collectgarbage, 'collect'))\n"
             "local f = load('return x', 'c', 'b', { x = 5 })\n"
             "assert(f() == 5)\n"
             "local g, e = load('\\27Lua')\n"
             "assert(g == nil and e:find('binary'), e)\n"
             "assert(load('return _G')() == _G)\n"
             "assert(not pcall(setmetatable, {}, { __gc = print }))\n"
             "assert(getmetatable(setmetatable({}, { __index = {} })) ~= nil)\n"
             "assert(select(2, xpcall(error, function(m) return 'H:' .. m end, 'x')) == 'H:x')\n"
             "function process(rec, ctx) ctx:emit('ok') end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 1 } }\n"
               "  sb: { use: lua:sb.lua, from: src }\n"
               "  out: { use: null_sink, from: sb }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  done(&r);
}

static void limits_stop_bombs(void **st) {
  write_file("loop.lua", "function process(rec, ctx)\n"
                         "  local n = sluice.json.decode(rec.value).n\n"
                         "  if n == 0 then while true do end end\n"
                         "  if n == 1 then while true do pcall(function() while true do end end) end end\n"
                         "  if n == 2 then local s = string.rep('x', 1 << 30) end\n"
                         "  if n == 3 then local t = {} for i = 1, 1e9 do t[i] = i end end\n"
                         "  ctx:emit('ok')\n"
                         "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 5 } }\n"
               "  l: { use: lua:loop.lua, from: src, on_error: dead_letter,\n"
               "       config: { lua_instructions: 1000000, lua_memory_mb: 16 } }\n"
               "  out: { use: file_sink, from: l, config: { path: %T/ok.txt } }\n"
               "  dl: { use: file_sink, from: l.errors, config: { path: %T/lim.jsonl, format: envelope } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.dead[1], 4);
  char *out = read_file("lim.jsonl");
  HAS(out, "loop.lua:3: instruction budget of 1000000 per call exceeded (lua_instructions)");
  HAS(out, "loop.lua:4: instruction budget of 1000000 per call exceeded (lua_instructions)");
  HAS(out, "memory limit of 16 MB exceeded (lua_memory_mb)");
  free(out);
  out = read_file("ok.txt");
  assert_string_equal(out, "ok\n");
  free(out);
  done(&r);
}

/* Small budgets are counted from a call's first instruction (the hook is
 * always on): a loop of a few hundred thousand instructions, done in well
 * under a millisecond, is stopped. Large budgets arm the hook only for calls
 * that run long (lua_watchdog.c): loops in the main thread, in a coroutine
 * made in open and in a wrapped one are stopped all the same, and a call
 * within the budget is not. */
static void instruction_budget_eager_and_lazy(void **st) {
  write_file("small.lua", "function process(rec, ctx)\n"
                          "  local n, x = sluice.json.decode(rec.value).n, 0\n"
                          "  for i = 1, (n == 1 and 100000 or 1000) do x = x + i end\n"
                          "  ctx:emit('ok' .. n)\n"
                          "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 3 } }\n"
               "  l: { use: lua:small.lua, from: src, on_error: dead_letter,\n"
               "       config: { lua_instructions: 50000 } }\n"
               "  out: { use: file_sink, from: l, config: { path: %T/small_ok.txt } }\n"
               "  dl: { use: file_sink, from: l.errors, config: { path: %T/small.jsonl, format: envelope } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.dead[1], 1);
  char *out = read_file("small.jsonl");
  HAS(out, "small.lua:3: instruction budget of 50000 per call exceeded (lua_instructions)");
  free(out);
  done(&r);

  write_file("big.lua", "local early\n"
                        "function open(ctx) early = coroutine.create(function() while true do end end) end\n"
                        "function process(rec, ctx)\n"
                        "  local n, x = sluice.json.decode(rec.value).n, 0\n"
                        "  if n == 1 then while true do end end\n"
                        "  if n == 2 then local ok, e = coroutine.resume(early) error(e, 0) end\n"
                        "  if n == 3 then coroutine.wrap(function() while true do end end)() end\n"
                        "  for i = 1, 300000 do x = x + i end\n"
                        "  ctx:emit('ok' .. n)\n"
                        "end\n");
  rc = run("nodes:\n"
           "  src: { use: good:seq, config: { count: 5 } }\n"
           "  l: { use: lua:big.lua, from: src, on_error: dead_letter,\n"
           "       config: { lua_instructions: 2000000, lua_timeout: 60s } }\n"
           "  out: { use: file_sink, from: l, config: { path: %T/big_ok.txt } }\n"
           "  dl: { use: file_sink, from: l.errors, config: { path: %T/big.jsonl, format: envelope } }\n",
           &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.dead[1], 3);
  out = read_file("big.jsonl");
  HAS(out, "big.lua:5: instruction budget of 2000000 per call exceeded (lua_instructions)");
  HAS(out, "big.lua:2: instruction budget of 2000000 per call exceeded (lua_instructions)");
  HAS(out, "big.lua:7: instruction budget of 2000000 per call exceeded (lua_instructions)");
  free(out);
  out = read_file("big_ok.txt");
  assert_string_equal(out, "ok0\nok4\n");
  free(out);
  done(&r);
}

/* Coroutines under limits (lua_coroutine.c), at a small (eager) and a large
 * (lazy) budget each:
 * - a loop that only makes coroutines (create, wrap) is counted: making one
 *   never resets the caller's count;
 * - a coroutine a limit killed keeps its endless __close unrun, through the
 *   wrapped function's error path and through coroutine.close in a later
 *   call (which says so);
 * - a coroutine that dies of an ordinary error is closed as in stock Lua. */
static void coroutine_bombs_stopped(void **st) {
  write_file("co.lua", "local f, killed = function() end\n"
                       "local function stuck() while true do end end\n"
                       "function process(rec, ctx)\n"
                       "  local n = sluice.json.decode(rec.value).n\n"
                       "  if n == 0 then while true do coroutine.wrap(f) end end\n"
                       "  if n == 1 then while true do coroutine.create(f) end end\n"
                       "  if n == 2 then\n"
                       "    coroutine.wrap(function()\n"
                       "      local x <close> = setmetatable({}, {__close = stuck})\n"
                       "      stuck()\n"
                       "    end)()\n"
                       "  end\n"
                       "  if n == 3 then\n"
                       "    killed = coroutine.create(function()\n"
                       "      local x <close> = setmetatable({}, {__close = stuck})\n"
                       "      stuck()\n"
                       "    end)\n"
                       "    coroutine.resume(killed)\n"
                       "  end\n"
                       "  if n == 4 then\n"
                       "    local ok, e = coroutine.close(killed)\n"
                       "    ctx:emit(tostring(ok) .. ': ' .. e)\n"
                       "  end\n"
                       "  if n == 5 then\n"
                       "    local closed = false\n"
                       "    local ok, e = pcall(coroutine.wrap(function()\n"
                       "      local x <close> = setmetatable({}, {__close = function() closed = true end})\n"
                       "      error('plain', 0)\n"
                       "    end))\n"
                       "    ctx:emit(tostring(ok) .. ' ' .. e .. ' closed=' .. tostring(closed))\n"
                       "  end\n"
                       "end\n");
  static const char *const budgets[] = {"lua_instructions: 50000", "lua_instructions: 2000000"};
  for (int b = 0; b < 2; b++) {
    run_result_t r;
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "nodes:\n"
             "  src: { use: good:seq, config: { count: 6 } }\n"
             "  l: { use: lua:co.lua, from: src, on_error: dead_letter,\n"
             "       config: { %s, lua_timeout: 60s } }\n"
             "  out: { use: file_sink, from: l, config: { path: %%T/co_ok.txt } }\n"
             "  dl: { use: file_sink, from: l.errors, config: { path: %%T/co.jsonl, format: envelope } }\n",
             budgets[b]);
    int rc = run(yaml, &r);
    if (rc) fail_msg("%s", r.failure);
    assert_int_equal(r.dead[1], 4);
    char *out = read_file("co.jsonl");
    const char *limit = b == 0 ? "instruction budget of 50000 per call exceeded"
                               : "instruction budget of 2000000 per call exceeded";
    size_t hits = 0;
    for (const char *p = out; (p = strstr(p, limit)) != NULL; p++) hits++;
    assert_true(hits >= 4); /* one per dead letter (an error may name it twice) */
    free(out);
    out = read_file("co_ok.txt");
    HAS(out, "false: coroutine stopped by a limit (its to-be-closed variables are not closed)\n");
    HAS(out, "false plain closed=true\n");
    free(out);
    done(&r);
    char path[512];
    snprintf(path, sizeof(path), "%s/co.jsonl", tmp);
    unlink(path);
    snprintf(path, sizeof(path), "%s/co_ok.txt", tmp);
    unlink(path);
  }
}

/* A large budget's hook is armed by the watchdog's signal, which may come
 * while the thread runs another operator's call nested in this one (a
 * chained Lua operator runs inside emit). The request is not lost: the
 * operator that loops after its emits is stopped all the same. */
static void lazy_budget_with_a_chained_operator(void **st) {
  write_file("chain_a.lua", "function process(rec, ctx)\n"
                            "  for i = 1, 4 do ctx:emit('x' .. i) end\n"
                            "  while true do end\n"
                            "end\n");
  write_file("chain_b.lua", "function process(rec, ctx)\n"
                            "  local x = 0\n"
                            "  for i = 1, 3000000 do x = x + i end\n"
                            "  ctx:emit(rec.value)\n"
                            "end\n");
  run_result_t r;
  int rc = run("nodes:\n"
               "  src: { use: good:seq, config: { count: 2 } }\n"
               "  a: { use: lua:chain_a.lua, from: src, on_error: dead_letter,\n"
               "       config: { lua_instructions: 20000000, lua_timeout: 60s } }\n"
               "  b: { use: lua:chain_b.lua, from: a, config: { lua_instructions: 100000000 } }\n"
               "  out: { use: file_sink, from: b, config: { path: %T/chain_ok.txt } }\n"
               "  dl: { use: file_sink, from: a.errors, config: { path: %T/chain.jsonl, format: envelope } }\n",
               &r);
  if (rc) fail_msg("%s", r.failure);
  assert_int_equal(r.dead[1], 2);
  assert_int_equal(r.out[2], 8);
  char *out = read_file("chain.jsonl");
  HAS(out, "chain_a.lua:3: instruction budget of 20000000 per call exceeded (lua_instructions)");
  free(out);
  done(&r);
}

static int setup(void **st) {
  snprintf(tmp, sizeof(tmp), "/tmp/sl_lua_host_XXXXXX");
  if (!mkdtemp(tmp)) return -1;
  return 0;
}

static int teardown(void **st) {
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(emit_defaults_pass_key_and_ts),
      cmocka_unit_test(emit_to_errors_and_unknown_port),
      cmocka_unit_test(emit_refusals),
      cmocka_unit_test(config_is_typed_without_limit_keys),
      cmocka_unit_test(log_levels_and_print),
      cmocka_unit_test(counters_summed),
      cmocka_unit_test(node_task_parallelism_now_and_state_per_task),
      cmocka_unit_test(rec_fields),
      cmocka_unit_test(rec_kept_after_call_raises),
      cmocka_unit_test(process_batch_used),
      cmocka_unit_test(process_batch_columns),
      cmocka_unit_test(process_batch_columns_misuse),
      cmocka_unit_test(open_on_end_close_order),
      cmocka_unit_test(json_roundtrip),
      cmocka_unit_test(error_under_fail_names_line),
      cmocka_unit_test(error_under_skip_counts),
      cmocka_unit_test(error_under_dead_letter),
      cmocka_unit_test(process_batch_failure_applies_to_all),
      cmocka_unit_test(require_beside_script_and_dag_only),
      cmocka_unit_test(syntax_error_fails_open),
      cmocka_unit_test(missing_process_fails_open),
      cmocka_unit_test(sandbox_basics),
      cmocka_unit_test(limits_stop_bombs),
      cmocka_unit_test(instruction_budget_eager_and_lazy),
      cmocka_unit_test(coroutine_bombs_stopped),
      cmocka_unit_test(lazy_budget_with_a_chained_operator),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
