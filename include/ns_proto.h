/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The natsplice control protocol, spoken between agents and the broker and
 * between relays and the broker over one persistent TCP connection each.
 *
 * Framing (all integers in network byte order):
 *   header  { u8 version; u8 type; u16 flags; u32 length; }   8 bytes
 *   body    length bytes of attributes, length <= NS_PROTO_MAX_BODY
 *   attr    { u16 type; u16 length; u8 value[length]; }       no padding
 * The top bit of an attribute type (NS_ATTR_MUST) says "must understand":
 * an unknown attribute with it set makes the receiver reject the message
 * (ERROR NS_ERR_UNSUPPORTED); unknown attributes without it are skipped.
 * An attribute may repeat only where this file says so (SERVICE_INFO).
 * A malformed message closes that one peer, never the process.
 *
 * Values: U8/U16/U32/U64 are big-endian integers of that size; STR is UTF-8
 * without a terminating NUL (1..255 bytes unless noted); BIN is raw bytes of
 * the length given; ADDR is { u8 family (2 = IPv4, 10 = IPv6); u8 pad;
 * be16 port; u8 addr[16] (IPv4 in the first 4 bytes) } = 20 bytes.
 *
 * ## Transport: TLS 1.3
 *  The control connection is TLS 1.3 (nothing older) from its first byte:
 *  the client sends its ClientHello, the broker presents its certificate and
 *  asks for none. The client authenticates the broker by a pin (SHA-256 of
 *  the DER certificate, "sha256:<64 hex>", `natsplice-broker --fingerprint`)
 *  or a CA (and optionally the name or IP in the certificate). No session
 *  tickets; more than NS_TLS_KEY_UPDATES_MAX KeyUpdates on one connection
 *  close it. A record that fails authentication closes that connection.
 *  Plain text only where both sides say `insecure: true`: the plain client
 *  speaks first, a HEARTBEAT (its first byte, the version 1, tells it from
 *  a ClientHello's 0x16); a broker without insecure answers it with ERROR
 *  { CODE = UNSUPPORTED } and closes. Everything below runs over either.
 *
 * ## Login (both roles)
 *  1. On connect (after the TLS handshake) the broker sends CHALLENGE
 *     { NONCE, VERSION_MIN, VERSION_MAX }.
 *  2. The peer answers LOGIN { ROLE, NAME, VERSION, PROOF, LOCAL_ADDR,
 *     [LISTEN_PORT] (agents that accept direct tunnels), [RELAY_ADDR] (relays) }
 *     with PROOF = HMAC-SHA256(secret, "natsplice-login" | NONCE | NAME |
 *     EXPORTER), EXPORTER = the TLS exporter (RFC 8446 7.5) of this
 *     connection, label NS_TLS_EXPORTER_LABEL, empty context,
 *     NS_TLS_EXPORTER_LEN bytes; empty on a plain-text connection. So a
 *     LOGIN relayed by a man in the middle onto another TLS connection
 *     fails. Secrets never cross the wire.
 *  3. The broker replies LOGIN_OK { VERSION, OBSERVED_ADDR (the peer's address
 *     and port as the broker sees them), HOLD_TIME } or ERROR { CODE = AUTH,
 *     TEXT } and closes. Anything before LOGIN_OK other than LOGIN closes.
 *  4. HEARTBEAT both ways every HOLD_TIME/3 seconds; a peer silent for
 *     HOLD_TIME is gone. Agents reconnect with jittered exponential backoff
 *     (0.5 s doubling to 5 s, +-25 %) and publish again.
 *  Requests carry REQ_ID (chosen by the requester); the answer (OK, ERROR or
 *  the specific reply) carries the same REQ_ID.
 *
 * ## Directory
 *  PUBLISH { REQ_ID, SERVICE (bare name), PROTO, [COMPRESS], [PLAIN] } -> OK | ERROR
 *  UNPUBLISH { REQ_ID, SERVICE } -> OK | ERROR
 *  LIST { REQ_ID } -> LIST_REPLY { REQ_ID, SERVICE_INFO... } where each
 *     SERVICE_INFO is a nested attribute list { SERVICE ("agent/name"), PROTO }.
 *
 * ## A tunnel (one per client connection; a subscriber may make a few ahead)
 *  1. Subscriber S -> broker: CONNECT { REQ_ID, SERVICE ("agent/name"), PROTO }.
 *  2. Broker: ACL check (ERROR DENIED), provider P online and publishing it
 *     (ERROR NOT_FOUND), then OFFER { SESSION, SERVICE (bare), PROTO, NAME (S) } to P.
 *  3. P -> broker: ACCEPT { SESSION } or REJECT { SESSION, CODE, TEXT }.
 *  4. Broker picks the path:
 *     - DIRECT  when P is reachable (the broker's probe of P's OBSERVED address
 *       and LISTEN_PORT succeeded at login): S connects to P;
 *     - REVERSE when only S is reachable: P connects to S;
 *     - RELAY   otherwise: SPLICE_REQUEST { SESSION, PROTO, SPLICE_MODE,
 *       FROM_A (P's observed address), FROM_B (S's), TIMEOUT } to the relay with
 *       the fewest active splices; the relay answers SPLICE_READY { SESSION,
 *       SPLICE_ID, RELAY_ADDR, PORT_A, PORT_B } (or ERROR with the same SESSION).
 *       Side A is always P, side B always S. PURE mode when S can keep its
 *       source port (S public, or LOCAL_ADDR port == OBSERVED port): then
 *       PORT_B is 0 in SPLICE_READY and the relay sends SPLICE_PEER { SESSION,
 *       PORT_B } once P's SYN arrived (PORT_B = P's public source port); S
 *       must bind its source port to PORT_A and connect to RELAY_ADDR:PORT_B.
 *  5. Broker -> both agents: CONNECT_INFO { SESSION, [REQ_ID] (to S only),
 *     PATH, DIAL (1: this agent connects, 0: it accepts on its LISTEN_PORT),
 *     PEER_ADDR (where to connect; for the accepting side: the address the
 *     other side will come from, port 0), [BIND_PORT] (pure splice: source port
 *     to bind), [SPLICE_MODE], KEY (the 32-byte session key, wrapped for this
 *     agent: key XOR HMAC-SHA256(agent secret, "natsplice-wrap" | SESSION as
 *     u64) ) }. For a pure splice the broker sends S's CONNECT_INFO after
 *     SPLICE_PEER.
 *  6. Over the new TCP connection, before any application byte, each agent
 *     sends its proof (both send at once, then read the other's):
 *       "NSP1" | u64 SESSION | u8 role (0 provider, 1 subscriber) | 16-byte nonce |
 *       HMAC-SHA256(key, "natsplice-proof" | SESSION | role | nonce)   = 61 bytes
 *     and checks the peer's: same SESSION, the other role, valid HMAC. A
 *     connection failing the check is closed at once: a stranger gets nothing.
 *     Then S sends one byte, NS_TUNNEL_OPEN, when a client uses the tunnel:
 *     at once (in the same write as its proof) for a tunnel made for a
 *     client, later or never for a pooled tunnel made ahead of clients. P
 *     reads it before anything else, connects to its target only then, and
 *     both forward; a tunnel S closes before OPEN was never used. Any other
 *     first byte closes the tunnel. P sends nothing before its target answered.
 *     A provider whose service sends its server the PROXY protocol header
 *     says CLIENT_INFO 1 in its ACCEPT; the broker passes it in S's
 *     CONNECT_INFO, and S then opens with NS_TUNNEL_OPEN_ADDR ('A') and a
 *     56-byte record instead of 'O': { u8 family (2 or 10); u8 0; be16 the
 *     client's port; be16 the port it connected to; u16 0; u8 client
 *     address[16]; u8 the address it connected to[16]; tag[16] } (IPv4 in
 *     the first 4 bytes), tag = the first 16 bytes of HMAC-SHA256(key,
 *     "natsplice-open" | SESSION | the 40 bytes before it): only S can name
 *     the client, a relay on the path cannot change it (a bad tag closes the
 *     tunnel). A provider takes 'O' too (an older S): then its header says
 *     UNKNOWN. The record is not sealed (it precedes the sealed stream): a
 *     relay can read it.
 *  7. Failures: any party gone or silent for NS_NEGOTIATE_TIMEOUT_S fails the
 *     session: ERROR { REQ_ID, CODE, TEXT } to S (S closes its client at once).
 *  8. The relay reports SPLICE_DONE { SESSION, SPLICE_ID, BYTES_AB, BYTES_BA,
 *     PACKETS, TEXT (why) } when the splice is deleted.
 *
 * ## Public ports (clients with no agent)
 *  A provider exposes a TCP service on a port of a relay's public address,
 *  for any client (curl, ssh, a browser) to connect to:
 *  1. P -> broker: PUBLISH { ..., EXPOSE } where EXPOSE is a nested list
 *     { PORT (U16; 0: the broker picks one of the agent's allowed ports),
 *     [PREFIX...] (STR "addr/len", may repeat: the client sources allowed;
 *     none: any), [MAX_CONNS] (U32: live public connections; 0 or absent:
 *     the broker's default) }. The broker checks the agent's `expose` ACL
 *     (ERROR DENIED) and answers OK; the port opens asynchronously.
 *  2. Broker -> a relay (the least loaded that logged in with PUBLIC_PORTS
 *     covering the port): PUBLIC_OPEN { REQ_ID, PUBLIC_ID (U32, the broker's
 *     name for this exposure), PORT, PROTO (6), FROM_A (P's observed
 *     address: where provider connections may come from), TIMEOUT (seconds
 *     a client's SYN is held for its provider), [PREFIX...] } -> OK | ERROR.
 *     The same PUBLIC_ID again replaces the exposure's parameters (P came
 *     back from another address). PUBLIC_CLOSE { PUBLIC_ID } closes it
 *     (no answer); a relay that logs in again has none open. A relay says
 *     which ports it may open in its LOGIN: PUBLIC_PORTS (STR "lo-hi", may
 *     repeat; none: it opens none).
 *  3. Broker -> P: PUBLIC_INFO { SERVICE (bare), [PEER_ADDR] (the relay's
 *     address and the port: open), [TEXT] (why not, or no longer) } whenever
 *     that changes.
 *  4. A client's SYN to the port from an allowed source: the relay holds it
 *     (no answer yet) in a splice of its own whose side B is the client
 *     (PORT_B = the public port) and side A the provider (PORT_A: a relay
 *     port of the range, at random, accepting SYNs from FROM_A only), and
 *     sends PUBLIC_CLIENT { PUBLIC_ID, SPLICE_ID, PORT_A, PEER_ADDR (the
 *     client's address and port) } to the broker. Retransmitted SYNs of
 *     that client go to the same splice.
 *  5. Broker: P online and under MAX_CONNS -> a session (public) and
 *     PUBLIC_ACCEPT { SPLICE_ID, SESSION } to the relay, which tags the
 *     splice with SESSION (SPLICE_DONE names it), and CONNECT_INFO
 *     { SESSION, PATH (RELAY), DIAL (1), PEER_ADDR (the relay's address,
 *     PORT_A), SPLICE_MODE (passive), SERVICE (bare), PROTO, PLAIN (1),
 *     CLIENT_ADDR (the client's address and port), PUBLIC_ADDR (the relay's
 *     address and the public port) } to P: no KEY, no proofs, no OPEN (the
 *     client has no agent to prove anything). Otherwise PUBLIC_REFUSE
 *     { SPLICE_ID, CODE } to the relay, which resets the client (RST) and
 *     deletes the splice.
 *  6. P connects to PEER_ADDR; the relay splices it with the held SYN (the
 *     client connected first: it is answered first and must prove itself
 *     with its ACK before P is answered, see relay_splice.c "proving"; the
 *     SYN-ACK options follow the same rules as every splice: P's SYN is the
 *     client's partner). P connects to its target when its connection is
 *     up, writes the PROXY protocol header there if the service asks for
 *     one (from CLIENT_ADDR and PUBLIC_ADDR), and forwards as is.
 *  7. No provider within TIMEOUT: the relay resets the client (RST).
 *
 * ## UDP stays UDP (TRANSPORT)
 *  CONNECT and FLOW of a UDP service carry TRANSPORT 17 (datagrams as
 *  datagrams) or 6 (each datagram framed as { be16 length; bytes } on a TCP
 *  tunnel: the fallback where UDP does not get through). Without TRANSPORT:
 *  6 (older agents). The broker copies TRANSPORT into CONNECT_INFO, asks
 *  the relay for a UDP splice when it is 17 and records it in the session.
 *  A UDP relay splice answers SPLICE_READY with TOKEN (16 bytes); the broker
 *  passes it in CONNECT_INFO. Each agent sends TOKEN to its relay port
 *  every 200 ms until the relay answers "NSOK" (both sides came); then, and
 *  on direct and reverse paths at once (the accepting agent receives on
 *  tunnel-listen's port number in UDP), each sends the 61-byte proof of
 *  step 6 plus one byte as one datagram: 'O' from S (OPEN: P connects its
 *  target UDP socket once the proof checks), 'R' from P, resent every
 *  200 ms until the peer's proof checked; every such request is answered
 *  with our proof and 'A' (an answer is not answered). From then on one
 *  application datagram is one UDP datagram. Datagrams from anywhere else,
 *  or before the peer's proof was checked, are dropped; a late TOKEN, NSOK
 *  or proof is never application data. S falls back to TRANSPORT 6 (a new
 *  CONNECT or FLOW) when the UDP tunnel is not up udp-fallback seconds after
 *  CONNECT_INFO.
 *
 * ## Flows on a session
 *  FLOW { REQ_ID, PARENT (an established session), PROTO, PORT,
 *  [TRANSPORT] } from either agent of PARENT asks for one more connection
 *  (or datagram stream) on it: no OFFER, no ACL check again. The requester
 *  becomes the flow's "subscriber" (it has the local application end), the
 *  other agent its "provider": it connects to PORT on the host of its own
 *  application end of PARENT (the target's host for the provider of PARENT,
 *  the client's host for its subscriber), never elsewhere. The broker
 *  routes it like a new session (its own SESSION and key) and sends
 *  CONNECT_INFO { ..., PARENT, PORT, PROTO } to both (REQ_ID to the
 *  requester only); ERROR { REQ_ID } when PARENT is unknown, not the
 *  requester's, or over its flow limit (session-flows). A flow's PARENT is
 *  always the first session (a FLOW naming a flow is taken as naming its
 *  parent). A provider whose service has an ALG says so in ACCEPT
 *  { SESSION, ALG }; the broker passes ALG to the subscriber in its
 *  CONNECT_INFO, so that both agents run it on the service's connection
 *  (and CLIENT_INFO, above, the same way).
 *
 * ## Splice modes a relay can do
 *  A relay that splices in passive mode only (its userspace mode: sockets,
 *  no packet rewriting) says PASSIVE_ONLY (U8 1) in its LOGIN; the broker
 *  then asks it for passive splices only, whatever the subscriber's NAT.
 *
 * ## Round trips to relays (lib/rtt.h)
 *  A relay that answers round-trip probes says so in its LOGIN: ECHO_PORT
 *  (U16, a UDP port on its RELAY_ADDR). After an agent's LOGIN_OK, and to
 *  every agent whenever the set changes, the broker sends RELAYS
 *  { RELAY_INFO... } where each RELAY_INFO is { NAME (the relay's),
 *  PEER_ADDR (its address and echo port) }: the relays online that the
 *  agent may be given, all of them (an empty RELAYS: none). The agent
 *  measures its round trip to each, periodically (its relay-probe-interval),
 *  with 32-byte UDP requests the relay echoes (rtt.h: a fresh random nonce
 *  each, over a socket connected to that address: answers from anywhere
 *  else count for nothing), and sends RTT { RELAY_INFO... } with { NAME,
 *  RTT_US } entries (NS_RTT_UNREACHABLE: no answers) whenever a value
 *  changed noticeably, at most once per probe round. The broker gives a
 *  relay session the relay with the smallest sum of both agents' round
 *  trips, load breaking ties (sums within relay-rtt-slack of the
 *  smallest); relays an agent cannot reach come last, relays not measured
 *  yet after the measured ones; the session record says why. An agent's
 *  reports only ever change the choice for its own sessions, among relays
 *  online: values above NS_RTT_MAX_US count as no answer.
 *
 * ## NAT behaviour discovery (lib/natdisc.h)
 *  A broker with discovery-address D (a second address of its own, besides
 *  the listen address L) answers discovery requests in UDP and TCP on
 *  ports P and P+1 (discovery-port) of both, and tells every agent after
 *  LOGIN_OK: DISCOVERY { PEER_ADDR (L:P), ALT_ADDR (D:P) }. The agent runs
 *  RFC 5780's tests (mapping: the source the broker saw from one local port
 *  at L:P, D:P and D:P+1; filtering: answers asked from D:P+1, then from
 *  L:P+1 (UDP; TCP: connect-backs from D:P+2, L:P+2) to a fresh local port
 *  that only sent to L:P; port preservation; hairpinning: a UDP datagram,
 *  a TCP connection to its own mapped address reaches it) and sends
 *  NAT_INFO { NAT { PROTO, [MAPPING, FILTERING, PRESERVE, HAIRPIN,
 *  PEER_ADDR (the mapped address)] }... } (no MAPPING: no answer came:
 *  that transport is blocked). The broker keeps it (API, metrics, session
 *  records) and takes the subscriber's TCP port preservation for the
 *  splice mode (pure when kept). An agent's report only concerns its own
 *  sessions.
 *  A broker with a single address takes a relay's instead: with
 *  discovery-relay NAME, D is that relay's address and P its discovery-port
 *  (LOGIN DISC_PORT), where the relay listens (UDP and TCP P, P+1) and
 *  connects back from (P, P+2) but answers nothing itself: it hands every
 *  request to the broker, DISC_FWD { PROTO, PEER_ADDR (the source it saw),
 *  PORT_INDEX (0: P, 1: P+1), DATA (the request), [CONN_ID (TCP: the
 *  connection)] }, and sends what the broker makes (only the broker knows
 *  the agents' secrets): DISC_SEND { PROTO, PEER_ADDR, DATA (an answer),
 *  then UDP: PORT_INDEX (the port it leaves from); TCP: CONN_ID (over that
 *  connection) or PORT_INDEX (0 or 2: connect to PEER_ADDR from P or P+2
 *  and send it there) }. Answers from L go out of the broker's own sockets
 *  as before. DISCOVERY then carries ALT_ADDR = the relay's address and P;
 *  a relay that logs in later gets the agents not tested yet tested.
 *
 * ## TCP hole punching (PATH PUNCH)
 *  When neither agent is reachable and discovery found endpoint-independent
 *  mapping with the port kept on both sides for the session's transport
 *  (same address family), the broker prefers a punched path to a relay: it picks a
 *  port for each agent and sends both CONNECT_INFO { PATH (PUNCH), DIAL (1),
 *  PEER_ADDR (the other's public address and port), BIND_PORT (its own
 *  port), TIMEOUT (punch-timeout seconds), KEY, ... }. Both connect at once
 *  from BIND_PORT to PEER_ADDR (TCP simultaneous open through both NATs),
 *  and every 250 ms that it is not connected both move to the next pair of
 *  ports (each + 1: a SYN refused by the far NAT leaves a closed
 *  connection there that blocks those ports a while), until TIMEOUT; then
 *  the usual proofs.
 *  The nearer agent (by the round trip of its control connection) gets
 *  DELAY_MS, the difference of the one-way delays, so that both SYNs leave
 *  at the same moment and cross on the way.
 *  UDP (TRANSPORT 17) the same way, with one difference: a datagram that
 *  reaches the far NAT before that NAT's own side sent one can leave a
 *  conntrack entry there (Linux: to the router itself) which takes the
 *  tuple that side's mapping needs; the NAT then maps it to another port
 *  and the punch fails (TCP recovers: a SYN reopens a closed entry). So
 *  where one side's NAT filters by nothing or by address only (discovery:
 *  filtering EI or AD), that side gets DIAL 0: it sends one datagram from
 *  BIND_PORT to the other's address at port NS_PUNCH_PRIME_PORT (a NAT
 *  filtering by address now lets that address in; nothing is in the way at
 *  the far NAT, whose port it did not touch) and answers the other's
 *  proof. The other gets DIAL 1 and DELAY_MS raised by
 *  NS_PUNCH_UDP_LEAD_MS. Where both filter by address and port, both send
 *  at once (DELAY_MS as for TCP): the punch works when the two datagrams
 *  leave closer together than the one-way delay between the NATs.
 *  A subscriber whose punched tunnel is not up by TIMEOUT asks again with
 *  NO_PUNCH 1 in its CONNECT (or FLOW): the broker then routes it as before
 *  (relay) and punches for neither agent for NS_PUNCH_BACKOFF_S. Order of
 *  paths: direct, reverse, punched, relay; tunnels already up stay on
 *  their path.
 *
 * ## Sealed tunnels (lib/seal.h)
 *  Every tunnel is encrypted end to end unless the service was published
 *  with PLAIN 1 (encrypt: false), which the broker passes on in both
 *  CONNECT_INFOs. Keys: HKDF-SHA256(ikm = the session key, salt = S's
 *  61-byte proof | P's 61-byte proof, info = "natsplice-seal-tcp" or, for
 *  TRANSPORT 17, "natsplice-seal-udp") -> 56 bytes: S->P key (16) and IV
 *  (12), then P->S key and IV; AES-128-GCM. Every tunnel (and every flow)
 *  has fresh proofs, so keys of its own. After the proofs (and OPEN) the
 *  TCP byte stream is a sequence of TLS 1.3 records (RFC 8446 5.2) exactly:
 *  { 23, 3, 3, be16 length } then AES-GCM(payload | 23) with the header as
 *  additional data and nonce = IV XOR the record's 64-bit sequence number
 *  (from 0 each way); at most 16384 payload bytes a record. A record that
 *  fails authentication, or of another content type, closes the tunnel.
 *  Either end may hand its keys to the kernel's kTLS. UDP as UDP: each
 *  application datagram is { be64 sequence number; AES-GCM(datagram) }
 *  with the sequence number as additional data and the same nonce rule; a
 *  datagram that fails, or repeats a number among the last 960, is dropped.
 *  Compressed tunnels compress first, then seal; framed UDP is sealed as a
 *  stream.
 */
#ifndef NS_PROTO_H
#define NS_PROTO_H

#include <linux/types.h>

#define NS_PROTO_VERSION	1
#define NS_PROTO_HDR_LEN	8
#define NS_PROTO_MAX_BODY	65536		/* bytes; larger -> peer closed */
#define NS_PROTO_PORT		7700
#define NS_HOLD_TIME_S		30
#define NS_NEGOTIATE_TIMEOUT_S	10
#define NS_NONCE_LEN		32
#define NS_HMAC_LEN		32
#define NS_KEY_LEN		32
#define NS_TLS_EXPORTER_LABEL	"EXPORTER-natsplice-login"
#define NS_TLS_EXPORTER_LEN	32
#define NS_TLS_KEY_UPDATES_MAX	32		/* KeyUpdates a peer may send on one connection */
#define NS_PROOF_LEN		61		/* "NSP1" + 8 + 1 + 16 + 32 */
#define NS_PROOF_NONCE_LEN	16
#define NS_TUNNEL_OPEN		0x4f		/* 'O': S -> P after the proofs, step 6 */
#define NS_TUNNEL_OPEN_ADDR	0x41		/* 'A': OPEN with the client's address */
#define NS_OPEN_TAG_LEN		16		/* the record's tag */
#define NS_OPEN_ADDR_LEN	(40 + NS_OPEN_TAG_LEN)	/* the record after 'A' */
#define NS_ADDR_ATTR_LEN	20
#define NS_PUNCH_BACKOFF_S	60		/* no punching for an agent this long after a failure */
#define NS_PUNCH_PRIME_PORT	9		/* UDP punch: the answering side primes its NAT here */
#define NS_PUNCH_UDP_LEAD_MS	100		/* UDP punch: the answering side's head start */

#define NS_ATTR_MUST		0x8000		/* must-understand bit */

/* Message types. */
enum ns_msg_type {
	NS_MSG_CHALLENGE = 1,
	NS_MSG_LOGIN,
	NS_MSG_LOGIN_OK,
	NS_MSG_ERROR,
	NS_MSG_HEARTBEAT,
	NS_MSG_OK,
	NS_MSG_PUBLISH,
	NS_MSG_UNPUBLISH,
	NS_MSG_LIST,
	NS_MSG_LIST_REPLY,
	NS_MSG_CONNECT,
	NS_MSG_OFFER,
	NS_MSG_ACCEPT,
	NS_MSG_REJECT,
	NS_MSG_CONNECT_INFO,
	NS_MSG_SPLICE_REQUEST,
	NS_MSG_SPLICE_READY,
	NS_MSG_SPLICE_PEER,
	NS_MSG_SPLICE_DONE,
	NS_MSG_FLOW,		/* another flow on an established session */
	NS_MSG_PUBLIC_OPEN,	/* broker -> relay: open a public port */
	NS_MSG_PUBLIC_CLOSE,	/* broker -> relay: close it */
	NS_MSG_PUBLIC_INFO,	/* broker -> provider: its public port's state */
	NS_MSG_PUBLIC_CLIENT,	/* relay -> broker: a client's SYN is held */
	NS_MSG_PUBLIC_ACCEPT,	/* broker -> relay: its provider comes */
	NS_MSG_PUBLIC_REFUSE,	/* broker -> relay: reset the client */
	NS_MSG_RELAYS,		/* broker -> agent: the relays to measure */
	NS_MSG_RTT,		/* agent -> broker: its round trips to them */
	NS_MSG_DISCOVERY,	/* broker -> agent: where to test its NAT */
	NS_MSG_NAT_INFO,	/* agent -> broker: what the tests found */
	NS_MSG_DISC_FWD,	/* relay -> broker: a discovery request it got */
	NS_MSG_DISC_SEND,	/* broker -> relay: send this discovery answer */
	NS_MSG_MAX
};

/* Attribute types (without the must-understand bit). */
enum ns_attr_type {
	NS_A_NONCE = 1,		/* BIN 32 */
	NS_A_VERSION_MIN,	/* U8 */
	NS_A_VERSION_MAX,	/* U8 */
	NS_A_VERSION,		/* U8 */
	NS_A_ROLE,		/* U8 enum ns_role */
	NS_A_NAME,		/* STR agent / relay name */
	NS_A_PROOF,		/* BIN 32 */
	NS_A_LOCAL_ADDR,	/* ADDR: local end of the peer's broker connection */
	NS_A_OBSERVED_ADDR,	/* ADDR: the peer as the broker sees it */
	NS_A_LISTEN_PORT,	/* U16: agent accepts direct tunnels on this port */
	NS_A_RELAY_ADDR,	/* ADDR: relay's public address (port 0) */
	NS_A_HOLD_TIME,		/* U32 seconds */
	NS_A_CODE,		/* U32 enum ns_err */
	NS_A_TEXT,		/* STR, up to 1000 bytes */
	NS_A_REQ_ID,		/* U32 */
	NS_A_SERVICE,		/* STR "name" or "agent/name" */
	NS_A_PROTO,		/* U8 6 = TCP, 17 = UDP */
	NS_A_SERVICE_INFO,	/* nested attributes, may repeat */
	NS_A_SESSION,		/* U64 */
	NS_A_PATH,		/* U8 enum ns_path */
	NS_A_DIAL,		/* U8 1 = connect, 0 = accept */
	NS_A_PEER_ADDR,		/* ADDR */
	NS_A_BIND_PORT,		/* U16 */
	NS_A_SPLICE_MODE,	/* U8 enum ns_mode (natsplice_abi.h) */
	NS_A_KEY,		/* BIN 32, wrapped */
	NS_A_FROM_A,		/* ADDR (port 0) */
	NS_A_FROM_B,		/* ADDR (port 0) */
	NS_A_TIMEOUT,		/* U32 seconds */
	NS_A_SPLICE_ID,		/* U32 */
	NS_A_PORT_A,		/* U16 */
	NS_A_PORT_B,		/* U16 */
	NS_A_BYTES_AB,		/* U64 */
	NS_A_BYTES_BA,		/* U64 */
	NS_A_PACKETS,		/* U64 */
	NS_A_COMPRESS,		/* U8 1 = zlib stream in the tunnel */
	NS_A_TOKEN,		/* BIN 16: UDP relay splice token */
	NS_A_TRANSPORT,		/* U8 17 = datagrams as datagrams, 6 = framed in TCP */
	NS_A_PARENT,		/* U64: the session a flow belongs to */
	NS_A_PORT,		/* U16: the flow's port on the far application's host */
	NS_A_ALG,		/* STR: the service's application layer gateway ("ftp") */
	NS_A_PLAIN,		/* U8 1 = the tunnel is not sealed (the service's encrypt: false) */
	NS_A_EXPOSE,		/* nested: PORT, PREFIX..., MAX_CONNS (public ports) */
	NS_A_PREFIX,		/* STR "addr/len": a source prefix allowed; may repeat */
	NS_A_MAX_CONNS,		/* U32 */
	NS_A_PUBLIC_ID,		/* U32: the broker's name for one public port */
	NS_A_PUBLIC_PORTS,	/* STR "lo-hi": ports a relay may open publicly; may repeat */
	NS_A_CLIENT_ADDR,	/* ADDR: a public port's client */
	NS_A_PUBLIC_ADDR,	/* ADDR: the relay's address and public port it connected to */
	NS_A_CLIENT_INFO,	/* U8 1: P wants the client's address with OPEN (PROXY protocol) */
	NS_A_ECHO_PORT,		/* U16: a relay's echo port (round-trip probes) */
	NS_A_RELAY_INFO,	/* nested: NAME, [PEER_ADDR], [RTT_US]; may repeat */
	NS_A_RTT_US,		/* U32: a round trip in microseconds; 0xffffffff: no answer */
	NS_A_ALT_ADDR,		/* ADDR: the broker's second discovery address */
	NS_A_NAT,		/* nested: PROTO, [MAPPING, FILTERING, PRESERVE, HAIRPIN, PEER_ADDR] */
	NS_A_MAPPING,		/* U8 enum ns_nat_beh (lib/natdisc.h) */
	NS_A_FILTERING,		/* U8 enum ns_nat_beh */
	NS_A_PRESERVE,		/* U8 1: the NAT kept the local port */
	NS_A_HAIRPIN,		/* U8 1: the NAT hairpins */
	NS_A_NO_PUNCH,		/* U8 1: CONNECT/FLOW after a punched path failed */
	NS_A_DELAY_MS,		/* U32: a punched path: connect this long after CONNECT_INFO */
	NS_A_PASSIVE_ONLY,	/* U8 1: a relay's LOGIN: it splices in passive mode only
				 * (userspace mode) */
	NS_A_DISC_PORT,		/* U16: a relay's LOGIN: its discovery ports are P, P+1, P+2 */
	NS_A_PORT_INDEX,	/* U8: which of them (0, 1, 2) */
	NS_A_DATA,		/* BIN: a discovery request or answer, whole */
	NS_A_CONN_ID,		/* U32: a relay's TCP discovery connection */
	NS_A_MAX
};

enum ns_role { NS_ROLE_AGENT = 1, NS_ROLE_RELAY = 2 };

enum ns_path { NS_PATH_DIRECT = 1, NS_PATH_REVERSE = 2, NS_PATH_RELAY = 3, NS_PATH_PUNCH = 4 };

/* Error codes (NS_A_CODE). */
enum ns_err {
	NS_ERR_MALFORMED = 1,	/* bad frame or attribute */
	NS_ERR_UNSUPPORTED,	/* unknown must-understand attribute, version */
	NS_ERR_AUTH,		/* unknown name or bad proof */
	NS_ERR_NOT_FOUND,	/* no such service or agent offline */
	NS_ERR_DENIED,		/* ACL */
	NS_ERR_TIMEOUT,		/* negotiation timed out */
	NS_ERR_NO_RELAY,	/* relay path needed, none available */
	NS_ERR_REJECTED,	/* the provider refused */
	NS_ERR_INTERNAL,
	NS_ERR_DUPLICATE,	/* name already logged in (the old one is replaced) */
	NS_ERR_BUSY,		/* relay: no relay port or splice table room right now */
	NS_ERR_RETRY,		/* this session is replaced by a retry (not a failure) */
	NS_ERR_LIMIT,		/* refused by a broker limit of this agent (TEXT says which) */
};

#endif /* NS_PROTO_H */
