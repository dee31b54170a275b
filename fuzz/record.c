/*
 * fuzz/record.c - record lines read as recdelta-diff reads them, with its
 * rules, hash and comparison (lib/record.h, lib/stream.h, lib/store.h).
 *
 * Input: an optional rules line "#WORD WORD..." where WORD is FIELD (ignore
 * it) or FIELD=EPS (a tolerance), either may be prefixed "TYPE/"; then
 * stream lines, read through the ndjson: store from a memory file.  The first
 * three records are kept (as their line text, hashed as diff hashes them)
 * and every ordered pair is compared under the first one's rules, as diff
 * compares a local record with its remote one.  Properties, each an abort()
 * when broken:
 * - equal hashes imply record_compare() finds nothing that differs;
 * - the comparison is symmetric: cmp(a,b) and cmp(b,a) name the same fields;
 * - a record equals itself;
 * - a record written by stream_write_record() reads back with the same hash;
 * - a line scan_record() (lib/scan.h) takes, the parser reads as a record
 *   with the same type, key, rev and mtime, and fields whose canonical form
 *   is the one the scanner wrote, and the one the fields' text has.
 */
#define _GNU_SOURCE	/* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/record.h"
#include "../lib/scan.h"
#include "../lib/store.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define NKEEP 3

struct kept {
	char *line;
	size_t len;
	int hashed;		/* 0: record_hash refused it */
	unsigned char hash[RD_HASH_LEN];
};

struct ctx {
	struct rules *rules;
	struct sb scratch;
	struct kept k[NKEEP];
	size_t n;
};

static int memfd = -1;
static char path[64];
/* One arena for every check, reset before each: a fresh one costs an mmap. */
static struct arena a;
/* And one scanner's output. */
static struct scan_out so;

/* Like recdelta-diff's side_put: hash the record under its type's rules. */
static int
put(void *p, const struct rline *l)
{
	struct ctx *c = p;
	struct kept *k;
	struct ruleview rv;

	if (!l->rec || l->rec->deleted || c->n == NKEEP)
		return 0;
	k = &c->k[c->n++];
	k->line = xmemdup(l->text, l->len);
	k->len = l->len;
	rv = rules_view(c->rules, l->rec->type, l->rec->typelen);
	k->hashed = record_hash(&rv, l->rec->fields, k->hash, &c->scratch) == 0;
	return 0;
}

static void
parse(struct arena *a, const struct kept *k, struct json *obj, struct record *rec)
{
	const char *kind;
	size_t kindlen;

	CHECK(stream_parse_line(a, k->line, k->len, obj, rec, &kind, &kindlen) == 1);
}

static size_t
compare(const struct ruleview *rv, const struct record *a,
    const struct record *b, struct sb *changed)
{
	sb_reset(changed);
	return record_compare(rv, a->fields, b->fields, changed);
}

static void
check_pair(struct ctx *c, const struct kept *ka, const struct kept *kb)
{
	struct json oa, ob;
	struct record ra, rb;
	struct ruleview rv;
	struct sb ab, ba;
	unsigned char ha[RD_HASH_LEN], hb[RD_HASH_LEN];
	unsigned char da[RD_DIGEST_LEN], db[RD_DIGEST_LEN];
	size_t nab, nba;
	int hashed, digested;

	arena_reset(&a);
	sb_init(&ab, 64);
	sb_init(&ba, 64);
	parse(&a, ka, &oa, &ra);
	parse(&a, kb, &ob, &rb);
	rv = rules_view(c->rules, ra.type, ra.typelen);
	hashed = record_hash(&rv, ra.fields, ha, &c->scratch) == 0 &&
	    record_hash(&rv, rb.fields, hb, &c->scratch) == 0;
	digested = record_digest(&rv, ra.fields, da, &c->scratch) == 0 &&
	    record_digest(&rv, rb.fields, db, &c->scratch) == 0;
	/* The index's digest and the hash read the same canonical form. */
	CHECK(digested == hashed);
	if (hashed)
		CHECK((memcmp(ha, hb, sizeof ha) == 0) ==
		    (memcmp(da, db, sizeof da) == 0));
	nab = compare(&rv, &ra, &rb, &ab);
	nba = compare(&rv, &rb, &ra, &ba);
	CHECK(nab == nba && ab.len == ba.len && memcmp(ab.buf, ba.buf, ab.len) == 0);
	/* diff only compares records it could hash. */
	if (hashed && memcmp(ha, hb, sizeof ha) == 0)
		CHECK(nab == 0);
	if (digested && memcmp(da, db, sizeof da) == 0)
		CHECK(nab == 0);
	if (hashed && ka == kb)
		CHECK(nab == 0);
	sb_release(&ab);
	sb_release(&ba);
}

/* A record written out as push and diff write it hashes the same. */
static void
check_rewrite(struct ctx *c, const struct kept *k)
{
	struct json obj;
	struct record rec;
	struct ruleview rv;
	struct kept w;
	struct sb line;
	unsigned char h[RD_HASH_LEN];

	arena_reset(&a);
	sb_init(&line, k->len + 64);
	parse(&a, k, &obj, &rec);
	stream_write_record(&line, &rec);
	w.line = line.buf;
	w.len = line.len;
	parse(&a, &w, &obj, &rec);
	rv = rules_view(c->rules, rec.type, rec.typelen);
	CHECK(record_hash(&rv, rec.fields, h, &c->scratch) == 0);
	CHECK(memcmp(h, k->hash, sizeof h) == 0);
	sb_release(&line);
}

static int
same_str(const char *a, size_t an, const char *b, size_t bn)
{
	if (!a || !b)
		return !a && !b;
	return an == bn && memcmp(a, b, an) == 0;
}

/* A line the scanner takes reads the same through the parser. */
static void
check_scan(const char *line, size_t len)
{
	struct ruleview none = { 0 };
	struct record s, p;
	struct json obj, tree;
	struct sb x, y;
	const char *kind;
	size_t kindlen;
	int ok;

	ok = scan_record(line, len, &s, &so);
	if (!ok)
		return;
	arena_reset(&a);
	CHECK(stream_parse_line(&a, line, len, &obj, &p, &kind, &kindlen) == 1);
	CHECK(same_str(s.type, s.typelen, p.type, p.typelen) &&
	    same_str(s.key, s.keylen, p.key, p.keylen) &&
	    same_str(s.rev, s.revlen, p.rev, p.revlen) &&
	    same_str(s.mtime, s.mtimelen, p.mtime, p.mtimelen) &&
	    !s.deleted && !p.deleted && !s.fields && p.fields);
	CHECK(json_parse(&a, so.fields, so.fieldslen, &tree, NULL) == 0);
	sb_init(&x, 256);
	sb_init(&y, 256);
	CHECK(record_canon(&none, p.fields, &x) == 0);
	CHECK(record_canon(&none, &tree, &y) == 0);
	CHECK(x.len == y.len && memcmp(x.buf, y.buf, x.len) == 0);
	CHECK(so.canon.len == x.len && memcmp(so.canon.buf, x.buf, x.len) == 0);
	sb_release(&x);
	sb_release(&y);
}

static void
load_rules(struct rules *r, const char *s, size_t n)
{
	char *line = xmemdup(s, n), *w, *save = NULL;

	for (w = strtok_r(line, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
		char *slash = strchr(w, '/');
		const char *type = NULL;

		if (slash) {
			*slash = '\0';
			type = w;
			w = slash + 1;
		}
		if (strchr(w, '='))
			(void)rules_add_tolerance(r, type, w);
		else if (*w)
			(void)rules_add_ignore(r, type, w);
	}
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct fetch_opts o;
	struct store_sink sink;
	struct store s;
	struct ctx c;
	size_t i, j;

	if (memfd < 0) {
		scan_init(&so);
		CHECK((memfd = memfd_create("fuzz-record", 0)) >= 0);
		snprintf(path, sizeof path, "ndjson:/proc/self/fd/%d", memfd);
	}
	memset(&c, 0, sizeof c);
	c.rules = rules_new();
	sb_init(&c.scratch, 256);
	if (size && in[0] == '#') {
		const char *nl = memchr(in, '\n', size);
		size_t n = nl ? (size_t)(nl - in) : size;

		load_rules(c.rules, in + 1, n - 1);
		in += n;
		size -= n;
	}
	for (i = 0; i < size; i = j + 1) {
		const char *nl = memchr(in + i, '\n', size - i);

		j = nl ? (size_t)(nl - in) : size;
		check_scan(in + i, j - i);
	}
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, in, size, 0) == (ssize_t)size);
	memset(&o, 0, sizeof o);
	o.allow_empty = 1;
	sink.put = put;
	sink.ctx = &c;
	CHECK(store_open(&s, path) == 0);
	/* Stop at the first bad line, as diff does; the records before it count. */
	(void)store_fetch(&s, &o, &sink);
	store_close(&s);
	for (i = 0; i < c.n; i++) {
		if (c.k[i].hashed)
			check_rewrite(&c, &c.k[i]);
		for (j = 0; j < c.n; j++)
			check_pair(&c, &c.k[i], &c.k[j]);
	}
	for (i = 0; i < c.n; i++)
		free(c.k[i].line);
	sb_release(&c.scratch);
	rules_free(c.rules);
	return 0;
}
