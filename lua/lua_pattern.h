/* Budgeted Lua 5.4 pattern matching: string.find, string.match, string.gmatch
 * and string.gsub with a step budget and a wall-clock deadline.
 *
 * The stock functions run entirely in C, where the count hook of the host
 * cannot interrupt them; a pathological pattern can run for minutes. These
 * replacements implement the pattern language of the Lua 5.4 reference manual
 * (section 6.4.1) and the documented behaviour of the four functions, and
 * count "steps" (one attempt to match one pattern item at one subject
 * position; greedy scans, %b scans and back-reference comparisons are counted
 * per character so every path is bounded).
 *
 * Errors raised (Lua errors, through luaL_error):
 *   "pattern too complex: more than N steps (lua_pattern_steps)"
 *   "pattern matching exceeded the time limit (lua_timeout)"
 *   "pattern too complex (nesting)"     recursion depth bound
 *   plus the malformed-pattern messages of stock Lua 5.4. */
#ifndef SL_LUA_PATTERN_H
#define SL_LUA_PATTERN_H

#include <stdint.h>

#include <lua.h>

typedef struct sl_lua_pattern_limits {
  uint64_t max_steps;   /* per call of find/match/gmatch-iteration/gsub; 0 = no limit */
  uint64_t deadline_ns; /* CLOCK_MONOTONIC deadline for the current callback, 0 = none;
                           the host updates it before each call */
  uint64_t steps_used;  /* out: steps of the last call, for tests */
  uint64_t timeout_ns;  /* when deadline_ns is 0 (the host starts its clock lazily), the first
                           clock check of a call sets deadline_ns = now + timeout_ns; 0 = off */
} sl_lua_pattern_limits_t;

/* Replace find, match, gmatch, gsub in the table at string_table_index with
 * budgeted versions. limits must outlive L. Returns 0, or -1 when the index
 * is not a table or limits is NULL. Call it where a memory error can be
 * caught (it creates closures). */
int sl_lua_patterns_install(lua_State *L, int string_table_index, sl_lua_pattern_limits_t *limits);

#endif
