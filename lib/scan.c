/*
 * scan.c - a record line checked where it lies (scan.h).
 *
 * Each function takes the bytes at s->p and either moves past a value it is
 * sure of or returns -1: not "invalid", only "not sure", which sends the
 * line to the exact parser.  What it checks follows json.c (the grammar,
 * UTF-8, duplicate member names, white space) and record.c's canon_tagged
 * (which tagged values the canonical form accepts).
 */
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "scan.h"

struct scan {
	const unsigned char *p, *e;
	int depth;
	struct sb *out;		/* the canonical form, as it is made */
	struct sb *tmp;		/* an object's members, while sorted */
};

/* What a value was, as far as a tag's payload cares. */
enum {
	SV_OTHER,	/* a boolean, an array, a tagged object */
	SV_NULL,
	SV_EMPTY,	/* "" */
	SV_STRING,	/* a string of at least one byte */
	SV_NUMBER,
	SV_OBJECT,
	SV_LATLNG,	/* an object with numbers "lat" and "lng": a $loc's */
};

static int value(struct scan *s);

/* Append n bytes at p to the canonical form (an inline sb_add). */
static inline void
put(struct scan *s, const void *p, size_t n)
{
	struct sb *out = s->out;

	if (out->len + n >= out->cap)
		sb_grow(out, n);
	memcpy(out->buf + out->len, p, n);
	out->buf[out->len += n] = '\0';
}

static inline void
skipws(struct scan *s)
{
	/* Compact JSON has none: one compare says so. */
	while (s->p < s->e && *s->p <= ' ' &&
	    (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Printable ASCII other than '"' and '\\': a byte that ends no look. */
static const unsigned char plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Where the run of plain bytes at q ends (e at the most). */
static inline const unsigned char *
plain_run(const unsigned char *q, const unsigned char *e)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    defined(__GNUC__)
	/*
	 * Eight bytes at a time: json_word_special flags no byte below the
	 * first that needs a look, so the lowest flag is that byte.
	 */
	uint64_t x, m;

	for (; e - q >= 8; q += 8) {
		x = json_load_word(q);
		if ((m = (json_word_special(x) | x) & JSON_HIGHS))
			return q + (__builtin_ctzll(m) >> 3);
	}
#endif
	while (q < e && plain[*q])
		q++;
	return q;
}

/* A string without escapes at s->p (a '"'): its bytes, or -1. */
static int
string(struct scan *s, const char **str, size_t *n)
{
	const unsigned char *q = s->p + 1, *e = s->e, *start = q;
	size_t k;

	for (;;) {
		if ((q = plain_run(q, e)) >= e)
			return -1;
		if (*q == '"')
			break;
		if (*q < 0x80 || !(k = json_utf8_seq(q, e)))
			return -1;
		q += k;
	}
	*str = (const char *)start;
	*n = (size_t)(q - start);
	s->p = q + 1;
	return 0;
}

static int
digit(int c)
{
	return c >= '0' && c <= '9';
}

/* A number without an exponent (json_number_canon may refuse one). */
static int
number(struct scan *s)
{
	const unsigned char *q = s->p, *e = s->e;
	int frac = 0;

	if (q < e && *q == '-')
		q++;
	if (q >= e || !digit(*q))
		return -1;
	if (*q == '0')
		q++;
	else
		while (q < e && digit(*q))
			q++;
	if (q < e && *q == '.') {
		if (++q >= e || !digit(*q))
			return -1;
		while (q < e && digit(*q))
			q++;
		frac = 1;
	}
	if (q < e && (*q == 'e' || *q == 'E'))
		return -1;
	if (!frac && q[-1] != '0') {
		/* An integer with no trailing zero: json_number_key's form. */
		put(s, s->p, (size_t)(q - s->p));
		put(s, "e0", 2);
	} else {
		/* Never fails without an exponent. */
		(void)json_number_key(s->out, (const char *)s->p,
		    (size_t)(q - s->p));
	}
	s->p = q;
	return SV_NUMBER;
}

static int
literal(struct scan *s, const char *word, size_t n, int kind)
{
	if ((size_t)(s->e - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	put(s, word, n);
	s->p += n;
	return kind;
}

static int
same(const char *name, size_t n, const char *want, size_t wn)
{
	return n == wn && memcmp(name, want, n) == 0;
}

/* Whether name (n bytes) is the literal want. */
#define named(name, n, want) same(name, n, want, sizeof want - 1)

/* Whether a member so named makes its object a tagged value (tag_of). */
static int
is_tag(const char *name, size_t n)
{
	return n >= 3 && name[0] == '$' && (named(name, n, "$ref") ||
	    named(name, n, "$loc") || named(name, n, "$ts") ||
	    named(name, n, "$int") || named(name, n, "$bytes") ||
	    named(name, n, "$asset"));
}

/* The canonical order of names: by bytes, a prefix first (json.h). */
static inline int
name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c;

	/* Most names differ in their first byte. */
	if (an && bn && *a != *b)
		return (unsigned char)*a - (unsigned char)*b;
	c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

/*
 * An object, written in canonical form: members sorted by name; at the
 * top of the fields (fields set), a null member left out, as an absent
 * one.  A tagged one (a fields object is never one) is taken only as
 * {"$ref":"x",...}, the first tag a $ref to a non-empty string, written
 * {"$ref":"x"}, or as {"$loc":{...}} alone with numbers "lat" and "lng".
 */
static int
object(struct scan *s, int fields)
{
	struct member {
		const char *s;
		size_t n;
		int v;
		size_t at, end;		/* its "name":value in s->out */
	} m[SCAN_MEMBERS], x;
	struct sb *out = s->out;
	size_t n = 0, kept = 0, i, j, start = out->len, mark;
	uint64_t bits = 0, bit;
	int lat = 0, lng = 0, alike = 0, dollar = 0, sorted = 1;

	if (++s->depth > SCAN_DEPTH)
		return -1;
	put(s, "{", 1);
	s->p++;
	skipws(s);
	if (s->p < s->e && *s->p == '}') {
		s->p++;
		goto done;
	}
	for (;;) {
		if (n == SCAN_MEMBERS || s->p >= s->e || *s->p != '"' ||
		    string(s, &m[n].s, &m[n].n) < 0)
			return -1;
		skipws(s);
		if (s->p >= s->e || *s->p != ':')
			return -1;
		s->p++;
		skipws(s);
		mark = out->len;
		if (kept)
			put(s, ",", 1);
		m[n].at = out->len;
		put(s, m[n].s - 1, m[n].n + 2);
		put(s, ":", 1);
		if ((m[n].v = value(s)) < 0)
			return -1;
		m[n].end = out->len;
		/*
		 * Names told apart by length, first and last byte need no
		 * compare for duplicates; the others are compared below.
		 */
		if (m[n].n) {
			bit = (uint64_t)1 << ((m[n].n * 7 +
			    (unsigned char)m[n].s[0] +
			    (unsigned char)m[n].s[m[n].n - 1] * 3) & 63);
			dollar |= m[n].s[0] == '$';
		} else {
			bit = 1;
		}
		alike |= (bits & bit) != 0;
		bits |= bit;
		if (m[n].v == SV_NUMBER) {
			lat |= named(m[n].s, m[n].n, "lat");
			lng |= named(m[n].s, m[n].n, "lng");
		}
		if (n && sorted && name_cmp(m[n - 1].s, m[n - 1].n, m[n].s,
		    m[n].n) > 0)
			sorted = 0;
		if (fields && m[n].v == SV_NULL) {
			/* Checked for duplicates, then left out. */
			out->len = mark;
			m[n].at = m[n].end = 0;
		} else {
			kept++;
		}
		n++;
		skipws(s);
		if (s->p >= s->e)
			return -1;
		if (*s->p == ',') {
			s->p++;
			skipws(s);
			continue;
		}
		if (*s->p != '}')
			return -1;
		s->p++;
		break;
	}
done:
	s->depth--;
	for (i = 0; alike && i < n; i++)
		for (j = 0; j < i; j++)
			if (m[i].n == m[j].n &&
			    memcmp(m[i].s, m[j].s, m[i].n) == 0)
				return -1;
	for (i = 0; dollar && !fields && i < n; i++) {
		if (!is_tag(m[i].s, m[i].n))
			continue;
		if (named(m[i].s, m[i].n, "$loc")) {
			if (n != 1 || m[i].v != SV_LATLNG)
				return -1;
			sb_addc(out, '}');
			return SV_OTHER;
		}
		if (!named(m[i].s, m[i].n, "$ref") || m[i].v != SV_STRING)
			return -1;
		/* The reference alone. */
		memmove(out->buf + start + 1, out->buf + m[i].at,
		    m[i].end - m[i].at);
		out->len = start + 1 + (m[i].end - m[i].at);
		sb_addc(out, '}');
		return SV_OTHER;
	}
	if (!sorted) {
		/* Insertion sort (a few members), then written again. */
		for (i = 1; i < n; i++) {
			x = m[i];
			for (j = i; j > 0 && name_cmp(m[j - 1].s, m[j - 1].n,
			    x.s, x.n) > 0; j--)
				m[j] = m[j - 1];
			m[j] = x;
		}
		sb_reset(s->tmp);
		sb_add(s->tmp, out->buf + start, out->len - start);
		out->len = start + 1;
		for (i = 0, j = 0; i < n; i++) {
			if (m[i].at == m[i].end)
				continue;
			if (j++)
				sb_addc(out, ',');
			sb_add(out, s->tmp->buf + (m[i].at - start),
			    m[i].end - m[i].at);
		}
	}
	sb_addc(out, '}');
	return lat && lng ? SV_LATLNG : SV_OBJECT;
}

static int
array(struct scan *s)
{
	if (++s->depth > SCAN_DEPTH)
		return -1;
	put(s, "[", 1);
	s->p++;
	skipws(s);
	if (s->p < s->e && *s->p == ']') {
		s->p++;
		goto done;
	}
	for (;;) {
		if (value(s) < 0)
			return -1;
		skipws(s);
		if (s->p >= s->e)
			return -1;
		if (*s->p == ',') {
			put(s, ",", 1);
			s->p++;
			skipws(s);
			continue;
		}
		if (*s->p != ']')
			return -1;
		s->p++;
		break;
	}
done:
	put(s, "]", 1);
	s->depth--;
	return SV_OTHER;
}

static int
value(struct scan *s)
{
	const char *str;
	size_t n;

	if (s->p >= s->e)
		return -1;
	switch (*s->p) {
	case '{':
		return object(s, 0);
	case '[':
		return array(s);
	case '"':
		if (string(s, &str, &n) < 0)
			return -1;
		/* Without escapes, a string is written as it was. */
		put(s, str - 1, n + 2);
		return n ? SV_STRING : SV_EMPTY;
	case 't':
		return literal(s, "true", 4, SV_OTHER);
	case 'f':
		return literal(s, "false", 5, SV_OTHER);
	case 'n':
		return literal(s, "null", 4, SV_NULL);
	default:
		return number(s);
	}
}

/* The members of a record line scan_record knows, as bits of "seen". */
enum { M_KIND, M_TYPE, M_KEY, M_REV, M_MTIME, M_FIELDS };

static int
member(const char *name, size_t n)
{
	if (named(name, n, "kind"))
		return M_KIND;
	if (named(name, n, "type"))
		return M_TYPE;
	if (named(name, n, "key"))
		return M_KEY;
	if (named(name, n, "rev"))
		return M_REV;
	if (named(name, n, "mtime"))
		return M_MTIME;
	if (named(name, n, "fields"))
		return M_FIELDS;
	return -1;
}

/* scan_record's line, from s->p: 1 when sure of it, else 0. */
static int
record_line(struct scan *sp, struct record *rec, struct scan_out *o)
{
	struct scan s = *sp;
	const unsigned char *at;
	const char *name, *str;
	size_t n, sn;
	unsigned seen = 0;
	int m;

	memset(rec, 0, sizeof *rec);
	skipws(&s);
	if (s.p >= s.e || *s.p != '{')
		return 0;
	s.p++;
	skipws(&s);
	for (;;) {
		if (s.p >= s.e || *s.p != '"' || string(&s, &name, &n) < 0)
			return 0;
		if ((m = member(name, n)) < 0 || (seen & 1u << m))
			return 0;
		seen |= 1u << m;
		skipws(&s);
		if (s.p >= s.e || *s.p != ':')
			return 0;
		s.p++;
		skipws(&s);
		if (s.p >= s.e)
			return 0;
		at = s.p;
		if (m == M_FIELDS) {
			if (*s.p != '{' || object(&s, 1) < 0)
				return 0;
			o->fields = (const char *)at;
			o->fieldslen = (size_t)(s.p - at);
		} else {
			if (*s.p != '"' || string(&s, &str, &sn) < 0)
				return 0;
			switch (m) {
			case M_KIND:
				if (!named(str, sn, "record"))
					return 0;
				break;
			case M_TYPE:
				rec->type = str;
				rec->typelen = sn;
				break;
			case M_KEY:
				rec->key = str;
				rec->keylen = sn;
				break;
			case M_REV:
				rec->rev = str;
				rec->revlen = sn;
				break;
			case M_MTIME:
				rec->mtime = str;
				rec->mtimelen = sn;
				break;
			}
		}
		skipws(&s);
		if (s.p >= s.e)
			return 0;
		if (*s.p == ',') {
			s.p++;
			skipws(&s);
			continue;
		}
		if (*s.p != '}')
			return 0;
		s.p++;
		break;
	}
	skipws(&s);
	if (s.p != s.e)
		return 0;
	/* "kind", "type", "key" and "fields" present; type and key not empty. */
	if ((seen & (1u << M_KIND | 1u << M_TYPE | 1u << M_KEY |
	    1u << M_FIELDS)) != (1u << M_KIND | 1u << M_TYPE | 1u << M_KEY |
	    1u << M_FIELDS) || !rec->typelen || !rec->keylen)
		return 0;
	return 1;
}

void
scan_init(struct scan_out *o)
{
	memset(o, 0, sizeof *o);
	sb_init(&o->canon, 1024);
	sb_init(&o->tmp, 1024);
}

void
scan_release(struct scan_out *o)
{
	sb_release(&o->canon);
	sb_release(&o->tmp);
}

int
scan_record(const char *line, size_t len, struct record *rec,
    struct scan_out *o)
{
	struct scan s;

	s.p = (const unsigned char *)line;
	s.e = s.p + len;
	s.depth = 0;
	s.out = &o->canon;
	s.tmp = &o->tmp;
	sb_reset(s.out);
	return record_line(&s, rec, o);
}
