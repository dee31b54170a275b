/* index.c - the keyed index of one input (index.h). */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(sizeof(struct index_ent) <= 48, "an index entry is 48 bytes");

void
index_init(struct index *ix, struct store *s)
{
	memset(ix, 0, sizeof *ix);
	ix->store = s;
}

void
index_release(struct index *ix)
{
	if (ix->spool)
		fclose(ix->spool);
	free(ix->ents);
	free(ix->pool);
	free(ix->table);
	free(ix->types);
	free(ix->ttable);
	memset(ix, 0, sizeof *ix);
}

uint64_t
index_keyhash(const char *type, size_t typelen, const char *key, size_t keylen)
{
	return rd_idhash(type, typelen, key, keylen);
}

#define HUGE_PAGE ((size_t)2 << 20)

/*
 * n zeroed slots.  Probes land anywhere in a table of millions of slots, so
 * one of 2 MB or more asks for huge pages (where the system gives them on
 * request), a TLB entry covering 2 MB rather than 4 kB.  Zeroed by writing,
 * not calloc'd: a probe reads a slot before it writes it, so a calloc'd
 * page would first be the shared zero page and then be copied, each copy
 * flushing the TLB of every thread of the process.
 */
static uint64_t *
table_alloc(size_t n)
{
	size_t size = n * sizeof(uint64_t);
	void *p = NULL;

	if (n > SIZE_MAX / sizeof(uint64_t))
		rd_die(RD_EXIT_RUNTIME, "out of memory");
#ifdef MADV_HUGEPAGE
	if (size >= HUGE_PAGE && posix_memalign(&p, HUGE_PAGE, size) == 0)
		(void)madvise(p, size, MADV_HUGEPAGE);
#endif
	if (!p)
		p = xreallocarray(NULL, n, sizeof(uint64_t));
	memset(p, 0, size);
	return p;
}

/*
 * A table of ncap slots (a power of two) holding what the old one held.  A
 * slot's upper half is the low half of the key's hash, which is also where
 * its probe starts: the entries need not be read.
 */
static void
table_resize(struct index *ix, size_t ncap)
{
	/*
	 * Written, not calloc'd: a probe reads a slot before it writes it, so
	 * a calloc'd page would be the shared zero page first and then copied,
	 * each copy flushing the TLB of every thread of the process.
	 */
	uint64_t *nt = table_alloc(ncap);
	size_t i, h;


	for (i = 0; i < ix->tcap; i++) {
		if (!ix->table[i])
			continue;
		h = (ix->table[i] >> 32) & (ncap - 1);
		while (nt[h])
			h = (h + 1) & (ncap - 1);
		nt[h] = ix->table[i];
	}
	free(ix->table);
	ix->table = nt;
	ix->tcap = ncap;
}

void
index_reserve(struct index *ix, size_t n)
{
	size_t tcap = 1024;

	if (n > UINT32_MAX / 2)
		n = UINT32_MAX / 2;
	while (tcap / 2 <= n)
		tcap *= 2;
	if (tcap > ix->tcap)
		table_resize(ix, tcap);
	if (n > ix->cap) {
		ix->cap = n;
		ix->ents = xreallocarray(ix->ents, ix->cap, sizeof *ix->ents);
	}
}

/*
 * The entry of (type, key), or NULL; then *slot (if given) is the free slot
 * for it and *hvp its hash.
 */
static struct index_ent *
lookup(const struct index *ix, const char *t, size_t tn, const char *k,
    size_t kn, size_t *slot, uint64_t *hvp)
{
	uint64_t hv, tag;
	size_t h;

	if (!ix->tcap)
		return NULL;
	hv = index_keyhash(t, tn, k, kn);
	tag = (uint32_t)hv;
	h = hv & (ix->tcap - 1);
	while (ix->table[h]) {
		struct index_ent *e = &ix->ents[(uint32_t)ix->table[h] - 1];

		if (ix->table[h] >> 32 == tag && e->keylen == kn &&
		    index_typelen(ix, e) == tn &&
		    memcmp(index_key(ix, e), k, kn) == 0 &&
		    memcmp(index_type(ix, e), t, tn) == 0)
			return e;
		h = (h + 1) & (ix->tcap - 1);
	}
	if (slot)
		*slot = h;
	if (hvp)
		*hvp = hv;
	return NULL;
}

const struct index_ent *
index_find(const struct index *ix, const char *type, size_t typelen,
    const char *key, size_t keylen)
{
	return lookup(ix, type, typelen, key, keylen, NULL, NULL);
}

static uint32_t
pool_add(struct index *ix, const char *p, size_t n)
{
	uint32_t at = (uint32_t)ix->poollen;

	if (ix->poollen + n > UINT32_MAX) {
		rd_seterr(RD_EXIT_RUNTIME, "too many keys for one diff");
		return UINT32_MAX;
	}
	if (ix->poollen + n > ix->poolcap) {
		while (ix->poollen + n > ix->poolcap)
			ix->poolcap = ix->poolcap ? ix->poolcap * 2 : 1 << 20;
		ix->pool = xrealloc(ix->pool, ix->poolcap);
	}
	memcpy(ix->pool + ix->poollen, p, n);
	ix->poollen += n;
	return at;
}

/*
 * A new entry at the end for l's line: where the store can read it again,
 * or else a copy in the spool.  Not counted in ix->n until the caller says.
 */
static struct index_ent *
new_ent(struct index *ix, const struct rline *l)
{
	struct index_ent *e;

	if (ix->n == ix->cap) {
		ix->cap = ix->cap ? ix->cap * 2 : 4096;
		ix->ents = xreallocarray(ix->ents, ix->cap, sizeof *ix->ents);
	}
	if (l->len > UINT32_MAX) {
		rd_seterr(RD_EXIT_DATA, "line too long");
		return NULL;
	}
	e = &ix->ents[ix->n];
	memset(e, 0, sizeof *e);
	e->len = (uint32_t)l->len;
	e->lineno = (uint32_t)l->lineno;
	if (l->offset >= 0) {
		e->off = l->offset;
		return e;
	}
	if (!ix->spool && !(ix->spool = tmpfile())) {
		rd_seterr(RD_EXIT_RUNTIME, "spool file: %s", strerror(errno));
		return NULL;
	}
	e->flags = IX_SPOOLED;
	e->off = ix->spoolend;
	if (fwrite(l->text, 1, l->len, ix->spool) != l->len) {
		rd_seterr(RD_EXIT_RUNTIME, "spool file: %s", strerror(errno));
		return NULL;
	}
	ix->spoolend += (off_t)l->len;
	return e;
}

int
index_add_pass(struct index *ix, const struct rline *l)
{
	struct index_ent *e;

	if (!(e = new_ent(ix, l)))
		return -1;
	e->flags |= IX_PASS;
	ix->n++;
	return 0;
}

/*
 * The number of type t, added to the types when new: the type of the last
 * record first (inputs come in runs of one type), else by its hash in
 * ttable, a table of twice INDEX_TYPES_MAX slots.  -1 with a message when
 * the input has too many types (status 3, naming l's line), or the pool is
 * full (4).
 */
static int
type_number(struct index *ix, const struct rline *l)
{
	const char *t = l->rec->type;
	size_t tn = l->rec->typelen;
	const struct index_typename *y;
	size_t h, mask = 2 * (size_t)INDEX_TYPES_MAX + 1;
	uint32_t off;

	if (ix->ntypes) {
		y = &ix->types[ix->lasttype];
		if (y->len == tn && memcmp(ix->pool + y->off, t, tn) == 0)
			return ix->lasttype;
	}
	if (!ix->ttable)
		ix->ttable = xcalloc(mask + 1, sizeof *ix->ttable);
	for (h = rd_idhash(t, tn, "", 0) & mask; ix->ttable[h];
	    h = (h + 1) & mask) {
		y = &ix->types[ix->ttable[h] - 1];
		if (y->len == tn && memcmp(ix->pool + y->off, t, tn) == 0)
			return ix->lasttype = (uint16_t)(ix->ttable[h] - 1);
	}
	if (ix->ntypes == INDEX_TYPES_MAX) {
		rd_seterr(RD_EXIT_DATA, "%s:%lu: type \"%s\": more than %d "
		    "record types in one input", l->src, l->lineno,
		    rd_quote(t, tn), INDEX_TYPES_MAX);
		return -1;
	}
	if ((off = pool_add(ix, t, tn)) == UINT32_MAX)
		return -1;
	ix->types = xreallocarray(ix->types, ix->ntypes + 1, sizeof *ix->types);
	ix->types[ix->ntypes].off = off;
	ix->types[ix->ntypes].len = (uint32_t)tn;
	ix->ttable[h] = (uint16_t)(ix->ntypes + 1);
	return ix->lasttype = (uint16_t)ix->ntypes++;
}

int
index_add(struct index *ix, const struct rline *l, const unsigned char *hash)
{
	const struct record *r = l->rec;
	struct index_ent *e, *dup;
	size_t slot = 0;
	uint64_t hv = 0;
	int t;

	if (ix->nrec * 2 >= ix->tcap)
		table_resize(ix, ix->tcap ? ix->tcap * 2 : 1024);
	if ((dup = lookup(ix, r->type, r->typelen, r->key, r->keylen, &slot,
	    &hv))) {
		rd_seterr(RD_EXIT_DATA, "%s:%lu: duplicate record (type \"%s\", "
		    "key \"%s\"), first at line %lu", l->src, l->lineno,
		    rd_quote(r->type, r->typelen), rd_quote(r->key, r->keylen),
		    (unsigned long)dup->lineno);
		return -1;
	}
	if ((t = type_number(ix, l)) < 0 ||
	    !(e = new_ent(ix, l)))
		return -1;
	memcpy(e->hash, hash, sizeof e->hash);
	e->type = (uint16_t)t;
	e->keylen = (uint32_t)r->keylen;
	e->revlen = (uint32_t)r->revlen;
	if ((e->id = pool_add(ix, r->key, r->keylen)) == UINT32_MAX ||
	    pool_add(ix, r->rev ? r->rev : "", r->revlen) == UINT32_MAX)
		return -1;
	ix->table[slot] = (uint64_t)(uint32_t)hv << 32 | (uint64_t)(ix->n + 1);
	ix->n++;
	ix->nrec++;
	return 0;
}

void
index_select_last(struct index *ix)
{
	if (ix->n)
		ix->ents[ix->n - 1].flags |= IX_SELECTED;
}

int
index_finish(struct index *ix)
{
	if (ix->spool && fflush(ix->spool) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "spool file: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* A line out of the spool. */
static int
spool_read(struct index *ix, const struct index_ent *e, struct sb *buf)
{
	if (rd_pread_full(fileno(ix->spool), buf->buf, e->len, e->off) < 0) {
		rd_prefixerr("%s: reading back: ", ix->store->spec);
		return -1;
	}
	return 0;
}

int
index_read(struct index *ix, const struct index_ent *e, struct sb *buf)
{
	sb_reset(buf);
	sb_grow(buf, e->len);
	if (e->flags & IX_SPOOLED) {
		if (spool_read(ix, e, buf) < 0)
			return -1;
	} else if (store_reread(ix->store, e->off, e->len, buf->buf) < 0) {
		return -1;
	}
	buf->len = e->len;
	buf->buf[buf->len] = '\0';
	return 0;
}

int
index_parse(struct index *ix, const struct index_ent *e, struct sb *buf,
    struct arena *a, struct json *obj, struct record *rec)
{
	const char *kind;
	size_t kindlen;

	if (index_read(ix, e, buf) < 0)
		return -1;
	if (stream_parse_line(a, buf->buf, buf->len, obj, rec, &kind,
	    &kindlen) != 1) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: file changed while reading",
		    ix->store->spec);
		return -1;
	}
	return 0;
}

/* Whether record entry e of ix and entry o of ox have one (type, key). */
static int
same_key(const struct index *ix, const struct index_ent *e,
    const struct index *ox, const struct index_ent *o)
{
	return !(o->flags & IX_PASS) && o->keylen == e->keylen &&
	    index_typelen(ox, o) == index_typelen(ix, e) &&
	    memcmp(index_key(ox, o), index_key(ix, e), e->keylen) == 0 &&
	    memcmp(index_type(ox, o), index_type(ix, e),
	    index_typelen(ix, e)) == 0;
}

/* How many entries ahead a walk fetches the table slots a lookup reads. */
#define WALK_AHEAD 8

/* Fetch into the cache the slot a lookup of hv in ix reads first. */
static inline void
prefetch_slot(const struct index *ix, uint64_t hv)
{
#ifdef __GNUC__
	if (ix && ix->tcap)
		__builtin_prefetch(&ix->table[hv & (ix->tcap - 1)]);
#else
	(void)ix;
	(void)hv;
#endif
}

/*
 * Walking index 0, WALK_AHEAD entries before e is met: the slots its key
 * takes in every other index, which a lookup will read then, its probe a
 * cache miss each in a table of millions of slots otherwise.
 */
static void
walk_prefetch(const struct index_walk *w, const struct index *ix, size_t at)
{
	const struct index_ent *e;
	uint64_t hv;
	size_t s;

	if (at >= ix->n || ((e = &ix->ents[at])->flags & IX_PASS))
		return;
	hv = index_keyhash(index_type(ix, e), index_typelen(ix, e),
	    index_key(ix, e), e->keylen);
	for (s = 1; s < w->n; s++)
		prefetch_slot(w->v[s], hv);
	prefetch_slot(w->also, hv);
}

void
index_walk_also(struct index_walk *w, const struct index *ix)
{
	w->also = ix;
}

void
index_walk_init(struct index_walk *w, struct index *const *v, size_t n)
{
	size_t s, i;

	w->v = v;
	w->n = n;
	w->side = 0;
	w->i = 0;
	w->also = NULL;
	for (s = 0; s < n; s++) {
		v[s]->hint = 0;
		if (!v[s]->walked)
			continue;
		for (i = 0; i < v[s]->n; i++)
			v[s]->ents[i].flags &= ~IX_SEEN;
		v[s]->walked = 0;
	}
}

int
index_walk_next(struct index_walk *w, const struct index_ent **at)
{
	while (w->side < w->n) {
		struct index *ix = w->v[w->side];
		const struct index_ent *e;
		size_t s;

		if (w->i == ix->n) {
			w->side++;
			w->i = 0;
			continue;
		}
		if (w->side == 0)
			walk_prefetch(w, ix, w->i + WALK_AHEAD);
		e = &ix->ents[w->i++];
		if (w->side > 0 && (e->flags & (IX_PASS | IX_SEEN)))
			continue;
		for (s = 0; s < w->n; s++)
			at[s] = NULL;
		at[w->side] = e;
		if (e->flags & IX_PASS)
			return 1;
		for (s = w->side + 1; s < w->n; s++) {
			struct index *ox = w->v[s];
			struct index_ent *o = NULL;

			if (ox->hint < ox->n && same_key(ix, e, ox,
			    &ox->ents[ox->hint]))
				o = &ox->ents[ox->hint];
			else
				o = lookup(ox, index_type(ix, e),
				    index_typelen(ix, e),
				    index_key(ix, e), e->keylen, NULL, NULL);
			if (o) {
				o->flags |= IX_SEEN;
				ox->walked = 1;
				ox->hint = (size_t)(o - ox->ents) + 1;
			}
			at[s] = o;
		}
		return 1;
	}
	return 0;
}
