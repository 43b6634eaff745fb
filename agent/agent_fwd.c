// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Forwarding between the tunnel and the client (subscriber) or the target
 * (provider), once both proofs are checked.
 *
 *  - TCP: splice(2) through a pipe per direction, no copy to user space.
 *    EOF on one side -> shutdown(SHUT_WR) on the other (half-close); a reset
 *    or error on either -> both closed with an RST (SO_LINGER 0), so each
 *    end sees what it would have seen on a direct connection.
 *  - sealed (encrypted end to end, lib/seal.h; every tunnel unless its
 *    service says encrypt: false): the kernel's kTLS on the tunnel's socket
 *    where it has it (the socket then reads and writes plaintext, and TCP is
 *    spliced as above), else TLS 1.3 records sealed and opened here in user
 *    space (the tunnel's bytes then pass through the buffers below; UDP as
 *    UDP: each datagram sealed, a forged or replayed one dropped).
 *  - compressed (COMPRESS=1) or UDP: user-space buffers. Compression is one
 *    zlib deflate stream each way, Z_SYNC_FLUSH after every read so that
 *    interactive traffic is not held back; EOF ends the stream (Z_FINISH)
 *    before the half-close. UDP datagrams ride the tunnel as
 *    { be16 length; bytes } frames (inside the compressed stream, if any).
 *
 * Sockets are edge-triggered. A spliced tunnel pumps only the directions an
 * event concerns (readable: the direction out of that socket; writable: the
 * one into it, if its pipe holds bytes), each until EAGAIN, a full socket or
 * a read that took everything (lib/pipe.h), so nothing waits on an edge that
 * already passed and no event costs a read that can only say EAGAIN.
 * Buffered tunnels pump both directions on every event.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define PIPE_BYTES	(256 << 10)	/* pipe capacity per spliced direction: a user may
					 * hold 64 MiB of pipes (fs.pipe-user-pages-soft),
					 * so 128 tunnels before pipes shrink to 2 pages;
					 * 1 MiB moved no more (bench) */
#define READ_CHUNK	(64 << 10)	/* one read into a buffer */
#define BUF_HIGH	(256 << 10)	/* queued bytes at which reading stops */
#define PENDING_MAX	(256 << 10)	/* UDP frames held before the tunnel is up */
#define FWD_EVENTS	(EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* ---- byte queues ---- */

/* Room for `more` bytes after data[len]; 0 or -ENOMEM. */
static int buf_reserve(struct agent_buf *b, size_t more)
{
	size_t cap;
	__u8 *p;

	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len >= more)
		return 0;
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= more)
			return 0;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int agent_buf_put(struct agent_buf *b, const void *p, size_t len)
{
	int err = buf_reserve(b, len);

	if (err)
		return err;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	return 0;
}

void agent_buf_free(struct agent_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Send what b holds: 0 all sent, 1 blocked, < 0 error. *sent counts bytes. */
static int buf_send(int fd, struct agent_buf *b, __u64 *sent)
{
	ssize_t n;

	while (b->off < b->len) {
		n = send(fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		b->off += n;
		if (sent)
			*sent += n;
	}
	b->off = b->len = 0;
	return 0;
}

/* ---- the tunnel's bytes, sealed in user space (f->useal) or not ---- */

/* Send what f->up holds to the tunnel, sealed into records first when we
 * seal: 0 all sent, 1 blocked, < 0 error. */
static int tun_send(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	size_t n;
	int r;

	if (!f->useal)
		return buf_send(t->tw.fd, &f->up, NULL);
	for (;;) {
		r = buf_send(t->tw.fd, &f->wire, NULL);
		if (r || !agent_buf_used(&f->up))
			return r;
		while (agent_buf_used(&f->up) && agent_buf_used(&f->wire) < READ_CHUNK) {
			n = agent_buf_used(&f->up);
			if (n > NS_SEAL_RECORD_MAX)
				n = NS_SEAL_RECORD_MAX;
			r = buf_reserve(&f->wire, n + NS_SEAL_RECORD_OVERHEAD);
			if (!r)
				r = ns_seal_record(&f->tx, f->up.data + f->up.off, n,
						   f->wire.data + f->wire.len);
			if (r < 0)
				return r;
			f->wire.len += r;
			f->up.off += n;
		}
	}
}

/* Bytes queued towards the tunnel, sealed or not yet. */
static size_t tun_queued(const struct agent_fwd *f)
{
	return agent_buf_used(&f->up) + agent_buf_used(&f->wire);
}

/* Up to cap (>= NS_SEAL_RECORD_MAX) bytes of plaintext from the tunnel into
 * buf: how many, 0 at its end, -EAGAIN none now, -EBADMSG a record that
 * fails (forged, damaged, not ours), -EPIPE a record cut by the end. */
static ssize_t tun_read(struct agent_tunnel *t, __u8 *buf, size_t cap)
{
	struct agent_fwd *f = &t->fwd;
	size_t plen, need, used, got = 0;
	const __u8 *plain;
	ssize_t n;
	long rl;
	int err;

	for (;;) {
		if (!f->useal) {
			n = recv(t->tw.fd, buf, cap, MSG_DONTWAIT);
		} else {
			used = agent_buf_used(&f->rin);
			rl = ns_seal_record_len(f->rin.data + f->rin.off, used, &need);
			if (rl < 0)
				return -EBADMSG;
			if (rl > 0) {
				err = ns_open_record(&f->rx, f->rin.data + f->rin.off, rl,
						     &plain, &plen);
				if (err)
					return -EBADMSG;
				f->rin.off += rl;
				memcpy(buf + got, plain, plen);
				got += plen;
				if (cap - got >= NS_SEAL_RECORD_MAX)
					continue;	/* room for the next one */
				return got;
			}
			if (got)
				return got;
			err = buf_reserve(&f->rin, need - used > READ_CHUNK ? need - used
									  : READ_CHUNK);
			if (err)
				return err;
			n = recv(t->tw.fd, f->rin.data + f->rin.len, f->rin.cap - f->rin.len,
				 MSG_DONTWAIT);
			if (n > 0) {
				f->rin.len += n;
				continue;
			}
			if (n == 0 && used)
				return -EPIPE;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
		return n;
	}
}

/* Why forwarding ended, in words. */
static const char *fwd_error(const struct agent_fwd *f, int err)
{
	switch (err) {
	case -EPROTO:
		return "corrupt compressed stream";
	case -ECONNRESET:
		return "reset";
	case -EBADMSG:
		return "a sealed record failed authentication (forged or damaged in transit)";
	case -EPIPE:
		return "the tunnel ended inside a sealed record";
	case -EIO:
		if (f->ktls)
			return "kTLS: a record that is not application data";
		/* fall through */
	default:
		return strerror(-err);
	}
}

/* ---- the stream towards the tunnel (deflated when compressing) ---- */

static int up_put(struct agent_fwd *f, const void *p, size_t n, int flush)
{
	int r, err;

	if (!f->zdef)
		return agent_buf_put(&f->up, p, n);
	f->def.next_in = (Bytef *)p;
	f->def.avail_in = n;
	for (;;) {
		err = buf_reserve(&f->up, READ_CHUNK);
		if (err)
			return err;
		f->def.next_out = f->up.data + f->up.len;
		f->def.avail_out = f->up.cap - f->up.len;
		r = deflate(&f->def, flush);
		f->up.len = f->up.cap - f->def.avail_out;
		if (r == Z_STREAM_ERROR)
			return -EIO;
		if (flush == Z_FINISH ? r == Z_STREAM_END :
					(f->def.avail_in == 0 && f->def.avail_out != 0))
			return 0;
	}
}

/* One datagram, through the ALG if any, framed, towards the tunnel. */
static int up_datagram(struct agent_fwd *f, const __u8 *p, size_t n)
{
	__u8 hdr[AGENT_UDP_FRAME_HDR];
	int err;

	err = agent_alg_run(f, NS_ALG_OUT, p, n, false, &p, &n);
	if (err)
		return err;
	if (f->alg_ops && !n)
		return 0;	/* the ALG dropped it */
	if (agent_udp_frame_hdr(hdr, n))
		return 0;	/* cannot happen for a UDP payload: dropped */
	err = up_put(f, hdr, sizeof(hdr), Z_NO_FLUSH);
	if (!err)
		err = up_put(f, p, n, Z_SYNC_FLUSH);
	return err;
}

/* Stream bytes from the plain side through the ALG (if any) towards the tunnel. */
static int alg_up(struct agent_fwd *f, const __u8 *p, size_t n, bool eof)
{
	int err = agent_alg_run(f, NS_ALG_OUT, p, n, eof, &p, &n);

	if (!err && n)
		err = up_put(f, p, n, Z_SYNC_FLUSH);
	return err;
}

/* plain -> tunnel: 0 or -errno. */
static int pump_up(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	int r, err;
	ssize_t n;

	for (;;) {
		r = tun_send(t);
		if (r < 0)
			return r;
		if (tun_queued(f) >= BUF_HIGH)
			return 0;		/* on with the tunnel's EPOLLOUT */
		if (f->plain_eof) {
			if (!r && !f->up_shut) {
				shutdown(t->tw.fd, SHUT_WR);
				f->up_shut = true;
			}
			return 0;
		}
		if (t->pw.fd < 0)
			return 0;		/* subscriber UDP: the listener pushes datagrams */
		n = recv(t->pw.fd, t->a->buf, t->proto == IPPROTO_UDP ? AGENT_IO_BUF : READ_CHUNK,
			 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (t->proto == IPPROTO_UDP) {
			if (n < 0)
				continue;	/* ICMP errors of the connected socket */
			err = up_datagram(f, t->a->buf, n);
			f->last_ns = ns_now_ns();
		} else if (n < 0) {
			return -errno;
		} else if (n == 0) {
			f->plain_eof = true;
			err = alg_up(f, NULL, 0, true);
			if (!err && f->zdef)
				err = up_put(f, NULL, 0, Z_FINISH);
		} else {
			err = alg_up(f, t->a->buf, n, false);
		}
		if (err)
			return err;
		f->bytes[0] += n > 0 ? n : 0;
	}
}

/* A datagram to the client (through the listener's socket) or the target; one
 * the socket cannot take now is dropped, as UDP would drop it. */
static void deliver(struct agent_tunnel *t, const __u8 *d, size_t len)
{
	if (t->role == TUN_ROLE_SUBSCRIBER)
		sendto(t->lis->w.fd, d, len, MSG_DONTWAIT, (struct sockaddr *)&t->client,
		       ns_sockaddr_len(&t->client));
	else
		send(t->pw.fd, d, len, MSG_DONTWAIT);
}

/* Decoded UDP frames -> datagrams to the client or the target. */
static void deliver_frames(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	const __u8 *d;
	size_t k, dl;

	while ((k = agent_udp_unframe(f->down.data + f->down.off, agent_buf_used(&f->down),
				      &d, &dl))) {
		f->down.off += k;
		if (!agent_alg_datagram(f, NS_ALG_IN, &d, &dl))
			continue;
		deliver(t, d, dl);
		f->bytes[1] += dl;
		f->last_ns = ns_now_ns();
	}
}

/* Compressed bytes from the tunnel -> f->down, one chunk at a time. */
static int inflate_some(struct agent_fwd *f)
{
	size_t in = agent_buf_used(&f->zin), used, made;
	int r, err;

	err = buf_reserve(&f->down, READ_CHUNK);
	if (err)
		return err;
	f->inf.next_in = f->zin.data + f->zin.off;
	f->inf.avail_in = in;
	f->inf.next_out = f->down.data + f->down.len;
	f->inf.avail_out = READ_CHUNK;
	r = inflate(&f->inf, Z_SYNC_FLUSH);
	used = in - f->inf.avail_in;
	made = READ_CHUNK - f->inf.avail_out;
	f->zin.off += used;
	f->down.len += made;
	if (r == Z_STREAM_END) {
		f->zin.off = f->zin.len;	/* nothing may follow the end */
		return 0;
	}
	if ((r != Z_OK && r != Z_BUF_ERROR) || (!used && !made))
		return -EPROTO;			/* corrupt stream */
	return 0;
}

/* One read from the tunnel through the ALG into f->down: 0 read, 1 nothing
 * to read now, or -errno. */
static int alg_down(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	const __u8 *p;
	size_t len;
	ssize_t n;
	int err;

	n = tun_read(t, t->a->buf, READ_CHUNK);
	if (n < 0)
		return n == -EAGAIN ? 1 : n;
	if (n == 0)
		f->tun_eof = true;
	err = agent_alg_run(f, NS_ALG_IN, t->a->buf, n, n == 0, &p, &len);
	if (!err && len)
		err = agent_buf_put(&f->down, p, len);
	return err;
}

/* tunnel -> plain: 0 or -errno. */
static int pump_down(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	struct agent_buf *dst;
	int r;
	ssize_t n;

	for (;;) {
		if (t->proto == IPPROTO_UDP) {
			deliver_frames(t);
		} else {
			r = buf_send(t->pw.fd, &f->down, &f->bytes[1]);
			if (r)
				return r < 0 ? r : 0;	/* on with the plain side's EPOLLOUT */
		}
		if (f->zinf && agent_buf_used(&f->zin)) {
			r = inflate_some(f);
			if (r)
				return r;
			continue;
		}
		if (f->tun_eof) {
			if (t->proto == IPPROTO_TCP && !f->down_shut) {
				shutdown(t->pw.fd, SHUT_WR);
				f->down_shut = true;
			}
			return 0;
		}
		if (f->alg_ops && t->proto == IPPROTO_TCP) {
			r = alg_down(t);
			if (r)
				return r < 0 ? r : 0;
			continue;
		}
		dst = f->zinf ? &f->zin : &f->down;
		r = buf_reserve(dst, READ_CHUNK);
		if (r)
			return r;
		n = tun_read(t, dst->data + dst->len, READ_CHUNK);
		if (n < 0)
			return n == -EAGAIN ? 0 : n;
		if (n == 0)
			f->tun_eof = true;
		dst->len += n;
	}
}

/* ---- driving ---- */

static bool finished(const struct agent_tunnel *t)
{
	const struct agent_fwd *f = &t->fwd;

	if (f->spliced)
		return f->pipe[0].done && f->pipe[1].done;
	if (t->proto == IPPROTO_UDP)
		return f->tun_eof;		/* the other side ended the tunnel */
	return f->up_shut && f->down_shut;
}

/* Which pipes to pump (bit d: f->pipe[d]). */
#define PUMP_BOTH	3

static void pump(struct agent_tunnel *t, unsigned int dirs)
{
	struct agent_fwd *f = &t->fwd;
	char why[128];
	int err = 0;

	if (f->spliced) {
		if (dirs & 1)
			err = ns_pipe_pump(&f->pipe[0], &f->bytes[0], NULL);
		if (!err && (dirs & 2))
			err = ns_pipe_pump(&f->pipe[1], &f->bytes[1], NULL);
	} else {
		err = pump_up(t);
		if (!err)
			err = pump_down(t);
	}
	if (err) {
		/* A reset on one side resets the other. */
		snprintf(why, sizeof(why), "%s", fwd_error(f, err));
		agent_tunnel_close(t, true, why);
		return;
	}
	if (finished(t))
		agent_tunnel_close(t, false, "closed");
}

/* UDP as UDP, the provider: datagrams from the target, through the ALG, to
 * the peer, a batch read and a batch sent at a time. */
static void dgram_from_target(struct agent_tunnel *t)
{
	struct agent_dgrams *dg = &t->a->dg;
	struct agent_dgram_out out = { .fd = -1 };
	int i, j, n = AGENT_MMSG;

	for (i = 0; i < 64 && n == AGENT_MMSG && t->pw.fd >= 0; i += n) {
		n = agent_dgrams_recv(t->a, t->pw.fd);
		for (j = 0; j < n; j++)
			agent_fwd_udp_in(t, dg->iov[j].iov_base, dg->m[j].msg_len, &out);
		agent_dgram_flush(&out);
	}
}

void agent_fwd_on_event(struct agent_tunnel *t)
{
	if (t->fwd.dgram) {
		agent_udp_on_event(t);
		if (t->state == TUN_FWD && t->role == TUN_ROLE_PROVIDER)
			dgram_from_target(t);
		return;
	}
	pump(t, PUMP_BOTH);
}

/* Queue a datagram for the client (through the listener's socket) or the
 * target; what the ALG made of it is sent at once (its buffer is reused). */
static void deliver_queued(struct agent_tunnel *t, const __u8 *d, size_t len,
			   struct agent_dgram_out *o)
{
	if (t->fwd.alg_ops) {
		deliver(t, d, len);
		return;
	}
	if (t->role == TUN_ROLE_SUBSCRIBER)
		agent_dgram_queue(o, t->lis->w.fd, d, len, &t->client);
	else
		agent_dgram_queue(o, t->pw.fd, d, len, NULL);
}

void agent_fwd_dgram_in(struct agent_tunnel *t, const __u8 *data, size_t len,
			struct agent_dgram_out *o)
{
	struct agent_fwd *f = &t->fwd;

	if (f->useal && ns_open_dgram(&f->rx, (__u8 *)data, len, &data, &len)) {
		/* forged, damaged or replayed: dropped, as the network might have */
		if (!f->forged++) {
			char label[AGENT_NAME_MAX * 2 + 64];

			log_warn("%s: a datagram failed authentication or was replayed: dropped "
				 "(and so will be any more, counted in the tunnel's close line)",
				 agent_tunnel_label(t, label, sizeof(label)));
		}
		return;
	}
	f->last_ns = ns_now_ns();
	f->heard = true;
	if (!agent_alg_datagram(f, NS_ALG_IN, &data, &len))
		return;
	deliver_queued(t, data, len, o);
	f->bytes[1] += len;
}

/*
 * A spliced tunnel's socket events: pipe[d] reads from side d (0: the
 * plain socket pw, 1: the tunnel tw) and writes to the other side.
 */
static void spliced_event(struct agent_tunnel *t, int side, __u32 events)
{
	struct agent_fwd *f = &t->fwd;
	unsigned int dirs = 0;

	if (events & (EPOLLERR | EPOLLHUP))
		dirs = PUMP_BOTH;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		f->pipe[side].src_hup = true;	/* its FIN raises no further edge */
	if (events & (EPOLLIN | EPOLLRDHUP))
		dirs |= 1u << side;
	if ((events & EPOLLOUT) && f->pipe[!side].inpipe)
		dirs |= 1u << !side;
	if (dirs)
		pump(t, dirs);
}

static void on_spliced_pw(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	spliced_event(w->data, 0, events);
}

static void on_spliced_tw(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	spliced_event(w->data, 1, events);
}

void agent_fwd_udp_in(struct agent_tunnel *t, const __u8 *data, size_t len,
		      struct agent_dgram_out *o)
{
	struct agent_fwd *f = &t->fwd;
	__u8 hdr[AGENT_UDP_FRAME_HDR];

	if (t->state != TUN_FWD) {
		/* Held until the tunnel is up; a client sending a flood loses the rest. */
		if (agent_buf_used(&t->pending) + sizeof(hdr) + len > PENDING_MAX ||
		    agent_udp_frame_hdr(hdr, len))
			return;
		if (agent_buf_put(&t->pending, hdr, sizeof(hdr)) == 0)
			agent_buf_put(&t->pending, data, len);
		return;
	}
	if (f->dgram) {
		f->last_ns = ns_now_ns();
		if (!agent_alg_datagram(f, NS_ALG_OUT, &data, &len))
			return;
		agent_udp_send(t, data, len, f->alg_ops ? NULL : o);
		f->bytes[0] += len;
		return;
	}
	if (agent_buf_used(&f->up) >= BUF_HIGH)
		return;				/* the tunnel is behind: dropped */
	if (up_datagram(f, data, len)) {
		agent_tunnel_close(t, true, "out of memory");
		return;
	}
	f->bytes[0] += len;
	f->last_ns = ns_now_ns();
	pump(t, PUMP_BOTH);
}

void agent_fwd_idle_check(struct agent_tunnel *t)
{
	__u64 idle_ns = (__u64)t->a->cfg->udp_idle_s * 1000000000ull;
	__u64 now = ns_now_ns(), since = now - t->fwd.last_ns;

	if (t->fwd.dgram && t->role == TUN_ROLE_PROVIDER && !t->fwd.heard) {
		/* the subscriber's client sent first: it fell back to TCP */
		agent_tunnel_close(t, false, "no datagram from the subscriber");
		return;
	}
	if (since >= idle_ns) {
		agent_tunnel_close(t, false, "idle");
		return;
	}
	ns_timer_arm(t->a->loop, &t->timer, (idle_ns - since) / 1000000 + 1);
}

/* UDP datagrams of the client that came before the tunnel, framed. */
static int up_pending(struct agent_tunnel *t)
{
	struct agent_buf *p = &t->pending;
	const __u8 *d;
	size_t k, dl;
	int err = 0;

	while (!err && (k = agent_udp_unframe(p->data + p->off, agent_buf_used(p), &d, &dl))) {
		p->off += k;
		if (t->fwd.dgram) {
			agent_fwd_udp_in(t, d, dl, NULL);
			continue;
		}
		err = up_datagram(&t->fwd, d, dl);
		t->fwd.bytes[0] += dl;
	}
	agent_buf_free(p);
	return err;
}

/* Seal the tunnel (lib/seal.h): the keys from the session key and both
 * proofs; then the kernel's kTLS takes a TCP tunnel where it can. */
static int seal_start(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	bool sub = t->role == TUN_ROLE_SUBSCRIBER;
	char label[AGENT_NAME_MAX * 2 + 64];
	const char *how;
	int err;

	if (t->plain)
		return 0;
	err = ns_seal_init(t->key, sub ? t->proof_out : t->proof_in,
			   sub ? t->proof_in : t->proof_out, sub, f->dgram, &f->tx, &f->rx);
	if (err)
		return err;
	if (f->dgram) {
		how = "each datagram sealed";
	} else if (t->a->cfg->no_ktls) {
		how = "in user space (ktls: off)";
	} else {
		err = ns_seal_ktls(t->tw.fd, &f->tx, &f->rx);
		if (err && err != -ENOPROTOOPT) {
			ns_seal_free(&f->tx);
			ns_seal_free(&f->rx);
			return err;
		}
		f->ktls = !err;
		how = f->ktls ? "by the kernel (kTLS)" : "in user space (this kernel has no kTLS)";
	}
	if (f->ktls) {
		ns_seal_free(&f->tx);	/* the kernel has them */
		ns_seal_free(&f->rx);
	} else {
		f->useal = true;
	}
	log_info("%s: encrypted end to end, %s", agent_tunnel_label(t, label, sizeof(label)), how);
	return 0;
}

int agent_fwd_start(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	int d, err;

	err = agent_session_open(t);
	if (!err)
		err = agent_alg_open(t);
	if (err)
		return err;
	f->dgram = t->transport == IPPROTO_UDP;
	err = seal_start(t);
	if (err)
		return err;
	f->spliced = t->proto == IPPROTO_TCP && !t->compress && !f->alg_ops && !f->useal;
	if (f->spliced) {
		for (d = 0; d < 2; d++)
			ns_pipe_init(&f->pipe[d]);
		for (d = 0; d < 2; d++) {
			err = ns_pipe_open(&f->pipe[d], d == 0 ? t->pw.fd : t->tw.fd,
					   d == 0 ? t->tw.fd : t->pw.fd, PIPE_BYTES);
			if (err)
				return err;
		}
	}
	if (t->compress && !f->dgram) {
		if (deflateInit(&f->def, Z_DEFAULT_COMPRESSION) != Z_OK)
			return -ENOMEM;
		f->zdef = true;
		if (inflateInit(&f->inf) != Z_OK)
			return -ENOMEM;
		f->zinf = true;
	}
	t->state = TUN_FWD;	/* datagrams go straight out from here on */
	err = up_pending(t);
	if (err)
		return err;
	ns_timer_cancel(t->a->loop, &t->timer);
	f->last_ns = ns_now_ns();
	/* UDP as UDP, the provider: the subscriber's datagrams are due at once
	 * (its client sent first); none within connect-timeout and it fell back */
	if (t->proto == IPPROTO_UDP)
		ns_timer_arm(t->a->loop, &t->timer, (__u64)(f->dgram && t->role ==
			     TUN_ROLE_PROVIDER ? t->a->cfg->connect_timeout_s :
			     t->a->cfg->udp_idle_s) * 1000);
	if (f->spliced) {
		/* forwarding is the tunnel's last state: its events are ours now */
		t->pw.fn = on_spliced_pw;
		t->tw.fn = on_spliced_tw;
	}
	if (f->dgram) {
		/* level-triggered: each wake-up reads a bounded burst */
		err = agent_tunnel_watch(t, &t->tw, EPOLLIN);
		if (!err && t->pw.fd >= 0)
			err = agent_tunnel_watch(t, &t->pw, EPOLLIN);
		return err;
	}
	err = agent_tunnel_watch(t, &t->tw, FWD_EVENTS);
	if (!err && t->pw.fd >= 0)
		err = agent_tunnel_watch(t, &t->pw, FWD_EVENTS);
	if (err)
		return err;
	pump(t, PUMP_BOTH);
	return 0;
}

void agent_fwd_free(struct agent *a, struct agent_fwd *f)
{
	int d;

	if (f->spliced)
		for (d = 0; d < 2; d++)
			ns_pipe_close(&f->pipe[d]);
	f->spliced = false;
	if (f->zdef)
		deflateEnd(&f->def);
	if (f->zinf)
		inflateEnd(&f->inf);
	f->zdef = f->zinf = false;
	agent_buf_free(&f->up);
	agent_buf_free(&f->zin);
	agent_buf_free(&f->down);
	agent_buf_free(&f->wire);
	agent_buf_free(&f->rin);
	if (f->useal) {
		ns_seal_free(&f->tx);
		ns_seal_free(&f->rx);
	}
	f->useal = f->ktls = false;
	agent_alg_close(f);
}
