/*
 * store_layout.h - the per-entity layout that dir: and webdav: share, with
 * no I/O of its own.
 *
 * The layout of ../protocols/webdav.md section 4: the index names every
 * entity's version and the sha256 of its file; the file
 * BASE/TYPENAME/KEYNAME~V.json holds version V, is written once, and is
 * removed when a later version supersedes it.  BASE/meta.json, the root of
 * the index, is the only commit point: a reader trusts it and nothing else,
 * and reads no file it does not name.
 *
 * The index of "recdelta-store/2" is split in B buckets (B a power of two):
 * the entity (type, key) is in bucket shard_hash(type, key) mod B
 * (shard.h), and bucket i's entries are in the file
 * BASE/meta.idx/I~G.json, I and G in decimal, where G is the generation of
 * the commit that wrote it; meta.json names B and each bucket's G (0: no
 * file), and a bucket file says its bucket, B and G again, so that no stale
 * or misplaced file is read as current.  A commit writes the files of the
 * buckets it changed, then meta.json; so it writes O(changes) of the index,
 * not all of it.  B starts at LAYOUT_B0 and doubles, every bucket written
 * again, when a commit leaves more than 128 B entries (tombstones count),
 * until there are at most 64 B.  The "recdelta-store/1" layout, the whole
 * index in meta.json, is read as well; the first write makes it /2.
 *
 * The index is also a change feed.  Each entry records in "g" the
 * generation of the commit that last changed it, and the index records in
 * "feed" the generation from which every commit did so (the first commit
 * of a writer that knows "g": a writer that did not dropped both).  A feed
 * since generation G reads the buckets whose generation is greater than G
 * and in them the entries whose g is, when "feed" is at most G + 1; else,
 * or from no generation, every entry, as a whole read.  Tombstones stay in
 * the index for good, so a deletion is in the feed however old the cursor.
 *
 * This module decides everything about that layout: the names of folders
 * and files, the index and its bytes, the rev guard of a change and the
 * next version, the bytes of a version file and what a read of one must
 * check, which versions a commit supersedes (and so what the collect
 * journal lists).  A transport (store_dir.c over the local file system; a
 * webdav: store over HTTP) does every read, write, rename and removal, in
 * the order its own safety needs.  Functions that can fail return -1 with a
 * message naming the file as the transport named it ("where").
 */
#ifndef RD_STORE_LAYOUT_H
#define RD_STORE_LAYOUT_H

#include "digest.h"
#include "store.h"

#define LAYOUT_FORMAT "recdelta-store/2"
#define LAYOUT_FORMAT1 "recdelta-store/1"	/* read, and made /2 by a write */
#define LAYOUT_IDX "meta.idx"	/* the folder of the bucket files */
#define LAYOUT_B0 16		/* the buckets of a new index */
#define LAYOUT_BMAX (1UL << 24)	/* B never goes past it */

/* The last version an entity can have; a writer never goes past it. */
#define LAYOUT_VMAX "9223372036854775807"
#define LAYOUT_VMAX_N 9223372036854775807ULL

/* Percent-encoding of a type or key for a file name (webdav.md section 4). */
void layout_enc(struct sb *out, const char *s, size_t n);

/*
 * The names of the layout, appended to out: the folder of a type, and the
 * stem of a key's version files (STEM~V.json).  Both are layout_enc() of the
 * name, except that a type whose name would begin with "meta." (in any case)
 * has its dots written %2E, so that no type takes a name of the store's own
 * files, and that a name longer than LAYOUT_NAME_MAX bytes becomes
 * LAYOUT_NAME_HASHED and the SHA-256 hex of the raw bytes.  layout_enc()
 * makes neither "%2E" after the first byte nor "%s", so distinct names stay
 * distinct; and none has a '/', a leading '.' or "meta." at its start.
 */
#define LAYOUT_NAME_MAX 230	/* 255, less the longest "~V.json" */
#define LAYOUT_NAME_HASHED "%sha256-"
void layout_type_name(struct sb *out, const char *type, size_t n);
void layout_key_name(struct sb *out, const char *key, size_t n);
/* KEYNAME~V.json, the file of version v in its type's folder. */
void layout_version_name(struct sb *out, const char *key, size_t n,
    unsigned long long v);

/* One entity of the index. */
struct layout_entry {
	const char *type, *key;
	size_t typelen, keylen;
	unsigned long long v;		/* 0: not written yet */
	char sha[2 * RD_SHA256_LEN + 1];	/* of version v's file; "" if none */
	const char *mtime;		/* or NULL */
	size_t mtimelen;
	int deleted;			/* a tombstone */
	unsigned long long g;		/* generation of its last change, or 0 */
	unsigned long long oldv;	/* the version a commit supersedes, or 0 */
	size_t folder;			/* the transport's: its type folder */
	size_t bucket;			/* of the index's B buckets */
};

/*
 * Read one entry of the index (the value of a key under its type): -1 when
 * it is not an object with a valid "v" (a positive integer up to
 * LAYOUT_VMAX).  Else 0 with e's version, mtime and tombstone mark, its sha
 * "" unless valid; e's names are left as they are.  e borrows from value.
 */
int layout_entry_read(const struct json *value, struct layout_entry *e);

/*
 * meta.json, parsed: its format (1 or 2), generation and "feed" (0 when
 * absent); for /2 the number of buckets and each one's generation (in the
 * arena) and the number of entries; for /1 the whole "entities" object.
 */
struct layout_root {
	int format;
	unsigned long long generation, feedfrom, entries;
	size_t nb;
	unsigned long long *bgen;
	const struct json *entities;
};

/*
 * Parse meta.json's bytes into r (parsed into a): 0, or -1 with a message
 * (not JSON, not either layout, a bad member: a damaged store).  where
 * names the file in messages.
 */
int layout_root_parse(struct arena *a, const char *data, size_t len,
    const char *where, struct layout_root *r);

/* I~G.json, the file of bucket i written at generation g, in LAYOUT_IDX. */
void layout_bucket_name(struct sb *out, size_t i, unsigned long long g);

/*
 * Parse a bucket file's bytes, which meta.json names as bucket i of nb at
 * generation g: 0 with *entities its "entities" object (in a), every entry
 * valid; or -1 with a message naming where (a damaged store: not JSON, or
 * not the file meta.json names).
 */
int layout_bucket_parse(struct arena *a, const char *data, size_t len,
    const char *where, size_t i, size_t nb, unsigned long long g,
    const struct json **entities);

/*
 * What a fetch reads of the index: every entry, or (a change feed read
 * since a generation) those whose g is greater than since.
 */
struct layout_feed {
	int on;				/* fetch_opts.changes */
	int all;			/* every entry: no generation, or too old */
	unsigned long long since;
};

/*
 * The feed of o (fetch_opts.changes, and resume, the value of a
 * "generation" cursor) over an index whose "feed" is feedfrom: 0, or -1
 * with a message (status 2) for a resume that is no generation.
 */
int layout_feed_plan(struct layout_feed *f, const struct fetch_opts *o,
    unsigned long long feedfrom);
/* True when the feed f (NULL: none) reads entry e. */
int layout_feed_wants(const struct layout_feed *f, const struct layout_entry *e);
/*
 * The cursor line after a feed's records, named "generation", its value the
 * index's generation; source is the store word.  Written when f is a feed
 * and o asks for cursors; 0, or the sink's return.
 */
int layout_feed_cursor(const struct layout_feed *f, const struct fetch_opts *o,
    const struct store_sink *sink, const char *source,
    unsigned long long generation);
/*
 * The fetch of a store that has no index (empty, or a target no write has
 * made yet): no record; on a change feed, its cursor at generation 0.
 */
int layout_fetch_empty(const struct fetch_opts *o,
    const struct store_sink *sink, const char *source);

/*
 * Read the index for a fetch.  meta.json's bytes (data, len, which must
 * live as long as a) are parsed; the feed f is planned from o; for /2 the
 * bucket files f wants are read through readb, which reads the n files
 * names[0..n) of LAYOUT_IDX whole into out[0..n) (0, or -1 with a message
 * naming the file), then checked and merged.  0 with *ents (every type and
 * its entries, in a) and *generation, or -1 with a message.  base names the
 * store in messages.  For o's cursor_only, meta.json alone: *generation,
 * *ents not to be read.
 */
int layout_read_index(struct arena *a, const char *data, size_t len,
    const char *base, const struct fetch_opts *o, struct layout_feed *f,
    int (*readb)(void *ctx, char *const *names, size_t n, struct sb *out),
    void *ctx, const struct json **ents, unsigned long long *generation);

/* The members of an object of the index, in the layout's order. */
const struct json_member **layout_members(const struct json *obj);

/*
 * The index, in memory, while a batch is applied.  Entries are found by
 * (type, key); names live as long as the index.  Of a /2 index only the
 * buckets a transport loaded are in memory: layout_index_want() and
 * layout_index_pending() say which to read, layout_index_bucket() loads
 * one.  A guard or a write needs the buckets of its keys loaded.
 */
struct layout_index {
	struct arena a;
	struct sb meta;			/* the bytes read */
	struct layout_entry *e;
	size_t n, cap;
	size_t *table;			/* open addressing: entry + 1, 0 free */
	size_t tcap;
	unsigned long long generation;
	unsigned long long feedfrom;	/* "feed", or 0: set by the next write */
	int format;			/* read: 0 none, 1 or 2 */
	unsigned long long entries;	/* all of them, loaded or not */
	size_t nb;			/* B: buckets (of /2) */
	unsigned long long *bgen;	/* each bucket's generation, 0: none */
	unsigned char *bstate;		/* each bucket's BUCKET_* bits */
	struct layout_loaded { size_t i; const char *data; size_t len; } *ld;
	size_t nld;			/* the bucket files loaded, in a */
	/* Set by layout_index_plan(): the layout the commit writes. */
	size_t newnb;
	unsigned long long *newgen;
	size_t *old;			/* superseded bucket files: number */
	unsigned long long *oldg;	/* and generation */
	size_t nold;
};

void layout_index_init(struct layout_index *x);
void layout_index_release(struct layout_index *x);
/*
 * Load meta.json's bytes (copied) into the empty index x: 0, or -1 with a
 * message (a damaged store).  No bytes at all is no meta.json: a transport
 * that found none loads nothing.  A /1 index is loaded whole.
 */
int layout_index_load(struct layout_index *x, const char *data, size_t len,
    const char *where);
/* Ask for the bucket of (type, key), or of the changes v[0..n). */
void layout_index_want(struct layout_index *x, const char *type,
    size_t typelen, const char *key, size_t keylen);
/*
 * For the changes v[0..n): their buckets, and every bucket when their
 * creates could grow the index past 128 B entries (the write that doubles
 * B writes every bucket).
 */
void layout_index_want_batch(struct layout_index *x, const struct change *v,
    size_t n);
void layout_index_want_all(struct layout_index *x);
/*
 * The buckets asked for that have a file not loaded yet: their numbers into
 * *list (owned), their count returned.  Those without a file count as
 * loaded (empty).
 */
size_t layout_index_pending(struct layout_index *x, size_t **list);
/*
 * Load the file of bucket i (named from x->bgen[i]) from its bytes
 * (copied): 0, or -1 with a message naming where (a damaged store).
 */
int layout_index_bucket(struct layout_index *x, size_t i, const char *data,
    size_t len, const char *where);
/*
 * Load x again from the bytes it was loaded from, forgetting every change
 * made since: 0, or -1 with a message.
 */
int layout_index_reload(struct layout_index *x);
struct layout_entry *layout_index_find(struct layout_index *x,
    const char *type, size_t typelen, const char *key, size_t keylen);
/*
 * Plan the commit at x's generation (the transport has counted it up
 * already): the number of buckets (doubled when the index outgrew them, or
 * chosen for an index that was not /2) and the generation of each bucket's
 * file, new for every bucket the commit changed; the bucket files it
 * supersedes in x->old and x->oldg.
 */
void layout_index_plan(struct layout_index *x);
/*
 * The index as planned: put(ctx, name, data) for each new bucket file
 * (name I~G.json, in LAYOUT_IDX), and meta.json into root.  Canonical
 * JSON, sorted at every level; "feed" the generation written when the
 * index had none.  0, or put's -1.
 */
int layout_index_write(struct layout_index *x, struct sb *root,
    int (*put)(void *ctx, const char *name, const struct sb *data),
    void *ctx);

/*
 * The rev guard of change c against the index (create: no live entry;
 * update and delete: the live entry's version is c's rev).  Returns c's
 * entry, added as a tombstone of version 0 when the index has none; or NULL
 * with c's outcome set: RD_ST_CONFLICT when the guard fails, RD_ST_FAILED when
 * the version cannot go up or an update or delete has no rev (base names
 * the store in the message).
 */
struct layout_entry *layout_guard(struct layout_index *x, struct change *c,
    const char *base);

/*
 * The file of the version a create or update writes: canonical JSON of
 * fields, key and type, and a newline.
 */
void layout_version_file(struct sb *out, const struct change *c);

/*
 * Commit c to its entry e (from layout_guard): the next version, written at
 * mtime, with file (from layout_version_file) or, for a delete (file NULL),
 * a tombstone, changed at the generation after x's (the commit's).  e->oldv is the version it supersedes, when e was live.  c's
 * outcome: RD_ST_OK with the new version as its rev.
 */
void layout_advance(struct layout_index *x, struct layout_entry *e,
    struct change *c, const char *mtime, const struct sb *file);

/*
 * The collect journal: TYPENAME/KEYNAME~V.json, a line each, for every
 * version a commit supersedes (oldv); then LAYOUT_IDX/I~G.json for each
 * bucket file it supersedes and each one it writes (after layout_index_plan),
 * so that a writer that dies before its commit leaves none unlisted.
 */
void layout_collect_list(const struct layout_index *x, struct sb *out);

/*
 * A journal a writer left: ask for the buckets whose lines name a file the
 * index still names (the commit that wrote the journal landed, and those
 * buckets hold the entities of its version lines).  data is not changed.
 */
void layout_collect_want(struct layout_index *x, const char *data);

/*
 * A journal a writer left, read against the index: fn(ctx, e, v) for each
 * line that is exactly the name of a version v older than the current one
 * of an entity e the index holds, and bfn(ctx, name) with the name I~G.json
 * of each bucket file line that the index does not name; every other line
 * is ignored, so a line names nothing outside the store nor a file the
 * index still uses.  data is NUL-terminated and changed.  Returns 0, or
 * fn's or bfn's -1.
 */
int layout_collect_plan(const struct layout_index *x, char *data,
    int (*fn)(void *ctx, const struct layout_entry *e, unsigned long long v),
    int (*bfn)(void *ctx, const char *name), void *ctx);

/*
 * Check a version file's bytes against the index (the sha256 of its entry,
 * then its type and key) and parse them: 0 with *fields, parsed into a, or
 * -1 with a message (a damaged store; where names the file).  data must
 * live as long as a.
 */
int layout_version_read(struct arena *a, const char *data, size_t len,
    const char *type, size_t typelen, const char *key, size_t keylen,
    const char *sha, const char *where, const struct json **fields);

/* A record line's parts for version ver of an entity (fields NULL: none). */
void layout_record(struct record *rec, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *ver,
    const struct layout_entry *e, const struct json *fields);

/*
 * Reading a store through a transport.  open_type opens the folder of a
 * type (its TYPENAME) before the first live entity of that type is read,
 * close_type closes it; read reads the file NAME of the open folder whole
 * into out (where: TYPENAME/NAME, for messages).  Each returns 0, or -1 with
 * a message naming the file.
 */
struct layout_io {
	void *ctx;
	int (*open_type)(void *ctx, const char *typename);
	int (*read)(void *ctx, const char *name, const char *where,
	    struct sb *out);
	void (*close_type)(void *ctx);
};

/*
 * Hand every record of the index's entities (from layout_read_index) that o
 * and the feed f (NULL: none) want to sink: types and keys in the layout's
 * order, each live entity's version file read through io and checked,
 * tombstones as records with "deleted".  base names the store in messages.
 * 0, or -1 with a message.
 */
int layout_fetch(const char *base, const struct json *entities,
    const struct fetch_opts *o, const struct layout_feed *f,
    const struct layout_io *io, const struct store_sink *sink);

/* qsort() and bsearch() of an array of strings, by their bytes. */
int layout_strpcmp(const void *a, const void *b);
/* 1 when s is the name of a version file, NAME~V.json, else 0. */
int layout_is_version_name(const char *s);

/* The current time as YYYY-MM-DDTHH:MM:SSZ, the index's form. */
void layout_now(char buf[32]);
/*
 * The files the index x (every bucket loaded) names as current,
 * TYPENAME/NAME and LAYOUT_IDX/I~G.json, appended to *used (owned strings)
 * and sorted for bsearch() with layout_strpcmp: what a sweep must leave.
 */
void layout_used_names(const struct layout_index *x, char ***used,
    size_t *nused);

#endif
