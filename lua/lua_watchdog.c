/*
 * lua_watchdog.c - arms the count hook of the Lua calls that run long.
 *
 * Why: while a count hook is set, Lua 5.4 sends every instruction through
 * its hook path (a function call per instruction): about an eighth of a
 * trivial operator's cost per record (bench_lua). Most calls are short.
 * So when a state's budget is large (sl_lua_hook_is_lazy), its main thread
 * runs without a hook, and a watchdog thread looks at every such state each
 * TICK_MS. A state found in the same call as at the previous look has run
 * for more than a tick: the watchdog sends SIGNO to the thread running the
 * call, and the handler sets the count hook. lua_sethook may be called from
 * a signal handler (stock lua.c stops a script on Ctrl-C this way). From
 * then on the call is counted and timed as any other, so counting starts at
 * most 2 * TICK_MS after the call did. Coroutines get the hook when they
 * are created (lua_sandbox.c): the handler needs the main thread only.
 *
 * Per call, the worker only writes: the call's sequence number, in_call,
 * its thread id and two pointers (the thread's current host, and the host
 * whose call it interrupted, if any). No lock, no syscall, no fence.
 *
 * Calls nest: a Lua operator's emit may run the next operator of the chain,
 * a Lua operator too, on the same thread. The handler therefore walks from
 * the innermost call outwards and arms every host that was asked for. And
 * the watchdog asks again at every tick until the host says its hook is on
 * (armed_seq): a request that came at a bad moment (between the call's
 * start and its thread-local pointer, say) is not lost. A request that
 * reaches a thread after its call ended finds another sequence number (or
 * no host) and is dropped.
 *
 * The clock of a call whose hook is armed this way starts at the tick the
 * watchdog first saw it (at most TICK_MS late), not at its first count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lua_host.h"

#define TICK_MS 2
#define SIGNO (SIGRTMIN + 5)

/* The host whose call runs on this thread, and the thread's kernel id:
 * initial-exec TLS, one instruction to reach from the hot path. */
static __thread sl_lua_host_t *volatile tl_host __attribute__((tls_model("initial-exec")));
static __thread pid_t tl_tid __attribute__((tls_model("initial-exec")));

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv; /* on CLOCK_MONOTONIC, made with the thread */
static pthread_mutex_t wd_life = PTHREAD_MUTEX_INITIALIZER; /* serialises start and stop */
static sl_lua_host_t **wd_hosts;
static size_t wd_n, wd_cap;
static pthread_t wd_thread;
static int wd_running, wd_stop;

static void on_signal(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  int saved = errno;
  /* (bounded: a chain of operators is short, and a bad pointer must not
   * loop the handler) */
  sl_lua_host_t *h = tl_host;
  for (int depth = 0; h && depth < 64; depth++, h = h->wd_prev) {
    if (!__atomic_load_n(&h->in_call, __ATOMIC_RELAXED) || h->hook_on ||
        __atomic_load_n(&h->wd_request, __ATOMIC_ACQUIRE) != h->call_seq)
      continue;
    if (h->pat.deadline_ns == 0)
      h->pat.deadline_ns = __atomic_load_n(&h->wd_since_ns, __ATOMIC_RELAXED) +
                           (uint64_t)h->lim.timeout_ms * 1000000u;
    sl_lua_hook_arm(h);
  }
  errno = saved;
}

static uint64_t coarse_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* the clock of lua_state.c */
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One look at every state: arm the calls seen at the previous look too,
 * and ask again those whose hook is not on yet. */
static void scan(void) {
  pid_t pid = getpid();
  uint64_t now = coarse_now_ns();
  for (size_t i = 0; i < wd_n; i++) {
    sl_lua_host_t *h = wd_hosts[i];
    uint64_t seq = __atomic_load_n(&h->call_seq, __ATOMIC_ACQUIRE);
    if (!__atomic_load_n(&h->in_call, __ATOMIC_RELAXED) || seq != h->wd_seen) {
      h->wd_seen = seq;
      __atomic_store_n(&h->wd_since_ns, now, __ATOMIC_RELAXED);
      continue;
    }
    if (__atomic_load_n(&h->armed_seq, __ATOMIC_ACQUIRE) == seq) continue; /* hook on */
    __atomic_store_n(&h->wd_request, seq, __ATOMIC_RELEASE);
    pid_t tid = __atomic_load_n(&h->tid, __ATOMIC_RELAXED);
    /* By kernel thread id: a thread that has exited gives ESRCH. */
    syscall(SYS_tgkill, pid, tid, SIGNO);
  }
}

static void *wd_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&wd_mu);
  while (!wd_stop) {
    scan();
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += TICK_MS * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
      t.tv_sec++;
      t.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&wd_cv, &wd_mu, &t);
  }
  pthread_mutex_unlock(&wd_mu);
  return NULL;
}

static int start_locked(void) {
  struct sigaction sa = {0};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGNO, &sa, NULL) != 0) return -1;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&wd_cv, &ca);
  pthread_condattr_destroy(&ca);
  wd_stop = 0;
  if (pthread_create(&wd_thread, NULL, wd_main, NULL) != 0) {
    pthread_cond_destroy(&wd_cv);
    signal(SIGNO, SIG_IGN); /* the plugin may be unloaded: no handler left in it */
    return -1;
  }
  wd_running = 1;
  return 0;
}

int sl_lua_watchdog_add(sl_lua_host_t *h) {
  pthread_mutex_lock(&wd_life);
  int rc = 0;
  pthread_mutex_lock(&wd_mu);
  if (wd_n == wd_cap) {
    size_t cap = wd_cap ? 2 * wd_cap : 16;
    sl_lua_host_t **p = realloc(wd_hosts, cap * sizeof(*p));
    if (!p) rc = -1;
    else {
      wd_hosts = p;
      wd_cap = cap;
    }
  }
  if (rc == 0) wd_hosts[wd_n++] = h;
  pthread_mutex_unlock(&wd_mu);
  if (rc == 0 && !wd_running && start_locked() != 0) {
    pthread_mutex_lock(&wd_mu);
    wd_n--;
    pthread_mutex_unlock(&wd_mu);
    rc = -1;
  }
  pthread_mutex_unlock(&wd_life);
  return rc;
}

void sl_lua_watchdog_remove(sl_lua_host_t *h) {
  pthread_mutex_lock(&wd_life);
  pthread_mutex_lock(&wd_mu);
  for (size_t i = 0; i < wd_n; i++)
    if (wd_hosts[i] == h) {
      wd_hosts[i] = wd_hosts[--wd_n];
      break;
    }
  int stop = wd_n == 0 && wd_running;
  if (stop) {
    wd_stop = 1;
    pthread_cond_signal(&wd_cv);
  }
  pthread_mutex_unlock(&wd_mu);
  if (stop) {
    /* Joined before the plugin can be unloaded; a request still on its way
     * is ignored rather than left to a handler that may go away. */
    pthread_join(wd_thread, NULL);
    pthread_cond_destroy(&wd_cv);
    signal(SIGNO, SIG_IGN);
    wd_running = 0;
    free(wd_hosts);
    wd_hosts = NULL;
    wd_cap = 0;
  }
  pthread_mutex_unlock(&wd_life);
}

sl_lua_host_t *sl_lua_watch_begin(sl_lua_host_t *h) {
  sl_lua_host_t *prev = tl_host;
  if (!tl_tid) tl_tid = (pid_t)syscall(SYS_gettid);
  __atomic_store_n(&h->tid, tl_tid, __ATOMIC_RELAXED);
  h->wd_prev = prev != h ? prev : NULL;
  __atomic_store_n(&h->call_seq, h->call_seq + 1, __ATOMIC_RELEASE);
  tl_host = h;
  /* the handler runs on this thread: only the compiler must keep the order */
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  return prev;
}

void sl_lua_watch_end(sl_lua_host_t *prev) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  tl_host = prev;
}
