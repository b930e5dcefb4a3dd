/*
 * lua_plugin.c - the Lua operator host as an SDK plugin: `use: lua:op.lua`
 * selects the operator "script" (scheme "lua"), one lua_State per task.
 *
 * The hot path (process / process_batch) pushes the callback, a rec (a light
 * userdata) or the recs userdata, and ctx from fixed stack slots and makes
 * one lua_pcall: no allocation, no clock read, no table per record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_host.h"

/* The default limits: of an operator whose node sets none, and of every
 * aggregate function (lua_agg.c). */
#define DEF_INSTRUCTIONS 10000000
#define DEF_MEMORY_MB 64
#define DEF_TIMEOUT_MS 1000
#define DEF_PATTERN_STEPS 10000000
#define STR_(x) #x
#define STR(x) STR_(x)

static const sl_config_key_t limit_keys[] = {
    {"lua_instructions", SL_CONFIG_INT, STR(DEF_INSTRUCTIONS), "Lua instructions per callback call"},
    {"lua_memory_mb", SL_CONFIG_INT, STR(DEF_MEMORY_MB), "memory cap of the task's Lua state, MB"},
    {"lua_timeout", SL_CONFIG_DURATION, STR(DEF_TIMEOUT_MS) "ms", "wall-clock time per callback call"},
    {"lua_pattern_steps", SL_CONFIG_INT, STR(DEF_PATTERN_STEPS),
     "steps per string.find/match/gmatch/gsub call"},
};

void sl_lua_host_free(sl_lua_host_t *h) {
  sl_lua_state_close(h);
  free(h->hdr_scratch);
  free(h->kbuf);
  free(h->vbuf);
  free(h->script_path);
  free(h->script_dir);
  free(h->dag_dir);
  free(h);
}

/* Registry ref of the global `name` of the script if it is a function,
 * else LUA_NOREF. */
static int ref_global(lua_State *L, sl_lua_host_t *h, const char *name) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_env);
  int t = lua_getfield(L, -1, name);
  lua_remove(L, -2);
  if (t == LUA_TFUNCTION) return luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return LUA_NOREF;
}

/* Everything of open that runs Lua, in one protected call under the limits:
 * sandbox, rec metatables, ctx, then the script's main chunk. */
static int setup(lua_State *L) {
  sl_lua_host_t *h = lua_touserdata(L, 1);
  sl_lua_sandbox_init(h);
  sl_lua_record_init(h);
  sl_lua_ctx_push(h);
  h->ref_ctx = luaL_ref(L, LUA_REGISTRYINDEX);
  sl_lua_load_script(h);
  h->ref_open = ref_global(L, h, "open");
  h->ref_on_end = ref_global(L, h, "on_end");
  h->ref_close = ref_global(L, h, "close");
  h->ref_snapshot = ref_global(L, h, "snapshot");
  h->ref_commit = ref_global(L, h, "commit");
  h->ref_on_timer = ref_global(L, h, "on_timer");
  h->ref_on_watermark = ref_global(L, h, "on_watermark");
  h->ref_process = ref_global(L, h, "process");
  h->ref_fn = ref_global(L, h, "process_batch");
  h->has_batch = h->ref_fn != LUA_NOREF;
  if (!h->has_batch) h->ref_fn = h->ref_process;
  if (h->ref_fn == LUA_NOREF) return luaL_error(L, "script defines neither process nor process_batch");
  return 0;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* Calls the script's function in ref (if any) with ctx, in phase ph. */
static int call_optional(sl_lua_host_t *h, int ref, sl_lua_phase_t ph) {
  if (ref == LUA_NOREF) return 0;
  lua_rawgeti(h->L, LUA_REGISTRYINDEX, ref);
  lua_pushvalue(h->L, SLOT_CTX);
  h->phase = ph;
  int rc = sl_lua_call(h, 1);
  h->phase = SL_LUA_PH_NONE;
  return rc;
}

sl_lua_limits_t sl_lua_default_limits(void) {
  sl_lua_limits_t lim = {.instructions = DEF_INSTRUCTIONS,
                         .memory = (size_t)DEF_MEMORY_MB << 20,
                         .timeout_ms = DEF_TIMEOUT_MS,
                         .pattern_steps = DEF_PATTERN_STEPS};
  return lim;
}

int sl_lua_host_init(sl_lua_host_t *h, sl_ctx_t *ctx, const char *script, sl_lua_limits_t lim) {
  h->ctx = ctx;
  h->gen = 1;
  h->ref_open = h->ref_fn = h->ref_on_end = h->ref_close = h->ref_process = LUA_NOREF;
  h->ref_snapshot = h->ref_commit = h->ref_on_timer = h->ref_on_watermark = LUA_NOREF;
  h->ref_dom_event = h->ref_dom_proc = LUA_NOREF;
  h->lim = lim;
  /* What one call emits is copied downstream (a channel batch, a sink's
   * buffer) while the state still holds its own memory: a quarter of the
   * cap keeps the whole under lua_memory_mb + 10% even for a flood. */
  h->emit_cap = h->lim.memory / 4;
  h->pat.max_steps = (uint64_t)h->lim.pattern_steps;
  h->pat.timeout_ns = (uint64_t)h->lim.timeout_ms * 1000000u;
  const char *dag_dir = sl_dag_dir(ctx);
  h->script_path = strdup(script ? script : "");
  h->script_dir = dir_of(h->script_path);
  h->dag_dir = strdup(dag_dir ? dag_dir : ".");
  if (!h->script_path || !h->script_dir || !h->dag_dir) return -1;
  /* Chunk name: the path as the DAG wrote it, so errors read "op.lua:3:". */
  const char *shown = h->script_path;
  size_t dl = strlen(h->dag_dir);
  if (strncmp(shown, h->dag_dir, dl) == 0 && shown[dl] == '/') shown += dl + 1;
  snprintf(h->chunkname, sizeof(h->chunkname), "@%s", shown);
  return sl_lua_state_new(h);
}

static int lua_op_open(sl_ctx_t *ctx, void **state, char *errbuf, size_t errlen) {
  sl_lua_host_t *h = calloc(1, sizeof(*h));
  if (!h) return SL_ENOMEM;
  int64_t mb = sl_config_int(ctx, "lua_memory_mb");
  sl_lua_limits_t lim = {.instructions = sl_config_int(ctx, "lua_instructions"),
                         .timeout_ms = sl_config_duration_ms(ctx, "lua_timeout"),
                         .pattern_steps = sl_config_int(ctx, "lua_pattern_steps")};
  const char *bad = mb < 1 || mb > (1 << 20)         ? "lua_memory_mb must be between 1 and 1048576"
                    : lim.instructions < 1           ? "lua_instructions must be at least 1"
                    : lim.timeout_ms < 1             ? "lua_timeout must be at least 1ms"
                    : lim.pattern_steps < 1          ? "lua_pattern_steps must be at least 1"
                                                     : NULL;
  if (bad) {
    snprintf(errbuf, errlen, "%s", bad);
    free(h);
    return SL_ECONFIG;
  }
  lim.memory = (size_t)mb << 20;
  if (sl_lua_host_init(h, ctx, sl_operator_arg(ctx), lim) != 0) {
    snprintf(errbuf, errlen, "cannot create a Lua state (lua_memory_mb too small?)");
    sl_lua_host_free(h);
    return SL_ENOMEM;
  }
  lua_State *L = h->L;
  lua_pushcfunction(L, setup);
  lua_pushlightuserdata(L, h);
  h->phase = SL_LUA_PH_LOAD;
  int setup_rc = sl_lua_call(h, 1);
  h->phase = SL_LUA_PH_NONE;
  if (setup_rc != 0) goto fail;
  /* The fixed stack slots the hot path reuses (SLOT_FN .. SLOT_RECS). */
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_fn);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_ctx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_recs);
  if (call_optional(h, h->ref_open, SL_LUA_PH_OPEN) != 0) goto fail;
  if (h->uses_state) {
    /* The host calls process() per record once keyed state is declared
     * (each call has one current key): SLOT_FN becomes process. */
    if (h->ref_process == LUA_NOREF) {
      snprintf(h->err, sizeof(h->err),
               "the script declares keyed state but defines only process_batch: keyed state is "
               "per record (one current key per call), define process(rec, ctx)");
      goto fail;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_process);
    lua_replace(L, SLOT_FN);
    h->has_batch = 0;
  }
  *state = h;
  return 0;
fail:
  snprintf(errbuf, errlen, "%s", h->err);
  sl_lua_host_free(h);
  return SL_EPLUGIN;
}

static int batch_call(sl_ctx_t *ctx, sl_lua_host_t *h, const sl_record_t *recs, size_t n);

static int lua_op_process(sl_ctx_t *ctx, void *state, const sl_record_t *rec) {
  sl_lua_host_t *h = state;
  lua_State *L = h->L;
  h->ctx = ctx;
  if (h->has_batch) {
    /* The host calls process() although the script has process_batch: it
     * runs this node per record (a key_by node, where timers need one key
     * per call), now and for the rest of the job. Use the script's process
     * from now on; a script with process_batch only gets one-record batches. */
    if (h->ref_process == LUA_NOREF) return batch_call(ctx, h, rec, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_process);
    lua_replace(L, SLOT_FN);
    h->has_batch = 0;
  }
  lua_pushvalue(L, SLOT_FN);
  sl_lua_record_push(h, 0);
  lua_pushvalue(L, SLOT_CTX);
  h->batch = h->cur = rec;
  h->batch_n = 1;
  h->emitted = 0;
  h->emit_ok = 1;
  h->phase = SL_LUA_PH_PROCESS;
  int rc = sl_lua_call(h, 2);
  h->phase = SL_LUA_PH_NONE;
  h->emit_ok = 0;
  h->batch = h->cur = NULL;
  h->batch_n = 0;
  if (rc == 0) return 0;
  sl_set_error(ctx, "%s", h->err);
  return SL_ERECORD;
}

/*
 * The host prefers this when the descriptor has it. A script without
 * process_batch declines (SL_AGAIN): the host then calls process() per
 * record for the rest of the job, so one bad record is one failure.
 */
static int lua_op_process_batch(sl_ctx_t *ctx, void *state, const sl_record_t *recs, size_t n) {
  sl_lua_host_t *h = state;
  if (!h->has_batch) return SL_AGAIN;
  return batch_call(ctx, h, recs, n);
}

/* The script's process_batch (in SLOT_FN) over recs. */
static int batch_call(sl_ctx_t *ctx, sl_lua_host_t *h, const sl_record_t *recs, size_t n) {
  lua_State *L = h->L;
  h->ctx = ctx;
  lua_pushvalue(L, SLOT_FN);
  lua_pushvalue(L, SLOT_RECS);
  lua_pushvalue(L, SLOT_CTX);
  h->batch = recs;
  h->batch_n = n;
  h->cur = NULL;
  h->emitted = 0;
  h->emit_ok = 1;
  h->phase = SL_LUA_PH_BATCH;
  int rc = sl_lua_call(h, 2);
  h->phase = SL_LUA_PH_NONE;
  h->emit_ok = 0;
  h->batch = NULL;
  h->batch_n = 0;
  h->cur = NULL;
  if (rc == 0) return 0;
  sl_set_error(ctx, "%s", h->err);
  return SL_ERECORD;
}

static int lua_op_on_end(sl_ctx_t *ctx, void *state) {
  sl_lua_host_t *h = state;
  h->ctx = ctx;
  h->emit_ok = 1;
  size_t cap = h->emit_cap;
  h->emit_cap = 0; /* final results may be large: not capped; spread them with `return true` */
  int more = 0, rc = 0;
  if (h->ref_on_end != LUA_NOREF) {
    lua_rawgeti(h->L, LUA_REGISTRYINDEX, h->ref_on_end);
    lua_pushvalue(h->L, SLOT_CTX);
    h->phase = SL_LUA_PH_ON_END;
    rc = sl_lua_call_r(h, 1, &more);
    h->phase = SL_LUA_PH_NONE;
  }
  h->emit_cap = cap;
  h->emit_ok = 0;
  /* on_end returned true: more to emit; called again when there is credit. */
  if (rc == 0) return more ? SL_AGAIN : 0;
  sl_set_error(ctx, "%s", h->err);
  return SL_EPLUGIN;
}

/*
 * Event time (SDK 1.3): the script's on_timer(ts, domain, ctx) and
 * on_watermark(wm, ctx). The descriptor always has both callbacks, so a
 * keyed Lua node is always run per record (the host's rule for operators
 * with on_timer); a script without them costs one comparison per call.
 * Like on_end, an error fails the job (its message names script:line, with
 * a traceback); emit works as in process, capped per call the same way.
 */
static int time_call_busy(sl_ctx_t *ctx, sl_lua_host_t *h, const char *what) {
  if (!h->in_call) return 0;
  sl_set_error(ctx, "%s called during another callback", what); /* never expected */
  return 1;
}

static int lua_op_on_timer(sl_ctx_t *ctx, void *state, sl_time_domain_t domain, int64_t ts) {
  sl_lua_host_t *h = state;
  if (h->ref_on_timer == LUA_NOREF) return 0;
  h->ctx = ctx;
  if (time_call_busy(ctx, h, "on_timer")) return SL_ESTATE;
  lua_State *L = h->L;
  /* emit's defaults: the timer's key and ts, no offset */
  sl_bytes_t key = {NULL, 0};
  if (sl_current_key(ctx, &key) != 0) key = (sl_bytes_t){NULL, 0};
  sl_record_t tr = {.key = key.ptr, .key_len = key.len, .ts = ts, .offset = SL_OFFSET_NONE};
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_on_timer);
  lua_pushinteger(L, (lua_Integer)ts);
  lua_rawgeti(L, LUA_REGISTRYINDEX,
              domain == SL_TIME_PROCESSING ? h->ref_dom_proc : h->ref_dom_event);
  lua_pushvalue(L, SLOT_CTX);
  h->cur = &tr;
  h->batch = NULL;
  h->batch_n = 0;
  h->emitted = 0;
  h->emit_ok = 1;
  h->phase = SL_LUA_PH_PROCESS; /* the timer's key is current: keyed state works */
  h->time_cb = SL_LUA_TCB_TIMER;
  int rc = sl_lua_call(h, 3);
  h->time_cb = SL_LUA_TCB_NONE;
  h->phase = SL_LUA_PH_NONE;
  h->emit_ok = 0;
  h->cur = NULL;
  if (rc == 0) return 0;
  sl_set_error(ctx, "%s", h->err);
  return SL_EPLUGIN;
}

static int lua_op_on_watermark(sl_ctx_t *ctx, void *state, int64_t wm) {
  sl_lua_host_t *h = state;
  if (h->ref_on_watermark == LUA_NOREF) return 0;
  h->ctx = ctx;
  if (time_call_busy(ctx, h, "on_watermark")) return SL_ESTATE;
  lua_State *L = h->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_on_watermark);
  lua_pushinteger(L, (lua_Integer)wm);
  lua_pushvalue(L, SLOT_CTX);
  h->cur = NULL; /* no record, no key: emit defaults to key "" and ts 0, as in on_end */
  h->batch = NULL;
  h->batch_n = 0;
  h->emitted = 0;
  h->emit_ok = 1;
  h->time_cb = SL_LUA_TCB_WATERMARK;
  int rc = sl_lua_call(h, 2);
  h->time_cb = SL_LUA_TCB_NONE;
  h->emit_ok = 0;
  if (rc == 0) return 0;
  sl_set_error(ctx, "%s", h->err);
  return SL_EPLUGIN;
}

/* close(ctx) may log; errors there cannot fail anything any more: logged. */
static void lua_op_close(void *state) {
  sl_lua_host_t *h = state;
  if (call_optional(h, h->ref_close, SL_LUA_PH_CLOSE) != 0) sl_log(h->ctx, SL_LOG_WARN, "close: %s", h->err);
  sl_lua_host_free(h);
}

/*
 * Checkpoints (SDK 1.2): snapshot(ctx, id) and commit(ctx, id) of the script,
 * when defined. Keyed state is saved by the host; snapshot saves the
 * script's own state with ctx:op_state_put. Called between records (on the
 * task's thread, or on the main thread for the final checkpoint), never
 * during another call; an error fails the job.
 */
static int checkpoint_call(sl_ctx_t *ctx, sl_lua_host_t *h, int ref, sl_lua_phase_t ph,
                           uint64_t id) {
  if (ref == LUA_NOREF) return 0;
  const char *what = ph == SL_LUA_PH_SNAPSHOT ? "snapshot" : "commit";
  h->ctx = ctx;
  if (h->in_call) { /* never expected: the host calls between records */
    sl_set_error(ctx, "%s(ctx, %llu) called during another callback", what, (unsigned long long)id);
    return SL_ESTATE;
  }
  lua_rawgeti(h->L, LUA_REGISTRYINDEX, ref);
  lua_pushvalue(h->L, SLOT_CTX);
  lua_pushinteger(h->L, (lua_Integer)id);
  h->phase = ph;
  int rc = sl_lua_call(h, 2);
  h->phase = SL_LUA_PH_NONE;
  if (rc == 0) return 0;
  sl_set_error(ctx, "%s(ctx, %llu): %s", what, (unsigned long long)id, h->err);
  sl_fail(ctx, "%s(ctx, %llu): %s", what, (unsigned long long)id, h->err);
  return SL_EPLUGIN;
}

static int lua_op_snapshot(sl_ctx_t *ctx, void *state, uint64_t id) {
  sl_lua_host_t *h = state;
  return checkpoint_call(ctx, h, h->ref_snapshot, SL_LUA_PH_SNAPSHOT, id);
}

static int lua_op_commit(sl_ctx_t *ctx, void *state, uint64_t id) {
  sl_lua_host_t *h = state;
  return checkpoint_call(ctx, h, h->ref_commit, SL_LUA_PH_COMMIT, id);
}

static const sl_operator_t lua_script = {
    SL_OPERATOR_INIT,
    .name = "script",
    .version = SLUICE_LUA_VERSION,
    .description = "runs a Lua 5.4 script as an operator (use: lua:path/to/op.lua)",
    .kind = SL_KIND_TRANSFORM,
    .config = limit_keys,
    .config_count = sizeof(limit_keys) / sizeof(limit_keys[0]),
    .open = lua_op_open,
    .process = lua_op_process,
    .on_end = lua_op_on_end,
    .close = lua_op_close,
    .scheme = "lua",
    .flags = SL_OP_FREE_CONFIG,
    .process_batch = lua_op_process_batch,
    .snapshot = lua_op_snapshot,
    .commit = lua_op_commit,
    .on_timer = lua_op_on_timer,
    .on_watermark = lua_op_on_watermark,
};

static const sl_operator_t *const k_ops[] = {&lua_script};
static const sl_aggregate_t *const k_aggs[] = {&sl_lua_aggregate};
SL_PLUGIN_DEFINE_FULL("lua", SLUICE_LUA_VERSION,
                      "Lua 5.4 host: sandboxed operators and aggregate functions", k_ops, 1, k_aggs,
                      1);
