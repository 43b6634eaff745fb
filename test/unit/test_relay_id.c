// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The relay's splice ids: never 0, never in a counters slot a live splice holds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../relay/relay.h"

static struct relay_splice *by_id[RELAY_ID_BUCKETS];
/* Only the pointer's presence matters to relay_id_alloc(). */
#define LIVE ((struct relay_splice *)by_id)

static void test_sequential(void **state)
{
	__u32 next = 1;

	memset(by_id, 0, sizeof(by_id));
	assert_int_equal(relay_id_alloc(by_id, &next), 1);
	assert_int_equal(relay_id_alloc(by_id, &next), 2);
	assert_int_equal(next, 3);
}

static void test_skips_taken_slots(void **state)
{
	__u32 next = NS_MAX_SPLICES + 1;	/* slot 1 */

	memset(by_id, 0, sizeof(by_id));
	by_id[1] = LIVE;			/* splice 1 is live */
	by_id[2] = LIVE;			/* and splice 2 */
	assert_int_equal(relay_id_alloc(by_id, &next), NS_MAX_SPLICES + 3);
	assert_int_equal(NS_SPLICE_SLOT(NS_MAX_SPLICES + 3), 3);
}

static void test_wraps_past_zero(void **state)
{
	__u32 next = 0x7fffffff;

	memset(by_id, 0, sizeof(by_id));
	by_id[1] = LIVE;
	assert_int_equal(relay_id_alloc(by_id, &next), 0x7fffffff);
	/* Never NS_PUBLIC_BIT (a public port's punt id): after 2^31 - 1 comes 0,
	 * which means "no splice" in the protocol; 1's slot is taken. */
	assert_int_equal(relay_id_alloc(by_id, &next), 2);
	next = 0xffffffff;
	assert_int_equal(relay_id_alloc(by_id, &next), 0x7fffffff);
}

static void test_last_free_slot(void **state)
{
	__u32 next = 7, i;

	for (i = 0; i < RELAY_ID_BUCKETS; i++)
		by_id[i] = LIVE;
	by_id[5] = NULL;			/* the one slot left */
	assert_int_equal(relay_id_alloc(by_id, &next), NS_MAX_SPLICES + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequential),
		cmocka_unit_test(test_skips_taken_slots),
		cmocka_unit_test(test_wraps_past_zero),
		cmocka_unit_test(test_last_free_slot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
