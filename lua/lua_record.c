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

/* The field names, as the interned strings the script's constants are:
 * short strings are unique per state, so a field is found by comparing the
 * key's address (the names are anchored in the registry, ref_names). */
enum { F_VALUE, F_KEY, F_TS, F_OFFSET, F_HEADERS, F_VALUES, F_KEYS, F_TIMESTAMPS, F_COUNT };
static const char *const field_names[F_COUNT] = {"value",   "key",    "ts",   "offset",
                                                 "headers", "values", "keys", "timestamps"};

/* Which of the names the key at idx is, or F_COUNT. */
static int field_of(lua_State *L, const sl_lua_host_t *h, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) return F_COUNT; /* (no conversion of numbers) */
  const char *k = lua_tostring(L, idx);
  for (int f = 0; f < F_COUNT; f++)
    if (k == h->field_names[f]) return f;
  return F_COUNT;
}

static int rec_index(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  const sl_record_t *r = rec_get(L, h, 1);
  switch (field_of(L, h, 2)) {
  case F_VALUE: lua_pushlstring(L, r->value ? r->value : "", r->value_len); return 1;
  case F_KEY: lua_pushlstring(L, r->key ? r->key : "", r->key_len); return 1;
  case F_TS: lua_pushinteger(L, r->ts); return 1;
  case F_OFFSET:
    if (r->offset == SL_OFFSET_NONE) return 0;
    lua_pushinteger(L, r->offset);
    return 1;
  case F_HEADERS: {
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
  default: return 0;
  }
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

/* The call's records, or raises: recs is valid during its call only. */
static const sl_record_t *recs_get(lua_State *L, sl_lua_host_t *h) {
  if (!h->in_call || !h->batch) luaL_error(L, stale_msg);
  return h->batch;
}

/* recs:values(), recs:keys(), recs:timestamps(): one column of the call's
 * records as a new array, built in one C loop (the batch API's fast path:
 * no metamethod call per record). */
static int recs_column(lua_State *L, int field) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  if (lua_touserdata(L, 1) != h->recs_ud)
    return luaL_error(L, "recs:%s(): call it on the recs of process_batch", field_names[field]);
  const sl_record_t *r = recs_get(L, h);
  size_t n = h->batch_n;
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    switch (field) {
    case F_VALUES: lua_pushlstring(L, r[i].value ? r[i].value : "", r[i].value_len); break;
    case F_KEYS: lua_pushlstring(L, r[i].key ? r[i].key : "", r[i].key_len); break;
    default: lua_pushinteger(L, r[i].ts); break;
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}
static int recs_values(lua_State *L) { return recs_column(L, F_VALUES); }
static int recs_keys(lua_State *L) { return recs_column(L, F_KEYS); }
static int recs_timestamps(lua_State *L) { return recs_column(L, F_TIMESTAMPS); }

/* recs[i], 1-based; nil outside 1..#recs; the column methods by name. */
static int recs_index(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  recs_get(L, h);
  int ok;
  lua_Integer i = lua_tointegerx(L, 2, &ok);
  if (!ok) {
    switch (field_of(L, h, 2)) {
    case F_VALUES: lua_pushcfunction(L, recs_values); return 1;
    case F_KEYS: lua_pushcfunction(L, recs_keys); return 1;
    case F_TIMESTAMPS: lua_pushcfunction(L, recs_timestamps); return 1;
    default: return 0;
    }
  }
  if (i < 1 || (size_t)i > h->batch_n) return 0;
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
  lua_createtable(L, F_COUNT, 0);
  for (int f = 0; f < F_COUNT; f++) {
    h->field_names[f] = lua_pushstring(L, field_names[f]);
    lua_rawseti(L, -2, f + 1);
  }
  h->ref_names = luaL_ref(L, LUA_REGISTRYINDEX);

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

  h->recs_ud = lua_newuserdatauv(L, 1, 0); /* recs */
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
