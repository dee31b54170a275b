/*
 * shard.h - --shard I/N: which records of a data set one of N processes
 * handles.
 *
 * The shard of a record is a pure function of its (type, key), the same in
 * every process, on every machine and in every release, so that N copies of
 * a flow, started apart (GNU parallel, other hosts), split the records of
 * every store alike and between them handle each record exactly once.  It is
 * specified in recdelta-stream(5) so that other tools can reproduce it: H is
 * the first 8 bytes, read big-endian, of the SHA-256 of the type's UTF-8
 * bytes, one zero byte, and the key's UTF-8 bytes; the record belongs to
 * shard H mod N + 1.  Shards are numbered 1 to N, as GNU parallel numbers
 * its jobs ({#}).  The hash is not the index's table hash (index_keyhash),
 * which may change from one release to the next.
 *
 * A struct shard with n 0 is no shard: every record belongs to it.
 */
#ifndef RD_SHARD_H
#define RD_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define SHARD_MAX 1000000	/* the largest N */

struct shard {
	unsigned long i, n;	/* shard i of n, 1 <= i <= n; n 0: none */
};

/*
 * Parse "I/N" (decimal, 1 <= I <= N <= SHARD_MAX) into sh: 0, or -1 with a
 * message (status 2) naming the option.
 */
int shard_parse(struct shard *sh, const char *spec);

/* The 64-bit hash H of (type, key). */
uint64_t shard_hash(const char *type, size_t typelen, const char *key,
    size_t keylen);

/* True when (type, key) belongs to sh (always, when sh is none). */
int shard_keeps(const struct shard *sh, const char *type, size_t typelen,
    const char *key, size_t keylen);

/* "I/N" into buf (at least 24 bytes). */
void shard_format(const struct shard *sh, char *buf, size_t size);

#endif
