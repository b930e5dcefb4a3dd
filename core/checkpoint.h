/*
 * checkpoint.h - aligned checkpoints, their files, and recovery.
 *
 * Protocol (one checkpoint in flight at a time):
 *  1. The coordinator thread (checkpoint_coord.c) picks id N and publishes
 *     it in job->ckpt_trigger, waking the workers.
 *  2. Each source task, between two polls, snapshots its operators, sends a
 *     barrier N on every output channel, and acknowledges with its parts.
 *  3. A task with several inputs holds each input once its barrier N has
 *     arrived (alignment) until every input has delivered it (or ended),
 *     then does the same: snapshot, forward, acknowledge (task.c).
 *  4. When every task has acknowledged, the coordinator writes one file per
 *     operator instance, then the MANIFEST (checksums of every file) by
 *     write-fsync-rename-fsync (checkpoint_store.c). Only then is N complete:
 *     job->ckpt_completed = N, and each task calls its operators' commit().
 *  5. A bounded job ends with a final checkpoint, taken on the main thread
 *     once the workers have stopped: snapshot, write, commit.
 *
 * The snapshot of an instance on the task's thread is cheap: operator state
 * is a few small byte strings, keyed state is frozen copy-on-write
 * (state.h) and serialized later by the coordinator thread.
 */
#ifndef SL_CHECKPOINT_H
#define SL_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "state.h"
#include "util.h"

/* ------------------------------------------------------- operator state */

/* Named byte strings of one instance (sl_op_state_put / sl_op_state_get). */
typedef struct sl_op_state sl_op_state_t;

sl_op_state_t *sl_op_state_new(void);
void sl_op_state_free(sl_op_state_t *s);
int sl_op_state_set(sl_op_state_t *s, const char *name, const void *v, size_t len);
int sl_op_state_find(const sl_op_state_t *s, const char *name, sl_bytes_t *out);
/* Serialize (for a snapshot file) / parse back (-1 with a message when corrupt). */
void sl_op_state_write(const sl_op_state_t *s, sl_buf_t *out);
int sl_op_state_read(sl_op_state_t *s, const unsigned char *p, size_t len, char *err, size_t errlen);

/* ----------------------------------------------------------- snapshots */

/* What one instance contributes to a checkpoint. */
typedef struct sl_ckpt_part {
  sl_op_instance_t *inst;
  uint64_t id;                 /* the checkpoint */
  sl_buf_t op_state;           /* serialized operator state */
  sl_state_snapshot_t *keyed;  /* frozen keyed state, or NULL */
  sl_ckpt_commit_point_t *commit_points; /* registered in snapshot(), not yet called */
  uint32_t commit_point_count;
} sl_ckpt_part_t;

/**
 * Release the resources of parts (keyed snapshots, buffers). Commit points
 * not yet called are called with commit = 0 (the checkpoint was abandoned
 * or failed before its commit point).
 */
void sl_ckpt_parts_free(sl_ckpt_part_t *parts, uint32_t n);

/**
 * Call the commit points of parts (sl_checkpoint_commit_point) with
 * commit = 1, in order; after one fails, the rest with commit = 0. 0, or
 * -1 with the failure's message. Each commit point is called once.
 */
int sl_ckpt_run_commit_points(sl_ckpt_part_t *parts, uint32_t n, uint64_t id, char *err,
                              size_t errlen);

/**
 * Task thread: call snapshot() of every operator of the task (chain order)
 * and freeze their state into parts (task->op_count entries, allocated).
 * Returns 0, or -1 after failing the job.
 */
int sl_ckpt_snapshot_task(sl_task_t *t, uint64_t id, sl_ckpt_part_t **parts_out);

/* --------------------------------------------------------- coordinator */

typedef struct sl_ckpt_coord sl_ckpt_coord_t;

typedef struct sl_ckpt_stats {
  uint64_t completed;
  uint64_t failed;
  uint64_t last_id;
  uint64_t last_duration_ms;
  uint64_t last_bytes;
  uint64_t max_pause_ns; /* longest task-thread snapshot pause seen */
} sl_ckpt_stats_t;

/**
 * Prepare checkpointing for a job (settings.checkpoint_dir set): creates the
 * directory. The first id taken is job->restored_id + 1. 0, or -1 with a message.
 */
int sl_ckpt_init(sl_job_t *job, char *err, size_t errlen);
/** Start the periodic trigger thread (when an interval is set). */
int sl_ckpt_start(sl_job_t *job, char *err, size_t errlen);
/** Stop the thread; a checkpoint still in flight is abandoned. */
void sl_ckpt_stop(sl_job_t *job);
/**
 * Main thread, after a successful run: the final checkpoint (snapshot every
 * instance, write, commit). 0, or -1 with a message.
 */
int sl_ckpt_final(sl_job_t *job, char *err, size_t errlen);
/**
 * Any thread but a worker: take a savepoint into `target` (NULL = a new
 * directory under <checkpoint dir>/savepoints), waiting until it is written
 * or failed. With `stop`, the job then halts without draining (each task
 * stops once it has committed the savepoint). 0 with the savepoint's path in
 * out, or -1 with the reason.
 */
int sl_ckpt_savepoint(sl_job_t *job, const char *target, bool stop, char *out, size_t outlen);
/**
 * --fresh and --from: move every chk-* directory of root into a new
 * root/superseded-<ms>/ (its path in moved_to, "" when there was none), so
 * that a crash of the new run before its first checkpoint can never resume
 * from the old run's. 0, or -1 with a message.
 */
int sl_ckpt_supersede(const char *root, char *moved_to, size_t moved_len, char *err,
                      size_t errlen);
/** Copy a checkpoint directory (recursively) by hard links, falling back to copies. */
int sl_ckpt_link_copy(const char *src, const char *dst, char *err, size_t errlen);
/** Free the coordinator (after stop). */
void sl_ckpt_free(sl_job_t *job);
/** Task thread: acknowledge checkpoint id with its parts (ownership passes). */
void sl_ckpt_ack(sl_job_t *job, uint64_t id, sl_ckpt_part_t *parts, uint32_t n, uint64_t pause_ns);
/** Figures for the summary and metrics. */
void sl_ckpt_get_stats(sl_job_t *job, sl_ckpt_stats_t *out);

/* ------------------------------------------------------ files on disk */

/* A written file of a checkpoint, as the manifest lists it. */
typedef struct sl_ckpt_file {
  char *node;
  uint32_t subtask;
  char *name;     /* file name inside the checkpoint directory */
  uint64_t size;
  uint64_t hash;  /* XXH3-64 of the contents */
  unsigned char *data; /* loaded contents (when read back) */
} sl_ckpt_file_t;

typedef struct sl_ckpt_node {
  char *name;
  uint32_t parallelism;
  bool keyed;
} sl_ckpt_node_t;

typedef struct sl_ckpt_manifest {
  uint64_t id;
  char *kind; /* "checkpoint", "final", "savepoint" */
  char *job;
  uint32_t max_key_groups;
  int64_t created_ms;
  sl_ckpt_node_t *nodes;
  uint32_t node_count;
  sl_ckpt_file_t *files;
  uint32_t file_count;
  char *dir; /* the checkpoint's directory (when read back) */
} sl_ckpt_manifest_t;

void sl_ckpt_manifest_free(sl_ckpt_manifest_t *m);

/**
 * Write checkpoint `id` of a job into `root`: one file per part (keyed state
 * serialized here), then the manifest, atomically. On success fills *bytes
 * with the total size. -1 with a message (the partial directory is removed;
 * older checkpoints are untouched).
 *
 * With commit points (sl_checkpoint_commit_point), the manifest is written
 * and fsynced as MANIFEST.tmp, the commit points are called, and only then
 * is it renamed. If a commit point fails: SL_CKPT_UNDECIDED with its
 * message, and the directory stays as it is (written, not complete): the
 * next start asks the operators' resolve() (sl_ckpt_find_undecided).
 */
#define SL_CKPT_UNDECIDED 1
int sl_ckpt_write(sl_job_t *job, const char *root, uint64_t id, const char *kind,
                  sl_ckpt_part_t *parts, uint32_t n, uint64_t *bytes, char *err, size_t errlen);
/** Remove complete checkpoints beyond the newest `keep`, and incomplete ones older than `newest`. */
void sl_ckpt_prune(const char *root, uint32_t keep, uint64_t newest);
/**
 * Find the newest checkpoint in `root` that reads back whole (manifest
 * parses, every file present with its size and checksum). Damaged ones are
 * skipped with a warning that says why. Returns NULL when there is none
 * (no message in err) or on an error reading the directory (message).
 */
sl_ckpt_manifest_t *sl_ckpt_load_latest(const char *root, char *err, size_t errlen);
/** Read and verify one checkpoint directory. -1 with a message. */
int sl_ckpt_load_dir(const char *dir, sl_ckpt_manifest_t **out, char *err, size_t errlen);
/** Newest id present in root (complete or not), 0 when none. */
uint64_t sl_ckpt_newest_id(const char *root);
/**
 * The newest checkpoint newer than `newer_than` that was written in full but
 * never marked complete (a MANIFEST.tmp that reads back whole, no MANIFEST):
 * its commit point may or may not have taken effect. NULL when none.
 */
sl_ckpt_manifest_t *sl_ckpt_find_undecided(const char *root, uint64_t newer_than);
/**
 * At start-up: if a checkpoint newer than *latest is undecided, ask the
 * operators that commit externally (resolve()) whether it took effect; if
 * so it becomes complete and replaces *latest (freed). 0, or -1 with a
 * message (an operator could not tell, or they disagree).
 */
int sl_ckpt_resolve_undecided(sl_job_t *job, const char *root, sl_ckpt_manifest_t **latest,
                              char *err, size_t errlen);
/** Settle an undecided checkpoint: took_effect renames its MANIFEST.tmp to
 * MANIFEST (fsynced), otherwise removes it. 0, or -1 with a message. */
int sl_ckpt_settle_undecided(const sl_ckpt_manifest_t *m, bool took_effect, char *err, size_t errlen);

/* ------------------------------------------------------------ restore */

/**
 * Check that a checkpoint fits the plan (every node with state exists;
 * parallelism unchanged for nodes with operator state; keyed state only for
 * nodes with key_by; same max_key_groups) and load it into the instances:
 * operator state, keyed state for each instance's key groups. Call before
 * sl_job_open. -1 with a message naming the node.
 */
int sl_ckpt_restore(sl_job_t *job, const sl_ckpt_manifest_t *m, char *err, size_t errlen);

/** The keyed state of an instance, created on first use (NULL if the node has no key_by). */
struct sl_keyed_state *sl_instance_keyed_state(sl_op_instance_t *inst);

/* -------------------------------------------------------- fault points */

/**
 * Test hook: SLUICE_FAULT=phase:id (phase: barrier, snapshot, manifest,
 * decided, rename, commit) kills the process with SIGKILL when checkpoint
 * `id` reaches that phase. Costs one load when unset.
 */
void sl_fault_point(const char *phase, uint64_t id);
/**
 * Test hook: true when SLUICE_FAULT names this phase and checkpoint (phase
 * write-error: the checkpoint's writing fails as on a full disk, before any
 * commit point; the job goes on).
 */
bool sl_fault_error(const char *phase, uint64_t id);

#endif
