// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/settings: one table for getopt_long, YAML keys, --help and -n. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "unit/capture.h"

#include "settings.h"
#include "util.h"
#include "yconf.h"

/* A daemon's settings, one of each kind. */
struct tcfg {
	char dev[16];
	__u32 grace;
	__u32 count;
	int mode;
	__u8 small;
	bool fast;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int nitems;
	int items[4];
	bool loaded_tree;
};

static int set_item(void *cfg, const char *val, char *msg, size_t len)
{
	struct tcfg *c = cfg;
	__u32 v;

	if (!strcmp(val, "boom")) {
		snprintf(msg, len, "item 'boom' explodes");
		return -EINVAL;
	}
	if (c->nitems == 4 || sscanf(val, "%u", &v) != 1)
		return -EINVAL;
	c->items[c->nitems++] = v;
	return 0;
}

static int load_tree(void *cfg, const struct yc_node *root, char *err, size_t len)
{
	((struct tcfg *)cfg)->loaded_tree = yc_get(root, "extra") != NULL;
	return 0;
}

static const char *const modes[] = { "off", "on", "auto", NULL };
static const char *const file_keys[] = { "extra", NULL };

#define CFG(f) NS_FIELD(struct tcfg, f)

static const struct ns_setting set[] = {
	{ .name = "dev", .short_opt = 'i', .type = NS_SET_STR, CFG(dev), .flags = NS_SET_REQUIRED,
	  .arg = "DEV", .help = "the device" },
	{ .name = "close-grace", .type = NS_SET_SECONDS, CFG(grace), .max = 604800,
	  .old_name = "close_grace", .arg = "SEC",
	  .help = "a long help sentence that has to be wrapped because it does not fit on one "
		  "line of the terminal at all, not even nearly" },
	{ .name = "count", .type = NS_SET_U32, CFG(count), .min = 1, .max = 10, .arg = "N",
	  .help = "how many" },
	{ .name = "mode", .type = NS_SET_ENUM, CFG(mode), .names = modes, .arg = "off|on|auto",
	  .help = "the mode" },
	{ .name = "small", .type = NS_SET_ENUM, CFG(small), .names = modes, .arg = "M",
	  .help = "a mode in one byte" },
	{ .name = "fast", .short_opt = 'F', .type = NS_SET_FLAG, CFG(fast), .help = "go fast" },
	{ .name = "peer", .type = NS_SET_SOCKADDR, CFG(peer),
	  .len_off = offsetof(struct tcfg, peer_len), .port = 7700, .arg = "IP[:PORT]",
	  .help = "the peer" },
	{ .name = "item", .type = NS_SET_FUNC, .parse = set_item, .flags = NS_SET_REPEAT,
	  .what = "a number", .arg = "N", .help = "an item, repeatable" },
	{ .name = NULL },
};

static const struct ns_settings ts = {
	.prog = "testd",
	.usage = "Usage: testd [OPTIONS]\n",
	.footer = "The end.\n",
	.set = set,
	.file_keys = file_keys,
	.opts = NS_OPT_DETACH,
	.load_tree = load_tree,
};

static __u16 port_of(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Parse argv (a NULL-terminated list after the program name). */
static int parse(struct tcfg *c, struct ns_cmdline *cl, int *status, ...)
{
	char *argv[32] = { "testd" };
	int argc = 1;
	va_list ap;

	va_start(ap, status);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	memset(c, 0, sizeof(*c));
	memset(cl, 0, sizeof(*cl));
	return ns_settings_parse(&ts, c, cl, argc, argv, status);
}

static void test_options_table(void **state)
{
	struct option *o;
	char *so;
	size_t n;

	assert_int_equal(ns_settings_options(&ts, &o, &so), 0);
	for (n = 0; o[n].name; n++)
		;
	/* 8 settings + -f -n -d -v -h (no -V) + the hidden --man */
	assert_int_equal(n, 8 + 6);
	assert_string_equal(o[0].name, "dev");
	assert_int_equal(o[0].has_arg, required_argument);
	assert_int_equal(o[0].val, 'i');
	assert_int_equal(o[5].has_arg, no_argument);	/* fast: a flag */
	assert_int_equal(o[1].val, 256 + 1);
	assert_non_null(strstr(so, "i:"));
	assert_non_null(strstr(so, "F"));
	assert_null(strstr(so, "F:"));
	assert_non_null(strstr(so, "f:"));
	assert_null(strchr(so, 'V'));
	free(o);
	free(so);
}

/* --man 5|8 (mk/man.sh) ends the parse like --help; another section is an error. */
static void test_man(void **state)
{
	struct ns_cmdline cl;
	struct tcfg c;
	int status = -1;
	FILE *saved = stdout;

	stdout = fopen("/dev/null", "w");
	assert_int_equal(parse(&c, &cl, &status, "--man", "5", NULL), 1);
	assert_int_equal(status, 0);
	assert_int_equal(parse(&c, &cl, &status, "--man", "8", NULL), 1);
	assert_int_equal(status, 0);
	assert_int_equal(parse(&c, &cl, &status, "--man", "3", NULL), 1);
	assert_int_equal(status, 2);
	fclose(stdout);
	stdout = saved;
}

static void test_getopt(void **state)
{
	struct ns_cmdline cl;
	struct tcfg c;
	int status = -1;

	assert_int_equal(parse(&c, &cl, &status, "-i", "eth0", "--close-grace", "30", "--count",
			       "3", "--mode", "auto", "--small=on", "-F", "--peer", "192.0.2.1",
			       "--item", "5", "--item", "6", "-d", "-vv", NULL), 0);
	assert_string_equal(c.dev, "eth0");
	assert_int_equal(c.grace, 30);
	assert_int_equal(c.count, 3);
	assert_int_equal(c.mode, 2);
	assert_int_equal(c.small, 1);
	assert_true(c.fast);
	assert_int_equal(port_of(&c.peer), 7700);	/* the default port */
	assert_int_equal(c.peer_len, sizeof(struct sockaddr_in));
	assert_int_equal(c.nitems, 2);
	assert_int_equal(c.items[1], 6);
	assert_true(cl.detach);
	assert_int_equal(cl.verbose, 2);
	assert_false(cl.check);
	/* -n: "configuration OK", status 0, nothing to run */
	assert_int_equal(parse(&c, &cl, &status, "--dev", "eth0", "-n", NULL), 1);
	assert_int_equal(status, 0);
	/* bad command lines: status 2 */
	assert_int_equal(parse(&c, &cl, &status, "--dev", "eth0", "--bogus", NULL), 1);
	assert_int_equal(status, 2);
	assert_int_equal(parse(&c, &cl, &status, "--dev", "eth0", "stray", NULL), 1);
	assert_int_equal(status, 2);
	assert_int_equal(parse(&c, &cl, &status, "--dev", NULL), 1);
	assert_int_equal(status, 2);
	/* a required setting missing */
	assert_int_equal(parse(&c, &cl, &status, "--count", "2", NULL), 1);
	assert_int_equal(status, 2);
}

static void set_fails(const char *name, const char *val, const char *want)
{
	struct tcfg c = {};
	char msg[256];

	assert_int_equal(ns_settings_set(&ts, &c, name, val, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, want);
}

static void test_range_errors(void **state)
{
	set_fails("close-grace", "x", "bad value for close-grace: 'x' (seconds, 0-604800)");
	set_fails("close-grace", "604801", "bad value for close-grace: '604801' (seconds, 0-604800)");
	set_fails("close-grace", "-1", "bad value for close-grace: '-1' (seconds, 0-604800)");
	set_fails("count", "0", "bad value for count: '0' (1-10)");
	set_fails("count", "11", "bad value for count: '11' (1-10)");
	set_fails("dev", "", "bad value for dev: '' (1-15 characters)");
	set_fails("dev", "0123456789abcdef", "bad value for dev: '0123456789abcdef' (1-15 characters)");
	set_fails("mode", "warp", "mode must be off, on or auto, not 'warp'");
	set_fails("fast", "maybe", "bad value for fast: 'maybe' (true or false)");
	set_fails("peer", "example.com", "bad value for peer: 'example.com' (IP or IP:PORT, "
		  "e.g. 192.0.2.1:7700 or [2001:db8::1]:7700)");
	set_fails("item", "x", "bad value for item: 'x' (a number)");
	set_fails("item", "boom", "item 'boom' explodes");
	set_fails("foo", "1", "unknown setting 'foo'");
}

static int yaml(struct tcfg *c, const char *text, char *err, size_t len)
{
	struct yc_node *root = NULL;
	int ret;

	memset(c, 0, sizeof(*c));
	ret = yc_load_string("t.yaml", text, &root, err, len);
	if (!ret)
		ret = ns_settings_yaml(&ts, c, root, err, len);
	yc_free(root);
	return ret;
}

static void yaml_fails(const char *text, const char *want)
{
	struct tcfg c;
	char err[512] = "";

	assert_int_equal(yaml(&c, text, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_yaml(void **state)
{
	struct tcfg c;
	char err[512] = "";

	assert_int_equal(yaml(&c, "dev: eth1\nclose-grace: 7\nmode: off\nfast: yes\n"
			      "peer: '[2001:db8::1]:99'\nitem: [1, 2, 3]\nextra: { any: thing }\n",
			      err, sizeof(err)), 0);
	assert_string_equal(c.dev, "eth1");
	assert_int_equal(c.grace, 7);
	assert_int_equal(c.mode, 0);
	assert_true(c.fast);
	assert_int_equal(c.peer.ss_family, AF_INET6);
	assert_int_equal(c.nitems, 3);
	assert_int_equal(c.items[2], 3);
	assert_true(c.loaded_tree);
	/* a single value for a repeatable setting */
	assert_int_equal(yaml(&c, "item: 9\n", err, sizeof(err)), 0);
	assert_int_equal(c.nitems, 1);
	assert_false(c.loaded_tree);
	/* errors at the value's file:line:col */
	yaml_fails("dev: eth0\nclose-grace: x\n",
		   "t.yaml:2:14: bad value for close-grace: 'x' (seconds, 0-604800)");
	yaml_fails("dev: eth0\nfoo: 1\n", "t.yaml:2:1: unknown setting 'foo'");
	yaml_fails("mode: [on]\n", "t.yaml:1:7: expected a scalar, found a sequence");
	yaml_fails("count: [1]\n", "t.yaml:1:8: expected a scalar, found a sequence");
	yaml_fails("item: [1, boom]\n", "t.yaml:1:11: item 'boom' explodes");
	yaml_fails("fast: maybe\n", "t.yaml:1:7: expected true or false, got 'maybe'");
	yaml_fails("- a\n", "t.yaml:1:1: expected a mapping of settings");
}

static void load_old(void *arg)
{
	char err[256];

	assert_int_equal(yaml(arg, "dev: eth0\nclose_grace: 12\n", err, sizeof(err)), 0);
}

static void test_deprecated(void **state)
{
	struct tcfg c;
	char notes[1024];

	capture_stderr(load_old, &c, notes, sizeof(notes));
	assert_int_equal(c.grace, 12);
	assert_non_null(strstr(notes, "t.yaml:2:1: 'close_grace' is deprecated: write "
				      "'close-grace'"));
	/* exactly one note */
	assert_null(strstr(strstr(notes, "deprecated") + 1, "deprecated"));
	yaml_fails("close_grace: 1\nclose-grace: 2\n",
		   "t.yaml:1:1: 'close_grace' and 'close-grace' are the same setting");
}

static void print_help(void *arg)
{
	ns_settings_usage(&ts, stderr);
}

static void test_help(void **state)
{
	const struct ns_setting *st;
	char help[8192], want[64], *line;

	capture_stderr(print_help, NULL, help, sizeof(help));
	assert_true(!strncmp(help, "Usage: testd [OPTIONS]\n", 23));
	assert_non_null(strstr(help, "The end.\n"));
	for (st = set; st->name; st++) {
		snprintf(want, sizeof(want), "--%s", st->name);
		assert_non_null(strstr(help, want));
	}
	assert_non_null(strstr(help, "  -i, --dev DEV             the device\n"));
	assert_non_null(strstr(help, "  -F, --fast                go fast\n"));
	assert_non_null(strstr(help, "  --mode off|on|auto        the mode\n"));
	assert_non_null(strstr(help, "-f, --config FILE"));
	assert_non_null(strstr(help, "-n, --check"));
	assert_non_null(strstr(help, "-d, --detach"));
	assert_null(strstr(help, "--version"));
	assert_null(strstr(help, "--man"));	/* hidden: for mk/man.sh */
	/* wrapped: no line longer than 79, continuation lines at column 28 */
	for (line = strtok(help, "\n"); line; line = strtok(NULL, "\n"))
		assert_true(strlen(line) <= 79);
	capture_stderr(print_help, NULL, help, sizeof(help));
	assert_non_null(strstr(help, "  --close-grace SEC         a long help sentence that has "
				     "to be wrapped because\n                            it "));
}

/* ts with a warn hook: "fast" is unsafe; count N warns N times. */
static void warn_fast(const void *cfg, struct ns_warnings *w)
{
	const struct tcfg *c = cfg;
	__u32 i;

	if (c->fast)
		ns_warn(w, "fast is not safe (%s)", c->dev);
	for (i = 1; i < c->count; i++)
		ns_warn(w, "count %u", i);
}

static struct ns_settings tw;
static int warn_status;

static void parse_warn(void *arg)
{
	char *argv[] = { "testd", "--dev", "eth0", "-n", "-F", "--count", arg, NULL };
	struct ns_cmdline cl = {};
	struct tcfg c = {};

	if (ns_settings_parse(&tw, &c, &cl, 7, argv, &warn_status) != 1)
		warn_status = -1;
}

static void test_warn(void **state)
{
	char out[4096];
	struct ns_warnings w = {};
	struct sockaddr_storage ss;
	socklen_t len;

	tw = ts;
	tw.warn = warn_fast;
	/* -n prints the warnings and still says OK with status 0 */
	capture_stderr(parse_warn, "1", out, sizeof(out));
	assert_int_equal(warn_status, 0);
	assert_string_equal(out, "testd: warning: fast is not safe (eth0)\n");
	/* at most NS_WARN_MAX, then how many more */
	capture_stderr(parse_warn, "10", out, sizeof(out));
	assert_int_equal(warn_status, 0);
	assert_non_null(strstr(out, "testd: warning: count 7\n"));
	assert_null(strstr(out, "count 8\n"));
	assert_non_null(strstr(out, "testd: warning: ... and 2 more\n"));
	/* ns_warn keeps counting past the room it has */
	for (int i = 0; i < NS_WARN_MAX + 3; i++)
		ns_warn(&w, "w%d", i);
	assert_int_equal(w.n, NS_WARN_MAX + 3);
	assert_string_equal(w.msg[NS_WARN_MAX - 1], "w7");

	/* which listeners are off loopback */
	assert_false(ns_sockaddr_exposed(&ss, 0));
	assert_int_equal(ns_parse_sockaddr("127.0.0.1:9770", 0, &ss, &len), 0);
	assert_false(ns_sockaddr_exposed(&ss, len));
	assert_int_equal(ns_parse_sockaddr("127.8.9.10:9770", 0, &ss, &len), 0);
	assert_false(ns_sockaddr_exposed(&ss, len));
	assert_int_equal(ns_parse_sockaddr("[::1]:9770", 0, &ss, &len), 0);
	assert_false(ns_sockaddr_exposed(&ss, len));
	assert_int_equal(ns_parse_sockaddr("[::ffff:127.0.0.1]:9770", 0, &ss, &len), 0);
	assert_false(ns_sockaddr_exposed(&ss, len));
	assert_int_equal(ns_parse_sockaddr("0.0.0.0:9770", 0, &ss, &len), 0);
	assert_true(ns_sockaddr_exposed(&ss, len));
	assert_int_equal(ns_parse_sockaddr("10.0.0.5:9770", 0, &ss, &len), 0);
	assert_true(ns_sockaddr_exposed(&ss, len));
	assert_int_equal(ns_parse_sockaddr("[::]:9770", 0, &ss, &len), 0);
	assert_true(ns_sockaddr_exposed(&ss, len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_table),
		cmocka_unit_test(test_man),
		cmocka_unit_test(test_getopt),
		cmocka_unit_test(test_range_errors),
		cmocka_unit_test(test_yaml),
		cmocka_unit_test(test_deprecated),
		cmocka_unit_test(test_warn),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
