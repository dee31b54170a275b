/*
 * fuzz/json.c - the JSON parser and writers (lib/json.h).
 *
 * Any bytes are parsed; a value that parses is written and parsed again.
 * Properties, each an abort() when broken:
 * - what json_write() writes parses, to a value of the same shape whose
 *   strings and member names are the same bytes and whose numbers are the
 *   input's literals byte for byte, members in input order;
 * - writing is idempotent, compact or JSON_SORTED;
 * - json_getn() finds every member;
 * - a number's canonical form is a number literal, equal to it, and its own
 *   canonical form; json_number_equal() is reflexive and symmetric;
 * - json_format_double() of a finite value reads back as that double, sign
 *   of zero included, and is a JSON number with a point or an exponent.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/json.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static struct sb canon1, canon2;
static const struct json *prevnum;

static void
check_number(const struct json *v)
{
	struct arena a;
	struct json n;
	char buf[64];
	double d;

	CHECK(json_number_equal(v->u.s, v->len, v->u.s, v->len));
	sb_reset(&canon1);
	if (json_number_canon(&canon1, v->u.s, v->len) == 0) {
		arena_init(&a);
		CHECK(json_parse(&a, canon1.buf, canon1.len, &n, NULL) == 0);
		CHECK(n.type == JSON_NUMBER && n.len == canon1.len);
		arena_release(&a);
		sb_reset(&canon2);
		CHECK(json_number_canon(&canon2, canon1.buf, canon1.len) == 0);
		CHECK(canon1.len == canon2.len &&
		    memcmp(canon1.buf, canon2.buf, canon1.len) == 0);
		CHECK(json_number_equal(v->u.s, v->len, canon1.buf, canon1.len));
	}
	if (prevnum)
		CHECK(json_number_equal(v->u.s, v->len, prevnum->u.s, prevnum->len) ==
		    json_number_equal(prevnum->u.s, prevnum->len, v->u.s, v->len));
	prevnum = v;
	d = json_number_double(v);
	if (isfinite(d)) {
		CHECK(json_format_double(buf, sizeof buf, d) == 0);
		CHECK(strtod(buf, NULL) == d);
		CHECK(signbit(strtod(buf, NULL)) == signbit(d));
		CHECK(strpbrk(buf, ".e") != NULL);
		arena_init(&a);
		CHECK(json_parse(&a, buf, strlen(buf), &n, NULL) == 0);
		CHECK(n.type == JSON_NUMBER);
		arena_release(&a);
	}
}

/* a (parsed from the input) and b (from what was written) are the same. */
static void
same(const struct json *a, const struct json *b)
{
	size_t i;

	CHECK(a->type == b->type && a->len == b->len);
	switch (a->type) {
	case JSON_NUMBER:
		check_number(a);
		/* FALLTHROUGH */
	case JSON_STRING:
		CHECK(memcmp(a->u.s, b->u.s, a->len) == 0);
		break;
	case JSON_ARRAY:
		for (i = 0; i < a->len; i++)
			same(&a->u.items[i], &b->u.items[i]);
		break;
	case JSON_OBJECT:
		for (i = 0; i < a->len; i++) {
			const struct json_member *m = &a->u.members[i];
			const struct json_member *o = &b->u.members[i];

			CHECK(m->namelen == o->namelen &&
			    memcmp(m->name, o->name, m->namelen) == 0);
			CHECK(json_getn(a, m->name, m->namelen) == &m->value);
			same(&m->value, &o->value);
		}
		break;
	default:
		break;
	}
}

/* Write v with flags, parse that, and write it again: the same bytes. */
static void
roundtrip(struct arena *a, const struct json *v, int flags, struct sb *w1)
{
	struct json v2;
	struct sb w2;

	sb_reset(w1);
	json_write(w1, v, flags);
	CHECK(json_parse(a, w1->buf, w1->len, &v2, NULL) == 0);
	if (!flags)
		same(v, &v2);
	sb_init(&w2, w1->len + 1);
	json_write(&w2, &v2, flags);
	CHECK(w1->len == w2.len && memcmp(w1->buf, w2.buf, w2.len) == 0);
	sb_release(&w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct json v;
	struct sb w, ws;
	char *in;

	if (!canon1.buf) {
		sb_init(&canon1, 64);
		sb_init(&canon2, 64);
	}
	/* A copy of exactly size bytes, so ASan sees any read past the end. */
	in = malloc(size ? size : 1);
	memcpy(in, data, size);
	/* A fresh arena, as each store and program starts with. */
	arena_init(&a);
	prevnum = NULL;
	if (json_parse(&a, in, size, &v, NULL) == 0) {
		sb_init(&w, size + 16);
		sb_init(&ws, size + 16);
		roundtrip(&a, &v, 0, &w);
		roundtrip(&a, &v, JSON_SORTED, &ws);
		sb_release(&w);
		sb_release(&ws);
	}
	arena_release(&a);
	free(in);
	return 0;
}
