/*
 * control.c - see control.h. A small thread accepts one connection at a
 * time; a request blocks it until the savepoint is written, which is fine:
 * savepoints are taken one at a time anyway.
 */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fs.h"
#include "log.h"

#define CONTROL_LINE_MAX 4096
#define CONTROL_READ_MS 5000

struct sl_control {
  sl_job_t *job;
  int fd;
  char *path;
  pthread_t thread;
  _Atomic int stop;
};

/*
 * The socket's address. sun_path holds 107 bytes; a longer path is reached
 * through the directory's descriptor (/proc/self/fd/N/control.sock), which
 * *dirfd keeps open until the caller has bound or connected (then closes).
 */
static int socket_path(const char *dir, struct sockaddr_un *sa, char **path, int *dirfd,
                       char *err, size_t errlen) {
  *path = sl_xasprintf("%s/control.sock", dir);
  *dirfd = -1;
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (strlen(*path) < sizeof(sa->sun_path)) {
    memcpy(sa->sun_path, *path, strlen(*path) + 1);
    return 0;
  }
  *dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*dirfd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
    return -1;
  }
  snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/control.sock", *dirfd);
  return 0;
}

static void close_dirfd(int fd) {
  if (fd >= 0) close(fd);
}

/* Read one line (without its newline) within a time limit. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms) {
  size_t n = 0;
  while (n + 1 < len) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t got = read(fd, buf + n, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    if (buf[n] == '\n') {
      buf[n] = 0;
      return 0;
    }
    n++;
  }
  return -1;
}

static void write_str(int fd, const char *s) { (void)sl_fs_write_all(fd, s, strlen(s)); }

static void serve(struct sl_control *c, int fd) {
  char line[CONTROL_LINE_MAX], out[1200], reply[1300];
  if (read_line(fd, line, sizeof(line), CONTROL_READ_MS) != 0) {
    write_str(fd, "error no request line (expected 'savepoint [DIR]' or 'stop [DIR]')\n");
    return;
  }
  const char *arg = NULL;
  bool stop;
  if (strncmp(line, "savepoint", 9) == 0 && (line[9] == 0 || line[9] == ' ')) {
    stop = false;
    arg = line[9] ? line + 10 : NULL;
  } else if (strncmp(line, "stop", 4) == 0 && (line[4] == 0 || line[4] == ' ')) {
    stop = true;
    arg = line[4] ? line + 5 : NULL;
  } else {
    write_str(fd, "error unknown request (expected 'savepoint [DIR]' or 'stop [DIR]')\n");
    return;
  }
  sl_log_msg(SL_LOG_INFO, "control", "%s requested%s%s", stop ? "stop with savepoint" : "savepoint",
             arg && *arg ? " into " : "", arg && *arg ? arg : "");
  int rc = sl_ckpt_savepoint(c->job, arg, stop, out, sizeof(out));
  for (char *p = out; *p; p++)
    if (*p == '\n') *p = ' ';
  snprintf(reply, sizeof(reply), "%s %s\n", rc == 0 ? "ok" : "error", out);
  write_str(fd, reply);
}

static void *control_main(void *arg) {
  struct sl_control *c = arg;
  while (!atomic_load(&c->stop)) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r = poll(&p, 1, 100);
    if (r <= 0) continue;
    int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve(c, fd);
    close(fd);
  }
  return NULL;
}

int sl_control_lock(const char *dir, char *err, size_t errlen) {
  static int lock_fd = -1; /* held (never closed) for the life of the process */
  if (sl_mkdir_p(dir, "checkpoint directory", err, errlen) != 0) return -1;
  char *path = sl_xasprintf("%s/LOCK", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    free(path);
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK)
      snprintf(err, errlen,
               "another sluice job is running with checkpoint directory %s (it holds %s); two "
               "jobs must not share one",
               dir, path);
    else
      snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
    close(fd);
    free(path);
    return -1;
  }
  free(path);
  if (lock_fd >= 0) close(lock_fd); /* a second job in one process (tests): the newer lock */
  lock_fd = fd;
  return 0;
}

int sl_control_start(sl_job_t *job, char *err, size_t errlen) {
  const char *dir = job->dag->settings.checkpoint_dir;
  if (!dir || !job->ckpt) return 0;
  struct sockaddr_un sa;
  char *path;
  int dirfd;
  if (socket_path(dir, &sa, &path, &dirfd, err, errlen) != 0) {
    free(path);
    return -1;
  }
  /* The directory is ours (sl_control_lock): a socket left there belongs to
   * a job that died. */
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  mode_t old = umask(0077);
  int b = fd >= 0 ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
  umask(old);
  close_dirfd(dirfd);
  if (b != 0 || listen(fd, 4) != 0) {
    snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    free(path);
    return -1;
  }
  struct sl_control *c = sl_xcalloc(1, sizeof(*c));
  c->job = job;
  c->fd = fd;
  c->path = path;
  if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
    snprintf(err, errlen, "cannot start the control thread");
    close(fd);
    unlink(path);
    free(path);
    free(c);
    return -1;
  }
  job->control = c;
  return 0;
}

void sl_control_stop(sl_job_t *job) {
  struct sl_control *c = job->control;
  if (!c) return;
  atomic_store(&c->stop, 1);
  pthread_join(c->thread, NULL);
  close(c->fd);
  unlink(c->path);
  free(c->path);
  free(c);
  job->control = NULL;
}

int sl_control_request(const char *ckpt_dir, const char *request, char *out, size_t outlen) {
  struct sockaddr_un sa;
  char *path;
  int dirfd;
  if (socket_path(ckpt_dir, &sa, &path, &dirfd, out, outlen) != 0) {
    free(path);
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    snprintf(out, outlen, "no running job answers on %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    close_dirfd(dirfd);
    free(path);
    return -1;
  }
  close_dirfd(dirfd);
  free(path);
  char req[CONTROL_LINE_MAX];
  snprintf(req, sizeof(req), "%s\n", request);
  write_str(fd, req);
  char line[CONTROL_LINE_MAX];
  /* A savepoint of a large state takes a while: wait up to an hour. */
  int rc = read_line(fd, line, sizeof(line), 3600 * 1000);
  close(fd);
  if (rc != 0) {
    snprintf(out, outlen, "the job closed the connection without an answer");
    return -1;
  }
  if (strncmp(line, "ok ", 3) == 0) {
    snprintf(out, outlen, "%s", line + 3);
    return 0;
  }
  snprintf(out, outlen, "%s", strncmp(line, "error ", 6) == 0 ? line + 6 : line);
  return -1;
}
