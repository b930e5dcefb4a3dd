/*
 * wn_parse.h - parse the window operator's `aggregate:` list, e.g.
 *   "count, sum(bytes), views=top_n(product, 5, views), approx_distinct(dst)"
 * into a wn_aggs_t. Pure: no host calls.
 *
 * Grammar (blanks allowed around every token):
 *   list  := item (',' item)*
 *   item  := [name '='] fn ['(' [arg (',' arg)*] ')']
 *   name, fn, field := [A-Za-z0-9_$.@-]+ ; integer := [0-9]+
 * `$key` as a field means the record key (as in key_by); any other name,
 * `key` included, is a top-level field of the value (a JSON object). A
 * default output name uses "key" for `$key`: sum($key) -> sum_key.
 */
#ifndef WN_PARSE_H
#define WN_PARSE_H

#include <stddef.h>

#include "wn_agg.h"
#include "wn_udaf.h"

/**
 * Parse `text` into *out (zeroed first; free it with wn_aggs_free, also on
 * failure). Returns 0, or -1 with a message such as
 * "column 12: unknown function 'mdian' (known: count, sum, ...)" in err.
 */
int wn_parse_aggs(const char *text, wn_aggs_t *out, char *err, size_t errlen);

/**
 * The same, where a function that is not built in is looked up with
 * `resolve` (window.c: the node's `functions`, then the plugins; see
 * wn_udaf.h). Each name is resolved once per list.
 */
int wn_parse_aggs_ex(const char *text, wn_aggs_t *out, wn_udaf_resolve_fn resolve, void *ud,
                     char *err, size_t errlen);

#endif
