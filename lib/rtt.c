// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Round-trip probes and the echo responder (rtt.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "rtt.h"

static const __u8 rtt_request_magic[4] = { 'N', 'S', 'R', 'Q' };
static const __u8 rtt_answer_magic[4] = { 'N', 'S', 'R', 'A' };

static void rtt_fill(__u8 out[NS_RTT_LEN], const __u8 magic[4],
		     const __u8 nonce[NS_RTT_NONCE_LEN])
{
	memset(out, 0, NS_RTT_LEN);
	memcpy(out, magic, 4);
	memcpy(out + 4, nonce, NS_RTT_NONCE_LEN);
}

void ns_rtt_request(__u8 out[NS_RTT_LEN], const __u8 nonce[NS_RTT_NONCE_LEN])
{
	rtt_fill(out, rtt_request_magic, nonce);
}

/* buf is exactly a message with that magic: the length, the magic, zero padding. */
static bool rtt_is(const __u8 *buf, size_t len, const __u8 magic[4])
{
	static const __u8 zero[NS_RTT_LEN - 4 - NS_RTT_NONCE_LEN];

	return len == NS_RTT_LEN && !memcmp(buf, magic, 4) &&
	       !memcmp(buf + 4 + NS_RTT_NONCE_LEN, zero, sizeof(zero));
}

int ns_rtt_answer(__u8 *buf, size_t len)
{
	if (!rtt_is(buf, len, rtt_request_magic))
		return -EINVAL;
	memcpy(buf, rtt_answer_magic, 4);
	return 0;
}

bool ns_rtt_is_answer(const __u8 *buf, size_t len, const __u8 nonce[NS_RTT_NONCE_LEN])
{
	return rtt_is(buf, len, rtt_answer_magic) && !memcmp(buf + 4, nonce, NS_RTT_NONCE_LEN);
}

#define ECHO_BATCH	64	/* datagrams read at one wake-up */

static void on_echo(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct ns_echo *e = w->data;
	struct sockaddr_storage from;
	__u8 buf[NS_RTT_LEN + 1];
	socklen_t fl;
	ssize_t n;
	int i;

	for (i = 0; i < ECHO_BATCH; i++) {
		fl = sizeof(from);
		n = recvfrom(w->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if (ns_rtt_answer(buf, n)) {
			e->ignored++;
			continue;
		}
		if (!ns_rate_allow(&e->rate, NS_ECHO_RATE, NS_ECHO_RATE / 10, ns_now_ns())) {
			e->limited++;
			continue;
		}
		if (sendto(w->fd, buf, NS_RTT_LEN, MSG_DONTWAIT, (struct sockaddr *)&from, fl) ==
		    NS_RTT_LEN)
			e->answered++;
	}
}

int ns_echo_open(struct ns_echo *e, struct ns_loop *l, __u8 family, const __u32 addr[4],
		 __u16 port)
{
	struct sockaddr_storage ss;
	int fd, err;

	memset(e, 0, sizeof(*e));
	e->w.fd = -1;
	ns_sockaddr_make(family, addr, htons(port), &ss);
	fd = ns_socket_bound(&ss, SOCK_DGRAM, 0);
	if (fd < 0)
		return fd;
	e->w.fn = on_echo;
	e->w.fd = fd;
	e->w.data = e;
	err = ns_loop_add(l, &e->w, EPOLLIN);
	if (err) {
		close(fd);
		e->w.fd = -1;
	}
	return err;
}

void ns_echo_close(struct ns_echo *e, struct ns_loop *l)
{
	if (e->w.fd < 0)
		return;
	ns_loop_del(l, &e->w);
	close(e->w.fd);
	e->w.fd = -1;
}
