/*
 * json_valid.h - is a buffer one JSON text (RFC 8259)? A strict check that
 * allocates nothing and builds nothing: for sources that promise JSON
 * records (kafka_source `format: json`), so that a poison record is caught
 * where it enters, with its offset, rather than deep in the DAG.
 *
 * Checked: the grammar (objects, arrays, strings with their escapes,
 * numbers, true/false/null), control characters in strings, UTF-8 well-
 * formedness, one value surrounded only by whitespace, nesting up to
 * SL_JSON_MAX_DEPTH. Not checked: duplicate keys (RFC 8259 allows them).
 */
#ifndef SL_JSON_VALID_H
#define SL_JSON_VALID_H

#include <stddef.h>

#define SL_JSON_MAX_DEPTH 512

/** 0 when json[0..len) is one JSON text; -1 with the reason and the byte
 * offset in why. */
int sl_json_check(const void *json, size_t len, char *why, size_t whylen);

#endif
