// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * NAT behaviour discovery, the agent's side (include/ns_proto.h, "NAT
 * behaviour discovery"; lib/natdisc.h). When the broker names its
 * discovery addresses (DISCOVERY, after every login), a thread runs RFC
 * 5780's tests with blocking sockets and short timeouts (a few seconds in
 * all, nothing of the event loop's touched), hands the results back
 * through a pipe, and the loop logs them and reports NAT_INFO. Answers are
 * checked against the request's nonce and the tag only the broker can make
 * with this agent's secret: a forged or replayed answer counts as none.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"
#include "natdisc.h"
#include "proto.h"
#include "util.h"

#define DISC_TRIES	3	/* requests sent before a test counts as unanswered */
#define DISC_WAIT_MS	500	/* for each one's answer */
#define DISC_BACK_MS	2000	/* for a connect-back */

struct agent_disc {
	pthread_t thread;
	bool running;
	int pipe[2];			/* the thread's results -> the loop */
	struct ns_watch w;
	/* the thread's inputs, copied */
	char name[AGENT_NAME_MAX + 1];
	char secret[AGENT_NAME_MAX + 1];
	struct sockaddr_storage at[2];	/* L:P and D:P */
	struct ns_nat_result res[2];	/* TCP, UDP */
};

/* ---- the thread ---- */

/* ss with port + delta. */
static struct sockaddr_storage disc_to(const struct agent_disc *d, int ai, int delta)
{
	struct sockaddr_storage ss = d->at[ai];

	ns_sockaddr_set_port(&ss, ns_sockaddr_port(&ss) + delta);
	return ss;
}

static bool wait_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* One answer to nonce on fd within ms (others ignored): 0 with the mapped address. */
static int read_answer(const struct agent_disc *d, int fd, const __u8 *nonce, int ms,
		       struct ns_nat_result *m)
{
	__u8 buf[NS_DISC_ANS_LEN + 1], flags;
	__u64 end = ns_now_ns() + (__u64)ms * 1000000;
	ssize_t n;
	__u64 now;

	while ((now = ns_now_ns()) < end && wait_in(fd, (end - now) / 1000000 + 1)) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0 && (n == 0 || (errno != EAGAIN && errno != EINTR)))
			return -EIO;
		if (n > 0 && !ns_disc_answer_check(buf, n, d->secret, nonce, &flags, &m->family,
						   m->addr, &m->port))
			return 0;
	}
	return -ETIMEDOUT;
}

/* A UDP request from fd to dst with flags: 0 with the mapped address, or -ETIMEDOUT. */
static int udp_query(const struct agent_disc *d, int fd, const struct sockaddr_storage *dst,
		     __u8 flags, struct ns_nat_result *m)
{
	__u8 req[NS_DISC_REQ_MAX], nonce[NS_DISC_NONCE_LEN];
	int len, i;

	if (ns_random_bytes(nonce, sizeof(nonce)))
		return -EIO;
	len = ns_disc_request(req, sizeof(req), flags, nonce, d->name);
	if (len < 0)
		return len;
	for (i = 0; i < DISC_TRIES; i++) {
		sendto(fd, req, len, 0, (const struct sockaddr *)dst, ns_sockaddr_len(dst));
		if (!read_answer(d, fd, nonce, DISC_WAIT_MS, m))
			return 0;
	}
	return -ETIMEDOUT;
}

static bool same_ep(const struct ns_nat_result *a, const struct ns_nat_result *b)
{
	return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, 16);
}

/* A socket on local port port (0: any) of the wildcard address, shared. */
static int disc_socket(int family, int type, __u16 port)
{
	struct sockaddr_storage ss;
	static const __u32 any[4];
	int fd;

	ns_sockaddr_make(family == AF_INET6 ? NS_AF_INET6 : NS_AF_INET, any, htons(port), &ss);
	fd = ns_socket_bound(&ss, type, 3);
	return fd < 0 ? -1 : fd;
}

static __u16 local_port(int fd, __u32 addr[4])
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	__u8 family;
	__be16 port;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	ns_sockaddr_split(&ss, &family, addr, &port);
	return ntohs(port);
}

/* The local address the host sends from towards dst (a UDP socket's
 * getsockname says 0.0.0.0 until it is connected). */
static void local_addr_to(const struct sockaddr_storage *dst, __u32 addr[4])
{
	int fd = socket(dst->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (!connect(fd, (const struct sockaddr *)dst, ns_sockaddr_len(dst)))
		local_port(fd, addr);
	close(fd);
}

static void udp_tests(struct agent_disc *d, struct ns_nat_result *r)
{
	int fam = d->at[0].ss_family, u1 = disc_socket(fam, SOCK_DGRAM, 0);
	int u2 = disc_socket(fam, SOCK_DGRAM, 0), u3 = disc_socket(fam, SOCK_DGRAM, 0);
	struct ns_nat_result m2, m3, x;
	struct sockaddr_storage dst;
	__u8 token[16], buf[32];
	__u32 local[4] = { 0 };
	__u16 lport;

	if (u1 < 0 || u2 < 0 || u3 < 0)
		goto out;
	/* mapping: one local port to L:P, D:P, D:P+1 */
	dst = disc_to(d, 0, 0);
	if (udp_query(d, u1, &dst, 0, r))
		goto out;
	r->tested = true;
	lport = local_port(u1, local);
	local_addr_to(&dst, local);
	r->preserve = lport == r->port;
	dst = disc_to(d, 1, 0);
	if (!udp_query(d, u1, &dst, 0, &m2)) {
		if (same_ep(r, &m2)) {
			r->mapping = NS_NAT_EI;
		} else {
			dst = disc_to(d, 1, 1);
			if (!udp_query(d, u1, &dst, 0, &m3))
				r->mapping = same_ep(&m2, &m3) ? NS_NAT_AD : NS_NAT_APD;
		}
	}
	/* filtering: a fresh local port that only ever sent to L:P */
	dst = disc_to(d, 0, 0);
	if (!udp_query(d, u2, &dst, 0, &x)) {
		if (!udp_query(d, u2, &dst, NS_DISC_CHANGE_IP | NS_DISC_CHANGE_PORT, &x))
			r->filtering = NS_NAT_EI;
		else if (!udp_query(d, u2, &dst, NS_DISC_CHANGE_PORT, &x))
			r->filtering = NS_NAT_AD;
		else
			r->filtering = NS_NAT_APD;
	}
	/* hairpinning: from another local port to our own mapped address */
	if (!ns_random_bytes(token, sizeof(token))) {
		ns_sockaddr_make(r->family, r->addr, htons(r->port), &dst);
		sendto(u3, token, sizeof(token), 0, (struct sockaddr *)&dst, ns_sockaddr_len(&dst));
		while (wait_in(u1, DISC_WAIT_MS))
			if (recv(u1, buf, sizeof(buf), MSG_DONTWAIT) == sizeof(token) &&
			    !memcmp(buf, token, sizeof(token))) {
				r->hairpin = true;
				break;
			}
	}
out:
	if (r->tested)
		r->nat = memcmp(local, r->addr, sizeof(local)) || !r->preserve;
	for (int *fd = (int[]){ u1, u2, u3, -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
}

/* A TCP connection from local port port (0: any) to dst: the fd, or -1. */
static int tcp_connect(int family, __u16 port, const struct sockaddr_storage *dst)
{
	int fd = disc_socket(family, SOCK_STREAM, port), err = 0;
	socklen_t el = sizeof(err);
	struct pollfd p;

	if (fd < 0)
		return -1;
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if ((connect(fd, (const struct sockaddr *)dst, ns_sockaddr_len(dst)) &&
	     errno != EINPROGRESS && errno != EINTR) ||
	    (poll(&p, 1, 3 * DISC_WAIT_MS) != 1) ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A request with flags over a TCP connection; 0 with the mapped address. */
static int tcp_query(const struct agent_disc *d, int fd, __u8 flags, __u8 nonce[NS_DISC_NONCE_LEN],
		     struct ns_nat_result *m)
{
	__u8 req[NS_DISC_REQ_MAX];
	int len;

	if (ns_random_bytes(nonce, NS_DISC_NONCE_LEN))
		return -EIO;
	len = ns_disc_request(req, sizeof(req), flags, nonce, d->name);
	if (len < 0 || send(fd, req, len, MSG_NOSIGNAL | MSG_DONTWAIT) != len)
		return -EIO;
	return read_answer(d, fd, nonce, 3 * DISC_WAIT_MS, m);
}

/* A connection the broker made to lfd's port, carrying the answer to nonce? */
static bool connect_back_came(const struct agent_disc *d, int lfd, const __u8 *nonce)
{
	struct ns_nat_result m;
	__u64 end = ns_now_ns() + DISC_BACK_MS * 1000000ULL, now;
	bool ok = false;
	int fd;

	while (!ok && (now = ns_now_ns()) < end && wait_in(lfd, (end - now) / 1000000 + 1)) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		ok = !read_answer(d, fd, nonce, DISC_WAIT_MS, &m);
		close(fd);
	}
	return ok;
}

static void tcp_tests(struct agent_disc *d, struct ns_nat_result *r)
{
	int fam = d->at[0].ss_family, t1 = -1, t2 = -1, t3 = -1, lfd = -1, t4 = -1, t5 = -1;
	__u8 nonce[NS_DISC_NONCE_LEN];
	struct ns_nat_result m2, m3, x = { 0 };
	struct sockaddr_storage dst;
	__u32 local[4] = { 0 };
	__u16 port;

	dst = disc_to(d, 0, 0);
	t1 = tcp_connect(fam, 0, &dst);
	if (t1 < 0 || tcp_query(d, t1, 0, nonce, r))
		goto out;
	r->tested = true;
	port = local_port(t1, local);
	r->preserve = port == r->port;
	r->nat = memcmp(local, r->addr, sizeof(local)) || !r->preserve;
	/* mapping: the same local port to D:P, then D:P+1 */
	dst = disc_to(d, 1, 0);
	t2 = tcp_connect(fam, port, &dst);
	if (t2 >= 0 && !tcp_query(d, t2, 0, nonce, &m2)) {
		if (same_ep(r, &m2)) {
			r->mapping = NS_NAT_EI;
		} else {
			dst = disc_to(d, 1, 1);
			t3 = tcp_connect(fam, port, &dst);
			if (t3 >= 0 && !tcp_query(d, t3, 0, nonce, &m3))
				r->mapping = same_ep(&m2, &m3) ? NS_NAT_AD : NS_NAT_APD;
		}
	}
	/* filtering: a fresh port, listening, that only connected to L:P;
	 * connect-backs from D:P+2, then from L:P+2 */
	lfd = disc_socket(fam, SOCK_STREAM, 0);
	if (lfd < 0 || listen(lfd, 4))
		goto out;
	dst = disc_to(d, 0, 0);
	t4 = tcp_connect(fam, local_port(lfd, local), &dst);
	if (t4 < 0)
		goto out;
	if (!tcp_query(d, t4, NS_DISC_CONNECT_BACK | NS_DISC_CHANGE_IP | NS_DISC_CHANGE_PORT,
		       nonce, &x) && connect_back_came(d, lfd, nonce))
		r->filtering = NS_NAT_EI;
	else if (!tcp_query(d, t4, NS_DISC_CONNECT_BACK | NS_DISC_CHANGE_PORT, nonce, &x) &&
		 connect_back_came(d, lfd, nonce))
		r->filtering = NS_NAT_AD;
	else
		r->filtering = NS_NAT_APD;
	/* hairpinning: a connection to our own mapped address (x: lfd's port
	 * as the NAT maps it) that reaches lfd */
	if (x.family) {
		ns_sockaddr_make(x.family, x.addr, htons(x.port), &dst);
		t5 = tcp_connect(fam, 0, &dst);
		r->hairpin = t5 >= 0 && wait_in(lfd, DISC_WAIT_MS);
	}
out:
	for (int *fd = (int[]){ t1, t2, t3, t4, t5, lfd, -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
}

static void *disc_thread(void *arg)
{
	struct agent_disc *d = arg;
	char done = 1;

	memset(d->res, 0, sizeof(d->res));
	tcp_tests(d, &d->res[0]);
	udp_tests(d, &d->res[1]);
	if (write(d->pipe[1], &done, 1) != 1)
		return NULL;
	return NULL;
}

/* ---- the loop's side ---- */

static void disc_join(struct agent *a)
{
	struct agent_disc *d = a->disc;

	if (d->running) {
		pthread_join(d->thread, NULL);
		d->running = false;
	}
}

/* NAT_INFO with what the thread found. */
static void disc_report(struct agent *a)
{
	struct agent_disc *d = a->disc;
	struct ns_msg_buf mb;
	char s[160];
	size_t mark;
	int i;

	for (i = 0; i < 2; i++)
		log_info("NAT (%s): %s", i ? "udp" : "tcp", ns_nat_str(&d->res[i], s, sizeof(s)));
	a->nat[0] = d->res[0];
	a->nat[1] = d->res[1];
	agent_relay_nat(a);
	if (!agent_broker_up(a))
		return;
	ns_mb_init(&mb, NS_MSG_NAT_INFO);
	for (i = 0; i < 2; i++) {
		const struct ns_nat_result *r = &d->res[i];

		mark = ns_mb_nest_begin(&mb, NS_A_NAT);
		ns_mb_u8(&mb, NS_A_PROTO, i ? IPPROTO_UDP : IPPROTO_TCP);
		if (r->tested) {
			ns_mb_u8(&mb, NS_A_MAPPING, r->mapping);
			ns_mb_u8(&mb, NS_A_FILTERING, r->filtering);
			ns_mb_u8(&mb, NS_A_PRESERVE, r->preserve);
			ns_mb_u8(&mb, NS_A_HAIRPIN, r->hairpin);
			ns_mb_addr(&mb, NS_A_PEER_ADDR, r->family, r->addr, r->port);
		}
		ns_mb_nest_end(&mb, mark);
	}
	agent_broker_send(a, &mb);
}

static void on_done(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent *a = w->data;
	char c;

	if (read(w->fd, &c, 1) != 1)
		return;
	disc_join(a);
	disc_report(a);
}

/* DISCOVERY { PEER_ADDR (L:P), ALT_ADDR (D:P) }: test, unless a test runs. */
void agent_disc_on_offer(struct agent *a, const struct ns_msg *m)
{
	struct agent_disc *d = a->disc;
	__u32 addr[4];
	__u16 port;
	__u8 family;

	if (!d || d->running)
		return;
	if (ns_msg_addr(m, NS_A_PEER_ADDR, &family, addr, &port))
		return;
	ns_sockaddr_make(family, addr, htons(port), &d->at[0]);
	if (ns_msg_addr(m, NS_A_ALT_ADDR, &family, addr, &port))
		return;
	ns_sockaddr_make(family, addr, htons(port), &d->at[1]);
	snprintf(d->name, sizeof(d->name), "%s", a->cfg->name);
	snprintf(d->secret, sizeof(d->secret), "%s", a->cfg->secret);
	if (pthread_create(&d->thread, NULL, disc_thread, d)) {
		log_warn("NAT discovery: cannot start its thread");
		return;
	}
	d->running = true;
	log_debug("NAT discovery: testing against the broker's discovery ports");
}

int agent_disc_init(struct agent *a)
{
	struct agent_disc *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK)) {
		free(d);
		return -errno;
	}
	d->w = (struct ns_watch){ .fn = on_done, .fd = d->pipe[0], .data = a };
	if (ns_loop_add(a->loop, &d->w, EPOLLIN)) {
		close(d->pipe[0]);
		close(d->pipe[1]);
		free(d);
		return -ENOMEM;
	}
	a->disc = d;
	return 0;
}

void agent_disc_free(struct agent *a)
{
	struct agent_disc *d = a->disc;

	if (!d)
		return;
	disc_join(a);	/* bounded: every test has a timeout */
	ns_loop_del(a->loop, &d->w);
	close(d->pipe[0]);
	close(d->pipe[1]);
	explicit_bzero(d->secret, sizeof(d->secret));
	free(d);
	a->disc = NULL;
}
