/*
 * insync.c - the in-step digest (insync.h): entries, their encoding, and
 * the table that finds an entry by its line's hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "insync.h"

#define INSYNC_MAGIC "RDINSYNC"
#define INSYNC_VERSION 1
#define INSYNC_ORDER 0x01020304u

void
insync_init(struct insync *d)
{
	memset(d, 0, sizeof *d);
}

void
insync_release(struct insync *d)
{
	free(d->ents);
	free(d->chk);
	free(d->pool);
	free(d->types);
	free(d->slots);
	free(d->dead);
	memset(d, 0, sizeof *d);
}

static uint32_t
pool_add(struct insync *d, const char *p, size_t n)
{
	uint32_t off;

	if (d->poollen + n > UINT32_MAX)
		rd_die(RD_EXIT_RUNTIME, "in-step digest: too many keys");
	if (d->poollen + n > d->poolcap) {
		d->poolcap = d->poolcap ? 2 * d->poolcap : 4096;
		while (d->poolcap < d->poollen + n)
			d->poolcap *= 2;
		d->pool = xrealloc(d->pool, d->poolcap);
	}
	off = (uint32_t)d->poollen;
	if (n)
		memcpy(d->pool + d->poollen, p, n);
	d->poollen += n;
	return off;
}

/* The number of type (added when new); types are few, the last one likely. */
static uint32_t
type_num(struct insync *d, const char *t, size_t n)
{
	size_t i;

	if (d->lasttype < d->ntypes && d->types[d->lasttype].len == n &&
	    memcmp(d->pool + d->types[d->lasttype].off, t, n) == 0)
		return d->lasttype;
	for (i = 0; i < d->ntypes; i++)
		if (d->types[i].len == n &&
		    memcmp(d->pool + d->types[i].off, t, n) == 0)
			return d->lasttype = (uint32_t)i;
	if (d->ntypes == d->typecap) {
		d->typecap = d->typecap ? 2 * d->typecap : 8;
		d->types = xreallocarray(d->types, d->typecap, sizeof *d->types);
	}
	d->types[d->ntypes].off = pool_add(d, t, n);
	d->types[d->ntypes].len = (uint32_t)n;
	return d->lasttype = (uint32_t)d->ntypes++;
}

size_t
insync_add(struct insync *d, const unsigned char *lh, const char *type,
    size_t typelen, const char *key, size_t keylen)
{
	struct insync_ent *e;

	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 1024;
		d->ents = xreallocarray(d->ents, d->cap, sizeof *d->ents);
	}
	e = &d->ents[d->n];
	if (lh)
		memcpy(e->lh, lh, INSYNC_HASH);
	else
		memset(e->lh, 0, INSYNC_HASH);
	e->type = type_num(d, type, typelen);
	e->keyoff = pool_add(d, key, keylen);
	e->keylen = (uint32_t)keylen;
	return d->n++;
}

void
insync_check(struct insync *d, size_t e, const unsigned char *ch)
{
	struct insync_chk *c;

	if (d->nchk == d->chkcap) {
		d->chkcap = d->chkcap ? 2 * d->chkcap : 64;
		d->chk = xreallocarray(d->chk, d->chkcap, sizeof *d->chk);
	}
	c = &d->chk[d->nchk++];
	c->ent = (uint32_t)e;
	if (ch)
		memcpy(c->ch, ch, INSYNC_HASH);
	else
		memset(c->ch, 0, INSYNC_HASH);
}

void
insync_dead(struct insync *d, size_t e)
{
	if (d->ndead == d->deadcap) {
		d->deadcap = d->deadcap ? 2 * d->deadcap : 64;
		d->dead = xreallocarray(d->dead, d->deadcap, sizeof *d->dead);
	}
	d->dead[d->ndead++] = (uint32_t)e;
}

uint64_t
insync_newgen(void)
{
	struct timespec ts;
	uint64_t v = 0;
	int fd;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
			v = 0;
		close(fd);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	v ^= (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
	    (uint64_t)getpid() << 32;
	return v ? v : 1;
}

struct header {
	char magic[8];
	uint32_t version, order, delta, pad;
	uint64_t gen, basegen;
	uint64_t ntypes, n, nchk, ndead, poollen;
};

_Static_assert(sizeof(struct header) == INSYNC_HEADER, "header size");

/*
 * The encoding of d, part by part in order, to put (the header, then each
 * part that is not empty: an empty one may have no array at all); stops
 * at put's first -1 and returns it.
 */
static int
encode(const struct insync *d, int (*put)(void *ctx, const void *p,
    size_t n), void *ctx)
{
	struct header h;
	const struct { const void *p; size_t n; } part[] = {
		{ d->types, d->ntypes * sizeof *d->types },
		{ d->ents, d->n * sizeof *d->ents },
		{ d->chk, d->nchk * sizeof *d->chk },
		{ d->dead, d->ndead * sizeof *d->dead },
		{ d->pool, d->poollen },
	};
	size_t i;

	memcpy(h.magic, INSYNC_MAGIC, sizeof h.magic);
	h.version = INSYNC_VERSION;
	h.order = INSYNC_ORDER;
	h.delta = d->delta != 0;
	h.pad = 0;
	h.gen = d->gen;
	h.basegen = d->basegen;
	h.ntypes = d->ntypes;
	h.n = d->n;
	h.nchk = d->nchk;
	h.ndead = d->ndead;
	h.poollen = d->poollen;
	if (put(ctx, &h, sizeof h) < 0)
		return -1;
	for (i = 0; i < sizeof part / sizeof *part; i++)
		if (part[i].n && put(ctx, part[i].p, part[i].n) < 0)
			return -1;
	return 0;
}

static int
put_sb(void *ctx, const void *p, size_t n)
{
	sb_add(ctx, p, n);
	return 0;
}

void
insync_encode(const struct insync *d, struct sb *out)
{
	sb_grow(out, INSYNC_HEADER + d->ntypes * sizeof *d->types +
	    d->n * sizeof *d->ents + d->nchk * sizeof *d->chk +
	    d->ndead * sizeof *d->dead + d->poollen);
	(void)encode(d, put_sb, out);
}

int
insync_header(const char *buf, size_t len, int *delta, uint64_t *gen,
    uint64_t *n)
{
	struct header h;

	if (len < sizeof h)
		return -1;
	memcpy(&h, buf, sizeof h);
	if (memcmp(h.magic, INSYNC_MAGIC, sizeof h.magic) != 0 ||
	    h.version != INSYNC_VERSION || h.order != INSYNC_ORDER)
		return -1;
	*delta = (int)h.delta;
	*gen = h.gen;
	*n = h.n;
	return 0;
}

static int
bad(const char *what, const char *why)
{
	rd_seterr(RD_EXIT_DATA, "%s: not an in-step digest this build reads (%s)",
	    what, why);
	return -1;
}

/* The reader of an encoding in memory. */
struct membuf {
	const char *p;
	size_t len;
};

static int
memrd(void *ctx, void *dst, size_t len, size_t off)
{
	const struct membuf *m = ctx;

	memcpy(dst, m->p + off, len);
	return 0;
}

/*
 * n items of size at *off into a new array of room for n + room; *off
 * advanced.  NULL (and *err) when the read fails.
 */
static void *
section(int (*rd)(void *, void *, size_t, size_t), void *ctx, size_t *off,
    size_t n, size_t size, size_t room, int *err)
{
	void *v = xreallocarray(NULL, n + room ? n + room : 1, size);

	if (n && rd(ctx, v, n * size, *off) < 0) {
		*err = 1;
		free(v);
		return NULL;
	}
	*off += n * size;
	return v;
}

int
insync_load(struct insync *d, size_t total,
    int (*rd)(void *ctx, void *dst, size_t len, size_t off), void *ctx,
    const char *what, size_t room, size_t poolroom)
{
	struct header h;
	size_t i, need, off = sizeof h;
	int err = 0;

	if (total < sizeof h)
		return bad(what, "too short");
	if (rd(ctx, &h, sizeof h, 0) < 0)
		return -1;
	if (memcmp(h.magic, INSYNC_MAGIC, sizeof h.magic) != 0)
		return bad(what, "no header");
	if (h.version != INSYNC_VERSION)
		return bad(what, "another version");
	if (h.order != INSYNC_ORDER)
		return bad(what, "another byte order");
	if (h.ntypes > UINT32_MAX || h.n > UINT32_MAX - 1 || h.nchk > h.n ||
	    h.ndead > UINT32_MAX || h.poollen > UINT32_MAX || h.delta > 1)
		return bad(what, "too large");
	need = sizeof h + h.ntypes * sizeof *d->types + h.n * sizeof *d->ents +
	    h.nchk * sizeof *d->chk + h.ndead * sizeof *d->dead + h.poollen;
	if (total != need)
		return bad(what, "truncated");
	d->delta = (int)h.delta;
	d->gen = h.gen;
	d->basegen = h.basegen;
	d->types = section(rd, ctx, &off, h.ntypes, sizeof *d->types, 0, &err);
	d->ntypes = d->typecap = h.ntypes;
	d->ents = section(rd, ctx, &off, h.n, sizeof *d->ents, room, &err);
	d->n = h.n;
	d->cap = h.n + room;
	d->chk = section(rd, ctx, &off, h.nchk, sizeof *d->chk, 0, &err);
	d->nchk = d->chkcap = h.nchk;
	d->dead = section(rd, ctx, &off, h.ndead, sizeof *d->dead, 0, &err);
	d->ndead = d->deadcap = h.ndead;
	d->pool = section(rd, ctx, &off, h.poollen, 1, poolroom, &err);
	d->poollen = h.poollen;
	d->poolcap = h.poollen + poolroom;
	if (err) {
		insync_release(d);
		return -1;
	}
	/* Every name inside the pool, every entry of a type: never read past. */
	for (i = 0; i < d->ntypes; i++)
		if ((uint64_t)d->types[i].off + d->types[i].len > d->poollen)
			goto fail;
	for (i = 0; i < d->n; i++)
		if (d->ents[i].type >= d->ntypes ||
		    (uint64_t)d->ents[i].keyoff + d->ents[i].keylen > d->poollen)
			goto fail;
	for (i = 0; i < d->nchk; i++)
		if (d->chk[i].ent >= d->n)
			goto fail;
	return 0;
fail:
	insync_release(d);
	return bad(what, "an entry out of bounds");
}

int
insync_decode(struct insync *d, const char *buf, size_t len, const char *what)
{
	struct membuf m = { buf, len };

	return insync_load(d, len, memrd, &m, what, 0, 0);
}

static uint64_t
slot_hash(const unsigned char *lh)
{
	uint64_t v;

	memcpy(&v, lh + INSYNC_HASH - sizeof v, sizeof v);
	return v;
}

void
insync_index(struct insync *d, int (*skip)(void *ctx, size_t i), void *ctx)
{
	size_t i, n = 16, mask, h;

	while (n < 2 * d->n)
		n *= 2;
	free(d->slots);
	d->slots = xcalloc(n, sizeof *d->slots);
	d->nslots = n;
	mask = n - 1;
	for (i = 0; i < d->n; i++) {
		if (!insync_has_line(&d->ents[i]) || (skip && skip(ctx, i)))
			continue;
		for (h = slot_hash(d->ents[i].lh) & mask; d->slots[h];
		    h = (h + 1) & mask)
			;
		d->slots[h] = (uint32_t)(i + 1);
	}
}

long
insync_find(const struct insync *d, const unsigned char *lh)
{
	size_t mask = d->nslots - 1, h;
	uint32_t v;

	if (!d->nslots)
		return -1;
	for (h = slot_hash(lh) & mask; (v = d->slots[h]) != 0;
	    h = (h + 1) & mask)
		if (memcmp(d->ents[v - 1].lh, lh, INSYNC_HASH) == 0)
			return (long)v - 1;
	return -1;
}

int
insync_read_file(struct insync *d, const char *path)
{
	struct sb b;
	char buf[65536];
	ssize_t k;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	sb_init(&b, sizeof buf);
	while ((k = read(fd, buf, sizeof buf)) != 0) {
		if (k < 0) {
			if (errno == EINTR)
				continue;
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path,
			    strerror(errno));
			close(fd);
			sb_release(&b);
			return -1;
		}
		sb_add(&b, buf, (size_t)k);
	}
	close(fd);
	r = insync_decode(d, b.buf, b.len, path);
	sb_release(&b);
	return r;
}

static int
put_file(void *ctx, const void *p, size_t n)
{
	return fwrite(p, 1, n, ctx) != n ? -1 : 0;
}

/* Written part by part, not through a copy of the whole encoding. */
int
insync_write_file(const struct insync *d, const char *path)
{
	FILE *fp;
	int r = 0;

	if (!(fp = fopen(path, "w")) || encode(d, put_file, fp) < 0 ||
	    fflush(fp) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		r = -1;
	}
	if (fp && fclose(fp) != 0 && r == 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		r = -1;
	}
	return r;
}

void
keyset_add(struct keyset *ks, const char *t, size_t tn, const char *k,
    size_t kn)
{
	if (!ks->pool.buf)
		sb_init(&ks->pool, 256);
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? 2 * ks->cap : 64;
		ks->v = xreallocarray(ks->v, ks->cap, sizeof *ks->v);
	}
	ks->v[ks->n].off = ks->pool.len;
	ks->v[ks->n].tn = tn;
	ks->v[ks->n].kn = kn;
	sb_add(&ks->pool, t, tn);
	sb_add(&ks->pool, k, kn);
	ks->n++;
}

/* The slot of (t, k): its key's, or the free one for it. */
static size_t
keyset_slot(const struct keyset *ks, const char *t, size_t tn, const char *k,
    size_t kn)
{
	size_t mask = ks->nslots - 1, h = rd_idhash(t, tn, k, kn) & mask;
	const struct keyset_key *e;

	while (ks->slots[h]) {
		e = &ks->v[ks->slots[h] - 1];
		if (e->tn == tn && e->kn == kn &&
		    memcmp(ks->pool.buf + e->off, t, tn) == 0 &&
		    memcmp(ks->pool.buf + e->off + tn, k, kn) == 0)
			break;
		h = (h + 1) & mask;
	}
	return h;
}

void
keyset_index(struct keyset *ks)
{
	size_t i, n = 16, tn, kn;
	const char *t, *k;

	while (n < 2 * ks->n)
		n *= 2;
	free(ks->slots);
	ks->slots = xcalloc(n, sizeof *ks->slots);
	ks->nslots = n;
	for (i = 0; i < ks->n; i++) {
		t = keyset_type(ks, i, &tn);
		k = keyset_key(ks, i, &kn);
		ks->slots[keyset_slot(ks, t, tn, k, kn)] = (uint32_t)(i + 1);
	}
}

long
keyset_find(const struct keyset *ks, const char *t, size_t tn, const char *k,
    size_t kn)
{
	uint32_t v;

	if (!ks->n)
		return -1;
	v = ks->slots[keyset_slot(ks, t, tn, k, kn)];
	return v ? (long)v - 1 : -1;
}

void
keyset_release(struct keyset *ks)
{
	if (ks->pool.buf)
		sb_release(&ks->pool);
	free(ks->v);
	free(ks->slots);
	memset(ks, 0, sizeof *ks);
}
