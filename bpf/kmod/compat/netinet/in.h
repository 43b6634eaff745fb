/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* <netinet/in.h> for lib/pkt.c built into the module: the kernel's own. */
#include <linux/in.h>
#include <linux/in6.h>
