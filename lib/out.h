/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Text and JSON output from the same calls (bpftool's -j). The caller never
 * branches on json.
 *
 * JSON: compact by default, indented when pretty.
 * Text: each top-level object is one line of "key value" pairs separated by
 * two spaces; an array of scalars is comma-joined ("ports 40000,40001");
 * a nested object is "key { k v  k v }"; a top-level array prints its
 * objects one per line and its own key is not printed.
 */
#ifndef NS_OUT_H
#define NS_OUT_H

#include <stdio.h>

struct ns_out;

struct ns_out *ns_out_new(FILE *f, int json, int pretty);   /* NULL on ENOMEM */
void ns_out_free(struct ns_out *o);                          /* flushes; safe on NULL */
int ns_out_is_json(const struct ns_out *o);

/* key NULL at top level and inside arrays. */
void ns_out_obj_begin(struct ns_out *o, const char *key);
void ns_out_obj_end(struct ns_out *o);
void ns_out_arr_begin(struct ns_out *o, const char *key);
void ns_out_arr_end(struct ns_out *o);

void ns_out_str(struct ns_out *o, const char *key, const char *val);
void ns_out_u64(struct ns_out *o, const char *key, unsigned long long v);
void ns_out_s64(struct ns_out *o, const char *key, long long v);
void ns_out_bool(struct ns_out *o, const char *key, int v);
void ns_out_null(struct ns_out *o, const char *key);
void ns_out_fmt(struct ns_out *o, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A column of a text table: the member key, and its heading (NULL: the key
 * in capitals).
 */
struct ns_out_col {
	const char *key;
	const char *title;
};

/*
 * Text: print the next top-level array as a table, one row per object: a
 * heading line, then the members named in cols (ending with a NULL key),
 * aligned; a member a row lacks is "-", members not in cols are left out.
 * JSON: no effect, every member is written. cols must outlive the array.
 */
void ns_out_table(struct ns_out *o, const struct ns_out_col *cols);

/* JSON: {"error":"..."} on the output stream. Text: "Error: ..." on stderr. */
void ns_out_error(struct ns_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
