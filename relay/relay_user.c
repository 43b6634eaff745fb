// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Userspace mode (`--mode userspace`): for hosts that cannot load BPF. The
 * relay accepts both TCP connections itself and moves the bytes with
 * splice(2) through a pipe, or relays UDP datagrams between two bound
 * sockets. Same splices, ids, ports and states as the kernel dataplane; it is
 * also the application-layer baseline of the benchmarks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "relay.h"
#include "log.h"
#include "pkt.h"
#include "util.h"

#define PIPE_BYTES	(256 << 10)	/* pipe capacity per direction (agent_fwd.c: a
					 * user's pipes are limited to 64 MiB) */
#define UDP_MAX		65536


static void from_sockaddr(const struct sockaddr_storage *ss, struct ns_peer *p)
{
	__u8 family;

	memset(p, 0, sizeof(*p));
	ns_sockaddr_split(ss, &family, p->addr, &p->port);
}

static bool allowed(const struct relay_splice *sp, int side, const struct ns_peer *p)
{
	return sp->s.allow_any[side] ||
	       !memcmp(sp->s.allow[side], p->addr, sizeof(p->addr));
}

#define BW_RETRY_MS 5	/* max-bandwidth: a held-back direction tries again */

static void close_watch(struct relay *r, struct relay_watch *w)
{
	if (w->fd < 0)
		return;
	relay_watch_del(r, w);
	close(w->fd);
	w->fd = -1;
}

static void set_closed(struct relay_splice *sp, bool rst)
{
	if (sp->s.state == NS_ST_CLOSED)
		return;
	sp->s.state = NS_ST_CLOSED;
	sp->s.closed_by_rst = rst;
	sp->s.closed_ns = ns_now_ns();
}

static void close_pipes(struct relay_splice *sp)
{
	ns_pipe_close(&sp->pipe[0]);
	ns_pipe_close(&sp->pipe[1]);
}

/* Abort: the peer still connected gets an RST, as the kernel path would. */
static void abort_splice(struct relay *r, struct relay_splice *sp)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int side;

	for (side = 0; side < 2; side++) {
		if (sp->cw[side].fd >= 0)
			setsockopt(sp->cw[side].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close_watch(r, &sp->cw[side]);
	}
	close_pipes(sp);
	set_closed(sp, true);
}

/* Move what can be moved in direction d, within max-bandwidth; false if
 * the splice was aborted. */
static bool pump(struct relay *r, struct relay_splice *sp, int d)
{
	__u64 before = sp->ubytes[d], now = ns_now_ns(), room, left;
	int ret;

	room = left = ns_bw_room(&r->bw, now);
	ret = ns_pipe_pump_upto(&sp->pipe[d], &sp->ubytes[d], &sp->upackets[d],
				r->bw.ps_per_byte ? &left : NULL);
	if (ret < 0) {
		abort_splice(r, sp);	/* ECONNRESET and friends: reset the other side */
		return false;
	}
	ns_bw_spend(&r->bw, room - left, now);
	sp->held[d] = ret == 1;
	if (sp->held[d] && !ns_timer_armed(&r->bw_t))
		ns_timer_arm(r->loop, &r->bw_t, BW_RETRY_MS);
	if (sp->ubytes[d] != before)
		sp->ulast_ns = now;
	if (sp->pipe[d].eof && sp->s.state == NS_ST_ESTABLISHED)
		sp->s.state = NS_ST_CLOSING;
	if (sp->pipe[0].done && sp->pipe[1].done) {
		close_watch(r, &sp->cw[0]);
		close_watch(r, &sp->cw[1]);
		close_pipes(sp);
		set_closed(sp, false);
	}
	return true;
}

/* max-bandwidth held directions back: pump them again (their sockets
 * raise no new edge for what they hold). */
static void on_bw(struct ns_loop *l, struct ns_timer *t)
{
	struct relay *r = t->data;
	struct relay_splice *sp, *next;
	int d;

	for (sp = r->head; sp; sp = next) {
		next = sp->next;
		for (d = 0; d < 2; d++)
			if (sp->held[d] && sp->s.state != NS_ST_CLOSED && !pump(r, sp, d))
				break;
	}
}

static void on_tcp_data(struct relay *r, struct relay_watch *w, __u32 events)
{
	struct relay_splice *sp = w->sp;

	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		sp->pipe[w->side].src_hup = true;	/* its FIN raises no further edge */
	if (pump(r, sp, 0) && sp->s.state != NS_ST_CLOSED)
		pump(r, sp, 1);
}

static int start_forwarding(struct relay *r, struct relay_splice *sp)
{
	int d, side, err;

	for (d = 0; d < 2; d++) {
		err = ns_pipe_open(&sp->pipe[d], sp->cw[d].fd, sp->cw[!d].fd, PIPE_BYTES);
		if (err)
			return err;
	}
	for (side = 0; side < 2; side++) {
		close_watch(r, &sp->lw[side]);
		sp->cw[side].fn = on_tcp_data;
		err = relay_watch_add(r, &sp->cw[side], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
		if (err)
			return err;
	}
	r->ev.paired(r, sp, 0);
	on_tcp_data(r, &sp->cw[0], 0);
	return 0;
}

static void on_tcp_accept(struct relay *r, struct relay_watch *w, __u32 events)
{
	struct relay_splice *sp = w->sp;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ns_peer peer;
	int fd, side = w->side;

	fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	from_sockaddr(&ss, &peer);
	if (!allowed(sp, side, &peer) || sp->cw[side].fd >= 0) {
		close(fd);	/* a stranger, or a second connection: nothing for it */
		return;
	}
	sp->s.peer[side] = peer;
	sp->s.seen |= 1 << side;
	sp->cw[side].fd = fd;
	sp->cw[side].sp = sp;
	sp->cw[side].side = side;
	if (sp->s.seen == 3) {
		if (start_forwarding(r, sp))
			abort_splice(r, sp);
		return;
	}
	sp->s.state = NS_ST_HALF;
	log_info("splice %u: side %c connected, waiting for side %c", sp->s.id, 'A' + side,
		 'B' - side);
}

static void on_udp(struct relay *r, struct relay_watch *w, __u32 events)
{
	static __u8 buf[UDP_MAX];
	struct relay_splice *sp = w->sp;
	struct sockaddr_storage ss;
	struct ns_peer peer;
	int side = w->side;
	socklen_t sl;
	ssize_t n;
	__u64 now;

	for (;;) {
		sl = sizeof(ss);
		n = recvfrom(w->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
		if (n < 0)
			return;
		from_sockaddr(&ss, &peer);
		if (n == NS_TOKEN_BYTES && !memcmp(buf, sp->s.token, NS_TOKEN_BYTES)) {
			if (!allowed(sp, side, &peer))
				continue;
			if (!(sp->s.seen & (1 << side)) || sp->s.state < NS_ST_ESTABLISHED) {
				sp->s.peer[side] = peer;
				sp->s.seen |= 1 << side;
				sp->s.state = sp->s.seen == 3 ? NS_ST_ESTABLISHED : NS_ST_HALF;
				if (sp->s.seen == 3) {
					int s;

					for (s = 0; s < 2; s++) {
						ns_sockaddr_make(sp->s.family, sp->s.peer[s].addr,
							    sp->s.peer[s].port, &ss);
						sendto(sp->lw[s].fd, "NSOK", 4, 0,
						       (struct sockaddr *)&ss, sl);
					}
					log_info("splice %u: established", sp->s.id);
				}
			} else if (!memcmp(&peer, &sp->s.peer[side], sizeof(peer))) {
				sendto(w->fd, "NSOK", 4, 0, (struct sockaddr *)&ss, sl);
			}
			continue;
		}
		if (sp->s.state < NS_ST_ESTABLISHED ||
		    memcmp(&peer, &sp->s.peer[side], sizeof(peer)))
			continue;	/* before the splice, or not the peer: dropped */
		now = ns_now_ns();
		if (ns_bw_room(&r->bw, now) < (__u64)n) {
			r->bw_dropped++;	/* over max-bandwidth */
			continue;
		}
		ns_bw_spend(&r->bw, n, now);
		ns_sockaddr_make(sp->s.family, sp->s.peer[!side].addr, sp->s.peer[!side].port, &ss);
		if (sendto(sp->lw[!side].fd, buf, n, MSG_DONTWAIT, (struct sockaddr *)&ss,
			   sp->s.family == NS_AF_INET ? sizeof(struct sockaddr_in) :
							sizeof(struct sockaddr_in6)) == n) {
			sp->ubytes[side] += n;
			sp->upackets[side]++;
			sp->ulast_ns = now;
		}
	}
}

static int relay_user_open(struct relay *r, struct relay_splice *sp)
{
	int type = sp->s.proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	int side, one = 1, fd;
	struct sockaddr_storage ss;
	socklen_t sl;

	if (sp->s.mode == NS_MODE_PURE)
		return -EOPNOTSUPP;
	/* (a public port's client is accepted on the public port already) */
	for (side = 0; side < (sp->s.pub ? 1 : 2); side++) {
		fd = socket(sp->s.family == NS_AF_INET ? AF_INET : AF_INET6,
			    type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sl = ns_sockaddr_make(sp->s.family, sp->s.relay, sp->s.port[side], &ss);
		if (bind(fd, (struct sockaddr *)&ss, sl) ||
		    (type == SOCK_STREAM && listen(fd, 4))) {
			int err = -errno;

			close(fd);
			return err;
		}
		sp->lw[side].fd = fd;
		sp->lw[side].sp = sp;
		sp->lw[side].side = side;
		sp->lw[side].fn = type == SOCK_STREAM ? on_tcp_accept : on_udp;
		if (relay_watch_add(r, &sp->lw[side], EPOLLIN))
			return -errno;
	}
	return 0;
}

static int relay_user_reset(struct relay *r, const struct relay_splice *csp, int side)
{
	/* (its connection is the splice's, not the caller's) */
	struct relay_splice *sp = (struct relay_splice *)csp;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (sp->cw[side].fd >= 0)
		setsockopt(sp->cw[side].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close_watch(r, &sp->cw[side]);
	return 0;
}

static void relay_user_close(struct relay *r, struct relay_splice *sp)
{
	int side;

	for (side = 0; side < 2; side++) {
		close_watch(r, &sp->lw[side]);
		close_watch(r, &sp->cw[side]);
	}
	close_pipes(sp);
}

/*
 * A public port is a listening socket here: the kernel completes the
 * clients' handshakes (SYN cookies when its backlog overflows), and each
 * accepted client waits for its provider as side B of a splice of its own.
 */
static void on_public_accept(struct relay *r, struct relay_watch *w, __u32 events)
{
	struct relay_public *pub = (struct relay_public *)((char *)w -
							   offsetof(struct relay_public, lw));
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct ns_pkt_info pi = { .proto = IPPROTO_TCP };
	struct sockaddr_storage ss;
	struct relay_splice *sp;
	socklen_t sl;
	int fd;

	for (;;) {
		sl = sizeof(ss);
		fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		ns_sockaddr_split(&ss, &pi.family, pi.saddr, &pi.sport);
		sp = relay_public_client(r, pub, &pi, true);
		if (!sp) {
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);	/* not allowed, or no room: an RST */
			continue;
		}
		sp->cw[1].fd = fd;
		sp->cw[1].sp = sp;
		sp->cw[1].side = 1;
		sp->s.seen |= 2;
		sp->s.state = NS_ST_HALF;
	}
}

static int dp_public_open(struct relay *r, struct relay_public *pub)
{
	int one = 1, fd, err;
	struct sockaddr_storage ss;
	socklen_t sl;

	fd = socket(pub->family == NS_AF_INET ? AF_INET : AF_INET6,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sl = ns_sockaddr_make(pub->family, relay_addr(r, pub->family), htons(pub->port), &ss);
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, SOMAXCONN)) {
		err = -errno;
		close(fd);
		return err;
	}
	pub->lw.fd = fd;
	pub->lw.sp = NULL;
	pub->lw.fn = on_public_accept;
	err = relay_watch_add(r, &pub->lw, EPOLLIN);
	if (err) {
		close(fd);
		pub->lw.fd = -1;
	}
	return err;
}

static void dp_public_close(struct relay *r, struct relay_public *pub)
{
	close_watch(r, &pub->lw);
}

/* ---- the dataplane (struct relay_dataplane) ---- */

static int dp_open(struct relay *r)
{
	ns_timer_init(&r->bw_t, on_bw, r);
	if (r->cfg.max_bw_mbit)
		log_info("max-bandwidth: %u Mbit/s, over it the relay stops reading",
			 r->cfg.max_bw_mbit);
	return 0;	/* (no state outlives a daemon: nothing to adopt) */
}

static void dp_close(struct relay *r)
{
	ns_timer_cancel(r->loop, &r->bw_t);
}

/* The relay ports are this process's sockets: the kernel keeps strangers
 * out of them, the answers are the accepts. */
static int dp_nothing(struct relay *r, const struct relay_splice *sp, int side)
{
	return 0;
}

static void dp_port_release(struct relay *r, const struct relay_splice *sp, int side,
			    bool seal)
{
}

static int dp_install(struct relay *r, struct relay_splice *sp)
{
	return 0;
}

static int dp_save(struct relay *r, const struct relay_splice *sp)
{
	return 0;
}

static int dp_refresh(struct relay *r, struct ns_splice *s)
{
	return -EOPNOTSUPP;
}

static int dp_entries(struct relay *r, const struct relay_splice *sp, struct relay_entries *e)
{
	memset(e, 0, sizeof(*e));	/* (the states are set by the pumps) */
	e->last_seen_ns = sp->ulast_ns;
	return 0;
}

static int dp_counters(struct relay *r, const struct relay_splice *sp, __u64 packets[2],
		       __u64 bytes[2])
{
	memcpy(packets, sp->upackets, sizeof(sp->upackets));
	memcpy(bytes, sp->ubytes, sizeof(sp->ubytes));
	return 0;
}

static __u32 dp_key_owner(struct relay *r, const struct relay_splice *sp, int dir)
{
	return 0;
}

static int dp_stats(struct relay *r, __u64 stats[NS_STAT_MAX])
{
	memset(stats, 0, NS_STAT_MAX * sizeof(*stats));
	stats[NS_DROP_RATE] = r->bw_dropped;
	return 0;
}

const struct relay_dataplane relay_dp_user = {
	.keep_caps = 0,
	.needs_root = false,
	.outlives_daemon = false,
	.udp_keeps_ports = true,
	.open = dp_open,
	.close = dp_close,
	.splice_open = relay_user_open,
	.splice_close = relay_user_close,
	.port_wait = dp_nothing,
	.port_release = dp_port_release,
	.install = dp_install,
	.answer = dp_nothing,
	.reset = relay_user_reset,
	.save = dp_save,
	.refresh = dp_refresh,
	.entries = dp_entries,
	.counters = dp_counters,
	.key_owner = dp_key_owner,
	.stats = dp_stats,
	.public_open = dp_public_open,
	.public_close = dp_public_close,
};
