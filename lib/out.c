// SPDX-License-Identifier: GPL-2.0
/*
 * One writer, two renderings. Every call is an "element" of the container
 * on top of the stack; sep() writes what goes before an element, close()
 * what goes after a container, in either mode.
 *
 * Text layout (a "line" container is one whose output is a whole line:
 * a top-level object, or any element of a top-level array):
 *   line object     k v  k v\n
 *   nested object   key { k v  k v }
 *   top-level array its elements, one per line (its key is not printed)
 *   other arrays    key v,v,v        (empty: key -)
 *
 * A text table (ns_out_table) is written as ordinary text into a memory
 * stream; each member of a row named in the columns is a cell, the [start,
 * end) range of that stream its own calls wrote. When the array ends the
 * cells are printed aligned, and the rest of the stream (separators, keys,
 * members left out) is dropped.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"

#define OUT_MAX_DEPTH 32
#define JSON_INDENT   4

enum frame_kind { F_OBJ, F_ARR };

struct frame {
	enum frame_kind kind;
	unsigned int count;  /* elements written so far */
	int line;            /* text: this container is a whole line */
	int rows;            /* text: top-level array, elements are lines */
};

#define CELL_NONE SIZE_MAX	/* a cell the row did not write */

struct cell {
	size_t start, end;	/* in table.buf */
};

struct table {
	const struct ns_out_col *cols;
	size_t ncols;
	FILE *real;		/* the output, while ns_out.f is the memory stream */
	char *buf;		/* the memory stream's buffer */
	size_t len;
	struct cell *cells;	/* nrows * ncols */
	size_t nrows, cap;
	int row_ok;		/* the current row has room in cells */
	int col;		/* the column of the member being written, -1: none */
	int dropped;		/* rows left out: no memory */
};

struct ns_out {
	FILE *f;
	const struct ns_out_col *want;	/* ns_out_table: for the next top-level array */
	struct table *tab;		/* text table being collected */
	int json, pretty;
	int depth;
	int overflow;        /* levels beyond OUT_MAX_DEPTH, output dropped */
	struct frame st[OUT_MAX_DEPTH];
};

struct ns_out *ns_out_new(FILE *f, int json, int pretty)
{
	struct ns_out *o;

	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->f = f;
	o->json = !!json;
	o->pretty = !!pretty;
	return o;
}

static void table_free(struct table *t)
{
	if (!t)
		return;
	free(t->cells);
	free(t->buf);
	free(t);
}

void ns_out_free(struct ns_out *o)
{
	if (!o)
		return;
	if (o->tab) {		/* an unfinished table: nothing of it is printed */
		fclose(o->f);
		o->f = o->tab->real;
		table_free(o->tab);
	}
	fflush(o->f);
	free(o);
}

int ns_out_is_json(const struct ns_out *o)
{
	return o && o->json;
}

static struct frame *top(struct ns_out *o)
{
	return o->depth ? &o->st[o->depth - 1] : NULL;
}

/* Number of bytes of a valid UTF-8 sequence at s, 0 if invalid. */
static int utf8_len(const unsigned char *s)
{
	int n, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* RFC 8259 section 7; invalid UTF-8 becomes U+FFFD so the output stays JSON. */
static void json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int n;

	fputc('"', f);
	while (*p) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) > 0) {
			fwrite(p, 1, n, f);
			p += n;
		} else {
			fputs("\\ufffd", f);
			p++;
		}
	}
	fputc('"', f);
}

/* Text values stay on one line: control characters become '?'. */
static void text_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

static void json_newline(struct ns_out *o, int depth)
{
	if (o->pretty)
		fprintf(o->f, "\n%*s", depth * JSON_INDENT, "");
}

/* ---- text tables ---- */

void ns_out_table(struct ns_out *o, const struct ns_out_col *cols)
{
	if (o && !o->json)
		o->want = cols;
}

/* A top-level array after ns_out_table: collect it. Without memory it is
 * printed as ordinary text lines instead. */
static void table_begin(struct ns_out *o)
{
	struct table *t;
	FILE *f;

	t = calloc(1, sizeof(*t));
	if (!t)
		return;
	f = open_memstream(&t->buf, &t->len);
	if (!f) {
		free(t);
		return;
	}
	t->cols = o->want;
	while (t->cols[t->ncols].key)
		t->ncols++;
	t->col = -1;
	t->real = o->f;
	o->f = f;
	o->tab = t;
}

static void table_row(struct table *t)
{
	struct cell *c;
	size_t i, cap;

	t->row_ok = 0;
	if (t->nrows == t->cap) {
		cap = t->cap ? 2 * t->cap : 16;
		c = reallocarray(t->cells, cap, t->ncols * sizeof(*c) ?: 1);
		if (!c) {
			t->dropped++;
			return;
		}
		t->cells = c;
		t->cap = cap;
	}
	c = &t->cells[t->nrows++ * t->ncols];
	for (i = 0; i < t->ncols; i++)
		c[i].start = c[i].end = CELL_NONE;
	t->row_ok = 1;
}

/* A member of a row begins (after its key): is it a column? */
static void table_cell(struct ns_out *o, const char *key)
{
	struct table *t = o->tab;
	size_t i;

	t->col = -1;
	if (!t->row_ok || !key)
		return;
	for (i = 0; i < t->ncols && strcmp(t->cols[i].key, key); i++)
		;
	if (i == t->ncols)
		return;
	fflush(o->f);
	t->col = i;
	t->cells[(t->nrows - 1) * t->ncols + i].start = t->len;
}

static void table_cell_end(struct ns_out *o)
{
	struct table *t = o->tab;

	if (t->col < 0)
		return;
	fflush(o->f);
	t->cells[(t->nrows - 1) * t->ncols + t->col].end = t->len;
	t->col = -1;
}

/* Characters on screen: UTF-8 sequences count once. */
static size_t text_width(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static void put_cell(FILE *f, const char *s, size_t len, size_t width, int last)
{
	size_t w = text_width(s, len);

	fwrite(s, 1, len, f);
	if (!last)
		fprintf(f, "%*s", (int)(width - w + 2), "");
}

static void put_title(FILE *f, const struct ns_out_col *c, size_t width, int last)
{
	const char *k;

	if (c->title) {
		put_cell(f, c->title, strlen(c->title), width, last);
		return;
	}
	for (k = c->key; *k; k++)
		fputc(toupper((unsigned char)*k), f);
	if (!last)
		fprintf(f, "%*s", (int)(width - strlen(c->key) + 2), "");
}

/* The array ended: print heading and rows, aligned. */
static void table_end(struct ns_out *o)
{
	struct table *t = o->tab;
	const struct cell *c;
	size_t *width, i, r;
	FILE *f = t->real;

	fclose(o->f);
	o->f = f;
	o->tab = NULL;
	width = calloc(t->ncols ?: 1, sizeof(*width));
	if (!width || !t->buf) {
		fprintf(stderr, "Error: out of memory\n");
		goto out;
	}
	for (i = 0; i < t->ncols; i++) {
		const char *h = t->cols[i].title ?: t->cols[i].key;

		width[i] = text_width(h, strlen(h));
		for (r = 0; r < t->nrows; r++) {
			c = &t->cells[r * t->ncols + i];
			if (c->end != CELL_NONE && text_width(t->buf + c->start, c->end - c->start) > width[i])
				width[i] = text_width(t->buf + c->start, c->end - c->start);
		}
	}
	for (i = 0; i < t->ncols; i++)
		put_title(f, &t->cols[i], width[i], i + 1 == t->ncols);
	fputc('\n', f);
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			c = &t->cells[r * t->ncols + i];
			if (c->end == CELL_NONE)
				put_cell(f, "-", 1, width[i], i + 1 == t->ncols);
			else
				put_cell(f, t->buf + c->start, c->end - c->start, width[i],
					 i + 1 == t->ncols);
		}
		fputc('\n', f);
	}
	if (t->dropped)
		fprintf(stderr, "Error: out of memory, %d rows left out\n", t->dropped);
out:
	free(width);
	table_free(t);
}

/* Separator and key before an element of the current container. */
static void sep(struct ns_out *o, const char *key)
{
	struct frame *t = top(o);

	if (o->json) {
		if (!t)
			return;
		if (t->count)
			fputc(',', o->f);
		json_newline(o, o->depth);
		if (t->kind == F_OBJ) {
			json_string(o->f, key ? key : "");
			fputs(o->pretty ? ": " : ":", o->f);
		}
	} else {
		if (t && t->count && !t->rows)
			fputs(t->kind == F_OBJ ? "  " : ",", o->f);
		/* A keyed scalar at top level still reads "key value". */
		if (key && (t ? t->kind == F_OBJ : 1)) {
			text_string(o->f, key);
			fputc(' ', o->f);
		}
	}
	if (t)
		t->count++;
	if (o->tab && o->depth == 2)
		table_cell(o, key);
}

/* After a scalar: end the line if the scalar is a line of its own. */
static void scalar_done(struct ns_out *o)
{
	struct frame *t = top(o);

	if (!t || (!o->json && t->rows))
		fputc('\n', o->f);
}

static int is_line(struct ns_out *o)
{
	struct frame *t = top(o);

	return !t || t->rows;
}

static void begin(struct ns_out *o, enum frame_kind kind, const char *key)
{
	struct frame *f;
	int line;

	if (!o)
		return;
	if (o->overflow || o->depth == OUT_MAX_DEPTH) {
		o->overflow++;
		return;
	}
	if (!o->json && !o->depth && kind == F_ARR && o->want)
		table_begin(o);
	o->want = NULL;
	if (o->tab && o->depth == 1)
		table_row(o->tab);
	line = !o->json && is_line(o);
	/* The key of a top-level container is not printed in text mode. */
	sep(o, line && !top(o) ? NULL : key);
	if (o->json)
		fputc(kind == F_OBJ ? '{' : '[', o->f);
	else if (kind == F_OBJ && !line)
		fputs("{ ", o->f);
	f = &o->st[o->depth++];
	f->kind = kind;
	f->count = 0;
	f->line = line;
	f->rows = !o->json && kind == F_ARR && o->depth == 1;
}

static void end(struct ns_out *o, enum frame_kind kind)
{
	struct frame *f;

	if (!o)
		return;
	if (o->overflow) {
		o->overflow--;
		return;
	}
	f = top(o);
	if (!f || f->kind != kind)
		return;     /* unbalanced call: ignore rather than corrupt */
	o->depth--;
	if (o->tab && !o->depth) {
		table_end(o);
		return;
	}
	if (o->json) {
		if (f->count)
			json_newline(o, o->depth);
		fputc(kind == F_OBJ ? '}' : ']', o->f);
		if (!o->depth)
			fputc('\n', o->f);
		return;
	}
	if (kind == F_ARR && !f->rows && !f->count)
		fputc('-', o->f);
	if (f->line && !f->rows)
		fputc('\n', o->f);
	else if (kind == F_OBJ && !f->line)
		fputs(f->count ? " }" : "}", o->f);
	if (o->tab && o->depth == 2)
		table_cell_end(o);	/* a row's member that is a container */
}

void ns_out_obj_begin(struct ns_out *o, const char *key)
{
	begin(o, F_OBJ, key);
}

void ns_out_obj_end(struct ns_out *o)
{
	end(o, F_OBJ);
}

void ns_out_arr_begin(struct ns_out *o, const char *key)
{
	begin(o, F_ARR, key);
}

void ns_out_arr_end(struct ns_out *o)
{
	end(o, F_ARR);
}

/* A scalar already formatted: JSON string if quoted, bare token otherwise. */
static void scalar(struct ns_out *o, const char *key, const char *val, int quoted)
{
	if (!o || o->overflow)
		return;
	sep(o, key);
	if (o->json && quoted)
		json_string(o->f, val);
	else if (o->json)
		fputs(val, o->f);
	else
		text_string(o->f, val);
	scalar_done(o);
	if (o->tab && o->depth == 2)
		table_cell_end(o);
}

void ns_out_str(struct ns_out *o, const char *key, const char *val)
{
	if (!val)
		ns_out_null(o, key);
	else
		scalar(o, key, val, 1);
}

void ns_out_u64(struct ns_out *o, const char *key, unsigned long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", v);
	scalar(o, key, buf, 0);
}

void ns_out_s64(struct ns_out *o, const char *key, long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	scalar(o, key, buf, 0);
}

void ns_out_bool(struct ns_out *o, const char *key, int v)
{
	scalar(o, key, v ? "true" : "false", 0);
}

void ns_out_null(struct ns_out *o, const char *key)
{
	scalar(o, key, o && o->json ? "null" : "-", 0);
}

void ns_out_fmt(struct ns_out *o, const char *key, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return;
	scalar(o, key, s, 1);
	free(s);
}

/*
 * JSON: {"error":"..."} on o->f. Inside an open object it becomes an "error"
 * member and inside an array an {"error":...} element, so the document stays
 * valid. Text: "Error: ..." on stderr, after flushing what was printed.
 */
void ns_out_error(struct ns_out *o, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return;
	if (!o || !o->json) {
		if (o)
			fflush(o->f);
		fprintf(stderr, "Error: %s\n", msg);
	} else if (top(o) && top(o)->kind == F_OBJ) {
		ns_out_str(o, "error", msg);
	} else {
		ns_out_obj_begin(o, NULL);
		ns_out_str(o, "error", msg);
		ns_out_obj_end(o);
	}
	free(msg);
}
