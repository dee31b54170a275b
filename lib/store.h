/*
 * store.h - stores, the places records live, behind one function table.
 *
 * A store is named by a word: "ndjson:PATH" or "-" (a file or standard
 * input), "sqlite:DB?table=T&key=COL[&rev=COL][&type=TYPE]" (a table of a
 * SQLite database), "dir:PATH" (a folder of entity files plus meta.json, the
 * embedded default remote), "cloudkit:CONTAINER/ENV/DB[/ZONE]" (CloudKit
 * Web Services).  Only lib/store*.c knows a scheme's format.
 *
 * Fetching hands every line of the store, in order, to a sink: a record line
 * with its parsed parts, or (ndjson: only) a line of another kind to pass
 * through (and, when asked, cursor lines).  What the sink receives is valid only during the call.  A sink
 * that returns -1 stops the fetch, which then returns -1 with the sink's
 * message.  Stores are independent: two may be fetched from two threads.
 */
#ifndef RD_STORE_H
#define RD_STORE_H

#include "stream.h"

/* One stream line as a store produced it. */
struct rline {
	const char *text;	/* the line, without newline */
	size_t len;
	const char *src;	/* where it came from, for messages */
	unsigned long lineno;	/* its line in src, 0 if src has no lines */
	off_t offset;		/* for store_reread, or -1 when it cannot */
	const struct record *rec;	/* NULL for a pass-through line */
};

struct store_sink {
	int (*put)(void *ctx, const struct rline *l);
	void *ctx;
};

struct fetch_opts {
	char **types;		/* only these types (sqlite: the type) */
	size_t ntypes;
	int allow_empty;	/* accept an ndjson input with no lines */
	/*
	 * A window: only records whose field wfield holds an instant in
	 * [wfrom, wto) (seconds since the epoch), when wfield is set.
	 */
	char *wfield;
	long long wfrom, wto;
	/* Stores that read page by page (cloudkit:). */
	int cursors;		/* hand a cursor line to the sink after each page */
	const char *resume;	/* start at this cursor's value */
	int changes;		/* read the change feed instead of listing */
};

/*
 * Parse "FIELD=FROM..TO" (FROM and TO ISO-8601 dates or instants, TO not
 * included) into o.  The field may hold an ISO-8601 string, a date
 * "YYYY-MM-DD" or {"$ts":ISO}; a record without such a value is outside
 * every window.  -1 with a message (status 2).
 */
int fetch_window(struct fetch_opts *o, const char *spec);

/*
 * Writing.  A change is what push asks of a store: create, update or delete
 * one record, guarded by the rev it was computed against (update and delete:
 * the record's current rev must equal it; create: the record must not
 * exist).  A store applies a batch of changes with optimistic concurrency and
 * sets each one's outcome: RS_OK with the new rev, RS_CONFLICT when the guard
 * failed (nothing written for that change), RS_FAILED when the store refused
 * the change itself (error code and message set).  A store never overwrites a
 * record whose rev moved.
 */
enum change_op { CH_CREATE, CH_UPDATE, CH_DELETE };
enum result_status { RS_NONE, RS_OK, RS_CONFLICT, RS_FAILED, RS_DEFERRED };

struct change {
	enum change_op op;
	const char *type, *key, *rev;	/* rev NULL for a create */
	size_t typelen, keylen, revlen;
	const struct json *fields;	/* desired fields; NULL for a delete */
	const struct json *changed;	/* names of the fields that differ, or NULL */
	int force;			/* write without the guard (--force) */
	/* Set by apply. */
	enum result_status status;
	char newrev[48];
	char errcode[32];
	char errmsg[256];
};

/*
 * Refuse change c alone: RS_FAILED with code and message (what is cut
 * short mended to valid UTF-8).  Returns -1.
 */
int change_fail(struct change *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct store;

struct store_ops {
	const char *scheme;
	int (*open)(struct store *s, const char *arg);
	int (*fetch)(struct store *s, const struct fetch_opts *o,
	    const struct store_sink *sink);
	void (*close)(struct store *s);
	/*
	 * Apply n changes as one batch; outcomes in each change.  Returns 0, or
	 * -1 when the store could not be written at all (then no change of the
	 * batch was applied and, for a remote store, the caller may defer
	 * them), or -2 when the store refused the batch for a reason no retry
	 * can mend (credentials, a malformed request; nothing was applied).  A store that gives up
	 * after part of a batch went through sets RS_DEFERRED (or RS_FAILED)
	 * on the rest and returns 0.  NULL: read-only.
	 */
	int (*apply)(struct store *s, struct change *v, size_t n);
	/*
	 * Look one record up: 1 and *out filled (its strings and fields in the
	 * arena), 0 when absent, -1 on error.
	 */
	int (*get)(struct store *s, const char *type, size_t typelen,
	    const char *key, size_t keylen, struct arena *a, struct record *out);
	/*
	 * How many live records the store holds (for delete budgets), or -1.
	 * types names the record types in play, for a store that cannot
	 * count without them (cloudkit:); the others count every record.
	 */
	long long (*count)(struct store *s, char *const *types, size_t ntypes);
	/*
	 * Reached over a network: a batch the store could not take may be
	 * deferred and replayed later.  A local store (0) that cannot be
	 * written is a runtime failure, never a deferral.
	 */
	int remote;
	/*
	 * Read again, cheaply, the len bytes of a line this store's last
	 * fetch handed out with offset >= 0 (an ndjson: file: the same open
	 * file, by its offset) into dst; 0, or -1 with a message when the
	 * line cannot be read or the file changed.  rereads_file: true when
	 * writing path would change what reread returns.  NULL (both) for a
	 * store whose lines are gone once fetched: its rlines carry -1.
	 */
	int (*reread)(struct store *s, off_t offset, size_t len, char *dst);
	int (*rereads_file)(struct store *s, const char *path);
};

struct store {
	const struct store_ops *ops;
	char *spec;		/* the word that named it */
	void *priv;
};

/*
 * Open the store a word names.  -1 with a message: status 2 for a word that
 * names no store, 4 when the store cannot be opened.
 */
int store_open(struct store *s, const char *spec);
int store_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink);
void store_close(struct store *s);
int store_apply(struct store *s, struct change *v, size_t n);
int store_get(struct store *s, const char *type, size_t typelen,
    const char *key, size_t keylen, struct arena *a, struct record *out);
long long store_count(struct store *s, char *const *types, size_t ntypes);
int store_reread(struct store *s, off_t offset, size_t len, char *dst);
int store_rereads_file(struct store *s, const char *path);

/* Default batch size of a store's writes. */
size_t store_batch(const struct store *s);

/* True when the word names standard input ("-" or "ndjson:-"). */
int store_is_stdin(const char *spec);

/* True when the record passes the filters of o: its type, its window. */
int fetch_wants(const struct fetch_opts *o, const struct record *rec);
/* True when records of this type may pass (the window is not looked at). */
int fetch_wants_type(const struct fetch_opts *o, const char *type, size_t n);

/* Percent-encoding of a type or key for a file name (webdav.md section 4). */
void store_enc(struct sb *out, const char *s, size_t n);

/*
 * The names of the per-entity layout (dir:, webdav:), appended to out: the
 * folder of a type, and the stem of a key's version files (STEM~V.json).
 * Both are store_enc() of the name, except that a type whose name would
 * begin with "meta." (in any case) has its dots written %2E, so that no type
 * takes a name of the store's own files, and that a name longer than
 * STORE_NAME_MAX bytes becomes STORE_NAME_HASHED and the SHA-256 hex of the
 * raw bytes.  store_enc() makes neither "%2E" after the first byte nor "%s",
 * so distinct names stay distinct.
 */
#define STORE_NAME_MAX 230	/* 255, less the longest "~V.json" */
#define STORE_NAME_HASHED "%sha256-"
void store_type_name(struct sb *out, const char *type, size_t n);
void store_key_name(struct sb *out, const char *key, size_t n);

extern const struct store_ops store_ndjson_ops, store_sqlite_ops, store_dir_ops,
    store_cloudkit_ops;

#endif
