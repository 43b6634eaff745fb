// SPDX-License-Identifier: GPL-2.0
/*
 * nsconn: many short TCP connections, one request and one answer each (issue
 * 9: a relay must sustain new tunnels for as long as clients open them).
 *
 *   nsconn --listen IP:PORT [--answer BYTES]
 *   nsconn --connect IP:PORT (--count N | --duration SEC) [--inflight K]
 *          [--timeout SEC] [--answer BYTES] [--verbose]
 *
 * Connection i of the client writes the request "nsconn <i>\n". The server
 * reads that line, writes an answer of exactly BYTES bytes ("nsconn <i> "
 * and then a fixed pattern, ending in a newline) and closes. The client
 * checks every byte of the answer, waits for the server's EOF (so the
 * TIME_WAIT is the server's, not the client's ephemeral port) and closes.
 * The client keeps K connections in flight (non-blocking connects, one
 * epoll loop) and opens N in all, or opens new ones for SEC seconds.
 *
 * The client's one line on stdout:
 *
 *   conns N ok N failed F seconds S rate R/s p50_ms X p99_ms Y max_ms Z
 *   refused A reset B timeout C short D bad E error F
 *
 * (on one line) where ms are the times from connect() to the answer's EOF of
 * the connections that succeeded, and the failures by kind: refused (connect
 * refused), reset (RST at any point), timeout (not done within --timeout),
 * short (EOF before the whole answer), bad (wrong bytes or more than the
 * answer), error (any other local or socket error). The first failures of
 * each kind are described on stderr. Exit status 0 iff every connection
 * succeeded; 1 on usage errors or when a connection failed.
 *
 * The server says "nsconn: listening on IP:PORT" on stderr once it accepts,
 * and on SIGTERM or SIGINT prints "served N answered A failed F" on stdout
 * and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tool.h"

#include "util.h"

#define EXIT_FAILED	1
#define REQ_MAX		32		/* bytes: "nsconn 4294967295\n" fits */
#define ANSWER_MIN	32		/* bytes: the prefix and the newline fit */
#define ANSWER_MAX	(1 << 20)	/* bytes */
#define EVENTS		256		/* epoll events per wait */
#define REPORT_MAX	5		/* failures described per kind */
#define PROGRESS_S	5.0		/* seconds between --verbose lines */

enum fail_kind { F_REFUSED, F_RESET, F_TIMEOUT, F_SHORT, F_BAD, F_ERROR, F_KINDS };

static const char *const kind_names[F_KINDS] = {
	"refused", "reset", "timeout", "short", "bad", "error",
};

struct opts {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	const char *addr_str;
	int listen;
	unsigned long count;		/* 0 with --duration: no limit */
	double duration_s;		/* 0: --count only */
	unsigned int inflight;
	double timeout_s;		/* per connection */
	size_t answer;			/* bytes */
	int verbose;
};

/* The answer to request i: "nsconn <i> ", a fixed pattern, a newline. */
static void make_answer(unsigned long idx, char *buf, size_t len)
{
	int n = snprintf(buf, len, "nsconn %lu ", idx);

	for (size_t i = n; i < len - 1; i++)
		buf[i] = 'a' + i % 26;
	buf[len - 1] = '\n';
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---------------------------------------------------------------- client */

enum conn_state { C_CONNECTING, C_READING };

/* One connection in flight; conns in start order, so the oldest times out first. */
struct conn {
	int fd;
	enum conn_state st;
	unsigned long idx;
	double t0;
	size_t got;			/* answer bytes received */
	TAILQ_ENTRY(conn) entry;
};
TAILQ_HEAD(conn_list, conn);

struct client {
	const struct opts *o;
	int ep;
	struct conn_list live;
	struct conn *conns;		/* --inflight of them */
	struct conn **free;		/* stack of unused conns */
	unsigned int nfree;
	unsigned long started, done, ok;
	unsigned long fails[F_KINDS];
	double *ms;			/* durations of the connections that succeeded */
	size_t ms_cap;
	char *expect, *rbuf;		/* answer_size + 1 bytes each */
	double t_start;
};

static void conn_end(struct client *c, struct conn *k)
{
	epoll_ctl(c->ep, EPOLL_CTL_DEL, k->fd, NULL);
	close(k->fd);
	TAILQ_REMOVE(&c->live, k, entry);
	c->free[c->nfree++] = k;
	c->done++;
}

__attribute__((format(printf, 4, 5)))
static void conn_fail(struct client *c, struct conn *k, enum fail_kind kind,
		      const char *fmt, ...)
{
	if (c->fails[kind]++ < REPORT_MAX) {
		va_list ap;

		fprintf(stderr, "nsconn: #%lu %s after %.3f s: ", k->idx, kind_names[kind],
			now_s() - k->t0);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
		if (c->fails[kind] == REPORT_MAX)
			fprintf(stderr, "nsconn: (no more %s failures described)\n",
				kind_names[kind]);
	}
	conn_end(c, k);
}

static enum fail_kind kind_of_errno(int err)
{
	switch (err) {
	case ECONNREFUSED: return F_REFUSED;
	case ECONNRESET: case EPIPE: return F_RESET;
	case ETIMEDOUT: return F_TIMEOUT;
	default: return F_ERROR;
	}
}

static void conn_ok(struct client *c, struct conn *k)
{
	if (c->ok == c->ms_cap) {
		size_t cap = c->ms_cap ? 2 * c->ms_cap : 4096;
		double *ms = realloc(c->ms, cap * sizeof(*ms));

		if (!ms)
			die(EXIT_FAILED, "out of memory");
		c->ms = ms;
		c->ms_cap = cap;
	}
	c->ms[c->ok++] = (now_s() - k->t0) * 1e3;
	conn_end(c, k);
}

static void send_request(struct client *c, struct conn *k)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = k };
	char req[REQ_MAX];
	int n = snprintf(req, sizeof(req), "nsconn %lu\n", k->idx);
	ssize_t w = send(k->fd, req, n, MSG_NOSIGNAL);

	/* A fresh socket's send buffer takes a few bytes at once. */
	if (w != n) {
		int err = w < 0 ? errno : EIO;

		conn_fail(c, k, kind_of_errno(err), "sending the request: %s", strerror(err));
		return;
	}
	k->st = C_READING;
	if (epoll_ctl(c->ep, EPOLL_CTL_MOD, k->fd, &ev) < 0)
		die(EXIT_FAILED, "epoll_ctl: %s", strerror(errno));
}

/* Open connection number c->started (a failed connect() counts at once). */
static void conn_start(struct client *c)
{
	const struct opts *o = c->o;
	struct conn *k = c->free[--c->nfree];
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = k };
	int fd;

	k->idx = c->started++;
	k->t0 = now_s();
	k->got = 0;
	k->st = C_CONNECTING;
	TAILQ_INSERT_TAIL(&c->live, k, entry);
	fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(EXIT_FAILED, "socket: %s", strerror(errno));
	k->fd = fd;
	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die(EXIT_FAILED, "epoll_ctl: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)&o->addr, o->addr_len) == 0)
		send_request(c, k);
	else if (errno != EINPROGRESS)
		conn_fail(c, k, kind_of_errno(errno), "connect: %s", strerror(errno));
}

static void conn_connected(struct client *c, struct conn *k)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		conn_fail(c, k, kind_of_errno(err), "connect: %s", strerror(err));
	else
		send_request(c, k);
}

static void conn_readable(struct client *c, struct conn *k)
{
	size_t want = c->o->answer;

	for (;;) {
		/* one byte more than the answer: extra bytes are an error */
		ssize_t r = recv(k->fd, c->rbuf, want + 1 - k->got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r < 0) {
			conn_fail(c, k, kind_of_errno(errno), "after %zu of %zu answer bytes: %s",
				  k->got, want, strerror(errno));
			return;
		}
		if (r == 0) {
			if (k->got == want)
				conn_ok(c, k);
			else
				conn_fail(c, k, F_SHORT, "EOF after %zu of %zu answer bytes",
					  k->got, want);
			return;
		}
		if (k->got + r > want) {
			conn_fail(c, k, F_BAD, "more than the %zu answer bytes", want);
			return;
		}
		make_answer(k->idx, c->expect, want);
		if (memcmp(c->rbuf, c->expect + k->got, r)) {
			conn_fail(c, k, F_BAD, "answer bytes %zu-%zu differ from the expected",
				  k->got, k->got + r - 1);
			return;
		}
		k->got += r;
	}
}

static int more_to_start(const struct client *c, double now)
{
	const struct opts *o = c->o;

	if (o->count && c->started >= o->count)
		return 0;
	return !o->duration_s || now - c->t_start < o->duration_s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of n sorted values. */
static double quantile(const double *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(q * n);
	if (i < q * n)
		i++;
	return v[i ? i - 1 : 0];
}

static int run_client(const struct opts *o)
{
	struct epoll_event evs[EVENTS];
	struct client c = { .o = o };
	unsigned long failed = 0;
	double t_end, dt, next_progress;
	struct conn *k;
	int ret;

	raise_nofile();
	c.ep = epoll_create1(EPOLL_CLOEXEC);
	if (c.ep < 0)
		die(EXIT_FAILED, "epoll_create1: %s", strerror(errno));
	TAILQ_INIT(&c.live);
	c.free = calloc(o->inflight, sizeof(*c.free));
	c.conns = calloc(o->inflight, sizeof(*c.conns));
	c.expect = malloc(o->answer + 1);
	c.rbuf = malloc(o->answer + 1);
	if (!c.free || !c.conns || !c.expect || !c.rbuf)
		die(EXIT_FAILED, "out of memory");
	for (unsigned int i = 0; i < o->inflight; i++)
		c.free[c.nfree++] = &c.conns[i];

	c.t_start = now_s();
	next_progress = c.t_start + PROGRESS_S;
	for (;;) {
		double now = now_s();
		int n, wait_ms = -1;

		while (c.nfree && more_to_start(&c, now))
			conn_start(&c);
		if (TAILQ_EMPTY(&c.live))
			break;
		/* until the oldest connection's deadline (or the next progress line) */
		wait_ms = (int)((TAILQ_FIRST(&c.live)->t0 + o->timeout_s - now) * 1e3) + 1;
		if (wait_ms < 0)
			wait_ms = 0;
		if (o->verbose && wait_ms > (next_progress - now) * 1e3)
			wait_ms = (next_progress - now) * 1e3 + 1;
		n = epoll_wait(c.ep, evs, EVENTS, wait_ms);
		if (n < 0 && errno != EINTR)
			die(EXIT_FAILED, "epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			k = evs[i].data.ptr;
			if (k->st == C_CONNECTING)
				conn_connected(&c, k);
			else
				conn_readable(&c, k);
		}
		now = now_s();
		while ((k = TAILQ_FIRST(&c.live)) && now - k->t0 >= o->timeout_s)
			conn_fail(&c, k, F_TIMEOUT, "%s, %zu of %zu answer bytes",
				  k->st == C_CONNECTING ? "still connecting" : "answer pending",
				  k->got, o->answer);
		if (o->verbose && now >= next_progress) {
			unsigned long f = c.done - c.ok;

			fprintf(stderr, "nsconn: %.1f s: %lu done, %lu failed, %u in flight\n",
				now - c.t_start, c.done, f, o->inflight - c.nfree);
			next_progress = now + PROGRESS_S;
		}
	}
	t_end = now_s();
	dt = t_end - c.t_start;
	if (c.ok)
		qsort(c.ms, c.ok, sizeof(*c.ms), cmp_double);
	for (int i = 0; i < F_KINDS; i++)
		failed += c.fails[i];
	printf("conns %lu ok %lu failed %lu seconds %.1f rate %.0f/s p50_ms %.1f p99_ms %.1f"
	       " max_ms %.1f", c.done, c.ok, failed, dt, dt > 0 ? c.done / dt : 0,
	       quantile(c.ms, c.ok, 0.50), quantile(c.ms, c.ok, 0.99),
	       quantile(c.ms, c.ok, 1.0));
	for (int i = 0; i < F_KINDS; i++)
		printf(" %s %lu", kind_names[i], c.fails[i]);
	printf("\n");
	fflush(stdout);
	ret = failed || !c.done ? EXIT_FAILED : 0;
	close(c.ep);
	free(c.ms);
	free(c.expect);
	free(c.rbuf);
	free(c.conns);
	free(c.free);
	return ret;
}

/* ---------------------------------------------------------------- server */

/* One accepted connection: reading the request line, then writing the answer. */
struct sconn {
	int fd;
	int answering;
	char req[REQ_MAX];
	size_t rlen;
	unsigned long idx;
	size_t sent;			/* answer bytes */
	LIST_ENTRY(sconn) entry;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

struct server {
	const struct opts *o;
	int ep;
	char *abuf;
	LIST_HEAD(, sconn) live;
	unsigned long served, answered, failed;
};

static void sconn_close(struct server *s, struct sconn *k, int ok)
{
	close(k->fd);		/* every request byte was read: a FIN, not an RST */
	LIST_REMOVE(k, entry);
	free(k);
	if (ok)
		s->answered++;
	else
		s->failed++;
}

/* The request is "nsconn <decimal>\n"; 0 with the index, or -EINVAL. */
static int parse_request(const char *req, size_t len, unsigned long *idx)
{
	char *end;

	if (len < 9 || strncmp(req, "nsconn ", 7) || req[7] < '0' || req[7] > '9')
		return -EINVAL;
	errno = 0;
	*idx = strtoul(req + 7, &end, 10);
	return errno || end != req + len - 1 || *end != '\n' ? -EINVAL : 0;
}

static void sconn_write(struct server *s, struct sconn *k)
{
	size_t len = s->o->answer;

	make_answer(k->idx, s->abuf, len);
	while (k->sent < len) {
		ssize_t w = send(k->fd, s->abuf + k->sent, len - k->sent, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = k };

			if (epoll_ctl(s->ep, EPOLL_CTL_MOD, k->fd, &ev) < 0)
				die(EXIT_FAILED, "epoll_ctl: %s", strerror(errno));
			return;
		}
		if (w < 0) {
			sconn_close(s, k, 0);
			return;
		}
		k->sent += w;
	}
	sconn_close(s, k, 1);
}

static void sconn_readable(struct server *s, struct sconn *k)
{
	for (;;) {
		ssize_t r = recv(k->fd, k->req + k->rlen, sizeof(k->req) - k->rlen, 0);
		char *nl;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			sconn_close(s, k, 0);	/* EOF or error before a whole request */
			return;
		}
		k->rlen += r;
		nl = memchr(k->req, '\n', k->rlen);
		if (nl) {
			if (parse_request(k->req, k->rlen, &k->idx)) {
				sconn_close(s, k, 0);
				return;
			}
			k->answering = 1;
			sconn_write(s, k);
			return;
		}
		if (k->rlen == sizeof(k->req)) {
			sconn_close(s, k, 0);
			return;
		}
	}
}

static void accept_all(struct server *s, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct sconn *k;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				fprintf(stderr, "nsconn: accept: %s\n", strerror(errno));
			return;
		}
		k = calloc(1, sizeof(*k));
		if (!k)
			die(EXIT_FAILED, "out of memory");
		k->fd = fd;
		LIST_INSERT_HEAD(&s->live, k, entry);
		ev.data.ptr = k;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die(EXIT_FAILED, "epoll_ctl: %s", strerror(errno));
		s->served++;
	}
}

static int run_server(const struct opts *o)
{
	struct epoll_event evs[EVENTS], ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct server s = { .o = o };
	struct sigaction sa = { .sa_handler = on_signal };
	struct sconn *k;
	int lfd, one = 1;

	raise_nofile();
	sigaction(SIGTERM, &sa, NULL);	/* no SA_RESTART: epoll_wait returns */
	sigaction(SIGINT, &sa, NULL);
	LIST_INIT(&s.live);
	s.abuf = malloc(o->answer);
	if (!s.abuf)
		die(EXIT_FAILED, "out of memory");
	lfd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die(EXIT_FAILED, "socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (const struct sockaddr *)&o->addr, o->addr_len) < 0 ||
	    listen(lfd, SOMAXCONN) < 0)
		die(EXIT_FAILED, "listen %s: %s", o->addr_str, strerror(errno));
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	if (s.ep < 0 || epoll_ctl(s.ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die(EXIT_FAILED, "epoll: %s", strerror(errno));
	/* The line a test waits for before it starts clients. */
	fprintf(stderr, "nsconn: listening on %s\n", o->addr_str);

	while (!stop) {
		int n = epoll_wait(s.ep, evs, EVENTS, -1);

		if (n < 0 && errno != EINTR)
			die(EXIT_FAILED, "epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			k = evs[i].data.ptr;
			if (!k)
				accept_all(&s, lfd);
			else if (k->answering)
				sconn_write(&s, k);
			else
				sconn_readable(&s, k);
		}
	}
	/* connections still open count as failed */
	while ((k = LIST_FIRST(&s.live)))
		sconn_close(&s, k, 0);
	printf("served %lu answered %lu failed %lu\n", s.served, s.answered, s.failed);
	fflush(stdout);
	close(s.ep);
	close(lfd);
	free(s.abuf);
	return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
"usage: nsconn --connect IP:PORT (--count N | --duration SEC) [--inflight K]\n"
"              [--timeout SEC] [--answer BYTES] [--verbose]\n"
"       nsconn --listen IP:PORT [--answer BYTES]\n"
"Client: opens N short connections (or opens them for SEC seconds), K at a time;\n"
"each sends \"nsconn <i>\\n\", reads and checks an answer of BYTES bytes, waits for\n"
"the server's EOF and closes. Prints one line:\n"
"  conns N ok N failed F seconds S rate R/s p50_ms X p99_ms Y max_ms Z\n"
"  refused A reset B timeout C short D bad E error F\n"
"and exits 1 if any connection failed.\n"
"Server: answers every request that way and closes; on SIGTERM prints\n"
"  served N answered A failed F\n"
"  --count N       connections to open (with --duration: at most)\n"
"  --duration SEC  open new connections for SEC seconds\n"
"  --inflight K    connections in flight at once (default 32)\n"
"  --timeout SEC   a connection not done within SEC seconds fails (default 60)\n"
"  --answer BYTES  answer size, %d to %d (default 64; the same on both sides)\n"
"  --verbose       a progress line on stderr every %.0f s\n",
		ANSWER_MIN, ANSWER_MAX, PROGRESS_S);
}

static double parse_seconds(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0))
		die(EXIT_FAILED, "bad %s '%s' (seconds > 0)", what, s);
	return v;
}

static unsigned long parse_count(const char *s, const char *what, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v == 0 || v > max)
		die(EXIT_FAILED, "bad %s '%s' (1 to %lu)", what, s, max);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "answer", required_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = { .inflight = 32, .timeout_s = 60, .answer = 64 };
	int c;

	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:l:n:d:k:t:a:vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'l':
			o.listen = c == 'l';
			o.addr_str = optarg;
			if (ns_parse_sockaddr(optarg, 0, &o.addr, &o.addr_len))
				die(EXIT_FAILED, "bad address '%s' (IP:PORT or [IPv6]:PORT)",
				    optarg);
			break;
		case 'n': o.count = parse_count(optarg, "--count", ~0UL); break;
		case 'd': o.duration_s = parse_seconds(optarg, "--duration"); break;
		case 'k': o.inflight = parse_count(optarg, "--inflight", 100000); break;
		case 't': o.timeout_s = parse_seconds(optarg, "--timeout"); break;
		case 'a': o.answer = parse_count(optarg, "--answer", ANSWER_MAX); break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_FAILED;
		}
	}
	if (optind != argc || !o.addr_str) {
		usage(stderr);
		return EXIT_FAILED;
	}
	if (o.answer < ANSWER_MIN)
		die(EXIT_FAILED, "--answer must be at least %d bytes", ANSWER_MIN);
	if (o.listen)
		return run_server(&o);
	if (!o.count && !o.duration_s)
		die(EXIT_FAILED, "--connect needs --count or --duration");
	return run_client(&o);
}
