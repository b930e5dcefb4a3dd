/*
 * checkpoint_store.c - checkpoints on disk: writing one, reading one back
 * with every checksum verified, finding the newest valid one, pruning.
 *
 * Layout:  <root>/chk-000000000042/
 *              <node>.<subtask>.snap   one per operator instance
 *              <node>.<subtask>.rocksdb/
 *                                      keyed state of a RocksDB instance,
 *                                      as files (sl_state_snapshot_write_dir):
 *                                      SST files unchanged since the previous
 *                                      checkpoint are hard links to the same
 *                                      inode (incremental checkpoints)
 *              MANIFEST                written last: the checkpoint exists
 *                                      only once this file does
 *
 * A .snap file, little-endian:
 *   "SLSNAP01"  u64 op_state_len  op_state  u64 keyed_len  keyed
 * (op_state: op_state.c's format; keyed: the portable keyed-state format,
 * empty when the instance's keyed state is a directory). Savepoints always
 * write keyed state into the .snap file (full, any backend restores it).
 *
 * MANIFEST is text, one record per line, its last line a checksum of all
 * the lines before it, so a truncated or edited manifest is detected:
 *   sluice-checkpoint 1
 *   id 42
 *   kind checkpoint
 *   job clickstream
 *   max_key_groups 128
 *   created_ms 1700000000000
 *   node <name> <parallelism> <keyed 0|1>
 *   file <node> <subtask> <file name> <size> <xxh3-64 hex>
 *   checksum <xxh3-64 hex of everything above>
 * A file of a state directory is listed as <node>.<subtask>.rocksdb/<file>;
 * a manifest with such lines says "sluice-checkpoint 2" (version 1 readers
 * would not know them). Every listed file is checked (size, XXH3) before
 * anything is restored; state directory files are hashed as a stream, not
 * loaded.
 *
 * Durability: each .snap is fsynced, the state directories' new files and
 * the directories themselves too, the manifest is written to MANIFEST.tmp,
 * fsynced, renamed to MANIFEST, and the directory fsynced.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "checkpoint.h"
#include "fs.h"
#include "log.h"

#define SNAP_MAGIC "SLSNAP01"
#define MANIFEST_MAX (16u << 20)

static char *ckpt_dir_name(const char *root, uint64_t id) {
  return sl_xasprintf("%s/chk-%012" PRIu64, root, id);
}

/* ------------------------------------------------------------ writing */

static void append_snap_file(sl_buf_t *b, const sl_buf_t *op_state, const sl_buf_t *keyed) {
  sl_buf_append(b, SNAP_MAGIC, 8);
  sl_buf_append_u64(b, op_state->len);
  sl_buf_append(b, op_state->data, op_state->len);
  sl_buf_append_u64(b, keyed->len);
  sl_buf_append(b, keyed->data, keyed->len);
}

static void manifest_text(sl_buf_t *m, const sl_job_t *job, uint64_t id, const char *kind,
                          const sl_ckpt_file_t *files, uint32_t n) {
  const sl_plan_t *plan = job->plan;
  const sl_dag_t *dag = job->dag;
  char line[1024];
  int version = 1;
  for (uint32_t i = 0; i < n; i++)
    if (strchr(files[i].name, '/')) version = 2;
  int k = snprintf(line, sizeof(line),
                   "sluice-checkpoint %d\nid %" PRIu64 "\nkind %s\njob %s\nmax_key_groups %u\n"
                   "created_ms %" PRId64 "\n",
                   version, id, kind, dag->name, dag->settings.max_key_groups, sl_wall_ms());
  sl_buf_append(m, line, (size_t)k);
  for (size_t i = 0; i < dag->node_count; i++) {
    const sl_dag_node_t *node = &dag->nodes[i];
    k = snprintf(line, sizeof(line), "node %s %u %d\n", node->name, sl_dag_node_parallelism(node),
                 node->key_by ? 1 : 0);
    sl_buf_append(m, line, (size_t)k);
  }
  (void)plan;
  for (uint32_t i = 0; i < n; i++) {
    k = snprintf(line, sizeof(line), "file %s %u %s %" PRIu64 " %016" PRIx64 "\n", files[i].node,
                 files[i].subtask, files[i].name, files[i].size, files[i].hash);
    sl_buf_append(m, line, (size_t)k);
  }
  k = snprintf(line, sizeof(line), "checksum %016" PRIx64 "\n",
               (uint64_t)XXH3_64bits(m->data, m->len));
  sl_buf_append(m, line, (size_t)k);
}

/* One more entry in a growing file list. */
static sl_ckpt_file_t *add_file(sl_ckpt_file_t **files, uint32_t *n, uint32_t *cap) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    *files = sl_xrealloc(*files, *cap * sizeof(sl_ckpt_file_t));
  }
  sl_ckpt_file_t *f = &(*files)[(*n)++];
  memset(f, 0, sizeof(*f));
  return f;
}

static bool has_commit_points(const sl_ckpt_part_t *parts, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (parts[i].commit_point_count) return true;
  return false;
}

int sl_ckpt_write(sl_job_t *job, const char *root, uint64_t id, const char *kind,
                  sl_ckpt_part_t *parts, uint32_t n, uint64_t *bytes, char *err, size_t errlen) {
  char *dir = ckpt_dir_name(root, id);
  sl_ckpt_file_t *files = NULL;
  uint32_t nfiles = 0, capfiles = 0;
  sl_buf_t file = {0}, keyed = {0}, man = {0};
  uint64_t total = 0;
  int ok = 0, undecided = 0;
  /* Savepoints are full and portable: keyed state as a blob, any backend. */
  bool dirs_ok = strcmp(kind, "savepoint") != 0;
  sl_fs_remove_tree(dir); /* an attempt abandoned earlier with the same id */
  if (sl_fault_error("write-error", id)) {
    snprintf(err, errlen, "checkpoint %" PRIu64 ": cannot create %s: %s (SLUICE_FAULT)", id, dir,
             strerror(ENOSPC));
    goto out;
  }
  if (mkdir(dir, 0755) != 0) {
    snprintf(err, errlen, "checkpoint %" PRIu64 ": cannot create %s: %s", id, dir, strerror(errno));
    goto out;
  }
  for (uint32_t i = 0; i < n; i++) {
    sl_op_instance_t *inst = parts[i].inst;
    keyed.len = 0;
    if (parts[i].keyed) {
      char kerr[512] = "";
      int krc;
      if (dirs_ok && sl_state_snapshot_has_dir(parts[i].keyed)) {
        /* The backend's files, mostly hard links shared with the previous
         * checkpoint; listed in the manifest one by one. */
        char *sub = sl_xasprintf("%s.%u.rocksdb", inst->node->name, inst->subtask);
        char *path = sl_xasprintf("%s/%s", dir, sub);
        sl_state_file_t *sf = NULL;
        uint32_t nsf = 0;
        krc = sl_state_snapshot_write_dir(parts[i].keyed, path, &sf, &nsf, kerr, sizeof(kerr));
        for (uint32_t j = 0; krc == 0 && j < nsf; j++) {
          sl_ckpt_file_t *f = add_file(&files, &nfiles, &capfiles);
          f->node = inst->node->name;
          f->subtask = inst->subtask;
          f->name = sl_xasprintf("%s/%s", sub, sf[j].name);
          f->size = sf[j].size;
          f->hash = sf[j].hash;
          total += sf[j].size;
        }
        sl_state_files_free(sf, nsf);
        free(path);
        free(sub);
      } else {
        krc = sl_state_snapshot_write(parts[i].keyed, &keyed, kerr, sizeof(kerr));
      }
      if (krc != 0) {
        snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' task %u: keyed state: %s", id,
                 inst->node->name, inst->subtask, kerr);
        goto out;
      }
      sl_state_snapshot_release(parts[i].keyed);
      parts[i].keyed = NULL;
    }
    file.len = 0;
    append_snap_file(&file, &parts[i].op_state, &keyed);
    sl_ckpt_file_t *f = add_file(&files, &nfiles, &capfiles);
    f->node = inst->node->name;
    f->subtask = inst->subtask;
    f->name = sl_xasprintf("%s.%u.snap", inst->node->name, inst->subtask);
    f->size = file.len;
    f->hash = XXH3_64bits(file.data, file.len);
    char *path = sl_xasprintf("%s/%s", dir, f->name);
    int e = sl_fs_write_file_synced(path, file.data, file.len);
    if (e) {
      snprintf(err, errlen, "checkpoint %" PRIu64 ": writing %s: %s", id, path, strerror(e));
      free(path);
      goto out;
    }
    free(path);
    total += file.len;
  }
  manifest_text(&man, job, id, kind, files, nfiles);
  char *tmp = sl_xasprintf("%s/MANIFEST.tmp", dir);
  char *final = sl_xasprintf("%s/MANIFEST", dir);
  int e = sl_fs_write_file_synced(tmp, man.data, man.len);
  if (!e) {
    sl_fault_point("manifest", id);
    if (has_commit_points(parts, n)) {
      /* The directory must be durable before an external system commits
       * on the strength of it; after the commit, only the rename is left. */
      e = sl_fs_fsync_path(dir, true);
      if (!e) e = sl_fs_fsync_path(root, true);
      if (e) {
        snprintf(err, errlen, "checkpoint %" PRIu64 ": writing %s: %s", id, tmp, strerror(e));
        free(tmp);
        free(final);
        goto out;
      }
      if (sl_ckpt_run_commit_points(parts, n, id, err, errlen) != 0) {
        undecided = 1; /* kept as written: the next start resolves it */
        free(tmp);
        free(final);
        goto out;
      }
      /* Committed outside: from here a failure leaves the checkpoint
       * undecided too (resolve() will find the commit), never removed. */
      undecided = 1;
      sl_fault_point("decided", id);
    }
    if (rename(tmp, final) != 0) e = errno;
  }
  if (!e) e = sl_fs_fsync_path(dir, true);
  if (!e) e = sl_fs_fsync_path(root, true);
  if (e) snprintf(err, errlen, "checkpoint %" PRIu64 ": writing %s: %s", id, final, strerror(e));
  free(tmp);
  free(final);
  if (e) goto out;
  sl_fault_point("rename", id);
  total += man.len;
  *bytes = total;
  ok = 1;
out:
  /* never leave a partial checkpoint that looks like one */
  if (!ok && !undecided) sl_fs_remove_tree(dir);
  for (uint32_t i = 0; i < nfiles; i++) free(files[i].name);
  free(files);
  sl_buf_free(&file);
  sl_buf_free(&keyed);
  sl_buf_free(&man);
  free(dir);
  return ok ? 0 : undecided ? SL_CKPT_UNDECIDED : -1;
}

/* ------------------------------------------------------------ listing */

/* Ids of chk-* directories in root, newest first. */
static uint64_t *list_ids(const char *root, uint32_t *count) {
  *count = 0;
  DIR *d = opendir(root);
  if (!d) return NULL;
  uint64_t *ids = NULL;
  uint32_t n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strncmp(de->d_name, "chk-", 4) != 0) continue;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(de->d_name + 4, &end, 10);
    if (*end || errno || v == 0 || de->d_name[4] == 0) continue;
    ids = sl_xrealloc(ids, (n + 1) * sizeof(uint64_t));
    ids[n++] = v;
  }
  closedir(d);
  for (uint32_t i = 1; i < n; i++) /* insertion sort, descending: few entries */
    for (uint32_t j = i; j > 0 && ids[j] > ids[j - 1]; j--) {
      uint64_t x = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = x;
    }
  *count = n;
  return ids;
}

uint64_t sl_ckpt_newest_id(const char *root) {
  uint32_t n;
  uint64_t *ids = list_ids(root, &n);
  uint64_t v = n ? ids[0] : 0;
  free(ids);
  return v;
}

static int has_manifest(const char *root, uint64_t id) {
  char *p = sl_xasprintf("%s/chk-%012" PRIu64 "/MANIFEST", root, id);
  struct stat st;
  int r = stat(p, &st) == 0;
  free(p);
  return r;
}

void sl_ckpt_prune(const char *root, uint32_t keep, uint64_t newest) {
  uint32_t n;
  uint64_t *ids = list_ids(root, &n);
  uint32_t complete = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (ids[i] > newest) continue; /* not ours to judge */
    int whole = has_manifest(root, ids[i]);
    if (whole && ++complete <= keep) continue;
    if (!whole && ids[i] == newest) continue;
    char *dir = ckpt_dir_name(root, ids[i]);
    sl_fs_remove_tree(dir);
    free(dir);
  }
  free(ids);
}

/* ------------------------------------------------------------ reading */

void sl_ckpt_manifest_free(sl_ckpt_manifest_t *m) {
  if (!m) return;
  free(m->kind);
  free(m->job);
  for (uint32_t i = 0; i < m->node_count; i++) free(m->nodes[i].name);
  free(m->nodes);
  for (uint32_t i = 0; i < m->file_count; i++) {
    free(m->files[i].node);
    free(m->files[i].name);
    free(m->files[i].data);
  }
  free(m->files);
  free(m->dir);
  free(m);
}

static unsigned char *read_whole(const char *path, size_t max, size_t *len, int *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size > max) {
    *err = fstat(fd, &st) != 0 ? errno : EFBIG;
    close(fd);
    return NULL;
  }
  size_t n = (size_t)st.st_size;
  unsigned char *buf = sl_xmalloc(n + 1);
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  buf[got] = 0;
  *len = got;
  return buf;
}

static int valid_name(const char *s) {
  if (!*s || strlen(s) > 255) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* A listed file: a plain name, or <node>.<subtask>.rocksdb/<plain name>. */
static int valid_file_name(const char *b, const char *node, unsigned subtask) {
  const char *slash = strchr(b, '/');
  if (!slash) return valid_name(b) && strcmp(b, ".") != 0 && strcmp(b, "..") != 0;
  char want[300];
  int k = snprintf(want, sizeof(want), "%s.%u.rocksdb/", node, subtask);
  if (k <= 0 || (size_t)k >= sizeof(want) || strncmp(b, want, (size_t)k) != 0) return 0;
  const char *f = b + k;
  return valid_name(f) && strcmp(f, ".") != 0 && strcmp(f, "..") != 0;
}

/* Parse MANIFEST text into m. -1 with a message naming the line. */
static int parse_manifest(char *text, size_t len, sl_ckpt_manifest_t *m, char *err, size_t errlen) {
  if (memchr(text, 0, len)) {
    snprintf(err, errlen, "MANIFEST contains a NUL byte");
    return -1;
  }
  /* The checksum line covers everything before it. */
  char *cs = NULL;
  for (char *p = text; (p = strstr(p, "checksum ")); p++)
    if (p == text || p[-1] == '\n') cs = p;
  if (!cs) {
    snprintf(err, errlen, "MANIFEST has no checksum line (truncated?)");
    return -1;
  }
  uint64_t want = XXH3_64bits(text, (size_t)(cs - text));
  char *end;
  unsigned long long got = strtoull(cs + 9, &end, 16);
  if (end == cs + 9 || *end != '\n' || end[1] != 0) {
    snprintf(err, errlen, "MANIFEST checksum line is malformed or not the last line");
    return -1;
  }
  if (got != want) {
    snprintf(err, errlen, "MANIFEST checksum mismatch (the file was altered or truncated)");
    return -1;
  }
  *cs = 0;
  int lineno = 0, have_header = 0, have_id = 0;
  for (char *save = NULL, *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
    lineno++;
    char a[256], b[256], c[256];
    unsigned long long u1, u2;
    long long ll;
    unsigned v1;
    int d1;
    if (lineno == 1) {
      if (strcmp(ln, "sluice-checkpoint 1") != 0 && strcmp(ln, "sluice-checkpoint 2") != 0) {
        snprintf(err, errlen,
                 "MANIFEST line 1: not a Sluice checkpoint manifest of version 1 or 2");
        return -1;
      }
      have_header = 1;
    } else if (sscanf(ln, "id %llu", &u1) == 1) {
      m->id = u1;
      have_id = 1;
    } else if (sscanf(ln, "kind %255s", a) == 1) {
      free(m->kind);
      m->kind = sl_xstrdup(a);
    } else if (sscanf(ln, "job %255s", a) == 1) {
      free(m->job);
      m->job = sl_xstrdup(a);
    } else if (sscanf(ln, "max_key_groups %u", &v1) == 1) {
      m->max_key_groups = v1;
    } else if (sscanf(ln, "created_ms %lld", &ll) == 1) {
      m->created_ms = ll;
    } else if (sscanf(ln, "node %255s %u %d", a, &v1, &d1) == 3 && valid_name(a)) {
      m->nodes = sl_xrealloc(m->nodes, (m->node_count + 1) * sizeof(sl_ckpt_node_t));
      m->nodes[m->node_count++] = (sl_ckpt_node_t){sl_xstrdup(a), v1, d1 != 0};
    } else if (sscanf(ln, "file %255s %u %255s %llu %255s", a, &v1, b, &u1, c) == 5 &&
               valid_name(a) && valid_file_name(b, a, v1)) {
      u2 = strtoull(c, &end, 16);
      if (*end) goto bad;
      m->files = sl_xrealloc(m->files, (m->file_count + 1) * sizeof(sl_ckpt_file_t));
      m->files[m->file_count++] =
          (sl_ckpt_file_t){sl_xstrdup(a), v1, sl_xstrdup(b), u1, u2, NULL};
    } else {
      goto bad;
    }
    continue;
  bad:
    snprintf(err, errlen, "MANIFEST line %d is malformed: %.80s", lineno, ln);
    return -1;
  }
  if (!have_header || !have_id || !m->kind || !m->max_key_groups) {
    snprintf(err, errlen, "MANIFEST lacks its header, id, kind or max_key_groups");
    return -1;
  }
  return 0;
}

/* Check one .snap file's framing (the contents are checked at restore). */
static int check_snap(const sl_ckpt_file_t *f, char *err, size_t errlen) {
  const unsigned char *p = f->data;
  size_t n = f->size;
  if (n < 8 + 8 || memcmp(p, SNAP_MAGIC, 8) != 0) {
    snprintf(err, errlen, "%s: not a Sluice snapshot file", f->name);
    return -1;
  }
  return 0;
}

/* A file too large to load: size, then XXH3 as a stream. */
static int check_streamed(const char *path, const sl_ckpt_file_t *f, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(err, errlen, "file %s listed in the MANIFEST cannot be read: %s", f->name,
             strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  if ((uint64_t)st.st_size != f->size) {
    snprintf(err, errlen, "file %s has %llu bytes, the MANIFEST says %" PRIu64, f->name,
             (unsigned long long)st.st_size, f->size);
    close(fd);
    return -1;
  }
  XXH3_state_t *h = XXH3_createState();
  XXH3_64bits_reset(h);
  size_t cap = 1 << 20;
  unsigned char *buf = sl_xmalloc(cap);
  uint64_t got = 0;
  int e = 0;
  for (;;) {
    ssize_t r = read(fd, buf, cap);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) e = errno;
    if (r <= 0) break;
    XXH3_64bits_update(h, buf, (size_t)r);
    got += (uint64_t)r;
  }
  uint64_t sum = XXH3_64bits_digest(h);
  XXH3_freeState(h);
  free(buf);
  close(fd);
  if (e) {
    snprintf(err, errlen, "file %s listed in the MANIFEST cannot be read: %s", f->name,
             strerror(e));
    return -1;
  }
  if (got != f->size) {
    snprintf(err, errlen, "file %s has %" PRIu64 " bytes, the MANIFEST says %" PRIu64, f->name, got,
             f->size);
    return -1;
  }
  if (sum != f->hash) {
    snprintf(err, errlen, "file %s does not match its checksum (corrupted)", f->name);
    return -1;
  }
  return 0;
}

static int load_dir_as(const char *dir, const char *manifest_name, sl_ckpt_manifest_t **out,
                       char *err, size_t errlen) {
  *out = NULL;
  char *mp = sl_xasprintf("%s/%s", dir, manifest_name);
  size_t len = 0;
  int e = 0;
  char *text = (char *)read_whole(mp, MANIFEST_MAX, &len, &e);
  free(mp);
  if (!text) {
    snprintf(err, errlen, "cannot read MANIFEST: %s", strerror(e));
    return -1;
  }
  sl_ckpt_manifest_t *m = sl_xcalloc(1, sizeof(*m));
  m->dir = sl_xstrdup(dir);
  if (parse_manifest(text, len, m, err, errlen) != 0) {
    free(text);
    sl_ckpt_manifest_free(m);
    return -1;
  }
  free(text);
  for (uint32_t i = 0; i < m->file_count; i++) {
    sl_ckpt_file_t *f = &m->files[i];
    char *fp = sl_xasprintf("%s/%s", dir, f->name);
    if (strchr(f->name, '/')) { /* a state directory's file: hashed, not loaded */
      int r = check_streamed(fp, f, err, errlen);
      free(fp);
      if (r != 0) goto fail;
      continue;
    }
    size_t got = 0;
    f->data = read_whole(fp, SIZE_MAX / 2, &got, &e);
    free(fp);
    if (!f->data) {
      snprintf(err, errlen, "file %s listed in the MANIFEST cannot be read: %s", f->name,
               strerror(e));
      goto fail;
    }
    if (got != f->size) {
      snprintf(err, errlen, "file %s has %zu bytes, the MANIFEST says %" PRIu64, f->name, got,
               f->size);
      goto fail;
    }
    if (XXH3_64bits(f->data, got) != f->hash) {
      snprintf(err, errlen, "file %s does not match its checksum (corrupted)", f->name);
      goto fail;
    }
    if (check_snap(f, err, errlen) != 0) goto fail;
  }
  *out = m;
  return 0;
fail:
  sl_ckpt_manifest_free(m);
  return -1;
}

int sl_ckpt_load_dir(const char *dir, sl_ckpt_manifest_t **out, char *err, size_t errlen) {
  return load_dir_as(dir, "MANIFEST", out, err, errlen);
}

sl_ckpt_manifest_t *sl_ckpt_find_undecided(const char *root, uint64_t newer_than) {
  uint32_t n;
  uint64_t *ids = list_ids(root, &n);
  sl_ckpt_manifest_t *found = NULL;
  for (uint32_t i = 0; i < n && !found && ids[i] > newer_than; i++) {
    if (has_manifest(root, ids[i])) break; /* (a complete one: none newer is undecided) */
    char *dir = ckpt_dir_name(root, ids[i]);
    char *tmp = sl_xasprintf("%s/MANIFEST.tmp", dir);
    struct stat st;
    if (stat(tmp, &st) == 0) {
      char why[512];
      sl_ckpt_manifest_t *m = NULL;
      if (load_dir_as(dir, "MANIFEST.tmp", &m, why, sizeof(why)) == 0 && m->id == ids[i])
        found = m;
      else if (m)
        sl_ckpt_manifest_free(m);
      /* one that does not read back whole was never committed on: the
       * manifest is fsynced before any commit point runs */
    }
    free(tmp);
    free(dir);
  }
  free(ids);
  return found;
}

int sl_ckpt_settle_undecided(const sl_ckpt_manifest_t *m, bool took_effect, char *err,
                             size_t errlen) {
  char *tmp = sl_xasprintf("%s/MANIFEST.tmp", m->dir);
  char *final = sl_xasprintf("%s/MANIFEST", m->dir);
  int e = took_effect ? (rename(tmp, final) != 0 ? errno : 0) : (unlink(tmp) != 0 ? errno : 0);
  if (!e) e = sl_fs_fsync_path(m->dir, true);
  if (e)
    snprintf(err, errlen, "checkpoint %s: cannot %s its MANIFEST.tmp: %s", m->dir,
             took_effect ? "rename" : "remove", strerror(e));
  free(tmp);
  free(final);
  return e ? -1 : 0;
}

sl_ckpt_manifest_t *sl_ckpt_load_latest(const char *root, char *err, size_t errlen) {
  err[0] = 0;
  struct stat st;
  if (stat(root, &st) != 0) return NULL; /* no directory yet: a fresh start */
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "checkpoint directory %s is not a directory", root);
    return NULL;
  }
  uint32_t n;
  uint64_t *ids = list_ids(root, &n);
  sl_ckpt_manifest_t *found = NULL;
  for (uint32_t i = 0; i < n && !found; i++) {
    char *dir = ckpt_dir_name(root, ids[i]);
    if (!has_manifest(root, ids[i])) {
      sl_log_msg(SL_LOG_INFO, "checkpoints", "%s never completed (no MANIFEST); ignoring it", dir);
    } else {
      char why[512];
      sl_ckpt_manifest_t *m = NULL;
      if (sl_ckpt_load_dir(dir, &m, why, sizeof(why)) == 0 && m->id != ids[i]) {
        snprintf(why, sizeof(why), "its MANIFEST says id %" PRIu64, m->id);
        sl_ckpt_manifest_free(m);
        m = NULL;
      }
      if (m)
        found = m;
      else
        sl_log_msg(SL_LOG_WARN, "checkpoints", "checkpoint %s is damaged, falling back to an older one: %s",
                   dir, why);
    }
    free(dir);
  }
  free(ids);
  return found;
}
