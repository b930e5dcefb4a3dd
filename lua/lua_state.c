/*
 * lua_state.c - a task's lua_State and the limits of each call into it:
 * memory cap (lua_alloc.c), instruction budget (count hook, armed lazily for
 * large budgets: lua_watchdog.c) and wall clock.
 *
 * The count hook fires every HOOK_PERIOD instructions. Once a limit breaks, the
 * hook period drops to 1 on that thread and every further instruction
 * raises: a script wrapping its loop in pcall cannot swallow the error and
 * go on. The next call starts afresh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "lua_host.h"

#define HOOK_PERIOD 1000
/* Budgets from which the main thread's hook is lazy (lua_watchdog.c): the
 * first 2 * TICK_MS of a call are not counted, which is a small part of
 * such a budget. Smaller budgets are counted from the first instruction. */
#define LAZY_MIN_INSTRUCTIONS 1000000
#define LAZY_MIN_TIMEOUT_MS 100

/* Collect when the heap reaches 4 times what the last collection kept, not
 * 2 (stock Lua): a script's garbage is mostly strings of records already
 * emitted, and a longer pause means fewer marks of the live heap per record
 * (bench_lua: -5% per record). But with more than a quarter of the cap
 * live, the cap would come before the next cycle, and every refused
 * allocation would then run a full emergency collection: such a state gets
 * stock Lua's pause back (checked after each call, adjust_gc_pause). */
#define GC_PAUSE_FAST 400
#define GC_PAUSE_STOCK 200

static void adjust_gc_pause(sl_lua_host_t *h) {
  int want = h->alloc.used > h->alloc.cap / 4 ? GC_PAUSE_STOCK : GC_PAUSE_FAST;
  if (want != h->gc_pause) {
    h->gc_pause = want;
    lua_gc(h->L, LUA_GCINC, want, 0, 0);
  }
}

static int64_t coarse_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Inside a hook, level 0 is the running Lua function (no frame of its own
 * for the hook), so luaL_error's level 1 would name the caller. */
static void raise_limit(lua_State *L, sl_lua_host_t *h) {
  luaL_where(L, 0);
  lua_pushstring(L, h->limit_msg);
  lua_concat(L, 2);
  lua_error(L);
}

static void count_hook(lua_State *L, lua_Debug *ar);

/* Raises from now on, on this thread, until the call ends. */
static void trip(lua_State *L, sl_lua_host_t *h) {
  h->tripped = 1;
  /* Tripped in a coroutine: the main thread must stop at once too, lazy
   * hook or not (count_hook raises there at its next instruction). Tripped
   * on the main thread by a C function's clock check: its hook is on from
   * now (hook_on first, so that the watchdog's handler leaves it alone). */
  if (L != h->L && h->lazy_hook && !h->hook_on) sl_lua_hook_arm(h);
  if (L == h->L) {
    h->hook_on = 1;
    __atomic_store_n(&h->armed_seq, h->call_seq, __ATOMIC_RELEASE);
  }
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  raise_limit(L, h);
}

int sl_lua_deadline_passed(sl_lua_host_t *h) {
  int64_t now = coarse_now_ns();
  if (h->pat.deadline_ns == 0) {
    h->pat.deadline_ns = (uint64_t)(now + h->lim.timeout_ms * 1000000);
    return 0;
  }
  return (uint64_t)now > h->pat.deadline_ns;
}

void sl_lua_check_clock(lua_State *L, sl_lua_host_t *h) {
  if (sl_lua_deadline_passed(h)) {
    snprintf(h->limit_msg, sizeof(h->limit_msg),
             "time limit of %lld ms per call exceeded (lua_timeout)", (long long)h->lim.timeout_ms);
    trip(L, h);
  }
}

static void count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  sl_lua_host_t *h = sl_lua_host_of(L);
  int period = lua_gethookcount(L);
  /* Tripped on another thread (a coroutine): this one must raise on every
   * instruction too, or a pcall placed in step with the period catches each
   * raise and the loop around it runs on unchecked. */
  if (h->tripped) trip(L, h);
  /* Enforced outside calls too: finalizers (__gc) run whenever the GC does,
   * always in protected mode, so raising here is safe. */
  h->instr_used += period;
  if (h->instr_used > h->lim.instructions) {
    snprintf(h->limit_msg, sizeof(h->limit_msg),
             "instruction budget of %lld per call exceeded (lua_instructions)",
             (long long)h->lim.instructions);
    trip(L, h);
  }
  sl_lua_check_clock(L, h);
  /* A coroutine left at period 1 by an earlier call's trip: back to normal. */
  if (period != HOOK_PERIOD) lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_PERIOD);
}

void sl_lua_hook_arm(sl_lua_host_t *h) {
  h->hook_on = 1;
  __atomic_store_n(&h->armed_seq, h->call_seq, __ATOMIC_RELEASE);
  lua_sethook(h->L, count_hook, LUA_MASKCOUNT, HOOK_PERIOD);
}

void sl_lua_hook_thread(lua_State *co) { lua_sethook(co, count_hook, LUA_MASKCOUNT, HOOK_PERIOD); }

/* The message handler: error text plus a traceback (runtime errors only;
 * memory errors skip it). */
static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int sl_lua_state_new(sl_lua_host_t *h) {
  h->alloc.cap = h->lim.memory;
  /* Enough for the strings of a few batches; a sixteenth of a small cap. */
  h->alloc.cache_max = h->lim.memory / 16 < (1u << 20) ? h->lim.memory / 16 : (1u << 20);
  lua_State *L = lua_newstate(sl_lua_alloc, h);
  if (!L) {
    sl_lua_alloc_flush(&h->alloc);
    return -1;
  }
  *(sl_lua_host_t **)lua_getextraspace(L) = h;
  h->L = L;
  h->lazy_hook = h->lim.instructions >= LAZY_MIN_INSTRUCTIONS &&
                 h->lim.timeout_ms >= LAZY_MIN_TIMEOUT_MS && sl_lua_watchdog_add(h) == 0;
  if (!h->lazy_hook) lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_PERIOD);
  /* (see GC_PAUSE_FAST) */
  h->gc_pause = GC_PAUSE_FAST;
  lua_gc(L, LUA_GCINC, GC_PAUSE_FAST, 0, 0);
  lua_pushcfunction(L, msgh); /* SLOT_MSGH, for the state's life */
  return 0;
}

/* Finalizers run in lua_close: give them one call's budget in all. */
void sl_lua_state_close(sl_lua_host_t *h) {
  if (!h->L) return;
  if (h->lazy_hook) sl_lua_watchdog_remove(h);
  h->lazy_hook = 0;
  h->instr_used = 0;
  h->pat.deadline_ns = 0;
  h->tripped = 0;
  lua_sethook(h->L, count_hook, LUA_MASKCOUNT, HOOK_PERIOD);
  lua_close(h->L);
  h->L = NULL;
  sl_lua_alloc_flush(&h->alloc);
}

/*
 * After a failed call, overwrite the stack slots above the top with nil.
 * Lua treats a running function's whole register window as live, stale
 * registers included, so what the failed call left there (a half-built table
 * of a state's values() or pairs(), a bomb's garbage) would stay reachable
 * until the next call happens to overwrite those registers: its first refused
 * allocation would find nothing to collect and fail too. When an error
 * unwinds it, Lua shrinks the stack to at most three times what is in use
 * (here the fixed slots and the base C frame: a few dozen slots), so
 * SCRUB_SLOTS covers all of it. No collection runs here (a full collection
 * after each failure would cost time and churn the heap): the next emergency
 * collection, if one is needed, finds the garbage unreachable.
 */
#define SCRUB_SLOTS 256
static void scrub_stack(lua_State *L) {
  int top = lua_gettop(L);
  if (!lua_checkstack(L, SCRUB_SLOTS)) return;
  for (int i = 0; i < SCRUB_SLOTS; i++) lua_pushnil(L);
  lua_settop(L, top);
}

/* Calls the function below nargs arguments on top of the stack, with the
 * per-call limits reset. 0, or -1 with h->err set (the error popped). */
int sl_lua_call(sl_lua_host_t *h, int nargs) { return sl_lua_call_r(h, nargs, NULL); }

int sl_lua_call_r(sl_lua_host_t *h, int nargs, int *returned_true) {
  lua_State *L = h->L;
  h->instr_used = 0;
  h->pat.deadline_ns = h->batch_n > 1 ? (uint64_t)(coarse_now_ns() + h->lim.timeout_ms * 1000000) : 0;
  h->alloc.refused = 0;
  if (h->tripped) {
    h->tripped = 0;
    if (!h->lazy_hook) lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_PERIOD);
  }
  sl_lua_host_t *prev = NULL;
  if (h->lazy_hook) {
    /* A new sequence number first: a late request for the last call is
     * then ignored by the handler, and cannot arm this call's hook halfway
     * through the disarming below. */
    prev = sl_lua_watch_begin(h);
    if (h->hook_on) {
      h->hook_on = 0;
      lua_sethook(L, NULL, 0, 0);
    }
  }
  __atomic_store_n(&h->in_call, 1, __ATOMIC_RELAXED);
  int st = lua_pcall(L, nargs, returned_true ? 1 : 0, SLOT_MSGH);
  __atomic_store_n(&h->in_call, 0, __ATOMIC_RELAXED);
  if (h->lazy_hook) sl_lua_watch_end(prev);
  if (returned_true && st == LUA_OK) {
    *returned_true = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if ((++h->gen & ((UINT64_C(1) << 44) - 1)) == 0) h->gen++; /* 0 would make rec 0 NULL */
  adjust_gc_pause(h);
  if (st == LUA_OK && !h->tripped) return 0;
  if (st == LUA_OK) {
    /* A limit broke in a coroutine whose resume caught it, and the call
     * returned before the main thread's hook came round: still a failure. */
    snprintf(h->err, sizeof(h->err), "%s", h->limit_msg);
    scrub_stack(L);
    return -1;
  }
  if (st == LUA_ERRMEM && h->alloc.refused)
    snprintf(h->err, sizeof(h->err), "memory limit of %zu MB exceeded (lua_memory_mb)",
             h->lim.memory >> 20);
  else if (st == LUA_ERRERR)
    snprintf(h->err, sizeof(h->err), "error in the error handler: %s",
             lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
  else
    snprintf(h->err, sizeof(h->err), "%s",
             lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no error message)");
  lua_pop(L, 1);
  scrub_stack(L);
  return -1;
}
