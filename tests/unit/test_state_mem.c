/* In-memory keyed state (core/state_mem.c): operations, TTL, snapshots
 * (copy-on-write consistency), restore by key-group range, damaged input.
 * The tests themselves are shared with the RocksDB backend
 * (state_backend_tests.h). */
#define NEW_KS(g, b, e) sl_keyed_state_new_memory((g), (b), (e))
#define EXACT_COUNTS 1
#define CORRUPT_FLIP_STRIDE 1
#define CORRUPT_ROUNDS 20000

#include "state_backend_tests.h"

int main(void) {
  const struct CMUnitTest tests[] = {STATE_BACKEND_TESTS};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
