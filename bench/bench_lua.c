/*
 * bench_lua - what a Lua operator costs per record, against the same
 * operator in C and against a bare lua_pcall loop, in the same run.
 *
 * Operators are called through a minimal host (no engine: no batches,
 * channels or scheduling), so the figures are the operator's own cost:
 *   - bare lua_pcall: a Lua function `function(v) return v end` called from
 *     C with one string argument (the floor for calling into Lua per record)
 *   - trivial map: emit the value unchanged (Lua: process; process_batch
 *     over 1024-record batches, as a loop over recs[i] and through the
 *     column API recs:values() + ctx:emit_values; C: a function doing the
 *     same)
 *   - JSON filter: keep action == "view", emit it (Lua: decode with
 *     sluice.json (lua-cjson), or read the one field with sluice.json.get;
 *     C: the clicks:parse_views operator, which scans the JSON in place and
 *     builds a smaller record)
 * Times are CPU time, the best of REPS rounds of every case.
 *
 * usage: bench_lua [records]   (default 1000000)
 */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dag.h"
#include "json_scan.h"
#include "registry.h"
#include "util.h"

#define BATCH 1024
#define DISTINCT 1024

/* ------------------------------------------------------- test records */

static char *g_values[DISTINCT];
static sl_record_t g_recs[DISTINCT];

static void make_records(void) {
  static const char *const actions[] = {"view", "view", "view", "click", "add_to_cart", "view", "purchase"};
  for (int i = 0; i < DISTINCT; i++) {
    g_values[i] = sl_xasprintf(
        "{\"ts\":%lld,\"user_id\":\"u%d\",\"session_id\":\"s%d-1\",\"product_id\":\"p%d\","
        "\"page\":\"/products/p%d\",\"action\":\"%s\",\"price_cents\":%d}",
        1700000000000LL + i * 10, i % 97, i % 97, i % 100, i % 100, actions[i % 7], 100 + i);
    g_recs[i] = (sl_record_t){.key = "u1", .key_len = 2, .value = g_values[i],
                              .value_len = strlen(g_values[i]), .ts = 1700000000000LL + i,
                              .offset = i};
  }
}

/* CPU time of this (single-threaded) process: on a shared VM, wall-clock
 * time also counts the moments the vCPU was taken away. */
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------- a tiny host */

typedef struct stage {
  sl_ctx_head_t head;
  const sl_operator_t *op;
  void *state;
  const char *arg;    /* the script path for the Lua host */
  const char *dir;
  uint64_t emitted;
  uint64_t bytes;
} stage_t;

#define ST(ctx) ((stage_t *)(void *)(ctx))

static int h_emit(sl_ctx_t *ctx, int port, const sl_record_t *rec) {
  ST(ctx)->emitted++;
  ST(ctx)->bytes += rec->value_len;
  return 0;
}
static int h_port(sl_ctx_t *ctx, const char *name) { return name && *name ? 1 : 0; }
static uint32_t h_budget(sl_ctx_t *ctx) { return BATCH; }
static void h_logv(sl_ctx_t *ctx, sl_log_level_t l, const char *fmt, va_list ap) {
  if (l <= SL_LOG_WARN) {
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
  }
}
static char g_error[1024];
static void h_set_error(sl_ctx_t *ctx, const char *fmt, va_list ap) {
  vsnprintf(g_error, sizeof(g_error), fmt, ap);
}
static void h_failv(sl_ctx_t *ctx, const char *fmt, va_list ap) {
  vfprintf(stderr, fmt, ap);
  exit(1);
}
static sl_counter_t g_counters[64];
static int g_counter_next;
static sl_counter_t *h_counter(sl_ctx_t *ctx, const char *name) {
  return &g_counters[g_counter_next++ % 64];
}
static const char *h_cstr(sl_ctx_t *ctx, const char *key) {
  const sl_operator_t *op = ST(ctx)->op;
  for (size_t i = 0; i < op->config_count; i++)
    if (strcmp(op->config[i].name, key) == 0) return op->config[i].default_value;
  return NULL;
}
static int64_t h_cint(sl_ctx_t *ctx, const char *key) {
  const char *v = h_cstr(ctx, key);
  int64_t ms = 0;
  if (v && sl_parse_duration_ms(v, &ms) == 0) return ms; /* durations and plain ints */
  return v ? strtoll(v, NULL, 10) : 0;
}
static double h_cdouble(sl_ctx_t *ctx, const char *key) {
  const char *v = h_cstr(ctx, key);
  return v ? strtod(v, NULL) : 0;
}
static int h_cbool(sl_ctx_t *ctx, const char *key) {
  const char *v = h_cstr(ctx, key);
  return v && strcmp(v, "true") == 0;
}
static const char *h_node(sl_ctx_t *ctx) { return "bench"; }
static uint32_t h_task(sl_ctx_t *ctx) { return 0; }
static uint32_t h_par(sl_ctx_t *ctx) { return 1; }
static int h_stopping(sl_ctx_t *ctx) { return 0; }
static int64_t h_now(sl_ctx_t *ctx) { return sl_wall_ms(); }
static const char *h_arg(sl_ctx_t *ctx) { return ST(ctx)->arg; }
static const char *h_dir(sl_ctx_t *ctx) { return ST(ctx)->dir; }
/* The declared keys with their defaults: what a node without config gets. */
static size_t h_config_count(sl_ctx_t *ctx) { return ST(ctx)->op->config_count; }
static int h_config_at(sl_ctx_t *ctx, size_t i, sl_config_entry_t *out) {
  const sl_operator_t *op = ST(ctx)->op;
  if (i >= op->config_count) return SL_EINVAL;
  const sl_config_key_t *k = &op->config[i];
  *out = (sl_config_entry_t){k->name, k->default_value, k->type, h_cint(ctx, k->name),
                             h_cdouble(ctx, k->name), 1};
  return 0;
}

static const sl_host_api_t host = {
    .abi_major = SL_ABI_MAJOR,
    .abi_minor = SL_ABI_MINOR,
    .struct_size = sizeof(sl_host_api_t),
    .emit = h_emit,
    .port = h_port,
    .budget = h_budget,
    .logv = h_logv,
    .set_error = h_set_error,
    .counter = h_counter,
    .config_string = h_cstr,
    .config_int = h_cint,
    .config_double = h_cdouble,
    .config_bool = h_cbool,
    .config_duration_ms = h_cint,
    .node_name = h_node,
    .task_index = h_task,
    .parallelism = h_par,
    .stopping = h_stopping,
    .now_ms = h_now,
    .json_get = sl_json_scan_get,
    .strerror = sl_error_text,
    .failv = h_failv,
    .operator_arg = h_arg,
    .dag_dir = h_dir,
    .config_count = h_config_count,
    .config_at = h_config_at,
};

static void stage_open(stage_t *s) {
  char err[1024] = "";
  s->head.host = &host;
  if (s->op->open && s->op->open((sl_ctx_t *)s, &s->state, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_lua: open failed: %s\n", err);
    exit(1);
  }
}

static void stage_close(stage_t *s) {
  if (s->op->close) s->op->close(s->state);
}

/* ns per record through process(), one record per call. */
static double per_record(stage_t *s, uint64_t n) {
  s->emitted = 0;
  uint64_t t0 = cpu_ns();
  for (uint64_t i = 0; i < n; i++) {
    const sl_record_t *r = &g_recs[i % DISTINCT];
    if (s->op->process((sl_ctx_t *)s, s->state, r) < 0) {
      fprintf(stderr, "bench_lua: process failed: %s\n", g_error);
      exit(1);
    }
  }
  return (double)(cpu_ns() - t0) / (double)n;
}

/* ns per record through process_batch(), BATCH records per call. */
static double batched(stage_t *s, uint64_t n) {
  s->emitted = 0;
  uint64_t t0 = cpu_ns();
  for (uint64_t i = 0; i < n; i += BATCH) {
    if (s->op->process_batch((sl_ctx_t *)s, s->state, g_recs, BATCH) < 0) {
      fprintf(stderr, "bench_lua: process_batch failed: %s\n", g_error);
      exit(1);
    }
  }
  return (double)(cpu_ns() - t0) / (double)(n / BATCH * BATCH);
}

/* ------------------------------------------------------- C operators */

static int c_map(sl_ctx_t *ctx, void *state, const sl_record_t *rec) { return sl_emit(ctx, rec); }
static const sl_operator_t c_map_op = {SL_OPERATOR_INIT, .name = "c_map",
                                       .kind = SL_KIND_TRANSFORM, .process = c_map};

/* ------------------------------------------------------- bare lua_pcall */

static double bare_pcall(uint64_t n) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_dostring(L, "return function(v) return v end");
  int fn = luaL_ref(L, LUA_REGISTRYINDEX);
  uint64_t t0 = cpu_ns();
  for (uint64_t i = 0; i < n; i++) {
    const sl_record_t *r = &g_recs[i % DISTINCT];
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
    lua_pushlstring(L, r->value, r->value_len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) exit(1);
    lua_pop(L, 1);
  }
  double ns = (double)(cpu_ns() - t0) / (double)n;
  lua_close(L);
  return ns;
}

/* ------------------------------------------------------- main */

static const char *write_script(const char *dir, const char *name, const char *text) {
  char *path = sl_xasprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
  return path;
}

/* One measured case: a Lua script (or a C operator) run per record or in
 * batches; `group` says which cases must emit the same number of records. */
typedef struct bench_case {
  const char *label;
  const char *script_name, *script; /* NULL: the C operator `c_op` */
  const sl_operator_t *c_op;
  int batched;
  int group; /* 0: the bare loop, 1: maps (emit every record), 2: filters */
  const char *path;
  double best;
  uint64_t emitted;
} bench_case_t;

#define REPS 5
#define CASE(label, name, script, batched, group) \
  { label, name, script, NULL, batched, group, NULL, 0, 0 }

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000ull;
  n = (n + BATCH - 1) / BATCH * BATCH;
  make_records();
  char dir[] = "/tmp/bench-lua-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, SLUICE_BENCH_PLUGIN_DIR);
  char err[1024];
  sl_plugin_handle_t *h = NULL;
  char *arg = NULL;
  const sl_operator_t *lua_op =
      sl_registry_resolve_use(reg, "lua:x.lua", dir, &h, &arg, err, sizeof(err));
  free(arg);
  const sl_operator_t *parse_op = sl_registry_resolve(reg, "clicks:parse_views", NULL, NULL, err, sizeof(err));
  if (!lua_op || !parse_op) {
    fprintf(stderr, "bench_lua: %s\n", err);
    return 1;
  }

  bench_case_t cases[] = {
      CASE("bare lua_pcall (return v)", NULL, NULL, 0, 0),
      CASE("Lua trivial map, process", "map.lua", "function process(rec, ctx) ctx:emit(rec.value) end\n", 0, 1),
      CASE("Lua trivial map, process_batch: loop over recs[i]", "map_loop.lua",
       "function process_batch(recs, ctx)\n"
       "  for i = 1, #recs do ctx:emit(recs[i].value) end\n"
       "end\n", 1, 1),
      CASE("Lua trivial map, process_batch: recs:values() + ctx:emit_values", "map_cols.lua",
       "function process_batch(recs, ctx) ctx:emit_values(recs:values()) end\n", 1, 1),
      CASE("C trivial map", NULL, NULL, 0, 1),
      CASE("Lua JSON decode + filter + emit, process", "json.lua",
       "local decode = sluice.json.decode\n"
       "function process(rec, ctx)\n"
       "  local v = rec.value\n"
       "  if decode(v).action == 'view' then ctx:emit(v) end\n"
       "end\n", 0, 2),
      CASE("Lua JSON decode + filter + emit, process_batch: loop", "json_batch.lua",
       "local decode = sluice.json.decode\n"
       "function process_batch(recs, ctx)\n"
       "  for i = 1, #recs do\n"
       "    local v = recs[i].value\n"
       "    if decode(v).action == 'view' then ctx:emit(v) end\n"
       "  end\n"
       "end\n", 1, 2),
      CASE("Lua sluice.json.get + filter + emit, process", "get.lua",
       "local get = sluice.json.get\n"
       "function process(rec, ctx)\n"
       "  local v = rec.value\n"
       "  if get(v, 'action') == 'view' then ctx:emit(v) end\n"
       "end\n", 0, 2),
      CASE("Lua sluice.json.get + filter, process_batch: columns", "get_cols.lua",
       "local get = sluice.json.get\n"
       "function process_batch(recs, ctx)\n"
       "  local vals = recs:values()\n"
       "  for i = 1, #vals do\n"
       "    if get(vals[i], 'action') ~= 'view' then vals[i] = false end\n"
       "  end\n"
       "  ctx:emit_values(vals)\n"
       "end\n", 1, 2),
      CASE("C JSON filter (clicks:parse_views)", NULL, NULL, 0, 2),
  };
  enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
  cases[4].c_op = &c_map_op;
  cases[NCASES - 1].c_op = parse_op;
  for (int k = 0; k < NCASES; k++) {
    cases[k].best = 1e18;
    if (cases[k].script) cases[k].path = write_script(dir, cases[k].script_name, cases[k].script);
  }

  for (int rep = 0; rep < REPS; rep++) {
    for (int k = 0; k < NCASES; k++) {
      bench_case_t *c = &cases[k];
      double ns;
      if (c->group == 0) {
        ns = bare_pcall(n);
      } else {
        stage_t st = {.op = c->script ? lua_op : c->c_op, .arg = c->path, .dir = dir};
        stage_open(&st);
        ns = c->batched ? batched(&st, n) : per_record(&st, n);
        c->emitted = st.emitted;
        stage_close(&st);
      }
      if (ns < c->best) c->best = ns;
    }
  }
  uint64_t views = cases[NCASES - 1].emitted;
  for (int k = 0; k < NCASES; k++) {
    const bench_case_t *c = &cases[k];
    uint64_t want = c->group == 1 ? n : views;
    if (c->group != 0 && c->emitted != want) {
      fprintf(stderr, "bench_lua: '%s' emitted %llu records, expected %llu\n", c->label,
              (unsigned long long)c->emitted, (unsigned long long)want);
      return 1;
    }
  }
  printf("Lua operators, %llu records of ~150 bytes of click JSON, CPU ns per record (best of %d)\n\n",
         (unsigned long long)n, REPS);
  printf("| operator | ns/record | vs bare lua_pcall |\n|---|---:|---:|\n");
  for (int k = 0; k < NCASES; k++) {
    const bench_case_t *c = &cases[k];
    printf("| %s | %.1f | %.2fx |\n", c->label, c->best, c->best / cases[0].best);
  }
  printf("\n%llu of %llu records pass the filter; batches of %d records\n",
         (unsigned long long)views, (unsigned long long)n, BATCH);
  for (int k = 0; k < NCASES; k++)
    if (cases[k].path) {
      unlink(cases[k].path);
      free((void *)cases[k].path);
    }
  rmdir(dir);
  sl_registry_free(reg);
  for (int i = 0; i < DISTINCT; i++) free(g_values[i]);
  return 0;
}
