/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * -d, the same in every daemon: fork; the command returns once the daemon
 * is ready (status 0) or has failed to start (its exit status, never 0).
 * Without -d a daemon stays in the foreground, logging to stderr.
 */
#ifndef NS_DAEMON_H
#define NS_DAEMON_H

/*
 * Call before the event loop, the signalfd and any socket exist (a
 * signalfd created before fork() wakes only the parent). In the caller
 * this never returns: it waits for the child's ns_detach_ready() or exit
 * and exits with the outcome. The child, in a new session with stdin and
 * stdout on /dev/null and stderr kept, gets 0 and *ready_fd; -errno if
 * fork() failed (nothing detached).
 */
int ns_detach(int *ready_fd);

/* Start-up is complete: the waiting command exits 0. Only the first call
 * counts; *ready_fd -1 (no -d) does nothing. */
void ns_detach_ready(int *ready_fd);

#endif
