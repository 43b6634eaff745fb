// SPDX-License-Identifier: GPL-2.0
/*
 * nsdelay: an L2 delay line in user space, for the namespace tests (netem
 * stand-in: the test kernel has no sch_netem).
 *
 *   ip netns exec D nsdelay --delay MS IFACE1 IFACE2
 *
 * Run it in a namespace holding two interfaces without addresses (veth ends
 * towards the two sides). Every frame received on one is sent out of the
 * other MS milliseconds later (decimals allowed; 0: at once), in order per
 * direction: a bridge with a fixed one-way delay, ARP and IPv6 ND included.
 * One AF_PACKET socket per interface, in promiscuous mode; our own sends
 * (PACKET_OUTGOING) are ignored. At most QUEUE_FRAMES frames (QUEUE_BYTES)
 * wait per direction: beyond that a frame is dropped and counted.
 *
 * Frames are copied as raw bytes, without their offload metadata: turn off
 * GRO/GSO/TSO and tx checksumming on all the veth ends of the path
 * (ethtool -K DEV gro off gso off tso off tx off), or the delay line sees
 * frames larger than the MTU (dropped on send) or with checksums that were
 * never filled in (dropped by the receiver).
 *
 * Prints "nsdelay: ready" on stdout when both sockets are bound; on SIGTERM
 * or SIGINT exits 0 and prints "nsdelay: forwarded N frames, dropped M" on
 * stderr (M counts the queue overflows, the failed sends and the frames the
 * kernel dropped on the sockets). Usage and local errors exit with status 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "tool.h"

#define EXIT_USAGE	2

#define FRAME_BYTES	(256 * 1024)	/* > the largest GSO frame (64 KiB, more with BIG TCP) */
#define SOCKBUF_BYTES	(4 << 20)
#define QUEUE_FRAMES	8192		/* per direction */
#define QUEUE_BYTES	(64 << 20)	/* per direction */
#define BATCH_FRAMES	64		/* frames read from a socket between two sends */
#define MAX_DELAY_MS	60000.0

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING	23	/* Linux 4.20; older ones refuse it: the pkttype check stays */
#endif

struct frame {
	int64_t due_ns;
	size_t len;
	unsigned short proto;		/* network order, as in sockaddr_ll */
	unsigned char *data;
};

/* One interface: its socket and the frames received on it, due out of the other. */
struct port {
	const char *name;
	int fd, ifindex;
	struct frame q[QUEUE_FRAMES];
	unsigned int head, count;
	size_t bytes;
};

static struct port ports[2];
static unsigned long long forwarded, dropped;
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	stop_flag = sig;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Opened with protocol 0 and bound with ETH_P_ALL: nothing of another interface slips in. */
static void port_open(struct port *p)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct packet_mreq mr = { .mr_type = PACKET_MR_PROMISC };
	int size = SOCKBUF_BYTES, one = 1;

	p->ifindex = if_nametoindex(p->name);
	if (!p->ifindex)
		die(EXIT_USAGE, "%s: %s", p->name, strerror(errno));
	p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		die(EXIT_USAGE, "packet socket: %s", strerror(errno));
	/* As root the limits of rmem_max/wmem_max do not apply; otherwise take what we get. */
	if (setsockopt(p->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(p->fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	sll.sll_ifindex = p->ifindex;
	if (bind(p->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die(EXIT_USAGE, "bind to %s: %s", p->name, strerror(errno));
	mr.mr_ifindex = p->ifindex;	/* frames for other MACs: a real NIC filters them */
	if (setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
		die(EXIT_USAGE, "promiscuous mode on %s: %s", p->name, strerror(errno));
}

/* Queue what is waiting on p's socket (at most BATCH_FRAMES) to go out at now + delay. */
static void port_read(struct port *p, int64_t delay_ns)
{
	static unsigned char buf[FRAME_BYTES];

	for (int i = 0; i < BATCH_FRAMES; i++) {
		struct sockaddr_ll sll;
		socklen_t slen = sizeof(sll);
		ssize_t n = recvfrom(p->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&sll, &slen);
		struct frame *f;

		if (n < 0)
			return;
		if (sll.sll_pkttype == PACKET_OUTGOING)
			continue;
		if ((size_t)n > sizeof(buf) || p->count == QUEUE_FRAMES ||
		    p->bytes + n > QUEUE_BYTES) {
			dropped++;
			continue;
		}
		f = &p->q[(p->head + p->count) % QUEUE_FRAMES];
		f->data = malloc(n ? n : 1);
		if (!f->data)
			die(EXIT_USAGE, "out of memory");
		memcpy(f->data, buf, n);
		f->len = n;
		f->proto = sll.sll_protocol;
		f->due_ns = now_ns() + delay_ns;
		p->count++;
		p->bytes += n;
	}
}

/*
 * Send the frames of p that are due by now out of the other port. Returns 1
 * when out's socket buffer is full: the rest waits for POLLOUT, in order.
 */
static int port_send_due(struct port *p, const struct port *out, int64_t now)
{
	while (p->count && p->q[p->head].due_ns <= now) {
		struct frame *f = &p->q[p->head];
		struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = f->proto,
					   .sll_ifindex = out->ifindex };

		if (sendto(out->fd, f->data, f->len, MSG_DONTWAIT, (struct sockaddr *)&sll,
			   sizeof(sll)) == (ssize_t)f->len)
			forwarded++;
		else if (errno == EAGAIN)
			return 1;
		else
			dropped++;	/* ENOBUFS (a qdisc's), EMSGSIZE (a GSO frame), ENETDOWN */
		p->bytes -= f->len;
		free(f->data);
		p->head = (p->head + 1) % QUEUE_FRAMES;
		p->count--;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: nsdelay --delay MS IFACE1 IFACE2\n"
"Forwards every frame received on IFACE1 out of IFACE2 and back, MS ms\n"
"(decimals allowed, 0..60000) after it arrived: a bridge with a one-way delay,\n"
"the netem stand-in. Run it in a namespace that holds both interfaces (no\n"
"addresses needed). Turn off offloads on all the veth ends of the path first:\n"
"  ethtool -K DEV gro off gso off tso off tx off\n"
"(frames are copied without their GSO/checksum metadata). Prints\n"
"\"nsdelay: ready\" once bound; on SIGTERM/SIGINT exits 0 with\n"
"\"nsdelay: forwarded N frames, dropped M\" on stderr.\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, unblocked;
	struct tpacket_stats st;
	double delay_ms = -1;
	int64_t delay_ns;
	char *end;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			delay_ms = strtod(optarg, &end);
			if (end == optarg || *end || !(delay_ms >= 0 && delay_ms <= MAX_DELAY_MS))
				die(EXIT_USAGE, "bad --delay '%s' (0..60000 ms)", optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: die(EXIT_USAGE, "bad option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (delay_ms < 0)
		die(EXIT_USAGE, "--delay MS is required (see --help)");
	if (argc - optind != 2)
		die(EXIT_USAGE, "two interfaces needed: IFACE1 IFACE2 (see --help)");
	if (!strcmp(argv[optind], argv[optind + 1]))
		die(EXIT_USAGE, "IFACE1 and IFACE2 are both '%s'", argv[optind]);
	delay_ns = (int64_t)(delay_ms * 1e6 + 0.5);

	/* The signals are let in only while in ppoll(): none is lost before it. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (int i = 0; i < 2; i++) {
		ports[i].name = argv[optind + i];
		port_open(&ports[i]);
	}
	printf("nsdelay: ready\n");
	fflush(stdout);

	while (!stop_flag) {
		struct pollfd pfd[2] = { { ports[0].fd, POLLIN, 0 }, { ports[1].fd, POLLIN, 0 } };
		int64_t now = now_ns(), next = INT64_MAX;
		struct timespec ts;

		for (int i = 0; i < 2; i++) {
			if (port_send_due(&ports[i], &ports[!i], now))
				pfd[!i].events |= POLLOUT;
			else if (ports[i].count && ports[i].q[ports[i].head].due_ns < next)
				next = ports[i].q[ports[i].head].due_ns;
		}
		if (next != INT64_MAX) {
			next = next > now ? next - now : 0;
			ts.tv_sec = next / 1000000000;
			ts.tv_nsec = next % 1000000000;
		}
		if (ppoll(pfd, 2, next == INT64_MAX ? NULL : &ts, &unblocked) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_USAGE, "poll: %s", strerror(errno));
		}
		for (int i = 0; i < 2; i++) {
			struct port *p = &ports[i];

			if (pfd[i].revents & POLLIN)
				port_read(p, delay_ns);
			if (!(pfd[i].revents & POLLERR))
				continue;
			/* ENETDOWN when the link went down: wait for it to come back */
			getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &c, &(socklen_t){ sizeof(c) });
			if (if_nametoindex(p->name) != (unsigned int)p->ifindex)
				die(EXIT_USAGE, "%s is gone", p->name);
		}
	}
	for (int i = 0; i < 2; i++) {
		socklen_t len = sizeof(st);

		if (!getsockopt(ports[i].fd, SOL_PACKET, PACKET_STATISTICS, &st, &len))
			dropped += st.tp_drops;
	}
	fprintf(stderr, "nsdelay: forwarded %llu frames, dropped %llu\n", forwarded, dropped);
	return 0;
}
