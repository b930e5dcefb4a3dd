/* Batch and arena tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "batch.h"

static void append_copies_everything(void **st) {
  sl_batch_t *b = sl_batch_new(4);
  char key[] = "k1", value[] = "{\"a\":1}";
  sl_header_t hdrs[2] = {{"h1", 2, "v1", 2}, {"trace", 5, "abc", 3}};
  sl_record_t r = {.key = key, .key_len = 2, .value = value, .value_len = 7, .ts = 42,
                   .offset = 9, .headers = hdrs, .header_count = 2};
  assert_int_equal(sl_batch_append(b, &r, NULL, 0, 0), 0);
  /* Scribble over the sources: the batch must hold its own copies. */
  memset(key, 'X', 2);
  memset(value, 'X', 7);
  hdrs[0].name = "zz";
  const sl_record_t *c = &b->records[0];
  assert_memory_equal(c->key, "k1", 2);
  assert_memory_equal(c->value, "{\"a\":1}", 7);
  assert_int_equal(c->ts, 42);
  assert_int_equal(c->offset, 9);
  assert_int_equal(c->header_count, 2);
  assert_memory_equal(c->headers[0].name, "h1", 2);
  assert_memory_equal(c->headers[1].value, "abc", 3);
  assert_int_equal(b->bytes, 2 + 7 + 2 + 2 + 5 + 3);
  sl_batch_free(b);
}

static void key_override_and_flags(void **st) {
  sl_batch_t *b = sl_batch_new(2);
  sl_record_t r = {.key = "old", .key_len = 3, .value = "v", .value_len = 1};
  assert_int_equal(sl_batch_append(b, &r, "p17", 3, 0x1), 0);
  assert_memory_equal(b->records[0].key, "p17", 3);
  assert_int_equal(b->flags[0], 0x1);
  sl_batch_free(b);
}

static void full_batch_says_again(void **st) {
  sl_batch_t *b = sl_batch_new(2);
  sl_record_t r = {.value = "v", .value_len = 1};
  assert_int_equal(sl_batch_append(b, &r, NULL, 0, 0), 0);
  assert_int_equal(sl_batch_append(b, &r, NULL, 0, 0), 0);
  assert_true(sl_batch_full(b));
  assert_int_equal(sl_batch_append(b, &r, NULL, 0, 0), SL_AGAIN);
  sl_batch_free(b);
}

/* Records bigger than a chunk, many records: pointers stay valid while the
 * batch fills (chunks never move), and reset reuses the memory. */
static void large_and_many_records(void **st) {
  sl_batch_t *b = sl_batch_new(1024);
  size_t big = 200000;
  char *v = malloc(big);
  memset(v, 'q', big);
  sl_record_t r = {.value = v, .value_len = big};
  assert_int_equal(sl_batch_append(b, &r, NULL, 0, 0), 0);
  for (int i = 0; i < 1000; i++) {
    char small[100];
    memset(small, 'a' + i % 26, sizeof(small));
    sl_record_t s = {.value = small, .value_len = sizeof(small), .offset = i};
    assert_int_equal(sl_batch_append(b, &s, NULL, 0, 0), 0);
  }
  assert_int_equal(((const char *)b->records[0].value)[big - 1], 'q');
  for (int i = 0; i < 1000; i++)
    assert_int_equal(((const char *)b->records[1 + i].value)[99], 'a' + i % 26);
  sl_arena_chunk_t *first = b->chunks;
  sl_batch_reset(b);
  assert_int_equal(b->count, 0);
  assert_ptr_equal(b->chunks, first);
  assert_int_equal(sl_batch_append(b, &r, NULL, 0, 0), 0);
  free(v);
  sl_batch_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(append_copies_everything),
      cmocka_unit_test(key_override_and_flags),
      cmocka_unit_test(full_batch_says_again),
      cmocka_unit_test(large_and_many_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
