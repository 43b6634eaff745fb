// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Packets the relay daemon sends itself, through IPPROTO_RAW sockets so the
 * kernel routes them and resolves the neighbour: the SYN-ACKs of the passive
 * handshake, RSTs to half-open sides, and the UDP "NSOK" readiness datagram.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "relay.h"
#include "log.h"
#include "pkt.h"

#define RELAY_TTL	64
#define UDP_OK		"NSOK"

int relay_send_open(struct relay *r)
{
	r->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r->raw4 < 0)
		return -errno;
	/* IPPROTO_RAW over IPv6 means we write the IPv6 header ourselves. */
	r->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r->raw6 < 0 && r->cfg.has6)
		return -errno;
	return 0;
}

int relay_send_ip(struct relay *r, __u8 family, const void *pkt, size_t len)
{
	struct sockaddr_storage ss = {};
	socklen_t sl;
	ssize_t n;
	int fd;

	if (family == NS_AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, (const __u8 *)pkt + 16, 4);
		sl = sizeof(*sin);
		fd = r->raw4;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, (const __u8 *)pkt + 24, 16);
		sl = sizeof(*sin6);
		fd = r->raw6;
	}
	/* Never wait for send buffer space: the daemon serves everything else
	 * from this thread. A lost SYN-ACK is answered again on the peer's
	 * retransmitted SYN; a lost RST or UDP answer is logged by the caller. */
	n = sendto(fd, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * A public port's client (side B of a public splice) is answered first and
 * proves itself with its ACK before the provider is answered and the splice
 * installed (relay_splice.c, "proving"): data it sent right behind that ACK
 * would reach no splice and wait for a retransmission timeout. So its
 * SYN-ACK offers a window of 0: it sends nothing until the provider's ACK,
 * forwarded once the splice is installed, opens the window.
 */
int relay_send_synack(struct relay *r, const struct relay_splice *sp, int side)
{
	struct ns_syn partner = sp->s.syn[!side];
	struct ns_synack_params p = {
		.family = sp->s.family,
		.ttl = RELAY_TTL,
		.mss_clamp = sp->s.family == NS_AF_INET ? r->mss4 : r->mss6,
		.relay_port = sp->s.port[side],
		.peer_port = sp->s.peer[side].port,
		.own = &sp->s.syn[side],
		.partner = &partner,
	};
	__u8 buf[128];
	ssize_t len;

	if (sp->s.pub && side == 1)
		partner.window = 0;
	memcpy(p.relay, sp->s.relay, sizeof(p.relay));
	memcpy(p.peer, sp->s.peer[side].addr, sizeof(p.peer));
	len = ns_synack_build(&p, buf, sizeof(buf));
	if (len < 0)
		return len;
	return relay_send_ip(r, sp->s.family, buf, len);
}

int relay_send_rst(struct relay *r, const struct relay_splice *sp, int side)
{
	__u8 buf[80];
	ssize_t len;

	if (!(sp->s.seen & (1 << side)))
		return 0;
	len = ns_rst_build(sp->s.family, sp->s.relay, sp->s.port[side], sp->s.peer[side].addr,
			   sp->s.peer[side].port, sp->s.syn[side].isn + 1, buf, sizeof(buf));
	if (len < 0)
		return len;
	return relay_send_ip(r, sp->s.family, buf, len);
}

int relay_send_challenge(struct relay *r, const struct ns_pkt_info *pi,
			 const struct ns_syn *syn, __u32 cookie)
{
	/* own: the client's SYN as if its ISN were cookie - 1; partner: no
	 * options, so the SYN-ACK carries none (nothing is agreed here) */
	struct ns_syn own = *syn, partner = { .isn = cookie ^ 0x5a5a5a5aU, .window = 1024 };
	struct ns_synack_params p = {
		.family = pi->family,
		.ttl = RELAY_TTL,
		.relay_port = pi->dport,
		.peer_port = pi->sport,
		.own = &own,
		.partner = &partner,
	};
	__u8 buf[128];
	ssize_t len;

	own.isn = cookie - 1;
	memcpy(p.relay, pi->daddr, sizeof(p.relay));
	memcpy(p.peer, pi->saddr, sizeof(p.peer));
	len = ns_synack_build(&p, buf, sizeof(buf));
	if (len < 0)
		return len;
	return relay_send_ip(r, pi->family, buf, len);
}

/* "NSOK" from the side's relay port: the UDP splice is established. */
int relay_send_udp_ok(struct relay *r, const struct relay_splice *sp, int side)
{
	__u8 buf[64] = {};
	size_t l3 = sp->s.family == NS_AF_INET ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	size_t len = l3 + sizeof(struct udphdr) + sizeof(UDP_OK) - 1;
	struct udphdr *uh = (struct udphdr *)(buf + l3);

	if (sp->s.family == NS_AF_INET) {
		struct iphdr *ip = (struct iphdr *)buf;

		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = RELAY_TTL;
		ip->protocol = IPPROTO_UDP;
		ip->tot_len = htons(len);
		ip->frag_off = htons(IP_DF);
		ip->saddr = sp->s.relay[0];
		ip->daddr = sp->s.peer[side].addr[0];
	} else {
		struct ip6_hdr *ip6 = (struct ip6_hdr *)buf;

		ip6->ip6_flow = htonl(6U << 28);
		ip6->ip6_plen = htons(len - l3);
		ip6->ip6_nxt = IPPROTO_UDP;
		ip6->ip6_hlim = RELAY_TTL;
		memcpy(&ip6->ip6_src, sp->s.relay, 16);
		memcpy(&ip6->ip6_dst, sp->s.peer[side].addr, 16);
	}
	uh->source = sp->s.port[side];
	uh->dest = sp->s.peer[side].port;
	uh->len = htons(len - l3);
	memcpy(uh + 1, UDP_OK, sizeof(UDP_OK) - 1);
	ns_pkt_csum_fill(buf, len);
	return relay_send_ip(r, sp->s.family, buf, len);
}
