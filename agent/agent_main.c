// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* natsplice-agent: options, start-up, the event loop and shutdown. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"

#ifndef NS_VERSION
#define NS_VERSION "0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
"Usage: natsplice-agent -f agent.yaml [-d] [-v] [-n]\n"
"\n"
"The natsplice user daemon. It logs in to the broker, publishes the local\n"
"services of agent.yaml and makes the subscribed remote ones local: a client\n"
"that connects to a subscribe port reaches the remote service through a\n"
"tunnel (direct, reverse or through a relay) that both agents authenticate\n"
"before any application byte flows. It logs a line containing \"ready\" each\n"
"time it has logged in and published. SIGTERM or SIGINT: close everything,\n"
"exit 0. A broker refusing the login (wrong name or secret) ends it with\n"
"status 1.\n"
"\n"
"Options:\n"
"  -f FILE   configuration (examples/agent.yaml documents it)\n"
"  -d        stay in the foreground (without -d: detach once the listening\n"
"            sockets are open; log messages still go to stderr)\n"
"  -n        check the configuration, print \"configuration OK\", exit\n"
"  -v        more log output (repeatable)\n"
"  -h        this help\n"
"  -V        version\n");
}

void agent_sock_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void agent_sock_tune(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int agent_start(struct agent *a)
{
	int err;

	a->loop = ns_loop_new();
	a->buf = malloc(AGENT_IO_BUF);
	if (!a->loop || !a->buf) {
		log_err("out of memory");
		return -ENOMEM;
	}
	err = agent_tunnel_listen_open(a);
	if (!err)
		err = agent_listeners_open(a);
	return err;
}

/*
 * After daemon(): an epoll-watched signalfd created before fork() would wake
 * only the parent (the wait queue lives in the creator's signal handlers).
 */
static int agent_signals(struct agent *a)
{
	int err = ns_loop_signals(a->loop, &a->stop, NULL);

	if (err)
		log_err("signals: %s", strerror(-err));
	return err;
}

static void agent_stop(struct agent *a)
{
	/* Tunnels first: subscriber tunnels point at their listener. */
	agent_tunnels_close_all(a);
	agent_listeners_close(a);
	agent_tunnel_listen_close(a);
	if (a->loop)
		agent_broker_stop(a);
	ns_loop_free(a->loop);
	free(a->buf);
}

int main(int argc, char **argv)
{
	struct agent a = { .tl_w.fd = -1, .next_req = 1 };
	bool foreground = false, check = false;
	const char *path = NULL;
	struct agent_cfg cfg;
	int opt, verbose = 0, err;
	char msg[1024];

	while ((opt = getopt(argc, argv, "f:dnvhV")) != -1) {
		switch (opt) {
		case 'f':
			path = optarg;
			break;
		case 'd':
			foreground = true;
			break;
		case 'n':
			check = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("natsplice-agent %s (protocol %d)\n", NS_VERSION, NS_PROTO_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind < argc) {
		if (optind < argc)
			fprintf(stderr, "natsplice-agent: unexpected argument '%s'\n", argv[optind]);
		else
			fprintf(stderr, "natsplice-agent: -f agent.yaml is required\n");
		usage(stderr);
		return 2;
	}
	if (agent_cfg_load(&cfg, path, msg, sizeof(msg))) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		agent_cfg_free(&cfg);
		return 0;
	}
	ns_log_init("natsplice-agent", NS_LOG_INFO + verbose);
	a.cfg = &cfg;
	err = agent_start(&a);
	if (!err && !foreground && daemon(0, 1)) {
		err = -errno;
		log_err("daemon: %s", strerror(errno));
	}
	if (!err)
		err = agent_signals(&a);
	if (!err) {
		agent_broker_start(&a);
		err = ns_loop_run(a.loop, &a.stop);
		if (err)
			log_err("event loop: %s", strerror(-err));
	}
	if (!err && !a.exit_code)
		log_info("stopping");
	agent_stop(&a);
	agent_cfg_free(&cfg);
	return err ? 1 : a.exit_code;
}
