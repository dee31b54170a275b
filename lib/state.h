/*
 * state.h - run state in SQLite: the only code that writes SQL.
 *
 * One database per scope (the remote's identity plus the data set) holds
 * what a flow needs to resume, report and refuse: the base snapshot of what
 * was last in step, cursors, the windows of a historical import, the history
 * of runs with a change log per run, the outbox of changes that could not be
 * delivered, the run lock and the scope itself; for a two-way sync also what
 * each side last confirmed it holds, and the conflicts merge reported, kept
 * for review.  The tables are documented in recdelta-checkpoint(1) so that
 * users can query them with sqlite3.
 *
 * Where it lives.  lib/state.c opens the database and holds the schema and
 * its migrations; lib/state_lock.c the run lock and the preflight
 * (state_check); lib/state_record.c the recording of a result stream, with
 * its writer thread; lib/state_windows.c the windows of a historical import;
 * lib/state_query.c the base and its pruning, cursors, runs, change logs and
 * the outbox.  What they share is in lib/state_int.h, private to them.
 *
 * Invariants.  The schema version is PRAGMA user_version; migrations run in
 * one BEGIN IMMEDIATE transaction that checks the version, applies what is
 * missing and sets the version, so running them twice, or after a crash
 * halfway, leaves the same schema.  A database whose version is newer than
 * STATE_SCHEMA is never written: it is refused (status 5) before the first
 * write, or with STATE_PROBE kept open for state_check() to report.  Every
 * write is a BEGIN IMMEDIATE transaction, so two processes never interleave
 * and a waiting one retries for the busy timeout; the database runs in WAL
 * mode with synchronous=NORMAL, so a committed transaction survives the
 * process being killed.  Values are always bound, never spliced into SQL.
 *
 * Recording (state_record_*) is what keeps the base from running ahead of
 * the stream: the caller adds a line only once it has read the whole line
 * and hands a batch over only after writing its lines on; a batch not
 * handed over is never applied, so the base holds only what was confirmed.
 *
 * Two-way sync.  A result with a "target" is one side's answer: an ok create
 * or update, or a skipped same, with fields sets that side's row of sides
 * (its rev and the content hash), and the base takes the fields, with the
 * remote side's rev, only once both sides' rows hold the same hash; until
 * then the base stays the common ancestor, whichever side answers first.
 * An ok delete (or a delete found gone) forgets the record: its base row
 * and both sides rows.  Nothing else moves the base or sides.  A result
 * without a target is recorded as it always was, and touches no sides row.
 *
 * Undo.  A result with "before" (its change's before-image) applied (ok)
 * keeps, in the transaction of its log row, a row of images: the rev and
 * fields the plan read and the fields written.  A run keeps its images
 * while it is among the newest STATE_KEEP_IMAGES runs that do (or the
 * number state_images_prune() set); the recorder drops older runs' images
 * when it ends a run.  state_applied_each() gives a run's applied changes
 * with their images, from which recdelta-checkpoint undo writes the
 * changes that take the run back.
 *
 * Ownership.  A struct state is owned by its opener and released with
 * state_close().  Rows handed to callbacks borrow from SQLite and are valid
 * only during the call.  Functions return 0 (or a count) on success and -1
 * with a message through rd_seterr(): status 4 for the database, 3 for a bad
 * line, 5 for a refusal, 2 for a bad argument.
 */
#ifndef RD_STATE_H
#define RD_STATE_H

#include "stream.h"

#define STATE_SCHEMA 5
/* The runs whose before-images are kept, when no retention was set. */
#define STATE_KEEP_IMAGES 50
/*
 * The state when nothing names one: recdelta-checkpoint's, and that of a
 * flow run before each scope had its own (state_scope_path).
 */
#define STATE_DEFAULT_PATH ".recdelta/state.db"

enum {
	STATE_WRITE = 1,	/* create the database and its directory if absent */
	STATE_PROBE = 2		/* a newer schema is left for state_check() */
};

struct state;
struct insync;

/*
 * Open the state at path; NULL means $RECDELTA_STATE, else
 * STATE_DEFAULT_PATH (and then refusals name no --state in their fixes).
 * Without STATE_WRITE a database that does not exist reads as an empty one
 * and nothing is created.  The schema is migrated to STATE_SCHEMA.
 */
int state_open(struct state **sp, const char *path, int flags);
void state_close(struct state *s);
const char *state_path(const struct state *s);
int state_exists(const struct state *s);	/* the file was there */
int state_version(const struct state *s);	/* user_version found */

/*
 * The state a flow gives scope when neither --state nor RECDELTA_STATE
 * names one: a database of its own under .recdelta/, named from the scope
 * (the letters of its end, then the start of its SHA-256), so that two
 * scopes share neither a state nor a lock.  Owned.
 */
char *state_scope_path(const char *scope);

/* The scope the state belongs to: an owned string, or NULL when unset. */
int state_scope(struct state *s, char **scope);

/*
 * The preflight, one decision for `preflight` and `status --check`: may a
 * run of scope (NULL: the state's own) write now?  The lock held by pid on
 * this host is the caller's own and no refusal.  Returns 0 when clear, 1 when
 * refused with the reasons appended to msg (lines, each ending in '\n', no
 * program name, at most 25), -1 on error.  An orphan lock is no refusal; a
 * line about it is appended to notice.
 */
int state_check(struct state *s, const char *scope, long pid, struct sb *msg,
    struct sb *notice);

/* The lock's owner, as stored; strings owned, released by owner_release. */
struct state_owner {
	long pid;
	char *host, *started, *version, *scope;
	int here;	/* held from this host */
	int alive;	/* here and the process exists (elsewhere: assumed) */
};
void state_owner_release(struct state_owner *o);
/* 1 and o filled when the lock is held, 0 when free, -1 on error. */
int state_lock_owner(struct state *s, struct state_owner *o);

/*
 * Take the lock of scope for pid, atomically.  0 when taken (or already
 * held by pid here; an orphan's lock is reclaimed and a line appended to
 * notice), 1 when refused (a live owner, or the state of another scope) with
 * the refusal in msg, -1 on error.
 */
int state_lock(struct state *s, const char *scope, long pid, struct sb *msg,
    struct sb *notice);
/* Release pid's lock (any lock with force, or an orphan's).  Same returns. */
int state_unlock(struct state *s, long pid, int force, struct sb *msg,
    struct sb *notice);

/*
 * Recording a stream of results.  state_record_start() refuses (status 5)
 * when the state belongs to another scope; run 0 starts a new run, another
 * number continues (or creates) that run.  It starts a writer thread, which
 * has the connection to itself until state_record_finish() or
 * state_record_abort(): call nothing else on s in between.
 *
 * state_record_line() checks one line parsed by stream_parse_kind(), of
 * kind result, cursor or conflict, and adds it to the batch being filled:
 * 1, or 0 for a kind it does not consume, -1 when the line is bad (status
 * 3).  A conflict is kept in the conflicts table unless one equal to it
 * (type, key, field and the three values as compact JSON) waits for review
 * already.
 * state_record_commit() hands the batch to the writer, which commits it in one transaction while the
 * caller goes on: call it only once the batch's lines are passed on.
 * state_record_finish() hands over the last batch, closes the run and waits
 * for the writer; a stream without result, cursor or conflict lines, nor a
 * diff's summary line (which ends a sparse plan, and records nothing), is
 * no run, and leaves the state untouched.  A failure of the writer is returned by the next of these
 * calls.  state_record_abort() drops the batch being filled, waits for the
 * writer to commit those handed over, and marks the run failed if a batch
 * of it was committed.
 */
int state_record_start(struct state *s, const char *scope, long run,
    const char *flow);
int state_record_line(struct state *s, const struct json *obj,
    enum rd_kind kind);
/*
 * Mark window START done in the transaction of the last batch, so that the
 * window is done exactly when its results are recorded.  Call after start.
 */
int state_record_window(struct state *s, const char *start);
/* The run being recorded takes back run (recdelta undo).  Call after start. */
int state_record_undoes(struct state *s, long run);
int state_record_commit(struct state *s);
int state_record_finish(struct state *s);
void state_record_abort(struct state *s);

/* The base snapshot, in (type, key) order; type NULL for every type. */
struct state_baserow {
	const char *type, *key, *rev, *hash, *fields;
	size_t typelen, keylen, revlen, fieldslen;	/* rev NULL if none */
};
int state_base_each(struct state *s, const char *type,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx);

/*
 * The remote as a change feed says it is now, written nowhere: the base
 * snapshot with what earlier feeds said of the records the base does not
 * hold as the remote does (feed_seen, kept by prune) folded in (nothing of
 * either when full: the feed is then a whole read of the store).  begin
 * takes feed_seen; put folds one record of the feed in, replacing the row
 * of its type and key, or, with fields NULL (a tombstone), removing it (of
 * any type for a tombstone of type "*", a feed that does not say the type
 * of what it deleted); each visits the rows as state_base_each does (hash
 * NULL), reading the base once; end drops what begin made.  Only what the
 * feeds say is kept aside (in temporary tables, and in memory during
 * each), never a copy of the base.  The state is not written.
 */
int state_fold_begin(struct state *s, int full);
int state_fold_put(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *rev, size_t revlen,
    const char *fields, size_t fieldslen);
int state_fold_each(struct state *s, const char *type,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx);
void state_fold_end(struct state *s);

/*
 * fold --check: begin prepares the lookups and opens a read transaction,
 * end closes both; between them, keeps
 * says whether folding one record of a feed in leaves the base as it is:
 * 1 when the base holds the record of (type, key) at rev, not empty, with
 * the content hash hash (hex: record_hash() under no rules), or, for a
 * tombstone (hash NULL), holds no record of key (of type, or of any type
 * for "*"); 0 when not; -1 with a message.
 */
int state_fold_check_begin(struct state *s);
int state_fold_keeps(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *rev, size_t revlen,
    const char *hash);
void state_fold_check_end(struct state *s);
/* Each row of feed_seen as state_base_each's (hash NULL; fields NULL: gone). */
int state_feed_seen_each(struct state *s,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx);

/* 1 and an owned value, or 0 when the cursor is unset. */
int state_cursor_get(struct state *s, const char *name, char **value);
int state_cursor_set(struct state *s, const char *name, const char *value);

/*
 * Windows of a historical import, by start instant (seconds since the
 * epoch).  Plan [from, to) in steps of step seconds; names are dates when
 * dates is set, else UTC date-times.  Windows already planned are kept as
 * they are; a new window that overlaps another one differently is refused
 * (status 5).  *added counts the new ones.
 */
int state_windows_plan(struct state *s, long long from, long long to,
    long long step, int dates, unsigned long *added);
struct state_window {
	const char *start, *end, *status, *reason, *updated;	/* reason may be NULL */
	long long t0, t1;
};
/* In start order; pending_only: those not done (pending or failed). */
int state_windows_each(struct state *s, int pending_only,
    int (*fn)(void *ctx, const struct state_window *w), void *ctx);
/*
 * Set the windows that overlap [from, to) back to pending, done or failed
 * as they were, so that an import does them again; *n says how many.
 * Status 2 when no planned window overlaps the range.
 */
int state_windows_reset(struct state *s, long long from, long long to,
    unsigned long *n);
/* Mark a window done or failed; status 2 when no window starts at start. */
int state_window_mark(struct state *s, const char *start, int done,
    const char *reason);

/* Coverage: how much of the planned time is done, in the largest unit that
 * measures every window (days, hours, else seconds). */
struct state_coverage {
	unsigned long windows, windows_done;
	long long total, done;		/* in units */
	const char *unit;		/* "days", "hours", "seconds" */
	long long unitsec;
};
/* A gap: adjacent windows not done, merged. */
struct state_gap {
	long long t0, t1;
	const char *start, *end;	/* first window's start, last's end */
	unsigned long windows;
};
int state_coverage(struct state *s, struct state_coverage *c,
    int (*gapfn)(void *ctx, const struct state_gap *g), void *ctx);

/*
 * Runs, newest last; id 0 for every run, last for only the newest.  A run
 * of a two-way sync also counts the changes of its log by side.
 */
struct state_run {
	long id, pid;
	const char *scope, *flow, *host, *started, *ended, *status;
	unsigned long counts[RD_ST_N];	/* by status; RD_ST_NONE unused */
	unsigned long to_local, to_remote;	/* logged changes by target */
	int live;	/* status running and its process still here */
	/*
	 * It applied changes and keeps the before-image and the fields written
	 * of each (the images of the newest runs are kept, STATE_KEEP_IMAGES).
	 */
	int undoable;
	long undoes;	/* the run it takes back, or 0 */
	long undone_by;	/* the newest run that takes it back, or 0 */
};
int state_runs_each(struct state *s, long id, int last,
    int (*fn)(void *ctx, const struct state_run *r), void *ctx);

/*
 * A run that spans several recordings, as a historical import does one a
 * window: state_run_open() starts it, status running, owned by pid on this
 * host, and sets *id; a recording that continues it (state_record_start
 * with its id) adds to its counts and change log and leaves it running
 * while its owner lives; state_run_close() ends it: partial when asked or
 * when its counts hold a conflict, a deferral or a failure, else done.
 * Open refuses (status 5) a state of another scope; close wants a run that
 * exists (status 2).
 */
int state_run_open(struct state *s, const char *scope, const char *flow,
    long pid, long *id);
int state_run_close(struct state *s, long id, int partial);

/*
 * A run's change log in the order recorded.  The images of a change applied
 * (status ok) are compact JSON text: before, the record as the plan read it
 * (its rev and fields; NULL for a create, or where not kept), after, the
 * fields written (NULL for a delete, or where not kept).
 */
struct state_change {
	const char *op, *type, *key, *status, *rev, *changed, *code, *message;
	const char *target;	/* "local" or "remote"; NULL: no target */
	size_t typelen, keylen;		/* NULL: column not set */
	const char *before_rev, *before, *after;
	size_t before_revlen, beforelen, afterlen;
};
int state_changes_each(struct state *s, long run,
    int (*fn)(void *ctx, const struct state_change *c), void *ctx);
/*
 * The changes a run applied (status ok), by type, key, target (none first)
 * and order recorded.
 */
int state_applied_each(struct state *s, long run,
    int (*fn)(void *ctx, const struct state_change *c), void *ctx);

/*
 * Retention of before-images: runs beyond the newest keep keep none.
 * state_images_keep() says the retention (STATE_KEEP_IMAGES, 50, until one
 * is set); state_images_prune() sets it and drops the images beyond it now,
 * in one transaction, *runs saying of how many runs.
 */
int state_images_keep(struct state *s, long *keep);
int state_images_prune(struct state *s, long keep, unsigned long *runs);

/*
 * The conflicts kept for review, oldest first: those not reviewed, or all
 * with all; only of the ntypes types when ntypes is not 0.  The values are
 * compact JSON text, NULL where absent; run is 0 when not known, reviewed
 * NULL while not reviewed.
 */
struct state_conflict {
	long long id, run;
	const char *type, *key, *field, *base, *local, *remote;
	const char *winner, *reason, *recorded, *reviewed;
	size_t typelen, keylen, fieldlen, baselen, locallen, remotelen;
	size_t reasonlen;
};
int state_conflicts_each(struct state *s, int all, char *const *types,
    size_t ntypes, int (*fn)(void *ctx, const struct state_conflict *c),
    void *ctx);
/*
 * Mark conflicts reviewed, now, in one transaction: the n of ids, or with
 * n 0 every one not reviewed (only of the ntypes types when ntypes is not
 * 0).  One reviewed already keeps its time.  An id that does not exist
 * marks nothing (status 2).  *marked says how many were newly marked.
 */
int state_conflicts_review(struct state *s, const long long *ids, size_t n,
    char *const *types, size_t ntypes, unsigned long *marked);

/* The outbox: its size, and its change lines in the order deferred. */
long state_outbox_count(struct state *s);
int state_outbox_each(struct state *s,
    int (*fn)(void *ctx, const char *line, size_t len), void *ctx);

/*
 * Prune the base snapshot to the records a complete result stream named
 * (every record of a full run has a result, "same" ones included): begin,
 * add each result's type and key (settled: the result confirmed what the
 * remote holds, an ok or a "same"), then finish deletes every other base
 * row, and the sides rows of every other record, in one transaction, and
 * says how many base rows went.  Only for a stream known complete:
 * a flow calls it when push ended normally, never after a kill.
 * A run that read a change feed hands its records to prune_feed (fields
 * NULL: a tombstone) and its cursor to prune_cursor; finish then keeps, of
 * what feeds said (feed_seen), the records named by a result that did not
 * settle them, so that the next run's fold sees them still.
 *
 * sparse: the stream is a sparse plan's (recdelta-diff --sparse), which
 * names only the records that changed or tell the base something; finish
 * then deletes only the base rows of the records the feed said last were
 * gone (a tombstone) that no result names, gone from both sides, and
 * leaves the sides rows; feed_seen is kept as above.  Its cost grows with
 * the results and the feed, not with the base.
 *
 * types (ntypes of them; 0: every type): the run's types.  Only their
 * base, sides and feed_seen rows are pruned; the other types' rows, and
 * feed_seen's tombstones of every type ("*"), stay as they are.
 *
 * whole: the run read its types of the remote whole, not through a feed,
 * and hands prune_feed the records its results did not settle as it read
 * them: feed_seen's rows of its types go first, in the transaction.
 */
int state_prune_begin(struct state *s, int sparse, int whole,
    char *const *types, size_t ntypes);
int state_prune_add(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, int settled);
int state_prune_feed(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *rev, size_t revlen,
    const char *fields, size_t fieldslen);
/* Set cursor name to value in the pruning's transaction, between begin and finish. */
int state_prune_cursor(struct state *s, const char *name, const char *value);
int state_prune_finish(struct state *s, long long *removed);
void state_prune_abort(struct state *s);

/*
 * The in-step digest (lib/insync.h).  begin opens a read transaction, so
 * that the digest, the keys written since it was (dirty), the base's
 * counts and its rows looked up by key are of one snapshot; end closes it.
 * load: 1 and the whole digest (which 1) or its delta (2) decoded into
 * d (insync_load's room), 0 when there is none, -1 with a message (status
 * 3: not a digest this build reads).
 * dirty: each key of a base row written since (fn's strings borrowed for
 * the call).  count: the base's rows of types (all, when ntypes is 0):
 * the triggers' counts while they are there, else counted.
 * state_base_get: 1 and the row of (type, key) (valid until the next
 * call), or 0 when the base holds none.
 */
int state_insync_begin(struct state *s);
int state_insync_load(struct state *s, int which, struct insync *d,
    size_t room, size_t poolroom);
int state_insync_dirty(struct state *s, int (*fn)(void *ctx, const char *type,
    size_t typelen, const char *key, size_t keylen), void *ctx);
int state_base_count(struct state *s, char *const *types, size_t ntypes,
    long long *n);
int state_base_get(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, struct state_baserow *row);
void state_insync_end(struct state *s);
/*
 * 1 when the triggers that keep the keys written and the base's counts
 * are there (made with a whole digest, dropped with the digest), 0 when
 * not: a digest without them is not trusted.  -1 with a message.
 */
int state_insync_armed(struct state *s);
/*
 * A sparse prune's next digest (recdelta-diff --digest-out), borrowed until
 * finish: finish settles its checks and the keys written since against the
 * base as the transaction leaves it, stores it, and forgets the dirty keys.
 */
void state_prune_digest(struct state *s, const struct insync *next);

/* The current time as "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
void state_now(char *buf, size_t size);
/* Format an instant as a date (dates) or a UTC date-time. */
void state_fmt_time(char *buf, size_t size, long long t, int dates);

#endif
