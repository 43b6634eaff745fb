// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `natsplice relay run|help`: the relay daemon (relay/) in the foreground. */
#include "cli.h"
#include "relay.h"

static int relay_run_cmd(struct cli *cli, int argc, char **argv)
{
	return relay_run(cli->socket, cli->verbose, argc, argv);
}

int cmd_relay(struct cli *cli, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{ "run", relay_run_cmd },
		{ NULL, NULL },
	};

	return cli_object(cli, "relay", cmds, relay_run_usage, argc, argv);
}
