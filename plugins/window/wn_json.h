/*
 * wn_json.h - the window plugin's text helpers: a growable output buffer,
 * JSON output (strings, integers, doubles), and reading JSON input values
 * (string unescaping, number parsing). Pure: no host calls.
 */
#ifndef WN_JSON_H
#define WN_JSON_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ numbers */

/** A number as read from JSON: an integer when the text is one and fits int64, else a double. */
enum { WN_NUM_NONE = 0, WN_NUM_INT = 1, WN_NUM_DBL = 2 };

typedef struct wn_num {
  uint8_t kind; /* WN_NUM_* */
  uint8_t pad[7];
  union {
    int64_t i;
    double d;
  } v;
} wn_num_t; /* 16 bytes, stored as-is in accumulators */

/**
 * Parse a JSON number literal (`len` bytes, not NUL-terminated). An integer
 * literal (no fraction, no exponent) that fits int64 becomes WN_NUM_INT,
 * anything else WN_NUM_DBL. Returns 0, or -1 when the text is not a JSON
 * number.
 */
int wn_num_parse(const char *s, size_t len, wn_num_t *out);
/** dst += src (NONE + x = x). Integer sums that would overflow go on as doubles. */
void wn_num_add(wn_num_t *dst, const wn_num_t *src);
/** Numeric comparison (<0, 0, >0); integers are compared exactly. NONE sorts first. */
int wn_num_cmp(const wn_num_t *a, const wn_num_t *b);
/** As a double (0 for NONE). */
double wn_num_to_double(const wn_num_t *n);

/* ------------------------------------------------------------ buffer */

typedef struct wn_buf {
  char *p;
  size_t len;
  size_t cap;
  int oom; /* an allocation failed: the content is truncated */
} wn_buf_t;

void wn_buf_free(wn_buf_t *b);
/** Make room for n more bytes; 0, or -1 (and oom set). */
int wn_buf_reserve(wn_buf_t *b, size_t n);
void wn_buf_put(wn_buf_t *b, const void *s, size_t n);
void wn_buf_puts(wn_buf_t *b, const char *s);
void wn_buf_putc(wn_buf_t *b, char c);

/* ------------------------------------------------------------ JSON out */

/**
 * A JSON string of the bytes s[0..n): quotes, `"` and `\` escaped, control
 * characters as \n, \t ... or \u00XX, valid UTF-8 copied as is, every byte
 * of an invalid UTF-8 sequence replaced by U+FFFD.
 */
void wn_json_str(wn_buf_t *b, const void *s, size_t n);
void wn_json_i64(wn_buf_t *b, int64_t v);
/**
 * A double in the shortest of %.15g / %.16g / %.17g that reads back as the
 * same double (so it round-trips); -0 prints as 0; NaN and infinities,
 * which JSON cannot hold, print as null.
 */
void wn_json_double(wn_buf_t *b, double v);
/** An integer number as an integer, a double as wn_json_double, NONE as null. */
void wn_json_num(wn_buf_t *b, const wn_num_t *n);

/* ------------------------------------------------------------ JSON in */

/**
 * Decode the body of a JSON string (the text between the quotes, escapes
 * as written) into dst, which has room for at least len bytes (decoding
 * never makes a string longer). \uXXXX escapes become UTF-8 (a surrogate
 * pair one code point; a lone surrogate U+FFFD). Returns the decoded
 * length, or -1 for an invalid escape.
 */
long wn_json_unescape(const char *s, size_t len, char *dst);

#endif
