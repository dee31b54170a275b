/*
 * store.h - stores, the places records live, behind one function table.
 *
 * A store is named by a word: "ndjson:PATH" or "-" (a file, written by
 * rewriting it whole, or standard input, never written),
 * "sqlite:DB?table=T&key=COL[&rev=COL][&type=TYPE]" (a table of a SQLite
 * database, its records of type TYPE or the table's name),
 * "dir:PATH" (a folder of entity files plus meta.json, the embedded default
 * remote), "cloudkit:CONTAINER/ENV/DB[/ZONE]" (CloudKit Web Services),
 * "couchdb:URL/DB" (a CouchDB database), "webdav:URL" (the layout of dir:
 * in a WebDAV collection).
 * Only lib/store*.c knows a scheme's format.
 *
 * Fetching hands every line of the store, in order, to a sink: a record line
 * with its parsed parts, or (ndjson: only) a line of another kind to pass
 * through (and, when asked, cursor lines).  What the sink receives is valid only during the call.  A sink
 * that returns -1 stops the fetch, which then returns -1 with the sink's
 * message.  Stores are independent: two may be fetched from two threads.
 *
 * A store that does not exist (no file, database, table or folder) is never
 * read as an empty one: fetching it fails, status 4, naming what is
 * missing, unless the caller reads a target that a first write may create
 * (fetch_opts.missing_ok).  Reading creates nothing: no file, database,
 * table, folder or lock file.  Writing may create the store; apply then sets
 * store.created, and the caller says so.
 */
#ifndef RD_STORE_H
#define RD_STORE_H

#include "shard.h"
#include "stream.h"

struct plain;

/* One stream line as a store produced it. */
struct rline {
	const char *text;	/* the line, without newline */
	size_t len;
	const char *src;	/* where it came from, for messages */
	unsigned long lineno;	/* its line in src, 0 if src has no lines */
	off_t offset;		/* for store_reread, or -1 when it cannot */
	const struct record *rec;	/* NULL for a pass-through line */
	/*
	 * A value as the input holds it, handed on unread (fetch_opts.raw):
	 * text is one JSON value, not checked yet, rec NULL.  plain is how the
	 * store's word says such values become records (type= and key=), or
	 * NULL when they must be record lines.
	 */
	int raw;
	const struct plain *plain;
	/*
	 * A record line read by scan_record (fetch_opts.scan, lib/scan.h):
	 * the text of its fields and their canonical form, rec->fields NULL.
	 */
	const char *fields, *canon;
	size_t fieldslen, canonlen;
};

struct store_sink {
	int (*put)(void *ctx, const struct rline *l);
	void *ctx;
};

struct fetch_opts {
	char **types;		/* only these types, on every store */
	size_t ntypes;
	int allow_empty;	/* accept an ndjson input with no lines */
	/*
	 * A store that does not exist reads as empty: a target that a first
	 * write will create.  Without it, fetching one fails (status 4).
	 */
	int missing_ok;
	/*
	 * A window: only records whose field wfield holds an instant in
	 * [wfrom, wto) (seconds since the epoch), when wfield is set.
	 */
	char *wfield;
	long long wfrom, wto;
	struct window_tally *tally;	/* counted by fetch_wants, or NULL */
	/* Stores that read page by page (cloudkit:). */
	int cursors;		/* hand a cursor line to the sink after each page */
	const char *resume;	/* start at this cursor's value */
	int changes;		/* read the change feed instead of listing */
	/*
	 * With changes: hand the sink only the cursor line of where the feed
	 * stands now, reading no record (the store's feed_now), so that a
	 * whole read begun after it loses nothing a feed read from it says.
	 */
	int cursor_only;
	/*
	 * Only the records (tombstones too) of this shard (lib/shard.h);
	 * lines of other kinds pass whatever it is.  store_fetch applies it.
	 */
	struct shard shard;
	/*
	 * Hand every value of an input of values (ndjson: lines, the elements
	 * of a json: array) to the sink as it is (rline.raw), neither parsed
	 * as a record nor filtered by type or window: what --map reads.  A
	 * store of records (sqlite:, dir:, ...) ignores it and hands records.
	 */
	int raw;
	/*
	 * The sink takes a record's fields as text (rline.fields, .canon) when the
	 * store read its line with scan_record (lib/scan.h) rather than into a
	 * tree: so far the ndjson: store, with no window and no plain words.
	 */
	int scan;
	/*
	 * Called with each line of an ndjson: input with no parameters, as
	 * the file holds it (no newline), before it is parsed: 1 skips the
	 * line (neither parsed nor handed to the sink; it still counts as a
	 * line), 0 reads it as usual, -1 fails the fetch with the caller's
	 * message (recdelta-diff --from-state: a line the in-step digest
	 * vouches for).  Other stores, and raw reads, never call it.
	 */
	int (*skip)(void *ctx, const char *line, size_t len,
	    unsigned long lineno);
	void *skipctx;
};

/*
 * Parse "FIELD=FROM..TO" (FROM and TO ISO-8601 dates or instants, TO not
 * included) into o.  The field may hold an ISO-8601 string, a date
 * "YYYY-MM-DD" or {"$ts":ISO}; a record without such a value is outside
 * every window.  -1 with a message (status 2).
 */
int fetch_window(struct fetch_opts *o, const char *spec);
/* 0 with *t when s reads as an instant as a window reads one, or -1. */
int fetch_window_instant(const char *s, size_t n, long long *t);

/*
 * Writing.  A change (struct change, lib/stream.h) is what push asks of a
 * store: create, update or delete one record, guarded by the rev it was
 * computed against (update and delete: the record's current rev must equal
 * it; create: the record must not exist).  A store applies a batch of
 * changes with optimistic concurrency and sets each one's outcome:
 * RD_ST_OK with the new rev, RD_ST_CONFLICT when the guard failed (nothing
 * written for that change), RD_ST_FAILED when the store refused the change
 * itself (error code and message set).  A store never overwrites a record
 * whose rev moved, nor, with content_guard, one whose content moved.  The outcome's members (status, newrev, errcode, errmsg)
 * are set through change_ok(), change_fail() and change_error(), each whole
 * and owned by the change until change_release().
 */

/* Change c applied: RD_ST_OK, its new rev the len bytes at rev (NULL: none). */
void change_ok(struct change *c, const char *rev, size_t len);

/*
 * Refuse change c alone: RD_ST_FAILED with code and message (mended to valid
 * UTF-8).  Returns -1.
 */
int change_fail(struct change *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Change c not applied: status st (RD_ST_FAILED or RD_ST_DEFERRED) with the
 * code and message as the store said them.
 */
void change_error(struct change *c, enum rd_status st, const char *code,
    size_t codelen, const char *msg, size_t msglen);

/* Free what apply set in c; its status is RD_ST_NONE again. */
void change_release(struct change *c);

struct store;

/* The most changes any store takes in one apply. */
#define STORE_MAX_BATCH 100000

struct store_ops {
	const char *scheme;
	const char *synopsis;	/* how a word names one, for messages */
	/*
	 * Capabilities: what a program asks the table instead of naming the
	 * scheme (and remote, below).
	 */
	int writable;		/* apply takes changes */
	/*
	 * Why a store of a scheme that may be written cannot be, for the
	 * message ("a store read with type= and key="); NULL otherwise.
	 */
	const char *readonly;
	/*
	 * apply checks a change's "seen" (struct change): an update or a
	 * delete of a record whose fields no longer hash to it conflicts, as
	 * one whose rev moved does, and one with "seen" and no rev is guarded
	 * by it alone.  For a store whose revs do not move when others edit
	 * it (a table edited with SQL, a file with an editor).  A store
	 * without it ignores "seen" and is never handed an update or a delete
	 * without a rev (recdelta-push refuses the input).
	 */
	int content_guard;
	int forced_writes;	/* a change may go without its guard (--force) */
	int change_feed;	/* fetch reads what changed (fetch_opts.changes) */
	/*
	 * For a store of change_feed whose feed depends on the word (cloudkit:
	 * a custom zone): 0 when the store s names has one, -1 with a message
	 * (status 2) when not.  Reads nothing.  NULL: every store of the
	 * scheme has one.
	 */
	int (*feed_check)(struct store *s);
	/*
	 * fetch takes fetch_opts.cursor_only: the store can tell where its
	 * feed stands (about one request) without reading it.
	 */
	int feed_now;
	/*
	 * fetch reads page by page and can hand a cursor line after each, from
	 * which fetch_opts.resume goes on.
	 */
	int cursors;
	/*
	 * Listing reads only the types named (fetch_opts.types, -t), and finds
	 * nothing without them: why, for the message; NULL for a store that
	 * lists every type.
	 */
	const char *needs_types;
	size_t batch;		/* changes per apply unless told (writable) */
	size_t max_batch;	/* the most a caller may hand apply at once */
	int (*open)(struct store *s, const char *arg);
	/*
	 * Whether the store exists, creating nothing: 1; 0 with a message
	 * (status 4) naming what is missing; -1 with a message when that
	 * cannot be told.  NULL for a store whose server answers it when read
	 * (cloudkit:).
	 */
	int (*exists)(struct store *s);
	int (*fetch)(struct store *s, const struct fetch_opts *o,
	    const struct store_sink *sink);
	void (*close)(struct store *s);
	/*
	 * Apply n changes as one batch; outcomes in each change.  Returns 0, or
	 * -1 when the store could not be written at all (then no change of the
	 * batch was applied and, for a remote store, the caller may defer
	 * them), or -2 when the store refused the batch for a reason no retry
	 * can mend (credentials, a malformed request; nothing was applied).  A store that gives up
	 * after part of a batch went through sets RD_ST_DEFERRED (or RD_ST_FAILED)
	 * on the rest and returns 0.  NULL unless writable.
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
	/*
	 * The store's name for a scope: one spelling for every word that
	 * names the same store (a path made absolute with its folder's
	 * symbolic links resolved, defaults spelt out), appended to out from
	 * arg, the word after the scheme.  Reads no store and needs no
	 * credential; -1 with a message for a word that names none.
	 */
	int (*scope)(const char *arg, struct sb *out);
	/*
	 * Remove debris: version files the index does not name whose last
	 * change is more than grace seconds old (a writer killed before its
	 * commit, or before it collected what the commit superseded).  The
	 * count into *removed; 0, or -1 with a message.  NULL for a store
	 * that leaves none.
	 */
	int (*sweep)(struct store *s, double grace, unsigned long *removed);
};

struct store {
	const struct store_ops *ops;
	char *spec;		/* the word that named it */
	void *priv;
	int created;		/* set by an apply that created the store */
};

/*
 * Open the store a word names.  -1 with a message: status 2 for a word that
 * names no store, 4 when the store cannot be opened.
 */
int store_open(struct store *s, const char *spec);
int store_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink);
/*
 * 1 when the store exists; 0 with a message (status 4) naming what is
 * missing; -1 with a message.  Creates nothing.
 */
int store_exists(struct store *s);
/*
 * 0 when the store has a change feed (fetch_opts.changes), -1 with a message
 * (status 2) when not.  Reads nothing.
 */
int store_feed_check(struct store *s);
/*
 * 0 when the store can say where its feed stands without reading it
 * (fetch_opts.cursor_only), -1 with a message (status 2) when not.
 */
int store_feed_now_check(struct store *s);
void store_close(struct store *s);
int store_apply(struct store *s, struct change *v, size_t n);
int store_get(struct store *s, const char *type, size_t typelen,
    const char *key, size_t keylen, struct arena *a, struct record *out);
long long store_count(struct store *s, char *const *types, size_t ntypes);
int store_reread(struct store *s, off_t offset, size_t len, char *dst);
/*
 * The size in bytes of the file a fetch rereads (an ndjson: file), once the
 * fetch has begun; -1 when there is none.  A hint for sizing an index.
 */
off_t store_reread_size(struct store *s);
int store_rereads_file(struct store *s, const char *path);

/*
 * The scope of the store a word names (ops->scope), appended to out, a bare
 * word's as its scheme's (ndjson:PATH, dir:PATH): -1 with a message (status
 * 2) when the word names no store.
 */
int store_scope(const char *spec, struct sb *out);
/*
 * A scope in canonical spelling, owned: each part of "A <- B <- ..." that
 * is a store word with its scheme in the store's spelling (store_scope),
 * any other kept as written, a bare path too (a scope is text, which may
 * name a folder by chance: a caller turns a bare store word into its scope
 * with store_scope first).  Two scopes are the same when these are equal.
 */
char *store_scope_canon(const char *scope);
/*
 * path absolute, its folder's symbolic links resolved (realpath(3)), the
 * last part kept as written, so that a path that does not exist yet has
 * the spelling it will have: appended to out.  -1 with a message.
 */
int store_canon_path(const char *path, struct sb *out);

/*
 * True when the word names standard input: "-", "ndjson:-", "json:-", with
 * or without parameters.
 */
int store_is_stdin(const char *spec);

/*
 * What a windowed fetch saw among the records of the types it wants: how
 * many had a time in the window field, had none (absent or null), or had
 * one that reads as no date or instant (key of the first kept).  One per
 * fetch: two fetches in two threads need two.
 */
struct window_tally {
	unsigned long timed, missing, unreadable;
	char *example;
};

/*
 * True when the record passes the filters of o: its type, its window.
 * Counts the record in o->tally when there is one.
 */
int fetch_wants(const struct fetch_opts *o, const struct record *rec);
/*
 * After a windowed fetch of the store spec: -1 with a message (status 3)
 * when it held records of the wanted types and none had a time in the
 * window field; a warning when some had one that could not be read.
 */
int window_tally_check(const struct fetch_opts *o, const char *spec);
/* True when records of this type may pass (the window is not looked at). */
/*
 * True when s reads ndjson: lines as they are (a file or standard input,
 * no parameters): what fetch_opts.skip is called for.
 */
int store_lines_are_records(const struct store *s);
int fetch_wants_type(const struct fetch_opts *o, const char *type, size_t n);

extern const struct store_ops store_ndjson_ops, store_json_ops, store_sqlite_ops,
    store_dir_ops, store_cloudkit_ops, store_couchdb_ops, store_webdav_ops;

/*
 * Settings of the stores that speak HTTP, set by a program before it opens
 * one: requests of a batch sent at once (--jobs, default 4, webdav:); plain
 * http to a host that is not this machine, with a warning
 * (--insecure-http); and the age, in seconds, past which an unreferenced
 * version file is debris (default 600).
 */
extern int store_jobs;
extern int store_insecure_http;
extern double store_grace;

/* --jobs N into store_jobs: 0, or -1 with a message (status 2). */
int store_parse_jobs(const char *arg);

#endif
