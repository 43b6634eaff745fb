/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The local control socket between the `natsplice` CLI and the relay daemon:
 * a SOCK_SEQPACKET unix socket, one request message, then one or more reply
 * messages (the last one without CTL_F_MORE). Both ends are the same binary,
 * so fixed structs are fine here; the network protocol is elsewhere.
 */
#ifndef NS_CTLPROTO_H
#define NS_CTLPROTO_H

#include "natsplice_abi.h"

#define CTL_SOCKET_DEFAULT	"/run/natsplice/relay.sock"
#define CTL_VERSION		1
#define CTL_BATCH		64	/* splice records per reply message */

enum ctl_op {
	CTL_ADD = 1,
	CTL_LIST,
	CTL_SHOW,
	CTL_DEL,
	CTL_STATS,
	CTL_INFO,
};

struct ctl_req {
	__u32 version;
	__u32 op;
	__u32 id;		/* SHOW, DEL */
	__u8 proto;		/* ADD: IPPROTO_TCP / IPPROTO_UDP */
	__u8 mode;		/* ADD: enum ns_mode */
	__u8 family;		/* ADD: 0 = from the addresses / relay */
	__u8 has_from[2];	/* ADD: from-a / from-b given */
	__u8 pad[3];
	__u32 from[2][4];	/* ADD: allowed source per side */
	__u32 timeout_s;	/* ADD: half-open deadline, 0 = default */
};

/* One splice as shown to the user. */
struct ctl_splice {
	struct ns_splice s;
	__u64 packets[2];
	__u64 bytes[2];
	__u64 age_ns;
	__u64 idle_ns;		/* since the last packet, established only */
};

/* What the daemon runs as (CTL_INFO). */
struct ctl_info {
	char dev[16];
	char mode[16];
	__u32 ifindex;
	__u8 has4, has6;
	__u16 port_lo, port_hi;
	__u16 pad;
	__u32 addr4;
	__u32 addr6[4];
	__u32 splices;
	__u32 kmod;		/* kernel shim in use */
};

#define CTL_F_MORE	1

struct ctl_resp {
	__s32 err;		/* 0 or -errno */
	__u32 flags;		/* CTL_F_* */
	__u32 count;		/* records after the header */
	__u32 kind;		/* enum ctl_op of the records */
	char msg[160];		/* error text when err != 0 */
};

#endif
