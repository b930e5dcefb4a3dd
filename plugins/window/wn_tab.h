/*
 * wn_tab.h - a scratch hash table: byte-string keys to fixed-size values,
 * in insertion order. The window operator uses it while it computes a
 * result (merging the distinct values / top_n items of a window's slices);
 * it is reset and reused, never kept across callbacks (all lasting data
 * is in keyed state). Pure: no host calls.
 */
#ifndef WN_TAB_H
#define WN_TAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct wn_tab_ent {
  uint64_t hash;
  size_t koff; /* key bytes in the arena */
  size_t klen;
  size_t voff; /* value (vsize bytes, 8-aligned) in the arena */
} wn_tab_ent_t;

typedef struct wn_tab {
  size_t vsize;
  wn_tab_ent_t *ents;
  size_t n, ents_cap;
  uint32_t *slots; /* entry index + 1; 0 = empty */
  size_t slot_cap; /* power of two */
  unsigned char *arena;
  size_t alen, acap;
} wn_tab_t;

/** Empty the table (keeping its memory) and set the value size. */
void wn_tab_reset(wn_tab_t *t, size_t vsize);
void wn_tab_free(wn_tab_t *t);
/**
 * The value of key k, inserted (zero-filled, *created = 1) when absent.
 * The pointer is valid until the next upsert or reset. NULL when out of
 * memory.
 */
void *wn_tab_upsert(wn_tab_t *t, const void *k, size_t len, int *created);
/** The value of key k, or NULL. */
void *wn_tab_find(const wn_tab_t *t, const void *k, size_t len);
static inline size_t wn_tab_count(const wn_tab_t *t) { return t->n; }
/** Entry i (0 <= i < count), in insertion order. */
void wn_tab_at(const wn_tab_t *t, size_t i, const void **k, size_t *len, void **val);

#endif
