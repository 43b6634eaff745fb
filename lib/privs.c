// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Dropping root once a daemon holds what needs it: see privs.h. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "privs.h"

static int set_caps(__u64 keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	data[0].effective = data[0].permitted = (__u32)keep;
	data[1].effective = data[1].permitted = (__u32)(keep >> 32);
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

int ns_drop_privileges(const char *user, __u64 keep, const char **what)
{
	struct passwd *pw;
	int pdeath = 0;
	pid_t ppid = getppid();

	*what = "";
	if (geteuid() != 0 || !strcmp(user, "root"))
		return 0;
	*what = "look up the user";
	errno = ENOENT;
	pw = getpwnam(user);
	if (!pw)
		return -errno;
	/* Keep the permitted set across setuid only long enough to trim it. */
	*what = "keep capabilities";
	if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		return -errno;
	prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);	/* (a new gid clears it too) */
	*what = "clear supplementary groups";
	if (setgroups(0, NULL))
		return -errno;
	*what = "set the group";
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid))
		return -errno;
	*what = "set the user";
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
		return -errno;
	/* A new gid or uid clears the parent-death signal (a relay an agent runs has
	 * one): set it again, and if the parent died meanwhile, deliver it. */
	if (pdeath) {
		*what = "keep the parent-death signal";
		if (prctl(PR_SET_PDEATHSIG, pdeath, 0, 0, 0))
			return -errno;
		if (getppid() != ppid)
			raise(pdeath);
	}
	*what = "set capabilities";
	if (set_caps(keep))
		return -errno;
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	*what = "set no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	/* Paranoia: there must be no way back. */
	*what = "check that root is gone";
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -EPERM;
	*what = "";
	return 0;
}
