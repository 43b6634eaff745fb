// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bulk: one end of a bulk TCP stream, for relay_tput.sh. Both ends of a
 * splice connect (neither listens), so iperf3 cannot run through one without
 * a forwarder at each end; this tool is the sender or the receiver of one
 * stream and either connects or listens, so the same two programs measure a
 * splice and the baselines. Unlike test/tools/nsxfer it neither generates
 * nor hashes the data: the ends cost as little CPU as iperf3's.
 *
 *   bulk --send SEC (--connect IP:PORT | --listen IP:PORT)
 *        writes 256 KiB buffers of zeros for SEC seconds, half-closes, waits
 *        for the peer's EOF; prints "sent BYTES".
 *   bulk --recv (--connect IP:PORT | --listen IP:PORT)
 *        reads until EOF, then closes; prints
 *        "recv BYTES seconds S gbit_per_s G", S from the first byte to the last.
 *
 * --listen prints "bulk: listening on ..." to stderr once it listens.
 * --timeout SEC (default 60): give up (exit 4) if the stream is not over by then,
 * counted from the start. Exit 0 success, 1 error, 4 timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../tools/tool.h"

#include "util.h"

#define BUF_BYTES	(256 * 1024)
#define EXIT_ERR	1
#define EXIT_TIMEOUT	4

static void on_alarm(int sig)
{
	static const char msg[] = "bulk: timed out\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(EXIT_TIMEOUT);
	_exit(EXIT_TIMEOUT);
}

static int open_stream(const struct sockaddr_storage *ss, socklen_t len, int listening,
		       const char *what)
{
	int fd, lfd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(EXIT_ERR, "socket: %s", strerror(errno));
	if (!listening) {
		/* A passive splice answers only once both SYNs are in. */
		if (connect(fd, (const struct sockaddr *)ss, len) < 0)
			die(EXIT_ERR, "connect %s: %s", what, strerror(errno));
		return fd;
	}
	lfd = fd;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (const struct sockaddr *)ss, len) < 0 || listen(lfd, 1) < 0)
		die(EXIT_ERR, "listen %s: %s", what, strerror(errno));
	fprintf(stderr, "bulk: listening on %s\n", what);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		die(EXIT_ERR, "accept: %s", strerror(errno));
	close(lfd);
	return fd;
}

static void do_send(int fd, double seconds)
{
	static char buf[BUF_BYTES];
	unsigned long long sent = 0;
	double stop = now_s() + seconds;
	ssize_t n;

	while (now_s() < stop) {
		n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EXIT_ERR, "send: %s", strerror(errno));
		sent += n;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		die(EXIT_ERR, "shutdown: %s", strerror(errno));
	/* Close only after the peer's EOF: an early close could reset the stream. */
	while ((n = recv(fd, buf, sizeof(buf), 0)) != 0) {
		if (n < 0 && errno != EINTR)
			die(EXIT_ERR, "recv: %s", strerror(errno));
	}
	printf("sent %llu\n", sent);
}

static void do_recv(int fd)
{
	static char buf[BUF_BYTES];
	unsigned long long got = 0;
	double first = 0, last = 0;
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EXIT_ERR, "recv: %s", strerror(errno));
		if (n == 0)
			break;
		last = now_s();
		if (!got)
			first = last;
		got += n;
	}
	if (!got || last <= first)
		die(EXIT_ERR, "received %llu bytes: nothing to time", got);
	printf("recv %llu seconds %.3f gbit_per_s %.3f\n", got, last - first,
	       got * 8 / (last - first) / 1e9);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: bulk (--send SEC | --recv) (--connect IP:PORT | --listen IP:PORT)\n"
"            [--timeout SEC]\n"
"  --send SEC     write zeros for SEC seconds, half-close, wait for EOF\n"
"  --recv         read until EOF; print bytes, seconds and Gbit/s\n"
"  --timeout SEC  give up after SEC seconds in all (default 60)\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "send", required_argument, NULL, 's' },
		{ "recv", no_argument, NULL, 'r' },
		{ "connect", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *addr = NULL;
	double seconds = 0;
	int c, sending = -1, listening = 0, timeout = 60, fd;

	while ((c = getopt_long(argc, argv, "s:rc:l:t:h", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sending = 1;
			seconds = atof(optarg);
			if (seconds <= 0)
				die(EXIT_ERR, "bad --send '%s'", optarg);
			break;
		case 'r': sending = 0; break;
		case 'c':
		case 'l':
			listening = c == 'l';
			addr = optarg;
			if (ns_parse_sockaddr(optarg, 0, &ss, &len))
				die(EXIT_ERR, "bad address '%s' (IP:PORT or [IPv6]:PORT)", optarg);
			break;
		case 't':
			timeout = atoi(optarg);
			if (timeout <= 0)
				die(EXIT_ERR, "bad --timeout '%s'", optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_ERR;
		}
	}
	if (optind != argc || sending < 0 || !addr) {
		usage(stderr);
		return EXIT_ERR;
	}
	signal(SIGALRM, on_alarm);
	alarm(timeout);
	fd = open_stream(&ss, len, listening, addr);
	if (sending)
		do_send(fd, seconds);
	else
		do_recv(fd);
	close(fd);
	return 0;
}
