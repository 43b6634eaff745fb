// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * seal: a tunnel's two ends derive matching keys (and other tunnels other
 * ones); records and datagrams open only unchanged, in order, once; the
 * record layout is TLS 1.3's, which the kernel's kTLS reads (checked against
 * the kernel itself in the 6.1 VM: test_crypt.sh's ktls tests, make vmtest-smoke).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "seal.h"

struct ends {
	struct ns_seal s_tx, s_rx, p_tx, p_rx;
};

static void ends_init(struct ends *e, bool dgram, __u8 salt)
{
	__u8 key[NS_KEY_LEN], ps[NS_PROOF_LEN], pp[NS_PROOF_LEN];

	memset(key, 0x11, sizeof(key));
	memset(ps, 0x22 ^ salt, sizeof(ps));
	memset(pp, 0x33, sizeof(pp));
	assert_int_equal(ns_seal_init(key, ps, pp, true, dgram, &e->s_tx, &e->s_rx), 0);
	assert_int_equal(ns_seal_init(key, ps, pp, false, dgram, &e->p_tx, &e->p_rx), 0);
}

static void ends_free(struct ends *e)
{
	ns_seal_free(&e->s_tx);
	ns_seal_free(&e->s_rx);
	ns_seal_free(&e->p_tx);
	ns_seal_free(&e->p_rx);
}

static void test_keys(void **state)
{
	struct ends a, b, c;

	ends_init(&a, false, 0);
	ends_init(&b, false, 1);	/* another subscriber nonce */
	ends_init(&c, true, 0);		/* UDP */
	assert_memory_equal(a.s_tx.key, a.p_rx.key, NS_SEAL_KEY_LEN);
	assert_memory_equal(a.s_tx.iv, a.p_rx.iv, NS_SEAL_IV_LEN);
	assert_memory_equal(a.p_tx.key, a.s_rx.key, NS_SEAL_KEY_LEN);
	assert_memory_not_equal(a.s_tx.key, a.p_tx.key, NS_SEAL_KEY_LEN);
	assert_memory_not_equal(a.s_tx.key, b.s_tx.key, NS_SEAL_KEY_LEN);
	assert_memory_not_equal(a.s_tx.key, c.s_tx.key, NS_SEAL_KEY_LEN);
	ends_free(&a);
	ends_free(&b);
	ends_free(&c);
}

static void test_records(void **state)
{
	static __u8 msg[NS_SEAL_RECORD_MAX], wire[4 * NS_SEAL_WIRE_MAX];
	const __u8 *plain;
	size_t plen, need, off = 0;
	struct ends e;
	long rl;
	int i, n;

	ends_init(&e, false, 0);
	for (i = 0; i < (int)sizeof(msg); i++)
		msg[i] = i * 7;
	/* three records: full, one byte, empty */
	n = ns_seal_record(&e.s_tx, msg, sizeof(msg), wire);
	assert_int_equal(n, sizeof(msg) + NS_SEAL_RECORD_OVERHEAD);
	assert_int_equal(wire[0], 23);
	assert_int_equal(wire[1], 3);
	assert_int_equal(wire[2], 3);
	assert_int_equal(wire[3] << 8 | wire[4], sizeof(msg) + 17);
	assert_null(memmem(wire, n, msg + 100, 32));	/* no plaintext on the wire */
	off = n;
	off += ns_seal_record(&e.s_tx, msg, 1, wire + off);
	off += ns_seal_record(&e.s_tx, msg, 0, wire + off);
	assert_int_equal(ns_seal_record(&e.s_tx, msg, sizeof(msg) + 1, wire + off), -EINVAL);

	/* a partial header, a partial record, then each whole one */
	assert_int_equal(ns_seal_record_len(wire, 3, &need), 0);
	assert_int_equal(ns_seal_record_len(wire, 100, &need), 0);
	assert_int_equal(need, n);
	rl = ns_seal_record_len(wire, off, &need);
	assert_int_equal(rl, n);
	assert_int_equal(ns_open_record(&e.p_rx, wire, rl, &plain, &plen), 0);
	assert_int_equal(plen, sizeof(msg));
	assert_memory_equal(plain, msg, sizeof(msg));
	rl = ns_seal_record_len(wire + n, off - n, &need);
	assert_int_equal(rl, 1 + NS_SEAL_RECORD_OVERHEAD);
	assert_int_equal(ns_open_record(&e.p_rx, wire + n, rl, &plain, &plen), 0);
	assert_int_equal(plen, 1);
	assert_int_equal(plain[0], msg[0]);
	assert_int_equal(ns_open_record(&e.p_rx, wire + n + rl, off - n - rl, &plain, &plen), 0);
	assert_int_equal(plen, 0);

	/* the other direction has its own keys */
	n = ns_seal_record(&e.p_tx, msg, 100, wire);
	memcpy(wire + n, wire, n);	/* (a failed open leaves garbage in place) */
	assert_int_equal(ns_open_record(&e.p_rx, wire + n, n, &plain, &plen), -EBADMSG);
	assert_int_equal(ns_open_record(&e.s_rx, wire, n, &plain, &plen), 0);
	ends_free(&e);
}

/* Any changed bit, a replayed or reordered record: authentication fails. */
static void test_record_forged(void **state)
{
	__u8 msg[64] = "attack at dawn", w1[128], w2[128], copy[128];
	const __u8 *plain;
	size_t plen, need;
	struct ends e;
	int n, i;

	ends_init(&e, false, 0);
	n = ns_seal_record(&e.s_tx, msg, sizeof(msg), w1);
	ns_seal_record(&e.s_tx, msg, sizeof(msg), w2);
	for (i = NS_SEAL_HDR_LEN; i < n; i += 7) {
		memcpy(copy, w1, n);
		copy[i] ^= 0x40;
		assert_int_equal(ns_open_record(&e.p_rx, copy, n, &plain, &plen), -EBADMSG);
	}
	/* the second record first: out of order */
	memcpy(copy, w2, n);
	assert_int_equal(ns_open_record(&e.p_rx, copy, n, &plain, &plen), -EBADMSG);
	assert_int_equal(ns_open_record(&e.p_rx, w1, n, &plain, &plen), 0);
	/* replayed */
	memcpy(copy, w1, n);
	assert_int_equal(ns_open_record(&e.p_rx, copy, n, &plain, &plen), -EBADMSG);
	/* headers we never send */
	memcpy(copy, w2, n);
	copy[0] = 21;			/* an alert */
	assert_int_equal(ns_seal_record_len(copy, n, &need), -EPROTO);
	memcpy(copy, w2, n);
	copy[3] = 0x50;			/* longer than a record may be */
	assert_int_equal(ns_seal_record_len(copy, n, &need), -EPROTO);
	assert_int_equal(ns_open_record(&e.p_rx, w2, n, &plain, &plen), 0);
	ends_free(&e);
}

static int open_seq(struct ns_seal *rx, struct ns_seal *tx, __u64 seq, const char *text)
{
	__u8 d[128];
	const __u8 *plain;
	size_t plen;
	int n, err;

	tx->seq = seq;
	n = ns_seal_dgram(tx, (const __u8 *)text, strlen(text), d);
	assert_int_equal(n, strlen(text) + NS_SEAL_DGRAM_OVERHEAD);
	err = ns_open_dgram(rx, d, n, &plain, &plen);
	if (!err) {
		assert_int_equal(plen, strlen(text));
		assert_memory_equal(plain, text, plen);
	}
	return err;
}

static void test_dgrams(void **state)
{
	__u8 d[128], orig[128];
	const __u8 *plain;
	size_t plen;
	struct ends e;
	__u64 s;
	int n;

	ends_init(&e, true, 0);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 0, "zero"), 0);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 0, "zero"), -EALREADY);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 5, "five"), 0);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 3, "three"), 0);	/* late: still fine */
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 3, "three"), -EALREADY);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 5, "five"), -EALREADY);
	/* far ahead: the old ones fall out of the window */
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 5000, "far"), 0);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 4, "four"), -EALREADY);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 4999, "just before"), 0);
	/* the window: NS_SEAL_WINDOW - 64 numbers below the highest + 1 */
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 5001 - NS_SEAL_WINDOW + 63, "out"), -EALREADY);
	assert_int_equal(open_seq(&e.p_rx, &e.s_tx, 5001 - NS_SEAL_WINDOW + 64, "edge"), 0);
	/* every number once across many word boundaries, replays refused */
	for (s = 6000; s < 6000 + 3 * NS_SEAL_WINDOW; s += 3)
		assert_int_equal(open_seq(&e.p_rx, &e.s_tx, s, "x"), 0);
	for (s = 6000 + 3 * NS_SEAL_WINDOW - 900; s < 6000 + 3 * NS_SEAL_WINDOW; s++)
		assert_int_equal(open_seq(&e.p_rx, &e.s_tx, s, "y"),
				 (s - 6000) % 3 ? 0 : -EALREADY);

	/* forged, short, from the other direction */
	e.s_tx.seq = 20000;
	n = ns_seal_dgram(&e.s_tx, (const __u8 *)"hello", 5, orig);
	memcpy(d, orig, n);
	d[NS_SEAL_SEQ_LEN + 2] ^= 1;
	assert_int_equal(ns_open_dgram(&e.p_rx, d, n, &plain, &plen), -EBADMSG);
	memcpy(d, orig, n);
	d[7] ^= 1;			/* another sequence number: another nonce */
	assert_int_equal(ns_open_dgram(&e.p_rx, d, n, &plain, &plen), -EBADMSG);
	memcpy(d, orig, n);
	assert_int_equal(ns_open_dgram(&e.p_rx, d, NS_SEAL_DGRAM_OVERHEAD - 1, &plain, &plen),
			 -EBADMSG);
	assert_int_equal(ns_open_dgram(&e.s_rx, d, n, &plain, &plen), -EBADMSG);
	memcpy(d, orig, n);
	assert_int_equal(ns_open_dgram(&e.p_rx, d, n, &plain, &plen), 0);
	assert_memory_equal(plain, "hello", 5);
	ends_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_record_forged),
		cmocka_unit_test(test_dgrams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
