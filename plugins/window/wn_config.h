/*
 * wn_config.h - check the window operator's configuration (the values as
 * the host read them: durations in ms, 0 = not given) and build the window
 * definition. Pure: no host calls.
 */
#ifndef WN_CONFIG_H
#define WN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "wn_assign.h"

typedef struct wn_config_in {
  const char *type; /* tumbling | sliding | session */
  int64_t size, slide, gap, offset, allowed_lateness, early_fire;
} wn_config_in_t;

/** Fill *w from in. Returns 0, or -1 with a message in err. */
int wn_config_check(const wn_config_in_t *in, wn_win_t *w, char *err, size_t errlen);

#endif
