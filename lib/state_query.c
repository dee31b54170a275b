/*
 * state_query.c - run state: the base snapshot and its pruning, cursors,
 * runs and their change logs, the conflicts kept for review, the outbox.
 */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"

/* The base and cursors */

/*
 * Each row of table (base, temp.fold or feed_seen), of one type or all, in
 * type and key order: its type, key, rev, hash (base's alone) and fields
 * (NULL in feed_seen alone: a tombstone).
 */
static int
rows_each(struct state *s, const char *table, const char *type,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx)
{
	int hashed = strcmp(table, "base") == 0;
	int gone = strcmp(table, "feed_seen") == 0;
	sqlite3_stmt *st;
	struct state_baserow row;
	char sql[160];
	int k, ret = 0;

	snprintf(sql, sizeof sql, "SELECT type, key, rev, %s, fields FROM %s%s"
	    " ORDER BY type, key", hashed ? "hash" : "NULL", table,
	    type ? " WHERE type = ?1" : "");
	if (db_prep(s, &st, sql, 0) < 0)
		return -1;
	if (type && db_binds(s, st, 1, type) < 0) {
		db_finalize(st);
		return -1;
	}
	while ((k = db_step_row(s, st)) == 1) {
		row.type = db_col(st, 0, &row.typelen);
		row.key = db_col(st, 1, &row.keylen);
		row.rev = db_col(st, 2, &row.revlen);
		row.hash = db_col(st, 3, NULL);
		row.fields = db_col(st, 4, &row.fieldslen);
		if (!row.type || !row.key || (!row.fields && !gone)) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s: a column is NULL",
			    s->path, table);
			k = -1;
			break;
		}
		if ((ret = fn(ctx, &row)) < 0)
			break;
	}
	db_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

int
state_base_each(struct state *s, const char *type,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx)
{
	return rows_each(s, "base", type, fn, ctx);
}

/*
 * The fold keeps in temporary tables (a connection that only reads the
 * state may make them; they go with it) what the feed and feed_seen say,
 * not a copy of the base: temp.fold the records they hold, temp.fold_gone
 * the keys they say are gone (of one type, or of every type for "*").
 * state_fold_each reads them into memory (they grow with the changes) and
 * the base once, in order, merging: a base row that fold replaces or
 * fold_gone names is left out.  A whole read (full) leaves the base out:
 * fold alone.
 */
static int fold_full;

int
state_fold_begin(struct state *s, int full)
{
	fold_full = full;
	if (db_exec(s, "DROP TABLE IF EXISTS temp.fold") < 0 ||
	    db_exec(s, "DROP TABLE IF EXISTS temp.fold_gone") < 0 ||
	    db_exec(s, "CREATE TEMP TABLE fold (type TEXT, key TEXT, rev TEXT,"
	    " fields TEXT, PRIMARY KEY (type, key)) WITHOUT ROWID") < 0 ||
	    db_exec(s, "CREATE TEMP TABLE fold_gone (key TEXT, type TEXT,"
	    " PRIMARY KEY (key, type)) WITHOUT ROWID") < 0)
		return -1;
	if (full)
		return 0;
	if (db_exec(s, "INSERT OR IGNORE INTO temp.fold_gone (key, type)"
	    " SELECT key, type FROM feed_seen WHERE fields IS NULL") < 0)
		return -1;
	return db_exec(s, "INSERT OR REPLACE INTO temp.fold (type, key, rev,"
	    " fields) SELECT type, key, rev, fields FROM feed_seen"
	    " WHERE fields IS NOT NULL");
}

int
state_fold_put(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *rev, size_t revlen,
    const char *fields, size_t fieldslen)
{
	static const char *const sql[] = {
		("INSERT OR REPLACE INTO temp.fold (type, key, rev, fields)"
		" VALUES (?1, ?2, ?3, ?4)"),
		"DELETE FROM temp.fold WHERE key = ?2 AND (type = ?1 OR ?1 = '*')",
		"INSERT OR IGNORE INTO temp.fold_gone (key, type) VALUES (?2, ?1)",
	};
	/* A record: one statement; a tombstone: out of fold, then of base. */
	size_t i = fields ? 0 : 1, end = fields ? 1 : fold_full ? 2 : 3;
	sqlite3_stmt *st;
	int r = 0;

	for (; r == 0 && i < end; i++) {
		if (db_prep(s, &st, sql[i], 0) < 0)
			return -1;
		r = -1;
		if (db_bindt(s, st, 1, type, typelen) == 0 &&
		    db_bindt(s, st, 2, key, keylen) == 0 &&
		    (!fields || (db_bindt(s, st, 3, rev, revlen) == 0 &&
		    db_bindt(s, st, 4, fields, fieldslen) == 0)))
			r = db_step_done(s, st);
		db_finalize(st);
	}
	return r;
}

/*
 * A row of fold, copied (rev NULL when none), or of fold_gone (its type and
 * key alone).
 */
struct foldrow {
	char *type, *key, *rev, *fields;
	size_t typelen, keylen, revlen, fieldslen;
};

struct foldmerge {
	struct foldrow *rows, *gone;
	size_t nrows, ngone, at;	/* at: the next row of fold to give */
	int (*fn)(void *ctx, const struct state_baserow *row);
	void *ctx;
};

/* Bytes compared as SQLite's BINARY collation does. */
static int
bincmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c ? c : (an > bn) - (an < bn);
}

static char *
copycol(sqlite3_stmt *st, int i, size_t *len)
{
	const char *p = db_col(st, i, len);

	return p ? xmemdup(p, *len) : NULL;
}

/* The rows of sql (type, key, rev, fields), in its order, into *v. */
static int
fold_load(struct state *s, const char *sql, const char *type,
    struct foldrow **v, size_t *n)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int k;

	*v = NULL;
	*n = 0;
	if (db_prep(s, &st, sql, 0) < 0)
		return -1;
	if (type && db_binds(s, st, 1, type) < 0) {
		db_finalize(st);
		return -1;
	}
	while ((k = db_step_row(s, st)) == 1) {
		struct foldrow *r;

		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			*v = xreallocarray(*v, cap, sizeof **v);
		}
		r = &(*v)[(*n)++];
		r->type = copycol(st, 0, &r->typelen);
		r->key = copycol(st, 1, &r->keylen);
		r->rev = copycol(st, 2, &r->revlen);
		r->fields = copycol(st, 3, &r->fieldslen);
	}
	db_finalize(st);
	return k < 0 ? -1 : 0;
}

static void
fold_free(struct foldrow *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].type);
		free(v[i].key);
		free(v[i].rev);
		free(v[i].fields);
	}
	free(v);
}

static int
fold_give(struct foldmerge *m, const struct foldrow *r)
{
	struct state_baserow row = {
		r->type, r->key, r->rev, NULL, r->fields,
		r->typelen, r->keylen, r->revlen, r->fieldslen
	};

	return m->fn(m->ctx, &row);
}

/* Whether fold_gone (sorted by key, then type) takes the base row away. */
static int
fold_gone(const struct foldmerge *m, const struct state_baserow *row)
{
	size_t lo = 0, hi = m->ngone, i;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bincmp(m->gone[mid].key, m->gone[mid].keylen, row->key,
		    row->keylen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < m->ngone && bincmp(m->gone[i].key, m->gone[i].keylen,
	    row->key, row->keylen) == 0; i++)
		if ((m->gone[i].typelen == 1 && m->gone[i].type[0] == '*') ||
		    bincmp(m->gone[i].type, m->gone[i].typelen, row->type,
		    row->typelen) == 0)
			return 1;
	return 0;
}

/* One base row, in (type, key) order: fold's rows before it first. */
static int
fold_base_row(void *ctx, const struct state_baserow *row)
{
	struct foldmerge *m = ctx;
	struct state_baserow out;
	int c = -1, r;

	while (m->at < m->nrows) {
		const struct foldrow *f = &m->rows[m->at];

		if ((c = bincmp(f->type, f->typelen, row->type,
		    row->typelen)) == 0)
			c = bincmp(f->key, f->keylen, row->key, row->keylen);
		if (c > 0)
			break;
		if ((r = fold_give(m, f)) < 0)
			return r;
		m->at++;
		if (c == 0)
			return 0;	/* replaced */
	}
	if (fold_gone(m, row))
		return 0;
	out = *row;
	out.hash = NULL;
	return m->fn(m->ctx, &out);
}

int
state_fold_each(struct state *s, const char *type,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx)
{
	struct foldmerge m = { NULL, NULL, 0, 0, 0, fn, ctx };
	int ret = -1;

	if (fold_full)
		return rows_each(s, "temp.fold", type, fn, ctx);
	if (fold_load(s, type ? "SELECT type, key, rev, fields FROM temp.fold"
	    " WHERE type = ?1 ORDER BY type, key" : "SELECT type, key, rev,"
	    " fields FROM temp.fold ORDER BY type, key", type, &m.rows,
	    &m.nrows) == 0 &&
	    fold_load(s, "SELECT type, key, NULL, NULL FROM temp.fold_gone"
	    " ORDER BY key, type", NULL, &m.gone, &m.ngone) == 0 &&
	    rows_each(s, "base", type, fold_base_row, &m) == 0) {
		ret = 0;
		for (; ret == 0 && m.at < m.nrows; m.at++)
			ret = fold_give(&m, &m.rows[m.at]);
	}
	fold_free(m.rows, m.nrows);
	fold_free(m.gone, m.ngone);
	return ret;
}

void
state_fold_end(struct state *s)
{
	db_exec(s, "DROP TABLE IF EXISTS temp.fold");
	db_exec(s, "DROP TABLE IF EXISTS temp.fold_gone");
}

/*
 * The lookups of a check, prepared once (a feed may hold every record),
 * in one read transaction: one snapshot, one lock.
 */
int
state_fold_check_begin(struct state *s)
{
	static const char *const sql[] = {
		("SELECT count(*) FROM base WHERE type = ?1 AND key = ?2"
		" AND rev = ?3 AND hash = ?4"),
		("SELECT count(*) = 0 FROM base WHERE key = ?2"
		" AND (type = ?1 OR ?1 = '*')"),
	};

	if (db_exec(s, "BEGIN") < 0)
		return -1;
	if (db_prep(s, &s->keeps[0], sql[0], 1) < 0 ||
	    db_prep(s, &s->keeps[1], sql[1], 1) < 0) {
		state_fold_check_end(s);
		return -1;
	}
	return 0;
}

int
state_fold_keeps(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *rev, size_t revlen,
    const char *hash)
{
	sqlite3_stmt *st = s->keeps[hash == NULL];
	int r = -1, k;

	if (hash && (!rev || revlen == 0))
		return 0;
	if (db_bindt(s, st, 1, type, typelen) == 0 &&
	    db_bindt(s, st, 2, key, keylen) == 0 &&
	    (!hash || (db_bindt(s, st, 3, rev, revlen) == 0 &&
	    db_binds(s, st, 4, hash) == 0)) &&
	    (k = db_step_row(s, st)) >= 0) {
		if (k == 0)
			rd_seterr(RD_EXIT_RUNTIME, "%s: base: no result", s->path);
		else
			r = sqlite3_column_int(st, 0) != 0;
	}
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
	return r;
}

void
state_fold_check_end(struct state *s)
{
	db_finalize(s->keeps[0]);
	db_finalize(s->keeps[1]);
	s->keeps[0] = s->keeps[1] = NULL;
	db_rollback(s);
}

int
state_feed_seen_each(struct state *s,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx)
{
	return rows_each(s, "feed_seen", NULL, fn, ctx);
}

int
state_cursor_get(struct state *s, const char *name, char **value)
{
	sqlite3_stmt *st;
	int k = -1;

	*value = NULL;
	if (db_prep(s, &st, "SELECT value FROM cursors WHERE name = ?1", 0) < 0)
		return -1;
	if (db_binds(s, st, 1, name) == 0 && (k = db_step_row(s, st)) == 1)
		*value = db_coldup(st, 0);
	db_finalize(st);
	return k;
}

int
state_cursor_set(struct state *s, const char *name, const char *value)
{
	sqlite3_stmt *st;
	char now[32];
	int r = -1;

	state_now(now, sizeof now);
	if (db_begin(s) < 0)
		return -1;
	if (db_prep(s, &st, SQL_CURSOR_SET, 0) < 0)
		goto out;
	if (db_binds(s, st, 1, name) == 0 && db_binds(s, st, 2, value) == 0 &&
	    db_binds(s, st, 3, now) == 0 && db_step_done(s, st) == 0)
		r = 0;
	db_finalize(st);
	if (r == 0)
		r = db_commit(s);
out:
	if (r < 0)
		db_rollback(s);
	return r;
}

/* Runs, changes, outbox */

int
state_run_open(struct state *s, const char *scope, const char *flow,
    long pid, long *id)
{
	sqlite3_stmt *st = NULL;
	char now[32], *own = NULL;
	struct sb m;
	int r = -1;

	state_now(now, sizeof now);
	if (db_begin(s) < 0)
		return -1;
	if (state_scope(s, &own) < 0)
		goto out;
	if (own && strcmp(own, scope) != 0) {
		sb_init(&m, 256);
		state_scope_refusal(s, own, scope, "run start", &m);
		m.buf[--m.len] = '\0';
		rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
		sb_release(&m);
		goto out;
	}
	if (!own && state_set_scope(s, scope) < 0)
		goto out;
	if (db_prep(s, &st, "INSERT INTO runs(scope, flow, pid, host, started,"
	    " status) VALUES (?1, ?2, ?3, ?4, ?5, 'running')", 0) < 0)
		goto out;
	if (db_binds(s, st, 1, scope) < 0 || db_binds(s, st, 2, flow) < 0 ||
	    db_bindi(s, st, 3, pid) < 0 || db_binds(s, st, 4, s->host) < 0 ||
	    db_binds(s, st, 5, now) < 0 || db_step_done(s, st) < 0)
		goto out;
	*id = (long)sqlite3_last_insert_rowid(s->db);
	r = db_commit(s);
out:
	db_finalize(st);
	free(own);
	if (r < 0)
		db_rollback(s);
	return r;
}

int
state_run_close(struct state *s, long id, int partial)
{
	sqlite3_stmt *st;
	char now[32];
	int r = -1;

	state_now(now, sizeof now);
	if (db_begin(s) < 0)
		return -1;
	if (db_prep(s, &st, "UPDATE runs SET ended = ?2, status = CASE WHEN ?3"
	    " OR conflict + deferred + failed > 0 THEN 'partial' ELSE 'done' END"
	    " WHERE id = ?1", 0) < 0)
		goto out;
	if (db_bindi(s, st, 1, id) == 0 && db_binds(s, st, 2, now) == 0 &&
	    db_bindi(s, st, 3, partial) == 0 && db_step_done(s, st) == 0) {
		if (sqlite3_changes(s->db) == 0)
			rd_seterr(RD_EXIT_USAGE, "no run %ld; see: "
			    "recdelta-checkpoint history", id);
		else
			r = 0;
	}
	db_finalize(st);
	if (r == 0)
		r = db_commit(s);
out:
	if (r < 0)
		db_rollback(s);
	return r;
}

int
state_runs_each(struct state *s, long id, int last,
    int (*fn)(void *ctx, const struct state_run *r), void *ctx)
{
	static const char cols[] = "SELECT id, scope, flow, pid, host, started,"
	    " ended, status, ok, skipped, conflict, deferred, failed, planned,"
	    " (SELECT count(*) FROM changes WHERE run = runs.id"
	    " AND target = 'local'),"
	    " (SELECT count(*) FROM changes WHERE run = runs.id"
	    " AND target = 'remote'),"
	    " images AND EXISTS (SELECT 1 FROM changes WHERE run = runs.id"
	    " AND status = 'ok') AND NOT EXISTS (SELECT 1 FROM changes c"
	    " LEFT JOIN images i ON i.run = c.run AND i.seq = c.seq"
	    " WHERE c.run = runs.id AND c.status = 'ok' AND ((c.op <> 'create'"
	    " AND i.before_fields IS NULL) OR (c.op <> 'delete'"
	    " AND i.after_fields IS NULL))), undoes,"
	    " (SELECT max(u.id) FROM runs u WHERE u.undoes = runs.id)"
	    " FROM runs";
	char sql[768];
	sqlite3_stmt *st;
	struct state_run r;
	int k, i, ret = 0;

	snprintf(sql, sizeof sql, "%s%s", cols, id ? " WHERE id = ?1" :
	    last ? " ORDER BY id DESC LIMIT 1" : " ORDER BY id");
	if (db_prep(s, &st, sql, 0) < 0)
		return -1;
	if (id && db_bindi(s, st, 1, id) < 0) {
		db_finalize(st);
		return -1;
	}
	while ((k = db_step_row(s, st)) == 1) {
		memset(&r, 0, sizeof r);
		r.id = (long)sqlite3_column_int64(st, 0);
		r.scope = db_col(st, 1, NULL);
		r.flow = db_col(st, 2, NULL);
		r.pid = (long)sqlite3_column_int64(st, 3);
		r.host = db_col(st, 4, NULL);
		r.started = db_col(st, 5, NULL);
		r.ended = db_col(st, 6, NULL);
		r.status = db_col(st, 7, NULL);
		for (i = RD_ST_OK; i < RD_ST_N; i++)
			r.counts[i] = (unsigned long)sqlite3_column_int64(st,
			    8 + i - RD_ST_OK);
		r.to_local = (unsigned long)sqlite3_column_int64(st,
		    8 + RD_ST_N - RD_ST_OK);
		r.to_remote = (unsigned long)sqlite3_column_int64(st,
		    9 + RD_ST_N - RD_ST_OK);
		r.undoable = sqlite3_column_int(st, 10 + RD_ST_N - RD_ST_OK);
		r.undoes = (long)sqlite3_column_int64(st, 11 + RD_ST_N - RD_ST_OK);
		r.undone_by = (long)sqlite3_column_int64(st,
		    12 + RD_ST_N - RD_ST_OK);
		if (!r.scope || !r.started || !r.status) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: runs: a column is NULL",
			    s->path);
			k = -1;
			break;
		}
		r.live = strcmp(r.status, "running") == 0 && r.host &&
		    strcmp(r.host, s->host) == 0 && state_pid_alive(r.pid);
		if ((ret = fn(ctx, &r)) < 0)
			break;
	}
	db_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

static int
changes_each(struct state *s, long run, int applied,
    int (*fn)(void *ctx, const struct state_change *c), void *ctx)
{
	sqlite3_stmt *st;
	struct state_change c;
	int k, ret = 0;

	if (db_prep(s, &st, applied ? "SELECT op, type, key, status, rev,"
	    " changed, error_code, error_message, target, i.before_rev,"
	    " i.before_fields, i.after_fields FROM changes c LEFT JOIN images i"
	    " ON i.run = c.run AND i.seq = c.seq WHERE c.run = ?1"
	    " AND status = 'ok' ORDER BY type, key, target, c.seq" :
	    "SELECT op, type, key, status, rev, changed,"
	    " error_code, error_message, target, i.before_rev, i.before_fields,"
	    " i.after_fields FROM changes c LEFT JOIN images i ON i.run = c.run"
	    " AND i.seq = c.seq WHERE c.run = ?1 ORDER BY c.seq", 0) < 0)
		return -1;
	if (db_bindi(s, st, 1, run) < 0) {
		db_finalize(st);
		return -1;
	}
	while ((k = db_step_row(s, st)) == 1) {
		c.op = db_col(st, 0, NULL);
		c.type = db_col(st, 1, &c.typelen);
		c.key = db_col(st, 2, &c.keylen);
		c.status = db_col(st, 3, NULL);
		c.rev = db_col(st, 4, NULL);
		c.changed = db_col(st, 5, NULL);
		c.code = db_col(st, 6, NULL);
		c.message = db_col(st, 7, NULL);
		c.target = db_col(st, 8, NULL);
		c.before_rev = db_col(st, 9, &c.before_revlen);
		c.before = db_col(st, 10, &c.beforelen);
		c.after = db_col(st, 11, &c.afterlen);
		if (!c.op || !c.type || !c.key || !c.status) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: changes: a column is NULL",
			    s->path);
			k = -1;
			break;
		}
		if ((ret = fn(ctx, &c)) < 0)
			break;
	}
	db_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

int
state_changes_each(struct state *s, long run,
    int (*fn)(void *ctx, const struct state_change *c), void *ctx)
{
	return changes_each(s, run, 0, fn, ctx);
}

int
state_applied_each(struct state *s, long run,
    int (*fn)(void *ctx, const struct state_change *c), void *ctx)
{
	return changes_each(s, run, 1, fn, ctx);
}

/* Retention of before-images */

int
state_images_keep(struct state *s, long *keep)
{
	sqlite3_stmt *st;
	const char *v;
	int k;

	*keep = STATE_KEEP_IMAGES;
	if (!s->exists)
		return 0;
	if (db_prep(s, &st, "SELECT value FROM meta WHERE key = 'keep_images'",
	    0) < 0)
		return -1;
	if ((k = db_step_row(s, st)) == 1) {
		if ((v = db_col(st, 0, NULL)))
			*keep = strtol(v, NULL, 10);
		(void)sqlite3_reset(st);
	}
	db_finalize(st);
	return k < 0 ? -1 : 0;
}

int
state_images_prune(struct state *s, long keep, unsigned long *runs)
{
	sqlite3_stmt *st = NULL;
	char v[32];
	int r = -1;

	snprintf(v, sizeof v, "%ld", keep);
	if (db_begin(s) < 0)
		return -1;
	if (db_prep(s, &st, "INSERT INTO meta(key, value) VALUES"
	    " ('keep_images', ?1) ON CONFLICT (key) DO UPDATE"
	    " SET value = excluded.value", 0) < 0 ||
	    db_binds(s, st, 1, v) < 0 || db_step_done(s, st) < 0)
		goto out;
	db_finalize(st);
	if (db_prep(s, &st, SQL_IMAGES_DROP, 0) < 0 ||
	    db_bindi(s, st, 1, keep) < 0 || db_step_done(s, st) < 0)
		goto out;
	db_finalize(st);
	if (db_prep(s, &st, SQL_IMAGES_RUNS, 0) < 0 ||
	    db_bindi(s, st, 1, keep) < 0 || db_step_done(s, st) < 0)
		goto out;
	*runs = (unsigned long)sqlite3_changes(s->db);
	r = db_commit(s);
out:
	db_finalize(st);
	if (r < 0)
		db_rollback(s);
	return r;
}

/* Conflicts */

/* Append " AND type IN (?FIRST, ...)" for n types, when n is not 0. */
static void
types_in(struct sb *sql, size_t n, int first)
{
	size_t i;

	if (!n)
		return;
	sb_adds(sql, " AND type IN (");
	for (i = 0; i < n; i++)
		sb_addf(sql, "%s?%zu", i ? ", " : "", (size_t)first + i);
	sb_addc(sql, ')');
}

static int
bind_types(struct state *s, sqlite3_stmt *st, char *const *types, size_t n,
    int first)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (db_binds(s, st, first + (int)i, types[i]) < 0)
			return -1;
	return 0;
}

int
state_conflicts_each(struct state *s, int all, char *const *types,
    size_t ntypes, int (*fn)(void *ctx, const struct state_conflict *c),
    void *ctx)
{
	sqlite3_stmt *st;
	struct state_conflict c;
	struct sb sql;
	int k, ret = 0;

	sb_init(&sql, 256);
	sb_adds(&sql, "SELECT id, run, type, key, field, base, local, remote,"
	    " winner, reason, recorded, reviewed FROM conflicts WHERE ");
	sb_adds(&sql, all ? "1" : "reviewed IS NULL");
	types_in(&sql, ntypes, 1);
	sb_adds(&sql, " ORDER BY id");
	k = db_prep(s, &st, sql.buf, 0);
	sb_release(&sql);
	if (k < 0)
		return -1;
	if (bind_types(s, st, types, ntypes, 1) < 0) {
		db_finalize(st);
		return -1;
	}
	while ((k = db_step_row(s, st)) == 1) {
		memset(&c, 0, sizeof c);
		c.id = sqlite3_column_int64(st, 0);
		c.run = sqlite3_column_int64(st, 1);
		c.type = db_col(st, 2, &c.typelen);
		c.key = db_col(st, 3, &c.keylen);
		c.field = db_col(st, 4, &c.fieldlen);
		c.base = db_col(st, 5, &c.baselen);
		c.local = db_col(st, 6, &c.locallen);
		c.remote = db_col(st, 7, &c.remotelen);
		c.winner = db_col(st, 8, NULL);
		c.reason = db_col(st, 9, &c.reasonlen);
		c.recorded = db_col(st, 10, NULL);
		c.reviewed = db_col(st, 11, NULL);
		if (!c.type || !c.key || !c.winner || !c.reason || !c.recorded) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: conflicts: a column is "
			    "NULL", s->path);
			k = -1;
			break;
		}
		if ((ret = fn(ctx, &c)) < 0)
			break;
	}
	db_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

int
state_conflicts_review(struct state *s, const long long *ids, size_t n,
    char *const *types, size_t ntypes, unsigned long *marked)
{
	sqlite3_stmt *st = NULL, *has = NULL;
	char now[32];
	struct sb sql;
	size_t i;
	int k, r = -1;

	*marked = 0;
	state_now(now, sizeof now);
	sb_init(&sql, 256);
	if (db_begin(s) < 0)
		goto out;
	if (n) {
		/* Every id must exist before any is marked. */
		if (db_prep(s, &has, "SELECT 1 FROM conflicts WHERE id = ?1",
		    0) < 0 || db_prep(s, &st, "UPDATE conflicts SET reviewed = ?2"
		    " WHERE id = ?1 AND reviewed IS NULL", 0) < 0)
			goto out;
		for (i = 0; i < n; i++) {
			if (db_bindi(s, has, 1, ids[i]) < 0 ||
			    (k = db_step_row(s, has)) < 0)
				goto out;
			if (k == 0) {
				rd_seterr(RD_EXIT_USAGE, "no conflict %lld; see: "
				    "recdelta-checkpoint conflicts --all", ids[i]);
				goto out;
			}
			(void)sqlite3_reset(has);
		}
		for (i = 0; i < n; i++) {
			if (db_bindi(s, st, 1, ids[i]) < 0 ||
			    db_binds(s, st, 2, now) < 0 || db_step_done(s, st) < 0)
				goto out;
			*marked += (unsigned long)sqlite3_changes(s->db);
		}
	} else {
		sb_adds(&sql, "UPDATE conflicts SET reviewed = ?1"
		    " WHERE reviewed IS NULL");
		types_in(&sql, ntypes, 2);
		if (db_prep(s, &st, sql.buf, 0) < 0 ||
		    db_binds(s, st, 1, now) < 0 ||
		    bind_types(s, st, types, ntypes, 2) < 0 ||
		    db_step_done(s, st) < 0)
			goto out;
		*marked = (unsigned long)sqlite3_changes(s->db);
	}
	r = db_commit(s);
out:
	db_finalize(has);
	db_finalize(st);
	sb_release(&sql);
	if (r < 0)
		db_rollback(s);
	return r;
}

long
state_outbox_count(struct state *s)
{
	int n;

	if (db_int(s, "SELECT count(*) FROM outbox", &n) < 0)
		return -1;
	return n;
}

int
state_outbox_each(struct state *s,
    int (*fn)(void *ctx, const char *line, size_t len), void *ctx)
{
	sqlite3_stmt *st;
	const char *line;
	size_t n;
	int k, ret = 0;

	if (db_prep(s, &st, "SELECT line FROM outbox ORDER BY rowid", 0) < 0)
		return -1;
	while ((k = db_step_row(s, st)) == 1) {
		if (!(line = db_col(st, 0, &n)))
			continue;
		if ((ret = fn(ctx, line, n)) < 0)
			break;
	}
	db_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

/* Pruning the base */

static sqlite3_stmt *prune_add, *prune_feed, *prune_last, *prune_star;
static int prune_sparse, prune_typed;
static const struct insync *prune_next;	/* state_prune_digest's */

/*
 * The condition that keeps a pruning to the run's types, on the type
 * column col: nothing for a run of every type.  A run limited to types
 * says nothing of the others: their rows stay as they are.
 */
static void
prune_scope(struct sb *sql, const char *col)
{
	if (prune_typed)
		sb_addf(sql, " AND %s IN (SELECT type FROM temp.prune_types)",
		    col);
}

/* db_exec of head, the scope on col, then tail. */
static int
prune_exec(struct state *s, const char *head, const char *col,
    const char *tail)
{
	struct sb sql;
	int r;

	sb_init(&sql, 512);
	sb_adds(&sql, head);
	prune_scope(&sql, col);
	sb_adds(&sql, tail);
	r = db_exec(s, sql.buf);
	sb_release(&sql);
	return r;
}

int
state_prune_begin(struct state *s, int sparse, int whole, char *const *types,
    size_t ntypes)
{
	sqlite3_stmt *st;
	size_t i;

	prune_sparse = sparse;
	prune_typed = ntypes > 0;
	if (db_exec(s, "CREATE TEMP TABLE IF NOT EXISTS prune_seen2 (type TEXT, "
	    "key TEXT, settled INTEGER, PRIMARY KEY (type, key)) WITHOUT ROWID") < 0 ||
	    db_exec(s, "CREATE INDEX IF NOT EXISTS temp.prune_seen2_key ON "
	    "prune_seen2 (key)") < 0 ||
	    db_exec(s, "DELETE FROM prune_seen2") < 0 ||
	    db_exec(s, "CREATE TEMP TABLE IF NOT EXISTS prune_types (type TEXT "
	    "PRIMARY KEY) WITHOUT ROWID") < 0 ||
	    db_exec(s, "DELETE FROM temp.prune_types") < 0)
		return -1;
	if (ntypes) {
		if (db_prep(s, &st, "INSERT OR IGNORE INTO temp.prune_types "
		    "(type) VALUES (?1)", 0) < 0)
			return -1;
		for (i = 0; i < ntypes; i++)
			if (db_binds(s, st, 1, types[i]) < 0 ||
			    db_step_done(s, st) < 0) {
				db_finalize(st);
				return -1;
			}
		db_finalize(st);
	}
	/* Sparse: of each key the feed named, whether its last word was gone. */
	if (sparse && (db_exec(s, "CREATE TEMP TABLE IF NOT EXISTS prune_last "
	    "(type TEXT, key TEXT, deleted INTEGER, PRIMARY KEY (type, key)) "
	    "WITHOUT ROWID") < 0 ||
	    db_exec(s, "CREATE INDEX IF NOT EXISTS temp.prune_last_key ON "
	    "prune_last (key)") < 0 ||
	    db_exec(s, "DELETE FROM prune_last") < 0))
		return -1;
	if (db_begin(s) < 0)
		return -1;
	/*
	 * A whole read of the remote says, of the run's types, all that
	 * earlier feeds said: what they said goes.
	 */
	if (whole && prune_exec(s, "DELETE FROM feed_seen WHERE 1", "type",
	    "") < 0) {
		db_rollback(s);
		return -1;
	}
	/* A key settled by any of its results stays settled. */
	if (db_prep(s, &prune_add, "INSERT INTO prune_seen2 (type, key, settled) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (type, key) DO UPDATE SET "
	    "settled = max(settled, excluded.settled)", 0) < 0) {
		db_rollback(s);
		return -1;
	}
	return 0;
}

int
state_prune_add(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, int settled)
{
	return db_bindt(s, prune_add, 1, type, typelen) < 0 ||
	    db_bindt(s, prune_add, 2, key, keylen) < 0 ||
	    db_bindi(s, prune_add, 3, settled != 0) < 0 ? -1 :
	    db_step_done(s, prune_add);
}

int
state_prune_feed(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *rev, size_t revlen,
    const char *fields, size_t fieldslen)
{
	sqlite3_stmt *st;

	if (!prune_feed && db_prep(s, &prune_feed, "INSERT OR REPLACE INTO "
	    "feed_seen (type, key, rev, fields) VALUES (?1, ?2, ?3, ?4)", 1) < 0)
		return -1;
	st = prune_feed;
	if (db_bindt(s, st, 1, type, typelen) < 0 ||
	    db_bindt(s, st, 2, key, keylen) < 0 ||
	    db_bindt(s, st, 3, rev, revlen) < 0 ||
	    db_bindt(s, st, 4, fields, fieldslen) < 0 ||
	    db_step_done(s, st) < 0)
		return -1;
	if (!prune_sparse)
		return 0;
	/*
	 * As the fold reads the feed: a tombstone of type "*" takes the key
	 * of every type the feed named before, and of every other type.
	 */
	if (!fields && typelen == 1 && *type == '*') {
		if (!prune_star && db_prep(s, &prune_star, "UPDATE prune_last "
		    "SET deleted = 1 WHERE key = ?1", 1) < 0)
			return -1;
		if (db_bindt(s, prune_star, 1, key, keylen) < 0 ||
		    db_step_done(s, prune_star) < 0)
			return -1;
	}
	if (!prune_last && db_prep(s, &prune_last, "INSERT OR REPLACE INTO "
	    "prune_last (type, key, deleted) VALUES (?1, ?2, ?3)", 1) < 0)
		return -1;
	return db_bindt(s, prune_last, 1, type, typelen) < 0 ||
	    db_bindt(s, prune_last, 2, key, keylen) < 0 ||
	    db_bindi(s, prune_last, 3, fields == NULL) < 0 ? -1 :
	    db_step_done(s, prune_last);
}

int
state_prune_cursor(struct state *s, const char *name, const char *value)
{
	sqlite3_stmt *st;
	char now[32];
	int r = -1;

	state_now(now, sizeof now);
	if (db_prep(s, &st, SQL_CURSOR_SET, 0) < 0)
		return -1;
	if (db_binds(s, st, 1, name) == 0 && db_binds(s, st, 2, value) == 0 &&
	    db_binds(s, st, 3, now) == 0 && db_step_done(s, st) == 0)
		r = 0;
	db_finalize(st);
	return r;
}

static void
prune_release(void)
{
	db_finalize(prune_add);
	prune_add = NULL;
	db_finalize(prune_feed);
	prune_feed = NULL;
	db_finalize(prune_last);
	prune_last = NULL;
	db_finalize(prune_star);
	prune_star = NULL;
}

/*
 * Sparse: the base rows of the records the feed said last were gone and
 * no result names, found from the feed's keys, never by reading the
 * base: a typed tombstone's row, and of a tombstone of type "*" the rows
 * of its key of every type the feed did not name otherwise (the types by
 * a skip-scan of the base's key, one lookup a type).
 */
static int
prune_gone(struct state *s, long long *removed)
{
	if (prune_exec(s, "DELETE FROM base WHERE (type, key) IN (SELECT type, "
	    "key FROM prune_last WHERE deleted AND type <> '*') AND NOT EXISTS "
	    "(SELECT 1 FROM prune_seen2 p WHERE p.type = base.type AND "
	    "p.key = base.key)", "base.type", "") < 0)
		return -1;
	*removed = sqlite3_changes(s->db);
	if (prune_exec(s, "WITH RECURSIVE types(t) AS (SELECT min(type) FROM "
	    "base UNION ALL SELECT (SELECT min(type) FROM base WHERE type > t) "
	    "FROM types WHERE t IS NOT NULL) DELETE FROM base WHERE (type, key) "
	    "IN (SELECT types.t, f.key FROM prune_last f, types WHERE "
	    "f.type = '*' AND f.deleted AND types.t IS NOT NULL AND NOT EXISTS "
	    "(SELECT 1 FROM prune_last g WHERE g.type = types.t AND g.key = "
	    "f.key)) AND NOT EXISTS (SELECT 1 FROM prune_seen2 p WHERE "
	    "p.type = base.type AND p.key = base.key)", "base.type", "") < 0)
		return -1;
	*removed += sqlite3_changes(s->db);
	return 0;
}

int
state_prune_finish(struct state *s, long long *removed)
{
	prune_release();
	if (prune_sparse) {
		if (prune_gone(s, removed) < 0) {
			db_rollback(s);
			return -1;
		}
	} else {
		if (prune_exec(s, "DELETE FROM base WHERE NOT EXISTS (SELECT 1 "
		    "FROM prune_seen2 p WHERE p.type = base.type AND p.key = "
		    "base.key)", "base.type", "") < 0 ||
		    (*removed = sqlite3_changes(s->db),
		    prune_exec(s, "DELETE FROM sides WHERE NOT EXISTS (SELECT 1 "
		    "FROM prune_seen2 p WHERE p.type = sides.type AND p.key = "
		    "sides.key)", "sides.type", "") < 0)) {
			db_rollback(s);
			return -1;
		}
	}
	/*
	 * Two lookups, each by an index, rather than one by the key alone
	 * (a scan of the results for every row of the feed).  A run of some
	 * types keeps the tombstones of every type ("*"): they speak of the
	 * others too.
	 */
	if (prune_exec(s, "DELETE FROM feed_seen WHERE NOT (EXISTS (SELECT 1 "
	    "FROM prune_seen2 p WHERE p.type = feed_seen.type AND p.key = "
	    "feed_seen.key AND NOT p.settled) OR (feed_seen.type = '*' AND "
	    "EXISTS (SELECT 1 FROM prune_seen2 p WHERE p.key = feed_seen.key "
	    "AND NOT p.settled)))", "feed_seen.type", "") < 0 ||
	    (prune_next && state_insync_store(s, prune_next) < 0)) {
		prune_next = NULL;
		db_rollback(s);
		return -1;
	}
	prune_next = NULL;
	return db_commit(s);
}

void
state_prune_digest(struct state *s, const struct insync *next)
{
	(void)s;
	prune_next = next;
}

void
state_prune_abort(struct state *s)
{
	prune_next = NULL;
	prune_release();
	db_rollback(s);
}
