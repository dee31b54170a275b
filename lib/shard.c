/* shard.c - the shard of a (type, key). */
#include "shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "util.h"

/* A decimal number without sign or blanks, up to SHARD_MAX: 0 or -1. */
static int
number(const char *s, size_t n, unsigned long *v)
{
	size_t k;

	if (n == 0 || n > 7)
		return -1;
	*v = 0;
	for (k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return -1;
		*v = *v * 10 + (unsigned long)(s[k] - '0');
	}
	return *v > SHARD_MAX ? -1 : 0;
}

int
shard_parse(struct shard *sh, const char *spec)
{
	const char *slash = strchr(spec, '/');
	unsigned long i, n;

	if (!slash || number(spec, (size_t)(slash - spec), &i) < 0 ||
	    number(slash + 1, strlen(slash + 1), &n) < 0 || n < 1 ||
	    i < 1 || i > n) {
		rd_seterr(RD_EXIT_USAGE, "--shard: \"%s\": expected I/N, "
		    "shard I of N, 1 <= I <= N <= %d", rd_quote(spec,
		    strlen(spec)), SHARD_MAX);
		return -1;
	}
	sh->i = i;
	sh->n = n;
	return 0;
}

uint64_t
shard_hash(const char *type, size_t typelen, const char *key, size_t keylen)
{
	unsigned char small[256], md[RD_SHA256_LEN], *buf = small;
	size_t n = typelen + 1 + keylen;
	uint64_t h = 0;
	int k;

	if (n > sizeof small)
		buf = xmalloc(n);
	memcpy(buf, type, typelen);
	buf[typelen] = 0;
	memcpy(buf + typelen + 1, key, keylen);
	rd_sha256(buf, n, md);
	if (buf != small)
		free(buf);
	for (k = 0; k < 8; k++)
		h = h << 8 | md[k];
	return h;
}

int
shard_keeps(const struct shard *sh, const char *type, size_t typelen,
    const char *key, size_t keylen)
{
	if (!sh || sh->n == 0)
		return 1;
	if (sh->n == 1)
		return 1;
	return shard_hash(type, typelen, key, keylen) % sh->n == sh->i - 1;
}

void
shard_format(const struct shard *sh, char *buf, size_t size)
{
	snprintf(buf, size, "%lu/%lu", sh->i, sh->n);
}
