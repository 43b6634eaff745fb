// SPDX-License-Identifier: GPL-2.0
/*
 * nstap: capture and inject TCP/UDP payload on an interface of a test
 * namespace (run it with `ip netns exec NS nstap ...`), for the security
 * tests: does a tunnel hide what it carries, does it survive a forged
 * segment? One AF_PACKET socket, no libpcap, no tcpdump.
 *
 *   nstap capture -i IFACE [-p tcp|udp] [--port N] [--host IP] -o FILE
 *                 [-t SECONDS] [--until-file PATH]
 *       Writes the L4 payload of every IPv4/IPv6 TCP or UDP packet on IFACE
 *       that matches (either port is N, either address is IP), both
 *       directions, concatenated in capture order, to FILE. Stops after
 *       SECONDS, when PATH exists, or on SIGTERM/SIGINT (all exit 0); prints
 *       "nstap: capturing on IFACE" when the socket is bound (wait for it
 *       before starting the traffic) and at the end
 *       "nstap: N packets, N payload bytes, N dropped" on stderr.
 *       Segments merged by GRO/TSO arrive as one large packet: their payload
 *       is complete all the same. Retransmissions appear twice; IPv4
 *       fragments after the first are not reassembled (skipped).
 *
 *   nstap samples CONTENT CAPTURE [-n 200] [-l 32]
 *       Takes N samples of L bytes of CONTENT at evenly spaced offsets (the
 *       first at 0, the last at the end) and prints "K of N samples found":
 *       how many appear verbatim anywhere in CAPTURE. Use random content
 *       (head -c 1M /dev/urandom) so that a sample is found only where the
 *       content itself went through in clear.
 *
 *   nstap inject -i IFACE --from IP:PORT --to IP:PORT (--hex HEX | --file F)
 *                [--rst] [--wait SECONDS] [--learn from|to|any]
 *       Sniffs IFACE for the next segment of that TCP connection in either
 *       direction (plus those already queued behind it: the most recent
 *       wins), learns the sequence numbers, the MAC addresses and the
 *       timestamps from it, and sends ONE forged segment FROM -> TO on IFACE:
 *       PSH|ACK with the payload, or RST|ACK with --rst. Prints
 *       "nstap: sniffing on IFACE" when ready (the connection needs a segment
 *       after that: send something on it) and what it sent on stderr.
 *       Addresses are as they appear on IFACE (after NAT if any), and IFACE
 *       must be where the FROM -> TO packets leave towards TO: the forged
 *       frame goes out of IFACE. Exit 0 sent, 1 no segment of the
 *       connection within --wait SECONDS (default 10).
 *       --learn from (to) takes the numbers only from segments FROM (TO)
 *       sends, so that a test covers both ways of working them out.
 *
 * Usage and local errors exit with status 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "tool.h"

#include "bytes.h"
#include "pkt.h"
#include "util.h"

#define EXIT_TIMEOUT	1
#define EXIT_USAGE	2

#define FRAME_BYTES	(256 * 1024)	/* > the largest GRO/TSO frame (64 KiB) */
#define RCVBUF_BYTES	(32 << 20)	/* socket buffer: a capture must not drop */
#define POLL_MS		100		/* how often capture checks --until-file */
#define BATCH_FRAMES	256		/* frames read between two looks at the clock */
#define DRAIN_S		1.0		/* at most this long for the frames queued at the stop */
#define VLAN_HLEN	4
#define TCP_HLEN	20		/* without options */
#define TCPOLEN_TS_PAD	12		/* NOP NOP kind len TSval TSecr */
#define TCPOPT_TS	8		/* RFC 7323 3 */
#define FORGED_TTL	64
#define FORGED_WIN	0xffff		/* before a FROM -> TO segment told us */

/* One IPv4/IPv6 TCP/UDP frame read off the packet socket. */
struct frame {
	const __u8 *eth;		/* Ethernet header, NULL on a raw-IP device */
	const __u8 *ip;
	size_t ip_len;			/* bytes of the IP packet in the buffer */
	struct ns_pkt_info pi;
	const __u8 *payload;
	size_t payload_len;		/* clipped to what the buffer holds */
};

/* The interface a packet socket is bound to. */
struct tap {
	int fd;
	int ifindex;
	int link_hlen;			/* 14 (Ethernet) or 0 (raw IP: tun, wireguard) */
	int mtu;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	stop_flag = sig;
}

/*
 * A packet socket on IFACE that sees both directions. It is opened with
 * protocol 0 (receives nothing) and bound with ETH_P_ALL, so no packet of
 * another interface slips in before the bind.
 */
static int tap_open(struct tap *t, const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	int size = RCVBUF_BYTES;
	struct ifreq ifr = { 0 };
	int err;

	t->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (t->fd < 0)
		return -errno;
	if (strlen(ifname) >= sizeof(ifr.ifr_name)) {
		err = -ENODEV;
		goto fail;
	}
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(t->fd, SIOCGIFINDEX, &ifr) < 0)
		goto fail_errno;
	t->ifindex = ifr.ifr_ifindex;
	if (ioctl(t->fd, SIOCGIFMTU, &ifr) < 0)
		goto fail_errno;
	t->mtu = ifr.ifr_mtu;
	if (ioctl(t->fd, SIOCGIFHWADDR, &ifr) < 0)
		goto fail_errno;
	switch (ifr.ifr_hwaddr.sa_family) {
	case ARPHRD_ETHER:
	case ARPHRD_LOOPBACK:
		t->link_hlen = ETH_HLEN;
		break;
	case ARPHRD_NONE:
		t->link_hlen = 0;
		break;
	default:
		err = -EPROTONOSUPPORT;
		goto fail;
	}
	/* As root the limit of rmem_max does not apply; otherwise take what we get. */
	if (setsockopt(t->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = t->ifindex;
	if (bind(t->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		goto fail_errno;
	return 0;

fail_errno:
	err = -errno;
fail:
	close(t->fd);
	t->fd = -1;
	return err;
}

/* Packets the kernel dropped on this socket since the last call. */
static unsigned int tap_drops(const struct tap *t)
{
	struct tpacket_stats st = { 0 };
	socklen_t len = sizeof(st);

	if (getsockopt(t->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0)
		return 0;
	return st.tp_drops;
}

/*
 * Parse a frame of len bytes into f: 0, or -EINVAL when it is not IPv4/IPv6
 * TCP/UDP (or an IPv4 fragment without the L4 header).
 */
static int frame_parse(const struct tap *t, const __u8 *buf, size_t len, struct frame *f)
{
	size_t off = t->link_hlen, tot, end;
	__u16 type;

	memset(f, 0, sizeof(*f));
	if (t->link_hlen) {
		if (len < ETH_HLEN)
			return -EINVAL;
		f->eth = buf;
		type = ns_get16(buf + 12);
		if (type == ETH_P_8021Q && len >= ETH_HLEN + VLAN_HLEN) {
			type = ns_get16(buf + 16);
			off += VLAN_HLEN;
		}
		if (type != ETH_P_IP && type != ETH_P_IPV6)
			return -EINVAL;
	}
	if (len <= off)
		return -EINVAL;
	f->ip = buf + off;
	f->ip_len = len - off;
	if (ns_pkt_parse(f->ip, f->ip_len, &f->pi) < 0)
		return -EINVAL;

	/* The IP length says where the payload ends (a frame may be padded);
	 * an IPv6 payload length of 0 (BIG TCP) leaves the buffer's end. */
	if (f->pi.family == NS_AF_INET)
		tot = ns_get16(f->ip + 2);
	else
		tot = ns_get16(f->ip + 4) ? 40 + (size_t)ns_get16(f->ip + 4) : f->ip_len;
	end = tot < f->ip_len ? tot : f->ip_len;
	if (f->pi.proto == IPPROTO_UDP) {
		size_t ulen = ns_get16(f->ip + f->pi.l4_off + 4);

		/* The first fragment of a large datagram holds only its head. */
		if (f->pi.l4_off + ulen < end)
			end = f->pi.l4_off + ulen;
	}
	if (end < f->pi.payload_off)
		return -EINVAL;
	f->payload = f->ip + f->pi.payload_off;
	f->payload_len = end - f->pi.payload_off;
	return 0;
}

static int addr_eq(const __u32 a[4], const __u32 b[4])
{
	return !memcmp(a, b, 16);
}

/* ---------------------------------------------------------------- capture */

struct capture_opts {
	const char *ifname;
	const char *out;
	const char *until_file;
	int proto;			/* IPPROTO_TCP, IPPROTO_UDP or 0: both */
	__u16 port;			/* host order, 0: any */
	__u8 host_family;		/* 0: any host */
	__u32 host[4];
	double seconds;			/* 0: until signalled or --until-file */
};

static int capture_match(const struct capture_opts *o, const struct ns_pkt_info *pi)
{
	if (o->proto && pi->proto != o->proto)
		return 0;
	if (o->port && ntohs(pi->sport) != o->port && ntohs(pi->dport) != o->port)
		return 0;
	if (o->host_family && (pi->family != o->host_family ||
			       (!addr_eq(pi->saddr, o->host) && !addr_eq(pi->daddr, o->host))))
		return 0;
	return 1;
}

/* What a capture wrote. */
struct capture_stats {
	unsigned long long packets, bytes, truncated;
};

/*
 * Write the payload of the matching frames queued on the socket, at most max
 * of them (a busy link never empties the queue). 0 when the queue is empty,
 * 1 when max frames were read.
 */
static int capture_batch(const struct capture_opts *o, const struct tap *t, FILE *out,
			 struct capture_stats *st, int max)
{
	static __u8 buf[FRAME_BYTES];

	for (int i = 0; i < max; i++) {
		ssize_t n = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		struct frame f;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n < 0)
			die(EXIT_USAGE, "recv: %s", strerror(errno));
		if ((size_t)n > sizeof(buf)) {
			st->truncated++;
			n = sizeof(buf);
		}
		if (frame_parse(t, buf, n, &f) < 0 || !capture_match(o, &f.pi))
			continue;
		st->packets++;
		st->bytes += f.payload_len;
		if (fwrite(f.payload, 1, f.payload_len, out) != f.payload_len)
			die(EXIT_USAGE, "%s: %s", o->out, strerror(errno));
	}
	return 1;
}

static int capture(const struct capture_opts *o)
{
	double deadline = o->seconds > 0 ? now_s() + o->seconds : 0, end;
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	struct capture_stats st = { 0 };
	struct tap t;
	FILE *out;
	int err;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	out = fopen(o->out, "we");
	if (!out)
		die(EXIT_USAGE, "%s: %s", o->out, strerror(errno));
	err = tap_open(&t, o->ifname);
	if (err)
		die(EXIT_USAGE, "packet socket on %s: %s", o->ifname, strerror(-err));
	tap_drops(&t);		/* zero the counter */
	fprintf(stderr, "nstap: capturing on %s\n", o->ifname);

	while (!stop_flag) {
		struct pollfd pfd = { t.fd, POLLIN, 0 };
		int n;

		if (deadline && now_s() >= deadline)
			break;
		if (o->until_file && access(o->until_file, F_OK) == 0)
			break;
		n = poll(&pfd, 1, POLL_MS);
		if (n < 0 && errno != EINTR)
			die(EXIT_USAGE, "poll: %s", strerror(errno));
		if (n > 0)
			capture_batch(o, &t, out, &st, BATCH_FRAMES);
	}
	/* What was on the wire before the stop is queued still: take it too. */
	end = now_s() + DRAIN_S;
	while (capture_batch(o, &t, out, &st, BATCH_FRAMES) && now_s() < end)
		;
	if (fclose(out) != 0)
		die(EXIT_USAGE, "%s: %s", o->out, strerror(errno));
	fprintf(stderr, "nstap: %llu packets, %llu payload bytes, %u dropped%s\n",
		st.packets, st.bytes, tap_drops(&t), st.truncated ? ", some truncated" : "");
	close(t.fd);
	return 0;
}

/* ---------------------------------------------------------------- samples */

/* The whole of a file in a malloc'ed buffer (a byte more: never NULL). */
static __u8 *slurp(const char *path, size_t *len)
{
	size_t cap = 1 << 20, n = 0;
	__u8 *buf = malloc(cap + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		die(EXIT_USAGE, "%s: %s", path, strerror(errno));
	if (!buf)
		die(EXIT_USAGE, "out of memory");
	while ((r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(EXIT_USAGE, "%s: %s", path, strerror(errno));
		n += r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			if (!buf)
				die(EXIT_USAGE, "out of memory");
		}
	}
	close(fd);
	*len = n;
	return buf;
}

static int samples(const char *content_path, const char *capture_path,
		   unsigned long n, unsigned long l)
{
	size_t clen, caplen;
	__u8 *content = slurp(content_path, &clen);
	__u8 *cap = slurp(capture_path, &caplen);
	unsigned long found = 0;

	if (clen < l)
		die(EXIT_USAGE, "%s: %zu bytes, shorter than a sample (%lu)", content_path,
		    clen, l);
	for (unsigned long i = 0; i < n; i++) {
		/* Evenly spaced from the first byte to the last sample's worth. */
		size_t off = n > 1 ? (unsigned long long)(clen - l) * i / (n - 1) : 0;

		if (memmem(cap, caplen, content + off, l))
			found++;
	}
	printf("%lu of %lu samples found\n", found, n);
	free(content);
	free(cap);
	return 0;
}

/* ---------------------------------------------------------------- inject */

/* --learn: whose segments the numbers are taken from. */
enum { LEARN_ANY, LEARN_FROM, LEARN_TO };

struct inject_opts {
	const char *ifname;
	__u8 family;
	__u32 from[4], to[4];
	__be16 from_port, to_port;
	const char *from_str, *to_str;
	const __u8 *payload;
	size_t payload_len;
	int rst;
	int learn;			/* LEARN_ANY, or segments of one side only */
	double wait_s;
};

/* What the next segment FROM -> TO must carry, learnt from the latest one seen. */
struct tcp_state {
	int seen;
	int reply;			/* learnt from a TO -> FROM segment */
	__u32 seq, ack;
	__u16 win;
	int have_ts;
	__u32 tsval, tsecr;
	__u8 src_mac[ETH_ALEN], dst_mac[ETH_ALEN];
};

/* The TSval/TSecr of a TCP header, if it has the option. */
static int tcp_ts(const __u8 *tcp, size_t hlen, __u32 *tsval, __u32 *tsecr)
{
	size_t i = TCP_HLEN;

	while (i < hlen) {
		if (tcp[i] == 0)		/* end of options */
			break;
		if (tcp[i] == 1) {		/* NOP */
			i++;
			continue;
		}
		if (i + 1 >= hlen || tcp[i + 1] < 2 || i + tcp[i + 1] > hlen)
			break;
		if (tcp[i] == TCPOPT_TS && tcp[i + 1] == 10) {
			*tsval = ns_get32(tcp + i + 2);
			*tsecr = ns_get32(tcp + i + 6);
			return 1;
		}
		i += tcp[i + 1];
	}
	return 0;
}

/*
 * Learn from one segment of the connection (0), or -EINVAL when the frame is
 * not one. A FROM -> TO segment: our seq is its seq plus what it occupies,
 * our ack its ack. A TO -> FROM segment: our seq is its ack, our ack its seq
 * plus what it occupies (RFC 9293 3.4: SYN and FIN take one each).
 */
static int state_learn(const struct inject_opts *o, const struct frame *f,
		       struct tcp_state *s)
{
	const struct ns_pkt_info *pi = &f->pi;
	const __u8 *tcp = f->ip + pi->l4_off;
	__u32 seq_end, ack, tsval, tsecr;
	int fwd, ts;

	if (pi->proto != IPPROTO_TCP || pi->family != o->family)
		return -EINVAL;
	if (addr_eq(pi->saddr, o->from) && addr_eq(pi->daddr, o->to) &&
	    pi->sport == o->from_port && pi->dport == o->to_port)
		fwd = 1;
	else if (addr_eq(pi->saddr, o->to) && addr_eq(pi->daddr, o->from) &&
		 pi->sport == o->to_port && pi->dport == o->from_port)
		fwd = 0;
	else
		return -EINVAL;
	if ((o->learn == LEARN_FROM && !fwd) || (o->learn == LEARN_TO && fwd))
		return -EINVAL;
	/* An RST ends the connection; there is nothing to learn from it. */
	if (pi->tcp_flags & NS_TCP_RST)
		return -EINVAL;

	seq_end = pi->seq + f->payload_len + !!(pi->tcp_flags & NS_TCP_SYN) +
		  !!(pi->tcp_flags & NS_TCP_FIN);
	ack = ns_get32(tcp + 8);
	ts = tcp_ts(tcp, pi->payload_off - pi->l4_off, &tsval, &tsecr);
	s->reply = !fwd;
	s->have_ts = ts;
	if (fwd) {
		s->seq = seq_end;
		s->ack = ack;
		s->win = ns_get16(tcp + 14);
		s->tsval = tsval;
		s->tsecr = tsecr;
	} else {
		s->seq = ack;
		s->ack = seq_end;
		if (!s->seen)
			s->win = FORGED_WIN;
		/* PAWS (RFC 7323 5) takes a TSval equal to the last one it saw. */
		s->tsval = tsecr;
		s->tsecr = tsval;
	}
	if (f->eth) {
		memcpy(s->src_mac, f->eth + (fwd ? 6 : 0), ETH_ALEN);
		memcpy(s->dst_mac, f->eth + (fwd ? 0 : 6), ETH_ALEN);
	}
	s->seen = 1;
	return 0;
}

/* Ethernet (if the device has it) + IPv4/IPv6 + TCP + payload; the frame length. */
static size_t forge(const struct tap *t, const struct inject_opts *o,
		    const struct tcp_state *s, __u8 *buf)
{
	size_t ip_hlen = o->family == NS_AF_INET ? 20 : 40;
	size_t tcp_hlen = TCP_HLEN + (s->have_ts ? TCPOLEN_TS_PAD : 0);
	size_t l4_len = tcp_hlen + o->payload_len;
	__u8 *ip = buf + t->link_hlen, *tcp = ip + ip_hlen;

	memset(buf, 0, t->link_hlen + ip_hlen + tcp_hlen);
	if (t->link_hlen) {
		memcpy(buf, s->dst_mac, ETH_ALEN);
		memcpy(buf + 6, s->src_mac, ETH_ALEN);
		ns_put16(buf + 12, o->family == NS_AF_INET ? ETH_P_IP : ETH_P_IPV6);
	}
	if (o->family == NS_AF_INET) {
		ip[0] = 0x45;
		ns_put16(ip + 2, ip_hlen + l4_len);
		ns_put16(ip + 4, rand() & 0xffff);
		ns_put16(ip + 6, 0x4000);		/* DF */
		ip[8] = FORGED_TTL;
		ip[9] = IPPROTO_TCP;
		memcpy(ip + 12, o->from, 4);
		memcpy(ip + 16, o->to, 4);
	} else {
		ip[0] = 0x60;
		ns_put16(ip + 4, l4_len);
		ip[6] = IPPROTO_TCP;
		ip[7] = FORGED_TTL;
		memcpy(ip + 8, o->from, 16);
		memcpy(ip + 24, o->to, 16);
	}
	memcpy(tcp, &o->from_port, 2);
	memcpy(tcp + 2, &o->to_port, 2);
	ns_put32(tcp + 4, s->seq);
	ns_put32(tcp + 8, s->ack);
	tcp[12] = (tcp_hlen / 4) << 4;
	tcp[13] = o->rst ? NS_TCP_RST | NS_TCP_ACK : NS_TCP_PSH | NS_TCP_ACK;
	ns_put16(tcp + 14, s->win);
	if (s->have_ts) {
		tcp[20] = 1;
		tcp[21] = 1;
		tcp[22] = TCPOPT_TS;
		tcp[23] = 10;
		ns_put32(tcp + 24, s->tsval);
		ns_put32(tcp + 28, s->tsecr);
	}
	if (o->payload_len)
		memcpy(tcp + tcp_hlen, o->payload, o->payload_len);
	ns_pkt_csum_fill(ip, ip_hlen + l4_len);
	return t->link_hlen + ip_hlen + l4_len;
}

static int inject(const struct inject_opts *o)
{
	static __u8 buf[FRAME_BYTES];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	double deadline = now_s() + o->wait_s;
	struct tcp_state s = { 0 };
	struct tap t;
	size_t len;
	int err;

	err = tap_open(&t, o->ifname);
	if (err)
		die(EXIT_USAGE, "packet socket on %s: %s", o->ifname, strerror(-err));
	if (o->payload_len + (o->family == NS_AF_INET ? 20 : 40) + TCP_HLEN + TCPOLEN_TS_PAD >
	    (size_t)t.mtu)
		die(EXIT_USAGE, "a payload of %zu bytes does not fit the MTU of %s (%d)",
		    o->payload_len, o->ifname, t.mtu);
	fprintf(stderr, "nstap: sniffing on %s for %s > %s\n", o->ifname, o->from_str,
		o->to_str);

	/* Wait for the first segment of the connection, then take what is
	 * queued behind it (a batch: a busy link never empties the queue):
	 * the most recent one wins. */
	while (!s.seen) {
		double left = deadline - now_s();
		struct pollfd pfd = { t.fd, POLLIN, 0 };
		int n;

		if (left <= 0)
			die(EXIT_TIMEOUT, "no segment of %s <> %s on %s within %g s",
			    o->from_str, o->to_str, o->ifname, o->wait_s);
		n = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (n < 0 && errno != EINTR)
			die(EXIT_USAGE, "poll: %s", strerror(errno));
		for (int i = 0; i < BATCH_FRAMES; i++) {
			ssize_t r = recv(t.fd, buf, sizeof(buf), MSG_DONTWAIT);
			struct frame f;

			if (r < 0)
				break;
			if (frame_parse(&t, buf, r, &f) == 0)
				state_learn(o, &f, &s);
		}
	}

	len = forge(&t, o, &s, buf);
	sll.sll_ifindex = t.ifindex;
	sll.sll_protocol = htons(o->family == NS_AF_INET ? ETH_P_IP : ETH_P_IPV6);
	sll.sll_halen = ETH_ALEN;
	memcpy(sll.sll_addr, s.dst_mac, ETH_ALEN);
	if (sendto(t.fd, buf, len, 0, (struct sockaddr *)&sll, sizeof(sll)) != (ssize_t)len)
		die(EXIT_USAGE, "send on %s: %s", o->ifname, strerror(errno));
	fprintf(stderr, "nstap: sent %s %s > %s seq %u ack %u win %u%s bytes %zu "
		"(numbers from a %s segment)\n", o->rst ? "RST|ACK" : "PSH|ACK",
		o->from_str, o->to_str, s.seq, s.ack, s.win, s.have_ts ? " ts" : "",
		o->rst ? 0 : o->payload_len, s.reply ? "TO > FROM" : "FROM > TO");
	close(t.fd);
	return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
"usage: nstap capture -i IFACE [-p tcp|udp] [--port N] [--host IP] -o FILE\n"
"                     [-t SECONDS] [--until-file PATH]\n"
"       nstap samples CONTENT CAPTURE [-n N] [-l BYTES]\n"
"       nstap inject -i IFACE --from IP:PORT --to IP:PORT (--hex HEX | --file F)\n"
"                    [--rst] [--wait SECONDS] [--learn from|to|any]\n"
"capture  writes the TCP/UDP payload seen on IFACE (both directions) to FILE\n"
"         until SECONDS passed, PATH exists or SIGTERM/SIGINT\n"
"samples  counts how many of N (200) samples of BYTES (32) bytes, evenly\n"
"         spaced in CONTENT, appear in CAPTURE: \"K of N samples found\"\n"
"inject   learns the sequence numbers of a TCP connection from its next\n"
"         segment on IFACE and sends one forged PSH|ACK (or RST|ACK) segment\n"
"         FROM -> TO out of IFACE; exit 1 if no segment within SECONDS (10)\n"
"Run it in the namespace of IFACE: ip netns exec NS nstap ...\n");
}

static const struct option lopts[] = {
	{ "interface", required_argument, NULL, 'i' },
	{ "proto", required_argument, NULL, 'p' },
	{ "port", required_argument, NULL, 'P' },
	{ "host", required_argument, NULL, 'H' },
	{ "output", required_argument, NULL, 'o' },
	{ "time", required_argument, NULL, 't' },
	{ "until-file", required_argument, NULL, 'u' },
	{ "count", required_argument, NULL, 'n' },
	{ "length", required_argument, NULL, 'l' },
	{ "from", required_argument, NULL, 'f' },
	{ "to", required_argument, NULL, 'T' },
	{ "hex", required_argument, NULL, 'x' },
	{ "file", required_argument, NULL, 'F' },
	{ "rst", no_argument, NULL, 'r' },
	{ "wait", required_argument, NULL, 'w' },
	{ "learn", required_argument, NULL, 'L' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

static double parse_seconds(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0))
		die(EXIT_USAGE, "bad %s '%s' (seconds > 0)", what, s);
	return v;
}

static unsigned long parse_count(const char *s, const char *what)
{
	__u32 v;

	if (ns_parse_u32(s, &v) || v == 0)
		die(EXIT_USAGE, "bad %s '%s'", what, s);
	return v;
}

/* An option of another command (the table is shared). */
static void not_for(const char *cmd, char **argv)
{
	die(EXIT_USAGE, "%s does not apply to %s (see --help)", argv[optind - 1], cmd);
}

static int main_capture(int argc, char **argv)
{
	struct capture_opts o = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "i:p:o:t:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 'p':
			if (!strcmp(optarg, "tcp"))
				o.proto = IPPROTO_TCP;
			else if (!strcmp(optarg, "udp"))
				o.proto = IPPROTO_UDP;
			else
				die(EXIT_USAGE, "bad -p '%s' (tcp or udp)", optarg);
			break;
		case 'P':
			if (ns_parse_port(optarg, &o.port))
				die(EXIT_USAGE, "bad --port '%s'", optarg);
			break;
		case 'H':
			if (ns_parse_addr(optarg, &o.host_family, o.host))
				die(EXIT_USAGE, "bad --host '%s'", optarg);
			break;
		case 'o': o.out = optarg; break;
		case 't': o.seconds = parse_seconds(optarg, "-t"); break;
		case 'u': o.until_file = optarg; break;
		case 'h': usage(stdout); return 0;
		case '?': usage(stderr); return EXIT_USAGE;
		default: not_for("capture", argv); break;
		}
	}
	if (optind != argc || !o.ifname || !o.out) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return capture(&o);
}

static int main_samples(int argc, char **argv)
{
	unsigned long n = 200, l = 32;
	int c;

	while ((c = getopt_long(argc, argv, "n:l:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': n = parse_count(optarg, "-n"); break;
		case 'l': l = parse_count(optarg, "-l"); break;
		case 'h': usage(stdout); return 0;
		case '?': usage(stderr); return EXIT_USAGE;
		default: not_for("samples", argv); break;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return samples(argv[optind], argv[optind + 1], n, l);
}

/* --from / --to: "IP:PORT" or "[IPv6]:PORT". */
static void parse_endpoint(const char *s, const char *what, __u8 *family, __u32 addr[4],
			   __be16 *port)
{
	__u16 p;

	if (ns_parse_hostport(s, family, addr, &p))
		die(EXIT_USAGE, "bad %s '%s' (IP:PORT or [IPv6]:PORT)", what, s);
	*port = htons(p);
}

static int main_inject(int argc, char **argv)
{
	struct inject_opts o = { .wait_s = 10 };
	const char *hex = NULL, *file = NULL;
	__u8 to_family = 0, *payload = NULL;
	size_t len = 0;
	int c;

	while ((c = getopt_long(argc, argv, "i:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 'f':
			o.from_str = optarg;
			parse_endpoint(optarg, "--from", &o.family, o.from, &o.from_port);
			break;
		case 'T':
			o.to_str = optarg;
			parse_endpoint(optarg, "--to", &to_family, o.to, &o.to_port);
			break;
		case 'x': hex = optarg; break;
		case 'F': file = optarg; break;
		case 'r': o.rst = 1; break;
		case 'w': o.wait_s = parse_seconds(optarg, "--wait"); break;
		case 'L':
			if (!strcmp(optarg, "any"))
				o.learn = LEARN_ANY;
			else if (!strcmp(optarg, "from"))
				o.learn = LEARN_FROM;
			else if (!strcmp(optarg, "to"))
				o.learn = LEARN_TO;
			else
				die(EXIT_USAGE, "bad --learn '%s' (from, to or any)", optarg);
			break;
		case 'h': usage(stdout); return 0;
		case '?': usage(stderr); return EXIT_USAGE;
		default: not_for("inject", argv); break;
		}
	}
	/* One payload, or none with --rst. */
	if (optind != argc || !o.ifname || !o.from_str || !o.to_str ||
	    !!hex + !!file + o.rst != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.family != to_family)
		die(EXIT_USAGE, "--from and --to are of different address families");
	if (hex) {
		len = strlen(hex) / 2;
		payload = malloc(len + 1);
		if (!len || !payload || ns_unhex(hex, payload, len))
			die(EXIT_USAGE, "bad --hex '%s' (an even number of hex digits)", hex);
	} else if (file) {
		payload = slurp(file, &len);
	}
	o.payload = payload;
	o.payload_len = len;
	c = inject(&o);
	free(payload);
	return c;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	srand(getpid() ^ (unsigned int)(now_s() * 1e6));
	if (!strcmp(cmd, "capture"))
		return main_capture(argc - 1, argv + 1);
	if (!strcmp(cmd, "samples"))
		return main_samples(argc - 1, argv + 1);
	if (!strcmp(cmd, "inject"))
		return main_inject(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return EXIT_USAGE;
}
