/*
 * digest.h - SHA-256 through OpenSSL, cheap to call per record; and
 * XXH3-128 (libxxhash), for a content hash with no cryptographic property.
 *
 * OpenSSL 3's one-shot SHA256() looks the algorithm up on every call under a
 * global lock, which serialises threads; this fetches it once and keeps one
 * context per thread.  Thread-safe; nothing to release.
 */
#ifndef RD_DIGEST_H
#define RD_DIGEST_H

#include <stddef.h>

#define RD_SHA256_LEN 32
#define RD_XXH128_LEN 16

void rd_sha256(const void *p, size_t n, unsigned char out[RD_SHA256_LEN]);
/* Lowercase hex of the SHA-256 of p, in out (65 bytes). */
void rd_sha256_hex(const void *p, size_t n, char out[2 * RD_SHA256_LEN + 1]);

/*
 * XXH3-128 of p, big-endian (its canonical form): an index's content hash,
 * where no store's format asks for SHA-256 and nothing needs resistance to a
 * chosen collision.  Several times cheaper than SHA-256 per byte.
 */
void rd_xxh128(const void *p, size_t n, unsigned char out[RD_XXH128_LEN]);

#endif
