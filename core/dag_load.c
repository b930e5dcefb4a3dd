/*
 * dag_load.c - parse a DAG file (YAML) into an sl_dag_t, see dag.h.
 *
 * libyaml's event API builds a small tree of our own first (rather than its
 * document API) because the document loader keeps nothing when it meets a
 * syntax error, and because its tree would hide duplicate mapping keys and
 * aliases, which we want to report. Every container records whether it was
 * closed: after a syntax error the tree is cut short, and "missing key"
 * checks only run on containers that were read to their end.
 */
#define _GNU_SOURCE
#include "dag.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "util.h"

/* ------------------------------------------------------------ YAML tree */

typedef enum yn_kind { YN_SCALAR, YN_SEQ, YN_MAP } yn_kind_t;

typedef struct ynode {
  yn_kind_t kind;
  sl_pos_t pos;
  char *text;    /* scalars */
  bool quoted;   /* scalar style other than plain, or an explicit !!str tag */
  bool is_null;  /* plain empty, ~ or null */
  bool bad;      /* stands for something already reported (an alias) */
  bool complete; /* containers: the end event was seen */
  struct ynode **kids; /* sequence items, or mapping key, value, key, value... */
  size_t count, cap;
} ynode_t;

static void yn_free(ynode_t *n) {
  if (!n) return;
  for (size_t i = 0; i < n->count; i++) yn_free(n->kids[i]);
  free(n->kids);
  free(n->text);
  free(n);
}

static ynode_t *yn_new(yn_kind_t kind, yaml_mark_t mark) {
  ynode_t *n = sl_xcalloc(1, sizeof(*n));
  n->kind = kind;
  n->pos.line = (int)mark.line + 1;
  n->pos.col = (int)mark.column + 1;
  return n;
}

static void yn_append(ynode_t *parent, ynode_t *kid) {
  if (parent->count == parent->cap) {
    parent->cap = parent->cap ? parent->cap * 2 : 8;
    parent->kids = sl_xrealloc(parent->kids, parent->cap * sizeof(*parent->kids));
  }
  parent->kids[parent->count++] = kid;
}

/* Number of complete key/value pairs of a mapping (a key without its value
 * can be left over by a syntax error). */
static size_t yn_pairs(const ynode_t *map) { return map->count / 2; }

static const char *yn_kind_name(const ynode_t *n) {
  switch (n->kind) {
  case YN_MAP:
    return "a mapping";
  case YN_SEQ:
    return "a list";
  default:
    return "a scalar";
  }
}

/* ------------------------------------------------------------ load context */

typedef struct load_ctx {
  sl_diag_list_t *diags;
  const char *file;
  sl_dag_t *dag;
} load_ctx_t;

static void load_error(load_ctx_t *c, sl_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void load_error(load_ctx_t *c, sl_pos_t pos, const char *fmt, ...) {
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  sl_diag_error(c->diags, c->file, pos, "%s", msg ? msg : "(out of memory)");
  free(msg);
}

static const sl_pos_t no_pos = {0, 0};

/* Position of a byte offset in the text (reader errors carry only an offset). */
static sl_pos_t offset_pos(const char *text, size_t len, size_t offset) {
  sl_pos_t p = {1, 1};
  for (size_t i = 0; i < offset && i < len; i++) {
    if (text[i] == '\n') {
      p.line++;
      p.col = 1;
    } else {
      p.col++;
    }
  }
  return p;
}

static void report_yaml_error(load_ctx_t *c, const yaml_parser_t *p, const char *text,
                              size_t len) {
  const char *problem = p->problem ? p->problem : "unknown error";
  if (p->error == YAML_READER_ERROR) {
    load_error(c, offset_pos(text, len, p->problem_offset), "YAML error: %s", problem);
    return;
  }
  if (p->error == YAML_MEMORY_ERROR) {
    load_error(c, no_pos, "YAML error: out of memory");
    return;
  }
  sl_pos_t pos = {(int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1};
  if (p->context)
    load_error(c, pos, "YAML syntax error: %s (%s at line %d, column %d)", problem, p->context,
               (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
  else
    load_error(c, pos, "YAML syntax error: %s", problem);
}

static bool scalar_is_null(const ynode_t *n) {
  if (n->quoted) return false;
  const char *t = n->text;
  return !*t || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
         strcmp(t, "NULL") == 0;
}

/*
 * Read the YAML text into a tree. Returns the root (NULL if the text holds
 * no node); *syntax_error is set when libyaml stopped on an error.
 */
static ynode_t *yaml_build(load_ctx_t *c, const char *text, size_t len, bool *syntax_error) {
  yaml_parser_t parser;
  *syntax_error = false;
  if (!yaml_parser_initialize(&parser)) {
    load_error(c, no_pos, "YAML error: cannot initialise the parser");
    *syntax_error = true;
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

  ynode_t *root = NULL;
  ynode_t **stack = NULL;
  size_t depth = 0, stack_cap = 0;
  int documents = 0;
  bool done = false;

  while (!done) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      report_yaml_error(c, &parser, text, len);
      *syntax_error = true;
      break;
    }
    ynode_t *node = NULL;
    bool push = false;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = true;
      break;
    case YAML_DOCUMENT_START_EVENT:
      if (++documents > 1) {
        sl_pos_t pos = {(int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1};
        load_error(c, pos,
                   "a DAG file holds one YAML document; a second one starts here (remove "
                   "the '---' or split the file)");
        done = true;
      }
      break;
    case YAML_SCALAR_EVENT:
      node = yn_new(YN_SCALAR, ev.start_mark);
      node->text = sl_xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
      node->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                     (ev.data.scalar.tag &&
                      strcmp((const char *)ev.data.scalar.tag, YAML_STR_TAG) == 0);
      node->is_null = scalar_is_null(node);
      break;
    case YAML_ALIAS_EVENT:
      node = yn_new(YN_SCALAR, ev.start_mark);
      node->text = sl_xstrdup("");
      node->bad = true;
      load_error(c, node->pos,
                 "YAML aliases are not supported ('*%s'): write the value out in full",
                 (const char *)ev.data.alias.anchor);
      break;
    case YAML_SEQUENCE_START_EVENT:
      node = yn_new(YN_SEQ, ev.start_mark);
      push = true;
      break;
    case YAML_MAPPING_START_EVENT:
      node = yn_new(YN_MAP, ev.start_mark);
      push = true;
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      if (depth > 0) stack[--depth]->complete = true;
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (!node) continue;
    if (depth > 0)
      yn_append(stack[depth - 1], node);
    else if (!root)
      root = node;
    else
      yn_free(node); /* cannot happen within one document; be safe */
    if (push) {
      if (depth == stack_cap) {
        stack_cap = stack_cap ? stack_cap * 2 : 16;
        stack = sl_xrealloc(stack, stack_cap * sizeof(*stack));
      }
      stack[depth++] = node;
    }
  }
  free(stack);
  yaml_parser_delete(&parser);
  return root;
}

/* ------------------------------------------------------------ helpers */

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

/* The closest of `names` to `word` within an edit distance of 2 (and not
 * every letter different), or NULL. */
static const char *closest(const char *word, const char *const *names, size_t n) {
  const char *best = NULL;
  size_t best_d = 3;
  for (size_t i = 0; i < n; i++) {
    size_t d = edit_distance(word, names[i]);
    if (d < best_d && d < strlen(word)) {
      best_d = d;
      best = names[i];
    }
  }
  return best;
}

static void unknown_key(load_ctx_t *c, const ynode_t *key, const char *who, const char *what,
                        const char *const *valid, size_t n) {
  char list[256];
  size_t used = 0;
  list[0] = '\0';
  for (size_t i = 0; i < n && used < sizeof(list); i++)
    used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", valid[i]);
  const char *hint = closest(key->text, valid, n);
  if (hint)
    load_error(c, key->pos, "%s%sunknown %s '%s' (did you mean '%s'? valid: %s)", who ? who : "",
               who ? ": " : "", what, key->text, hint, list);
  else
    load_error(c, key->pos, "%s%sunknown %s '%s' (valid: %s)", who ? who : "", who ? ": " : "",
               what, key->text, list);
}

/*
 * Checks the key of pair i of a mapping: it must be a scalar and must not
 * repeat an earlier key. Returns false (after reporting) to skip the pair.
 */
static bool map_key_ok(load_ctx_t *c, const ynode_t *map, size_t i, const char *who,
                       const char *what) {
  const ynode_t *key = map->kids[2 * i];
  const char *sep = who ? ": " : "";
  who = who ? who : "";
  if (key->bad) return false;
  if (key->kind != YN_SCALAR) {
    load_error(c, key->pos, "%s%sa %s must be a plain string, got %s", who, sep, what,
               yn_kind_name(key));
    return false;
  }
  for (size_t j = 0; j < i; j++) {
    const ynode_t *prev = map->kids[2 * j];
    if (prev->kind == YN_SCALAR && strcmp(prev->text, key->text) == 0) {
      load_error(c, key->pos, "%s%sduplicate %s '%s' (first at line %d)", who, sep, what,
                 key->text, prev->pos.line);
      return false;
    }
  }
  return true;
}

/* 0 = ok, 1 = not an integer, 2 = out of the range of long long. */
static int parse_ll(const char *s, long long *out) {
  if (!(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') &&
                                         isdigit((unsigned char)s[1]))))
    return 1;
  errno = 0;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (*end) return 1;
  if (errno == ERANGE) return 2;
  *out = v;
  return 0;
}

/* An integer field within [min, max]; reports and returns false otherwise. */
static bool get_int(load_ctx_t *c, const ynode_t *v, const char *who, const char *field,
                    long long min, long long max, long long *out) {
  if (v->bad) return false;
  if (v->kind != YN_SCALAR) {
    load_error(c, v->pos, "%s: %s must be an integer, got %s", who, field, yn_kind_name(v));
    return false;
  }
  if (v->quoted) {
    load_error(c, v->pos, "%s: %s must be an integer, got a string \"%s\"", who, field, v->text);
    return false;
  }
  long long n = 0;
  int rc = parse_ll(v->text, &n);
  if (rc == 1) {
    load_error(c, v->pos, "%s: %s must be an integer, got '%s'", who, field, v->text);
    return false;
  }
  if (rc == 2 || n < min || n > max) {
    load_error(c, v->pos, "%s: %s must be between %lld and %lld, got %s", who, field, min, max,
               v->text);
    return false;
  }
  *out = n;
  return true;
}

/* A non-empty string field; returns a borrowed pointer or NULL (reported). */
static const char *get_string(load_ctx_t *c, const ynode_t *v, const char *who,
                              const char *field) {
  if (v->bad) return NULL;
  if (v->kind != YN_SCALAR) {
    load_error(c, v->pos, "%s: %s must be a string, got %s", who, field, yn_kind_name(v));
    return NULL;
  }
  if (v->is_null || !*v->text) {
    load_error(c, v->pos, "%s: %s must not be empty", who, field);
    return NULL;
  }
  return v->text;
}

static bool get_duration(load_ctx_t *c, const ynode_t *v, const char *who, const char *field,
                         int64_t *out) {
  if (v->bad) return false;
  if (v->kind != YN_SCALAR) {
    load_error(c, v->pos, "%s: %s must be a duration, got %s", who, field, yn_kind_name(v));
    return false;
  }
  if (v->text[0] == '-' && isdigit((unsigned char)v->text[1])) { /* clearer than "invalid" */
    load_error(c, v->pos, "%s: %s must not be negative, got '%s'", who, field, v->text);
    return false;
  }
  if (sl_parse_duration_ms(v->text, out) != 0) {
    load_error(c, v->pos,
               "%s: %s: invalid duration '%s' (expected a non-negative whole number with a unit "
               "ms, s, m, h or d, e.g. 500ms, 10s, 1m)",
               who, field, v->text);
    return false;
  }
  return true;
}

/* Index of `text` in `names`, or -1 (with an error listing the valid values). */
static int get_enum(load_ctx_t *c, const ynode_t *v, const char *who, const char *field,
                    const char *const *names, size_t n) {
  if (v->bad) return -1;
  if (v->kind == YN_SCALAR) {
    for (size_t i = 0; i < n; i++)
      if (strcmp(v->text, names[i]) == 0) return (int)i;
  }
  char list[256];
  size_t used = 0;
  list[0] = '\0';
  for (size_t i = 0; i < n && used < sizeof(list); i++)
    used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
  if (v->kind != YN_SCALAR)
    load_error(c, v->pos, "%s: %s must be one of %s, got %s", who, field, list, yn_kind_name(v));
  else
    load_error(c, v->pos, "%s: unknown %s value '%s' (valid: %s)", who, field, v->text, list);
  return -1;
}

/* A mapping, or null (treated as an empty mapping). Reports otherwise. */
static bool is_map_or_null(load_ctx_t *c, const ynode_t *v, const char *who, const char *field) {
  if (v->bad) return false;
  if (v->kind == YN_MAP) return true;
  if (v->kind == YN_SCALAR && v->is_null) return false;
  load_error(c, v->pos, "%s%s%s must be a mapping, got %s", who ? who : "", who ? ": " : "",
             field, yn_kind_name(v));
  return false;
}

/* ------------------------------------------------------------ durations */

int sl_parse_duration_ms(const char *text, int64_t *out_ms) {
  if (!text || !isdigit((unsigned char)text[0])) return SL_EINVAL;
  const char *p = text;
  int64_t v = 0;
  while (isdigit((unsigned char)*p)) {
    int d = *p - '0';
    if (v > (INT64_MAX - d) / 10) return SL_EINVAL;
    v = v * 10 + d;
    p++;
  }
  int64_t mult;
  if (*p == '\0' || strcmp(p, "ms") == 0)
    mult = 1;
  else if (strcmp(p, "s") == 0)
    mult = 1000;
  else if (strcmp(p, "m") == 0)
    mult = 60 * 1000;
  else if (strcmp(p, "h") == 0)
    mult = 3600 * 1000;
  else if (strcmp(p, "d") == 0)
    mult = INT64_C(86400) * 1000;
  else
    return SL_EINVAL;
  if (v > INT64_MAX / mult) return SL_EINVAL;
  *out_ms = v * mult;
  return 0;
}

/* ------------------------------------------------------------ settings */

static void load_state(load_ctx_t *c, const ynode_t *v) {
  static const char *const keys[] = {"backend", "dir"};
  static const char *const backends[] = {"memory", "rocksdb"};
  sl_dag_settings_t *s = &c->dag->settings;
  if (!is_map_or_null(c, v, "settings", "state")) return;
  for (size_t i = 0; i < yn_pairs(v); i++) {
    if (!map_key_ok(c, v, i, "settings: state", "key")) continue;
    const ynode_t *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
    if (strcmp(k->text, "backend") == 0) {
      int b = get_enum(c, val, "settings", "state.backend", backends, 2);
      if (b >= 0) {
        free(s->state_backend);
        s->state_backend = sl_xstrdup(backends[b]);
      }
    } else if (strcmp(k->text, "dir") == 0) {
      const char *d = get_string(c, val, "settings", "state.dir");
      if (d) s->state_dir = sl_xstrdup(d);
    } else {
      unknown_key(c, k, "settings: state", "key", keys, SL_ARRAY_LEN(keys));
    }
  }
}

static void load_checkpoints(load_ctx_t *c, const ynode_t *v) {
  static const char *const keys[] = {"interval", "dir", "keep"};
  sl_dag_settings_t *s = &c->dag->settings;
  if (!is_map_or_null(c, v, "settings", "checkpoints")) return;
  for (size_t i = 0; i < yn_pairs(v); i++) {
    if (!map_key_ok(c, v, i, "settings: checkpoints", "key")) continue;
    const ynode_t *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
    long long n;
    if (strcmp(k->text, "interval") == 0) {
      int64_t ms;
      if (get_duration(c, val, "settings", "checkpoints.interval", &ms))
        s->checkpoint_interval_ms = ms;
    } else if (strcmp(k->text, "dir") == 0) {
      const char *d = get_string(c, val, "settings", "checkpoints.dir");
      if (d) s->checkpoint_dir = sl_xstrdup(d);
    } else if (strcmp(k->text, "keep") == 0) {
      if (get_int(c, val, "settings", "checkpoints.keep", 1, INT32_MAX, &n))
        s->checkpoint_keep = (uint32_t)n;
    } else {
      unknown_key(c, k, "settings: checkpoints", "key", keys, SL_ARRAY_LEN(keys));
    }
  }
}

static void load_settings(load_ctx_t *c, const ynode_t *v) {
  static const char *const keys[] = {"workers",        "parallelism", "channel_capacity",
                                     "batch_size",     "max_key_groups", "state",
                                     "checkpoints"};
  sl_dag_settings_t *s = &c->dag->settings;
  if (!is_map_or_null(c, v, NULL, "settings")) return;
  for (size_t i = 0; i < yn_pairs(v); i++) {
    if (!map_key_ok(c, v, i, "settings", "key")) continue;
    const ynode_t *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
    long long n;
    if (strcmp(k->text, "workers") == 0) {
      if (get_int(c, val, "settings", "workers", 1, SL_MAX_WORKERS, &n)) s->workers = (uint32_t)n;
    } else if (strcmp(k->text, "parallelism") == 0) {
      if (get_int(c, val, "settings", "parallelism", 1, SL_MAX_PARALLELISM, &n))
        s->default_parallelism = (uint32_t)n;
    } else if (strcmp(k->text, "channel_capacity") == 0) {
      if (get_int(c, val, "settings", "channel_capacity", 1, 65536, &n))
        s->channel_capacity = (uint32_t)n;
    } else if (strcmp(k->text, "batch_size") == 0) {
      if (get_int(c, val, "settings", "batch_size", 1, 65536, &n)) s->batch_size = (uint32_t)n;
    } else if (strcmp(k->text, "max_key_groups") == 0) {
      if (get_int(c, val, "settings", "max_key_groups", 1, 32768, &n))
        s->max_key_groups = (uint32_t)n;
    } else if (strcmp(k->text, "state") == 0) {
      load_state(c, val);
    } else if (strcmp(k->text, "checkpoints") == 0) {
      load_checkpoints(c, val);
    } else {
      unknown_key(c, k, "settings", "key", keys, SL_ARRAY_LEN(keys));
    }
  }
}

/* ------------------------------------------------------------ nodes */

static bool node_name_valid(const char *s) {
  if (!*s || strlen(s) > SL_MAX_NAME_LEN) return false;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return false;
  return true;
}

static bool job_name_char(char ch) {
  return isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.';
}

static bool job_name_valid(const char *s) {
  if (!*s || strlen(s) > SL_MAX_NAME_LEN) return false;
  for (const char *p = s; *p; p++)
    if (!job_name_char(*p)) return false;
  return true;
}

static void add_input(load_ctx_t *c, sl_dag_node_t *n, const char *who, const ynode_t *v) {
  if (v->bad) return;
  if (v->kind != YN_SCALAR) {
    load_error(c, v->pos, "%s: each 'from' entry must be a node name, got %s", who,
               yn_kind_name(v));
    return;
  }
  const char *t = v->text;
  if (v->is_null || !*t) {
    load_error(c, v->pos, "%s: empty input in 'from'", who);
    return;
  }
  const char *dot = strchr(t, '.');
  if (dot && (dot == t || dot[1] == '\0' || strchr(dot + 1, '.'))) {
    load_error(c, v->pos, "%s: invalid input '%s' in 'from': expected 'node' or 'node.port'", who,
               t);
    return;
  }
  size_t nlen = dot ? (size_t)(dot - t) : strlen(t);
  const char *port = dot ? dot + 1 : NULL;
  for (size_t i = 0; i < n->input_count; i++) {
    const sl_dag_input_t *in = &n->inputs[i];
    bool same_port = (!in->port && !port) || (in->port && port && strcmp(in->port, port) == 0);
    if (strlen(in->node) == nlen && strncmp(in->node, t, nlen) == 0 && same_port) {
      load_error(c, v->pos, "%s: input '%s' is listed twice in 'from' (first at line %d)", who, t,
                 in->pos.line);
      return;
    }
  }
  n->inputs = sl_xrealloc(n->inputs, (n->input_count + 1) * sizeof(*n->inputs));
  sl_dag_input_t *in = &n->inputs[n->input_count++];
  in->node = sl_xstrndup(t, nlen);
  in->port = port ? sl_xstrdup(port) : NULL;
  in->pos = v->pos;
}

static void load_from(load_ctx_t *c, sl_dag_node_t *n, const char *who, const ynode_t *v) {
  if (v->bad) return;
  if (v->kind == YN_MAP) {
    load_error(c, v->pos, "%s: 'from' must be a node name or a list of them, got a mapping", who);
    return;
  }
  if (v->kind == YN_SCALAR) {
    add_input(c, n, who, v);
    return;
  }
  if (v->count == 0 && v->complete) {
    load_error(c, v->pos, "%s: 'from' is an empty list", who);
    return;
  }
  for (size_t i = 0; i < v->count; i++) add_input(c, n, who, v->kids[i]);
}

static void add_config(sl_dag_node_t *n, char *key, const ynode_t *k, const ynode_t *val) {
  sl_config_value_t *cv = &n->config[n->config_count++];
  cv->key = key;
  cv->text = sl_xstrdup(val->text);
  cv->quoted = val->quoted;
  cv->key_pos = k->pos;
  cv->value_pos = val->pos;
}

/*
 * A node's `config:`. A value is a scalar, or one level of mapping of
 * scalars, which becomes keys `parent.child` (for settings passed through
 * whole, such as `librdkafka: { linger.ms: 5 }`: the operator declares
 * `librdkafka.*`).
 */
static void load_config(load_ctx_t *c, sl_dag_node_t *n, const char *who, const ynode_t *v) {
  if (!is_map_or_null(c, v, who, "config")) return;
  size_t total = 0;
  for (size_t i = 0; i < yn_pairs(v); i++) {
    const ynode_t *val = v->kids[2 * i + 1];
    total += val->kind == YN_MAP ? yn_pairs(val) : 1;
  }
  n->config = sl_xcalloc(total ? total : 1, sizeof(*n->config));
  for (size_t i = 0; i < yn_pairs(v); i++) {
    if (!map_key_ok(c, v, i, who, "config key")) continue;
    const ynode_t *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
    if (val->bad) continue;
    if (val->kind == YN_MAP) {
      for (size_t j = 0; j < yn_pairs(val); j++) {
        if (!map_key_ok(c, val, j, who, "config key")) continue;
        const ynode_t *k2 = val->kids[2 * j], *v2 = val->kids[2 * j + 1];
        if (v2->bad) continue;
        if (v2->kind != YN_SCALAR) {
          load_error(c, v2->pos, "%s: config '%s.%s' must be a scalar value, got %s", who, k->text,
                     k2->text, yn_kind_name(v2));
          continue;
        }
        add_config(n, sl_xasprintf("%s.%s", k->text, k2->text), k2, v2);
      }
      continue;
    }
    if (val->kind != YN_SCALAR) {
      load_error(c, val->pos, "%s: config '%s' must be a scalar value or a mapping of them, got %s",
                 who, k->text, yn_kind_name(val));
      continue;
    }
    add_config(n, sl_xstrdup(k->text), k, val);
  }
}

/* ------------------------------------------------------------ event_time */

/*
 * `event_time:` of a node (sources only; dag_validate.c checks that). The
 * block is marked set even when its content is wrong, so that validation can
 * still say it is misplaced. Conflicts are checked once every key is read:
 * `timestamp` may come after `field` in the mapping.
 */
static void load_event_time(load_ctx_t *c, sl_dag_node_t *n, const char *who, const ynode_t *key,
                            const ynode_t *v) {
  static const char *const keys[] = {"timestamp", "field", "format", "max_out_of_order",
                                     "idle_timeout"};
  static const char *const origin_names[] = {"field", "source", "ingestion"};
  static const sl_ts_origin_t origin_values[] = {SL_TS_ORIGIN_FIELD, SL_TS_ORIGIN_SOURCE,
                                                 SL_TS_ORIGIN_INGESTION};
  static const char *const format_names[] = {"epoch_ms", "epoch_s", "rfc3339"};
  static const sl_ts_format_t format_values[] = {SL_TS_FORMAT_EPOCH_MS, SL_TS_FORMAT_EPOCH_S,
                                                 SL_TS_FORMAT_RFC3339};
  sl_event_time_t *et = &n->event_time;
  et->set = true;
  et->pos = key->pos;
  et->origin = SL_TS_ORIGIN_SOURCE;
  et->format = SL_TS_FORMAT_EPOCH_MS;
  if (v->kind == YN_SCALAR && !v->is_null && !v->bad) {
    /* `event_time: ts` is a likely slip for `event_time: { field: ts }`. */
    load_error(c, v->pos,
               "%s: event_time must be a mapping such as { field: ts, max_out_of_order: 5s }, got "
               "a plain value '%s'",
               who, v->text);
    return;
  }
  if (!is_map_or_null(c, v, who, "event_time")) return; /* null: all defaults */

  char *where = sl_xasprintf("%s: event_time", who);
  /* Keys seen (even with a bad value, already reported) and their positions. */
  const ynode_t *ts_key = NULL, *field_key = NULL, *format_key = NULL;
  bool origin_ok = false;
  for (size_t i = 0; i < yn_pairs(v); i++) {
    if (!map_key_ok(c, v, i, where, "key")) continue;
    const ynode_t *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
    const char *s;
    int e;
    int64_t ms;
    if (strcmp(k->text, "timestamp") == 0) {
      ts_key = k;
      if ((e = get_enum(c, val, who, "event_time.timestamp", origin_names, 3)) >= 0) {
        et->origin = origin_values[e];
        origin_ok = true;
      }
    } else if (strcmp(k->text, "field") == 0) {
      field_key = k;
      if ((s = get_string(c, val, who, "event_time.field")) != NULL) {
        free(et->field);
        et->field = sl_xstrdup(s);
        et->field_pos = val->pos;
      }
    } else if (strcmp(k->text, "format") == 0) {
      format_key = k;
      if ((e = get_enum(c, val, who, "event_time.format", format_names, 3)) >= 0)
        et->format = format_values[e];
    } else if (strcmp(k->text, "max_out_of_order") == 0) {
      if (get_duration(c, val, who, "event_time.max_out_of_order", &ms))
        et->max_out_of_order_ms = ms;
    } else if (strcmp(k->text, "idle_timeout") == 0) {
      if (get_duration(c, val, who, "event_time.idle_timeout", &ms)) et->idle_timeout_ms = ms;
    } else {
      unknown_key(c, k, where, "key", keys, SL_ARRAY_LEN(keys));
    }
  }
  free(where);

  if (!origin_ok) {
    /* No (valid) `timestamp`: the default follows from what is given, a field
     * means "read it". A bad `timestamp` was reported: no conflicts on top. */
    if (field_key) et->origin = SL_TS_ORIGIN_FIELD;
    else if (format_key && !ts_key && v->complete)
      load_error(c, format_key->pos,
                 "%s: event_time.format needs event_time.field (the JSON field that holds the "
                 "timestamp); without a field the source's own timestamps are used",
                 who);
    return;
  }
  if (et->origin == SL_TS_ORIGIN_FIELD) {
    /* Only when the block was read to its end, and not when `field:` had a
     * bad value (reported already). */
    if (!field_key && v->complete)
      load_error(c, ts_key->pos,
                 "%s: event_time.timestamp is 'field' but event_time.field is missing (the name "
                 "of the top-level JSON field of the value that holds the timestamp)",
                 who);
    return;
  }
  const char *origin = et->origin == SL_TS_ORIGIN_SOURCE ? "source" : "ingestion";
  const char *why = et->origin == SL_TS_ORIGIN_SOURCE
                        ? "the source plugin sets the timestamps"
                        : "records are stamped with the time they enter the job";
  if (field_key)
    load_error(c, field_key->pos,
               "%s: event_time.field conflicts with 'timestamp: %s' (%s); use 'timestamp: field' "
               "to read the field, or remove it",
               who, origin, why);
  if (format_key)
    load_error(c, format_key->pos,
               "%s: event_time.format conflicts with 'timestamp: %s' (%s); format applies to "
               "'timestamp: field' only",
               who, origin, why);
  /* Nothing is read from the value: do not hand a field to the runtime. */
  free(et->field);
  et->field = NULL;
}

static const char *const node_keys[] = {"use",         "from",   "config",    "on_error",
                                        "parallelism", "key_by", "partition", "event_time"};

static void load_node(load_ctx_t *c, sl_dag_node_t *n, const ynode_t *key, const ynode_t *spec) {
  static const char *const on_error_names[] = {"fail", "skip", "dead_letter"};
  static const sl_on_error_t on_error_values[] = {SL_ON_ERROR_FAIL, SL_ON_ERROR_SKIP,
                                                  SL_ON_ERROR_DEAD_LETTER};
  static const char *const partition_names[] = {"forward", "rebalance", "broadcast"};
  static const sl_partition_t partition_values[] = {SL_PARTITION_FORWARD, SL_PARTITION_REBALANCE,
                                                    SL_PARTITION_BROADCAST};
  n->name = sl_xstrdup(key->text);
  n->pos = key->pos;
  char *who = sl_xasprintf("node '%s'", n->name);
  if (!node_name_valid(n->name))
    load_error(c, key->pos,
               "invalid node name '%s': use letters, digits, '_' and '-' only ('.' separates a "
               "node from its output port in 'from'), at most %d characters",
               n->name, SL_MAX_NAME_LEN);

  if (spec->bad) goto out;
  if (spec->kind == YN_SCALAR && spec->is_null) {
    load_error(c, key->pos, "%s: empty node: it needs at least 'use'", who);
    goto out;
  }
  if (spec->kind != YN_MAP) {
    load_error(c, spec->pos, "%s: a node must be a mapping (use, from, config ...), got %s", who,
               spec->kind == YN_SCALAR ? "a plain value" : yn_kind_name(spec));
    goto out;
  }

  bool explicit_partition = false;
  for (size_t i = 0; i < yn_pairs(spec); i++) {
    if (!map_key_ok(c, spec, i, who, "key")) continue;
    const ynode_t *k = spec->kids[2 * i], *v = spec->kids[2 * i + 1];
    const char *s;
    long long num;
    int e;
    if (strcmp(k->text, "use") == 0) {
      if ((s = get_string(c, v, who, "use")) != NULL) {
        n->use = sl_xstrdup(s);
        n->use_pos = v->pos;
      }
    } else if (strcmp(k->text, "from") == 0) {
      load_from(c, n, who, v);
    } else if (strcmp(k->text, "config") == 0) {
      n->config_pos = k->pos;
      load_config(c, n, who, v);
    } else if (strcmp(k->text, "on_error") == 0) {
      n->on_error_pos = v->pos;
      if ((e = get_enum(c, v, who, "on_error", on_error_names, 3)) >= 0)
        n->on_error = on_error_values[e];
    } else if (strcmp(k->text, "parallelism") == 0) {
      n->parallelism_pos = v->pos;
      if (get_int(c, v, who, "parallelism", 1, SL_MAX_PARALLELISM, &num))
        n->parallelism = (uint32_t)num;
    } else if (strcmp(k->text, "key_by") == 0) {
      if ((s = get_string(c, v, who, "key_by")) != NULL) {
        n->key_by = sl_xstrdup(s);
        n->key_by_pos = v->pos;
      }
    } else if (strcmp(k->text, "partition") == 0) {
      n->partition_pos = v->pos;
      explicit_partition = true;
      if ((e = get_enum(c, v, who, "partition", partition_names, 3)) >= 0)
        n->partition = partition_values[e];
    } else if (strcmp(k->text, "event_time") == 0) {
      load_event_time(c, n, who, k, v);
    } else {
      unknown_key(c, k, who, "key", node_keys, SL_ARRAY_LEN(node_keys));
    }
  }
  if (n->key_by) {
    if (explicit_partition)
      load_error(c, n->partition_pos,
                 "%s: 'partition' conflicts with 'key_by' (key_by already partitions by key); "
                 "remove one of them",
                 who);
    n->partition = SL_PARTITION_KEY_BY;
  }
  if (!n->use && spec->complete) {
    bool had_use = false; /* a `use:` with a bad value was reported already */
    for (size_t i = 0; i < yn_pairs(spec); i++)
      if (spec->kids[2 * i]->kind == YN_SCALAR && strcmp(spec->kids[2 * i]->text, "use") == 0)
        had_use = true;
    if (!had_use) load_error(c, n->pos, "%s: missing 'use' (the operator to run)", who);
  }
out:
  free(who);
}

static void load_nodes(load_ctx_t *c, const ynode_t *key, const ynode_t *v) {
  sl_dag_t *dag = c->dag;
  if (v->bad) return;
  if (v->kind == YN_SCALAR && v->is_null) {
    load_error(c, key->pos, "'nodes' is empty: a DAG needs at least one node");
    return;
  }
  if (v->kind != YN_MAP) {
    load_error(c, v->pos, "'nodes' must be a mapping of node name -> node, got %s%s",
               yn_kind_name(v),
               v->kind == YN_SEQ ? " (write `name:` keys, not `- ` list items)" : "");
    return;
  }
  if (yn_pairs(v) == 0) {
    if (v->complete) load_error(c, v->pos, "'nodes' is empty: a DAG needs at least one node");
    return;
  }
  dag->nodes = sl_xcalloc(yn_pairs(v), sizeof(*dag->nodes));
  for (size_t i = 0; i < yn_pairs(v); i++) {
    const ynode_t *k = v->kids[2 * i], *spec = v->kids[2 * i + 1];
    if (k->bad) continue;
    if (k->kind != YN_SCALAR) {
      load_error(c, k->pos, "a node name must be a plain string, got %s", yn_kind_name(k));
      continue;
    }
    const sl_dag_node_t *first = sl_dag_find(dag, k->text);
    if (first) {
      load_error(c, k->pos, "duplicate node '%s' (first defined at line %d)", k->text,
                 first->pos.line);
      continue;
    }
    load_node(c, &dag->nodes[dag->node_count++], k, spec);
  }
}

static void load_root(load_ctx_t *c, const ynode_t *root) {
  static const char *const keys[] = {"name", "settings", "nodes"};
  if (!root || (root->kind == YN_SCALAR && root->is_null)) {
    load_error(c, root ? root->pos : no_pos, "the file is empty: a DAG needs 'nodes'");
    return;
  }
  if (root->bad) return;
  if (root->kind != YN_MAP) {
    load_error(c, root->pos, "the top level must be a mapping (name, settings, nodes), got %s",
               root->kind == YN_SCALAR ? "a plain value" : yn_kind_name(root));
    return;
  }
  bool have_nodes = false;
  for (size_t i = 0; i < yn_pairs(root); i++) {
    if (!map_key_ok(c, root, i, NULL, "top-level key")) continue;
    const ynode_t *k = root->kids[2 * i], *v = root->kids[2 * i + 1];
    if (strcmp(k->text, "name") == 0) {
      const char *s = get_string(c, v, "top level", "name");
      if (s && !job_name_valid(s)) {
        load_error(c, v->pos,
                   "invalid job name '%.80s%s': use letters, digits, '_', '-' and '.' only, at "
                   "most %d characters (it names checkpoints, metrics and log lines)",
                   s, strlen(s) > 80 ? "..." : "", SL_MAX_NAME_LEN);
      } else if (s) {
        free(c->dag->name);
        c->dag->name = sl_xstrdup(s);
      }
    } else if (strcmp(k->text, "settings") == 0) {
      load_settings(c, v);
    } else if (strcmp(k->text, "nodes") == 0) {
      have_nodes = true;
      load_nodes(c, k, v);
    } else {
      unknown_key(c, k, NULL, "top-level key", keys, SL_ARRAY_LEN(keys));
    }
  }
  if (!have_nodes && root->complete)
    load_error(c, root->pos, "missing 'nodes': a DAG needs at least one node");
}

/* ------------------------------------------------------------ public API */

static void dag_set_path(sl_dag_t *dag, const char *path) {
  if (!path) path = "<string>";
  dag->path = sl_xstrdup(path);
  const char *slash = strrchr(path, '/');
  if (!slash)
    dag->dir = sl_xstrdup(".");
  else if (slash == path)
    dag->dir = sl_xstrdup("/");
  else
    dag->dir = sl_xstrndup(path, (size_t)(slash - path));
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  if (len > SL_MAX_NAME_LEN) len = SL_MAX_NAME_LEN;
  dag->name = len ? sl_xstrndup(base, len) : sl_xstrdup("dag");
  /* A name from the file's name: other characters become '_'. */
  for (char *p = dag->name; *p; p++)
    if (!job_name_char(*p)) *p = '_';
}

static void settings_defaults(sl_dag_settings_t *s) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) cpus = 1;
  if (cpus > SL_MAX_WORKERS) cpus = SL_MAX_WORKERS;
  s->workers = (uint32_t)cpus;
  s->channel_capacity = 16;
  s->batch_size = 256;
  s->max_key_groups = 128;
  s->state_backend = sl_xstrdup("memory");
  s->checkpoint_keep = 3;
}

sl_dag_t *sl_dag_load_string(const char *text, size_t len, const char *path,
                             sl_diag_list_t *diags) {
  sl_dag_t *dag = sl_xcalloc(1, sizeof(*dag));
  dag_set_path(dag, path);
  settings_defaults(&dag->settings);
  load_ctx_t c = {.diags = diags, .file = dag->path, .dag = dag};
  bool syntax_error = false;
  ynode_t *root = yaml_build(&c, text ? text : "", text ? len : 0, &syntax_error);
  if (syntax_error && !root) {
    sl_dag_free(dag); /* nothing to show: the error came before any content */
    return NULL;
  }
  load_root(&c, root);
  yn_free(root);
  /* settings.parallelism applies to every node that does not set its own. */
  if (dag->settings.default_parallelism)
    for (size_t i = 0; i < dag->node_count; i++)
      if (!dag->nodes[i].parallelism) dag->nodes[i].parallelism = dag->settings.default_parallelism;
  return dag;
}

sl_dag_t *sl_dag_load(const char *path, sl_diag_list_t *diags) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sl_diag_error(diags, path, no_pos, "cannot read the DAG file: %s", strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 8192;
      buf = sl_xrealloc(buf, cap);
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  if (ferror(f)) {
    int err = errno;
    sl_diag_error(diags, path, no_pos, "cannot read the DAG file: %s", strerror(err ? err : EIO));
    fclose(f);
    free(buf);
    return NULL;
  }
  fclose(f);
  sl_dag_t *dag = sl_dag_load_string(buf, len, path, diags);
  free(buf);
  return dag;
}

void sl_dag_free(sl_dag_t *dag) {
  if (!dag) return;
  for (size_t i = 0; i < dag->node_count; i++) {
    sl_dag_node_t *n = &dag->nodes[i];
    free(n->name);
    free(n->use);
    free(n->use_arg);
    for (size_t j = 0; j < n->input_count; j++) {
      free(n->inputs[j].node);
      free(n->inputs[j].port);
    }
    free(n->inputs);
    free(n->key_by);
    for (size_t j = 0; j < n->config_count; j++) {
      free(n->config[j].key);
      free(n->config[j].text);
    }
    free(n->config);
    free(n->event_time.field);
  }
  free(dag->nodes);
  free(dag->settings.state_backend);
  free(dag->settings.state_dir);
  free(dag->settings.checkpoint_dir);
  free(dag->path);
  free(dag->dir);
  free(dag->name);
  free(dag);
}

sl_dag_node_t *sl_dag_find(const sl_dag_t *dag, const char *name) {
  if (!dag || !name) return NULL;
  for (size_t i = 0; i < dag->node_count; i++)
    if (strcmp(dag->nodes[i].name, name) == 0) return &dag->nodes[i];
  return NULL;
}
