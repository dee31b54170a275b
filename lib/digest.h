/*
 * digest.h - SHA-256 through OpenSSL, cheap to call per record.
 *
 * OpenSSL 3's one-shot SHA256() looks the algorithm up on every call under a
 * global lock, which serialises threads; this fetches it once and keeps one
 * context per thread.  Thread-safe; nothing to release.
 */
#ifndef RD_DIGEST_H
#define RD_DIGEST_H

#include <stddef.h>

#define RD_SHA256_LEN 32

void rd_sha256(const void *p, size_t n, unsigned char out[RD_SHA256_LEN]);
/* Lowercase hex of the SHA-256 of p, in out (65 bytes). */
void rd_sha256_hex(const void *p, size_t n, char out[2 * RD_SHA256_LEN + 1]);

#endif
