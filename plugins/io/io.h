/*
 * io.h - internals shared by the files of the "io" plugin (not an SDK header).
 */
#ifndef SLUICE_PLUGIN_IO_H
#define SLUICE_PLUGIN_IO_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.h"

/* Operator descriptors (io_sources.c, io_sinks.c). */
extern const sl_operator_t io_file_source_op;
extern const sl_operator_t io_stdin_source_op;
extern const sl_operator_t io_stdout_sink_op;
extern const sl_operator_t io_file_sink_op;
extern const sl_operator_t io_null_sink_op;

/* ---- JSON helpers (io_json.c) */

/** Upper bound of io_json_escape()'s output for n input bytes. */
#define IO_JSON_ESCAPED_MAX(n) ((n) * 6)

/**
 * Write src[0..n) as the inside of a JSON string (no quotes) to dst, which
 * has room for IO_JSON_ESCAPED_MAX(n) bytes: '"', '\\' and control
 * characters are escaped, valid UTF-8 is copied, each byte of an invalid
 * UTF-8 sequence becomes \ufffd. Returns the number of bytes written.
 */
size_t io_json_escape(char *dst, const void *src, size_t n);

/**
 * Non-zero when text[0..n) is exactly one JSON object, array or number
 * (surrounding whitespace allowed). Nesting deeper than 256 levels is
 * refused.
 */
int io_json_is_structured(const void *text, size_t n);

/**
 * Copy a text accepted by io_json_is_structured() to dst (room for n bytes),
 * turning raw CR/LF (which valid JSON only holds as insignificant whitespace)
 * into spaces, so the value stays on one line. Returns bytes written.
 */
size_t io_json_copy_one_line(char *dst, const void *text, size_t n);

#endif
