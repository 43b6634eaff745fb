// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libFuzzer target for the SIP ALG and its SDP rewriting (agent/alg_sip.c,
 * agent/alg_sdp.c), over TCP and UDP: see fuzz_alg.h. */
#include "fuzz_alg.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	return fuzz_alg(&ns_alg_sip, true, data, len);
}
