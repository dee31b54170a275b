/*
 * json.h - an exact JSON value: parse, compare, write.
 *
 * recdelta does not parse with libjq: jq 1.6 holds every number as a double,
 * so 9007199254740993 would come back as ...992.  Here a number keeps the
 * literal text it was written with, and is written back byte for byte; two
 * numbers are equal when they denote the same decimal value (1 = 1.0 = 1e0),
 * whatever their size.  Strings are decoded to UTF-8 bytes with an explicit
 * length (they may hold NUL) and are always valid UTF-8: the parser refuses
 * invalid UTF-8, lone surrogates, control characters and duplicate member
 * names, so a parsed value is one every store can carry.
 *
 * Memory: every value lives in an arena owned by the caller and may borrow
 * bytes from the input buffer (a string without escapes, a number literal).
 * A value is valid while both its arena and its input are; nothing in a value
 * is freed on its own.
 */
#ifndef RD_JSON_H
#define RD_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

/*
 * A bump allocator: allocations are freed together by arena_reset.  It also
 * keeps the parser's scratch stacks, so that parsing line after line into one
 * arena allocates nothing once warm; arena_release frees everything.
 */
struct arena_chunk;
struct json;
struct json_member;
struct arena {
	struct arena_chunk *head;
	char *p, *end;
	struct json *vals;
	size_t capvals;
	struct json_member *mems;
	size_t capmems;
};

void arena_init(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);
char *arena_memdup(struct arena *a, const void *p, size_t n);
void arena_reset(struct arena *a);	/* free all, keep the first chunk */
void arena_release(struct arena *a);

enum json_type {
	JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING,
	JSON_ARRAY, JSON_OBJECT
};

struct json_member;

struct json {
	enum json_type type;
	size_t len;	/* bytes of a string or number literal; items, members */
	union {
		const char *s;			/* string bytes, number literal */
		struct json *items;		/* array */
		struct json_member *members;	/* object, in input order */
	} u;
};

struct json_member {
	const char *name;
	size_t namelen;
	struct json value;
};

#define JSON_MAX_DEPTH 256

/*
 * Parse exactly one JSON value filling buf[0..len) (white space around it
 * allowed).  Returns 0, or -1 with a message (and the byte offset in *errpos)
 * through rd_seterr(RD_EXIT_DATA, ...).
 */
int json_parse(struct arena *a, const char *buf, size_t len, struct json *out,
    size_t *errpos);

/* Object member lookup by name; NULL if absent. */
const struct json *json_get(const struct json *obj, const char *name);
const struct json *json_getn(const struct json *obj, const char *name, size_t n);

/*
 * qsort comparator for an array of pointers to members: by name bytes, a
 * shorter name first when one is a prefix of the other (canonical order).
 */
int json_member_ptrcmp(const void *a, const void *b);

/* Writers append compact JSON; JSON_SORTED orders members by name bytes. */
enum { JSON_SORTED = 1 };
void json_write(struct sb *out, const struct json *v, int flags);
void json_write_string(struct sb *out, const char *s, size_t n);

/*
 * Canonical form of a number literal: "[-]DIGITSeEXP" with no leading or
 * trailing zeros in DIGITS ("0" for zero, whose sign is dropped), so two
 * literals are equal exactly when their canonical forms are.  Returns -1 if
 * the exponent is out of range.
 */
int json_number_canon(struct sb *out, const char *lit, size_t n);
int json_number_equal(const char *a, size_t an, const char *b, size_t bn);
double json_number_double(const struct json *v);

/*
 * How records compare numbers (record.h), as JSON tools read them: an
 * integer literal (no fraction, no exponent) by its exact value at any size,
 * so 9007199254740993 and 9007199254740992 differ; any other literal by the
 * IEEE-754 double strtod reads it as, so 25.10000000000000142 equals 25.1;
 * the two kinds are equal when the integer is exactly that double's value
 * (1 = 1.0 = 1e0, 9007199254740992 = 9007199254740993.0).  A literal beyond
 * a double's range (1e400) compares by its exact decimal value.
 * json_number_key appends a form that two numbers share exactly when they
 * are equal so (a json_number_canon form, which record_hash digests), -1
 * with a message when the exponent is out of range; json_number_same is
 * the equality.  The literals themselves are never changed.
 */
int json_number_key(struct sb *out, const char *lit, size_t n);
int json_number_same(const char *a, size_t an, const char *b, size_t bn);

/* True when lit is an integer literal (no fraction, no exponent). */
int json_number_is_integer(const char *lit, size_t n);

/* Constructors for values built in an arena. */
struct json json_string(struct arena *a, const char *s, size_t n);
struct json json_number_lit(struct arena *a, const char *lit, size_t n);

/*
 * A double as a JSON number that reads back as the same double and is
 * recognisably one, as Python's repr and jq write it: the fewest significant
 * digits that round-trip, plain with at least one digit after the point when
 * the decimal exponent is within -4..15 (30.0, -120.5, 0.1, 0.0001, -0.0),
 * else in scientific notation with a signed exponent of at least two digits
 * (1e+300, 2.5e-07, 1e+16).  -1 for NaN or an infinity, or when the text and
 * its NUL do not fit in size bytes (32 always do).
 */
int json_format_double(char *buf, size_t size, double d);

/* Length of the valid UTF-8 sequence at q (before e), or 0. */
size_t json_utf8_seq(const unsigned char *q, const unsigned char *e);

/*
 * Eight bytes at a time: the high bit of each byte of x that is '"', '\\'
 * or below 0x20 is set in the result (and maybe some above it: the answer
 * to "any?" is exact, not which).  A string is read or written by words
 * until one holds a byte that needs a look of its own.
 */
#define JSON_ONES UINT64_C(0x0101010101010101)
#define JSON_HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t
json_word_special(uint64_t x)
{
	uint64_t q = x ^ (JSON_ONES * '"'), b = x ^ (JSON_ONES * '\\');

	return (((x - JSON_ONES * 0x20) & ~x) | ((q - JSON_ONES) & ~q) |
	    ((b - JSON_ONES) & ~b)) & JSON_HIGHS;
}

static inline uint64_t
json_load_word(const void *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof x);
	return x;
}

#endif
