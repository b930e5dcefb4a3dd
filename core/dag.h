/*
 * dag.h - the logical DAG: what a YAML file says, with the position of every
 * value, before any plugin is loaded. dag_load.c fills it (libyaml);
 * dag_validate.c checks it against the plugins' descriptors.
 */
#ifndef SL_DAG_H
#define SL_DAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "sluice.h"

/** What happens when an operator fails on a record. */
typedef enum sl_on_error {
  SL_ON_ERROR_FAIL = 0, /* stop the job (default) */
  SL_ON_ERROR_SKIP,     /* count the record and go on */
  SL_ON_ERROR_DEAD_LETTER /* send the record, error and node to the `errors` port */
} sl_on_error_t;

/** How records reach a node from its inputs. */
typedef enum sl_partition {
  SL_PARTITION_AUTO = 0, /* forward when parallelism matches, else rebalance; key_by if key_by set */
  SL_PARTITION_FORWARD,
  SL_PARTITION_REBALANCE,
  SL_PARTITION_BROADCAST,
  SL_PARTITION_KEY_BY
} sl_partition_t;

/** One input of a node: `from: node` or `from: node.port`. */
typedef struct sl_dag_input {
  char *node; /* owned */
  char *port; /* owned; NULL = the default output */
  sl_pos_t pos;
} sl_dag_input_t;

/** One `config:` entry: a scalar, kept as text plus its parsed value. */
typedef struct sl_config_value {
  char *key;   /* owned */
  char *text;  /* owned: the scalar as written (after YAML unquoting) */
  bool quoted; /* the scalar was quoted in YAML (so "10" is a string, not an int) */
  sl_pos_t key_pos;
  sl_pos_t value_pos;
  /* filled by validation from the operator's config map: */
  sl_config_type_t type; /* 0 until validated */
  int64_t i;             /* INT, BOOL (0/1), DURATION (ms) */
  double d;              /* DOUBLE */
  bool from_default;     /* added by validation from the declared default */
} sl_config_value_t;

/** Where a source's records get their event time (`event_time: { timestamp: ... }`). */
typedef enum sl_ts_origin {
  SL_TS_ORIGIN_SOURCE = 0, /* the ts the source plugin set (Kafka's record timestamp) */
  SL_TS_ORIGIN_FIELD,      /* a top-level JSON field of the value */
  SL_TS_ORIGIN_INGESTION   /* the wall clock when the source emitted the record */
} sl_ts_origin_t;

/** How a timestamp field is written. */
typedef enum sl_ts_format {
  SL_TS_FORMAT_EPOCH_MS = 0, /* milliseconds since the epoch (a JSON number or numeric string) */
  SL_TS_FORMAT_EPOCH_S,      /* seconds since the epoch, fraction allowed (ms precision) */
  SL_TS_FORMAT_RFC3339       /* "2026-11-24T10:15:00.250Z", "...+01:00" */
} sl_ts_format_t;

/**
 * A source node's `event_time:` block (docs/dag.md). dag_load.c fills it,
 * dag_validate.c rejects it on nodes that are not sources, and sl_ts_parse()
 * (event_time.h) reads `field` of each record in `format`.
 */
typedef struct sl_event_time {
  bool set;                    /* the block is present (also `event_time: {}` or empty) */
  sl_pos_t pos;                /* position of the `event_time` key */
  sl_ts_origin_t origin;       /* default: FIELD when `field` is given, else SOURCE */
  char *field;                 /* owned; non-NULL only with SL_TS_ORIGIN_FIELD */
  sl_pos_t field_pos;          /* position of the field name (the value) */
  sl_ts_format_t format;       /* default EPOCH_MS; meaningful with SL_TS_ORIGIN_FIELD only */
  int64_t max_out_of_order_ms; /* bounded out-of-orderness; default 0 */
  int64_t idle_timeout_ms;     /* a partition without records this long is idle; 0 = never */
} sl_event_time_t;

typedef struct sl_dag_node {
  char *name; /* owned */
  sl_pos_t pos; /* position of the node's name */
  char *use;    /* owned: "generator", "plugin:op", "./libx.so", "./libx.so:op" */
  sl_pos_t use_pos;
  char *use_arg; /* owned; set by validation for `SCHEME:ARG`: ARG joined to the DAG's dir */
  sl_dag_input_t *inputs; /* owned array */
  size_t input_count;
  char *key_by; /* owned; NULL = not keyed; "$key" = keep the record key */
  sl_pos_t key_by_pos;
  sl_partition_t partition; /* explicit `partition:` or derived */
  sl_pos_t partition_pos;
  uint32_t parallelism; /* 0 = not given (means 1) */
  sl_pos_t parallelism_pos;
  sl_on_error_t on_error;
  sl_pos_t on_error_pos;
  sl_event_time_t event_time; /* sources: timestamps and watermarks */
  sl_config_value_t *config; /* owned array */
  size_t config_count;
  sl_pos_t config_pos;
  /* filled by validation: */
  const sl_operator_t *op;    /* the resolved operator descriptor */
  struct sl_plugin_handle *plugin; /* the plugin it lives in (owned by the registry) */
} sl_dag_node_t;

/** Job-wide settings (`settings:`). Defaults are filled in by the loader. */
typedef struct sl_dag_settings {
  uint32_t workers;          /* default: number of online CPUs */
  uint32_t default_parallelism; /* `parallelism:` for nodes that set none; 0 = 1 */
  uint32_t channel_capacity; /* batches per channel; default 16 */
  uint32_t batch_size;       /* records per batch; default 256 */
  uint32_t max_key_groups;   /* default 128 */
  /* Room for later issues: state and checkpoint settings are parsed here. */
  char *state_backend;       /* owned; "memory" (default) */
  char *state_dir;           /* owned; may be NULL */
  int64_t checkpoint_interval_ms; /* 0 = off */
  char *checkpoint_dir;      /* owned; may be NULL */
  uint32_t checkpoint_keep;  /* default 3 */
} sl_dag_settings_t;

typedef struct sl_dag {
  char *path; /* owned: the file as given */
  char *dir;  /* owned: its directory, for resolving relative paths */
  char *name; /* owned: `name:`, or the file's base name without extension */
  sl_dag_settings_t settings;
  sl_dag_node_t *nodes; /* owned array, in file order */
  size_t node_count;
} sl_dag_t;

/**
 * Parse a DAG file. Returns NULL only when the file cannot be read or is not
 * YAML at all; otherwise a DAG with every problem found appended to diags
 * (the caller checks diags->errors). Pure parsing: no plugin is loaded.
 */
sl_dag_t *sl_dag_load(const char *path, sl_diag_list_t *diags);
/** Same, from a string (for tests); `path` is used in messages and for dir. */
sl_dag_t *sl_dag_load_string(const char *text, size_t len, const char *path, sl_diag_list_t *diags);
void sl_dag_free(sl_dag_t *dag);

/** Find a node by name, or NULL. */
sl_dag_node_t *sl_dag_find(const sl_dag_t *dag, const char *name);
/** Parallelism of a node (1 when not given). */
static inline uint32_t sl_dag_node_parallelism(const sl_dag_node_t *n) {
  return n->parallelism ? n->parallelism : 1;
}

/** Parse a duration ("500ms", "10s", "1m", "2h", "1d", or a bare integer = ms). */
int sl_parse_duration_ms(const char *text, int64_t *out_ms);

struct sl_registry;
/**
 * Check the DAG: every node's `use` resolves to an operator (through the
 * registry), inputs exist and name existing ports, no cycles, sources have no
 * inputs and others have at least one, parallelism within bounds, config
 * entries match the operator's config map (types parsed, defaults added).
 * Appends every problem to diags; returns the number of errors added.
 */
size_t sl_dag_validate(sl_dag_t *dag, struct sl_registry *reg, sl_diag_list_t *diags);

/** Topological order of node indices (valid only for an acyclic DAG). */
int sl_dag_topo_order(const sl_dag_t *dag, size_t *order_out);

/** Look up a validated config value, or NULL. */
const sl_config_value_t *sl_dag_node_config(const sl_dag_node_t *n, const char *key);

#define SL_MAX_PARALLELISM 1024
/* Job and node names name checkpoint files, metrics and log lines. */
#define SL_MAX_NAME_LEN 200
#define SL_MAX_WORKERS 256

#endif
