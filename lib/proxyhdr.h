/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The PROXY protocol header (haproxy's proxy-protocol.txt, versions 1 and
 * 2) that a provider agent writes to its server before the client's bytes,
 * so that the server knows the real client: a public port's (no agent) or
 * a subscriber agent's.
 */
#ifndef NS_PROXYHDR_H
#define NS_PROXYHDR_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define NS_PROXY_V1	1
#define NS_PROXY_V2	2
#define NS_PROXY_HDR_MAX 108	/* the longest header either version writes here */

/*
 * The header for a TCP connection from src to dst (what the client connected
 * to) into buf: its length, or -ENOSPC, -EINVAL (version). An unknown or
 * absent address (src or dst NULL, or not AF_INET/AF_INET6) gives "PROXY
 * UNKNOWN" (v1) or a LOCAL command (v2). IPv4-mapped IPv6 addresses are
 * written as IPv4 when both are; two families at once as IPv6.
 */
ssize_t ns_proxy_header(int version, const struct sockaddr_storage *src,
			const struct sockaddr_storage *dst, void *buf, size_t len);

#endif
