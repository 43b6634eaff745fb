/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * End-to-end encryption of a tunnel between two agents (include/ns_proto.h,
 * "Sealed tunnels"). The keys come from the session key both agents were
 * given by the broker and both tunnel proofs (each carries a fresh nonce),
 * so every tunnel of a session has keys of its own; the relay never has them.
 *
 *  - TCP: the TLS 1.3 record layer with AES-128-GCM exactly (RFC 8446 5.2:
 *    header 23 3 3 len, inner plaintext + content type 23, nonce = iv XOR
 *    sequence number, the header as additional data), so the kernel's kTLS
 *    can take over either direction on either end and splice(2) stays
 *    zero-copy; an end without kTLS seals in user space, and the two
 *    interoperate.
 *  - UDP as UDP: one datagram is { be64 sequence; AES-128-GCM(payload); tag }
 *    with the sequence number as additional data and a sliding replay window.
 */
#ifndef NS_LIB_SEAL_H
#define NS_LIB_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "ns_proto.h"

#define NS_SEAL_KEY_LEN		16
#define NS_SEAL_IV_LEN		12
#define NS_SEAL_TAG_LEN		16
#define NS_SEAL_HDR_LEN		5
#define NS_SEAL_RECORD_MAX	16384	/* plaintext bytes in one record (2^14) */
#define NS_SEAL_RECORD_OVERHEAD	(NS_SEAL_HDR_LEN + 1 + NS_SEAL_TAG_LEN)
#define NS_SEAL_WIRE_MAX	(NS_SEAL_HDR_LEN + NS_SEAL_RECORD_MAX + 256) /* a record's bytes */
#define NS_SEAL_SEQ_LEN		8
#define NS_SEAL_DGRAM_OVERHEAD	(NS_SEAL_SEQ_LEN + NS_SEAL_TAG_LEN)
#define NS_SEAL_WINDOW		1024	/* datagram sequence numbers remembered */

/* One direction of one tunnel. */
struct ns_seal {
	void *ctx;			/* EVP_CIPHER_CTX, keyed */
	bool encrypt;
	__u8 key[NS_SEAL_KEY_LEN];
	__u8 iv[NS_SEAL_IV_LEN];
	__u64 seq;			/* the next record's (TCP) or datagram's sequence number */
	__u64 top;			/* datagrams received: highest sequence number + 1 */
	__u64 win[NS_SEAL_WINDOW / 64];	/* ... and which of the last NS_SEAL_WINDOW came */
};

/*
 * The two directions of a tunnel, from the session key and both 61-byte
 * proofs (the subscriber's and the provider's), as the subscriber (tx =
 * subscriber -> provider) or the provider sees them. dgram: UDP as UDP
 * (other keys than a stream's). 0 or -errno; free both with ns_seal_free().
 */
int ns_seal_init(const __u8 key[NS_KEY_LEN], const __u8 proof_sub[NS_PROOF_LEN],
		 const __u8 proof_prov[NS_PROOF_LEN], bool subscriber, bool dgram,
		 struct ns_seal *tx, struct ns_seal *rx);
void ns_seal_free(struct ns_seal *s);

/* Seal n <= NS_SEAL_RECORD_MAX bytes into one record at out (n +
 * NS_SEAL_RECORD_OVERHEAD bytes): its length or -errno. */
int ns_seal_record(struct ns_seal *s, const __u8 *in, size_t n, __u8 *out);
/* The length of the record at the head of len buffered bytes: 0 when its
 * header is not complete or the record is not all there (*need says how
 * many bytes it has in all), -EPROTO for a header no peer of ours sends. */
long ns_seal_record_len(const __u8 *buf, size_t len, size_t *need);
/* Open a whole record in place: *plain and *plen are its payload. -EBADMSG
 * if it fails authentication, -EPROTO for a record that is not application
 * data (an alert, a handshake message: we never send those). A record that
 * fails leaves garbage in place: the connection is closed anyway. */
int ns_open_record(struct ns_seal *s, __u8 *rec, size_t len, const __u8 **plain,
		   size_t *plen);

/* Seal one datagram's payload into out (n + NS_SEAL_DGRAM_OVERHEAD bytes). */
int ns_seal_dgram(struct ns_seal *s, const __u8 *in, size_t n, __u8 *out);
/* Open a datagram in place: -EBADMSG forged or damaged, -EALREADY a replay
 * (or older than the window). */
int ns_open_dgram(struct ns_seal *s, __u8 *d, size_t n, const __u8 **plain, size_t *plen);

/*
 * Hand both directions to the kernel (kTLS, TLS 1.3 AES-128-GCM) on a
 * connected TCP socket; what was sealed or opened in user space so far
 * (the sequence numbers) carries on. 0; -ENOPROTOOPT when this kernel has
 * no kTLS (the socket is unchanged: seal in user space); another -errno
 * when the socket is left half set up and must be closed.
 */
int ns_seal_ktls(int fd, const struct ns_seal *tx, const struct ns_seal *rx);
/* Is kTLS on fd (its upper layer protocol is "tls")? */
bool ns_seal_ktls_on(int fd);

#endif
