/*
 * fs.h - file-system helpers for the control paths (checkpoints, state
 * directories, savepoints, the control socket). Each returns 0 or an errno
 * unless it says otherwise; none is for a per-record path.
 */
#ifndef SL_FS_H
#define SL_FS_H

#include <stdbool.h>
#include <stddef.h>

/** write() all n bytes, retrying short writes and EINTR. */
int sl_fs_write_all(int fd, const void *p, size_t n);
/** Create or truncate `path`, write p, fsync, close. */
int sl_fs_write_file_synced(const char *path, const void *p, size_t n);
/** fsync a file or (dir = true) a directory by path. */
int sl_fs_fsync_path(const char *path, bool dir);
/** Copy a file's bytes to a new file dst (O_EXCL), fsynced. */
int sl_fs_copy_file(const char *src, const char *dst);
/** Remove a file or a directory tree (best effort, like rm -rf). */
void sl_fs_remove_tree(const char *path);
/** mkdir -p; -1 with "cannot create WHAT PATH: ..." or "WHAT PATH is not a directory". */
int sl_mkdir_p(const char *path, const char *what, char *err, size_t errlen);

#endif
