/* summary.c - see summary.h. */
#include "summary.h"

#include "checkpoint.h"

#include <inttypes.h>
#include <string.h>

static uint64_t rd(_Atomic uint64_t *v) { return atomic_load_explicit(v, memory_order_relaxed); }

void sl_summary_node(const sl_job_t *job, uint32_t node, sl_node_figures_t *out) {
  *out = (sl_node_figures_t){0};
  const sl_plan_t *plan = job->plan;
  sl_op_instance_t **insts = plan->instances[node];
  uint32_t par = sl_dag_node_parallelism(&job->dag->nodes[node]);
  for (uint32_t s = 0; insts && s < par; s++) {
    out->records_in += rd(&insts[s]->stats.records_in);
    out->records_out += rd(&insts[s]->stats.records_out);
    out->skipped += rd(&insts[s]->stats.errors_skipped);
    out->dead_lettered += rd(&insts[s]->stats.errors_dead_lettered);
  }
}

uint64_t sl_summary_counter(const sl_job_t *job, uint32_t node, const char *name) {
  /* By name: instances may create their counters in different orders. */
  uint64_t sum = 0;
  sl_op_instance_t **insts = job->plan->instances[node];
  for (uint32_t s = 0; insts && s < sl_dag_node_parallelism(&job->dag->nodes[node]); s++)
    for (uint32_t c = 0; c < insts[s]->counter_count; c++)
      if (strcmp(insts[s]->counters[c]->name, name) == 0)
        sum += __atomic_load_n(&insts[s]->counters[c]->counter.value, __ATOMIC_RELAXED);
  return sum;
}

void sl_summary_print(const sl_job_t *job, FILE *out) {
  const sl_dag_t *dag = job->dag;
  double secs = (double)(job->end_ns - job->start_ns) / 1e9;
  fprintf(out, "\njob '%s' %s in %.3f s on %u worker%s\n", dag->name,
          sl_job_failed((sl_job_t *)job) ? "FAILED"
          : atomic_load(&((sl_job_t *)job)->halt_at) ? "stopped with a savepoint"
                                                     : "finished",
          secs, job->worker_count,
          job->worker_count == 1 ? "" : "s");
  fprintf(out, "  %-20s %5s %14s %14s %10s %10s\n", "node", "tasks", "records in", "records out",
          "skipped", "dead-lett.");
  uint64_t source_out = 0;
  for (uint32_t n = 0; n < dag->node_count; n++) {
    sl_node_figures_t f;
    sl_summary_node(job, n, &f);
    const sl_dag_node_t *node = &dag->nodes[n];
    if (node->op && node->op->kind == SL_KIND_SOURCE) source_out += f.records_out;
    fprintf(out, "  %-20s %5u %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
            node->name, sl_dag_node_parallelism(node), f.records_in, f.records_out, f.skipped,
            f.dead_lettered);
    /* Counters the operator declared, summed over its instances. */
    sl_op_instance_t **insts = job->plan->instances[n];
    if (!insts || !insts[0]) continue;
    for (uint32_t c = 0; c < insts[0]->counter_count; c++) {
      const char *name = insts[0]->counters[c]->name;
      fprintf(out, "    %s %s = %" PRIu64 "\n", insts[0]->counters[c]->is_gauge ? "gauge" : "counter",
              name, sl_summary_counter(job, n, name));
    }
  }
  uint64_t bp = 0, signals = 0;
  for (uint32_t t = 0; t < job->plan->task_count; t++) {
    bp += rd(&job->plan->tasks[t]->backpressure_ns);
    signals += rd(&job->plan->tasks[t]->bp_signals);
  }
  fprintf(out, "  sources emitted %" PRIu64 " records: %.0f records/s; backpressured task time %.3f s",
          source_out, secs > 0 ? (double)source_out / secs : 0.0, (double)bp / 1e9);
  /* sources that stop reading ahead when told (sl_operator_t.backpressure) */
  if (signals) fprintf(out, "; sources told to hold back %" PRIu64 " times", signals);
  fputc('\n', out);
  if (job->ckpt) {
    sl_ckpt_stats_t cs;
    sl_ckpt_get_stats((sl_job_t *)job, &cs);
    uint64_t align = 0;
    for (uint32_t t = 0; t < job->plan->task_count; t++) align += rd(&job->plan->tasks[t]->align_ns);
    fprintf(out,
            "  checkpoints: %" PRIu64 " completed, %" PRIu64 " failed; last %" PRIu64 " (%" PRIu64
            " bytes, %" PRIu64 " ms); longest task pause %.3f ms; alignment time %.3f s\n",
            cs.completed, cs.failed, cs.last_id, cs.last_bytes, cs.last_duration_ms,
            (double)cs.max_pause_ns / 1e6, (double)align / 1e9);
  }
}
