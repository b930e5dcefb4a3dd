/* A plugin built against a future, incompatible ABI major: must be refused
 * before any of its functions runs (poison_poll would abort). */
#include <stdlib.h>

#include "sluice.h"

static int poison_poll(sl_ctx_t *ctx, void *state) { abort(); }

static const sl_operator_t op = {
    SL_OPERATOR_INIT, .name = "src", .kind = SL_KIND_SOURCE, .poll = poison_poll};
static const sl_operator_t *const ops[] = {&op};

SL_EXPORT extern const sl_plugin_t sluice_plugin;
const sl_plugin_t sluice_plugin = {99, 0, sizeof(sl_plugin_t), sizeof(sl_operator_t),
                                   "bad_abi", "1.0.0", "wrong ABI major", ops, 1, NULL, 0};
