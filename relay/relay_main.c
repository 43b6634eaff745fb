// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `natsplice relay run`: settings, start-up and the event loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/capability.h>

#include "relay.h"
#include "daemon.h"
#include "log.h"
#include "privs.h"
#include "util.h"

#define GC_INTERVAL_MS 250

const __u32 *relay_addr(const struct relay *r, __u8 family)
{
	if (family == NS_AF_INET)
		return r->cfg.has4 ? r->cfg.addr4 : NULL;
	return r->cfg.has6 ? r->cfg.addr6 : NULL;
}

static void on_watch(struct ns_loop *l, struct ns_watch *nw, __u32 events)
{
	struct relay_watch *w = nw->data;

	w->fn(w->r, w, events);
}

/* The loop drops the not yet dispatched events of a watch deleted in a
 * callback: a splice freed by one event never sees the next. */
int relay_watch_add(struct relay *r, struct relay_watch *w, __u32 events)
{
	w->r = r;
	w->nw.fn = on_watch;
	w->nw.fd = w->fd;
	w->nw.data = w;
	return ns_loop_add(r->loop, &w->nw, events);
}

int relay_watch_mod(struct relay *r, struct relay_watch *w, __u32 events)
{
	return ns_loop_mod(r->loop, &w->nw, events);
}

void relay_watch_del(struct relay *r, struct relay_watch *w)
{
	if (w->fd >= 0)
		ns_loop_del(r->loop, &w->nw);
}

static void on_gc(struct ns_loop *l, struct ns_timer *t)
{
	struct relay *r = t->data;

	relay_gc(r);
	ns_timer_arm(l, t, GC_INTERVAL_MS);
}

static int device_mss(struct relay *r)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int mtu = 1500;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", r->cfg.dev);
	if (fd >= 0 && !ioctl(fd, SIOCGIFMTU, &ifr))
		mtu = ifr.ifr_mtu;
	if (fd >= 0)
		close(fd);
	r->mss4 = mtu - 40;	/* IPv4 + TCP headers without options */
	r->mss6 = mtu - 60;
	return 0;
}

/* SIGHUP: the file and the command line again; a bad file changes nothing. */
static void on_hup(void *arg)
{
	struct relay *r = arg;
	struct relay_cfg c;
	char err[1024], sum[512];

	if (relay_cfg_reload(&c, r, err, sizeof(err))) {
		log_err("reload refused, the old settings stay: %s", err);
		return;
	}
	relay_cfg_apply(r, &c, sum, sizeof(sum));
	log_info("reload: %s", sum[0] ? sum : "nothing changed that the relay can apply");
}

static int setup_loop(struct relay *r)
{
	int err;

	ns_loop_on_hup(r->loop, on_hup, r);
	err = ns_loop_signals(r->loop, &r->stop, NULL);
	if (err)
		return err;
	ns_timer_arm(r->loop, &r->gc_t, GC_INTERVAL_MS);
	return 0;
}

static const struct relay_dataplane *dataplane_of(enum relay_mode mode)
{
	return mode == RELAY_USER ? &relay_dp_user : &relay_dp_bpf;
}

/*
 * The dataplane, once: userspace or BPF, and --mode auto becomes xdp or tc,
 * before anything is loaded; the log says which and why. An explicit --mode xdp on a device where XDP is a
 * trap starts anyway, with a warning that names the trap and the fix.
 */
static void resolve_mode(struct relay *r)
{
	char driver[64], why[RELAY_WHY_LEN];
	const char *trap;

	relay_dev_driver(r->cfg.dev, driver, sizeof(driver));
	r->dp = dataplane_of(r->cfg.mode);
	if (r->cfg.mode == RELAY_AUTO) {
		if (relay_bpf_xdp_attached(r->cfg.dev)) {
			r->cfg.mode = RELAY_XDP;
			snprintf(why, sizeof(why), "xdp: a relay's XDP program is on %s already, "
				 "and its splices keep running there", r->cfg.dev);
		} else {
			r->cfg.mode = relay_auto_mode(driver, why, sizeof(why));
		}
		log_info("mode auto: %s", why);
	} else if (r->cfg.mode == RELAY_XDP && (trap = relay_xdp_trap(driver))) {
		log_warn("--mode xdp on %s (driver %s): %s. Use --mode tc or auto; to keep "
			 "XDP, attach an XDP program to the peer of a veth (natsplice dev pass "
			 "PEER) and turn TX checksum offload off where traffic is generated "
			 "(ethtool -K DEV tx off)", r->cfg.dev, driver, trap);
	}
}

/*
 * Once the programs are attached and every socket is open, nothing the
 * daemon does needs root: it becomes cfg.user, keeping only the
 * capabilities the dataplane names (BPF: CAP_BPF; userspace mode: none),
 * with no_new_privs. Broker messages and punted packets are
 * parsed only after this.
 */
static int relay_drop_root(struct relay *r)
{
	__u64 keep = r->dp->keep_caps;
	const char *what;
	int err;

	if (geteuid() != 0)
		return 0;
	if (!strcmp(r->cfg.user, "root")) {
		log_warn("user: root: the daemon keeps running as root");
		return 0;
	}
	err = ns_drop_privileges(r->cfg.user, keep, &what);
	if (err) {
		log_err("cannot become user %s (%s): %s", r->cfg.user, what, strerror(-err));
		return err;
	}
	log_info("running as user %s (uid %u) with %s", r->cfg.user, getuid(),
		 keep ? "CAP_BPF only" : "no capabilities");
	return 0;
}

/* echo-port on each address: where agents measure their round trip to us.
 * An address that is not the host's own (a cloud's 1:1 NAT in front):
 * the family's wildcard. Without it the relay still relays; the broker
 * then chooses it by load. */
static int relay_echo_open(struct relay *r)
{
	static const __u32 any[4];
	__u8 family;
	int i, err;

	for (i = 0; i < 2; i++) {
		const __u32 *a = relay_addr(r, i ? NS_AF_INET6 : NS_AF_INET);

		if (!r->cfg.echo_port || !a)
			continue;
		family = i ? NS_AF_INET6 : NS_AF_INET;
		err = ns_echo_open(&r->echo[i], r->loop, family, a, r->cfg.echo_port);
		if (err == -EADDRNOTAVAIL)
			err = ns_echo_open(&r->echo[i], r->loop, family, any, r->cfg.echo_port);
		if (err)
			log_warn("echo-port %u (%s): %s: agents cannot measure their round trip "
				 "to this relay", r->cfg.echo_port, i ? "IPv6" : "IPv4",
				 strerror(-err));
	}
	return 0;
}

static int relay_start(struct relay *r)
{
	char a4[NS_ADDRSTRLEN] = "", a6[NS_ADDRSTRLEN] = "";
	int err, n = 0;

	r->ifindex = if_nametoindex(r->cfg.dev);
	if (!r->ifindex) {
		log_err("unknown device '%s'", r->cfg.dev);
		return -ENODEV;
	}
	device_mss(r);
	r->by_id = calloc(RELAY_ID_BUCKETS, sizeof(*r->by_id));
	r->by_port = calloc(65536, sizeof(*r->by_port));
	r->port_refs = calloc(65536, sizeof(*r->port_refs));
	r->loop = ns_loop_new();
	if (!r->by_id || !r->by_port || !r->port_refs || !r->loop)
		return -ENOMEM;
	err = relay_portset_init(&r->ports, r->cfg.port_lo, r->cfg.port_hi);
	if (err)
		return err;
	ns_timer_init(&r->gc_t, on_gc, r);
	ns_bw_init(&r->bw, r->cfg.max_bw_mbit);
	r->next_id = 1;
	if (ns_random_bytes(r->cookie_key, sizeof(r->cookie_key))) {
		log_err("no random bytes for the public ports' challenges");
		return -EIO;
	}
	r->ev.punt = relay_on_punt;
	r->ev.adopt = relay_splice_adopt;
	r->ev.paired = relay_splice_established;
	/* The control socket first: a second daemon must not touch the dataplane. */
	err = relay_ctl_open(r);
	if (err)
		return err;
	resolve_mode(r);
	n = r->dp->open(r);
	if (n < 0)
		return n;
	err = setup_loop(r);
	if (!err)
		err = relay_echo_open(r);
	if (!err)
		err = relay_disc_open(r);
	if (!err)
		err = relay_broker_open(r);
	if (!err)
		err = relay_metrics_open(r);
	if (err)
		return err;
	if (r->cfg.has4)
		ns_addr_str(NS_AF_INET, r->cfg.addr4, a4, sizeof(a4));
	if (r->cfg.has6)
		ns_addr_str(NS_AF_INET6, r->cfg.addr6, a6, sizeof(a6));
	log_info("relay ready: dev %s mode %s address %s%s%s ports %u-%u splices %d",
		 r->cfg.dev, relay_mode_name(r->cfg.mode), a4, *a4 && *a6 ? "," : "", a6,
		 r->cfg.port_lo, r->cfg.port_hi, n);
	return 0;
}

static void relay_stop(struct relay *r)
{
	struct relay_splice *sp, *next;

	relay_ctl_close(r);
	relay_metrics_close(r);
	if (r->dp && !r->dp->outlives_daemon) {
		/* The connections live in this process and end with it. */
		for (sp = r->head; sp; sp = next) {
			next = sp->next;
			relay_splice_delete(r, sp, "relay stopped");
		}
	} else {
		/* Left in place (BPF: table and splices pinned) for the next daemon. */
		for (sp = r->head; sp; sp = next) {
			next = sp->next;
			free(sp);
		}
		r->head = NULL;
	}
	relay_broker_close(r);
	relay_disc_close(r);
	ns_echo_close(&r->echo[0], r->loop);
	ns_echo_close(&r->echo[1], r->loop);
	if (r->dp)
		r->dp->close(r);
	free(r->by_id);
	free(r->by_port);
	free(r->port_refs);
	relay_portset_destroy(&r->ports);
	if (r->loop)
		ns_timer_cancel(r->loop, &r->gc_t);
	ns_loop_free(r->loop);
}

static int relay_loop(struct relay *r)
{
	int err = ns_loop_run(r->loop, &r->stop);

	if (!err)
		log_info("stopping%s", r->dp->outlives_daemon ? " (the dataplane stays in place)" :
								"");
	return err;
}

/* `natsplice relay run`: sock is the CLI's -S (or NULL). The exit status. */
int relay_run(const char *sock, int verbose, int argc, char **argv)
{
	struct relay r = { .ctl_fd = -1, .raw4 = -1, .raw6 = -1,
			   .echo = { { .w.fd = -1 }, { .w.fd = -1 } } };
	int err, status, ready_fd = -1;

	if (relay_cfg_parse(&r.cfg, sock, argc, argv, &verbose, &status))
		return status;
	r.sock_arg = sock;
	r.argc = argc;
	r.argv = argv;
	ns_log_init("natsplice", NS_LOG_INFO + verbose);
	ns_log_route_libbpf();
	if (geteuid() != 0 && dataplane_of(r.cfg.mode)->needs_root) {
		log_err("relay run must run as root (CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW); "
			"only --mode userspace runs as any user");
		return 1;
	}
	if (r.cfg.detach && (err = ns_detach(&ready_fd))) {
		log_err("cannot detach: %s", strerror(-err));
		return 1;
	}
	err = relay_start(&r);
	if (!err)
		err = relay_drop_root(&r);
	if (!err) {
		ns_detach_ready(&ready_fd);
		err = relay_loop(&r);
	}
	relay_stop(&r);
	return err ? 1 : 0;
}
