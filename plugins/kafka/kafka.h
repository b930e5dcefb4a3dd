/*
 * kafka.h - the "kafka" plugin: shared declarations of its source, sink,
 * client configuration and embedded cluster.
 */
#ifndef SLUICE_KAFKA_H
#define SLUICE_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "sluice.h"

extern const sl_operator_t kafka_source_op;
extern const sl_operator_t kafka_sink_op;

/* Prefix of the config keys passed to librdkafka unchanged (`librdkafka:`). */
#define KAFKA_PASS_PREFIX "librdkafka."

/* The config keys both operators share, for their config maps. */
#define KAFKA_CLIENT_CONFIG                                                                        \
  {"brokers", SL_CONFIG_STRING, NULL,                                                              \
   "bootstrap servers host:port,... or 'embedded' (a mock cluster in this process)"},              \
      {"embedded_partitions", SL_CONFIG_INT, "4",                                                  \
       "brokers: embedded: partitions of the topic if this creates it"},                           \
  {                                                                                                \
    "librdkafka.*", SL_CONFIG_STRING, "", "any librdkafka setting, as a mapping `librdkafka: {...}`" \
  }

/*
 * A client configuration for the node: bootstrap.servers from `brokers`
 * (the embedded cluster's address for "embedded": *embedded is then set and
 * the caller releases it with kafka_embedded_release), then every
 * `librdkafka.X` key as X, which may override what the operator set before.
 * NULL with a message naming the key on error.
 */
rd_kafka_conf_t *kafka_conf_new(sl_ctx_t *ctx, int *embedded, char *err, size_t errlen);
/* Sets key=value on conf unless the node's `librdkafka:` map sets key. */
int kafka_conf_default(sl_ctx_t *ctx, rd_kafka_conf_t *conf, const char *key, const char *value,
                       char *err, size_t errlen);
/* The node's `librdkafka.KEY` setting, or NULL. */
const char *kafka_conf_value(sl_ctx_t *ctx, const char *key);
/* The bootstrap servers conf names (malloc'd), or NULL when unset or out of
 * memory. Two clients with the same string are taken to talk to the same
 * cluster. */
char *kafka_conf_cluster(const rd_kafka_conf_t *conf);
/* Checks a topic name as Kafka does; 0 or -1 with a message. */
int kafka_topic_name_ok(const char *name, char *err, size_t errlen);

/* The process's embedded cluster: started at the first use, shared by every
 * node that says `brokers: embedded`, stopped after the last release. Its
 * bootstrap address, or NULL with a message. */
const char *kafka_embedded_acquire(char *err, size_t errlen);
/* Creates the topic in the embedded cluster if it does not exist. */
int kafka_embedded_topic(const char *topic, int partitions, char *err, size_t errlen);
void kafka_embedded_release(void);

/*
 * The transactional producer of `delivery: exactly_once` (kafka_txn.c): one
 * per process, shared by the tasks of the one node that uses it.
 */
typedef struct ktxn ktxn_t;
/* Create it (the first task; init_transactions, begin_transaction) or take
 * another reference. NULL with a message. */
ktxn_t *ktxn_acquire(sl_ctx_t *ctx, const char *txn_id, const char *commit_topic, char *err,
                     size_t errlen);
/* Drop a reference; the last one aborts what is open and destroys it. */
void ktxn_release(ktxn_t *t);
rd_kafka_t *ktxn_handle(ktxn_t *t);
/* 1 with a message when a delivery failed or the producer is fenced. */
int ktxn_failed(ktxn_t *t, char *err, size_t errlen);
/* A record of the transaction could not be queued: it must not commit. */
void ktxn_mark_failed(ktxn_t *t, const char *why);
/* A commit failed: the transaction is in doubt until the job restarts. */
int ktxn_in_doubt(ktxn_t *t);
/* Commit point of checkpoint id (the checkpoint thread): send the sources'
 * offsets of id, flush, write the marker, commit, begin the next
 * transaction. Once per id (*groups: the consumer groups whose offsets
 * went in; 0 for the calls that find it done). 0 or -1. */
int ktxn_commit(ktxn_t *t, uint64_t id, size_t *groups, char *err, size_t errlen);
/* The task's stash (kafka_sink_stash.h): ktxn_commit waits until it has
 * queued its records. 0, or -1 when out of memory. */
struct kstash;
int ktxn_track_stash(ktxn_t *t, struct kstash *stash);
void ktxn_untrack_stash(ktxn_t *t, struct kstash *stash);
/* What Kafka committed last for txn_id (0: nothing), read with
 * read_committed after fencing older instances. 0 or -1 with a message. */
int ktxn_last_committed(sl_ctx_t *ctx, const char *txn_id, const char *commit_topic,
                        uint64_t *last, char *err, size_t errlen);

/*
 * The read positions of each checkpoint, from the kafka_source tasks of the
 * process to its exactly-once sink (kafka_offsets.c).
 */
/* A source task's positions at checkpoint id (copied), for its group on
 * cluster; replaces what it published before. 0, or -1 when out of memory.
 * Called only by tasks that know their cluster (kafka_conf_cluster). */
int kafka_offsets_publish(const void *owner, const char *group, const char *cluster, uint64_t id,
                          const rd_kafka_topic_partition_list_t *offsets);
/* The task closes: forget its positions. */
void kafka_offsets_withdraw(const void *owner);
/* In a transaction of producer (on cluster): send the positions every task
 * on that cluster published for checkpoint id, one call per group
 * (rd_kafka_send_offsets_to_transaction, which may wait up to timeout_ms).
 * *groups counts the groups sent. 0, or -1 with a message. */
int kafka_offsets_send(rd_kafka_t *producer, const char *cluster, uint64_t id, int timeout_ms,
                       size_t *groups, char *err, size_t errlen);

#endif /* SLUICE_KAFKA_H */
