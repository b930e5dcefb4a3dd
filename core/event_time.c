/*
 * event_time.c - timestamps from JSON values, see event_time.h.
 *
 * Numbers are read exactly, digit by digit, instead of through strtod: a
 * double cannot hold every int64 millisecond (2^53 is year 287396), and
 * flooring "1700000000.9999" seconds must give ...999, not ...1000 after a
 * rounding. The common case, a plain integer of at most 18 digits, is one
 * loop with no overflow checks.
 */
#include "event_time.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* |INT64_MIN|: the largest magnitude a negative timestamp can have. */
#define MAG_LIMIT (UINT64_C(1) << 63)
/* Exponents are clamped here: far beyond any digit count we can meet, and
 * small enough that exponent + digit counts cannot overflow an int64. */
#define EXP_CLAMP INT64_C(1000000000)

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...) {
  if (why && whylen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static inline bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static const char *json_kind(sl_json_type_t t) {
  switch (t) {
  case SL_JSON_STRING:
    return "a string";
  case SL_JSON_NUMBER:
    return "a number";
  case SL_JSON_BOOL:
    return "a boolean";
  case SL_JSON_NULL:
    return "null";
  case SL_JSON_OBJECT:
    return "an object";
  case SL_JSON_ARRAY:
    return "an array";
  default:
    return "no value";
  }
}

/* Describes the character at p for "unexpected ..." reasons. */
static void char_desc(char ch, char *buf, size_t len) {
  if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
    snprintf(buf, len, "whitespace");
  else if (ch == '\\')
    snprintf(buf, len, "'\\' (escape sequences are not read)");
  else if ((unsigned char)ch >= 0x21 && (unsigned char)ch < 0x7f)
    snprintf(buf, len, "'%c'", ch);
  else
    snprintf(buf, len, "byte 0x%02x", (unsigned char)ch);
}

/* ------------------------------------------------------------ numbers */

/*
 * value = sign * digits * 10^(exp + unit_pow - fraction digits), floored to an
 * integer (toward negative infinity, so that order is kept across zero).
 * unit_pow is 0 for milliseconds, 3 for seconds.
 */
static int parse_number(const char *s, size_t len, int unit_pow, const char *what, int64_t *out,
                        char *why, size_t whylen) {
  const char *end = s + len;
  const char *p = s;
  bool neg = p < end && *p == '-';
  if (neg) p++;

  /* Fast path: a plain integer of 1 to 18 digits, which cannot overflow while
   * it is read; only the scaling of seconds needs a check. */
  if (p < end && *p >= '1' && *p <= '9' && end - p <= 18) {
    uint64_t q = 0;
    const char *r = p;
    while (r < end && is_digit(*r)) q = q * 10 + (uint64_t)(*r++ - '0');
    if (r == end) {
      if (unit_pow == 3) {
        if (q > (uint64_t)INT64_MAX / 1000) goto range;
        q *= 1000;
      }
      *out = neg ? -(int64_t)q : (int64_t)q;
      return 0;
    }
  }

  /* General path: check the JSON number grammar and find its parts. */
  char c[48];
  const char *ib = p;
  while (p < end && is_digit(*p)) p++;
  const char *ie = p;
  if (ib == ie) {
    if (p == end) return fail(why, whylen, "expected %s (a number): no digits", what);
    char_desc(*p, c, sizeof(c));
    return fail(why, whylen, "expected %s (a number), found %s", what, c);
  }
  if (ie - ib > 1 && *ib == '0')
    return fail(why, whylen, "expected %s (a number): leading zeros are not allowed", what);
  const char *fb = p, *fe = p;
  if (p < end && *p == '.') {
    fb = ++p;
    while (p < end && is_digit(*p)) p++;
    fe = p;
    if (fb == fe) return fail(why, whylen, "expected %s (a number): no digits after '.'", what);
  }
  int64_t exp = 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    bool eneg = false;
    if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    const char *eb = p;
    while (p < end && is_digit(*p)) {
      if (exp < EXP_CLAMP) exp = exp * 10 + (*p - '0');
      p++;
    }
    if (eb == p) return fail(why, whylen, "expected %s (a number): no digits in the exponent", what);
    if (exp > EXP_CLAMP) exp = EXP_CLAMP;
    if (eneg) exp = -exp;
  }
  if (p != end) {
    char_desc(*p, c, sizeof(c));
    return fail(why, whylen, "expected %s (a number): unexpected %s after the number", what, c);
  }

  /* Digits at index < k (of int digits then fraction digits) are the integer
   * part of the scaled value; the others only tell whether it has a fraction. */
  int64_t ilen = ie - ib, flen = fe - fb, n = ilen + flen;
  int64_t k = n + exp + unit_pow - flen;
  uint64_t q = 0;
  bool rest = false;
  for (int64_t i = 0; i < n; i++) {
    unsigned d = (unsigned)((i < ilen ? ib[i] : fb[i - ilen]) - '0');
    if (i < k) {
      if (q > (MAG_LIMIT - d) / 10) goto range;
      q = q * 10 + d;
    } else if (d) {
      rest = true;
      break;
    }
  }
  for (int64_t i = n; i < k && q; i++) {
    if (q > MAG_LIMIT / 10) goto range;
    q *= 10;
  }
  if (!neg) {
    if (q > (uint64_t)INT64_MAX) goto range;
    *out = (int64_t)q;
    return 0;
  }
  q += rest; /* floor: -1.5 -> -2 */
  if (q > MAG_LIMIT) goto range;
  *out = q == MAG_LIMIT ? INT64_MIN : -(int64_t)q;
  return 0;

range:
  return fail(why, whylen, "%s out of range (beyond what 64-bit milliseconds can hold)", what);
}

/* ------------------------------------------------------------ RFC 3339 */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil): no table, no time zone, any year. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);                       /* [0, 399] */
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
  return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m) {
  static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return 29;
  return days[m - 1];
}

/* n digits at p as a number, or -1 when any of them is not a digit. */
static int digits(const char *p, const char *end, int n) {
  if (end - p < n) return -1;
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!is_digit(p[i])) return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

#define RFC_BAD "not an RFC 3339 timestamp: "
#define RFC_SHAPE "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)"

/* Expects the separator `sep` at p. */
static bool sep_at(const char *p, const char *end, char sep) { return p < end && *p == sep; }

static int parse_rfc3339(const char *s, size_t len, int64_t *out, char *why, size_t whylen) {
  const char *p = s, *end = s + len;
  char c[48];
  int year = digits(p, end, 4);
  if (year < 0) return fail(why, whylen, RFC_BAD "expected a 4-digit year (" RFC_SHAPE ")");
  p += 4;
  if (!sep_at(p, end, '-')) return fail(why, whylen, RFC_BAD "expected '-' after the year");
  int month = digits(++p, end, 2);
  if (month < 0) return fail(why, whylen, RFC_BAD "expected a 2-digit month");
  p += 2;
  if (!sep_at(p, end, '-')) return fail(why, whylen, RFC_BAD "expected '-' after the month");
  int day = digits(++p, end, 2);
  if (day < 0) return fail(why, whylen, RFC_BAD "expected a 2-digit day");
  p += 2;
  if (month < 1 || month > 12)
    return fail(why, whylen, RFC_BAD "month %02d is not 01-12", month);
  if (day < 1 || (unsigned)day > days_in_month((unsigned)year, (unsigned)month))
    return fail(why, whylen, RFC_BAD "day %02d does not exist in %04d-%02d", day, year, month);
  if (p == end)
    return fail(why, whylen, RFC_BAD "a date without a time (expected " RFC_SHAPE ")");
  if (*p != 'T' && *p != 't' && *p != ' ')
    return fail(why, whylen, RFC_BAD "expected 'T' between the date and the time");
  int hour = digits(++p, end, 2);
  if (hour < 0) return fail(why, whylen, RFC_BAD "expected a 2-digit hour");
  p += 2;
  if (!sep_at(p, end, ':')) return fail(why, whylen, RFC_BAD "expected ':' after the hour");
  int minute = digits(++p, end, 2);
  if (minute < 0) return fail(why, whylen, RFC_BAD "expected 2-digit minutes");
  p += 2;
  if (!sep_at(p, end, ':'))
    return fail(why, whylen, RFC_BAD "expected ':' after the minutes (seconds are required)");
  int second = digits(++p, end, 2);
  if (second < 0) return fail(why, whylen, RFC_BAD "expected 2-digit seconds");
  p += 2;
  if (hour > 23) return fail(why, whylen, RFC_BAD "hour %02d is not 00-23", hour);
  if (minute > 59) return fail(why, whylen, RFC_BAD "minute %02d is not 00-59", minute);
  if (second > 60) return fail(why, whylen, RFC_BAD "second %02d is not 00-60", second);

  int ms = 0;
  if (p < end && *p == '.') {
    const char *fb = ++p;
    while (p < end && is_digit(*p)) {
      if (p - fb < 3) ms = ms * 10 + (*p - '0');
      p++;
    }
    if (p == fb) return fail(why, whylen, RFC_BAD "no digits after '.'");
    for (ptrdiff_t i = p - fb; i < 3; i++) ms *= 10; /* ".5" is 500 ms */
  }
  if (second == 60) { /* a leap second: the last millisecond of its minute */
    second = 59;
    ms = 999;
  }

  int offset_min = 0;
  if (p == end)
    return fail(why, whylen, RFC_BAD "no time zone (expected 'Z', +HH:MM or -HH:MM at the end)");
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1;
    int oh = digits(p, end, 2);
    if (oh < 0 || !sep_at(p + 2, end, ':') || digits(p + 3, end, 2) < 0)
      return fail(why, whylen, RFC_BAD "expected the offset as +HH:MM or -HH:MM");
    int om = digits(p + 3, end, 2);
    p += 5;
    if (oh > 23 || om > 59)
      return fail(why, whylen, RFC_BAD "offset %c%02d:%02d is not within -23:59..+23:59",
                  sign < 0 ? '-' : '+', oh, om);
    offset_min = sign * (oh * 60 + om);
  } else {
    char_desc(*p, c, sizeof(c));
    return fail(why, whylen, RFC_BAD "expected 'Z', +HH:MM or -HH:MM, found %s", c);
  }
  if (p != end) {
    char_desc(*p, c, sizeof(c));
    return fail(why, whylen, RFC_BAD "unexpected %s after the time zone", c);
  }

  /* Years 0000-9999 stay far inside int64 milliseconds: no overflow checks. */
  int64_t days = days_from_civil(year, (unsigned)month, (unsigned)day);
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - (int64_t)offset_min * 60;
  *out = secs * 1000 + ms;
  return 0;
}

/* ------------------------------------------------------------ public */

int sl_ts_parse(const sl_json_value_t *v, sl_ts_format_t fmt, int64_t *out_ms, char *why,
                size_t whylen) {
  sl_json_type_t type = v ? v->type : SL_JSON_NONE;
  if (fmt == SL_TS_FORMAT_EPOCH_MS || fmt == SL_TS_FORMAT_EPOCH_S) {
    const char *what = fmt == SL_TS_FORMAT_EPOCH_MS ? "epoch milliseconds" : "epoch seconds";
    if (type != SL_JSON_NUMBER && type != SL_JSON_STRING)
      return fail(why, whylen, "expected %s (a number), got %s", what, json_kind(type));
    if (!v->ptr || v->len == 0)
      return fail(why, whylen, "expected %s (a number), got an empty string", what);
    return parse_number(v->ptr, v->len, fmt == SL_TS_FORMAT_EPOCH_S ? 3 : 0, what, out_ms, why,
                        whylen);
  }
  if (fmt == SL_TS_FORMAT_RFC3339) {
    if (type != SL_JSON_STRING)
      return fail(why, whylen, "expected an RFC 3339 timestamp (a string), got %s",
                  json_kind(type));
    if (!v->ptr || v->len == 0)
      return fail(why, whylen, "expected an RFC 3339 timestamp (a string), got an empty string");
    return parse_rfc3339(v->ptr, v->len, out_ms, why, whylen);
  }
  return fail(why, whylen, "unknown timestamp format %d", (int)fmt);
}

const char *sl_ts_origin_name(sl_ts_origin_t origin) {
  switch (origin) {
  case SL_TS_ORIGIN_FIELD:
    return "field";
  case SL_TS_ORIGIN_SOURCE:
    return "source";
  case SL_TS_ORIGIN_INGESTION:
    return "ingestion";
  }
  return "?";
}

const char *sl_ts_format_name(sl_ts_format_t fmt) {
  switch (fmt) {
  case SL_TS_FORMAT_EPOCH_MS:
    return "epoch_ms";
  case SL_TS_FORMAT_EPOCH_S:
    return "epoch_s";
  case SL_TS_FORMAT_RFC3339:
    return "rfc3339";
  }
  return "?";
}
