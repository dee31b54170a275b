/* store_layout.c - the per-entity layout of dir: and webdav:, no I/O. */
#include "store_layout.h"
#include "shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Names */

void
layout_enc(struct sb *out, const char *s, size_t n)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    (c == '.' && i > 0)) {
			sb_addc(out, c);
		} else {
			sb_addc(out, '%');
			sb_addc(out, hx[c >> 4]);
			sb_addc(out, hx[c & 15]);
		}
	}
}

/* A name too long for a file system: a fixed-length one derived from it. */
static void
cap_name(struct sb *out, size_t mark, const char *s, size_t n)
{
	char hex[2 * RD_SHA256_LEN + 1];

	if (out->len - mark <= LAYOUT_NAME_MAX)
		return;
	out->len = mark;
	out->buf[mark] = '\0';
	rd_sha256_hex(s, n, hex);
	sb_adds(out, LAYOUT_NAME_HASHED);
	sb_adds(out, hex);
}

void
layout_type_name(struct sb *out, const char *type, size_t n)
{
	size_t mark = out->len, i;

	layout_enc(out, type, n);
	if (out->len - mark >= 5 && strncasecmp(out->buf + mark, "meta.", 5) == 0) {
		out->len = mark;
		for (i = 0; i < n; i++)
			if (type[i] == '.')
				sb_adds(out, "%2E");
			else
				layout_enc(out, type + i, 1);
	}
	cap_name(out, mark, type, n);
}

void
layout_key_name(struct sb *out, const char *key, size_t n)
{
	size_t mark = out->len;

	layout_enc(out, key, n);
	cap_name(out, mark, key, n);
}

void
layout_version_name(struct sb *out, const char *key, size_t n,
    unsigned long long v)
{
	layout_key_name(out, key, n);
	sb_addf(out, "~%llu.json", v);
}

/* The index: reading */

static int
is_hex64(const struct json *v)
{
	size_t i;

	if (!v || v->type != JSON_STRING || v->len != 64)
		return 0;
	for (i = 0; i < 64; i++) {
		char c = v->u.s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return 1;
}

/* The version of an entry: a positive integer up to LAYOUT_VMAX. */
static int
entry_version(const struct json *v, unsigned long long *out)
{
	size_t i;

	if (!v || v->type != JSON_NUMBER || v->len == 0 ||
	    v->len > strlen(LAYOUT_VMAX) || v->u.s[0] == '0')
		return -1;
	for (i = 0; i < v->len; i++)
		if (v->u.s[i] < '0' || v->u.s[i] > '9')
			return -1;
	if (v->len == strlen(LAYOUT_VMAX) && memcmp(v->u.s, LAYOUT_VMAX,
	    v->len) > 0)
		return -1;
	*out = strtoull(v->u.s, NULL, 10);
	return 0;
}

int
layout_entry_read(const struct json *value, struct layout_entry *e)
{
	const struct json *del, *mt, *sha;

	if (value->type != JSON_OBJECT ||
	    entry_version(json_get(value, "v"), &e->v) < 0)
		return -1;
	del = json_get(value, "deleted");
	e->deleted = del && del->type == JSON_TRUE;
	e->mtime = NULL;
	e->mtimelen = 0;
	if ((mt = json_get(value, "mtime")) && mt->type == JSON_STRING) {
		e->mtime = mt->u.s;
		e->mtimelen = mt->len;
	}
	e->sha[0] = '\0';
	if (is_hex64(sha = json_get(value, "sha256"))) {
		memcpy(e->sha, sha->u.s, 64);
		e->sha[64] = '\0';
	}
	e->oldv = 0;
	e->folder = 0;
	e->g = 0;
	if (entry_version(json_get(value, "g"), &e->g) < 0)
		e->g = 0;
	return 0;
}

/* A count or a generation: 0, or what entry_version() takes. */
static int
count_read(const struct json *v, unsigned long long *out)
{
	if (v && v->type == JSON_NUMBER && v->len == 1 && v->u.s[0] == '0') {
		*out = 0;
		return 0;
	}
	return entry_version(v, out);
}

static int
is_format(const struct json *fmt, const char *name)
{
	return fmt && fmt->type == JSON_STRING && fmt->len == strlen(name) &&
	    memcmp(fmt->u.s, name, fmt->len) == 0;
}

/* Parse JSON into a: the value, or NULL with a message (a damaged store). */
static struct json *
parse_index(struct arena *a, const char *data, size_t len, const char *where)
{
	struct json *v = arena_alloc(a, sizeof *v);

	if (json_parse(a, data, len, v, NULL) < 0) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s", rd_errmsg());
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", where, msg);
		return NULL;
	}
	return v;
}

int
layout_root_parse(struct arena *a, const char *data, size_t len,
    const char *where, struct layout_root *r)
{
	const struct json *index, *fmt, *gen, *b;
	unsigned long long ff;
	size_t i;

	memset(r, 0, sizeof *r);
	if (!(index = parse_index(a, data, len, where)))
		return -1;
	fmt = json_get(index, "format");
	if (is_format(fmt, LAYOUT_FORMAT1))
		r->format = 1;
	else if (is_format(fmt, LAYOUT_FORMAT))
		r->format = 2;
	else {
		rd_seterr(RD_EXIT_RUNTIME, "%s: not a %s or %s store", where,
		    LAYOUT_FORMAT1, LAYOUT_FORMAT);
		return -1;
	}
	gen = json_get(index, "generation");
	if (gen && gen->type == JSON_NUMBER)
		r->generation = strtoull(gen->u.s, NULL, 10);
	r->feedfrom = entry_version(json_get(index, "feed"), &ff) < 0 ? 0 : ff;
	if (r->format == 1) {
		r->entities = json_get(index, "entities");
		if (!r->entities || r->entities->type != JSON_OBJECT) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: no "
			    "\"entities\" object", where);
			return -1;
		}
		return 0;
	}
	/* /2: its generation counts, and so does each bucket's. */
	b = json_get(index, "buckets");
	if (count_read(gen, &r->generation) < 0 ||
	    count_read(json_get(index, "entries"), &r->entries) < 0 ||
	    !b || b->type != JSON_ARRAY || b->len == 0 || b->len > LAYOUT_BMAX ||
	    (b->len & (b->len - 1)) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: no valid "
		    "\"generation\", \"entries\" or \"buckets\"", where);
		return -1;
	}
	r->nb = b->len;
	r->bgen = arena_alloc(a, r->nb * sizeof *r->bgen);
	for (i = 0; i < r->nb; i++)
		if (count_read(&b->u.items[i], &r->bgen[i]) < 0 ||
		    r->bgen[i] > r->generation) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: bucket "
			    "%zu has no valid generation", where, i);
			return -1;
		}
	return 0;
}

void
layout_bucket_name(struct sb *out, size_t i, unsigned long long g)
{
	sb_addf(out, "%zu~%llu.json", i, g);
}

/* An object of types, each an object of valid entries: 0, or -1. */
static int
entities_ok(const struct json *ents)
{
	size_t i, j;

	if (!ents || ents->type != JSON_OBJECT)
		return -1;
	for (i = 0; i < ents->len; i++) {
		const struct json_member *tm = &ents->u.members[i];

		if (tm->value.type != JSON_OBJECT || tm->namelen == 0)
			return -1;
		for (j = 0; j < tm->value.len; j++) {
			const struct json_member *km = &tm->value.u.members[j];
			struct layout_entry e;

			if (km->namelen == 0 ||
			    layout_entry_read(&km->value, &e) < 0 ||
			    (!e.deleted && !e.sha[0]))
				return -1;
		}
	}
	return 0;
}

int
layout_bucket_parse(struct arena *a, const char *data, size_t len,
    const char *where, size_t i, size_t nb, unsigned long long g,
    const struct json **entities)
{
	const struct json *v;
	unsigned long long bi, bn, bg;

	if (!(v = parse_index(a, data, len, where)))
		return -1;
	if (!is_format(json_get(v, "format"), LAYOUT_FORMAT) ||
	    count_read(json_get(v, "bucket"), &bi) < 0 ||
	    count_read(json_get(v, "buckets"), &bn) < 0 ||
	    count_read(json_get(v, "generation"), &bg) < 0 ||
	    bi != i || bn != nb || bg != g) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: not bucket %zu of "
		    "%zu at generation %llu, which meta.json names", where, i, nb,
		    g);
		return -1;
	}
	*entities = json_get(v, "entities");
	if (entities_ok(*entities) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: a bad entry",
		    where);
		return -1;
	}
	return 0;
}

static int
memberpcmp(const void *p, const void *q)
{
	const struct json_member *a = *(const struct json_member *const *)p;
	const struct json_member *b = *(const struct json_member *const *)q;
	size_t n = a->namelen < b->namelen ? a->namelen : b->namelen;
	int c = memcmp(a->name, b->name, n);

	return c ? c : (a->namelen > b->namelen) - (a->namelen < b->namelen);
}

/*
 * The types of the objects parts[0..n) merged into out: one member a type,
 * its entries those of every part.  The buckets partition the entities, so
 * no key is in two parts.
 */
static void
merge_entities(struct arena *a, const struct json *const *parts, size_t n,
    struct json *out)
{
	const struct json_member **t = NULL;
	struct json_member *types;
	size_t nt = 0, i, j, k, ntypes = 0;

	for (i = 0; i < n; i++) {
		t = xreallocarray(t, nt + parts[i]->len + 1, sizeof *t);
		for (j = 0; j < parts[i]->len; j++)
			t[nt++] = &parts[i]->u.members[j];
	}
	if (nt)
		qsort(t, nt, sizeof *t, memberpcmp);
	types = arena_alloc(a, (nt + 1) * sizeof *types);
	for (i = 0; i < nt; i = j) {
		struct json_member *m = &types[ntypes++];
		size_t keys = 0;

		for (j = i; j < nt && memberpcmp(&t[i], &t[j]) == 0; j++)
			keys += t[j]->value.len;
		m->name = t[i]->name;
		m->namelen = t[i]->namelen;
		m->value.type = JSON_OBJECT;
		m->value.len = 0;
		m->value.u.members = arena_alloc(a, (keys + 1) *
		    sizeof *m->value.u.members);
		for (k = i; k < j; k++) {
			memcpy(m->value.u.members + m->value.len,
			    t[k]->value.u.members, t[k]->value.len *
			    sizeof *m->value.u.members);
			m->value.len += t[k]->value.len;
		}
	}
	free(t);
	out->type = JSON_OBJECT;
	out->len = ntypes;
	out->u.members = types;
}

const struct json_member **
layout_members(const struct json *obj)
{
	const struct json_member **m = xreallocarray(NULL, obj->len, sizeof *m);
	size_t i;

	for (i = 0; i < obj->len; i++)
		m[i] = &obj->u.members[i];
	qsort(m, obj->len, sizeof *m, json_member_ptrcmp);
	return m;
}

/* The index in memory */

void
layout_index_init(struct layout_index *x)
{
	memset(x, 0, sizeof *x);
	arena_init(&x->a);
	sb_init(&x->meta, 0);
}

void
layout_index_release(struct layout_index *x)
{
	free(x->e);
	free(x->table);
	free(x->bgen);
	free(x->bstate);
	free(x->ld);
	free(x->newgen);
	free(x->old);
	free(x->oldg);
	sb_release(&x->meta);
	arena_release(&x->a);
	memset(x, 0, sizeof *x);
}

static size_t *
find_slot(struct layout_index *x, const char *t, size_t tn, const char *k,
    size_t kn)
{
	size_t h = rd_idhash(t, tn, k, kn) & (x->tcap - 1);

	while (x->table[h]) {
		struct layout_entry *e = &x->e[x->table[h] - 1];

		if (e->typelen == tn && e->keylen == kn &&
		    memcmp(e->type, t, tn) == 0 && memcmp(e->key, k, kn) == 0)
			break;
		h = (h + 1) & (x->tcap - 1);
	}
	return &x->table[h];
}

struct layout_entry *
layout_index_find(struct layout_index *x, const char *t, size_t tn,
    const char *k, size_t kn)
{
	size_t *slot;

	if (!x->tcap)
		return NULL;
	slot = find_slot(x, t, tn, k, kn);
	return *slot ? &x->e[*slot - 1] : NULL;
}

static void
rehash(struct layout_index *x)
{
	size_t i;

	free(x->table);
	x->tcap = 1024;
	while (x->tcap < x->n * 2 + 2)
		x->tcap *= 2;
	x->table = xcalloc(x->tcap, sizeof *x->table);
	for (i = 0; i < x->n; i++) {
		struct layout_entry *e = &x->e[i];
		size_t h = rd_idhash(e->type, e->typelen, e->key, e->keylen) &
		    (x->tcap - 1);

		while (x->table[h])
			h = (h + 1) & (x->tcap - 1);
		x->table[h] = i + 1;
	}
}

/* A new entry; its names must live as long as the index. */
static struct layout_entry *
add(struct layout_index *x, const char *t, size_t tn, const char *k, size_t kn)
{
	struct layout_entry *e;

	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 256;
		x->e = xreallocarray(x->e, x->cap, sizeof *x->e);
	}
	e = &x->e[x->n++];
	memset(e, 0, sizeof *e);
	e->type = t;
	e->typelen = tn;
	e->key = k;
	e->keylen = kn;
	if (x->n * 2 >= x->tcap)
		rehash(x);
	else
		*find_slot(x, t, tn, k, kn) = x->n;
	return e;
}

/* The bits of x->bstate. */
#define BUCKET_WANTED 1
#define BUCKET_LOADED 2

/* The entries of ents into x, each in bucket bucket (nb: any). */
static int
add_entities(struct layout_index *x, const struct json *ents, size_t bucket,
    size_t nb)
{
	size_t i, j;

	for (i = 0; i < ents->len; i++) {
		const struct json_member *tm = &ents->u.members[i];

		if (tm->value.type != JSON_OBJECT)
			return -1;
		for (j = 0; j < tm->value.len; j++) {
			const struct json_member *km = &tm->value.u.members[j];
			struct layout_entry e;

			if (layout_entry_read(&km->value, &e) < 0 ||
			    (!e.deleted && !e.sha[0]))
				return -1;
			e.type = tm->name;
			e.typelen = tm->namelen;
			e.key = km->name;
			e.keylen = km->namelen;
			e.bucket = nb ? shard_hash(e.type, e.typelen, e.key,
			    e.keylen) & (nb - 1) : 0;
			/* Misplaced, or twice: not the writer's index. */
			if (nb && e.bucket != bucket)
				return -1;
			if (layout_index_find(x, e.type, e.typelen, e.key,
			    e.keylen))
				return -1;
			*add(x, e.type, e.typelen, e.key, e.keylen) = e;
		}
	}
	return 0;
}

int
layout_index_load(struct layout_index *x, const char *data, size_t len,
    const char *where)
{
	struct layout_root r;

	sb_add(&x->meta, data, len);
	if (layout_root_parse(&x->a, x->meta.buf, x->meta.len, where, &r) < 0)
		return -1;
	x->format = r.format;
	x->generation = r.generation;
	x->feedfrom = r.feedfrom;
	if (r.format == 1) {
		if (add_entities(x, r.entities, 0, 0) < 0)
			goto damaged;
		x->entries = x->n;
		return 0;
	}
	x->entries = r.entries;
	x->nb = r.nb;
	x->bgen = xreallocarray(NULL, r.nb, sizeof *x->bgen);
	memcpy(x->bgen, r.bgen, r.nb * sizeof *x->bgen);
	x->bstate = xcalloc(r.nb, 1);
	return 0;
damaged:
	rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: bad entry", where);
	return -1;
}

void
layout_index_want(struct layout_index *x, const char *t, size_t tn,
    const char *k, size_t kn)
{
	if (x->format == 2)
		x->bstate[shard_hash(t, tn, k, kn) & (x->nb - 1)] |= BUCKET_WANTED;
}

void
layout_index_want_all(struct layout_index *x)
{
	size_t i;

	for (i = 0; x->format == 2 && i < x->nb; i++)
		x->bstate[i] |= BUCKET_WANTED;
}

void
layout_index_want_batch(struct layout_index *x, const struct change *v,
    size_t n)
{
	unsigned long long creates = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		layout_index_want(x, v[i].type, v[i].typelen, v[i].key,
		    v[i].keylen);
		creates += v[i].op == RD_OP_CREATE;
	}
	if (x->format == 2 && x->entries + creates > 128 * (unsigned long long)x->nb)
		layout_index_want_all(x);
}

size_t
layout_index_pending(struct layout_index *x, size_t **list)
{
	size_t i, n = 0;

	*list = NULL;
	for (i = 0; x->format == 2 && i < x->nb; i++) {
		if ((x->bstate[i] & (BUCKET_WANTED | BUCKET_LOADED)) !=
		    BUCKET_WANTED)
			continue;
		if (!x->bgen[i]) {
			x->bstate[i] |= BUCKET_LOADED;
			continue;
		}
		*list = xreallocarray(*list, n + 1, sizeof **list);
		(*list)[n++] = i;
	}
	return n;
}

int
layout_index_bucket(struct layout_index *x, size_t i, const char *data,
    size_t len, const char *where)
{
	const struct json *ents;
	char *copy;

	if (x->format != 2 || i >= x->nb || (x->bstate[i] & BUCKET_LOADED))
		return 0;
	copy = arena_memdup(&x->a, data, len);
	if (layout_bucket_parse(&x->a, copy, len, where, i, x->nb, x->bgen[i],
	    &ents) < 0)
		return -1;
	if (add_entities(x, ents, i, x->nb) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: an entry in the "
		    "wrong bucket, or in two", where);
		return -1;
	}
	x->bstate[i] |= BUCKET_LOADED | BUCKET_WANTED;
	x->ld = xreallocarray(x->ld, x->nld + 1, sizeof *x->ld);
	x->ld[x->nld].i = i;
	x->ld[x->nld].data = copy;
	x->ld[x->nld++].len = len;
	return 0;
}

int
layout_index_reload(struct layout_index *x)
{
	struct layout_index y;
	size_t i;

	layout_index_init(&y);
	if (x->meta.len && layout_index_load(&y, x->meta.buf, x->meta.len,
	    "meta.json") < 0)
		goto fail;
	for (i = 0; i < x->nld; i++)
		if (layout_index_bucket(&y, x->ld[i].i, x->ld[i].data,
		    x->ld[i].len, "meta.idx") < 0)
			goto fail;
	/* What was asked for stays asked; buckets without a file, loaded. */
	for (i = 0; y.format == 2 && i < y.nb; i++)
		y.bstate[i] |= y.bgen[i] ? x->bstate[i] & BUCKET_WANTED :
		    x->bstate[i];
	layout_index_release(x);
	*x = y;
	return 0;
fail:
	layout_index_release(&y);
	return -1;
}

static int
entrycmp(const void *p, const void *q)
{
	const struct layout_entry *a = p, *b = q;
	size_t n = a->typelen < b->typelen ? a->typelen : b->typelen;
	int c = memcmp(a->type, b->type, n);

	if (c)
		return c;
	if (a->typelen != b->typelen)
		return a->typelen < b->typelen ? -1 : 1;
	n = a->keylen < b->keylen ? a->keylen : b->keylen;
	if ((c = memcmp(a->key, b->key, n)))
		return c;
	return a->keylen < b->keylen ? -1 : a->keylen > b->keylen;
}

/* Entries by bucket, then as entrycmp(). */
static int
bucketcmp(const void *p, const void *q)
{
	const struct layout_entry *a = p, *b = q;

	if (a->bucket != b->bucket)
		return a->bucket < b->bucket ? -1 : 1;
	return entrycmp(p, q);
}

/* {"TYPE":{"KEY":{...},...},...}: the entries e[0..n), sorted. */
static void
write_entities(struct sb *out, const struct layout_entry *v, size_t n)
{
	size_t i;

	sb_addc(out, '{');
	for (i = 0; i < n; i++) {
		const struct layout_entry *e = &v[i];
		int newtype = i == 0 || e->typelen != v[i - 1].typelen ||
		    memcmp(e->type, v[i - 1].type, e->typelen) != 0;

		if (newtype) {
			if (i)
				sb_adds(out, "},");
			json_write_string(out, e->type, e->typelen);
			sb_adds(out, ":{");
		} else {
			sb_addc(out, ',');
		}
		json_write_string(out, e->key, e->keylen);
		sb_addc(out, ':');
		sb_addc(out, '{');
		if (e->deleted)
			sb_adds(out, "\"deleted\":true,");
		if (e->g)
			sb_addf(out, "\"g\":%llu,", e->g);
		if (e->mtime) {
			sb_adds(out, "\"mtime\":");
			json_write_string(out, e->mtime, e->mtimelen);
			sb_addc(out, ',');
		}
		if (!e->deleted)
			sb_addf(out, "\"sha256\":\"%s\",", e->sha);
		sb_addf(out, "\"v\":%llu}", e->v);
	}
	if (n)
		sb_addc(out, '}');
	sb_addc(out, '}');
}

void
layout_index_plan(struct layout_index *x)
{
	size_t nb = x->format == 2 ? x->nb : LAYOUT_B0, i;
	int all = x->format != 2;

	if (x->format != 2)
		x->entries = x->n;
	/* Grown past 128 B entries: doubled, with every bucket in memory. */
	for (i = 0; x->format == 2 && i < x->nb &&
	    (x->bstate[i] & BUCKET_LOADED); i++)
		;
	if (x->entries > 128ULL * nb && (x->format != 2 || i == x->nb)) {
		while (x->entries > 64ULL * nb && nb < LAYOUT_BMAX)
			nb *= 2;
		all = 1;
	}
	free(x->newgen);
	x->newnb = nb;
	x->newgen = xcalloc(nb, sizeof *x->newgen);
	if (!all)
		memcpy(x->newgen, x->bgen, nb * sizeof *x->newgen);
	for (i = 0; i < x->n; i++) {
		struct layout_entry *e = &x->e[i];

		if (all)
			e->bucket = shard_hash(e->type, e->typelen, e->key,
			    e->keylen) & (nb - 1);
		if (all || e->g == x->generation)
			x->newgen[e->bucket] = x->generation;
	}
	x->nold = 0;
	for (i = 0; x->format == 2 && i < x->nb; i++)
		if (x->bgen[i] && (i >= nb || x->newgen[i] != x->bgen[i])) {
			x->old = xreallocarray(x->old, x->nold + 1, sizeof *x->old);
			x->oldg = xreallocarray(x->oldg, x->nold + 1,
			    sizeof *x->oldg);
			x->old[x->nold] = i;
			x->oldg[x->nold++] = x->bgen[i];
		}
}

int
layout_index_write(struct layout_index *x, struct sb *root,
    int (*put)(void *ctx, const char *name, const struct sb *data),
    void *ctx)
{
	struct sb file, name;
	size_t i, j;
	int ret = -1;

	sb_init(&file, 0);
	sb_init(&name, 64);
	qsort(x->e, x->n, sizeof *x->e, bucketcmp);
	rehash(x);
	for (i = 0; i < x->n; i = j) {
		size_t b = x->e[i].bucket;

		for (j = i; j < x->n && x->e[j].bucket == b; j++)
			;
		if (x->newgen[b] != x->generation)
			continue;
		sb_reset(&file);
		sb_addf(&file, "{\"bucket\":%zu,\"buckets\":%zu,\"entities\":", b,
		    x->newnb);
		write_entities(&file, x->e + i, j - i);
		sb_addf(&file, ",\"format\":\"%s\",\"generation\":%llu}\n",
		    LAYOUT_FORMAT, x->generation);
		sb_reset(&name);
		layout_bucket_name(&name, b, x->generation);
		if (put(ctx, name.buf, &file) < 0)
			goto out;
	}
	if (!x->feedfrom)
		x->feedfrom = x->generation;
	sb_adds(root, "{\"buckets\":[");
	for (i = 0; i < x->newnb; i++)
		sb_addf(root, "%s%llu", i ? "," : "", x->newgen[i]);
	sb_addf(root, "],\"entries\":%llu,\"feed\":%llu,\"format\":\"%s\","
	    "\"generation\":%llu}\n", x->entries, x->feedfrom, LAYOUT_FORMAT,
	    x->generation);
	ret = 0;
out:
	sb_release(&file);
	sb_release(&name);
	return ret;
}

/* Writing */

struct layout_entry *
layout_guard(struct layout_index *x, struct change *c, const char *base)
{
	struct layout_entry *e;
	int live;
	char ver[24];

	c->status = RD_ST_NONE;
	/* A bucket not in memory would lose its entries: a transport's bug. */
	if (x->format == 2 && !(x->bstate[shard_hash(c->type, c->typelen,
	    c->key, c->keylen) & (x->nb - 1)] & BUCKET_LOADED)) {
		change_fail(c, "index", "%s: the bucket of this key was not "
		    "read", base);
		return NULL;
	}
	e = layout_index_find(x, c->type, c->typelen, c->key, c->keylen);
	live = e && !e->deleted;
	/* recdelta-push refuses one first: no content guard here. */
	if (c->op != RD_OP_CREATE && (!c->rev || !c->revlen)) {
		change_fail(c, "rev", "an %s without the rev it was computed "
		    "against", c->op == RD_OP_DELETE ? "delete" : "update");
		return NULL;
	}
	if (e)
		snprintf(ver, sizeof ver, "%llu", e->v);
	if (c->op == RD_OP_CREATE ? live : !live || !c->rev ||
	    c->revlen != strlen(ver) || memcmp(c->rev, ver, c->revlen) != 0) {
		c->status = RD_ST_CONFLICT;
		return NULL;
	}
	if (e && e->v >= LAYOUT_VMAX_N) {
		change_fail(c, "version", "%s: version %s is the last a "
		    "dir: store can count", base, LAYOUT_VMAX);
		return NULL;
	}
	if (!e) {
		e = add(x, arena_memdup(&x->a, c->type, c->typelen), c->typelen,
		    arena_memdup(&x->a, c->key, c->keylen), c->keylen);
		e->deleted = 1;
		if (x->format == 2)
			e->bucket = shard_hash(c->type, c->typelen, c->key,
			    c->keylen) & (x->nb - 1);
		x->entries++;
	}
	return e;
}

void
layout_version_file(struct sb *out, const struct change *c)
{
	sb_adds(out, "{\"fields\":");
	json_write(out, c->fields, JSON_SORTED);
	sb_adds(out, ",\"key\":");
	json_write_string(out, c->key, c->keylen);
	sb_adds(out, ",\"type\":");
	json_write_string(out, c->type, c->typelen);
	sb_adds(out, "}\n");
}

void
layout_advance(struct layout_index *x, struct layout_entry *e,
    struct change *c, const char *mtime, const struct sb *file)
{
	char ver[24];

	e->oldv = e->deleted ? 0 : e->v;
	e->v++;
	e->g = x->generation + 1;
	e->mtimelen = strlen(mtime);
	e->mtime = arena_memdup(&x->a, mtime, e->mtimelen);
	e->deleted = !file;
	if (file)
		rd_sha256_hex(file->buf, file->len, e->sha);
	else
		e->sha[0] = '\0';
	snprintf(ver, sizeof ver, "%llu", e->v);
	change_ok(c, ver, strlen(ver));
}

/* The collect journal */

static void
stem(struct sb *out, const struct layout_entry *e)
{
	layout_type_name(out, e->type, e->typelen);
	sb_addc(out, '/');
	layout_key_name(out, e->key, e->keylen);
}

void
layout_collect_list(const struct layout_index *x, struct sb *out)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		if (x->e[i].oldv) {
			stem(out, &x->e[i]);
			sb_addf(out, "~%llu.json\n", x->e[i].oldv);
		}
	for (i = 0; i < x->nold; i++) {
		sb_adds(out, LAYOUT_IDX "/");
		layout_bucket_name(out, x->old[i], x->oldg[i]);
		sb_addc(out, '\n');
	}
	for (i = 0; i < x->newnb; i++)
		if (x->newgen[i] == x->generation) {
			sb_adds(out, LAYOUT_IDX "/");
			layout_bucket_name(out, i, x->generation);
			sb_addc(out, '\n');
		}
}

/*
 * A line of the journal that names a bucket file, LAYOUT_IDX/I~G.json, as
 * layout_bucket_name() writes it (decimal, no leading zero, G at least 1):
 * 1 with *i and *g, else 0.
 */
static int
bucket_line(const char *s, size_t n, size_t *i, unsigned long long *g)
{
	static const char pre[] = LAYOUT_IDX "/";
	unsigned long long v[2];
	size_t k, p = sizeof pre - 1, start;

	if (n < p || memcmp(s, pre, p) != 0)
		return 0;
	for (k = 0; k < 2; k++) {
		start = p;
		v[k] = 0;
		while (p < n && s[p] >= '0' && s[p] <= '9' && p - start < 18)
			v[k] = v[k] * 10 + (unsigned long long)(s[p++] - '0');
		if (p == start || (s[start] == '0' && p - start > 1) ||
		    p >= n || s[p] != (k ? '.' : '~'))
			return 0;
		p++;
	}
	if (n - p != 4 || memcmp(s + p, "json", 4) != 0 || v[1] == 0 ||
	    v[0] >= LAYOUT_BMAX)
		return 0;
	*i = (size_t)v[0];
	*g = v[1];
	return 1;
}

/* Does the index name bucket file i at generation g as current? */
static int
names_bucket(const struct layout_index *x, size_t i, unsigned long long g)
{
	return x->format == 2 && i < x->nb && x->bgen[i] == g;
}

void
layout_collect_want(struct layout_index *x, const char *data)
{
	const char *line, *next;
	unsigned long long g;
	size_t i;

	for (line = data; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		if (bucket_line(line, (size_t)(next - line) - (next[-1] == '\n'),
		    &i, &g) && names_bucket(x, i, g))
			x->bstate[i] |= BUCKET_WANTED;
	}
}

struct cline {
	const char *stem;	/* TYPENAME/KEYNAME */
	size_t len;
	unsigned long long v;
};

static int
clinecmp(const void *x, const void *y)
{
	const struct cline *a = x, *b = y;
	int c = memcmp(a->stem, b->stem, a->len < b->len ? a->len : b->len);

	return c ? c : (a->len > b->len) - (a->len < b->len);
}

int
layout_collect_plan(const struct layout_index *x, char *data,
    int (*fn)(void *ctx, const struct layout_entry *e, unsigned long long v),
    int (*bfn)(void *ctx, const char *name), void *ctx)
{
	struct sb name;
	struct cline *cl = NULL, want;
	size_t ncl = 0, i, j;
	char *line, *next, *tilde, *end;
	int ret = -1;

	sb_init(&name, 256);
	for (line = data; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? (*next = '\0', next + 1) : line + strlen(line);
		{
			unsigned long long g;
			size_t b;

			if (bucket_line(line, strlen(line), &b, &g)) {
				if (!names_bucket(x, b, g) &&
				    bfn(ctx, line + sizeof LAYOUT_IDX) < 0)
					goto out;
				continue;
			}
		}
		if (!(tilde = strrchr(line, '~')) || tilde[1] < '1' ||
		    tilde[1] > '9')
			continue;
		want.v = strtoull(tilde + 1, &end, 10);
		if (strcmp(end, ".json") != 0)
			continue;
		cl = xreallocarray(cl, ncl + 1, sizeof *cl);
		cl[ncl].stem = line;
		cl[ncl].len = (size_t)(tilde - line);
		cl[ncl++].v = want.v;
	}
	if (ncl)
		qsort(cl, ncl, sizeof *cl, clinecmp);
	for (i = 0; ncl && i < x->n; i++) {
		const struct layout_entry *e = &x->e[i];
		struct cline *hit;

		sb_reset(&name);
		stem(&name, e);
		want.stem = name.buf;
		want.len = name.len;
		if (!(hit = bsearch(&want, cl, ncl, sizeof *cl, clinecmp)))
			continue;
		for (j = (size_t)(hit - cl); j > 0 && !clinecmp(&cl[j - 1], &want); j--)
			;
		for (; j < ncl && !clinecmp(&cl[j], &want); j++)
			if (cl[j].v < e->v && fn(ctx, e, cl[j].v) < 0)
				goto out;
	}
	ret = 0;
out:
	free(cl);
	sb_release(&name);
	return ret;
}

/* Reading a version file */

static int
sha_ok(const char *data, size_t len, const char *sha)
{
	char hex[2 * RD_SHA256_LEN + 1];

	rd_sha256_hex(data, len, hex);
	return memcmp(hex, sha, 64) == 0;
}

static int
damaged(const char *where, const char *why)
{
	rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", where, why);
	return -1;
}

int
layout_version_read(struct arena *a, const char *data, size_t len,
    const char *type, size_t typelen, const char *key, size_t keylen,
    const char *sha, const char *where, const struct json **fields)
{
	struct json *content = arena_alloc(a, sizeof *content);
	const struct json *t, *k;

	if (!sha_ok(data, len, sha))
		return damaged(where, "sha256 does not match the index");
	if (json_parse(a, data, len, content, NULL) < 0) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s", rd_errmsg());
		return damaged(where, msg);
	}
	t = json_get(content, "type");
	k = json_get(content, "key");
	*fields = json_get(content, "fields");
	if (!t || t->type != JSON_STRING || t->len != typelen ||
	    memcmp(t->u.s, type, t->len) != 0 || !k ||
	    k->type != JSON_STRING || k->len != keylen ||
	    memcmp(k->u.s, key, k->len) != 0)
		return damaged(where, "type or key differs from meta.json");
	if (!*fields || (*fields)->type != JSON_OBJECT)
		return damaged(where, "no \"fields\" object");
	return 0;
}

void
layout_record(struct record *rec, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *ver,
    const struct layout_entry *e, const struct json *fields)
{
	memset(rec, 0, sizeof *rec);
	rec->type = type;
	rec->typelen = typelen;
	rec->key = key;
	rec->keylen = keylen;
	rec->rev = ver;
	rec->revlen = strlen(ver);
	rec->deleted = e->deleted;
	rec->mtime = e->mtime;
	rec->mtimelen = e->mtimelen;
	rec->fields = fields;
}

/* Reading a store */

struct walk {
	const char *base;
	const struct fetch_opts *o;
	const struct layout_io *io;
	const struct store_sink *sink;
	struct sb name, where, data, line;
	struct arena a;		/* one entity, reset for each */
};

static int
emit(struct walk *w, const struct json_member *tm, const struct json_member *km,
    const struct layout_entry *e, const struct json *fields, const char *src)
{
	struct record rec;
	struct rline l;
	char ver[24];

	snprintf(ver, sizeof ver, "%llu", e->v);
	layout_record(&rec, tm->name, tm->namelen, km->name, km->namelen, ver, e,
	    fields);
	/* A tombstone has no fields to place it in a window. */
	if (e->deleted ? w->o && w->o->wfield : !fetch_wants(w->o, &rec))
		return 0;
	sb_reset(&w->line);
	stream_write_record(&w->line, &rec);
	l = (struct rline){
		.text = w->line.buf, .len = w->line.len, .src = src,
		.lineno = 0, .offset = -1, .rec = &rec,
	};
	return w->sink->put(w->sink->ctx, &l);
}

/* Read, check and emit one live entity. */
static int
emit_live(struct walk *w, const char *typename, const struct json_member *tm,
    const struct json_member *km, const struct layout_entry *e)
{
	const struct json *fields;

	sb_reset(&w->name);
	layout_version_name(&w->name, km->name, km->namelen, e->v);
	sb_reset(&w->where);
	sb_addf(&w->where, "%s/%s", typename, w->name.buf);
	if (!e->sha[0]) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: damaged store: entry "
		    "without a valid sha256", w->base);
		return -1;
	}
	sb_reset(&w->data);
	if (w->io->read(w->io->ctx, w->name.buf, w->where.buf, &w->data) < 0)
		return -1;
	/* Messages name the file under the store. */
	sb_reset(&w->name);
	sb_addf(&w->name, "%s/%s", w->base, w->where.buf);
	arena_reset(&w->a);
	if (layout_version_read(&w->a, w->data.buf, w->data.len, tm->name,
	    tm->namelen, km->name, km->namelen, e->sha, w->name.buf, &fields) < 0)
		return -1;
	return emit(w, tm, km, e, fields, w->where.buf);
}

/* The change feed */

int
layout_feed_plan(struct layout_feed *f, const struct fetch_opts *o,
    unsigned long long feedfrom)
{
	const char *r = o ? o->resume : NULL;
	char *end;

	memset(f, 0, sizeof *f);
	f->on = o && o->changes;
	f->all = 1;
	if (!f->on && r) {
		rd_seterr(RD_EXIT_USAGE, "--resume \"%s\": this store resumes "
		    "only its change feed (--changes)", rd_quote(r, strlen(r)));
		return -1;
	}
	if (!f->on || !r)
		return 0;
	errno = 0;
	f->since = strtoull(r, &end, 10);
	if (!*r || *end || errno || r[0] < '0' || r[0] > '9') {
		rd_seterr(RD_EXIT_USAGE, "--resume \"%s\": expected the value of "
		    "a generation cursor, a number", rd_quote(r, strlen(r)));
		return -1;
	}
	/* Every change after since carries its g only from feedfrom on. */
	f->all = !feedfrom || feedfrom - 1 > f->since;
	return 0;
}

int
layout_feed_wants(const struct layout_feed *f, const struct layout_entry *e)
{
	return !f || !f->on || f->all || e->g > f->since;
}

int
layout_feed_cursor(const struct layout_feed *f, const struct fetch_opts *o,
    const struct store_sink *sink, const char *source,
    unsigned long long generation)
{
	char num[24];
	struct json v;
	struct cursor cur = {
		.source = source, .sourcelen = strlen(source),
		.name = "generation", .namelen = strlen("generation"), .value = &v,
	};
	struct sb line;
	struct rline l;
	int r;

	if (!f->on || !o->cursors)
		return 0;
	snprintf(num, sizeof num, "%llu", generation);
	v = (struct json){ .type = JSON_NUMBER, .len = strlen(num), .u.s = num };
	sb_init(&line, 256);
	stream_write_cursor(&line, &cur);
	l = (struct rline){ .text = line.buf, .len = line.len, .src = source,
	    .offset = -1 };
	r = sink->put(sink->ctx, &l);
	sb_release(&line);
	return r;
}

int
layout_fetch_empty(const struct fetch_opts *o, const struct store_sink *sink,
    const char *source)
{
	struct layout_feed f;

	if (layout_feed_plan(&f, o, 0) < 0)
		return -1;
	return layout_feed_cursor(&f, o, sink, source, 0);
}

/* Bucket files read at once by layout_read_index(). */
#define READ_CHUNK 256

int
layout_read_index(struct arena *a, const char *data, size_t len,
    const char *base, const struct fetch_opts *o, struct layout_feed *f,
    int (*readb)(void *ctx, char *const *names, size_t n, struct sb *out),
    void *ctx, const struct json **ents, unsigned long long *generation)
{
	struct layout_root r;
	struct sb where, out[READ_CHUNK];
	const struct json **parts = NULL;
	char *names[READ_CHUNK];
	size_t want[READ_CHUNK], nparts = 0, i, k, n;
	struct json *merged;
	int ret = -1;

	sb_init(&where, 256);
	for (k = 0; k < READ_CHUNK; k++) {
		sb_init(&out[k], 0);
		names[k] = NULL;
	}
	sb_addf(&where, "%s/meta.json", base);
	if (layout_root_parse(a, data, len, where.buf, &r) < 0 ||
	    layout_feed_plan(f, o, r.feedfrom) < 0)
		goto out;
	*generation = r.generation;
	/* Where the feed stands is the root's generation: no bucket read. */
	if (r.format == 1 || (o && o->cursor_only)) {
		*ents = r.entities;
		ret = 0;
		goto out;
	}
	/* The buckets that can hold a change after the feed's generation. */
	for (i = 0; i < r.nb; ) {
		for (n = 0; i < r.nb && n < READ_CHUNK; i++)
			if (r.bgen[i] && (!f->on || f->all || r.bgen[i] > f->since)) {
				struct sb nm;

				sb_init(&nm, 32);
				layout_bucket_name(&nm, i, r.bgen[i]);
				free(names[n]);
				names[n] = xstrdup(nm.buf);
				sb_release(&nm);
				sb_reset(&out[n]);
				want[n++] = i;
			}
		if (n && readb(ctx, names, n, out) < 0)
			goto out;
		parts = xreallocarray(parts, nparts + n + 1, sizeof *parts);
		for (k = 0; k < n; k++) {
			sb_reset(&where);
			sb_addf(&where, "%s/%s/%s", base, LAYOUT_IDX, names[k]);
			if (layout_bucket_parse(a, arena_memdup(a, out[k].buf,
			    out[k].len), out[k].len, where.buf, want[k], r.nb,
			    r.bgen[want[k]], &parts[nparts++]) < 0)
				goto out;
			/* The bytes are the arena's now. */
			sb_release(&out[k]);
			sb_init(&out[k], 0);
		}
	}
	merged = arena_alloc(a, sizeof *merged);
	merge_entities(a, parts, nparts, merged);
	*ents = merged;
	ret = 0;
out:
	for (k = 0; k < READ_CHUNK; k++) {
		sb_release(&out[k]);
		free(names[k]);
	}
	free(parts);
	sb_release(&where);
	return ret;
}

int
layout_fetch(const char *base, const struct json *ents,
    const struct fetch_opts *o, const struct layout_feed *f,
    const struct layout_io *io, const struct store_sink *sink)
{
	struct walk w = { .base = base, .o = o, .io = io, .sink = sink };
	const struct json_member **types = layout_members(ents), **keys = NULL;
	struct sb typename;
	size_t i, j;
	int open = 0, ret = -1;

	sb_init(&typename, 128);
	sb_init(&w.name, 256);
	sb_init(&w.where, 256);
	sb_init(&w.data, 0);
	sb_init(&w.line, 0);
	arena_init(&w.a);
	for (i = 0; i < ents->len; i++) {
		const struct json_member *tm = types[i];

		if (!fetch_wants_type(o, tm->name, tm->namelen))
			continue;
		if (tm->value.type != JSON_OBJECT || tm->namelen == 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: damaged store: a "
			    "type is not an object", base);
			goto out;
		}
		sb_reset(&typename);
		layout_type_name(&typename, tm->name, tm->namelen);
		keys = layout_members(&tm->value);
		for (j = 0; j < tm->value.len; j++) {
			const struct json_member *km = keys[j];
			struct layout_entry e;
			int r;

			if (km->namelen == 0 || layout_entry_read(&km->value, &e) < 0) {
				rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: damaged "
				    "store: an entry has no valid \"v\"", base);
				goto out;
			}
			if (!layout_feed_wants(f, &e))
				continue;
			if (e.deleted) {
				r = emit(&w, tm, km, &e, NULL, "meta.json");
			} else {
				if (!open && io->open_type(io->ctx, typename.buf) < 0)
					goto out;
				open = 1;
				r = emit_live(&w, typename.buf, tm, km, &e);
			}
			if (r < 0)
				goto out;
		}
		free(keys);
		keys = NULL;
		if (open)
			io->close_type(io->ctx);
		open = 0;
	}
	ret = 0;
out:
	if (open)
		io->close_type(io->ctx);
	free(keys);
	free(types);
	arena_release(&w.a);
	sb_release(&typename);
	sb_release(&w.name);
	sb_release(&w.where);
	sb_release(&w.data);
	sb_release(&w.line);
	return ret;
}

int
layout_strpcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
layout_is_version_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 7 || strcmp(s + n - 5, ".json") != 0)
		return 0;
	for (i = n - 5; i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9'; i--)
		;
	return i > 0 && i < n - 5 && s[i - 1] == '~';
}

void
layout_now(char buf[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
layout_used_names(const struct layout_index *x, char ***used, size_t *nused)
{
	struct sb name;
	size_t i;

	sb_init(&name, 256);
	for (i = 0; i < x->n; i++) {
		if (x->e[i].deleted)
			continue;
		sb_reset(&name);
		layout_type_name(&name, x->e[i].type, x->e[i].typelen);
		sb_addc(&name, '/');
		layout_version_name(&name, x->e[i].key, x->e[i].keylen,
		    x->e[i].v);
		*used = xreallocarray(*used, *nused + 1, sizeof **used);
		(*used)[(*nused)++] = xstrdup(name.buf);
	}
	for (i = 0; x->format == 2 && i < x->nb; i++)
		if (x->bgen[i]) {
			sb_reset(&name);
			sb_adds(&name, LAYOUT_IDX "/");
			layout_bucket_name(&name, i, x->bgen[i]);
			*used = xreallocarray(*used, *nused + 1, sizeof **used);
			(*used)[(*nused)++] = xstrdup(name.buf);
		}
	sb_release(&name);
	qsort(*used, *nused, sizeof **used, layout_strpcmp);
}
