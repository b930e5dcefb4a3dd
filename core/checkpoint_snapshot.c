/*
 * checkpoint_snapshot.c - what a task does when a barrier reaches it:
 * call its operators' snapshot() callbacks and freeze their state. Runs on
 * the task's thread (or the main thread for the final checkpoint); every
 * step here is cheap, the serialization happens on the coordinator thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "log.h"

/* A path component from a name: characters other than letters, digits,
 * '_', '-' and '.' become '_' (a job name may hold anything). */
static char *path_part(const char *name) {
  char *p = sl_xstrdup(name && *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0
                           ? name
                           : "job");
  for (char *c = p; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '_' || *c == '-' || *c == '.'))
      *c = '_';
  return p;
}

static char *instance_state_dir(const sl_op_instance_t *inst) {
  const sl_dag_settings_t *s = &inst->job->dag->settings;
  if (!s->state_dir && !s->checkpoint_dir) return NULL;
  char *job = path_part(inst->job->dag->name);
  char *dir = s->state_dir
                  ? sl_xasprintf("%s/%s/%s.%u", s->state_dir, job, inst->node->name, inst->subtask)
                  : sl_xasprintf("%s/state/%s/%s.%u", s->checkpoint_dir, job, inst->node->name,
                                 inst->subtask);
  free(job);
  return dir;
}

struct sl_keyed_state *sl_instance_keyed_state(sl_op_instance_t *inst) {
  if (inst->ks) return inst->ks;
  if (!inst->node->key_by) return NULL;
  /* Subtask c of p owns the key groups g with floor(g * p / G) == c, the
   * range the key_by router sends it (task.c). */
  const sl_dag_settings_t *s = &inst->job->dag->settings;
  uint64_t g = s->max_key_groups;
  uint64_t p = inst->parallelism ? inst->parallelism : 1;
  uint64_t c = inst->subtask;
  uint32_t begin = (uint32_t)((c * g + p - 1) / p);
  uint32_t end = (uint32_t)(((c + 1) * g + p - 1) / p);
  if (s->state_backend && strcmp(s->state_backend, "rocksdb") == 0) {
    /* One database per instance in its own working directory (see
     * docs/state-and-checkpoints.md); a temporary one without any directory
     * setting. */
    char *dir = instance_state_dir(inst), err[1024] = "";
    inst->ks = sl_keyed_state_new_rocksdb(dir, (uint32_t)g, begin, end, err, sizeof(err));
    if (!inst->ks) {
      char where[160];
      snprintf(where, sizeof(where), "node %s[%u]", inst->node->name, inst->subtask);
      sl_log_msg(SL_LOG_ERROR, where, "RocksDB keyed state: %s", err);
    }
    free(dir);
  } else {
    inst->ks = sl_keyed_state_new_memory((uint32_t)g, begin, end);
  }
  return inst->ks;
}

void sl_ckpt_parts_free(sl_ckpt_part_t *parts, uint32_t n) {
  if (!parts) return;
  for (uint32_t i = 0; i < n; i++) {
    sl_buf_free(&parts[i].op_state);
    if (parts[i].keyed) sl_state_snapshot_release(parts[i].keyed);
    for (uint32_t k = 0; k < parts[i].commit_point_count; k++) {
      char msg[8];
      parts[i].commit_points[k].fn(parts[i].commit_points[k].arg, parts[i].id, 0, msg, sizeof(msg));
    }
    free(parts[i].commit_points);
  }
  free(parts);
}

int sl_ckpt_run_commit_points(sl_ckpt_part_t *parts, uint32_t n, uint64_t id, char *err,
                              size_t errlen) {
  int rc = 0;
  for (uint32_t i = 0; i < n; i++) {
    sl_op_instance_t *inst = parts[i].inst;
    for (uint32_t k = 0; k < parts[i].commit_point_count; k++) {
      sl_ckpt_commit_point_t *cp = &parts[i].commit_points[k];
      char msg[768] = "";
      if (rc != 0) {
        cp->fn(cp->arg, id, 0, msg, sizeof(msg));
      } else if (cp->fn(cp->arg, id, 1, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' task %u: commit failed: %s", id,
                 inst->node->name, inst->subtask, msg[0] ? msg : "no reason given");
        rc = -1;
      }
    }
    free(parts[i].commit_points);
    parts[i].commit_points = NULL;
    parts[i].commit_point_count = 0;
  }
  return rc;
}

int sl_ckpt_snapshot_task(sl_task_t *t, uint64_t id, sl_ckpt_part_t **parts_out) {
  sl_ckpt_part_t *parts = sl_xcalloc(t->op_count, sizeof(sl_ckpt_part_t));
  for (uint32_t o = 0; o < t->op_count; o++) {
    sl_op_instance_t *inst = t->ops[o];
    parts[o].inst = inst;
    parts[o].id = id;
    if (SL_OPERATOR_HAS(inst->op, snapshot) && inst->op->snapshot) {
      inst->error_set = false;
      inst->in_snapshot = true;
      int rc = inst->op->snapshot((sl_ctx_t *)inst, inst->state, id);
      inst->in_snapshot = false;
      /* The part owns them from here: called at the commit point, or
       * cancelled when the part is freed unused. */
      parts[o].commit_points = inst->commit_points;
      parts[o].commit_point_count = inst->commit_point_count;
      inst->commit_points = NULL;
      inst->commit_point_count = 0;
      if (rc < 0) {
        sl_job_fail(t->job, "node '%s' (operator '%s'), task %u: snapshot for checkpoint %llu failed: %s",
                    inst->node->name, inst->op->name, inst->subtask, (unsigned long long)id,
                    inst->error_set ? inst->error : sl_error_text(rc));
        sl_ckpt_parts_free(parts, t->op_count);
        return -1;
      }
    }
    sl_op_state_write(inst->op_state, &parts[o].op_state);
    if (inst->ks) {
      parts[o].keyed = sl_keyed_state_snapshot_begin(inst->ks);
      if (!parts[o].keyed) {
        sl_job_fail(t->job, "node '%s', task %u: cannot freeze keyed state for checkpoint %llu (a "
                    "previous snapshot is still being written)",
                    inst->node->name, inst->subtask, (unsigned long long)id);
        sl_ckpt_parts_free(parts, t->op_count);
        return -1;
      }
    }
  }
  *parts_out = parts;
  return 0;
}
