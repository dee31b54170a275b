/* store_layout.c - the per-entity layout of dir: and webdav:, no I/O. */
#include "store_layout.h"

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

int
layout_meta_parse(struct arena *a, const char *data, size_t len,
    const char *where, const struct json **entities,
    unsigned long long *generation, unsigned long long *feedfrom)
{
	struct json *index = arena_alloc(a, sizeof *index);
	const struct json *fmt, *gen;
	unsigned long long ff;

	if (json_parse(a, data, len, index, NULL) < 0) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s", rd_errmsg());
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", where, msg);
		return -1;
	}
	fmt = json_get(index, "format");
	if (!fmt || fmt->type != JSON_STRING || fmt->len != strlen(LAYOUT_FORMAT) ||
	    memcmp(fmt->u.s, LAYOUT_FORMAT, fmt->len) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: not a %s store", where,
		    LAYOUT_FORMAT);
		return -1;
	}
	*generation = 0;
	gen = json_get(index, "generation");
	if (gen && gen->type == JSON_NUMBER)
		*generation = strtoull(gen->u.s, NULL, 10);
	if (feedfrom)
		*feedfrom = entry_version(json_get(index, "feed"), &ff) < 0 ? 0 : ff;
	*entities = json_get(index, "entities");
	if (!*entities || (*entities)->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: no \"entities\" "
		    "object", where);
		return -1;
	}
	return 0;
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

int
layout_index_load(struct layout_index *x, const char *data, size_t len,
    const char *where)
{
	const struct json *ents;
	size_t i, j;

	sb_add(&x->meta, data, len);
	if (layout_meta_parse(&x->a, x->meta.buf, x->meta.len, where, &ents,
	    &x->generation, &x->feedfrom) < 0)
		return -1;
	for (i = 0; i < ents->len; i++) {
		const struct json_member *tm = &ents->u.members[i];

		if (tm->value.type != JSON_OBJECT)
			goto damaged;
		for (j = 0; j < tm->value.len; j++) {
			const struct json_member *km = &tm->value.u.members[j];
			struct layout_entry e;

			if (layout_entry_read(&km->value, &e) < 0 ||
			    (!e.deleted && !e.sha[0]))
				goto damaged;
			e.type = tm->name;
			e.typelen = tm->namelen;
			e.key = km->name;
			e.keylen = km->namelen;
			*add(x, e.type, e.typelen, e.key, e.keylen) = e;
		}
	}
	return 0;
damaged:
	rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: bad entry", where);
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

void
layout_index_write(struct layout_index *x, struct sb *out)
{
	size_t i;

	qsort(x->e, x->n, sizeof *x->e, entrycmp);
	rehash(x);
	sb_adds(out, "{\"entities\":{");
	for (i = 0; i < x->n; i++) {
		struct layout_entry *e = &x->e[i];
		int newtype = i == 0 || e->typelen != x->e[i - 1].typelen ||
		    memcmp(e->type, x->e[i - 1].type, e->typelen) != 0;

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
	if (x->n)
		sb_addc(out, '}');
	if (!x->feedfrom)
		x->feedfrom = x->generation;
	sb_addf(out, "},\"feed\":%llu,\"format\":\"%s\",\"generation\":%llu}\n",
	    x->feedfrom, LAYOUT_FORMAT, x->generation);
}

/* Writing */

struct layout_entry *
layout_guard(struct layout_index *x, struct change *c, const char *base)
{
	struct layout_entry *e = layout_index_find(x, c->type, c->typelen,
	    c->key, c->keylen);
	int live = e && !e->deleted;
	char ver[24];

	c->status = RD_ST_NONE;
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
    void *ctx)
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
		return damaged(where, "sha256 does not match meta.json");
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
	sb_release(&name);
	qsort(*used, *nused, sizeof **used, layout_strpcmp);
}
