// SPDX-License-Identifier: GPL-2.0
/*
 * YAML config loader: libyaml's event stream built into a tree of yc_node
 * that keeps each node's position. Anything that a config cannot use safely
 * (anchors, aliases, tags, several documents, non-scalar keys, duplicate
 * keys) is rejected with a position rather than silently reinterpreted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"
#include "yconf.h"

#define YC_MAX_DEPTH     64
#define YC_MAX_FILE_SIZE (16u << 20)   /* bytes; a config is far smaller */

/* The root owns the file name that every node points to. */
struct yc_doc {
	struct yc_node root;    /* first: yc_free(root) frees the doc */
	char file[];
};

struct parse {
	yaml_parser_t p;
	const char *name;
	const char *text;       /* for turning a byte offset into line:col */
	char *err;
	size_t errlen;
	int depth;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *kind_name(enum yc_kind k)
{
	switch (k) {
	case YC_SCALAR:
		return "a scalar";
	case YC_MAP:
		return "a mapping";
	default:
		return "a sequence";
	}
}

int yc_error(const struct yc_node *node, char *err, size_t errlen, const char *fmt, ...)
{
	size_t off = 0;
	va_list ap;
	int n;

	if (!err || !errlen)
		return -EINVAL;
	if (node) {
		n = snprintf(err, errlen, "%s:%d:%d: ", node->file ? node->file : "<config>",
			     node->line, node->col);
		off = n < 0 ? 0 : (size_t)n;
	}
	if (off >= errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err + off, errlen - off, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void free_node(struct yc_node *n);

/* Everything a node owns, but not the node itself. */
static void free_children(struct yc_node *n)
{
	size_t i;

	for (i = 0; i < n->n; i++) {
		if (n->kind == YC_MAP)
			free_node(n->key_nodes[i]);   /* keys[i] is key_nodes[i]->value */
		free_node(n->items[i]);
	}
	free(n->value);
	free(n->keys);
	free(n->key_nodes);
	free(n->items);
}

static void free_node(struct yc_node *n)
{
	if (!n)
		return;
	free_children(n);
	free(n);
}

void yc_free(struct yc_node *root)
{
	if (!root)
		return;
	free_children(root);
	free((struct yc_doc *)root);
}

static int perr(struct parse *c, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* An error at a libyaml mark (0-based) as "name:line:col: message". */
static int perr(struct parse *c, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	seterr(c->err, c->errlen, "%s:%zu:%zu: %s", c->name, m->line + 1, m->column + 1, msg);
	return -EINVAL;
}

/* libyaml's own error, after yaml_parser_parse() failed. */
static int parser_error(struct parse *c)
{
	yaml_parser_t *p = &c->p;
	yaml_mark_t m = p->problem_mark;
	size_t i;

	if (p->error == YAML_MEMORY_ERROR) {
		seterr(c->err, c->errlen, "%s: out of memory", c->name);
		return -ENOMEM;
	}
	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark. */
		memset(&m, 0, sizeof(m));
		for (i = 0; i < p->problem_offset && c->text[i]; i++) {
			if (c->text[i] == '\n')
				m.line++, m.column = 0;
			else
				m.column++;
		}
		return perr(c, &m, "%s", p->problem ? p->problem : "invalid input");
	}
	if (p->context)
		return perr(c, &m, "%s (%s at line %zu)", p->problem, p->context,
			    p->context_mark.line + 1);
	return perr(c, &m, "%s", p->problem ? p->problem : "syntax error");
}

static int next_event(struct parse *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->p, ev))
		return parser_error(c);
	return 0;
}

static struct yc_node *new_node(enum yc_kind kind, const yaml_event_t *ev, const char *file)
{
	struct yc_node *n;

	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->line = ev->start_mark.line + 1;
	n->col = ev->start_mark.column + 1;
	n->file = file;
	return n;
}

/* Room for one more item (and key, for maps). */
static int grow(struct yc_node *n, size_t *cap)
{
	size_t ncap = *cap ? *cap * 2 : 4;
	void *p;

	if (n->n < *cap)
		return 0;
	p = reallocarray(n->items, ncap, sizeof(*n->items));
	if (!p)
		return -ENOMEM;
	n->items = p;
	if (n->kind == YC_MAP) {
		p = reallocarray(n->keys, ncap, sizeof(*n->keys));
		if (!p)
			return -ENOMEM;
		n->keys = p;
		p = reallocarray(n->key_nodes, ncap, sizeof(*n->key_nodes));
		if (!p)
			return -ENOMEM;
		n->key_nodes = p;
	}
	*cap = ncap;
	return 0;
}

static int parse_node(struct parse *c, yaml_event_t *ev, const char *file, struct yc_node **out);

/* A new key of map must be a scalar not seen before in that map. */
static int check_new_key(struct parse *c, const struct yc_node *map, const struct yc_node *key)
{
	size_t i;

	if (key->kind != YC_SCALAR)
		return yc_error(key, c->err, c->errlen, "mapping keys must be scalars");
	for (i = 0; i < map->n; i++)
		if (!strcmp(map->keys[i], key->value))
			return yc_error(key, c->err, c->errlen,
					"duplicate key '%s' (first at line %d)",
					key->value, map->key_nodes[i]->line);
	return 0;
}

/* The items of a sequence, or the key/value pairs of a mapping, up to its end event. */
static int parse_children(struct parse *c, struct yc_node *n)
{
	yaml_event_type_t end = n->kind == YC_MAP ? YAML_MAPPING_END_EVENT
						  : YAML_SEQUENCE_END_EVENT;
	struct yc_node *key = NULL, *val;
	yaml_event_t ev;
	size_t cap = 0;
	int ret;

	for (;;) {
		ret = next_event(c, &ev);
		if (ret)
			goto out;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			break;
		}
		ret = grow(n, &cap);
		if (ret) {
			yaml_event_delete(&ev);
			goto out;
		}
		if (n->kind == YC_MAP) {
			ret = parse_node(c, &ev, n->file, &key);
			if (!ret)
				ret = check_new_key(c, n, key);
			if (!ret)
				ret = next_event(c, &ev);
			if (ret)
				goto out;
			n->keys[n->n] = key->value;
			n->key_nodes[n->n] = key;
		}
		ret = parse_node(c, &ev, n->file, &val);
		if (ret)
			goto out;
		n->items[n->n++] = val;
		key = NULL;
	}
out:
	free_node(key);
	return ret;
}

/* Build the node that starts with ev (consumed) and everything below it. */
static int parse_node(struct parse *c, yaml_event_t *ev, const char *file, struct yc_node **out)
{
	yaml_char_t *anchor = NULL, *tag = NULL;
	struct yc_node *n = NULL;
	enum yc_kind kind;
	int ret = 0;

	*out = NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		kind = YC_SCALAR;
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		kind = YC_MAP;
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		kind = YC_SEQ;
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_ALIAS_EVENT:
		ret = perr(c, &ev->start_mark, "aliases (*%s) are not supported",
			   ev->data.alias.anchor);
		goto out;
	default:
		ret = perr(c, &ev->start_mark, "unexpected YAML event");
		goto out;
	}
	if (anchor) {
		ret = perr(c, &ev->start_mark, "anchors (&%s) are not supported", anchor);
		goto out;
	}
	if (tag) {
		ret = perr(c, &ev->start_mark, "tags (%s) are not supported", tag);
		goto out;
	}
	if (c->depth >= YC_MAX_DEPTH) {
		ret = perr(c, &ev->start_mark, "nesting deeper than %d levels", YC_MAX_DEPTH);
		goto out;
	}
	n = new_node(kind, ev, file);
	if (!n) {
		ret = -ENOMEM;
		goto out;
	}
	if (kind == YC_SCALAR) {
		if (strlen((char *)ev->data.scalar.value) != ev->data.scalar.length) {
			ret = perr(c, &ev->start_mark, "NUL character in value");
			goto out;
		}
		n->value = strdup((char *)ev->data.scalar.value);
		if (!n->value)
			ret = -ENOMEM;
	} else {
		c->depth++;
		ret = parse_children(c, n);
		c->depth--;
	}
out:
	yaml_event_delete(ev);
	if (ret)
		free_node(n);
	else
		*out = n;
	return ret;
}

/* Read one event that carries no node; report its type and position. */
static int skip_event(struct parse *c, yaml_event_type_t *type, yaml_mark_t *mark)
{
	yaml_event_t ev;
	int ret;

	ret = next_event(c, &ev);
	if (ret)
		return ret;
	if (type)
		*type = ev.type;
	if (mark)
		*mark = ev.start_mark;
	yaml_event_delete(&ev);
	return 0;
}

/* The whole stream: zero or one document. */
static int parse_stream(struct parse *c, const char *file, struct yc_node **root)
{
	yaml_event_type_t type = YAML_NO_EVENT;
	struct yc_node *n = NULL;
	yaml_mark_t mark;
	yaml_event_t ev;
	int ret;

	ret = skip_event(c, NULL, NULL);                /* STREAM_START */
	if (!ret)
		ret = skip_event(c, &type, NULL);       /* DOCUMENT_START or STREAM_END */
	if (ret || type == YAML_STREAM_END_EVENT)
		goto out;                               /* empty file: empty map */
	ret = next_event(c, &ev);
	if (!ret)
		ret = parse_node(c, &ev, file, &n);
	if (!ret)
		ret = skip_event(c, NULL, NULL);        /* DOCUMENT_END */
	if (!ret)
		ret = skip_event(c, &type, &mark);
	if (!ret && type != YAML_STREAM_END_EVENT)
		ret = perr(c, &mark, "only one YAML document is allowed");
out:
	/* "---" alone, or only comments after it: an empty scalar; treat as {}. */
	if (!ret && n && n->kind == YC_SCALAR && !*n->value) {
		free_node(n);
		n = NULL;
	}
	if (ret)
		free_node(n);
	else
		*root = n;
	return ret;
}

/* Move the parsed root into a yc_doc that also holds the file name. */
static int make_doc(const char *name, struct yc_node *n, struct yc_doc **out)
{
	size_t len = strlen(name) + 1;
	struct yc_doc *d;

	d = calloc(1, sizeof(*d) + len);
	if (!d)
		return -ENOMEM;
	memcpy(d->file, name, len);
	if (n) {
		d->root = *n;
		free(n);
	} else {
		d->root.kind = YC_MAP;
		d->root.line = d->root.col = 1;
	}
	*out = d;
	return 0;
}

static void set_file(struct yc_node *n, const char *file)
{
	size_t i;

	n->file = file;
	for (i = 0; i < n->n; i++) {
		if (n->kind == YC_MAP)
			set_file(n->key_nodes[i], file);
		set_file(n->items[i], file);
	}
}

int yc_load_string(const char *name, const char *text, struct yc_node **root,
		   char *err, size_t errlen)
{
	struct parse c = { .name = name, .text = text, .err = err, .errlen = errlen };
	struct yc_node *n = NULL;
	struct yc_doc *d = NULL;
	int ret;

	*root = NULL;
	if (!yaml_parser_initialize(&c.p)) {
		seterr(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&c.p, (const unsigned char *)text, strlen(text));
	ret = parse_stream(&c, name, &n);
	if (ret)
		goto out;
	ret = make_doc(name, n, &d);
	if (ret) {
		free_node(n);
		goto out;
	}
	set_file(&d->root, d->file);
	*root = &d->root;
out:
	if (ret == -ENOMEM)
		seterr(err, errlen, "%s: out of memory", name);
	yaml_parser_delete(&c.p);
	return ret;
}

static int read_file(const char *path, char **text, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;
	int ret = 0;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= YC_MAX_FILE_SIZE) {
				ret = -EFBIG;
				seterr(err, errlen, "%s: larger than %u bytes", path,
				       YC_MAX_FILE_SIZE);
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap + 1);
			if (!buf) {
				ret = -ENOMEM;
				seterr(err, errlen, "%s: out of memory", path);
				goto out;
			}
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		ret = -EIO;
		seterr(err, errlen, "%s: read error", path);
		goto out;
	}
	if (memchr(buf, '\0', len)) {
		ret = -EINVAL;
		seterr(err, errlen, "%s: contains a NUL byte", path);
		goto out;
	}
	buf[len] = '\0';
	*text = buf;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return ret;
}

int yc_load_file(const char *path, struct yc_node **root, char *err, size_t errlen)
{
	char *text = NULL;
	int ret;

	*root = NULL;
	ret = read_file(path, &text, err, errlen);
	if (ret)
		return ret;
	ret = yc_load_string(path, text, root, err, errlen);
	free(text);
	return ret;
}

const struct yc_node *yc_get(const struct yc_node *map, const char *key)
{
	size_t i;

	if (!map || map->kind != YC_MAP)
		return NULL;
	for (i = 0; i < map->n; i++)
		if (!strcmp(map->keys[i], key))
			return map->items[i];
	return NULL;
}

int yc_check_keys(const struct yc_node *map, const char *const *allowed, char *err, size_t errlen)
{
	const char *const *a;
	size_t i, j;

	if (!map)
		return 0;
	if (map->kind != YC_MAP)
		return yc_error(map, err, errlen, "expected a mapping, found %s",
				kind_name(map->kind));
	for (i = 0; i < map->n; i++) {
		for (a = allowed; *a && strcmp(*a, map->keys[i]); a++)
			;
		if (!*a)
			return yc_error(map->key_nodes[i], err, errlen, "unknown key '%s'",
					map->keys[i]);
		for (j = 0; j < i; j++)
			if (!strcmp(map->keys[j], map->keys[i]))
				return yc_error(map->key_nodes[i], err, errlen,
						"duplicate key '%s'", map->keys[i]);
	}
	return 0;
}

int yc_scalar(const struct yc_node *node, const char **val, char *err, size_t errlen)
{
	if (!node) {
		seterr(err, errlen, "missing value");
		return -EINVAL;
	}
	if (node->kind != YC_SCALAR)
		return yc_error(node, err, errlen, "expected a scalar, found %s",
				kind_name(node->kind));
	*val = node->value;
	return 0;
}

int yc_u32(const struct yc_node *node, unsigned int *val, char *err, size_t errlen)
{
	const char *s = NULL;
	__u32 v;
	int ret;

	ret = yc_scalar(node, &s, err, errlen);
	if (ret)
		return ret;
	if (ns_parse_u32(s, &v))
		return yc_error(node, err, errlen,
				"expected a decimal integer 0..4294967295, got '%s'", s);
	*val = v;
	return 0;
}

int yc_bool(const struct yc_node *node, int *val, char *err, size_t errlen)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char *s = NULL;
	size_t i;
	int ret;

	ret = yc_scalar(node, &s, err, errlen);
	if (ret)
		return ret;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*val = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*val = 0;
			return 0;
		}
	}
	return yc_error(node, err, errlen, "expected true or false, got '%s'", s);
}
