// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pure helpers of the agent, without I/O: reconnect backoff, the UDP
 * datagram framing of tunnels, socket address formatting and comparison,
 * the words for the broker's error codes, and the sizing of tunnel pools
 * (client rate, target). Unit tested in test/unit/test_agent_util.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "agent.h"
#include "util.h"

int agent_udp_frame_hdr(__u8 hdr[AGENT_UDP_FRAME_HDR], size_t len)
{
	if (len > AGENT_UDP_MAX)
		return -EMSGSIZE;
	hdr[0] = len >> 8;
	hdr[1] = len & 0xff;
	return 0;
}

int agent_udp_frame(__u8 *out, size_t cap, const void *data, size_t len)
{
	if (len > AGENT_UDP_MAX)
		return -EMSGSIZE;
	if (cap < AGENT_UDP_FRAME_HDR + len)
		return -ENOSPC;
	agent_udp_frame_hdr(out, len);
	if (len)
		memcpy(out + AGENT_UDP_FRAME_HDR, data, len);
	return AGENT_UDP_FRAME_HDR + len;
}

size_t agent_udp_unframe(const __u8 *buf, size_t len, const __u8 **data, size_t *dlen)
{
	size_t n;

	if (len < AGENT_UDP_FRAME_HDR)
		return 0;
	n = (size_t)buf[0] << 8 | buf[1];
	if (len < AGENT_UDP_FRAME_HDR + n)
		return 0;
	*data = buf + AGENT_UDP_FRAME_HDR;
	*dlen = n;
	return AGENT_UDP_FRAME_HDR + n;
}

void agent_sa_ip(const struct sockaddr_storage *ss, __u8 *family, __u32 addr[4], __be16 *port)
{
	ns_sockaddr_split(ss, family, addr, port);
	if (*family == AF_INET6 && addr[0] == 0 && addr[1] == 0 && addr[2] == htonl(0xffff)) {
		*family = AF_INET;
		addr[0] = addr[3];
		addr[1] = addr[2] = addr[3] = 0;
	}
}

const char *agent_sa_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[NS_ADDRSTRLEN];
	__u32 addr[4];
	__be16 port;
	__u8 family;

	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) {
		snprintf(buf, len, "?");
		return buf;
	}
	agent_sa_ip(ss, &family, addr, &port);
	ns_addr_str(family, addr, ip, sizeof(ip));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, ntohs(port));
	return buf;
}

bool agent_sa_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	__u32 aa[4], ba[4];
	__u8 af, bf;
	__be16 ap, bp;

	if ((a->ss_family != AF_INET && a->ss_family != AF_INET6) ||
	    (b->ss_family != AF_INET && b->ss_family != AF_INET6))
		return false;
	agent_sa_ip(a, &af, aa, &ap);
	agent_sa_ip(b, &bf, ba, &bp);
	return af == bf && !memcmp(aa, ba, sizeof(aa));
}

bool agent_sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	__u32 aa[4], ba[4];
	__u8 af, bf;
	__be16 ap, bp;

	if (!agent_sa_same_ip(a, b))
		return false;
	agent_sa_ip(a, &af, aa, &ap);
	agent_sa_ip(b, &bf, ba, &bp);
	return ap == bp;
}

const char *agent_err_text(__u32 code)
{
	switch (code) {
	case NS_ERR_MALFORMED:
		return "malformed message";
	case NS_ERR_UNSUPPORTED:
		return "not supported";
	case NS_ERR_AUTH:
		return "wrong name or secret";
	case NS_ERR_NOT_FOUND:
		return "no such service, or its agent is offline";
	case NS_ERR_DENIED:
		return "denied by ACL";
	case NS_ERR_TIMEOUT:
		return "negotiation timed out";
	case NS_ERR_NO_RELAY:
		return "no relay available";
	case NS_ERR_REJECTED:
		return "refused by the provider";
	case NS_ERR_INTERNAL:
		return "broker internal error";
	case NS_ERR_DUPLICATE:
		return "another agent logged in with this name";
	case NS_ERR_BUSY:
		return "every relay is busy";
	case NS_ERR_RETRY:
		return "replaced by a retry";
	case NS_ERR_LIMIT:
		return "refused by a broker limit";
	default:
		return "unknown error";
	}
}

/* ---- pool sizing ---- */

#define NS_PER_S	1000000000ull

/* Forget the slots of the seconds between r->sec and sec (a new second). */
static void rate_roll(struct agent_rate *r, __u64 sec)
{
	__u64 s;

	if (sec <= r->sec)
		return;
	if (sec - r->sec >= AGENT_RATE_SLOTS)
		memset(r->n, 0, sizeof(r->n));
	else
		for (s = r->sec + 1; s <= sec; s++)
			r->n[s % AGENT_RATE_SLOTS] = 0;
	r->sec = sec;
}

void agent_rate_add(struct agent_rate *r, __u64 now_ns)
{
	__u64 sec = now_ns / NS_PER_S;

	if (!r->last_ns) {
		memset(r->n, 0, sizeof(r->n));
		r->sec = sec;
	}
	rate_roll(r, sec);
	if (sec == r->sec)		/* the clock never runs back; if it did: not counted */
		r->n[sec % AGENT_RATE_SLOTS]++;
	r->last_ns = now_ns ? now_ns : 1;
}

__u32 agent_rate_peak(const struct agent_rate *r, __u64 now_ns)
{
	__u64 sec = now_ns / NS_PER_S, s;
	__u32 peak = 0;

	if (!r->last_ns || sec >= r->sec + AGENT_RATE_SLOTS)
		return 0;
	/* slots of seconds r->sec - SLOTS + 1 .. r->sec; only those after sec - SLOTS count */
	for (s = r->sec + 1 > AGENT_RATE_SLOTS ? r->sec + 1 - AGENT_RATE_SLOTS : 0; s <= r->sec;
	     s++)
		if (s + AGENT_RATE_SLOTS > sec && r->n[s % AGENT_RATE_SLOTS] > peak)
			peak = r->n[s % AGENT_RATE_SLOTS];
	return peak;
}

__u32 agent_pool_target(__u32 peak, __u32 setup_ms, __u64 quiet_ms, __u32 idle_s,
			__u32 bound)
{
	__u64 want;

	if (quiet_ms >= (__u64)idle_s * 1000)
		return 0;
	/* clients arriving while one tunnel is set up, rounded up, + 1 */
	want = ((__u64)peak * setup_ms + 999) / 1000 + 1;
	return want < bound ? (__u32)want : bound;
}
