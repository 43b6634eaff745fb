/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The `natsplice` command line: bpftool's grammar, OBJECT COMMAND [ARGS]. */
#ifndef NS_CLI_H
#define NS_CLI_H

#include <stdio.h>
#include "ctlproto.h"
#include "out.h"

/* Global options, passed to every command. */
struct cli {
	int json, pretty, verbose;
	const char *socket;	/* control socket, NULL = default */
	struct ns_out *out;
};

/* A command: argv[0] is the command word itself. Returns the exit status. */
struct cli_cmd {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
};

/* Run argv[0] from cmds: exact name or an unambiguous prefix. */
int cli_dispatch(struct cli *cli, const char *object, const struct cli_cmd *cmds, int argc,
		 char **argv);
int cli_is_help(const char *word);
/* An object's entry: argv[0] is the object word; `help` or nothing prints usage. */
int cli_object(struct cli *cli, const char *object, const struct cli_cmd *cmds,
	       void (*usage)(FILE *f), int argc, char **argv);
/* Print an error (text or JSON) and return exit status 1 (or 2 for usage). */
int cli_fail(struct cli *cli, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Control socket client: send req and collect the records of the reply into
 * *recs (malloc'd, n records of recsize bytes). On failure the error is already
 * printed and the exit status returned; 0 on success.
 */
int cli_request(struct cli *cli, const struct ctl_req *req, size_t recsize, void **recs,
		size_t *n);

int cmd_relay(struct cli *cli, int argc, char **argv);
int cmd_splice(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_dev(struct cli *cli, int argc, char **argv);
int cmd_broker(struct cli *cli, int argc, char **argv);

#endif
