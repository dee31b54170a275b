/*
 * store_cloudkit.c - the cloudkit: store, Apple CloudKit Web Services with a
 * server-to-server key.
 *
 * "cloudkit:CONTAINER/ENVIRONMENT/DATABASE[/ZONE]" names one zone of one
 * database (the zone _defaultZone unless given).  Every request is a POST
 * of a JSON body to BASE/database/1/CONTAINER/ENVIRONMENT/DATABASE/OP,
 * signed with the key: the message "DATE:BASE64(SHA-256(BODY)):PATH" is
 * signed with ECDSA P-256/SHA-256, DER encoded, in base64, and sent with the
 * key ID and the date in three X-Apple-CloudKit-Request-* headers.
 *
 * Credentials come from the environment or a configuration file, never from
 * the command line: RECDELTA_CLOUDKIT_KEY_ID, RECDELTA_CLOUDKIT_KEY_FILE (a
 * PEM private key) and RECDELTA_CLOUDKIT_URL (the base, by default Apple's),
 * or key_id, key_file and url in RECDELTA_CLOUDKIT_CONFIG (by default
 * ~/.config/recdelta/cloudkit.conf).  A file that others may read is
 * warned about.  No message names anything but the key file's path.  The
 * URL is checked by http_url_parse() and may hold no user name or password.
 *
 * Reading lists each record type with records/query, 200 records a page in
 * recordName order, and hands a cursor line to the sink after each page
 * ("TYPE:MARKER"; "TYPE:" once a type is done) when asked, so a reader
 * killed midway resumes where the last cursor it saw points.  A custom zone
 * of a private database has a change feed, records/changes, read instead
 * with fetch_opts.changes (cursors carry its sync token).
 *
 * Writing sends records/modify requests of at most 200 operations: create,
 * update with the record's recordChangeTag (the change's rev) and the
 * fields that differ, delete with the tag; forced writes use forceReplace
 * and forceDelete.  A stale tag comes back per record as CONFLICT (a create
 * of an existing name as CONFLICT or EXISTS, a vanished record as
 * NOT_FOUND): the change's outcome is RD_ST_CONFLICT, and push looks the
 * record up (records/lookup) and recomputes.
 *
 * Requests refused with 429, 500, 502, 503 or 504, or lost on the way, are
 * sent again (freshly signed) after the backoff of http.h, and never sooner
 * than a retryAfter in the reply's body or a Retry-After header says.
 *
 * Values map both ways (recdelta-stream(5)): STRING a string; INT64 a
 * number, {"$int":"D"} beyond 2^53; DOUBLE a number; TIMESTAMP {"$ts":ISO};
 * BYTES {"$bytes":B64}; LOCATION {"$loc":{"lat","lng",...}}; REFERENCE
 * {"$ref":NAME} with "action" unless NONE; ASSETID {"$asset":{...}}; lists
 * as arrays.  What CloudKit cannot hold exactly (booleans, untagged objects,
 * mixed lists, sub-millisecond instants, numbers a double cannot hold) is
 * refused per change, never altered.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "digest.h"
#include "http.h"
#include "record.h"
#include "store.h"
#include "store_cloudkit.h"

#define CK_BASE_URL "https://api.apple-cloudkit.com"
#define CK_DEFAULT_ZONE "_defaultZone"
#define CK_MAX_OPS 200

struct ck {
	char *db;		/* "CONTAINER/ENV/DB" */
	char *zone;
	char *source;		/* the store word, for cursor lines */
	char *keyid;
	EVP_PKEY *key;
	struct http_settings set;
	struct http *http;
	struct http_resp resp;
	struct arena a;		/* the last reply */
	struct sb body, path;
};

/* Configuration */

static void
check_private(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & 077))
		rd_warn("warning: %s: %s by others; chmod 600 %s", path,
		    st.st_mode & 022 ? "writable" : "readable", path);
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Fill what the environment left unset from the configuration file. */
static int
read_config(char **keyid, char **keyfile, char **url)
{
	const char *path = getenv("RECDELTA_CLOUDKIT_CONFIG");
	char buf[PATH_MAX], line[4096];
	unsigned long lineno = 0;
	int must = 1, ret = -1;
	FILE *fp;

	if (!path || !*path) {
		const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

		must = 0;
		if (xdg && *xdg)
			snprintf(buf, sizeof buf, "%s/recdelta/cloudkit.conf", xdg);
		else if (home && *home)
			snprintf(buf, sizeof buf, "%s/.config/recdelta/cloudkit.conf",
			    home);
		else
			return 0;
		path = buf;
	}
	if (!(fp = fopen(path, "r"))) {
		if (!must && errno == ENOENT)
			return 0;
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	check_private(path);
	while (fgets(line, sizeof line, fp)) {
		char *k, *v, *eq, **dst;

		lineno++;
		k = trim(line);
		if (!*k || *k == '#')
			continue;
		if (!(eq = strchr(k, '='))) {
			rd_seterr(RD_EXIT_RUNTIME, "%s:%lu: expected NAME = VALUE",
			    path, lineno);
			goto out;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		if (strcmp(k, "key_id") == 0)
			dst = keyid;
		else if (strcmp(k, "key_file") == 0)
			dst = keyfile;
		else if (strcmp(k, "url") == 0)
			dst = url;
		else {
			rd_seterr(RD_EXIT_RUNTIME, "%s:%lu: unknown setting \"%s\" "
			    "(expected key_id, key_file or url)", path, lineno,
			    rd_quote(k, strlen(k)));
			goto out;
		}
		if (!*dst)
			*dst = xstrdup(v);
	}
	if (ferror(fp)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	fclose(fp);
	return ret;
}

static int
no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf, (void)size, (void)rw, (void)u;
	return -1;
}

static EVP_PKEY *
load_key(const char *path)
{
	EVP_PKEY *k;
	FILE *fp;
	char group[64];
	size_t glen = 0;

	if (!(fp = fopen(path, "r"))) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return NULL;
	}
	check_private(path);
	k = PEM_read_PrivateKey(fp, NULL, no_passphrase, NULL);
	fclose(fp);
	if (!k) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: not a PEM private key (or one "
		    "protected by a passphrase)", path);
		return NULL;
	}
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_group_name(k, group, sizeof group, &glen) ||
	    strcmp(group, "prime256v1") != 0) {
		EVP_PKEY_free(k);
		rd_seterr(RD_EXIT_RUNTIME, "%s: not an EC P-256 (prime256v1) key, "
		    "which CloudKit server-to-server keys are", path);
		return NULL;
	}
	return k;
}

static int
name_ok(const char *s, size_t n, const char *extra)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr(extra, s[i])))
			return 0;
	return 1;
}

static void ck_free(struct ck *ck);

/*
 * The parts of CONTAINER/ENV/DB[/ZONE]: their starts and lengths in p and
 * len, their number in *np.  -1 with a message for a word that names none.
 */
static int
ck_name(const char *arg, const char *p[4], size_t len[4], size_t *np)
{
	static const char *const envs[] = { "development", "production" };
	static const char *const dbs[] = { "public", "private", "shared" };
	const char *q = arg;
	size_t i;
	int ok;

	*np = 0;
	while (*np < 4) {
		const char *sl = strchr(q, '/');

		p[*np] = q;
		len[*np] = sl ? (size_t)(sl - q) : strlen(q);
		(*np)++;
		if (!sl)
			break;
		q = sl + 1;
	}
	ok = (*np == 3 || *np == 4) && !strchr(p[*np - 1], '/') &&
	    name_ok(p[0], len[0], "._-");
	if (ok) {
		ok = 0;
		for (i = 0; i < 2; i++)
			if (len[1] == strlen(envs[i]) &&
			    memcmp(p[1], envs[i], len[1]) == 0)
				ok = 1;
	}
	if (ok) {
		ok = 0;
		for (i = 0; i < 3; i++)
			if (len[2] == strlen(dbs[i]) && memcmp(p[2], dbs[i], len[2]) == 0)
				ok = 1;
	}
	if (ok && *np == 4)
		ok = name_ok(p[3], len[3], "_-");
	if (!ok) {
		rd_seterr(RD_EXIT_USAGE, "\"cloudkit:%s\": expected "
		    "cloudkit:CONTAINER/ENVIRONMENT/DATABASE[/ZONE], ENVIRONMENT "
		    "development or production, DATABASE public, private or shared",
		    rd_quote(arg, strlen(arg)));
		return -1;
	}
	return 0;
}

/* A scope: the container, environment, database and zone, spelt out. */
static int
ck_scope(const char *arg, struct sb *out)
{
	const char *p[4];
	size_t len[4], np;

	if (ck_name(arg, p, len, &np) < 0)
		return -1;
	sb_add(out, arg, (size_t)(p[2] + len[2] - arg));
	sb_addc(out, '/');
	if (np == 4)
		sb_add(out, p[3], len[3]);
	else
		sb_adds(out, CK_DEFAULT_ZONE);
	return 0;
}

static int
ck_open(struct store *s, const char *arg)
{
	struct ck *ck;
	const char *p[4];
	size_t len[4], np;
	char *keyid = NULL, *keyfile = NULL, *url = NULL, *v;
	const char *urlfrom = "RECDELTA_CLOUDKIT_URL";
	struct http_url base = { NULL, NULL, 0 };

	/* CONTAINER/ENV/DB[/ZONE] */
	if (ck_name(arg, p, len, &np) < 0)
		return -1;
	ck = xcalloc(1, sizeof *ck);
	ck->db = xmemdup(arg, (size_t)(p[2] + len[2] - arg));
	ck->zone = np == 4 ? xmemdup(p[3], len[3]) : xstrdup(CK_DEFAULT_ZONE);
	ck->source = xmalloc(strlen(arg) + sizeof "cloudkit:");
	sprintf(ck->source, "cloudkit:%s", arg);
	arena_init(&ck->a);
	http_resp_init(&ck->resp);
	sb_init(&ck->body, 4096);
	sb_init(&ck->path, 256);
	s->priv = ck;

	if ((v = getenv("RECDELTA_CLOUDKIT_KEY_ID")) && *v)
		keyid = xstrdup(v);
	if ((v = getenv("RECDELTA_CLOUDKIT_KEY_FILE")) && *v)
		keyfile = xstrdup(v);
	if ((v = getenv("RECDELTA_CLOUDKIT_URL")) && *v)
		url = xstrdup(v);
	else
		urlfrom = "url in the configuration file";
	if ((!keyid || !keyfile || !url) && read_config(&keyid, &keyfile, &url) < 0)
		goto fail;
	if (!keyid || !keyfile) {
		rd_seterr(RD_EXIT_RUNTIME, "cloudkit: no %s: set %s in the "
		    "environment or %s in the configuration file (see "
		    "recdelta-fetch(1))", !keyid ? "key ID" : "private key file",
		    !keyid ? "RECDELTA_CLOUDKIT_KEY_ID" : "RECDELTA_CLOUDKIT_KEY_FILE",
		    !keyid ? "key_id" : "key_file");
		goto fail;
	}
	if (!name_ok(keyid, strlen(keyid), "._-")) {
		rd_seterr(RD_EXIT_RUNTIME, "cloudkit: the key ID is not a word of "
		    "letters, digits, dots, dashes and underscores");
		goto fail;
	}
	/* The requests are signed: no credentials in the URL. */
	if (http_url_parse(&base, url ? url : CK_BASE_URL,
	    HTTP_URL_NO_USERINFO) < 0) {
		rd_prefixerr("cloudkit: %s: ", urlfrom);
		goto fail;
	}
	ck->keyid = keyid;
	keyid = NULL;
	if (!(ck->key = load_key(keyfile)))
		goto fail;
	if (http_settings(&ck->set) < 0 ||
	    !(ck->http = http_open(&ck->set, &base, NULL)))
		goto fail;
	free(keyfile);
	free(url);
	http_url_release(&base);
	return 0;
fail:
	free(keyid);
	free(keyfile);
	free(url);
	http_url_release(&base);
	ck_free(ck);
	s->priv = NULL;
	return -1;
}

static void
ck_free(struct ck *ck)
{
	if (!ck)
		return;
	http_close(ck->http);
	EVP_PKEY_free(ck->key);
	arena_release(&ck->a);
	http_resp_release(&ck->resp);
	sb_release(&ck->body);
	sb_release(&ck->path);
	free(ck->db);
	free(ck->zone);
	free(ck->source);
	free(ck->keyid);
	free(ck);
}

static void
ck_close(struct store *s)
{
	ck_free(s->priv);
	s->priv = NULL;
}

/* Requests */

static int
sign(struct ck *ck, const char *date, const char *path, struct sb *sig)
{
	unsigned char md[RD_SHA256_LEN], der[256];
	size_t derlen = sizeof der;
	struct sb msg;
	EVP_MD_CTX *m;
	int ok;

	rd_sha256(ck->body.buf, ck->body.len, md);
	sb_init(&msg, 256);
	sb_adds(&msg, date);
	sb_addc(&msg, ':');
	base64_encode(&msg, md, sizeof md);
	sb_addc(&msg, ':');
	sb_adds(&msg, path);
	ok = (m = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, ck->key) == 1 &&
	    EVP_DigestSign(m, der, &derlen, (unsigned char *)msg.buf, msg.len) == 1;
	EVP_MD_CTX_free(m);
	sb_release(&msg);
	if (!ok) {
		rd_seterr(RD_EXIT_RUNTIME, "cloudkit: cannot sign the request");
		return -1;
	}
	sb_reset(sig);
	base64_encode(sig, der, derlen);
	return 0;
}

/* The top-level error of a reply: code and reason, "" when absent. */
static void
reply_error(const struct json *reply, const char **code, int *codelen,
    const char **reason, int *reasonlen)
{
	const struct json *c = NULL, *r = NULL;

	if (reply->type == JSON_OBJECT) {
		c = json_get(reply, "serverErrorCode");
		r = json_get(reply, "reason");
	}
	*code = c && c->type == JSON_STRING ? c->u.s : "";
	*codelen = c && c->type == JSON_STRING ? (int)c->len : 0;
	*reason = r && r->type == JSON_STRING ? r->u.s : "";
	*reasonlen = r && r->type == JSON_STRING ? (int)r->len : 0;
}

static int
is_code(const struct json *reply, const char *code)
{
	const struct json *c;

	return reply->type == JSON_OBJECT &&
	    (c = json_get(reply, "serverErrorCode")) && c->type == JSON_STRING &&
	    c->len == strlen(code) && memcmp(c->u.s, code, c->len) == 0;
}

/* A message for a reply that is not a success. */
static void
set_reply_error(const char *op, long status, const struct json *reply)
{
	const char *code, *reason;
	int codelen, reasonlen;

	reply_error(reply, &code, &codelen, &reason, &reasonlen);
	rd_seterr(RD_EXIT_RUNTIME, "cloudkit: %s: %.*s%sHTTP %ld%s%s%s%s", op,
	    codelen, code, codelen ? " (" : "", status, codelen ? ")" : "",
	    reasonlen ? ": " : "", reasonlen ? rd_quote(reason, (size_t)reasonlen) : "",
	    status == 401 ? "; check the key ID, the private key, the "
	    "container and environment it was made for, and the clock" : "");
}

/* What the attempts of one call() share. */
struct ck_call {
	struct ck *ck;
	const char *op;
	struct json *reply;
	long *status;
	struct sb sig;
	char hdr[3][512];
	const char *headers[4];
};

/* Before each attempt: signed afresh, with the date of now. */
static int
ck_prepare(void *ctx, struct http_req *q)
{
	struct ck_call *cc = ctx;
	struct ck *ck = cc->ck;
	time_t now = time(NULL);
	char date[32];
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (sign(ck, date, ck->path.buf, &cc->sig) < 0)
		return -1;
	snprintf(cc->hdr[0], sizeof cc->hdr[0],
	    "X-Apple-CloudKit-Request-KeyID: %s", ck->keyid);
	snprintf(cc->hdr[1], sizeof cc->hdr[1],
	    "X-Apple-CloudKit-Request-ISO8601Date: %s", date);
	snprintf(cc->hdr[2], sizeof cc->hdr[2],
	    "X-Apple-CloudKit-Request-SignatureV1: %s", cc->sig.buf);
	cc->headers[0] = cc->hdr[0];
	cc->headers[1] = cc->hdr[1];
	cc->headers[2] = cc->hdr[2];
	cc->headers[3] = NULL;
	q->headers = cc->headers;
	arena_reset(&ck->a);
	cc->reply->type = JSON_NULL;
	return 0;
}

/* A reply: throttled (by status or by its serverErrorCode) or the answer. */
static enum http_verdict
ck_verdict(void *ctx, const struct http_req *q, const struct http_resp *r,
    double *wait)
{
	struct ck_call *cc = ctx;
	struct json *reply = cc->reply;
	const struct json *ra;

	(void)q;
	*cc->status = r->status;
	if (r->body.len && json_parse(&cc->ck->a, r->body.buf, r->body.len,
	    reply, NULL) < 0)
		reply->type = JSON_NULL;
	if (r->status == 200 && reply->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_RUNTIME, "cloudkit: %s: the reply is not a "
		    "JSON object", cc->op);
		return HTTP_FAIL;
	}
	if (!http_retryable(r->status) && !is_code(reply, "THROTTLED") &&
	    !is_code(reply, "TRY_AGAIN_LATER"))
		return HTTP_DONE;
	set_reply_error(cc->op, r->status, reply);
	if (reply->type == JSON_OBJECT && (ra = json_get(reply, "retryAfter")) &&
	    ra->type == JSON_NUMBER)
		*wait = json_number_double(ra);
	return HTTP_RETRY;
}

/*
 * POST ck->body to OP, under the retry policy of http.h.  0 with the parsed
 * reply and its HTTP status (any status no retry can change), or -1 with a
 * message when every attempt failed for a reason worth retrying.
 */
static int
call(struct ck *ck, const char *op, struct json *reply, long *status)
{
	struct ck_call cc = { .ck = ck, .op = op, .reply = reply,
	    .status = status };
	struct http_req q = {
		.method = HTTP_POST,
		.content_type = "application/json",
		.body = ck->body.buf,
		.len = ck->body.len,
		.what = op,
	};
	struct http_retry p = {
		.retries = ck->set.retries,
		.prefix = "cloudkit: ",
		.prepare = ck_prepare,
		.verdict = ck_verdict,
		.ctx = &cc,
	};
	int ret;

	sb_reset(&ck->path);
	sb_addf(&ck->path, "/database/1/%s/%s", ck->db, op);
	q.path = ck->path.buf;
	sb_init(&cc.sig, 128);
	ret = http_send(ck->http, &q, &p, &ck->resp);
	sb_release(&cc.sig);
	return ret;
}

static void
body_start(struct ck *ck)
{
	sb_reset(&ck->body);
	sb_adds(&ck->body, "{\"zoneID\":{\"zoneName\":");
	json_write_string(&ck->body, ck->zone, strlen(ck->zone));
	sb_addc(&ck->body, '}');
}

/* From CloudKit: field values, records */

static int
str_is(const struct json *v, const char *s)
{
	return v && v->type == JSON_STRING && v->len == strlen(s) &&
	    memcmp(v->u.s, s, v->len) == 0;
}

/* ms since the epoch as ISO-8601, milliseconds only when not zero. */
static int
ms_iso(long long ms, char *buf, size_t size)
{
	long long sec = ms / 1000, frac = ms % 1000;
	time_t t;
	struct tm tm;

	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 ||
	    tm.tm_year + 1900 > 9999)
		return -1;
	if (frac)
		snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, frac);
	else
		snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
	return 0;
}

/* An integer literal's value; -1 if it is not one or out of range. */
static int
parse_int(const char *s, size_t n, long long *out)
{
	char buf[32];
	char *end;

	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return errno || *end || end == buf ? -1 : 0;
}

static int
int_lit(const struct json *v, long long *out)
{
	if (v->type != JSON_NUMBER || !json_number_is_integer(v->u.s, v->len))
		return -1;
	return parse_int(v->u.s, v->len, out);
}

static int
bad_value(const char *why, const char *type, size_t typelen)
{
	rd_seterr(RD_EXIT_DATA, "a %.*s value that is %s", (int)typelen, type, why);
	return -1;
}

static int value_out(struct ck *ck, struct sb *out, const struct json *v,
    const char *type, size_t typelen);

static int
list_out(struct ck *ck, struct sb *out, const struct json *v, const char *type,
    size_t typelen)
{
	size_t i;

	if (v->type != JSON_ARRAY)
		return bad_value("not an array", type, typelen);
	sb_addc(out, '[');
	for (i = 0; i < v->len; i++) {
		if (i)
			sb_addc(out, ',');
		if (value_out(ck, out, &v->u.items[i], type, typelen - 5) < 0)
			return -1;
	}
	sb_addc(out, ']');
	return 0;
}

#define TYPE_IS(t) (typelen == sizeof(t) - 1 && memcmp(type, t, typelen) == 0)

static int
value_out(struct ck *ck, struct sb *out, const struct json *v,
    const char *type, size_t typelen)
{
	const struct json *x, *y;
	long long n;
	char buf[64];
	size_t i;

	if (typelen > 5 && memcmp(type + typelen - 5, "_LIST", 5) == 0)
		return list_out(ck, out, v, type, typelen);
	if (TYPE_IS("STRING")) {
		if (v->type != JSON_STRING)
			return bad_value("not a string", type, typelen);
		json_write_string(out, v->u.s, v->len);
	} else if (TYPE_IS("INT64")) {
		if (v->type != JSON_NUMBER || !json_number_is_integer(v->u.s, v->len))
			return bad_value("not an integer", type, typelen);
		/* Beyond 2^53 a double, and so many readers, cannot hold it. */
		if (int_lit(v, &n) < 0 || n > 9007199254740992LL ||
		    n < -9007199254740992LL) {
			sb_adds(out, "{\"$int\":");
			json_write_string(out, v->u.s, v->len);
			sb_addc(out, '}');
		} else {
			sb_add(out, v->u.s, v->len);
		}
	} else if (TYPE_IS("DOUBLE")) {
		if (v->type != JSON_NUMBER)
			return bad_value("not a number", type, typelen);
		sb_add(out, v->u.s, v->len);
	} else if (TYPE_IS("TIMESTAMP")) {
		if (int_lit(v, &n) < 0 || ms_iso(n, buf, sizeof buf) < 0)
			return bad_value("not milliseconds of years 0 to 9999",
			    type, typelen);
		sb_adds(out, "{\"$ts\":\"");
		sb_adds(out, buf);
		sb_adds(out, "\"}");
	} else if (TYPE_IS("BYTES")) {
		if (v->type != JSON_STRING)
			return bad_value("not a string", type, typelen);
		sb_adds(out, "{\"$bytes\":");
		json_write_string(out, v->u.s, v->len);
		sb_addc(out, '}');
	} else if (TYPE_IS("LOCATION")) {
		if (v->type != JSON_OBJECT || !(x = json_get(v, "latitude")) ||
		    !(y = json_get(v, "longitude")) || x->type != JSON_NUMBER ||
		    y->type != JSON_NUMBER)
			return bad_value("without latitude and longitude", type,
			    typelen);
		/* Written back, "lat" and "lng" would become the coordinates. */
		if (json_get(v, "lat") || json_get(v, "lng"))
			return bad_value("ambiguous (a member lat or lng)", type,
			    typelen);
		sb_adds(out, "{\"$loc\":{\"lat\":");
		sb_add(out, x->u.s, x->len);
		sb_adds(out, ",\"lng\":");
		sb_add(out, y->u.s, y->len);
		for (i = 0; i < v->len; i++) {
			const struct json_member *m = &v->u.members[i];

			if (&m->value == x || &m->value == y)
				continue;
			sb_addc(out, ',');
			json_write_string(out, m->name, m->namelen);
			sb_addc(out, ':');
			json_write(out, &m->value, 0);
		}
		sb_adds(out, "}}");
	} else if (TYPE_IS("REFERENCE")) {
		if (v->type != JSON_OBJECT || !(x = json_get(v, "recordName")) ||
		    x->type != JSON_STRING || x->len == 0)
			return bad_value("without a recordName", type, typelen);
		sb_adds(out, "{\"$ref\":");
		json_write_string(out, x->u.s, x->len);
		if ((y = json_get(v, "action")) && y->type == JSON_STRING &&
		    !str_is(y, "NONE")) {
			sb_adds(out, ",\"action\":");
			json_write_string(out, y->u.s, y->len);
		}
		if ((y = json_get(v, "zoneID")) && y->type == JSON_OBJECT &&
		    (y = json_get(y, "zoneName")) && y->type == JSON_STRING &&
		    !str_is(y, ck->zone)) {
			sb_adds(out, ",\"zone\":");
			json_write_string(out, y->u.s, y->len);
		}
		sb_addc(out, '}');
	} else if (TYPE_IS("ASSETID") || TYPE_IS("ASSET")) {
		if (v->type != JSON_OBJECT)
			return bad_value("not an object", type, typelen);
		sb_adds(out, "{\"$asset\":");
		json_write(out, v, 0);
		sb_addc(out, '}');
	} else {
		rd_seterr(RD_EXIT_DATA, "unknown type \"%s\"", rd_quote(type, typelen));
		return -1;
	}
	return 0;
}

/*
 * The fields of a CloudKit record dict (fields may be NULL) as the fields
 * object of a record line, appended to out.
 */
static int
fields_out(struct ck *ck, const struct json *type, const struct json *name,
    const struct json *fields, struct sb *out)
{
	size_t i;

	sb_addc(out, '{');
	if (fields && fields->type == JSON_OBJECT) {
		int first = 1;

		for (i = 0; i < fields->len; i++) {
			const struct json_member *m = &fields->u.members[i];
			const struct json *val, *t;

			if (m->value.type == JSON_NULL)
				continue;
			val = m->value.type == JSON_OBJECT ?
			    json_get(&m->value, "value") : NULL;
			t = m->value.type == JSON_OBJECT ?
			    json_get(&m->value, "type") : NULL;
			if (!val || val->type == JSON_NULL)
				continue;
			if (!first)
				sb_addc(out, ',');
			json_write_string(out, m->name, m->namelen);
			sb_addc(out, ':');
			if (t && t->type == JSON_STRING) {
				if (value_out(ck, out, val, t->u.s, t->len) < 0)
					goto bad;
			} else if (val->type == JSON_STRING) {
				json_write_string(out, val->u.s, val->len);
			} else if (val->type == JSON_NUMBER) {
				sb_add(out, val->u.s, val->len);
			} else {
				rd_seterr(RD_EXIT_DATA, "a value without a type");
				goto bad;
			}
			first = 0;
			continue;
bad:
			rd_prefixerr("%s/%s: field \"%s\": ",
			    rd_quote(type->u.s, type->len),
			    rd_quote(name->u.s, name->len),
			    rd_quote(m->name, m->namelen));
			return -1;
		}
	}
	sb_addc(out, '}');
	return 0;
}

/*
 * A CloudKit record dict as a record line in out.  type (may be NULL) is
 * used when the dict has no recordType.
 */
static int
record_out(struct ck *ck, const struct json *r, struct sb *out)
{
	const struct json *name, *type, *tag, *mod, *ts;
	struct record rec;
	struct sb fields;
	long long ms;
	char buf[64];

	name = json_get(r, "recordName");
	type = json_get(r, "recordType");
	tag = json_get(r, "recordChangeTag");
	if (!name || name->type != JSON_STRING || name->len == 0 || !type ||
	    type->type != JSON_STRING || type->len == 0) {
		rd_seterr(RD_EXIT_RUNTIME, "a record without recordName or "
		    "recordType in the reply");
		return -1;
	}
	memset(&rec, 0, sizeof rec);
	rec.type = type->u.s;
	rec.typelen = type->len;
	rec.key = name->u.s;
	rec.keylen = name->len;
	if (tag && tag->type == JSON_STRING) {
		rec.rev = tag->u.s;
		rec.revlen = tag->len;
	}
	if ((mod = json_get(r, "modified")) && mod->type == JSON_OBJECT &&
	    (ts = json_get(mod, "timestamp")) && int_lit(ts, &ms) == 0 &&
	    ms_iso(ms, buf, sizeof buf) == 0) {
		rec.mtime = buf;
		rec.mtimelen = strlen(buf);
	}
	sb_init(&fields, 1024);
	if (fields_out(ck, type, name, json_get(r, "fields"), &fields) < 0) {
		sb_release(&fields);
		return -1;
	}
	sb_reset(out);
	stream_write_record_text(out, &rec, fields.buf, fields.len);
	sb_release(&fields);
	return 0;
}

/* Reading */

struct emit {
	const struct store_sink *sink;
	const struct fetch_opts *o;
	struct ck *ck;
	struct arena la;
	struct sb line;
};

static int
put_line(struct emit *e, struct record *rec)
{
	struct rline l = {
		.text = e->line.buf, .len = e->line.len, .src = e->ck->source,
		.lineno = 0, .offset = -1, .rec = rec,
	};

	return e->sink->put(e->sink->ctx, &l);
}

static int
emit_record(struct emit *e, const struct json *r, const char *op)
{
	struct record rec;
	struct json obj;
	const char *kind;
	size_t kindlen;
	const struct json *err, *name;

	if ((err = json_get(r, "serverErrorCode"))) {
		/* One record the server could not give: said, not fatal. */
		name = json_get(r, "recordName");
		rd_warn("cloudkit: %s: record \"%s\" skipped: %s", op,
		    name && name->type == JSON_STRING ?
		    rd_quote(name->u.s, name->len) : "?",
		    err->type == JSON_STRING ? rd_quote(err->u.s, err->len) : "?");
		return 0;
	}
	if ((err = json_get(r, "deleted")) && err->type == JSON_TRUE) {
		if (!(name = json_get(r, "recordName")) || name->type != JSON_STRING ||
		    name->len == 0) {
			rd_seterr(RD_EXIT_RUNTIME, "cloudkit: %s: a tombstone "
			    "without a recordName", op);
			return -1;
		}
		/* The feed does not say a deleted record's type. */
		rec = (struct record){ .type = "*", .typelen = 1,
		    .key = name->u.s, .keylen = name->len, .deleted = 1 };
		sb_reset(&e->line);
		stream_write_record(&e->line, &rec);
	} else if (record_out(e->ck, r, &e->line) < 0) {
		rd_prefixerr("cloudkit: %s: ", op);
		return -1;
	}
	arena_reset(&e->la);
	if (stream_parse_line(&e->la, e->line.buf, e->line.len, &obj, &rec,
	    &kind, &kindlen) != 1) {
		rd_prefixerr("cloudkit: %s: ", op);
		return -1;
	}
	if (!rec.deleted && !fetch_wants(e->o, &rec))
		return 0;
	return put_line(e, &rec);
}

static int
emit_cursor(struct emit *e, const char *name, const char *value, size_t n)
{
	struct json v = { .type = JSON_STRING, .len = n, .u.s = value };
	struct cursor cur = {
		.source = e->ck->source, .sourcelen = strlen(e->ck->source),
		.name = name, .namelen = strlen(name), .value = &v,
	};

	if (!e->o->cursors)
		return 0;
	sb_reset(&e->line);
	stream_write_cursor(&e->line, &cur);
	return put_line(e, NULL);
}

/* Every record of one type, from marker on (NULL: from the start). */
static int
query_type(struct emit *e, const char *type, char *marker)
{
	struct ck *ck = e->ck;
	struct json reply;
	const struct json *recs, *m;
	struct sb val;
	long status;
	size_t i;
	int ret = -1;

	sb_init(&val, 256);
	for (;;) {
		body_start(ck);
		sb_adds(&ck->body, ",\"resultsLimit\":200,\"query\":{\"recordType\":");
		json_write_string(&ck->body, type, strlen(type));
		sb_adds(&ck->body, ",\"sortBy\":[{\"systemFieldName\":\"recordName\","
		    "\"ascending\":true}]}");
		if (marker) {
			sb_adds(&ck->body, ",\"continuationMarker\":");
			json_write_string(&ck->body, marker, strlen(marker));
		}
		sb_addc(&ck->body, '}');
		if (call(ck, "records/query", &reply, &status) < 0)
			goto out;
		if (status != 200) {
			set_reply_error("records/query", status, &reply);
			goto out;
		}
		recs = json_get(&reply, "records");
		if (recs && recs->type != JSON_ARRAY) {
			rd_seterr(RD_EXIT_RUNTIME, "cloudkit: records/query: "
			    "\"records\" is not an array");
			goto out;
		}
		for (i = 0; recs && i < recs->len; i++)
			if (emit_record(e, &recs->u.items[i], "records/query") < 0)
				goto out;
		m = json_get(&reply, "continuationMarker");
		free(marker);
		marker = NULL;
		sb_reset(&val);
		sb_adds(&val, type);
		sb_addc(&val, ':');
		if (m && m->type == JSON_STRING && m->len) {
			sb_add(&val, m->u.s, m->len);
			marker = xmemdup(m->u.s, m->len);
		}
		if (emit_cursor(e, "continuationMarker", val.buf, val.len) < 0)
			goto out;
		if (!marker)
			break;
	}
	ret = 0;
out:
	free(marker);
	sb_release(&val);
	return ret;
}

static int
ck_feed_check(struct store *s)
{
	struct ck *ck = s->priv;

	if (strcmp(ck->zone, CK_DEFAULT_ZONE) == 0) {
		rd_seterr(RD_EXIT_USAGE, "%s: the change feed needs a custom zone "
		    "(cloudkit:CONTAINER/ENV/private/ZONE)", ck->source);
		return -1;
	}
	return 0;
}

static int
feed(struct emit *e, const char *resume)
{
	struct ck *ck = e->ck;
	struct json reply;
	const struct json *recs, *tok, *more;
	char *token = resume ? xstrdup(resume) : NULL;
	long status;
	size_t i;
	int ret = -1;

	for (;;) {
		body_start(ck);
		sb_adds(&ck->body, ",\"resultsLimit\":200");
		if (token) {
			sb_adds(&ck->body, ",\"syncToken\":");
			json_write_string(&ck->body, token, strlen(token));
		}
		sb_addc(&ck->body, '}');
		if (call(ck, "records/changes", &reply, &status) < 0)
			goto out;
		if (status != 200) {
			set_reply_error("records/changes", status, &reply);
			if (is_code(&reply, "CHANGE_TOKEN_EXPIRED"))
				rd_suffixerr("; the sync token is too old: read the "
				    "zone again without --resume");
			goto out;
		}
		recs = json_get(&reply, "records");
		for (i = 0; recs && recs->type == JSON_ARRAY && i < recs->len; i++)
			if (emit_record(e, &recs->u.items[i], "records/changes") < 0)
				goto out;
		tok = json_get(&reply, "syncToken");
		more = json_get(&reply, "moreComing");
		if (!tok || tok->type != JSON_STRING) {
			rd_seterr(RD_EXIT_RUNTIME, "cloudkit: records/changes: "
			    "no syncToken in the reply");
			goto out;
		}
		free(token);
		token = xmemdup(tok->u.s, tok->len);
		if (emit_cursor(e, "syncToken", tok->u.s, tok->len) < 0)
			goto out;
		if (!more || more->type != JSON_TRUE)
			break;
	}
	ret = 0;
out:
	free(token);
	return ret;
}

/*
 * Where the zone's feed stands, read nothing of it (fetch_opts.cursor_only):
 * the zone's syncToken from zones/lookup, which records/changes takes.
 */
static int
feed_now(struct emit *e)
{
	struct ck *ck = e->ck;
	struct json reply;
	const struct json *zones, *tok = NULL, *code = NULL;
	long status;

	sb_reset(&ck->body);
	sb_adds(&ck->body, "{\"zones\":[{\"zoneName\":");
	json_write_string(&ck->body, ck->zone, strlen(ck->zone));
	sb_adds(&ck->body, "}]}");
	if (call(ck, "zones/lookup", &reply, &status) < 0)
		return -1;
	if (status != 200) {
		set_reply_error("zones/lookup", status, &reply);
		return -1;
	}
	zones = json_get(&reply, "zones");
	if (zones && zones->type == JSON_ARRAY && zones->len == 1) {
		tok = json_get(&zones->u.items[0], "syncToken");
		code = json_get(&zones->u.items[0], "serverErrorCode");
	}
	if (!tok || tok->type != JSON_STRING) {
		rd_seterr(RD_EXIT_RUNTIME, "cloudkit: zones/lookup: zone \"%s\": %s",
		    rd_quote(ck->zone, strlen(ck->zone)),
		    code && code->type == JSON_STRING ? rd_quote(code->u.s,
		    code->len) : "no syncToken in the reply");
		return -1;
	}
	return emit_cursor(e, "syncToken", tok->u.s, tok->len);
}

static int
ck_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct ck *ck = s->priv;
	struct emit e = { sink, o, ck, { 0 }, { 0 } };
	size_t i = 0, start = 0;
	char *marker = NULL;
	int ret = -1;

	arena_init(&e.la);
	sb_init(&e.line, 1024);
	if (o->changes) {
		ret = o->cursor_only ? feed_now(&e) : feed(&e, o->resume);
		goto out;
	}
	if (o->ntypes == 0) {
		rd_seterr(RD_EXIT_USAGE, "%s: name the record types with -t "
		    "TYPE (a CloudKit database does not list them)", ck->source);
		goto out;
	}
	if (o->resume) {
		const char *colon = strchr(o->resume, ':');

		for (i = 0; colon && i < o->ntypes; i++)
			if (strlen(o->types[i]) == (size_t)(colon - o->resume) &&
			    memcmp(o->types[i], o->resume, strlen(o->types[i])) == 0)
				break;
		if (!colon || i == o->ntypes) {
			rd_seterr(RD_EXIT_USAGE, "--resume \"%s\": expected TYPE:MARKER "
			    "from a cursor line, TYPE one of the -t types",
			    rd_quote(o->resume, strlen(o->resume)));
			goto out;
		}
		start = i;
		if (colon[1])
			marker = xstrdup(colon + 1);
		else
			start++;	/* that type was finished */
	}
	for (i = start; i < o->ntypes; i++) {
		if (!name_ok(o->types[i], strlen(o->types[i]), "_")) {
			rd_seterr(RD_EXIT_USAGE, "-t \"%s\": not a CloudKit record "
			    "type", rd_quote(o->types[i], strlen(o->types[i])));
			goto out;
		}
		if (query_type(&e, o->types[i], marker) < 0) {
			marker = NULL;
			goto out;
		}
		marker = NULL;
	}
	ret = 0;
out:
	free(marker);
	arena_release(&e.la);
	sb_release(&e.line);
	return ret;
}

/* To CloudKit: field values, operations */

enum vk { VK_BAD, VK_STRING, VK_NUMBER, VK_INT64, VK_TS, VK_BYTES, VK_LOC,
	VK_REF, VK_ASSET };

static const char *const vk_type[] = {
	[VK_STRING] = "STRING", [VK_NUMBER] = NULL, [VK_INT64] = "INT64",
	[VK_TS] = "TIMESTAMP", [VK_BYTES] = "BYTES", [VK_LOC] = "LOCATION",
	[VK_REF] = "REFERENCE", [VK_ASSET] = "ASSETID",
};

static enum vk
kind_of(const struct json *v, const struct json **p)
{
	static const struct { const char *tag; enum vk k; } tags[] = {
		{ "$int", VK_INT64 }, { "$ts", VK_TS }, { "$bytes", VK_BYTES },
		{ "$loc", VK_LOC }, { "$asset", VK_ASSET }, { "$ref", VK_REF },
	};
	size_t i;

	*p = v;
	switch (v->type) {
	case JSON_STRING:
		return VK_STRING;
	case JSON_NUMBER:
		return VK_NUMBER;
	case JSON_OBJECT:
		for (i = 0; i < sizeof tags / sizeof tags[0]; i++)
			if ((*p = json_get(v, tags[i].tag)))
				return tags[i].k == VK_REF || v->len == 1 ?
				    tags[i].k : VK_BAD;
		return VK_BAD;
	default:
		return VK_BAD;
	}
}

struct refusal {
	const char *code;
	char msg[200];
};

static int
refuse(struct refusal *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
refuse(struct refusal *r, const char *code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* One value of kind k, as CloudKit's JSON for it. */
static int
raw_in(struct sb *out, enum vk k, const struct json *v, const struct json *p,
    struct refusal *rf)
{
	const struct json *x;
	long long n, sec;
	long nsec;
	char buf[40];
	size_t i;

	switch (k) {
	case VK_STRING:
		json_write_string(out, v->u.s, v->len);
		return 0;
	case VK_NUMBER:
		if (json_number_is_integer(v->u.s, v->len)) {
			if (int_lit(v, &n) < 0)
				return refuse(rf, "inexact", "%s is beyond the 64-bit "
				    "integers CloudKit holds", rd_quote(v->u.s, v->len));
		} else if (json_format_double(buf, sizeof buf,
		    json_number_double(v)) < 0 ||
		    !json_number_equal(buf, strlen(buf), v->u.s, v->len)) {
			return refuse(rf, "inexact", "%s is not exactly a double, "
			    "which CloudKit's DOUBLE is", rd_quote(v->u.s, v->len));
		}
		sb_add(out, v->u.s, v->len);
		return 0;
	case VK_INT64:
		if (p->type != JSON_STRING || p->len == 0 || p->len > 20)
			return refuse(rf, "type", "bad $int value");
		if (parse_int(p->u.s, p->len, &n) < 0)
			return refuse(rf, "inexact", "%s is beyond the 64-bit "
			    "integers CloudKit holds", rd_quote(p->u.s, p->len));
		sb_addf(out, "%lld", n);
		return 0;
	case VK_TS:
		if (p->type != JSON_STRING ||
		    rd_parse_iso8601(p->u.s, p->len, &sec, &nsec) < 0)
			return refuse(rf, "type", "bad $ts value");
		if (nsec % 1000000)
			return refuse(rf, "inexact", "%s: CloudKit keeps instants "
			    "to the millisecond", rd_quote(p->u.s, p->len));
		if (sec > LLONG_MAX / 1000 - 1 || sec < LLONG_MIN / 1000 + 1)
			return refuse(rf, "inexact", "%s: out of range",
			    rd_quote(p->u.s, p->len));
		sb_addf(out, "%lld", sec * 1000 + nsec / 1000000);
		return 0;
	case VK_BYTES:
		if (p->type != JSON_STRING)
			return refuse(rf, "type", "bad $bytes value");
		json_write_string(out, p->u.s, p->len);
		return 0;
	case VK_LOC:
		if (p->type != JSON_OBJECT)
			return refuse(rf, "type", "bad $loc value");
		sb_addc(out, '{');
		for (i = 0; i < p->len; i++) {
			const struct json_member *m = &p->u.members[i];

			if (i)
				sb_addc(out, ',');
			if (m->namelen == 3 && memcmp(m->name, "lat", 3) == 0)
				sb_adds(out, "\"latitude\"");
			else if (m->namelen == 3 && memcmp(m->name, "lng", 3) == 0)
				sb_adds(out, "\"longitude\"");
			else
				json_write_string(out, m->name, m->namelen);
			sb_addc(out, ':');
			json_write(out, &m->value, 0);
		}
		sb_addc(out, '}');
		return 0;
	case VK_REF:
		if (p->type != JSON_STRING || p->len == 0)
			return refuse(rf, "type", "bad $ref value");
		sb_adds(out, "{\"recordName\":");
		json_write_string(out, p->u.s, p->len);
		sb_adds(out, ",\"action\":");
		if ((x = json_get(v, "action"))) {
			if (!str_is(x, "NONE") && !str_is(x, "DELETE_SELF") &&
			    !str_is(x, "VALIDATE"))
				return refuse(rf, "type", "a reference's action is "
				    "NONE, DELETE_SELF or VALIDATE");
			json_write_string(out, x->u.s, x->len);
		} else {
			sb_adds(out, "\"NONE\"");
		}
		if ((x = json_get(v, "zone"))) {
			if (x->type != JSON_STRING)
				return refuse(rf, "type", "a reference's zone is a "
				    "string");
			sb_adds(out, ",\"zoneID\":{\"zoneName\":");
			json_write_string(out, x->u.s, x->len);
			sb_addc(out, '}');
		}
		sb_addc(out, '}');
		return 0;
	case VK_ASSET:
		if (p->type != JSON_OBJECT)
			return refuse(rf, "type", "bad $asset value");
		json_write(out, p, 0);
		return 0;
	case VK_BAD:
		break;
	}
	return refuse(rf, "type", "internal: no such kind");
}

static int
kind_refusal(const struct json *v, struct refusal *rf)
{
	const struct json *p;

	if (v->type == JSON_OBJECT && v->len > 1 && kind_of(v, &p) == VK_BAD &&
	    p)
		return refuse(rf, "type", "members beside a tagged value, which "
		    "CloudKit would not keep");
	switch (v->type) {
	case JSON_TRUE:
	case JSON_FALSE:
		return refuse(rf, "type", "CloudKit has no boolean type (store 0 "
		    "or 1)");
	case JSON_NULL:
		return refuse(rf, "type", "CloudKit lists cannot hold null");
	case JSON_ARRAY:
		return refuse(rf, "type", "CloudKit has no lists of lists");
	default:
		return refuse(rf, "type", "CloudKit has no object type (tag the "
		    "value, or store it as a JSON string)");
	}
}

/* {"value":...,"type":...} for one field's value. */
static int
value_in(struct sb *out, const struct json *v, struct refusal *rf)
{
	const struct json *p;
	enum vk k, lk = VK_BAD;
	size_t i;

	if (v->type == JSON_ARRAY) {
		for (i = 0; i < v->len; i++) {
			k = kind_of(&v->u.items[i], &p);
			if (k == VK_BAD)
				return kind_refusal(&v->u.items[i], rf);
			if (i == 0 || k == lk)
				lk = k;
			else if ((k == VK_NUMBER || k == VK_INT64) &&
			    (lk == VK_NUMBER || lk == VK_INT64))
				lk = VK_INT64;
			else
				return refuse(rf, "type", "a list of mixed values; "
				    "a CloudKit list holds one type");
		}
		if (lk == VK_INT64)
			for (i = 0; i < v->len; i++)
				if (v->u.items[i].type == JSON_NUMBER &&
				    !json_number_is_integer(v->u.items[i].u.s,
				    v->u.items[i].len))
					return refuse(rf, "type", "a list of "
					    "integers and fractions");
		sb_adds(out, "{\"value\":[");
		for (i = 0; i < v->len; i++) {
			if (i)
				sb_addc(out, ',');
			k = kind_of(&v->u.items[i], &p);
			if (raw_in(out, k, &v->u.items[i], p, rf) < 0)
				return -1;
		}
		sb_addc(out, ']');
		if (v->len && vk_type[lk])
			sb_addf(out, ",\"type\":\"%s_LIST\"", vk_type[lk]);
		sb_addc(out, '}');
		return 0;
	}
	if ((k = kind_of(v, &p)) == VK_BAD)
		return kind_refusal(v, rf);
	sb_adds(out, "{\"value\":");
	if (raw_in(out, k, v, p, rf) < 0)
		return -1;
	if (vk_type[k])
		sb_addf(out, ",\"type\":\"%s\"", vk_type[k]);
	sb_addc(out, '}');
	return 0;
}

static int
field_in(struct sb *out, const char *name, size_t namelen,
    const struct json *v, int *first, struct refusal *rf)
{
	if (!*first)
		sb_addc(out, ',');
	*first = 0;
	json_write_string(out, name, namelen);
	sb_addc(out, ':');
	if (!v || v->type == JSON_NULL) {
		sb_adds(out, "{\"value\":null}");
		return 0;
	}
	if (value_in(out, v, rf) < 0) {
		char msg[sizeof rf->msg];
		struct sb t;

		sb_init(&t, 256);
		sb_addf(&t, "field \"%s\": %s", rd_quote(name, namelen), rf->msg);
		snprintf(msg, sizeof msg, "%s", t.buf);
		sb_release(&t);
		memcpy(rf->msg, msg, sizeof msg);
		return -1;
	}
	return 0;
}

/* One records/modify operation for c; -1 with a refusal. */
static int
op_in(struct sb *out, const struct change *c, struct refusal *rf)
{
	const struct json *f = c->fields;
	const char *optype;
	size_t i;
	int first = 1;

	/* CloudKit's record names: ASCII, at most 255 bytes, no leading _. */
	if (c->keylen > 255 || c->key[0] == '_')
		return refuse(rf, "key", "CloudKit record names are at most 255 "
		    "bytes and do not start with \"_\"");
	for (i = 0; i < c->keylen; i++)
		if ((unsigned char)c->key[i] < 0x20 ||
		    (unsigned char)c->key[i] > 0x7e)
			return refuse(rf, "key", "CloudKit record names are "
			    "printable ASCII");
	if (c->typelen > 255 || !name_ok(c->type, c->typelen, "_") ||
	    c->type[0] == '_' || (c->type[0] >= '0' && c->type[0] <= '9'))
		return refuse(rf, "type", "CloudKit record types are letters, "
		    "digits and underscores, starting with a letter");
	if (c->op == RD_OP_DELETE)
		optype = c->force ? "forceDelete" : "delete";
	else if (c->force)
		optype = "forceReplace";
	else
		optype = c->op == RD_OP_CREATE ? "create" : "update";
	sb_adds(out, "{\"operationType\":\"");
	sb_adds(out, optype);
	sb_adds(out, "\",\"record\":{\"recordName\":");
	json_write_string(out, c->key, c->keylen);
	if (c->op != RD_OP_DELETE) {
		sb_adds(out, ",\"recordType\":");
		json_write_string(out, c->type, c->typelen);
	}
	if (!c->force && c->op != RD_OP_CREATE) {
		if (!c->rev || !c->revlen)
			return refuse(rf, "rev", "an %s without the rev it was "
			    "computed against", c->op == RD_OP_DELETE ? "delete" :
			    "update");
		sb_adds(out, ",\"recordChangeTag\":");
		json_write_string(out, c->rev, c->revlen);
	}
	if (c->op != RD_OP_DELETE) {
		sb_adds(out, ",\"fields\":{");
		if (c->op == RD_OP_UPDATE && !c->force && c->changed &&
		    c->changed->type == JSON_ARRAY) {
			/* What differs: the rest stays as it is. */
			for (i = 0; i < c->changed->len; i++) {
				const struct json *n = &c->changed->u.items[i];

				if (n->type != JSON_STRING)
					return refuse(rf, "type", "\"changed\" holds "
					    "a name that is not a string");
				if (field_in(out, n->u.s, n->len,
				    f ? json_getn(f, n->u.s, n->len) : NULL,
				    &first, rf) < 0)
					return -1;
			}
		} else {
			for (i = 0; f && i < f->len; i++) {
				const struct json_member *m = &f->u.members[i];

				if (m->value.type == JSON_NULL)
					continue;
				if (field_in(out, m->name, m->namelen, &m->value,
				    &first, rf) < 0)
					return -1;
			}
		}
		sb_addc(out, '}');
	}
	sb_adds(out, "}}");
	return 0;
}

static void
set_outcome(struct change *c, enum rd_status st, const char *code,
    size_t codelen, const char *msg, size_t msglen)
{
	if (code)
		change_error(c, st, code, codelen, msg, msglen);
	else
		c->status = st;
}

/* The outcome of one change from its entry in a records/modify reply. */
static void
outcome(struct change *c, const struct json *e)
{
	const struct json *code, *reason, *tag;

	if (!e) {
		set_outcome(c, RD_ST_FAILED, "reply", 5, "no result for this record "
		    "in the reply", 37);
		return;
	}
	if ((code = json_get(e, "serverErrorCode"))) {
		reason = json_get(e, "reason");
		if (str_is(code, "CONFLICT") || str_is(code, "EXISTS") ||
		    (str_is(code, "NOT_FOUND") && c->op != RD_OP_CREATE)) {
			c->status = RD_ST_CONFLICT;
		} else {
			const char *r = reason && reason->type == JSON_STRING ?
			    reason->u.s : "";
			size_t rl = reason && reason->type == JSON_STRING ?
			    reason->len : 0;

			set_outcome(c, str_is(code, "THROTTLED") ||
			    str_is(code, "TRY_AGAIN_LATER") ||
			    str_is(code, "ZONE_BUSY") ? RD_ST_DEFERRED : RD_ST_FAILED,
			    code->type == JSON_STRING ? code->u.s : "?",
			    code->type == JSON_STRING ? code->len : 1, r, rl);
		}
		return;
	}
	if (c->op == RD_OP_DELETE) {
		change_ok(c, NULL, 0);
		return;
	}
	tag = json_get(e, "recordChangeTag");
	if (!tag || tag->type != JSON_STRING || tag->len == 0 ||
	    memchr(tag->u.s, '\0', tag->len)) {
		set_outcome(c, RD_ST_FAILED, "reply", 5, "the reply gave no usable "
		    "recordChangeTag", 38);
		return;
	}
	change_ok(c, tag->u.s, tag->len);
}

/* Give up on v[from..n): deferred (for replay) or failed. */
static void
give_up(struct change *v, size_t *idx, size_t nidx, size_t from, size_t n,
    enum rd_status st, const char *code)
{
	const char *msg = rd_errmsg();
	size_t i;

	for (i = 0; i < nidx; i++)
		set_outcome(&v[idx[i]], st, code, strlen(code), msg, strlen(msg));
	for (i = from; i < n; i++)
		if (v[i].status == RD_ST_NONE)
			set_outcome(&v[i], st, code, strlen(code), msg, strlen(msg));
}

static int
ck_apply(struct store *s, struct change *v, size_t n)
{
	struct ck *ck = s->priv;
	size_t idx[CK_MAX_OPS];
	size_t i = 0, j, k, cnt;
	struct json reply;
	const struct json *recs;
	struct refusal rf;
	int sent = 0;
	long status;

	for (j = 0; j < n; j++)
		v[j].status = RD_ST_NONE;
	while (i < n) {
		/* A request: at most 200 operations, each record once. */
		body_start(ck);
		sb_adds(&ck->body, ",\"atomic\":false,\"operations\":[");
		for (cnt = 0, j = i; j < n && cnt < CK_MAX_OPS; j++) {
			size_t mark = ck->body.len;

			for (k = 0; k < cnt; k++)
				if (v[idx[k]].keylen == v[j].keylen &&
				    memcmp(v[idx[k]].key, v[j].key, v[j].keylen) == 0)
					break;
			if (k < cnt)
				break;
			if (cnt)
				sb_addc(&ck->body, ',');
			if (op_in(&ck->body, &v[j], &rf) < 0) {
				ck->body.len = mark;
				ck->body.buf[mark] = '\0';
				set_outcome(&v[j], RD_ST_FAILED, rf.code, strlen(rf.code),
				    rf.msg, strlen(rf.msg));
				continue;
			}
			idx[cnt++] = j;
		}
		sb_adds(&ck->body, "]}");
		i = j;
		if (cnt == 0)
			continue;
		status = 0;
		if (call(ck, "records/modify", &reply, &status) < 0 ||
		    (status == 413 && is_code(&reply, "QUOTA_EXCEEDED"))) {
			/* Kept for replay; what was refused here stays refused. */
			if (status == 413)
				set_reply_error("records/modify", status, &reply);
			give_up(v, idx, cnt, i, n, RD_ST_DEFERRED, "unreachable");
			return 0;
		}
		if (status == 409 && cnt == 1) {
			/* A lone operation's conflict, reported for the request. */
			v[idx[0]].status = RD_ST_CONFLICT;
			sent = 1;
			continue;
		}
		if (status != 200) {
			set_reply_error("records/modify", status, &reply);
			if (!sent)
				return -2;
			give_up(v, idx, cnt, i, n, RD_ST_FAILED, "refused");
			return 0;
		}
		sent = 1;
		recs = json_get(&reply, "records");
		if (!recs || recs->type != JSON_ARRAY)
			recs = NULL;
		for (k = 0; k < cnt; k++) {
			struct change *c = &v[idx[k]];
			const struct json *e = NULL, *nm;
			size_t m;

			/* Entries come in order; match by name all the same. */
			if (recs && k < recs->len &&
			    (nm = json_get(&recs->u.items[k], "recordName")) &&
			    nm->type == JSON_STRING && nm->len == c->keylen &&
			    memcmp(nm->u.s, c->key, c->keylen) == 0)
				e = &recs->u.items[k];
			for (m = 0; !e && recs && m < recs->len; m++)
				if ((nm = json_get(&recs->u.items[m], "recordName")) &&
				    nm->type == JSON_STRING && nm->len == c->keylen &&
				    memcmp(nm->u.s, c->key, c->keylen) == 0)
					e = &recs->u.items[m];
			outcome(c, e);
		}
	}
	return 0;
}

static int
ck_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	struct ck *ck = s->priv;
	struct json reply, *obj;
	const struct json *recs, *e;
	const char *kind;
	size_t kindlen;
	struct sb line;
	long status;
	int ret = -1;

	(void)type, (void)typelen;
	body_start(ck);
	sb_adds(&ck->body, ",\"records\":[{\"recordName\":");
	json_write_string(&ck->body, key, keylen);
	sb_adds(&ck->body, "}]}");
	if (call(ck, "records/lookup", &reply, &status) < 0)
		return -1;
	if (status != 200) {
		set_reply_error("records/lookup", status, &reply);
		return -1;
	}
	if (!(recs = json_get(&reply, "records")) || recs->type != JSON_ARRAY ||
	    recs->len != 1) {
		rd_seterr(RD_EXIT_RUNTIME, "cloudkit: records/lookup: the reply "
		    "does not hold the one record asked for");
		return -1;
	}
	e = &recs->u.items[0];
	if (is_code(e, "NOT_FOUND"))
		return 0;
	if (json_get(e, "serverErrorCode")) {
		set_reply_error("records/lookup", 200, e);
		return -1;
	}
	sb_init(&line, 1024);
	if (record_out(ck, e, &line) < 0) {
		rd_prefixerr("cloudkit: records/lookup: ");
		goto out;
	}
	/* The record's strings and fields live in the caller's arena. */
	obj = arena_alloc(a, sizeof *obj);
	{
		char *text = arena_memdup(a, line.buf, line.len);

		if (stream_parse_line(a, text, line.len, obj, out, &kind,
		    &kindlen) != 1)
			goto out;
	}
	ret = 1;
out:
	sb_release(&line);
	return ret;
}

/* Count by listing: every record of each type, one page of 200 a request. */
static int
count_put(void *ctx, const struct rline *l)
{
	if (l->rec && !l->rec->deleted)
		(*(long long *)ctx)++;
	return 0;
}

static long long
ck_count(struct store *s, char *const *types, size_t ntypes)
{
	struct fetch_opts o = { 0 };
	long long n = 0;
	struct store_sink sink = { .put = count_put, .ctx = &n };

	if (ntypes == 0)
		return 0;
	o.types = (char **)types;
	o.ntypes = ntypes;
	return ck_fetch(s, &o, &sink) < 0 ? -1 : n;
}

const struct store_ops store_cloudkit_ops = {
	.scheme = "cloudkit",
	.synopsis = "cloudkit:CONTAINER/ENV/DB",
	.writable = 1,
	.forced_writes = 1,
	.change_feed = 1,
	.feed_check = ck_feed_check,
	.feed_now = 1,
	.cursors = 1,
	.needs_types = "a CloudKit database does not list them",
	.batch = CK_MAX_OPS,
	.max_batch = STORE_MAX_BATCH,
	.open = ck_open,
	.scope = ck_scope,
	.fetch = ck_fetch,
	.close = ck_close,
	.apply = ck_apply,
	.get = ck_get,
	.count = ck_count,
	.remote = 1,
};

int
cloudkit_record_line(const char *zone, const struct json *r, struct sb *out)
{
	struct ck ck;

	memset(&ck, 0, sizeof ck);
	ck.zone = (char *)zone;
	return record_out(&ck, r, out);
}

void
cloudkit_outcome(struct change *c, const struct json *e)
{
	outcome(c, e);
}
