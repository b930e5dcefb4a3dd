/*
 * state_snapshot_model.h - shared by the concurrent snapshot tests of both
 * keyed-state backends (test_sched_state_snapshot.c, memory;
 * test_sched_state_rocksdb.c): an instance with one state of each kind, a
 * random operation on a key, and a dump of every key's state for comparing
 * a restored snapshot with the state at snapshot_begin. The including test
 * defines G, NKEYS and NEWKEYS and creates the backend in its inst_open().
 */
#ifndef SL_TEST_STATE_SNAPSHOT_MODEL_H
#define SL_TEST_STATE_SNAPSHOT_MODEL_H

#define DUMP_CAP 4096

typedef struct inst {
  sl_keyed_state_t *ks;
  sl_state_t *v, *l, *m, *t;
} inst_t;

/* One state of each kind (and a value state with a TTL) on in->ks. */
static void inst_declare(inst_t *in) {
  char err[256];
  in->v = sl_keyed_state_declare(in->ks, "v", SL_STATE_VALUE, 0, err, sizeof(err));
  in->l = sl_keyed_state_declare(in->ks, "l", SL_STATE_LIST, 0, err, sizeof(err));
  in->m = sl_keyed_state_declare(in->ks, "m", SL_STATE_MAP, 0, err, sizeof(err));
  in->t = sl_keyed_state_declare(in->ks, "t", SL_STATE_VALUE, 40, err, sizeof(err));
  assert_true(in->v && in->l && in->m && in->t);
}

static void setk(sl_keyed_state_t *ks, char *buf, int i) {
  int n = snprintf(buf, 32, "key-%d", i);
  sl_keyed_state_set_key(ks, buf, (size_t)n);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_key(inst_t *in, int i, char *out, size_t cap) {
  char kb[32];
  setk(in->ks, kb, i);
  size_t o = 0, n = 0, cur = 0, np = 0;
  sl_bytes_t b, mk;
  if (sl_ks_get(in->ks, in->v, &b) == 0)
    o += (size_t)snprintf(out + o, cap - o, "v=%.*s|", (int)b.len, (const char *)b.ptr);
  else
    o += (size_t)snprintf(out + o, cap - o, "v=-|");
  if (sl_ks_get(in->ks, in->t, &b) == 0)
    o += (size_t)snprintf(out + o, cap - o, "t=%.*s|", (int)b.len, (const char *)b.ptr);
  assert_int_equal(sl_ks_list_count(in->ks, in->l, &n), 0);
  for (size_t k = 0; k < n; k++) {
    assert_int_equal(sl_ks_list_get(in->ks, in->l, k, &b), 0);
    o += (size_t)snprintf(out + o, cap - o, "%.*s,", (int)b.len, (const char *)b.ptr);
  }
  char *pairs[64];
  while (sl_ks_map_next(in->ks, in->m, &cur, &mk, &b) == 0) {
    assert_true(np < 64);
    pairs[np] = malloc(mk.len + b.len + 2);
    sprintf(pairs[np++], "%.*s:%.*s", (int)mk.len, (const char *)mk.ptr, (int)b.len,
            (const char *)b.ptr);
  }
  qsort(pairs, np, sizeof(char *), cmp_str);
  for (size_t k = 0; k < np; k++) {
    o += (size_t)snprintf(out + o, cap - o, "|%s", pairs[k]);
    free(pairs[k]);
  }
  assert_true(o < cap - 1);
}

static char **dump_all(inst_t *in) {
  char **d = calloc(NKEYS + NEWKEYS, sizeof(char *));
  for (int i = 0; i < NKEYS + NEWKEYS; i++) {
    d[i] = malloc(DUMP_CAP);
    dump_key(in, i, d[i], DUMP_CAP);
  }
  return d;
}

static void dumps_free(char **d) {
  for (int i = 0; i < NKEYS + NEWKEYS; i++) free(d[i]);
  free(d);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* One random change to a random key. */
static void mutate(inst_t *in, int round) {
  char kb[32], v[160], mk[16];
  uint64_t r = next_rand();
  int i = (int)((r >> 32) % (NKEYS + NEWKEYS));
  setk(in->ks, kb, i);
  switch (r % 9) {
  case 0:
    sl_ks_clear(in->ks, in->v);
    break;
  case 1: {
    int n = snprintf(v, sizeof(v), "%0*d", (int)((r >> 8) % 120), round);
    assert_int_equal(sl_ks_put(in->ks, in->v, v, (size_t)n), 0);
    break;
  }
  case 2:
    assert_int_equal(sl_ks_put(in->ks, in->v, "s", 1), 0);
    break;
  case 3:
    assert_int_equal(sl_ks_list_append(in->ks, in->l, "x", 1), 0);
    break;
  case 4:
    assert_int_equal(sl_ks_list_trim_front(in->ks, in->l, 1), 0);
    break;
  case 5: {
    int n = snprintf(mk, sizeof(mk), "f%d", (int)((r >> 8) % 6));
    assert_int_equal(sl_ks_map_put(in->ks, in->m, mk, (size_t)n, "y", 1), 0);
    break;
  }
  case 6: {
    int n = snprintf(mk, sizeof(mk), "f%d", (int)((r >> 8) % 6));
    sl_ks_map_remove(in->ks, in->m, mk, (size_t)n);
    break;
  }
  case 7:
    assert_int_equal(sl_ks_put(in->ks, in->t, "ttl", 3), 0);
    break;
  default:
    sl_ks_clear(in->ks, in->l);
  }
}

#endif
