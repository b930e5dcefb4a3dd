/*
 * validate_ops.c - a test plugin for DAG validation: operators whose config
 * maps cover every type (with a required key), a named output port, and a
 * sink. The callbacks do nothing useful: only the descriptors matter.
 */
#include <sluice.h>

static int v_poll(sl_ctx_t *ctx, void *state) { return SL_DONE; }
static int v_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) { return SL_OK; }

static const sl_config_key_t vsource_config[] = {
    {"name", SL_CONFIG_STRING, NULL, "required string"},
    {"count", SL_CONFIG_INT, "10", "an int"},
    {"ratio", SL_CONFIG_DOUBLE, "0.5", "a double"},
    {"enabled", SL_CONFIG_BOOL, "true", "a bool"},
    {"interval", SL_CONFIG_DURATION, "1s", "a duration"},
    {"label", SL_CONFIG_STRING, "none", "an optional string"},
};

static const sl_operator_t vsource = {
    SL_OPERATOR_INIT,
    .name = "vsource",
    .version = "1.0.0",
    .description = "test source",
    .kind = SL_KIND_SOURCE,
    .config = vsource_config,
    .config_count = sizeof(vsource_config) / sizeof(vsource_config[0]),
    .poll = v_poll,
};

static const sl_config_key_t vmap_config[] = {
    {"factor", SL_CONFIG_INT, "1", "an int"},
};
static const char *const vmap_outputs[] = {"side", NULL};

static const sl_operator_t vmap = {
    SL_OPERATOR_INIT,
    .name = "vmap",
    .version = "1.0.0",
    .description = "test transform with a 'side' output",
    .kind = SL_KIND_TRANSFORM,
    .config = vmap_config,
    .config_count = 1,
    .outputs = vmap_outputs,
    .process = v_process,
};

static const sl_operator_t vsink = {
    SL_OPERATOR_INIT,
    .name = "vsink",
    .version = "1.0.0",
    .description = "test sink, no config",
    .kind = SL_KIND_SINK,
    .process = v_process,
};

/* A default that does not parse as its declared type: validation must name the plugin. */
static const sl_config_key_t vbaddefault_config[] = {
    {"limit", SL_CONFIG_INT, "lots", "an int with a broken default"},
};

static const sl_operator_t vbaddefault = {
    SL_OPERATOR_INIT,
    .name = "vbaddefault",
    .version = "1.0.0",
    .description = "test transform with a bad default",
    .kind = SL_KIND_TRANSFORM,
    .config = vbaddefault_config,
    .config_count = 1,
    .process = v_process,
};

SL_PLUGIN_DEFINE("validate-ops", "1.0.0", "operators for DAG validation tests", &vsource, &vmap,
                 &vsink, &vbaddefault);
