/*
 * kafka_sink.c - operator "kafka_sink": records to a topic, at least once.
 *
 * Each record becomes a message with its key, value, headers and timestamp,
 * to the configured topic or to the one a top-level JSON field of the value
 * names (topic_field). The producer is idempotent, so librdkafka's own
 * retries neither duplicate nor reorder within a partition.
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
 * The worker thread never waits for the network: produce() only queues, and
 * delivery reports are served with rd_kafka_poll(rk, 0). When librdkafka's
 * queue is full (queue.buffering.max.messages / .kbytes) the worker waits
 * for room in steps of 10 ms: the one place this sink blocks, until the
 * host can pause a sink's input (see docs/kafka.md).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

#define EPOCHS 16 /* in-flight counters, by epoch modulo EPOCHS */

typedef struct ksink {
  rd_kafka_t *rk;
  rd_kafka_topic_t *topic; /* the fixed topic, or NULL with topic_field */
  char *topic_field;
  int embedded;
  int64_t await_timeout_ms;
  uint64_t epoch;                       /* the task's: messages are tagged with it */
  _Atomic int64_t in_flight[EPOCHS];    /* by epoch % EPOCHS; delivery reports decrement */
  _Atomic int failed;                   /* a message was not delivered */
  pthread_mutex_t err_mu;
  char first_error[512];
} ksink_t;

typedef struct await_arg {
  ksink_t *k;
  uint64_t epoch; /* wait for this epoch and the earlier ones */
} await_arg_t;

/* Delivery report: on the thread that called rd_kafka_poll (the task's, or
 * the checkpoint thread in sink_await). */
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
  char fatal[256];
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
  if (k->topic) rd_kafka_topic_destroy(k->topic);
  if (k->rk) {
    rd_kafka_flush(k->rk, 10000); /* close(): the main thread, after on_end drained it */
    rd_kafka_destroy(k->rk);
  }
  if (k->embedded) kafka_embedded_release();
  pthread_mutex_destroy(&k->err_mu);
  free(k->topic_field);
  free(k);
}

static int ksink_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  char err[768];
  ksink_t *k = calloc(1, sizeof(*k));
  if (!k) return SL_ENOMEM;
  pthread_mutex_init(&k->err_mu, NULL);
  const char *topic = sl_config_string(ctx, "topic");
  const char *field = sl_config_string(ctx, "topic_field");
  const char *delivery = sl_config_string(ctx, "delivery");
  k->await_timeout_ms = sl_config_duration_ms(ctx, "checkpoint_timeout");
  if (strcmp(delivery, "exactly_once") == 0) {
    snprintf(err, sizeof err, "delivery: exactly_once (Kafka transactions) is not available yet; "
             "use at_least_once (see docs/kafka.md)");
    goto fail;
  }
  if (strcmp(delivery, "at_least_once") != 0) {
    snprintf(err, sizeof err, "config 'delivery': expected at_least_once, got '%s'", delivery);
    goto fail;
  }
  if (!*topic == !*field) {
    snprintf(err, sizeof err, "set exactly one of 'topic' and 'topic_field'");
    goto fail;
  }
  if (*topic && kafka_topic_name_ok(topic, err, sizeof err) != 0) goto fail;
  if (*field) k->topic_field = strdup(field);
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

static int produce_one(sl_ctx_t *ctx, ksink_t *k, const sl_record_t *r) {
  char tbuf[256];
  if (k->topic_field) {
    int rc = record_topic(ctx, k, r, tbuf, sizeof tbuf);
    if (rc) return rc;
  }
  rd_kafka_headers_t *hs = NULL;
  if (r->header_count) {
    hs = rd_kafka_headers_new(r->header_count);
    for (uint32_t i = 0; i < r->header_count; i++)
      rd_kafka_header_add(hs, r->headers[i].name, (ssize_t)r->headers[i].name_len,
                          r->headers[i].value, (ssize_t)r->headers[i].value_len);
  }
  uintptr_t epoch = (uintptr_t)k->epoch;
  atomic_fetch_add(&k->in_flight[epoch % EPOCHS], 1);
  /* one argument list for both: a fixed topic's handle, or the record's name */
  rd_kafka_vu_t vu[7] = {
      k->topic ? (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = k->topic}
               : (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = tbuf},
      {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
      {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {(void *)r->key, r->key_len}},
      {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {(void *)r->value, r->value_len}},
      {.vtype = RD_KAFKA_VTYPE_TIMESTAMP, .u.i64 = r->ts > 0 ? r->ts : 0},
      {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = hs},
      {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = (void *)epoch},
  };
  for (int64_t waited = 0;; waited += 10) {
    rd_kafka_error_t *error = rd_kafka_produceva(k->rk, vu, 7);
    rd_kafka_resp_err_t e = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (error) rd_kafka_error_destroy(error);
    if (!e) return 0; /* the headers belong to the message now */
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited >= k->await_timeout_ms) {
      atomic_fetch_sub(&k->in_flight[epoch % EPOCHS], 1);
      if (hs) rd_kafka_headers_destroy(hs);
      sl_fail(ctx, "kafka_sink: cannot queue a message%s: %s", e == RD_KAFKA_RESP_ERR__QUEUE_FULL
              ? " (the producer's queue stayed full)" : "", rd_kafka_err2str(e));
      return SL_EIO;
    }
    rd_kafka_poll(k->rk, 10); /* full: serve deliveries, which makes room */
  }
}

static int ksink_process_batch(sl_ctx_t *ctx, void *state, const sl_record_t *recs, size_t n) {
  ksink_t *k = state;
  int rc = check_failed(ctx, k);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    rc = produce_one(ctx, k, &recs[i]);
    if (rc) return rc; /* (a batch fails as a whole under on_error) */
  }
  rd_kafka_poll(k->rk, 0);
  return 0;
}

static int ksink_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  ksink_t *k = state;
  int rc = check_failed(ctx, k);
  if (rc) return rc;
  rc = produce_one(ctx, k, rec);
  rd_kafka_poll(k->rk, 0);
  return rc;
}

/* Input has ended: called again (SL_AGAIN) until every message is acknowledged. */
static int ksink_on_end(sl_ctx_t *ctx, void *state) {
  ksink_t *k = state;
  rd_kafka_poll(k->rk, 0);
  int rc = check_failed(ctx, k);
  if (rc) return rc;
  return rd_kafka_outq_len(k->rk) > 0 ? SL_AGAIN : 0;
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

static int ksink_snapshot(sl_ctx_t *ctx, void *state, uint64_t id) {
  ksink_t *k = state;
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

static const sl_config_key_t ksink_config[] = {
    KAFKA_CLIENT_CONFIG,
    {"topic", SL_CONFIG_STRING, "", "the topic (or topic_field)"},
    {"topic_field", SL_CONFIG_STRING, "", "a top-level JSON string field naming each record's topic"},
    {"delivery", SL_CONFIG_STRING, "at_least_once", "at_least_once"},
    {"checkpoint_timeout", SL_CONFIG_DURATION, "60s",
     "how long a checkpoint waits for deliveries (and produce for queue room)"},
};

const sl_operator_t kafka_sink_op = {
    SL_OPERATOR_INIT,
    .name = "kafka_sink",
    .version = "0.1.0",
    .description = "records to a Kafka topic, at least once",
    .kind = SL_KIND_SINK,
    .config = ksink_config,
    .config_count = sizeof(ksink_config) / sizeof(ksink_config[0]),
    .open = ksink_open,
    .process = ksink_process,
    .process_batch = ksink_process_batch,
    .on_end = ksink_on_end,
    .close = ksink_close,
    .snapshot = ksink_snapshot,
};
