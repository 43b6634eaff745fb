/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ALG fuzz targets (fuzz_alg_ftp, fuzz_alg_sip): one connection driven
 * as the agent drives it. The input's first byte picks the setup (side,
 * datagram or stream, IPv4/IPv6 for the app and for the aliases, how many
 * expect() calls succeed); the rest is a sequence of steps, each a byte
 * (bit 7: direction, bits 0-6: length, 0 meaning the rest) and that many
 * bytes fed at once (a datagram in datagram mode). Then flush both ways and
 * close. Checks: feed/flush return 0 (there is no failure but ENOMEM), a
 * datagram comes out whole or not at all, and ASan sees no leak.
 */
#ifndef NS_FUZZ_ALG_H
#define NS_FUZZ_ALG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/agent_util.c"
#include "../../agent/alg.c"
#include "../../agent/alg_ftp.c"
#include "../../agent/alg_sdp.c"
#include "../../agent/alg_sip.c"
#include "unit/alg_fake.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
				     __FILE__, __LINE__); abort(); } } while (0)

static int fuzz_alg(const struct ns_alg_ops *ops, bool can_datagram,
		    const unsigned char *data, size_t len)
{
	static struct fake fake;
	struct ns_alg_env env = { 0 };
	struct ns_alg_buf out = { 0 };
	bool datagram;
	__u8 setup;
	void *st;

	if (!len)
		return 0;
	setup = data[0];
	data++, len--;
	datagram = can_datagram && (setup & 2);
	fake_init(&fake, setup & 4 ? AF_INET6 : AF_INET);
	fake.allow = setup & 8 ? 1000 : (setup >> 4) & 3;	/* the flow limit reached */
	env.arg = &fake;
	env.side = setup & 1 ? NS_ALG_PROVIDER : NS_ALG_SUBSCRIBER;
	env.expect = fake_expect;
	strcpy(env.label, "fuzz");
	if (setup & 0x40) {
		CHECK(!ns_parse_sockaddr("[2001:db8::1]:5060", 0, &env.local, &(socklen_t){ 0 }));
		CHECK(!ns_parse_sockaddr("[2001:db8::9]:5060", 0, &env.app, &(socklen_t){ 0 }));
	} else {
		CHECK(!ns_parse_sockaddr("192.0.2.1:2121", 0, &env.local, &(socklen_t){ 0 }));
		CHECK(!ns_parse_sockaddr("192.0.2.9:21", 0, &env.app, &(socklen_t){ 0 }));
	}
	st = ops->open(&env, datagram);
	CHECK(st != NULL);

	while (len) {
		enum ns_alg_dir dir = data[0] & 0x80 ? NS_ALG_OUT : NS_ALG_IN;
		size_t n = data[0] & 0x7f, before = out.len;
		unsigned char *chunk;

		data++, len--;
		if (!n || n > len)
			n = len;
		/* an exact-size heap copy: ASan sees a read past the chunk */
		chunk = malloc(n ? n : 1);
		CHECK(chunk != NULL);
		memcpy(chunk, data, n);
		CHECK(ops->feed(st, dir, chunk, n, &out) == 0);
		free(chunk);
		CHECK(out.len >= before && out.len <= out.cap);
		if (datagram)
			CHECK(out.len == before || out.len - before <= NS_ALG_MSG_MAX);
		data += n, len -= n;
	}
	if (!datagram) {
		CHECK(ops->flush(st, NS_ALG_IN, &out) == 0);
		CHECK(ops->flush(st, NS_ALG_OUT, &out) == 0);
	}
	ops->close(st);
	ns_alg_buf_free(&out);
	return 0;
}

#endif
