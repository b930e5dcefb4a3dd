/*
 * kafka_source.c - operator "kafka_source": the records of a topic.
 *
 * By default partitions are assigned, not subscribed: task i of n reads the
 * partitions p with p % n == i (as Flink's Kafka source does). With
 * `subscribe: true` the consumer group decides (kafka_source_group.c). The read position of
 * each partition is the source's operator state, saved at every checkpoint
 * and restored from it; the consumer group's committed offsets serve only
 * when the job starts without a checkpoint, and the source commits the
 * checkpointed offsets to the group once a checkpoint completes (for lag
 * monitoring by Kafka's own tools; recovery never reads them back).
 *
 * Blocking librdkafka calls (metadata, offset lookups, close) run in open()
 * and close(), on the job's main thread. poll() takes messages that
 * librdkafka has already fetched, with rd_kafka_consumer_poll(rk, 0), up to
 * the host's budget. Backpressure: when downstream has had no room for
 * SL_BACKPRESSURE_SIGNAL_MS, the host says so (ksrc_backpressure) and the
 * partitions are paused until it has room again; shorter blocks leave the
 * prefetch queue to fill up to its bound (queued.max.messages.kbytes).
 *
 * Logical start offsets (earliest, latest, a timestamp) are resolved to real
 * offsets in open(), so that what a checkpoint saves is always an offset.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_source.h"

#define OFFSETS_STATE "offsets"
#define STATE_MAGIC "SLKO1" /* + topic length, topic, count, (partition, offset)... */
#define LAG_EVERY_MS 1000   /* how often the consumer-lag gauge is brought up to date */

ks_part_t *ksrc_find_part(ksrc_t *s, int32_t p) {
  for (size_t i = 0; i < s->n; i++)
    if (s->parts[i].partition == p) return &s->parts[i];
  return NULL;
}

ks_part_t *ksrc_add_part(ksrc_t *s, int32_t p) {
  ks_part_t *kp = ksrc_find_part(s, p);
  if (kp) return kp;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    ks_part_t *np = realloc(s->parts, cap * sizeof(*np));
    if (!np) return NULL;
    s->parts = np;
    s->cap = cap;
  }
  kp = &s->parts[s->n++];
  *kp = (ks_part_t){.partition = p, .next = -1, .end = -1, .committed = -1};
  return kp;
}

static void put_le(unsigned char *b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *b, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}

/* -------------------------------------------------------------- open */

/* The topic's partition ids, from the cluster's metadata. */
static int topic_partitions(ksrc_t *s, int timeout_ms, int32_t **out, int *count, char *err,
                            size_t errlen) {
  rd_kafka_topic_t *t = rd_kafka_topic_new(s->rk, s->topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 0, t, &md, timeout_ms);
  rd_kafka_topic_destroy(t);
  if (e) {
    snprintf(err, errlen, "cannot get the metadata of topic '%s' within %d ms: %s", s->topic,
             timeout_ms, rd_kafka_err2str(e));
    return -1;
  }
  int rc = -1;
  if (md->topic_cnt != 1 || md->topics[0].err) {
    snprintf(err, errlen, "topic '%s': %s", s->topic,
             md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not in the metadata");
  } else if (md->topics[0].partition_cnt == 0) {
    snprintf(err, errlen, "topic '%s' has no partitions", s->topic);
  } else {
    *count = md->topics[0].partition_cnt;
    *out = calloc((size_t)*count, sizeof(int32_t));
    for (int i = 0; i < *count; i++) (*out)[i] = md->topics[0].partitions[i].id;
    rc = 0;
  }
  rd_kafka_metadata_destroy(md);
  return rc;
}

/* A restored checkpoint's offsets, in a consumer group (which partitions
 * this task will read is not known yet). */
typedef struct restored {
  int32_t *parts;
  int64_t *offsets;
  size_t count;
} restored_t;

/* Reads the offsets of a restored checkpoint into the assigned partitions,
 * or into r in a consumer group. 1 when restored, 0 when there is nothing
 * to restore, -1 on error. */
static int restore_offsets(sl_ctx_t *ctx, ksrc_t *s, restored_t *r, char *err, size_t errlen) {
  uint64_t ckpt = sl_checkpoint_restored(ctx);
  if (!ckpt) return 0;
  sl_bytes_t b;
  int rc = sl_op_state_get(ctx, OFFSETS_STATE, &b);
  if (rc == SL_ENOTFOUND) {
    sl_log(ctx, SL_LOG_WARN, "checkpoint %" PRIu64 " has no offsets for this task: starting as "
           "configured", ckpt);
    return 0;
  }
  const unsigned char *p = b.ptr;
  size_t ml = strlen(STATE_MAGIC);
  if (rc < 0 || b.len < ml + 4 || memcmp(p, STATE_MAGIC, ml) != 0) {
    snprintf(err, errlen, "checkpoint %" PRIu64 ": operator state '%s' is not a kafka_source's "
             "offsets (corrupt, or written by another operator)", ckpt, OFFSETS_STATE);
    return -1;
  }
  size_t tl = get_le(p + ml, 2), off = ml + 2;
  if (b.len < off + tl + 4) goto corrupt;
  if (tl != strlen(s->topic) || memcmp(p + off, s->topic, tl) != 0) {
    snprintf(err, errlen, "checkpoint %" PRIu64 " holds offsets of topic '%.*s', not '%s': "
             "a checkpoint cannot move a source to another topic", ckpt, (int)tl,
             (const char *)p + off, s->topic);
    return -1;
  }
  off += tl;
  uint32_t cnt = (uint32_t)get_le(p + off, 4);
  off += 4;
  if (b.len != off + (size_t)cnt * 12) goto corrupt;
  for (uint32_t i = 0; i < cnt; i++, off += 12) {
    int32_t part = (int32_t)get_le(p + off, 4);
    int64_t next = (int64_t)get_le(p + off + 4, 8);
    if (next < 0) goto corrupt;
    if (s->subscribe) { /* the group decides who reads it: kept for ksrc_group_start */
      if (!r->parts) {
        r->parts = calloc(cnt, sizeof(int32_t));
        r->offsets = calloc(cnt, sizeof(int64_t));
        if (!r->parts || !r->offsets) {
          snprintf(err, errlen, "out of memory for the offsets of checkpoint %" PRIu64, ckpt);
          return -1;
        }
      }
      r->parts[r->count] = part;
      r->offsets[r->count++] = next;
      continue;
    }
    ks_part_t *kp = ksrc_find_part(s, part);
    if (!kp) {
      snprintf(err, errlen, "checkpoint %" PRIu64 " holds an offset for partition %" PRId32
               " of '%s', which this task does not read (did the partition count or the "
               "parallelism change?)", ckpt, part, s->topic);
      return -1;
    }
    kp->next = next;
  }
  if (!s->subscribe && cnt != s->n)
    sl_log(ctx, SL_LOG_WARN, "checkpoint %" PRIu64 " has offsets for %u of the %zu partitions "
           "of '%s' this task reads (new partitions?): the others start as configured", ckpt,
           cnt, s->n, s->topic);
  return 1;
corrupt:
  snprintf(err, errlen, "checkpoint %" PRIu64 ": operator state '%s' is malformed (%zu bytes)",
           ckpt, OFFSETS_STATE, b.len);
  return -1;
}

/* Where each partition starts when no checkpoint says: the group's
 * committed offset if use_group_offsets, else `start`. Every offset comes
 * out concrete. */
static int resolve_start(sl_ctx_t *ctx, ksrc_t *s, int timeout_ms, char *err, size_t errlen) {
  const char *start = sl_config_string(ctx, "start");
  int64_t at_ms = -1;
  int earliest = 0;
  if (strcmp(start, "earliest") == 0) earliest = 1;
  else if (strcmp(start, "latest") == 0) earliest = 0;
  else {
    char *end = NULL;
    long long v = strtoll(start, &end, 10);
    if (!*start || *end || v < 0) {
      snprintf(err, errlen, "config 'start': expected earliest, latest or a time in milliseconds "
               "since the epoch, got '%s'", start);
      return -1;
    }
    at_ms = v;
  }
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)s->n);
  for (size_t i = 0; i < s->n; i++)
    if (s->parts[i].next < 0) rd_kafka_topic_partition_list_add(l, s->topic, s->parts[i].partition);
  int rc = 0;
  if (l->cnt > 0 && sl_config_bool(ctx, "use_group_offsets")) {
    rd_kafka_resp_err_t e = rd_kafka_committed(s->rk, l, timeout_ms);
    if (e) {
      snprintf(err, errlen, "cannot read the group's committed offsets: %s", rd_kafka_err2str(e));
      rc = -1;
    }
    for (int i = 0; rc == 0 && i < l->cnt; i++)
      if (l->elems[i].err == 0 && l->elems[i].offset >= 0)
        ksrc_find_part(s, l->elems[i].partition)->next = l->elems[i].offset;
  }
  if (rc == 0 && at_ms >= 0) {
    for (int i = 0; i < l->cnt; i++) l->elems[i].offset = at_ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(s->rk, l, timeout_ms);
    if (e) {
      snprintf(err, errlen, "cannot look up the offsets at time %" PRId64 ": %s", at_ms,
               rd_kafka_err2str(e));
      rc = -1;
    }
  }
  /* low/high watermarks: the bounds of each partition, concrete offsets for
   * earliest and latest, and the end of a bounded read */
  for (size_t i = 0; rc == 0 && i < s->n; i++) {
    ks_part_t *kp = &s->parts[i];
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(s->rk, s->topic, kp->partition, &lo, &hi, timeout_ms);
    if (e) {
      snprintf(err, errlen, "cannot read the offsets of partition %" PRId32 ": %s", kp->partition,
               rd_kafka_err2str(e));
      rc = -1;
      break;
    }
    if (kp->next < 0) {
      int64_t t = -1;
      for (int j = 0; j < l->cnt && at_ms >= 0; j++)
        if (l->elems[j].partition == kp->partition) t = l->elems[j].offset;
      kp->next = at_ms >= 0 ? (t >= 0 ? t : hi) : earliest ? lo : hi;
    } else if (kp->next < lo) {
      sl_log(ctx, SL_LOG_WARN, "partition %" PRId32 " of '%s': offset %" PRId64 " is gone "
             "(retention; the oldest is %" PRId64 "): %" PRId64 " records were lost to this job",
             kp->partition, s->topic, kp->next, lo, lo - kp->next);
      kp->next = lo;
    }
    kp->end = s->bounded ? hi : -1;
  }
  rd_kafka_topic_partition_list_destroy(l);
  return rc;
}

static void ksrc_free(ksrc_t *s) {
  if (s->queue) {
    rd_kafka_queue_cb_event_enable(s->queue, NULL, NULL);
    rd_kafka_queue_destroy(s->queue);
  }
  if (s->rk) {
    if (s->subscribe) ksrc_group_close(s);
    rd_kafka_consumer_close(s->rk);
    rd_kafka_destroy(s->rk);
  }
  if (s->embedded) kafka_embedded_release();
  if (s->snap) rd_kafka_topic_partition_list_destroy(s->snap);
  kafka_offsets_withdraw(s);
  free(s->group);
  free(s->cluster);
  free(s->topic);
  free(s->parts);
  free(s->hdrs);
  free(s);
}

/* The result of an asynchronous group commit (served by consumer_poll, on
 * the task's thread). Failures are reported, the first and then every
 * 100th: the group's offsets are only a mirror of the checkpoints'. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
  (void)rk;
  ksrc_t *s = opaque;
  if (s->subscribe) ksrc_group_committed(s, e, offsets);
  if (!e || e == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  if (s->commit_failures++ % 100 == 0)
    sl_log(s->ctx, SL_LOG_WARN, "offset commit to the group failed: %s (%" PRIu64 " so far; "
           "recovery uses the checkpoints, not the group)", rd_kafka_err2str(e),
           s->commit_failures);
}

/* librdkafka's thread: the consumer queue went from empty to not empty. */
static void on_queue_filled(rd_kafka_t *rk, void *opaque) {
  (void)rk;
  sl_source_wake((sl_ctx_t *)opaque);
}

static int ksrc_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  char err[768];
  ksrc_t *s = calloc(1, sizeof(*s));
  if (!s) return SL_ENOMEM;
  s->cur_partition = -1;
  s->ctx = ctx;
  s->bounded = sl_config_bool(ctx, "bounded");
  s->subscribe = sl_config_bool(ctx, "subscribe");
  const char *format = sl_config_string(ctx, "format");
  s->json = strcmp(format, "json") == 0;
  s->lag = sl_gauge(ctx, "consumer_lag");
  restored_t r = {0};
  s->topic = strdup(sl_config_string(ctx, "topic"));
  int timeout_ms = (int)sl_config_duration_ms(ctx, "open_timeout");
  const char *group = sl_config_string(ctx, "group_id");
  char group_buf[300];
  if (!*group) {
    snprintf(group_buf, sizeof group_buf, "sluice.%s", sl_node_name(ctx));
    group = group_buf;
  }
  if (!s->json && strcmp(format, "raw") != 0) {
    snprintf(err, sizeof err, "config 'format': expected raw or json, got '%s'", format);
    goto fail;
  }
  if (kafka_topic_name_ok(s->topic, err, sizeof err) != 0) goto fail;
  rd_kafka_conf_t *conf = kafka_conf_new(ctx, &s->embedded, err, sizeof err);
  if (!conf) goto fail;
  if (s->embedded &&
      kafka_embedded_topic(s->topic, (int)sl_config_int(ctx, "embedded_partitions"), err,
                           sizeof err) != 0) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  char errstr[512];
  if (kafka_conf_default(ctx, conf, "group.id", group, err, sizeof err) != 0 ||
      kafka_conf_default(ctx, conf, "enable.auto.commit", "false", err, sizeof err) != 0 ||
      kafka_conf_default(ctx, conf, "enable.auto.offset.store", "false", err, sizeof err) != 0 ||
      kafka_conf_default(ctx, conf, "enable.partition.eof", "false", err, sizeof err) != 0 ||
      /* the prefetch queue a short block leaves full: 16 MiB, not 64 */
      kafka_conf_default(ctx, conf, "queued.max.messages.kbytes", "16384", err, sizeof err) != 0 ||
      (s->subscribe && ksrc_group_conf(s, conf, err, sizeof err) != 0)) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  {
    /* (for an exactly-once sink of the job: kafka_offsets.c) */
    char g[512];
    size_t gl = sizeof g;
    s->group = strdup(rd_kafka_conf_get(conf, "group.id", g, &gl) == RD_KAFKA_CONF_OK ? g : group);
    s->cluster = kafka_conf_cluster(conf);
    if (!s->group || !s->cluster) {
      rd_kafka_conf_destroy(conf);
      snprintf(err, sizeof err, "out of memory");
      goto fail;
    }
  }
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_opaque(conf, s);
  s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!s->rk) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, sizeof err, "cannot create the consumer: %s", errstr);
    goto fail;
  }
  rd_kafka_poll_set_consumer(s->rk);
  /* Messages arriving in an empty queue wake the task (librdkafka's thread
   * calls on_queue_filled): poll() never waits, and is not retried blind. */
  s->queue = rd_kafka_queue_get_consumer(s->rk);
  if (s->queue) rd_kafka_queue_cb_event_enable(s->queue, on_queue_filled, ctx);

  int32_t *ids = NULL;
  int count = 0;
  if (topic_partitions(s, timeout_ms, &ids, &count, err, sizeof err) != 0) goto fail;
  if (s->subscribe) {
    free(ids);
    if (restore_offsets(ctx, s, &r, err, sizeof err) < 0) goto fail;
    ksrc_group_start(s, r.parts, r.offsets, r.count, timeout_ms);
    sl_log(ctx, SL_LOG_DEBUG, "joining group '%s' for the %d partitions of '%s'", group, count,
           s->topic);
    free(r.parts);
    free(r.offsets);
    *state = s;
    return SL_OK;
  }
  uint32_t task = sl_task_index(ctx), par = sl_parallelism(ctx);
  for (int i = 0; i < count; i++)
    if ((uint32_t)ids[i] % par == task && !ksrc_add_part(s, ids[i])) {
      free(ids);
      snprintf(err, sizeof err, "out of memory");
      goto fail;
    }
  free(ids);
  if (s->n == 0)
    sl_log(ctx, SL_LOG_WARN, "topic '%s' has %d partitions for %u tasks: this task reads none",
           s->topic, count, par);
  if (restore_offsets(ctx, s, &r, err, sizeof err) < 0) goto fail;
  if (resolve_start(ctx, s, timeout_ms, err, sizeof err) != 0) goto fail;

  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)s->n);
  for (size_t i = 0; i < s->n; i++) {
    ks_part_t *kp = &s->parts[i];
    if (s->bounded && kp->next >= kp->end) continue; /* nothing to read */
    rd_kafka_topic_partition_list_add(l, s->topic, kp->partition)->offset = kp->next;
    s->open_parts++;
  }
  rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) {
    snprintf(err, sizeof err, "cannot assign the partitions: %s", rd_kafka_err2str(e));
    goto fail;
  }
  sl_log(ctx, SL_LOG_DEBUG, "reading %zu of the %d partitions of '%s'%s", s->n, count, s->topic,
         s->bounded ? " up to their current end" : "");
  *state = s;
  return SL_OK;
fail:
  snprintf(errbuf, errlen, "kafka_source: %s", err);
  free(r.parts);
  free(r.offsets);
  ksrc_free(s);
  return SL_ECONFIG;
}

/* -------------------------------------------------------------- poll */

/* Fills the headers scratch from a message; the count, or -1 when out of
 * memory. */
static int read_headers(ksrc_t *s, const rd_kafka_message_t *m) {
  rd_kafka_headers_t *hs = NULL;
  if (rd_kafka_message_headers(m, &hs) != 0 || !hs) return 0;
  size_t cnt = rd_kafka_header_cnt(hs);
  if (cnt > s->hdr_cap) {
    sl_header_t *p = realloc(s->hdrs, cnt * sizeof(*p));
    if (!p) return -1;
    s->hdrs = p;
    s->hdr_cap = cnt;
  }
  for (size_t i = 0; i < cnt; i++) {
    const char *name;
    const void *val;
    size_t len;
    if (rd_kafka_header_get_all(hs, i, &name, &val, &len) != 0) return (int)i;
    s->hdrs[i] = (sl_header_t){name, strlen(name), val ? val : "", val ? len : 0};
  }
  return (int)cnt;
}

/* The consumer-lag gauge: records between each partition's position and
 * its end as librdkafka last heard it (no request: fetch answers carry it). */
static void update_lag(ksrc_t *s) {
  uint64_t lag = 0;
  for (size_t i = 0; i < s->n; i++) {
    ks_part_t *kp = &s->parts[i];
    int64_t lo = -1, hi = -1;
    if (kp->revoking || kp->next < 0 ||
        rd_kafka_get_watermark_offsets(s->rk, s->topic, kp->partition, &lo, &hi) != 0)
      continue;
    if (hi > kp->next) lag += (uint64_t)(hi - kp->next);
  }
  sl_gauge_set(s->lag, lag);
}

static int ksrc_poll(sl_ctx_t *ctx, void *state) {
  ksrc_t *s = state;
  if ((s->bounded && s->open_parts == 0) || sl_stopping(ctx)) {
    update_lag(s); /* the run summary shows where the source stopped */
    return SL_DONE;
  }
  if (s->subscribe && !s->subscribed && ksrc_group_subscribe(s) != SL_OK) return SL_EIO;
  int64_t now = sl_now_ms(ctx);
  if (s->subscribe) ksrc_group_poll(s, now);
  if (now - s->lag_checked_ms >= LAG_EVERY_MS) {
    s->lag_checked_ms = now;
    update_lag(s);
  }
  uint32_t budget = sl_budget(ctx), emitted = 0;
  while (emitted < budget) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 0);
    if (!m) break;
    if (m->err) {
      char fatal[256];
      if (rd_kafka_fatal_error(s->rk, fatal, sizeof fatal)) {
        sl_fail(ctx, "kafka_source: fatal consumer error: %s", fatal);
        rd_kafka_message_destroy(m);
        return SL_EIO;
      }
      /* transient (a broker down, a leader move): librdkafka retries */
      sl_log(ctx, SL_LOG_WARN, "topic '%s': %s", s->topic, rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    ks_part_t *kp = ksrc_find_part(s, m->partition);
    if (!kp || kp->revoking || (kp->end >= 0 && kp->next >= kp->end) || m->offset < kp->next) {
      /* given up, past a bounded end, or a refetch already emitted */
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->partition != s->cur_partition) {
      sl_source_partition(ctx, (uint32_t)m->partition);
      s->cur_partition = m->partition;
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    int hn = read_headers(s, m);
    if (hn < 0) {
      rd_kafka_message_destroy(m);
      sl_fail(ctx, "kafka_source: out of memory for the headers of partition %" PRId32
              " offset %" PRId64, m->partition, m->offset);
      return SL_ENOMEM;
    }
    sl_record_t rec = {.key = m->key, .key_len = m->key_len, .value = m->payload,
                       .value_len = m->len, .ts = ts >= 0 ? ts : sl_now_ms(ctx),
                       .offset = m->offset, .headers = s->hdrs, .header_count = (uint32_t)hn};
    int rc;
    char why[256], reason[160];
    if (s->json && sl_json_validate(ctx, rec.value, rec.value_len, reason, sizeof reason) != 0) {
      /* a poison record: the node's on_error decides, naming where it is */
      snprintf(why, sizeof why, "partition %" PRId32 " offset %" PRId64 ": the value is not JSON "
               "(%s)", m->partition, m->offset, reason);
      rc = sl_record_failed(ctx, &rec, why);
    } else {
      rc = sl_emit(ctx, &rec);
    }
    kp->next = m->offset + 1;
    rd_kafka_message_destroy(m);
    if (rc < 0) return rc;
    emitted++;
    if (kp->end >= 0 && kp->next >= kp->end) {
      s->open_parts--;
      if (s->open_parts == 0) {
        update_lag(s);
        return SL_DONE;
      }
    }
  }
  return emitted ? SL_OK : SL_AGAIN;
}

/* --------------------------------------------------------- checkpoints */

static int ksrc_snapshot(sl_ctx_t *ctx, void *state, uint64_t id) {
  ksrc_t *s = state;
  size_t ml = strlen(STATE_MAGIC), tl = strlen(s->topic);
  size_t known = 0; /* partitions with a position (in a group, one read from) */
  for (size_t i = 0; i < s->n; i++) known += s->parts[i].next >= 0;
  size_t len = ml + 2 + tl + 4 + known * 12;
  unsigned char *b = malloc(len);
  if (!b) return SL_ENOMEM;
  memcpy(b, STATE_MAGIC, ml);
  put_le(b + ml, tl, 2);
  memcpy(b + ml + 2, s->topic, tl);
  size_t off = ml + 2 + tl;
  put_le(b + off, known, 4);
  off += 4;
  if (s->snap) rd_kafka_topic_partition_list_destroy(s->snap);
  s->snap = rd_kafka_topic_partition_list_new((int)known);
  for (size_t i = 0; i < s->n; i++) {
    if (s->parts[i].next < 0) continue;
    put_le(b + off, (uint32_t)s->parts[i].partition, 4);
    put_le(b + off + 4, (uint64_t)s->parts[i].next, 8);
    rd_kafka_topic_partition_list_add(s->snap, s->topic, s->parts[i].partition)->offset =
        s->parts[i].next;
    off += 12;
  }
  s->snap_id = id;
  /* for an exactly-once sink of this process, which sends them into its
   * transaction (kafka_offsets.c) */
  if (kafka_offsets_publish(s, s->group, s->cluster, id, s->snap) != 0) {
    free(b);
    sl_fail(ctx, "kafka_source: out of memory publishing the offsets of checkpoint %" PRIu64, id);
    return SL_ENOMEM;
  }
  update_lag(s);
  int rc = sl_op_state_put(ctx, OFFSETS_STATE, b, len);
  free(b);
  if (rc < 0) sl_fail(ctx, "kafka_source: saving the offsets for checkpoint %" PRIu64 " failed", id);
  return rc;
}

/* The checkpoint is complete: tell the group (asynchronously: no wait). */
static int ksrc_commit(sl_ctx_t *ctx, void *state, uint64_t id) {
  ksrc_t *s = state;
  if (!s->snap || s->snap_id > id || s->snap->cnt == 0) return SL_OK;
  rd_kafka_resp_err_t e = rd_kafka_commit(s->rk, s->snap, 1);
  if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
    sl_log(ctx, SL_LOG_WARN, "committing the offsets of checkpoint %" PRIu64 " to the group "
           "failed: %s (recovery uses the checkpoint, not the group)", id, rd_kafka_err2str(e));
  return SL_OK;
}

/* SDK 1.8: downstream has had no room for a while (or has room again).
 * Paused partitions are not fetched; librdkafka discards what it had
 * prefetched of them (from the shared consumer queue, partly only at the
 * next poll) and, on resume, fetches from the position after the last
 * record read: a stall reads nothing. Partitions being revoked stay
 * paused (revoke() paused them). No rebalance can come in
 * between: its callbacks run in rd_kafka_consumer_poll, which a held
 * source does not call. */
static int ksrc_backpressure(sl_ctx_t *ctx, void *state, int blocked) {
  ksrc_t *s = state;
  if (s->held == (blocked != 0) || s->n == 0) return SL_OK;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)s->n);
  for (size_t i = 0; i < s->n; i++)
    if (!s->parts[i].revoking) rd_kafka_topic_partition_list_add(l, s->topic, s->parts[i].partition);
  /* an in-process hand-off to librdkafka's threads: no network round trip */
  rd_kafka_resp_err_t e = blocked ? rd_kafka_pause_partitions(s->rk, l)
                                  : rd_kafka_resume_partitions(s->rk, l);
  for (int i = 0; !e && i < l->cnt; i++) /* (errors per partition come in the list) */
    if (l->elems[i].err) e = l->elems[i].err;
  rd_kafka_topic_partition_list_destroy(l);
  if (e && !blocked) { /* left paused, the source would read nothing more */
    sl_fail(ctx, "kafka_source: resuming the partitions of '%s' after backpressure: %s",
            s->topic, rd_kafka_err2str(e));
    return SL_EIO;
  }
  /* pausing only saves fetches: its failure is worth a warning, not the job */
  if (e)
    sl_log(ctx, SL_LOG_WARN, "pausing the partitions of '%s' on backpressure: %s", s->topic,
           rd_kafka_err2str(e));
  s->held = blocked != 0;
  return SL_OK;
}

static void ksrc_close(void *state) { ksrc_free(state); }

static const sl_config_key_t ksrc_config[] = {
    KAFKA_CLIENT_CONFIG,
    {"topic", SL_CONFIG_STRING, NULL, "the topic"},
    {"open_timeout", SL_CONFIG_DURATION, "30s", "how long open() waits for the cluster's metadata"},
    {"group_id", SL_CONFIG_STRING, "",
     "consumer group for committed offsets (default sluice.<node>)"},
    {"start", SL_CONFIG_STRING, "earliest",
     "without a checkpoint or group offset: earliest, latest, or epoch milliseconds"},
    {"use_group_offsets", SL_CONFIG_BOOL, "true",
     "without a checkpoint, start at the group's committed offsets when it has some"},
    {"bounded", SL_CONFIG_BOOL, "false", "stop at the partitions' end as of the start"},
    {"format", SL_CONFIG_STRING, "raw",
     "raw (values as they are) or json (a value that is not one JSON text fails under on_error)"},
    {"subscribe", SL_CONFIG_BOOL, "false",
     "join the consumer group: Kafka spreads the partitions over its members (tasks, processes)"},
};

const sl_operator_t kafka_source_op = {
    SL_OPERATOR_INIT,
    .name = "kafka_source",
    .version = "0.1.0",
    .description = "records of a Kafka topic; offsets in checkpoints",
    .kind = SL_KIND_SOURCE,
    .config = ksrc_config,
    .config_count = sizeof(ksrc_config) / sizeof(ksrc_config[0]),
    .open = ksrc_open,
    .poll = ksrc_poll,
    .close = ksrc_close,
    .snapshot = ksrc_snapshot,
    .commit = ksrc_commit,
    .backpressure = ksrc_backpressure,
};
