/*
 * registry.h - finding, loading and checking plugins.
 *
 * A plugin is a shared object exporting the data symbol `sluice_plugin`
 * (an sl_plugin_t). The registry dlopen()s it and checks the descriptor (ABI
 * major and minor, struct sizes, operator names, required callbacks) before
 * any function of the plugin is called.
 *
 * Built-in plugins live in the plugin path: $SLUICE_PLUGIN_PATH (colon
 * separated), then <exe>/../lib/sluice/plugins (installed), then
 * <exe>/plugins (build tree). Every *.so there is a candidate.
 */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include <stddef.h>

#include "sluice.h"

typedef struct sl_plugin_handle {
  char *path;               /* owned: absolute path of the .so */
  void *dl;                 /* dlopen handle */
  const sl_plugin_t *desc;  /* checked descriptor */
} sl_plugin_handle_t;

typedef struct sl_registry sl_registry_t;

/** A registry that searches the default plugin path (see above). */
sl_registry_t *sl_registry_new(void);
void sl_registry_free(sl_registry_t *reg);
/** Prepend a directory to the search path. */
void sl_registry_add_dir(sl_registry_t *reg, const char *dir);

/**
 * Load and check one plugin file. On failure returns NULL and writes a
 * message naming the path and the reason into errbuf. Loading the same path
 * twice returns the same handle.
 */
sl_plugin_handle_t *sl_registry_load(sl_registry_t *reg, const char *path, char *errbuf,
                                     size_t errbuf_len);

/**
 * Resolve a DAG `use:` string. `base_dir` resolves relative paths.
 *  - "name"            an operator of that name in any plugin on the search path
 *  - "plugin:op"       operator `op` of the plugin named `plugin` on the search path
 *  - "path.so"         the only operator of that file (an error if it has several)
 *  - "path.so:op"      operator `op` of that file
 *  - "SCHEME:ARG"      the operator declaring that scheme (e.g. "lua:op.lua", the
 *                      Lua host); checked before the other forms
 * A value containing '/' or ending in ".so" is a path.
 */
const sl_operator_t *sl_registry_resolve(sl_registry_t *reg, const char *use, const char *base_dir,
                                         sl_plugin_handle_t **plugin_out, char *errbuf,
                                         size_t errbuf_len);

/**
 * Like sl_registry_resolve, and also handles `SCHEME:ARG` for operators
 * that declare a scheme (sl_operator_t.scheme, e.g. "lua"): *arg_out gets
 * ARG joined to base_dir (malloc'd; NULL for other forms).
 */
const sl_operator_t *sl_registry_resolve_use(sl_registry_t *reg, const char *use,
                                             const char *base_dir, sl_plugin_handle_t **plugin_out,
                                             char **arg_out, char *errbuf, size_t errbuf_len);

/** 1.4: the number of aggregate functions a plugin declares (0 before 1.4). */
size_t sl_plugin_aggregate_count(const sl_plugin_t *d);

/**
 * Resolve a reference to a user-defined aggregate function (registry_agg.c):
 *  - "NAME"          function NAME in any plugin on the search path
 *  - "PLUGIN:NAME"   function NAME of the plugin named PLUGIN
 *  - "PATH.so:NAME"  function NAME of that file ("PATH.so" alone: its only one)
 *  - "SCHEME:ARG"    the function declaring SCHEME ("lua:median.lua"); checked
 *                    first; *arg_out gets ARG joined to base_dir (malloc'd;
 *                    NULL for the other forms)
 */
const sl_aggregate_t *sl_registry_resolve_aggregate(sl_registry_t *reg, const char *ref,
                                                    const char *base_dir,
                                                    sl_plugin_handle_t **plugin_out,
                                                    char **arg_out, char *errbuf,
                                                    size_t errbuf_len);

/** Load every plugin on the search path (for `sluice plugins`). Problems go to warn_out. */
void sl_registry_scan(sl_registry_t *reg, void (*warn)(const char *msg, void *ud), void *ud);
size_t sl_registry_count(const sl_registry_t *reg);
const sl_plugin_handle_t *sl_registry_at(const sl_registry_t *reg, size_t i);

/** Text of an SDK error code. */
const char *sl_error_text(int code);

#endif
