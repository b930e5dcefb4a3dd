/*
 * sluice.h - the Sluice plugin SDK. One self-contained header (C99 and C++),
 * depending on nothing but libc.
 *
 * A plugin is a shared object that exports one data symbol, `sluice_plugin`
 * (declare it with SL_PLUGIN_DEFINE). It is a `const sl_plugin_t`: the host
 * reads and checks it (ABI major/minor, struct sizes, required callbacks)
 * before it calls any function of the plugin. Each plugin holds one or more
 * operators, each described by a `const sl_operator_t`.
 *
 * The host reaches plugin code only through the callbacks of an operator.
 * Plugin code reaches the host only through the functions below, which go
 * through the host's versioned function table (sl_host_api_t). That table is
 * append-only: a new minor version adds fields at its end, never changes or
 * removes one.
 *
 * Threading: the callbacks of one operator instance are never called
 * concurrently. open() and close() run on the thread that starts and ends
 * the job; process(), poll() and on_end() run on the worker thread that owns
 * the instance's task. Different instances (tasks) of the same operator run
 * concurrently on different threads, so plugin code must not share mutable
 * globals between instances without its own locking. Callbacks must not
 * block (no sleeping, no waiting on the network): a blocked callback stalls
 * every task on its worker.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- ABI */

/** Incompatible changes bump the major; the host refuses other majors. */
#define SL_ABI_MAJOR 1
/** Additions (new host functions, new operator callbacks) bump the minor. */
#define SL_ABI_MINOR 8

#if defined(_WIN32)
#define SL_EXPORT __declspec(dllexport)
#else
#define SL_EXPORT __attribute__((visibility("default")))
#endif

#if defined(__GNUC__)
#define SL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SL_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------- Errors */

/*
 * Every SDK function returns int: 0 = ok, negative = an error from this
 * table, positive = a flow-control code (SL_AGAIN, SL_DONE), never an error.
 * X(name, value, text): one table gives the codes and sl_strerror().
 */
#define SL_ERROR_TABLE(X)                                                     \
  X(SL_OK, 0, "ok")                                                          \
  X(SL_EINVAL, -1, "invalid argument")                                       \
  X(SL_ENOMEM, -2, "out of memory")                                          \
  X(SL_ENOPORT, -3, "unknown output port")                                   \
  X(SL_EIO, -4, "input/output error")                                        \
  X(SL_ECONFIG, -5, "invalid configuration")                                 \
  X(SL_EABI, -6, "plugin ABI mismatch")                                      \
  X(SL_ERECORD, -7, "invalid record")                                        \
  X(SL_EPLUGIN, -8, "plugin failure")                                        \
  X(SL_ENOTFOUND, -9, "not found")                                           \
  X(SL_ESTATE, -10, "operation not allowed in this state")

enum sl_error_code {
#define SL__ERROR_ENUM(name, value, text) name = value,
  SL_ERROR_TABLE(SL__ERROR_ENUM)
#undef SL__ERROR_ENUM
};

/** Flow control, not an error: no credit / nothing to do now, call again. */
#define SL_AGAIN 1
/** Flow control, not an error: a source has no more input. */
#define SL_DONE 2

/* ---------------------------------------------------------- Records */

/** A record header: a name and a value, both byte strings. */
typedef struct sl_header {
  const char *name;
  size_t name_len;
  const void *value;
  size_t value_len;
} sl_header_t;

/** Offset of a record whose source position is unknown. */
#define SL_OFFSET_NONE INT64_C(-1)

/**
 * A record, as an operator sees it. Every pointer in a record the host hands
 * to a callback is owned by the host and valid only until that callback
 * returns: copy what you keep. A record an operator emits is copied by the
 * host (or handed on within the same call), so it may point to the
 * operator's stack or scratch buffers.
 */
typedef struct sl_record {
  const void *key; /**< key bytes (may be NULL when key_len is 0) */
  size_t key_len;
  const void *value; /**< value bytes (may be NULL when value_len is 0) */
  size_t value_len;
  int64_t ts;     /**< event time, milliseconds since the Unix epoch */
  int64_t offset; /**< position in its source (line, sequence, Kafka offset) or SL_OFFSET_NONE */
  const sl_header_t *headers;
  uint32_t header_count;
} sl_record_t;

/* -------------------------------------------------------------- Time */

/**
 * 1.3: the two clocks a timer can follow. Event time is the records' own
 * time (sl_record_t.ts), as far as the watermark says it has progressed;
 * processing time is the wall clock of the machine (sl_now_ms()).
 */
typedef enum sl_time_domain {
  SL_TIME_EVENT = 1,
  SL_TIME_PROCESSING = 2
} sl_time_domain_t;

/** 1.3: the watermark before anything is known about event time. */
#define SL_TS_MIN INT64_MIN
/** 1.3: the watermark once every input has ended: all event time has passed. */
#define SL_TS_MAX INT64_MAX

/* ------------------------------------------------------ Configuration */

/** Types of configuration values, checked by the host before open(). */
typedef enum sl_config_type {
  SL_CONFIG_STRING = 1,
  SL_CONFIG_INT = 2,      /**< 64-bit signed integer */
  SL_CONFIG_DOUBLE = 3,
  SL_CONFIG_BOOL = 4,     /**< true/false */
  SL_CONFIG_DURATION = 5  /**< "250ms", "10s", "5m", "1h", "2d"; read in milliseconds */
} sl_config_type_t;

/**
 * One key of an operator's declarative config map. A NULL default_value
 * makes the key required. The host validates a DAG's `config:` against this
 * map (unknown key, wrong type, missing required key are errors with the
 * file:line:column of the offending text) and prints it for
 * `sluice plugins --describe`.
 */
typedef struct sl_config_key {
  const char *name;
  sl_config_type_t type;
  const char *default_value; /**< as it would be written in YAML; NULL = required */
  const char *description;
} sl_config_key_t;

/* ---------------------------------------------------------- Operators */

typedef struct sl_ctx sl_ctx_t; /**< a task's context, opaque; owned by the host */
/** A commit point (1.6, sl_checkpoint_commit_point): commit = 1 to commit
 * checkpoint `checkpoint_id`'s external transaction now, 0 when that
 * checkpoint was abandoned. 0, or -1 with a message in errbuf. */
typedef int (*sl_commit_point_fn)(void *arg, uint64_t checkpoint_id, int commit, char *errbuf,
                                  size_t errbuf_len);

/** What an operator is: a source produces, an operator transforms, a sink consumes. */
typedef enum sl_operator_kind {
  SL_KIND_SOURCE = 1,
  SL_KIND_TRANSFORM = 2,
  SL_KIND_SINK = 3
} sl_operator_kind_t;

/** Port id of an operator's default output. Named outputs get ids from sl_port(). */
#define SL_PORT_DEFAULT 0

/**
 * An operator descriptor: a `const` struct with designated initialisers.
 * Set struct_size to sizeof(sl_operator_t) (SL_OPERATOR_INIT does it); the
 * host uses it to know which (appended) fields a plugin was built with.
 *
 * Callbacks (see the threading note at the top of this file):
 *  - open: create the instance; store it in *state. Config is readable
 *    through sl_config_*(). Write a message to errbuf and return a negative
 *    code to fail (the job does not start). Optional.
 *  - process: one input record (transforms and sinks; required for them).
 *    Return 0, or a negative code after sl_set_error(): the node's on_error
 *    policy decides what happens to the record.
 *  - poll: sources only (required for them): emit up to sl_budget() records,
 *    return SL_OK (more to come), SL_AGAIN (nothing now, poll later) or
 *    SL_DONE (input exhausted). Negative = the job fails.
 *  - on_end: every input has ended (or, for a source, poll returned
 *    SL_DONE): flush, emit final results. Optional. Emit at most
 *    sl_budget() records per call and return SL_AGAIN while more remain:
 *    the host calls on_end again when the outputs have credit, so a large
 *    final result is backpressured like any other output. Return 0 when
 *    done, negative to fail the job.
 *  - close: free the instance; called once after a successful open, also
 *    when the job fails. Optional.
 */
typedef struct sl_operator {
  uint32_t struct_size;
  const char *name;        /**< unique within its plugin: [a-z0-9_]+ */
  const char *version;     /**< the operator's own version, e.g. "1.0.0" */
  const char *description; /**< one line */
  sl_operator_kind_t kind;
  const sl_config_key_t *config; /**< config map, config_count entries */
  size_t config_count;
  const char *const *outputs; /**< named output ports, NULL-terminated, or NULL */
  int (*open)(sl_ctx_t *ctx, void **state, char *errbuf, size_t errbuf_len);
  int (*process)(sl_ctx_t *ctx, void *state, const sl_record_t *rec);
  int (*poll)(sl_ctx_t *ctx, void *state);
  int (*on_end)(sl_ctx_t *ctx, void *state);
  void (*close)(void *state);
  /* ABI 1.0 ends here. */
  /**
   * 1.1: `use: SCHEME:ARG` in a DAG selects this operator, with ARG (a file
   * path, relative to the DAG file's directory) given to it through
   * sl_operator_arg(). The Lua host declares "lua". NULL = no scheme.
   */
  const char *scheme;
  /** 1.1: SL_OP_* flags. */
  uint32_t flags;
  /**
   * 1.1, optional, transforms and sinks: several input records in one call,
   * used instead of process() when set. The host passes each input batch
   * whole when the operator heads its task, single records when it is
   * chained behind another operator. Return 0, or a negative code after
   * sl_set_error(): the node's on_error then applies to every record of the
   * call (records emitted before the failure stay emitted). Return SL_AGAIN,
   * before emitting anything, to decline: the host then calls process() for
   * each record, now and for the rest of the job (a host for scripts that
   * may or may not process batches uses this).
   */
  int (*process_batch)(sl_ctx_t *ctx, void *state, const sl_record_t *recs, size_t n);
  /* ABI 1.1 ends here. */
  /**
   * 1.2, optional: a checkpoint barrier has reached this operator: every
   * record before the barrier has been processed, none after it. Save the
   * operator's own (non-keyed) state with sl_op_state_put() (a source: its
   * read position; a sink: its pending transaction) and, for a sink, PREPARE
   * (phase one of the two-phase commit): make what was written so far
   * durable but not yet visible. Keyed state is saved by the host. Called on
   * the task's thread; after the job's input has ended, the final checkpoint
   * calls it on the main thread (the workers have stopped). Return 0, or a
   * negative code after sl_fail() to fail the job.
   */
  int (*snapshot)(sl_ctx_t *ctx, void *state, uint64_t checkpoint_id);
  /**
   * 1.2, optional: checkpoint `checkpoint_id` is complete (its manifest is
   * on disk): COMMIT (phase two) everything prepared for that checkpoint and
   * any earlier one. Commits must be idempotent: after a crash the same work
   * may be committed again (see sl_checkpoint_restored()). Called on the
   * task's thread, or on the main thread after the final checkpoint.
   * Return 0, or a negative code after sl_fail().
   */
  int (*commit)(sl_ctx_t *ctx, void *state, uint64_t checkpoint_id);
  /* ABI 1.2 ends here. */
  /**
   * 1.3, optional: a timer set with sl_timer_set() is due. An event-time
   * timer fires once the operator's watermark has reached `ts` (watermark
   * >= ts), a processing-time timer once the wall clock has. The timer's key
   * is the current key: keyed state and sl_current_key() see it. Timers
   * fire in timestamp order, on the task's thread, never concurrently with
   * process(). Emit as in process(). Return 0, or a negative code after
   * sl_fail() to fail the job.
   */
  int (*on_timer)(sl_ctx_t *ctx, void *state, sl_time_domain_t domain, int64_t ts);
  /**
   * 1.3, optional: the operator's input watermark advanced to `watermark`,
   * after the event-time timers up to it fired and before the watermark goes
   * on downstream. SL_TS_MAX means every input has ended. No key is
   * current. Return 0, or a negative code after sl_fail().
   */
  int (*on_watermark)(sl_ctx_t *ctx, void *state, int64_t watermark);
  /* ABI 1.3 ends here. */
  /**
   * 1.6, optional, for a sink whose external system is the commit point of
   * the checkpoints (see sl_checkpoint_commit_point()): the job is starting
   * and finds checkpoint `checkpoint_id` written in full but not marked
   * complete (the process died between the sink's external commit and the
   * host's record of it). Answer from the external system whether that
   * checkpoint took effect: 1 yes (the job resumes from it), 0 no (it is
   * discarded; the job resumes from the one before), SL_ENOTFOUND when this
   * node does not commit externally (as configured: it has no say), or
   * another negative code with a message in errbuf (the job does not start). Called on the main
   * thread for the node's first instance, before any state is restored and
   * before open(): only the config, logging and sl_node_name() may be used.
   */
  int (*resolve)(sl_ctx_t *ctx, uint64_t checkpoint_id, char *errbuf, size_t errbuf_len);
  /* ABI 1.6 (and 1.7, which added no operator field) ends here. */
  /**
   * 1.8, optional, sources: the task's output has had no room for
   * SL_BACKPRESSURE_SIGNAL_MS (`blocked` = 1: downstream is slower or
   * stalled), or has room again (`blocked` = 0, before the next poll()).
   * Calls alternate, starting with 1; close() may follow a 1 (the job
   * failed or stopped). A source that reads ahead of poll() (a Kafka
   * consumer's prefetch) stops reading on 1 and starts again on 0, so a
   * long stall makes no reads. Short blocks (a steady, slightly slower
   * consumer) are not reported: reacting to each would cost more than it
   * saves. The block is seen by the source's worker: a downstream operator
   * on the same worker that sleeps inside process() hides it. Called on the
   * task's thread; return promptly. Return 0, or a negative code after
   * sl_fail() to fail the job.
   */
  int (*backpressure)(sl_ctx_t *ctx, void *state, int blocked);
  /* Later minors append fields after this line. */
} sl_operator_t;

/**
 * Flag: the node's `config:` may hold keys the config map does not declare.
 * Declared keys are still checked; the others are typed from YAML (an
 * unquoted integer, number or true/false, else a string) and read with
 * sl_config_count() / sl_config_at(). The Lua host uses it: a script's
 * config is the script's business.
 */
#define SL_OP_FREE_CONFIG 0x1u

#define SL_OPERATOR_INIT .struct_size = sizeof(sl_operator_t)

/** 1.8: how long a source task's output stays full before the host calls
 * its backpressure(ctx, state, 1). */
#define SL_BACKPRESSURE_SIGNAL_MS 100

/** The plugin descriptor, exported as the data symbol `sluice_plugin`. */
typedef struct sl_plugin {
  uint32_t abi_major; /**< SL_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor; /**< SL_ABI_MINOR the plugin was built with */
  uint32_t struct_size; /**< sizeof(sl_plugin_t) */
  uint32_t operator_struct_size; /**< sizeof(sl_operator_t) */
  const char *name;    /**< plugin name: [a-z0-9_-]+ */
  const char *version; /**< plugin version */
  const char *description;
  const sl_operator_t *const *operators; /**< operator_count descriptors */
  size_t operator_count;
  /* ABI 1.3 ends here. */
  /** 1.4: user-defined aggregate functions (see sl_aggregate_t), or NULL. */
  const struct sl_aggregate *const *aggregates;
  size_t aggregate_count;
} sl_plugin_t;

/** Does this plugin descriptor (built against some SDK minor) have `field`? */
#define SL_PLUGIN_HAS(d, field) \
  ((d)->struct_size >= offsetof(sl_plugin_t, field) + sizeof((d)->field))

/** Does this operator descriptor (built against some SDK minor) have `field`? */
#define SL_OPERATOR_HAS(op, field) \
  ((op)->struct_size >= offsetof(sl_operator_t, field) + sizeof((op)->field))

/** Name of the exported descriptor symbol. */
#define SL_PLUGIN_SYMBOL "sluice_plugin"

/**
 * Define a plugin: SL_PLUGIN_DEFINE("name", "1.0.0", "what it does", &op_a, &op_b);
 * (at file scope, once per shared object).
 */
#define SL_PLUGIN_DEFINE(pname, pversion, pdescription, ...)                  \
  static const sl_operator_t *const sl__plugin_ops[] = {__VA_ARGS__};        \
  SL_EXPORT extern const sl_plugin_t sluice_plugin;                          \
  const sl_plugin_t sluice_plugin = {                                        \
      SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin_t),                       \
      sizeof(sl_operator_t), pname, pversion, pdescription, sl__plugin_ops,  \
      sizeof(sl__plugin_ops) / sizeof(sl__plugin_ops[0]), NULL, 0}

/**
 * 1.4: define a plugin from arrays, with aggregate functions and/or
 * operators (either array may be NULL with a count of 0, not both):
 *   static const sl_aggregate_t *const aggs[] = {&geomean};
 *   SL_PLUGIN_DEFINE_FULL("stats", "1.0.0", "statistics", NULL, 0, aggs, 1);
 */
#define SL_PLUGIN_DEFINE_FULL(pname, pversion, pdescription, ops, nops, aggs, naggs) \
  SL_EXPORT extern const sl_plugin_t sluice_plugin;                                \
  const sl_plugin_t sluice_plugin = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin_t), \
                                     sizeof(sl_operator_t), pname, pversion,      \
                                     pdescription, ops, nops, aggs, naggs}

/* --------------------------------------------------- Host function table */

typedef enum sl_log_level {
  SL_LOG_ERROR = 0,
  SL_LOG_WARN = 1,
  SL_LOG_INFO = 2,
  SL_LOG_DEBUG = 3
} sl_log_level_t;

/** A per-operator counter; add to it with sl_counter_add(). Owned by the host. */
typedef struct sl_counter {
  uint64_t value; /**< written by the owning task only, read by the host */
} sl_counter_t;

/** Kinds of a JSON value found by sl_json_get(). */
typedef enum sl_json_type {
  SL_JSON_NONE = 0, /**< field absent */
  SL_JSON_STRING,
  SL_JSON_NUMBER,
  SL_JSON_BOOL,
  SL_JSON_NULL,
  SL_JSON_OBJECT,
  SL_JSON_ARRAY
} sl_json_type_t;

/**
 * A JSON value located inside a document, without copying: `ptr`/`len` is
 * the raw text (for a string: between the quotes, escapes left as written).
 */
typedef struct sl_json_value {
  sl_json_type_t type;
  const char *ptr;
  size_t len;
} sl_json_value_t;

/** 1.2: a byte string owned by the host (see each function for how long it lives). */
typedef struct sl_bytes {
  const void *ptr;
  size_t len;
} sl_bytes_t;

/** 1.2: kinds of keyed state. */
typedef enum sl_state_kind {
  SL_STATE_VALUE = 1, /**< one value per key */
  SL_STATE_LIST = 2,  /**< an ordered list of values per key */
  SL_STATE_MAP = 3    /**< a map (bytes -> bytes) per key */
} sl_state_kind_t;

/** 1.2: a declared keyed state (sl_state_declare); owned by the host. */
typedef struct sl_state sl_state_t;

/** One `config:` entry of a node, as sl_config_at() reports it. */
typedef struct sl_config_entry {
  const char *key;        /**< owned by the host, valid until close() */
  const char *text;       /**< the value as written in YAML */
  sl_config_type_t type;  /**< declared type, or the type inferred from YAML */
  int64_t i;              /**< INT, BOOL (0/1), DURATION (ms) */
  double d;               /**< DOUBLE */
  int declared;           /**< 1 if the key is in the operator's config map */
} sl_config_entry_t;

/* ------------------------------------------ Aggregate functions (1.4) */

/**
 * 1.4: one argument of an aggregate call, e.g. the value of field `x` in
 * `hist(x)` of the window operator: a JSON string (escapes resolved), number
 * or boolean of the record's value, or the record key (`$key`, a string).
 * Owned by the host, valid during the call.
 */
typedef struct sl_agg_arg {
  sl_json_type_t type; /**< SL_JSON_STRING, SL_JSON_NUMBER or SL_JSON_BOOL */
  const char *text;    /**< the string's bytes, or the number / true / false as written */
  size_t len;
  double num;          /**< the number, when type is SL_JSON_NUMBER (else 0) */
} sl_agg_arg_t;

/** 1.4: an accumulator: `len` bytes at `ptr` (see sl_aggregate_t.acc_size). */
typedef struct sl_acc {
  void *ptr;
  size_t len;
} sl_acc_t;

/** 1.4: the most arguments an aggregate function may take. */
#define SL_AGG_ARGS_MAX 8

/**
 * 1.4: a user-defined aggregate function (Flink's AggregateFunction): an
 * accumulator is created, records are added to it, accumulators of parts
 * (a sliding window's slices, merging sessions) are merged, and the result
 * is written as one JSON value. The window operator calls it where the DAG
 * names it in `aggregate:` (docs/time-and-windows.md); the accumulator bytes
 * are what keyed state and checkpoints keep, so they must hold no pointers.
 *
 * Two kinds of accumulator:
 *  - acc_size > 0, fixed: acc->ptr points to acc_size bytes the host owns
 *    (8-aligned); create, add and merge update them in place.
 *  - acc_size == 0, variable: the host hands the current bytes (read-only)
 *    and the function sets acc->ptr / acc->len to the new bytes, which it
 *    owns and keeps valid until its next call on the same instance.
 *
 * Callbacks (never concurrently for one instance; on the task's thread,
 * except open/close on the thread that starts and ends the job):
 *  - open, optional: one instance per use in a task, `arg` is the ARG of
 *    a `SCHEME:ARG` reference (NULL otherwise). Return 0, or a negative code
 *    with a message in errbuf.
 *  - create: a new, empty accumulator.
 *  - add: add one record's arguments (nargs between min_args and
 *    max_args). Return 1 if the accumulator changed, 0 if not, or a negative
 *    code after sl_set_error(): the record then fails under the node's
 *    on_error (nothing of it is kept).
 *  - merge: dst += src (src is an accumulator this function produced).
 *  - result: write the result as one JSON value into json[0..cap) and
 *    return its length; a length >= cap means "call again with more room".
 *    The text need not be NUL-terminated.
 * create, merge and result return a negative code after sl_fail() to fail
 * the job (a broken aggregate is not a bad record).
 */
typedef struct sl_aggregate {
  uint32_t struct_size;     /**< sizeof(sl_aggregate_t) (SL_AGGREGATE_INIT) */
  const char *name;         /**< unique within its plugin: [a-z0-9_]+ */
  const char *description;  /**< one line */
  /**
   * `SCHEME:ARG` as a reference selects this function with ARG (a file path
   * relative to the DAG file) given to open. The Lua host declares "lua".
   * NULL = no scheme.
   */
  const char *scheme;
  uint32_t min_args, max_args; /**< argument count range, max <= SL_AGG_ARGS_MAX */
  size_t acc_size;             /**< fixed accumulator size in bytes, or 0 = variable */
  int (*open)(sl_ctx_t *ctx, const char *arg, void **inst, char *errbuf, size_t errbuf_len);
  void (*close)(void *inst);
  int (*create)(sl_ctx_t *ctx, void *inst, sl_acc_t *acc);
  int (*add)(sl_ctx_t *ctx, void *inst, sl_acc_t *acc, const sl_agg_arg_t *args, size_t nargs);
  int (*merge)(sl_ctx_t *ctx, void *inst, sl_acc_t *dst, const void *src, size_t src_len);
  long (*result)(sl_ctx_t *ctx, void *inst, const void *acc, size_t len, char *json, size_t cap);
  /* Later minors append fields after this line. */
} sl_aggregate_t;

#define SL_AGGREGATE_INIT .struct_size = sizeof(sl_aggregate_t)

/**
 * The host's function table. Plugins never call it directly: use the
 * sl_*() wrappers below. Fields are only ever appended.
 */
typedef struct sl_host_api {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size;
  int (*emit)(sl_ctx_t *ctx, int port, const sl_record_t *rec);
  int (*port)(sl_ctx_t *ctx, const char *name);
  uint32_t (*budget)(sl_ctx_t *ctx);
  void (*logv)(sl_ctx_t *ctx, sl_log_level_t level, const char *fmt, va_list ap);
  void (*set_error)(sl_ctx_t *ctx, const char *fmt, va_list ap);
  sl_counter_t *(*counter)(sl_ctx_t *ctx, const char *name);
  const char *(*config_string)(sl_ctx_t *ctx, const char *key);
  int64_t (*config_int)(sl_ctx_t *ctx, const char *key);
  double (*config_double)(sl_ctx_t *ctx, const char *key);
  int (*config_bool)(sl_ctx_t *ctx, const char *key);
  int64_t (*config_duration_ms)(sl_ctx_t *ctx, const char *key);
  const char *(*node_name)(sl_ctx_t *ctx);
  uint32_t (*task_index)(sl_ctx_t *ctx);
  uint32_t (*parallelism)(sl_ctx_t *ctx);
  int (*stopping)(sl_ctx_t *ctx);
  int64_t (*now_ms)(sl_ctx_t *ctx);
  int (*json_get)(const void *json, size_t len, const char *field, sl_json_value_t *out);
  const char *(*strerror)(int code);
  void (*failv)(sl_ctx_t *ctx, const char *fmt, va_list ap);
  /* ABI 1.0 ends here. */
  const char *(*operator_arg)(sl_ctx_t *ctx);
  const char *(*dag_dir)(sl_ctx_t *ctx);
  size_t (*config_count)(sl_ctx_t *ctx);
  int (*config_at)(sl_ctx_t *ctx, size_t i, sl_config_entry_t *out);
  /* ABI 1.1 ends here. */
  struct sl_state *(*state_declare)(sl_ctx_t *ctx, const char *name, sl_state_kind_t kind,
                                    int64_t ttl_ms);
  int (*state_get)(sl_ctx_t *ctx, struct sl_state *st, sl_bytes_t *out);
  int (*state_put)(sl_ctx_t *ctx, struct sl_state *st, const void *value, size_t len);
  int (*state_clear)(sl_ctx_t *ctx, struct sl_state *st);
  int (*state_list_append)(sl_ctx_t *ctx, struct sl_state *st, const void *value, size_t len);
  int (*state_list_count)(sl_ctx_t *ctx, struct sl_state *st, size_t *out);
  int (*state_list_get)(sl_ctx_t *ctx, struct sl_state *st, size_t i, sl_bytes_t *out);
  int (*state_list_trim_front)(sl_ctx_t *ctx, struct sl_state *st, size_t n);
  int (*state_map_get)(sl_ctx_t *ctx, struct sl_state *st, const void *mkey, size_t mkey_len,
                       sl_bytes_t *out);
  int (*state_map_put)(sl_ctx_t *ctx, struct sl_state *st, const void *mkey, size_t mkey_len,
                       const void *value, size_t len);
  int (*state_map_remove)(sl_ctx_t *ctx, struct sl_state *st, const void *mkey, size_t mkey_len);
  int (*state_map_next)(sl_ctx_t *ctx, struct sl_state *st, size_t *cursor, sl_bytes_t *mkey,
                        sl_bytes_t *value);
  int (*op_state_put)(sl_ctx_t *ctx, const char *name, const void *value, size_t len);
  int (*op_state_get)(sl_ctx_t *ctx, const char *name, sl_bytes_t *out);
  uint64_t (*checkpoint_restored)(sl_ctx_t *ctx);
  int64_t (*checkpoint_interval_ms)(sl_ctx_t *ctx);
  int (*checkpoint_sync_fd)(sl_ctx_t *ctx, int fd);
  /* ABI 1.2 ends here. */
  int (*timer_set)(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts);
  int (*timer_delete)(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts);
  int64_t (*watermark)(sl_ctx_t *ctx);
  int (*current_key)(sl_ctx_t *ctx, sl_bytes_t *out);
  int (*source_partition)(sl_ctx_t *ctx, uint32_t partition);
  /* ABI 1.3 ends here. */
  const sl_aggregate_t *(*aggregate_find)(sl_ctx_t *ctx, const char *ref, const char **arg,
                                          char *errbuf, size_t errbuf_len);
  /* ABI 1.4 ends here. */
  int (*checkpoint_await)(sl_ctx_t *ctx, int (*fn)(void *arg, char *errbuf, size_t errbuf_len),
                          void *arg);
  /* ABI 1.5 ends here. */
  int (*checkpoint_commit_point)(sl_ctx_t *ctx, sl_commit_point_fn fn, void *arg);
  int (*input_pause)(sl_ctx_t *ctx);
  void (*input_resume)(sl_ctx_t *ctx);
  void (*source_wake)(sl_ctx_t *ctx);
  /* ABI 1.6 ends here. */
  sl_counter_t *(*gauge)(sl_ctx_t *ctx, const char *name);
  int (*source_partition_release)(sl_ctx_t *ctx, uint32_t partition);
  int (*json_validate)(const void *json, size_t len, char *why, size_t why_len);
  int (*record_failed)(sl_ctx_t *ctx, const sl_record_t *rec, const char *why);
  /* ABI 1.7 ends here. */
} sl_host_api_t;

/**
 * The public head of every context: the host places its function table
 * first so that the inline wrappers can find it. Opaque otherwise.
 */
typedef struct sl_ctx_head {
  const sl_host_api_t *host;
} sl_ctx_head_t;

#define SL__HOST(ctx) (((const sl_ctx_head_t *)(const void *)(ctx))->host)

/* ------------------------------------------------------- SDK functions */

/**
 * Emit a record to an output port (SL_PORT_DEFAULT or an id from sl_port()).
 * The host copies the record or hands it to the next chained operator before
 * returning. Callable from process, poll and on_end. Returns 0, or
 * SL_ENOPORT for a port the operator never declared (the job then fails
 * with a message naming the node and the port).
 */
static inline int sl_emit_to(sl_ctx_t *ctx, int port, const sl_record_t *rec) {
  return SL__HOST(ctx)->emit(ctx, port, rec);
}

/** Emit a record to the default output. */
static inline int sl_emit(sl_ctx_t *ctx, const sl_record_t *rec) {
  return SL__HOST(ctx)->emit(ctx, SL_PORT_DEFAULT, rec);
}

/**
 * The id of a named output port (declared in sl_operator_t.outputs, or
 * "errors", which every node has), or SL_ENOPORT. Look ports up in open(),
 * not per record.
 */
static inline int sl_port(sl_ctx_t *ctx, const char *name) {
  return SL__HOST(ctx)->port(ctx, name);
}

/** Sources: how many records poll() may emit in this call (at least 1). */
static inline uint32_t sl_budget(sl_ctx_t *ctx) { return SL__HOST(ctx)->budget(ctx); }

/** Log a message, tagged with the node and task. */
static inline void sl_log(sl_ctx_t *ctx, sl_log_level_t level, const char *fmt, ...)
    SL_PRINTF(3, 4);
static inline void sl_log(sl_ctx_t *ctx, sl_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  SL__HOST(ctx)->logv(ctx, level, fmt, ap);
  va_end(ap);
}

/**
 * Describe why the current record failed, before process() returns a
 * negative code. The host adds the node, plugin and record offset.
 */
static inline void sl_set_error(sl_ctx_t *ctx, const char *fmt, ...) SL_PRINTF(2, 3);
static inline void sl_set_error(sl_ctx_t *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  SL__HOST(ctx)->set_error(ctx, fmt, ap);
  va_end(ap);
}

/**
 * The operator cannot go on at all (its output file is gone, a disk is full):
 * fail the job now, whatever the node's on_error says, with this message
 * (the host adds node and plugin). Unlike sl_set_error, which is about one
 * record, nothing more is processed after this. Return a negative code from
 * the callback afterwards.
 */
static inline void sl_fail(sl_ctx_t *ctx, const char *fmt, ...) SL_PRINTF(2, 3);
static inline void sl_fail(sl_ctx_t *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  SL__HOST(ctx)->failv(ctx, fmt, ap);
  va_end(ap);
}

/**
 * A named counter of this operator instance, created on first use. Call in
 * open(); the pointer stays valid until close(). Reported in the run summary
 * (and as metrics).
 */
static inline sl_counter_t *sl_counter(sl_ctx_t *ctx, const char *name) {
  return SL__HOST(ctx)->counter(ctx, name);
}

/**
 * 1.7: a named gauge of this operator instance: a figure that goes up and
 * down (a consumer's lag, a queue's length), set with sl_gauge_set().
 * Created on first use, like sl_counter(); counters and gauges share one
 * namespace. The run summary and metrics show the sum over the node's
 * instances.
 */
static inline sl_counter_t *sl_gauge(sl_ctx_t *ctx, const char *name) {
  return SL__HOST(ctx)->gauge(ctx, name);
}

/** 1.7: set a gauge. Only the owning task writes it. */
static inline void sl_gauge_set(sl_counter_t *g, uint64_t v) {
  __atomic_store_n(&g->value, v, __ATOMIC_RELAXED);
}

/** Add to a counter. Only the owning task writes it: no atomic RMW needed. */
static inline void sl_counter_add(sl_counter_t *c, uint64_t n) {
  __atomic_store_n(&c->value, __atomic_load_n(&c->value, __ATOMIC_RELAXED) + n,
                   __ATOMIC_RELAXED);
}

/**
 * Configuration values, already validated and defaulted by the host.
 * Strings are owned by the host and live until close(). An undeclared key
 * reads as NULL / 0.
 */
static inline const char *sl_config_string(sl_ctx_t *ctx, const char *key) {
  return SL__HOST(ctx)->config_string(ctx, key);
}
static inline int64_t sl_config_int(sl_ctx_t *ctx, const char *key) {
  return SL__HOST(ctx)->config_int(ctx, key);
}
static inline double sl_config_double(sl_ctx_t *ctx, const char *key) {
  return SL__HOST(ctx)->config_double(ctx, key);
}
static inline int sl_config_bool(sl_ctx_t *ctx, const char *key) {
  return SL__HOST(ctx)->config_bool(ctx, key);
}
static inline int64_t sl_config_duration_ms(sl_ctx_t *ctx, const char *key) {
  return SL__HOST(ctx)->config_duration_ms(ctx, key);
}

/** The DAG node this instance belongs to. Owned by the host. */
static inline const char *sl_node_name(sl_ctx_t *ctx) { return SL__HOST(ctx)->node_name(ctx); }
/** This instance's index among the node's parallel tasks, from 0. */
static inline uint32_t sl_task_index(sl_ctx_t *ctx) { return SL__HOST(ctx)->task_index(ctx); }
/** The node's parallelism. */
static inline uint32_t sl_parallelism(sl_ctx_t *ctx) { return SL__HOST(ctx)->parallelism(ctx); }
/** Non-zero once the job is stopping (SIGINT/SIGTERM): sources should end. */
static inline int sl_stopping(sl_ctx_t *ctx) { return SL__HOST(ctx)->stopping(ctx); }
/** Wall-clock time in milliseconds since the Unix epoch. */
static inline int64_t sl_now_ms(sl_ctx_t *ctx) { return SL__HOST(ctx)->now_ms(ctx); }

/**
 * 1.7: is json[0..len) one JSON text (RFC 8259: grammar, escapes, UTF-8,
 * nothing after the value, nesting up to 512)? 0, or -1 with the reason and
 * the byte offset in why. Allocates nothing.
 */
static inline int sl_json_validate(sl_ctx_t *ctx, const void *json, size_t len, char *why,
                                   size_t why_len) {
  return SL__HOST(ctx)->json_validate(json, len, why, why_len);
}
/**
 * Find a top-level field of a JSON object without copying or allocating.
 * Returns 0 and fills *out when found; SL_ENOTFOUND when absent (out->type
 * is SL_JSON_NONE); SL_ERECORD when the text is not a JSON object.
 */
static inline int sl_json_get(sl_ctx_t *ctx, const void *json, size_t len, const char *field,
                              sl_json_value_t *out) {
  return SL__HOST(ctx)->json_get(json, len, field, out);
}

/**
 * 1.1: the ARG of `use: SCHEME:ARG` (see sl_operator_t.scheme), as a path
 * joined to the DAG file's directory; NULL for operators without a scheme.
 * Owned by the host, valid until close().
 */
static inline const char *sl_operator_arg(sl_ctx_t *ctx) { return SL__HOST(ctx)->operator_arg(ctx); }
/** 1.1: the directory of the DAG file. Owned by the host. */
static inline const char *sl_dag_dir(sl_ctx_t *ctx) { return SL__HOST(ctx)->dag_dir(ctx); }
/** 1.1: number of `config:` entries of the node (declared ones with defaults included). */
static inline size_t sl_config_count(sl_ctx_t *ctx) { return SL__HOST(ctx)->config_count(ctx); }
/** 1.1: entry i (0 <= i < sl_config_count()); 0, or SL_EINVAL out of range. */
static inline int sl_config_at(sl_ctx_t *ctx, size_t i, sl_config_entry_t *out) {
  return SL__HOST(ctx)->config_at(ctx, i, out);
}

/* ------------------------------------------------ Keyed state (1.2) */

/*
 * Keyed state belongs to a node whose input is partitioned with `key_by`.
 * It is scoped to the current key: the key of the record being processed
 * (and, with timers, the key of the timer firing). Declare each state once,
 * in open(), by name; the name identifies it in checkpoints and savepoints,
 * so keep it stable across versions of the operator. The host saves and
 * restores it, laid out by key group so that it follows its keys when the
 * node's parallelism changes.
 *
 * Values are byte strings. A value read (sl_bytes_t) is owned by the host
 * and valid until the next state call of this instance or the end of the
 * callback, whichever comes first: copy what you keep.
 *
 * TTL: with ttl_ms > 0 an entry expires ttl_ms of processing time after it
 * was last written; an expired entry reads as absent and is dropped from
 * checkpoints. 0 = never expires.
 *
 * The state calls work inside process()/process_batch() and on_timer() (a
 * current key exists); elsewhere they return SL_ESTATE. All return 0, SL_ENOTFOUND
 * (nothing for this key), or a negative error.
 */

/**
 * Declare a keyed state (in open() only). Returns a handle valid until
 * close(), or NULL: the node has no `key_by`, the name is empty or was
 * declared with another kind, or this is not open(). The job then fails
 * to start with a message naming the node (fail open() when NULL).
 */
static inline sl_state_t *sl_state_declare(sl_ctx_t *ctx, const char *name, sl_state_kind_t kind,
                                           int64_t ttl_ms) {
  return SL__HOST(ctx)->state_declare(ctx, name, kind, ttl_ms);
}
/** Value state: the current key's value. */
static inline int sl_state_get(sl_ctx_t *ctx, sl_state_t *st, sl_bytes_t *out) {
  return SL__HOST(ctx)->state_get(ctx, st, out);
}
/** Value state: set the current key's value (copied). */
static inline int sl_state_put(sl_ctx_t *ctx, sl_state_t *st, const void *value, size_t len) {
  return SL__HOST(ctx)->state_put(ctx, st, value, len);
}
/** Any kind: remove the current key's entry (value, whole list or whole map). */
static inline int sl_state_clear(sl_ctx_t *ctx, sl_state_t *st) {
  return SL__HOST(ctx)->state_clear(ctx, st);
}
/** List state: append a value (copied) at the end. */
static inline int sl_state_list_append(sl_ctx_t *ctx, sl_state_t *st, const void *value,
                                       size_t len) {
  return SL__HOST(ctx)->state_list_append(ctx, st, value, len);
}
/** List state: number of values (0 when absent). */
static inline int sl_state_list_count(sl_ctx_t *ctx, sl_state_t *st, size_t *out) {
  return SL__HOST(ctx)->state_list_count(ctx, st, out);
}
/** List state: value i, oldest first; SL_ENOTFOUND past the end. */
static inline int sl_state_list_get(sl_ctx_t *ctx, sl_state_t *st, size_t i, sl_bytes_t *out) {
  return SL__HOST(ctx)->state_list_get(ctx, st, i, out);
}
/** List state: drop the n oldest values (all of them when n >= count). */
static inline int sl_state_list_trim_front(sl_ctx_t *ctx, sl_state_t *st, size_t n) {
  return SL__HOST(ctx)->state_list_trim_front(ctx, st, n);
}
/** Map state: the value under mkey. */
static inline int sl_state_map_get(sl_ctx_t *ctx, sl_state_t *st, const void *mkey,
                                   size_t mkey_len, sl_bytes_t *out) {
  return SL__HOST(ctx)->state_map_get(ctx, st, mkey, mkey_len, out);
}
/** Map state: set mkey to value (both copied). */
static inline int sl_state_map_put(sl_ctx_t *ctx, sl_state_t *st, const void *mkey,
                                   size_t mkey_len, const void *value, size_t len) {
  return SL__HOST(ctx)->state_map_put(ctx, st, mkey, mkey_len, value, len);
}
/** Map state: remove mkey (SL_ENOTFOUND when absent). */
static inline int sl_state_map_remove(sl_ctx_t *ctx, sl_state_t *st, const void *mkey,
                                      size_t mkey_len) {
  return SL__HOST(ctx)->state_map_remove(ctx, st, mkey, mkey_len);
}
/**
 * Map state: iterate. Set *cursor = 0, then call until it returns SL_DONE;
 * each 0 return gives one entry (in no particular order). Do not modify the
 * map between calls of one iteration.
 */
static inline int sl_state_map_next(sl_ctx_t *ctx, sl_state_t *st, size_t *cursor,
                                    sl_bytes_t *mkey, sl_bytes_t *value) {
  return SL__HOST(ctx)->state_map_next(ctx, st, cursor, mkey, value);
}

/* ------------------------------------ Operator state, checkpoints (1.2) */

/**
 * Operator (non-keyed) state of this instance: a named byte string, for
 * what belongs to the instance rather than to a key (a source's position, a
 * sink's pending transaction). Put it in snapshot(); the host stores it in
 * the checkpoint. Returns 0 or a negative error.
 */
static inline int sl_op_state_put(sl_ctx_t *ctx, const char *name, const void *value, size_t len) {
  return SL__HOST(ctx)->op_state_put(ctx, name, value, len);
}
/**
 * The value `name` had in the checkpoint the job resumed from (read it in
 * open()). SL_ENOTFOUND on a fresh start or when it was never put. Owned by
 * the host, valid until open() returns.
 */
static inline int sl_op_state_get(sl_ctx_t *ctx, const char *name, sl_bytes_t *out) {
  return SL__HOST(ctx)->op_state_get(ctx, name, out);
}
/**
 * Id of the checkpoint the job resumed from, 0 on a fresh start. That
 * checkpoint is complete: in open(), a two-phase-commit sink commits what
 * its restored state says it prepared for it (again, idempotently) and
 * discards whatever it prepared later (work of a checkpoint that never
 * completed, which will be replayed).
 */
static inline uint64_t sl_checkpoint_restored(sl_ctx_t *ctx) {
  return SL__HOST(ctx)->checkpoint_restored(ctx);
}
/**
 * The job's checkpoint interval in milliseconds, 0 when checkpoints are
 * off. A transactional sink writes through directly when they are off
 * (nothing would ever commit otherwise).
 */
static inline int64_t sl_checkpoint_interval_ms(sl_ctx_t *ctx) {
  return SL__HOST(ctx)->checkpoint_interval_ms(ctx);
}

/**
 * In snapshot(): hand an open file descriptor (a file or a directory) to
 * the host, which fsyncs and closes it on the checkpoint thread before the
 * checkpoint can complete, so that a sink's prepare does not block its task
 * on the disk. The descriptor belongs to the host from this call on (also
 * when it fails). If the fsync fails, the checkpoint fails (the job goes
 * on). Returns 0, or SL_ESTATE outside snapshot() (the fd is closed).
 */
static inline int sl_checkpoint_sync_fd(sl_ctx_t *ctx, int fd) {
  return SL__HOST(ctx)->checkpoint_sync_fd(ctx, fd);
}

/* ------------------------------------------ Event time and timers (1.3) */

/*
 * Timers belong to a key, like keyed state: they need `key_by` on the node,
 * and are set while a key is current (in process(), process_batch() or
 * on_timer()). A timer is identified by (key, domain, ts): setting the same
 * one twice leaves one timer. Timers are part of checkpoints and follow their
 * keys when the node's parallelism changes. At the end of input the final
 * watermark (SL_TS_MAX) fires every event-time timer; processing-time timers
 * still pending then are dropped (they belong to a wall-clock future the job
 * will not see).
 */

/**
 * Set a timer for the current key: on_timer(domain, ts) is called once when
 * it is due (an event-time timer already due fires at the next watermark).
 * Returns 0; SL_ESTATE without a current key or without `key_by`; SL_EINVAL
 * for a bad domain; SL_ENOMEM.
 */
static inline int sl_timer_set(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts) {
  return SL__HOST(ctx)->timer_set(ctx, domain, ts);
}
/** Delete a timer of the current key. 0, SL_ENOTFOUND, SL_ESTATE, SL_EINVAL. */
static inline int sl_timer_delete(sl_ctx_t *ctx, sl_time_domain_t domain, int64_t ts) {
  return SL__HOST(ctx)->timer_delete(ctx, domain, ts);
}
/**
 * The operator's current input watermark: no record with a ts at or below
 * it is expected any more (one that comes anyway is late). SL_TS_MIN before the
 * first watermark, SL_TS_MAX after the end of input. In a source, the
 * watermark it generated last.
 */
static inline int64_t sl_watermark(sl_ctx_t *ctx) { return SL__HOST(ctx)->watermark(ctx); }
/**
 * The current key (the record's, or the firing timer's). Owned by the host,
 * valid until the callback returns. 0, or SL_ESTATE when no key is current.
 */
static inline int sl_current_key(sl_ctx_t *ctx, sl_bytes_t *out) {
  return SL__HOST(ctx)->current_key(ctx, out);
}
/**
 * Sources: the records emitted from now on come from `partition` (a Kafka
 * partition, a file, a split). With `event_time` set on the node, the host
 * tracks a watermark per partition and the source's watermark is the
 * minimum over the partitions that are not idle. Without this call every
 * record belongs to partition 0. Returns 0, or SL_ESTATE outside a source.
 */
static inline int sl_source_partition(sl_ctx_t *ctx, uint32_t partition) {
  return SL__HOST(ctx)->source_partition(ctx, partition);
}
/**
 * 1.7, sources: the source no longer reads `partition` (a Kafka rebalance
 * gave it to another reader). Its watermark stops holding the source's
 * back, as if it were idle, until a record of it is emitted again. Returns
 * 0, or SL_ESTATE outside a source.
 */
static inline int sl_source_partition_release(sl_ctx_t *ctx, uint32_t partition) {
  return SL__HOST(ctx)->source_partition_release(ctx, partition);
}
/**
 * 1.7: this record cannot go on (a source read a value that is not in the
 * promised format, say): the node's `on_error` decides, as for a record
 * process() refused: `fail` fails the job naming the record's offset and
 * `why`, `skip` counts it, `dead_letter` sends it to the node's `errors`
 * port with `why`. Returns 0 when the job goes on, or SL_ESTATE when it
 * failed (stop, as after any failure). For a processor, returning an error
 * from process() after sl_error() does the same.
 */
static inline int sl_record_failed(sl_ctx_t *ctx, const sl_record_t *rec, const char *why) {
  return SL__HOST(ctx)->record_failed(ctx, rec, why);
}

/* ------------------------------------------ Checkpoint completion (1.5) */

/**
 * 1.5, in snapshot() only: before this checkpoint can complete, the host
 * calls fn(arg, errbuf, errbuf_len) on its checkpoint thread, once every
 * task has acknowledged the checkpoint. fn may block (it is not a worker):
 * a sink waits there for what it sent before the barrier to be
 * acknowledged (Kafka deliveries, say), so that the checkpoint never
 * completes ahead of its output. Return 0, or -1 with a message in errbuf:
 * the checkpoint then fails (the job goes on; the previous checkpoint stays
 * the one to recover from). If the checkpoint is abandoned before it
 * completes, fn is called before the next one completes instead. fn runs
 * concurrently with the operator's other callbacks: it must only touch
 * what is safe from another thread. Returns 0, or SL_ESTATE outside
 * snapshot().
 */
static inline int sl_checkpoint_await(sl_ctx_t *ctx,
                                      int (*fn)(void *arg, char *errbuf, size_t errbuf_len),
                                      void *arg) {
  return SL__HOST(ctx)->checkpoint_await(ctx, fn, arg);
}

/* ------------------------------------- External commit points (1.6) */

/*
 * A sink whose output system cannot resume another process's prepared
 * transaction (Kafka through librdkafka) cannot take part in the usual
 * two-phase commit: a transaction prepared at the barrier would be lost if
 * the process died before commit(). Such a sink makes its own commit the
 * commit point of the checkpoint instead:
 *
 * 1. snapshot(N) registers fn with sl_checkpoint_commit_point();
 * 2. the checkpoint thread writes checkpoint N in full (files and manifest,
 *    fsynced) without marking it complete, then calls fn(arg, N, 1, ...):
 *    fn commits the external transaction (it may block: it is not a
 *    worker);
 * 3. only when fn returned 0 is N marked complete (its MANIFEST renamed).
 *    If fn fails, the job fails and N stays written-but-unmarked;
 * 4. a job that starts and finds such a checkpoint asks the operator's
 *    resolve() whether it took effect, and resumes from it or from the one
 *    before accordingly.
 *
 * If checkpoint N fails or is abandoned before its commit point (a disk
 * error, a task that finished first), fn is called once with commit = 0
 * instead: keep the transaction open; a later checkpoint commits it.
 * Every registration is called exactly once: on the checkpoint thread
 * (the main thread for the final checkpoint), or for commit = 0 possibly
 * on a task's thread. Several operators of one job
 * may register, but their commits are not atomic together: a job should
 * have one operator (any parallelism) that commits externally.
 */
/**
 * 1.6, in snapshot() only: make fn the commit point of this checkpoint
 * (see above). fn returns 0 when committed, or -1 with a message in
 * errbuf. Returns 0, or SL_ESTATE outside snapshot().
 */
static inline int sl_checkpoint_commit_point(sl_ctx_t *ctx, sl_commit_point_fn fn, void *arg) {
  return SL__HOST(ctx)->checkpoint_commit_point(ctx, fn, arg);
}

/**
 * 1.6: the task running this operator takes no more input (records,
 * watermarks, barriers) until sl_input_resume(): backpressure without
 * blocking the worker. Upstream tasks fill their channels and then wait
 * (an operator chained behind a source stops the source's polling).
 * Returns 0, or SL_ESTATE in a source itself. Pausing twice is pausing once.
 */
static inline int sl_input_pause(sl_ctx_t *ctx) { return SL__HOST(ctx)->input_pause(ctx); }
/**
 * 1.6: undo sl_input_pause(). Safe from any thread (a delivery callback,
 * a commit point): the task's worker is woken.
 */
static inline void sl_input_resume(sl_ctx_t *ctx) { SL__HOST(ctx)->input_resume(ctx); }

/**
 * 1.6, sources: poll again now rather than after the retry delay. After
 * poll() returned SL_AGAIN the host polls again after about 1 ms; a source
 * whose data arrives on another thread (a client library's callback) calls
 * this from that thread when there is something to read, so it is read at
 * once. Safe from any thread; harmless at any time.
 */
static inline void sl_source_wake(sl_ctx_t *ctx) { SL__HOST(ctx)->source_wake(ctx); }

/* ------------------------------------------ Aggregate functions (1.4) */

/**
 * Find a user-defined aggregate function (sl_aggregate_t) by reference, as
 * a DAG names it:
 *  - "NAME"        the function NAME of any plugin on the search path
 *                  (an error if two plugins have one);
 *  - "PLUGIN:NAME" function NAME of the plugin named PLUGIN;
 *  - "PATH.so:NAME" function NAME of that file (relative to the DAG file);
 *  - "SCHEME:ARG"  the function declaring SCHEME (the Lua host declares
 *                  "lua": "lua:median.lua"); *arg gets ARG joined to the
 *                  DAG file's directory (owned by the host until close).
 * *arg is NULL for the other forms. Callable from open() only. Returns the
 * descriptor (call its open, if any, to make an instance), or NULL with a
 * message in errbuf.
 */
static inline const sl_aggregate_t *sl_aggregate_find(sl_ctx_t *ctx, const char *ref,
                                                      const char **arg, char *errbuf,
                                                      size_t errbuf_len) {
  return SL__HOST(ctx)->aggregate_find(ctx, ref, arg, errbuf, errbuf_len);
}

/** Text of an SDK code (negative error or flow-control code). Static storage. */
static inline const char *sl_strerror(sl_ctx_t *ctx, int code) {
  return SL__HOST(ctx)->strerror(code);
}

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
