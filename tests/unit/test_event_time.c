/*
 * test_event_time.c - sl_ts_parse: timestamps from JSON values in the three
 * formats of a source's `event_time:` block. Tables of good inputs with their
 * exact milliseconds, bad inputs with the reason given, and a cross-check of
 * the calendar arithmetic against gmtime_r.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_time.h"
#include "json_scan.h"
#include "util.h"

typedef struct good_case {
  sl_json_type_t type;
  const char *text;
  int64_t ms;
} good_case_t;

typedef struct bad_case {
  sl_json_type_t type;
  const char *text;
  const char *why; /* a substring of the reason */
} bad_case_t;

#define N SL_JSON_NUMBER
#define S SL_JSON_STRING

static void check_good(sl_ts_format_t fmt, const good_case_t *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sl_json_value_t v = {cases[i].type, cases[i].text, strlen(cases[i].text)};
    int64_t ms = 42;
    char why[128] = "";
    if (sl_ts_parse(&v, fmt, &ms, why, sizeof(why)) != 0)
      fail_msg("%s '%s' rejected: %s", sl_ts_format_name(fmt), cases[i].text, why);
    if (ms != cases[i].ms)
      fail_msg("%s '%s': got %" PRId64 ", expected %" PRId64, sl_ts_format_name(fmt),
               cases[i].text, ms, cases[i].ms);
  }
}

static void check_bad(sl_ts_format_t fmt, const bad_case_t *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *t = cases[i].text;
    sl_json_value_t v = {cases[i].type, t, t ? strlen(t) : 0};
    int64_t ms = 42;
    char why[160] = "";
    if (sl_ts_parse(&v, fmt, &ms, why, sizeof(why)) != -1)
      fail_msg("%s '%s' accepted as %" PRId64, sl_ts_format_name(fmt), t ? t : "(null)", ms);
    assert_int_equal(ms, 42); /* untouched on error */
    if (!strstr(why, cases[i].why))
      fail_msg("%s '%s': reason '%s' does not contain '%s'", sl_ts_format_name(fmt),
               t ? t : "(null)", why, cases[i].why);
  }
}

/* ------------------------------------------------------------ epoch_ms */

static void test_epoch_ms_good(void **state) {
  (void)state;
  static const good_case_t good[] = {
      {N, "0", 0},
      {N, "-0", 0},
      {N, "1", 1},
      {N, "-1", -1},
      {N, "1700000000000", INT64_C(1700000000000)},
      {N, "-1700000000000", INT64_C(-1700000000000)},
      {S, "1700000000000", INT64_C(1700000000000)},
      {S, "-5", -5},
      {N, "123456789012345678", INT64_C(123456789012345678)},   /* 18 digits: fast path */
      {N, "1234567890123456789", INT64_C(1234567890123456789)}, /* 19: checked path */
      {N, "9223372036854775807", INT64_MAX},
      {N, "-9223372036854775808", INT64_MIN},
      /* fractions are floored, toward negative infinity */
      {N, "1.5", 1},
      {N, "1.999999", 1},
      {N, "-1.5", -2},
      {N, "-0.001", -1},
      {N, "-2.0", -2},
      {N, "0.0", 0},
      {N, "-0.0", 0},
      {N, "1700000000000.75", INT64_C(1700000000000)},
      {N, "9223372036854775807.9", INT64_MAX},
      {N, "-9223372036854775807.5", INT64_MIN},
      {N, "-9223372036854775808.0", INT64_MIN},
      /* exponents, exact */
      {N, "1e3", 1000},
      {N, "1E3", 1000},
      {N, "1e+3", 1000},
      {N, "1e03", 1000},
      {N, "1.7e12", INT64_C(1700000000000)},
      {N, "1.7E+12", INT64_C(1700000000000)},
      {N, "17e-1", 1},
      {N, "-17e-1", -2},
      {N, "1e-400", 0},
      {N, "-1e-400", -1},
      {N, "0e999999999999", 0},
      {N, "0.000e5", 0},
      {N, "100000000000000000000e-2", INT64_C(1000000000000000000)},
      {N, "92233720368547758.07e2", INT64_MAX},
      {N, "9.223372036854775807e18", INT64_MAX},
      {N, "-9.223372036854775808e18", INT64_MIN},
      {N, "1700000000000000e-3", INT64_C(1700000000000)},
      {S, "1.7e12", INT64_C(1700000000000)},
  };
  check_good(SL_TS_FORMAT_EPOCH_MS, good, SL_ARRAY_LEN(good));
}

static void test_epoch_ms_bad(void **state) {
  (void)state;
  static const bad_case_t bad[] = {
      /* out of range */
      {N, "9223372036854775808", "epoch milliseconds out of range"},
      {N, "-9223372036854775809", "out of range"},
      {N, "-9223372036854775808.5", "out of range"}, /* floors to ...809 */
      {N, "99999999999999999999", "out of range"},
      {N, "1e19", "out of range"},
      {N, "9.223372036854775808e18", "out of range"},
      {N, "1e999999999999", "out of range"},
      {S, "12345678901234567890123", "out of range"},
      /* not the JSON number grammar */
      {S, "-", "expected epoch milliseconds (a number): no digits"},
      {S, "+1", "expected epoch milliseconds (a number), found '+'"},
      {S, "01", "leading zeros are not allowed"},
      {S, "-01", "leading zeros are not allowed"},
      {S, "00", "leading zeros"},
      {S, "1.", "no digits after '.'"},
      {S, ".5", "found '.'"},
      {S, "1e", "no digits in the exponent"},
      {S, "1e+", "no digits in the exponent"},
      {S, "1.2.3", "unexpected '.' after the number"},
      {S, "0x10", "unexpected 'x' after the number"},
      {S, "1_000", "unexpected '_'"},
      {S, "NaN", "found 'N'"},
      {S, "Infinity", "found 'I'"},
      {S, "-Infinity", "found 'I'"},
      {S, "abc", "expected epoch milliseconds (a number), found 'a'"},
      {N, "12abc", "unexpected 'a' after the number"}, /* the scanner stops at delimiters only */
      {N, "1700000000000x", "unexpected 'x'"},
      {S, "\\u0031", "escape sequences are not read"},
      /* whitespace inside a string */
      {S, " 1", "found whitespace"},
      {S, "1 ", "unexpected whitespace after the number"},
      {S, "1\t", "unexpected whitespace"},
      {S, "1\xc3\xa9", "unexpected byte 0xc3"},
      /* types */
      {S, "", "expected epoch milliseconds (a number), got an empty string"},
      {SL_JSON_BOOL, "true", "expected epoch milliseconds (a number), got a boolean"},
      {SL_JSON_NULL, "null", "got null"},
      {SL_JSON_OBJECT, "{\"a\":1}", "got an object"},
      {SL_JSON_ARRAY, "[1]", "got an array"},
      {SL_JSON_NONE, NULL, "got no value"},
  };
  check_bad(SL_TS_FORMAT_EPOCH_MS, bad, SL_ARRAY_LEN(bad));
}

/* ------------------------------------------------------------ epoch_s */

static void test_epoch_s_good(void **state) {
  (void)state;
  static const good_case_t good[] = {
      {N, "0", 0},
      {N, "1", 1000},
      {N, "-1", -1000},
      {N, "1700000000", INT64_C(1700000000000)},
      {S, "1700000000", INT64_C(1700000000000)},
      {N, "1700000000.5", INT64_C(1700000000500)},
      {N, "1700000000.25", INT64_C(1700000000250)},
      {N, "1700000000.123", INT64_C(1700000000123)},
      {N, "1700000000.9999", INT64_C(1700000000999)},
      {N, "1700000000.999999999", INT64_C(1700000000999)},
      {N, "0.001", 1},
      {N, "0.0009", 0},
      {N, "-0.0001", -1},
      {N, "-1.0005", -1001},
      {N, "-1.5", -1500},
      {N, "1.7e9", INT64_C(1700000000000)},
      {N, "1.7000000005e9", INT64_C(1700000000500)},
      {N, "17e-4", 1},
      {N, "9223372036854775", INT64_C(9223372036854775000)}, /* fast path, at the limit */
      {N, "9223372036854775.807", INT64_MAX},
      {N, "9223372036854775.8079", INT64_MAX},
      {N, "-9223372036854775.808", INT64_MIN},
      {N, "-9223372036854775", INT64_C(-9223372036854775000)},
  };
  check_good(SL_TS_FORMAT_EPOCH_S, good, SL_ARRAY_LEN(good));
}

static void test_epoch_s_bad(void **state) {
  (void)state;
  static const bad_case_t bad[] = {
      {N, "9223372036854776", "epoch seconds out of range"},
      {N, "-9223372036854776", "out of range"},
      {N, "123456789012345678", "out of range"}, /* 18 digits: fast path */
      {N, "9223372036854775.808", "out of range"},
      {N, "-9223372036854775.8081", "out of range"},
      {N, "1e16", "out of range"},
      {S, "1.", "expected epoch seconds (a number): no digits after '.'"},
      {S, "1,5", "unexpected ','"},
      {S, "2026-11-24T10:15:00Z", "unexpected '-' after the number"},
      {S, "", "expected epoch seconds (a number), got an empty string"},
      {SL_JSON_BOOL, "false", "expected epoch seconds (a number), got a boolean"},
  };
  check_bad(SL_TS_FORMAT_EPOCH_S, bad, SL_ARRAY_LEN(bad));
}

/* ------------------------------------------------------------ rfc3339 */

static void test_rfc3339_good(void **state) {
  (void)state;
  static const good_case_t good[] = {
      {S, "1970-01-01T00:00:00Z", 0},
      {S, "1970-01-01T00:00:00.001Z", 1},
      {S, "1969-12-31T23:59:59.999Z", -1},
      {S, "1969-12-31T23:59:59Z", -1000},
      {S, "2026-11-24T10:15:00.250Z", INT64_C(1795515300250)},
      {S, "2026-11-24T11:15:00.250+01:00", INT64_C(1795515300250)},
      {S, "2026-11-24T05:15:00.250-05:00", INT64_C(1795515300250)},
      {S, "2026-11-24T15:45:00.250+05:30", INT64_C(1795515300250)},
      {S, "2026-11-24T10:15:00.250-00:00", INT64_C(1795515300250)},
      {S, "2026-11-24T10:15:00.250+00:00", INT64_C(1795515300250)},
      {S, "2026-11-24t10:15:00.250z", INT64_C(1795515300250)},
      {S, "2026-11-24 10:15:00.250Z", INT64_C(1795515300250)},
      /* fractions of any length, floored to the millisecond */
      {S, "1970-01-01T00:00:00.5Z", 500},
      {S, "1970-01-01T00:00:00.25Z", 250},
      {S, "1970-01-01T00:00:00.123456789Z", 123},
      {S, "1970-01-01T00:00:00.9999999999999999999999Z", 999},
      {S, "1970-01-01T00:00:00.000Z", 0},
      {S, "1969-12-31T23:59:59.0005Z", -1000}, /* floor within the second */
      /* leap years */
      {S, "2024-02-29T00:00:00Z", INT64_C(1709164800000)},
      {S, "2000-02-29T12:00:00Z", INT64_C(951825600000)},
      {S, "2400-02-29T00:00:00Z", INT64_C(13574563200000)},
      {S, "1600-02-29T23:59:59Z", INT64_C(-11670912001000)},
      {S, "1900-03-01T00:00:00Z", INT64_C(-2203891200000)},
      {S, "2038-01-19T03:14:08Z", INT64_C(2147483648000)}, /* past 32-bit time_t */
      /* range of the format */
      {S, "0000-01-01T00:00:00Z", INT64_C(-62167219200000)},
      {S, "0001-01-01T00:00:00Z", INT64_C(-62135596800000)},
      {S, "9999-12-31T23:59:59.999Z", INT64_C(253402300799999)},
      {S, "9999-12-31T23:59:59.999-23:59", INT64_C(253402300799999) + INT64_C(86340000)},
      {S, "0000-01-01T00:00:00+23:59", INT64_C(-62167219200000) - INT64_C(86340000)},
      {S, "1970-01-01T00:00:00+23:59", INT64_C(-86340000)},
      {S, "1970-01-01T00:00:00-23:59", INT64_C(86340000)},
      /* last day of each kind of month */
      {S, "2026-01-31T00:00:00Z", INT64_C(1769817600000)},
      {S, "2026-04-30T00:00:00Z", INT64_C(1777507200000)},
      {S, "2026-12-31T23:59:59Z", INT64_C(1798761599000)},
      /* a leap second is the last millisecond of its minute */
      {S, "2016-12-31T23:59:60Z", INT64_C(1483228799999)},
      {S, "2016-12-31T23:59:60.5Z", INT64_C(1483228799999)},
      {S, "2017-01-01T00:59:60+01:00", INT64_C(1483228799999)},
      {S, "2016-12-31T23:59:59.999Z", INT64_C(1483228799999)},
  };
  check_good(SL_TS_FORMAT_RFC3339, good, SL_ARRAY_LEN(good));
}

static void test_rfc3339_bad(void **state) {
  (void)state;
  static const bad_case_t bad[] = {
      {S, "2026-13-01T00:00:00Z", "not an RFC 3339 timestamp: month 13 is not 01-12"},
      {S, "2026-00-01T00:00:00Z", "month 00 is not 01-12"},
      {S, "2026-01-00T00:00:00Z", "day 00 does not exist in 2026-01"},
      {S, "2026-01-32T00:00:00Z", "day 32 does not exist in 2026-01"},
      {S, "2026-04-31T00:00:00Z", "day 31 does not exist in 2026-04"},
      {S, "2023-02-29T00:00:00Z", "day 29 does not exist in 2023-02"},
      {S, "1900-02-29T00:00:00Z", "day 29 does not exist in 1900-02"},
      {S, "2100-02-29T00:00:00Z", "day 29 does not exist"},
      {S, "2024-02-30T00:00:00Z", "day 30 does not exist in 2024-02"},
      {S, "2026-01-01T24:00:00Z", "hour 24 is not 00-23"},
      {S, "2026-01-01T23:60:00Z", "minute 60 is not 00-59"},
      {S, "2026-01-01T23:59:61Z", "second 61 is not 00-60"},
      {S, "2026-01-01T00:00:00+24:00", "offset +24:00 is not within -23:59..+23:59"},
      {S, "2026-01-01T00:00:00-23:60", "offset -23:60 is not within"},
      {S, "2026-01-01", "a date without a time"},
      {S, "2026-01-01T", "expected a 2-digit hour"},
      {S, "2026-01-01T00:00Z", "expected ':' after the minutes (seconds are required)"},
      {S, "2026-01-01T00:00:00", "no time zone"},
      {S, "2026-01-01T00:00:00.Z", "no digits after '.'"},
      {S, "2026-01-01T00:00:00.123", "no time zone"},
      {S, "2026-01-01T00:00:00ZX", "unexpected 'X' after the time zone"},
      {S, "2026-01-01T00:00:00+01:00:00", "unexpected ':' after the time zone"},
      {S, "2026-01-01T00:00:00+0100", "expected the offset as +HH:MM or -HH:MM"},
      {S, "2026-01-01T00:00:00+01", "expected the offset as +HH:MM or -HH:MM"},
      {S, "2026-01-01T00:00:00+1:00", "expected the offset"},
      {S, "2026-01-01T00:00:00UTC", "expected 'Z', +HH:MM or -HH:MM, found 'U'"},
      {S, "2026-01-01T00:00:00 +01:00", "found whitespace"},
      {S, "2026-01-01T00:00:00,5Z", "found ','"},
      {S, " 2026-01-01T00:00:00Z", "expected a 4-digit year"},
      {S, "2026-01-01T00:00:00Z ", "unexpected whitespace after the time zone"},
      {S, "26-01-01T00:00:00Z", "expected a 4-digit year"},
      {S, "+2026-01-01T00:00:00Z", "expected a 4-digit year"},
      {S, "-0001-01-01T00:00:00Z", "expected a 4-digit year"},
      {S, "12026-01-01T00:00:00Z", "expected '-' after the year"},
      {S, "2026/01/01T00:00:00Z", "expected '-' after the year"},
      {S, "2026-1-01T00:00:00Z", "expected a 2-digit month"},
      {S, "2026-01-1T00:00:00Z", "expected a 2-digit day"},
      {S, "2026-01-01X00:00:00Z", "expected 'T' between the date and the time"},
      {S, "2026-01-01T0:00:00Z", "expected a 2-digit hour"},
      {S, "2026-01-01T00-00-00Z", "expected ':' after the hour"},
      {S, "2026-01-01T00:0:00Z", "expected 2-digit minutes"},
      {S, "2026-01-01T00:00:0Z", "expected 2-digit seconds"},
      {S, "2026\\u002d01-01T00:00:00Z", "expected '-' after the year"},
      {S, "Tue, 24 Nov 2026 10:15:00 GMT", "not an RFC 3339 timestamp"},
      {S, "1700000000000", "expected '-' after the year"},
      {S, "", "expected an RFC 3339 timestamp (a string), got an empty string"},
      {N, "1700000000000", "expected an RFC 3339 timestamp (a string), got a number"},
      {SL_JSON_BOOL, "true", "got a boolean"},
      {SL_JSON_NULL, "null", "got null"},
      {SL_JSON_OBJECT, "{}", "got an object"},
      {SL_JSON_ARRAY, "[]", "got an array"},
      {SL_JSON_NONE, NULL, "got no value"},
  };
  check_bad(SL_TS_FORMAT_RFC3339, bad, SL_ARRAY_LEN(bad));
}

/* ------------------------------------------------------------ cross-checks */

/* A small deterministic generator (the test must not depend on rand()). */
static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/*
 * Random instants between years 0001 and 9999, written with gmtime_r in
 * random offsets and fraction lengths, must read back exactly. gmtime_r
 * needs a 64-bit time_t, which every platform we build on has.
 */
static void test_rfc3339_against_gmtime(void **state) {
  (void)state;
  const int64_t lo = INT64_C(-62135596800), hi = INT64_C(253402300799); /* 0001 .. 9999 */
  uint64_t seed = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < 20000; i++) {
    int64_t secs = lo + (int64_t)(next_rand(&seed) % (uint64_t)(hi - lo + 1));
    int ms = (int)(next_rand(&seed) % 1000);
    int off = (int)(next_rand(&seed) % (2 * 1439 + 1)) - 1439; /* minutes, within ±23:59 */
    if (i % 4 == 0) off = 0;
    time_t local = (time_t)(secs + off * 60);
    if (secs + off * 60 < lo || secs + off * 60 > hi) continue; /* keep the year 4-digit */
    struct tm tm;
    assert_non_null(gmtime_r(&local, &tm));
    char text[64];
    int len = snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    switch (i % 3) { /* fraction: none, exactly ms, or longer (floored) */
    case 0:
      ms = 0;
      break;
    case 1:
      len += snprintf(text + len, sizeof(text) - (size_t)len, ".%03d", ms);
      break;
    default:
      len += snprintf(text + len, sizeof(text) - (size_t)len, ".%03d%u", ms,
                      (unsigned)(next_rand(&seed) % 1000000));
      break;
    }
    if (off == 0)
      snprintf(text + len, sizeof(text) - (size_t)len, "Z");
    else
      snprintf(text + len, sizeof(text) - (size_t)len, "%c%02d:%02d", off < 0 ? '-' : '+',
               abs(off) / 60, abs(off) % 60);
    sl_json_value_t v = {SL_JSON_STRING, text, strlen(text)};
    int64_t got = 0;
    char why[128] = "";
    if (sl_ts_parse(&v, SL_TS_FORMAT_RFC3339, &got, why, sizeof(why)) != 0)
      fail_msg("'%s' rejected: %s", text, why);
    if (got != secs * 1000 + ms)
      fail_msg("'%s': got %" PRId64 ", expected %" PRId64, text, got, secs * 1000 + ms);
  }
}

/* Random int64 milliseconds and seconds, written by printf, read back. */
static void test_epoch_roundtrip(void **state) {
  (void)state;
  uint64_t seed = 12345;
  for (int i = 0; i < 20000; i++) {
    int64_t v = (int64_t)next_rand(&seed);
    if (i % 3 == 0) v >>= (next_rand(&seed) % 63); /* all magnitudes */
    char text[48];
    snprintf(text, sizeof(text), "%" PRId64, v);
    sl_json_value_t j = {SL_JSON_NUMBER, text, strlen(text)};
    int64_t got = 0;
    assert_int_equal(sl_ts_parse(&j, SL_TS_FORMAT_EPOCH_MS, &got, NULL, 0), 0);
    assert_true(got == v);

    /* seconds with a 3-digit fraction: v ms written as s.fff */
    int64_t s = v / 1000, f = v % 1000;
    if (f < 0) { /* floor division, so that the text is s + 0.fff */
      s -= 1;
      f += 1000;
    }
    if (s < 0 && f) /* -1.5 s is -1500 ms: write the magnitude the other way */
      snprintf(text, sizeof(text), "-%" PRId64 ".%03d", -(s + 1), (int)(1000 - f));
    else
      snprintf(text, sizeof(text), "%" PRId64 ".%03d", s, (int)f);
    j.len = strlen(text);
    got = 0;
    char why[128] = "";
    if (sl_ts_parse(&j, SL_TS_FORMAT_EPOCH_S, &got, why, sizeof(why)) != 0)
      fail_msg("'%s' rejected: %s", text, why);
    if (got != v) fail_msg("'%s': got %" PRId64 ", expected %" PRId64, text, got, v);
  }
}

/* ------------------------------------------------------------ API details */

/* Values as the JSON scanner finds them in a record. */
static void test_from_json_records(void **state) {
  (void)state;
  const char *rec = "{\"id\":7, \"ms\": 1700000000123 ,\"s\":1700000000.5,"
                    "\"iso\":\"2026-11-24T10:15:00.250+00:00\",\"neg\":-1.5,\"b\":true,"
                    "\"o\":{\"ts\":1}}";
  sl_json_value_t v;
  int64_t ms = 0;
  assert_int_equal(sl_json_scan_get(rec, strlen(rec), "ms", &v), 0);
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_MS, &ms, NULL, 0), 0);
  assert_true(ms == INT64_C(1700000000123));
  assert_int_equal(sl_json_scan_get(rec, strlen(rec), "s", &v), 0);
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_S, &ms, NULL, 0), 0);
  assert_true(ms == INT64_C(1700000000500));
  assert_int_equal(sl_json_scan_get(rec, strlen(rec), "iso", &v), 0);
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_RFC3339, &ms, NULL, 0), 0);
  assert_true(ms == INT64_C(1795515300250));
  assert_int_equal(sl_json_scan_get(rec, strlen(rec), "neg", &v), 0);
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_MS, &ms, NULL, 0), 0);
  assert_true(ms == -2);

  char why[128];
  assert_int_equal(sl_json_scan_get(rec, strlen(rec), "b", &v), 0);
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_MS, &ms, why, sizeof(why)), -1);
  assert_string_equal(why, "expected epoch milliseconds (a number), got a boolean");
  assert_int_equal(sl_json_scan_get(rec, strlen(rec), "o", &v), 0);
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_S, &ms, why, sizeof(why)), -1);
  assert_string_equal(why, "expected epoch seconds (a number), got an object");
  /* an absent field: the scanner leaves type NONE */
  assert_int_equal(sl_json_scan_get(rec, strlen(rec), "nope", &v), SL_ENOTFOUND);
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_RFC3339, &ms, why, sizeof(why)), -1);
  assert_string_equal(why, "expected an RFC 3339 timestamp (a string), got no value");
}

static void test_reason_buffer(void **state) {
  (void)state;
  sl_json_value_t v = {SL_JSON_BOOL, "true", 4};
  int64_t ms = 0;
  /* no buffer at all */
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_MS, &ms, NULL, 0), -1);
  assert_int_equal(sl_ts_parse(NULL, SL_TS_FORMAT_EPOCH_MS, &ms, NULL, 0), -1);
  /* a short one: truncated and terminated, never overrun */
  char why[12];
  memset(why, 'x', sizeof(why));
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_MS, &ms, why, 8), -1);
  assert_string_equal(why, "expecte");
  assert_int_equal(why[8], 'x');
  /* whylen 0 writes nothing */
  memset(why, 'x', sizeof(why));
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_MS, &ms, why, 0), -1);
  assert_int_equal(why[0], 'x');
  /* an unknown format is an error, not a crash */
  v = (sl_json_value_t){SL_JSON_NUMBER, "1", 1};
  assert_int_equal(sl_ts_parse(&v, (sl_ts_format_t)99, &ms, why, sizeof(why)), -1);
  /* a value that is not NUL-terminated: only len bytes are read */
  const char buf[] = {'1', '2', '3', '4'};
  v = (sl_json_value_t){SL_JSON_NUMBER, buf, 2};
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_EPOCH_MS, &ms, NULL, 0), 0);
  assert_int_equal(ms, 12);
  const char iso[] = "2026-11-24T10:15:00.25Zjunk";
  v = (sl_json_value_t){SL_JSON_STRING, iso, 23};
  assert_int_equal(sl_ts_parse(&v, SL_TS_FORMAT_RFC3339, &ms, NULL, 0), 0);
  assert_true(ms == INT64_C(1795515300250));
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(sl_ts_format_name(SL_TS_FORMAT_EPOCH_MS), "epoch_ms");
  assert_string_equal(sl_ts_format_name(SL_TS_FORMAT_EPOCH_S), "epoch_s");
  assert_string_equal(sl_ts_format_name(SL_TS_FORMAT_RFC3339), "rfc3339");
  assert_string_equal(sl_ts_origin_name(SL_TS_ORIGIN_FIELD), "field");
  assert_string_equal(sl_ts_origin_name(SL_TS_ORIGIN_SOURCE), "source");
  assert_string_equal(sl_ts_origin_name(SL_TS_ORIGIN_INGESTION), "ingestion");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_epoch_ms_good),
      cmocka_unit_test(test_epoch_ms_bad),
      cmocka_unit_test(test_epoch_s_good),
      cmocka_unit_test(test_epoch_s_bad),
      cmocka_unit_test(test_rfc3339_good),
      cmocka_unit_test(test_rfc3339_bad),
      cmocka_unit_test(test_rfc3339_against_gmtime),
      cmocka_unit_test(test_epoch_roundtrip),
      cmocka_unit_test(test_from_json_records),
      cmocka_unit_test(test_reason_buffer),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
