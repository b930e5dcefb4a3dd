/*
 * wn_tab.c - see wn_tab.h. Open addressing, linear probing, power-of-two
 * slots at most half full; keys and values live in one arena.
 */
#include "wn_tab.h"

#include <stdlib.h>
#include <string.h>

#include "wn_hll.h"

void wn_tab_reset(wn_tab_t *t, size_t vsize) {
  if (t->n && t->slots) memset(t->slots, 0, t->slot_cap * sizeof *t->slots);
  t->n = 0;
  t->alen = 0;
  t->vsize = (vsize + 7) & ~(size_t)7;
}

void wn_tab_free(wn_tab_t *t) {
  free(t->ents);
  free(t->slots);
  free(t->arena);
  memset(t, 0, sizeof *t);
}

static size_t find_slot(const wn_tab_t *t, uint64_t h, const void *k, size_t len, int *found) {
  size_t mask = t->slot_cap - 1;
  size_t i = (size_t)(h >> 32) & mask;
  for (;;) {
    uint32_t s = t->slots[i];
    if (!s) {
      *found = 0;
      return i;
    }
    const wn_tab_ent_t *e = &t->ents[s - 1];
    if (e->hash == h && e->klen == len && memcmp(t->arena + e->koff, k, len) == 0) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

static int grow_slots(wn_tab_t *t) {
  size_t cap = t->slot_cap ? t->slot_cap * 2 : 64;
  uint32_t *s = calloc(cap, sizeof *s);
  if (!s) return -1;
  free(t->slots);
  t->slots = s;
  t->slot_cap = cap;
  for (size_t e = 0; e < t->n; e++) {
    size_t i = (size_t)(t->ents[e].hash >> 32) & (cap - 1);
    while (s[i]) i = (i + 1) & (cap - 1);
    s[i] = (uint32_t)(e + 1);
  }
  return 0;
}

static int arena_reserve(wn_tab_t *t, size_t n) {
  if (t->arena && t->acap - t->alen >= n) return 0; /* (always an arena: no NULL + 0) */
  size_t cap = t->acap ? t->acap : 4096;
  while (cap - t->alen < n) cap *= 2;
  unsigned char *a = realloc(t->arena, cap);
  if (!a) return -1;
  t->arena = a;
  t->acap = cap;
  return 0;
}

void *wn_tab_find(const wn_tab_t *t, const void *k, size_t len) {
  if (!t->n) return NULL;
  int found;
  uint64_t h = wn_hash64(k, len, 0);
  size_t i = find_slot(t, h, k, len, &found);
  return found ? t->arena + t->ents[t->slots[i] - 1].voff : NULL;
}

void *wn_tab_upsert(wn_tab_t *t, const void *k, size_t len, int *created) {
  uint64_t h = wn_hash64(k, len, 0);
  int found = 0;
  size_t i = 0;
  if (t->slot_cap) {
    i = find_slot(t, h, k, len, &found);
    if (found) {
      *created = 0;
      return t->arena + t->ents[t->slots[i] - 1].voff;
    }
  }
  if ((t->n + 1) * 2 > t->slot_cap) {
    if (t->n >= UINT32_MAX - 1 || grow_slots(t) != 0) return NULL;
    i = find_slot(t, h, k, len, &found);
  }
  if (t->n == t->ents_cap) {
    size_t cap = t->ents_cap ? t->ents_cap * 2 : 64;
    wn_tab_ent_t *e = realloc(t->ents, cap * sizeof *e);
    if (!e) return NULL;
    t->ents = e;
    t->ents_cap = cap;
  }
  size_t klen8 = (len + 7) & ~(size_t)7;
  if (arena_reserve(t, klen8 + t->vsize) != 0) return NULL;
  wn_tab_ent_t *e = &t->ents[t->n];
  e->hash = h;
  e->koff = t->alen;
  e->klen = len;
  if (len) memcpy(t->arena + t->alen, k, len);
  e->voff = t->alen + klen8;
  if (t->vsize) memset(t->arena + e->voff, 0, t->vsize);
  t->alen += klen8 + t->vsize;
  t->slots[i] = (uint32_t)(t->n + 1);
  t->n++;
  *created = 1;
  return t->arena + e->voff;
}

void wn_tab_at(const wn_tab_t *t, size_t i, const void **k, size_t *len, void **val) {
  const wn_tab_ent_t *e = &t->ents[i];
  *k = t->arena + e->koff;
  *len = e->klen;
  *val = t->arena + e->voff;
}
