/* A well-formed test plugin: a counting source and an uppercasing transform. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

typedef struct seq_state {
  int64_t next, count;
  char buf[64];
} seq_state_t;

static int seq_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  seq_state_t *s = calloc(1, sizeof(*s));
  if (!s) return SL_ENOMEM;
  s->count = sl_config_int(ctx, "count");
  s->next = sl_task_index(ctx);
  *state = s;
  return 0;
}

/* Emits {"n":i} for i = task_index, task_index + p, ... below count. */
static int seq_poll(sl_ctx_t *ctx, void *state) {
  seq_state_t *s = state;
  uint32_t budget = sl_budget(ctx);
  for (uint32_t i = 0; i < budget; i++) {
    if (s->next >= s->count) return SL_DONE;
    int n = snprintf(s->buf, sizeof(s->buf), "{\"n\":%lld,\"k\":\"k%lld\"}", (long long)s->next,
                     (long long)(s->next % 10));
    sl_record_t r = {.value = s->buf, .value_len = (size_t)n, .ts = s->next, .offset = s->next};
    sl_emit(ctx, &r);
    s->next += sl_parallelism(ctx);
  }
  return SL_OK;
}

static void seq_close(void *state) { free(state); }

static const sl_config_key_t seq_config[] = {
    {"count", SL_CONFIG_INT, "100", "records to emit"},
};

static const sl_operator_t seq_op = {
    SL_OPERATOR_INIT,
    .name = "seq",
    .version = "1.0.0",
    .description = "emits {\"n\":i,\"k\":\"k<i mod 10>\"} for i in [0, count)",
    .kind = SL_KIND_SOURCE,
    .config = seq_config,
    .config_count = 1,
    .open = seq_open,
    .poll = seq_poll,
    .close = seq_close,
};

static int upper_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  char buf[256];
  size_t n = rec->value_len < sizeof(buf) ? rec->value_len : sizeof(buf);
  for (size_t i = 0; i < n; i++) {
    char c = ((const char *)rec->value)[i];
    buf[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
  }
  sl_record_t out = *rec;
  out.value = buf;
  out.value_len = n;
  return sl_emit(ctx, &out);
}

static const sl_operator_t upper_op = {
    SL_OPERATOR_INIT,
    .name = "upper",
    .version = "1.0.0",
    .description = "uppercases ASCII letters of the value",
    .kind = SL_KIND_TRANSFORM,
    .process = upper_process,
};

/*
 * keycheck: a sink that fails the job when one key reaches two different
 * subtasks (key_by must send a key to exactly one task). A test plugin, so a
 * mutex per record is fine here.
 */
#include <pthread.h>
#define KEYCHECK_SLOTS 4096
static pthread_mutex_t kc_mu = PTHREAD_MUTEX_INITIALIZER;
static char kc_keys[KEYCHECK_SLOTS][32];
static int kc_owner[KEYCHECK_SLOTS];
static int kc_used;

static int keycheck_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  char key[32];
  size_t n = rec->key_len < sizeof(key) - 1 ? rec->key_len : sizeof(key) - 1;
  memcpy(key, rec->key, n);
  key[n] = '\0';
  int me = (int)sl_task_index(ctx), rc = 0;
  pthread_mutex_lock(&kc_mu);
  int i;
  for (i = 0; i < kc_used; i++)
    if (strcmp(kc_keys[i], key) == 0) break;
  if (i == kc_used && kc_used < KEYCHECK_SLOTS) {
    strcpy(kc_keys[kc_used], key);
    kc_owner[kc_used++] = me;
  } else if (i < kc_used && kc_owner[i] != me) {
    sl_set_error(ctx, "key '%s' reached subtasks %d and %d", key, kc_owner[i], me);
    rc = SL_ERECORD;
  }
  pthread_mutex_unlock(&kc_mu);
  return rc;
}

static const sl_operator_t keycheck_op = {
    SL_OPERATOR_INIT,
    .name = "keycheck",
    .version = "1.0.0",
    .description = "fails when a key reaches two subtasks",
    .kind = SL_KIND_SINK,
    .process = keycheck_process,
};

/* batcher: process_batch only; counts calls; fails a whole call when config
 * fail_on (>= 0) is the "n" of one of its records. */
typedef struct batcher {
  sl_counter_t *calls;
  int64_t fail_on;
} batcher_t;

static int batcher_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  batcher_t *b = calloc(1, sizeof(*b));
  if (!b) return SL_ENOMEM;
  b->calls = sl_counter(ctx, "calls");
  b->fail_on = sl_config_int(ctx, "fail_on");
  *state = b;
  return 0;
}

static int batcher_process_batch(sl_ctx_t *ctx, void *state, const sl_record_t *recs, size_t n) {
  batcher_t *b = state;
  sl_counter_add(b->calls, 1);
  for (size_t i = 0; i < n; i++) {
    sl_json_value_t v;
    if (b->fail_on >= 0 && sl_json_get(ctx, recs[i].value, recs[i].value_len, "n", &v) == 0 &&
        strtoll(v.ptr, NULL, 10) == b->fail_on) {
      sl_set_error(ctx, "batch holds n=%lld", (long long)b->fail_on);
      return SL_ERECORD;
    }
  }
  for (size_t i = 0; i < n; i++) sl_emit(ctx, &recs[i]);
  return 0;
}

static const sl_config_key_t batcher_config[] = {
    {"fail_on", SL_CONFIG_INT, "-1", "fail the call holding the record with this n"}};

static const sl_operator_t batcher_op = {
    SL_OPERATOR_INIT,
    .name = "batcher",
    .version = "1.0.0",
    .description = "process_batch only; counts calls",
    .kind = SL_KIND_TRANSFORM,
    .config = batcher_config,
    .config_count = 1,
    .open = batcher_open,
    .close = seq_close,
    .process_batch = batcher_process_batch,
};

/* decliner: has process_batch but declines it (SL_AGAIN); its process()
 * fails the record whose n is fail_on. */
static int decliner_process_batch(sl_ctx_t *ctx, void *state, const sl_record_t *recs, size_t n) {
  batcher_t *b = state;
  sl_counter_add(b->calls, 1);
  return SL_AGAIN;
}
static int decliner_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  batcher_t *b = state;
  sl_json_value_t v;
  if (sl_json_get(ctx, rec->value, rec->value_len, "n", &v) == 0 &&
      strtoll(v.ptr, NULL, 10) == b->fail_on) {
    sl_set_error(ctx, "n=%lld", (long long)b->fail_on);
    return SL_ERECORD;
  }
  return sl_emit(ctx, rec);
}
static const sl_operator_t decliner_op = {
    SL_OPERATOR_INIT,
    .name = "decliner",
    .version = "1.0.0",
    .description = "declines process_batch; process fails one record",
    .kind = SL_KIND_TRANSFORM,
    .config = batcher_config,
    .config_count = 1,
    .open = batcher_open,
    .close = seq_close,
    .process = decliner_process,
    .process_batch = decliner_process_batch,
};

SL_PLUGIN_DEFINE("good", "1.0.0", "well-formed test plugin", &seq_op, &upper_op, &keycheck_op,
                 &batcher_op, &decliner_op);
