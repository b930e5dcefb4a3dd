/*
 * checkpoint_coord.c - the checkpoint coordinator: a thread that triggers a
 * checkpoint every interval, collects the acknowledgements of every task,
 * writes the checkpoint (serializing keyed state off the task threads),
 * marks it complete and tells the tasks to commit. Also the final
 * checkpoint at the end of a job. See checkpoint.h for the protocol.
 *
 * Failure of a checkpoint (disk full, say) does not stop the job: it is
 * logged, counted, its partial directory removed, the previous checkpoint
 * stays the one to recover from, and the next interval tries again (sinks
 * keep their prepared work and commit it with the next checkpoint that
 * completes).
 *
 * Once any task has finished (its input ended), periodic checkpoints stop:
 * a finished task cannot take part, so they could not complete. The final
 * checkpoint covers the end of the job.
 *
 * Savepoints (sl_ckpt_savepoint, asked for through the control socket) go
 * through the same protocol with kind "savepoint": the checkpoint is written
 * into the checkpoint directory as usual, then hard-linked into the savepoint
 * directory, which pruning never touches. Stop-with-savepoint then halts the
 * job without draining it: each task stops once it has committed the
 * savepoint (job->halt_at).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fs.h"
#include "log.h"

#define COORD_POLL_NS 100000000ull /* re-check finished tasks at least every 100 ms */

struct sl_ckpt_coord {
  sl_job_t *job;
  char *root;
  int64_t interval_ms;
  uint32_t keep;
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  uint64_t next_id;
  uint64_t pending;        /* id in flight, 0 = none */
  uint64_t pending_start_ns;
  uint32_t acks;
  sl_ckpt_part_t *parts;   /* acknowledged parts of `pending` */
  uint32_t part_count;
  uint64_t pending_pause_ns; /* longest task pause within `pending` */
  sl_ckpt_stats_t stats;
  /* A savepoint request (one at a time): set by sl_ckpt_savepoint, served by
   * the coordinator thread, answered through sp_done. */
  bool sp_requested;
  bool sp_stop;
  char *sp_target;     /* directory to create */
  uint64_t sp_id;      /* id of the pending savepoint, 0 = none */
  bool sp_finished;
  int sp_rc;
  char sp_msg[1024];   /* the savepoint's path, or why it failed */
  pthread_cond_t sp_done;
};

int sl_ckpt_init(sl_job_t *job, char *err, size_t errlen) {
  const sl_dag_settings_t *s = &job->dag->settings;
  if (!s->checkpoint_dir) return 0;
  if (sl_mkdir_p(s->checkpoint_dir, "checkpoint directory", err, errlen) != 0) return -1;
  sl_ckpt_coord_t *c = sl_xcalloc(1, sizeof(*c));
  c->job = job;
  c->root = sl_xstrdup(s->checkpoint_dir);
  c->interval_ms = s->checkpoint_interval_ms;
  c->keep = s->checkpoint_keep ? s->checkpoint_keep : 3;
  /* Ids only grow, also past checkpoints that never completed (their
   * directories may still exist until pruned). */
  uint64_t newest = sl_ckpt_newest_id(c->root);
  c->next_id = (newest > job->restored_id ? newest : job->restored_id) + 1;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  pthread_cond_init(&c->sp_done, NULL);
  job->ckpt = c;
  atomic_store(&job->ckpt_completed, job->restored_id);
  return 0;
}

/* Drop the checkpoint in flight (a task finished, or the job stops). Lock held. */
static void answer_savepoint(sl_ckpt_coord_t *c, int rc, const char *msg) {
  c->sp_finished = true;
  c->sp_rc = rc;
  snprintf(c->sp_msg, sizeof(c->sp_msg), "%s", msg);
  c->sp_id = 0;
  pthread_cond_broadcast(&c->sp_done);
}

static void abandon_pending(sl_ckpt_coord_t *c, const char *why) {
  if (c->sp_requested && !c->sp_id) { /* asked for but not started */
    c->sp_requested = false;
    char msg[256];
    snprintf(msg, sizeof(msg), "no savepoint: %s", why);
    answer_savepoint(c, -1, msg);
  }
  if (!c->pending) return;
  if (c->pending == c->sp_id) {
    char msg[256];
    snprintf(msg, sizeof(msg), "savepoint %" PRIu64 " abandoned: %s", c->pending, why);
    answer_savepoint(c, -1, msg);
  }
  sl_log_msg(SL_LOG_DEBUG, "checkpoints", "checkpoint %" PRIu64 " abandoned: %s", c->pending, why);
  sl_ckpt_parts_free(c->parts, c->part_count);
  c->parts = NULL;
  c->part_count = 0;
  c->pending = 0;
  c->acks = 0;
}

void sl_ckpt_ack(sl_job_t *job, uint64_t id, sl_ckpt_part_t *parts, uint32_t n, uint64_t pause_ns) {
  sl_ckpt_coord_t *c = job->ckpt;
  if (!c) {
    sl_ckpt_parts_free(parts, n);
    return;
  }
  pthread_mutex_lock(&c->mu);
  if (id != c->pending) { /* abandoned meanwhile */
    pthread_mutex_unlock(&c->mu);
    sl_ckpt_parts_free(parts, n);
    return;
  }
  c->parts = sl_xrealloc(c->parts, (c->part_count + n) * sizeof(sl_ckpt_part_t));
  memcpy(c->parts + c->part_count, parts, n * sizeof(sl_ckpt_part_t));
  c->part_count += n;
  free(parts); /* the array only: its contents moved */
  c->acks++;
  if (pause_ns > c->pending_pause_ns) c->pending_pause_ns = pause_ns;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/*
 * fsync and close the descriptors operators handed over in snapshot()
 * (sl_checkpoint_sync_fd): their prepared output must be durable before the
 * manifest makes the checkpoint complete. 0, or -1 with a message.
 */
static int sync_handed_fds(sl_ckpt_part_t *parts, uint32_t n, uint64_t id, char *err, size_t errlen) {
  int rc = 0;
  for (uint32_t i = 0; i < n; i++) {
    sl_op_instance_t *inst = parts[i].inst;
    for (uint32_t k = 0; k < inst->sync_fd_count; k++) {
      int fd = inst->sync_fds[k];
      /* Every descriptor is synced, also after a failure: what the sinks
       * prepared stays in their lists and is committed by a later checkpoint. */
      if (fsync(fd) != 0 && errno != EINVAL && rc == 0) {
        snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' task %u: fsync of a prepared file failed: %s",
                 id, inst->node->name, inst->subtask, strerror(errno));
        rc = -1;
      }
      close(fd);
    }
    inst->sync_fd_count = 0;
  }
  return rc;
}

/*
 * Call what operators handed over with sl_checkpoint_await() in snapshot():
 * a sink's output must be acknowledged before the checkpoint completes.
 * Every function is called, also after a failure (each is called once).
 * 0, or -1 with the first message.
 */
static int run_awaits(sl_ckpt_part_t *parts, uint32_t n, uint64_t id, char *err, size_t errlen) {
  int rc = 0;
  for (uint32_t i = 0; i < n; i++) {
    sl_op_instance_t *inst = parts[i].inst;
    for (uint32_t k = 0; k < inst->await_count; k++) {
      char msg[768] = "";
      if (inst->awaits[k].fn(inst->awaits[k].arg, msg, sizeof(msg)) != 0 && rc == 0) {
        snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' task %u: %s", id,
                 inst->node->name, inst->subtask, msg[0] ? msg : "its output was not acknowledged");
        rc = -1;
      }
    }
    inst->await_count = 0;
  }
  return rc;
}

/* Write the acknowledged checkpoint; lock held on entry and exit. */
static void complete_pending(sl_ckpt_coord_t *c) {
  uint64_t id = c->pending;
  sl_ckpt_part_t *parts = c->parts;
  uint32_t n = c->part_count;
  uint64_t started = c->pending_start_ns, pause = c->pending_pause_ns;
  c->parts = NULL;
  c->part_count = 0;
  pthread_mutex_unlock(&c->mu);

  char err[1024];
  uint64_t bytes = 0;
  bool savepoint = id == c->sp_id;
  int rc = sync_handed_fds(parts, n, id, err, sizeof(err));
  char await_err[1024];
  int await_rc = run_awaits(parts, n, id, rc == 0 ? err : await_err, sizeof(err));
  if (rc == 0) rc = await_rc;
  if (rc == 0)
    rc = sl_ckpt_write(c->job, c->root, id, savepoint ? "savepoint" : "checkpoint", parts, n,
                       &bytes, err, sizeof(err));
  sl_ckpt_parts_free(parts, n);
  uint64_t ms = (sl_mono_ns() - started) / 1000000;
  /* The checkpoint is complete once written; copying it into the savepoint
   * directory is a second step whose failure fails the savepoint only. */
  int sp_rc = -1;
  char sp_err[1024] = "";
  if (rc == 0 && savepoint) {
    char *src = sl_xasprintf("%s/chk-%012" PRIu64, c->root, id);
    sp_rc = sl_ckpt_link_copy(src, c->sp_target, sp_err, sizeof(sp_err));
    free(src);
    if (sp_rc == 0 && c->sp_stop) atomic_store(&c->job->halt_at, id); /* before completed */
  }
  if (rc == 0) {
    atomic_store(&c->job->ckpt_completed, id);
    sl_job_wake_all(c->job); /* tasks commit on their own threads */
    sl_ckpt_prune(c->root, c->keep, id);
    sl_log_msg(SL_LOG_DEBUG, "checkpoints", "checkpoint %" PRIu64 " complete: %" PRIu64
               " bytes in %" PRIu64 " ms", id, bytes, ms);
  } else if (rc == SL_CKPT_UNDECIDED) {
    /* A commit point failed: whether the external commit happened is
     * unknown here, and its transaction is gone either way. */
    sl_job_fail(c->job, "%s; the job stops, and its next start asks the external system whether "
                "checkpoint %" PRIu64 " took effect", err, id);
  } else {
    sl_log_msg(SL_LOG_ERROR, "checkpoints",
               "%s; the job goes on, the previous checkpoint stays the one to recover from", err);
  }

  pthread_mutex_lock(&c->mu);
  if (savepoint) {
    if (sp_rc == 0)
      sl_log_msg(SL_LOG_INFO, "checkpoints", "savepoint %" PRIu64 " written to %s%s", id,
                 c->sp_target, c->sp_stop ? "; the job stops" : "");
    else if (rc == 0)
      sl_log_msg(SL_LOG_ERROR, "checkpoints",
                 "savepoint %" PRIu64 ": %s (the checkpoint itself completed; the job goes on)",
                 id, sp_err);
    answer_savepoint(c, sp_rc, sp_rc == 0 ? c->sp_target : rc == 0 ? sp_err : err);
  }
  c->pending = 0;
  c->acks = 0;
  if (rc == 0) {
    c->stats.completed++;
    c->stats.last_id = id;
    c->stats.last_duration_ms = ms;
    c->stats.last_bytes = bytes;
    if (pause > c->stats.max_pause_ns) c->stats.max_pause_ns = pause;
  } else {
    c->stats.failed++;
  }
}

static void *coord_main(void *arg) {
  sl_ckpt_coord_t *c = arg;
  sl_job_t *job = c->job;
  /* Without an interval the thread only serves savepoints. */
  uint64_t interval_ns = c->interval_ms > 0 ? (uint64_t)c->interval_ms * 1000000ull : UINT64_MAX / 2;
  uint64_t next_at = sl_mono_ns() + interval_ns;
  pthread_mutex_lock(&c->mu);
  while (!c->stop) {
    uint64_t now = sl_mono_ns();
    bool finished = atomic_load(&job->tasks_finished) > 0;
    uint64_t wait_ns = COORD_POLL_NS;
    if (c->pending) {
      if (c->acks == job->plan->task_count) {
        complete_pending(c);
        continue;
      }
      if (finished) abandon_pending(c, "a task finished before acknowledging it");
    } else if (finished && c->sp_requested) {
      abandon_pending(c, "input has ended in part of the job");
    } else if (!finished && (now >= next_at || c->sp_requested)) {
      uint64_t id = c->next_id++;
      if (c->sp_requested) {
        c->sp_requested = false;
        c->sp_id = id;
      }
      c->pending = id;
      c->acks = 0;
      c->pending_pause_ns = 0;
      c->pending_start_ns = now;
      next_at = now + interval_ns;
      atomic_store(&job->ckpt_trigger, id);
      pthread_mutex_unlock(&c->mu);
      sl_job_wake_all(job);
      pthread_mutex_lock(&c->mu);
      continue;
    } else if (!finished && next_at - now < wait_ns) {
      wait_ns = next_at - now;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(wait_ns / 1000000000ull);
    dl.tv_nsec += (long)(wait_ns % 1000000000ull);
    if (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cv, &c->mu, &dl);
  }
  abandon_pending(c, "the job is stopping");
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int sl_ckpt_start(sl_job_t *job, char *err, size_t errlen) {
  sl_ckpt_coord_t *c = job->ckpt;
  if (!c) return 0;
  int e = pthread_create(&c->thread, NULL, coord_main, c);
  if (e) {
    snprintf(err, errlen, "cannot start the checkpoint thread: %s", strerror(e));
    return -1;
  }
  c->thread_started = true;
  return 0;
}

void sl_ckpt_stop(sl_job_t *job) {
  sl_ckpt_coord_t *c = job->ckpt;
  if (!c || !c->thread_started) return;
  pthread_mutex_lock(&c->mu);
  c->stop = true;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  c->thread_started = false;
}

int sl_ckpt_final(sl_job_t *job, char *err, size_t errlen) {
  sl_ckpt_coord_t *c = job->ckpt;
  if (!c) return 0;
  sl_plan_t *plan = job->plan;
  uint64_t id = c->next_id++;
  sl_ckpt_part_t *all = NULL;
  uint32_t n = 0;
  uint64_t t0 = sl_mono_ns();
  for (uint32_t t = 0; t < plan->task_count; t++) {
    sl_ckpt_part_t *parts;
    if (sl_ckpt_snapshot_task(plan->tasks[t], id, &parts) != 0) {
      snprintf(err, errlen, "final checkpoint %" PRIu64 ": %s", id, job->failure ? job->failure : "snapshot failed");
      sl_ckpt_parts_free(all, n);
      return -1;
    }
    all = sl_xrealloc(all, (n + plan->tasks[t]->op_count) * sizeof(sl_ckpt_part_t));
    memcpy(all + n, parts, plan->tasks[t]->op_count * sizeof(sl_ckpt_part_t));
    n += plan->tasks[t]->op_count;
    free(parts);
  }
  uint64_t bytes = 0;
  int rc = sync_handed_fds(all, n, id, err, errlen);
  char await_err[1024];
  int await_rc = run_awaits(all, n, id, rc == 0 ? err : await_err, rc == 0 ? errlen : sizeof(await_err));
  if (rc == 0) rc = await_rc;
  if (rc == 0) rc = sl_ckpt_write(job, c->root, id, "final", all, n, &bytes, err, errlen);
  sl_ckpt_parts_free(all, n);
  if (rc != 0) return -1;
  atomic_store(&job->ckpt_completed, id);
  sl_ckpt_prune(c->root, c->keep, id);
  /* Phase two, on this thread: the workers have stopped. */
  for (uint32_t t = 0; t < plan->task_count; t++) {
    sl_task_t *task = plan->tasks[t];
    for (uint32_t o = 0; o < task->op_count; o++) {
      sl_op_instance_t *inst = task->ops[o];
      if (!SL_OPERATOR_HAS(inst->op, commit) || !inst->op->commit) continue;
      inst->error_set = false;
      int crc = inst->op->commit((sl_ctx_t *)inst, inst->state, id);
      if (crc < 0) {
        snprintf(err, errlen, "node '%s' (operator '%s'), task %u: commit of checkpoint %" PRIu64
                 " failed: %s", inst->node->name, inst->op->name, inst->subtask, id,
                 inst->error_set ? inst->error : (job->failure ? job->failure : sl_error_text(crc)));
        return -1;
      }
    }
    task->ckpt_committed = id;
  }
  sl_fault_point("commit", id);
  pthread_mutex_lock(&c->mu);
  c->stats.completed++;
  c->stats.last_id = id;
  c->stats.last_bytes = bytes;
  c->stats.last_duration_ms = (sl_mono_ns() - t0) / 1000000;
  pthread_mutex_unlock(&c->mu);
  sl_log_msg(SL_LOG_INFO, "checkpoints", "final checkpoint %" PRIu64 " written (%" PRIu64 " bytes)",
             id, bytes);
  return 0;
}

void sl_ckpt_free(sl_job_t *job) {
  sl_ckpt_coord_t *c = job->ckpt;
  if (!c) return;
  sl_ckpt_stop(job);
  sl_ckpt_parts_free(c->parts, c->part_count);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  pthread_cond_destroy(&c->sp_done);
  free(c->sp_target);
  free(c->root);
  free(c);
  job->ckpt = NULL;
}

void sl_ckpt_get_stats(sl_job_t *job, sl_ckpt_stats_t *out) {
  memset(out, 0, sizeof(*out));
  sl_ckpt_coord_t *c = job->ckpt;
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  *out = c->stats;
  pthread_mutex_unlock(&c->mu);
}

int sl_ckpt_savepoint(sl_job_t *job, const char *target, bool stop, char *out, size_t outlen) {
  sl_ckpt_coord_t *c = job->ckpt;
  if (!c || !c->thread_started) {
    snprintf(out, outlen, "this job takes no checkpoints (settings.checkpoints.dir is not set)");
    return -1;
  }
  pthread_mutex_lock(&c->mu);
  if (c->sp_requested || c->sp_id) {
    pthread_mutex_unlock(&c->mu);
    snprintf(out, outlen, "a savepoint is already being taken; try again when it is done");
    return -1;
  }
  if (c->stop) {
    pthread_mutex_unlock(&c->mu);
    snprintf(out, outlen, "the job is stopping");
    return -1;
  }
  struct stat st;
  if (target && *target && stat(target, &st) == 0) {
    pthread_mutex_unlock(&c->mu);
    snprintf(out, outlen, "savepoint directory %s already exists", target);
    return -1;
  }
  free(c->sp_target);
  if (target && *target) {
    c->sp_target = sl_xstrdup(target);
  } else {
    char *parent = sl_xasprintf("%s/savepoints", c->root);
    (void)mkdir(parent, 0755);
    c->sp_target = sl_xasprintf("%s/sp-%012" PRIu64 "-%" PRId64, parent, c->next_id, sl_wall_ms());
    free(parent);
  }
  c->sp_requested = true;
  c->sp_stop = stop;
  c->sp_finished = false;
  pthread_cond_signal(&c->cv);
  while (!c->sp_finished) pthread_cond_wait(&c->sp_done, &c->mu);
  int rc = c->sp_rc;
  snprintf(out, outlen, "%s", c->sp_msg);
  pthread_mutex_unlock(&c->mu);
  return rc;
}
