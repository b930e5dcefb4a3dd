/*
 * bench_kafka_bare.c - the baseline of bench/bench_kafka.sh: a hand-written
 * librdkafka consume-produce loop, as short as such a loop can be.
 *
 *   bench_kafka_bare BROKERS IN OUT COUNT [COMMIT_MS]
 *
 * Reads COUNT messages from every partition of topic IN (from the start) and
 * writes each to OUT with its key, timestamp and its value uppercased (the
 * map of the Sluice side, tests/plugins/good.c "upper"). With COMMIT_MS, the
 * producer is transactional and commits every COMMIT_MS milliseconds (what
 * an exactly-once copy costs librdkafka itself). Prints "records seconds" on
 * stdout: the wall time from the start until every message is delivered.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_kafka_bare: %s: %s\n", what, why);
  exit(1);
}

static void txn_ok(rd_kafka_error_t *e, const char *what) {
  if (e) die(what, rd_kafka_error_string(e));
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: bench_kafka_bare BROKERS IN OUT COUNT [COMMIT_MS]\n");
    return 2;
  }
  const char *brokers = argv[1], *in = argv[2], *out = argv[3];
  long count = atol(argv[4]);
  long commit_ms = argc == 6 ? atol(argv[5]) : 0;
  char e[512];
  double t0 = now_s();

  rd_kafka_conf_t *pc = rd_kafka_conf_new();
  rd_kafka_conf_set(pc, "bootstrap.servers", brokers, e, sizeof e);
  rd_kafka_conf_set(pc, "linger.ms", "5", e, sizeof e);
  rd_kafka_conf_set(pc, "enable.idempotence", "true", e, sizeof e);
  if (commit_ms) rd_kafka_conf_set(pc, "transactional.id", "bench_kafka_bare", e, sizeof e);
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
  if (!p) die("producer", e);
  if (commit_ms) {
    txn_ok(rd_kafka_init_transactions(p, 30000), "init_transactions");
    txn_ok(rd_kafka_begin_transaction(p), "begin_transaction");
  }
  rd_kafka_topic_t *ot = rd_kafka_topic_new(p, out, NULL);

  rd_kafka_conf_t *cc = rd_kafka_conf_new();
  rd_kafka_conf_set(cc, "bootstrap.servers", brokers, e, sizeof e);
  rd_kafka_conf_set(cc, "group.id", "bench_kafka_bare", e, sizeof e);
  rd_kafka_conf_set(cc, "enable.auto.commit", "false", e, sizeof e);
  rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
  if (!c) die("consumer", e);
  const struct rd_kafka_metadata *md;
  rd_kafka_topic_t *it = rd_kafka_topic_new(c, in, NULL);
  if (rd_kafka_metadata(c, 0, it, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err)
    die(in, "no such topic");
  int parts = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(it);
  rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(parts);
  for (int i = 0; i < parts; i++)
    rd_kafka_topic_partition_list_add(tp, in, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(c, tp);
  rd_kafka_topic_partition_list_destroy(tp);

  long done = 0;
  double last_commit = now_s();
  while (done < count) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
    if (m && !m->err) {
      rd_kafka_timestamp_type_t tt;
      int64_t ts = rd_kafka_message_timestamp(m, &tt);
      /* the same map as the Sluice side's (tests/plugins/good.c "upper") */
      char buf[256];
      size_t n = m->len < sizeof buf ? m->len : sizeof buf;
      for (size_t i = 0; i < n; i++) {
        char ch = ((const char *)m->payload)[i];
        buf[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
      }
      for (;;) {
        rd_kafka_resp_err_t pe = rd_kafka_producev(
            p, RD_KAFKA_V_RKT(ot), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(buf, n),
            RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0), RD_KAFKA_V_END);
        if (!pe) break;
        if (pe != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce", rd_kafka_err2str(pe));
        rd_kafka_poll(p, 10);
      }
      done++;
    }
    if (m) rd_kafka_message_destroy(m);
    rd_kafka_poll(p, 0);
    if (commit_ms && (now_s() - last_commit) * 1000 >= (double)commit_ms) {
      txn_ok(rd_kafka_commit_transaction(p, 30000), "commit_transaction");
      txn_ok(rd_kafka_begin_transaction(p), "begin_transaction");
      last_commit = now_s();
    }
  }
  if (commit_ms) txn_ok(rd_kafka_commit_transaction(p, 30000), "commit_transaction");
  else rd_kafka_flush(p, 30000);
  double secs = now_s() - t0;
  printf("%ld %.3f\n", done, secs);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  rd_kafka_topic_destroy(ot);
  rd_kafka_destroy(p);
  return 0;
}
