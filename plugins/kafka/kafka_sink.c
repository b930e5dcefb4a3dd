/*
 * kafka_sink.c - operator "kafka_sink": records to a topic, at least once
 * (here) or exactly once (kafka_txn.c).
 *
 * Each record becomes a message with its key, value, headers and timestamp,
 * to the configured topic or to the one a top-level JSON field of the value
 * (topic_field) or a header (topic_header) names. The producer is
 * idempotent, so librdkafka's own retries neither duplicate nor reorder
 * within a partition.
 *
 * At least once: a checkpoint must not complete while a message produced
 * before its barrier is unacknowledged, or a crash after it would lose that
 * message (the source would resume after it). Messages are tagged with the
 * epoch (the number of barriers seen before them); snapshot() starts a new
 * epoch and hands the host a function (sl_checkpoint_await) that its
 * checkpoint thread runs before the checkpoint completes: it serves
 * delivery reports until no message of that epoch or an earlier one is in
 * flight. A message librdkafka gives up on (message.timeout.ms) fails the
 * job, which then recovers from the last complete checkpoint and sends
 * again: nothing is lost, some messages may be sent twice.
 *
 * The worker thread never waits: produce() only queues, and delivery
 * reports are served by the task's stash thread (kafka_sink_stash.c). When
 * librdkafka's queue is full (queue.buffering.max.messages / .kbytes), the
 * record and those after it go to the stash, and the task's input is
 * paused; the stash's thread queues them, in order, as room appears, and
 * reopens the input once it is empty.
 *
 * Exactly once: at a barrier the stash's gate closes (kstash_close_gate).
 * Records after the barrier wait behind it, in memory, while the commit
 * point commits the transaction that holds those before it; the commit
 * opens the gate and they go into the next transaction. The input pauses
 * only when they take more than commit_buffer_bytes.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "kafka_sink_stash.h"

#define EPOCHS 16 /* in-flight counters, by epoch modulo EPOCHS */

typedef struct ksink {
  sl_ctx_t *ctx;
  rd_kafka_t *rk;      /* the task's own, or the shared transactional one */
  ktxn_t *txn;         /* exactly_once: the node's transaction (kafka_txn.c) */
  rd_kafka_topic_t *topic; /* the fixed topic, or NULL with topic_field / topic_header */
  char *topic_field;
  char *topic_header;
  int embedded;
  int64_t await_timeout_ms;
  uint64_t epoch;                       /* the task's: messages are tagged with it */
  _Atomic int64_t in_flight[EPOCHS];    /* by epoch % EPOCHS; delivery reports decrement */
  _Atomic int failed;                   /* a message was not delivered */
  pthread_mutex_t err_mu;
  char first_error[512];
  kstash_t *stash;          /* records waiting for room in librdkafka's queue */
  bool gate_full;           /* the task's thread: the gate's buffer is over its limit */
  sl_counter_t *queue_full; /* times the queue was full and the input held */
  sl_counter_t *commit_buffered;    /* records kept behind the gate while a commit ran */
  sl_counter_t *commit_buffer_full; /* times records behind the gate filled commit_buffer_bytes */
  size_t gate_max_bytes;    /* exactly_once: commit_buffer_bytes */
} ksink_t;

/* The input pauses while the stash holds more than it should (a full
 * queue, or a full gate), and resumes when the stash has emptied
 * (stash_drained, on whichever thread emptied it). The host's pause and
 * resume are idempotent and safe from any thread, so they need no state of
 * ours. On the task's thread, after a record joined the stash: the stash
 * may have emptied (and resumed) between the add and the pause, so look
 * again once paused; whoever empties it later resumes after the pause. */
static void input_hold_for_room(ksink_t *k) {
  if (sl_input_pause(k->ctx) == 0 && kstash_empty(k->stash)) sl_input_resume(k->ctx);
}

typedef struct await_arg {
  ksink_t *k;
  uint64_t epoch; /* wait for this epoch and the earlier ones */
} await_arg_t;

/* Delivery report: on the thread that called rd_kafka_poll (the stash's,
 * or the checkpoint thread in sink_await). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  ksink_t *k = opaque;
  uintptr_t epoch = (uintptr_t)m->_private;
  if (m->err) {
    pthread_mutex_lock(&k->err_mu);
    if (!atomic_load(&k->failed))
      snprintf(k->first_error, sizeof k->first_error,
               "a message to '%s' partition %" PRId32 " was not delivered: %s",
               rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
    atomic_store(&k->failed, 1);
    pthread_mutex_unlock(&k->err_mu);
  }
  atomic_fetch_sub(&k->in_flight[epoch % EPOCHS], 1);
}

static int check_failed(sl_ctx_t *ctx, ksink_t *k) {
  char fatal[512];
  if (k->txn) {
    if (!ktxn_failed(k->txn, fatal, sizeof fatal)) return 0;
    sl_fail(ctx, "kafka_sink: %s (the job recovers from its last checkpoint; what the open "
            "transaction held is aborted and sent again)", fatal);
    return SL_EIO;
  }
  if (rd_kafka_fatal_error(k->rk, fatal, sizeof fatal)) {
    sl_fail(ctx, "kafka_sink: fatal producer error: %s", fatal);
    return SL_EIO;
  }
  if (!atomic_load(&k->failed)) return 0;
  pthread_mutex_lock(&k->err_mu);
  sl_fail(ctx, "kafka_sink: %s (the job recovers from its last checkpoint and sends again)",
          k->first_error);
  pthread_mutex_unlock(&k->err_mu);
  return SL_EIO;
}

/* -------------------------------------------------------------- open */

static void ksink_free(ksink_t *k) {
  if (k->stash) {
    if (k->txn) ktxn_untrack_stash(k->txn, k->stash);
    kstash_free(k->stash); /* before the producer it polls and sends to */
  }
  if (k->topic) rd_kafka_topic_destroy(k->topic);
  if (k->txn) {
    ktxn_release(k->txn);
  } else if (k->rk) {
    rd_kafka_flush(k->rk, 10000); /* close(): the main thread, after on_end drained it */
    rd_kafka_destroy(k->rk);
  }
  if (k->embedded) kafka_embedded_release();
  pthread_mutex_destroy(&k->err_mu);
  free(k->topic_field);
  free(k->topic_header);
  free(k);
}

/* exactly_once: the node's transactional id and commit topic, into the buffers. */
static int txn_names(sl_ctx_t *ctx, char *id, size_t idcap, char *ctopic, size_t ccap, char *err,
                     size_t errlen) {
  const char *cid = sl_config_string(ctx, "transactional_id");
  const char *ct = sl_config_string(ctx, "commit_topic");
  if (*cid) snprintf(id, idcap, "%s", cid);
  else snprintf(id, idcap, "sluice.%s", sl_node_name(ctx));
  if (*ct) snprintf(ctopic, ccap, "%s", ct);
  else snprintf(ctopic, ccap, "%s.commits", id);
  return kafka_topic_name_ok(ctopic, err, errlen);
}

/* The transaction must outlive a checkpoint interval (it spans one), or the
 * brokers abort it before its commit. */
static int check_txn_timeout(sl_ctx_t *ctx, char *err, size_t errlen) {
  int64_t interval = sl_checkpoint_interval_ms(ctx);
  const char *v = kafka_conf_value(ctx, "transaction.timeout.ms");
  int64_t timeout = v ? strtoll(v, NULL, 10) : 60000; /* librdkafka's default */
  if (timeout < 3 * interval) {
    snprintf(err, errlen, "librdkafka.transaction.timeout.ms (%" PRId64 " ms) must be at least "
             "three times the checkpoint interval (%" PRId64 " ms): a transaction stays open from "
             "one checkpoint to the next, and past a checkpoint that fails to the one after",
             timeout, interval);
    return -1;
  }
  return 0;
}

static int stash_send(void *arg, const char *topic, const sl_record_t *r, uintptr_t epoch);
static void stash_drained(void *arg);

static int open_transactional(sl_ctx_t *ctx, ksink_t *k, const char *topic, char *err,
                              size_t errlen) {
  if (sl_checkpoint_interval_ms(ctx) <= 0) {
    snprintf(err, errlen, "delivery: exactly_once needs checkpoints (settings.checkpoints with "
             "an interval): the transactions commit with them");
    return -1;
  }
  if (check_txn_timeout(ctx, err, errlen) != 0) return -1;
  char id[256], ctopic[300];
  if (txn_names(ctx, id, sizeof id, ctopic, sizeof ctopic, err, errlen) != 0) return -1;
  if (strcmp(sl_config_string(ctx, "brokers"), "embedded") == 0) {
    char e[256];
    int parts = (int)sl_config_int(ctx, "embedded_partitions");
    if (kafka_embedded_acquire(e, sizeof e) == NULL ||
        (*topic && kafka_embedded_topic(topic, parts, e, sizeof e) != 0) ||
        kafka_embedded_topic(ctopic, 1, e, sizeof e) != 0) {
      snprintf(err, errlen, "%s", e);
      return -1;
    }
    k->embedded = 1;
  }
  k->txn = ktxn_acquire(ctx, id, ctopic, err, errlen);
  if (!k->txn) return -1;
  k->rk = ktxn_handle(k->txn);
  if (*topic) k->topic = rd_kafka_topic_new(k->rk, topic, NULL);
  /* (delivery reports: the transaction's own thread serves them) */
  k->stash = kstash_new(NULL, stash_send, stash_drained, k);
  if (!k->stash || ktxn_track_stash(k->txn, k->stash) != 0) {
    snprintf(err, errlen, "cannot start the thread that queues records when the producer's "
             "queue is full");
    return -1;
  }
  return 0;
}

static int ksink_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  char err[768];
  ksink_t *k = calloc(1, sizeof(*k));
  if (!k) return SL_ENOMEM;
  pthread_mutex_init(&k->err_mu, NULL);
  const char *topic = sl_config_string(ctx, "topic");
  const char *field = sl_config_string(ctx, "topic_field");
  const char *header = sl_config_string(ctx, "topic_header");
  const char *delivery = sl_config_string(ctx, "delivery");
  k->ctx = ctx;
  k->queue_full = sl_counter(ctx, "queue_full");
  k->commit_buffer_full = sl_counter(ctx, "commit_buffer_full");
  k->commit_buffered = sl_counter(ctx, "commit_buffered");
  k->await_timeout_ms = sl_config_duration_ms(ctx, "checkpoint_timeout");
  int exactly_once = strcmp(delivery, "exactly_once") == 0;
  if (!exactly_once && strcmp(delivery, "at_least_once") != 0) {
    snprintf(err, sizeof err, "config 'delivery': expected at_least_once or exactly_once, got '%s'",
             delivery);
    goto fail;
  }
  if (!!*topic + !!*field + !!*header != 1) {
    snprintf(err, sizeof err, "set exactly one of 'topic', 'topic_field' and 'topic_header'");
    goto fail;
  }
  if (*topic && kafka_topic_name_ok(topic, err, sizeof err) != 0) goto fail;
  if (*field) k->topic_field = strdup(field);
  if (*header) k->topic_header = strdup(header);
  if (exactly_once) {
    int64_t gate_max = sl_config_int(ctx, "commit_buffer_bytes");
    if (gate_max < 0) {
      snprintf(err, sizeof err, "config 'commit_buffer_bytes': expected 0 or more, got %" PRId64,
               gate_max);
      goto fail;
    }
    k->gate_max_bytes = (size_t)gate_max;
    if (open_transactional(ctx, k, topic, err, sizeof err) != 0) goto fail;
    *state = k;
    return SL_OK;
  }
  rd_kafka_conf_t *conf = kafka_conf_new(ctx, &k->embedded, err, sizeof err);
  if (!conf) goto fail;
  if (k->embedded && *topic &&
      kafka_embedded_topic(topic, (int)sl_config_int(ctx, "embedded_partitions"), err, sizeof err) != 0) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  if (kafka_conf_default(ctx, conf, "enable.idempotence", "true", err, sizeof err) != 0 ||
      kafka_conf_default(ctx, conf, "linger.ms", "5", err, sizeof err) != 0) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, k);
  char errstr[512];
  k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!k->rk) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, sizeof err, "cannot create the producer: %s", errstr);
    goto fail;
  }
  if (*topic) k->topic = rd_kafka_topic_new(k->rk, topic, NULL);
  k->stash = kstash_new(k->rk, stash_send, stash_drained, k);
  if (!k->stash) {
    snprintf(err, sizeof err, "cannot start the thread that serves the delivery reports");
    goto fail;
  }
  *state = k;
  return SL_OK;
fail:
  snprintf(errbuf, errlen, "kafka_sink: %s", err);
  ksink_free(k);
  return SL_ECONFIG;
}

/* ----------------------------------------------------------- process */

/* The topic named by the record's topic_field, into buf. */
static int record_topic(sl_ctx_t *ctx, ksink_t *k, const sl_record_t *r, char *buf, size_t cap) {
  sl_json_value_t v;
  int rc = sl_json_get(ctx, r->value, r->value_len, k->topic_field, &v);
  if (rc != 0 || v.type != SL_JSON_STRING) {
    sl_set_error(ctx, "kafka_sink: topic_field '%s' is %s", k->topic_field,
                 rc == SL_ERECORD ? "unreadable: the value is not a JSON object"
                 : rc != 0        ? "missing from the record"
                                  : "not a JSON string");
    return SL_ERECORD;
  }
  if (v.len >= cap || memchr(v.ptr, '\\', v.len)) {
    sl_set_error(ctx, "kafka_sink: topic_field '%s' does not hold a topic name", k->topic_field);
    return SL_ERECORD;
  }
  memcpy(buf, v.ptr, v.len);
  buf[v.len] = 0;
  char err[300];
  if (kafka_topic_name_ok(buf, err, sizeof err) != 0) {
    sl_set_error(ctx, "kafka_sink: topic_field '%s': %s", k->topic_field, err);
    return SL_ERECORD;
  }
  return 0;
}

/* The topic named by the record's header topic_header (the first of that
 * name), into buf. */
static int header_topic(sl_ctx_t *ctx, ksink_t *k, const sl_record_t *r, char *buf, size_t cap) {
  size_t nl = strlen(k->topic_header);
  for (uint32_t i = 0; i < r->header_count; i++) {
    const sl_header_t *h = &r->headers[i];
    if (h->name_len != nl || memcmp(h->name, k->topic_header, nl) != 0) continue;
    if (h->value_len == 0 || h->value_len >= cap || memchr(h->value, 0, h->value_len)) break;
    memcpy(buf, h->value, h->value_len);
    buf[h->value_len] = 0;
    char err[300];
    if (kafka_topic_name_ok(buf, err, sizeof err) != 0) {
      sl_set_error(ctx, "kafka_sink: topic_header '%s': %s", k->topic_header, err);
      return SL_ERECORD;
    }
    return 0;
  }
  sl_set_error(ctx, "kafka_sink: topic_header '%s' is %s", k->topic_header,
               r->header_count ? "missing from the record, or empty, or too long"
                               : "missing: the record has no headers");
  return SL_ERECORD;
}

/* Queues one message: 0, 1 when librdkafka's queue is full, -1 with a
 * message in err. topic: a topic name, or NULL for the fixed topic. The
 * caller counted it in flight (at least once); a failure uncounts it. */
static int send_msg(ksink_t *k, const char *topic, const sl_record_t *r, uintptr_t epoch,
                    char *err, size_t errlen) {
  rd_kafka_headers_t *hs = NULL;
  if (r->header_count) {
    hs = rd_kafka_headers_new(r->header_count);
    for (uint32_t i = 0; i < r->header_count; i++)
      rd_kafka_header_add(hs, r->headers[i].name, (ssize_t)r->headers[i].name_len,
                          r->headers[i].value, (ssize_t)r->headers[i].value_len);
  }
  /* one argument list for both: a fixed topic's handle, or the record's name */
  rd_kafka_vu_t vu[7] = {
      topic ? (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = topic}
            : (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = k->topic},
      {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
      {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {(void *)r->key, r->key_len}},
      {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {(void *)r->value, r->value_len}},
      {.vtype = RD_KAFKA_VTYPE_TIMESTAMP, .u.i64 = r->ts > 0 ? r->ts : 0},
      {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = hs},
      {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = (void *)epoch},
  };
  rd_kafka_error_t *error = rd_kafka_produceva(k->rk, vu, 7);
  rd_kafka_resp_err_t e = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
  if (error) rd_kafka_error_destroy(error);
  if (!e) return 0; /* the headers belong to the message now */
  if (hs) rd_kafka_headers_destroy(hs);
  if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) return 1;
  if (!k->txn) atomic_fetch_sub(&k->in_flight[epoch % EPOCHS], 1);
  snprintf(err, errlen, "cannot queue a message: %s", rd_kafka_err2str(e));
  return -1;
}

/* The stash's thread sends a record it kept; a failure fails the job at the
 * task's next call (check_failed), or the checkpoint waiting for it. */
static int stash_send(void *arg, const char *topic, const sl_record_t *r, uintptr_t epoch) {
  ksink_t *k = arg;
  char err[300];
  int rc = send_msg(k, topic, r, epoch, err, sizeof err);
  if (rc < 0 && k->txn) {
    ktxn_mark_failed(k->txn, err); /* the transaction must not commit without it */
  } else if (rc < 0) {
    pthread_mutex_lock(&k->err_mu);
    if (!atomic_load(&k->failed)) snprintf(k->first_error, sizeof k->first_error, "%s", err);
    atomic_store(&k->failed, 1);
    pthread_mutex_unlock(&k->err_mu);
  }
  return rc;
}

static void stash_drained(void *arg) { sl_input_resume(((ksink_t *)arg)->ctx); }

static int produce_one(sl_ctx_t *ctx, ksink_t *k, const sl_record_t *r) {
  char tbuf[256];
  const char *topic = NULL;
  if (k->topic_field || k->topic_header) {
    int rc = k->topic_field ? record_topic(ctx, k, r, tbuf, sizeof tbuf)
                            : header_topic(ctx, k, r, tbuf, sizeof tbuf);
    if (rc) return rc;
    topic = tbuf;
  }
  uintptr_t epoch = (uintptr_t)k->epoch;
  if (!k->txn) atomic_fetch_add(&k->in_flight[epoch % EPOCHS], 1);
  /* records waiting for room go first: this one joins them */
  int rc = kstash_add(k->stash, topic, r, epoch, 0);
  if (rc == 0) {
    char err[300];
    rc = send_msg(k, topic, r, epoch, err, sizeof err);
    if (rc < 0) {
      sl_fail(ctx, "kafka_sink: %s", err);
      return SL_EIO;
    }
    if (rc == 0) {
      k->gate_full = false; /* (the stash is empty and its gate open) */
      return 0;
    }
    /* the queue is full: hold the input, keep the record (paused first, so
     * that the stash's thread, emptying it, resumes after) */
    if (sl_input_pause(ctx) != 0) {
      if (!k->txn) atomic_fetch_sub(&k->in_flight[epoch % EPOCHS], 1);
      sl_fail(ctx, "kafka_sink: cannot pause the input while the producer's queue is full");
      return SL_EIO;
    }
    sl_counter_add(k->queue_full, 1);
    rc = kstash_add(k->stash, topic, r, epoch, 1);
  } else if (rc == KSTASH_ROOM) {
    /* (again at every record kept: a pause that crossed the stash thread's
     * resume is taken again here) */
    input_hold_for_room(k);
  } else if (rc == KSTASH_GATED) {
    sl_counter_add(k->commit_buffered, 1);
    bool full = kstash_bytes(k->stash) > k->gate_max_bytes || k->gate_max_bytes == 0;
    if (full && !k->gate_full) sl_counter_add(k->commit_buffer_full, 1);
    k->gate_full = full;
    /* a commit is taking long: hold the input until the stash has sent them */
    if (full) input_hold_for_room(k);
  }
  if (rc < 0) {
    if (!k->txn) atomic_fetch_sub(&k->in_flight[epoch % EPOCHS], 1);
    sl_fail(ctx, "kafka_sink: out of memory keeping a record until the producer's queue has room");
    return SL_ENOMEM;
  }
  return 0;
}

static int ksink_process_batch(sl_ctx_t *ctx, void *state, const sl_record_t *recs, size_t n) {
  ksink_t *k = state;
  int rc = check_failed(ctx, k);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    rc = produce_one(ctx, k, &recs[i]);
    if (rc) return rc; /* (a batch fails as a whole under on_error) */
  }
  return 0;
}

static int ksink_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  ksink_t *k = state;
  int rc = check_failed(ctx, k);
  if (rc) return rc;
  return produce_one(ctx, k, rec);
}

/* Input has ended: called again (SL_AGAIN) until every message is acknowledged
 * (exactly_once: the final checkpoint commits what is left). */
static int ksink_on_end(sl_ctx_t *ctx, void *state) {
  ksink_t *k = state;
  if (k->txn) return check_failed(ctx, k); /* the final checkpoint commits the rest */
  int rc = check_failed(ctx, k);
  if (rc) return rc;
  /* (the stash's thread serves the delivery reports) */
  return kstash_busy(k->stash) || rd_kafka_outq_len(k->rk) > 0 ? SL_AGAIN : 0;
}

/* --------------------------------------------------------- checkpoints */

static int64_t in_flight_up_to(ksink_t *k, uint64_t epoch) {
  int64_t n = 0;
  for (uint64_t e = epoch >= EPOCHS - 1 ? epoch - (EPOCHS - 1) : 0; e <= epoch; e++)
    n += atomic_load(&k->in_flight[e % EPOCHS]);
  return n;
}

/* On the checkpoint thread: every message before the barrier acknowledged. */
static int sink_await(void *arg, char *err, size_t errlen) {
  await_arg_t *a = arg;
  ksink_t *k = a->k;
  int64_t waited = 0;
  int rc = 0;
  while (in_flight_up_to(k, a->epoch) > 0) {
    if (waited >= k->await_timeout_ms) {
      snprintf(err, errlen, "kafka_sink: %" PRId64 " messages still unacknowledged after %" PRId64
               " ms (checkpoint_timeout)", in_flight_up_to(k, a->epoch), waited);
      rc = -1;
      break;
    }
    rd_kafka_poll(k->rk, 50);
    waited += 50;
  }
  if (rc == 0 && atomic_load(&k->failed)) {
    pthread_mutex_lock(&k->err_mu);
    snprintf(err, errlen, "kafka_sink: %s", k->first_error);
    pthread_mutex_unlock(&k->err_mu);
    rc = -1;
  }
  free(a);
  return rc;
}

/* exactly_once, on the checkpoint thread: the first task's call commits the
 * node's transaction (the others find it done); every call opens its
 * task's gate, so that the records after the barrier go into the next
 * transaction. A checkpoint abandoned before its commit point (commit = 0)
 * leaves the transaction open: they join it, and the next checkpoint
 * commits them all. After a failed commit (this task's, or another's: the
 * host then calls the rest with commit = 0) the gates stay closed: the job
 * is failing, and nothing more may join a transaction in doubt. */
static int txn_commit_point(void *arg, uint64_t id, int commit, char *err, size_t errlen) {
  ksink_t *k = arg;
  size_t groups = 0;
  int rc = commit ? ktxn_commit(k->txn, id, &groups, err, errlen) : 0;
  if (rc == 0 && groups)
    sl_log(k->ctx, SL_LOG_DEBUG, "checkpoint %" PRIu64 ": the offsets of %zu consumer group(s) "
           "committed in its transaction", id, groups);
  if (rc == 0 && !ktxn_in_doubt(k->txn)) kstash_open_gate(k->stash);
  return rc;
}

static int ksink_snapshot(sl_ctx_t *ctx, void *state, uint64_t id) {
  ksink_t *k = state;
  if (k->txn) {
    /* Nothing after the barrier may join the transaction: the records after
     * it wait behind the gate until the commit point (or the checkpoint's
     * abandonment) opens it. */
    kstash_close_gate(k->stash);
    int rc = sl_checkpoint_commit_point(ctx, txn_commit_point, k);
    if (rc != 0) sl_fail(ctx, "kafka_sink: checkpoint %" PRIu64 ": cannot register the commit", id);
    return rc;
  }
  /* An epoch EPOCHS back still in flight means earlier awaits have not run:
   * keep the epoch (the await then also waits for what follows the barrier:
   * slower, still correct). */
  uint64_t before = k->epoch;
  if (atomic_load(&k->in_flight[(before + 1) % EPOCHS]) == 0) k->epoch++;
  await_arg_t *a = malloc(sizeof(*a));
  if (!a) return SL_ENOMEM;
  *a = (await_arg_t){k, before};
  int rc = sl_checkpoint_await(ctx, sink_await, a);
  if (rc < 0) {
    free(a);
    sl_fail(ctx, "kafka_sink: checkpoint %" PRIu64 ": cannot wait for deliveries", id);
  }
  return rc;
}

static void ksink_close(void *state) { ksink_free(state); }

/* A start found checkpoint id written but unmarked: did its transaction commit? */
static int ksink_resolve(sl_ctx_t *ctx, uint64_t id, char *errbuf, size_t errlen) {
  if (strcmp(sl_config_string(ctx, "delivery"), "exactly_once") != 0) return SL_ENOTFOUND;
  char txn_id[256], ctopic[300], err[768];
  uint64_t last = 0;
  if (txn_names(ctx, txn_id, sizeof txn_id, ctopic, sizeof ctopic, err, sizeof err) != 0 ||
      ktxn_last_committed(ctx, txn_id, ctopic, &last, err, sizeof err) != 0) {
    snprintf(errbuf, errlen, "kafka_sink: %s", err);
    return SL_EIO;
  }
  return last >= id ? 1 : 0;
}

static const sl_config_key_t ksink_config[] = {
    KAFKA_CLIENT_CONFIG,
    {"topic", SL_CONFIG_STRING, "", "the topic (or topic_field, or topic_header)"},
    {"topic_field", SL_CONFIG_STRING, "", "a top-level JSON string field naming each record's topic"},
    {"topic_header", SL_CONFIG_STRING, "", "a header naming each record's topic"},
    {"delivery", SL_CONFIG_STRING, "at_least_once", "at_least_once | exactly_once (Kafka transactions)"},
    {"transactional_id", SL_CONFIG_STRING, "",
     "exactly_once: the producer's transactional.id (default sluice.<node>); unique per job"},
    {"commit_topic", SL_CONFIG_STRING, "",
     "exactly_once: topic of the commit records (default <transactional_id>.commits)"},
    {"checkpoint_timeout", SL_CONFIG_DURATION, "60s",
     "how long a checkpoint waits for deliveries"},
    {"source_offsets", SL_CONFIG_BOOL, "true",
     "exactly_once: send the positions of the job's kafka_source tasks on this cluster into each "
     "transaction (send_offsets_to_transaction)"},
    {"commit_buffer_bytes", SL_CONFIG_INT, "16777216",
     "exactly_once: bytes of records kept per task while a commit is under way, before the "
     "input pauses"},
};

const sl_operator_t kafka_sink_op = {
    SL_OPERATOR_INIT,
    .name = "kafka_sink",
    .version = "0.1.0",
    .description = "records to a Kafka topic, at least once or exactly once",
    .kind = SL_KIND_SINK,
    .config = ksink_config,
    .config_count = sizeof(ksink_config) / sizeof(ksink_config[0]),
    .open = ksink_open,
    .process = ksink_process,
    .process_batch = ksink_process_batch,
    .on_end = ksink_on_end,
    .close = ksink_close,
    .snapshot = ksink_snapshot,
    .resolve = ksink_resolve,
};
