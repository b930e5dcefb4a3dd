/*
 * wn_json.c - see wn_json.h.
 */
#include "wn_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ numbers */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int wn_num_parse(const char *s, size_t len, wn_num_t *out) {
  memset(out, 0, sizeof *out);
  size_t i = 0;
  int neg = 0, integral = 1;
  if (i < len && s[i] == '-') {
    neg = 1;
    i++;
  }
  if (i >= len || !is_digit(s[i])) return -1;
  if (s[i] == '0') {
    i++;
  } else {
    while (i < len && is_digit(s[i])) i++;
  }
  if (i < len && s[i] == '.') {
    integral = 0;
    i++;
    if (i >= len || !is_digit(s[i])) return -1;
    while (i < len && is_digit(s[i])) i++;
  }
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    integral = 0;
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= len || !is_digit(s[i])) return -1;
    while (i < len && is_digit(s[i])) i++;
  }
  if (i != len) return -1;
  if (integral) {
    /* Accumulate as a negative number: -2^63 fits, 2^63 does not. */
    int64_t v = 0;
    int ovf = 0;
    for (size_t k = (size_t)neg; k < len && !ovf; k++) {
      int d = s[k] - '0';
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, d, &v)) ovf = 1;
    }
    if (!ovf && !neg && v == INT64_MIN) ovf = 1;
    if (!ovf) {
      out->kind = WN_NUM_INT;
      out->v.i = neg ? v : -v;
      return 0;
    }
  }
  char stack[128];
  char *tmp = len < sizeof stack ? stack : malloc(len + 1); /* only for absurdly long literals */
  if (!tmp) return -1;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  out->kind = WN_NUM_DBL;
  out->v.d = strtod(tmp, NULL);
  if (tmp != stack) free(tmp);
  return 0;
}

double wn_num_to_double(const wn_num_t *n) {
  switch (n->kind) {
  case WN_NUM_INT: return (double)n->v.i;
  case WN_NUM_DBL: return n->v.d;
  default: return 0;
  }
}

void wn_num_add(wn_num_t *dst, const wn_num_t *src) {
  if (src->kind == WN_NUM_NONE) return;
  if (dst->kind == WN_NUM_NONE) {
    *dst = *src;
    return;
  }
  if (dst->kind == WN_NUM_INT && src->kind == WN_NUM_INT) {
    int64_t r;
    if (!__builtin_add_overflow(dst->v.i, src->v.i, &r)) {
      dst->v.i = r;
      return;
    }
  }
  double d = wn_num_to_double(dst) + wn_num_to_double(src);
  dst->kind = WN_NUM_DBL;
  dst->v.d = d;
}

int wn_num_cmp(const wn_num_t *a, const wn_num_t *b) {
  if (a->kind == WN_NUM_NONE || b->kind == WN_NUM_NONE)
    return (a->kind != WN_NUM_NONE) - (b->kind != WN_NUM_NONE);
  if (a->kind == WN_NUM_INT && b->kind == WN_NUM_INT)
    return (a->v.i > b->v.i) - (a->v.i < b->v.i);
  /* long double holds every int64 exactly on x86-64; elsewhere it is near enough */
  long double x = a->kind == WN_NUM_INT ? (long double)a->v.i : (long double)a->v.d;
  long double y = b->kind == WN_NUM_INT ? (long double)b->v.i : (long double)b->v.d;
  return (x > y) - (x < y);
}

/* ------------------------------------------------------------ buffer */

void wn_buf_free(wn_buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

int wn_buf_reserve(wn_buf_t *b, size_t n) {
  if (b->oom) return -1;
  if (b->cap - b->len >= n) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) {
      b->oom = 1;
      return -1;
    }
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void wn_buf_put(wn_buf_t *b, const void *s, size_t n) {
  if (!n || wn_buf_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

void wn_buf_puts(wn_buf_t *b, const char *s) { wn_buf_put(b, s, strlen(s)); }

void wn_buf_putc(wn_buf_t *b, char c) {
  if (wn_buf_reserve(b, 1) != 0) return;
  b->p[b->len++] = c;
}

/* ------------------------------------------------------------ JSON out */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is invalid
 * (overlong, surrogate, above U+10FFFF, truncated). s[0] >= 0x80. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}

void wn_json_str(wn_buf_t *b, const void *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = str;
  if (wn_buf_reserve(b, n + 2) != 0) return;
  wn_buf_putc(b, '"');
  size_t i = 0;
  while (i < n) {
    /* copy the longest run that needs no escaping */
    size_t j = i;
    while (j < n && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\') j++;
    wn_buf_put(b, s + i, j - i);
    i = j;
    if (i >= n) break;
    unsigned c = s[i];
    if (c >= 0x80) {
      size_t k = utf8_seq(s + i, n - i);
      if (k) {
        wn_buf_put(b, s + i, k);
        i += k;
      } else {
        wn_buf_put(b, "\\ufffd", 6);
        i++;
      }
      continue;
    }
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t elen = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      elen = 6;
    }
    wn_buf_put(b, esc, elen);
    i++;
  }
  wn_buf_putc(b, '"');
}

void wn_json_i64(wn_buf_t *b, int64_t v) {
  char tmp[24];
  char *t = tmp + sizeof tmp;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--t = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--t = '-';
  wn_buf_put(b, t, (size_t)(tmp + sizeof tmp - t));
}

void wn_json_double(wn_buf_t *b, double v) {
  if (!isfinite(v)) {
    wn_buf_put(b, "null", 4);
    return;
  }
  if (v == 0) { /* also -0 */
    wn_buf_putc(b, '0');
    return;
  }
  char tmp[40];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (prec == 17 || strtod(tmp, NULL) == v) break;
  }
  wn_buf_put(b, tmp, (size_t)n);
}

void wn_json_num(wn_buf_t *b, const wn_num_t *n) {
  switch (n->kind) {
  case WN_NUM_INT: wn_json_i64(b, n->v.i); break;
  case WN_NUM_DBL: wn_json_double(b, n->v.d); break;
  default: wn_buf_put(b, "null", 4);
  }
}

/* ------------------------------------------------------------ JSON in */

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *d, unsigned cp) {
  if (cp < 0x80) {
    d[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (char)(0xC0 | (cp >> 6));
    d[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (char)(0xE0 | (cp >> 12));
    d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  d[0] = (char)(0xF0 | (cp >> 18));
  d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  d[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

long wn_json_unescape(const char *s, size_t len, char *dst) {
  size_t i = 0, o = 0;
  while (i < len) {
    const char *bs = memchr(s + i, '\\', len - i);
    size_t run = bs ? (size_t)(bs - (s + i)) : len - i;
    memmove(dst + o, s + i, run);
    o += run;
    i += run;
    if (i >= len) break;
    if (i + 1 >= len) return -1;
    char c = s[i + 1];
    i += 2;
    switch (c) {
    case '"': dst[o++] = '"'; break;
    case '\\': dst[o++] = '\\'; break;
    case '/': dst[o++] = '/'; break;
    case 'b': dst[o++] = '\b'; break;
    case 'f': dst[o++] = '\f'; break;
    case 'n': dst[o++] = '\n'; break;
    case 'r': dst[o++] = '\r'; break;
    case 't': dst[o++] = '\t'; break;
    case 'u': {
      unsigned cp;
      if (i + 4 > len || hex4(s + i, &cp) != 0) return -1;
      i += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo;
        if (i + 6 <= len && s[i] == '\\' && s[i + 1] == 'u' && hex4(s + i + 2, &lo) == 0 &&
            lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          i += 6;
        } else {
          cp = 0xFFFD;
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD;
      }
      o += put_utf8(dst + o, cp);
      break;
    }
    default: return -1;
    }
  }
  return (long)o;
}
