/*
 * dag_validate.c - check a loaded DAG against the operators it uses, see
 * dag.h. Every problem is reported (with the position of the offending
 * text) and checking goes on: a node whose `use` does not resolve only skips
 * the checks that need its operator.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "dag.h"
#include "registry.h"
#include "util.h"

/* Enumerating every elementary cycle can explode on dense graphs: cap it. */
#define SL_MAX_CYCLES_REPORTED 32
#define SL_CYCLE_SEARCH_BUDGET 1000000

typedef struct val_ctx {
  sl_dag_t *dag;
  sl_diag_list_t *diags;
} val_ctx_t;

static void val_error(val_ctx_t *c, sl_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void val_error(val_ctx_t *c, sl_pos_t pos, const char *fmt, ...) {
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  sl_diag_error(c->diags, c->dag->path, pos, "%s", msg ? msg : "(out of memory)");
  free(msg);
}

static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return SIZE_MAX;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Is a name at edit distance d from `word` a better "did you mean" than the
 * best so far? Within 2 edits, and not when every letter differs ('c' is not
 * a typo of 'a'). */
static bool closer(const char *word, size_t d, size_t *best) {
  if (d >= *best || d >= strlen(word)) return false;
  *best = d;
  return true;
}

/* Appends ", name" (or "name" first) to a bounded buffer, marking truncation. */
static void join_append(char *buf, size_t len, const char *name) {
  size_t used = strlen(buf);
  if (used + 4 >= len) return;
  int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
  if (n < 0 || (size_t)n >= len - used) strcpy(buf + len - 4, "...");
}

/* ------------------------------------------------------------ config values */

static const char *type_expected(sl_config_type_t t) {
  switch (t) {
  case SL_CONFIG_INT:
    return "an integer";
  case SL_CONFIG_DOUBLE:
    return "a number";
  case SL_CONFIG_BOOL:
    return "a boolean (true/false)";
  case SL_CONFIG_DURATION:
    return "a duration (e.g. 500ms, 10s, 1m, 2h, 1d)";
  case SL_CONFIG_STRING:
    return "a string";
  }
  return "a value of an unknown type";
}

static bool parse_bool(const char *s, int64_t *out) {
  static const char *const yes[] = {"true", "yes", "on"};
  static const char *const no[] = {"false", "no", "off"};
  for (size_t i = 0; i < 3; i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = 1;
      return true;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = 0;
      return true;
    }
  }
  return false;
}

/* Parse cv->text as `type` into cv. Returns false when it does not parse. */
static bool config_parse(sl_config_value_t *cv, sl_config_type_t type) {
  const char *s = cv->text;
  char *end = NULL;
  cv->type = type;
  cv->i = 0;
  cv->d = 0;
  switch (type) {
  case SL_CONFIG_STRING:
    return true;
  case SL_CONFIG_INT: {
    if (!(isdigit((unsigned char)s[0]) ||
          ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
      return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE) return false;
    cv->i = v;
    return true;
  }
  case SL_CONFIG_DOUBLE: {
    if (!*s || isspace((unsigned char)s[0])) return false;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return false;
    cv->d = v;
    return true;
  }
  case SL_CONFIG_BOOL:
    return parse_bool(s, &cv->i);
  case SL_CONFIG_DURATION:
    return sl_parse_duration_ms(s, &cv->i) == 0;
  }
  return false;
}

/* An undeclared key of a SL_OP_FREE_CONFIG operator: type it from YAML.
 * Quoted -> string; else integer, number, true/false, or a string. */
static void config_infer(sl_config_value_t *cv) {
  if (!cv->quoted) {
    if (config_parse(cv, SL_CONFIG_INT)) return;
    if (config_parse(cv, SL_CONFIG_DOUBLE)) return;
    if (strcmp(cv->text, "true") == 0 || strcmp(cv->text, "false") == 0) {
      cv->type = SL_CONFIG_BOOL;
      cv->i = cv->text[0] == 't';
      return;
    }
  }
  config_parse(cv, SL_CONFIG_STRING);
}

/* A declared key "P.*" stands for every key "P.X" (a mapping `P: {X: ..}`
 * in the DAG): settings an operator passes through whole. */
static bool is_prefix_key(const char *decl) {
  size_t l = strlen(decl);
  return l > 2 && decl[l - 2] == '.' && decl[l - 1] == '*';
}

static const sl_config_key_t *op_config_key(const sl_operator_t *op, const char *name) {
  for (size_t i = 0; i < op->config_count; i++)
    if (op->config[i].name && strcmp(op->config[i].name, name) == 0) return &op->config[i];
  for (size_t i = 0; i < op->config_count; i++) {
    const char *d = op->config[i].name;
    if (d && is_prefix_key(d) && strncmp(d, name, strlen(d) - 1) == 0 && name[strlen(d) - 1])
      return &op->config[i];
  }
  return NULL;
}

static const char *plugin_name(const sl_dag_node_t *n) {
  return n->plugin && n->plugin->desc && n->plugin->desc->name ? n->plugin->desc->name : "?";
}

/* An unquoted empty, ~ or null scalar: YAML's null. */
static bool config_is_null(const sl_config_value_t *cv) {
  if (cv->quoted) return false;
  const char *t = cv->text;
  return !*t || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
         strcmp(t, "NULL") == 0;
}

static void check_config(val_ctx_t *c, sl_dag_node_t *n) {
  const sl_operator_t *op = n->op;
  for (size_t i = 0; i < n->config_count; i++) {
    sl_config_value_t *cv = &n->config[i];
    if (cv->from_default) continue; /* validated when it was added */
    const sl_config_key_t *key = op_config_key(op, cv->key);
    if (!key && SL_OPERATOR_HAS(op, flags) && (op->flags & SL_OP_FREE_CONFIG)) {
      if (config_is_null(cv))
        val_error(c, cv->value_pos,
                  "node '%s': config '%s' has no value (an empty string is written \"\")",
                  n->name, cv->key);
      else
        config_infer(cv);
      continue;
    }
    if (!key) {
      char known[512] = "";
      const char *hint = NULL;
      size_t best = 3;
      for (size_t k = 0; k < op->config_count; k++) {
        join_append(known, sizeof(known), op->config[k].name);
        if (closer(cv->key, edit_distance(cv->key, op->config[k].name), &best))
          hint = op->config[k].name;
      }
      if (op->config_count == 0)
        val_error(c, cv->key_pos,
                  "node '%s': unknown config key '%s' for operator '%s' (it takes no config)",
                  n->name, cv->key, op->name);
      else if (hint)
        val_error(c, cv->key_pos,
                  "node '%s': unknown config key '%s' for operator '%s' (known: %s); did you "
                  "mean '%s'?",
                  n->name, cv->key, op->name, known, hint);
      else
        val_error(c, cv->key_pos,
                  "node '%s': unknown config key '%s' for operator '%s' (known: %s)", n->name,
                  cv->key, op->name, known);
      continue;
    }
    if (config_is_null(cv)) {
      /* `path:` or `path: null` is YAML's null, not a value: say so rather than
       * pass the text "null" (or nothing) to the operator. */
      cv->type = key->type;
      if (key->default_value)
        val_error(c, cv->value_pos,
                  "node '%s': config '%s' of operator '%s' has no value (write %s, or remove the "
                  "key to use the default '%s'; an empty string is written \"\")",
                  n->name, cv->key, op->name, type_expected(key->type), key->default_value);
      else
        val_error(c, cv->value_pos,
                  "node '%s': config '%s' of operator '%s' has no value and is required (%s; an "
                  "empty string is written \"\")",
                  n->name, cv->key, op->name, type_expected(key->type));
      continue;
    }
    bool scalar_type = key->type == SL_CONFIG_INT || key->type == SL_CONFIG_DOUBLE ||
                       key->type == SL_CONFIG_BOOL;
    if (scalar_type && cv->quoted) {
      /* "10" in YAML is a string: say so instead of silently converting it. */
      cv->type = key->type;
      val_error(c, cv->value_pos,
                "node '%s': config '%s' of operator '%s': expected %s, got a string \"%s\" "
                "(remove the quotes)",
                n->name, cv->key, op->name, type_expected(key->type), cv->text);
      continue;
    }
    if (!config_parse(cv, key->type))
      val_error(c, cv->value_pos, "node '%s': config '%s' of operator '%s': expected %s, got '%s'",
                n->name, cv->key, op->name, type_expected(key->type), cv->text);
  }

  /* Declared keys the DAG does not set: required ones are errors, the others
   * get their default. */
  for (size_t k = 0; k < op->config_count; k++) {
    const sl_config_key_t *key = &op->config[k];
    if (!key->name || is_prefix_key(key->name) || sl_dag_node_config(n, key->name)) continue;
    if (!key->default_value) {
      val_error(c, n->config_pos.line ? n->config_pos : n->pos,
                "node '%s': missing required config key '%s' for operator '%s' (%s)", n->name,
                key->name, op->name, type_expected(key->type));
      continue;
    }
    n->config = sl_xrealloc(n->config, (n->config_count + 1) * sizeof(*n->config));
    sl_config_value_t *cv = &n->config[n->config_count++];
    memset(cv, 0, sizeof(*cv));
    cv->key = sl_xstrdup(key->name);
    cv->text = sl_xstrdup(key->default_value);
    cv->from_default = true;
    if (!config_parse(cv, key->type))
      val_error(c, n->pos,
                "node '%s': plugin '%s' declares an invalid default '%s' for config key '%s' of "
                "operator '%s': expected %s",
                n->name, plugin_name(n), key->default_value, key->name, op->name,
                type_expected(key->type));
  }
}

/* ------------------------------------------------------------ edges, ports */

static bool op_has_port(const sl_operator_t *op, const char *port) {
  if (strcmp(port, "errors") == 0) return true;
  if (!op->outputs) return false;
  for (const char *const *p = op->outputs; *p; p++)
    if (strcmp(*p, port) == 0) return true;
  return false;
}

static void check_input(val_ctx_t *c, const sl_dag_node_t *n, const sl_dag_input_t *in) {
  const sl_dag_t *dag = c->dag;
  if (strcmp(in->node, n->name) == 0) {
    val_error(c, in->pos, "node '%s': a node cannot read its own output ('from: %s%s%s')",
              n->name, in->node, in->port ? "." : "", in->port ? in->port : "");
    return;
  }
  const sl_dag_node_t *p = sl_dag_find(dag, in->node);
  if (!p) {
    const char *hint = NULL;
    size_t best = 3;
    for (size_t i = 0; i < dag->node_count; i++) {
      if (&dag->nodes[i] == n) continue;
      if (closer(in->node, edit_distance(in->node, dag->nodes[i].name), &best))
        hint = dag->nodes[i].name;
    }
    if (hint)
      val_error(c, in->pos, "node '%s': unknown input node '%s' (did you mean '%s'?)", n->name,
                in->node, hint);
    else
      val_error(c, in->pos, "node '%s': unknown input node '%s'", n->name, in->node);
    return;
  }
  if (!p->op) return; /* its `use` did not resolve: reported already */
  if (!in->port) {
    if (p->op->kind == SL_KIND_SINK)
      val_error(c, in->pos,
                "node '%s': node '%s' is a sink (operator '%s') and has no default output; only "
                "its 'errors' port can be read ('from: %s.errors')",
                n->name, p->name, p->op->name, p->name);
    return;
  }
  if (op_has_port(p->op, in->port)) return;
  char ports[512] = "";
  const char *hint = NULL;
  size_t best = 3;
  if (p->op->outputs) {
    for (const char *const *q = p->op->outputs; *q; q++) {
      join_append(ports, sizeof(ports), *q);
      if (closer(in->port, edit_distance(in->port, *q), &best)) hint = *q;
    }
  }
  join_append(ports, sizeof(ports), "errors");
  if (closer(in->port, edit_distance(in->port, "errors"), &best)) hint = "errors";
  if (hint)
    val_error(c, in->pos,
              "node '%s': node '%s' (operator '%s') has no output port '%s' (did you mean '%s'? "
              "ports: %s)",
              n->name, p->name, p->op->name, in->port, hint, ports);
  else
    val_error(c, in->pos, "node '%s': node '%s' (operator '%s') has no output port '%s' (ports: %s)",
              n->name, p->name, p->op->name, in->port, ports);
}

static const char *partition_name(sl_partition_t p) {
  switch (p) {
  case SL_PARTITION_FORWARD:
    return "forward";
  case SL_PARTITION_REBALANCE:
    return "rebalance";
  case SL_PARTITION_BROADCAST:
    return "broadcast";
  case SL_PARTITION_KEY_BY:
    return "key_by";
  default:
    return "auto";
  }
}

static void check_node(val_ctx_t *c, sl_dag_node_t *n) {
  const sl_dag_t *dag = c->dag;
  if (n->parallelism > SL_MAX_PARALLELISM)
    val_error(c, n->parallelism_pos.line ? n->parallelism_pos : n->pos,
              "node '%s': parallelism must be between 1 and %d, got %u", n->name,
              SL_MAX_PARALLELISM, n->parallelism);
  for (size_t i = 0; i < n->input_count; i++) check_input(c, n, &n->inputs[i]);

  if (n->partition == SL_PARTITION_FORWARD) {
    for (size_t i = 0; i < n->input_count; i++) {
      const sl_dag_node_t *p = sl_dag_find(dag, n->inputs[i].node);
      if (!p || p == n) continue;
      if (sl_dag_node_parallelism(p) != sl_dag_node_parallelism(n))
        val_error(c, n->partition_pos.line ? n->partition_pos : n->pos,
                  "node '%s': partition 'forward' needs the same parallelism as its input '%s' "
                  "(%u here, %u there); use 'rebalance' or equal parallelism",
                  n->name, p->name, sl_dag_node_parallelism(n), sl_dag_node_parallelism(p));
    }
  }

  const sl_operator_t *op = n->op;
  if (!op) return;
  if (op->kind == SL_KIND_SOURCE) {
    if (n->input_count > 0)
      val_error(c, n->inputs[0].pos,
                "node '%s': operator '%s' is a source and reads no input: remove 'from'",
                n->name, op->name);
    if (n->key_by)
      val_error(c, n->key_by_pos.line ? n->key_by_pos : n->pos,
                "node '%s': key_by on a source (operator '%s') is meaningless: it has no input "
                "to partition; put key_by on the node that reads it",
                n->name, op->name);
    else if (n->partition != SL_PARTITION_AUTO)
      val_error(c, n->partition_pos.line ? n->partition_pos : n->pos,
                "node '%s': partition '%s' on a source (operator '%s') is meaningless: it has "
                "no input",
                n->name, partition_name(n->partition), op->name);
  } else if (n->input_count == 0) {
    val_error(c, n->pos, "node '%s': operator '%s' needs an input: add 'from: <node>'", n->name,
              op->name);
  }
  /* Timestamps and watermarks are assigned where records enter the job;
   * the nodes downstream inherit them. */
  if (n->event_time.set && op->kind != SL_KIND_SOURCE)
    val_error(c, n->event_time.pos,
              "node '%s': event_time on operator '%s', which is not a source: event_time belongs "
              "on the source node that produces the records",
              n->name, op->name);
  check_config(c, n);
}

/* ------------------------------------------------------------ graph */

typedef struct graph {
  size_t n;
  size_t **succ; /* succ[p]: consumers of p, without duplicates */
  size_t *succ_count;
  size_t *succ_cap;
} graph_t;

static void graph_add(graph_t *g, size_t from, size_t to) {
  for (size_t i = 0; i < g->succ_count[from]; i++)
    if (g->succ[from][i] == to) return;
  if (g->succ_count[from] == g->succ_cap[from]) {
    g->succ_cap[from] = g->succ_cap[from] ? g->succ_cap[from] * 2 : 4;
    g->succ[from] = sl_xrealloc(g->succ[from], g->succ_cap[from] * sizeof(size_t));
  }
  g->succ[from][g->succ_count[from]++] = to;
}

/* Edges producer -> consumer for inputs that name an existing node. */
static void graph_build(graph_t *g, const sl_dag_t *dag, bool with_self_loops) {
  g->n = dag->node_count;
  g->succ = sl_xcalloc(g->n, sizeof(*g->succ));
  g->succ_count = sl_xcalloc(g->n, sizeof(size_t));
  g->succ_cap = sl_xcalloc(g->n, sizeof(size_t));
  for (size_t c = 0; c < g->n; c++) {
    const sl_dag_node_t *n = &dag->nodes[c];
    for (size_t i = 0; i < n->input_count; i++) {
      const sl_dag_node_t *p = sl_dag_find(dag, n->inputs[i].node);
      if (!p) continue;
      size_t pi = (size_t)(p - dag->nodes);
      if (pi == c && !with_self_loops) continue;
      graph_add(g, pi, c);
    }
  }
}

static void graph_free(graph_t *g) {
  for (size_t i = 0; i < g->n; i++) free(g->succ[i]);
  free(g->succ);
  free(g->succ_count);
  free(g->succ_cap);
}

static void report_cycle(val_ctx_t *c, const size_t *path, size_t len) {
  const sl_dag_t *dag = c->dag;
  size_t size = 16;
  for (size_t i = 0; i < len; i++) size += strlen(dag->nodes[path[i]].name) + 4;
  size += strlen(dag->nodes[path[0]].name);
  char *buf = sl_xmalloc(size);
  buf[0] = '\0';
  size_t used = 0;
  for (size_t i = 0; i < len; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s -> ", dag->nodes[path[i]].name);
  snprintf(buf + used, size - used, "%s", dag->nodes[path[0]].name);
  val_error(c, dag->nodes[path[0]].pos, "cycle: %s", buf);
  free(buf);
}

/*
 * Report every elementary cycle once (self-loops are reported elsewhere).
 * A cycle is reported from its node that comes first in the file, found by
 * a DFS from that node through later nodes only. Nodes that cannot be on a
 * cycle (no way in or no way out, repeatedly) are trimmed first.
 */
static void check_cycles(val_ctx_t *c) {
  const sl_dag_t *dag = c->dag;
  size_t n = dag->node_count;
  if (n == 0) return;
  graph_t g;
  graph_build(&g, dag, false);

  graph_t rev = {0};
  rev.n = n;
  rev.succ = sl_xcalloc(n, sizeof(*rev.succ));
  rev.succ_count = sl_xcalloc(n, sizeof(size_t));
  rev.succ_cap = sl_xcalloc(n, sizeof(size_t));
  for (size_t v = 0; v < n; v++)
    for (size_t i = 0; i < g.succ_count[v]; i++) graph_add(&rev, g.succ[v][i], v);

  bool *alive = sl_xmalloc(n * sizeof(bool));
  size_t *indeg = sl_xmalloc(n * sizeof(size_t));
  size_t *outdeg = sl_xmalloc(n * sizeof(size_t));
  size_t *work = sl_xmalloc(n * sizeof(size_t));
  size_t nwork = 0;
  for (size_t v = 0; v < n; v++) {
    alive[v] = true;
    indeg[v] = rev.succ_count[v];
    outdeg[v] = g.succ_count[v];
    if (!indeg[v] || !outdeg[v]) {
      alive[v] = false;
      work[nwork++] = v;
    }
  }
  while (nwork > 0) {
    size_t v = work[--nwork];
    for (size_t i = 0; i < g.succ_count[v]; i++) {
      size_t w = g.succ[v][i];
      if (alive[w] && --indeg[w] == 0) {
        alive[w] = false;
        work[nwork++] = w;
      }
    }
    for (size_t i = 0; i < rev.succ_count[v]; i++) {
      size_t u = rev.succ[v][i];
      if (alive[u] && --outdeg[u] == 0) {
        alive[u] = false;
        work[nwork++] = u;
      }
    }
  }
  free(work);
  graph_free(&rev);

  size_t *path = sl_xmalloc(n * sizeof(size_t));
  size_t *next = sl_xmalloc(n * sizeof(size_t)); /* per depth: next successor to try */
  bool *on_path = sl_xcalloc(n, sizeof(bool));
  size_t reported = 0, steps = 0;
  bool gave_up = false;
  for (size_t s = 0; s < n && !gave_up; s++) {
    if (!alive[s]) continue;
    size_t depth = 1;
    path[0] = s;
    next[0] = 0;
    on_path[s] = true;
    while (depth > 0) {
      size_t v = path[depth - 1];
      if (next[depth - 1] >= g.succ_count[v]) {
        on_path[v] = false;
        depth--;
        continue;
      }
      size_t w = g.succ[v][next[depth - 1]++];
      if (++steps > SL_CYCLE_SEARCH_BUDGET) {
        gave_up = true;
        break;
      }
      if (w == s) {
        report_cycle(c, path, depth);
        if (++reported >= SL_MAX_CYCLES_REPORTED) {
          gave_up = true;
          break;
        }
      } else if (w > s && alive[w] && !on_path[w]) {
        path[depth] = w;
        next[depth] = 0;
        on_path[w] = true;
        depth++;
      }
    }
    for (size_t i = 0; i < depth; i++) on_path[path[i]] = false;
  }
  if (gave_up)
    val_error(c, dag->nodes[0].pos, "more cycles than shown: stopped looking after %zu",
              reported);
  free(path);
  free(next);
  free(on_path);
  free(alive);
  free(indeg);
  free(outdeg);
  graph_free(&g);
}

int sl_dag_topo_order(const sl_dag_t *dag, size_t *order_out) {
  size_t n = dag->node_count;
  if (n == 0) return 0;
  graph_t g;
  graph_build(&g, dag, true);
  size_t *indeg = sl_xcalloc(n, sizeof(size_t));
  for (size_t v = 0; v < n; v++)
    for (size_t i = 0; i < g.succ_count[v]; i++) indeg[g.succ[v][i]]++;
  /* order_out doubles as the queue: nodes are appended when they become ready. */
  size_t head = 0, tail = 0;
  for (size_t v = 0; v < n; v++)
    if (indeg[v] == 0) order_out[tail++] = v;
  while (head < tail) {
    size_t v = order_out[head++];
    for (size_t i = 0; i < g.succ_count[v]; i++)
      if (--indeg[g.succ[v][i]] == 0) order_out[tail++] = g.succ[v][i];
  }
  free(indeg);
  graph_free(&g);
  return tail == n ? 0 : SL_EINVAL;
}

/* ------------------------------------------------------------ public */

size_t sl_dag_validate(sl_dag_t *dag, struct sl_registry *reg, sl_diag_list_t *diags) {
  size_t before = diags->errors;
  val_ctx_t c = {.dag = dag, .diags = diags};
  for (size_t i = 0; i < dag->node_count; i++) {
    sl_dag_node_t *n = &dag->nodes[i];
    n->op = NULL;
    n->plugin = NULL;
    if (!n->use) continue; /* the loader reported it */
    char err[1024];
    err[0] = '\0';
    sl_plugin_handle_t *h = NULL;
    free(n->use_arg);
    n->use_arg = NULL;
    const sl_operator_t *op =
        sl_registry_resolve_use(reg, n->use, dag->dir, &h, &n->use_arg, err, sizeof(err));
    if (!op) {
      val_error(&c, n->use_pos.line ? n->use_pos : n->pos, "node '%s': %s", n->name,
                err[0] ? err : "cannot resolve 'use'");
      continue;
    }
    /* SCHEME:ARG names a file (a Lua script): it must be readable now. */
    if (n->use_arg && access(n->use_arg, R_OK) != 0)
      val_error(&c, n->use_pos.line ? n->use_pos : n->pos, "node '%s': cannot read '%s': %s",
                n->name, n->use_arg, strerror(errno));
    n->op = op;
    n->plugin = h;
  }
  for (size_t i = 0; i < dag->node_count; i++) check_node(&c, &dag->nodes[i]);
  check_cycles(&c);
  return diags->errors - before;
}

const sl_config_value_t *sl_dag_node_config(const sl_dag_node_t *n, const char *key) {
  for (size_t i = 0; i < n->config_count; i++)
    if (strcmp(n->config[i].key, key) == 0) return &n->config[i];
  return NULL;
}
