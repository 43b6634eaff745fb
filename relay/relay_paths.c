// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Default paths of a relay daemon, one set per device and network namespace,
 * so that two relays on one host (two devices, or two namespaces: /run is
 * shared across `ip netns exec`) never share a control socket or a pin
 * directory:
 *
 *   /run/natsplice/relay-DEV[.nsINODE].sock      control socket
 *   /sys/fs/bpf/natsplice/DEV[_nsINODE]          pins (a bpffs name has no '.')
 *
 * The suffix names the network namespace by its inode; there is none in the
 * namespace of PID 1 (the host's, or a container's own). The CLI finds the
 * one socket of its namespace by itself (-S when there are several).
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "relay.h"

/* ".nsINODE" outside PID 1's network namespace, else "" (also when PID 1's
 * cannot be read: then every namespace has its suffix). */
static void netns_suffix(char *buf, size_t len)
{
	struct stat self, init;

	buf[0] = '\0';
	if (stat("/proc/self/ns/net", &self))
		return;
	if (!stat("/proc/1/ns/net", &init) && self.st_ino == init.st_ino)
		return;
	snprintf(buf, len, ".ns%llu", (unsigned long long)self.st_ino);
}

int relay_default_sock(const char *dev, char *buf, size_t len)
{
	char sfx[32];

	netns_suffix(sfx, sizeof(sfx));
	return snprintf(buf, len, "%s/relay-%s%s.sock", RELAY_RUN_DIR, dev, sfx) >= (int)len ?
	       -ENAMETOOLONG : 0;
}

void relay_pin_name(const char *name, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && name[i]; i++)
		buf[i] = name[i] == '.' ? '_' : name[i];
	buf[i] = '\0';
}

int relay_default_pin_dir(const char *dev, char *buf, size_t len)
{
	char sfx[32], name[IF_NAMESIZE + sizeof(sfx)];

	netns_suffix(sfx, sizeof(sfx));
	snprintf(name, sizeof(name), "%s%s", dev, sfx);
	relay_pin_name(name, name, sizeof(name));
	return snprintf(buf, len, "%s/%s", NS_PIN_DIR_DEFAULT, name) >= (int)len ?
	       -ENAMETOOLONG : 0;
}

/* Is the socket name (relay-DEV[.nsINODE].sock) one of namespace sfx? */
static bool sock_of_netns(const char *path, const char *sfx)
{
	const char *ns = strstr(strrchr(path, '/') + 1, ".ns");
	size_t n = strlen(sfx);

	if (!n)
		return !ns;
	return ns && !strncmp(ns, sfx, n) && !strcmp(ns + n, ".sock");
}

/* Does a daemon answer on the socket? A daemon that dropped root cannot
 * remove its socket from the root-owned directory when it stops, so the
 * directory may hold stale ones (the next daemon on that path replaces it). */
static bool sock_live(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return true;	/* cannot tell: keep it */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	live = !connect(fd, (struct sockaddr *)&sun, sizeof(sun)) || errno != ECONNREFUSED;
	close(fd);
	return live;
}

int relay_find_sock(char *buf, size_t len, char *names, size_t nlen)
{
	char sfx[32];
	glob_t g;
	size_t i, n = 0;

	buf[0] = names[0] = '\0';
	netns_suffix(sfx, sizeof(sfx));
	if (glob(RELAY_RUN_DIR "/relay-*.sock", 0, NULL, &g)) {
		snprintf(buf, len, "%s", CTL_SOCKET_DEFAULT);
		return 0;
	}
	for (i = 0; i < g.gl_pathc; i++) {
		if (!sock_of_netns(g.gl_pathv[i], sfx) || !sock_live(g.gl_pathv[i]))
			continue;
		if (!n++)
			snprintf(buf, len, "%s", g.gl_pathv[i]);
		snprintf(names + strlen(names), nlen - strlen(names), "%s%s", n > 1 ? ", " : "",
			 g.gl_pathv[i]);
	}
	globfree(&g);
	if (!n)
		snprintf(buf, len, "%s", CTL_SOCKET_DEFAULT);
	return n > 1 ? -EEXIST : 0;
}
