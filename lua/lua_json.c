/*
 * lua_json.c - sluice.json: decode, encode and null from lua-cjson (Debian's
 * lua-cjson, in C), opened in each task's state.
 *
 * Only those three are exposed: the cjson table's configuration functions
 * and cjson.new stay out of reach (nothing in them escapes the sandbox, but
 * a script has no use for them and fewer entry points are easier to audit).
 *
 * cjson 2.1 decodes every number as a float, so {"n":1} gives 1.0 in Lua 5.4
 * and "p" .. n gives "p1.0". decode therefore turns integral floats within
 * 2^53 back into integers, walking the result once.
 */
#include <lauxlib.h>
#include <string.h>
#include <lua.h>

#include <lua-cjson.h>

#include "lua_host.h"

#define EXACT_INT 9007199254740992.0 /* 2^53 */

static void integerize(lua_State *L, int idx, int depth);

/* Replaces the value on top of the stack by an integer when it is one. */
static void fix_top(lua_State *L, int depth) {
  if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
    lua_Number d = lua_tonumber(L, -1);
    if (d >= -EXACT_INT && d <= EXACT_INT && d == (lua_Number)(lua_Integer)d) {
      lua_pop(L, 1);
      lua_pushinteger(L, (lua_Integer)d);
    }
  } else if (lua_type(L, -1) == LUA_TTABLE) {
    integerize(L, lua_gettop(L), depth + 1);
  }
}

static void integerize(lua_State *L, int idx, int depth) {
  if (depth > 1100) return; /* cjson stops at 1000 levels already */
  luaL_checkstack(L, 4, "json nesting");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    fix_top(L, depth);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, idx); /* replacing an existing key's value is allowed during next */
  }
}

static int json_decode(lua_State *L) {
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, 1);
  fix_top(L, 0);
  return 1;
}

/*
 * sluice.json.get(s, field): one top-level field of a JSON object, found in
 * place by the host's scanner (sl_json_get) without decoding the rest. A
 * filter that needs one or two fields skips building a table per record.
 * Plain strings and numbers are made directly; a string with escapes, an
 * object or an array is decoded (that value only) with decode. Returns nil
 * when the field is absent, sluice.json.null for null; raises when s is not
 * a JSON object.
 */
static int json_get(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *field = luaL_checkstring(L, 2);
  sl_lua_host_t *h = sl_lua_host_of(L);
  sl_json_value_t v;
  int rc = sl_json_get(h->ctx, s, len, field, &v);
  if (rc == SL_ENOTFOUND) return 0;
  if (rc != 0) return luaL_error(L, "sluice.json.get: not a JSON object");
  switch (v.type) {
  case SL_JSON_STRING:
    if (!memchr(v.ptr, '\\', v.len)) {
      lua_pushlstring(L, v.ptr, v.len);
      return 1;
    }
    /* escapes: decode the quoted value (quotes included) */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushlstring(L, v.ptr - 1, v.len + 2);
    lua_call(L, 1, 1);
    return 1;
  case SL_JSON_NUMBER: {
    char num[64];
    if (v.len >= sizeof(num)) return luaL_error(L, "sluice.json.get: number too long");
    memcpy(num, v.ptr, v.len);
    num[v.len] = '\0';
    if (lua_stringtonumber(L, num) == 0) return luaL_error(L, "sluice.json.get: bad number");
    fix_top(L, 0);
    return 1;
  }
  case SL_JSON_BOOL:
    lua_pushboolean(L, v.ptr[0] == 't');
    return 1;
  case SL_JSON_NULL:
    lua_pushvalue(L, lua_upvalueindex(2));
    return 1;
  default: /* object or array: decode that part only */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushlstring(L, v.ptr, v.len);
    lua_call(L, 1, 1);
    fix_top(L, 0);
    return 1;
  }
}

void sl_lua_json_push(lua_State *L) {
  lua_pushcfunction(L, luaopen_cjson);
  lua_call(L, 0, 1);
  int cj = lua_gettop(L);
  lua_createtable(L, 0, 3);
  lua_getfield(L, cj, "decode");
  lua_pushcclosure(L, json_decode, 1);
  /* Keyed state stores tables as JSON (lua_keyed.c) with these, held in the
   * registry: a script that replaces sluice.json.encode cannot change them. */
  sl_lua_host_t *h = sl_lua_host_of(L);
  lua_pushvalue(L, -1);
  h->ref_jdec = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, -2, "decode");
  lua_getfield(L, cj, "encode");
  lua_pushvalue(L, -1);
  h->ref_jenc = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, -2, "encode");
  lua_getfield(L, cj, "null");
  lua_setfield(L, -2, "null");
  lua_getfield(L, cj, "decode");
  lua_getfield(L, cj, "null");
  lua_pushcclosure(L, json_get, 2);
  lua_setfield(L, -2, "get");
  lua_remove(L, cj);
}
