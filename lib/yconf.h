/* SPDX-License-Identifier: GPL-2.0 */
/*
 * YAML config files as a small tree that remembers where each node came
 * from, so that every config error can say "file:line:col: message".
 * Anchors, aliases and tags are rejected.
 */
#ifndef NS_YCONF_H
#define NS_YCONF_H

#include <stddef.h>

enum yc_kind { YC_SCALAR, YC_MAP, YC_SEQ };

struct yc_node {
	enum yc_kind kind;
	int line, col;            /* 1-based position of the node's start */
	char *value;              /* YC_SCALAR */
	size_t n;                 /* YC_MAP: pairs, YC_SEQ: items */
	char **keys;              /* YC_MAP keys */
	struct yc_node **key_nodes;   /* YC_MAP: scalar nodes of the keys (positions for errors) */
	struct yc_node **items;   /* YC_MAP values / YC_SEQ items */
	const char *file;         /* path, for error messages */
};

/* 0 or -errno; err gets "path:line:col: message" for syntax errors,
 * "path: strerror" for open errors. An empty document gives an empty map. */
int yc_load_file(const char *path, struct yc_node **root, char *err, size_t errlen);
int yc_load_string(const char *name, const char *text, struct yc_node **root,
		   char *err, size_t errlen);
void yc_free(struct yc_node *root);           /* safe on NULL */

/* NULL if absent or not a map. */
const struct yc_node *yc_get(const struct yc_node *map, const char *key);

/* Writes "file:line:col: msg", returns -EINVAL. */
int yc_error(const struct yc_node *node, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* NULL-terminated allowed list; unknown or duplicate key is an error at the
 * key's position; not a map is an error. 0 or -EINVAL. */
int yc_check_keys(const struct yc_node *map, const char *const *allowed, char *err, size_t errlen);

int yc_scalar(const struct yc_node *node, const char **val, char *err, size_t errlen);
int yc_u32(const struct yc_node *node, unsigned int *val, char *err, size_t errlen);  /* strict decimal */
/* true/false, yes/no, on/off */
int yc_bool(const struct yc_node *node, int *val, char *err, size_t errlen);

#endif
