/*
 * kafka_dev.c - librdkafka's mock cluster as a development cluster (see
 * kafka_dev.h). The mock needs a client handle for its bookkeeping: a
 * producer that is never used, whose log lines go to our log.
 */
#include "kafka_dev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "log.h"

struct sl_kafka_dev {
  rd_kafka_t *rk;
  rd_kafka_mock_cluster_t *mc;
  int brokers;
};

/* librdkafka's syslog levels onto ours. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  sl_log_level_t l = level <= 3 ? SL_LOG_ERROR : level == 4 ? SL_LOG_WARN : SL_LOG_DEBUG;
  sl_log_msg(l, "kafka-dev", "%s: %s", fac, buf);
}

sl_kafka_dev_t *sl_kafka_dev_start(int brokers, char *err, size_t errlen) {
  if (brokers < 1 || brokers > SL_KAFKA_DEV_MAX_BROKERS) {
    snprintf(err, errlen, "brokers must be 1 to %d, got %d", SL_KAFKA_DEV_MAX_BROKERS, brokers);
    return NULL;
  }
  sl_kafka_dev_t *d = calloc(1, sizeof(*d));
  if (!d) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, on_log);
  char errstr[512];
  d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!d->rk) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot create the cluster's client handle: %s", errstr);
    free(d);
    return NULL;
  }
  d->mc = rd_kafka_mock_cluster_new(d->rk, brokers);
  if (!d->mc) {
    snprintf(err, errlen, "librdkafka could not start a mock cluster of %d brokers", brokers);
    rd_kafka_destroy(d->rk);
    free(d);
    return NULL;
  }
  d->brokers = brokers;
  return d;
}

rd_kafka_mock_cluster_t *sl_kafka_dev_mock(sl_kafka_dev_t *d); /* for kafka_dev_faults.c */
rd_kafka_mock_cluster_t *sl_kafka_dev_mock(sl_kafka_dev_t *d) { return d->mc; }

const char *sl_kafka_dev_bootstraps(const sl_kafka_dev_t *d) {
  return rd_kafka_mock_cluster_bootstraps(d->mc);
}

int sl_kafka_dev_create_topic(sl_kafka_dev_t *d, const char *name, int partitions, char *err,
                              size_t errlen) {
  int rf = d->brokers < 3 ? d->brokers : 3;
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(d->mc, name, partitions, rf);
  if (e) {
    snprintf(err, errlen, "cannot create topic '%s': %s", name, rd_kafka_err2str(e));
    return -1;
  }
  return 0;
}

void sl_kafka_dev_stop(sl_kafka_dev_t *d) {
  if (!d) return;
  rd_kafka_mock_cluster_destroy(d->mc);
  rd_kafka_destroy(d->rk);
  free(d);
}

int sl_kafka_topic_arg(const char *arg, char *name, int *partitions, char *err, size_t errlen) {
  const char *colon = strrchr(arg, ':');
  size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
  *partitions = 1;
  if (colon) {
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 1 || p > SL_KAFKA_DEV_MAX_PARTITIONS) {
      snprintf(err, errlen, "topic '%s': partitions must be an integer from 1 to %d", arg,
               SL_KAFKA_DEV_MAX_PARTITIONS);
      return -1;
    }
    *partitions = (int)p;
  }
  if (n == 0 || n > SL_KAFKA_TOPIC_MAX) {
    snprintf(err, errlen, "topic '%s': a name has 1 to %d characters", arg, SL_KAFKA_TOPIC_MAX);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    char c = arg[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-')) {
      snprintf(err, errlen, "topic '%s': a name has only letters, digits, '.', '_' and '-'", arg);
      return -1;
    }
  }
  if ((n == 1 && arg[0] == '.') || (n == 2 && arg[0] == '.' && arg[1] == '.')) {
    snprintf(err, errlen, "topic '%s': '.' and '..' are not topic names", arg);
    return -1;
  }
  memcpy(name, arg, n);
  name[n] = '\0';
  return 0;
}
