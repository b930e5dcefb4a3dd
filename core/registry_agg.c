/*
 * registry_agg.c - finding user-defined aggregate functions (SDK 1.4) among
 * the loaded plugins; see sl_registry_resolve_aggregate in registry.h. The
 * forms mirror those of an operator's `use:`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "util.h"

size_t sl_plugin_aggregate_count(const sl_plugin_t *d) {
  return SL_PLUGIN_HAS(d, aggregate_count) && d->aggregates ? d->aggregate_count : 0;
}

static const sl_aggregate_t *find_in(const sl_plugin_t *d, const char *name, size_t len) {
  size_t n = sl_plugin_aggregate_count(d);
  for (size_t i = 0; i < n; i++)
    if (strlen(d->aggregates[i]->name) == len && strncmp(d->aggregates[i]->name, name, len) == 0)
      return d->aggregates[i];
  return NULL;
}

static void list_aggs(const sl_plugin_t *d, char *buf, size_t len) {
  size_t used = 0, n = sl_plugin_aggregate_count(d);
  buf[0] = '\0';
  if (n == 0) snprintf(buf, len, "none");
  for (size_t i = 0; i < n && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", d->aggregates[i]->name);
}

/* The first plugin of that name wins (the search path is like PATH). */
static int shadowed(const sl_registry_t *reg, size_t i) {
  for (size_t j = 0; j < i; j++)
    if (strcmp(sl_registry_at(reg, j)->desc->name, sl_registry_at(reg, i)->desc->name) == 0)
      return 1;
  return 0;
}

static const sl_aggregate_t *by_scheme(sl_registry_t *reg, const char *scheme, size_t len,
                                       sl_plugin_handle_t **plugin_out) {
  for (size_t i = 0; i < sl_registry_count(reg); i++) {
    if (shadowed(reg, i)) continue;
    const sl_plugin_t *d = sl_registry_at(reg, i)->desc;
    size_t n = sl_plugin_aggregate_count(d);
    for (size_t k = 0; k < n; k++) {
      const char *s = d->aggregates[k]->scheme;
      if (s && strlen(s) == len && strncmp(s, scheme, len) == 0) {
        if (plugin_out) *plugin_out = (sl_plugin_handle_t *)sl_registry_at(reg, i);
        return d->aggregates[k];
      }
    }
  }
  return NULL;
}

static int is_name(const char *s, size_t len) {
  if (!len) return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
  return 1;
}

/* "PATH.so[:NAME]": load the file (relative to base_dir) and pick the function. */
static const sl_aggregate_t *by_path(sl_registry_t *reg, const char *ref, const char *base_dir,
                                     sl_plugin_handle_t **plugin_out, char *errbuf,
                                     size_t errlen) {
  const char *so = strstr(ref, ".so");
  while (so && so[3] && so[3] != ':') so = strstr(so + 1, ".so");
  size_t flen = so ? (size_t)(so + 3 - ref) : strlen(ref);
  const char *name = so && so[3] == ':' ? so + 4 : NULL;
  char *file = ref[0] == '/' || !base_dir || strcmp(base_dir, ".") == 0
                   ? sl_xasprintf("%.*s", (int)flen, ref)
                   : sl_xasprintf("%s/%.*s", base_dir, (int)flen, ref);
  char err[1024];
  sl_plugin_handle_t *h = sl_registry_load(reg, file, err, sizeof(err));
  free(file);
  if (!h) {
    snprintf(errbuf, errlen, "%s", err);
    return NULL;
  }
  size_t n = sl_plugin_aggregate_count(h->desc);
  const sl_aggregate_t *a = NULL;
  if (name) a = find_in(h->desc, name, strlen(name));
  else if (n == 1) a = h->desc->aggregates[0];
  if (!a) {
    char list[512];
    list_aggs(h->desc, list, sizeof(list));
    if (name)
      snprintf(errbuf, errlen, "plugin '%s' (%s) has no aggregate function '%s' (it has: %s)",
               h->desc->name, h->path, name, list);
    else
      snprintf(errbuf, errlen,
               "plugin '%s' (%s) has %s aggregate functions; name one as '%.*s:NAME' (it has: %s)",
               h->desc->name, h->path, n ? "several" : "no", (int)flen, ref, list);
    return NULL;
  }
  if (plugin_out) *plugin_out = h;
  return a;
}

const sl_aggregate_t *sl_registry_resolve_aggregate(sl_registry_t *reg, const char *ref,
                                                    const char *base_dir,
                                                    sl_plugin_handle_t **plugin_out,
                                                    char **arg_out, char *errbuf, size_t errlen) {
  if (plugin_out) *plugin_out = NULL;
  if (arg_out) *arg_out = NULL;
  if (!ref || !*ref) {
    snprintf(errbuf, errlen, "empty aggregate function reference");
    return NULL;
  }
  sl_registry_scan(reg, NULL, NULL);
  const char *colon = strchr(ref, ':');
  if (colon && is_name(ref, (size_t)(colon - ref))) {
    const sl_aggregate_t *a = by_scheme(reg, ref, (size_t)(colon - ref), plugin_out);
    if (a) {
      const char *arg = colon + 1;
      if (!*arg) {
        snprintf(errbuf, errlen, "'%s': a file path must follow '%.*s:'", ref,
                 (int)(colon - ref), ref);
        if (plugin_out) *plugin_out = NULL;
        return NULL;
      }
      if (arg_out)
        *arg_out = arg[0] == '/' || !base_dir || strcmp(base_dir, ".") == 0
                       ? sl_xstrdup(arg)
                       : sl_xasprintf("%s/%s", base_dir, arg);
      return a;
    }
    if ((size_t)(colon - ref) == 3 && strncmp(ref, "lua", 3) == 0) {
      snprintf(errbuf, errlen,
               "'%s': no plugin provides 'lua:' aggregate functions (the Lua host, lua.so, is "
               "not on the plugin path; see `sluice plugins`)",
               ref);
      return NULL;
    }
  }
  if (strchr(ref, '/') || strstr(ref, ".so"))
    return by_path(reg, ref, base_dir, plugin_out, errbuf, errlen);
  if (colon) {
    size_t plen = (size_t)(colon - ref);
    for (size_t i = 0; i < sl_registry_count(reg); i++) {
      const sl_plugin_handle_t *h = sl_registry_at(reg, i);
      if (strlen(h->desc->name) != plen || strncmp(h->desc->name, ref, plen) != 0) continue;
      const sl_aggregate_t *a = find_in(h->desc, colon + 1, strlen(colon + 1));
      if (a) {
        if (plugin_out) *plugin_out = (sl_plugin_handle_t *)h;
        return a;
      }
      char list[512];
      list_aggs(h->desc, list, sizeof(list));
      snprintf(errbuf, errlen, "plugin '%.*s' has no aggregate function '%s' (it has: %s)",
               (int)plen, ref, colon + 1, list);
      return NULL;
    }
    snprintf(errbuf, errlen, "unknown plugin '%.*s' in '%s' (see `sluice plugins`)", (int)plen,
             ref, ref);
    return NULL;
  }
  const sl_aggregate_t *found = NULL;
  const sl_plugin_handle_t *found_in = NULL;
  for (size_t i = 0; i < sl_registry_count(reg); i++) {
    if (shadowed(reg, i)) continue;
    const sl_plugin_handle_t *h = sl_registry_at(reg, i);
    const sl_aggregate_t *a = find_in(h->desc, ref, strlen(ref));
    if (!a) continue;
    if (found) {
      snprintf(errbuf, errlen,
               "aggregate function '%s' is in several plugins (%s, %s); write 'PLUGIN:%s' to "
               "choose",
               ref, found_in->desc->name, h->desc->name, ref);
      return NULL;
    }
    found = a;
    found_in = h;
  }
  if (!found) {
    snprintf(errbuf, errlen,
             "unknown aggregate function '%s' (see `sluice plugins`; a Lua one is named "
             "lua:FILE.lua in the window's `functions`)",
             ref);
    return NULL;
  }
  if (plugin_out) *plugin_out = (sl_plugin_handle_t *)found_in;
  return found;
}
