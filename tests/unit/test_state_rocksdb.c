/*
 * RocksDB keyed state (core/state_rocksdb.c): every test the memory backend
 * passes (state_backend_tests.h; entry and byte counts are RocksDB's
 * estimates, so they are not compared). RocksDB's own behaviour (directory
 * snapshots, working directories) is in test_state_rocksdb_dir.c.
 */
#define NEW_KS(g, b, e) sl_keyed_state_new_rocksdb(NULL, (g), (b), (e), NULL, 0)
#define EXACT_COUNTS 0
#define CORRUPT_FLIP_STRIDE 5
#define CORRUPT_ROUNDS 300

#include "state_backend_tests.h"

int main(void) {
  const struct CMUnitTest tests[] = {STATE_BACKEND_TESTS};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
