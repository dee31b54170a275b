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

struct http;

struct http *http_open(const struct http_settings *s);
void http_close(struct http *h);

/*
 * One exchange: METHOD url with the headers (a NULL-terminated list of
 * "Name: value") and body.  0 with r filled (r->body reset first; the
 * caller sb_init()s it once), or -1 with a message when no reply came
 * (connection refused or dropped, timeout).
 */
int http_do(struct http *h, const char *method, const char *url,
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
