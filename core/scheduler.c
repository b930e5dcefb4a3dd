/*
 * scheduler.c - worker threads and the job's life cycle.
 *
 * Each task is pinned to one worker; a worker runs its tasks in turn and
 * never blocks on a channel. When none of its tasks can make progress it
 * parks on a condition variable. Wake-ups are cheap and cannot be lost:
 *   worker:   seq = wake_seq; parked = 1; fence; if any task ready -> unpark;
 *             else wait until wake_seq != seq (with a timeout, for sources
 *             that asked to be polled later and for stop requests)
 *   notifier: (channel updated) fence; if parked: wake_seq++, signal
 * The two fences make it impossible for the worker to miss the channel
 * update and the notifier to miss `parked` at the same time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "control.h"
#include "host_time.h"
#include "job.h"
#include "log.h"
#include "timers.h"
#include "util.h"
#include "watermark.h"

#define SL_PARK_MAX_NS 50000000ull /* re-check at least every 50 ms (stop requests) */

static _Atomic int g_stop = 0;
static _Atomic int g_signals = 0;

void sl_request_stop(void) { atomic_store(&g_stop, 1); }
int sl_stop_requested(void) { return atomic_load_explicit(&g_stop, memory_order_relaxed); }

static void on_signal(int sig) {
  if (atomic_fetch_add(&g_signals, 1) > 0) {
    static const char msg[] = "sluice: second signal, exiting now\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(128 + sig);
  }
  static const char msg[] = "sluice: stopping (sources end, sinks flush; signal again to exit now)\n";
  ssize_t w = write(2, msg, sizeof(msg) - 1);
  (void)w;
  atomic_store(&g_stop, 1);
}

void sl_install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static __thread sl_worker_t *tl_current_worker;

void sl_worker_notify(sl_worker_t *w) {
  if (w == tl_current_worker) return;
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&w->parked, memory_order_relaxed)) {
    atomic_fetch_add(&w->wake_seq, 1);
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
  }
}

void sl_job_wake_all(sl_job_t *job) {
  for (uint32_t i = 0; i < job->worker_count; i++) {
    sl_worker_t *w = &job->workers[i];
    atomic_fetch_add(&w->wake_seq, 1);
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
  }
}

void sl_job_fail(sl_job_t *job, const char *fmt, ...) {
  pthread_mutex_lock(&job->fail_mu);
  if (!job->failure) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    job->failure = msg ? msg : sl_xstrdup("job failed");
  }
  pthread_mutex_unlock(&job->fail_mu);
  if (!atomic_exchange(&job->failed, 1)) sl_job_wake_all(job);
}

static void worker_park(sl_worker_t *w, uint64_t now) {
  uint64_t seq = atomic_load(&w->wake_seq);
  atomic_store(&w->parked, 1);
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t wait_ns = SL_PARK_MAX_NS;
  for (uint32_t i = 0; i < w->task_count; i++) {
    sl_task_t *t = w->tasks[i];
    if (sl_task_ready(t, now)) {
      atomic_store(&w->parked, 0);
      return;
    }
    if (t->is_source && t->phase == SL_TASK_RUNNING && t->retry_at_ns > now &&
        t->retry_at_ns - now < wait_ns)
      wait_ns = t->retry_at_ns - now;
    if (t->proc_due_ms != SL_TS_MAX && t->phase == SL_TASK_RUNNING) {
      /* Wake for the next processing-time timer (sl_task_ready said not yet). */
      int64_t ms = t->proc_due_ms - sl_wall_ms();
      uint64_t ns = ms > 0 ? (uint64_t)ms * 1000000ull : 0;
      if (ns < wait_ns) wait_ns = ns;
    }
  }
  atomic_fetch_add_explicit(&w->parks, 1, memory_order_relaxed);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_nsec += (long)wait_ns;
  while (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&w->mu);
  while (atomic_load(&w->wake_seq) == seq) {
    if (pthread_cond_timedwait(&w->cv, &w->mu, &deadline) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&w->mu);
  atomic_store(&w->parked, 0);
}

static void *worker_main(void *arg) {
  sl_worker_t *w = arg;
  sl_job_t *job = w->job;
  tl_current_worker = w;
  while (!sl_job_failed(job) && w->finished_count < w->task_count) {
    uint64_t now = sl_mono_ns();
    int progress = 0;
    for (uint32_t i = 0; i < w->task_count; i++) progress |= sl_task_run(w->tasks[i], now);
    if (progress) {
      atomic_store_explicit(&w->busy_ns,
                            atomic_load_explicit(&w->busy_ns, memory_order_relaxed) +
                                (sl_mono_ns() - now),
                            memory_order_relaxed);
    } else {
      worker_park(w, now);
    }
  }
  tl_current_worker = NULL;
  return NULL;
}

sl_job_t *sl_job_new(const sl_dag_t *dag, sl_plan_t *plan) {
  sl_job_t *job = sl_xcalloc(1, sizeof(*job));
  job->dag = dag;
  job->plan = plan;
  pthread_mutex_init(&job->fail_mu, NULL);
  job->worker_count = plan->worker_count; /* at least 1, at most task_count: sl_plan_build */
  job->workers = sl_xcalloc(job->worker_count, sizeof(sl_worker_t));
  for (uint32_t i = 0; i < job->worker_count; i++) {
    sl_worker_t *w = &job->workers[i];
    w->id = i;
    w->job = job;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
  }
  /* Pin task i to worker i mod W: the parallel tasks of one node, created
   * one after the other, land on different workers. */
  for (uint32_t t = 0; t < plan->task_count; t++) {
    sl_task_t *task = plan->tasks[t];
    sl_worker_t *w = &job->workers[t % job->worker_count];
    task->worker = w;
    task->job = job;
    w->tasks = sl_xrealloc(w->tasks, (w->task_count + 1) * sizeof(sl_task_t *));
    w->tasks[w->task_count++] = task;
    for (uint32_t o = 0; o < task->op_count; o++) {
      task->ops[o]->job = job;
      task->ops[o]->head.host = &sl_host_api;
    }
  }
  return job;
}

int sl_job_open(sl_job_t *job, char *errbuf, size_t errlen) {
  sl_plan_t *plan = job->plan;
  for (uint32_t t = 0; t < plan->task_count; t++) {
    sl_task_t *task = plan->tasks[t];
    for (uint32_t o = 0; o < task->op_count; o++) {
      sl_op_instance_t *inst = task->ops[o];
      char err[1024] = "";
      if (sl_instance_timers_restore(inst, err, sizeof(err)) != 0) {
        snprintf(errbuf, errlen, "%s", err);
        return -1;
      }
      if (o == 0 && task->is_source && inst->node->event_time.set)
        inst->wm_gen = sl_wm_gen_new(&inst->node->event_time, sl_wall_ms());
      if (!inst->op->open) {
        inst->opened = true;
        continue;
      }
      inst->in_open = true;
      int rc = inst->op->open((sl_ctx_t *)inst, &inst->state, err, sizeof(err));
      inst->in_open = false;
      if (rc < 0) {
        snprintf(errbuf, errlen, "node '%s' (operator '%s' of plugin %s), task %u: open failed: %s",
                 inst->node->name, inst->op->name, inst->plugin ? inst->plugin->path : "?",
                 inst->subtask, err[0] ? err : sl_error_text(rc));
        return -1;
      }
      inst->opened = true;
    }
  }
  return 0;
}

int sl_job_run(sl_job_t *job) {
  job->start_ns = sl_mono_ns();
  for (uint32_t t = 0; t < job->plan->task_count; t++)
    job->plan->tasks[t]->ckpt_done = job->plan->tasks[t]->ckpt_committed = job->restored_id;
  char err[1024];
  if (sl_ckpt_start(job, err, sizeof(err)) != 0 || sl_control_start(job, err, sizeof(err)) != 0) {
    sl_job_fail(job, "%s", err);
    sl_ckpt_stop(job);
    return -1;
  }
  uint32_t started = 0;
  for (uint32_t i = 0; i < job->worker_count; i++) {
    if (pthread_create(&job->workers[i].thread, NULL, worker_main, &job->workers[i]) != 0) {
      sl_job_fail(job, "cannot start worker thread %u: %s", i, strerror(errno));
      break;
    }
    started++;
  }
  for (uint32_t i = 0; i < started; i++) pthread_join(job->workers[i].thread, NULL);
  sl_ckpt_stop(job); /* answers a savepoint request still waiting */
  sl_control_stop(job);
  /* Input has ended everywhere: a final checkpoint records the end
   * positions and commits what the sinks hold. */
  if (!sl_job_failed(job) && !atomic_load(&job->halt_at) && sl_ckpt_final(job, err, sizeof(err)) != 0)
    sl_job_fail(job, "%s", err);
  job->end_ns = sl_mono_ns();
  return sl_job_failed(job) ? -1 : 0;
}

void sl_job_free(sl_job_t *job) {
  if (!job) return;
  sl_ckpt_free(job); /* first: pending parts reference the instances' keyed state */
  sl_plan_t *plan = job->plan;
  for (uint32_t t = 0; plan && t < plan->task_count; t++) {
    sl_task_t *task = plan->tasks[t];
    for (uint32_t o = 0; o < task->op_count; o++) {
      sl_op_instance_t *inst = task->ops[o];
      if (inst->opened && inst->op->close) inst->op->close(inst->state);
      inst->opened = false;
      sl_keyed_state_free(inst->ks);
      inst->ks = NULL;
      sl_timers_free(inst->timers);
      inst->timers = NULL;
      sl_wm_gen_free(inst->wm_gen);
      inst->wm_gen = NULL;
      sl_op_state_free(inst->op_state);
      inst->op_state = NULL;
      for (uint32_t k = 0; k < inst->sync_fd_count; k++) close(inst->sync_fds[k]);
      free(inst->sync_fds);
      inst->sync_fds = NULL;
      inst->sync_fd_count = 0;
      free(inst->awaits); /* (never called: the job is over) */
      inst->awaits = NULL;
      inst->await_count = 0;
    }
  }
  for (uint32_t i = 0; i < job->worker_count; i++) {
    pthread_mutex_destroy(&job->workers[i].mu);
    pthread_cond_destroy(&job->workers[i].cv);
    free(job->workers[i].tasks);
  }
  free(job->workers);
  sl_plan_free(plan);
  pthread_mutex_destroy(&job->fail_mu);
  free(job->failure);
  free(job);
}
