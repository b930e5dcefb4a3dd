/*
 * SDK 1.1 test plugin: an operator selected by `use: echo:FILE` (scheme),
 * accepting free config keys. Its source emits, once: the operator argument,
 * whether the DAG dir is an existing prefix of it, then one line per config
 * entry: "key=text type declared".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

static int echo_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  *state = calloc(1, sizeof(int));
  return *state ? 0 : SL_ENOMEM;
}

static void emit_line(sl_ctx_t *ctx, const char *text) {
  sl_record_t r = {.value = text, .value_len = strlen(text)};
  sl_emit(ctx, &r);
}

static int echo_poll(sl_ctx_t *ctx, void *state) {
  int *done = state;
  if (*done) return SL_DONE;
  *done = 1;
  char line[512];
  const char *arg = sl_operator_arg(ctx), *dir = sl_dag_dir(ctx);
  snprintf(line, sizeof(line), "arg=%s", arg ? arg : "(null)");
  emit_line(ctx, line);
  snprintf(line, sizeof(line), "arg_under_dag_dir=%d",
           arg && dir && strncmp(arg, dir, strlen(dir)) == 0);
  emit_line(ctx, line);
  static const char *const types[] = {"?", "string", "int", "double", "bool", "duration"};
  for (size_t i = 0; i < sl_config_count(ctx); i++) {
    sl_config_entry_t e;
    if (sl_config_at(ctx, i, &e) != 0) return SL_EINVAL;
    snprintf(line, sizeof(line), "%s=%s %s %d i=%lld", e.key, e.text, types[e.type], e.declared,
             (long long)e.i);
    emit_line(ctx, line);
  }
  sl_config_entry_t e;
  snprintf(line, sizeof(line), "out_of_range=%d", sl_config_at(ctx, 999, &e));
  emit_line(ctx, line);
  return SL_DONE;
}

static void echo_close(void *state) { free(state); }

static const sl_config_key_t echo_config[] = {
    {"limit", SL_CONFIG_DURATION, "1s", "a declared key among free ones"}};

static const sl_operator_t echo_op = {
    SL_OPERATOR_INIT,
    .name = "echo_config",
    .version = "1.0.0",
    .description = "emits its argument and config entries",
    .kind = SL_KIND_SOURCE,
    .config = echo_config,
    .config_count = 1,
    .open = echo_open,
    .poll = echo_poll,
    .close = echo_close,
    .scheme = "echo",
    .flags = SL_OP_FREE_CONFIG,
};

SL_PLUGIN_DEFINE("schemed", "1.0.0", "SDK 1.1 scheme and free config test plugin", &echo_op);
