/*
 * http.h - HTTP exchanges on libcurl, and the retry policy of the stores
 * that speak HTTP.
 *
 * A struct http is one connection to one server: its curl handle is reused,
 * so consecutive requests share a kept-alive connection.  http_do() makes
 * one exchange and reports what came back, whatever the status; deciding
 * whether to retry is the caller's, with http_backoff() to wait in between.
 * TLS peers are always verified; redirects are not followed; only http and
 * https are spoken.
 *
 * Every HTTP store names its server with a base URL that http_url_parse()
 * checks, with curl's own parser, before anything is sent: https, or plain
 * http only to a loopback host (localhost, 127.0.0.0/8 or [::1], decided on
 * the host curl parsed, so "http://localhost:x@evil/" is evil's); no query
 * or fragment; and, for a store whose credentials come from elsewhere, no
 * user name, password or login options.  Requests to a loopback host never
 * go through a proxy (http_proxy and the like are for the way out); others
 * use the proxies curl reads from the environment.  No message holds the
 * URL's user name or password.
 *
 * Settings come from the environment (read once by http_settings()):
 * RECDELTA_HTTP_TIMEOUT (seconds a request may take, default 60),
 * RECDELTA_HTTP_RETRIES (retries after the first attempt, default 4),
 * RECDELTA_HTTP_BACKOFF (the first wait in seconds, default 1; it doubles
 * with each retry up to 60 and is jittered to between half and all of it).
 */
#ifndef RD_HTTP_H
#define RD_HTTP_H

#include "util.h"

struct http_settings {
	double timeout;		/* seconds */
	int retries;
	double backoff;		/* seconds, first wait */
};

/* The settings from the environment; -1 with a message (status 2). */
int http_settings(struct http_settings *s);

struct http_resp {
	long status;		/* HTTP status */
	struct sb body;
	double retry_after;	/* Retry-After header in seconds, or -1 */
};

/* A checked base URL; owned strings, released with http_url_release(). */
struct http_url {
	char *url;	/* as curl writes it, final slashes dropped */
	char *shown;	/* the same without user name and password, for messages */
	int loopback;
};

enum { HTTP_URL_NO_USERINFO = 1 };

/*
 * Parse and check url (see above); flags HTTP_URL_NO_USERINFO refuses a user
 * name, password or options.  0 with u filled, or -1 with a message that
 * does not quote url (status 2).
 */
int http_url_parse(struct http_url *u, const char *url, int flags);
void http_url_release(struct http_url *u);

struct http;

/* A connection to the server of base (copied). */
struct http *http_open(const struct http_settings *s,
    const struct http_url *base);
void http_close(struct http *h);
/* The base URL for messages, without user name and password. */
const char *http_base(const struct http *h);

/*
 * One exchange: METHOD base + path (path begins with '/') with the headers
 * (a NULL-terminated list of "Name: value") and body.  0 with r filled
 * (r->body reset first; the caller sb_init()s it once), or -1 with a
 * message when no reply came (connection refused or dropped, timeout).
 */
int http_do(struct http *h, const char *method, const char *path,
    const char *const *headers, const char *body, size_t len,
    struct http_resp *r);

/* True for statuses worth retrying: 429, 500, 502, 503, 504. */
int http_retryable(long status);

/*
 * Wait before retry number attempt (0 for the first retry): the jittered
 * exponential backoff, but never less than floor seconds (a server's
 * Retry-After; 0 for none).
 */
void http_backoff(const struct http_settings *s, int attempt, double floor);

#endif
