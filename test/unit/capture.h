/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Unit tests: what a function writes on stderr. Include after <cmocka.h>. */
#ifndef NS_TEST_CAPTURE_H
#define NS_TEST_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

/* Run f(arg) with stderr in a temporary file; what it wrote into out. */
static inline void capture_stderr(void (*f)(void *), void *arg, char *out, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	f(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, len - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

#endif
