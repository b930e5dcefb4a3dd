/*
 * checkpoint_copy.c - copy a complete checkpoint directory elsewhere (a
 * savepoint) by hard links: checkpoint files are never modified once
 * written, so a link is a copy that costs nothing. Where a link is not
 * possible (another filesystem), the bytes are copied. The copy is built in
 * a new unique directory DST.tmp-XXXXXX beside DST (never one that existed
 * before) and renamed to DST when whole.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fs.h"

/* Copy the contents of src into the existing, empty directory dst. */
static int copy_tree(const char *src, const char *dst, char *err, size_t errlen) {
  DIR *d = opendir(src);
  if (!d) {
    snprintf(err, errlen, "cannot read %s: %s", src, strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char *s = sl_xasprintf("%s/%s", src, de->d_name);
    char *t = sl_xasprintf("%s/%s", dst, de->d_name);
    struct stat st;
    if (lstat(s, &st) != 0) {
      snprintf(err, errlen, "cannot stat %s: %s", s, strerror(errno));
      rc = -1;
    } else if (S_ISDIR(st.st_mode)) {
      if (mkdir(t, 0755) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", t, strerror(errno));
        rc = -1;
      } else {
        rc = copy_tree(s, t, err, errlen);
      }
    } else if (link(s, t) != 0) {
      int e = errno == EXDEV || errno == EPERM || errno == EMLINK ? sl_fs_copy_file(s, t) : errno;
      if (e) {
        snprintf(err, errlen, "cannot copy %s to %s: %s", s, t, strerror(e));
        rc = -1;
      }
    }
    free(s);
    free(t);
  }
  closedir(d);
  if (rc == 0) {
    int e = sl_fs_fsync_path(dst, true);
    if (e) {
      snprintf(err, errlen, "cannot sync %s: %s", dst, strerror(e));
      rc = -1;
    }
  }
  return rc;
}

int sl_ckpt_link_copy(const char *src, const char *dst, char *err, size_t errlen) {
  struct stat st;
  if (stat(dst, &st) == 0) {
    snprintf(err, errlen, "savepoint directory %s already exists", dst);
    return -1;
  }
  char *tmp = sl_xasprintf("%s.tmp-XXXXXX", dst);
  if (!mkdtemp(tmp)) {
    snprintf(err, errlen, "cannot create a directory beside %s: %s", dst, strerror(errno));
    free(tmp);
    return -1;
  }
  int rc = copy_tree(src, tmp, err, errlen);
  if (rc == 0 && rename(tmp, dst) != 0) {
    snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
    rc = -1;
  }
  if (rc != 0) sl_fs_remove_tree(tmp); /* ours: mkdtemp made it */
  if (rc == 0) {
    char *parent = sl_xstrdup(dst);
    char *slash = strrchr(parent, '/');
    if (slash) {
      *slash = 0;
      (void)sl_fs_fsync_path(*parent ? parent : "/", true);
    } else {
      (void)sl_fs_fsync_path(".", true);
    }
    free(parent);
  }
  free(tmp);
  return rc;
}

int sl_ckpt_supersede(const char *root, char *moved_to, size_t moved_len, char *err,
                      size_t errlen) {
  moved_to[0] = 0;
  DIR *d = opendir(root);
  if (!d) return 0; /* nothing there yet */
  char *dest = NULL;
  int rc = 0, moved = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    if (strncmp(de->d_name, "chk-", 4) != 0) continue;
    if (!dest) {
      dest = sl_xasprintf("%s/superseded-%lld", root, (long long)sl_wall_ms());
      if (mkdir(dest, 0755) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dest, strerror(errno));
        rc = -1;
        break;
      }
    }
    char *from = sl_xasprintf("%s/%s", root, de->d_name);
    char *to = sl_xasprintf("%s/%s", dest, de->d_name);
    if (rename(from, to) != 0) {
      snprintf(err, errlen, "cannot move %s to %s: %s", from, to, strerror(errno));
      rc = -1;
    } else {
      moved++;
    }
    free(from);
    free(to);
  }
  closedir(d);
  if (rc == 0 && moved) {
    (void)sl_fs_fsync_path(root, true);
    snprintf(moved_to, moved_len, "%s", dest);
  }
  free(dest);
  return rc;
}
