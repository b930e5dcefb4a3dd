/* A plugin whose operator descriptor is smaller than ABI 1.0's (built with a
 * truncated struct): refused on struct size. Also a source without poll. */
#include "sluice.h"

static const sl_operator_t small_op = {.struct_size = 8, .name = "tiny", .kind = SL_KIND_SOURCE};
static const sl_operator_t *const ops[] = {&small_op};

SL_EXPORT extern const sl_plugin_t sluice_plugin;
const sl_plugin_t sluice_plugin = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin_t),
                                   sizeof(sl_operator_t), "bad_struct", "1.0.0",
                                   "operator descriptor too small", ops, 1, NULL, 0};
