/*
 * store_webdav.c - webdav:URL, the layout of store_layout.h on a WebDAV
 * server (Apache mod_dav, a Nextcloud or ownCloud folder), over lib/http.
 *
 * A folder written through webdav: and read through dir: on the server's
 * document root is the same store, byte for byte: store_layout.c decides
 * every name, the index and the version files; this file does the HTTP.
 * A name of the layout (TYPENAME, KEYNAME~V.json) is one path segment,
 * percent-encoded once more on the wire, so no key reaches outside the
 * store's collection.
 *
 * Reading (../protocols/webdav.md section 5): GET meta.json and the bucket
 * files it names (store_layout.h; a change feed, those changed after its
 * cursor), then the version file of each live entity of the types wanted,
 * --jobs at a time, each checked against the index's sha256.  A 404 for meta.json is an empty
 * store when the collection exists, and a missing store otherwise.  A
 * version file gone while reading is a writer that committed meanwhile: the
 * fetch fails and says to read again.
 *
 * Writing (section 6): GET meta.json (its ETag must be strong: a weak one
 * is waited out, up to five times 1.1 s, with a warning that names the
 * FileETag Digest fix), and the bucket files of the batch's keys; check
 * each change's rev against the index; PUT each new version's file with
 * If-None-Match: * (--jobs at a time; a 409 makes
 * the type's collection, then the PUT goes again; a 412 is a file of that
 * version already there: debris of a dead writer when older than the grace
 * period, then replaced with If-Match on its ETag, else another writer's,
 * and a conflict); PUT the new bucket files the same way; then commit
 * meta.json with If-Match on the ETag read (or If-None-Match: * for a new
 * store).  A 412 on the commit means another
 * commit landed: meta.json is read again, the changes whose entries still
 * hold the version they were written against are kept, the others conflict,
 * and the commit goes again, up to five attempts with jittered backoff; what
 * is left is deferred.  Only after a commit are the superseded version and
 * bucket files deleted; the version and bucket files of an attempt that did
 * not commit are deleted too.  A writer killed at any point leaves the last
 * committed index and at most unreferenced version and bucket files, which
 * the sweep (store_sweep) removes once older than the grace period.
 *
 * Credentials: RECDELTA_WEBDAV_USER and the first line of the file
 * RECDELTA_WEBDAV_PASSWORD_FILE names, else the netrc file
 * (RECDELTA_NETRC, else ~/.netrc); never on the command line, in a message
 * or in a log.  https is verified; plain http goes only to a loopback host
 * unless store_insecure_http (--insecure-http), with a warning.
 */
#include "store_layout.h"
#include "http.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

/* Requests of a batch read or written at once (fetch keeps no more bodies). */
#define WD_CHUNK 256
/* The writers' lock (see lock_store). */
#define WD_LOCK "/.recdelta-lock/"
/* Commit attempts of one batch, and reads of meta.json for a strong ETag. */
#define WD_ATTEMPTS 5

int
store_parse_jobs(const char *arg)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (errno || end == arg || *end || n < 1 || n > 64) {
		rd_seterr(RD_EXIT_USAGE, "--jobs: \"%s\": expected 1 to 64",
		    rd_quote(arg, strlen(arg)));
		return -1;
	}
	store_jobs = (int)n;
	return 0;
}

struct wd {
	char *shown;		/* the base URL for messages */
	struct http_settings set;
	struct http *http;
	struct http_resp resp;
	int refused;		/* the server refused the credentials */
	int weak_said;
	int locked;		/* a batch holds the writers' lock */
};

static const struct http_auth wd_auth = {
	.user_var = "RECDELTA_WEBDAV_USER",
	.password_file_var = "RECDELTA_WEBDAV_PASSWORD_FILE",
};

/* A name of the layout as one segment of a URL path. */
static void
url_seg(struct sb *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~') {
			sb_addc(out, c);
		} else {
			sb_addc(out, '%');
			sb_addc(out, hex[c >> 4]);
			sb_addc(out, hex[c & 15]);
		}
	}
}

/* "/TYPENAME/NAME" on the wire. */
static void
file_path(struct sb *out, const char *typename, const char *name)
{
	sb_addc(out, '/');
	url_seg(out, typename, strlen(typename));
	sb_addc(out, '/');
	url_seg(out, name, strlen(name));
}

static int
wd_open(struct store *s, const char *arg)
{
	struct http_url u;
	struct wd *w;

	if (http_url_parse(&u, arg, HTTP_URL_NO_USERINFO |
	    (store_insecure_http ? HTTP_URL_INSECURE : 0)) < 0) {
		rd_prefixerr("webdav: ");
		return -1;
	}
	if (!u.loopback && strncmp(u.url, "http:", 5) == 0)
		rd_warn("webdav: warning: %s: plain http (--insecure-http): the "
		    "password and the records cross the network unencrypted",
		    u.shown);
	w = xcalloc(1, sizeof *w);
	s->priv = w;
	w->shown = xstrdup(u.shown);
	http_resp_init(&w->resp);
	if (http_settings(&w->set) < 0 ||
	    !(w->http = http_open(&w->set, &u, &wd_auth))) {
		rd_prefixerr("webdav: ");
		http_url_release(&u);
		return -1;
	}
	http_url_release(&u);
	return 0;
}

static void
wd_close(struct store *s)
{
	struct wd *w = s->priv;

	if (!w)
		return;
	http_close(w->http);
	http_resp_release(&w->resp);
	free(w->shown);
	free(w);
	s->priv = NULL;
}

/* A scope: the base URL as curl writes it, without user name. */
static int
wd_scope(const char *arg, struct sb *out)
{
	struct http_url u;

	if (http_url_parse(&u, arg, HTTP_URL_NO_USERINFO | HTTP_URL_INSECURE) < 0) {
		rd_prefixerr("webdav: ");
		return -1;
	}
	sb_adds(out, u.shown);
	http_url_release(&u);
	return 0;
}

/* Requests */

/*
 * Retry what may pass (429, 5xx, a lock held by another client: 423);
 * refused credentials fail at once, with a message that says so.
 */
static enum http_verdict
wd_verdict(void *ctx, const struct http_req *q, const struct http_resp *r,
    double *wait)
{
	struct wd *w = ctx;

	(void)wait;
	if (r->status == 401) {
		w->refused = 1;
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s: the server refused the "
		    "credentials (HTTP 401): check RECDELTA_WEBDAV_USER and "
		    "RECDELTA_WEBDAV_PASSWORD_FILE, or the netrc file", w->shown);
		return HTTP_FAIL;
	}
	/* The lock's 403: made or removed by another writer meanwhile. */
	if (r->status == 403 && strncmp(q->path, WD_LOCK,
	    sizeof WD_LOCK - 1) != 0) {
		w->refused = 1;
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s%s: forbidden (HTTP 403)",
		    w->shown, q->path);
		return HTTP_FAIL;
	}
	if (http_retryable(r->status) || r->status == 423) {
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s%s: HTTP %ld", w->shown,
		    q->path, r->status);
		return HTTP_RETRY;
	}
	return HTTP_DONE;
}

static struct http_retry
wd_retry(struct wd *w)
{
	return (struct http_retry){
		.retries = w->set.retries, .prefix = "webdav: ",
		.verdict = wd_verdict, .ctx = w,
	};
}

static int
wd_send(struct wd *w, struct http_req *q, struct http_resp *r)
{
	struct http_retry p = wd_retry(w);

	return http_send(w->http, q, &p, r);
}

static int
wd_send_many(struct wd *w, struct http_req *q, struct http_resp *r, size_t n)
{
	struct http_retry p = wd_retry(w);

	if (n == 1)
		return http_send(w->http, q, &p, r);
	return http_send_many(w->http, q, r, n, store_jobs, &p);
}

/* A reply that is none of those expected. */
static int
unexpected(struct wd *w, const struct http_req *q, const struct http_resp *r)
{
	rd_seterr(RD_EXIT_RUNTIME, "webdav: %s%s: %s: HTTP %ld", w->shown,
	    q->path, http_method_name(q->method), r->status);
	return -1;
}

/*
 * Does the store's collection exist?  1, 0 with a message (status 4), -1
 * with a message.
 */
static int
collection_exists(struct wd *w)
{
	static const char body[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/></D:prop>"
	    "</D:propfind>";
	struct http_req q = {
		.method = HTTP_PROPFIND, .path = "/", .depth = "0",
		.content_type = "application/xml; charset=utf-8",
		.body = body, .len = sizeof body - 1,
	};

	if (wd_send(w, &q, &w->resp) < 0)
		return -1;
	if (w->resp.status == 207)
		return 1;
	if (w->resp.status == 404) {
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s: no such collection",
		    w->shown);
		return 0;
	}
	return unexpected(w, &q, &w->resp);
}

static int
wd_exists(struct store *s)
{
	return collection_exists(s->priv);
}

/*
 * GET meta.json into data (its ETag, owned, into *etag when asked): 1, 0
 * when there is none, -1 with a message.
 */
static int
read_meta(struct wd *w, struct sb *data, char **etag)
{
	struct http_req q = { .method = HTTP_GET, .path = "/meta.json" };

	if (etag)
		*etag = NULL;
	if (wd_send(w, &q, &w->resp) < 0)
		return -1;
	if (w->resp.status == 404)
		return 0;
	if (w->resp.status != 200)
		return unexpected(w, &q, &w->resp);
	sb_reset(data);
	sb_add(data, w->resp.body.buf, w->resp.body.len);
	if (etag && w->resp.etag)
		*etag = xstrdup(w->resp.etag);
	return 1;
}

/* Reading */

/* The version files a fetch reads, in layout_fetch()'s order. */
struct wdio {
	struct wd *w;
	char **paths;		/* on the wire */
	char **names;		/* NAME, as layout_fetch() asks for it */
	size_t n, next;		/* next: the first not yet handed out */
	struct http_req q[WD_CHUNK];
	struct http_resp r[WD_CHUNK];
	size_t from, to;	/* the chunk fetched: paths[from..to) */
};

static int
io_open_type(void *ctx, const char *typename)
{
	(void)ctx, (void)typename;
	return 0;
}

static void
io_close_type(void *ctx)
{
	(void)ctx;
}

/* The next chunk of version files, --jobs at a time. */
static int
io_chunk(struct wdio *io)
{
	size_t i, k;

	io->from = io->next;
	io->to = io->from + WD_CHUNK < io->n ? io->from + WD_CHUNK : io->n;
	for (i = io->from, k = 0; i < io->to; i++, k++)
		io->q[k] = (struct http_req){
			.method = HTTP_GET, .path = io->paths[i],
		};
	return wd_send_many(io->w, io->q, io->r, io->to - io->from);
}

static int
io_read(void *ctx, const char *name, const char *where, struct sb *out)
{
	struct wdio *io = ctx;
	struct http_resp *r;

	if (io->next >= io->n || strcmp(io->names[io->next], name) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s/%s: read out of order",
		    io->w->shown, where);
		return -1;
	}
	if (io->next >= io->to && io_chunk(io) < 0)
		return -1;
	r = &io->r[io->next - io->from];
	if (r->status == 404) {
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s/%s: gone while reading (a "
		    "writer committed meanwhile): read the store again",
		    io->w->shown, where);
		return -1;
	}
	if (r->status != 200)
		return unexpected(io->w, &io->q[io->next - io->from], r);
	sb_add(out, r->body.buf, r->body.len);
	io->next++;
	return 0;
}

/*
 * The bucket files names[0..n) of /meta.idx/, --jobs at a time, for
 * layout_read_index() (ctx: the store).  One gone meanwhile was superseded
 * by a commit: read the store again.
 */
static int
read_buckets(void *ctx, char *const *names, size_t n, struct sb *out)
{
	struct wd *w = ctx;
	struct http_req *q = xcalloc(n + 1, sizeof *q);
	struct http_resp *r = xcalloc(n + 1, sizeof *r);
	struct sb path;
	char **paths = xcalloc(n + 1, sizeof *paths);
	size_t i;
	int ret = -1;

	sb_init(&path, 128);
	for (i = 0; i < n; i++) {
		http_resp_init(&r[i]);
		sb_reset(&path);
		sb_adds(&path, "/" LAYOUT_IDX "/");
		url_seg(&path, names[i], strlen(names[i]));
		paths[i] = xstrdup(path.buf);
		q[i] = (struct http_req){ .method = HTTP_GET, .path = paths[i] };
	}
	if (n && wd_send_many(w, q, r, n) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (r[i].status == 404) {
			rd_seterr(RD_EXIT_RUNTIME, "webdav: %s/%s/%s: gone while "
			    "reading (a writer committed meanwhile): read the "
			    "store again", w->shown, LAYOUT_IDX, names[i]);
			goto out;
		}
		if (r[i].status != 200) {
			unexpected(w, &q[i], &r[i]);
			goto out;
		}
		sb_add(&out[i], r[i].body.buf, r[i].body.len);
	}
	ret = 0;
out:
	for (i = 0; i < n; i++) {
		http_resp_release(&r[i]);
		free(paths[i]);
	}
	free(paths);
	free(q);
	free(r);
	sb_release(&path);
	return ret;
}

/* The version files layout_fetch() will read, in its order. */
static void
plan_reads(struct wdio *io, const struct json *ents, const struct fetch_opts *o,
    const struct layout_feed *f)
{
	const struct json_member **types = layout_members(ents), **keys;
	struct sb tname, name, path;
	size_t i, j;

	sb_init(&tname, 128);
	sb_init(&name, 128);
	sb_init(&path, 256);
	for (i = 0; i < ents->len; i++) {
		const struct json_member *tm = types[i];

		if (!fetch_wants_type(o, tm->name, tm->namelen) ||
		    tm->value.type != JSON_OBJECT || tm->namelen == 0)
			continue;
		sb_reset(&tname);
		layout_type_name(&tname, tm->name, tm->namelen);
		keys = layout_members(&tm->value);
		for (j = 0; j < tm->value.len; j++) {
			struct layout_entry e;

			if (keys[j]->namelen == 0 ||
			    layout_entry_read(&keys[j]->value, &e) < 0 || e.deleted ||
			    !layout_feed_wants(f, &e))
				continue;
			sb_reset(&name);
			layout_version_name(&name, keys[j]->name, keys[j]->namelen,
			    e.v);
			sb_reset(&path);
			file_path(&path, tname.buf, name.buf);
			io->paths = xreallocarray(io->paths, io->n + 1,
			    sizeof *io->paths);
			io->names = xreallocarray(io->names, io->n + 1,
			    sizeof *io->names);
			io->paths[io->n] = xstrdup(path.buf);
			io->names[io->n++] = xstrdup(name.buf);
		}
		free(keys);
	}
	free(types);
	sb_release(&tname);
	sb_release(&name);
	sb_release(&path);
}

static int
wd_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct wd *w = s->priv;
	struct wdio *io = xcalloc(1, sizeof *io);
	const struct layout_io lio = {
		.ctx = io, .open_type = io_open_type, .read = io_read,
		.close_type = io_close_type,
	};
	struct sb meta;
	struct arena a;
	const struct json *ents;
	unsigned long long generation;
	struct layout_feed f;
	size_t i;
	int r, ret = -1;

	io->w = w;
	for (i = 0; i < WD_CHUNK; i++)
		http_resp_init(&io->r[i]);
	sb_init(&meta, 0);
	arena_init(&a);
	if ((r = read_meta(w, &meta, NULL)) < 0)
		goto out;
	if (r == 0) {
		/* No index: an empty store, or none at all. */
		if ((r = collection_exists(w)) < 0)
			goto out;
		/*
		 * An empty store, or (missing_ok) a target that the first write
		 * makes: its feed stands at generation 0.
		 */
		if (r > 0 || (o && o->missing_ok))
			ret = layout_fetch_empty(o, sink, s->spec);
		goto out;
	}
	if (layout_read_index(&a, meta.buf, meta.len, w->shown, o, &f,
	    read_buckets, w, &ents, &generation) < 0)
		goto out;
	/* --cursor-only: meta.json's generation, one request. */
	if (o && o->cursor_only)
		ret = 0;
	else {
		plan_reads(io, ents, o, &f);
		ret = layout_fetch(w->shown, ents, o, &f, &lio, sink);
	}
	if (ret == 0)
		ret = layout_feed_cursor(&f, o, sink, s->spec, generation);
out:
	for (i = 0; i < WD_CHUNK; i++)
		http_resp_release(&io->r[i]);
	for (i = 0; i < io->n; i++) {
		free(io->paths[i]);
		free(io->names[i]);
	}
	free(io->paths);
	free(io->names);
	free(io);
	arena_release(&a);
	sb_release(&meta);
	return ret;
}

/* Load meta.json into the empty index x: 1, 0 when none, -1. */
static int
load_index(struct wd *w, struct layout_index *x, struct sb *meta, char **etag)
{
	struct sb where;
	int r;

	if ((r = read_meta(w, meta, etag)) <= 0)
		return r;
	sb_init(&where, 256);
	sb_addf(&where, "%s/meta.json", w->shown);
	if (layout_index_load(x, meta->buf, meta->len, where.buf) < 0)
		r = -1;
	sb_release(&where);
	return r;
}

/* Load the bucket files the index x asks for (layout_index_pending). */
static int
load_buckets(struct wd *w, struct layout_index *x)
{
	size_t *list, n = layout_index_pending(x, &list), i, k, m;
	struct sb *out = xcalloc(WD_CHUNK, sizeof *out), where;
	char *names[WD_CHUNK];
	int ret = -1;

	sb_init(&where, 256);
	for (k = 0; k < WD_CHUNK; k++) {
		sb_init(&out[k], 0);
		names[k] = NULL;
	}
	for (i = 0; i < n; i += m) {
		m = n - i < WD_CHUNK ? n - i : WD_CHUNK;
		for (k = 0; k < m; k++) {
			sb_reset(&where);
			layout_bucket_name(&where, list[i + k], x->bgen[list[i + k]]);
			free(names[k]);
			names[k] = xstrdup(where.buf);
			sb_reset(&out[k]);
		}
		if (read_buckets(w, names, m, out) < 0)
			goto out;
		for (k = 0; k < m; k++) {
			sb_reset(&where);
			sb_addf(&where, "%s/%s/%s", w->shown, LAYOUT_IDX, names[k]);
			if (layout_index_bucket(x, list[i + k], out[k].buf,
			    out[k].len, where.buf) < 0)
				goto out;
		}
	}
	ret = 0;
out:
	for (k = 0; k < WD_CHUNK; k++) {
		sb_release(&out[k]);
		free(names[k]);
	}
	free(out);
	free(list);
	sb_release(&where);
	return ret;
}

static int
wd_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	struct wd *w = s->priv;
	struct layout_index x;
	struct layout_entry *e;
	struct sb meta, tname, name, path, where;
	const struct json *fields;
	struct http_req q = { .method = HTTP_GET };
	char ver[24];
	int r, tries = 0, ret = -1;

	sb_init(&meta, 0);
	sb_init(&tname, 128);
	sb_init(&name, 128);
	sb_init(&path, 256);
	sb_init(&where, 256);
	layout_index_init(&x);
again:
	layout_index_release(&x);
	layout_index_init(&x);
	if ((r = load_index(w, &x, &meta, NULL)) <= 0) {
		ret = r;
		goto out;
	}
	layout_index_want(&x, type, typelen, key, keylen);
	if (load_buckets(w, &x) < 0)
		goto out;
	e = layout_index_find(&x, type, typelen, key, keylen);
	if (!e || e->deleted) {
		ret = 0;
		goto out;
	}
	snprintf(ver, sizeof ver, "%llu", e->v);
	sb_reset(&tname);
	sb_reset(&name);
	sb_reset(&path);
	sb_reset(&where);
	layout_type_name(&tname, type, typelen);
	layout_version_name(&name, key, keylen, e->v);
	file_path(&path, tname.buf, name.buf);
	sb_addf(&where, "%s/%s/%s", w->shown, tname.buf, name.buf);
	q.path = path.buf;
	if (wd_send(w, &q, &w->resp) < 0)
		goto out;
	/* Gone: a writer committed a later version and collected this one. */
	if (w->resp.status == 404 && ++tries < WD_ATTEMPTS)
		goto again;
	if (w->resp.status != 200) {
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s: damaged store: HTTP %ld",
		    where.buf, w->resp.status);
		goto out;
	}
	if (layout_version_read(a, arena_memdup(a, w->resp.body.buf,
	    w->resp.body.len), w->resp.body.len, type, typelen, key, keylen,
	    e->sha, where.buf, &fields) < 0)
		goto out;
	layout_record(out, arena_memdup(a, type, typelen), typelen,
	    arena_memdup(a, key, keylen), keylen, arena_memdup(a, ver,
	    strlen(ver)), e, fields);
	if (e->mtime)
		out->mtime = arena_memdup(a, e->mtime, e->mtimelen);
	ret = 1;
out:
	layout_index_release(&x);
	sb_release(&meta);
	sb_release(&tname);
	sb_release(&name);
	sb_release(&path);
	sb_release(&where);
	return ret;
}

static long long
wd_count(struct store *s, char *const *types, size_t ntypes)
{
	struct wd *w = s->priv;
	struct layout_index x;
	struct sb meta;
	long long live = 0;
	size_t i;
	int r;

	(void)types, (void)ntypes;
	layout_index_init(&x);
	sb_init(&meta, 0);
	if ((r = load_index(w, &x, &meta, NULL)) < 0 ||
	    (layout_index_want_all(&x), load_buckets(w, &x)) < 0)
		live = -1;
	for (i = 0; live >= 0 && i < x.n; i++)
		live += !x.e[i].deleted;
	layout_index_release(&x);
	sb_release(&meta);
	return live;
}

/* Writing */

static int
weak(const char *etag)
{
	return etag && strncmp(etag, "W/", 2) == 0;
}

/*
 * Load meta.json, with a strong ETag (see above), into the empty index x:
 * 1 with *etag, 0 when there is none, -1 with a message; *refuse set when
 * no retry can help (no ETag at all).
 */
static int
load_strong(struct wd *w, struct layout_index *x, struct sb *meta, char **etag,
    int *refuse)
{
	int i, r;

	for (i = 0; ; i++) {
		if ((r = load_index(w, x, meta, etag)) <= 0)
			return r;
		if (!*etag) {
			*refuse = 1;
			rd_seterr(RD_EXIT_RUNTIME, "webdav: %s/meta.json: the server "
			    "gives no ETag: it cannot be committed safely",
			    w->shown);
			return -1;
		}
		if (!weak(*etag))
			return 1;
		if (!w->weak_said++)
			rd_warn("webdav: warning: %s/meta.json: the server gives a "
			    "weak ETag, which no If-Match accepts (Apache: set "
			    "FileETag Digest); waiting for a strong one", w->shown);
		if (i + 1 >= WD_ATTEMPTS) {
			rd_seterr(RD_EXIT_RUNTIME, "webdav: %s/meta.json: the ETag "
			    "stayed weak (Apache: set FileETag Digest)", w->shown);
			return -1;
		}
		free(*etag);
		*etag = NULL;
		layout_index_release(x);
		layout_index_init(x);
		/* Apache's MTime ETags turn strong a second after a write. */
		{
			struct timespec ts = { 1, 100000000 };

			while (nanosleep(&ts, &ts) < 0)
				;
		}
	}
}

/* MKCOL the collection at path ("/" or "/TYPENAME/"): 1 made, 0 there, -1. */
static int
mkcol(struct wd *w, const char *path)
{
	struct http_req q = { .method = HTTP_MKCOL, .path = path };

	if (wd_send(w, &q, &w->resp) < 0)
		return -1;
	if (w->resp.status == 201)
		return 1;
	if (w->resp.status == 405)
		return 0;
	if (w->resp.status == 409) {
		rd_seterr(RD_EXIT_RUNTIME, "webdav: %s%s: the parent collection "
		    "does not exist", w->shown, strcmp(path, "/") ? path : "");
		return -1;
	}
	return unexpected(w, &q, &w->resp);
}

/* What becomes of one change of a batch. */
struct pend {
	struct sb file;		/* its version file; empty for a delete */
	char *path;		/* on the wire, of version tv */
	char *typepath;		/* "/TYPENAME/" */
	unsigned long long tv;	/* the version written, or 0 */
	int written;		/* tv's file is on the server */
	int done;		/* decided: conflict, failed, deferred */
};

/*
 * PUT the version files of the changes in idx[0..n), If-None-Match: *,
 * under the store's lock.  Each one written sets written; a version there
 * already is debris, replaced.  0, or -1 with a message (nothing is
 * committed).
 */
static int
put_files(struct wd *w, struct pend *p, size_t *idx,
    size_t n)
{
	struct http_req *q = xcalloc(n + 1, sizeof *q);
	struct http_resp *r = xcalloc(n + 1, sizeof *r);
	size_t i, k, nagain = 0, *again = xcalloc(n + 1, sizeof *again);
	size_t total = n;
	int pass, ret = -1;

	for (i = 0; i < n; i++)
		http_resp_init(&r[i]);
	for (pass = 0; pass < 2 && n; pass++) {
		for (i = 0; i < n; i++)
			q[i] = (struct http_req){
				.method = HTTP_PUT, .path = p[idx[i]].path,
				.if_none_match = "*",
				.content_type = "application/json",
				.body = p[idx[i]].file.buf, .len = p[idx[i]].file.len,
			};
		if (wd_send_many(w, q, r, n) < 0)
			goto out;
		nagain = 0;
		for (i = 0; i < n; i++) {
			struct pend *pp = &p[idx[i]];

			if (r[i].status == 201 || r[i].status == 204) {
				pp->written = 1;
			} else if (r[i].status == 409 && pass == 0) {
				/* The type's collection is missing. */
				for (k = 0; k < nagain; k++)
					if (strcmp(p[again[k]].typepath,
					    pp->typepath) == 0)
						break;
				if (k == nagain && mkcol(w, pp->typepath) < 0)
					goto out;
				again[nagain++] = idx[i];
			} else if (r[i].status == 412) {
				struct http_req u = q[i];

				/*
				 * A file of this version that the index does not
				 * name: under the lock no other writer is in
				 * flight, so it is debris of one that died before
				 * its commit, and replaced.
				 */
				u.if_none_match = NULL;
				if (wd_send(w, &u, &w->resp) < 0)
					goto out;
				if (w->resp.status != 204 && w->resp.status != 201) {
					unexpected(w, &u, &w->resp);
					goto out;
				}
				pp->written = 1;
			} else {
				unexpected(w, &q[i], &r[i]);
				goto out;
			}
		}
		memcpy(idx, again, nagain * sizeof *idx);
		n = nagain;
	}
	if (n) {
		unexpected(w, &q[0], &r[0]);
		goto out;
	}
	ret = 0;
out:
	for (i = 0; i < total; i++)
		http_resp_release(&r[i]);
	free(r);
	free(again);
	free(q);
	return ret;
}

/* DELETE the files at paths[0..n) (with If-Match etags[i] when given). */
static int
delete_files(struct wd *w, char **paths, char **etags, size_t n)
{
	struct http_req *q = xcalloc(n + 1, sizeof *q);
	struct http_resp *r = xcalloc(n + 1, sizeof *r);
	size_t i;
	int ret = -1;

	for (i = 0; i < n; i++) {
		http_resp_init(&r[i]);
		q[i] = (struct http_req){
			.method = HTTP_DELETE, .path = paths[i],
			.if_match = etags ? etags[i] : NULL,
		};
	}
	if (n && wd_send_many(w, q, r, n) < 0)
		goto out;
	ret = 0;
	for (i = 0; i < n; i++)
		if (r[i].status != 204 && r[i].status != 200 &&
		    r[i].status != 404 && r[i].status != 412) {
			unexpected(w, &q[i], &r[i]);
			ret = -1;
		}
out:
	for (i = 0; i < n; i++)
		http_resp_release(&r[i]);
	free(r);
	free(q);
	return ret;
}

static void
pend_path(struct pend *p, const struct change *c, unsigned long long tv)
{
	struct sb tname, name, path;

	sb_init(&tname, 128);
	sb_init(&name, 128);
	sb_init(&path, 256);
	layout_type_name(&tname, c->type, c->typelen);
	layout_version_name(&name, c->key, c->keylen, tv);
	file_path(&path, tname.buf, name.buf);
	free(p->path);
	free(p->typepath);
	p->path = xstrdup(path.buf);
	sb_reset(&path);
	sb_addc(&path, '/');
	url_seg(&path, tname.buf, tname.len);
	sb_addc(&path, '/');
	p->typepath = xstrdup(path.buf);
	p->tv = tv;
	sb_release(&tname);
	sb_release(&name);
	sb_release(&path);
}

/*
 * The writers' lock: a collection that one writer makes (MKCOL) for its
 * batch and deletes at the end.  Apache checks If-None-Match, If-Match and
 * even its own LOCKs when a request starts and acts when it ends, so two
 * writers' conditional PUTs of one name can both succeed, and two LOCKs
 * both be granted; a MKCOL is a mkdir(2), which only one can win.  Its
 * name begins with a dot: no type's folder does (store_layout.h).
 */
/*
 * The lock another writer holds: removed when that writer is dead (a
 * process of this host that is gone) or took it more than the grace period
 * ago; 1 then, 0 when it stands (or its owner file is not written yet), -1
 * with a message.
 */
static int
break_dead_lock(struct wd *w)
{
	struct http_req q = { .method = HTTP_GET, .path = WD_LOCK "owner" };
	struct http_req d = {
		.method = HTTP_DELETE, .path = WD_LOCK, .depth = "infinity",
	};
	char host[256], ohost[256];
	long pid;
	long long since;
	int dead;

	if (wd_send(w, &q, &w->resp) < 0)
		return -1;
	if (w->resp.status != 200 || w->resp.body.len >= 300 ||
	    sscanf(w->resp.body.buf, "%255s %ld %lld", ohost, &pid, &since) != 3)
		return 0;
	if (gethostname(host, sizeof host) < 0)
		host[0] = '\0';
	host[sizeof host - 1] = '\0';
	dead = difftime(time(NULL), (time_t)since) > store_grace ||
	    (strcmp(host, ohost) == 0 && pid > 0 && kill((pid_t)pid, 0) < 0 &&
	    errno == ESRCH);
	if (!dead)
		return 0;
	if (wd_send(w, &d, &w->resp) < 0)
		return -1;
	if (w->resp.status == 204 || w->resp.status == 404)
		rd_warn("webdav: %s%s: removed the lock of writer %ld on %s, "
		    "which did not finish", w->shown, WD_LOCK, pid, ohost);
	return 1;
}

/*
 * Take the writers' lock.  1 taken; 0 when the store does not exist and
 * the batch holds no create (each change a conflict, nothing made); 0 with
 * every change deferred when another writer kept it longer than the
 * request timeout (RECDELTA_HTTP_TIMEOUT); -1 with a message.  A
 * collection made here sets *created.
 */
static int
lock_store(struct wd *w, struct change *v, size_t n, int *created)
{
	struct http_req q = { .method = HTTP_MKCOL, .path = WD_LOCK };
	struct timespec start, now;
	double wait = 0.02, waited;
	size_t i;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (wd_send(w, &q, &w->resp) < 0)
			return -1;
		if (w->resp.status == 201)
			break;
		if (w->resp.status == 409 || w->resp.status == 404) {
			/*
			 * No collection.  Only a create makes a store: in one
			 * that does not exist, an update or a delete fails its
			 * guard and nothing is made.
			 */
			for (i = 0; i < n && v[i].op != RD_OP_CREATE; i++)
				;
			if (i == n) {
				for (i = 0; i < n; i++)
					v[i].status = RD_ST_CONFLICT;
				return 0;
			}
			if ((r = mkcol(w, "/")) < 0)
				return -1;
			*created |= r;
			continue;
		}
		/* 405 there already; 403 made by another meanwhile. */
		if (w->resp.status != 405 && w->resp.status != 403)
			return unexpected(w, &q, &w->resp);
		if ((r = break_dead_lock(w)) < 0)
			return -1;
		if (r)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (double)(now.tv_sec - start.tv_sec) +
		    (double)(now.tv_nsec - start.tv_nsec) / 1e9;
		if (waited > w->set.timeout) {
			static const char code[] = "busy";
			struct sb msg;

			sb_init(&msg, 128);
			sb_addf(&msg, "webdav: %s: another writer held the store's "
			    "lock (%s) for %.0f s; a dead writer's is removed by "
			    "recdelta-push --sweep after the grace period",
			    w->shown, WD_LOCK, waited);
			for (i = 0; i < n; i++)
				change_error(&v[i], RD_ST_DEFERRED, code,
				    sizeof code - 1, msg.buf, msg.len);
			sb_release(&msg);
			return 0;
		}
		/* Another writer's batch: wait for it. */
		{
			struct http_settings set = w->set;

			set.backoff = wait;
			http_backoff(&set, 0, 0);
		}
		if ((wait *= 2) > 0.5)
			wait = 0.5;
	}
	w->locked = 1;
	/* Who holds it, for a writer that finds it after we died. */
	{
		char host[256];
		struct sb owner;
		struct http_req o = {
			.method = HTTP_PUT, .path = WD_LOCK "owner",
			.content_type = "text/plain",
		};

		if (gethostname(host, sizeof host) < 0)
			strcpy(host, "?");
		host[sizeof host - 1] = '\0';
		sb_init(&owner, 128);
		sb_addf(&owner, "%s %ld %lld\n", host, (long)getpid(),
		    (long long)time(NULL));
		o.body = owner.buf;
		o.len = owner.len;
		r = wd_send(w, &o, &w->resp);
		sb_release(&owner);
		if (r < 0)
			return -1;
		if (w->resp.status != 201 && w->resp.status != 204)
			return unexpected(w, &o, &w->resp);
	}
	return 1;
}

/* Let the lock go (a failure leaves it for the sweep). */
static void
unlock_store(struct wd *w)
{
	struct http_req q = {
		.method = HTTP_DELETE, .path = WD_LOCK, .depth = "infinity",
	};
	char *msg;
	int st;

	if (!w->locked)
		return;
	msg = xstrdup(rd_errmsg());
	st = rd_errstatus();
	if (wd_send(w, &q, &w->resp) < 0 || w->resp.status != 204)
		rd_warn("webdav: warning: %s%s: the lock stays (HTTP %ld): "
		    "recdelta-push --sweep removes it", w->shown, WD_LOCK,
		    w->resp.status);
	rd_seterr(st, "%s", msg);
	free(msg);
	w->locked = 0;
}

/* The new bucket files of a commit, put() for layout_index_write(). */
struct bucketput {
	struct pend *p;
	size_t n;
};

static int
bucket_put(void *ctx, const char *name, const struct sb *data)
{
	struct bucketput *b = ctx;
	struct pend *pp;
	struct sb path;

	b->p = xreallocarray(b->p, b->n + 1, sizeof *b->p);
	pp = &b->p[b->n++];
	memset(pp, 0, sizeof *pp);
	sb_init(&pp->file, data->len + 1);
	sb_add(&pp->file, data->buf, data->len);
	sb_init(&path, 128);
	sb_adds(&path, "/" LAYOUT_IDX "/");
	url_seg(&path, name, strlen(name));
	pp->path = xstrdup(path.buf);
	pp->typepath = xstrdup("/" LAYOUT_IDX "/");
	sb_release(&path);
	return 0;
}

static void
bucketput_release(struct bucketput *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		sb_release(&b->p[i].file);
		free(b->p[i].path);
		free(b->p[i].typepath);
	}
	free(b->p);
	b->p = NULL;
	b->n = 0;
}

/* The paths of the bucket files of b that were written, into *old. */
static void
bucketput_written(const struct bucketput *b, char ***old, size_t *nold)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->p[i].written) {
			*old = xreallocarray(*old, *nold + 1, sizeof **old);
			(*old)[(*nold)++] = xstrdup(b->p[i].path);
		}
}

static int
wd_apply(struct store *s, struct change *v, size_t n)
{
	struct wd *w = s->priv;
	struct pend *p = xcalloc(n + 1, sizeof *p);
	struct layout_index x;
	struct sb meta, out;
	struct bucketput bp = { NULL, 0 };
	size_t i, k, nput, *idx = xcalloc(n + 1, sizeof *idx), *bidx = NULL;
	char now[32], *etag = NULL, **old = NULL;
	size_t nold = 0;
	int attempt, r, found, refuse = 0, committed = 0, ret = -1;

	layout_index_init(&x);
	sb_init(&meta, 0);
	sb_init(&out, 0);
	for (i = 0; i < n; i++)
		sb_init(&p[i].file, 0);
	w->refused = 0;
	if ((r = lock_store(w, v, n, &s->created)) <= 0) {
		ret = r;
		goto out;
	}
	for (attempt = 0; ; attempt++) {
		struct http_req q = {
			.method = HTTP_PUT, .path = "/meta.json",
			.content_type = "application/json",
		};
		size_t advanced = 0;

		layout_index_release(&x);
		layout_index_init(&x);
		free(etag);
		etag = NULL;
		if ((found = load_strong(w, &x, &meta, &etag, &refuse)) < 0)
			goto out;
		/* Of a /2 index, the buckets of the batch's keys. */
		layout_index_want_batch(&x, v, n);
		if (load_buckets(w, &x) < 0)
			goto out;
		/* The guards, against the index just read. */
		nput = 0;
		for (i = 0; i < n; i++) {
			struct layout_entry *e;

			if (p[i].done)
				continue;
			if (!(e = layout_guard(&x, &v[i], w->shown)) ||
			    e->folder || (p[i].written && p[i].tv != e->v + 1)) {
				if (e)
					v[i].status = RD_ST_CONFLICT;
				p[i].done = 1;
				continue;
			}
			e->folder = i + 1;	/* one change per entity */
			if (v[i].op == RD_OP_DELETE || p[i].written)
				continue;
			sb_reset(&p[i].file);
			layout_version_file(&p[i].file, &v[i]);
			pend_path(&p[i], &v[i], e->v + 1);
			idx[nput++] = i;
		}
		/* A new store: its types' collections first, not after a 409. */
		for (i = 0; !found && attempt == 0 && i < nput; i++) {
			for (k = 0; k < i; k++)
				if (strcmp(p[idx[k]].typepath, p[idx[i]].typepath) == 0)
					break;
			if (k == i && mkcol(w, p[idx[i]].typepath) < 0)
				goto out;
		}
		if (nput && put_files(w, p, idx, nput) < 0)
			goto out;
		/* The commit: the index again, each change still standing on it. */
		if (layout_index_reload(&x) < 0)
			goto out;
		layout_now(now);
		for (i = 0; i < n; i++) {
			struct layout_entry *e;

			if (p[i].done)
				continue;
			if (!(e = layout_guard(&x, &v[i], w->shown))) {
				p[i].done = 1;
				continue;
			}
			layout_advance(&x, e, &v[i], now, v[i].op == RD_OP_DELETE ?
			    NULL : &p[i].file);
			advanced++;
		}
		if (!advanced) {
			ret = 0;
			goto out;
		}
		x.generation++;
		layout_index_plan(&x);
		sb_reset(&out);
		bucketput_release(&bp);
		if (layout_index_write(&x, &out, bucket_put, &bp) < 0)
			goto out;
		/* The new bucket files, then the root that names them. */
		free(bidx);
		bidx = xcalloc(bp.n + 1, sizeof *bidx);
		for (k = 0; k < bp.n; k++)
			bidx[k] = k;
		if (!found && attempt == 0 && bp.n && mkcol(w, bp.p[0].typepath) < 0)
			goto out;
		if (bp.n && put_files(w, bp.p, bidx, bp.n) < 0)
			goto out;
		q.body = out.buf;
		q.len = out.len;
		if (found)
			q.if_match = etag;
		else
			q.if_none_match = "*";
		if (wd_send(w, &q, &w->resp) < 0)
			goto out;
		if (w->resp.status == 200 || w->resp.status == 201 ||
		    w->resp.status == 204) {
			committed = 1;
			break;
		}
		if (w->resp.status != 412) {
			unexpected(w, &q, &w->resp);
			goto out;
		}
		/* Another commit landed first: read it, keep what still holds. */
		for (i = 0; i < n; i++)
			if (!p[i].done)
				change_release(&v[i]);
		/* This attempt's bucket files are named by no commit. */
		{
			char **mine = NULL;
			size_t nmine = 0;

			bucketput_written(&bp, &mine, &nmine);
			if (delete_files(w, mine, NULL, nmine) < 0)
				rd_log("warning", "collect failed", NULL);
			for (k = 0; k < nmine; k++)
				free(mine[k]);
			free(mine);
			bucketput_release(&bp);
		}
		if (attempt + 1 >= WD_ATTEMPTS) {
			for (i = 0; i < n; i++)
				if (!p[i].done) {
					static const char code[] = "busy";
					struct sb msg;

					sb_init(&msg, 128);
					sb_addf(&msg, "webdav: %s/meta.json: other "
					    "writers kept committing first (%d "
					    "attempts)", w->shown, WD_ATTEMPTS);
					change_error(&v[i], RD_ST_DEFERRED, code,
					    sizeof code - 1, msg.buf, msg.len);
					sb_release(&msg);
					p[i].done = 1;
				}
			ret = 0;
			goto out;
		}
		http_backoff(&w->set, attempt, 0);
	}
	/* Committed: collect the versions the index no longer names. */
	for (i = 0; i < x.n; i++)
		if (x.e[i].oldv) {
			struct sb tname, name, path;

			sb_init(&tname, 128);
			sb_init(&name, 128);
			sb_init(&path, 256);
			layout_type_name(&tname, x.e[i].type, x.e[i].typelen);
			layout_version_name(&name, x.e[i].key, x.e[i].keylen,
			    x.e[i].oldv);
			file_path(&path, tname.buf, name.buf);
			old = xreallocarray(old, nold + 1, sizeof *old);
			old[nold++] = xstrdup(path.buf);
			sb_release(&tname);
			sb_release(&name);
			sb_release(&path);
		}
	for (i = 0; i < x.nold; i++) {
		struct sb name, path;

		sb_init(&name, 64);
		sb_init(&path, 128);
		layout_bucket_name(&name, x.old[i], x.oldg[i]);
		sb_adds(&path, "/" LAYOUT_IDX "/");
		url_seg(&path, name.buf, name.len);
		old = xreallocarray(old, nold + 1, sizeof *old);
		old[nold++] = xstrdup(path.buf);
		sb_release(&name);
		sb_release(&path);
	}
	ret = 0;
out:
	/*
	 * What was written and not committed is removed now (the sweep would,
	 * later); what the commit superseded too.  Failures here leave debris
	 * for the sweep, never a wrong store.
	 */
	for (i = 0; i < n; i++)
		if (p[i].written && (!committed || p[i].done ||
		    v[i].status != RD_ST_OK)) {
			old = xreallocarray(old, nold + 1, sizeof *old);
			old[nold++] = xstrdup(p[i].path);
		}
	if (!committed)
		bucketput_written(&bp, &old, &nold);
	if (nold && w->locked) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s", ret < 0 ? rd_errmsg() : "");
		if (delete_files(w, old, NULL, nold) < 0)
			rd_log("warning", "collect failed", NULL);
		if (ret < 0)
			rd_seterr(RD_EXIT_RUNTIME, "%s", msg);
	}
	for (k = 0; k < nold; k++)
		free(old[k]);
	free(old);
	if (ret < 0)
		for (i = 0; i < n; i++)
			if (!committed)
				change_release(&v[i]);
	for (i = 0; i < n; i++) {
		sb_release(&p[i].file);
		free(p[i].path);
		free(p[i].typepath);
	}
	unlock_store(w);
	bucketput_release(&bp);
	free(bidx);
	free(p);
	free(idx);
	free(etag);
	layout_index_release(&x);
	sb_release(&meta);
	sb_release(&out);
	if (ret < 0 && (refuse || w->refused))
		return -2;
	return ret;
}

/* The sweep */

/* One member of a PROPFIND Depth: 1 reply. */
struct member {
	char *name;		/* the last segment of its href, decoded */
	char *etag;		/* or NULL */
	time_t mtime;		/* or -1 */
	int collection;
};

static void
members_free(struct member *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].etag);
	}
	free(m);
}

/* XML text between tags: the five entities undone, into out. */
static void
xml_text(struct sb *out, const char *p, const char *end)
{
	static const struct { const char *e; char c; } ent[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	size_t i;

	sb_reset(out);
	while (p < end) {
		for (i = 0; *p == '&' && i < sizeof ent / sizeof ent[0]; i++)
			if ((size_t)(end - p) >= strlen(ent[i].e) &&
			    memcmp(p, ent[i].e, strlen(ent[i].e)) == 0)
				break;
		if (*p == '&' && i < sizeof ent / sizeof ent[0]) {
			sb_addc(out, ent[i].c);
			p += strlen(ent[i].e);
		} else {
			sb_addc(out, *p++);
		}
	}
}

/* The last segment of an href path, percent-decoded once. */
static char *
href_name(const char *href)
{
	size_t n = strlen(href), len;
	const char *seg;

	while (n > 0 && href[n - 1] == '/')
		n--;
	for (seg = href + n; seg > href && seg[-1] != '/'; seg--)
		;
	return pct_decode(seg, (size_t)(href + n - seg), &len);
}

/*
 * The members of the collection at path (PROPFIND, Depth: 1), the
 * collection itself left out: 0 with *out, or -1 with a message.  Elements
 * are matched by their local names (a DAV: reply; prefixes vary), and only
 * the properties of a propstat whose status is 200 are taken.
 */
static int
list_collection(struct wd *w, const char *path, struct member **out,
    size_t *nout)
{
	static const char body[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:getetag/>"
	    "<D:getlastmodified/><D:resourcetype/></D:prop></D:propfind>";
	struct http_req q = {
		.method = HTTP_PROPFIND, .path = path, .depth = "1",
		.content_type = "application/xml; charset=utf-8",
		.body = body, .len = sizeof body - 1,
	};
	struct member cur = { 0 }, *m = NULL;
	struct sb text, href, etag, date;
	const char *p, *end;
	size_t n = 0;
	int coll = 0, first = 1;

	*out = NULL;
	*nout = 0;
	if (wd_send(w, &q, &w->resp) < 0)
		return -1;
	if (w->resp.status != 207)
		return unexpected(w, &q, &w->resp);
	sb_init(&text, 128);
	sb_init(&href, 128);
	sb_init(&etag, 64);
	sb_init(&date, 64);
	p = w->resp.body.buf;
	end = p + w->resp.body.len;
	while ((p = memchr(p, '<', (size_t)(end - p)))) {
		const char *t = p + 1, *gt = memchr(t, '>', (size_t)(end - t)), *nm;
		const char *txt = gt ? gt + 1 : end, *lt;
		int closing = *t == '/', empty;
		size_t len;

		if (!gt)
			break;
		empty = gt[-1] == '/';
		if (closing)
			t++;
		for (nm = t; nm < gt && *nm != ' ' && *nm != '/' && *nm != '\t' &&
		    *nm != '\n' && *nm != '\r'; nm++)
			;
		len = (size_t)(nm - t);
		{
			const char *colon = memchr(t, ':', len);

			if (colon) {
				len -= (size_t)(colon + 1 - t);
				t = colon + 1;
			}
		}
		lt = memchr(txt, '<', (size_t)(end - txt));
		if (!lt)
			lt = end;
#define IS(s) (len == sizeof s - 1 && memcmp(t, s, len) == 0)
		if (!closing && IS("response")) {
			sb_reset(&href);
			cur.etag = NULL;
			cur.mtime = -1;
			cur.collection = 0;
		} else if (!closing && IS("propstat")) {
			sb_reset(&etag);
			sb_reset(&date);
			coll = 0;
		} else if (!closing && !empty && IS("href")) {
			xml_text(&href, txt, lt);
		} else if (!closing && !empty && IS("getetag")) {
			xml_text(&etag, txt, lt);
		} else if (!closing && !empty && IS("getlastmodified")) {
			xml_text(&date, txt, lt);
		} else if (!closing && IS("collection")) {
			coll = 1;
		} else if (!closing && !empty && IS("status")) {
			xml_text(&text, txt, lt);
			if (strstr(text.buf, " 200")) {
				if (etag.len) {
					free(cur.etag);
					cur.etag = xstrdup(etag.buf);
				}
				if (date.len)
					cur.mtime = curl_getdate(date.buf, NULL);
				cur.collection |= coll;
			}
		} else if (closing && IS("response")) {
			/* The first response is the collection itself. */
			if (first) {
				first = 0;
				free(cur.etag);
			} else {
				m = xreallocarray(m, n + 1, sizeof *m);
				m[n] = cur;
				m[n++].name = href_name(href.buf);
			}
			cur.etag = NULL;
		}
#undef IS
		p = gt + 1;
	}
	free(cur.etag);
	sb_release(&text);
	sb_release(&href);
	sb_release(&etag);
	sb_release(&date);
	*out = m;
	*nout = n;
	return 0;
}

static int
wd_sweep(struct store *s, double grace, unsigned long *removed)
{
	struct wd *w = s->priv;
	struct layout_index x;
	struct member *types = NULL, *files = NULL;
	struct sb meta, name, path;
	char **used = NULL, **del = NULL, **tags = NULL;
	size_t nused = 0, ntypes = 0, nfiles = 0, ndel = 0, i, j;
	time_t now = time(NULL);
	int r, ret = -1;

	*removed = 0;
	layout_index_init(&x);
	sb_init(&meta, 0);
	sb_init(&name, 256);
	sb_init(&path, 256);
	if ((r = collection_exists(w)) <= 0 || load_index(w, &x, &meta, NULL) < 0 ||
	    (layout_index_want_all(&x), load_buckets(w, &x)) < 0)
		goto out;
	/* The files the index names. */
	layout_used_names(&x, &used, &nused);
	if (list_collection(w, "/", &types, &ntypes) < 0)
		goto out;
	for (i = 0; i < ntypes; i++) {
		if (!types[i].collection)
			continue;
		/* A writer's lock: a dead one's once older than the grace. */
		if (strcmp(types[i].name, ".recdelta-lock") == 0) {
			struct http_req q = {
				.method = HTTP_DELETE, .path = WD_LOCK,
				.depth = "infinity",
			};

			if (types[i].mtime < 0 ||
			    difftime(now, types[i].mtime) < grace)
				continue;
			if (wd_send(w, &q, &w->resp) < 0)
				goto out;
			if (w->resp.status == 204)
				rd_warn("webdav: %s%s: removed the lock of a writer "
				    "that did not finish", w->shown, WD_LOCK);
			continue;
		}
		sb_reset(&path);
		sb_addc(&path, '/');
		url_seg(&path, types[i].name, strlen(types[i].name));
		sb_addc(&path, '/');
		members_free(files, nfiles);
		if (list_collection(w, path.buf, &files, &nfiles) < 0)
			goto out;
		for (j = 0; j < nfiles; j++) {
			char *key = name.buf;

			if (files[j].collection || !layout_is_version_name(files[j].name) ||
			    files[j].mtime < 0 || !files[j].etag ||
			    difftime(now, files[j].mtime) < grace)
				continue;
			sb_reset(&name);
			sb_addf(&name, "%s/%s", types[i].name, files[j].name);
			key = name.buf;
			if (bsearch(&key, used, nused, sizeof *used, layout_strpcmp))
				continue;
			sb_reset(&path);
			file_path(&path, types[i].name, files[j].name);
			del = xreallocarray(del, ndel + 1, sizeof *del);
			tags = xreallocarray(tags, ndel + 1, sizeof *tags);
			del[ndel] = xstrdup(path.buf);
			tags[ndel++] = xstrdup(files[j].etag);
		}
	}
	if (delete_files(w, del, tags, ndel) < 0)
		goto out;
	*removed = ndel;
	ret = 0;
out:
	if (r == 0)
		ret = -1;
	for (i = 0; i < nused; i++)
		free(used[i]);
	for (i = 0; i < ndel; i++) {
		free(del[i]);
		free(tags[i]);
	}
	free(used);
	free(del);
	free(tags);
	members_free(types, ntypes);
	members_free(files, nfiles);
	layout_index_release(&x);
	sb_release(&meta);
	sb_release(&name);
	sb_release(&path);
	return ret;
}

const struct store_ops store_webdav_ops = {
	.scheme = "webdav",
	.synopsis = "webdav:URL",
	.writable = 1,
	/* Each batch writes the root and the buckets it changed. */
	.batch = 1000,
	.max_batch = STORE_MAX_BATCH,
	/* The index is a change feed (store_layout.h). */
	.change_feed = 1,
	.feed_now = 1,
	.cursors = 1,
	.open = wd_open,
	.exists = wd_exists,
	.scope = wd_scope,
	.fetch = wd_fetch,
	.close = wd_close,
	.apply = wd_apply,
	.get = wd_get,
	.count = wd_count,
	.remote = 1,
	.sweep = wd_sweep,
};
