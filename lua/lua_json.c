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

void sl_lua_json_push(lua_State *L) {
  lua_pushcfunction(L, luaopen_cjson);
  lua_call(L, 0, 1);
  int cj = lua_gettop(L);
  lua_createtable(L, 0, 3);
  lua_getfield(L, cj, "decode");
  lua_pushcclosure(L, json_decode, 1);
  lua_setfield(L, -2, "decode");
  lua_getfield(L, cj, "encode");
  lua_setfield(L, -2, "encode");
  lua_getfield(L, cj, "null");
  lua_setfield(L, -2, "null");
  lua_remove(L, cj);
}
