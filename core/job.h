/*
 * job.h - a running job: the plan, its worker threads, failure and stop.
 *
 * Life cycle: sl_job_new (plan built) -> sl_job_open (every operator
 * instance's open(), on the calling thread, before any worker starts) ->
 * sl_job_run (workers run until every task finished or the job failed) ->
 * sl_job_free (close() of every opened instance, memory freed).
 */
#ifndef SL_JOB_H
#define SL_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "plan.h"

typedef struct sl_worker {
  uint32_t id;
  pthread_t thread;
  struct sl_job *job;
  sl_task_t **tasks;
  uint32_t task_count;
  uint32_t finished_count;
  /* Parking: see scheduler.c for the protocol. */
  _Atomic int parked;
  _Atomic uint64_t wake_seq;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Figures. */
  _Atomic uint64_t busy_ns;
  _Atomic uint64_t parks;
} sl_worker_t;

typedef struct sl_job {
  const sl_dag_t *dag;
  sl_plan_t *plan;
  sl_worker_t *workers;
  uint32_t worker_count;
  _Atomic int failed;
  pthread_mutex_t fail_mu;
  char *failure; /* first failure message; owned */
  uint64_t start_ns;
  uint64_t end_ns;
  /* Checkpoints (checkpoint.h). */
  _Atomic uint64_t ckpt_trigger;   /* sources inject a barrier when this exceeds their last */
  _Atomic uint64_t ckpt_completed; /* tasks call commit() when this exceeds their last */
  _Atomic uint32_t tasks_finished;
  _Atomic uint64_t halt_at;        /* stop-with-savepoint: tasks stop once they committed this */
  uint64_t restored_id;            /* checkpoint the job resumed from, 0 = fresh */
  struct sl_ckpt_coord *ckpt;      /* NULL when checkpoints are off */
  struct sl_control *control;      /* the control socket (control.h), or NULL */
  struct sl_registry *reg;         /* plugins, for sl_aggregate_find (NULL: none found) */
} sl_job_t;

/** Take ownership of a plan; assign tasks to workers. */
sl_job_t *sl_job_new(const sl_dag_t *dag, sl_plan_t *plan);
/** Open every instance; on failure put a message in errbuf and return -1 (the
 * instances opened so far are closed by sl_job_free, which the caller calls). */
int sl_job_open(sl_job_t *job, char *errbuf, size_t errbuf_len);
/** Run to completion. 0 = every task finished; -1 = the job failed (see job->failure). */
int sl_job_run(sl_job_t *job);
/** Close instances and free everything, the plan included. */
void sl_job_free(sl_job_t *job);

/** Record a failure (the first one wins) and wake every worker to stop. */
void sl_job_fail(sl_job_t *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int sl_job_failed(sl_job_t *job) {
  return atomic_load_explicit(&job->failed, memory_order_relaxed);
}

/* Stop requested (SIGINT/SIGTERM): process-wide, set from a signal handler. */
void sl_request_stop(void);
int sl_stop_requested(void);
/** Install SIGINT/SIGTERM handlers: first = graceful stop, second = exit now. */
void sl_install_signal_handlers(void);

/* scheduler.c */
/** Wake `w` if it is parked (called after making a task of `w` runnable). */
void sl_worker_notify(sl_worker_t *w);
/** Wake every worker (a checkpoint was triggered or completed). */
void sl_job_wake_all(sl_job_t *job);

/* task.c */
/** Run a task for a while. Returns non-zero when it made progress. */
int sl_task_run(sl_task_t *t, uint64_t now_ns);
/** Could sl_task_run make progress now? (for parking) */
int sl_task_ready(sl_task_t *t, uint64_t now_ns);
/** Route one record emitted by an instance to a port's consumers. */
int sl_instance_emit(sl_op_instance_t *inst, int port, const sl_record_t *rec);
/** A record failed in `inst` (why: the reason): apply the node's on_error policy. */
void sl_instance_record_failed(sl_op_instance_t *inst, const sl_record_t *rec, const char *why);

/* host_api.c */
extern const sl_host_api_t sl_host_api;

#endif
