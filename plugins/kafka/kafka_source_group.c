/*
 * kafka_source_group.c - kafka_source as a member of a consumer group
 * (`subscribe: true`): Kafka decides which partitions each task reads, and
 * moves them between tasks and processes as members come and go.
 *
 * Positions. A partition the group gives us starts at the group's committed
 * offset (librdkafka fetches it: we assign with OFFSET_INVALID), else at
 * auto.offset.reset (`start`). The group's offsets are the checkpointed
 * ones: the source commits a checkpoint's positions once it completes. At
 * open() after a restore, the group's offsets are brought up to the
 * checkpoint's where the checkpoint is ahead (a commit that did not land
 * before a crash); where the group is ahead, another member has gone
 * further and its offsets stand.
 *
 * Revocations lose nothing and, with a transactional sink, duplicate
 * nothing: a partition taken from us is paused at once (no more of its
 * records are emitted), and we give it up only when its final position is
 * committed to the group, which happens when the next checkpoint completes
 * (every record read from it is then covered by that checkpoint, and its
 * output committed). The group waits for that: a rebalance lasts up to a
 * checkpoint interval, which max.poll.interval.ms must allow (checked).
 * Partitions lost without a revocation (our session expired) are dropped
 * at once: their new owner starts from the last committed offsets.
 *
 * The tasks join the group at their first poll(), not in open(): every
 * task's open() has then brought the group's offsets up to the restored
 * checkpoint, and a group with members takes no such commit from outside.
 *
 * Everything here runs on the task's thread, inside rd_kafka_consumer_poll
 * (librdkafka serves the rebalance and commit callbacks there), except
 * ksrc_group_start (open(), main thread) and the revocations of close().
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_source.h"

/* Drops the revoked partitions from the task's list and unassigns them. */
static void unassign(ksrc_t *s, rd_kafka_topic_partition_list_t *parts) {
  for (int i = 0; i < parts->cnt; i++) {
    ks_part_t *kp = ksrc_find_part(s, parts->elems[i].partition);
    if (!kp) continue;
    if (kp->revoking) s->revoking--;
    /* no later commit of an old snapshot may move the new owner back */
    if (s->snap) rd_kafka_topic_partition_list_del(s->snap, s->topic, kp->partition);
    if (!s->closing) sl_source_partition_release(s->ctx, (uint32_t)kp->partition);
    if (s->cur_partition == kp->partition) s->cur_partition = -1;
    *kp = s->parts[--s->n];
  }
  if (s->cooperative) {
    rd_kafka_error_t *e = rd_kafka_incremental_unassign(s->rk, parts);
    if (e) {
      sl_log(s->ctx, SL_LOG_WARN, "giving up %d partitions of '%s': %s", parts->cnt, s->topic,
             rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, NULL);
    if (e)
      sl_log(s->ctx, SL_LOG_WARN, "giving up the partitions of '%s': %s", s->topic,
             rd_kafka_err2str(e));
  }
}

/* Ends the pending revocation once every partition in it has its final
 * position committed (or read nothing). */
static void finish_revocation(ksrc_t *s, bool force) {
  if (!s->revoking) return;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)s->revoking);
  for (size_t i = 0; i < s->n; i++) {
    ks_part_t *kp = &s->parts[i];
    if (!kp->revoking) continue;
    if (!force && kp->next >= 0 && kp->committed < kp->next) {
      rd_kafka_topic_partition_list_destroy(l);
      return; /* waits for the next checkpoint's commit */
    }
    rd_kafka_topic_partition_list_add(l, s->topic, kp->partition);
  }
  sl_log(s->ctx, SL_LOG_INFO, "gave up %d partition%s of '%s'%s", l->cnt, l->cnt == 1 ? "" : "s",
         s->topic, force ? "" : ", their positions committed");
  /* Undo revoke()'s pause, which would otherwise outlive the assignment if
   * the group hands a partition back; no poll comes between the two calls,
   * so nothing of them is read. */
  rd_kafka_resume_partitions(s->rk, l);
  unassign(s, l);
  rd_kafka_topic_partition_list_destroy(l);
}

/* Commits the current positions of the partitions being revoked (a job
 * without checkpoints: nothing better to wait for). */
static void commit_revoking_now(ksrc_t *s) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)s->revoking);
  for (size_t i = 0; i < s->n; i++)
    if (s->parts[i].revoking && s->parts[i].next >= 0)
      rd_kafka_topic_partition_list_add(l, s->topic, s->parts[i].partition)->offset =
          s->parts[i].next;
  if (l->cnt > 0) rd_kafka_commit(s->rk, l, 1);
  rd_kafka_topic_partition_list_destroy(l);
}

static void assign(ksrc_t *s, rd_kafka_topic_partition_list_t *parts) {
  for (int i = 0; i < parts->cnt; i++) {
    if (!ksrc_add_part(s, parts->elems[i].partition)) {
      sl_fail(s->ctx, "kafka_source: out of memory for %d assigned partitions", parts->cnt);
      return;
    }
    parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID; /* the group's, else auto.offset.reset */
  }
  const char *e = NULL;
  rd_kafka_error_t *ie = NULL;
  if (s->cooperative) {
    ie = rd_kafka_incremental_assign(s->rk, parts);
    if (ie) e = rd_kafka_error_string(ie);
  } else {
    rd_kafka_resp_err_t re = rd_kafka_assign(s->rk, parts);
    if (re) e = rd_kafka_err2str(re);
  }
  if (e)
    sl_fail(s->ctx, "kafka_source: taking %d partitions of '%s' from the group: %s", parts->cnt,
            s->topic, e);
  else
    sl_log(s->ctx, SL_LOG_INFO, "the group gave this task %d partition%s of '%s' (now %zu)",
           parts->cnt, parts->cnt == 1 ? "" : "s", s->topic, s->n);
  if (ie) rd_kafka_error_destroy(ie);
}

static void revoke(ksrc_t *s, rd_kafka_topic_partition_list_t *parts) {
  if (s->closing || rd_kafka_assignment_lost(s->rk)) {
    if (!s->closing)
      sl_log(s->ctx, SL_LOG_WARN, "lost %d partitions of '%s' (the group expired this member): "
             "their next reader starts from the last committed checkpoint", parts->cnt, s->topic);
    unassign(s, parts);
    return;
  }
  for (int i = 0; i < parts->cnt; i++) {
    ks_part_t *kp = ksrc_find_part(s, parts->elems[i].partition);
    if (kp && !kp->revoking) {
      kp->revoking = true;
      s->revoking++;
    }
  }
  s->revoke_started_ms = sl_now_ms(s->ctx);
  /* No more records of them: fetching stops, what was fetched is dropped. */
  rd_kafka_pause_partitions(s->rk, parts);
  if (!s->checkpoints) commit_revoking_now(s);
  sl_log(s->ctx, SL_LOG_INFO, "the group takes %d partition%s of '%s' away: giving %s up %s",
         parts->cnt, parts->cnt == 1 ? "" : "s", s->topic, parts->cnt == 1 ? "it" : "them",
         s->checkpoints ? "when the next checkpoint completes" : "once committed");
  finish_revocation(s, false);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  ksrc_t *s = opaque;
  /* NULL once the group is being torn down (the revocation that
   * rd_kafka_consumer_close serves): the protocol is then the one seen. */
  const char *protocol = rd_kafka_rebalance_protocol(rk);
  if (protocol) s->cooperative = strcmp(protocol, "COOPERATIVE") == 0;
  if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    assign(s, parts);
  } else if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    revoke(s, parts);
  } else {
    sl_log(s->ctx, SL_LOG_WARN, "rebalance of '%s' failed: %s", s->topic, rd_kafka_err2str(e));
    unassign(s, parts); /* give everything up at once */
  }
}

void ksrc_group_committed(ksrc_t *s, rd_kafka_resp_err_t e,
                          const rd_kafka_topic_partition_list_t *offsets) {
  if (!e && offsets)
    for (int i = 0; i < offsets->cnt; i++) {
      const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
      ks_part_t *kp = tp->err ? NULL : ksrc_find_part(s, tp->partition);
      if (kp && tp->offset > kp->committed) kp->committed = tp->offset;
    }
  if (!s->revoking) return;
  if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    /* Waiting longer stalls the whole group. A broker refuses commits while
     * the group is rebalancing only if it is not Kafka (librdkafka's mock
     * does); Kafka takes a member's commits until it rejoins. */
    sl_log(s->ctx, SL_LOG_WARN, "committing the positions of the partitions given up failed "
           "(%s): their next reader starts from the last committed checkpoint and reads some "
           "records again", rd_kafka_err2str(e));
    finish_revocation(s, true);
    return;
  }
  finish_revocation(s, false);
}

void ksrc_group_poll(ksrc_t *s, int64_t now_ms) {
  if (!s->revoking || now_ms - s->revoke_started_ms < s->revoke_deadline_ms) return;
  /* No checkpoint completed in time (they fail, or the job stopped taking
   * them): the group must not wait for ever. */
  sl_log(s->ctx, SL_LOG_WARN, "no checkpoint committed the positions of the partitions given up "
         "within %" PRId64 " ms: giving them up anyway; their next reader reads again what was "
         "read since the last commit", s->revoke_deadline_ms);
  finish_revocation(s, true);
}

void ksrc_group_close(ksrc_t *s) {
  s->closing = true;
  finish_revocation(s, true);
}

int ksrc_group_conf(ksrc_t *s, rd_kafka_conf_t *conf, char *err, size_t errlen) {
  sl_ctx_t *ctx = s->ctx;
  if (s->bounded) {
    snprintf(err, errlen, "'bounded: true' needs a fixed set of partitions: it cannot be used "
             "with 'subscribe: true'");
    return -1;
  }
  if (!sl_config_bool(ctx, "use_group_offsets")) {
    snprintf(err, errlen, "'use_group_offsets: false' cannot be used with 'subscribe: true': in a "
             "group, partitions start at the group's committed offsets");
    return -1;
  }
  const char *start = sl_config_string(ctx, "start");
  if (strcmp(start, "earliest") != 0 && strcmp(start, "latest") != 0) {
    snprintf(err, errlen, "config 'start': with 'subscribe: true' it is earliest or latest (where "
             "a partition without a committed offset starts), got '%s'", start);
    return -1;
  }
  int64_t interval = sl_checkpoint_interval_ms(ctx);
  s->checkpoints = interval > 0;
  const char *mpi = kafka_conf_value(ctx, "max.poll.interval.ms");
  long long max_poll = mpi ? strtoll(mpi, NULL, 10) : 300000;
  if (s->checkpoints && max_poll < 2 * interval) {
    snprintf(err, errlen, "max.poll.interval.ms (%lld) must be at least twice the checkpoint "
             "interval (%" PRId64 " ms): a partition the group takes away is given up at the next "
             "checkpoint, and the group waits at most max.poll.interval.ms for it", max_poll,
             interval);
    return -1;
  }
  if (kafka_conf_default(ctx, conf, "auto.offset.reset", start, err, errlen) != 0 ||
      kafka_conf_default(ctx, conf, "partition.assignment.strategy", "range,roundrobin", err,
                         errlen) != 0)
    return -1;
  s->revoke_deadline_ms = max_poll / 2;
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  return 0;
}

/* Commits the checkpoint's offsets where they are ahead of the group's. */
void ksrc_group_start(ksrc_t *s, const int32_t *parts, const int64_t *offsets, size_t count,
                      int timeout_ms) {
  if (count == 0) return;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)count);
  for (size_t i = 0; i < count; i++) rd_kafka_topic_partition_list_add(l, s->topic, parts[i]);
  rd_kafka_resp_err_t e = rd_kafka_committed(s->rk, l, timeout_ms);
  rd_kafka_topic_partition_list_t *ahead = rd_kafka_topic_partition_list_new((int)count);
  for (size_t i = 0; !e && i < count; i++) {
    int64_t group = l->elems[i].err ? -1 : l->elems[i].offset;
    if (offsets[i] > group)
      rd_kafka_topic_partition_list_add(ahead, s->topic, parts[i])->offset = offsets[i];
  }
  if (e) {
    sl_log(s->ctx, SL_LOG_WARN, "cannot read the group's committed offsets (%s): partitions "
           "start from them as they are", rd_kafka_err2str(e));
  } else if (ahead->cnt > 0) {
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->rk);
    e = rd_kafka_commit_queue(s->rk, ahead, q, NULL, NULL);
    rd_kafka_event_t *ev = e ? NULL : rd_kafka_queue_poll(q, timeout_ms);
    const char *why = e ? rd_kafka_err2str(e)
                      : !ev ? "no answer in time"
                      : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev) : NULL;
    const rd_kafka_topic_partition_list_t *res = ev && !why ? rd_kafka_event_topic_partition_list(ev) : NULL;
    for (int i = 0; res && i < res->cnt; i++)
      if (res->elems[i].err) why = rd_kafka_err2str(res->elems[i].err);
    if (why)
      sl_log(s->ctx, SL_LOG_WARN, "the group did not take the restored checkpoint's offsets for "
             "%d partitions (%s): they start from the group's, and some records may be read "
             "again", ahead->cnt, why);
    else
      sl_log(s->ctx, SL_LOG_INFO, "brought the group's offsets of %d partitions up to the "
             "restored checkpoint", ahead->cnt);
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
  }
  rd_kafka_topic_partition_list_destroy(ahead);
  rd_kafka_topic_partition_list_destroy(l);
}

int ksrc_group_subscribe(ksrc_t *s) {
  s->subscribed = true;
  rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(t, s->topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, t);
  rd_kafka_topic_partition_list_destroy(t);
  if (e) {
    sl_fail(s->ctx, "kafka_source: cannot subscribe to '%s': %s", s->topic, rd_kafka_err2str(e));
    return SL_EIO;
  }
  return SL_OK;
}
