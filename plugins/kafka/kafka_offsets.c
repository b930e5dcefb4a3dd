/*
 * kafka_offsets.c - the read positions of each checkpoint, handed from the
 * kafka_source tasks of this process to its exactly-once kafka_sink, which
 * sends them into the checkpoint's transaction
 * (rd_kafka_send_offsets_to_transaction): the consumer groups' committed
 * offsets then move atomically with the output, as in Kafka Streams.
 *
 * Recovery does not depend on them (the checkpoint holds the positions and
 * the commit record decides), but anything that reads the groups' offsets
 * (lag monitors, a start without a checkpoint) sees exactly where the
 * committed output stops. Only the positions of sources on the sink's own
 * cluster are sent: a group lives in one cluster.
 *
 * A source publishes at each snapshot (once per checkpoint per task, under
 * one mutex: no per-record cost); the sink takes those of the checkpoint it
 * commits, one call per group.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

typedef struct published {
  const void *owner;     /* the source task */
  char *group;
  char *cluster;         /* its bootstrap servers, as configured */
  uint64_t id;           /* the checkpoint */
  rd_kafka_topic_partition_list_t *offsets;
  struct published *next;
} published_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static published_t *g_list;

static void entry_free(published_t *p) {
  free(p->group);
  free(p->cluster);
  if (p->offsets) rd_kafka_topic_partition_list_destroy(p->offsets);
  free(p);
}

int kafka_offsets_publish(const void *owner, const char *group, const char *cluster, uint64_t id,
                          const rd_kafka_topic_partition_list_t *offsets) {
  pthread_mutex_lock(&g_mu);
  published_t *p = g_list;
  while (p && p->owner != owner) p = p->next;
  if (!p) {
    p = calloc(1, sizeof(*p));
    if (!p || !(p->group = strdup(group)) || !(p->cluster = strdup(cluster))) {
      if (p) entry_free(p);
      pthread_mutex_unlock(&g_mu);
      return -1;
    }
    p->owner = owner;
    p->next = g_list;
    g_list = p;
  }
  if (p->offsets) rd_kafka_topic_partition_list_destroy(p->offsets);
  p->offsets = rd_kafka_topic_partition_list_copy(offsets);
  p->id = id;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

void kafka_offsets_withdraw(const void *owner) {
  pthread_mutex_lock(&g_mu);
  for (published_t **pp = &g_list; *pp; pp = &(*pp)->next) {
    if ((*pp)->owner != owner) continue;
    published_t *p = *pp;
    *pp = p->next;
    entry_free(p);
    break;
  }
  pthread_mutex_unlock(&g_mu);
}

/* The offsets of checkpoint id of every task of group on cluster, merged;
 * NULL when none. Lock held. */
static rd_kafka_topic_partition_list_t *group_offsets(const char *group, const char *cluster,
                                                      uint64_t id) {
  rd_kafka_topic_partition_list_t *all = NULL;
  for (published_t *p = g_list; p; p = p->next) {
    if (p->id != id || strcmp(p->group, group) != 0 || strcmp(p->cluster, cluster) != 0 ||
        !p->offsets || p->offsets->cnt == 0)
      continue;
    if (!all) all = rd_kafka_topic_partition_list_new(p->offsets->cnt);
    for (int i = 0; i < p->offsets->cnt; i++) {
      const rd_kafka_topic_partition_t *e = &p->offsets->elems[i];
      rd_kafka_topic_partition_list_add(all, e->topic, e->partition)->offset = e->offset;
    }
  }
  return all;
}

int kafka_offsets_send(rd_kafka_t *producer, const char *cluster, uint64_t id, int timeout_ms,
                       size_t *sent, char *err, size_t errlen) {
  *sent = 0;
  /* The groups to send, copied out: the calls wait on the network, the
   * sources must not wait for them at their next snapshot. */
  size_t n = 0, cap = 0;
  char **groups = NULL;
  rd_kafka_topic_partition_list_t **lists = NULL;
  int rc = 0;
  pthread_mutex_lock(&g_mu);
  for (published_t *p = g_list; p && rc == 0; p = p->next) {
    if (p->id != id || strcmp(p->cluster, cluster) != 0) continue;
    int seen = 0;
    for (size_t i = 0; i < n && !seen; i++) seen = strcmp(groups[i], p->group) == 0;
    if (seen) continue;
    rd_kafka_topic_partition_list_t *l = group_offsets(p->group, cluster, id);
    if (!l) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 4;
      char **g = realloc(groups, cap * sizeof(*g));
      rd_kafka_topic_partition_list_t **ls = g ? realloc(lists, cap * sizeof(*ls)) : NULL;
      if (g) groups = g;
      if (ls) lists = ls;
      if (!g || !ls) rc = -1;
    }
    if (rc == 0 && !(groups[n] = strdup(p->group))) rc = -1;
    if (rc == 0) lists[n++] = l;
    else rd_kafka_topic_partition_list_destroy(l);
  }
  pthread_mutex_unlock(&g_mu);
  if (rc != 0) snprintf(err, errlen, "out of memory");
  for (size_t i = 0; i < n; i++) {
    if (rc == 0) {
      rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata_new(groups[i]);
      rd_kafka_error_t *e = rd_kafka_send_offsets_to_transaction(producer, lists[i], md, timeout_ms);
      rd_kafka_consumer_group_metadata_destroy(md);
      if (e) {
        snprintf(err, errlen, "send_offsets_to_transaction (group '%s'): %s", groups[i],
                 rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rc = -1;
      } else {
        (*sent)++;
      }
    }
    free(groups[i]);
    rd_kafka_topic_partition_list_destroy(lists[i]);
  }
  free(groups);
  free(lists);
  return rc;
}
