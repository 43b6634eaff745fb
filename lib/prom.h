/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Prometheus text exposition format (version 0.0.4): HELP and TYPE
 * lines, label values, histograms, and the process_* families every
 * Prometheus client exports. For the daemons' /metrics.
 */
#ifndef NS_LIB_PROM_H
#define NS_LIB_PROM_H

#include <stdio.h>
#include <linux/types.h>

#define NS_PROM_BUCKETS_MAX 16

/* A histogram kept by a daemon: bucket[i] counts the observations in
 * (le[i-1], le[i]], bucket[n] those above le[n-1]; written cumulative. */
struct ns_prom_hist {
	const double *le;	/* n upper bounds, ascending */
	unsigned int n;		/* <= NS_PROM_BUCKETS_MAX - 1 */
	__u64 bucket[NS_PROM_BUCKETS_MAX];
	__u64 count;
	double sum;
};

void ns_prom_hist_observe(struct ns_prom_hist *h, double v);

/* "# HELP name help" and "# TYPE name type". */
void ns_prom_head(FILE *f, const char *name, const char *type, const char *help);
/* A family of one sample without labels. */
void ns_prom_u64(FILE *f, const char *name, const char *type, const char *help,
		 unsigned long long v);
/* A label value: backslash, double quote and newline escaped. */
void ns_prom_label(FILE *f, const char *s);
/* A histogram family: _bucket{le=...} (cumulative, +Inf last), _sum, _count. */
void ns_prom_hist(FILE *f, const char *name, const char *help, const struct ns_prom_hist *h);
/* process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds, process_max_fds,
 * and process_open_fds where /proc/self/fd is readable (not once a daemon
 * changed its user: the kernel makes it root's then). */
void ns_prom_process(FILE *f);

#endif
