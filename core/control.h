/*
 * control.h - the control socket of a running job: a Unix socket at
 * <checkpoint dir>/control.sock (mode 0600) through which `sluice savepoint`
 * asks for a savepoint or a stop-with-savepoint. One request per
 * connection, one line each way:
 *   -> "savepoint [DIR]\n"  or  "stop [DIR]\n"
 *   <- "ok PATH\n"          or  "error MESSAGE\n"
 */
#ifndef SL_CONTROL_H
#define SL_CONTROL_H

#include <stddef.h>

#include "job.h"

/** Start serving (when the job takes checkpoints). 0, or -1 with a message
 * (another live job already serves this checkpoint directory). */
int sl_control_start(sl_job_t *job, char *err, size_t errlen);
/**
 * Before a job restores or opens anything: create ckpt_dir if needed and
 * take an exclusive lock on ckpt_dir/LOCK for the life of the process. -1
 * with a message when another live job holds it.
 */
int sl_control_lock(const char *ckpt_dir, char *err, size_t errlen);
/** Stop serving and remove the socket. */
void sl_control_stop(sl_job_t *job);
/**
 * Client side (sluice savepoint): send `request` to the job whose checkpoint
 * directory is ckpt_dir and wait for the answer. 0 with the savepoint's path
 * in out, -1 with the reason.
 */
int sl_control_request(const char *ckpt_dir, const char *request, char *out, size_t outlen);

#endif
