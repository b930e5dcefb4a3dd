/*
 * checkpoint_restore.c - put a verified checkpoint back into a planned job
 * before its operators open: operator state per instance, keyed state per
 * key group (so a node whose parallelism changed gets the key groups of its
 * new ranges from every old instance's file), and the restored id.
 *
 * Keyed state comes in the .snap file (a blob, restored into every new
 * instance: each takes its own key groups) or, for the RocksDB backend, as
 * a directory <node>.<subtask>.rocksdb (restored into the new instances
 * whose key groups overlap the old instance's: with the same range, the
 * files are linked into the new instance's database; see state.h).
 *
 * A checkpoint that does not fit the DAG is refused, naming the node: state
 * of a node the DAG no longer has, operator state of a node whose
 * parallelism changed (it cannot be split or merged), keyed state of a node
 * without key_by, or another max_key_groups.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "log.h"

/* The two sections of a .snap file (framing checked by checkpoint_store.c). */
typedef struct snap_view {
  const unsigned char *op_state;
  size_t op_state_len;
  const unsigned char *keyed;
  size_t keyed_len;
} snap_view_t;

static uint64_t rd_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* A file of a state directory (<node>.<subtask>.rocksdb/<file>)? */
static int in_state_dir(const sl_ckpt_file_t *f) { return strchr(f->name, '/') != NULL; }

/* Key groups [*b, *e) of subtask c of p over g groups (as the planner). */
static void kg_range(uint64_t g, uint64_t p, uint64_t c, uint32_t *b, uint32_t *e) {
  if (!p) p = 1;
  *b = (uint32_t)((c * g + p - 1) / p);
  *e = (uint32_t)(((c + 1) * g + p - 1) / p);
}

static int snap_split(const sl_ckpt_file_t *f, snap_view_t *v, char *err, size_t errlen) {
  const unsigned char *p = f->data;
  size_t n = f->size, at = 8;
  if (n < at + 8) goto bad;
  uint64_t ol = rd_u64(p + at);
  at += 8;
  if (ol > n - at) goto bad;
  v->op_state = p + at;
  v->op_state_len = (size_t)ol;
  at += (size_t)ol;
  if (n - at < 8) goto bad;
  uint64_t kl = rd_u64(p + at);
  at += 8;
  if (kl != n - at) goto bad;
  v->keyed = p + at;
  v->keyed_len = (size_t)kl;
  return 0;
bad:
  snprintf(err, errlen, "file %s: section lengths do not add up (corrupted)", f->name);
  return -1;
}

/* An empty operator state is a count of zero. */
static int op_state_empty(const snap_view_t *v) {
  return v->op_state_len == 4 && v->op_state[0] == 0 && v->op_state[1] == 0 &&
         v->op_state[2] == 0 && v->op_state[3] == 0;
}

static const sl_ckpt_node_t *manifest_node(const sl_ckpt_manifest_t *m, const char *name) {
  for (uint32_t i = 0; i < m->node_count; i++)
    if (strcmp(m->nodes[i].name, name) == 0) return &m->nodes[i];
  return NULL;
}

int sl_ckpt_restore(sl_job_t *job, const sl_ckpt_manifest_t *m, char *err, size_t errlen) {
  const sl_dag_t *dag = job->dag;
  sl_plan_t *plan = job->plan;
  snap_view_t *views = sl_xcalloc(m->file_count ? m->file_count : 1, sizeof(snap_view_t));
  int rc = -1;
  for (uint32_t i = 0; i < m->file_count; i++)
    if (!in_state_dir(&m->files[i]) && snap_split(&m->files[i], &views[i], err, errlen) != 0)
      goto out;

  /* Fit: every file's state must have a home. */
  for (uint32_t i = 0; i < m->file_count; i++) {
    const sl_ckpt_file_t *f = &m->files[i];
    int dirf = in_state_dir(f);
    int has_op = !dirf && !op_state_empty(&views[i]), has_keyed = dirf || views[i].keyed_len > 0;
    if (!has_op && !has_keyed) continue;
    const sl_dag_node_t *node = sl_dag_find(dag, f->node);
    const sl_ckpt_node_t *old = manifest_node(m, f->node);
    if (!node) {
      snprintf(err, errlen,
               "checkpoint %" PRIu64 " (%s) holds state of node '%s', which this DAG does not "
               "have; restore it with a DAG that has the node, or start with --fresh",
               m->id, m->dir, f->node);
      goto out;
    }
    uint32_t p = sl_dag_node_parallelism(node);
    if (has_op && (!old || old->parallelism != p)) {
      snprintf(err, errlen,
               "checkpoint %" PRIu64 ": node '%s' has operator state for parallelism %u, the DAG "
               "now says %u; operator state cannot be split or merged",
               m->id, f->node, old ? old->parallelism : 0, p);
      goto out;
    }
    if (has_op && f->subtask >= p) {
      snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' file %s names task %u of %u", m->id,
               f->node, f->name, f->subtask, p);
      goto out;
    }
    if (has_keyed && !node->key_by) {
      snprintf(err, errlen,
               "checkpoint %" PRIu64 ": node '%s' has keyed state but no key_by in this DAG", m->id,
               f->node);
      goto out;
    }
    if (dirf && (!old || f->subtask >= old->parallelism)) {
      snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' file %s names task %u of %u", m->id,
               f->node, f->name, f->subtask, old ? old->parallelism : 0);
      goto out;
    }
    if (has_keyed && m->max_key_groups != dag->settings.max_key_groups) {
      snprintf(err, errlen,
               "checkpoint %" PRIu64 ": node '%s' has keyed state in %u key groups, the DAG now "
               "says max_key_groups %u; keep the number of key groups of a job fixed",
               m->id, f->node, m->max_key_groups, dag->settings.max_key_groups);
      goto out;
    }
  }

  /* Load. */
  for (uint32_t i = 0; i < m->file_count; i++) {
    const sl_ckpt_file_t *f = &m->files[i];
    const sl_dag_node_t *node = sl_dag_find(dag, f->node);
    if (!node) continue;
    uint32_t ni = (uint32_t)(node - dag->nodes);
    uint32_t p = sl_dag_node_parallelism(node);
    char why[1024];
    if (in_state_dir(f)) {
      /* The first file of a state directory restores the whole directory. */
      size_t sub = (size_t)(strchr(f->name, '/') - f->name);
      int seen = 0;
      for (uint32_t j = 0; j < i && !seen; j++)
        seen = in_state_dir(&m->files[j]) && strncmp(m->files[j].name, f->name, sub + 1) == 0;
      if (seen) continue;
      char *path = sl_xasprintf("%s/%.*s", m->dir, (int)sub, f->name);
      uint32_t sb, se;
      kg_range(m->max_key_groups, manifest_node(m, f->node)->parallelism, f->subtask, &sb, &se);
      for (uint32_t s = 0; s < p; s++) {
        uint32_t b, e;
        kg_range(dag->settings.max_key_groups, p, s, &b, &e);
        if (b >= se || sb >= e) continue; /* no key group in common */
        sl_keyed_state_t *ks = sl_instance_keyed_state(plan->instances[ni][s]);
        if (sl_keyed_state_restore_dir(ks, path, sb, se, why, sizeof(why)) != 0) {
          snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' state directory %.*s: %s",
                   m->id, f->node, (int)sub, f->name, why);
          free(path);
          goto out;
        }
      }
      free(path);
      continue;
    }
    if (!op_state_empty(&views[i])) {
      sl_op_instance_t *inst = plan->instances[ni][f->subtask];
      if (!inst->op_state) inst->op_state = sl_op_state_new();
      if (sl_op_state_read(inst->op_state, views[i].op_state, views[i].op_state_len, why,
                           sizeof(why)) != 0) {
        snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' file %s: %s", m->id, f->node,
                 f->name, why);
        goto out;
      }
    }
    if (views[i].keyed_len) {
      /* Every new instance takes the key groups of its range from every file. */
      for (uint32_t s = 0; s < p; s++) {
        sl_keyed_state_t *ks = sl_instance_keyed_state(plan->instances[ni][s]);
        if (sl_keyed_state_restore(ks, views[i].keyed, views[i].keyed_len, why, sizeof(why)) !=
            0) {
          snprintf(err, errlen, "checkpoint %" PRIu64 ": node '%s' file %s: keyed state: %s",
                   m->id, f->node, f->name, why);
          goto out;
        }
      }
    }
  }
  job->restored_id = m->id;
  rc = 0;
out:
  free(views);
  return rc;
}
