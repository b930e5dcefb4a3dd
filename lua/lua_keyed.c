/*
 * lua_keyed.c - state for Lua operators (SDK 1.2): keyed state handles
 * (ctx:value_state, ctx:list_state, ctx:map_state), operator state
 * (ctx:op_state_put in snapshot, ctx:op_state_get in open) and
 * ctx:checkpoint_restored().
 *
 * A handle is a full userdata holding the host's sl_state_t and the state's
 * name (for messages); its methods are C functions over the sl_state_*()
 * calls. Keyed state is scoped to the current record's key, so its methods
 * work in process() only; the host turns process_batch off for an instance
 * that declares keyed state (lua_plugin.c then calls `process`).
 *
 * Encoding of stored values and map keys (one tag byte, then the payload).
 * State written by a Lua operator is meant to be read back by a Lua operator
 * only; the tag keeps each value's Lua type across the round trip:
 *
 *   's' <bytes>            string (any bytes, NULs included)
 *   'i' <8 bytes>          integer: int64, little-endian two's complement
 *   'd' <8 bytes>          float: IEEE-754 binary64 bits, little-endian
 *   'b' <1 byte: 0 | 1>    boolean
 *   'j' <JSON text>        table, through sluice.json.encode / decode (lua-cjson):
 *                          it round-trips as JSON does (2.0 inside a table reads
 *                          back as 2; integer keys of a table that is not an
 *                          array become strings; sluice.json.null stays null)
 *
 * Map keys use the same encoding, after the normalisation Lua applies to
 * table keys: a float with an integral value is stored as the integer (so
 * m:put(1.0, x) and m:get(1) meet), NaN is refused. Table keys are compared
 * by their JSON text.
 *
 * Bytes the host returns are valid only until its next state call: each is
 * copied into a Lua string (or decoded into a value) at once.
 *
 * Bounds: every method does a fixed amount of work, except st:values() and
 * st:pairs(), which copy a whole list or map into a new table: that table
 * lives in the task's Lua state, so the memory cap (lua_memory_mb) bounds
 * them, and they check the call's lua_timeout deadline as they go.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_host.h"

#define MT_VALUE "sluice.value_state"
#define MT_LIST "sluice.list_state"
#define MT_MAP "sluice.map_state"
#define CHECK_EVERY 1024u
/* Scratch buffers larger than this are freed after use, not kept. */
#define SCRATCH_KEEP (64u * 1024u)

typedef struct lstate {
  sl_state_t *st;
  sl_state_kind_t kind;
  char name[]; /* NUL-terminated */
} lstate_t;

static const char *kind_word(sl_state_kind_t k) {
  return k == SL_STATE_VALUE ? "value" : k == SL_STATE_LIST ? "list" : "map";
}

const char *sl_lua_phase_name(sl_lua_phase_t ph) {
  switch (ph) {
  case SL_LUA_PH_LOAD: return "the script's main chunk";
  case SL_LUA_PH_OPEN: return "open";
  case SL_LUA_PH_PROCESS: return "process";
  case SL_LUA_PH_BATCH: return "process_batch";
  case SL_LUA_PH_ON_END: return "on_end";
  case SL_LUA_PH_CLOSE: return "close";
  case SL_LUA_PH_SNAPSHOT: return "snapshot";
  case SL_LUA_PH_COMMIT: return "commit";
  case SL_LUA_PH_NONE: break;
  }
  return "no callback";
}

/* ------------------------------------------------------------ encoding */

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* A scratch buffer of at least n bytes (kbuf or vbuf of the host). */
static unsigned char *scratch(lua_State *L, unsigned char **buf, size_t *cap, size_t n) {
  if (n > *cap) {
    size_t want = n < 64 ? 64 : n;
    unsigned char *p = realloc(*buf, want);
    if (!p) {
      luaL_error(L, "out of memory encoding a state value");
      return NULL;
    }
    *buf = p;
    *cap = want;
  }
  return *buf;
}

/* Big scratch buffers are not kept between calls. */
static void scratch_trim(sl_lua_host_t *h) {
  if (h->kcap > SCRATCH_KEEP) {
    free(h->kbuf);
    h->kbuf = NULL;
    h->kcap = 0;
  }
  if (h->vcap > SCRATCH_KEEP) {
    free(h->vbuf);
    h->vbuf = NULL;
    h->vcap = 0;
  }
}

typedef struct enc {
  const void *p;
  size_t len;
} enc_t;

/*
 * Encodes the Lua value at idx (see the top of this file) into the host's
 * key or value scratch (valid until the next encode into the same one).
 * `what` names the argument in messages. A table is JSON-encoded first.
 */
static enc_t encode(lua_State *L, sl_lua_host_t *h, int idx, int as_key, const char *what) {
  unsigned char **buf = as_key ? &h->kbuf : &h->vbuf;
  size_t *cap = as_key ? &h->kcap : &h->vcap;
  idx = lua_absindex(L, idx);
  enc_t e = {NULL, 0};
  unsigned char *p;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    p = scratch(L, buf, cap, n + 1);
    p[0] = 's';
    memcpy(p + 1, s, n);
    e.len = n + 1;
    break;
  }
  case LUA_TNUMBER: {
    lua_Integer i;
    int is_int = lua_isinteger(L, idx);
    if (is_int) {
      i = lua_tointeger(L, idx);
    } else {
      lua_Number d = lua_tonumber(L, idx);
      if (as_key && isnan(d)) luaL_error(L, "%s is NaN (not a valid map key)", what);
      /* as a table key would: an integral float is the integer */
      if (as_key && lua_numbertointeger(floor(d), &i) && (lua_Number)i == d) {
        is_int = 1;
      } else {
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        p = scratch(L, buf, cap, 9);
        p[0] = 'd';
        put_u64(p + 1, bits);
        e.len = 9;
        break;
      }
    }
    p = scratch(L, buf, cap, 9);
    p[0] = 'i';
    put_u64(p + 1, (uint64_t)i);
    e.len = 9;
    break;
  }
  case LUA_TBOOLEAN:
    p = scratch(L, buf, cap, 2);
    p[0] = 'b';
    p[1] = (unsigned char)lua_toboolean(L, idx);
    e.len = 2;
    break;
  case LUA_TTABLE: {
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_jenc);
    lua_pushvalue(L, idx);
    int st = lua_pcall(L, 1, 1, 0);
    if (st == LUA_ERRMEM) lua_error(L);
    if (st != LUA_OK)
      luaL_error(L, "%s: cannot store this table as JSON: %s", what,
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "encoding failed");
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    p = scratch(L, buf, cap, n + 1);
    p[0] = 'j';
    memcpy(p + 1, s, n);
    e.len = n + 1;
    lua_pop(L, 1);
    break;
  }
  case LUA_TNIL:
  case LUA_TNONE:
    luaL_error(L, "%s is nil: a string, number, boolean or table is expected", what);
    break;
  default:
    luaL_error(L, "%s must be a string, number, boolean or table, got %s", what,
               luaL_typename(L, idx));
  }
  e.p = *buf;
  return e;
}

/* Pushes the Lua value of stored bytes (copied at once); raises when the
 * bytes are not in the encoding above. */
static void decode(lua_State *L, sl_lua_host_t *h, const void *ptr, size_t len, const char *what) {
  const unsigned char *p = ptr;
  if (len >= 1) {
    switch (p[0]) {
    case 's':
      lua_pushlstring(L, (const char *)p + 1, len - 1);
      return;
    case 'i':
      if (len != 9) break;
      lua_pushinteger(L, (lua_Integer)get_u64(p + 1));
      return;
    case 'd': {
      if (len != 9) break;
      uint64_t bits = get_u64(p + 1);
      double d;
      memcpy(&d, &bits, sizeof(d));
      lua_pushnumber(L, (lua_Number)d);
      return;
    }
    case 'b':
      if (len != 2 || p[1] > 1) break;
      lua_pushboolean(L, p[1]);
      return;
    case 'j':
      lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_jdec);
      lua_pushlstring(L, (const char *)p + 1, len - 1); /* copied before any other state call */
      lua_call(L, 1, 1);
      return;
    }
  }
  luaL_error(L, "%s: the stored bytes are not a value written by a Lua operator (%d bytes)", what,
             (int)len);
}

/* ------------------------------------------------------------- handles */

static lstate_t *check(lua_State *L, const char *mt, const char *method) {
  lstate_t *s = luaL_testudata(L, 1, mt);
  if (!s)
    luaL_error(L, "%s(): call it with ':' on a %s handle, st:%s(...) (got %s as self)", method,
               mt + 7 /* "sluice." */, method, luaL_typename(L, 1));
  return s;
}

/* The handle's state is usable now: in process, where a record's key is current. */
static sl_lua_host_t *usable(lua_State *L, lstate_t *s, const char *method) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  if (!h->in_call || h->phase != SL_LUA_PH_PROCESS)
    luaL_error(L,
               "%s state '%s': %s() is only allowed in process(rec, ctx), where a record's key is "
               "current (called in %s)",
               kind_word(s->kind), s->name, method, sl_lua_callback_name(h));
  return h;
}

/* rc of a host call other than 0 / SL_ENOTFOUND: raise. */
static void host_error(lua_State *L, sl_lua_host_t *h, lstate_t *s, const char *method, int rc) {
  scratch_trim(h);
  luaL_error(L, "%s state '%s': %s(): %s", kind_word(s->kind), s->name, method,
             sl_strerror(h->ctx, rc));
}

static void what_of(char *buf, size_t n, lstate_t *s, const char *method, const char *arg) {
  snprintf(buf, n, "%s state '%.60s': %s(): %s", kind_word(s->kind), s->name, method, arg);
}

/* Raise within the call's lua_timeout while copying a big list or map. */
static void check_deadline(lua_State *L, sl_lua_host_t *h, lstate_t *s, const char *method) {
  if (sl_lua_deadline_passed(h))
    luaL_error(L, "%s state '%s': %s() exceeded the time limit of %d ms per call (lua_timeout)",
               kind_word(s->kind), s->name, method, (int)h->lim.timeout_ms);
}

/* Shared by value get, list get and map get: push the bytes, or nil. */
static int push_found(lua_State *L, sl_lua_host_t *h, lstate_t *s, const char *method, int rc,
                      const sl_bytes_t *b) {
  if (rc == SL_ENOTFOUND) return lua_pushnil(L), 1;
  if (rc != 0) host_error(L, h, s, method, rc);
  char what[128];
  what_of(what, sizeof(what), s, method, "value");
  decode(L, h, b->ptr, b->len, what);
  return 1;
}

/* --- value state */

static int value_get(lua_State *L) {
  lstate_t *s = check(L, MT_VALUE, "get");
  sl_lua_host_t *h = usable(L, s, "get");
  sl_bytes_t b;
  int rc = sl_state_get(h->ctx, s->st, &b);
  return push_found(L, h, s, "get", rc, &b);
}

static int value_set(lua_State *L) {
  lstate_t *s = check(L, MT_VALUE, "set");
  sl_lua_host_t *h = usable(L, s, "set");
  char what[128];
  what_of(what, sizeof(what), s, "set", "the value");
  if (lua_isnoneornil(L, 2))
    return luaL_error(L, "%s is nil: use clear() to remove the value", what);
  enc_t v = encode(L, h, 2, 0, what);
  int rc = sl_state_put(h->ctx, s->st, v.p, v.len);
  scratch_trim(h);
  if (rc != 0) host_error(L, h, s, "set", rc);
  return 0;
}

/* clear() of any kind */
static int any_clear(lua_State *L) {
  lstate_t *s = luaL_testudata(L, 1, MT_VALUE);
  if (!s) s = luaL_testudata(L, 1, MT_LIST);
  if (!s) s = luaL_testudata(L, 1, MT_MAP);
  if (!s)
    return luaL_error(L, "clear(): call it with ':' on a state handle, st:clear() (got %s as self)",
                      luaL_typename(L, 1));
  sl_lua_host_t *h = usable(L, s, "clear");
  int rc = sl_state_clear(h->ctx, s->st);
  if (rc != 0 && rc != SL_ENOTFOUND) host_error(L, h, s, "clear", rc);
  return 0;
}

/* --- list state */

static int list_add(lua_State *L) {
  lstate_t *s = check(L, MT_LIST, "add");
  sl_lua_host_t *h = usable(L, s, "add");
  char what[128];
  what_of(what, sizeof(what), s, "add", "the value");
  enc_t v = encode(L, h, 2, 0, what);
  int rc = sl_state_list_append(h->ctx, s->st, v.p, v.len);
  scratch_trim(h);
  if (rc != 0) host_error(L, h, s, "add", rc);
  return 0;
}

static size_t list_count(lua_State *L, sl_lua_host_t *h, lstate_t *s, const char *method) {
  size_t n = 0;
  int rc = sl_state_list_count(h->ctx, s->st, &n);
  if (rc == SL_ENOTFOUND) return 0;
  if (rc != 0) host_error(L, h, s, method, rc);
  return n;
}

static int list_len(lua_State *L) {
  lstate_t *s = check(L, MT_LIST, "len");
  sl_lua_host_t *h = usable(L, s, "len");
  lua_pushinteger(L, (lua_Integer)list_count(L, h, s, "len"));
  return 1;
}

/* An integer argument >= min, or raise. */
static lua_Integer int_arg(lua_State *L, int idx, lstate_t *s, const char *method, const char *arg,
                           lua_Integer min) {
  int ok;
  lua_Integer i = lua_tointegerx(L, idx, &ok);
  if (!ok || lua_type(L, idx) != LUA_TNUMBER || i < min)
    luaL_error(L, "%s state '%s': %s(): %s must be an integer >= %d, got %s", kind_word(s->kind),
               s->name, method, arg, (int)min,
               lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
  return i;
}

/* get(i): 1-based, oldest first; nil past the end. */
static int list_get(lua_State *L) {
  lstate_t *s = check(L, MT_LIST, "get");
  sl_lua_host_t *h = usable(L, s, "get");
  lua_Integer i = int_arg(L, 2, s, "get", "the index", 1);
  sl_bytes_t b;
  int rc = sl_state_list_get(h->ctx, s->st, (size_t)(i - 1), &b);
  return push_found(L, h, s, "get", rc, &b);
}

static int list_trim_front(lua_State *L) {
  lstate_t *s = check(L, MT_LIST, "trim_front");
  sl_lua_host_t *h = usable(L, s, "trim_front");
  lua_Integer n = int_arg(L, 2, s, "trim_front", "n", 0);
  if (n == 0) return 0;
  int rc = sl_state_list_trim_front(h->ctx, s->st, (uint64_t)n > SIZE_MAX ? SIZE_MAX : (size_t)n);
  if (rc != 0 && rc != SL_ENOTFOUND) host_error(L, h, s, "trim_front", rc);
  return 0;
}

/* values(): a new table, oldest first. */
static int list_values(lua_State *L) {
  lstate_t *s = check(L, MT_LIST, "values");
  sl_lua_host_t *h = usable(L, s, "values");
  size_t n = list_count(L, h, s, "values");
  lua_createtable(L, n < (1u << 20) ? (int)n : (1 << 20), 0);
  char what[128];
  what_of(what, sizeof(what), s, "values", "value");
  for (size_t i = 0; i < n; i++) {
    if (i % CHECK_EVERY == CHECK_EVERY - 1) check_deadline(L, h, s, "values");
    sl_bytes_t b;
    int rc = sl_state_list_get(h->ctx, s->st, i, &b);
    if (rc == SL_ENOTFOUND) break;
    if (rc != 0) host_error(L, h, s, "values", rc);
    decode(L, h, b.ptr, b.len, what);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* --- map state */

static int map_get(lua_State *L) {
  lstate_t *s = check(L, MT_MAP, "get");
  sl_lua_host_t *h = usable(L, s, "get");
  char what[128];
  what_of(what, sizeof(what), s, "get", "the key");
  enc_t k = encode(L, h, 2, 1, what);
  sl_bytes_t b;
  int rc = sl_state_map_get(h->ctx, s->st, k.p, k.len, &b);
  scratch_trim(h); /* b points into the host, not the scratch */
  return push_found(L, h, s, "get", rc, &b);
}

static int map_put(lua_State *L) {
  lstate_t *s = check(L, MT_MAP, "put");
  sl_lua_host_t *h = usable(L, s, "put");
  char what[128];
  what_of(what, sizeof(what), s, "put", "the key");
  enc_t k = encode(L, h, 2, 1, what);
  what_of(what, sizeof(what), s, "put", "the value");
  if (lua_isnoneornil(L, 3))
    return luaL_error(L, "%s is nil: use remove(k) to remove a key", what);
  enc_t v = encode(L, h, 3, 0, what);
  int rc = sl_state_map_put(h->ctx, s->st, k.p, k.len, v.p, v.len);
  scratch_trim(h);
  if (rc != 0) host_error(L, h, s, "put", rc);
  return 0;
}

/* remove(k): true when the key was there. */
static int map_remove(lua_State *L) {
  lstate_t *s = check(L, MT_MAP, "remove");
  sl_lua_host_t *h = usable(L, s, "remove");
  char what[128];
  what_of(what, sizeof(what), s, "remove", "the key");
  enc_t k = encode(L, h, 2, 1, what);
  int rc = sl_state_map_remove(h->ctx, s->st, k.p, k.len);
  scratch_trim(h);
  if (rc != 0 && rc != SL_ENOTFOUND) host_error(L, h, s, "remove", rc);
  lua_pushboolean(L, rc == 0);
  return 1;
}

static int map_iter(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

/*
 * pairs(): for k, v in st:pairs() do ... end. The entries are copied into a
 * table first (so the loop may change the map, and nothing points into the
 * host's memory), in no particular order.
 */
static int map_pairs(lua_State *L) {
  lstate_t *s = check(L, MT_MAP, "pairs");
  sl_lua_host_t *h = usable(L, s, "pairs");
  lua_settop(L, 1);
  lua_pushcfunction(L, map_iter);
  lua_newtable(L);
  char kwhat[128], vwhat[128];
  what_of(kwhat, sizeof(kwhat), s, "pairs", "key");
  what_of(vwhat, sizeof(vwhat), s, "pairs", "value");
  size_t cursor = 0, n = 0;
  sl_bytes_t k, v;
  int rc;
  while ((rc = sl_state_map_next(h->ctx, s->st, &cursor, &k, &v)) == 0) {
    if (++n % CHECK_EVERY == 0) check_deadline(L, h, s, "pairs");
    decode(L, h, k.ptr, k.len, kwhat); /* no state call between the two decodes */
    decode(L, h, v.ptr, v.len, vwhat);
    lua_rawset(L, 3);
  }
  if (rc != SL_DONE && rc != SL_ENOTFOUND) host_error(L, h, s, "pairs", rc);
  lua_pushnil(L);
  return 3;
}

static int state_tostring(lua_State *L) {
  lstate_t *s = lua_touserdata(L, 1);
  lua_pushfstring(L, "%s state '%s'", kind_word(s->kind), s->name);
  return 1;
}

/* ---------------------------------------------------------- declaring */

/* ttl from a duration string: "250ms", "10s", "5m", "1h", "2d". -1 if bad. */
static int64_t parse_duration(const char *s) {
  const char *p = s;
  int64_t n = 0;
  if (*p < '0' || *p > '9') return -1;
  while (*p >= '0' && *p <= '9') {
    if (n > (INT64_MAX - 9) / 10) return -1;
    n = n * 10 + (*p++ - '0');
  }
  int64_t mul = strcmp(p, "ms") == 0  ? 1
                : strcmp(p, "s") == 0 ? 1000
                : strcmp(p, "m") == 0 ? 60000
                : strcmp(p, "h") == 0 ? 3600000
                : strcmp(p, "d") == 0 ? 86400000
                                      : 0;
  if (!mul || n > INT64_MAX / mul) return -1;
  return n * mul;
}

/* The TTL of a ttl value at idx (a duration string or integer ms); raises. */
static int64_t ttl_of(lua_State *L, int idx, const char *fn, const char *name) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    int ok;
    lua_Integer ms = lua_tointegerx(L, idx, &ok);
    if (!ok || ms < 0)
      luaL_error(L, "ctx:%s('%s'): ttl must be an integer number of ms >= 0, got %s", fn, name,
                 lua_tostring(L, idx));
    return ms;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *txt = lua_tolstring(L, idx, &len);
    int64_t ms = strlen(txt) == len ? parse_duration(txt) : -1;
    if (ms < 0)
      luaL_error(L, "ctx:%s('%s'): ttl '%s' is not a duration (like \"250ms\", \"10s\", \"5m\", "
                 "\"1h\", \"2d\")", fn, name, txt);
    return ms;
  }
  luaL_error(L, "ctx:%s('%s'): ttl must be a duration string (\"10m\") or integer ms, got %s", fn,
             name, luaL_typename(L, idx));
  return 0;
}

/* ctx:value_state(name [, opts]) and the others: opts is {ttl = "10m" | ms} or ms. */
static int declare(lua_State *L, sl_state_kind_t kind, const char *fn, const char *mt) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  size_t len = 0;
  const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
  if (!name || len == 0 || strlen(name) != len)
    return luaL_error(L, "ctx:%s(name [, opts]): name must be a non-empty string without '\\0', got %s",
                      fn, lua_type(L, 2) == LUA_TSTRING ? "a bad string" : luaL_typename(L, 2));
  if (!h->in_call || h->phase != SL_LUA_PH_OPEN)
    return luaL_error(L, "ctx:%s('%s'): keyed state is declared in open(ctx) only (called in %s)",
                      fn, name, sl_lua_callback_name(h));
  int64_t ttl = 0;
  int t = lua_type(L, 3);
  if (t == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "ttl") != 0)
        return luaL_error(L, "ctx:%s('%s'): unknown option %s (the only option is ttl)", fn, name,
                          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    }
    if (lua_getfield(L, 3, "ttl") != LUA_TNIL) ttl = ttl_of(L, -1, fn, name);
    lua_pop(L, 1);
  } else if (t == LUA_TNUMBER) {
    ttl = ttl_of(L, 3, fn, name);
  } else if (t != LUA_TNIL && t != LUA_TNONE) {
    return luaL_error(L, "ctx:%s('%s'): opts must be a table ({ttl = \"10m\"}) or a ttl in ms, got %s",
                      fn, name, luaL_typename(L, 3));
  }
  /* A name is one kind for the whole script (the host would refuse it with
   * a log line only; say it here). */
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_declared);
  if (lua_getfield(L, -1, name) == LUA_TNUMBER && lua_tointeger(L, -1) != (lua_Integer)kind)
    return luaL_error(L, "ctx:%s('%s'): '%s' is already declared as a %s state", fn, name, name,
                      kind_word((sl_state_kind_t)lua_tointeger(L, -1)));
  lua_pop(L, 1);
  sl_state_t *st = sl_state_declare(h->ctx, name, kind, ttl);
  if (!st)
    return luaL_error(L,
                      "ctx:%s('%s'): keyed state needs the node to have key_by (a JSON field, or "
                      "$key for the record key); the host refused the declaration, its log line "
                      "above says why",
                      fn, name);
  lua_pushinteger(L, kind);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  lstate_t *s = lua_newuserdatauv(L, sizeof(lstate_t) + len + 1, 0);
  s->st = st;
  s->kind = kind;
  memcpy(s->name, name, len + 1);
  luaL_setmetatable(L, mt);
  h->uses_state = 1;
  return 1;
}

static int ctx_value_state(lua_State *L) { return declare(L, SL_STATE_VALUE, "value_state", MT_VALUE); }
static int ctx_list_state(lua_State *L) { return declare(L, SL_STATE_LIST, "list_state", MT_LIST); }
static int ctx_map_state(lua_State *L) { return declare(L, SL_STATE_MAP, "map_state", MT_MAP); }

/* ------------------------------------------------------ operator state */

static const char *op_state_name(lua_State *L, const char *fn) {
  size_t len = 0;
  const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
  if (!name || len == 0 || strlen(name) != len)
    luaL_error(L, "ctx:%s: name must be a non-empty string without '\\0', got %s", fn,
               lua_type(L, 2) == LUA_TSTRING ? "a bad string" : luaL_typename(L, 2));
  return name;
}

/* ctx:op_state_put(name, value): in snapshot(ctx, id) only; value a string. */
static int ctx_op_state_put(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  const char *name = op_state_name(L, "op_state_put");
  if (!h->in_call || h->phase != SL_LUA_PH_SNAPSHOT)
    return luaL_error(L, "ctx:op_state_put('%s'): only allowed in snapshot(ctx, checkpoint_id) "
                      "(called in %s)", name, sl_lua_callback_name(h));
  if (lua_type(L, 3) != LUA_TSTRING)
    return luaL_error(L, "ctx:op_state_put('%s', value): value must be a string, got %s%s", name,
                      luaL_typename(L, 3),
                      lua_type(L, 3) == LUA_TTABLE ? " (encode it, e.g. sluice.json.encode(t))" : "");
  size_t len;
  const char *v = lua_tolstring(L, 3, &len);
  int rc = sl_op_state_put(h->ctx, name, v, len);
  if (rc != 0) return luaL_error(L, "ctx:op_state_put('%s'): %s", name, sl_strerror(h->ctx, rc));
  return 0;
}

/* ctx:op_state_get(name): in open only; the string the restored checkpoint
 * holds for name, or nil. */
static int ctx_op_state_get(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  const char *name = op_state_name(L, "op_state_get");
  if (!h->in_call || h->phase != SL_LUA_PH_OPEN)
    return luaL_error(L, "ctx:op_state_get('%s'): only allowed in open(ctx), where the restored "
                      "checkpoint is read (called in %s)", name, sl_lua_callback_name(h));
  sl_bytes_t b;
  int rc = sl_op_state_get(h->ctx, name, &b);
  if (rc == SL_ENOTFOUND) return lua_pushnil(L), 1;
  if (rc != 0) return luaL_error(L, "ctx:op_state_get('%s'): %s", name, sl_strerror(h->ctx, rc));
  lua_pushlstring(L, b.ptr ? b.ptr : "", b.len);
  return 1;
}

/* ctx:checkpoint_restored(): id of the checkpoint the job resumed from, 0 on a fresh start. */
static int ctx_checkpoint_restored(lua_State *L) {
  sl_lua_host_t *h = sl_lua_host_of(L);
  lua_pushinteger(L, (lua_Integer)sl_checkpoint_restored(h->ctx));
  return 1;
}

/* ------------------------------------------------------------ install */

static void new_mt(lua_State *L, const char *name, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, state_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

void sl_lua_keyed_install(sl_lua_host_t *h, int ctx_idx) {
  lua_State *L = h->L;
  ctx_idx = lua_absindex(L, ctx_idx);
  static const luaL_Reg value_m[] = {
      {"get", value_get}, {"set", value_set}, {"clear", any_clear}, {NULL, NULL}};
  static const luaL_Reg list_m[] = {{"add", list_add},       {"len", list_len},
                                    {"get", list_get},       {"trim_front", list_trim_front},
                                    {"values", list_values}, {"clear", any_clear},
                                    {NULL, NULL}};
  static const luaL_Reg map_m[] = {{"get", map_get},     {"put", map_put},
                                   {"remove", map_remove}, {"pairs", map_pairs},
                                   {"clear", any_clear}, {NULL, NULL}};
  new_mt(L, MT_VALUE, value_m);
  new_mt(L, MT_LIST, list_m);
  new_mt(L, MT_MAP, map_m);
  lua_newtable(L);
  h->ref_declared = luaL_ref(L, LUA_REGISTRYINDEX);

  static const luaL_Reg fns[] = {{"value_state", ctx_value_state},
                                 {"list_state", ctx_list_state},
                                 {"map_state", ctx_map_state},
                                 {"op_state_put", ctx_op_state_put},
                                 {"op_state_get", ctx_op_state_get},
                                 {"checkpoint_restored", ctx_checkpoint_restored},
                                 {NULL, NULL}};
  lua_pushvalue(L, ctx_idx);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
