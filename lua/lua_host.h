/*
 * lua_host.h - internals shared by the Lua operator host's files.
 *
 * One sl_lua_host_t per task (operator instance): it owns the task's
 * lua_State and everything the hot path needs, so a record costs a few
 * stack pushes and one lua_pcall, never an allocation.
 *
 * The main thread's stack keeps a fixed layout between calls (the SLOT_*
 * indices below): the message handler, the callback, ctx and the recs
 * userdata are pushed once in open and reused with lua_pushvalue.
 */
#ifndef SLUICE_LUA_HOST_H
#define SLUICE_LUA_HOST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lua.h>
#include <sluice.h>

#include "lua_pattern.h"

/* Permanent stack slots of the main thread (pushed at the end of open). */
enum {
  SLOT_MSGH = 1, /* traceback message handler */
  SLOT_FN = 2,   /* process or process_batch */
  SLOT_CTX = 3,  /* the ctx table */
  SLOT_RECS = 4  /* the recs userdata given to process_batch */
};

typedef struct sl_lua_limits {
  int64_t instructions; /* per call */
  size_t memory;        /* bytes, whole state */
  int64_t timeout_ms;   /* wall clock per call */
  int64_t pattern_steps;
} sl_lua_limits_t;

/* Which callback is running: keyed state is allowed in process only, state
 * declarations in open only, op_state_put in snapshot only (lua_keyed.c).
 * on_timer runs in SL_LUA_PH_PROCESS (its timer's key is current, so keyed
 * state works there as in process) and on_watermark in SL_LUA_PH_NONE (no
 * key is current); sl_lua_host_t.time_cb tells them apart. */
typedef enum sl_lua_phase {
  SL_LUA_PH_NONE = 0,
  SL_LUA_PH_LOAD,     /* the main chunk */
  SL_LUA_PH_OPEN,
  SL_LUA_PH_PROCESS,
  SL_LUA_PH_BATCH,
  SL_LUA_PH_ON_END,
  SL_LUA_PH_CLOSE,
  SL_LUA_PH_SNAPSHOT,
  SL_LUA_PH_COMMIT
} sl_lua_phase_t;

/* The event-time callback in progress, if any (lua_plugin.c, lua_time.c). */
typedef enum sl_lua_time_cb {
  SL_LUA_TCB_NONE = 0,
  SL_LUA_TCB_TIMER,    /* on_timer(ts, domain, ctx); phase is SL_LUA_PH_PROCESS */
  SL_LUA_TCB_WATERMARK /* on_watermark(wm, ctx); phase is SL_LUA_PH_NONE */
} sl_lua_time_cb_t;

/* lua_alloc.c: the state's allocator (memory cap, cache of small blocks). */
#define SL_LUA_ALLOC_CLASSES 32
typedef struct sl_lua_alloc {
  size_t used;      /* bytes held against the cap: live and cached blocks */
  size_t cap;       /* lua_memory_mb */
  size_t cached;    /* bytes on the free lists */
  size_t cache_max; /* at most this many */
  int refused;      /* an allocation was refused during the current call */
  void *free[SL_LUA_ALLOC_CLASSES];
} sl_lua_alloc_t;

/* The lua_Alloc; ud is the sl_lua_host_t. */
void *sl_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Hands the cached free blocks back to malloc (after lua_close, too). */
void sl_lua_alloc_flush(sl_lua_alloc_t *a);

typedef struct sl_lua_host {
  lua_State *L;
  sl_ctx_t *ctx; /* the SDK context of the current callback */
  sl_lua_limits_t lim;

  sl_lua_alloc_t alloc; /* memory cap and block cache (lua_alloc.c) */
  int gc_pause;         /* the collector's pause now (lua_state.c) */

  /* per-call budget state (lua_state.c) */
  int64_t instr_used;
  /* pat.deadline_ns is the call's wall-clock deadline for the hook and the
   * pattern functions alike; 0 = not started yet: the first check sets it,
   * so a short call never reads the clock. */
  sl_lua_pattern_limits_t pat;
  int tripped;         /* a limit broke: the hook now fires every instruction */
  char limit_msg[160];

  /* The count hook of the main thread (lua_state.c, lua_watchdog.c). Eager
   * (always on) for small budgets; else lazy: armed by the watchdog's signal
   * for calls that run long, and off again at the next call. */
  int lazy_hook;
  volatile sig_atomic_t hook_on; /* lazy: armed for the call in progress */
  uint64_t call_seq;   /* bumped at each call's start (read by the watchdog) */
  uint64_t wd_request; /* the call_seq the watchdog asked to arm */
  uint64_t wd_seen;    /* the watchdog's: call_seq at its previous look */
  uint64_t wd_since_ns; /* the watchdog's: when it first saw call wd_seen (coarse clock) */
  uint64_t armed_seq;   /* the call_seq whose hook is on (the watchdog stops asking) */
  struct sl_lua_host *wd_prev; /* the host whose call this one's interrupted on the thread */
  pid_t tid;           /* kernel id of the thread running the call */

  /* the call in progress */
  int in_call; /* written atomically: the watchdog reads it */
  uint64_t gen; /* bumped after every call (never 0): recs of older calls are stale */
  const sl_record_t *cur; /* default key/ts/offset for emit; NULL outside records */
  const sl_record_t *batch; /* the call's records (one for process) */
  size_t batch_n;
  void *hdr_for; /* the rec whose headers table is cached in registry ref_hdr */
  void *recs_ud; /* the recs userdata (one per state, valid during batch calls) */
  const char *field_names[8]; /* "value", "key", ... interned (lua_record.c), ref_names */
  int ref_names;

  int has_batch; /* the script defines process_batch and it is used (no keyed state, no key_by) */
  sl_lua_phase_t phase; /* the callback in progress */
  int uses_state;       /* the script declared keyed state (process per record) */
  sl_lua_time_cb_t time_cb; /* on_timer / on_watermark in progress */
  int emit_ok;   /* emit allowed: process, process_batch, on_timer, on_watermark, on_end */
  size_t emit_cap, emitted; /* bytes one process call may emit (0 = no cap: on_end) */
  int ref_open, ref_fn, ref_on_end, ref_close, ref_env, ref_counters, ref_recs, ref_ctx, ref_hdr;
  int counters_cached; /* names in the ref_counters cache (lua_ctx.c) */
  int ref_process, ref_snapshot, ref_commit; /* the script's functions, or LUA_NOREF */
  int ref_on_timer, ref_on_watermark;        /* the same, for event time (SDK 1.3) */
  int ref_dom_event, ref_dom_proc; /* the strings "event" and "processing", for on_timer */
  int ref_jenc, ref_jdec;  /* private refs to sluice.json's encode / decode (state codec) */
  int ref_declared;        /* state name -> kind (integer) of the states declared so far */

  /* encoding scratch for state keys and values (lua_keyed.c): reused, so a
   * state call allocates nothing in the common case */
  unsigned char *kbuf, *vbuf;
  size_t kcap, vcap;

  /* emit scratch for headers tables larger than the stack array */
  sl_header_t *hdr_scratch;
  size_t hdr_cap;

  char *script_path, *script_dir, *dag_dir;
  char chunkname[256]; /* "@op.lua": the script as the DAG names it */
  char err[1024];
} sl_lua_host_t;

/* lua_plugin.c: set up a host for the script at `script` (a path) under
 * `lim`, with a new lua_State (sl_lua_state_new); 0 or -1. */
int sl_lua_host_init(sl_lua_host_t *h, sl_ctx_t *ctx, const char *script, sl_lua_limits_t lim);
/* Close the state and free the host. */
void sl_lua_host_free(sl_lua_host_t *h);
/* The limits a Lua operator gets when its node sets none. */
sl_lua_limits_t sl_lua_default_limits(void);

/* A growable byte buffer. */
typedef struct sl_lua_buf {
  unsigned char *p;
  size_t len, cap;
} sl_lua_buf_t;

/* lua_acc.c: a Lua aggregate's accumulator as bytes (exact, nested tables);
 * both raise on error. encode replaces out's contents; at most max bytes. */
void sl_lua_acc_encode(lua_State *L, int idx, sl_lua_buf_t *out, size_t max);
void sl_lua_acc_decode(lua_State *L, const void *p, size_t len);

/* lua_agg.c: the aggregate function "script" (scheme "lua"). */
extern const sl_aggregate_t sl_lua_aggregate;

/* lua_table.c: the sandbox's deadline-checked table.sort and table.move. */
void sl_lua_table_install(lua_State *L, int idx);

/* The host of a state (stored in the state's extra space). */
static inline sl_lua_host_t *sl_lua_host_of(lua_State *L) {
  return *(sl_lua_host_t **)lua_getextraspace(L);
}

/* lua_watchdog.c: states with a lazy hook are watched from add to remove;
 * each call runs between watch_begin and watch_end (prev: what begin
 * returned). add fails (-1) when no watchdog can run: the hook is eager. */
int sl_lua_watchdog_add(sl_lua_host_t *h);
void sl_lua_watchdog_remove(sl_lua_host_t *h);
sl_lua_host_t *sl_lua_watch_begin(sl_lua_host_t *h);
void sl_lua_watch_end(sl_lua_host_t *prev);

/* lua_state.c */
/* Sets the count hook on the main thread for the rest of the call; async-
 * signal-safe (the watchdog's handler calls it). */
void sl_lua_hook_arm(sl_lua_host_t *h);
/* Sets the count hook on a thread of the state (a new coroutine). */
void sl_lua_hook_thread(lua_State *co);
int sl_lua_state_new(sl_lua_host_t *h);
void sl_lua_state_close(sl_lua_host_t *h);
int sl_lua_call(sl_lua_host_t *h, int nargs);
/* Same, and *returned_true tells whether the function returned a true value. */
int sl_lua_call_r(sl_lua_host_t *h, int nargs, int *returned_true);
void sl_lua_check_clock(lua_State *L, sl_lua_host_t *h);
/* Starts the call's clock when it has not started; non-zero once the call's
 * lua_timeout deadline has passed. Shared by the hook and lua_table.c. */
int sl_lua_deadline_passed(sl_lua_host_t *h);

/* lua_coroutine.c: replaces create, wrap, resume and close in the sandbox's
 * coroutine table at idx. */
void sl_lua_coroutine_install(lua_State *L, int idx);

/* lua_sandbox.c: builds the sandbox env (left in the registry, ref_env) */
int sl_lua_sandbox_init(sl_lua_host_t *h);
int sl_lua_load_script(sl_lua_host_t *h);

/* lua_ctx.c: pushes a new ctx table */
void sl_lua_ctx_push(sl_lua_host_t *h);

/* lua_keyed.c: keyed state, operator state and checkpoint functions of ctx
 * (added to the ctx table at idx), and their metatables. */
void sl_lua_keyed_install(sl_lua_host_t *h, int ctx_idx);
/* Name of a phase, for messages ("open", "process", ...). */
const char *sl_lua_phase_name(sl_lua_phase_t ph);

/* lua_time.c: timer and watermark functions of ctx (timer_set, timer_delete,
 * watermark, current_key), added to the ctx table at idx; the two domain
 * strings (ref_dom_event, ref_dom_proc). */
void sl_lua_time_install(sl_lua_host_t *h, int ctx_idx);
/* Name of the callback in progress, for messages: "on_timer" and
 * "on_watermark" included. */
const char *sl_lua_callback_name(const sl_lua_host_t *h);

/* lua_record.c */
void sl_lua_record_init(sl_lua_host_t *h);
void sl_lua_record_push(sl_lua_host_t *h, size_t i);

/* lua_json.c: pushes the sluice.json table */
void sl_lua_json_push(lua_State *L);

#endif /* SLUICE_LUA_HOST_H */
