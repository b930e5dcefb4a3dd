/*
 * event_time.h - reading a record's event time from a JSON value (the
 * `event_time: { field: ..., format: ... }` block of a source node, see
 * dag.h and docs/dag.md). Called once per record: no allocation, no locale,
 * no time zone database, no strtod for plain integers.
 */
#ifndef SL_EVENT_TIME_H
#define SL_EVENT_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "dag.h"
#include "sluice.h"

/**
 * Parse a timestamp in `fmt` from a JSON value found by sl_json_scan_get /
 * sl_json_get (v->ptr/len is the raw text; for a string, between the quotes).
 * Returns 0 and *out_ms (milliseconds since the epoch, UTC), or -1 with a
 * short reason written into why (NUL-terminated, truncated to whylen; why may
 * be NULL) and *out_ms untouched.
 *
 *  - EPOCH_MS: a JSON number, or a string holding one (JSON number grammar:
 *    no '+', no leading zeros, no spaces). Fractions and exponents are exact:
 *    the value is floored to the millisecond (-1.5 -> -2).
 *  - EPOCH_S: the same in seconds, kept to the millisecond by flooring
 *    (1700000000.9999 -> 1700000000999).
 *  - RFC3339: a string "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)";
 *    'T' may be 't' or a space and 'Z' may be 'z'. Any number of fraction
 *    digits, floored to the millisecond. Second 60 (a leap second) reads as
 *    HH:MM:59.999 whatever its fraction, so timestamps keep their order and
 *    stay within their minute. Years 0000-9999, proleptic Gregorian calendar.
 *
 * Values beyond what int64 milliseconds can hold are errors.
 */
int sl_ts_parse(const sl_json_value_t *v, sl_ts_format_t fmt, int64_t *out_ms, char *why,
                size_t whylen);

/** "field", "source", "ingestion" (as written in the DAG file). */
const char *sl_ts_origin_name(sl_ts_origin_t origin);
/** "epoch_ms", "epoch_s", "rfc3339" (as written in the DAG file). */
const char *sl_ts_format_name(sl_ts_format_t fmt);

#endif
