// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TLS 1.3 on the control connections (tls.h). Policy, in one place:
 *  - TLS 1.3 only, both ends; no session tickets (no resumption state to
 *    protect, and nothing for a restarted broker to honour);
 *  - the client authenticates the broker by a pin of its certificate
 *    (SHA-256 over the DER), or by a CA and optionally a host name or IP;
 *    the broker asks for no client certificate: agents and relays prove
 *    who they are with the HMAC login bound to this connection's exporter;
 *  - TLS 1.3 has no renegotiation; a peer sending KeyUpdates is bounded:
 *    the message callback counts them and the read step fails the
 *    connection after NS_TLS_KEY_UPDATES_MAX (a storm costs us a key
 *    derivation each, and answering each costs a write);
 *  - an end of the TCP stream without close_notify is an ordinary end
 *    (SSL_OP_IGNORE_UNEXPECTED_EOF): our frames carry their own lengths,
 *    so a truncation shows as a missing message, never a short one.
 * OpenSSL's error queue is cleared before every call whose SSL_get_error()
 * we read, and drained into the caller's err text afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "util.h"
#include "ns_proto.h"

#define FP_PREFIX	"sha256:"

struct ns_tls_client {
	SSL_CTX *ctx;
	bool has_pin;
	__u8 pin[NS_TLS_FP_LEN];
	char host[NS_TLS_PATH_MAX];
};

/* ---- errors ---- */

/* OpenSSL's last reason (the queue drained), or what, into err. */
static void ssl_err(char *err, size_t len, const char *what)
{
	unsigned long e, last = 0;
	char buf[160];

	while ((e = ERR_get_error()))
		last = e;
	if (!err || !len)
		return;
	if (last) {
		ERR_error_string_n(last, buf, sizeof(buf));
		snprintf(err, len, "%s: %s", what, buf);
	} else {
		snprintf(err, len, "%s", what);
	}
}

/* ---- fingerprints ---- */

const char *ns_tls_fp_str(const __u8 fp[NS_TLS_FP_LEN], char *buf, size_t len)
{
	char hex[2 * NS_TLS_FP_LEN + 1];

	ns_hex(fp, NS_TLS_FP_LEN, hex);
	snprintf(buf, len, FP_PREFIX "%s", hex);
	return buf;
}

int ns_tls_fp_parse(const char *s, __u8 fp[NS_TLS_FP_LEN])
{
	int i, hi, lo;

	if (!strncasecmp(s, FP_PREFIX, strlen(FP_PREFIX)))
		s += strlen(FP_PREFIX);
	for (i = 0; i < NS_TLS_FP_LEN; i++) {
		if (i && *s == ':')
			s++;
		hi = ns_hexval(s[0]);
		lo = hi < 0 ? -1 : ns_hexval(s[1]);
		if (lo < 0)
			return -EINVAL;
		fp[i] = hi << 4 | lo;
		s += 2;
	}
	return *s ? -EINVAL : 0;
}

int ns_tls_fp_cert(X509 *cert, __u8 fp[NS_TLS_FP_LEN])
{
	unsigned int n = 0;

	if (!cert || !X509_digest(cert, EVP_sha256(), fp, &n) || n != NS_TLS_FP_LEN)
		return -EIO;
	return 0;
}

static int read_cert(const char *path, X509 **out, char *err, size_t len)
{
	FILE *f = fopen(path, "r");
	int e;

	if (!f) {
		e = -errno;
		snprintf(err, len, "%s: %s", path, strerror(-e));
		return e;
	}
	*out = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!*out) {
		char what[NS_TLS_PATH_MAX + 40];

		snprintf(what, sizeof(what), "%s: no PEM certificate", path);
		ssl_err(err, len, what);
		return -EINVAL;
	}
	return 0;
}

int ns_tls_fp_file(const char *path, __u8 fp[NS_TLS_FP_LEN], char *err, size_t len)
{
	X509 *x = NULL;
	int e = read_cert(path, &x, err, len);

	if (!e && (e = ns_tls_fp_cert(x, fp)))
		snprintf(err, len, "%s: cannot hash the certificate", path);
	X509_free(x);
	return e;
}

/* ---- the broker's certificate ---- */

/* mkdir -p of path's directory (0755). */
static int mkdir_parent(const char *path)
{
	char dir[NS_TLS_PATH_MAX], *p;

	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	strcpy(dir, path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* A new file (never an existing one) with mode, as a stdio stream. */
static FILE *create_file(const char *path, mode_t mode, char *err, size_t len)
{
	int e = mkdir_parent(path), fd;
	FILE *f;

	if (e) {
		snprintf(err, len, "%s: cannot create its directory: %s", path, strerror(-e));
		return NULL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
	}
	return f;
}

static X509 *self_sign(EVP_PKEY *pk, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext;
	__u8 serial[8];
	BIGNUM *bn = NULL;
	bool ok = false;

	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;	/* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_version(x, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)NS_TLS_CERT_DAYS * 86400) ||
	    !X509_set_pubkey(x, pk))
		goto out;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto out;
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:FALSE");
	if (!ext)
		goto out;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ok = ok && X509_sign(x, pk, EVP_sha256());
out:
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

int ns_tls_gen_self_signed(const char *cert, const char *key, const char *cn,
			   char *err, size_t len)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE *kf = NULL, *cf = NULL;
	X509 *x = NULL;
	int e = -EIO;

	if (!pk) {
		ssl_err(err, len, "cannot generate a P-256 key");
		goto out;
	}
	x = self_sign(pk, cn);
	if (!x) {
		ssl_err(err, len, "cannot make a self-signed certificate");
		goto out;
	}
	kf = create_file(key, 0600, err, len);
	if (!kf)
		goto out;
	if (!PEM_write_PrivateKey(kf, pk, NULL, NULL, 0, NULL, NULL) || fflush(kf)) {
		ssl_err(err, len, "cannot write the key");
		goto out_unlink;
	}
	cf = create_file(cert, 0644, err, len);
	if (!cf)
		goto out_unlink;
	if (!PEM_write_X509(cf, x) || fflush(cf)) {
		ssl_err(err, len, "cannot write the certificate");
		fclose(cf);
		cf = NULL;
		unlink(cert);
		goto out_unlink;
	}
	e = 0;
	goto out;
out_unlink:
	unlink(key);
out:
	if (kf)
		fclose(kf);
	if (cf)
		fclose(cf);
	X509_free(x);
	EVP_PKEY_free(pk);
	return e;
}

int ns_tls_ensure_cert(const char *cert, const char *key, bool *created, char *err,
		       size_t len)
{
	bool has_cert = !access(cert, F_OK), has_key = !access(key, F_OK);

	*created = false;
	if (has_cert && has_key)
		return 0;
	if (has_cert || has_key) {
		snprintf(err, len, "%s exists but %s does not: give both tls-cert and tls-key, "
			 "or remove %s to have a new key and certificate made",
			 has_cert ? cert : key, has_cert ? key : cert, has_cert ? cert : key);
		return -EINVAL;
	}
	if (ns_tls_gen_self_signed(cert, key, "natsplice-broker", err, len))
		return -EIO;
	*created = true;
	return 0;
}

/* ---- contexts ---- */

static int key_update_idx = -1;

/* Count the peer's KeyUpdate messages (read side, handshake records). */
static void on_msg(int write_p, int version, int content_type, const void *buf, size_t n,
		   SSL *ssl, void *arg)
{
	const __u8 *p = buf;
	uintptr_t cnt;

	if (write_p || content_type != SSL3_RT_HANDSHAKE || n < 1 || p[0] != SSL3_MT_KEY_UPDATE)
		return;
	cnt = (uintptr_t)SSL_get_ex_data(ssl, key_update_idx);
	SSL_set_ex_data(ssl, key_update_idx, (void *)(cnt + 1));
}

unsigned int ns_tls_key_updates(const struct ssl_st *ssl)
{
	return key_update_idx < 0 ? 0 : (uintptr_t)SSL_get_ex_data(ssl, key_update_idx);
}

/* What both ends share. */
static SSL_CTX *ctx_new(const SSL_METHOD *m, char *err, size_t len)
{
	SSL_CTX *ctx;

	if (key_update_idx < 0)
		key_update_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx = SSL_CTX_new(m);
	if (!ctx || key_update_idx < 0 ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		ssl_err(err, len, "cannot set up TLS");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* conn.c's write buffer moves and grows between retries of one write;
	 * an idle connection gives its record buffers back (~17 KB per broker
	 * connection: control connections are idle almost always) */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_msg_callback(ctx, on_msg);
	return ctx;
}

int ns_tls_server_ctx(const char *cert, const char *key, SSL_CTX **out, char *err, size_t len)
{
	char what[NS_TLS_PATH_MAX + 32];
	SSL_CTX *ctx = ctx_new(TLS_server_method(), err, len);

	*out = NULL;
	if (!ctx)
		return -EIO;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(what, sizeof(what), "tls-cert %s", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(what, sizeof(what), "tls-key %s", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "tls-key %s does not match tls-cert", key);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	*out = ctx;
	return 0;
fail:
	ssl_err(err, len, what);
	SSL_CTX_free(ctx);
	return -EINVAL;
}

int ns_tls_client_set_pin(struct ns_tls_client_cfg *c, const char *val)
{
	if (ns_tls_fp_parse(val, c->pin))
		return -EINVAL;
	c->has_pin = true;
	return 0;
}

int ns_tls_client_cfg_check(const struct ns_tls_client_cfg *c, char *err, size_t len)
{
	if (c->insecure && (c->has_pin || c->ca[0])) {
		snprintf(err, len, "insecure: true (plain text) and %s exclude each other",
			 c->has_pin ? "broker-fingerprint" : "broker-ca");
		return -EINVAL;
	}
	if (c->host[0] && !c->ca[0]) {
		snprintf(err, len, "broker-name is checked against broker-ca: give broker-ca "
			 "too (or drop broker-name and pin with broker-fingerprint)");
		return -EINVAL;
	}
	if (!c->insecure && !c->has_pin && !c->ca[0]) {
		snprintf(err, len, "no way to authenticate the broker: add broker-fingerprint: "
			 "sha256:... (`natsplice-broker --fingerprint -f broker.yaml` prints it), "
			 "or broker-ca: FILE (and broker-name), or insecure: true for plain text");
		return -EINVAL;
	}
	return 0;
}

int ns_tls_client_new(const struct ns_tls_client_cfg *c, struct ns_tls_client **out,
		      char *err, size_t len)
{
	struct ns_tls_client *tc;
	char what[NS_TLS_PATH_MAX + 32];

	*out = NULL;
	if (c->insecure)
		return 0;
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return -ENOMEM;
	tc->ctx = ctx_new(TLS_client_method(), err, len);
	if (!tc->ctx) {
		free(tc);
		return -EIO;
	}
	tc->has_pin = c->has_pin;
	memcpy(tc->pin, c->pin, sizeof(tc->pin));
	snprintf(tc->host, sizeof(tc->host), "%s", c->host);
	if (c->ca[0]) {
		if (SSL_CTX_load_verify_locations(tc->ctx, c->ca, NULL) != 1) {
			snprintf(what, sizeof(what), "broker-ca %s", c->ca);
			ssl_err(err, len, what);
			ns_tls_client_free(tc);
			return -EINVAL;
		}
		SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* the pin alone decides, after the handshake */
		SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_NONE, NULL);
	}
	*out = tc;
	return 0;
}

void ns_tls_client_free(struct ns_tls_client *tc)
{
	if (!tc)
		return;
	SSL_CTX_free(tc->ctx);
	free(tc);
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int ns_tls_client_ssl(const struct ns_tls_client *tc, int fd, SSL **out)
{
	SSL *ssl = SSL_new(tc->ctx);

	*out = NULL;
	if (!ssl || !SSL_set_fd(ssl, fd))
		goto fail;
	if (tc->host[0]) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		if (is_ip(tc->host)) {
			if (!X509_VERIFY_PARAM_set1_ip_asc(vp, tc->host))
				goto fail;
		} else if (!SSL_set1_host(ssl, tc->host) ||
			   !SSL_set_tlsext_host_name(ssl, tc->host)) {
			goto fail;
		}
	}
	SSL_set_connect_state(ssl);
	*out = ssl;
	return 0;
fail:
	ERR_clear_error();
	SSL_free(ssl);
	return -ENOMEM;
}

int ns_tls_client_check(const struct ns_tls_client *tc, SSL *ssl, char *err, size_t len)
{
	char got[NS_TLS_FP_STRLEN], want[NS_TLS_FP_STRLEN];
	__u8 fp[NS_TLS_FP_LEN];
	X509 *x;

	if (!tc->has_pin)
		return 0;
	x = SSL_get0_peer_certificate(ssl);
	if (!x || ns_tls_fp_cert(x, fp)) {
		snprintf(err, len, "the broker sent no certificate");
		return -EACCES;
	}
	if (CRYPTO_memcmp(fp, tc->pin, NS_TLS_FP_LEN)) {
		snprintf(err, len, "broker certificate %s does not match broker-fingerprint %s",
			 ns_tls_fp_str(fp, got, sizeof(got)),
			 ns_tls_fp_str(tc->pin, want, sizeof(want)));
		return -EACCES;
	}
	return 0;
}

int ns_tls_client_done(const struct ns_tls_client *tc, SSL *ssl, __u8 *ekm, size_t ekm_len,
		       char *err, size_t len)
{
	int e = ns_tls_client_check(tc, ssl, err, len);

	if (e)
		return e;
	if (ns_tls_exporter(ssl, ekm, ekm_len)) {
		snprintf(err, len, "no TLS exporter");
		return -EIO;
	}
	return 0;
}

int ns_tls_server_ssl(SSL_CTX *ctx, int fd, SSL **out)
{
	SSL *ssl = SSL_new(ctx);

	*out = NULL;
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		ERR_clear_error();
		SSL_free(ssl);
		return -ENOMEM;
	}
	SSL_set_accept_state(ssl);
	*out = ssl;
	return 0;
}

/* ---- non-blocking steps ---- */

/* What a failed SSL call with result ret means, in our terms. */
static int step_result(SSL *ssl, int ret, const char *what, char *err, size_t len)
{
	int e = SSL_get_error(ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error()) {
			int se = errno;

			ERR_clear_error();
			if (ret == 0 || se == 0 || se == ECONNRESET)
				return -ECONNRESET;
			return se == EPIPE ? -EPIPE : -se;
		}
		/* fall through */
	default:
		ssl_err(err, len, what);
		return -EPROTO;
	}
}

int ns_tls_handshake(SSL *ssl, char *err, size_t len)
{
	long vr;
	int ret;

	ERR_clear_error();
	ret = SSL_do_handshake(ssl);
	if (ret == 1)
		return 0;
	ret = step_result(ssl, ret, "TLS handshake", err, len);
	vr = SSL_get_verify_result(ssl);
	if (ret == -EPROTO && vr != X509_V_OK)
		snprintf(err, len, "TLS handshake: certificate verify failed: %s",
			 X509_verify_cert_error_string(vr));
	return ret;
}

ssize_t ns_tls_read(SSL *ssl, void *buf, size_t n, char *err, size_t len)
{
	int ret;

	if (ns_tls_key_updates(ssl) > NS_TLS_KEY_UPDATES_MAX) {
		snprintf(err, len, "more than %d TLS KeyUpdates", NS_TLS_KEY_UPDATES_MAX);
		return -EPROTO;
	}
	ERR_clear_error();
	ret = SSL_read(ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
	if (ret > 0)
		return ret;
	return step_result(ssl, ret, "TLS read", err, len);
}

ssize_t ns_tls_write(SSL *ssl, const void *buf, size_t n, char *err, size_t len)
{
	int ret;

	ERR_clear_error();
	ret = SSL_write(ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
	if (ret > 0)
		return ret;
	ret = step_result(ssl, ret, "TLS write", err, len);
	return ret == -ECONNRESET ? -EPIPE : ret;
}

bool ns_tls_want_write(const struct ssl_st *ssl)
{
	return SSL_want_write(ssl);
}

bool ns_tls_pending(const struct ssl_st *ssl)
{
	return SSL_pending(ssl) > 0 || SSL_has_pending(ssl);
}

void ns_tls_close_notify(SSL *ssl)
{
	if (!SSL_is_init_finished(ssl))
		return;
	ERR_clear_error();
	SSL_shutdown(ssl);
	ERR_clear_error();
}

int ns_tls_exporter(SSL *ssl, __u8 *out, size_t outlen)
{
	return SSL_export_keying_material(ssl, out, outlen, NS_TLS_EXPORTER_LABEL,
					  strlen(NS_TLS_EXPORTER_LABEL), NULL, 0, 0) == 1 ?
	       0 : -EIO;
}
