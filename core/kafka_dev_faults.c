/*
 * kafka_dev_faults.c - fault injection into the development cluster: one
 * text command at a time (from `sluice kafka-dev --control FIFO`), applied
 * through librdkafka's mock API. The commands (docs/kafka.md):
 *
 *   error API CODE [COUNT]          the next COUNT requests of API fail with CODE
 *   down BROKER | up BROKER         a broker drops its connections / takes them again
 *   rtt BROKER MS                   a broker answers MS milliseconds late
 *   coordinator transaction|group KEY BROKER
 *                                   move the coordinator of a transactional id or group
 *
 * API is a request name (Produce, EndTxn, ...); CODE a Kafka error name as
 * librdkafka spells it (NOT_LEADER_FOR_PARTITION, PRODUCER_FENCED,
 * _TRANSPORT ...) or its number; BROKER an id from 1, or -1 for all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka_dev.h"

static const struct {
  const char *name;
  int16_t key;
} apis[] = {
    {"Produce", 0},          {"Fetch", 1},           {"ListOffsets", 2},
    {"Metadata", 3},         {"OffsetCommit", 8},    {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},      {"Heartbeat", 12},
    {"LeaveGroup", 13},      {"SyncGroup", 14},      {"InitProducerId", 22},
    {"AddPartitionsToTxn", 24}, {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

static int api_key(const char *name) {
  for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)
    if (strcmp(apis[i].name, name) == 0) return apis[i].key;
  return -1;
}

/* An error code by librdkafka's name for it, or by number; 0 if unknown. */
static rd_kafka_resp_err_t error_code(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s && !*end) return (rd_kafka_resp_err_t)v;
  for (int c = -200; c < 200; c++) {
    const char *n = rd_kafka_err2name((rd_kafka_resp_err_t)c);
    if (n && strcmp(n, s) == 0 && c != 0) return (rd_kafka_resp_err_t)c;
  }
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static int broker_id(const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < -1 || v == 0 || v > SL_KAFKA_DEV_MAX_BROKERS) return -1;
  *out = (int)v;
  return 0;
}

/* kafka_dev.c */
rd_kafka_mock_cluster_t *sl_kafka_dev_mock(sl_kafka_dev_t *d);

int sl_kafka_dev_fault(sl_kafka_dev_t *d, const char *line, char *msg, size_t msglen) {
  rd_kafka_mock_cluster_t *mc = sl_kafka_dev_mock(d);
  char w[5][256] = {{0}};
  int n = sscanf(line, "%255s %255s %255s %255s %255s", w[0], w[1], w[2], w[3], w[4]);
  int b = 0;
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (n >= 3 && n <= 4 && strcmp(w[0], "error") == 0) {
    int key = api_key(w[1]);
    rd_kafka_resp_err_t code = error_code(w[2]);
    long count = n == 4 ? strtol(w[3], NULL, 10) : 1;
    if (key < 0 || !code || count < 1 || count > 1000) goto bad;
    rd_kafka_resp_err_t *codes = malloc((size_t)count * sizeof(*codes));
    if (!codes) goto bad;
    for (long i = 0; i < count; i++) codes[i] = code;
    rd_kafka_mock_push_request_errors_array(mc, (int16_t)key, (size_t)count, codes);
    free(codes);
    snprintf(msg, msglen, "the next %ld %s request(s) fail with %s", count, w[1],
             rd_kafka_err2name(code));
    return 0;
  }
  if (n == 2 && (strcmp(w[0], "down") == 0 || strcmp(w[0], "up") == 0)) {
    if (broker_id(w[1], &b) != 0) goto bad;
    e = w[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, b) : rd_kafka_mock_broker_set_up(mc, b);
    snprintf(msg, msglen, "broker %d %s", b, w[0][0] == 'd' ? "down" : "up");
  } else if (n == 3 && strcmp(w[0], "rtt") == 0) {
    char *end;
    long ms = strtol(w[2], &end, 10);
    if (broker_id(w[1], &b) != 0 || *end || ms < 0 || ms > 600000) goto bad;
    e = rd_kafka_mock_broker_set_rtt(mc, b, (int)ms);
    snprintf(msg, msglen, "broker %d answers %ld ms late", b, ms);
  } else if (n == 4 && strcmp(w[0], "coordinator") == 0 &&
             (strcmp(w[1], "transaction") == 0 || strcmp(w[1], "group") == 0)) {
    if (broker_id(w[3], &b) != 0 || b < 1) goto bad;
    e = rd_kafka_mock_coordinator_set(mc, w[1], w[2], b);
    snprintf(msg, msglen, "the %s coordinator of '%s' is broker %d", w[1], w[2], b);
  } else {
    goto bad;
  }
  if (e) {
    snprintf(msg, msglen, "'%s': %s", line, rd_kafka_err2str(e));
    return -1;
  }
  return 0;
bad:
  snprintf(msg, msglen, "not a fault command: '%s' (error API CODE [COUNT] | down BROKER | "
           "up BROKER | rtt BROKER MS | coordinator transaction|group KEY BROKER)", line);
  return -1;
}
