/*
 * store_sqlite.c - sqlite:DB?table=T&key=COL[&rev=COL][&type=TYPE].
 *
 * One table is one record type: TYPE, or the table's name.  A fetch with
 * types (-t) reads the table when its type is one of them, else nothing.  The
 * key column gives the record key, the rev column (default "rev", when the
 * table has one) its version, "0" when NULL or when there is no rev column
 * (a row recdelta never wrote), so that a change can name it.  The table
 * and the columns are named in any ASCII case, as SQLite resolves names, by
 * reading and writing alike; a parameter that holds a NUL byte or is not
 * UTF-8 once %XX are decoded is refused.  Every other column is a field of
 * the same name: INTEGER an integer (exact, 64 bits), REAL a number written
 * as a double, with the fewest digits that read back as it (30.0, -120.5,
 * 0.1, 1e+300, -0.0: json_format_double), TEXT a string, BLOB
 * {"$bytes":BASE64}, NULL null, and a column declared JSON, or with a type
 * beginning "JSON " such as "JSON TEXT", holds a JSON value as text (how
 * objects, arrays and tagged values are kept).
 *
 * Writing keeps that mapping exact: a change is stored so that a fetch gives
 * back values equal to its fields (numbers by decimal value), or it is
 * refused; it is never silently altered.
 *
 * - A batch is one transaction, BEGIN IMMEDIATE ... COMMIT, waiting up to 5 s
 *   for the lock.  The database file is created if missing, and so is the
 *   table, by a batch that holds a create of the store's type (which sets
 *   store.created): ("KEY" TEXT PRIMARY KEY, "REV" INTEGER NOT NULL), REV
 *   the rev= column or "rev".  In a store that does not exist, a batch
 *   without one makes nothing: its updates and deletes conflict.  A table without its rev column gets one, INTEGER,
 *   NULL in its rows (rev "0") until they are written.
 * - A field without a column gets one.  Objects other than {"$bytes":...},
 *   arrays and booleans get a JSON column, declared JSON TEXT (TEXT affinity
 *   keeps the text as bound); anything else a column with no declared type,
 *   where SQLite stores integers, reals, text and blobs exactly as bound.  A
 *   field first seen as null takes the kind of its next value in the batch.
 * - Values: a string is TEXT; a number is bound as it is written, so that
 *   a REAL read stays REAL: an integer literal (30) is INTEGER when it fits
 *   64 bits, a literal with a fraction or an exponent (30.0, 1e2, -0.0) is
 *   REAL when the double's text has the same decimal value, and any other
 *   number fails "inexact"; null is NULL; {"$bytes":B64} a BLOB.  A JSON
 *   column holds the compact JSON text of any value (null is NULL; in a
 *   column declared just JSON, whose affinity is numeric, a number is stored
 *   as a number).  Other objects, arrays and booleans in a column that is
 *   not JSON fail "type".
 * - A column declared with a type has SQLite's affinity, which converts: a
 *   string that may read as a number bound to a numeric column, a number to a
 *   TEXT one, an integer a REAL column would round, or a key that would not
 *   read back the same, fails "affinity" instead.  What it converts without
 *   changing the value is left to it: a whole REAL becomes INTEGER in an
 *   INTEGER or NUMERIC column (30.0 reads back 30), and a REAL column keeps
 *   -0.0 as 0.0; both compare equal to what was written.
 * - A change's fields are the whole record: the columns it does not name are
 *   set to NULL, by an update as by a create, and read back as null fields (a
 *   table cannot tell a missing field from a null one).  Generated columns are
 *   left to SQLite.  A field may not hold a NUL in its name, be named as the
 *   key or rev column, or differ from a column only in ASCII case ("field").
 * - Guards: a change of another type than the store's fails "type".  A create
 *   conflicts when the key exists.  An update or a delete conflicts unless
 *   the row exists with its rev, as decimal text, equal to the change's (a
 *   row whose rev is NULL matches rev "0", or a change without one).  With
 *   "seen" (content_guard) the row, read as fetch reads it inside the write
 *   transaction, must also hash to it (record_hash, no rules), so that a row
 *   changed with SQL, which moves no rev, conflicts; a change with "seen"
 *   and no rev is guarded by its content alone.  A
 *   create or update writes the next rev of the table's sequence (see
 *   seq_load), above the row's own (a stored rev that is not an integer
 *   fails "rev"); a delete reports rev "".  An empty key fails "key"; a key
 *   that matches several rows fails "duplicate"; a table without the key
 *   column fails every change "schema".
 * - A change SQLite itself refuses (a constraint, a view) fails "sqlite" with
 *   SQLite's message, inside a savepoint so that nothing of it stays (nor the
 *   columns it added), and the batch goes on.  An error that ends the
 *   transaction (I/O, full disk, the lock not obtained in time, BEGIN or
 *   COMMIT failing) rolls the whole batch back and apply returns -1.
 *
 * get and count use the same connection, opened read-write (the file is not
 * created); a missing database or table holds no record.  fetch and exists
 * open their own, never creating the file: a missing database or table is
 * an error for a source, an empty store for a target (fetch_opts.missing_ok).
 */
#include "log.h"
#include "record.h"
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

/* The rev of a row whose rev is NULL, or of a table without a rev column. */
#define NO_REV "0"

/* SQLite's column affinities (datatype3.html section 3.1). */
enum { AFF_NONE, AFF_TEXT, AFF_NUMERIC, AFF_INTEGER, AFF_REAL };

struct sqlcol {
	char *name, *decl;
	int json, aff, generated;
};

struct stcache {
	char *sql;
	sqlite3_stmt *st;
};

struct sqlstore {
	char *db, *table, *key, *rev, *type;
	sqlite3 *h;		/* for apply, get, count; fetch opens its own */
	struct sqlcol *cols;	/* the table's, from its last reading */
	size_t ncols, capcols;
	int kc, rc;		/* key and rev columns in cols, or -1 */
	struct stcache *sc;	/* the statements of the batch in flight */
	size_t nsc, capsc;
};

/* A value to bind: kind is SQLITE_NULL, _INTEGER, _FLOAT, _TEXT or _BLOB. */
struct bval {
	int kind;
	long long i;
	double d;
	const char *p;
	size_t n;
};

static const struct bval nullval = { SQLITE_NULL, 0, 0, NULL, 0 };

static void cols_clear(struct sqlstore *q);

static void
sql_free(struct sqlstore *q)
{
	if (!q)
		return;
	/* Every statement was finalized at the end of its batch. */
	sqlite3_close(q->h);
	cols_clear(q);
	free(q->cols);
	free(q->sc);
	free(q->db);
	free(q->table);
	free(q->key);
	free(q->rev);
	free(q->type);
	free(q);
}

static int
sql_open(struct store *s, const char *arg)
{
	struct sqlstore *q = xcalloc(1, sizeof *q);
	const char *qm = strrchr(arg, '?'), *p;

	if (!qm || qm == arg) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": expected sqlite:DB?table=T&key=COL",
		    rd_quote(s->spec, strlen(s->spec)));
		free(q);
		return -1;
	}
	q->db = xmemdup(arg, (size_t)(qm - arg));
	for (p = qm + 1; *p; ) {
		const char *amp = strchr(p, '&'), *eq;
		size_t n = amp ? (size_t)(amp - p) : strlen(p), dlen;
		char **slot = NULL;

		eq = memchr(p, '=', n);
		if (eq) {
			size_t kn = (size_t)(eq - p);

			if (kn == 5 && memcmp(p, "table", 5) == 0) slot = &q->table;
			else if (kn == 3 && memcmp(p, "key", 3) == 0) slot = &q->key;
			else if (kn == 3 && memcmp(p, "rev", 3) == 0) slot = &q->rev;
			else if (kn == 4 && memcmp(p, "type", 4) == 0) slot = &q->type;
		}
		if (!slot || eq + 1 == p + n) {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": unknown or empty parameter "
			    "\"%.*s\" (expected table, key, rev, type)",
			    rd_quote(s->spec, strlen(s->spec)), (int)n, p);
			sql_free(q);
			return -1;
		}
		free(*slot);
		*slot = pct_decode(eq + 1, (size_t)(p + n - eq - 1), &dlen);
		/* A NUL would cut the name SQLite sees short. */
		if (strlen(*slot) != dlen || !utf8_valid(*slot, dlen)) {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": parameter \"%.*s\" holds "
			    "%s once decoded", rd_quote(s->spec, strlen(s->spec)),
			    (int)(eq - p), p, strlen(*slot) != dlen ? "a NUL byte" :
			    "bytes that are not UTF-8");
			sql_free(q);
			return -1;
		}
		p += n + (amp ? 1 : 0);
	}
	if (!q->table || !q->key) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": table= and key= are required",
		    rd_quote(s->spec, strlen(s->spec)));
		sql_free(q);
		return -1;
	}
	s->priv = q;
	return 0;
}

/*
 * A scope: the database's path, canonical, and the table (its '%', '&', '='
 * and control bytes %-encoded); key, rev and type name no other data.
 */
static int
sql_scope(const char *arg, struct sb *out)
{
	struct store tmp;
	struct sqlstore *q;
	const char *p;
	int r;

	memset(&tmp, 0, sizeof tmp);
	tmp.spec = xmalloc(strlen(arg) + sizeof "sqlite:");
	sprintf(tmp.spec, "sqlite:%s", arg);
	r = sql_open(&tmp, arg);
	free(tmp.spec);
	if (r < 0)
		return -1;
	q = tmp.priv;
	if ((r = store_canon_path(q->db, out)) == 0) {
		sb_adds(out, "?table=");
		for (p = q->table; *p; p++)
			if (*p == '%' || *p == '&' || *p == '=' ||
			    (unsigned char)*p < 0x20)
				sb_addf(out, "%%%02X", (unsigned char)*p);
			else
				sb_addc(out, *p);
	}
	sql_free(q);
	return r;
}

static void
quote_ident(struct sb *out, const char *id)
{
	sb_addc(out, '"');
	for (; *id; id++) {
		if (*id == '"')
			sb_addc(out, '"');
		sb_addc(out, *id);
	}
	sb_addc(out, '"');
}


/* The same for a name of n bytes, which holds no NUL. */
static void
quote_identn(struct sb *out, const char *id, size_t n)
{
	size_t i;

	sb_addc(out, '"');
	for (i = 0; i < n; i++) {
		if (id[i] == '"')
			sb_addc(out, '"');
		sb_addc(out, id[i]);
	}
	sb_addc(out, '"');
}

static const char *
store_type(const struct sqlstore *q)
{
	return q->type ? q->type : q->table;
}

/* Equal under SQLite's identifier rule: ASCII letters fold, nothing else. */
static int
ascii_ieq(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return 0;
	for (i = 0; i < an; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return 0;
	}
	return 1;
}

/* Column name as SQLite resolves it: in any ASCII case. */
static int
column_index(sqlite3_stmt *st, const char *name)
{
	int i, n = sqlite3_column_count(st);
	const char *cn;

	for (i = 0; i < n; i++) {
		cn = sqlite3_column_name(st, i);
		if (ascii_ieq(cn, strlen(cn), name, strlen(name)))
			return i;
	}
	return -1;
}

/* "JSON", or a type that begins with the word JSON ("JSON TEXT"). */
static int
is_json_decl(const char *decl)
{
	return decl && strlen(decl) >= 4 && ascii_ieq(decl, 4, "JSON", 4) &&
	    (decl[4] == '\0' || decl[4] == ' ');
}

/* The value of column i as JSON, in the arena. */
static int
column_value(struct arena *a, sqlite3_stmt *st, int i, struct json *out,
    struct sb *tmp)
{
	const char *text;
	char num[40];
	int n;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		n = snprintf(num, sizeof num, "%lld",
		    (long long)sqlite3_column_int64(st, i));
		*out = json_number_lit(a, num, (size_t)n);
		return 0;
	case SQLITE_FLOAT:
		if (json_format_double(num, sizeof num,
		    sqlite3_column_double(st, i)) < 0) {
			rd_seterr(RD_EXIT_DATA, "not a finite number");
			return -1;
		}
		*out = json_number_lit(a, num, strlen(num));
		return 0;
	case SQLITE_TEXT:
		text = (const char *)sqlite3_column_text(st, i);
		n = sqlite3_column_bytes(st, i);
		if (!utf8_valid(text, (size_t)n)) {
			rd_seterr(RD_EXIT_DATA, "invalid UTF-8");
			return -1;
		}
		if (is_json_decl(sqlite3_column_decltype(st, i))) {
			char *copy = arena_memdup(a, text, (size_t)n);

			if (json_parse(a, copy, (size_t)n, out, NULL) < 0) {
				rd_prefixerr("JSON column: ");
				return -1;
			}
			return 0;
		}
		*out = json_string(a, text, (size_t)n);
		return 0;
	case SQLITE_BLOB: {
		const unsigned char *b = sqlite3_column_blob(st, i);
		struct json_member *m = arena_alloc(a, sizeof *m);

		n = sqlite3_column_bytes(st, i);
		sb_reset(tmp);
		base64_encode(tmp, b, (size_t)n);
		m->name = "$bytes";
		m->namelen = 6;
		m->value = json_string(a, tmp->buf, tmp->len);
		out->type = JSON_OBJECT;
		out->len = 1;
		out->u.members = m;
		return 0;
	}
	default:
		out->type = JSON_NULL;
		out->len = 0;
		out->u.s = NULL;
		return 0;
	}
}

/* A key or rev: integer or text, copied into the arena. */
static int
text_of(struct arena *a, sqlite3_stmt *st, int i, const char **s, size_t *n)
{
	char num[32];
	int len;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		len = snprintf(num, sizeof num, "%lld",
		    (long long)sqlite3_column_int64(st, i));
		*s = arena_memdup(a, num, (size_t)len);
		*n = (size_t)len;
		return 0;
	case SQLITE_TEXT:
		*n = (size_t)sqlite3_column_bytes(st, i);
		*s = arena_memdup(a, sqlite3_column_text(st, i), *n);
		return utf8_valid(*s, *n) ? 0 : -1;
	default:
		return -1;
	}
}

/*
 * The record of st's current row (key column kc, rev column rc or -1), every
 * string in the arena, since a column's text dies with its statement.  The
 * caller sets rec->type.  where names the row in messages ("row 12").
 */
static int
row_record(const struct sqlstore *q, struct arena *a, sqlite3_stmt *st,
    int kc, int rc, const char *where, struct record *rec, struct sb *tmp)
{
	int i, ncol = sqlite3_column_count(st);
	struct json_member *m;
	struct json *fields;
	size_t nf = 0;

	memset(rec, 0, sizeof *rec);
	if (text_of(a, st, kc, &rec->key, &rec->keylen) < 0 ||
	    rec->keylen == 0) {
		rd_seterr(RD_EXIT_DATA, "%s: table \"%s\" %s: key is not a "
		    "non-empty text or integer", q->db, q->table, where);
		return -1;
	}
	if (rc < 0 || sqlite3_column_type(st, rc) == SQLITE_NULL) {
		/* A row recdelta never wrote: a rev a change can name. */
		rec->rev = NO_REV;
		rec->revlen = strlen(NO_REV);
	} else if (text_of(a, st, rc, &rec->rev, &rec->revlen) < 0) {
		rd_seterr(RD_EXIT_DATA, "%s: table \"%s\" %s: rev is not text "
		    "or an integer", q->db, q->table, where);
		return -1;
	}
	m = arena_alloc(a, (size_t)ncol * sizeof *m);
	for (i = 0; i < ncol; i++) {
		const char *name;

		if (i == kc || i == rc)
			continue;
		name = sqlite3_column_name(st, i);
		m[nf].namelen = strlen(name);
		m[nf].name = arena_memdup(a, name, m[nf].namelen);
		if (column_value(a, st, i, &m[nf].value, tmp) < 0) {
			rd_prefixerr("%s: table \"%s\" %s column \"%s\": ",
			    q->db, q->table, where, name);
			return -1;
		}
		nf++;
	}
	fields = arena_alloc(a, sizeof *fields);
	fields->type = JSON_OBJECT;
	fields->len = nf;
	fields->u.members = m;
	rec->fields = fields;
	return 0;
}

/*
 * A store that does not exist: its database file (nodb), or its table.  A
 * target read before its first write is empty (0); a source is an error.
 */
static int
missing(const struct sqlstore *q, const struct fetch_opts *o, int nodb)
{
	if (o && o->missing_ok)
		return 0;
	if (nodb)
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, strerror(ENOENT));
	else
		rd_seterr(RD_EXIT_RUNTIME, "%s: no table \"%s\"", q->db,
		    rd_quote(q->table, strlen(q->table)));
	return -1;
}

/*
 * A connection for reading an existing database, which it never creates.
 * Read-write when we may, though we only read: a writer killed mid-
 * transaction leaves a hot journal that only a read-write connection can
 * roll back.
 */
static int
open_read(const struct sqlstore *q, sqlite3 **db)
{
	if (sqlite3_open_v2(q->db, db, access(q->db, W_OK) == 0 ?
	    SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db,
		    *db ? sqlite3_errmsg(*db) : "cannot open");
		return -1;
	}
	return 0;
}

/* 1 when the database holds the store's table (or view), 0 if not, -1. */
static int
table_present(const struct sqlstore *q, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* As SQLite resolves a table's name: in any ASCII case. */
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = ?1 "
	    "COLLATE NOCASE AND type IN ('table', 'view')", -1, &st, NULL) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(st, 1, q->table, -1, SQLITE_STATIC) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW;
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
	return -1;
}

static int
sql_exists(struct store *s)
{
	struct sqlstore *q = s->priv;
	sqlite3 *db = NULL;
	int r;

	if (access(q->db, F_OK) < 0 && errno == ENOENT) {
		missing(q, NULL, 1);
		return 0;
	}
	if (open_read(q, &db) < 0)
		r = -1;
	else if ((r = table_present(q, db)) == 0)
		missing(q, NULL, 0);
	sqlite3_close(db);
	return r;
}

/*
 * A window read by SQLite (fetch --window on a column of the table): a
 * WHERE clause that keeps a superset of the window's rows, so that a run
 * of windows reads each row a few times at most rather than once a window,
 * and through an index on the column when there is one.  A text value that
 * begins with a date is kept when that date is within a day of the window
 * (a zone's offset is less than a day): from the date of FROM - 1 day, up
 * to the date of TO + 1 day, or the next one when that is not midnight (a
 * value that begins with a date sorts from that date, as a string, and
 * before the next).  Every other value but NULL (a number, a tagged value
 * held as JSON text, a word) is kept too, since it sorts before "/\xff" or
 * from ":" on (a bound value, which a column of numeric affinity cannot
 * make a number of, as it would "0"); fetch_wants() then decides on every
 * kept row exactly as on a whole read, counting what reads as no time.
 * Not read: NULL, which is outside every window, and a value that begins
 * with a digit but no date, which is too, unreported.  With daily windows
 * a row is read by its own window and the two beside it.
 */

/* The column that holds field name: exactly that name, not the key or rev. */
static int
window_column(sqlite3_stmt *st, const char *name, int kc, int rc)
{
	int i, n = sqlite3_column_count(st);

	for (i = 0; i < n; i++)
		if (i != kc && i != rc &&
		    strcmp(sqlite3_column_name(st, i), name) == 0)
			return i;
	return -1;
}

/* The date of instant t, "YYYY-MM-DD", or of the next day (up). */
static void
window_date(long long t, int up, char *buf, size_t size)
{
	time_t tt;
	struct tm tm;

	if (up && (t % 86400 + 86400) % 86400 != 0)
		t += 86400;
	tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 0 ||
	    tm.tm_year + 1900 > 9999 ||
	    strftime(buf, size, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, size, "%s", t < 0 ? "/\xff" : ":");
}

static int
window_select(const struct sqlstore *q, sqlite3 *db,
    const struct fetch_opts *o, struct sb *sql, sqlite3_stmt **st)
{
	char lo[32], hi[32];

	window_date(o->wfrom - 86400, 0, lo, sizeof lo);
	window_date(o->wto + 86400, 1, hi, sizeof hi);
	sb_reset(sql);
	sb_adds(sql, "SELECT * FROM ");
	quote_ident(sql, q->table);
	sb_adds(sql, " WHERE (");
	quote_ident(sql, o->wfield);
	sb_adds(sql, " >= ?1 AND ");
	quote_ident(sql, o->wfield);
	sb_adds(sql, " < ?2) OR ");
	quote_ident(sql, o->wfield);
	sb_adds(sql, " < ?3 OR ");
	quote_ident(sql, o->wfield);
	sb_adds(sql, " >= ':'");
	if (sqlite3_prepare_v2(db, sql->buf, -1, st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(*st, 1, lo, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_text(*st, 2, hi, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_text(*st, 3, "/\xff", -1, SQLITE_STATIC) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/*
 * After a windowed read that saw no time: whether the column holds one
 * outside the window, so that window_tally_check() tells a window with
 * nothing in it from a field that holds no time at all (misspelt), as it
 * does after a whole read.  Reads the rows whose value may begin with a
 * date until one does; the NULLs are counted as missing.
 */
static int
window_timed_elsewhere(const struct sqlstore *q, sqlite3 *db,
    const struct fetch_opts *o)
{
	sqlite3_stmt *st = NULL;
	struct sb sql;
	long long t;
	int rc;

	sb_init(&sql, 128);
	sb_adds(&sql, "SELECT ");
	quote_ident(&sql, o->wfield);
	sb_adds(&sql, " FROM ");
	quote_ident(&sql, q->table);
	sb_adds(&sql, " WHERE ");
	quote_ident(&sql, o->wfield);
	sb_adds(&sql, " >= '0' AND ");
	quote_ident(&sql, o->wfield);
	sb_adds(&sql, " < ':'");
	if (sqlite3_prepare_v2(db, sql.buf, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (fetch_window_instant((const char *)sqlite3_column_text(st,
		    0), (size_t)sqlite3_column_bytes(st, 0), &t) == 0) {
			o->tally->timed++;
			break;
		}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (o->tally->timed == 0) {
		sb_reset(&sql);
		sb_adds(&sql, "SELECT count(*) FROM ");
		quote_ident(&sql, q->table);
		sb_adds(&sql, " WHERE ");
		quote_ident(&sql, o->wfield);
		sb_adds(&sql, " IS NULL");
		if (sqlite3_prepare_v2(db, sql.buf, -1, &st, NULL) !=
		    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
			goto fail;
		o->tally->missing += (unsigned long)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sb_release(&sql);
	return 0;
fail:
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sb_release(&sql);
	return -1;
}

static int
sql_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct sqlstore *q = s->priv;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct sb sql, line, tmp;
	struct arena a;
	const char *type;
	int kc, rc_, rc, wc = -1, ret = -1;
	unsigned long row = 0;

	/*
	 * -t selects, as on every store: the table's type, or nothing, which
	 * is most likely a type meant to be named by type=.
	 */
	type = store_type(q);
	if (o && !fetch_wants_type(o, type, strlen(type))) {
		rd_warn("warning: %s: its records are of type \"%s\", which no "
		    "-t names: none read (a table's type is named by type=)",
		    s->spec, rd_quote(type, strlen(type)));
		return 0;
	}
	sb_init(&sql, 128);
	sb_init(&line, 1024);
	sb_init(&tmp, 256);
	arena_init(&a);
	/*
	 * No database file (none is created by reading), or no such table in
	 * it: a target not written yet, or a missing source.
	 */
	if (access(q->db, F_OK) < 0 && errno == ENOENT) {
		ret = missing(q, o, 1);
		goto out;
	}
	if (open_read(q, &db) < 0 || (rc = table_present(q, db)) < 0)
		goto out;
	if (rc == 0) {
		ret = missing(q, o, 0);
		goto out;
	}
	sb_adds(&sql, "SELECT * FROM ");
	quote_ident(&sql, q->table);
	if (sqlite3_prepare_v2(db, sql.buf, -1, &st, NULL) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
		goto out;
	}
	if ((kc = column_index(st, q->key)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: table \"%s\" has no column \"%s\"",
		    q->db, q->table, q->key);
		goto out;
	}
	rc_ = column_index(st, q->rev ? q->rev : "rev");
	if (q->rev && rc_ < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: table \"%s\" has no column \"%s\"",
		    q->db, q->table, q->rev);
		goto out;
	}
	if (o && o->wfield && (wc = window_column(st, o->wfield, kc, rc_)) >= 0) {
		sqlite3_finalize(st);
		st = NULL;
		if (window_select(q, db, o, &sql, &st) < 0)
			goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct record rec;
		struct rline l;
		char where[32];

		row++;
		arena_reset(&a);
		snprintf(where, sizeof where, "row %lu", row);
		if (row_record(q, &a, st, kc, rc_, where, &rec, &tmp) < 0)
			goto out;
		rec.type = type;
		rec.typelen = strlen(type);
		if (!fetch_wants(o, &rec))
			continue;
		sb_reset(&line);
		stream_write_record(&line, &rec);
		l = (struct rline){
			.text = line.buf, .len = line.len, .src = q->db,
			.lineno = row, .offset = -1, .rec = &rec,
		};
		if (sink->put(sink->ctx, &l) < 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
		goto out;
	}
	if (wc >= 0) {
		/* What the window cost: the rows SQLite handed over. */
		sb_reset(&tmp);
		sb_adds(&tmp, "\"table\":");
		json_write_string(&tmp, q->table, strlen(q->table));
		sb_addf(&tmp, ",\"window_field\":");
		json_write_string(&tmp, o->wfield, strlen(o->wfield));
		sb_addf(&tmp, ",\"rows_read\":%lu", row);
		rd_log("info", "sqlite: window read by a WHERE clause", tmp.buf);
	}
	if (wc >= 0 && o->tally && o->tally->timed == 0 &&
	    window_timed_elsewhere(q, db, o) < 0)
		goto out;
	ret = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	arena_release(&a);
	sb_release(&sql);
	sb_release(&line);
	sb_release(&tmp);
	return ret;
}

/* Writing */

static int
contains_ci(const char *s, const char *word)
{
	size_t n = strlen(word), len = strlen(s), i;

	for (i = 0; i + n <= len; i++)
		if (ascii_ieq(s + i, n, word, n))
			return 1;
	return 0;
}

/* A declared type's affinity, by SQLite's rules in their order. */
static int
affinity(const char *decl)
{
	if (contains_ci(decl, "INT"))
		return AFF_INTEGER;
	if (contains_ci(decl, "CHAR") || contains_ci(decl, "CLOB") ||
	    contains_ci(decl, "TEXT"))
		return AFF_TEXT;
	if (!*decl || contains_ci(decl, "BLOB"))
		return AFF_NONE;
	if (contains_ci(decl, "REAL") || contains_ci(decl, "FLOA") ||
	    contains_ci(decl, "DOUB"))
		return AFF_REAL;
	return AFF_NUMERIC;
}

static int
sqlerr(struct sqlstore *q)
{
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(q->h));
	return -1;
}

/*
 * The connection: 1 when open, 0 when the database does not exist and
 * create is not set, -1 with a message.
 */
static int
conn(struct sqlstore *q, int create)
{
	struct stat sb;

	if (q->h)
		return 1;
	if (!create && stat(q->db, &sb) < 0 && errno == ENOENT)
		return 0;
	if (sqlite3_open_v2(q->db, &q->h, SQLITE_OPEN_READWRITE |
	    (create ? SQLITE_OPEN_CREATE : 0), NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(q->h, 5000) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db,
		    q->h ? sqlite3_errmsg(q->h) : "cannot open");
		sqlite3_close(q->h);
		q->h = NULL;
		return -1;
	}
	return 1;
}

/*
 * The prepared statement for sql, reset, from the batch's cache; NULL with
 * SQLite's code in *rc.
 */
static sqlite3_stmt *
stmt(struct sqlstore *q, const char *sql, int *rc)
{
	sqlite3_stmt *st;
	size_t i;

	for (i = 0; i < q->nsc; i++)
		if (strcmp(q->sc[i].sql, sql) == 0) {
			/* An error it returned was handled when it happened. */
			(void)sqlite3_reset(q->sc[i].st);
			(void)sqlite3_clear_bindings(q->sc[i].st);
			return q->sc[i].st;
		}
	if ((*rc = sqlite3_prepare_v2(q->h, sql, -1, &st, NULL)) != SQLITE_OK)
		return NULL;
	if (q->nsc == q->capsc) {
		q->capsc = q->capsc ? 2 * q->capsc : 8;
		q->sc = xreallocarray(q->sc, q->capsc, sizeof *q->sc);
	}
	q->sc[q->nsc].sql = xstrdup(sql);
	q->sc[q->nsc++].st = st;
	return st;
}

static void
cache_clear(struct sqlstore *q)
{
	size_t i;

	for (i = 0; i < q->nsc; i++) {
		sqlite3_finalize(q->sc[i].st);
		free(q->sc[i].sql);
	}
	q->nsc = 0;
}

/*
 * Run a statement without parameters or rows: SQLITE_OK, or SQLite's code,
 * its message still pending.
 */
static int
run(struct sqlstore *q, const char *sql)
{
	sqlite3_stmt *st;
	int rc;

	if (!(st = stmt(q, sql, &rc)))
		return rc;
	if ((rc = sqlite3_step(st)) != SQLITE_DONE && rc != SQLITE_ROW)
		return rc;
	return sqlite3_reset(st);
}

static void
cols_clear(struct sqlstore *q)
{
	size_t i;

	for (i = 0; i < q->ncols; i++) {
		free(q->cols[i].name);
		free(q->cols[i].decl);
	}
	q->ncols = 0;
	q->kc = q->rc = -1;
}

static struct sqlcol *
cols_add(struct sqlstore *q, const char *name, size_t n, const char *decl,
    int generated)
{
	const char *rev = q->rev ? q->rev : "rev";
	struct sqlcol *c;

	if (q->ncols == q->capcols) {
		q->capcols = q->capcols ? 2 * q->capcols : 16;
		q->cols = xreallocarray(q->cols, q->capcols, sizeof *q->cols);
	}
	c = &q->cols[q->ncols];
	c->name = xmemdup(name, n);
	c->decl = xstrdup(decl);
	c->json = is_json_decl(decl);
	c->aff = affinity(decl);
	c->generated = generated;
	if (ascii_ieq(c->name, n, q->key, strlen(q->key)))
		q->kc = (int)q->ncols;
	if (ascii_ieq(c->name, n, rev, strlen(rev)))
		q->rc = (int)q->ncols;
	q->ncols++;
	return c;
}

/* Read the table's columns; none when it does not exist.  0, or -1. */
static int
load_cols(struct sqlstore *q)
{
	sqlite3_stmt *st = NULL;
	int rc;

	cols_clear(q);
	if (sqlite3_prepare_v2(q->h, "SELECT name, type, hidden FROM "
	    "pragma_table_xinfo(?1)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, q->table, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlerr(q);
		sqlite3_finalize(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *decl = (const char *)sqlite3_column_text(st, 1);

		if (!name) {
			rc = SQLITE_NOMEM;
			break;
		}
		cols_add(q, name, strlen(name), decl ? decl : "",
		    sqlite3_column_int(st, 2) != 0);
	}
	if (rc != SQLITE_DONE) {
		sqlerr(q);
		sqlite3_finalize(st);
		cols_clear(q);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}



/*
 * After SQLite refused a statement of change c: fail c and go on (0) when
 * the refusal is the change's (a constraint, a mismatch, a view), else -1
 * with a message: the transaction is lost or the database failed.
 */
static int
sqlfail(struct sqlstore *q, struct change *c, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_ERROR:
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		if (!sqlite3_get_autocommit(q->h)) {
			change_fail(c, "sqlite", "%s", sqlite3_errmsg(q->h));
			return 0;
		}
		break;
	}
	return sqlerr(q);
}

/* The int64 that s is the "%lld" text of; -1 when it is none. */
static int
int64_text(const char *s, size_t n, long long *out)
{
	char buf[24], back[24];
	char *end;
	long long v;

	if (n == 0 || n >= sizeof buf || memchr(s, '\0', n))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || *end ||
	    (size_t)snprintf(back, sizeof back, "%lld", v) != n ||
	    memcmp(back, buf, n) != 0)
		return -1;
	*out = v;
	return 0;
}

/* The int64 a canonical number ("0", "[-]DIGITSeEXP") is; -1 if none. */
static int
canon_int64(const char *s, long long *out)
{
	unsigned long long u = 0, lim;
	long e;
	char *end;
	int neg = 0, nd = 0;

	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (*s == '-') {
		neg = 1;
		s++;
	}
	for (; *s >= '0' && *s <= '9'; s++) {
		if (++nd > 19)
			return -1;
		u = u * 10 + (unsigned)(*s - '0');
	}
	if (*s != 'e')
		return -1;
	errno = 0;
	e = strtol(s + 1, &end, 10);
	if (*end || errno || e < 0 || nd + e > 19)
		return -1;
	while (e-- > 0)
		u *= 10;
	lim = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
	if (u > lim)
		return -1;
	*out = !neg ? (long long)u : u == lim ? LLONG_MIN : -(long long)u;
	return 0;
}

/*
 * A number as a column holds it, by how it is written, so that what a fetch
 * gave back is bound as it was read: an integer literal is an int64, and a
 * literal with a fraction or an exponent (30.0, 1e300, -0.0) a double whose
 * text has the same decimal value.  -1 when the literal is neither: an
 * integer beyond 64 bits, a fraction a double cannot hold exactly.
 */
static int
num_value(const struct json *v, struct bval *b, struct sb *tmp)
{
	char fmt[40];

	if (json_number_is_integer(v->u.s, v->len)) {
		sb_reset(tmp);
		if (json_number_canon(tmp, v->u.s, v->len) < 0 ||
		    canon_int64(tmp->buf, &b->i) < 0)
			return -1;
		b->kind = SQLITE_INTEGER;
		return 0;
	}
	b->d = json_number_double(v);
	if (json_format_double(fmt, sizeof fmt, b->d) < 0 ||
	    !json_number_equal(fmt, strlen(fmt), v->u.s, v->len))
		return -1;
	b->kind = SQLITE_FLOAT;
	return 0;
}

/* True when a REAL column keeps i's decimal value. */
static int
int_is_double(long long i)
{
	char fmt[40], lit[24];
	int n = snprintf(lit, sizeof lit, "%lld", i);

	return json_format_double(fmt, sizeof fmt, (double)i) == 0 &&
	    json_number_equal(fmt, strlen(fmt), lit, (size_t)n);
}

static int
sql_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	    c == '\r';
}

/*
 * True when numeric affinity might turn text s into a number.  A superset of
 * SQLite's rule, so that what it converts is always refused: white space
 * around, a sign, digits with a point, an exponent even unfinished, and
 * also hexadecimal, "inf" and "nan", which some versions may read.
 */
static int
looks_numeric(const char *s, size_t n)
{
	size_t i = 0, j = n, digits = 0;

	while (i < j && sql_space((unsigned char)s[i]))
		i++;
	while (j > i && sql_space((unsigned char)s[j - 1]))
		j--;
	if (i < j && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i == j)
		return 0;
	if (ascii_ieq(s + i, j - i, "inf", 3) ||
	    ascii_ieq(s + i, j - i, "infinity", 8) ||
	    ascii_ieq(s + i, j - i, "nan", 3))
		return 1;
	if (j - i > 2 && s[i] == '0' && (s[i + 1] | 32) == 'x') {
		for (i += 2; i < j; i++) {
			int c = s[i] | 32;

			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return 0;
		}
		return 1;
	}
	for (; i < j && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < j && s[i] == '.')
		for (i++; i < j && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (!digits)
		return 0;
	if (i < j && (s[i] | 32) == 'e') {
		i++;
		if (i < j && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < j && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == j;
}

/* {"$bytes":B64} with canonical base64: 1, its bytes in out. */
static int
is_bytes(const struct json *v, struct sb *out)
{
	const struct json *b;

	if (v->type != JSON_OBJECT || v->len != 1 ||
	    !(b = json_get(v, "$bytes")) || b->type != JSON_STRING)
		return 0;
	sb_reset(out);
	return base64_decode(out, b->u.s, b->len) == 0;
}

/* True when only a JSON column can hold v. */
static int
needs_json(const struct json *v, struct sb *tmp)
{
	switch (v->type) {
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_ARRAY:
		return 1;
	case JSON_OBJECT:
		return !is_bytes(v, tmp);
	default:
		return 0;
	}
}

static int
same_type(const struct sqlstore *q, const struct change *c)
{
	const char *t = store_type(q);

	return strlen(t) == c->typelen && memcmp(t, c->type, c->typelen) == 0;
}

/* The first non-null value of field m in the batch after change ci. */
static const struct json *
later_value(const struct sqlstore *q, const struct change *v, size_t n,
    size_t ci, const struct json_member *m)
{
	const struct json *x;
	size_t i;

	for (i = ci + 1; i < n; i++) {
		if (v[i].op == RD_OP_DELETE || !v[i].fields ||
		    v[i].fields->type != JSON_OBJECT || !same_type(q, &v[i]))
			continue;
		x = json_getn(v[i].fields, m->name, m->namelen);
		if (x && x->type != JSON_NULL)
			return x;
	}
	return NULL;
}

/* A batch's working memory. */
struct wctx {
	struct arena a;			/* one change's bound text and bytes */
	struct sb sql, tmp;
	struct bval *bv;		/* per field of the change */
	int *colof;			/* its column, -1 new, -2 generated */
	int *newjson;			/* a new column is JSON */
	size_t capf;
	const struct bval **colv;	/* per column */
	size_t capc;
	long long seq;			/* the last rev handed out (see seq_load) */
};

static void
wctx_init(struct wctx *w)
{
	memset(w, 0, sizeof *w);
	arena_init(&w->a);
	sb_init(&w->sql, 256);
	sb_init(&w->tmp, 256);
}

static void
wctx_release(struct wctx *w)
{
	arena_release(&w->a);
	sb_release(&w->sql);
	sb_release(&w->tmp);
	free(w->bv);
	free(w->colof);
	free(w->newjson);
	free(w->colv);
}

/*
 * The value field m of change c binds in a column (JSON or not, with an
 * affinity), or -1 with c refused.
 */
static int
field_value(struct wctx *w, struct change *c, const struct json_member *m,
    int json, int aff, const char *decl, struct bval *b)
{
	const struct json *v = &m->value;
	const char *f = rd_quote(m->name, m->namelen);
	int numeric = aff == AFF_NUMERIC || aff == AFF_INTEGER || aff == AFF_REAL;

	*b = nullval;
	if (v->type == JSON_NULL)
		return 0;
	if (v->type == JSON_NUMBER && (!json || numeric)) {
		/* A numeric JSON column would read JSON text as a number. */
		if (num_value(v, b, &w->tmp) < 0)
			return change_fail(c, "inexact", "value of \"%s\" cannot be stored "
			    "exactly in column \"%s\"", f, f);
	} else if (json) {
		sb_reset(&w->tmp);
		json_write(&w->tmp, v, 0);
		b->kind = SQLITE_TEXT;
		b->p = arena_memdup(&w->a, w->tmp.buf, w->tmp.len);
		b->n = w->tmp.len;
	} else if (v->type == JSON_STRING) {
		b->kind = SQLITE_TEXT;
		b->p = v->u.s;
		b->n = v->len;
	} else if (is_bytes(v, &w->tmp)) {
		b->kind = SQLITE_BLOB;
		b->p = arena_memdup(&w->a, w->tmp.buf, w->tmp.len);
		b->n = w->tmp.len;
	} else {
		return change_fail(c, "type", "field \"%s\" needs a JSON column", f);
	}
	if (aff == AFF_TEXT &&
	    (b->kind == SQLITE_INTEGER || b->kind == SQLITE_FLOAT))
		return change_fail(c, "affinity", "number value of \"%s\" would become "
		    "text in column \"%s\" (declared \"%s\")", f, f,
		    rd_quote(decl, strlen(decl)));
	if (numeric && b->kind == SQLITE_TEXT && looks_numeric(b->p, b->n))
		return change_fail(c, "affinity", "string value of \"%s\" would become "
		    "a number in column \"%s\" (declared \"%s\")", f, f,
		    rd_quote(decl, strlen(decl)));
	if (aff == AFF_REAL && b->kind == SQLITE_INTEGER && !int_is_double(b->i))
		return change_fail(c, "affinity", "value of \"%s\" would be rounded in "
		    "column \"%s\" (declared \"%s\")", f, f,
		    rd_quote(decl, strlen(decl)));
	return 0;
}

/*
 * Map the fields of change ci to columns, new ones included, and compute
 * what each binds: 0, or -1 with the change refused.
 */
static int
plan_fields(struct sqlstore *q, struct wctx *w, struct change *v, size_t n,
    size_t ci)
{
	struct change *c = &v[ci];
	const struct json *f = c->fields;
	size_t j, k, i, nf;

	if (f && f->type != JSON_OBJECT)
		return change_fail(c, "type", "fields is not an object");
	nf = f ? f->len : 0;
	if (nf > w->capf) {
		w->capf = nf;
		w->bv = xreallocarray(w->bv, nf, sizeof *w->bv);
		w->colof = xreallocarray(w->colof, nf, sizeof *w->colof);
		w->newjson = xreallocarray(w->newjson, nf, sizeof *w->newjson);
	}
	for (j = 0; j < nf; j++) {
		const struct json_member *m = &f->u.members[j];
		const char *name = rd_quote(m->name, m->namelen), *decl;
		int exact = -1, near = -1, json, aff;

		if (memchr(m->name, '\0', m->namelen))
			return change_fail(c, "field", "field name \"%s\" holds a NUL "
			    "byte", name);
		for (i = 0; i < q->ncols; i++) {
			const char *cn = q->cols[i].name;

			if (strlen(cn) == m->namelen &&
			    memcmp(cn, m->name, m->namelen) == 0) {
				exact = (int)i;
				break;
			}
			if (ascii_ieq(cn, strlen(cn), m->name, m->namelen))
				near = (int)i;
		}
		if (exact >= 0 && (exact == q->kc || exact == q->rc))
			return change_fail(c, "field", "field \"%s\" has the name of the "
			    "%s column", name, exact == q->kc ? "key" : "rev");
		if (exact < 0 && near >= 0)
			return change_fail(c, "field", "field \"%s\" differs only in case "
			    "from column \"%s\"", name, rd_quote(q->cols[near].name,
			    strlen(q->cols[near].name)));
		for (k = 0; exact < 0 && k < j; k++)
			if (w->colof[k] == -1 && ascii_ieq(f->u.members[k].name,
			    f->u.members[k].namelen, m->name, m->namelen))
				return change_fail(c, "field", "fields \"%s\" and \"%s\" "
				    "differ only in case", name,
				    rd_quote(f->u.members[k].name,
				    f->u.members[k].namelen));
		w->colof[j] = exact;
		w->newjson[j] = 0;
		if (exact >= 0 && q->cols[exact].generated) {
			w->colof[j] = -2;
			continue;
		}
		if (exact >= 0) {
			json = q->cols[exact].json;
			aff = q->cols[exact].aff;
			decl = q->cols[exact].decl;
		} else {
			const struct json *x = m->value.type != JSON_NULL ?
			    &m->value : later_value(q, v, n, ci, m);

			json = w->newjson[j] = x && needs_json(x, &w->tmp);
			aff = json ? AFF_TEXT : AFF_NONE;
			decl = json ? "JSON TEXT" : "";
		}
		if (field_value(w, c, m, json, aff, decl, &w->bv[j]) < 0)
			return -1;
	}
	return 0;
}

static int
bind_key(sqlite3_stmt *st, const char *key, size_t keylen, const long long *ki)
{
	int rc = sqlite3_bind_text64(st, 1, key, keylen, SQLITE_STATIC,
	    SQLITE_UTF8);

	if (rc == SQLITE_OK)
		rc = ki ? sqlite3_bind_int64(st, 2, *ki) : sqlite3_bind_null(st, 2);
	return rc;
}

static int
bind_val(sqlite3_stmt *st, int i, const struct bval *b)
{
	switch (b->kind) {
	case SQLITE_INTEGER:
		return sqlite3_bind_int64(st, i, b->i);
	case SQLITE_FLOAT:
		return sqlite3_bind_double(st, i, b->d);
	case SQLITE_TEXT:
		return sqlite3_bind_text64(st, i, b->p ? b->p : "", b->n,
		    SQLITE_STATIC, SQLITE_UTF8);
	case SQLITE_BLOB:
		return sqlite3_bind_blob64(st, i, b->p ? b->p : "", b->n,
		    SQLITE_STATIC);
	default:
		return sqlite3_bind_null(st, i);
	}
}

/* " WHERE KEY = ?1 OR KEY = ?2": the key as text, or as the integer it is. */
static void
add_where(struct sqlstore *q, struct sb *sql)
{
	sb_adds(sql, " WHERE ");
	quote_ident(sql, q->key);
	sb_adds(sql, " = ?1 OR ");
	quote_ident(sql, q->key);
	sb_adds(sql, " = ?2");
}

/* The row a change is guarded against. */
struct guard {
	int nrows, keyok, revtype;
	const char *rev;	/* its rev as text, in the batch's arena */
	size_t revlen;
	long long irev;
};

static int
read_guard(struct sqlstore *q, struct wctx *w, struct change *c,
    const long long *ki, struct guard *g)
{
	sqlite3_stmt *st;
	const char *k;
	size_t kl;
	int rc;

	memset(g, 0, sizeof *g);
	sb_reset(&w->sql);
	sb_adds(&w->sql, "SELECT ");
	quote_ident(&w->sql, q->cols[q->rc].name);
	sb_adds(&w->sql, ", ");
	quote_ident(&w->sql, q->key);
	sb_adds(&w->sql, " FROM ");
	quote_ident(&w->sql, q->table);
	add_where(q, &w->sql);
	if (!(st = stmt(q, w->sql.buf, &rc)))
		return sqlfail(q, c, rc) < 0 ? -1 : 1;
	if ((rc = bind_key(st, c->key, c->keylen, ki)) != SQLITE_OK)
		return sqlfail(q, c, rc) < 0 ? -1 : 1;
	while (g->nrows < 2 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (g->nrows++)
			continue;
		g->revtype = sqlite3_column_type(st, 0);
		if (g->revtype == SQLITE_INTEGER)
			g->irev = sqlite3_column_int64(st, 0);
		if (g->revtype == SQLITE_INTEGER || g->revtype == SQLITE_TEXT)
			(void)text_of(&w->a, st, 0, &g->rev, &g->revlen);
		g->keyok = text_of(&w->a, st, 1, &k, &kl) == 0 &&
		    kl == c->keylen && memcmp(k, c->key, kl) == 0;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = sqlfail(q, c, rc) < 0 ? -1 : 1;
		(void)sqlite3_reset(st);
		return rc;
	}
	(void)sqlite3_reset(st);
	return 0;
}

/*
 * The rev an update writes, from the row's: 0, or -1 with c refused when the
 * stored rev cannot be advanced.
 */
static int
next_rev(struct change *c, const struct guard *g, long long *next)
{
	long long cur;

	if (g->revtype == SQLITE_NULL) {
		*next = 1;
		return 0;
	}
	if (g->revtype == SQLITE_INTEGER)
		cur = g->irev;
	else if (int64_text(g->rev, g->revlen, &cur) < 0)
		return change_fail(c, "rev", "rev \"%s\" of \"%s\" is not an integer, so "
		    "it cannot be advanced", rd_quote(g->rev, g->revlen),
		    rd_quote(c->key, c->keylen));
	if (cur == LLONG_MAX)
		return change_fail(c, "rev", "rev of \"%s\" cannot be advanced past %lld",
		    rd_quote(c->key, c->keylen), cur);
	*next = cur + 1;
	return 0;
}

/* Build the INSERT or UPDATE of every column; bind it. */
static int
write_stmt(struct sqlstore *q, struct wctx *w, struct change *c,
    const long long *ki, long long rev, sqlite3_stmt **out)
{
	sqlite3_stmt *st;
	size_t i;
	int p, rc;

	sb_reset(&w->sql);
	if (c->op == RD_OP_DELETE) {
		sb_adds(&w->sql, "DELETE FROM ");
		quote_ident(&w->sql, q->table);
	} else if (c->op == RD_OP_CREATE) {
		sb_adds(&w->sql, "INSERT INTO ");
		quote_ident(&w->sql, q->table);
		sb_adds(&w->sql, " (");
		quote_ident(&w->sql, q->key);
		sb_adds(&w->sql, ", ");
		quote_ident(&w->sql, q->cols[q->rc].name);
		for (i = 0; i < q->ncols; i++)
			if ((int)i != q->kc && (int)i != q->rc &&
			    !q->cols[i].generated) {
				sb_adds(&w->sql, ", ");
				quote_ident(&w->sql, q->cols[i].name);
			}
		sb_adds(&w->sql, ") VALUES (?1, ?3");
		for (i = 0, p = 4; i < q->ncols; i++)
			if ((int)i != q->kc && (int)i != q->rc &&
			    !q->cols[i].generated)
				sb_addf(&w->sql, ", ?%d", p++);
		sb_addc(&w->sql, ')');
	} else {
		sb_adds(&w->sql, "UPDATE ");
		quote_ident(&w->sql, q->table);
		sb_adds(&w->sql, " SET ");
		quote_ident(&w->sql, q->cols[q->rc].name);
		sb_adds(&w->sql, " = ?3");
		for (i = 0, p = 4; i < q->ncols; i++)
			if ((int)i != q->kc && (int)i != q->rc &&
			    !q->cols[i].generated) {
				sb_adds(&w->sql, ", ");
				quote_ident(&w->sql, q->cols[i].name);
				sb_addf(&w->sql, " = ?%d", p++);
			}
	}
	if (c->op != RD_OP_CREATE)
		add_where(q, &w->sql);
	if (!(st = stmt(q, w->sql.buf, &rc)))
		return rc;
	if ((rc = bind_key(st, c->key, c->keylen, ki)) != SQLITE_OK ||
	    (c->op != RD_OP_DELETE &&
	    (rc = sqlite3_bind_int64(st, 3, rev)) != SQLITE_OK))
		return rc;
	if (c->op != RD_OP_DELETE)
		for (i = 0, p = 4; i < q->ncols; i++)
			if ((int)i != q->kc && (int)i != q->rc &&
			    !q->cols[i].generated &&
			    (rc = bind_val(st, p++, w->colv[i] ? w->colv[i] :
			    &nullval)) != SQLITE_OK)
				return rc;
	*out = st;
	return SQLITE_OK;
}

/*
 * Write change c (guarded already) in a savepoint: its new columns, then its
 * row.  0 with the outcome set, or -1 when the batch cannot go on.
 */
static int
write_change(struct sqlstore *q, struct wctx *w, struct change *c,
    const long long *ki, long long rev)
{
	const struct json *f = c->fields;
	sqlite3_stmt *st = NULL;
	size_t j, nf = c->op != RD_OP_DELETE && f ? f->len : 0;
	int rc, altered = 0;

	if ((rc = run(q, "SAVEPOINT recdelta_change")) != SQLITE_OK)
		return sqlerr(q);
	for (j = 0; j < nf && rc == SQLITE_OK; j++) {
		const struct json_member *m = &f->u.members[j];

		if (w->colof[j] != -1)
			continue;
		sb_reset(&w->sql);
		sb_adds(&w->sql, "ALTER TABLE ");
		quote_ident(&w->sql, q->table);
		sb_adds(&w->sql, " ADD COLUMN ");
		quote_identn(&w->sql, m->name, m->namelen);
		if (w->newjson[j])
			sb_adds(&w->sql, " JSON TEXT");
		if ((rc = run(q, w->sql.buf)) == SQLITE_OK) {
			altered = 1;
			cols_add(q, m->name, m->namelen,
			    w->newjson[j] ? "JSON TEXT" : "", 0);
			w->colof[j] = (int)q->ncols - 1;
		}
	}
	if (rc == SQLITE_OK) {
		if (q->ncols > w->capc) {
			w->capc = q->ncols;
			w->colv = xreallocarray(w->colv, w->capc, sizeof *w->colv);
		}
		for (j = 0; j < q->ncols; j++)
			w->colv[j] = NULL;
		for (j = 0; j < nf; j++)
			if (w->colof[j] >= 0)
				w->colv[w->colof[j]] = &w->bv[j];
		rc = write_stmt(q, w, c, ki, rev, &st);
	}
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_DONE)
		rc = sqlite3_reset(st);
	if (rc == SQLITE_OK && sqlite3_changes(q->h) != 1) {
		change_fail(c, "sqlite", "%d rows changed instead of one",
		    sqlite3_changes(q->h));
		rc = SQLITE_ABORT;
	} else if (rc != SQLITE_OK && sqlfail(q, c, rc) < 0) {
		return -1;
	}
	if (rc != SQLITE_OK) {
		if (run(q, "ROLLBACK TO recdelta_change") != SQLITE_OK ||
		    run(q, "RELEASE recdelta_change") != SQLITE_OK)
			return sqlerr(q);
		return altered ? load_cols(q) : 0;
	}
	if (run(q, "RELEASE recdelta_change") != SQLITE_OK)
		return sqlerr(q);
	if (c->op == RD_OP_DELETE) {
		change_ok(c, NULL, 0);
	} else {
		char buf[24];

		change_ok(c, buf, (size_t)snprintf(buf, sizeof buf, "%lld", rev));
	}
	return 0;
}

/*
 * Apply change ci of the batch: 0 with its outcome set, or -1 with a message
 * when the batch cannot go on.
 */
/*
 * Revs come from one sequence per table, kept in the table recdelta_revs, so
 * a rev is never handed out twice: a row deleted and created again gets a
 * rev no stale change can hold.  (Counting from 1 per row would let an
 * update computed before the delete pass the guard after the re-create.)
 */
static int
seq_load(struct sqlstore *q, struct wctx *w)
{
	const char *rev = q->rev ? q->rev : "rev";
	sqlite3_stmt *st = NULL;
	int rc;

	if (run(q, "CREATE TABLE IF NOT EXISTS recdelta_revs (name TEXT COLLATE NOCASE PRIMARY "
	    "KEY, rev INTEGER NOT NULL)") != SQLITE_OK)
		return sqlerr(q);
	sb_reset(&w->sql);
	sb_adds(&w->sql, "SELECT max(coalesce((SELECT rev FROM recdelta_revs "
	    "WHERE name = ?1), 0), coalesce((SELECT max(CAST(");
	quote_ident(&w->sql, rev);
	sb_adds(&w->sql, " AS INTEGER)) FROM ");
	quote_ident(&w->sql, q->table);
	sb_adds(&w->sql, "), 0))");
	if (sqlite3_prepare_v2(q->h, w->sql.buf, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, q->table, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return sqlerr(q);
	}
	rc = sqlite3_step(st);
	w->seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sqlerr(q);
}

static int
seq_store(struct sqlstore *q, struct wctx *w)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(q->h, "INSERT INTO recdelta_revs (name, rev) "
	    "VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET rev = excluded.rev",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, q->table, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, w->seq) != SQLITE_OK) {
		sqlite3_finalize(st);
		return sqlerr(q);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sqlerr(q);
}

static int row_get(struct sqlstore *q, const char *key, size_t keylen,
    const long long *ki, struct arena *a, struct record *out);

/*
 * The content guard: the row of change c, read as fetch reads it, must hash
 * to what the plan saw (c->seen), whatever its rev.  1 when it does; 0 with
 * c's outcome set, a conflict or a row that cannot be read.
 */
static int
seen_guard(struct sqlstore *q, struct wctx *w, struct change *c,
    const long long *ki)
{
	struct ruleview none = { 0 };
	struct record rec;
	unsigned char h[RD_HASH_LEN];
	char hex[2 * RD_HASH_LEN + 1];
	int r;

	if ((r = row_get(q, c->key, c->keylen, ki, &w->a, &rec)) < 0 ||
	    (r == 1 && record_hash(&none, rec.fields, h, &w->tmp) < 0)) {
		change_fail(c, "row", "%s", rd_errmsg());
		return 0;
	}
	if (r == 1) {
		hex_encode(hex, h, RD_HASH_LEN);
		if (c->seenlen == 2 * RD_HASH_LEN &&
		    memcmp(hex, c->seen, c->seenlen) == 0)
			return 1;
	}
	c->status = RD_ST_CONFLICT;
	return 0;
}

static int
apply_one(struct sqlstore *q, struct wctx *w, struct change *v, size_t n,
    size_t ci)
{
	struct change *c = &v[ci];
	const struct sqlcol *kcol = &q->cols[q->kc];
	struct guard g;
	long long kint, rev = 1;
	const long long *ki = NULL;
	int r;

	if (c->keylen == 0) {
		change_fail(c, "key", "the key is empty");
		return 0;
	}
	if (int64_text(c->key, c->keylen, &kint) == 0)
		ki = &kint;
	if ((kcol->aff == AFF_NUMERIC || kcol->aff == AFF_INTEGER ||
	    kcol->aff == AFF_REAL) && looks_numeric(c->key, c->keylen) &&
	    (kcol->aff == AFF_REAL || !ki)) {
		change_fail(c, "affinity", "key \"%s\" would become a number in column "
		    "\"%s\" (declared \"%s\")", rd_quote(c->key, c->keylen),
		    rd_quote(kcol->name, strlen(kcol->name)),
		    rd_quote(kcol->decl, strlen(kcol->decl)));
		return 0;
	}
	if (c->op != RD_OP_DELETE && plan_fields(q, w, v, n, ci) < 0)
		return 0;
	if ((r = read_guard(q, w, c, ki, &g)) != 0)
		return r < 0 ? -1 : 0;
	if (g.nrows > 1) {
		change_fail(c, "duplicate", "key \"%s\" names more than one row",
		    rd_quote(c->key, c->keylen));
		return 0;
	}
	if (c->op == RD_OP_CREATE) {
		if (g.nrows) {
			c->status = RD_ST_CONFLICT;
			return 0;
		}
	} else {
		int same;

		if (g.nrows && !g.keyok) {
			change_fail(c, "key", "key \"%s\" matches a row whose key reads "
			    "otherwise", rd_quote(c->key, c->keylen));
			return 0;
		}
		if (g.nrows && g.revtype != SQLITE_NULL &&
		    g.revtype != SQLITE_INTEGER && g.revtype != SQLITE_TEXT) {
			change_fail(c, "rev", "rev of \"%s\" is neither text nor an "
			    "integer", rd_quote(c->key, c->keylen));
			return 0;
		}
		if (c->seen && (!c->rev || c->revlen == 0))
			same = 1;	/* guarded by its content alone */
		else if (g.revtype == SQLITE_NULL)
			same = !c->rev || c->revlen == 0 ||
			    (c->revlen == strlen(NO_REV) &&
			    memcmp(c->rev, NO_REV, c->revlen) == 0);
		else
			same = c->rev && c->revlen == g.revlen &&
			    memcmp(c->rev, g.rev, g.revlen) == 0;
		if (!g.nrows || !same) {
			c->status = RD_ST_CONFLICT;
			return 0;
		}
		if (c->seen && (r = seen_guard(q, w, c, ki)) <= 0)
			return r;
		if (c->op == RD_OP_UPDATE && next_rev(c, &g, &rev) < 0)
			return 0;
	}
	if (c->op != RD_OP_DELETE) {
		if (w->seq == LLONG_MAX) {
			change_fail(c, "rev", "the revs of table \"%s\" are used up",
			    rd_quote(q->table, strlen(q->table)));
			return 0;
		}
		if (rev <= w->seq)
			rev = w->seq + 1;
		w->seq = rev;
	}
	return write_change(q, w, c, ki, rev);
}

/*
 * Make the table ready for the batch: create it, or add its rev column.
 * When the table cannot take changes, msg says why.  0, or -1.
 */
static int
prepare_table(struct sqlstore *q, struct wctx *w, char *msg, size_t size)
{
	const char *rev = q->rev ? q->rev : "rev";
	int rc;

	if (load_cols(q) < 0)
		return -1;
	if (ascii_ieq(q->key, strlen(q->key), rev, strlen(rev))) {
		snprintf(msg, size, "the key and the rev column are both \"%s\"",
		    rev);
		return 0;
	}
	sb_reset(&w->sql);
	if (q->ncols == 0) {
		sb_adds(&w->sql, "CREATE TABLE ");
		quote_ident(&w->sql, q->table);
		sb_adds(&w->sql, " (");
		quote_ident(&w->sql, q->key);
		sb_adds(&w->sql, " TEXT PRIMARY KEY, ");
		quote_ident(&w->sql, rev);
		sb_adds(&w->sql, " INTEGER NOT NULL)");
	} else if (q->kc < 0) {
		snprintf(msg, size, "table \"%s\" has no column \"%s\"", q->table,
		    q->key);
		return 0;
	} else if (q->rc < 0) {
		sb_adds(&w->sql, "ALTER TABLE ");
		quote_ident(&w->sql, q->table);
		sb_adds(&w->sql, " ADD COLUMN ");
		quote_ident(&w->sql, rev);
		sb_adds(&w->sql, " INTEGER");
	} else {
		return 0;
	}
	if ((rc = run(q, w->sql.buf)) != SQLITE_OK) {
		if ((rc & 0xff) != SQLITE_ERROR || sqlite3_get_autocommit(q->h))
			return sqlerr(q);
		snprintf(msg, size, "%s", sqlite3_errmsg(q->h));
		return 0;
	}
	if (load_cols(q) < 0)
		return -1;
	if (q->kc < 0 || q->rc < 0) {
		snprintf(msg, size, "table \"%s\" lacks its key or rev column",
		    q->table);
	}
	return 0;
}

static int
sql_apply(struct store *s, struct change *v, size_t n)
{
	struct sqlstore *q = s->priv;
	const char *type = store_type(q);
	struct wctx w;
	char msg[256] = "";
	size_t i;
	int ours = 0, creates = 0, made, absent, begun = 0, r, ret = -1;

	for (i = 0; i < n; i++) {
		change_release(&v[i]);
		ours |= same_type(q, &v[i]);
		creates |= same_type(q, &v[i]) && v[i].op == RD_OP_CREATE;
	}
	if (n == 0)
		return 0;
	/*
	 * Only a create makes the database or its table: in a store that does
	 * not exist, an update or a delete fails its guard, and nothing is
	 * made.
	 */
	made = creates && !q->h && access(q->db, F_OK) < 0 && errno == ENOENT;
	if ((r = conn(q, creates)) < 0)
		return -1;
	absent = r == 0;
	wctx_init(&w);
	if (!absent && run(q, "BEGIN IMMEDIATE") != SQLITE_OK) {
		sqlerr(q);
		goto out;
	}
	begun = !absent;
	if (ours && !absent && load_cols(q) < 0)
		goto out;
	if (ours && !absent && q->ncols == 0) {
		if (creates)
			made = 1;
		else
			absent = 1;
	}
	if (ours && !absent && prepare_table(q, &w, msg, sizeof msg) < 0)
		goto out;
	if (ours && !absent && !*msg && seq_load(q, &w) < 0)
		goto out;
	utf8_fix(msg);
	for (i = 0; i < n; i++) {
		struct change *c = &v[i];

		arena_reset(&w.a);
		if (!same_type(q, c))
			change_fail(c, "type", "type \"%s\" is not the store's type \"%s\"",
			    rd_quote(c->type, c->typelen),
			    rd_quote(type, strlen(type)));
		else if (absent)
			c->status = RD_ST_CONFLICT;
		else if (*msg)
			change_fail(c, "schema", "%s", msg);
		else if (apply_one(q, &w, v, n, i) < 0)
			goto out;
	}
	if (ours && !absent && !*msg && seq_store(q, &w) < 0)
		goto out;
	if (begun && run(q, "COMMIT") != SQLITE_OK) {
		sqlerr(q);
		goto out;
	}
	if (made && q->ncols)
		s->created = 1;
	ret = 0;
out:
	cache_clear(q);
	if (ret < 0) {
		/* A connection that cannot roll back is closed, which does. */
		if (q->h && !sqlite3_get_autocommit(q->h) &&
		    sqlite3_exec(q->h, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK) {
			sqlite3_close(q->h);
			q->h = NULL;
		}
		for (i = 0; i < n; i++)
			v[i].status = RD_ST_NONE;
	}
	wctx_release(&w);
	return ret;
}

/* Reading one record, counting */

/*
 * The record of the row with key (ki: the key as an integer, or NULL), read
 * as fetch reads it, its type unset: 1, 0 when there is none, -1 with a
 * message.  The table exists; the connection is open.
 */
static int
row_get(struct sqlstore *q, const char *key, size_t keylen,
    const long long *ki, struct arena *a, struct record *out)
{
	sqlite3_stmt *st = NULL;
	struct sb sql, tmp;
	char where[200];
	int r, kc, rc_, ret = -1;

	sb_init(&sql, 128);
	sb_init(&tmp, 256);
	sb_adds(&sql, "SELECT * FROM ");
	quote_ident(&sql, q->table);
	add_where(q, &sql);
	if (sqlite3_prepare_v2(q->h, sql.buf, -1, &st, NULL) != SQLITE_OK) {
		sqlerr(q);
		goto out;
	}
	if ((kc = column_index(st, q->key)) < 0 ||
	    ((rc_ = column_index(st, q->rev ? q->rev : "rev")) < 0 && q->rev)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: table \"%s\" has no column \"%s\"",
		    q->db, q->table, kc < 0 ? q->key : q->rev);
		goto out;
	}
	if (bind_key(st, key, keylen, ki) != SQLITE_OK) {
		sqlerr(q);
		goto out;
	}
	snprintf(where, sizeof where, "key \"%s\"", rd_quote(key, keylen));
	ret = 0;
	while (ret == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (row_record(q, a, st, kc, rc_, where, out, &tmp) < 0) {
			ret = -1;
			goto out;
		}
		if (out->keylen == keylen && memcmp(out->key, key, keylen) == 0)
			ret = 1;
	}
	if (ret == 0 && r != SQLITE_DONE) {
		sqlerr(q);
		ret = -1;
	}
out:
	sqlite3_finalize(st);
	sb_release(&sql);
	sb_release(&tmp);
	return ret;
}

static int
sql_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	struct sqlstore *q = s->priv;
	const char *t = store_type(q);
	long long kint;
	int r;

	if (strlen(t) != typelen || memcmp(t, type, typelen) != 0 || !keylen)
		return 0;
	if ((r = conn(q, 0)) <= 0)
		return r;
	if (load_cols(q) < 0)
		return -1;
	if (q->ncols == 0)
		return 0;
	r = row_get(q, key, keylen, int64_text(key, keylen, &kint) == 0 ?
	    &kint : NULL, a, out);
	if (r == 1) {
		out->type = arena_memdup(a, type, typelen);
		out->typelen = typelen;
	}
	return r;
}

static long long
sql_count(struct store *s, char *const *types, size_t ntypes)
{
	struct sqlstore *q = s->priv;
	sqlite3_stmt *st = NULL;
	struct sb sql;
	long long n = -1;
	int r;

	(void)types, (void)ntypes;
	if ((r = conn(q, 0)) <= 0)
		return r;
	if (load_cols(q) < 0)
		return -1;
	if (q->ncols == 0)
		return 0;
	sb_init(&sql, 64);
	sb_adds(&sql, "SELECT count(*) FROM ");
	quote_ident(&sql, q->table);
	if (sqlite3_prepare_v2(q->h, sql.buf, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		sqlerr(q);
	else
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sb_release(&sql);
	return n;
}

static void
sql_close(struct store *s)
{
	sql_free(s->priv);
	s->priv = NULL;
}

const struct store_ops store_sqlite_ops = {
	.scheme = "sqlite",
	.synopsis = "sqlite:DB?table=T&key=COL",
	.writable = 1,
	.content_guard = 1,
	.batch = 1000,
	.max_batch = STORE_MAX_BATCH,
	.open = sql_open,
	.exists = sql_exists,
	.scope = sql_scope,
	.fetch = sql_fetch,
	.close = sql_close,
	.apply = sql_apply,
	.get = sql_get,
	.count = sql_count,
};
