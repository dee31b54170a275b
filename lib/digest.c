/* digest.c - SHA-256 with the algorithm fetched once; XXH3-128. */
#include "digest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util.h"

static EVP_MD *sha256;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t ctxkey;

static void
free_ctx(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void
init(void)
{
	if (!(sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		rd_die(RD_EXIT_RUNTIME, "OpenSSL has no SHA-256");
	if (pthread_key_create(&ctxkey, free_ctx) != 0)
		rd_die(RD_EXIT_RUNTIME, "cannot create a thread key");
}

void
rd_sha256(const void *p, size_t n, unsigned char out[RD_SHA256_LEN])
{
	EVP_MD_CTX *ctx;
	unsigned int len;

	pthread_once(&once, init);
	if (!(ctx = pthread_getspecific(ctxkey))) {
		if (!(ctx = EVP_MD_CTX_new()))
			rd_die(RD_EXIT_RUNTIME, "out of memory");
		pthread_setspecific(ctxkey, ctx);
	}
	if (EVP_DigestInit_ex2(ctx, sha256, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, p, n) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1)
		rd_die(RD_EXIT_RUNTIME, "SHA-256 failed");
}

void
rd_sha256_hex(const void *p, size_t n, char out[2 * RD_SHA256_LEN + 1])
{
	unsigned char md[RD_SHA256_LEN];

	rd_sha256(p, n, md);
	hex_encode(out, md, sizeof md);
}

void
rd_xxh128(const void *p, size_t n, unsigned char out[RD_XXH128_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
	memcpy(out, c.digest, RD_XXH128_LEN);
}
