/*
 * lua_acc.c - the byte form of a Lua aggregate's accumulator (lua_agg.c):
 * what keyed state and checkpoints keep between calls. Exact (integers and
 * floats keep their subtype and every bit, strings any bytes), unlike JSON,
 * whose numbers have 14 significant digits in lua-cjson.
 *
 *   value := 'F' | 'T'                  false, true
 *          | 'i' int64 (8 bytes, LE)   integer
 *          | 'd' double (8 bytes, LE)  float
 *          | 's' u32 len, bytes        string
 *          | 'm' u32 count, count x (value value)   table: key, value pairs
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_host.h"

/* Tables nest at most this deep: deeper means a cycle, or a bomb. */
#define ACC_DEPTH_MAX 32

static unsigned char *room(lua_State *L, sl_lua_buf_t *b, size_t n, size_t max) {
  if (b->len + n > max) luaL_error(L, "the accumulator is larger than %d MB (lua_memory_mb)", (int)(max >> 20));
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) luaL_error(L, "out of memory");
    b->p = p;
    b->cap = cap;
  }
  unsigned char *p = b->p + b->len;
  b->len += n;
  return p;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void enc(lua_State *L, int idx, sl_lua_buf_t *b, size_t max, int depth) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    *room(L, b, 1, max) = lua_toboolean(L, idx) ? 'T' : 'F';
    return;
  case LUA_TNUMBER: {
    unsigned char *p = room(L, b, 9, max);
    if (lua_isinteger(L, idx)) {
      p[0] = 'i';
      put_u64(p + 1, (uint64_t)lua_tointeger(L, idx));
    } else {
      double d = (double)lua_tonumber(L, idx);
      uint64_t bits;
      memcpy(&bits, &d, sizeof bits);
      p[0] = 'd';
      put_u64(p + 1, bits);
    }
    return;
  }
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (n > UINT32_MAX) luaL_error(L, "a string of the accumulator is longer than 4 GB");
    unsigned char *p = room(L, b, 5 + n, max);
    p[0] = 's';
    put_u32(p + 1, (uint32_t)n);
    memcpy(p + 5, s, n);
    return;
  }
  case LUA_TTABLE: {
    if (depth >= ACC_DEPTH_MAX)
      luaL_error(L, "the accumulator nests tables deeper than %d levels (a cycle?)", ACC_DEPTH_MAX);
    luaL_checkstack(L, 4, "accumulator");
    size_t at = b->len;
    unsigned char *p = room(L, b, 5, max);
    p[0] = 'm';
    uint32_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int kt = lua_type(L, -2);
      if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
        luaL_error(L, "the accumulator has a table with a %s key: keys must be strings, numbers "
                      "or booleans", luaL_typename(L, -2));
      enc(L, -2, b, max, depth + 1);
      enc(L, -1, b, max, depth + 1);
      lua_pop(L, 1);
      count++;
    }
    put_u32(b->p + at + 1, count); /* b->p may have moved: index, not p */
    return;
  }
  default:
    luaL_error(L, "the accumulator holds a %s: keep only numbers, strings, booleans and tables",
               luaL_typename(L, idx));
  }
}

void sl_lua_acc_encode(lua_State *L, int idx, sl_lua_buf_t *out, size_t max) {
  out->len = 0;
  enc(L, idx, out, max, 0);
}

typedef struct rd {
  const unsigned char *p;
  size_t len, at;
} rd_t;

static const unsigned char *take(lua_State *L, rd_t *r, size_t n) {
  if (r->len - r->at < n) luaL_error(L, "corrupt accumulator bytes (truncated at %d)", (int)r->at);
  const unsigned char *p = r->p + r->at;
  r->at += n;
  return p;
}

static void dec(lua_State *L, rd_t *r, int depth) {
  if (depth > ACC_DEPTH_MAX) luaL_error(L, "corrupt accumulator bytes (nested too deep)");
  luaL_checkstack(L, 4, "accumulator");
  unsigned char tag = *take(L, r, 1);
  switch (tag) {
  case 'F': lua_pushboolean(L, 0); return;
  case 'T': lua_pushboolean(L, 1); return;
  case 'i': lua_pushinteger(L, (lua_Integer)get_u64(take(L, r, 8))); return;
  case 'd': {
    uint64_t bits = get_u64(take(L, r, 8));
    double d;
    memcpy(&d, &bits, sizeof d);
    lua_pushnumber(L, (lua_Number)d);
    return;
  }
  case 's': {
    uint32_t n = get_u32(take(L, r, 4));
    lua_pushlstring(L, (const char *)take(L, r, n), n);
    return;
  }
  case 'm': {
    uint32_t n = get_u32(take(L, r, 4));
    if (n > (r->len - r->at) / 2) luaL_error(L, "corrupt accumulator bytes (table count)");
    lua_createtable(L, 0, (int)(n < 1024 ? n : 1024));
    for (uint32_t i = 0; i < n; i++) {
      dec(L, r, depth + 1);
      dec(L, r, depth + 1);
      if (lua_isnil(L, -2) || (lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2)))
        luaL_error(L, "corrupt accumulator bytes (table key)");
      lua_rawset(L, -3);
    }
    return;
  }
  default: luaL_error(L, "corrupt accumulator bytes (tag %d at %d)", (int)tag, (int)(r->at - 1));
  }
}

void sl_lua_acc_decode(lua_State *L, const void *p, size_t len) {
  rd_t r = {p, len, 0};
  dec(L, &r, 0);
  if (r.at != len) luaL_error(L, "corrupt accumulator bytes (%d trailing)", (int)(len - r.at));
}
