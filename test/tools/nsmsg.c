// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nsmsg: one control protocol message (include/ns_proto.h) as hex, built
 * with the project's own codec, for tests that forge messages on the wire
 * (nstap inject --hex).
 *
 *   nsmsg splice-request SESSION [tcp|udp]   SPLICE_REQUEST { SESSION, PROTO }
 *   nsmsg heartbeat                          HEARTBEAT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "tool.h"
#include "proto.h"

int main(int argc, char **argv)
{
	struct ns_msg_buf mb;
	size_t i;

	if (argc >= 3 && !strcmp(argv[1], "splice-request")) {
		ns_mb_init(&mb, NS_MSG_SPLICE_REQUEST);
		ns_mb_u64(&mb, NS_A_SESSION, strtoull(argv[2], NULL, 0));
		ns_mb_u8(&mb, NS_A_PROTO, argc > 3 && !strcmp(argv[3], "udp") ? IPPROTO_UDP
									     : IPPROTO_TCP);
	} else if (argc == 2 && !strcmp(argv[1], "heartbeat")) {
		ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	} else {
		die(2, "usage: nsmsg splice-request SESSION [tcp|udp] | nsmsg heartbeat");
	}
	if (ns_mb_finish(&mb))
		die(1, "cannot build the message");
	for (i = 0; i < mb.len; i++)
		printf("%02x", mb.data[i]);
	putchar('\n');
	return 0;
}
