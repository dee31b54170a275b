/*
 * http.c - HTTP exchanges on libcurl; see http.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"
#include "json.h"
#include "log.h"

/* A reply larger than this is refused rather than held in memory. */
#define HTTP_MAX_BODY (256u << 20)
#define HTTP_MAX_HEADERS (1u << 20)

/* One transfer: a curl handle and what its request and reply need. */
struct xfer {
	struct http *h;
	CURL *curl;
	struct sb url;		/* the request's: base and path */
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers;	/* the last request's */
	struct http_resp *resp;	/* the reply being read */
	int too_large;		/* it went past HTTP_MAX_BODY or _HEADERS */
	size_t job;		/* http_send_many(): the request it carries */
};

struct http {
	struct http_settings set;
	struct http_url base;
	char *user, *password;	/* basic authentication, or NULL */
	struct xfer main;	/* http_do(), http_send() */
	CURLM *multi;		/* http_send_many(): its transfers share */
	struct xfer *pool;	/* its connections */
	size_t npool;
};

static const char *const method_names[] = {
	[HTTP_GET] = "GET",
	[HTTP_HEAD] = "HEAD",
	[HTTP_POST] = "POST",
	[HTTP_PUT] = "PUT",
	[HTTP_DELETE] = "DELETE",
	[HTTP_PROPFIND] = "PROPFIND",
	[HTTP_MKCOL] = "MKCOL",
	[HTTP_LOCK] = "LOCK",
	[HTTP_UNLOCK] = "UNLOCK",
};

#define NMETHODS (sizeof method_names / sizeof method_names[0])

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;

static void
global_init(void)
{
	global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

const char *
http_method_name(enum http_method m)
{
	return (size_t)m < NMETHODS ? method_names[m] : "?";
}

int
http_method_parse(const char *s)
{
	size_t i;

	for (i = 0; i < NMETHODS; i++)
		if (strcmp(s, method_names[i]) == 0)
			return (int)i;
	return -1;
}

static int
env_number(const char *name, double def, double min, double max, double *out)
{
	const char *v = getenv(name);
	char *end;
	double d;

	*out = def;
	if (!v || !*v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno || *end || d != d || d < min || d > max) {
		rd_seterr(RD_EXIT_USAGE, "%s: \"%s\": expected a number from %g "
		    "to %g", name, rd_quote(v, strlen(v)), min, max);
		return -1;
	}
	*out = d;
	return 0;
}

int
http_settings(struct http_settings *s)
{
	double r;

	if (env_number("RECDELTA_HTTP_TIMEOUT", 60, 0.1, 86400, &s->timeout) < 0 ||
	    env_number("RECDELTA_HTTP_RETRIES", 4, 0, 100, &r) < 0 ||
	    env_number("RECDELTA_HTTP_BACKOFF", 1, 0, 3600, &s->backoff) < 0)
		return -1;
	if (r != floor(r)) {
		rd_seterr(RD_EXIT_USAGE, "RECDELTA_HTTP_RETRIES: expected a "
		    "whole number");
		return -1;
	}
	s->retries = (int)r;
	return 0;
}

/* Replies */

void
http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof *r);
	sb_init(&r->body, 4096);
	sb_init(&r->hdr, 512);
	r->retry_after = -1;
}

void
http_resp_release(struct http_resp *r)
{
	sb_release(&r->body);
	sb_release(&r->hdr);
}

static void
resp_reset(struct http_resp *r)
{
	sb_reset(&r->body);
	sb_reset(&r->hdr);
	r->status = 0;
	r->retry_after = -1;
	r->etag = r->location = r->content_type = NULL;
}

const char *
http_header(const struct http_resp *r, const char *name)
{
	const char *p = r->hdr.buf, *end = r->hdr.buf + r->hdr.len, *v;

	while (p < end) {
		v = p + strlen(p) + 1;
		if (strcasecmp(p, name) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct xfer *h = ctx;
	struct http_resp *r = h->resp;

	if (r->body.len + size * n > HTTP_MAX_BODY) {
		h->too_large = 1;
		return 0;	/* curl reports a write error */
	}
	sb_add(&r->body, p, size * n);
	return size * n;
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Each header line of the reply, kept as "name\0value\0".  A status line
 * starts the headers afresh: those of an interim reply (100 Continue) are
 * not the reply's.
 */
static size_t
on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct xfer *h = ctx;
	struct sb *hdr = &h->resp->hdr;
	size_t len = size * n, i, e;

	if (hdr->len + len > HTTP_MAX_HEADERS) {
		h->too_large = 1;
		return 0;
	}
	for (e = len; e > 0 && is_space(p[e - 1]); e--)
		;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		sb_reset(hdr);
	} else if (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
		/* A folded line continues the last value. */
		for (i = 0; i < e && is_space(p[i]); i++)
			;
		if (hdr->len > 0 && i < e) {
			hdr->len--;
			sb_addc(hdr, ' ');
			sb_add(hdr, p + i, e - i);
			sb_addc(hdr, '\0');
		}
	} else if (e > 0) {
		const char *colon = memchr(p, ':', e);

		if (colon && colon > p) {
			sb_add(hdr, p, (size_t)(colon - p));
			sb_addc(hdr, '\0');
			for (i = (size_t)(colon - p) + 1; i < e && is_space(p[i]); i++)
				;
			sb_add(hdr, p + i, e - i);
			sb_addc(hdr, '\0');
		}
	}
	return len;
}

/* Retry-After: seconds, or an HTTP date; -1 when absent or unreadable. */
static double
retry_after(const char *v)
{
	char *end;
	double d;
	time_t t, now;

	if (!v || !*v)
		return -1;
	errno = 0;
	d = strtod(v, &end);
	if (!errno && end != v && !*end && d >= 0 && d < 86400)
		return d;
	if ((t = curl_getdate(v, NULL)) == -1)
		return -1;
	now = time(NULL);
	return t > now ? (t - now < 86400 ? (double)(t - now) : 86400) : 0;
}

/* The headers at hand, once the reply is complete. */
static void
resp_done(struct http_resp *r)
{
	r->etag = http_header(r, "ETag");
	r->location = http_header(r, "Location");
	r->content_type = http_header(r, "Content-Type");
	r->retry_after = retry_after(http_header(r, "Retry-After"));
}

/* localhost, 127.0.0.0/8 or [::1], as curl writes a parsed host. */
static int
loopback_host(const char *host)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	struct in_addr a4;
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return ntohl(a4.s_addr) >> 24 == 127;
	if (n < 2 || host[0] != '[' || host[n - 1] != ']' ||
	    n - 2 >= sizeof buf)
		return 0;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int
has_part(CURLU *h, CURLUPart what)
{
	char *p = NULL;
	int r = curl_url_get(h, what, &p, 0) == CURLUE_OK;

	curl_free(p);
	return r;
}

/* The URL as curl writes it, final slashes dropped; NULL if out of memory. */
static char *
url_text(CURLU *h)
{
	char *p = NULL, *s;
	size_t n;

	if (curl_url_get(h, CURLUPART_URL, &p, 0) != CURLUE_OK)
		return NULL;
	for (n = strlen(p); n > 0 && p[n - 1] == '/'; n--)
		;
	s = xmemdup(p, n);
	curl_free(p);
	return s;
}

int
http_url_parse(struct http_url *u, const char *url, int flags)
{
	char *scheme = NULL, *host = NULL;
	CURLUcode rc;
	CURLU *h;
	int ret = -1;

	memset(u, 0, sizeof *u);
	if (!(h = curl_url())) {
		rd_seterr(RD_EXIT_RUNTIME, "out of memory");
		return -1;
	}
	if ((rc = curl_url_set(h, CURLUPART_URL, url, 0)) != CURLUE_OK) {
		rd_seterr(RD_EXIT_USAGE, "not a URL: %s", curl_url_strerror(rc));
		goto out;
	}
	if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rd_seterr(RD_EXIT_USAGE, "not a URL with a scheme and a host");
		goto out;
	}
	if ((flags & HTTP_URL_NO_USERINFO) && (has_part(h, CURLUPART_USER) ||
	    has_part(h, CURLUPART_PASSWORD) || has_part(h, CURLUPART_OPTIONS))) {
		rd_seterr(RD_EXIT_USAGE, "the URL may not hold a user name or "
		    "password (nor an @ before the host)");
		goto out;
	}
	/* A URL is given on a command line, where anyone may read it. */
	if (has_part(h, CURLUPART_PASSWORD)) {
		rd_seterr(RD_EXIT_USAGE, "the URL may not hold a password (put "
		    "it in the netrc file or the environment)");
		goto out;
	}
	if (has_part(h, CURLUPART_QUERY) || has_part(h, CURLUPART_FRAGMENT)) {
		rd_seterr(RD_EXIT_USAGE, "the URL may not hold a query or "
		    "fragment");
		goto out;
	}
	u->loopback = loopback_host(host);
	if (strcmp(scheme, "https") != 0 && (strcmp(scheme, "http") != 0 ||
	    (!u->loopback && !(flags & HTTP_URL_INSECURE)))) {
		rd_seterr(RD_EXIT_USAGE, "the URL must start with https:// "
		    "(http:// only to localhost, 127.0.0.0/8 or [::1])");
		goto out;
	}
	if (!(u->url = url_text(h)) ||
	    curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
	    !(u->shown = url_text(h))) {
		rd_seterr(RD_EXIT_RUNTIME, "out of memory");
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		http_url_release(u);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	return ret;
}

void
http_url_release(struct http_url *u)
{
	free(u->url);
	free(u->shown);
	u->url = u->shown = NULL;
}


/* Connections */

static char *
env_dup(const char *name)
{
	const char *v = name ? getenv(name) : NULL;

	return v && *v ? xstrdup(v) : NULL;
}

static void
free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* The netrc file (see http.h): read, its entries looked up by host. */

/* A token: a word, or a "quoted" one with \ escapes; 0 at the end. */
static int
netrc_token(const char **pp, const char *end, struct sb *tok)
{
	const char *p = *pp;

	sb_reset(tok);
	while (p < end && is_space(*p))
		p++;
	if (p == end)
		return 0;
	if (*p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			sb_addc(tok, *p);
		}
		if (p < end)
			p++;
	} else {
		while (p < end && !is_space(*p))
			sb_addc(tok, *p++);
	}
	*pp = p;
	return 1;
}

struct netrc_entry {
	int host, deflt;	/* names the host; is the default entry */
	int has_login, has_password;
	struct sb login, password;
};

/* Whether e serves user (any login when NULL; an entry without one too). */
static int
netrc_serves(const struct netrc_entry *e, const char *user)
{
	return e->has_password && (!user || !e->has_login ||
	    strcmp(e->login.buf, user) == 0);
}

/*
 * In the netrc text of path, the first entry for host that serves user, or
 * else the first default entry that does: 1 with *login (NULL when the
 * entry has none) and *password, 0 when none, -1 with a message (which
 * never quotes the file).
 */
static int
netrc_find(const char *path, const char *p, const char *end,
    const char *host, const char *user, char **login, char **password)
{
	struct netrc_entry e = { 0 }, d = { 0 }, t, *found = NULL;
	struct sb tok;
	int in = 0, ret = -1;

	sb_init(&tok, 64);
	sb_init(&e.login, 32);
	sb_init(&e.password, 32);
	sb_init(&d.login, 32);
	sb_init(&d.password, 32);
	for (;;) {
		int more = netrc_token(&p, end, &tok);

		/* An entry ends at the next, at a macro or at the end. */
		if (in && (!more || strcmp(tok.buf, "machine") == 0 ||
		    strcmp(tok.buf, "default") == 0 ||
		    strcmp(tok.buf, "macdef") == 0)) {
			if (e.host && netrc_serves(&e, user)) {
				found = &e;
				break;
			}
			if (e.deflt && !d.deflt && netrc_serves(&e, user)) {
				t = d;
				d = e;
				e = t;
			}
		}
		if (!more) {
			found = d.deflt ? &d : NULL;
			break;
		}
		if (strcmp(tok.buf, "machine") == 0 ||
		    strcmp(tok.buf, "default") == 0) {
			in = 1;
			e.deflt = tok.buf[0] == 'd';
			e.host = e.has_login = e.has_password = 0;
			sb_reset(&e.login);
			sb_reset(&e.password);
			if (!e.deflt) {
				if (!netrc_token(&p, end, &tok))
					goto bad;
				e.host = strcasecmp(tok.buf, host) == 0;
			}
		} else if (strcmp(tok.buf, "login") == 0 ||
		    strcmp(tok.buf, "password") == 0 ||
		    strcmp(tok.buf, "account") == 0) {
			int what = tok.buf[0];
			struct sb *dst = what == 'l' ? &e.login : &e.password;

			if (!in || !netrc_token(&p, end, &tok))
				goto bad;
			if (what != 'a') {
				sb_reset(dst);
				sb_add(dst, tok.buf, tok.len);
				*(what == 'l' ? &e.has_login : &e.has_password) = 1;
			}
		} else if (strcmp(tok.buf, "macdef") == 0) {
			/* A macro: its name, then lines up to an empty one. */
			in = 0;
			while (p < end && !(p[0] == '\n' && p + 1 < end &&
			    p[1] == '\n'))
				p++;
		} else {
			goto bad;
		}
	}
	ret = 0;
	if (found) {
		*login = found->has_login ? xstrdup(found->login.buf) : NULL;
		*password = xstrdup(found->password.buf);
		ret = 1;
	}
	goto out;
bad:
	rd_seterr(RD_EXIT_RUNTIME, "%s: not a netrc file (machine NAME "
	    "login NAME password WORD, a line each)", path);
out:
	explicit_bzero(tok.buf, tok.cap);
	explicit_bzero(e.password.buf, e.password.cap);
	explicit_bzero(d.password.buf, d.password.cap);
	sb_release(&tok);
	sb_release(&e.login);
	sb_release(&e.password);
	sb_release(&d.login);
	sb_release(&d.password);
	return ret;
}

/* The host and user name of url; 0, or -1 with a message. */
static int
url_host_user(const char *url, char **host, char **user)
{
	char *p = NULL, *u = NULL;
	CURLU *h;
	size_t n;
	int ok;

	if (!(h = curl_url())) {
		rd_seterr(RD_EXIT_RUNTIME, "out of memory");
		return -1;
	}
	ok = curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_HOST, &p, 0) == CURLUE_OK;
	if (ok && curl_url_get(h, CURLUPART_USER, &u, CURLU_URLDECODE) !=
	    CURLUE_OK)
		u = NULL;
	curl_url_cleanup(h);
	if (!ok) {
		curl_free(p);
		rd_seterr(RD_EXIT_RUNTIME, "out of memory");
		return -1;
	}
	/* An IPv6 address as a netrc file writes it, without brackets. */
	n = strlen(p);
	*host = p[0] == '[' && n > 1 ? xmemdup(p + 1, n - 2) : xstrdup(p);
	*user = u && *u ? xstrdup(u) : NULL;
	curl_free(p);
	curl_free(u);
	return 0;
}

/* The netrc file's text into out: 1, 0 when it is optional and absent, -1. */
static int
netrc_read(const char *path, int must, struct sb *out)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (!must && errno == ENOENT)
			return 0;
		rd_seterr(RD_EXIT_RUNTIME, "%s%s: %s", must == 1 ?
		    "RECDELTA_NETRC: " : "", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || out->len + (size_t)n > (1u << 20)) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, n < 0 ?
			    strerror(errno) : "larger than 1 MiB");
			close(fd);
			return -1;
		}
		sb_add(out, buf, (size_t)n);
	}
	explicit_bzero(buf, sizeof buf);
	close(fd);
	return 1;
}

/*
 * The password in the first line of the file named by the variable var:
 * *password set (NULL when var is unset), 0; or -1 with a message.
 */
static int
password_file(const char *var, char **password)
{
	const char *path = var ? getenv(var) : NULL;
	struct stat st;
	struct sb text;
	size_t n;
	int r;

	*password = NULL;
	if (!path || !*path)
		return 0;
	sb_init(&text, 256);
	if ((r = netrc_read(path, 0, &text)) <= 0) {
		if (r == 0)
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path,
			    strerror(ENOENT));
		rd_prefixerr("%s: ", var);
		sb_release(&text);
		return -1;
	}
	if (stat(path, &st) == 0 && (st.st_mode & 077)) {
		explicit_bzero(text.buf, text.cap);
		sb_release(&text);
		rd_seterr(RD_EXIT_USAGE, "%s: %s: others may read the password "
		    "file (chmod 600 it)", var, path);
		return -1;
	}
	n = strcspn(text.buf, "\r\n");
	if (n == 0) {
		rd_seterr(RD_EXIT_USAGE, "%s: %s: no password in its first line",
		    var, path);
	} else {
		*password = xmemdup(text.buf, n);
	}
	explicit_bzero(text.buf, text.cap);
	sb_release(&text);
	return *password ? 0 : -1;
}

/* The credentials of auth (see http.h): 0, or -1 with a message. */
static int
credentials(struct http *h, const struct http_auth *auth)
{
	const char *env = getenv("RECDELTA_NETRC"), *home;
	char *host = NULL, *urluser = NULL, *login = NULL, *path = NULL;
	const char *pwvar = auth->password_var;
	struct sb text;
	int r, ret = -1;

	h->user = env_dup(auth->user_var);
	h->password = env_dup(auth->password_var);
	if (!h->password && auth->password_file_var &&
	    getenv(auth->password_file_var) &&
	    *getenv(auth->password_file_var)) {
		pwvar = auth->password_file_var;
		if (h->user && password_file(pwvar, &h->password) < 0)
			return -1;
		if (!h->user) {
			rd_seterr(RD_EXIT_USAGE, "%s is set but %s is not", pwvar,
			    auth->user_var);
			return -1;
		}
	}
	if (h->password && !h->user) {
		rd_seterr(RD_EXIT_USAGE, "%s is set but %s is not", pwvar,
		    auth->user_var);
		return -1;
	}
	if (h->password)
		return 0;
	if (env && *env)
		path = xstrdup(env);
	else if ((home = getenv("HOME")) && *home) {
		path = xmalloc(strlen(home) + sizeof "/.netrc");
		sprintf(path, "%s/.netrc", home);
	}
	sb_init(&text, 1024);
	if (path && (r = netrc_read(path, env && *env, &text)) != 0) {
		if (r < 0 || url_host_user(h->base.url, &host, &urluser) < 0 ||
		    (r = netrc_find(path, text.buf, text.buf + text.len, host,
		    h->user ? h->user : urluser, &login, &h->password)) < 0)
			goto out;
		if (r > 0 && !h->user)
			h->user = login ? login : xstrdup(urluser ? urluser : "");
		else
			free(login);
	}
	if (h->user && !h->password) {
		rd_seterr(RD_EXIT_USAGE, "%s is set but neither %s nor the "
		    "netrc file gives a password", auth->user_var,
		    auth->password_var ? auth->password_var :
		    auth->password_file_var);
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(text.buf, text.cap);
	sb_release(&text);
	free(host);
	free(urluser);
	free(path);
	return ret;
}

struct http *
http_open(const struct http_settings *s, const struct http_url *base,
    const struct http_auth *auth)
{
	struct http *h;

	pthread_once(&global_once, global_init);
	if (!global_ok) {
		rd_seterr(RD_EXIT_RUNTIME, "cannot initialise libcurl");
		return NULL;
	}
	h = xcalloc(1, sizeof *h);
	h->set = *s;
	h->base.url = xstrdup(base->url);
	h->base.shown = xstrdup(base->shown);
	h->base.loopback = base->loopback;
	h->main.h = h;
	sb_init(&h->main.url, 256);
	if (auth && credentials(h, auth) < 0) {
		http_close(h);
		return NULL;
	}
	if (!(h->main.curl = curl_easy_init())) {
		http_close(h);
		rd_seterr(RD_EXIT_RUNTIME, "cannot initialise libcurl");
		return NULL;
	}
	return h;
}

static void
xfer_release(struct xfer *x, CURLM *multi)
{
	if (x->curl) {
		if (multi)
			curl_multi_remove_handle(multi, x->curl);
		curl_easy_cleanup(x->curl);
	}
	curl_slist_free_all(x->headers);
	sb_release(&x->url);
}

void
http_close(struct http *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->npool; i++)
		xfer_release(&h->pool[i], h->multi);
	free(h->pool);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	xfer_release(&h->main, NULL);
	http_url_release(&h->base);
	free_secret(h->user);
	free_secret(h->password);
	free(h);
}

const char *
http_base(const struct http *h)
{
	return h->base.shown;
}

/* Exchanges */

/* Add "name: value" to *list; -1 with a message. */
static int
add_header(struct curl_slist **list, const char *name, const char *value)
{
	struct curl_slist *tmp;
	struct sb line;

	if (strpbrk(value, "\r\n")) {
		rd_seterr(RD_EXIT_RUNTIME, "the %s header holds a line break",
		    name ? name : "request's");
		return -1;
	}
	sb_init(&line, 64);
	if (name) {
		sb_adds(&line, name);
		sb_adds(&line, ": ");
	}
	sb_adds(&line, value);
	tmp = curl_slist_append(*list, line.buf);
	sb_release(&line);
	if (!tmp) {
		rd_seterr(RD_EXIT_RUNTIME, "out of memory");
		return -1;
	}
	*list = tmp;
	return 0;
}

static int
sends_body(const struct http_req *q)
{
	return q->body || q->method == HTTP_POST || q->method == HTTP_PUT;
}

static struct curl_slist *
request_headers(const struct http_req *q)
{
	struct curl_slist *list = NULL;
	size_t i;

	if (q->content_type ? add_header(&list, "Content-Type",
	    q->content_type) < 0 :
	    /* No made-up form type for a body sent without one. */
	    sends_body(q) && add_header(&list, NULL, "Content-Type:") < 0)
		goto fail;
	if ((q->if_match && add_header(&list, "If-Match", q->if_match) < 0) ||
	    (q->if_none_match && add_header(&list, "If-None-Match",
	    q->if_none_match) < 0) ||
	    (q->depth && add_header(&list, "Depth", q->depth) < 0))
		goto fail;
	for (i = 0; q->headers && q->headers[i]; i++)
		if (add_header(&list, NULL, q->headers[i]) < 0)
			goto fail;
	/* curl adds "Expect: 100-continue" to large bodies: a round trip more. */
	if (add_header(&list, NULL, "Expect:") < 0)
		goto fail;
	return list;
fail:
	curl_slist_free_all(list);
	return NULL;
}

/* No reply came, but one may come if asked again. */
static int
transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_QUIC_CONNECT_ERROR:
	case CURLE_PROXY:
		return 1;
	default:
		return 0;
	}
}

/* Set a curl option, or say which one curl refused and go to bad_opt. */
#define SETOPT(opt, val) do { \
	if ((rc = curl_easy_setopt(c, opt, val)) != CURLE_OK) { \
		optname = #opt; \
		goto bad_opt; \
	} \
} while (0)

/* Make x ready to carry q, its reply into r: 0, or -1 with a message. */
static int
setup(struct xfer *x, const struct http_req *q, struct http_resp *r)
{
	struct http *hh = x->h;
	struct xfer *h = x;
	const char *optname;
	CURL *c = x->curl;
	CURLcode rc;

	resp_reset(r);
	/* The last request's list, which no option points to after this. */
	curl_easy_reset(c);
	curl_slist_free_all(x->headers);
	if (!(x->headers = request_headers(q)))
		return -1;
	sb_reset(&x->url);
	sb_adds(&x->url, hh->base.url);
	sb_adds(&x->url, q->path);
	x->resp = r;
	x->too_large = 0;

	h->errbuf[0] = '\0';
	SETOPT(CURLOPT_ERRORBUFFER, h->errbuf);
	SETOPT(CURLOPT_URL, h->url.buf);
	/* A proxy from the environment is for the way out, not this machine. */
	if (hh->base.loopback)
		SETOPT(CURLOPT_NOPROXY, "*");
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_TIMEOUT_MS, (long)(hh->set.timeout * 1000));
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(hh->set.timeout < 30 ? hh->set.timeout * 1000 : 30000));
	SETOPT(CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(CURLOPT_USERAGENT, "recdelta/" RD_VERSION);
	SETOPT(CURLOPT_HTTPHEADER, h->headers);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, h);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, h);
	if (hh->password) {
		SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SETOPT(CURLOPT_USERNAME, hh->user);
		SETOPT(CURLOPT_PASSWORD, hh->password);
	}
	if (q->method == HTTP_HEAD) {
		SETOPT(CURLOPT_NOBODY, 1L);
	} else if (sends_body(q)) {
		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_POSTFIELDS, q->body ? q->body : "");
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(q->body ? q->len : 0));
	} else {
		SETOPT(CURLOPT_HTTPGET, 1L);
	}
	if (q->method != HTTP_GET && q->method != HTTP_HEAD &&
	    q->method != HTTP_POST)
		SETOPT(CURLOPT_CUSTOMREQUEST, http_method_name(q->method));
	return 0;
bad_opt:
	rd_seterr(RD_EXIT_RUNTIME, "libcurl refused %s: %s", optname,
	    curl_easy_strerror(rc));
	x->resp = NULL;
	return -1;
}

/*
 * What came of x's transfer, rc: 0 with its reply filled, or -1 with a
 * message and *again set if a retry may help.
 */
static int
finish(struct xfer *h, CURLcode rc, int *again)
{
	struct http_resp *r = h->resp;
	CURL *c = h->curl;
	int ret = -1;

	*again = 0;
	if (rc != CURLE_OK) {
		if (h->too_large)
			rd_seterr(RD_EXIT_RUNTIME, "the reply is larger than "
			    "%u MiB", HTTP_MAX_BODY >> 20);
		else
			rd_seterr(RD_EXIT_RUNTIME, "%s", h->errbuf[0] ?
			    h->errbuf : curl_easy_strerror(rc));
		*again = transient(rc);
		goto out;
	}
	if ((rc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status)) !=
	    CURLE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "cannot read the reply's status: %s",
		    curl_easy_strerror(rc));
		goto out;
	}
	resp_done(r);
	ret = 0;
out:
	h->resp = NULL;
	return ret;
}

#undef SETOPT

/* One exchange; -1 with a message and *again set if a retry may help. */
static int
exchange(struct http *h, const struct http_req *q, struct http_resp *r,
    int *again)
{
	*again = 0;
	if (setup(&h->main, q, r) < 0)
		return -1;
	return finish(&h->main, curl_easy_perform(h->main.curl), again);
}

int
http_do(struct http *h, const struct http_req *q, struct http_resp *r)
{
	int again;

	return exchange(h, q, r, &again);
}

int
http_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 ||
	    status == 503 || status == 504;
}

/* The request's name in messages: its what, or its method and path. */
static void
request_name(struct sb *out, const struct http_req *q)
{
	if (q->what) {
		sb_adds(out, q->what);
	} else {
		sb_adds(out, http_method_name(q->method));
		sb_addc(out, ' ');
		sb_adds(out, q->path);
	}
}

static void
log_retry(const struct http_req *q, int attempt, double wait)
{
	struct sb ctx, name;

	sb_init(&ctx, 128);
	sb_init(&name, 64);
	request_name(&name, q);
	sb_adds(&ctx, "\"op\":");
	json_write_string(&ctx, name.buf, name.len);
	sb_adds(&ctx, ",\"error\":");
	json_write_string(&ctx, rd_errmsg(), strlen(rd_errmsg()));
	sb_addf(&ctx, ",\"attempt\":%d,\"retry_after\":%g", attempt + 1, wait);
	rd_log("warning", "request failed; retrying", ctx.buf);
	sb_release(&name);
	sb_release(&ctx);
}

int
http_send(struct http *h, struct http_req *q, const struct http_retry *p,
    struct http_resp *r)
{
	const char *prefix = p->prefix ? p->prefix : "";
	enum http_verdict v;
	struct sb name;
	int attempt, again, ret = -1;

	sb_init(&name, 64);
	request_name(&name, q);
	for (attempt = 0;; attempt++) {
		double wait = 0;

		if (p->prepare && p->prepare(p->ctx, q) < 0)
			goto out;
		if (exchange(h, q, r, &again) < 0) {
			rd_prefixerr("%s%s: %s: ", prefix, name.buf, h->base.shown);
			if (!again)
				goto out;
		} else {
			if (p->verdict) {
				v = p->verdict(p->ctx, q, r, &wait);
			} else if (http_retryable(r->status)) {
				rd_seterr(RD_EXIT_RUNTIME, "%s%s: HTTP %ld", prefix,
				    name.buf, r->status);
				v = HTTP_RETRY;
			} else {
				v = HTTP_DONE;
			}
			if (v == HTTP_DONE)
				ret = 0;
			if (v != HTTP_RETRY)
				goto out;
			if (r->retry_after > wait)
				wait = r->retry_after;
			if (wait > 3600)
				wait = 3600;
		}
		if (attempt >= p->retries) {
			if (attempt)
				rd_suffixerr("; gave up after %d attempts",
				    attempt + 1);
			goto out;
		}
		log_retry(q, attempt, wait);
		http_backoff(&h->set, attempt, wait);
	}
out:
	sb_release(&name);
	return ret;
}

void
http_backoff(const struct http_settings *s, int attempt, double floor_s)
{
	static __thread unsigned seed;
	struct timespec ts;
	double w = s->backoff;
	int i;

	if (!seed) {
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (unsigned)ts.tv_nsec ^ (unsigned)getpid() ^
		    (unsigned)(uintptr_t)&ts;
	}
	for (i = 0; i < attempt && w < 60; i++)
		w *= 2;
	if (w > 60)
		w = 60;
	/* Full jitter over the upper half: retries of many clients spread. */
	w = w / 2 + w / 2 * ((double)rand_r(&seed) / RAND_MAX);
	if (w < floor_s)
		w = floor_s;
	ts.tv_sec = (time_t)w;
	ts.tv_nsec = (long)((w - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Many requests at once */

/* The pool's transfers: at least jobs of them, each with a curl handle. */
static int
pool_grow(struct http *h, size_t jobs)
{
	if (!h->multi && !(h->multi = curl_multi_init())) {
		rd_seterr(RD_EXIT_RUNTIME, "cannot initialise libcurl");
		return -1;
	}
	if (h->npool >= jobs)
		return 0;
	h->pool = xreallocarray(h->pool, jobs, sizeof *h->pool);
	for (; h->npool < jobs; h->npool++) {
		struct xfer *x = &h->pool[h->npool];

		memset(x, 0, sizeof *x);
		x->h = h;
		sb_init(&x->url, 256);
		if (!(x->curl = curl_easy_init())) {
			sb_release(&x->url);
			rd_seterr(RD_EXIT_RUNTIME, "cannot initialise libcurl");
			return -1;
		}
	}
	return 0;
}

/* What a reply of a request of http_send_many() asks: done or again. */
static enum http_verdict
judge(const struct http_retry *p, const struct http_req *q,
    const struct http_resp *r, double *wait)
{
	struct sb name;

	if (p->verdict)
		return p->verdict(p->ctx, q, r, wait);
	if (!http_retryable(r->status))
		return HTTP_DONE;
	sb_init(&name, 64);
	request_name(&name, q);
	rd_seterr(RD_EXIT_RUNTIME, "%s%s: HTTP %ld", p->prefix ? p->prefix : "",
	    name.buf, r->status);
	sb_release(&name);
	return HTTP_RETRY;
}

/*
 * One round: the requests pend[0..npend) at most jobs at a time; those
 * worth sending again into pend[0..*nagain), the longest wait any reply
 * asked for into *wait.  0, or -1 with a message when a request failed for
 * good.
 */
static int
round_many(struct http *h, struct http_req *q, struct http_resp *r,
    size_t *pend, size_t npend, size_t jobs, const struct http_retry *p,
    size_t *nagain, double *wait)
{
	const char *prefix = p->prefix ? p->prefix : "";
	size_t next = 0, active = 0, i, *again = xcalloc(npend + 1, sizeof *again);
	int running, left, ret = -1;
	struct xfer *x;
	CURLMsg *m;

	*nagain = 0;
	for (;;) {
		for (i = 0; i < jobs && next < npend; i++) {
			x = &h->pool[i];
			if (x->resp)
				continue;
			x->job = pend[next];
			if ((p->prepare && p->prepare(p->ctx, &q[x->job]) < 0) ||
			    setup(x, &q[x->job], &r[x->job]) < 0)
				goto out;
			if (curl_easy_setopt(x->curl, CURLOPT_PRIVATE, x) != CURLE_OK ||
			    curl_multi_add_handle(h->multi, x->curl) != CURLM_OK) {
				x->resp = NULL;
				rd_seterr(RD_EXIT_RUNTIME, "libcurl refused a transfer");
				goto out;
			}
			next++;
			active++;
		}
		if (!active)
			break;
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			rd_seterr(RD_EXIT_RUNTIME, "libcurl: the transfers failed");
			goto out;
		}
		while ((m = curl_multi_info_read(h->multi, &left))) {
			struct sb name;
			enum http_verdict v;
			double w = 0;
			int more;

			if (m->msg != CURLMSG_DONE)
				continue;
			x = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			curl_multi_remove_handle(h->multi, m->easy_handle);
			active--;
			if (finish(x, m->data.result, &more) < 0) {
				sb_init(&name, 64);
				request_name(&name, &q[x->job]);
				rd_prefixerr("%s%s: %s: ", prefix, name.buf,
				    h->base.shown);
				sb_release(&name);
				if (!more)
					goto out;
				v = HTTP_RETRY;
			} else {
				v = judge(p, &q[x->job], &r[x->job], &w);
				if (v == HTTP_FAIL)
					goto out;
				if (r[x->job].retry_after > w)
					w = r[x->job].retry_after;
			}
			if (v == HTTP_RETRY) {
				log_retry(&q[x->job], 0, w);
				again[(*nagain)++] = x->job;
				if (w > *wait)
					*wait = w;
			}
		}
		if (active && curl_multi_poll(h->multi, NULL, 0, 1000, NULL) !=
		    CURLM_OK) {
			rd_seterr(RD_EXIT_RUNTIME, "libcurl: the transfers failed");
			goto out;
		}
	}
	memcpy(pend, again, *nagain * sizeof *pend);
	ret = 0;
out:
	for (i = 0; i < h->npool; i++)
		if (h->pool[i].resp) {
			curl_multi_remove_handle(h->multi, h->pool[i].curl);
			h->pool[i].resp = NULL;
		}
	free(again);
	return ret;
}

int
http_send_many(struct http *h, struct http_req *q, struct http_resp *r,
    size_t n, int jobs, const struct http_retry *p)
{
	size_t *pend, npend = n, i;
	int attempt, ret = -1;
	double wait;

	if (jobs < 1)
		jobs = 1;
	if ((size_t)jobs > n)
		jobs = n ? (int)n : 1;
	if (pool_grow(h, (size_t)jobs) < 0)
		return -1;
	pend = xcalloc(n + 1, sizeof *pend);
	for (i = 0; i < n; i++)
		pend[i] = i;
	for (attempt = 0; npend; attempt++) {
		wait = 0;
		if (round_many(h, q, r, pend, npend, (size_t)jobs, p, &npend,
		    &wait) < 0)
			goto out;
		if (!npend)
			break;
		if (attempt >= p->retries) {
			if (attempt)
				rd_suffixerr("; gave up after %d attempts",
				    attempt + 1);
			goto out;
		}
		http_backoff(&h->set, attempt, wait > 3600 ? 3600 : wait);
	}
	ret = 0;
out:
	free(pend);
	return ret;
}
