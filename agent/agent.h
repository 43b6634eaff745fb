/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* natsplice-agent: private header. */
#ifndef NS_AGENT_H
#define NS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <zlib.h>

#include "ns_proto.h"
#include "natsplice_abi.h"
#include "natdisc.h"
#include "conn.h"
#include "pipe.h"
#include "seal.h"
#include "loop.h"
#include "util.h"
#include "alg.h"
#include "tls.h"

#define AGENT_NAME_MAX		255	/* bytes; a protocol STR */
#define AGENT_UDP_IDLE_S	60	/* default: UDP tunnel idle timeout */
#define AGENT_RELAY_PROBE_S	5	/* default relay-probe-interval */
#define AGENT_CONNECT_TIMEOUT_S	NS_NEGOTIATE_TIMEOUT_S	/* default: tunnel set-up deadline */
#define AGENT_RELAY_RETRIES	2	/* a relayed set-up asked again at most so often */
#define AGENT_BACKOFF_MIN_MS	500	/* pool refill delay after failures: first ... */
#define AGENT_BACKOFF_MAX_MS	5000	/* ... and largest, before jitter */
#define AGENT_UDP_FRAME_HDR	2	/* be16 length in front of each datagram */
#define AGENT_UDP_FALLBACK_S	3	/* default: UDP tunnel set-up before falling back to TCP */
#define AGENT_UDP_FAILED_S	60	/* after a fallback, a subscription's clients go TCP */
#define AGENT_UDP_RESEND_MS	200	/* tokens and proofs resent until answered */
#define AGENT_UDP_SOCKBUF	(4 << 20)	/* bytes of buffer each way per UDP socket */
#define AGENT_UDP_MAX		65535	/* largest datagram a frame can carry */
#define AGENT_POOL_DEFAULT	4	/* default: ready tunnels at most per TCP subscription */
#define AGENT_POOL_MAX		64	/* largest pool: setting */
#define AGENT_POOL_IDLE_S	30	/* default: a pooled tunnel idle this long is closed */
#define AGENT_POOL_IDLE_MAX_S	3600	/* largest pool-idle */
#define AGENT_OPEN_WAIT_S	(AGENT_POOL_IDLE_MAX_S + 60)	/* P: longest wait for OPEN */
#define AGENT_RATE_SLOTS	10	/* client rate: one-second slots kept */
#define AGENT_SETUP_MS_GUESS	100	/* tunnel set-up time before one was measured */

/* ---- settings (agent_config.c); read-only once loaded ---- */

#define AGENT_PORTS_MAX		16	/* port ranges in one ports: / reverse: list */
#define AGENT_ALG_MAX		15	/* longest ALG name */

/* Ports and port ranges of a multi-connection service ("5001", "6000-6010/udp"). */
struct agent_ports {
	struct agent_port_range {
		__u16 lo, hi;
		__u8 proto;			/* IPPROTO_TCP / IPPROTO_UDP */
	} r[AGENT_PORTS_MAX];
	size_t n;
};
bool agent_ports_has(const struct agent_ports *p, __u8 proto, __u16 port);

/* publish: one local service offered to others. */
#define AGENT_EXPOSE_ALLOW_MAX	16	/* expose: allow: prefixes */

/* expose: a public port on a relay for clients with no agent (issue 14). */
struct agent_expose {
	bool on;
	__u16 port;				/* 0: the broker picks one */
	__u32 max_conns;			/* 0: the broker's default */
	unsigned int nallow;			/* 0: any source */
	char allow[AGENT_EXPOSE_ALLOW_MAX][NS_ADDRSTRLEN + 5];	/* "addr/len" */
};

struct agent_pub {
	char name[AGENT_NAME_MAX + 1];		/* bare name */
	struct sockaddr_storage target;		/* the real server */
	socklen_t target_len;
	__u8 proto;				/* IPPROTO_TCP / IPPROTO_UDP */
	bool compress;				/* ask for a zlib tunnel */
	bool plain;				/* encrypt: false (tunnels not sealed) */
	struct agent_ports ports;		/* more ports of the target host (flows) */
	struct agent_ports reverse;		/* ports the server connects back to */
	char alg[AGENT_ALG_MAX + 1];		/* "" = none */
	struct agent_expose expose;
	__u8 proxy;				/* proxy-protocol: 0 off, NS_PROXY_V1/V2 */
};

/* subscribe: a remote service made local on a listening port. */
struct agent_sub {
	char service[AGENT_NAME_MAX + 1];	/* "agent/name" */
	struct sockaddr_storage listen;
	socklen_t listen_len;
	__u8 proto;
	__u32 pool;				/* TCP: ready tunnels at most, 0 = none */
	__u32 pool_idle_s;			/* a ready tunnel idle this long is closed */
	struct agent_ports ports;		/* more local ports, same numbers (flows) */
	struct agent_ports reverse;		/* the client's ports the server may connect to */
	char alg[AGENT_ALG_MAX + 1];		/* the ALG it agrees to run, "" = none */
};

struct agent_cfg {
	struct sockaddr_storage broker;
	socklen_t broker_len;
	char name[AGENT_NAME_MAX + 1];
	char secret[AGENT_NAME_MAX + 1];
	bool has_tunnel_listen;
	struct sockaddr_storage tunnel_listen;
	socklen_t tunnel_listen_len;
	struct agent_pub *pub;
	size_t npub;
	struct agent_sub *sub;
	size_t nsub;
	__u32 udp_idle_s;			/* udp-idle */
	__u32 connect_timeout_s;		/* connect-timeout */
	__u32 udp_fallback_s;			/* udp-fallback */
	__u32 relay_probe_s;			/* relay-probe-interval, 0: none */
	bool relay;				/* relay: relay for others (agent_relay.c) */
	char relay_program[256];		/* relay-program */
	char relay_mode[16];			/* relay-mode */
	__u16 relay_port_lo, relay_port_hi;	/* relay-ports */
	__u32 relay_max_splices;		/* relay-max-splices */
	__u32 relay_max_bw_mbit;		/* relay-max-bandwidth: 0 = none */
	bool no_ktls;				/* ktls: off (seal in user space) */
	struct ns_tls_client_cfg tls;		/* broker-fingerprint, -ca, -name, insecure */
};

struct ns_cmdline;
/* Defaults, agent.yaml (-f), the command line: 0 to run, or 1 with the exit
 * status in *status (--help, -V, -n, or an error already printed). */
int agent_cfg_parse(struct agent_cfg *c, struct ns_cmdline *cl, int argc, char **argv,
		    int *status);
void agent_cfg_usage(FILE *f);
int agent_cfg_load(struct agent_cfg *c, const char *path, char *err, size_t errlen);
/* SIGHUP: c afresh from path (NULL: none) and the command line again: 0 or
 * -errno with err ("file:line:col: ..."); c is the caller's to free. */
int agent_cfg_reload(struct agent_cfg *c, const char *path, int argc, char **argv, char *err,
		     size_t errlen);
int agent_cfg_load_string(struct agent_cfg *c, const char *name, const char *text,
			  char *err, size_t errlen);
void agent_cfg_free(struct agent_cfg *c);	/* safe on a zeroed cfg */
struct ns_warnings;
/* What works but is not safe (a short secret, insecure: true): -n and
 * start print it, a reload logs it. */
void agent_cfg_warn(const struct agent_cfg *c, struct ns_warnings *w);

/* ---- pure helpers (agent_util.c) ---- */

/* Reconnect delay after `attempt` failures (0 = first retry): 500 ms doubling
 * to 5 s, scaled by 0.75 + 0.5 * rnd / 2^32 (+-25 %). */
/* The frame header for a datagram of len bytes: 0 or -EMSGSIZE. */
int agent_udp_frame_hdr(__u8 hdr[AGENT_UDP_FRAME_HDR], size_t len);
/* Frame a datagram ({be16 len; bytes}) into out (cap bytes): bytes written,
 * or -EMSGSIZE (len > AGENT_UDP_MAX) / -ENOSPC (cap too small). */
int agent_udp_frame(__u8 *out, size_t cap, const void *data, size_t len);
/* The next datagram framed at the start of buf (len bytes): the number of
 * bytes the frame takes (header included) with *data / *dlen set, or 0 when
 * the frame is not complete yet. */
size_t agent_udp_unframe(const __u8 *buf, size_t len, const __u8 **data, size_t *dlen);
/* IPv4 or IPv4-mapped IPv6 -> AF_INET + address in addr[0]; else AF_INET6 and
 * the IPv6 address. Port in network order. */
void agent_sa_ip(const struct sockaddr_storage *ss, __u8 *family, __u32 addr[4], __be16 *port);
/* "192.0.2.1:80" / "[2001:db8::1]:80"; IPv4-mapped IPv6 shown as IPv4. */
const char *agent_sa_str(const struct sockaddr_storage *ss, char *buf, size_t len);
/* Same IP address (ports ignored; IPv4-mapped IPv6 equals IPv4). */
bool agent_sa_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
bool agent_sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
const char *agent_err_text(__u32 code);	/* "denied by ACL", ... */

/* Clients of a subscription per second, one slot per second, over the last
 * AGENT_RATE_SLOTS seconds. */
struct agent_rate {
	__u32 n[AGENT_RATE_SLOTS];	/* n[s % SLOTS]: clients in second s */
	__u64 sec;			/* the newest second counted */
	__u64 last_ns;			/* the last client, 0 = none yet */
};
void agent_rate_add(struct agent_rate *r, __u64 now_ns);
/* The most clients seen in one second of the window ending now. */
__u32 agent_rate_peak(const struct agent_rate *r, __u64 now_ns);
/*
 * How many ready tunnels a pool keeps: the clients expected while one tunnel
 * is being set up, ceil(peak/s x setup_ms / 1000), plus one; at most bound
 * (UINT32_MAX: unbounded, the demand); 0 when the last client is idle_s or
 * more ago (quiet_ms = now - last client, UINT64_MAX: none yet).
 */
__u32 agent_pool_target(__u32 peak, __u32 setup_ms, __u64 quiet_ms, __u32 idle_s,
			__u32 bound);

#define AGENT_SA_STRLEN (NS_ADDRSTRLEN + 8)

/* ---- runtime ---- */

struct agent;
struct agent_tunnel;

struct ns_bclient;

/* The agent's side of the broker connection (agent_broker.c). */
struct agent_broker {
	struct ns_bclient *bc;		/* the connection itself (lib/bclient.h) */
	__u32 *pub_req;			/* REQ_ID of each PUBLISH in flight, 0 = answered */
	size_t pub_pending, pub_ok;
	bool ready_logged;		/* this connection said "ready" (a reload's PUBLISH
					 * does not say it again) */
};

struct agent_session;

/*
 * A listener (agent_sub.c): a subscription's port (cfg set; main == itself
 * for its listen address, another one for each of its extra ports), or a
 * port a session opened (sess set: an ALG's alias, a reverse port), whose
 * clients become flows on that session.
 */
struct agent_listener {
	struct agent *a;
	const struct agent_sub *cfg;	/* the subscription, NULL for a session's */
	struct agent_listener *main;	/* the subscription's main listener */
	struct agent_listener *rnext;	/* a->lis_retired: a reload removed its subscription */
	struct agent_session *sess;	/* a session's listener: its session */
	struct agent_listener *snext;	/* the session's (or subscription's extra) listeners */
	struct sockaddr_storage addr;	/* where it listens */
	__u8 proto;
	__u16 flow_port;		/* FLOW PORT for its clients, 0 = the service's */
	bool once;			/* a session's TCP listener: closed after one client */
	__u64 expires_ns;		/* a session's listener unused until then is closed */
	struct ns_watch w;
	struct agent_tunnel *udp;	/* UDP: tunnels of this listener, by client */
	__u64 warned_ns;		/* UDP: last "dropped" warning (one per 10 s) */
	__u64 udp_failed_until_ns;	/* UDP as UDP failed: framed in TCP until then */
	/* TCP pool (agent_pool.c) */
	TAILQ_HEAD(, agent_tunnel) ready;	/* TUN_READY tunnels, oldest first */
	unsigned int nready, nstarting;	/* ready; pooled ones being set up */
	unsigned int fails;		/* pooled set-ups failed since one was used */
	struct agent_rate rate;		/* clients accepted */
	__u32 setup_ms;			/* typical set-up time (EWMA), 0 = none yet */
	__u32 shown[4];			/* ready, starting, target, wanted last logged */
	struct ns_timer pool_t;		/* the next refill */
};

#define AGENT_LIMIT_LOG_S	60	/* a broker's LIMIT refusal of a client: one line this long */
#define AGENT_SESSION_LINGER_S	30	/* a session with no tunnel left is kept this long */
#define AGENT_SESSION_LISTENERS	16	/* listeners one session may hold at once */
#define AGENT_LISTENER_UNUSED_S	60	/* a session's listener unused this long is closed */

/*
 * A session (agent_session.c): what the flows of one negotiated session
 * share. Opened when the session's first tunnel starts forwarding (on the
 * provider always; on the subscriber for a subscription with more ports or
 * reverse ports, or an ALG); every tunnel on it holds a reference; one that
 * has had flows lingers AGENT_SESSION_LINGER_S after the last is gone (a
 * client reconnecting within that reuses it).
 */
struct agent_session {
	struct agent *a;
	struct agent_session *next, *prev;
	__u64 id;				/* the broker's SESSION of its first tunnel */
	__u8 role;				/* ours in it: TUN_ROLE_* */
	const struct agent_pub *pub;		/* P */
	struct agent_listener *lis;		/* S: the subscription's main listener */
	char label[AGENT_NAME_MAX * 2 + 32];
	char alg[AGENT_ALG_MAX + 1];
	struct sockaddr_storage app;		/* our application end: S the client, P the target */
	struct sockaddr_storage local;		/* our address facing it */
	unsigned int refs;			/* tunnels on it */
	unsigned int flows;			/* flows asked for or served */
	struct agent_listener *listeners;	/* its own (reverse ports, ALG aliases) */
	unsigned int nlisteners;
	bool full_logged;			/* the listener limit was logged */
	bool dead;				/* a FLOW failed: new clients negotiate anew */
	struct ns_timer timer;			/* linger, listener expiry */
};

/* A connection to tunnel-listen whose proof has not been matched yet (agent_link.c). */
struct agent_incoming {
	struct agent *a;
	struct agent_incoming *next, *prev;
	struct ns_watch w;
	struct ns_timer timer;
	struct sockaddr_storage from;
	__u8 proof[NS_PROOF_LEN];
	size_t got;
};

enum tun_state {
	TUN_WAIT_INFO,		/* S: CONNECT sent; P: ACCEPT sent; waiting for CONNECT_INFO */
	TUN_DIALING,		/* connecting to PEER_ADDR */
	TUN_WAIT_PEER,		/* DIAL=0: waiting for the peer on tunnel-listen */
	TUN_PROOF,		/* proofs being exchanged */
	TUN_READY,		/* S: pooled, proven, idle until a client takes it */
	TUN_OPEN,		/* P: proven, waiting for the subscriber's OPEN marker */
	TUN_TARGET,		/* P: proof OK, connecting to the target */
	TUN_FWD,		/* forwarding */
};

#define TUN_ROLE_PROVIDER	0
#define TUN_ROLE_SUBSCRIBER	1

/* A user-space byte queue: bytes [off, len) of data are pending. */
struct agent_buf {
	__u8 *data;
	size_t off, len, cap;
};

/* Forwarding state (agent_fwd.c). */
struct agent_fwd {
	bool spliced;			/* TCP without compression: splice(2) */
	bool dgram;			/* UDP as UDP: one datagram each way per datagram */
	bool heard;			/* UDP as UDP: a datagram came from the peer */
	struct ns_pipe pipe[2];	/* spliced: [0] plain -> tunnel, [1] tunnel -> plain */
	/* buffered (compression or UDP): */
	struct agent_buf up;		/* to the tunnel: framed, compressed */
	struct agent_buf zin;		/* from the tunnel, still compressed */
	struct agent_buf down;		/* from the tunnel: plain bytes / frames */
	z_stream def, inf;
	bool zdef, zinf;		/* initialised */
	bool plain_eof, up_shut;	/* plain side said EOF; tunnel shut down for writing */
	bool tun_eof, down_shut;	/* tunnel said EOF; plain side shut down */
	const struct ns_alg_ops *alg_ops;	/* the session's first tunnel: its ALG */
	void *alg;
	struct ns_alg_buf alg_out;	/* what the ALG made of the last input */
	__u64 bytes[2];			/* [0] plain -> tunnel, [1] tunnel -> plain (payload) */
	__u64 last_ns;			/* UDP: last datagram either way */
	/* sealed (encrypted end to end, lib/seal.h) unless the service said encrypt: false */
	bool ktls;			/* by the kernel: the socket reads and writes plaintext */
	bool useal;			/* by us: records (TCP) or sealed datagrams (UDP) */
	struct ns_seal tx, rx;		/* useal */
	struct agent_buf wire;		/* useal, TCP: sealed records towards the tunnel */
	struct agent_buf rin;		/* useal, TCP: records from the tunnel, not yet opened */
	__u64 forged;			/* useal, UDP: datagrams dropped (forged, replayed) */
};

/* One tunnel: one client connection (or UDP client) end to end (agent_tunnel.c). */
struct agent_tunnel {
	struct agent *a;
	struct agent_tunnel *next, *prev;	/* all tunnels */
	struct agent_tunnel *lnext;		/* S, UDP: the listener's list */
	enum tun_state state;
	__u8 role;				/* TUN_ROLE_* */
	__u8 proto;
	__u8 transport;				/* IPPROTO_UDP: datagrams as datagrams */
	__u8 token[NS_TOKEN_BYTES];		/* UDP relay splice */
	bool relay_ok;				/* UDP relay splice: NSOK came */
	bool opened;				/* P, UDP: the subscriber's proof said OPEN */
	struct ns_timer rtx;			/* UDP: resend the token or the proof */
	__u8 path;
	bool compress;
	bool plain;				/* not sealed: the service's encrypt: false */
	bool has_session;
	__u64 session;
	__u32 req_id;				/* S: REQ_ID of the CONNECT */
	bool pooled;				/* S: made by the pool, no client yet */
	__u8 retries;				/* S: relayed set-ups asked again
						 * (agent_tunnel_retry) */
	TAILQ_ENTRY(agent_tunnel) pool_entry;	/* S, TUN_READY: lis->ready */
	__u64 start_ns;				/* S: CONNECT sent */
	const struct agent_pub *pub;		/* P */
	struct agent_listener *lis;		/* S */
	struct agent_session *sess;		/* the session it is a flow of, or opened */
	bool flow;				/* asked with FLOW (S) / a FLOW's far end (P) */
	__u16 flow_port;			/* S, flow: FLOW PORT */
	struct sockaddr_storage target;		/* P: where OPEN connects */
	char alg[AGENT_ALG_MAX + 1];		/* the service's ALG (CONNECT_INFO / publish) */
	char peer_name[AGENT_NAME_MAX + 1];	/* P: the subscriber (OFFER NAME) */
	__u8 key[NS_KEY_LEN];
	struct sockaddr_storage peer;		/* PEER_ADDR */
	__u16 bind_port;
	bool no_punch;				/* S: a punched path failed: asked again without */
	bool punch_started;			/* a punched path: its slots run (agent_link.c) */
	__u16 punch_base[2], punch_k;		/* ... the ports given (ours, the peer's), slot */
	struct ns_timer timer;			/* set-up deadline; UDP idle */
	struct ns_watch tw;			/* the tunnel socket */
	struct ns_watch pw;			/* client (S, TCP) or target (P) socket */
	struct sockaddr_storage client;		/* S: the client's address; P, public: the
						 * public client's (CLIENT_ADDR) */
	bool public;				/* P: for a public port's client: no
						 * proofs, no OPEN, not sealed */
	struct sockaddr_storage client_dst;	/* what the client connected to (S: the
						 * listener; P: PUBLIC_ADDR or OPEN's) */
	bool want_client;			/* S: CONNECT_INFO CLIENT_INFO: open with 'A' */
	__u8 open_rec[NS_OPEN_ADDR_LEN];	/* P: OPEN 'A''s record, being read */
	size_t open_got;			/* ... its bytes so far (0: 'O' or 'A' next) */
	bool open_addr;				/* ... 'A' came */
	/* our proof, then S: OPEN with a client ('O', or 'A' and its record) */
	__u8 proof_out[NS_PROOF_LEN + 1 + NS_OPEN_ADDR_LEN];
	size_t proof_len, proof_sent;
	__u8 proof_in[NS_PROOF_LEN];
	size_t proof_got;
	bool proof_ok;				/* the peer's proof checked */
	bool tw_reg, pw_reg;			/* tw / pw registered with the loop */
	struct agent_buf pending;		/* S, UDP: frames that came before the tunnel */
	struct agent_fwd fwd;
};

#define AGENT_IO_BUF		(AGENT_UDP_MAX + 1)
#define AGENT_MMSG		16	/* datagrams per recvmmsg / sendmmsg */
#define AGENT_SEALED_BUF	(AGENT_IO_BUF + NS_SEAL_DGRAM_OVERHEAD)

/* One recvmmsg batch (agent_udp.c): datagram i is iov[i] with m[i].msg_len
 * bytes, from from[i]. One per agent, valid until the next batch. */
struct agent_dgrams {
	struct mmsghdr m[AGENT_MMSG];
	struct iovec iov[AGENT_MMSG];
	struct sockaddr_storage from[AGENT_MMSG];
	__u8 *buf;				/* AGENT_MMSG slots of AGENT_IO_BUF */
	__u8 *sbuf;				/* AGENT_MMSG + 1 of AGENT_SEALED_BUF: sealed
						 * datagrams queued, and one sent at once */
};

/* Datagrams queued for one sendmmsg on one socket (agent_udp.c). */
struct agent_dgram_out {
	struct mmsghdr m[AGENT_MMSG];
	struct iovec iov[AGENT_MMSG];
	int fd;
	unsigned int n;
};

struct agent {
	struct agent_cfg *cfg;			/* malloc'd; a reload replaces it (agent_reload.c) */
	struct agent_cfg **cfg_retired;		/* earlier ones, while a tunnel or session uses them */
	size_t ncfg_retired;
	const char *config;			/* -f FILE, NULL: none */
	int argc;				/* the command line, read again on reload */
	char **argv;
	struct ns_loop *loop;
	volatile bool stop;
	int exit_code;
	int ready_fd;				/* -d: the waiting command (ns_detach), or -1 */
	struct agent_broker br;
	__u64 limit_log_ns;			/* ERROR LIMIT for a client: logged again from then */
	__u32 limit_quiet;			/* ... refusals not logged since */
	struct agent_listener **lis;		/* cfg->nsub: each subscription's main listener */
	struct agent_listener *lis_retired;	/* closed by a reload, tunnels still on them */
	struct ns_watch tl_w;			/* tunnel-listen, fd -1 without */
	struct ns_watch tlu_w;			/* tunnel-listen's UDP port, fd -1 without */
	struct agent_incoming *incoming;
	unsigned int nincoming;
	struct agent_tunnel *tunnels;
	unsigned int ntunnels;
	struct agent_session *sessions;
	__u32 next_req;
	__u8 *buf;				/* AGENT_IO_BUF bytes of scratch for reads */
	struct agent_dgrams dg;			/* UDP: one batch of datagrams read */
	struct agent_rtt *rtt;			/* round trips to relays (agent_rtt.c) */
	struct agent_disc *disc;		/* NAT discovery (agent_disc.c) */
	struct agent_relay *relay;		/* relay: true (agent_relay.c) */
	struct ns_nat_result nat[2];		/* ... what it found: TCP, UDP */
};


/* agent_rtt.c: round trips to relays (include/ns_proto.h, "Round trips to relays") */
int agent_rtt_init(struct agent *a);
void agent_rtt_free(struct agent *a);
void agent_rtt_on_relays(struct agent *a, const struct ns_msg *m);	/* RELAYS */
void agent_rtt_clear(struct agent *a);	/* the broker is gone */
void agent_rtt_kick(struct agent *a);	/* relay-probe-interval changed */

/* agent_disc.c: NAT behaviour discovery (include/ns_proto.h, lib/natdisc.h) */
int agent_disc_init(struct agent *a);
void agent_disc_free(struct agent *a);
void agent_disc_on_offer(struct agent *a, const struct ns_msg *m);	/* DISCOVERY */

/* agent_relay.c: relaying for others (relay: true) */
int agent_relay_init(struct agent *a);
void agent_relay_free(struct agent *a);
void agent_relay_nat(struct agent *a);	/* discovery has a result */

/* agent_broker.c */
void agent_broker_start(struct agent *a);
/* A reload changed the services: PUBLISH the new and changed ones (pub[i] of
 * the new cfg, changed[i]), UNPUBLISH the names in gone (n of them). */
void agent_broker_republish(struct agent *a, const bool *changed, const char *const *gone,
			    size_t n);
void agent_broker_stop(struct agent *a);
bool agent_broker_up(const struct agent *a);
int agent_broker_send(struct agent *a, struct ns_msg_buf *mb);	/* finishes + frees mb */
__u32 agent_req_id(struct agent *a);

/* agent_sub.c */
int agent_listeners_open(struct agent *a);
struct agent_listener *agent_sub_open(struct agent *a, const struct agent_sub *sub);
void agent_sub_close(struct agent_listener *lis);	/* its sockets and pool timer */
void agent_sub_free(struct agent_listener *lis);	/* closed and freed; safe on NULL */
void agent_listeners_close(struct agent *a);
void agent_listener_unlink(struct agent_tunnel *t);	/* S, UDP */
int agent_listener_open(struct agent *a, struct agent_listener *lis);
void agent_listener_close(struct agent_listener *lis);
const char *agent_listener_name(const struct agent_listener *lis);

/* agent_session.c */
int agent_session_open(struct agent_tunnel *t);	/* t's first tunnel forwards now */
struct agent_session *agent_session_find(struct agent *a, __u64 id);
struct agent_session *agent_session_of_client(struct agent_listener *main,
					      const struct sockaddr_storage *client);
void agent_session_get(struct agent_session *s);
void agent_session_put(struct agent_session *s);
int agent_session_target(struct agent_session *s, __u8 proto, __u16 port,
			 struct sockaddr_storage *out);
int agent_session_listen(struct agent_session *s, __u8 proto, __u16 flow_port, __u16 port,
			 bool once, struct sockaddr_storage *where);
void agent_session_unlisten(struct agent_session *s, const struct sockaddr_storage *where);
void agent_sessions_close_all(struct agent *a);

/* agent_reload.c: SIGHUP */
void agent_reload(struct agent *a);
void agent_reload_free(struct agent *a);	/* at exit: what reloads kept */

/* agent_alg.c */
int agent_alg_open(struct agent_tunnel *t);	/* forwarding starts: its ALG, if any */
void agent_alg_close(struct agent_fwd *f);
/* in (len bytes, or one datagram) through the ALG in dir (NS_ALG_*), eof: the
 * stream ended; out and outlen: what to deliver (in itself without an ALG). */
/* One datagram through the ALG (if any) in dir: true with *p and *len what to
 * deliver, false when it is dropped (the ALG said why, or out of memory). */
bool agent_alg_datagram(struct agent_fwd *f, int dir, const __u8 **p, size_t *len);
int agent_alg_run(struct agent_fwd *f, int dir, const __u8 *in, size_t len, bool eof,
		  const __u8 **out, size_t *outlen);

/* agent_pool.c: ready tunnels per TCP subscription */
void agent_pool_init(struct agent_listener *lis);
void agent_pool_stop(struct agent_listener *lis);
void agent_pool_client(struct agent_listener *lis);	/* a client was accepted */
int agent_pool_take(struct agent_listener *lis, int fd, const struct sockaddr_storage *client);
void agent_pool_setup_done(struct agent_tunnel *t);	/* S: proofs checked */
void agent_pool_ready(struct agent_tunnel *t);		/* S, pooled: proofs checked */
void agent_pool_on_event(struct agent_tunnel *t);	/* S, TUN_READY: the peer */
void agent_pool_expire(struct agent_tunnel *t);		/* S, TUN_READY: pool-idle passed */
void agent_pool_gone(struct agent_tunnel *t);		/* S, pooled: being closed */
void agent_pool_broker_up(struct agent *a);

/* agent_tunnel.c */
struct agent_tunnel *agent_tunnel_subscribe(struct agent_listener *lis, int fd,
					    const struct sockaddr_storage *client);
struct agent_tunnel *agent_tunnel_pooled(struct agent_listener *lis);
int agent_tunnel_watch(struct agent_tunnel *t, struct ns_watch *w, __u32 events);
void agent_tunnel_close(struct agent_tunnel *t, bool rst, const char *why);
void agent_tunnel_resend(struct agent_tunnel *t);	/* S: ask the broker again */
/* S: a relayed TCP tunnel with a client whose set-up failed (why) before the
 * proofs: asked again, a new session on a fresh splice; false: not one to
 * retry (or no retries left), the caller closes it. */
bool agent_tunnel_retry(struct agent_tunnel *t, const char *why);
void agent_tunnel_on_offer(struct agent *a, const struct ns_msg *m);
void agent_tunnel_on_info(struct agent *a, const struct ns_msg *m);
void agent_tunnel_on_error(struct agent *a, const struct ns_msg *m);
void agent_tunnel_broker_down(struct agent *a);
void agent_tunnels_close_all(struct agent *a);
const char *agent_tunnel_label(const struct agent_tunnel *t, char *buf, size_t len);
const char *agent_tunnel_service(const struct agent_tunnel *t);	/* S */

/* agent_link.c: the tunnel's TCP connection, proofs, the target */
void agent_link_dial(struct agent_tunnel *t);
void agent_link_dial_later(struct agent_tunnel *t, __u32 ms);	/* a punched path's DELAY_MS */
void agent_link_expect(struct agent_tunnel *t);
void agent_link_on_event(struct agent_tunnel *t, __u32 events);
void agent_link_on_target(struct agent_tunnel *t);
int agent_link_target(struct agent_tunnel *t);	/* P: OPEN came: connect the target */
int agent_link_open(struct agent_tunnel *t);		/* S: send OPEN on a ready tunnel */
/* The address a client on fd connected to (the listener's, if unknown). */
void agent_sock_local(int fd, const struct agent_listener *lis, struct sockaddr_storage *out);
/* S: OPEN for t's client into buf (NS_OPEN_ADDR_LEN + 1 bytes): its length. */
size_t agent_link_open_marker(const struct agent_tunnel *t, __u8 *buf);
void agent_link_close_incoming(struct agent *a);
int agent_tunnel_listen_open(struct agent *a);
void agent_tunnel_listen_close(struct agent *a);

/* agent_udp.c: UDP as UDP */
void agent_udp_link(struct agent_tunnel *t, bool dial, __u32 delay_ms);	/* CONNECT_INFO, TRANSPORT 17 */
void agent_udp_on_event(struct agent_tunnel *t);	/* the tunnel socket, any state */
/* One application datagram towards the peer, sealed unless the tunnel is
 * plain: queued in o, or sent at once (o NULL). */
void agent_udp_send(struct agent_tunnel *t, const __u8 *data, size_t len,
		    struct agent_dgram_out *o);
int agent_dgrams_open(struct agent *a);
void agent_dgrams_free(struct agent *a);
/* Up to AGENT_MMSG datagrams from fd into a->dg: how many, 0 for none. */
int agent_dgrams_recv(struct agent *a, int fd);
/* Queue len bytes at p for fd (to: its destination, NULL if connected); p
 * must stay as it is until the flush, which a full queue or another fd
 * does first. */
void agent_dgram_queue(struct agent_dgram_out *o, int fd, const void *p, size_t len,
		       const struct sockaddr_storage *to);
void agent_dgram_flush(struct agent_dgram_out *o);
void agent_udp_fallback(struct agent_tunnel *t);	/* S: not up in time: framed in TCP */
int agent_udp_listen_open(struct agent *a);
void agent_udp_listen_close(struct agent *a);
__u8 agent_udp_transport(struct agent_listener *lis);	/* what to ask for */

/* agent_fwd.c */
int agent_fwd_start(struct agent_tunnel *t);
void agent_fwd_free(struct agent *a, struct agent_fwd *f);
/* A client's datagram towards the tunnel; o: queue it there (NULL: send now). */
void agent_fwd_udp_in(struct agent_tunnel *t, const __u8 *data, size_t len,
		      struct agent_dgram_out *o);
/* UDP as UDP: a datagram from the peer to the client or target, queued in o. */
void agent_fwd_dgram_in(struct agent_tunnel *t, const __u8 *data, size_t len,
			struct agent_dgram_out *o);
void agent_fwd_on_event(struct agent_tunnel *t);
void agent_fwd_idle_check(struct agent_tunnel *t);
int agent_buf_put(struct agent_buf *b, const void *p, size_t len);
void agent_buf_free(struct agent_buf *b);
static inline size_t agent_buf_used(const struct agent_buf *b)
{
	return b->len - b->off;
}

/* agent_main.c: socket helpers */
void agent_sock_rst(int fd);		/* SO_LINGER 0: the next close() sends an RST */
void agent_sock_tune(int fd);		/* TCP_NODELAY on a tunnel, client or target socket */
/* Socket buffers of AGENT_UDP_SOCKBUF on a UDP socket: a burst at line rate
 * waits there rather than being dropped while the agent is busy. */
void agent_sock_udp_bufs(int fd);
/* A non-blocking socket of type bound to addr, listening if SOCK_STREAM, with
 * SO_REUSEADDR for TCP (share: SO_REUSEADDR and SO_REUSEPORT, for the UDP
 * sockets sharing tunnel-listen's port): the fd, or -errno. */
int agent_sock_bound(const struct sockaddr_storage *addr, int type, bool share);

#endif
