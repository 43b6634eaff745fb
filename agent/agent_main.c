// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* natsplice-agent: options, start-up, the event loop and shutdown. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "agent.h"
#include "daemon.h"
#include "log.h"
#include "settings.h"

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

void agent_sock_udp_bufs(int fd)
{
	int bytes = AGENT_UDP_SOCKBUF;

	/* above net.core.[rw]mem_max needs CAP_NET_ADMIN: the most we may, else */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

int agent_sock_bound(const struct sockaddr_storage *addr, int type, bool share)
{
	int fd, one = 1, err;

	fd = socket(addr->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* not for a UDP port of its own: a second bind would steal its datagrams */
	if (type == SOCK_STREAM || share)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (type == SOCK_DGRAM)
		agent_sock_udp_bufs(fd);
	if (share)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, ns_sockaddr_len(addr)) ||
	    (type == SOCK_STREAM && listen(fd, SOMAXCONN))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int agent_start(struct agent *a)
{
	int err;

	a->loop = ns_loop_new();
	a->buf = malloc(AGENT_IO_BUF);
	if (a->buf && agent_dgrams_open(a)) {
		free(a->buf);
		agent_dgrams_free(a);
		a->buf = NULL;
	}
	if (!a->loop || !a->buf || agent_rtt_init(a) || agent_disc_init(a) ||
	    agent_relay_init(a)) {
		log_err("out of memory");
		return -ENOMEM;
	}
	err = agent_tunnel_listen_open(a);
	if (!err)
		err = agent_udp_listen_open(a);
	if (!err)
		err = agent_listeners_open(a);
	return err;
}

static void on_hup(void *arg)
{
	agent_reload(arg);
}

/* (An epoll-watched signalfd created before a -d fork() would wake only the
 * parent: the wait queue lives in the creator's signal handlers.) */
static int agent_signals(struct agent *a)
{
	int err;

	ns_loop_on_hup(a->loop, on_hup, a);
	err = ns_loop_signals(a->loop, &a->stop, NULL);

	if (err)
		log_err("signals: %s", strerror(-err));
	return err;
}

static void agent_stop(struct agent *a)
{
	/* Tunnels first: subscriber tunnels point at their listener. */
	agent_tunnels_close_all(a);
	agent_sessions_close_all(a);
	agent_listeners_close(a);
	agent_tunnel_listen_close(a);
	agent_udp_listen_close(a);
	if (a->loop)
		agent_broker_stop(a);
	if (a->loop) {
		agent_rtt_free(a);
		agent_disc_free(a);
		agent_relay_free(a);
	}
	agent_reload_free(a);
	ns_loop_free(a->loop);
	free(a->buf);
}

int main(int argc, char **argv)
{
	struct agent a = { .tl_w.fd = -1, .tlu_w.fd = -1, .next_req = 1, .ready_fd = -1 };
	struct ns_cmdline cl = {};
	struct agent_cfg *cfg = malloc(sizeof(*cfg));
	int err, status;

	if (!cfg) {
		fprintf(stderr, "natsplice-agent: out of memory\n");
		return 1;
	}
	if (agent_cfg_parse(cfg, &cl, argc, argv, &status)) {
		free(cfg);
		return status;
	}
	ns_log_init("natsplice-agent", NS_LOG_INFO + cl.verbose);
	a.cfg = cfg;
	a.config = cl.config;
	a.argc = argc;
	a.argv = argv;
	/* -d: fork before any socket, loop or signalfd exists */
	err = cl.detach ? ns_detach(&a.ready_fd) : 0;
	if (err)
		log_err("cannot detach: %s", strerror(-err));
	if (!err)
		err = agent_start(&a);
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
	agent_cfg_free(a.cfg);
	free(a.cfg);
	return err ? 1 : a.exit_code;
}
