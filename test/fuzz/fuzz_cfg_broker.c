// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the broker's YAML loader (broker/config.c over
 * lib/yconf.c and lib/settings.c): cfg_load_string on the input, then what
 * the broker does with a loaded file (cfg_check, cfg_warn, the lookups), then
 * cfg_free: ASan's leak check sees anything a failed load leaves behind.
 */
#include "fuzz_cfg.h"
#include "settings.h"
#include "../../broker/policy.c"
#include "../../broker/config.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct broker_cfg c;
	struct ns_warnings w = { 0 };
	char err[512] = "", *text = fuzz_text(data, len);
	int ret;

	if (!text)
		return 0;
	cfg_defaults(&c);
	ret = cfg_load_string(&c, "fuzz.yaml", text, err, sizeof(err));
	fuzz_err_ok(ret, err, sizeof(err));
	if (!ret) {
		(void)cfg_check(&c, err, sizeof(err));
		cfg_warn(&c, &w);
		for (size_t i = 0; i < c.nagents; i++)
			CHECK(cfg_agent_index(&c, c.agents[i].name) >= 0);
		for (size_t i = 0; i < c.nrelays; i++)
			CHECK(cfg_relay_index(&c, c.relays[i].name) >= 0);
	}
	cfg_free(&c);
	free(text);
	return 0;
}
