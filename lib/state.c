/* state.c - run state in SQLite: schema, recording, queries, preflight. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
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

/*
 * "same" comes from push for a change it found already in step (a diff --all
 * same line, or a conflict recomputed to equal): skipped, with the remote's
 * rev and fields, it confirms the record for the base snapshot.
 */
static const char *const op_names[] = { "create", "update", "delete", "same" };
enum { OP_CREATE, OP_UPDATE, OP_DELETE, OP_SAME, OP_N };

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

enum { B_RESULT, B_CURSOR };

/* One line to apply: strings are offsets into its batch's bytes. */
struct bop {
	unsigned char what, opi, sti, diff;	/* diff: changed from the base */
	size_t type, key, rev, hash, fields, changed, code, message, line;
	size_t typelen, keylen, revlen, fieldslen, changedlen, codelen;
	size_t messagelen, linelen;
};

struct batch {
	struct sb bytes;
	struct bop *ops;
	size_t n, cap;
	int final;
	unsigned long counts[ST_NSTATUS];	/* the run's, after this batch */
	struct batch *next;
};

struct recorder {
	char *scope, *flow, *window;
	long run, seq;
	unsigned long counts[ST_NSTATUS];	/* caller: lines parsed so far */
	unsigned long consumed;	/* caller: result and cursor lines */
	unsigned long saved[ST_NSTATUS];	/* writer: as last committed */
	int committed;		/* writer: a batch committed, the run exists */
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

/*
 * Finalizing repeats the error of the statement's last step, which the
 * caller has checked already: nothing new to learn from it.
 */
static void
finalize(sqlite3_stmt *st)
{
	(void)sqlite3_finalize(st);
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
	finalize(st);
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
refuse_newer(struct state *s)
{
	struct sb m;

	s->newer = 1;
	sb_init(&m, 128);
	newer_msg(s, &m);
	m.buf[--m.len] = '\0';
	rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
	sb_release(&m);
	return -1;
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
		s->version = v;
		tx_rollback(s);
		return refuse_newer(s);
	}
	if (v == 0) {
		if (has_tables(s, &tables) < 0)
			goto fail;
		if (tables) {
			tx_rollback(s);
			return not_ours(s);
		}
	}
	if (v == STATE_SCHEMA) {
		/* Another process migrated it since we looked. */
		s->version = v;
		return tx_commit(s);
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

/*
 * Make the directory that will hold path, one level, when it is missing:
 * private, since the base holds every record's fields.  One that exists is
 * left as it is.
 */
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
		/* Another process may be making it too. */
		if (errno != ENOENT || (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
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

/*
 * Create the database file empty and 0600 before SQLite opens it, which
 * would make it 0644; its -wal and -shm files take its mode.  A file another
 * process made meanwhile is left to it.
 */
static int
create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 && errno != EEXIST) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: cannot create the state database: "
		    "%s", path, strerror(errno));
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* Whether the file (or its directory, to create it) can be written. */
static int
writable(const char *path, int exists)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	int r;

	if (exists) {
		r = access(path, W_OK);
	} else {
		dir = slash ? xmemdup(path, slash == path ? 1 :
		    (size_t)(slash - path)) : xstrdup(".");
		r = access(dir, W_OK);
	}
	if (r < 0)
		rd_seterr(RD_EXIT_RUNTIME, "%s: cannot %s the state database: %s%s%s",
		    path, exists ? "write" : "create", dir ? dir : "",
		    dir ? ": " : "", strerror(errno));
	free(dir);
	return r;
}

static int
openerr(struct state *s)
{
	rd_seterr(RD_EXIT_RUNTIME, "%s: cannot open the state database: %s",
	    s->path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
	return -1;
}

/*
 * Everything between opening and migrating: reads, then WAL mode.  Changing
 * the journal mode, or reading while another process does, may fail busy
 * without waiting (SQLite will not wait while holding a read lock), so the
 * caller retries this part.
 */
static int
setup(struct state *s, int flags)
{
	int rc, appid, tables;
	const char *mode;
	sqlite3_stmt *st;

	/* Reads only, until the version is known to be one this build knows. */
	if (pragma_int(s, "PRAGMA application_id", &appid) < 0 ||
	    pragma_int(s, "PRAGMA user_version", &s->version) < 0)
		return openerr(s);
	if (appid != 0 && appid != STATE_APP_ID)
		return not_ours(s);
	if (s->version > STATE_SCHEMA) {
		s->newer = 1;
		return flags & STATE_PROBE ? 0 : refuse_newer(s);
	}
	if (s->version == 0) {
		if (has_tables(s, &tables) < 0)
			return openerr(s);
		if (tables)
			return not_ours(s);
	}
	if (s->exists || (flags & STATE_WRITE)) {
		/*
		 * Only a database not yet written takes a page size; larger
		 * pages than the default 4096 make recording a third cheaper.
		 */
		if (!s->exists && exec(s, "PRAGMA page_size = 16384") < 0)
			return openerr(s);
		if (prep(s, &st, "PRAGMA journal_mode", 0) < 0)
			return openerr(s);
		rc = step_row(s, st);
		mode = rc == 1 ? col(st, 0, NULL) : NULL;
		rc = rc < 0 ? -1 : mode && strcmp(mode, "wal") == 0;
		finalize(st);
		if (rc < 0 || (!rc && exec(s, "PRAGMA journal_mode = WAL") < 0))
			return openerr(s);
	}
	if (exec(s, "PRAGMA synchronous = NORMAL") < 0)
		return openerr(s);
	return 0;
}

static int
open_db(struct state *s, int flags)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int rc, waited;

	/*
	 * Memory statistics take a global mutex on every allocation; this
	 * process does not read them.  Too late once SQLite is initialised.
	 */
	rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (rc != SQLITE_OK && rc != SQLITE_MISUSE) {
		rd_seterr(RD_EXIT_RUNTIME, "sqlite3_config: %s", sqlite3_errstr(rc));
		return -1;
	}
	if (!s->exists && !(flags & STATE_WRITE))
		rc = sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE,
		    NULL);
	else
		rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
		    SQLITE_OPEN_NOMUTEX |
		    (flags & STATE_WRITE ? SQLITE_OPEN_CREATE : 0), NULL);
	if (rc != SQLITE_OK)
		return openerr(s);
	if ((rc = sqlite3_extended_result_codes(s->db, 1)) != SQLITE_OK ||
	    (rc = sqlite3_busy_timeout(s->db, BUSY_MS)) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path, sqlite3_errstr(rc));
		return -1;
	}
	for (waited = 0; setup(s, flags) < 0; waited += 20) {
		rc = sqlite3_errcode(s->db) & 0xff;
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited >= BUSY_MS)
			return -1;
		nanosleep(&ts, NULL);
	}
	if (!s->newer && s->version < STATE_SCHEMA && migrate(s) < 0)
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
	/* SQLite would open it read-only without a word, and fail later. */
	if ((flags & STATE_WRITE) && writable(path, s->exists) < 0)
		goto fail;
	if (!s->exists && (flags & STATE_WRITE) && create_private(path) < 0)
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
static void writer_join(struct recorder *r);

void
state_close(struct state *s)
{
	if (!s)
		return;
	if (s->rec) {
		/* Not finished nor aborted: what was handed over is dropped. */
		pthread_mutex_lock(&s->rec->mu);
		s->rec->failed = 1;
		pthread_mutex_unlock(&s->rec->mu);
		writer_join(s->rec);
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
	finalize(st);
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
	finalize(st);
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
	finalize(st);
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
		sb_addf(msg, "  replay %s first: %s outbox | recdelta-push "
		    "--delete-orphans TARGET | %s record --scope ",
		    n == 1 ? "it" : "them",
		    s->fixcmd, s->fixcmd);
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
	finalize(st);
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
		finalize(r->st[i]);
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
		finalize(st);
		return -1;
	}
	if ((k = step_row(s, st)) == 1) {
		for (i = 0; i < ST_NSTATUS; i++)
			r->counts[i] = (unsigned long)sqlite3_column_int64(st, i);
		r->seq = (long)sqlite3_column_int64(st, ST_NSTATUS);
		(void)sqlite3_reset(st);
	}
	finalize(st);
	return k < 0 ? -1 : 0;
}

static int
refuse_scope(struct state *s, const char *own, const char *scope)
{
	struct sb m;

	sb_init(&m, 256);
	scope_refusal(s, own, scope, "record", &m);
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

	if (prep(s, &st, "SELECT type, key FROM outbox", 0) < 0)
		return -1;
	while ((rc = step_row(s, st)) == 1) {
		t = col(st, 0, &tn);
		k = col(st, 1, &kn);
		if (t && k)
			oset_add(r, keyhash(t, tn, k, kn));
	}
	finalize(st);
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

	if (bindt(s, st, 1, bstr(b, o->type), o->typelen) < 0 ||
	    bindt(s, st, 2, bstr(b, o->key), o->keylen) < 0 ||
	    (k = step_row(s, st)) < 0)
		return -1;
	if (k == 0)
		return 0;
	p = col(st, 0, &n);
	arena_reset(&r->a);
	if (p && json_parse(&r->a, p, n, &old, NULL) == 0 &&
	    old.type == JSON_OBJECT && json_parse(&r->a, bstr(b, o->fields),
	    o->fieldslen, &new, NULL) == 0)
		record_compare(&rv, &old, &new, &r->changed);
	(void)sqlite3_reset(st);
	return 0;
}

static int
apply_op(struct state *s, struct recorder *r, const struct batch *b,
    const struct bop *o)
{
	const char *type = bstr(b, o->type), *key = bstr(b, o->key);
	sqlite3_stmt *st;

	if (o->what == B_CURSOR) {
		st = r->st[R_CURSOR];
		return bindt(s, st, 1, key, o->keylen) < 0 ||
		    bindt(s, st, 2, bstr(b, o->fields), o->fieldslen) < 0 ||
		    binds(s, st, 3, r->now) < 0 ? -1 : step_done(s, st);
	}
	sb_reset(&r->changed);
	switch (o->sti) {
	case ST_OK:
		if (o->opi == OP_DELETE) {
			st = r->st[R_DELBASE];
			if (bindt(s, st, 1, type, o->typelen) < 0 ||
			    bindt(s, st, 2, key, o->keylen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		} else if (o->fields != NOSTR) {
			if (o->diff && diff_old(s, r, b, o) < 0)
				return -1;
			st = r->st[R_UPSERT];
			if (bindt(s, st, 1, type, o->typelen) < 0 ||
			    bindt(s, st, 2, key, o->keylen) < 0 ||
			    bindt(s, st, 3, bstr(b, o->rev), o->revlen) < 0 ||
			    bindt(s, st, 4, bstr(b, o->hash), 2 * RD_HASH_LEN) < 0 ||
			    bindt(s, st, 5, bstr(b, o->fields), o->fieldslen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		} else {
			/* Written without saying what: keep the fields known. */
			st = r->st[R_SETREV];
			if (bindt(s, st, 1, type, o->typelen) < 0 ||
			    bindt(s, st, 2, key, o->keylen) < 0 ||
			    bindt(s, st, 3, bstr(b, o->rev), o->revlen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		}
		/* FALLTHROUGH */
	case ST_SKIPPED:
		if (o->sti == ST_SKIPPED && o->opi == OP_SAME && o->fields != NOSTR) {
			/* Found in step: the base learns its rev and fields. */
			st = r->st[R_UPSERT];
			if (bindt(s, st, 1, type, o->typelen) < 0 ||
			    bindt(s, st, 2, key, o->keylen) < 0 ||
			    bindt(s, st, 3, bstr(b, o->rev), o->revlen) < 0 ||
			    bindt(s, st, 4, bstr(b, o->hash), 2 * RD_HASH_LEN) < 0 ||
			    bindt(s, st, 5, bstr(b, o->fields), o->fieldslen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		} else if (o->sti == ST_SKIPPED && o->opi == OP_DELETE &&
		    o->codelen == 4 && memcmp(bstr(b, o->code), "gone", 4) == 0) {
			/* Deleted by someone else: gone from the base too. */
			st = r->st[R_DELBASE];
			if (bindt(s, st, 1, type, o->typelen) < 0 ||
			    bindt(s, st, 2, key, o->keylen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		}
		/* FALLTHROUGH */
	case ST_CONFLICT:
	case ST_FAILED:
		/* A definite answer settles the change the outbox held. */
		if (oset_has(r, keyhash(type, o->typelen, key, o->keylen))) {
			st = r->st[R_OUTDEL];
			if (bindt(s, st, 1, type, o->typelen) < 0 ||
			    bindt(s, st, 2, key, o->keylen) < 0 ||
			    step_done(s, st) < 0)
				return -1;
		}
		break;
	case ST_DEFERRED:
		st = r->st[R_OUTPUT];
		if (bindt(s, st, 1, type, o->typelen) < 0 ||
		    bindt(s, st, 2, key, o->keylen) < 0 ||
		    binds(s, st, 3, op_names[o->opi]) < 0 ||
		    bindt(s, st, 4, bstr(b, o->line), o->linelen) < 0 ||
		    binds(s, st, 5, r->now) < 0 || step_done(s, st) < 0)
			return -1;
		oset_add(r, keyhash(type, o->typelen, key, o->keylen));
		break;
	default:
		return 0;
	}
	if (o->sti == ST_SKIPPED)
		return 0;
	/* The change log. */
	st = r->st[R_LOG];
	if (o->changed != NOSTR) {
		sb_reset(&r->changed);
		sb_add(&r->changed, bstr(b, o->changed), o->changedlen);
	}
	r->seq++;
	return bindi(s, st, 1, r->run) < 0 || bindi(s, st, 2, r->seq) < 0 ||
	    binds(s, st, 3, op_names[o->opi]) < 0 ||
	    bindt(s, st, 4, type, o->typelen) < 0 ||
	    bindt(s, st, 5, key, o->keylen) < 0 ||
	    binds(s, st, 6, state_status_names[o->sti]) < 0 ||
	    bindt(s, st, 7, bstr(b, o->rev), o->revlen) < 0 ||
	    bindt(s, st, 8, r->changed.len ? r->changed.buf : NULL,
	    r->changed.len) < 0 ||
	    bindt(s, st, 9, bstr(b, o->code), o->codelen) < 0 ||
	    bindt(s, st, 10, bstr(b, o->message), o->messagelen) < 0 ?
	    -1 : step_done(s, st);
}

/* The window of the run is done, in the transaction of its last results. */
static int
mark_window(struct state *s, struct recorder *r)
{
	sqlite3_stmt *st;
	int ret = -1;

	if (prep(s, &st, "UPDATE windows SET status = 'done', reason = NULL,"
	    " updated = ?2 WHERE start = ?1", 0) < 0)
		return -1;
	if (binds(s, st, 1, r->window) == 0 && binds(s, st, 2, r->now) == 0 &&
	    step_done(s, st) == 0) {
		if (sqlite3_changes(s->db) == 0)
			rd_seterr(RD_EXIT_USAGE, "no planned window starts at "
			    "\"%s\"", rd_quote(r->window, strlen(r->window)));
		else
			ret = 0;
	}
	finalize(st);
	return ret;
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

	if (tx_begin(s) < 0)
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
		if (!own && set_scope(s, r->scope) < 0)
			return -1;
		free(own);
		if ((r->run ? bindi(s, st, 1, r->run) :
		    bindt(s, st, 1, NULL, 0)) < 0 ||
		    binds(s, st, 2, r->scope) < 0 ||
		    binds(s, st, 3, r->flow) < 0 ||
		    bindi(s, st, 4, (long long)getpid()) < 0 ||
		    binds(s, st, 5, s->host) < 0 || binds(s, st, 6, r->now) < 0 ||
		    step_done(s, st) < 0)
			return -1;
		if (!r->run)
			r->run = (long)sqlite3_last_insert_rowid(s->db);
	}
	for (i = 0; i < b->n; i++)
		if (apply_op(s, r, b, &b->ops[i]) < 0)
			return -1;
	if (b->final && r->window && mark_window(s, r) < 0)
		return -1;
	st = r->st[R_RUNUPD];
	for (i = 0; i < ST_NSTATUS; i++)
		if (bindi(s, st, (int)i + 1, (long long)b->counts[i]) < 0)
			return -1;
	if (binds(s, st, 7, b->final ? r->now : NULL) < 0 ||
	    binds(s, st, 8, !b->final ? "running" :
	    b->counts[ST_CONFLICT] || b->counts[ST_DEFERRED] ||
	    b->counts[ST_FAILED] ? "partial" : "done") < 0 ||
	    bindi(s, st, 9, r->run) < 0 || step_done(s, st) < 0 ||
	    tx_commit(s) < 0)
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
			tx_rollback(s);
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
	if (load_outbox(s, r) < 0)
		return -1;
	/*
	 * A long stream writes many pages: a larger cache and fewer, larger
	 * checkpoints write each page fewer times.
	 */
	if (exec(s, "PRAGMA cache_size = -65536") < 0 ||
	    exec(s, "PRAGMA wal_autocheckpoint = 4096") < 0)
		return -1;
	for (i = 0; i < R_NSTMT; i++)
		if (prep(s, &r->st[i], rec_sql[i], 1) < 0)
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

/* The caller's side */

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
		    "update, delete or same)", rd_quote(res->op, res->oplen));
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
	struct sb *out = &b->bytes;

	o->line = out->len;
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
	o->linelen = out->len - o->line;
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
	confirms = res.fields && res.opi != OP_DELETE && (res.sti == ST_OK ||
	    (res.sti == ST_SKIPPED && res.opi == OP_SAME && res.rev));
	if (confirms) {
		if (record_hash(&rv, res.fields, h, &r->canon) < 0)
			return -1;
		hex_encode(hex, h, RD_HASH_LEN);
	}
	r->counts[res.sti]++;
	if (res.sti == ST_PLANNED)
		return 0;
	o = new_op(b, B_RESULT);
	o->opi = (unsigned char)res.opi;
	o->sti = (unsigned char)res.sti;
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
		o->diff = res.opi == OP_UPDATE && !res.changed;
	}
	if (res.sti == ST_DEFERRED)
		put_change(b, &res, o);
	return 0;
}

static int
add_cursor(struct recorder *r, const struct json *obj)
{
	struct batch *b = r->fill;
	const struct json *v;
	const char *src, *name;
	size_t srclen, namelen;
	struct bop *o;

	if (member(obj, "source", 0, &src, &srclen) < 0 ||
	    member(obj, "name", 1, &name, &namelen) < 0)
		return -1;
	if (!(v = json_get(obj, "value"))) {
		rd_seterr(RD_EXIT_DATA, "missing \"value\"");
		return -1;
	}
	/* The cursor's name is "SOURCE/NAME", or NAME without a source. */
	o = new_op(b, B_CURSOR);
	o->key = b->bytes.len;
	if (src && srclen) {
		sb_add(&b->bytes, src, srclen);
		sb_addc(&b->bytes, '/');
	}
	sb_add(&b->bytes, name, namelen);
	o->keylen = b->bytes.len - o->key;
	if (v->type == JSON_STRING)
		o->fields = put(b, v->u.s, o->fieldslen = v->len);
	else
		put_json(b, v, &o->fields, &o->fieldslen);
	return 0;
}

int
state_record_line(struct state *s, const struct json *obj, const char *kind,
    size_t kindlen)
{
	struct recorder *r = s->rec;

	if (r->failed)
		return writer_failed(r);
	if (kindlen == 6 && memcmp(kind, "result", 6) == 0) {
		if (add_result(r, obj) < 0)
			return -1;
	} else if (kindlen == 6 && memcmp(kind, "cursor", 6) == 0) {
		if (add_cursor(r, obj) < 0)
			return -1;
	} else {
		return 0;
	}
	r->consumed++;
	return 1;
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
		finalize(st);
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
	finalize(st);
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
	finalize(st);
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
	finalize(st);
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
	finalize(near);
	finalize(ins);
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
	finalize(st);
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
	finalize(st);
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
		finalize(st);
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
	finalize(st);
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
		finalize(st);
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
	finalize(st);
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
	finalize(st);
	return k < 0 || ret < 0 ? -1 : 0;
}

/* Pruning the base */

static sqlite3_stmt *prune_add;

int
state_prune_begin(struct state *s)
{
	if (exec(s, "CREATE TEMP TABLE IF NOT EXISTS prune_seen (type TEXT, "
	    "key TEXT, PRIMARY KEY (type, key)) WITHOUT ROWID") < 0 ||
	    exec(s, "DELETE FROM prune_seen") < 0 || tx_begin(s) < 0)
		return -1;
	if (prep(s, &prune_add, "INSERT OR IGNORE INTO prune_seen (type, key) "
	    "VALUES (?1, ?2)", 0) < 0) {
		tx_rollback(s);
		return -1;
	}
	return 0;
}

int
state_prune_add(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen)
{
	return bindt(s, prune_add, 1, type, typelen) < 0 ||
	    bindt(s, prune_add, 2, key, keylen) < 0 ? -1 :
	    step_done(s, prune_add);
}

int
state_prune_finish(struct state *s, long long *removed)
{
	finalize(prune_add);
	prune_add = NULL;
	if (exec(s, "DELETE FROM base WHERE NOT EXISTS (SELECT 1 FROM "
	    "prune_seen p WHERE p.type = base.type AND p.key = base.key)") < 0) {
		tx_rollback(s);
		return -1;
	}
	*removed = sqlite3_changes(s->db);
	return tx_commit(s);
}

void
state_prune_abort(struct state *s)
{
	finalize(prune_add);
	prune_add = NULL;
	tx_rollback(s);
}
