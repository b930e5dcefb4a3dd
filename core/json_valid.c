/* json_valid.c - see json_valid.h. An iterative checker: the open containers
 * are a bit stack (1 = object, 0 = array), so depth costs no recursion. */
#include "json_valid.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct checker {
  const unsigned char *p, *start, *end;
  char *why;
  size_t whylen;
} checker_t;

static int bad(checker_t *c, const char *what) {
  if (c->whylen)
    snprintf(c->why, c->whylen, "byte %zu: %s", (size_t)(c->p - c->start), what);
  return -1;
}

static void skip_ws(checker_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int is_hex(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* One UTF-8 sequence of 2 to 4 bytes at p (its lead byte >= 0x80). */
static int utf8_sequence(checker_t *c) {
  unsigned char b0 = c->p[0];
  int n;
  unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;      /* no overlong forms */
    else if (b0 == 0xED) hi = 0x9F; /* no surrogates */
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    else if (b0 == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
  } else
    return bad(c, "invalid UTF-8");
  if (c->end - c->p < n) return bad(c, "truncated UTF-8 sequence");
  if (c->p[1] < lo || c->p[1] > hi) return bad(c, "invalid UTF-8");
  for (int i = 2; i < n; i++)
    if (c->p[i] < 0x80 || c->p[i] > 0xBF) return bad(c, "invalid UTF-8");
  c->p += n;
  return 0;
}

/* At the opening quote: past the closing one. */
static int string(checker_t *c) {
  c->p++;
  while (c->p < c->end) {
    unsigned char ch = *c->p;
    if (ch == '"') {
      c->p++;
      return 0;
    }
    if (ch < 0x20) return bad(c, "control character in a string (escape it)");
    if (ch == '\\') {
      if (c->end - c->p < 2) break;
      unsigned char e = c->p[1];
      if (e == 'u') {
        if (c->end - c->p < 6) return bad(c, "truncated \\u escape");
        for (int i = 2; i < 6; i++)
          if (!is_hex(c->p[i])) return bad(c, "\\u needs 4 hex digits");
        c->p += 6;
      } else if (strchr("\"\\/bfnrt", e) && e) {
        c->p += 2;
      } else {
        return bad(c, "invalid escape in a string");
      }
    } else if (ch < 0x80) {
      c->p++;
    } else if (utf8_sequence(c) != 0) {
      return -1;
    }
  }
  return bad(c, "unterminated string");
}

static int digits(checker_t *c) {
  const unsigned char *s = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  return c->p > s ? 0 : bad(c, "a digit expected");
}

static int number(checker_t *c) {
  if (*c->p == '-') c->p++;
  if (c->p >= c->end) return bad(c, "a digit expected");
  if (*c->p == '0') c->p++; /* no leading zeros */
  else if (digits(c) != 0) return -1;
  if (c->p < c->end && *c->p == '.') {
    c->p++;
    if (digits(c) != 0) return -1;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (digits(c) != 0) return -1;
  }
  return 0;
}

static int literal(checker_t *c, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return bad(c, "a value expected");
  c->p += n;
  return 0;
}

int sl_json_check(const void *json, size_t len, char *why, size_t whylen) {
  checker_t c = {json, json, (const unsigned char *)json + len, why, whylen};
  uint8_t stack[SL_JSON_MAX_DEPTH / 8] = {0};
  size_t depth = 0;
#define TOP_IS_OBJECT() ((stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1)

value:
  skip_ws(&c);
  if (c.p >= c.end) return bad(&c, depth ? "unexpected end" : "empty: no JSON value");
  switch (*c.p) {
  case '{':
  case '[':
    if (depth == SL_JSON_MAX_DEPTH) return bad(&c, "nested too deep");
    if (*c.p == '{') stack[depth / 8] |= (uint8_t)(1u << (depth % 8));
    else stack[depth / 8] &= (uint8_t) ~(1u << (depth % 8));
    depth++;
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && (*c.p == '}' || *c.p == ']')) {
      if ((*c.p == '}') != TOP_IS_OBJECT()) return bad(&c, "mismatched bracket");
      c.p++;
      depth--;
      goto after;
    }
    if (TOP_IS_OBJECT()) goto key;
    goto value;
  case '"':
    if (string(&c) != 0) return -1;
    goto after;
  case 't':
    if (literal(&c, "true") != 0) return -1;
    goto after;
  case 'f':
    if (literal(&c, "false") != 0) return -1;
    goto after;
  case 'n':
    if (literal(&c, "null") != 0) return -1;
    goto after;
  default:
    if (*c.p == '-' || (*c.p >= '0' && *c.p <= '9')) {
      if (number(&c) != 0) return -1;
      goto after;
    }
    return bad(&c, "a value expected");
  }

key:
  skip_ws(&c);
  if (c.p >= c.end || *c.p != '"') return bad(&c, "a string key expected");
  if (string(&c) != 0) return -1;
  skip_ws(&c);
  if (c.p >= c.end || *c.p != ':') return bad(&c, "':' expected after a key");
  c.p++;
  goto value;

after:
  skip_ws(&c);
  if (depth == 0) return c.p == c.end ? 0 : bad(&c, "text after the JSON value");
  if (c.p >= c.end) return bad(&c, "unexpected end");
  if (*c.p == ',') {
    c.p++;
    if (TOP_IS_OBJECT()) goto key;
    goto value;
  }
  if (*c.p == (TOP_IS_OBJECT() ? '}' : ']')) {
    c.p++;
    depth--;
    goto after;
  }
  return bad(&c, TOP_IS_OBJECT() ? "',' or '}' expected" : "',' or ']' expected");
#undef TOP_IS_OBJECT
}
