/* Budgeted Lua pattern matching (lua/lua_pattern.c).
 *
 * Differential: two lua_States in this process, one with the stock string
 * library and one with our find/match/gmatch/gsub installed; a hand-written
 * corpus (every feature of the manual's section 6.4.1) and a fixed-seed
 * random corpus run through both and every result (positions, captures,
 * gmatch sequences, gsub text and count, error or not, error text) must be
 * identical. Then the budget: step limit, deadline, nesting bound, memory cap.
 *
 * Built as a single translation unit with the implementation:
 *   gcc -O1 -g -fsanitize=address,undefined -I/usr/include/lua5.4 -I sdk/include \
 *       tests/unit/test_lua_pattern.c -llua5.4 -lcmocka -o /tmp/tlp && /tmp/tlp
 * SL_LP_RANDOM_CASES overrides the number of random cases (default 100000),
 * SL_LP_SEED the seed;
 * SL_LP_BENCH=1 prints ns per call against stock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../../lua/lua_pattern.c"

/* ---- two states ------------------------------------------------------------ */

/* run(kind, s, p, a3, a4) serialises every result of one call (or every
 * iteration of gmatch) into a string, so the two states can be compared. */
static const char *HELPER =
    "local function ser(...)\n"
    "  local n = select('#', ...)\n"
    "  local t = {tostring(n)}\n"
    "  for i = 1, n do local v = select(i, ...); t[#t + 1] = type(v) .. ':' .. tostring(v) end\n"
    "  return table.concat(t, '|')\n"
    "end\n"
    "local repls = {\n"
    "  ['#T'] = {a = '<A>', b = false, ab = 7, ['('] = 'P', [1] = 'one', [2] = 'two', x = 'X',\n"
    "            ['a b'] = 'AB', [''] = 'E'},\n"
    "  ['#F'] = function(...) local t = table.pack(...); local o = {}\n"
    "            for i = 1, t.n do o[i] = type(t[i]) .. tostring(t[i]) end\n"
    "            return '{' .. table.concat(o, ',') .. '}' end,\n"
    "  ['#N'] = function(a) if a == 'a' then return nil elseif a == 'b' then return false end\n"
    "            return tostring(a) .. '!' end,\n"
    "  ['#E'] = function(a) if a == 'x' then return {} end return 1.5 end,\n"
    "  ['#B'] = {a = true},\n"
    "  ['#R'] = function(a) return tostring(string.find('xyzab', a, 1, true)) ..\n"
    "            string.gsub(a, '.', '%0%0') .. tostring(string.match(a, '(.)$')) end,\n"
    "}\n"
    "function run(kind, s, p, a3, a4)\n"
    "  if kind == 'find' then return ser(string.find(s, p, a3, a4))\n"
    "  elseif kind == 'match' then return ser(string.match(s, p, a3))\n"
    "  elseif kind == 'gmatch' then\n"
    "    local it = string.gmatch(s, p, a3)\n"
    "    local out = {}\n"
    "    for i = 1, 5000 do\n"
    "      local r = table.pack(it())\n"
    "      if r[1] == nil then break end\n"
    "      out[#out + 1] = ser(table.unpack(r, 1, r.n))\n"
    "    end\n"
    "    return #out .. ':' .. table.concat(out, ' ; ')\n"
    "  elseif kind == 'method' then return ser(s:find(p, a3, a4))\n"
    "  else\n"
    "    local r = a3\n"
    "    if type(a3) == 'string' and repls[a3] ~= nil then r = repls[a3] end\n"
    "    return ser(string.gsub(s, p, r, a4))\n"
    "  end\n"
    "end\n";

typedef struct pair {
  lua_State *stock, *mine;
  sl_lua_pattern_limits_t lim;
} pair_t;

static lua_State *new_state(sl_lua_pattern_limits_t *lim) {
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  luaL_openlibs(L);
  if (lim) {
    lua_getglobal(L, "string");
    assert_int_equal(sl_lua_patterns_install(L, -1, lim), 0);
    lua_pop(L, 1);
  }
  if (luaL_loadbuffer(L, HELPER, strlen(HELPER), "=helper") || lua_pcall(L, 0, 0, 0))
    fail_msg("helper: %s", lua_tostring(L, -1));
  return L;
}

static void pair_open(pair_t *pr) {
  memset(pr, 0, sizeof *pr);
  pr->stock = new_state(NULL);
  pr->mine = new_state(&pr->lim);
}

static void pair_close(pair_t *pr) {
  lua_close(pr->stock);
  lua_close(pr->mine);
}

/* Copies a plain value (nil, boolean, integer, number, string; a table
 * shallowly, nested tables become empty ones) between states. */
static void xmove_value(lua_State *from, int idx, lua_State *to) {
  idx = lua_absindex(from, idx);
  switch (lua_type(from, idx)) {
  case LUA_TTABLE:
    lua_newtable(to);
    lua_pushnil(from);
    while (lua_next(from, idx)) {
      if (lua_type(from, -2) != LUA_TTABLE) {
        xmove_value(from, -2, to);
        if (lua_type(from, -1) == LUA_TTABLE)
          lua_newtable(to);
        else
          xmove_value(from, -1, to);
        lua_rawset(to, -3);
      }
      lua_pop(from, 1);
    }
    break;
  case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); break;
  case LUA_TNUMBER:
    if (lua_isinteger(from, idx))
      lua_pushinteger(to, lua_tointeger(from, idx));
    else
      lua_pushnumber(to, lua_tonumber(from, idx));
    break;
  case LUA_TSTRING: {
    size_t l;
    const char *s = lua_tolstring(from, idx, &l);
    lua_pushlstring(to, s, l);
    break;
  }
  default: lua_pushnil(to); break;
  }
}

/* Calls run(...) with the nargs values on top of L; leaves (ok, text) on the stack
 * replaced by a single string; returns ok. */
static int call_run(lua_State *L, int nargs) {
  lua_getglobal(L, "run");
  lua_insert(L, -nargs - 1);
  int rc = lua_pcall(L, nargs, 1, 0);
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushstring(L, "(non-string error)");
  }
  return rc == LUA_OK;
}

typedef struct stats {
  unsigned long cases, skipped, errors, mismatches;
} stats_t;

static void escape_print(const char *tag, const char *s, size_t l) {
  fprintf(stderr, "  %s: \"", tag);
  for (size_t i = 0; i < l; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 32 || c >= 127 || c == '"' || c == '\\')
      fprintf(stderr, "\\%03u", c);
    else
      fputc(c, stderr);
  }
  fprintf(stderr, "\"\n");
}

/* The arguments of one case are on top of pr->stock (nargs values); runs them in
 * both states and compares. Pops the arguments. */
static void diff_case(pair_t *pr, int nargs, stats_t *st, int skip_on_budget) {
  lua_State *S = pr->stock, *M = pr->mine;
  int base = lua_gettop(S) - nargs;
  for (int i = 1; i <= nargs; i++) xmove_value(S, base + i, M);
  st->cases++;
  int okm = call_run(M, nargs);
  size_t lm, ls;
  const char *rm = lua_tolstring(M, -1, &lm);
  if (!okm && skip_on_budget && strstr(rm, "(lua_pattern_steps)")) {
    st->skipped++;
    lua_pop(M, 1);
    lua_settop(S, base);
    return;
  }
  /* Call with copies: the arguments stay below for the report. */
  for (int i = 1; i <= nargs; i++) lua_pushvalue(S, base + i);
  int oks = call_run(S, nargs);
  const char *rs = lua_tolstring(S, -1, &ls);
  if (!oks) st->errors++;
  if (oks != okm || ls != lm || memcmp(rs, rm, ls) != 0) {
    st->mismatches++;
    if (st->mismatches <= 15) {
      size_t l;
      fprintf(stderr, "MISMATCH case %lu nargs=%d\n", st->cases, nargs);
      for (int i = 1; i <= nargs; i++) {
        const char *x = luaL_tolstring(S, base + i, &l);
        escape_print(luaL_typename(S, base + i), x, l);
        lua_pop(S, 1);
      }
      escape_print(oks ? "stock" : "stock ERR", rs, ls);
      escape_print(okm ? "mine " : "mine  ERR", rm, lm);
    }
  }
  lua_pop(M, 1);
  lua_settop(S, base);
}

/* ---- hand-written corpus ------------------------------------------------------ */

static const char *CORPUS =
    "cases = {}\n"
    "local function C(...) cases[#cases + 1] = table.pack(...) end\n"
    "local function all(s, p, init)\n"
    "  C('find', s, p, init); C('match', s, p, init); C('gmatch', s, p, init)\n"
    "  C('gsub', s, p, '<%0>'); C('gsub', s, p, '#F'); C('gsub', s, p, '#T', 2)\n"
    "end\n"
    /* literals, empty pattern, empty subject */
    "all('hello world', 'o w'); all('hello world', 'xyz'); all('', ''); all('abc', '')\n"
    "all('', 'a*'); all('', '.'); all('aaa', 'a'); all('a\\0b\\0c', '\\0'); all('a\\0b', '%z')\n"
    "all('a.b', '.'); all('a.b', '%.'); all('50% off', '%%'); all('a+b', '+'); all('a+b', 'a+b')\n"
    /* classes and complements */
    "local subj = 'Hello, World! 123 \\t\\n\\1\\127 x_y-z [ok] 0xFF \\200\\255'\n"
    "for _, c in ipairs{'a','c','d','g','l','p','s','u','w','x','A','C','D','G','L','P','S','U','W','X'} do\n"
    "  all(subj, '%' .. c); all(subj, '%' .. c .. '+'); all(subj, '[%' .. c .. '_]+')\n"
    "end\n"
    "all(subj, '%q'); all(subj, '%Q'); all(subj, '%_'); all(subj, '%]'); all(subj, '%[ok%]')\n"
    /* sets */
    "for _, set in ipairs{'[abc]', '[^abc]', '[a-z]', '[^a-z]', '[A-Za-z0-9]', '[%a_]', '[^%s]', '[]]',\n"
    "    '[^]]', '[a-]', '[-a]', '[%-]', '[a%-z]', '[z-a]', '[%]]', '[]a]', '[^%d%s]', '[%w_%.]',\n"
    "    '[\\0-\\31]', '[\\128-\\255]', '[--/]', '[a-c-e]', '[%%]', '[^^]', '[%^]', '[.]'} do\n"
    "  all(subj, set); all(subj, set .. '+'); all('a-z]^%.' .. subj, set .. '*')\n"
    "end\n"
    /* quantifiers */
    "for _, q in ipairs{'a*', 'a+', 'a-', 'a?', 'a*b', 'a-b', 'a+b', 'a?b', 'a*a', 'a-a', '.-b', '.*b',\n"
    "    'x*', 'x-', 'b?a*b?', '[ab]-b', '(a-)b', '(a*)(a*)', '(a-)(a-)$', '^(a-)(a+)$'} do\n"
    "  for _, s in ipairs{'', 'a', 'b', 'aaa', 'aab', 'baaab', 'abab', 'xaaay'} do all(s, q) end\n"
    "end\n"
    /* anchors */
    "for _, p in ipairs{'^a', '^b', 'a$', 'b$', '^$', '^', '$', '^a$', 'a^', '$a', 'a$b', '^^a', 'a$$',\n"
    "    '^%s*(.-)%s*$', '%$', '^.*$'} do\n"
    "  for _, s in ipairs{'', 'a', 'ab', 'ba', 'a^', '$a', 'a$b', '^a', 'a$', '  trim me  '} do all(s, p) end\n"
    "end\n"
    /* captures */
    "for _, p in ipairs{'(a)', '(a)(b)', '((a)(b))', '(a(b(c)))', '()', '()a()', '(a)()(b)', '(()a())',\n"
    "    '(%w+)=(%w+)', '(h)(e)(l)(l)(o)', '(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)', '((((((((((x))))))))))',\n"
    "    '(a', 'a)', '(a))', '((a)', ')', '(', '(()', '%((%w+)%)', '(a*(.)%w(%s*))'} do\n"
    "  for _, s in ipairs{'', 'abc', 'key=val, k2=v2', 'hello', 'abcdefghijkl', 'xx (paren) yy'} do all(s, p) end\n"
    "end\n"
    "C('find', 'x', string.rep('()', 32)); C('find', 'x', string.rep('()', 33))\n"
    "C('match', 'x', string.rep('(x*)', 32)); C('match', 'x', string.rep('(x*)', 33))\n"
    /* %b and %f */
    "for _, p in ipairs{'%b()', '%b[]', '%b{}', '%bab', \"%b''\", '%b((', '%b)(', '%b', '%b(', 'x%b()y',\n"
    "    '%b()+', '(%b())', '%f[%w]%w+', '%f[%W]', '%f[%a]%a+%f[%A]', '%f[^a]', '%f[a]', '%f[%z]', '%f[%Z]',\n"
    "    '%f', '%fa', '%f[a', '%f[]]', '%f[^\\0]', '%f[\\0]', '%f[%w]*'} do\n"
    "  for _, s in ipairs{'', 'f(a(b)c)d', '(()', ')(', '[x]{y}', \"'q' 'r'\", 'the quick brown fox',\n"
    "      'THE (quick) fox', 'aab', 'ba', 'x()y', 'x(y', 'x*', 'abba'} do all(s, p) end\n"
    "end\n"
    /* back-references */
    "for _, p in ipairs{'(a)%1', '(a*)%1', '([\"\\'])(.-)%1', '(.)%1', '(.)(.)%2%1', '%1', '(a%1)', '%0',\n"
    "    '(a)%2', '()%1', '(a)()%2', '(.-)%1$', '(%w+) %1', '%9', '(a)%1*', '(x)%1?'} do\n"
    "  for _, s in ipairs{'', 'aa', 'aaaa', 'abba', 'say \"hi\" and \\'bye\\'', 'hello hello world',\n"
    "      'abab', 'xx'} do all(s, p) end\n"
    "end\n"
    /* malformed */
    "for _, p in ipairs{'%', 'a%', '[a', '[', '[^', '[]', '[^]', '[%', '[a%', '[%]', '(()', '(%', '%b',\n"
    "    '%bx', '%f', '%fx', '%f[', '%f[a', 'x[', 'b%', '(', ')', '%1', '(()%1)', '[a-'} do\n"
    "  for _, s in ipairs{'', 'a', 'xyz', 'b', 'ab'} do all(s, p) end\n"
    "end\n"
    /* find: init and plain */
    "for _, init in ipairs{-100, -6, -5, -1, 0, 1, 2, 5, 6, 7, 100, math.mininteger, math.maxinteger} do\n"
    "  for _, p in ipairs{'', 'l', 'lo', 'o', 'h', '.', '%a+', '^l', 'l$', '(l)(o)', 'x'} do\n"
    "    C('find', 'hello', p, init); C('find', 'hello', p, init, true); C('find', 'hello', p, init, false)\n"
    "    C('match', 'hello', p, init); C('gmatch', 'hello', p, init); C('find', '', p, init)\n"
    "    C('gmatch', '', p, init); C('match', '', p, init)\n"
    "  end\n"
    "end\n"
    "for _, p in ipairs{'a.b', '.', '%a', '(', ')', '[', ']', '%', 'a+', '^a', 'b$', 'a)', ']]', 'a-b'} do\n"
    "  for _, s in ipairs{'a.b', 'axb', 'a+b (x)', ']]', '%%', '^ab$', 'a-b', 'x)'} do\n"
    "    C('find', s, p, 1, true); C('find', s, p, 2, true); C('find', s, p); C('find', s, p, -2, 1)\n"
    "    C('method', s, p); C('method', s, p, 1, true)\n"
    "  end\n"
    "end\n"
    "C('find', 'abc', 'b', '2'); C('find', 'abc', 'b', 2.0); C('find', 'abc', 'b', 2.5)\n"
    "C('find', 123, 2); C('find', 'a1.5', 1.5, 1, true); C('match', 123456, '%d%d'); C('gsub', 12321, 2, 9)\n"
    "C('find', nil, 'a'); C('find', 'a', nil); C('find', 'a', 'a', 'x'); C('find', {}, 'a')\n"
    "C('match', 'a'); C('gmatch', 'a'); C('gmatch', 'a', 'a', 'z'); C('gsub', 'a', 'a')\n"
    "C('gsub', 'a', 'a', true); C('gsub', 'a', 'a', 'b', 'x'); C('gsub', 'a', 'a', nil, 'x')\n"
    "C('method', 'abc', {}); C('method', 'abc', 'b', 'x')\n"
    /* gmatch: empty matches, init, anchors */
    "for _, p in ipairs{'', 'a*', 'b*', '%a*', '%a+', '()', '()a*()', '^a', '^', 'a$', '$', '.-', '.?',\n"
    "    '(%w+)=(%w+)', '%s*', 'x*', '^^'} do\n"
    "  for _, s in ipairs{'', 'abc', 'aab', ' a = 1, b=22 ', 'b', '^a^a', 'a$b$'} do\n"
    "    for _, init in ipairs{1, 2, 3, -1, -2, 0, 10} do C('gmatch', s, p, init) end\n"
    "  end\n"
    "end\n"
    /* gsub replacements */
    "for _, r in ipairs{'', 'x', '%0', '%1', '%2', '%%', '%', '%a', 'a%', '[%0]', '%1%1', '%9', '%10',\n"
    "    '\\0', '%\\0', 42, 1.5, '#T', '#F', '#N', '#E', '#B', '%1-%2'} do\n"
    "  for _, p in ipairs{'a', '(a)', '(a)(b)', '()', '%w+', '', 'b*', '^a', 'a$', '(a)()', 'x', '(%w+) (%w+)',\n"
    "      '(a'} do\n"
    "    for _, n in ipairs{-1, 0, 1, 2, 1000} do C('gsub', 'ab a b', p, r, n) end\n"
    "    C('gsub', 'hello world from lua', p, r); C('gsub', '', p, r); C('gsub', 'aaa', p, r)\n"
    "  end\n"
    "end\n"
    "C('gsub', 'abc', '%w', '%1'); C('gsub', 'abc', '', '-'); C('gsub', 'abc', 'b*', '-')\n"
    "C('gsub', 'hello world', 'o', {o = 1}); C('gsub', 'hello world', '(o)', {o = {}})\n"
    "C('gsub', 'abc', '%w', '%2'); C('gsub', 'abc', '(%w)', '%2'); C('gsub', 'abc', '.', '#F', 2.0)\n"
    "C('gsub', 'abc', '.', 'x', 1.5); C('gsub', 'abc', '.', 'x', math.mininteger)\n"
    "C('gsub', 'abc', '.', 'x', math.maxinteger)\n"
    /* long patterns (compiled into a userdata rather than on the C stack) */
    "local text = 'The quick brown fox jumps over the lazy dog; [1,2,3] (a (b) c) 0x1F x=10 y=20'\n"
    "for _, p in ipairs{string.rep('[%a%d ]', 15), string.rep('%f[%w]%w+%W*', 6), 'The' .. string.rep('.?', 30),\n"
    "    string.rep('[^%s]', 14) .. '$', 'quick brown fox jumps over the lazy dog; %[1,2,3%]',\n"
    "    '(%w+)%s*=%s*(%w+)' .. string.rep('[^=]*', 5) .. '(%w+)=(%w+)', string.rep('(%a)', 14),\n"
    "    string.rep('%f[%a][%a%p]-', 8), '%b()' .. string.rep('%s?%w?', 20), string.rep('(x?)', 32) .. '%32',\n"
    "    string.rep('o', 45), 'T' .. string.rep('%a', 40), string.rep('[abc][%]]', 10), string.rep('%', 45)} do\n"
    "  all(text, p); all(string.rep('o', 50), p); all(string.rep('[a]]', 12), p)\n"
    "end\n"
    /* plain find: short needles (memchr + memcmp) and long ones (memmem) */
    "local hay = string.rep('ab', 40) .. 'abc' .. string.rep('a', 30) .. 'b'\n"
    "for _, n in ipairs{'abc', 'ba', 'bb', string.rep('ab', 10) .. 'c', string.rep('a', 16), string.rep('a', 17),\n"
    "    string.rep('a', 30) .. 'b', string.rep('a', 31) .. 'b', hay, hay .. 'x', 'b', 'c'} do\n"
    "  for _, init in ipairs{1, 2, 70, -20, -1} do C('find', hay, n, init, true) end\n"
    "end\n"
    "for _, p in ipairs{'a', '(a)', '%w+', '', '(b)()'} do\n"
    "  C('gsub', 'abcab', p, '#R'); C('gsub', 'abcab', p, '#R', 1)\n"
    "end\n";

static void differential_handwritten(void **st) {
  (void)st;
  pair_t pr;
  pair_open(&pr);
  lua_State *S = pr.stock;
  if (luaL_loadbuffer(S, CORPUS, strlen(CORPUS), "=corpus") || lua_pcall(S, 0, 0, 0))
    fail_msg("corpus: %s", lua_tostring(S, -1));
  lua_getglobal(S, "cases");
  int ncases = (int)luaL_len(S, -1);
  stats_t stt = {0};
  for (int i = 1; i <= ncases; i++) {
    lua_rawgeti(S, -1, i);
    int t = lua_gettop(S);
    lua_getfield(S, t, "n");
    int n = (int)lua_tointeger(S, -1);
    lua_pop(S, 1);
    /* run(kind, s, p, a3, a4): the case is kind, s, p, a3, a4 */
    for (int j = 1; j <= 5; j++) {
      if (j <= n)
        lua_rawgeti(S, t, j);
      else
        lua_pushnil(S);
    }
    int nargs = n > 5 ? 5 : (n < 1 ? 1 : n);
    lua_settop(S, t + nargs);
    lua_remove(S, t);
    diff_case(&pr, nargs, &stt, 0);
  }
  lua_pop(S, 1);
  fprintf(stderr, "[ hand-written ] %lu cases, %lu with errors (same text), %lu mismatches\n",
          stt.cases, stt.errors, stt.mismatches);
  assert_true(stt.cases > 5000);
  assert_int_equal(stt.mismatches, 0);
  pair_close(&pr);
}

/* ---- random corpus ------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}
static uint32_t rndn(uint32_t n) { return rnd() % n; }
static const char *pick(const char *const *v, size_t n) { return v[rndn((uint32_t)n)]; }
#define PICK(v) pick(v, sizeof v / sizeof v[0])

static const char SUBJ_CHARS[] = "aaabbbccxyz  ()[]'.%-1A9\t_^$\0";

static size_t gen_subject(char *out) {
  size_t len = rndn(4) == 0 ? rndn(6) : rndn(41);
  for (size_t i = 0; i < len; i++) out[i] = SUBJ_CHARS[rndn(sizeof SUBJ_CHARS)];
  return len;
}

static size_t gen_pattern(char *out) {
  static const char *const lits[] = {"a", "a", "b", "b", "c", "x", " ", "'", "-", "_", "1", "A",
                                     "%.", "%%", "%(", "%)", "%-", "%[", "%]", "%^", "%$", "\t",
                                     "]", "^", "\0"};
  static const char *const classes[] = {"%a", "%c", "%d", "%g", "%l", "%p", "%s", "%u", "%w",
                                        "%x", "%A", "%C", "%D", "%G", "%L", "%P", "%S", "%U",
                                        "%W", "%X", "%z", "%Q", "."};
  static const char *const setparts[] = {"a", "b", "a-c", "x-z", "%d", "%a", "%s", "%]", "-",
                                         "%%", ".", "(", "'", "%W", "\0-\037"};
  static const char *const specials[] = {"(", "(", ")", ")", "()", "%b()", "%bab", "%b''", "%b[]",
                                         "%f[%w]", "%f[^a]", "%f[a-c]", "%f[%s]", "%1", "%2",
                                         "%1", "%0", "$", "(", ")"};
  static const char *const broken[] = {"%", "[a", "[", "%f", "%fa", "%b", "%ba", "[^", "%f[a"};
  size_t n = 0;
  if (rndn(5) == 0) out[n++] = '^';
  int items = (int)rndn(13);
  for (int k = 0; k < items; k++) {
    int kind = (int)rndn(20);
    const char *piece = NULL;
    if (kind < 7) {
      piece = PICK(lits);
    } else if (kind < 11) {
      piece = PICK(classes);
    } else if (kind < 14) {
      char set[64];
      size_t m = 0;
      set[m++] = '[';
      if (rndn(3) == 0) set[m++] = '^';
      if (rndn(8) == 0) set[m++] = ']';
      int parts = 1 + (int)rndn(3);
      for (int q = 0; q < parts; q++) {
        const char *sp = PICK(setparts);
        size_t sl = sp[0] ? strlen(sp) : 1;
        if (sp[0] == '\0') sl = 4; /* "\0-\037" */
        memcpy(set + m, sp, sl);
        m += sl;
      }
      set[m++] = ']';
      memcpy(out + n, set, m);
      n += m;
    } else if (kind < 19) {
      piece = PICK(specials);
    } else {
      piece = PICK(broken);
    }
    if (piece) {
      size_t pl = piece[0] ? strlen(piece) : 1;
      memcpy(out + n, piece, pl);
      n += pl;
    }
    /* quantifier on whatever came last (even where it is then a literal) */
    if (rndn(10) < 4) out[n++] = "*+-?"[rndn(4)];
  }
  if (rndn(5) == 0) out[n++] = '$';
  return n;
}

static void push_init(lua_State *L) {
  switch (rndn(8)) {
  case 0: case 1: case 2: lua_pushnil(L); break;
  case 3: lua_pushinteger(L, (lua_Integer)rndn(40) - 20); break;
  case 4: lua_pushinteger(L, (lua_Integer)rndn(6)); break;
  case 5: lua_pushinteger(L, rndn(2) ? LUA_MININTEGER : LUA_MAXINTEGER); break;
  default: lua_pushinteger(L, 1 + (lua_Integer)rndn(35)); break;
  }
}

static void differential_random(void **st) {
  (void)st;
  pair_t pr;
  pair_open(&pr);
  pr.lim.max_steps = 200000; /* cases that need more are skipped (stock could run for long) */
  long total = 100000;
  const char *env = getenv("SL_LP_RANDOM_CASES");
  if (env) total = atol(env);
  const char *seed = getenv("SL_LP_SEED");
  if (seed) rng_state = strtoull(seed, NULL, 0) | 1;
  lua_State *S = pr.stock;
  static const char *const repls[] = {"<%0>", "%1", "%2", "%1%2", "x", "", "%%", "%", "%a", "#T",
                                      "#F", "#N", "#E", "%0%0", "[%1]"};
  stats_t stt = {0};
  char subj[64], pat[256];
  for (long i = 0; i < total; i++) {
    size_t ls = gen_subject(subj);
    size_t lp = gen_pattern(pat);
    int kind = (int)rndn(4);
    static const char *const kinds[] = {"find", "match", "gmatch", "gsub"};
    lua_pushstring(S, kinds[kind]);
    lua_pushlstring(S, subj, ls);
    lua_pushlstring(S, pat, lp);
    int nargs = 3;
    if (kind == 3) {
      if (rndn(10) == 0)
        lua_pushinteger(S, 42);
      else
        lua_pushstring(S, PICK(repls));
      if (rndn(3) == 0)
        lua_pushinteger(S, (lua_Integer)rndn(5) - 1);
      else
        lua_pushnil(S);
      nargs = 5;
    } else {
      push_init(S);
      nargs = 4;
      if (kind == 0 && rndn(4) == 0) {
        lua_pushboolean(S, 1);
        nargs = 5;
      }
    }
    diff_case(&pr, nargs, &stt, 1);
  }
  fprintf(stderr,
          "[ random ] %lu cases, %lu skipped over the step budget, %lu with errors (same text), "
          "%lu mismatches\n",
          stt.cases, stt.skipped, stt.errors, stt.mismatches);
  assert_int_equal(stt.mismatches, 0);
  assert_true(stt.skipped * 100 < stt.cases);
  pair_close(&pr);
}

/* ---- budget ---------------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs code in L (a chunk returning nothing); returns the error text or NULL. */
static const char *run_code(lua_State *L, const char *code) {
  lua_settop(L, 0);
  if (luaL_loadstring(L, code) != LUA_OK) return lua_tostring(L, -1);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) return lua_tostring(L, -1);
  return NULL;
}

static void pathological_find_stops_within_budget(void **st) {
  (void)st;
  sl_lua_pattern_limits_t lim = {.max_steps = 1000000};
  lua_State *L = new_state(&lim);
  double t0 = now_s();
  const char *err =
      run_code(L, "local s = string.rep('a', 50000); local r = string.find(s, '.-.-.-.-.-b')");
  double el = now_s() - t0;
  assert_non_null(err);
  assert_non_null(strstr(err, "pattern too complex: more than 1000000 steps (lua_pattern_steps)"));
  assert_true(lim.steps_used <= lim.max_steps);
  assert_true(el < 30.0); /* a hang guard only: the bound that matters is steps_used */
  /* The default budget (10M) too, and the other three functions. */
  lim.max_steps = 10000000;
  const char *const codes[] = {
      "string.find(string.rep('a', 50000), '.-.-.-.-.-b')",
      "string.match(string.rep('a', 50000), '(.-)(.-)(.-)(.-)(.-)b')",
      "for x in string.gmatch(string.rep('a', 50000), 'a*a*a*a*b') do end",
      "string.gsub(string.rep('a', 50000), '.-.-.-.-.-b', 'x')",
      "string.find(string.rep('a', 5000), string.rep('a*', 30) .. 'b')",
      "string.find(string.rep('(', 30000), '%b()')",
      "string.find(string.rep('a', 30000), '(a*)%1%1b')",
      "string.find(string.rep('ax', 30000), '[ax]-[ax]-[ax]-[ax]-%f[y]')",
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    t0 = now_s();
    err = run_code(L, codes[i]);
    el = now_s() - t0;
    if (!err || !strstr(err, "more than 10000000 steps (lua_pattern_steps)"))
      fail_msg("%s: %s", codes[i], err ? err : "no error");
    assert_true(lim.steps_used <= lim.max_steps);
    assert_true(el < 30.0); /* a hang guard only: the bound that matters is steps_used */
  }
  /* The budget is per call: a gmatch loop of many cheap iterations is fine, the
   * same work in one gsub call is not. */
  lim.max_steps = 200;
  assert_null(run_code(L, "local n = 0 for w in string.gmatch(string.rep('word ', 2000), '%a+') do "
                          "n = n + 1 end assert(n == 2000)"));
  err = run_code(L, "string.gsub(string.rep('word ', 2000), '%a+', 'x')");
  assert_non_null(err);
  assert_non_null(strstr(err, "more than 200 steps"));
  /* After an error the next call starts afresh. */
  assert_null(run_code(L, "assert(string.find('hello', 'l+') == 3)"));
  assert_true(lim.steps_used > 0 && lim.steps_used < 50);
  lua_close(L);
}

static void deadline_stops_matching(void **st) {
  (void)st;
  sl_lua_pattern_limits_t lim = {.max_steps = 0};
  lua_State *L = new_state(&lim);
  /* Deadline already passed. */
  lim.deadline_ns = pm_now_ns() - 1;
  double t0 = now_s();
  const char *err = run_code(L, "string.find(string.rep('a', 50000), '.-.-.-.-.-b')");
  assert_non_null(err);
  assert_non_null(strstr(err, "pattern matching exceeded the time limit (lua_timeout)"));
  assert_true(now_s() - t0 < 10.0); /* hang guard: a passed deadline stops at the first check */
  /* Deadline 50 ms ahead, no step limit. */
  lim.max_steps = UINT64_MAX;
  lim.deadline_ns = pm_now_ns() + 50000000ull;
  t0 = now_s();
  err = run_code(L, "string.gsub(string.rep('a', 50000), '.-.-.-.-.-b', '')");
  double el = now_s() - t0;
  assert_non_null(err);
  assert_non_null(strstr(err, "exceeded the time limit (lua_timeout)"));
  assert_true(el >= 0.049 && el < 10.0); /* not before the deadline; upper: hang guard */
  /* Cheap calls before the deadline are not affected. */
  lim.deadline_ns = pm_now_ns() + 1000000000ull;
  assert_null(run_code(L, "assert(select(2, string.gsub('a b c', '%a', 'x')) == 3)"));
  lua_close(L);
}

static void deep_nesting_errors_cleanly(void **st) {
  (void)st;
  sl_lua_pattern_limits_t lim = {.max_steps = 10000000};
  lua_State *L = new_state(&lim);
  const char *err = run_code(L, "string.find(string.rep('a', 5000), string.rep('a?', 5000))");
  assert_non_null(err);
  assert_non_null(strstr(err, "pattern too complex (nesting)"));
  err = run_code(L, "string.match(string.rep('a', 1000), string.rep('a*', 1000) .. 'b')");
  assert_non_null(err);
  assert_true(strstr(err, "pattern too complex") != NULL);
  err = run_code(L, "string.find('x', string.rep('(', 1000))");
  assert_non_null(strstr(err, "too many captures"));
  /* A long pattern without choice points is no nesting at all. */
  assert_null(run_code(L, "local s = string.rep('ab', 20000) "
                          "assert(string.find(s, s) == 1) assert(string.match(s, '^' .. "
                          "string.rep('%a', 40000) .. '$') == s)"));
  /* The state is fine afterwards. */
  assert_null(run_code(L, "assert(string.match('key=val', '(%w+)=(%w+)') == 'key')"));
  lua_close(L);
}

typedef struct capped {
  size_t used, cap;
} capped_t;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  capped_t *c = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    c->used -= old;
    return NULL;
  }
  if (nsize > old && c->used - old + nsize > c->cap) return NULL;
  void *p = realloc(ptr, nsize);
  if (!p) return NULL;
  c->used = c->used - old + nsize;
  return p;
}

static void gsub_under_memory_cap(void **st) {
  (void)st;
  capped_t cap = {0, (size_t)64 << 20};
  sl_lua_pattern_limits_t lim = {.max_steps = 0};
  lua_State *L = lua_newstate(capped_alloc, &cap);
  assert_non_null(L);
  luaL_openlibs(L);
  lua_getglobal(L, "string");
  assert_int_equal(sl_lua_patterns_install(L, -1, &lim), 0);
  lua_pop(L, 1);
  assert_null(run_code(L, "big = string.rep('a', 1 << 20)"));
  cap.cap = cap.used + ((size_t)6 << 20);
  lua_settop(L, 0);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "gsub");
  lua_getglobal(L, "big");
  lua_pushstring(L, "a");
  lua_pushstring(L, "%0%0%0%0%0%0%0%0%0%0");
  int rc = lua_pcall(L, 3, 2, 0);
  assert_int_equal(rc, LUA_ERRMEM);
  assert_string_equal(lua_tostring(L, -1), "not enough memory");
  assert_true(cap.used <= cap.cap);
  lua_settop(L, 0);
  /* Also through a function replacement and a table one. */
  const char *err = run_code(L, "local t = setmetatable({}, {__index = function(_, k) return k .. k .. k .. k .. k .. k .. k .. k end}) "
                                "string.gsub(big, 'a', t)");
  assert_non_null(err);
  assert_non_null(strstr(err, "not enough memory"));
  lua_gc(L, LUA_GCCOLLECT);
  assert_null(run_code(L, "assert(select(2, string.gsub(string.sub(big, 1, 1000), 'a', 'bb')) == 1000)"));
  lua_close(L);
}

/* Results of the step counter for some simple calls: a step per item attempt. */
static void steps_are_counted(void **st) {
  (void)st;
  sl_lua_pattern_limits_t lim = {0};
  lua_State *L = new_state(&lim);
  assert_null(run_code(L, "assert(string.find('abc', 'c', 1, true) == 3)"));
  assert_int_equal(lim.steps_used, 0);
  assert_null(run_code(L, "assert(string.match('abc', '^a') == 'a')"));
  assert_true(lim.steps_used >= 2 && lim.steps_used <= 3);
  assert_null(run_code(L, "assert(string.match(string.rep('x', 1000), 'x*') == string.rep('x', 1000))"));
  assert_true(lim.steps_used >= 1000 && lim.steps_used <= 1010);
  /* exactly at the limit is allowed */
  lim.max_steps = 1002;
  assert_null(run_code(L, "assert(#string.match(string.rep('x', 1000), 'x*') == 1000)"));
  lim.max_steps = 900;
  assert_non_null(run_code(L, "string.match(string.rep('x', 1000), 'x*')"));
  assert_int_equal(lim.steps_used, 900);
  lua_close(L);
}

static void install_rejects_bad_arguments(void **st) {
  (void)st;
  sl_lua_pattern_limits_t lim = {0};
  lua_State *L = luaL_newstate();
  lua_pushinteger(L, 1);
  assert_int_equal(sl_lua_patterns_install(L, -1, &lim), -1);
  lua_newtable(L);
  assert_int_equal(sl_lua_patterns_install(L, -1, NULL), -1);
  assert_int_equal(sl_lua_patterns_install(L, -1, &lim), 0);
  lua_getfield(L, -1, "gsub");
  assert_true(lua_iscfunction(L, -1));
  lua_close(L);
}

/* ---- throughput (printed with SL_LP_BENCH=1) ------------------------------------ */

static double bench_one(lua_State *L, const char *fn, const char *s, const char *p, const char *extra,
                        int iters) {
  char code[1024], call[256];
  snprintf(call, sizeof call, "f(s, p%s)", extra);
  extra = call;
  snprintf(code, sizeof code,
           "local f, s, p = string.%s, %s, %s local t0 = os.clock() "
           "for i = 1, %d do %s end return os.clock() - t0",
           strcmp(fn, "gmatch_all") == 0 ? "gmatch" : fn, s, p, iters,
           strcmp(fn, "gmatch_all") == 0 ? "for a, b in f(s, p) do end" : extra);
  if (luaL_dostring(L, code) != LUA_OK) fail_msg("bench: %s", lua_tostring(L, -1));
  double t = lua_tonumber(L, -1);
  lua_settop(L, 0);
  return t * 1e9 / iters;
}

static void throughput_vs_stock(void **st) {
  (void)st;
  if (!getenv("SL_LP_BENCH")) {
    skip();
    return;
  }
  pair_t pr;
  pair_open(&pr);
  pr.lim.max_steps = 10000000;
  static const struct {
    const char *fn, *s, *p, *extra;
    int iters;
  } b[] = {
      {"find", "'hello world, this is a line of text'", "'line'", "", 2000000},
      {"find", "'hello world, this is a line of text'", "'l[aeiou]ne'", "", 1000000},
      {"match", "'key=value'", "'^(%w+)=(%w+)$'", "", 1000000},
      {"match", "'  some text with spaces   '", "'^%s*(.-)%s*$'", "", 1000000},
      {"match", "'2024-01-15T10:20:30Z'", "'(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)'", "", 1000000},
      {"find", "string.rep('a', 1000) .. 'b'", "'a*b'", "", 100000},
      {"find", "string.rep('ab ', 300)", "'%f[%w]%w+$'", "", 10000},
      {"gsub", "'hello world from lua'", "'o'", ", '0'", 1000000},
      {"gsub", "string.rep('hello world ', 100)", "'%w+'", ", '<%0>'", 20000},
      {"gmatch", "string.rep('k=v, ', 100)", "'(%w+)=(%w+)'", "", 1000000},
      {"gmatch_all", "string.rep('k=v, ', 100)", "'(%w+)=(%w+)'", "", 10000},
      {"gmatch_all", "string.rep('word ', 100)", "'%a+'", "", 10000},
      {"find", "string.rep('x', 10000) .. 'y'", "'[xyz]-y'", "", 2000},
  };
  fprintf(stderr, "%-8s %-44s %10s %10s %6s\n", "fn", "pattern", "stock ns", "ours ns", "ratio");
  for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
    double s0 = bench_one(pr.stock, b[i].fn, b[i].s, b[i].p, b[i].extra, b[i].iters);
    double m0 = bench_one(pr.mine, b[i].fn, b[i].s, b[i].p, b[i].extra, b[i].iters);
    double s1 = bench_one(pr.stock, b[i].fn, b[i].s, b[i].p, b[i].extra, b[i].iters);
    double m1 = bench_one(pr.mine, b[i].fn, b[i].s, b[i].p, b[i].extra, b[i].iters);
    double s = s0 < s1 ? s0 : s1, m = m0 < m1 ? m0 : m1;
    fprintf(stderr, "%-8s %-44s %10.1f %10.1f %6.2f\n", b[i].fn, b[i].p, s, m, m / s);
  }
  pair_close(&pr);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(install_rejects_bad_arguments),
      cmocka_unit_test(differential_handwritten),
      cmocka_unit_test(differential_random),
      cmocka_unit_test(pathological_find_stops_within_budget),
      cmocka_unit_test(deadline_stops_matching),
      cmocka_unit_test(deep_nesting_errors_cleanly),
      cmocka_unit_test(gsub_under_memory_cap),
      cmocka_unit_test(steps_are_counted),
      cmocka_unit_test(throughput_vs_stock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
