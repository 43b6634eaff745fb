/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Round trips to relays (ns_proto.h, "Round trips to relays"): an agent
 * sends a relay's echo port a 32-byte UDP request, "NSRQ" | nonce[16] |
 * 12 zero bytes; the relay sends the same bytes back with "NSRA". The
 * nonce is fresh and random for every request and the agent's socket is
 * connected to the relay's address and port: an answer from anywhere
 * else, to another request or made up, counts for nothing. The answer is
 * never larger than the request and answers are rate-limited, so the echo
 * port is no amplifier.
 */
#ifndef NS_LIB_RTT_H
#define NS_LIB_RTT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <sys/socket.h>

#include "loop.h"
#include "util.h"

#define NS_RTT_LEN		32
#define NS_RTT_NONCE_LEN	16
#define NS_ECHO_PORT		7701	/* a relay's default echo-port */
#define NS_ECHO_RATE		2000	/* answers a second at most, one socket */
#define NS_RTT_UNREACHABLE	0xffffffffU	/* RTT_US: no answer */
#define NS_RTT_MAX_US		10000000U	/* a round trip above this is no answer */

/* The request with this nonce. */
void ns_rtt_request(__u8 out[NS_RTT_LEN], const __u8 nonce[NS_RTT_NONCE_LEN]);
/* Turn a request (len bytes) into its answer in place: 0, or -EINVAL when
 * buf is not a request (then nothing is to be sent). */
int ns_rtt_answer(__u8 *buf, size_t len);
/* Is buf the answer to the request with nonce? */
bool ns_rtt_is_answer(const __u8 *buf, size_t len, const __u8 nonce[NS_RTT_NONCE_LEN]);

/* The echo responder: one UDP socket on one address. */
struct ns_echo {
	struct ns_watch w;
	struct ns_gcra rate;
	__u64 answered;		/* requests answered */
	__u64 ignored;		/* datagrams that were no request */
	__u64 limited;		/* requests over NS_ECHO_RATE, not answered */
};
/* Bind family/addr (network order), port (host order) and answer from the
 * loop: 0 or -errno. e->w.fd is -1 when closed. */
int ns_echo_open(struct ns_echo *e, struct ns_loop *l, __u8 family, const __u32 addr[4],
		 __u16 port);
void ns_echo_close(struct ns_echo *e, struct ns_loop *l);	/* safe when closed */

#endif
