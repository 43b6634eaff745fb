// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libFuzzer target for the FTP ALG (agent/alg_ftp.c): see fuzz_alg.h. */
#include "fuzz_alg.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	return fuzz_alg(&ns_alg_ftp, false, data, len);
}
