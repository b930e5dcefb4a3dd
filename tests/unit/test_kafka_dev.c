/*
 * The development Kafka cluster (core/kafka_dev.c): a real librdkafka
 * producer and consumer talk to it over the Kafka protocol on 127.0.0.1.
 * Metadata shows the brokers and the created topic; keyed messages produced
 * to every partition are all consumed back, each from the partition the
 * producer's partitioner chose. Topic arguments are checked the way Kafka
 * checks topic names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>

#include "kafka_dev.h"

#define N_MSGS 200

static rd_kafka_t *client(rd_kafka_type_t type, const char *boot) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", boot, err, sizeof(err)), RD_KAFKA_CONF_OK);
  if (type == RD_KAFKA_CONSUMER) /* assign() needs a group, even without subscribing */
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test_kafka_dev", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
  rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (!rk) fail_msg("rd_kafka_new: %s", err);
  return rk;
}

static void cluster_serves_real_clients(void **st) {
  (void)st;
  char err[512];
  sl_kafka_dev_t *d = sl_kafka_dev_start(3, err, sizeof(err));
  if (!d) fail_msg("%s", err);
  assert_int_equal(sl_kafka_dev_create_topic(d, "clicks", 4, err, sizeof(err)), 0);
  const char *boot = sl_kafka_dev_bootstraps(d);
  /* three brokers, all on the loopback address */
  int addrs = 1;
  for (const char *p = boot; *p; p++) addrs += *p == ',';
  assert_int_equal(addrs, 3);
  for (const char *p = boot; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    assert_int_equal(strncmp(p, "127.0.0.1:", 10), 0);

  rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, boot);
  const rd_kafka_metadata_t *md = NULL;
  rd_kafka_topic_t *mt = rd_kafka_topic_new(prod, "clicks", NULL);
  assert_int_equal(rd_kafka_metadata(prod, 0, mt, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
  assert_int_equal(md->broker_cnt, 3);
  assert_int_equal(md->topic_cnt, 1);
  assert_string_equal(md->topics[0].topic, "clicks");
  assert_int_equal(md->topics[0].partition_cnt, 4);
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(mt);

  for (int i = 0; i < N_MSGS; i++) {
    char key[16], val[32];
    snprintf(key, sizeof(key), "k%d", i % 17);
    snprintf(val, sizeof(val), "v%d", i);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        prod, RD_KAFKA_V_TOPIC("clicks"), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  assert_int_equal(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(prod);

  rd_kafka_t *cons = client(RD_KAFKA_CONSUMER, boot);
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(4);
  for (int p = 0; p < 4; p++)
    rd_kafka_topic_partition_list_add(parts, "clicks", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  assert_int_equal(rd_kafka_assign(cons, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(parts);
  int seen[N_MSGS] = {0}, got = 0, used[4] = {0}, polls = 0;
  int32_t part_of_key[17];
  for (int k = 0; k < 17; k++) part_of_key[k] = -1;
  while (got < N_MSGS && polls++ < 300) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
    if (!m) continue;
    if (!m->err) {
      int v = -1, k = -1;
      assert_int_equal(sscanf((const char *)m->payload, "v%d", &v), 1);
      assert_int_equal(sscanf((const char *)m->key, "k%d", &k), 1);
      assert_true(v >= 0 && v < N_MSGS && !seen[v]);
      assert_int_equal(k, v % 17);
      /* one key, one partition */
      if (part_of_key[k] < 0) part_of_key[k] = m->partition;
      assert_int_equal(part_of_key[k], m->partition);
      seen[v] = 1;
      used[m->partition] = 1;
      got++;
    }
    rd_kafka_message_destroy(m);
  }
  assert_int_equal(got, N_MSGS);
  assert_int_equal(used[0] + used[1] + used[2] + used[3], 4); /* 17 keys over 4 partitions */
  rd_kafka_consumer_close(cons);
  rd_kafka_destroy(cons);
  sl_kafka_dev_stop(d);
}

static void start_refuses_bad_broker_counts(void **st) {
  (void)st;
  char err[256];
  assert_null(sl_kafka_dev_start(0, err, sizeof(err)));
  assert_string_equal(err, "brokers must be 1 to 16, got 0");
  assert_null(sl_kafka_dev_start(17, err, sizeof(err)));
}

/* Fault commands: well-formed ones apply (and say what they did), malformed
 * ones are refused with the grammar. That they reach clients is tested end
 * to end (tests/e2e/kafka_faults.sh: an injected PRODUCER_FENCED fails the
 * job). */
static void fault_commands(void **st) {
  (void)st;
  char err[512], msg[512];
  sl_kafka_dev_t *d = sl_kafka_dev_start(2, err, sizeof(err));
  if (!d) fail_msg("%s", err);
  static const char *const good[] = {
      "error Produce NOT_LEADER_FOR_PARTITION 3", "error EndTxn 90", "error Fetch _TRANSPORT",
      "down 2", "up 2", "down -1", "up -1", "rtt 1 250", "rtt -1 0",
      "coordinator transaction tx 2", "coordinator group g 1"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    if (sl_kafka_dev_fault(d, good[i], msg, sizeof(msg)) != 0) fail_msg("'%s': %s", good[i], msg);
  assert_non_null(strstr(msg, "the group coordinator of 'g' is broker 1"));
  static const char *const bad[] = {
      "", "bogus", "error", "error Produce", "error Nope 1", "error Produce NOT_A_CODE",
      "error Produce NOT_LEADER_FOR_PARTITION 0", "error Produce NOT_LEADER_FOR_PARTITION x",
      "down", "down 0", "down 17", "down x", "rtt 1", "rtt 1 -5", "rtt 1 9999999",
      "coordinator txn tx 1", "coordinator transaction tx 0", "up 1 2"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (sl_kafka_dev_fault(d, bad[i], msg, sizeof(msg)) == 0) fail_msg("'%s' was applied", bad[i]);
    assert_non_null(strstr(msg, "not a fault command"));
  }
  sl_kafka_dev_stop(d);
}

static void topic_arguments(void **st) {
  (void)st;
  char name[SL_KAFKA_TOPIC_MAX + 1], err[256];
  int parts = 0;
  assert_int_equal(sl_kafka_topic_arg("clicks", name, &parts, err, sizeof(err)), 0);
  assert_string_equal(name, "clicks");
  assert_int_equal(parts, 1);
  assert_int_equal(sl_kafka_topic_arg("a.b_c-9:12", name, &parts, err, sizeof(err)), 0);
  assert_string_equal(name, "a.b_c-9");
  assert_int_equal(parts, 12);
  static const struct {
    const char *arg, *want;
  } bad[] = {
      {"clicks:0", "partitions must be an integer from 1 to 10000"},
      {"clicks:", "partitions must be an integer from 1 to 10000"},
      {"clicks:4x", "partitions must be an integer from 1 to 10000"},
      {"clicks:10001", "partitions must be an integer from 1 to 10000"},
      {":3", "a name has 1 to 249 characters"},
      {"", "a name has 1 to 249 characters"},
      {"cl icks", "a name has only letters, digits, '.', '_' and '-'"},
      {"a/b:2", "a name has only letters, digits, '.', '_' and '-'"},
      {"..", "'.' and '..' are not topic names"},
      {".:1", "'.' and '..' are not topic names"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(sl_kafka_topic_arg(bad[i].arg, name, &parts, err, sizeof(err)), -1);
    if (!strstr(err, bad[i].want)) fail_msg("'%s': got '%s'", bad[i].arg, err);
  }
  char longname[300];
  memset(longname, 'x', 250);
  longname[250] = '\0';
  assert_int_equal(sl_kafka_topic_arg(longname, name, &parts, err, sizeof(err)), -1);
  longname[249] = '\0';
  assert_int_equal(sl_kafka_topic_arg(longname, name, &parts, err, sizeof(err)), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cluster_serves_real_clients),
      cmocka_unit_test(start_refuses_bad_broker_counts),
      cmocka_unit_test(topic_arguments),
      cmocka_unit_test(fault_commands),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
