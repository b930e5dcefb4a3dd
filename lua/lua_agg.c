/*
 * lua_agg.c - user-defined aggregate functions written in Lua (SDK 1.4):
 * the Lua host's aggregate "script" with scheme "lua", so that a window's
 * `functions: "median=lua:median.lua"` runs median.lua's
 *
 *   create() -> acc        add(acc, arg1, ...) -> acc
 *   merge(acc, other) -> acc        result(acc) -> a JSON-encodable value
 *
 * One sandboxed lua_State per use in a task, under the same limits as a Lua
 * operator (lua_state.c; the defaults of lua_plugin.c's limit keys). The
 * accumulator is a variable one (acc_size 0): between calls it is bytes
 * (lua_acc.c), decoded for each call and encoded from what the function
 * returns, so keyed state and checkpoints keep it like any other state.
 *
 * Each call is one protected call of call_fn, which decodes, calls the
 * script and encodes inside it: the instruction budget, the memory cap and
 * the wall-clock watchdog cover the codec too, and an error names
 * script:line with a traceback.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_host.h"

enum { OP_CREATE, OP_ADD, OP_MERGE, OP_RESULT, OP_COUNT };
static const char *const k_fn[OP_COUNT] = {"create", "add", "merge", "result"};

typedef struct lua_agg {
  sl_lua_host_t *h;
  int ref[OP_COUNT];
  /* the call in progress, read by call_fn */
  int op;
  const void *acc, *src;
  size_t acc_len, src_len;
  const sl_agg_arg_t *args;
  size_t nargs;
  sl_lua_buf_t out; /* the accumulator (or result JSON) handed back */
} lua_agg_t;

static void push_arg(lua_State *L, const sl_agg_arg_t *a) {
  switch (a->type) {
  case SL_JSON_NUMBER: {
    char num[64];
    /* as written: 3 stays an integer, 3.0 a float */
    if (a->len < sizeof num) {
      memcpy(num, a->text, a->len);
      num[a->len] = '\0';
      if (lua_stringtonumber(L, num) == a->len + 1) return;
    }
    lua_pushnumber(L, (lua_Number)a->num);
    return;
  }
  case SL_JSON_BOOL: lua_pushboolean(L, a->len == 4 && memcmp(a->text, "true", 4) == 0); return;
  default: lua_pushlstring(L, a->text ? a->text : "", a->len); return;
  }
}

/* The JSON text of the value at the top (a result). Numbers are printed
 * here (integers exactly, floats in the fewest digits that read back the
 * same); strings, booleans and tables by sluice.json.encode. */
static void result_json(lua_State *L, lua_agg_t *a) {
  char num[40];
  const char *s = NULL;
  size_t n = 0;
  if (lua_isnil(L, -1)) {
    s = "null";
    n = 4;
  } else if (lua_isinteger(L, -1)) {
    n = (size_t)snprintf(num, sizeof num, "%" PRId64, (int64_t)lua_tointeger(L, -1));
    s = num;
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    double d = (double)lua_tonumber(L, -1);
    if (!isfinite(d)) luaL_error(L, "result() returned %f, which JSON cannot hold", d);
    for (int prec = 15; prec <= 17; prec++) {
      n = (size_t)snprintf(num, sizeof num, "%.*g", prec, d);
      if (strtod(num, NULL) == d) break;
    }
    s = num;
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->h->ref_jenc);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    s = lua_tolstring(L, -1, &n);
  }
  a->out.len = 0;
  if (a->out.cap < n + 1) {
    unsigned char *p = realloc(a->out.p, n + 1);
    if (!p) luaL_error(L, "out of memory");
    a->out.p = p;
    a->out.cap = n + 1;
  }
  memcpy(a->out.p, s, n);
  a->out.len = n;
}

static int call_fn(lua_State *L) {
  lua_agg_t *a = lua_touserdata(L, 1);
  luaL_checkstack(L, (int)a->nargs + 4, "aggregate arguments");
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->ref[a->op]);
  int n = 0;
  if (a->op != OP_CREATE) {
    sl_lua_acc_decode(L, a->acc, a->acc_len);
    n++;
  }
  if (a->op == OP_MERGE) {
    sl_lua_acc_decode(L, a->src, a->src_len);
    n++;
  }
  for (size_t i = 0; a->op == OP_ADD && i < a->nargs; i++, n++) push_arg(L, &a->args[i]);
  lua_call(L, n, 1);
  if (a->op == OP_RESULT) {
    result_json(L, a);
    return 0;
  }
  if (lua_isnil(L, -1))
    luaL_error(L, "%s() returned nil: it must return the accumulator", k_fn[a->op]);
  sl_lua_acc_encode(L, -1, &a->out, a->h->lim.memory);
  return 0;
}

/* One call of the script's function `op`; 0, or -1 with h->err set. */
static int run(sl_ctx_t *ctx, lua_agg_t *a, int op) {
  sl_lua_host_t *h = a->h;
  h->ctx = ctx;
  a->op = op;
  lua_pushcfunction(h->L, call_fn);
  lua_pushlightuserdata(h->L, a);
  return sl_lua_call(h, 1);
}

/* create, merge, result: a failure is the aggregate's bug, not the record's. */
static int failed(sl_ctx_t *ctx, lua_agg_t *a, int op) {
  sl_fail(ctx, "aggregate function %s, %s(): %s", a->h->chunkname + 1, k_fn[op], a->h->err);
  return SL_EPLUGIN;
}

static int agg_create(sl_ctx_t *ctx, void *inst, sl_acc_t *acc) {
  lua_agg_t *a = inst;
  if (run(ctx, a, OP_CREATE) != 0) return failed(ctx, a, OP_CREATE);
  acc->ptr = a->out.p;
  acc->len = a->out.len;
  return 0;
}

static int agg_add(sl_ctx_t *ctx, void *inst, sl_acc_t *acc, const sl_agg_arg_t *args,
                   size_t nargs) {
  lua_agg_t *a = inst;
  a->acc = acc->ptr;
  a->acc_len = acc->len;
  a->args = args;
  a->nargs = nargs;
  if (run(ctx, a, OP_ADD) != 0) {
    sl_set_error(ctx, "aggregate function %s, add(): %s", a->h->chunkname + 1, a->h->err);
    return SL_EPLUGIN;
  }
  acc->ptr = a->out.p;
  acc->len = a->out.len;
  return 1;
}

static int agg_merge(sl_ctx_t *ctx, void *inst, sl_acc_t *dst, const void *src, size_t src_len) {
  lua_agg_t *a = inst;
  a->acc = dst->ptr;
  a->acc_len = dst->len;
  a->src = src;
  a->src_len = src_len;
  if (run(ctx, a, OP_MERGE) != 0) return failed(ctx, a, OP_MERGE);
  dst->ptr = a->out.p;
  dst->len = a->out.len;
  return 0;
}

static long agg_result(sl_ctx_t *ctx, void *inst, const void *acc, size_t len, char *json,
                       size_t cap) {
  lua_agg_t *a = inst;
  a->acc = acc;
  a->acc_len = len;
  if (run(ctx, a, OP_RESULT) != 0) return failed(ctx, a, OP_RESULT);
  if (a->out.len < cap) memcpy(json, a->out.p, a->out.len);
  return (long)a->out.len;
}

/* Everything of open that runs Lua, in one protected call. */
static int setup(lua_State *L) {
  lua_agg_t *a = lua_touserdata(L, 1);
  sl_lua_host_t *h = a->h;
  sl_lua_sandbox_init(h);
  sl_lua_load_script(h);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_env);
  for (int op = 0; op < OP_COUNT; op++) {
    if (lua_getfield(L, -1, k_fn[op]) != LUA_TFUNCTION)
      return luaL_error(L,
                        "an aggregate script defines create(), add(acc, ...), merge(acc, other) "
                        "and result(acc); %s is missing",
                        k_fn[op]);
    a->ref[op] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 1);
  return 0;
}

static void agg_close(void *inst) {
  lua_agg_t *a = inst;
  if (!a) return;
  if (a->h) sl_lua_host_free(a->h);
  free(a->out.p);
  free(a);
}

static int agg_open(sl_ctx_t *ctx, const char *arg, void **inst, char *errbuf, size_t errlen) {
  lua_agg_t *a = calloc(1, sizeof *a);
  sl_lua_host_t *h = a ? calloc(1, sizeof *h) : NULL;
  if (!h) {
    free(a);
    snprintf(errbuf, errlen, "out of memory");
    return SL_ENOMEM;
  }
  a->h = h;
  for (int op = 0; op < OP_COUNT; op++) a->ref[op] = LUA_NOREF;
  if (sl_lua_host_init(h, ctx, arg, sl_lua_default_limits()) != 0) {
    snprintf(errbuf, errlen, "cannot create a Lua state");
    agg_close(a);
    return SL_ENOMEM;
  }
  lua_pushcfunction(h->L, setup);
  lua_pushlightuserdata(h->L, a);
  h->phase = SL_LUA_PH_LOAD;
  int rc = sl_lua_call(h, 1);
  h->phase = SL_LUA_PH_NONE;
  if (rc != 0) {
    snprintf(errbuf, errlen, "%s", h->err);
    agg_close(a);
    return SL_EPLUGIN;
  }
  *inst = a;
  return 0;
}

const sl_aggregate_t sl_lua_aggregate = {
    SL_AGGREGATE_INIT,
    .name = "script",
    .description = "an aggregate function written in Lua: create, add, merge, result",
    .scheme = "lua",
    .min_args = 0,
    .max_args = SL_AGG_ARGS_MAX,
    .acc_size = 0,
    .open = agg_open,
    .close = agg_close,
    .create = agg_create,
    .add = agg_add,
    .merge = agg_merge,
    .result = agg_result,
};
