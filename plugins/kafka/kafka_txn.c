/*
 * kafka_txn.c - the transactional producer behind `delivery: exactly_once`.
 *
 * librdkafka cannot resume another process's transaction (init_transactions
 * aborts it), so a transaction prepared at a barrier and committed after the
 * checkpoint completes would be lost by a crash in between. Instead the
 * Kafka commit is the commit point of the checkpoint (SDK 1.6,
 * sl_checkpoint_commit_point): the host writes checkpoint N in full, calls
 * ktxn_commit (which commits the transaction holding everything the node
 * produced before barrier N), and marks N complete only after that. A start
 * that finds N written but unmarked asks ktxn_resolve, which reads what
 * Kafka committed.
 *
 * One transaction at a time, shared by all the node's tasks: at the
 * barrier each task closes its stash's gate (kafka_sink_stash.h), so the
 * records after it wait in memory until the commit, and a transaction never
 * holds records from after its barrier; the commit of a checkpoint is one
 * Kafka commit, atomic across tasks (per-task transactions could not be: a
 * crash between two of them would leave one committed and one aborted).
 *
 * The record of what committed: inside each transaction, just before the
 * commit, one message to the commit topic (key: the transactional id;
 * value: "sluice-commit 1 <checkpoint> <topic>/<partition>:<first>-<last>
 * ..."). A read_committed reader finds there the newest checkpoint whose
 * transaction committed, and which offsets it covered.
 *
 * Delivery reports are served by a thread of this file (no worker polls the
 * shared producer); they track failures and the offset range of each
 * partition written in the current transaction.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "kafka_sink_stash.h"

#define RANGES_MAX 1024 /* topic-partitions per transaction recorded in the marker */
/* room for every range at its longest (a 249-character topic and three
 * numbers), so that a marker is never cut inside a range; under 1 MB, the
 * brokers' default message size limit */
#define MARKER_MAX (RANGES_MAX * 300 + 64)
#define COMMIT_TIMEOUT_MS 60000

typedef struct range {
  char topic[256];
  int32_t partition;
  int64_t first, last;
} range_t;

struct ktxn {
  char *node;                /* the one node of the process using it */
  char *txn_id;
  char *commit_topic;
  char *cluster;             /* the producer's bootstrap servers */
  int source_offsets;        /* send the sources' offsets into the transactions */
  rd_kafka_t *rk;
  rd_kafka_topic_t *commit_rkt;
  int refs;
  int embedded;
  pthread_mutex_t mu;        /* ranges, error text */
  range_t *ranges;
  size_t range_count;
  _Atomic int failed;        /* a delivery failed in the current transaction */
  _Atomic int in_doubt;      /* a commit failed: nothing more may join */
  char first_error[512];
  pthread_t poller;
  int poller_started;
  _Atomic int stop;
  uint64_t committed;        /* newest checkpoint committed by this process */
  kstash_t **stashes;        /* the tasks' records waiting for queue room (under mu) */
  size_t stash_count;
};

static int kafka_fenced(rd_kafka_resp_err_t e) {
  return e == RD_KAFKA_RESP_ERR__FENCED || e == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         e == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ktxn_t *g_txn; /* one per process: see kafka_sink.c on why */

/* ------------------------------------------------- delivery reports */

static range_t *range_of(ktxn_t *t, const char *topic, int32_t partition) {
  for (size_t i = 0; i < t->range_count; i++)
    if (t->ranges[i].partition == partition && strcmp(t->ranges[i].topic, topic) == 0)
      return &t->ranges[i];
  if (t->range_count == RANGES_MAX) return NULL;
  range_t *r = &t->ranges[t->range_count++];
  snprintf(r->topic, sizeof r->topic, "%s", topic);
  r->partition = partition;
  r->first = INT64_MAX;
  r->last = -1;
  return r;
}

static void mark_failed_locked(ktxn_t *t, const char *why) {
  if (!atomic_load(&t->failed)) snprintf(t->first_error, sizeof t->first_error, "%s", why);
  atomic_store(&t->failed, 1);
}

void ktxn_mark_failed(ktxn_t *t, const char *why) {
  pthread_mutex_lock(&t->mu);
  mark_failed_locked(t, why);
  pthread_mutex_unlock(&t->mu);
}

int ktxn_in_doubt(ktxn_t *t) { return atomic_load(&t->in_doubt); }

/* A delivery report, on the poller thread (or on the checkpoint thread while
 * librdkafka flushes inside commit_transaction): hence the mutex. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  ktxn_t *t = opaque;
  const char *topic = rd_kafka_topic_name(m->rkt);
  pthread_mutex_lock(&t->mu);
  if (m->err) {
    char why[512];
    snprintf(why, sizeof why, "a message to '%s' partition %" PRId32 " was not delivered: %s",
             topic, m->partition, rd_kafka_err2str(m->err));
    mark_failed_locked(t, why);
  } else if (strcmp(topic, t->commit_topic) != 0) {
    range_t *r = range_of(t, topic, m->partition);
    if (r) { /* (the marker lists the first RANGES_MAX only) */
      if (m->offset < r->first) r->first = m->offset;
      if (m->offset > r->last) r->last = m->offset;
    }
  }
  pthread_mutex_unlock(&t->mu);
}

/* Serves the shared producer's delivery reports: no worker polls it. */
static void *poller_main(void *arg) {
  ktxn_t *t = arg;
  while (!atomic_load(&t->stop)) rd_kafka_poll(t->rk, 100);
  return NULL;
}

/* --------------------------------------------------------- creation */

static int txn_error(rd_kafka_error_t *e, const char *what, char *err, size_t errlen) {
  if (!e) return 0;
  if (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT)
    snprintf(err, errlen, "%s: librdkafka.transaction.timeout.ms is above the brokers' "
             "transaction.max.timeout.ms (%s)", what, rd_kafka_error_string(e));
  else if (kafka_fenced(rd_kafka_error_code(e)))
    snprintf(err, errlen, "%s: fenced: another instance started with the same transactional id "
             "(%s)", what, rd_kafka_error_string(e));
  else
    snprintf(err, errlen, "%s: %s", what, rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
  return -1;
}

/* A transactional producer for id on the node's brokers; init_transactions
 * done (which fences older instances with this id and aborts what they left
 * open). NULL with a message. */
static rd_kafka_t *producer_new(sl_ctx_t *ctx, const char *txn_id, ktxn_t *t, int *embedded,
                                char *err, size_t errlen) {
  rd_kafka_conf_t *conf = kafka_conf_new(ctx, embedded, err, errlen);
  if (!conf) return NULL;
  char e[512] = "";
  if (rd_kafka_conf_set(conf, "transactional.id", txn_id, e, sizeof e) != RD_KAFKA_CONF_OK ||
      kafka_conf_default(ctx, conf, "linger.ms", "5", err, errlen) != 0) {
    if (e[0]) snprintf(err, errlen, "transactional.id: %s", e);
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  if (t) {
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, t);
    free(t->cluster);
    t->cluster = kafka_conf_cluster(conf); /* (NULL: no offsets are sent) */
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot create the transactional producer: %s", e);
    goto fail;
  }
  if (txn_error(rd_kafka_init_transactions(rk, COMMIT_TIMEOUT_MS), "init_transactions", err,
                errlen) != 0) {
    rd_kafka_destroy(rk);
    goto fail;
  }
  return rk;
fail:
  if (*embedded) kafka_embedded_release();
  *embedded = 0;
  return NULL;
}

/* The commit topic must exist now, not at the first commit (a commit point
 * waiting for its metadata would hold the sink paused for a second). */
static int commit_topic_check(ktxn_t *t, char *err, size_t errlen) {
  t->commit_rkt = rd_kafka_topic_new(t->rk, t->commit_topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(t->rk, 0, t->commit_rkt, &md, 10000);
  if (!e && (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1))
    e = md->topic_cnt == 1 && md->topics[0].err ? md->topics[0].err
                                                 : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (md) rd_kafka_metadata_destroy(md);
  if (e) {
    snprintf(err, errlen, "commit topic '%s': %s (exactly_once writes one record per checkpoint "
             "there; create it with 1 partition, compacted, or name another with commit_topic)",
             t->commit_topic, rd_kafka_err2str(e));
    rd_kafka_topic_destroy(t->commit_rkt);
    t->commit_rkt = NULL;
    return -1;
  }
  return 0;
}

static void txn_free(ktxn_t *t) {
  if (t->poller_started) {
    atomic_store(&t->stop, 1);
    pthread_join(t->poller, NULL);
  }
  if (t->commit_rkt) rd_kafka_topic_destroy(t->commit_rkt);
  if (t->rk) rd_kafka_destroy(t->rk);
  if (t->embedded) kafka_embedded_release();
  pthread_mutex_destroy(&t->mu);
  free(t->ranges);
  free(t->stashes);
  free(t->node);
  free(t->txn_id);
  free(t->commit_topic);
  free(t->cluster);
  free(t);
}

ktxn_t *ktxn_acquire(sl_ctx_t *ctx, const char *txn_id, const char *commit_topic, char *err,
                     size_t errlen) {
  pthread_mutex_lock(&g_mu);
  ktxn_t *t = g_txn;
  if (t && strcmp(t->node, sl_node_name(ctx)) != 0) {
    snprintf(err, errlen, "node '%s' already writes exactly once in this job; one exactly_once "
             "kafka_sink node per job (their commits could not be atomic together; use one "
             "node with topic_field to write several topics)", t->node);
    pthread_mutex_unlock(&g_mu);
    return NULL;
  }
  if (t) {
    t->refs++;
    pthread_mutex_unlock(&g_mu);
    return t;
  }
  t = calloc(1, sizeof(*t));
  if (!t || !(t->ranges = calloc(RANGES_MAX, sizeof(range_t)))) {
    free(t);
    pthread_mutex_unlock(&g_mu);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&t->mu, NULL);
  t->node = strdup(sl_node_name(ctx));
  t->txn_id = strdup(txn_id);
  t->commit_topic = strdup(commit_topic);
  t->refs = 1;
  t->source_offsets = sl_config_bool(ctx, "source_offsets");
  t->rk = producer_new(ctx, txn_id, t, &t->embedded, err, errlen);
  if (t->rk && txn_error(rd_kafka_begin_transaction(t->rk), "begin_transaction", err, errlen)) {
    rd_kafka_destroy(t->rk);
    t->rk = NULL;
  }
  if (t->rk && commit_topic_check(t, err, errlen) != 0) {
    rd_kafka_destroy(t->rk);
    t->rk = NULL;
  }
  if (t->rk && pthread_create(&t->poller, NULL, poller_main, t) != 0) {
    snprintf(err, errlen, "cannot start the delivery report thread");
    rd_kafka_destroy(t->rk);
    t->rk = NULL;
  } else if (t->rk) {
    t->poller_started = 1;
  }
  if (!t->rk) {
    txn_free(t);
    t = NULL;
  }
  g_txn = t;
  pthread_mutex_unlock(&g_mu);
  return t;
}

void ktxn_release(ktxn_t *t) {
  pthread_mutex_lock(&g_mu);
  if (--t->refs == 0) {
    /* What is still open was produced after the last checkpoint that
     * committed: abort it (a replay from that checkpoint sends it again). */
    rd_kafka_error_t *e = rd_kafka_abort_transaction(t->rk, 10000);
    if (e) rd_kafka_error_destroy(e);
    txn_free(t);
    g_txn = NULL;
  }
  pthread_mutex_unlock(&g_mu);
}

rd_kafka_t *ktxn_handle(ktxn_t *t) { return t->rk; }

int ktxn_failed(ktxn_t *t, char *err, size_t errlen) {
  char fatal[256];
  rd_kafka_resp_err_t fe = rd_kafka_fatal_error(t->rk, fatal, sizeof fatal);
  if (fe) {
    snprintf(err, errlen, "%s: %s", kafka_fenced(fe) ? "fenced: another instance started with "
             "the same transactional id" : "fatal producer error", fatal);
    return 1;
  }
  if (!atomic_load(&t->failed)) return 0;
  pthread_mutex_lock(&t->mu);
  snprintf(err, errlen, "%s", t->first_error);
  pthread_mutex_unlock(&t->mu);
  return 1;
}

/* ----------------------------------------------------------- commit */

/* The marker's value: the checkpoint and the offsets this transaction covered. */
static size_t marker_text(ktxn_t *t, uint64_t id, char *buf, size_t cap) {
  size_t n = (size_t)snprintf(buf, cap, "sluice-commit 1 %" PRIu64, id);
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->range_count; i++) {
    const range_t *r = &t->ranges[i];
    if (r->last < 0) continue;
    int w = snprintf(buf + n, cap - n, " %s/%" PRId32 ":%" PRId64 "-%" PRId64, r->topic,
                     r->partition, r->first, r->last);
    if (w < 0 || (size_t)w >= cap - n) { /* (cannot happen: see MARKER_MAX) */
      buf[n] = 0;
      break;
    }
    n += (size_t)w;
  }
  pthread_mutex_unlock(&t->mu);
  return n;
}

int ktxn_track_stash(ktxn_t *t, kstash_t *stash) {
  pthread_mutex_lock(&t->mu);
  kstash_t **p = realloc(t->stashes, (t->stash_count + 1) * sizeof(*p));
  if (p) {
    t->stashes = p;
    p[t->stash_count++] = stash;
  }
  pthread_mutex_unlock(&t->mu);
  return p ? 0 : -1;
}

void ktxn_untrack_stash(ktxn_t *t, kstash_t *stash) {
  pthread_mutex_lock(&t->mu);
  for (size_t i = 0; i < t->stash_count; i++)
    if (t->stashes[i] == stash) t->stashes[i] = t->stashes[--t->stash_count];
  pthread_mutex_unlock(&t->mu);
}

/* Every task's records from before the barrier are queued: those in front
 * of each stash's gate (closed at the task's snapshot) belong to this
 * transaction. Waited for without the lock (the delivery reports that make
 * room take it). */
static int stashes_sent(ktxn_t *t) {
  pthread_mutex_lock(&t->mu);
  size_t n = t->stash_count;
  kstash_t *local[64];
  kstash_t **list = n <= 64 ? local : malloc(n * sizeof(*list));
  if (list) memcpy(list, t->stashes, n * sizeof(*list));
  pthread_mutex_unlock(&t->mu);
  if (!list) return -1;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = kstash_wait_gate(list[i], COMMIT_TIMEOUT_MS);
  if (list != local) free(list);
  return rc;
}

static int commit_once(ktxn_t *t, uint64_t id, size_t *groups, char *err, size_t errlen);

int ktxn_commit(ktxn_t *t, uint64_t id, size_t *groups, char *err, size_t errlen) {
  *groups = 0;
  if (id <= t->committed) return 0; /* another task's commit point did it */
  int rc = commit_once(t, id, groups, err, errlen);
  if (rc != 0) atomic_store(&t->in_doubt, 1);
  return rc;
}

static int commit_once(ktxn_t *t, uint64_t id, size_t *groups, char *err, size_t errlen) {
  if (stashes_sent(t) != 0) {
    snprintf(err, errlen, "kafka_sink: checkpoint %" PRIu64 ": records still waiting for room in "
             "the producer's queue after %d ms", id, COMMIT_TIMEOUT_MS);
    return -1;
  }
  /* The sources' positions at this checkpoint join the transaction, so
   * that their groups' offsets commit with the output (before the flush:
   * librdkafka goes on delivering in the background meanwhile). */
  char oerr[600];
  if (t->source_offsets && t->cluster &&
      kafka_offsets_send(t->rk, t->cluster, id, COMMIT_TIMEOUT_MS, groups, oerr, sizeof oerr)) {
    snprintf(err, errlen, "kafka_sink: checkpoint %" PRIu64 ": %s", id, oerr);
    return -1;
  }
  /* Everything of the transaction delivered, so that the marker can name
   * the offsets; then the marker; then the commit. */
  rd_kafka_resp_err_t fe = rd_kafka_flush(t->rk, COMMIT_TIMEOUT_MS); /* (serves reports too) */
  char why[512];
  if (ktxn_failed(t, why, sizeof why)) {
    snprintf(err, errlen, "kafka_sink: checkpoint %" PRIu64 ": %s", id, why);
    return -1;
  }
  if (fe) {
    snprintf(err, errlen, "kafka_sink: checkpoint %" PRIu64 ": messages still undelivered after "
             "%d ms: %s", id, COMMIT_TIMEOUT_MS, rd_kafka_err2str(fe));
    return -1;
  }
  char *marker = malloc(MARKER_MAX);
  if (!marker) {
    snprintf(err, errlen, "kafka_sink: out of memory");
    return -1;
  }
  size_t mlen = marker_text(t, id, marker, MARKER_MAX);
  rd_kafka_resp_err_t pe = rd_kafka_producev(
      t->rk, RD_KAFKA_V_RKT(t->commit_rkt), RD_KAFKA_V_PARTITION(0),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(t->txn_id, strlen(t->txn_id)),
      RD_KAFKA_V_VALUE(marker, mlen), RD_KAFKA_V_END);
  free(marker);
  if (pe) {
    snprintf(err, errlen, "kafka_sink: checkpoint %" PRIu64 ": cannot write to the commit topic "
             "'%s': %s", id, t->commit_topic, rd_kafka_err2str(pe));
    return -1;
  }
  char what[128];
  snprintf(what, sizeof what, "kafka_sink: checkpoint %" PRIu64 ": commit_transaction", id);
  if (txn_error(rd_kafka_commit_transaction(t->rk, COMMIT_TIMEOUT_MS), what, err, errlen) != 0)
    return -1;
  t->committed = id;
  pthread_mutex_lock(&t->mu);
  t->range_count = 0;
  pthread_mutex_unlock(&t->mu);
  snprintf(what, sizeof what, "kafka_sink: after checkpoint %" PRIu64 ": begin_transaction", id);
  return txn_error(rd_kafka_begin_transaction(t->rk), what, err, errlen);
}

/* ---------------------------------------------------------- resolve */

/* The checkpoint id of a commit record's value; 0 or -1. */
static int parse_marker(const char *v, size_t len, uint64_t *id) {
  char buf[64];
  size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
  memcpy(buf, v, n);
  buf[n] = 0;
  unsigned long long x;
  if (sscanf(buf, "sluice-commit 1 %llu", &x) != 1) return -1;
  *id = x;
  return 0;
}

int ktxn_last_committed(sl_ctx_t *ctx, const char *txn_id, const char *commit_topic,
                        uint64_t *last, char *err, size_t errlen) {
  *last = 0;
  int embedded = 0;
  /* Fence first: this aborts what a dead instance left open, and waits for
   * a commit it had started, so that what is read next is settled. */
  rd_kafka_t *fence = producer_new(ctx, txn_id, NULL, &embedded, err, errlen);
  if (!fence) return -1;
  rd_kafka_destroy(fence);
  if (embedded) kafka_embedded_release();
  rd_kafka_conf_t *conf = kafka_conf_new(ctx, &embedded, err, errlen);
  if (!conf) return -1;
  char e[512];
  rd_kafka_conf_set(conf, "isolation.level", "read_committed", e, sizeof e);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e);
  rd_kafka_conf_set(conf, "group.id", txn_id, e, sizeof e);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", e, sizeof e);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
  int rc = -1;
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot create a consumer for the commit topic: %s", e);
    goto out;
  }
  int64_t lo = 0, hi = 0;
  rd_kafka_resp_err_t qe = rd_kafka_query_watermark_offsets(rk, commit_topic, 0, &lo, &hi, 10000);
  if (qe) {
    snprintf(err, errlen, "commit topic '%s': %s", commit_topic, rd_kafka_err2str(qe));
    goto out;
  }
  /* Read back from the end in growing windows until a marker of ours. */
  int found = 0;
  for (int64_t window = 64; !found && hi > lo; window *= 4) {
    int64_t from = hi - window > lo ? hi - window : lo;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, commit_topic, 0)->offset = from;
    rd_kafka_assign(rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    for (int idle = 0; idle < 50;) {
      rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
      if (!m) {
        idle++;
        continue;
      }
      int64_t off = m->offset;
      int at_end = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
      uint64_t id;
      if (!m->err && m->key_len == strlen(txn_id) && memcmp(m->key, txn_id, m->key_len) == 0 &&
          parse_marker(m->payload, m->len, &id) == 0) {
        *last = id; /* the newest so far */
        found = 1;
      }
      rd_kafka_message_destroy(m);
      if (at_end || off >= hi - 1) break;
    }
    if (from == lo) break;
  }
  rc = 0;
out:
  if (rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
  if (embedded) kafka_embedded_release();
  return rc;
}
