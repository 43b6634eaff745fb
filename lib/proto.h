/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one codec of the control protocol (include/ns_proto.h), used by the
 * broker, the agent and the relay. Building: ns_mb_*; parsing: ns_msg_*.
 * Values are always read by copy + byte swap, never by casting onto the
 * buffer.
 */
#ifndef NS_LIB_PROTO_H
#define NS_LIB_PROTO_H

#include <stddef.h>
#include <linux/types.h>
#include "ns_proto.h"

/* A message being built. Errors are sticky: check once at ns_mb_finish(). */
struct ns_msg_buf {
	__u8 *data;
	size_t len, cap;
	int err;		/* 0 or -ENOMEM / -E2BIG */
};

int ns_mb_init(struct ns_msg_buf *mb, __u8 type);	/* writes the header */
void ns_mb_u8(struct ns_msg_buf *mb, __u16 attr, __u8 v);
void ns_mb_u16(struct ns_msg_buf *mb, __u16 attr, __u16 v);
void ns_mb_u32(struct ns_msg_buf *mb, __u16 attr, __u32 v);
void ns_mb_u64(struct ns_msg_buf *mb, __u16 attr, __u64 v);
void ns_mb_str(struct ns_msg_buf *mb, __u16 attr, const char *s);
void ns_mb_bin(struct ns_msg_buf *mb, __u16 attr, const void *p, size_t len);
/* ADDR value: family NS_AF_INET/NS_AF_INET6, addr network order, port host order. */
void ns_mb_addr(struct ns_msg_buf *mb, __u16 attr, __u8 family, const __u32 addr[4],
		__u16 port);
/* Nested attributes (SERVICE_INFO): begin returns a mark for end. */
size_t ns_mb_nest_begin(struct ns_msg_buf *mb, __u16 attr);
void ns_mb_nest_end(struct ns_msg_buf *mb, size_t mark);
int ns_mb_finish(struct ns_msg_buf *mb);		/* sets the length; 0 or mb->err */
void ns_mb_free(struct ns_msg_buf *mb);			/* safe on a zeroed mb */

/* A parsed message: pointers into the caller's buffer. */
struct ns_msg {
	__u8 version, type;
	__u16 flags;
	const __u8 *body;
	size_t len;
	const __u8 *attr[NS_A_MAX];	/* first occurrence, NULL if absent */
	__u16 alen[NS_A_MAX];
	__u16 bad_attr;			/* the offending type after -EOPNOTSUPP */
};

/*
 * Check a header (NS_PROTO_HDR_LEN bytes): body length in *len. 0, -EMSGSIZE
 * (body > NS_PROTO_MAX_BODY: checked before anything is read or allocated),
 * -EPROTONOSUPPORT (version).
 */
int ns_msg_hdr(const __u8 *hdr, __u8 *type, __u32 *len);

/*
 * Parse a whole message (header + body, buflen bytes). 0; -EINVAL malformed
 * (truncated attribute, length mismatch, an attribute repeated where the
 * protocol does not allow it); -EOPNOTSUPP unknown must-understand attribute
 * (m->bad_attr). Unknown optional attributes are skipped.
 */
int ns_msg_parse(struct ns_msg *m, const __u8 *buf, size_t buflen);
/* Parse the value of a nested attribute (SERVICE_INFO) the same way. */
int ns_msg_parse_nested(struct ns_msg *m, const __u8 *val, size_t len);

/* Getters: 0, -ENOENT (absent), -EINVAL (wrong length / bad value). */
int ns_msg_u8(const struct ns_msg *m, int attr, __u8 *v);
int ns_msg_u16(const struct ns_msg *m, int attr, __u16 *v);
int ns_msg_u32(const struct ns_msg *m, int attr, __u32 *v);
int ns_msg_u64(const struct ns_msg *m, int attr, __u64 *v);
/* Copies and NUL-terminates; rejects empty, embedded NUL; -ENOSPC if too long. */
int ns_msg_str(const struct ns_msg *m, int attr, char *buf, size_t size);
/* Exactly len bytes. */
int ns_msg_bin(const struct ns_msg *m, int attr, void *buf, size_t len);
/* ADDR: family checked (2 or 10), addr network order (IPv4 in [0]), port host order. */
int ns_msg_addr(const struct ns_msg *m, int attr, __u8 *family, __u32 addr[4], __u16 *port);
/* Every occurrence of attr, in order: start with *pos = 0; 1 = got one, 0 = no more. */
int ns_msg_next(const struct ns_msg *m, int attr, size_t *pos, const __u8 **val, __u16 *len);

const char *ns_msg_type_name(int type);
const char *ns_err_name(int code);
/* "direct", "reverse", "relay" (enum ns_path), or "unknown". */
const char *ns_path_name(int path);

#endif
