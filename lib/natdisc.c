// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* NAT behaviour discovery messages (natdisc.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#include "natdisc.h"
#include "auth.h"
#include "bytes.h"
#include "util.h"

static const __u8 req_magic[4] = { 'N', 'S', 'D', 'Q' };
static const __u8 ans_magic[4] = { 'N', 'S', 'D', 'A' };
#define DISC_VERSION	1
#define ANS_SIGNED	(NS_DISC_ANS_LEN - NS_DISC_TAG_LEN)

int ns_disc_request(__u8 *out, size_t len, __u8 flags, const __u8 nonce[NS_DISC_NONCE_LEN],
		    const char *name)
{
	size_t n = strlen(name), total = 24 + n;

	if (!n || n > 255)
		return -EINVAL;
	if (total < NS_DISC_REQ_MIN)
		total = NS_DISC_REQ_MIN;
	if (len < total)
		return -ENOSPC;
	memset(out, 0, total);
	memcpy(out, req_magic, 4);
	out[4] = DISC_VERSION;
	out[5] = flags;
	out[6] = n;
	memcpy(out + 8, nonce, NS_DISC_NONCE_LEN);
	memcpy(out + 24, name, n);
	return total;
}

int ns_disc_request_parse(const __u8 *in, size_t len, __u8 *flags,
			  __u8 nonce[NS_DISC_NONCE_LEN], char *name, size_t name_len)
{
	size_t n;

	if (len < NS_DISC_REQ_MIN || len > NS_DISC_REQ_MAX || memcmp(in, req_magic, 4) ||
	    in[4] != DISC_VERSION)
		return -EINVAL;
	n = in[6];
	if (!n || 24 + n > len || n >= name_len || memchr(in + 24, 0, n))
		return -EINVAL;
	*flags = in[5];
	memcpy(nonce, in + 8, NS_DISC_NONCE_LEN);
	memcpy(name, in + 24, n);
	name[n] = '\0';
	return 0;
}

static int disc_tag(const char *secret, const __u8 *signed_part, __u8 tag[NS_DISC_TAG_LEN])
{
	static const char label[] = "natsplice-discovery";
	const void *parts[] = { label, signed_part };
	const size_t lens[] = { sizeof(label) - 1, ANS_SIGNED };
	__u8 mac[NS_HMAC_LEN];
	int err = ns_hmac(secret, strlen(secret), parts, lens, 2, mac);

	if (!err)
		memcpy(tag, mac, NS_DISC_TAG_LEN);
	explicit_bzero(mac, sizeof(mac));
	return err;
}

int ns_disc_answer(__u8 out[NS_DISC_ANS_LEN], const char *secret, __u8 flags,
		   const __u8 nonce[NS_DISC_NONCE_LEN], __u8 family, const __u32 addr[4],
		   __u16 port)
{
	memset(out, 0, NS_DISC_ANS_LEN);
	memcpy(out, ans_magic, 4);
	out[4] = flags;
	memcpy(out + 8, nonce, NS_DISC_NONCE_LEN);
	out[24] = family;
	ns_put16(out + 26, port);
	memcpy(out + 28, addr, 16);
	return disc_tag(secret, out, out + ANS_SIGNED);
}

int ns_disc_answer_check(const __u8 *in, size_t len, const char *secret,
			 const __u8 nonce[NS_DISC_NONCE_LEN], __u8 *flags, __u8 *family,
			 __u32 addr[4], __u16 *port)
{
	__u8 want[NS_DISC_TAG_LEN];

	if (len != NS_DISC_ANS_LEN || memcmp(in, ans_magic, 4) ||
	    memcmp(in + 8, nonce, NS_DISC_NONCE_LEN) || disc_tag(secret, in, want) ||
	    CRYPTO_memcmp(want, in + ANS_SIGNED, NS_DISC_TAG_LEN))
		return -EACCES;
	*flags = in[4];
	*family = in[24];
	*port = ns_get16(in + 26);
	memcpy(addr, in + 28, 16);
	return 0;
}

const char *ns_nat_beh_name(__u8 beh)
{
	static const char *const names[] = { "unknown", "ei", "ad", "apd" };

	return beh < 4 ? names[beh] : "unknown";
}

const char *ns_nat_str(const struct ns_nat_result *r, char *buf, size_t len)
{
	if (!r->tested) {
		snprintf(buf, len, "blocked (no answer)");
		return buf;
	}
	snprintf(buf, len, "%smapping %s, filtering %s, port %s, hairpin %s", r->nat ? "" : "no NAT, ",
		 ns_nat_beh_name(r->mapping), ns_nat_beh_name(r->filtering),
		 r->preserve ? "kept" : "changed", r->hairpin ? "yes" : "no");
	return buf;
}
