/*
 * extcommit.c - test plugin "extcommit": operator "log_sink", a sink whose
 * commit point is external (sl_checkpoint_commit_point, SDK 1.6), the way
 * the Kafka sink's is, over a file standing in for the external system.
 *
 * The file <path>.<task> is a log of transactions: each commit appends the
 * checkpoint's records, one per line, then "#commit <id>", in one write,
 * fsynced. Bytes after the last "#commit" line belong to a transaction that
 * never committed: open() cuts them off (an abort), and a reader ignores
 * them. Records are staged in memory until the commit point; snapshot()
 * pauses the task's input (sl_input_pause) so that nothing after the
 * barrier joins the transaction, and the commit point resumes it.
 *
 * Config: path; fail_commit_at (a checkpoint id whose commit fails without
 * writing, 0 = none); answer ("" = read the log; "yes", "no" or "error" to
 * force what resolve() says).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice.h"

typedef struct lsink {
  sl_ctx_t *ctx;
  int fd;
  char *staged;
  size_t len, cap;
  int64_t fail_commit_at;
} lsink_t;

/* Length of the log up to and including its last "#commit" line, and that
 * commit's id (0 when none). -1 when the file cannot be read. */
static int64_t committed_length(const char *path, uint64_t *last_id) {
  *last_id = 0;
  FILE *f = fopen(path, "r");
  if (!f) return errno == ENOENT ? 0 : -1;
  char line[4096];
  int64_t pos = 0, end = 0;
  while (fgets(line, sizeof line, f)) {
    pos += (int64_t)strlen(line);
    unsigned long long id;
    if (sscanf(line, "#commit %llu", &id) == 1 && line[strlen(line) - 1] == '\n') {
      end = pos;
      *last_id = id;
    }
  }
  fclose(f);
  return end;
}

static void log_path(sl_ctx_t *ctx, uint32_t task, char *buf, size_t cap) {
  snprintf(buf, cap, "%s.%u", sl_config_string(ctx, "path"), task);
}

static int ls_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  if (sl_checkpoint_interval_ms(ctx) <= 0) {
    snprintf(errbuf, errlen, "log_sink needs checkpoints");
    return SL_ECONFIG;
  }
  char path[1024];
  log_path(ctx, sl_task_index(ctx), path, sizeof path);
  uint64_t last;
  int64_t keep = committed_length(path, &last);
  lsink_t *s = calloc(1, sizeof(*s));
  if (!s) return SL_ENOMEM;
  s->ctx = ctx;
  s->fail_commit_at = sl_config_int(ctx, "fail_commit_at");
  s->fd = keep < 0 ? -1 : open(path, O_WRONLY | O_CREAT, 0644);
  if (s->fd < 0 || ftruncate(s->fd, keep) != 0 || lseek(s->fd, 0, SEEK_END) < 0) {
    snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
    if (s->fd >= 0) close(s->fd);
    free(s);
    return SL_EIO;
  }
  *state = s;
  return 0;
}

static int ls_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  (void)ctx;
  lsink_t *s = state;
  if (s->len + rec->value_len + 1 > s->cap) {
    size_t cap = (s->cap ? s->cap * 2 : 4096) + rec->value_len;
    char *p = realloc(s->staged, cap);
    if (!p) return SL_ENOMEM;
    s->staged = p;
    s->cap = cap;
  }
  memcpy(s->staged + s->len, rec->value, rec->value_len);
  s->len += rec->value_len;
  s->staged[s->len++] = '\n';
  return 0;
}

/* On the checkpoint thread, while the task's input is paused. */
static int ls_commit_point(void *arg, uint64_t id, int commit, char *err, size_t errlen) {
  lsink_t *s = arg;
  int rc = 0;
  if (commit && s->fail_commit_at == (int64_t)id) {
    snprintf(err, errlen, "log_sink: injected failure of the commit of checkpoint %" PRIu64, id);
    rc = -1;
  } else if (commit) {
    char tail[64];
    int n = snprintf(tail, sizeof tail, "#commit %" PRIu64 "\n", id);
    if (s->len + (size_t)n > s->cap) {
      char *p = realloc(s->staged, s->len + (size_t)n);
      if (!p) {
        snprintf(err, errlen, "log_sink: out of memory");
        return -1;
      }
      s->staged = p;
      s->cap = s->len + (size_t)n;
    }
    memcpy(s->staged + s->len, tail, (size_t)n);
    if (write(s->fd, s->staged, s->len + (size_t)n) != (ssize_t)(s->len + (size_t)n) ||
        fsync(s->fd) != 0) {
      snprintf(err, errlen, "log_sink: %s", strerror(errno));
      rc = -1;
    } else {
      s->len = 0;
    }
  }
  sl_input_resume(s->ctx); /* abandoned (commit = 0): the records stay staged */
  return rc;
}

static int ls_snapshot(sl_ctx_t *ctx, void *state, uint64_t id) {
  (void)id;
  lsink_t *s = state;
  int rc = sl_input_pause(ctx);
  if (rc == 0) rc = sl_checkpoint_commit_point(ctx, ls_commit_point, s);
  if (rc != 0) sl_fail(ctx, "log_sink: cannot register the commit point (%d)", rc);
  return rc;
}

static int ls_resolve(sl_ctx_t *ctx, uint64_t id, char *err, size_t errlen) {
  const char *answer = sl_config_string(ctx, "answer");
  if (strcmp(answer, "yes") == 0) return 1;
  if (strcmp(answer, "no") == 0) return 0;
  if (strcmp(answer, "error") == 0) {
    snprintf(err, errlen, "the log cannot be reached (forced)");
    return SL_EIO;
  }
  char path[1024];
  log_path(ctx, 0, path, sizeof path);
  uint64_t last;
  if (committed_length(path, &last) < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return SL_EIO;
  }
  return last >= id ? 1 : 0;
}

static void ls_close(void *state) {
  lsink_t *s = state;
  close(s->fd);
  free(s->staged);
  free(s);
}

static const sl_config_key_t ls_config[] = {
    {"path", SL_CONFIG_STRING, NULL, "the log: <path>.<task>"},
    {"fail_commit_at", SL_CONFIG_INT, "0", "checkpoint whose commit fails (test)"},
    {"answer", SL_CONFIG_STRING, "", "force resolve(): yes, no, error"},
};

static const sl_operator_t log_sink = {
    SL_OPERATOR_INIT,
    .name = "log_sink",
    .version = "1.0.0",
    .description = "a sink committing through an external commit point (test)",
    .kind = SL_KIND_SINK,
    .config = ls_config,
    .config_count = sizeof(ls_config) / sizeof(ls_config[0]),
    .open = ls_open,
    .process = ls_process,
    .close = ls_close,
    .snapshot = ls_snapshot,
    .resolve = ls_resolve,
};

SL_PLUGIN_DEFINE("extcommit", "1.0.0", "external commit points (test)", &log_sink);
