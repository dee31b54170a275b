/*
 * store_sqlite.c - sqlite:DB?table=T&key=COL[&rev=COL][&type=TYPE].
 *
 * One table is one record type (TYPE, or --type, or the table's name).  The
 * key column gives the record key, the rev column (default "rev", when the
 * table has one) its version; every other column is a field of the same
 * name: INTEGER a number (exact, 64 bits), REAL the shortest number that reads
 * back as the same double, TEXT a string, BLOB {"$bytes":BASE64}, NULL null,
 * and a column declared JSON holds a JSON value as text (how objects, arrays
 * and tagged values are kept).
 */
#include "store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct sqlstore {
	char *db, *table, *key, *rev, *type;
};

static int
hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 32;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A parameter value with %XX decoded, so names may hold '&' or '='. */
static char *
pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    hexdigit(s[i + 1]) >= 0 && hexdigit(s[i + 2]) >= 0) {
			*o++ = (char)(hexdigit(s[i + 1]) << 4 | hexdigit(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static void
sql_free(struct sqlstore *q)
{
	if (!q)
		return;
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
		size_t n = amp ? (size_t)(amp - p) : strlen(p);
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
		*slot = pct_decode(eq + 1, (size_t)(p + n - eq - 1));
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

static int
column_index(sqlite3_stmt *st, const char *name)
{
	int i, n = sqlite3_column_count(st);

	for (i = 0; i < n; i++)
		if (strcmp(sqlite3_column_name(st, i), name) == 0)
			return i;
	return -1;
}

static int
is_json_decl(const char *decl)
{
	return decl && strcasecmp(decl, "JSON") == 0;
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
		*s = (const char *)sqlite3_column_text(st, i);
		*n = (size_t)sqlite3_column_bytes(st, i);
		if (!utf8_valid(*s, *n))
			return -1;
		return 0;
	default:
		return -1;
	}
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
	int kc, rc_, ncol, i, rc, ret = -1;
	unsigned long row = 0;

	if (o && o->ntypes > 1) {
		rd_seterr(RD_EXIT_USAGE, "sqlite: holds one record type; give at "
		    "most one --type");
		return -1;
	}
	type = o && o->ntypes == 1 ? o->types[0] : q->type ? q->type : q->table;
	sb_init(&sql, 128);
	sb_init(&line, 1024);
	sb_init(&tmp, 256);
	arena_init(&a);
	if (sqlite3_open_v2(q->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db,
		    db ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	sb_adds(&sql, "SELECT * FROM ");
	quote_ident(&sql, q->table);
	if (sqlite3_prepare_v2(db, sql.buf, -1, &st, NULL) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
		goto out;
	}
	ncol = sqlite3_column_count(st);
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
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct json fields;
		struct json_member *m;
		struct record rec;
		struct rline l;
		size_t nf = 0;

		row++;
		arena_reset(&a);
		memset(&rec, 0, sizeof rec);
		rec.type = type;
		rec.typelen = strlen(type);
		if (text_of(&a, st, kc, &rec.key, &rec.keylen) < 0 ||
		    rec.keylen == 0) {
			rd_seterr(RD_EXIT_DATA, "%s: table \"%s\" row %lu: key is not "
			    "a non-empty text or integer", q->db, q->table, row);
			goto out;
		}
		if (rc_ >= 0 && sqlite3_column_type(st, rc_) != SQLITE_NULL &&
		    text_of(&a, st, rc_, &rec.rev, &rec.revlen) < 0) {
			rd_seterr(RD_EXIT_DATA, "%s: table \"%s\" row %lu: rev is not "
			    "text or an integer", q->db, q->table, row);
			goto out;
		}
		m = arena_alloc(&a, (size_t)ncol * sizeof *m);
		for (i = 0; i < ncol; i++) {
			const char *name;

			if (i == kc || i == rc_)
				continue;
			name = sqlite3_column_name(st, i);
			m[nf].name = name;
			m[nf].namelen = strlen(name);
			if (column_value(&a, st, i, &m[nf].value, &tmp) < 0) {
				rd_prefixerr("%s: table \"%s\" row %lu column \"%s\": ",
				    q->db, q->table, row, name);
				goto out;
			}
			nf++;
		}
		fields.type = JSON_OBJECT;
		fields.len = nf;
		fields.u.members = m;
		rec.fields = &fields;
		sb_reset(&line);
		stream_write_record(&line, &rec);
		l.text = line.buf;
		l.len = line.len;
		l.src = q->db;
		l.lineno = row;
		l.offset = -1;
		l.rec = &rec;
		if (sink->put(sink->ctx, &l) < 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", q->db, sqlite3_errmsg(db));
		goto out;
	}
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

static void
sql_close(struct store *s)
{
	sql_free(s->priv);
	s->priv = NULL;
}

const struct store_ops store_sqlite_ops = {
	"sqlite", sql_open, sql_fetch, sql_close, NULL, NULL, NULL, /* sql_apply, sql_get, sql_count: being written */
};
