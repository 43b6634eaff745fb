// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tls: fingerprints written and read back (the broker's line and OpenSSL's
 * colon style), the self-signed certificate (key mode 0600, fingerprint
 * stable across reloads and equal to what the handshake shows), the
 * "one of the two files" refusal, and a non-blocking handshake between our
 * server and client contexts over a socketpair: the pin accepted or refused
 * with its message, equal exporters on both ends, framed messages through
 * ns_conn over TLS.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "proto.h"
#include "tls.h"

struct dir {
	char path[64], cert[96], key[96];
};

static void dir_make(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/test_tls.XXXXXX");
	assert_non_null(mkdtemp(d->path));
	/* a directory that does not exist yet: made on the way */
	snprintf(d->cert, sizeof(d->cert), "%s/sub/broker.crt", d->path);
	snprintf(d->key, sizeof(d->key), "%s/sub/broker.key", d->path);
}

static void dir_free(struct dir *d)
{
	char sub[80];

	unlink(d->cert);
	unlink(d->key);
	snprintf(sub, sizeof(sub), "%s/sub", d->path);
	rmdir(sub);
	rmdir(d->path);
}

static void test_fp_format_parse(void **state)
{
	__u8 fp[NS_TLS_FP_LEN], back[NS_TLS_FP_LEN];
	char s[NS_TLS_FP_STRLEN];
	int i;

	for (i = 0; i < NS_TLS_FP_LEN; i++)
		fp[i] = i * 7 + 1;
	ns_tls_fp_str(fp, s, sizeof(s));
	assert_int_equal(strlen(s), NS_TLS_FP_STRLEN - 1);
	assert_string_equal(s, "sha256:01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da");
	assert_int_equal(ns_tls_fp_parse(s, back), 0);
	assert_memory_equal(fp, back, NS_TLS_FP_LEN);
	/* no prefix, capitals, OpenSSL's colons */
	assert_int_equal(ns_tls_fp_parse("01080F161D242B323940474E555C636A71787F868D949BA2A9B0B7BEC5CCD3DA",
					 back), 0);
	assert_memory_equal(fp, back, NS_TLS_FP_LEN);
	assert_int_equal(ns_tls_fp_parse("SHA256:01:08:0F:16:1D:24:2B:32:39:40:47:4E:55:5C:63:6A:"
					 "71:78:7F:86:8D:94:9B:A2:A9:B0:B7:BE:C5:CC:D3:DA", back), 0);
	assert_memory_equal(fp, back, NS_TLS_FP_LEN);
	/* too short, too long, not hex, another hash, a leading colon */
	assert_int_equal(ns_tls_fp_parse("sha256:0108", back), -EINVAL);
	assert_int_equal(ns_tls_fp_parse("sha256:01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da00",
					 back), -EINVAL);
	assert_int_equal(ns_tls_fp_parse("sha256:x1080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da",
					 back), -EINVAL);
	assert_int_equal(ns_tls_fp_parse("sha1:01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da",
					 back), -EINVAL);
	assert_int_equal(ns_tls_fp_parse(":01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da",
					 back), -EINVAL);
	assert_int_equal(ns_tls_fp_parse("", back), -EINVAL);
}

static void test_self_signed(void **state)
{
	__u8 fp1[NS_TLS_FP_LEN], fp2[NS_TLS_FP_LEN];
	char err[NS_TLS_ERR_LEN];
	struct dir d;
	struct stat st;
	bool created;
	SSL_CTX *ctx;

	dir_make(&d);
	assert_int_equal(ns_tls_ensure_cert(d.cert, d.key, &created, err, sizeof(err)), 0);
	assert_true(created);
	assert_int_equal(stat(d.key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ns_tls_fp_file(d.cert, fp1, err, sizeof(err)), 0);
	/* the second start keeps them: the same fingerprint */
	assert_int_equal(ns_tls_ensure_cert(d.cert, d.key, &created, err, sizeof(err)), 0);
	assert_false(created);
	assert_int_equal(ns_tls_fp_file(d.cert, fp2, err, sizeof(err)), 0);
	assert_memory_equal(fp1, fp2, NS_TLS_FP_LEN);
	assert_int_equal(ns_tls_server_ctx(d.cert, d.key, &ctx, err, sizeof(err)), 0);
	assert_int_equal(ns_tls_fp_cert(SSL_CTX_get0_certificate(ctx), fp2), 0);
	assert_memory_equal(fp1, fp2, NS_TLS_FP_LEN);
	SSL_CTX_free(ctx);
	/* never overwritten */
	assert_int_not_equal(ns_tls_gen_self_signed(d.cert, d.key, "x", err, sizeof(err)), 0);
	assert_int_equal(ns_tls_fp_file(d.cert, fp2, err, sizeof(err)), 0);
	assert_memory_equal(fp1, fp2, NS_TLS_FP_LEN);
	/* one file without the other: refused, not replaced */
	unlink(d.key);
	assert_int_equal(ns_tls_ensure_cert(d.cert, d.key, &created, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "exists but"));
	assert_int_equal(access(d.key, F_OK), -1);
	dir_free(&d);
}

/* ---- a handshake over a socketpair ---- */

struct pair {
	struct dir d;
	SSL_CTX *sctx;
	struct ns_tls_client *tc;
	struct ns_conn s, c;
	__u8 fp[NS_TLS_FP_LEN];
};

static void pair_open(struct pair *p, bool right_pin)
{
	struct ns_tls_client_cfg cc = { .has_pin = true };
	char err[NS_TLS_ERR_LEN];
	struct ssl_st *ssl;
	bool created;
	int sv[2];

	memset(p, 0, sizeof(*p));
	dir_make(&p->d);
	assert_int_equal(ns_tls_ensure_cert(p->d.cert, p->d.key, &created, err, sizeof(err)), 0);
	assert_int_equal(ns_tls_fp_file(p->d.cert, p->fp, err, sizeof(err)), 0);
	assert_int_equal(ns_tls_server_ctx(p->d.cert, p->d.key, &p->sctx, err, sizeof(err)), 0);
	memcpy(cc.pin, p->fp, sizeof(cc.pin));
	if (!right_pin)
		cc.pin[5] ^= 0x40;
	assert_int_equal(ns_tls_client_cfg_check(&cc, err, sizeof(err)), 0);
	assert_int_equal(ns_tls_client_new(&cc, &p->tc, err, sizeof(err)), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ns_conn_init(&p->s, sv[0]), 0);
	assert_int_equal(ns_conn_init(&p->c, sv[1]), 0);
	assert_int_equal(ns_tls_server_ssl(p->sctx, p->s.fd, &ssl), 0);
	assert_int_equal(ns_conn_set_tls(&p->s, ssl), 0);
	assert_int_equal(ns_tls_client_ssl(p->tc, p->c.fd, &ssl), 0);
	assert_int_equal(ns_conn_set_tls(&p->c, ssl), 0);
}

/* Both ends step in turn until both are done (non-blocking all along). */
static void pair_handshake(struct pair *p)
{
	int i, rs = 1, rc = 1;

	for (i = 0; i < 50 && (rs || rc); i++) {
		if (rc)
			rc = ns_conn_handshake(&p->c);
		if (rs)
			rs = ns_conn_handshake(&p->s);
		assert_true(rc >= 0 && rs >= 0);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
}

static void pair_close(struct pair *p)
{
	ns_conn_free(&p->s);
	ns_conn_free(&p->c);
	SSL_CTX_free(p->sctx);
	ns_tls_client_free(p->tc);
	dir_free(&p->d);
}

static void test_handshake_pin_exporter(void **state)
{
	__u8 e1[NS_TLS_EXPORTER_LEN], e2[NS_TLS_EXPORTER_LEN];
	char err[NS_TLS_ERR_LEN];
	struct ns_msg_buf mb = {};
	struct ns_msg m;
	struct pair p;
	__u32 v = 0;
	int i, n = 0;

	pair_open(&p, true);
	/* queued before the handshake is done: sent after it */
	ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	ns_mb_u32(&mb, NS_A_HOLD_TIME, 77);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(ns_conn_send(&p.c, &mb), 0);
	ns_mb_free(&mb);
	pair_handshake(&p);
	assert_int_equal(ns_tls_client_check(p.tc, p.c.ssl, err, sizeof(err)), 0);
	/* the client's login binding (pin checked first) is the server's exporter */
	assert_int_equal(ns_tls_client_done(p.tc, p.c.ssl, e1, sizeof(e1), err, sizeof(err)), 0);
	assert_int_equal(ns_tls_exporter(p.s.ssl, e2, sizeof(e2)), 0);
	assert_memory_equal(e1, e2, sizeof(e1));
	/* the framed message arrives whole, through TLS */
	for (i = 0; i < 20 && n == 0; i++) {
		assert_true(ns_conn_flush(&p.c) >= 0);
		assert_int_equal(ns_conn_read(&p.s), 0);
		n = ns_conn_next(&p.s, &m);
	}
	assert_int_equal(n, 1);
	assert_int_equal(m.type, NS_MSG_HEARTBEAT);
	assert_int_equal(ns_msg_u32(&m, NS_A_HOLD_TIME, &v), 0);
	assert_int_equal(v, 77);
	/* close_notify reads as the end of the stream */
	ns_conn_shutdown(&p.c);
	assert_int_equal(ns_conn_read(&p.s), -ECONNRESET);
	pair_close(&p);
}

static void test_wrong_pin(void **state)
{
	char err[NS_TLS_ERR_LEN], got[NS_TLS_FP_STRLEN], want[120];
	__u8 ekm[NS_TLS_EXPORTER_LEN], zero[NS_TLS_EXPORTER_LEN] = {};
	struct pair p;

	pair_open(&p, false);
	pair_handshake(&p);
	assert_int_equal(ns_tls_client_check(p.tc, p.c.ssl, err, sizeof(err)), -EACCES);
	snprintf(want, sizeof(want), "broker certificate %s does not match",
		 ns_tls_fp_str(p.fp, got, sizeof(got)));
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "broker-fingerprint sha256:"));
	/* no login binding for a broker that fails the pin */
	memset(ekm, 0, sizeof(ekm));
	err[0] = '\0';
	assert_int_equal(ns_tls_client_done(p.tc, p.c.ssl, ekm, sizeof(ekm), err, sizeof(err)),
			 -EACCES);
	assert_non_null(strstr(err, want));
	assert_memory_equal(ekm, zero, sizeof(ekm));
	pair_close(&p);
}

/* A KeyUpdate storm: the reader closes after NS_TLS_KEY_UPDATES_MAX. */
static void test_key_update_bound(void **state)
{
	struct ns_msg_buf mb = {};
	struct ns_msg m;
	struct pair p;
	int i, r = 0;

	pair_open(&p, true);
	pair_handshake(&p);
	for (i = 0; i < NS_TLS_KEY_UPDATES_MAX + 8; i++) {
		assert_int_equal(SSL_key_update(p.c.ssl, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
		ns_mb_init(&mb, NS_MSG_HEARTBEAT);
		assert_int_equal(ns_mb_finish(&mb), 0);
		assert_int_equal(ns_conn_send(&p.c, &mb), 0);
		ns_mb_free(&mb);
		if (i == NS_TLS_KEY_UPDATES_MAX - 1) {
			/* up to the bound: read as usual */
			assert_int_equal(ns_conn_read(&p.s), 0);
			while (ns_conn_next(&p.s, &m) > 0)
				;
			assert_int_equal(ns_tls_key_updates(p.s.ssl), NS_TLS_KEY_UPDATES_MAX);
		}
	}
	for (i = 0; i < 10 && r == 0; i++) {
		r = ns_conn_read(&p.s);
		while (ns_conn_next(&p.s, &m) > 0)
			;
	}
	assert_int_equal(r, -EPROTO);
	assert_non_null(strstr(ns_conn_strerror(&p.s, r), "KeyUpdates"));
	pair_close(&p);
}

/* Garbage instead of a ClientHello: a TLS error with OpenSSL's reason. */
static void test_handshake_garbage(void **state)
{
	struct pair p;
	int r;

	pair_open(&p, true);
	assert_int_equal(write(p.c.fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	r = ns_conn_handshake(&p.s);
	assert_int_equal(r, -EPROTO);
	assert_non_null(strstr(ns_conn_strerror(&p.s, r), "TLS handshake"));
	pair_close(&p);
}

static void test_client_cfg_check(void **state)
{
	struct ns_tls_client_cfg c = {};
	char err[NS_TLS_ERR_LEN];

	assert_int_equal(ns_tls_client_cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "natsplice-broker --fingerprint"));
	c.insecure = true;
	assert_int_equal(ns_tls_client_cfg_check(&c, err, sizeof(err)), 0);
	assert_int_equal(ns_tls_client_set_pin(&c, "sha256:00"), -EINVAL);
	assert_false(c.has_pin);
	c.insecure = false;
	snprintf(c.ca, sizeof(c.ca), "/nonexistent/ca.pem");
	assert_int_equal(ns_tls_client_cfg_check(&c, err, sizeof(err)), 0);
	{
		struct ns_tls_client *tc = NULL;

		assert_int_equal(ns_tls_client_new(&c, &tc, err, sizeof(err)), -EINVAL);
		assert_null(tc);
		assert_non_null(strstr(err, "broker-ca /nonexistent/ca.pem"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fp_format_parse),
		cmocka_unit_test(test_self_signed),
		cmocka_unit_test(test_handshake_pin_exporter),
		cmocka_unit_test(test_wrong_pin),
		cmocka_unit_test(test_key_update_bound),
		cmocka_unit_test(test_handshake_garbage),
		cmocka_unit_test(test_client_cfg_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
