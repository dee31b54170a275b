/* store.c - naming stores, what every store shares, and ndjson: (read and written). */
#include "digest.h"
#include "plain.h"
#include "record.h"
#include "scan.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct store_ops *const schemes[] = {
	&store_ndjson_ops, &store_json_ops, &store_sqlite_ops, &store_dir_ops,
	&store_cloudkit_ops, &store_couchdb_ops, &store_webdav_ops,
};

static int ndjson_open_path(struct store *s, const char *path);

/* The settings of the stores that speak HTTP (store.h). */
int store_jobs = 4;
int store_insecure_http;
double store_grace = 600;

/* The words that name a store, "A, B or C", for messages. */
static void
synopses(struct sb *out)
{
	size_t i, n = sizeof schemes / sizeof schemes[0];

	for (i = 0; i < n; i++) {
		if (i)
			sb_adds(out, i + 1 < n ? ", " : " or ");
		sb_adds(out, schemes[i]->synopsis);
		/* Standard input: store_open's own shorthand for ndjson:-. */
		if (schemes[i] == &store_ndjson_ops)
			sb_adds(out, ", -");
	}
}

/* The scheme a word begins with ("SCHEME:"), or NULL. */
static const struct store_ops *
scheme_of(const char *spec)
{
	const char *colon = strchr(spec, ':');
	size_t i, n;

	if (!colon)
		return NULL;
	n = (size_t)(colon - spec);
	for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (strlen(schemes[i]->scheme) == n &&
		    memcmp(schemes[i]->scheme, spec, n) == 0)
			return schemes[i];
	return NULL;
}

/*
 * A bare word, one that begins with no scheme: an existing regular file or
 * FIFO is ndjson:, an existing folder dir:, named by the word as it is (a
 * '?' in it is part of the name).  Anything else names no store, and a
 * missing path is never read as an empty one: NULL with a message (status
 * 2).
 */
static const struct store_ops *
bare_word(const char *spec)
{
	const char *colon = strchr(spec, ':');
	struct stat st;
	struct sb words;
	int e;

	if (stat(spec, &st) == 0) {
		if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))
			return &store_ndjson_ops;
		if (S_ISDIR(st.st_mode))
			return &store_dir_ops;
		e = 0;
	} else {
		e = errno;
	}
	if (colon) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": unknown store scheme \"%.*s\"",
		    rd_quote(spec, strlen(spec)), (int)(colon - spec), spec);
		return NULL;
	}
	sb_init(&words, 128);
	synopses(&words);
	rd_seterr(RD_EXIT_USAGE, "\"%s\": not a store: %s (a bare word is an "
	    "existing file or folder; a missing path is not a store; expected "
	    "%s)", rd_quote(spec, strlen(spec)),
	    e == 0 ? "not a regular file, FIFO or folder" :
	    e == ENOENT || e == ENOTDIR ? "no such file or folder" : strerror(e),
	    words.buf);
	sb_release(&words);
	return NULL;
}

int
store_open(struct store *s, const char *spec)
{
	const char *colon = strchr(spec, ':');

	memset(s, 0, sizeof *s);
	if (strcmp(spec, "-") == 0) {
		s->ops = &store_ndjson_ops;
		s->spec = xstrdup(spec);
		if (s->ops->open(s, "-") < 0)
			goto fail;
		return 0;
	}
	if (!(s->ops = scheme_of(spec))) {
		if (!(s->ops = bare_word(spec)))
			return -1;
		s->spec = xstrdup(spec);
		if ((s->ops == &store_ndjson_ops ? ndjson_open_path(s, spec) :
		    s->ops->open(s, spec)) < 0)
			goto fail;
		return 0;
	}
	s->spec = xstrdup(spec);
	if (!colon[1]) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": missing path after the scheme",
		    rd_quote(spec, strlen(spec)));
		goto fail;
	}
	if (s->ops->open(s, colon + 1) < 0)
		goto fail;
	return 0;
fail:
	free(s->spec);
	s->spec = NULL;
	return -1;
}

/* A sink that keeps the records of one shard and passes every other line. */
struct shard_sink {
	const struct shard *shard;
	const struct store_sink *next;
};

static int
shard_put(void *ctx, const struct rline *l)
{
	struct shard_sink *ss = ctx;

	if (l->rec && !shard_keeps(ss->shard, l->rec->type, l->rec->typelen,
	    l->rec->key, l->rec->keylen))
		return 0;
	return ss->next->put(ss->next->ctx, l);
}

int
store_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	if (s->ops->needs_types && !(o && o->changes) && !(o && o->ntypes)) {
		rd_seterr(RD_EXIT_USAGE, "%s: name the record types with -t TYPE "
		    "(%s)", s->spec, s->ops->needs_types);
		return -1;
	}
	if (o && o->changes && store_feed_check(s) < 0)
		return -1;
	if (o && o->cursor_only && store_feed_now_check(s) < 0)
		return -1;
	if (o && o->shard.n > 1) {
		struct shard_sink ss = { &o->shard, sink };
		struct store_sink wrap = { shard_put, &ss };

		return s->ops->fetch(s, o, &wrap);
	}
	return s->ops->fetch(s, o, sink);
}

int
store_feed_check(struct store *s)
{
	if (!s->ops->change_feed) {
		rd_seterr(RD_EXIT_USAGE, "%s: the %s: store has no change feed "
		    "(--changes)", s->spec, s->ops->scheme);
		return -1;
	}
	return s->ops->feed_check ? s->ops->feed_check(s) : 0;
}

int
store_feed_now_check(struct store *s)
{
	if (!s->ops->feed_now) {
		rd_seterr(RD_EXIT_USAGE, "%s: the %s: store cannot tell where its "
		    "change feed stands without reading it (--cursor-only)",
		    s->spec, s->ops->scheme);
		return -1;
	}
	return 0;
}

int
store_exists(struct store *s)
{
	return s->ops->exists ? s->ops->exists(s) : 1;
}

int
store_apply(struct store *s, struct change *v, size_t n)
{
	if (!s->ops->writable || !s->ops->apply) {
		rd_seterr(RD_EXIT_USAGE, "%s: the %s: store cannot be written",
		    s->spec, s->ops->scheme);
		return -1;
	}
	return s->ops->apply(s, v, n);
}

int
store_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	if (!s->ops->get) {
		rd_seterr(RD_EXIT_USAGE, "%s: the %s: store cannot look up a record",
		    s->spec, s->ops->scheme);
		return -1;
	}
	return s->ops->get(s, type, typelen, key, keylen, a, out);
}

long long
store_count(struct store *s, char *const *types, size_t ntypes)
{
	if (!s->ops->count) {
		rd_seterr(RD_EXIT_USAGE, "%s: the %s: store cannot count its "
		    "records; give --max-delete a number, not a percentage",
		    s->spec, s->ops->scheme);
		return -1;
	}
	return s->ops->count(s, types, ntypes);
}

void
store_close(struct store *s)
{
	if (s->ops && s->ops->close)
		s->ops->close(s);
	free(s->spec);
	s->spec = NULL;
	s->ops = NULL;
}

/* Scopes */

int
store_canon_path(const char *path, struct sb *out)
{
	size_t n = strlen(path), start = out->len;
	char *p, *slash, *dir, *real;
	const char *base;
	int ret = -1;

	if (n == 0) {
		rd_seterr(RD_EXIT_USAGE, "empty path");
		return -1;
	}
	while (n > 1 && path[n - 1] == '/')
		n--;
	p = xmemdup(path, n);
	if (strcmp(p, "/") == 0) {
		sb_addc(out, '/');
		free(p);
		return 0;
	}
	slash = strrchr(p, '/');
	base = slash ? slash + 1 : p;
	dir = !slash ? xstrdup(".") : slash == p ? xstrdup("/") :
	    xmemdup(p, (size_t)(slash - p));
	/* "." and "..": the folder itself, resolved whole when it exists. */
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		if ((real = realpath(p, NULL))) {
			sb_adds(out, real);
			free(real);
			ret = 0;
		} else if (slash && store_canon_path(dir, out) == 0) {
			if (strcmp(base, "..") == 0) {
				while (out->len > start + 1 &&
				    out->buf[out->len - 1] != '/')
					out->len--;
				if (out->len > start + 1)
					out->len--;
				out->buf[out->len] = '\0';
			}
			ret = 0;
		} else if (!slash) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", p, strerror(errno));
		}
		goto out;
	}
	if ((real = realpath(dir, NULL))) {
		sb_adds(out, real);
		free(real);
	} else if (!slash || (errno != ENOENT && errno != ENOTDIR)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", dir, strerror(errno));
		goto out;
	} else if (store_canon_path(dir, out) < 0) {
		goto out;
	}
	if (out->buf[out->len - 1] != '/')
		sb_addc(out, '/');
	sb_adds(out, base);
	ret = 0;
out:
	if (ret < 0) {
		out->len = start;
		out->buf[start] = '\0';
	}
	free(dir);
	free(p);
	return ret;
}

static int scope_word(const char *spec, struct sb *out, int bare);

int
store_scope(const char *spec, struct sb *out)
{
	return scope_word(spec, out, 1);
}

/* A word's scope; a bare word names no store unless bare is set. */
static int
scope_word(const char *spec, struct sb *out, int bare)
{
	const char *colon = strchr(spec, ':');
	const struct store_ops *ops;
	size_t n, start = out->len;

	if (strcmp(spec, "-") == 0 || strcmp(spec, "ndjson:-") == 0) {
		sb_adds(out, "ndjson:-");
		return 0;
	}
	if (!(ops = scheme_of(spec))) {
		/* A bare word: the scope of the word with its scheme. */
		if (!bare) {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": not a store word",
			    rd_quote(spec, strlen(spec)));
			return -1;
		}
		if (!(ops = bare_word(spec)))
			return -1;
		sb_adds(out, ops->scheme);
		sb_addc(out, ':');
		if (store_canon_path(spec, out) < 0)
			goto fail;
		/* As ndjson: reads it: a '?' ends the path without parameters. */
		if (ops == &store_ndjson_ops && strchr(spec, '?'))
			sb_addc(out, '?');
		return 0;
	}
	n = (size_t)(colon - spec);
	if (!colon[1]) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": missing path after the scheme",
		    rd_quote(spec, strlen(spec)));
		return -1;
	}
	sb_add(out, spec, n + 1);
	if (!ops->scope) {
		sb_adds(out, colon + 1);
		return 0;
	}
	if (ops->scope(colon + 1, out) < 0)
		goto fail;
	return 0;
fail:
	out->len = start;
	out->buf[start] = '\0';
	return -1;
}

char *
store_scope_canon(const char *scope)
{
	static const char sep[] = " <- ";
	const char *p = scope, *next;
	struct sb out;
	char *word;
	size_t n;

	sb_init(&out, strlen(scope) + 64);
	for (;;) {
		next = strstr(p, sep);
		n = next ? (size_t)(next - p) : strlen(p);
		word = xmemdup(p, n);
		if (scope_word(word, &out, 0) < 0)
			sb_add(&out, p, n);
		free(word);
		if (!next)
			break;
		sb_adds(&out, sep);
		p = next + sizeof sep - 1;
	}
	return out.buf;
}

int
store_is_stdin(const char *spec)
{
	return strcmp(spec, "-") == 0 || strcmp(spec, "ndjson:-") == 0 ||
	    strncmp(spec, "ndjson:-?", 9) == 0 || strcmp(spec, "json:-") == 0 ||
	    strncmp(spec, "json:-?", 7) == 0;
}

/* An ISO-8601 instant, or a date alone (midnight UTC), in seconds. */
/*
 * An instant as a window reads it: ISO-8601 with a zone, a date alone (its
 * midnight, UTC), or a date and time without a zone, "YYYY-MM-DD
 * HH:MM:SS[.fff]" as SQLite's datetime() writes it, read as UTC.
 */
static int
instant(const char *s, size_t n, long long *sec)
{
	char buf[48];
	long nsec;
	size_t i;

	if (n == 10) {
		memcpy(buf, s, n);
		memcpy(buf + n, "T00:00:00Z", 11);
		return rd_parse_iso8601(buf, n + 10, sec, &nsec);
	}
	if (rd_parse_iso8601(s, n, sec, &nsec) == 0)
		return 0;
	if (n < 19 || n >= sizeof buf - 1 || s[n - 1] < '0' || s[n - 1] > '9')
		return -1;
	for (i = 19; i < n; i++)
		if (s[i] == '+' || s[i] == '-')
			return -1;
	memcpy(buf, s, n);
	buf[n] = 'Z';
	return rd_parse_iso8601(buf, n + 1, sec, &nsec);
}

int
fetch_window_instant(const char *s, size_t n, long long *t)
{
	return instant(s, n, t);
}

int
fetch_window(struct fetch_opts *o, const char *spec)
{
	const char *eq = strchr(spec, '='), *dots;

	if (!eq || eq == spec || !(dots = strstr(eq + 1, "..")) ||
	    instant(eq + 1, (size_t)(dots - eq - 1), &o->wfrom) < 0 ||
	    instant(dots + 2, strlen(dots + 2), &o->wto) < 0 ||
	    o->wto <= o->wfrom) {
		rd_seterr(RD_EXIT_USAGE, "--window: \"%s\": expected FIELD=FROM..TO "
		    "with ISO-8601 dates, FROM before TO", rd_quote(spec,
		    strlen(spec)));
		return -1;
	}
	o->wfield = xmemdup(spec, (size_t)(eq - spec));
	return 0;
}

static int
in_window(const struct fetch_opts *o, const struct record *rec)
{
	const struct json *v = rec->fields ? json_get(rec->fields, o->wfield) :
	    NULL;
	struct window_tally *wt = o->tally;
	long long t;

	if (v && v->type == JSON_OBJECT && v->len == 1 && json_get(v, "$ts"))
		v = json_get(v, "$ts");
	if (!v || v->type == JSON_NULL) {
		if (wt)
			wt->missing++;
		return 0;
	}
	if (v->type != JSON_STRING || instant(v->u.s, v->len, &t) < 0) {
		if (wt && wt->unreadable++ == 0)
			wt->example = xmemdup(rec->key, rec->keylen);
		return 0;
	}
	if (wt)
		wt->timed++;
	return t >= o->wfrom && t < o->wto;
}

int
fetch_wants_type(const struct fetch_opts *o, const char *type, size_t n)
{
	size_t i;

	if (!o || o->ntypes == 0)
		return 1;
	for (i = 0; i < o->ntypes; i++)
		if (strlen(o->types[i]) == n && memcmp(o->types[i], type, n) == 0)
			return 1;
	return 0;
}

int
fetch_wants(const struct fetch_opts *o, const struct record *rec)
{
	if (!fetch_wants_type(o, rec->type, rec->typelen))
		return 0;
	return !o || !o->wfield || in_window(o, rec);
}

int
window_tally_check(const struct fetch_opts *o, const char *spec)
{
	const struct window_tally *wt = o->tally;
	unsigned long n;

	if (!o->wfield || !wt)
		return 0;
	n = wt->missing + wt->unreadable + wt->timed;
	if (n && !wt->timed) {
		rd_seterr(RD_EXIT_DATA, "%s: the --window field \"%s\" holds "
		    "no time in any of its %lu record%s (misspelt?)", spec,
		    rd_quote(o->wfield, strlen(o->wfield)), n, n == 1 ? "" : "s");
		return -1;
	}
	if (wt->unreadable)
		rd_warn("%s: %lu record%s a field \"%s\" that is not a date or "
		    "an instant (the first: key \"%s\"): outside every window",
		    spec, wt->unreadable, wt->unreadable == 1 ? " has" : "s have",
		    rd_quote(o->wfield, strlen(o->wfield)),
		    rd_quote(wt->example, strlen(wt->example)));
	return 0;
}

/* ndjson: a file, or standard input */

static const struct store_ops ndjson_stdin_ops;

static const struct store_ops ndjson_plain_ops;
static void ndjson_close(struct store *s);

/*
 * "ndjson:PATH[?type=T&key=FIELD]": the last '?' of the word starts the
 * parameters (a path that holds a '?' is named with a '?' after it, and no
 * parameters).  With them, every line is a plain object (lib/plain.h), read
 * only.
 */
struct ndjson {
	char *path;
	int rfd;	/* the file of the last fetch, read again; or -1 */
	struct plain plain;
};

/*
 * A scope: the file's path, canonical; standard input has one name.  The
 * parameters name no other data, as sqlite:'s key= and type= do not.
 */
static int
ndjson_scope(const char *arg, struct sb *out)
{
	const char *qm = strrchr(arg, '?');
	char *path = qm ? xmemdup(arg, (size_t)(qm - arg)) : xstrdup(arg);
	int r = 0;

	if (strcmp(path, "-") == 0)
		sb_addc(out, '-');
	else if ((r = store_canon_path(path, out)) == 0 && strchr(path, '?'))
		sb_addc(out, '?');
	free(path);
	return r;
}

/* The file at path, as it is named: no parameters. */
static int
ndjson_open_path(struct store *s, const char *path)
{
	struct ndjson *nd = xcalloc(1, sizeof *nd);

	nd->path = xstrdup(path);
	nd->rfd = -1;
	s->priv = nd;
	if (strcmp(path, "-") == 0)
		s->ops = &ndjson_stdin_ops;
	return 0;
}

static int
ndjson_open(struct store *s, const char *arg)
{
	const char *qm = strrchr(arg, '?');
	struct ndjson *nd;
	char *path;
	int r;

	if (!qm)
		return ndjson_open_path(s, arg);
	if (qm == arg) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": missing path before the "
		    "parameters", rd_quote(s->spec, strlen(s->spec)));
		return -1;
	}
	path = xmemdup(arg, (size_t)(qm - arg));
	r = ndjson_open_path(s, path);
	free(path);
	if (r < 0)
		return -1;
	nd = s->priv;
	if (plain_params(&nd->plain, s->spec, qm + 1, NULL) < 0) {
		ndjson_close(s);
		return -1;
	}
	if (plain_active(&nd->plain))
		s->ops = &ndjson_plain_ops;
	return 0;
}

/*
 * Keep the file being fetched open for ndjson_reread, when it is a regular
 * file named by a path (standard input and pipes are read once).  Without
 * it (no descriptor left) the lines carry no offset: a caller copies them.
 */
static void
ndjson_keep(struct ndjson *nd, const struct lreader *r)
{
	struct stat st;

	if (nd->rfd >= 0)
		close(nd->rfd);
	nd->rfd = -1;
	if (r->owned && fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode))
		nd->rfd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
}

/* A file that is not there; any other failure is the fetch's to report. */
static int
ndjson_exists(struct store *s)
{
	struct ndjson *nd = s->priv;
	struct stat st;

	if (strcmp(nd->path, "-") == 0 || stat(nd->path, &st) == 0 ||
	    errno != ENOENT)
		return 1;
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", nd->path, strerror(ENOENT));
	return 0;
}

static int
ndjson_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct ndjson *nd = s->priv;
	struct lreader r;
	struct arena a;
	struct json obj;
	struct record rec;
	struct sb made;
	struct scan_out so;
	const char *line, *kind;
	size_t len, kindlen;
	unsigned long nlines = 0;
	int n, ret = -1;

	if (lreader_open(&r, nd->path) < 0)
		return -1;
	ndjson_keep(nd, &r);
	arena_init(&a);
	sb_init(&made, 256);
	scan_init(&so);
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		struct rline l = {
			.text = line, .len = len, .src = r.name,
			.lineno = r.lineno,
			.offset = nd->rfd >= 0 ? r.offset : -1, .rec = NULL,
		};
		int k;

		nlines++;
		if (o && o->skip && !o->raw && !plain_active(&nd->plain)) {
			if ((k = o->skip(o->skipctx, line, len, r.lineno)) < 0)
				goto out;
			if (k)
				continue;
		}
		if (o && o->raw) {
			l.raw = 1;
			l.plain = plain_active(&nd->plain) ? &nd->plain : NULL;
			if (sink->put(sink->ctx, &l) < 0)
				goto out;
			continue;
		}
		if (o && o->scan && !o->wfield && !plain_active(&nd->plain) &&
		    scan_record(line, len, &rec, &so)) {
			if (!fetch_wants_type(o, rec.type, rec.typelen))
				continue;
			l.rec = &rec;
			l.fields = so.fields;
			l.fieldslen = so.fieldslen;
			l.canon = so.canon.buf;
			l.canonlen = so.canon.len;
			if (sink->put(sink->ctx, &l) < 0)
				goto out;
			continue;
		}
		arena_reset(&a);
		if (plain_active(&nd->plain)) {
			/* The record line made of it is no line of the file. */
			sb_reset(&made);
			k = json_parse(&a, line, len, &obj, NULL) < 0 ||
			    plain_record_line(&nd->plain, &a, &obj, &rec,
			    &made) < 0 ? -1 : 1;
			l.text = made.buf;
			l.len = made.len;
			l.offset = -1;
		} else {
			k = stream_parse_line(&a, line, len, &obj, &rec, &kind,
			    &kindlen);
		}
		if (k < 0) {
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			goto out;
		}
		if (k == 1) {
			if (!fetch_wants(o, &rec))
				continue;
			l.rec = &rec;
		}
		if (sink->put(sink->ctx, &l) < 0)
			goto out;
	}
	if (n < 0)
		goto out;
	if (nlines == 0 && !(o && o->allow_empty)) {
		rd_seterr(RD_EXIT_DATA, "%s: empty input (--allow-empty accepts it)",
		    r.name);
		goto out;
	}
	ret = 0;
out:
	scan_release(&so);
	sb_release(&made);
	arena_release(&a);
	lreader_close(&r);
	return ret;
}

int
store_lines_are_records(const struct store *s)
{
	return s->ops == &store_ndjson_ops || s->ops == &ndjson_stdin_ops;
}

static void
ndjson_close(struct store *s)
{
	struct ndjson *nd = s->priv;

	if (nd) {
		plain_release(&nd->plain);
		free(nd->path);
		if (nd->rfd >= 0)
			close(nd->rfd);
	}
	free(nd);
	s->priv = NULL;
}

static int
ndjson_reread(struct store *s, off_t offset, size_t len, char *dst)
{
	struct ndjson *nd = s->priv;

	if (rd_pread_full(nd->rfd, dst, len, offset) < 0) {
		rd_prefixerr("%s: reading back: ", s->spec);
		return -1;
	}
	return 0;
}

static int
ndjson_rereads_file(struct store *s, const char *path)
{
	struct ndjson *nd = s->priv;
	struct stat st, in;

	return nd->rfd >= 0 && stat(path, &st) == 0 && fstat(nd->rfd, &in) == 0 &&
	    in.st_dev == st.st_dev && in.st_ino == st.st_ino;
}

int
store_reread(struct store *s, off_t offset, size_t len, char *dst)
{
	if (!s->ops->reread || offset < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: the %s: store cannot read a line "
		    "again", s->spec, s->ops->scheme);
		return -1;
	}
	return s->ops->reread(s, offset, len, dst);
}

off_t
store_reread_size(struct store *s)
{
	struct ndjson *nd = s->priv;
	struct stat st;

	if (s->ops != &store_ndjson_ops || !nd || nd->rfd < 0 ||
	    fstat(nd->rfd, &st) < 0)
		return -1;
	return st.st_size;
}

int
store_rereads_file(struct store *s, const char *path)
{
	return s->ops->rereads_file && s->ops->rereads_file(s, path);
}

/*
 * ndjson: writing.  A batch rewrites the file whole, once: it is read (its
 * bytes, and its lines as lreader reads them: numbered from 1, blank ones
 * skipped), every change checked against what was read and applied to the
 * lines, the result written to a temporary file in the same folder and
 * renamed over the file, only if the file is still what was read.  A line no
 * change names keeps its bytes, blank lines and line ends included.
 */

/* One record of the file, or one a change of the batch made. */
struct ndent {
	const char *type, *key;		/* in the batch's arena */
	size_t typelen, keylen;
	size_t off, len;		/* its line in the file's bytes */
	unsigned long lineno;		/* 0: made by this batch */
	int live;			/* present now (not deleted, no tombstone) */
	long by;			/* the change that wrote it last, or -1 */
};

struct ndfile {
	struct sb bytes;		/* the file as read */
	struct stat st;
	int absent;			/* no file: an empty one, created */
	struct arena a;
	struct ndent *e;
	size_t n, cap;
	size_t *tab;			/* open addressing: entry + 1, 0 empty */
	size_t tcap;
};

static struct ndent *
nd_find(const struct ndfile *f, const char *type, size_t typelen,
    const char *key, size_t keylen, size_t *slot)
{
	size_t i = (size_t)rd_idhash(type, typelen, key, keylen) & (f->tcap - 1);

	for (; f->tab[i]; i = (i + 1) & (f->tcap - 1)) {
		struct ndent *e = &f->e[f->tab[i] - 1];

		if (e->typelen == typelen && e->keylen == keylen &&
		    memcmp(e->type, type, typelen) == 0 &&
		    memcmp(e->key, key, keylen) == 0)
			return e;
	}
	*slot = i;
	return NULL;
}

/* A new entry for (type, key), which nd_find did not find. */
static struct ndent *
nd_add(struct ndfile *f, const char *type, size_t typelen, const char *key,
    size_t keylen)
{
	struct ndent *e;
	size_t slot, i;

	if ((f->n + 1) * 2 > f->tcap) {
		size_t *old = f->tab, ocap = f->tcap;

		f->tcap = f->tcap ? 2 * f->tcap : 64;
		f->tab = xcalloc(f->tcap, sizeof *f->tab);
		for (i = 0; i < ocap; i++)
			if (old[i]) {
				e = &f->e[old[i] - 1];
				(void)nd_find(f, e->type, e->typelen, e->key,
				    e->keylen, &slot);
				f->tab[slot] = old[i];
			}
		free(old);
	}
	(void)nd_find(f, type, typelen, key, keylen, &slot);
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->e = xreallocarray(f->e, f->cap, sizeof *f->e);
	}
	e = &f->e[f->n];
	memset(e, 0, sizeof *e);
	e->type = arena_memdup(&f->a, type, typelen);
	e->typelen = typelen;
	e->key = arena_memdup(&f->a, key, keylen);
	e->keylen = keylen;
	e->by = -1;
	f->tab[slot] = ++f->n;
	return e;
}

static void
nd_release(struct ndfile *f)
{
	sb_release(&f->bytes);
	arena_release(&f->a);
	free(f->e);
	free(f->tab);
}

/* Read len bytes of fd into out, or to its end when len is (size_t)-1. */
static int
nd_read(int fd, struct sb *out, size_t len)
{
	size_t want;
	ssize_t n;

	for (;;) {
		want = len == (size_t)-1 ? 64 * 1024 : len - out->len;
		if (want == 0)
			return 0;
		sb_grow(out, want);
		n = read(fd, out->buf + out->len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		out->len += (size_t)n;
		out->buf[out->len] = '\0';
	}
}

/*
 * The next line of the bytes from *pos, as lreader_next() sees lines (blank
 * ones skipped, numbered in *lineno): 1, or 0 at the end.
 */
static int
nd_line(const struct sb *b, size_t *pos, unsigned long *lineno, size_t *off,
    size_t *len)
{
	while (*pos < b->len) {
		const char *p = b->buf + *pos,
		    *nl = memchr(p, '\n', b->len - *pos);
		size_t l = nl ? (size_t)(nl - p) : b->len - *pos, i;

		(*lineno)++;
		*off = *pos;
		*pos += l + (nl ? 1 : 0);
		for (i = 0; i < l; i++)
			if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
				break;
		if (i < l) {
			*len = l;
			return 1;
		}
	}
	return 0;
}

/* Read the file and index its records: 0, or -1 with a message. */
static int
nd_load(struct ndfile *f, const char *path)
{
	struct arena a;
	struct json obj;
	struct record rec;
	const char *kind;
	size_t pos = 0, off, len, kindlen, slot;
	unsigned long lineno = 0;
	int fd, k, ret = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno != ENOENT) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
			return -1;
		}
		f->absent = 1;
		return 0;
	}
	if (fstat(fd, &f->st) < 0 || nd_read(fd, &f->bytes, (size_t)-1) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(f->st.st_mode)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: not a regular file: it cannot be "
		    "rewritten", path);
		return -1;
	}
	arena_init(&a);
	while (nd_line(&f->bytes, &pos, &lineno, &off, &len)) {
		struct ndent *e;

		if (len > rd_max_line()) {
			rd_seterr(RD_EXIT_DATA, "%s:%lu: line too long (more than "
			    "%zu bytes)", path, lineno, rd_max_line());
			goto out;
		}
		arena_reset(&a);
		if ((k = stream_parse_line(&a, f->bytes.buf + off, len, &obj, &rec,
		    &kind, &kindlen)) < 0) {
			rd_prefixerr("%s:%lu: ", path, lineno);
			goto out;
		}
		if (k == 0)
			continue;
		if (f->tcap && (e = nd_find(f, rec.type, rec.typelen, rec.key,
		    rec.keylen, &slot))) {
			rd_seterr(RD_EXIT_DATA, "%s:%lu: duplicate record (type "
			    "\"%s\", key \"%s\"), first at line %lu", path, lineno,
			    rd_quote(rec.type, rec.typelen),
			    rd_quote(rec.key, rec.keylen), e->lineno);
			goto out;
		}
		e = nd_add(f, rec.type, rec.typelen, rec.key, rec.keylen);
		e->off = off;
		e->len = len;
		e->lineno = lineno;
		e->live = !rec.deleted;
	}
	ret = 0;
out:
	arena_release(&a);
	return ret;
}

/*
 * Whether change c (an update or a delete) may go to entry e as it is now:
 * its rev, when it carries one, equals the record's (a record without one
 * matches none), and its "seen" the hash of the record's fields.  1 yes, 0
 * a conflict, -1 with a message.
 */
static int
nd_guard(struct ndfile *f, const struct ndent *e, const struct change *v,
    const struct change *c, struct arena *a, struct sb *scratch)
{
	struct ruleview none = { 0 };
	const struct json *fields;
	const char *rev = NULL, *kind;
	size_t revlen = 0, kindlen;
	unsigned char h[RD_HASH_LEN];
	char hex[2 * RD_HASH_LEN + 1];
	struct json obj;
	struct record rec;

	arena_reset(a);
	if (e->by >= 0) {
		/* Written by this batch: its fields, and no rev. */
		fields = v[e->by].fields;
	} else {
		if (stream_parse_line(a, f->bytes.buf + e->off, e->len, &obj, &rec,
		    &kind, &kindlen) != 1)
			return -1;
		fields = rec.fields;
		rev = rec.rev;
		revlen = rec.revlen;
	}
	if (c->rev && c->revlen && (!rev || revlen != c->revlen ||
	    memcmp(rev, c->rev, revlen) != 0))
		return 0;
	if (!c->seen)
		return 1;
	if (record_hash(&none, fields, h, scratch) < 0)
		return -1;
	hex_encode(hex, h, RD_HASH_LEN);
	return c->seenlen == 2 * RD_HASH_LEN && memcmp(hex, c->seen,
	    c->seenlen) == 0;
}

/* The line a change writes: type, key and fields; no rev, no mtime. */
static void
nd_record(struct sb *out, const struct change *c)
{
	struct record rec = {
		.type = c->type, .typelen = c->typelen,
		.key = c->key, .keylen = c->keylen, .fields = c->fields,
	};

	stream_write_record(out, &rec);
}

/* The new content: the file's bytes with the batch's changes applied. */
static void
nd_build(const struct ndfile *f, const struct change *v, struct sb *out)
{
	const struct sb *b = &f->bytes;
	size_t i, pos = 0;

	/* Entries of the file come first, in file order. */
	for (i = 0; i < f->n && f->e[i].lineno; i++) {
		const struct ndent *e = &f->e[i];
		size_t end = e->off + e->len;

		if (e->by < 0)
			continue;
		sb_add(out, b->buf + pos, e->off - pos);
		if (e->live) {
			nd_record(out, &v[e->by]);
			/* A line ended by "\r\n" keeps its "\r". */
			pos = b->buf[end - 1] == '\r' ? end - 1 : end;
		} else {
			pos = end < b->len ? end + 1 : end;
		}
	}
	sb_add(out, b->buf + pos, b->len - pos);
	for (; i < f->n; i++) {
		if (!f->e[i].live)
			continue;
		if (out->len && out->buf[out->len - 1] != '\n')
			sb_addc(out, '\n');
		nd_record(out, &v[f->e[i].by]);
		sb_addc(out, '\n');
	}
}

/*
 * Whether the file at path is still what f read: the same file (device,
 * inode), size, modification time and bytes; or, when there was none, still
 * none.  1 yes, 0 no, -1 with a message.
 */
static int
nd_unchanged(const struct ndfile *f, const char *path)
{
	struct stat st;
	struct sb now;
	int fd, same;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return f->absent;
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (f->absent) {
		close(fd);
		return 0;
	}
	if (fstat(fd, &st) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_dev != f->st.st_dev || st.st_ino != f->st.st_ino ||
	    st.st_size != f->st.st_size ||
	    st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec) {
		close(fd);
		return 0;
	}
	/* One more byte than was read: a file that grew says so. */
	sb_init(&now, f->bytes.len + 1);
	if (nd_read(fd, &now, f->bytes.len + 1) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		close(fd);
		sb_release(&now);
		return -1;
	}
	close(fd);
	{
		unsigned char a[RD_SHA256_LEN], b[RD_SHA256_LEN];

		rd_sha256(f->bytes.buf, f->bytes.len, a);
		rd_sha256(now.buf, now.len, b);
		same = memcmp(a, b, sizeof a) == 0;
	}
	sb_release(&now);
	return same;
}

/*
 * Write data to a new temporary file beside path (its name in *tmp, owned),
 * with the given mode, synced.  0, or -1 with a message and nothing left.
 */
static int
nd_write_tmp(const char *path, const struct sb *data, mode_t mode, char **tmp)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0, off = 0;
	int fd, e;

	*tmp = xmalloc(strlen(path) + 16);
	sprintf(*tmp, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
	if ((fd = mkstemp(*tmp)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return -1;
	}
	if (fchmod(fd, mode) < 0)
		goto fail;
	while (off < data->len) {
		ssize_t n = write(fd, data->buf + off, data->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(*tmp);
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", *tmp, strerror(e));
	free(*tmp);
	*tmp = NULL;
	return -1;
}

/* Sync the folder that holds path, so that a rename in it lasts. */
static int
nd_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = !slash ? xstrdup(".") : slash == path ? xstrdup("/") :
	    xmemdup(path, (size_t)(slash - path));
	int fd, ret = -1;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
	    fsync(fd) == 0)
		ret = 0;
	if (ret < 0)
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

static int
ndjson_apply(struct store *s, struct change *v, size_t n)
{
	struct ndjson *nd = s->priv;
	struct ndfile f;
	struct arena a;
	struct sb scratch, out;
	char *tmp = NULL;
	size_t i, slot, applied = 0;
	mode_t mode;
	int r, ret = -1;

	for (i = 0; i < n; i++)
		change_release(&v[i]);
	if (n == 0)
		return 0;
	memset(&f, 0, sizeof f);
	sb_init(&f.bytes, 4096);
	arena_init(&f.a);
	arena_init(&a);
	sb_init(&scratch, 256);
	sb_init(&out, 4096);
	if (nd_load(&f, nd->path) < 0)
		goto out;
	/* Each change in turn, against the file as the ones before left it. */
	for (i = 0; i < n; i++) {
		struct change *c = &v[i];
		struct ndent *e = f.tcap ? nd_find(&f, c->type, c->typelen, c->key,
		    c->keylen, &slot) : NULL;

		if (c->op == RD_OP_CREATE) {
			if (e && e->live) {
				c->status = RD_ST_CONFLICT;
				continue;
			}
			if (!e)
				e = nd_add(&f, c->type, c->typelen, c->key, c->keylen);
		} else if (c->op == RD_OP_UPDATE || c->op == RD_OP_DELETE) {
			if (!e || !e->live) {
				c->status = RD_ST_CONFLICT;
				continue;
			}
			if ((r = nd_guard(&f, e, v, c, &a, &scratch)) < 0) {
				rd_prefixerr("%s:%lu: ", nd->path, e->lineno);
				goto out;
			}
			if (r == 0) {
				c->status = RD_ST_CONFLICT;
				continue;
			}
		} else {
			change_fail(c, "op", "an ndjson: store applies create, "
			    "update and delete only");
			continue;
		}
		e->live = c->op != RD_OP_DELETE;
		e->by = (long)i;
		c->status = RD_ST_OK;
		applied++;
	}
	if (applied == 0) {
		ret = 0;
		goto out;
	}
	nd_build(&f, v, &out);
	if (f.absent) {
		mode = umask(0);
		umask(mode);
		mode = 0666 & ~mode;
	} else {
		mode = f.st.st_mode & 07777;
	}
	if (nd_write_tmp(nd->path, &out, mode, &tmp) < 0)
		goto out;
	/*
	 * Renamed over the file only if nobody wrote it since it was read;
	 * a file that appears meanwhile is not replaced (link, not rename).
	 */
	if ((r = nd_unchanged(&f, nd->path)) < 0)
		goto out;
	if (r && f.absent && link(tmp, nd->path) < 0) {
		if (errno != EEXIST) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", nd->path,
			    strerror(errno));
			goto out;
		}
		r = 0;
	} else if (r && !f.absent && rename(tmp, nd->path) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", nd->path, strerror(errno));
		goto out;
	}
	if (!r) {
		for (i = 0; i < n; i++)
			if (v[i].status != RD_ST_FAILED)
				v[i].status = RD_ST_CONFLICT;
		ret = 0;
		goto out;
	}
	if (f.absent)
		unlink(tmp);
	free(tmp);
	tmp = NULL;
	if (nd_sync_dir(nd->path) < 0)
		goto out;
	for (i = 0; i < n; i++)
		if (v[i].status == RD_ST_OK)
			change_ok(&v[i], NULL, 0);
	if (f.absent)
		s->created = 1;
	ret = 0;
out:
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	if (ret < 0)
		for (i = 0; i < n; i++)
			change_release(&v[i]);
	sb_release(&out);
	sb_release(&scratch);
	arena_release(&a);
	nd_release(&f);
	return ret;
}

/*
 * Look one record up by reading the file: the last fetch's lines may be
 * stale once a push wrote it.
 */
static int
ndjson_get(struct store *s, const char *type, size_t typelen,
    const char *key, size_t keylen, struct arena *a, struct record *out)
{
	struct ndjson *nd = s->priv;
	struct lreader r;
	struct arena scratch;
	struct json obj;
	struct record rec;
	const char *line, *kind;
	size_t len, kindlen;
	int n, k, ret = -1;

	if (access(nd->path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (lreader_open(&r, nd->path) < 0)
		return -1;
	arena_init(&scratch);
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		arena_reset(&scratch);
		if ((k = stream_parse_line(&scratch, line, len, &obj, &rec, &kind,
		    &kindlen)) < 0) {
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			goto out;
		}
		if (k == 0 || rec.typelen != typelen || rec.keylen != keylen ||
		    memcmp(rec.type, type, typelen) != 0 ||
		    memcmp(rec.key, key, keylen) != 0)
			continue;
		if (rec.deleted) {
			ret = 0;
			goto out;
		}
		/* Parsed again in the caller's arena, which it outlives. */
		line = arena_memdup(a, line, len);
		if (stream_parse_line(a, line, len, &obj, out, &kind,
		    &kindlen) != 1)
			goto out;
		ret = 1;
		goto out;
	}
	if (n == 0)
		ret = 0;
out:
	arena_release(&scratch);
	lreader_close(&r);
	return ret;
}

/* The live records of the file (tombstones aside); a missing file has none. */
static long long
ndjson_count(struct store *s, char *const *types, size_t ntypes)
{
	struct ndjson *nd = s->priv;
	struct lreader r;
	struct arena a;
	struct json obj;
	struct record rec;
	const char *line, *kind;
	size_t len, kindlen;
	long long count = 0;
	int n, k;

	(void)types, (void)ntypes;
	if (access(nd->path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (lreader_open(&r, nd->path) < 0)
		return -1;
	arena_init(&a);
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		arena_reset(&a);
		if ((k = stream_parse_line(&a, line, len, &obj, &rec, &kind,
		    &kindlen)) < 0) {
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			break;
		}
		if (k == 1 && !rec.deleted)
			count++;
	}
	arena_release(&a);
	lreader_close(&r);
	return n == 0 ? count : -1;
}

const struct store_ops store_ndjson_ops = {
	.scheme = "ndjson",
	.synopsis = "ndjson:PATH",
	.writable = 1,
	.content_guard = 1,
	.batch = STORE_MAX_BATCH,
	.max_batch = STORE_MAX_BATCH,
	.open = ndjson_open,
	.exists = ndjson_exists,
	.scope = ndjson_scope,
	.fetch = ndjson_fetch,
	.close = ndjson_close,
	.apply = ndjson_apply,
	.get = ndjson_get,
	.count = ndjson_count,
	.reread = ndjson_reread,
	.rereads_file = ndjson_rereads_file,
};

/*
 * Plain objects under type= and key=: read only, since writing would have
 * to choose a shape for every record.
 */
static const struct store_ops ndjson_plain_ops = {
	.scheme = "ndjson",
	.synopsis = "ndjson:PATH?type=T&key=FIELD",
	.readonly = "a store read with type= and key=",
	.open = ndjson_open,
	.exists = ndjson_exists,
	.scope = ndjson_scope,
	.fetch = ndjson_fetch,
	.close = ndjson_close,
};

/* Standard input: read once, never written. */
static const struct store_ops ndjson_stdin_ops = {
	.scheme = "ndjson",
	.synopsis = "ndjson:PATH",
	.open = ndjson_open,
	.exists = ndjson_exists,
	.scope = ndjson_scope,
	.fetch = ndjson_fetch,
	.close = ndjson_close,
	.reread = ndjson_reread,
	.rereads_file = ndjson_rereads_file,
};

void
change_ok(struct change *c, const char *rev, size_t len)
{
	c->status = RD_ST_OK;
	free(c->newrev);
	c->newrev = rev ? xmemdup(rev, len) : NULL;
}

void
change_error(struct change *c, enum rd_status st, const char *code,
    size_t codelen, const char *msg, size_t msglen)
{
	c->status = st;
	free(c->errcode);
	free(c->errmsg);
	c->errcode = xmemdup(code, codelen);
	c->errmsg = xmemdup(msg, msglen);
}

int
change_fail(struct change *c, const char *code, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	msg = xmalloc((size_t)n + 1);
	*msg = '\0';
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	utf8_fix(msg);
	c->status = RD_ST_FAILED;
	free(c->errcode);
	free(c->errmsg);
	c->errcode = xstrdup(code);
	c->errmsg = msg;
	return -1;
}

void
change_release(struct change *c)
{
	free(c->newrev);
	free(c->errcode);
	free(c->errmsg);
	c->newrev = c->errcode = c->errmsg = NULL;
	c->status = RD_ST_NONE;
}
