/* SPDX-License-Identifier: GPL-2.0 */
/* Parsing and small helpers. All parsers are strict: 0 or -EINVAL. */
#ifndef NS_UTIL_H
#define NS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <sys/socket.h>

#define NS_ADDRSTRLEN 46

/* IPv4 or IPv6 literal; family 2 (AF_INET) or 10 (AF_INET6); IPv4 in addr[0],
 * rest zeroed; network order. */
int ns_parse_addr(const char *s, __u8 *family, __u32 addr[4]);
/* "192.0.2.1:80", "[2001:db8::1]:80"; port host order, 1..65535. */
int ns_parse_hostport(const char *s, __u8 *family, __u32 addr[4], __u16 *port);
/* "40000-40999" or "5000"; lo <= hi, 1..65535. */
int ns_parse_port_range(const char *s, __u16 *lo, __u16 *hi);
/* An address prefix: "192.0.2.0/24", "2001:db8::/32", or a bare address
 * (a /32 or /128). Host bits must be zero. */
struct ns_prefix {
	__u8 family;		/* AF_INET / AF_INET6 */
	__u8 len;		/* bits */
	__u32 addr[4];		/* network order, IPv4 in [0] */
};
int ns_prefix_parse(const char *s, struct ns_prefix *p);
/* Is family/addr (network order) inside p? */
int ns_prefix_match(const struct ns_prefix *p, __u8 family, const __u32 addr[4]);
/* Strict decimal, no sign/space/overflow. */
int ns_parse_u32(const char *s, __u32 *v);
/* A single port, 1..65535. */
int ns_parse_port(const char *s, __u16 *port);

/* inet_ntop; buf of at least NS_ADDRSTRLEN. Returns buf ("?" on bad family). */
const char *ns_addr_str(__u8 family, const __u32 addr[4], char *buf, size_t len);
int ns_addr_is_zero(const __u32 addr[4]);

__u64 ns_now_ns(void);                  /* CLOCK_MONOTONIC, same clock as bpf_ktime_get_ns */
int ns_random_bytes(void *buf, size_t len);   /* OpenSSL RAND_bytes; 0 or -EIO */
/* Retry delay after `attempt` failures in a row: min_ms doubling up to
 * max_ms, times 0.75 .. 1.25 by rnd (a random 32-bit number). */
__u32 ns_backoff_ms(unsigned int attempt, __u32 rnd, __u32 min_ms, __u32 max_ms);
void ns_hex(const void *buf, size_t len, char *out);  /* lowercase, out has 2*len+1 */
int ns_unhex(const char *s, void *buf, size_t len);   /* exactly 2*len hex digits; 0 or -EINVAL */
int ns_hexval(char c);					/* a hex digit's value, or -1 */

/* family/addr/port (network order) -> sockaddr; returns its length. */
socklen_t ns_sockaddr_make(__u8 family, const __u32 addr[4], __be16 port,
			   struct sockaddr_storage *ss);
/* sockaddr (AF_INET/AF_INET6) -> family/addr/port (network order). */
/* "IP:PORT" or "[IPv6]:PORT" into buf; returns buf. */
const char *ns_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);
void ns_sockaddr_split(const struct sockaddr_storage *ss, __u8 *family, __u32 addr[4],
		       __be16 *port);
/* The length of an AF_INET / AF_INET6 sockaddr. */
socklen_t ns_sockaddr_len(const struct sockaddr_storage *ss);
/* Its port in host order / set it (host order). */
__u16 ns_sockaddr_port(const struct sockaddr_storage *ss);
void ns_sockaddr_set_port(struct sockaddr_storage *ss, __u16 port);
/* "IP:PORT" or "[IPv6]:PORT" -> sockaddr; with port_optional a bare address
 * (port 0) is accepted too. 0 or -EINVAL. */
int ns_parse_sockaddr(const char *s, int port_optional, struct sockaddr_storage *ss,
		      socklen_t *len);

/* A non-blocking socket of type (SOCK_DGRAM, SOCK_STREAM) bound to ss
 * (IPv6: only IPv6), with SO_REUSEADDR (reuse & 1) and SO_REUSEPORT
 * (reuse & 2): its fd, or -errno. */
int ns_socket_bound(const struct sockaddr_storage *ss, int type, int reuse);

/* A token bucket as GCRA: tat_ns is when the bucket is full again (0: full). */
struct ns_gcra {
	__u64 tat_ns;
};
/* May one more request pass at now_ns, at rate per second with burst at
 * once? Takes its token if so. rate 0: always. */
bool ns_rate_allow(struct ns_gcra *g, __u32 rate, __u32 burst, __u64 now_ns);

/*
 * A bandwidth cap: bytes pay into a GCRA clock. A byte costs ps_per_byte
 * picoseconds; tat_ns may run at most burst_ns ahead of now. The relay's
 * BPF programs run the same arithmetic on struct ns_police
 * (bpf/lib/police.h); its userspace mode runs this.
 */
struct ns_bw {
	__u64 tat_ns;
	__u64 ps_per_byte;	/* 0: no cap */
	__u64 burst_ns;
};
/* The burst: 100 ms at the cap, but at least 512 KiB. A receiver's GRO and a
 * sender's TSO make packets of up to 64 KiB (the kernel dataplane sees them
 * whole); with a burst of a few of those, TCP through a 16 Mbit/s cap got
 * 3 Mbit/s, with 512 KiB 14 (test_paths.sh, test_agent_relay_bandwidth). */
#define NS_BW_BURST_MS		100
#define NS_BW_BURST_MIN		(512 << 10)
/* A cap of mbit Mbit/s (0: none). */
void ns_bw_init(struct ns_bw *b, __u32 mbit);
/* Bytes that may pass at now_ns: UINT64_MAX without a cap. */
__u64 ns_bw_room(const struct ns_bw *b, __u64 now_ns);
/* bytes passed at now_ns (they may overdraw the room by one packet). */
void ns_bw_spend(struct ns_bw *b, __u64 bytes, __u64 now_ns);

/* A list of phrases for one log line ("1 agent added (carol), ..."): each
 * ns_summary_add() appends ", " and the phrase; cut at the buffer's end. */
struct ns_summary {
	char buf[1024];
	size_t off;
};
void ns_summary_add(struct ns_summary *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
