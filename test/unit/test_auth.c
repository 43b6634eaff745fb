// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * auth: HMAC-SHA256 against RFC 4231, the login proof and key wrap against
 * vectors computed independently (Python's hmac module), and the tunnel
 * proof accepted only for the right key, session and role, with every byte
 * of it covered.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "auth.h"
#include "util.h"

static void unhex(const char *s, __u8 *out, size_t len)
{
	assert_int_equal(ns_unhex(s, out, len), 0);
}

/* RFC 4231 test cases 1, 2 and 6, the data given in pieces. */
static void test_hmac_rfc4231(void **state)
{
	__u8 key1[20], key6[131], want[NS_HMAC_LEN], out[NS_HMAC_LEN];
	const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";

	memset(key1, 0x0b, sizeof(key1));
	unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want, 32);
	assert_int_equal(ns_hmac(key1, sizeof(key1), (const void *[]){ "Hi There" },
				 (size_t[]){ 8 }, 1, out), 0);
	assert_memory_equal(out, want, NS_HMAC_LEN);

	unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
	assert_int_equal(ns_hmac("Jefe", 4, (const void *[]){ "what do ya ", "", "want for nothing?" },
				 (size_t[]){ 11, 0, 17 }, 3, out), 0);
	assert_memory_equal(out, want, NS_HMAC_LEN);

	/* an empty key and no data at all */
	unhex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", want, 32);
	assert_int_equal(ns_hmac("", 0, NULL, NULL, 0, out), 0);
	assert_memory_equal(out, want, NS_HMAC_LEN);

	memset(key6, 0xaa, sizeof(key6));
	unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want, 32);
	assert_int_equal(ns_hmac(key6, sizeof(key6), (const void *[]){ d6 },
				 (size_t[]){ strlen(d6) }, 1, out), 0);
	assert_memory_equal(out, want, NS_HMAC_LEN);
}

static void test_hmac_check(void **state)
{
	__u8 a[NS_HMAC_LEN], b[NS_HMAC_LEN];
	int i;

	for (i = 0; i < NS_HMAC_LEN; i++)
		a[i] = i * 7;
	memcpy(b, a, sizeof(a));
	assert_int_equal(ns_hmac_check(a, b), 0);
	for (i = 0; i < NS_HMAC_LEN; i++) {
		b[i] ^= 0x01;
		assert_int_equal(ns_hmac_check(a, b), -EACCES);
		b[i] ^= 0x81;
		assert_int_equal(ns_hmac_check(a, b), -EACCES);
		b[i] ^= 0x80;
	}
	assert_int_equal(ns_hmac_check(a, b), 0);
}

static void test_login_proof(void **state)
{
	__u8 nonce[NS_NONCE_LEN], want[NS_HMAC_LEN], out[NS_HMAC_LEN], again[NS_HMAC_LEN];
	int i;

	for (i = 0; i < NS_NONCE_LEN; i++)
		nonce[i] = i;
	/* HMAC-SHA256("s3cret", "natsplice-login" | 00 01 .. 1f | "alice") */
	unhex("939b10a58bd8bfdba51ba084524d8c69f45643a99314bb1ad0a5bbb0e59f51b7", want, 32);
	assert_int_equal(ns_login_proof("s3cret", nonce, "alice", NULL, 0, out), 0);
	assert_memory_equal(out, want, NS_HMAC_LEN);
	assert_int_equal(ns_login_proof("s3cret", nonce, "alice", NULL, 0, again), 0);
	assert_memory_equal(again, out, NS_HMAC_LEN);

	/* each input matters */
	assert_int_equal(ns_login_proof("s3creT", nonce, "alice", NULL, 0, again), 0);
	assert_int_equal(ns_hmac_check(again, out), -EACCES);
	assert_int_equal(ns_login_proof("s3cret", nonce, "alicf", NULL, 0, again), 0);
	assert_int_equal(ns_hmac_check(again, out), -EACCES);
	nonce[31] ^= 1;
	assert_int_equal(ns_login_proof("s3cret", nonce, "alice", NULL, 0, again), 0);
	assert_int_equal(ns_hmac_check(again, out), -EACCES);
	nonce[31] ^= 1;
}

/* The TLS exporter is appended: an empty one is the plain-text proof, any
 * other value (a man in the middle's own TLS connection) another proof. */
static void test_login_proof_binding(void **state)
{
	__u8 nonce[NS_NONCE_LEN], ekm[NS_TLS_EXPORTER_LEN], plain[NS_HMAC_LEN];
	__u8 bound[NS_HMAC_LEN], again[NS_HMAC_LEN];
	const void *parts[4];
	size_t lens[4];
	int i;

	for (i = 0; i < NS_NONCE_LEN; i++)
		nonce[i] = i;
	memset(ekm, 0xa5, sizeof(ekm));
	assert_int_equal(ns_login_proof("s3cret", nonce, "alice", NULL, 0, plain), 0);
	assert_int_equal(ns_login_proof("s3cret", nonce, "alice", ekm, 0, again), 0);
	assert_memory_equal(again, plain, NS_HMAC_LEN);
	assert_int_equal(ns_login_proof("s3cret", nonce, "alice", ekm, sizeof(ekm), bound), 0);
	assert_int_equal(ns_hmac_check(bound, plain), -EACCES);
	/* exactly HMAC(secret, label | nonce | name | exporter) */
	parts[0] = "natsplice-login", lens[0] = 15;
	parts[1] = nonce, lens[1] = NS_NONCE_LEN;
	parts[2] = "alice", lens[2] = 5;
	parts[3] = ekm, lens[3] = sizeof(ekm);
	assert_int_equal(ns_hmac("s3cret", 6, parts, lens, 4, again), 0);
	assert_memory_equal(again, bound, NS_HMAC_LEN);
	ekm[31] ^= 1;
	assert_int_equal(ns_login_proof("s3cret", nonce, "alice", ekm, sizeof(ekm), again), 0);
	assert_int_equal(ns_hmac_check(again, bound), -EACCES);
}

static void test_key_wrap(void **state)
{
	__u8 key[NS_KEY_LEN], wrapped[NS_KEY_LEN], back[NS_KEY_LEN], mask[NS_KEY_LEN];
	__u8 other[NS_KEY_LEN];

	/* all-zero key: the wrapped value is the mask itself */
	memset(key, 0, sizeof(key));
	unhex("dc7e4745fda6634a9162e4c6815da6cc13931d1087b8008a49721a8d06c4b1ce", mask, 32);
	assert_int_equal(ns_key_wrap("s3cret", 0x0102030405060708ull, key, wrapped), 0);
	assert_memory_equal(wrapped, mask, NS_KEY_LEN);

	assert_int_equal(ns_random_bytes(key, sizeof(key)), 0);
	assert_int_equal(ns_key_wrap("s3cret", 42, key, wrapped), 0);
	assert_memory_not_equal(wrapped, key, NS_KEY_LEN);
	assert_int_equal(ns_key_wrap("s3cret", 42, wrapped, back), 0);
	assert_memory_equal(back, key, NS_KEY_LEN);
	/* in place */
	memcpy(back, key, sizeof(key));
	assert_int_equal(ns_key_wrap("s3cret", 42, back, back), 0);
	assert_memory_equal(back, wrapped, NS_KEY_LEN);
	/* another agent's secret or another session unwraps to something else */
	assert_int_equal(ns_key_wrap("other", 42, wrapped, other), 0);
	assert_memory_not_equal(other, key, NS_KEY_LEN);
	assert_int_equal(ns_key_wrap("s3cret", 43, wrapped, other), 0);
	assert_memory_not_equal(other, key, NS_KEY_LEN);
	/* the session is 8 bytes big-endian: its high byte counts */
	assert_int_equal(ns_key_wrap("s3cret", 42 | 1ull << 56, wrapped, other), 0);
	assert_memory_not_equal(other, key, NS_KEY_LEN);
}

static void test_tunnel_proof_layout(void **state)
{
	static const __u8 session_be[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
	__u8 key[NS_KEY_LEN], p1[NS_PROOF_LEN], p2[NS_PROOF_LEN], mac[NS_HMAC_LEN];

	memset(key, 0x5a, sizeof(key));
	assert_int_equal(ns_tunnel_proof(key, 0x1122334455667788ull, 1, p1), 0);
	assert_memory_equal(p1, "NSP1", 4);
	assert_memory_equal(p1 + 4, session_be, 8);
	assert_int_equal(p1[12], 1);
	/* HMAC(key, "natsplice-proof" | session | role | nonce), recomputed here */
	assert_int_equal(ns_hmac(key, sizeof(key), (const void *[]){ "natsplice-proof", p1 + 4 },
				 (size_t[]){ 15, 8 + 1 + NS_PROOF_NONCE_LEN }, 2, mac), 0);
	assert_memory_equal(p1 + 29, mac, NS_HMAC_LEN);
	/* a fresh nonce every time */
	assert_int_equal(ns_tunnel_proof(key, 0x1122334455667788ull, 1, p2), 0);
	assert_memory_not_equal(p1 + 13, p2 + 13, NS_PROOF_NONCE_LEN);
	/* roles are 0 and 1 only */
	assert_int_equal(ns_tunnel_proof(key, 1, 2, p2), -EINVAL);
}

/* What an unchecked proof claims: its session and role, or not a proof. */
static void test_tunnel_proof_peek(void **state)
{
	__u8 key[NS_KEY_LEN], p[NS_PROOF_LEN], role = 9;
	__u64 session = 0;

	memset(key, 0x5a, sizeof(key));
	assert_int_equal(ns_tunnel_proof(key, 0x1122334455667788ull, 1, p), 0);
	assert_int_equal(ns_tunnel_proof_peek(p, &session, &role), 0);
	assert_true(session == 0x1122334455667788ull);
	assert_int_equal(role, 1);
	p[12] = 2;		/* roles are 0 and 1 */
	assert_int_equal(ns_tunnel_proof_peek(p, &session, &role), -EINVAL);
	p[12] = 0;
	p[0] = 'X';		/* not the magic */
	assert_int_equal(ns_tunnel_proof_peek(p, &session, &role), -EINVAL);
}

/* OPEN's address record: its tag binds the record to the session key and
 * the session; any other key, session or byte fails. */
static void test_open_tag(void **state)
{
	__u8 key[NS_KEY_LEN], other[NS_KEY_LEN], rec[40], tag[NS_OPEN_TAG_LEN];
	size_t i;

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	for (i = 0; i < sizeof(rec); i++)
		rec[i] = (__u8)i;
	assert_int_equal(ns_open_tag(key, 42, rec, sizeof(rec), tag), 0);
	assert_int_equal(ns_open_tag_check(key, 42, rec, sizeof(rec), tag), 0);
	assert_int_equal(ns_open_tag_check(other, 42, rec, sizeof(rec), tag), -EACCES);
	assert_int_equal(ns_open_tag_check(key, 43, rec, sizeof(rec), tag), -EACCES);
	for (i = 0; i < sizeof(rec); i++) {
		rec[i] ^= 1;
		assert_int_equal(ns_open_tag_check(key, 42, rec, sizeof(rec), tag), -EACCES);
		rec[i] ^= 1;
	}
	tag[15] ^= 0x80;
	assert_int_equal(ns_open_tag_check(key, 42, rec, sizeof(rec), tag), -EACCES);
}

static void test_tunnel_proof_check(void **state)
{
	const __u64 session = 0xfeedfacecafebeefull;
	__u8 key[NS_KEY_LEN], bad_key[NS_KEY_LEN], p[NS_PROOF_LEN];
	int role, i, bit;

	assert_int_equal(ns_random_bytes(key, sizeof(key)), 0);
	for (role = 0; role < 2; role++) {
		assert_int_equal(ns_tunnel_proof(key, session, role, p), 0);
		assert_int_equal(ns_tunnel_proof_check(key, session, role, p), 0);
		/* the wrong role: a proof reflected back at its sender */
		assert_int_equal(ns_tunnel_proof_check(key, session, !role, p), -EACCES);
		assert_int_equal(ns_tunnel_proof_check(key, session, 7, p), -EACCES);
		/* the wrong session, also in its high byte */
		assert_int_equal(ns_tunnel_proof_check(key, session + 1, role, p), -EACCES);
		assert_int_equal(ns_tunnel_proof_check(key, session ^ 1ull << 63, role, p),
				 -EACCES);
		/* the wrong key, one bit off */
		for (i = 0; i < NS_KEY_LEN; i++) {
			memcpy(bad_key, key, sizeof(key));
			bad_key[i] ^= 0x40;
			assert_int_equal(ns_tunnel_proof_check(bad_key, session, role, p), -EACCES);
		}
		/* any single flipped byte of the proof, whatever the bits */
		for (i = 0; i < NS_PROOF_LEN; i++) {
			for (bit = 0; bit < 8; bit++) {
				p[i] ^= 1 << bit;
				assert_int_equal(ns_tunnel_proof_check(key, session, role, p),
						 -EACCES);
				p[i] ^= 1 << bit;
			}
			p[i] ^= 0xff;
			assert_int_equal(ns_tunnel_proof_check(key, session, role, p), -EACCES);
			p[i] ^= 0xff;
		}
		assert_int_equal(ns_tunnel_proof_check(key, session, role, p), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hmac_check),
		cmocka_unit_test(test_login_proof),
		cmocka_unit_test(test_login_proof_binding),
		cmocka_unit_test(test_key_wrap),
		cmocka_unit_test(test_tunnel_proof_layout),
		cmocka_unit_test(test_tunnel_proof_peek),
		cmocka_unit_test(test_tunnel_proof_check),
		cmocka_unit_test(test_open_tag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
