/*
 * json_scan.h - find a top-level field of a JSON object in place: no
 * allocation, no tree. Used for key_by on a JSON field and offered to
 * plugins as sl_json_get(). A full parser (building values) is the Lua
 * codec's job; this one only has to locate a field fast and reject text
 * that is not an object.
 */
#ifndef SL_JSON_SCAN_H
#define SL_JSON_SCAN_H

#include <stddef.h>

#include "sluice.h"

/** See sl_json_get() in sluice.h. */
int sl_json_scan_get(const void *json, size_t len, const char *field, sl_json_value_t *out);

#endif
