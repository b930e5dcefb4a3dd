/*
 * host_time.c - timers, watermarks and the current key for plugins, and
 * the firing of timers for the task loop.
 *
 * A timer lives twice: in the instance's in-memory queue (timers.c), which
 * orders and deduplicates, and as an entry of the host's keyed map state
 * "sluice.timers" under the timer's key (map key: domain byte + timestamp),
 * which is what checkpoints save and rescaling redistributes by key group.
 * A restore rebuilds the queue from that state. Setting an existing timer
 * touches the queue only, so a window operator that sets the same timer for
 * every record of a window pays one hash lookup per record.
 */
#include "host_time.h"

#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "host_state.h"
#include "job.h"
#include "state.h"
#include "timers.h"
#include "watermark.h"

#define INST(ctx) ((sl_op_instance_t *)(void *)(ctx))
#define TIMER_STATE SL_HOST_STATE_PREFIX "timers"
#define TIMER_MKEY 9 /* domain (1 byte) + timestamp (8 bytes, big-endian, sign flipped) */

static void timer_mkey(unsigned char mk[TIMER_MKEY], sl_time_domain_t d, int64_t ts) {
  uint64_t u = (uint64_t)ts ^ (UINT64_C(1) << 63); /* sorts like the signed value */
  mk[0] = (unsigned char)d;
  for (int i = 0; i < 8; i++) mk[1 + i] = (unsigned char)(u >> (56 - 8 * i));
}

static int timer_from_mkey(const unsigned char *mk, size_t len, sl_time_domain_t *d, int64_t *ts) {
  if (len != TIMER_MKEY || (mk[0] != SL_TIME_EVENT && mk[0] != SL_TIME_PROCESSING)) return -1;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = (u << 8) | mk[1 + i];
  *d = (sl_time_domain_t)mk[0];
  *ts = (int64_t)(u ^ (UINT64_C(1) << 63));
  return 0;
}

/* The internal state holding the timers, declared on first use. */
static sl_state_t *timer_state(sl_op_instance_t *inst) {
  if (inst->timer_state) return inst->timer_state;
  sl_keyed_state_t *ks = sl_instance_keyed_state(inst);
  if (!ks) return NULL;
  char err[256];
  inst->timer_state = sl_keyed_state_declare(ks, TIMER_STATE, SL_STATE_MAP, 0, err, sizeof(err));
  if (!inst->timer_state)
    sl_job_fail(inst->job, "node '%s', task %u: cannot keep timers in keyed state: %s",
                inst->node->name, inst->subtask, err);
  return inst->timer_state;
}

/* Checks shared by set and delete: SL_OK, or the code to return. */
static int timer_call_ok(sl_op_instance_t *inst, sl_time_domain_t domain) {
  if (domain != SL_TIME_EVENT && domain != SL_TIME_PROCESSING) return SL_EINVAL;
  if (!inst->node->key_by || !inst->current) return SL_ESTATE;
  if (!SL_OPERATOR_HAS(inst->op, on_timer) || !inst->op->on_timer) return SL_ESTATE;
  return SL_OK;
}

int sl_host_timer_set(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts) {
  sl_op_instance_t *inst = INST(ctx);
  int rc = timer_call_ok(inst, domain);
  if (rc != SL_OK) return rc;
  if (!inst->timers) inst->timers = sl_timers_new();
  const sl_record_t *r = inst->current;
  if (sl_timers_add(inst->timers, domain, ts, r->key, r->key_len) == 0) return 0; /* known */
  sl_state_t *st = timer_state(inst);
  sl_keyed_state_t *ks = st ? sl_instance_current_ks(inst) : NULL;
  if (!ks) {
    sl_timers_remove(inst->timers, domain, ts, r->key, r->key_len);
    return SL_ESTATE;
  }
  unsigned char mk[TIMER_MKEY];
  timer_mkey(mk, domain, ts);
  rc = sl_ks_map_put(ks, st, mk, sizeof(mk), "", 0);
  if (rc != 0) {
    sl_timers_remove(inst->timers, domain, ts, r->key, r->key_len);
    return rc;
  }
  if (domain == SL_TIME_PROCESSING && ts < inst->task->proc_due_ms) inst->task->proc_due_ms = ts;
  return 0;
}

int sl_host_timer_delete(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts) {
  sl_op_instance_t *inst = INST(ctx);
  int rc = timer_call_ok(inst, domain);
  if (rc != SL_OK) return rc;
  const sl_record_t *r = inst->current;
  if (!inst->timers || sl_timers_remove(inst->timers, domain, ts, r->key, r->key_len) != 0)
    return SL_ENOTFOUND;
  sl_keyed_state_t *ks = sl_instance_current_ks(inst);
  unsigned char mk[TIMER_MKEY];
  timer_mkey(mk, domain, ts);
  if (ks && inst->timer_state) sl_ks_map_remove(ks, inst->timer_state, mk, sizeof(mk));
  return 0;
}

int64_t sl_host_watermark(sl_ctx_t *ctx) { return INST(ctx)->wm; }

int sl_host_current_key(sl_ctx_t *ctx, sl_bytes_t *out) {
  sl_op_instance_t *inst = INST(ctx);
  if (!out) return SL_EINVAL;
  if (!inst->current) return SL_ESTATE;
  out->ptr = inst->current->key;
  out->len = inst->current->key_len;
  return 0;
}

int sl_host_source_partition(sl_ctx_t *ctx, uint32_t partition) {
  sl_op_instance_t *inst = INST(ctx);
  if (!inst->task->is_source || inst != inst->task->ops[0]) return SL_ESTATE;
  if (inst->wm_gen) sl_wm_gen_set_partition(inst->wm_gen, partition);
  return 0;
}

int sl_host_source_partition_release(sl_ctx_t *ctx, uint32_t partition) {
  sl_op_instance_t *inst = INST(ctx);
  if (!inst->task->is_source || inst != inst->task->ops[0]) return SL_ESTATE;
  if (inst->wm_gen) sl_wm_gen_release(inst->wm_gen, partition);
  return 0;
}

/* ------------------------------------------------------------ restore */

struct restore_ctx {
  sl_op_instance_t *inst;
  uint64_t bad;
};

static int restore_one(void *arg, const void *key, size_t key_len, const void *mk, size_t mk_len,
                       const void *value, size_t value_len) {
  struct restore_ctx *rc = arg;
  (void)value;
  (void)value_len;
  sl_time_domain_t d;
  int64_t ts;
  if (timer_from_mkey(mk, mk_len, &d, &ts) != 0) {
    rc->bad++;
    return 0;
  }
  sl_timers_add(rc->inst->timers, d, ts, key, key_len);
  return 0;
}

int sl_instance_timers_restore(sl_op_instance_t *inst, char *err, size_t errlen) {
  if (!inst->ks || !inst->node->key_by) return 0; /* nothing was restored */
  char why[256];
  sl_state_t *st = sl_keyed_state_declare(inst->ks, TIMER_STATE, SL_STATE_MAP, 0, why, sizeof(why));
  if (!st) {
    snprintf(err, errlen, "node '%s', task %u: restoring timers: %s", inst->node->name,
             inst->subtask, why);
    return -1;
  }
  inst->timer_state = st;
  if (!inst->timers) inst->timers = sl_timers_new();
  struct restore_ctx rc = {inst, 0};
  int r = sl_ks_scan(inst->ks, st, restore_one, &rc);
  if (r < 0 || rc.bad) {
    snprintf(err, errlen, "node '%s', task %u: restoring timers: %s", inst->node->name,
             inst->subtask, r < 0 ? sl_error_text(r) : "a timer entry is malformed");
    return -1;
  }
  int64_t due = sl_timers_peek(inst->timers, SL_TIME_PROCESSING);
  if (due < inst->task->proc_due_ms) inst->task->proc_due_ms = due;
  return 0;
}

/* -------------------------------------------------------------- firing */

/* A popped timer: make its key current and remove its state entry. */
static void timer_enter(sl_op_instance_t *inst, sl_record_t *r, sl_time_domain_t domain) {
  inst->current = r;
  inst->ks_rec = NULL;
  sl_keyed_state_t *ks = sl_instance_current_ks(inst);
  if (ks && inst->timer_state) {
    unsigned char mk[TIMER_MKEY];
    timer_mkey(mk, domain, r->ts);
    sl_ks_map_remove(ks, inst->timer_state, mk, sizeof(mk));
  }
}

static void timer_leave(sl_op_instance_t *inst) {
  inst->current = NULL;
  inst->ks_rec = NULL;
}

uint32_t sl_instance_fire_timers(sl_op_instance_t *inst, sl_time_domain_t domain, int64_t limit,
                                 uint32_t max) {
  if (!inst->timers) return 0;
  uint32_t n = 0;
  int64_t ts;
  const void *key;
  size_t len;
  while (n < max && !sl_job_failed(inst->job) &&
         sl_timers_pop(inst->timers, domain, limit, &ts, &key, &len)) {
    /* The timer's key becomes the current key, as a record's would. */
    sl_record_t r = {.key = key, .key_len = len, .ts = ts, .offset = SL_OFFSET_NONE};
    timer_enter(inst, &r, domain);
    inst->error_set = false;
    int rc = inst->op->on_timer((sl_ctx_t *)inst, inst->state, domain, ts);
    timer_leave(inst);
    n++;
    if (rc < 0)
      sl_job_fail(inst->job, "node '%s' (operator '%s'), task %u: on_timer(%s, %lld) failed: %s",
                  inst->node->name, inst->op->name, inst->subtask,
                  domain == SL_TIME_EVENT ? "event time" : "processing time", (long long)ts,
                  inst->error_set ? inst->error : sl_error_text(rc));
  }
  return n;
}

void sl_instance_drop_processing_timers(sl_op_instance_t *inst) {
  int64_t ts;
  const void *key;
  size_t len;
  while (inst->timers &&
         sl_timers_pop(inst->timers, SL_TIME_PROCESSING, SL_TS_MAX, &ts, &key, &len)) {
    sl_record_t r = {.key = key, .key_len = len, .ts = ts, .offset = SL_OFFSET_NONE};
    timer_enter(inst, &r, SL_TIME_PROCESSING);
    timer_leave(inst);
  }
}

int64_t sl_task_next_processing_timer(const sl_task_t *t) {
  int64_t due = SL_TS_MAX;
  for (uint32_t o = 0; o < t->op_count; o++)
    if (t->ops[o]->timers) {
      int64_t d = sl_timers_peek(t->ops[o]->timers, SL_TIME_PROCESSING);
      if (d < due) due = d;
    }
  return due;
}
