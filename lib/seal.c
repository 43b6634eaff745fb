// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sealed tunnels (seal.h): the TLS 1.3 record layer with AES-128-GCM, and
 * datagrams with a replay window, keyed by HKDF-SHA256 from the session key
 * and the tunnel's two proofs. Each record's nonce is the direction's IV
 * XOR its 64-bit sequence number (RFC 8446 5.3), the same computation as
 * the kernel's kTLS, which can take a direction over at any record.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "seal.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define LABEL_STREAM	"natsplice-seal-tcp"
#define LABEL_DGRAM	"natsplice-seal-udp"
#define CT_APPDATA	23		/* TLS content type: application data */
#define WORDS		(NS_SEAL_WINDOW / 64)
#define DIR_LEN		(NS_SEAL_KEY_LEN + NS_SEAL_IV_LEN)

/* HKDF-SHA256(ikm = key, salt = both proofs, info = label) -> out. */
static int derive(const __u8 key[NS_KEY_LEN], const __u8 *salt, size_t saltlen,
		  const char *label, __u8 *out, size_t outlen)
{
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf;
	int err = -EIO;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf)
		kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!kctx)
		return -EIO;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, NS_KEY_LEN);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label,
						 strlen(label));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		err = 0;
	EVP_KDF_CTX_free(kctx);
	return err;
}

static int dir_init(struct ns_seal *s, const __u8 *km, bool encrypt)
{
	EVP_CIPHER_CTX *ctx;
	int ok;

	memset(s, 0, sizeof(*s));
	memcpy(s->key, km, NS_SEAL_KEY_LEN);
	memcpy(s->iv, km + NS_SEAL_KEY_LEN, NS_SEAL_IV_LEN);
	s->encrypt = encrypt;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	ok = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, s->key, NULL)
		     : EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, s->key, NULL);
	if (!ok || !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NS_SEAL_IV_LEN, NULL)) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	s->ctx = ctx;
	return 0;
}

int ns_seal_init(const __u8 key[NS_KEY_LEN], const __u8 proof_sub[NS_PROOF_LEN],
		 const __u8 proof_prov[NS_PROOF_LEN], bool subscriber, bool dgram,
		 struct ns_seal *tx, struct ns_seal *rx)
{
	__u8 salt[2 * NS_PROOF_LEN], km[2 * DIR_LEN];	/* [0]: sub -> prov, [1]: prov -> sub */
	int err;

	memset(tx, 0, sizeof(*tx));
	memset(rx, 0, sizeof(*rx));
	memcpy(salt, proof_sub, NS_PROOF_LEN);
	memcpy(salt + NS_PROOF_LEN, proof_prov, NS_PROOF_LEN);
	err = derive(key, salt, sizeof(salt), dgram ? LABEL_DGRAM : LABEL_STREAM, km, sizeof(km));
	if (!err)
		err = dir_init(tx, km + (subscriber ? 0 : DIR_LEN), true);
	if (!err)
		err = dir_init(rx, km + (subscriber ? DIR_LEN : 0), false);
	OPENSSL_cleanse(km, sizeof(km));
	if (err) {
		ns_seal_free(tx);
		ns_seal_free(rx);
	}
	return err;
}

void ns_seal_free(struct ns_seal *s)
{
	EVP_CIPHER_CTX_free(s->ctx);
	OPENSSL_cleanse(s, sizeof(*s));
	s->ctx = NULL;
}

static void nonce(const struct ns_seal *s, __u64 seq, __u8 out[NS_SEAL_IV_LEN])
{
	int i;

	memcpy(out, s->iv, NS_SEAL_IV_LEN);
	for (i = 0; i < 8; i++)
		out[NS_SEAL_IV_LEN - 1 - i] ^= (__u8)(seq >> (8 * i));
}

/* AES-128-GCM of n bytes in -> out with aad, the tag after out's n bytes (sealing)
 * or checked against tag (opening). in and out may be the same. */
static int gcm(struct ns_seal *s, __u64 seq, const __u8 *aad, int aadlen, const __u8 *in,
	       int n, __u8 *out, __u8 *tag)
{
	EVP_CIPHER_CTX *ctx = s->ctx;
	__u8 iv[NS_SEAL_IV_LEN];
	int len, fin;

	if (!ctx)
		return -EINVAL;
	nonce(s, seq, iv);
	if (s->encrypt) {
		if (!EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) ||
		    !EVP_EncryptUpdate(ctx, NULL, &len, aad, aadlen) ||
		    (n && !EVP_EncryptUpdate(ctx, out, &len, in, n)) ||
		    !EVP_EncryptFinal_ex(ctx, out + n, &fin) ||
		    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, NS_SEAL_TAG_LEN, tag))
			return -EIO;
		return 0;
	}
	if (!EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, NS_SEAL_TAG_LEN, tag) ||
	    !EVP_DecryptUpdate(ctx, NULL, &len, aad, aadlen) ||
	    (n && !EVP_DecryptUpdate(ctx, out, &len, in, n)))
		return -EIO;
	return EVP_DecryptFinal_ex(ctx, out + n, &fin) > 0 ? 0 : -EBADMSG;
}

/* ---- TCP: TLS 1.3 records ---- */

int ns_seal_record(struct ns_seal *s, const __u8 *in, size_t n, __u8 *out)
{
	size_t clen = n + 1 + NS_SEAL_TAG_LEN;
	int err;

	if (n > NS_SEAL_RECORD_MAX || !s->encrypt)
		return -EINVAL;
	out[0] = CT_APPDATA;
	out[1] = 3;
	out[2] = 3;
	out[3] = clen >> 8;
	out[4] = clen & 0xff;
	memmove(out + NS_SEAL_HDR_LEN, in, n);
	out[NS_SEAL_HDR_LEN + n] = CT_APPDATA;	/* the inner content type */
	err = gcm(s, s->seq, out, NS_SEAL_HDR_LEN, out + NS_SEAL_HDR_LEN, n + 1,
		  out + NS_SEAL_HDR_LEN, out + NS_SEAL_HDR_LEN + n + 1);
	if (err)
		return err;
	s->seq++;
	return NS_SEAL_HDR_LEN + clen;
}

long ns_seal_record_len(const __u8 *buf, size_t len, size_t *need)
{
	size_t clen;

	*need = NS_SEAL_HDR_LEN;
	if (len < NS_SEAL_HDR_LEN)
		return 0;
	clen = (size_t)buf[3] << 8 | buf[4];
	if (buf[0] != CT_APPDATA || buf[1] != 3 || buf[2] != 3 ||
	    clen < 1 + NS_SEAL_TAG_LEN || NS_SEAL_HDR_LEN + clen > NS_SEAL_WIRE_MAX)
		return -EPROTO;
	*need = NS_SEAL_HDR_LEN + clen;
	return len >= *need ? (long)*need : 0;
}

int ns_open_record(struct ns_seal *s, __u8 *rec, size_t len, const __u8 **plain, size_t *plen)
{
	size_t need, n;
	long rl = ns_seal_record_len(rec, len, &need);
	int err;

	if (rl <= 0 || (size_t)rl != len || s->encrypt)
		return rl < 0 ? -EPROTO : -EINVAL;
	n = len - NS_SEAL_HDR_LEN - NS_SEAL_TAG_LEN;
	err = gcm(s, s->seq, rec, NS_SEAL_HDR_LEN, rec + NS_SEAL_HDR_LEN, n,
		  rec + NS_SEAL_HDR_LEN, rec + len - NS_SEAL_TAG_LEN);
	if (err)
		return err == -EIO ? -EBADMSG : err;
	s->seq++;
	/* the inner plaintext: content, then its type, then any zero padding */
	while (n && !rec[NS_SEAL_HDR_LEN + n - 1])
		n--;
	if (!n || rec[NS_SEAL_HDR_LEN + n - 1] != CT_APPDATA)
		return -EPROTO;
	*plain = rec + NS_SEAL_HDR_LEN;
	*plen = n - 1;
	return 0;
}

/* ---- UDP as UDP ---- */

int ns_seal_dgram(struct ns_seal *s, const __u8 *in, size_t n, __u8 *out)
{
	__u64 be = htobe64(s->seq);
	int err;

	if (!s->encrypt || n > 65535)
		return -EINVAL;
	memmove(out + NS_SEAL_SEQ_LEN, in, n);
	memcpy(out, &be, NS_SEAL_SEQ_LEN);
	err = gcm(s, s->seq, out, NS_SEAL_SEQ_LEN, out + NS_SEAL_SEQ_LEN, n,
		  out + NS_SEAL_SEQ_LEN, out + NS_SEAL_SEQ_LEN + n);
	if (err)
		return err;
	s->seq++;
	return n + NS_SEAL_DGRAM_OVERHEAD;
}

static bool win_bit(struct ns_seal *s, __u64 seq, bool set)
{
	__u64 *w = &s->win[(seq / 64) % WORDS], bit = 1ull << (seq % 64);
	bool was = *w & bit;

	if (set)
		*w |= bit;
	return was;
}

int ns_open_dgram(struct ns_seal *s, __u8 *d, size_t n, const __u8 **plain, size_t *plen)
{
	__u64 be, seq, w, first;
	size_t len;
	int err;

	if (s->encrypt)
		return -EINVAL;
	if (n < NS_SEAL_DGRAM_OVERHEAD)
		return -EBADMSG;
	memcpy(&be, d, sizeof(be));
	seq = be64toh(be);
	if (seq == UINT64_MAX)
		return -EBADMSG;
	/* too old, or seen: before spending a decryption on it (the window
	 * keeps whole words, so its oldest word may be part gone: one less) */
	if (seq + NS_SEAL_WINDOW - 64 < s->top || (seq < s->top && win_bit(s, seq, false)))
		return -EALREADY;
	len = n - NS_SEAL_DGRAM_OVERHEAD;
	err = gcm(s, seq, d, NS_SEAL_SEQ_LEN, d + NS_SEAL_SEQ_LEN, len, d + NS_SEAL_SEQ_LEN,
		  d + n - NS_SEAL_TAG_LEN);
	if (err)
		return err == -EIO ? -EBADMSG : err;
	if (seq >= s->top) {
		/* slide: the words between the old highest and this one start empty */
		first = s->top ? (s->top - 1) / 64 + 1 : 0;
		for (w = first; w <= seq / 64 && w < first + WORDS; w++)
			s->win[w % WORDS] = 0;
		s->top = seq + 1;
	}
	win_bit(s, seq, true);
	*plain = d + NS_SEAL_SEQ_LEN;
	*plen = len;
	return 0;
}

/* ---- kTLS ---- */

static void ktls_info(const struct ns_seal *s, struct tls12_crypto_info_aes_gcm_128 *ci)
{
	__u64 be = htobe64(s->seq);

	memset(ci, 0, sizeof(*ci));
	ci->info.version = TLS_1_3_VERSION;
	ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memcpy(ci->salt, s->iv, TLS_CIPHER_AES_GCM_128_SALT_SIZE);
	memcpy(ci->iv, s->iv + TLS_CIPHER_AES_GCM_128_SALT_SIZE, TLS_CIPHER_AES_GCM_128_IV_SIZE);
	memcpy(ci->key, s->key, TLS_CIPHER_AES_GCM_128_KEY_SIZE);
	memcpy(ci->rec_seq, &be, sizeof(be));
}

int ns_seal_ktls(int fd, const struct ns_seal *tx, const struct ns_seal *rx)
{
	struct tls12_crypto_info_aes_gcm_128 ci;
	int err = 0;

	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")))
		return errno == ENOENT || errno == ENOPROTOOPT || errno == EOPNOTSUPP ?
		       -ENOPROTOOPT : -errno;
	ktls_info(tx, &ci);
	if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)))
		err = -errno;
	ktls_info(rx, &ci);
	if (!err && setsockopt(fd, SOL_TLS, TLS_RX, &ci, sizeof(ci)))
		err = -errno;
	OPENSSL_cleanse(&ci, sizeof(ci));
	/* the ULP cannot be taken off again: the caller closes the socket */
	return err == -ENOPROTOOPT ? -EOPNOTSUPP : err;
}

bool ns_seal_ktls_on(int fd)
{
	char ulp[16] = "";
	socklen_t len = sizeof(ulp);

	return !getsockopt(fd, SOL_TCP, TCP_ULP, ulp, &len) && !strcmp(ulp, "tls");
}
