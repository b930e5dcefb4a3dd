/* Budgeted Lua 5.4 pattern matching (see lua_pattern.h).
 *
 * Written from the Lua 5.4 reference manual, section 6.4.1 (patterns) and the
 * descriptions of string.find / match / gmatch / gsub.
 *
 * Design: the pattern is first translated into an array of 16-byte items
 * (one per pattern item: a single-character class with its quantifier, a run
 * of plain literal bytes, a capture bracket, %b, %f, a back-reference, the
 * final '$'). Every single-character class (byte, '.', %x, [set]) is a
 * 256-bit membership bitmap (shared static tables, [set]s built per pattern),
 * so the matcher never re-parses the pattern. Short patterns compile on the C
 * stack, long ones into a userdata sized by a counting pass (memory goes
 * through the state's allocator). A malformed construct becomes an error
 * item at the place where it appears: the error is raised when the matcher
 * reaches that item, which gives the same observable behaviour as a matcher
 * that reads the pattern as it goes (a malformed tail that is never reached
 * raises nothing, as in stock Lua).
 *
 * The matcher is a backtracking interpreter over the items. It recurses only
 * where a choice has to be remembered (after '?', '*', '+', '-' when something
 * follows); capture brackets need no recursion because the state a later item
 * reads is always rewritten on the current path first. Depth is bounded by
 * PM_MAXDEPTH.
 *
 * Budget: every item attempt and every character examined by a loop counts
 * one step; a back-reference comparison counts one step per 32 bytes. The
 * counter is compared against the next checkpoint; at a checkpoint (at most
 * PM_CHECK_EVERY steps apart) the total is compared with max_steps and the
 * clock with the deadline. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "lua_pattern.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

/* glibc's memmem (linear time); declared here in case this file is included
 * after <string.h> was read without _GNU_SOURCE. */
extern void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen);

#define PM_MAXCAP 32      /* captures per pattern, as stock LUA_MAXCAPTURES */
#define PM_MAXDEPTH 200   /* recursion bound of the matcher */
#define PM_CHECK_EVERY 4096
#define PM_STACK_ITEMS 40 /* patterns up to this many bytes compile on the C stack */

enum pm_op {
  OP_END,    /* pattern end: success */
  OP_EOS,    /* final '$' */
  OP_SINGLE, /* single-character class with quantifier q */
  OP_STR,    /* run of literal bytes without quantifiers */
  OP_OPEN,   /* '(' : capture a */
  OP_POS,    /* '()' : position capture a */
  OP_CLOSE,  /* ')' : closes capture a */
  OP_BAL,    /* %bxy : a = x, b = y */
  OP_FRONT,  /* %f[set] */
  OP_BREF,   /* %n : a = capture index, b = 1 when it is a position capture */
  OP_ERR     /* malformed pattern: a = error code, b = argument */
};

enum pm_quant { Q_ONE, Q_OPT, Q_STAR, Q_PLUS, Q_LAZY };

enum pm_err {
  E_ENDS_PCT,     /* malformed pattern (ends with '%') */
  E_MISS_BRACKET, /* malformed pattern (missing ']') */
  E_FRONT,        /* missing '[' after '%f' in pattern */
  E_BAL_ARGS,     /* malformed pattern (missing arguments to '%b') */
  E_CAP_INDEX,    /* invalid capture index %N */
  E_INV_CAP,      /* invalid pattern capture */
  E_TOO_MANY      /* too many captures */
};

typedef struct pm_item {
  uint8_t op, q;
  uint8_t a, b;       /* OP_SINGLE: a = the byte, b = 1 when the class is exactly that byte */
  uint32_t len;       /* OP_STR: length of the literal run */
  const uint8_t *set; /* OP_SINGLE, OP_FRONT: membership bitmap; OP_STR: the text */
} pm_item;

#define PM_IN(set, c) (((set)[(unsigned char)(c) >> 3] >> ((unsigned char)(c) & 7)) & 1u)

#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)

typedef struct pm_state {
  lua_State *L;
  const char *src, *end;
  int ncap; /* number of captures (static) */
  int depth;
  uint64_t count;      /* steps so far */
  uint64_t checkpoint; /* next count at which limits are checked */
  uint64_t max_steps;
  uint64_t deadline;
  sl_lua_pattern_limits_t *limits;
  struct {
    const char *init;
    ptrdiff_t len;
  } cap[PM_MAXCAP];
} pm_state;

/* ---- character classes ------------------------------------------------- */

/* Shared bitmaps: %a %c %d %g %l %p %s %u %w %x %z (index = position in
 * "acdglpsuwxz") and their complements, '.', and one per single byte.
 * %z (the zero byte) is not in the 5.4 manual but stock 5.4 still accepts it
 * (a 5.1 class), so it is kept for compatibility. */
#define PM_NCLASS 11
static uint8_t pm_class_bits[PM_NCLASS][32];
static uint8_t pm_nclass_bits[PM_NCLASS][32];
static uint8_t pm_any_bits[32];
static uint8_t pm_byte_bits[256][32];
static pthread_once_t pm_class_once = PTHREAD_ONCE_INIT;

static int pm_class_index(int lower) {
  switch (lower) {
  case 'a': return 0;
  case 'c': return 1;
  case 'd': return 2;
  case 'g': return 3;
  case 'l': return 4;
  case 'p': return 5;
  case 's': return 6;
  case 'u': return 7;
  case 'w': return 8;
  case 'x': return 9;
  case 'z': return 10;
  default: return -1;
  }
}

static void pm_set_add(uint8_t *set, unsigned c) { set[c >> 3] |= (uint8_t)(1u << (c & 7)); }

static void pm_class_init(void) {
  for (int c = 0; c < 256; c++) {
    int in[PM_NCLASS] = {isalpha(c), iscntrl(c), isdigit(c), isgraph(c), islower(c), ispunct(c),
                         isspace(c), isupper(c), isalnum(c), isxdigit(c), c == 0};
    for (int k = 0; k < PM_NCLASS; k++)
      if (in[k]) pm_set_add(pm_class_bits[k], (unsigned)c);
    pm_set_add(pm_byte_bits[c], (unsigned)c);
  }
  for (int k = 0; k < PM_NCLASS; k++)
    for (int b = 0; b < 32; b++) pm_nclass_bits[k][b] = (uint8_t)~pm_class_bits[k][b];
  memset(pm_any_bits, 0xff, sizeof pm_any_bits);
}

/* The bitmap of "%x": a class (complemented for an upper-case letter) or the
 * byte x itself. */
static const uint8_t *pm_escape_bits(unsigned char x) {
  int k = pm_class_index(tolower(x));
  if (k < 0) return pm_byte_bits[x];
  return isupper(x) ? pm_nclass_bits[k] : pm_class_bits[k];
}

/* ---- compilation --------------------------------------------------------- */

/* Parses the set whose '[' is at p[i]. Fills set and returns the index after
 * the closing ']', or (size_t)-1 when the ']' is missing. The first character
 * after '[' (or after '[^') is always a member, so "[]]" and "[^]]" work; a
 * '-' between two characters makes a range; "%x" is a class or x. */
static size_t pm_parse_set(const unsigned char *p, size_t lp, size_t i, uint8_t *set) {
  size_t j = i + 1;
  if (j < lp && p[j] == '^') j++;
  size_t first = j;
  /* find the closing bracket */
  for (;;) {
    if (j >= lp) return (size_t)-1;
    if (p[j++] == '%' && j < lp) j++;
    if (j < lp && p[j] == ']') break;
  }
  size_t close = j;
  memset(set, 0, 32);
  for (size_t k = first; k < close; k++) {
    if (p[k] == '%') {
      k++;
      const uint8_t *bits = pm_escape_bits(p[k]);
      for (int b = 0; b < 32; b++) set[b] |= bits[b];
    } else if (k + 2 < close && p[k + 1] == '-') {
      for (unsigned c = p[k]; c <= p[k + 2]; c++) pm_set_add(set, c);
      k += 2;
    } else {
      pm_set_add(set, p[k]);
    }
  }
  if (first != i + 1)
    for (int b = 0; b < 32; b++) set[b] = (uint8_t)~set[b];
  return close + 1;
}

typedef struct pm_prog {
  pm_item *items;      /* NULL: only count */
  uint8_t (*sets)[32]; /* storage of [set] bitmaps */
  size_t nitems, nsets;
  int ncap;
} pm_prog;

/* Translates p[0..lp) into items; the last is OP_END or OP_ERR (the rest of
 * the pattern after a malformed construct cannot be reached). Consecutive
 * plain literal bytes without quantifier become one OP_STR. With
 * pg->items == NULL only counts items and sets. */
static void pm_compile(const char *pat, size_t lp, pm_prog *pg) {
  const unsigned char *p = (const unsigned char *)pat;
  uint8_t kind[PM_MAXCAP]; /* 0 open, 1 closed, 2 position */
  uint8_t scratch_set[32];
  pm_item scratch;
  int level = 0;
  size_t i = 0, n = 0, nsets = 0;
  size_t run = SIZE_MAX, run_end = 0; /* the OP_STR item being extended, and where it ends in p */
  pm_item *it;
#define PM_FAIL(code, arg)                                                                         \
  do {                                                                                             \
    it->op = OP_ERR;                                                                               \
    it->a = (code);                                                                                \
    it->b = (uint8_t)(arg);                                                                        \
    goto done;                                                                                     \
  } while (0)
  for (;;) {
    it = pg->items ? &pg->items[n] : &scratch;
    if (i >= lp) {
      it->op = OP_END;
      break;
    }
    unsigned c = p[i];
    it->q = Q_ONE;
    it->a = it->b = 0;
    it->len = 0;
    it->set = NULL;
    if (c == '(') {
      if (level >= PM_MAXCAP) PM_FAIL(E_TOO_MANY, 0);
      if (i + 1 < lp && p[i + 1] == ')') {
        it->op = OP_POS;
        kind[level] = 2;
        i += 2;
      } else {
        it->op = OP_OPEN;
        kind[level] = 0;
        i++;
      }
      it->a = (uint8_t)level++;
    } else if (c == ')') {
      int l = level - 1;
      while (l >= 0 && kind[l] != 0) l--;
      if (l < 0) PM_FAIL(E_INV_CAP, 0);
      kind[l] = 1;
      it->op = OP_CLOSE;
      it->a = (uint8_t)l;
      i++;
    } else if (c == '$' && i + 1 == lp) {
      it->op = OP_EOS;
      i++;
    } else if (c == '%' && i + 1 < lp && p[i + 1] == 'b') {
      if (i + 3 >= lp) PM_FAIL(E_BAL_ARGS, 0);
      it->op = OP_BAL;
      it->a = p[i + 2];
      it->b = p[i + 3];
      i += 4;
    } else if (c == '%' && i + 1 < lp && p[i + 1] == 'f') {
      i += 2;
      if (i >= lp || p[i] != '[') PM_FAIL(E_FRONT, 0);
      uint8_t *set = pg->items ? pg->sets[nsets] : scratch_set;
      size_t next = pm_parse_set(p, lp, i, set);
      if (next == (size_t)-1) PM_FAIL(E_MISS_BRACKET, 0);
      nsets++;
      it->op = OP_FRONT;
      it->set = set;
      i = next;
    } else if (c == '%' && i + 1 < lp && isdigit(p[i + 1])) {
      int l = p[i + 1] - '1';
      if (l < 0 || l >= level || kind[l] == 0) PM_FAIL(E_CAP_INDEX, l + 1);
      it->op = OP_BREF;
      it->a = (uint8_t)l;
      it->b = kind[l] == 2;
      i += 2;
    } else {
      size_t at = i;
      int plain = 0;
      it->op = OP_SINGLE;
      if (c == '%') {
        if (i + 1 >= lp) PM_FAIL(E_ENDS_PCT, 0);
        unsigned x = p[i + 1];
        it->set = pm_escape_bits((unsigned char)x);
        if (pm_class_index(tolower(x)) < 0) {
          it->a = (uint8_t)x;
          it->b = 1;
        }
        i += 2;
      } else if (c == '[') {
        uint8_t *set = pg->items ? pg->sets[nsets] : scratch_set;
        size_t next = pm_parse_set(p, lp, i, set);
        if (next == (size_t)-1) PM_FAIL(E_MISS_BRACKET, 0);
        nsets++;
        it->set = set;
        i = next;
      } else if (c == '.') {
        it->set = pm_any_bits;
        i++;
      } else {
        it->set = pm_byte_bits[c];
        it->a = (uint8_t)c;
        it->b = 1;
        plain = 1;
        i++;
      }
      if (i < lp) {
        switch (p[i]) {
        case '?': it->q = Q_OPT; i++; break;
        case '*': it->q = Q_STAR; i++; break;
        case '+': it->q = Q_PLUS; i++; break;
        case '-': it->q = Q_LAZY; i++; break;
        default: break;
        }
      }
      if (plain && it->q == Q_ONE) {
        if (run != SIZE_MAX && run + 1 == n && run_end == at) {
          /* extends the literal run of the previous item */
          if (pg->items) pg->items[run].len++;
          run_end = i;
          continue;
        }
        it->op = OP_STR;
        it->set = p + at;
        it->len = 1;
        run = n;
        run_end = i;
      }
    }
    n++;
  }
done:
  pg->nitems = n + 1;
  pg->nsets = nsets;
  pg->ncap = level;
#undef PM_FAIL
}

/* ---- budget -------------------------------------------------------------- */

static uint64_t pm_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Called when count passed checkpoint. */
static void pm_checkpoint(pm_state *ms) {
  if (ms->max_steps && ms->count > ms->max_steps) {
    ms->limits->steps_used = ms->max_steps;
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)ms->max_steps);
    luaL_error(ms->L, "pattern too complex: more than %s steps (lua_pattern_steps)", num);
  }
  if (!ms->deadline && ms->limits->timeout_ns) {
    /* The callback's clock had not started yet (a pattern call at the very
     * start of process): start it here, shared with the host's hook. */
    if (!ms->limits->deadline_ns) ms->limits->deadline_ns = pm_now_ns() + ms->limits->timeout_ns;
    ms->deadline = ms->limits->deadline_ns;
  } else if (ms->deadline && pm_now_ns() >= ms->deadline) {
    ms->limits->steps_used = ms->count;
    luaL_error(ms->L, "pattern matching exceeded the time limit (lua_timeout)");
  }
  uint64_t next = ms->count + PM_CHECK_EVERY;
  if (ms->max_steps && next > ms->max_steps) next = ms->max_steps;
  ms->checkpoint = next;
}

#define PM_STEP(ms)                                                                                \
  do {                                                                                             \
    if (++(ms)->count > (ms)->checkpoint) pm_checkpoint(ms);                                       \
  } while (0)

#define PM_CHARGE(ms, n)                                                                           \
  do {                                                                                             \
    (ms)->count += (n);                                                                            \
    if ((ms)->count > (ms)->checkpoint) pm_checkpoint(ms);                                         \
  } while (0)

static void pm_state_init(pm_state *ms, lua_State *L, sl_lua_pattern_limits_t *lim, const char *s,
                          size_t ls, int ncap) {
  ms->L = L;
  ms->src = s;
  ms->end = s + ls;
  ms->ncap = ncap;
  ms->depth = 0;
  ms->count = 0;
  ms->limits = lim;
  ms->max_steps = lim->max_steps;
  ms->deadline = lim->deadline_ns;
  ms->checkpoint = PM_CHECK_EVERY;
  if (ms->max_steps && ms->checkpoint > ms->max_steps) ms->checkpoint = ms->max_steps;
}

static void pm_state_done(pm_state *ms) { ms->limits->steps_used = ms->count; }

/* ---- matcher ------------------------------------------------------------- */

static const char *pm_do(pm_state *ms, const char *s, const pm_item *it);

static const char *pm_call(pm_state *ms, const char *s, const pm_item *it) {
  if (ms->depth >= PM_MAXDEPTH) {
    ms->limits->steps_used = ms->count;
    luaL_error(ms->L, "pattern too complex (nesting)");
  }
  ms->depth++;
  const char *r = pm_do(ms, s, it);
  ms->depth--;
  return r;
}

static void pm_raise(pm_state *ms, const pm_item *it) {
  lua_State *L = ms->L;
  ms->limits->steps_used = ms->count;
  switch (it->a) {
  case E_ENDS_PCT: luaL_error(L, "malformed pattern (ends with '%%')"); break;
  case E_MISS_BRACKET: luaL_error(L, "malformed pattern (missing ']')"); break;
  case E_FRONT: luaL_error(L, "missing '[' after '%%f' in pattern"); break;
  case E_BAL_ARGS: luaL_error(L, "malformed pattern (missing arguments to '%%b')"); break;
  case E_CAP_INDEX: luaL_error(L, "invalid capture index %%%d", (int)it->b); break;
  case E_INV_CAP: luaL_error(L, "invalid pattern capture"); break;
  default: luaL_error(L, "too many captures"); break;
  }
}

/* Matches items from it at s; returns the end of the match or NULL. */
static const char *pm_do(pm_state *ms, const char *s, const pm_item *it) {
  const char *const end = ms->end;
  for (;;) {
    PM_STEP(ms);
    switch (it->op) {
    case OP_END: return s;
    case OP_EOS: return s == end ? s : NULL;
    case OP_SINGLE: {
      switch (it->q) {
      case Q_ONE:
        if (s < end && PM_IN(it->set, *s)) {
          s++;
          it++;
          continue;
        }
        return NULL;
      case Q_OPT:
        if (s < end && PM_IN(it->set, *s)) {
          const char *r = pm_call(ms, s + 1, it + 1);
          if (r) return r;
        }
        it++;
        continue;
      case Q_LAZY:
        for (;;) {
          const char *r = pm_call(ms, s, it + 1);
          if (r) return r;
          if (s < end && PM_IN(it->set, *s))
            s++;
          else
            return NULL;
        }
      default: { /* Q_STAR, Q_PLUS: longest run, then give back */
        size_t max = (size_t)(end - s), n = 0;
        const uint8_t *set = it->set;
        while (n < max && PM_IN(set, s[n])) {
          n++;
          PM_STEP(ms);
        }
        size_t min = it->q == Q_PLUS;
        if (n < min) return NULL;
        if (it[1].op == OP_END) return s + n;
        if (it[1].op == OP_EOS) return s + n == end ? end : NULL;
        for (;;) {
          const char *r = pm_call(ms, s + n, it + 1);
          if (r) return r;
          if (n == min) return NULL;
          n--;
        }
      }
      }
    }
    case OP_STR: {
      size_t len = it->len;
      if ((size_t)(end - s) < len || *s != (char)it->set[0]) return NULL;
      if (len > 1) {
        PM_CHARGE(ms, len - 1);
        if (memcmp(s + 1, it->set + 1, len - 1) != 0) return NULL;
      }
      s += len;
      it++;
      continue;
    }
    case OP_OPEN:
      ms->cap[it->a].init = s;
      ms->cap[it->a].len = CAP_UNFINISHED;
      it++;
      continue;
    case OP_POS:
      ms->cap[it->a].init = s;
      ms->cap[it->a].len = CAP_POSITION;
      it++;
      continue;
    case OP_CLOSE:
      ms->cap[it->a].len = s - ms->cap[it->a].init;
      it++;
      continue;
    case OP_BAL: {
      if (s >= end || *s != (char)it->a) return NULL;
      const char open = (char)it->a, close = (char)it->b;
      int depth = 1;
      const char *q = s + 1;
      for (;; q++) {
        if (q >= end) return NULL;
        PM_STEP(ms);
        if (*q == close) {
          if (--depth == 0) break;
        } else if (*q == open) {
          depth++;
        }
      }
      s = q + 1;
      it++;
      continue;
    }
    case OP_FRONT: {
      unsigned char prev = s == ms->src ? 0 : (unsigned char)s[-1];
      unsigned char cur = s < end ? (unsigned char)*s : 0;
      if (PM_IN(it->set, prev) || !PM_IN(it->set, cur)) return NULL;
      it++;
      continue;
    }
    case OP_BREF: {
      if (it->b) return NULL; /* a position capture is never matched as text */
      size_t len = (size_t)ms->cap[it->a].len;
      if ((size_t)(end - s) < len) return NULL;
      PM_CHARGE(ms, len >> 5);
      if (memcmp(ms->cap[it->a].init, s, len) != 0) return NULL;
      s += len;
      it++;
      continue;
    }
    default: pm_raise(ms, it); return NULL;
    }
  }
}

/* ---- results ------------------------------------------------------------- */

/* Pushes capture i (the whole match s..e when there are no captures and i == 0). */
static void pm_push_one(pm_state *ms, int i, const char *s, const char *e) {
  lua_State *L = ms->L;
  if (i >= ms->ncap) {
    if (i != 0) luaL_error(L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(L, s, (size_t)(e - s));
    return;
  }
  ptrdiff_t len = ms->cap[i].len;
  if (len == CAP_UNFINISHED) luaL_error(L, "unfinished capture");
  if (len == CAP_POSITION)
    lua_pushinteger(L, (lua_Integer)(ms->cap[i].init - ms->src) + 1);
  else
    lua_pushlstring(L, ms->cap[i].init, (size_t)len);
}

/* Pushes all captures (the whole match when there are none and s != NULL). */
static int pm_push_all(pm_state *ms, const char *s, const char *e) {
  int n = (ms->ncap == 0 && s) ? 1 : ms->ncap;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++) pm_push_one(ms, i, s, e);
  return n;
}

/* ---- helpers ------------------------------------------------------------- */

/* 1-based start position from a possibly negative or out-of-range init. */
static size_t pm_start(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0) return 1;
  if (pos < -(lua_Integer)len) return 1;
  return len + (size_t)pos + 1;
}

/* True when p has none of the characters that make a pattern differ from
 * plain text for find: ^ $ * + ? . ( [ % - */
static int pm_plain(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++) {
    switch (p[i]) {
    case '^': case '$': case '*': case '+': case '?':
    case '.': case '(': case '[': case '%': case '-': return 0;
    default: break;
    }
  }
  return 1;
}

static sl_lua_pattern_limits_t *pm_limits(lua_State *L) {
  return (sl_lua_pattern_limits_t *)lua_touserdata(L, lua_upvalueindex(1));
}

/* Compiles p into pg: into the caller's stack buffers when the pattern is
 * short, else into a userdata (sized by a counting pass) left on the stack. */
#define PM_STACK_SETS (PM_STACK_ITEMS / 3 + 1)
static void pm_prepare(lua_State *L, const char *p, size_t lp, pm_prog *pg, pm_item *local_items,
                       uint8_t (*local_sets)[32]) {
  if (lp <= PM_STACK_ITEMS) {
    pg->items = local_items;
    pg->sets = local_sets;
  } else {
    pg->items = NULL;
    pm_compile(p, lp, pg);
    size_t isz = pg->nitems * sizeof(pm_item);
    void *mem = lua_newuserdatauv(L, isz + pg->nsets * 32, 0);
    pg->items = (pm_item *)mem;
    pg->sets = (uint8_t(*)[32])((char *)mem + isz);
  }
  pm_compile(p, lp, pg);
}

/* When the first item is a literal byte that must occur, the next position at
 * or after s where it does (end when none); else s. */
static int pm_first_byte(const pm_item *first) {
  if (first->op == OP_STR) return (unsigned char)first->set[0];
  if (first->op == OP_SINGLE && first->b && (first->q == Q_ONE || first->q == Q_PLUS)) return first->a;
  return -1;
}

static const char *pm_skip(int byte, const char *s, const char *end) {
  if (byte < 0 || s >= end) return s;
  const char *q = memchr(s, byte, (size_t)(end - s));
  return q ? q : end;
}

/* Plain substring search: memchr + memcmp for short needles (at most 16n byte
 * comparisons), glibc's linear-time memmem for longer ones. */
static const char *pm_plain_find(const char *h, size_t lh, const char *n, size_t ln) {
  if (ln == 0) return h;
  if (ln > lh) return NULL;
  if (ln > 16) return memmem(h, lh, n, ln);
  const char *last = h + (lh - ln);
  while (h <= last) {
    const char *q = memchr(h, n[0], (size_t)(last - h) + 1);
    if (!q) return NULL;
    if (memcmp(q + 1, n + 1, ln - 1) == 0) return q;
    h = q + 1;
  }
  return NULL;
}

/* ---- find / match -------------------------------------------------------- */

static int pm_find_aux(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pm_start(luaL_optinteger(L, 3, 1), ls);
  if (init > ls + 1) {
    luaL_pushfail(L);
    return 1;
  }
  sl_lua_pattern_limits_t *lim = pm_limits(L);
  if (find && (lua_toboolean(L, 4) || pm_plain(p, lp))) {
    const char *hit = pm_plain_find(s + init - 1, ls - (init - 1), p, lp);
    lim->steps_used = 0;
    if (!hit) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
    lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
    return 2;
  }
  int anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  pm_item local_items[PM_STACK_ITEMS + 1];
  uint8_t local_sets[PM_STACK_SETS][32];
  pm_prog pg;
  pm_prepare(L, p, lp, &pg, local_items, local_sets);
  const pm_item *items = pg.items;
  pm_state ms;
  pm_state_init(&ms, L, lim, s, ls, pg.ncap);
  const char *s1 = s + init - 1;
  int first = anchor ? -1 : pm_first_byte(items);
  for (;;) {
    if (first >= 0) {
      s1 = pm_skip(first, s1, ms.end);
      if (s1 == ms.end) break; /* the first item needs a byte */
    }
    const char *e = pm_call(&ms, s1, items);
    if (e) {
      pm_state_done(&ms);
      if (find) {
        lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
        lua_pushinteger(L, (lua_Integer)(e - s));
        return pm_push_all(&ms, NULL, NULL) + 2;
      }
      return pm_push_all(&ms, s1, e);
    }
    if (anchor || s1 >= ms.end) break;
    s1++;
  }
  pm_state_done(&ms);
  luaL_pushfail(L);
  return 1;
}

static int pm_find(lua_State *L) { return pm_find_aux(L, 1); }
static int pm_match(lua_State *L) { return pm_find_aux(L, 0); }

/* ---- gmatch -------------------------------------------------------------- */

typedef struct pm_gmstate {
  const char *s;
  size_t ls;
  size_t pos;       /* next start offset; > ls when done */
  size_t lastmatch; /* end offset of the last match, SIZE_MAX before the first */
  int ncap;
  sl_lua_pattern_limits_t *limits;
  int first;
  pm_item items[]; /* then the [set] bitmaps */
} pm_gmstate;

static int pm_gmatch_next(lua_State *L) {
  pm_gmstate *gm = (pm_gmstate *)lua_touserdata(L, lua_upvalueindex(3));
  pm_state ms;
  pm_state_init(&ms, L, gm->limits, gm->s, gm->ls, gm->ncap);
  size_t pos = gm->pos;
  while (pos <= gm->ls) {
    const char *start = pm_skip(gm->first, gm->s + pos, ms.end);
    pos = (size_t)(start - gm->s);
    const char *e = pm_call(&ms, start, gm->items);
    if (e && (size_t)(e - gm->s) != gm->lastmatch) {
      gm->pos = gm->lastmatch = (size_t)(e - gm->s);
      pm_state_done(&ms);
      return pm_push_all(&ms, start, e);
    }
    pos++;
  }
  gm->pos = gm->ls + 1;
  pm_state_done(&ms);
  return 0;
}

static int pm_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pm_start(luaL_optinteger(L, 3, 1), ls) - 1; /* 0-based */
  if (init > ls) init = ls + 1;
  sl_lua_pattern_limits_t *lim = pm_limits(L);
  lua_settop(L, 2);
  /* In gmatch a leading '^' is an ordinary character (no anchor). */
  pm_prog pg = {0};
  pm_compile(p, lp, &pg); /* count */
  size_t isz = pg.nitems * sizeof(pm_item);
  pm_gmstate *gm = (pm_gmstate *)lua_newuserdatauv(L, sizeof(pm_gmstate) + isz + pg.nsets * 32, 0);
  pg.items = gm->items;
  pg.sets = (uint8_t(*)[32])((char *)gm->items + isz);
  pm_compile(p, lp, &pg);
  gm->s = s;
  gm->ls = ls;
  gm->pos = init;
  gm->lastmatch = SIZE_MAX;
  gm->limits = lim;
  gm->ncap = pg.ncap;
  gm->first = pm_first_byte(gm->items);
  lua_pushcclosure(L, pm_gmatch_next, 3); /* keeps s and p alive */
  return 1;
}

/* ---- gsub ---------------------------------------------------------------- */

static void pm_add_string(pm_state *ms, luaL_Buffer *b, const char *s, const char *e) {
  lua_State *L = ms->L;
  size_t l;
  const char *r = lua_tolstring(L, 3, &l);
  const char *re = r + l;
  while (r < re) {
    const char *pc = memchr(r, '%', (size_t)(re - r));
    if (!pc) {
      luaL_addlstring(b, r, (size_t)(re - r));
      return;
    }
    luaL_addlstring(b, r, (size_t)(pc - r));
    pc++;
    char d = pc < re ? *pc : '\0';
    if (d == '%') {
      luaL_addchar(b, '%');
    } else if (d == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit((unsigned char)d)) {
      pm_push_one(ms, d - '1', s, e);
      luaL_tolstring(L, -1, NULL);
      lua_remove(L, -2);
      luaL_addvalue(b);
    } else {
      luaL_error(L, "invalid use of '%%' in replacement string");
    }
    r = pc + 1;
  }
}

/* Appends the replacement of the match s..e; returns 1 when it changed the text. */
static int pm_add_value(pm_state *ms, luaL_Buffer *b, const char *s, const char *e, int tr) {
  lua_State *L = ms->L;
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = pm_push_all(ms, s, e);
    lua_call(L, n, 1);
  } else if (tr == LUA_TTABLE) {
    pm_push_one(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    pm_add_string(ms, b, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

static int pm_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int tr = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                   3, "string/function/table");
  sl_lua_pattern_limits_t *lim = pm_limits(L);
  int anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  lua_settop(L, 4);
  pm_item local_items[PM_STACK_ITEMS + 1];
  uint8_t local_sets[PM_STACK_SETS][32];
  pm_prog pg;
  pm_prepare(L, p, lp, &pg, local_items, local_sets);
  const pm_item *items = pg.items;
  pm_state ms;
  pm_state_init(&ms, L, lim, src, ls, pg.ncap);
  const char *s = src, *end = src + ls, *lastmatch = NULL;
  int first = anchor ? -1 : pm_first_byte(items);
  lua_Integer n = 0;
  int changed = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (n < max_n) {
    if (first >= 0) {
      const char *q = pm_skip(first, s, end);
      if (q != s) {
        luaL_addlstring(&b, s, (size_t)(q - s));
        s = q;
      }
      if (s == end) break;
    }
    const char *e = pm_call(&ms, s, items);
    if (e && e != lastmatch) {
      n++;
      changed |= pm_add_value(&ms, &b, s, e, tr);
      s = lastmatch = e;
    } else if (s < end) {
      luaL_addchar(&b, *s++);
    } else {
      break;
    }
    if (anchor) break;
  }
  pm_state_done(&ms);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, s, (size_t)(end - s));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

/* ---- install ------------------------------------------------------------- */

int sl_lua_patterns_install(lua_State *L, int string_table_index, sl_lua_pattern_limits_t *limits) {
  static const luaL_Reg fns[] = {
      {"find", pm_find}, {"match", pm_match}, {"gmatch", pm_gmatch}, {"gsub", pm_gsub}};
  if (!limits) return -1;
  int idx = lua_absindex(L, string_table_index);
  if (lua_type(L, idx) != LUA_TTABLE) return -1;
  pthread_once(&pm_class_once, pm_class_init);
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    lua_pushlightuserdata(L, limits);
    lua_pushcclosure(L, fns[i].func, 1);
    lua_setfield(L, idx, fns[i].name);
  }
  return 0;
}
