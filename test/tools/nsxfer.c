// SPDX-License-Identifier: GPL-2.0
/*
 * nsxfer: one side of a spliced TCP connection, for the namespace tests.
 *
 * Both sides of a splice open actively, so this tool only connects: it sends
 * a deterministic pseudo-random stream (from --seed) while it receives until
 * EOF, then prints what it sent and received with their SHA-256:
 *
 *   sent BYTES sha256 HEX recv BYTES sha256 HEX
 *
 * so a test compares A's "sent" digest with B's "recv" digest and vice versa.
 * `--sha-of BYTES --seed N` prints the digest a peer with that seed sends.
 *
 * `--listen IP:PORT` accepts one connection instead (for baselines that have
 * no relay in the path).
 *
 * Exit status: 0 success, 1 usage or local error, 2 connection refused,
 * 3 connection reset (without --expect-reset), 4 timeout, 5 --expect-reset
 * given but the connection ended cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

#include "util.h"

#include <openssl/evp.h>

#define BUF_BYTES	(256 * 1024)
#define EXIT_USAGE	1
#define EXIT_REFUSED	2
#define EXIT_RESET	3
#define EXIT_TIMEOUT	4
#define EXIT_NORESET	5

struct opts {
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct sockaddr_storage src;
	socklen_t src_len;		/* 0: no --bind */
	const char *dst_str;
	int listen;			/* --listen: accept one connection instead */
	unsigned long long send;
	unsigned long long rst_after;	/* ULLONG_MAX: never */
	unsigned long long seed;
	int expect_reset;
	int no_shutdown;
	int after_eof;
	int verbose;
	int timeout_s;			/* inactivity timeout */
};

/* Deterministic stream: 64-bit word k of seed s is splitmix64(s * phi + k). */
struct stream {
	unsigned long long seed;
	unsigned long long word;	/* next word index */
};

static unsigned long long splitmix64(unsigned long long x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Fill n bytes (a multiple of 8) with the next part of the stream. */
static void stream_fill(struct stream *st, unsigned char *buf, size_t n)
{
	unsigned long long base = st->seed * 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < n; i += 8) {
		unsigned long long w = splitmix64(base + st->word++);

		memcpy(buf + i, &w, 8);
	}
}

/* "123", "4K", "200M", "1G" (binary multiples). */
static int parse_size(const char *s, unsigned long long *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': n <<= 10; end++; break;
	case 'm': case 'M': n <<= 20; end++; break;
	case 'g': case 'G': n <<= 30; end++; break;
	}
	if (*end == 'i' && end[1] == 'B')	/* "MiB" */
		end += 2;
	if (*end)
		return -1;
	*v = n;
	return 0;
}

/*
 * "IP:PORT", "[IPv6]:PORT", and with need_port == 0 also "IP" and a bare
 * IPv6 literal (port 0).
 */

static void hexdigest(EVP_MD_CTX *md, char out[65])
{
	unsigned char d[32];
	unsigned int n = 0;

	EVP_DigestFinal_ex(md, d, &n);
	for (unsigned int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[64] = 0;
}

static EVP_MD_CTX *sha256_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		die(EXIT_USAGE, "OpenSSL: cannot set up SHA-256");
	return md;
}

/* --sha-of: the digest of the first n bytes of the stream of a seed. */
static int sha_of(unsigned long long n, unsigned long long seed)
{
	static unsigned char buf[BUF_BYTES];
	struct stream st = { seed, 0 };
	EVP_MD_CTX *md = sha256_new();
	char hex[65];

	while (n) {
		size_t chunk = n < sizeof(buf) ? n : sizeof(buf);

		stream_fill(&st, buf, sizeof(buf));
		EVP_DigestUpdate(md, buf, chunk);
		n -= chunk;
	}
	hexdigest(md, hex);
	EVP_MD_CTX_free(md);
	printf("%s\n", hex);
	return 0;
}

static int exit_for_errno(int err)
{
	switch (err) {
	case ECONNREFUSED: return EXIT_REFUSED;
	case ECONNRESET: case EPIPE: return EXIT_RESET;
	case ETIMEDOUT: return EXIT_TIMEOUT;
	default: return EXIT_USAGE;
	}
}

static int do_connect(const struct opts *o)
{
	int fd, err = 0, one = 1;
	socklen_t elen = sizeof(err);
	struct pollfd pfd;

	fd = socket(o->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(EXIT_USAGE, "socket: %s", strerror(errno));
	if (o->src_len) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&o->src, o->src_len) < 0)
			die(EXIT_USAGE, "bind: %s", strerror(errno));
	}
	if (connect(fd, (const struct sockaddr *)&o->dst, o->dst_len) == 0)
		return fd;
	if (errno != EINPROGRESS)
		die(exit_for_errno(errno), "connect %s: %s", o->dst_str, strerror(errno));

	pfd.fd = fd;
	pfd.events = POLLOUT;
	for (;;) {
		int n = poll(&pfd, 1, o->timeout_s * 1000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EXIT_USAGE, "poll: %s", strerror(errno));
		if (n == 0)
			die(EXIT_TIMEOUT, "connect %s: timed out after %d s", o->dst_str,
			    o->timeout_s);
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		die(EXIT_USAGE, "getsockopt: %s", strerror(errno));
	if (err)
		die(exit_for_errno(err), "connect %s: %s", o->dst_str, strerror(err));
	return fd;
}

/* --listen (baselines without a relay): accept one connection on dst. */
static int do_accept(const struct opts *o)
{
	int lfd, fd, one = 1;
	struct pollfd pfd;

	lfd = socket(o->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die(EXIT_USAGE, "socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (const struct sockaddr *)&o->dst, o->dst_len) < 0 || listen(lfd, 1) < 0)
		die(EXIT_USAGE, "listen %s: %s", o->dst_str, strerror(errno));
	/* The line a test waits for before it starts the other side. */
	fprintf(stderr, "nsxfer: listening on %s\n", o->dst_str);
	pfd.fd = lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, o->timeout_s * 1000) <= 0)
		die(EXIT_TIMEOUT, "no connection on %s within %d s", o->dst_str, o->timeout_s);
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		die(EXIT_USAGE, "accept: %s", strerror(errno));
	close(lfd);
	return fd;
}

static int transfer(const struct opts *o)
{
	static unsigned char txbuf[BUF_BYTES], rxbuf[BUF_BYTES];
	struct stream st = { o->seed, 0 };
	unsigned long long limit = o->send, sent = 0, recvd = 0;
	size_t txoff = sizeof(txbuf), txlen = sizeof(txbuf);
	EVP_MD_CTX *txmd = sha256_new(), *rxmd = sha256_new();
	int eof = 0, wdone = 0, reset = 0, rst_sent = 0;
	char txhex[65], rxhex[65];
	double t0 = now_s(), t1;
	int fd;

	if (o->rst_after < limit)
		limit = o->rst_after;
	fd = o->listen ? do_accept(o) : do_connect(o);
	t1 = now_s();
	if (o->verbose)
		fprintf(stderr, "nsxfer: connected (%s) in %.3f s\n", o->dst_str, t1 - t0);

	while (!(eof && wdone)) {
		int sending = !wdone && (!o->after_eof || eof);
		struct pollfd pfd = { fd, (eof ? 0 : POLLIN) | (sending ? POLLOUT : 0), 0 };
		int n;

		/* Everything sent (or nothing to send): half-close, RST or keep open. */
		if (!wdone && sent == limit && (!o->after_eof || eof)) {
			if (o->rst_after != ~0ULL) {
				struct linger l = { 1, 0 };

				setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
				close(fd);
				fd = -1;
				rst_sent = 1;
				break;
			}
			if (!o->no_shutdown && shutdown(fd, SHUT_WR) < 0)
				die(exit_for_errno(errno), "shutdown: %s", strerror(errno));
			wdone = 1;
			continue;
		}

		n = poll(&pfd, 1, o->timeout_s * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EXIT_USAGE, "poll: %s", strerror(errno));
		if (n == 0)
			die(EXIT_TIMEOUT, "no progress for %d s (sent %llu of %llu, received %llu%s)",
			    o->timeout_s, sent, limit, recvd, eof ? ", EOF seen" : "");

		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, rxbuf, sizeof(rxbuf), 0);

			if (r > 0) {
				EVP_DigestUpdate(rxmd, rxbuf, r);
				recvd += r;
			} else if (r == 0) {
				eof = 1;
			} else if (errno == ECONNRESET || errno == EPIPE) {
				reset = 1;
				break;
			} else if (errno != EAGAIN && errno != EINTR) {
				die(exit_for_errno(errno), "recv: %s", strerror(errno));
			}
		}
		if (sending && (pfd.revents & POLLOUT) && sent < limit) {
			size_t want;
			ssize_t w;

			if (txoff == txlen) {
				stream_fill(&st, txbuf, sizeof(txbuf));
				txoff = 0;
			}
			want = txlen - txoff;
			if (want > limit - sent)
				want = limit - sent;
			w = send(fd, txbuf + txoff, want, MSG_NOSIGNAL);
			if (w > 0) {
				EVP_DigestUpdate(txmd, txbuf + txoff, w);
				txoff += w;
				sent += w;
			} else if (w < 0 && (errno == ECONNRESET || errno == EPIPE)) {
				reset = 1;
				break;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				die(exit_for_errno(errno), "send: %s", strerror(errno));
			}
		}
	}
	if (fd >= 0)
		close(fd);

	if (reset && !o->expect_reset)
		die(EXIT_RESET, "connection reset by peer (sent %llu, received %llu)", sent, recvd);
	if (o->expect_reset && !reset)
		die(EXIT_NORESET, "expected a connection reset, but the connection ended cleanly");

	hexdigest(txmd, txhex);
	hexdigest(rxmd, rxhex);
	EVP_MD_CTX_free(txmd);
	EVP_MD_CTX_free(rxmd);
	printf("sent %llu sha256 %s recv %llu sha256 %s%s\n", sent, txhex, recvd, rxhex,
	       reset ? " reset" : "");
	if (o->verbose) {
		double dt = now_s() - t1;

		fprintf(stderr, "nsxfer: %s after %.3f s: tx %.1f Mbit/s, rx %.1f Mbit/s\n",
			rst_sent ? "reset sent" : reset ? "reset received" : "done", dt,
			dt > 0 ? sent * 8 / dt / 1e6 : 0, dt > 0 ? recvd * 8 / dt / 1e6 : 0);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: nsxfer --connect IP:PORT [--bind IP[:PORT]] [--send BYTES] [--seed N]\n"
"              [--rst-after BYTES] [--expect-reset] [--no-shutdown] [--after-eof]\n"
"              [--timeout SEC] [--verbose]\n"
"       nsxfer --listen IP:PORT [same options]   (accepts one connection)\n"
"       nsxfer --sha-of BYTES [--seed N]\n"
"Connects, sends BYTES of the stream of seed N while receiving until EOF, then\n"
"prints \"sent BYTES sha256 HEX recv BYTES sha256 HEX\".\n"
"  --bind IP[:PORT]   source address (and port) to connect from\n"
"  --rst-after BYTES  after sending BYTES, close with an RST (SO_LINGER 0)\n"
"  --expect-reset     a reset from the peer is success (and required)\n"
"  --no-shutdown      do not half-close after sending\n"
"  --after-eof        start sending only after the peer's EOF\n"
"  --timeout SEC      give up after SEC seconds without progress (default 120)\n"
"  BYTES takes K, M, G suffixes (binary). Exit: 0 ok, 1 error, 2 refused,\n"
"  3 reset, 4 timeout, 5 no reset although --expect-reset.\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "bind", required_argument, NULL, 'b' },
		{ "send", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "rst-after", required_argument, NULL, 'r' },
		{ "expect-reset", no_argument, NULL, 'R' },
		{ "no-shutdown", no_argument, NULL, 'n' },
		{ "after-eof", no_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "sha-of", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = { .rst_after = ~0ULL, .timeout_s = 120 };
	unsigned long long sha_n = 0;
	int c, have_sha = 0;

	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:l:b:s:S:r:Rnet:H:vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.dst_str = optarg;
			if (ns_parse_sockaddr(optarg, !(1), &o.dst, &o.dst_len))
				die(EXIT_USAGE, "bad --connect address '%s' (IP:PORT or [IPv6]:PORT)",
				    optarg);
			break;
		case 'l':
			o.listen = 1;
			o.dst_str = optarg;
			if (ns_parse_sockaddr(optarg, !(1), &o.dst, &o.dst_len))
				die(EXIT_USAGE, "bad --listen address '%s' (IP:PORT or [IPv6]:PORT)",
				    optarg);
			break;
		case 'b':
			if (ns_parse_sockaddr(optarg, !(0), &o.src, &o.src_len))
				die(EXIT_USAGE, "bad --bind address '%s'", optarg);
			break;
		case 's':
			if (parse_size(optarg, &o.send))
				die(EXIT_USAGE, "bad --send size '%s'", optarg);
			break;
		case 'S':
			if (parse_size(optarg, &o.seed))
				die(EXIT_USAGE, "bad --seed '%s'", optarg);
			break;
		case 'r':
			if (parse_size(optarg, &o.rst_after))
				die(EXIT_USAGE, "bad --rst-after size '%s'", optarg);
			break;
		case 'R': o.expect_reset = 1; break;
		case 'n': o.no_shutdown = 1; break;
		case 'e': o.after_eof = 1; break;
		case 't':
			o.timeout_s = atoi(optarg);
			if (o.timeout_s <= 0)
				die(EXIT_USAGE, "bad --timeout '%s'", optarg);
			break;
		case 'H':
			if (parse_size(optarg, &sha_n))
				die(EXIT_USAGE, "bad --sha-of size '%s'", optarg);
			have_sha = 1;
			break;
		case 'v': o.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (have_sha)
		return sha_of(sha_n, o.seed);
	if (!o.dst_str) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.src_len && o.src.ss_family != o.dst.ss_family)
		die(EXIT_USAGE, "--bind and --connect are of different address families");
	return transfer(&o);
}
