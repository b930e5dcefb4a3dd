/*
 * bench_channel - cost of handing records from one thread to another
 * through a channel, per record, at several batch sizes. The producer
 * acquires a recycled batch, appends records (copying a 100-byte value),
 * pushes; the consumer pops, reads each record, releases. A same-thread
 * run (push then pop in one loop) shows the cost without cache traffic, and
 * a baseline loop copies the same bytes into a plain array.
 *
 * usage: bench_channel [records]   (default 20M)
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "util.h"

#define VALUE_LEN 100

typedef struct bench {
  sl_channel_t *ch;
  uint64_t records;
  uint32_t batch;
} bench_t;

static void *producer(void *arg) {
  bench_t *b = arg;
  char value[VALUE_LEN];
  memset(value, 'v', sizeof(value));
  uint64_t sent = 0;
  while (sent < b->records) {
    sl_batch_t *batch = sl_channel_acquire(b->ch);
    for (uint32_t i = 0; i < b->batch && sent < b->records; i++, sent++) {
      sl_record_t r = {.value = value, .value_len = VALUE_LEN, .offset = (int64_t)sent};
      sl_batch_append(batch, &r, NULL, 0, 0);
    }
    while (sl_channel_push(b->ch, batch) != 0) sched_yield();
  }
  sl_batch_t *end = sl_channel_acquire(b->ch);
  end->kind = SL_BATCH_END;
  while (sl_channel_push(b->ch, end) != 0) sched_yield();
  return NULL;
}

static double run_threads(uint64_t records, uint32_t batch, uint64_t *checksum) {
  bench_t b = {sl_channel_new(16, batch), records, batch};
  uint64_t t0 = sl_mono_ns(), sum = 0;
  pthread_t th;
  pthread_create(&th, NULL, producer, &b);
  for (;;) {
    sl_batch_t *got = sl_channel_pop(b.ch);
    if (!got) {
      sched_yield();
      continue;
    }
    if (got->kind == SL_BATCH_END) {
      sl_channel_release(b.ch, got);
      break;
    }
    for (uint32_t i = 0; i < got->count; i++)
      sum += (uint64_t)got->records[i].offset + ((const char *)got->records[i].value)[VALUE_LEN - 1];
    sl_channel_release(b.ch, got);
  }
  pthread_join(th, NULL);
  uint64_t t1 = sl_mono_ns();
  sl_channel_free(b.ch);
  *checksum = sum;
  return (double)(t1 - t0) / (double)records;
}

/* Hand-off only: batches are filled once up front and then circulate; the
 * producer pushes them, the consumer reads every record's metadata and first
 * value byte and gives the batch back. This is the channel's own cost. */
typedef struct handoff {
  sl_channel_t *ch;
  uint64_t batches;
} handoff_t;

static void *handoff_producer(void *arg) {
  handoff_t *h = arg;
  for (uint64_t i = 0; i < h->batches; i++) {
    sl_batch_t *b;
    while ((b = sl_ring_pop(&h->ch->free)) == NULL) sched_yield();
    b->kind = SL_BATCH_DATA;
    while (sl_channel_push(h->ch, b) != 0) sched_yield();
  }
  sl_batch_t *b;
  while ((b = sl_ring_pop(&h->ch->free)) == NULL) sched_yield();
  b->kind = SL_BATCH_END;
  while (sl_channel_push(h->ch, b) != 0) sched_yield();
  return NULL;
}

static double run_handoff(uint64_t records, uint32_t batch, uint64_t *checksum) {
  sl_channel_t *ch = sl_channel_new(16, batch);
  char value[VALUE_LEN];
  memset(value, 'v', sizeof(value));
  for (int i = 0; i < 20; i++) { /* the channel's whole batch population */
    sl_batch_t *b = sl_batch_new(batch);
    for (uint32_t k = 0; k < batch; k++) {
      sl_record_t r = {.value = value, .value_len = VALUE_LEN, .offset = 1};
      sl_batch_append(b, &r, NULL, 0, 0);
    }
    sl_channel_release(ch, b);
  }
  handoff_t h = {ch, records / batch};
  uint64_t t0 = sl_mono_ns(), sum = 0;
  pthread_t th;
  pthread_create(&th, NULL, handoff_producer, &h);
  for (;;) {
    sl_batch_t *got = sl_channel_pop(ch);
    if (!got) {
      sched_yield();
      continue;
    }
    if (got->kind == SL_BATCH_END) {
      sl_channel_release(ch, got);
      break;
    }
    for (uint32_t i = 0; i < got->count; i++)
      sum += (uint64_t)got->records[i].offset + ((const char *)got->records[i].value)[0];
    sl_channel_release(ch, got);
  }
  pthread_join(th, NULL);
  uint64_t t1 = sl_mono_ns();
  sl_channel_free(ch);
  *checksum = sum;
  return (double)(t1 - t0) / (double)(h.batches * batch);
}

static double run_same_thread(uint64_t records, uint32_t batch, uint64_t *checksum) {
  sl_channel_t *ch = sl_channel_new(16, batch);
  char value[VALUE_LEN];
  memset(value, 'v', sizeof(value));
  uint64_t t0 = sl_mono_ns(), sum = 0, sent = 0;
  while (sent < records) {
    sl_batch_t *bt = sl_channel_acquire(ch);
    for (uint32_t i = 0; i < batch && sent < records; i++, sent++) {
      sl_record_t r = {.value = value, .value_len = VALUE_LEN, .offset = (int64_t)sent};
      sl_batch_append(bt, &r, NULL, 0, 0);
    }
    sl_channel_push(ch, bt);
    sl_batch_t *got = sl_channel_pop(ch);
    for (uint32_t i = 0; i < got->count; i++)
      sum += (uint64_t)got->records[i].offset + ((const char *)got->records[i].value)[VALUE_LEN - 1];
    sl_channel_release(ch, got);
  }
  uint64_t t1 = sl_mono_ns();
  sl_channel_free(ch);
  *checksum = sum;
  return (double)(t1 - t0) / (double)records;
}

/* Baseline: copy the same bytes into a reused array and read them back. */
static double run_baseline(uint64_t records, uint32_t batch, uint64_t *checksum) {
  char value[VALUE_LEN];
  memset(value, 'v', sizeof(value));
  char *buf = malloc((size_t)batch * VALUE_LEN);
  int64_t *offs = malloc(sizeof(int64_t) * batch);
  uint64_t t0 = sl_mono_ns(), sum = 0, sent = 0;
  while (sent < records) {
    uint32_t n = 0;
    for (; n < batch && sent < records; n++, sent++) {
      memcpy(buf + (size_t)n * VALUE_LEN, value, VALUE_LEN);
      offs[n] = (int64_t)sent;
    }
    __asm__ volatile("" ::: "memory");
    for (uint32_t i = 0; i < n; i++) sum += (uint64_t)offs[i] + buf[(size_t)i * VALUE_LEN + VALUE_LEN - 1];
  }
  uint64_t t1 = sl_mono_ns();
  free(buf);
  free(offs);
  *checksum = sum;
  return (double)(t1 - t0) / (double)records;
}

int main(int argc, char **argv) {
  uint64_t records = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000ull;
  if (argc > 2 && strcmp(argv[2], "same") == 0) { /* profiling aid */
    uint64_t c;
    printf("%.2f ns\n", run_same_thread(records, 256, &c));
    return 0;
  }
  static const uint32_t batches[] = {1, 16, 64, 256, 1024};
  printf("channel hand-off, %llu records of %d bytes, ns per record (best of 3)\n",
         (unsigned long long)records, VALUE_LEN);
  printf("| batch | hand-off only, 2 threads | copy + hand-off, 2 threads | copy + hand-off, same thread | baseline: memcpy loop |\n|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
    uint32_t b = batches[i];
    uint64_t n = b == 1 ? records / 10 : records;
    double best[4] = {1e18, 1e18, 1e18, 1e18};
    uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    for (int rep = 0; rep < 3; rep++) {
      double w = run_handoff(n, b, &c0);
      double x = run_threads(n, b, &c1), y = run_same_thread(n, b, &c2), z = run_baseline(n, b, &c3);
      if (w < best[3]) best[3] = w;
      if (x < best[0]) best[0] = x;
      if (y < best[1]) best[1] = y;
      if (z < best[2]) best[2] = z;
    }
    if (c0 != (n / b) * b * (1 + 'v')) {
      fprintf(stderr, "hand-off checksum mismatch\n");
      return 1;
    }
    if (c1 != c2 || c2 != c3) {
      fprintf(stderr, "checksum mismatch: %llu %llu %llu\n", (unsigned long long)c1,
              (unsigned long long)c2, (unsigned long long)c3);
      return 1;
    }
    printf("| %u | %.2f | %.2f | %.2f | %.2f |\n", b, best[3], best[0], best[1], best[2]);
  }
  return 0;
}
