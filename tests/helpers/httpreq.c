/*
 * httpreq - one request through lib/http, for tests/http.bats: what no
 * program sends yet (PUT, PROPFIND, MKCOL, conditional headers, netrc
 * credentials) run against a loopback server.  Built by make check.
 *
 * httpreq [-A] [-u USERVAR] [-p PASSVAR] [-r RETRIES] [-t TYPE] [-i ETAG]
 *     [-n ETAG] [-D DEPTH] [-H 'NAME: VALUE']... [-d BODY] [-s NAME]... [-b]
 *     METHOD BASE PATH
 *
 * Sends METHOD BASE+PATH with http_send(): -A authenticates (netrc), -u and
 * -p name the environment variables of the user name and password (and
 * imply -A), -r the retries (default RECDELTA_HTTP_RETRIES), -t the body's
 * Content-Type, -i If-Match, -n If-None-Match, -D Depth, -H another header,
 * -d the body.  Writes "status N", then the reply's ETag, Location,
 * Content-Type and Retry-After where it has them ("etag VALUE"), then
 * "NAME: VALUE" (or "NAME: -") for each -s, then with -b a blank line and
 * the body.  Exit 0 when a reply came, whatever its status; 2 usage; 4 and
 * a message when none did.  RECDELTA_LOG is honoured.
 *
 * With RECDELTA_FAIL_SETOPT=N the Nth curl_easy_setopt() of the process
 * fails (CURLE_UNKNOWN_OPTION): the definition below takes the place of
 * libcurl's for lib/http.o, linked into this program, and passes every
 * other call on to libcurl's.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../../lib/http.h"
#include "../../lib/log.h"

typedef CURLcode (*setopt_fn)(CURL *, CURLoption, ...);

CURLcode
(curl_easy_setopt)(CURL *c, CURLoption opt, ...)
{
	static setopt_fn real;
	static long calls;
	const char *at = getenv("RECDELTA_FAIL_SETOPT");
	CURLcode rc;
	va_list ap;

	if (at && ++calls == atol(at))
		return CURLE_UNKNOWN_OPTION;
	if (!real && !(real = (setopt_fn)dlsym(RTLD_NEXT, "curl_easy_setopt")))
		return CURLE_FAILED_INIT;
	/* The argument's type follows from the option's number. */
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = real(c, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = real(c, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = real(c, opt, va_arg(ap, curl_off_t));
	else
		rc = real(c, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

static _Noreturn void
usage(void)
{
	fputs("usage: httpreq [-A] [-u USERVAR] [-p PASSVAR] [-r RETRIES] "
	    "[-t TYPE] [-i ETAG] [-n ETAG] [-D DEPTH] [-H HEADER]... [-d BODY] "
	    "[-s NAME]... [-b] METHOD BASE PATH\n", stderr);
	exit(RD_EXIT_USAGE);
}

int
main(int argc, char **argv)
{
	struct http_req q = { 0 };
	struct http_retry p = { .prefix = "" };
	struct http_auth auth = { NULL, NULL, NULL };
	struct http_settings set;
	struct http_url base;
	struct http_resp r;
	struct http *h;
	const char **headers, **show;
	size_t nheaders = 0, nshow = 0, i;
	int c, m, authenticate = 0, body = 0, retries = -1;
	const char *v;

	rd_setprogname(argv[0]);
	headers = xcalloc((size_t)argc + 1, sizeof *headers);
	show = xcalloc((size_t)argc + 1, sizeof *show);
	while ((c = getopt(argc, argv, "Au:p:r:t:i:n:D:H:d:s:b")) != -1) {
		switch (c) {
		case 'A': authenticate = 1; break;
		case 'u': auth.user_var = optarg; authenticate = 1; break;
		case 'p': auth.password_var = optarg; authenticate = 1; break;
		case 'r': retries = atoi(optarg); break;
		case 't': q.content_type = optarg; break;
		case 'i': q.if_match = optarg; break;
		case 'n': q.if_none_match = optarg; break;
		case 'D': q.depth = optarg; break;
		case 'H': headers[nheaders++] = optarg; break;
		case 'd': q.body = optarg; q.len = strlen(optarg); break;
		case 's': show[nshow++] = optarg; break;
		case 'b': body = 1; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3 || (m = http_method_parse(argv[0])) < 0)
		usage();
	q.method = (enum http_method)m;
	q.path = argv[2];
	q.headers = headers;

	if (rd_log_open(NULL) < 0 || http_settings(&set) < 0 ||
	    http_url_parse(&base, argv[1], 0) < 0)
		rd_die_pending();
	p.retries = retries >= 0 ? retries : set.retries;
	if (!(h = http_open(&set, &base, authenticate ? &auth : NULL)))
		rd_die_pending();
	http_url_release(&base);
	http_resp_init(&r);
	if (http_send(h, &q, &p, &r) < 0)
		rd_die_pending();
	printf("status %ld\n", r.status);
	if (r.etag)
		printf("etag %s\n", r.etag);
	if (r.location)
		printf("location %s\n", r.location);
	if (r.content_type)
		printf("content-type %s\n", r.content_type);
	if (r.retry_after >= 0)
		printf("retry-after %g\n", r.retry_after);
	for (i = 0; i < nshow; i++)
		printf("%s: %s\n", show[i], (v = http_header(&r, show[i])) ? v : "-");
	if (body) {
		putchar('\n');
		fwrite(r.body.buf, 1, r.body.len, stdout);
	}
	http_resp_release(&r);
	http_close(h);
	free(headers);
	free(show);
	rd_log_close();
	if (fflush(stdout) == EOF || ferror(stdout))
		rd_die(RD_EXIT_RUNTIME, "stdout: write error");
	return 0;
}
