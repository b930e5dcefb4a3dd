/*
 * plan.h - the physical plan: what runs.
 *
 * A validated DAG becomes tasks. A node with parallelism p has p instances
 * (sl_op_instance_t). Forward edges between nodes of equal parallelism, where
 * the downstream node has that one input, are chained: the downstream
 * instance lives in the same task and is called directly, no channel. Every
 * other edge is a set of channels between the producer's tasks and the
 * consumer's tasks: forward (i -> i), rebalance (round robin), broadcast
 * (to all) or key_by (key -> key group -> task).
 *
 * Each task is pinned to one worker thread; all the operator instances of a
 * task run on it, one call at a time.
 */
#ifndef SL_PLAN_H
#define SL_PLAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "channel.h"
#include "dag.h"
#include "diag.h"
#include "registry.h"
#include "sluice.h"

typedef enum sl_edge_kind {
  SL_EDGE_CHAINED = 0, /* direct call inside one task */
  SL_EDGE_FORWARD,
  SL_EDGE_REBALANCE,
  SL_EDGE_BROADCAST,
  SL_EDGE_KEY_BY
} sl_edge_kind_t;

const char *sl_edge_kind_name(sl_edge_kind_t k);

struct sl_task;
struct sl_job;
struct sl_op_instance;

/* One consumer of an output port: a chained instance, or channels to tasks. */
typedef struct sl_out_target {
  sl_edge_kind_t kind;
  struct sl_op_instance *chained; /* SL_EDGE_CHAINED */
  uint32_t channel_count;          /* one per consumer task (forward: 1) */
  sl_channel_t **channels;
  sl_batch_t **filling;            /* per channel: the batch being filled, or NULL */
  uint32_t next_rr;                /* rebalance cursor */
  const char *key_field;           /* key_by: JSON field, or NULL for "$key" */
  uint32_t max_key_groups;
  uint32_t consumer_parallelism;   /* key group -> task mapping */
} sl_out_target_t;

typedef struct sl_out_port {
  char *name; /* "" for the default port */
  sl_out_target_t *targets;
  uint32_t target_count;
} sl_out_port_t;

/* Named counters per operator instance (sl_counter). */
#define SL_MAX_COUNTERS 256

/* A named counter of an operator instance. */
typedef struct sl_named_counter {
  char *name;
  bool is_gauge; /* sl_gauge: set, not added to */
  sl_counter_t counter;
} sl_named_counter_t;

/* Figures of one instance: written by its task's thread only (relaxed). */
typedef struct sl_op_stats {
  _Atomic uint64_t records_in;
  _Atomic uint64_t records_out;
  _Atomic uint64_t errors_skipped;
  _Atomic uint64_t errors_dead_lettered;
} sl_op_stats_t;

/*
 * One operator instance. Its address is the sl_ctx_t the plugin sees: the
 * head (the host function table) must stay the first member.
 */
/* A function an operator handed over in snapshot() (sl_checkpoint_await). */
typedef struct sl_ckpt_await {
  int (*fn)(void *arg, char *errbuf, size_t errbuf_len);
  void *arg;
} sl_ckpt_await_t;

/* A commit point an operator registered in snapshot() (sl_checkpoint_commit_point). */
typedef struct sl_ckpt_commit_point {
  sl_commit_point_fn fn;
  void *arg;
} sl_ckpt_commit_point_t;

typedef struct sl_op_instance {
  sl_ctx_head_t head;
  struct sl_task *task;
  struct sl_job *job;
  const sl_dag_node_t *node;
  uint32_t node_index;
  const sl_operator_t *op;
  const sl_plugin_handle_t *plugin;
  /* op->process_batch when the plugin's descriptor has it (1.1+), else NULL */
  int (*process_batch)(sl_ctx_t *ctx, void *state, const sl_record_t *recs, size_t n);
  uint32_t subtask;     /* index among the node's instances */
  uint32_t parallelism; /* the node's parallelism */
  void *state;          /* the plugin's instance */
  bool opened;
  bool ended; /* on_end called */
  sl_out_port_t *ports; /* [0] default, then declared outputs, then "errors" */
  uint32_t port_count;
  int errors_port;
  sl_named_counter_t **counters;
  uint32_t counter_count;
  const sl_record_t *current; /* the input record being processed */
  char error[512];            /* set by sl_set_error for the current record */
  bool error_set;
  bool warned_budget; /* logged once: a poll/on_end call emitted more than its budget */
  bool warned_counters;
  sl_counter_t overflow_counter; /* what sl_counter returns past SL_MAX_COUNTERS names */
  sl_op_stats_t stats;
  /* Checkpointing (see checkpoint.h). */
  struct sl_keyed_state *ks;      /* keyed state, created on first use; NULL = none */
  const sl_record_t *ks_rec;      /* the record whose key ks currently has */
  struct sl_op_state *op_state;   /* named byte strings (sl_op_state_put), restored or put */
  bool in_open;                   /* sl_state_declare is allowed */
  bool ks_ttl;                    /* a declared state has a TTL: keep ks's clock current */
  bool in_snapshot;               /* snapshot() is running: sl_checkpoint_sync_fd allowed */
  int *sync_fds;                  /* handed over in snapshot(), fsynced by the checkpoint thread */
  uint32_t sync_fd_count;
  sl_ckpt_await_t *awaits;     /* sl_checkpoint_await: called by the checkpoint thread */
  uint32_t await_count;
  sl_ckpt_commit_point_t *commit_points; /* sl_checkpoint_commit_point, during snapshot():
                                            then moved into the checkpoint's part */
  uint32_t commit_point_count;
  _Atomic bool input_paused; /* sl_input_pause: counted once in task->input_pauses */
  /* Event time (task.c "Watermarks", host_time.c). */
  int64_t wm;                     /* this instance's input watermark */
  struct sl_timers *timers;       /* its timers, created on first use; NULL = none */
  sl_state_t *timer_state;        /* the internal keyed state that persists them */
  struct sl_wm_gen *wm_gen;       /* a source with `event_time`: its watermark generator */
  /* Aggregate functions (host_api.c): the ARGs sl_aggregate_find handed out. */
  char **agg_args;
  uint32_t agg_arg_count;
} sl_op_instance_t;

/* An input channel of a task and whether its END has arrived. */
typedef struct sl_task_input {
  sl_channel_t *channel;
  bool ended;
  uint64_t barrier; /* id of the barrier that arrived and holds this input (aligning), 0 = none */
  int64_t wm;       /* the producer's watermark as last received */
  bool idle;        /* the producer said it is idle, and sent no data since */
} sl_task_input_t;

/* An output channel of a task, with batches that could not be pushed yet. */
typedef struct sl_task_output {
  sl_channel_t *channel;
  sl_batch_t *pending_head; /* FIFO of sealed batches waiting for credit */
  sl_batch_t *pending_tail;
  int64_t wm_sent;  /* watermark of the last batch sealed for this channel */
  bool idle_sent;   /* an idle marker went out and no data since */
} sl_task_output_t;

typedef enum sl_task_phase {
  SL_TASK_RUNNING = 0,
  SL_TASK_ENDING, /* END queued on every output; waiting for pending batches to drain */
  SL_TASK_FINISHED
} sl_task_phase_t;

typedef struct sl_task {
  uint32_t id;
  struct sl_worker *worker;
  struct sl_job *job;
  sl_op_instance_t **ops; /* ops[0] is the head; the rest in topological order */
  uint32_t op_count;
  sl_task_input_t *inputs;
  uint32_t input_count;
  uint32_t inputs_ended;
  uint32_t next_input;
  sl_task_output_t *outputs;
  uint32_t output_count;
  sl_task_phase_t phase;
  bool is_source;
  bool ending; /* end of input reached; on_end calls in progress (see task_end) */
  uint64_t retry_at_ns; /* a source that returned SL_AGAIN is polled again after this */
  uint32_t pending_batches;
  uint32_t max_pending_batches; /* peak of pending_batches: what backpressure let pile up */
  /* Figures (written by the task's thread, read by the summary/metrics). */
  _Atomic uint64_t backpressure_ns; /* time the task had input but no credit */
  uint64_t blocked_since_ns;
  bool bp_signalled;            /* a source told backpressure(1), not yet (0) */
  _Atomic uint64_t bp_signals;  /* how many times it was told backpressure(1) */
  /* Checkpoints: written by the task's thread. */
  uint64_t ckpt_done;      /* last checkpoint this task snapshotted */
  uint64_t ckpt_committed; /* last completed checkpoint its operators were told of */
  uint64_t aligning;       /* barrier id being aligned, 0 = none */
  uint64_t align_start_ns;
  _Atomic uint64_t align_ns; /* total time inputs were held for alignment */
  _Atomic uint32_t input_pauses; /* operators that paused the task's input (sl_input_pause) */
  _Atomic bool source_woken;     /* sl_source_wake: poll now, not at retry_at_ns */
  /* Event time: written by the task's thread (see "Watermarks" in task.c). */
  int64_t wm_out;     /* watermark the task's outputs carry (its timers have fired) */
  int64_t wm_target;  /* watermark being applied through the chain; > wm_out while firing */
  uint32_t fire_op;   /* chain index that wm_target has reached */
  bool idle_out;      /* the task is idle: its outputs carry idle markers */
  int64_t proc_due_ms; /* earliest processing-time timer of its operators, SL_TS_MAX = none */
  _Atomic int64_t wm_seen; /* wm_out, readable by other threads (metrics) */
} sl_task_t;

/* A directed edge of the plan between two nodes (for `sluice graph`). */
typedef struct sl_plan_edge {
  uint32_t from_node;
  char *from_port; /* NULL = default */
  uint32_t to_node;
  sl_edge_kind_t kind;
} sl_plan_edge_t;

typedef struct sl_plan {
  const sl_dag_t *dag;
  sl_task_t **tasks;
  uint32_t task_count;
  sl_channel_t **channels;
  uint32_t channel_count;
  sl_plan_edge_t *edges;
  uint32_t edge_count;
  uint32_t *chain_root; /* per node: the node whose tasks host it */
  sl_op_instance_t ***instances; /* per node: its instances [parallelism] */
  uint32_t worker_count;
} sl_plan_t;

/**
 * Build the plan of a validated DAG (nodes resolved to operators). Plan-level
 * problems (e.g. dead_letter without a reader) go to diags; returns NULL when
 * there are any.
 */
sl_plan_t *sl_plan_build(const sl_dag_t *dag, sl_diag_list_t *diags);
void sl_plan_free(sl_plan_t *plan);
/** Graphviz DOT of the plan: tasks (with their chained operators) and edges. */
void sl_plan_write_dot(const sl_plan_t *plan, FILE *out);

#endif
