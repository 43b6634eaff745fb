/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A small epoll event loop with timers and signals, for the broker and the agent. */
#ifndef NS_LIB_LOOP_H
#define NS_LIB_LOOP_H

#include <stdbool.h>
#include <linux/types.h>

struct ns_loop;
struct ns_watch;
struct ns_timer;

typedef void (*ns_watch_fn)(struct ns_loop *l, struct ns_watch *w, __u32 events);
typedef void (*ns_timer_fn)(struct ns_loop *l, struct ns_timer *t);

/* Embed in your own struct; fill fn, fd, data. */
struct ns_watch {
	ns_watch_fn fn;
	int fd;
	void *data;
};

/* Embed in your own struct; fill fn, data; the rest is the loop's. */
struct ns_timer {
	ns_timer_fn fn;
	void *data;
	__u64 at_ns;		/* CLOCK_MONOTONIC deadline while armed */
	int idx;		/* heap index, -1 when not armed */
};

struct ns_loop *ns_loop_new(void);
void ns_loop_free(struct ns_loop *l);		/* safe on NULL */
int ns_loop_add(struct ns_loop *l, struct ns_watch *w, __u32 events);
int ns_loop_mod(struct ns_loop *l, struct ns_watch *w, __u32 events);
void ns_loop_del(struct ns_loop *l, struct ns_watch *w);
void ns_timer_init(struct ns_timer *t, ns_timer_fn fn, void *data);
void ns_timer_arm(struct ns_loop *l, struct ns_timer *t, __u64 delay_ms);	/* re-arms */
void ns_timer_cancel(struct ns_loop *l, struct ns_timer *t);			/* safe if not armed */
static inline bool ns_timer_armed(const struct ns_timer *t)
{
	return t->idx >= 0;
}
/* SIGINT/SIGTERM (and SIGHUP if hup != NULL or a SIGHUP callback is set)
 * set *stop / *hup; SIGPIPE ignored. */
int ns_loop_signals(struct ns_loop *l, volatile bool *stop, volatile bool *hup);
/* Before ns_loop_signals: on SIGHUP call fn(arg) from the loop (a signalfd
 * read, not a handler: fn may do anything a callback may), e.g. a reload. */
void ns_loop_on_hup(struct ns_loop *l, void (*fn)(void *arg), void *arg);
/* Run until *stop: 0, or -errno. A watch or timer may delete itself (or others) in its callback. */
int ns_loop_run(struct ns_loop *l, volatile bool *stop);

#endif
