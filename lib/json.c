/* json.c - exact JSON: arena, strict parser, writers, canonical numbers. */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arena */

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	max_align_t data[];
};

#define ARENA_CHUNK (64 * 1024)

void
arena_init(struct arena *a)
{
	memset(a, 0, sizeof *a);
}

static void
arena_newchunk(struct arena *a, size_t need)
{
	size_t size = need > ARENA_CHUNK ? need : ARENA_CHUNK;
	struct arena_chunk *c = xmalloc(sizeof *c + size);

	c->size = size;
	c->next = a->head;
	a->head = c;
	a->p = (char *)c->data;
	a->end = a->p + size;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	void *r;

	n = (n + 15) & ~(size_t)15;
	if ((size_t)(a->end - a->p) < n)
		arena_newchunk(a, n);
	r = a->p;
	a->p += n;
	return r;
}

char *
arena_memdup(struct arena *a, const void *p, size_t n)
{
	char *s = arena_alloc(a, n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

void
arena_reset(struct arena *a)
{
	struct arena_chunk *c, *next;

	if (!a->head)
		return;
	/* Keep the oldest chunk of standard size, free the rest. */
	for (c = a->head; c->next; c = next) {
		next = c->next;
		free(c);
	}
	if (c->size > ARENA_CHUNK) {
		free(c);
		a->head = NULL;
		a->p = a->end = NULL;
		return;
	}
	a->head = c;
	a->p = (char *)c->data;
	a->end = a->p + c->size;
}

void
arena_release(struct arena *a)
{
	struct arena_chunk *c, *next;

	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a->vals);
	free(a->mems);
	arena_init(a);
}

/* Parser */

struct parser {
	struct arena *a;
	const char *s, *p, *end;
	int depth;
	/* Scratch stacks shared by every nesting level. */
	struct json *vals;
	size_t nvals, capvals;
	struct json_member *mems;
	size_t nmems, capmems;
};

static int
fail(struct parser *ps, const char *msg)
{
	(void)ps;
	rd_seterr(RD_EXIT_DATA, "%s", msg);
	return -1;
}

static void
skipws(struct parser *ps)
{
	while (ps->p < ps->end &&
	    (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int parse_value(struct parser *ps, struct json *out);

static int
read_hex4(struct parser *ps, const char *q, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (ps->end - q < 4)
		return fail(ps, "truncated \\u escape");
	for (i = 0; i < 4; i++) {
		int h = hex_value((unsigned char)q[i]);

		if (h < 0)
			return fail(ps, "bad \\u escape");
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

size_t
json_utf8_seq(const unsigned char *q, const unsigned char *e)
{
	unsigned c = *q;

	if (c >= 0xc2 && c <= 0xdf)
		return e - q >= 2 && (q[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (e - q < 3 || (q[1] & 0xc0) != 0x80 || (q[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && q[1] < 0xa0) || (c == 0xed && q[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (e - q < 4 || (q[1] & 0xc0) != 0x80 || (q[2] & 0xc0) != 0x80 ||
		    (q[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && q[1] < 0x90) || (c == 0xf4 && q[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

static int
parse_string(struct parser *ps, const char **outs, size_t *outn)
{
	const unsigned char *q = (const unsigned char *)ps->p + 1;
	const unsigned char *e = (const unsigned char *)ps->end;
	const unsigned char *start = q;
	char *buf, *o;

	/* Fast path: no escapes, so the value borrows the input. */
	for (;;) {
		/* Printable ASCII other than '"' and '\\' (one compare for both ends). */
		while (q < e && (unsigned char)(*q - 0x20) < 0x60 && *q != '"' &&
		    *q != '\\')
			q++;
		if (q >= e)
			return fail(ps, "unterminated string");
		if (*q == '"') {
			*outs = (const char *)start;
			*outn = (size_t)(q - start);
			ps->p = (const char *)q + 1;
			return 0;
		}
		if (*q == '\\')
			break;
		if (*q < 0x20)
			return fail(ps, "control character in string");
		if (*q < 0x80) {
			q++;
		} else {
			size_t k = json_utf8_seq(q, e);

			if (!k) {
				ps->p = (const char *)q;
				return fail(ps, "invalid UTF-8");
			}
			q += k;
		}
	}
	/* Slow path: decode escapes; the output is never longer than the input. */
	buf = arena_alloc(ps->a, (size_t)(e - start) + 1);
	memcpy(buf, start, (size_t)(q - start));
	o = buf + (q - start);
	for (;;) {
		if (q >= e)
			return fail(ps, "unterminated string");
		if (*q == '"')
			break;
		if (*q < 0x20)
			return fail(ps, "control character in string");
		if (*q == '\\') {
			unsigned cp, lo;

			if (q + 1 >= e)
				return fail(ps, "unterminated string");
			switch (q[1]) {
			case '"': *o++ = '"'; q += 2; continue;
			case '\\': *o++ = '\\'; q += 2; continue;
			case '/': *o++ = '/'; q += 2; continue;
			case 'b': *o++ = '\b'; q += 2; continue;
			case 'f': *o++ = '\f'; q += 2; continue;
			case 'n': *o++ = '\n'; q += 2; continue;
			case 'r': *o++ = '\r'; q += 2; continue;
			case 't': *o++ = '\t'; q += 2; continue;
			case 'u': break;
			default:
				ps->p = (const char *)q;
				return fail(ps, "bad escape in string");
			}
			ps->p = (const char *)q;
			if (read_hex4(ps, (const char *)q + 2, &cp) < 0)
				return -1;
			q += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(ps, "lone surrogate in string");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (e - q < 6 || q[0] != '\\' || q[1] != 'u')
					return fail(ps, "lone surrogate in string");
				if (read_hex4(ps, (const char *)q + 2, &lo) < 0)
					return -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(ps, "lone surrogate in string");
				q += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp < 0x80) {
				*o++ = (char)cp;
			} else if (cp < 0x800) {
				*o++ = (char)(0xc0 | cp >> 6);
				*o++ = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*o++ = (char)(0xe0 | cp >> 12);
				*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*o++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*o++ = (char)(0xf0 | cp >> 18);
				*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
				*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*o++ = (char)(0x80 | (cp & 0x3f));
			}
		} else if (*q < 0x80) {
			*o++ = (char)*q++;
		} else {
			size_t k = json_utf8_seq(q, e);

			if (!k) {
				ps->p = (const char *)q;
				return fail(ps, "invalid UTF-8");
			}
			memcpy(o, q, k);
			o += k;
			q += k;
		}
	}
	*o = '\0';
	*outs = buf;
	*outn = (size_t)(o - buf);
	ps->p = (const char *)q + 1;
	return 0;
}

static int
isdigit_(int c)
{
	return c >= '0' && c <= '9';
}

static int
parse_number(struct parser *ps, struct json *out)
{
	const char *q = ps->p, *e = ps->end, *start = q;

	if (q < e && *q == '-')
		q++;
	if (q >= e || !isdigit_(*q))
		return fail(ps, "malformed number");
	if (*q == '0') {
		q++;
	} else {
		while (q < e && isdigit_(*q))
			q++;
	}
	if (q < e && *q == '.') {
		q++;
		if (q >= e || !isdigit_(*q))
			return fail(ps, "malformed number");
		while (q < e && isdigit_(*q))
			q++;
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < e && (*q == '+' || *q == '-'))
			q++;
		if (q >= e || !isdigit_(*q))
			return fail(ps, "malformed number");
		while (q < e && isdigit_(*q))
			q++;
	}
	out->type = JSON_NUMBER;
	out->u.s = start;
	out->len = (size_t)(q - start);
	ps->p = q;
	return 0;
}

int
json_member_ptrcmp(const void *x, const void *y)
{
	const struct json_member *a = *(struct json_member *const *)x;
	const struct json_member *b = *(struct json_member *const *)y;
	size_t n = a->namelen < b->namelen ? a->namelen : b->namelen;
	int c = memcmp(a->name, b->name, n);

	if (c)
		return c;
	return a->namelen < b->namelen ? -1 : a->namelen > b->namelen;
}

/* Whether m is named name; the first bytes are tried before memcmp. */
static inline int
same_name(const struct json_member *m, const char *name, size_t n)
{
	return m->namelen == n && (n == 0 || (m->name[0] == name[0] &&
	    memcmp(m->name, name, n) == 0));
}

static int
check_duplicates(struct parser *ps, struct json_member *m, size_t n)
{
	size_t i, j;

	if (n <= 12) {
		for (i = 1; i < n; i++)
			for (j = 0; j < i; j++)
				if (same_name(&m[i], m[j].name, m[j].namelen))
					goto dup;
		return 0;
	} else {
		struct json_member **v = xreallocarray(NULL, n, sizeof *v);
		int bad = 0;

		for (i = 0; i < n; i++)
			v[i] = &m[i];
		qsort(v, n, sizeof *v, json_member_ptrcmp);
		for (i = 1; i < n && !bad; i++)
			if (json_member_ptrcmp(&v[i - 1], &v[i]) == 0) {
				bad = 1;
				j = (size_t)(v[i] - m);
			}
		if (bad)
			i = j;
		free(v);
		if (!bad)
			return 0;
	}
dup:
	rd_seterr(RD_EXIT_DATA, "duplicate member \"%s\"",
	    rd_quote(m[i].name, m[i].namelen));
	(void)ps;
	return -1;
}

static int
parse_array(struct parser *ps, struct json *out)
{
	size_t base = ps->nvals, n;

	ps->p++;
	skipws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		goto done;
	}
	for (;;) {
		struct json v;

		if (parse_value(ps, &v) < 0)
			return -1;
		if (ps->nvals == ps->capvals) {
			ps->capvals = ps->capvals ? ps->capvals * 2 : 64;
			ps->vals = xreallocarray(ps->vals, ps->capvals, sizeof *ps->vals);
		}
		ps->vals[ps->nvals++] = v;
		skipws(ps);
		if (ps->p >= ps->end)
			return fail(ps, "unterminated array");
		if (*ps->p == ',') {
			ps->p++;
			skipws(ps);
			continue;
		}
		if (*ps->p == ']') {
			ps->p++;
			break;
		}
		return fail(ps, "expected ',' or ']' in array");
	}
done:
	n = ps->nvals - base;
	out->type = JSON_ARRAY;
	out->len = n;
	out->u.items = n ? arena_alloc(ps->a, n * sizeof(struct json)) : NULL;
	if (n)
		memcpy(out->u.items, ps->vals + base, n * sizeof(struct json));
	ps->nvals = base;
	return 0;
}

static int
parse_object(struct parser *ps, struct json *out)
{
	size_t base = ps->nmems, n;

	ps->p++;
	skipws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		goto done;
	}
	for (;;) {
		struct json_member m;

		if (ps->p >= ps->end || *ps->p != '"')
			return fail(ps, ps->p >= ps->end ? "unterminated object" :
			    "expected member name in object");
		if (parse_string(ps, &m.name, &m.namelen) < 0)
			return -1;
		skipws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			return fail(ps, "expected ':' in object");
		ps->p++;
		skipws(ps);
		if (parse_value(ps, &m.value) < 0)
			return -1;
		if (ps->nmems == ps->capmems) {
			ps->capmems = ps->capmems ? ps->capmems * 2 : 64;
			ps->mems = xreallocarray(ps->mems, ps->capmems, sizeof *ps->mems);
		}
		ps->mems[ps->nmems++] = m;
		skipws(ps);
		if (ps->p >= ps->end)
			return fail(ps, "unterminated object");
		if (*ps->p == ',') {
			ps->p++;
			skipws(ps);
			continue;
		}
		if (*ps->p == '}') {
			ps->p++;
			break;
		}
		return fail(ps, "expected ',' or '}' in object");
	}
done:
	n = ps->nmems - base;
	/* mems is still NULL when the first object parsed in an arena is empty. */
	if (n && check_duplicates(ps, ps->mems + base, n) < 0)
		return -1;
	out->type = JSON_OBJECT;
	out->len = n;
	out->u.members = n ? arena_alloc(ps->a, n * sizeof(struct json_member)) : NULL;
	if (n)
		memcpy(out->u.members, ps->mems + base, n * sizeof(struct json_member));
	ps->nmems = base;
	return 0;
}

static int
parse_literal(struct parser *ps, const char *word, size_t n, enum json_type t,
    struct json *out)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, "invalid literal");
	ps->p += n;
	out->type = t;
	out->len = 0;
	out->u.s = NULL;
	return 0;
}

static int
parse_value(struct parser *ps, struct json *out)
{
	int r;

	if (ps->p >= ps->end)
		return fail(ps, "unexpected end of input");
	switch (*ps->p) {
	case '{':
	case '[':
		if (++ps->depth > JSON_MAX_DEPTH)
			return fail(ps, "nesting too deep");
		r = *ps->p == '{' ? parse_object(ps, out) : parse_array(ps, out);
		ps->depth--;
		return r;
	case '"':
		out->type = JSON_STRING;
		return parse_string(ps, &out->u.s, &out->len);
	case 't':
		return parse_literal(ps, "true", 4, JSON_TRUE, out);
	case 'f':
		return parse_literal(ps, "false", 5, JSON_FALSE, out);
	case 'n':
		return parse_literal(ps, "null", 4, JSON_NULL, out);
	default:
		if (*ps->p == '-' || isdigit_(*ps->p))
			return parse_number(ps, out);
		if ((unsigned char)*ps->p >= 0x80 &&
		    !json_utf8_seq((const unsigned char *)ps->p,
		    (const unsigned char *)ps->end))
			return fail(ps, "invalid UTF-8");
		return fail(ps, "unexpected character");
	}
}

int
json_parse(struct arena *a, const char *buf, size_t len, struct json *out,
    size_t *errpos)
{
	struct parser ps;
	int r;

	memset(&ps, 0, sizeof ps);
	ps.a = a;
	ps.s = ps.p = buf;
	ps.end = buf + len;
	/* Reuse the arena's scratch stacks across calls. */
	ps.vals = a->vals;
	ps.capvals = a->capvals;
	ps.mems = a->mems;
	ps.capmems = a->capmems;
	skipws(&ps);
	r = parse_value(&ps, out);
	if (r == 0) {
		skipws(&ps);
		if (ps.p != ps.end)
			r = fail(&ps, "trailing characters after JSON value");
	}
	a->vals = ps.vals;
	a->capvals = ps.capvals;
	a->mems = ps.mems;
	a->capmems = ps.capmems;
	if (errpos)
		*errpos = (size_t)(ps.p - buf);
	return r;
}

const struct json *
json_getn(const struct json *obj, const char *name, size_t n)
{
	size_t i;

	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (i = 0; i < obj->len; i++) {
		const struct json_member *m = &obj->u.members[i];

		if (same_name(m, name, n))
			return &m->value;
	}
	return NULL;
}

const struct json *
json_get(const struct json *obj, const char *name)
{
	return json_getn(obj, name, strlen(name));
}

/* Writers */

void
json_write_string(struct sb *out, const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t i, run = 0;

	sb_addc(out, '"');
	for (i = 0;; i++) {
		unsigned char c;
		const char *esc;

		while (n - i >= 8 && !json_word_special(json_load_word(s + i)))
			i += 8;
		while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' &&
		    s[i] != '\\')
			i++;
		if (i == n)
			break;
		c = (unsigned char)s[i];
		sb_add(out, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\t': esc = "\\t"; break;
		case '\r': esc = "\\r"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default: {
			char u[7] = { '\\', 'u', '0', '0', hx[c >> 4], hx[c & 15], 0 };

			sb_add(out, u, 6);
			continue;
		}
		}
		sb_adds(out, esc);
	}
	sb_add(out, s + run, n - run);
	sb_addc(out, '"');
}

static const struct json_member **
sorted_members(const struct json *v, const struct json_member **stackbuf,
    size_t stackn)
{
	const struct json_member **m;
	size_t i;

	m = v->len <= stackn ? stackbuf : xreallocarray(NULL, v->len, sizeof *m);
	for (i = 0; i < v->len; i++)
		m[i] = &v->u.members[i];
	qsort(m, v->len, sizeof *m, json_member_ptrcmp);
	return m;
}

void
json_write(struct sb *out, const struct json *v, int flags)
{
	size_t i;

	switch (v->type) {
	case JSON_NULL:
		sb_add(out, "null", 4);
		break;
	case JSON_FALSE:
		sb_add(out, "false", 5);
		break;
	case JSON_TRUE:
		sb_add(out, "true", 4);
		break;
	case JSON_NUMBER:
		sb_add(out, v->u.s, v->len);
		break;
	case JSON_STRING:
		json_write_string(out, v->u.s, v->len);
		break;
	case JSON_ARRAY:
		sb_addc(out, '[');
		for (i = 0; i < v->len; i++) {
			if (i)
				sb_addc(out, ',');
			json_write(out, &v->u.items[i], flags);
		}
		sb_addc(out, ']');
		break;
	case JSON_OBJECT:
		sb_addc(out, '{');
		if (flags & JSON_SORTED) {
			const struct json_member *buf[32], **m;

			m = sorted_members(v, buf, 32);
			for (i = 0; i < v->len; i++) {
				if (i)
					sb_addc(out, ',');
				json_write_string(out, m[i]->name, m[i]->namelen);
				sb_addc(out, ':');
				json_write(out, &m[i]->value, flags);
			}
			if (m != buf)
				free(m);
		} else {
			for (i = 0; i < v->len; i++) {
				const struct json_member *m = &v->u.members[i];

				if (i)
					sb_addc(out, ',');
				json_write_string(out, m->name, m->namelen);
				sb_addc(out, ':');
				json_write(out, &m->value, flags);
			}
		}
		sb_addc(out, '}');
		break;
	}
}

/* Numbers */

int
json_number_canon(struct sb *out, const char *lit, size_t n)
{
	const char *p = lit, *e = lit + n, *ip, *fp;
	size_t ilen, flen, total, first, last, k;
	long long e10 = 0;
	int neg = 0, eneg = 0;

	if (p < e && *p == '-') {
		neg = 1;
		p++;
	}
	for (ip = p; p < e && isdigit_(*p); p++)
		;
	ilen = (size_t)(p - ip);
	fp = p;
	flen = 0;
	if (p < e && *p == '.') {
		for (fp = ++p; p < e && isdigit_(*p); p++)
			;
		flen = (size_t)(p - fp);
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		for (; p < e && isdigit_(*p); p++) {
			e10 = e10 * 10 + (*p - '0');
			if (e10 > 1000000000LL) {
				rd_seterr(RD_EXIT_DATA, "number exponent out of range");
				return -1;
			}
		}
	}
	if (eneg)
		e10 = -e10;
	/* The value is D * 10^(e10 - flen), D the digits of both parts. */
#define DIGIT(k) ((k) < ilen ? ip[k] : fp[(k) - ilen])
	total = ilen + flen;
	for (first = 0; first < total && DIGIT(first) == '0'; first++)
		;
	if (first == total) {
		sb_addc(out, '0');
		return 0;
	}
	for (last = total; DIGIT(last - 1) == '0'; last--)
		;
	if (neg)
		sb_addc(out, '-');
	sb_grow(out, last - first + 24);
	for (k = first; k < last; k++)
		out->buf[out->len++] = DIGIT(k);
#undef DIGIT
	{
		long long x = e10 - (long long)flen + (long long)(total - last);
		unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x :
		    (unsigned long long)x;
		char buf[24], *q = buf + sizeof buf;

		do
			*--q = (char)('0' + u % 10);
		while (u /= 10);
		if (x < 0)
			*--q = '-';
		*--q = 'e';
		sb_add(out, q, (size_t)(buf + sizeof buf - q));
	}
	return 0;
}

/* Equal under form(): the same bytes, or the same form. */
static int
number_equal_by(int (*form)(struct sb *, const char *, size_t),
    const char *a, size_t an, const char *b, size_t bn)
{
	struct sb x, y;
	int eq;

	if (an == bn && memcmp(a, b, an) == 0)
		return 1;
	sb_init(&x, 32);
	sb_init(&y, 32);
	eq = form(&x, a, an) == 0 && form(&y, b, bn) == 0 &&
	    x.len == y.len && memcmp(x.buf, y.buf, x.len) == 0;
	sb_release(&x);
	sb_release(&y);
	return eq;
}

int
json_number_equal(const char *a, size_t an, const char *b, size_t bn)
{
	return number_equal_by(json_number_canon, a, an, b, bn);
}

/*
 * True when the canonical form c (DIGITS, or DIGITS e EXP: the value is
 * DIGITS * 10^EXP, DIGITS without trailing zeros) is also the form of the
 * double strtod reads it as, so that neither strtod nor the search for the
 * shortest digits is needed.  It is when DIGITS has at most 15 digits and
 * the value is either whole and below 10^15 (a double holds it exactly) or
 * not whole and within 10^-290 .. 10^290 (no subnormal, no overflow).  A
 * double has 15.95 significant digits, so two decimals of at most 15 digits
 * are never read as one double: the shortest digits that read back as the
 * double are DIGITS, and the double is not whole, as 10^EXP is more than
 * its spacing.
 */
static int
double_is_literal(const char *c, size_t n)
{
	const char *e = memchr(c, 'e', n), *p;
	size_t digits;
	long long x = 0;
	int neg = 0;

	if (*c == '-') {
		c++;
		n--;
	}
	digits = e ? (size_t)(e - c) : n;
	if (digits > 15)
		return 0;
	if (e) {
		p = e + 1;
		if (*p == '-') {
			neg = 1;
			p++;
		}
		for (; p < c + n; p++) {
			x = x * 10 + (*p - '0');
			if (x > 1000)
				return 0;
		}
		if (neg)
			x = -x;
	}
	if (x >= 0)
		return (long long)digits + x <= 15;
	return x + (long long)digits - 1 >= -290;
}

/*
 * The comparison form (json.h): an integer literal, or a number beyond a
 * double's range, by its exact decimal value; any other by its double: the
 * double's exact value when it is whole (so 1.0 is 1 and 1e22 is
 * 10000000000000000000000), else the shortest decimal that reads back as
 * it, which is not whole and so never meets an integer's form.
 */
/*
 * json_number_key of a literal without an exponent, in one pass over it,
 * where the key is the literal's canonical form: an integer, or a fraction
 * double_is_literal takes.  1 when written, 0 when not (out unchanged): the
 * caller takes the long way.
 */
static int
plain_key(struct sb *out, const char *lit, size_t n)
{
	const char *p = lit, *e = lit + n, *dot = NULL, *first = NULL;
	const char *last = NULL, *units;
	char xb[24], *q = xb + sizeof xb;
	size_t nd;
	long long x;
	unsigned long long u;

	if (p < e && *p == '-')
		p++;
	for (; p < e; p++) {
		if (*p == '.') {
			if (dot)
				return 0;
			dot = p;
		} else if (*p >= '1' && *p <= '9') {
			if (!first)
				first = p;
			last = p;
		} else if (*p != '0') {
			return 0;	/* an exponent, or not a number */
		}
	}
	if (!first) {
		sb_addc(out, '0');
		return 1;
	}
	/* The value is DIGITS (first .. last, the point left out) * 10^x. */
	units = dot ? dot - 1 : e - 1;
	x = dot && last > dot ? -(long long)(last - dot) :
	    (long long)(units - last);
	nd = (size_t)(last - first) + 1 - (dot && first < dot && dot < last);
	if (dot && (nd > 15 ||
	    (x >= 0 ? (long long)nd + x > 15 : x + (long long)nd - 1 < -290)))
		return 0;
	sb_grow(out, (size_t)(last - first) + 26);
	if (*lit == '-')
		out->buf[out->len++] = '-';
	if (dot && first < dot && dot < last) {
		memcpy(out->buf + out->len, first, (size_t)(dot - first));
		out->len += (size_t)(dot - first);
		memcpy(out->buf + out->len, dot + 1, (size_t)(last - dot));
		out->len += (size_t)(last - dot);
	} else {
		memcpy(out->buf + out->len, first, (size_t)(last - first) + 1);
		out->len += (size_t)(last - first) + 1;
	}
	u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
	do
		*--q = (char)('0' + u % 10);
	while (u /= 10);
	if (x < 0)
		*--q = '-';
	*--q = 'e';
	sb_add(out, q, (size_t)(xb + sizeof xb - q));
	return 1;
}

int
json_number_key(struct sb *out, const char *lit, size_t n)
{
	struct json v = { JSON_NUMBER, n, { lit } };
	char buf[400];
	double d;
	size_t mark = out->len;

	if (plain_key(out, lit, n))
		return 0;
	if (json_number_is_integer(lit, n))
		return json_number_canon(out, lit, n);
	if (json_number_canon(out, lit, n) < 0)
		return -1;
	if (double_is_literal(out->buf + mark, out->len - mark))
		return 0;
	out->len = mark;
	d = json_number_double(&v);
	if (isinf(d) || isnan(d))
		return json_number_canon(out, lit, n);
	if (d == trunc(d))
		snprintf(buf, sizeof buf, "%.0f", d);
	else if (json_format_double(buf, sizeof buf, d) < 0)
		return json_number_canon(out, lit, n);
	return json_number_canon(out, buf, strlen(buf));
}

int
json_number_same(const char *a, size_t an, const char *b, size_t bn)
{
	return number_equal_by(json_number_key, a, an, b, bn);
}

double
json_number_double(const struct json *v)
{
	char buf[128];

	if (v->len < sizeof buf) {
		memcpy(buf, v->u.s, v->len);
		buf[v->len] = '\0';
		return strtod(buf, NULL);
	} else {
		char *s = xmemdup(v->u.s, v->len);
		double d = strtod(s, NULL);

		free(s);
		return d;
	}
}

int
json_number_is_integer(const char *lit, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lit[i] == '.' || lit[i] == 'e' || lit[i] == 'E')
			return 0;
	return n > 0;
}

struct json
json_string(struct arena *a, const char *s, size_t n)
{
	struct json v;

	v.type = JSON_STRING;
	v.len = n;
	v.u.s = arena_memdup(a, s, n);
	return v;
}

struct json
json_number_lit(struct arena *a, const char *lit, size_t n)
{
	struct json v;

	v.type = JSON_NUMBER;
	v.len = n;
	v.u.s = arena_memdup(a, lit, n);
	return v;
}

int
json_format_double(char *buf, size_t size, double d)
{
	char sci[40], out[40], digits[20], *o = out;
	const char *m;
	int prec, nd = 0, x, i;

	if (!isfinite(d))
		return -1;
	/* The fewest significant digits that read back as d. */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(sci, sizeof sci, "%.*e", prec - 1, d);
		if (strtod(sci, NULL) == d)
			break;
	}
	/* sci is "[-]D[.DDD]e[+-]XX": take its digits and exponent apart. */
	m = sci;
	if (*m == '-') {
		*o++ = '-';
		m++;
	}
	for (; *m != 'e'; m++)
		if (*m != '.')
			digits[nd++] = *m;
	x = (int)strtol(m + 1, NULL, 10);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (x >= -4 && x < 16) {
		/* Plain: 30.0, -120.5, 0.0001, at least one digit after the point. */
		if (x < 0) {
			*o++ = '0';
			*o++ = '.';
			for (i = -1; i > x; i--)
				*o++ = '0';
			for (i = 0; i < nd; i++)
				*o++ = digits[i];
		} else {
			for (i = 0; i <= x; i++)
				*o++ = i < nd ? digits[i] : '0';
			*o++ = '.';
			if (nd <= x + 1)
				*o++ = '0';
			for (i = x + 1; i < nd; i++)
				*o++ = digits[i];
		}
		*o = '\0';
	} else {
		/* Scientific, as printf and jq write it: 1e+300, 2.5e-07. */
		*o++ = digits[0];
		if (nd > 1) {
			*o++ = '.';
			for (i = 1; i < nd; i++)
				*o++ = digits[i];
		}
		snprintf(o, sizeof out - (size_t)(o - out), "e%c%02d",
		    x < 0 ? '-' : '+', x < 0 ? -x : x);
	}
	if (strlen(out) >= size)
		return -1;
	memcpy(buf, out, strlen(out) + 1);
	return 0;
}
