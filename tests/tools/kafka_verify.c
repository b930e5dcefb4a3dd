/*
 * kafka_verify.c - the verifying consumer of tests/e2e/kafka_exactly_once.sh:
 * prints the values of a topic that a read_committed reader would see, one
 * per line (values must not hold newlines).
 *
 *   kafka_verify BROKERS TOPIC COMMIT_TOPIC TXN_ID   (librdkafka's mock)
 *   kafka_verify BROKERS TOPIC --read-committed      (a real broker)
 *
 * A real broker hides aborted transactions itself: the second form reads
 * with isolation.level=read_committed. librdkafka's mock cluster writes no
 * transaction markers and shows everything, aborted or not, so the first
 * form rebuilds what a read_committed reader would see from the commit
 * records kafka_sink writes inside each transaction ("sluice-commit 1 <id>
 * <topic>/<partition>:<first>-<last> ..."): only messages within the offset
 * ranges of a commit record count. On the mock a commit record is visible
 * once written, even if its EndTxn never came; the sink's resolve() reads
 * it the same way, so the test checks that the data and the decisions agree.
 *
 * Also prints to stderr the number of commit records and of messages kept
 * and dropped. Exit 0, or 1 on an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

typedef struct range {
  int32_t partition;
  int64_t first, last;
} range_t;

static range_t *g_ranges;
static size_t g_n, g_cap;

static void add_ranges(const char *topic, const char *v, size_t len) {
  char *s = strndup(v, len);
  char *save = NULL;
  size_t tlen = strlen(topic);
  for (char *tok = strtok_r(s, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    if (strncmp(tok, topic, tlen) != 0 || tok[tlen] != '/') continue;
    int32_t p;
    int64_t a, b;
    if (sscanf(tok + tlen + 1, "%" SCNd32 ":%" SCNd64 "-%" SCNd64, &p, &a, &b) != 3) continue;
    if (g_n == g_cap) {
      g_cap = g_cap ? 2 * g_cap : 64;
      g_ranges = realloc(g_ranges, g_cap * sizeof(*g_ranges));
    }
    g_ranges[g_n++] = (range_t){p, a, b};
  }
  free(s);
}

static int committed(int32_t p, int64_t off) {
  for (size_t i = 0; i < g_n; i++)
    if (g_ranges[i].partition == p && off >= g_ranges[i].first && off <= g_ranges[i].last) return 1;
  return 0;
}

/* Consume every partition of topic from the start to its end; call fn. */
static int read_all(const char *brokers, const char *topic, int read_committed,
                    void (*fn)(const rd_kafka_message_t *m, void *arg), void *arg) {
  char e[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof e);
  rd_kafka_conf_set(conf, "group.id", "kafka_verify", e, sizeof e);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", e, sizeof e);
  rd_kafka_conf_set(conf, "isolation.level", read_committed ? "read_committed" : "read_uncommitted",
                    e, sizeof e);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
  if (!rk) {
    fprintf(stderr, "kafka_verify: %s\n", e);
    return -1;
  }
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err) {
    fprintf(stderr, "kafka_verify: no topic '%s'\n", topic);
    return -1;
  }
  int parts = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; p++)
    rd_kafka_topic_partition_list_add(tp, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, tp);
  rd_kafka_topic_partition_list_destroy(tp);
  int at_end = 0, idle = 0;
  while (at_end < parts && idle < 100) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) {
      idle++;
      continue;
    }
    idle = 0;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) at_end++;
    else if (!m->err) fn(m, arg);
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (at_end < parts) {
    fprintf(stderr, "kafka_verify: '%s' did not reach its end\n", topic);
    return -1;
  }
  return 0;
}

typedef struct ctx {
  const char *topic, *txn_id;
  long markers, kept, dropped;
  int filter;
} ctx_t;

static void on_marker(const rd_kafka_message_t *m, void *arg) {
  ctx_t *c = arg;
  if (m->key_len != strlen(c->txn_id) || memcmp(m->key, c->txn_id, m->key_len) != 0) return;
  c->markers++;
  add_ranges(c->topic, m->payload, m->len);
}

static void on_data(const rd_kafka_message_t *m, void *arg) {
  ctx_t *c = arg;
  if (c->filter && !committed(m->partition, m->offset)) {
    c->dropped++;
    return;
  }
  c->kept++;
  fwrite(m->payload, 1, m->len, stdout);
  fputc('\n', stdout);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[3], "--read-committed") == 0) {
    ctx_t c = {.topic = argv[2]};
    if (read_all(argv[1], argv[2], 1, on_data, &c) != 0) return 1;
    fprintf(stderr, "kafka_verify: %ld messages (read_committed)\n", c.kept);
    return 0;
  }
  if (argc != 5) {
    fprintf(stderr, "usage: kafka_verify BROKERS TOPIC COMMIT_TOPIC TXN_ID\n"
                    "       kafka_verify BROKERS TOPIC --read-committed\n");
    return 1;
  }
  ctx_t c = {.topic = argv[2], .txn_id = argv[4], .filter = 1};
  if (read_all(argv[1], argv[3], 0, on_marker, &c) != 0) return 1;
  if (read_all(argv[1], argv[2], 0, on_data, &c) != 0) return 1;
  fprintf(stderr, "kafka_verify: %ld commit records; %ld messages kept, %ld outside them\n",
          c.markers, c.kept, c.dropped);
  free(g_ranges);
  return 0;
}
