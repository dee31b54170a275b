/* state_lock.c - run state: the run lock and the preflight. */
#include "state.h"

#include <stdlib.h>
#include <string.h>

#include "state_int.h"

static void
lock_refusal(struct state *s, const struct state_owner *o, struct sb *msg)
{
	sb_addf(msg, "refused: another run holds the lock of scope \"%s\"\n",
	    rd_quote(o->scope, strlen(o->scope)));
	sb_addf(msg, "  owner: pid %ld on host \"%s\", ", o->pid,
	    rd_quote(o->host, strlen(o->host)));
	sb_addf(msg, "started %s, recdelta %s%s\n", o->started, o->version,
	    o->here ? "" : " (another host: cannot tell whether it is alive)");
	sb_addf(msg, "  wait for it, or if it is gone: %s unlock --force\n",
	    s->fixcmd);
}

static void
orphan_notice(const struct state_owner *o, const char *what, struct sb *out)
{
	sb_addf(out, "%s the orphan lock of pid %ld on host \"%s\" (started "
	    "%s): its process is gone\n", what, o->pid,
	    rd_quote(o->host, strlen(o->host)), o->started);
}

void
state_owner_release(struct state_owner *o)
{
	free(o->host);
	free(o->started);
	free(o->version);
	free(o->scope);
	memset(o, 0, sizeof *o);
}

int
state_lock_owner(struct state *s, struct state_owner *o)
{
	sqlite3_stmt *st;
	int r;

	memset(o, 0, sizeof *o);
	if (db_prep(s, &st, "SELECT pid, host, started, version, scope FROM lock"
	    " WHERE id = 1", 0) < 0)
		return -1;
	if ((r = db_step_row(s, st)) == 1) {
		o->pid = (long)sqlite3_column_int64(st, 0);
		o->host = db_coldup(st, 1);
		o->started = db_coldup(st, 2);
		o->version = db_coldup(st, 3);
		o->scope = db_coldup(st, 4);
		if (!o->host || !o->started || !o->version || !o->scope) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: lock: a column is NULL",
			    s->path);
			r = -1;
			state_owner_release(o);
		} else {
			o->here = strcmp(o->host, s->host) == 0;
			o->alive = o->here ? state_pid_alive(o->pid) : 1;
		}
	}
	db_finalize(st);
	return r;
}

int
state_check(struct state *s, const char *scope, long pid, struct sb *msg,
    struct sb *notice)
{
	struct state_owner o;
	char *own = NULL;
	long n;
	int refused = 0, r;

	if (s->newer) {
		state_newer_msg(s, msg);
		return 1;
	}
	if (state_scope(s, &own) < 0)
		return -1;
	if (scope && own && strcmp(scope, own) != 0) {
		state_scope_refusal(s, own, scope, "preflight", msg);
		free(own);
		return 1;
	}
	if (!scope)
		scope = own;
	if ((r = state_lock_owner(s, &o)) < 0)
		goto fail;
	if (r == 1 && !(o.here && o.pid == pid)) {
		if (o.alive) {
			lock_refusal(s, &o, msg);
			refused = 1;
		} else {
			orphan_notice(&o, "found", notice);
		}
	}
	if (r == 1)
		state_owner_release(&o);
	if ((n = state_outbox_count(s)) < 0)
		goto fail;
	if (n > 0) {
		sb_addf(msg, "refused: the outbox holds %ld undelivered change%s "
		    "for scope \"%s\"\n", n, n == 1 ? "" : "s",
		    scope ? rd_quote(scope, strlen(scope)) : "");
		sb_addf(msg, "  replay %s first: %s outbox | recdelta-push "
		    "--delete-orphans TARGET | %s record --scope ",
		    n == 1 ? "it" : "them",
		    s->fixcmd, s->fixcmd);
		state_shquote(msg, scope ? scope : "SCOPE");
		sb_addc(msg, '\n');
		refused = 1;
	}
	free(own);
	return refused;
fail:
	free(own);
	return -1;
}

/* The lock */

static int
insert_lock(struct state *s, const char *scope, long pid)
{
	sqlite3_stmt *st;
	char now[32];
	int r = -1;

	state_now(now, sizeof now);
	if (db_prep(s, &st, "INSERT INTO lock(id, pid, host, started, version,"
	    " scope) VALUES (1, ?1, ?2, ?3, ?4, ?5)", 0) < 0)
		return -1;
	if (db_bindi(s, st, 1, pid) == 0 && db_binds(s, st, 2, s->host) == 0 &&
	    db_binds(s, st, 3, now) == 0 && db_binds(s, st, 4, RD_VERSION) == 0 &&
	    db_binds(s, st, 5, scope) == 0)
		r = db_step_done(s, st);
	db_finalize(st);
	return r;
}

int
state_lock(struct state *s, const char *scope, long pid, struct sb *msg,
    struct sb *notice)
{
	struct state_owner o;
	char *own = NULL;
	int r, ret = -1;

	memset(&o, 0, sizeof o);
	if (db_begin(s) < 0)
		return -1;
	if (state_scope(s, &own) < 0)
		goto out;
	if (own && strcmp(own, scope) != 0) {
		state_scope_refusal(s, own, scope, "lock", msg);
		ret = 1;
		goto out;
	}
	if (!own && state_set_scope(s, scope) < 0)
		goto out;
	if ((r = state_lock_owner(s, &o)) < 0)
		goto out;
	if (r == 1) {
		if (o.here && o.pid == pid) {
			ret = db_commit(s);
			goto out;
		}
		if (o.alive) {
			lock_refusal(s, &o, msg);
			ret = 1;
			goto out;
		}
		if (db_exec(s, "DELETE FROM lock") < 0)
			goto out;
		orphan_notice(&o, "reclaimed", notice);
	}
	if (insert_lock(s, scope, pid) < 0 || db_commit(s) < 0)
		goto out;
	ret = 0;
out:
	if (ret != 0)
		db_rollback(s);
	state_owner_release(&o);
	free(own);
	return ret;
}

int
state_unlock(struct state *s, long pid, int force, struct sb *msg,
    struct sb *notice)
{
	struct state_owner o;
	int r, ret = -1;

	memset(&o, 0, sizeof o);
	if (db_begin(s) < 0)
		return -1;
	if ((r = state_lock_owner(s, &o)) < 0)
		goto out;
	if (r == 1 && !force && !(o.here && o.pid == pid) && o.alive) {
		lock_refusal(s, &o, msg);
		ret = 1;
		goto out;
	}
	if (r == 1 && db_exec(s, "DELETE FROM lock") < 0)
		goto out;
	if (db_commit(s) < 0)
		goto out;
	if (r == 1 && !force && !(o.here && o.pid == pid))
		orphan_notice(&o, "released", notice);
	ret = 0;
out:
	if (ret != 0)
		db_rollback(s);
	state_owner_release(&o);
	return ret;
}
