/*
 * log.h - the runtime's log: one line per message on stderr, text or JSON,
 * with a level threshold (SLUICE_LOG_LEVEL=error|warn|info|debug, or
 * --log-level; SLUICE_LOG_FORMAT=text|json). Thread-safe: one write(2) per line.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdarg.h>

#include "sluice.h"

void sl_log_set_level(sl_log_level_t level);
int sl_log_parse_level(const char *text, sl_log_level_t *out);
void sl_log_set_json(int json);
/** Read SLUICE_LOG_LEVEL and SLUICE_LOG_FORMAT. */
void sl_log_init_from_env(void);
int sl_log_enabled(sl_log_level_t level);
/** `where` names the component ("runtime", "node parse[1]"); may be NULL. */
void sl_log_msgv(sl_log_level_t level, const char *where, const char *fmt, va_list ap);
void sl_log_msg(sl_log_level_t level, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
