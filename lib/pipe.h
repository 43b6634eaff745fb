/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One direction of a splice(2) forwarder: bytes move from a source socket
 * through a pipe into a destination socket without being copied to user
 * space. Used by the relay's userspace mode and by the agent's tunnels.
 */
#ifndef NS_LIB_PIPE_H
#define NS_LIB_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct ns_pipe {
	int src, dst;		/* sockets (not owned) */
	int p[2];		/* the pipe, -1 when closed */
	size_t inpipe;		/* bytes in the pipe */
	unsigned int slots;	/* the pipe's capacity in buffers (pages) */
	bool src_hup;		/* the caller saw src's peer close (EPOLLRDHUP/HUP/ERR) */
	bool eof;		/* src said EOF: shut dst's write side once drained */
	bool done;		/* ... and that happened */
};

/* Not yet open: safe to ns_pipe_close. */
void ns_pipe_init(struct ns_pipe *p);
/* Open the pipe (capacity in bytes, 0 = default): 0 or -errno. */
int ns_pipe_open(struct ns_pipe *p, int src, int dst, int capacity);
/* Close the pipe's own fds (not src/dst); safe twice. */
void ns_pipe_close(struct ns_pipe *p);
/*
 * Move what can move without blocking. *moved (if not NULL) grows by the
 * bytes written to dst, *reads by the number of reads from src. After src's
 * EOF and a drained pipe, dst's write side is shut down (half-close) and
 * p->done set. 0 when it would block or is done; -errno on a socket error
 * (-ECONNRESET: the caller resets the other side).
 *
 * For edge-triggered sockets: src is read until EAGAIN, or until a read
 * into an empty pipe brings fewer bytes than the pipe has buffers. Such a
 * read cannot have been cut short by the pipe (every buffer holds at least
 * a byte), so it took everything src had; a byte that comes later raises a
 * new edge. That spares the EAGAIN read after each small message. But a FIN
 * that was already queued behind the data raises no new edge: once the
 * caller has seen src's peer close (src_hup), src is read to its EOF.
 */
int ns_pipe_pump(struct ns_pipe *p, __u64 *moved, __u64 *reads);
/*
 * The same, reading at most *budget bytes from src (budget NULL: no
 * limit); *budget shrinks by what was read. 1 when the budget ran out
 * before src was known to be drained: with edge-triggered sockets no new
 * edge comes for what src still holds, the caller must pump again.
 */
int ns_pipe_pump_upto(struct ns_pipe *p, __u64 *moved, __u64 *reads, __u64 *budget);

#endif
