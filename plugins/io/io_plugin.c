/*
 * io_plugin.c - the "io" plugin descriptor.
 */
#include "io.h"

SL_PLUGIN_DEFINE("io", "1.0.0",
                 "Line-oriented sources (file, stdin) and sinks (stdout, file, null)",
                 &io_file_source_op, &io_stdin_source_op, &io_stdout_sink_op, &io_file_sink_op,
                 &io_null_sink_op);
