/*
 * state_query.c - run state: the base snapshot and its pruning, cursors,
 * runs and their change logs, the outbox.
 */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"

/* The base and cursors */

int
state_base_each(struct state *s, const char *type,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx)
{
	sqlite3_stmt *st;
	struct state_baserow row;
	int k, ret = 0;

	if (db_prep(s, &st, type ?
	    "SELECT type, key, rev, hash, fields FROM base WHERE type = ?1"
	    " ORDER BY type, key" :
	    "SELECT type, key, rev, hash, fields FROM base ORDER BY type, key",
	    0) < 0)
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
		if (!row.type || !row.key || !row.fields) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: base: a column is NULL",
			    s->path);
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
	    " ended, status, ok, skipped, conflict, deferred, failed, planned"
	    " FROM runs";
	char sql[256];
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
		for (i = 0; i < ST_NSTATUS; i++)
			r.counts[i] = (unsigned long)sqlite3_column_int64(st, 8 + i);
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

int
state_changes_each(struct state *s, long run,
    int (*fn)(void *ctx, const struct state_change *c), void *ctx)
{
	sqlite3_stmt *st;
	struct state_change c;
	int k, ret = 0;

	if (db_prep(s, &st, "SELECT op, type, key, status, rev, changed,"
	    " error_code, error_message FROM changes WHERE run = ?1"
	    " ORDER BY seq", 0) < 0)
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

static sqlite3_stmt *prune_add;

int
state_prune_begin(struct state *s)
{
	if (db_exec(s, "CREATE TEMP TABLE IF NOT EXISTS prune_seen (type TEXT, "
	    "key TEXT, PRIMARY KEY (type, key)) WITHOUT ROWID") < 0 ||
	    db_exec(s, "DELETE FROM prune_seen") < 0 || db_begin(s) < 0)
		return -1;
	if (db_prep(s, &prune_add, "INSERT OR IGNORE INTO prune_seen (type, key) "
	    "VALUES (?1, ?2)", 0) < 0) {
		db_rollback(s);
		return -1;
	}
	return 0;
}

int
state_prune_add(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen)
{
	return db_bindt(s, prune_add, 1, type, typelen) < 0 ||
	    db_bindt(s, prune_add, 2, key, keylen) < 0 ? -1 :
	    db_step_done(s, prune_add);
}

int
state_prune_finish(struct state *s, long long *removed)
{
	db_finalize(prune_add);
	prune_add = NULL;
	if (db_exec(s, "DELETE FROM base WHERE NOT EXISTS (SELECT 1 FROM "
	    "prune_seen p WHERE p.type = base.type AND p.key = base.key)") < 0) {
		db_rollback(s);
		return -1;
	}
	*removed = sqlite3_changes(s->db);
	return db_commit(s);
}

void
state_prune_abort(struct state *s)
{
	db_finalize(prune_add);
	prune_add = NULL;
	db_rollback(s);
}
