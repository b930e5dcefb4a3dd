/*
 * wn_config.c - see wn_config.h.
 */
#include "wn_config.h"

#include <stdio.h>
#include <string.h>

int wn_config_check(const wn_config_in_t *in, wn_win_t *w, char *err, size_t errlen) {
  memset(w, 0, sizeof *w);
  const char *type = in->type ? in->type : "";
  if (strcmp(type, "tumbling") == 0) w->kind = WN_TUMBLING;
  else if (strcmp(type, "sliding") == 0) w->kind = WN_SLIDING;
  else if (strcmp(type, "session") == 0) w->kind = WN_SESSION;
  else {
    snprintf(err, errlen, "type: unknown window type '%s' (tumbling, sliding or session)", type);
    return -1;
  }
  if (in->size < 0 || in->slide < 0 || in->gap < 0 || in->offset < 0 ||
      in->allowed_lateness < 0 || in->early_fire < 0) {
    snprintf(err, errlen, "durations must not be negative");
    return -1;
  }
  switch (w->kind) {
  case WN_TUMBLING:
    if (in->size <= 0) {
      snprintf(err, errlen, "tumbling windows need size (a duration > 0, e.g. size: 1m)");
      return -1;
    }
    if (in->slide) {
      snprintf(err, errlen, "slide is for sliding windows; tumbling windows take size (and offset)");
      return -1;
    }
    if (in->gap) {
      snprintf(err, errlen, "gap is for session windows; tumbling windows take size (and offset)");
      return -1;
    }
    break;
  case WN_SLIDING:
    if (in->size <= 0) {
      snprintf(err, errlen, "sliding windows need size (a duration > 0, e.g. size: 5m)");
      return -1;
    }
    if (in->slide <= 0) {
      snprintf(err, errlen, "sliding windows need slide (a duration > 0, e.g. slide: 30s)");
      return -1;
    }
    if (in->slide > in->size) {
      snprintf(err, errlen,
               "slide (%lld ms) is larger than size (%lld ms): records between windows would be "
               "lost; use slide <= size",
               (long long)in->slide, (long long)in->size);
      return -1;
    }
    if (in->gap) {
      snprintf(err, errlen, "gap is for session windows; sliding windows take size and slide");
      return -1;
    }
    break;
  case WN_SESSION:
    if (in->gap <= 0) {
      snprintf(err, errlen, "session windows need gap (a duration > 0, e.g. gap: 5m)");
      return -1;
    }
    if (in->size || in->slide || in->offset) {
      snprintf(err, errlen, "session windows take gap only, not %s",
               in->size ? "size" : in->slide ? "slide" : "offset");
      return -1;
    }
    break;
  }
  w->size = in->size;
  w->slide = in->slide;
  w->gap = in->gap;
  w->offset = in->offset;
  w->lateness = in->allowed_lateness;
  w->early = in->early_fire;
  wn_win_init(w);
  return 0;
}
