/* The Lua host's allocator (lua/lua_alloc.c): the memory cap and the cache
 * of freed small blocks. Compiled into the test with the implementation, as
 * test_lua_pattern.c is. The accounting is checked exactly: every byte
 * charged comes back when the blocks are freed and the cache flushed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../../lua/lua_alloc.c"

static sl_lua_host_t *new_host(size_t cap, size_t cache_max) {
  sl_lua_host_t *h = calloc(1, sizeof(*h));
  h->alloc.cap = cap;
  h->alloc.cache_max = cache_max;
  return h;
}

static void *al(sl_lua_host_t *h, void *p, size_t osize, size_t nsize) {
  return sl_lua_alloc(h, p, osize, nsize);
}

/* Freed small blocks are reused, the cache stays within cache_max, and all
 * is given back. */
static void small_blocks_cached_and_returned(void **st) {
  (void)st;
  sl_lua_host_t *h = new_host(1 << 20, 4096);
  void *a = al(h, NULL, LUA_TSTRING, 100);
  assert_non_null(a);
  size_t one = h->alloc.used;
  assert_true(one >= 112 && one <= 112 + 64); /* class 112 + malloc's overhead */
  al(h, a, 100, 0);
  assert_int_equal(h->alloc.used, one); /* cached, still held */
  assert_int_equal(h->alloc.cached, 112);
  void *b = al(h, NULL, LUA_TTABLE, 97); /* same class: the same block */
  assert_ptr_equal(a, b);
  assert_int_equal(h->alloc.cached, 0);
  al(h, b, 97, 0);

  void *many[100];
  for (int i = 0; i < 100; i++) many[i] = al(h, NULL, 0, 200);
  for (int i = 0; i < 100; i++) al(h, many[i], 200, 0);
  assert_true(h->alloc.cached <= 4096);
  sl_lua_alloc_flush(&h->alloc);
  assert_int_equal(h->alloc.cached, 0);
  assert_int_equal(h->alloc.used, 0);
  free(h);
}

/* Contents survive growing and shrinking across classes and across the
 * small/big line; a block that stays in its class does not move. */
static void realloc_keeps_contents(void **st) {
  (void)st;
  sl_lua_host_t *h = new_host(1 << 20, 1 << 16);
  unsigned char *p = al(h, NULL, 0, 20);
  for (int i = 0; i < 20; i++) p[i] = (unsigned char)i;
  assert_ptr_equal(al(h, p, 20, 30), p); /* 20 and 30 share the 32-byte class */
  p = al(h, p, 30, 300);
  for (int i = 20; i < 300; i++) p[i] = (unsigned char)i;
  p = al(h, p, 300, 5000); /* small to big */
  for (int i = 0; i < 300; i++) assert_int_equal(p[i], (unsigned char)i);
  for (int i = 300; i < 5000; i++) p[i] = (unsigned char)(i * 7);
  p = al(h, p, 5000, 9000); /* big to big */
  for (int i = 300; i < 5000; i++) assert_int_equal(p[i], (unsigned char)(i * 7));
  p = al(h, p, 9000, 40); /* big to small */
  for (int i = 0; i < 40; i++) assert_int_equal(p[i], (unsigned char)i);
  al(h, p, 40, 0);
  sl_lua_alloc_flush(&h->alloc);
  assert_int_equal(h->alloc.used, 0);
  free(h);
}

/* The cap counts cached blocks too; before refusing, the cache goes back to
 * malloc. A refusal is remembered for the call's error message. */
static void cap_refuses_after_flushing_the_cache(void **st) {
  (void)st;
  sl_lua_host_t *h = new_host(64 * 1024, 64 * 1024);
  void *blocks[1000];
  int n = 0;
  while (n < 1000 && (blocks[n] = al(h, NULL, 0, 256)) != NULL) n++;
  assert_true(n > 100 && n < 1000);
  assert_int_equal(h->alloc.refused, 1);
  assert_true(h->alloc.used <= h->alloc.cap);
  for (int i = 0; i < n; i++) al(h, blocks[i], 256, 0); /* all cached */
  assert_true(h->alloc.cached > 0);
  h->alloc.refused = 0;
  /* A big block needs the cached memory: it is flushed, then granted. */
  void *big = al(h, NULL, 0, 40000);
  assert_non_null(big);
  assert_int_equal(h->alloc.refused, 0);
  assert_int_equal(h->alloc.cached, 0);
  assert_null(al(h, NULL, 0, 60000)); /* over the cap with big still held */
  assert_int_equal(h->alloc.refused, 1);
  /* Growing counts old and new together: refused, the old block intact. */
  h->alloc.refused = 0;
  assert_null(al(h, big, 40000, 50000));
  assert_int_equal(h->alloc.refused, 1);
  al(h, big, 40000, 0);
  sl_lua_alloc_flush(&h->alloc);
  assert_int_equal(h->alloc.used, 0);
  free(h);
}

/* A real state on the allocator: string churn stays under the cap and runs
 * from the cache; a table bomb gets "not enough memory"; closing gives every
 * byte back. */
/* Lua assumes a shrink never fails. At the cap, with no cached block of the
 * smaller class, small-to-smaller and big-to-small shrinks succeed, keep
 * the contents, and the accounting still comes back to zero. */
static void shrinks_succeed_at_the_cap(void **st) {
  (void)st;
  sl_lua_host_t *h = new_host(4096, 0); /* no cache: every new block needs room */
  char *small = al(h, NULL, 0, 400);
  char *big = al(h, NULL, 0, 2000);
  assert_non_null(small);
  assert_non_null(big);
  memset(small, 's', 400);
  memset(big, 'b', 2000);
  void *filler[64];
  int n = 0;
  while (n < 64 && (filler[n] = al(h, NULL, 0, 300)) != NULL) n++;
  assert_true(n < 64);
  assert_int_equal(h->alloc.refused, 1); /* the cap is reached */
  h->alloc.refused = 0;

  char *s2 = al(h, small, 400, 40); /* to a smaller class */
  assert_non_null(s2);
  for (int i = 0; i < 40; i++) assert_int_equal(s2[i], 's');
  char *b2 = al(h, big, 2000, 100); /* big to small */
  assert_non_null(b2);
  for (int i = 0; i < 100; i++) assert_int_equal(b2[i], 'b');
  char *b3 = al(h, b2, 100, 97); /* within its class: in place */
  assert_ptr_equal(b3, b2);
  assert_int_equal(h->alloc.refused, 0);
  assert_true(h->alloc.used <= h->alloc.cap);

  al(h, s2, 40, 0);
  al(h, b3, 97, 0);
  for (int i = 0; i < n; i++) al(h, filler[i], 300, 0);
  sl_lua_alloc_flush(&h->alloc);
  assert_int_equal(h->alloc.used, 0);
  free(h);
}

static void lua_state_on_the_allocator(void **st) {
  (void)st;
  sl_lua_host_t *h = new_host(8u << 20, 1u << 19);
  lua_State *L = lua_newstate(sl_lua_alloc, h);
  assert_non_null(L);
  luaL_openlibs(L);
  const char *churn = "local s = string.rep('x', 150)\n"
                      "local n = 0\n"
                      "for i = 1, 200000 do n = n + #(s .. i) end\n"
                      "return n\n";
  assert_int_equal(luaL_dostring(L, churn), LUA_OK);
  assert_true(lua_tointeger(L, -1) > 200000 * 150);
  lua_pop(L, 1);
  assert_true(h->alloc.used <= h->alloc.cap);
  assert_true(h->alloc.cached <= h->alloc.cache_max);

  const char *bomb = "local t = {} for i = 1, 1e9 do t[i] = string.rep('y', 100) .. i end";
  assert_int_not_equal(luaL_dostring(L, bomb), LUA_OK);
  assert_string_equal(lua_tostring(L, -1), "not enough memory");
  assert_int_equal(h->alloc.refused, 1);
  assert_true(h->alloc.used <= h->alloc.cap);
  lua_close(L);
  sl_lua_alloc_flush(&h->alloc);
  assert_int_equal(h->alloc.used, 0);
  free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(small_blocks_cached_and_returned),
      cmocka_unit_test(realloc_keeps_contents),
      cmocka_unit_test(cap_refuses_after_flushing_the_cache),
      cmocka_unit_test(shrinks_succeed_at_the_cap),
      cmocka_unit_test(lua_state_on_the_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
