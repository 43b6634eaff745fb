// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Login proofs, session key wrapping and tunnel proofs, exactly as
 * include/ns_proto.h defines them. Labels are hashed without their NUL;
 * SESSION is always 8 bytes big-endian.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"

#define LABEL_LOGIN	"natsplice-login"
#define LABEL_WRAP	"natsplice-wrap"
#define LABEL_PROOF	"natsplice-proof"
#define PROOF_MAGIC	"NSP1"
#define MAGIC_LEN	4

/* Offsets in the 61-byte tunnel proof. */
#define P_SESSION	4
#define P_ROLE		12
#define P_NONCE		13
#define P_HMAC		(P_NONCE + NS_PROOF_NONCE_LEN)
_Static_assert(P_HMAC + NS_HMAC_LEN == NS_PROOF_LEN, "tunnel proof layout");

int ns_hmac(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
	    int n, __u8 out[NS_HMAC_LEN])
{
	static const __u8 empty_key[1];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *mac = NULL;
	size_t outlen = 0;
	int i, err = -EIO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		goto out;
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx || !EVP_MAC_init(ctx, keylen ? key : empty_key, keylen, params))
		goto out;
	for (i = 0; i < n; i++)
		if (lens[i] && !EVP_MAC_update(ctx, parts[i], lens[i]))
			goto out;
	if (!EVP_MAC_final(ctx, out, &outlen, NS_HMAC_LEN) || outlen != NS_HMAC_LEN)
		goto out;
	err = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return err;
}

int ns_login_proof(const char *secret, const __u8 nonce[NS_NONCE_LEN], const char *name,
		   const __u8 *binding, size_t binding_len, __u8 out[NS_HMAC_LEN])
{
	const void *parts[] = { LABEL_LOGIN, nonce, name, binding };
	const size_t lens[] = { strlen(LABEL_LOGIN), NS_NONCE_LEN, strlen(name),
				binding ? binding_len : 0 };

	return ns_hmac(secret, strlen(secret), parts, lens, 4, out);
}

int ns_hmac_check(const __u8 *a, const __u8 *b)
{
	return CRYPTO_memcmp(a, b, NS_HMAC_LEN) ? -EACCES : 0;
}

int ns_key_wrap(const char *secret, __u64 session, const __u8 in[NS_KEY_LEN],
		__u8 out[NS_KEY_LEN])
{
	__u64 be = htobe64(session);
	const void *parts[] = { LABEL_WRAP, &be };
	const size_t lens[] = { strlen(LABEL_WRAP), sizeof(be) };
	__u8 mask[NS_HMAC_LEN];
	int i, err;

	err = ns_hmac(secret, strlen(secret), parts, lens, 2, mask);
	if (!err)
		for (i = 0; i < NS_KEY_LEN; i++)	/* in and out may alias */
			out[i] = in[i] ^ mask[i];
	OPENSSL_cleanse(mask, sizeof(mask));
	return err;
}

/* HMAC(key, "natsplice-proof" | session | role | nonce) over the proof's own fields. */
static int proof_hmac(const __u8 key[NS_KEY_LEN], const __u8 *proof, __u8 out[NS_HMAC_LEN])
{
	const void *parts[] = { LABEL_PROOF, proof + P_SESSION };
	const size_t lens[] = { strlen(LABEL_PROOF), P_HMAC - P_SESSION };

	return ns_hmac(key, NS_KEY_LEN, parts, lens, 2, out);
}

int ns_tunnel_proof(const __u8 key[NS_KEY_LEN], __u64 session, __u8 role,
		    __u8 out[NS_PROOF_LEN])
{
	__u64 be = htobe64(session);

	if (role > 1)
		return -EINVAL;
	memcpy(out, PROOF_MAGIC, MAGIC_LEN);
	memcpy(out + P_SESSION, &be, sizeof(be));
	out[P_ROLE] = role;
	if (RAND_bytes(out + P_NONCE, NS_PROOF_NONCE_LEN) != 1)
		return -EIO;
	return proof_hmac(key, out, out + P_HMAC);
}

int ns_tunnel_proof_peek(const __u8 in[NS_PROOF_LEN], __u64 *session, __u8 *role)
{
	__u64 be;

	if (memcmp(in, PROOF_MAGIC, MAGIC_LEN) || in[P_ROLE] > 1)
		return -EINVAL;
	memcpy(&be, in + P_SESSION, sizeof(be));
	*session = be64toh(be);
	*role = in[P_ROLE];
	return 0;
}

int ns_tunnel_proof_check(const __u8 key[NS_KEY_LEN], __u64 session, __u8 expect_role,
			  const __u8 in[NS_PROOF_LEN])
{
	__u64 be = htobe64(session);
	__u8 mac[NS_HMAC_LEN];
	int err = -EACCES;

	if (memcmp(in, PROOF_MAGIC, MAGIC_LEN) || memcmp(in + P_SESSION, &be, sizeof(be)) ||
	    in[P_ROLE] != expect_role)
		return -EACCES;
	/* An internal HMAC failure fails closed as well. */
	if (!proof_hmac(key, in, mac) && !ns_hmac_check(mac, in + P_HMAC))
		err = 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return err;
}

int ns_open_tag(const __u8 key[NS_KEY_LEN], __u64 session, const void *rec, size_t len,
		__u8 tag[NS_OPEN_TAG_LEN])
{
	static const char label[] = "natsplice-open";
	__u64 be = htobe64(session);
	const void *parts[] = { label, &be, rec };
	const size_t lens[] = { sizeof(label) - 1, sizeof(be), len };
	__u8 mac[NS_HMAC_LEN];
	int err = ns_hmac(key, NS_KEY_LEN, parts, lens, 3, mac);

	if (!err)
		memcpy(tag, mac, NS_OPEN_TAG_LEN);
	explicit_bzero(mac, sizeof(mac));
	return err;
}

int ns_open_tag_check(const __u8 key[NS_KEY_LEN], __u64 session, const void *rec, size_t len,
		      const __u8 tag[NS_OPEN_TAG_LEN])
{
	__u8 want[NS_OPEN_TAG_LEN];

	if (ns_open_tag(key, session, rec, len, want))
		return -EACCES;
	return CRYPTO_memcmp(want, tag, NS_OPEN_TAG_LEN) ? -EACCES : 0;
}
