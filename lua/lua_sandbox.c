/*
 * lua_sandbox.c - the environment a script runs in (see lua_api.md,
 * "Sandbox"), text-only load, require from two directories only, and the
 * loading of the script itself.
 *
 * The standard libraries are opened into the state's own globals table,
 * which no script ever sees: scripts get a fresh env table holding copies of
 * the whitelisted functions and library tables. Everything that could reach
 * the real globals or the registry (load without env, package, debug, the
 * string metatable) is replaced or hidden.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua_host.h"

static const char *const base_names[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
    "tostring", "type", "getmetatable", "rawequal", "rawget", "rawset", "rawlen", "_VERSION",
    NULL}; /* + xpcall and setmetatable, wrapped below */

/* Pushes a shallow copy of the table at idx without the keys in `drop`. */
static void push_copy(lua_State *L, int idx, const char *const *drop) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int skip = 0;
    if (drop && lua_type(L, -2) == LUA_TSTRING)
      for (const char *const *d = drop; *d; d++) skip |= strcmp(lua_tostring(L, -2), *d) == 0;
    if (skip) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* Pushes the file's contents as a string; NULL (nothing pushed) with errno
 * when it cannot be read. Goes through the capped allocator. */
static const char *push_file(lua_State *L, const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t n;
  do {
    char *p = luaL_prepbuffer(&b);
    n = fread(p, 1, LUAL_BUFFERSIZE, f);
    luaL_addsize(&b, n);
  } while (n == LUAL_BUFFERSIZE);
  int bad = ferror(f);
  int saved = errno;
  fclose(f);
  luaL_pushresult(&b);
  if (bad) {
    lua_pop(L, 1);
    errno = saved ? saved : EIO;
    return NULL;
  }
  return lua_tolstring(L, -1, len);
}

/* Loads text as a chunk whose _ENV is the sandbox env; raises on error. */
static void load_text(lua_State *L, sl_lua_host_t *h, const char *text, size_t len,
                      const char *chunkname) {
  if (luaL_loadbufferx(L, text, len, chunkname, "t") != LUA_OK) lua_error(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_env);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
}

/* load(chunk [, name [, mode [, env]]]): mode is always "t"; env defaults to
 * the sandbox env, never the real globals. */
static int sb_load(lua_State *L) {
  int has_env = !lua_isnone(L, 4);
  lua_settop(L, 4);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the stock load */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushliteral(L, "t");
  lua_pushvalue(L, has_env ? 4 : lua_upvalueindex(2));
  lua_call(L, 4, LUA_MULTRET);
  return lua_gettop(L) - 4;
}

/* Finalizers run with hooks off (Lua disables them in __gc), so a looping
 * __gc could never be stopped: metatables with __gc are refused. (Adding
 * __gc to a metatable afterwards does not mark the object: Lua 5.4 rule.) */
static int sb_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE && lua_pushliteral(L, "__gc") && lua_rawget(L, 2) != LUA_TNIL)
    return luaL_error(L, "setmetatable: __gc metamethods are not allowed in a sluice script");
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

/* A limit error is raised from inside the count hook, where Lua has hooks
 * off until the error is caught: a script's message handler would run
 * unbounded. So once a limit broke, the handler is skipped. */
static int sb_xpcall_handler(lua_State *L) {
  if (sl_lua_host_of(L)->tripped) return 1; /* the error object, unchanged */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int sb_xpcall(lua_State *L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, sb_xpcall_handler, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1)); /* stock xpcall */
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* collectgarbage: only "count" (KB in use, as stock Lua reports it). */
static int sb_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage('%s') is not allowed in a sluice script (only 'count')", opt);
  lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) + (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
  return 1;
}

/* print(...): one info log line, arguments separated by tabs. */
static int sb_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  sl_lua_host_t *h = sl_lua_host_of(L);
  if (h->ctx) sl_log(h->ctx, SL_LOG_INFO, "%s", lua_tostring(L, -1));
  return 0;
}

static int module_name_ok(const char *s, size_t len) {
  if (len == 0 || len > 200 || s[0] == '.' || s[len - 1] == '.' || strstr(s, "..")) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.'))
      return 0;
  }
  return 1;
}

/* require(name): name.lua (dots -> '/') beside the script, then beside the
 * DAG file; text only, in the sandbox, cached per task (upvalue 1). */
static int sb_require(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  if (!module_name_ok(name, len) || strlen(name) != len)
    return luaL_error(L, "require: bad module name '%s' (letters, digits, '_' and '.' only)", name);
  lua_settop(L, 1);
  lua_getfield(L, lua_upvalueindex(1), name);
  if (lua_islightuserdata(L, -1)) return luaL_error(L, "require: module '%s' requires itself", name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  char rel[256], path[4096];
  snprintf(rel, sizeof(rel), "%s.lua", name);
  for (char *p = rel; *p && p < rel + len; p++)
    if (*p == '.') *p = '/';
  const char *dirs[2] = {h->script_dir, h->dag_dir};
  const char *text = NULL;
  size_t tlen = 0;
  for (int i = 0; i < 2 && !text; i++) {
    snprintf(path, sizeof(path), "%s/%s", dirs[i], rel);
    text = push_file(L, path, &tlen);
    if (!text && errno != ENOENT && errno != ENOTDIR)
      return luaL_error(L, "require: cannot read %s: %s", path, strerror(errno));
  }
  if (!text)
    return luaL_error(L, "require: module '%s' not found (looked for %s beside the script, in %s, "
                      "and beside the DAG file, in %s)", name, rel, h->script_dir, h->dag_dir);
  char chunk[300];
  snprintf(chunk, sizeof(chunk), "@%s", rel);
  load_text(L, h, text, tlen, chunk);
  lua_pushlightuserdata(L, (void *)h); /* "loading": catches cycles */
  lua_setfield(L, lua_upvalueindex(1), name);
  lua_pushvalue(L, 1);
  lua_pushstring(L, path);
  lua_call(L, 2, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, lua_upvalueindex(1), name);
  return 1;
}

/* Builds the env table and keeps it in the registry (h->ref_env). Runs in
 * protected mode: a memory error here fails open, not the process. */
int sl_lua_sandbox_init(sl_lua_host_t *h) {
  lua_State *L = h->L;
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table},  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine},
                                  {LUA_OSLIBNAME, luaopen_os},      {NULL, NULL}};
  lua_newtable(L); /* env */
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  h->ref_env = luaL_ref(L, LUA_REGISTRYINDEX);
  for (const luaL_Reg *l = libs; l->name; l++) {
    luaL_requiref(L, l->name, l->func, 0);
    int lib = lua_gettop(L);
    if (l->func == luaopen_base) {
      for (const char *const *n = base_names; *n; n++) {
        lua_getfield(L, lib, *n);
        lua_setfield(L, env, *n);
      }
      lua_getfield(L, lib, "setmetatable");
      lua_pushcclosure(L, sb_setmetatable, 1);
      lua_setfield(L, env, "setmetatable");
      lua_getfield(L, lib, "xpcall");
      lua_pushcclosure(L, sb_xpcall, 1);
      lua_setfield(L, env, "xpcall");
      lua_getfield(L, lib, "load"); /* stock load, upvalue of ours */
      lua_pushvalue(L, env);
      lua_pushcclosure(L, sb_load, 2);
      lua_setfield(L, env, "load");
    } else if (l->func == luaopen_os) {
      lua_newtable(L);
      static const char *const keep[] = {"clock", "time", "date", NULL};
      for (const char *const *n = keep; *n; n++) {
        lua_getfield(L, lib, *n);
        lua_setfield(L, -2, *n);
      }
      lua_setfield(L, env, "os");
    } else {
      static const char *const drop_string[] = {"dump", NULL};
      push_copy(L, lib, l->func == luaopen_string ? drop_string : NULL);
      lua_setfield(L, env, l->name);
    }
    lua_settop(L, env);
  }
  /* string: budgeted patterns, and the string metatable's __index is the
   * sandbox copy (no dump), hidden behind __metatable = false. */
  lua_getfield(L, env, LUA_STRLIBNAME);
  int str = lua_gettop(L);
  if (sl_lua_patterns_install(L, str, &h->pat) != 0) return luaL_error(L, "cannot install patterns");
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, str);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_settop(L, env);

  /* coroutine: hooked from birth, and no unhooked __close (lua_coroutine.c). */
  lua_getfield(L, env, LUA_COLIBNAME);
  sl_lua_coroutine_install(L, -1);
  lua_settop(L, env);

  /* table: sort and move that watch the clock (lua_table.c). */
  lua_getfield(L, env, LUA_TABLIBNAME);
  sl_lua_table_install(L, -1);
  lua_settop(L, env);

  lua_pushcfunction(L, sb_collectgarbage);
  lua_setfield(L, env, "collectgarbage");
  lua_pushcfunction(L, sb_print);
  lua_setfield(L, env, "print");
  lua_newtable(L); /* require's cache */
  lua_pushcclosure(L, sb_require, 1);
  lua_setfield(L, env, "require");
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");

  lua_newtable(L); /* sluice */
  sl_lua_json_push(L);
  lua_setfield(L, -2, "json");
  lua_pushliteral(L, SLUICE_LUA_VERSION);
  lua_setfield(L, -2, "version");
  lua_setfield(L, env, "sluice");
  lua_settop(L, env - 1);
  return 0;
}

/* Reads, compiles (text only) and runs the script's main chunk; raises on
 * error, with script:line for syntax errors. */
int sl_lua_load_script(sl_lua_host_t *h) {
  lua_State *L = h->L;
  size_t len;
  const char *text = push_file(L, h->script_path, &len);
  if (!text) return luaL_error(L, "cannot read %s: %s", h->script_path, strerror(errno));
  load_text(L, h, text, len, h->chunkname);
  lua_call(L, 0, 0);
  lua_pop(L, 1);
  return 0;
}
