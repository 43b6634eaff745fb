// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control protocol codec (include/ns_proto.h). Every multi-byte value is
 * read with memcpy + ntoh* and written with hton* + memcpy: the buffers are
 * byte streams with no alignment, never structs.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "natsplice_abi.h"
#include "bytes.h"
#include "proto.h"

#define ATTR_HDR_LEN	4
#define ATTR_MAX_VAL	65535		/* a u16 length */
#define MB_INIT_CAP	256
#define STR_MAX		255		/* STR values, unless the table says otherwise */
#define TEXT_MAX	1000

/* How a value is encoded; indexed by attribute type. */
enum attr_kind { K_NONE, K_U8, K_U16, K_U32, K_U64, K_STR, K_BIN, K_ADDR, K_NEST };

static const struct attr_def {
	__u8 kind;
	__u16 max;		/* STR: longest value in bytes */
	__u8 rep;		/* may repeat (ns_msg_next reads each) */
} attr_defs[NS_A_MAX] = {
	[NS_A_NONCE]		= { K_BIN },
	[NS_A_VERSION_MIN]	= { K_U8 },
	[NS_A_VERSION_MAX]	= { K_U8 },
	[NS_A_VERSION]		= { K_U8 },
	[NS_A_ROLE]		= { K_U8 },
	[NS_A_NAME]		= { K_STR, STR_MAX },
	[NS_A_PROOF]		= { K_BIN },
	[NS_A_LOCAL_ADDR]	= { K_ADDR },
	[NS_A_OBSERVED_ADDR]	= { K_ADDR },
	[NS_A_LISTEN_PORT]	= { K_U16 },
	[NS_A_RELAY_ADDR]	= { K_ADDR },
	[NS_A_HOLD_TIME]	= { K_U32 },
	[NS_A_CODE]		= { K_U32 },
	[NS_A_TEXT]		= { K_STR, TEXT_MAX },
	[NS_A_REQ_ID]		= { K_U32 },
	[NS_A_SERVICE]		= { K_STR, STR_MAX },
	[NS_A_PROTO]		= { K_U8 },
	[NS_A_SERVICE_INFO]	= { K_NEST },
	[NS_A_SESSION]		= { K_U64 },
	[NS_A_PATH]		= { K_U8 },
	[NS_A_DIAL]		= { K_U8 },
	[NS_A_PEER_ADDR]	= { K_ADDR },
	[NS_A_BIND_PORT]	= { K_U16 },
	[NS_A_SPLICE_MODE]	= { K_U8 },
	[NS_A_KEY]		= { K_BIN },
	[NS_A_FROM_A]		= { K_ADDR },
	[NS_A_FROM_B]		= { K_ADDR },
	[NS_A_TIMEOUT]		= { K_U32 },
	[NS_A_SPLICE_ID]	= { K_U32 },
	[NS_A_PORT_A]		= { K_U16 },
	[NS_A_PORT_B]		= { K_U16 },
	[NS_A_BYTES_AB]		= { K_U64 },
	[NS_A_BYTES_BA]		= { K_U64 },
	[NS_A_PACKETS]		= { K_U64 },
	[NS_A_COMPRESS]		= { K_U8 },
	[NS_A_TOKEN]		= { K_BIN },
	[NS_A_TRANSPORT]	= { K_U8 },
	[NS_A_PARENT]		= { K_U64 },
	[NS_A_PORT]		= { K_U16 },
	[NS_A_ALG]		= { K_STR, STR_MAX },
	[NS_A_PLAIN]		= { K_U8 },
	[NS_A_EXPOSE]		= { K_NEST },
	[NS_A_PREFIX]		= { K_STR, STR_MAX, 1 },
	[NS_A_MAX_CONNS]	= { K_U32 },
	[NS_A_PUBLIC_ID]	= { K_U32 },
	[NS_A_PUBLIC_PORTS]	= { K_STR, STR_MAX, 1 },
	[NS_A_CLIENT_ADDR]	= { K_ADDR },
	[NS_A_PUBLIC_ADDR]	= { K_ADDR },
	[NS_A_CLIENT_INFO]	= { K_U8 },
	[NS_A_ECHO_PORT]	= { K_U16 },
	[NS_A_RELAY_INFO]	= { K_NEST, 0, 1 },
	[NS_A_RTT_US]		= { K_U32 },
	[NS_A_ALT_ADDR]		= { K_ADDR },
	[NS_A_NAT]		= { K_NEST },
	[NS_A_MAPPING]		= { K_U8 },
	[NS_A_FILTERING]	= { K_U8 },
	[NS_A_PRESERVE]		= { K_U8 },
	[NS_A_HAIRPIN]		= { K_U8 },
	[NS_A_NO_PUNCH]		= { K_U8 },
	[NS_A_DELAY_MS]		= { K_U32 },
	[NS_A_PASSIVE_ONLY]	= { K_U8 },
	[NS_A_DISC_PORT]	= { K_U16 },
	[NS_A_PORT_INDEX]	= { K_U8 },
	[NS_A_DATA]		= { K_BIN },
	[NS_A_CONN_ID]		= { K_U32 },
};

static bool attr_known(unsigned int type)
{
	return type < NS_A_MAX && attr_defs[type].kind != K_NONE;
}

/* ---- building ---- */

static int mb_reserve(struct ns_msg_buf *mb, size_t more)
{
	size_t cap;
	__u8 *p;

	if (mb->len + more <= mb->cap)
		return 0;
	cap = mb->cap ? mb->cap : MB_INIT_CAP;
	while (cap < mb->len + more)
		cap *= 2;
	p = realloc(mb->data, cap);
	if (!p)
		return -ENOMEM;
	mb->data = p;
	mb->cap = cap;
	return 0;
}

/* Appends an attribute header and room for len value bytes; NULL on error (sticky). */
static __u8 *mb_put(struct ns_msg_buf *mb, __u16 attr, size_t len)
{
	__u8 *p;

	if (mb->err)
		return NULL;
	if (len > ATTR_MAX_VAL ||
	    mb->len - NS_PROTO_HDR_LEN + ATTR_HDR_LEN + len > NS_PROTO_MAX_BODY) {
		mb->err = -E2BIG;
		return NULL;
	}
	mb->err = mb_reserve(mb, ATTR_HDR_LEN + len);
	if (mb->err)
		return NULL;
	p = mb->data + mb->len;
	ns_put16(p, attr);
	ns_put16(p + 2, len);
	mb->len += ATTR_HDR_LEN + len;
	return p + ATTR_HDR_LEN;
}

int ns_mb_init(struct ns_msg_buf *mb, __u8 type)
{
	memset(mb, 0, sizeof(*mb));
	mb->err = mb_reserve(mb, NS_PROTO_HDR_LEN);
	if (mb->err)
		return mb->err;
	mb->data[0] = NS_PROTO_VERSION;
	mb->data[1] = type;
	ns_put16(mb->data + 2, 0);
	ns_put32(mb->data + 4, 0);
	mb->len = NS_PROTO_HDR_LEN;
	return 0;
}

void ns_mb_u8(struct ns_msg_buf *mb, __u16 attr, __u8 v)
{
	__u8 *p = mb_put(mb, attr, 1);

	if (p)
		*p = v;
}

void ns_mb_u16(struct ns_msg_buf *mb, __u16 attr, __u16 v)
{
	__u8 *p = mb_put(mb, attr, 2);

	if (p)
		ns_put16(p, v);
}

void ns_mb_u32(struct ns_msg_buf *mb, __u16 attr, __u32 v)
{
	__u8 *p = mb_put(mb, attr, 4);

	if (p)
		ns_put32(p, v);
}

void ns_mb_u64(struct ns_msg_buf *mb, __u16 attr, __u64 v)
{
	__u8 *p = mb_put(mb, attr, 8);

	v = htobe64(v);
	if (p)
		memcpy(p, &v, sizeof(v));
}

/* An empty string is not a valid STR: it makes the message fail (-EINVAL). */
void ns_mb_str(struct ns_msg_buf *mb, __u16 attr, const char *s)
{
	if (!mb->err && (!s || !*s)) {
		mb->err = -EINVAL;
		return;
	}
	ns_mb_bin(mb, attr, s, s ? strlen(s) : 0);
}

void ns_mb_bin(struct ns_msg_buf *mb, __u16 attr, const void *v, size_t len)
{
	__u8 *p = mb_put(mb, attr, len);

	if (p && len)
		memcpy(p, v, len);
}

void ns_mb_addr(struct ns_msg_buf *mb, __u16 attr, __u8 family, const __u32 addr[4],
		__u16 port)
{
	__u8 *p;

	if (!mb->err && family != NS_AF_INET && family != NS_AF_INET6) {
		mb->err = -EINVAL;
		return;
	}
	p = mb_put(mb, attr, NS_ADDR_ATTR_LEN);
	if (!p)
		return;
	memset(p, 0, NS_ADDR_ATTR_LEN);
	p[0] = family;
	ns_put16(p + 2, port);
	memcpy(p + 4, addr, family == NS_AF_INET ? 4 : 16);
}

size_t ns_mb_nest_begin(struct ns_msg_buf *mb, __u16 attr)
{
	size_t mark = mb->len;

	return mb_put(mb, attr, 0) ? mark : 0;
}

void ns_mb_nest_end(struct ns_msg_buf *mb, size_t mark)
{
	size_t len;

	if (mb->err)
		return;
	len = mb->len - mark - ATTR_HDR_LEN;
	if (len > ATTR_MAX_VAL) {
		mb->err = -E2BIG;
		return;
	}
	ns_put16(mb->data + mark + 2, len);
}

int ns_mb_finish(struct ns_msg_buf *mb)
{
	if (mb->err)
		return mb->err;
	ns_put32(mb->data + 4, mb->len - NS_PROTO_HDR_LEN);
	return 0;
}

void ns_mb_free(struct ns_msg_buf *mb)
{
	free(mb->data);
	memset(mb, 0, sizeof(*mb));
}

/* ---- parsing ---- */

int ns_msg_hdr(const __u8 *hdr, __u8 *type, __u32 *len)
{
	__u32 l = ns_get32(hdr + 4);

	if (l > NS_PROTO_MAX_BODY)
		return -EMSGSIZE;
	if (hdr[0] != NS_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	*type = hdr[1];
	*len = l;
	return 0;
}

/*
 * Walks the attributes of body into m's table (the first of a repeated one).
 * Only nested lists (SERVICE_INFO, EXPOSE) and those marked rep may repeat;
 * at the top level (nested == false) each nested list must itself parse.
 */
static int parse_attrs(struct ns_msg *m, const __u8 *body, size_t len, bool nested)
{
	size_t off = 0;

	memset(m->attr, 0, sizeof(m->attr));
	memset(m->alen, 0, sizeof(m->alen));
	m->bad_attr = 0;
	m->body = body;
	m->len = len;
	while (off < len) {
		__u16 raw, type, alen;
		const __u8 *val;

		if (len - off < ATTR_HDR_LEN)
			return -EINVAL;
		raw = ns_get16(body + off);
		alen = ns_get16(body + off + 2);
		off += ATTR_HDR_LEN;
		if (alen > len - off)
			return -EINVAL;
		val = body + off;
		off += alen;
		type = raw & ~NS_ATTR_MUST;
		if (!attr_known(type)) {
			if (raw & NS_ATTR_MUST) {
				m->bad_attr = type;
				return -EOPNOTSUPP;
			}
			continue;
		}
		if (attr_defs[type].kind == K_NEST) {
			struct ns_msg sub;
			int err;

			if (nested)
				return -EINVAL;
			err = parse_attrs(&sub, val, alen, true);
			if (err) {
				m->bad_attr = sub.bad_attr;
				return err;
			}
		} else if (m->attr[type] && !attr_defs[type].rep) {
			return -EINVAL;
		}
		if (!m->attr[type]) {
			m->attr[type] = val;
			m->alen[type] = alen;
		}
	}
	return 0;
}

int ns_msg_parse(struct ns_msg *m, const __u8 *buf, size_t buflen)
{
	__u32 len;
	__u8 type;
	int err;

	memset(m, 0, sizeof(*m));
	if (buflen < NS_PROTO_HDR_LEN)
		return -EINVAL;
	err = ns_msg_hdr(buf, &type, &len);
	if (err)
		return err;
	if (len != buflen - NS_PROTO_HDR_LEN)
		return -EINVAL;
	m->version = buf[0];
	m->type = type;
	m->flags = ns_get16(buf + 2);
	return parse_attrs(m, buf + NS_PROTO_HDR_LEN, len, false);
}

int ns_msg_parse_nested(struct ns_msg *m, const __u8 *val, size_t len)
{
	memset(m, 0, sizeof(*m));
	return parse_attrs(m, val, len, true);
}

/* The value of attr, exactly want bytes long (0: any length). */
static int get_val(const struct ns_msg *m, int attr, size_t want, const __u8 **val)
{
	if (attr <= 0 || attr >= NS_A_MAX)
		return -EINVAL;
	if (!m->attr[attr])
		return -ENOENT;
	if (want && m->alen[attr] != want)
		return -EINVAL;
	*val = m->attr[attr];
	return 0;
}

int ns_msg_u8(const struct ns_msg *m, int attr, __u8 *v)
{
	const __u8 *p;
	int err = get_val(m, attr, 1, &p);

	if (!err)
		*v = *p;
	return err;
}

int ns_msg_u16(const struct ns_msg *m, int attr, __u16 *v)
{
	const __u8 *p;
	int err = get_val(m, attr, 2, &p);

	if (!err)
		*v = ns_get16(p);
	return err;
}

int ns_msg_u32(const struct ns_msg *m, int attr, __u32 *v)
{
	const __u8 *p;
	int err = get_val(m, attr, 4, &p);

	if (!err)
		*v = ns_get32(p);
	return err;
}

int ns_msg_u64(const struct ns_msg *m, int attr, __u64 *v)
{
	const __u8 *p;
	__u64 x;
	int err = get_val(m, attr, 8, &p);

	if (err)
		return err;
	memcpy(&x, p, sizeof(x));
	*v = be64toh(x);
	return 0;
}

int ns_msg_str(const struct ns_msg *m, int attr, char *buf, size_t size)
{
	size_t max = STR_MAX;
	const __u8 *p;
	size_t len;
	int err = get_val(m, attr, 0, &p);

	if (err)
		return err;
	len = m->alen[attr];
	if (attr_defs[attr].kind == K_STR)
		max = attr_defs[attr].max;
	if (len == 0 || len > max || memchr(p, '\0', len))
		return -EINVAL;
	if (len >= size)
		return -ENOSPC;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

int ns_msg_bin(const struct ns_msg *m, int attr, void *buf, size_t len)
{
	const __u8 *p;
	int err;

	if (len == 0 || len > ATTR_MAX_VAL)
		return -EINVAL;
	err = get_val(m, attr, len, &p);
	if (!err)
		memcpy(buf, p, len);
	return err;
}

int ns_msg_addr(const struct ns_msg *m, int attr, __u8 *family, __u32 addr[4], __u16 *port)
{
	static const __u8 zero[12];
	const __u8 *p;
	int err = get_val(m, attr, NS_ADDR_ATTR_LEN, &p);

	if (err)
		return err;
	if (p[0] != NS_AF_INET && p[0] != NS_AF_INET6)
		return -EINVAL;
	/* IPv4 lives in the first 4 address bytes; the rest must be zero. */
	if (p[0] == NS_AF_INET && memcmp(p + 8, zero, sizeof(zero)))
		return -EINVAL;
	*family = p[0];
	*port = ns_get16(p + 2);
	memcpy(addr, p + 4, 16);
	return 0;
}

int ns_msg_next(const struct ns_msg *m, int attr, size_t *pos, const __u8 **val, __u16 *len)
{
	size_t off = *pos;

	while (off < m->len && m->len - off >= ATTR_HDR_LEN) {
		__u16 type = ns_get16(m->body + off) & ~NS_ATTR_MUST;
		__u16 alen = ns_get16(m->body + off + 2);

		if (alen > m->len - off - ATTR_HDR_LEN)
			break;
		off += ATTR_HDR_LEN + alen;
		if (type == attr) {
			*pos = off;
			*val = m->body + off - alen;
			*len = alen;
			return 1;
		}
	}
	*pos = m->len;
	return 0;
}

/* ---- names for logs ---- */

const char *ns_msg_type_name(int type)
{
	static const char *const names[NS_MSG_MAX] = {
		[NS_MSG_CHALLENGE] = "CHALLENGE",
		[NS_MSG_LOGIN] = "LOGIN",
		[NS_MSG_LOGIN_OK] = "LOGIN_OK",
		[NS_MSG_ERROR] = "ERROR",
		[NS_MSG_HEARTBEAT] = "HEARTBEAT",
		[NS_MSG_OK] = "OK",
		[NS_MSG_PUBLISH] = "PUBLISH",
		[NS_MSG_UNPUBLISH] = "UNPUBLISH",
		[NS_MSG_LIST] = "LIST",
		[NS_MSG_LIST_REPLY] = "LIST_REPLY",
		[NS_MSG_CONNECT] = "CONNECT",
		[NS_MSG_OFFER] = "OFFER",
		[NS_MSG_ACCEPT] = "ACCEPT",
		[NS_MSG_REJECT] = "REJECT",
		[NS_MSG_CONNECT_INFO] = "CONNECT_INFO",
		[NS_MSG_SPLICE_REQUEST] = "SPLICE_REQUEST",
		[NS_MSG_SPLICE_READY] = "SPLICE_READY",
		[NS_MSG_SPLICE_PEER] = "SPLICE_PEER",
		[NS_MSG_SPLICE_DONE] = "SPLICE_DONE",
		[NS_MSG_FLOW] = "FLOW",
		[NS_MSG_PUBLIC_OPEN] = "PUBLIC_OPEN",
		[NS_MSG_PUBLIC_CLOSE] = "PUBLIC_CLOSE",
		[NS_MSG_PUBLIC_INFO] = "PUBLIC_INFO",
		[NS_MSG_PUBLIC_CLIENT] = "PUBLIC_CLIENT",
		[NS_MSG_PUBLIC_ACCEPT] = "PUBLIC_ACCEPT",
		[NS_MSG_PUBLIC_REFUSE] = "PUBLIC_REFUSE",
		[NS_MSG_RELAYS] = "RELAYS",
		[NS_MSG_RTT] = "RTT",
		[NS_MSG_DISCOVERY] = "DISCOVERY",
		[NS_MSG_NAT_INFO] = "NAT_INFO",
		[NS_MSG_DISC_FWD] = "DISC_FWD",
		[NS_MSG_DISC_SEND] = "DISC_SEND",
	};

	if (type <= 0 || type >= NS_MSG_MAX)
		return "UNKNOWN";
	return names[type];
}

const char *ns_err_name(int code)
{
	static const char *const names[] = {
		[NS_ERR_MALFORMED] = "MALFORMED",
		[NS_ERR_UNSUPPORTED] = "UNSUPPORTED",
		[NS_ERR_AUTH] = "AUTH",
		[NS_ERR_NOT_FOUND] = "NOT_FOUND",
		[NS_ERR_DENIED] = "DENIED",
		[NS_ERR_TIMEOUT] = "TIMEOUT",
		[NS_ERR_NO_RELAY] = "NO_RELAY",
		[NS_ERR_REJECTED] = "REJECTED",
		[NS_ERR_INTERNAL] = "INTERNAL",
		[NS_ERR_DUPLICATE] = "DUPLICATE",
		[NS_ERR_BUSY] = "BUSY",
		[NS_ERR_RETRY] = "RETRY",
		[NS_ERR_LIMIT] = "LIMIT",
	};

	if (code <= 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "UNKNOWN";
	return names[code];
}

const char *ns_path_name(int path)
{
	switch (path) {
	case NS_PATH_DIRECT:
		return "direct";
	case NS_PATH_REVERSE:
		return "reverse";
	case NS_PATH_RELAY:
		return "relay";
	case NS_PATH_PUNCH:
		return "punched";
	default:
		return "unknown";
	}
}
