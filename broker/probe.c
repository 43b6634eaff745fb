// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Reachability probe: after an agent logs in with LISTEN_PORT, try a TCP
 * connection to its observed IP and that port. If it completes within the
 * probe timeout the agent is reachable (direct tunnels can come to it); the
 * connection is closed at once, the agent sees a connection without a proof.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "broker.h"
#include "log.h"
#include "util.h"

static void probe_done(struct peer *p, bool ok, const char *why)
{
	struct broker *b = p->b;
	char a[EP_STRLEN];
	struct ns_ep ep = p->observed;
	__u64 ms = (ns_now_ns() - p->probe->start_ns) / 1000000;

	ep.port = p->listen_port;
	p->reachable = ok;
	if (ok)
		b->st.probes_ok++;
	else
		b->st.probes_failed++;
	ep_str(&ep, a, sizeof(a));
	if (ok)
		log_info("agent %s: %s reachable (%llu ms): direct tunnels", p->name, a,
			 (unsigned long long)ms);
	else
		log_info("agent %s: %s not reachable: %s", p->name, a, why);
	probe_cancel(p);
}

static void on_probe(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct probe *pr = w->data;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
		soerr = errno;
	if (!soerr && !(events & EPOLLOUT))
		return;
	probe_done(pr->p, !soerr, strerror(soerr ? soerr : EIO));
}

static void on_probe_timeout(struct ns_loop *l, struct ns_timer *t)
{
	struct probe *pr = t->data;

	probe_done(pr->p, false, "timed out");
}

/* The probe's source: the discovery-address when there is one (the agent
 * never sent to it: a NAT that filters by address, a restricted cone, does
 * not let the probe in just because the agent talks to the broker), else
 * the broker's own listen address when it is one address of the same
 * family (a multi-homed broker probes from its public face). */
static void probe_bind(struct broker *b, int fd, __u8 family)
{
	const struct ns_ep *src = b->cfg->has_disc ? &b->disc_ep : &b->listen_ep;
	struct sockaddr_storage ss;
	socklen_t sl;

	if (src->family != family || ns_addr_is_zero(src->addr))
		return;
	sl = ns_sockaddr_make(family, src->addr, 0, &ss);
	if (bind(fd, (struct sockaddr *)&ss, sl))
		log_debug("probe: bind to the listen address: %s", strerror(errno));
}

void probe_start(struct peer *p)
{
	struct broker *b = p->b;
	struct sockaddr_storage ss;
	struct probe *pr;
	socklen_t sl;
	int fd;

	probe_cancel(p);
	p->reachable = false;
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return;
	fd = socket(p->observed.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(pr);
		return;
	}
	probe_bind(b, fd, p->observed.family);
	pr->p = p;
	pr->start_ns = ns_now_ns();
	pr->w.fn = on_probe;
	pr->w.fd = fd;
	pr->w.data = pr;
	ns_timer_init(&pr->timer, on_probe_timeout, pr);
	p->probe = pr;
	sl = ns_sockaddr_make(p->observed.family, p->observed.addr, htons(p->listen_port), &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
		probe_done(p, true, "");
		return;
	}
	if (errno != EINPROGRESS) {
		probe_done(p, false, strerror(errno));
		return;
	}
	if (ns_loop_add(b->loop, &pr->w, EPOLLOUT)) {
		probe_done(p, false, "epoll");
		return;
	}
	ns_timer_arm(b->loop, &pr->timer, b->cfg->probe_timeout_ms);
}

void probe_cancel(struct peer *p)
{
	struct probe *pr = p->probe;

	if (!pr)
		return;
	ns_loop_del(p->b->loop, &pr->w);
	ns_timer_cancel(p->b->loop, &pr->timer);
	close(pr->w.fd);
	free(pr);
	p->probe = NULL;
}
