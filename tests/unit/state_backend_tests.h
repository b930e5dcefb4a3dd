/*
 * The keyed-state tests every backend must pass (included by
 * test_state_mem.c and test_state_rocksdb.c): operations, TTL, snapshots
 * (consistency while the state keeps changing), restore by key-group range,
 * damaged input, scans of one state over all keys (sl_ks_scan). The
 * including file defines (STATE_TEST_HELPERS_ONLY: only the helpers, for a
 * backend's own tests):
 *   NEW_KS(max_key_groups, begin, end)  a new instance of its backend
 *   EXACT_COUNTS     1 if sl_keyed_state_entries/_bytes are exact
 *   CORRUPT_ROUNDS   rounds of random damage in corrupt_input
 *   CORRUPT_FLIP_STRIDE  bit flips at every n-th byte in corrupt_input
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <xxhash.h>

#include "state.h"

#ifndef NEW_KS
#error "define NEW_KS, EXACT_COUNTS, CORRUPT_ROUNDS and CORRUPT_FLIP_STRIDE first"
#endif

#define G 16u

/* ------------------------------------------------------------ helpers */

typedef struct inst {
  sl_keyed_state_t *ks;
  sl_state_t *v, *l, *m;
} inst_t;

static void inst_declare(inst_t *in) {
  char err[256] = "";
  in->v = sl_keyed_state_declare(in->ks, "v", SL_STATE_VALUE, 0, err, sizeof(err));
  in->l = sl_keyed_state_declare(in->ks, "l", SL_STATE_LIST, 0, err, sizeof(err));
  in->m = sl_keyed_state_declare(in->ks, "m", SL_STATE_MAP, 0, err, sizeof(err));
  assert_non_null(in->v);
  assert_non_null(in->l);
  assert_non_null(in->m);
}

static void inst_open(inst_t *in, uint32_t b, uint32_t e) {
  in->ks = NEW_KS(G, b, e);
  assert_non_null(in->ks);
  inst_declare(in);
}

/* Key i's name in buf (which must outlive the calls) and set as current key. */
static void setk(sl_keyed_state_t *ks, char *buf, int i) {
  int n = snprintf(buf, 32, "key-%d", i);
  sl_keyed_state_set_key(ks, buf, (size_t)n);
}

static uint32_t group_of_key(int i) {
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "key-%d", i);
  return sl_key_group_of(buf, (size_t)n, G);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A canonical text of everything key i has in the three states. */
static void dump_key(inst_t *in, int i, char *out, size_t cap) {
  char kb[32];
  setk(in->ks, kb, i);
  size_t o = 0;
  sl_bytes_t b, mk;
  int rc = sl_ks_get(in->ks, in->v, &b);
  if (rc == 0)
    o += (size_t)snprintf(out + o, cap - o, "v=%.*s|", (int)b.len, (const char *)b.ptr);
  else {
    assert_int_equal(rc, SL_ENOTFOUND);
    o += (size_t)snprintf(out + o, cap - o, "v=-|");
  }
  size_t n = 99;
  assert_int_equal(sl_ks_list_count(in->ks, in->l, &n), 0);
  o += (size_t)snprintf(out + o, cap - o, "l=[");
  for (size_t k = 0; k < n; k++) {
    assert_int_equal(sl_ks_list_get(in->ks, in->l, k, &b), 0);
    o += (size_t)snprintf(out + o, cap - o, "%.*s,", (int)b.len, (const char *)b.ptr);
  }
  assert_int_equal(sl_ks_list_get(in->ks, in->l, n, &b), SL_ENOTFOUND);
  o += (size_t)snprintf(out + o, cap - o, "]|m={");
  char *pairs[256];
  size_t np = 0, cur = 0;
  while ((rc = sl_ks_map_next(in->ks, in->m, &cur, &mk, &b)) == 0) {
    assert_true(np < 256);
    pairs[np] = malloc(mk.len + b.len + 2);
    sprintf(pairs[np], "%.*s:%.*s", (int)mk.len, (const char *)mk.ptr, (int)b.len,
            (const char *)b.ptr);
    np++;
  }
  assert_int_equal(rc, SL_DONE);
  qsort(pairs, np, sizeof(char *), cmp_str);
  for (size_t k = 0; k < np; k++) {
    o += (size_t)snprintf(out + o, cap - o, "%s,", pairs[k]);
    free(pairs[k]);
  }
  snprintf(out + o, cap - o, "}");
  assert_true(o < cap - 2);
}

#define DUMP_CAP 8192
#define EMPTY "v=-|l=[]|m={}"

/* Dumps of keys [0, nkeys) into a new array of strings. */
static char **dump_all(inst_t *in, int nkeys) {
  char **d = calloc((size_t)nkeys, sizeof(char *));
  for (int i = 0; i < nkeys; i++) {
    d[i] = malloc(DUMP_CAP);
    dump_key(in, i, d[i], DUMP_CAP);
  }
  return d;
}

static void dumps_free(char **d, int nkeys) {
  for (int i = 0; i < nkeys; i++) free(d[i]);
  free(d);
}

/* Split [0, G) into p instances as the planner does, restore `blob` into
 * each, and check that their union is `want` (each key in exactly one). */
static void check_restored_union(const sl_buf_t *blob, char **want, int nkeys, uint32_t p) {
  inst_t in[8];
  for (uint32_t c = 0; c < p; c++) {
    uint32_t b = (uint32_t)(((uint64_t)c * G + p - 1) / p);
    uint32_t e = (uint32_t)(((uint64_t)(c + 1) * G + p - 1) / p);
    in[c].ks = NEW_KS(G, b, e);
    char err[256] = "";
    int rc = sl_keyed_state_restore(in[c].ks, blob->data, blob->len, err, sizeof(err));
    if (rc != 0) fail_msg("restore into [%u,%u): %s", b, e, err);
    inst_declare(&in[c]);
  }
  uint64_t total = 0;
  for (uint32_t c = 0; c < p; c++) total += sl_keyed_state_entries(in[c].ks);
  char got[DUMP_CAP];
  uint64_t expect_entries = 0;
  for (int i = 0; i < nkeys; i++) {
    uint32_t g = group_of_key(i);
    for (uint32_t c = 0; c < p; c++) {
      uint32_t b = (uint32_t)(((uint64_t)c * G + p - 1) / p);
      uint32_t e = (uint32_t)(((uint64_t)(c + 1) * G + p - 1) / p);
      dump_key(&in[c], i, got, sizeof(got));
      if (g >= b && g < e) {
        if (strcmp(got, want[i]) != 0)
          fail_msg("key-%d (group %u) in instance %u of %u: got %s, want %s", i, g, c, p, got,
                   want[i]);
      } else {
        assert_string_equal(got, EMPTY);
      }
    }
    /* entries = states with something for the key */
    expect_entries += strncmp(want[i], "v=-|", 4) != 0;
    expect_entries += strstr(want[i], "l=[]") == NULL;
    expect_entries += strstr(want[i], "m={}") == NULL;
  }
  if (EXACT_COUNTS) assert_int_equal(total, expect_entries);
  for (uint32_t c = 0; c < p; c++) sl_keyed_state_free(in[c].ks);
}

static void snap_write(sl_keyed_state_t *ks, sl_buf_t *out) {
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(ks);
  assert_non_null(s);
  char err[256] = "";
  if (sl_state_snapshot_write(s, out, err, sizeof(err)) != 0) fail_msg("write: %s", err);
  sl_state_snapshot_release(s);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Random contents for keys [0, nkeys). */
static void fill_random(inst_t *in, int nkeys, int gen) {
  char kb[32], v[64], mk[32];
  for (int i = 0; i < nkeys; i++) {
    setk(in->ks, kb, i);
    uint64_t r = next_rand();
    if (r % 4 != 0) {
      int n = snprintf(v, sizeof(v), "val-%d-%d-%llu", i, gen, (unsigned long long)(r % 1000));
      assert_int_equal(sl_ks_put(in->ks, in->v, v, (size_t)n), 0);
    }
    int items = (int)(r >> 8) % 5;
    for (int k = 0; k < items; k++) {
      int n = snprintf(v, sizeof(v), "it%d.%d", k, gen);
      assert_int_equal(sl_ks_list_append(in->ks, in->l, v, (size_t)n), 0);
    }
    int pairs = (int)(r >> 16) % 4;
    for (int k = 0; k < pairs; k++) {
      int a = snprintf(mk, sizeof(mk), "f%d", k);
      int n = snprintf(v, sizeof(v), "x%d-%d", i, gen);
      assert_int_equal(sl_ks_map_put(in->ks, in->m, mk, (size_t)a, v, (size_t)n), 0);
    }
  }
}

#ifndef STATE_TEST_HELPERS_ONLY /* the helpers above only, for backend-specific tests */

/* ----------------------------------------------------------- the tests */

static void key_group_matches_router(void **unused) {
  const char *keys[] = {"", "a", "user-17", "some longer key with spaces"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    size_t n = strlen(keys[i]);
    assert_int_equal(sl_key_group_of(keys[i], n, 128), (uint32_t)(XXH3_64bits(keys[i], n) % 128));
    assert_int_equal(sl_key_group_of(keys[i], n, 7), (uint32_t)(XXH3_64bits(keys[i], n) % 7));
  }
  assert_int_equal(sl_key_group_of(NULL, 0, 128), (uint32_t)(XXH3_64bits(NULL, 0) % 128));
}

static void value_ops(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  char kb[32];
  sl_bytes_t b;
  /* No key yet. */
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), SL_ESTATE);
  assert_int_equal(sl_ks_put(in.ks, in.v, "x", 1), SL_ESTATE);
  setk(in.ks, kb, 1);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_put(in.ks, in.v, "hello", 5), 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.ptr, "hello", 5);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(in.ks), 1);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(in.ks), strlen("key-1") + 5);
  /* Smaller, in place; larger, moved; empty value is a value. */
  assert_int_equal(sl_ks_put(in.ks, in.v, "hi", 2), 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), 0);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.ptr, "hi", 2);
  char big[1000];
  memset(big, 'z', sizeof(big));
  assert_int_equal(sl_ks_put(in.ks, in.v, big, sizeof(big)), 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), 0);
  assert_int_equal(b.len, 1000);
  assert_memory_equal(b.ptr, big, 1000);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(in.ks), strlen("key-1") + 1000);
  /* Put of our own bytes (the pointer get returned). */
  assert_int_equal(sl_ks_put(in.ks, in.v, (const char *)b.ptr + 10, 20), 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), 0);
  assert_int_equal(b.len, 20);
  assert_memory_equal(b.ptr, big, 20);
  assert_int_equal(sl_ks_put(in.ks, in.v, NULL, 0), 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), 0);
  assert_int_equal(b.len, 0);
  /* Another key is separate. */
  setk(in.ks, kb, 2);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_put(in.ks, in.v, "two", 3), 0);
  setk(in.ks, kb, 1);
  assert_int_equal(sl_ks_clear(in.ks, in.v), 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_clear(in.ks, in.v), 0); /* idempotent */
  setk(in.ks, kb, 2);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), 0);
  assert_memory_equal(b.ptr, "two", 3);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(in.ks), 1);
  /* An empty key (NULL, 0) is a key too. */
  sl_keyed_state_set_key(in.ks, NULL, 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_put(in.ks, in.v, "e", 1), 0);
  assert_int_equal(sl_ks_get(in.ks, in.v, &b), 0);
  assert_memory_equal(b.ptr, "e", 1);
  sl_keyed_state_free(in.ks);
}

static void many_keys_grow_and_shrink(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  char kb[32], v[32];
  sl_bytes_t b;
  for (int i = 0; i < 20000; i++) {
    setk(in.ks, kb, i);
    int n = snprintf(v, sizeof(v), "v%d", i);
    assert_int_equal(sl_ks_put(in.ks, in.v, v, (size_t)n), 0);
  }
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(in.ks), 20000);
  for (int i = 0; i < 20000; i += 2) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_clear(in.ks, in.v), 0);
  }
  for (int i = 0; i < 20000; i++) {
    setk(in.ks, kb, i);
    int rc = sl_ks_get(in.ks, in.v, &b);
    if (i % 2 == 0) {
      assert_int_equal(rc, SL_ENOTFOUND);
    } else {
      assert_int_equal(rc, 0);
      int n = snprintf(v, sizeof(v), "v%d", i);
      assert_int_equal(b.len, (size_t)n);
      assert_memory_equal(b.ptr, v, (size_t)n);
    }
  }
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(in.ks), 10000);
  sl_keyed_state_free(in.ks);
}

static void wrong_kind_and_foreign_handles(void **unused) {
  inst_t in, other;
  inst_open(&in, 0, G);
  inst_open(&other, 0, G);
  char kb[32];
  setk(in.ks, kb, 1);
  sl_bytes_t b, mk;
  size_t n, cur = 0;
  assert_int_equal(sl_ks_get(in.ks, in.l, &b), SL_EINVAL);
  assert_int_equal(sl_ks_put(in.ks, in.m, "x", 1), SL_EINVAL);
  assert_int_equal(sl_ks_list_append(in.ks, in.v, "x", 1), SL_EINVAL);
  assert_int_equal(sl_ks_list_count(in.ks, in.m, &n), SL_EINVAL);
  assert_int_equal(sl_ks_list_get(in.ks, in.v, 0, &b), SL_EINVAL);
  assert_int_equal(sl_ks_list_trim_front(in.ks, in.m, 1), SL_EINVAL);
  assert_int_equal(sl_ks_map_get(in.ks, in.l, "a", 1, &b), SL_EINVAL);
  assert_int_equal(sl_ks_map_put(in.ks, in.v, "a", 1, "b", 1), SL_EINVAL);
  assert_int_equal(sl_ks_map_remove(in.ks, in.l, "a", 1), SL_EINVAL);
  assert_int_equal(sl_ks_map_next(in.ks, in.v, &cur, &mk, &b), SL_EINVAL);
  assert_int_equal(sl_ks_get(in.ks, NULL, &b), SL_EINVAL);
  assert_int_equal(sl_ks_clear(in.ks, NULL), SL_EINVAL);
  /* A handle of another instance: refused, even if the id exists here. */
  assert_int_equal(sl_ks_get(in.ks, other.v, &b), SL_EINVAL);
  assert_int_equal(sl_ks_put(in.ks, other.v, "x", 1), SL_EINVAL);
  /* No current key in a fresh instance: SL_ESTATE for every kind-correct call. */
  inst_t fresh;
  inst_open(&fresh, 0, G);
  assert_int_equal(sl_ks_get(fresh.ks, fresh.v, &b), SL_ESTATE);
  assert_int_equal(sl_ks_put(fresh.ks, fresh.v, "x", 1), SL_ESTATE);
  assert_int_equal(sl_ks_clear(fresh.ks, fresh.v), SL_ESTATE);
  assert_int_equal(sl_ks_list_append(fresh.ks, fresh.l, "x", 1), SL_ESTATE);
  assert_int_equal(sl_ks_list_count(fresh.ks, fresh.l, &n), SL_ESTATE);
  assert_int_equal(sl_ks_list_get(fresh.ks, fresh.l, 0, &b), SL_ESTATE);
  assert_int_equal(sl_ks_list_trim_front(fresh.ks, fresh.l, 1), SL_ESTATE);
  assert_int_equal(sl_ks_map_get(fresh.ks, fresh.m, "a", 1, &b), SL_ESTATE);
  assert_int_equal(sl_ks_map_put(fresh.ks, fresh.m, "a", 1, "b", 1), SL_ESTATE);
  assert_int_equal(sl_ks_map_remove(fresh.ks, fresh.m, "a", 1), SL_ESTATE);
  assert_int_equal(sl_ks_map_next(fresh.ks, fresh.m, &cur, &mk, &b), SL_ESTATE);
  sl_keyed_state_free(fresh.ks);
  sl_keyed_state_free(in.ks);
  sl_keyed_state_free(other.ks);
}

static void declare_rules(void **unused) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  char err[256] = "";
  sl_state_t *a = sl_keyed_state_declare(ks, "a", SL_STATE_VALUE, 0, err, sizeof(err));
  assert_non_null(a);
  sl_state_t *a2 = sl_keyed_state_declare(ks, "a", SL_STATE_VALUE, 500, err, sizeof(err));
  assert_ptr_equal(a, a2);
  assert_int_equal(a->ttl_ms, 500);
  assert_null(sl_keyed_state_declare(ks, "a", SL_STATE_MAP, 0, err, sizeof(err)));
  assert_non_null(strstr(err, "'a'"));
  assert_non_null(strstr(err, "value"));
  assert_non_null(strstr(err, "map"));
  err[0] = 0;
  assert_null(sl_keyed_state_declare(ks, "", SL_STATE_VALUE, 0, err, sizeof(err)));
  assert_true(err[0] != 0);
  assert_null(sl_keyed_state_declare(ks, NULL, SL_STATE_VALUE, 0, err, sizeof(err)));
  assert_null(sl_keyed_state_declare(ks, "b", (sl_state_kind_t)9, 0, err, sizeof(err)));
  assert_null(sl_keyed_state_declare(ks, "b", SL_STATE_LIST, -1, err, sizeof(err)));
  char longname[1100];
  memset(longname, 'n', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = 0;
  assert_null(sl_keyed_state_declare(ks, longname, SL_STATE_VALUE, 0, err, sizeof(err)));
  sl_state_t *b = sl_keyed_state_declare(ks, "b", SL_STATE_LIST, 0, err, sizeof(err));
  assert_non_null(b);
  assert_int_not_equal(a->id, b->id);
  assert_string_equal(b->name, "b");
  /* Bad ranges. */
  assert_null(NEW_KS(0, 0, 0));
  assert_null(NEW_KS(8, 5, 4));
  assert_null(NEW_KS(8, 0, 9));
  sl_keyed_state_free(ks);
  sl_keyed_state_free(NULL);
}

static void states_share_a_key_separately(void **unused) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  char err[256], kb[32];
  sl_state_t *s[5];
  for (int i = 0; i < 5; i++) {
    char name[8];
    snprintf(name, sizeof(name), "s%d", i);
    s[i] = sl_keyed_state_declare(ks, name, SL_STATE_VALUE, 0, err, sizeof(err));
  }
  setk(ks, kb, 7);
  for (int i = 0; i < 5; i++) {
    char v = (char)('a' + i);
    assert_int_equal(sl_ks_put(ks, s[i], &v, 1), 0);
  }
  sl_bytes_t b;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(sl_ks_get(ks, s[i], &b), 0);
    assert_int_equal(((const char *)b.ptr)[0], 'a' + i);
  }
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), 5);
  assert_int_equal(sl_ks_clear(ks, s[2]), 0);
  assert_int_equal(sl_ks_get(ks, s[2], &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_get(ks, s[3], &b), 0);
  sl_keyed_state_free(ks);
}

static void list_ops(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  char kb[32], v[32];
  sl_bytes_t b;
  size_t n = 99;
  setk(in.ks, kb, 3);
  assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(sl_ks_list_get(in.ks, in.l, 0, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 3), 0);
  for (int i = 0; i < 5; i++) {
    int k = snprintf(v, sizeof(v), "item%d", i);
    assert_int_equal(sl_ks_list_append(in.ks, in.l, v, (size_t)k), 0);
  }
  assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(sl_ks_list_get(in.ks, in.l, 4, &b), 0);
  assert_memory_equal(b.ptr, "item4", 5);
  assert_int_equal(sl_ks_list_get(in.ks, in.l, 5, &b), SL_ENOTFOUND);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(in.ks), strlen("key-3") + 25);
  assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 2), 0);
  assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(sl_ks_list_get(in.ks, in.l, 0, &b), 0);
  assert_memory_equal(b.ptr, "item2", 5);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(in.ks), strlen("key-3") + 15);
  /* Append one of our own values (aliasing). */
  assert_int_equal(sl_ks_list_append(in.ks, in.l, b.ptr, b.len), 0);
  assert_int_equal(sl_ks_list_get(in.ks, in.l, 3, &b), 0);
  assert_memory_equal(b.ptr, "item2", 5);
  assert_int_equal(sl_ks_list_append(in.ks, in.l, NULL, 0), 0); /* an empty item */
  assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(sl_ks_list_get(in.ks, in.l, 4, &b), 0);
  assert_int_equal(b.len, 0);
  /* Trimming everything (or more) removes the entry. */
  assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 100), 0);
  assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
  assert_int_equal(n, 0);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(in.ks), 0);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(in.ks), 0);
  /* "Last 10": a sliding window over 100000 appends stays correct (the dead
   * front is compacted away as it grows). */
  for (int i = 0; i < 100000; i++) {
    int k = snprintf(v, sizeof(v), "t%d", i);
    assert_int_equal(sl_ks_list_append(in.ks, in.l, v, (size_t)k), 0);
    assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
    if (n > 10) assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, n - 10), 0);
  }
  assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
  assert_int_equal(n, 10);
  for (int i = 0; i < 10; i++) {
    int k = snprintf(v, sizeof(v), "t%d", 99990 + i);
    assert_int_equal(sl_ks_list_get(in.ks, in.l, (size_t)i, &b), 0);
    assert_int_equal(b.len, (size_t)k);
    assert_memory_equal(b.ptr, v, (size_t)k);
  }
  assert_int_equal(sl_ks_clear(in.ks, in.l), 0);
  assert_int_equal(sl_ks_list_count(in.ks, in.l, &n), 0);
  assert_int_equal(n, 0);
  sl_keyed_state_free(in.ks);
}

static void map_ops(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  char kb[32], mk[32], v[32];
  sl_bytes_t b, k;
  size_t cur = 0;
  setk(in.ks, kb, 4);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "a", 1, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_map_remove(in.ks, in.m, "a", 1), SL_ENOTFOUND);
  assert_int_equal(sl_ks_map_next(in.ks, in.m, &cur, &k, &b), SL_DONE);
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "a", 1, "1", 1), 0);
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "b", 1, "2", 1), 0);
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "", 0, "empty key", 9), 0);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "a", 1, &b), 0);
  assert_memory_equal(b.ptr, "1", 1);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "", 0, &b), 0);
  assert_memory_equal(b.ptr, "empty key", 9);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "c", 1, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "a", 1, "longer value", 12), 0);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "a", 1, &b), 0);
  assert_memory_equal(b.ptr, "longer value", 12);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(in.ks), strlen("key-4") + 1 + 12 + 1 + 1 + 9);
  assert_int_equal(sl_ks_map_remove(in.ks, in.m, "b", 1), 0);
  assert_int_equal(sl_ks_map_remove(in.ks, in.m, "b", 1), SL_ENOTFOUND);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "b", 1, &b), SL_ENOTFOUND);
  /* Many fields: the nested table grows; iteration sees each once. */
  for (int i = 0; i < 1000; i++) {
    int a = snprintf(mk, sizeof(mk), "field%d", i), c = snprintf(v, sizeof(v), "%d", i * 7);
    assert_int_equal(sl_ks_map_put(in.ks, in.m, mk, (size_t)a, v, (size_t)c), 0);
  }
  char *seen = calloc(1000, 1);
  int count = 0, others = 0, rc;
  cur = 0;
  while ((rc = sl_ks_map_next(in.ks, in.m, &cur, &k, &b)) == 0) {
    count++;
    if (k.len > 5 && memcmp(k.ptr, "field", 5) == 0) {
      char num[32];
      snprintf(num, sizeof(num), "%.*s", (int)(k.len - 5), (const char *)k.ptr + 5);
      int i = atoi(num);
      assert_true(i >= 0 && i < 1000);
      assert_int_equal(seen[i], 0);
      seen[i] = 1;
      snprintf(num, sizeof(num), "%.*s", (int)b.len, (const char *)b.ptr);
      assert_int_equal(atoi(num), i * 7);
    } else {
      others++;
    }
  }
  assert_int_equal(rc, SL_DONE);
  assert_int_equal(count, 1002);
  assert_int_equal(others, 2);
  assert_int_equal(sl_ks_map_next(in.ks, in.m, &cur, &k, &b), SL_DONE); /* stays done */
  free(seen);
  for (int i = 0; i < 1000; i++) {
    int a = snprintf(mk, sizeof(mk), "field%d", i);
    assert_int_equal(sl_ks_map_remove(in.ks, in.m, mk, (size_t)a), 0);
  }
  assert_int_equal(sl_ks_map_remove(in.ks, in.m, "a", 1), 0);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(in.ks), 1);
  assert_int_equal(sl_ks_map_remove(in.ks, in.m, "", 0), 0);
  /* The last field gone: the entry goes. */
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(in.ks), 0);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(in.ks), 0);
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "z", 1, "9", 1), 0);
  assert_int_equal(sl_ks_clear(in.ks, in.m), 0);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "z", 1, &b), SL_ENOTFOUND);
  sl_keyed_state_free(in.ks);
}

static void ttl_expiry(void **unused) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  char err[256], kb[32];
  sl_state_t *v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 100, err, sizeof(err));
  sl_state_t *l = sl_keyed_state_declare(ks, "l", SL_STATE_LIST, 100, err, sizeof(err));
  sl_state_t *m = sl_keyed_state_declare(ks, "m", SL_STATE_MAP, 100, err, sizeof(err));
  sl_state_t *forever = sl_keyed_state_declare(ks, "f", SL_STATE_VALUE, 0, err, sizeof(err));
  sl_bytes_t b, k;
  size_t n, cur = 0;
  sl_keyed_state_set_now(ks, 1000);
  setk(ks, kb, 1);
  assert_int_equal(sl_ks_put(ks, v, "x", 1), 0);
  assert_int_equal(sl_ks_list_append(ks, l, "i", 1), 0);
  assert_int_equal(sl_ks_map_put(ks, m, "k", 1, "v", 1), 0);
  assert_int_equal(sl_ks_put(ks, forever, "f", 1), 0);
  sl_keyed_state_set_now(ks, 1099);
  assert_int_equal(sl_ks_get(ks, v, &b), 0);
  assert_int_equal(sl_ks_list_count(ks, l, &n), 0);
  assert_int_equal(n, 1);
  /* A write refreshes: v and l written at 1099, m not. */
  assert_int_equal(sl_ks_put(ks, v, "y", 1), 0);
  assert_int_equal(sl_ks_list_append(ks, l, "j", 1), 0);
  sl_keyed_state_set_now(ks, 1100);
  assert_int_equal(sl_ks_map_get(ks, m, "k", 1, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_map_next(ks, m, &cur, &k, &b), SL_DONE);
  assert_int_equal(sl_ks_get(ks, v, &b), 0);
  assert_memory_equal(b.ptr, "y", 1);
  sl_keyed_state_set_now(ks, 1198);
  assert_int_equal(sl_ks_list_count(ks, l, &n), 0);
  assert_int_equal(n, 2);
  sl_keyed_state_set_now(ks, 1200);
  assert_int_equal(sl_ks_get(ks, v, &b), SL_ENOTFOUND);
  assert_int_equal(sl_ks_list_count(ks, l, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(sl_ks_list_get(ks, l, 0, &b), SL_ENOTFOUND);
  /* An expired list appended to starts over. */
  sl_keyed_state_set_now(ks, 5000);
  assert_int_equal(sl_ks_list_append(ks, l, "new", 3), 0);
  assert_int_equal(sl_ks_list_count(ks, l, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(sl_ks_get(ks, forever, &b), 0);
  /* Keys never read again are swept by later writes. */
  for (int i = 100; i < 1100; i++) {
    setk(ks, kb, i);
    assert_int_equal(sl_ks_put(ks, v, "z", 1), 0);
  }
  if (EXACT_COUNTS) assert_true(sl_keyed_state_entries(ks) >= 1000);
  sl_keyed_state_set_now(ks, 10000);
  setk(ks, kb, 5);
  for (int i = 0; i < 4000; i++) assert_int_equal(sl_ks_put(ks, v, "w", 1), 0);
  /* Left: key-1's forever value and key-5's fresh value. */
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), 2);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(ks), strlen("key-1") + 1 + strlen("key-5") + 1);
  sl_keyed_state_free(ks);
}

static void ttl_survives_restore_and_expired_left_out(void **unused) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  char err[256], kb[32];
  sl_state_t *v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 100, err, sizeof(err));
  sl_keyed_state_set_now(ks, 1000);
  setk(ks, kb, 1);
  assert_int_equal(sl_ks_put(ks, v, "old", 3), 0);
  sl_keyed_state_set_now(ks, 1050);
  setk(ks, kb, 2);
  assert_int_equal(sl_ks_put(ks, v, "new", 3), 0);
  sl_keyed_state_set_now(ks, 1120); /* key-1 expired, key-2 lives until 1150 */
  sl_buf_t blob = {0};
  snap_write(ks, &blob);
  sl_keyed_state_free(ks);

  ks = NEW_KS(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(ks, blob.data, blob.len, err, sizeof(err)), 0);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), 1);
  v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 100, err, sizeof(err));
  sl_bytes_t b;
  sl_keyed_state_set_now(ks, 1149);
  setk(ks, kb, 1);
  assert_int_equal(sl_ks_get(ks, v, &b), SL_ENOTFOUND);
  setk(ks, kb, 2);
  assert_int_equal(sl_ks_get(ks, v, &b), 0);
  assert_memory_equal(b.ptr, "new", 3);
  sl_keyed_state_set_now(ks, 1150);
  assert_int_equal(sl_ks_get(ks, v, &b), SL_ENOTFOUND);
  sl_keyed_state_free(ks);
  sl_buf_free(&blob);
}

static void snapshot_round_trip_split(void **unused) {
  const int nkeys = 3000;
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, nkeys, 1);
  /* Lists with a trimmed front, a map that lost fields, cleared values. */
  char kb[32];
  for (int i = 0; i < nkeys; i += 3) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 1), 0);
    sl_ks_map_remove(in.ks, in.m, "f0", 2);
    if (i % 2) assert_int_equal(sl_ks_clear(in.ks, in.v), 0);
  }
  char **want = dump_all(&in, nkeys);
  sl_buf_t blob = {0};
  snap_write(in.ks, &blob);
  for (uint32_t p = 1; p <= 4; p *= 2) check_restored_union(&blob, want, nkeys, p);
  /* The same snapshot restored twice: the second copy replaces the first. */
  {
    inst_t twice;
    twice.ks = NEW_KS(G, 0, G);
    assert_int_equal(sl_keyed_state_restore(twice.ks, blob.data, blob.len, NULL, 0), 0);
    uint64_t entries = sl_keyed_state_entries(twice.ks), bytes = sl_keyed_state_bytes(twice.ks);
    assert_int_equal(sl_keyed_state_restore(twice.ks, blob.data, blob.len, NULL, 0), 0);
    if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(twice.ks), entries);
    if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_bytes(twice.ks), bytes);
    inst_declare(&twice);
    char got[DUMP_CAP];
    for (int i = 0; i < nkeys; i += 7) {
      dump_key(&twice, i, got, sizeof(got));
      assert_string_equal(got, want[i]);
    }
    sl_keyed_state_free(twice.ks);
  }
  /* The blob appends: what is before it stays. */
  sl_buf_t two = {0};
  sl_buf_append(&two, "prefix", 6);
  snap_write(in.ks, &two);
  assert_int_equal(two.len, 6 + blob.len);
  assert_memory_equal(two.data, "prefix", 6);
  assert_memory_equal(two.data + 6, blob.data, blob.len);
  sl_buf_free(&two);

  /* Several snapshots into one instance: written by 4 instances, read by 2. */
  inst_t parts[4];
  sl_buf_t pblob[4] = {{0}};
  for (uint32_t c = 0; c < 4; c++) {
    uint32_t b = c * G / 4, e = (c + 1) * G / 4;
    parts[c].ks = NEW_KS(G, b, e);
    assert_int_equal(sl_keyed_state_restore(parts[c].ks, blob.data, blob.len, NULL, 0), 0);
    inst_declare(&parts[c]);
    snap_write(parts[c].ks, &pblob[c]);
  }
  inst_t half[2];
  for (uint32_t h = 0; h < 2; h++) {
    half[h].ks = NEW_KS(G, h * G / 2, (h + 1) * G / 2);
    for (int c = 3; c >= 0; c--) { /* any order */
      char err[256] = "";
      if (sl_keyed_state_restore(half[h].ks, pblob[c].data, pblob[c].len, err, sizeof(err)))
        fail_msg("%s", err);
    }
    inst_declare(&half[h]);
  }
  char got[DUMP_CAP];
  for (int i = 0; i < nkeys; i++) {
    uint32_t h = group_of_key(i) < G / 2 ? 0 : 1;
    dump_key(&half[h], i, got, sizeof(got));
    assert_string_equal(got, want[i]);
    dump_key(&half[1 - h], i, got, sizeof(got));
    assert_string_equal(got, EMPTY);
  }
  for (int c = 0; c < 4; c++) {
    sl_keyed_state_free(parts[c].ks);
    sl_buf_free(&pblob[c]);
  }
  sl_keyed_state_free(half[0].ks);
  sl_keyed_state_free(half[1].ks);
  dumps_free(want, nkeys);
  sl_buf_free(&blob);
  sl_keyed_state_free(in.ks);
}

static void empty_snapshot(void **unused) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  sl_buf_t blob = {0};
  snap_write(ks, &blob);
  assert_memory_equal(blob.data, "SLKS-MEM", 8);
  sl_keyed_state_t *r = NEW_KS(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(r, blob.data, blob.len, NULL, 0), 0);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(r), 0);
  sl_keyed_state_free(r);
  sl_keyed_state_free(ks);
  sl_buf_free(&blob);
}

static void undeclared_state_is_kept(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, 200, 2);
  char **want = dump_all(&in, 200);
  sl_buf_t blob = {0};
  snap_write(in.ks, &blob);
  sl_keyed_state_free(in.ks);

  /* Restored, only "v" declared, snapshotted again. */
  sl_keyed_state_t *mid = NEW_KS(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(mid, blob.data, blob.len, NULL, 0), 0);
  char err[256];
  assert_non_null(sl_keyed_state_declare(mid, "v", SL_STATE_VALUE, 0, err, sizeof(err)));
  sl_buf_t blob2 = {0};
  snap_write(mid, &blob2);
  sl_keyed_state_free(mid);
  /* The list and the map are still there for a later version that declares them. */
  check_restored_union(&blob2, want, 200, 1);
  check_restored_union(&blob2, want, 200, 2);
  dumps_free(want, 200);
  sl_buf_free(&blob);
  sl_buf_free(&blob2);
}

static void kind_mismatch(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, 50, 3);
  sl_buf_t blob = {0};
  snap_write(in.ks, &blob);
  sl_keyed_state_free(in.ks);

  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(ks, blob.data, blob.len, NULL, 0), 0);
  char err[256] = "";
  assert_null(sl_keyed_state_declare(ks, "l", SL_STATE_MAP, 0, err, sizeof(err)));
  assert_non_null(strstr(err, "'l'"));
  assert_non_null(strstr(err, "restored"));
  assert_non_null(sl_keyed_state_declare(ks, "l", SL_STATE_LIST, 0, err, sizeof(err)));
  sl_keyed_state_free(ks);

  /* Declared first with another kind, then restored: the restore refuses. */
  ks = NEW_KS(G, 0, G);
  assert_non_null(sl_keyed_state_declare(ks, "v", SL_STATE_LIST, 0, err, sizeof(err)));
  assert_int_equal(sl_keyed_state_restore(ks, blob.data, blob.len, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "'v'"));
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), 0);
  sl_keyed_state_free(ks);

  /* Two snapshots that disagree on a kind. */
  sl_keyed_state_t *o = NEW_KS(G, 0, G);
  sl_state_t *ov = sl_keyed_state_declare(o, "v", SL_STATE_MAP, 0, err, sizeof(err));
  char kb[32];
  setk(o, kb, 1);
  assert_int_equal(sl_ks_map_put(o, ov, "a", 1, "b", 1), 0);
  sl_buf_t other = {0};
  snap_write(o, &other);
  sl_keyed_state_free(o);
  ks = NEW_KS(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(ks, blob.data, blob.len, err, sizeof(err)), 0);
  uint64_t before = sl_keyed_state_entries(ks);
  assert_int_equal(sl_keyed_state_restore(ks, other.data, other.len, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "'v'"));
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), before);
  sl_keyed_state_free(ks);
  sl_buf_free(&other);
  sl_buf_free(&blob);
}

/* A small snapshot with every kind, a TTL and several key groups. */
static void small_blob(sl_buf_t *blob) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  char err[256], kb[32];
  sl_state_t *v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 1000, err, sizeof(err));
  sl_state_t *l = sl_keyed_state_declare(ks, "l", SL_STATE_LIST, 0, err, sizeof(err));
  sl_state_t *m = sl_keyed_state_declare(ks, "m", SL_STATE_MAP, 0, err, sizeof(err));
  sl_keyed_state_set_now(ks, 5);
  for (int i = 0; i < 4; i++) {
    setk(ks, kb, i);
    assert_int_equal(sl_ks_put(ks, v, "val", 3), 0);
    assert_int_equal(sl_ks_list_append(ks, l, "a", 1), 0);
    assert_int_equal(sl_ks_list_append(ks, l, "bc", 2), 0);
    assert_int_equal(sl_ks_map_put(ks, m, "k", 1, "v", 1), 0);
  }
  snap_write(ks, blob);
  sl_keyed_state_free(ks);
}

static void fix_checksum(unsigned char *d, size_t len) {
  if (len < 8) return;
  uint64_t h = XXH3_64bits(d, len - 8);
  for (int i = 0; i < 8; i++) d[len - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void corrupt_input(void **unused) {
  sl_buf_t blob = {0};
  small_blob(&blob);
  char err[256];
  /* Truncated at every offset: -1, a message with a byte offset, nothing kept. */
  for (size_t k = 0; k < blob.len; k++) {
    unsigned char *cut = malloc(k ? k : 1); /* exact size: ASan sees any overread */
    memcpy(cut, blob.data, k);
    sl_keyed_state_t *ks = NEW_KS(G, 0, G);
    err[0] = 0;
    int rc = sl_keyed_state_restore(ks, cut, k, err, sizeof(err));
    if (rc != -1) fail_msg("truncated at %zu of %zu: restore returned %d", k, blob.len, rc);
    assert_true(err[0] != 0);
    if (k >= 8) assert_non_null(strstr(err, "byte"));
    if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), 0);
    sl_keyed_state_free(ks);
    free(cut);
  }
  /* Flipped bits: -1 (the checksum catches what the structure does not). */
  static const unsigned char flips[] = {0x01, 0x80, 0xff};
  for (size_t k = 0; k < blob.len; k += CORRUPT_FLIP_STRIDE)
    for (size_t f = 0; f < sizeof(flips); f++) {
      unsigned char *bad = malloc(blob.len);
      memcpy(bad, blob.data, blob.len);
      bad[k] ^= flips[f];
      sl_keyed_state_t *ks = NEW_KS(G, 0, G);
      assert_int_equal(sl_keyed_state_restore(ks, bad, blob.len, err, sizeof(err)), -1);
      if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), 0);
      /* The same with the checksum made right: the parser itself must hold. */
      fix_checksum(bad, blob.len);
      int rc = sl_keyed_state_restore(ks, bad, blob.len, err, sizeof(err));
      assert_true(rc == 0 || rc == -1);
      if (rc == 0) { /* whatever it holds must work */
        sl_buf_t again = {0};
        snap_write(ks, &again);
        sl_buf_free(&again);
      }
      sl_keyed_state_free(ks);
      free(bad);
    }
  /* Random multi-byte damage with a good checksum. */
  uint64_t r = 12345;
  for (int it = 0; it < CORRUPT_ROUNDS; it++) {
    unsigned char *bad = malloc(blob.len);
    memcpy(bad, blob.data, blob.len);
    for (int k = 0; k < 1 + it % 4; k++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      bad[(r >> 33) % blob.len] = (unsigned char)(r >> 20);
    }
    fix_checksum(bad, blob.len);
    sl_keyed_state_t *ks = NEW_KS(G, 0, G);
    int rc = sl_keyed_state_restore(ks, bad, blob.len, err, sizeof(err));
    assert_true(rc == 0 || rc == -1);
    sl_keyed_state_free(ks);
    free(bad);
  }
  /* Precise messages. */
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(ks, "garbage!garbage!", 16, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "magic"));
  unsigned char *bad = malloc(blob.len);
  memcpy(bad, blob.data, blob.len);
  memcpy(bad, "SLKS-RDB", 8);
  assert_int_equal(sl_keyed_state_restore(ks, bad, blob.len, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "another backend"));
  memcpy(bad, blob.data, blob.len);
  bad[blob.len - 1] ^= 1;
  assert_int_equal(sl_keyed_state_restore(ks, bad, blob.len, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "checksum"));
  free(bad);
  sl_keyed_state_t *other = NEW_KS(G * 2, 0, G * 2);
  assert_int_equal(sl_keyed_state_restore(other, blob.data, blob.len, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "max_key_groups"));
  sl_keyed_state_free(other);
  assert_int_equal(sl_keyed_state_restore(ks, blob.data, blob.len - 3, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "truncated"));
  assert_int_equal(sl_keyed_state_restore(ks, NULL, 0, err, sizeof(err)), -1);
  /* And the intact blob still restores. */
  assert_int_equal(sl_keyed_state_restore(ks, blob.data, blob.len, err, sizeof(err)), 0);
  if (EXACT_COUNTS) assert_int_equal(sl_keyed_state_entries(ks), 12);
  sl_keyed_state_free(ks);
  sl_buf_free(&blob);
}

/* Begin, then change a lot (update, grow, delete, add, trim, map edits,
 * TTL expiry): the snapshot written afterwards is the state at begin, and
 * the live state is the state after. */
static void snapshot_is_consistent_under_cow(void **unused) {
  const int nkeys = 4000, added = 1500;
  inst_t in;
  inst_open(&in, 0, G);
  char err[256], kb[32], v[300];
  sl_state_t *t = sl_keyed_state_declare(in.ks, "t", SL_STATE_VALUE, 50, err, sizeof(err));
  sl_keyed_state_set_now(in.ks, 100);
  fill_random(&in, nkeys, 4);
  for (int i = 0; i < nkeys; i += 5) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_put(in.ks, t, "ttl", 3), 0);
  }
  char **at_begin = dump_all(&in, nkeys + added);
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(in.ks);
  assert_non_null(s);
  assert_null(sl_keyed_state_snapshot_begin(in.ks)); /* one at a time */
  /* Modify everything in every way. */
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < nkeys + added; i++) {
      setk(in.ks, kb, i);
      uint64_t r = next_rand();
      switch (r % 8) {
      case 0:
        sl_ks_clear(in.ks, in.v);
        break;
      case 1: {
        int n = snprintf(v, sizeof(v), "%0*d", (int)(r >> 8) % 250, i); /* often bigger */
        assert_int_equal(sl_ks_put(in.ks, in.v, v, (size_t)n), 0);
        break;
      }
      case 2:
        assert_int_equal(sl_ks_list_append(in.ks, in.l, "more", 4), 0);
        break;
      case 3:
        assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 1), 0);
        break;
      case 4:
        assert_int_equal(sl_ks_map_put(in.ks, in.m, "f1", 2, "changed", 7), 0);
        break;
      case 5:
        sl_ks_map_remove(in.ks, in.m, "f0", 2);
        break;
      case 6:
        sl_ks_clear(in.ks, in.l);
        sl_ks_clear(in.ks, in.m);
        break;
      default:
        assert_int_equal(sl_ks_put(in.ks, in.v, "x", 1), 0); /* fits: in place unless frozen */
      }
    }
  /* Time passes: the TTL entries expire and are swept while frozen. */
  sl_keyed_state_set_now(in.ks, 1000);
  for (int i = 0; i < 20000; i++) {
    setk(in.ks, kb, i % 7);
    assert_int_equal(sl_ks_put(in.ks, in.v, "sweep", 5), 0);
  }
  char **after = dump_all(&in, nkeys + added);
  sl_buf_t blob = {0};
  assert_int_equal(sl_state_snapshot_write(s, &blob, err, sizeof(err)), 0);
  sl_state_snapshot_release(s);
  /* The live state is intact after the deferred entries are freed. */
  setk(in.ks, kb, 0);
  sl_bytes_t b;
  sl_ks_get(in.ks, in.v, &b);
  char got[DUMP_CAP];
  for (int i = 0; i < nkeys + added; i++) {
    dump_key(&in, i, got, sizeof(got));
    assert_string_equal(got, after[i]);
  }
  /* The snapshot: the state at begin, read at the time of begin. */
  inst_t r;
  r.ks = NEW_KS(G, 0, G);
  assert_int_equal(sl_keyed_state_restore(r.ks, blob.data, blob.len, err, sizeof(err)), 0);
  inst_declare(&r);
  sl_state_t *rt = sl_keyed_state_declare(r.ks, "t", SL_STATE_VALUE, 50, err, sizeof(err));
  sl_keyed_state_set_now(r.ks, 100);
  for (int i = 0; i < nkeys + added; i++) {
    dump_key(&r, i, got, sizeof(got));
    if (strcmp(got, at_begin[i]) != 0) fail_msg("key-%d: got %s, want %s", i, got, at_begin[i]);
    setk(r.ks, kb, i);
    assert_int_equal(sl_ks_get(r.ks, rt, &b), i % 5 == 0 && i < nkeys ? 0 : SL_ENOTFOUND);
  }
  /* A second snapshot now works, and holds the state after. */
  sl_buf_t blob2 = {0};
  snap_write(in.ks, &blob2);
  check_restored_union(&blob2, after, nkeys + added, 4);
  sl_keyed_state_free(r.ks);
  dumps_free(at_begin, nkeys + added);
  dumps_free(after, nkeys + added);
  sl_buf_free(&blob);
  sl_buf_free(&blob2);
  sl_keyed_state_free(in.ks);
}

/* A map iteration cursor survives a copy-on-write of the map. */
static void map_cursor_survives_cow(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  char kb[32], mk[16];
  setk(in.ks, kb, 1);
  for (int i = 0; i < 50; i++) {
    int n = snprintf(mk, sizeof(mk), "k%d", i);
    assert_int_equal(sl_ks_map_put(in.ks, in.m, mk, (size_t)n, "v", 1), 0);
  }
  size_t cur = 0;
  sl_bytes_t k, b;
  int seen = 0;
  for (int i = 0; i < 10; i++, seen++)
    assert_int_equal(sl_ks_map_next(in.ks, in.m, &cur, &k, &b), 0);
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(in.ks);
  setk(in.ks, kb, 2);
  assert_int_equal(sl_ks_put(in.ks, in.v, "x", 1), 0);
  setk(in.ks, kb, 1);
  /* Values change (allowed), copying the frozen map. */
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "k0", 2, "w", 1), 0);
  while (sl_ks_map_next(in.ks, in.m, &cur, &k, &b) == 0) seen++;
  assert_int_equal(seen, 50);
  sl_state_snapshot_release(s); /* released without being written */
  sl_keyed_state_free(in.ks);
}

/* ks freed before the snapshot is released: the snapshot still writes, and
 * frees the entries it was handed. */
static void free_before_release(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, 300, 5);
  char **want = dump_all(&in, 300);
  sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(in.ks);
  char kb[32];
  for (int i = 0; i < 300; i += 2) { /* some copies, some deferred */
    setk(in.ks, kb, i);
    sl_ks_put(in.ks, in.v, "changed", 7);
    sl_ks_clear(in.ks, in.l);
  }
  for (int i = 300; i < 400; i++) {
    setk(in.ks, kb, i);
    sl_ks_put(in.ks, in.v, "new", 3);
  }
  sl_keyed_state_free(in.ks);
  sl_buf_t blob = {0};
  char err[256];
  assert_int_equal(sl_state_snapshot_write(s, &blob, err, sizeof(err)), 0);
  sl_state_snapshot_release(s);
  check_restored_union(&blob, want, 300, 2);
  dumps_free(want, 300);
  sl_buf_free(&blob);
  sl_state_snapshot_release(NULL);
}

/* The snapshot's pointer buffer is reused; many cycles leak nothing (ASan). */
static void repeated_snapshots(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  char kb[32];
  for (int c = 0; c < 20; c++) {
    fill_random(&in, 500 + c * 50, c);
    sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(in.ks);
    assert_non_null(s);
    for (int i = 0; i < 300; i++) {
      setk(in.ks, kb, i);
      sl_ks_clear(in.ks, in.m);
    }
    sl_buf_t blob = {0};
    assert_int_equal(sl_state_snapshot_write(s, &blob, NULL, 0), 0);
    sl_state_snapshot_release(s);
    sl_buf_free(&blob);
  }
  sl_keyed_state_free(in.ks);
}

/* Entries replaced under one snapshot are freed a few per call after its
 * release; a second snapshot taken before they are all gone is still exact. */
static void garbage_across_snapshots(void **unused) {
  const int nkeys = 5000;
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, nkeys, 6);
  char kb[32], v[32];
  for (int c = 0; c < 3; c++) {
    sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(in.ks);
    assert_non_null(s);
    /* The first time every key is copied; later, a few keys only, so that
     * the previous garbage is not gone yet when this snapshot is released. */
    for (int i = 0; i < (c == 0 ? nkeys : 10); i++) {
      setk(in.ks, kb, i);
      int n = snprintf(v, sizeof(v), "c%d-%d", c, i);
      assert_int_equal(sl_ks_put(in.ks, in.v, v, (size_t)n), 0);
      assert_int_equal(sl_ks_list_append(in.ks, in.l, v, (size_t)n), 0);
    }
    sl_state_snapshot_release(s);
    setk(in.ks, kb, 0);
    size_t cnt;
    assert_int_equal(sl_ks_list_count(in.ks, in.l, &cnt), 0); /* sees the release */
  }
  char **want = dump_all(&in, nkeys);
  sl_buf_t blob = {0};
  snap_write(in.ks, &blob);
  check_restored_union(&blob, want, nkeys, 2);
  dumps_free(want, nkeys);
  sl_buf_free(&blob);
  sl_keyed_state_free(in.ks); /* frees what garbage is left (LeakSanitizer checks) */
}

/* ------------------------------------------------------ sl_ks_scan */

/* Rows "key|+mk|value" (map) or "key|-|value", in the order seen; seq
 * keeps that order for the elements of one list. Keys, map keys and values
 * of these tests hold no '|'. */
typedef struct srow {
  char *s;
  size_t seq;
} srow_t;

typedef struct rows {
  srow_t *r;
  size_t n, cap;
} rows_t;

static void rows_push(rows_t *rs, char *s) { /* takes s */
  if (rs->n == rs->cap) {
    rs->cap = rs->cap ? rs->cap * 2 : 256;
    rs->r = realloc(rs->r, rs->cap * sizeof(srow_t));
    assert_non_null(rs->r);
  }
  rs->r[rs->n].s = s;
  rs->r[rs->n].seq = rs->n;
  rs->n++;
}

static void rows_add(rows_t *rs, const void *key, size_t klen, const void *mk, size_t mklen,
                     const void *v, size_t vlen) {
  size_t cap = klen + mklen + vlen + 8;
  char *s = malloc(cap);
  assert_non_null(s);
  int n = snprintf(s, cap, "%.*s|%c%.*s|%.*s", (int)klen, key ? (const char *)key : "",
                   mk ? '+' : '-', (int)mklen, mk ? (const char *)mk : "", (int)vlen,
                   v ? (const char *)v : "");
  assert_int_equal((size_t)n, klen + mklen + vlen + 3);
  rows_push(rs, s);
}

static void rows_free(rows_t *rs) {
  for (size_t i = 0; i < rs->n; i++) free(rs->r[i].s);
  free(rs->r);
  memset(rs, 0, sizeof(*rs));
}

static int cmp_row(const void *a, const void *b) {
  return strcmp(((const srow_t *)a)->s, ((const srow_t *)b)->s);
}

/* By key, then in the order seen: a list's elements must come in list order. */
static int cmp_row_key_seq(const void *a, const void *b) {
  const srow_t *x = a, *y = b;
  size_t xl = strcspn(x->s, "|"), yl = strcspn(y->s, "|");
  int c = memcmp(x->s, y->s, xl < yl ? xl : yl);
  if (c == 0 && xl != yl) c = xl < yl ? -1 : 1;
  if (c) return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The same rows, each exactly once (lists: in the same order per key). */
static void rows_check(rows_t *got, rows_t *want, bool ordered) {
  int (*cmp)(const void *, const void *) = ordered ? cmp_row_key_seq : cmp_row;
  if (got->n) qsort(got->r, got->n, sizeof(srow_t), cmp);
  if (want->n) qsort(want->r, want->n, sizeof(srow_t), cmp);
  for (size_t i = 0; i < got->n && i < want->n; i++)
    if (strcmp(got->r[i].s, want->r[i].s) != 0)
      fail_msg("scan row %zu: got %s, want %s (%zu rows, %zu wanted)", i, got->r[i].s,
               want->r[i].s, got->n, want->n);
  assert_int_equal(got->n, want->n);
}

typedef struct scan_ctx {
  rows_t rows;
  size_t calls;
  size_t stop_at; /* return stop_rc from this call on (1-based); 0: never */
  int stop_rc;
} scan_ctx_t;

static int scan_collect(void *arg, const void *key, size_t klen, const void *mk, size_t mklen,
                        const void *v, size_t vlen) {
  scan_ctx_t *c = arg;
  c->calls++;
  assert_true(klen == 0 || key != NULL);
  assert_true(vlen == 0 || v != NULL);
  if (!mk) assert_int_equal(mklen, 0);
  rows_add(&c->rows, key, klen, mk, mklen, v, vlen);
  return c->stop_at && c->calls >= c->stop_at ? c->stop_rc : 0;
}

/* Every row of st in ks; the scan must return 0. */
static void scan_all(sl_keyed_state_t *ks, sl_state_t *st, rows_t *out) {
  scan_ctx_t c = {0};
  int rc = sl_ks_scan(ks, st, scan_collect, &c);
  if (rc != 0) fail_msg("sl_ks_scan: %d", rc);
  assert_int_equal(c.calls, c.rows.n);
  *out = c.rows;
}

/* The rows a scan of each of the three states should see, read through
 * the ordinary calls on keys [0, nkeys). */
static void model_rows(inst_t *in, int nkeys, rows_t *v, rows_t *l, rows_t *m) {
  char kb[32];
  sl_bytes_t b, mk;
  for (int i = 0; i < nkeys; i++) {
    setk(in->ks, kb, i);
    size_t klen = strlen(kb);
    if (sl_ks_get(in->ks, in->v, &b) == 0) rows_add(v, kb, klen, NULL, 0, b.ptr, b.len);
    size_t n = 0;
    assert_int_equal(sl_ks_list_count(in->ks, in->l, &n), 0);
    for (size_t k = 0; k < n; k++) {
      assert_int_equal(sl_ks_list_get(in->ks, in->l, k, &b), 0);
      rows_add(l, kb, klen, NULL, 0, b.ptr, b.len);
    }
    size_t cur = 0;
    int rc;
    while ((rc = sl_ks_map_next(in->ks, in->m, &cur, &mk, &b)) == 0)
      rows_add(m, kb, klen, mk.ptr, mk.len, b.ptr, b.len);
    assert_int_equal(rc, SL_DONE);
  }
}

/* Scans of v, l and m of `in` against model_rows. */
static void check_scans(inst_t *in, int nkeys) {
  rows_t mv = {0}, ml = {0}, mm = {0}, got;
  model_rows(in, nkeys, &mv, &ml, &mm);
  scan_all(in->ks, in->v, &got);
  rows_check(&got, &mv, false);
  rows_free(&got);
  scan_all(in->ks, in->l, &got);
  rows_check(&got, &ml, true);
  rows_free(&got);
  scan_all(in->ks, in->m, &got);
  rows_check(&got, &mm, false);
  rows_free(&got);
  rows_free(&mv);
  rows_free(&ml);
  rows_free(&mm);
}

/* A map state of many keys, several fields each, next to other states
 * (declared before and after it) that share the keys and the map keys:
 * every (key, map key, value) of the map exactly once, nothing else. */
static void scan_map_many_keys(void **unused) {
  const int nkeys = 2000;
  inst_t in;
  inst_open(&in, 0, G);
  char err[256] = "";
  sl_state_t *m2 = sl_keyed_state_declare(in.ks, "m2", SL_STATE_MAP, 0, err, sizeof(err));
  assert_non_null(m2);
  rows_t want = {0}, want2 = {0}, got;
  char kb[32], mk[32], v[64];
  for (int i = 0; i < nkeys; i++) {
    setk(in.ks, kb, i);
    size_t klen = strlen(kb);
    for (int j = 0; j <= i % 7; j++) {
      int a = snprintf(mk, sizeof(mk), "mk%d", j);
      int n = snprintf(v, sizeof(v), "val-%d-%d", i, j);
      assert_int_equal(sl_ks_map_put(in.ks, in.m, mk, (size_t)a, v, (size_t)n), 0);
      rows_add(&want, kb, klen, mk, (size_t)a, v, (size_t)n);
      n = snprintf(v, sizeof(v), "other-%d-%d", i, j);
      assert_int_equal(sl_ks_map_put(in.ks, m2, mk, (size_t)a, v, (size_t)n), 0);
      rows_add(&want2, kb, klen, mk, (size_t)a, v, (size_t)n);
    }
    assert_int_equal(sl_ks_put(in.ks, in.v, "x", 1), 0);
    assert_int_equal(sl_ks_list_append(in.ks, in.l, "y", 1), 0);
  }
  /* An overwrite is one field, with the new value. */
  setk(in.ks, kb, 0);
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "mk0", 3, "new", 3), 0);
  free(want.r[0].s);
  want.r[0].s = strdup("key-0|+mk0|new");
  /* An empty map key and an empty value are entries too. */
  setk(in.ks, kb, 1);
  assert_int_equal(sl_ks_map_put(in.ks, in.m, "", 0, "", 0), 0);
  rows_add(&want, "key-1", 5, "", 0, "", 0);
  scan_all(in.ks, in.m, &got);
  rows_check(&got, &want, false);
  rows_free(&got);
  scan_all(in.ks, m2, &got);
  rows_check(&got, &want2, false);
  rows_free(&got);
  /* The same through the ordinary calls, after scans (which change nothing). */
  check_scans(&in, nkeys);
  /* The current key is set again after a scan; the state works as before. */
  sl_bytes_t b;
  setk(in.ks, kb, 8);
  assert_int_equal(sl_ks_map_get(in.ks, in.m, "mk1", 3, &b), 0);
  assert_int_equal(b.len, strlen("val-8-1"));
  assert_memory_equal(b.ptr, "val-8-1", b.len);
  rows_free(&want);
  rows_free(&want2);
  sl_keyed_state_free(in.ks);
}

/* Value and list states: one call per value, one per list element (in
 * list order, a trimmed front left out). */
static void scan_value_and_list(void **unused) {
  const int nkeys = 2000;
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, nkeys, 1);
  fill_random(&in, nkeys, 2); /* values overwritten, lists longer, maps overwritten */
  char kb[32];
  for (int i = 0; i < nkeys; i += 3) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 2), 0);
  }
  /* An empty value is a value; an empty list element an element. */
  setk(in.ks, kb, nkeys);
  assert_int_equal(sl_ks_put(in.ks, in.v, "", 0), 0);
  assert_int_equal(sl_ks_list_append(in.ks, in.l, "", 0), 0);
  assert_int_equal(sl_ks_list_append(in.ks, in.l, "z", 1), 0);
  assert_int_equal(sl_ks_list_append(in.ks, in.l, "", 0), 0);
  check_scans(&in, nkeys + 1);
  /* The empty key (NULL, 0) is a key too. */
  sl_keyed_state_set_key(in.ks, NULL, 0);
  assert_int_equal(sl_ks_put(in.ks, in.v, "e", 1), 0);
  scan_ctx_t c = {0};
  assert_int_equal(sl_ks_scan(in.ks, in.v, scan_collect, &c), 0);
  bool seen = false;
  for (size_t i = 0; i < c.rows.n; i++) seen |= strcmp(c.rows.r[i].s, "|-|e") == 0;
  assert_true(seen);
  rows_free(&c.rows);
  sl_keyed_state_free(in.ks);
}

/* Empty states, no state at all, bad arguments, and a stop. */
static void scan_empty_stop_and_errors(void **unused) {
  inst_t in;
  inst_open(&in, 0, G);
  scan_ctx_t c = {0};
  /* Nothing written yet, no key ever set. */
  assert_int_equal(sl_ks_scan(in.ks, in.v, scan_collect, &c), 0);
  assert_int_equal(sl_ks_scan(in.ks, in.l, scan_collect, &c), 0);
  assert_int_equal(sl_ks_scan(in.ks, in.m, scan_collect, &c), 0);
  assert_int_equal(c.calls, 0);
  /* Bad arguments. */
  inst_t other;
  inst_open(&other, 0, G);
  assert_int_equal(sl_ks_scan(in.ks, in.m, NULL, &c), SL_EINVAL);
  assert_int_equal(sl_ks_scan(in.ks, NULL, scan_collect, &c), SL_EINVAL);
  assert_int_equal(sl_ks_scan(NULL, in.m, scan_collect, &c), SL_EINVAL);
  assert_int_equal(sl_ks_scan(in.ks, other.m, scan_collect, &c), SL_EINVAL); /* foreign handle */
  assert_int_equal(c.calls, 0);
  sl_keyed_state_free(other.ks);
  /* Only the map holds something: the others stay empty. */
  char kb[32], mk[16];
  for (int i = 0; i < 50; i++) {
    setk(in.ks, kb, i);
    for (int j = 0; j < 4; j++) {
      int a = snprintf(mk, sizeof(mk), "f%d", j);
      assert_int_equal(sl_ks_map_put(in.ks, in.m, mk, (size_t)a, "v", 1), 0);
    }
  }
  assert_int_equal(sl_ks_scan(in.ks, in.v, scan_collect, &c), 0);
  assert_int_equal(sl_ks_scan(in.ks, in.l, scan_collect, &c), 0);
  assert_int_equal(c.calls, 0);
  /* Stop at the first call, inside a key's map, at the last call. */
  size_t stops[] = {1, 2, 3, 77, 200};
  for (size_t s = 0; s < sizeof(stops) / sizeof(stops[0]); s++) {
    scan_ctx_t st = {.stop_at = stops[s], .stop_rc = 7 + (int)s};
    assert_int_equal(sl_ks_scan(in.ks, in.m, scan_collect, &st), 7 + (int)s);
    assert_int_equal(st.calls, stops[s]);
    rows_free(&st.rows);
  }
  /* A negative value stops too, and comes back as it was. */
  scan_ctx_t neg = {.stop_at = 5, .stop_rc = -12345};
  assert_int_equal(sl_ks_scan(in.ks, in.m, scan_collect, &neg), -12345);
  assert_int_equal(neg.calls, 5);
  rows_free(&neg.rows);
  /* Stops inside a list too. */
  setk(in.ks, kb, 1);
  for (int k = 0; k < 5; k++) assert_int_equal(sl_ks_list_append(in.ks, in.l, "i", 1), 0);
  scan_ctx_t ls = {.stop_at = 2, .stop_rc = 1};
  assert_int_equal(sl_ks_scan(in.ks, in.l, scan_collect, &ls), 1);
  assert_int_equal(ls.calls, 2);
  rows_free(&ls.rows);
  /* All of it after the stops. */
  scan_ctx_t all = {0};
  assert_int_equal(sl_ks_scan(in.ks, in.m, scan_collect, &all), 0);
  assert_int_equal(all.calls, 200);
  rows_free(&all.rows);
  rows_free(&c.rows);
  sl_keyed_state_free(in.ks);
}

/* After removals: cleared values, trimmed and emptied lists, map fields
 * removed (and maps emptied), keys cleared in every state; while a
 * snapshot is active, and after. */
static void scan_after_removal(void **unused) {
  const int nkeys = 2000;
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, nkeys, 1);
  /* Under an active snapshot (the memory backend copies on write and keeps
   * what it replaced): the scan sees the current contents. */
  sl_state_snapshot_t *snap = sl_keyed_state_snapshot_begin(in.ks);
  assert_non_null(snap);
  char kb[32];
  for (int i = 0; i < nkeys; i++) {
    setk(in.ks, kb, i);
    switch (i % 6) {
    case 0:
      assert_int_equal(sl_ks_clear(in.ks, in.v), 0);
      assert_int_equal(sl_ks_clear(in.ks, in.l), 0);
      assert_int_equal(sl_ks_clear(in.ks, in.m), 0);
      break;
    case 1:
      assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 100), 0);
      sl_ks_map_remove(in.ks, in.m, "f0", 2);
      sl_ks_map_remove(in.ks, in.m, "f1", 2);
      sl_ks_map_remove(in.ks, in.m, "f2", 2);
      break;
    case 2:
      assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 1), 0);
      sl_ks_map_remove(in.ks, in.m, "f1", 2);
      break;
    case 3:
      assert_int_equal(sl_ks_clear(in.ks, in.v), 0);
      break;
    default:
      break;
    }
  }
  check_scans(&in, nkeys);
  sl_state_snapshot_release(snap);
  /* Everything removed: nothing seen. */
  for (int i = 0; i < nkeys; i++) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_clear(in.ks, in.v), 0);
    assert_int_equal(sl_ks_clear(in.ks, in.l), 0);
    assert_int_equal(sl_ks_clear(in.ks, in.m), 0);
  }
  scan_ctx_t c = {0};
  assert_int_equal(sl_ks_scan(in.ks, in.v, scan_collect, &c), 0);
  assert_int_equal(sl_ks_scan(in.ks, in.l, scan_collect, &c), 0);
  assert_int_equal(sl_ks_scan(in.ks, in.m, scan_collect, &c), 0);
  assert_int_equal(c.calls, 0);
  sl_keyed_state_free(in.ks);
}

/* Expired entries are skipped exactly as get skips them; a write refreshes
 * a whole list or map. */
static void scan_skips_expired(void **unused) {
  sl_keyed_state_t *ks = NEW_KS(G, 0, G);
  char err[256] = "", kb[32];
  inst_t in = {.ks = ks};
  in.v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 100, err, sizeof(err));
  in.l = sl_keyed_state_declare(ks, "l", SL_STATE_LIST, 100, err, sizeof(err));
  in.m = sl_keyed_state_declare(ks, "m", SL_STATE_MAP, 100, err, sizeof(err));
  sl_state_t *forever = sl_keyed_state_declare(ks, "f", SL_STATE_MAP, 0, err, sizeof(err));
  assert_non_null(in.v);
  assert_non_null(in.l);
  assert_non_null(in.m);
  assert_non_null(forever);
  const int nkeys = 400;
  sl_keyed_state_set_now(ks, 1000);
  for (int i = 0; i < nkeys; i++) {
    if (i == nkeys / 2) sl_keyed_state_set_now(ks, 1050);
    setk(ks, kb, i);
    assert_int_equal(sl_ks_put(ks, in.v, kb, strlen(kb)), 0);
    assert_int_equal(sl_ks_list_append(ks, in.l, "a", 1), 0);
    assert_int_equal(sl_ks_list_append(ks, in.l, "b", 1), 0);
    assert_int_equal(sl_ks_map_put(ks, in.m, "p", 1, "1", 1), 0);
    assert_int_equal(sl_ks_map_put(ks, in.m, "q", 1, "2", 1), 0);
    assert_int_equal(sl_ks_map_put(ks, forever, "t", 1, kb, strlen(kb)), 0);
  }
  /* Keys 0..9 written again at 1050: their lists and maps live on, whole. */
  for (int i = 0; i < 10; i++) {
    setk(ks, kb, i);
    assert_int_equal(sl_ks_list_append(ks, in.l, "c", 1), 0);
    assert_int_equal(sl_ks_map_put(ks, in.m, "r", 1, "3", 1), 0);
  }
  /* At 1099 everything lives; at 1100 the first half has expired (but
   * keys 0..9's list and map); at 1150 all of it. */
  int64_t at[] = {1099, 1100, 1149, 1150};
  size_t want_v[] = {400, 200, 200, 0}, want_l[] = {810, 430, 430, 0},
         want_m[] = {810, 430, 430, 0};
  for (size_t t = 0; t < 4; t++) {
    sl_keyed_state_set_now(ks, at[t]);
    scan_ctx_t c = {0};
    assert_int_equal(sl_ks_scan(ks, in.v, scan_collect, &c), 0);
    assert_int_equal(c.calls, want_v[t]);
    rows_free(&c.rows);
    memset(&c, 0, sizeof(c));
    assert_int_equal(sl_ks_scan(ks, in.l, scan_collect, &c), 0);
    assert_int_equal(c.calls, want_l[t]);
    rows_free(&c.rows);
    memset(&c, 0, sizeof(c));
    assert_int_equal(sl_ks_scan(ks, in.m, scan_collect, &c), 0);
    assert_int_equal(c.calls, want_m[t]);
    rows_free(&c.rows);
    memset(&c, 0, sizeof(c));
    assert_int_equal(sl_ks_scan(ks, forever, scan_collect, &c), 0);
    assert_int_equal(c.calls, (size_t)nkeys);
    rows_free(&c.rows);
    /* And exactly what the ordinary calls see. */
    check_scans(&in, nkeys);
  }
  sl_keyed_state_free(ks);
}

static sl_state_t *inst_state(const inst_t *in, int s) {
  return s == 0 ? in->v : s == 1 ? in->l : in->m;
}

/* parts[c] holds key groups [bounds[c], bounds[c + 1]), restored from a
 * snapshot of orig: the scan of each state in each part sees only keys of
 * its groups, and together they see exactly what a scan of orig sees. */
static void check_split_scans(inst_t *orig, inst_t *parts, const uint32_t *bounds, int nparts) {
  for (int s = 0; s < 3; s++) {
    rows_t want, all = {0}, got;
    scan_all(orig->ks, inst_state(orig, s), &want);
    assert_true(want.n > 100);
    for (int c = 0; c < nparts; c++) {
      scan_all(parts[c].ks, inst_state(&parts[c], s), &got);
      for (size_t i = 0; i < got.n; i++) {
        uint32_t g = sl_key_group_of(got.r[i].s, strcspn(got.r[i].s, "|"), G);
        if (g < bounds[c] || g >= bounds[c + 1])
          fail_msg("instance [%u,%u) saw %s, of key group %u", bounds[c], bounds[c + 1],
                   got.r[i].s, g);
        rows_push(&all, got.r[i].s);
        got.r[i].s = NULL;
      }
      rows_free(&got);
    }
    rows_check(&all, &want, s == 1);
    rows_free(&all);
    rows_free(&want);
  }
}

/* Restored from a snapshot (a blob; a RocksDB directory, restored by
 * linking or by copying rows, or into the memory backend) into instances
 * that split the key groups: the union of their scans is the original's. */
static void scan_after_restore_split(void **unused) {
  const int nkeys = 1500;
  inst_t in;
  inst_open(&in, 0, G);
  fill_random(&in, nkeys, 1);
  fill_random(&in, nkeys, 2);
  char kb[32];
  for (int i = 0; i < nkeys; i += 5) {
    setk(in.ks, kb, i);
    assert_int_equal(sl_ks_list_trim_front(in.ks, in.l, 1), 0);
    sl_ks_map_remove(in.ks, in.m, "f0", 2);
  }
  check_scans(&in, nkeys);
  sl_buf_t blob = {0};
  snap_write(in.ks, &blob);
  /* The same contents in a RocksDB instance, written as a directory. */
  char tmp[600], dir[700], err[512] = "";
  snprintf(tmp, sizeof(tmp), "%s/scan-XXXXXX", SLUICE_TEST_BINARY_DIR);
  assert_non_null(mkdtemp(tmp));
  snprintf(dir, sizeof(dir), "%s/snap", tmp);
  {
    inst_t src;
    src.ks = sl_keyed_state_new_rocksdb(NULL, G, 0, G, err, sizeof(err));
    if (!src.ks) fail_msg("%s", err);
    assert_int_equal(sl_keyed_state_restore(src.ks, blob.data, blob.len, err, sizeof(err)), 0);
    inst_declare(&src);
    sl_state_snapshot_t *s = sl_keyed_state_snapshot_begin(src.ks);
    assert_non_null(s);
    sl_state_file_t *files = NULL;
    uint32_t nf = 0;
    if (sl_state_snapshot_write_dir(s, dir, &files, &nf, err, sizeof(err)) != 0)
      fail_msg("write_dir: %s", err);
    sl_state_files_free(files, nf);
    sl_state_snapshot_release(s);
    sl_keyed_state_free(src.ks);
  }
  const uint32_t whole[] = {0, G}, two[] = {0, G / 2, G}, three[] = {0, 3, 11, G};
  const uint32_t *splits[] = {whole, two, three};
  const int nsplit[] = {1, 2, 3};
  for (int from_dir = 0; from_dir < 2; from_dir++) {
    for (int k = 0; k < 3; k++) {
      inst_t parts[3];
      for (int c = 0; c < nsplit[k]; c++) {
        parts[c].ks = NEW_KS(G, splits[k][c], splits[k][c + 1]);
        assert_non_null(parts[c].ks);
        int rc = from_dir ? sl_keyed_state_restore_dir(parts[c].ks, dir, 0, G, err, sizeof(err))
                          : sl_keyed_state_restore(parts[c].ks, blob.data, blob.len, err,
                                                   sizeof(err));
        if (rc != 0) fail_msg("restore%s: %s", from_dir ? "_dir" : "", err);
        inst_declare(&parts[c]);
      }
      check_split_scans(&in, parts, splits[k], nsplit[k]);
      for (int c = 0; c < nsplit[k]; c++) sl_keyed_state_free(parts[c].ks);
    }
  }
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
  assert_int_equal(system(cmd), 0);
  sl_buf_free(&blob);
  sl_keyed_state_free(in.ks);
}

/* The tests above, for the including file's main(). */
#define STATE_BACKEND_TESTS \
  cmocka_unit_test(key_group_matches_router), \
  cmocka_unit_test(value_ops), \
  cmocka_unit_test(many_keys_grow_and_shrink), \
  cmocka_unit_test(wrong_kind_and_foreign_handles), \
  cmocka_unit_test(declare_rules), \
  cmocka_unit_test(states_share_a_key_separately), \
  cmocka_unit_test(list_ops), \
  cmocka_unit_test(map_ops), \
  cmocka_unit_test(ttl_expiry), \
  cmocka_unit_test(ttl_survives_restore_and_expired_left_out), \
  cmocka_unit_test(snapshot_round_trip_split), \
  cmocka_unit_test(empty_snapshot), \
  cmocka_unit_test(undeclared_state_is_kept), \
  cmocka_unit_test(kind_mismatch), \
  cmocka_unit_test(corrupt_input), \
  cmocka_unit_test(snapshot_is_consistent_under_cow), \
  cmocka_unit_test(map_cursor_survives_cow), \
  cmocka_unit_test(free_before_release), \
  cmocka_unit_test(repeated_snapshots), \
  cmocka_unit_test(garbage_across_snapshots), \
  cmocka_unit_test(scan_map_many_keys), \
  cmocka_unit_test(scan_value_and_list), \
  cmocka_unit_test(scan_empty_stop_and_errors), \
  cmocka_unit_test(scan_after_removal), \
  cmocka_unit_test(scan_skips_expired), \
  cmocka_unit_test(scan_after_restore_split),

#endif /* STATE_TEST_HELPERS_ONLY */
