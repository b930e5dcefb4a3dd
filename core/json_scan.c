/* json_scan.c - see json_scan.h. */
#include "json_scan.h"

#include <string.h>

typedef struct cursor {
  const char *p;
  const char *end;
} cursor_t;

static void skip_ws(cursor_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* At an opening quote: advance past the closing quote. Returns 0 on success. */
static int skip_string(cursor_t *c) {
  c->p++; /* opening quote */
  while (c->p < c->end) {
    const char *q = memchr(c->p, '"', (size_t)(c->end - c->p));
    if (!q) return -1;
    /* Count the backslashes before the quote: an odd number escapes it. */
    const char *b = q;
    while (b > c->p && b[-1] == '\\') b--;
    c->p = q + 1;
    if (((q - b) & 1) == 0) return 0;
  }
  return -1;
}

/* Skip one value of any kind; fills type and the raw span. */
static int skip_value(cursor_t *c, sl_json_value_t *v) {
  skip_ws(c);
  if (c->p >= c->end) return -1;
  const char *start = c->p;
  char ch = *c->p;
  if (ch == '"') {
    if (skip_string(c) != 0) return -1;
    v->type = SL_JSON_STRING;
    v->ptr = start + 1;
    v->len = (size_t)(c->p - start - 2);
    return 0;
  }
  if (ch == '{' || ch == '[') {
    int depth = 0;
    while (c->p < c->end) {
      char d = *c->p;
      if (d == '"') {
        if (skip_string(c) != 0) return -1;
        continue;
      }
      if (d == '{' || d == '[') depth++;
      else if (d == '}' || d == ']') {
        if (--depth == 0) {
          c->p++;
          v->type = ch == '{' ? SL_JSON_OBJECT : SL_JSON_ARRAY;
          v->ptr = start;
          v->len = (size_t)(c->p - start);
          return 0;
        }
      }
      c->p++;
    }
    return -1;
  }
  /* number, true, false, null: up to a delimiter */
  while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' &&
         *c->p != '\t' && *c->p != '\n' && *c->p != '\r')
    c->p++;
  size_t n = (size_t)(c->p - start);
  if (n == 0) return -1;
  v->ptr = start;
  v->len = n;
  if (n == 4 && memcmp(start, "true", 4) == 0) v->type = SL_JSON_BOOL;
  else if (n == 5 && memcmp(start, "false", 5) == 0) v->type = SL_JSON_BOOL;
  else if (n == 4 && memcmp(start, "null", 4) == 0) v->type = SL_JSON_NULL;
  else if (ch == '-' || (ch >= '0' && ch <= '9')) v->type = SL_JSON_NUMBER;
  else return -1;
  return 0;
}

int sl_json_scan_get(const void *json, size_t len, const char *field, sl_json_value_t *out) {
  sl_json_value_t scratch;
  if (!out) out = &scratch;
  out->type = SL_JSON_NONE;
  out->ptr = NULL;
  out->len = 0;
  if (!json || !field) return SL_EINVAL;
  size_t flen = strlen(field);
  cursor_t c = {(const char *)json, (const char *)json + len};
  skip_ws(&c);
  if (c.p >= c.end || *c.p != '{') return SL_ERECORD;
  c.p++;
  skip_ws(&c);
  if (c.p < c.end && *c.p == '}') return SL_ENOTFOUND;
  while (c.p < c.end) {
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '"') return SL_ERECORD;
    const char *kstart = c.p + 1;
    if (skip_string(&c) != 0) return SL_ERECORD;
    size_t klen = (size_t)(c.p - kstart - 1);
    skip_ws(&c);
    if (c.p >= c.end || *c.p != ':') return SL_ERECORD;
    c.p++;
    sl_json_value_t v;
    if (skip_value(&c, &v) != 0) return SL_ERECORD;
    if (klen == flen && memcmp(kstart, field, flen) == 0) {
      *out = v;
      return 0;
    }
    skip_ws(&c);
    if (c.p >= c.end) return SL_ERECORD;
    if (*c.p == ',') {
      c.p++;
      continue;
    }
    if (*c.p == '}') return SL_ENOTFOUND;
    return SL_ERECORD;
  }
  return SL_ERECORD;
}
