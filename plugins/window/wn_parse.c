/*
 * wn_parse.c - see wn_parse.h.
 */
#include "wn_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wn_udaf.h"

#define KNOWN "count, sum, min, max, avg, distinct, approx_distinct, top_n"

typedef struct pstate {
  const char *s;
  size_t i;
  char *err;
  size_t errlen;
  wn_aggs_t *out;
  wn_udaf_resolve_fn resolve; /* user-defined functions, or NULL */
  void *ud;
} pstate_t;

typedef struct tok {
  const char *p;
  size_t len;
  size_t col; /* 1-based */
} tok_t;

static int fail_at(pstate_t *ps, size_t col, const char *fmt, ...) {
  int n = snprintf(ps->err, ps->errlen, "column %zu: ", col);
  if (n < 0) n = 0;
  if ((size_t)n < ps->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c == '.' || c == '@' || c == '-';
}

static void skip_ws(pstate_t *ps) {
  while (ps->s[ps->i] == ' ' || ps->s[ps->i] == '\t' || ps->s[ps->i] == '\n' ||
         ps->s[ps->i] == '\r')
    ps->i++;
}

static int word(pstate_t *ps, tok_t *t) {
  skip_ws(ps);
  t->p = ps->s + ps->i;
  t->col = ps->i + 1;
  while (is_word(ps->s[ps->i])) ps->i++;
  t->len = (size_t)(ps->s + ps->i - t->p);
  return t->len ? 0 : -1;
}

/* what is at the current position, for messages */
static const char *found(pstate_t *ps, char *buf, size_t len) {
  char c = ps->s[ps->i];
  if (!c) return "the end";
  snprintf(buf, len, "'%c'", c);
  return buf;
}

/* `$key` is the record key, as in key_by; every other name (`key` included) is
 * a top-level field of the value. */
static int is_key_name(const tok_t *t) { return t->len == 4 && memcmp(t->p, "$key", 4) == 0; }

/* the field's part of a default output name: "key" for `$key` (sum($key) is
 * sum_key, as sum(key) of a field "key" is), else the name as written */
static int part_len(const tok_t *t) { return is_key_name(t) ? 3 : (int)t->len; }
static const char *part_of(const tok_t *t) { return is_key_name(t) ? "key" : t->p; }

enum { NEED_VALUE = 0, NEED_NUM = 1, NEED_ANY = 2 };

/* index of the field named by t (added when new), or -1 (out of memory);
 * need: NEED_NUM (a number), NEED_VALUE (a scalar's text), NEED_ANY (a
 * user-defined function's argument: string, number or boolean) */
static int field_of(pstate_t *ps, const tok_t *t, int need, const char *fn) {
  wn_aggs_t *a = ps->out;
  int key = is_key_name(t);
  for (size_t i = 0; i < a->nfields; i++) {
    wn_field_t *f = &a->fields[i];
    if (key ? f->is_key : (!f->is_key && strlen(f->name) == t->len && !memcmp(f->name, t->p, t->len))) {
      if (need == NEED_NUM) f->need_num = 1;
      else if (need == NEED_ANY) f->need_any = 1;
      else f->need_value = 1;
      return (int)i;
    }
  }
  wn_field_t *v = realloc(a->fields, (a->nfields + 1) * sizeof *v);
  if (!v) return -1;
  a->fields = v;
  wn_field_t *f = &v[a->nfields];
  memset(f, 0, sizeof *f);
  f->is_key = key;
  if (!key) {
    f->name = strndup(t->p, t->len);
    if (!f->name) return -1;
  }
  f->need_num = need == NEED_NUM;
  f->need_value = need == NEED_VALUE;
  f->need_any = need == NEED_ANY;
  f->first_user = fn;
  return (int)a->nfields++;
}

/* The user-defined function named by fn: one already resolved, or a new
 * one from the resolver (kept in the list's udafs). */
static int udaf_of(pstate_t *ps, const tok_t *fn, wn_udaf_t **out) {
  wn_aggs_t *a = ps->out;
  for (size_t i = 0; i < a->nudafs; i++) {
    const char *n = wn_udaf_name(a->udafs[i]);
    if (strlen(n) == fn->len && memcmp(n, fn->p, fn->len) == 0) {
      *out = a->udafs[i];
      return 0;
    }
  }
  char name[128], why[768];
  if (fn->len >= sizeof name) return fail_at(ps, fn->col, "function name too long");
  memcpy(name, fn->p, fn->len);
  name[fn->len] = '\0';
  wn_udaf_t **v = realloc(a->udafs, (a->nudafs + 1) * sizeof *v);
  if (!v) return fail_at(ps, fn->col, "out of memory");
  a->udafs = v;
  why[0] = '\0';
  wn_udaf_t *u = ps->resolve(ps->ud, name, why, sizeof why);
  if (!u) return fail_at(ps, fn->col, "%s", why);
  a->udafs[a->nudafs++] = u;
  *out = u;
  return 0;
}

static int parse_item(pstate_t *ps) {
  wn_aggs_t *a = ps->out;
  char fb[8];
  tok_t first, fn, alias = {0};
  if (word(ps, &first) != 0)
    return fail_at(ps, ps->i + 1, "expected an aggregate such as count or sum(field), found %s",
                   found(ps, fb, sizeof fb));
  skip_ws(ps);
  if (ps->s[ps->i] == '=') {
    alias = first;
    ps->i++;
    if (word(ps, &fn) != 0)
      return fail_at(ps, ps->i + 1, "expected a function after '%.*s=', found %s", (int)alias.len,
                     alias.p, found(ps, fb, sizeof fb));
  } else {
    fn = first;
  }
  const wn_agg_ops_t *ops = wn_agg_ops_find(fn.p, fn.len);
  wn_udaf_t *udaf = NULL;
  if (!ops && ps->resolve) {
    if (udaf_of(ps, &fn, &udaf) != 0) return -1;
    ops = udaf->desc->acc_size ? &wn_udaf_fixed_ops : &wn_udaf_var_ops;
  }
  if (!ops)
    return fail_at(ps, fn.col, "unknown function '%.*s' (known: " KNOWN ")", (int)fn.len, fn.p);
  const char *fnname = udaf ? udaf->name : ops->fn;

  /* arguments */
  tok_t args[WN_ARGS_MAX];
  size_t nargs = 0;
  skip_ws(ps);
  size_t open_col = ps->i + 1;
  if (ps->s[ps->i] == '(') {
    ps->i++;
    skip_ws(ps);
    if (ps->s[ps->i] == ')') {
      ps->i++;
    } else {
      for (;;) {
        tok_t t;
        if (word(ps, &t) != 0)
          return fail_at(ps, ps->i + 1, "%s: expected a field name, found %s", fnname,
                         found(ps, fb, sizeof fb));
        if (nargs == WN_ARGS_MAX) return fail_at(ps, t.col, "%s: too many arguments", fnname);
        args[nargs++] = t;
        skip_ws(ps);
        if (ps->s[ps->i] == ',') {
          ps->i++;
          continue;
        }
        if (ps->s[ps->i] == ')') {
          ps->i++;
          break;
        }
        return fail_at(ps, ps->i + 1, "%s: expected ',' or ')', found %s", fnname,
                       found(ps, fb, sizeof fb));
      }
    }
  }

  wn_agg_t g;
  memset(&g, 0, sizeof g);
  g.ops = ops;
  g.field = WN_FIELD_NONE;
  g.weight = WN_FIELD_NONE;
  g.column = (int)first.col;
  char namebuf[256];
  if (udaf) {
    const sl_aggregate_t *d = udaf->desc;
    g.fn = WN_FN_UDAF;
    g.udaf = udaf;
    if (nargs < d->min_args || nargs > d->max_args) {
      if (d->min_args == d->max_args)
        return fail_at(ps, nargs ? args[0].col : open_col, "%s takes %u argument%s, got %zu",
                       fnname, d->min_args, d->min_args == 1 ? "" : "s", nargs);
      return fail_at(ps, nargs ? args[0].col : open_col, "%s takes %u to %u arguments, got %zu",
                     fnname, d->min_args, d->max_args, nargs);
    }
    for (size_t k = 0; k < nargs; k++)
      if ((g.args[k] = field_of(ps, &args[k], NEED_ANY, fnname)) < 0) goto oom;
    g.nargs = (uint32_t)nargs;
    if (nargs) snprintf(namebuf, sizeof namebuf, "%s_%.*s", fnname, part_len(&args[0]), part_of(&args[0]));
    else snprintf(namebuf, sizeof namebuf, "%s", fnname);
  } else if (strcmp(fnname, "count") == 0) {
    g.fn = WN_FN_COUNT;
    if (nargs) return fail_at(ps, args[0].col, "count takes no argument");
    snprintf(namebuf, sizeof namebuf, "count");
  } else if (strcmp(fnname, "top_n") == 0) {
    g.fn = WN_FN_TOP_N;
    if (nargs < 2 || nargs > 3)
      return fail_at(ps, nargs ? args[0].col : open_col,
                     "top_n needs a field and a count: top_n(field, n) or top_n(field, n, "
                     "weight_field)");
    const tok_t *nt = &args[1];
    uint32_t n = 0;
    int ok = nt->len > 0 && nt->len <= 4;
    for (size_t k = 0; ok && k < nt->len; k++) {
      if (nt->p[k] < '0' || nt->p[k] > '9') ok = 0;
      else n = n * 10 + (uint32_t)(nt->p[k] - '0');
    }
    if (!ok || n < 1 || n > WN_TOP_N_MAX)
      return fail_at(ps, nt->col, "top_n: n must be an integer from 1 to %d, got '%.*s'",
                     WN_TOP_N_MAX, (int)nt->len, nt->p);
    g.n = n;
    if ((g.field = field_of(ps, &args[0], NEED_VALUE, fnname)) < 0) goto oom;
    if (nargs == 3 && (g.weight = field_of(ps, &args[2], NEED_NUM, fnname)) < 0) goto oom;
    snprintf(namebuf, sizeof namebuf, "top_%.*s", part_len(&args[0]), part_of(&args[0]));
  } else {
    static const struct {
      const char *name;
      enum wn_fn fn;
      int num;
    } one[] = {{"sum", WN_FN_SUM, 1},           {"min", WN_FN_MIN, 1},
               {"max", WN_FN_MAX, 1},           {"avg", WN_FN_AVG, 1},
               {"distinct", WN_FN_DISTINCT, 0}, {"approx_distinct", WN_FN_APPROX_DISTINCT, 0}};
    size_t k = 0;
    while (strcmp(one[k].name, fnname) != 0) k++;
    g.fn = one[k].fn;
    if (nargs != 1)
      return fail_at(ps, nargs ? args[1].col : open_col, "%s needs exactly one field: %s(field)",
                     fnname, fnname);
    if ((g.field = field_of(ps, &args[0], one[k].num ? NEED_NUM : NEED_VALUE, fnname)) < 0)
      goto oom;
    snprintf(namebuf, sizeof namebuf, "%s_%.*s", fnname, part_len(&args[0]), part_of(&args[0]));
  }
  const char *name = namebuf;
  size_t name_len = strlen(namebuf);
  size_t name_col = first.col;
  if (alias.len) {
    name = alias.p;
    name_len = alias.len;
  }
  static const char *const reserved[] = {"key", "window_start", "window_end", "timing"};
  for (size_t r = 0; r < 4; r++)
    if (strlen(reserved[r]) == name_len && memcmp(reserved[r], name, name_len) == 0)
      return fail_at(ps, name_col,
                     "output name '%.*s' is taken by the window's own fields (key, window_start, "
                     "window_end, timing): give it another name, e.g. n=%s",
                     (int)name_len, name, fnname);
  for (size_t i = 0; i < a->n; i++)
    if (strlen(a->v[i].name) == name_len && memcmp(a->v[i].name, name, name_len) == 0)
      return fail_at(ps, name_col,
                     "duplicate output name '%.*s' (name one of them: other_name=%s(...))",
                     (int)name_len, name, fnname);
  if (a->n == WN_AGGS_MAX)
    return fail_at(ps, first.col, "too many aggregates (at most %d)", WN_AGGS_MAX);
  g.name = strndup(name, name_len);
  if (!g.name) goto oom;
  wn_agg_t *v = realloc(a->v, (a->n + 1) * sizeof *v);
  if (!v) {
    free(g.name);
    goto oom;
  }
  a->v = v;
  a->v[a->n++] = g;
  return 0;
oom:
  snprintf(ps->err, ps->errlen, "out of memory");
  return -1;
}

int wn_parse_aggs(const char *text, wn_aggs_t *out, char *err, size_t errlen) {
  return wn_parse_aggs_ex(text, out, NULL, NULL, err, errlen);
}

int wn_parse_aggs_ex(const char *text, wn_aggs_t *out, wn_udaf_resolve_fn resolve, void *ud,
                     char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  pstate_t ps = {text ? text : "", 0, err, errlen, out, resolve, ud};
  skip_ws(&ps);
  if (!ps.s[ps.i]) return fail_at(&ps, 1, "no aggregate given (e.g. \"count, sum(bytes)\")");
  for (;;) {
    if (parse_item(&ps) != 0) return -1;
    skip_ws(&ps);
    if (!ps.s[ps.i]) break;
    if (ps.s[ps.i] != ',') {
      char fb[8];
      return fail_at(&ps, ps.i + 1, "expected ',' between aggregates, found %s",
                     found(&ps, fb, sizeof fb));
    }
    ps.i++;
  }
  wn_aggs_finish(out);
  return 0;
}
