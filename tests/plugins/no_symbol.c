/* A shared object that is not a sluice plugin: no `sluice_plugin` symbol. */
#include "sluice.h"

SL_EXPORT int not_a_plugin(void);
int not_a_plugin(void) { return 42; }
