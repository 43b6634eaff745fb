/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Login proofs, session keys and tunnel proofs (include/ns_proto.h). */
#ifndef NS_LIB_AUTH_H
#define NS_LIB_AUTH_H

#include <stddef.h>
#include <linux/types.h>
#include "ns_proto.h"

/* HMAC-SHA256 over the concatenation of n parts. 0 or -EIO. */
int ns_hmac(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
	    int n, __u8 out[NS_HMAC_LEN]);
/* HMAC-SHA256(secret, "natsplice-login" | nonce | name | binding): binding is
 * the control connection's TLS exporter (NS_TLS_EXPORTER_LEN bytes), or
 * NULL / 0 bytes on a plain-text connection (insecure: true). */
int ns_login_proof(const char *secret, const __u8 nonce[NS_NONCE_LEN], const char *name,
		   const __u8 *binding, size_t binding_len, __u8 out[NS_HMAC_LEN]);
/* Constant-time compare of two HMACs: 0 equal, -EACCES otherwise. */
int ns_hmac_check(const __u8 *a, const __u8 *b);
/* key XOR HMAC-SHA256(secret, "natsplice-wrap" | session (u64 big-endian)); its own inverse. */
int ns_key_wrap(const char *secret, __u64 session, const __u8 in[NS_KEY_LEN],
		__u8 out[NS_KEY_LEN]);
/* The 61-byte tunnel proof (random nonce) for role 0 provider / 1 subscriber. */
int ns_tunnel_proof(const __u8 key[NS_KEY_LEN], __u64 session, __u8 role,
		    __u8 out[NS_PROOF_LEN]);
/* What a proof not checked yet claims (to find its session): 0 with its
 * SESSION and role, or -EINVAL when it is no natsplice proof. */
int ns_tunnel_proof_peek(const __u8 in[NS_PROOF_LEN], __u64 *session, __u8 *role);
/* Check the peer's proof: magic, session, role == expect_role, HMAC. 0 or -EACCES. */
int ns_tunnel_proof_check(const __u8 key[NS_KEY_LEN], __u64 session, __u8 expect_role,
			  const __u8 in[NS_PROOF_LEN]);
/* The tag of OPEN's address record (ns_proto.h, step 6): the first
 * NS_OPEN_TAG_LEN bytes of HMAC-SHA256(key, "natsplice-open" | SESSION (u64
 * big-endian) | rec). 0 or -EIO. */
int ns_open_tag(const __u8 key[NS_KEY_LEN], __u64 session, const void *rec, size_t len,
		__u8 tag[NS_OPEN_TAG_LEN]);
/* Check one: 0, or -EACCES (another tag, in constant time). */
int ns_open_tag_check(const __u8 key[NS_KEY_LEN], __u64 session, const void *rec, size_t len,
		      const __u8 tag[NS_OPEN_TAG_LEN]);

#endif
