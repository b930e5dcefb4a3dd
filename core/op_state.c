/*
 * op_state.c - operator (non-keyed) state of one instance: a few named byte
 * strings (a source's position, a sink's pending transaction). Small by
 * nature, so a plain array; put replaces in place.
 *
 * Serialized form (inside an instance's snapshot file), little-endian:
 *   u32 count, then per entry: u32 name_len, name, u32 value_len, value
 */
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

#define SL_OP_STATE_MAX_ENTRIES 1024
#define SL_OP_STATE_MAX_VALUE (64u << 20) /* a position or a transaction, not a database */

typedef struct op_entry {
  char *name;
  unsigned char *value;
  size_t len;
} op_entry_t;

struct sl_op_state {
  op_entry_t *e;
  uint32_t n;
};

sl_op_state_t *sl_op_state_new(void) { return sl_xcalloc(1, sizeof(sl_op_state_t)); }

void sl_op_state_free(sl_op_state_t *s) {
  if (!s) return;
  for (uint32_t i = 0; i < s->n; i++) {
    free(s->e[i].name);
    free(s->e[i].value);
  }
  free(s->e);
  free(s);
}

int sl_op_state_set(sl_op_state_t *s, const char *name, const void *v, size_t len) {
  if (!name || !*name || (len && !v) || len > SL_OP_STATE_MAX_VALUE) return SL_EINVAL;
  op_entry_t *e = NULL;
  for (uint32_t i = 0; i < s->n; i++)
    if (strcmp(s->e[i].name, name) == 0) e = &s->e[i];
  if (!e) {
    if (s->n >= SL_OP_STATE_MAX_ENTRIES) return SL_EINVAL;
    s->e = sl_xrealloc(s->e, (s->n + 1) * sizeof(op_entry_t));
    e = &s->e[s->n++];
    e->name = sl_xstrdup(name);
    e->value = NULL;
    e->len = 0;
  }
  unsigned char *copy = sl_xmalloc(len ? len : 1);
  if (len) memcpy(copy, v, len);
  free(e->value);
  e->value = copy;
  e->len = len;
  return 0;
}

int sl_op_state_find(const sl_op_state_t *s, const char *name, sl_bytes_t *out) {
  if (s && name)
    for (uint32_t i = 0; i < s->n; i++)
      if (strcmp(s->e[i].name, name) == 0) {
        out->ptr = s->e[i].value;
        out->len = s->e[i].len;
        return 0;
      }
  out->ptr = NULL;
  out->len = 0;
  return SL_ENOTFOUND;
}

void sl_op_state_write(const sl_op_state_t *s, sl_buf_t *out) {
  sl_buf_append_u32(out, s ? s->n : 0);
  for (uint32_t i = 0; s && i < s->n; i++) {
    size_t nl = strlen(s->e[i].name);
    sl_buf_append_u32(out, (uint32_t)nl);
    sl_buf_append(out, s->e[i].name, nl);
    sl_buf_append_u32(out, (uint32_t)s->e[i].len);
    sl_buf_append(out, s->e[i].value, s->e[i].len);
  }
}

static int rd_u32(const unsigned char *p, size_t len, size_t *at, uint32_t *v) {
  if (len - *at < 4) return -1;
  const unsigned char *q = p + *at;
  *v = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
  *at += 4;
  return 0;
}

int sl_op_state_read(sl_op_state_t *s, const unsigned char *p, size_t len, char *err,
                     size_t errlen) {
  size_t at = 0;
  uint32_t n;
  if (rd_u32(p, len, &at, &n) || n > SL_OP_STATE_MAX_ENTRIES) {
    snprintf(err, errlen, "operator state: bad entry count at byte 0");
    return -1;
  }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t nl, vl;
    size_t start = at;
    if (rd_u32(p, len, &at, &nl) || nl == 0 || nl > 4096 || len - at < nl) goto bad;
    char *name = sl_xstrndup((const char *)p + at, nl);
    at += nl;
    if (strlen(name) != nl || rd_u32(p, len, &at, &vl) || len - at < vl) {
      free(name);
      goto bad;
    }
    int rc = sl_op_state_set(s, name, p + at, vl);
    free(name);
    if (rc) goto bad;
    at += vl;
    continue;
  bad:
    snprintf(err, errlen, "operator state: entry %u at byte %zu is truncated or malformed", i,
             start);
    return -1;
  }
  if (at != len) {
    snprintf(err, errlen, "operator state: %zu unexpected bytes after the last entry", len - at);
    return -1;
  }
  return 0;
}
