/* A plugin that needs a newer host minor version than this host provides. */
#include <stdlib.h>

#include "sluice.h"

static int poison_poll(sl_ctx_t *ctx, void *state) { abort(); }

static const sl_operator_t op = {
    SL_OPERATOR_INIT, .name = "src", .kind = SL_KIND_SOURCE, .poll = poison_poll};
static const sl_operator_t *const ops[] = {&op};

SL_EXPORT extern const sl_plugin_t sluice_plugin;
const sl_plugin_t sluice_plugin = {SL_ABI_MAJOR, SL_ABI_MINOR + 7, sizeof(sl_plugin_t),
                                   sizeof(sl_operator_t), "future_minor", "1.0.0",
                                   "needs a newer host", ops, 1, NULL, 0};
