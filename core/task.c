/*
 * task.c - running one task: pulling input batches, calling operators,
 * routing what they emit (chained call, or a batch in an output channel),
 * error policies, end of input.
 *
 * Backpressure: a task takes a new input batch (or polls its source) only
 * when every output channel has credit. What one input batch produces beyond
 * the credit waits in the task's per-output pending list, and the task takes
 * no more input until that list has drained. So memory stays bounded by the
 * channel capacities plus the fan-out of one batch, and a worker never waits:
 * a task without credit simply is not runnable.
 *
 * Watermarks ride on the data: a batch is stamped, when sealed, with the
 * watermark its producer had reached (t->wm_out), which is valid for every
 * record in it. A channel that got no data since the watermark advanced
 * gets a WATERMARK batch instead, and an idle marker when the producer is
 * idle. A consumer takes the minimum over its inputs that are neither ended
 * nor idle; when it rises, the task applies it through its chain in order
 * (each operator's event-time timers fire, then on_watermark) before it
 * takes more input, and only then stamps it on its own outputs. Firing is
 * done in steps of at most one budget of timers, so a watermark that makes a
 * million windows due is backpressured like any other output.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "host_time.h"
#include "state.h"
#include "job.h"
#include "json_scan.h"
#include "log.h"
#include "util.h"
#include "watermark.h"

#define SL_SOURCE_RETRY_NS 1000000ull /* a source that said SL_AGAIN is polled again after 1 ms */
#define SL_BATCHES_PER_RUN 8          /* input batches per turn, for fairness between tasks */

static inline void stat_inc(_Atomic uint64_t *v, uint64_t n) {
  atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n, memory_order_relaxed);
}

/* ------------------------------------------------------------ outputs */

/* Hand a sealed batch to its channel, or queue it when there is no credit. */
static void task_seal(sl_task_t *t, sl_channel_t *ch, sl_batch_t *b) {
  sl_task_output_t *out = &t->outputs[ch->producer_slot];
  if (b->kind == SL_BATCH_WATERMARK) {
    out->idle_sent = b->idle;
  } else {
    b->wm = t->wm_out; /* every record in it was emitted before wm_out was reached */
    if (b->kind == SL_BATCH_DATA) out->idle_sent = false;
  }
  if (b->wm > out->wm_sent) out->wm_sent = b->wm;
  if (!out->pending_head && sl_channel_push(ch, b) == 0) {
    sl_worker_notify(((sl_task_t *)ch->consumer)->worker);
    return;
  }
  b->next = NULL;
  if (out->pending_tail)
    out->pending_tail->next = b;
  else
    out->pending_head = b;
  out->pending_tail = b;
  if (++t->pending_batches > t->max_pending_batches) t->max_pending_batches = t->pending_batches;
}

/* Push queued batches while there is credit. Returns non-zero if any moved. */
static int task_drain_pending(sl_task_t *t) {
  if (!t->pending_batches) return 0;
  int moved = 0;
  for (uint32_t o = 0; o < t->output_count; o++) {
    sl_task_output_t *out = &t->outputs[o];
    while (out->pending_head) {
      sl_batch_t *b = out->pending_head;
      if (sl_channel_push(out->channel, b) != 0) break;
      out->pending_head = b->next;
      if (!out->pending_head) out->pending_tail = NULL;
      t->pending_batches--;
      moved = 1;
      sl_worker_notify(((sl_task_t *)out->channel->consumer)->worker);
    }
  }
  return moved;
}

/* Seal every partly filled batch (end of an input batch or of a poll). */
static void task_flush(sl_task_t *t) {
  for (uint32_t o = 0; o < t->op_count; o++) {
    sl_op_instance_t *inst = t->ops[o];
    for (uint32_t p = 0; p < inst->port_count; p++) {
      sl_out_port_t *port = &inst->ports[p];
      for (uint32_t k = 0; k < port->target_count; k++) {
        sl_out_target_t *tg = &port->targets[k];
        if (tg->kind == SL_EDGE_CHAINED) continue;
        for (uint32_t c = 0; c < tg->channel_count; c++) {
          sl_batch_t *b = tg->filling[c];
          if (b && b->count) {
            tg->filling[c] = NULL;
            task_seal(t, tg->channels[c], b);
          }
        }
      }
    }
  }
}

static int outputs_have_credit(sl_task_t *t) {
  for (uint32_t o = 0; o < t->output_count; o++)
    if (!sl_channel_has_credit(t->outputs[o].channel)) return 0;
  return 1;
}

/* Append a record to the batch being filled for channel c of a target. */
static void route_to_channel(sl_task_t *t, sl_out_target_t *tg, uint32_t c, const sl_record_t *rec,
                             const void *key, size_t key_len, uint8_t flags) {
  sl_batch_t *b = tg->filling[c];
  if (!b) b = tg->filling[c] = sl_channel_acquire(tg->channels[c]);
  if (sl_batch_append(b, rec, key, key_len, flags) != 0) {
    task_seal(t, tg->channels[c], b);
    b = tg->filling[c] = sl_channel_acquire(tg->channels[c]);
    sl_batch_append(b, rec, key, key_len, flags);
  }
  if (sl_batch_full(b)) {
    tg->filling[c] = NULL;
    task_seal(t, tg->channels[c], b);
  }
}

static void instance_process(sl_op_instance_t *inst, const sl_record_t *rec, uint8_t flags);

int sl_instance_emit(sl_op_instance_t *inst, int port, const sl_record_t *rec) {
  sl_out_port_t *p = &inst->ports[port];
  for (uint32_t k = 0; k < p->target_count; k++) {
    sl_out_target_t *tg = &p->targets[k];
    switch (tg->kind) {
    case SL_EDGE_CHAINED:
      instance_process(tg->chained, rec, 0);
      break;
    case SL_EDGE_FORWARD:
      route_to_channel(inst->task, tg, 0, rec, NULL, 0, 0);
      break;
    case SL_EDGE_REBALANCE: {
      uint32_t c = tg->next_rr++;
      if (tg->next_rr >= tg->channel_count) tg->next_rr = 0;
      route_to_channel(inst->task, tg, c, rec, NULL, 0, 0);
      break;
    }
    case SL_EDGE_BROADCAST:
      for (uint32_t c = 0; c < tg->channel_count; c++)
        route_to_channel(inst->task, tg, c, rec, NULL, 0, 0);
      break;
    case SL_EDGE_KEY_BY: {
      const void *key = rec->key;
      size_t key_len = rec->key_len;
      uint8_t flags = 0;
      if (tg->key_field) {
        sl_json_value_t v;
        if (sl_json_scan_get(rec->value, rec->value_len, tg->key_field, &v) == 0 &&
            (v.type == SL_JSON_STRING || v.type == SL_JSON_NUMBER || v.type == SL_JSON_BOOL)) {
          key = v.ptr;
          key_len = v.len;
        } else {
          /* The consumer owns the on_error policy: send it there, flagged. */
          flags = SL_REC_KEY_ERROR;
        }
      }
      /* key -> key group -> task, so that state can later be redistributed
       * by key group when parallelism changes. */
      uint32_t group = sl_key_group_of(key, key_len, tg->max_key_groups);
      uint32_t c = (uint32_t)(((uint64_t)group * tg->consumer_parallelism) / tg->max_key_groups);
      route_to_channel(inst->task, tg, c, rec, key, key_len, flags);
      break;
    }
    }
  }
  return 0;
}

/* ------------------------------------------------------------- errors */

static const char *instance_error_text(sl_op_instance_t *inst, int rc) {
  return inst->error_set ? inst->error : sl_error_text(rc);
}

/* A record failed in `inst`: apply the node's on_error policy. */
void sl_instance_record_failed(sl_op_instance_t *inst, const sl_record_t *rec,
                                   const char *why) {
  const sl_dag_node_t *node = inst->node;
  char offset[32];
  if (rec->offset == SL_OFFSET_NONE)
    snprintf(offset, sizeof(offset), "unknown");
  else
    snprintf(offset, sizeof(offset), "%" PRId64, rec->offset);
  switch (node->on_error) {
  case SL_ON_ERROR_FAIL:
    sl_job_fail(inst->job, "node '%s' (operator '%s' of plugin %s), task %u: record at offset %s: %s",
                node->name, inst->op->name, inst->plugin ? inst->plugin->path : "?", inst->subtask,
                offset, why);
    break;
  case SL_ON_ERROR_SKIP:
    if (atomic_load_explicit(&inst->stats.errors_skipped, memory_order_relaxed) == 0) {
      char where[160];
      snprintf(where, sizeof(where), "node %s[%u]", node->name, inst->subtask);
      sl_log_msg(SL_LOG_WARN, where,
                 "skipping record at offset %s: %s (further skips are only counted)", offset, why);
    }
    stat_inc(&inst->stats.errors_skipped, 1);
    break;
  case SL_ON_ERROR_DEAD_LETTER: {
    /* The original record plus two headers naming the error and the node. */
    enum { MAX_STACK_HEADERS = 32 };
    sl_header_t stack[MAX_STACK_HEADERS + 2];
    sl_header_t *hdrs = stack;
    uint32_t n = rec->header_count;
    if (n > MAX_STACK_HEADERS) hdrs = sl_xmalloc((n + 2) * sizeof(sl_header_t)); /* rare */
    if (n) memcpy(hdrs, rec->headers, n * sizeof(sl_header_t));
    hdrs[n++] = (sl_header_t){"sluice.error", 12, why, strlen(why)};
    hdrs[n++] = (sl_header_t){"sluice.node", 11, node->name, strlen(node->name)};
    sl_record_t dl = *rec;
    dl.headers = hdrs;
    dl.header_count = n;
    stat_inc(&inst->stats.errors_dead_lettered, 1);
    sl_instance_emit(inst, inst->errors_port, &dl);
    if (hdrs != stack) free(hdrs);
    break;
  }
  }
}

static void instance_process(sl_op_instance_t *inst, const sl_record_t *rec, uint8_t flags) {
  if (sl_job_failed(inst->job)) return; /* nothing reaches an operator once the job failed */
  stat_inc(&inst->stats.records_in, 1);
  if (flags & SL_REC_KEY_ERROR) {
    char why[256];
    snprintf(why, sizeof(why), "key_by: field '%s' is missing, not a scalar, or the value is not a JSON object",
             inst->node->key_by ? inst->node->key_by : "?");
    sl_instance_record_failed(inst, rec, why);
    return;
  }
  inst->current = rec;
  inst->ks_rec = NULL;
  inst->error_set = false;
  int rc = inst->process_batch
               ? inst->process_batch((sl_ctx_t *)inst, inst->state, rec, 1)
               : inst->op->process((sl_ctx_t *)inst, inst->state, rec);
  if (rc == SL_AGAIN && inst->process_batch && inst->op->process) {
    inst->process_batch = NULL; /* declined: per record from now on */
    rc = inst->op->process((sl_ctx_t *)inst, inst->state, rec);
  }
  inst->current = NULL;
  if (rc < 0) sl_instance_record_failed(inst, rec, instance_error_text(inst, rc));
}

/* A whole input batch to a head operator that takes batches. Records the
 * key_by could not key go one by one (their own error path). */
static void instance_process_batch(sl_op_instance_t *inst, const sl_batch_t *b) {
  uint32_t start = 0;
  while (start < b->count && !sl_job_failed(inst->job)) {
    uint32_t end = start;
    while (end < b->count && !(b->flags[end] & SL_REC_KEY_ERROR)) end++;
    if (end > start) {
      uint32_t n = end - start;
      stat_inc(&inst->stats.records_in, n);
      inst->current = &b->records[start];
      inst->error_set = false;
      int rc = inst->process_batch((sl_ctx_t *)inst, inst->state, &b->records[start], n);
      inst->current = NULL;
      if (rc == SL_AGAIN && inst->op->process) {
        /* Declined: per record from now on (so one bad record is one failure). */
        inst->process_batch = NULL;
        stat_inc(&inst->stats.records_in, (uint64_t)0 - n); /* counted again below */
        for (uint32_t i = start; i < b->count && !sl_job_failed(inst->job); i++)
          instance_process(inst, &b->records[i], b->flags[i]);
        return;
      }
      if (rc < 0) {
        const char *why = instance_error_text(inst, rc);
        for (uint32_t i = start; i < end && !sl_job_failed(inst->job); i++)
          sl_instance_record_failed(inst, &b->records[i], why);
      }
    }
    if (end < b->count) instance_process(inst, &b->records[end], b->flags[end]);
    start = end + 1;
  }
}

/* --------------------------------------------------------- watermarks */

/* Tell channels that missed it: the watermark, or that the task is idle. */
static void task_send_watermarks(sl_task_t *t) {
  for (uint32_t o = 0; o < t->output_count; o++) {
    sl_task_output_t *out = &t->outputs[o];
    bool send = t->idle_out ? !out->idle_sent : (out->idle_sent || out->wm_sent < t->wm_out);
    if (!send) continue;
    sl_batch_t *b = sl_channel_acquire(out->channel);
    b->kind = SL_BATCH_WATERMARK;
    b->wm = t->wm_out;
    b->idle = t->idle_out;
    task_seal(t, out->channel, b);
  }
}

/*
 * Apply t->wm_target through the chain, in order: each operator's watermark
 * becomes the target, its due event-time timers fire, then on_watermark.
 * At most one budget of timers per call: returns 0 when more remain (call
 * again once the outputs have credit), 1 when the target is applied and
 * stamped on the outputs.
 */
static int task_advance_step(sl_task_t *t) {
  uint32_t budget = t->job->dag->settings.batch_size;
  if (!budget) budget = 1;
  while (t->fire_op < t->op_count) {
    if (sl_job_failed(t->job)) return 1;
    if (budget == 0) {
      task_flush(t);
      return 0;
    }
    sl_op_instance_t *inst = t->ops[t->fire_op];
    inst->wm = t->wm_target;
    uint32_t n = sl_instance_fire_timers(inst, SL_TIME_EVENT, t->wm_target, budget);
    budget -= n;
    if (budget == 0) continue; /* maybe more of them: flush first */
    if (SL_OPERATOR_HAS(inst->op, on_watermark) && inst->op->on_watermark) {
      inst->error_set = false;
      int rc = inst->op->on_watermark((sl_ctx_t *)inst, inst->state, t->wm_target);
      if (rc < 0)
        sl_job_fail(t->job, "node '%s' (operator '%s'), task %u: on_watermark failed: %s",
                    inst->node->name, inst->op->name, inst->subtask, instance_error_text(inst, rc));
    }
    t->fire_op++;
  }
  t->fire_op = 0;
  t->wm_out = t->wm_target;
  atomic_store_explicit(&t->wm_seen, t->wm_out, memory_order_relaxed);
  task_flush(t);
  if (t->wm_out != SL_TS_MAX) task_send_watermarks(t); /* END says SL_TS_MAX itself */
  return 1;
}

/* An input's watermark or status changed: the task's watermark is the
 * minimum over the inputs that are neither ended nor idle. */
static void task_input_watermark(sl_task_t *t) {
  int64_t wm = SL_TS_MAX;
  uint32_t active = 0, idle = 0;
  for (uint32_t i = 0; i < t->input_count; i++) {
    const sl_task_input_t *in = &t->inputs[i];
    if (in->ended) continue;
    if (in->idle) {
      idle++;
      continue;
    }
    active++;
    if (in->wm < wm) wm = in->wm;
  }
  if (!active) {
    if (idle && !t->idle_out) { /* every open input is idle: so is this task */
      t->idle_out = true;
      task_send_watermarks(t);
    }
    return; /* all ended: task_end applies SL_TS_MAX */
  }
  t->idle_out = false;
  if (wm > t->wm_target) t->wm_target = wm;
}

/* A source with `event_time`: the watermark its generator allows after a poll. */
static void task_source_watermark(sl_task_t *t) {
  sl_op_instance_t *src = t->ops[0];
  if (!src->wm_gen) return;
  bool idle;
  int64_t wm = sl_wm_gen_watermark(src->wm_gen, sl_wall_ms(), &idle);
  if (idle) {
    if (!t->idle_out) {
      t->idle_out = true;
      task_send_watermarks(t);
    }
    return;
  }
  t->idle_out = false;
  if (wm > t->wm_target) t->wm_target = wm;
}

/* Due processing-time timers of the task's operators, one budget per call. */
static void task_fire_processing_timers(sl_task_t *t, int64_t now_ms) {
  uint32_t budget = t->job->dag->settings.batch_size;
  if (!budget) budget = 1;
  for (uint32_t o = 0; o < t->op_count && budget && !sl_job_failed(t->job); o++)
    budget -= sl_instance_fire_timers(t->ops[o], SL_TIME_PROCESSING, now_ms, budget);
  t->proc_due_ms = sl_task_next_processing_timer(t);
  task_flush(t);
}

/* --------------------------------------------------------- life cycle */

/* Memory is bounded only if poll and on_end respect sl_budget(): the host
 * cannot refuse what it is handed. Say so, once, when one does not. */
static void check_budget(sl_op_instance_t *inst, uint64_t out_before, const char *callback) {
  uint64_t emitted = atomic_load_explicit(&inst->stats.records_out, memory_order_relaxed) - out_before;
  uint32_t budget = inst->job->dag->settings.batch_size;
  if (emitted > budget && !inst->warned_budget) {
    inst->warned_budget = true;
    char where[160];
    snprintf(where, sizeof(where), "node %s[%u]", inst->node->name, inst->subtask);
    sl_log_msg(SL_LOG_WARN, where,
               "%s emitted %llu records in one call, over its budget of %u (sl_budget): memory "
               "is only bounded when operators respect it",
               callback, (unsigned long long)emitted, budget);
  }
}

/*
 * End of input: call on_end of each operator in chain order, then send END.
 * An on_end that returns SL_AGAIN has more to emit: the task stops here and
 * resumes (sl_task_run -> task_end again) once its outputs have credit, so a
 * large final result is backpressured like any other output.
 */
static void task_end(sl_task_t *t) {
  if (!t->ending) {
    t->ending = true;
    t->wm_target = SL_TS_MAX; /* end of input: all event time has passed */
  }
  if (t->wm_out != SL_TS_MAX) {
    if (!task_advance_step(t)) return; /* more timers to fire once there is credit */
    /* Processing-time timers belong to a wall-clock future this task will
     * not see: forget them (also in state, so no checkpoint keeps them). */
    for (uint32_t o = 0; o < t->op_count; o++) sl_instance_drop_processing_timers(t->ops[o]);
    t->proc_due_ms = SL_TS_MAX;
  }
  for (uint32_t o = 0; o < t->op_count && !sl_job_failed(t->job); o++) {
    sl_op_instance_t *inst = t->ops[o];
    if (inst->ended) continue;
    if (inst->op->on_end) {
      inst->error_set = false;
      uint64_t before = atomic_load_explicit(&inst->stats.records_out, memory_order_relaxed);
      int rc = inst->op->on_end((sl_ctx_t *)inst, inst->state);
      check_budget(inst, before, "on_end");
      if (rc == SL_AGAIN) {
        task_flush(t);
        return;
      }
      if (rc < 0)
        sl_job_fail(t->job, "node '%s' (operator '%s'), task %u: on_end failed: %s",
                    inst->node->name, inst->op->name, inst->subtask, instance_error_text(inst, rc));
    }
    inst->ended = true;
  }
  task_flush(t);
  for (uint32_t o = 0; o < t->output_count; o++) {
    sl_batch_t *b = sl_channel_acquire(t->outputs[o].channel);
    b->kind = SL_BATCH_END;
    task_seal(t, t->outputs[o].channel, b);
  }
  t->phase = SL_TASK_ENDING;
}

static void note_blocked(sl_task_t *t, uint64_t now) {
  if (!t->blocked_since_ns) t->blocked_since_ns = now;
}

static void note_unblocked(sl_task_t *t, uint64_t now) {
  if (t->blocked_since_ns) {
    stat_inc(&t->backpressure_ns, now - t->blocked_since_ns);
    t->blocked_since_ns = 0;
  }
}

/* Tells a source (sl_operator_t.backpressure, SDK 1.8) that its output has
 * been full for SL_BACKPRESSURE_SIGNAL_MS, or has room again. Checked on
 * every run of the task; a blocked task's worker wakes at least every
 * SL_PARK_MAX_NS (scheduler.c), so the signal comes within that of the
 * threshold. */
static void signal_backpressure(sl_task_t *t, uint64_t now, bool blocked) {
  if (!t->is_source || blocked == t->bp_signalled || t->phase != SL_TASK_RUNNING) return;
  sl_op_instance_t *inst = t->ops[0];
  if (!SL_OPERATOR_HAS(inst->op, backpressure) || !inst->op->backpressure) return;
  if (blocked && now - t->blocked_since_ns < SL_BACKPRESSURE_SIGNAL_MS * 1000000ull) return;
  t->bp_signalled = blocked;
  atomic_fetch_add_explicit(&t->bp_signals, blocked, memory_order_relaxed);
  inst->error_set = false;
  int rc = inst->op->backpressure((sl_ctx_t *)inst, inst->state, blocked);
  if (rc < 0)
    sl_job_fail(t->job, "node '%s' (source '%s'), task %u: backpressure(%d) failed: %s",
                inst->node->name, inst->op->name, inst->subtask, blocked,
                instance_error_text(inst, rc));
}

/* ------------------------------------------------------ checkpoints */

/* Checkpoint `completed` is on disk: operators commit (phase two). */
static int task_notify_commits(sl_task_t *t) {
  uint64_t c = atomic_load_explicit(&t->job->ckpt_completed, memory_order_acquire);
  if (c <= t->ckpt_committed) return 0;
  t->ckpt_committed = c;
  int any = 0;
  for (uint32_t o = 0; o < t->op_count && !sl_job_failed(t->job); o++) {
    sl_op_instance_t *inst = t->ops[o];
    if (!SL_OPERATOR_HAS(inst->op, commit) || !inst->op->commit) continue;
    any = 1;
    inst->error_set = false;
    int rc = inst->op->commit((sl_ctx_t *)inst, inst->state, c);
    if (rc < 0)
      sl_job_fail(t->job, "node '%s' (operator '%s'), task %u: commit of checkpoint %llu failed: %s",
                  inst->node->name, inst->op->name, inst->subtask, (unsigned long long)c,
                  instance_error_text(inst, rc));
  }
  if (any) sl_fault_point("commit", c);
  return 1;
}

/*
 * Barrier `id` has reached this task (a source: it was triggered): snapshot
 * the operators, send the barrier after everything emitted so far, and
 * acknowledge. The time spent here is the pause the checkpoint costs the task.
 */
static void task_checkpoint(sl_task_t *t, uint64_t id) {
  uint64_t t0 = sl_mono_ns();
  task_notify_commits(t); /* commit N before preparing N+1 */
  task_flush(t);
  sl_ckpt_part_t *parts;
  if (sl_ckpt_snapshot_task(t, id, &parts) != 0) return;
  for (uint32_t o = 0; o < t->output_count; o++) {
    sl_batch_t *b = sl_channel_acquire(t->outputs[o].channel);
    b->kind = SL_BATCH_BARRIER;
    b->ckpt_id = id;
    task_seal(t, t->outputs[o].channel, b);
  }
  t->ckpt_done = id;
  uint64_t pause = sl_mono_ns() - t0;
  if (sl_log_enabled(SL_LOG_DEBUG)) {
    char where[160];
    snprintf(where, sizeof(where), "node %s[%u]", t->ops[0]->node->name, t->ops[0]->subtask);
    sl_log_msg(SL_LOG_DEBUG, where, "checkpoint %llu: task paused %.3f ms",
               (unsigned long long)id, (double)pause / 1e6);
  }
  sl_fault_point(t->is_source ? "barrier" : "snapshot", id);
  sl_ckpt_ack(t->job, id, parts, t->op_count, pause);
}

/* Has every input delivered barrier t->aligning (or ended)? */
static int task_aligned(const sl_task_t *t) {
  for (uint32_t i = 0; i < t->input_count; i++)
    if (!t->inputs[i].ended && t->inputs[i].barrier != t->aligning) return 0;
  return 1;
}

static void task_release_inputs(sl_task_t *t) {
  for (uint32_t i = 0; i < t->input_count; i++) t->inputs[i].barrier = 0;
  stat_inc(&t->align_ns, sl_mono_ns() - t->align_start_ns);
  t->aligning = 0;
}

/* A barrier arrived on input `in`: hold that input until all are aligned. */
static void task_on_barrier(sl_task_t *t, sl_task_input_t *in, uint64_t id) {
  if (id <= t->ckpt_done) return; /* stale: from a checkpoint already taken */
  if (t->aligning && id != t->aligning) {
    if (id < t->aligning) return;
    task_release_inputs(t); /* a newer checkpoint overtook an unfinished alignment */
  }
  if (!t->aligning) {
    t->aligning = id;
    t->align_start_ns = sl_mono_ns();
  }
  in->barrier = id;
  if (task_aligned(t)) {
    task_release_inputs(t);
    task_checkpoint(t, id);
  }
}

static int task_poll_source(sl_task_t *t, uint64_t now) {
  bool woken = atomic_exchange_explicit(&t->source_woken, false, memory_order_acq_rel);
  if (now < t->retry_at_ns && !woken && !sl_stop_requested()) return 0;
  sl_op_instance_t *inst = t->ops[0];
  int rc;
  if (sl_stop_requested()) {
    rc = SL_DONE;
  } else {
    inst->error_set = false;
    uint64_t before = atomic_load_explicit(&inst->stats.records_out, memory_order_relaxed);
    if (inst->wm_gen) inst->wm_gen->poll_ms = sl_wall_ms(); /* ingestion time */
    rc = inst->op->poll((sl_ctx_t *)inst, inst->state);
    check_budget(inst, before, "poll");
  }
  task_flush(t);
  if (rc != SL_DONE) task_source_watermark(t);
  if (rc == SL_DONE) {
    task_end(t);
  } else if (rc == SL_AGAIN) {
    t->retry_at_ns = now + SL_SOURCE_RETRY_NS;
    return 0;
  } else if (rc < 0) {
    sl_job_fail(t->job, "node '%s' (source '%s'), task %u: poll failed: %s", inst->node->name,
                inst->op->name, inst->subtask, instance_error_text(inst, rc));
  }
  return 1;
}

static int task_process_inputs(sl_task_t *t, uint64_t now) {
  int progress = 0;
  sl_op_instance_t *head = t->ops[0];
  for (int round = 0; round < SL_BATCHES_PER_RUN; round++) {
    if (sl_job_failed(t->job)) break;
    if (round > 0 && (t->pending_batches || !outputs_have_credit(t))) break;
    /* a snapshot (a barrier just taken) may have paused the input */
    if (atomic_load_explicit(&t->input_pauses, memory_order_acquire)) break;
    sl_batch_t *b = NULL;
    sl_task_input_t *in = NULL;
    for (uint32_t i = 0; i < t->input_count; i++) {
      uint32_t idx = (t->next_input + i) % t->input_count;
      if (t->inputs[idx].ended) continue;
      if (t->inputs[idx].barrier) continue; /* held for alignment */
      b = sl_channel_pop(t->inputs[idx].channel);
      if (b) {
        in = &t->inputs[idx];
        t->next_input = idx + 1;
        break;
      }
    }
    if (!b) break;
    progress = 1;
    /* The producer may have been waiting for this credit. */
    sl_worker_notify(((sl_task_t *)in->channel->producer)->worker);
    if (b->kind == SL_BATCH_BARRIER) {
      uint64_t id = b->ckpt_id;
      sl_channel_release(in->channel, b);
      task_on_barrier(t, in, id);
      continue;
    }
    if (b->kind == SL_BATCH_WATERMARK) {
      if (b->wm > in->wm) in->wm = b->wm;
      in->idle = b->idle;
      sl_channel_release(in->channel, b);
      task_input_watermark(t);
      if (t->wm_target > t->wm_out) break; /* apply it before more input */
      continue;
    }
    if (b->kind == SL_BATCH_END) {
      sl_channel_release(in->channel, b);
      in->ended = true;
      if (t->aligning && task_aligned(t)) { /* the inputs still open are all aligned */
        uint64_t id = t->aligning;
        task_release_inputs(t);
        task_checkpoint(t, id);
      }
      if (++t->inputs_ended == t->input_count) {
        task_end(t);
        break;
      }
      task_input_watermark(t); /* an ended input holds nothing back */
      if (t->wm_target > t->wm_out) break;
      continue;
    }
    if (head->process_batch) {
      instance_process_batch(head, b);
    } else {
      for (uint32_t r = 0; r < b->count; r++) {
        instance_process(head, &b->records[r], b->flags[r]);
        if (sl_job_failed(t->job)) break;
      }
    }
    int64_t bwm = b->wm;
    sl_channel_release(in->channel, b);
    task_flush(t);
    if (bwm > in->wm || in->idle) {
      if (bwm > in->wm) in->wm = bwm;
      in->idle = false; /* data: the producer is active */
      task_input_watermark(t);
      if (t->wm_target > t->wm_out) break; /* apply it before more input */
    }
  }
  (void)now;
  return progress;
}

/* Stop-with-savepoint: once the savepoint is committed here, the task stops
 * without draining (what is still queued comes after the savepoint's
 * barrier, so a job started from the savepoint replays it). */
static int task_halt_if_asked(sl_task_t *t) {
  uint64_t halt = atomic_load_explicit(&t->job->halt_at, memory_order_acquire);
  if (!halt || t->ckpt_committed < halt) return 0;
  t->phase = SL_TASK_FINISHED;
  t->worker->finished_count++;
  atomic_fetch_add(&t->job->tasks_finished, 1);
  return 1;
}

int sl_task_run(sl_task_t *t, uint64_t now) {
  if (t->phase == SL_TASK_FINISHED) return 0;
  int progress = task_notify_commits(t);
  if (task_halt_if_asked(t)) return 1;
  progress |= task_drain_pending(t);
  if (t->pending_batches) {
    note_blocked(t, now);
    signal_backpressure(t, now, true);
    return progress;
  }
  if (t->phase == SL_TASK_ENDING) {
    t->phase = SL_TASK_FINISHED;
    t->worker->finished_count++;
    atomic_fetch_add(&t->job->tasks_finished, 1);
    return 1;
  }
  if (sl_job_failed(t->job)) return progress;
  if (!outputs_have_credit(t)) {
    note_blocked(t, now);
    signal_backpressure(t, now, true);
    return progress;
  }
  note_unblocked(t, now);
  signal_backpressure(t, now, false);
  if (t->ending) { /* an on_end (or the final watermark's timers) asked to be called again */
    task_end(t);
    return 1;
  }
  if (t->wm_target > t->wm_out) { /* a watermark still being applied */
    task_advance_step(t);
    return 1;
  }
  if (t->proc_due_ms != SL_TS_MAX) {
    int64_t now_ms = sl_wall_ms();
    if (now_ms >= t->proc_due_ms) {
      task_fire_processing_timers(t, now_ms);
      return 1;
    }
  }
  if (atomic_load_explicit(&t->input_pauses, memory_order_acquire)) return progress; /* sl_input_pause */
  if (t->is_source) {
    uint64_t trig = atomic_load_explicit(&t->job->ckpt_trigger, memory_order_acquire);
    if (trig > t->ckpt_done) {
      task_checkpoint(t, trig);
      return 1;
    }
    return task_poll_source(t, now) | progress;
  }
  return task_process_inputs(t, now) | progress;
}

int sl_task_ready(sl_task_t *t, uint64_t now) {
  if (t->phase == SL_TASK_FINISHED) return 0;
  if (sl_job_failed(t->job)) return 1;
  if (atomic_load_explicit(&t->job->ckpt_completed, memory_order_relaxed) > t->ckpt_committed)
    return 1;
  if (t->pending_batches) {
    for (uint32_t o = 0; o < t->output_count; o++)
      if (t->outputs[o].pending_head && sl_channel_has_credit(t->outputs[o].channel)) return 1;
    return 0;
  }
  if (t->phase == SL_TASK_ENDING) return 1;
  if (!outputs_have_credit(t)) return 0;
  if (t->ending || t->wm_target > t->wm_out) return 1;
  if (t->proc_due_ms != SL_TS_MAX && sl_wall_ms() >= t->proc_due_ms) return 1;
  if (atomic_load_explicit(&t->input_pauses, memory_order_acquire)) return 0;
  if (t->is_source)
    return now >= t->retry_at_ns || sl_stop_requested() ||
           atomic_load_explicit(&t->source_woken, memory_order_acquire) ||
           atomic_load_explicit(&t->job->ckpt_trigger, memory_order_relaxed) > t->ckpt_done;
  for (uint32_t i = 0; i < t->input_count; i++)
    if (!t->inputs[i].ended && !t->inputs[i].barrier && sl_channel_has_input(t->inputs[i].channel))
      return 1;
  return 0;
}
