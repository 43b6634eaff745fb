// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Prometheus text format (lib/prom.h). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "prom.h"

void ns_prom_hist_observe(struct ns_prom_hist *h, double v)
{
	unsigned int i = 0;

	while (i < h->n && v > h->le[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
}

void ns_prom_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void ns_prom_u64(FILE *f, const char *name, const char *type, const char *help,
		 unsigned long long v)
{
	ns_prom_head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, v);
}

void ns_prom_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void ns_prom_hist(FILE *f, const char *name, const char *help, const struct ns_prom_hist *h)
{
	unsigned long long cum = 0;
	unsigned int i;

	ns_prom_head(f, name, "histogram", help);
	for (i = 0; i < h->n; i++) {
		cum += h->bucket[i];
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], cum);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
	fprintf(f, "%s_sum %.9g\n", name, h->sum);
	fprintf(f, "%s_count %llu\n", name, (unsigned long long)h->count);
}

static int open_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own */
}

/* The boot time from /proc/stat, for the process's start time. */
static long long boot_time(void)
{
	char line[256];
	long long bt = -1;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

void ns_prom_process(FILE *f)
{
	unsigned long long utime, stime, start, vsize;
	long long rss, bt;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	char buf[1024], *p;
	FILE *st;
	size_t n;
	int fds;

	st = fopen("/proc/self/stat", "re");
	n = st ? fread(buf, 1, sizeof(buf) - 1, st) : 0;
	if (st)
		fclose(st);
	buf[n] = '\0';
	/* after "(comm)", which may hold spaces: state is field 3 */
	p = strrchr(buf, ')');
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
			"%*d %*d %*d %*d %*d %*d %llu %llu %lld", &utime, &stime, &start,
			&vsize, &rss) == 5 && hz > 0) {
		ns_prom_head(f, "process_cpu_seconds_total", "counter",
			     "User and system CPU time spent in seconds.");
		fprintf(f, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / hz);
		ns_prom_u64(f, "process_resident_memory_bytes", "gauge",
			    "Resident memory size in bytes.", (unsigned long long)rss * page);
		ns_prom_u64(f, "process_virtual_memory_bytes", "gauge",
			    "Virtual memory size in bytes.", vsize);
		bt = boot_time();
		if (bt >= 0) {
			ns_prom_head(f, "process_start_time_seconds", "gauge",
				     "Start time of the process since unix epoch in seconds.");
			fprintf(f, "process_start_time_seconds %.2f\n", bt + (double)start / hz);
		}
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		ns_prom_u64(f, "process_max_fds", "gauge",
			    "Maximum number of open file descriptors.",
			    (unsigned long long)rl.rlim_cur);
	fds = open_fds();
	if (fds >= 0)
		ns_prom_u64(f, "process_open_fds", "gauge", "Number of open file descriptors.",
			    fds);
}
