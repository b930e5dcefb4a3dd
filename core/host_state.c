/*
 * host_state.c - keyed state, operator state and checkpoint queries for
 * plugins (the 1.2 part of the host function table).
 *
 * The current key is the key of the record being processed: the first state
 * call for a record sets it in the instance's keyed state (key group
 * computed once), later calls for the same record reuse it. Keyed state
 * needs per-record calls, so declaring one turns process_batch off for the
 * instance (process() is then required).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "host_state.h"
#include "log.h"

#define INST(ctx) ((sl_op_instance_t *)(void *)(ctx))

static void declare_failed(sl_op_instance_t *inst, const char *name, const char *why) {
  char where[160];
  snprintf(where, sizeof(where), "node %s[%u]", inst->node->name, inst->subtask);
  sl_log_msg(SL_LOG_ERROR, where, "sl_state_declare('%s'): %s", name ? name : "(null)", why);
}

sl_state_t *sl_host_state_declare(sl_ctx_t *ctx, const char *name, sl_state_kind_t kind,
                                  int64_t ttl_ms) {
  sl_op_instance_t *inst = INST(ctx);
  if (!inst->in_open) {
    declare_failed(inst, name, "declare keyed state in open() only");
    return NULL;
  }
  if (!inst->node->key_by) {
    declare_failed(inst, name,
                   "keyed state needs a keyed input: give the node `key_by:` (a JSON field, or "
                   "$key for the record key)");
    return NULL;
  }
  if (!inst->op->process) {
    declare_failed(inst, name, "keyed state needs process(): state calls are per record");
    return NULL;
  }
  if (name && strncmp(name, SL_HOST_STATE_PREFIX, strlen(SL_HOST_STATE_PREFIX)) == 0) {
    declare_failed(inst, name, "names starting with '" SL_HOST_STATE_PREFIX "' belong to the host");
    return NULL;
  }
  if (!name || !*name || (kind != SL_STATE_VALUE && kind != SL_STATE_LIST && kind != SL_STATE_MAP) ||
      ttl_ms < 0) {
    declare_failed(inst, name, "needs a non-empty name, a kind (value, list, map) and a TTL >= 0");
    return NULL;
  }
  char err[256] = "";
  sl_state_t *st = sl_keyed_state_declare(sl_instance_keyed_state(inst), name, kind, ttl_ms, err,
                                          sizeof(err));
  if (!st) {
    declare_failed(inst, name, err[0] ? err : "refused");
    return NULL;
  }
  inst->process_batch = NULL; /* per record from now on: each call has one key */
  if (ttl_ms > 0) inst->ks_ttl = true;
  return st;
}

/* The keyed state with the current record's key set, or NULL outside process(). */
sl_keyed_state_t *sl_instance_current_ks(sl_op_instance_t *inst) {
  if (!inst->ks || !inst->current) return NULL;
  if (inst->ks_rec != inst->current) {
    const sl_record_t *r = inst->current;
    sl_keyed_state_set_key(inst->ks, r->key, r->key_len);
    if (inst->ks_ttl) sl_keyed_state_set_now(inst->ks, sl_wall_ms());
    inst->ks_rec = r;
  }
  return inst->ks;
}

#define WITH_KS(ctx, st)                                  \
  sl_keyed_state_t *ks = sl_instance_current_ks(INST(ctx));              \
  if (!ks) return SL_ESTATE;                              \
  if (!(st)) return SL_EINVAL

int sl_host_state_get(sl_ctx_t *ctx, sl_state_t *st, sl_bytes_t *out) {
  WITH_KS(ctx, st);
  return sl_ks_get(ks, st, out);
}
int sl_host_state_put(sl_ctx_t *ctx, sl_state_t *st, const void *v, size_t len) {
  WITH_KS(ctx, st);
  if (len && !v) return SL_EINVAL;
  return sl_ks_put(ks, st, v, len);
}
int sl_host_state_clear(sl_ctx_t *ctx, sl_state_t *st) {
  WITH_KS(ctx, st);
  return sl_ks_clear(ks, st);
}
int sl_host_state_list_append(sl_ctx_t *ctx, sl_state_t *st, const void *v, size_t len) {
  WITH_KS(ctx, st);
  if (len && !v) return SL_EINVAL;
  return sl_ks_list_append(ks, st, v, len);
}
int sl_host_state_list_count(sl_ctx_t *ctx, sl_state_t *st, size_t *out) {
  WITH_KS(ctx, st);
  if (!out) return SL_EINVAL;
  return sl_ks_list_count(ks, st, out);
}
int sl_host_state_list_get(sl_ctx_t *ctx, sl_state_t *st, size_t i, sl_bytes_t *out) {
  WITH_KS(ctx, st);
  if (!out) return SL_EINVAL;
  return sl_ks_list_get(ks, st, i, out);
}
int sl_host_state_list_trim_front(sl_ctx_t *ctx, sl_state_t *st, size_t n) {
  WITH_KS(ctx, st);
  return sl_ks_list_trim_front(ks, st, n);
}
int sl_host_state_map_get(sl_ctx_t *ctx, sl_state_t *st, const void *mk, size_t mklen,
                          sl_bytes_t *out) {
  WITH_KS(ctx, st);
  if ((mklen && !mk) || !out) return SL_EINVAL;
  return sl_ks_map_get(ks, st, mk, mklen, out);
}
int sl_host_state_map_put(sl_ctx_t *ctx, sl_state_t *st, const void *mk, size_t mklen,
                          const void *v, size_t len) {
  WITH_KS(ctx, st);
  if ((mklen && !mk) || (len && !v)) return SL_EINVAL;
  return sl_ks_map_put(ks, st, mk, mklen, v, len);
}
int sl_host_state_map_remove(sl_ctx_t *ctx, sl_state_t *st, const void *mk, size_t mklen) {
  WITH_KS(ctx, st);
  if (mklen && !mk) return SL_EINVAL;
  return sl_ks_map_remove(ks, st, mk, mklen);
}
int sl_host_state_map_next(sl_ctx_t *ctx, sl_state_t *st, size_t *cursor, sl_bytes_t *mk,
                           sl_bytes_t *v) {
  WITH_KS(ctx, st);
  if (!cursor || !mk || !v) return SL_EINVAL;
  return sl_ks_map_next(ks, st, cursor, mk, v);
}

int sl_host_op_state_put(sl_ctx_t *ctx, const char *name, const void *v, size_t len) {
  sl_op_instance_t *inst = INST(ctx);
  if (!inst->op_state) inst->op_state = sl_op_state_new();
  return sl_op_state_set(inst->op_state, name, v, len);
}

int sl_host_op_state_get(sl_ctx_t *ctx, const char *name, sl_bytes_t *out) {
  if (!out) return SL_EINVAL;
  return sl_op_state_find(INST(ctx)->op_state, name, out);
}

uint64_t sl_host_checkpoint_restored(sl_ctx_t *ctx) { return INST(ctx)->job->restored_id; }

int64_t sl_host_checkpoint_interval_ms(sl_ctx_t *ctx) {
  const sl_dag_settings_t *s = &INST(ctx)->job->dag->settings;
  return s->checkpoint_dir ? s->checkpoint_interval_ms : 0;
}

int sl_host_checkpoint_await(sl_ctx_t *ctx, int (*fn)(void *, char *, size_t), void *arg) {
  sl_op_instance_t *inst = INST(ctx);
  if (!fn) return SL_EINVAL;
  if (!inst->in_snapshot) return SL_ESTATE;
  inst->awaits = sl_xrealloc(inst->awaits, (inst->await_count + 1) * sizeof(*inst->awaits));
  inst->awaits[inst->await_count++] = (sl_ckpt_await_t){fn, arg};
  return 0;
}

int sl_host_checkpoint_commit_point(sl_ctx_t *ctx, sl_commit_point_fn fn, void *arg) {
  sl_op_instance_t *inst = INST(ctx);
  if (!fn) return SL_EINVAL;
  if (!inst->in_snapshot) return SL_ESTATE;
  inst->commit_points = sl_xrealloc(inst->commit_points,
                                    (inst->commit_point_count + 1) * sizeof(*inst->commit_points));
  inst->commit_points[inst->commit_point_count++] = (sl_ckpt_commit_point_t){fn, arg};
  return 0;
}

int sl_host_checkpoint_sync_fd(sl_ctx_t *ctx, int fd) {
  sl_op_instance_t *inst = INST(ctx);
  if (fd < 0) return SL_EINVAL;
  if (!inst->in_snapshot) {
    close(fd);
    return SL_ESTATE;
  }
  inst->sync_fds = sl_xrealloc(inst->sync_fds, (inst->sync_fd_count + 1) * sizeof(int));
  inst->sync_fds[inst->sync_fd_count++] = fd;
  return 0;
}
