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
 *
 * file_sink and checkpoints ("delivery" config; see docs/plugins-io.md):
 *  - checkpoints off (sl_checkpoint_interval_ms() == 0): writes straight to
 *    its file F (PATH, or PATH.<task> with parallelism > 1), as always;
 *  - at_least_once: the same, plus flush and fsync of F at each checkpoint;
 *    after a restore it appends, so records after the checkpoint appear twice;
 *  - exactly_once (default): a two-phase commit through staging files. The
 *    buffer is flushed to F.pending-<E>, E being the id of the checkpoint
 *    that will cover it. snapshot(N) hands that file (renamed to
 *    F.pending-<N> if the checkpoint ids skipped E) and its directory to the
 *    checkpoint thread, which fsyncs and closes them before checkpoint N can
 *    complete (sl_checkpoint_sync_fd), and records (N, size) in the
 *    prepared list: PREPARE. commit(M) appends every prepared file with
 *    id <= M to F at its known offset, fsyncs F, then unlinks the staging
 *    file: COMMIT. The operator state "file_sink" holds the length of F once
 *    everything committed so far is in it, and the prepared list; open()
 *    after a restore finishes those commits (again, idempotently: each
 *    append goes to a known offset) and throws away everything else (output
 *    of later checkpoints, other staging files), which will be replayed.
 *    F only ever holds committed output, byte for byte what the sink writes
 *    with checkpoints off.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

#define IO_WRITE_BUF (1u << 20)
#define IO_FLUSH_MS 1000

enum { FMT_VALUE = 0, FMT_ENVELOPE = 1 };

/* file_sink's delivery mode. */
enum {
  DELIVERY_DIRECT = 0,   /* checkpoints off (and every other sink): write through */
  DELIVERY_AT_LEAST_ONCE, /* write through, fsync at checkpoints */
  DELIVERY_EXACTLY_ONCE  /* two-phase commit through staging files */
};

/* A staging file prepared for a checkpoint, not yet appended to F. */
typedef struct prepared {
  uint64_t id;   /* checkpoint id; the file is F.pending-<id> */
  uint64_t size; /* its length in bytes */
} prepared_t;

/* exactly_once state of a file_sink (the sink's fd is the staging file's). */
typedef struct txn {
  char *final;       /* F */
  char *dir;         /* F's directory ("." when F has no '/') */
  char *base;        /* F's last path component */
  char *stage;       /* F.pending-<stage_id>: room for any id */
  char *other;       /* scratch for another F.pending-<id> (same room) */
  size_t stage_cap;
  int fd_final;      /* F, opened without O_APPEND: writes go to known offsets */
  uint64_t stage_id; /* id of the checkpoint the current staging file is for */
  uint64_t stage_size;
  uint64_t committed; /* L: F's length with everything committed so far */
  prepared_t *prep;   /* prepared, not yet committed, by increasing id */
  size_t n_prep, cap_prep;
  char err[768]; /* last failure, for errbuf or sl_fail */
} txn_t;

typedef struct sink {
  int fd;
  int own_fd;
  int format;
  int flush_each; /* stdout is a terminal */
  int delivery;   /* DELIVERY_*; DIRECT for stdout_sink */
  char *path;     /* for messages */
  char *buf;
  size_t len, cap;
  int64_t first_ms; /* when the oldest buffered byte was written, -1 if empty */
  sl_counter_t *records;
  txn_t *tx; /* exactly_once only; then fd is the staging file, -1 until opened */
} sink_t;

static int tx_stage_open(sink_t *s);
static void tx_free(txn_t *tx);

/* Path of the file the buffer goes to, for messages. */
static const char *sink_out_path(const sink_t *s) { return s->tx ? s->tx->stage : s->path; }

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
  if (s->tx && s->fd < 0) { /* exactly_once: the staging file is opened lazily */
    int rc = tx_stage_open(s);
    if (rc) return rc;
  }
  pthread_mutex_lock(&flush_mu);
  int rc = write_all(s->fd, s->buf, s->len);
  pthread_mutex_unlock(&flush_mu);
  if (rc == 0 && s->tx) s->tx->stage_size += s->len;
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
  /* on_end already flushed and reported errors. exactly_once: whatever is
   * still buffered was never prepared, so it could never be committed: a
   * restart replays it. */
  if (s->buf && !s->tx) (void)sink_flush(s);
  if (s->own_fd && s->fd >= 0) close(s->fd);
  tx_free(s->tx);
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
  sl_fail(ctx, "writing to %s failed: %s", sink_out_path(s), strerror(-rc));
  return rc == -ENOMEM ? SL_ENOMEM : SL_EIO;
}

/* exactly_once: the buffer goes to the staging file, and the final
 * checkpoint that follows the end of the input prepares and commits it. */
static int sink_on_end(sl_ctx_t *ctx, void *state) {
  sink_t *s = state;
  int rc = sink_flush(s);
  if (rc) {
    sl_fail(ctx, "writing to %s failed: %s", sink_out_path(s), strerror(-rc));
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

#define TX_STATE_NAME "file_sink"
#define TX_STATE_VERSION 1
#define TX_STATE_HEAD 13  /* version u8, committed_len u64, count u32 */
#define TX_STATE_ENTRY 16 /* checkpoint id u64, size u64 */
#define TX_PENDING ".pending-"
#define TX_COPY_BUF (1u << 20)

static void put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_le32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
  return v;
}
static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* fsync, retried on EINTR. Files that cannot be synced (EINVAL: a
 * character device, some directories) pass. Returns 0 or -errno. */
static int sync_fd(int fd) {
  while (fsync(fd) != 0) {
    if (errno == EINTR) continue;
    if (errno == EINVAL) return 0;
    return -errno;
  }
  return 0;
}

static void tx_free(txn_t *tx) {
  if (!tx) return;
  if (tx->fd_final >= 0) close(tx->fd_final);
  free(tx->final);
  free(tx->dir);
  free(tx->base);
  free(tx->stage);
  free(tx->other);
  free(tx->prep);
  free(tx);
}

/* F.pending-<id> into buf (room for stage_cap bytes). */
static void tx_name(const txn_t *tx, char *buf, uint64_t id) {
  snprintf(buf, tx->stage_cap, "%s" TX_PENDING "%llu", tx->final, (unsigned long long)id);
}

static int tx_stage_open(sink_t *s) {
  s->fd = open(s->tx->stage, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  return s->fd < 0 ? -errno : 0;
}

/* Make the directory entries of F's directory (created, renamed) durable. */
static int tx_sync_dir(txn_t *tx) {
  int fd = open(tx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = fd < 0 ? -errno : sync_fd(fd);
  if (fd >= 0) close(fd);
  if (rc) {
    snprintf(tx->err, sizeof tx->err, "fsync of directory %s failed: %s", tx->dir, strerror(-rc));
    return SL_EIO;
  }
  return 0;
}

/* Copy n bytes of `in`, from its start, to `out` at offset `at`. 0 or -errno. */
static int copy_bytes(int in, int out, uint64_t at, uint64_t n) {
  off_t off_in = 0, off_out = (off_t)at;
  char *buf = NULL;
  int rc = 0;
  int use_cfr = 1;
  while (n > 0) {
    if (use_cfr) {
      size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
      ssize_t r = copy_file_range(in, &off_in, out, &off_out, chunk, 0);
      if (r > 0) {
        n -= (uint64_t)r;
        continue;
      }
      if (r == 0) { /* the source is shorter than it was */
        rc = -EIO;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
          errno == ENOTSUP) {
        use_cfr = 0; /* not on this kernel or between these files: read and write */
        continue;
      }
      rc = -errno;
      break;
    }
    if (!buf && !(buf = malloc(TX_COPY_BUF))) {
      rc = -ENOMEM;
      break;
    }
    size_t want = n < TX_COPY_BUF ? (size_t)n : TX_COPY_BUF;
    ssize_t r = pread(in, buf, want, off_in);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      rc = r < 0 ? -errno : -EIO;
      break;
    }
    for (size_t done = 0; done < (size_t)r;) {
      ssize_t w = pwrite(out, buf + done, (size_t)r - done, off_out);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        rc = w < 0 ? -errno : -EIO;
        goto out;
      }
      done += (size_t)w;
      off_out += w;
    }
    off_in += r;
    n -= (uint64_t)r;
  }
out:
  free(buf);
  return rc;
}

/*
 * COMMIT one prepared file: F.pending-<id> (size bytes) is written to F at
 * offset `at` (F is cut to `at` first: a repeated commit rewrites the same
 * bytes in the same place), F is fsynced, then the staging file removed.
 * Returns 0; SL_ENOTFOUND when the staging file does not exist; SL_EIO with
 * tx->err set.
 */
static int tx_append(txn_t *tx, uint64_t id, uint64_t size, uint64_t at) {
  char *name = tx->other;
  tx_name(tx, name, id);
  int in = open(name, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    if (errno == ENOENT) return SL_ENOTFOUND;
    snprintf(tx->err, sizeof tx->err, "cannot open %s: %s", name, strerror(errno));
    return SL_EIO;
  }
  struct stat sst, fst;
  if (fstat(in, &sst) != 0 || fstat(tx->fd_final, &fst) != 0) {
    snprintf(tx->err, sizeof tx->err, "cannot stat %s or %s: %s", name, tx->final,
             strerror(errno));
    close(in);
    return SL_EIO;
  }
  if ((uint64_t)sst.st_size != size) {
    snprintf(tx->err, sizeof tx->err,
             "%s is %lld bytes, but %llu were prepared for checkpoint %llu: it was changed",
             name, (long long)sst.st_size, (unsigned long long)size, (unsigned long long)id);
    close(in);
    return SL_EIO;
  }
  if ((uint64_t)fst.st_size < at) {
    snprintf(tx->err, sizeof tx->err,
             "%s is %lld bytes, shorter than the %llu bytes committed before checkpoint %llu: "
             "it was truncated or replaced",
             tx->final, (long long)fst.st_size, (unsigned long long)at, (unsigned long long)id);
    close(in);
    return SL_EIO;
  }
  if ((uint64_t)fst.st_size > at && ftruncate(tx->fd_final, (off_t)at) != 0) {
    snprintf(tx->err, sizeof tx->err, "truncating %s to %llu bytes failed: %s", tx->final,
             (unsigned long long)at, strerror(errno));
    close(in);
    return SL_EIO;
  }
  int rc = copy_bytes(in, tx->fd_final, at, size);
  close(in);
  if (rc) {
    snprintf(tx->err, sizeof tx->err, "appending %s to %s failed: %s", name, tx->final,
             strerror(-rc));
    return SL_EIO;
  }
  rc = sync_fd(tx->fd_final);
  if (rc) {
    snprintf(tx->err, sizeof tx->err, "fsync of %s failed: %s", tx->final, strerror(-rc));
    return SL_EIO;
  }
  /* Only now: until F is durable the staging file is the only copy. */
  if (unlink(name) != 0) {
    snprintf(tx->err, sizeof tx->err, "removing %s failed: %s", name, strerror(errno));
    return SL_EIO;
  }
  return 0;
}

/* Remove every F.pending-<digits>: work of checkpoints that never completed. */
static int tx_remove_stale(txn_t *tx, unsigned *removed) {
  DIR *d = opendir(tx->dir);
  if (!d) {
    snprintf(tx->err, sizeof tx->err, "cannot list directory %s: %s", tx->dir, strerror(errno));
    return SL_EIO;
  }
  size_t bl = strlen(tx->base), pl = sizeof TX_PENDING - 1;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (strncmp(n, tx->base, bl) != 0 || strncmp(n + bl, TX_PENDING, pl) != 0) continue;
    const char *q = n + bl + pl;
    if (!*q || strspn(q, "0123456789") != strlen(q)) continue;
    if (unlinkat(dirfd(d), n, 0) != 0 && errno != ENOENT) {
      snprintf(tx->err, sizeof tx->err, "removing %s/%s failed: %s", tx->dir, n, strerror(errno));
      rc = SL_EIO;
      break;
    }
    (*removed)++;
  }
  closedir(d);
  return rc;
}

static int tx_prep_push(txn_t *tx, uint64_t id, uint64_t size) {
  if (tx->n_prep == tx->cap_prep) {
    size_t ncap = tx->cap_prep ? tx->cap_prep * 2 : 8;
    prepared_t *np = realloc(tx->prep, ncap * sizeof *np);
    if (!np) return SL_ENOMEM;
    tx->prep = np;
    tx->cap_prep = ncap;
  }
  tx->prep[tx->n_prep].id = id;
  tx->prep[tx->n_prep].size = size;
  tx->n_prep++;
  return 0;
}

/*
 * Operator state "file_sink", version 1, all integers little-endian:
 *   u8 version (1) | u64 committed_len | u32 count | count x (u64 id, u64 size)
 * committed_len: F's length once everything committed so far is in it;
 * the entries: prepared staging files F.pending-<id>, by increasing id.
 */
static int tx_put_state(sl_ctx_t *ctx, txn_t *tx) {
  size_t n = TX_STATE_HEAD + TX_STATE_ENTRY * tx->n_prep;
  unsigned char small[TX_STATE_HEAD + 4 * TX_STATE_ENTRY];
  unsigned char *b = n <= sizeof small ? small : malloc(n);
  if (!b) return SL_ENOMEM;
  b[0] = TX_STATE_VERSION;
  put_le64(b + 1, tx->committed);
  put_le32(b + 9, (uint32_t)tx->n_prep);
  for (size_t i = 0; i < tx->n_prep; i++) {
    put_le64(b + TX_STATE_HEAD + TX_STATE_ENTRY * i, tx->prep[i].id);
    put_le64(b + TX_STATE_HEAD + TX_STATE_ENTRY * i + 8, tx->prep[i].size);
  }
  int rc = sl_op_state_put(ctx, TX_STATE_NAME, b, n);
  if (b != small) free(b);
  return rc;
}

/* Parse the operator state into committed_len and tx->prep; 0 or SL_EINVAL (tx->err). */
static int tx_parse_state(txn_t *tx, const sl_bytes_t *st, uint64_t *committed) {
  const unsigned char *p = st->ptr;
  if (st->len < TX_STATE_HEAD) {
    snprintf(tx->err, sizeof tx->err, "it is %zu bytes, too short", st->len);
    return SL_EINVAL;
  }
  if (p[0] != TX_STATE_VERSION) {
    snprintf(tx->err, sizeof tx->err, "it has version %u, this file_sink reads version %u",
             (unsigned)p[0], TX_STATE_VERSION);
    return SL_EINVAL;
  }
  uint64_t total = get_le64(p + 1);
  uint32_t count = get_le32(p + 9);
  if ((st->len - TX_STATE_HEAD) / TX_STATE_ENTRY != count ||
      (st->len - TX_STATE_HEAD) % TX_STATE_ENTRY != 0) {
    snprintf(tx->err, sizeof tx->err, "it is %zu bytes, not %llu for %u prepared files", st->len,
             (unsigned long long)TX_STATE_HEAD + (unsigned long long)TX_STATE_ENTRY * count,
             (unsigned)count);
    return SL_EINVAL;
  }
  if (total > (uint64_t)INT64_MAX) goto too_big;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t id = get_le64(p + TX_STATE_HEAD + (size_t)TX_STATE_ENTRY * i);
    uint64_t size = get_le64(p + TX_STATE_HEAD + (size_t)TX_STATE_ENTRY * i + 8);
    if (i > 0 && id <= tx->prep[i - 1].id) {
      snprintf(tx->err, sizeof tx->err, "its prepared checkpoints are out of order (%llu after %llu)",
               (unsigned long long)id, (unsigned long long)tx->prep[i - 1].id);
      return SL_EINVAL;
    }
    if (size > (uint64_t)INT64_MAX - total) goto too_big;
    total += size;
    if (tx_prep_push(tx, id, size) != 0) {
      snprintf(tx->err, sizeof tx->err, "out of memory");
      return SL_ENOMEM;
    }
  }
  *committed = get_le64(p + 1);
  return 0;
too_big:
  snprintf(tx->err, sizeof tx->err, "its lengths add up to more than a file can hold");
  return SL_EINVAL;
}

/*
 * exactly_once at open: a fresh start truncates F (or keeps it with
 * append: true); a restore finishes the commits of the restored checkpoint
 * and cuts F back to what it covers. Either way, stale staging files go.
 */
static int tx_open(sl_ctx_t *ctx, sink_t *s, const char *full, uint64_t restored, int append,
                   char *errbuf, size_t errbuf_len) {
  txn_t *tx = calloc(1, sizeof *tx);
  if (!tx) goto oom;
  tx->fd_final = -1;
  s->tx = tx;
  s->fd = -1;
  s->own_fd = 1;
  const char *slash = strrchr(full, '/');
  tx->final = strdup(full);
  tx->base = strdup(slash ? slash + 1 : full);
  if (!slash)
    tx->dir = strdup(".");
  else if (slash == full)
    tx->dir = strdup("/");
  else
    tx->dir = strndup(full, (size_t)(slash - full));
  tx->stage_cap = strlen(full) + sizeof TX_PENDING + 24;
  tx->stage = malloc(tx->stage_cap);
  tx->other = malloc(tx->stage_cap);
  if (!tx->final || !tx->base || !tx->dir || !tx->stage || !tx->other) goto oom;

  sl_bytes_t st = {0};
  int have = 0;
  uint64_t committed = 0;
  if (restored) {
    int rc = sl_op_state_get(ctx, TX_STATE_NAME, &st);
    if (rc == 0) {
      have = 1;
    } else if (rc != SL_ENOTFOUND) {
      snprintf(errbuf, errbuf_len, "file_sink: cannot read operator state '%s' of checkpoint %llu: %s",
               TX_STATE_NAME, (unsigned long long)restored, sl_strerror(ctx, rc));
      return rc;
    }
    if (have && (rc = tx_parse_state(tx, &st, &committed)) != 0) {
      snprintf(errbuf, errbuf_len, "file_sink: operator state '%s' of checkpoint %llu for %s is invalid: %s",
               TX_STATE_NAME, (unsigned long long)restored, full, tx->err);
      return rc;
    }
  }

  /* Truncate only on a fresh start: after a restore F holds committed output. */
  int trunc = !restored && !append;
  tx->fd_final = open(full, O_WRONLY | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0666);
  if (tx->fd_final < 0) {
    snprintf(errbuf, errbuf_len, "file_sink: cannot open '%s' for writing: %s", full, strerror(errno));
    return SL_EIO;
  }
  struct stat fst;
  if (fstat(tx->fd_final, &fst) != 0) {
    snprintf(errbuf, errbuf_len, "file_sink: cannot stat '%s': %s", full, strerror(errno));
    return SL_EIO;
  }
  if (!S_ISREG(fst.st_mode)) {
    snprintf(errbuf, errbuf_len,
             "file_sink: '%s' is not a regular file: delivery exactly_once needs one (it stages "
             "output next to it and truncates it on restore); use delivery: at_least_once",
             full);
    return SL_ECONFIG;
  }

  if (have) {
    /* Commit what checkpoint `restored` prepared (it is complete), in order. */
    uint64_t at = committed;
    unsigned redone = 0;
    for (size_t i = 0; i < tx->n_prep; i++) {
      int rc = tx_append(tx, tx->prep[i].id, tx->prep[i].size, at);
      if (rc == 0) {
        redone++;
      } else if (rc != SL_ENOTFOUND) { /* not found: its commit completed before the restart */
        snprintf(errbuf, errbuf_len, "file_sink: resuming from checkpoint %llu: %s",
                 (unsigned long long)restored, tx->err);
        return rc;
      }
      at += tx->prep[i].size;
    }
    tx->n_prep = 0;
    if (fstat(tx->fd_final, &fst) != 0) {
      snprintf(errbuf, errbuf_len, "file_sink: cannot stat '%s': %s", full, strerror(errno));
      return SL_EIO;
    }
    if ((uint64_t)fst.st_size < at) {
      snprintf(errbuf, errbuf_len,
               "file_sink: resuming from checkpoint %llu: %s is %lld bytes, shorter than the "
               "%llu bytes committed up to that checkpoint: it was truncated or replaced",
               (unsigned long long)restored, full, (long long)fst.st_size, (unsigned long long)at);
      return SL_EIO;
    }
    /* Output committed by later checkpoints is cut off: it will be replayed. */
    if ((uint64_t)fst.st_size > at && ftruncate(tx->fd_final, (off_t)at) != 0) {
      snprintf(errbuf, errbuf_len, "file_sink: truncating %s to %llu bytes failed: %s", full,
               (unsigned long long)at, strerror(errno));
      return SL_EIO;
    }
    int rc = sync_fd(tx->fd_final);
    if (rc) {
      snprintf(errbuf, errbuf_len, "file_sink: fsync of %s failed: %s", full, strerror(-rc));
      return SL_EIO;
    }
    if (redone)
      sl_log(ctx, SL_LOG_INFO,
             "resuming from checkpoint %llu: committed %u file(s) it had prepared to %s",
             (unsigned long long)restored, redone, full);
    if ((uint64_t)fst.st_size > at)
      sl_log(ctx, SL_LOG_INFO,
             "resuming from checkpoint %llu: cut %s back to %llu bytes (%llu bytes committed "
             "by later checkpoints, which will be written again)",
             (unsigned long long)restored, full, (unsigned long long)at,
             (unsigned long long)((uint64_t)fst.st_size - at));
    tx->committed = at;
  } else {
    if (restored)
      sl_log(ctx, SL_LOG_WARN,
             "checkpoint %llu holds no state of this sink (a new node, or it ran with delivery "
             "at_least_once): keeping %s as it is (%lld bytes) and appending to it",
             (unsigned long long)restored, full, (long long)fst.st_size);
    tx->committed = (uint64_t)fst.st_size; /* 0 after O_TRUNC */
  }

  unsigned removed = 0;
  if (tx_remove_stale(tx, &removed) != 0 || tx_sync_dir(tx) != 0) {
    snprintf(errbuf, errbuf_len, "file_sink: %s", tx->err);
    return SL_EIO;
  }
  if (removed)
    sl_log(ctx, restored ? SL_LOG_INFO : SL_LOG_DEBUG,
           "removed %u staging file(s) %s" TX_PENDING "* of checkpoints that did not complete%s",
           removed, full, restored ? " (their records will be written again)" : "");
  tx->stage_id = restored + 1;
  tx_name(tx, tx->stage, tx->stage_id);
  return SL_OK;
oom:
  snprintf(errbuf, errbuf_len, "file_sink: out of memory");
  return SL_ENOMEM;
}

static int file_sink_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len) {
  const char *path = sl_config_string(ctx, "path");
  if (!path || !*path) {
    snprintf(errbuf, errbuf_len, "file_sink: config 'path' is required");
    return SL_ECONFIG;
  }
  const char *dv = sl_config_string(ctx, "delivery");
  int delivery;
  if (!dv || !*dv || strcmp(dv, "exactly_once") == 0) {
    delivery = DELIVERY_EXACTLY_ONCE;
  } else if (strcmp(dv, "at_least_once") == 0) {
    delivery = DELIVERY_AT_LEAST_ONCE;
  } else {
    snprintf(errbuf, errbuf_len, "file_sink: delivery must be exactly_once or at_least_once, not '%s'",
             dv);
    return SL_ECONFIG;
  }
  /* Without checkpoints nothing would ever commit: write through. */
  if (sl_checkpoint_interval_ms(ctx) <= 0) delivery = DELIVERY_DIRECT;
  uint64_t restored = sl_checkpoint_restored(ctx);
  int append = sl_config_bool(ctx, "append");

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
  s->delivery = delivery;
  if (delivery == DELIVERY_EXACTLY_ONCE) {
    rc = tx_open(ctx, s, full, restored, append, errbuf, errbuf_len);
    if (rc) {
      free(full);
      sink_close(s);
      return rc;
    }
    sl_log(ctx, SL_LOG_DEBUG,
           "delivery exactly_once: output is staged in %s" TX_PENDING "<checkpoint> and appended "
           "to %s when the checkpoint completes",
           full, full);
    free(full);
    *state = s;
    return SL_OK;
  }
  /*
   * Writing through. A restore keeps the file (records after the checkpoint
   * are written again after what is there): with at_least_once, and also
   * without a checkpoint interval, where the job still takes a final
   * checkpoint and a rerun of a completed job resumes from it. If the run
   * before was exactly_once, its commits are settled first.
   */
  if (restored) {
    sl_bytes_t st;
    if (sl_op_state_get(ctx, TX_STATE_NAME, &st) == 0) {
      rc = tx_open(ctx, s, full, restored, 0, errbuf, errbuf_len);
      tx_free(s->tx);
      s->tx = NULL;
      if (rc) {
        free(full);
        sink_close(s);
        return rc;
      }
    }
  }
  int keep = append || restored;
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (keep ? O_APPEND : O_TRUNC);
  s->fd = open(full, flags, 0666);
  if (s->fd < 0) {
    int e = errno;
    snprintf(errbuf, errbuf_len, "file_sink: cannot open '%s' for writing: %s", full, strerror(e));
    free(full);
    sink_close(s);
    return SL_EIO;
  }
  s->own_fd = 1;
  if (delivery == DELIVERY_DIRECT && restored)
    sl_log(ctx, SL_LOG_INFO,
           "resuming from checkpoint %llu without a checkpoint interval: appending to %s",
           (unsigned long long)restored, full);
  else if (delivery == DELIVERY_DIRECT)
    sl_log(ctx, SL_LOG_DEBUG, "checkpoints are off: writing straight to %s", full);
  else if (restored)
    sl_log(ctx, SL_LOG_INFO,
           "delivery at_least_once, resuming from checkpoint %llu: appending to %s; records "
           "written after that checkpoint before the restart may appear twice",
           (unsigned long long)restored, full);
  else
    sl_log(ctx, SL_LOG_DEBUG,
           "delivery at_least_once: writing straight to %s, flushed and fsynced at each "
           "checkpoint",
           full);
  free(full);
  *state = s;
  return SL_OK;
}

/*
 * PREPARE. exactly_once: the staging file of this checkpoint becomes
 * durable and joins the prepared list, which goes into the checkpoint with
 * the committed length. at_least_once: F is flushed and fsynced.
 */
static int file_sink_snapshot(sl_ctx_t *ctx, void *state, uint64_t checkpoint_id) {
  sink_t *s = state;
  int rc = sink_flush(s);
  if (rc) {
    sl_fail(ctx, "writing to %s failed: %s", sink_out_path(s), strerror(-rc));
    return rc == -ENOMEM ? SL_ENOMEM : SL_EIO;
  }
  /* Writing through (without an interval only the final checkpoint comes
   * here): what the checkpoint covers goes to disk. */
  if (s->delivery != DELIVERY_EXACTLY_ONCE) {
    /* The checkpoint thread fsyncs a duplicate: the task does not wait on the disk. */
    int dupfd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0 || sl_checkpoint_sync_fd(ctx, dupfd) != 0) {
      sl_fail(ctx, "handing %s to the checkpoint for fsync failed: %s", s->path,
              dupfd < 0 ? strerror(errno) : "refused");
      return SL_EIO;
    }
    return SL_OK;
  }
  txn_t *tx = s->tx;
  if (tx->n_prep && checkpoint_id <= tx->prep[tx->n_prep - 1].id) {
    sl_fail(ctx, "file_sink: checkpoint %llu comes after checkpoint %llu: ids out of order",
            (unsigned long long)checkpoint_id, (unsigned long long)tx->prep[tx->n_prep - 1].id);
    return SL_ESTATE;
  }
  if (s->fd >= 0) { /* else nothing was written since the last checkpoint */
    /* Prepared = durable before the checkpoint completes: the checkpoint
     * thread fsyncs and closes the staging file (and its directory, below),
     * so the task does not wait on the disk here. */
    rc = sl_checkpoint_sync_fd(ctx, s->fd);
    s->fd = -1;
    if (rc) {
      sl_fail(ctx, "handing %s to the checkpoint for fsync failed: %s", tx->stage,
              sl_strerror(ctx, rc));
      return SL_EIO;
    }
    if (tx->stage_id != checkpoint_id) { /* checkpoint ids skipped one: name it for this one */
      tx_name(tx, tx->other, checkpoint_id);
      if (rename(tx->stage, tx->other) != 0) {
        sl_fail(ctx, "renaming %s to %s failed: %s", tx->stage, tx->other, strerror(errno));
        return SL_EIO;
      }
    }
    int dfd = open(tx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || sl_checkpoint_sync_fd(ctx, dfd) != 0) {
      sl_fail(ctx, "handing directory %s to the checkpoint for fsync failed: %s", tx->dir,
              dfd < 0 ? strerror(errno) : "refused");
      return SL_EIO;
    }
    if (tx_prep_push(tx, checkpoint_id, tx->stage_size) != 0) {
      sl_fail(ctx, "file_sink: out of memory");
      return SL_ENOMEM;
    }
  }
  tx->stage_id = checkpoint_id + 1; /* opened lazily, at the next flush */
  tx->stage_size = 0;
  tx_name(tx, tx->stage, tx->stage_id);
  rc = tx_put_state(ctx, tx);
  if (rc < 0) {
    sl_fail(ctx, "file_sink: saving the state of %s for checkpoint %llu failed: %s", tx->final,
            (unsigned long long)checkpoint_id, sl_strerror(ctx, rc));
    return rc;
  }
  return SL_OK;
}

/* COMMIT every prepared file of checkpoint_id and earlier ones, in order. */
static int file_sink_commit(sl_ctx_t *ctx, void *state, uint64_t checkpoint_id) {
  sink_t *s = state;
  txn_t *tx = s->tx;
  if (!tx) return SL_OK;
  size_t k = 0;
  int rc = 0;
  for (; k < tx->n_prep && tx->prep[k].id <= checkpoint_id; k++) {
    rc = tx_append(tx, tx->prep[k].id, tx->prep[k].size, tx->committed);
    if (rc == SL_ENOTFOUND) {
      tx_name(tx, tx->other, tx->prep[k].id);
      snprintf(tx->err, sizeof tx->err, "%s, prepared for checkpoint %llu, is gone", tx->other,
               (unsigned long long)tx->prep[k].id);
      rc = SL_EIO;
    }
    if (rc) break;
    tx->committed += tx->prep[k].size;
  }
  if (k) {
    memmove(tx->prep, tx->prep + k, (tx->n_prep - k) * sizeof *tx->prep);
    tx->n_prep -= k;
  }
  if (rc) {
    sl_fail(ctx, "file_sink: commit of checkpoint %llu failed: %s",
            (unsigned long long)checkpoint_id, tx->err);
    return SL_EIO;
  }
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
    {"append", SL_CONFIG_BOOL, "false",
     "append to an existing file instead of truncating it (on a fresh start; a job resuming "
     "from a checkpoint always keeps the file)"},
    FORMAT_KEY,
    {"delivery", SL_CONFIG_STRING, "exactly_once",
     "with checkpoints on: exactly_once = records are staged in FILE.pending-<checkpoint id> "
     "(fsynced at the checkpoint) and appended to FILE when the checkpoint completes, so FILE "
     "only ever holds committed output and a restore rolls it back to the checkpoint; "
     "at_least_once = written straight to FILE, fsynced at each checkpoint, and after a restore "
     "the records that followed the checkpoint are written again. Checkpoints off: straight to "
     "FILE either way"},
};

const sl_operator_t io_file_sink_op = {
    SL_OPERATOR_INIT,
    .name = "file_sink",
    .version = "1.0.0",
    .description = "Writes records to a file, one line each; with parallelism > 1 each task i "
                   "writes its own file PATH.i (PATH itself when parallelism is 1); with "
                   "checkpoints on, exactly-once by default (two-phase commit through staging "
                   "files FILE.pending-<checkpoint id>)",
    .kind = SL_KIND_SINK,
    .config = file_sink_config,
    .config_count = sizeof file_sink_config / sizeof file_sink_config[0],
    .open = file_sink_open,
    .process = sink_process,
    .on_end = sink_on_end,
    .close = sink_close,
    .snapshot = file_sink_snapshot,
    .commit = file_sink_commit,
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
