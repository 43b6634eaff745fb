// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loop: timers in deadline order (also hundreds of them, with cancels),
 * re-arming, cancelling, callbacks deleting and freeing their own or other
 * watches and timers, the stop flag and signals. Run with SAN=1 to catch a
 * freed watch or timer being touched.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <cmocka.h>

#include "loop.h"
#include "util.h"

#define MAX_FIRED 512

struct rec {
	struct ns_loop *l;
	volatile bool stop;
	int fired[MAX_FIRED];	/* ids in firing order */
	int n;
	int expect;		/* stop after this many */
};

struct tt {
	struct ns_timer t;	/* first: a timer pointer is a tt pointer */
	struct rec *r;
	int id;
	int rearm;		/* times left to re-arm */
	__u64 armed_at, delay_ms;
	struct tt *victim;	/* cancelled by this one's callback */
};

static void on_timer(struct ns_loop *l, struct ns_timer *t)
{
	struct tt *x = (struct tt *)t;
	struct rec *r = x->r;

	/* never early */
	assert_true(ns_now_ns() >= x->armed_at + x->delay_ms * 1000000ull);
	assert_int_equal(t->idx, -1);	/* not armed while running */
	assert_true(r->n < MAX_FIRED);
	r->fired[r->n++] = x->id;
	if (x->victim)
		ns_timer_cancel(l, &x->victim->t);
	if (x->rearm > 0) {
		x->rearm--;
		x->armed_at = ns_now_ns();
		ns_timer_arm(l, t, x->delay_ms);
	}
	if (r->n == r->expect)
		r->stop = true;
}

static void arm(struct ns_loop *l, struct tt *x, struct rec *r, int id, __u64 ms)
{
	ns_timer_init(&x->t, on_timer, x);
	x->r = r;
	x->id = id;
	x->delay_ms = ms;
	x->armed_at = ns_now_ns();
	ns_timer_arm(l, &x->t, ms);
}

static void test_timer_order(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct rec r = { .expect = 4 };
	struct tt t[4] = { 0 };

	assert_non_null(l);
	arm(l, &t[0], &r, 0, 30);
	arm(l, &t[1], &r, 1, 10);
	arm(l, &t[2], &r, 2, 20);
	arm(l, &t[3], &r, 3, 0);
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.fired[0], 3);
	assert_int_equal(r.fired[1], 1);
	assert_int_equal(r.fired[2], 2);
	assert_int_equal(r.fired[3], 0);
	ns_loop_free(l);
}

/* Hundreds of timers, a third cancelled: the rest fire in deadline order. */
static void test_timer_heap(void **state)
{
	struct ns_loop *l = ns_loop_new();
	static struct tt t[300];
	struct rec r = { 0 };
	__u64 at[300];
	int i, live = 0;

	srand(7);
	for (i = 0; i < 300; i++) {
		arm(l, &t[i], &r, i, rand() % 40);
		at[i] = t[i].t.at_ns;
	}
	/* re-arm some (later and earlier), cancel others */
	for (i = 0; i < 300; i += 7) {
		t[i].armed_at = ns_now_ns();
		t[i].delay_ms = rand() % 40;
		ns_timer_arm(l, &t[i].t, t[i].delay_ms);
		at[i] = t[i].t.at_ns;
	}
	for (i = 0; i < 300; i++) {
		if (i % 3 == 0)
			ns_timer_cancel(l, &t[i].t);
		else
			live++;
	}
	r.expect = live;
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.n, live);
	for (i = 0; i < r.n; i++) {
		assert_int_not_equal(r.fired[i] % 3, 0);
		if (i)
			assert_true(at[r.fired[i - 1]] <= at[r.fired[i]]);
	}
	ns_loop_free(l);
}

static void test_timer_rearm(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct rec r = { .expect = 5 };
	struct tt a = { 0 }, b = { 0 };
	int i, ones = 0;

	/* a re-arms itself three times (4 firings); b is moved from 5 ms to 25 ms */
	arm(l, &a, &r, 1, 2);
	a.rearm = 3;
	arm(l, &b, &r, 2, 5);
	b.armed_at = ns_now_ns();
	b.delay_ms = 25;
	ns_timer_arm(l, &b.t, 25);
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.n, 5);
	/* Counted, not ordered: a loaded machine may stall the loop past
	 * 25 ms, and then b is due before a's last re-arm (the callbacks
	 * check that none fires early). */
	for (i = 0; i < r.n; i++)
		ones += r.fired[i] == 1;
	assert_int_equal(ones, 4);
	assert_int_equal(r.fired[0], 1);
	assert_int_equal(a.t.idx, -1);
	ns_loop_free(l);
}

static void test_timer_cancel(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct rec r = { .expect = 2 };
	struct tt a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, never = { 0 };

	ns_timer_init(&never.t, on_timer, &never);
	ns_timer_cancel(l, &never.t);		/* never armed */
	arm(l, &a, &r, 1, 5);
	arm(l, &b, &r, 2, 10);
	arm(l, &c, &r, 3, 15);
	arm(l, &d, &r, 4, 20);
	ns_timer_cancel(l, &a.t);
	ns_timer_cancel(l, &a.t);		/* twice */
	assert_int_equal(a.t.idx, -1);
	b.victim = &c;				/* b's callback cancels c */
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.fired[0], 2);
	assert_int_equal(r.fired[1], 4);
	ns_loop_free(l);
}

/* Two timers due in the same round: the first to run cancels the other. */
static void test_timer_cancel_same_round(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct rec r = { .expect = 1 };
	struct tt a = { 0 }, b = { 0 }, stopper = { 0 };

	arm(l, &a, &r, 1, 0);
	arm(l, &b, &r, 2, 0);
	a.victim = &b;
	b.victim = &a;
	arm(l, &stopper, &r, 3, 20);
	r.expect = 2;
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.fired[1], 3);
	ns_loop_free(l);
}

/* A timer that frees itself (and one that frees another, still armed) in its callback. */
struct self_free {
	struct ns_timer t;
	struct ns_timer **other;
	volatile bool *stop;
};

static void free_self(struct ns_loop *l, struct ns_timer *t)
{
	struct self_free *s = t->data;

	if (*s->other) {
		ns_timer_cancel(l, *s->other);
		free((*s->other)->data);
		*s->other = NULL;
	}
	free(s);
}

static void stop_now(struct ns_loop *l, struct ns_timer *t)
{
	*(volatile bool *)t->data = true;
}

static void test_timer_free_in_callback(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct self_free *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct ns_timer *bt = &b->t, *none = NULL, stop_t;
	volatile bool stop = false;

	ns_timer_init(&a->t, free_self, a);
	ns_timer_init(&b->t, free_self, b);
	a->other = &bt;
	b->other = &none;
	ns_timer_arm(l, &a->t, 1);
	ns_timer_arm(l, &b->t, 2);
	ns_timer_init(&stop_t, stop_now, (void *)&stop);
	ns_timer_arm(l, &stop_t, 10);
	assert_int_equal(ns_loop_run(l, &stop), 0);
	assert_null(bt);
	ns_loop_free(l);
}

/* ---- watches ---- */

struct pw {
	struct ns_watch w;	/* first */
	int wfd;		/* the write end of its pipe */
	int calls;
	struct pw *other;
	bool del_other, del_self;
	struct rec *r;
};

static void on_read(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct pw *p = (struct pw *)w;
	char c;

	assert_true(events & EPOLLIN);
	assert_int_equal(read(w->fd, &c, 1), 1);
	p->calls++;
	p->r->fired[p->r->n++] = c;
	if (p->del_other && p->other) {
		ns_loop_del(l, &p->other->w);
		p->other = NULL;
	}
	if (p->del_self)
		ns_loop_del(l, w);
	if (p->r->n >= p->r->expect)
		p->r->stop = true;
}

static struct pw *pw_new(struct ns_loop *l, struct rec *r, char c)
{
	struct pw *p = calloc(1, sizeof(*p));
	int fds[2];

	assert_non_null(p);
	assert_int_equal(pipe(fds), 0);
	p->w.fn = on_read;
	p->w.fd = fds[0];
	p->w.data = p;
	p->wfd = fds[1];
	p->r = r;
	assert_int_equal(write(p->wfd, &c, 1), 1);
	assert_int_equal(ns_loop_add(l, &p->w, EPOLLIN), 0);
	return p;
}

static void pw_free(struct pw *p)
{
	close(p->w.fd);
	close(p->wfd);
	free(p);
}

/* Both readable in the same batch: whichever runs first deletes the other. */
static void test_watch_deletes_other(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct rec r = { .expect = 1 };
	struct pw *a = pw_new(l, &r, 'a'), *b = pw_new(l, &r, 'b');
	struct tt guard = { 0 };

	a->other = b;
	b->other = a;
	a->del_other = b->del_other = true;
	arm(l, &guard, &r, 'g', 30);	/* a second call would come before this */
	r.expect = 2;
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(a->calls + b->calls, 1);
	assert_int_equal(r.fired[1], 'g');
	pw_free(a);
	pw_free(b);
	ns_loop_free(l);
}

static void on_read_free_other(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct pw *p = (struct pw *)w;
	struct pw *o = p->other;
	char c;

	assert_int_equal(read(w->fd, &c, 1), 1);
	p->calls++;
	p->r->fired[p->r->n++] = c;
	if (o) {
		/* unlink both directions, then free: the loop must never call o again */
		o->other = NULL;
		p->other = NULL;
		ns_loop_del(l, &o->w);
		pw_free(o);
	}
}

/* The deleted watch is freed in the callback (ASan catches a later call). */
static void test_watch_frees_other(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct rec r = { 0 };
	struct pw *p[8];
	struct tt guard = { 0 };
	int i, survivors = 0;

	/* four pairs, all readable at once */
	for (i = 0; i < 8; i++) {
		p[i] = pw_new(l, &r, '0' + i);
		p[i]->w.fn = on_read_free_other;
	}
	for (i = 0; i < 8; i += 2) {
		p[i]->other = p[i + 1];
		p[i + 1]->other = p[i];
	}
	arm(l, &guard, &r, 'g', 30);
	r.expect = 5;
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.n, 5);
	assert_int_equal(r.fired[4], 'g');
	/* one of each pair ran and freed its partner */
	for (i = 0; i < 4; i++) {
		int c = r.fired[i] - '0';

		assert_true(c >= 0 && c < 8);
		ns_loop_del(l, &p[c]->w);
		pw_free(p[c]);
		survivors++;
	}
	assert_int_equal(survivors, 4);
	ns_loop_free(l);
}

static void test_watch_del_self_and_mod(void **state)
{
	struct ns_loop *l = ns_loop_new();
	struct rec r = { 0 };
	struct pw *a = pw_new(l, &r, 'a');
	struct tt guard = { 0 };

	/* a deletes itself: its still-readable pipe is not reported again */
	assert_int_equal(write(a->wfd, "x", 1), 1);
	a->del_self = true;
	arm(l, &guard, &r, 'g', 20);
	r.expect = 2;
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(a->calls, 1);
	assert_int_equal(r.fired[1], 'g');

	/* add again, then mod to 0 events: silent; mod back: reported */
	a->del_self = false;
	assert_int_equal(ns_loop_add(l, &a->w, EPOLLIN), 0);
	assert_int_equal(ns_loop_add(l, &a->w, EPOLLIN), -EEXIST);
	assert_int_equal(ns_loop_mod(l, &a->w, 0), 0);
	r.n = 0;
	r.stop = false;
	arm(l, &guard, &r, 'g', 10);
	r.expect = 1;
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.fired[0], 'g');
	assert_int_equal(ns_loop_mod(l, &a->w, EPOLLIN), 0);
	r.n = 0;
	r.stop = false;
	assert_int_equal(ns_loop_run(l, &r.stop), 0);
	assert_int_equal(r.fired[0], 'x');
	assert_int_equal(a->calls, 2);
	ns_loop_del(l, &a->w);
	pw_free(a);
	ns_loop_free(l);
}

static void test_stop(void **state)
{
	struct ns_loop *l = ns_loop_new();
	volatile bool stop = true;
	struct ns_timer t;

	/* already stopped: returns at once, even with nothing to wait for */
	assert_int_equal(ns_loop_run(l, &stop), 0);
	/* a timer stops it */
	stop = false;
	ns_timer_init(&t, stop_now, (void *)&stop);
	ns_timer_arm(l, &t, 5);
	assert_int_equal(ns_loop_run(l, &stop), 0);
	assert_true(stop);
	ns_loop_free(l);
	ns_loop_free(NULL);
}

static void raise_sig(struct ns_loop *l, struct ns_timer *t)
{
	raise((int)(long)t->data);
}

static void test_signals(void **state)
{
	struct ns_loop *l = ns_loop_new();
	volatile bool stop = false, hup = false;
	struct ns_timer th, tt;
	sigset_t cur;

	assert_int_equal(ns_loop_signals(l, &stop, &hup), 0);
	ns_timer_init(&th, raise_sig, (void *)(long)SIGHUP);
	ns_timer_init(&tt, raise_sig, (void *)(long)SIGTERM);
	ns_timer_arm(l, &th, 1);
	ns_timer_arm(l, &tt, 10);
	assert_int_equal(raise(SIGPIPE), 0);	/* ignored */
	assert_int_equal(ns_loop_run(l, &stop), 0);
	assert_true(hup);
	assert_true(stop);
	ns_loop_free(l);
	/* the signal mask is restored */
	sigprocmask(SIG_BLOCK, NULL, &cur);
	assert_false(sigismember(&cur, SIGTERM));
	assert_false(sigismember(&cur, SIGHUP));
	signal(SIGPIPE, SIG_DFL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_heap),
		cmocka_unit_test(test_timer_rearm),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_cancel_same_round),
		cmocka_unit_test(test_timer_free_in_callback),
		cmocka_unit_test(test_watch_deletes_other),
		cmocka_unit_test(test_watch_frees_other),
		cmocka_unit_test(test_watch_del_self_and_mod),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_signals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
