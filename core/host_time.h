/*
 * host_time.h - event time and timers for plugins (the 1.3 part of the host
 * function table) and what the task loop needs of them (task.c).
 */
#ifndef SL_HOST_TIME_H
#define SL_HOST_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"

int sl_host_timer_set(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts);
int sl_host_timer_delete(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts);
int64_t sl_host_watermark(sl_ctx_t *ctx);
int sl_host_current_key(sl_ctx_t *ctx, sl_bytes_t *out);
int sl_host_source_partition(sl_ctx_t *ctx, uint32_t partition);
int sl_host_source_partition_release(sl_ctx_t *ctx, uint32_t partition);

/**
 * Job start, after a restore and before open(): rebuild the instance's timer
 * queue from its keyed state (where every timer is also written). 0, or -1
 * with a message.
 */
int sl_instance_timers_restore(sl_op_instance_t *inst, char *err, size_t errlen);

/**
 * Task thread: fire the instance's due timers of `domain` (ts <= limit), at
 * most `max` of them, in timestamp order, each with its key current.
 * Returns how many fired (a failing on_timer fails the job).
 */
uint32_t sl_instance_fire_timers(sl_op_instance_t *inst, sl_time_domain_t domain, int64_t limit,
                                 uint32_t max);

/** End of input: forget pending processing-time timers (memory and state). */
void sl_instance_drop_processing_timers(sl_op_instance_t *inst);

/** Earliest processing-time timer over the task's operators, SL_TS_MAX = none. */
int64_t sl_task_next_processing_timer(const sl_task_t *t);

#endif
