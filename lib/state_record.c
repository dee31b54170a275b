/*
 * state_record.c - run state: recording a stream of result, cursor and
 * conflict lines into the base and the sides, the change log, the outbox,
 * the cursors and the conflicts.
 */
#include "state.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "state_int.h"

/* The statements of recording, prepared once and reused for every line. */
enum {
	R_UPSERT, R_SETREV, R_DELBASE, R_GETFIELDS, R_LOG, R_OUTPUT, R_OUTDEL,
	R_CURSOR, R_RUNOPEN, R_RUNUPD, R_SIDESET, R_SIDEDROP, R_SIDESDEL,
	R_AGREED, R_CONFLICT, R_RETAIN, R_RETRUNS, R_IMAGE, R_BOTHSIDES, R_NSTMT
};

static const char *const rec_sql[R_NSTMT] = {
	"INSERT INTO base(type, key, rev, hash, fields) VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT (type, key) DO UPDATE SET rev = excluded.rev,"
	" hash = excluded.hash, fields = excluded.fields"
	" WHERE rev IS NOT excluded.rev OR hash IS NOT excluded.hash"
	" OR fields IS NOT excluded.fields",
	"UPDATE base SET rev = ?3 WHERE type = ?1 AND key = ?2",
	"DELETE FROM base WHERE type = ?1 AND key = ?2",
	"SELECT fields FROM base WHERE type = ?1 AND key = ?2",
	"INSERT INTO changes(run, seq, op, type, key, status, rev, changed,"
	" error_code, error_message, target) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
	" ?8, ?9, ?10, ?11)",
	"INSERT OR REPLACE INTO outbox(type, key, op, line, added, side)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	"DELETE FROM outbox WHERE type = ?1 AND key = ?2 AND side = ?3",
	SQL_CURSOR_SET,
	"INSERT INTO runs(id, scope, flow, pid, host, started, status, undoes)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)"
	" ON CONFLICT (id) DO UPDATE SET status = 'running', ended = NULL,"
	" pid = excluded.pid, host = excluded.host,"
	" flow = coalesce(excluded.flow, flow),"
	" undoes = coalesce(excluded.undoes, undoes)",
	"UPDATE runs SET ok = ?1, skipped = ?2, conflict = ?3, deferred = ?4,"
	" failed = ?5, planned = ?6, ended = ?7, status = ?8 WHERE id = ?9",
	"INSERT INTO sides(type, key, side, rev, hash) VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT (type, key, side) DO UPDATE SET rev = excluded.rev,"
	" hash = excluded.hash",
	"DELETE FROM sides WHERE type = ?1 AND key = ?2 AND side = ?3",
	"DELETE FROM sides WHERE type = ?1 AND key = ?2",
	/* The base moves only when both sides hold the same content. */
	"INSERT INTO base(type, key, rev, hash, fields) SELECT ?1, ?2,"
	" (SELECT rev FROM sides WHERE type = ?1 AND key = ?2"
	" AND side = 'remote'), ?3, ?4"
	" WHERE (SELECT count(*) FROM sides WHERE type = ?1 AND key = ?2"
	" AND hash = ?3) = 2"
	" ON CONFLICT (type, key) DO UPDATE SET rev = excluded.rev,"
	" hash = excluded.hash, fields = excluded.fields"
	" WHERE rev IS NOT excluded.rev OR hash IS NOT excluded.hash"
	" OR fields IS NOT excluded.fields",
	/* A conflict waiting for review already is not kept twice. */
	"INSERT INTO conflicts(run, type, key, field, base, local, remote, winner,"
	" reason, recorded) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10"
	" WHERE NOT EXISTS (SELECT 1 FROM conflicts WHERE type = ?2 AND key = ?3"
	" AND field IS ?4 AND base IS ?5 AND local IS ?6 AND remote IS ?7"
	" AND reviewed IS NULL)",
	/* Retention: the images of all but the newest ?1 runs that keep them. */
	SQL_IMAGES_DROP,
	SQL_IMAGES_RUNS,
	"INSERT INTO images(run, seq, before_rev, before_fields, after_fields)"
	" VALUES (?1, ?2, ?3, ?4, ?5)",
	/* Whether run ?1 wrote the other side of the record too. */
	"SELECT count(*) FROM changes WHERE run = ?1 AND type = ?2 AND key = ?3"
	" AND status = 'ok' AND target IS NOT NULL AND target <> ?4",
};

/*
 * Recording runs in two threads.  The caller's thread parses and checks each
 * line, hashes and serialises what the database needs into the batch being
 * filled, and hands the batch over when it commits; a writer thread applies
 * the batches in order, one transaction each.  So a line is applied only
 * after it was read whole, a batch is committed only after the caller
 * flushed its lines (it hands the batch over after the flush), and a batch
 * never handed over is never applied: that is the roll-back of the batch in
 * progress.  The connection is used by the writer alone while it runs.
 */
#define NOSTR ((size_t)-1)
#define NBATCH 3	/* one being filled, two queued or being written */

enum { B_RESULT, B_CURSOR, B_CONFLICT };

/*
 * One line to apply: strings are offsets into its batch's bytes; op and
 * status hold an enum rd_op and an enum rd_status, side (a result's target,
 * a conflict's winner) an enum rd_side.  A conflict's field, values and
 * reason are in field, base, local, remote and message.
 */
struct bop {
	unsigned char what, op, status, side;
	unsigned char diff;	/* changed from the base */
	size_t type, key, rev, hash, fields, changed, code, message, line;
	size_t typelen, keylen, revlen, fieldslen, changedlen, codelen;
	size_t messagelen, linelen;
	size_t field, base, local, remote;
	size_t fieldlen, baselen, locallen, remotelen;
	size_t brev, bfields, brevlen, bfieldslen;	/* the before-image */
};

struct batch {
	struct sb bytes;
	struct bop *ops;
	size_t n, cap;
	int final;
	unsigned long counts[RD_ST_N];	/* the run's, after this batch */
	struct batch *next;
};

struct recorder {
	char *scope, *flow, *window;
	long run, seq;
	long undoes;		/* the run this one takes back, or 0 */
	long keep;		/* runs whose images are kept */
	unsigned long counts[RD_ST_N];	/* caller: lines parsed so far */
	unsigned long consumed;	/* caller: result and cursor lines */
	unsigned long saved[RD_ST_N];	/* writer: as last committed */
	int committed;		/* writer: a batch committed, the run exists */
	int open;		/* the run is its live owner's to end (run open) */
	uint64_t *oset;		/* writer: hashes of the outbox's keys */
	size_t ocap, on;
	char now[32];
	sqlite3_stmt *st[R_NSTMT];
	struct sb canon;	/* caller's scratch for hashing */
	struct arena a;		/* writer's, for diffing old fields */
	struct sb changed;	/* writer's */

	struct batch pool[NBATCH];
	struct batch *fill;		/* caller's */
	struct batch *queue, *tail, *free;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int started, stop;
	_Atomic int failed;	/* writer stopped on an error */
	int errstatus;
	char errmsg[1024];
};

static void
recorder_free(struct recorder *r)
{
	int i;

	for (i = 0; i < R_NSTMT; i++)
		db_finalize(r->st[i]);
	for (i = 0; i < NBATCH; i++) {
		sb_release(&r->pool[i].bytes);
		free(r->pool[i].ops);
	}
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r->oset);
	free(r->scope);
	free(r->flow);
	free(r->window);
	sb_release(&r->canon);
	sb_release(&r->changed);
	arena_release(&r->a);
	free(r);
}

/*
 * Load the counts and the last change number of a run to continue, and
 * whether another process that lives here holds it open (state_run_open).
 */
static int
load_run(struct state *s, struct recorder *r)
{
	sqlite3_stmt *st;
	const char *status, *host;
	long pid;
	int k, i;

	if (db_prep(s, &st, "SELECT ok, skipped, conflict, deferred, failed,"
	    " planned, (SELECT max(seq) FROM changes WHERE run = ?1),"
	    " status, pid, host FROM runs WHERE id = ?1", 0) < 0)
		return -1;
	if (db_bindi(s, st, 1, r->run) < 0) {
		db_finalize(st);
		return -1;
	}
	if ((k = db_step_row(s, st)) == 1) {
		for (i = RD_ST_OK; i < RD_ST_N; i++)
			r->counts[i] = (unsigned long)sqlite3_column_int64(st,
			    i - RD_ST_OK);
		r->seq = (long)sqlite3_column_int64(st, RD_ST_N - RD_ST_OK);
		status = db_col(st, RD_ST_N - RD_ST_OK + 1, NULL);
		pid = (long)sqlite3_column_int64(st, RD_ST_N - RD_ST_OK + 2);
		host = db_col(st, RD_ST_N - RD_ST_OK + 3, NULL);
		r->open = status && strcmp(status, "running") == 0 && host &&
		    strcmp(host, s->host) == 0 && pid != (long)getpid() &&
		    state_pid_alive(pid);
		(void)sqlite3_reset(st);
	}
	db_finalize(st);
	return k < 0 ? -1 : 0;
}

static int
refuse_scope(struct state *s, const char *own, const char *scope)
{
	struct sb m;

	sb_init(&m, 256);
	state_scope_refusal(s, own, scope, "record", &m);
	m.buf[--m.len] = '\0';
	rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
	sb_release(&m);
	return -1;
}

/*
 * The outbox's keys, as a set of hashes, so that a result is looked up in
 * the outbox only when it may be there.  A false match costs one DELETE
 * that deletes nothing; a key is never missing, for every key put in the
 * outbox is added.
 */
static uint64_t
keyhash(const char *t, size_t tn, const char *k, size_t kn)
{
	uint64_t h = rd_idhash(t, tn, k, kn);

	return h ? h : 1;	/* 0 marks a free slot */
}

static void
oset_add(struct recorder *r, uint64_t h)
{
	size_t i;

	if (2 * (r->on + 1) > r->ocap) {
		uint64_t *old = r->oset;
		size_t ocap = r->ocap;

		r->ocap = r->ocap ? 2 * r->ocap : 64;
		r->oset = xcalloc(r->ocap, sizeof *r->oset);
		r->on = 0;
		for (i = 0; i < ocap; i++)
			if (old[i])
				oset_add(r, old[i]);
		free(old);
	}
	for (i = h & (r->ocap - 1); r->oset[i]; i = (i + 1) & (r->ocap - 1))
		if (r->oset[i] == h)
			return;
	r->oset[i] = h;
	r->on++;
}

static int
oset_has(const struct recorder *r, uint64_t h)
{
	size_t i;

	if (!r->on)
		return 0;
	for (i = h & (r->ocap - 1); r->oset[i]; i = (i + 1) & (r->ocap - 1))
		if (r->oset[i] == h)
			return 1;
	return 0;
}

static int
load_outbox(struct state *s, struct recorder *r)
{
	sqlite3_stmt *st;
	const char *t, *k;
	size_t tn, kn;
	int rc;

	if (db_prep(s, &st, "SELECT type, key FROM outbox", 0) < 0)
		return -1;
	while ((rc = db_step_row(s, st)) == 1) {
		t = db_col(st, 0, &tn);
		k = db_col(st, 1, &kn);
		if (t && k)
			oset_add(r, keyhash(t, tn, k, kn));
	}
	db_finalize(st);
	return rc;
}

/* The writer's side */

static const char *
bstr(const struct batch *b, size_t off)
{
	return off == NOSTR ? NULL : b->bytes.buf + off;
}

/* The names of the fields an ok update changed, from the base's old fields. */
static int
diff_old(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	sqlite3_stmt *st = r->st[R_GETFIELDS];
	struct ruleview rv = { 0 };
	struct json old, new;
	const char *p;
	size_t n;
	int k;

	if (db_bindt(s, st, 1, bstr(b, o->type), o->typelen) < 0 ||
	    db_bindt(s, st, 2, bstr(b, o->key), o->keylen) < 0 ||
	    (k = db_step_row(s, st)) < 0)
		return -1;
	if (k == 0)
		return 0;
	p = db_col(st, 0, &n);
	arena_reset(&r->a);
	if (p && json_parse(&r->a, p, n, &old, NULL) == 0 &&
	    old.type == JSON_OBJECT && json_parse(&r->a, bstr(b, o->fields),
	    o->fieldslen, &new, NULL) == 0)
		record_compare(&rv, &old, &new, &r->changed);
	(void)sqlite3_reset(st);
	return 0;
}

/* Bind the type and key of o to parameters 1 and 2 of st. */
static int
bind_id(struct state *s, sqlite3_stmt *st, const struct batch *b,
    const struct bop *o)
{
	return db_bindt(s, st, 1, bstr(b, o->type), o->typelen) < 0 ||
	    db_bindt(s, st, 2, bstr(b, o->key), o->keylen) < 0 ? -1 : 0;
}

/* Set the base row of o to its rev, hash and fields. */
static int
base_put(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	sqlite3_stmt *st = r->st[R_UPSERT];

	return bind_id(s, st, b, o) < 0 ||
	    db_bindt(s, st, 3, bstr(b, o->rev), o->revlen) < 0 ||
	    db_bindt(s, st, 4, bstr(b, o->hash), 2 * RD_HASH_LEN) < 0 ||
	    db_bindt(s, st, 5, bstr(b, o->fields), o->fieldslen) < 0 ?
	    -1 : db_step_done(s, st);
}

/* Step statement which, its parameters the type and key of o. */
static int
step_id(struct state *s, struct recorder *r, int which, const struct batch *b,
    const struct bop *o)
{
	sqlite3_stmt *st = r->st[which];

	return bind_id(s, st, b, o) < 0 ? -1 : db_step_done(s, st);
}

/* The outbox's side of o: its target's name, '' for none. */
static const char *
side_col(const struct bop *o)
{
	return o->side != RD_SIDE_NONE ?
	    rd_side_name((enum rd_side)o->side) : "";
}

/* A delete found done by someone else: what was wanted. */
static int
gone(const struct batch *b, const struct bop *o)
{
	return o->status == RD_ST_SKIPPED && o->op == RD_OP_DELETE &&
	    o->codelen == 4 && memcmp(bstr(b, o->code), "gone", 4) == 0;
}

/* What a result without a target does to the base. */
static int
base_apply(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	sqlite3_stmt *st;

	if ((o->status == RD_ST_OK && o->op == RD_OP_DELETE) || gone(b, o))
		return step_id(s, r, R_DELBASE, b, o);
	/*
	 * Confirmed with its fields, written (ok) or found in step (a skipped
	 * same): the base learns its rev and fields.
	 */
	if (o->fields != NOSTR)
		return base_put(s, r, b, o);
	if (o->status == RD_ST_OK) {
		/* Written without saying what: keep the fields known. */
		st = r->st[R_SETREV];
		return bind_id(s, st, b, o) < 0 ||
		    db_bindt(s, st, 3, bstr(b, o->rev), o->revlen) < 0 ?
		    -1 : db_step_done(s, st);
	}
	return 0;
}

/*
 * An undo's write to one side of a two-way run: the base goes back to what
 * it was before that run, as near as the images tell.  When the run wrote
 * one side only, the other held the merged record already, and the side
 * written had not changed since the base: the base was what the undo
 * restores.  When the run wrote both sides, both had changed and the base
 * is not kept: it is dropped, and the next sync merges the two sides as
 * records created on both, a field they hold differently a conflict kept
 * for review, never an edit lost.
 */
static int
undo_base(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	sqlite3_stmt *st = r->st[R_BOTHSIDES];
	int k, both;

	if (db_bindi(s, st, 1, r->undoes) < 0 ||
	    db_bindt(s, st, 2, bstr(b, o->type), o->typelen) < 0 ||
	    db_bindt(s, st, 3, bstr(b, o->key), o->keylen) < 0 ||
	    db_binds(s, st, 4, rd_side_name(o->side)) < 0)
		return -1;
	if ((k = db_step_row(s, st)) < 0)
		return -1;
	both = k == 1 && sqlite3_column_int64(st, 0) > 0;
	(void)sqlite3_reset(st);
	return both ? step_id(s, r, R_DELBASE, b, o) : base_put(s, r, b, o);
}

/*
 * What a result with a target does: its side's row holds what that side
 * now confirms, and the base takes it once the other side's row agrees
 * (an undo's write: see undo_base()).
 */
static int
sides_apply(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	const char *side = rd_side_name(o->side);
	sqlite3_stmt *st;

	if ((o->status == RD_ST_OK && o->op == RD_OP_DELETE) || gone(b, o))
		return step_id(s, r, R_DELBASE, b, o) < 0 ? -1 :
		    step_id(s, r, R_SIDESDEL, b, o);
	if (o->fields != NOSTR) {
		st = r->st[R_SIDESET];
		if (bind_id(s, st, b, o) < 0 || db_binds(s, st, 3, side) < 0 ||
		    db_bindt(s, st, 4, bstr(b, o->rev), o->revlen) < 0 ||
		    db_bindt(s, st, 5, bstr(b, o->hash), 2 * RD_HASH_LEN) < 0 ||
		    db_step_done(s, st) < 0)
			return -1;
		if (r->undoes && o->status == RD_ST_OK)
			return undo_base(s, r, b, o);
		st = r->st[R_AGREED];
		return bind_id(s, st, b, o) < 0 ||
		    db_bindt(s, st, 3, bstr(b, o->hash), 2 * RD_HASH_LEN) < 0 ||
		    db_bindt(s, st, 4, bstr(b, o->fields), o->fieldslen) < 0 ?
		    -1 : db_step_done(s, st);
	}
	if (o->status == RD_ST_OK) {
		/* Written, but what the side now holds was not said. */
		st = r->st[R_SIDEDROP];
		return bind_id(s, st, b, o) < 0 || db_binds(s, st, 3, side) < 0 ?
		    -1 : db_step_done(s, st);
	}
	return 0;
}

/* Keep a conflict for review, unless it waits for review already. */
static int
put_conflict(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	sqlite3_stmt *st = r->st[R_CONFLICT];

	return db_bindi(s, st, 1, r->run) < 0 ||
	    db_bindt(s, st, 2, bstr(b, o->type), o->typelen) < 0 ||
	    db_bindt(s, st, 3, bstr(b, o->key), o->keylen) < 0 ||
	    db_bindt(s, st, 4, bstr(b, o->field), o->fieldlen) < 0 ||
	    db_bindt(s, st, 5, bstr(b, o->base), o->baselen) < 0 ||
	    db_bindt(s, st, 6, bstr(b, o->local), o->locallen) < 0 ||
	    db_bindt(s, st, 7, bstr(b, o->remote), o->remotelen) < 0 ||
	    db_binds(s, st, 8, rd_side_name(o->side)) < 0 ||
	    db_bindt(s, st, 9, bstr(b, o->message), o->messagelen) < 0 ||
	    db_binds(s, st, 10, r->now) < 0 ? -1 : db_step_done(s, st);
}

static int
apply_op(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	const char *type = bstr(b, o->type), *key = bstr(b, o->key), *after;
	sqlite3_stmt *st;

	if (o->what == B_CURSOR) {
		st = r->st[R_CURSOR];
		return db_bindt(s, st, 1, key, o->keylen) < 0 ||
		    db_bindt(s, st, 2, bstr(b, o->fields), o->fieldslen) < 0 ||
		    db_binds(s, st, 3, r->now) < 0 ? -1 : db_step_done(s, st);
	}
	if (o->what == B_CONFLICT)
		return put_conflict(s, r, b, o);
	sb_reset(&r->changed);
	/* The fields an update changed, read before the base moves. */
	if (o->diff && diff_old(s, r, b, o) < 0)
		return -1;
	if ((o->side != RD_SIDE_NONE ? sides_apply(s, r, b, o) :
	    base_apply(s, r, b, o)) < 0)
		return -1;
	switch (o->status) {
	case RD_ST_OK:
	case RD_ST_SKIPPED:
	case RD_ST_CONFLICT:
	case RD_ST_FAILED:
		/*
		 * A definite answer settles the change the outbox held for
		 * that side (a two-way sync defers per side).
		 */
		if (oset_has(r, keyhash(type, o->typelen, key, o->keylen))) {
			st = r->st[R_OUTDEL];
			if (bind_id(s, st, b, o) < 0 ||
			    db_binds(s, st, 3, side_col(o)) < 0 ||
			    db_step_done(s, st) < 0)
				return -1;
		}
		break;
	case RD_ST_DEFERRED:
		st = r->st[R_OUTPUT];
		if (bind_id(s, st, b, o) < 0 ||
		    db_binds(s, st, 3, rd_op_name(o->op)) < 0 ||
		    db_bindt(s, st, 4, bstr(b, o->line), o->linelen) < 0 ||
		    db_binds(s, st, 5, r->now) < 0 ||
		    db_binds(s, st, 6, side_col(o)) < 0 || db_step_done(s, st) < 0)
			return -1;
		oset_add(r, keyhash(type, o->typelen, key, o->keylen));
		break;
	default:
		return 0;
	}
	if (o->status == RD_ST_SKIPPED)
		return 0;
	/* The change log. */
	st = r->st[R_LOG];
	if (o->changed != NOSTR) {
		sb_reset(&r->changed);
		sb_add(&r->changed, bstr(b, o->changed), o->changedlen);
	}
	r->seq++;
	if (db_bindi(s, st, 1, r->run) < 0 || db_bindi(s, st, 2, r->seq) < 0 ||
	    db_binds(s, st, 3, rd_op_name(o->op)) < 0 ||
	    db_bindt(s, st, 4, type, o->typelen) < 0 ||
	    db_bindt(s, st, 5, key, o->keylen) < 0 ||
	    db_binds(s, st, 6, rd_status_name(o->status)) < 0 ||
	    db_bindt(s, st, 7, bstr(b, o->rev), o->revlen) < 0 ||
	    db_bindt(s, st, 8, r->changed.len ? r->changed.buf : NULL,
	    r->changed.len) < 0 ||
	    db_bindt(s, st, 9, bstr(b, o->code), o->codelen) < 0 ||
	    db_bindt(s, st, 10, bstr(b, o->message), o->messagelen) < 0 ||
	    db_binds(s, st, 11, o->side != RD_SIDE_NONE ?
	    rd_side_name(o->side) : NULL) < 0 || db_step_done(s, st) < 0)
		return -1;
	/* The images of a change applied: what it found, what it wrote. */
	after = o->status == RD_ST_OK && o->op != RD_OP_DELETE ?
	    bstr(b, o->fields) : NULL;
	if (o->status != RD_ST_OK || (o->bfields == NOSTR && !after))
		return 0;
	st = r->st[R_IMAGE];
	return db_bindi(s, st, 1, r->run) < 0 || db_bindi(s, st, 2, r->seq) < 0 ||
	    db_bindt(s, st, 3, bstr(b, o->brev), o->brevlen) < 0 ||
	    db_bindt(s, st, 4, bstr(b, o->bfields), o->bfieldslen) < 0 ||
	    db_bindt(s, st, 5, after, o->fieldslen) < 0 ?
	    -1 : db_step_done(s, st);
}

/* Keep the images of the newest r->keep runs, this one among them. */
static int
retain_images(struct state *s, struct recorder *r)
{
	sqlite3_stmt *st = r->st[R_RETAIN];

	if (db_bindi(s, st, 1, r->keep) < 0 || db_step_done(s, st) < 0)
		return -1;
	st = r->st[R_RETRUNS];
	return db_bindi(s, st, 1, r->keep) < 0 ? -1 : db_step_done(s, st);
}

/* The window of the run is done, in the transaction of its last results. */
static int
mark_window(struct state *s, struct recorder *r)
{
	sqlite3_stmt *st;
	int ret = -1;

	if (db_prep(s, &st, "UPDATE windows SET status = 'done', reason = NULL,"
	    " updated = ?2 WHERE start = ?1", 0) < 0)
		return -1;
	if (db_binds(s, st, 1, r->window) == 0 && db_binds(s, st, 2, r->now) == 0 &&
	    db_step_done(s, st) == 0) {
		if (sqlite3_changes(s->db) == 0)
			rd_seterr(RD_EXIT_USAGE, "no planned window starts at "
			    "\"%s\"", rd_quote(r->window, strlen(r->window)));
		else
			ret = 0;
	}
	db_finalize(st);
	return ret;
}

int
state_record_undoes(struct state *s, long run)
{
	s->rec->undoes = run;
	return 0;
}

int
state_record_window(struct state *s, const char *start)
{
	free(s->rec->window);
	s->rec->window = xstrdup(start);
	return 0;
}

/* One batch, one transaction; the first also claims the scope and run. */
static int
write_batch(struct state *s, struct recorder *r, const struct batch *b)
{
	sqlite3_stmt *st;
	char *own = NULL;
	size_t i;

	if (db_begin(s) < 0)
		return -1;
	state_now(r->now, sizeof r->now);
	if (!r->committed) {
		st = r->st[R_RUNOPEN];
		if (state_scope(s, &own) < 0)
			return -1;
		if (own && strcmp(own, r->scope) != 0) {
			refuse_scope(s, own, r->scope);
			free(own);
			return -1;
		}
		if (!own && state_set_scope(s, r->scope) < 0)
			return -1;
		free(own);
		if (r->open)
			goto opened;
		if ((r->run ? db_bindi(s, st, 1, r->run) :
		    db_bindt(s, st, 1, NULL, 0)) < 0 ||
		    db_binds(s, st, 2, r->scope) < 0 ||
		    db_binds(s, st, 3, r->flow) < 0 ||
		    db_bindi(s, st, 4, (long long)getpid()) < 0 ||
		    db_binds(s, st, 5, s->host) < 0 || db_binds(s, st, 6, r->now) < 0 ||
		    (r->undoes ? db_bindi(s, st, 7, r->undoes) :
		    db_bindt(s, st, 7, NULL, 0)) < 0 ||
		    db_step_done(s, st) < 0)
			return -1;
		if (!r->run)
			r->run = (long)sqlite3_last_insert_rowid(s->db);
	}
opened:
	for (i = 0; i < b->n; i++)
		if (apply_op(s, r, b, &b->ops[i]) < 0)
			return -1;
	if (b->final && r->window && mark_window(s, r) < 0)
		return -1;
	if (b->final && retain_images(s, r) < 0)
		return -1;
	st = r->st[R_RUNUPD];
	for (i = RD_ST_OK; i < RD_ST_N; i++)
		if (db_bindi(s, st, (int)(i - RD_ST_OK) + 1,
		    (long long)b->counts[i]) < 0)
			return -1;
	if (db_binds(s, st, 7, b->final && !r->open ? r->now : NULL) < 0 ||
	    db_binds(s, st, 8, !b->final || r->open ? "running" :
	    b->counts[RD_ST_CONFLICT] || b->counts[RD_ST_DEFERRED] ||
	    b->counts[RD_ST_FAILED] ? "partial" : "done") < 0 ||
	    db_bindi(s, st, 9, r->run) < 0 || db_step_done(s, st) < 0 ||
	    db_commit(s) < 0)
		return -1;
	r->committed = 1;
	memcpy(r->saved, b->counts, sizeof r->saved);
	return 0;
}

static void *
writer(void *arg)
{
	struct state *s = arg;
	struct recorder *r = s->rec;
	struct batch *b;

	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (!r->queue && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		if (!(b = r->queue)) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		r->queue = b->next;
		if (!r->queue)
			r->tail = NULL;
		pthread_mutex_unlock(&r->mu);

		if (!r->failed && write_batch(s, r, b) < 0) {
			db_rollback(s);
			pthread_mutex_lock(&r->mu);
			r->failed = 1;
			r->errstatus = rd_errstatus();
			snprintf(r->errmsg, sizeof r->errmsg, "%s", rd_errmsg());
			pthread_mutex_unlock(&r->mu);
		}

		pthread_mutex_lock(&r->mu);
		b->n = 0;
		sb_reset(&b->bytes);
		b->next = r->free;
		r->free = b;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	return NULL;
}

/* The writer's error, in the caller's thread. */
static int
writer_failed(struct recorder *r)
{
	rd_seterr(r->errstatus, "%s", r->errmsg);
	return -1;
}

/* Stop the writer once it has written what was handed over, and wait. */
static void
writer_join(struct recorder *r)
{
	if (!r->started)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->th, NULL);
	r->started = 0;
}

void
state_record_drop(struct state *s)
{
	/* Not finished nor aborted: what was handed over is dropped. */
	pthread_mutex_lock(&s->rec->mu);
	s->rec->failed = 1;
	pthread_mutex_unlock(&s->rec->mu);
	writer_join(s->rec);
	db_rollback(s);
	recorder_free(s->rec);
	s->rec = NULL;
}

int
state_record_start(struct state *s, const char *scope, long run,
    const char *flow)
{
	struct recorder *r = xcalloc(1, sizeof *r);
	char *own = NULL;
	int i;

	r->scope = xstrdup(scope);
	r->flow = flow ? xstrdup(flow) : NULL;
	r->run = run;
	sb_init(&r->canon, 4096);
	sb_init(&r->changed, 256);
	arena_init(&r->a);
	for (i = 0; i < NBATCH; i++) {
		sb_init(&r->pool[i].bytes, 64 * 1024);
		r->pool[i].next = i > 1 ? &r->pool[i - 1] : NULL;
	}
	r->fill = &r->pool[0];
	r->free = &r->pool[NBATCH - 1];
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	s->rec = r;

	if (state_scope(s, &own) < 0)
		return -1;
	if (own && strcmp(own, scope) != 0) {
		refuse_scope(s, own, scope);
		free(own);
		return -1;
	}
	free(own);
	if (run && load_run(s, r) < 0)
		return -1;
	if (state_images_keep(s, &r->keep) < 0)
		return -1;
	if (load_outbox(s, r) < 0)
		return -1;
	/*
	 * A long stream writes many pages: a larger cache and fewer, larger
	 * checkpoints write each page fewer times.
	 */
	if (db_exec(s, "PRAGMA cache_size = -65536") < 0 ||
	    db_exec(s, "PRAGMA wal_autocheckpoint = 4096") < 0)
		return -1;
	for (i = 0; i < R_NSTMT; i++)
		if (db_prep(s, &r->st[i], rec_sql[i], 1) < 0)
			return -1;
	memcpy(r->saved, r->counts, sizeof r->saved);
	if ((errno = pthread_create(&r->th, NULL, writer, s)) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "cannot start a thread: %s",
		    strerror(errno));
		return -1;
	}
	r->started = 1;
	return 0;
}

/* Hand the batch being filled to the writer and take an empty one. */
static int
handoff(struct recorder *r, int final)
{
	struct batch *b = r->fill;

	b->final = final;
	memcpy(b->counts, r->counts, sizeof b->counts);
	pthread_mutex_lock(&r->mu);
	b->next = NULL;
	if (r->tail)
		r->tail->next = b;
	else
		r->queue = b;
	r->tail = b;
	pthread_cond_broadcast(&r->cv);
	while (!r->free && !r->failed)
		pthread_cond_wait(&r->cv, &r->mu);
	if (r->free) {
		r->fill = r->free;
		r->free = r->fill->next;
	} else {
		r->fill = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	return r->failed ? writer_failed(r) : 0;
}

int
state_record_commit(struct state *s)
{
	struct recorder *r = s->rec;

	if (r->failed)
		return writer_failed(r);
	if (!r->fill->n)
		return 0;
	return handoff(r, 0);
}

int
state_record_finish(struct state *s)
{
	struct recorder *r = s->rec;

	/* Nothing to record is no run: the state is left as it was. */
	if (r->consumed && handoff(r, 1) < 0)
		return -1;
	writer_join(r);
	if (r->failed)
		return writer_failed(r);
	/* A window with no results is done all the same, and must exist. */
	if (!r->consumed && r->window)
		return state_window_mark(s, r->window, 1, NULL);
	return 0;
}

void
state_record_abort(struct state *s)
{
	struct recorder *r = s->rec;
	sqlite3_stmt *st;
	char now[32];
	int i, ok;

	if (!r)
		return;
	/* The batch being filled is dropped; those handed over are written. */
	writer_join(r);
	if (!r->committed)
		return;
	/* Quietly: the caller is about to report the error that led here. */
	st = r->st[R_RUNUPD];
	state_now(now, sizeof now);
	ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
	for (i = RD_ST_OK; ok && i < RD_ST_N; i++)
		ok = sqlite3_bind_int64(st, i - RD_ST_OK + 1,
		    (long long)r->saved[i]) == SQLITE_OK;
	ok = ok && (r->open ? sqlite3_bind_null(st, 7) :
	    sqlite3_bind_text(st, 7, now, -1, SQLITE_TRANSIENT)) ==
	    SQLITE_OK && sqlite3_bind_text(st, 8, r->open ? "running" : "failed",
	    -1, SQLITE_STATIC) ==
	    SQLITE_OK && sqlite3_bind_int64(st, 9, r->run) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_DONE;
	(void)sqlite3_reset(st);
	ok = ok && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
	if (!ok)
		db_rollback(s);
}

/* The caller's side */

/*
 * A result line, as the state needs it: one deferred must hold what a replay
 * sends.
 */
static int
parse_result(const struct json *obj, struct result *res)
{
	if (stream_get_result(obj, res) < 0)
		return -1;
	if (res->status == RD_ST_DEFERRED && res->op != RD_OP_DELETE &&
	    !res->fields) {
		rd_seterr(RD_EXIT_DATA, "deferred %s without \"fields\": it could "
		    "not be replayed", rd_op_name(res->op));
		return -1;
	}
	return 0;
}

static struct bop *
new_op(struct batch *b, int what)
{
	struct bop *o;

	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 1024;
		b->ops = xreallocarray(b->ops, b->cap, sizeof *b->ops);
	}
	o = &b->ops[b->n++];
	memset(o, 0, sizeof *o);
	o->what = (unsigned char)what;
	o->type = o->key = o->rev = o->hash = o->fields = o->changed = NOSTR;
	o->code = o->message = o->line = NOSTR;
	o->field = o->base = o->local = o->remote = NOSTR;
	o->brev = o->bfields = NOSTR;
	return o;
}

/* Copy bytes into the batch: their offset, or NOSTR for NULL. */
static size_t
put(struct batch *b, const char *p, size_t n)
{
	size_t off = b->bytes.len;

	if (!p)
		return NOSTR;
	sb_add(&b->bytes, p, n);
	return off;
}

static void
put_json(struct batch *b, const struct json *v, size_t *off, size_t *len)
{
	*off = b->bytes.len;
	json_write(&b->bytes, v, 0);
	*len = b->bytes.len - *off;
}

/* The change to replay, rebuilt from a deferred result. */
static void
put_change(struct batch *b, const struct result *res, struct bop *o)
{
	struct change c = {
		.op = res->op, .type = res->type, .typelen = res->typelen,
		.key = res->key, .keylen = res->keylen, .rev = res->rev,
		.revlen = res->revlen, .fields = res->fields,
		.changed = res->changed, .target = res->target,
		.before = res->before,
	};

	o->line = b->bytes.len;
	stream_write_change(&b->bytes, &c);
	o->linelen = b->bytes.len - o->line;
}

static int
add_result(struct recorder *r, const struct json *obj)
{
	struct batch *b = r->fill;
	struct result res;
	struct ruleview rv = { 0 };
	unsigned char h[RD_HASH_LEN];
	char hex[2 * RD_HASH_LEN + 1];
	struct bop *o;
	int confirms;

	if (parse_result(obj, &res) < 0)
		return -1;
	/*
	 * "same" comes from push for a change it found already in step (a diff
	 * --all same line, or a conflict recomputed to equal): skipped, with
	 * the remote's rev and fields, it confirms the record for the base.
	 * One side of a two-way sync confirms it with or without a rev: the
	 * local side may keep none.
	 */
	confirms = res.fields && res.op != RD_OP_DELETE &&
	    (res.status == RD_ST_OK || (res.status == RD_ST_SKIPPED &&
	    res.op == RD_OP_SAME && (res.rev || res.target != RD_SIDE_NONE)));
	if (confirms) {
		if (record_hash(&rv, res.fields, h, &r->canon) < 0)
			return -1;
		hex_encode(hex, h, RD_HASH_LEN);
	}
	r->counts[res.status]++;
	if (res.status == RD_ST_PLANNED)
		return 0;
	o = new_op(b, B_RESULT);
	o->op = (unsigned char)res.op;
	o->status = (unsigned char)res.status;
	o->side = (unsigned char)res.target;
	o->type = put(b, res.type, o->typelen = res.typelen);
	o->key = put(b, res.key, o->keylen = res.keylen);
	o->rev = put(b, res.rev, o->revlen = res.revlen);
	o->code = put(b, res.code, o->codelen = res.codelen);
	o->message = put(b, res.message, o->messagelen = res.messagelen);
	if (res.changed)
		put_json(b, res.changed, &o->changed, &o->changedlen);
	if (confirms) {
		o->hash = put(b, hex, 2 * RD_HASH_LEN);
		put_json(b, res.fields, &o->fields, &o->fieldslen);
		o->diff = res.op == RD_OP_UPDATE && !res.changed;
	}
	if (res.status == RD_ST_DEFERRED)
		put_change(b, &res, o);
	/* The before-image of a change applied, for undo. */
	if (res.status == RD_ST_OK && res.before) {
		const struct json *f = json_get(res.before, "fields");
		const char *rev;
		size_t n;

		if (stream_get_str(res.before, "rev", 0, &rev, &n) < 0)
			return -1;
		o->brev = put(b, rev, o->brevlen = n);
		put_json(b, f, &o->bfields, &o->bfieldslen);
	}
	return 0;
}

static int
add_cursor(struct recorder *r, const struct json *obj)
{
	struct batch *b = r->fill;
	struct cursor cur;
	struct bop *o;

	if (stream_get_cursor(obj, &cur) < 0)
		return -1;
	/* The cursor's name is "SOURCE/NAME", or NAME without a source. */
	o = new_op(b, B_CURSOR);
	o->key = b->bytes.len;
	if (cur.source && cur.sourcelen) {
		sb_add(&b->bytes, cur.source, cur.sourcelen);
		sb_addc(&b->bytes, '/');
	}
	sb_add(&b->bytes, cur.name, cur.namelen);
	o->keylen = b->bytes.len - o->key;
	if (cur.value->type == JSON_STRING)
		o->fields = put(b, cur.value->u.s,
		    o->fieldslen = cur.value->len);
	else
		put_json(b, cur.value, &o->fields, &o->fieldslen);
	return 0;
}

/* A value of a conflict as compact JSON, or NOSTR when absent. */
static void
put_value(struct batch *b, const struct json *v, size_t *off, size_t *len)
{
	if (v)
		put_json(b, v, off, len);
}

static int
add_conflict(struct recorder *r, const struct json *obj)
{
	struct batch *b = r->fill;
	struct conflict cf;
	struct bop *o;

	if (stream_get_conflict(obj, &cf) < 0)
		return -1;
	o = new_op(b, B_CONFLICT);
	o->side = (unsigned char)cf.winner;
	o->type = put(b, cf.type, o->typelen = cf.typelen);
	o->key = put(b, cf.key, o->keylen = cf.keylen);
	o->field = put(b, cf.field, o->fieldlen = cf.fieldlen);
	put_value(b, cf.base, &o->base, &o->baselen);
	put_value(b, cf.local, &o->local, &o->locallen);
	put_value(b, cf.remote, &o->remote, &o->remotelen);
	o->message = put(b, cf.reason, o->messagelen = cf.reasonlen);
	return 0;
}

int
state_record_line(struct state *s, const struct json *obj, enum rd_kind kind)
{
	struct recorder *r = s->rec;

	if (r->failed)
		return writer_failed(r);
	if (kind == RD_KIND_RESULT) {
		if (add_result(r, obj) < 0)
			return -1;
	} else if (kind == RD_KIND_CURSOR) {
		if (add_cursor(r, obj) < 0)
			return -1;
	} else if (kind == RD_KIND_CONFLICT) {
		if (add_conflict(r, obj) < 0)
			return -1;
	} else if (kind == RD_KIND_SUMMARY) {
		const char *stage;
		size_t n;

		/*
		 * A sparse plan's diff summary (recdelta-diff --sparse) makes a
		 * run of a push that had nothing to write, as its same lines
		 * would have: nothing is recorded of it.
		 */
		if (stream_get_str(obj, "stage", STREAM_OPTIONAL, &stage,
		    &n) < 0 || n != 4 || memcmp(stage, "diff", 4) != 0)
			return 0;
		r->consumed++;
		return 0;
	} else {
		return 0;
	}
	r->consumed++;
	return 1;
}
