// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The relay daemon's control socket: serves the `natsplice` CLI. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "relay.h"
#include "log.h"
#include "util.h"

struct ctl_conn {
	struct relay_watch w;
};

static int reply(int fd, const struct ctl_resp *h, const void *recs, size_t reclen)
{
	__u8 buf[sizeof(*h) + CTL_BATCH * sizeof(struct ctl_splice)];
	size_t len = sizeof(*h) + reclen;

	if (len > sizeof(buf))
		return -EMSGSIZE;
	memcpy(buf, h, sizeof(*h));
	if (reclen)
		memcpy(buf + sizeof(*h), recs, reclen);
	return send(fd, buf, len, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int reply_err(int fd, int err, const char *msg)
{
	struct ctl_resp h = { .err = err };

	snprintf(h.msg, sizeof(h.msg), "%s", msg && *msg ? msg : strerror(-err));
	return reply(fd, &h, NULL, 0);
}

static int reply_splices(struct relay *r, int fd, struct relay_splice *only)
{
	struct ctl_splice recs[CTL_BATCH];
	struct ctl_resp h = { .kind = CTL_LIST };
	struct relay_splice *sp = only ? only : r->head;
	int err;

	for (;;) {
		h.count = 0;
		while (sp && h.count < CTL_BATCH) {
			relay_splice_sync(r, sp);
			relay_splice_info(r, sp, &recs[h.count++]);
			sp = only ? NULL : sp->next;
		}
		h.flags = sp ? CTL_F_MORE : 0;
		err = reply(fd, &h, recs, h.count * sizeof(recs[0]));
		if (err || !sp)
			return err;
	}
}

static int handle(struct relay *r, int fd, const struct ctl_req *req)
{
	struct relay_splice *sp;
	struct ctl_resp h = {};
	char msg[160] = "";
	int err;

	switch (req->op) {
	case CTL_ADD:
		err = relay_splice_add(r, req, &sp, msg, sizeof(msg));
		return err ? reply_err(fd, err, msg) : reply_splices(r, fd, sp);
	case CTL_LIST:
		return reply_splices(r, fd, NULL);
	case CTL_SHOW:
	case CTL_DEL:
		sp = relay_splice_find(r, req->id);
		if (!sp) {
			snprintf(msg, sizeof(msg), "no splice %u", req->id);
			return reply_err(fd, -ENOENT, msg);
		}
		err = reply_splices(r, fd, sp);
		if (req->op == CTL_DEL) {
			if (sp->s.proto == IPPROTO_TCP && sp->s.state < NS_ST_ESTABLISHED) {
				r->dp->reset(r, sp, 0);
				r->dp->reset(r, sp, 1);
			}
			relay_splice_delete(r, sp, "deleted");
		}
		return err;
	case CTL_STATS: {
		__u64 stats[NS_STAT_MAX] = {};

		r->dp->stats(r, stats);
		h.kind = CTL_STATS;
		h.count = NS_STAT_MAX;
		return reply(fd, &h, stats, sizeof(stats));
	}
	case CTL_INFO: {
		struct ctl_info info = {};

		snprintf(info.dev, sizeof(info.dev), "%s", r->cfg.dev);
		snprintf(info.mode, sizeof(info.mode), "%s", relay_mode_name(r->cfg.mode));
		info.ifindex = r->ifindex;
		info.has4 = r->cfg.has4;
		info.has6 = r->cfg.has6;
		info.addr4 = r->cfg.addr4[0];
		memcpy(info.addr6, r->cfg.addr6, sizeof(info.addr6));
		info.port_lo = r->cfg.port_lo;
		info.port_hi = r->cfg.port_hi;
		info.splices = r->nsplices;
		h.kind = CTL_INFO;
		h.count = 1;
		return reply(fd, &h, &info, sizeof(info));
	}
	default:
		return reply_err(fd, -EOPNOTSUPP, "unknown request");
	}
}

static void on_conn(struct relay *r, struct relay_watch *w, __u32 events)
{
	struct ctl_conn *c = (struct ctl_conn *)w;
	struct ctl_req req;
	ssize_t n;

	n = recv(w->fd, &req, sizeof(req), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)sizeof(req) && req.version == CTL_VERSION)
		handle(r, w->fd, &req);
	else if (n > 0)
		reply_err(w->fd, -EPROTO, "control request of another natsplice version");
	relay_watch_del(r, w);
	close(w->fd);
	free(c);
}

static void on_accept(struct relay *r, struct relay_watch *w, __u32 events)
{
	struct timeval tv = { .tv_sec = 2 };
	struct ctl_conn *c;
	int fd;

	fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->w.fn = on_conn;
	c->w.fd = fd;
	if (relay_watch_add(r, &c->w, EPOLLIN)) {
		close(fd);
		free(c);
	}
}

static void mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0755);
	}
}

int relay_ctl_open(struct relay *r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, probe, i, live = 0, err;
	mode_t mask;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", r->cfg.sock_path);
	mkdir_parent(sun.sun_path);
	/* A live daemon answers on the path: refuse to steal it. One that was
	 * just killed may still hold it for a moment, so ask a few times. */
	for (i = 0; i < 10; i++) {
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -errno;
		live = !connect(probe, (struct sockaddr *)&sun, sizeof(sun));
		close(probe);
		if (!live)
			break;
		usleep(100 * 1000);
	}
	if (live) {
		log_err("another relay daemon is running on %s", sun.sun_path);
		return -EADDRINUSE;
	}
	unlink(sun.sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Created 0600: no moment in which another user could connect. */
	mask = umask(0177);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(mask);
	if (err || listen(fd, 64)) {
		err = err ? err : -errno;
		log_err("control socket %s: %s", sun.sun_path, strerror(-err));
		close(fd);
		return err;
	}
	r->ctl_fd = fd;
	r->ctl_w.fn = on_accept;
	r->ctl_w.fd = fd;
	return relay_watch_add(r, &r->ctl_w, EPOLLIN);
}

void relay_ctl_close(struct relay *r)
{
	if (r->ctl_fd < 0)
		return;
	close(r->ctl_fd);
	unlink(r->cfg.sock_path);
	r->ctl_fd = -1;
}
