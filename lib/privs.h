/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Dropping root once a daemon holds what needs it (DESIGN §7: least privilege). */
#ifndef NS_PRIVS_H
#define NS_PRIVS_H

#include <linux/types.h>

#define NS_USER_DEFAULT	"nobody"	/* who the daemons become after start-up */

/* The bit of capability c (CAP_*) in a keep mask. */
#define NS_CAP(c)	(1ULL << (c))

/*
 * Become `user` for good: supplementary groups cleared, real, effective and
 * saved uid and gid set, no capabilities but those in keep (NS_CAP bits,
 * effective and permitted), no_new_privs. For a single-threaded caller (the
 * capabilities kept are the calling thread's). "root" (or not running as
 * root) changes nothing. A parent-death signal (PR_SET_PDEATHSIG), which
 * the kernel clears with the gid and uid, is set again. 0, or -errno with the step
 * that failed in *what.
 */
int ns_drop_privileges(const char *user, __u64 keep, const char **what);

#endif
