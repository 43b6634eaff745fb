/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NAT behaviour discovery (include/ns_proto.h, "NAT behaviour discovery";
 * RFC 5780's tests in RFC 4787/5382 terms): the messages an agent and the
 * broker's discovery ports exchange, and the classification they lead to.
 *
 * Request (a UDP datagram, or the first bytes of a TCP connection):
 *   "NSDQ" | u8 version (1) | u8 flags | u8 name length | u8 0 |
 *   nonce[16] | the agent's name | zero padding to NS_DISC_REQ_MIN bytes
 * Answer (from the port the flags choose; on TCP over the same connection,
 * and over the connect-back connection):
 *   "NSDA" | u8 flags (the request's) | u8 0 0 0 | nonce[16] |
 *   ADDR (20: the request's source as the broker saw it) | tag[16]
 * tag = the first 16 bytes of HMAC-SHA256(the agent's secret,
 * "natsplice-discovery" | the 40 bytes before it): only the broker makes
 * answers an agent accepts, and only for the request it sent (the nonce).
 * An answer is never larger than its request (no amplification).
 */
#ifndef NS_LIB_NATDISC_H
#define NS_LIB_NATDISC_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define NS_DISC_PORT		3478	/* discovery-port default; +1, +2 used too */
#define NS_DISC_REQ_MIN		64	/* a request's size at least */
#define NS_DISC_REQ_MAX		(24 + 255 + 8)
#define NS_DISC_ANS_LEN		60
#define NS_DISC_NONCE_LEN	16
#define NS_DISC_TAG_LEN		16
#define NS_DISC_RUN_MAX_S	60	/* an agent's whole discovery run takes less (a few s) */

/* Request flags. */
#define NS_DISC_CHANGE_IP	0x01	/* answer from the other address */
#define NS_DISC_CHANGE_PORT	0x02	/* answer from the other port (UDP: +1; TCP connect-back: +2) */
#define NS_DISC_CONNECT_BACK	0x04	/* TCP: also connect to the source and answer there */

/* RFC 4787 behaviours (mapping, filtering). */
enum ns_nat_beh {
	NS_NAT_UNKNOWN = 0,	/* not tested, or no answer */
	NS_NAT_EI = 1,		/* endpoint-independent */
	NS_NAT_AD = 2,		/* address-dependent */
	NS_NAT_APD = 3,		/* address-and-port-dependent */
};

/* What one transport's tests found. */
struct ns_nat_result {
	bool tested;		/* the first answer came (else: blocked, or not run) */
	bool nat;		/* the mapped address is not the local one */
	__u8 mapping, filtering;	/* enum ns_nat_beh */
	bool preserve;		/* the mapped port is the local port */
	bool hairpin;		/* UDP: a datagram to our own mapped address came back;
				 * TCP: a connection to it reached our listener */
	__u8 family;		/* the mapped address */
	__u32 addr[4];
	__u16 port;
};

int ns_disc_request(__u8 *out, size_t len, __u8 flags, const __u8 nonce[NS_DISC_NONCE_LEN],
		    const char *name);	/* its length, or -ENOSPC / -EINVAL */
/* A request's flags, nonce and name (buf of at least 256 bytes): 0 or -EINVAL. */
int ns_disc_request_parse(const __u8 *in, size_t len, __u8 *flags,
			  __u8 nonce[NS_DISC_NONCE_LEN], char *name, size_t name_len);
/* The answer to nonce for a source family/addr/port (network order addr,
 * host order port): 0 or -EIO. */
int ns_disc_answer(__u8 out[NS_DISC_ANS_LEN], const char *secret, __u8 flags,
		   const __u8 nonce[NS_DISC_NONCE_LEN], __u8 family, const __u32 addr[4],
		   __u16 port);
/* Is in our answer (nonce, tag by secret)? Its flags and mapped address: 0,
 * or -EACCES (forged, another request's, malformed). */
int ns_disc_answer_check(const __u8 *in, size_t len, const char *secret,
			 const __u8 nonce[NS_DISC_NONCE_LEN], __u8 *flags, __u8 *family,
			 __u32 addr[4], __u16 *port);

const char *ns_nat_beh_name(__u8 beh);	/* "ei", "ad", "apd", "unknown" */
/* "mapping ei, filtering apd, port kept, hairpin no" (or "blocked", "no NAT, ..."). */
const char *ns_nat_str(const struct ns_nat_result *r, char *buf, size_t len);

#endif
