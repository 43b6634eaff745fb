/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Big-endian values in byte buffers, read and written by copy (never by
 * casting a struct onto the buffer: no alignment or aliasing trouble). */
#ifndef NS_LIB_BYTES_H
#define NS_LIB_BYTES_H

#include <string.h>
#include <arpa/inet.h>
#include <linux/types.h>

static inline __u16 ns_get16(const __u8 *p)
{
	__u16 v;

	memcpy(&v, p, sizeof(v));
	return ntohs(v);
}

static inline __u32 ns_get32(const __u8 *p)
{
	__u32 v;

	memcpy(&v, p, sizeof(v));
	return ntohl(v);
}

static inline void ns_put16(__u8 *p, __u16 v)
{
	v = htons(v);
	memcpy(p, &v, sizeof(v));
}

static inline void ns_put32(__u8 *p, __u32 v)
{
	v = htonl(v);
	memcpy(p, &v, sizeof(v));
}

#endif
