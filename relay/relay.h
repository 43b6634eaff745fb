/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The relay daemon (`natsplice relay run`), relay/: its header, also what the CLI
 * (ctl/) calls: relay_run, the default paths, the mode a driver gets. */
#ifndef NS_RELAY_H
#define NS_RELAY_H

#include <stdbool.h>
#include <stdio.h>
#include <net/if.h>
#include <sys/queue.h>

#include "tls.h"
#include "http.h"
#include "natsplice_abi.h"
#include "ctlproto.h"
#include "log.h"
#include "loop.h"
#include "rtt.h"
#include "util.h"
#include "pipe.h"
#include "prom.h"

/* RELAY_AUTO until relay_run resolves it to one of the others (relay_auto.c). */
enum relay_mode { RELAY_XDP, RELAY_TC, RELAY_USER, RELAY_AUTO };

#define RELAY_WHY_LEN 320	/* bytes of a "why this mode" sentence */

/* relay_paths.c: default paths, one set per device and network namespace */
#define RELAY_RUN_DIR "/run/natsplice"
int relay_default_sock(const char *dev, char *buf, size_t len);
int relay_default_pin_dir(const char *dev, char *buf, size_t len);
/* name as a bpffs file name allows it: '.' becomes '_' (buf may be name). */
void relay_pin_name(const char *name, char *buf, size_t len);
/* The CLI's socket without -S: the one relay socket of this network namespace
 * (CTL_SOCKET_DEFAULT when there is none). -EEXIST when there are several:
 * their paths in names. */
int relay_find_sock(char *buf, size_t len, char *names, size_t nlen);

/* relay_auto.c: which dataplane suits a device's driver */
/* The driver's XDP trap for a relay, in a sentence, or NULL. */
const char *relay_xdp_trap(const char *driver);
/* RELAY_XDP or RELAY_TC for a driver ("" = unknown), and why into why[len]. */
enum relay_mode relay_auto_mode(const char *driver, char *why, size_t len);
/* The device's driver name as ethtool reports it ("" on error): 0 or -errno. */
int relay_dev_driver(const char *dev, char *buf, size_t len);

/* relay_ports.c: the free ports of the relay port range (--ports), for a
 * uniform random pick in O(1); exhaustion is exact. */
struct relay_portset {
	__u16 lo;		/* first port of the range */
	__u32 n;		/* ports in the range */
	__u32 nfree;		/* free[0..nfree) are free */
	__u16 *free;		/* the range, free ports first */
	__u32 *pos;		/* pos[port - lo]: the port's index in free[] */
};
int relay_portset_init(struct relay_portset *ps, __u16 lo, __u16 hi);
void relay_portset_destroy(struct relay_portset *ps);	/* safe on NULL, twice */
bool relay_portset_is_free(const struct relay_portset *ps, __u16 port);
/* Mark port used / free (ports outside the range: nothing). */
void relay_portset_take(struct relay_portset *ps, __u16 port);
void relay_portset_give(struct relay_portset *ps, __u16 port);
/* The free port that the random number rnd picks, or 0 when none is. */
__u16 relay_portset_pick(const struct relay_portset *ps, __u32 rnd);

#define RELAY_PUBLIC_RANGES	8	/* public-ports entries */

/* Settings, from the command line or relay.yaml; read-only once running. */
struct relay_cfg {
	char dev[IF_NAMESIZE];
	enum relay_mode mode;
	bool has4, has6;
	__u32 addr4[4];		/* IPv4 in [0], zero padded like ns_key */
	__u32 addr6[4];
	__u16 port_lo, port_hi;
	char pin_dir[256];
	char sock_path[108];
	/* broker (optional): register and serve its splice requests */
	char broker[128];
	char name[64];
	char secret[128];
	struct ns_tls_client_cfg tls;	/* broker-fingerprint, -ca, -name, insecure */
	__u32 half_open_s;	/* default half-open deadline */
	__u32 close_grace_s;	/* after FIN both ways (TIME_WAIT-like) */
	__u32 rst_grace_s;	/* after an RST */
	__u32 idle_tcp_s;
	__u32 idle_udp_s;
	/* public ports (relay_public.c): what the broker may open, and how
	 * many clients' SYNs all of them hold at once */
	struct { __u16 lo, hi; } public_ports[RELAY_PUBLIC_RANGES];
	unsigned int npublic_ports;
	__u32 public_half_open;
	__u32 public_syn_rate;	/* new clients a second per port held at once */
	__u32 echo_port;	/* agents' round-trip probes (lib/rtt.h); 0: none */
	__u32 disc_port;	/* discovery-port P (P, P+1, P+2; relay_disc.c); 0: none */
	__u32 max_splices;	/* max-splices: 0 = the table's size */
	__u32 max_bw_mbit;	/* max-bandwidth, Mbit/s, all splices: 0 = none */
	bool has_pub4;		/* public-address: what the broker is told (behind a */
	__u32 pub4[4];		/* full-cone NAT: the NAT's), default address */
	struct sockaddr_storage metrics;	/* metrics: GET /metrics (Prometheus) */
	socklen_t metrics_len;		/* 0: none */
	struct ns_http_tokens metrics_tokens;	/* metrics-tokens: none = open */
	char user[64];		/* who the daemon becomes once started */
	bool detach;		/* -d */
	bool no_kmod;		/* handshake: daemon (never the kernel shim) */
	enum relay_mode mode_asked;	/* mode as set (mode: auto becomes xdp or tc) */
	const char *config;	/* -f FILE (in argv), NULL: none */
};

struct relay_splice;
struct ns_bclient;
struct relay;
struct ns_pkt_info;

/* A registration with the event loop (lib/loop.c): what to call when fd is
 * ready. nw is the loop's; relay_watch_add() fills it. */
struct relay_watch {
	void (*fn)(struct relay *r, struct relay_watch *w, __u32 events);
	int fd;
	int side;		/* userspace mode: which side of ... */
	struct relay_splice *sp;	/* ... which splice */
	struct relay *r;
	struct ns_watch nw;
};


#define RELAY_PUBLIC_MAX	64	/* public ports open at once */
#define RELAY_PUBLIC_PREFIXES	16	/* allowed source prefixes per public port */
#define RELAY_PUBLIC_BUCKETS	4096	/* held clients by address and port */
#define RELAY_PUBLIC_PREFIX_SLOTS 4096	/* held clients by port and source prefix */
#define RELAY_PUBLIC_VERIFIED	4096	/* clients that answered a challenge (cache) */

/* A client that answered a public port's challenge (relay_public.c). */
struct relay_verified {
	__u32 addr[4];
	__be16 port;
	__u32 pub_id;
	__u64 until_ns;
};

/* A public port the broker opened (relay_public.c). */
struct relay_public {
	__u32 id;		/* the broker's PUBLIC_ID; 0: a free slot */
	__u32 index;		/* in relay.pub[]: its NS_PUBLIC_BIT punt id */
	__u16 port;		/* host order */
	__u8 family;		/* the provider's, so the clients' (no translation) */
	__u32 from[4];		/* where its provider connects from */
	__u32 timeout_s;	/* a client's SYN waits this long for the provider */
	unsigned int nprefix;	/* 0: any source */
	struct ns_prefix prefix[RELAY_PUBLIC_PREFIXES];
	TAILQ_HEAD(, relay_splice) held;	/* clients not established, oldest first */
	unsigned int nheld;
	__u64 clients, evicted, disallowed, dropped;
	struct ns_gcra syn_rate;	/* new clients held without a challenge (public-syn-rate) */
	struct relay_watch lw;	/* userspace mode: its listening socket */
};

/* What the dataplane reports up to the splice life cycle (relay_splice.c). */
struct relay_dp_events {
	/* A SYN or a UDP token for a splice (the BPF programs punt them). */
	void (*punt)(struct relay *r, const struct ns_punt *p);
	/* A splice found in what a previous daemon left (BPF: the pins). */
	struct relay_splice *(*adopt)(struct relay *r, const struct ns_splice *s);
	/* Both sides of sp are connected (userspace mode: accepted); `first`
	 * connected first. */
	void (*paired)(struct relay *r, struct relay_splice *sp, int first);
};

/* The traffic state of a splice's two directions (0: A->B, 1: B->A). */
struct relay_entries {
	__u32 flags[2];		/* NS_F_* */
	__u64 last_seen_ns;	/* the later of the two */
};

/*
 * The dataplane, decided once by --mode (relayd's struct protocol is the
 * model): the BPF programs, XDP or TC (relay_bpf.c, relay_send.c), or the
 * splice(2) proxy of userspace mode (relay_user.c). The daemon's other
 * parts call only these. Functions return 0 or -errno unless said.
 */
struct relay_dataplane {
	__u64 keep_caps;	/* capabilities the daemon keeps once started */
	bool needs_root;	/* to start */
	bool outlives_daemon;	/* splices go on after the daemon exits */
	bool udp_keeps_ports;	/* an established UDP splice keeps its relay
				 * ports (its sockets own them) */
	bool pure;		/* it can splice in pure mode (DESIGN §2) */
	bool answers_syns;	/* passive TCP: the daemon answers the SYNs
				 * itself, so it can make a side prove
				 * itself first (relay_splice.c, "proving") */
	/* Load, attach, open what it needs, adopt what a previous daemon
	 * left (ev.adopt): the number of splices adopted, or -errno. */
	int (*open)(struct relay *r);
	void (*close)(struct relay *r);
	/* A new splice: wait for its sides on its relay ports. */
	int (*splice_open)(struct relay *r, struct relay_splice *sp);
	/* Forget a splice: its forwarding state, its ports, its sockets. */
	void (*splice_close)(struct relay *r, struct relay_splice *sp);
	/* Wait on the (just learnt) relay port of side `side` too. */
	int (*port_wait)(struct relay *r, const struct relay_splice *sp, int side);
	/* sp no longer waits on its side's port; seal: established splices
	 * still use it, strangers stay out. */
	void (*port_release)(struct relay *r, const struct relay_splice *sp, int side,
			     bool seal);
	/* Both sides are here: forward between them (before any answer). */
	int (*install)(struct relay *r, struct relay_splice *sp);
	/* Tell side `side` that it is connected (SYN-ACK, UDP "NSOK"), or
	 * reset it. */
	int (*answer)(struct relay *r, const struct relay_splice *sp, int side);
	int (*reset)(struct relay *r, const struct relay_splice *sp, int side);
	/* Keep sp's record where the next daemon finds it. */
	int (*save)(struct relay *r, const struct relay_splice *sp);
	/* A handshake completed below the daemon (the module shim): its
	 * record of s->id, into s. */
	int (*refresh)(struct relay *r, struct ns_splice *s);
	/* Traffic of an established splice. */
	int (*entries)(struct relay *r, const struct relay_splice *sp, struct relay_entries *e);
	int (*counters)(struct relay *r, const struct relay_splice *sp, __u64 packets[2],
			__u64 bytes[2]);
	/* The id of the splice whose forwarding state holds sp's flow of
	 * direction dir (0: none). */
	__u32 (*key_owner)(struct relay *r, const struct relay_splice *sp, int dir);
	/* Verdict and drop counters (NS_STAT_*). */
	int (*stats)(struct relay *r, __u64 stats[NS_STAT_MAX]);
	/* Take the SYNs to a public port (to the daemon: relay_public_punt,
	 * or accept them: relay_public_client), or stop. */
	int (*public_open)(struct relay *r, struct relay_public *pub);
	void (*public_close)(struct relay *r, struct relay_public *pub);
};

extern const struct relay_dataplane relay_dp_bpf;	/* relay_bpf.c */
extern const struct relay_dataplane relay_dp_user;	/* relay_user.c */

/* Everything the daemon owns; passed around, never global. */
struct relay {
	struct relay_cfg cfg;
	struct ns_echo echo[2];	/* echo-port on the IPv4 and the IPv6 address */
	struct relay_disc *disc;	/* discovery-port (relay_disc.c), NULL: none */
	int ifindex;
	__u16 mss4, mss6;	/* largest MSS the device carries */
	struct ns_loop *loop;
	int ctl_fd;
	struct relay_watch ctl_w, ring_w;
	struct ns_timer gc_t;
	/* max-bandwidth in userspace mode: the cap, and a timer that pumps
	 * the splices it held back (the BPF dataplane: bpf/lib/police.h) */
	struct ns_bw bw;
	struct ns_timer bw_t;
	__u64 bw_dropped;	/* UDP datagrams over the cap */
	int raw4, raw6;		/* IPPROTO_RAW senders for SYN-ACK, RST, UDP acks */
	const struct relay_dataplane *dp;	/* what --mode decided (NULL before) */
	struct relay_dp_events ev;	/* what the dataplane reports up */
	struct relay_bpf *bpf;	/* the BPF dataplane's own (relay_bpf.c) */
	bool kmod;		/* passive handshakes in the kernel (natsplice_kmod) */
	/* splices: list + id hash + relay port use */
	struct relay_splice *head;
	struct relay_splice **by_id;	/* RELAY_ID_BUCKETS chains */
	/* 65536 entries each. A relay port is held only while a splice waits
	 * for a SYN (or token) on it: by_port[p] is that splice. Once
	 * established, a splice's packets are told apart by their whole
	 * 5-tuple, so any number of splices with other peers share the port:
	 * port_refs[p] counts the live splices that use it. */
	struct relay_splice **by_port;
	__u32 *port_refs;
	unsigned int nsplices;
	__u32 next_id;
	struct ns_bclient *broker;	/* NULL without --broker (lib/bclient.h) */
	struct relay_portset ports;	/* the range's ports no splice holds */
	__u32 gc_round;		/* relay_gc() calls */
	/* SYNs from a second source (or with a new ISN) for a side that
	 * already had one, while its splice was not established: taken as a
	 * candidate (or, before the pair, in the place of the first), or
	 * refused (its partner was answered already, or too many). */
	__u64 syn_second_taken, syn_second_refused;
	__u64 proofs_bad;	/* ACKs at a proving port that proved nothing */
	/* public ports (relay_public.c) */
	struct relay_public pub[RELAY_PUBLIC_MAX];
	struct relay_splice *pub_by_client[RELAY_PUBLIC_BUCKETS];
	__u16 pub_prefix[RELAY_PUBLIC_PREFIX_SLOTS];	/* held per port and source prefix */
	unsigned int pub_held;		/* all public ports' held clients */
	/* clients of public ports: held, evicted, from a source not allowed,
	 * dropped (no relay port or splice room) */
	__u64 pub_clients, pub_evicted, pub_disallowed, pub_dropped;
	__u64 pub_challenged, pub_verified;	/* challenges sent, answered */
	__u64 pub_early_data;		/* a client's data before its splice was up */
	struct relay_verified pub_ok[RELAY_PUBLIC_VERIFIED];
	__u8 cookie_key[32];		/* the challenges' HMAC key, random at start */
	struct ns_ratelog pub_log;
	struct ns_http *http;	/* --metrics (relay_metrics.c), or NULL */
	struct relay_metrics *m;	/* what /metrics counts besides the maps */
	volatile bool stop;
	/* the command line, read again with the file on SIGHUP */
	const char *sock_arg;
	int argc;
	char **argv;
};

#define RELAY_ID_BUCKETS NS_MAX_SPLICES
#define RELAY_GC_SPREAD 4	/* established splices are read every 4th GC round */	/* bucket of an id: NS_SPLICE_SLOT(id) */

/*
 * The next splice id from *next on: not 0, and in a bucket no live splice
 * holds, because the bucket is the id's counters slot in the dataplane
 * (NS_SPLICE_SLOT). With fewer than NS_MAX_SPLICES splices live, one of the
 * next NS_MAX_SPLICES ids is free.
 */
static inline __u32 relay_id_alloc(struct relay_splice *const *by_id, __u32 *next)
{
	__u32 id;

	do
		id = (*next)++ & ~NS_PUBLIC_BIT;
	while (!id || by_id[NS_SPLICE_SLOT(id)]);
	return id;
}

#define TC_HANDLE	0x4e53		/* "NS": our TC filter's handle ... */
#define TC_PRIO		0x4e53		/* ... and priority on clsact ingress */

#define RELAY_CANDIDATES 4	/* SYNs (sources) a proving side may have at once */

/* A SYN the daemon answered for a side that has not proved itself yet. */
struct relay_candidate {
	struct ns_peer peer;
	struct ns_syn syn;
};

/* One splice in the daemon. */
struct relay_splice {
	struct ns_splice s;
	/* Proving (relay_splice.c): side prove_side was answered, once per
	 * candidate SYN (cand[0..ncand)); the other side waits for its answer
	 * until one candidate proves itself. -1: not proving. A side's SYNs
	 * from several sources before the pair are candidates already. */
	int prove_side;
	int cand_side;		/* the side cand[] holds (before the pair too) */
	int ncand;
	unsigned int cand_next;	/* the slot a new one takes when all are used */
	struct relay_candidate cand[RELAY_CANDIDATES];
	struct relay_splice *next, *prev;	/* all splices */
	struct relay_splice *id_next;		/* id hash chain */
	__u64 last_log_ns;
	/* a public port's client not established yet (relay_public.c) */
	struct relay_public *pub;
	TAILQ_ENTRY(relay_splice) pub_entry;	/* pub->held */
	struct relay_splice *pub_hnext;		/* relay.pub_by_client chain */
	unsigned int pub_slot;			/* relay.pub_prefix[] */
	bool pub_verified;			/* it answered a challenge: evicted last */
	/* userspace mode */
	struct relay_watch lw[2];	/* listening (TCP) or bound (UDP) sockets per side */
	struct relay_watch cw[2];	/* accepted TCP connections per side */
	struct ns_pipe pipe[2];		/* [0]: A->B, [1]: B->A */
	__u64 upackets[2], ubytes[2];
	bool held[2];		/* a direction max-bandwidth stopped (relay.bw_t) */
	__u64 ulast_ns;
};

/* relay_bpf.c: the BPF dataplane (relay_dp_bpf); for the CLI: */
int relay_bpf_detach_dev(const char *pin_dir, const char *dev);
/* A relay's XDP program is attached to dev (it outlives its daemon). */
bool relay_bpf_xdp_attached(const char *dev);

/* relay_splice.c: splice life cycle, handshake splicing, GC */
int relay_splice_add(struct relay *r, const struct ctl_req *req, struct relay_splice **out,
		     char *msg, size_t msglen);
struct relay_splice *relay_splice_find(struct relay *r, __u32 id);
void relay_splice_delete(struct relay *r, struct relay_splice *sp, const char *why);
struct relay_splice *relay_splice_adopt(struct relay *r, const struct ns_splice *s);
void relay_on_punt(struct relay *r, const struct ns_punt *p);
void relay_gc(struct relay *r);
void relay_splice_sync(struct relay *r, struct relay_splice *sp);
void relay_splice_info(struct relay *r, const struct relay_splice *sp, struct ctl_splice *out);
void relay_splice_established(struct relay *r, struct relay_splice *sp, int first);
/* Keep sp's record for the next daemon (after a change of its own). */
void relay_splice_save(struct relay *r, struct relay_splice *sp);
const char *relay_state_name(__u8 state);

/* A public port's client at pub, from pi: a splice holding it (B) waiting
 * for the provider (A) on a relay port of the range, not linked to pub yet. */
int relay_splice_add_public(struct relay *r, const struct relay_public *pub,
			    const struct ns_pkt_info *pi, struct relay_splice **out, char *msg,
			    size_t msglen);
/* A punt (SYN, retransmission, proof) for side `side` of sp. */
void relay_splice_punt(struct relay *r, struct relay_splice *sp, int side,
		       const struct ns_punt *p, const struct ns_pkt_info *pi, size_t len);

/* relay_public.c: public ports */
struct relay_public *relay_public_get(struct relay *r, __u32 punt_id);
int relay_public_open(struct relay *r, const struct relay_public *want, char *msg, size_t len);
void relay_public_close(struct relay *r, __u32 id, const char *why);
void relay_public_close_all(struct relay *r, const char *why);
void relay_public_punt(struct relay *r, const struct ns_punt *p, const struct ns_pkt_info *pi,
		       size_t len);
/* verified: it answered a challenge (userspace mode: it completed a
 * handshake with the kernel). */
struct relay_splice *relay_public_client(struct relay *r, struct relay_public *pub,
					 const struct ns_pkt_info *pi, bool verified);
/* sp is established or goes: no longer held for its public port. */
void relay_public_unhold(struct relay *r, struct relay_splice *sp);
void relay_public_answer(struct relay *r, __u32 splice_id, __u64 session, __u32 code);

/* relay_send.c: packets the daemon sends itself (BPF dataplane) */
int relay_send_open(struct relay *r);
int relay_send_ip(struct relay *r, __u8 family, const void *pkt, size_t len);
int relay_send_synack(struct relay *r, const struct relay_splice *sp, int side);
int relay_send_rst(struct relay *r, const struct relay_splice *sp, int side);
int relay_send_udp_ok(struct relay *r, const struct relay_splice *sp, int side);
/* A public port's challenge to a client's SYN (pi, syn): a SYN-ACK whose
 * acknowledgment number is `cookie`, which no SYN-SENT socket accepts: the
 * client answers with an RST whose sequence number is the cookie. */
int relay_send_challenge(struct relay *r, const struct ns_pkt_info *pi,
			 const struct ns_syn *syn, __u32 cookie);

/* relay_broker.c: what the relay does over its broker connection (lib/bclient.c) */
int relay_broker_open(struct relay *r);

/* relay_disc.c: discovery-port, the broker's second address for NAT discovery */
struct relay_disc;
struct ns_msg;
int relay_disc_open(struct relay *r);	/* 0 (a port it cannot open: logged, none) */
void relay_disc_close(struct relay *r);
bool relay_disc_on(const struct relay *r);
void relay_disc_on_send(struct relay *r, const struct ns_msg *m);	/* DISC_SEND */
void relay_broker_close(struct relay *r);	/* safe without --broker */
void relay_broker_splice_peer(struct relay *r, const struct relay_splice *sp);
void relay_broker_splice_done(struct relay *r, const struct relay_splice *sp,
			      const struct ctl_splice *info, const char *why);
void relay_broker_public_client(struct relay *r, const struct relay_public *pub,
				const struct relay_splice *sp);
/* SPLICE_DONE for a splice that is gone already (a public client's). */
void relay_broker_gone(struct relay *r, __u64 session, __u32 splice_id);

/* relay_config.c: settings (command line, relay.yaml) and --help */
int relay_cfg_parse(struct relay_cfg *c, const char *sock, int argc, char **argv, int *verbose,
		    int *status);
void relay_run_usage(FILE *f);
/* SIGHUP: c afresh from r's file and command line, 0 or -errno with err. */
int relay_cfg_reload(struct relay_cfg *c, const struct relay *r, char *err, size_t len);
struct ns_warnings;
/* What works but is not safe (a short secret, insecure, open metrics off
 * loopback, a grace of 0): -n and start print it, a reload logs it. */
void relay_cfg_warn(const struct relay_cfg *c, struct ns_warnings *w);
/* The changes from r->cfg to c: timers applied, the rest logged as needing
 * a restart; the summary into sum. */
void relay_cfg_apply(struct relay *r, const struct relay_cfg *c, char *sum, size_t len);
const char *relay_mode_name(enum relay_mode mode);
/* relay_main.c: `natsplice relay run` (sock: the CLI's -S or NULL); exit status */
int relay_run(const char *sock, int verbose, int argc, char **argv);

/* relay_metrics.c: GET /metrics on --metrics; what it counts of the splices' lives */
int relay_metrics_open(struct relay *r);	/* 0 without --metrics */
void relay_metrics_close(struct relay *r);	/* safe without */
/* sp (made by this daemon) is established now: its setup time. */
void relay_metrics_established(struct relay *r, const struct relay_splice *sp);
/* sp ends (why: relay_splice_delete's); info: its last counters. */
void relay_metrics_done(struct relay *r, const struct relay_splice *sp,
			const struct ctl_splice *info, const char *why);
void relay_metrics_created(struct relay *r);

/* relay_ctl.c: the control socket */
int relay_ctl_open(struct relay *r);
void relay_ctl_close(struct relay *r);

/* relay_main.c: event loop registration */
int relay_watch_add(struct relay *r, struct relay_watch *w, __u32 events);
int relay_watch_mod(struct relay *r, struct relay_watch *w, __u32 events);
void relay_watch_del(struct relay *r, struct relay_watch *w);
const __u32 *relay_addr(const struct relay *r, __u8 family);
/* Is port (host order) in the relay's own range (--ports)? */
static inline bool relay_port_own(const struct relay *r, __u16 port)
{
	return port >= r->cfg.port_lo && port <= r->cfg.port_hi;
}

#endif
