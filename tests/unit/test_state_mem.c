/* In-memory keyed state (core/state_mem.c): operations, TTL, snapshots
 * (copy-on-write consistency), restore by key-group range, damaged input.
 * The tests themselves are shared with the RocksDB backend
 * (state_backend_tests.h). Below them, the memory backend's own: its block
 * pool and the small maps kept inside their entry, against a model. */
#define NEW_KS(g, b, e) sl_keyed_state_new_memory((g), (b), (e))
#define EXACT_COUNTS 1
#define CORRUPT_FLIP_STRIDE 1
#define CORRUPT_ROUNDS 20000

#include "state_backend_tests.h"

/* ---------------------------------------------------- pool and small maps */

#define MK 40    /* keys */
#define MMK 12   /* possible map keys per key */
#define MAXV 700 /* value lengths up to here: every pool class, and past the largest */

typedef struct mval {
  int present;
  size_t len;
  unsigned char b[MAXV];
} mval_t;

static mval_t mv[MK];        /* value state */
static mval_t mm[MK][MMK];   /* map state: map key j of key i */
static uint64_t prng = 0x9E3779B97F4A7C15ull;

static uint64_t prand(void) {
  prng ^= prng << 13;
  prng ^= prng >> 7;
  prng ^= prng << 17;
  return prng;
}

/* Map key j: lengths 1 .. 36 (short ones fit the entry's arena, long ones not). */
static size_t map_key(int j, char *out) {
  return (size_t)snprintf(out, 48, "%.*s%d", j * 3, "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm", j);
}

static size_t rand_len(uint64_t r) {
  switch (r % 4) {
  case 0: return 0;
  case 1: return (size_t)(r >> 8) % 24; /* small: the arena, the smallest classes */
  case 2: return (size_t)(r >> 8) % 520;
  default: return (size_t)(r >> 8) % MAXV;
  }
}

static void fill(unsigned char *b, size_t len, uint64_t r) {
  for (size_t i = 0; i < len; i++) b[i] = (unsigned char)(r >> (i % 56)) ^ (unsigned char)i;
}

/* Every key's value and map against the model (get, map_get, map_next). */
static void check_model(sl_keyed_state_t *ks, sl_state_t *v, sl_state_t *m) {
  char kb[32], mk[48];
  for (int i = 0; i < MK; i++) {
    setk(ks, kb, i);
    sl_bytes_t out;
    int rc = sl_ks_get(ks, v, &out);
    if (mv[i].present) {
      assert_int_equal(rc, 0);
      assert_int_equal(out.len, mv[i].len);
      if (out.len) assert_memory_equal(out.ptr, mv[i].b, out.len);
    } else {
      assert_int_equal(rc, SL_ENOTFOUND);
    }
    int want = 0;
    for (int j = 0; j < MMK; j++) {
      size_t n = map_key(j, mk);
      rc = sl_ks_map_get(ks, m, mk, n, &out);
      if (mm[i][j].present) {
        want++;
        assert_int_equal(rc, 0);
        assert_int_equal(out.len, mm[i][j].len);
        if (out.len) assert_memory_equal(out.ptr, mm[i][j].b, out.len);
      } else {
        assert_int_equal(rc, SL_ENOTFOUND);
      }
    }
    size_t cur = 0;
    sl_bytes_t k, b;
    int seen = 0;
    while (sl_ks_map_next(ks, m, &cur, &k, &b) == 0) seen++;
    assert_int_equal(seen, want);
  }
}

/* Random puts, clears, map puts (values growing and shrinking: arena, pool
 * classes, big blocks) and map removes over a few keys, with snapshots taken
 * and released now and then (copy-on-write copies of small maps), checked
 * against the model; then a snapshot restored into instances with a
 * power-of-two and another number of key groups (the restore checks each
 * entry's key group against its key). */
static void pool_and_small_maps_against_model(void **unused) {
  (void)unused;
  memset(mv, 0, sizeof(mv));
  memset(mm, 0, sizeof(mm));
  for (uint32_t groups = 10; groups <= 16; groups += 6) {
    sl_keyed_state_t *ks = sl_keyed_state_new_memory(groups, 0, groups);
    assert_non_null(ks);
    char err[256] = "";
    sl_state_t *v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 0, err, sizeof(err));
    sl_state_t *m = sl_keyed_state_declare(ks, "m", SL_STATE_MAP, 0, err, sizeof(err));
    assert_non_null(v);
    assert_non_null(m);
    if (groups == 16) { /* the model carries over: load it */
      char kb[32], mk[48];
      for (int i = 0; i < MK; i++) {
        setk(ks, kb, i);
        if (mv[i].present) assert_int_equal(sl_ks_put(ks, v, mv[i].b, mv[i].len), 0);
        for (int j = 0; j < MMK; j++)
          if (mm[i][j].present)
            assert_int_equal(sl_ks_map_put(ks, m, mk, map_key(j, mk), mm[i][j].b, mm[i][j].len), 0);
      }
    }
    sl_state_snapshot_t *snap = NULL;
    unsigned char buf[MAXV];
    for (int step = 0; step < 6000; step++) {
      uint64_t r = prand();
      int i = (int)((r >> 40) % MK), j = (int)((r >> 48) % MMK);
      char kb[32], mk[48];
      setk(ks, kb, i);
      size_t len = rand_len(r >> 4);
      fill(buf, len, r);
      switch (r % 8) {
      case 0:
      case 1:
        assert_int_equal(sl_ks_put(ks, v, buf, len), 0);
        mv[i].present = 1;
        mv[i].len = len;
        memcpy(mv[i].b, buf, len);
        break;
      case 2:
        assert_int_equal(sl_ks_clear(ks, v), 0);
        mv[i].present = 0;
        break;
      case 3:
      case 4:
      case 5: {
        size_t n = map_key(j, mk);
        if (len > 60) len = 60;
        assert_int_equal(sl_ks_map_put(ks, m, mk, n, buf, len), 0);
        mm[i][j].present = 1;
        mm[i][j].len = len;
        memcpy(mm[i][j].b, buf, len);
        break;
      }
      case 6: {
        size_t n = map_key(j, mk);
        assert_int_equal(sl_ks_map_remove(ks, m, mk, n), mm[i][j].present ? 0 : SL_ENOTFOUND);
        mm[i][j].present = 0;
        break;
      }
      default:
        if (r % 64 == 7) { /* a snapshot starts or ends */
          if (snap) { /* the writer's release (the task's side is ks's own) */
            sl_state_snapshot_release(snap);
            snap = NULL;
          } else {
            snap = sl_keyed_state_snapshot_begin(ks);
            assert_non_null(snap);
          }
        }
      }
      if (step % 500 == 0) check_model(ks, v, m);
    }
    check_model(ks, v, m);
    if (snap) sl_state_snapshot_release(snap);
    /* Round trip: what the model says, restored elsewhere. */
    snap = sl_keyed_state_snapshot_begin(ks);
    assert_non_null(snap);
    sl_buf_t blob = {0};
    assert_int_equal(sl_state_snapshot_write(snap, &blob, err, sizeof(err)), 0);
    sl_state_snapshot_release(snap);
    sl_keyed_state_t *ks2 = sl_keyed_state_new_memory(groups, 0, groups);
    assert_int_equal(sl_keyed_state_restore(ks2, blob.data, blob.len, err, sizeof(err)), 0);
    sl_state_t *v2 = sl_keyed_state_declare(ks2, "v", SL_STATE_VALUE, 0, err, sizeof(err));
    sl_state_t *m2 = sl_keyed_state_declare(ks2, "m", SL_STATE_MAP, 0, err, sizeof(err));
    check_model(ks2, v2, m2);
    sl_buf_free(&blob);
    sl_keyed_state_free(ks2);
    sl_keyed_state_free(ks);
  }
}

/* Create and delete a key's value and one-key map many times (a window's
 * state and timer): every block comes back through the pool (ASan checks
 * that a pooled block is not used), and the entries still read right. */
static void entry_churn(void **unused) {
  (void)unused;
  sl_keyed_state_t *ks = sl_keyed_state_new_memory(128, 0, 128);
  char err[256] = "";
  sl_state_t *v = sl_keyed_state_declare(ks, "v", SL_STATE_VALUE, 0, err, sizeof(err));
  sl_state_t *m = sl_keyed_state_declare(ks, "m", SL_STATE_MAP, 0, err, sizeof(err));
  char kb[32];
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 2000; i++) {
      setk(ks, kb, round * 1000 + i); /* half the keys are the previous round's */
      int64_t x = round * 100000 + i;
      assert_int_equal(sl_ks_put(ks, v, &x, sizeof(x)), 0);
      assert_int_equal(sl_ks_map_put(ks, m, "t", 1, "", 0), 0);
    }
    for (int i = 0; i < 2000; i++) {
      setk(ks, kb, round * 1000 + i);
      sl_bytes_t out;
      int64_t x = round * 100000 + i, got;
      assert_int_equal(sl_ks_get(ks, v, &out), 0);
      assert_int_equal(out.len, sizeof(got));
      memcpy(&got, out.ptr, sizeof(got));
      assert_true(got == x);
      assert_int_equal(sl_ks_map_get(ks, m, "t", 1, &out), 0);
      assert_int_equal(out.len, 0);
      assert_int_equal(sl_ks_map_remove(ks, m, "t", 1), 0);
      assert_int_equal(sl_ks_clear(ks, v), 0);
    }
    assert_int_equal(sl_keyed_state_entries(ks), 0);
    assert_int_equal(sl_keyed_state_bytes(ks), 0);
  }
  sl_keyed_state_free(ks);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      STATE_BACKEND_TESTS
      cmocka_unit_test(pool_and_small_maps_against_model),
      cmocka_unit_test(entry_churn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
