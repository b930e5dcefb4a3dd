/*
 * host_api.c - the function table plugins call through (sl_host_api_t).
 * Every function receives the sl_ctx_t the host gave the plugin, which is
 * the operator instance itself (its first member is the table pointer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_state.h"
#include "host_time.h"
#include "job.h"
#include "json_scan.h"
#include "json_valid.h"
#include "log.h"
#include "registry.h"
#include "util.h"
#include "watermark.h"

#define INST(ctx) ((sl_op_instance_t *)(void *)(ctx))

static int host_emit(sl_ctx_t *ctx, int port, const sl_record_t *rec) {
  sl_op_instance_t *inst = INST(ctx);
  if (port < 0 || (uint32_t)port >= inst->port_count) {
    sl_job_fail(inst->job,
                "node '%s' (operator '%s' of plugin %s): emitted to unknown port %d (valid ports: "
                "0..%u; get named ones with sl_port())",
                inst->node->name, inst->op->name, inst->plugin ? inst->plugin->path : "?", port,
                inst->port_count - 1);
    return SL_ENOPORT;
  }
  if (!rec) return SL_EINVAL;
  if ((rec->key_len && !rec->key) || (rec->value_len && !rec->value) ||
      (rec->header_count && !rec->headers)) {
    sl_job_fail(inst->job,
                "node '%s' (operator '%s' of plugin %s): emitted a record with a NULL pointer and "
                "a non-zero length",
                inst->node->name, inst->op->name, inst->plugin ? inst->plugin->path : "?");
    return SL_ERECORD;
  }
  for (uint32_t i = 0; i < rec->header_count; i++)
    if ((rec->headers[i].name_len && !rec->headers[i].name) ||
        (rec->headers[i].value_len && !rec->headers[i].value)) {
      sl_job_fail(inst->job,
                  "node '%s' (operator '%s'): emitted a header with a NULL pointer and a non-zero "
                  "length",
                  inst->node->name, inst->op->name);
      return SL_ERECORD;
    }
  /* After a failure nothing more flows: "fail" means stop, not "finish the
   * batch". The caller (a source's poll loop, say) sees the error. */
  if (sl_job_failed(inst->job)) return SL_ESTATE;
  sl_record_t stamped;
  if (inst->wm_gen && port != inst->errors_port) {
    /* A source with `event_time`: the record's timestamp, per the DAG. */
    char why[256];
    int64_t ts;
    if (sl_wm_gen_stamp(inst->wm_gen, rec, &ts, why, sizeof(why)) != 0) {
      sl_instance_record_failed(inst, rec, why); /* the node's on_error decides */
      return 0;
    }
    stamped = *rec;
    stamped.ts = ts;
    rec = &stamped;
  }
  atomic_store_explicit(&inst->stats.records_out,
                        atomic_load_explicit(&inst->stats.records_out, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  return sl_instance_emit(inst, port, rec);
}

static int host_record_failed(sl_ctx_t *ctx, const sl_record_t *rec, const char *why) {
  sl_op_instance_t *inst = INST(ctx);
  if (!rec) return SL_EINVAL;
  if (sl_job_failed(inst->job)) return SL_ESTATE;
  sl_instance_record_failed(inst, rec, why && *why ? why : "failed");
  return sl_job_failed(inst->job) ? SL_ESTATE : 0;
}

static int host_port(sl_ctx_t *ctx, const char *name) {
  sl_op_instance_t *inst = INST(ctx);
  if (!name || !*name) return SL_PORT_DEFAULT;
  for (uint32_t i = 1; i < inst->port_count; i++)
    if (strcmp(inst->ports[i].name, name) == 0) return (int)i;
  return SL_ENOPORT;
}

static uint32_t host_budget(sl_ctx_t *ctx) {
  uint32_t b = INST(ctx)->job->dag->settings.batch_size;
  return b ? b : 1;
}

static void where_of(sl_op_instance_t *inst, char *buf, size_t len) {
  snprintf(buf, len, "node %s[%u]", inst->node->name, inst->subtask);
}

static void host_logv(sl_ctx_t *ctx, sl_log_level_t level, const char *fmt, va_list ap) {
  if ((int)level < SL_LOG_ERROR) level = SL_LOG_ERROR; /* a plugin's bad level, not a crash */
  if ((int)level > SL_LOG_DEBUG) level = SL_LOG_DEBUG;
  if (!sl_log_enabled(level)) return;
  char where[160];
  where_of(INST(ctx), where, sizeof(where));
  sl_log_msgv(level, where, fmt, ap);
}

static void host_set_error(sl_ctx_t *ctx, const char *fmt, va_list ap) {
  sl_op_instance_t *inst = INST(ctx);
  vsnprintf(inst->error, sizeof(inst->error), fmt, ap);
  inst->error_set = true;
}

static void host_failv(sl_ctx_t *ctx, const char *fmt, va_list ap) {
  sl_op_instance_t *inst = INST(ctx);
  char msg[1024];
  vsnprintf(msg, sizeof(msg), fmt ? fmt : "failed", ap);
  sl_job_fail(inst->job, "node '%s' (operator '%s' of plugin %s), task %u: %s", inst->node->name,
              inst->op->name, inst->plugin ? inst->plugin->path : "?", inst->subtask, msg);
}

/* The task's input stays closed while any of its operators has paused it
 * (task.c checks input_pauses before taking input; in a task headed by a
 * source, before polling it or starting a checkpoint). */
static int host_input_pause(sl_ctx_t *ctx) {
  sl_op_instance_t *inst = INST(ctx);
  if (!inst->task || (inst == inst->task->ops[0] && inst->task->is_source)) return SL_ESTATE;
  if (!atomic_exchange(&inst->input_paused, true)) atomic_fetch_add(&inst->task->input_pauses, 1);
  return 0;
}

/* Any thread: reopen, then wake the worker, which may be parked. */
static void host_input_resume(sl_ctx_t *ctx) {
  sl_op_instance_t *inst = INST(ctx);
  if (!inst->task || !atomic_exchange(&inst->input_paused, false)) return;
  atomic_fetch_sub(&inst->task->input_pauses, 1);
  if (inst->task->worker) sl_worker_notify(inst->task->worker);
}

/* Any thread: the source task's next readiness check polls it. */
static void host_source_wake(sl_ctx_t *ctx) {
  sl_task_t *t = INST(ctx)->task;
  if (!t || !t->is_source) return;
  atomic_store_explicit(&t->source_woken, true, memory_order_release);
  if (t->worker) sl_worker_notify(t->worker);
}

/* A counter or gauge by name (one namespace: the first use decides which). */
static sl_counter_t *named_figure(sl_ctx_t *ctx, const char *name, bool gauge) {
  sl_op_instance_t *inst = INST(ctx);
  if (!name) name = "";
  for (uint32_t i = 0; i < inst->counter_count; i++)
    if (strcmp(inst->counters[i]->name, name) == 0) return &inst->counters[i]->counter;
  if (inst->counter_count >= SL_MAX_COUNTERS) {
    /* Counters are for a handful of figures, not per-key data: past the
     * limit, new names share one uncounted sink (said once). */
    if (!inst->warned_counters) {
      inst->warned_counters = true;
      char where[160];
      snprintf(where, sizeof(where), "node %s[%u]", inst->node->name, inst->subtask);
      sl_log_msg(SL_LOG_WARN, where,
                 "more than %d counters: '%s' and later new names are not recorded",
                 SL_MAX_COUNTERS, name);
    }
    return &inst->overflow_counter;
  }
  sl_named_counter_t *c = sl_xcalloc(1, sizeof(*c));
  c->name = sl_xstrdup(name);
  c->is_gauge = gauge;
  inst->counters = sl_xrealloc(inst->counters, (inst->counter_count + 1) * sizeof(*inst->counters));
  inst->counters[inst->counter_count++] = c;
  return &c->counter;
}

static sl_counter_t *host_counter(sl_ctx_t *ctx, const char *name) {
  return named_figure(ctx, name, false);
}

static sl_counter_t *host_gauge(sl_ctx_t *ctx, const char *name) {
  return named_figure(ctx, name, true);
}

static const sl_config_value_t *config_of(sl_ctx_t *ctx, const char *key) {
  return key ? sl_dag_node_config(INST(ctx)->node, key) : NULL;
}

static const char *host_config_string(sl_ctx_t *ctx, const char *key) {
  const sl_config_value_t *v = config_of(ctx, key);
  return v ? v->text : NULL;
}
static int64_t host_config_int(sl_ctx_t *ctx, const char *key) {
  const sl_config_value_t *v = config_of(ctx, key);
  if (!v) return 0;
  return v->type == SL_CONFIG_DOUBLE ? (int64_t)v->d : v->i;
}
static double host_config_double(sl_ctx_t *ctx, const char *key) {
  const sl_config_value_t *v = config_of(ctx, key);
  if (!v) return 0;
  return v->type == SL_CONFIG_DOUBLE ? v->d : (double)v->i;
}
static int host_config_bool(sl_ctx_t *ctx, const char *key) {
  const sl_config_value_t *v = config_of(ctx, key);
  return v ? v->i != 0 : 0;
}
static int64_t host_config_duration_ms(sl_ctx_t *ctx, const char *key) {
  const sl_config_value_t *v = config_of(ctx, key);
  return v ? v->i : 0;
}

static const char *host_node_name(sl_ctx_t *ctx) { return INST(ctx)->node->name; }
static uint32_t host_task_index(sl_ctx_t *ctx) { return INST(ctx)->subtask; }
static uint32_t host_parallelism(sl_ctx_t *ctx) { return INST(ctx)->parallelism; }
static int host_stopping(sl_ctx_t *ctx) { return sl_stop_requested() || sl_job_failed(INST(ctx)->job); }
static int64_t host_now_ms(sl_ctx_t *ctx) { return sl_wall_ms(); }

static const char *host_operator_arg(sl_ctx_t *ctx) { return INST(ctx)->node->use_arg; }
static const char *host_dag_dir(sl_ctx_t *ctx) { return INST(ctx)->job->dag->dir; }
static size_t host_config_count(sl_ctx_t *ctx) { return INST(ctx)->node->config_count; }
static int host_config_at(sl_ctx_t *ctx, size_t i, sl_config_entry_t *out) {
  const sl_dag_node_t *n = INST(ctx)->node;
  if (i >= n->config_count || !out) return SL_EINVAL;
  const sl_config_value_t *v = &n->config[i];
  int declared = 0;
  for (size_t k = 0; k < n->op->config_count; k++)
    if (strcmp(n->op->config[k].name, v->key) == 0) declared = 1;
  *out = (sl_config_entry_t){v->key, v->text, v->type, v->i, v->d, declared};
  return 0;
}

static const sl_aggregate_t *host_aggregate_find(sl_ctx_t *ctx, const char *ref, const char **arg,
                                                 char *errbuf, size_t errlen) {
  sl_op_instance_t *inst = INST(ctx);
  if (arg) *arg = NULL;
  if (!errbuf || !errlen) return NULL;
  if (!inst->in_open) {
    snprintf(errbuf, errlen, "sl_aggregate_find is callable from open() only");
    return NULL;
  }
  if (!inst->job->reg) {
    snprintf(errbuf, errlen, "no plugin registry in this process: aggregate functions unavailable");
    return NULL;
  }
  char *a = NULL;
  const sl_aggregate_t *agg = sl_registry_resolve_aggregate(inst->job->reg, ref, inst->job->dag->dir,
                                                            NULL, &a, errbuf, errlen);
  if (agg && a) {
    inst->agg_args = sl_xrealloc(inst->agg_args, (inst->agg_arg_count + 1) * sizeof(char *));
    inst->agg_args[inst->agg_arg_count++] = a;
    if (arg) *arg = a;
  } else {
    free(a);
  }
  return agg;
}

const sl_host_api_t sl_host_api = {
    .abi_major = SL_ABI_MAJOR,
    .abi_minor = SL_ABI_MINOR,
    .struct_size = sizeof(sl_host_api_t),
    .emit = host_emit,
    .port = host_port,
    .budget = host_budget,
    .logv = host_logv,
    .set_error = host_set_error,
    .counter = host_counter,
    .config_string = host_config_string,
    .config_int = host_config_int,
    .config_double = host_config_double,
    .config_bool = host_config_bool,
    .config_duration_ms = host_config_duration_ms,
    .node_name = host_node_name,
    .task_index = host_task_index,
    .parallelism = host_parallelism,
    .stopping = host_stopping,
    .now_ms = host_now_ms,
    .json_get = sl_json_scan_get,
    .strerror = sl_error_text,
    .failv = host_failv,
    .operator_arg = host_operator_arg,
    .dag_dir = host_dag_dir,
    .config_count = host_config_count,
    .config_at = host_config_at,
    .state_declare = sl_host_state_declare,
    .state_get = sl_host_state_get,
    .state_put = sl_host_state_put,
    .state_clear = sl_host_state_clear,
    .state_list_append = sl_host_state_list_append,
    .state_list_count = sl_host_state_list_count,
    .state_list_get = sl_host_state_list_get,
    .state_list_trim_front = sl_host_state_list_trim_front,
    .state_map_get = sl_host_state_map_get,
    .state_map_put = sl_host_state_map_put,
    .state_map_remove = sl_host_state_map_remove,
    .state_map_next = sl_host_state_map_next,
    .op_state_put = sl_host_op_state_put,
    .op_state_get = sl_host_op_state_get,
    .checkpoint_restored = sl_host_checkpoint_restored,
    .checkpoint_interval_ms = sl_host_checkpoint_interval_ms,
    .checkpoint_sync_fd = sl_host_checkpoint_sync_fd,
    .checkpoint_await = sl_host_checkpoint_await,
    .checkpoint_commit_point = sl_host_checkpoint_commit_point,
    .input_pause = host_input_pause,
    .input_resume = host_input_resume,
    .source_wake = host_source_wake,
    .gauge = host_gauge,
    .source_partition_release = sl_host_source_partition_release,
    .json_validate = sl_json_check,
    .record_failed = host_record_failed,
    .timer_set = sl_host_timer_set,
    .timer_delete = sl_host_timer_delete,
    .watermark = sl_host_watermark,
    .current_key = sl_host_current_key,
    .source_partition = sl_host_source_partition,
    .aggregate_find = host_aggregate_find,
};
