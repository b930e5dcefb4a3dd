/*
 * lua_alloc.c - the lua_Alloc of a task's state: a memory cap, and a cache
 * of freed small blocks.
 *
 * Why a cache: a Lua operator creates and drops a few strings per record
 * (rec.value, what it emits), and the collector frees them in bursts of
 * hundreds. glibc keeps only 7 blocks per size in its thread cache, so most
 * of those frees and the next mallocs take its slower bins. Blocks of up to
 * SMALL_MAX bytes are therefore rounded up to 16-byte classes and, once
 * freed, kept on per-class free lists of this state (one thread at a time
 * uses a state: no lock) for the next allocation of that class. The cache
 * is bounded (cache_max bytes); beyond it, blocks go back to malloc.
 *
 * The cap counts everything the state holds: live blocks and cached ones,
 * each with malloc's real size plus its chunk header (so that many small
 * objects cannot hide their overhead). Before refusing an allocation the
 * cache is handed back to malloc; Lua then collects garbage and retries
 * before raising "not enough memory". Shrinks and frees always succeed (Lua
 * counts on it): a shrink that would need a new block at the cap keeps the
 * old one, which is then released as a block of its new class.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "lua_host.h"

#define CLASS_SHIFT 4
#define SMALL_MAX 512 /* larger blocks are plain malloc/realloc */
#define BIG SL_LUA_ALLOC_CLASSES
#define CHUNK_OVERHEAD 16u

/* The class of a block of n > 0 bytes, or BIG. */
static size_t class_of(size_t n) { return n <= SMALL_MAX ? (n - 1) >> CLASS_SHIFT : BIG; }
static size_t class_bytes(size_t c) { return (c + 1) << CLASS_SHIFT; }

/* What a block really takes from the heap. */
static size_t real_size(void *p) { return malloc_usable_size(p) + CHUNK_OVERHEAD; }

/* Hands the cached blocks back to malloc. */
void sl_lua_alloc_flush(sl_lua_alloc_t *a) {
  for (size_t c = 0; c < SL_LUA_ALLOC_CLASSES; c++) {
    void *p = a->free[c];
    while (p) {
      void *next = *(void **)p;
      a->used -= real_size(p);
      free(p);
      p = next;
    }
    a->free[c] = NULL;
  }
  a->cached = 0;
}

/* Room for `need` more bytes under the cap, flushing the cache if that
 * makes room; else marks the refusal. */
static int room_for(sl_lua_alloc_t *a, size_t need) {
  if (a->used + need <= a->cap) return 1;
  if (a->cached) {
    sl_lua_alloc_flush(a);
    if (a->used + need <= a->cap) return 1;
  }
  a->refused = 1;
  return 0;
}

static void *small_new(sl_lua_alloc_t *a, size_t c) {
  void *p = a->free[c];
  if (p) {
    a->free[c] = *(void **)p;
    a->cached -= class_bytes(c);
    return p;
  }
  /* A class block's real size is its bytes + 8 (glibc) + the header. */
  if (!room_for(a, class_bytes(c) + 8 + CHUNK_OVERHEAD)) return NULL;
  p = malloc(class_bytes(c));
  if (p) a->used += real_size(p);
  return p;
}

static void small_release(sl_lua_alloc_t *a, void *p, size_t c) {
  if (a->cached + class_bytes(c) <= a->cache_max) {
    *(void **)p = a->free[c];
    a->free[c] = p;
    a->cached += class_bytes(c);
    return;
  }
  a->used -= real_size(p);
  free(p);
}

static void release(sl_lua_alloc_t *a, void *p, size_t size) {
  size_t c = class_of(size);
  if (c != BIG) {
    small_release(a, p, c);
    return;
  }
  a->used -= real_size(p);
  free(p);
}

void *sl_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sl_lua_alloc_t *a = &((sl_lua_host_t *)ud)->alloc;
  if (!ptr) osize = 0; /* then osize is Lua's object type, not a size */
  if (nsize == 0) {
    if (ptr) release(a, ptr, osize);
    return NULL;
  }
  size_t oc = ptr ? class_of(osize) : BIG;
  size_t nc = class_of(nsize);
  if (nc != BIG) {
    if (ptr && oc == nc) return ptr; /* still fits its class */
    if (ptr && oc == BIG) { /* big to small: shrink in place, to a class's size */
      size_t old = real_size(ptr);
      void *p = realloc(ptr, class_bytes(nc));
      if (!p) return ptr; /* (not in glibc) still a valid, larger block */
      a->used = a->used - old + real_size(p);
      return p;
    }
    int refused_before = a->refused;
    void *p = small_new(a, nc);
    if (!p && ptr && nsize <= osize) { /* a shrink at the cap: keep the block */
      a->refused = refused_before;
      return ptr;
    }
    if (!p) return NULL;
    if (ptr) {
      memcpy(p, ptr, osize < nsize ? osize : nsize);
      release(a, ptr, osize);
    }
    return p;
  }
  if (ptr && oc != BIG) { /* small to big */
    if (!room_for(a, nsize + CHUNK_OVERHEAD)) return NULL;
    void *p = malloc(nsize);
    if (!p) return NULL;
    a->used += real_size(p);
    memcpy(p, ptr, osize);
    small_release(a, ptr, oc);
    return p;
  }
  /* Growing may move the block: old and new both exist for a moment, so the
   * cap must hold for both (a doubling buffer would otherwise peak at 1.5x
   * the cap). */
  size_t old = ptr ? real_size(ptr) : 0;
  size_t need = nsize + CHUNK_OVERHEAD;
  if (need > old && !room_for(a, need)) return NULL;
  void *p = realloc(ptr, nsize);
  if (!p) return nsize <= osize ? ptr : NULL;
  a->used = a->used - old + real_size(p);
  return p;
}
