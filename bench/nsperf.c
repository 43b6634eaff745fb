// SPDX-License-Identifier: GPL-2.0
/*
 * nsperf: the traffic generator of bench/run.
 *
 * Why not only iperf3: both ends of a natsplice splice connect OUT to the
 * relay, and every connection needs a splice of its own. iperf3 can only
 * listen on one side, so it would need a user-space forwarder at each end,
 * which copies every byte twice more on the same two CPUs and measures the
 * forwarders. nsperf either listens or connects on either side, so every path
 * (direct, forwarding, NAT, proxies, splices) is driven by the same two
 * programs, with no forwarder in between.
 *
 *   nsperf send -t SEC EP...          TCP: connect to every EP, send for SEC s
 *   nsperf recv -t SEC (-l IP:PORT -n N | EP...)   accept N, or connect to
 *                                      every EP; receive until every peer
 *                                      closed, or SEC + 2 s after the first byte
 *   nsperf rr-client -t SEC [-s SIZE] EP [REF_EP]   TCP ping-pong, RTT
 *                                      percentiles (and REF_EP's, interleaved)
 *   nsperf rr-server (-l IP:PORT | EP)        echo one connection
 *   nsperf udp-send -t SEC -r BITS/S -s SIZE [-T TOKEN] EP
 *   nsperf udp-recv (-l IP:PORT | -T TOKEN EP) [-b IP:PORT]
 *   nsperf splicerate -S SOCK -A NETNS -B NETNS -R RELAYIP -k COUNT [-p PAR]
 *
 * EP is IP:PORT, or IP:PORT@SRCIP:SRCPORT to bind the source first (pure
 * splices). -n N repeats a single EP N times. Connects that are refused are
 * retried until -w SEC (default 20): in a pure splice B may reach the relay
 * before A's SYN told it where B goes.
 *
 * Output: one line of "key value" pairs on stdout; exit 0, 1 (error), 4 (the
 * transfer stalled: no byte for --idle seconds; the line is still printed).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../test/tools/tool.h"

#include "ctlproto.h"

#define MAXEP 1024
#define CHUNK (128 * 1024)

struct ep {
	struct sockaddr_in dst, src;
	int has_src;
};

static struct ep eps[MAXEP];
static int neps;
static double opt_t = 5, opt_wait = 20, opt_idle = 5, opt_rate = 1e9;
static long opt_n = 1, opt_size = 0, opt_k = 100, opt_par = 16;
static const char *opt_listen, *opt_token, *opt_sock, *opt_nsa, *opt_nsb, *opt_relay;
static const char *opt_bind;

static void parse_hp(const char *s, struct sockaddr_in *sa)
{
	char buf[64], *colon;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strrchr(buf, ':');
	if (!colon)
		die(1, "bad address '%s' (IP:PORT)", s);
	*colon = 0;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(atoi(colon + 1));
	if (inet_pton(AF_INET, buf, &sa->sin_addr) != 1)
		die(1, "bad IPv4 address '%s'", buf);
}

static void add_ep(const char *s)
{
	char buf[128], *at;

	if (neps >= MAXEP)
		die(1, "too many endpoints");
	snprintf(buf, sizeof(buf), "%s", s);
	at = strchr(buf, '@');
	if (at) {
		*at = 0;
		parse_hp(at + 1, &eps[neps].src);
		eps[neps].has_src = 1;
	}
	parse_hp(buf, &eps[neps].dst);
	neps++;
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Connect to one endpoint, retrying refused/reset connects until the deadline. */
static int connect_ep(const struct ep *e, double deadline)
{
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, err = 0;
		socklen_t el = sizeof(err);
		struct pollfd p;

		if (fd < 0)
			die(1, "socket: %s", strerror(errno));
		if (e->has_src) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, (const struct sockaddr *)&e->src, sizeof(e->src)))
				die(1, "bind: %s", strerror(errno));
		}
		nonblock(fd);
		if (connect(fd, (const struct sockaddr *)&e->dst, sizeof(e->dst)) && errno != EINPROGRESS)
			err = errno;
		if (!err) {
			p.fd = fd;
			p.events = POLLOUT;
			int left = (int)((deadline - now_s()) * 1000);
			if (left < 1)
				left = 1;
			if (poll(&p, 1, left) != 1)
				err = ETIMEDOUT;
			else
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		}
		if (!err) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			return fd;
		}
		close(fd);
		if (now_s() >= deadline || (err != ECONNREFUSED && err != ECONNRESET &&
					  err != EADDRINUSE && err != ETIMEDOUT))
			die(1, "connect %s:%d: %s", inet_ntoa(e->dst.sin_addr), ntohs(e->dst.sin_port),
			    strerror(err));
		usleep(20000);
	}
}

static int listen_on(const char *hp, int udp)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	parse_hp(hp, &sa);
	fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die(1, "bind %s: %s", hp, strerror(errno));
	if (!udp && listen(fd, 1024))
		die(1, "listen: %s", strerror(errno));
	printf("listening %s\n", hp);
	fflush(stdout);
	return fd;
}

/* The connections of this side: accepted (-l) or connected (EPs). */
static int open_conns(int *fds)
{
	double deadline = now_s() + opt_wait;
	int n = 0, i, lfd;

	if (opt_listen) {
		lfd = listen_on(opt_listen, 0);
		for (i = 0; i < opt_n; i++) {
			struct pollfd p = { .fd = lfd, .events = POLLIN };
			int left = (int)((deadline - now_s()) * 1000);

			if (left < 1 || poll(&p, 1, left) != 1)
				die(1, "accepted %d of %ld connections in %.0f s", i, opt_n, opt_wait);
			fds[n++] = accept(lfd, NULL, NULL);
		}
		close(lfd);
		return n;
	}
	if (neps == 1)
		for (i = 1; i < opt_n && neps < MAXEP; i++)
			eps[neps++] = eps[0];
	for (i = 0; i < neps; i++)
		fds[n++] = connect_ep(&eps[i], deadline);
	return n;
}

static int cmd_send(void)
{
	static int fds[MAXEP];
	static char buf[CHUNK];
	int n = open_conns(fds), ep, i, open;
	double t0, end;
	unsigned long long sent = 0;
	struct epoll_event ev, evs[64];

	memset(buf, 'x', sizeof(buf));
	ep = epoll_create1(0);
	for (i = 0; i < n; i++) {
		nonblock(fds[i]);
		ev.events = EPOLLOUT;
		ev.data.u32 = i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	t0 = now_s();
	end = t0 + opt_t;
	while (now_s() < end) {
		int k = epoll_wait(ep, evs, 64, 100);

		for (int j = 0; j < k; j++) {
			ssize_t w = send(fds[evs[j].data.u32], buf, sizeof(buf), MSG_NOSIGNAL);

			if (w > 0)
				sent += w;
			else if (w < 0 && errno != EAGAIN)
				die(1, "send: %s", strerror(errno));
		}
	}
	/* Half-close, then wait for every peer to close (it read everything). */
	for (i = 0; i < n; i++) {
		shutdown(fds[i], SHUT_WR);
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
	}
	open = n;
	end = now_s() + opt_idle + 2;
	while (open > 0 && now_s() < end) {
		int k = epoll_wait(ep, evs, 64, 100);

		for (int j = 0; j < k; j++) {
			int fd = fds[evs[j].data.u32];
			ssize_t r = recv(fd, buf, sizeof(buf), 0);

			if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				open--;
			}
		}
	}
	printf("sent %llu secs %.3f conns %d unclosed %d\n", sent, opt_t, n, open);
	return 0;
}

static int cmd_recv(void)
{
	static int fds[MAXEP];
	static char buf[4 * CHUNK];
	static unsigned long long per[MAXEP];
	int n = open_conns(fds), ep, i, open, stalled = 0;
	unsigned long long got = 0, win = 0, mn = ~0ULL, mx = 0;
	double first = 0, last = 0, quiet, span;
	struct epoll_event ev, evs[64];

	ep = epoll_create1(0);
	for (i = 0; i < n; i++) {
		nonblock(fds[i]);
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	printf("connected %d\n", n);
	fflush(stdout);
	open = n;
	quiet = now_s();
	while (open > 0) {
		int k = epoll_wait(ep, evs, 64, 100);
		double t = now_s();

		for (int j = 0; j < k; j++) {
			int idx = evs[j].data.u32;
			ssize_t r = recv(fds[idx], buf, sizeof(buf), 0);

			if (r > 0) {
				if (!got)
					first = t;
				got += r;
				if (t - first <= opt_t)
					win += r;
				per[idx] += r;
				last = quiet = t;
			} else if (!(r < 0 && errno == EAGAIN)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fds[idx], NULL);
				close(fds[idx]);
				open--;
			}
		}
		if (t - quiet > opt_idle) {
			stalled = 1;
			break;
		}
		/* the rate is taken over the first -t seconds: do not wait for
		 * the tail of streams still recovering from losses */
		if (got && t - first > opt_t + 2)
			break;
	}
	for (i = 0; i < n; i++) {
		if (per[i] < mn)
			mn = per[i];
		if (per[i] > mx)
			mx = per[i];
	}
	/*
	 * The rate over the sender's -t seconds from the first byte: a stream
	 * that loses its last segments and waits for a retransmission timeout
	 * would otherwise stretch the time and hide the steady rate. The tail
	 * (secs) is reported too.
	 */
	span = last - first < opt_t ? last - first : opt_t;
	printf("recv %llu secs %.3f gbps %.4f conns %d unclosed %d stalled %d min_conn %llu max_conn %llu "
	       "gbps_first_to_last %.4f\n",
	       got, last - first, span > 0 ? win * 8 / span / 1e9 : 0.0, n, open, stalled, n ? mn : 0, mx,
	       last > first ? got * 8 / (last - first) / 1e9 : 0.0);
	return stalled ? 4 : 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int full_io(int fd, char *buf, long len, int wr)
{
	long done = 0;

	while (done < len) {
		ssize_t r = wr ? send(fd, buf + done, len - done, MSG_NOSIGNAL) :
				 recv(fd, buf + done, len - done, 0);
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

static void rr_setup(int fd)
{
	int one = 1;
	/* a path that stalls (no reply for --idle s) ends the run */
	struct timeval tv = { .tv_sec = (time_t)opt_idle, .tv_usec = (opt_idle - (time_t)opt_idle) * 1e6 };

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void rr_print(const char *pfx, double *s, size_t ns)
{
	double sum = 0;

	for (size_t i = 0; i < ns; i++)
		sum += s[i];
	qsort(s, ns, sizeof(*s), cmp_d);
	printf("%sn %zu %sp50_us %.1f %sp99_us %.1f %smean_us %.1f", pfx, ns, pfx, s[ns / 2], pfx,
	       s[(size_t)(ns * 0.99)], pfx, sum / ns);
}

/*
 * rr-client EP [REF_EP]: ping-pong on EP; with REF_EP too, alternate between
 * the two connections every 20 ms and report both: the reference (a direct
 * path in the same bed) is measured at the same moments, so the ratio of
 * the two does not move with the machine's state.
 */
static int cmd_rr(int server)
{
	static int fds[2];
	char buf[65536];
	long size = opt_size ? opt_size : 64;
	int nc, fd;

	if (server) {
		ssize_t r;

		opt_n = 1;
		neps = neps > 1 ? 1 : neps;
		open_conns(fds);
		fd = fds[0];
		rr_setup(fd);
		while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
			if (full_io(fd, buf, r, 1))
				break;
		return 0;
	}
	nc = neps > 2 ? 2 : neps;
	for (int i = 0; i < nc; i++) {
		fds[i] = connect_ep(&eps[i], now_s() + opt_wait);
		rr_setup(fds[i]);
	}
	size_t cap = 1 << 22, ns[2] = { 0, 0 };
	double *s[2] = { malloc(cap * sizeof(double)), malloc(cap * sizeof(double)) };
	double t0 = now_s(), end = t0 + opt_t, warm = t0 + 0.2, slot = t0;
	int c = 0;

	memset(buf, 'p', size);
	for (;;) {
		double a = now_s(), b;

		if (a >= end)
			break;
		if (nc == 2 && a - slot >= 0.02) {
			c = !c;
			slot = a;
		}
		if (full_io(fds[c], buf, size, 1) || full_io(fds[c], buf, size, 0))
			die(4, "ping-pong%s: %s after %zu round trips", c ? " (reference)" : "",
			    errno == EAGAIN ? "stalled (no reply within --idle)" : "connection lost", ns[c]);
		b = now_s();
		if (a >= warm && ns[c] < cap)
			s[c][ns[c]++] = (b - a) * 1e6;
	}
	for (int i = 0; i < nc; i++)
		shutdown(fds[i], SHUT_WR);
	if (!ns[0] || (nc == 2 && !ns[1]))
		die(1, "no samples");
	printf("rtt ");
	rr_print("", s[0], ns[0]);
	if (nc == 2) {
		printf(" ");
		rr_print("ref_", s[1], ns[1]);
	}
	printf("\n");
	return 0;
}

/* ---------------------------------------------------------------- UDP */

struct dg {
	char magic[4];		/* "NSBD" data, "NSBE" end */
	uint32_t pad;
	uint64_t seq;
};

static int unhex(const char *s, unsigned char *out, int n)
{
	for (int i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = v;
	}
	return 0;
}

/* Send the splice token to the relay until it answers NSOK. */
static void token_handshake(int fd, const struct sockaddr_in *relay)
{
	unsigned char tok[16], buf[2048];
	double deadline = now_s() + opt_wait, next = 0;

	if (unhex(opt_token, tok, 16))
		die(1, "bad token");
	while (now_s() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (now_s() >= next) {
			sendto(fd, tok, 16, 0, (const struct sockaddr *)relay, sizeof(*relay));
			next = now_s() + 0.2;
		}
		if (poll(&p, 1, 50) == 1) {
			r = recv(fd, buf, sizeof(buf), 0);
			if (r == 4 && !memcmp(buf, "NSOK", 4))
				return;
		}
	}
	die(1, "no NSOK from the relay");
}

static int cmd_udp_send(void)
{
	static char buf[65536];
	struct dg *d = (struct dg *)buf;
	long size = opt_size ? opt_size : 1024;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), sndbuf = 4 << 20;
	double t0, end, per = size * 8.0 / opt_rate;
	uint64_t seq = 0, errs = 0;

	if (neps != 1)
		die(1, "udp-send: one endpoint");
	if (size < (long)sizeof(*d))
		size = sizeof(*d);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (eps[0].has_src && bind(fd, (struct sockaddr *)&eps[0].src, sizeof(eps[0].src)))
		die(1, "bind: %s", strerror(errno));
	if (opt_token) {
		token_handshake(fd, &eps[0].dst);
		usleep(200000);		/* the other side's NSOK, sent at the same time */
	}
	if (connect(fd, (struct sockaddr *)&eps[0].dst, sizeof(eps[0].dst)))
		die(1, "connect: %s", strerror(errno));
	memset(buf, 'u', size);
	memcpy(d->magic, "NSBD", 4);
	t0 = now_s();
	end = t0 + opt_t;
	for (;;) {
		double t = now_s(), due = t0 + seq * per;

		if (t >= end)
			break;
		if (t < due) {
			if (due - t > 0.0002)
				usleep((useconds_t)((due - t) * 1e6) - 100);
			continue;
		}
		d->seq = seq;
		if (send(fd, buf, size, 0) < 0)
			errs++;		/* ENOBUFS / ECONNREFUSED: counted as sent and lost */
		seq++;
	}
	double dt = now_s() - t0;
	memcpy(d->magic, "NSBE", 4);
	d->seq = seq;
	for (int i = 0; i < 20; i++) {
		send(fd, buf, sizeof(*d), 0);
		usleep(10000);
	}
	printf("udp_sent %llu secs %.3f offered_gbps %.4f send_errors %llu\n",
	       (unsigned long long)seq, dt, seq * size * 8 / dt / 1e9, (unsigned long long)errs);
	return 0;
}

static int cmd_udp_recv(void)
{
	static char buf[65536];
	struct dg *d = (struct dg *)buf;
	int fd, rcvbuf = 4 << 20;
	uint64_t got = 0, bytes = 0, total = 0, maxseq = 0, dups = 0, cap = 1 << 26;
	unsigned char *seen = calloc(cap / 8, 1);
	double first = 0, last = 0, quiet;
	int ended = 0;

	if (opt_listen) {
		fd = listen_on(opt_listen, 1);
	} else {
		if (neps != 1 || !opt_token)
			die(1, "udp-recv: -l IP:PORT, or -T TOKEN RELAY:PORT");
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (eps[0].has_src && bind(fd, (struct sockaddr *)&eps[0].src, sizeof(eps[0].src)))
			die(1, "bind: %s", strerror(errno));
		token_handshake(fd, &eps[0].dst);
		printf("listening token\n");
		fflush(stdout);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	quiet = now_s();
	while (!ended) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double t;

		if (poll(&p, 1, 100) == 1) {
			for (;;) {
				ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

				if (r < 0)
					break;
				if (r < (ssize_t)sizeof(*d))
					continue;
				t = now_s();
				quiet = t;
				if (!memcmp(d->magic, "NSBE", 4)) {
					total = d->seq;
					ended = 1;
					break;
				}
				if (memcmp(d->magic, "NSBD", 4))
					continue;
				if (!got)
					first = t;
				last = t;
				if (d->seq < cap) {
					if (seen[d->seq / 8] & (1 << (d->seq % 8))) {
						dups++;
						continue;
					}
					seen[d->seq / 8] |= 1 << (d->seq % 8);
				}
				got++;
				bytes += r;
				if (d->seq > maxseq)
					maxseq = d->seq;
			}
		}
		if (now_s() - quiet > opt_idle)
			break;
	}
	if (!total)
		total = got ? maxseq + 1 : 0;
	printf("udp_recv %llu of %llu lost_pct %.4f gbps %.4f ended %d dups %llu\n",
	       (unsigned long long)got, (unsigned long long)total,
	       total ? 100.0 * (total - (got < total ? got : total)) / total : 100.0,
	       last > first ? bytes * 8 / (last - first) / 1e9 : 0.0, ended,
	       (unsigned long long)dups);
	return ended ? 0 : 4;
}

/* ---------------------------------------------------------------- splicerate */

/* CTL_ADD on the relay's control socket: the splice's two relay ports. */
static int ctl_add(uint16_t *pa, uint16_t *pb)
{
	static unsigned char buf[sizeof(struct ctl_resp) + CTL_BATCH * sizeof(struct ctl_splice)];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl_req req = { .version = CTL_VERSION, .op = CTL_ADD, .proto = IPPROTO_TCP };
	const struct ctl_resp *h = (const void *)buf;
	const struct ctl_splice *cs = (const void *)(buf + sizeof(*h));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ssize_t r;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", opt_sock);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		die(1, "control socket %s: %s", opt_sock, strerror(errno));
	if (send(fd, &req, sizeof(req), 0) != sizeof(req))
		die(1, "control socket send: %s", strerror(errno));
	r = recv(fd, buf, sizeof(buf), 0);
	close(fd);
	if (r < (ssize_t)sizeof(*h))
		die(1, "control socket: short reply");
	if (h->err) {
		fprintf(stderr, "nsperf: splice add: %s\n", h->msg);
		return -1;
	}
	if (h->count < 1 || r < (ssize_t)(sizeof(*h) + sizeof(*cs)))
		die(1, "control socket: no splice in the reply");
	*pa = ntohs(cs->s.port[0]);
	*pb = ntohs(cs->s.port[1]);
	return 0;
}

struct pair {
	int fa, fb;
	int state;		/* bits: 1 a connected, 2 b connected, 4 byte sent */
	double t0, ta;		/* B's connect (start), A's connect */
};

static int sock_in(int nsfd)
{
	int fd;

	if (setns(nsfd, CLONE_NEWNET))
		die(1, "setns: %s", strerror(errno));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die(1, "socket: %s", strerror(errno));
	return fd;
}

/*
 * Splices set up per second: keep PAR splices in progress; each is CTL_ADD,
 * B connects to relay:PB, A to relay:PA (sockets made in A's and B's network
 * namespaces with setns), A sends one byte, B reads it: done.
 */
static int cmd_splicerate(void)
{
	int nsa = open(opt_nsa, O_RDONLY), nsb = open(opt_nsb, O_RDONLY), ep = epoll_create1(0);
	struct pair *p = calloc(opt_par, sizeof(*p));
	double *lat = calloc(opt_k, sizeof(*lat)), *est = calloc(opt_k, sizeof(*est)), t0, deadline;
	long started = 0, done = 0, failed = 0, active = 0, nest = 0;
	struct sockaddr_in relay = { .sin_family = AF_INET };
	struct epoll_event ev, evs[64];

	if (nsa < 0 || nsb < 0 || !opt_sock || !opt_relay)
		die(1, "splicerate: -S SOCK -A NETNS -B NETNS -R RELAYIP");
	inet_pton(AF_INET, opt_relay, &relay.sin_addr);
	t0 = now_s();
	deadline = t0 + opt_wait + opt_k * 0.5;
	for (int s = 0; s < opt_par; s++)
		p[s].fa = -1;
	while ((done + failed < opt_k) && now_s() < deadline) {
		for (int s = 0; s < opt_par && started < opt_k; s++) {
			uint16_t pa, pb;

			if (p[s].fa >= 0)
				continue;
			if (ctl_add(&pa, &pb)) {
				failed++;
				started++;
				continue;
			}
			p[s].t0 = now_s();
			p[s].state = 0;
			p[s].fb = sock_in(nsb);
			relay.sin_port = htons(pb);
			connect(p[s].fb, (struct sockaddr *)&relay, sizeof(relay));
			p[s].fa = sock_in(nsa);
			relay.sin_port = htons(pa);
			p[s].ta = now_s();
			connect(p[s].fa, (struct sockaddr *)&relay, sizeof(relay));
			ev.events = EPOLLOUT;
			ev.data.u32 = s * 2;
			epoll_ctl(ep, EPOLL_CTL_ADD, p[s].fa, &ev);
			ev.events = EPOLLIN;
			ev.data.u32 = s * 2 + 1;
			epoll_ctl(ep, EPOLL_CTL_ADD, p[s].fb, &ev);
			started++;
			active++;
		}
		int k = epoll_wait(ep, evs, 64, 50);

		for (int j = 0; j < k; j++) {
			int s = evs[j].data.u32 / 2, isb = evs[j].data.u32 & 1, err = 0;
			socklen_t el = sizeof(err);
			char c;
			struct pair *q = &p[s];

			if (q->fa < 0)
				continue;
			if (!isb) {
				getsockopt(q->fa, SOL_SOCKET, SO_ERROR, &err, &el);
				if (!err && nest < opt_k)
					est[nest++] = now_s() - q->ta;
				if (!err && send(q->fa, "x", 1, MSG_NOSIGNAL) == 1) {
					epoll_ctl(ep, EPOLL_CTL_DEL, q->fa, NULL);
					continue;
				}
			} else if (recv(q->fb, &c, 1, 0) == 1) {
				lat[done++] = now_s() - q->t0;
				err = -1;	/* finished: close below */
			} else if (errno == EAGAIN) {
				continue;
			} else {
				err = errno;
			}
			if (err > 0)
				failed++;
			close(q->fa);
			close(q->fb);
			q->fa = -1;
			active--;
		}
	}
	double dt = now_s() - t0;

	qsort(lat, done, sizeof(*lat), cmp_d);
	qsort(est, nest, sizeof(*est), cmp_d);
	/* est: A's SYN (the second, which completes the pair) to A's
	 * connection established: the relay's pairing and SYN-ACK */
	printf("splices %ld failed %ld secs %.3f per_sec %.1f p50_ms %.2f p99_ms %.2f "
	       "est_p50_ms %.3f est_p99_ms %.3f\n", done,
	       failed + (opt_k - done - failed), dt, done / dt, done ? lat[done / 2] * 1e3 : 0,
	       done ? lat[(long)(done * 0.99)] * 1e3 : 0, nest ? est[nest / 2] * 1e3 : 0,
	       nest ? est[(long)(nest * 0.99)] * 1e3 : 0);
	return 0;
}

/* ---------------------------------------------------------------- cpu */

#include <dirent.h>
#include <sys/stat.h>

/*
 * nsperf cpu NETNS_FILE...: in USER_HZ ticks, "busy J": the whole machine's
 * non-idle time (/proc/stat: user nice system irq softirq steal); "pid P J"
 * for every user-space process that is not in one of the given network
 * namespaces (other users of the machine): its user+system time; "others J"
 * their sum. The caller compares processes present in two snapshots.
 * Kernel threads (ksoftirqd, kworkers) are not "others": they may be doing
 * our packets.
 */
static int cmd_cpu(int argc, char **argv)
{
	unsigned long long u, n, sy, id, io, irq, sirq, st, busy, others = 0;
	ino_t mine[64];
	int nmine = 0;
	FILE *f = fopen("/proc/stat", "r");
	DIR *d;
	struct dirent *de;

	if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &sy, &id, &io, &irq,
			 &sirq, &st) != 8)
		die(1, "/proc/stat");
	fclose(f);
	busy = u + n + sy + irq + sirq + st;
	for (int i = 2; i < argc && nmine < 64; i++) {
		struct stat sb;

		if (argv[i][0] != '-' && !stat(argv[i], &sb))
			mine[nmine++] = sb.st_ino;
	}
	d = opendir("/proc");
	while (d && (de = readdir(d))) {
		char path[300], buf[1024], *p;
		struct stat sb;
		unsigned long flags;
		unsigned long long ut, stt;
		int ours = 0;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		if (stat(path, &sb))
			continue;
		for (int i = 0; i < nmine; i++)
			ours |= sb.st_ino == mine[i];
		if (ours)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (!p || !(p = strrchr(buf, ')')))
			continue;
		/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
		if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %llu %llu", &flags, &ut,
			   &stt) != 3)
			continue;
		if (flags & 0x00200000)	/* PF_KTHREAD */
			continue;
		others += ut + stt;
		printf("pid %s %llu\n", de->d_name, ut + stt);
	}
	if (d)
		closedir(d);
	printf("busy %llu\nothers %llu\n", busy, others);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int i;

	if (argc < 2)
		die(1, "usage: see the comment at the top of bench/nsperf.c");
	cmd = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(cmd, "cpu"))
		return cmd_cpu(argc, argv);
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

#define ARG(s) (!strcmp(a, s) && v && ++i)
		if (ARG("-t"))
			opt_t = atof(v);
		else if (ARG("-n"))
			opt_n = atol(v);
		else if (ARG("-l"))
			opt_listen = v;
		else if (ARG("-w"))
			opt_wait = atof(v);
		else if (ARG("--idle"))
			opt_idle = atof(v);
		else if (ARG("-s"))
			opt_size = atol(v);
		else if (ARG("-r"))
			opt_rate = atof(v);
		else if (ARG("-T"))
			opt_token = v;
		else if (ARG("-S"))
			opt_sock = v;
		else if (ARG("-A"))
			opt_nsa = v;
		else if (ARG("-B"))
			opt_nsb = v;
		else if (ARG("-R"))
			opt_relay = v;
		else if (ARG("-k"))
			opt_k = atol(v);
		else if (ARG("-p"))
			opt_par = atol(v);
		else if (ARG("-b"))
			opt_bind = v;
		else if (a[0] != '-')
			add_ep(a);
		else
			die(1, "unknown option %s", a);
	}
	(void)opt_bind;
	if (!strcmp(cmd, "send"))
		return cmd_send();
	if (!strcmp(cmd, "recv"))
		return cmd_recv();
	if (!strcmp(cmd, "rr-client"))
		return cmd_rr(0);
	if (!strcmp(cmd, "rr-server"))
		return cmd_rr(1);
	if (!strcmp(cmd, "udp-send"))
		return cmd_udp_send();
	if (!strcmp(cmd, "udp-recv"))
		return cmd_udp_recv();
	if (!strcmp(cmd, "splicerate"))
		return cmd_splicerate();
	die(1, "unknown command %s", cmd);
	return 1;
}
