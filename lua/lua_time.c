/*
 * lua_time.c - event time and timers for Lua operators (SDK 1.3): the ctx
 * methods timer_set, timer_delete, watermark and current_key. The script's
 * on_timer(ts, domain, ctx) and on_watermark(wm, ctx) are called by
 * lua_plugin.c.
 *
 * Timers belong to a key, like keyed state: they need `key_by` on the node
 * and a current key, so they are set and deleted in process (the record's
 * key) and in on_timer (the timer's key) only. The host runs a keyed Lua
 * node per record (its descriptor has on_timer), so process always has one
 * key per call there.
 *
 * Domains are the strings "event" (the default) and "processing";
 * timestamps are integer milliseconds since the epoch. The watermark is an
 * integer, math.mininteger before the first one (SL_TS_MIN) and
 * math.maxinteger once every input has ended (SL_TS_MAX): lua_Integer is 64
 * bits, so both map exactly.
 */
#include <string.h>

#include <lauxlib.h>

#include "lua_host.h"

const char *sl_lua_callback_name(const sl_lua_host_t *h) {
  if (h->time_cb == SL_LUA_TCB_TIMER) return "on_timer";
  if (h->time_cb == SL_LUA_TCB_WATERMARK) return "on_watermark";
  return sl_lua_phase_name(h->phase);
}

/* The optional domain argument at idx: nil / "event" / "processing". */
static sl_time_domain_t domain_arg(lua_State *L, int idx, const char *fn) {
  int t = lua_type(L, idx);
  if (t == LUA_TNIL || t == LUA_TNONE) return SL_TIME_EVENT;
  if (t == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    if (strcmp(s, "event") == 0) return SL_TIME_EVENT;
    if (strcmp(s, "processing") == 0) return SL_TIME_PROCESSING;
    luaL_error(L, "ctx:%s: domain must be \"event\" or \"processing\", got \"%s\"", fn, s);
  }
  luaL_error(L, "ctx:%s: domain must be \"event\" or \"processing\", got %s", fn,
             luaL_typename(L, idx));
  return SL_TIME_EVENT;
}

/* The ts argument at idx: an integer (a float with an integral value is
 * taken as that integer), else raise. */
static int64_t ts_arg(lua_State *L, int idx, const char *fn) {
  int ok = 0;
  lua_Integer ts = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &ok) : 0;
  if (!ok)
    luaL_error(L, "ctx:%s: ts must be an integer (ms since the epoch), got %s", fn,
               lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
  return (int64_t)ts;
}

/* timer_set(ts [, domain]) and timer_delete(ts [, domain]). */
static int timer_call(lua_State *L, int set) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  const char *fn = set ? "timer_set" : "timer_delete";
  if (!h->in_call || h->phase != SL_LUA_PH_PROCESS) {
    if (h->in_call && h->phase == SL_LUA_PH_BATCH)
      return luaL_error(L,
                        "ctx:%s: timers belong to a key: use them in process(rec, ctx) on a node "
                        "with key_by, not in process_batch",
                        fn);
    return luaL_error(L,
                      "ctx:%s is only allowed in process(rec, ctx) and on_timer(ts, domain, ctx), "
                      "where a key is current (called in %s)",
                      fn, sl_lua_callback_name(h));
  }
  int64_t ts = ts_arg(L, 2, fn);
  sl_time_domain_t domain = domain_arg(L, 3, fn);
  if (set && h->ref_on_timer == LUA_NOREF)
    return luaL_error(L, "ctx:timer_set: the script defines no on_timer(ts, domain, ctx) to call "
                         "when the timer is due");
  int rc = set ? sl_timer_set(h->ctx, domain, ts) : sl_timer_delete(h->ctx, domain, ts);
  if (rc == 0 || (!set && rc == SL_ENOTFOUND)) {
    if (set) return 0;
    lua_pushboolean(L, rc == 0);
    return 1;
  }
  /* In process and on_timer a key is current: SL_ESTATE means no key_by. */
  if (rc == SL_ESTATE)
    return luaL_error(L,
                      "ctx:%s: timers need the node to have key_by (a JSON field, or $key for the "
                      "record key)",
                      fn);
  return luaL_error(L, "ctx:%s: %s", fn, sl_strerror(h->ctx, rc));
}

static int ctx_timer_set(lua_State *L) { return timer_call(L, 1); }
static int ctx_timer_delete(lua_State *L) { return timer_call(L, 0); }

/* ctx:watermark(): the operator's input watermark, anywhere. */
static int ctx_watermark(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_watermark(sl_lua_host_of(L)->ctx));
  return 1;
}

/* ctx:current_key(): the record's key in process, the timer's in on_timer;
 * nil elsewhere. */
static int ctx_current_key(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  sl_bytes_t k;
  if (!h->in_call || h->phase != SL_LUA_PH_PROCESS || sl_current_key(h->ctx, &k) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, k.ptr ? (const char *)k.ptr : "", k.len);
  return 1;
}

void sl_lua_time_install(sl_lua_host_t *h, int ctx_idx) {
  lua_State *L = h->L;
  ctx_idx = lua_absindex(L, ctx_idx);
  lua_pushliteral(L, "event");
  h->ref_dom_event = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "processing");
  h->ref_dom_proc = luaL_ref(L, LUA_REGISTRYINDEX);
  static const luaL_Reg fns[] = {{"timer_set", ctx_timer_set},
                                 {"timer_delete", ctx_timer_delete},
                                 {"watermark", ctx_watermark},
                                 {"current_key", ctx_current_key},
                                 {NULL, NULL}};
  lua_pushvalue(L, ctx_idx);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
