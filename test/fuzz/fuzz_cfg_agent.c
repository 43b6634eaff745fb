// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the agent's YAML loader (agent/agent_config.c over
 * lib/yconf.c and lib/settings.c, with the ALG names it checks):
 * agent_cfg_load_string, agent_cfg_warn on a loaded file, agent_cfg_free
 * (twice: it must be safe), under ASan's leak check.
 */
#include "fuzz_cfg.h"
#include "settings.h"
#include "../../agent/agent_util.c"
#include "../../agent/alg.c"
#include "../../agent/alg_ftp.c"
#include "../../agent/alg_sip.c"
#include "../../agent/alg_sdp.c"
#include "../../agent/agent_config.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct agent_cfg c;
	struct ns_warnings w = { 0 };
	char err[512] = "", *text = fuzz_text(data, len);
	int ret;

	if (!text)
		return 0;
	memset(&c, 0, sizeof(c));
	ret = agent_cfg_load_string(&c, "fuzz.yaml", text, err, sizeof(err));
	fuzz_err_ok(ret, err, sizeof(err));
	if (!ret)
		agent_cfg_warn(&c, &w);
	agent_cfg_free(&c);
	agent_cfg_free(&c);
	free(text);
	return 0;
}
