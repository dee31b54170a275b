/*
 * index.h - the keyed index of one input: (type, key) -> hash, rev, line.
 *
 * A program that must see a whole input before it writes (diff: local and
 * remote; merge: base, local and remote) fetches each input into an index of
 * its own.  The index keeps, per line of the input, in input order: for a
 * record its type (by number: each type's name is kept once), key and rev
 * (in one pool), the first INDEX_HASH_LEN bytes
 * of the caller's hash of its fields, and where its line can be read again;
 * for a line of another kind only where it is, marked as passing through.
 * It does not keep record bodies: a record whose line the store can read
 * again cheaply (store_reread, an ndjson: file) is read back from the store
 * by the offset its rline carried; any other line is held in a spool file
 * the index owns.  So memory grows with the number of keys, not with the
 * size of records, and a record is parsed again only where the caller asks.
 *
 * Invariants: one entry per (type, key) (index_add refuses a second one,
 * naming the line of the first); the entries of index_at(0 .. len-1) are in
 * input order; the hash table finds each record entry, never a pass-through
 * one.  An index is filled by one thread (index_add, index_add_pass, then
 * index_finish) and read after that; two indexes are independent, so two
 * inputs may be fetched into two indexes from two threads.
 *
 * Ownership: the index borrows the store (which must stay open until
 * index_release) and owns its entries, pool, table and spool; what
 * index_type(), index_key() and index_rev() return is valid until
 * index_release.  index_read() and index_parse() fill caller-owned buffers.
 *
 * Cost: index_add and index_find are O(1) expected (open addressing, load at
 * most 1/2; a slot holds the low half of the key's hash and the entry's
 * number, so growing the table reads no entry and most failed probes touch
 * only the table); the entry is 48 bytes plus the pool's key and rev.  An
 * input holds at most INDEX_TYPES_MAX types (else index_add fails).
 * index_reserve() sizes the arrays once for an expected count.  index_read
 * is one pread of the line.  A walk first tries, in each later index, the
 * entry after the last one it matched there: inputs in the same order (two
 * exports of one data set) match without a table probe.
 *
 * Several inputs: index_walk visits every key present in any of n indexes
 * once, with the entry of each index that has it.  index_keyhash() is the
 * hash the table uses, a pure function of (type, key); --shard I/N does not
 * use it but lib/shard.h's hash, which is specified for other tools and
 * independent of the table's slots.
 */
#ifndef RD_INDEX_H
#define RD_INDEX_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

#define INDEX_HASH_LEN 16	/* of the caller's hash, kept and compared */
#define INDEX_TYPES_MAX 65535	/* record types in one input */

enum {
	IX_PASS = 1,		/* a line of another kind, passing through */
	IX_SPOOLED = 2,		/* its line is in the spool, not the store */
	IX_SEEN = 4,		/* visited by the current index_walk */
	IX_SELECTED = 8		/* the caller's selection (--where) holds */
};

struct index_ent {
	off_t off;		/* of its line, in the store or the spool */
	uint32_t len;		/* of its line */
	uint32_t lineno;	/* in the input, for messages */
	uint32_t id;		/* of its key, then rev, in the pool */
	uint32_t keylen, revlen;
	uint16_t type;		/* its type's number (index_type) */
	uint8_t flags;
	unsigned char hash[INDEX_HASH_LEN];
};

/* A type's name in the pool: the entries name it by number. */
struct index_typename {
	uint32_t off, len;
};

/* The members are the index's own; read them only through the functions. */
struct index {
	struct store *store;	/* borrowed: where lines are read again */
	struct index_ent *ents;
	size_t n, cap, nrec;
	char *pool;
	size_t poollen, poolcap;
	uint64_t *table;	/* hash's low half << 32 | entry + 1, or 0 */
	size_t tcap;
	struct index_typename *types;
	size_t ntypes;
	uint16_t *ttable;	/* type number + 1, or 0; 2 * INDEX_TYPES_MAX */
	uint16_t lasttype;	/* the type of the last record added */
	size_t hint;		/* a walk's guess at the next match: ents[hint] */
	FILE *spool;		/* made at the first line the store cannot reread */
	off_t spoolend;
	int walked;		/* IX_SEEN may be set somewhere */
};

/* An empty index of what store s fetches. */
void index_init(struct index *ix, struct store *s);
void index_release(struct index *ix);
/*
 * Room for about n records, so that filling the index does not grow it
 * step by step; a hint: the index still grows past it.
 */
void index_reserve(struct index *ix, size_t n);

/*
 * Add the record of l (l->rec set; a tombstone too, if the caller wants one
 * kept) with the caller's hash of it (at least INDEX_HASH_LEN bytes).  -1
 * with a message: a duplicate (type, key) (status 3, naming both lines), a
 * line too long (3), the spool or the pool full (4).
 */
int index_add(struct index *ix, const struct rline *l, const unsigned char *hash);
/* Mark the entry last added as selected (IX_SELECTED). */
void index_select_last(struct index *ix);
/* Add a line of another kind, to be read again in its place. */
int index_add_pass(struct index *ix, const struct rline *l);
/* After the last add: 0, or -1 with a message when the spool failed. */
int index_finish(struct index *ix);

/* Entries (records and pass-through lines), and records alone. */
static inline size_t index_len(const struct index *ix) { return ix->n; }
static inline size_t index_nrec(const struct index *ix) { return ix->nrec; }
static inline const struct index_ent *
index_at(const struct index *ix, size_t i)
{
	return &ix->ents[i];
}

static inline int
index_is_pass(const struct index_ent *e)
{
	return e->flags & IX_PASS;
}

/* True when e is a record entry marked by index_select_last; e may be NULL. */
static inline int
index_is_selected(const struct index_ent *e)
{
	return e && (e->flags & IX_SELECTED);
}

/*
 * A record entry's type (index_typelen bytes), key and rev (revlen 0:
 * none); not NUL-terminated.
 */
static inline const char *
index_type(const struct index *ix, const struct index_ent *e)
{
	return ix->pool + ix->types[e->type].off;
}

static inline size_t
index_typelen(const struct index *ix, const struct index_ent *e)
{
	return ix->types[e->type].len;
}

static inline const char *
index_key(const struct index *ix, const struct index_ent *e)
{
	return ix->pool + e->id;
}

static inline const char *
index_rev(const struct index *ix, const struct index_ent *e)
{
	return ix->pool + e->id + e->keylen;
}

/* True when two record entries' hashes are equal. */
static inline int
index_same_hash(const struct index_ent *a, const struct index_ent *b)
{
	return memcmp(a->hash, b->hash, INDEX_HASH_LEN) == 0;
}

/* The record entry of (type, key), or NULL. */
const struct index_ent *index_find(const struct index *ix, const char *type,
    size_t typelen, const char *key, size_t keylen);

/* The hash of (type, key) the table uses. */
uint64_t index_keyhash(const char *type, size_t typelen, const char *key,
    size_t keylen);

/*
 * An entry's line into buf (NUL-terminated, without newline).  -1 with a
 * message (status 4) when it cannot be read, or the file it is read from
 * changed.
 */
int index_read(struct index *ix, const struct index_ent *e, struct sb *buf);
/*
 * A record entry's line read back into buf and parsed: its values in the
 * arena, rec's strings borrowing from them and from buf.  -1 with a message.
 */
int index_parse(struct index *ix, const struct index_ent *e, struct sb *buf,
    struct arena *a, struct json *obj, struct record *rec);

/*
 * Every key of n indexes once: first index 0's entries in input order (its
 * pass-through lines among them), then each later index's records not met
 * before, in its input order.  The pass-through lines of the later indexes
 * are not visited: a caller writes them where it wants with index_at().
 * Each step fills at[0 .. n-1] with the entry of each index for the key, or
 * NULL (for a pass-through line, only at[0] is set).  A walk marks the
 * entries it met (IX_SEEN), so the indexes must not be walked by two walks
 * at once; a new walk starts afresh.
 */
struct index_walk {
	struct index *const *v;
	size_t n, side, i;
	const struct index *also;	/* index_walk_also's, or NULL */
};

void index_walk_init(struct index_walk *w, struct index *const *v, size_t n);
/*
 * Another index the caller looks index 0's keys up in (index_find) as it
 * walks: the walk fetches ahead into the memory cache what those lookups,
 * and its own, will read, as it does for the indexes it walks.
 */
void index_walk_also(struct index_walk *w, const struct index *ix);
/* 1 and at[] filled, or 0 when every key was visited. */
int index_walk_next(struct index_walk *w, const struct index_ent **at);

#endif
