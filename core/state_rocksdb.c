/*
 * state_rocksdb.c - the RocksDB keyed-state backend (see state.h): state
 * larger than memory, and incremental checkpoints.
 *
 * Where
 *   One database per operator instance, in the instance's working directory
 *   (checkpoint_snapshot.c chooses it: <state.dir>/<job>/<node>.<subtask>;
 *   without state.dir, <checkpoints.dir>/state/<job>/<node>.<subtask>; without
 *   either, a fresh temporary directory):
 *     sluice.lock   flock()ed while the instance lives: a second process
 *                   given the same directory is refused
 *     db/           the database
 *     stage-N/      a checkpoint being assembled (writer thread)
 *   The database is not durable by itself (writes skip the write-ahead log;
 *   checkpoints give durability), so the directory is emptied when the
 *   instance is created and removed when it is freed. An entry there that is
 *   not one of the above is refused, never removed.
 *
 * Rows (keys compare bytewise)
 *   P = key group (u16 BE) | state id (u16 BE) | key length (LEB128) | key
 *   value:  P                    -> hdr | value bytes
 *   list:   P                    -> hdr | u64 first | u64 end   (head row)
 *           P | u64 BE index     -> item, for first <= index < end
 *   map:    P                    -> hdr | u64 count             (head row)
 *           P | 0x00 | map key   -> value
 *   meta:   FF FF 'G'            -> u32 max_key_groups
 *           FF FF 'S' | u16 id   -> u8 kind | i64 ttl_ms | name
 *   hdr: 0x00 (never expires) or 0x01 | i64 expiry (processing-time ms);
 *   integers inside values are little-endian. A key group is a contiguous
 *   key range (groups in order, metadata after the last one), so a range of
 *   key groups is one range scan, and the rows of one (state, key) are
 *   exactly the keys that start with P (the length in P makes a key never a
 *   prefix of another's rows). Writes of several rows are one write batch.
 *   trim_front deletes items and moves `first`; a map put reads whether the
 *   map key is new (the count makes "the last field gone: the entry goes"
 *   exact). Up to SMALL_DELETE rows are deleted one by one, more with one
 *   range deletion. A scan of one state over all keys (sl_ks_scan) reads one
 *   key range per key group, [g | id, g | id + 1) (see r_scan).
 *
 * Semantics are state_mem.c's (its header and tests/unit/ test the same
 * behaviour against both), except: entries() and bytes() are RocksDB's
 * estimates; an expired entry reads as absent but is not deleted by the
 * read: an expired value row is dropped by a compaction filter, an expired
 * list or map is replaced by the next write to it; map_next returns map keys
 * in byte order (its cursor counts the entries returned; the iterator is
 * kept between calls, so a cursor costs one step, not a rescan).
 *
 * Hot path: set_key encodes P once per record (the state id is patched in
 * per call). A get is one rocksdb_get_pinned: the value is not copied; the
 * pinned slice is released by the next call (what a read returns is valid
 * until then, as state.h says). A put encodes hdr + value into a kept
 * buffer and calls rocksdb_put. Write options: no WAL.
 *
 * Snapshots
 *   snapshot_begin (task thread, cheap): a RocksDB snapshot (a sequence
 *   number: nothing is copied) and a copy of the state declarations; from
 *   now on, each write first records its P in a hash set (under a mutex
 *   that only the writer thread contends for, once).
 *   write (any thread): iterates the snapshot in key order and writes the
 *   portable format, the same as state_mem.c (SLKS-MEM, by key group: the
 *   natural order here). Full, backend-independent: used for savepoints.
 *   write_dir (writer thread; incremental): rocksdb_checkpoint_create into
 *   stage-N flushes the memtables and hard-links the live SST files there
 *   (the small files are copied). That is the database as it is now, which
 *   includes what the task wrote after begin: logging stops, and each
 *   logged P is put back as it was at begin: stage-N is opened as a
 *   database, the rows of P deleted and the snapshot's rows of P written,
 *   then flushed (one small SST). Every file of stage-N is then hard-linked
 *   into the checkpoint: an SST unchanged since the previous checkpoint is
 *   the same inode in both (compaction makes new files, never changes one).
 *   The XXH3-64 of a file seen by the previous write_dir is reused when its
 *   name, size, inode, device and mtime match. New files are fsynced (a
 *   no-op for what RocksDB synced), and the directory.
 *
 * Restore
 *   A blob: validated whole first, then written in batches (a damaged blob
 *   leaves ks as it was; the database is not even opened before).
 *   A directory with exactly this instance's key-group range into an
 *   instance that has nothing yet: its SST files hard-linked into db/, the
 *   rest copied, and opened there: no data copied.
 *   Any other case (rescaling): the directory is opened read-only (nothing
 *   is written into it; RocksDB's log goes to the working directory) and
 *   the rows of the instance's range are copied in, state ids mapped by
 *   name.
 *
 * Tuning (sl_state_rocksdb_options; one block cache for the process)
 *   block cache       256 MiB LRU shared by every instance of the process
 *   filters           full bloom filters, 10 bits per key (about 1% false
 *                     positives: a get of an absent key rarely reads a
 *                     block); whole-key bloom in the memtable too
 *   data blocks       4 KiB, with a hash index inside each block (point
 *                     lookups skip the binary search)
 *   write buffers     32 MiB, up to 4 (a checkpoint's flush does not stall
 *                     the task's writes); max 4 background jobs
 *   compression       LZ4 (cheap to decode on the read path)
 *   levels            dynamic level sizes (bounded space amplification)
 *   shutdown          no flush at close (the directory is removed anyway)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>
#include <xxhash.h>

#include "log.h"
#include "state.h"
#include "fs.h"
#include "state_blob.h"
#include "state_rocksdb.h"

#define NEVER INT64_MAX
#define MAX_STATES 1024u
#define MAX_NAME 1024u
#define MAX_LEN ((size_t)UINT32_MAX)
#define MAX_KG 32768u
#define MAGIC SL_BLOB_MAGIC
#define FORMAT_VERSION SL_BLOB_VERSION
#define SMALL_DELETE 32u
#define BATCH_ROWS 10000
#define BLOCK_CACHE_BYTES ((size_t)256 << 20)
#define WRITE_BUFFER_BYTES ((size_t)32 << 20)

static const unsigned char META_G[3] = {0xFF, 0xFF, 'G'};

/* ------------------------------------------------------------- helpers */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static inline void put16be(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}
static inline uint32_t get16be(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }

static inline void put64be(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}
static inline uint64_t get64be(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static inline unsigned char *put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
  return p + 4;
}
static inline unsigned char *put64(unsigned char *p, uint64_t v) {
  p = put32(p, (uint32_t)v);
  return put32(p, (uint32_t)(v >> 32));
}
static inline uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const unsigned char *p) {
  return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static inline size_t varint_put(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

/* LEB128 of at most 5 bytes (a u32); 0 when malformed or past `end`. */
static inline size_t varint_get(const unsigned char *p, size_t avail, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < avail && i < 5; i++) {
    x |= (uint64_t)(p[i] & 0x7F) << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = x;
      return i + 1;
    }
  }
  return 0;
}

/* hdr: 0x00, or 0x01 | i64 expiry. */
static inline size_t hdr_put(unsigned char *p, int64_t expire) {
  if (expire == NEVER) {
    p[0] = 0;
    return 1;
  }
  p[0] = 1;
  put64(p + 1, (uint64_t)expire);
  return 9;
}

/* Size of the header at p, its expiry in *expire; 0 when malformed. */
static inline size_t hdr_get(const unsigned char *p, size_t n, int64_t *expire) {
  if (n >= 1 && p[0] == 0) {
    *expire = NEVER;
    return 1;
  }
  if (n >= 9 && p[0] == 1) {
    *expire = (int64_t)get64(p + 1);
    return 9;
  }
  return 0;
}

/* The least key greater than every key that starts with p[0, n): p with
 * trailing 0xFF bytes dropped and the last byte incremented. Our prefixes
 * start with a key group below 0x8000, so this never runs out. */
static size_t prefix_end(const unsigned char *p, size_t n, unsigned char *out) {
  memcpy(out, p, n);
  while (n > 0 && out[n - 1] == 0xFF) n--;
  if (n > 0) out[n - 1]++;
  return n;
}

/* A parsed row key. */
typedef struct rowkey {
  uint32_t kg, sid;
  const unsigned char *key;
  size_t klen, plen; /* the prefix P is [0, plen) */
  const unsigned char *suffix;
  size_t slen;
} rowkey_t;

static int rowkey_parse(const unsigned char *k, size_t n, rowkey_t *rk) {
  if (n < 5 || k[0] == 0xFF) return -1;
  rk->kg = get16be(k);
  rk->sid = get16be(k + 2);
  uint64_t len;
  size_t vl = varint_get(k + 4, n - 4, &len);
  if (!vl || len > n - 4 - vl) return -1;
  rk->key = k + 4 + vl;
  rk->klen = (size_t)len;
  rk->plen = 4 + vl + (size_t)len;
  rk->suffix = k + rk->plen;
  rk->slen = n - rk->plen;
  return 0;
}

/* ---------------------------------------------------------- filesystem */

/* XXH3-64 of a file, streamed; 0 or an errno (EIO when its size is not `size`). */
static int hash_file(const char *path, uint64_t size, uint64_t *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  XXH3_state_t *h = XXH3_createState();
  if (!h) {
    close(fd);
    return ENOMEM;
  }
  XXH3_64bits_reset(h);
  static const size_t cap = 1 << 20;
  char *buf = sl_xmalloc(cap);
  uint64_t got = 0;
  int e = 0;
  for (;;) {
    ssize_t r = read(fd, buf, cap);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      e = errno;
      break;
    }
    if (r == 0) break;
    XXH3_64bits_update(h, buf, (size_t)r);
    got += (uint64_t)r;
  }
  if (!e && got != size) e = EIO;
  if (!e) *out = XXH3_64bits_digest(h);
  free(buf);
  XXH3_freeState(h);
  close(fd);
  return e;
}

/* Files of a database directory worth keeping: not its lock, not its info log. */
static bool db_file_kept(const char *name) {
  if (name[0] == '.') return false;
  if (strcmp(name, "LOCK") == 0) return false;
  if (strncmp(name, "LOG", 3) == 0) return false;
  return true;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files of a directory (sorted; db_file_kept only). NULL + errno on failure. */
static char **list_files(const char *dir, uint32_t *n, int *e) {
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    *e = errno;
    return NULL;
  }
  char **names = NULL;
  uint32_t cnt = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!db_file_kept(de->d_name)) continue;
    char *p = sl_xasprintf("%s/%s", dir, de->d_name);
    struct stat st;
    bool reg = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    if (!reg) continue;
    names = sl_xrealloc(names, (cnt + 1) * sizeof(char *));
    names[cnt++] = sl_xstrdup(de->d_name);
  }
  closedir(d);
  if (cnt) qsort(names, cnt, sizeof(char *), cmp_str);
  *n = cnt;
  if (!names) names = sl_xcalloc(1, sizeof(char *));
  return names;
}

static void names_free(char **names, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

static bool is_sst(const char *name) {
  size_t n = strlen(name);
  return n > 4 && strcmp(name + n - 4, ".sst") == 0;
}

/* A private, writable copy of database directory src in dst (created):
 * SST files hard-linked (RocksDB never changes one), the rest copied. */
static int materialize(const char *src, const char *dst, char *err, size_t errlen) {
  if (mkdir(dst, 0755) != 0) return fail(err, errlen, "cannot create %s: %s", dst, strerror(errno));
  uint32_t n;
  int e = 0;
  char **names = list_files(src, &n, &e);
  if (!names) return fail(err, errlen, "cannot read %s: %s", src, strerror(e));
  int rc = 0;
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    char *s = sl_xasprintf("%s/%s", src, names[i]);
    char *t = sl_xasprintf("%s/%s", dst, names[i]);
    e = 0;
    if (!is_sst(names[i]) || link(s, t) != 0) e = sl_fs_copy_file(s, t);
    if (e) rc = fail(err, errlen, "cannot copy %s to %s: %s", s, t, strerror(e));
    free(s);
    free(t);
  }
  names_free(names, n);
  return rc;
}

/* ------------------------------------------------------------ options */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static rocksdb_block_based_table_options_t
    *g_table; /* owns the bloom policy; lives for the process */
static rocksdb_cache_t *g_cache;

static void global_init(void) {
  g_cache = rocksdb_cache_create_lru(BLOCK_CACHE_BYTES);
  g_table = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_block_cache(g_table, g_cache);
  rocksdb_block_based_options_set_filter_policy(g_table,
                                                rocksdb_filterpolicy_create_bloom_full(10));
  rocksdb_block_based_options_set_whole_key_filtering(g_table, 1);
  rocksdb_block_based_options_set_block_size(g_table, 4096);
  rocksdb_block_based_options_set_data_block_index_type(
      g_table, rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
  rocksdb_block_based_options_set_data_block_hash_ratio(g_table, 0.75);
  rocksdb_block_based_options_set_format_version(g_table, 5);
}

rocksdb_options_t *sl_state_rocksdb_options(void) {
  pthread_once(&g_once, global_init);
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(o, 1);
  rocksdb_options_set_block_based_table_factory(o, g_table);
  rocksdb_options_set_write_buffer_size(o, WRITE_BUFFER_BYTES);
  rocksdb_options_set_max_write_buffer_number(o, 4);
  rocksdb_options_set_max_background_jobs(o, 4);
  rocksdb_options_set_compression(o, rocksdb_lz4_compression);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
  rocksdb_options_set_memtable_whole_key_filtering(o, 1);
  rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, 0.02);
  rocksdb_options_set_bytes_per_sync(o, 1 << 20);
  rocksdb_options_set_info_log_level(o, 2 /* warnings and errors */);
  rocksdb_options_set_keep_log_file_num(o, 2);
  rocksdb_options_set_max_log_file_size(o, 1 << 20);
  rocksdb_options_set_avoid_unnecessary_blocking_io(o, 1);
  /* Not in the C API as a setter. */
  rocksdb_options_t *t = rocksdb_options_create();
  char *e = NULL;
  rocksdb_get_options_from_string(o, "avoid_flush_during_shutdown=true", t, &e);
  if (e) {
    free(e);
    rocksdb_options_destroy(t);
    return o;
  }
  rocksdb_options_destroy(o);
  return t;
}

rocksdb_writeoptions_t *sl_state_rocksdb_writeoptions(void) {
  rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
  rocksdb_writeoptions_disable_WAL(w, 1);
  return w;
}

/* Options to open a database that is only read or patched once: few open
 * files (table readers opened on demand), no statistics pass at open. */
static rocksdb_options_t *side_options(bool create) {
  rocksdb_options_t *o = sl_state_rocksdb_options();
  rocksdb_options_set_create_if_missing(o, create);
  rocksdb_options_set_max_open_files(o, 64);
  rocksdb_options_set_skip_stats_update_on_db_open(o, 1);
  rocksdb_options_set_disable_auto_compactions(o, 1);
  return o;
}

/* ------------------------------------------------- the shared database */

/* A file seen by the last write_dir, for reusing its hash. */
typedef struct hcache {
  char *name;
  uint64_t size, ino, dev;
  int64_t mtime_ns;
  uint64_t hash;
  char *path; /* its link in that checkpoint (a source when the stage cannot be linked) */
} hcache_t;

typedef struct lslot {
  uint64_t hash;
  size_t off; /* into the log buffer, + 1; 0 = empty */
} lslot_t;

/* The database and what the task and the snapshot writer share: the last
 * reference (the instance's or a snapshot's) closes it and removes the
 * working directory. */
typedef struct rdb {
  atomic_int refs;
  char *dir;      /* the working directory */
  char *db_dir;   /* dir/db */
  char *tmp_root; /* a temporary directory to remove, or NULL */
  bool owns_dir;  /* dir is ours to remove (prepared and locked) */
  int lock_fd;
  rocksdb_t *db; /* NULL until first needed */
  rocksdb_options_t *opts;
  rocksdb_compactionfilter_t *filter;
  rocksdb_checkpoint_t *cp;
  uint32_t stage_seq;
  uint32_t max_kg;
  /* The compaction filter drops value rows expired at min(now, snap_now). */
  _Atomic int64_t now, snap_now;
  _Atomic unsigned char kinds[MAX_STATES];
  /* Prefixes written while a snapshot is active (see the top). */
  pthread_mutex_t log_mu;
  atomic_int logging;
  sl_buf_t log; /* u32 length + prefix, each */
  lslot_t *lset;
  size_t lcap, lcount;
  atomic_int snap_busy; /* one snapshot at a time */
  /* Hash cache (writer thread only). */
  hcache_t *hc;
  uint32_t nhc;
} rdb_t;

static void hcache_free(hcache_t *hc, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    free(hc[i].name);
    free(hc[i].path);
  }
  free(hc);
}

static void rdb_unref(rdb_t *r) {
  if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1) return;
  if (r->cp) rocksdb_checkpoint_object_destroy(r->cp);
  if (r->db) {
    rocksdb_cancel_all_background_work(r->db, 1);
    rocksdb_close(r->db);
  }
  if (r->opts) rocksdb_options_destroy(r->opts);
  if (r->filter) rocksdb_compactionfilter_destroy(r->filter);
  if (r->owns_dir) {
    sl_fs_remove_tree(r->dir);
    char *parent = sl_xstrdup(r->dir), *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
      *slash = 0;
      rmdir(parent); /* <state dir>/<job>, when this was its last instance */
    }
    free(parent);
  }
  if (r->tmp_root) sl_fs_remove_tree(r->tmp_root);
  if (r->lock_fd >= 0) close(r->lock_fd);
  pthread_mutex_destroy(&r->log_mu);
  sl_buf_free(&r->log);
  free(r->lset);
  hcache_free(r->hc, r->nhc);
  free(r->dir);
  free(r->db_dir);
  free(r->tmp_root);
  free(r);
}

/* Compaction filter: drop a value row whose expiry has passed. */
static unsigned char filter_fn(void *state, int level, const char *key, size_t klen,
                               const char *val, size_t vlen, char **nv, size_t *nvlen,
                               unsigned char *changed) {
  (void)level;
  (void)nv;
  (void)nvlen;
  (void)changed;
  rdb_t *r = state;
  rowkey_t rk;
  if (rowkey_parse((const unsigned char *)key, klen, &rk) != 0 || rk.slen != 0 ||
      rk.sid >= MAX_STATES)
    return 0;
  if (atomic_load_explicit(&r->kinds[rk.sid], memory_order_relaxed) != SL_STATE_VALUE) return 0;
  int64_t expire;
  if (!hdr_get((const unsigned char *)val, vlen, &expire) || expire == NEVER) return 0;
  int64_t now = atomic_load_explicit(&r->now, memory_order_relaxed);
  int64_t sn = atomic_load_explicit(&r->snap_now, memory_order_relaxed);
  if (sn < now) now = sn;
  return expire <= now;
}

static const char *filter_name(void *state) {
  (void)state;
  return "sluice.ttl";
}

static void filter_destroy(void *state) { (void)state; }

/* Open the database (create: a new one if there is none, else it must be
 * there: restored files). */
static int rdb_open_as(rdb_t *r, bool create, char *err, size_t errlen) {
  if (r->db) return 0;
  if (!r->opts) {
    r->opts = sl_state_rocksdb_options();
    r->filter = rocksdb_compactionfilter_create(r, filter_destroy, filter_fn, filter_name);
    rocksdb_options_set_compaction_filter(r->opts, r->filter);
  }
  rocksdb_options_set_create_if_missing(r->opts, create);
  char *e = NULL;
  r->db = rocksdb_open(r->opts, r->db_dir, &e);
  if (e) {
    fail(err, errlen, "cannot open RocksDB in %s: %s", r->db_dir, e);
    free(e);
    r->db = NULL;
    return -1;
  }
  /* max_key_groups: written into a new database, checked in a restored one. */
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  size_t n = 0;
  char *have = rocksdb_get(r->db, ro, (const char *)META_G, sizeof(META_G), &n, &e);
  rocksdb_readoptions_destroy(ro);
  int rc = 0;
  if (!e && !have) {
    unsigned char v[4];
    put32(v, r->max_kg);
    rocksdb_writeoptions_t *w = sl_state_rocksdb_writeoptions();
    rocksdb_put(r->db, w, (const char *)META_G, sizeof(META_G), (const char *)v, 4, &e);
    rocksdb_writeoptions_destroy(w);
  } else if (!e && (n != 4 || get32((const unsigned char *)have) != r->max_kg)) {
    rc = fail(err, errlen,
              "RocksDB state in %s was written with max_key_groups %u, this instance "
              "has %u",
              r->db_dir, n == 4 ? get32((const unsigned char *)have) : 0, r->max_kg);
  }
  free(have);
  if (e) {
    rc = fail(err, errlen, "RocksDB in %s: %s", r->db_dir, e);
    free(e);
  }
  if (rc) {
    rocksdb_close(r->db);
    r->db = NULL;
  }
  return rc;
}

static int rdb_open(rdb_t *r, char *err, size_t errlen) {
  return rdb_open_as(r, true, err, errlen);
}

/* The working directory: created, locked, emptied of what we put there. */
static int workdir_prepare(rdb_t *r, char *err, size_t errlen) {
  if (sl_mkdir_p(r->dir, "state directory", err, errlen) != 0) return -1;
  char *lock = sl_xasprintf("%s/sluice.lock", r->dir);
  r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (r->lock_fd < 0) {
    fail(err, errlen, "cannot create %s: %s", lock, strerror(errno));
    free(lock);
    return -1;
  }
  free(lock);
  if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return fail(err, errlen,
                "state directory %s is in use by another process (two jobs with the same name "
                "and state.dir?)",
                r->dir);
  }
  DIR *d = opendir(r->dir);
  if (!d) return fail(err, errlen, "cannot read %s: %s", r->dir, strerror(errno));
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "sluice.lock") == 0) continue;
    if (strcmp(n, "db") == 0 || strncmp(n, "stage-", 6) == 0 || strncmp(n, "restore-", 8) == 0) {
      char *p = sl_xasprintf("%s/%s", r->dir, n);
      sl_fs_remove_tree(p);
      free(p);
    } else {
      rc = fail(err, errlen,
                "state directory %s holds '%s', which Sluice did not put there; refusing to "
                "use it (choose another state.dir)",
                r->dir, n);
    }
  }
  closedir(d);
  return rc;
}

/* ------------------------------------------------------------ instance */

typedef struct rks {
  sl_keyed_state_t base;
  rdb_t *r;
  rocksdb_readoptions_t *ro;
  rocksdb_writeoptions_t *wo;
  rocksdb_writebatch_t *wb;
  /* The current key: kb[0, plen) is P (state id patched per call), then room
   * for a suffix. */
  unsigned char *kb;
  size_t kcap, plen;
  int key_rc; /* 0, SL_ESTATE before the first set_key, SL_EINVAL / SL_ENOMEM */
  int64_t now;
  unsigned char *vb; /* value encoding */
  size_t vcap;
  rocksdb_pinnableslice_t *pin; /* what the last read returned */
  /* map iteration */
  rocksdb_iterator_t *it;
  rocksdb_readoptions_t *it_ro;
  unsigned char *it_lo, *it_hi;
  size_t it_plen, it_pos;
  unsigned char *it_pfx;
  /* states */
  struct sl_state **states;
  bool *declared;
  uint32_t nstates, capstates;
  bool touched; /* restored into or written: no more restore by linking */
  bool logged_error;
} rks_t;

static const sl_state_backend_ops_t rdb_ops;
static const sl_state_snapshot_ops_t rdb_snap_ops;

#define KS(b) ((rks_t *)(b))

/* A RocksDB error on the hot path: SL_EIO, logged once per instance. */
static __attribute__((noinline)) int db_error(rks_t *ks, const char *what, char *e) {
  if (!ks->logged_error) {
    ks->logged_error = true;
    sl_log_msg(SL_LOG_ERROR, "state", "RocksDB %s in %s: %s (further errors not logged)", what,
               ks->r->db_dir, e);
  }
  free(e);
  return SL_EIO;
}

static void unpin(rks_t *ks) {
  if (ks->pin) {
    rocksdb_pinnableslice_destroy(ks->pin);
    ks->pin = NULL;
  }
}

static void iter_drop(rks_t *ks) {
  if (ks->it) rocksdb_iter_destroy(ks->it);
  if (ks->it_ro) rocksdb_readoptions_destroy(ks->it_ro);
  free(ks->it_lo);
  free(ks->it_hi);
  free(ks->it_pfx);
  ks->it = NULL;
  ks->it_ro = NULL;
  ks->it_lo = ks->it_hi = ks->it_pfx = NULL;
}

static bool grow(unsigned char **b, size_t *cap, size_t need) {
  if (need <= *cap) return true;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  unsigned char *n = realloc(*b, c);
  if (!n) return false;
  *b = n;
  *cap = c;
  return true;
}

sl_keyed_state_t *sl_keyed_state_new_rocksdb(const char *dir, uint32_t max_key_groups,
                                             uint32_t kg_begin, uint32_t kg_end, char *err,
                                             size_t errlen) {
  if (!max_key_groups || max_key_groups > MAX_KG || kg_begin > kg_end || kg_end > max_key_groups) {
    fail(err, errlen, "bad key-group range [%u, %u) of %u (at most %u groups)", kg_begin, kg_end,
         max_key_groups, MAX_KG);
    return NULL;
  }
  rdb_t *r = sl_xcalloc(1, sizeof(*r));
  atomic_init(&r->refs, 1);
  r->lock_fd = -1;
  r->max_kg = max_key_groups;
  atomic_init(&r->now, 0);
  atomic_init(&r->snap_now, NEVER);
  pthread_mutex_init(&r->log_mu, NULL);
  if (dir) {
    r->dir = sl_xstrdup(dir);
  } else {
    const char *t = getenv("TMPDIR");
    char *tmpl = sl_xasprintf("%s/sluice-state-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpl)) {
      fail(err, errlen, "cannot create a temporary state directory %s: %s", tmpl, strerror(errno));
      free(tmpl);
      rdb_unref(r);
      return NULL;
    }
    r->tmp_root = tmpl;
    r->dir = sl_xasprintf("%s/instance", tmpl);
  }
  r->db_dir = sl_xasprintf("%s/db", r->dir);
  if (workdir_prepare(r, err, errlen) != 0) {
    rdb_unref(r); /* leaves the directory as it is */
    return NULL;
  }
  r->owns_dir = true;
  rks_t *ks = sl_xcalloc(1, sizeof(*ks));
  ks->base.ops = &rdb_ops;
  ks->base.max_kg = max_key_groups;
  ks->base.kg_begin = kg_begin;
  ks->base.kg_end = kg_end;
  ks->r = r;
  ks->ro = rocksdb_readoptions_create();
  ks->wo = sl_state_rocksdb_writeoptions();
  ks->wb = rocksdb_writebatch_create();
  ks->key_rc = SL_ESTATE;
  return &ks->base;
}

static void r_free(sl_keyed_state_t *b) {
  rks_t *ks = KS(b);
  unpin(ks);
  iter_drop(ks);
  rocksdb_readoptions_destroy(ks->ro);
  rocksdb_writeoptions_destroy(ks->wo);
  rocksdb_writebatch_destroy(ks->wb);
  for (uint32_t i = 0; i < ks->nstates; i++) {
    free(ks->states[i]->name);
    free(ks->states[i]);
  }
  free(ks->states);
  free(ks->declared);
  free(ks->kb);
  free(ks->vb);
  rdb_t *r = ks->r;
  free(ks);
  rdb_unref(r);
}

/* ------------------------------------------------------------- states */

static struct sl_state *find_state(const rks_t *ks, const char *name, size_t len) {
  for (uint32_t i = 0; i < ks->nstates; i++)
    if (strlen(ks->states[i]->name) == len && memcmp(ks->states[i]->name, name, len) == 0)
      return ks->states[i];
  return NULL;
}

/* The metadata row of a state. */
static int write_state_meta(rks_t *ks, const struct sl_state *st, char *err, size_t errlen) {
  unsigned char k[5] = {0xFF, 0xFF, 'S', 0, 0};
  put16be(k + 3, st->id);
  size_t nl = strlen(st->name);
  unsigned char *v = sl_xmalloc(9 + nl);
  v[0] = (unsigned char)st->kind;
  put64(v + 1, (uint64_t)st->ttl_ms);
  memcpy(v + 9, st->name, nl);
  char *e = NULL;
  rocksdb_put(ks->r->db, ks->wo, (const char *)k, 5, (const char *)v, 9 + nl, &e);
  free(v);
  if (e) {
    fail(err, errlen, "RocksDB in %s: %s", ks->r->db_dir, e);
    free(e);
    return -1;
  }
  return 0;
}

static struct sl_state *add_state(rks_t *ks, const char *name, size_t len, sl_state_kind_t kind,
                                  int64_t ttl_ms, bool declared) {
  if (ks->nstates == ks->capstates) {
    uint32_t cap = ks->capstates ? ks->capstates * 2 : 4;
    ks->states = sl_xrealloc(ks->states, cap * sizeof(*ks->states));
    ks->declared = sl_xrealloc(ks->declared, cap * sizeof(*ks->declared));
    ks->capstates = cap;
  }
  struct sl_state *st = sl_xcalloc(1, sizeof(*st));
  st->id = ks->nstates;
  st->kind = kind;
  st->ttl_ms = ttl_ms;
  st->name = sl_xstrndup(name, len);
  ks->states[ks->nstates] = st;
  ks->declared[ks->nstates] = declared;
  ks->nstates++;
  atomic_store_explicit(&ks->r->kinds[st->id], (unsigned char)kind, memory_order_relaxed);
  return st;
}

static sl_state_t *r_declare(sl_keyed_state_t *b, const char *name, sl_state_kind_t kind,
                             int64_t ttl_ms, char *err, size_t errlen) {
  rks_t *ks = KS(b);
  if (!name || !*name) {
    fail(err, errlen, "a state needs a non-empty name");
    return NULL;
  }
  if (kind != SL_STATE_VALUE && kind != SL_STATE_LIST && kind != SL_STATE_MAP) {
    fail(err, errlen, "state '%s': unknown kind %d", name, (int)kind);
    return NULL;
  }
  if (ttl_ms < 0) {
    fail(err, errlen, "state '%s': negative TTL", name);
    return NULL;
  }
  size_t len = strlen(name);
  if (len > MAX_NAME) {
    fail(err, errlen, "state name longer than %u bytes", MAX_NAME);
    return NULL;
  }
  struct sl_state *st = find_state(ks, name, len);
  if (st) {
    if (st->kind != kind) {
      fail(err, errlen, "state '%s' is a %s state %s, not a %s state", name, sl_state_kind_name(st->kind),
           ks->declared[st->id] ? "(declared earlier)" : "in the restored checkpoint",
           sl_state_kind_name(kind));
      return NULL;
    }
    ks->declared[st->id] = true;
    if (st->ttl_ms != ttl_ms) {
      st->ttl_ms = ttl_ms;
      if (write_state_meta(ks, st, err, errlen) != 0) return NULL;
    }
    return st;
  }
  if (ks->nstates >= MAX_STATES) {
    fail(err, errlen, "more than %u keyed states", MAX_STATES);
    return NULL;
  }
  if (rdb_open(ks->r, err, errlen) != 0) return NULL;
  st = add_state(ks, name, len, kind, ttl_ms, true);
  if (write_state_meta(ks, st, err, errlen) != 0) return NULL; /* stays declared: harmless */
  return st;
}

static void r_set_key(sl_keyed_state_t *b, const void *key, size_t len, uint64_t hash) {
  rks_t *ks = KS(b);
  uint32_t key_group = ks->base.max_kg ? (uint32_t)(hash % ks->base.max_kg) : 0;
  if (ks->it) iter_drop(ks);
  if (len > MAX_LEN) {
    ks->key_rc = SL_EINVAL;
    return;
  }
  if (!grow(&ks->kb, &ks->kcap, 4 + 5 + len + 32)) {
    ks->key_rc = SL_ENOMEM;
    return;
  }
  unsigned char *p = ks->kb;
  put16be(p, key_group);
  size_t n = 4 + varint_put(p + 4, len);
  if (len) memcpy(p + n, key, len);
  ks->plen = n + len;
  ks->key_rc = 0;
}

static void r_set_now(sl_keyed_state_t *b, int64_t now_ms) {
  rks_t *ks = KS(b);
  ks->now = now_ms;
  atomic_store_explicit(&ks->r->now, now_ms, memory_order_relaxed);
}

static uint64_t prop(const rks_t *ks, const char *name) {
  uint64_t v = 0;
  if (ks->r->db && rocksdb_property_int(ks->r->db, name, &v) == 0) return v;
  return 0;
}

static uint64_t r_entries(const sl_keyed_state_t *b) {
  const rks_t *ks = (const rks_t *)b;
  uint64_t n = prop(ks, "rocksdb.estimate-num-keys");
  return n > 1 + ks->nstates ? n - 1 - ks->nstates : 0; /* less the metadata rows */
}

static uint64_t r_bytes(const sl_keyed_state_t *b) {
  const rks_t *ks = (const rks_t *)b;
  return prop(ks, "rocksdb.estimate-live-data-size") + prop(ks, "rocksdb.cur-size-all-mem-tables");
}

/* -------------------------------------------------------- operations */

/* Common checks; patches the state id into P. */
static inline int prep(rks_t *ks, const sl_state_t *st, sl_state_kind_t kind) {
  if (__builtin_expect(!st || st->id >= ks->nstates || ks->states[st->id] != st, 0))
    return SL_EINVAL;
  if (kind && st->kind != kind) return SL_EINVAL;
  if (__builtin_expect(ks->key_rc != 0, 0)) return ks->key_rc;
  put16be(ks->kb + 2, st->id);
  return 0;
}

static inline int64_t expiry_for(const rks_t *ks, const sl_state_t *st) {
  if (st->ttl_ms <= 0) return NEVER;
  if (ks->now > NEVER - st->ttl_ms) return NEVER - 1;
  return ks->now + st->ttl_ms;
}

/* Record P (state id patched) as written while a snapshot is active. */
static __attribute__((noinline)) void log_prefix(rdb_t *r, const unsigned char *p, size_t n) {
  pthread_mutex_lock(&r->log_mu);
  if (atomic_load_explicit(&r->logging, memory_order_relaxed)) {
    uint64_t h = XXH3_64bits(p, n);
    if ((r->lcount + 1) * 2 > r->lcap) {
      size_t cap = r->lcap ? r->lcap * 2 : 1024;
      lslot_t *s = sl_xcalloc(cap, sizeof(lslot_t));
      for (size_t i = 0; i < r->lcap; i++) {
        if (!r->lset[i].off) continue;
        size_t j = (size_t)r->lset[i].hash & (cap - 1);
        while (s[j].off) j = (j + 1) & (cap - 1);
        s[j] = r->lset[i];
      }
      free(r->lset);
      r->lset = s;
      r->lcap = cap;
    }
    size_t i = (size_t)h & (r->lcap - 1);
    for (;; i = (i + 1) & (r->lcap - 1)) {
      lslot_t *s = &r->lset[i];
      if (!s->off) break;
      if (s->hash == h) {
        const unsigned char *q = r->log.data + s->off - 1;
        if (get32(q) == n && memcmp(q + 4, p, n) == 0) goto out; /* already there */
      }
    }
    r->lset[i].hash = h;
    r->lset[i].off = r->log.len + 1;
    r->lcount++;
    sl_buf_append_u32(&r->log, (uint32_t)n);
    sl_buf_append(&r->log, p, n);
  }
out:
  pthread_mutex_unlock(&r->log_mu);
}

/* Before a write of the current (state, key): see the top. */
static inline void will_write(rks_t *ks) {
  if (__builtin_expect(atomic_load_explicit(&ks->r->logging, memory_order_acquire), 0))
    log_prefix(ks->r, ks->kb, ks->plen);
}

/* The head row of the current P (list or map). */
typedef struct head {
  bool found, live;
  int64_t expire;
  uint64_t a, b; /* list: first, end; map: count */
} head_t;

static int read_head(rks_t *ks, sl_state_kind_t kind, head_t *h) {
  memset(h, 0, sizeof(*h));
  char *e = NULL;
  rocksdb_pinnableslice_t *p =
      rocksdb_get_pinned(ks->r->db, ks->ro, (const char *)ks->kb, ks->plen, &e);
  if (e) return db_error(ks, "read", e);
  if (!p) return 0;
  size_t n;
  const unsigned char *v = (const unsigned char *)rocksdb_pinnableslice_value(p, &n);
  size_t hl = hdr_get(v, n, &h->expire);
  size_t want = kind == SL_STATE_LIST ? 16 : 8;
  if (hl && n - hl == want) {
    h->found = true;
    h->a = get64(v + hl);
    if (kind == SL_STATE_LIST) h->b = get64(v + hl + 8);
    h->live = h->expire > ks->now && (kind != SL_STATE_LIST || h->b > h->a);
    if (kind == SL_STATE_MAP && h->a == 0) h->live = false;
  } else {
    h->found = true; /* malformed: treated as an expired entry, replaced by a write */
  }
  rocksdb_pinnableslice_destroy(p);
  return 0;
}

static void batch_put_head(rks_t *ks, sl_state_kind_t kind, int64_t expire, uint64_t a,
                           uint64_t b) {
  unsigned char v[9 + 16];
  size_t n = hdr_put(v, expire);
  put64(v + n, a);
  n += 8;
  if (kind == SL_STATE_LIST) {
    put64(v + n, b);
    n += 8;
  }
  rocksdb_writebatch_put(ks->wb, (const char *)ks->kb, ks->plen, (const char *)v, n);
}

/* Key of list item i: P | u64 BE i (in kb after P). */
static inline size_t item_key(rks_t *ks, uint64_t i) {
  put64be(ks->kb + ks->plen, i);
  return ks->plen + 8;
}

/* Key of map field mk: P | 0x00 | mk. */
static int field_key(rks_t *ks, const void *mk, size_t mklen, size_t *klen) {
  if (!grow(&ks->kb, &ks->kcap, ks->plen + 1 + mklen + 8)) return SL_ENOMEM;
  ks->kb[ks->plen] = 0;
  if (mklen) memcpy(ks->kb + ks->plen + 1, mk, mklen);
  *klen = ks->plen + 1 + mklen;
  return 0;
}

/* Delete every row of the current P into the batch: one by one when they
 * are few (a list's are known by index, a small map's are listed), else
 * with one range deletion (which costs reads a little until compacted). */
static void batch_delete_entry(rks_t *ks, sl_state_kind_t kind, const head_t *h) {
  if (kind == SL_STATE_LIST && h->b >= h->a && h->b - h->a <= SMALL_DELETE) {
    for (uint64_t i = h->a; i < h->b; i++)
      rocksdb_writebatch_delete(ks->wb, (const char *)ks->kb, item_key(ks, i));
    rocksdb_writebatch_delete(ks->wb, (const char *)ks->kb, ks->plen);
    return;
  }
  unsigned char *end = sl_xmalloc(ks->plen + 1);
  size_t en = prefix_end(ks->kb, ks->plen, end);
  if (kind == SL_STATE_MAP && h->a <= SMALL_DELETE) {
    unsigned char *lo = sl_xmalloc(ks->plen + 1);
    memcpy(lo, ks->kb, ks->plen);
    lo[ks->plen] = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)end, en);
    rocksdb_iterator_t *it = rocksdb_create_iterator(ks->r->db, ro);
    uint64_t n = 0;
    for (rocksdb_iter_seek(it, (const char *)lo, ks->plen + 1);
         rocksdb_iter_valid(it) && n <= SMALL_DELETE; rocksdb_iter_next(it), n++) {
      size_t kl;
      const char *k = rocksdb_iter_key(it, &kl);
      rocksdb_writebatch_delete(ks->wb, k, kl);
    }
    bool all = !rocksdb_iter_valid(it) && n <= SMALL_DELETE;
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    free(lo);
    if (all) {
      rocksdb_writebatch_delete(ks->wb, (const char *)ks->kb, ks->plen);
      free(end);
      return;
    }
  }
  rocksdb_writebatch_delete_range(ks->wb, (const char *)ks->kb, ks->plen, (const char *)end, en);
  free(end);
}

static int write_batch(rks_t *ks) {
  char *e = NULL;
  rocksdb_write(ks->r->db, ks->wo, ks->wb, &e);
  rocksdb_writebatch_clear(ks->wb);
  if (e) return db_error(ks, "write", e);
  return 0;
}

static int r_get(sl_keyed_state_t *b, sl_state_t *st, sl_bytes_t *out) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_VALUE);
  if (rc) return rc;
  if (!out) return SL_EINVAL;
  char *e = NULL;
  rocksdb_pinnableslice_t *p =
      rocksdb_get_pinned(ks->r->db, ks->ro, (const char *)ks->kb, ks->plen, &e);
  if (__builtin_expect(e != NULL, 0)) return db_error(ks, "read", e);
  unpin(ks);
  ks->pin = p;
  if (!p) return SL_ENOTFOUND;
  size_t n;
  const unsigned char *v = (const unsigned char *)rocksdb_pinnableslice_value(p, &n);
  int64_t expire;
  size_t hl = hdr_get(v, n, &expire);
  if (__builtin_expect(!hl || expire <= ks->now, 0)) return SL_ENOTFOUND;
  out->ptr = v + hl;
  out->len = n - hl;
  return 0;
}

static int r_put(sl_keyed_state_t *b, sl_state_t *st, const void *v, size_t len) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_VALUE);
  if (rc) return rc;
  if (len > MAX_LEN || (len && !v)) return SL_EINVAL;
  if (__builtin_expect(!grow(&ks->vb, &ks->vcap, 9 + len), 0)) return SL_ENOMEM;
  size_t hl = hdr_put(ks->vb, expiry_for(ks, st));
  if (len) memcpy(ks->vb + hl, v, len); /* before unpin: v may be what get returned */
  will_write(ks);
  char *e = NULL;
  rocksdb_put(ks->r->db, ks->wo, (const char *)ks->kb, ks->plen, (const char *)ks->vb, hl + len,
              &e);
  unpin(ks);
  if (__builtin_expect(e != NULL, 0)) return db_error(ks, "write", e);
  return 0;
}

static int r_clear(sl_keyed_state_t *b, sl_state_t *st) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, 0);
  if (rc) return rc;
  unpin(ks);
  if (st->kind == SL_STATE_VALUE) {
    will_write(ks);
    char *e = NULL;
    rocksdb_delete(ks->r->db, ks->wo, (const char *)ks->kb, ks->plen, &e);
    return e ? db_error(ks, "write", e) : 0;
  }
  head_t h;
  if ((rc = read_head(ks, st->kind, &h)) != 0) return rc;
  if (!h.found) return 0;
  will_write(ks);
  batch_delete_entry(ks, st->kind, &h);
  return write_batch(ks);
}

static int r_list_append(sl_keyed_state_t *b, sl_state_t *st, const void *v, size_t len) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_LIST);
  if (rc) return rc;
  if (len > MAX_LEN || (len && !v)) return SL_EINVAL;
  head_t h;
  if ((rc = read_head(ks, SL_STATE_LIST, &h)) != 0) return rc;
  will_write(ks);
  uint64_t first = 0, end = 0;
  if (h.found && h.live) {
    first = h.a;
    end = h.b;
  } else if (h.found) {
    batch_delete_entry(ks, SL_STATE_LIST, &h); /* expired: starts over */
  }
  rocksdb_writebatch_put(ks->wb, (const char *)ks->kb, item_key(ks, end), (const char *)v, len);
  batch_put_head(ks, SL_STATE_LIST, expiry_for(ks, st), first, end + 1);
  rc = write_batch(ks);
  unpin(ks);
  return rc;
}

static int r_list_count(sl_keyed_state_t *b, sl_state_t *st, size_t *out) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_LIST);
  if (rc) return rc;
  if (!out) return SL_EINVAL;
  unpin(ks);
  head_t h;
  if ((rc = read_head(ks, SL_STATE_LIST, &h)) != 0) return rc;
  *out = h.live ? (size_t)(h.b - h.a) : 0;
  return 0;
}

static int r_list_get(sl_keyed_state_t *b, sl_state_t *st, size_t idx, sl_bytes_t *out) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_LIST);
  if (rc) return rc;
  if (!out) return SL_EINVAL;
  head_t h;
  if ((rc = read_head(ks, SL_STATE_LIST, &h)) != 0) return rc;
  if (!h.live || idx >= h.b - h.a) {
    unpin(ks);
    return SL_ENOTFOUND;
  }
  char *e = NULL;
  rocksdb_pinnableslice_t *p =
      rocksdb_get_pinned(ks->r->db, ks->ro, (const char *)ks->kb, item_key(ks, h.a + idx), &e);
  if (e) return db_error(ks, "read", e);
  unpin(ks);
  ks->pin = p;
  if (!p) return SL_ENOTFOUND;
  size_t n;
  out->ptr = rocksdb_pinnableslice_value(p, &n);
  out->len = n;
  return 0;
}

static int r_list_trim_front(sl_keyed_state_t *b, sl_state_t *st, size_t n) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_LIST);
  if (rc) return rc;
  unpin(ks);
  head_t h;
  if ((rc = read_head(ks, SL_STATE_LIST, &h)) != 0) return rc;
  if (!h.live || n == 0) return 0;
  will_write(ks);
  if (n >= h.b - h.a) {
    batch_delete_entry(ks, SL_STATE_LIST, &h);
    return write_batch(ks);
  }
  if (n <= SMALL_DELETE) {
    for (uint64_t i = h.a; i < h.a + n; i++)
      rocksdb_writebatch_delete(ks->wb, (const char *)ks->kb, item_key(ks, i));
  } else {
    unsigned char *lo = sl_xmalloc(ks->plen + 8);
    memcpy(lo, ks->kb, ks->plen);
    put64be(lo + ks->plen, h.a);
    rocksdb_writebatch_delete_range(ks->wb, (const char *)lo, ks->plen + 8, (const char *)ks->kb,
                                    item_key(ks, h.a + n));
    free(lo);
  }
  batch_put_head(ks, SL_STATE_LIST, expiry_for(ks, st), h.a + n, h.b);
  return write_batch(ks);
}

static int r_map_get(sl_keyed_state_t *b, sl_state_t *st, const void *mk, size_t mklen,
                     sl_bytes_t *out) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_MAP);
  if (rc) return rc;
  if (!out || (mklen && !mk) || mklen > MAX_LEN) return SL_EINVAL;
  head_t h;
  if ((rc = read_head(ks, SL_STATE_MAP, &h)) != 0) return rc;
  if (!h.live) {
    unpin(ks);
    return SL_ENOTFOUND;
  }
  size_t kl;
  if ((rc = field_key(ks, mk, mklen, &kl)) != 0) return rc;
  char *e = NULL;
  rocksdb_pinnableslice_t *p = rocksdb_get_pinned(ks->r->db, ks->ro, (const char *)ks->kb, kl, &e);
  if (e) return db_error(ks, "read", e);
  unpin(ks);
  ks->pin = p;
  if (!p) return SL_ENOTFOUND;
  size_t n;
  out->ptr = rocksdb_pinnableslice_value(p, &n);
  out->len = n;
  return 0;
}

/* Is the current field key (kb[0, kl)) present? 1, 0, or < 0. */
static int field_exists(rks_t *ks, size_t kl) {
  char *e = NULL;
  rocksdb_pinnableslice_t *p = rocksdb_get_pinned(ks->r->db, ks->ro, (const char *)ks->kb, kl, &e);
  if (e) return db_error(ks, "read", e);
  if (!p) return 0;
  rocksdb_pinnableslice_destroy(p);
  return 1;
}

static int r_map_put(sl_keyed_state_t *b, sl_state_t *st, const void *mk, size_t mklen,
                     const void *v, size_t len) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_MAP);
  if (rc) return rc;
  if ((mklen && !mk) || (len && !v) || mklen > MAX_LEN || len > MAX_LEN) return SL_EINVAL;
  head_t h;
  if ((rc = read_head(ks, SL_STATE_MAP, &h)) != 0) return rc;
  size_t kl;
  if ((rc = field_key(ks, mk, mklen, &kl)) != 0) return rc;
  uint64_t count = 0;
  will_write(ks);
  if (h.live) {
    int ex = field_exists(ks, kl);
    if (ex < 0) return ex;
    count = h.a + (ex ? 0 : 1);
  } else {
    if (h.found) batch_delete_entry(ks, SL_STATE_MAP, &h); /* expired: starts over */
    count = 1;
  }
  rocksdb_writebatch_put(ks->wb, (const char *)ks->kb, kl, (const char *)v, len);
  batch_put_head(ks, SL_STATE_MAP, expiry_for(ks, st), count, 0);
  rc = write_batch(ks);
  unpin(ks);
  return rc;
}

static int r_map_remove(sl_keyed_state_t *b, sl_state_t *st, const void *mk, size_t mklen) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_MAP);
  if (rc) return rc;
  if ((mklen && !mk) || mklen > MAX_LEN) return SL_EINVAL;
  head_t h;
  if ((rc = read_head(ks, SL_STATE_MAP, &h)) != 0) return rc;
  if (!h.live) {
    unpin(ks);
    return SL_ENOTFOUND;
  }
  size_t kl;
  if ((rc = field_key(ks, mk, mklen, &kl)) != 0) return rc;
  int ex = field_exists(ks, kl);
  unpin(ks);
  if (ex < 0) return ex;
  if (!ex) return SL_ENOTFOUND;
  will_write(ks);
  if (h.a <= 1) { /* the last one: the whole entry goes */
    batch_delete_entry(ks, SL_STATE_MAP, &h);
    return write_batch(ks);
  }
  rocksdb_writebatch_delete(ks->wb, (const char *)ks->kb, kl);
  batch_put_head(ks, SL_STATE_MAP, expiry_for(ks, st), h.a - 1, 0);
  return write_batch(ks);
}

/* Start iterating the fields of the current P, positioned on the first. */
static int iter_start(rks_t *ks) {
  iter_drop(ks);
  size_t pl = ks->plen;
  ks->it_lo = malloc(pl + 1);
  ks->it_hi = malloc(pl);
  ks->it_pfx = malloc(pl);
  ks->it_ro = rocksdb_readoptions_create();
  if (!ks->it_lo || !ks->it_hi || !ks->it_pfx || !ks->it_ro) {
    iter_drop(ks);
    return SL_ENOMEM;
  }
  memcpy(ks->it_pfx, ks->kb, pl);
  ks->it_plen = pl;
  memcpy(ks->it_lo, ks->kb, pl);
  ks->it_lo[pl] = 0;
  size_t hn = prefix_end(ks->kb, pl, ks->it_hi);
  rocksdb_readoptions_set_iterate_lower_bound(ks->it_ro, (const char *)ks->it_lo, pl + 1);
  rocksdb_readoptions_set_iterate_upper_bound(ks->it_ro, (const char *)ks->it_hi, hn);
  ks->it = rocksdb_create_iterator(ks->r->db, ks->it_ro);
  rocksdb_iter_seek(ks->it, (const char *)ks->it_lo, pl + 1);
  ks->it_pos = 0;
  return 0;
}

static int r_map_next(sl_keyed_state_t *b, sl_state_t *st, size_t *cursor, sl_bytes_t *mk,
                      sl_bytes_t *v) {
  rks_t *ks = KS(b);
  int rc = prep(ks, st, SL_STATE_MAP);
  if (rc) return rc;
  if (!cursor || !mk || !v) return SL_EINVAL;
  unpin(ks);
  bool same = ks->it && ks->it_plen == ks->plen && memcmp(ks->it_pfx, ks->kb, ks->plen) == 0 &&
              ks->it_pos == *cursor && *cursor > 0;
  if (same) {
    rocksdb_iter_next(ks->it); /* past the field returned last time */
  } else {
    head_t h;
    if ((rc = read_head(ks, SL_STATE_MAP, &h)) != 0) return rc;
    if (!h.live) {
      iter_drop(ks);
      return SL_DONE;
    }
    if ((rc = iter_start(ks)) != 0) return rc;
    for (size_t i = 0; i < *cursor && rocksdb_iter_valid(ks->it); i++) rocksdb_iter_next(ks->it);
  }
  if (!rocksdb_iter_valid(ks->it)) {
    char *e = NULL;
    rocksdb_iter_get_error(ks->it, &e);
    iter_drop(ks);
    if (e) return db_error(ks, "iteration", e);
    return SL_DONE;
  }
  size_t kl, vl;
  const char *k = rocksdb_iter_key(ks->it, &kl);
  const char *val = rocksdb_iter_value(ks->it, &vl);
  mk->ptr = k + ks->plen + 1;
  mk->len = kl - ks->plen - 1;
  v->ptr = val;
  v->len = vl;
  *cursor += 1;
  ks->it_pos = *cursor;
  return 0;
}

/* Every live entry of st, over all keys. The key group leads a row key (a
 * range of key groups is one key range), so the rows of one state are not
 * one range but one per key group: [g | sid, g | sid + 1). One iterator,
 * bounded to the instance's key groups, reads them range by range: at a row
 * of another state it seeks to the range of st in that row's group (a
 * lower state id) or in the next group (a higher one), so groups without
 * rows of st cost no seek of their own, and the rows of other states read
 * are at most one per seek. Expiry as get / read_head: an expired or
 * malformed value or head row reads as absent, with the rows of its list or
 * map; list items outside [first, end) are not the list's. */
static int r_scan(sl_keyed_state_t *b, sl_state_t *st, sl_state_scan_fn fn, void *arg) {
  rks_t *ks = KS(b);
  if (!st || st->id >= ks->nstates || ks->states[st->id] != st) return SL_EINVAL;
  unpin(ks);
  rdb_t *r = ks->r;
  if (!r->db || ks->base.kg_begin >= ks->base.kg_end) return 0;
  const uint32_t sid = st->id, kg_end = ks->base.kg_end;
  const sl_state_kind_t kind = st->kind;
  unsigned char bounds[4], seek[4];
  put16be(bounds, ks->base.kg_begin);
  put16be(bounds + 2, kg_end);
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_fill_cache(ro, 0); /* a one-off scan: keep the hot blocks */
  rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)bounds, 2);
  rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)bounds + 2, 2);
  rocksdb_iterator_t *it = rocksdb_create_iterator(r->db, ro);
  /* The list or map being read: its P, and the live item indexes. */
  unsigned char *pfx = NULL;
  size_t pcap = 0, plen = 0;
  bool in_entry = false;
  uint64_t first = 0, end = 0;
  int rc = 0;
  put16be(seek, ks->base.kg_begin);
  put16be(seek + 2, sid);
  rocksdb_iter_seek(it, (const char *)seek, 4);
  while (rc == 0 && rocksdb_iter_valid(it)) {
    size_t kl, vl;
    const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &kl);
    if (kl < 4) { /* not a row key (none is this short): skip it */
      rocksdb_iter_next(it);
      continue;
    }
    uint32_t g = get16be(k), s = get16be(k + 2);
    if (s != sid) {
      uint32_t ng = s < sid ? g : g + 1; /* always past the current key */
      if (ng >= kg_end) break;
      put16be(seek, ng);
      rocksdb_iter_seek(it, (const char *)seek, 4);
      in_entry = false;
      continue;
    }
    rowkey_t rk;
    const unsigned char *v = (const unsigned char *)rocksdb_iter_value(it, &vl);
    if (rowkey_parse(k, kl, &rk) != 0) {
      rocksdb_iter_next(it);
      continue;
    }
    if (rk.slen == 0) { /* a value row or a head row */
      in_entry = false;
      int64_t expire;
      size_t hl = hdr_get(v, vl, &expire);
      if (hl && expire > ks->now) {
        if (kind == SL_STATE_VALUE) {
          rc = fn(arg, rk.key, rk.klen, NULL, 0, v + hl, vl - hl);
        } else if (vl - hl == (kind == SL_STATE_LIST ? 16u : 8u)) {
          first = get64(v + hl);
          end = kind == SL_STATE_LIST ? get64(v + hl + 8) : 0;
          bool live = kind == SL_STATE_LIST ? end > first : first != 0; /* map: count */
          if (live && grow(&pfx, &pcap, rk.plen)) {
            memcpy(pfx, k, rk.plen);
            plen = rk.plen;
            in_entry = true;
          } else if (live) {
            rc = SL_ENOMEM;
          }
        }
      }
    } else if (in_entry && rk.plen == plen && memcmp(k, pfx, plen) == 0) {
      if (kind == SL_STATE_LIST && rk.slen == 8) {
        uint64_t idx = get64be(rk.suffix);
        if (idx >= first && idx < end) rc = fn(arg, rk.key, rk.klen, NULL, 0, v, vl);
      } else if (kind == SL_STATE_MAP && rk.suffix[0] == 0) {
        rc = fn(arg, rk.key, rk.klen, rk.suffix + 1, rk.slen - 1, v, vl);
      }
    }
    if (rc == 0) rocksdb_iter_next(it);
  }
  if (rc == 0) {
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    if (e) rc = db_error(ks, "scan", e);
  }
  free(pfx);
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  return rc;
}

/* ---------------------------------------------------- portable writer */

typedef struct bstate {
  uint32_t kind;
  int64_t ttl;
  char *name;
} bstate_t;

/* Encode the rows of [kg_b, kg_e) seen by `it` (positioned by the caller's
 * bounds) into the portable format; entries expired at `now` left out.
 * sid_ok: states[sid] exists for every sid < nstates. */
static int blob_from_iter(rocksdb_iterator_t *it, uint32_t max_kg, const bstate_t *states,
                          uint32_t nstates, int64_t now, sl_buf_t *out, char *err, size_t errlen) {
  size_t base = out->len;
  sl_buf_append(out, MAGIC, 8);
  sl_buf_append_u32(out, FORMAT_VERSION);
  sl_buf_append_u32(out, max_kg);
  sl_buf_append_u32(out, nstates);
  for (uint32_t i = 0; i < nstates; i++) {
    size_t nl = strlen(states[i].name);
    sl_buf_append_u32(out, i);
    sl_buf_append_u32(out, states[i].kind);
    sl_buf_append_u64(out, (uint64_t)states[i].ttl);
    sl_buf_append_u32(out, (uint32_t)nl);
    sl_buf_append(out, states[i].name, nl);
  }
  size_t groups_at = out->len;
  sl_buf_append_u32(out, 0);
  uint32_t groups = 0;
  /* Current group and entry. */
  int64_t cur_kg = -1;
  size_t g_at = 0, g_body = 0;
  uint32_t g_count = 0;
  bool in_entry = false;
  uint32_t e_kind = 0, e_items = 0, e_sid = 0;
  size_t e_at = 0, e_count_at = 0;
  uint64_t l_first = 0, l_end = 0;
  unsigned char *e_pfx = NULL;
  size_t e_plen = 0, e_pcap = 0;
  int rc = -1;

#define END_ENTRY()                                                           \
  do {                                                                        \
    if (in_entry) {                                                           \
      if (e_kind != SL_STATE_VALUE && e_items == 0) {                         \
        out->len = e_at; /* an empty list or map is never written */          \
      } else {                                                                \
        if (e_kind != SL_STATE_VALUE) put32(out->data + e_count_at, e_items); \
        g_count++;                                                            \
      }                                                                       \
      in_entry = false;                                                       \
    }                                                                         \
  } while (0)
#define END_GROUP()                                                 \
  do {                                                              \
    END_ENTRY();                                                    \
    if (cur_kg >= 0) {                                              \
      if (g_count == 0) {                                           \
        out->len = g_at;                                            \
      } else {                                                      \
        put32(out->data + g_at + 4, g_count);                       \
        put64(out->data + g_at + 8, (uint64_t)(out->len - g_body)); \
        groups++;                                                   \
      }                                                             \
    }                                                               \
  } while (0)

  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &kl);
    const unsigned char *v = (const unsigned char *)rocksdb_iter_value(it, &vl);
    rowkey_t rk;
    if (kl >= 1 && k[0] == 0xFF) break; /* metadata: past every key group */
    if (rowkey_parse(k, kl, &rk) != 0 || rk.kg >= max_kg) {
      fail(err, errlen, "RocksDB state: a row has a malformed key (%zu bytes)", kl);
      goto out;
    }
    if (rk.sid >= nstates) {
      fail(err, errlen, "RocksDB state: a row of state id %u, which has no declaration", rk.sid);
      goto out;
    }
    if ((int64_t)rk.kg != cur_kg) {
      END_GROUP();
      cur_kg = rk.kg;
      g_at = out->len;
      sl_buf_append_u32(out, rk.kg);
      sl_buf_append_u32(out, 0);
      sl_buf_append_u64(out, 0);
      g_body = out->len;
      g_count = 0;
    }
    bool same_entry = in_entry && e_plen == rk.plen && memcmp(e_pfx, k, rk.plen) == 0;
    uint32_t kind = states[rk.sid].kind;
    if (rk.slen == 0) { /* a value row or a head row: a new entry */
      END_ENTRY();
      int64_t expire;
      size_t hl = hdr_get(v, vl, &expire);
      if (!hl) {
        fail(err, errlen, "RocksDB state: a row of state '%s' has a malformed value",
             states[rk.sid].name);
        goto out;
      }
      if (expire <= now) continue; /* expired: left out (with its items) */
      if (kind != SL_STATE_VALUE) {
        if (vl - hl != (kind == SL_STATE_LIST ? 16u : 8u)) {
          fail(err, errlen, "RocksDB state: a head row of state '%s' is malformed",
               states[rk.sid].name);
          goto out;
        }
        l_first = get64(v + hl);
        l_end = kind == SL_STATE_LIST ? get64(v + hl + 8) : 0;
      }
      in_entry = true;
      e_kind = kind;
      e_sid = rk.sid;
      e_items = 0;
      e_at = out->len;
      if (e_pcap < rk.plen) {
        e_pcap = rk.plen * 2;
        e_pfx = sl_xrealloc(e_pfx, e_pcap);
      }
      memcpy(e_pfx, k, rk.plen);
      e_plen = rk.plen;
      sl_buf_append_u32(out, e_sid);
      sl_buf_append_u64(out, (uint64_t)expire);
      sl_buf_append_u32(out, (uint32_t)rk.klen);
      sl_buf_append(out, rk.key, rk.klen);
      if (kind == SL_STATE_VALUE) {
        sl_buf_append_u32(out, (uint32_t)(vl - hl));
        sl_buf_append(out, v + hl, vl - hl);
      } else {
        e_count_at = out->len;
        sl_buf_append_u32(out, 0);
      }
      continue;
    }
    if (!same_entry || e_kind == SL_STATE_VALUE)
      continue; /* an item of an expired or absent head */
    if (e_kind == SL_STATE_LIST) {
      if (rk.slen != 8) continue;
      uint64_t idx = get64be(rk.suffix);
      if (idx < l_first || idx >= l_end) continue;
      sl_buf_append_u32(out, (uint32_t)vl);
      sl_buf_append(out, v, vl);
    } else {
      if (rk.suffix[0] != 0) continue;
      sl_buf_append_u32(out, (uint32_t)(rk.slen - 1));
      sl_buf_append(out, rk.suffix + 1, rk.slen - 1);
      sl_buf_append_u32(out, (uint32_t)vl);
      sl_buf_append(out, v, vl);
    }
    e_items++;
  }
  {
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    if (e) {
      fail(err, errlen, "RocksDB state: reading: %s", e);
      free(e);
      goto out;
    }
  }
  END_GROUP();
  put32(out->data + groups_at, groups);
  {
    uint64_t sum = XXH3_64bits(out->data + base, out->len - base);
    sl_buf_append_u64(out, sum);
  }
  rc = 0;
#undef END_ENTRY
#undef END_GROUP
out:
  free(e_pfx);
  if (rc != 0) out->len = base;
  return rc;
}

/* An iterator over key groups [b, e) of db (optionally at a snapshot); its
 * read options and bounds in *ro and bounds[] (kept alive by the caller). */
static rocksdb_iterator_t *range_iter(rocksdb_t *db, const rocksdb_snapshot_t *snap, uint32_t b,
                                      uint32_t e, unsigned char bounds[4],
                                      rocksdb_readoptions_t **ro) {
  *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_fill_cache(*ro, 0); /* a scan: do not evict the hot blocks */
  rocksdb_readoptions_set_readahead_size(*ro, 2 << 20);
  if (snap) rocksdb_readoptions_set_snapshot(*ro, snap);
  put16be(bounds, b);
  put16be(bounds + 2, e);
  rocksdb_readoptions_set_iterate_lower_bound(*ro, (const char *)bounds, 2);
  rocksdb_readoptions_set_iterate_upper_bound(*ro, (const char *)bounds + 2, 2);
  rocksdb_iterator_t *it = rocksdb_create_iterator(db, *ro);
  rocksdb_iter_seek(it, (const char *)bounds, 2);
  return it;
}

/* ----------------------------------------------------------- snapshots */

typedef struct rsnap {
  sl_state_snapshot_t base;
  rdb_t *r;
  const rocksdb_snapshot_t *snap;
  int64_t now;
  bstate_t *states;
  uint32_t nstates;
  bool written;
} rsnap_t;

/* Stop logging; the log (and its set) moves to *log. */
static void log_take(rdb_t *r, sl_buf_t *log) {
  pthread_mutex_lock(&r->log_mu);
  atomic_store_explicit(&r->logging, 0, memory_order_release);
  *log = r->log;
  memset(&r->log, 0, sizeof(r->log));
  free(r->lset);
  r->lset = NULL;
  r->lcap = r->lcount = 0;
  pthread_mutex_unlock(&r->log_mu);
}

static sl_state_snapshot_t *r_snapshot_begin(sl_keyed_state_t *b) {
  rks_t *ks = KS(b);
  rdb_t *r = ks->r;
  int busy = 0;
  if (!atomic_compare_exchange_strong(&r->snap_busy, &busy, 1)) return NULL;
  char err[256];
  if (rdb_open(r, err, sizeof(err)) != 0) {
    sl_log_msg(SL_LOG_ERROR, "state", "%s", err);
    atomic_store(&r->snap_busy, 0);
    return NULL;
  }
  rsnap_t *s = sl_xcalloc(1, sizeof(*s));
  s->base.ops = &rdb_snap_ops;
  s->now = ks->now;
  s->nstates = ks->nstates;
  s->states = sl_xcalloc(ks->nstates ? ks->nstates : 1, sizeof(bstate_t));
  for (uint32_t i = 0; i < ks->nstates; i++) {
    s->states[i].kind = (uint32_t)ks->states[i]->kind;
    s->states[i].ttl = ks->states[i]->ttl_ms;
    s->states[i].name = sl_xstrdup(ks->states[i]->name);
  }
  atomic_fetch_add(&r->refs, 1);
  s->r = r;
  /* The compaction filter keeps what this snapshot still calls live. */
  atomic_store_explicit(&r->snap_now, s->now, memory_order_relaxed);
  pthread_mutex_lock(&r->log_mu);
  r->log.len = 0;
  atomic_store_explicit(&r->logging, 1, memory_order_relaxed);
  pthread_mutex_unlock(&r->log_mu);
  s->snap = rocksdb_create_snapshot(r->db);
  return &s->base;
}

static void r_snap_release(sl_state_snapshot_t *b) {
  rsnap_t *s = (rsnap_t *)b;
  rdb_t *r = s->r;
  sl_buf_t log;
  log_take(r, &log);
  sl_buf_free(&log);
  rocksdb_release_snapshot(r->db, s->snap);
  atomic_store_explicit(&r->snap_now, NEVER, memory_order_relaxed);
  for (uint32_t i = 0; i < s->nstates; i++) free(s->states[i].name);
  free(s->states);
  free(s);
  atomic_store(&r->snap_busy, 0);
  rdb_unref(r);
}

static int r_snap_write(sl_state_snapshot_t *b, sl_buf_t *out, char *err, size_t errlen) {
  rsnap_t *s = (rsnap_t *)b;
  rdb_t *r = s->r;
  sl_buf_t log;
  log_take(r, &log); /* a blob reads the snapshot itself: nothing to put back */
  sl_buf_free(&log);
  unsigned char bounds[4];
  rocksdb_readoptions_t *ro;
  rocksdb_iterator_t *it = range_iter(r->db, s->snap, 0, r->max_kg, bounds, &ro);
  int rc = blob_from_iter(it, r->max_kg, s->states, s->nstates, s->now, out, err, errlen);
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  s->written = true;
  return rc;
}

static int cmp_prefix(const void *a, const void *b) {
  const unsigned char *x = *(const unsigned char *const *)a, *y = *(const unsigned char *const *)b;
  uint32_t xl = get32(x), yl = get32(y);
  int c = memcmp(x + 4, y + 4, xl < yl ? xl : yl);
  return c ? c : (xl < yl ? -1 : xl > yl);
}

/* Put the logged prefixes of database `stage` back as they were in the
 * live database at snapshot `snap`. */
static int put_back(rdb_t *r, const rocksdb_snapshot_t *snap, const char *stage,
                    const sl_buf_t *log, char *err, size_t errlen) {
  size_t n = 0;
  for (size_t at = 0; at < log->len; at += 4 + get32(log->data + at)) n++;
  const unsigned char **pf = sl_xmalloc((n ? n : 1) * sizeof(*pf));
  n = 0;
  for (size_t at = 0; at < log->len; at += 4 + get32(log->data + at)) pf[n++] = log->data + at;
  qsort(pf, n, sizeof(*pf), cmp_prefix); /* seeks in key order */

  rocksdb_options_t *o = side_options(false);
  char *e = NULL;
  rocksdb_t *sdb = rocksdb_open(o, stage, &e);
  int rc = -1;
  rocksdb_readoptions_t *ro_live = rocksdb_readoptions_create(),
                        *ro_stage = rocksdb_readoptions_create();
  rocksdb_readoptions_set_snapshot(ro_live, snap);
  rocksdb_readoptions_set_fill_cache(ro_live, 0);
  rocksdb_writeoptions_t *wo = sl_state_rocksdb_writeoptions();
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_iterator_t *its = NULL, *itl = NULL;
  if (e) {
    fail(err, errlen, "opening checkpoint stage %s: %s", stage, e);
    free(e);
    goto out;
  }
  its = rocksdb_create_iterator(sdb, ro_stage);
  itl = rocksdb_create_iterator(r->db, ro_live);
  for (size_t i = 0; i < n; i++) {
    const unsigned char *p = pf[i] + 4;
    size_t pl = get32(pf[i]);
    for (rocksdb_iter_seek(its, (const char *)p, pl); rocksdb_iter_valid(its);
         rocksdb_iter_next(its)) {
      size_t kl;
      const char *k = rocksdb_iter_key(its, &kl);
      if (kl < pl || memcmp(k, p, pl) != 0) break;
      rocksdb_writebatch_delete(wb, k, kl);
    }
    for (rocksdb_iter_seek(itl, (const char *)p, pl); rocksdb_iter_valid(itl);
         rocksdb_iter_next(itl)) {
      size_t kl, vl;
      const char *k = rocksdb_iter_key(itl, &kl);
      if (kl < pl || memcmp(k, p, pl) != 0) break;
      const char *v = rocksdb_iter_value(itl, &vl);
      rocksdb_writebatch_put(wb, k, kl, v, vl);
    }
    if (rocksdb_writebatch_count(wb) >= BATCH_ROWS || i + 1 == n) {
      rocksdb_write(sdb, wo, wb, &e);
      rocksdb_writebatch_clear(wb);
      if (e) {
        fail(err, errlen, "writing checkpoint stage %s: %s", stage, e);
        free(e);
        goto out;
      }
    }
  }
  rocksdb_iter_get_error(its, &e);
  if (!e) rocksdb_iter_get_error(itl, &e);
  if (e) {
    fail(err, errlen, "reading for checkpoint stage %s: %s", stage, e);
    free(e);
    goto out;
  }
  {
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush(sdb, fo, &e);
    rocksdb_flushoptions_destroy(fo);
    if (e) {
      fail(err, errlen, "flushing checkpoint stage %s: %s", stage, e);
      free(e);
      goto out;
    }
  }
  rc = 0;
out:
  if (its) rocksdb_iter_destroy(its);
  if (itl) rocksdb_iter_destroy(itl);
  if (sdb) rocksdb_close(sdb);
  rocksdb_writebatch_destroy(wb);
  rocksdb_writeoptions_destroy(wo);
  rocksdb_readoptions_destroy(ro_live);
  rocksdb_readoptions_destroy(ro_stage);
  rocksdb_options_destroy(o);
  free(pf);
  return rc;
}

static const hcache_t *hcache_find(const rdb_t *r, const char *name, const struct stat *st) {
  for (uint32_t i = 0; i < r->nhc; i++) {
    const hcache_t *h = &r->hc[i];
    if (h->size == (uint64_t)st->st_size && h->ino == (uint64_t)st->st_ino &&
        h->dev == (uint64_t)st->st_dev &&
        h->mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec &&
        strcmp(h->name, name) == 0)
      return h;
  }
  return NULL;
}

static int r_snap_write_dir(sl_state_snapshot_t *b, const char *dir, sl_state_file_t **files_out,
                            uint32_t *n_out, char *err, size_t errlen) {
  rsnap_t *s = (rsnap_t *)b;
  rdb_t *r = s->r;
  char *e = NULL;
  s->written = true;
  if (!r->cp) {
    r->cp = rocksdb_checkpoint_object_create(r->db, &e);
    if (e) {
      sl_buf_t log;
      log_take(r, &log);
      sl_buf_free(&log);
      fail(err, errlen, "RocksDB checkpoint object: %s", e);
      free(e);
      r->cp = NULL;
      return -1;
    }
  }
  char *stage = sl_xasprintf("%s/stage-%u", r->dir, r->stage_seq++);
  sl_fs_remove_tree(stage);
  /* The database now: hard links to its SST files, after a flush. */
  rocksdb_checkpoint_create(r->cp, stage, 0, &e);
  sl_buf_t log;
  log_take(r, &log); /* after the checkpoint: covers every write it may hold */
  int rc = -1;
  sl_state_file_t *files = NULL;
  uint32_t nf = 0;
  char **names = NULL;
  uint32_t nn = 0;
  hcache_t *nhc = NULL;
  if (e) {
    fail(err, errlen, "RocksDB checkpoint of %s: %s", r->db_dir, e);
    free(e);
    goto out;
  }
  if (log.len && put_back(r, s->snap, stage, &log, err, errlen) != 0) goto out;
  int eno = 0;
  names = list_files(stage, &nn, &eno);
  if (!names) {
    fail(err, errlen, "cannot read %s: %s", stage, strerror(eno));
    goto out;
  }
  if (mkdir(dir, 0755) != 0) {
    fail(err, errlen, "cannot create %s: %s", dir, strerror(errno));
    goto out;
  }
  files = sl_xcalloc(nn ? nn : 1, sizeof(*files));
  nhc = sl_xcalloc(nn ? nn : 1, sizeof(*nhc));
  for (uint32_t i = 0; i < nn; i++) {
    char *src = sl_xasprintf("%s/%s", stage, names[i]);
    char *dst = sl_xasprintf("%s/%s", dir, names[i]);
    struct stat st;
    if (stat(src, &st) != 0) {
      fail(err, errlen, "cannot stat %s: %s", src, strerror(errno));
      free(src);
      free(dst);
      goto out;
    }
    const hcache_t *hit = hcache_find(r, names[i], &st);
    int le = link(src, dst) == 0 ? 0 : errno;
    if (le == EXDEV || le == EPERM || le == EMLINK) {
      /* Another filesystem: link the previous checkpoint's copy if it is
       * still there, else copy. */
      le = hit && hit->path && link(hit->path, dst) == 0 ? 0 : sl_fs_copy_file(src, dst);
    }
    uint64_t hash = hit ? hit->hash : 0;
    if (!le && !hit) {
      le = hash_file(src, (uint64_t)st.st_size, &hash);
      if (!le) le = sl_fs_fsync_path(dst, false);
    }
    if (le) {
      fail(err, errlen, "checkpoint file %s: %s", dst, strerror(le));
      free(src);
      free(dst);
      goto out;
    }
    files[nf].name = sl_xstrdup(names[i]);
    files[nf].size = (uint64_t)st.st_size;
    files[nf].hash = hash;
    nhc[nf] = (hcache_t){sl_xstrdup(names[i]),
                         (uint64_t)st.st_size,
                         (uint64_t)st.st_ino,
                         (uint64_t)st.st_dev,
                         (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                         hash,
                         dst};
    nf++;
    free(src);
  }
  eno = sl_fs_fsync_path(dir, true);
  if (eno) {
    fail(err, errlen, "cannot sync %s: %s", dir, strerror(eno));
    goto out;
  }
  hcache_free(r->hc, r->nhc);
  r->hc = nhc;
  r->nhc = nf;
  nhc = NULL;
  *files_out = files;
  *n_out = nf;
  files = NULL;
  rc = 0;
out:
  if (nhc) hcache_free(nhc, nf);
  sl_state_files_free(files, nf);
  if (names) names_free(names, nn);
  sl_buf_free(&log);
  sl_fs_remove_tree(stage);
  free(stage);
  return rc;
}

/* ------------------------------------------------------- blob restore */


/* Restore writes: the batch goes out every BATCH_ROWS rows. */
static int rbatch_maybe_write(rks_t *ks, bool force, char *err, size_t errlen) {
  if (!force && rocksdb_writebatch_count(ks->wb) < BATCH_ROWS) return 0;
  char *e = NULL;
  rocksdb_write(ks->r->db, ks->wo, ks->wb, &e);
  rocksdb_writebatch_clear(ks->wb);
  if (e) {
    fail(err, errlen, "RocksDB in %s: %s", ks->r->db_dir, e);
    free(e);
    return -1;
  }
  return 0;
}

/* One entry of key group g; `apply` writes it. */
static int parse_entry(rks_t *ks, sl_blob_rd_t *r, const sl_blob_state_t *rs, uint32_t nstates, uint32_t g,
                       bool apply) {
  size_t at = r->pos;
  uint32_t sid, klen;
  uint64_t expire;
  const unsigned char *key;
  if (sl_blob_u32(r, &sid, "entry state id")) return -1;
  if (sid >= nstates)
    return sl_blob_fail(r,
                   "keyed state snapshot corrupt: entry at byte %zu names state %u, there are %u",
                   at, sid, nstates);
  if (sl_blob_u64(r, &expire, "entry expiry")) return -1;
  if (sl_blob_bytes(r, &key, &klen, "entry key")) return -1;
  if (!apply && XXH3_64bits(key, klen) % ks->base.max_kg != g)
    return sl_blob_fail(r,
                   "keyed state snapshot corrupt: entry at byte %zu is in key group %u but its "
                   "key hashes to group %u",
                   at, g, (uint32_t)(XXH3_64bits(key, klen) % ks->base.max_kg));
  uint32_t kind = rs[sid].kind;
  const unsigned char *v = NULL;
  uint32_t vlen = 0;
  if (kind == SL_STATE_VALUE && sl_blob_bytes(r, &v, &vlen, "value")) return -1;
  head_t old = {0};
  if (apply) {
    r_set_key(&ks->base, key, klen, XXH3_64bits(key, klen)); /* key group g */
    if (ks->key_rc) return sl_blob_fail(r, "out of memory restoring keyed state");
    put16be(ks->kb + 2, rs[sid].bound->id);
    if (kind == SL_STATE_VALUE) {
      if (!grow(&ks->vb, &ks->vcap, 9 + vlen))
        return sl_blob_fail(r, "out of memory restoring keyed state");
      size_t hl = hdr_put(ks->vb, (int64_t)expire);
      if (vlen) memcpy(ks->vb + hl, v, vlen);
      rocksdb_writebatch_put(ks->wb, (const char *)ks->kb, ks->plen, (const char *)ks->vb,
                             hl + vlen);
      return 0;
    }
  }
  uint32_t count;
  size_t cat = r->pos;
  if (kind == SL_STATE_VALUE) return 0;
  if (sl_blob_u32(r, &count, kind == SL_STATE_LIST ? "list count" : "map count")) return -1;
  size_t min = kind == SL_STATE_LIST ? 4 : 8;
  if ((r->end - r->pos) / min < count)
    return sl_blob_fail(r,
                   "keyed state snapshot corrupt: %s count %u at byte %zu does not fit in the "
                   "%zu bytes left in %s",
                   sl_state_kind_name(kind), count, cat, r->end - r->pos, r->scope);
  if (apply && count > 0) {
    /* The same (state, key) restored again (from another snapshot; one
     * snapshot holds each once): the last one wins. */
    if (read_head(ks, kind, &old) != 0)
      return sl_blob_fail(r, "RocksDB read failed restoring keyed state");
    if (old.found) batch_delete_entry(ks, kind, &old);
  }
  for (uint32_t k = 0; k < count; k++) {
    const unsigned char *a, *b2;
    uint32_t alen, blen;
    if (kind == SL_STATE_LIST) {
      if (sl_blob_bytes(r, &a, &alen, "list item")) return -1;
      if (apply)
        rocksdb_writebatch_put(ks->wb, (const char *)ks->kb, item_key(ks, k), (const char *)a,
                               alen);
    } else {
      if (sl_blob_bytes(r, &a, &alen, "map key")) return -1;
      if (sl_blob_bytes(r, &b2, &blen, "map value")) return -1;
      if (apply) {
        size_t kl;
        if (field_key(ks, a, alen, &kl) != 0)
          return sl_blob_fail(r, "out of memory restoring keyed state");
        rocksdb_writebatch_put(ks->wb, (const char *)ks->kb, kl, (const char *)b2, blen);
      }
    }
  }
  if (apply && count > 0)
    batch_put_head(ks, kind, (int64_t)expire, kind == SL_STATE_LIST ? 0 : count, count);
  return 0;
}

/* sl_blob_reader_t callbacks: bind the snapshot's states to this instance's,
 * write entries through the batch. */
static int blob_state(void *ctx, sl_blob_rd_t *r, uint32_t i, sl_blob_state_t *st, size_t at,
                      bool apply) {
  rks_t *ks = ctx;
  (void)at;
  struct sl_state *have = find_state(ks, (const char *)st->name, st->nlen);
  if (sl_blob_check_kind(r, st, have, have && ks->declared[have->id]) != 0) return -1;
  if (apply) {
    if (have) {
      st->bound = have;
    } else {
      st->bound = add_state(ks, (const char *)st->name, st->nlen, (sl_state_kind_t)st->kind,
                            st->ttl, false);
      if (write_state_meta(ks, st->bound, r->err, r->errlen) != 0) return -1;
    }
  } else if (!have && ks->nstates + i >= MAX_STATES) {
    return sl_blob_fail(r, "restoring would make more than %u keyed states", MAX_STATES);
  }
  return 0;
}

static int blob_entry(void *ctx, sl_blob_rd_t *r, const sl_blob_state_t *states, uint32_t nstates,
                      uint32_t g, bool apply) {
  return parse_entry(ctx, r, states, nstates, g, apply);
}

static int blob_applied(void *ctx, bool last, char *err, size_t errlen) {
  return rbatch_maybe_write(ctx, last, err, errlen);
}

static int parse_blob(rks_t *ks, const unsigned char *data, size_t len, bool apply, char *err,
                      size_t errlen) {
  const sl_blob_reader_t rd = {.max_kg = ks->base.max_kg, .kg_begin = ks->base.kg_begin,
                               .kg_end = ks->base.kg_end, .ctx = ks, .state = blob_state,
                               .entry = blob_entry, .applied = blob_applied};
  int rc = sl_blob_parse(&rd, data, len, apply, NULL, err, errlen);
  if (apply) rocksdb_writebatch_clear(ks->wb);
  return rc;
}

static int r_restore(sl_keyed_state_t *b, const void *data, size_t len, char *err, size_t errlen) {
  rks_t *ks = KS(b);
  if (!data) data = "";
  /* Validate everything first: a damaged snapshot leaves ks untouched. */
  if (parse_blob(ks, data, len, false, err, errlen) != 0) return -1;
  if (rdb_open(ks->r, err, errlen) != 0) return -1;
  ks->touched = true;
  unpin(ks);
  iter_drop(ks);
  /* The key is changed by the apply pass: none is current afterwards. */
  int rc = parse_blob(ks, data, len, true, err, errlen);
  ks->key_rc = SL_ESTATE;
  return rc;
}

/* -------------------------------------------------- directory restore */

typedef struct meta {
  uint32_t max_kg;
  bstate_t *states; /* by the database's state id */
  uint32_t nstates;
} meta_t;

static void meta_free(meta_t *m) {
  for (uint32_t i = 0; i < m->nstates; i++) free(m->states[i].name);
  free(m->states);
}

/* The metadata rows of db. */
static int meta_read(rocksdb_t *db, const char *where, meta_t *m, char *err, size_t errlen) {
  memset(m, 0, sizeof(*m));
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
  int rc = -1;
  bool have_g = false;
  for (rocksdb_iter_seek(it, (const char *)META_G, 2); rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t kl, vl;
    const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &kl);
    const unsigned char *v = (const unsigned char *)rocksdb_iter_value(it, &vl);
    if (kl == 3 && memcmp(k, META_G, 3) == 0 && vl == 4) {
      m->max_kg = get32(v);
      have_g = true;
    } else if (kl == 5 && k[0] == 0xFF && k[1] == 0xFF && k[2] == 'S' && vl >= 10 &&
               vl - 9 <= MAX_NAME && v[0] >= SL_STATE_VALUE && v[0] <= SL_STATE_MAP &&
               !memchr(v + 9, 0, vl - 9)) {
      uint32_t id = get16be(k + 3);
      if (id >= MAX_STATES) goto bad;
      if (id >= m->nstates) {
        m->states = sl_xrealloc(m->states, (id + 1) * sizeof(bstate_t));
        memset(m->states + m->nstates, 0, (id + 1 - m->nstates) * sizeof(bstate_t));
        m->nstates = id + 1;
      }
      free(m->states[id].name);
      m->states[id].kind = v[0];
      m->states[id].ttl = (int64_t)get64(v + 1);
      m->states[id].name = sl_xstrndup((const char *)v + 9, vl - 9);
    } else {
      goto bad;
    }
  }
  for (uint32_t i = 0; i < m->nstates; i++)
    if (!m->states[i].name) goto bad;
  if (!have_g) goto bad;
  rc = 0;
  goto out;
bad:
  fail(err, errlen, "RocksDB state in %s: malformed metadata (not a Sluice state directory?)",
       where);
out:
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  if (rc) meta_free(m);
  return rc;
}

/* Open a checkpoint's database directory read-only: nothing is written
 * into it (RocksDB's info log goes to logdir). */
static rocksdb_t *open_read_only(const char *dir, const char *logdir, rocksdb_options_t **o,
                                 char *err, size_t errlen) {
  *o = side_options(false);
  rocksdb_options_set_db_log_dir(*o, logdir);
  char *e = NULL;
  rocksdb_t *db = rocksdb_open_for_read_only(*o, dir, 0, &e);
  if (e) {
    fail(err, errlen, "cannot open the RocksDB state in %s: %s", dir, e);
    free(e);
    return NULL;
  }
  return db;
}

static int r_restore_dir(sl_keyed_state_t *b, const char *dir, uint32_t sb, uint32_t se, char *err,
                         size_t errlen) {
  rks_t *ks = KS(b);
  rdb_t *r = ks->r;
  uint32_t lo = ks->base.kg_begin > sb ? ks->base.kg_begin : sb;
  uint32_t hi = ks->base.kg_end < se ? ks->base.kg_end : se;
  if (lo >= hi) return 0;
  unpin(ks);
  iter_drop(ks);
  if (!r->db && !ks->touched && ks->nstates == 0 && sb == ks->base.kg_begin &&
      se == ks->base.kg_end) {
    /* Our own range into an empty instance: use the files themselves. */
    sl_fs_remove_tree(r->db_dir);
    if (materialize(dir, r->db_dir, err, errlen) != 0) return -1;
    if (rdb_open_as(r, false, err, errlen) != 0) return -1; /* checks max_key_groups */
    meta_t m;
    if (meta_read(r->db, dir, &m, err, errlen) != 0) return -1;
    int rc = 0;
    {
      for (uint32_t i = 0; i < m.nstates; i++) {
        struct sl_state *st = add_state(ks, m.states[i].name, strlen(m.states[i].name),
                                        (sl_state_kind_t)m.states[i].kind, m.states[i].ttl, false);
        if (st->id != i) { /* ids are dense from 0: they are ours now */
          rc = fail(err, errlen, "RocksDB state in %s: state ids are not dense", dir);
          break;
        }
      }
    }
    meta_free(&m);
    ks->touched = true;
    return rc;
  }
  /* Another range, or on top of other state: copy the rows of ours. */
  char *logdir = sl_xasprintf("%s/restore-%u", r->dir, r->stage_seq++);
  if (mkdir(logdir, 0755) != 0) {
    fail(err, errlen, "cannot create %s: %s", logdir, strerror(errno));
    free(logdir);
    return -1;
  }
  rocksdb_options_t *o = NULL;
  rocksdb_t *src = open_read_only(dir, logdir, &o, err, errlen);
  int rc = -1;
  meta_t m = {0};
  uint32_t *map = NULL;
  rocksdb_iterator_t *it = NULL;
  rocksdb_readoptions_t *ro = NULL;
  if (!src) goto out;
  if (meta_read(src, dir, &m, err, errlen) != 0) goto out;
  if (m.max_kg != ks->base.max_kg) {
    fail(err, errlen,
         "RocksDB state in %s was written with max_key_groups %u, this instance has %u", dir,
         m.max_kg, ks->base.max_kg);
    goto out;
  }
  /* States by name: check every kind before writing anything. */
  for (uint32_t i = 0; i < m.nstates; i++) {
    struct sl_state *have = find_state(ks, m.states[i].name, strlen(m.states[i].name));
    if (have && (uint32_t)have->kind != m.states[i].kind) {
      fail(err, errlen, "state '%s' is a %s state in %s but a %s state %s", m.states[i].name,
           sl_state_kind_name(m.states[i].kind), dir, sl_state_kind_name(have->kind),
           ks->declared[have->id] ? "as declared" : "in a snapshot restored before");
      goto out;
    }
  }
  if (rdb_open(r, err, errlen) != 0) goto out;
  ks->touched = true;
  map = sl_xcalloc(m.nstates ? m.nstates : 1, sizeof(uint32_t));
  for (uint32_t i = 0; i < m.nstates; i++) {
    struct sl_state *have = find_state(ks, m.states[i].name, strlen(m.states[i].name));
    if (!have) {
      if (ks->nstates >= MAX_STATES) {
        fail(err, errlen, "more than %u keyed states", MAX_STATES);
        goto out;
      }
      have = add_state(ks, m.states[i].name, strlen(m.states[i].name),
                       (sl_state_kind_t)m.states[i].kind, m.states[i].ttl, false);
      if (write_state_meta(ks, have, err, errlen) != 0) goto out;
    }
    map[i] = have->id;
  }
  unsigned char bounds[4];
  it = range_iter(src, NULL, lo, hi, bounds, &ro);
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(it, &kl);
    const char *v = rocksdb_iter_value(it, &vl);
    rowkey_t rk;
    if (rowkey_parse((const unsigned char *)k, kl, &rk) != 0 || rk.sid >= m.nstates) {
      fail(err, errlen, "RocksDB state in %s: a row has a malformed key", dir);
      goto out;
    }
    if (!grow(&ks->kb, &ks->kcap, kl)) {
      fail(err, errlen, "out of memory restoring keyed state");
      goto out;
    }
    memcpy(ks->kb, k, kl);
    put16be(ks->kb + 2, map[rk.sid]);
    rocksdb_writebatch_put(ks->wb, (const char *)ks->kb, kl, v, vl);
    if (rbatch_maybe_write(ks, false, err, errlen) != 0) goto out;
  }
  {
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    if (e) {
      fail(err, errlen, "reading the RocksDB state in %s: %s", dir, e);
      free(e);
      goto out;
    }
  }
  if (rbatch_maybe_write(ks, true, err, errlen) != 0) goto out;
  rc = 0;
out:
  rocksdb_writebatch_clear(ks->wb);
  ks->key_rc = SL_ESTATE;
  if (it) rocksdb_iter_destroy(it);
  if (ro) rocksdb_readoptions_destroy(ro);
  if (src) rocksdb_close(src);
  if (o) rocksdb_options_destroy(o);
  meta_free(&m);
  free(map);
  sl_fs_remove_tree(logdir);
  free(logdir);
  return rc;
}

int sl_state_rocksdb_export(const char *dir, uint32_t max_key_groups, uint32_t kg_begin,
                            uint32_t kg_end, sl_buf_t *out, char *err, size_t errlen) {
  const char *t = getenv("TMPDIR");
  char *logdir = sl_xasprintf("%s/sluice-export-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(logdir)) {
    fail(err, errlen, "cannot create a temporary directory %s: %s", logdir, strerror(errno));
    free(logdir);
    return -1;
  }
  rocksdb_options_t *o = NULL;
  rocksdb_t *db = open_read_only(dir, logdir, &o, err, errlen);
  int rc = -1;
  meta_t m = {0};
  if (!db) goto out;
  if (meta_read(db, dir, &m, err, errlen) != 0) goto out;
  if (m.max_kg != max_key_groups) {
    fail(err, errlen, "RocksDB state in %s was written with max_key_groups %u, this job has %u",
         dir, m.max_kg, max_key_groups);
    goto out;
  }
  {
    unsigned char bounds[4];
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = range_iter(db, NULL, kg_begin, kg_end, bounds, &ro);
    /* Nothing left out for expiry: a restore keeps expiries as they are. */
    rc = blob_from_iter(it, max_key_groups, m.states, m.nstates, INT64_MIN, out, err, errlen);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
  }
out:
  if (db) rocksdb_close(db);
  if (o) rocksdb_options_destroy(o);
  meta_free(&m);
  sl_fs_remove_tree(logdir);
  free(logdir);
  return rc;
}

int sl_state_rocksdb_compact(struct sl_keyed_state *b, char *err, size_t errlen) {
  if (!b || b->ops != &rdb_ops) return fail(err, errlen, "not a RocksDB keyed state");
  rks_t *ks = KS(b);
  if (rdb_open(ks->r, err, errlen) != 0) return -1;
  char *e = NULL;
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  rocksdb_flush(ks->r->db, fo, &e);
  rocksdb_flushoptions_destroy(fo);
  if (e) {
    fail(err, errlen, "flush: %s", e);
    free(e);
    return -1;
  }
  rocksdb_compact_range(ks->r->db, NULL, 0, NULL, 0);
  return 0;
}

/* ------------------------------------------------------------ dispatch */

static const sl_state_snapshot_ops_t rdb_snap_ops = {
    .write = r_snap_write,
    .write_dir = r_snap_write_dir,
    .release = r_snap_release,
};

static const sl_state_backend_ops_t rdb_ops = {
    .name = "rocksdb",
    .free = r_free,
    .declare = r_declare,
    .set_key = r_set_key,
    .set_now = r_set_now,
    .get = r_get,
    .put = r_put,
    .clear = r_clear,
    .list_append = r_list_append,
    .list_count = r_list_count,
    .list_get = r_list_get,
    .list_trim_front = r_list_trim_front,
    .map_get = r_map_get,
    .map_put = r_map_put,
    .map_remove = r_map_remove,
    .map_next = r_map_next,
    .scan = r_scan,
    .entries = r_entries,
    .bytes = r_bytes,
    .snapshot_begin = r_snapshot_begin,
    .restore = r_restore,
    .restore_dir = r_restore_dir,
};
