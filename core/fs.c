/* fs.c - see fs.h. */
#define _GNU_SOURCE
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int sl_fs_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int sl_fs_write_file_synced(const char *path, const void *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int e = sl_fs_write_all(fd, p, n);
  if (!e && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  return e;
}

int sl_fs_fsync_path(const char *path, bool dir) {
  int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = fsync(fd) != 0 ? errno : 0;
  close(fd);
  return e;
}

int sl_fs_copy_file(const char *src, const char *dst) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno;
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    int e = errno;
    close(in);
    return e;
  }
  enum { CAP = 1 << 16 };
  char *buf = sl_xmalloc(CAP);
  int e = 0;
  for (;;) {
    ssize_t r = read(in, buf, CAP);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      e = errno;
      break;
    }
    if (r == 0) break;
    if ((e = sl_fs_write_all(out, buf, (size_t)r)) != 0) break;
  }
  free(buf);
  if (!e && fsync(out) != 0) e = errno;
  if (close(out) != 0 && !e) e = errno;
  close(in);
  return e;
}

void sl_fs_remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  DIR *d = opendir(path);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char *p = sl_xasprintf("%s/%s", path, de->d_name);
      sl_fs_remove_tree(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(path);
}

int sl_mkdir_p(const char *path, const char *what, char *err, size_t errlen) {
  char *p = sl_xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    (void)mkdir(p, 0755);
    *s = '/';
  }
  int rc = 0;
  if (mkdir(p, 0755) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s %s: %s", what, path, strerror(errno));
    rc = -1;
  }
  struct stat st;
  if (!rc && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
    snprintf(err, errlen, "%s %s is not a directory", what, path);
    rc = -1;
  }
  free(p);
  return rc;
}
