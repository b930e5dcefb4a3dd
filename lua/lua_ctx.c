/*
 * lua_ctx.c - the ctx table a script's callbacks receive (one per task):
 * emit, emit_to, emit_values, log, counter, now, config, node, task, parallelism (and the
 * state functions of lua_keyed.c, the timer functions of lua_time.c).
 *
 * emit builds an sl_record_t on the C stack pointing into Lua strings that
 * stay referenced (arguments, the headers table) until sl_emit_to returns;
 * the host copies them. Nothing is allocated per record unless a record has
 * more headers than the stack array holds (then a scratch array that grows).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <stdio.h>

#include "lua_host.h"

enum { STACK_HEADERS = 16 };

static const char *opt_string(lua_State *L, int idx, const char *what, size_t *len) {
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) return lua_tolstring(L, idx, len);
  if (t == LUA_TTABLE)
    luaL_error(L, "%s is a table: encode it first, e.g. sluice.json.encode(t)", what);
  luaL_error(L, "%s must be a string, got %s", what, luaL_typename(L, idx));
  return NULL;
}

/* Fills headers from the table at idx; returns the count. */
static uint32_t read_headers(lua_State *L, sl_lua_host_t *h, int idx, sl_header_t *stack,
                             sl_header_t **out) {
  luaL_checktype(L, idx, LUA_TTABLE);
  sl_header_t *hs = stack;
  size_t cap = STACK_HEADERS, n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "ctx:emit: headers must map strings to strings");
    if (n == cap) { /* rare: more headers than the stack array */
      if (h->hdr_cap < 2 * cap) {
        sl_header_t *p = realloc(h->hdr_scratch, 2 * cap * sizeof(*p));
        if (!p) luaL_error(L, "ctx:emit: out of memory for headers");
        h->hdr_scratch = p;
        h->hdr_cap = 2 * cap;
      }
      if (hs == stack) memcpy(h->hdr_scratch, stack, n * sizeof(*hs));
      hs = h->hdr_scratch;
      cap = h->hdr_cap;
    }
    sl_header_t *x = &hs[n++];
    x->name = lua_tolstring(L, -2, &x->name_len); /* strings held by the table */
    x->value = lua_tolstring(L, -1, &x->value_len);
    lua_pop(L, 1);
  }
  *out = hs;
  return (uint32_t)n;
}

static void emit_record(lua_State *L, sl_lua_host_t *h, int port, const sl_record_t *out,
                        const char *what);

/* emit(value [, key [, ts [, headers]]]) with value at stack index v. */
static int do_emit(lua_State *L, int port, int v) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  if (!h->in_call || !h->emit_ok)
    return luaL_error(L, "ctx:emit is only allowed in process, process_batch, on_timer, "
                         "on_watermark and on_end (called in %s)",
                      sl_lua_callback_name(h));
  const sl_record_t *cur = h->cur;
  sl_record_t out = {.ts = cur ? cur->ts : 0, .offset = cur ? cur->offset : SL_OFFSET_NONE};
  /* The common case, emit(value), in two API calls. */
  int top = lua_gettop(L);
  out.value = lua_tolstring(L, v, &out.value_len); /* NULL unless a string or number */
  if (!out.value) opt_string(L, v, "ctx:emit: value", &out.value_len); /* raises */
  if (top <= v) {
    out.key = cur ? cur->key : NULL;
    out.key_len = cur ? cur->key_len : 0;
    emit_record(L, h, port, &out, "ctx:emit");
    return 0;
  }
  if (lua_isnoneornil(L, v + 1)) {
    out.key = cur ? cur->key : NULL;
    out.key_len = cur ? cur->key_len : 0;
  } else {
    out.key = opt_string(L, v + 1, "ctx:emit: key", &out.key_len);
  }
  if (!lua_isnoneornil(L, v + 2)) {
    int ok;
    out.ts = lua_tointegerx(L, v + 2, &ok);
    if (!ok) return luaL_error(L, "ctx:emit: ts must be an integer (ms), got %s", luaL_typename(L, v + 2));
  }
  sl_header_t stack[STACK_HEADERS];
  sl_header_t *hs = NULL;
  if (!lua_isnoneornil(L, v + 3)) {
    out.header_count = read_headers(L, h, v + 3, stack, &hs);
    out.headers = hs;
  }
  emit_record(L, h, port, &out, "ctx:emit");
  return 0;
}

/* Hands out to the host, within the per-call cap; raises on error. */
static void emit_record(lua_State *L, sl_lua_host_t *h, int port, const sl_record_t *out,
                        const char *what) {
  /* The host queues what one call emits: it counts with the state's memory
   * against lua_memory_mb, so a flat-map bomb is bounded as a whole. */
  if (h->emit_cap) {
    h->emitted += out->key_len + out->value_len + sizeof(sl_record_t);
    for (uint32_t i = 0; i < out->header_count; i++)
      h->emitted += out->headers[i].name_len + out->headers[i].value_len + sizeof(sl_header_t);
    if (h->emitted > h->emit_cap) {
      char msg[160]; /* luaL_error has no %f */
      snprintf(msg, sizeof(msg),
               "%s: more than %.1f MB emitted in one call (a quarter of lua_memory_mb)", what,
               (double)h->emit_cap / (1 << 20));
      luaL_error(L, "%s", msg);
    }
  }
  int rc = sl_emit_to(h->ctx, port, out);
  if (rc < 0) luaL_error(L, "%s: %s", what, sl_strerror(h->ctx, rc));
}

static int ctx_emit(lua_State *L) { return do_emit(L, SL_PORT_DEFAULT, 2); }

/*
 * ctx:emit_values(values): the batch API's map and filter. In process_batch,
 * one output per input record: values[i] (a string or number) for recs[i],
 * with that record's key, ts and offset; a nil or false values[i] drops
 * recs[i]. One C loop for the whole batch, with recs:values() the way to
 * run a batch without a call per record.
 */
static int ctx_emit_values(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  if (!h->in_call || h->phase != SL_LUA_PH_BATCH || !h->batch)
    return luaL_error(L, "ctx:emit_values is only allowed in process_batch (called in %s)",
                      sl_lua_callback_name(h));
  luaL_checktype(L, 2, LUA_TTABLE);
  /* The values stay on the stack in runs of POP_EVERY, popped together:
   * one API call per record fewer (the table keeps them alive anyway). */
  enum { POP_EVERY = 32 };
  luaL_checkstack(L, POP_EVERY + LUA_MINSTACK, "ctx:emit_values"); /* + room to raise */
  int base = lua_gettop(L), held = 0;
  for (size_t i = 0; i < h->batch_n; i++) {
    if (held++ == POP_EVERY) {
      lua_settop(L, base);
      held = 1;
    }
    int t = lua_rawgeti(L, 2, (lua_Integer)i + 1);
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) continue;
    const sl_record_t *in = &h->batch[i];
    sl_record_t out = {.key = in->key, .key_len = in->key_len, .ts = in->ts, .offset = in->offset};
    out.value = lua_tolstring(L, -1, &out.value_len); /* NULL unless a string or number */
    if (!out.value)
      return luaL_error(L, "ctx:emit_values: values[%d] must be a string, nil or false, got %s",
                        (int)i + 1, luaL_typename(L, -1));
    emit_record(L, h, SL_PORT_DEFAULT, &out, "ctx:emit_values");
  }
  return 0;
}

static int ctx_emit_to(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  if (strlen(name) != len) return luaL_error(L, "ctx:emit_to: a port name cannot contain '\\0'");
  int port = sl_port(h->ctx, name);
  if (port < 0)
    return luaL_error(L, "ctx:emit_to: unknown output port '%s' (a Lua operator has 'errors')", name);
  return do_emit(L, port, 3);
}

static int ctx_log(lua_State *L) {
  static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
  sl_lua_host_t *h = sl_lua_host_of(L);
  int level = luaL_checkoption(L, 2, NULL, levels);
  const char *msg = luaL_tolstring(L, 3, NULL);
  sl_log(h->ctx, (sl_log_level_t)level, "%s", msg);
  return 0;
}

static int counter_add(lua_State *L) {
  sl_counter_t **c = lua_touserdata(L, 1);
  if (!c || !luaL_testudata(L, 1, "sluice.counter")) return luaL_error(L, "counter:add: not a counter");
  lua_Integer n = luaL_optinteger(L, 2, 1);
  if (n < 0) return luaL_error(L, "counter:add: n must be >= 0");
  sl_counter_add(*c, (uint64_t)n);
  return 0;
}

/* counter(name): one userdata per name, cached, so calling it per record
 * costs a table lookup. The cache holds at most COUNTER_CACHE_MAX names:
 * it lives for the state's life, and a script making up names per record
 * would otherwise fill lua_memory_mb with it and leave every later call
 * failing. (The host records at most SL_MAX_COUNTERS names anyway; later
 * names share an uncounted sink, said once in the log.) */
#define COUNTER_CACHE_MAX 256
static int ctx_counter(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  const char *name = luaL_checkstring(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_counters);
  if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  sl_counter_t **c = lua_newuserdatauv(L, sizeof(*c), 0);
  *c = sl_counter(h->ctx, name);
  luaL_setmetatable(L, "sluice.counter");
  if (h->counters_cached < COUNTER_CACHE_MAX) {
    h->counters_cached++;
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
  }
  return 1;
}

static int ctx_now(lua_State *L) {
  lua_pushinteger(L, sl_now_ms(sl_lua_host_of(L)->ctx));
  return 1;
}

/* ctx:budget(): how many records on_end should emit per call (sl_budget). */
static int ctx_budget(lua_State *L) {
  lua_pushinteger(L, sl_budget(sl_lua_host_of(L)->ctx));
  return 1;
}

/* ctx.config: the node's config, typed; the declared keys are the limit
 * keys, which belong to the host. */
static void push_config(lua_State *L, sl_ctx_t *ctx) {
  lua_newtable(L);
  for (size_t i = 0; i < sl_config_count(ctx); i++) {
    sl_config_entry_t e;
    if (sl_config_at(ctx, i, &e) != 0 || e.declared) continue;
    switch (e.type) {
    case SL_CONFIG_INT:
    case SL_CONFIG_DURATION: lua_pushinteger(L, e.i); break;
    case SL_CONFIG_DOUBLE: lua_pushnumber(L, e.d); break;
    case SL_CONFIG_BOOL: lua_pushboolean(L, e.i != 0); break;
    default: lua_pushstring(L, e.text ? e.text : ""); break;
    }
    lua_setfield(L, -2, e.key);
  }
}

void sl_lua_ctx_push(sl_lua_host_t *h) {
  lua_State *L = h->L;
  luaL_newmetatable(L, "sluice.counter");
  lua_newtable(L);
  lua_pushcfunction(L, counter_add);
  lua_setfield(L, -2, "add");
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  lua_newtable(L);
  h->ref_counters = luaL_ref(L, LUA_REGISTRYINDEX);
  h->counters_cached = 0;

  static const luaL_Reg fns[] = {{"emit", ctx_emit}, {"emit_to", ctx_emit_to}, {"emit_values", ctx_emit_values}, {"log", ctx_log},
                                 {"counter", ctx_counter}, {"now", ctx_now},
                                 {"budget", ctx_budget},   {NULL, NULL}};
  luaL_newlib(L, fns);
  sl_lua_keyed_install(h, -1); /* value_state, list_state, map_state, op_state_*, checkpoint_restored */
  sl_lua_time_install(h, -1);  /* timer_set, timer_delete, watermark, current_key */
  push_config(L, h->ctx);
  lua_setfield(L, -2, "config");
  lua_pushstring(L, sl_node_name(h->ctx));
  lua_setfield(L, -2, "node");
  lua_pushinteger(L, sl_task_index(h->ctx));
  lua_setfield(L, -2, "task");
  lua_pushinteger(L, sl_parallelism(h->ctx));
  lua_setfield(L, -2, "parallelism");
}
