// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>

#include "pipe.h"

#define PIPE_CHUNK (1 << 20)	/* bytes asked of one splice(2) from the source */

void ns_pipe_init(struct ns_pipe *p)
{
	p->src = p->dst = -1;
	p->p[0] = p->p[1] = -1;
	p->inpipe = 0;
	p->slots = 1;
	p->src_hup = false;
	p->eof = p->done = false;
}

int ns_pipe_open(struct ns_pipe *p, int src, int dst, int capacity)
{
	long n;

	ns_pipe_init(p);
	if (pipe2(p->p, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	/* best effort: F_SETPIPE_SZ says the capacity it gave */
	n = capacity ? fcntl(p->p[1], F_SETPIPE_SZ, capacity) : -1;
	if (n < 0)
		n = fcntl(p->p[1], F_GETPIPE_SZ);
	if (n > 0)
		p->slots = n / sysconf(_SC_PAGESIZE);
	p->src = src;
	p->dst = dst;
	return 0;
}

void ns_pipe_close(struct ns_pipe *p)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (p->p[i] >= 0)
			close(p->p[i]);
		p->p[i] = -1;
	}
}

int ns_pipe_pump(struct ns_pipe *p, __u64 *moved, __u64 *reads)
{
	return ns_pipe_pump_upto(p, moved, reads, NULL);
}

int ns_pipe_pump_upto(struct ns_pipe *p, __u64 *moved, __u64 *reads, __u64 *budget)
{
	bool drained = false;	/* the last read took all src had */
	size_t chunk;
	ssize_t n;

	while (!p->done) {
		if (p->inpipe) {
			n = splice(p->p[0], NULL, p->dst, NULL, p->inpipe,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return errno == EAGAIN ? 0 : -errno;
			p->inpipe -= n;
			if (moved)
				*moved += n;
			continue;
		}
		if (p->eof) {
			shutdown(p->dst, SHUT_WR);
			p->done = true;
			break;
		}
		if (drained)
			break;
		chunk = PIPE_CHUNK;
		if (budget && *budget < chunk)
			chunk = *budget;
		if (!chunk)
			return 1;	/* src may hold more: the caller comes back */
		n = splice(p->src, NULL, p->p[1], NULL, chunk, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			p->eof = true;
		else if (reads)
			(*reads)++;
		if (budget)
			*budget -= n;
		drained = !p->src_hup && !p->inpipe && n > 0 && (size_t)n < p->slots &&
			  (size_t)n < chunk;
		p->inpipe += n;
	}
	return 0;
}
