/*
 * store_couchdb.c - the couchdb: store, a database of CouchDB or of a server
 * that speaks its HTTP API (pouchdb-server, Cloudant).
 *
 * "couchdb:http(s)://HOST[:PORT][/PREFIX]/DB" names the database DB, its
 * last path segment; the URL before it is checked by http_url_parse():
 * https, or plain http to a loopback host unless store_insecure_http is set
 * (--insecure-http, warned about).  Credentials: HTTP basic authentication,
 * the user from RECDELTA_COUCHDB_USER and the password from the first line
 * of the file RECDELTA_COUCHDB_PASSWORD_FILE names, or both from the netrc
 * file (http.h); never from the command line, never in a message.
 *
 * A record is the document whose _id is TYPE ":" KEY and whose body is
 * {"type":TYPE,"key":KEY,"fields":FIELDS}: the fields nested, so that a
 * field's name may start with "_".  A type holds no ":" and does not start
 * with "_", so an _id never starts with "_" (the server's reserved
 * _design/ and _local/ ids) whatever the key holds, and names one record.
 * A document's _rev is the record's rev.  An _id never goes into a URL
 * path: documents are read through _all_docs (a JSON-quoted startkey, or
 * keys in a JSON body) and written through _bulk_docs, so no key, "/",
 * "..", "?" or "#" included, can address another document or database.
 *
 * Reading lists _all_docs?include_docs=true, 500 documents a page in _id
 * order, one range per type ("TYPE:" up to "TYPE;") when types are named,
 * the whole database (design documents left out) when not, and hands a
 * cursor line to the sink after each page: "startkey", the last _id read
 * (or the range's start when it held none), from which --resume goes on
 * after it.  fetch_opts.changes reads _changes?include_docs=true instead,
 * since fetch_opts.resume (the raw text of a last_seq) or from the start,
 * 500 results a request; a deleted document is a tombstone of the type and
 * key its _id names; a cursor "last_seq" after each page holds the server's
 * token as it sent it, a number or a string.  A document that is not a
 * record is skipped, and counted in one warning.
 *
 * Writing posts _bulk_docs requests of at most the changes given, each _id
 * once a request and at most 4 MB: a create without _rev, an update with the
 * change's rev as _rev, a delete as {"_id","_rev","_deleted":true}.  A
 * document whose _rev moved (or that exists, for a create; or is gone, for
 * an update or a delete) comes back "conflict" or "not_found": the change's
 * outcome is RD_ST_CONFLICT, and push looks it up and recomputes.  Fields
 * are written by record_encode_doubles(): CouchDB and PouchDB keep numbers
 * as doubles.  A request that no retry got through (http.h) defers the
 * changes it carried and those after it: safe to send again, every update
 * and delete is guarded by its rev, and a create that then conflicts is
 * looked up and compared.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "record.h"
#include "store.h"

#define CDB_PAGE 500
#define CDB_BATCH 500
#define CDB_MAX_BODY (4u << 20)

struct cdb {
	char *source;		/* the store word, for cursors and messages */
	char *name;		/* "BASE/DB" as shown, without user name */
	char *db;		/* the database's name */
	struct http_settings set;
	struct http *http;
	struct http_resp resp;
	struct arena a;		/* the last reply */
	struct sb body, path;
};

static const struct http_auth cdb_auth = {
	.user_var = "RECDELTA_COUCHDB_USER",
	.password_var = NULL,
	.password_file_var = "RECDELTA_COUCHDB_PASSWORD_FILE",
};

/* Names */

/* CouchDB's database names: [a-z][a-z0-9_$()+-]*, one path segment. */
static int
db_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 238 || s[0] < 'a' || s[0] > 'z')
		return 0;
	for (i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("_$()+-", s[i])))
			return 0;
	return 1;
}

/*
 * arg, "URL/DB": the base URL parsed into u and the database's name into
 * *db (owned).  -1 with a message (status 2) for a word that names none.
 */
static int
cdb_name(const char *arg, struct http_url *u, char **db)
{
	size_t n = strlen(arg);
	const char *slash;
	char *base;
	int flags = store_insecure_http ? HTTP_URL_INSECURE : 0;

	while (n > 0 && arg[n - 1] == '/')
		n--;
	for (slash = arg + n; slash > arg && slash[-1] != '/'; slash--)
		;
	slash = slash > arg ? slash - 1 : NULL;
	if (!slash || slash == arg || slash[-1] == '/' ||
	    !db_name_ok(slash + 1, (size_t)(arg + n - slash - 1))) {
		rd_seterr(RD_EXIT_USAGE, "\"couchdb:%s\": expected "
		    "couchdb:http(s)://HOST[:PORT]/DB, DB a database name (a-z, "
		    "0-9 and _$()+-, starting with a letter)",
		    rd_quote(arg, strlen(arg)));
		return -1;
	}
	base = xmemdup(arg, (size_t)(slash - arg));
	if (http_url_parse(u, base, flags) < 0) {
		rd_prefixerr("\"couchdb:%s\": ", rd_quote(arg, strlen(arg)));
		free(base);
		return -1;
	}
	free(base);
	*db = xmemdup(slash + 1, (size_t)(arg + n - slash - 1));
	return 0;
}

/* A scope: the base URL as curl writes it, without user name, and DB. */
static int
cdb_scope(const char *arg, struct sb *out)
{
	struct http_url u;
	char *db;

	if (cdb_name(arg, &u, &db) < 0)
		return -1;
	sb_adds(out, u.shown);
	sb_addc(out, '/');
	sb_adds(out, db);
	free(db);
	http_url_release(&u);
	return 0;
}

static void cdb_free(struct cdb *c);

static int
cdb_open(struct store *s, const char *arg)
{
	struct http_url u;
	struct cdb *c;
	char *db;

	if (cdb_name(arg, &u, &db) < 0)
		return -1;
	c = xcalloc(1, sizeof *c);
	c->db = db;
	c->source = xmalloc(strlen(arg) + sizeof "couchdb:");
	sprintf(c->source, "couchdb:%s", arg);
	c->name = xmalloc(strlen(u.shown) + strlen(db) + 2);
	sprintf(c->name, "%s/%s", u.shown, db);
	arena_init(&c->a);
	http_resp_init(&c->resp);
	sb_init(&c->body, 4096);
	sb_init(&c->path, 256);
	s->priv = c;
	if (!u.loopback && strncmp(u.url, "http:", 5) == 0)
		rd_warn("warning: %s: plain http to a host that is not this "
		    "machine: the password and the records can be read on the "
		    "way (--insecure-http)", c->name);
	if (http_settings(&c->set) < 0 ||
	    !(c->http = http_open(&c->set, &u, &cdb_auth))) {
		rd_prefixerr("couchdb: ");
		http_url_release(&u);
		cdb_free(c);
		s->priv = NULL;
		return -1;
	}
	http_url_release(&u);
	return 0;
}

static void
cdb_free(struct cdb *c)
{
	if (!c)
		return;
	http_close(c->http);
	http_resp_release(&c->resp);
	arena_release(&c->a);
	sb_release(&c->body);
	sb_release(&c->path);
	free(c->source);
	free(c->name);
	free(c->db);
	free(c);
}

static void
cdb_close(struct store *s)
{
	cdb_free(s->priv);
	s->priv = NULL;
}

/* Requests */

/* A query value: every byte but A-Z a-z 0-9 - . _ ~ as %XX. */
static void
query_value(struct sb *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
			sb_addc(out, ch);
		} else {
			sb_addc(out, '%');
			sb_addc(out, hex[ch >> 4]);
			sb_addc(out, hex[ch & 15]);
		}
	}
}

/* A string as a JSON-quoted query value (startkey="..."). */
static void
query_json(struct sb *out, const char *s, size_t n)
{
	struct sb q;

	sb_init(&q, n + 8);
	json_write_string(&q, s, n);
	query_value(out, q.buf, q.len);
	sb_release(&q);
}

/* c->path: "/DB" then what follows. */
static void
path_start(struct cdb *c, const char *rest)
{
	sb_reset(&c->path);
	sb_addc(&c->path, '/');
	query_value(&c->path, c->db, strlen(c->db));
	sb_adds(&c->path, rest);
}

/*
 * Send c->path (with c->body for POST) under the retry policy of http.h:
 * 0 with the reply parsed into *reply (JSON_NULL when it is not JSON) and
 * its status, whatever it is, or -1 with a message when no attempt got a
 * reply worth taking.
 */
static int
call(struct cdb *c, enum http_method m, const char *what, struct json *reply,
    long *status)
{
	static const char *const headers[] = { "Accept: application/json",
	    NULL };
	struct http_req q = {
		.method = m,
		.path = c->path.buf,
		.content_type = m == HTTP_POST ? "application/json" : NULL,
		.headers = headers,
		.body = m == HTTP_POST ? c->body.buf : NULL,
		.len = m == HTTP_POST ? c->body.len : 0,
		.what = what,
	};
	struct http_retry p = {
		.retries = c->set.retries,
		.prefix = "couchdb: ",
	};

	if (http_send(c->http, &q, &p, &c->resp) < 0)
		return -1;
	*status = c->resp.status;
	arena_reset(&c->a);
	if (!c->resp.body.len || json_parse(&c->a, c->resp.body.buf,
	    c->resp.body.len, reply, NULL) < 0)
		reply->type = JSON_NULL;
	return 0;
}

/* The _id of a record, TYPE:KEY, as a JSON string. */
static void
write_id(struct sb *out, const char *type, size_t typelen, const char *key,
    size_t keylen)
{
	struct sb id;

	sb_init(&id, typelen + keylen + 2);
	sb_add(&id, type, typelen);
	sb_addc(&id, ':');
	sb_add(&id, key, keylen);
	json_write_string(out, id.buf, id.len);
	sb_release(&id);
}

static int
str_is(const struct json *v, const char *s)
{
	return v && v->type == JSON_STRING && v->len == strlen(s) &&
	    memcmp(v->u.s, s, v->len) == 0;
}

/* The message for a reply that is not a success: its error and reason. */
static void
reply_error(struct cdb *c, const char *what, long status,
    const struct json *reply)
{
	const struct json *e = NULL, *r = NULL;

	if (reply->type == JSON_OBJECT) {
		e = json_get(reply, "error");
		r = json_get(reply, "reason");
		if (e && e->type != JSON_STRING)
			e = NULL;
		if (r && r->type != JSON_STRING)
			r = NULL;
	}
	if (status == 404 && str_is(e, "not_found")) {
		rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: no such database (HTTP "
		    "404); create it first: recdelta creates none", c->name);
		return;
	}
	rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: %s: HTTP %ld%s%s%s%s%s",
	    c->name, what, status, e ? " (" : "",
	    e ? rd_quote(e->u.s, e->len) : "", e ? ")" : "", r ? ": " : "",
	    r ? rd_quote(r->u.s, r->len) : "");
	if (status == 401 || status == 403)
		rd_suffixerr("; check the user name and password: "
		    "RECDELTA_COUCHDB_USER and RECDELTA_COUCHDB_PASSWORD_FILE, or "
		    "the netrc file");
}

/* Reading */

struct emit {
	const struct store_sink *sink;
	const struct fetch_opts *o;
	struct cdb *c;
	struct arena la;
	struct sb line, fields;
	unsigned long skipped;	/* documents that are not records */
	char *example;		/* the _id of the first */
};

static void
not_a_record(struct emit *e, const struct json *id)
{
	if (e->skipped++ == 0 && id && id->type == JSON_STRING)
		e->example = xmemdup(id->u.s, id->len);
}

static int
put_line(struct emit *e, const struct record *rec)
{
	struct rline l = {
		.text = e->line.buf, .len = e->line.len, .src = e->c->source,
		.lineno = 0, .offset = -1, .rec = rec,
	};

	return e->sink->put(e->sink->ctx, &l);
}

/*
 * A document as a record line in out, rec filled from it (borrowing from
 * doc): 1, or 0 when the document is not a record.
 */
static int
doc_record(const struct json *doc, struct record *rec, struct sb *fields,
    struct sb *out)
{
	const struct json *id, *type, *key, *rev, *f;

	if (doc->type != JSON_OBJECT || !(id = json_get(doc, "_id")) ||
	    !(type = json_get(doc, "type")) || !(key = json_get(doc, "key")) ||
	    !(f = json_get(doc, "fields")) || id->type != JSON_STRING ||
	    type->type != JSON_STRING || key->type != JSON_STRING ||
	    f->type != JSON_OBJECT || type->len == 0 || key->len == 0 ||
	    memchr(type->u.s, ':', type->len) ||
	    id->len != type->len + 1 + key->len ||
	    memcmp(id->u.s, type->u.s, type->len) != 0 ||
	    id->u.s[type->len] != ':' ||
	    memcmp(id->u.s + type->len + 1, key->u.s, key->len) != 0)
		return 0;
	memset(rec, 0, sizeof *rec);
	rec->type = type->u.s;
	rec->typelen = type->len;
	rec->key = key->u.s;
	rec->keylen = key->len;
	if ((rev = json_get(doc, "_rev")) && rev->type == JSON_STRING &&
	    rev->len) {
		rec->rev = rev->u.s;
		rec->revlen = rev->len;
	}
	sb_reset(fields);
	json_write(fields, f, 0);
	sb_reset(out);
	stream_write_record_text(out, rec, fields->buf, fields->len);
	return 1;
}

/* Hand the record line in e->line to the sink, if the fetch wants it. */
static int
emit_line(struct emit *e, const char *what)
{
	struct record rec;
	struct json obj;
	const char *kind;
	size_t kindlen;

	arena_reset(&e->la);
	if (stream_parse_line(&e->la, e->line.buf, e->line.len, &obj, &rec,
	    &kind, &kindlen) != 1) {
		rd_prefixerr("couchdb: %s: %s: ", e->c->name, what);
		return -1;
	}
	if (rec.deleted ? !fetch_wants_type(e->o, rec.type, rec.typelen) :
	    !fetch_wants(e->o, &rec))
		return 0;
	return put_line(e, &rec);
}

static int
emit_doc(struct emit *e, const struct json *doc, const char *what)
{
	struct record rec;

	if (!doc_record(doc, &rec, &e->fields, &e->line)) {
		not_a_record(e, json_get(doc, "_id"));
		return 0;
	}
	return emit_line(e, what);
}

/* A tombstone of the change feed: type and key from the _id. */
static int
emit_deleted(struct emit *e, const struct json *id, const struct json *rev)
{
	struct record rec = { 0 };
	const char *colon;

	if (!id || id->type != JSON_STRING ||
	    !(colon = memchr(id->u.s, ':', id->len)) || colon == id->u.s ||
	    colon + 1 == id->u.s + id->len) {
		not_a_record(e, id);
		return 0;
	}
	rec.type = id->u.s;
	rec.typelen = (size_t)(colon - id->u.s);
	rec.key = colon + 1;
	rec.keylen = id->len - rec.typelen - 1;
	if (rev && rev->type == JSON_STRING && rev->len) {
		rec.rev = rev->u.s;
		rec.revlen = rev->len;
	}
	rec.deleted = 1;
	sb_reset(&e->line);
	stream_write_record(&e->line, &rec);
	return emit_line(e, "_changes");
}

static int
emit_cursor(struct emit *e, const char *name, const struct json *value)
{
	struct cursor cur = {
		.source = e->c->source, .sourcelen = strlen(e->c->source),
		.name = name, .namelen = strlen(name), .value = value,
	};

	if (!e->o->cursors)
		return 0;
	sb_reset(&e->line);
	stream_write_cursor(&e->line, &cur);
	return put_line(e, NULL);
}

/*
 * The documents of one _id range, from start (after it when after is set)
 * up to, not including, end (NULL: to the last).  Returns 0, 1 when the
 * database does not exist and the fetch may read it as empty, -1.
 */
static int
list_range(struct emit *e, const char *start, size_t startlen, int after,
    const char *end)
{
	struct cdb *c = e->c;
	struct json reply, last;
	const struct json *rows, *row, *id, *doc;
	struct sb from;
	long status;
	size_t i, n;
	int ret = -1;

	sb_init(&from, startlen + 2);
	sb_add(&from, start, startlen);
	/* The least string after it, in byte and in UTF-16 order alike. */
	if (after)
		sb_add(&from, "", 1);
	for (;;) {
		path_start(c, "/_all_docs?include_docs=true");
		sb_addf(&c->path, "&limit=%d&startkey=", CDB_PAGE + 1);
		query_json(&c->path, from.buf, from.len);
		if (end) {
			sb_adds(&c->path, "&endkey=");
			query_json(&c->path, end, strlen(end));
			sb_adds(&c->path, "&inclusive_end=false");
		}
		if (call(c, HTTP_GET, "_all_docs", &reply, &status) < 0)
			goto out;
		if (status == 404 && e->o->missing_ok) {
			ret = 1;
			goto out;
		}
		if (status != 200 || reply.type != JSON_OBJECT ||
		    !(rows = json_get(&reply, "rows")) ||
		    rows->type != JSON_ARRAY) {
			if (status == 200)
				rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: _all_docs: "
				    "the reply has no rows", c->name);
			else
				reply_error(c, "_all_docs", status, &reply);
			goto out;
		}
		n = rows->len > CDB_PAGE ? CDB_PAGE : rows->len;
		for (i = 0; i < n; i++) {
			row = &rows->u.items[i];
			id = json_get(row, "id");
			doc = json_get(row, "doc");
			/* Design documents are the server's, not records. */
			if (id && id->type == JSON_STRING && id->len &&
			    id->u.s[0] == '_')
				continue;
			if (!doc || doc->type != JSON_OBJECT) {
				not_a_record(e, id);
				continue;
			}
			if (emit_doc(e, doc, "_all_docs") < 0)
				goto out;
		}
		/* The last _id read, or where this range starts. */
		last.type = JSON_STRING;
		if (n && (id = json_get(&rows->u.items[n - 1], "id")) &&
		    id->type == JSON_STRING) {
			last.u.s = id->u.s;
			last.len = id->len;
		} else {
			last.u.s = start;
			last.len = startlen;
		}
		if (emit_cursor(e, "startkey", &last) < 0)
			goto out;
		if (rows->len <= CDB_PAGE)
			break;
		/* The extra row is where the next page starts. */
		id = json_get(&rows->u.items[CDB_PAGE], "id");
		if (!id || id->type != JSON_STRING) {
			rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: _all_docs: a row "
			    "without an id", c->name);
			goto out;
		}
		sb_reset(&from);
		sb_add(&from, id->u.s, id->len);
	}
	ret = 0;
out:
	sb_release(&from);
	return ret;
}

/* The change feed, since the raw token since (NULL: from the start). */
static int
feed(struct emit *e, const char *since)
{
	struct cdb *c = e->c;
	struct json reply;
	const struct json *res, *r, *seq, *pend, *del, *ch;
	struct sb tok;
	long status;
	size_t i;
	int ret = -1;

	sb_init(&tok, 64);
	sb_adds(&tok, since ? since : "0");
	for (;;) {
		path_start(c, "/_changes?include_docs=true&style=main_only");
		sb_addf(&c->path, "&limit=%d&since=", CDB_PAGE);
		query_value(&c->path, tok.buf, tok.len);
		if (call(c, HTTP_GET, "_changes", &reply, &status) < 0)
			goto out;
		if (status == 404 && e->o->missing_ok) {
			ret = 0;
			goto out;
		}
		if (status != 200 || reply.type != JSON_OBJECT ||
		    !(res = json_get(&reply, "results")) ||
		    res->type != JSON_ARRAY ||
		    !(seq = json_get(&reply, "last_seq"))) {
			if (status == 200)
				rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: _changes: "
				    "the reply has no results or no last_seq",
				    c->name);
			else
				reply_error(c, "_changes", status, &reply);
			if (status == 400 && since)
				rd_suffixerr("; --resume takes the value of a "
				    "last_seq cursor");
			goto out;
		}
		for (i = 0; i < res->len; i++) {
			const struct json *id, *doc, *rev = NULL;

			r = &res->u.items[i];
			id = json_get(r, "id");
			if (id && id->type == JSON_STRING && id->len &&
			    id->u.s[0] == '_')
				continue;
			del = json_get(r, "deleted");
			doc = json_get(r, "doc");
			if (del && del->type == JSON_TRUE) {
				if ((ch = json_get(r, "changes")) &&
				    ch->type == JSON_ARRAY && ch->len)
					rev = json_get(&ch->u.items[0], "rev");
				if (emit_deleted(e, id, rev) < 0)
					goto out;
			} else if (!doc || doc->type != JSON_OBJECT) {
				not_a_record(e, id);
			} else if (emit_doc(e, doc, "_changes") < 0) {
				goto out;
			}
		}
		if (emit_cursor(e, "last_seq", seq) < 0)
			goto out;
		sb_reset(&tok);
		if (seq->type == JSON_STRING)
			sb_add(&tok, seq->u.s, seq->len);
		else
			json_write(&tok, seq, 0);
		/* CouchDB says what is pending; PouchDB does not. */
		pend = json_get(&reply, "pending");
		if (pend && pend->type == JSON_NUMBER ?
		    json_number_double(pend) <= 0 : res->len < CDB_PAGE)
			break;
	}
	ret = 0;
out:
	sb_release(&tok);
	return ret;
}

/*
 * Where the feed stands, read nothing of it (fetch_opts.cursor_only): the
 * database's update_seq, as a "last_seq" cursor, which _changes takes as
 * since.  A database that does not exist (missing_ok): no cursor, as its
 * feed says none.
 */
static int
feed_now(struct emit *e)
{
	struct cdb *c = e->c;
	struct json reply;
	const struct json *seq;
	long status;

	path_start(c, "");
	if (call(c, HTTP_GET, "the database", &reply, &status) < 0)
		return -1;
	if (status == 404 && e->o->missing_ok)
		return 0;
	if (status != 200 || reply.type != JSON_OBJECT ||
	    !(seq = json_get(&reply, "update_seq"))) {
		if (status == 200)
			rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: the database: "
			    "the reply has no update_seq", c->name);
		else
			reply_error(c, "the database", status, &reply);
		return -1;
	}
	return emit_cursor(e, "last_seq", seq);
}

static int
cdb_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct cdb *c = s->priv;
	struct emit e = { .sink = sink, .o = o, .c = c };
	struct sb lo, hi;
	size_t i = 0, start = 0;
	int r, ret = -1;

	arena_init(&e.la);
	sb_init(&e.line, 1024);
	sb_init(&e.fields, 1024);
	sb_init(&lo, 64);
	sb_init(&hi, 64);
	if (o->changes) {
		ret = o->cursor_only ? feed_now(&e) : feed(&e, o->resume);
		goto out;
	}
	if (o->ntypes == 0) {
		if (list_range(&e, o->resume ? o->resume : "",
		    o->resume ? strlen(o->resume) : 0, o->resume != NULL,
		    NULL) >= 0)
			ret = 0;
		goto out;
	}
	if (o->resume) {
		const char *colon = strchr(o->resume, ':');

		for (i = 0; colon && i < o->ntypes; i++)
			if (strlen(o->types[i]) == (size_t)(colon - o->resume) &&
			    memcmp(o->types[i], o->resume, strlen(o->types[i])) == 0)
				break;
		if (!colon || i == o->ntypes) {
			rd_seterr(RD_EXIT_USAGE, "--resume \"%s\": expected the "
			    "value of a startkey cursor, TYPE:KEY, TYPE one of the "
			    "-t types", rd_quote(o->resume, strlen(o->resume)));
			goto out;
		}
		start = i;
	}
	for (i = start; i < o->ntypes; i++) {
		sb_reset(&lo);
		sb_reset(&hi);
		sb_adds(&lo, o->types[i]);
		sb_adds(&hi, o->types[i]);
		sb_addc(&lo, ':');
		sb_addc(&hi, ';');
		if (i == start && o->resume)
			r = list_range(&e, o->resume, strlen(o->resume), 1, hi.buf);
		else
			r = list_range(&e, lo.buf, lo.len, 0, hi.buf);
		if (r < 0)
			goto out;
		if (r > 0)
			break;
	}
	ret = 0;
out:
	if (ret == 0 && e.skipped)
		rd_warn("warning: %s: %lu document%s that %s not a record "
		    "skipped (the first: \"%s\")", c->name, e.skipped,
		    e.skipped == 1 ? "" : "s", e.skipped == 1 ? "is" : "are",
		    e.example ? rd_quote(e.example, strlen(e.example)) : "?");
	free(e.example);
	sb_release(&lo);
	sb_release(&hi);
	arena_release(&e.la);
	sb_release(&e.line);
	sb_release(&e.fields);
	return ret;
}

static int
cdb_exists(struct store *s)
{
	struct cdb *c = s->priv;
	struct json reply;
	long status;

	path_start(c, "");
	if (call(c, HTTP_GET, "the database", &reply, &status) < 0)
		return -1;
	if (status == 200)
		return 1;
	reply_error(c, "the database", status, &reply);
	return status == 404 ? 0 : -1;
}

static long long
cdb_count(struct store *s, char *const *types, size_t ntypes)
{
	struct cdb *c = s->priv;
	struct json reply;
	const struct json *n, *rows;
	long long v;
	char *end;
	long status;

	(void)types, (void)ntypes;
	path_start(c, "");
	if (call(c, HTTP_GET, "the database", &reply, &status) < 0)
		return -1;
	if (status != 200) {
		reply_error(c, "the database", status, &reply);
		return -1;
	}
	if (!(n = json_get(&reply, "doc_count")) || n->type != JSON_NUMBER ||
	    !json_number_is_integer(n->u.s, n->len)) {
		rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: no doc_count in the "
		    "database's description", c->name);
		return -1;
	}
	errno = 0;
	v = strtoll(n->u.s, &end, 10);
	if (errno || v < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: a doc_count out of "
		    "range", c->name);
		return -1;
	}
	/* doc_count counts the design documents too, which are no records. */
	path_start(c, "/_all_docs?startkey=%22_design%2F%22&endkey=%22_design0%22");
	if (call(c, HTTP_GET, "_all_docs", &reply, &status) < 0)
		return -1;
	if (status != 200 || !(rows = json_get(&reply, "rows")) ||
	    rows->type != JSON_ARRAY) {
		if (status == 200)
			rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: _all_docs: the "
			    "reply has no rows", c->name);
		else
			reply_error(c, "_all_docs", status, &reply);
		return -1;
	}
	return v > (long long)rows->len ? v - (long long)rows->len : 0;
}

static int
cdb_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	struct cdb *c = s->priv;
	struct json reply, *obj;
	const struct json *rows, *row, *doc;
	struct record rec;
	struct sb line, fields;
	const char *kind;
	size_t kindlen;
	long status;
	char *text;
	int ret = -1;

	sb_reset(&c->body);
	sb_adds(&c->body, "{\"keys\":[");
	write_id(&c->body, type, typelen, key, keylen);
	sb_adds(&c->body, "]}");
	path_start(c, "/_all_docs?include_docs=true");
	if (call(c, HTTP_POST, "_all_docs", &reply, &status) < 0)
		return -1;
	if (status != 200 || !(rows = json_get(&reply, "rows")) ||
	    rows->type != JSON_ARRAY || rows->len != 1) {
		if (status == 200)
			rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: _all_docs: the "
			    "reply does not hold the one row asked for", c->name);
		else
			reply_error(c, "_all_docs", status, &reply);
		return -1;
	}
	row = &rows->u.items[0];
	/* Missing: an error row; deleted: no doc. */
	if (json_get(row, "error") || !(doc = json_get(row, "doc")) ||
	    doc->type != JSON_OBJECT)
		return 0;
	sb_init(&line, 1024);
	sb_init(&fields, 1024);
	if (!doc_record(doc, &rec, &fields, &line)) {
		rd_seterr(RD_EXIT_RUNTIME, "couchdb: %s: the document of \"%s\" "
		    "is not a record", c->name, rd_quote(key, keylen));
		goto out;
	}
	/* The record's strings and fields live in the caller's arena. */
	obj = arena_alloc(a, sizeof *obj);
	text = arena_memdup(a, line.buf, line.len);
	if (stream_parse_line(a, text, line.len, obj, out, &kind,
	    &kindlen) != 1) {
		rd_prefixerr("couchdb: %s: ", c->name);
		goto out;
	}
	ret = 1;
out:
	sb_release(&line);
	sb_release(&fields);
	return ret;
}

/* Writing */

/* The document for change c appended to out; -1 with its outcome set. */
static int
doc_in(struct sb *out, struct change *c)
{
	size_t mark = out->len;

	if (memchr(c->type, ':', c->typelen) || c->type[0] == '_')
		return change_fail(c, "type", "a CouchDB record type holds no "
		    "\":\" and does not start with \"_\"");
	if (c->op != RD_OP_CREATE && (!c->rev || !c->revlen))
		return change_fail(c, "rev", "an %s without the rev it was "
		    "computed against", c->op == RD_OP_DELETE ? "delete" :
		    "update");
	sb_adds(out, "{\"_id\":");
	write_id(out, c->type, c->typelen, c->key, c->keylen);
	if (c->op != RD_OP_CREATE) {
		sb_adds(out, ",\"_rev\":");
		json_write_string(out, c->rev, c->revlen);
	}
	if (c->op == RD_OP_DELETE) {
		sb_adds(out, ",\"_deleted\":true}");
		return 0;
	}
	sb_adds(out, ",\"type\":");
	json_write_string(out, c->type, c->typelen);
	sb_adds(out, ",\"key\":");
	json_write_string(out, c->key, c->keylen);
	sb_adds(out, ",\"fields\":");
	if (!c->fields) {
		sb_adds(out, "{}");
	} else if (record_encode_doubles(out, c->fields) < 0) {
		out->len = mark;
		out->buf[mark] = '\0';
		return change_fail(c, "inexact", "%s", rd_errmsg());
	}
	sb_addc(out, '}');
	return 0;
}

/* The outcome of one change from its entry in a _bulk_docs reply. */
static void
outcome(struct change *c, const struct json *e)
{
	const struct json *err, *reason, *rev;

	if (!e || e->type != JSON_OBJECT) {
		change_error(c, RD_ST_FAILED, "reply", 5, "no result for this "
		    "document in the reply", 39);
		return;
	}
	if ((err = json_get(e, "error"))) {
		reason = json_get(e, "reason");
		if (str_is(err, "conflict") || (str_is(err, "not_found") &&
		    c->op != RD_OP_CREATE)) {
			c->status = RD_ST_CONFLICT;
			return;
		}
		change_error(c, RD_ST_FAILED,
		    err->type == JSON_STRING ? err->u.s : "?",
		    err->type == JSON_STRING ? err->len : 1,
		    reason && reason->type == JSON_STRING ? reason->u.s : "",
		    reason && reason->type == JSON_STRING ? reason->len : 0);
		return;
	}
	rev = json_get(e, "rev");
	if (!rev || rev->type != JSON_STRING || rev->len == 0 ||
	    memchr(rev->u.s, '\0', rev->len)) {
		change_error(c, RD_ST_FAILED, "reply", 5, "the reply gave no "
		    "usable rev", 26);
		return;
	}
	change_ok(c, rev->u.s, rev->len);
}

/* Give up on the changes of the request and those after it. */
static void
give_up(struct change *v, const size_t *idx, size_t nidx, size_t from,
    size_t n, enum rd_status st, const char *code)
{
	const char *msg = rd_errmsg();
	size_t i;

	for (i = 0; i < nidx; i++)
		change_error(&v[idx[i]], st, code, strlen(code), msg,
		    strlen(msg));
	for (i = from; i < n; i++)
		if (v[i].status == RD_ST_NONE)
			change_error(&v[i], st, code, strlen(code), msg,
			    strlen(msg));
}

/* True when v[j]'s _id is among the n changes of idx. */
static int
in_request(const struct change *v, const size_t *idx, size_t n, size_t j)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (v[idx[k]].typelen == v[j].typelen &&
		    v[idx[k]].keylen == v[j].keylen &&
		    memcmp(v[idx[k]].type, v[j].type, v[j].typelen) == 0 &&
		    memcmp(v[idx[k]].key, v[j].key, v[j].keylen) == 0)
			return 1;
	return 0;
}

static int
cdb_apply(struct store *s, struct change *v, size_t n)
{
	struct cdb *c = s->priv;
	size_t *idx = xcalloc(n ? n : 1, sizeof *idx);
	size_t i = 0, j, k, cnt;
	const struct json *rows;
	struct json reply;
	long status;
	int sent = 0, ret = 0;

	for (j = 0; j < n; j++)
		v[j].status = RD_ST_NONE;
	while (i < n) {
		/* A request: each _id once, at most CDB_MAX_BODY bytes. */
		sb_reset(&c->body);
		sb_adds(&c->body, "{\"docs\":[");
		for (cnt = 0, j = i; j < n; j++) {
			size_t mark = c->body.len;

			if (in_request(v, idx, cnt, j))
				break;
			if (cnt)
				sb_addc(&c->body, ',');
			if (doc_in(&c->body, &v[j]) < 0) {
				c->body.len = mark;
				c->body.buf[mark] = '\0';
				continue;
			}
			if (cnt && c->body.len > CDB_MAX_BODY) {
				c->body.len = mark;
				c->body.buf[mark] = '\0';
				break;
			}
			idx[cnt++] = j;
		}
		sb_adds(&c->body, "]}");
		i = j;
		if (cnt == 0)
			continue;
		path_start(c, "/_bulk_docs");
		if (call(c, HTTP_POST, "_bulk_docs", &reply, &status) < 0) {
			/* Kept for replay; what was refused here stays refused. */
			give_up(v, idx, cnt, i, n, RD_ST_DEFERRED, "unreachable");
			goto out;
		}
		if (status != 201 && status != 200) {
			reply_error(c, "_bulk_docs", status, &reply);
			if (!sent) {
				ret = -2;
				goto out;
			}
			give_up(v, idx, cnt, i, n, RD_ST_FAILED, "refused");
			goto out;
		}
		sent = 1;
		rows = reply.type == JSON_ARRAY ? &reply : NULL;
		for (k = 0; k < cnt; k++) {
			struct change *x = &v[idx[k]];
			const struct json *e = NULL, *id;
			size_t m;

			/* Entries come in order; match by _id all the same. */
			for (m = 0; rows && m < rows->len && !e; m++) {
				const struct json *r = &rows->u.items[(k + m) %
				    rows->len];

				if ((id = json_get(r, "id")) &&
				    id->type == JSON_STRING &&
				    id->len == x->typelen + 1 + x->keylen &&
				    memcmp(id->u.s, x->type, x->typelen) == 0 &&
				    id->u.s[x->typelen] == ':' &&
				    memcmp(id->u.s + x->typelen + 1, x->key,
				    x->keylen) == 0)
					e = r;
			}
			outcome(x, e);
		}
	}
out:
	free(idx);
	return ret;
}

const struct store_ops store_couchdb_ops = {
	.scheme = "couchdb",
	.synopsis = "couchdb:URL/DB",
	.writable = 1,
	.change_feed = 1,
	.feed_now = 1,
	.cursors = 1,
	.batch = CDB_BATCH,
	.max_batch = STORE_MAX_BATCH,
	.open = cdb_open,
	.exists = cdb_exists,
	.scope = cdb_scope,
	.fetch = cdb_fetch,
	.close = cdb_close,
	.apply = cdb_apply,
	.get = cdb_get,
	.count = cdb_count,
	.remote = 1,
};
