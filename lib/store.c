/* store.c - naming stores, what every store shares, and ndjson:. */
#include "record.h"
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
	&store_ndjson_ops, &store_sqlite_ops, &store_dir_ops, &store_cloudkit_ops,
	&store_webdav_ops,
};

static const char *const later[] = { "couchdb" };

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

int
store_open(struct store *s, const char *spec)
{
	const char *colon = strchr(spec, ':');
	size_t i, n;

	memset(s, 0, sizeof *s);
	if (strcmp(spec, "-") == 0) {
		s->ops = &store_ndjson_ops;
		s->spec = xstrdup(spec);
		if (s->ops->open(s, "-") < 0)
			goto fail;
		return 0;
	}
	if (!colon) {
		struct sb words;

		sb_init(&words, 128);
		synopses(&words);
		rd_seterr(RD_EXIT_USAGE, "\"%s\": not a store (expected %s)",
		    rd_quote(spec, strlen(spec)), words.buf);
		sb_release(&words);
		return -1;
	}
	n = (size_t)(colon - spec);
	for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		if (strlen(schemes[i]->scheme) != n ||
		    memcmp(schemes[i]->scheme, spec, n) != 0)
			continue;
		s->ops = schemes[i];
		s->spec = xstrdup(spec);
		if (!colon[1]) {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": missing path after the scheme",
			    rd_quote(spec, strlen(spec)));
			goto fail;
		}
		if (s->ops->open(s, colon + 1) < 0)
			goto fail;
		return 0;
	}
	for (i = 0; i < sizeof later / sizeof later[0]; i++)
		if (strlen(later[i]) == n && memcmp(later[i], spec, n) == 0) {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": the %s: store is not in "
			    "this version", rd_quote(spec, strlen(spec)), later[i]);
			return -1;
		}
	rd_seterr(RD_EXIT_USAGE, "\"%s\": unknown store scheme \"%.*s\"",
	    rd_quote(spec, strlen(spec)), (int)n, spec);
	return -1;
fail:
	free(s->spec);
	s->spec = NULL;
	return -1;
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
	return s->ops->fetch(s, o, sink);
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

int
store_scope(const char *spec, struct sb *out)
{
	const char *colon = strchr(spec, ':');
	size_t i, n, start = out->len;

	if (store_is_stdin(spec)) {
		sb_adds(out, "ndjson:-");
		return 0;
	}
	n = colon ? (size_t)(colon - spec) : 0;
	for (i = 0; colon && i < sizeof schemes / sizeof schemes[0]; i++) {
		if (strlen(schemes[i]->scheme) != n ||
		    memcmp(schemes[i]->scheme, spec, n) != 0)
			continue;
		if (!colon[1]) {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": missing path after the "
			    "scheme", rd_quote(spec, strlen(spec)));
			return -1;
		}
		sb_add(out, spec, n + 1);
		if (!schemes[i]->scope) {
			sb_adds(out, colon + 1);
			return 0;
		}
		if (schemes[i]->scope(colon + 1, out) < 0) {
			out->len = start;
			out->buf[start] = '\0';
			return -1;
		}
		return 0;
	}
	rd_seterr(RD_EXIT_USAGE, "\"%s\": not a store", rd_quote(spec,
	    strlen(spec)));
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
		if (store_scope(word, &out) < 0)
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
	return strcmp(spec, "-") == 0 || strcmp(spec, "ndjson:-") == 0;
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

struct ndjson {
	char *path;
	int rfd;	/* the file of the last fetch, read again; or -1 */
};

/* A scope: the file's path, canonical; standard input has one name. */
static int
ndjson_scope(const char *arg, struct sb *out)
{
	if (strcmp(arg, "-") == 0) {
		sb_addc(out, '-');
		return 0;
	}
	return store_canon_path(arg, out);
}

static int
ndjson_open(struct store *s, const char *arg)
{
	struct ndjson *nd = xcalloc(1, sizeof *nd);

	nd->path = xstrdup(arg);
	nd->rfd = -1;
	s->priv = nd;
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
	const char *line, *kind;
	size_t len, kindlen;
	unsigned long nlines = 0;
	int n, ret = -1;

	if (lreader_open(&r, nd->path) < 0)
		return -1;
	ndjson_keep(nd, &r);
	arena_init(&a);
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		struct rline l = {
			.text = line, .len = len, .src = r.name,
			.lineno = r.lineno,
			.offset = nd->rfd >= 0 ? r.offset : -1, .rec = NULL,
		};
		int k;

		nlines++;
		arena_reset(&a);
		k = stream_parse_line(&a, line, len, &obj, &rec, &kind, &kindlen);
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
	arena_release(&a);
	lreader_close(&r);
	return ret;
}

static void
ndjson_close(struct store *s)
{
	struct ndjson *nd = s->priv;

	if (nd) {
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

int
store_rereads_file(struct store *s, const char *path)
{
	return s->ops->rereads_file && s->ops->rereads_file(s, path);
}

const struct store_ops store_ndjson_ops = {
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
