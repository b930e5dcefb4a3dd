/*
 * io_sources.c - "file_source" and "stdin_source": one record per line.
 *
 * Lines are cut in place in one large read buffer (1 MiB, doubled only when
 * a single line does not fit): no allocation and no copy per line. A record
 * points into the buffer; the host copies it during sl_emit().
 * The newline is not part of the record, nor is a '\r' right before it
 * (CRLF files read like LF files). A last line without a newline is a record.
 *
 * Checkpoints: file_source is replayable. snapshot() saves, as the operator
 * state "position", the byte offset of the first byte not yet consumed and
 * the number of the last line consumed (16 bytes: two little-endian u64);
 * open() after a restore seeks there and numbers the following lines from
 * there, so records (and their offsets) are the same as in an uninterrupted
 * run. stdin_source cannot seek back: it takes no part in checkpoints, and
 * a job restarted from one does not see again what it read before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

#define IO_READ_BUF (1u << 20)

/* ------------------------------------------------------------ line buffer */

typedef struct linebuf {
  char *buf;
  size_t cap;
  size_t start; /* first byte not yet returned */
  size_t end;   /* end of the bytes read */
  uint64_t base; /* offset in the input of buf[0] */
  int eof;
} linebuf_t;

static int lb_init(linebuf_t *lb) {
  memset(lb, 0, sizeof *lb);
  lb->buf = malloc(IO_READ_BUF);
  if (!lb->buf) return SL_ENOMEM;
  lb->cap = IO_READ_BUF;
  return SL_OK;
}

static void lb_free(linebuf_t *lb) { free(lb->buf); }

/* The next complete line, or 0 when none is buffered. */
static int lb_next(linebuf_t *lb, const char **line, size_t *len) {
  char *s = lb->buf + lb->start;
  char *nl = memchr(s, '\n', lb->end - lb->start);
  if (!nl) return 0;
  size_t n = (size_t)(nl - s);
  lb->start += n + 1;
  if (n && s[n - 1] == '\r') n--;
  *line = s;
  *len = n;
  return 1;
}

/* At EOF: the unterminated last line, if any. */
static int lb_rest(linebuf_t *lb, const char **line, size_t *len) {
  if (lb->start >= lb->end) return 0;
  *line = lb->buf + lb->start;
  *len = lb->end - lb->start;
  lb->start = lb->end;
  return 1;
}

/*
 * Read more bytes from fd: compacts, grows when a single line fills the
 * buffer. Returns > 0 bytes read, 0 at EOF (lb->eof set), SL_AGAIN when the
 * fd would block, or -errno.
 */
static int lb_fill(linebuf_t *lb, int fd) {
  if (lb->start > 0) {
    memmove(lb->buf, lb->buf + lb->start, lb->end - lb->start);
    lb->base += lb->start;
    lb->end -= lb->start;
    lb->start = 0;
  }
  if (lb->end == lb->cap) {
    size_t ncap = lb->cap * 2;
    char *nb = realloc(lb->buf, ncap);
    if (!nb) return -ENOMEM;
    lb->buf = nb;
    lb->cap = ncap;
  }
  for (;;) {
    ssize_t r = read(fd, lb->buf + lb->end, lb->cap - lb->end);
    if (r > 0) {
      lb->end += (size_t)r;
      return (int)(r > 0x7fffffff ? 0x7fffffff : r);
    }
    if (r == 0) {
      lb->eof = 1;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return SL_AGAIN;
    return -errno;
  }
}

/* ------------------------------------------------------------ common state */

typedef struct src {
  int fd;
  int own_fd;
  char *path; /* for messages */
  linebuf_t lb;
  int64_t line_no;    /* number of the last line read, from 1 */
  uint32_t task, par; /* file_source: task t keeps lines with (line-1) % par == t */
  const char *ts_field; /* NULL = ts 0 */
  sl_counter_t *ts_missing;
  int warned_ts;
  int done;
} src_t;

static void src_close(void *state) {
  src_t *s = state;
  if (!s) return;
  if (s->own_fd && s->fd >= 0) close(s->fd);
  lb_free(&s->lb);
  free(s->path);
  free(s);
}

/* Parse a JSON number (or a string of digits) as integer milliseconds. */
static int parse_ts(const sl_json_value_t *v, int64_t *out) {
  if (v->type != SL_JSON_NUMBER && v->type != SL_JSON_STRING) return 0;
  if (v->len == 0 || v->len > 40) return 0;
  char tmp[48];
  memcpy(tmp, v->ptr, v->len);
  tmp[v->len] = 0;
  char *end;
  errno = 0;
  long long ll = strtoll(tmp, &end, 10);
  if (*end == 0 && errno == 0) {
    *out = ll;
    return 1;
  }
  if (v->type != SL_JSON_NUMBER) return 0;
  double d = strtod(tmp, &end); /* 1.7e12 and the like */
  if (*end != 0 || !(d > -9.2e18 && d < 9.2e18)) return 0;
  *out = (int64_t)d;
  return 1;
}

static int src_emit_line(sl_ctx_t *ctx, src_t *s, const char *line, size_t len) {
  sl_record_t rec = {.value = line, .value_len = len, .ts = 0, .offset = s->line_no};
  if (s->ts_field) {
    sl_json_value_t v;
    if (sl_json_get(ctx, line, len, s->ts_field, &v) != 0 || !parse_ts(&v, &rec.ts)) {
      rec.ts = 0;
      if (s->ts_missing) sl_counter_add(s->ts_missing, 1);
      if (!s->warned_ts) {
        s->warned_ts = 1;
        sl_log(ctx, SL_LOG_WARN,
               "%s line %lld: no integer field '%s' (epoch ms); such lines get ts 0 "
               "(counted in ts_missing, warned once)",
               s->path, (long long)s->line_no, s->ts_field);
      }
    }
  }
  return sl_emit(ctx, &rec);
}

static int src_common_open(sl_ctx_t *ctx, src_t **out, const char *path, char *errbuf,
                           size_t errbuf_len) {
  src_t *s = calloc(1, sizeof *s);
  if (!s || lb_init(&s->lb) != SL_OK || !(s->path = strdup(path))) {
    if (s) {
      lb_free(&s->lb);
      free(s);
    }
    snprintf(errbuf, errbuf_len, "out of memory");
    return SL_ENOMEM;
  }
  s->fd = -1;
  s->task = sl_task_index(ctx);
  s->par = sl_parallelism(ctx);
  if (s->par == 0) s->par = 1;
  const char *tsf = sl_config_string(ctx, "ts_field");
  s->ts_field = tsf && *tsf ? tsf : NULL;
  if (s->ts_field) s->ts_missing = sl_counter(ctx, "ts_missing");
  *out = s;
  return SL_OK;
}

/* ------------------------------------------------------------ file_source */

#define POS_STATE_NAME "position"
#define POS_STATE_LEN 16

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/*
 * After a restore: seek to the saved position. Fails when the state is
 * malformed, the file is now shorter than the saved offset (it was replaced
 * or truncated: the lines after the checkpoint cannot be found) or cannot
 * seek (a FIFO).
 */
static int file_source_restore(sl_ctx_t *ctx, src_t *s, const struct stat *st, char *errbuf,
                               size_t errbuf_len) {
  uint64_t ckpt = sl_checkpoint_restored(ctx);
  if (ckpt == 0) return SL_OK;
  sl_bytes_t b;
  int rc = sl_op_state_get(ctx, POS_STATE_NAME, &b);
  if (rc == SL_ENOTFOUND) {
    sl_log(ctx, SL_LOG_WARN, "checkpoint %llu has no position for this task: reading '%s' from "
           "the start", (unsigned long long)ckpt, s->path);
    return SL_OK;
  }
  if (rc < 0) {
    snprintf(errbuf, errbuf_len,
             "file_source: cannot read operator state '%s' of checkpoint %llu: %s",
             POS_STATE_NAME, (unsigned long long)ckpt, sl_strerror(ctx, rc));
    return rc;
  }
  if (b.len != POS_STATE_LEN) {
    snprintf(errbuf, errbuf_len,
             "file_source: operator state '%s' of checkpoint %llu is %zu bytes, expected %d",
             POS_STATE_NAME, (unsigned long long)ckpt, b.len, POS_STATE_LEN);
    return SL_EINVAL;
  }
  uint64_t off = get_le64(b.ptr);
  uint64_t line = get_le64((const unsigned char *)b.ptr + 8);
  /* Every consumed line took at least one byte (its newline, or its text). */
  if (off > (uint64_t)INT64_MAX || line > off) {
    snprintf(errbuf, errbuf_len,
             "file_source: operator state '%s' of checkpoint %llu is invalid (offset %llu, "
             "line %llu)",
             POS_STATE_NAME, (unsigned long long)ckpt, (unsigned long long)off,
             (unsigned long long)line);
    return SL_EINVAL;
  }
  if (S_ISREG(st->st_mode) && (uint64_t)st->st_size < off) {
    snprintf(errbuf, errbuf_len,
             "file_source: '%s' is %lld bytes, shorter than the position %llu (after line %llu) "
             "saved in checkpoint %llu: the file was truncated or replaced, cannot resume",
             s->path, (long long)st->st_size, (unsigned long long)off, (unsigned long long)line,
             (unsigned long long)ckpt);
    return SL_EIO;
  }
  if (off > 0 && lseek(s->fd, (off_t)off, SEEK_SET) == (off_t)-1) {
    int e = errno;
    snprintf(errbuf, errbuf_len,
             "file_source: cannot seek '%s' to the position %llu saved in checkpoint %llu: %s",
             s->path, (unsigned long long)off, (unsigned long long)ckpt, strerror(e));
    return SL_EIO;
  }
  s->lb.base = off;
  s->line_no = (int64_t)line;
  sl_log(ctx, SL_LOG_DEBUG, "resuming '%s' at byte %llu, after line %llu (checkpoint %llu)",
         s->path, (unsigned long long)off, (unsigned long long)line, (unsigned long long)ckpt);
  return SL_OK;
}

static int file_source_snapshot(sl_ctx_t *ctx, void *state, uint64_t checkpoint_id) {
  src_t *s = state;
  unsigned char b[POS_STATE_LEN];
  put_le64(b, s->lb.base + s->lb.start);
  put_le64(b + 8, (uint64_t)s->line_no);
  int rc = sl_op_state_put(ctx, POS_STATE_NAME, b, sizeof b);
  if (rc < 0) {
    sl_fail(ctx, "file_source: saving the position in '%s' for checkpoint %llu failed: %s",
            s->path, (unsigned long long)checkpoint_id, sl_strerror(ctx, rc));
    return rc;
  }
  return SL_OK;
}

static int file_source_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  const char *path = sl_config_string(ctx, "path");
  if (!path || !*path) {
    snprintf(errbuf, errbuf_len, "file_source: config 'path' is required");
    return SL_ECONFIG;
  }
  src_t *s;
  int rc = src_common_open(ctx, &s, path, errbuf, errbuf_len);
  if (rc) return rc;
  s->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0) {
    int e = errno;
    snprintf(errbuf, errbuf_len, "file_source: cannot open '%s': %s", path, strerror(e));
    src_close(s);
    return SL_EIO;
  }
  s->own_fd = 1;
  struct stat st;
  if (fstat(s->fd, &st) != 0) {
    int e = errno;
    snprintf(errbuf, errbuf_len, "file_source: cannot stat '%s': %s", path, strerror(e));
    src_close(s);
    return SL_EIO;
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(errbuf, errbuf_len, "file_source: '%s' is a directory, not a file", path);
    src_close(s);
    return SL_EIO;
  }
  rc = file_source_restore(ctx, s, &st, errbuf, errbuf_len);
  if (rc) {
    src_close(s);
    return rc;
  }
#ifdef POSIX_FADV_SEQUENTIAL
  (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  *state = s;
  return SL_OK;
}

static int file_source_poll(sl_ctx_t *ctx, void *state) {
  src_t *s = state;
  if (s->done || sl_stopping(ctx)) return SL_DONE;
  uint32_t budget = sl_budget(ctx);
  /* Lines of other tasks cost work too: bound the lines scanned per call. */
  uint64_t scan_left = (uint64_t)budget * s->par;
  uint32_t emitted = 0;
  while (emitted < budget && scan_left > 0) {
    const char *line;
    size_t len;
    int have = lb_next(&s->lb, &line, &len);
    if (!have && s->lb.eof) have = lb_rest(&s->lb, &line, &len);
    if (have) {
      scan_left--;
      s->line_no++;
      if ((uint64_t)(s->line_no - 1) % s->par != s->task) continue;
      int rc = src_emit_line(ctx, s, line, len);
      if (rc < 0) return rc;
      emitted++;
      continue;
    }
    if (s->lb.eof) {
      s->done = 1;
      return SL_DONE;
    }
    int r = lb_fill(&s->lb, s->fd);
    if (r == SL_AGAIN) return SL_AGAIN; /* not for regular files, but a FIFO may say so */
    if (r < 0) {
      sl_log(ctx, SL_LOG_ERROR, "file_source: reading '%s' failed: %s", s->path, strerror(-r));
      return SL_EIO;
    }
  }
  return SL_OK;
}

/* ------------------------------------------------------------ stdin_source */

static int stdin_source_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  src_t *s;
  int rc = src_common_open(ctx, &s, "<stdin>", errbuf, errbuf_len);
  if (rc) return rc;
  s->fd = 0;
  s->own_fd = 0;
  uint64_t ckpt = sl_checkpoint_restored(ctx);
  if (ckpt && s->task == 0)
    sl_log(ctx, SL_LOG_WARN,
           "resuming from checkpoint %llu, but stdin_source cannot replay its input: what it "
           "read before the restart is not read again (lines read after that checkpoint are "
           "lost)",
           (unsigned long long)ckpt);
  if (s->task != 0) {
    s->done = 1; /* one reader only: the other tasks end at once */
  } else if (fcntl(0, F_GETFL) < 0) {
    int e = errno;
    snprintf(errbuf, errbuf_len, "stdin_source: standard input is not open: %s", strerror(e));
    src_close(s);
    return SL_EIO;
  }
  *state = s;
  return SL_OK;
}

/*
 * fd 0 is never switched to O_NONBLOCK: its open file description is
 * usually shared (with the terminal's other fds, or the parent shell), so
 * the flag would leak out of this process. Instead each read is preceded by
 * a zero-timeout poll(): the read only happens when it cannot block.
 */
static int stdin_ready(void) {
  struct pollfd pfd = {.fd = 0, .events = POLLIN};
  for (;;) {
    int r = poll(&pfd, 1, 0);
    if (r >= 0) return r > 0; /* POLLIN, POLLHUP (EOF) or POLLERR: read will not block */
    if (errno != EINTR) return 1; /* let read() report the problem */
  }
}

static int stdin_source_poll(sl_ctx_t *ctx, void *state) {
  src_t *s = state;
  if (s->done || sl_stopping(ctx)) return SL_DONE;
  uint32_t budget = sl_budget(ctx);
  uint32_t emitted = 0;
  while (emitted < budget) {
    const char *line;
    size_t len;
    int have = lb_next(&s->lb, &line, &len);
    if (!have && s->lb.eof) have = lb_rest(&s->lb, &line, &len);
    if (have) {
      s->line_no++;
      int rc = src_emit_line(ctx, s, line, len);
      if (rc < 0) return rc;
      emitted++;
      continue;
    }
    if (s->lb.eof) {
      s->done = 1;
      return SL_DONE;
    }
    if (!stdin_ready()) return emitted ? SL_OK : SL_AGAIN;
    int r = lb_fill(&s->lb, 0);
    if (r == SL_AGAIN) return emitted ? SL_OK : SL_AGAIN;
    if (r < 0) {
      sl_log(ctx, SL_LOG_ERROR, "stdin_source: reading standard input failed: %s", strerror(-r));
      return SL_EIO;
    }
  }
  return SL_OK;
}

/* ------------------------------------------------------------ descriptors */

static const sl_config_key_t file_source_config[] = {
    {"path", SL_CONFIG_STRING, NULL, "file to read; a relative path is relative to the process cwd"},
    {"ts_field", SL_CONFIG_STRING, "",
     "JSON field holding the event time in epoch ms; empty = every record gets ts 0"},
};

const sl_operator_t io_file_source_op = {
    SL_OPERATOR_INIT,
    .name = "file_source",
    .version = "1.0.0",
    .description = "Reads a file, one record per line (newline and a CR before it stripped); "
                   "offset = line number from 1; with parallelism p, task t reads the lines n "
                   "with (n-1) % p == t; replayable: a checkpoint saves each task's byte offset "
                   "and line number, a restore seeks back there",
    .kind = SL_KIND_SOURCE,
    .config = file_source_config,
    .config_count = sizeof file_source_config / sizeof file_source_config[0],
    .open = file_source_open,
    .poll = file_source_poll,
    .close = src_close,
    .snapshot = file_source_snapshot,
};

static const sl_config_key_t stdin_source_config[] = {
    {"ts_field", SL_CONFIG_STRING, "",
     "JSON field holding the event time in epoch ms; empty = every record gets ts 0"},
};

const sl_operator_t io_stdin_source_op = {
    SL_OPERATOR_INIT,
    .name = "stdin_source",
    .version = "1.0.0",
    .description = "Reads standard input without blocking, one record per line; offset = line "
                   "number from 1; ends at EOF; with parallelism > 1 only task 0 reads; not "
                   "replayable: a job restarted from a checkpoint does not read again what it "
                   "read before",
    .kind = SL_KIND_SOURCE,
    .config = stdin_source_config,
    .config_count = sizeof stdin_source_config / sizeof stdin_source_config[0],
    .open = stdin_source_open,
    .poll = stdin_source_poll,
    .close = src_close,
};
