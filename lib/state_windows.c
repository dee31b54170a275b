/* state_windows.c - run state: the windows of a historical import. */
#include "state.h"

#include <stdio.h>
#include <string.h>

#include "state_int.h"

int
state_windows_plan(struct state *s, long long from, long long to,
    long long step, int dates, unsigned long *added)
{
	sqlite3_stmt *near = NULL, *ins = NULL;
	char a[32], b[32], now[32];
	long long t;
	int k, ret = -1;

	*added = 0;
	state_now(now, sizeof now);
	if (db_begin(s) < 0)
		return -1;
	/*
	 * Planned windows never overlap, so their ends rise with their starts
	 * and the only one that can overlap [t, t + step) is the last to start
	 * before t + step.
	 */
	if (db_prep(s, &near, "SELECT start, end, t0, t1 FROM windows"
	    " WHERE t0 < ?1 ORDER BY t0 DESC LIMIT 1", 0) < 0 ||
	    db_prep(s, &ins, "INSERT INTO windows(start, end, t0, t1, status,"
	    " updated) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)"
	    " ON CONFLICT (start) DO NOTHING", 0) < 0)
		goto out;
	for (t = from; t < to; t += step) {
		if (db_bindi(s, near, 1, t + step) < 0 ||
		    (k = db_step_row(s, near)) < 0)
			goto out;
		if (k == 1 && sqlite3_column_int64(near, 3) > t &&
		    (sqlite3_column_int64(near, 2) != t ||
		    sqlite3_column_int64(near, 3) != t + step)) {
			state_fmt_time(a, sizeof a, t, dates);
			state_fmt_time(b, sizeof b, t + step, dates);
			rd_seterr(RD_EXIT_REFUSED, "windows plan: the window "
			    "%s..%s overlaps the planned window %s..%s; plan with "
			    "the step it was planned with", a, b,
			    db_col(near, 0, NULL), db_col(near, 1, NULL));
			(void)sqlite3_reset(near);
			goto out;
		}
		if (k == 1)
			(void)sqlite3_reset(near);
		state_fmt_time(a, sizeof a, t, dates);
		state_fmt_time(b, sizeof b, t + step, dates);
		if (db_binds(s, ins, 1, a) < 0 || db_binds(s, ins, 2, b) < 0 ||
		    db_bindi(s, ins, 3, t) < 0 || db_bindi(s, ins, 4, t + step) < 0 ||
		    db_binds(s, ins, 5, now) < 0 || db_step_done(s, ins) < 0)
			goto out;
		*added += (unsigned long)sqlite3_changes(s->db);
	}
	ret = db_commit(s);
out:
	db_finalize(near);
	db_finalize(ins);
	if (ret < 0)
		db_rollback(s);
	return ret;
}

int
state_windows_each(struct state *s, int pending_only,
    int (*fn)(void *ctx, const struct state_window *w), void *ctx)
{
	sqlite3_stmt *st;
	struct state_window w;
	int k, ret = 0;

	if (db_prep(s, &st, pending_only ?
	    "SELECT start, end, status, reason, updated, t0, t1 FROM windows"
	    " WHERE status <> 'done' ORDER BY t0" :
	    "SELECT start, end, status, reason, updated, t0, t1 FROM windows"
	    " ORDER BY t0", 0) < 0)
		return -1;
	while ((k = db_step_row(s, st)) == 1) {
		w.start = db_col(st, 0, NULL);
		w.end = db_col(st, 1, NULL);
		w.status = db_col(st, 2, NULL);
		w.reason = db_col(st, 3, NULL);
		w.updated = db_col(st, 4, NULL);
		w.t0 = sqlite3_column_int64(st, 5);
		w.t1 = sqlite3_column_int64(st, 6);
		if (!w.start || !w.end || !w.status || !w.updated) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: windows: a column is NULL",
			    s->path);
			k = -1;
			break;
		}
		if ((ret = fn(ctx, &w)) < 0)
			break;
	}
	db_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

int
state_window_mark(struct state *s, const char *start, int done,
    const char *reason)
{
	sqlite3_stmt *st;
	char now[32];
	int r = -1;

	state_now(now, sizeof now);
	if (db_begin(s) < 0)
		return -1;
	if (db_prep(s, &st, "UPDATE windows SET status = ?2, reason = ?3,"
	    " updated = ?4 WHERE start = ?1", 0) < 0)
		goto out;
	if (db_binds(s, st, 1, start) == 0 &&
	    db_binds(s, st, 2, done ? "done" : "failed") == 0 &&
	    db_binds(s, st, 3, done ? NULL : reason) == 0 &&
	    db_binds(s, st, 4, now) == 0 && db_step_done(s, st) == 0) {
		if (sqlite3_changes(s->db) == 0)
			rd_seterr(RD_EXIT_USAGE, "no planned window starts at "
			    "\"%s\"; see: %s windows pending",
			    rd_quote(start, strlen(start)), s->fixcmd);
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
state_windows_reset(struct state *s, long long from, long long to,
    unsigned long *n)
{
	sqlite3_stmt *st;
	char now[32];
	int r = -1;

	*n = 0;
	state_now(now, sizeof now);
	if (db_begin(s) < 0)
		return -1;
	if (db_prep(s, &st, "UPDATE windows SET status = 'pending',"
	    " reason = NULL, updated = ?3 WHERE t0 < ?2 AND t1 > ?1", 0) < 0)
		goto out;
	if (db_bindi(s, st, 1, from) == 0 && db_bindi(s, st, 2, to) == 0 &&
	    db_binds(s, st, 3, now) == 0 && db_step_done(s, st) == 0) {
		*n = (unsigned long)sqlite3_changes(s->db);
		if (*n == 0)
			rd_seterr(RD_EXIT_USAGE, "windows reset: no planned "
			    "window in the range; see: %s windows pending",
			    s->fixcmd);
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

struct covctx {
	struct state_coverage *c;
	int (*gapfn)(void *ctx, const struct state_gap *g);
	void *ctx;
	long long total, done;
	int days, hours;
	struct state_gap gap;
	char gstart[64], gend[64];
	int ingap;
};

static int
gap_flush(struct covctx *cc)
{
	if (!cc->ingap)
		return 0;
	cc->ingap = 0;
	cc->gap.start = cc->gstart;
	cc->gap.end = cc->gend;
	return cc->gapfn ? cc->gapfn(cc->ctx, &cc->gap) : 0;
}

static int
cov_window(void *ctx, const struct state_window *w)
{
	struct covctx *cc = ctx;
	long long len = w->t1 - w->t0;
	int done = strcmp(w->status, "done") == 0;

	cc->c->windows++;
	cc->total += len;
	cc->days &= len % 86400 == 0;
	cc->hours &= len % 3600 == 0;
	if (done) {
		cc->c->windows_done++;
		cc->done += len;
		return gap_flush(cc);
	}
	if (cc->ingap && cc->gap.t1 != w->t0 && gap_flush(cc) < 0)
		return -1;
	if (!cc->ingap) {
		cc->ingap = 1;
		cc->gap.t0 = w->t0;
		cc->gap.windows = 0;
		snprintf(cc->gstart, sizeof cc->gstart, "%s", w->start);
	}
	cc->gap.t1 = w->t1;
	cc->gap.windows++;
	snprintf(cc->gend, sizeof cc->gend, "%s", w->end);
	return 0;
}

int
state_coverage(struct state *s, struct state_coverage *c,
    int (*gapfn)(void *ctx, const struct state_gap *g), void *ctx)
{
	struct covctx cc;

	memset(c, 0, sizeof *c);
	memset(&cc, 0, sizeof cc);
	cc.c = c;
	cc.gapfn = gapfn;
	cc.ctx = ctx;
	cc.days = cc.hours = 1;
	if (state_windows_each(s, 0, cov_window, &cc) < 0 || gap_flush(&cc) < 0)
		return -1;
	c->unitsec = cc.days ? 86400 : cc.hours ? 3600 : 1;
	c->unit = cc.days ? "days" : cc.hours ? "hours" : "seconds";
	c->total = cc.total / c->unitsec;
	c->done = cc.done / c->unitsec;
	return 0;
}
