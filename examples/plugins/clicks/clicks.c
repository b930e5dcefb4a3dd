/*
 * clicks.c - an example Sluice plugin, built out of tree against the
 * installed SDK (see README.md) and in the Sluice tree for the examples.
 *
 * Operators:
 *  - parse_views  : click JSON -> {"product_id":"p17","ts":...}, keyed by
 *                   product, for the clicks whose action is config `action`.
 *  - count_by_key : counts records per key; at the end of input emits one
 *                   {"key":"...","count":N} per key, sorted by key.
 *  - add_field    : copies a JSON object and sets a field to true (a cheap
 *                   map for benchmarks).
 *
 * Everything here goes through sluice.h only. Records a callback emits point
 * into per-instance scratch buffers: the host copies them in sl_emit().
 * Buffers grow when a record needs more room, so steady state allocates
 * nothing per record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice.h>

/* ------------------------------------------------------------ helpers */

typedef struct buf {
  char *p;
  size_t cap;
} buf_t;

/* Make room for n bytes; returns 0 or SL_ENOMEM. Grows only, never shrinks. */
static int buf_reserve(buf_t *b, size_t n) {
  if (n <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < n) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return SL_ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

static char *put_i64(char *d, int64_t v) {
  char tmp[24];
  char *t = tmp + sizeof tmp;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--t = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--t = '-';
  size_t n = (size_t)(tmp + sizeof tmp - t);
  memcpy(d, t, n);
  return d + n;
}

/* JSON string body: escapes '"', '\\' and control characters (room: 6*n). */
static char *put_escaped(char *d, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *d++ = '\\';
      *d++ = (char)c;
    } else if (c < 0x20) {
      memcpy(d, "\\u00", 4);
      d[4] = hex[c >> 4];
      d[5] = hex[c & 15];
      d += 6;
    } else {
      *d++ = (char)c;
    }
  }
  return d;
}

/* A JSON number (integer, or with fraction/exponent) as integer ms. */
static int json_to_i64(const sl_json_value_t *v, int64_t *out) {
  if (v->type != SL_JSON_NUMBER || v->len == 0 || v->len > 40) return 0;
  char tmp[48];
  memcpy(tmp, v->ptr, v->len);
  tmp[v->len] = 0;
  char *end;
  long long ll = strtoll(tmp, &end, 10);
  if (*end == 0) {
    *out = ll;
    return 1;
  }
  double d = strtod(tmp, &end);
  if (*end != 0 || !(d > -9.2e18 && d < 9.2e18)) return 0;
  *out = (int64_t)d;
  return 1;
}

/* ------------------------------------------------------------ parse_views */

typedef struct views {
  const char *action; /* owned by the host, valid until close */
  size_t action_len;
  buf_t out;
} views_t;

static int views_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  views_t *v = calloc(1, sizeof *v);
  if (!v || buf_reserve(&v->out, 256)) {
    free(v);
    snprintf(errbuf, errbuf_len, "parse_views: out of memory");
    return SL_ENOMEM;
  }
  v->action = sl_config_string(ctx, "action");
  if (!v->action) v->action = "view";
  v->action_len = strlen(v->action);
  *state = v;
  return SL_OK;
}

static int views_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  views_t *v = state;
  sl_json_value_t pid, action, ts;
  int rc = sl_json_get(ctx, rec->value, rec->value_len, "product_id", &pid);
  if (rc == SL_ERECORD) {
    sl_set_error(ctx, "parse_views: value is not a JSON object");
    return SL_ERECORD;
  }
  if (rc != 0) {
    sl_set_error(ctx, "parse_views: no \"product_id\" field");
    return SL_ERECORD;
  }
  if (pid.type != SL_JSON_STRING) {
    sl_set_error(ctx, "parse_views: \"product_id\" is not a string");
    return SL_ERECORD;
  }
  if (sl_json_get(ctx, rec->value, rec->value_len, "action", &action) != 0 ||
      action.type != SL_JSON_STRING) {
    sl_set_error(ctx, "parse_views: no \"action\" string field");
    return SL_ERECORD;
  }
  if (action.len != v->action_len || memcmp(action.ptr, v->action, action.len) != 0)
    return SL_OK; /* another action: filtered out */

  int64_t t = rec->ts;
  if (sl_json_get(ctx, rec->value, rec->value_len, "ts", &ts) == 0 && !json_to_i64(&ts, &t)) {
    sl_set_error(ctx, "parse_views: \"ts\" is not a number");
    return SL_ERECORD;
  }

  /* The product id is copied as written (escapes included), so it stays valid JSON. */
  if (buf_reserve(&v->out, pid.len + 64)) {
    sl_set_error(ctx, "parse_views: out of memory");
    return SL_ENOMEM;
  }
  char *d = v->out.p;
  memcpy(d, "{\"product_id\":\"", 15);
  d += 15;
  memcpy(d, pid.ptr, pid.len);
  d += pid.len;
  memcpy(d, "\",\"ts\":", 7);
  d = put_i64(d + 7, t);
  *d++ = '}';

  sl_record_t out = {.key = pid.ptr,
                     .key_len = pid.len,
                     .value = v->out.p,
                     .value_len = (size_t)(d - v->out.p),
                     .ts = t,
                     .offset = rec->offset,
                     .headers = rec->headers,
                     .header_count = rec->header_count};
  return sl_emit(ctx, &out);
}

static void views_close(void *state) {
  views_t *v = state;
  if (!v) return;
  free(v->out.p);
  free(v);
}

/* ------------------------------------------------------------ count_by_key */

/* Open addressing, linear probing; a slot with count 0 is empty. */
typedef struct slot {
  uint64_t hash;
  size_t key_off; /* into the key arena */
  size_t key_len;
  uint64_t count;
  int64_t max_ts; /* the latest event time seen for the key */
} slot_t;

typedef struct counts {
  slot_t *slots;
  size_t cap; /* power of two */
  size_t used;
  buf_t keys; /* arena of key bytes */
  size_t keys_len;
  buf_t out;
  struct kc *sorted; /* on_end: the keys in order, emitted a budget at a time */
  size_t sorted_n, emitted;
} counts_t;

static uint64_t hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a, then a finaliser */
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * UINT64_C(0x100000001b3);
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  return h;
}

static int counts_grow(counts_t *c) {
  size_t ncap = c->cap ? c->cap * 2 : 1024;
  slot_t *ns = calloc(ncap, sizeof *ns);
  if (!ns) return SL_ENOMEM;
  for (size_t i = 0; i < c->cap; i++) {
    if (!c->slots[i].count) continue;
    size_t j = (size_t)c->slots[i].hash & (ncap - 1);
    while (ns[j].count) j = (j + 1) & (ncap - 1);
    ns[j] = c->slots[i];
  }
  free(c->slots);
  c->slots = ns;
  c->cap = ncap;
  return 0;
}

static int counts_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  (void)ctx;
  counts_t *c = calloc(1, sizeof *c);
  if (!c || counts_grow(c) || buf_reserve(&c->keys, 4096) || buf_reserve(&c->out, 256)) {
    if (c) {
      free(c->slots);
      free(c->keys.p);
    }
    free(c);
    snprintf(errbuf, errbuf_len, "count_by_key: out of memory");
    return SL_ENOMEM;
  }
  *state = c;
  return SL_OK;
}

static int counts_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  counts_t *c = state;
  uint64_t h = hash_bytes(rec->key, rec->key_len);
  size_t j = (size_t)h & (c->cap - 1);
  for (;;) {
    slot_t *s = &c->slots[j];
    if (!s->count) break;
    if (s->hash == h && s->key_len == rec->key_len &&
        (rec->key_len == 0 || memcmp(c->keys.p + s->key_off, rec->key, rec->key_len) == 0)) {
      s->count++;
      if (rec->ts > s->max_ts) s->max_ts = rec->ts;
      return SL_OK;
    }
    j = (j + 1) & (c->cap - 1);
  }
  /* A new key: keep the load factor at or below 0.7. */
  if ((c->used + 1) * 10 > c->cap * 7) {
    if (counts_grow(c)) goto nomem;
    j = (size_t)h & (c->cap - 1);
    while (c->slots[j].count) j = (j + 1) & (c->cap - 1);
  }
  if (buf_reserve(&c->keys, c->keys_len + rec->key_len)) goto nomem;
  if (rec->key_len) memcpy(c->keys.p + c->keys_len, rec->key, rec->key_len);
  c->slots[j] = (slot_t){.hash = h,
                         .key_off = c->keys_len,
                         .key_len = rec->key_len,
                         .count = 1,
                         .max_ts = rec->ts};
  c->keys_len += rec->key_len;
  c->used++;
  return SL_OK;
nomem:
  sl_set_error(ctx, "count_by_key: out of memory");
  return SL_ENOMEM;
}

typedef struct kc {
  const char *key;
  size_t len;
  uint64_t count;
  int64_t ts;
} kc_t;

static int kc_cmp(const void *a, const void *b) {
  const kc_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int r = n ? memcmp(x->key, y->key, n) : 0;
  if (r) return r;
  return x->len < y->len ? -1 : x->len > y->len;
}

/*
 * End of input: sort the keys once, then emit at most sl_budget() results per
 * call and return SL_AGAIN until all are out, so that a million keys do not
 * pile up in memory downstream: the host calls again when there is credit.
 */
static int counts_on_end(sl_ctx_t *ctx, void *state) {
  counts_t *c = state;
  if (!c->used) return SL_OK;
  if (!c->sorted) {
    c->sorted = malloc(c->used * sizeof *c->sorted);
    if (!c->sorted) {
      sl_set_error(ctx, "count_by_key: out of memory sorting %zu keys", c->used);
      return SL_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++) {
      const slot_t *s = &c->slots[i];
      if (s->count)
        c->sorted[n++] = (kc_t){c->keys.p + s->key_off, s->key_len, s->count, s->max_ts};
    }
    qsort(c->sorted, n, sizeof *c->sorted, kc_cmp);
    c->sorted_n = n;
  }
  kc_t *all = c->sorted;
  size_t end = c->emitted + sl_budget(ctx);
  if (end > c->sorted_n) end = c->sorted_n;
  int rc = SL_OK;
  for (size_t i = c->emitted; i < end && rc >= 0; i++) {
    if (buf_reserve(&c->out, all[i].len * 6 + 64)) {
      rc = SL_ENOMEM;
      break;
    }
    char *d = c->out.p;
    memcpy(d, "{\"key\":\"", 8);
    d = put_escaped(d + 8, all[i].key, all[i].len);
    memcpy(d, "\",\"count\":", 10);
    d = put_i64(d + 10, (int64_t)all[i].count);
    *d++ = '}';
    sl_record_t out = {.key = all[i].key,
                       .key_len = all[i].len,
                       .value = c->out.p,
                       .value_len = (size_t)(d - c->out.p),
                       .ts = all[i].ts,
                       .offset = SL_OFFSET_NONE};
    rc = sl_emit(ctx, &out);
  }
  if (rc < 0) return rc;
  c->emitted = end;
  return c->emitted < c->sorted_n ? SL_AGAIN : SL_OK;
}

static void counts_close(void *state) {
  counts_t *c = state;
  if (!c) return;
  free(c->slots);
  free(c->sorted);
  free(c->keys.p);
  free(c->out.p);
  free(c);
}

/* ------------------------------------------------------------ add_field */

typedef struct addf {
  const char *name; /* owned by the host */
  char *member;     /* "\"<name>\":true", escaped */
  size_t member_len;
  buf_t out;
} addf_t;

static int addf_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  addf_t *a = calloc(1, sizeof *a);
  const char *name = sl_config_string(ctx, "name");
  if (!name) name = "seen";
  if (a) a->member = malloc(strlen(name) * 6 + 8);
  if (!a || !a->member || buf_reserve(&a->out, 512)) {
    if (a) free(a->member);
    free(a);
    snprintf(errbuf, errbuf_len, "add_field: out of memory");
    return SL_ENOMEM;
  }
  a->name = name;
  char *d = a->member;
  *d++ = '"';
  d = put_escaped(d, name, strlen(name));
  memcpy(d, "\":true", 6);
  a->member_len = (size_t)(d + 6 - a->member);
  *state = a;
  return SL_OK;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int addf_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  addf_t *a = state;
  const char *v = rec->value;
  size_t len = rec->value_len;
  size_t b = 0, e = len;
  while (b < e && is_ws(v[b])) b++;
  while (e > b && is_ws(v[e - 1])) e--;
  if (e - b < 2 || v[b] != '{' || v[e - 1] != '}') {
    sl_set_error(ctx, "add_field: value is not a JSON object");
    return SL_ERECORD;
  }
  if (buf_reserve(&a->out, len + a->member_len + 8)) {
    sl_set_error(ctx, "add_field: out of memory");
    return SL_ENOMEM;
  }
  char *d = a->out.p;
  sl_json_value_t old;
  int rc = sl_json_get(ctx, v, len, a->name, &old);
  if (rc == SL_ERECORD) {
    sl_set_error(ctx, "add_field: value is not a JSON object");
    return SL_ERECORD;
  }
  if (rc == 0) {
    /* The field exists: replace its value. */
    const char *vs = old.ptr, *ve = old.ptr + old.len;
    if (old.type == SL_JSON_STRING) {
      vs--;
      ve++;
    }
    size_t head = (size_t)(vs - v), tail = (size_t)(v + e - ve);
    memcpy(d, v + b, head - b);
    d += head - b;
    memcpy(d, "true", 4);
    d += 4;
    memcpy(d, ve, tail);
    d += tail;
  } else {
    size_t i = b + 1;
    while (i < e - 1 && is_ws(v[i])) i++;
    int empty = i == e - 1;
    memcpy(d, v + b, e - 1 - b); /* up to, without, the closing brace */
    d += e - 1 - b;
    if (!empty) *d++ = ',';
    memcpy(d, a->member, a->member_len);
    d += a->member_len;
    *d++ = '}';
  }
  sl_record_t out = *rec;
  out.value = a->out.p;
  out.value_len = (size_t)(d - a->out.p);
  return sl_emit(ctx, &out);
}

static void addf_close(void *state) {
  addf_t *a = state;
  if (!a) return;
  free(a->member);
  free(a->out.p);
  free(a);
}

/* ------------------------------------------------------------ descriptors */

static const sl_config_key_t views_config[] = {
    {"action", SL_CONFIG_STRING, "view", "keep the clicks whose \"action\" equals this"},
};

static const sl_operator_t parse_views_op = {
    SL_OPERATOR_INIT,
    .name = "parse_views",
    .version = "1.0.0",
    .description = "Parses click JSON, keeps one action, emits {\"product_id\",\"ts\"} keyed by "
                   "product id; a value that is not JSON or lacks product_id/action is a record "
                   "error (on_error applies)",
    .kind = SL_KIND_TRANSFORM,
    .config = views_config,
    .config_count = 1,
    .open = views_open,
    .process = views_process,
    .close = views_close,
};

static const sl_operator_t count_by_key_op = {
    SL_OPERATOR_INIT,
    .name = "count_by_key",
    .version = "1.0.0",
    .description = "Counts records per key; at end of input emits {\"key\",\"count\"} per key, "
                   "sorted by key (ts = the key's latest event time)",
    .kind = SL_KIND_TRANSFORM,
    .open = counts_open,
    .process = counts_process,
    .on_end = counts_on_end,
    .close = counts_close,
};

static const sl_config_key_t addf_config[] = {
    {"name", SL_CONFIG_STRING, "seen", "name of the field set to true"},
};

static const sl_operator_t add_field_op = {
    SL_OPERATOR_INIT,
    .name = "add_field",
    .version = "1.0.0",
    .description = "Copies a JSON object value and sets field `name` to true (added, or "
                   "replacing an existing value)",
    .kind = SL_KIND_TRANSFORM,
    .config = addf_config,
    .config_count = 1,
    .open = addf_open,
    .process = addf_process,
    .close = addf_close,
};

SL_PLUGIN_DEFINE("clicks", "1.0.0", "Example plugin: clickstream parsing and counting",
                 &parse_views_op, &count_by_key_op, &add_field_op);
