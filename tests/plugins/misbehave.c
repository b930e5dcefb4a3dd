/*
 * Operators that fail on purpose, for the contract and error-policy tests:
 *  - open_fails: open() returns an error with a message
 *  - bad_port: emits to a port it never declared
 *  - fail_every: fails records whose "n" field is a multiple of `every`
 *    (with a message); passes the others through
 */
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

static int open_fails_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  strncpy(errbuf, "cannot reach the imaginary database at 10.0.0.1", errlen - 1);
  errbuf[errlen - 1] = '\0';
  return SL_EIO;
}
static int pass_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  return sl_emit(ctx, rec);
}
static const sl_operator_t open_fails_op = {
    SL_OPERATOR_INIT, .name = "open_fails", .kind = SL_KIND_TRANSFORM,
    .description = "open() always fails", .open = open_fails_open, .process = pass_process};

static int bad_port_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  return sl_emit_to(ctx, 7, rec);
}
static const sl_operator_t bad_port_op = {
    SL_OPERATOR_INIT, .name = "bad_port", .kind = SL_KIND_TRANSFORM,
    .description = "emits to port 7, which does not exist", .process = bad_port_process};

static int fail_every_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  int64_t *every = malloc(sizeof(int64_t));
  if (!every) return SL_ENOMEM;
  *every = sl_config_int(ctx, "every");
  if (*every <= 0) {
    free(every);
    strncpy(errbuf, "every must be positive", errlen - 1);
    errbuf[errlen - 1] = '\0';
    return SL_ECONFIG;
  }
  *state = every;
  return 0;
}
static int fail_every_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  sl_json_value_t v;
  if (sl_json_get(ctx, rec->value, rec->value_len, "n", &v) != 0 || v.type != SL_JSON_NUMBER) {
    sl_set_error(ctx, "no numeric field 'n'");
    return SL_ERECORD;
  }
  long long n = strtoll(v.ptr, NULL, 10);
  if (n % *(int64_t *)state == 0) {
    sl_set_error(ctx, "poison record n=%lld", n);
    return SL_ERECORD;
  }
  return sl_emit(ctx, rec);
}
static void free_state(void *state) { free(state); }
static const sl_config_key_t fail_every_config[] = {
    {"every", SL_CONFIG_INT, "10", "fail records whose n is a multiple of this"}};
static const sl_operator_t fail_every_op = {
    SL_OPERATOR_INIT, .name = "fail_every", .kind = SL_KIND_TRANSFORM,
    .description = "fails every n-th record", .config = fail_every_config, .config_count = 1,
    .open = fail_every_open, .process = fail_every_process, .close = free_state};

static int null_value_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  sl_record_t out = *rec;
  out.value = NULL; /* with a non-zero length: the host must refuse, not crash */
  out.value_len = 5;
  return sl_emit(ctx, &out);
}
static const sl_operator_t null_value_op = {
    SL_OPERATOR_INIT, .name = "null_value", .kind = SL_KIND_TRANSFORM,
    .description = "emits a record whose value is NULL with length 5", .process = null_value_process};

/* sl_fail: fatal whatever on_error says. */
static int give_up_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  sl_fail(ctx, "the disk caught fire");
  return SL_EIO;
}
static const sl_operator_t give_up_op = {
    SL_OPERATOR_INIT, .name = "give_up", .kind = SL_KIND_TRANSFORM,
    .description = "calls sl_fail on the first record", .process = give_up_process};

/* A source that ignores sl_budget: emits 10 budgets per poll, 3 polls. */
static int greedy_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  int *polls = calloc(1, sizeof(int));
  if (!polls) return SL_ENOMEM;
  *state = polls;
  return 0;
}
static int greedy_poll(sl_ctx_t *ctx, void *state) {
  int *polls = state;
  if ((*polls)++ == 3) return SL_DONE;
  uint32_t n = sl_budget(ctx) * 10;
  for (uint32_t i = 0; i < n; i++) {
    sl_record_t r = {.value = "{\"n\":1}", .value_len = 7};
    sl_emit(ctx, &r);
  }
  return SL_OK;
}
static const sl_operator_t greedy_op = {
    SL_OPERATOR_INIT, .name = "greedy", .kind = SL_KIND_SOURCE,
    .description = "ignores sl_budget: 10 budgets per poll", .open = greedy_open,
    .poll = greedy_poll, .close = free_state};

SL_PLUGIN_DEFINE("misbehave", "1.0.0", "operators that fail on purpose", &open_fails_op,
                 &bad_port_op, &fail_every_op, &null_value_op, &give_up_op, &greedy_op);
