// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "log.h"

/* The logger's own state: the one static allowed in user space. */
static struct {
	const char *prog;
	int level;
} logger = { "natsplice", NS_LOG_WARN };

void ns_log_init(const char *prog, int level)
{
	if (prog)
		logger.prog = prog;
	if (level < NS_LOG_ERR)
		level = NS_LOG_ERR;
	logger.level = level;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

int ns_log_get_level(void)
{
	return logger.level;
}

static const char *level_word(int level)
{
	switch (level) {
	case NS_LOG_ERR:
		return "error: ";
	case NS_LOG_WARN:
		return "warning: ";
	case NS_LOG_INFO:
		return "";
	default:
		return "debug: ";
	}
}

static void vlog(int level, const char *fmt, va_list ap)
{
	if (level > logger.level)
		return;
	/* One fprintf per part is fine: stderr is line buffered. */
	fprintf(stderr, "%s: %s", logger.prog, level_word(level));
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void ns_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int ns_log_limited(struct ns_ratelog *rl, unsigned int burst, unsigned int interval_s,
		   unsigned long long now_ns, int level, const char *fmt, ...)
{
	unsigned int quiet = rl->quiet;
	char msg[1024];
	va_list ap;

	if (now_ns >= rl->window_end_ns) {
		rl->window_end_ns = now_ns + interval_s * 1000000000ULL;
		rl->lines = 0;
	}
	if (rl->lines >= burst) {
		rl->quiet++;
		return 0;
	}
	rl->lines++;
	rl->quiet = 0;
	if (level > logger.level)
		return 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (quiet)
		ns_log(level, "%s (and %u more such lines left out; at most %u every %u s)",
		       msg, quiet, burst, interval_s);
	else
		ns_log(level, "%s", msg);
	return 1;
}

/*
 * libbpf's warnings and info show at -vv, its debug output at -vvv. Even its
 * warnings wait for -vv because the caller reports the failure itself.
 * A message may hold many lines (the verifier log): prefix each one.
 */
static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	int level = lvl == LIBBPF_DEBUG ? NS_LOG_TRACE : NS_LOG_DEBUG;
	char *msg = NULL, *line, *save = NULL;

	if (level > logger.level)
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		ns_log(level, "%s", line);   /* already "libbpf: ..." */
	free(msg);
	return 0;
}

void ns_log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
