// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the relay's YAML loader (relay/relay_config.c's
 * settings table over lib/settings.c and lib/yconf.c). The relay reads its
 * file only through ns_settings_parse(-f); this drives the same steps on a
 * string: yc_load_string, ns_settings_yaml with the relay's table, its check
 * and warnings, yc_free.
 */
#include "fuzz_cfg.h"
#include "settings.h"
#include "yconf.h"
#include "../../relay/relay_paths.c"
#include "../../relay/relay_config.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct relay_cfg c;
	struct ns_warnings w = { 0 };
	struct yc_node *root = NULL;
	char err[512] = "", *text = fuzz_text(data, len);
	int ret;

	if (!text)
		return 0;
	cfg_defaults(&c);
	ret = yc_load_string("fuzz.yaml", text, &root, err, sizeof(err));
	fuzz_err_ok(ret, err, sizeof(err));
	if (!ret) {
		CHECK(root != NULL);
		ret = ns_settings_yaml(&relay_settings, &c, root, err, sizeof(err));
		fuzz_err_ok(ret, err, sizeof(err));
	}
	if (!ret && !relay_settings.check(&c, err, sizeof(err)))
		relay_settings.warn(&c, &w);
	yc_free(root);
	free(text);
	return 0;
}
