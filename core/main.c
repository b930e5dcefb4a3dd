/*
 * main.c - the `sluice` command line: run, validate, graph, plugins, version.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dag.h"
#include "diag.h"
#include "checkpoint.h"
#include "control.h"
#include "job.h"
#include "kafka_dev.h"
#include "log.h"
#include "plan.h"
#include "registry.h"
#include "summary.h"
#include "util.h"

static const char *const usage_main =
    "usage: sluice <command> [options]\n"
    "\n"
    "Commands:\n"
    "  run DAG         run a DAG file until its sources end (or SIGINT/SIGTERM)\n"
    "  validate DAG    check a DAG file; print every error as file:line:column\n"
    "  graph DAG       print the physical plan as Graphviz DOT\n"
    "  savepoint DAG   take a savepoint of the running job of DAG (--stop: and stop it)\n"
    "  plugins         list the plugins found and their operators\n"
    "  kafka-dev       run a Kafka cluster for development (librdkafka's mock)\n"
    "  version         print the version and ABI\n"
    "  help [COMMAND]  print help for a command\n"
    "\n"
    "Environment: SLUICE_PLUGIN_PATH (extra plugin directories, ':'-separated),\n"
    "SLUICE_LOG_LEVEL (error|warn|info|debug), SLUICE_LOG_FORMAT (text|json).\n"
    "Run `sluice COMMAND --help` for a command's options.\n";

static const char *const usage_run =
    "usage: sluice run [options] DAG\n"
    "\n"
    "Load, validate and run DAG. Bounded sources end the job: end of input flows\n"
    "through the DAG, sinks flush, and the process exits 0 after printing a summary\n"
    "(records in/out per node, elapsed time, rate) on stderr. SIGINT/SIGTERM stop\n"
    "gracefully (sources end, sinks flush); a second signal exits at once.\n"
    "\n"
    "With settings.checkpoints.dir, the job takes checkpoints (every\n"
    "checkpoints.interval, and a final one when input ends) and resumes from the\n"
    "newest complete one found there: state restored, sources rewound. A damaged\n"
    "checkpoint is skipped with a warning; one that does not fit the DAG is refused.\n"
    "\n"
    "Options (override the DAG's settings):\n"
    "  -w, --workers N            worker threads\n"
    "  -b, --batch-size N         records per batch\n"
    "  -c, --channel-capacity N   batches per channel\n"
    "  -P, --plugin-path DIR      also search DIR for plugins (repeatable)\n"
    "  -l, --log-level LEVEL      error|warn|info|debug (default info)\n"
    "  -q, --quiet                no summary, and only warnings and errors in the log\n"
    "      --fresh                ignore existing checkpoints: start from the beginning\n"
    "      --from DIR             start from this savepoint or checkpoint directory\n"
    "                             (it must be valid: no fallback)\n"
    "  -h, --help                 this help\n"
    "\n"
    "Exit status: 0 done, 1 the job failed (or its checkpoint cannot be restored),\n"
    "2 the DAG is invalid or usage error.\n";

static const char *const usage_validate =
    "usage: sluice validate [options] DAG\n"
    "\n"
    "Check DAG without running it: YAML syntax, node specs, plugins and their\n"
    "config maps, inputs and ports, cycles, parallelism. Every problem is printed\n"
    "on stderr as FILE:LINE:COLUMN: error: MESSAGE.\n"
    "\n"
    "Options:\n"
    "  -P, --plugin-path DIR   also search DIR for plugins (repeatable)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 valid, 2 invalid (or usage error).\n";

static const char *const usage_graph =
    "usage: sluice graph [options] DAG\n"
    "\n"
    "Print the physical plan of DAG as Graphviz DOT: one box per task with its\n"
    "chained operators (node[subtask]), one arrow per channel labelled with its\n"
    "edge kind (forward, rebalance, broadcast, key_by). Render with\n"
    "`sluice graph dag.yaml | dot -Tsvg > plan.svg`.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE       write to FILE instead of stdout\n"
    "  -w, --workers N         worker count to show task placement for\n"
    "  -P, --plugin-path DIR   also search DIR for plugins (repeatable)\n"
    "  -h, --help              this help\n";

static const char *const usage_plugins =
    "usage: sluice plugins [options]\n"
    "\n"
    "List the plugins on the plugin path (SLUICE_PLUGIN_PATH, then the installed\n"
    "and build-tree plugin directories) with their operators.\n"
    "\n"
    "Options:\n"
    "  -d, --describe NAME     describe an operator (NAME, PLUGIN:OP or a .so path):\n"
    "                          kind, version, outputs, config keys with types,\n"
    "                          defaults and descriptions\n"
    "  -P, --plugin-path DIR   also search DIR for plugins (repeatable)\n"
    "  -h, --help              this help\n";

static const char *const usage_savepoint =
    "usage: sluice savepoint [options] DAG\n"
    "\n"
    "Ask the running job of DAG (found through the control socket in its\n"
    "settings.checkpoints.dir, relative to the current directory as in the DAG)\n"
    "for a savepoint: a checkpoint taken now and kept apart from the periodic ones\n"
    "(under DIR/savepoints/ unless --into says where). Waits until it is written\n"
    "and prints its directory. Start a job from it with `sluice run --from DIR`,\n"
    "also a changed DAG: state is matched by node name, keyed state redistributed.\n"
    "\n"
    "Options:\n"
    "      --stop        stop the job once the savepoint is written, without\n"
    "                    draining (no end-of-input flush: a job started from the\n"
    "                    savepoint goes on where it stopped)\n"
    "      --into DIR    write the savepoint to DIR (must not exist; same\n"
    "                    filesystem as the checkpoints for a free hard-link copy)\n"
    "  -h, --help        this help\n"
    "\n"
    "Exit status: 0 written, 1 failed (no job answering, or the savepoint failed),\n"
    "2 usage error.\n";

static const char *const usage_kafka_dev =
    "usage: sluice kafka-dev [options]\n"
    "\n"
    "Run a Kafka cluster for development and tests: librdkafka's mock cluster, in\n"
    "this process, listening on 127.0.0.1 only, its data in memory. Prints the\n"
    "bootstrap servers (a line \"bootstrap.servers=HOST:PORT,...\") and runs until\n"
    "SIGINT or SIGTERM. See docs/kafka.md for what the mock does not do.\n"
    "\n"
    "Options:\n"
    "  --brokers N              number of brokers, 1 to 16 (default 1)\n"
    "  --topic NAME[:PARTS]     create a topic with PARTS partitions (default 1);\n"
    "                           repeatable. Clients may also create topics by using them\n"
    "  --write FILE             also write the bootstrap servers to FILE (one line),\n"
    "                           removed when the cluster stops\n"
    "  --control FIFO           create a named pipe FIFO and apply the fault commands\n"
    "                           written to it, one per line: error API CODE [COUNT],\n"
    "                           down BROKER, up BROKER, rtt BROKER MS,\n"
    "                           coordinator transaction|group KEY BROKER (docs/kafka.md)\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 the cluster could not start, 2 usage error.\n";

static const char *const usage_version =
    "usage: sluice version\n\nPrint the sluice version and the plugin ABI it provides.\n";

typedef struct cli_opts {
  int workers, batch_size, channel_capacity;
  int quiet;
  int fresh;
  int stop;
  const char *from;
  const char *into;
  const char *output;
  const char *describe;
  char **plugin_dirs;
  int plugin_dir_count;
} cli_opts_t;

static int parse_positive(const char *text, const char *what, long max, int *out) {
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (!*text || *end || v <= 0 || v > max) {
    fprintf(stderr, "sluice: %s must be an integer between 1 and %ld, got '%s'\n", what, max, text);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* Parse a command's options; `allowed` lists the short option letters that
 * command takes (its --help documents exactly those). Returns the index of
 * the first operand, or -1. */
static int parse_opts(int argc, char **argv, const char *usage, const char *allowed,
                      cli_opts_t *o) {
  static const struct option longopts[] = {
      {"workers", required_argument, NULL, 'w'},
      {"batch-size", required_argument, NULL, 'b'},
      {"channel-capacity", required_argument, NULL, 'c'},
      {"plugin-path", required_argument, NULL, 'P'},
      {"log-level", required_argument, NULL, 'l'},
      {"quiet", no_argument, NULL, 'q'},
      {"output", required_argument, NULL, 'o'},
      {"describe", required_argument, NULL, 'd'},
      {"fresh", no_argument, NULL, 'F'},
      {"from", required_argument, NULL, 'R'},
      {"stop", no_argument, NULL, 'S'},
      {"into", required_argument, NULL, 'I'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  optind = 1;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":w:b:c:P:l:qFR:SI:o:d:h", longopts, NULL)) != -1) {
    if (c == ':') {
      fprintf(stderr, "sluice: option '%s' needs a value\n\n%s", argv[optind - 1], usage);
      return -1;
    }
    if (c == '?' || (c != 'h' && !strchr(allowed, c))) {
      fprintf(stderr, "sluice: unknown option '%s'\n\n%s", argv[optind - 1], usage);
      return -1;
    }
    switch (c) {
    case 'w':
      if (parse_positive(optarg, "--workers", SL_MAX_WORKERS, &o->workers)) return -1;
      break;
    case 'b':
      if (parse_positive(optarg, "--batch-size", 65536, &o->batch_size)) return -1;
      break;
    case 'c':
      if (parse_positive(optarg, "--channel-capacity", 65536, &o->channel_capacity)) return -1;
      break;
    case 'P':
      o->plugin_dirs = sl_xrealloc(o->plugin_dirs, (size_t)(o->plugin_dir_count + 1) * sizeof(char *));
      o->plugin_dirs[o->plugin_dir_count++] = optarg;
      break;
    case 'l': {
      sl_log_level_t l;
      if (sl_log_parse_level(optarg, &l) != 0) {
        fprintf(stderr, "sluice: unknown log level '%s' (error, warn, info, debug)\n", optarg);
        return -1;
      }
      sl_log_set_level(l);
      break;
    }
    case 'q':
      o->quiet = 1;
      if (sl_log_enabled(SL_LOG_INFO)) sl_log_set_level(SL_LOG_WARN);
      break;
    case 'F': o->fresh = 1; break;
    case 'R': o->from = optarg; break;
    case 'S': o->stop = 1; break;
    case 'I': o->into = optarg; break;
    case 'o': o->output = optarg; break;
    case 'd': o->describe = optarg; break;
    case 'h': fputs(usage, stdout); exit(0);
    default: fputs(usage, stderr); return -1;
    }
  }
  return optind;
}

static sl_registry_t *make_registry(const cli_opts_t *o) {
  sl_registry_t *reg = sl_registry_new();
  for (int i = o->plugin_dir_count - 1; i >= 0; i--) sl_registry_add_dir(reg, o->plugin_dirs[i]);
  return reg;
}

/* Load + validate + plan. On problems prints them and returns NULL plan. */
typedef struct prepared {
  sl_dag_t *dag;
  sl_registry_t *reg;
  sl_plan_t *plan;
} prepared_t;

static int prepare(const char *path, const cli_opts_t *o, prepared_t *p, int want_plan) {
  memset(p, 0, sizeof(*p));
  sl_diag_list_t diags;
  sl_diag_init(&diags);
  p->reg = make_registry(o);
  p->dag = sl_dag_load(path, &diags);
  if (p->dag && diags.errors == 0) {
    if (o->workers) p->dag->settings.workers = (uint32_t)o->workers;
    if (o->batch_size) p->dag->settings.batch_size = (uint32_t)o->batch_size;
    if (o->channel_capacity) p->dag->settings.channel_capacity = (uint32_t)o->channel_capacity;
  }
  if (p->dag) sl_dag_validate(p->dag, p->reg, &diags);
  if (p->dag && diags.errors == 0 && want_plan) p->plan = sl_plan_build(p->dag, &diags);
  int rc = diags.errors ? -1 : 0;
  if (!p->dag && diags.errors == 0) {
    fprintf(stderr, "%s: error: cannot load the DAG\n", path);
    rc = -1;
  }
  sl_diag_sort(&diags);
  sl_diag_print(&diags, stderr);
  if (diags.errors)
    fprintf(stderr, "%s: %zu error%s\n", path, diags.errors, diags.errors == 1 ? "" : "s");
  sl_diag_free(&diags);
  return rc;
}

static void release(prepared_t *p) {
  sl_plan_free(p->plan);
  sl_dag_free(p->dag);
  sl_registry_free(p->reg);
}

static int one_operand(int argc, char **argv, int first, const char *usage) {
  if (first < 0) return -1;
  if (argc - first != 1) {
    fprintf(stderr, "sluice: expected exactly one DAG file\n\n%s", usage);
    return -1;
  }
  return first;
}

static int cmd_validate(int argc, char **argv) {
  cli_opts_t o = {0};
  int first = one_operand(argc, argv, parse_opts(argc, argv, usage_validate, "P", &o), usage_validate);
  if (first < 0) return 2;
  prepared_t p;
  int rc = prepare(argv[first], &o, &p, 1);
  if (rc == 0) printf("%s: ok (%zu nodes)\n", argv[first], p.dag->node_count);
  release(&p);
  free(o.plugin_dirs);
  return rc == 0 ? 0 : 2;
}

static int cmd_graph(int argc, char **argv) {
  cli_opts_t o = {0};
  int first = one_operand(argc, argv, parse_opts(argc, argv, usage_graph, "owP", &o), usage_graph);
  if (first < 0) return 2;
  prepared_t p;
  int rc = prepare(argv[first], &o, &p, 1);
  if (rc == 0) {
    FILE *out = stdout;
    if (o.output && !(out = fopen(o.output, "w"))) {
      perror(o.output);
      rc = -1;
    } else {
      sl_plan_write_dot(p.plan, out);
      if (out != stdout) fclose(out);
    }
  }
  release(&p);
  free(o.plugin_dirs);
  return rc == 0 ? 0 : 2;
}

/* Resume from the newest valid checkpoint (unless --fresh), then set up
 * checkpointing. 0, or -1 with a message. */
/* Resume from the newest valid checkpoint (or from --from DIR; or nothing
 * with --fresh), then set up checkpointing. 0, or -1 with a message. */
static int prepare_checkpoints(sl_job_t *job, const cli_opts_t *o, char *err, size_t errlen) {
  const sl_dag_settings_t *s = &job->dag->settings;
  /* Before anything is restored or opened: two jobs must not share a directory. */
  if (s->checkpoint_dir && sl_control_lock(s->checkpoint_dir, err, errlen) != 0) return -1;
  sl_ckpt_manifest_t *m = NULL;
  char why[1024], moved[1024] = "";
  if (o->from) {
    if (sl_ckpt_load_dir(o->from, &m, why, sizeof(why)) != 0) {
      snprintf(err, errlen, "--from %s: %s", o->from, why);
      return -1;
    }
  } else if (s->checkpoint_dir && !o->fresh) {
    err[0] = 0;
    m = sl_ckpt_load_latest(s->checkpoint_dir, err, errlen);
    if (!m && err[0]) return -1;
    /* A newer one whose commit point was cut short may have taken effect. */
    if (sl_ckpt_resolve_undecided(job, s->checkpoint_dir, &m, err, errlen) != 0) {
      sl_ckpt_manifest_free(m);
      return -1;
    }
  }
  if (m && sl_ckpt_restore(job, m, err, errlen) != 0) {
    sl_ckpt_manifest_free(m);
    return -1;
  }
  if (m && o->from)
    sl_log_msg(SL_LOG_INFO, "checkpoints", "starting from %s %llu (%s)", m->kind,
               (unsigned long long)m->id, o->from);
  else if (m)
    sl_log_msg(SL_LOG_INFO, "checkpoints", "resuming from checkpoint %llu (%s, %s)",
               (unsigned long long)m->id, m->kind, m->dir);
  int rc = 0;
  if (s->checkpoint_dir && (o->fresh || o->from)) {
    /* The old run's checkpoints must not be what a crash of this run resumes
     * from: move them aside; with --from, the savepoint takes their place. */
    char *incoming = NULL;
    if (m) {
      incoming = sl_xasprintf("%s/incoming-%llu", s->checkpoint_dir, (unsigned long long)m->id);
      rc = sl_ckpt_link_copy(o->from, incoming, err, errlen);
    }
    if (rc == 0) rc = sl_ckpt_supersede(s->checkpoint_dir, moved, sizeof(moved), err, errlen);
    if (rc == 0 && incoming) {
      char *target = sl_xasprintf("%s/chk-%012llu", s->checkpoint_dir, (unsigned long long)m->id);
      if (rename(incoming, target) != 0) {
        snprintf(err, errlen, "cannot move %s to %s: %s", incoming, target, strerror(errno));
        rc = -1;
      }
      free(target);
    }
    free(incoming);
    if (rc == 0 && moved[0])
      sl_log_msg(SL_LOG_INFO, "checkpoints", "earlier checkpoints moved to %s", moved);
  }
  sl_ckpt_manifest_free(m);
  if (rc != 0) return -1;
  return s->checkpoint_dir ? sl_ckpt_init(job, err, errlen) : 0;
}

static int cmd_run(int argc, char **argv) {
  cli_opts_t o = {0};
  int first = one_operand(argc, argv, parse_opts(argc, argv, usage_run, "wbcPlqFR", &o), usage_run);
  if (first < 0) return 2;
  prepared_t p;
  if (prepare(argv[first], &o, &p, 1) != 0) {
    release(&p);
    free(o.plugin_dirs);
    return 2;
  }
  sl_job_t *job = sl_job_new(p.dag, p.plan);
  if (job) job->reg = p.reg;
  p.plan = NULL; /* the job owns it */
  char err[2048];
  int status = 0;
  sl_install_signal_handlers();
  /* A reader that goes away (`sluice run ... | head`) makes writes fail with
   * EPIPE, which the sink reports and the job fails on; not a silent kill. */
  signal(SIGPIPE, SIG_IGN);
  if (o.fresh && o.from) {
    sl_log_msg(SL_LOG_ERROR, "runtime", "--fresh and --from exclude each other");
    status = 2;
  } else if (prepare_checkpoints(job, &o, err, sizeof(err)) != 0) {
    sl_log_msg(SL_LOG_ERROR, "checkpoints", "%s", err);
    status = 1;
  } else if (sl_job_open(job, err, sizeof(err)) != 0) {
    sl_log_msg(SL_LOG_ERROR, "runtime", "%s", err);
    status = 1;
  } else {
    sl_log_msg(SL_LOG_INFO, "runtime", "job '%s' running: %u task%s on %u worker%s", p.dag->name,
               job->plan->task_count, job->plan->task_count == 1 ? "" : "s", job->worker_count,
               job->worker_count == 1 ? "" : "s");
    if (sl_job_run(job) != 0) {
      sl_log_msg(SL_LOG_ERROR, "runtime", "job failed: %s", job->failure);
      status = 1;
    }
    if (!o.quiet) sl_summary_print(job, stderr);
  }
  sl_job_free(job);
  release(&p);
  free(o.plugin_dirs);
  return status;
}

static const char *kind_name(sl_operator_kind_t k) {
  switch (k) {
  case SL_KIND_SOURCE: return "source";
  case SL_KIND_TRANSFORM: return "transform";
  case SL_KIND_SINK: return "sink";
  }
  return "?";
}

static const char *config_type_name(sl_config_type_t t) {
  switch (t) {
  case SL_CONFIG_STRING: return "string";
  case SL_CONFIG_INT: return "int";
  case SL_CONFIG_DOUBLE: return "double";
  case SL_CONFIG_BOOL: return "bool";
  case SL_CONFIG_DURATION: return "duration";
  }
  return "?";
}

static void describe_op(const sl_plugin_handle_t *h, const sl_operator_t *op) {
  printf("operator %s  (plugin %s %s, %s)\n", op->name, h->desc->name,
         h->desc->version ? h->desc->version : "?", h->path);
  printf("  kind:        %s\n", kind_name(op->kind));
  printf("  version:     %s\n", op->version ? op->version : "?");
  printf("  description: %s\n", op->description ? op->description : "");
  printf("  outputs:     %s", op->kind == SL_KIND_SINK ? "errors" : "default, errors");
  for (size_t i = 0; op->outputs && op->outputs[i]; i++)
    if (strcmp(op->outputs[i], "errors") != 0) printf(", %s", op->outputs[i]);
  if (SL_OPERATOR_HAS(op, scheme) && op->scheme)
    printf("\n  use as:      %s:PATH (a file, relative to the DAG file)", op->scheme);
  int free_config = SL_OPERATOR_HAS(op, flags) && (op->flags & SL_OP_FREE_CONFIG);
  printf("\n  config:%s\n", op->config_count ? (free_config ? "      (and any other key, for the operator)" : "")
                                               : (free_config ? "      (any key, for the operator)" : "      (none)"));
  for (size_t i = 0; i < op->config_count; i++) {
    const sl_config_key_t *k = &op->config[i];
    printf("    %-16s %-9s %-22s %s\n", k->name, config_type_name(k->type),
           k->default_value ? k->default_value : "(required)", k->description ? k->description : "");
  }
}

static void warn_plugin(const char *msg, void *ud) {
  (void)ud;
  fprintf(stderr, "warning: %s\n", msg);
}

static int cmd_plugins(int argc, char **argv) {
  cli_opts_t o = {0};
  int first = parse_opts(argc, argv, usage_plugins, "dP", &o);
  if (first < 0) return 2;
  if (first != argc) {
    fprintf(stderr, "sluice: plugins takes no operands\n\n%s", usage_plugins);
    return 2;
  }
  sl_registry_t *reg = make_registry(&o);
  int rc = 0;
  if (o.describe) {
    char err[1024];
    sl_plugin_handle_t *h = NULL;
    const sl_operator_t *op = sl_registry_resolve(reg, o.describe, ".", &h, err, sizeof(err));
    if (op) {
      describe_op(h, op);
    } else if (strstr(err, "has several operators") &&
               (h = sl_registry_load(reg, o.describe, err, sizeof(err))) != NULL) {
      for (size_t i = 0; i < h->desc->operator_count; i++) {
        if (i) printf("\n");
        describe_op(h, h->desc->operators[i]);
      }
    } else {
      /* A plugin name: describe all its operators. */
      sl_registry_scan(reg, NULL, NULL);
      const sl_plugin_handle_t *found = NULL;
      for (size_t i = 0; i < sl_registry_count(reg); i++)
        if (strcmp(sl_registry_at(reg, i)->desc->name, o.describe) == 0) found = sl_registry_at(reg, i);
      if (found) {
        for (size_t i = 0; i < found->desc->operator_count; i++) {
          if (i) printf("\n");
          describe_op(found, found->desc->operators[i]);
        }
      } else {
        fprintf(stderr, "sluice: %s\n", err);
        rc = 2;
      }
    }
  } else {
    sl_registry_scan(reg, warn_plugin, NULL);
    if (sl_registry_count(reg) == 0) printf("no plugins found (set SLUICE_PLUGIN_PATH)\n");
    for (size_t i = 0; i < sl_registry_count(reg); i++) {
      const sl_plugin_handle_t *h = sl_registry_at(reg, i);
      printf("%s %s  %s\n  %s\n", h->desc->name, h->desc->version ? h->desc->version : "?",
             h->path, h->desc->description ? h->desc->description : "");
      for (size_t k = 0; k < h->desc->operator_count; k++) {
        const sl_operator_t *op = h->desc->operators[k];
        printf("    %-16s %-9s %s\n", op->name, kind_name(op->kind),
               op->description ? op->description : "");
      }
      for (size_t k = 0; k < sl_plugin_aggregate_count(h->desc); k++) {
        const sl_aggregate_t *a = h->desc->aggregates[k];
        char kind[40];
        if (a->scheme) snprintf(kind, sizeof kind, "aggregate (%s:FILE)", a->scheme);
        else snprintf(kind, sizeof kind, "aggregate");
        printf("    %-16s %-9s %s\n", a->name, kind, a->description ? a->description : "");
      }
    }
  }
  sl_registry_free(reg);
  free(o.plugin_dirs);
  return rc;
}

static int cmd_savepoint(int argc, char **argv) {
  cli_opts_t o = {0};
  int first = one_operand(argc, argv, parse_opts(argc, argv, usage_savepoint, "SI", &o), usage_savepoint);
  if (first < 0) return 2;
  sl_diag_list_t diags;
  sl_diag_init(&diags);
  sl_dag_t *dag = sl_dag_load(argv[first], &diags);
  if (!dag || diags.errors) {
    sl_diag_print(&diags, stderr);
    if (!dag) fprintf(stderr, "sluice: cannot read %s\n", argv[first]);
    sl_dag_free(dag);
    sl_diag_free(&diags);
    return 2;
  }
  int status = 0;
  if (!dag->settings.checkpoint_dir) {
    fprintf(stderr, "sluice: %s sets no settings.checkpoints.dir: its job takes no savepoints\n",
            argv[first]);
    status = 1;
  } else {
    char req[4200], out[1300], cwd[2048] = "";
    /* The job resolves the path in its own working directory: send it absolute. */
    int relative = o.into && o.into[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL;
    snprintf(req, sizeof(req), "%s%s%s%s%s", o.stop ? "stop" : "savepoint", o.into ? " " : "",
             relative ? cwd : "", relative ? "/" : "", o.into ? o.into : "");
    if (sl_control_request(dag->settings.checkpoint_dir, req, out, sizeof(out)) == 0) {
      printf("%s\n", out);
    } else {
      fprintf(stderr, "sluice: savepoint failed: %s\n", out);
      status = 1;
    }
  }
  sl_dag_free(dag);
  sl_diag_free(&diags);
  return status;
}

/* Writes the line to path through a temporary file and a rename, so a
 * reader never sees half of it. */
static int write_file_atomic(const char *path, const char *line) {
  char *tmp = sl_xasprintf("%s.tmp.%d", path, (int)getpid());
  FILE *f = fopen(tmp, "w");
  int ok = f && fprintf(f, "%s\n", line) > 0;
  if (f && fclose(f) != 0) ok = 0;
  if (ok && rename(tmp, path) != 0) ok = 0;
  if (!ok) unlink(tmp);
  free(tmp);
  return ok ? 0 : -1;
}

/* kafka-dev --control: a thread applying the fault commands of a FIFO. */
typedef struct kd_control {
  sl_kafka_dev_t *d;
  int fd; /* opened read-write: no EOF when a writer closes */
  pthread_t thread;
  bool started;
} kd_control_t;

static void *control_main(void *arg) {
  kd_control_t *c = arg;
  FILE *f = fdopen(dup(c->fd), "r");
  char line[1024], msg[1024];
  while (f && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (strcmp(line, "\x01quit") == 0) break; /* control_stop */
    if (!line[0]) continue;
    int rc = sl_kafka_dev_fault(c->d, line, msg, sizeof(msg));
    sl_log_msg(rc == 0 ? SL_LOG_INFO : SL_LOG_WARN, "kafka-dev", "fault: %s", msg);
  }
  if (f) fclose(f);
  return NULL;
}

static int control_start(kd_control_t *c, const char *path, char *err, size_t errlen) {
  if (mkfifo(path, 0600) != 0) {
    snprintf(err, errlen, "cannot create the named pipe %s: %s", path, strerror(errno));
    return -1;
  }
  c->fd = open(path, O_RDWR | O_CLOEXEC);
  if (c->fd < 0 || pthread_create(&c->thread, NULL, control_main, c) != 0) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    unlink(path);
    return -1;
  }
  c->started = true;
  return 0;
}

static void control_stop(kd_control_t *c, const char *path) {
  if (!c->started) return;
  static const char quit[] = "\x01quit\n";
  if (write(c->fd, quit, sizeof(quit) - 1) < 0) pthread_cancel(c->thread);
  pthread_join(c->thread, NULL);
  close(c->fd);
  unlink(path);
}

static int cmd_kafka_dev(int argc, char **argv) {
  static const struct option longopts[] = {{"brokers", required_argument, NULL, 'b'},
                                           {"topic", required_argument, NULL, 't'},
                                           {"write", required_argument, NULL, 'W'},
                                           {"control", required_argument, NULL, 'C'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int brokers = 1, ntopics = 0, c;
  const char **topics = sl_xcalloc((size_t)argc + 1, sizeof(char *));
  const char *write_path = NULL, *control_path = NULL;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
    case 'b':
      if (parse_positive(optarg, "--brokers", SL_KAFKA_DEV_MAX_BROKERS, &brokers)) goto usage;
      break;
    case 't': topics[ntopics++] = optarg; break;
    case 'W': write_path = optarg; break;
    case 'C': control_path = optarg; break;
    case 'h': fputs(usage_kafka_dev, stdout); free(topics); return 0;
    case ':': fprintf(stderr, "sluice: option '%s' needs a value\n\n", argv[optind - 1]); goto usage;
    default: fprintf(stderr, "sluice: unknown option '%s'\n\n", argv[optind - 1]); goto usage;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "sluice: kafka-dev takes no operands ('%s')\n\n", argv[optind]);
    goto usage;
  }
  char name[SL_KAFKA_TOPIC_MAX + 1], err[512];
  int parts;
  for (int i = 0; i < ntopics; i++)
    if (sl_kafka_topic_arg(topics[i], name, &parts, err, sizeof(err)) != 0) {
      fprintf(stderr, "sluice: --topic %s\n\n", err);
      goto usage;
    }
  /* The signals are taken by sigwait below: blocked before librdkafka
   * starts its threads, which inherit the mask. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  sl_kafka_dev_t *d = sl_kafka_dev_start(brokers, err, sizeof(err));
  if (!d) {
    fprintf(stderr, "sluice: kafka-dev: %s\n", err);
    free(topics);
    return 1;
  }
  int rc = 0;
  for (int i = 0; i < ntopics && rc == 0; i++) {
    sl_kafka_topic_arg(topics[i], name, &parts, err, sizeof(err));
    if (sl_kafka_dev_create_topic(d, name, parts, err, sizeof(err)) != 0) {
      fprintf(stderr, "sluice: kafka-dev: %s\n", err);
      rc = 1;
    } else {
      sl_log_msg(SL_LOG_INFO, "kafka-dev", "topic '%s': %d partition(s)", name, parts);
    }
  }
  const char *boot = sl_kafka_dev_bootstraps(d);
  if (rc == 0 && write_path && write_file_atomic(write_path, boot) != 0) {
    fprintf(stderr, "sluice: kafka-dev: cannot write %s: %s\n", write_path, strerror(errno));
    rc = 1;
  }
  kd_control_t ctl = {.d = d, .fd = -1};
  if (rc == 0 && control_path && control_start(&ctl, control_path, err, sizeof(err)) != 0) {
    fprintf(stderr, "sluice: kafka-dev: --control %s\n", err);
    rc = 1;
  }
  if (rc == 0) {
    printf("bootstrap.servers=%s\n", boot);
    fflush(stdout);
    sl_log_msg(SL_LOG_INFO, "kafka-dev", "%d broker(s) on %s; stop with Ctrl-C", brokers, boot);
    int sig = 0;
    sigwait(&stop, &sig);
    sl_log_msg(SL_LOG_INFO, "kafka-dev", "stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (write_path) unlink(write_path);
  }
  control_stop(&ctl, control_path);
  sl_kafka_dev_stop(d);
  free(topics);
  return rc;
usage:
  fputs(usage_kafka_dev, stderr);
  free(topics);
  return 2;
}

static int cmd_version(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(usage_version, stdout);
    return 0;
  }
  if (argc > 1) {
    fprintf(stderr, "sluice: version takes no arguments\n\n%s", usage_version);
    return 2;
  }
  printf("sluice %s (plugin ABI %d.%d)\n", SLUICE_VERSION, SL_ABI_MAJOR, SL_ABI_MINOR);
  return 0;
}

int main(int argc, char **argv) {
  sl_log_init_from_env();
  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
  if (strcmp(cmd, "validate") == 0) return cmd_validate(argc - 1, argv + 1);
  if (strcmp(cmd, "graph") == 0) return cmd_graph(argc - 1, argv + 1);
  if (strcmp(cmd, "plugins") == 0) return cmd_plugins(argc - 1, argv + 1);
  if (strcmp(cmd, "savepoint") == 0) return cmd_savepoint(argc - 1, argv + 1);
  if (strcmp(cmd, "kafka-dev") == 0) return cmd_kafka_dev(argc - 1, argv + 1);
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) return cmd_version(argc - 1, argv + 1);
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    const char *topic = argc > 2 ? argv[2] : NULL;
    if (!topic) fputs(usage_main, stdout);
    else if (strcmp(topic, "run") == 0) fputs(usage_run, stdout);
    else if (strcmp(topic, "validate") == 0) fputs(usage_validate, stdout);
    else if (strcmp(topic, "graph") == 0) fputs(usage_graph, stdout);
    else if (strcmp(topic, "plugins") == 0) fputs(usage_plugins, stdout);
    else if (strcmp(topic, "savepoint") == 0) fputs(usage_savepoint, stdout);
    else if (strcmp(topic, "kafka-dev") == 0) fputs(usage_kafka_dev, stdout);
    else if (strcmp(topic, "version") == 0) fputs(usage_version, stdout);
    else {
      fprintf(stderr, "sluice: no help for '%s'\n", topic);
      return 2;
    }
    return 0;
  }
  fprintf(stderr, "sluice: unknown command '%s'\n\n%s", cmd, usage_main);
  return 2;
}
