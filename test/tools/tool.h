/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every test and measurement tool (test/tools/, test/bench/bulk.c,
 * bench/nsperf.c) needs and each used to write again: the fatal error and
 * the monotonic clock in seconds. Header only: nsperf is built on its own.
 */
#ifndef NS_TOOL_H
#define NS_TOOL_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* "PROG: message" on stderr, then exit(status). */
__attribute__((noreturn, format(printf, 2, 3)))
static inline void die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* CLOCK_MONOTONIC in seconds. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif /* NS_TOOL_H */
