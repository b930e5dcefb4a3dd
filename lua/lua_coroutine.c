/*
 * lua_coroutine.c - the sandbox's coroutine create, wrap, resume and close.
 *
 * Two things the stock library cannot do for us:
 *
 * 1. Every coroutine counts instructions from its first one, whether or not
 *    the main thread's hook is armed yet (lua_watchdog.c arms the main
 *    thread only). create and wrap set the count hook on the new thread
 *    itself, and never touch the hook of the thread calling them (changing
 *    it resets its count: a loop creating coroutines would never be
 *    counted).
 *
 * 2. A limit error is raised from inside the count hook, and when it kills
 *    a coroutine, Lua leaves that thread with hooks disallowed (the flag
 *    the hook dispatch clears is only restored by a pcall inside the
 *    coroutine). Closing such a coroutine (coroutine.close, or the stock
 *    wrap's error path) would run its pending __close handlers with no
 *    hook at all: an endless loop there would never stop. So a coroutine a
 *    limit killed is remembered (a weak-keyed registry table filled at
 *    creation, set at death without allocating), and its __close handlers
 *    are never run: close returns false and says so.
 *    Coroutines that die of ordinary errors are closed as in stock Lua.
 */
#include <lauxlib.h>

#include "lua_host.h"

/* Registry key of the table: coroutine -> true once a limit killed it. */
static const char KILLED_KEY = 0;

static void push_killed(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &KILLED_KEY); }

static int is_error_status(int st) { return st != LUA_OK && st != LUA_YIELD; }

/* Marks the coroutine at idx as killed by a limit. The key exists since its
 * creation, so the rawset allocates nothing (this runs while the memory
 * limit may be the one that broke). */
static void mark_killed(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  push_killed(L);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int was_killed(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  push_killed(L);
  lua_pushvalue(L, idx);
  int killed = lua_rawget(L, -2) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 2);
  return killed;
}

/* Pushes a new coroutine running the function at idx, hooked and known to
 * the killed table. */
static lua_State *new_coroutine(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TFUNCTION);
  push_killed(L);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, -1);
  lua_pushboolean(L, 0);
  lua_rawset(L, -4); /* killed[co] = false */
  lua_remove(L, -2);
  lua_pushvalue(L, idx);
  lua_xmove(L, co, 1);
  sl_lua_hook_thread(co);
  return co;
}

static int co_create(lua_State *L) {
  new_coroutine(L, 1);
  return 1;
}

/* After a resume of the coroutine at idx failed: a limit broke meanwhile
 * (the host is tripped), so the error came from the hook. */
static void note_death(lua_State *L, lua_State *co, int idx) {
  if (is_error_status(lua_status(co)) && sl_lua_host_of(L)->tripped) mark_killed(L, idx);
}

/* coroutine.resume: the stock one, then the note. */
static int co_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushvalue(L, 2); /* keeps the coroutine on the stack for the note */
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 2, LUA_MULTRET);
  if (co) note_death(L, co, 1);
  lua_remove(L, 1);
  return lua_gettop(L);
}

/* coroutine.close: a coroutine a limit killed is not closed (see above). */
static int co_close(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  if (co && is_error_status(lua_status(co)) && was_killed(L, 1)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "coroutine stopped by a limit (its to-be-closed variables are not closed)");
    return 2;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* The function coroutine.wrap returns: resumes its coroutine (upvalue 1);
 * results pass through, an error is raised in the caller. */
static int wrapped_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L);
  if (!lua_checkstack(co, nargs + 1)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, nargs);
  int nres = 0;
  int st = lua_resume(co, L, nargs, &nres);
  if (!is_error_status(st)) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  if (is_error_status(lua_status(co))) { /* the coroutine died (else: not resumable) */
    if (sl_lua_host_of(L)->tripped) {
      lua_pushvalue(L, lua_upvalueindex(1));
      mark_killed(L, -1);
      lua_pop(L, 1);
    } else {
      /* close its pending variables, as stock wrap does; their own error,
       * if any, replaces the coroutine's */
#if LUA_VERSION_RELEASE_NUM >= 50406
      lua_closethread(co, L);
#else
      lua_resetthread(co);
#endif
    }
  }
  lua_xmove(co, L, 1); /* the error object */
  return lua_error(L);
}

static int co_wrap(lua_State *L) {
  new_coroutine(L, 1);
  lua_pushcclosure(L, wrapped_call, 1);
  return 1;
}

void sl_lua_coroutine_install(lua_State *L, int co_table) {
  co_table = lua_absindex(L, co_table);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &KILLED_KEY);

  lua_pushcfunction(L, co_create);
  lua_setfield(L, co_table, "create");
  lua_pushcfunction(L, co_wrap);
  lua_setfield(L, co_table, "wrap");
  lua_getfield(L, co_table, "resume");
  lua_pushcclosure(L, co_resume, 1);
  lua_setfield(L, co_table, "resume");
  lua_getfield(L, co_table, "close");
  lua_pushcclosure(L, co_close, 1);
  lua_setfield(L, co_table, "close");
}
