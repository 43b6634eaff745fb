// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* One table of settings for getopt_long, the YAML keys, --help and -n. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "settings.h"
#include "log.h"
#include "util.h"
#include "yconf.h"

#define HELP_COL	28	/* where the help sentences start */
#define HELP_WIDTH	79
#define OPT_SETTING	256	/* getopt's value for set[i] without a short option: 256 + i */
#define OPT_MAN		200	/* --man SECTION: getopt's value (no short option) */

/* The options every daemon has besides its settings. */
static const struct common_opt {
	const char *name;
	int short_opt;
	const char *arg;
	unsigned int needs;	/* NS_OPT_* bit, 0: always there */
	const char *help;	/* NULL: hidden from --help */
} common[] = {
	{ "config", 'f', "FILE", 0,
	  "read the settings from this YAML file first; the command line overrides it" },
	{ "check", 'n', NULL, 0, "check the settings, print \"configuration OK\", exit" },
	{ "detach", 'd', NULL, NS_OPT_DETACH,
	  "detach: run in the background; the command exits 0 once the daemon is ready "
	  "(its \"ready\" line), non-zero if start-up failed. Logs still go to stderr. "
	  "Without -d the daemon stays in the foreground, logging to stderr (for systemd "
	  "and supervisors)" },
	{ "verbose", 'v', NULL, 0, "more log output (repeatable)" },
	{ "version", 'V', NULL, NS_OPT_VERSION, "print the version" },
	{ "help", 'h', NULL, 0, "this text" },
	/* for mk/man.sh: the man pages' option and key lists come from this table */
	{ "man", OPT_MAN, "SECTION", 0, NULL },
};
#define NCOMMON (sizeof(common) / sizeof(common[0]))

static bool common_on(const struct ns_settings *s, const struct common_opt *c)
{
	return !c->needs || (s->opts & c->needs);
}

static size_t nset(const struct ns_settings *s)
{
	size_t n = 0;

	while (s->set[n].name)
		n++;
	return n;
}

static void *field(void *cfg, const struct ns_setting *st)
{
	return (char *)cfg + st->off;
}

int ns_settings_options(const struct ns_settings *s, struct option **opts, char **shortopts)
{
	size_t n = nset(s), i, k = 0;
	struct option *o = calloc(n + NCOMMON + 1, sizeof(*o));
	char *so = calloc(2 * (n + NCOMMON) + 2, 1), *p = so;

	if (!o || !so) {
		free(o);
		free(so);
		return -ENOMEM;
	}
	/* ':' first: a missing argument is told apart from an unknown option */
	*p++ = ':';
	for (i = 0; i < n; i++) {
		const struct ns_setting *st = &s->set[i];
		int arg = st->type == NS_SET_FLAG ? no_argument : required_argument;

		o[k++] = (struct option){ st->name, arg, NULL,
					  st->short_opt ? st->short_opt : OPT_SETTING + (int)i };
		if (st->short_opt) {
			*p++ = st->short_opt;
			if (arg == required_argument)
				*p++ = ':';
		}
	}
	for (i = 0; i < NCOMMON; i++) {
		const struct common_opt *c = &common[i];

		if (!common_on(s, c))
			continue;
		o[k++] = (struct option){ c->name, c->arg ? required_argument : no_argument, NULL,
					  c->short_opt };
		if (c->short_opt == OPT_MAN)
			continue;
		*p++ = c->short_opt;
		if (c->arg)
			*p++ = ':';
	}
	*opts = o;
	*shortopts = so;
	return 0;
}

static const struct ns_setting *find(const struct ns_settings *s, const char *name)
{
	const struct ns_setting *st;

	for (st = s->set; st->name; st++)
		if (!strcmp(st->name, name))
			return st;
	return NULL;
}

/* "a, b or c" */
static void names_list(const char *const *names, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; names[i] && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i == 0 ? "" : names[i + 1] ? ", " :
				" or ", names[i]);
}

/* What a good value looks like, for "bad value for NAME: 'VAL' (...)". */
static void describe(const struct ns_setting *st, char *buf, size_t len)
{
	unsigned int p = st->port ? st->port : 8080;

	switch (st->type) {
	case NS_SET_STR:
		snprintf(buf, len, "1-%zu characters", st->size - 1);
		break;
	case NS_SET_U32:
		snprintf(buf, len, "%u-%u", st->min, st->max);
		break;
	case NS_SET_SECONDS:
		snprintf(buf, len, "seconds, %u-%u", st->min, st->max);
		break;
	case NS_SET_FLAG:
		snprintf(buf, len, "true or false");
		break;
	case NS_SET_SOCKADDR:
		snprintf(buf, len, "%s, e.g. 192.0.2.1:%u or [2001:db8::1]:%u",
			 st->port ? "IP or IP:PORT" : "IP:PORT", p, p);
		break;
	default:
		snprintf(buf, len, "%s", st->what ? st->what : "see --help");
	}
}

static int set_u32(const struct ns_setting *st, void *cfg, const char *val)
{
	__u32 v;

	if (st->size != sizeof(__u32) || ns_parse_u32(val, &v) || v < st->min || v > st->max)
		return -EINVAL;
	*(__u32 *)field(cfg, st) = v;
	return 0;
}

static int set_enum(const struct ns_setting *st, void *cfg, const char *val, char *msg,
		    size_t len)
{
	char list[256];
	size_t i;

	for (i = 0; st->names[i]; i++) {
		if (strcmp(val, st->names[i]))
			continue;
		if (st->size == 1)
			*(__u8 *)field(cfg, st) = i;
		else if (st->size == 2)
			*(__u16 *)field(cfg, st) = i;
		else
			*(__u32 *)field(cfg, st) = i;
		return 0;
	}
	names_list(st->names, list, sizeof(list));
	snprintf(msg, len, "%s must be %s, not '%s'", st->name, list, val);
	return -EINVAL;
}

static int set_flag(const struct ns_setting *st, void *cfg, const char *val)
{
	static const char *const yes[] = { "true", "yes", "on", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "0", NULL };
	size_t i;

	for (i = 0; yes[i]; i++) {
		if (!strcmp(val, yes[i]) || !strcmp(val, no[i])) {
			*(bool *)field(cfg, st) = !strcmp(val, yes[i]);
			return 0;
		}
	}
	return -EINVAL;
}

static int set_sockaddr(const struct ns_setting *st, void *cfg, const char *val)
{
	struct sockaddr_storage *ss = field(cfg, st);
	socklen_t *sl = (socklen_t *)((char *)cfg + st->len_off);
	__u8 family;
	__u32 addr[4];
	__be16 port;

	if (ns_parse_sockaddr(val, st->port != 0, ss, sl))
		return -EINVAL;
	ns_sockaddr_split(ss, &family, addr, &port);
	if (!port)
		*sl = ns_sockaddr_make(family, addr, htons(st->port), ss);
	return 0;
}

/* One value into its field: 0 or -EINVAL with msg. */
static int set_one(const struct ns_setting *st, void *cfg, const char *val, char *msg, size_t len)
{
	char what[128];
	int ret = -EINVAL;

	msg[0] = '\0';
	switch (st->type) {
	case NS_SET_STR:
		if (*val && strlen(val) < st->size) {
			snprintf(field(cfg, st), st->size, "%s", val);
			ret = 0;
		}
		break;
	case NS_SET_U32:
	case NS_SET_SECONDS:
		ret = set_u32(st, cfg, val);
		break;
	case NS_SET_ENUM:
		ret = set_enum(st, cfg, val, msg, len);
		break;
	case NS_SET_FLAG:
		ret = set_flag(st, cfg, val);
		break;
	case NS_SET_SOCKADDR:
		ret = set_sockaddr(st, cfg, val);
		break;
	case NS_SET_FUNC:
		ret = st->parse(cfg, val, msg, len);
		break;
	}
	if (ret && !msg[0]) {
		describe(st, what, sizeof(what));
		snprintf(msg, len, "bad value for %s: '%s' (%s)", st->name, val, what);
	}
	return ret;
}

int ns_settings_set(const struct ns_settings *s, void *cfg, const char *name, const char *val,
		    char *msg, size_t len)
{
	const struct ns_setting *st = find(s, name);

	if (!st) {
		snprintf(msg, len, "unknown setting '%s'", name);
		return -EINVAL;
	}
	return set_one(st, cfg, val, msg, len);
}

int ns_settings_key(const struct yc_node *map, const char *key, const char *old,
		    const struct yc_node **out, char *err, size_t len)
{
	const struct yc_node *n = yc_get(map, key), *o = old ? yc_get(map, old) : NULL;
	size_t i;

	*out = n;
	if (!o)
		return 0;
	for (i = 0; i < map->n && map->items[i] != o; i++)
		;
	if (n)
		return yc_error(map->key_nodes[i], err, len, "'%s' and '%s' are the same setting",
				old, key);
	/* One note per use, at the key, so the file can be fixed line by line. */
	log_warn("%s:%d:%d: '%s' is deprecated: write '%s'",
		 map->file ? map->file : "<config>", map->key_nodes[i]->line,
		 map->key_nodes[i]->col, old, key);
	*out = o;
	return 0;
}

static bool file_key(const struct ns_settings *s, const char *key)
{
	const struct ns_setting *st;
	const char *const *k;

	for (st = s->set; st->name; st++)
		if (!(st->flags & NS_SET_CMDLINE) &&
		    (!strcmp(st->name, key) || (st->old_name && !strcmp(st->old_name, key))))
			return true;
	for (k = s->file_keys; k && *k; k++)
		if (!strcmp(*k, key))
			return true;
	return false;
}

/* One YAML value (a list item too) into its field. */
static int set_node(const struct ns_setting *st, void *cfg, const struct yc_node *n, char *err,
		    size_t len)
{
	char msg[512];
	const char *v;
	int b, ret;

	if (st->type == NS_SET_FLAG) {
		ret = yc_bool(n, &b, err, len);
		if (!ret)
			*(bool *)field(cfg, st) = b;
		return ret;
	}
	ret = yc_scalar(n, &v, err, len);
	if (!ret && set_one(st, cfg, v, msg, sizeof(msg)))
		ret = yc_error(n, err, len, "%s", msg);
	return ret;
}

int ns_settings_yaml(const struct ns_settings *s, void *cfg, const struct yc_node *root,
		     char *err, size_t len)
{
	const struct ns_setting *st;
	const struct yc_node *n;
	size_t i;
	int ret;

	if (root->kind != YC_MAP)
		return yc_error(root, err, len, "expected a mapping of settings");
	for (i = 0; i < root->n; i++)
		if (!file_key(s, root->keys[i]))
			return yc_error(root->key_nodes[i], err, len, "unknown setting '%s'",
					root->keys[i]);
	ret = 0;
	for (st = s->set; !ret && st->name; st++) {
		if (st->flags & NS_SET_CMDLINE)
			continue;
		ret = ns_settings_key(root, st->name, st->old_name, &n, err, len);
		if (ret || !n)
			continue;
		if (n->kind == YC_SEQ && (st->flags & NS_SET_REPEAT))
			for (i = 0; !ret && i < n->n; i++)
				ret = set_node(st, cfg, n->items[i], err, len);
		else
			ret = set_node(st, cfg, n, err, len);
	}
	if (!ret && s->load_tree)
		ret = s->load_tree(cfg, root, err, len);
	return ret;
}

int ns_settings_required(const struct ns_settings *s, const void *cfg, char *err, size_t len)
{
	const struct ns_setting *st;

	for (st = s->set; st->name; st++) {
		const char *p = (const char *)cfg;
		bool unset;

		if (!(st->flags & NS_SET_REQUIRED))
			continue;
		if (st->type == NS_SET_SOCKADDR)
			unset = !*(const socklen_t *)(p + st->len_off);
		else
			unset = !p[st->off];
		if (unset) {
			snprintf(err, len, "needs --%s %s (or '%s:' in the file)", st->name,
				 st->arg ? st->arg : "", st->name);
			return -EINVAL;
		}
	}
	return 0;
}

/* "  --name ARG", then the help from HELP_COL, wrapped at HELP_WIDTH. */
static void print_opt(FILE *f, int short_opt, const char *name, const char *arg,
		      const char *help)
{
	int col = 2, wlen;
	const char *p = help, *w;
	bool first = true;

	fputs("  ", f);
	if (short_opt)
		col += fprintf(f, "-%c, ", short_opt);
	col += fprintf(f, "--%s%s%s", name, arg ? " " : "", arg ? arg : "");
	if (col > HELP_COL - 2) {
		fputs("  ", f);
		col += 2;
	}
	for (; col < HELP_COL; col++)
		fputc(' ', f);
	while (*p) {
		while (*p == ' ')
			p++;
		for (w = p; *p && *p != ' '; p++)
			;
		wlen = p - w;
		if (!wlen)
			break;
		if (!first && col + 1 + wlen > HELP_WIDTH) {
			fprintf(f, "\n%*s", HELP_COL, "");
			col = HELP_COL;
			first = true;
		}
		col += fprintf(f, "%s%.*s", first ? "" : " ", wlen, w);
		first = false;
	}
	fputc('\n', f);
}

void ns_settings_usage(const struct ns_settings *s, FILE *f)
{
	const struct ns_setting *st;
	char help[512];
	size_t i;

	fputs(s->usage, f);
	fputs("\nOptions (each setting is also a key of the YAML file, in the same spelling):\n",
	      f);
	for (st = s->set; st->name; st++)
		print_opt(f, st->short_opt, st->name, st->type == NS_SET_FLAG ? NULL : st->arg,
			  st->help);
	for (i = 0; i < NCOMMON; i++) {
		const struct common_opt *c = &common[i];

		if (!common_on(s, c) || !c->help)
			continue;
		snprintf(help, sizeof(help), "%s", c->help);
		if (c->short_opt == 'f' && s->config_default)
			snprintf(help, sizeof(help), "%s (default %s)", c->help,
				 s->config_default);
		print_opt(f, c->short_opt, c->name, c->arg, help);
	}
	if (s->footer)
		fprintf(f, "\n%s", s->footer);
}

/* Text for roff: '\' and '-' escaped, a line never starting with '.' or '\''. */
static void roff(FILE *f, const char *t)
{
	if (*t == '.' || *t == '\'')
		fputs("\\&", f);
	for (; *t; t++) {
		if (*t == '\\')
			fputs("\\e", f);
		else if (*t == '-')
			fputs("\\-", f);
		else
			fputc(*t, f);
	}
}

/* One entry: "-s, --name ARG" (section 8) or "name: ARG" (section 5), its help
 * and, where the table knows them, the values it takes. */
static void man_entry(FILE *f, bool keys, int short_opt, const char *name, const char *arg,
		      const char *help, const struct ns_setting *st)
{
	char what[256] = "";

	fputs(".TP\n", f);
	if (keys) {
		fputs("\\fB", f);
		roff(f, name);
		fputs(":\\fR", f);
	} else {
		if (short_opt)
			fprintf(f, "\\fB\\-%c\\fR, ", short_opt);
		fputs("\\fB\\-\\-", f);
		roff(f, name);
		fputs("\\fR", f);
	}
	if (arg || keys) {
		fputs(" \\fI", f);
		roff(f, arg ? arg : "true|false");
		fputs("\\fR", f);
	}
	fputc('\n', f);
	roff(f, help);
	if (st && (st->type == NS_SET_U32 || st->type == NS_SET_SECONDS ||
		   st->type == NS_SET_SOCKADDR || (st->type == NS_SET_FUNC && st->what)))
		describe(st, what, sizeof(what));
	if (st && st->type == NS_SET_ENUM)
		names_list(st->names, what, sizeof(what));
	if (*what) {
		fputs(help[strlen(help) - 1] == '.' ? " Values: " : ". Values: ", f);
		roff(f, what);
	}
	if (st && (st->flags & NS_SET_REPEAT))
		fputs(keys ? "; one value or a list" : "; may be repeated", f);
	fputs(*what || help[strlen(help) - 1] != '.' ? ".\n" : "\n", f);
}

/* --man 8: the options as roff .TP entries; --man 5: the file's scalar keys.
 * The pages around them are man/NAME.in (mk/man.sh). 0, or -EINVAL for another
 * section. */
static int man_list(const struct ns_settings *s, const char *section, FILE *f)
{
	bool keys = !strcmp(section, "5");
	const struct ns_setting *st;
	size_t i;

	if (!keys && strcmp(section, "8"))
		return -EINVAL;
	for (st = s->set; st->name; st++)
		if (!keys || !(st->flags & NS_SET_CMDLINE))
			man_entry(f, keys, st->short_opt, st->name,
				  st->type == NS_SET_FLAG ? NULL : st->arg, st->help, st);
	for (i = 0; !keys && i < NCOMMON; i++) {
		const struct common_opt *c = &common[i];
		char help[512];

		if (!common_on(s, c) || !c->help)
			continue;
		snprintf(help, sizeof(help), "%s", c->help);
		if (c->short_opt == 'f' && s->config_default)
			snprintf(help, sizeof(help), "%s (default %s)", c->help, s->config_default);
		man_entry(f, false, c->short_opt, c->name, c->arg, help, NULL);
	}
	return 0;
}

static int load_file(const struct ns_settings *s, void *cfg, const char *path, char *err,
		     size_t len)
{
	struct yc_node *root = NULL;
	int ret;

	err[0] = '\0';
	ret = yc_load_file(path, &root, err, len);
	if (!ret)
		ret = ns_settings_yaml(s, cfg, root, err, len);
	if (ret == -ENOMEM && !err[0])
		snprintf(err, len, "out of memory");
	yc_free(root);
	return ret;
}

static const struct ns_setting *by_opt(const struct ns_settings *s, int opt)
{
	const struct ns_setting *st;

	if (opt >= OPT_SETTING)
		return &s->set[opt - OPT_SETTING];
	for (st = s->set; st->name; st++)
		if (st->short_opt == opt)
			return st;
	return NULL;
}

/* Pass 1: -h, -V and -f, so that the file comes before the command line. */
static int first_pass(const struct ns_settings *s, struct ns_cmdline *cl, int argc,
		      char **argv, const struct option *o, const char *so, int *status)
{
	int opt;

	opterr = 0;
	optind = 0;	/* 0: getopt starts afresh (another caller may have used it) */
	while ((opt = getopt_long(argc, argv, so, o, NULL)) != -1) {
		if (opt == 'f') {
			cl->config = optarg;
		} else if (opt == 'h') {
			ns_settings_usage(s, stdout);
			*status = 0;
			return 1;
		} else if (opt == OPT_MAN) {
			*status = man_list(s, optarg, stdout) ? 2 : 0;
			if (*status)
				fprintf(stderr, "%s: --man takes 5 or 8\n", s->prog);
			return 1;
		} else if (opt == 'V' && (s->opts & NS_OPT_VERSION)) {
			printf("%s %s\n", s->prog, s->version ? s->version : "");
			*status = 0;
			return 1;
		}
	}
	return 0;
}

/* Pass 2: the settings over the file's, and -n, -d, -v. */
static int second_pass(const struct ns_settings *s, void *cfg, struct ns_cmdline *cl,
		       int argc, char **argv, const struct option *o, const char *so)
{
	const struct ns_setting *st;
	char msg[512];
	int opt;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, so, o, NULL)) != -1) {
		switch (opt) {
		case 'f':
			continue;
		case 'n':
			cl->check = true;
			continue;
		case 'd':
			cl->detach = true;
			continue;
		case 'v':
			cl->verbose++;
			continue;
		case ':':
			fprintf(stderr, "%s: %s needs a value\n", s->prog, argv[optind - 1]);
			return -EINVAL;
		case '?':
			/* optopt: the letter of an unknown short option (it may
			 * sit in a cluster such as -vx), 0 for a long one */
			if (optopt)
				fprintf(stderr, "%s: unknown option '-%c'\n", s->prog, optopt);
			else
				fprintf(stderr, "%s: unknown option '%s'\n", s->prog,
					argv[optind - 1]);
			return -EINVAL;
		}
		st = by_opt(s, opt);
		if (!st) {
			fprintf(stderr, "%s: unknown option '%s'\n", s->prog, argv[optind - 1]);
			return -EINVAL;
		}
		if (set_one(st, cfg, st->type == NS_SET_FLAG ? "true" : optarg, msg,
			    sizeof(msg))) {
			fprintf(stderr, "%s: %s\n", s->prog, msg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", s->prog, argv[optind]);
		return -EINVAL;
	}
	return 0;
}

void ns_warn(struct ns_warnings *w, const char *fmt, ...)
{
	va_list ap;

	if (w->n < NS_WARN_MAX) {
		va_start(ap, fmt);
		vsnprintf(w->msg[w->n], sizeof(w->msg[w->n]), fmt, ap);
		va_end(ap);
	}
	w->n++;
}

bool ns_sockaddr_exposed(const void *ss, unsigned int len)
{
	const struct sockaddr_storage *sa = ss;

	if (!len)
		return false;
	if (sa->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) != 127;
	if (sa->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return !IN6_IS_ADDR_LOOPBACK(a) &&
		       !(IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* s->warn's findings: on stderr (start, -n) or in the log (reload). */
static void warnings(const struct ns_settings *s, const void *cfg, bool log)
{
	struct ns_warnings w = {};
	size_t i;

	if (!s->warn)
		return;
	s->warn(cfg, &w);
	for (i = 0; i < w.n && i < NS_WARN_MAX; i++) {
		if (log)
			log_warn("reload: warning: %s", w.msg[i]);
		else
			fprintf(stderr, "%s: warning: %s\n", s->prog, w.msg[i]);
	}
	if (w.n > NS_WARN_MAX && !log)
		fprintf(stderr, "%s: warning: ... and %zu more\n", s->prog, w.n - NS_WARN_MAX);
}

int ns_settings_parse(const struct ns_settings *s, void *cfg, struct ns_cmdline *cl,
		      int argc, char **argv, int *status)
{
	struct option *o = NULL;
	char *so = NULL, err[1024];
	const char *path;
	int ret = 1;

	*status = 1;
	/* The file's deprecation notes come before the daemon sets its level. */
	ns_log_init(s->prog, NS_LOG_WARN);
	if (ns_settings_options(s, &o, &so)) {
		fprintf(stderr, "%s: out of memory\n", s->prog);
		return 1;
	}
	if (first_pass(s, cl, argc, argv, o, so, status))
		goto out;
	path = cl->config ? cl->config : s->config_default;
	if (path && load_file(s, cfg, path, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", s->prog, err);
		goto out;
	}
	*status = 2;
	/* (errors are one line on stderr: --help is in every daemon's usage) */
	if (second_pass(s, cfg, cl, argc, argv, o, so))
		goto out;
	if (ns_settings_required(s, cfg, err, sizeof(err)) ||
	    (s->check && s->check(cfg, err, sizeof(err)))) {
		fprintf(stderr, "%s: %s\n", s->prog, err);
		goto out;
	}
	warnings(s, cfg, false);
	if (cl->check) {
		printf("configuration OK\n");
		*status = 0;
		goto out;
	}
	ret = 0;
out:
	free(o);
	free(so);
	return ret;
}

int ns_settings_reload(const struct ns_settings *s, void *cfg, const char *path, int argc,
		       char **argv, char *err, size_t len)
{
	struct ns_cmdline cl = {};
	struct option *o = NULL;
	char *so = NULL;
	int ret;

	err[0] = '\0';
	ret = ns_settings_options(s, &o, &so);
	if (!ret && path)
		ret = load_file(s, cfg, path, err, len);
	/* accepted at start, so no message here but out of memory */
	if (!ret && second_pass(s, cfg, &cl, argc, argv, o, so))
		ret = -EINVAL;
	if (!ret)
		ret = ns_settings_required(s, cfg, err, len);
	if (!ret && s->check)
		ret = s->check(cfg, err, len);
	if (!ret)
		warnings(s, cfg, true);
	if (ret && !err[0])
		snprintf(err, len, "%s", strerror(-ret));
	free(o);
	free(so);
	return ret;
}
