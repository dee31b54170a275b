/*
 * http.c - HTTP exchanges on libcurl; see http.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"

/* A reply larger than this is refused rather than held in memory. */
#define HTTP_MAX_BODY (256u << 20)

struct http {
	CURL *curl;
	struct http_settings set;
	struct http_url base;
	struct sb url;		/* the request's: base and path */
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;

static void
global_init(void)
{
	global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
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

static size_t
on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct http_resp *r = ctx;

	if (r->body.len + size * n > HTTP_MAX_BODY)
		return 0;	/* curl reports a write error */
	sb_add(&r->body, p, size * n);
	return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct http_resp *r = ctx;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	char buf[64];
	char *end;
	double d;

	if (len > sizeof name - 1 && len - (sizeof name - 1) < sizeof buf &&
	    strncasecmp(p, name, sizeof name - 1) == 0) {
		memcpy(buf, p + sizeof name - 1, len - (sizeof name - 1));
		buf[len - (sizeof name - 1)] = '\0';
		errno = 0;
		d = strtod(buf, &end);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		/* Seconds; the HTTP-date form is not used by these servers. */
		if (!errno && end != buf && !*end && d >= 0 && d < 86400)
			r->retry_after = d;
	}
	return len;
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
	if (has_part(h, CURLUPART_QUERY) || has_part(h, CURLUPART_FRAGMENT)) {
		rd_seterr(RD_EXIT_USAGE, "the URL may not hold a query or "
		    "fragment");
		goto out;
	}
	u->loopback = loopback_host(host);
	if (strcmp(scheme, "https") != 0 &&
	    (strcmp(scheme, "http") != 0 || !u->loopback)) {
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

struct http *
http_open(const struct http_settings *s, const struct http_url *base)
{
	struct http *h;

	pthread_once(&global_once, global_init);
	if (!global_ok) {
		rd_seterr(RD_EXIT_RUNTIME, "cannot initialise libcurl");
		return NULL;
	}
	h = xcalloc(1, sizeof *h);
	h->set = *s;
	if (!(h->curl = curl_easy_init())) {
		free(h);
		rd_seterr(RD_EXIT_RUNTIME, "cannot initialise libcurl");
		return NULL;
	}
	h->base.url = xstrdup(base->url);
	h->base.shown = xstrdup(base->shown);
	h->base.loopback = base->loopback;
	sb_init(&h->url, 256);
	return h;
}

void
http_close(struct http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	http_url_release(&h->base);
	sb_release(&h->url);
	free(h);
}

const char *
http_base(const struct http *h)
{
	return h->base.shown;
}

int
http_do(struct http *h, const char *method, const char *path,
    const char *const *headers, const char *body, size_t len,
    struct http_resp *r)
{
	struct curl_slist *list = NULL, *tmp;
	CURL *c = h->curl;
	CURLcode rc;
	size_t i;

	sb_reset(&r->body);
	r->status = 0;
	r->retry_after = -1;
	for (i = 0; headers && headers[i]; i++) {
		if (!(tmp = curl_slist_append(list, headers[i]))) {
			curl_slist_free_all(list);
			rd_seterr(RD_EXIT_RUNTIME, "out of memory");
			return -1;
		}
		list = tmp;
	}
	/* curl adds "Expect: 100-continue" to large POSTs: one more round trip. */
	if ((tmp = curl_slist_append(list, "Expect:")))
		list = tmp;

	sb_reset(&h->url);
	sb_adds(&h->url, h->base.url);
	sb_adds(&h->url, path);

	curl_easy_reset(c);
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_URL, h->url.buf);
	/* A proxy from the environment is for the way out, not this machine. */
	if (h->base.loopback &&
	    curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK) {
		curl_slist_free_all(list);
		rd_seterr(RD_EXIT_RUNTIME, "cannot turn the proxy off");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(h->set.timeout * 1000));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(h->set.timeout < 30 ? h->set.timeout * 1000 : 30000));
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "recdelta/" RD_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(body ? len : 0));
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(c);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(list);
	if (rc != CURLE_OK) {
		if (rc == CURLE_WRITE_ERROR)
			rd_seterr(RD_EXIT_RUNTIME, "the reply is larger than "
			    "%u MiB", HTTP_MAX_BODY >> 20);
		else
			rd_seterr(RD_EXIT_RUNTIME, "%s", h->errbuf[0] ?
			    h->errbuf : curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	return 0;
}

int
http_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 ||
	    status == 503 || status == 504;
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
