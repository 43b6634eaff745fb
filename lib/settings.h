/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A daemon's settings, each described once (name, type, field, range, help)
 * in a table that drives getopt_long, the YAML keys, --help and -n, as
 * xdp-tools' DEFINE_OPTION does. A setting's name is its long option and its
 * YAML key; there is one key style: dashes. Structured YAML keys (lists,
 * maps) stay with the daemon, which reads them from the same tree.
 */
#ifndef NS_SETTINGS_H
#define NS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

struct option;
struct yc_node;

/* Warnings about a configuration that loads but is not safe (ns_settings.warn). */
#define NS_WARN_MAX	8
#define NS_WARN_LEN	320
struct ns_warnings {
	char msg[NS_WARN_MAX][NS_WARN_LEN];
	size_t n;		/* may exceed NS_WARN_MAX: the rest were dropped */
};
void ns_warn(struct ns_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A secret shorter than this is refused by the broker, and one shorter
 * than NS_SECRET_GOOD is warned about by every daemon. */
#define NS_SECRET_MIN	8	/* (the warnings spell it out: "8 bytes") */
#define NS_SECRET_GOOD	16
/* A listener's tokens (http-tokens, metrics-tokens) matter off loopback:
 * true if ss (len 0: none) is bound to a non-loopback address. */
bool ns_sockaddr_exposed(const void *ss, unsigned int len);

enum ns_set_type {
	NS_SET_STR,		/* char[size]: 1..size-1 bytes */
	NS_SET_U32,		/* __u32 in min..max */
	NS_SET_SECONDS,		/* __u32 in min..max seconds */
	NS_SET_ENUM,		/* index into names, in a field of 1, 2 or 4 bytes */
	NS_SET_FLAG,		/* bool; no argument on the command line, true/false in YAML */
	NS_SET_SOCKADDR,	/* IP:PORT into a sockaddr_storage, its length at len_off */
	NS_SET_FUNC,		/* parse() decides */
};

/* ns_setting.flags */
#define NS_SET_REQUIRED	0x1	/* -n and start-up fail while the field is unset
				   (STR, FUNC with a string field: empty; SOCKADDR: no length) */
#define NS_SET_REPEAT	0x2	/* FUNC: the option may repeat; in YAML a value or a list */
#define NS_SET_CMDLINE	0x4	/* an action on the command line only, not a YAML key */

struct ns_setting {
	const char *name;	/* long option and YAML key */
	int short_opt;		/* 0: a long option only */
	enum ns_set_type type;
	size_t off, size;	/* the field in the config struct (NS_FIELD) */
	size_t len_off;		/* SOCKADDR: the socklen_t field */
	__u32 min, max;		/* U32, SECONDS: the range */
	__u16 port;		/* SOCKADDR: default port (0: the port is required) */
	const char *const *names;	/* ENUM: NULL-terminated, index = value */
	/* FUNC: 0, or -EINVAL with msg written (left empty: the generic
	 * "bad value for NAME: 'VAL' (what)") */
	int (*parse)(void *cfg, const char *val, char *msg, size_t len);
	const char *what;	/* FUNC: what a value looks like, for errors */
	const char *arg;	/* the argument in --help ("SEC"); unused for FLAG */
	const char *help;	/* one or more sentences, wrapped by --help */
	const char *old_name;	/* a deprecated YAML spelling, still accepted with a note */
	unsigned int flags;	/* NS_SET_* */
};

#define NS_FIELD(type, field) \
	.off = offsetof(type, field), .size = sizeof(((type *)0)->field)

/* ns_settings.opts: which of the common options the daemon takes. -f, -n,
 * -v and -h are always there. */
#define NS_OPT_DETACH	0x1	/* -d, --detach */
#define NS_OPT_VERSION	0x2	/* -V, --version */

struct ns_settings {
	const char *prog;		/* "natsplice-agent": messages, the logger */
	const char *usage;		/* --help before the options */
	const char *footer;		/* --help after them, or NULL */
	const struct ns_setting *set;	/* ends with { .name = NULL } */
	const char *const *file_keys;	/* structured YAML keys read by load_tree, or NULL */
	unsigned int opts;		/* NS_OPT_* */
	const char *config_default;	/* read when there is no -f (NULL: none) */
	const char *version;		/* -V prints "prog version" */
	/* The file's structured keys, after its scalar ones: 0 or -errno
	 * with err "file:line:col: ..." (-ENOMEM: err may be empty). */
	int (*load_tree)(void *cfg, const struct yc_node *root, char *err, size_t len);
	/* After the file and the command line: 0 or -EINVAL with err. */
	int (*check)(void *cfg, char *err, size_t len);
	/* After check(): what works but is not safe, one ns_warn() each;
	 * printed as "prog: warning: ..." by -n and at start, logged by a
	 * reload. NULL: none. */
	void (*warn)(const void *cfg, struct ns_warnings *w);
};

/* What every daemon's command line has besides its settings. */
struct ns_cmdline {
	const char *config;	/* -f FILE */
	bool check;		/* -n */
	bool detach;		/* -d */
	int verbose;		/* -v, repeatable; counts on from the caller's value */
};

/*
 * defaults already in cfg; then the file (-f, or config_default), then the
 * settings on the command line, then check(); -h, -V and -n end here.
 * Returns 0 to run, or 1 with the exit status in *status: 0 after --help,
 * -V, or -n's "configuration OK"; 1 for a bad file, 2 for a bad command
 * line, each message printed on stderr.
 */
int ns_settings_parse(const struct ns_settings *s, void *cfg, struct ns_cmdline *cl,
		      int argc, char **argv, int *status);

/*
 * SIGHUP: cfg (defaults already in it, nothing else) from the file at path
 * (NULL: none), then argv's settings again (the command line keeps
 * overriding the file), then the required ones and check(). 0, or -errno
 * with err ("file:line:col: ..."); cfg is the caller's to free either way.
 */
int ns_settings_reload(const struct ns_settings *s, void *cfg, const char *path, int argc,
		       char **argv, char *err, size_t len);

/* The pieces, for the daemons' loaders and the tests. */

/* getopt_long's table (malloc'd, NULL-terminated) and short options
 * (malloc'd): the settings and the common options. 0 or -ENOMEM. */
int ns_settings_options(const struct ns_settings *s, struct option **opts, char **shortopts);
/* One setting from a string: 0 or -EINVAL with msg ("unknown setting 'foo'",
 * "bad value for close-grace: 'x' (seconds, 0-604800)"). */
int ns_settings_set(const struct ns_settings *s, void *cfg, const char *name, const char *val,
		    char *msg, size_t len);
/* A YAML map: unknown top-level keys are errors, the table's keys are set,
 * file_keys are left for load_tree. 0 or -EINVAL with err "file:line:col: ...". */
int ns_settings_yaml(const struct ns_settings *s, void *cfg, const struct yc_node *root,
		     char *err, size_t len);
/* NS_SET_REQUIRED settings still unset: -EINVAL with err naming the first. */
int ns_settings_required(const struct ns_settings *s, const void *cfg, char *err, size_t len);
/* The --help text: usage, the options aligned and wrapped, footer. */
void ns_settings_usage(const struct ns_settings *s, FILE *f);

/*
 * key of map, or its deprecated spelling old (with a note on stderr naming
 * file:line:col and the new spelling). *out NULL if neither is there; both
 * at once is an error. 0 or -EINVAL with err.
 */
int ns_settings_key(const struct yc_node *map, const char *key, const char *old,
		    const struct yc_node **out, char *err, size_t len);

#endif
