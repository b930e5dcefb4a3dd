/*
 * kafka_embedded.c - `brokers: embedded`: librdkafka's mock cluster inside
 * the sluice process, so that a DAG runs with no broker at all (examples,
 * tests). One cluster per process, shared by every node that asks for it,
 * refcounted: open() and close() run on the job's main thread, but a lock
 * keeps it safe anyway. Its data lives in memory and goes with it.
 */
#include <pthread.h>
#include <stdio.h>

#include "kafka.h" /* (rdkafka.h first) */

#include <librdkafka/rdkafka_mock.h>

static pthread_mutex_t emb_mu = PTHREAD_MUTEX_INITIALIZER;
static rd_kafka_t *emb_rk; /* the handle the mock cluster hangs on */
static rd_kafka_mock_cluster_t *emb_mc;
static int emb_users;

const char *kafka_embedded_acquire(char *err, size_t errlen) {
  pthread_mutex_lock(&emb_mu);
  if (!emb_mc) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    emb_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!emb_rk) {
      rd_kafka_conf_destroy(conf);
      snprintf(err, errlen, "brokers: embedded: cannot create the cluster's handle: %s", errstr);
      pthread_mutex_unlock(&emb_mu);
      return NULL;
    }
    emb_mc = rd_kafka_mock_cluster_new(emb_rk, 1);
    if (!emb_mc) {
      rd_kafka_destroy(emb_rk);
      emb_rk = NULL;
      snprintf(err, errlen, "brokers: embedded: librdkafka could not start its mock cluster");
      pthread_mutex_unlock(&emb_mu);
      return NULL;
    }
  }
  emb_users++;
  const char *bs = rd_kafka_mock_cluster_bootstraps(emb_mc);
  pthread_mutex_unlock(&emb_mu);
  return bs;
}

int kafka_embedded_topic(const char *topic, int partitions, char *err, size_t errlen) {
  pthread_mutex_lock(&emb_mu);
  rd_kafka_resp_err_t e =
      emb_mc ? rd_kafka_mock_topic_create(emb_mc, topic, partitions, 1) : RD_KAFKA_RESP_ERR__STATE;
  pthread_mutex_unlock(&emb_mu);
  if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    snprintf(err, errlen, "brokers: embedded: cannot create topic '%s': %s", topic,
             rd_kafka_err2str(e));
    return -1;
  }
  return 0;
}

void kafka_embedded_release(void) {
  pthread_mutex_lock(&emb_mu);
  if (emb_users > 0 && --emb_users == 0) {
    rd_kafka_mock_cluster_destroy(emb_mc);
    rd_kafka_destroy(emb_rk);
    emb_mc = NULL;
    emb_rk = NULL;
  }
  pthread_mutex_unlock(&emb_mu);
}
