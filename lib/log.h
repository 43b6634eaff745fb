/* SPDX-License-Identifier: GPL-2.0 */
/* One leveled logger per binary: "prog: level: message" on stderr. */
#ifndef NS_LOG_H
#define NS_LOG_H

enum ns_log_level { NS_LOG_ERR, NS_LOG_WARN, NS_LOG_INFO, NS_LOG_DEBUG, NS_LOG_TRACE };

/* level: NS_LOG_WARN + number of -v; prog is kept by pointer (pass argv[0] or a literal). */
void ns_log_init(const char *prog, int level);
/* Current level, so callers can skip expensive formatting. */
int ns_log_get_level(void);
void ns_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   ns_log(NS_LOG_ERR, __VA_ARGS__)
#define log_warn(...)  ns_log(NS_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ns_log(NS_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ns_log(NS_LOG_DEBUG, __VA_ARGS__)
#define log_trace(...) ns_log(NS_LOG_TRACE, __VA_ARGS__)

/*
 * A line that an attacker can repeat at will (a failed login, a refused
 * connection) goes through a struct ns_ratelog of its own: at most burst
 * lines per interval_s seconds; the rest are counted, and the next line
 * that is written says how many were left out. Zero-initialise it.
 */
struct ns_ratelog {
	unsigned long long window_end_ns;	/* CLOCK_MONOTONIC */
	unsigned int lines;			/* written in this window */
	unsigned int quiet;			/* left out since the last one written */
};
/* Write the line (1) or count it (0). now_ns: ns_now_ns(). */
int ns_log_limited(struct ns_ratelog *rl, unsigned int burst, unsigned int interval_s,
		   unsigned long long now_ns, int level, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* libbpf_set_print -> ns_log; libbpf's messages shown at NS_LOG_DEBUG (-vv) and above. */
void ns_log_route_libbpf(void);

#endif
