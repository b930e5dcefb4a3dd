/*
 * checkpoint_resolve.c - at start-up, settle a checkpoint that was written in
 * full but never marked complete because the process died at its commit
 * point (see sl_checkpoint_commit_point in sluice.h).
 *
 * Such a checkpoint took effect if and only if the external commit (a Kafka
 * transaction) happened, and only the external system knows: the operators
 * that commit externally answer through their resolve() callback. Every one
 * of them must give the same answer; the checkpoint then becomes complete
 * (the job resumes from it) or is discarded (the job resumes from the one
 * before). A job without such operators ignores it, as it ignores any
 * checkpoint without a MANIFEST.
 */
#include <inttypes.h>
#include <stdio.h>

#include "checkpoint.h"
#include "log.h"

int sl_ckpt_resolve_undecided(sl_job_t *job, const char *root, sl_ckpt_manifest_t **latest,
                              char *err, size_t errlen) {
  sl_ckpt_manifest_t *u = sl_ckpt_find_undecided(root, *latest ? (*latest)->id : 0);
  if (!u) return 0;
  int yes = 0, no = 0, rc = 0;
  const char *first_yes = NULL, *first_no = NULL;
  sl_plan_t *plan = job->plan;
  for (uint32_t t = 0; t < plan->task_count && rc == 0; t++) {
    for (uint32_t o = 0; o < plan->tasks[t]->op_count && rc == 0; o++) {
      sl_op_instance_t *inst = plan->tasks[t]->ops[o];
      if (inst->subtask != 0 || !SL_OPERATOR_HAS(inst->op, resolve) || !inst->op->resolve)
        continue;
      char why[768] = "";
      int r = inst->op->resolve((sl_ctx_t *)inst, u->id, why, sizeof(why));
      if (r == SL_ENOTFOUND) continue; /* configured not to commit externally */
      if (r < 0) {
        snprintf(err, errlen, "node '%s' (operator '%s'): cannot tell whether checkpoint %" PRIu64
                 " (%s) took effect: %s", inst->node->name, inst->op->name, u->id, u->dir,
                 why[0] ? why : "no reason given");
        rc = -1;
      } else if (r > 0) {
        yes++;
        if (!first_yes) first_yes = inst->node->name;
      } else {
        no++;
        if (!first_no) first_no = inst->node->name;
      }
    }
  }
  if (rc == 0 && yes && no) {
    snprintf(err, errlen, "checkpoint %" PRIu64 " (%s) took effect for node '%s' but not for "
             "node '%s': their external commits are not atomic together, and the job cannot "
             "resume without loss or duplicates (see docs/state-and-checkpoints.md)",
             u->id, u->dir, first_yes, first_no);
    rc = -1;
  }
  if (rc == 0 && !yes && !no) {
    sl_log_msg(SL_LOG_INFO, "checkpoints", "%s was written but never marked complete, and no "
               "operator of this job commits externally; ignoring it", u->dir);
  } else if (rc == 0) {
    rc = sl_ckpt_settle_undecided(u, yes > 0, err, errlen);
    if (rc == 0)
      sl_log_msg(SL_LOG_INFO, "checkpoints", "checkpoint %" PRIu64 " was written but not marked "
                 "complete; node '%s' says it %s", u->id, yes ? first_yes : first_no,
                 yes ? "took effect: resuming from it" : "did not take effect: discarding it");
  }
  if (rc == 0 && yes) {
    sl_ckpt_manifest_free(*latest);
    *latest = u;
  } else {
    sl_ckpt_manifest_free(u);
  }
  return rc;
}
