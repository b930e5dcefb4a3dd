/*
 * fault.c - test hook for the crash tests: SLUICE_FAULT=phase:id makes the
 * process kill itself with SIGKILL when checkpoint `id` reaches `phase`
 * (barrier, snapshot, manifest, decided, rename, commit), or, for the phase
 * write-error, makes the writing of checkpoint `id` fail as a full disk
 * would. Nothing else reads it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_phase[32];
static uint64_t g_id;

static void fault_init(void) {
  const char *v = getenv("SLUICE_FAULT");
  if (!v) return;
  const char *colon = strchr(v, ':');
  if (!colon || (size_t)(colon - v) >= sizeof(g_phase)) return;
  memcpy(g_phase, v, (size_t)(colon - v));
  g_phase[colon - v] = 0;
  g_id = strtoull(colon + 1, NULL, 10);
}

void sl_fault_point(const char *phase, uint64_t id) {
  pthread_once(&g_once, fault_init);
  if (!g_phase[0] || id != g_id || strcmp(phase, g_phase) != 0) return;
  fprintf(stderr, "sluice: SLUICE_FAULT: killing the process at %s of checkpoint %llu\n", phase,
          (unsigned long long)id);
  kill(getpid(), SIGKILL);
}

bool sl_fault_error(const char *phase, uint64_t id) {
  pthread_once(&g_once, fault_init);
  if (!g_phase[0] || id != g_id || strcmp(phase, g_phase) != 0) return false;
  fprintf(stderr, "sluice: SLUICE_FAULT: failing %s of checkpoint %llu\n", phase,
          (unsigned long long)id);
  return true;
}
