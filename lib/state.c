/* state.c - run state in SQLite: schema, recording, queries, preflight. */
#include "state.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "record.h"

#define STATE_APP_ID 0x5244454c	/* "RDEL", in PRAGMA application_id */
#define BUSY_MS 10000

const char *const state_status_names[ST_NSTATUS] = {
	"ok", "skipped", "conflict", "deferred", "failed", "planned"
};

static const char *const op_names[] = { "create", "update", "delete" };
enum { OP_CREATE, OP_UPDATE, OP_DELETE, OP_N };

/*
 * migrations[i] takes the schema from version i to i + 1.  Each runs inside
 * the transaction that checked the version, so it is applied whole or not at
 * all; it must never be edited once released, only followed by another.
 */
static const char *const migrations[STATE_SCHEMA] = {
	"CREATE TABLE meta(\n"
	"  key TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE base(\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  rev TEXT,\n"
	"  hash TEXT NOT NULL,\n"
	"  fields TEXT NOT NULL,\n"
	"  PRIMARY KEY (type, key)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE cursors(\n"
	"  name TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL,\n"
	"  updated TEXT NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE windows(\n"
	"  start TEXT PRIMARY KEY,\n"
	"  end TEXT NOT NULL,\n"
	"  t0 INTEGER NOT NULL,\n"
	"  t1 INTEGER NOT NULL,\n"
	"  status TEXT NOT NULL DEFAULT 'pending'\n"
	"    CHECK (status IN ('pending', 'done', 'failed')),\n"
	"  reason TEXT,\n"
	"  updated TEXT NOT NULL\n"
	");\n"
	"CREATE INDEX windows_t0 ON windows(t0);\n"
	"CREATE TABLE runs(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  scope TEXT NOT NULL,\n"
	"  flow TEXT,\n"
	"  pid INTEGER,\n"
	"  host TEXT,\n"
	"  started TEXT NOT NULL,\n"
	"  ended TEXT,\n"
	"  status TEXT NOT NULL\n"
	"    CHECK (status IN ('running', 'done', 'partial', 'failed')),\n"
	"  ok INTEGER NOT NULL DEFAULT 0,\n"
	"  skipped INTEGER NOT NULL DEFAULT 0,\n"
	"  conflict INTEGER NOT NULL DEFAULT 0,\n"
	"  deferred INTEGER NOT NULL DEFAULT 0,\n"
	"  failed INTEGER NOT NULL DEFAULT 0,\n"
	"  planned INTEGER NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE TABLE changes(\n"
	"  run INTEGER NOT NULL,\n"
	"  seq INTEGER NOT NULL,\n"
	"  op TEXT NOT NULL,\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  status TEXT NOT NULL,\n"
	"  rev TEXT,\n"
	"  changed TEXT,\n"
	"  error_code TEXT,\n"
	"  error_message TEXT,\n"
	"  PRIMARY KEY (run, seq)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE outbox(\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  op TEXT NOT NULL,\n"
	"  line TEXT NOT NULL,\n"
	"  added TEXT NOT NULL,\n"
	"  UNIQUE (type, key)\n"
	");\n"
	"CREATE TABLE lock(\n"
	"  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
	"  pid INTEGER NOT NULL,\n"
	"  host TEXT NOT NULL,\n"
	"  started TEXT NOT NULL,\n"
	"  version TEXT NOT NULL,\n"
	"  scope TEXT NOT NULL\n"
	");\n"
};

/* The statements of recording, prepared once and reused for every line. */
enum {
	R_UPSERT, R_SETREV, R_DELBASE, R_GETFIELDS, R_LOG, R_OUTPUT, R_OUTDEL,
	R_CURSOR, R_RUNOPEN, R_RUNUPD, R_NSTMT
};

static const char *const rec_sql[R_NSTMT] = {
	"INSERT INTO base(type, key, rev, hash, fields) VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT (type, key) DO UPDATE SET rev = excluded.rev,"
	" hash = excluded.hash, fields = excluded.fields",
	"UPDATE base SET rev = ?3 WHERE type = ?1 AND key = ?2",
	"DELETE FROM base WHERE type = ?1 AND key = ?2",
	"SELECT fields FROM base WHERE type = ?1 AND key = ?2",
	"INSERT INTO changes(run, seq, op, type, key, status, rev, changed,"
	" error_code, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
	" ?10)",
	"INSERT OR REPLACE INTO outbox(type, key, op, line, added)"
	" VALUES (?1, ?2, ?3, ?4, ?5)",
	"DELETE FROM outbox WHERE type = ?1 AND key = ?2",
	"INSERT INTO cursors(name, value, updated) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
	" updated = excluded.updated",
	"INSERT INTO runs(id, scope, flow, pid, host, started, status)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')"
	" ON CONFLICT (id) DO UPDATE SET status = 'running', ended = NULL,"
	" pid = excluded.pid, host = excluded.host,"
	" flow = coalesce(excluded.flow, flow)",
	"UPDATE runs SET ok = ?1, skipped = ?2, conflict = ?3, deferred = ?4,"
	" failed = ?5, planned = ?6, ended = ?7, status = ?8 WHERE id = ?9",
};

struct recorder {
	char *scope, *flow;
	long run, seq, savedseq;
	int intx;		/* a batch transaction is open */
	int committed;		/* a batch committed: the run and scope exist */
	int outbox;		/* the outbox may hold entries */
	unsigned long counts[ST_NSTATUS], saved[ST_NSTATUS];
	char now[32];
	sqlite3_stmt *st[R_NSTMT];
	struct sb canon, fields, changed, line;
	struct arena a;
};

struct state {
	sqlite3 *db;
	char *path;
	char *fixcmd;		/* how a fix names this program and state */
	int exists, version, newer;
	char host[256];
	struct recorder *rec;
};

/* Helpers */

static int
dberr(struct state *s)
{
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path, sqlite3_errmsg(s->db));
	return -1;
}

static int
exec(struct state *s, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path,
		    err ? err : sqlite3_errmsg(s->db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int
prep(struct state *s, sqlite3_stmt **st, const char *sql, int persistent)
{
	if (sqlite3_prepare_v3(s->db, sql, -1,
	    persistent ? SQLITE_PREPARE_PERSISTENT : 0, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return dberr(s);
	}
	return 0;
}

/* Bind text of length n, or NULL when p is NULL; borrowed until the step. */
static int
bindt(struct state *s, sqlite3_stmt *st, int i, const char *p, size_t n)
{
	int rc;

	if (!p)
		rc = sqlite3_bind_null(st, i);
	else if (n > INT_MAX)
		rc = SQLITE_TOOBIG;
	else
		rc = sqlite3_bind_text(st, i, p, (int)n, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path, sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

static int
binds(struct state *s, sqlite3_stmt *st, int i, const char *p)
{
	return bindt(s, st, i, p, p ? strlen(p) : 0);
}

static int
bindi(struct state *s, sqlite3_stmt *st, int i, long long v)
{
	int rc = sqlite3_bind_int64(st, i, v);

	if (rc != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path, sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

/* Step a statement that returns no rows, and reset it. */
static int
step_done(struct state *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		dberr(s);
		(void)sqlite3_reset(st);
		return -1;
	}
	(void)sqlite3_reset(st);	/* repeats the step's code: checked above */
	return 0;
}

/* Step once: 1 for a row, 0 at the end (statement reset), -1 on error. */
static int
step_row(struct state *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		(void)sqlite3_reset(st);
		return 0;
	}
	dberr(s);
	(void)sqlite3_reset(st);
	return -1;
}

static const char *
col(sqlite3_stmt *st, int i, size_t *n)
{
	const char *p = (const char *)sqlite3_column_text(st, i);

	if (n)
		*n = p ? (size_t)sqlite3_column_bytes(st, i) : 0;
	return p;
}

static char *
coldup(sqlite3_stmt *st, int i)
{
	size_t n;
	const char *p = col(st, i, &n);

	return p ? xmemdup(p, n) : NULL;
}

static int
pragma_int(struct state *s, const char *sql, int *out)
{
	sqlite3_stmt *st;
	int r;

	if (prep(s, &st, sql, 0) < 0)
		return -1;
	r = step_row(s, st);
	if (r == 1)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (r == 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s: no result", s->path, sql);
		return -1;
	}
	return r < 0 ? -1 : 0;
}

static int
tx_begin(struct state *s)
{
	return exec(s, "BEGIN IMMEDIATE");
}

static int
tx_commit(struct state *s)
{
	return exec(s, "COMMIT");
}

/* Roll back without touching a pending error message. */
static void
tx_rollback(struct state *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

void
state_fmt_time(char *buf, size_t size, long long t, int dates)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, size,
	    dates ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%lld", t);
}

void
state_now(char *buf, size_t size)
{
	state_fmt_time(buf, size, (long long)time(NULL), 0);
}

/* Append s quoted for a shell command line when it needs quoting. */
static void
shquote(struct sb *out, const char *s)
{
	const char *p;

	if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_./:@%+=,-") == strlen(s)) {
		sb_adds(out, s);
		return;
	}
	sb_addc(out, '\'');
	for (p = s; *p; p++) {
		if (*p == '\'')
			sb_adds(out, "'\\''");
		else
			sb_addc(out, *p);
	}
	sb_addc(out, '\'');
}

static int
pid_alive(long pid)
{
	if (pid <= 0 || pid > INT_MAX)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Opening and the schema */

static void
newer_msg(struct state *s, struct sb *out)
{
	sb_addf(out, "%s: schema version %d is newer than this build (%d); "
	    "upgrade recdelta\n", s->path, s->version, STATE_SCHEMA);
}

static int
has_tables(struct state *s, int *yes)
{
	return pragma_int(s, "SELECT count(*) FROM sqlite_schema"
	    " WHERE type = 'table'", yes);
}

static int
not_ours(struct state *s)
{
	rd_seterr(RD_EXIT_REFUSED, "%s: not a recdelta state database "
	    "(it holds other tables); choose another with --state", s->path);
	return -1;
}

static int
migrate(struct state *s)
{
	char sql[64];
	int v, tables, i;

	if (tx_begin(s) < 0)
		return -1;
	if (pragma_int(s, "PRAGMA user_version", &v) < 0)
		goto fail;
	if (v > STATE_SCHEMA) {
		struct sb m;

		s->version = v;
		s->newer = 1;
		tx_rollback(s);
		sb_init(&m, 128);
		newer_msg(s, &m);
		m.buf[--m.len] = '\0';
		rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
		sb_release(&m);
		return -1;
	}
	if (v == 0) {
		if (has_tables(s, &tables) < 0)
			goto fail;
		if (tables) {
			tx_rollback(s);
			return not_ours(s);
		}
	}
	for (i = v; i < STATE_SCHEMA; i++)
		if (exec(s, migrations[i]) < 0)
			goto fail;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STATE_SCHEMA);
	if (exec(s, sql) < 0)
		goto fail;
	snprintf(sql, sizeof sql, "PRAGMA application_id = %d", STATE_APP_ID);
	if (exec(s, sql) < 0 || tx_commit(s) < 0)
		goto fail;
	s->version = STATE_SCHEMA;
	return 0;
fail:
	tx_rollback(s);
	return -1;
}

/* Make the directory that will hold path, one level, when it is missing. */
static int
mkparent(const char *path)
{
	const char *slash = strrchr(path, '/');
	struct stat st;
	char *dir;
	int ret = 0;

	if (!slash || slash == path)
		return 0;
	dir = xmemdup(path, (size_t)(slash - path));
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT || mkdir(dir, 0777) < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: cannot create the state "
			    "directory: %s", dir, strerror(errno));
			ret = -1;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: cannot create the state "
		    "database: %s is not a directory", path, dir);
		ret = -1;
	}
	free(dir);
	return ret;
}

static int
open_db(struct state *s, int flags)
{
	int rc, appid, tables;
	const char *mode;
	sqlite3_stmt *st;

	if (!s->exists && !(flags & STATE_WRITE))
		rc = sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE,
		    NULL);
	else
		rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
		    (flags & STATE_WRITE ? SQLITE_OPEN_CREATE : 0), NULL);
	if (rc != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: cannot open the state database: "
		    "%s", s->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		return -1;
	}
	if ((rc = sqlite3_extended_result_codes(s->db, 1)) != SQLITE_OK ||
	    (rc = sqlite3_busy_timeout(s->db, BUSY_MS)) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path, sqlite3_errstr(rc));
		return -1;
	}
	/* Reads only, until the version is known to be one this build knows. */
	if (pragma_int(s, "PRAGMA application_id", &appid) < 0 ||
	    pragma_int(s, "PRAGMA user_version", &s->version) < 0) {
		rd_prefixerr("cannot open the state database: ");
		return -1;
	}
	if (appid != 0 && appid != STATE_APP_ID)
		return not_ours(s);
	if (s->version > STATE_SCHEMA) {
		struct sb m;

		s->newer = 1;
		if (flags & STATE_PROBE)
			return 0;
		sb_init(&m, 128);
		newer_msg(s, &m);
		m.buf[--m.len] = '\0';
		rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
		sb_release(&m);
		return -1;
	}
	if (s->version == 0) {
		if (has_tables(s, &tables) < 0)
			return -1;
		if (tables)
			return not_ours(s);
	}
	if (s->exists || (flags & STATE_WRITE)) {
		if (prep(s, &st, "PRAGMA journal_mode", 0) < 0)
			return -1;
		rc = step_row(s, st);
		mode = rc == 1 ? col(st, 0, NULL) : NULL;
		rc = rc < 0 ? -1 : mode && strcmp(mode, "wal") == 0;
		sqlite3_finalize(st);
		if (rc < 0)
			return -1;
		if (!rc && exec(s, "PRAGMA journal_mode = WAL") < 0)
			return -1;
	}
	if (exec(s, "PRAGMA synchronous = NORMAL") < 0)
		return -1;
	if (s->version < STATE_SCHEMA && migrate(s) < 0)
		return -1;
	return 0;
}

int
state_open(struct state **sp, const char *path, int flags)
{
	struct state *s = xcalloc(1, sizeof *s);
	const char *env = getenv("RECDELTA_STATE");
	struct stat st;
	struct sb fix;

	*sp = NULL;
	sb_init(&fix, 64);
	sb_adds(&fix, "recdelta-checkpoint");
	if (path) {
		sb_adds(&fix, " --state ");
		shquote(&fix, path);
	} else {
		path = env && *env ? env : STATE_DEFAULT_PATH;
	}
	s->fixcmd = fix.buf;
	s->path = xstrdup(path);
	if (gethostname(s->host, sizeof s->host - 1) < 0)
		strcpy(s->host, "localhost");
	s->host[sizeof s->host - 1] = '\0';

	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: cannot open the state "
			    "database: it is a directory", path);
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: cannot open the state "
			    "database: not a regular file", path);
			goto fail;
		}
		s->exists = 1;
	} else if (errno != ENOENT && errno != ENOTDIR) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: cannot open the state database: "
		    "%s", path, strerror(errno));
		goto fail;
	}
	if (!s->exists && (flags & STATE_WRITE) && mkparent(path) < 0)
		goto fail;
	if (open_db(s, flags) < 0)
		goto fail;
	*sp = s;
	return 0;
fail:
	state_close(s);
	return -1;
}

static void recorder_free(struct recorder *r);

void
state_close(struct state *s)
{
	if (!s)
		return;
	if (s->rec) {
		tx_rollback(s);
		recorder_free(s->rec);
	}
	/* Statements are all finalized, so close cannot be refused. */
	if (s->db)
		(void)sqlite3_close(s->db);
	free(s->path);
	free(s->fixcmd);
	free(s);
}

const char *
state_path(const struct state *s)
{
	return s->path;
}

int
state_exists(const struct state *s)
{
	return s->exists;
}

int
state_version(const struct state *s)
{
	return s->version;
}

int
state_scope(struct state *s, char **scope)
{
	sqlite3_stmt *st;
	int r;

	*scope = NULL;
	if (prep(s, &st, "SELECT value FROM meta WHERE key = 'scope'", 0) < 0)
		return -1;
	if ((r = step_row(s, st)) == 1)
		*scope = coldup(st, 0);
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

static int
set_scope(struct state *s, const char *scope)
{
	sqlite3_stmt *st;
	int r;

	if (prep(s, &st, "INSERT INTO meta(key, value) VALUES ('scope', ?1)",
	    0) < 0)
		return -1;
	r = binds(s, st, 1, scope) < 0 ? -1 : step_done(s, st);
	sqlite3_finalize(st);
	return r;
}

/* Refusals: each names what was found and the one command that fixes it. */

static void
scope_refusal(struct state *s, const char *own, const char *scope,
    const char *cmd, struct sb *msg)
{
	sb_addf(msg, "refused: the state %s belongs to scope \"%s\", ", s->path,
	    rd_quote(own, strlen(own)));
	sb_addf(msg, "not \"%s\"\n", rd_quote(scope, strlen(scope)));
	sb_adds(msg, "  give each scope a state of its own: "
	    "recdelta-checkpoint --state FILE ");
	sb_adds(msg, cmd);
	sb_adds(msg, " --scope ");
	shquote(msg, scope);
	sb_addc(msg, '\n');
}

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
	if (prep(s, &st, "SELECT pid, host, started, version, scope FROM lock"
	    " WHERE id = 1", 0) < 0)
		return -1;
	if ((r = step_row(s, st)) == 1) {
		o->pid = (long)sqlite3_column_int64(st, 0);
		o->host = coldup(st, 1);
		o->started = coldup(st, 2);
		o->version = coldup(st, 3);
		o->scope = coldup(st, 4);
		if (!o->host || !o->started || !o->version || !o->scope) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: lock: a column is NULL",
			    s->path);
			r = -1;
			state_owner_release(o);
		} else {
			o->here = strcmp(o->host, s->host) == 0;
			o->alive = o->here ? pid_alive(o->pid) : 1;
		}
	}
	sqlite3_finalize(st);
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
		newer_msg(s, msg);
		return 1;
	}
	if (state_scope(s, &own) < 0)
		return -1;
	if (scope && own && strcmp(scope, own) != 0) {
		scope_refusal(s, own, scope, "preflight", msg);
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
		sb_addf(msg, "  replay them first: %s outbox | recdelta-push "
		    "TARGET | %s record --scope ", s->fixcmd, s->fixcmd);
		shquote(msg, scope ? scope : "SCOPE");
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
	if (prep(s, &st, "INSERT INTO lock(id, pid, host, started, version,"
	    " scope) VALUES (1, ?1, ?2, ?3, ?4, ?5)", 0) < 0)
		return -1;
	if (bindi(s, st, 1, pid) == 0 && binds(s, st, 2, s->host) == 0 &&
	    binds(s, st, 3, now) == 0 && binds(s, st, 4, RD_VERSION) == 0 &&
	    binds(s, st, 5, scope) == 0)
		r = step_done(s, st);
	sqlite3_finalize(st);
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
	if (tx_begin(s) < 0)
		return -1;
	if (state_scope(s, &own) < 0)
		goto out;
	if (own && strcmp(own, scope) != 0) {
		scope_refusal(s, own, scope, "lock", msg);
		ret = 1;
		goto out;
	}
	if (!own && set_scope(s, scope) < 0)
		goto out;
	if ((r = state_lock_owner(s, &o)) < 0)
		goto out;
	if (r == 1) {
		if (o.here && o.pid == pid) {
			ret = tx_commit(s);
			goto out;
		}
		if (o.alive) {
			lock_refusal(s, &o, msg);
			ret = 1;
			goto out;
		}
		if (exec(s, "DELETE FROM lock") < 0)
			goto out;
		orphan_notice(&o, "reclaimed", notice);
	}
	if (insert_lock(s, scope, pid) < 0 || tx_commit(s) < 0)
		goto out;
	ret = 0;
out:
	if (ret != 0)
		tx_rollback(s);
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
	if (tx_begin(s) < 0)
		return -1;
	if ((r = state_lock_owner(s, &o)) < 0)
		goto out;
	if (r == 1 && !force && !(o.here && o.pid == pid) && o.alive) {
		lock_refusal(s, &o, msg);
		ret = 1;
		goto out;
	}
	if (r == 1 && exec(s, "DELETE FROM lock") < 0)
		goto out;
	if (tx_commit(s) < 0)
		goto out;
	if (r == 1 && !force && !(o.here && o.pid == pid))
		orphan_notice(&o, "released", notice);
	ret = 0;
out:
	if (ret != 0)
		tx_rollback(s);
	state_owner_release(&o);
	return ret;
}

/* Recording */

static void
recorder_free(struct recorder *r)
{
	int i;

	for (i = 0; i < R_NSTMT; i++)
		sqlite3_finalize(r->st[i]);
	free(r->scope);
	free(r->flow);
	sb_release(&r->canon);
	sb_release(&r->fields);
	sb_release(&r->changed);
	sb_release(&r->line);
	arena_release(&r->a);
	free(r);
}

long
state_record_run(const struct state *s)
{
	return s->rec ? s->rec->run : 0;
}

/* Load the counts and the last change number of a run to continue. */
static int
load_run(struct state *s, struct recorder *r)
{
	sqlite3_stmt *st;
	int k, i;

	if (prep(s, &st, "SELECT ok, skipped, conflict, deferred, failed,"
	    " planned, (SELECT max(seq) FROM changes WHERE run = ?1)"
	    " FROM runs WHERE id = ?1", 0) < 0)
		return -1;
	if (bindi(s, st, 1, r->run) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	if ((k = step_row(s, st)) == 1) {
		for (i = 0; i < ST_NSTATUS; i++)
			r->counts[i] = (unsigned long)sqlite3_column_int64(st, i);
		r->seq = (long)sqlite3_column_int64(st, ST_NSTATUS);
	}
	sqlite3_finalize(st);
	return k < 0 ? -1 : 0;
}

int
state_record_start(struct state *s, const char *scope, long run,
    const char *flow)
{
	struct recorder *r = xcalloc(1, sizeof *r);
	char *own = NULL;
	long n;
	int i;

	r->scope = xstrdup(scope);
	r->flow = flow ? xstrdup(flow) : NULL;
	r->run = run;
	sb_init(&r->canon, 4096);
	sb_init(&r->fields, 4096);
	sb_init(&r->changed, 256);
	sb_init(&r->line, 4096);
	arena_init(&r->a);
	s->rec = r;
	if (state_scope(s, &own) < 0)
		return -1;
	if (own && strcmp(own, scope) != 0) {
		struct sb m;

		sb_init(&m, 256);
		scope_refusal(s, own, scope, "record", &m);
		m.buf[--m.len] = '\0';
		rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
		sb_release(&m);
		free(own);
		return -1;
	}
	free(own);
	if (run && load_run(s, r) < 0)
		return -1;
	if ((n = state_outbox_count(s)) < 0)
		return -1;
	r->outbox = n > 0;
	for (i = 0; i < R_NSTMT; i++)
		if (prep(s, &r->st[i], rec_sql[i], 1) < 0)
			return -1;
	memcpy(r->saved, r->counts, sizeof r->saved);
	r->savedseq = r->seq;
	return 0;
}

/* Begin the batch's transaction; the first also claims the scope and run. */
static int
batch_begin(struct state *s, struct recorder *r)
{
	sqlite3_stmt *st = r->st[R_RUNOPEN];
	char *own = NULL;

	if (r->intx)
		return 0;
	if (tx_begin(s) < 0)
		return -1;
	r->intx = 1;
	state_now(r->now, sizeof r->now);
	if (r->committed)
		return 0;
	if (state_scope(s, &own) < 0)
		return -1;
	if (own && strcmp(own, r->scope) != 0) {
		struct sb m;

		sb_init(&m, 256);
		scope_refusal(s, own, r->scope, "record", &m);
		m.buf[--m.len] = '\0';
		rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
		sb_release(&m);
		free(own);
		return -1;
	}
	if (!own && set_scope(s, r->scope) < 0)
		return -1;
	free(own);
	if ((r->run ? bindi(s, st, 1, r->run) : bindt(s, st, 1, NULL, 0)) < 0 ||
	    binds(s, st, 2, r->scope) < 0 || binds(s, st, 3, r->flow) < 0 ||
	    bindi(s, st, 4, (long long)getpid()) < 0 ||
	    binds(s, st, 5, s->host) < 0 || binds(s, st, 6, r->now) < 0 ||
	    step_done(s, st) < 0)
		return -1;
	if (!r->run)
		r->run = (long)sqlite3_last_insert_rowid(s->db);
	return 0;
}

static int
batch_commit(struct state *s, struct recorder *r, int final)
{
	sqlite3_stmt *st = r->st[R_RUNUPD];
	const char *status = "running";
	int i;

	if (!r->intx && !final)
		return 0;
	if (batch_begin(s, r) < 0)
		return -1;
	if (final) {
		status = r->counts[ST_CONFLICT] || r->counts[ST_DEFERRED] ||
		    r->counts[ST_FAILED] ? "partial" : "done";
		state_now(r->now, sizeof r->now);
	}
	for (i = 0; i < ST_NSTATUS; i++)
		if (bindi(s, st, i + 1, (long long)r->counts[i]) < 0)
			return -1;
	if (binds(s, st, 7, final ? r->now : NULL) < 0 ||
	    binds(s, st, 8, status) < 0 || bindi(s, st, 9, r->run) < 0 ||
	    step_done(s, st) < 0 || tx_commit(s) < 0)
		return -1;
	r->intx = 0;
	r->committed = 1;
	memcpy(r->saved, r->counts, sizeof r->saved);
	r->savedseq = r->seq;
	return 0;
}

int
state_record_commit(struct state *s)
{
	return batch_commit(s, s->rec, 0);
}

int
state_record_finish(struct state *s)
{
	return batch_commit(s, s->rec, 1);
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
	tx_rollback(s);
	r->intx = 0;
	if (!r->committed)
		return;
	/* Quietly: the caller is about to report the error that led here. */
	st = r->st[R_RUNUPD];
	state_now(now, sizeof now);
	ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
	for (i = 0; ok && i < ST_NSTATUS; i++)
		ok = sqlite3_bind_int64(st, i + 1, (long long)r->saved[i]) ==
		    SQLITE_OK;
	ok = ok && sqlite3_bind_text(st, 7, now, -1, SQLITE_TRANSIENT) ==
	    SQLITE_OK && sqlite3_bind_text(st, 8, "failed", -1, SQLITE_STATIC) ==
	    SQLITE_OK && sqlite3_bind_int64(st, 9, r->run) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_DONE;
	(void)sqlite3_reset(st);
	ok = ok && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
	if (!ok)
		tx_rollback(s);
}

/* A string member: 0 and set (NULL when absent and not required), or -1. */
static int
member(const struct json *obj, const char *name, int required,
    const char **p, size_t *n)
{
	const struct json *v = json_get(obj, name);

	*p = NULL;
	*n = 0;
	if (!v) {
		if (!required)
			return 0;
		rd_seterr(RD_EXIT_DATA, "missing \"%s\"", name);
		return -1;
	}
	if (v->type != JSON_STRING) {
		rd_seterr(RD_EXIT_DATA, "\"%s\" is not a string", name);
		return -1;
	}
	if (required && v->len == 0) {
		rd_seterr(RD_EXIT_DATA, "empty \"%s\"", name);
		return -1;
	}
	*p = v->u.s;
	*n = v->len;
	return 0;
}

static int
lookup(const char *const *names, int n, const char *p, size_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(names[i], p, len) == 0)
			return i;
	return -1;
}

struct result {
	const char *op, *type, *key, *status, *rev, *code, *message;
	size_t oplen, typelen, keylen, statuslen, revlen, codelen, messagelen;
	int opi, sti;
	const struct json *fields, *changed;
};

static int
parse_result(const struct json *obj, struct result *res)
{
	const struct json *err;
	size_t i;

	memset(res, 0, sizeof *res);
	if (member(obj, "op", 1, &res->op, &res->oplen) < 0 ||
	    member(obj, "type", 1, &res->type, &res->typelen) < 0 ||
	    member(obj, "key", 1, &res->key, &res->keylen) < 0 ||
	    member(obj, "status", 1, &res->status, &res->statuslen) < 0 ||
	    member(obj, "rev", 0, &res->rev, &res->revlen) < 0)
		return -1;
	if ((res->opi = lookup(op_names, OP_N, res->op, res->oplen)) < 0) {
		rd_seterr(RD_EXIT_DATA, "unknown op \"%s\" (expected create, "
		    "update or delete)", rd_quote(res->op, res->oplen));
		return -1;
	}
	if ((res->sti = lookup(state_status_names, ST_NSTATUS, res->status,
	    res->statuslen)) < 0) {
		rd_seterr(RD_EXIT_DATA, "unknown status \"%s\" (expected ok, "
		    "skipped, conflict, deferred, failed or planned)",
		    rd_quote(res->status, res->statuslen));
		return -1;
	}
	res->fields = json_get(obj, "fields");
	if (res->fields && res->fields->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_DATA, "\"fields\" is not an object");
		return -1;
	}
	res->changed = json_get(obj, "changed");
	if (res->changed) {
		int bad = res->changed->type != JSON_ARRAY;

		for (i = 0; !bad && i < res->changed->len; i++)
			bad = res->changed->u.items[i].type != JSON_STRING;
		if (bad) {
			rd_seterr(RD_EXIT_DATA, "\"changed\" is not an array of "
			    "strings");
			return -1;
		}
	}
	if ((err = json_get(obj, "error"))) {
		if (err->type != JSON_OBJECT) {
			rd_seterr(RD_EXIT_DATA, "\"error\" is not an object");
			return -1;
		}
		if (member(err, "code", 0, &res->code, &res->codelen) < 0 ||
		    member(err, "message", 0, &res->message,
		    &res->messagelen) < 0) {
			rd_prefixerr("error: ");
			return -1;
		}
	}
	if (res->sti == ST_DEFERRED && res->opi != OP_DELETE && !res->fields) {
		rd_seterr(RD_EXIT_DATA, "deferred %s without \"fields\": it could "
		    "not be replayed", op_names[res->opi]);
		return -1;
	}
	return 0;
}

/*
 * The names of the fields an ok update changed, from the base's old fields,
 * into r->changed; left empty when the base has no old fields to compare.
 */
static int
diff_old(struct state *s, struct recorder *r, const struct result *res)
{
	sqlite3_stmt *st = r->st[R_GETFIELDS];
	const char *old;
	size_t n;
	struct json v;
	struct ruleview rv = { 0 };
	int k;

	if (bindt(s, st, 1, res->type, res->typelen) < 0 ||
	    bindt(s, st, 2, res->key, res->keylen) < 0 ||
	    (k = step_row(s, st)) < 0)
		return -1;
	if (k == 0)
		return 0;
	old = col(st, 0, &n);
	arena_reset(&r->a);
	if (old && json_parse(&r->a, old, n, &v, NULL) == 0 &&
	    v.type == JSON_OBJECT)
		record_compare(&rv, &v, res->fields, &r->changed);
	(void)sqlite3_reset(st);
	return 0;
}

static int
log_change(struct state *s, struct recorder *r, const struct result *res)
{
	sqlite3_stmt *st = r->st[R_LOG];

	r->seq++;
	return bindi(s, st, 1, r->run) < 0 || bindi(s, st, 2, r->seq) < 0 ||
	    binds(s, st, 3, op_names[res->opi]) < 0 ||
	    bindt(s, st, 4, res->type, res->typelen) < 0 ||
	    bindt(s, st, 5, res->key, res->keylen) < 0 ||
	    binds(s, st, 6, state_status_names[res->sti]) < 0 ||
	    bindt(s, st, 7, res->rev, res->revlen) < 0 ||
	    bindt(s, st, 8, r->changed.len ? r->changed.buf : NULL,
	    r->changed.len) < 0 ||
	    bindt(s, st, 9, res->code, res->codelen) < 0 ||
	    bindt(s, st, 10, res->message, res->messagelen) < 0 ?
	    -1 : step_done(s, st);
}

/* The change to replay, rebuilt from a deferred result. */
static void
change_line(struct sb *out, const struct result *res)
{
	sb_reset(out);
	sb_adds(out, "{\"kind\":\"change\",\"op\":\"");
	sb_adds(out, op_names[res->opi]);
	sb_adds(out, "\",\"type\":");
	json_write_string(out, res->type, res->typelen);
	sb_adds(out, ",\"key\":");
	json_write_string(out, res->key, res->keylen);
	if (res->rev) {
		sb_adds(out, ",\"rev\":");
		json_write_string(out, res->rev, res->revlen);
	}
	if (res->fields) {
		sb_adds(out, ",\"fields\":");
		json_write(out, res->fields, 0);
	}
	if (res->changed) {
		sb_adds(out, ",\"changed\":");
		json_write(out, res->changed, 0);
	}
	sb_addc(out, '}');
}

static int
apply_result(struct state *s, const struct json *obj)
{
	struct recorder *r = s->rec;
	struct result res;
	struct ruleview rv = { 0 };
	unsigned char h[RD_HASH_LEN];
	char hex[2 * RD_HASH_LEN + 1];
	sqlite3_stmt *st;

	if (parse_result(obj, &res) < 0)
		return -1;
	sb_reset(&r->changed);
	if (res.sti == ST_OK && res.opi != OP_DELETE && res.fields) {
		if (record_hash(&rv, res.fields, h, &r->canon) < 0)
			return -1;
		hex_encode(hex, h, RD_HASH_LEN);
		sb_reset(&r->fields);
		json_write(&r->fields, res.fields, 0);
	}
	if (batch_begin(s, r) < 0)
		return -1;
	r->counts[res.sti]++;
	if (res.changed)
		json_write(&r->changed, res.changed, 0);
	switch (res.sti) {
	case ST_OK:
		if (res.opi == OP_DELETE) {
			st = r->st[R_DELBASE];
			if (bindt(s, st, 1, res.type, res.typelen) < 0 ||
			    bindt(s, st, 2, res.key, res.keylen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		} else if (res.fields) {
			if (!res.changed && res.opi == OP_UPDATE &&
			    diff_old(s, r, &res) < 0)
				return -1;
			st = r->st[R_UPSERT];
			if (bindt(s, st, 1, res.type, res.typelen) < 0 ||
			    bindt(s, st, 2, res.key, res.keylen) < 0 ||
			    bindt(s, st, 3, res.rev, res.revlen) < 0 ||
			    bindt(s, st, 4, hex, 2 * RD_HASH_LEN) < 0 ||
			    bindt(s, st, 5, r->fields.buf, r->fields.len) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		} else {
			/* Written without telling what: keep the fields known. */
			st = r->st[R_SETREV];
			if (bindt(s, st, 1, res.type, res.typelen) < 0 ||
			    bindt(s, st, 2, res.key, res.keylen) < 0 ||
			    bindt(s, st, 3, res.rev, res.revlen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		}
		/* FALLTHROUGH */
	case ST_SKIPPED:
	case ST_CONFLICT:
	case ST_FAILED:
		/* A definite answer settles the change the outbox held. */
		if (r->outbox) {
			st = r->st[R_OUTDEL];
			if (bindt(s, st, 1, res.type, res.typelen) < 0 ||
			    bindt(s, st, 2, res.key, res.keylen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		}
		break;
	case ST_DEFERRED:
		change_line(&r->line, &res);
		st = r->st[R_OUTPUT];
		if (bindt(s, st, 1, res.type, res.typelen) < 0 ||
		    bindt(s, st, 2, res.key, res.keylen) < 0 ||
		    binds(s, st, 3, op_names[res.opi]) < 0 ||
		    bindt(s, st, 4, r->line.buf, r->line.len) < 0 ||
		    binds(s, st, 5, r->now) < 0 || step_done(s, st) < 0)
			return -1;
		r->outbox = 1;
		break;
	case ST_PLANNED:
		return 0;
	}
	if (res.sti == ST_SKIPPED)
		return 0;
	return log_change(s, r, &res);
}

static int
apply_cursor(struct state *s, const struct json *obj)
{
	struct recorder *r = s->rec;
	const struct json *v;
	const char *src, *name;
	size_t srclen, namelen;
	sqlite3_stmt *st = r->st[R_CURSOR];
	struct sb *id = &r->line, *val = &r->fields;

	if (member(obj, "source", 0, &src, &srclen) < 0 ||
	    member(obj, "name", 1, &name, &namelen) < 0)
		return -1;
	if (!(v = json_get(obj, "value"))) {
		rd_seterr(RD_EXIT_DATA, "missing \"value\"");
		return -1;
	}
	sb_reset(id);
	if (src && srclen) {
		sb_add(id, src, srclen);
		sb_addc(id, '/');
	}
	sb_add(id, name, namelen);
	sb_reset(val);
	if (v->type == JSON_STRING)
		sb_add(val, v->u.s, v->len);
	else
		json_write(val, v, 0);
	if (batch_begin(s, r) < 0)
		return -1;
	return bindt(s, st, 1, id->buf, id->len) < 0 ||
	    bindt(s, st, 2, val->buf, val->len) < 0 ||
	    binds(s, st, 3, r->now) < 0 ? -1 : step_done(s, st);
}

int
state_record_line(struct state *s, const struct json *obj, const char *kind,
    size_t kindlen)
{
	if (kindlen == 6 && memcmp(kind, "result", 6) == 0)
		return apply_result(s, obj) < 0 ? -1 : 1;
	if (kindlen == 6 && memcmp(kind, "cursor", 6) == 0)
		return apply_cursor(s, obj) < 0 ? -1 : 1;
	return 0;
}

/* Queries */

int
state_base_each(struct state *s, const char *type,
    int (*fn)(void *ctx, const struct state_baserow *row), void *ctx)
{
	sqlite3_stmt *st;
	struct state_baserow row;
	int k, ret = 0;

	if (prep(s, &st, type ?
	    "SELECT type, key, rev, hash, fields FROM base WHERE type = ?1"
	    " ORDER BY type, key" :
	    "SELECT type, key, rev, hash, fields FROM base ORDER BY type, key",
	    0) < 0)
		return -1;
	if (type && binds(s, st, 1, type) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	while ((k = step_row(s, st)) == 1) {
		row.type = col(st, 0, &row.typelen);
		row.key = col(st, 1, &row.keylen);
		row.rev = col(st, 2, &row.revlen);
		row.hash = col(st, 3, NULL);
		row.fields = col(st, 4, &row.fieldslen);
		if (!row.type || !row.key || !row.fields) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: base: a column is NULL",
			    s->path);
			k = -1;
			break;
		}
		if ((ret = fn(ctx, &row)) < 0)
			break;
	}
	sqlite3_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

int
state_cursor_get(struct state *s, const char *name, char **value)
{
	sqlite3_stmt *st;
	int k = -1;

	*value = NULL;
	if (prep(s, &st, "SELECT value FROM cursors WHERE name = ?1", 0) < 0)
		return -1;
	if (binds(s, st, 1, name) == 0 && (k = step_row(s, st)) == 1)
		*value = coldup(st, 0);
	sqlite3_finalize(st);
	return k;
}

int
state_cursor_set(struct state *s, const char *name, const char *value)
{
	sqlite3_stmt *st;
	char now[32];
	int r = -1;

	state_now(now, sizeof now);
	if (tx_begin(s) < 0)
		return -1;
	if (prep(s, &st, rec_sql[R_CURSOR], 0) < 0)
		goto out;
	if (binds(s, st, 1, name) == 0 && binds(s, st, 2, value) == 0 &&
	    binds(s, st, 3, now) == 0 && step_done(s, st) == 0)
		r = 0;
	sqlite3_finalize(st);
	if (r == 0)
		r = tx_commit(s);
out:
	if (r < 0)
		tx_rollback(s);
	return r;
}

/* Windows */

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
	if (tx_begin(s) < 0)
		return -1;
	/*
	 * Planned windows never overlap, so their ends rise with their starts
	 * and the only one that can overlap [t, t + step) is the last to start
	 * before t + step.
	 */
	if (prep(s, &near, "SELECT start, end, t0, t1 FROM windows"
	    " WHERE t0 < ?1 ORDER BY t0 DESC LIMIT 1", 0) < 0 ||
	    prep(s, &ins, "INSERT INTO windows(start, end, t0, t1, status,"
	    " updated) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)"
	    " ON CONFLICT (start) DO NOTHING", 0) < 0)
		goto out;
	for (t = from; t < to; t += step) {
		if (bindi(s, near, 1, t + step) < 0 ||
		    (k = step_row(s, near)) < 0)
			goto out;
		if (k == 1 && sqlite3_column_int64(near, 3) > t &&
		    (sqlite3_column_int64(near, 2) != t ||
		    sqlite3_column_int64(near, 3) != t + step)) {
			state_fmt_time(a, sizeof a, t, dates);
			state_fmt_time(b, sizeof b, t + step, dates);
			rd_seterr(RD_EXIT_REFUSED, "windows plan: the window "
			    "%s..%s overlaps the planned window %s..%s; plan with "
			    "the step it was planned with", a, b,
			    col(near, 0, NULL), col(near, 1, NULL));
			(void)sqlite3_reset(near);
			goto out;
		}
		if (k == 1)
			(void)sqlite3_reset(near);
		state_fmt_time(a, sizeof a, t, dates);
		state_fmt_time(b, sizeof b, t + step, dates);
		if (binds(s, ins, 1, a) < 0 || binds(s, ins, 2, b) < 0 ||
		    bindi(s, ins, 3, t) < 0 || bindi(s, ins, 4, t + step) < 0 ||
		    binds(s, ins, 5, now) < 0 || step_done(s, ins) < 0)
			goto out;
		*added += (unsigned long)sqlite3_changes(s->db);
	}
	ret = tx_commit(s);
out:
	sqlite3_finalize(near);
	sqlite3_finalize(ins);
	if (ret < 0)
		tx_rollback(s);
	return ret;
}

int
state_windows_each(struct state *s, int pending_only,
    int (*fn)(void *ctx, const struct state_window *w), void *ctx)
{
	sqlite3_stmt *st;
	struct state_window w;
	int k, ret = 0;

	if (prep(s, &st, pending_only ?
	    "SELECT start, end, status, reason, updated, t0, t1 FROM windows"
	    " WHERE status <> 'done' ORDER BY t0" :
	    "SELECT start, end, status, reason, updated, t0, t1 FROM windows"
	    " ORDER BY t0", 0) < 0)
		return -1;
	while ((k = step_row(s, st)) == 1) {
		w.start = col(st, 0, NULL);
		w.end = col(st, 1, NULL);
		w.status = col(st, 2, NULL);
		w.reason = col(st, 3, NULL);
		w.updated = col(st, 4, NULL);
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
	sqlite3_finalize(st);
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
	if (tx_begin(s) < 0)
		return -1;
	if (prep(s, &st, "UPDATE windows SET status = ?2, reason = ?3,"
	    " updated = ?4 WHERE start = ?1", 0) < 0)
		goto out;
	if (binds(s, st, 1, start) == 0 &&
	    binds(s, st, 2, done ? "done" : "failed") == 0 &&
	    binds(s, st, 3, done ? NULL : reason) == 0 &&
	    binds(s, st, 4, now) == 0 && step_done(s, st) == 0) {
		if (sqlite3_changes(s->db) == 0)
			rd_seterr(RD_EXIT_USAGE, "no planned window starts at "
			    "\"%s\"; see: %s windows pending",
			    rd_quote(start, strlen(start)), s->fixcmd);
		else
			r = 0;
	}
	sqlite3_finalize(st);
	if (r == 0)
		r = tx_commit(s);
out:
	if (r < 0)
		tx_rollback(s);
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

/* Runs, changes, outbox */

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
	if (prep(s, &st, sql, 0) < 0)
		return -1;
	if (id && bindi(s, st, 1, id) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	while ((k = step_row(s, st)) == 1) {
		memset(&r, 0, sizeof r);
		r.id = (long)sqlite3_column_int64(st, 0);
		r.scope = col(st, 1, NULL);
		r.flow = col(st, 2, NULL);
		r.pid = (long)sqlite3_column_int64(st, 3);
		r.host = col(st, 4, NULL);
		r.started = col(st, 5, NULL);
		r.ended = col(st, 6, NULL);
		r.status = col(st, 7, NULL);
		for (i = 0; i < ST_NSTATUS; i++)
			r.counts[i] = (unsigned long)sqlite3_column_int64(st, 8 + i);
		if (!r.scope || !r.started || !r.status) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: runs: a column is NULL",
			    s->path);
			k = -1;
			break;
		}
		r.live = strcmp(r.status, "running") == 0 && r.host &&
		    strcmp(r.host, s->host) == 0 && pid_alive(r.pid);
		if ((ret = fn(ctx, &r)) < 0)
			break;
	}
	sqlite3_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

int
state_changes_each(struct state *s, long run,
    int (*fn)(void *ctx, const struct state_change *c), void *ctx)
{
	sqlite3_stmt *st;
	struct state_change c;
	int k, ret = 0;

	if (prep(s, &st, "SELECT op, type, key, status, rev, changed,"
	    " error_code, error_message FROM changes WHERE run = ?1"
	    " ORDER BY seq", 0) < 0)
		return -1;
	if (bindi(s, st, 1, run) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	while ((k = step_row(s, st)) == 1) {
		c.op = col(st, 0, NULL);
		c.type = col(st, 1, &c.typelen);
		c.key = col(st, 2, &c.keylen);
		c.status = col(st, 3, NULL);
		c.rev = col(st, 4, NULL);
		c.changed = col(st, 5, NULL);
		c.code = col(st, 6, NULL);
		c.message = col(st, 7, NULL);
		if (!c.op || !c.type || !c.key || !c.status) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: changes: a column is NULL",
			    s->path);
			k = -1;
			break;
		}
		if ((ret = fn(ctx, &c)) < 0)
			break;
	}
	sqlite3_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

long
state_outbox_count(struct state *s)
{
	int n;

	if (pragma_int(s, "SELECT count(*) FROM outbox", &n) < 0)
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

	if (prep(s, &st, "SELECT line FROM outbox ORDER BY rowid", 0) < 0)
		return -1;
	while ((k = step_row(s, st)) == 1) {
		if (!(line = col(st, 0, &n)))
			continue;
		if ((ret = fn(ctx, line, n)) < 0)
			break;
	}
	sqlite3_finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}
