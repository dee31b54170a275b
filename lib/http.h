/*
 * http.h - HTTP exchanges on libcurl, the credentials and the retry policy
 * of every store that speaks HTTP.
 *
 * A struct http is one connection to one server: its curl handle is reused,
 * so consecutive requests share a kept-alive connection.  http_do() makes
 * one exchange and reports what came back, whatever the status;
 * http_send() makes it again while the failure is worth retrying (below).
 * TLS peers are always verified; redirects are not followed; only http and
 * https are spoken.  Every curl option set is checked: one curl refuses is
 * an error with its name, never ignored.
 *
 * A request (struct http_req) is a method of enum http_method, a path
 * under the base URL, the conditional and content headers a store needs
 * (If-Match, If-None-Match, Depth, Content-Type), any more headers, and a
 * body.  No header may hold a line break.  A reply (struct http_resp) keeps
 * its status, its body and its headers: ETag, Location, Content-Type and
 * Retry-After at hand, any other by name with http_header().
 *
 * Every HTTP store names its server with a base URL that http_url_parse()
 * checks, with curl's own parser, before anything is sent: https, or plain
 * http only to a loopback host (localhost, 127.0.0.0/8 or [::1], decided on
 * the host curl parsed, so "http://localhost:x@evil/" is evil's); no query
 * or fragment; never a password (the URL is on a command line); and, for a
 * store whose credentials come from elsewhere, no user name or login
 * options either.  Requests to a loopback host never go through a proxy
 * (http_proxy and the like are for the way out); others use the proxies
 * curl reads from the environment.  No message holds the URL's user name.
 *
 * Credentials (struct http_auth, for a store that asks for them): HTTP
 * basic authentication with a user name and password from two environment
 * variables the store names, or a user name from one and the password from
 * the file another names (RECDELTA_COUCHDB_USER and
 * RECDELTA_COUCHDB_PASSWORD_FILE: its first line, which a file that others
 * may read is warned about).  Without them,
 * the netrc file, RECDELTA_NETRC or else ~/.netrc, read when the connection
 * is opened: the first entry for the URL's host that has the user name
 * wanted (the variable's, else the URL's) or no login, or any login when
 * none is wanted; else the "default" entry so chosen.  A user name wanted
 * and no password found is an error for the variable's, and for the URL's
 * is sent without one.  The file is read here, not by libcurl, whose netrc
 * code has sent the password of another login for the host (curl 7.88).
 * No credential is ever on a command line, in a message or in a log.
 *
 * Settings come from the environment (read once by http_settings()):
 * RECDELTA_HTTP_TIMEOUT (seconds a request may take, default 60),
 * RECDELTA_HTTP_RETRIES (retries after the first attempt, default 4),
 * RECDELTA_HTTP_BACKOFF (the first wait in seconds, default 1; it doubles
 * with each retry up to 60 and is jittered to between half and all of it).
 *
 * The retry policy, the same for every store: a request is sent again
 * when no reply came for a reason that may pass (connection refused, reset
 * or dropped, a timeout, a name that did not resolve, a TLS handshake cut
 * short), or when the reply's status is 429, 500, 502, 503 or 504 (or the
 * caller's verdict says so); after the backoff above, and never sooner than
 * the reply's Retry-After (seconds or an HTTP date; at most an hour).  A
 * reply too large, a certificate that does not verify or a URL curl cannot
 * use are not retried.  The caller gives the number of retries.
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

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_PROPFIND,
	HTTP_MKCOL,
	HTTP_LOCK,
	HTTP_UNLOCK
};

/* The method's name on the wire ("PROPFIND"). */
const char *http_method_name(enum http_method m);
/* The method named s, exactly as on the wire; -1 if there is none. */
int http_method_parse(const char *s);

/* One request; every pointer is borrowed for the exchange. */
struct http_req {
	enum http_method method;
	const char *path;		/* after the base; begins with '/' */
	const char *content_type;	/* of the body; NULL: none sent */
	const char *if_match;		/* an ETag as the server gave it, or "*" */
	const char *if_none_match;
	const char *depth;		/* PROPFIND: "0" or "1" */
	const char *const *headers;	/* others, "Name: value", NULL-ended */
	const char *body;		/* NULL: none (POST, PUT: empty) */
	size_t len;
	const char *what;		/* names it in messages ("records/modify") */
};

/*
 * A reply.  The strings are the reply's own, valid until the next exchange
 * with the same struct; http_resp_init() once, http_resp_release() at the
 * end.
 */
struct http_resp {
	long status;		/* HTTP status */
	struct sb body;
	double retry_after;	/* Retry-After in seconds, or -1 */
	const char *etag;	/* headers at hand, NULL when absent */
	const char *location;
	const char *content_type;
	struct sb hdr;		/* private: "name\0value\0" for each header */
};

void http_resp_init(struct http_resp *r);
void http_resp_release(struct http_resp *r);
/* The value of the reply's first header called name (any case), or NULL. */
const char *http_header(const struct http_resp *r, const char *name);

/* A checked base URL; owned strings, released with http_url_release(). */
struct http_url {
	char *url;	/* as curl writes it, final slashes dropped */
	char *shown;	/* the same without user name, for messages */
	int loopback;
};

enum { HTTP_URL_NO_USERINFO = 1, HTTP_URL_INSECURE = 2 };

/*
 * Parse and check url (see above); flags HTTP_URL_NO_USERINFO refuses a user
 * name and options too, HTTP_URL_INSECURE lets plain http go to any host
 * (the user asked for it: the caller warns).  0 with u filled, or -1 with a message that does
 * not quote url (status 2).
 */
int http_url_parse(struct http_url *u, const char *url, int flags);
void http_url_release(struct http_url *u);

/* The environment variables a store reads its credentials from (above). */
struct http_auth {
	const char *user_var;
	const char *password_var;	/* or NULL */
	/*
	 * Or NULL: a variable naming a file whose first line is the password
	 * (read when password_var gives none; a file that others may read is
	 * refused).
	 */
	const char *password_file_var;
};

struct http;

/*
 * A connection to the server of base (copied).  auth NULL: no credentials
 * are sent, the netrc file is not read (a store that signs its requests).
 * NULL with a message when the credentials are incomplete or the netrc
 * file named by RECDELTA_NETRC cannot be read.
 */
struct http *http_open(const struct http_settings *s,
    const struct http_url *base, const struct http_auth *auth);
void http_close(struct http *h);
/* The base URL for messages, without user name. */
const char *http_base(const struct http *h);

/*
 * One exchange of q.  0 with r filled, whatever the status, or -1 with a
 * message when no reply came (connection refused or dropped, timeout).
 */
int http_do(struct http *h, const struct http_req *q, struct http_resp *r);

/* What a verdict tells http_send() to do with a reply. */
enum http_verdict {
	HTTP_DONE,	/* the reply is the answer */
	HTTP_RETRY,	/* worth sending again; a message is set */
	HTTP_FAIL	/* an error, not worth retrying; a message is set */
};

/* What http_send() needs from its caller. */
struct http_retry {
	int retries;		/* after the first attempt: s->retries, say */
	const char *prefix;	/* of every message: "cloudkit: " */
	/*
	 * Before each attempt, e.g. to sign the request afresh: 0, or -1 with
	 * a message to give up at once.  NULL: none.
	 */
	int (*prepare)(void *ctx, struct http_req *q);
	/*
	 * What to do with a reply.  *wait is 0 on the call; a verdict may
	 * raise it to a wait the body asks for.  NULL: retry the statuses
	 * above with the message "PREFIXWHAT: HTTP N", take any other reply.
	 */
	enum http_verdict (*verdict)(void *ctx, const struct http_req *q,
	    const struct http_resp *r, double *wait);
	void *ctx;
};

/*
 * q sent until a reply is the answer, under the policy above: 0 with r
 * filled, or -1 with the last attempt's message (with "; gave up after N
 * attempts" when there were retries).  A request that failed without a
 * reply is "PREFIXWHAT: BASE: what curl says".  Each retry is logged
 * ("request failed; retrying": op, error, attempt, retry_after).
 */
int http_send(struct http *h, struct http_req *q, const struct http_retry *p,
    struct http_resp *r);

/*
 * The n requests q[i] sent at once, at most jobs at a time, over one curl
 * multi handle that keeps its connections from call to call; replies in
 * r[i].  Each is sent again under the policy of http_send(): the requests
 * a round leaves unanswered go again together after one backoff.  0 with
 * every reply filled, or -1 with the message of a request that failed for
 * good or ran out of retries (the others' replies are then unspecified).
 */
int http_send_many(struct http *h, struct http_req *q, struct http_resp *r,
    size_t n, int jobs, const struct http_retry *p);

/* True for statuses worth retrying: 429, 500, 502, 503, 504. */
int http_retryable(long status);

/*
 * Wait before retry number attempt (0 for the first retry): the jittered
 * exponential backoff, but never less than floor seconds (a server's
 * Retry-After; 0 for none).
 */
void http_backoff(const struct http_settings *s, int attempt, double floor);

#endif
