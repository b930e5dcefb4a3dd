/* state_blob.c - see state_blob.h. */
#include "state_blob.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "state.h"

int sl_blob_fail(sl_blob_rd_t *r, const char *fmt, ...) {
  if (r->err && r->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int sl_blob_need(sl_blob_rd_t *r, size_t n, const char *what) {
  if (r->end - r->pos < n)
    return sl_blob_fail(r,
                        "keyed state snapshot truncated: %s at byte %zu needs %zu bytes, %s has "
                        "%zu left",
                        what, r->pos, n, r->scope, r->end - r->pos);
  return 0;
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int sl_blob_u32(sl_blob_rd_t *r, uint32_t *v, const char *what) {
  if (sl_blob_need(r, 4, what)) return -1;
  *v = get32(r->p + r->pos);
  r->pos += 4;
  return 0;
}

int sl_blob_u64(sl_blob_rd_t *r, uint64_t *v, const char *what) {
  if (sl_blob_need(r, 8, what)) return -1;
  *v = get32(r->p + r->pos) | (uint64_t)get32(r->p + r->pos + 4) << 32;
  r->pos += 8;
  return 0;
}

int sl_blob_bytes(sl_blob_rd_t *r, const unsigned char **b, uint32_t *len, const char *what) {
  size_t at = r->pos;
  if (sl_blob_u32(r, len, what)) return -1;
  if (r->end - r->pos < *len)
    return sl_blob_fail(r,
                        "keyed state snapshot corrupt: %s at byte %zu says %u bytes, %s has %zu "
                        "left",
                        what, at, *len, r->scope, r->end - r->pos);
  *b = r->p + r->pos;
  r->pos += *len;
  return 0;
}

/* Header and table of states; fills *states (malloc'd) and *nstates. */
static int read_head(const sl_blob_reader_t *rd, sl_blob_rd_t *r, size_t len, bool apply,
                     sl_blob_state_t **states, uint32_t *nstates) {
  const unsigned char *data = r->p;
  if (len < 8 || memcmp(data, SL_BLOB_MAGIC, 8) != 0) {
    if (len >= 8 && memcmp(data, "SLKS-", 5) == 0)
      return sl_blob_fail(r,
                          "keyed state snapshot written by another backend (magic '%.8s', the "
                          "portable format is '%s')",
                          (const char *)data, SL_BLOB_MAGIC);
    return sl_blob_fail(r, "not a keyed state snapshot (no '%s' magic at byte 0; %zu bytes)",
                        SL_BLOB_MAGIC, len);
  }
  r->pos = 8;
  uint32_t version, maxkg, n;
  if (sl_blob_u32(r, &version, "format version")) return -1;
  if (version != SL_BLOB_VERSION)
    return sl_blob_fail(r, "keyed state snapshot has format version %u at byte 8; this build reads %u",
                        version, SL_BLOB_VERSION);
  if (sl_blob_u32(r, &maxkg, "max_key_groups")) return -1;
  if (maxkg != rd->max_kg)
    return sl_blob_fail(r,
                        "keyed state snapshot was written with max_key_groups %u (byte 12), this "
                        "instance has %u",
                        maxkg, rd->max_kg);
  if (sl_blob_u32(r, &n, "state count")) return -1;
  if (n > SL_BLOB_MAX_STATES)
    return sl_blob_fail(r, "keyed state snapshot corrupt: %u states at byte 16 (at most %u)", n,
                        SL_BLOB_MAX_STATES);
  sl_blob_state_t *rs = calloc(n ? n : 1, sizeof(sl_blob_state_t));
  if (!rs) return sl_blob_fail(r, "out of memory restoring keyed state");
  *states = rs;
  *nstates = n;
  for (uint32_t i = 0; i < n; i++) {
    size_t at = r->pos;
    uint32_t id, kind;
    uint64_t ttl;
    if (sl_blob_u32(r, &id, "state id") || sl_blob_u32(r, &kind, "state kind") ||
        sl_blob_u64(r, &ttl, "state TTL") ||
        sl_blob_bytes(r, &rs[i].name, &rs[i].nlen, "state name"))
      return -1;
    if (id != i)
      return sl_blob_fail(r, "keyed state snapshot corrupt: state %u at byte %zu has id %u", i, at,
                          id);
    if (kind < SL_STATE_VALUE || kind > SL_STATE_MAP)
      return sl_blob_fail(r, "keyed state snapshot corrupt: state %u at byte %zu has kind %u", i,
                          at, kind);
    if ((int64_t)ttl < 0)
      return sl_blob_fail(r, "keyed state snapshot corrupt: state %u at byte %zu has a negative TTL",
                          i, at);
    if (rs[i].nlen == 0 || rs[i].nlen > SL_BLOB_MAX_NAME || memchr(rs[i].name, 0, rs[i].nlen))
      return sl_blob_fail(r,
                          "keyed state snapshot corrupt: state %u at byte %zu has a bad name (%u "
                          "bytes)",
                          i, at, rs[i].nlen);
    rs[i].kind = kind;
    rs[i].ttl = (int64_t)ttl;
    for (uint32_t j = 0; j < i; j++)
      if (rs[j].nlen == rs[i].nlen && memcmp(rs[j].name, rs[i].name, rs[i].nlen) == 0)
        return sl_blob_fail(r, "keyed state snapshot corrupt: state name '%.*s' twice (byte %zu)",
                            (int)rs[i].nlen, (const char *)rs[i].name, at);
    if (rd->state(rd->ctx, r, i, &rs[i], at, apply)) return -1;
  }
  return 0;
}

/* The key groups; those in range go to rd->entry. */
static int read_groups(const sl_blob_reader_t *rd, sl_blob_rd_t *r, const sl_blob_state_t *rs,
                       uint32_t nstates, bool apply, size_t *entries) {
  uint32_t groups;
  size_t gat = r->pos;
  if (sl_blob_u32(r, &groups, "group count")) return -1;
  if (groups > rd->max_kg)
    return sl_blob_fail(r,
                        "keyed state snapshot corrupt: %u key groups at byte %zu (max_key_groups "
                        "%u)",
                        groups, gat, rd->max_kg);
  int64_t prev = -1;
  char scope[48];
  for (uint32_t gi = 0; gi < groups; gi++) {
    size_t at = r->pos;
    uint32_t g, count;
    uint64_t blen;
    if (sl_blob_u32(r, &g, "key group id") || sl_blob_u32(r, &count, "key group entry count") ||
        sl_blob_u64(r, &blen, "key group byte length"))
      return -1;
    if (g >= rd->max_kg || (int64_t)g <= prev)
      return sl_blob_fail(r,
                          "keyed state snapshot corrupt: key group %u at byte %zu (after %lld, "
                          "max %u)",
                          g, at, (long long)prev, rd->max_kg);
    prev = g;
    if (blen > r->end - r->pos)
      return sl_blob_fail(r,
                          "keyed state snapshot truncated: key group %u at byte %zu says %llu "
                          "bytes, %zu are left",
                          g, at, (unsigned long long)blen, r->end - r->pos);
    size_t gend = r->pos + (size_t)blen;
    if (g < rd->kg_begin || g >= rd->kg_end) { /* not ours */
      r->pos = gend;
      continue;
    }
    if (count > blen / 20) /* an entry takes at least 20 bytes */
      return sl_blob_fail(r,
                          "keyed state snapshot corrupt: key group %u at byte %zu: %u entries "
                          "cannot fit in %llu bytes",
                          g, at, count, (unsigned long long)blen);
    if (entries) *entries += count;
    snprintf(scope, sizeof(scope), "key group %u", g);
    sl_blob_rd_t gr = {r->p, r->pos, gend, scope, r->err, r->errlen};
    for (uint32_t k = 0; k < count; k++) {
      if (rd->entry(rd->ctx, &gr, rs, nstates, g, apply)) return -1;
      if (apply && rd->applied && rd->applied(rd->ctx, false, r->err, r->errlen)) return -1;
    }
    if (gr.pos != gend)
      return sl_blob_fail(r,
                          "keyed state snapshot corrupt: key group %u at byte %zu: its %u "
                          "entries end at byte %zu, its length says %zu",
                          g, at, count, gr.pos, gend);
    r->pos = gend;
  }
  return 0;
}

static int read_checksum(sl_blob_rd_t *r, size_t len) {
  size_t at = r->pos;
  uint64_t sum;
  if (sl_blob_u64(r, &sum, "checksum")) return -1;
  if (r->pos != len)
    return sl_blob_fail(r, "keyed state snapshot corrupt: %zu bytes after the checksum at byte %zu",
                        len - r->pos, at);
  uint64_t want = XXH3_64bits(r->p, at);
  if (sum != want)
    return sl_blob_fail(r,
                        "keyed state snapshot corrupt: checksum at byte %zu is %016llx, the %zu "
                        "bytes before it hash to %016llx",
                        at, (unsigned long long)sum, at, (unsigned long long)want);
  return 0;
}

int sl_blob_parse(const sl_blob_reader_t *rd, const unsigned char *data, size_t len, bool apply,
                  size_t *entries, char *err, size_t errlen) {
  sl_blob_rd_t r = {data, 0, len, "the snapshot", err, errlen};
  sl_blob_state_t *rs = NULL;
  uint32_t nstates = 0;
  int rc = -1;
  if (read_head(rd, &r, len, apply, &rs, &nstates) == 0 &&
      read_groups(rd, &r, rs, nstates, apply, entries) == 0) {
    if (apply)
      rc = rd->applied ? rd->applied(rd->ctx, true, err, errlen) : 0;
    else
      rc = read_checksum(&r, len);
  }
  free(rs);
  return rc;
}

int sl_blob_check_kind(sl_blob_rd_t *r, const sl_blob_state_t *st, const struct sl_state *have,
                       bool declared) {
  if (!have || (uint32_t)have->kind == st->kind) return 0;
  return sl_blob_fail(r, "state '%.*s' is a %s state in this snapshot but a %s state %s",
                      (int)st->nlen, (const char *)st->name, sl_state_kind_name(st->kind),
                      sl_state_kind_name(have->kind),
                      declared ? "as declared" : "in a snapshot restored before");
}
