/* log.c - see log.h. */
#define _GNU_SOURCE
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = SL_LOG_INFO;
static _Atomic int g_json = 0;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sl_log_set_level(sl_log_level_t level) { atomic_store(&g_level, (int)level); }
void sl_log_set_json(int json) { atomic_store(&g_json, json ? 1 : 0); }

int sl_log_parse_level(const char *text, sl_log_level_t *out) {
  for (int i = 0; i < 4; i++)
    if (strcmp(text, level_names[i]) == 0) {
      *out = (sl_log_level_t)i;
      return 0;
    }
  if (strcmp(text, "warning") == 0) {
    *out = SL_LOG_WARN;
    return 0;
  }
  return -1;
}

void sl_log_init_from_env(void) {
  const char *lvl = getenv("SLUICE_LOG_LEVEL");
  sl_log_level_t l;
  if (lvl && sl_log_parse_level(lvl, &l) == 0) sl_log_set_level(l);
  const char *fmt = getenv("SLUICE_LOG_FORMAT");
  if (fmt && strcmp(fmt, "json") == 0) sl_log_set_json(1);
}

int sl_log_enabled(sl_log_level_t level) { return (int)level <= atomic_load(&g_level); }

static size_t json_escape(char *out, size_t cap, const char *s) {
  size_t n = 0;
  for (; *s && n + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
    } else {
      out[n++] = (char)c;
    }
  }
  out[n] = '\0';
  return n;
}

void sl_log_msgv(sl_log_level_t level, const char *where, const char *fmt, va_list ap) {
  if ((int)level < SL_LOG_ERROR || (int)level > SL_LOG_DEBUG) level = SL_LOG_ERROR;
  if (!sl_log_enabled(level)) return;
  char raw[2048], msg[2048];
  vsnprintf(raw, sizeof(raw), fmt, ap);
  /* One message, one line: control characters (a plugin's or script's
   * "\n<fake log line>", terminal escapes) are written escaped. */
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)raw; *p && o + 5 < sizeof(msg); p++) {
    if (*p < 0x20 && *p != '\t') {
      o += (size_t)snprintf(msg + o, sizeof(msg) - o, *p == '\n' ? "\\n" : "\\x%02x", *p);
    } else if (*p == 0x7f) {
      o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\\x7f");
    } else {
      msg[o++] = (char)*p;
    }
  }
  msg[o] = '\0';
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[64];
  snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  char line[4096];
  int n;
  if (atomic_load(&g_json)) {
    char emsg[3000], ewhere[256];
    json_escape(emsg, sizeof(emsg), msg);
    json_escape(ewhere, sizeof(ewhere), where ? where : "");
    n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"where\":\"%s\",\"msg\":\"%s\"}\n",
                 stamp, level_names[level], ewhere, emsg);
  } else {
    n = snprintf(line, sizeof(line), "%s %-5s %s%s%s\n", stamp, level_names[level],
                 where ? "[" : "", where ? where : "", where ? "] " : "");
    if (n > 0 && (size_t)n < sizeof(line) - 1) {
      /* the message after the prefix, keeping one trailing newline */
      n--;
      n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\n", msg);
    }
  }
  if (n < 0) return;
  if ((size_t)n >= sizeof(line)) {
    /* Truncated: keep the line a line. */
    n = sizeof(line) - 1;
    line[n - 1] = '\n';
  }
  ssize_t w = write(2, line, (size_t)n);
  (void)w;
}

void sl_log_msg(sl_log_level_t level, const char *where, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sl_log_msgv(level, where, fmt, ap);
  va_end(ap);
}
