/* stream.c - line reader, the line kinds, standard output. */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_LINE (4u << 20)

size_t
rd_max_line(void)
{
	const char *s = getenv("RECDELTA_MAX_LINE");
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return DEFAULT_MAX_LINE;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < 64 || v > (1ull << 31))
		return DEFAULT_MAX_LINE;
	return (size_t)v;
}

int
lreader_open(struct lreader *r, const char *path)
{
	memset(r, 0, sizeof *r);
	if (strcmp(path, "-") == 0) {
		r->fd = STDIN_FILENO;
		r->name = "<stdin>";
	} else {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
			return -1;
		}
		r->owned = 1;
		r->name = path;
	}
	r->cap = 256 * 1024;
	r->buf = xmalloc(r->cap);
	r->maxline = rd_max_line();
	return 0;
}

void
lreader_close(struct lreader *r)
{
	if (r->owned && r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
}

static int
isblankline(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

int
lreader_next(struct lreader *r, const char **line, size_t *len)
{
	for (;;) {
		char *nl = NULL;
		size_t scanned = 0;
		ssize_t n;

		for (;;) {
			if (r->end > r->start + scanned)
				nl = memchr(r->buf + r->start + scanned, '\n',
				    r->end - r->start - scanned);
			if (nl || r->eof)
				break;
			scanned = r->end - r->start;
			if (scanned > r->maxline) {
				rd_seterr(RD_EXIT_DATA, "%s:%lu: line too long "
				    "(more than %zu bytes)", r->name, r->lineno + 1,
				    r->maxline);
				return -1;
			}
			if (r->start > 0 && r->start >= r->cap / 2) {
				memmove(r->buf, r->buf + r->start, r->end - r->start);
				r->end -= r->start;
				r->start = 0;
			}
			if (r->end == r->cap) {
				r->cap *= 2;
				r->buf = xrealloc(r->buf, r->cap);
			}
			do
				n = read(r->fd, r->buf + r->end, r->cap - r->end);
			while (n < 0 && errno == EINTR);
			if (n < 0) {
				rd_seterr(RD_EXIT_RUNTIME, "%s: %s", r->name,
				    strerror(errno));
				return -1;
			}
			if (n == 0)
				r->eof = 1;
			r->end += (size_t)n;
		}
		if (!nl && r->start == r->end)
			return 0;
		{
			size_t l = nl ? (size_t)(nl - (r->buf + r->start)) :
			    r->end - r->start;
			const char *p = r->buf + r->start;

			r->lineno++;
			r->offset = r->next;
			r->next += (off_t)l + (nl ? 1 : 0);
			r->start += l + (nl ? 1 : 0);
			if (l > r->maxline) {
				rd_seterr(RD_EXIT_DATA, "%s:%lu: line too long "
				    "(more than %zu bytes)", r->name, r->lineno,
				    r->maxline);
				return -1;
			}
			if (isblankline(p, l))
				continue;
			*line = p;
			*len = l;
			return 1;
		}
	}
}

static const char *const op_names[RD_OP_N] = {
	"create", "update", "delete", "same"
};
static const char *const status_names[RD_ST_N] = {
	NULL, "ok", "skipped", "conflict", "deferred", "failed", "planned"
};
static const char *const side_names[] = { NULL, "local", "remote" };

static int
lookup(const char *const *names, int n, const char *s, size_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (names[i] && strlen(names[i]) == len &&
		    memcmp(names[i], s, len) == 0)
			return i;
	return -1;
}

const char *
rd_op_name(enum rd_op op)
{
	return op_names[op];
}

int
rd_op_parse(const char *s, size_t n)
{
	return lookup(op_names, RD_OP_N, s, n);
}

const char *
rd_status_name(enum rd_status st)
{
	return status_names[st];
}

int
rd_status_parse(const char *s, size_t n)
{
	return lookup(status_names, RD_ST_N, s, n);
}

const char *
rd_side_name(enum rd_side side)
{
	return side_names[side];
}

int
rd_side_parse(const char *s, size_t n)
{
	return lookup(side_names, 3, s, n);
}

int
stream_get_str(const struct json *obj, const char *name, int flags,
    const char **s, size_t *n)
{
	const struct json *v = json_get(obj, name);

	*s = NULL;
	*n = 0;
	if (!v) {
		if (!(flags & STREAM_REQUIRED))
			return 0;
		rd_seterr(RD_EXIT_DATA, "missing \"%s\"", name);
		return -1;
	}
	if (v->type != JSON_STRING) {
		rd_seterr(RD_EXIT_DATA, "\"%s\" is not a string", name);
		return -1;
	}
	if ((flags & STREAM_REQUIRED) && v->len == 0) {
		rd_seterr(RD_EXIT_DATA, "empty \"%s\"", name);
		return -1;
	}
	*s = v->u.s;
	*n = v->len;
	return 0;
}

/* An object member, or NULL when absent; -1 when it is not an object. */
static int
get_obj(const struct json *obj, const char *name, const struct json **v)
{
	*v = json_get(obj, name);
	if (*v && (*v)->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_DATA, "\"%s\" is not an object", name);
		return -1;
	}
	return 0;
}

/*
 * A before-image, member "before": NULL when absent, else an object whose
 * "rev", when present, is a string and whose "fields" is an object.
 */
static int
get_before(const struct json *obj, const struct json **v)
{
	const struct json *f;
	const char *rev;
	size_t n;

	if (get_obj(obj, "before", v) < 0)
		return -1;
	if (!*v)
		return 0;
	if (stream_get_str(*v, "rev", 0, &rev, &n) < 0 ||
	    get_obj(*v, "fields", &f) < 0) {
		rd_prefixerr("before: ");
		return -1;
	}
	if (!f) {
		rd_seterr(RD_EXIT_DATA, "before: missing \"fields\"");
		return -1;
	}
	return 0;
}

/* A positive integer of at most 18 digits: a run's number; -1 if not. */
static int
get_runno(const struct json *v, long long *out)
{
	long long n = 0;
	size_t i;

	if (v->type != JSON_NUMBER || v->len == 0 || v->len > 18)
		return -1;
	for (i = 0; i < v->len; i++) {
		if (v->u.s[i] < '0' || v->u.s[i] > '9')
			return -1;
		n = n * 10 + (v->u.s[i] - '0');
	}
	*out = n;
	return 0;
}

static const struct {
	const char *name;
	size_t len;
	enum rd_kind kind;
} kinds[] = {
	{ "record", 6, RD_KIND_RECORD }, { "change", 6, RD_KIND_CHANGE },
	{ "result", 6, RD_KIND_RESULT }, { "cursor", 6, RD_KIND_CURSOR },
	{ "summary", 7, RD_KIND_SUMMARY }, { "conflict", 8, RD_KIND_CONFLICT },
};

static enum rd_kind
kind_of(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kinds[i].len == n && memcmp(kinds[i].name, s, n) == 0)
			return kinds[i].kind;
	return RD_KIND_OTHER;
}

static int
parse_kind(struct arena *a, const char *line, size_t len, struct json *obj,
    const char **kind, size_t *kindlen)
{
	if (json_parse(a, line, len, obj, NULL) < 0)
		return -1;
	if (obj->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_DATA, "line is not a JSON object");
		return -1;
	}
	if (stream_get_str(obj, "kind", STREAM_REQUIRED, kind, kindlen) < 0)
		return -1;
	return (int)kind_of(*kind, *kindlen);
}

int
stream_parse_kind(struct arena *a, const char *line, size_t len,
    struct json *obj)
{
	const char *kind;
	size_t kindlen;

	return parse_kind(a, line, len, obj, &kind, &kindlen);
}

int
stream_get_record(const struct json *obj, struct record *rec)
{
	const struct json *v;

	memset(rec, 0, sizeof *rec);
	if (stream_get_str(obj, "type", STREAM_REQUIRED, &rec->type,
	    &rec->typelen) < 0 ||
	    stream_get_str(obj, "key", STREAM_REQUIRED, &rec->key,
	    &rec->keylen) < 0 ||
	    stream_get_str(obj, "rev", 0, &rec->rev, &rec->revlen) < 0 ||
	    stream_get_str(obj, "mtime", 0, &rec->mtime, &rec->mtimelen) < 0)
		return -1;
	v = json_get(obj, "deleted");
	if (v) {
		if (v->type != JSON_TRUE && v->type != JSON_FALSE) {
			rd_seterr(RD_EXIT_DATA, "\"deleted\" is not a boolean");
			return -1;
		}
		rec->deleted = v->type == JSON_TRUE;
	}
	if (get_obj(obj, "fields", &rec->fields) < 0)
		return -1;
	if (!rec->fields && !rec->deleted) {
		rd_seterr(RD_EXIT_DATA, "missing \"fields\"");
		return -1;
	}
	return 0;
}

int
stream_parse_line(struct arena *a, const char *line, size_t len,
    struct json *obj, struct record *rec, const char **kind, size_t *kindlen)
{
	int k;

	if ((k = parse_kind(a, line, len, obj, kind, kindlen)) < 0)
		return -1;
	if (k != RD_KIND_RECORD)
		return 0;
	return stream_get_record(obj, rec) < 0 ? -1 : 1;
}

/* Writers: the members every kind shares. */

static void
put_head(struct sb *out, const char *head, const char *type, size_t typelen,
    const char *key, size_t keylen)
{
	sb_adds(out, head);
	sb_adds(out, "\"type\":");
	json_write_string(out, type, typelen);
	sb_adds(out, ",\"key\":");
	json_write_string(out, key, keylen);
}

static void
put_str(struct sb *out, const char *member, const char *s, size_t n)
{
	if (s) {
		sb_adds(out, member);
		json_write_string(out, s, n);
	}
}

static void
put_json(struct sb *out, const char *member, const struct json *v)
{
	if (v) {
		sb_adds(out, member);
		json_write(out, v, 0);
	}
}

static void
record_head(struct sb *out, const struct record *rec)
{
	put_head(out, "{\"kind\":\"record\",", rec->type, rec->typelen,
	    rec->key, rec->keylen);
	put_str(out, ",\"rev\":", rec->rev, rec->revlen);
	put_str(out, ",\"mtime\":", rec->mtime, rec->mtimelen);
	if (rec->deleted)
		sb_adds(out, ",\"deleted\":true");
}

void
stream_write_record(struct sb *out, const struct record *rec)
{
	record_head(out, rec);
	put_json(out, ",\"fields\":", rec->fields);
	sb_addc(out, '}');
}

void
stream_write_record_text(struct sb *out, const struct record *rec,
    const char *fields, size_t len)
{
	record_head(out, rec);
	if (fields) {
		sb_adds(out, ",\"fields\":");
		sb_add(out, fields, len);
	}
	sb_addc(out, '}');
}

#define RD_SEEN_BYTES 32	/* a SHA-256 */

static int
is_hexhash(const char *s, size_t n)
{
	size_t i;

	if (n != 2 * RD_SEEN_BYTES)
		return 0;
	for (i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]) || !s[i])
			return 0;
	return 1;
}

int
stream_get_change(const struct json *obj, struct change *c)
{
	const struct json *v;
	const char *s;
	size_t n;
	int op;

	memset(c, 0, sizeof *c);
	v = json_get(obj, "op");
	if (!v || v->type != JSON_STRING ||
	    (op = rd_op_parse(v->u.s, v->len)) < 0) {
		rd_seterr(RD_EXIT_DATA, "\"op\" is not create, update, delete "
		    "or same");
		return -1;
	}
	c->op = (enum rd_op)op;
	if (stream_get_str(obj, "type", STREAM_REQUIRED, &c->type,
	    &c->typelen) < 0 ||
	    stream_get_str(obj, "key", STREAM_REQUIRED, &c->key,
	    &c->keylen) < 0 ||
	    stream_get_str(obj, "rev", 0, &c->rev, &c->revlen) < 0 ||
	    stream_get_str(obj, "seen", 0, &c->seen, &c->seenlen) < 0)
		return -1;
	if (c->seen && !is_hexhash(c->seen, c->seenlen)) {
		rd_seterr(RD_EXIT_DATA, "\"seen\" is not %d lower-case hex "
		    "digits", 2 * RD_SEEN_BYTES);
		return -1;
	}
	/* An update or a delete is guarded: by its rev, or what it saw. */
	if ((c->op == RD_OP_UPDATE || c->op == RD_OP_DELETE) &&
	    (!c->rev || !c->revlen) && !c->seen) {
		rd_seterr(RD_EXIT_DATA, c->rev ? "empty \"rev\"" :
		    "missing \"rev\"");
		return -1;
	}
	if (get_obj(obj, "fields", &c->fields) < 0)
		return -1;
	if (!c->fields && (c->op == RD_OP_CREATE || c->op == RD_OP_UPDATE)) {
		rd_seterr(RD_EXIT_DATA, "missing \"fields\"");
		return -1;
	}
	c->changed = json_get(obj, "changed");
	if (c->changed && c->changed->type != JSON_ARRAY) {
		rd_seterr(RD_EXIT_DATA, "\"changed\" is not an array");
		return -1;
	}
	c->edited = json_get(obj, "edited");
	if (c->edited && (c->edited->type != JSON_ARRAY ||
	    c->op != RD_OP_UPDATE)) {
		rd_seterr(RD_EXIT_DATA, c->edited->type != JSON_ARRAY ?
		    "\"edited\" is not an array" :
		    "\"edited\" on a change that is no update");
		return -1;
	}
	if (stream_get_str(obj, "target", 0, &s, &n) < 0)
		return -1;
	if (s && (op = rd_side_parse(s, n)) < 0) {
		rd_seterr(RD_EXIT_DATA, "\"target\" is not remote or local");
		return -1;
	}
	c->target = s ? (enum rd_side)op : RD_SIDE_NONE;
	if (get_before(obj, &c->before) < 0)
		return -1;
	if ((v = json_get(obj, "undoes")) && (get_runno(v, &c->undoes) < 0 ||
	    c->undoes <= 0)) {
		rd_seterr(RD_EXIT_DATA, "\"undoes\" is not a run number");
		return -1;
	}
	return 0;
}

const struct json *
stream_before(struct arena *a, const char *rev, size_t revlen,
    const struct json *fields)
{
	struct json *v = arena_alloc(a, sizeof *v);
	struct json_member *m = arena_alloc(a, 2 * sizeof *m);
	size_t n = 0;

	if (rev && revlen) {
		m[n].name = "rev";
		m[n].namelen = 3;
		m[n++].value = json_string(a, rev, revlen);
	}
	m[n].name = "fields";
	m[n].namelen = 6;
	m[n++].value = *fields;
	v->type = JSON_OBJECT;
	v->len = n;
	v->u.members = m;
	return v;
}

void
stream_write_change(struct sb *out, const struct change *c)
{
	sb_adds(out, "{\"kind\":\"change\",\"op\":\"");
	sb_adds(out, op_names[c->op]);
	put_head(out, "\",", c->type, c->typelen, c->key, c->keylen);
	put_str(out, ",\"rev\":", c->rev, c->revlen);
	put_json(out, ",\"fields\":", c->fields);
	put_json(out, ",\"changed\":", c->changed);
	if (c->edited && c->edited->len)
		put_json(out, ",\"edited\":", c->edited);
	if (c->target != RD_SIDE_NONE) {
		sb_adds(out, ",\"target\":\"");
		sb_adds(out, side_names[c->target]);
		sb_addc(out, '"');
	}
	put_str(out, ",\"seen\":", c->seen, c->seenlen);
	put_json(out, ",\"before\":", c->before);
	if (c->undoes)
		sb_addf(out, ",\"undoes\":%lld", c->undoes);
	sb_addc(out, '}');
}

int
stream_get_result(const struct json *obj, struct result *res)
{
	const struct json *err;
	const char *op, *st;
	size_t oplen, stlen, i;
	int k;

	memset(res, 0, sizeof *res);
	if (stream_get_str(obj, "op", STREAM_REQUIRED, &op, &oplen) < 0 ||
	    stream_get_str(obj, "type", STREAM_REQUIRED, &res->type,
	    &res->typelen) < 0 ||
	    stream_get_str(obj, "key", STREAM_REQUIRED, &res->key,
	    &res->keylen) < 0 ||
	    stream_get_str(obj, "status", STREAM_REQUIRED, &st, &stlen) < 0 ||
	    stream_get_str(obj, "rev", 0, &res->rev, &res->revlen) < 0)
		return -1;
	if ((k = rd_op_parse(op, oplen)) < 0) {
		rd_seterr(RD_EXIT_DATA, "unknown op \"%s\" (expected create, "
		    "update, delete or same)", rd_quote(op, oplen));
		return -1;
	}
	res->op = (enum rd_op)k;
	if ((k = rd_status_parse(st, stlen)) < 0) {
		rd_seterr(RD_EXIT_DATA, "unknown status \"%s\" (expected ok, "
		    "skipped, conflict, deferred, failed or planned)",
		    rd_quote(st, stlen));
		return -1;
	}
	res->status = (enum rd_status)k;
	if (stream_get_str(obj, "target", 0, &st, &stlen) < 0)
		return -1;
	if (st && (k = rd_side_parse(st, stlen)) < 0) {
		rd_seterr(RD_EXIT_DATA, "\"target\" is not remote or local");
		return -1;
	}
	res->target = st ? (enum rd_side)k : RD_SIDE_NONE;
	if (get_obj(obj, "fields", &res->fields) < 0)
		return -1;
	res->changed = json_get(obj, "changed");
	if (res->changed) {
		int bad = res->changed->type != JSON_ARRAY;

		for (i = 0; !bad && i < res->changed->len; i++)
			bad = res->changed->u.items[i].type != JSON_STRING;
		if (bad) {
			rd_seterr(RD_EXIT_DATA, "\"changed\" is not an "
			    "array of strings");
			return -1;
		}
	}
	if (get_obj(obj, "error", &err) < 0 || get_before(obj, &res->before) < 0)
		return -1;
	if (err && (stream_get_str(err, "code", 0, &res->code,
	    &res->codelen) < 0 ||
	    stream_get_str(err, "message", 0, &res->message,
	    &res->messagelen) < 0)) {
		rd_prefixerr("error: ");
		return -1;
	}
	return 0;
}

void
stream_write_result(struct sb *out, const struct result *res)
{
	sb_adds(out, "{\"kind\":\"result\",\"op\":\"");
	sb_adds(out, op_names[res->op]);
	put_head(out, "\",", res->type, res->typelen, res->key, res->keylen);
	sb_adds(out, ",\"status\":\"");
	sb_adds(out, status_names[res->status]);
	sb_addc(out, '"');
	put_str(out, ",\"rev\":", res->rev, res->revlen);
	put_json(out, ",\"fields\":", res->fields);
	put_json(out, ",\"changed\":", res->changed);
	if (res->target != RD_SIDE_NONE) {
		sb_adds(out, ",\"target\":\"");
		sb_adds(out, side_names[res->target]);
		sb_addc(out, '"');
	}
	if (res->code || res->message) {
		sb_adds(out, ",\"error\":{");
		put_str(out, "\"code\":", res->code, res->codelen);
		if (res->code && res->message)
			sb_addc(out, ',');
		put_str(out, "\"message\":", res->message, res->messagelen);
		sb_addc(out, '}');
	}
	put_json(out, ",\"before\":", res->before);
	sb_addc(out, '}');
}

int
stream_get_cursor(const struct json *obj, struct cursor *cur)
{
	memset(cur, 0, sizeof *cur);
	if (stream_get_str(obj, "source", 0, &cur->source,
	    &cur->sourcelen) < 0 ||
	    stream_get_str(obj, "name", STREAM_REQUIRED, &cur->name,
	    &cur->namelen) < 0)
		return -1;
	if (!(cur->value = json_get(obj, "value"))) {
		rd_seterr(RD_EXIT_DATA, "missing \"value\"");
		return -1;
	}
	return 0;
}

void
stream_write_cursor(struct sb *out, const struct cursor *cur)
{
	sb_adds(out, "{\"kind\":\"cursor\"");
	put_str(out, ",\"source\":", cur->source, cur->sourcelen);
	put_str(out, ",\"name\":", cur->name, cur->namelen);
	put_json(out, ",\"value\":", cur->value);
	sb_addc(out, '}');
}

/* The order of the counts in a summary line, and their names. */
static const enum rd_op count_order[RD_OP_N] = {
	RD_OP_SAME, RD_OP_CREATE, RD_OP_UPDATE, RD_OP_DELETE
};
static const char *const mcount_names[RD_MC_N] = {
	"local", "remote", "merged", "conflicts", "unchanged"
};

static int
is_merge(const struct summary *sum)
{
	return sum->stagelen == 5 && memcmp(sum->stage, "merge", 5) == 0;
}

/* The i-th count of a summary line of sum's stage: its name and index. */
static const char *
count_at(const struct summary *sum, size_t i, size_t *idx)
{
	if (is_merge(sum)) {
		*idx = i;
		return mcount_names[i];
	}
	*idx = count_order[i];
	return op_names[count_order[i]];
}

int
stream_get_summary(struct arena *a, const struct json *obj,
    struct summary *sum)
{
	const struct json *counts;
	struct summary_count *c;
	size_t i, j, nc;

	memset(sum, 0, sizeof *sum);
	if (stream_get_str(obj, "stage", STREAM_REQUIRED, &sum->stage,
	    &sum->stagelen) < 0 || get_obj(obj, "counts", &counts) < 0)
		return -1;
	if (!counts) {
		rd_seterr(RD_EXIT_DATA, "missing \"counts\"");
		return -1;
	}
	nc = is_merge(sum) ? RD_MC_N : RD_OP_N;
	c = arena_alloc(a, (counts->len ? counts->len : 1) * sizeof *c);
	for (i = 0; i < counts->len; i++) {
		const struct json_member *m = &counts->u.members[i];

		memset(&c[i], 0, sizeof c[i]);
		c[i].type = m->name;
		c[i].typelen = m->namelen;
		for (j = 0; j < nc; j++) {
			size_t at;
			const char *name = count_at(sum, j, &at);
			const struct json *v = m->value.type == JSON_OBJECT ?
			    json_get(&m->value, name) : NULL;
			unsigned long n = 0;
			size_t k = 0;

			/* Digits only, at most 19 of them: no overflow. */
			if (v && v->type == JSON_NUMBER && v->len <= 19)
				for (; k < v->len && v->u.s[k] >= '0' &&
				    v->u.s[k] <= '9'; k++)
					n = n * 10 +
					    (unsigned long)(v->u.s[k] - '0');
			if (!v || v->type != JSON_NUMBER || k < v->len ||
			    v->len > 19) {
				rd_seterr(RD_EXIT_DATA, "counts \"%s\": \"%s\" "
				    "is not a count",
				    rd_quote(m->name, m->namelen), name);
				return -1;
			}
			c[i].n[at] = n;
		}
	}
	sum->counts = c;
	sum->ncounts = counts->len;
	return 0;
}

void
stream_write_summary(struct sb *out, const struct summary *sum)
{
	size_t i, j, at, nc = is_merge(sum) ? RD_MC_N : RD_OP_N;

	sb_adds(out, "{\"kind\":\"summary\",\"stage\":");
	json_write_string(out, sum->stage, sum->stagelen);
	sb_adds(out, ",\"counts\":{");
	for (i = 0; i < sum->ncounts; i++) {
		const struct summary_count *c = &sum->counts[i];

		if (i)
			sb_addc(out, ',');
		json_write_string(out, c->type, c->typelen);
		for (j = 0; j < nc; j++) {
			const char *name = count_at(sum, j, &at);

			sb_addf(out, "%s\"%s\":%lu", j ? "," : ":{", name,
			    c->n[at]);
		}
		sb_addc(out, '}');
	}
	sb_adds(out, "}}");
}

int
stream_get_conflict(const struct json *obj, struct conflict *cf)
{
	const char *s;
	size_t n;
	int side;

	memset(cf, 0, sizeof *cf);
	if (stream_get_str(obj, "type", STREAM_REQUIRED, &cf->type,
	    &cf->typelen) < 0 ||
	    stream_get_str(obj, "key", STREAM_REQUIRED, &cf->key,
	    &cf->keylen) < 0 ||
	    stream_get_str(obj, "field", 0, &cf->field, &cf->fieldlen) < 0 ||
	    stream_get_str(obj, "winner", STREAM_REQUIRED, &s, &n) < 0)
		return -1;
	if ((side = rd_side_parse(s, n)) < 0) {
		rd_seterr(RD_EXIT_DATA, "\"winner\" is not local or remote");
		return -1;
	}
	cf->winner = (enum rd_side)side;
	if (stream_get_str(obj, "reason", STREAM_REQUIRED, &cf->reason,
	    &cf->reasonlen) < 0)
		return -1;
	cf->base = json_get(obj, "base");
	cf->local = json_get(obj, "local");
	cf->remote = json_get(obj, "remote");
	return 0;
}

void
stream_write_conflict(struct sb *out, const struct conflict *cf)
{
	put_head(out, "{\"kind\":\"conflict\",", cf->type, cf->typelen,
	    cf->key, cf->keylen);
	put_str(out, ",\"field\":", cf->field, cf->fieldlen);
	put_json(out, ",\"base\":", cf->base);
	put_json(out, ",\"local\":", cf->local);
	put_json(out, ",\"remote\":", cf->remote);
	sb_adds(out, ",\"winner\":\"");
	sb_adds(out, side_names[cf->winner]);
	sb_adds(out, "\",\"reason\":");
	json_write_string(out, cf->reason, cf->reasonlen);
	if (cf->id) {
		sb_addf(out, ",\"id\":%lld,\"run\":", cf->id);
		if (cf->run)
			sb_addf(out, "%lld", cf->run);
		else
			sb_adds(out, "null");
		sb_adds(out, ",\"recorded\":");
		json_write_string(out, cf->recorded, strlen(cf->recorded));
		sb_adds(out, ",\"reviewed\":");
		if (cf->reviewed)
			json_write_string(out, cf->reviewed, strlen(cf->reviewed));
		else
			sb_adds(out, "null");
	}
	sb_addc(out, '}');
}

static char *outbuf;

void
stream_out_init(void)
{
	outbuf = xmalloc(1 << 20);
	setvbuf(stdout, outbuf, _IOFBF, 1 << 20);
}

void
stream_out_line(const char *line, size_t len)
{
	fwrite(line, 1, len, stdout);
	putchar('\n');
}

int
stream_out_close(void)
{
	int bad = fflush(stdout) != 0 || ferror(stdout);
	int e = errno;

	if (fclose(stdout) != 0 && !bad) {
		bad = 1;
		e = errno;
	}
	/* stdout is closed; its buffer may go. */
	free(outbuf);
	outbuf = NULL;
	if (bad) {
		rd_seterr(RD_EXIT_RUNTIME, "write error: %s", strerror(e));
		return -1;
	}
	return 0;
}
