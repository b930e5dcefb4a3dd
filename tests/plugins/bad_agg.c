/* A plugin whose aggregate function has no merge callback: refused when
 * loaded, with a message naming the function. */
#include "sluice.h"

static int create(sl_ctx_t *ctx, void *inst, sl_acc_t *acc) { return 0; }
static int add(sl_ctx_t *ctx, void *inst, sl_acc_t *acc, const sl_agg_arg_t *a, size_t n) {
  return 0;
}
static long result(sl_ctx_t *ctx, void *inst, const void *acc, size_t len, char *json, size_t cap) {
  return 1;
}
static const sl_aggregate_t nomerge = {SL_AGGREGATE_INIT, .name = "nomerge", .acc_size = 8,
                                       .create = create, .add = add, .result = result};
static const sl_aggregate_t *const aggs[] = {&nomerge};
SL_PLUGIN_DEFINE_FULL("bad_agg", "1.0.0", "an aggregate without merge", NULL, 0, aggs, 1);
