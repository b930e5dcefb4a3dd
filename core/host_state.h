/*
 * host_state.h - the state and checkpoint entries of the host function
 * table (host_state.c), kept apart from host_api.c's record and config ones.
 */
#ifndef SL_HOST_STATE_H
#define SL_HOST_STATE_H

#include "sluice.h"

struct sl_op_instance;
struct sl_keyed_state;

/* Keyed states whose names start with this belong to the host (timers). */
#define SL_HOST_STATE_PREFIX "sluice."

/** The instance's keyed state with the current key set (the record's or the
 * firing timer's), or NULL without keyed state or current key. */
struct sl_keyed_state *sl_instance_current_ks(struct sl_op_instance *inst);

sl_state_t *sl_host_state_declare(sl_ctx_t *ctx, const char *name, sl_state_kind_t kind,
                                  int64_t ttl_ms);
int sl_host_state_get(sl_ctx_t *ctx, sl_state_t *st, sl_bytes_t *out);
int sl_host_state_put(sl_ctx_t *ctx, sl_state_t *st, const void *v, size_t len);
int sl_host_state_clear(sl_ctx_t *ctx, sl_state_t *st);
int sl_host_state_list_append(sl_ctx_t *ctx, sl_state_t *st, const void *v, size_t len);
int sl_host_state_list_count(sl_ctx_t *ctx, sl_state_t *st, size_t *out);
int sl_host_state_list_get(sl_ctx_t *ctx, sl_state_t *st, size_t i, sl_bytes_t *out);
int sl_host_state_list_trim_front(sl_ctx_t *ctx, sl_state_t *st, size_t n);
int sl_host_state_map_get(sl_ctx_t *ctx, sl_state_t *st, const void *mk, size_t mklen,
                          sl_bytes_t *out);
int sl_host_state_map_put(sl_ctx_t *ctx, sl_state_t *st, const void *mk, size_t mklen,
                          const void *v, size_t len);
int sl_host_state_map_remove(sl_ctx_t *ctx, sl_state_t *st, const void *mk, size_t mklen);
int sl_host_state_map_next(sl_ctx_t *ctx, sl_state_t *st, size_t *cursor, sl_bytes_t *mk,
                           sl_bytes_t *v);
int sl_host_op_state_put(sl_ctx_t *ctx, const char *name, const void *v, size_t len);
int sl_host_op_state_get(sl_ctx_t *ctx, const char *name, sl_bytes_t *out);
uint64_t sl_host_checkpoint_restored(sl_ctx_t *ctx);
int64_t sl_host_checkpoint_interval_ms(sl_ctx_t *ctx);
int sl_host_checkpoint_sync_fd(sl_ctx_t *ctx, int fd);
int sl_host_checkpoint_await(sl_ctx_t *ctx, int (*fn)(void *, char *, size_t), void *arg);
int sl_host_checkpoint_commit_point(sl_ctx_t *ctx, sl_commit_point_fn fn, void *arg);

#endif
