// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include "fixture.h"
#include "pkt.h"

const __u8 MAC_PEERS[6]      = { 0x02, 0, 0, 0, 0, 0x10 };
const __u8 MAC_REMOTE_DEV[6] = { 0x02, 0, 0, 0, 0, 0x20 };
const __u8 MAC_A[6]          = { 0x02, 0, 0, 0, 0, 0x01 };
const __u8 MAC_B[6]          = { 0x02, 0, 0, 0, 0, 0x02 };
const __u8 MAC_REMOTE[6]     = { 0x02, 0, 0, 0, 0, 0x03 };
const __u8 MAC_SENDER[6]     = { 0x02, 0, 0, 0, 0, 0xaa };

#define IPV4_HLEN	20
#define IPV6_HLEN	40
#define FRAG6_HLEN	8
#define TCP_HLEN	20
#define UDP_HLEN	8
#define OTHER_HLEN	8	/* bytes of a non-TCP/UDP L4 header we write */
#define ETH_HLEN	14
#define VLAN_HLEN	4

#define IPV4_DF		0x4000
#define IPV4_MF		0x2000
#define IPPROTO_FRAG6	44

#define FRAG_ID4	0x1234
#define FRAG_ID6	0x1234abcdU
#define TCP_SEQ		FIXTURE_SEQ
#define TCP_ACK_SEQ	FIXTURE_ACK_SEQ
#define VLAN_TCI_BASE	100

static void put16(__u8 *p, __u16 v)
{
	v = htons(v);
	memcpy(p, &v, 2);
}

static void put32(__u8 *p, __u32 v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static __u16 get16(const __u8 *p)
{
	__u16 v;

	memcpy(&v, p, 2);
	return ntohs(v);
}

void addr_parse(const char *s, __u32 addr[4])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) != 1 && inet_pton(AF_INET6, s, addr) != 1)
		fprintf(stderr, "fixture: bad address %s\n", s);
}

void pkt_key(const struct pkt *p, struct ns_key *key)
{
	memset(key, 0, sizeof(*key));
	addr_parse(p->src, key->saddr);
	addr_parse(p->dst, key->daddr);
	key->sport = htons(p->sport);
	key->dport = htons(p->dport);
	key->proto = p->proto;
	key->family = p->family;
}

static size_t l4_hlen(__u8 proto)
{
	return proto == IPPROTO_TCP ? TCP_HLEN : proto == IPPROTO_UDP ? UDP_HLEN :
	       OTHER_HLEN;
}

/* The whole datagram, unfragmented, with valid checksums; its length. */
static size_t datagram_build(const struct pkt *p, __u8 *ip)
{
	size_t hlen, l4len = l4_hlen(p->proto) + p->payload, i;
	__u32 src[4], dst[4];
	__u8 ttl = p->ttl ? p->ttl : 64;
	__u8 *l4;

	addr_parse(p->src, src);
	addr_parse(p->dst, dst);
	if (p->family == NS_AF_INET) {
		hlen = IPV4_HLEN + p->ip_opts;
		memset(ip, 0, hlen);
		ip[0] = 0x40 | (hlen / 4);
		ip[1] = p->tos;
		put16(ip + 2, hlen + l4len);
		put16(ip + 4, FRAG_ID4);
		put16(ip + 6, p->frag ? 0 : IPV4_DF);
		ip[8] = ttl;
		ip[9] = p->proto;
		memcpy(ip + 12, src, 4);
		memcpy(ip + 16, dst, 4);
		/* NOPs, then End of Option List (RFC 791). */
		memset(ip + IPV4_HLEN, 1, p->ip_opts);
		if (p->ip_opts)
			ip[hlen - 1] = 0;
	} else {
		hlen = IPV6_HLEN;
		memset(ip, 0, hlen);
		ip[0] = 0x60 | (p->tos >> 4);
		ip[1] = (p->tos & 0xf) << 4;
		put16(ip + 4, l4len);
		ip[6] = p->proto;
		ip[7] = ttl;
		memcpy(ip + 8, src, 16);
		memcpy(ip + 24, dst, 16);
	}
	l4 = ip + hlen;
	memset(l4, 0, l4_hlen(p->proto));
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		put16(l4, p->sport);
		put16(l4 + 2, p->dport);
	}
	if (p->proto == IPPROTO_TCP) {
		__u8 flags = p->tcp_flags ? p->tcp_flags : NS_TCP_ACK;

		put32(l4 + 4, TCP_SEQ + p->seq_off);
		if (flags & NS_TCP_ACK)
			put32(l4 + 8, TCP_ACK_SEQ + p->ack_off);
		l4[12] = (TCP_HLEN / 4) << 4;
		l4[13] = flags;
		put16(l4 + 14, 0xffff);
	} else if (p->proto == IPPROTO_UDP) {
		put16(l4 + 4, l4len);
	}
	for (i = 0; i < p->payload; i++)
		l4[l4_hlen(p->proto) + i] = (__u8)(i * 7 + 3);
	ns_pkt_csum_fill(ip, hlen + l4len);
	if (p->proto == IPPROTO_UDP && p->udp_nocsum)
		memset(l4 + 6, 0, 2);
	return hlen + l4len;
}

/*
 * Cut the datagram into its first fragment (the first PKT_FRAG_FIRST_BYTES
 * of L4 data) or the rest, as a router would: the L4 checksum stays the one
 * of the whole datagram.
 */
static size_t fragment(const struct pkt *p, __u8 *ip, size_t len)
{
	size_t hlen = p->family == NS_AF_INET ? (size_t)(ip[0] & 0xf) * 4 : IPV6_HLEN;
	size_t l4len = len - hlen, keep;
	__u8 l4[FRAME_MAX];
	int first = p->frag == PKT_FRAG_FIRST;

	memcpy(l4, ip + hlen, l4len);
	if (first)
		keep = PKT_FRAG_FIRST_BYTES;
	else
		keep = l4len - PKT_FRAG_FIRST_BYTES;
	if (p->family == NS_AF_INET) {
		put16(ip + 6, first ? IPV4_MF : PKT_FRAG_FIRST_BYTES / 8);
		put16(ip + 2, hlen + keep);
		memcpy(ip + hlen, first ? l4 : l4 + PKT_FRAG_FIRST_BYTES, keep);
		/* Only the header checksum: the L4 one covers the datagram. */
		ns_pkt_csum_fill(ip, hlen + keep);
		return hlen + keep;
	}
	/* RFC 8200 4.5: Fragment header, offset in 8-byte units << 3, M bit. */
	ip[6] = IPPROTO_FRAG6;
	put16(ip + 4, FRAG6_HLEN + keep);
	ip[hlen] = p->proto;
	ip[hlen + 1] = 0;
	put16(ip + hlen + 2, first ? 1 : PKT_FRAG_FIRST_BYTES);
	put32(ip + hlen + 4, FRAG_ID6);
	memcpy(ip + hlen + FRAG6_HLEN, first ? l4 : l4 + PKT_FRAG_FIRST_BYTES, keep);
	return hlen + FRAG6_HLEN + keep;
}

int pkt_build(const struct pkt *p, struct frame *f)
{
	const __u8 *smac = p->smac ? p->smac : MAC_SENDER;
	const __u8 *dmac = p->dmac ? p->dmac : MAC_PEERS;
	__u8 ip[FRAME_MAX];
	size_t len, off, l4, i;
	__u16 type;

	memset(f, 0, sizeof(*f));
	if ((p->family != NS_AF_INET && p->family != NS_AF_INET6) ||
	    p->vlans > 2 || p->ip_opts % 4 || p->ip_opts > 40 ||
	    (p->family == NS_AF_INET6 && p->ip_opts) ||
	    l4_hlen(p->proto) + p->payload + 128 > FRAME_MAX ||
	    (p->frag && l4_hlen(p->proto) + p->payload <= PKT_FRAG_FIRST_BYTES))
		return -1;
	len = datagram_build(p, ip);
	if (p->frag)
		len = fragment(p, ip, len);
	f->l3_len = len;

	l4 = p->family == NS_AF_INET ? (size_t)(ip[0] & 0xf) * 4 : IPV6_HLEN;
	if (p->family == NS_AF_INET6 && p->frag)
		l4 += FRAG6_HLEN;
	if (p->ihl)
		ip[0] = (ip[0] & 0xf0) | (p->ihl & 0xf);
	if (p->len_adj) {
		size_t at = p->family == NS_AF_INET ? 2 : 4;

		put16(ip + at, get16(ip + at) + p->len_adj);
	}
	if (p->doff)
		ip[l4 + 12] = p->doff << 4;
	if (p->udp_len_adj)
		put16(ip + l4 + 4, get16(ip + l4 + 4) + p->udp_len_adj);

	memcpy(f->b, dmac, 6);
	memcpy(f->b + 6, smac, 6);
	off = 12;
	for (i = 0; i < p->vlans; i++) {
		put16(f->b + off, 0x8100);
		put16(f->b + off + 2, VLAN_TCI_BASE + i);
		off += VLAN_HLEN;
	}
	type = p->ethertype ? p->ethertype :
	       p->family == NS_AF_INET ? 0x0800 : 0x86dd;
	put16(f->b + off, type);
	off += 2;
	memcpy(f->b + off, ip, len);
	f->l3_off = off;
	f->len = off + len;
	if (p->cut && p->cut < f->len)
		f->len = p->cut;
	return 0;
}

/* Namespace setup: `ip -batch` lines. */
static const char *const topology[] = {
	"link set lo up",
	"link add " DEV_PEERS " address 02:00:00:00:00:10 type veth peer name "
		DEV_REMOTE " address 02:00:00:00:00:20",
	"link set " DEV_PEERS " mtu 9000",
	"link set " DEV_REMOTE " mtu 1280",
	"link set " DEV_PEERS " up",
	"link set " DEV_REMOTE " up",
	"addr add " RELAY4 "/24 dev " DEV_PEERS,
	"addr add " RELAY6 "/64 dev " DEV_PEERS " nodad",
	"addr add 198.51.100.10/24 dev " DEV_REMOTE,
	"neigh add " PEER_A4 " lladdr 02:00:00:00:00:01 dev " DEV_PEERS " nud permanent",
	"neigh add " PEER_B4 " lladdr 02:00:00:00:00:02 dev " DEV_PEERS " nud permanent",
	"neigh add " PEER_A6 " lladdr 02:00:00:00:00:01 dev " DEV_PEERS " nud permanent",
	"neigh add " PEER_B6 " lladdr 02:00:00:00:00:02 dev " DEV_PEERS " nud permanent",
	"neigh add " REMOTE4 " lladdr 02:00:00:00:00:03 dev " DEV_REMOTE " nud permanent",
};

/* bpf_fib_lookup() answers FWD_DISABLED unless the ingress device forwards. */
static const char *const sysctls[] = {
	"/proc/sys/net/ipv4/ip_forward",
	"/proc/sys/net/ipv6/conf/all/forwarding",
};

int fixture_netns(void)
{
	FILE *ip;
	size_t i;
	int status;

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	ip = popen("ip -batch -", "w");
	if (!ip) {
		fprintf(stderr, "ip -batch: %s\n", strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(topology) / sizeof(topology[0]); i++)
		fprintf(ip, "%s\n", topology[i]);
	status = pclose(ip);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "ip -batch failed (is iproute2 installed?)\n");
		return -1;
	}
	for (i = 0; i < sizeof(sysctls) / sizeof(sysctls[0]); i++) {
		FILE *f = fopen(sysctls[i], "w");

		if (!f || fputs("1\n", f) < 0 || fclose(f)) {
			fprintf(stderr, "%s: %s\n", sysctls[i], strerror(errno));
			return -1;
		}
	}
	return 0;
}

void frame_dump(const char *what, const __u8 *b, size_t len, const __u8 *ref,
		size_t ref_len)
{
	size_t i;

	fprintf(stderr, "%s (%zu bytes):", what, len);
	for (i = 0; i < len; i++) {
		int diff = ref && (i >= ref_len || b[i] != ref[i]);

		fprintf(stderr, "%s%s%02x", i % 16 ? "" : "\n  ", diff ? "*" : " ",
			b[i]);
	}
	fprintf(stderr, "\n");
}
