/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* natsplice-broker: private header. */
#ifndef NS_BROKER_H
#define NS_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <linux/types.h>
#include <sys/socket.h>

#include "natsplice_abi.h"
#include "ns_proto.h"
#include "conn.h"
#include "http.h"
#include "loop.h"
#include "log.h"
#include "disc_conn.h"
#include "natdisc.h"
#include "util.h"

#define BROKER_NAME_MAX		255	/* bytes of an agent, relay or service name (a STR) */
#define BROKER_SERVICES_DEFAULT	256	/* max-services-per-agent */
#define BROKER_TUNNEL_RATE	50	/* tunnel-rate: CONNECTs and FLOWs per second, one agent */
#define BROKER_TUNNEL_BURST	200	/* tunnel-burst */
#define BROKER_AGENT_SESSIONS	256	/* max-sessions-per-agent */
#define BROKER_PAIR_SPLICES	64	/* max-splices-per-pair */
#define BROKER_LIMIT_LOG_S	60	/* a limit hit is logged once per agent and limit this long */
#define BROKER_HANDSHAKE_SLACK_S 2	/* a relay splice counts towards the limits until SPLICE_DONE
					 * or this long after the relay's deadline for its
					 * handshake (negotiate-timeout after SPLICE_REQUEST):
					 * then it holds no relay port any more */
#define BROKER_USE_BUCKETS	1024	/* use counts by agent and by pair (limits) */
#define BROKER_UNAUTH		1024	/* max-unauth */
#define BROKER_UNAUTH_PER_SOURCE 16	/* max-unauth-per-source */
/* The longest body a LOGIN can need: ROLE, NAME (255), VERSION, PROOF,
 * LOCAL_ADDR, LISTEN_PORT, RELAY_ADDR with their headers come to about 370
 * bytes; before login a larger message closes the connection (it would
 * otherwise hold up to NS_PROTO_MAX_BODY of buffer). */
#define BROKER_LOGIN_MAX_BODY	1024
#define BROKER_API_MAX_BODY	1024	/* bytes of an HTTP API request body (POSTs need none) */
#define BROKER_LOGIN_FREE	5	/* login-failures-free */
#define BROKER_LOGIN_BACKOFF_MAX 60	/* login-backoff-max, seconds */
#define BROKER_SOURCE_FREE_FACTOR 4	/* a source's failures (any name) are free up to
					 * this many times login-failures-free */
#define BROKER_LOGIN_FORGET_S	900	/* failures this old are forgotten */
#define BROKER_LOGIN_KNOWN_S	86400	/* a name that logged in from a source this recently
					 * is not held back by that source's failures */
#define BROKER_LOGIN_RECS	65536	/* failure records kept at most */
#define BROKER_MSG_RATE		1000	/* msg-rate: messages per second from one agent */
#define BROKER_MSG_BURST	4000	/* msg-burst */
#define BROKER_DOOR_LOG_BURST	10	/* lines about refused logins and connections... */
#define BROKER_DOOR_LOG_S	60	/* ... per this many seconds (the rest counted) */
#define BROKER_NEGOTIATIONS_MAX	65536	/* sessions being negotiated at once */
#define BROKER_SESSION_FLOWS	4096	/* default session-flows */
#define BROKER_FLOW_KEEP_S	120	/* an established session's record is kept at least
					 * this long after it or its last flow began (the
					 * agents keep theirs 30 s after their last tunnel) */
#define BROKER_SESS_BUCKETS	4096	/* session id hash */
#define BROKER_DRAIN_MS		2000	/* a closed peer gets this long to read our ERROR */
#define BROKER_RELAY_BUSY_MS	250	/* a relay that answered BUSY gets no request this long */
#define BROKER_PUBLIC_TIMEOUT_S	5	/* public-connect-timeout */
#define BROKER_PUBLIC_MAX_CONNS	256	/* public-max-conns */
#define BROKER_EXPOSE_PREFIXES	16	/* EXPOSE PREFIX entries */
#define BROKER_PORT_RANGES	64	/* an agent's expose ACL, a relay's PUBLIC_PORTS */
#define BROKER_RTT_RELAYS	32	/* relays an agent's round trips are kept for */
#define BROKER_RTT_SLACK_MS	2	/* relay-rtt-slack */
#define BROKER_PUNCH_TIMEOUT_S	3	/* punch-timeout */
#define BROKER_RELAY_GRACE_S	10	/* after start: relay-path requests wait for a relay
					 * (relays retry every 5 s +-25 % at most) */

/* ---- settings (config.c); read-only once loaded ---- */

/* An address as the protocol carries it: addr network order, port host order. */
struct ns_ep {
	__u8 family;		/* NS_AF_INET / NS_AF_INET6 */
	__u32 addr[4];		/* IPv4 in addr[0] */
	__u16 port;
};

struct port_range {
	__u16 lo, hi;
};

/* One agent or relay of the config: who may log in. */
struct broker_cred {
	char *name;
	char *secret;
	int line, col;		/* where the entry starts, for errors */
	struct port_range *expose;	/* agents: the public ports it may expose */
	size_t nexpose;
	bool relay;			/* agents: relay: true (also a relay of that name);
					 * relays: made from such an agent's entry */
};

/* An ACL entry: "web" (any provider's web) or "home-nas/web" (one provider's). */
struct broker_acl {
	char *service;
	char **allow;		/* agent names that may subscribe */
	size_t nallow;
	int line, col;
};

struct broker_cfg {
	struct sockaddr_storage listen;
	socklen_t listen_len;
	struct sockaddr_storage http;
	socklen_t http_len;		/* 0: no HTTP API */
	struct ns_http_tokens http_tokens;	/* http-tokens: none = open */
	struct broker_cred *agents;	/* sorted by name */
	size_t nagents;
	struct broker_cred *relays;	/* sorted by name */
	size_t nrelays;
	struct broker_acl *acls;	/* sorted by service */
	size_t nacls;
	__u32 hold_time_s;		/* hold-time */
	__u32 negotiate_timeout_s;	/* negotiate-timeout */
	__u32 probe_timeout_ms;		/* probe-timeout-ms */
	__u32 login_timeout_s;		/* login-timeout */
	__u32 session_history;		/* session-history: finished sessions kept */
	__u32 session_flows;		/* session-flows: flows one session may ask for */
	__u32 max_services;		/* max-services-per-agent (0: no limit) */
	__u32 tunnel_rate, tunnel_burst;	/* tunnel-rate, tunnel-burst (0: no limit) */
	__u32 max_agent_sessions;	/* max-sessions-per-agent (0: no limit) */
	__u32 max_pair_splices;		/* max-splices-per-pair (0: no limit) */
	__u32 max_unauth;		/* max-unauth: connections not logged in (0: no limit) */
	__u32 max_unauth_source;	/* max-unauth-per-source */
	__u32 login_free;		/* login-failures-free (0: no backoff) */
	__u32 login_backoff_max_s;	/* login-backoff-max */
	__u32 msg_rate, msg_burst;	/* msg-rate, msg-burst: one agent's messages */
	__u32 public_timeout_s;		/* public-connect-timeout */
	__u32 public_max_conns;		/* public-max-conns */
	__u32 relay_rtt_slack_ms;	/* relay-rtt-slack: round trips this close are a tie */
	bool has_disc;			/* discovery-address set: NAT discovery on */
	char disc_relay[BROKER_NAME_MAX + 1];	/* discovery-relay: or on, with that relay's
						 * address as the second; "": none */
	struct sockaddr_storage disc;	/* discovery-address (port 0) */
	__u32 disc_port;		/* discovery-port: P, P+1 (and P+2 for connect-backs) */
	bool no_punch;			/* hole-punching: false */
	__u32 punch_timeout_s;		/* punch-timeout */
	char user[64];			/* user: who the broker becomes after binding */
	char tls_cert[256];		/* tls-cert: PEM, made with tls-key if neither exists */
	char tls_key[256];		/* tls-key */
	bool insecure;			/* insecure: plain-text peers accepted too */
	bool print_fingerprint;		/* --fingerprint: print it and exit */
};

void cfg_defaults(struct broker_cfg *c);
/* 0 or -errno with "file:line:col: message" in err. */
#define BROKER_CONFIG_DEFAULT "/etc/natsplice/broker.yaml"
#define BROKER_TLS_CERT_DEFAULT "/var/lib/natsplice/broker.crt"
#define BROKER_TLS_KEY_DEFAULT "/var/lib/natsplice/broker.key"

struct ns_cmdline;
/* Defaults, broker.yaml (-f, or BROKER_CONFIG_DEFAULT), the command line:
 * 0 to run, or 1 with the exit status in *status (--help, -V, -n, or an
 * error already printed). */
int cfg_parse(struct broker_cfg *c, struct ns_cmdline *cl, int argc, char **argv, int *status);
int cfg_load_file(struct broker_cfg *c, const char *path, char *err, size_t errlen);
int cfg_load_string(struct broker_cfg *c, const char *name, const char *text,
		    char *err, size_t errlen);
void cfg_free(struct broker_cfg *c);	/* safe on a zeroed or default cfg */
/* Index into c->agents / c->relays, -1 if unknown. */
int cfg_agent_index(const struct broker_cfg *c, const char *name);
int cfg_relay_index(const struct broker_cfg *c, const char *name);
int cfg_cred_index(const struct broker_cred *v, size_t n, const char *name);
extern const struct ns_settings broker_settings;	/* the table: -f, options, --help */
/* What cannot be safe: 0, or -EINVAL with err (a secret shorter than
 * NS_SECRET_MIN). -n, start and reload refuse such a file. */
int cfg_check(const struct broker_cfg *c, char *err, size_t errlen);
struct ns_warnings;
/* What works but is not safe (weak secrets, no agents, insecure, an open
 * HTTP API off loopback): -n and start print it, a reload logs it. */
void cfg_warn(const struct broker_cfg *c, struct ns_warnings *w);

/* ---- pure decisions (policy.c) ---- */

/* Agent, relay and bare service names: 1..255 bytes, no '/', no space or control. */
bool name_valid(const char *s);
/* May subscriber use provider's service? An entry "provider/service" wins over
 * "service"; without an entry every logged-in agent may. */
/* The entry of exactly this service ("name" or "agent/name"), or NULL. */
const struct broker_acl *acl_find(const struct broker_cfg *c, const char *service);
bool acl_allows(const struct broker_cfg *c, const char *provider, const char *service,
		const char *subscriber);
/* DIRECT if P is reachable, else REVERSE if S is, else RELAY if a relay can
 * be used; 0 when there is no path (no relay). */
int path_choose(bool p_reachable, bool s_reachable, bool relay_available);
/* NS_MODE_PURE when S can keep its source port: S reachable, or S's local port
 * of its broker connection equals the port the broker observed (no NAT, or a
 * port-preserving one); NS_MODE_PASSIVE otherwise or when s_local is unknown. */
int mode_choose(bool s_reachable, const struct ns_ep *s_local, const struct ns_ep *s_observed);

/* What path choice needs to know about one relay. */
struct relay_cand {
	bool online;
	__u8 family;			/* of its public address */
	unsigned int load;		/* active splices: SPLICE_READY - SPLICE_DONE */
	unsigned int pending;		/* SPLICE_REQUESTs not answered yet */
	bool busy;			/* answered BUSY a moment ago */
	__u32 rtt_us;			/* both agents' round trips added up; 0: one of
					 * them has not measured it, NS_RTT_UNREACHABLE:
					 * one of them gets no answer */
};
/* How relay_pick chose. */
enum relay_by {
	RELAY_BY_RTT,		/* the smallest round trip (within the slack, least loaded) */
	RELAY_BY_LOAD,		/* least loaded: no round trips measured */
	RELAY_BY_UNREACHABLE,	/* least loaded: none answers both agents' probes */
	RELAY_BY_MAX
};
/* The online relay of that family that is not busy: among those both
 * agents measured and reach, the least loaded of those whose round trip is
 * within slack_us of the smallest (ties: fewest pending, then the smaller
 * round trip, then the first); if none is measured, the least loaded of
 * those not known to be unreachable; else the least loaded. Its index (and
 * *by); -1 when there is none, -EBUSY when the only ones are busy (worth
 * waiting for). */
int relay_pick(const struct relay_cand *c, size_t n, __u8 family, __u32 slack_us,
	       enum relay_by *by);
const char *relay_by_name(enum relay_by by);	/* the metric's label */

/* One agent's own limits (limits.c counts and logs them). 0 = no limit. */
enum broker_limit {
	LIM_SERVICES,		/* max-services-per-agent */
	LIM_TUNNEL_RATE,	/* tunnel-rate, tunnel-burst */
	LIM_SESSIONS,		/* max-sessions-per-agent */
	LIM_PAIR_SPLICES,	/* max-splices-per-pair */
	/* the doors (doors.c): before and at login, and any agent's message rate */
	LIM_UNAUTH,		/* max-unauth */
	LIM_UNAUTH_SOURCE,	/* max-unauth-per-source */
	LIM_LOGIN_SIZE,		/* a message before login larger than a LOGIN */
	LIM_LOGIN_BACKOFF,	/* login-failures-free, login-backoff-max */
	LIM_MSG_RATE,		/* msg-rate, msg-burst */
	LIM_OUTPUT,		/* NS_CONN_WBUF_MAX queued for a peer that does not read */
	LIM_MAX
};
const char *limit_name(enum broker_limit l);	/* the metric's label */
static inline bool limit_reached(__u64 used, __u32 max)
{
	return max && used >= max;
}
/* How long a key (a name from a source, or a source) with fails
 * consecutive failed logins must wait before its next attempt: 0 while
 * fails <= free, then 1 s, doubling with each further failure, at most
 * max_s. free 0: never. */
__u64 login_backoff_ns(__u32 fails, __u32 free, __u32 max_s);
/* The key of an unordered pair of agents: "a/b" with a <= b (names have no
 * '/', so it is never an agent's name). -ENAMETOOLONG if len is too small. */
int pair_key(const char *a, const char *b, char *out, size_t len);

/* ---- runtime ---- */

struct broker;
struct session;

enum peer_state {
	PEER_LOGIN,		/* CHALLENGE sent, waiting for LOGIN */
	PEER_AGENT,		/* logged in as an agent */
	PEER_RELAY,		/* logged in as a relay */
	PEER_DRAIN,		/* closed: flushing our last ERROR, then freed */
};

/* A published service (one agent's list). */
/* A service's public port (public.c): where it is open, or why not. */
struct exposure {
	bool on;			/* PUBLISH had EXPOSE */
	__u16 port;
	__u32 max_conns;
	unsigned int nprefix;
	char prefix[BROKER_EXPOSE_PREFIXES][NS_ADDRSTRLEN + 5];	/* "addr/len" */
	__u32 id;			/* PUBLIC_ID, unique in this broker */
	struct peer *relay;		/* where it is open or being opened, or NULL */
	__u32 req;			/* PUBLIC_OPEN's REQ_ID while unanswered */
	bool open;			/* the relay said OK */
	unsigned int live;		/* public sessions established, not done */
	char why[160];			/* why it is not open */
};

struct service {
	struct service *next;
	char name[BROKER_NAME_MAX + 1];	/* bare name */
	__u8 proto;			/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 compress;			/* NS_A_COMPRESS as published, 0 if absent */
	__u8 plain;			/* NS_A_PLAIN as published: tunnels not sealed */
	struct exposure ex;
};

/* The reachability probe of an agent's LISTEN_PORT (probe.c). */
struct probe {
	struct ns_watch w;
	struct ns_timer timer;
	struct peer *p;
	__u64 start_ns;
};

/* One agent's round trip to one relay (rtt.c). */
struct peer_rtt {
	const char *relay;		/* the config's name */
	__u32 us;			/* NS_RTT_UNREACHABLE: no answer */
};

/* A PEER_LOGIN connection's transport, before CHALLENGE (conn.c). */
enum peer_transport {
	PT_SNIFF,		/* waiting for the first byte: 0x16 = TLS, else plain */
	PT_HANDSHAKE,		/* TLS handshake in progress */
	PT_READY,		/* TLS established, or plain text (insecure) */
};

/* One control connection: an agent or a relay, or not logged in yet. */
struct peer {
	struct ns_watch w;
	struct ns_conn conn;
	struct broker *b;
	struct peer *prev, *next;	/* b->peers */
	enum peer_state state;
	enum peer_transport transport;
	bool has_ekm;			/* TLS: ekm is the login binding */
	__u8 ekm[NS_TLS_EXPORTER_LEN];
	__u32 events;			/* what w is registered for */
	bool doomed;			/* a send failed: closed at the next reap */
	struct peer *reap_next;		/* b->reap while doomed */
	int idx;			/* cfg->agents[] / cfg->relays[] once logged in, else -1 */
	const char *name;		/* the config's name once logged in */
	struct ns_ep observed;		/* getpeername() */
	struct ns_ep local;		/* LOGIN LOCAL_ADDR */
	bool has_local;
	__u16 listen_port;		/* LOGIN LISTEN_PORT, 0 if none */
	bool reachable;			/* the probe of observed IP : listen_port succeeded */
	struct probe *probe;		/* while probing */
	struct ns_ep relay_addr;	/* relays: LOGIN RELAY_ADDR (or observed) */
	unsigned int load;		/* relays: SPLICE_READY - SPLICE_DONE on this connection */
	unsigned int pending;		/* relays: SPLICE_REQUESTs not answered yet */
	__u64 busy_until_ns;		/* relays: answered BUSY; skipped until then */
	struct port_range pub_ports[BROKER_PORT_RANGES];	/* relays: LOGIN PUBLIC_PORTS */
	unsigned int npub_ports;
	__u16 echo_port;		/* relays: LOGIN ECHO_PORT, 0: answers no probes */
	__u16 disc_port;		/* relays: LOGIN DISC_PORT, 0: no discovery ports */
	bool passive_only;		/* relays: LOGIN PASSIVE_ONLY (userspace mode) */
	struct peer_rtt rtt[BROKER_RTT_RELAYS];	/* agents: RTT reports */
	__u64 relays_sent;		/* agents: the hash of the last RELAYS (rtt.c), 0: none */
	struct ns_nat_result nat[2];	/* agents: NAT_INFO for TCP [0] and UDP [1] */
	__u8 nat_known;			/* bit 0: nat[0] reported, bit 1: nat[1] */
	time_t nat_since;		/* agents: when the last NAT_INFO came, 0: none */
	__u64 disc_asked_ns;		/* agents: the last DISCOVERY sent, 0: none */
	__u64 punch_fail_until_ns;	/* agents: a punched path failed: none until then */
	unsigned int nrtt;
	__u8 nonce[NS_NONCE_LEN];
	struct ns_timer timer;		/* login deadline, then heartbeat and hold */
	__u64 last_rx_ns, next_hb_ns;
	__u32 hold_s;			/* hold-time as LOGIN_OK told it (a reload keeps it) */
	time_t since;			/* wall clock: accepted, then logged in */
	struct service *services;
	unsigned int nservices;
	struct ns_gcra tunnel_rate;	/* agents: tunnel-rate */
	struct ns_ratelog lim_log[LIM_MAX];	/* agents: one line per limit a while */
	bool unauth;			/* counted in max-unauth(-per-source) (doors.c) */
	struct ns_gcra msg_rate;	/* agents: msg-rate */
};

/* What a session counts towards (session.held; limits.c). */
#define HELD_SESSION	0x1	/* its subscriber's max-sessions-per-agent */
#define HELD_SPLICE	0x2	/* its agents' max-splices-per-pair */
/* An established relay session keeps what it holds until SPLICE_DONE or the
 * end of its handshake window (limit_hold_window), whichever comes first. */
void limit_hold_window(struct session *s);

enum sess_state {
	SESS_OFFERED,		/* OFFER sent to P */
	SESS_RELAY_WAIT,	/* just started: waiting for a relay to log in */
	SESS_SPLICE_WAIT,	/* SPLICE_REQUEST sent to the relay */
	SESS_PEER_WAIT,		/* pure splice: P has CONNECT_INFO, waiting for SPLICE_PEER */
	SESS_ESTABLISHED,	/* both have CONNECT_INFO */
	SESS_FAILED,
	SESS_CLOSED,		/* the relay reported SPLICE_DONE */
	SESS_RETRIED,		/* replaced by a passive retry: not a failure */
};

/* Why sessions failed (natsplice_sessions_failed_total{reason}). */
enum fail_reason {
	FAIL_DENIED, FAIL_NOT_FOUND, FAIL_REJECTED, FAIL_TIMEOUT, FAIL_NO_RELAY,
	FAIL_RELAY_ERROR, FAIL_PEER_GONE, FAIL_MALFORMED, FAIL_INTERNAL, FAIL_LIMIT, FAIL_MAX
};

/* A tunnel negotiation and then its record (session.c). */
struct session {
	__u64 id;
	struct session *hnext;			/* b->sess_hash chain */
	struct session *prev, *next;		/* b->sess_head: all, oldest first */
	struct session *aprev, *anext;		/* b->active: being negotiated */
	enum sess_state state;
	struct broker *b;
	struct peer *sub, *prov, *relay;	/* while negotiating */
	const char *sub_name, *prov_name, *relay_name;	/* the config's names */
	char service[BROKER_NAME_MAX + 1];	/* bare */
	__u32 req_id;				/* S's CONNECT */
	__u8 proto, compress, path, mode;
	__u8 plain;				/* tunnels not sealed (NS_A_PLAIN) */
	__u8 transport;				/* IPPROTO_UDP: datagrams as datagrams */
	__u8 token[NS_TOKEN_BYTES];		/* UDP relay splice: SPLICE_READY TOKEN */
	__u64 parent;				/* a flow: its session, 0 = none */
	__u16 port;				/* a flow: FLOW PORT */
	__u32 flows;				/* flows asked for on this session */
	__u64 keep_until_ns;			/* a session that may get flows: not trimmed */
	char alg[BROKER_NAME_MAX + 1];		/* from ACCEPT, "" = none */
	__u8 client_info;			/* ACCEPT's CLIENT_INFO: S sends the client's address */
	bool passive_only;			/* a retry after a refused pure splice */
	bool relays_busy;			/* SESS_RELAY_WAIT: every relay was busy */
	__u8 key[NS_KEY_LEN];			/* cleared once delivered */
	struct ns_ep relay_ep;			/* SPLICE_READY RELAY_ADDR */
	__u32 splice_id;
	__u16 port_a, port_b;
	__u16 punch_port[2];			/* a punched path: P's and S's port */
	__u32 punch_delay_ms[2];		/* ... and how long each waits (DELAY_MS) */
	__u64 bytes_ab, bytes_ba, packets;
	time_t started;				/* wall clock */
	__u64 start_ns;
	__u32 setup_ms;				/* CONNECT to the last CONNECT_INFO */
	struct ns_timer timer;			/* negotiation deadline */
	__u8 held;				/* HELD_*: counted by limits.c */
	__u64 splice_req_ns;			/* SPLICE_REQUEST sent (the handshake window) */
	char why[160];				/* failure, or the relay's close reason */
	enum relay_by relay_by;			/* how the relay was chosen */
	char relay_why[160];			/* ... in words (round trips, load) */
	char prov_nat[64], sub_nat[64];		/* their NATs as discovery found (TCP) */
	/* a public port's client (public.c): no subscriber agent */
	bool public;
	struct ns_ep client;			/* PUBLIC_CLIENT PEER_ADDR */
	__u16 public_port;
	__u32 public_id;
};

struct broker_stats {
	__u64 logins, login_failures;
	__u64 sessions[5];		/* established, by enum ns_path */
	__u64 failed[FAIL_MAX];
	__u64 relay_bytes, relay_packets, splices_done;
	__u64 malformed;		/* peers closed for a malformed message */
	__u64 probes_ok, probes_failed;
	__u64 setup_ms_sum, setup_count;
	__u64 accepted;
	__u64 retried;			/* pure splices retried in passive mode */
	__u64 logins_insecure;		/* logins over plain text (insecure: true) */
	__u64 plain_refused;		/* plain-text connections refused (no insecure) */
	__u64 tls_failed;		/* TLS handshakes failed or stalled */
	__u64 limit_hits[LIM_MAX];	/* requests refused by an agent's limit */
	__u64 public_sessions;		/* public clients given to their provider */
	__u64 public_refused[2];	/* ... refused: provider gone, max-conns */
	__u64 relay_by[RELAY_BY_MAX];	/* relay sessions, by how their relay was chosen */
	__u64 disc_answered, disc_ignored, disc_limited, disc_connect_backs;	/* discovery.c */
	__u64 punch_failed;		/* punched paths the subscriber gave up on */
};


/* Everything the daemon owns; passed around, never global. */
struct ssl_ctx_st;

struct broker {
	struct broker_cfg *cfg;		/* replaced whole by a reload (reload.c) */
	const char *config;		/* the file: -f, or BROKER_CONFIG_DEFAULT */
	const char *config_name;	/* its base name, for the log */
	int argc;			/* the command line, read again on reload */
	char **argv;
	char **retired;			/* names a reload removed: records still show them */
	size_t nretired;
	struct ns_loop *loop;
	struct ssl_ctx_st *tls;		/* the server context (tls-cert, tls-key) */
	volatile bool stop;
	int lfd;
	struct ns_watch listen_w;
	struct ns_timer accept_t;	/* accept paused after EMFILE */
	struct ns_ep listen_ep;		/* the bound address */
	struct ns_ep disc_ep;		/* discovery-address (discovery.c) */
	struct ns_watch disc_udp[2][2], disc_tcp[2][2];	/* [L, D][P, P+1] */
	struct ns_gcra disc_rate;	/* answers */
	struct ns_disc_conns disc_conns;	/* TCP discovery connections */
	struct peer *peers;		/* every connection */
	unsigned int npeers;
	struct peer **agents;		/* cfg->nagents: the logged-in connection or NULL */
	struct peer **relays;		/* cfg->nrelays */
	unsigned int agents_online, relays_online, nservices;
	struct peer *reap;		/* doomed peers */
	struct ns_timer reap_t;
	struct session **sess_hash;	/* BROKER_SESS_BUCKETS chains */
	struct session *sess_head, *sess_tail;
	struct session *active;		/* being negotiated */
	struct ns_timer relay_retry_t;	/* sessions wait for a busy relay: try again */
	struct broker_use **use;	/* BROKER_USE_BUCKETS chains (limits.c) */
	struct login_rec **login_recs;	/* BROKER_USE_BUCKETS chains (doors.c) */
	unsigned int nlogin_recs, nunauth;
	__u64 login_sweep_ns;		/* the full login_recs are swept again from then */
	struct ns_ratelog door_log[LIM_MAX];	/* lines about the doors' refusals */
	struct ns_ratelog login_log;		/* lines about failed logins */
	unsigned int nactive, ndone;
	__u32 next_public_id, next_public_req;	/* public.c */
	struct ns_http *http;
	struct broker_stats st;
	time_t started;
	__u64 start_ns;
};

/* conn.c: sockets, peers, heartbeats */
int broker_listen(struct broker *b);
void broker_unlisten(struct broker *b);
int peer_send(struct peer *p, struct ns_msg_buf *mb);	/* finishes and frees mb */
void peer_kill(struct peer *p, const char *why);
void peer_start_heartbeat(struct peer *p);	/* after LOGIN_OK */
/* Send ERROR {CODE, TEXT} and close (the peer gets a moment to read it). */
void peer_close_error(struct peer *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void peers_close_all(struct broker *b);
const char *ep_str(const struct ns_ep *ep, char *buf, size_t len);	/* "ip:port" */
#define EP_STRLEN (NS_ADDRSTRLEN + 8)

/* main.c: tls-cert and tls-key there (made if neither exists), their
 * fingerprint "sha256:..." in fp: 0 or -errno, logged. */
int broker_tls_cert(const struct broker_cfg *c, char *fp, size_t fplen);

/* proto.c: login, directory, dispatch */
int proto_challenge(struct peer *p);
void proto_message(struct peer *p, const struct ns_msg *m);
/* ERROR {[REQ_ID], [SESSION], CODE, TEXT}; req NULL and session 0 for none. */
void proto_error(struct peer *p, const __u32 *req, __u64 session, int code,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void proto_ok(struct peer *p, __u32 req);
/* A request lacking what it needs: ERROR MALFORMED with its REQ_ID (the peer
 * stays), or, without a REQ_ID to answer to, the peer is closed. */
void proto_bad_request(struct peer *p, const struct ns_msg *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct service *service_find(const struct peer *p, const char *name);
void services_drop(struct peer *p);

/* probe.c */
void probe_start(struct peer *p);
void probe_cancel(struct peer *p);

/* session.c */
int sessions_init(struct broker *b);
void sessions_free(struct broker *b);
void sess_connect(struct peer *s, const struct ns_msg *m);
void sess_accept(struct peer *p, const struct ns_msg *m);
void sess_flow(struct peer *p, const struct ns_msg *m);
void sess_reject(struct peer *p, const struct ns_msg *m);
void sess_splice_ready(struct peer *r, const struct ns_msg *m);
void sess_splice_peer(struct peer *r, const struct ns_msg *m);
void sess_splice_done(struct peer *r, const struct ns_msg *m);
void sess_peer_error(struct peer *p, const struct ns_msg *m);	/* ERROR {SESSION} */
void sess_peer_gone(struct peer *p);
void sess_relay_online(struct broker *b);	/* a relay logged in */
/* Count a CONNECT that failed before it became a session. */
void sess_count_failure(struct broker *b, enum fail_reason r);
const char *sess_state_name(enum sess_state s);
const char *fail_reason_name(enum fail_reason r);
const char *mode_name(int mode);
/* Relay ports held by relay's live splices (the records of sessions whose
 * splice is set up and not reported done). */
unsigned int sess_relay_ports(const struct broker *b, const char *relay);

/* A public port's client at relay R: a session of its own (no subscriber),
 * PUBLIC_ACCEPT to R and CONNECT_INFO to P; NULL when out of memory. */
struct session *sess_public(struct peer *R, struct peer *P, const struct service *svc,
			    __u32 splice_id, __u16 port_a, const struct ns_ep *client);

/* public.c: public ports (include/ns_proto.h, "Public ports") */
/* PUBLISH's EXPOSE (or none) for s of P: 0, or -errno with *code and text
 * for the ERROR. The port opens afterwards (public_place). */
int public_publish(struct peer *P, struct service *s, const struct ns_msg *m, __u32 *code,
		   char *text, size_t len);
void public_place(struct peer *P, struct service *s);
/* s is withdrawn (UNPUBLISH, P gone): its port closes. */
void public_withdraw(struct peer *P, struct service *s);
void public_relay_reply(struct peer *R, const struct ns_msg *m, bool ok);
void public_client(struct peer *R, const struct ns_msg *m);
/* A relay logged in (its PUBLIC_PORTS read) or is gone. */
void public_relay_online(struct broker *b);
void public_relay_gone(struct peer *R);
void public_session_done(struct session *s);
/* LOGIN's PUBLIC_PORTS of a relay: 0, or -EINVAL (a bad range). */
int public_relay_ports(struct peer *R, const struct ns_msg *m);
struct public_counts {
	unsigned int live;	/* public sessions established, not done */
	unsigned int open;	/* exposures open on a relay */
	unsigned int on_relay;	/* exposures placed on the relay asked about */
};
void public_counts(const struct broker *b, const struct peer *R, struct public_counts *c);
struct ns_out;
void public_api(struct broker *b, struct ns_out *o);	/* GET /api/v1/public */

/* rtt.c: round trips to relays (include/ns_proto.h, "Round trips to relays") */
void rtt_relays_send(struct peer *agent);	/* RELAYS to one agent */
void rtt_relays_changed(struct broker *b);	/* ... to every agent */
void rtt_on_report(struct peer *agent, const struct ns_msg *m);	/* RTT */
/* What agent measured to relay (a config name): µs, 0 if not measured,
 * NS_RTT_UNREACHABLE if it gets no answer. NULL agent: 0. */
__u32 rtt_get(const struct peer *agent, const char *relay);
const char *rtt_str(__u32 us, char *buf, size_t len);	/* "3.1 ms", "no answer" */

/* discovery.c: NAT behaviour discovery (include/ns_proto.h, lib/natdisc.h) */
int discovery_start(struct broker *b);
void discovery_stop(struct broker *b);
void discovery_offer(struct peer *agent);	/* DISCOVERY after its LOGIN_OK */
/* Test an agent again (the API's POST .../discover): 0, -ENOTSUP (no
 * discovery-address), -EBUSY (its tests are running). */
int discovery_again(struct peer *agent);
bool discovery_running(const struct peer *agent);
void discovery_relay_online(struct peer *relay);	/* tests the agents not tested yet */
void discovery_on_fwd(struct peer *relay, const struct ns_msg *m);	/* DISC_FWD */
void discovery_on_report(struct peer *agent, const struct ns_msg *m);	/* NAT_INFO */
const char *discovery_short(const struct peer *agent, char *buf, size_t len);
int discovery_mode(const struct peer *subscriber);	/* NS_MODE_PURE or _PASSIVE */
/* May s be punched (TCP simultaneous open; include/ns_proto.h)? */
bool discovery_punchable(const struct session *s);
/* A UDP punch: may this side wait for the other's first datagram? */
bool discovery_punch_waits(const struct peer *p);
/* A CONNECT or FLOW with NO_PUNCH: neither agent punches for a while. */
void discovery_punch_failed(struct peer *S, struct peer *P);

/* limits.c: what one agent may take */
int limits_init(struct broker *b);
void limits_free(struct broker *b);
/* May p publish one more service? 0, or -EDQUOT with ERROR LIMIT sent. */
int limit_publish(struct peer *p, __u32 req);
/* A CONNECT or FLOW of p: tunnel-rate and max-sessions-per-agent. 0, or
 * -EDQUOT with ERROR LIMIT sent to req and the failure counted. */
int limit_tunnel(struct peer *p, __u32 req);
/* s counts towards its subscriber's sessions from now on. */
void limit_hold_session(struct session *s);
/* s is about to ask a relay for a splice: 0 (counted for its pair), or
 * -EDQUOT with the hit counted and logged, and why written. */
int limit_hold_splice(struct session *s, char *why, size_t len);
/* s no longer counts towards what (HELD_*). */
void limit_release(struct session *s, __u8 what);
/* Use counts by key (an agent's name, a pair, "u/" + a source address). */
unsigned int use_get(const struct broker *b, const char *key);
int use_add(struct broker *b, const char *key, int delta);	/* +1/-1: 0 or -ENOMEM */
/* Current use: of an agent's sessions, of a pair's splices in handshake. */
unsigned int limit_agent_sessions(const struct broker *b, const char *agent);
unsigned int limit_pair_splices(const struct broker *b, const char *a, const char *c);

/* doors.c: before and at login */
int doors_init(struct broker *b);
void doors_free(struct broker *b);
/* A new connection from ep: 0 (counted as not logged in: doors_authed or
 * the peer's end releases it), or -EBUSY (max-unauth or
 * max-unauth-per-source reached: counted, logged at most now and then). */
int doors_admit(struct broker *b, const struct ns_ep *ep);
void doors_admitted(struct peer *p);	/* p holds what doors_admit counted */
void doors_authed(struct peer *p);	/* logged in, or gone: releases it */
/* May name try to log in from p's address now? 0, or -EAGAIN with the
 * seconds to wait in *wait_s (counted as LIM_LOGIN_BACKOFF). */
int doors_login_check(struct peer *p, const char *name, __u32 *wait_s);
void doors_login_failed(struct peer *p, const char *name);
void doors_login_ok(struct peer *p, const char *name);
/* One more message from a logged-in agent: 0, or -EDQUOT (msg-rate). */
int doors_message(struct peer *p);
/* Count a refusal at a door and log it (at most BROKER_DOOR_LOG_BURST lines
 * every BROKER_DOOR_LOG_S seconds per kind). */
void door_refused(struct broker *b, enum broker_limit l, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* reload.c: SIGHUP */
void broker_reload(struct broker *b);
void broker_reload_free(struct broker *b);	/* at exit: the retired names */

/* control.c: the HTTP API */
int http_start(struct broker *b);
void http_stop(struct broker *b);

/* dashboard.c: the page's files, compiled in */
struct dashboard_file {
	const char *type;	/* Content-Type */
	const void *data;	/* static */
	size_t len;
};
/* The file served at url (exact path, no query): 0, or -ENOENT. */
int dashboard_file(const char *url, struct dashboard_file *f);
/* The Content-Security-Policy of the dashboard's files: its own files only. */
#define DASHBOARD_CSP "default-src 'self'; style-src 'self' 'unsafe-inline'; " \
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

#endif
