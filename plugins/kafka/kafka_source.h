/*
 * kafka_source.h - the state of a kafka_source task, shared by its two
 * halves: kafka_source.c (assigned partitions, polling, checkpoints) and
 * kafka_source_group.c (membership of a consumer group, `subscribe: true`).
 */
#ifndef SLUICE_KAFKA_SOURCE_H
#define SLUICE_KAFKA_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka.h"

typedef struct ks_part {
  int32_t partition;
  int64_t next;      /* next offset to read; -1 while unknown (just assigned by the group) */
  int64_t end;       /* bounded: the high watermark at open(); -1 unbounded */
  int64_t committed; /* group: the offset the group acknowledged last; -1 none */
  bool revoking;     /* group: given up, waiting for its position to be committed */
} ks_part_t;

typedef struct ksrc {
  sl_ctx_t *ctx;
  rd_kafka_t *rk;
  rd_kafka_queue_t *queue; /* the consumer queue, whose callback wakes the task */
  char *topic;
  ks_part_t *parts;
  size_t n, cap;
  size_t open_parts; /* bounded: partitions not at their end yet */
  bool bounded;
  bool json; /* format: json: values are checked */
  int embedded; /* kafka_conf_new set it: release the embedded cluster */
  int32_t cur_partition; /* the one last given to sl_source_partition */
  sl_header_t *hdrs;     /* scratch for a message's headers, grows, reused */
  size_t hdr_cap;
  /* the offsets the last snapshot saved, committed to the group when that
   * checkpoint completes */
  rd_kafka_topic_partition_list_t *snap;
  uint64_t snap_id;
  char *group;   /* the consumer group (group.id as librdkafka has it) */
  char *cluster; /* its bootstrap servers: where the group lives */
  uint64_t commit_failures; /* asynchronous group commits that failed */
  sl_counter_t *lag;        /* gauge: records behind the partitions' ends */
  int64_t lag_checked_ms;
  bool held; /* backpressure: the partitions are paused until downstream has room */
  /* consumer group (`subscribe: true`) */
  bool subscribe;
  bool subscribed;            /* joined (at the first poll) */
  bool cooperative;           /* the group's protocol: incremental (un)assign */
  bool closing;               /* close(): revocations end at once */
  bool checkpoints;           /* the job checkpoints: a revocation waits for one */
  size_t revoking;            /* partitions given up, not yet unassigned */
  int64_t revoke_started_ms;  /* when the pending revocation began */
  int64_t revoke_deadline_ms; /* how long it may wait for a checkpoint */
} ksrc_t;

/* The partition's entry, or NULL when this task does not read it. */
ks_part_t *ksrc_find_part(ksrc_t *s, int32_t p);
/* The partition's entry, added (position unknown) if missing. NULL when out
 * of memory. */
ks_part_t *ksrc_add_part(ksrc_t *s, int32_t p);

/* --- kafka_source_group.c --- */

/* Sets the group's defaults on conf (assignment strategy, auto.offset.reset
 * from `start`, the rebalance callback) and checks the config; 0 or -1. */
int ksrc_group_conf(ksrc_t *s, rd_kafka_conf_t *conf, char *err, size_t errlen);
/* open(), after the consumer exists: brings the group's committed offsets up
 * to a restored checkpoint's where it is ahead (failures are logged). */
void ksrc_group_start(ksrc_t *s, const int32_t *parts, const int64_t *offsets, size_t count,
                      int timeout_ms);
/* The first poll(): join the group. SL_OK, or an error after sl_fail(). */
int ksrc_group_subscribe(ksrc_t *s);
/* The group acknowledged (or refused) a commit: record it, and end the
 * revocations it allows. */
void ksrc_group_committed(ksrc_t *s, rd_kafka_resp_err_t e,
                          const rd_kafka_topic_partition_list_t *offsets);
/* poll(): a revocation that waited too long for a checkpoint ends. */
void ksrc_group_poll(ksrc_t *s, int64_t now_ms);
/* close(), before the consumer closes: revocations end at once. */
void ksrc_group_close(ksrc_t *s);

#endif /* SLUICE_KAFKA_SOURCE_H */
