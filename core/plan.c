/* plan.c - build the physical plan from a validated DAG (see plan.h). */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *sl_edge_kind_name(sl_edge_kind_t k) {
  switch (k) {
  case SL_EDGE_CHAINED: return "chained";
  case SL_EDGE_FORWARD: return "forward";
  case SL_EDGE_REBALANCE: return "rebalance";
  case SL_EDGE_BROADCAST: return "broadcast";
  case SL_EDGE_KEY_BY: return "key_by";
  }
  return "?";
}

static uint32_t node_index(const sl_dag_t *dag, const char *name) {
  for (size_t i = 0; i < dag->node_count; i++)
    if (strcmp(dag->nodes[i].name, name) == 0) return (uint32_t)i;
  return UINT32_MAX;
}

/* How records travel from one input to the node (before chaining). */
static sl_edge_kind_t input_edge_kind(const sl_dag_node_t *n, const sl_dag_node_t *producer) {
  if (n->key_by || n->partition == SL_PARTITION_KEY_BY) return SL_EDGE_KEY_BY;
  switch (n->partition) {
  case SL_PARTITION_FORWARD: return SL_EDGE_FORWARD;
  case SL_PARTITION_REBALANCE: return SL_EDGE_REBALANCE;
  case SL_PARTITION_BROADCAST: return SL_EDGE_BROADCAST;
  default:
    return sl_dag_node_parallelism(n) == sl_dag_node_parallelism(producer) ? SL_EDGE_FORWARD
                                                                            : SL_EDGE_REBALANCE;
  }
}

static int port_index(const sl_op_instance_t *inst, const char *port) {
  if (!port || !*port) return 0;
  for (uint32_t i = 1; i < inst->port_count; i++)
    if (strcmp(inst->ports[i].name, port) == 0) return (int)i;
  return -1;
}

static void init_ports(sl_op_instance_t *inst) {
  const sl_operator_t *op = inst->op;
  uint32_t declared = 0;
  int has_errors = 0;
  if (op->outputs)
    for (; op->outputs[declared]; declared++)
      if (strcmp(op->outputs[declared], "errors") == 0) has_errors = 1;
  inst->port_count = 1 + declared + (has_errors ? 0 : 1);
  inst->ports = sl_xcalloc(inst->port_count, sizeof(sl_out_port_t));
  inst->ports[0].name = sl_xstrdup("");
  for (uint32_t i = 0; i < declared; i++) inst->ports[1 + i].name = sl_xstrdup(op->outputs[i]);
  if (!has_errors) inst->ports[inst->port_count - 1].name = sl_xstrdup("errors");
  inst->errors_port = port_index(inst, "errors");
}

static sl_out_target_t *add_target(sl_op_instance_t *inst, int port) {
  sl_out_port_t *p = &inst->ports[port];
  p->targets = sl_xrealloc(p->targets, (p->target_count + 1) * sizeof(sl_out_target_t));
  sl_out_target_t *t = &p->targets[p->target_count++];
  memset(t, 0, sizeof(*t));
  return t;
}

static void task_add_output(sl_task_t *t, sl_channel_t *ch) {
  t->outputs = sl_xrealloc(t->outputs, (t->output_count + 1) * sizeof(sl_task_output_t));
  t->outputs[t->output_count++] = (sl_task_output_t){.channel = ch, .wm_sent = SL_TS_MIN};
}

static void task_add_input(sl_task_t *t, sl_channel_t *ch) {
  t->inputs = sl_xrealloc(t->inputs, (t->input_count + 1) * sizeof(sl_task_input_t));
  t->inputs[t->input_count++] = (sl_task_input_t){.channel = ch, .wm = SL_TS_MIN};
}

static sl_channel_t *plan_new_channel(sl_plan_t *plan, sl_task_t *from, sl_task_t *to,
                                      sl_edge_kind_t kind) {
  const sl_dag_settings_t *s = &plan->dag->settings;
  sl_channel_t *ch = sl_channel_new(s->channel_capacity, s->batch_size);
  ch->id = plan->channel_count;
  ch->kind = kind;
  ch->producer = from;
  ch->consumer = to;
  plan->channels = sl_xrealloc(plan->channels, (plan->channel_count + 1) * sizeof(*plan->channels));
  plan->channels[plan->channel_count++] = ch;
  task_add_output(from, ch);
  ch->producer_slot = from->output_count - 1;
  task_add_input(to, ch);
  return ch;
}

static void plan_add_edge(sl_plan_t *plan, uint32_t from, const char *port, uint32_t to,
                          sl_edge_kind_t kind) {
  plan->edges = sl_xrealloc(plan->edges, (plan->edge_count + 1) * sizeof(sl_plan_edge_t));
  plan->edges[plan->edge_count++] =
      (sl_plan_edge_t){from, port ? sl_xstrdup(port) : NULL, to, kind};
}

sl_plan_t *sl_plan_build(const sl_dag_t *dag, sl_diag_list_t *diags) {
  size_t n = dag->node_count;
  size_t *order = sl_xcalloc(n, sizeof(size_t));
  if (sl_dag_topo_order(dag, order) != 0) {
    sl_diag_error(diags, dag->path, SL_NOPOS, "the DAG has a cycle");
    free(order);
    return NULL;
  }
  size_t errors_before = diags->errors;
  sl_plan_t *plan = sl_xcalloc(1, sizeof(*plan));
  plan->dag = dag;
  plan->worker_count = dag->settings.workers ? dag->settings.workers : 1; /* clamped below */
  plan->chain_root = sl_xcalloc(n, sizeof(uint32_t));
  plan->instances = sl_xcalloc(n, sizeof(sl_op_instance_t **));

  /* 1. Chaining: a node joins its producer's task when the edge is forward,
   * it is the node's only input, and parallelism matches. */
  for (size_t k = 0; k < n; k++) {
    uint32_t i = (uint32_t)order[k];
    const sl_dag_node_t *node = &dag->nodes[i];
    plan->chain_root[i] = i;
    if (node->input_count == 1) {
      uint32_t p = node_index(dag, node->inputs[0].node);
      const sl_dag_node_t *prod = &dag->nodes[p];
      if (input_edge_kind(node, prod) == SL_EDGE_FORWARD &&
          sl_dag_node_parallelism(node) == sl_dag_node_parallelism(prod))
        plan->chain_root[i] = plan->chain_root[p];
    }
  }

  /* 2. Tasks and instances: one task per root node per subtask; chained
   * nodes' instances join in topological order. */
  for (size_t k = 0; k < n; k++) {
    uint32_t root = (uint32_t)order[k];
    if (plan->chain_root[root] != root) continue;
    uint32_t par = sl_dag_node_parallelism(&dag->nodes[root]);
    for (uint32_t s = 0; s < par; s++) {
      sl_task_t *t = sl_xcalloc(1, sizeof(*t));
      t->id = plan->task_count;
      t->is_source = dag->nodes[root].op->kind == SL_KIND_SOURCE;
      t->wm_out = t->wm_target = SL_TS_MIN;
      t->proc_due_ms = SL_TS_MAX;
      atomic_init(&t->wm_seen, SL_TS_MIN);
      for (size_t m = k; m < n; m++) {
        uint32_t ni = (uint32_t)order[m];
        if (plan->chain_root[ni] != root) continue;
        if (!plan->instances[ni])
          plan->instances[ni] = sl_xcalloc(par, sizeof(sl_op_instance_t *));
        sl_op_instance_t *inst = sl_xcalloc(1, sizeof(*inst));
        inst->task = t;
        inst->node = &dag->nodes[ni];
        inst->node_index = ni;
        inst->op = dag->nodes[ni].op;
        if (SL_OPERATOR_HAS(inst->op, process_batch)) inst->process_batch = inst->op->process_batch;
        /* Timers belong to one key: a keyed operator with timers is called
         * per record, so that a record's key is current when it sets one. */
        if (dag->nodes[ni].key_by && SL_OPERATOR_HAS(inst->op, on_timer) && inst->op->on_timer)
          inst->process_batch = NULL;
        inst->wm = SL_TS_MIN;
        inst->plugin = dag->nodes[ni].plugin;
        inst->subtask = s;
        inst->parallelism = par;
        init_ports(inst);
        plan->instances[ni][s] = inst;
        t->ops = sl_xrealloc(t->ops, (t->op_count + 1) * sizeof(*t->ops));
        t->ops[t->op_count++] = inst;
      }
      plan->tasks = sl_xrealloc(plan->tasks, (plan->task_count + 1) * sizeof(*plan->tasks));
      plan->tasks[plan->task_count++] = t;
    }
  }

  /* 3. Edges: chained targets or channels. */
  for (size_t k = 0; k < n; k++) {
    uint32_t ni = (uint32_t)order[k];
    const sl_dag_node_t *node = &dag->nodes[ni];
    uint32_t par = sl_dag_node_parallelism(node);
    for (size_t in = 0; in < node->input_count; in++) {
      uint32_t pi = node_index(dag, node->inputs[in].node);
      const sl_dag_node_t *prod = &dag->nodes[pi];
      uint32_t ppar = sl_dag_node_parallelism(prod);
      int port = port_index(plan->instances[pi][0], node->inputs[in].port);
      if (port < 0) {
        sl_diag_error(diags, dag->path, node->inputs[in].pos, "node '%s': '%s' has no output '%s'",
                      node->name, prod->name, node->inputs[in].port);
        continue;
      }
      sl_edge_kind_t kind = input_edge_kind(node, prod);
      if (plan->chain_root[ni] != ni) kind = SL_EDGE_CHAINED;
      if (kind == SL_EDGE_KEY_BY && in == 0 && par > dag->settings.max_key_groups) {
        /* Key groups are the unit tasks own: fewer groups than tasks would leave
         * tasks without keys (Flink: parallelism <= max parallelism). */
        sl_diag_error(diags, dag->path, node->parallelism_pos.line ? node->parallelism_pos : node->pos,
                      "node '%s': parallelism %u is larger than settings.max_key_groups %u; "
                      "raise max_key_groups or lower the parallelism",
                      node->name, par, dag->settings.max_key_groups);
        continue;
      }
      if (kind == SL_EDGE_FORWARD && par != ppar) {
        sl_diag_error(diags, dag->path, node->inputs[in].pos,
                      "node '%s': a forward edge needs equal parallelism ('%s' has %u, '%s' %u)",
                      node->name, prod->name, ppar, node->name, par);
        continue;
      }
      plan_add_edge(plan, pi, node->inputs[in].port, ni, kind);
      if (kind == SL_EDGE_CHAINED) {
        for (uint32_t s = 0; s < par; s++) {
          sl_out_target_t *t = add_target(plan->instances[pi][s], port);
          t->kind = kind;
          t->chained = plan->instances[ni][s];
        }
        continue;
      }
      for (uint32_t s = 0; s < ppar; s++) {
        sl_op_instance_t *from = plan->instances[pi][s];
        sl_out_target_t *t = add_target(from, port);
        t->kind = kind;
        t->consumer_parallelism = par;
        t->max_key_groups = dag->settings.max_key_groups ? dag->settings.max_key_groups : 128;
        if (kind == SL_EDGE_KEY_BY && node->key_by && strcmp(node->key_by, "$key") != 0)
          t->key_field = node->key_by;
        if (kind == SL_EDGE_FORWARD) {
          t->channel_count = 1;
          t->channels = sl_xcalloc(1, sizeof(sl_channel_t *));
          t->channels[0] = plan_new_channel(plan, from->task, plan->instances[ni][s]->task, kind);
        } else {
          t->channel_count = par;
          t->channels = sl_xcalloc(par, sizeof(sl_channel_t *));
          for (uint32_t c = 0; c < par; c++)
            t->channels[c] = plan_new_channel(plan, from->task, plan->instances[ni][c]->task, kind);
        }
        t->filling = sl_xcalloc(t->channel_count, sizeof(sl_batch_t *));
      }
    }
  }

  /* 4. dead_letter needs a reader of the errors port, or records vanish. */
  for (size_t i = 0; i < n; i++) {
    const sl_dag_node_t *node = &dag->nodes[i];
    if (node->on_error != SL_ON_ERROR_DEAD_LETTER || !plan->instances[i]) continue;
    sl_op_instance_t *inst = plan->instances[i][0];
    if (inst->ports[inst->errors_port].target_count == 0)
      sl_diag_error(diags, dag->path, node->on_error_pos,
                    "node '%s': on_error is dead_letter but no node reads '%s.errors'", node->name,
                    node->name);
  }
  /* More workers than tasks would only idle. */
  if (plan->worker_count > plan->task_count) plan->worker_count = plan->task_count ? plan->task_count : 1;
  free(order);
  if (diags->errors > errors_before) {
    sl_plan_free(plan);
    return NULL;
  }
  return plan;
}

void sl_plan_free(sl_plan_t *plan) {
  if (!plan) return;
  for (uint32_t t = 0; t < plan->task_count; t++) {
    sl_task_t *task = plan->tasks[t];
    for (uint32_t o = 0; o < task->op_count; o++) {
      sl_op_instance_t *inst = task->ops[o];
      for (uint32_t p = 0; p < inst->port_count; p++) {
        for (uint32_t k = 0; k < inst->ports[p].target_count; k++) {
          sl_out_target_t *tg = &inst->ports[p].targets[k];
          for (uint32_t c = 0; c < tg->channel_count; c++)
            if (tg->filling) sl_batch_free(tg->filling[c]);
          free(tg->filling);
          free(tg->channels);
        }
        free(inst->ports[p].targets);
        free(inst->ports[p].name);
      }
      free(inst->ports);
      for (uint32_t c = 0; c < inst->counter_count; c++) {
        free(inst->counters[c]->name);
        free(inst->counters[c]);
      }
      free(inst->counters);
      for (uint32_t a = 0; a < inst->agg_arg_count; a++) free(inst->agg_args[a]);
      free(inst->agg_args);
      free(inst);
    }
    for (uint32_t o = 0; o < task->output_count; o++) {
      sl_batch_t *b = task->outputs[o].pending_head;
      while (b) {
        sl_batch_t *next = b->next;
        sl_batch_free(b);
        b = next;
      }
    }
    free(task->ops);
    free(task->inputs);
    free(task->outputs);
    free(task);
  }
  for (uint32_t c = 0; c < plan->channel_count; c++) sl_channel_free(plan->channels[c]);
  for (uint32_t e = 0; e < plan->edge_count; e++) free(plan->edges[e].from_port);
  free(plan->edges);
  free(plan->channels);
  free(plan->tasks);
  if (plan->instances)
    for (size_t i = 0; i < plan->dag->node_count; i++) free(plan->instances[i]);
  free(plan->instances);
  free(plan->chain_root);
  free(plan);
}

static void dot_escape(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', out);
    fputc(*s, out);
  }
}

void sl_plan_write_dot(const sl_plan_t *plan, FILE *out) {
  fprintf(out, "digraph \"");
  dot_escape(out, plan->dag->name ? plan->dag->name : "dag");
  fprintf(out, "\" {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"monospace\"];\n");
  for (uint32_t t = 0; t < plan->task_count; t++) {
    const sl_task_t *task = plan->tasks[t];
    fprintf(out, "  t%u [label=\"task %u (worker %u)\\n", task->id, task->id,
            task->id % plan->worker_count);
    for (uint32_t o = 0; o < task->op_count; o++) {
      const sl_op_instance_t *inst = task->ops[o];
      if (o) fprintf(out, " -> ");
      dot_escape(out, inst->node->name);
      fprintf(out, "[%u]", inst->subtask);
    }
    fprintf(out, "\"");
    if (task->op_count > 1) fprintf(out, ", tooltip=\"chained\"");
    fprintf(out, "];\n");
  }
  for (uint32_t c = 0; c < plan->channel_count; c++) {
    const sl_channel_t *ch = plan->channels[c];
    const sl_task_t *from = ch->producer, *to = ch->consumer;
    fprintf(out, "  t%u -> t%u [label=\"%s\"%s];\n", from->id, to->id,
            sl_edge_kind_name((sl_edge_kind_t)ch->kind),
            ch->kind == SL_EDGE_KEY_BY ? ", style=bold" : "");
  }
  fprintf(out, "}\n");
}
