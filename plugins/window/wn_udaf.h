/*
 * wn_udaf.h - user-defined aggregate functions (SDK 1.4, sl_aggregate_t:
 * a C plugin's, or a Lua script's through the Lua host) as window
 * aggregates.
 *
 * A function with a fixed-size accumulator (acc_size > 0) is an ordinary
 * FIXED aggregate (wn_udaf_fixed_ops): its bytes live in the pane next to
 * count's and sum's. One with a variable accumulator (acc_size == 0) is a
 * WN_STORE_VAR aggregate: window.c keeps its bytes in map state and calls
 * the wn_udaf_var_* functions; its result goes through wn_udaf_var_ops with
 * the merged accumulator as the single entry (empty key; its length as a
 * uint64, then its bytes) of a wn_tab_t.
 *
 * Errors: an add that refuses a record returns a negative code (the
 * function called sl_set_error; the record fails under the node's
 * on_error). A failing create, merge or result has called sl_fail: the job
 * is failing, wn_udaf_failed() tells the window to stop.
 */
#ifndef WN_UDAF_H
#define WN_UDAF_H

#include <stddef.h>

#include "sluice.h"
#include "wn_agg.h"

typedef struct wn_udaf {
  char *name;                 /* as used in `aggregate:` */
  const sl_aggregate_t *desc;
  void *inst;                 /* from desc->open, or NULL */
  int opened;                 /* desc->open succeeded: call desc->close */
  sl_ctx_t *ctx;              /* the window task's context */
  int failed;                 /* a create, merge or result failed */
  char *json;                 /* result scratch */
  size_t json_cap;
  sl_agg_arg_t args[WN_ARGS_MAX];
} wn_udaf_t;

/**
 * Finds and opens the function `name` for the parser (wn_parse_aggs):
 * returns it (the parser owns it then), or NULL with a message in err that
 * names the function.
 */
typedef wn_udaf_t *(*wn_udaf_resolve_fn)(void *ud, const char *name, char *err, size_t errlen);

/** A new, unopened function (desc and ctx set); NULL when out of memory. */
wn_udaf_t *wn_udaf_new(const char *name, const sl_aggregate_t *desc, sl_ctx_t *ctx);
/** Close (desc->close) and free. */
void wn_udaf_free(wn_udaf_t *u);
const char *wn_udaf_name(const wn_udaf_t *u);
/** Has a create, merge or result of any function of the list failed? */
int wn_udaf_failed(const wn_aggs_t *a);

extern const wn_agg_ops_t wn_udaf_fixed_ops;
extern const wn_agg_ops_t wn_udaf_var_ops;

/* WN_STORE_VAR: the new accumulator goes to *out (the function's bytes,
 * valid until its next call). Negative on failure. */
int wn_udaf_var_create(const wn_agg_t *a, sl_acc_t *out);
/** Add the record (vals) to cur (NULL: a new accumulator). 1 changed, 0 not, negative = refused. */
int wn_udaf_var_add(const wn_agg_t *a, const void *cur, size_t len, const wn_val_t *vals,
                    sl_acc_t *out);
/** dst + src into *out. */
int wn_udaf_var_merge(const wn_agg_t *a, const void *dst, size_t dst_len, const void *src,
                      size_t src_len, sl_acc_t *out);

#endif
