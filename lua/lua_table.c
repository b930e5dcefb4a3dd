/*
 * lua_table.c - the sandbox's table.sort and table.move.
 *
 * The stock ones loop in C, where the instruction hook never fires: sorting
 * a few million numbers, or table.move over a huge range of nils (which
 * allocates nothing, so the memory cap does not stop it either), runs past
 * lua_timeout unchecked. These versions do the same work from the manual's
 * description and look at the call's deadline every few thousand steps.
 * sort is a heapsort: O(n log n) in the worst case and no recursion; like
 * the stock sort it is not stable.
 */
#include <lauxlib.h>

#include "lua_host.h"

#define CHECK_EVERY 1024u

/* Raise when the call's deadline has passed (the shared clock starts here if
 * the hook has not started it yet: a call that goes straight into a sort). */
static void check_deadline(lua_State *L, sl_lua_host_t *h, const char *what) {
  if (sl_lua_deadline_passed(h))
    luaL_error(L, "%s exceeded the time limit of %d ms (lua_timeout)", what, (int)h->lim.timeout_ms);
}

typedef struct sorter {
  lua_State *L;
  sl_lua_host_t *h;
  int has_cmp;
  unsigned steps;
} sorter_t;

/* t[a] < t[b]? (the table is at index 1, the comparator at 2) */
static int sort_less(sorter_t *s, lua_Integer a, lua_Integer b) {
  lua_State *L = s->L;
  if (++s->steps % CHECK_EVERY == 0) check_deadline(L, s->h, "table.sort");
  int lt;
  if (s->has_cmp) {
    lua_pushvalue(L, 2);
    lua_geti(L, 1, a);
    lua_geti(L, 1, b);
    lua_call(L, 2, 1);
    lt = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else {
    lua_geti(L, 1, a);
    lua_geti(L, 1, b);
    lt = lua_compare(L, -2, -1, LUA_OPLT);
    lua_pop(L, 2);
  }
  return lt;
}

static void sort_swap(lua_State *L, lua_Integer a, lua_Integer b) {
  lua_geti(L, 1, a);
  lua_geti(L, 1, b);
  lua_seti(L, 1, a); /* t[a] = old t[b] */
  lua_seti(L, 1, b); /* t[b] = old t[a] */
}

static void sift_down(sorter_t *s, lua_Integer i, lua_Integer n) {
  for (;;) {
    lua_Integer child = 2 * i;
    if (child > n) return;
    if (child + 1 <= n && sort_less(s, child, child + 1)) child++;
    if (!sort_less(s, i, child)) return;
    sort_swap(s->L, i, child);
    i = child;
  }
}

static int sb_sort(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n < INT32_MAX, 1, "array too big");
  sorter_t s = {L, sl_lua_host_of(L), !lua_isnoneornil(L, 2), 0};
  if (s.has_cmp) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  for (lua_Integer i = n / 2; i >= 1; i--) sift_down(&s, i, n);
  for (lua_Integer end = n; end > 1; end--) {
    sort_swap(L, 1, end);
    sift_down(&s, 1, end - 1);
  }
  return 0;
}

/* table.move(a1, f, e, t [, a2]): a2[t..] = a1[f..e], overlap-safe. */
static int sb_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  lua_Integer t = luaL_checkinteger(L, 4);
  int dst = lua_isnoneornil(L, 5) ? 1 : 5;
  luaL_checkany(L, 1);
  if (dst == 5) luaL_checkany(L, 5);
  if (e >= f) {
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer count = e - f;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - count, 4, "destination wrap around");
    sl_lua_host_t *h = sl_lua_host_of(L);
    int forward = t > e || t <= f || (dst == 5 && !lua_rawequal(L, 1, 5));
    for (lua_Integer i = 0; i <= count; i++) {
      if ((uint64_t)i % CHECK_EVERY == CHECK_EVERY - 1) check_deadline(L, h, "table.move");
      lua_Integer k = forward ? i : count - i;
      lua_geti(L, 1, f + k);
      lua_seti(L, dst, t + k);
    }
  }
  lua_pushvalue(L, dst);
  return 1;
}

/* Replace sort and move in the (sandbox copy of the) table library at idx. */
void sl_lua_table_install(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, sb_sort);
  lua_setfield(L, idx, "sort");
  lua_pushcfunction(L, sb_move);
  lua_setfield(L, idx, "move");
}
