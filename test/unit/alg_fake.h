/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Unit tests of the ALGs: an expect() that records its calls. Include after
 * <cmocka.h> and the agent sources. */
#ifndef NS_TEST_ALG_FAKE_H
#define NS_TEST_ALG_FAKE_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>

#define FAKE_MAX 256
struct fake {
	int calls;			/* expect() calls so far */
	int allow;			/* calls that succeed; later ones get -ENOSPC */
	int family;			/* of the aliases: AF_INET or AF_INET6 */
	__u8 proto[FAKE_MAX];
	__u16 port[FAKE_MAX];
	bool pair[FAKE_MAX];
};

/* The n-th alias (n from 0) is 198.51.100.7 (or 2001:db8::7) port 40000 + 2n. */
static int fake_expect(void *arg, __u8 proto, __u16 port, bool pair,
		       struct sockaddr_storage *alias)
{
	struct fake *f = arg;
	int n = f->calls++;
	__u32 a[4] = { 0 };

	if (n < FAKE_MAX) {
		f->proto[n] = proto;
		f->port[n] = port;
		f->pair[n] = pair;
	}
	if (n >= f->allow)
		return -ENOSPC;
	if (f->family == AF_INET6)
		inet_pton(AF_INET6, "2001:db8::7", a);
	else
		inet_pton(AF_INET, "198.51.100.7", a);
	ns_sockaddr_make(f->family == AF_INET6 ? AF_INET6 : AF_INET, a, htons(40000 + 2 * n),
			 alias);
	return 0;
}

static void fake_init(struct fake *f, int family)
{
	memset(f, 0, sizeof(*f));
	f->allow = 1000;
	f->family = family;
}

#endif
