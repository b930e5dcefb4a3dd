/*
 * watermark.h - event time at a source: timestamps and the watermarks they
 * allow.
 *
 * A source node with `event_time:` (dag.h) gets a generator per task. Each
 * record it emits is stamped (from a JSON field, the time of ingestion, or
 * left as the plugin set it) and counted in its partition (sl_source_partition;
 * partition 0 otherwise). After each poll the task asks for the watermark:
 * per partition, the largest timestamp seen minus max_out_of_order minus 1
 * (bounded out-of-orderness, as Flink: a record at exactly that bound is
 * still on time); over the partitions, the minimum of those that are not
 * idle. A partition that brought no record for idle_timeout is idle and no
 * longer holds the watermark back; its next record makes it active again.
 * When every partition is idle, the source is idle: downstream tasks then
 * leave its channels out of their own minimum.
 *
 * Nothing here reads the clock per record: polls mark partitions as seen,
 * and the per-poll check turns those marks into times.
 */
#ifndef SL_WATERMARK_H
#define SL_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"

typedef struct sl_wm_partition {
  int64_t max_ts;       /* largest timestamp seen, SL_TS_MIN before any */
  int64_t last_seen_ms; /* wall clock of the check that last saw a record */
  bool seen_since_check;
} sl_wm_partition_t;

typedef struct sl_wm_gen {
  const sl_event_time_t *cfg;
  sl_wm_partition_t *parts;
  uint32_t count;   /* partitions known (the highest used + 1) */
  uint32_t current; /* partition of the records emitted now */
  int64_t started_ms;
  int64_t poll_ms; /* wall clock at the start of the current poll (ingestion time) */
} sl_wm_gen_t;

sl_wm_gen_t *sl_wm_gen_new(const sl_event_time_t *cfg, int64_t now_ms);
void sl_wm_gen_free(sl_wm_gen_t *g);
/** Records emitted from now on belong to partition p. */
void sl_wm_gen_set_partition(sl_wm_gen_t *g, uint32_t p);
/** Partition p is no longer read here: forget it until its next record. */
void sl_wm_gen_release(sl_wm_gen_t *g, uint32_t p);

/**
 * The timestamp of a record the source emits, per the configuration: 0 and
 * *ts, or -1 with the reason in why (no valid timestamp: the node's on_error
 * decides). Counts the record in the current partition.
 */
int sl_wm_gen_stamp(sl_wm_gen_t *g, const sl_record_t *rec, int64_t *ts, char *why,
                    size_t whylen);

/**
 * After a poll: the watermark the source can promise now (SL_TS_MIN while it
 * knows nothing), and whether it is idle (*idle: every partition idle, or no
 * record for idle_timeout since the start).
 */
int64_t sl_wm_gen_watermark(sl_wm_gen_t *g, int64_t now_ms, bool *idle);

#endif
