/* record.c - comparison rules, canonical hash, field-by-field comparison. */
#include "record.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "stream.h"

struct field_rule {
	char *name;
	size_t len;
	int ignore, has_tol;
	double eps;
};

struct ruleset {
	char *type;
	size_t typelen;
	struct field_rule *f;
	size_t nf;
};

struct rules {
	struct ruleset all;
	struct ruleset *types;
	size_t ntypes;
};

struct rules *
rules_new(void)
{
	return xcalloc(1, sizeof(struct rules));
}

static void
ruleset_release(struct ruleset *s)
{
	size_t i;

	for (i = 0; i < s->nf; i++)
		free(s->f[i].name);
	free(s->f);
	free(s->type);
}

void
rules_free(struct rules *r)
{
	size_t i;

	if (!r)
		return;
	ruleset_release(&r->all);
	for (i = 0; i < r->ntypes; i++)
		ruleset_release(&r->types[i]);
	free(r->types);
	free(r);
}

static struct ruleset *
ruleset_for(struct rules *r, const char *type)
{
	size_t i, n;

	if (!type || strcmp(type, "*") == 0)
		return &r->all;
	n = strlen(type);
	for (i = 0; i < r->ntypes; i++)
		if (r->types[i].typelen == n && memcmp(r->types[i].type, type, n) == 0)
			return &r->types[i];
	r->types = xreallocarray(r->types, r->ntypes + 1, sizeof *r->types);
	memset(&r->types[r->ntypes], 0, sizeof *r->types);
	r->types[r->ntypes].type = xstrdup(type);
	r->types[r->ntypes].typelen = n;
	return &r->types[r->ntypes++];
}

static struct field_rule *
field_rule(struct ruleset *s, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < s->nf; i++)
		if (s->f[i].len == n && memcmp(s->f[i].name, name, n) == 0)
			return &s->f[i];
	s->f = xreallocarray(s->f, s->nf + 1, sizeof *s->f);
	memset(&s->f[s->nf], 0, sizeof *s->f);
	s->f[s->nf].name = xmemdup(name, n);
	s->f[s->nf].len = n;
	return &s->f[s->nf++];
}

int
rules_add_ignore(struct rules *r, const char *type, const char *field)
{
	if (!*field) {
		rd_seterr(RD_EXIT_USAGE, "empty field name in ignore rule");
		return -1;
	}
	field_rule(ruleset_for(r, type), field, strlen(field))->ignore = 1;
	return 0;
}

int
rules_add_tolerance(struct rules *r, const char *type, const char *spec)
{
	const char *eq = strrchr(spec, '=');
	struct field_rule *f;
	char *end;
	double eps;

	if (!eq || eq == spec || !eq[1]) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": tolerance must be FIELD=EPS", spec);
		return -1;
	}
	errno = 0;
	eps = strtod(eq + 1, &end);
	if (errno || *end || !isfinite(eps) || eps < 0) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": tolerance is not a non-negative "
		    "number", spec);
		return -1;
	}
	f = field_rule(ruleset_for(r, type), spec, (size_t)(eq - spec));
	f->has_tol = 1;
	f->eps = eps;
	return 0;
}

int
rules_load(struct rules *r, const char *path)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t n;
	int ret = 0;

	if (!fp) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) >= 0) {
		char *words[4], *p = line, *save = NULL;
		int nw = 0, rc;

		lineno++;
		if ((p = strchr(line, '#')))
			*p = '\0';
		for (p = strtok_r(line, " \t\r\n", &save); p && nw < 4;
		    p = strtok_r(NULL, " \t\r\n", &save))
			words[nw++] = p;
		if (nw == 0)
			continue;
		if (nw != 3) {
			rd_seterr(RD_EXIT_DATA, "%s:%lu: expected \"TYPE ignore "
			    "FIELD\" or \"TYPE tolerance FIELD=EPS\"", path, lineno);
			ret = -1;
			break;
		}
		if (strcmp(words[1], "ignore") == 0)
			rc = rules_add_ignore(r, words[0], words[2]);
		else if (strcmp(words[1], "tolerance") == 0)
			rc = rules_add_tolerance(r, words[0], words[2]);
		else {
			rd_seterr(RD_EXIT_DATA, "%s:%lu: unknown rule \"%s\"", path,
			    lineno, rd_quote(words[1], strlen(words[1])));
			ret = -1;
			break;
		}
		if (rc < 0) {
			char msg[1024];

			snprintf(msg, sizeof msg, "%s", rd_errmsg());
			rd_seterr(RD_EXIT_DATA, "%s:%lu: %s", path, lineno, msg);
			ret = -1;
			break;
		}
	}
	if (ret == 0 && ferror(fp)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		ret = -1;
	}
	free(line);
	fclose(fp);
	return ret;
}

struct ruleview
rules_view(const struct rules *r, const char *type, size_t n)
{
	struct ruleview v = { r, NULL, NULL };
	size_t i;

	if (!r)
		return v;
	v.all = &r->all;
	for (i = 0; i < r->ntypes; i++)
		if (r->types[i].typelen == n && memcmp(r->types[i].type, type, n) == 0)
			v.type = &r->types[i];
	return v;
}

static const struct field_rule *
find_rule(const struct ruleset *s, const char *name, size_t n)
{
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < s->nf; i++)
		if (s->f[i].len == n && memcmp(s->f[i].name, name, n) == 0)
			return &s->f[i];
	return NULL;
}

int
rules_ignored(const struct ruleview *v, const char *field, size_t n)
{
	const struct field_rule *f;

	if ((f = find_rule(v->type, field, n)) && f->ignore)
		return 1;
	return (f = find_rule(v->all, field, n)) && f->ignore;
}

static int
set_ignores(const struct ruleset *s)
{
	size_t i;

	for (i = 0; s && i < s->nf; i++)
		if (s->f[i].ignore)
			return 1;
	return 0;
}

int
rules_view_ignores(const struct ruleview *v)
{
	return set_ignores(v->type) || set_ignores(v->all);
}

/* The tolerance for a field, or -1 for exact comparison. */
static double
field_eps(const struct ruleview *v, const char *field, size_t n)
{
	const struct field_rule *f;

	if ((f = find_rule(v->type, field, n)) && f->has_tol)
		return f->eps;
	if ((f = find_rule(v->all, field, n)) && f->has_tol)
		return f->eps;
	return -1;
}

/* ISO-8601 */

static int
digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

int
rd_parse_iso8601(const char *s, size_t n, long long *sec, long *nsec)
{
	int Y, M, D, h, m, sc, oh = 0, om = 0, sign = 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t i = 19;
	long ns = 0;

	if (n < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) ||
	    s[7] != '-' || digits(s + 8, 2, &D) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &m) ||
	    s[16] != ':' || digits(s + 17, 2, &sc))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 ||
	    sc > 60)
		return -1;
	if (M == 2 && D == 29 && !(Y % 4 == 0 && (Y % 100 != 0 || Y % 400 == 0)))
		return -1;
	if (s[i] == '.' || s[i] == ',') {
		long scale = 100000000;

		if (++i >= n || s[i] < '0' || s[i] > '9')
			return -1;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			ns += (s[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '-' ? -1 : 1;
		i++;
		if (n - i == 5 && s[i + 2] == ':') {
			if (digits(s + i, 2, &oh) || digits(s + i + 3, 2, &om))
				return -1;
		} else if (n - i == 4) {
			if (digits(s + i, 2, &oh) || digits(s + i + 2, 2, &om))
				return -1;
		} else {
			return -1;
		}
		i = n;
		if (oh > 23 || om > 59)
			return -1;
	} else {
		return -1;
	}
	if (i != n)
		return -1;
	*sec = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 +
	    m * 60 + sc - sign * (oh * 3600 + om * 60);
	*nsec = ns;
	return 0;
}

/* Canonical form */

enum tag { TAG_NONE, TAG_REF, TAG_LOC, TAG_TS, TAG_INT, TAG_BYTES, TAG_ASSET };

static enum tag
tag_of(const struct json *v, const struct json **payload)
{
	static const struct { const char *name; enum tag tag; } tags[] = {
		{ "$ref", TAG_REF }, { "$loc", TAG_LOC }, { "$ts", TAG_TS },
		{ "$int", TAG_INT }, { "$bytes", TAG_BYTES }, { "$asset", TAG_ASSET },
	};
	size_t i, j;

	if (v->type != JSON_OBJECT)
		return TAG_NONE;
	for (i = 0; i < v->len; i++) {
		const struct json_member *m = &v->u.members[i];

		if (m->namelen < 3 || m->name[0] != '$')
			continue;
		for (j = 0; j < sizeof tags / sizeof tags[0]; j++)
			if (strlen(tags[j].name) == m->namelen &&
			    memcmp(tags[j].name, m->name, m->namelen) == 0) {
				*payload = &m->value;
				return tags[j].tag;
			}
	}
	return TAG_NONE;
}

/* Members sorted by name; returns buf or an allocation the caller frees. */
static const struct json_member **
sort_members(const struct json *v, const struct json_member **buf, size_t nbuf)
{
	const struct json_member **m;
	size_t i;

	m = v->len <= nbuf ? buf : xreallocarray(NULL, v->len, sizeof *m);
	for (i = 0; i < v->len; i++)
		m[i] = &v->u.members[i];
	if (v->len > 16) {
		qsort(m, v->len, sizeof *m, json_member_ptrcmp);
		return m;
	}
	/* A record's few fields: insertion sort, no call through qsort. */
	for (i = 1; i < v->len; i++) {
		const struct json_member *x = m[i];
		size_t j = i;

		for (; j > 0 && json_member_ptrcmp(&m[j - 1], &x) > 0; j--)
			m[j] = m[j - 1];
		m[j] = x;
	}
	return m;
}

static int
is_int_string(const struct json *p)
{
	size_t i = 0;

	if (p->type != JSON_STRING || p->len == 0)
		return 0;
	if (p->u.s[0] == '-')
		i = 1;
	if (i == p->len)
		return 0;
	for (; i < p->len; i++)
		if (p->u.s[i] < '0' || p->u.s[i] > '9')
			return 0;
	return 1;
}

static int canon_value(const struct json *v, struct sb *out);

static int
canon_object(const struct json *v, struct sb *out, const struct ruleview *rv)
{
	const struct json_member *buf[32], **m;
	size_t i;
	int first = 1, ret = 0;

	m = sort_members(v, buf, 32);
	sb_addc(out, '{');
	for (i = 0; i < v->len; i++) {
		/* At the top, a null field is an absent one. */
		if (rv && (m[i]->value.type == JSON_NULL ||
		    rules_ignored(rv, m[i]->name, m[i]->namelen)))
			continue;
		if (!first)
			sb_addc(out, ',');
		first = 0;
		json_write_string(out, m[i]->name, m[i]->namelen);
		sb_addc(out, ':');
		if ((ret = canon_value(&m[i]->value, out)) < 0) {
			rd_prefixerr("field \"%s\": ", rd_quote(m[i]->name,
			    m[i]->namelen));
			break;
		}
	}
	sb_addc(out, '}');
	if (m != buf)
		free(m);
	return ret;
}

static int
bad_tag(const char *tag, const char *why)
{
	rd_seterr(RD_EXIT_DATA, "bad %s value: %s", tag, why);
	return -1;
}

static int
canon_tagged(enum tag t, const struct json *v, const struct json *p,
    struct sb *out)
{
	const struct json *lat, *lng, *ck;
	long long sec;
	long nsec;
	struct sb tmp;
	int r;

	static const char *const names[] = {
		[TAG_NONE] = "", [TAG_REF] = "$ref", [TAG_LOC] = "$loc",
		[TAG_TS] = "$ts", [TAG_INT] = "$int", [TAG_BYTES] = "$bytes",
		[TAG_ASSET] = "$asset",
	};

	if (t != TAG_REF && t != TAG_ASSET && v->len != 1)
		return bad_tag(names[t], "members beside the tag");
	switch (t) {
	case TAG_REF:
		if (p->type != JSON_STRING || p->len == 0)
			return bad_tag("$ref", "not a non-empty string");
		sb_adds(out, "{\"$ref\":");
		json_write_string(out, p->u.s, p->len);
		sb_addc(out, '}');
		return 0;
	case TAG_INT:
		if (!is_int_string(p))
			return bad_tag("$int", "not a string of decimal digits");
		return json_number_key(out, p->u.s, p->len);
	case TAG_TS:
		if (p->type != JSON_STRING ||
		    rd_parse_iso8601(p->u.s, p->len, &sec, &nsec) < 0)
			return bad_tag("$ts", "not an ISO-8601 date and time");
		sb_addf(out, "{\"$ts\":%lld.%09ld}", sec, nsec);
		return 0;
	case TAG_LOC:
		if (p->type != JSON_OBJECT || !(lat = json_get(p, "lat")) ||
		    !(lng = json_get(p, "lng")) || lat->type != JSON_NUMBER ||
		    lng->type != JSON_NUMBER)
			return bad_tag("$loc", "needs numbers \"lat\" and \"lng\"");
		sb_adds(out, "{\"$loc\":");
		r = canon_object(p, out, NULL);
		sb_addc(out, '}');
		return r;
	case TAG_BYTES:
		if (p->type != JSON_STRING)
			return bad_tag("$bytes", "not a string");
		sb_init(&tmp, p->len);
		r = base64_decode(&tmp, p->u.s, p->len);
		sb_release(&tmp);
		if (r < 0)
			return bad_tag("$bytes", "not padded standard base64");
		sb_adds(out, "{\"$bytes\":");
		json_write_string(out, p->u.s, p->len);
		sb_addc(out, '}');
		return 0;
	case TAG_ASSET:
		if (p->type != JSON_OBJECT)
			return bad_tag("$asset", "not an object");
		/* An asset is its content: download URLs change on every fetch. */
		if ((ck = json_get(p, "fileChecksum"))) {
			sb_adds(out, "{\"$asset\":{\"fileChecksum\":");
			r = canon_value(ck, out);
			sb_adds(out, "}}");
			return r;
		}
		sb_adds(out, "{\"$asset\":");
		r = canon_object(p, out, NULL);
		sb_addc(out, '}');
		return r;
	case TAG_NONE:
		break;
	}
	return canon_object(v, out, NULL);
}

static int
canon_value(const struct json *v, struct sb *out)
{
	const struct json *p;
	enum tag t;
	size_t i;

	switch (v->type) {
	case JSON_NUMBER:
		return json_number_key(out, v->u.s, v->len);
	case JSON_ARRAY:
		sb_addc(out, '[');
		for (i = 0; i < v->len; i++) {
			if (i)
				sb_addc(out, ',');
			if (canon_value(&v->u.items[i], out) < 0)
				return -1;
		}
		sb_addc(out, ']');
		return 0;
	case JSON_OBJECT:
		if ((t = tag_of(v, &p)) != TAG_NONE)
			return canon_tagged(t, v, p, out);
		return canon_object(v, out, NULL);
	default:
		json_write(out, v, 0);
		return 0;
	}
}

int
record_canon(const struct ruleview *v, const struct json *fields,
    struct sb *out)
{
	return canon_object(fields, out, v);
}

int
record_hash(const struct ruleview *v, const struct json *fields,
    unsigned char out[RD_HASH_LEN], struct sb *scratch)
{
	sb_reset(scratch);
	if (canon_object(fields, scratch, v) < 0)
		return -1;
	rd_sha256(scratch->buf, scratch->len, out);
	return 0;
}

int
record_digest(const struct ruleview *v, const struct json *fields,
    unsigned char out[RD_DIGEST_LEN], struct sb *scratch)
{
	sb_reset(scratch);
	if (canon_object(fields, scratch, v) < 0)
		return -1;
	rd_xxh128(scratch->buf, scratch->len, out);
	return 0;
}

/* Comparison */

static int
num_equal(const char *a, size_t an, const char *b, size_t bn, double eps)
{
	if (json_number_same(a, an, b, bn))
		return 1;
	if (eps >= 0) {
		struct json x = { JSON_NUMBER, an, { a } };
		struct json y = { JSON_NUMBER, bn, { b } };

		return fabs(json_number_double(&x) - json_number_double(&y)) <=
		    eps * (1 + 1e-12);
	}
	return 0;
}

static int canon_equal(const struct json *a, const struct json *b);

static int value_equal(const struct json *a, const struct json *b, double eps);

static int
object_equal(const struct json *a, const struct json *b, double eps)
{
	size_t i;

	if (a->len != b->len)
		return 0;
	for (i = 0; i < a->len; i++) {
		const struct json_member *m = &a->u.members[i];
		const struct json *o = json_getn(b, m->name, m->namelen);

		if (!o || !value_equal(&m->value, o, eps))
			return 0;
	}
	return 1;
}

static int
loc_equal(const struct json *a, const struct json *b, double eps)
{
	double te = eps >= 0 ? eps : RD_LOC_EPS;
	size_t i;

	if (a->type != JSON_OBJECT || b->type != JSON_OBJECT || a->len != b->len)
		return canon_equal(a, b);
	for (i = 0; i < a->len; i++) {
		const struct json_member *m = &a->u.members[i];
		const struct json *o = json_getn(b, m->name, m->namelen);
		int coord = (m->namelen == 3 && (memcmp(m->name, "lat", 3) == 0 ||
		    memcmp(m->name, "lng", 3) == 0));

		if (!o)
			return 0;
		if (coord && m->value.type == JSON_NUMBER && o->type == JSON_NUMBER) {
			if (!num_equal(m->value.u.s, m->value.len, o->u.s, o->len, te))
				return 0;
		} else if (!value_equal(&m->value, o, eps)) {
			return 0;
		}
	}
	return 1;
}

static int
value_equal(const struct json *a, const struct json *b, double eps)
{
	const struct json *pa = NULL, *pb = NULL;
	enum tag ta = tag_of(a, &pa), tb = tag_of(b, &pb);
	size_t i;

	/* {"$int":"D"} is the number D. */
	if (ta == TAG_INT && is_int_string(pa) && a->len == 1)
		a = pa;
	if (tb == TAG_INT && is_int_string(pb) && b->len == 1)
		b = pb;
	if ((a == pa || a->type == JSON_NUMBER) &&
	    (b == pb || b->type == JSON_NUMBER) && (a == pa || b == pb))
		return num_equal(a->u.s, a->len, b->u.s, b->len, eps);
	if (ta != tb)
		return 0;
	if (ta == TAG_LOC)
		return a->len == 1 && b->len == 1 && loc_equal(pa, pb, eps);
	if (ta != TAG_NONE)
		return canon_equal(a, b);
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case JSON_NUMBER:
		return num_equal(a->u.s, a->len, b->u.s, b->len, eps);
	case JSON_STRING:
		return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
	case JSON_ARRAY:
		if (a->len != b->len)
			return 0;
		for (i = 0; i < a->len; i++)
			if (!value_equal(&a->u.items[i], &b->u.items[i], eps))
				return 0;
		return 1;
	case JSON_OBJECT:
		return object_equal(a, b, eps);
	default:
		return 1;
	}
}

/* Exact equality of canonical forms (tagged values other than $loc). */
static int
canon_equal(const struct json *a, const struct json *b)
{
	struct sb x, y;
	int eq;

	sb_init(&x, 64);
	sb_init(&y, 64);
	eq = canon_value(a, &x) == 0 && canon_value(b, &y) == 0 &&
	    x.len == y.len && memcmp(x.buf, y.buf, x.len) == 0;
	sb_release(&x);
	sb_release(&y);
	return eq;
}

size_t
record_compare(const struct ruleview *v, const struct json *a,
    const struct json *b, struct sb *changed)
{
	const struct json_member *abuf[32], *bbuf[32], **ma, **mb;
	size_t i = 0, j = 0, n = 0;

	ma = sort_members(a, abuf, 32);
	mb = sort_members(b, bbuf, 32);
	if (changed)
		sb_addc(changed, '[');
	while (i < a->len || j < b->len) {
		const struct json_member *m;
		int c, differ;

		if (i == a->len)
			c = 1;
		else if (j == b->len)
			c = -1;
		else
			c = json_member_ptrcmp(&ma[i], &mb[j]);
		m = c <= 0 ? ma[i] : mb[j];
		if (rules_ignored(v, m->name, m->namelen)) {
			differ = 0;
		} else if (c != 0) {
			/* Absent on one side: equal only if null on the other. */
			differ = m->value.type != JSON_NULL;
		} else {
			differ = !value_equal(&ma[i]->value, &mb[j]->value,
			    field_eps(v, m->name, m->namelen));
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
		if (!differ)
			continue;
		if (changed) {
			if (n)
				sb_addc(changed, ',');
			json_write_string(changed, m->name, m->namelen);
		}
		n++;
	}
	if (changed)
		sb_addc(changed, ']');
	if (ma != abuf)
		free(ma);
	if (mb != bbuf)
		free(mb);
	return n;
}

/* The value codec of stores whose numbers are doubles */

/* True for an integer literal beyond 2^53 either way. */
static int
beyond_double(const char *lit, size_t n)
{
	static const char max[] = "9007199254740992";

	if (n && lit[0] == '-') {
		lit++;
		n--;
	}
	return n > sizeof max - 1 ||
	    (n == sizeof max - 1 && memcmp(lit, max, n) > 0);
}

static int
encode_doubles(struct sb *out, const struct json *v)
{
	char buf[40];
	size_t i;

	switch (v->type) {
	case JSON_NUMBER:
		if (json_number_is_integer(v->u.s, v->len)) {
			if (beyond_double(v->u.s, v->len)) {
				sb_adds(out, "{\"$int\":\"");
				sb_add(out, v->u.s, v->len);
				sb_adds(out, "\"}");
				return 0;
			}
		} else if (json_format_double(buf, sizeof buf,
		    json_number_double(v)) < 0 ||
		    !json_number_equal(buf, strlen(buf), v->u.s, v->len)) {
			rd_seterr(RD_EXIT_DATA, "%s is not the value of a double, "
			    "which the store would keep instead",
			    rd_quote(v->u.s, v->len));
			return -1;
		}
		sb_add(out, v->u.s, v->len);
		return 0;
	case JSON_ARRAY:
		sb_addc(out, '[');
		for (i = 0; i < v->len; i++) {
			if (i)
				sb_addc(out, ',');
			if (encode_doubles(out, &v->u.items[i]) < 0)
				return -1;
		}
		sb_addc(out, ']');
		return 0;
	case JSON_OBJECT:
		sb_addc(out, '{');
		for (i = 0; i < v->len; i++) {
			const struct json_member *m = &v->u.members[i];

			if (i)
				sb_addc(out, ',');
			json_write_string(out, m->name, m->namelen);
			sb_addc(out, ':');
			if (encode_doubles(out, &m->value) < 0)
				return -1;
		}
		sb_addc(out, '}');
		return 0;
	default:
		json_write(out, v, 0);
		return 0;
	}
}

int
record_encode_doubles(struct sb *out, const struct json *v)
{
	size_t start = out->len;

	if (encode_doubles(out, v) < 0) {
		out->len = start;
		out->buf[start] = '\0';
		return -1;
	}
	return 0;
}
