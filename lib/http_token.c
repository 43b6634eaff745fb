// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Bearer tokens of an HTTP listener (lib/http.h): parsing them from the
 * config and checking an Authorization header. No libmicrohttpd here, so
 * that config code and its unit tests link without it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "http.h"

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool b64token(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (('A' <= s[i] && s[i] <= 'Z') || ('a' <= s[i] && s[i] <= 'z') ||
			 ('0' <= s[i] && s[i] <= '9') || strchr("-._~+/", s[i])))
		i++;
	if (!i)
		return false;
	while (i < n && s[i] == '=')
		i++;
	return i == n;
}

int ns_http_token_add(struct ns_http_tokens *t, const char *val, char *msg, size_t len)
{
	size_t n = strlen(val), i;

	if (n < NS_HTTP_TOKEN_MIN || n > NS_HTTP_TOKEN_MAX || !b64token(val, n))
		return -EINVAL;
	for (i = 0; i < t->n; i++) {
		if (!strcmp(t->v[i], val)) {
			snprintf(msg, len, "the same token is listed twice");
			return -EINVAL;
		}
	}
	if (t->n == NS_HTTP_TOKENS_MAX) {
		snprintf(msg, len, "more than %d tokens", NS_HTTP_TOKENS_MAX);
		return -EINVAL;
	}
	memcpy(t->v[t->n++], val, n + 1);
	return 0;
}

bool ns_http_token_ok(const struct ns_http_tokens *t, const char *authorization)
{
	unsigned char got[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
	const char *tok;
	unsigned int i;
	int match = 0;

	if (!t || !t->n)
		return true;
	if (!authorization || strncasecmp(authorization, "Bearer ", 7))
		return false;
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	/* Digests of equal length: neither a token's length nor where it
	 * differs shows in the time taken; and no early exit. */
	SHA256((const unsigned char *)tok, strlen(tok), got);
	for (i = 0; i < t->n; i++) {
		SHA256((const unsigned char *)t->v[i], strlen(t->v[i]), want);
		match |= !CRYPTO_memcmp(got, want, sizeof(got));
	}
	return match;
}
