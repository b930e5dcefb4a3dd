/*
 * state_mem.c - the in-memory keyed-state backend (see state.h). Its
 * functions are reached through mem_ops, the operations table at the end
 * (state.c dispatches): an instance is a mem_ks_t whose first member is
 * the sl_keyed_state_t head, a snapshot a mem_snap_t likewise.
 *
 * Layout
 *   One open-addressing table per instance, over all its states: a slot is
 *   {hash, entry *}, linear probing, power-of-two capacity, growth at 3/4
 *   load, backward-shift deletion (no tombstones). The hash of an entry is
 *   XXH3-64(key) ^ (state id * 2^64/phi): XXH3 of the current key is computed
 *   once, in set_key, and shared by every state of the record. The
 *   slot index takes the hash's high bits (the key group takes it modulo
 *   max_key_groups, i.e. its low bits, and an instance holds a range of key
 *   groups: low bits would cluster). The slot of the last lookup is
 *   remembered for the current key, so a get followed by a put or a clear of
 *   the same state probes once.
 *   An entry (state, key) is one allocation: a 32-byte header (the hash is
 *   kept in the slot only), key bytes, then for a value state the value with
 *   some spare capacity (the rest of the block's size class; a put that fits
 *   is a memcpy, no allocation; one that does not gets 1.5x the old
 *   capacity). A list entry carries a list (items {offset,
 *   length} into one data buffer, plus a head index: trim_front moves the
 *   head; the dead front is compacted away when the list must grow). A map
 *   entry carries a small open-addressing table of its own (same scheme),
 *   whose first slot array (room for one key) and first small map entry
 *   live in the state entry itself (so a key's timer, a one-key map, is one
 *   block); other map entries are one allocation each {mkey, value, spare}.
 *   An empty list or map is removed.
 *   Blocks of up to 512 bytes (entries, map entries, map slot arrays) come
 *   from per-instance free lists by 16-byte size class (pool_t), holding at
 *   most as many blocks as the table has slots: creating and deleting a
 *   key's state once per window costs no malloc in steady state.
 *
 * TTL
 *   Each entry stores its expiry time (processing time of its last write +
 *   ttl_ms; INT64_MAX = never). An entry with expiry <= now reads as absent;
 *   it is removed when a call finds it (sl_ks_scan only skips it), and, when
 *   some entry has a TTL, each write also checks two slots of an incremental
 *   sweep. The expiry of a
 *   whole list or map is refreshed by any write to it (append, trim, put,
 *   remove). A declaration that changes the TTL applies from the next write.
 *
 * Snapshots (copy-on-write)
 *   snapshot_begin (task thread) copies the entry pointers (a scan of the
 *   slot array into a reused buffer: no payload copied) and the state
 *   declarations, and closes an epoch: every entry records the epoch it was
 *   created in, and entries of a closed epoch are frozen while the snapshot
 *   is active. The task thread never writes nor frees a frozen entry: a write
 *   copies it first (the whole entry: value, or whole list/map), the copy
 *   takes its slot, and the frozen one, like a frozen entry that is removed,
 *   goes to a deferred list. (A map is copied with the same slot layout,
 *   so a map_next cursor stays valid.) snapshot_write (any thread) reads
 *   only frozen entries and the snapshot's own copies, so it runs while the
 *   task keeps going. release (any thread) drops a reference (an atomic
 *   count, 2 at begin: the task's and the writer's); the task thread sees
 *   the count fall to 1 on its next state call or snapshot_begin, and only
 *   then frees the deferred entries (frees never race with the writer), 16
 *   per state call so that a million copies make no pause of their own.
 *   One active snapshot per instance: snapshot_begin returns NULL while the
 *   previous one is not released. If ks is freed before the release, the frozen entries
 *   are handed to the snapshot, which frees them on release. The pointer
 *   buffer (8 bytes per entry) is kept for the next snapshot.
 *
 * Return codes
 *   Wrong kind for the call, a foreign handle, a NULL out pointer, or a
 *   length above 4 GiB - 1: SL_EINVAL. No set_key yet: SL_ESTATE. clear on a
 *   key without an entry returns 0 (idempotent); map_remove of an absent map
 *   key returns SL_ENOTFOUND (as the SDK says). Allocation failure:
 *   SL_ENOMEM.
 *
 * Snapshot format (all integers little-endian, fixed width): the portable
 * keyed-state format. The RocksDB backend writes it too (savepoints) and
 * reads it (a memory checkpoint restored into RocksDB), so the name of the
 * magic is historical.
 *   magic      8 bytes "SLKS-MEM" (another magic, "SLKS-xxx", is refused as
 *              another backend's)
 *   u32        format version (1)
 *   u32        max_key_groups
 *   u32        state count S (at most 1024), then S times:
 *                u32 id (= its index, 0..S-1), u32 kind (1 value, 2 list,
 *                3 map), i64 ttl_ms, u32 name length (1..1024), name bytes
 *   u32        group count G, then G groups, key groups strictly ascending:
 *                u32 key group, u32 entry count, u64 byte length of the
 *                entries that follow (so a restore skips the groups outside
 *                its range), then the entries:
 *                  u32 state id, i64 expiry (processing-time ms; INT64_MAX =
 *                  never), u32 key length, key bytes, then by kind
 *                    value: u32 length, bytes
 *                    list:  u32 count, count x (u32 length, bytes), oldest first
 *                    map:   u32 count, count x (u32 key length, key bytes,
 *                           u32 value length, value bytes)
 *   u64        XXH3-64 of every byte before it (from the magic on)
 *   Expired entries (at snapshot_begin's processing time) are left out;
 *   empty lists and maps are never written.
 *
 * Restore validates the whole blob first (every length checked against the
 * bytes left, key groups checked against the keys' hashes, the checksum),
 * without changing ks, then applies it: a damaged blob leaves ks as it was.
 * It keeps the groups in [kg_begin, kg_end) and skips the others by their
 * byte length. States are matched by name (a kind that differs from an
 * earlier declaration or restore is an error); a restored state that is
 * never declared keeps its entries and is written again by later snapshots.
 * Restoring the same (state, key) twice keeps the last one.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* inlined: the keys hashed here are short, a call through the PLT costs as much */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "state.h"
#include "state_blob.h"

#define NEVER INT64_MAX
#define MAX_STATES 1024u
#define MAX_NAME 1024u
#define MAX_LEN ((size_t)UINT32_MAX)
#define GOLDEN 0x9E3779B97F4A7C15ull
#define MAGIC SL_BLOB_MAGIC
#define FORMAT_VERSION SL_BLOB_VERSION

/* ------------------------------------------------------------ structures */

typedef struct mem_ks mem_ks_t;
typedef struct mem_snap mem_snap_t;
static const sl_state_backend_ops_t mem_ops;
static const sl_state_snapshot_ops_t mem_snap_ops;

/* 32 bytes of header, so that with a short key the value starts in the
 * entry's first cache line (the hash lives in the slot only). */
typedef struct ent {
  int64_t expire;    /* NEVER, or processing time at which it expires */
  uint32_t epoch;    /* epoch it was created in (frozen while a snapshot covers it) */
  uint32_t state;    /* state id */
  uint32_t kg;       /* key group */
  uint32_t klen;
  uint32_t vlen;     /* value: length */
  uint32_t vcap;     /* value: capacity after the key */
  unsigned char b[]; /* key, then the value (value kind) or the aligned list_t / map_t */
} ent_t;

/* The list_t / map_t of a list or map entry, after the key. */
#define AUX(e) ((void *)((e)->b + align8((e)->klen)))

typedef struct slot {
  uint64_t hash;
  ent_t *e; /* NULL = empty */
} slot_t;

typedef struct litem {
  size_t off, len; /* into list_t.data */
} litem_t;

typedef struct list {
  litem_t *items; /* [head, n) live */
  size_t head, n, icap;
  unsigned char *data; /* [0, dlen) used, the front may be dead */
  size_t dlen, dcap;
  uint64_t bytes; /* live payload bytes */
} list_t;

typedef struct ment {
  uint32_t klen, vlen, vcap;
  unsigned char b[]; /* map key, then value */
} ment_t;

typedef struct mslot {
  uint64_t hash;
  ment_t *e;
} mslot_t;

typedef struct map {
  mslot_t *slots; /* MAP_INLINE slots right after the map_t, or an allocation */
  size_t cap, count; /* cap: power of two >= MAP_INLINE */
  unsigned shift;
  uint32_t arena_used; /* the arena holds a map entry */
  uint64_t bytes; /* map keys + values */
} map_t;

/* A map entry (the state entry) carries, after its map_t, the map's first
 * slot array (MAP_INLINE slots: room for one key) and an "arena" for one
 * small map entry: a map of one short key and value, such as a key's
 * event-time timer, is a single allocation and a single block to read. */
#define MAP_INLINE 2u
#define MAP_ARENA 32u

/* Free lists of small blocks (entries, map entries, map slot arrays), per
 * instance, by size class of POOL_GRAIN bytes: a window that creates and
 * deletes a key's state for every window does no malloc or free in steady
 * state. A block always comes from pool_get(size) and goes back through
 * pool_put(same size) (or free(): a pooled block is an ordinary malloc'd
 * one). The pool keeps at most `max` blocks (the table's slot count, which
 * follows the peak number of entries): the rest go back to malloc. */
#define POOL_GRAIN 16u
#define POOL_MAX_BLOCK 512u
#define POOL_CLASSES (POOL_MAX_BLOCK / POOL_GRAIN)

typedef struct pool {
  void *head[POOL_CLASSES];
  size_t n, max;
} pool_t;

typedef struct snap_state {
  uint32_t kind;
  int64_t ttl_ms;
  char *name;
} snap_state_t;

struct mem_snap {
  sl_state_snapshot_t base; /* first: the snapshot ops */
  atomic_int refs; /* the task's + the writer's */
  int owns;        /* set when ks was freed first: the snapshot frees the entries */
  ent_t **ents;
  size_t n, cap;
  int64_t now;
  uint32_t max_kg;
  snap_state_t *states;
  uint32_t nstates;
};

struct mem_ks {
  sl_keyed_state_t base; /* first: the backend ops */
  slot_t *slots;
  size_t cap, mask, count, grow_at;
  unsigned shift;
  /* current key */
  const unsigned char *key;
  size_t klen;
  uint32_t kg;
  int key_rc; /* 0, SL_ESTATE before the first set_key, SL_EINVAL for a key over 4 GiB */
  uint64_t kh;
  /* The last lookup of the current key: slot lk_i for hash lk_h (valid while
   * lk_ok: set_key and every change to the slot array clear it). An operator
   * that reads then writes or clears a state (get then put) probes once. */
  uint64_t lk_h;
  size_t lk_i;
  bool lk_ok;
  int64_t now;
  /* snapshots */
  uint32_t epoch, frozen_below; /* entries with epoch < frozen_below are frozen */
  mem_snap_t *snap;
  ent_t **deferred; /* replaced or removed while frozen */
  size_t ndeferred, capdeferred;
  ent_t **garbage; /* deferred entries of a released snapshot, freed a few per call */
  size_t ngarbage, capgarbage;
  bool chores; /* snap != NULL || ngarbage > 0: the one test on the hot path */
  ent_t **spare; /* a released snapshot's pointer buffer, reused */
  size_t spare_cap;
  /* states */
  struct sl_state **states;
  bool *declared;
  uint32_t nstates, capstates;
  uint32_t max_kg, kg_begin, kg_end;
  bool any_ttl;
  size_t sweep;
  uint64_t bytes;
  uint32_t kg_mask; /* max_kg - 1 when max_kg is a power of two (the key group is a mask), else 0 */
  pool_t pool;
};

/* ------------------------------------------------------------- helpers */

static inline size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ASan: a pooled block is poisoned, as a freed one would be. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The size a block of `sz` bytes really has: its class's (spare room that
 * value entries and map entries use as capacity). */
static inline size_t pool_round(size_t sz) {
  return sz <= POOL_MAX_BLOCK ? (sz + POOL_GRAIN - 1) & ~(size_t)(POOL_GRAIN - 1) : sz;
}

/* A block of at least sz bytes (p NULL: plain malloc). NULL when out of memory. */
static inline void *pool_get(pool_t *p, size_t sz) {
  if (sz == 0 || sz > POOL_MAX_BLOCK) return malloc(sz ? sz : 1);
  size_t c = (sz - 1) / POOL_GRAIN;
  void *b = p ? p->head[c] : NULL;
  if (!b) return malloc((c + 1) * POOL_GRAIN);
  UNPOISON(b, (c + 1) * POOL_GRAIN);
  memcpy(&p->head[c], b, sizeof(void *));
  p->n--;
  return b;
}

/* Give back a block from pool_get(p?, sz) (p NULL: free it). */
static inline void pool_put(pool_t *p, void *b, size_t sz) {
  if (!b) return;
  if (!p || sz == 0 || sz > POOL_MAX_BLOCK || p->n >= p->max) {
    free(b);
    return;
  }
  size_t c = (sz - 1) / POOL_GRAIN;
  memcpy(b, &p->head[c], sizeof(void *));
  p->head[c] = b;
  p->n++;
  POISON(b, (c + 1) * POOL_GRAIN);
}

static void pool_drain(pool_t *p) {
  for (size_t c = 0; c < POOL_CLASSES; c++)
    while (p->head[c]) {
      void *b = p->head[c];
      UNPOISON(b, (c + 1) * POOL_GRAIN);
      memcpy(&p->head[c], b, sizeof(void *));
      free(b);
    }
  p->n = 0;
}

/* Key equality without a call (the probe loop stays a leaf): 8 bytes at a
 * time, the tail as an overlapping 8-byte word. */
static inline bool key_eq(const unsigned char *a, const unsigned char *b, size_t n) {
  if (n >= 8) {
    uint64_t x, y;
    for (size_t i = 0; i + 8 < n; i += 8) {
      memcpy(&x, a + i, 8);
      memcpy(&y, b + i, 8);
      if (x != y) return false;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  if (n >= 4) {
    uint32_t x0, y0, x1, y1;
    memcpy(&x0, a, 4);
    memcpy(&y0, b, 4);
    memcpy(&x1, a + n - 4, 4);
    memcpy(&y1, b + n - 4, 4);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

static inline int64_t expiry_for(const mem_ks_t *ks, const sl_state_t *st) {
  if (st->ttl_ms <= 0) return NEVER;
  if (ks->now > NEVER - st->ttl_ms) return NEVER - 1;
  return ks->now + st->ttl_ms;
}

static inline bool expired(const mem_ks_t *ks, const ent_t *e) {
  return e->expire <= ks->now;
}

static inline bool frozen(const mem_ks_t *ks, const ent_t *e) {
  return e->epoch < ks->frozen_below;
}

static inline unsigned char *ent_val(ent_t *e) { return e->b + e->klen; }

/* ------------------------------------------------------------- the map */

static void map_init(map_t *m) {
  memset(m, 0, sizeof(*m));
}

static inline mslot_t *map_inline(map_t *m) { return (mslot_t *)(void *)(m + 1); }
static inline unsigned char *map_arena(map_t *m) { return (unsigned char *)(map_inline(m) + MAP_INLINE); }

/* A block for a map entry of (at least) sz bytes: the arena when it is free
 * and big enough, else the pool. *vcap: the value room after a key of klen. */
static ment_t *ment_alloc(map_t *m, size_t klen, size_t sz, size_t *vcap, pool_t *pool) {
  size_t room;
  ment_t *n;
  if (!m->arena_used && sz <= MAP_ARENA) {
    m->arena_used = 1;
    room = MAP_ARENA;
    n = (ment_t *)(void *)map_arena(m);
  } else {
    room = pool_round(sz);
    n = pool_get(pool, room);
  }
  size_t cap = room - sizeof(ment_t) - klen;
  *vcap = cap > MAX_LEN ? MAX_LEN : cap;
  return n;
}

static void ment_free(map_t *m, ment_t *e, pool_t *pool) {
  if ((unsigned char *)e == map_arena(m))
    m->arena_used = 0;
  else
    pool_put(pool, e, sizeof(ment_t) + e->klen + e->vcap);
}

static void map_release(map_t *m, pool_t *pool) {
  if (!m->slots) return;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].e) ment_free(m, m->slots[i].e, pool);
  if (m->slots != map_inline(m)) pool_put(pool, m->slots, m->cap * sizeof(mslot_t));
  m->slots = NULL;
}

static size_t map_find(const map_t *m, uint64_t h, const void *k, size_t klen) {
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)(h >> m->shift);; i = (i + 1) & mask) {
    const ment_t *e = m->slots[i].e;
    if (!e) return i;
    if (m->slots[i].hash == h && e->klen == klen && key_eq(e->b, k, klen)) return i;
  }
}

/* Grow to cap slots (MAP_INLINE: the inline array, for a new map). */
static int map_resize(map_t *m, size_t cap, pool_t *pool) {
  mslot_t *s = cap == MAP_INLINE ? map_inline(m) : pool_get(pool, cap * sizeof(mslot_t));
  if (!s) return SL_ENOMEM;
  memset(s, 0, cap * sizeof(mslot_t));
  unsigned shift = 64u - (unsigned)__builtin_ctzll(cap);
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->slots[i].e) continue;
    size_t j = (size_t)(m->slots[i].hash >> shift);
    while (s[j].e) j = (j + 1) & (cap - 1);
    s[j] = m->slots[i];
  }
  if (m->slots && m->slots != map_inline(m)) pool_put(pool, m->slots, m->cap * sizeof(mslot_t));
  m->slots = s;
  m->cap = cap;
  m->shift = shift;
  return 0;
}

static void map_remove_at(map_t *m, size_t i) {
  size_t mask = m->cap - 1;
  for (size_t j = (i + 1) & mask; m->slots[j].e; j = (j + 1) & mask) {
    size_t home = (size_t)(m->slots[j].hash >> m->shift);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i].e = NULL;
  m->slots[i].hash = 0;
  m->count--;
}

/* Set mk to v (copies both); aliasing-safe. */
static int map_set(map_t *m, const void *mk, size_t mklen, const void *v, size_t len,
                   pool_t *pool) {
  if (!m->slots) {
    int rc = map_resize(m, MAP_INLINE, pool);
    if (rc) return rc;
  }
  uint64_t h = XXH3_64bits(mk, mklen);
  size_t i = map_find(m, h, mk, mklen);
  ment_t *e = m->slots[i].e;
  if (e && len <= e->vcap) {
    if (len) memmove(e->b + e->klen, v, len);
    m->bytes = m->bytes - e->vlen + len;
    e->vlen = (uint32_t)len;
    return 0;
  }
  if (!e && (m->count + 1) * 4 > m->cap * 3) { /* grow first: never full */
    int rc = map_resize(m, m->cap * 2, pool);
    if (rc) return rc;
    i = map_find(m, h, mk, mklen);
  }
  size_t cap = len;
  if (e && cap < (size_t)e->vcap + e->vcap / 2) cap = (size_t)e->vcap + e->vcap / 2;
  ment_t *n = ment_alloc(m, mklen, sizeof(ment_t) + mklen + cap, &cap, pool);
  if (!n) return SL_ENOMEM;
  n->klen = (uint32_t)mklen;
  n->vlen = (uint32_t)len;
  n->vcap = (uint32_t)cap;
  if (mklen) memcpy(n->b, mk, mklen);
  if (len) memcpy(n->b + mklen, v, len);
  if (e) {
    m->bytes = m->bytes - e->vlen + len;
    m->slots[i].e = n;
    ment_free(m, e, pool);
    return 0;
  }
  m->slots[i].hash = h;
  m->slots[i].e = n;
  m->count++;
  m->bytes += mklen + len;
  return 0;
}

/* Deep copy with the same slot layout (an iteration cursor stays valid);
 * dst is the map of a new entry (its inline slots are free). */
static int map_clone(map_t *dst, const map_t *src, pool_t *pool) {
  *dst = *src;
  dst->arena_used = 0;
  if (!src->slots) return 0;
  dst->slots = src->cap == MAP_INLINE ? map_inline(dst) : pool_get(pool, src->cap * sizeof(mslot_t));
  if (!dst->slots) return SL_ENOMEM;
  memset(dst->slots, 0, src->cap * sizeof(mslot_t));
  for (size_t i = 0; i < src->cap; i++) {
    const ment_t *e = src->slots[i].e;
    if (!e) continue;
    size_t sz = sizeof(ment_t) + e->klen + e->vlen, vcap;
    ment_t *n = ment_alloc(dst, e->klen, sz, &vcap, pool);
    if (!n) {
      map_release(dst, pool);
      return SL_ENOMEM;
    }
    memcpy(n, e, sz);
    n->vcap = (uint32_t)vcap;
    dst->slots[i].hash = src->slots[i].hash;
    dst->slots[i].e = n;
  }
  return 0;
}

/* ------------------------------------------------------------ the list */

static void list_init(list_t *l) { memset(l, 0, sizeof(*l)); }

static void list_release(list_t *l) {
  free(l->items);
  free(l->data);
  l->items = NULL;
  l->data = NULL;
}

/* Move the live items and their bytes to the front. */
static void list_compact(list_t *l) {
  if (l->head == 0) return;
  size_t live = l->n - l->head;
  size_t base = live ? l->items[l->head].off : l->dlen;
  memmove(l->items, l->items + l->head, live * sizeof(litem_t));
  for (size_t i = 0; i < live; i++) l->items[i].off -= base;
  if (l->dlen > base) memmove(l->data, l->data + base, l->dlen - base);
  l->dlen -= base;
  l->head = 0;
  l->n = live;
}

/* Aliasing-safe: v may point into the list's own data. */
static int list_push(list_t *l, const void *v, size_t len) {
  const unsigned char *src = v;
  unsigned char *tmp = NULL;
  if (len && l->data && src >= l->data && src < l->data + l->dcap) {
    tmp = malloc(len); /* rare: the caller appends one of our own values */
    if (!tmp) return SL_ENOMEM;
    memcpy(tmp, src, len);
    src = tmp;
  }
  bool need_items = l->n == l->icap, need_data = !l->data || l->dcap - l->dlen < len;
  if ((need_items || need_data) && l->head > 0 && l->head * 2 >= l->n) {
    list_compact(l);
    need_items = l->n == l->icap;
    need_data = !l->data || l->dcap - l->dlen < len;
  }
  if (need_items) {
    size_t cap = l->icap ? l->icap * 2 : 4;
    litem_t *it = realloc(l->items, cap * sizeof(litem_t));
    if (!it) goto nomem;
    l->items = it;
    l->icap = cap;
  }
  if (need_data) {
    size_t cap = l->dcap ? l->dcap * 2 : 64;
    while (cap - l->dlen < len) cap *= 2;
    unsigned char *d = realloc(l->data, cap);
    if (!d) goto nomem;
    l->data = d;
    l->dcap = cap;
  }
  if (len) memcpy(l->data + l->dlen, src, len);
  l->items[l->n].off = l->dlen;
  l->items[l->n].len = len;
  l->n++;
  l->dlen += len;
  l->bytes += len;
  free(tmp);
  return 0;
nomem:
  free(tmp);
  return SL_ENOMEM;
}

static int list_clone(list_t *dst, const list_t *src) {
  list_init(dst);
  size_t live = src->n - src->head;
  size_t base = live ? src->items[src->head].off : src->dlen;
  size_t dbytes = src->dlen - base;
  dst->icap = live < 4 ? 4 : live;
  dst->dcap = dbytes < 64 ? 64 : dbytes;
  dst->items = malloc(dst->icap * sizeof(litem_t));
  dst->data = malloc(dst->dcap);
  if (!dst->items || !dst->data) {
    list_release(dst);
    return SL_ENOMEM;
  }
  for (size_t i = 0; i < live; i++) {
    dst->items[i].off = src->items[src->head + i].off - base;
    dst->items[i].len = src->items[src->head + i].len;
  }
  if (dbytes) memcpy(dst->data, src->data + base, dbytes);
  dst->n = live;
  dst->dlen = dbytes;
  dst->bytes = src->bytes;
  return 0;
}

/* ------------------------------------------------------------ entries */

static size_t aux_size(sl_state_kind_t kind) {
  return kind == SL_STATE_LIST  ? sizeof(list_t)
         : kind == SL_STATE_MAP ? sizeof(map_t) + MAP_INLINE * sizeof(mslot_t) + MAP_ARENA
                                : 0;
}

/* The size of entry e's block (what pool_get was asked for). */
static inline size_t ent_size(const ent_t *e, sl_state_kind_t kind) {
  if (kind == SL_STATE_VALUE) return sizeof(ent_t) + e->klen + e->vcap;
  return sizeof(ent_t) + align8(e->klen) + aux_size(kind);
}

/* Value capacity for a value of len bytes after a key of klen: the room of
 * the block's size class (a later put that fits is a memcpy). */
static inline size_t value_room(size_t klen, size_t len) {
  size_t sz = sizeof(ent_t) + klen + len;
  size_t cap = (sz <= POOL_MAX_BLOCK ? pool_round(sz) : align8(sz)) - sizeof(ent_t) - klen;
  return cap > MAX_LEN ? MAX_LEN : cap;
}

/* A new entry for (state, key); value entries get at least `vcap` bytes of room. */
static ent_t *ent_alloc(pool_t *pool, sl_state_kind_t kind, uint32_t state, uint32_t kg,
                        const void *key, size_t klen, size_t vcap) {
  size_t sz;
  if (kind == SL_STATE_VALUE) {
    vcap = value_room(klen, vcap);
    sz = sizeof(ent_t) + klen + vcap;
  } else {
    sz = sizeof(ent_t) + align8(klen) + aux_size(kind);
  }
  ent_t *e = pool_get(pool, sz);
  if (!e) return NULL;
  e->expire = NEVER;
  e->epoch = 0;
  e->state = state;
  e->kg = kg;
  e->klen = (uint32_t)klen;
  e->vlen = 0;
  e->vcap = kind == SL_STATE_VALUE ? (uint32_t)vcap : 0;
  if (klen) memcpy(e->b, key, klen);
  if (kind == SL_STATE_LIST)
    list_init(AUX(e));
  else if (kind == SL_STATE_MAP)
    map_init(AUX(e));
  return e;
}

/* pool NULL: everything goes back to malloc (a snapshot freeing entries
 * on another thread, after ks). */
static void ent_free_k(pool_t *pool, ent_t *e, sl_state_kind_t kind) {
  if (!e) return;
  if (kind == SL_STATE_LIST)
    list_release(AUX(e));
  else if (kind == SL_STATE_MAP)
    map_release(AUX(e), pool);
  pool_put(pool, e, ent_size(e, kind));
}

static uint64_t ent_bytes_k(const ent_t *e, sl_state_kind_t kind) {
  if (kind == SL_STATE_LIST) return (uint64_t)e->klen + ((const list_t *)AUX(e))->bytes;
  if (kind == SL_STATE_MAP) return (uint64_t)e->klen + ((const map_t *)AUX(e))->bytes;
  return (uint64_t)e->klen + e->vlen;
}

static inline sl_state_kind_t kind_of(const mem_ks_t *ks, const ent_t *e) {
  return ks->states[e->state]->kind;
}

/* ------------------------------------------------------------ the table */

static int table_resize(mem_ks_t *ks, size_t cap) {
  slot_t *s = calloc(cap, sizeof(slot_t));
  if (!s) return SL_ENOMEM;
  ks->lk_ok = false;
  unsigned shift = 64u - (unsigned)__builtin_ctzll(cap);
  for (size_t i = 0; i < ks->cap; i++) {
    if (!ks->slots[i].e) continue;
    size_t j = (size_t)(ks->slots[i].hash >> shift);
    while (s[j].e) j = (j + 1) & (cap - 1);
    s[j] = ks->slots[i];
  }
  free(ks->slots);
  ks->slots = s;
  ks->cap = cap;
  ks->mask = cap - 1;
  ks->shift = shift;
  ks->grow_at = cap / 4 * 3;
  ks->pool.max = cap;
  return 0;
}

#define HOT static inline __attribute__((always_inline))

HOT size_t table_find(const mem_ks_t *ks, uint64_t h, uint32_t state, const void *key,
                      size_t klen) {
  const slot_t *slots = ks->slots;
  for (size_t i = (size_t)(h >> ks->shift);; i = (i + 1) & ks->mask) {
    const ent_t *e = slots[i].e;
    if (!e) return i;
    if (slots[i].hash == h && e->state == state && e->klen == klen && key_eq(e->b, key, klen))
      return i;
  }
}

/* Put e into empty slot i (from table_find), growing first when due (the
 * table is never full). SL_ENOMEM when it cannot grow: e is not inserted. */
static int table_insert_at(mem_ks_t *ks, size_t i, ent_t *e, uint64_t h) {
  ks->lk_ok = false;
  if (ks->count + 1 > ks->grow_at) {
    if (table_resize(ks, ks->cap * 2) != 0) return SL_ENOMEM;
    i = table_find(ks, h, e->state, e->b, e->klen);
  }
  ks->slots[i].hash = h;
  ks->slots[i].e = e;
  ks->count++;
  return 0;
}

static void defer(mem_ks_t *ks, ent_t *e) {
  if (ks->ndeferred == ks->capdeferred) {
    ks->capdeferred = ks->capdeferred ? ks->capdeferred * 2 : 256;
    ks->deferred = sl_xrealloc(ks->deferred, ks->capdeferred * sizeof(ent_t *));
  }
  ks->deferred[ks->ndeferred++] = e;
}

/* An entry leaves the table (or is replaced): free it, or defer it when the
 * active snapshot still reads it. */
static void ent_drop(mem_ks_t *ks, ent_t *e) {
  if (frozen(ks, e))
    defer(ks, e);
  else
    ent_free_k(&ks->pool, e, kind_of(ks, e));
}

static void table_remove_at(mem_ks_t *ks, size_t i) {
  ks->lk_ok = false;
  ent_t *gone = ks->slots[i].e;
  ks->bytes -= ent_bytes_k(gone, kind_of(ks, gone));
  size_t mask = ks->mask;
  for (size_t j = (i + 1) & mask; ks->slots[j].e; j = (j + 1) & mask) {
    size_t home = (size_t)(ks->slots[j].hash >> ks->shift);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      ks->slots[i] = ks->slots[j];
      i = j;
    }
  }
  ks->slots[i].e = NULL;
  ks->slots[i].hash = 0;
  ks->count--;
  ent_drop(ks, gone);
}

/* A couple of steps of the incremental TTL sweep. */
static void sweep_step(mem_ks_t *ks) {
  for (int n = 0; n < 2; n++) {
    size_t i = ks->sweep & ks->mask;
    ent_t *e = ks->slots[i].e;
    if (e && expired(ks, e))
      table_remove_at(ks, i); /* slot i may now hold a shifted entry: seen next time */
    else
      ks->sweep = i + 1;
  }
}

static __attribute__((noinline)) size_t remove_expired(mem_ks_t *ks, size_t i, uint64_t h,
                                                       uint32_t id) {
  table_remove_at(ks, i);
  return table_find(ks, h, id, ks->key, ks->klen);
}

/* The live entry of (st, current key): its slot in *idx, or NULL (then *idx
 * is the empty slot where it would go). An expired entry is removed. */
HOT ent_t *lookup(mem_ks_t *ks, const sl_state_t *st, uint64_t h, size_t *idx) {
  size_t i;
  if (ks->lk_ok && ks->lk_h == h) { /* same key (lk_ok), same state (h) */
    i = ks->lk_i;
  } else {
    i = table_find(ks, h, st->id, ks->key, ks->klen);
    ks->lk_h = h;
    ks->lk_i = i;
    ks->lk_ok = true;
  }
  ent_t *e = ks->slots[i].e;
  if (__builtin_expect(e && expired(ks, e), 0)) {
    i = remove_expired(ks, i, h, st->id);
    e = NULL;
  }
  *idx = i;
  return e;
}

/* A copy of frozen entry e (deep: list or map too). */
static ent_t *ent_clone(pool_t *pool, const ent_t *e, sl_state_kind_t kind) {
  if (kind == SL_STATE_VALUE) {
    ent_t *n = pool_get(pool, ent_size(e, kind));
    if (!n) return NULL;
    memcpy(n, e, sizeof(ent_t) + e->klen + e->vlen);
    return n;
  }
  ent_t *n = ent_alloc(pool, kind, e->state, e->kg, e->b, e->klen, 0);
  if (!n) return NULL;
  n->expire = e->expire;
  int rc = kind == SL_STATE_LIST ? list_clone(AUX(n), AUX(e)) : map_clone(AUX(n), AUX(e), pool);
  if (rc) {
    pool_put(pool, n, ent_size(n, kind));
    return NULL;
  }
  return n;
}

/* Entry at slot i, made writable (copied first when the snapshot reads it). */
static ent_t *writable(mem_ks_t *ks, size_t i) {
  ent_t *e = ks->slots[i].e;
  if (!frozen(ks, e)) return e;
  ent_t *n = ent_clone(&ks->pool, e, kind_of(ks, e));
  if (!n) return NULL;
  n->epoch = ks->epoch;
  ks->slots[i].e = n;
  defer(ks, e);
  return n;
}

/* ------------------------------------------------------------ snapshots */

static void snap_destroy(mem_snap_t *s) {
  if (s->owns)
    for (size_t i = 0; i < s->n; i++) {
      ent_t *e = s->ents[i];
      ent_free_k(NULL, e, (sl_state_kind_t)s->states[e->state].kind);
    }
  for (uint32_t i = 0; i < s->nstates; i++) free(s->states[i].name);
  free(s->states);
  free(s->ents);
  free(s);
}

/* Task thread, once the writer has released the snapshot: the deferred
 * entries become garbage, freed a few per state call (no pause here). */
static void snap_reclaim(mem_ks_t *ks) {
  mem_snap_t *s = ks->snap;
  if (ks->ngarbage == 0) {
    ent_t **g = ks->garbage;
    size_t cap = ks->capgarbage;
    ks->garbage = ks->deferred;
    ks->capgarbage = ks->capdeferred;
    ks->ngarbage = ks->ndeferred;
    ks->deferred = g;
    ks->capdeferred = cap;
  } else {
    for (size_t i = 0; i < ks->ndeferred; i++) {
      if (ks->ngarbage == ks->capgarbage) {
        ks->capgarbage *= 2;
        ks->garbage = sl_xrealloc(ks->garbage, ks->capgarbage * sizeof(ent_t *));
      }
      ks->garbage[ks->ngarbage++] = ks->deferred[i];
    }
  }
  ks->ndeferred = 0;
  free(ks->spare);
  ks->spare = s->ents;
  ks->spare_cap = s->cap;
  s->ents = NULL;
  s->n = 0;
  ks->snap = NULL;
  ks->frozen_below = 0;
  ks->chores = ks->ngarbage > 0;
  snap_destroy(s);
}

#define GARBAGE_PER_CALL 16

static void free_garbage(mem_ks_t *ks, size_t max) {
  size_t n = ks->ngarbage < max ? ks->ngarbage : max;
  for (size_t i = 0; i < n; i++) {
    ent_t *e = ks->garbage[--ks->ngarbage];
    ent_free_k(&ks->pool, e, kind_of(ks, e));
  }
  if (ks->ngarbage == 0 && ks->capgarbage > 4096) { /* after a burst: give the memory back */
    free(ks->garbage);
    ks->garbage = NULL;
    ks->capgarbage = 0;
  }
  ks->chores = ks->snap != NULL || ks->ngarbage > 0;
}

static inline void snap_poll(mem_ks_t *ks) {
  if (ks->snap && atomic_load_explicit(&ks->snap->refs, memory_order_acquire) == 1)
    snap_reclaim(ks);
}

/* Off the hot path: see whether the snapshot was released, free some garbage. */
static __attribute__((noinline)) void do_chores(mem_ks_t *ks) {
  snap_poll(ks);
  if (ks->ngarbage) free_garbage(ks, GARBAGE_PER_CALL);
}

static sl_state_snapshot_t *mem_snapshot_begin(sl_keyed_state_t *base_) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  if (!ks) return NULL;
  if (ks->snap) {
    snap_poll(ks);
    if (ks->snap) return NULL; /* the previous one is still being written */
  }
  mem_snap_t *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->base.ops = &mem_snap_ops;
  atomic_init(&s->refs, 2);
  s->now = ks->now;
  s->max_kg = ks->max_kg;
  s->nstates = ks->nstates;
  s->states = calloc(ks->nstates ? ks->nstates : 1, sizeof(snap_state_t));
  if (!s->states) goto fail;
  for (uint32_t i = 0; i < ks->nstates; i++) {
    s->states[i].kind = (uint32_t)ks->states[i]->kind;
    s->states[i].ttl_ms = ks->states[i]->ttl_ms;
    s->states[i].name = strdup(ks->states[i]->name);
    if (!s->states[i].name) goto fail;
  }
  /* The pointers of every entry: a branch-free scan of the slot array into
   * a buffer reused from one snapshot to the next. */
  size_t need = ks->count ? ks->count : 1;
  if (ks->spare && ks->spare_cap >= need) {
    s->ents = ks->spare;
    s->cap = ks->spare_cap;
    ks->spare = NULL;
    ks->spare_cap = 0;
  } else {
    free(ks->spare);
    ks->spare = NULL;
    ks->spare_cap = 0;
    s->cap = need + need / 8;
    s->ents = malloc(s->cap * sizeof(ent_t *) + sizeof(ent_t *)); /* +1: the scan writes one past */
    if (!s->ents) goto fail;
  }
  {
    ent_t **out = s->ents;
    size_t n = 0;
    const slot_t *slots = ks->slots;
    for (size_t i = 0; i < ks->cap; i++) {
      ent_t *e = slots[i].e;
      out[n] = e;
      n += e != NULL;
      if (n > ks->count) break; /* cannot happen; keeps the write in bounds */
    }
    s->n = n;
  }
  ks->frozen_below = ks->epoch + 1;
  ks->epoch++;
  ks->snap = s;
  ks->chores = true;
  return &s->base;
fail:
  if (s->states)
    for (uint32_t i = 0; i < s->nstates; i++) free(s->states[i].name);
  free(s->states);
  free(s->ents);
  free(s);
  return NULL;
}

static void mem_snap_release(sl_state_snapshot_t *base_) {
  mem_snap_t *snap = (mem_snap_t *)base_;
  if (!snap) return;
  if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) == 1) snap_destroy(snap);
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

static size_t enc_size(const ent_t *e, uint32_t kind) {
  size_t n = 4 + 8 + 4 + (size_t)e->klen + 4;
  if (kind == SL_STATE_VALUE) return n + e->vlen;
  if (kind == SL_STATE_LIST) {
    const list_t *l = AUX(e);
    return n + 4 * (l->n - l->head) + (size_t)l->bytes;
  }
  const map_t *m = AUX(e);
  return n + 8 * m->count + (size_t)m->bytes;
}

static unsigned char *enc_entry(unsigned char *p, const ent_t *e, uint32_t kind) {
  p = put32(p, e->state);
  p = put64(p, (uint64_t)e->expire);
  p = put32(p, e->klen);
  memcpy(p, e->b, e->klen);
  p += e->klen;
  if (kind == SL_STATE_VALUE) {
    p = put32(p, e->vlen);
    memcpy(p, e->b + e->klen, e->vlen);
    return p + e->vlen;
  }
  if (kind == SL_STATE_LIST) {
    const list_t *l = AUX(e);
    p = put32(p, (uint32_t)(l->n - l->head));
    for (size_t i = l->head; i < l->n; i++) {
      p = put32(p, (uint32_t)l->items[i].len);
      memcpy(p, l->data + l->items[i].off, l->items[i].len);
      p += l->items[i].len;
    }
    return p;
  }
  const map_t *m = AUX(e);
  p = put32(p, (uint32_t)m->count);
  for (size_t i = 0; i < m->cap; i++) {
    const ment_t *me = m->slots[i].e;
    if (!me) continue;
    p = put32(p, me->klen);
    memcpy(p, me->b, me->klen);
    p += me->klen;
    p = put32(p, me->vlen);
    memcpy(p, me->b + me->klen, me->vlen);
    p += me->vlen;
  }
  return p;
}

static int mem_snap_write(sl_state_snapshot_t *base_, sl_buf_t *out, char *err, size_t errlen) {
  mem_snap_t *snap = (mem_snap_t *)base_;
  if (!snap || !out) {
    if (err && errlen) snprintf(err, errlen, "no snapshot or no output buffer");
    return -1;
  }
  uint32_t G = snap->max_kg;
  size_t *start = calloc((size_t)G + 1, sizeof(size_t));
  if (!start) {
    if (err && errlen) snprintf(err, errlen, "out of memory (key group index)");
    return -1;
  }
  /* Counting sort of the live entries by key group; sizes on the way. */
  size_t live = 0, body = 0;
  for (size_t i = 0; i < snap->n; i++) {
    const ent_t *e = snap->ents[i];
    if (e->expire <= snap->now) continue;
    if (e->kg >= G) {
      if (err && errlen)
        snprintf(err, errlen, "an entry has key group %u, not below max_key_groups %u", e->kg, G);
      free(start);
      return -1;
    }
    start[e->kg + 1]++;
    live++;
    body += enc_size(e, snap->states[e->state].kind);
  }
  uint32_t groups = 0;
  for (uint32_t g = 0; g < G; g++) {
    groups += start[g + 1] != 0;
    start[g + 1] += start[g];
  }
  const ent_t **ord = malloc((live ? live : 1) * sizeof(*ord));
  if (!ord) {
    if (err && errlen) snprintf(err, errlen, "out of memory (%zu entries)", live);
    free(start);
    return -1;
  }
  {
    size_t *pos = start; /* start[g] advances to the end of group g, then is restored below */
    for (size_t i = 0; i < snap->n; i++) {
      const ent_t *e = snap->ents[i];
      if (e->expire <= snap->now) continue;
      ord[pos[e->kg]++] = e;
    }
    /* pos[g] is now the end of group g == the start of g+1: shift back. */
    for (uint32_t g = G; g > 0; g--) start[g] = start[g - 1];
    start[0] = 0;
  }
  size_t names = 0;
  for (uint32_t i = 0; i < snap->nstates; i++) names += strlen(snap->states[i].name);
  size_t total = 8 + 4 + 4 + 4 + (size_t)snap->nstates * 20 + names + 4 + (size_t)groups * 16 +
                 body + 8;
  size_t base = out->len;
  sl_buf_reserve(out, total);
  unsigned char *p = out->data + base;
  memcpy(p, MAGIC, 8);
  p += 8;
  p = put32(p, FORMAT_VERSION);
  p = put32(p, G);
  p = put32(p, snap->nstates);
  for (uint32_t i = 0; i < snap->nstates; i++) {
    size_t nl = strlen(snap->states[i].name);
    p = put32(p, i);
    p = put32(p, snap->states[i].kind);
    p = put64(p, (uint64_t)snap->states[i].ttl_ms);
    p = put32(p, (uint32_t)nl);
    memcpy(p, snap->states[i].name, nl);
    p += nl;
  }
  p = put32(p, groups);
  for (uint32_t g = 0; g < G; g++) {
    size_t a = start[g], b = start[g + 1];
    if (a == b) continue;
    p = put32(p, g);
    p = put32(p, (uint32_t)(b - a));
    unsigned char *lenp = p;
    p += 8;
    unsigned char *gbeg = p;
    for (size_t k = a; k < b; k++) p = enc_entry(p, ord[k], snap->states[ord[k]->state].kind);
    put64(lenp, (uint64_t)(p - gbeg));
  }
  uint64_t sum = XXH3_64bits(out->data + base, (size_t)(p - (out->data + base)));
  p = put64(p, sum);
  out->len = (size_t)(p - out->data);
  free(ord);
  free(start);
  if (out->len - base != total) { /* the size computation and the encoder disagree: a bug */
    if (err && errlen)
      snprintf(err, errlen, "internal error: snapshot size %zu, expected %zu", out->len - base,
               total);
    out->len = base;
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------- lifecycle */

sl_keyed_state_t *sl_keyed_state_new_memory(uint32_t max_key_groups, uint32_t kg_begin,
                                            uint32_t kg_end) {
  if (!max_key_groups || kg_begin > kg_end || kg_end > max_key_groups) return NULL;
  mem_ks_t *ks = sl_xcalloc(1, sizeof(*ks));
  ks->base.ops = &mem_ops;
  ks->base.max_kg = max_key_groups;
  ks->base.kg_begin = kg_begin;
  ks->base.kg_end = kg_end;
  ks->max_kg = max_key_groups;
  ks->kg_begin = kg_begin;
  ks->kg_end = kg_end;
  if ((max_key_groups & (max_key_groups - 1)) == 0) ks->kg_mask = max_key_groups - 1;
  ks->epoch = 1;
  ks->key_rc = SL_ESTATE; /* no key yet */
  if (table_resize(ks, 16) != 0) {
    free(ks);
    return NULL;
  }
  return &ks->base;
}

static void mem_free(sl_keyed_state_t *base_) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  if (!ks) return;
  bool abandoned = false;
  if (ks->snap) {
    if (atomic_load_explicit(&ks->snap->refs, memory_order_acquire) == 1) {
      snap_reclaim(ks);
    } else {
      /* Not released yet: the frozen entries (live or deferred) now belong
       * to the snapshot, which frees them on release. */
      mem_snap_t *s = ks->snap;
      for (size_t i = 0; i < ks->cap; i++) {
        ent_t *e = ks->slots[i].e;
        if (e && !frozen(ks, e)) ent_free_k(NULL, e, kind_of(ks, e));
      }
      s->owns = 1;
      if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) snap_destroy(s);
      abandoned = true;
    }
  }
  if (!abandoned)
    for (size_t i = 0; i < ks->cap; i++)
      if (ks->slots[i].e) ent_free_k(NULL, ks->slots[i].e, kind_of(ks, ks->slots[i].e));
  free_garbage(ks, SIZE_MAX);
  pool_drain(&ks->pool);
  free(ks->slots);
  free(ks->deferred);
  free(ks->garbage);
  free(ks->spare);
  for (uint32_t i = 0; i < ks->nstates; i++) {
    free(ks->states[i]->name);
    free(ks->states[i]);
  }
  free(ks->states);
  free(ks->declared);
  free(ks);
}

static struct sl_state *find_state(const mem_ks_t *ks, const char *name, size_t len) {
  for (uint32_t i = 0; i < ks->nstates; i++)
    if (strlen(ks->states[i]->name) == len && memcmp(ks->states[i]->name, name, len) == 0)
      return ks->states[i];
  return NULL;
}

static struct sl_state *add_state(mem_ks_t *ks, const char *name, size_t len,
                                  sl_state_kind_t kind, int64_t ttl_ms, bool declared) {
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
  if (ttl_ms > 0) ks->any_ttl = true;
  return st;
}

static sl_state_t *mem_declare(sl_keyed_state_t *base_, const char *name, sl_state_kind_t kind,
                               int64_t ttl_ms, char *err, size_t errlen) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  if (!ks || !name || !*name) {
    if (err && errlen) snprintf(err, errlen, "a state needs a non-empty name");
    return NULL;
  }
  if (kind != SL_STATE_VALUE && kind != SL_STATE_LIST && kind != SL_STATE_MAP) {
    if (err && errlen) snprintf(err, errlen, "state '%s': unknown kind %d", name, (int)kind);
    return NULL;
  }
  if (ttl_ms < 0) {
    if (err && errlen) snprintf(err, errlen, "state '%s': negative TTL", name);
    return NULL;
  }
  size_t len = strlen(name);
  if (len > MAX_NAME) {
    if (err && errlen) snprintf(err, errlen, "state name longer than %u bytes", MAX_NAME);
    return NULL;
  }
  struct sl_state *st = find_state(ks, name, len);
  if (st) {
    if (st->kind != kind) {
      if (err && errlen)
        snprintf(err, errlen, "state '%s' is a %s state %s, not a %s state", name,
                 sl_state_kind_name(st->kind),
                 ks->declared[st->id] ? "(declared earlier)" : "in the restored checkpoint",
                 sl_state_kind_name(kind));
      return NULL;
    }
    st->ttl_ms = ttl_ms;
    if (ttl_ms > 0) ks->any_ttl = true;
    ks->declared[st->id] = true;
    return st;
  }
  if (ks->nstates >= MAX_STATES) {
    if (err && errlen) snprintf(err, errlen, "more than %u keyed states", MAX_STATES);
    return NULL;
  }
  return add_state(ks, name, len, kind, ttl_ms, true);
}

static void mem_set_key(sl_keyed_state_t *base_, const void *key, size_t len, uint64_t hash) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  ks->key = key;
  ks->klen = len;
  /* a mask when max_kg is a power of two (the usual 128): no division per record */
  ks->kg = ks->kg_mask ? (uint32_t)hash & ks->kg_mask
                       : ks->max_kg ? (uint32_t)(hash % ks->max_kg) : 0;
  ks->key_rc = len > MAX_LEN ? SL_EINVAL : 0;
  ks->kh = hash; /* shared by every state of the record */
  ks->lk_ok = false;
}

static void mem_set_now(sl_keyed_state_t *base_, int64_t now_ms) { ((mem_ks_t *)base_)->now = now_ms; }

static uint64_t mem_entries(const sl_keyed_state_t *base_) { return ((const mem_ks_t *)base_)->count; }
static uint64_t mem_bytes(const sl_keyed_state_t *base_) { return ((const mem_ks_t *)base_)->bytes; }

/* -------------------------------------------------------- operations */

/* Common checks; on 0, *h is the hash of (st, current key). */
HOT int prep(mem_ks_t *ks, const sl_state_t *st, sl_state_kind_t kind, uint64_t *h) {
  if (__builtin_expect(!st || st->id >= ks->nstates || ks->states[st->id] != st, 0))
    return SL_EINVAL;
  if (kind && st->kind != kind) return SL_EINVAL;
  if (__builtin_expect(ks->key_rc != 0, 0)) return ks->key_rc;
  if (__builtin_expect(ks->chores, 0)) do_chores(ks);
  *h = ks->kh ^ ((uint64_t)st->id * GOLDEN);
  return 0;
}

static ent_t *new_entry(mem_ks_t *ks, const sl_state_t *st, size_t vcap) {
  ent_t *e = ent_alloc(&ks->pool, st->kind, st->id, ks->kg, ks->key, ks->klen, vcap);
  if (e) e->epoch = ks->epoch;
  return e;
}

static int mem_get(sl_keyed_state_t *base_, sl_state_t *st, sl_bytes_t *out) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_VALUE, &h);
  if (rc) return rc;
  if (!out) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (!e) return SL_ENOTFOUND;
  out->ptr = ent_val(e);
  out->len = e->vlen;
  return 0;
}

static int mem_put(sl_keyed_state_t *base_, sl_state_t *st, const void *v, size_t len) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_VALUE, &h);
  if (rc) return rc;
  if (len > MAX_LEN || (len && !v)) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  int64_t exp = expiry_for(ks, st);
  if (e && len <= e->vcap && !frozen(ks, e)) { /* the hot path: in place */
    if (len) memmove(ent_val(e), v, len);
    ks->bytes = ks->bytes - e->vlen + len;
    e->vlen = (uint32_t)len;
    e->expire = exp;
  } else if (e) { /* copy-on-write, or more room: a new allocation */
    size_t cap = len > e->vcap ? len : e->vcap;
    if (len > e->vcap && cap < (size_t)e->vcap + e->vcap / 2) cap = (size_t)e->vcap + e->vcap / 2;
    cap = value_room(e->klen, cap);
    ent_t *n = pool_get(&ks->pool, sizeof(ent_t) + e->klen + cap);
    if (!n) return SL_ENOMEM;
    memcpy(n, e, sizeof(ent_t) + e->klen);
    n->vcap = (uint32_t)cap;
    n->vlen = (uint32_t)len;
    n->epoch = ks->epoch;
    n->expire = exp;
    if (len) memcpy(ent_val(n), v, len);
    ks->bytes = ks->bytes - e->vlen + len;
    ks->slots[i].e = n;
    ent_drop(ks, e);
  } else {
    e = new_entry(ks, st, len);
    if (!e) return SL_ENOMEM;
    e->vlen = (uint32_t)len;
    e->expire = exp;
    if (len) memcpy(ent_val(e), v, len);
    if (table_insert_at(ks, i, e, h) != 0) {
      ent_free_k(&ks->pool, e, SL_STATE_VALUE);
      return SL_ENOMEM;
    }
    ks->bytes += ks->klen + len;
  }
  if (ks->any_ttl) sweep_step(ks);
  return 0;
}

static int mem_clear(sl_keyed_state_t *base_, sl_state_t *st) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, 0, &h);
  if (rc) return rc;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (e) table_remove_at(ks, i);
  return 0;
}

static int mem_list_append(sl_keyed_state_t *base_, sl_state_t *st, const void *v, size_t len) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_LIST, &h);
  if (rc) return rc;
  if (len > MAX_LEN || (len && !v)) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (e) {
    e = writable(ks, i);
    if (!e) return SL_ENOMEM;
    if ((rc = list_push(AUX(e), v, len)) != 0) return rc;
    ks->bytes += len;
  } else {
    e = new_entry(ks, st, 0);
    if (!e) return SL_ENOMEM;
    if ((rc = list_push(AUX(e), v, len)) != 0) {
      ent_free_k(&ks->pool, e, SL_STATE_LIST);
      return rc;
    }
    if (table_insert_at(ks, i, e, h) != 0) {
      ent_free_k(&ks->pool, e, SL_STATE_LIST);
      return SL_ENOMEM;
    }
    ks->bytes += ks->klen + len;
  }
  e->expire = expiry_for(ks, st);
  if (ks->any_ttl) sweep_step(ks);
  return 0;
}

static int mem_list_count(sl_keyed_state_t *base_, sl_state_t *st, size_t *out) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_LIST, &h);
  if (rc) return rc;
  if (!out) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (!e) {
    *out = 0;
    return 0;
  }
  const list_t *l = AUX(e);
  *out = l->n - l->head;
  return 0;
}

static int mem_list_get(sl_keyed_state_t *base_, sl_state_t *st, size_t idx, sl_bytes_t *out) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_LIST, &h);
  if (rc) return rc;
  if (!out) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (!e) return SL_ENOTFOUND;
  const list_t *l = AUX(e);
  if (idx >= l->n - l->head) return SL_ENOTFOUND;
  const litem_t *it = &l->items[l->head + idx];
  out->ptr = l->data + it->off;
  out->len = it->len;
  return 0;
}

static int mem_list_trim_front(sl_keyed_state_t *base_, sl_state_t *st, size_t n) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_LIST, &h);
  if (rc) return rc;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (!e || n == 0) return 0;
  const list_t *l0 = AUX(e);
  if (n >= l0->n - l0->head) {
    table_remove_at(ks, i);
    return 0;
  }
  e = writable(ks, i);
  if (!e) return SL_ENOMEM;
  list_t *l = AUX(e);
  uint64_t gone = 0;
  for (size_t k = l->head; k < l->head + n; k++) gone += l->items[k].len;
  l->head += n;
  l->bytes -= gone;
  ks->bytes -= gone;
  e->expire = expiry_for(ks, st);
  if (ks->any_ttl) sweep_step(ks);
  return 0;
}

static int mem_map_get(sl_keyed_state_t *base_, sl_state_t *st, const void *mk, size_t mklen,
                       sl_bytes_t *out) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_MAP, &h);
  if (rc) return rc;
  if (!out || (mklen && !mk) || mklen > MAX_LEN) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (!e) return SL_ENOTFOUND;
  const map_t *m = AUX(e);
  size_t j = map_find(m, XXH3_64bits(mk, mklen), mk, mklen);
  const ment_t *me = m->slots[j].e;
  if (!me) return SL_ENOTFOUND;
  out->ptr = me->b + me->klen;
  out->len = me->vlen;
  return 0;
}

static int mem_map_put(sl_keyed_state_t *base_, sl_state_t *st, const void *mk, size_t mklen,
                       const void *v, size_t len) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_MAP, &h);
  if (rc) return rc;
  if ((mklen && !mk) || (len && !v) || mklen > MAX_LEN || len > MAX_LEN) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (e) {
    e = writable(ks, i);
    if (!e) return SL_ENOMEM;
    map_t *m = AUX(e);
    uint64_t before = m->bytes;
    if ((rc = map_set(m, mk, mklen, v, len, &ks->pool)) != 0) return rc;
    ks->bytes = ks->bytes - before + m->bytes;
  } else {
    e = new_entry(ks, st, 0);
    if (!e) return SL_ENOMEM;
    if ((rc = map_set(AUX(e), mk, mklen, v, len, &ks->pool)) != 0) {
      ent_free_k(&ks->pool, e, SL_STATE_MAP);
      return rc;
    }
    if (table_insert_at(ks, i, e, h) != 0) {
      ent_free_k(&ks->pool, e, SL_STATE_MAP);
      return SL_ENOMEM;
    }
    ks->bytes += ks->klen + ((map_t *)AUX(e))->bytes;
  }
  e->expire = expiry_for(ks, st);
  if (ks->any_ttl) sweep_step(ks);
  return 0;
}

static int mem_map_remove(sl_keyed_state_t *base_, sl_state_t *st, const void *mk, size_t mklen) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_MAP, &h);
  if (rc) return rc;
  if ((mklen && !mk) || mklen > MAX_LEN) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (!e) return SL_ENOTFOUND;
  uint64_t mh = XXH3_64bits(mk, mklen);
  const map_t *m0 = AUX(e);
  size_t j = map_find(m0, mh, mk, mklen);
  if (!m0->slots[j].e) return SL_ENOTFOUND;
  if (m0->count == 1) { /* the last one: the whole entry goes */
    table_remove_at(ks, i);
    return 0;
  }
  e = writable(ks, i); /* same layout: j still names the slot */
  if (!e) return SL_ENOMEM;
  map_t *m = AUX(e);
  ment_t *me = m->slots[j].e;
  uint64_t gone = (uint64_t)me->klen + me->vlen;
  map_remove_at(m, j);
  ment_free(m, me, &ks->pool);
  m->bytes -= gone;
  ks->bytes -= gone;
  e->expire = expiry_for(ks, st);
  if (ks->any_ttl) sweep_step(ks);
  return 0;
}

static int mem_map_next(sl_keyed_state_t *base_, sl_state_t *st, size_t *cursor, sl_bytes_t *mk,
                        sl_bytes_t *v) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  uint64_t h;
  int rc = prep(ks, st, SL_STATE_MAP, &h);
  if (rc) return rc;
  if (!cursor || !mk || !v) return SL_EINVAL;
  size_t i;
  ent_t *e = lookup(ks, st, h, &i);
  if (!e) return SL_DONE;
  const map_t *m = AUX(e);
  for (size_t j = *cursor; j < m->cap; j++) {
    const ment_t *me = m->slots[j].e;
    if (!me) continue;
    mk->ptr = me->b;
    mk->len = me->klen;
    v->ptr = me->b + me->klen;
    v->len = me->vlen;
    *cursor = j + 1;
    return 0;
  }
  *cursor = m->cap;
  return SL_DONE;
}

/* Every live entry of st, over all keys: a walk of the slot array (the
 * table holds every state's entries, and only the instance's key groups),
 * nothing allocated. fn must not call back into ks, so the table does not
 * change under the walk and each entry is seen once. An expired entry is
 * skipped, not removed (a removal shifts later entries back into slots
 * already walked); the sweep or the next call on its key removes it. */
static int mem_scan(sl_keyed_state_t *base_, sl_state_t *st, sl_state_scan_fn fn, void *arg) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  if (!st || st->id >= ks->nstates || ks->states[st->id] != st) return SL_EINVAL;
  if (ks->chores) do_chores(ks);
  const slot_t *slots = ks->slots;
  for (size_t i = 0; i < ks->cap; i++) {
    const ent_t *e = slots[i].e;
    if (!e || e->state != st->id || expired(ks, e)) continue;
    int rc = 0;
    if (st->kind == SL_STATE_VALUE) {
      rc = fn(arg, e->b, e->klen, NULL, 0, e->b + e->klen, e->vlen);
    } else if (st->kind == SL_STATE_LIST) {
      const list_t *l = AUX(e);
      for (size_t k = l->head; k < l->n && rc == 0; k++)
        rc = fn(arg, e->b, e->klen, NULL, 0, l->data + l->items[k].off, l->items[k].len);
    } else {
      const map_t *m = AUX(e);
      for (size_t k = 0; k < m->cap && rc == 0; k++) {
        const ment_t *me = m->slots[k].e;
        if (me) rc = fn(arg, e->b, e->klen, me->b, me->klen, me->b + me->klen, me->vlen);
      }
    }
    if (rc != 0) return rc;
  }
  return 0;
}

/* ------------------------------------------------------------ restore */


/* Insert a restored entry (replaces one with the same state and key). */
static int restore_put(mem_ks_t *ks, ent_t *e, uint64_t h) {
  size_t i = table_find(ks, h, e->state, e->b, e->klen);
  if (ks->slots[i].e) {
    ent_t *old = ks->slots[i].e;
    ks->bytes -= ent_bytes_k(old, kind_of(ks, old));
    ks->slots[i].e = e;
    ent_drop(ks, old);
  } else if (table_insert_at(ks, i, e, h) != 0) {
    ent_free_k(&ks->pool, e, kind_of(ks, e));
    return SL_ENOMEM;
  }
  ks->bytes += ent_bytes_k(e, kind_of(ks, e));
  if (e->expire != NEVER) ks->any_ttl = true;
  return 0;
}

/* One entry of key group g; `apply` builds and inserts it. */
static int parse_entry(mem_ks_t *ks, sl_blob_rd_t *r, const sl_blob_state_t *rs, uint32_t nstates,
                       uint32_t g, bool apply) {
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
  uint64_t kh = XXH3_64bits(key, klen);
  if (!apply && kh % ks->max_kg != g)
    return sl_blob_fail(r, "keyed state snapshot corrupt: entry at byte %zu is in key group %u but its "
                      "key hashes to group %u",
                   at, g, (uint32_t)(kh % ks->max_kg));
  uint32_t kind = rs[sid].kind;
  const unsigned char *v = NULL;
  uint32_t vlen = 0;
  if (kind == SL_STATE_VALUE && sl_blob_bytes(r, &v, &vlen, "value")) return -1;
  ent_t *e = NULL;
  if (apply) {
    struct sl_state *st = rs[sid].bound;
    e = ent_alloc(&ks->pool, kind, st->id, g, key, klen, vlen);
    if (!e) return sl_blob_fail(r, "out of memory restoring keyed state");
    e->expire = (int64_t)expire;
    e->epoch = ks->epoch;
    e->vlen = vlen;
    if (vlen) memcpy(ent_val(e), v, vlen);
  }
  if (kind != SL_STATE_VALUE) {
    uint32_t count;
    size_t cat = r->pos;
    if (sl_blob_u32(r, &count, kind == SL_STATE_LIST ? "list count" : "map count")) goto fail;
    size_t min = kind == SL_STATE_LIST ? 4 : 8;
    if ((r->end - r->pos) / min < count) {
      sl_blob_fail(r, "keyed state snapshot corrupt: %s count %u at byte %zu does not fit in the %zu "
                 "bytes left in %s",
              sl_state_kind_name(kind), count, cat, r->end - r->pos, r->scope);
      goto fail;
    }
    for (uint32_t k = 0; k < count; k++) {
      const unsigned char *a, *b;
      uint32_t alen, blen;
      if (kind == SL_STATE_LIST) {
        if (sl_blob_bytes(r, &a, &alen, "list item")) goto fail;
        if (apply && list_push(AUX(e), a, alen)) goto nomem;
      } else {
        if (sl_blob_bytes(r, &a, &alen, "map key")) goto fail;
        if (sl_blob_bytes(r, &b, &blen, "map value")) goto fail;
        if (apply && map_set(AUX(e), a, alen, b, blen, &ks->pool)) goto nomem;
      }
    }
    if (apply && count == 0) { /* never written; tolerated */
      ent_free_k(&ks->pool, e, kind);
      return 0;
    }
  }
  if (apply && restore_put(ks, e, kh ^ ((uint64_t)rs[sid].bound->id * GOLDEN)) != 0)
    return sl_blob_fail(r, "out of memory restoring keyed state");
  return 0;
nomem:
  sl_blob_fail(r, "out of memory restoring keyed state");
fail:
  if (e) ent_free_k(&ks->pool, e, kind);
  return -1;
}

/* sl_blob_reader_t callbacks: bind the snapshot's states to this instance's. */
static int blob_state(void *ctx, sl_blob_rd_t *r, uint32_t i, sl_blob_state_t *st, size_t at,
                      bool apply) {
  mem_ks_t *ks = ctx;
  (void)at;
  struct sl_state *have = find_state(ks, (const char *)st->name, st->nlen);
  if (sl_blob_check_kind(r, st, have, have && ks->declared[have->id]) != 0) return -1;
  if (apply) {
    if (!have && ks->nstates >= MAX_STATES)
      return sl_blob_fail(r, "more than %u keyed states", MAX_STATES);
    st->bound = have ? have
                     : add_state(ks, (const char *)st->name, st->nlen, (sl_state_kind_t)st->kind,
                                 st->ttl, false);
  } else if (!have && ks->nstates + i >= MAX_STATES) {
    return sl_blob_fail(r, "restoring would make more than %u keyed states", MAX_STATES);
  }
  return 0;
}

static int blob_entry(void *ctx, sl_blob_rd_t *r, const sl_blob_state_t *states, uint32_t nstates,
                      uint32_t g, bool apply) {
  return parse_entry(ctx, r, states, nstates, g, apply);
}

static int parse_blob(mem_ks_t *ks, const unsigned char *data, size_t len, bool apply,
                      size_t *entries, char *err, size_t errlen) {
  const sl_blob_reader_t rd = {.max_kg = ks->max_kg, .kg_begin = ks->kg_begin,
                               .kg_end = ks->kg_end, .ctx = ks, .state = blob_state,
                               .entry = blob_entry};
  return sl_blob_parse(&rd, data, len, apply, entries, err, errlen);
}

static int mem_restore(sl_keyed_state_t *base_, const void *data, size_t len, char *err,
                       size_t errlen) {
  mem_ks_t *ks = (mem_ks_t *)base_;
  if (!ks || (!data && len)) {
    if (err && errlen) snprintf(err, errlen, "no keyed state or no data");
    return -1;
  }
  if (!data) data = "";
  snap_poll(ks);
  /* Validate everything first: a damaged snapshot leaves ks untouched. */
  size_t entries = 0;
  if (parse_blob(ks, data, len, false, &entries, err, errlen) != 0) return -1;
  /* Room for all of them at once (no rehash on the way). */
  size_t want = ks->count + entries, cap = ks->cap;
  while (want > cap / 4 * 3) cap *= 2;
  if (cap != ks->cap && table_resize(ks, cap) != 0) {
    if (err && errlen)
      snprintf(err, errlen, "out of memory restoring keyed state (%zu entries)", want);
    return -1;
  }
  entries = 0;
  return parse_blob(ks, data, len, true, &entries, err, errlen);
}

/* ------------------------------------------------------------ dispatch */

static const sl_state_snapshot_ops_t mem_snap_ops = {
    .write = mem_snap_write,
    .release = mem_snap_release,
};

static const sl_state_backend_ops_t mem_ops = {
    .name = "memory",
    .free = mem_free,
    .declare = mem_declare,
    .set_key = mem_set_key,
    .set_now = mem_set_now,
    .get = mem_get,
    .put = mem_put,
    .clear = mem_clear,
    .list_append = mem_list_append,
    .list_count = mem_list_count,
    .list_get = mem_list_get,
    .list_trim_front = mem_list_trim_front,
    .map_get = mem_map_get,
    .map_put = mem_map_put,
    .map_remove = mem_map_remove,
    .map_next = mem_map_next,
    .scan = mem_scan,
    .entries = mem_entries,
    .bytes = mem_bytes,
    .snapshot_begin = mem_snapshot_begin,
    .restore = mem_restore,
};
