/*
 * registry.c - find, load and check plugins (see registry.h).
 *
 * The check runs on the descriptor's data only: no plugin function is called
 * before the descriptor has passed (a plugin's ELF constructors, if it has
 * any, are the one exception dlopen imposes; the SDK does not need them).
 */
#define _GNU_SOURCE
#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Size of sl_operator_t / sl_plugin_t in ABI 1.0: the smallest a plugin may declare. */
#define SL_OPERATOR_SIZE_1_0 (offsetof(sl_operator_t, close) + sizeof(void (*)(void *)))
#define SL_PLUGIN_SIZE_1_0 offsetof(sl_plugin_t, aggregates)
/* Size of sl_aggregate_t in ABI 1.4, where it appeared. */
#define SL_AGGREGATE_SIZE_1_4 (offsetof(sl_aggregate_t, result) + sizeof(void (*)(void)))

struct sl_registry {
  char **dirs;
  size_t dir_count;
  sl_plugin_handle_t **plugins;
  size_t plugin_count;
  int scanned;
};

const char *sl_error_text(int code) {
  switch (code) {
#define SL__ERROR_CASE(name, value, text) \
  case value:                             \
    return text;
    SL_ERROR_TABLE(SL__ERROR_CASE)
#undef SL__ERROR_CASE
  case SL_AGAIN:
    return "try again (no credit)";
  case SL_DONE:
    return "end of input";
  default:
    return "unknown error code";
  }
}

static void registry_push_dir(sl_registry_t *reg, const char *dir, int front) {
  reg->dirs = sl_xrealloc(reg->dirs, (reg->dir_count + 1) * sizeof(char *));
  if (front) {
    memmove(reg->dirs + 1, reg->dirs, reg->dir_count * sizeof(char *));
    reg->dirs[0] = sl_xstrdup(dir);
  } else {
    reg->dirs[reg->dir_count] = sl_xstrdup(dir);
  }
  reg->dir_count++;
}

sl_registry_t *sl_registry_new(void) {
  sl_registry_t *reg = sl_xcalloc(1, sizeof(*reg));
  const char *env = getenv("SLUICE_PLUGIN_PATH");
  if (env && *env) {
    char *copy = sl_xstrdup(env);
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
      registry_push_dir(reg, d, 0);
    free(copy);
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = '\0';
      char dir[PATH_MAX + 64];
      snprintf(dir, sizeof(dir), "%s/../lib/sluice/plugins", exe);
      registry_push_dir(reg, dir, 0);
      snprintf(dir, sizeof(dir), "%s/plugins", exe);
      registry_push_dir(reg, dir, 0);
    }
  }
  return reg;
}

void sl_registry_add_dir(sl_registry_t *reg, const char *dir) { registry_push_dir(reg, dir, 1); }

void sl_registry_free(sl_registry_t *reg) {
  if (!reg) return;
  for (size_t i = 0; i < reg->plugin_count; i++) {
    sl_plugin_handle_t *h = reg->plugins[i];
    /* Under sanitizers keep the code mapped so leak reports can symbolize it. */
#if !defined(__SANITIZE_ADDRESS__)
    if (h->dl) dlclose(h->dl);
#endif
    free(h->path);
    free(h);
  }
  for (size_t i = 0; i < reg->dir_count; i++) free(reg->dirs[i]);
  free(reg->dirs);
  free(reg->plugins);
  free(reg);
}

static int name_is_valid(const char *s, const char *extra) {
  if (!s || !*s) return 0;
  for (const char *p = s; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') continue;
    if (extra && strchr(extra, *p)) continue;
    return 0;
  }
  return 1;
}

/* The aggregate functions of a descriptor (1.4); data only. */
static int check_aggregates(const char *path, const sl_plugin_t *d, size_t n, char *errbuf,
                            size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    const sl_aggregate_t *a = d->aggregates[i];
    if (!a) {
      snprintf(errbuf, errlen, "%s: plugin '%s': aggregate function %zu is NULL", path, d->name, i);
      return SL_EPLUGIN;
    }
    if (a->struct_size < SL_AGGREGATE_SIZE_1_4) {
      snprintf(errbuf, errlen,
               "%s: plugin '%s': aggregate function %zu descriptor is %u bytes, expected at least "
               "%zu (set struct_size with SL_AGGREGATE_INIT)",
               path, d->name, i, a->struct_size, (size_t)SL_AGGREGATE_SIZE_1_4);
      return SL_EABI;
    }
    if (!name_is_valid(a->name, NULL)) {
      snprintf(errbuf, errlen, "%s: plugin '%s': aggregate function %zu has no valid name ([a-z0-9_]+)",
               path, d->name, i);
      return SL_EPLUGIN;
    }
    const char *missing = !a->create ? "create" : !a->add ? "add" : !a->merge ? "merge"
                          : !a->result ? "result" : NULL;
    if (missing) {
      snprintf(errbuf, errlen, "%s: aggregate function '%s' has no %s callback", path, a->name,
               missing);
      return SL_EPLUGIN;
    }
    if (a->min_args > a->max_args || a->max_args > SL_AGG_ARGS_MAX) {
      snprintf(errbuf, errlen,
               "%s: aggregate function '%s': argument counts %u..%u are not a range within 0..%d",
               path, a->name, a->min_args, a->max_args, SL_AGG_ARGS_MAX);
      return SL_EPLUGIN;
    }
    if (a->scheme && !name_is_valid(a->scheme, NULL)) {
      snprintf(errbuf, errlen, "%s: aggregate function '%s': scheme '%s' is not [a-z0-9_]+", path,
               a->name, a->scheme);
      return SL_EPLUGIN;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(d->aggregates[j]->name, a->name) == 0) {
        snprintf(errbuf, errlen, "%s: plugin '%s' declares aggregate function '%s' twice", path,
                 d->name, a->name);
        return SL_EPLUGIN;
      }
  }
  return 0;
}

/* Check a descriptor read from a freshly loaded plugin; data only. */
static int check_descriptor(const char *path, const sl_plugin_t *d, char *errbuf, size_t errlen) {
  if (d->abi_major != SL_ABI_MAJOR) {
    snprintf(errbuf, errlen,
             "%s: plugin ABI major version %u, but this sluice speaks ABI %d.%d; rebuild the plugin "
             "against this SDK",
             path, d->abi_major, SL_ABI_MAJOR, SL_ABI_MINOR);
    return SL_EABI;
  }
  if (d->abi_minor > SL_ABI_MINOR) {
    snprintf(errbuf, errlen,
             "%s: plugin needs ABI %u.%u, but this sluice provides %d.%d; upgrade sluice", path,
             d->abi_major, d->abi_minor, SL_ABI_MAJOR, SL_ABI_MINOR);
    return SL_EABI;
  }
  if (d->struct_size < SL_PLUGIN_SIZE_1_0) {
    snprintf(errbuf, errlen, "%s: plugin descriptor is %u bytes, expected at least %zu", path,
             d->struct_size, (size_t)SL_PLUGIN_SIZE_1_0);
    return SL_EABI;
  }
  if (d->operator_struct_size < SL_OPERATOR_SIZE_1_0) {
    snprintf(errbuf, errlen, "%s: operator descriptors are %u bytes, expected at least %zu", path,
             d->operator_struct_size, (size_t)SL_OPERATOR_SIZE_1_0);
    return SL_EABI;
  }
  if (!name_is_valid(d->name, "-")) {
    snprintf(errbuf, errlen, "%s: plugin name is missing or not [a-z0-9_-]+", path);
    return SL_EPLUGIN;
  }
  size_t naggs = SL_PLUGIN_HAS(d, aggregate_count) && d->aggregates ? d->aggregate_count : 0;
  if ((!d->operators || d->operator_count == 0) && naggs == 0) {
    snprintf(errbuf, errlen, "%s: plugin '%s' declares no operators and no aggregate functions",
             path, d->name);
    return SL_EPLUGIN;
  }
  if (!d->operators && d->operator_count) {
    snprintf(errbuf, errlen, "%s: plugin '%s' declares %zu operators but no table", path, d->name,
             d->operator_count);
    return SL_EPLUGIN;
  }
  int rc = check_aggregates(path, d, naggs, errbuf, errlen);
  if (rc) return rc;
  for (size_t i = 0; i < d->operator_count; i++) {
    const sl_operator_t *op = d->operators[i];
    if (!op) {
      snprintf(errbuf, errlen, "%s: plugin '%s': operator %zu is NULL", path, d->name, i);
      return SL_EPLUGIN;
    }
    if (op->struct_size < SL_OPERATOR_SIZE_1_0) {
      snprintf(errbuf, errlen, "%s: plugin '%s': operator %zu descriptor is %u bytes, expected %zu",
               path, d->name, i, op->struct_size, (size_t)SL_OPERATOR_SIZE_1_0);
      return SL_EABI;
    }
    if (!name_is_valid(op->name, NULL)) {
      snprintf(errbuf, errlen, "%s: plugin '%s': operator %zu has no valid name ([a-z0-9_]+)", path,
               d->name, i);
      return SL_EPLUGIN;
    }
    if (op->kind != SL_KIND_SOURCE && op->kind != SL_KIND_TRANSFORM && op->kind != SL_KIND_SINK) {
      snprintf(errbuf, errlen, "%s: operator '%s': unknown kind %d", path, op->name, (int)op->kind);
      return SL_EPLUGIN;
    }
    if (op->kind == SL_KIND_SOURCE && !op->poll) {
      snprintf(errbuf, errlen, "%s: source operator '%s' has no poll callback", path, op->name);
      return SL_EPLUGIN;
    }
    if (op->kind != SL_KIND_SOURCE && !op->process &&
        !(SL_OPERATOR_HAS(op, process_batch) && op->process_batch)) {
      snprintf(errbuf, errlen, "%s: operator '%s' has no process (or process_batch) callback",
               path, op->name);
      return SL_EPLUGIN;
    }
    if (op->config_count && !op->config) {
      snprintf(errbuf, errlen, "%s: operator '%s' declares %zu config keys but no table", path,
               op->name, op->config_count);
      return SL_EPLUGIN;
    }
    for (size_t k = 0; k < op->config_count; k++) {
      const sl_config_key_t *ck = &op->config[k];
      if (!ck->name || ck->type < SL_CONFIG_STRING || ck->type > SL_CONFIG_DURATION) {
        snprintf(errbuf, errlen, "%s: operator '%s': config key %zu is malformed", path, op->name,
                 k);
        return SL_EPLUGIN;
      }
    }
    if (SL_OPERATOR_HAS(op, scheme) && op->scheme && !name_is_valid(op->scheme, NULL)) {
      snprintf(errbuf, errlen, "%s: operator '%s': scheme '%s' is not [a-z0-9_]+", path, op->name,
               op->scheme);
      return SL_EPLUGIN;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(d->operators[j]->name, op->name) == 0) {
        snprintf(errbuf, errlen, "%s: plugin '%s' declares operator '%s' twice", path, d->name,
                 op->name);
        return SL_EPLUGIN;
      }
    }
  }
  return 0;
}

sl_plugin_handle_t *sl_registry_load(sl_registry_t *reg, const char *path, char *errbuf,
                                     size_t errlen) {
  char real[PATH_MAX];
  if (!realpath(path, real)) {
    snprintf(errbuf, errlen, "%s: cannot open plugin: %s", path, strerror(errno));
    return NULL;
  }
  for (size_t i = 0; i < reg->plugin_count; i++)
    if (strcmp(reg->plugins[i]->path, real) == 0) return reg->plugins[i];

  /* RTLD_LOCAL: plugins do not see each other's symbols. */
  void *dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    snprintf(errbuf, errlen, "%s: cannot load plugin: %s", path, dlerror());
    return NULL;
  }
  const sl_plugin_t *desc = (const sl_plugin_t *)dlsym(dl, SL_PLUGIN_SYMBOL);
  if (!desc) {
    snprintf(errbuf, errlen,
             "%s: not a sluice plugin: it does not export the symbol '%s' (define it with "
             "SL_PLUGIN_DEFINE)",
             path, SL_PLUGIN_SYMBOL);
    dlclose(dl);
    return NULL;
  }
  if (check_descriptor(path, desc, errbuf, errlen) != 0) {
    dlclose(dl);
    return NULL;
  }
  sl_plugin_handle_t *h = sl_xcalloc(1, sizeof(*h));
  h->path = sl_xstrdup(real);
  h->dl = dl;
  h->desc = desc;
  reg->plugins = sl_xrealloc(reg->plugins, (reg->plugin_count + 1) * sizeof(*reg->plugins));
  reg->plugins[reg->plugin_count++] = h;
  return h;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void sl_registry_scan(sl_registry_t *reg, void (*warn)(const char *msg, void *ud), void *ud) {
  if (reg->scanned) return;
  reg->scanned = 1;
  for (size_t d = 0; d < reg->dir_count; d++) {
    DIR *dir = opendir(reg->dirs[d]);
    if (!dir) continue;
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
      if (!ends_with(e->d_name, ".so")) continue;
      names = sl_xrealloc(names, (count + 1) * sizeof(char *));
      names[count++] = sl_xstrdup(e->d_name);
    }
    closedir(dir);
    if (count) qsort(names, count, sizeof(char *), cmp_str); /* deterministic order */
    for (size_t i = 0; i < count; i++) {
      char path[PATH_MAX + 256], err[1024];
      snprintf(path, sizeof(path), "%s/%s", reg->dirs[d], names[i]);
      if (!sl_registry_load(reg, path, err, sizeof(err)) && warn) warn(err, ud);
      free(names[i]);
    }
    free(names);
  }
}

size_t sl_registry_count(const sl_registry_t *reg) { return reg->plugin_count; }
const sl_plugin_handle_t *sl_registry_at(const sl_registry_t *reg, size_t i) {
  return i < reg->plugin_count ? reg->plugins[i] : NULL;
}

static const sl_operator_t *plugin_find_op(const sl_plugin_handle_t *h, const char *name) {
  for (size_t i = 0; i < h->desc->operator_count; i++)
    if (strcmp(h->desc->operators[i]->name, name) == 0) return h->desc->operators[i];
  return NULL;
}

static void list_ops(const sl_plugin_handle_t *h, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < h->desc->operator_count && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                             h->desc->operators[i]->name);
}

static void scan_quietly(sl_registry_t *reg) { sl_registry_scan(reg, NULL, NULL); }

/* The same plugin name twice on the search path (say, the build tree's and an
 * installed copy): the first one found wins, as with PATH. */
static int plugin_shadowed(const sl_registry_t *reg, size_t i) {
  for (size_t j = 0; j < i; j++)
    if (strcmp(reg->plugins[j]->desc->name, reg->plugins[i]->desc->name) == 0) return 1;
  return 0;
}

/* The operator declaring `scheme` (first on the search path wins), or NULL. */
static const sl_operator_t *find_scheme(sl_registry_t *reg, const char *scheme, size_t len,
                                        sl_plugin_handle_t **plugin_out) {
  scan_quietly(reg);
  for (size_t i = 0; i < reg->plugin_count; i++) {
    if (plugin_shadowed(reg, i)) continue;
    const sl_plugin_t *d = reg->plugins[i]->desc;
    for (size_t k = 0; k < d->operator_count; k++) {
      const sl_operator_t *op = d->operators[k];
      if (SL_OPERATOR_HAS(op, scheme) && op->scheme && strlen(op->scheme) == len &&
          strncmp(op->scheme, scheme, len) == 0) {
        if (plugin_out) *plugin_out = reg->plugins[i];
        return op;
      }
    }
  }
  return NULL;
}

const sl_operator_t *sl_registry_resolve(sl_registry_t *reg, const char *use, const char *base_dir,
                                         sl_plugin_handle_t **plugin_out, char *errbuf,
                                         size_t errlen) {
  char *arg = NULL;
  const sl_operator_t *op =
      sl_registry_resolve_use(reg, use, base_dir, plugin_out, &arg, errbuf, errlen);
  free(arg);
  return op;
}

const sl_operator_t *sl_registry_resolve_use(sl_registry_t *reg, const char *use,
                                             const char *base_dir, sl_plugin_handle_t **plugin_out,
                                             char **arg_out, char *errbuf, size_t errlen) {
  if (plugin_out) *plugin_out = NULL;
  if (arg_out) *arg_out = NULL;
  if (!use || !*use) {
    snprintf(errbuf, errlen, "empty 'use'");
    return NULL;
  }
  /* SCHEME:ARG, when some operator declares SCHEME (checked first: the ARG
   * is a path and may contain '/'). "lua" is the Lua host's. */
  const char *first_colon = strchr(use, ':');
  if (first_colon && first_colon > use) {
    size_t slen = (size_t)(first_colon - use);
    char scheme[64];
    if (slen < sizeof(scheme)) {
      memcpy(scheme, use, slen);
      scheme[slen] = '\0';
      const sl_operator_t *op = name_is_valid(scheme, NULL) ? find_scheme(reg, scheme, slen, plugin_out) : NULL;
      if (op) {
        const char *arg = first_colon + 1;
        if (!*arg) {
          snprintf(errbuf, errlen, "'%s': a file path must follow '%s:'", use, scheme);
          if (plugin_out) *plugin_out = NULL;
          return NULL;
        }
        if (arg_out) {
          if (arg[0] == '/' || !base_dir || strcmp(base_dir, ".") == 0)
            *arg_out = sl_xstrdup(arg);
          else
            *arg_out = sl_xasprintf("%s/%s", base_dir, arg);
        }
        return op;
      }
      if (strcmp(scheme, "lua") == 0) {
        snprintf(errbuf, errlen,
                 "'%s': no plugin provides 'lua:' operators (the Lua host, lua.so, is not on the "
                 "plugin path; see `sluice plugins`)",
                 use);
        return NULL;
      }
    }
  }
  char file[PATH_MAX];
  const char *colon = strrchr(use, ':');
  const char *opname = NULL;
  /* A path contains '/' or names a file ending in ".so" (before any ":op"). */
  size_t file_part = colon ? (size_t)(colon - use) : strlen(use);
  int is_path = strchr(use, '/') != NULL ||
                (file_part >= 3 && strncmp(use + file_part - 3, ".so", 3) == 0);
  if (is_path) {
    size_t flen = colon ? (size_t)(colon - use) : strlen(use);
    if (colon) opname = colon + 1;
    if (flen >= sizeof(file)) {
      snprintf(errbuf, errlen, "plugin path too long");
      return NULL;
    }
    char given[PATH_MAX];
    memcpy(given, use, flen);
    given[flen] = '\0';
    const char *rel = given;
    while (rel[0] == '.' && rel[1] == '/') rel += 2; /* "./x.so" -> "x.so": tidier messages */
    if (given[0] == '/' || !base_dir)
      snprintf(file, sizeof(file), "%s", given);
    else if ((size_t)snprintf(file, sizeof(file), "%s/%s", strcmp(base_dir, ".") ? base_dir : ".",
                              rel) >= sizeof(file)) {
      snprintf(errbuf, errlen, "plugin path too long: %s/%s", base_dir, rel);
      return NULL;
    }
    char err[1024];
    sl_plugin_handle_t *h = sl_registry_load(reg, file, err, sizeof(err));
    if (!h) {
      snprintf(errbuf, errlen, "%s", err);
      return NULL;
    }
    const sl_operator_t *op = NULL;
    if (opname) {
      op = plugin_find_op(h, opname);
      if (!op) {
        char ops[512];
        list_ops(h, ops, sizeof(ops));
        snprintf(errbuf, errlen, "plugin '%s' (%s) has no operator '%s' (it has: %s)",
                 h->desc->name, file, opname, ops);
        return NULL;
      }
    } else if (h->desc->operator_count == 1) {
      op = h->desc->operators[0];
    } else {
      char ops[512];
      list_ops(h, ops, sizeof(ops));
      snprintf(errbuf, errlen, "plugin '%s' (%s) has several operators; name one as '%s:OP' (%s)",
               h->desc->name, file, given, ops);
      return NULL;
    }
    if (plugin_out) *plugin_out = h;
    return op;
  }

  scan_quietly(reg);
  if (colon) {
    size_t plen = (size_t)(colon - use);
    opname = colon + 1;
    for (size_t i = 0; i < reg->plugin_count; i++) {
      sl_plugin_handle_t *h = reg->plugins[i];
      if (strlen(h->desc->name) == plen && strncmp(h->desc->name, use, plen) == 0) {
        const sl_operator_t *op = plugin_find_op(h, opname);
        if (op) {
          if (plugin_out) *plugin_out = h;
          return op;
        }
        char ops[512];
        list_ops(h, ops, sizeof(ops));
        snprintf(errbuf, errlen, "plugin '%.*s' has no operator '%s' (it has: %s)", (int)plen, use,
                 opname, ops);
        return NULL;
      }
    }
    snprintf(errbuf, errlen, "unknown plugin '%.*s' (see `sluice plugins`)", (int)plen, use);
    return NULL;
  }
  const sl_operator_t *found = NULL;
  sl_plugin_handle_t *found_in = NULL;
  for (size_t i = 0; i < reg->plugin_count; i++) {
    if (plugin_shadowed(reg, i)) continue;
    const sl_operator_t *op = plugin_find_op(reg->plugins[i], use);
    if (!op) continue;
    if (found) {
      snprintf(errbuf, errlen,
               "operator '%s' is in several plugins (%s, %s); write 'PLUGIN:%s' to choose", use,
               found_in->desc->name, reg->plugins[i]->desc->name, use);
      return NULL;
    }
    found = op;
    found_in = reg->plugins[i];
  }
  if (!found) {
    snprintf(errbuf, errlen, "unknown operator '%s' (see `sluice plugins`; a plugin file is named by a path such as "
             "./lib%s.so)",
             use, use);
    return NULL;
  }
  if (plugin_out) *plugin_out = found_in;
  return found;
}
