/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The config fuzz targets: the input as a NUL-terminated YAML text. */
#ifndef NS_FUZZ_CFG_H
#define NS_FUZZ_CFG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
				     __FILE__, __LINE__); abort(); } } while (0)

/* A heap copy with a NUL after len bytes (NULL if the input holds a NUL:
 * a loader never sees one from a file). */
static char *fuzz_text(const unsigned char *data, size_t len)
{
	char *t;

	if (memchr(data, '\0', len))
		return NULL;
	t = malloc(len + 1);
	if (t) {
		memcpy(t, data, len);
		t[len] = '\0';
	}
	return t;
}

/* An error message must be a non-empty, terminated "file:line:col: ..." or
 * plain sentence; a success leaves err untouched or empty. */
static void fuzz_err_ok(int ret, const char *err, size_t errlen)
{
	CHECK(memchr(err, '\0', errlen) != NULL);
	if (ret)
		CHECK(ret < 0 && err[0] != '\0');
}

#endif
