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

/* libbpf_set_print -> ns_log; libbpf's messages shown at NS_LOG_DEBUG (-vv) and above. */
void ns_log_route_libbpf(void);

#endif
