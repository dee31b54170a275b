/*
 * insync.h - the in-step digest: the local lines a run left in step.
 *
 * An incremental run whose remote is the base snapshot (recdelta-diff
 * --from-state) would compare every local record with the base row of its
 * key, parsing a million lines to find the hundred that changed.  The
 * digest says, of a line, without parsing it: its bytes are those of a
 * line whose record the base holds as it is.  Its entries are the keys of
 * the base, each with the hash of such a line (XXH3-128 of the line's
 * bytes, newline excluded) or none (zero: the base holds the key, and no
 * line of it was in step: an orphan, a record equal only under rules).
 * Entries are in the order of the local lines they were made from, so
 * that a reader walking the next version of the same file finds each next
 * one where the last one ended.
 *
 * Who trusts it: a line whose hash is an entry's is the record of that
 * entry's key as the base holds it, since the same bytes parse to the same
 * record (an ndjson: line with no parameters), as long as the base row is
 * as it was when the entry was made.  Every write to a base row while a
 * digest exists names its key in the state (insync_dirty, by trigger);
 * such an entry is not trusted.  Equal line hashes of different lines are
 * as unlikely as a collision of a 128-bit hash; the bytes are not compared.
 *
 * Checks: entries the writer could not vouch for (a create or update the
 * push may not have made), each with the content digest (record_digest()
 * under no rules) the base row must have for the entry's line to stand,
 * zero for a key that must only exist; recdelta-checkpoint prune settles
 * them against the base in the transaction that stores the next version.
 *
 * Versions: a whole digest (full), stamped with a generation number, and
 * a delta against one (delta, naming the whole one's generation): the
 * entries of the whole one that no longer stand (dead, by number) and the
 * entries added since.  The state keeps one of each; a run that changed
 * little writes only a delta, so that what is written grows with the
 * changes, and a whole one again when the delta has grown past an eighth
 * of it.
 *
 * Encoding (insync_encode): a header ("RDINSYNC", a version, the byte
 * order, the kind, the generations and the counts), the types, the
 * entries, the checks, the dead, then the names; native byte order,
 * refused by a reader of the other order (the state is one machine's).
 */
#ifndef RD_INSYNC_H
#define RD_INSYNC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

#define INSYNC_HASH 16

struct insync_ent {
	unsigned char lh[INSYNC_HASH];	/* the line's hash, or zero: none */
	uint32_t type;			/* of types[] */
	uint32_t keyoff, keylen;	/* in the pool */
};

struct insync_chk {
	uint32_t ent;
	unsigned char ch[INSYNC_HASH];	/* content digest, or zero: exists */
};

struct insync {
	int delta;			/* a delta against generation basegen */
	uint64_t gen, basegen;
	uint32_t *dead;			/* of a delta: the whole one's entries */
	size_t ndead, deadcap;
	struct insync_ent *ents;
	size_t n, cap;
	struct insync_chk *chk;
	size_t nchk, chkcap;
	char *pool;
	size_t poollen, poolcap;
	struct { uint32_t off, len; } *types;
	size_t ntypes, typecap;
	uint32_t lasttype;
	/* By line hash (insync_index): entry + 1, or 0. */
	uint32_t *slots;
	size_t nslots;
};

void insync_init(struct insync *d);
void insync_release(struct insync *d);
/* Add an entry (lh NULL: none); its number. */
size_t insync_add(struct insync *d, const unsigned char *lh, const char *type,
    size_t typelen, const char *key, size_t keylen);
/* Mark entry e to be checked against content digest ch (NULL: exists). */
void insync_check(struct insync *d, size_t e, const unsigned char *ch);
/* Of a delta: entry e of the whole one no longer stands. */
void insync_dead(struct insync *d, size_t e);
/* A new generation number, unlike any other's in all likelihood. */
uint64_t insync_newgen(void);

static inline const char *
insync_type(const struct insync *d, const struct insync_ent *e, size_t *len)
{
	*len = d->types[e->type].len;
	return d->pool + d->types[e->type].off;
}

static inline const char *
insync_key(const struct insync *d, const struct insync_ent *e, size_t *len)
{
	*len = e->keylen;
	return d->pool + e->keyoff;
}

static inline int
insync_has_line(const struct insync_ent *e)
{
	static const unsigned char zero[INSYNC_HASH];

	return memcmp(e->lh, zero, INSYNC_HASH) != 0;
}

/* The encoding into out (appended). */
void insync_encode(const struct insync *d, struct sb *out);
/*
 * The kind, generation and entry count of the encoding at buf (at least
 * its header: INSYNC_HEADER bytes): 0, or -1 when it is not one this
 * build reads.
 */
#define INSYNC_HEADER 80
int insync_header(const char *buf, size_t len, int *delta, uint64_t *gen,
    uint64_t *n);
/*
 * Decode an encoding of total bytes into an empty d, reading it through
 * rd (the len bytes at off into dst: 0, or -1 with a message), each part
 * straight into its array, with room for room more entries and poolroom
 * more bytes of names: 0, or -1 with a message (status 3: not an
 * encoding this build reads, named what).
 */
int insync_load(struct insync *d, size_t total,
    int (*rd)(void *ctx, void *dst, size_t len, size_t off), void *ctx,
    const char *what, size_t room, size_t poolroom);
/* Decode buf (len bytes) into an empty d: 0, or -1 with a message (status 3). */
int insync_decode(struct insync *d, const char *buf, size_t len,
    const char *what);
/*
 * A table of the entries with a line, for insync_find; an entry whose
 * number skip(ctx, i) is true for is left out (skip NULL: none).
 */
void insync_index(struct insync *d, int (*skip)(void *ctx, size_t i),
    void *ctx);
/* The entry with line hash lh in the table, or -1. */
long insync_find(const struct insync *d, const unsigned char *lh);

/* The file at path as d (empty): 0, or -1 with a message. */
int insync_read_file(struct insync *d, const char *path);
/* d into a new file at path: 0, or -1 with a message (status 4). */
int insync_write_file(const struct insync *d, const char *path);

/*
 * A set of (type, key): the keys written since a digest was.  Zero is
 * empty; add them all, then index once, then find.
 */
struct keyset {
	struct sb pool;
	struct keyset_key { size_t off, tn, kn; } *v;
	size_t n, cap;
	uint32_t *slots;	/* v's number + 1, or 0 */
	size_t nslots;
};

void keyset_add(struct keyset *ks, const char *t, size_t tn, const char *k,
    size_t kn);
void keyset_index(struct keyset *ks);
/* The number of (t, k) in ks, or -1. */
long keyset_find(const struct keyset *ks, const char *t, size_t tn,
    const char *k, size_t kn);
void keyset_release(struct keyset *ks);

static inline const char *
keyset_type(const struct keyset *ks, size_t i, size_t *tn)
{
	*tn = ks->v[i].tn;
	return ks->pool.buf + ks->v[i].off;
}

static inline const char *
keyset_key(const struct keyset *ks, size_t i, size_t *kn)
{
	*kn = ks->v[i].kn;
	return ks->pool.buf + ks->v[i].off + ks->v[i].tn;
}

#endif
