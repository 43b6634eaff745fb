/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TLS 1.3 for the control connections (include/ns_proto.h, "Transport"),
 * with OpenSSL's libssl: contexts for the broker and its clients,
 * non-blocking handshake, read and write steps in our 0 / -errno / -EAGAIN
 * style, certificate fingerprints ("sha256:<hex>") and the broker's
 * self-signed certificate. lib/conn.c runs its framing over an SSL* from
 * here; nothing in this file knows the protocol.
 */
#ifndef NS_LIB_TLS_H
#define NS_LIB_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

struct ssl_st;
struct ssl_ctx_st;
struct x509_st;

#define NS_TLS_FP_LEN		32			/* SHA-256 of the DER certificate */
#define NS_TLS_FP_STRLEN	(7 + 2 * NS_TLS_FP_LEN + 1)	/* "sha256:" hex NUL */
#define NS_TLS_ERR_LEN		200			/* an error text, NUL included */
#define NS_TLS_PATH_MAX		256
#define NS_TLS_CERT_DAYS	3650			/* a generated certificate's life */

/* ---- fingerprints ---- */

/* "sha256:" and 64 lower-case hex digits; buf has NS_TLS_FP_STRLEN bytes. */
const char *ns_tls_fp_str(const __u8 fp[NS_TLS_FP_LEN], char *buf, size_t len);
/* "sha256:" (optional, any case) and 64 hex digits, each pair optionally
 * separated by ':' (as `openssl x509 -fingerprint -sha256` prints): 0 or -EINVAL. */
int ns_tls_fp_parse(const char *s, __u8 fp[NS_TLS_FP_LEN]);
/* SHA-256 over the certificate's DER encoding: 0 or -EIO. */
int ns_tls_fp_cert(struct x509_st *cert, __u8 fp[NS_TLS_FP_LEN]);
/* ... of the first certificate of a PEM file: 0 or -errno with err. */
int ns_tls_fp_file(const char *path, __u8 fp[NS_TLS_FP_LEN], char *err, size_t len);

/* ---- the broker's certificate ---- */

/* A new P-256 key (mode 0600) and a self-signed certificate for it (CN =
 * cn, NS_TLS_CERT_DAYS days), their directories created (0755) if needed.
 * Refuses to overwrite either file. 0 or -errno with err. */
int ns_tls_gen_self_signed(const char *cert, const char *key, const char *cn,
			   char *err, size_t len);
/* Both files there: 0. Neither: generated (*created = true). One of the two
 * only: -EINVAL with err (the operator must fix it, not us). */
int ns_tls_ensure_cert(const char *cert, const char *key, bool *created, char *err,
		       size_t len);

/* ---- contexts ---- */

/* TLS 1.3 only, no tickets, the certificate and key loaded (and matching),
 * KeyUpdates counted: 0 or -errno with err. Free with SSL_CTX_free(). */
int ns_tls_server_ctx(const char *cert, const char *key, struct ssl_ctx_st **out,
		      char *err, size_t len);

/* How a client authenticates the broker (agent.yaml, relay.yaml). */
struct ns_tls_client_cfg {
	bool has_pin;
	__u8 pin[NS_TLS_FP_LEN];		/* broker-fingerprint */
	char ca[NS_TLS_PATH_MAX];		/* broker-ca: a PEM file, "" = none */
	char host[NS_TLS_PATH_MAX];		/* broker-name: DNS name or IP in the cert */
	bool insecure;				/* insecure: plain text */
};
/* broker-fingerprint's value into c: 0 or -EINVAL. */
int ns_tls_client_set_pin(struct ns_tls_client_cfg *c, const char *val);
/*
 * The four client settings (lib/settings.h) of a daemon whose config struct
 * ctype has a struct ns_tls_client_cfg member tls; set_pin is its NS_SET_FUNC
 * parser calling ns_tls_client_set_pin(&cfg->tls, val).
 */
#define NS_TLS_CLIENT_SETTINGS(ctype, set_pin)						\
	{ .name = "broker-fingerprint", .type = NS_SET_FUNC, .parse = set_pin,		\
	  .what = "sha256: and 64 hex digits", .arg = "sha256:HEX",			\
	  .help = "pin the broker's TLS certificate: its SHA-256 fingerprint, as "	\
		  "`natsplice-broker --fingerprint -f broker.yaml` prints it" },	\
	{ .name = "broker-ca", .type = NS_SET_STR, NS_FIELD(ctype, tls.ca), .arg = "FILE",	\
	  .help = "or verify the broker's certificate chain against this CA (PEM)" },	\
	{ .name = "broker-name", .type = NS_SET_STR, NS_FIELD(ctype, tls.host),		\
	  .arg = "NAME", .help = "with broker-ca: the DNS name or IP address the "	\
	  "broker's certificate must carry" },						\
	{ .name = "insecure", .type = NS_SET_FLAG, NS_FIELD(ctype, tls.insecure),	\
	  .help = "no TLS: plain text to a broker that has insecure: true too "	\
		  "(anyone on the path can read and change the control messages). One of "	\
		  "broker-fingerprint, broker-ca or insecure is required" }

/* The configured choice is complete and consistent: 0, or -EINVAL with err
 * saying what to add ("... `natsplice-broker --fingerprint` prints it"). */
int ns_tls_client_cfg_check(const struct ns_tls_client_cfg *c, char *err, size_t len);

struct ns_tls_client;
/* NULL in *out for insecure (plain text); else a context with the CA
 * loaded: 0 or -errno with err. */
int ns_tls_client_new(const struct ns_tls_client_cfg *c, struct ns_tls_client **out,
		      char *err, size_t len);
void ns_tls_client_free(struct ns_tls_client *tc);	/* safe on NULL */
/* A client SSL on the connected socket fd (not owned): 0 or -ENOMEM. */
int ns_tls_client_ssl(const struct ns_tls_client *tc, int fd, struct ssl_st **out);
/* After the handshake: the broker's certificate matches the pin (the chain
 * and name were checked in the handshake): 0, or -EACCES with err
 * "broker certificate sha256:... does not match broker-fingerprint sha256:...". */
int ns_tls_client_check(const struct ns_tls_client *tc, struct ssl_st *ssl, char *err,
			size_t len);
/* The client's step after its handshake, before LOGIN: the broker checked
 * (ns_tls_client_check), then the login binding (ns_tls_exporter) into ekm
 * (NS_TLS_EXPORTER_LEN bytes): 0, or -EACCES / -EIO with err. */
int ns_tls_client_done(const struct ns_tls_client *tc, struct ssl_st *ssl, __u8 *ekm,
		       size_t ekm_len, char *err, size_t len);
/* A server SSL on fd (not owned): 0 or -ENOMEM. */
int ns_tls_server_ssl(struct ssl_ctx_st *ctx, int fd, struct ssl_st **out);

/* ---- non-blocking steps (level-triggered epoll) ---- */

/*
 * One handshake step: 0 done, -EAGAIN (wait for ns_tls_want_write() ?
 * EPOLLOUT : EPOLLIN), -ECONNRESET (the peer closed), or -EPROTO with err
 * (OpenSSL's reason: a bad certificate, no common version, garbage).
 */
int ns_tls_handshake(struct ssl_st *ssl, char *err, size_t len);
/*
 * Read: bytes (> 0); -EAGAIN (nothing now; call again when readable, or
 * writable if ns_tls_want_write()); -ECONNRESET (end of the stream); -EPROTO
 * with err (a record that fails authentication, too many KeyUpdates).
 * Call until -EAGAIN: a record's rest may be buffered inside the SSL while
 * the socket has nothing (ns_tls_pending()).
 */
ssize_t ns_tls_read(struct ssl_st *ssl, void *buf, size_t n, char *err, size_t len);
/*
 * Write: bytes taken (> 0, whole records); -EAGAIN (retry with the same
 * bytes, possibly more, possibly moved); -EPIPE; -EPROTO with err.
 */
ssize_t ns_tls_write(struct ssl_st *ssl, const void *buf, size_t n, char *err, size_t len);
bool ns_tls_want_write(const struct ssl_st *ssl);
bool ns_tls_pending(const struct ssl_st *ssl);	/* read bytes buffered in the SSL */
/* Our close_notify, best effort (non-blocking, the answer is not awaited). */
void ns_tls_close_notify(struct ssl_st *ssl);
/* The login binding: NS_TLS_EXPORTER_LEN bytes of RFC 8446 exporter with
 * NS_TLS_EXPORTER_LABEL and an empty context: 0 or -EIO. */
int ns_tls_exporter(struct ssl_st *ssl, __u8 *out, size_t outlen);
/* KeyUpdates received on this connection so far. */
unsigned int ns_tls_key_updates(const struct ssl_st *ssl);

#endif
