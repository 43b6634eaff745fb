// SPDX-License-Identifier: GPL-2.0
/* ns_out: the same calls give the expected text and JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "out.h"

enum mode { TEXT, JSON, PRETTY };

/* Run emit() against a memory stream and return what it wrote (caller frees). */
static char *render(enum mode m, void (*emit)(struct ns_out *))
{
	struct ns_out *o;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	o = ns_out_new(f, m != TEXT, m == PRETTY);
	assert_non_null(o);
	emit(o);
	ns_out_free(o);
	fclose(f);
	return buf;
}

static void check(enum mode m, void (*emit)(struct ns_out *), const char *want)
{
	char *got = render(m, emit);

	assert_string_equal(got, want);
	free(got);
}

static void emit_scalars(struct ns_out *o)
{
	ns_out_obj_begin(o, NULL);
	ns_out_str(o, "name", "web");
	ns_out_u64(o, "port", 18446744073709551615ull);
	ns_out_s64(o, "delta", -5);
	ns_out_bool(o, "up", 1);
	ns_out_bool(o, "down", 0);
	ns_out_str(o, "note", NULL);
	ns_out_obj_end(o);
}

static void test_scalars(void **state)
{
	check(TEXT, emit_scalars,
	      "name web  port 18446744073709551615  delta -5  up true  down false  note -\n");
	check(JSON, emit_scalars,
	      "{\"name\":\"web\",\"port\":18446744073709551615,\"delta\":-5,"
	      "\"up\":true,\"down\":false,\"note\":null}\n");
}

static void emit_arrays(struct ns_out *o)
{
	ns_out_obj_begin(o, NULL);
	ns_out_u64(o, "id", 7);
	ns_out_arr_begin(o, "ports");
	ns_out_u64(o, NULL, 40000);
	ns_out_u64(o, NULL, 40001);
	ns_out_arr_end(o);
	ns_out_arr_begin(o, "none");
	ns_out_arr_end(o);
	ns_out_obj_begin(o, "peer");
	ns_out_str(o, "addr", "192.0.2.1");
	ns_out_u64(o, "port", 80);
	ns_out_obj_end(o);
	ns_out_obj_begin(o, "empty");
	ns_out_obj_end(o);
	ns_out_arr_begin(o, "legs");
	ns_out_obj_begin(o, NULL);
	ns_out_str(o, "dir", "in");
	ns_out_obj_end(o);
	ns_out_obj_begin(o, NULL);
	ns_out_str(o, "dir", "out");
	ns_out_obj_end(o);
	ns_out_arr_end(o);
	ns_out_obj_end(o);
}

static void test_nesting(void **state)
{
	check(TEXT, emit_arrays,
	      "id 7  ports 40000,40001  none -  peer { addr 192.0.2.1  port 80 }  empty { }"
	      "  legs { dir in },{ dir out }\n");
	check(JSON, emit_arrays,
	      "{\"id\":7,\"ports\":[40000,40001],\"none\":[],"
	      "\"peer\":{\"addr\":\"192.0.2.1\",\"port\":80},\"empty\":{},"
	      "\"legs\":[{\"dir\":\"in\"},{\"dir\":\"out\"}]}\n");
}

static void emit_list(struct ns_out *o)
{
	int i;

	ns_out_arr_begin(o, "splices");
	for (i = 1; i <= 2; i++) {
		ns_out_obj_begin(o, NULL);
		ns_out_u64(o, "id", i);
		ns_out_arr_begin(o, "ports");
		ns_out_u64(o, NULL, 40000 + i);
		ns_out_arr_end(o);
		ns_out_obj_end(o);
	}
	ns_out_arr_end(o);
}

static void test_top_level_array(void **state)
{
	check(TEXT, emit_list, "id 1  ports 40001\nid 2  ports 40002\n");
	check(JSON, emit_list,
	      "[{\"id\":1,\"ports\":[40001]},{\"id\":2,\"ports\":[40002]}]\n");
	check(PRETTY, emit_list,
	      "[\n"
	      "    {\n"
	      "        \"id\": 1,\n"
	      "        \"ports\": [\n"
	      "            40001\n"
	      "        ]\n"
	      "    },\n"
	      "    {\n"
	      "        \"id\": 2,\n"
	      "        \"ports\": [\n"
	      "            40002\n"
	      "        ]\n"
	      "    }\n"
	      "]\n");
}

static void emit_empty_list(struct ns_out *o)
{
	ns_out_arr_begin(o, "splices");
	ns_out_arr_end(o);
}

static void test_empty(void **state)
{
	check(TEXT, emit_empty_list, "");
	check(JSON, emit_empty_list, "[]\n");
	check(PRETTY, emit_empty_list, "[]\n");
}

static void emit_escapes(struct ns_out *o)
{
	ns_out_obj_begin(o, NULL);
	ns_out_str(o, "k\"ey", "a\"b\\c\nd\te\x01\x1f/");
	ns_out_str(o, "utf8", "caf\xc3\xa9 \xe2\x82\xac");
	ns_out_str(o, "bad", "x\xff\xc3(y\xed\xa0\x80");
	ns_out_obj_end(o);
}

static void test_escaping(void **state)
{
	check(JSON, emit_escapes,
	      "{\"k\\\"ey\":\"a\\\"b\\\\c\\u000ad\\u0009e\\u0001\\u001f/\","
	      "\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac\","
	      "\"bad\":\"x\\ufffd\\ufffd(y\\ufffd\\ufffd\\ufffd\"}\n");
	/* Text keeps one object per line: control characters are masked. */
	check(TEXT, emit_escapes,
	      "k\"ey a\"b\\c?d?e?" "?/  utf8 caf\xc3\xa9 \xe2\x82\xac  bad x\xff\xc3(y\xed\xa0\x80\n");
}

/* Capture what fn writes on stderr. */
static char *capture_stderr(enum mode m, void (*emit)(struct ns_out *), char **out)
{
	FILE *tmp = tmpfile();
	char *err;
	long len;
	int saved;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	*out = render(m, emit);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	len = ftell(tmp);
	assert_true(len >= 0);
	err = calloc(1, len + 1);
	assert_non_null(err);
	rewind(tmp);
	assert_int_equal(fread(err, 1, len, tmp), (size_t)len);
	fclose(tmp);
	return err;
}

static void emit_error(struct ns_out *o)
{
	ns_out_error(o, "cannot open \"%s\": %d", "map", 42);
}

static void emit_error_in_obj(struct ns_out *o)
{
	ns_out_obj_begin(o, NULL);
	ns_out_u64(o, "id", 1);
	ns_out_error(o, "lost");
	ns_out_obj_end(o);
}

static void emit_error_in_arr(struct ns_out *o)
{
	ns_out_arr_begin(o, NULL);
	ns_out_error(o, "lost");
	ns_out_arr_end(o);
}

static void test_error(void **state)
{
	char *out, *err;

	err = capture_stderr(JSON, emit_error, &out);
	assert_string_equal(out, "{\"error\":\"cannot open \\\"map\\\": 42\"}\n");
	assert_string_equal(err, "");
	free(out);
	free(err);

	err = capture_stderr(TEXT, emit_error, &out);
	assert_string_equal(out, "");
	assert_string_equal(err, "Error: cannot open \"map\": 42\n");
	free(out);
	free(err);

	/* Inside an open document the JSON stays valid. */
	check(JSON, emit_error_in_obj, "{\"id\":1,\"error\":\"lost\"}\n");
	check(JSON, emit_error_in_arr, "[{\"error\":\"lost\"}]\n");
}

static void emit_top_scalars(struct ns_out *o)
{
	ns_out_str(o, "status", "ok");
	ns_out_fmt(o, "rate", "%d/%s", 5, "s");
}

static void emit_unbalanced(struct ns_out *o)
{
	ns_out_obj_end(o);
	ns_out_arr_begin(o, NULL);
	ns_out_obj_end(o);          /* wrong kind: ignored */
	ns_out_arr_end(o);
}

static void test_misc(void **state)
{
	check(TEXT, emit_top_scalars, "status ok\nrate 5/s\n");
	check(JSON, emit_top_scalars, "\"ok\"\n\"5/s\"\n");
	check(JSON, emit_unbalanced, "[]\n");
	ns_out_free(NULL);
}

static const struct ns_out_col table_cols[] = {
	{ "name", NULL },
	{ "services", NULL },
	{ "addr", "ADDRESS" },
	{ "up", NULL },
	{ NULL, NULL },
};

static void emit_table(struct ns_out *o)
{
	ns_out_table(o, table_cols);
	ns_out_arr_begin(o, "agents");
	ns_out_obj_begin(o, NULL);
	ns_out_str(o, "name", "home-nas");
	ns_out_str(o, "hidden", "x");
	ns_out_arr_begin(o, "services");
	ns_out_str(o, NULL, "web");
	ns_out_str(o, NULL, "ssh");
	ns_out_arr_end(o);
	ns_out_obj_begin(o, "addr");
	ns_out_str(o, "ip", "203.0.113.101");
	ns_out_obj_end(o);
	ns_out_bool(o, "up", 1);
	ns_out_obj_end(o);
	ns_out_obj_begin(o, NULL);
	ns_out_str(o, "name", "caf\xc3\xa9");	/* two bytes, one column */
	ns_out_arr_begin(o, "services");
	ns_out_arr_end(o);
	ns_out_obj_end(o);
	ns_out_arr_end(o);
	/* the next array is not a table */
	ns_out_arr_begin(o, NULL);
	ns_out_obj_begin(o, NULL);
	ns_out_str(o, "name", "after");
	ns_out_obj_end(o);
	ns_out_arr_end(o);
}

static void emit_empty_table(struct ns_out *o)
{
	ns_out_table(o, table_cols);
	ns_out_arr_begin(o, NULL);
	ns_out_arr_end(o);
}

static void test_table(void **state)
{
	check(TEXT, emit_table,
	      "NAME      SERVICES  ADDRESS               UP\n"
	      "home-nas  web,ssh   { ip 203.0.113.101 }  true\n"
	      "caf\xc3\xa9      -         -                     -\n"
	      "name after\n");
	check(JSON, emit_table,
	      "[{\"name\":\"home-nas\",\"hidden\":\"x\",\"services\":[\"web\",\"ssh\"],"
	      "\"addr\":{\"ip\":\"203.0.113.101\"},\"up\":true},"
	      "{\"name\":\"caf\xc3\xa9\",\"services\":[]}]\n"
	      "[{\"name\":\"after\"}]\n");
	check(TEXT, emit_empty_table, "NAME  SERVICES  ADDRESS  UP\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_top_level_array),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
