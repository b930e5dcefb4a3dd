/* summary.h - the end-of-run report: records in/out per node, time, rate. */
#ifndef SL_SUMMARY_H
#define SL_SUMMARY_H

#include <stdio.h>

#include "job.h"

/** Per-node figures summed over the node's instances. */
typedef struct sl_node_figures {
  uint64_t records_in, records_out, skipped, dead_lettered;
} sl_node_figures_t;

void sl_summary_node(const sl_job_t *job, uint32_t node, sl_node_figures_t *out);
/** A named counter of a node, summed over its instances. */
uint64_t sl_summary_counter(const sl_job_t *job, uint32_t node, const char *name);
void sl_summary_print(const sl_job_t *job, FILE *out);

#endif
