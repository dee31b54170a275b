/*
 * side.c - an input read whole into an index; per-type report counts.
 */
#include <stdlib.h>
#include <string.h>

#include "side.h"

/* Records read before the index is sized from the share they took. */
#define SIDE_SAMPLE 4096
/* No record line is shorter: {"kind":"record","type":"T","key":"k"} */
#define SIDE_MINLINE 32

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
	if (record_digest(&rv, r->fields, h, &s->scratch) < 0) {
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
	if (store_fetch(&s->store, s->fo, &sink) < 0 ||
	    index_finish(&s->ix) < 0) {
		s->status = rd_errstatus();
		s->err = xstrdup(rd_errmsg());
	}
	sb_release(&s->scratch);
	return NULL;
}

void
side_release(struct side *s)
{
	if (!s->store.ops)
		return;
	index_release(&s->ix);
	store_close(&s->store);
	free(s->err);
	s->err = NULL;
}

struct summary_count *
tally_get(struct tally *t, const char *type, size_t len)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].typelen == len &&
		    memcmp(t->v[i].type, type, len) == 0)
			return &t->v[i];
	t->v = xreallocarray(t->v, t->n + 1, sizeof *t->v);
	memset(&t->v[t->n], 0, sizeof *t->v);
	t->v[t->n].type = xmemdup(type, len);
	t->v[t->n].typelen = len;
	return &t->v[t->n++];
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
}

void
tally_release(struct tally *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free((char *)t->v[i].type);
	free(t->v);
	t->v = NULL;
	t->n = 0;
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
