/*
 * kafka_dev.h - a Kafka cluster inside this process, for development and
 * tests: librdkafka's mock cluster (rdkafka_mock.h). It speaks the real Kafka
 * protocol on 127.0.0.1, keeps its data in memory, and has limits of its own
 * (docs/kafka.md). `sluice kafka-dev` runs one.
 */
#ifndef SLUICE_KAFKA_DEV_H
#define SLUICE_KAFKA_DEV_H

#include <stddef.h>

#define SL_KAFKA_DEV_MAX_BROKERS 16
#define SL_KAFKA_DEV_MAX_PARTITIONS 10000
#define SL_KAFKA_TOPIC_MAX 249 /* Kafka's own limit on a topic name */

typedef struct sl_kafka_dev sl_kafka_dev_t;

/* Starts a cluster of `brokers` brokers (1..SL_KAFKA_DEV_MAX_BROKERS); NULL
 * with err set when it cannot. */
sl_kafka_dev_t *sl_kafka_dev_start(int brokers, char *err, size_t errlen);

/* "host:port,host:port,...": what a client's bootstrap.servers takes. */
const char *sl_kafka_dev_bootstraps(const sl_kafka_dev_t *d);

/* Creates a topic (replicated on up to 3 brokers); 0, or -1 with err set. */
int sl_kafka_dev_create_topic(sl_kafka_dev_t *d, const char *name, int partitions, char *err,
                              size_t errlen);

void sl_kafka_dev_stop(sl_kafka_dev_t *d);

/* Applies one fault-injection command (kafka_dev_faults.c: error, down, up,
 * rtt, coordinator): 0 with what it did in msg, or -1 with why not. */
int sl_kafka_dev_fault(sl_kafka_dev_t *d, const char *line, char *msg, size_t msglen);

/* Parses a topic argument "NAME" or "NAME:PARTITIONS" (default 1 partition)
 * and checks the name the way Kafka does (1..249 of [a-zA-Z0-9._-], not "."
 * or ".."). name must hold SL_KAFKA_TOPIC_MAX + 1 bytes. 0, or -1 with err. */
int sl_kafka_topic_arg(const char *arg, char *name, int *partitions, char *err, size_t errlen);

#endif /* SLUICE_KAFKA_DEV_H */
