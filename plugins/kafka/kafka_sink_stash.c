/*
 * kafka_sink_stash.c - records waiting for room in librdkafka's queue, or
 * behind an exactly-once commit's gate (see kafka_sink_stash.h).
 *
 * Memory: the bytes of the records live in blocks that never move, so the
 * stash's thread can send a record without holding the lock while the task
 * adds more. The blocks are reused once the stash is empty: no allocation
 * per record once warm.
 *
 * Locking: one mutex guards the entries and positions. The task's thread
 * takes it to append one record (a copy). Whoever sends (the stash's
 * thread, or the task's thread taking back the backlog of an opened gate;
 * the `draining` flag lets one at a time) takes it to read the next entry
 * and again to step past it, and sends in between, so no thread waits for
 * another's send.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_sink_stash.h"

#define RETRY_MS 5            /* a full queue is tried again this often */
#define IDLE_MS 100           /* the thread's wait (or poll) with nothing to send */
#define HANDOFF_MS 2          /* how long an opened gate's backlog is left to the task's thread */
#define BLOCK_BYTES (1u << 20) /* record bytes are kept in blocks of this size (or one record's) */

/* A record: its bytes are in the blocks. */
typedef struct ent {
  const char *topic; /* NULL: the sink's fixed topic */
  const char *key, *value;
  size_t key_len, value_len;
  size_t hdrs;       /* index of its first header in hdrs[] */
  uint32_t hdr_count;
  int has_key;
  int64_t ts;
  uintptr_t tag;
} ent_t;

typedef struct block {
  char *data;
  size_t used, cap;
} block_t;

struct kstash {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* records added, the gate moved, a record sent, or stop */
  pthread_t thread;
  rd_kafka_t *poll_rk;
  kstash_send_fn send;
  kstash_drained_fn drained;
  void *arg;
  int stop;
  _Atomic int busy;      /* records held, or the gate closed */
  _Atomic size_t bytes;  /* put into blocks since the stash was last empty */
  int gated;
  size_t gate;           /* with gated: entries before it may be sent */
  int draining;          /* a thread is sending (the stash's, or the task's) */
  int handoff;           /* the gate just opened: the stash's thread waits before sending */
  int released;          /* what the stash holds came through an opened gate: the task's
                          * thread may send it itself (a full queue's backlog it may not) */
  block_t *blocks;
  size_t block_n, cur;   /* blocks allocated; the one being filled */
  ent_t *ents;
  size_t n, next, ents_cap; /* ents[next..n) wait to be sent */
  sl_header_t *hdrs;
  size_t hdr_n, hdr_cap;
  sl_header_t *scratch;  /* the sender's copy of the headers being sent */
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

/* Room for len bytes in one block; NULL when out of memory. Blocks after
 * `cur` hold nothing that waits to be sent, so they may be resized. */
static char *reserve(kstash_t *s, size_t len) {
  if (s->block_n && s->blocks[s->cur].cap - s->blocks[s->cur].used >= len)
    return s->blocks[s->cur].data + s->blocks[s->cur].used;
  size_t i = s->block_n ? s->cur + 1 : 0;
  if (i == s->block_n) {
    block_t *b = realloc(s->blocks, (s->block_n + 1) * sizeof(*b));
    if (!b) return NULL;
    s->blocks = b;
    s->blocks[s->block_n++] = (block_t){0};
  }
  block_t *b = &s->blocks[i];
  if (!b->data || b->cap < len) { /* (a first reservation of 0 bytes needs a block too) */
    size_t cap = len > BLOCK_BYTES ? len : BLOCK_BYTES;
    char *d = realloc(b->data, cap);
    if (!d) return NULL;
    b->data = d;
    b->cap = cap;
  }
  b->used = 0;
  s->cur = i;
  return b->data;
}

static const char *put(kstash_t *s, const void *data, size_t len) {
  char *at = s->blocks[s->cur].data + s->blocks[s->cur].used;
  if (len) memcpy(at, data, len);
  s->blocks[s->cur].used += len;
  return at;
}

/* Everything sent: reuse the buffers. Lock held. */
static void reset_locked(kstash_t *s) {
  s->n = s->next = s->hdr_n = s->gate = 0;
  s->cur = 0;
  s->released = 0;
  for (size_t i = 0; i < s->block_n; i++) s->blocks[i].used = 0;
  atomic_store(&s->bytes, 0);
}

static size_t send_limit(const kstash_t *s) { return s->gated ? s->gate : s->n; }

/* Sends what it may, in order, unless another thread is at it; lock held
 * on entry and exit (released around each send). 1 when the queue was
 * full. */
static int drain_locked(kstash_t *s) {
  if (s->draining) return 0;
  s->draining = 1;
  int full = 0;
  while (!s->stop && s->next < send_limit(s)) {
    ent_t e = s->ents[s->next]; /* (ents may move while unlocked; the bytes do not) */
    if (grow((void **)&s->scratch, &s->scratch_cap, e.hdr_count, sizeof(sl_header_t)) != 0) {
      full = 1; /* out of memory: tried again at the next turn */
      break;
    }
    if (e.hdr_count) memcpy(s->scratch, s->hdrs + e.hdrs, e.hdr_count * sizeof(sl_header_t));
    sl_record_t r = {.key = e.has_key ? e.key : NULL, .key_len = e.key_len, .value = e.value,
                     .value_len = e.value_len, .ts = e.ts, .headers = s->scratch,
                     .header_count = e.hdr_count};
    pthread_mutex_unlock(&s->mu);
    int rc = s->send(s->arg, e.topic, &r, e.tag);
    pthread_mutex_lock(&s->mu);
    if (rc == 1) { /* still full */
      full = 1;
      break;
    }
    s->next++;             /* (-1: the callee reported it; the record is dropped) */
    if (s->gated && s->next == s->gate) pthread_cond_broadcast(&s->cv);
  }
  s->draining = 0;
  if (s->next == s->n && s->n) {
    reset_locked(s);
    pthread_cond_broadcast(&s->cv);
    if (!s->gated) atomic_store(&s->busy, 0);
    s->drained(s->arg); /* (nothing waits for room, gate or not) */
  }
  return full;
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
    int wait_ms = IDLE_MS;
    if (s->handoff) {
      /* The gate just opened: the task's thread, at its next record, sends
       * the backlog itself (one thread producing, no copy handed across).
       * Take it over only if that thread stays idle. */
      s->handoff = 0;
      wait_ms = HANDOFF_MS;
    } else if (drain_locked(s)) {
      wait_ms = RETRY_MS;
    } else if (s->next == s->n) {
      /* Idle and empty: say so again. A task that paused its input just as
       * the stash emptied (its pause and the last send crossed) resumes
       * here at the latest; the sink also checks right after pausing. */
      s->drained(s->arg);
    }
    if (s->stop) break;
    if (s->poll_rk) {
      /* delivery reports make room; rd_kafka_poll returns once it served some */
      pthread_mutex_unlock(&s->mu);
      rd_kafka_poll(s->poll_rk, wait_ms);
      pthread_mutex_lock(&s->mu);
    } else {
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
  for (size_t i = 0; i < s->block_n; i++) free(s->blocks[i].data);
  free(s->blocks);
  free(s->ents);
  free(s->hdrs);
  free(s->scratch);
  free(s);
}

/* A copy of one field in the blocks; NULL when out of memory. */
static const char *keep(kstash_t *s, const void *data, size_t len) {
  return reserve(s, len) ? put(s, data, len) : NULL;
}

int kstash_add(kstash_t *s, const char *topic, const sl_record_t *r, uintptr_t tag, int force) {
  /* No lock per record while the stash is empty and open: only the task's
   * thread fills the stash or closes its gate, so a stash seen idle here
   * stays idle until this thread changes that. */
  if (!force && !atomic_load(&s->busy)) return KSTASH_EMPTY;
  pthread_mutex_lock(&s->mu);
  if (!force && !s->gated && s->released && s->next < s->n && !s->draining) {
    /* a backlog the gate let go: send it from here, then this record */
    s->handoff = 0;
    if (drain_locked(s)) s->released = 0; /* the queue is full: the stash's thread retries */
  }
  if (!force && !s->gated && s->next == s->n) {
    pthread_mutex_unlock(&s->mu);
    return KSTASH_EMPTY;
  }
  size_t bytes = r->key_len + r->value_len + (topic ? strlen(topic) + 1 : 0);
  ent_t e = {.has_key = r->key != NULL, .key_len = r->key_len, .value_len = r->value_len,
             .hdr_count = r->header_count, .hdrs = s->hdr_n, .ts = r->ts, .tag = tag};
  int ok = grow((void **)&s->ents, &s->ents_cap, s->n + 1, sizeof(ent_t)) == 0 &&
           grow((void **)&s->hdrs, &s->hdr_cap, s->hdr_n + r->header_count,
                sizeof(sl_header_t)) == 0 &&
           (!topic || (e.topic = keep(s, topic, strlen(topic) + 1))) &&
           (e.key = keep(s, r->key, r->key_len)) && (e.value = keep(s, r->value, r->value_len));
  for (uint32_t i = 0; ok && i < r->header_count; i++) {
    const sl_header_t *h = &r->headers[i];
    sl_header_t *c = &s->hdrs[s->hdr_n + i];
    c->name_len = h->name_len;
    c->value_len = h->value_len;
    ok = (c->name = keep(s, h->name, h->name_len)) && (c->value = keep(s, h->value, h->value_len));
    bytes += h->name_len + h->value_len;
  }
  if (!ok) { /* (the bytes already copied stay unused until the next reset) */
    pthread_mutex_unlock(&s->mu);
    return SL_ENOMEM;
  }
  s->hdr_n += r->header_count;
  s->ents[s->n++] = e;
  atomic_fetch_add(&s->bytes, bytes);
  atomic_store(&s->busy, 1);
  int gated = s->gated;
  if (!gated) pthread_cond_broadcast(&s->cv); /* (behind the gate, nothing to send yet) */
  pthread_mutex_unlock(&s->mu);
  return gated ? KSTASH_GATED : KSTASH_ROOM;
}

int kstash_busy(kstash_t *s) { return atomic_load(&s->busy); }

int kstash_empty(kstash_t *s) {
  pthread_mutex_lock(&s->mu);
  int empty = s->next == s->n;
  pthread_mutex_unlock(&s->mu);
  return empty;
}

size_t kstash_bytes(kstash_t *s) { return atomic_load(&s->bytes); }

void kstash_close_gate(kstash_t *s) {
  pthread_mutex_lock(&s->mu);
  s->gated = 1;
  s->gate = s->n;
  atomic_store(&s->busy, 1);
  pthread_mutex_unlock(&s->mu);
}

int kstash_wait_gate(kstash_t *s, int64_t timeout_ms) {
  struct timespec ts;
  deadline_in(&ts, timeout_ms);
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->cv); /* (the stash's thread sends them) */
  while (s->next < send_limit(s) && rc == 0)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) rc = -1;
  if (s->next >= send_limit(s)) rc = 0;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void kstash_open_gate(kstash_t *s) {
  pthread_mutex_lock(&s->mu);
  s->gated = 0;
  s->gate = 0;
  if (s->next == s->n) {
    reset_locked(s);
    atomic_store(&s->busy, 0);
    s->drained(s->arg);
  } else {
    s->handoff = 1;
    s->released = 1;
  }
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}
