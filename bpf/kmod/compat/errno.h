/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* <errno.h> for lib/pkt.c built into the module: the kernel's own. */
#include <linux/errno.h>
