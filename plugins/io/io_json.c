/*
 * io_json.c - JSON string escaping and a small validator for the sinks'
 * "envelope" format. No allocation; the validator recurses at most
 * IO_JSON_MAX_DEPTH levels.
 */
#include <string.h>

#include "io.h"

#define IO_JSON_MAX_DEPTH 256

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
    if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogates */
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

size_t io_json_escape(char *dst, const void *src, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = src;
  char *d = dst;
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      *d++ = (char)c;
      i++;
      continue;
    }
    if (c >= 0x80) {
      size_t k = utf8_seq(s + i, n - i);
      if (k) {
        memcpy(d, s + i, k);
        d += k;
        i += k;
      } else {
        memcpy(d, "\\ufffd", 6);
        d += 6;
        i++;
      }
      continue;
    }
    *d++ = '\\';
    switch (c) {
    case '"': *d++ = '"'; break;
    case '\\': *d++ = '\\'; break;
    case '\n': *d++ = 'n'; break;
    case '\r': *d++ = 'r'; break;
    case '\t': *d++ = 't'; break;
    case '\b': *d++ = 'b'; break;
    case '\f': *d++ = 'f'; break;
    default:
      *d++ = 'u';
      *d++ = '0';
      *d++ = '0';
      *d++ = hex[c >> 4];
      *d++ = hex[c & 15];
    }
    i++;
  }
  return (size_t)(d - dst);
}

/* ------------------------------------------------------------ validator */

typedef struct jv {
  const unsigned char *p, *end;
} jv_t;

static void skip_ws(jv_t *v) {
  while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
    v->p++;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int parse_number(jv_t *v) {
  if (v->p < v->end && *v->p == '-') v->p++;
  if (v->p >= v->end) return 0;
  if (*v->p == '0') {
    v->p++;
  } else if (is_digit(*v->p)) {
    while (v->p < v->end && is_digit(*v->p)) v->p++;
  } else {
    return 0;
  }
  if (v->p < v->end && *v->p == '.') {
    v->p++;
    if (v->p >= v->end || !is_digit(*v->p)) return 0;
    while (v->p < v->end && is_digit(*v->p)) v->p++;
  }
  if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
    v->p++;
    if (v->p < v->end && (*v->p == '+' || *v->p == '-')) v->p++;
    if (v->p >= v->end || !is_digit(*v->p)) return 0;
    while (v->p < v->end && is_digit(*v->p)) v->p++;
  }
  return 1;
}

static int parse_string(jv_t *v) {
  v->p++; /* opening quote */
  while (v->p < v->end) {
    unsigned char c = *v->p;
    if (c == '"') {
      v->p++;
      return 1;
    }
    if (c < 0x20) return 0;
    if (c == '\\') {
      if (v->end - v->p < 2) return 0;
      unsigned char e = v->p[1];
      if (e == 'u') {
        if (v->end - v->p < 6) return 0;
        for (int k = 2; k < 6; k++)
          if (!is_hex(v->p[k])) return 0;
        v->p += 6;
      } else if (strchr("\"\\/bfnrt", e) && e) {
        v->p += 2;
      } else {
        return 0;
      }
      continue;
    }
    if (c >= 0x80) {
      size_t k = utf8_seq(v->p, (size_t)(v->end - v->p));
      if (!k) return 0;
      v->p += k;
      continue;
    }
    v->p++;
  }
  return 0;
}

static int parse_lit(jv_t *v, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n) != 0) return 0;
  v->p += n;
  return 1;
}

static int parse_value(jv_t *v, int depth);

static int parse_container(jv_t *v, int depth, unsigned char close, int object) {
  if (depth >= IO_JSON_MAX_DEPTH) return 0;
  v->p++; /* [ or { */
  skip_ws(v);
  if (v->p < v->end && *v->p == close) {
    v->p++;
    return 1;
  }
  for (;;) {
    if (object) {
      skip_ws(v);
      if (v->p >= v->end || *v->p != '"' || !parse_string(v)) return 0;
      skip_ws(v);
      if (v->p >= v->end || *v->p != ':') return 0;
      v->p++;
    }
    if (!parse_value(v, depth + 1)) return 0;
    skip_ws(v);
    if (v->p >= v->end) return 0;
    if (*v->p == ',') {
      v->p++;
      continue;
    }
    if (*v->p == close) {
      v->p++;
      return 1;
    }
    return 0;
  }
}

static int parse_value(jv_t *v, int depth) {
  skip_ws(v);
  if (v->p >= v->end) return 0;
  switch (*v->p) {
  case '{': return parse_container(v, depth, '}', 1);
  case '[': return parse_container(v, depth, ']', 0);
  case '"': return parse_string(v);
  case 't': return parse_lit(v, "true");
  case 'f': return parse_lit(v, "false");
  case 'n': return parse_lit(v, "null");
  default: return parse_number(v);
  }
}

int io_json_is_structured(const void *text, size_t n) {
  jv_t v = {text, (const unsigned char *)text + n};
  skip_ws(&v);
  if (v.p >= v.end) return 0;
  unsigned char c = *v.p;
  if (c != '{' && c != '[' && c != '-' && !is_digit(c)) return 0;
  if (!parse_value(&v, 0)) return 0;
  skip_ws(&v);
  return v.p == v.end;
}

size_t io_json_copy_one_line(char *dst, const void *text, size_t n) {
  const char *s = text;
  for (size_t i = 0; i < n; i++) dst[i] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
  return n;
}
