/*
 * lua_record.c - rec values and the recs userdata.
 *
 * A rec is a light userdata whose "pointer" encodes (call generation, index
 * in the call's records): a value, not an object, so handing one to a
 * script allocates nothing, and a rec kept past its call can never alias a
 * later record: its generation is stale forever and any use raises. Fields
 * are read on access; rec.headers builds its table then (cached for the
 * last rec asked).
 *
 * All light userdata of a state share one metatable, so sluice.json.null
 * (cjson's NULL light userdata) has it too: the handlers treat NULL as null.
 */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_host.h"

#define IDX_BITS 20 /* records per call: batch_size is at most 65536 */
#define IDX_MASK ((UINT64_C(1) << IDX_BITS) - 1)
#define GEN_MASK ((UINT64_C(1) << (64 - IDX_BITS)) - 1)

static const char stale_msg[] = "record used after the call that received it";

static void *rec_value(const sl_lua_host_t *h, size_t i) {
  return (void *)(uintptr_t)(((h->gen & GEN_MASK) << IDX_BITS) | (uint64_t)i);
}

/* The record a rec value designates in the current call, or raises. */
static const sl_record_t *rec_get(lua_State *L, sl_lua_host_t *h, int idx) {
  uint64_t v = (uint64_t)(uintptr_t)lua_touserdata(L, idx);
  if (v == 0) luaL_error(L, "attempt to index sluice.json.null");
  size_t i = (size_t)(v & IDX_MASK);
  if (!h->in_call || (v >> IDX_BITS) != (h->gen & GEN_MASK) || i >= h->batch_n)
    luaL_error(L, stale_msg);
  return &h->batch[i];
}

static void push_headers(lua_State *L, const sl_record_t *r) {
  lua_createtable(L, 0, (int)r->header_count);
  for (uint32_t i = 0; i < r->header_count; i++) {
    lua_pushlstring(L, r->headers[i].name, r->headers[i].name_len);
    lua_pushlstring(L, r->headers[i].value, r->headers[i].value_len);
    lua_rawset(L, -3);
  }
}

static int rec_index(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  const sl_record_t *r = rec_get(L, h, 1);
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  size_t n;
  const char *k = lua_tolstring(L, 2, &n);
  switch (k[0]) {
  case 'v':
    if (n == 5 && memcmp(k, "value", 5) == 0) {
      lua_pushlstring(L, r->value ? r->value : "", r->value_len);
      return 1;
    }
    break;
  case 'k':
    if (n == 3 && memcmp(k, "key", 3) == 0) {
      lua_pushlstring(L, r->key ? r->key : "", r->key_len);
      return 1;
    }
    break;
  case 't':
    if (n == 2 && k[1] == 's') {
      lua_pushinteger(L, r->ts);
      return 1;
    }
    break;
  case 'o':
    if (n == 6 && memcmp(k, "offset", 6) == 0) {
      if (r->offset == SL_OFFSET_NONE) return 0;
      lua_pushinteger(L, r->offset);
      return 1;
    }
    break;
  case 'h':
    if (n == 7 && memcmp(k, "headers", 7) == 0) {
      void *id = lua_touserdata(L, 1);
      if (h->hdr_for == id) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_hdr);
        return 1;
      }
      push_headers(L, r);
      lua_pushvalue(L, -1);
      lua_rawseti(L, LUA_REGISTRYINDEX, h->ref_hdr);
      h->hdr_for = id;
      return 1;
    }
    break;
  }
  return 0;
}

static int rec_newindex(lua_State *L) {
  if (!lua_touserdata(L, 1)) return luaL_error(L, "attempt to index sluice.json.null");
  return luaL_error(L, "rec is read-only");
}

static int rec_tostring(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  uint64_t v = (uint64_t)(uintptr_t)lua_touserdata(L, 1);
  if (v == 0) lua_pushliteral(L, "null");
  else if (!h->in_call || (v >> IDX_BITS) != (h->gen & GEN_MASK)) lua_pushliteral(L, "rec (expired)");
  else lua_pushfstring(L, "rec #%d of the call", (int)(v & IDX_MASK) + 1);
  return 1;
}

/* recs[i], 1-based; nil outside 1..#recs. */
static int recs_index(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  if (!h->in_call || !h->batch) return luaL_error(L, stale_msg);
  int ok;
  lua_Integer i = lua_tointegerx(L, 2, &ok);
  if (!ok || i < 1 || (size_t)i > h->batch_n) return 0;
  h->cur = &h->batch[i - 1]; /* emit's defaults: the record last fetched */
  lua_pushlightuserdata(L, rec_value(h, (size_t)i - 1));
  return 1;
}

static int recs_len(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  if (!h->in_call || !h->batch) return luaL_error(L, stale_msg);
  lua_pushinteger(L, (lua_Integer)h->batch_n);
  return 1;
}

/* The light userdata metatable, the headers cache slot and the recs
 * userdata (registry ref_recs). Runs in protected mode during open. */
void sl_lua_record_init(sl_lua_host_t *h) {
  lua_State *L = h->L;
  lua_pushlightuserdata(L, NULL);
  lua_newtable(L);
  lua_pushcfunction(L, rec_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, rec_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, rec_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);

  lua_pushboolean(L, 0);
  h->ref_hdr = luaL_ref(L, LUA_REGISTRYINDEX);

  lua_newuserdatauv(L, 1, 0); /* recs */
  lua_newtable(L);
  lua_pushcfunction(L, recs_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, recs_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, rec_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "recs");
  lua_setfield(L, -2, "__name");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  h->ref_recs = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The rec of record i of the call about to start. */
void sl_lua_record_push(sl_lua_host_t *h, size_t i) {
  lua_pushlightuserdata(h->L, rec_value(h, i));
}
