// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An agent that relays for others (`relay: true`, off by default; the
 * original design's relay on a NATed host). Only where others can reach
 * it: NAT discovery (agent_disc.c) must have found no NAT, or a NAT that
 * maps and filters TCP endpoint-independently (a full cone). Then the
 * agent runs `natsplice relay run` (relay-program) as a child with a
 * relay.yaml of its own (0600, in a private temporary directory: the
 * secret is not on a command line): the host's address and device towards
 * the broker, the NAT's public address as public-address, relay-ports,
 * relay-max-splices, relay-max-bandwidth, the agent's name, secret and broker settings. It logs
 * in to the broker as a relay of the agent's name (the broker's agents:
 * entry says relay: true). mode auto: the kernel splice where BPF loads;
 * a child that fails within RELAY_FAST_EXIT_S of its start is started
 * again in userspace mode. A child that exits is started again after
 * RELAY_RESTART_S; stopping the agent stops it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define RELAY_RESTART_S		5	/* a child that exited is started again after this */
#define RELAY_FAST_EXIT_S	5	/* ... exited this soon: BPF failed, userspace next */
#define RELAY_CHECK_MS		1000	/* how often the child is looked after */

struct agent_relay {
	pid_t pid;
	__u64 started_ns;
	bool userspace;			/* mode auto failed: userspace from now on */
	bool refused;			/* said why it does not relay (once) */
	bool no_addr;			/* said that it has no address towards the broker */
	char dir[64];			/* its private directory: relay.yaml, socket */
	char dev[IF_NAMESIZE];		/* where it runs ("": never started) */
	struct ns_timer t;
};

/* The local address towards the broker and its device: 0 or -errno. */
static int local_towards(const struct sockaddr_storage *broker, char *addr, size_t alen,
			 char *dev, size_t dlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ifaddrs *ifs, *i;
	int fd = socket(broker->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = -ENODEV;
	__u32 a[4];
	__be16 port;
	__u8 family;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)broker, ns_sockaddr_len(broker)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	ns_sockaddr_split(&ss, &family, a, &port);
	ns_addr_str(family, a, addr, alen);
	if (getifaddrs(&ifs))
		return -errno;
	for (i = ifs; i; i = i->ifa_next) {
		struct sockaddr_storage is = { 0 };

		if (!i->ifa_addr || i->ifa_addr->sa_family != ss.ss_family)
			continue;
		memcpy(&is, i->ifa_addr, ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
								   sizeof(struct sockaddr_in6));
		if (agent_sa_same_ip(&is, &ss)) {
			snprintf(dev, dlen, "%s", i->ifa_name);
			err = 0;
			break;
		}
	}
	freeifaddrs(ifs);
	return err;
}

/* The child's relay.yaml: 0 or -errno. */
static int write_conf(struct agent *a, const char *path, const char *addr, const char *dev)
{
	const struct agent_cfg *c = a->cfg;
	struct agent_relay *r = a->relay;
	char broker[AGENT_SA_STRLEN], pub[NS_ADDRSTRLEN], pin[2 * NS_TLS_FP_LEN + 1];
	FILE *f;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	ns_addr_str(a->nat[0].family, a->nat[0].addr, pub, sizeof(pub));
	fprintf(f, "# made by natsplice-agent %s for relay: true\n", c->name);
	fprintf(f, "dev: %s\nmode: %s\naddress: \"%s\"\nports: %u-%u\n", dev,
		r->userspace ? "userspace" : c->relay_mode, addr, c->relay_port_lo,
		c->relay_port_hi);
	/* behind a full cone: the NAT's address (IPv4; IPv6 has no NAT here) */
	if (a->nat[0].family == NS_AF_INET && strcmp(pub, addr))
		fprintf(f, "public-address: %s\n", pub);
	fprintf(f, "max-splices: %u\nmax-bandwidth: %u\nsocket: %s/relay.sock\n",
		c->relay_max_splices, c->relay_max_bw_mbit, r->dir);
	fprintf(f, "broker: \"%s\"\nname: %s\nsecret: \"%s\"\n",
		agent_sa_str(&c->broker, broker, sizeof(broker)), c->name, c->secret);
	if (c->tls.has_pin) {
		ns_hex(c->tls.pin, sizeof(c->tls.pin), pin);
		fprintf(f, "broker-fingerprint: sha256:%s\n", pin);
	}
	if (c->tls.ca[0])
		fprintf(f, "broker-ca: %s\n", c->tls.ca);
	if (c->tls.host[0])
		fprintf(f, "broker-name: %s\n", c->tls.host);
	if (c->tls.insecure)
		fprintf(f, "insecure: true\n");
	return fclose(f) ? -errno : 0;
}

static void relay_start(struct agent *a)
{
	struct agent_relay *r = a->relay;
	char addr[NS_ADDRSTRLEN], dev[IF_NAMESIZE], conf[128];
	int err;
	pid_t pid;

	err = local_towards(&a->cfg->broker, addr, sizeof(addr), dev, sizeof(dev));
	if (err) {
		if (!r->no_addr)	/* (said once; it tries again every check) */
			log_warn("relay: no address towards the broker: %s", strerror(-err));
		r->no_addr = true;
		return;
	}
	r->no_addr = false;
	snprintf(conf, sizeof(conf), "%s/relay.yaml", r->dir);
	err = write_conf(a, conf, addr, dev);
	if (err) {
		log_warn("relay: cannot write %s: %s", conf, strerror(-err));
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("relay: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);	/* an agent killed outright takes it along */
		execlp(a->cfg->relay_program, a->cfg->relay_program, "relay", "run", "-f", conf,
		       (char *)NULL);
		fprintf(stderr, "natsplice-agent: relay: cannot run %s: %s\n",
			a->cfg->relay_program, strerror(errno));
		_exit(127);
	}
	r->pid = pid;
	r->started_ns = ns_now_ns();
	memcpy(r->dev, dev, sizeof(r->dev));
	log_info("relay: relaying for others (%s relay run, pid %d, %s mode, address %s on %s)",
		 a->cfg->relay_program, (int)pid, r->userspace ? "userspace" : a->cfg->relay_mode,
		 addr, dev);
}

/* Can others reach this host's relay ports (what discovery found)? */
static bool reachable(const struct agent *a, char *why, size_t len)
{
	const struct ns_nat_result *t = &a->nat[0];

	if (!t->tested) {
		snprintf(why, len, "TCP NAT discovery has no result");
		return false;
	}
	if (t->nat && (t->mapping != NS_NAT_EI || t->filtering != NS_NAT_EI)) {
		snprintf(why, len, "its NAT %s (tcp mapping %s, filtering %s)",
			 t->filtering != NS_NAT_EI ? "filters incoming connections" :
						    "maps per destination",
			 ns_nat_beh_name(t->mapping), ns_nat_beh_name(t->filtering));
		return false;
	}
	if (!t->nat && t->filtering != NS_NAT_EI) {
		snprintf(why, len, "a firewall lets only outbound connections in");
		return false;
	}
	return true;
}

static void on_check(struct ns_loop *l, struct ns_timer *tm)
{
	struct agent *a = tm->data;
	struct agent_relay *r = a->relay;
	int status;
	pid_t p;

	if (r->pid > 0) {
		p = waitpid(r->pid, &status, WNOHANG);
		if (p == r->pid) {
			bool fast = ns_now_ns() - r->started_ns < RELAY_FAST_EXIT_S * 1000000000ULL;

			log_warn("relay: %s exited (%s %d)%s", a->cfg->relay_program,
				 WIFEXITED(status) ? "status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				 fast && !r->userspace && !strcmp(a->cfg->relay_mode, "auto") ?
				 ": starting it in userspace mode" : "");
			if (fast && !strcmp(a->cfg->relay_mode, "auto"))
				r->userspace = true;
			r->pid = 0;
			ns_timer_arm(l, tm, fast && r->userspace ? 1000 : RELAY_RESTART_S * 1000);
			return;
		}
	} else {
		relay_start(a);
	}
	ns_timer_arm(l, tm, RELAY_CHECK_MS);
}

/* Discovery has a result: relay if this host can be reached. */
void agent_relay_nat(struct agent *a)
{
	struct agent_relay *r = a->relay;
	char why[160];

	if (!r || r->pid > 0 || ns_timer_armed(&r->t))
		return;
	if (!reachable(a, why, sizeof(why))) {
		if (!r->refused)
			log_warn("relay: true, but others cannot reach this host: %s: not relaying",
				 why);
		r->refused = true;
		return;
	}
	on_check(a->loop, &r->t);
}

int agent_relay_init(struct agent *a)
{
	struct agent_relay *r;

	if (!a->cfg->relay)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	snprintf(r->dir, sizeof(r->dir), "/tmp/natsplice-agent-relay.XXXXXX");
	if (!mkdtemp(r->dir)) {
		free(r);
		return -errno;
	}
	chmod(r->dir, 0755);	/* a userspace relay runs as nobody: its socket here */
	ns_timer_init(&r->t, on_check, a);
	a->relay = r;
	return 0;
}

/*
 * The relay's programs stay on the device when it exits (a relay's splices
 * outlive its daemon, and the next one takes them over); an agent that
 * stops takes them off, `natsplice dev detach DEV`: its host is not a
 * dedicated relay, and sessions relayed for others find another path.
 */
/* Wait up to 5 s for child pid to exit, then kill it: its wait status. */
static int reap(pid_t pid)
{
	int status = 0, i;

	for (i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(50000);
	if (i == 100) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return status;
}

static void relay_detach(struct agent *a, const char *dev)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execlp(a->cfg->relay_program, a->cfg->relay_program, "dev", "detach", dev,
		       (char *)NULL);
		_exit(127);
	}
	status = reap(pid);
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		log_info("relay: its programs taken off %s", dev);
	else
		log_warn("relay: its programs may still be on %s (%s dev detach %s failed)", dev,
			 a->cfg->relay_program, dev);
}

void agent_relay_free(struct agent *a)
{
	struct agent_relay *r = a->relay;
	char path[128];

	if (!r)
		return;
	ns_timer_cancel(a->loop, &r->t);
	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		reap(r->pid);
	}
	if (r->dev[0] && !r->userspace)
		relay_detach(a, r->dev);
	snprintf(path, sizeof(path), "%s/relay.yaml", r->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/relay.sock", r->dir);
	unlink(path);
	rmdir(r->dir);
	free(r);
	a->relay = NULL;
}
