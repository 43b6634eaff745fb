// SPDX-License-Identifier: GPL-2.0
/*
 * nsudp: one side of a spliced UDP flow, for the namespace tests.
 *
 * Sends the 16 raw token bytes to the relay port every 200 ms until the relay
 * answers with the 4-byte datagram "NSOK" (the splice is established). Then:
 *  - sender (default): sends N datagrams of S bytes, each carrying a magic, a
 *    sequence number and a pattern derived from it, keeps at most --window of
 *    them unanswered, and checks that every reply is an exact echo;
 *    prints "sent N recv M lost L bad B";
 *  - --echo: sends every datagram it receives back to where it came from;
 *    prints "echoed M". Stops after N datagrams (with --send N) or when idle.
 * A datagram equal to the token (a late retransmission the relay forwarded)
 * and repeated "NSOK"s are ignored. Without --token it talks to a plain UDP
 * port (a subscriber agent's): no token, no NSOK.
 * --size MIN-MAX varies the size with the sequence number (each reply must
 * still be the exact datagram: none merged or split); --rtt sends one
 * datagram at a time and prints the round trips' p50/p99 in microseconds.
 *
 * Exit status: 0 success, 1 usage or local error, 4 timeout (no NSOK, or
 * nothing to echo), 6 datagrams lost or corrupted.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
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

#define TOKEN_BYTES	16
#define TOKEN_EVERY_MS	200
#define HDR_BYTES	12		/* magic (4) + sequence number (8) */
#define MAX_SIZE	65000
#define EXIT_USAGE	1
#define EXIT_TIMEOUT	4
#define EXIT_LOSS	6

static const unsigned char magic[4] = { 'N', 'S', 'D', 'G' };

struct opts {
	struct sockaddr_storage relay, src;
	socklen_t relay_len, src_len;
	const char *relay_str;
	unsigned char token[TOKEN_BYTES];
	int have_token;
	unsigned long n;
	unsigned long size, size_max;	/* size_max > size: sizes vary */
	unsigned long window;
	int rtt;
	int echo;
	int timeout_s;		/* to get NSOK; echo: to get the first datagram */
	int idle_s;		/* echo: stop after this much silence */
	double max_loss;	/* fraction of datagrams allowed to go missing */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Is this datagram from the relay's address (any port)? */
static int from_relay(const struct opts *o, const struct sockaddr_storage *from)
{
	if (from->ss_family != o->relay.ss_family)
		return 0;
	if (from->ss_family == AF_INET)
		return ((const struct sockaddr_in *)from)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)&o->relay)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)from)->sin6_addr,
		       &((const struct sockaddr_in6 *)&o->relay)->sin6_addr,
		       sizeof(struct in6_addr));
}

static int is_token(const struct opts *o, const unsigned char *buf, ssize_t n)
{
	return n == TOKEN_BYTES && !memcmp(buf, o->token, TOKEN_BYTES);
}

static int is_nsok(const unsigned char *buf, ssize_t n)
{
	return n == 4 && !memcmp(buf, "NSOK", 4);
}

/* The size of datagram seq: fixed, or spread over size..size_max. */
static unsigned long dgram_size(const struct opts *o, uint64_t seq)
{
	if (o->size_max <= o->size)
		return o->size;
	return o->size + (seq * 7919) % (o->size_max - o->size + 1);
}

static void fill_dgram(unsigned char *buf, unsigned long size, uint64_t seq)
{
	memcpy(buf, magic, 4);
	memcpy(buf + 4, &seq, 8);
	for (unsigned long i = HDR_BYTES; i < size; i++)
		buf[i] = (unsigned char)(seq * 31 + i);
}

/*
 * Send the token until "NSOK". In echo mode a data datagram also proves the
 * splice is up (NSOK may be overtaken): it is left in buf/len for the caller.
 */
static int wait_established(const struct opts *o, int fd, unsigned char *buf, ssize_t *len,
			    struct sockaddr_storage *from)
{
	long long deadline = now_ms() + o->timeout_s * 1000LL, next = 0;
	unsigned long tokens = 0;

	*len = 0;
	if (!o->have_token)
		return 0;	/* a plain UDP port: nothing to wait for */
	for (;;) {
		long long t = now_ms();
		struct pollfd pfd = { fd, POLLIN, 0 };
		socklen_t flen = sizeof(*from);
		ssize_t n;

		if (t >= deadline)
			die(EXIT_TIMEOUT, "no NSOK from %s after %d s (%lu tokens sent)",
			    o->relay_str, o->timeout_s, tokens);
		if (t >= next) {
			if (sendto(fd, o->token, TOKEN_BYTES, 0, (const struct sockaddr *)&o->relay,
				   o->relay_len) < 0 && errno != ECONNREFUSED)
				die(EXIT_USAGE, "sendto %s: %s", o->relay_str, strerror(errno));
			tokens++;
			next = t + TOKEN_EVERY_MS;
		}
		if (poll(&pfd, 1, next - t) <= 0)
			continue;
		n = recvfrom(fd, buf, MAX_SIZE, 0, (struct sockaddr *)from, &flen);
		if (n < 0 || !from_relay(o, from) || is_token(o, buf, n))
			continue;
		if (is_nsok(buf, n)) {
			*len = 0;
			return 0;
		}
		if (o->echo) {
			*len = n;
			return 0;
		}
	}
}

static int run_echo(const struct opts *o, int fd)
{
	static unsigned char buf[MAX_SIZE];
	struct sockaddr_storage from;
	unsigned long echoed = 0;
	long long last;
	ssize_t n;

	wait_established(o, fd, buf, &n, &from);
	last = now_ms();
	for (;;) {
		if (n > 0 && !is_token(o, buf, n) && !is_nsok(buf, n)) {
			socklen_t flen = from.ss_family == AF_INET ? sizeof(struct sockaddr_in)
								   : sizeof(struct sockaddr_in6);

			if (sendto(fd, buf, n, 0, (struct sockaddr *)&from, flen) == n)
				echoed++;
			last = now_ms();
			if (o->n && echoed >= o->n)
				break;
		}
		n = 0;

		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = last + (echoed ? o->idle_s : o->timeout_s) * 1000LL - now_ms();

		if (left <= 0)
			break;
		if (poll(&pfd, 1, left) <= 0)
			continue;

		socklen_t flen = sizeof(from);

		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (n < 0 || (o->have_token && !from_relay(o, &from)))
			n = 0;
	}
	printf("echoed %lu\n", echoed);
	if (!echoed)
		die(EXIT_TIMEOUT, "nothing to echo");
	if (o->n && echoed < o->n)
		die(EXIT_LOSS, "echoed %lu of %lu datagrams", echoed, o->n);
	return 0;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* "rtt_us p50 P p99 P n N" over the round trips measured. */
static void print_rtt(long long *us, unsigned long n)
{
	if (!n)
		return;
	qsort(us, n, sizeof(*us), cmp_ll);
	printf("rtt_us p50 %lld p99 %lld n %lu\n", us[(n - 1) / 2], us[(n - 1) * 99 / 100], n);
}

static int run_sender(const struct opts *o, int fd)
{
	static unsigned char buf[MAX_SIZE], rbuf[MAX_SIZE];
	struct sockaddr_storage from;
	unsigned long sent = 0, recvd = 0, bad = 0, dup = 0;
	unsigned char *seen = calloc(o->n + 1, 1);
	long long *sent_ns = o->rtt ? calloc(o->n + 1, sizeof(*sent_ns)) : NULL;
	long long *rtt_us = o->rtt ? calloc(o->n + 1, sizeof(*rtt_us)) : NULL;
	unsigned long written_off = 0, nrtt = 0;
	long long last_reply, last_writeoff = 0;
	ssize_t n;

	if (!seen || (o->rtt && (!sent_ns || !rtt_us)))
		die(EXIT_USAGE, "out of memory");
	wait_established(o, fd, rbuf, &n, &from);
	last_reply = now_ms();
	while (recvd < o->n) {
		/*
		 * Keep at most `window` datagrams unanswered; after 200 ms of
		 * silence write the unanswered ones off as lost and go on.
		 */
		long long t = now_ms();
		long outstanding = (long)(sent - recvd - written_off);

		if (outstanding > 0 && t - last_reply >= 200 && t - last_writeoff >= 200) {
			written_off += outstanding;
			outstanding = 0;
			last_writeoff = t;
		}
		while (sent < o->n && outstanding < (long)o->window) {
			unsigned long size = dgram_size(o, sent);

			fill_dgram(buf, size, sent);
			if (o->rtt)
				sent_ns[sent] = now_ns();
			if (sendto(fd, buf, size, 0, (const struct sockaddr *)&o->relay,
				   o->relay_len) < 0) {
				if (errno == ENOBUFS || errno == EAGAIN)
					break;
				die(EXIT_USAGE, "sendto %s: %s", o->relay_str, strerror(errno));
			}
			sent++;
			outstanding++;
		}
		if (sent == o->n && t - last_reply >= 2000 && t - last_writeoff >= 2000)
			break;	/* the rest is lost */

		struct pollfd pfd = { fd, POLLIN, 0 };

		if (poll(&pfd, 1, 50) <= 0)
			continue;

		socklen_t flen = sizeof(from);

		n = recvfrom(fd, rbuf, sizeof(rbuf), 0, (struct sockaddr *)&from, &flen);
		if (n < 0 || (o->have_token && (!from_relay(o, &from) || is_token(o, rbuf, n) ||
						is_nsok(rbuf, n))))
			continue;

		uint64_t seq;

		if (n < HDR_BYTES || memcmp(rbuf, magic, 4)) {
			bad++;
			continue;
		}
		memcpy(&seq, rbuf + 4, 8);
		if (seq < sent)
			fill_dgram(buf, dgram_size(o, seq), seq);
		if (seq >= sent || (unsigned long)n != dgram_size(o, seq) || memcmp(buf, rbuf, n)) {
			bad++;
			continue;
		}
		if (seen[seq]) {
			dup++;
			continue;
		}
		seen[seq] = 1;
		if (o->rtt)
			rtt_us[nrtt++] = (now_ns() - sent_ns[seq]) / 1000;
		recvd++;
		last_reply = now_ms();
	}
	free(seen);
	if (o->rtt)
		print_rtt(rtt_us, nrtt);
	free(sent_ns);
	free(rtt_us);
	printf("sent %lu recv %lu lost %lu bad %lu dup %lu\n", sent, recvd, o->n - recvd, bad,
	       dup);
	if (bad || (double)(o->n - recvd) > o->max_loss * o->n)
		die(EXIT_LOSS, "%lu of %lu datagrams lost, %lu corrupted", o->n - recvd, o->n, bad);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: nsudp --relay IP:PORT [--token HEX32] [--bind IP:PORT] [--send N]\n"
"       nsudp --echo --bind IP:PORT   (a plain UDP echo server)\n"
"             [--size S|MIN-MAX] [--echo] [--window W] [--rtt] [--timeout SEC]\n"
"             [--idle SEC] [--max-loss PCT]\n"
"Sends the token to the relay every 200 ms until \"NSOK\" (without --token:\n"
"a plain UDP port, at once), then sends N datagrams of S bytes (or of sizes\n"
"from MIN to MAX) and checks their echoes, or (--echo) echoes what arrives.\n"
"--rtt: one at a time, and the round trips' p50/p99 in microseconds.\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "relay", required_argument, NULL, 'r' },
		{ "token", required_argument, NULL, 'T' },
		{ "bind", required_argument, NULL, 'b' },
		{ "send", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "echo", no_argument, NULL, 'e' },
		{ "window", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "idle", required_argument, NULL, 'i' },
		{ "max-loss", required_argument, NULL, 'l' },
		{ "rtt", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = { .n = ~0UL, .size = 512, .window = 32, .timeout_s = 30, .idle_s = 5 };
	int c, fd;

	while ((c = getopt_long(argc, argv, "r:T:b:n:s:ew:t:i:l:Rh", lopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.relay_str = optarg;
			if (ns_parse_sockaddr(optarg, 0, &o.relay, &o.relay_len))
				die(EXIT_USAGE, "bad --relay address '%s'", optarg);
			break;
		case 'T':
			if (ns_unhex(optarg, o.token, TOKEN_BYTES))
				die(EXIT_USAGE, "bad --token '%s' (32 hex digits)", optarg);
			o.have_token = 1;
			break;
		case 'b':
			if (ns_parse_sockaddr(optarg, 0, &o.src, &o.src_len))
				die(EXIT_USAGE, "bad --bind address '%s'", optarg);
			break;
		case 'n': o.n = strtoul(optarg, NULL, 10); break;
		case 's': {
			char *end;

			o.size = strtoul(optarg, &end, 10);
			o.size_max = *end == '-' ? strtoul(end + 1, NULL, 10) : o.size;
			break;
		}
		case 'R': o.rtt = 1; o.window = 1; break;
		case 'e': o.echo = 1; break;
		case 'w': o.window = strtoul(optarg, NULL, 10); break;
		case 't': o.timeout_s = atoi(optarg); break;
		case 'i': o.idle_s = atoi(optarg); break;
		case 'l': o.max_loss = atof(optarg) / 100; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc || (!o.relay_str && !(o.echo && !o.have_token && o.src_len))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.n == ~0UL)	/* no --send: 100 datagrams, or echo until idle */
		o.n = o.echo ? 0 : 100;
	if (!o.size_max)
		o.size_max = o.size;	/* no --size: the default, fixed */
	if (o.size < HDR_BYTES || o.size > MAX_SIZE || o.size_max < o.size || o.size_max > MAX_SIZE)
		die(EXIT_USAGE, "--size must be %d..%d, or MIN-MAX in that range", HDR_BYTES,
		    MAX_SIZE);
	if (o.timeout_s <= 0 || o.idle_s <= 0 || o.window == 0)
		die(EXIT_USAGE, "--timeout, --idle and --window must be positive");
	if (o.src_len && o.relay_str && o.src.ss_family != o.relay.ss_family)
		die(EXIT_USAGE, "--bind and --relay are of different address families");

	fd = socket(o.relay_str ? o.relay.ss_family : o.src.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(EXIT_USAGE, "socket: %s", strerror(errno));
	/* room for a burst (a tunnel that was set up while datagrams waited) */
	int rcvbuf = 4 << 20;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (o.src_len && bind(fd, (struct sockaddr *)&o.src, o.src_len) < 0)
		die(EXIT_USAGE, "bind: %s", strerror(errno));
	return o.echo ? run_echo(&o, fd) : run_sender(&o, fd);
}
