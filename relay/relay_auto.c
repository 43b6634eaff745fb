// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `--mode auto`: XDP where the driver gives native XDP with correct checksums
 * and delivery, TC on the virtual devices where XDP is known to fail quietly
 * (README, troubleshooting). relay_auto_mode() is pure (unit-tested);
 * relay_dev_driver() asks the kernel.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "relay.h"

/* Drivers whose XDP is a trap for a relay, and what goes wrong there. */
static const struct {
	const char *driver;
	const char *trap;
} xdp_traps[] = {
	{ "veth", "XDP_TX into a veth is dropped unless its peer runs an XDP program, and "
		  "traffic generated on the host arrives with partial checksums that an "
		  "XDP rewrite cannot finish: spliced transfers stall" },
	{ "tun", "a tun/tap device has only emulated XDP, slower than TC, and partial "
		 "checksums from the host break XDP rewrites" },
	{ "bridge", "a bridge has only generic XDP, slower than TC" },
	{ "bonding", "XDP on a bond needs native XDP on every slave" },
	{ "macvlan", "a macvlan has only generic XDP, slower than TC" },
	{ "ipvlan", "an ipvlan has only generic XDP, slower than TC" },
	{ "vxlan", "a vxlan device has only generic XDP, slower than TC" },
	{ "geneve", "a geneve device has only generic XDP, slower than TC" },
	{ "dummy", "a dummy device has only generic XDP" },
	{ "team", "a team device has only generic XDP, slower than TC" },
	{ "vrf", "a VRF device has only generic XDP" },
	{ "netkit", "netkit devices have no XDP" },
};

const char *relay_xdp_trap(const char *driver)
{
	size_t i;

	for (i = 0; i < sizeof(xdp_traps) / sizeof(xdp_traps[0]); i++)
		if (!strcmp(driver, xdp_traps[i].driver))
			return xdp_traps[i].trap;
	return NULL;
}

enum relay_mode relay_auto_mode(const char *driver, char *why, size_t len)
{
	const char *trap;

	if (!driver[0]) {
		snprintf(why, len, "tc: the device's driver is unknown, and TC works on every "
			 "device");
		return RELAY_TC;
	}
	trap = relay_xdp_trap(driver);
	if (trap) {
		snprintf(why, len, "tc: driver %s: %s", driver, trap);
		return RELAY_TC;
	}
	snprintf(why, len, "xdp: driver %s has native XDP", driver);
	return RELAY_XDP;
}

int relay_dev_driver(const char *dev, char *buf, size_t len)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = {};
	int fd, err = 0;

	buf[0] = '\0';
	if (strlen(dev) >= sizeof(ifr.ifr_name))
		return -EINVAL;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	ifr.ifr_data = (void *)&info;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		err = -errno;
	else
		snprintf(buf, len, "%.*s", (int)sizeof(info.driver), info.driver);
	close(fd);
	return err;
}
