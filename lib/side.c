/*
 * side.c - an input read whole into an index; per-type report counts.
 */
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "side.h"

/* Records read before the index is sized from the share they took. */
#define SIDE_SAMPLE 4096
/* No record line is shorter: {"kind":"record","type":"T","key":"k"} */
#define SIDE_MINLINE 32

/*
 * The digest of l's fields under rv, from its tree, made here when the
 * store scanned the line (its canonical form is under no rules).
 */
static int
digest(struct side *s, const struct ruleview *rv, const struct rline *l,
    unsigned char h[RD_DIGEST_LEN])
{
	struct json fields;

	if (!l->fields)
		return record_digest(rv, l->rec->fields, h, &s->scratch);
	arena_reset(&s->arena);
	if (json_parse(&s->arena, l->fields, l->fieldslen, &fields, NULL) < 0)
		return -1;
	return record_digest(rv, &fields, h, &s->scratch);
}

static int
side_put(void *ctx, const struct rline *l)
{
	struct side *s = ctx;
	const struct record *r = l->rec;
	struct ruleview rv;
	unsigned char h[RD_DIGEST_LEN];

	if (!r)
		return index_add_pass(&s->ix, l);
	/* A tombstone says the record is absent. */
	if (r->deleted)
		return 0;
	/*
	 * Size the index once from the first records' share of the file,
	 * rather than doubling it all the way, but never past one record per
	 * SIDE_MINLINE bytes.  No margin: the table doubles at a power of two,
	 * and a margin would double it for files just under one (1M records).
	 */
	if (index_nrec(&s->ix) == SIDE_SAMPLE && l->offset > 0) {
		off_t size = store_reread_size(&s->store);
		double est;

		if (size > 0) {
			est = (double)size / (double)(l->offset + (off_t)l->len) *
			    SIDE_SAMPLE;
			if (est > (double)size / SIDE_MINLINE)
				est = (double)size / SIDE_MINLINE;
			index_reserve(&s->ix, (size_t)est);
		}
	}
	rv = rules_view(s->rules, r->type, r->typelen);
	if (l->canon && !rules_view_ignores(&rv)) {
		/* Scanned: the canonical form record_digest would hash. */
		rd_xxh128(l->canon, l->canonlen, h);
	} else if (digest(s, &rv, l, h) < 0) {
		if (l->lineno)
			rd_prefixerr("%s:%lu: ", l->src, l->lineno);
		else
			rd_prefixerr("%s: ", l->src);
		return -1;
	}
	if (index_add(&s->ix, l, h) < 0)
		return -1;
	if (s->select) {
		int k = s->select(s->selctx, l);

		if (k < 0)
			return -1;
		if (k)
			index_select_last(&s->ix);
	}
	return 0;
}

int
side_open(struct side *s)
{
	if (store_open(&s->store, s->spec) < 0)
		return -1;
	index_init(&s->ix, &s->store);
	if (!s->fo->missing_ok && store_exists(&s->store) <= 0)
		return -1;
	return 0;
}

void *
side_read(void *arg)
{
	struct side *s = arg;
	struct store_sink sink = { side_put, s };

	sb_init(&s->scratch, 4096);
	arena_init(&s->arena);
	if (store_fetch(&s->store, s->fo, &sink) < 0 ||
	    index_finish(&s->ix) < 0) {
		s->status = rd_errstatus();
		s->err = xstrdup(rd_errmsg());
	}
	sb_release(&s->scratch);
	arena_release(&s->arena);
	return NULL;
}

void
side_begin(struct side *s)
{
	s->store.spec = (char *)s->spec;	/* named in messages, never freed */
	index_init(&s->ix, &s->store);
	sb_init(&s->scratch, 4096);
	arena_init(&s->arena);
	s->fed = 1;
}

int
side_add(struct side *s, const struct rline *l)
{
	return side_put(s, l);
}

int
side_end(struct side *s)
{
	sb_release(&s->scratch);
	arena_release(&s->arena);
	return index_finish(&s->ix);
}

void
side_release(struct side *s)
{
	if (s->fed) {
		index_release(&s->ix);
		s->fed = 0;
		return;
	}
	if (!s->store.ops)
		return;
	index_release(&s->ix);
	store_close(&s->store);
	free(s->err);
	s->err = NULL;
}

/* Slot of type in t's table: its entry's, or the free one for it. */
static size_t
tally_slot(const struct tally *t, const char *type, size_t len)
{
	size_t h = rd_idhash(type, len, "", 0) & (t->nslots - 1);
	const struct summary_count *c;

	while (t->slots[h]) {
		c = &t->v[t->slots[h] - 1];
		if (c->typelen == len && memcmp(c->type, type, len) == 0)
			break;
		h = (h + 1) & (t->nslots - 1);
	}
	return h;
}

/* A table of n slots (a power of two) for every entry of t. */
static void
tally_rehash(struct tally *t, size_t n)
{
	size_t i;

	free(t->slots);
	t->slots = xcalloc(n, sizeof *t->slots);
	t->nslots = n;
	for (i = 0; i < t->n; i++)
		t->slots[tally_slot(t, t->v[i].type, t->v[i].typelen)] =
		    (uint32_t)(i + 1);
}

struct summary_count *
tally_get(struct tally *t, const char *type, size_t len)
{
	struct summary_count *c;
	size_t h;

	if (t->last < t->n && t->v[t->last].typelen == len &&
	    memcmp(t->v[t->last].type, type, len) == 0)
		return &t->v[t->last];
	if (t->nslots < 2 * (t->n + 1)) {
		size_t n = t->nslots ? 2 * t->nslots : 64;

		while (n < 2 * (t->n + 1))
			n *= 2;
		tally_rehash(t, n);
	}
	h = tally_slot(t, type, len);
	if (t->slots[h])
		return &t->v[t->last = t->slots[h] - 1];
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->v = xreallocarray(t->v, t->cap, sizeof *t->v);
	}
	c = &t->v[t->n];
	memset(c, 0, sizeof *c);
	c->type = xmemdup(type, len);
	c->typelen = len;
	t->slots[h] = (uint32_t)(t->n + 1);
	t->last = t->n++;
	return c;
}

static int
countcmp(const void *x, const void *y)
{
	const struct summary_count *a = x, *b = y;
	size_t n = a->typelen < b->typelen ? a->typelen : b->typelen;
	int c = memcmp(a->type, b->type, n);

	if (c)
		return c;
	return a->typelen < b->typelen ? -1 : a->typelen > b->typelen;
}

void
tally_sort(struct tally *t)
{
	if (t->n)	/* v is NULL when no type was met */
		qsort(t->v, t->n, sizeof *t->v, countcmp);
	/* The table names entries by place: built again when next asked. */
	free(t->slots);
	t->slots = NULL;
	t->nslots = 0;
	t->last = 0;
}

void
tally_release(struct tally *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free((char *)t->v[i].type);
	free(t->v);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

void
type_plural(struct sb *out, const char *t, size_t n)
{
	char last = n ? t[n - 1] : 0, prev = n > 1 ? t[n - 2] : 0;

	if (last == 's' && prev != 's' && prev != 'u') {
		sb_add(out, t, n);
	} else if (last == 's' || last == 'x' || last == 'z' ||
	    (last == 'h' && (prev == 'c' || prev == 's'))) {
		sb_add(out, t, n);
		sb_adds(out, "es");
	} else if ((last == 'y' || last == 'Y') && prev &&
	    !strchr("aeiouAEIOU", prev)) {
		sb_add(out, t, n - 1);
		sb_adds(out, last == 'y' ? "ies" : "IES");
	} else {
		sb_add(out, t, n);
		sb_addc(out, 's');
	}
}
