/*
 * state.c - run state in SQLite: opening, the schema and its migrations,
 * and the helpers the other parts share (state_int.h).
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "state_int.h"

#define STATE_APP_ID 0x5244454c	/* "RDEL", in PRAGMA application_id */
#define BUSY_MS 10000

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
	");\n",

	/*
	 * 2: two-way sync.  What each side last confirmed it holds, the side
	 * each logged change went to, and the conflicts merge reported, kept
	 * for review.
	 */
	"CREATE TABLE sides(\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  side TEXT NOT NULL CHECK (side IN ('local', 'remote')),\n"
	"  rev TEXT,\n"
	"  hash TEXT NOT NULL,\n"
	"  PRIMARY KEY (type, key, side)\n"
	") WITHOUT ROWID;\n"
	"ALTER TABLE changes ADD COLUMN target TEXT;\n"
	"CREATE TABLE conflicts(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  run INTEGER,\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  field TEXT,\n"
	"  base TEXT,\n"
	"  local TEXT,\n"
	"  remote TEXT,\n"
	"  winner TEXT NOT NULL,\n"
	"  reason TEXT NOT NULL,\n"
	"  recorded TEXT NOT NULL,\n"
	"  reviewed TEXT\n"
	");\n"
	"CREATE INDEX conflicts_key ON conflicts(type, key);\n"
	/* A two-way sync defers a change per side: one of each per key. */
	"CREATE TABLE outbox2(\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  op TEXT NOT NULL,\n"
	"  line TEXT NOT NULL,\n"
	"  added TEXT NOT NULL,\n"
	"  side TEXT NOT NULL DEFAULT '',\n"
	"  UNIQUE (type, key, side)\n"
	");\n"
	"INSERT INTO outbox2(type, key, op, line, added)\n"
	"  SELECT type, key, op, line, added FROM outbox ORDER BY rowid;\n"
	"DROP TABLE outbox;\n"
	"ALTER TABLE outbox2 RENAME TO outbox;\n",

	/*
	 * 3: undo.  The images of each change a run applied, beside its log
	 * row: the rev and fields the plan read (NULL for a create) and the
	 * fields written (NULL for a delete); a table of their own, so that
	 * the retention deletes whole pages that later rows reuse.  Whether
	 * a run keeps its images (a run recorded before this version keeps
	 * none); the run an undo takes back.
	 */
	"CREATE TABLE images(\n"
	"  run INTEGER NOT NULL,\n"
	"  seq INTEGER NOT NULL,\n"
	"  before_rev TEXT,\n"
	"  before_fields TEXT,\n"
	"  after_fields TEXT,\n"
	"  PRIMARY KEY (run, seq)\n"
	") WITHOUT ROWID;\n"
	"ALTER TABLE runs ADD COLUMN images INTEGER NOT NULL DEFAULT 1;\n"
	"UPDATE runs SET images = 0;\n"
	"ALTER TABLE runs ADD COLUMN undoes INTEGER;\n",

	/*
	 * 4: incremental runs over a change feed.  What the feed said of the
	 * records whose base row is not what the remote holds (a remote edit
	 * kept, an orphan, a remote delete, a change not delivered): their
	 * rev and fields, or NULL fields for a tombstone.
	 */
	"CREATE TABLE feed_seen(\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  rev TEXT,\n"
	"  fields TEXT,\n"
	"  PRIMARY KEY (type, key)\n"
	") WITHOUT ROWID;\n",

	/*
	 * 5: the in-step digest (lib/insync.h), written by a sparse prune and
	 * read by recdelta-diff --from-state: the whole one (id 1) and a
	 * delta against it (2).  While there is one, triggers on base (made
	 * and dropped with it, lib/state_insync.c: they cost every write to
	 * the base) keep the keys of the base rows written since, so that
	 * no entry of theirs is trusted, and the base's rows counted by
	 * type, so that a reader knows whether the keys it found are all
	 * the base holds without reading it.
	 */
	"CREATE TABLE insync(\n"
	"  id INTEGER PRIMARY KEY CHECK (id IN (1, 2)),\n"
	"  digest BLOB NOT NULL\n"
	");\n"
	"CREATE TABLE insync_dirty(\n"
	"  type TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  PRIMARY KEY (type, key)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE base_count(\n"
	"  type TEXT PRIMARY KEY,\n"
	"  n INTEGER NOT NULL\n"
	") WITHOUT ROWID;\n"
};

/* Helpers */

int
db_err(struct state *s)
{
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path, sqlite3_errmsg(s->db));
	return -1;
}

int
db_exec(struct state *s, const char *sql)
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
void
db_finalize(sqlite3_stmt *st)
{
	(void)sqlite3_finalize(st);
}

int
db_prep(struct state *s, sqlite3_stmt **st, const char *sql, int persistent)
{
	if (sqlite3_prepare_v3(s->db, sql, -1,
	    persistent ? SQLITE_PREPARE_PERSISTENT : 0, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_err(s);
	}
	return 0;
}

/* Bind text of length n, or NULL when p is NULL; borrowed until the step. */
int
db_bindt(struct state *s, sqlite3_stmt *st, int i, const char *p, size_t n)
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

int
db_binds(struct state *s, sqlite3_stmt *st, int i, const char *p)
{
	return db_bindt(s, st, i, p, p ? strlen(p) : 0);
}

int
db_bindi(struct state *s, sqlite3_stmt *st, int i, long long v)
{
	int rc = sqlite3_bind_int64(st, i, v);

	if (rc != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", s->path, sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

/* Step a statement that returns no rows, and reset it. */
int
db_step_done(struct state *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		db_err(s);
		(void)sqlite3_reset(st);
		return -1;
	}
	(void)sqlite3_reset(st);	/* repeats the step's code: checked above */
	return 0;
}

/* Step once: 1 for a row, 0 at the end (statement reset), -1 on error. */
int
db_step_row(struct state *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		(void)sqlite3_reset(st);
		return 0;
	}
	db_err(s);
	(void)sqlite3_reset(st);
	return -1;
}

const char *
db_col(sqlite3_stmt *st, int i, size_t *n)
{
	const char *p = (const char *)sqlite3_column_text(st, i);

	if (n)
		*n = p ? (size_t)sqlite3_column_bytes(st, i) : 0;
	return p;
}

char *
db_coldup(sqlite3_stmt *st, int i)
{
	size_t n;
	const char *p = db_col(st, i, &n);

	return p ? xmemdup(p, n) : NULL;
}

int
db_int(struct state *s, const char *sql, int *out)
{
	sqlite3_stmt *st;
	int r;

	if (db_prep(s, &st, sql, 0) < 0)
		return -1;
	r = db_step_row(s, st);
	if (r == 1)
		*out = sqlite3_column_int(st, 0);
	db_finalize(st);
	if (r == 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s: no result", s->path, sql);
		return -1;
	}
	return r < 0 ? -1 : 0;
}

int
db_begin(struct state *s)
{
	return db_exec(s, "BEGIN IMMEDIATE");
}

int
db_commit(struct state *s)
{
	return db_exec(s, "COMMIT");
}

/* Roll back without touching a pending error message. */
void
db_rollback(struct state *s)
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
void
state_shquote(struct sb *out, const char *s)
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

int
state_pid_alive(long pid)
{
	if (pid <= 0 || pid > INT_MAX)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Opening and the schema */

void
state_newer_msg(struct state *s, struct sb *out)
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
	state_newer_msg(s, &m);
	m.buf[--m.len] = '\0';
	rd_seterr(RD_EXIT_REFUSED, "%s", m.buf);
	sb_release(&m);
	return -1;
}

static int
has_tables(struct state *s, int *yes)
{
	return db_int(s, "SELECT count(*) FROM sqlite_schema"
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

	if (db_begin(s) < 0)
		return -1;
	if (db_int(s, "PRAGMA user_version", &v) < 0)
		goto fail;
	if (v > STATE_SCHEMA) {
		s->version = v;
		db_rollback(s);
		return refuse_newer(s);
	}
	if (v == 0) {
		if (has_tables(s, &tables) < 0)
			goto fail;
		if (tables) {
			db_rollback(s);
			return not_ours(s);
		}
	}
	if (v == STATE_SCHEMA) {
		/* Another process migrated it since we looked. */
		s->version = v;
		return db_commit(s);
	}
	for (i = v; i < STATE_SCHEMA; i++)
		if (db_exec(s, migrations[i]) < 0)
			goto fail;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STATE_SCHEMA);
	if (db_exec(s, sql) < 0)
		goto fail;
	snprintf(sql, sizeof sql, "PRAGMA application_id = %d", STATE_APP_ID);
	if (db_exec(s, sql) < 0 || db_commit(s) < 0)
		goto fail;
	s->version = STATE_SCHEMA;
	return 0;
fail:
	db_rollback(s);
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

	/*
	 * Reads only, until the version is known to be one this build knows;
	 * all three in one statement, and so from one snapshot: read apart,
	 * another process's first migration could commit between them and
	 * show its tables under a version still 0.
	 */
	if (db_prep(s, &st, "SELECT (SELECT application_id"
	    " FROM pragma_application_id), (SELECT user_version"
	    " FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema"
	    " WHERE type = 'table')", 0) < 0)
		return openerr(s);
	rc = db_step_row(s, st);
	if (rc == 1) {
		appid = sqlite3_column_int(st, 0);
		s->version = sqlite3_column_int(st, 1);
		tables = sqlite3_column_int(st, 2);
	}
	db_finalize(st);
	if (rc != 1)
		return openerr(s);
	if (appid != 0 && appid != STATE_APP_ID)
		return not_ours(s);
	if (s->version > STATE_SCHEMA) {
		s->newer = 1;
		return flags & STATE_PROBE ? 0 : refuse_newer(s);
	}
	if (s->version == 0 && tables)
		return not_ours(s);
	if (s->exists || (flags & STATE_WRITE)) {
		/*
		 * Only a database not yet written takes a page size; larger
		 * pages than the default 4096 make recording a third cheaper.
		 */
		if (!s->exists && db_exec(s, "PRAGMA page_size = 16384") < 0)
			return openerr(s);
		if (db_prep(s, &st, "PRAGMA journal_mode", 0) < 0)
			return openerr(s);
		rc = db_step_row(s, st);
		mode = rc == 1 ? db_col(st, 0, NULL) : NULL;
		rc = rc < 0 ? -1 : mode && strcmp(mode, "wal") == 0;
		db_finalize(st);
		if (rc < 0 || (!rc && db_exec(s, "PRAGMA journal_mode = WAL") < 0))
			return openerr(s);
	}
	if (db_exec(s, "PRAGMA synchronous = NORMAL") < 0)
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
	/*
	 * While the in-step digest's triggers are there, each write to the
	 * base is a statement that writes several tables, and SQLite keeps
	 * a statement journal for it: in memory up to 1 MB, rather than in
	 * a temporary file written for every row.  Temporary tables (a
	 * fold's) still go to disk.
	 */
	if (rc == SQLITE_OK)
		rc = sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 1 << 20);
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
	/* The fix names the state unless it is the default one. */
	sb_adds(&fix, "recdelta-checkpoint");
	if (!path)
		path = env && *env ? env : STATE_DEFAULT_PATH;
	if (strcmp(path, STATE_DEFAULT_PATH) != 0) {
		sb_adds(&fix, " --state ");
		state_shquote(&fix, path);
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

void
state_close(struct state *s)
{
	if (!s)
		return;
	if (s->rec)
		state_record_drop(s);
	db_finalize(s->baseget);
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

char *
state_scope_path(const char *scope)
{
	char hex[2 * RD_SHA256_LEN + 1];
	size_t n = strlen(scope), from = 0;
	const char *p;
	struct sb slug, out;

	rd_sha256_hex(scope, n, hex);
	/* Letters, digits, '.', '-' and '_'; any run of others as one '_'. */
	sb_init(&slug, n + 1);
	for (p = scope; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.')
			sb_addc(&slug, *p);
		else if (slug.len && slug.buf[slug.len - 1] != '_')
			sb_addc(&slug, '_');
	}
	/* The end says most (the end of a path): the last 40, from a word. */
	if (slug.len > 40) {
		from = slug.len - 40;
		while (from < slug.len && slug.buf[from - 1] != '_')
			from++;
		if (from == slug.len)
			from = slug.len - 40;
	}
	/* Never a hidden name. */
	while (from < slug.len && strchr("._-", slug.buf[from]))
		from++;
	sb_init(&out, 96);
	sb_adds(&out, ".recdelta/");
	if (from < slug.len) {
		sb_add(&out, slug.buf + from, slug.len - from);
		sb_addc(&out, '-');
	}
	sb_add(&out, hex, 16);
	sb_adds(&out, ".db");
	sb_release(&slug);
	return out.buf;
}

int
state_scope(struct state *s, char **scope)
{
	sqlite3_stmt *st;
	int r;

	*scope = NULL;
	if (db_prep(s, &st, "SELECT value FROM meta WHERE key = 'scope'", 0) < 0)
		return -1;
	if ((r = db_step_row(s, st)) == 1)
		*scope = db_coldup(st, 0);
	db_finalize(st);
	return r < 0 ? -1 : 0;
}

int
state_set_scope(struct state *s, const char *scope)
{
	sqlite3_stmt *st;
	int r;

	if (db_prep(s, &st, "INSERT INTO meta(key, value) VALUES ('scope', ?1)",
	    0) < 0)
		return -1;
	r = db_binds(s, st, 1, scope) < 0 ? -1 : db_step_done(s, st);
	db_finalize(st);
	return r;
}

/* Refusals: each names what was found and the one command that fixes it. */

void
state_scope_refusal(struct state *s, const char *own, const char *scope,
    const char *cmd, struct sb *msg)
{
	sb_addf(msg, "refused: the state %s belongs to scope \"%s\", ", s->path,
	    rd_quote(own, strlen(own)));
	sb_addf(msg, "not \"%s\"\n", rd_quote(scope, strlen(scope)));
	sb_adds(msg, "  give each scope a state of its own: "
	    "recdelta-checkpoint --state FILE ");
	sb_adds(msg, cmd);
	sb_adds(msg, " --scope ");
	state_shquote(msg, scope);
	sb_addc(msg, '\n');
}
