// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `--mode auto`: which dataplane a device's driver gets, and why. */
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../relay/relay_auto.c"

static void test_virtual_devices_get_tc(void **state)
{
	static const char *const drivers[] = { "veth", "tun", "bridge", "macvlan", "vxlan" };
	char why[RELAY_WHY_LEN];
	size_t i;

	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		assert_int_equal(relay_auto_mode(drivers[i], why, sizeof(why)), RELAY_TC);
		assert_non_null(strstr(why, drivers[i]));
		assert_non_null(relay_xdp_trap(drivers[i]));
	}
	/* The veth sentence names both traps. */
	relay_auto_mode("veth", why, sizeof(why));
	assert_non_null(strstr(why, "XDP_TX"));
	assert_non_null(strstr(why, "partial checksums"));
}

static void test_nics_get_xdp(void **state)
{
	static const char *const drivers[] = { "ixgbe", "i40e", "mlx5_core", "virtio_net", "ena" };
	char why[RELAY_WHY_LEN];
	size_t i;

	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		assert_int_equal(relay_auto_mode(drivers[i], why, sizeof(why)), RELAY_XDP);
		assert_null(relay_xdp_trap(drivers[i]));
		assert_non_null(strstr(why, "native XDP"));
	}
}

static void test_unknown_driver_gets_tc(void **state)
{
	char why[RELAY_WHY_LEN];

	assert_int_equal(relay_auto_mode("", why, sizeof(why)), RELAY_TC);
	assert_non_null(strstr(why, "unknown"));
	/* A prefix of a trap driver's name is another driver. */
	assert_int_equal(relay_auto_mode("vet", why, sizeof(why)), RELAY_XDP);
}

static void test_short_buffer(void **state)
{
	char why[8];

	relay_auto_mode("veth", why, sizeof(why));
	assert_int_equal(strlen(why), sizeof(why) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtual_devices_get_tc),
		cmocka_unit_test(test_nics_get_xdp),
		cmocka_unit_test(test_unknown_driver_gets_tc),
		cmocka_unit_test(test_short_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
