// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* natsplice-broker: options, start-up, the event loop and shutdown. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/resource.h>

#include <unistd.h>

#include <openssl/ssl.h>

#include "broker.h"
#include "daemon.h"
#include "log.h"
#include "privs.h"
#include "settings.h"
#include "tls.h"
#include "util.h"

/* Thousands of agents: one descriptor each. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Bound and listening: nothing the broker does from here on needs root, and
 * everything from here on parses what the network sends. */
static int drop_root(const char *user)
{
	const char *what;
	int err;

	if (geteuid() != 0)
		return 0;
	if (!strcmp(user, "root")) {
		log_warn("user: root: the broker keeps running as root");
		return 0;
	}
	err = ns_drop_privileges(user, 0, &what);
	if (err) {
		log_err("cannot become user %s (%s): %s", user, what, strerror(-err));
		return err;
	}
	log_info("running as user %s (uid %u), no capabilities", user, getuid());
	return 0;
}

int broker_tls_cert(const struct broker_cfg *c, char *fp, size_t fplen)
{
	char err[NS_TLS_ERR_LEN + 2 * NS_TLS_PATH_MAX];
	__u8 d[NS_TLS_FP_LEN];
	bool created;
	int e;

	e = ns_tls_ensure_cert(c->tls_cert, c->tls_key, &created, err, sizeof(err));
	if (!e && created)
		log_info("made a P-256 key %s and a self-signed certificate %s", c->tls_key,
			 c->tls_cert);
	if (!e)
		e = ns_tls_fp_file(c->tls_cert, d, err, sizeof(err));
	if (e) {
		log_err("tls: %s", err);
		return e;
	}
	ns_tls_fp_str(d, fp, fplen);
	return 0;
}

/* --fingerprint: the one line agents and relays pin. */
static int print_fingerprint(const struct broker_cfg *c)
{
	char fp[NS_TLS_FP_STRLEN];

	if (broker_tls_cert(c, fp, sizeof(fp)))
		return 1;
	printf("%s\n", fp);
	return 0;
}

/* The server context, loaded while still root (the key is 0600). */
static int tls_start(struct broker *b)
{
	const struct broker_cfg *c = b->cfg;
	char fp[NS_TLS_FP_STRLEN], err[NS_TLS_ERR_LEN + NS_TLS_PATH_MAX];
	int e;

	e = broker_tls_cert(c, fp, sizeof(fp));
	if (e)
		return e;
	e = ns_tls_server_ctx(c->tls_cert, c->tls_key, &b->tls, err, sizeof(err));
	if (e) {
		log_err("tls: %s", err);
		return e;
	}
	log_info("TLS 1.3 certificate %s, fingerprint %s", c->tls_cert, fp);
	if (c->insecure)
		log_warn("insecure: true: plain-text agents and relays are accepted too");
	return 0;
}

static void on_hup(void *arg)
{
	broker_reload(arg);
}

static int broker_start(struct broker *b)
{
	const struct broker_cfg *c = b->cfg;
	char a[EP_STRLEN];
	int err;

	b->lfd = -1;
	b->started = time(NULL);
	b->start_ns = ns_now_ns();
	b->loop = ns_loop_new();
	b->agents = calloc(c->nagents ? c->nagents : 1, sizeof(*b->agents));
	b->relays = calloc(c->nrelays ? c->nrelays : 1, sizeof(*b->relays));
	if (!b->loop || !b->agents || !b->relays || sessions_init(b))
		return -ENOMEM;
	ns_loop_on_hup(b->loop, on_hup, b);
	err = ns_loop_signals(b->loop, &b->stop, NULL);
	if (err)
		return err;
	err = tls_start(b);
	if (err)
		return err;
	err = broker_listen(b);
	if (!err)
		err = discovery_start(b);
	if (err)
		return err;
	err = http_start(b);
	if (err)
		return err;
	err = drop_root(c->user);
	if (err)
		return err;
	if (c->http_len) {
		struct ns_ep h;
		__be16 port;
		char ha[EP_STRLEN];

		ns_sockaddr_split(&c->http, &h.family, h.addr, &port);
		h.port = ntohs(port);
		log_info("ready: listening on %s, HTTP API on %s; "
			 "%zu agents, %zu relays configured", ep_str(&b->listen_ep, a, sizeof(a)),
			 ep_str(&h, ha, sizeof(ha)), c->nagents, c->nrelays);
	} else {
		log_info("ready: listening on %s (no HTTP API); %zu agents, %zu relays configured",
			 ep_str(&b->listen_ep, a, sizeof(a)), c->nagents, c->nrelays);
	}
	return 0;
}

static void broker_stop(struct broker *b)
{
	http_stop(b);
	if (b->loop) {
		broker_unlisten(b);
		discovery_stop(b);
	}
	/* Records first: closing the peers then has no negotiation left to fail. */
	if (b->sess_hash)
		sessions_free(b);
	if (b->loop)
		peers_close_all(b);
	free(b->agents);
	free(b->relays);
	broker_reload_free(b);
	SSL_CTX_free(b->tls);
	ns_loop_free(b->loop);
}

int main(int argc, char **argv)
{
	struct ns_cmdline cl = {};
	struct broker_cfg cfg;
	struct broker b = {};
	int err, status, ready_fd = -1;

	if (cfg_parse(&cfg, &cl, argc, argv, &status))
		return status;
	ns_log_init("natsplice-broker", NS_LOG_INFO + cl.verbose);
	if (cfg.print_fingerprint) {
		status = print_fingerprint(&cfg);
		cfg_free(&cfg);
		return status;
	}
	raise_nofile();
	b.cfg = &cfg;
	b.config = cl.config ? cl.config : BROKER_CONFIG_DEFAULT;
	b.config_name = strrchr(b.config, '/') ? strrchr(b.config, '/') + 1 : b.config;
	b.argc = argc;
	b.argv = argv;
	/* -d: fork before any socket, loop or signalfd exists */
	err = cl.detach ? ns_detach(&ready_fd) : 0;
	if (!err)
		err = broker_start(&b);
	if (err) {
		log_err("cannot start: %s", strerror(-err));
	} else {
		ns_detach_ready(&ready_fd);
		err = ns_loop_run(b.loop, &b.stop);
	}
	if (!err)
		log_info("stopping: %u connections closed", b.npeers);
	broker_stop(&b);
	cfg_free(&cfg);
	return err ? 1 : 0;
}
