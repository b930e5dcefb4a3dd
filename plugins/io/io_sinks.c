/*
 * io_sinks.c - "stdout_sink", "file_sink" and "null_sink".
 *
 * Output is built in a per-instance buffer (1 MiB, grown only for a single
 * record larger than that) and written with write(2) in whole lines. A write
 * larger than PIPE_BUF to a pipe is not atomic (it can return early and let
 * another writer in), so each flush holds a process-wide mutex until the
 * whole buffer is out: parallel tasks sharing stdout never interleave inside
 * a line. One lock per flushed buffer (up to 1 MiB), never per record. The buffer
 * is written when full, when its oldest byte is older than one second (so a
 * slow stream still shows up), after every record when stdout is a
 * terminal, in on_end and in close.
 *
 * A write blocks when the reader (a pipe, a terminal) is slower than the
 * job: ABI 1.0 has no way for process() to hand back "no credit", and
 * blocking here is what turns a slow consumer into backpressure.
 *
 * Formats ("format" config):
 *  - value    : the value bytes, then '\n'
 *  - envelope : {"key":"...","value":V,"ts":N,"headers":{"name":"value",...}}
 *               where V is the value verbatim when it is a JSON object,
 *               array or number, else the value as a JSON string.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

#define IO_WRITE_BUF (1u << 20)
#define IO_FLUSH_MS 1000

enum { FMT_VALUE = 0, FMT_ENVELOPE = 1 };

typedef struct sink {
  int fd;
  int own_fd;
  int format;
  int flush_each; /* stdout is a terminal */
  char *path;     /* for messages */
  char *buf;
  size_t len, cap;
  int64_t first_ms; /* when the oldest buffered byte was written, -1 if empty */
  sl_counter_t *records;
} sink_t;

/* Write everything, waiting (poll) if the fd is non-blocking and full. */
static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      (void)poll(&pfd, 1, 1000);
      continue;
    }
    return w < 0 ? -errno : -EIO;
  }
  return 0;
}

static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;

static int sink_flush(sink_t *s) {
  if (s->len == 0) return 0;
  pthread_mutex_lock(&flush_mu);
  int rc = write_all(s->fd, s->buf, s->len);
  pthread_mutex_unlock(&flush_mu);
  s->len = 0;
  s->first_ms = -1;
  return rc;
}

/* Make room for `need` more bytes; a flush failure is returned as -errno. */
static int sink_reserve(sink_t *s, size_t need) {
  if (s->cap - s->len >= need) return 0;
  int rc = sink_flush(s);
  if (rc) return rc;
  if (s->cap >= need) return 0;
  char *nb = realloc(s->buf, need);
  if (!nb) return -ENOMEM;
  s->buf = nb;
  s->cap = need;
  return 0;
}

static void sink_close(void *state) {
  sink_t *s = state;
  if (!s) return;
  if (s->buf) (void)sink_flush(s); /* on_end already flushed and reported errors */
  if (s->own_fd && s->fd >= 0) close(s->fd);
  free(s->buf);
  free(s->path);
  free(s);
}

static int sink_parse_format(sl_ctx_t *ctx, int *out, const char *opname, char *errbuf,
                             size_t errbuf_len) {
  const char *f = sl_config_string(ctx, "format");
  if (!f || !*f || strcmp(f, "value") == 0) {
    *out = FMT_VALUE;
  } else if (strcmp(f, "envelope") == 0) {
    *out = FMT_ENVELOPE;
  } else {
    snprintf(errbuf, errbuf_len, "%s: format must be value or envelope, not '%s'", opname, f);
    return SL_ECONFIG;
  }
  return SL_OK;
}

static int sink_new(sl_ctx_t *ctx, sink_t **out, const char *opname, const char *path,
                    char *errbuf, size_t errbuf_len) {
  int format;
  int rc = sink_parse_format(ctx, &format, opname, errbuf, errbuf_len);
  if (rc) return rc;
  sink_t *s = calloc(1, sizeof *s);
  if (!s || !(s->buf = malloc(IO_WRITE_BUF)) || !(s->path = strdup(path))) {
    if (s) free(s->buf);
    free(s);
    snprintf(errbuf, errbuf_len, "%s: out of memory", opname);
    return SL_ENOMEM;
  }
  s->fd = -1;
  s->cap = IO_WRITE_BUF;
  s->format = format;
  s->first_ms = -1;
  s->records = sl_counter(ctx, "records");
  *out = s;
  return SL_OK;
}

static char *put_i64(char *d, int64_t v) {
  char tmp[24];
  char *t = tmp + sizeof tmp;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--t = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--t = '-';
  size_t n = (size_t)(tmp + sizeof tmp - t);
  memcpy(d, t, n);
  return d + n;
}

static size_t put_json_string(char *d, const void *p, size_t n) {
  d[0] = '"';
  size_t k = 1 + io_json_escape(d + 1, p, n);
  d[k] = '"';
  return k + 1;
}

static int sink_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  sink_t *s = state;
  int rc;
  if (s->format == FMT_VALUE) {
    rc = sink_reserve(s, rec->value_len + 1);
    if (rc) goto fail;
    if (rec->value_len) memcpy(s->buf + s->len, rec->value, rec->value_len);
    s->len += rec->value_len;
    s->buf[s->len++] = '\n';
  } else {
    /* Worst case: every byte escaped to 6; fixed text stays under 64 bytes. */
    size_t need = 64 + IO_JSON_ESCAPED_MAX(rec->key_len) + IO_JSON_ESCAPED_MAX(rec->value_len);
    for (uint32_t i = 0; i < rec->header_count; i++)
      need += 8 + IO_JSON_ESCAPED_MAX(rec->headers[i].name_len) +
              IO_JSON_ESCAPED_MAX(rec->headers[i].value_len);
    rc = sink_reserve(s, need);
    if (rc) goto fail;
    char *d = s->buf + s->len, *d0 = d;
    memcpy(d, "{\"key\":", 7);
    d += 7;
    d += put_json_string(d, rec->key, rec->key_len);
    memcpy(d, ",\"value\":", 9);
    d += 9;
    if (io_json_is_structured(rec->value, rec->value_len))
      d += io_json_copy_one_line(d, rec->value, rec->value_len);
    else
      d += put_json_string(d, rec->value, rec->value_len);
    memcpy(d, ",\"ts\":", 6);
    d = put_i64(d + 6, rec->ts);
    memcpy(d, ",\"headers\":{", 12);
    d += 12;
    for (uint32_t i = 0; i < rec->header_count; i++) {
      if (i) *d++ = ',';
      d += put_json_string(d, rec->headers[i].name, rec->headers[i].name_len);
      *d++ = ':';
      d += put_json_string(d, rec->headers[i].value, rec->headers[i].value_len);
    }
    memcpy(d, "}}\n", 3);
    d += 3;
    s->len += (size_t)(d - d0);
  }
  sl_counter_add(s->records, 1);
  if (s->flush_each) {
    rc = sink_flush(s);
    if (rc) goto fail;
  } else {
    int64_t now = sl_now_ms(ctx);
    if (s->first_ms < 0) {
      s->first_ms = now;
    } else if (now - s->first_ms >= IO_FLUSH_MS) {
      rc = sink_flush(s);
      if (rc) goto fail;
    }
  }
  return SL_OK;
fail:
  /* Not this record's fault: the output is broken and buffered lines are
   * lost, so the job fails whatever the node's on_error says. */
  sl_fail(ctx, "writing to %s failed: %s", s->path, strerror(-rc));
  return rc == -ENOMEM ? SL_ENOMEM : SL_EIO;
}

static int sink_on_end(sl_ctx_t *ctx, void *state) {
  sink_t *s = state;
  int rc = sink_flush(s);
  if (rc) {
    sl_fail(ctx, "writing to %s failed: %s", s->path, strerror(-rc));
    return SL_EIO;
  }
  return SL_OK;
}

/* ------------------------------------------------------------ stdout_sink */

static int stdout_sink_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  sink_t *s;
  int rc = sink_new(ctx, &s, "stdout_sink", "<stdout>", errbuf, errbuf_len);
  if (rc) return rc;
  s->fd = 1;
  s->own_fd = 0;
  s->flush_each = isatty(1);
  *state = s;
  return SL_OK;
}

/* ------------------------------------------------------------ file_sink */

static int file_sink_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  const char *path = sl_config_string(ctx, "path");
  if (!path || !*path) {
    snprintf(errbuf, errbuf_len, "file_sink: config 'path' is required");
    return SL_ECONFIG;
  }
  uint32_t par = sl_parallelism(ctx);
  char *full;
  if (par > 1) {
    size_t n = strlen(path) + 16;
    full = malloc(n);
    if (full) snprintf(full, n, "%s.%u", path, (unsigned)sl_task_index(ctx));
  } else {
    full = strdup(path);
  }
  if (!full) {
    snprintf(errbuf, errbuf_len, "file_sink: out of memory");
    return SL_ENOMEM;
  }
  sink_t *s;
  int rc = sink_new(ctx, &s, "file_sink", full, errbuf, errbuf_len);
  if (rc) {
    free(full);
    return rc;
  }
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (sl_config_bool(ctx, "append") ? O_APPEND : O_TRUNC);
  s->fd = open(full, flags, 0666);
  if (s->fd < 0) {
    int e = errno;
    snprintf(errbuf, errbuf_len, "file_sink: cannot open '%s' for writing: %s", full, strerror(e));
    free(full);
    sink_close(s);
    return SL_EIO;
  }
  free(full);
  s->own_fd = 1;
  *state = s;
  return SL_OK;
}

/* ------------------------------------------------------------ null_sink */

static int null_sink_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  sl_counter_t *c = sl_counter(ctx, "records");
  if (!c) {
    snprintf(errbuf, errbuf_len, "null_sink: no counter");
    return SL_ENOMEM;
  }
  *state = c;
  return SL_OK;
}

static int null_sink_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  (void)ctx;
  (void)rec;
  sl_counter_add((sl_counter_t *)state, 1);
  return SL_OK;
}

/* ------------------------------------------------------------ descriptors */

#define FORMAT_KEY                                                                             \
  {"format", SL_CONFIG_STRING, "value",                                                        \
   "value: the value bytes then a newline; envelope: one JSON object per line with key, "      \
   "value (verbatim if a JSON object/array/number, else a string), ts and headers"}

static const sl_config_key_t stdout_sink_config[] = {FORMAT_KEY};

const sl_operator_t io_stdout_sink_op = {
    SL_OPERATOR_INIT,
    .name = "stdout_sink",
    .version = "1.0.0",
    .description = "Writes records to standard output, one line each (buffered; flushed at "
                   "least every second, and per line on a terminal)",
    .kind = SL_KIND_SINK,
    .config = stdout_sink_config,
    .config_count = 1,
    .open = stdout_sink_open,
    .process = sink_process,
    .on_end = sink_on_end,
    .close = sink_close,
};

static const sl_config_key_t file_sink_config[] = {
    {"path", SL_CONFIG_STRING, NULL,
     "file to write; relative to the process cwd; with parallelism > 1 task i writes PATH.i"},
    {"append", SL_CONFIG_BOOL, "false", "append to an existing file instead of truncating it"},
    FORMAT_KEY,
};

const sl_operator_t io_file_sink_op = {
    SL_OPERATOR_INIT,
    .name = "file_sink",
    .version = "1.0.0",
    .description = "Writes records to a file, one line each; with parallelism > 1 each task i "
                   "writes its own file PATH.i (PATH itself when parallelism is 1)",
    .kind = SL_KIND_SINK,
    .config = file_sink_config,
    .config_count = sizeof file_sink_config / sizeof file_sink_config[0],
    .open = file_sink_open,
    .process = sink_process,
    .on_end = sink_on_end,
    .close = sink_close,
};

const sl_operator_t io_null_sink_op = {
    SL_OPERATOR_INIT,
    .name = "null_sink",
    .version = "1.0.0",
    .description = "Discards records, counting them in the counter 'records'",
    .kind = SL_KIND_SINK,
    .open = null_sink_open,
    .process = null_sink_process,
};
