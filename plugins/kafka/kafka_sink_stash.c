/*
 * kafka_sink_stash.c - records waiting for room in librdkafka's queue (see
 * kafka_sink_stash.h). The buffers grow to the largest backlog seen and are
 * reused: no allocation per record once warm.
 *
 * Locking: one mutex guards the stash. The task's thread appends under it;
 * the stash's thread sends under it, in order, so a record appended while
 * the stash is being emptied still goes after the ones before it. Sending
 * is rd_kafka_produceva, which does not block.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_sink_stash.h"

#define RETRY_MS 5  /* a full queue is tried again this often */
#define IDLE_MS 100 /* the thread's wait (or poll) with nothing stashed */

/* A record in the arena: offsets, not pointers (the arena moves as it grows). */
typedef struct ent {
  size_t topic, key, value, hdrs; /* offsets; topic (size_t)-1: the sink's fixed topic */
  size_t key_len, value_len;
  uint32_t hdr_count;
  int has_key;
  int64_t ts;
  uintptr_t tag;
} ent_t;

/* A header in the arena. */
typedef struct hdr {
  size_t name, name_len, value, value_len;
} hdr_t;

struct kstash {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* signalled when records are added, the stash empties, or stop */
  pthread_t thread;
  rd_kafka_t *poll_rk;
  kstash_send_fn send;
  kstash_drained_fn drained;
  void *arg;
  int stop;
  _Atomic int busy;
  char *arena;
  size_t len, cap;
  ent_t *ents;
  size_t n, next, ents_cap; /* ents[next..n) wait to be sent */
  hdr_t *hdrs;
  size_t hdr_n, hdr_cap;
  sl_header_t *scratch; /* the headers of the record being sent */
  size_t scratch_cap;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, c * elem);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static size_t put(kstash_t *s, const void *data, size_t len) {
  size_t at = s->len;
  if (len) memcpy(s->arena + at, data, len);
  s->len += len;
  return at;
}

/* Sends what it can, in order; on the stash's thread, with the lock held. */
static void drain_locked(kstash_t *s) {
  while (s->next < s->n) {
    const ent_t *e = &s->ents[s->next];
    if (grow((void **)&s->scratch, &s->scratch_cap, e->hdr_count, sizeof(sl_header_t)) != 0)
      return; /* tried again at the next turn */
    for (uint32_t i = 0; i < e->hdr_count; i++) {
      const hdr_t *h = &s->hdrs[e->hdrs + i];
      s->scratch[i] = (sl_header_t){s->arena + h->name, h->name_len, s->arena + h->value,
                                    h->value_len};
    }
    sl_record_t r = {.key = e->has_key ? s->arena + e->key : NULL, .key_len = e->key_len,
                     .value = s->arena + e->value, .value_len = e->value_len, .ts = e->ts,
                     .headers = s->scratch, .header_count = e->hdr_count};
    const char *topic = e->topic == (size_t)-1 ? NULL : s->arena + e->topic;
    if (s->send(s->arg, topic, &r, e->tag) == 1) return; /* still full */
    s->next++;
  }
  s->n = s->next = s->len = s->hdr_n = 0;
  atomic_store(&s->busy, 0);
  pthread_cond_broadcast(&s->cv);
  s->drained(s->arg);
}

static void deadline_in(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void *stash_main(void *arg) {
  kstash_t *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    drain_locked(s);
    int wait_ms = s->next < s->n ? RETRY_MS : IDLE_MS;
    if (s->poll_rk) {
      /* delivery reports make room; rd_kafka_poll returns once it served some */
      pthread_mutex_unlock(&s->mu);
      rd_kafka_poll(s->poll_rk, wait_ms);
      pthread_mutex_lock(&s->mu);
    } else if (!s->stop) {
      struct timespec ts;
      deadline_in(&ts, wait_ms);
      pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

kstash_t *kstash_new(rd_kafka_t *poll_rk, kstash_send_fn send, kstash_drained_fn drained,
                     void *arg) {
  kstash_t *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->poll_rk = poll_rk;
  s->send = send;
  s->drained = drained;
  s->arg = arg;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, stash_main, s) != 0) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
  }
  return s;
}

void kstash_free(kstash_t *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s->arena);
  free(s->ents);
  free(s->hdrs);
  free(s->scratch);
  free(s);
}

int kstash_add(kstash_t *s, const char *topic, const sl_record_t *r, uintptr_t tag, int force) {
  /* No lock per record: only the task's thread fills the stash, so an empty
   * one seen here stays empty until this thread adds to it. */
  if (!force && !atomic_load(&s->busy)) return 0;
  pthread_mutex_lock(&s->mu);
  if (!force && s->next == s->n) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  size_t tl = topic ? strlen(topic) + 1 : 0, bytes = tl + r->key_len + r->value_len;
  for (uint32_t i = 0; i < r->header_count; i++)
    bytes += r->headers[i].name_len + r->headers[i].value_len;
  if (grow((void **)&s->arena, &s->cap, s->len + bytes, 1) != 0 ||
      grow((void **)&s->ents, &s->ents_cap, s->n + 1, sizeof(ent_t)) != 0 ||
      grow((void **)&s->hdrs, &s->hdr_cap, s->hdr_n + r->header_count, sizeof(hdr_t)) != 0) {
    pthread_mutex_unlock(&s->mu);
    return SL_ENOMEM;
  }
  ent_t *e = &s->ents[s->n++];
  *e = (ent_t){.topic = topic ? put(s, topic, tl) : (size_t)-1, .has_key = r->key != NULL,
               .key_len = r->key_len, .value_len = r->value_len, .hdr_count = r->header_count,
               .hdrs = s->hdr_n, .ts = r->ts, .tag = tag};
  e->key = put(s, r->key, r->key_len);
  e->value = put(s, r->value, r->value_len);
  for (uint32_t i = 0; i < r->header_count; i++) {
    hdr_t *h = &s->hdrs[s->hdr_n++];
    h->name_len = r->headers[i].name_len;
    h->name = put(s, r->headers[i].name, h->name_len);
    h->value_len = r->headers[i].value_len;
    h->value = put(s, r->headers[i].value, h->value_len);
  }
  atomic_store(&s->busy, 1);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return 1;
}

int kstash_busy(kstash_t *s) { return atomic_load(&s->busy); }

int kstash_wait_empty(kstash_t *s, int64_t timeout_ms) {
  struct timespec ts;
  deadline_in(&ts, timeout_ms);
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  while (s->next < s->n && rc == 0)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) rc = -1;
  if (s->next == s->n) rc = 0;
  pthread_mutex_unlock(&s->mu);
  return rc;
}
