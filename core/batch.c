/* batch.c - see batch.h. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Default arena chunk: big enough for a full batch of typical JSON events. */
#define SL_ARENA_CHUNK 65536u

static sl_arena_chunk_t *chunk_new(size_t cap) {
  sl_arena_chunk_t *c = sl_xmalloc(sizeof(*c) + cap);
  c->next = NULL;
  c->cap = cap;
  c->used = 0;
  return c;
}

sl_batch_t *sl_batch_new(uint32_t capacity) {
  sl_batch_t *b = sl_xcalloc(1, sizeof(*b));
  b->wm = SL_TS_MIN;
  b->capacity = capacity ? capacity : 1;
  b->records = sl_xcalloc(b->capacity, sizeof(sl_record_t));
  b->flags = sl_xcalloc(b->capacity, 1);
  return b;
}

void sl_batch_free(sl_batch_t *b) {
  if (!b) return;
  sl_arena_chunk_t *c = b->chunks;
  while (c) {
    sl_arena_chunk_t *n = c->next;
    free(c);
    c = n;
  }
  free(b->records);
  free(b->flags);
  free(b);
}

void sl_batch_reset(sl_batch_t *b) {
  b->kind = SL_BATCH_DATA;
  b->wm = SL_TS_MIN;
  b->idle = false;
  b->count = 0;
  b->bytes = 0;
  b->next = NULL;
  for (sl_arena_chunk_t *c = b->chunks; c; c = c->next) c->used = 0;
  b->current = b->chunks;
}

/* Reserve n bytes, 8-byte aligned, from the arena; reuses kept chunks first. */
static unsigned char *arena_alloc(sl_batch_t *b, size_t n) {
  n = (n + 7u) & ~(size_t)7u;
  sl_arena_chunk_t *c = b->current;
  while (c && c->cap - c->used < n) {
    c = c->next;
  }
  if (!c) {
    /* Grow once; the chunk stays with the batch for its next uses. */
    c = chunk_new(n > SL_ARENA_CHUNK ? n : SL_ARENA_CHUNK);
    if (!b->chunks) {
      b->chunks = c;
    } else {
      sl_arena_chunk_t *last = b->current ? b->current : b->chunks;
      while (last->next) last = last->next;
      last->next = c;
    }
  }
  b->current = c;
  unsigned char *p = c->data + c->used;
  c->used += n;
  return p;
}

int sl_batch_append(sl_batch_t *b, const sl_record_t *rec, const void *key, size_t key_len,
                    uint8_t flags) {
  if (b->count >= b->capacity) return SL_AGAIN;
  if (!key) {
    key = rec->key;
    key_len = rec->key_len;
  }
  size_t need = key_len + rec->value_len;
  size_t hdr_bytes = 0;
  for (uint32_t i = 0; i < rec->header_count; i++)
    hdr_bytes += rec->headers[i].name_len + rec->headers[i].value_len;
  need += hdr_bytes + (size_t)rec->header_count * sizeof(sl_header_t) + 8;
  unsigned char *p = arena_alloc(b, need);

  sl_record_t *out = &b->records[b->count];
  out->ts = rec->ts;
  out->offset = rec->offset;
  out->header_count = rec->header_count;
  out->headers = NULL;
  if (rec->header_count) {
    sl_header_t *h = (sl_header_t *)(void *)p;
    p += (size_t)rec->header_count * sizeof(sl_header_t);
    for (uint32_t i = 0; i < rec->header_count; i++) {
      const sl_header_t *src = &rec->headers[i];
      if (src->name_len) memcpy(p, src->name, src->name_len);
      h[i].name = (const char *)p;
      h[i].name_len = src->name_len;
      p += src->name_len;
      if (src->value_len) memcpy(p, src->value, src->value_len);
      h[i].value = p;
      h[i].value_len = src->value_len;
      p += src->value_len;
    }
    out->headers = h;
  }
  if (key_len) memcpy(p, key, key_len);
  out->key = p;
  out->key_len = key_len;
  p += key_len;
  if (rec->value_len) memcpy(p, rec->value, rec->value_len);
  out->value = p;
  out->value_len = rec->value_len;
  b->flags[b->count] = flags;
  b->bytes += key_len + rec->value_len + hdr_bytes;
  b->count++;
  return 0;
}
