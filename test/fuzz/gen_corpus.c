// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Writes the seed corpus of fuzz_proto into DIR: one valid message of every
 * type with the attributes ns_proto.h gives it, a LIST_REPLY with nested
 * SERVICE_INFO lists, unknown attributes with and without the MUST bit, and
 * a stream of several messages. Usage: gen_corpus DIR
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natsplice_abi.h"
#include "proto.h"

static const char *dir;
static __u8 stream[1 << 16];
static size_t stream_len;

static int save(const char *name, const struct ns_msg_buf *mb)
{
	char path[4096];
	FILE *f;

	if (ns_mb_finish((struct ns_msg_buf *)mb)) {
		fprintf(stderr, "gen_corpus: %s: build failed\n", name);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(mb->data, 1, mb->len, f) != mb->len || fclose(f)) {
		perror(path);
		return -1;
	}
	if (stream_len + mb->len <= sizeof(stream)) {
		memcpy(stream + stream_len, mb->data, mb->len);
		stream_len += mb->len;
	}
	return 0;
}

static void addr(struct ns_msg_buf *mb, __u16 attr, int v6, __u16 port)
{
	__u32 a[4] = { htobe32(0xc0000201), 0, 0, 0 };

	if (v6) {
		a[0] = htobe32(0x20010db8);
		a[3] = htobe32(1);
	}
	ns_mb_addr(mb, attr, v6 ? NS_AF_INET6 : NS_AF_INET, a, port);
}

int main(int argc, char **argv)
{
	static const __u8 k32[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct ns_msg_buf mb;
	int err = 0, i;
	size_t mark;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	dir = argv[1];

#define MSG(t) ns_mb_init(&mb, NS_MSG_##t)
#define SAVE(name) do { err |= save(name, &mb); ns_mb_free(&mb); } while (0)
	MSG(CHALLENGE);
	ns_mb_bin(&mb, NS_A_NONCE, k32, 32);
	ns_mb_u8(&mb, NS_A_VERSION_MIN, 1);
	ns_mb_u8(&mb, NS_A_VERSION_MAX, 1);
	SAVE("challenge");

	MSG(LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, NS_ROLE_AGENT);
	ns_mb_str(&mb, NS_A_NAME, "alice");
	ns_mb_u8(&mb, NS_A_VERSION, 1);
	ns_mb_bin(&mb, NS_A_PROOF, k32, 32);
	addr(&mb, NS_A_LOCAL_ADDR, 0, 40000);
	ns_mb_u16(&mb, NS_A_LISTEN_PORT, 7701);
	addr(&mb, NS_A_RELAY_ADDR | NS_ATTR_MUST, 1, 0);
	SAVE("login");

	MSG(LOGIN_OK);
	ns_mb_u8(&mb, NS_A_VERSION, 1);
	addr(&mb, NS_A_OBSERVED_ADDR, 1, 51000);
	ns_mb_u32(&mb, NS_A_HOLD_TIME, 30);
	SAVE("login_ok");

	MSG(ERROR);
	ns_mb_u32(&mb, NS_A_REQ_ID, 7);
	ns_mb_u32(&mb, NS_A_CODE, NS_ERR_NOT_FOUND);
	ns_mb_str(&mb, NS_A_TEXT, "no such service");
	SAVE("error");

	MSG(HEARTBEAT);
	SAVE("heartbeat");

	MSG(OK);
	ns_mb_u32(&mb, NS_A_REQ_ID, 7);
	SAVE("ok");

	MSG(PUBLISH);
	ns_mb_u32(&mb, NS_A_REQ_ID, 8);
	ns_mb_str(&mb, NS_A_SERVICE, "ssh");
	ns_mb_u8(&mb, NS_A_PROTO, 6);
	SAVE("publish");

	MSG(UNPUBLISH);
	ns_mb_u32(&mb, NS_A_REQ_ID, 9);
	ns_mb_str(&mb, NS_A_SERVICE, "ssh");
	SAVE("unpublish");

	MSG(LIST);
	ns_mb_u32(&mb, NS_A_REQ_ID, 10);
	SAVE("list");

	MSG(LIST_REPLY);
	ns_mb_u32(&mb, NS_A_REQ_ID, 10);
	for (i = 0; i < 3; i++) {
		mark = ns_mb_nest_begin(&mb, NS_A_SERVICE_INFO);
		ns_mb_str(&mb, NS_A_SERVICE, i ? "bob/dns" : "alice/ssh");
		ns_mb_u8(&mb, NS_A_PROTO, i ? 17 : 6);
		ns_mb_nest_end(&mb, mark);
	}
	SAVE("list_reply");

	MSG(CONNECT);
	ns_mb_u32(&mb, NS_A_REQ_ID, 11);
	ns_mb_str(&mb, NS_A_SERVICE, "alice/ssh");
	ns_mb_u8(&mb, NS_A_PROTO, 6);
	ns_mb_u8(&mb, NS_A_COMPRESS, 1);
	SAVE("connect");

	MSG(OFFER);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	ns_mb_str(&mb, NS_A_SERVICE, "ssh");
	ns_mb_u8(&mb, NS_A_PROTO, 6);
	ns_mb_str(&mb, NS_A_NAME, "bob");
	SAVE("offer");

	MSG(ACCEPT);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	SAVE("accept");

	MSG(REJECT);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	ns_mb_u32(&mb, NS_A_CODE, NS_ERR_REJECTED);
	ns_mb_str(&mb, NS_A_TEXT, "busy");
	SAVE("reject");

	MSG(CONNECT_INFO);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	ns_mb_u32(&mb, NS_A_REQ_ID, 11);
	ns_mb_u8(&mb, NS_A_PATH, NS_PATH_RELAY);
	ns_mb_u8(&mb, NS_A_DIAL, 1);
	addr(&mb, NS_A_PEER_ADDR, 0, 40001);
	ns_mb_u16(&mb, NS_A_BIND_PORT, 40002);
	ns_mb_u8(&mb, NS_A_SPLICE_MODE, NS_MODE_PURE);
	ns_mb_bin(&mb, NS_A_KEY, k32, 32);
	SAVE("connect_info");

	MSG(SPLICE_REQUEST);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	ns_mb_u8(&mb, NS_A_PROTO, 6);
	ns_mb_u8(&mb, NS_A_SPLICE_MODE, NS_MODE_PASSIVE);
	addr(&mb, NS_A_FROM_A, 0, 0);
	addr(&mb, NS_A_FROM_B, 1, 0);
	ns_mb_u32(&mb, NS_A_TIMEOUT, 10);
	SAVE("splice_request");

	MSG(SPLICE_READY);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, 5);
	addr(&mb, NS_A_RELAY_ADDR, 0, 0);
	ns_mb_u16(&mb, NS_A_PORT_A, 41000);
	ns_mb_u16(&mb, NS_A_PORT_B, 0);
	SAVE("splice_ready");

	MSG(SPLICE_PEER);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	ns_mb_u16(&mb, NS_A_PORT_B, 41001);
	SAVE("splice_peer");

	MSG(SPLICE_DONE);
	ns_mb_u64(&mb, NS_A_SESSION, 0x1122334455667788ull);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, 5);
	ns_mb_u64(&mb, NS_A_BYTES_AB, 1000);
	ns_mb_u64(&mb, NS_A_BYTES_BA, 2000);
	ns_mb_u64(&mb, NS_A_PACKETS, 30);
	ns_mb_str(&mb, NS_A_TEXT, "closed");
	SAVE("splice_done");

	/* unknown attributes: optional (skipped) and must-understand (refused) */
	MSG(OK);
	ns_mb_u32(&mb, NS_A_REQ_ID, 12);
	ns_mb_bin(&mb, 300, "opt", 3);
	SAVE("unknown_optional");
	MSG(OK);
	ns_mb_u32(&mb, NS_A_REQ_ID, 12);
	ns_mb_bin(&mb, 300 | NS_ATTR_MUST, "must", 4);
	SAVE("unknown_must");

	/* all of the above back to back */
	f = NULL;
	{
		char path[4096];

		snprintf(path, sizeof(path), "%s/stream", dir);
		f = fopen(path, "wb");
		if (!f || fwrite(stream, 1, stream_len, f) != stream_len || fclose(f)) {
			perror(path);
			err = -1;
		}
	}
	return err ? 1 : 0;
}
