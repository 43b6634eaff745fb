// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An epoll loop with timers in a binary min-heap keyed by at_ns
 * (CLOCK_MONOTONIC) and signals through a signalfd.
 *
 * Deleting from a callback: the loop dispatches one epoll batch at a time
 * and ns_loop_del() clears the deleted watch's not-yet-dispatched events in
 * that batch, so a watch freed by any callback is never called again.
 * Timers are popped off the heap before their callback runs, so a callback
 * may re-arm, cancel or free itself or any other timer.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include "loop.h"
#include "util.h"

#define LOOP_BATCH	64
#define NS_PER_MS	1000000ull

struct ns_loop {
	int epfd;
	struct epoll_event ev[LOOP_BATCH];
	int nev;			/* events of the batch being dispatched */
	struct ns_timer **heap;
	int nheap, heapcap;
	/* signals */
	struct ns_watch sigw;
	volatile bool *stop, *hup;
	void (*hup_fn)(void *arg);	/* ns_loop_on_hup */
	void *hup_arg;
	sigset_t oldmask;
	bool sigs;
};

struct ns_loop *ns_loop_new(void)
{
	struct ns_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->sigw.fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void ns_loop_free(struct ns_loop *l)
{
	if (!l)
		return;
	if (l->sigw.fd >= 0)
		close(l->sigw.fd);
	if (l->sigs)
		sigprocmask(SIG_SETMASK, &l->oldmask, NULL);
	close(l->epfd);
	free(l->heap);
	free(l);
}

int ns_loop_add(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) ? -errno : 0;
}

int ns_loop_mod(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) ? -errno : 0;
}

void ns_loop_del(struct ns_loop *l, struct ns_watch *w)
{
	int i;

	/* Fails harmlessly when fd was already closed (the kernel dropped it). */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	for (i = 0; i < l->nev; i++)
		if (l->ev[i].data.ptr == w)
			l->ev[i].data.ptr = NULL;
}

/* ---- timers ---- */

static void heap_set(struct ns_loop *l, int i, struct ns_timer *t)
{
	l->heap[i] = t;
	t->idx = i;
}

static void sift_up(struct ns_loop *l, int i)
{
	struct ns_timer *t = l->heap[i];

	while (i > 0) {
		int parent = (i - 1) / 2;

		if (l->heap[parent]->at_ns <= t->at_ns)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void sift_down(struct ns_loop *l, int i)
{
	struct ns_timer *t = l->heap[i];

	for (;;) {
		int c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->at_ns < l->heap[c]->at_ns)
			c++;
		if (t->at_ns <= l->heap[c]->at_ns)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

static bool timer_armed(const struct ns_loop *l, const struct ns_timer *t)
{
	return t->idx >= 0 && t->idx < l->nheap && l->heap[t->idx] == t;
}

static void heap_remove(struct ns_loop *l, struct ns_timer *t)
{
	int i = t->idx;
	struct ns_timer *last = l->heap[--l->nheap];

	t->idx = -1;
	if (last == t)
		return;
	heap_set(l, i, last);
	sift_up(l, i);
	sift_down(l, last->idx);
}

void ns_timer_init(struct ns_timer *t, ns_timer_fn fn, void *data)
{
	t->fn = fn;
	t->data = data;
	t->at_ns = 0;
	t->idx = -1;
}

void ns_timer_arm(struct ns_loop *l, struct ns_timer *t, __u64 delay_ms)
{
	__u64 delay_ns = delay_ms > UINT64_MAX / 2 / NS_PER_MS ? UINT64_MAX / 2
							    : delay_ms * NS_PER_MS;

	t->at_ns = ns_now_ns() + delay_ns;
	if (timer_armed(l, t)) {
		sift_up(l, t->idx);
		sift_down(l, t->idx);
		return;
	}
	if (l->nheap == l->heapcap) {
		int cap = l->heapcap ? l->heapcap * 2 : 16;
		struct ns_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (!h) {
			/* Nothing sensible to return: a lost timer would hang a peer. */
			abort();
		}
		l->heap = h;
		l->heapcap = cap;
	}
	l->heap[l->nheap] = t;
	t->idx = l->nheap++;
	sift_up(l, t->idx);
}

void ns_timer_cancel(struct ns_loop *l, struct ns_timer *t)
{
	if (timer_armed(l, t))
		heap_remove(l, t);
	else
		t->idx = -1;
}

/* Milliseconds until the earliest timer, rounded up; -1 when none. */
static int next_timeout(const struct ns_loop *l)
{
	__u64 now, at, ms;

	if (!l->nheap)
		return -1;
	now = ns_now_ns();
	at = l->heap[0]->at_ns;
	if (at <= now)
		return 0;
	ms = (at - now + NS_PER_MS - 1) / NS_PER_MS;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Runs the timers due now; those armed by the callbacks wait for the next round. */
static void run_timers(struct ns_loop *l)
{
	__u64 now = ns_now_ns();

	while (l->nheap && l->heap[0]->at_ns <= now) {
		struct ns_timer *t = l->heap[0];

		heap_remove(l, t);
		t->fn(l, t);
	}
}

/* ---- signals ---- */

static void on_signal(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			if (l->hup)
				*l->hup = true;
			if (l->hup_fn)
				l->hup_fn(l->hup_arg);
		} else if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
			*l->stop = true;
	}
}

void ns_loop_on_hup(struct ns_loop *l, void (*fn)(void *arg), void *arg)
{
	l->hup_fn = fn;
	l->hup_arg = arg;
}

int ns_loop_signals(struct ns_loop *l, volatile bool *stop, volatile bool *hup)
{
	sigset_t set;
	int err;

	if (l->sigs)
		return -EBUSY;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (hup || l->hup_fn)
		sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, &l->oldmask))
		return -errno;
	l->sigs = true;
	l->stop = stop;
	l->hup = hup;
	l->sigw.fn = on_signal;
	l->sigw.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigw.fd < 0)
		return -errno;
	err = ns_loop_add(l, &l->sigw, EPOLLIN);
	return err;
}

int ns_loop_run(struct ns_loop *l, volatile bool *stop)
{
	int i, n;

	while (!*stop) {
		n = epoll_wait(l->epfd, l->ev, LOOP_BATCH, next_timeout(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		l->nev = n;
		for (i = 0; i < n; i++) {
			struct ns_watch *w = l->ev[i].data.ptr;

			if (w)
				w->fn(l, w, l->ev[i].events);
		}
		l->nev = 0;
		run_timers(l);
	}
	return 0;
}
