// SPDX-License-Identifier: GPL-2.0
/* yconf: YAML tree with positions, and the errors a config author sees. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "yconf.h"

static struct yc_node *load(const char *text)
{
	struct yc_node *root = NULL;
	char err[256] = "";

	if (yc_load_string("t.yaml", text, &root, err, sizeof(err)))
		fail_msg("load failed: %s", err);
	return root;
}

/* Loading fails with -EINVAL and exactly this message. */
static void load_fails(const char *text, const char *want)
{
	struct yc_node *root = (void *)1;
	char err[256] = "";

	assert_int_equal(yc_load_string("t.yaml", text, &root, err, sizeof(err)), -EINVAL);
	assert_null(root);
	assert_string_equal(err, want);
}

static void test_block(void **state)
{
	struct yc_node *root = load("# relay\n"
				    "listen: 192.0.2.1\n"
				    "ports:\n"
				    "  - 40000\n"
				    "  - \"40001\"\n"
				    "tls:\n"
				    "  cert: /etc/c.pem\n"
				    "  empty:\n");
	const struct yc_node *n, *tls;
	const char *s;

	assert_int_equal(root->kind, YC_MAP);
	assert_int_equal(root->n, 3);
	assert_string_equal(root->keys[0], "listen");
	assert_string_equal(root->file, "t.yaml");

	n = yc_get(root, "listen");
	assert_non_null(n);
	assert_int_equal(n->kind, YC_SCALAR);
	assert_string_equal(n->value, "192.0.2.1");
	assert_int_equal(n->line, 2);
	assert_int_equal(n->col, 9);
	assert_int_equal(root->key_nodes[0]->line, 2);
	assert_int_equal(root->key_nodes[0]->col, 1);

	n = yc_get(root, "ports");
	assert_int_equal(n->kind, YC_SEQ);
	assert_int_equal(n->n, 2);
	assert_string_equal(n->items[0]->value, "40000");
	assert_string_equal(n->items[1]->value, "40001");
	assert_int_equal(n->items[1]->line, 5);
	assert_int_equal(n->items[1]->col, 5);
	assert_string_equal(n->items[1]->file, "t.yaml");

	tls = yc_get(root, "tls");
	assert_int_equal(tls->kind, YC_MAP);
	assert_int_equal(tls->line, 7);
	assert_int_equal(tls->col, 3);
	assert_int_equal(yc_scalar(yc_get(tls, "cert"), &s, NULL, 0), 0);
	assert_string_equal(s, "/etc/c.pem");
	assert_int_equal(yc_scalar(yc_get(tls, "empty"), &s, NULL, 0), 0);
	assert_string_equal(s, "");

	assert_null(yc_get(root, "missing"));
	assert_null(yc_get(yc_get(root, "listen"), "x"));   /* not a map */
	assert_null(yc_get(NULL, "x"));
	yc_free(root);
}

static void test_flow(void **state)
{
	struct yc_node *root = load("relay: { addr: 192.0.2.1, ports: [40000, 40001] }\n"
				    "peers: [a, {name: b}]\n");
	const struct yc_node *relay, *ports, *peers;

	relay = yc_get(root, "relay");
	assert_int_equal(relay->kind, YC_MAP);
	assert_int_equal(relay->n, 2);
	assert_string_equal(yc_get(relay, "addr")->value, "192.0.2.1");
	ports = yc_get(relay, "ports");
	assert_int_equal(ports->kind, YC_SEQ);
	assert_int_equal(ports->n, 2);
	assert_string_equal(ports->items[1]->value, "40001");
	assert_int_equal(ports->items[1]->col, 42);

	peers = yc_get(root, "peers");
	assert_int_equal(peers->n, 2);
	assert_int_equal(peers->items[1]->kind, YC_MAP);
	assert_string_equal(yc_get(peers->items[1], "name")->value, "b");
	yc_free(root);

	root = load("{a: 1}");
	assert_int_equal(root->n, 1);
	yc_free(root);
}

static void test_empty_document(void **state)
{
	const char *const texts[] = { "", "# only a comment\n", "---\n" };
	struct yc_node *root;
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		root = load(texts[i]);
		assert_int_equal(root->kind, YC_MAP);
		assert_int_equal(root->n, 0);
		yc_free(root);
	}
	yc_free(NULL);
}

static void test_check_keys(void **state)
{
	static const char *const allowed[] = { "listen", "ports", NULL };
	struct yc_node *root = load("listen: 192.0.2.1\n"
				    "ports: [1]\n"
				    "nested:\n"
				    "  bogus: 1\n");
	char err[256] = "";

	assert_int_equal(yc_check_keys(root, allowed, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.yaml:3:1: unknown key 'nested'");
	/* The position is the key's, not its value's. */
	assert_int_equal(yc_check_keys(yc_get(root, "nested"), allowed, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "t.yaml:4:3: unknown key 'bogus'");
	assert_int_equal(yc_check_keys(yc_get(root, "ports"), allowed, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "t.yaml:2:8: expected a mapping, found a sequence");
	yc_free(root);

	root = load("ports: [1]\nlisten: x\n");
	assert_int_equal(yc_check_keys(root, allowed, err, sizeof(err)), 0);
	yc_free(root);
}

/* A tree built by hand can hold a duplicate key; yc_check_keys catches it. */
static void test_check_keys_duplicate(void **state)
{
	static const char *const allowed[] = { "a", NULL };
	struct yc_node k1 = { .kind = YC_SCALAR, .line = 1, .col = 1, .value = "a", .file = "m" };
	struct yc_node k2 = { .kind = YC_SCALAR, .line = 2, .col = 1, .value = "a", .file = "m" };
	struct yc_node v = { .kind = YC_SCALAR, .line = 1, .col = 4, .value = "1", .file = "m" };
	char *keys[] = { "a", "a" };
	struct yc_node *key_nodes[] = { &k1, &k2 }, *items[] = { &v, &v };
	struct yc_node map = { .kind = YC_MAP, .line = 1, .col = 1, .n = 2, .keys = keys,
			       .key_nodes = key_nodes, .items = items, .file = "m" };
	char err[128];

	assert_int_equal(yc_check_keys(&map, allowed, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "m:2:1: duplicate key 'a'");
}

static void test_duplicate_key(void **state)
{
	load_fails("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a' (first at line 1)");
	load_fails("x: {k: 1, k: 2}\n", "t.yaml:1:11: duplicate key 'k' (first at line 1)");
}

static void test_syntax_errors(void **state)
{
	load_fails("a: [1, 2\n",
		   "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at line 1)");
	load_fails("a: 1\n  b: 2\n", "t.yaml:2:4: mapping values are not allowed in this context");
	load_fails("a: 'open\n",
		   "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at line 1)");
	load_fails("ok: 1\nkey: \xff\n", "t.yaml:2:6: invalid leading UTF-8 octet");
}

static void test_rejected_features(void **state)
{
	load_fails("a: &x 1\nb: *x\n", "t.yaml:1:4: anchors (&x) are not supported");
	load_fails("a: 1\nb: *x\n", "t.yaml:2:4: aliases (*x) are not supported");
	load_fails("a:\n  - !foo x\n", "t.yaml:2:5: tags (!foo) are not supported");
	load_fails("a: !!str 1\n", "t.yaml:1:4: tags (tag:yaml.org,2002:str) are not supported");
	load_fails("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one YAML document is allowed");
	load_fails("? [a]\n: 1\n", "t.yaml:1:3: mapping keys must be scalars");
	load_fails("a: \"x\\0y\"\n", "t.yaml:1:4: NUL character in value");
}

static void test_scalar_expected(void **state)
{
	struct yc_node *root = load("name:\n  first: x\nlist: [1]\n");
	const char *s = NULL;
	char err[256];

	assert_int_equal(yc_scalar(yc_get(root, "name"), &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.yaml:2:3: expected a scalar, found a mapping");
	assert_int_equal(yc_scalar(yc_get(root, "list"), &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.yaml:3:7: expected a scalar, found a sequence");
	assert_int_equal(yc_scalar(yc_get(root, "absent"), &s, err, sizeof(err)), -EINVAL);
	assert_null(s);
	yc_free(root);
}

static void test_u32(void **state)
{
	static const char *const bad[] = {
		"4294967296", "99999999999999999999", "-1", "+1", " 1", "1 ", "1.5",
		"0x10", "1e3", "", "abc",
	};
	struct yc_node *root = load("zero: 0\nmax: 4294967295\nquoted: '80'\nlead: 007\n");
	char text[64], err[256];
	unsigned int v = 1;
	size_t i;

	assert_int_equal(yc_u32(yc_get(root, "zero"), &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0);
	assert_int_equal(yc_u32(yc_get(root, "max"), &v, err, sizeof(err)), 0);
	assert_int_equal(v, 4294967295u);
	assert_int_equal(yc_u32(yc_get(root, "quoted"), &v, err, sizeof(err)), 0);
	assert_int_equal(v, 80);
	assert_int_equal(yc_u32(yc_get(root, "lead"), &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);
	yc_free(root);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "n: \"%s\"\n", bad[i]);
		root = load(text);
		v = 12345;
		assert_int_equal(yc_u32(yc_get(root, "n"), &v, err, sizeof(err)), -EINVAL);
		assert_int_equal(v, 12345);
		assert_true(!strncmp(err, "t.yaml:1:4: expected a decimal integer", 38));
		yc_free(root);
	}

	root = load("n: [1]\n");
	assert_int_equal(yc_u32(yc_get(root, "n"), &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.yaml:1:4: expected a scalar, found a sequence");
	yc_free(root);
}

static void test_bool(void **state)
{
	struct yc_node *root = load("a: true\nb: no\nc: On\nd: maybe\n");
	char err[256];
	int v = -1;

	assert_int_equal(yc_bool(yc_get(root, "a"), &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1);
	assert_int_equal(yc_bool(yc_get(root, "b"), &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0);
	assert_int_equal(yc_bool(yc_get(root, "c"), &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1);
	assert_int_equal(yc_bool(yc_get(root, "d"), &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.yaml:4:4: expected true or false, got 'maybe'");
	yc_free(root);
}

static void test_error_fmt(void **state)
{
	struct yc_node *root = load("a:\n  port: 0\n");
	char err[256], small[8];

	assert_int_equal(yc_error(yc_get(yc_get(root, "a"), "port"), err, sizeof(err),
				  "port %d out of range", 0), -EINVAL);
	assert_string_equal(err, "t.yaml:2:9: port 0 out of range");
	/* Truncation is safe. */
	assert_int_equal(yc_error(root, small, sizeof(small), "long message"), -EINVAL);
	assert_string_equal(small, "t.yaml:");
	yc_free(root);
}

static void test_file(void **state)
{
	char path[] = "/tmp/test_yconfXXXXXX", err[512];
	struct yc_node *root = (void *)1;
	const char text[] = "a: 1\nb: [x\n";
	int fd;

	assert_int_equal(yc_load_file("/nonexistent/relay.yaml", &root, err, sizeof(err)),
			 -ENOENT);
	assert_null(root);
	assert_string_equal(err, "/nonexistent/relay.yaml: No such file or directory");

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);
	assert_int_equal(yc_load_file(path, &root, err, sizeof(err)), -EINVAL);
	/* "path:3:1: ..." */
	assert_true(!strncmp(err, path, strlen(path)));
	assert_true(!strncmp(err + strlen(path), ":3:1: ", 6));

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a: 1\n", 5), 5);
	close(fd);
	assert_int_equal(yc_load_file(path, &root, err, sizeof(err)), 0);
	unlink(path);
	/* The tree keeps its own copy of the file name. */
	assert_string_equal(yc_get(root, "a")->file, path);
	memset(path, 'x', sizeof(path) - 1);
	assert_string_not_equal(yc_get(root, "a")->file, path);
	yc_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block),
		cmocka_unit_test(test_flow),
		cmocka_unit_test(test_empty_document),
		cmocka_unit_test(test_check_keys),
		cmocka_unit_test(test_check_keys_duplicate),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_rejected_features),
		cmocka_unit_test(test_scalar_expected),
		cmocka_unit_test(test_u32),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_error_fmt),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
