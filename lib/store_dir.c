/*
 * store_dir.c - dir:PATH, the embedded default remote.
 *
 * The layout of ../protocols/webdav.md section 4, shared with webdav::
 * PATH/meta.json indexes every entity's version and the sha256 of its file;
 * PATH/enc(TYPE)/enc(KEY)~V.json holds version V.  meta.json is the only
 * commit point, so a reader trusts it and nothing else: a file the index does
 * not name is never read.  Every name is built by store_enc(), which leaves
 * no '/' and no leading '.', and every open goes through a directory file
 * descriptor with O_NOFOLLOW, so no key can reach outside the folder.
 *
 * Writing (section 6 of the brief, for a local folder): under an exclusive
 * flock(2) on PATH/.lock, read meta.json, check each change's rev against the
 * index, create each new version's file exclusively, make them durable, then
 * commit by writing meta.json.tmp and renaming it over meta.json; only then
 * remove the superseded version files.  A writer killed at any point leaves
 * the last committed index intact, plus at most unreferenced version files:
 * uncommitted ones the next writer overwrites, superseded ones the next
 * writer removes through the collect journal (collect_recover).  Readers
 * take a shared lock, so a version
 * file is never removed under a fetch.  (No name enc() makes starts with '.',
 * so .lock and meta.json.tmp cannot collide with a type.)
 */
#ifdef __linux__
#define _GNU_SOURCE	/* syncfs(2): one flush for a whole batch */
#endif
#include "digest.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_FORMAT "recdelta-store/1"

struct dirstore {
	char *path;
};

static int
dir_open(struct store *s, const char *arg)
{
	struct dirstore *d = xcalloc(1, sizeof *d);

	d->path = xstrdup(arg);
	s->priv = d;
	return 0;
}

static int
read_all(int fd, struct sb *out)
{
	ssize_t n;

	for (;;) {
		sb_grow(out, 64 * 1024);
		do
			n = read(fd, out->buf + out->len, out->cap - out->len - 1);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	out->buf[out->len] = '\0';
	return 0;
}

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

static const struct json_member **
sorted(const struct json *obj)
{
	const struct json_member **m = xreallocarray(NULL, obj->len, sizeof *m);
	size_t i;

	for (i = 0; i < obj->len; i++)
		m[i] = &obj->u.members[i];
	qsort(m, obj->len, sizeof *m, json_member_ptrcmp);
	return m;
}

/* The version of an index entry: a positive integer below 2^63. */
static int
entry_version(const struct json *v, char *buf, size_t size)
{
	size_t i;

	if (!v || v->type != JSON_NUMBER || v->len == 0 || v->len >= size ||
	    v->len > 18 || v->u.s[0] == '0')
		return -1;
	for (i = 0; i < v->len; i++)
		if (v->u.s[i] < '0' || v->u.s[i] > '9')
			return -1;
	memcpy(buf, v->u.s, v->len);
	buf[v->len] = '\0';
	return 0;
}

struct dirfetch {
	struct dirstore *d;
	const struct fetch_opts *o;
	int basefd;
	struct sb path, data, line, msgname;
	struct arena a;		/* meta.json, for the whole fetch */
	struct arena ea;	/* one entity, reset for each */
};

static int
damaged(struct dirfetch *f, const char *what, const char *why)
{
	rd_seterr(RD_EXIT_RUNTIME, "%s/%s: damaged store: %s", f->d->path, what, why);
	return -1;
}

/* Read, verify and emit one live entity. */
static int
emit_entity(struct dirfetch *f, int typefd, const struct json_member *tm,
    const struct json_member *km, const struct json *entry, const char *ver,
    const struct store_sink *sink)
{
	const struct json *sha = json_get(entry, "sha256");
	const struct json *mtime = json_get(entry, "mtime");
	const struct json *t, *k, *fields;
	char hex[2 * RD_SHA256_LEN + 1];
	struct json content;
	struct record rec;
	struct rline l;
	int fd;

	sb_reset(&f->path);
	store_enc(&f->path, km->name, km->namelen);
	sb_addf(&f->path, "~%s.json", ver);
	sb_reset(&f->msgname);
	store_enc(&f->msgname, tm->name, tm->namelen);
	sb_addf(&f->msgname, "/%s", f->path.buf);
	if (!is_hex64(sha))
		return damaged(f, "meta.json", "entry without a valid sha256");
	fd = openat(typefd, f->path.buf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return damaged(f, f->msgname.buf, strerror(errno));
	sb_reset(&f->data);
	if (read_all(fd, &f->data) < 0) {
		int e = errno;

		close(fd);
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: %s", f->d->path,
		    f->msgname.buf, strerror(e));
		return -1;
	}
	close(fd);
	rd_sha256_hex(f->data.buf, f->data.len, hex);
	if (memcmp(hex, sha->u.s, 64) != 0)
		return damaged(f, f->msgname.buf, "sha256 does not match meta.json");
	arena_reset(&f->ea);
	if (json_parse(&f->ea, f->data.buf, f->data.len, &content, NULL) < 0) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s", rd_errmsg());
		return damaged(f, f->msgname.buf, msg);
	}
	t = json_get(&content, "type");
	k = json_get(&content, "key");
	fields = json_get(&content, "fields");
	if (!t || t->type != JSON_STRING || t->len != tm->namelen ||
	    memcmp(t->u.s, tm->name, t->len) != 0 || !k ||
	    k->type != JSON_STRING || k->len != km->namelen ||
	    memcmp(k->u.s, km->name, k->len) != 0)
		return damaged(f, f->msgname.buf, "type or key differs from meta.json");
	if (!fields || fields->type != JSON_OBJECT)
		return damaged(f, f->msgname.buf, "no \"fields\" object");
	memset(&rec, 0, sizeof rec);
	rec.type = tm->name;
	rec.typelen = tm->namelen;
	rec.key = km->name;
	rec.keylen = km->namelen;
	rec.rev = ver;
	rec.revlen = strlen(ver);
	if (mtime && mtime->type == JSON_STRING) {
		rec.mtime = mtime->u.s;
		rec.mtimelen = mtime->len;
	}
	rec.fields = fields;
	if (!fetch_wants(f->o, &rec))
		return 0;
	sb_reset(&f->line);
	stream_write_record(&f->line, &rec);
	l.text = f->line.buf;
	l.len = f->line.len;
	l.src = f->msgname.buf;
	l.lineno = 0;
	l.offset = -1;
	l.rec = &rec;
	return sink->put(sink->ctx, &l);
}

static int
emit_tombstone(struct dirfetch *f, const struct json_member *tm,
    const struct json_member *km, const struct json *entry, const char *ver,
    const struct store_sink *sink)
{
	const struct json *mtime = json_get(entry, "mtime");
	struct record rec;
	struct rline l;

	memset(&rec, 0, sizeof rec);
	rec.type = tm->name;
	rec.typelen = tm->namelen;
	rec.key = km->name;
	rec.keylen = km->namelen;
	rec.rev = ver;
	rec.revlen = strlen(ver);
	rec.deleted = 1;
	if (mtime && mtime->type == JSON_STRING) {
		rec.mtime = mtime->u.s;
		rec.mtimelen = mtime->len;
	}
	/* A tombstone has no fields to place it in a window. */
	if (f->o && f->o->wfield)
		return 0;
	sb_reset(&f->line);
	stream_write_record(&f->line, &rec);
	l.text = f->line.buf;
	l.len = f->line.len;
	l.src = "meta.json";
	l.lineno = 0;
	l.offset = -1;
	l.rec = &rec;
	return sink->put(sink->ctx, &l);
}

static int
dir_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct dirfetch f;
	struct sb meta, name;
	struct json index;
	const struct json *fmt, *ents;
	const struct json_member **types = NULL;
	struct stat st;
	size_t i, j;
	int fd, lockfd = -1, ret = -1;

	memset(&f, 0, sizeof f);
	f.d = s->priv;
	f.o = o;
	sb_init(&meta, 0);
	sb_init(&name, 64);
	sb_init(&f.path, 256);
	sb_init(&f.data, 0);
	sb_init(&f.line, 0);
	sb_init(&f.msgname, 256);
	arena_init(&f.a);
	arena_init(&f.ea);
	f.basefd = open(f.d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f.basefd < 0) {
		/* A store that does not exist yet is empty, as a 404 on webdav:. */
		if (errno == ENOENT && stat(f.d->path, &st) < 0) {
			ret = 0;
			goto out;
		}
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", f.d->path, strerror(errno));
		goto out;
	}
	/* A shared lock keeps writers from collecting files under us. */
	if ((lockfd = openat(f.basefd, ".lock", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) >= 0 && flock(lockfd, LOCK_SH) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/.lock: %s", f.d->path, strerror(errno));
		goto out;
	}
	fd = openat(f.basefd, "meta.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			ret = 0;
		else
			rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: %s", f.d->path,
			    strerror(errno));
		goto out;
	}
	if (read_all(fd, &meta) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: %s", f.d->path,
		    strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	if (json_parse(&f.a, meta.buf, meta.len, &index, NULL) < 0) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s", rd_errmsg());
		damaged(&f, "meta.json", msg);
		goto out;
	}
	fmt = json_get(&index, "format");
	if (!fmt || fmt->type != JSON_STRING || fmt->len != strlen(STORE_FORMAT) ||
	    memcmp(fmt->u.s, STORE_FORMAT, fmt->len) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: not a %s store", f.d->path,
		    STORE_FORMAT);
		goto out;
	}
	ents = json_get(&index, "entities");
	if (!ents || ents->type != JSON_OBJECT) {
		damaged(&f, "meta.json", "no \"entities\" object");
		goto out;
	}
	types = sorted(ents);
	for (i = 0; i < ents->len; i++) {
		const struct json_member *tm = types[i];
		const struct json_member **keys;
		int typefd = -1;

		if (!fetch_wants_type(o, tm->name, tm->namelen))
			continue;
		if (tm->value.type != JSON_OBJECT || tm->namelen == 0) {
			damaged(&f, "meta.json", "a type is not an object");
			goto out;
		}
		keys = sorted(&tm->value);
		for (j = 0; j < tm->value.len; j++) {
			const struct json_member *km = keys[j];
			const struct json *del = json_get(&km->value, "deleted");
			char ver[24];
			int r;

			if (km->value.type != JSON_OBJECT || km->namelen == 0 ||
			    entry_version(json_get(&km->value, "v"), ver, sizeof ver) < 0) {
				r = damaged(&f, "meta.json", "an entry has no valid \"v\"");
			} else if (del && del->type == JSON_TRUE) {
				r = emit_tombstone(&f, tm, km, &km->value, ver, sink);
			} else {
				if (typefd < 0) {
					sb_reset(&name);
					store_enc(&name, tm->name, tm->namelen);
					typefd = openat(f.basefd, name.buf, O_RDONLY |
					    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
					if (typefd < 0) {
						r = damaged(&f, name.buf, strerror(errno));
						free(keys);
						goto out;
					}
				}
				r = emit_entity(&f, typefd, tm, km, &km->value, ver, sink);
			}
			if (r < 0) {
				free(keys);
				if (typefd >= 0)
					close(typefd);
				goto out;
			}
		}
		free(keys);
		if (typefd >= 0)
			close(typefd);
	}
	ret = 0;
out:
	free(types);
	if (lockfd >= 0)
		close(lockfd);
	if (f.basefd >= 0)
		close(f.basefd);
	arena_release(&f.a);
	arena_release(&f.ea);
	sb_release(&meta);
	sb_release(&name);
	sb_release(&f.path);
	sb_release(&f.data);
	sb_release(&f.line);
	sb_release(&f.msgname);
	return ret;
}

/* Writing */

static int fsync_at(int dirfd, const char *name);

/* One entity of the index, as held in memory while a batch is applied. */
struct dent {
	const char *type, *key;
	size_t typelen, keylen;
	unsigned long long v;
	char sha[65];
	const char *mtime;
	int deleted;
	char *oldfile;		/* superseded version file to collect, or NULL */
	int typeidx;		/* of the type directory in the batch */
};

struct dindex {
	struct arena a;
	struct sb meta;
	struct dent *e;
	size_t n, cap;
	size_t *table;		/* open addressing: index+1, 0 free */
	size_t tcap;
	unsigned long long generation;
	int exists;		/* meta.json was there */
};

static struct dent *
dindex_find(struct dindex *x, const char *t, size_t tn, const char *k,
    size_t kn, size_t *slot)
{
	size_t h;

	if (!x->tcap)
		return NULL;
	h = rd_idhash(t, tn, k, kn) & (x->tcap - 1);
	while (x->table[h]) {
		struct dent *e = &x->e[x->table[h] - 1];

		if (e->typelen == tn && e->keylen == kn &&
		    memcmp(e->type, t, tn) == 0 && memcmp(e->key, k, kn) == 0)
			return e;
		h = (h + 1) & (x->tcap - 1);
	}
	if (slot)
		*slot = h;
	return NULL;
}

static void
dindex_rehash(struct dindex *x)
{
	size_t i;

	free(x->table);
	x->tcap = 1024;
	while (x->tcap < x->n * 2 + 2)
		x->tcap *= 2;
	x->table = xcalloc(x->tcap, sizeof *x->table);
	for (i = 0; i < x->n; i++) {
		struct dent *e = &x->e[i];
		size_t h = rd_idhash(e->type, e->typelen, e->key, e->keylen) &
		    (x->tcap - 1);

		while (x->table[h])
			h = (h + 1) & (x->tcap - 1);
		x->table[h] = i + 1;
	}
}

static struct dent *
dindex_add(struct dindex *x, const char *t, size_t tn, const char *k, size_t kn)
{
	struct dent *e;
	size_t slot;

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
		dindex_rehash(x);
	else if (!dindex_find(x, t, tn, k, kn, &slot))
		x->table[slot] = x->n;
	return e;
}

static void
dindex_release(struct dindex *x)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		free(x->e[i].oldfile);
	free(x->e);
	free(x->table);
	sb_release(&x->meta);
	arena_release(&x->a);
}

/* Load meta.json (absent: an empty index) from the store's folder. */
static int
dindex_load(struct dindex *x, const char *path, int basefd)
{
	const struct json *fmt, *ents, *gen;
	struct json index;
	size_t i, j;
	int fd;

	memset(x, 0, sizeof *x);
	arena_init(&x->a);
	sb_init(&x->meta, 0);
	fd = openat(basefd, "meta.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: %s", path, strerror(errno));
		return -1;
	}
	if (read_all(fd, &x->meta) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	x->exists = 1;
	if (json_parse(&x->a, x->meta.buf, x->meta.len, &index, NULL) < 0) {
		rd_prefixerr("%s/meta.json: damaged store: ", path);
		return -1;
	}
	fmt = json_get(&index, "format");
	if (!fmt || fmt->type != JSON_STRING || fmt->len != strlen(STORE_FORMAT) ||
	    memcmp(fmt->u.s, STORE_FORMAT, fmt->len) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: not a %s store", path,
		    STORE_FORMAT);
		return -1;
	}
	gen = json_get(&index, "generation");
	if (gen && gen->type == JSON_NUMBER)
		x->generation = strtoull(gen->u.s, NULL, 10);
	ents = json_get(&index, "entities");
	if (!ents || ents->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: damaged store: no "
		    "\"entities\" object", path);
		return -1;
	}
	for (i = 0; i < ents->len; i++) {
		const struct json_member *tm = &ents->u.members[i];

		if (tm->value.type != JSON_OBJECT)
			goto damaged;
		for (j = 0; j < tm->value.len; j++) {
			const struct json_member *km = &tm->value.u.members[j];
			const struct json *sha, *mt, *del;
			struct dent *e;
			char ver[24];

			if (km->value.type != JSON_OBJECT || entry_version(
			    json_get(&km->value, "v"), ver, sizeof ver) < 0)
				goto damaged;
			e = dindex_add(x, tm->name, tm->namelen, km->name, km->namelen);
			e->v = strtoull(ver, NULL, 10);
			del = json_get(&km->value, "deleted");
			e->deleted = del && del->type == JSON_TRUE;
			if ((mt = json_get(&km->value, "mtime")) &&
			    mt->type == JSON_STRING)
				e->mtime = arena_memdup(&x->a, mt->u.s, mt->len);
			sha = json_get(&km->value, "sha256");
			if (!e->deleted) {
				if (!is_hex64(sha))
					goto damaged;
				memcpy(e->sha, sha->u.s, 64);
			}
		}
	}
	return 0;
damaged:
	rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: damaged store: bad entry", path);
	return -1;
}

static int
dentcmp(const void *x, const void *y)
{
	const struct dent *a = x, *b = y;
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

/* The index as canonical JSON: sorted members at every level. */
static void
dindex_write(struct dindex *x, struct sb *out)
{
	size_t i;

	qsort(x->e, x->n, sizeof *x->e, dentcmp);
	dindex_rehash(x);
	sb_adds(out, "{\"entities\":{");
	for (i = 0; i < x->n; i++) {
		struct dent *e = &x->e[i];
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
		if (e->mtime) {
			sb_adds(out, "\"mtime\":");
			json_write_string(out, e->mtime, strlen(e->mtime));
			sb_addc(out, ',');
		}
		if (!e->deleted)
			sb_addf(out, "\"sha256\":\"%s\",", e->sha);
		sb_addf(out, "\"v\":%llu}", e->v);
	}
	if (x->n)
		sb_addc(out, '}');
	sb_addf(out, "},\"format\":\"%s\",\"generation\":%llu}\n", STORE_FORMAT,
	    x->generation);
}

/* Write a file; how is O_EXCL, O_TRUNC or O_APPEND. */
static int
write_file(int dirfd, const char *name, const char *buf, size_t len, int how)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
	    how, 0644);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
		off += (size_t)n;
	}
	return close(fd);
}

/* mkdir -p, for a store that does not exist yet. */
static int
mkdirs(const char *path)
{
	char *p = xstrdup(path), *q;
	int ret = 0;

	for (q = p + 1; ; q++) {
		if (*q == '/' || *q == '\0') {
			char c = *q;

			*q = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				ret = -1;
				break;
			}
			*q = c;
			if (!c)
				break;
		}
	}
	free(p);
	return ret;
}

static void
now_iso(char buf[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct typedir {
	const char *type;
	size_t len;
	int fd;
};

/* The folder of a type, created on first use, kept open for the batch. */
static int
type_fd(int basefd, struct typedir **tds, size_t *ntds, const char *type,
    size_t len, struct sb *name)
{
	size_t i;
	int fd;

	for (i = 0; i < *ntds; i++)
		if ((*tds)[i].len == len && memcmp((*tds)[i].type, type, len) == 0)
			return (*tds)[i].fd;
	sb_reset(name);
	store_enc(name, type, len);
	if (mkdirat(basefd, name->buf, 0755) < 0 && errno != EEXIST)
		return -1;
	fd = openat(basefd, name->buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return -1;
	*tds = xreallocarray(*tds, *ntds + 1, sizeof **tds);
	(*tds)[*ntds].type = type;
	(*tds)[*ntds].len = len;
	(*tds)[*ntds].fd = fd;
	(*ntds)++;
	return fd;
}

static int
open_base(struct dirstore *d, int create, int *basefd, int *lockfd)
{
	*lockfd = -1;
	*basefd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*basefd < 0 && errno == ENOENT && create) {
		if (mkdirs(d->path) < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
			return -1;
		}
		*basefd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (*basefd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
		return -1;
	}
	*lockfd = openat(*basefd, ".lock", (create ? O_RDWR | O_CREAT : O_RDONLY) |
	    O_NOFOLLOW | O_CLOEXEC, 0644);
	if (*lockfd < 0 && (create || errno != ENOENT)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/.lock: %s", d->path, strerror(errno));
		close(*basefd);
		*basefd = -1;
		return -1;
	}
	if (*lockfd >= 0 && flock(*lockfd, create ? LOCK_EX : LOCK_SH) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/.lock: %s", d->path, strerror(errno));
		close(*lockfd);
		close(*basefd);
		*lockfd = *basefd = -1;
		return -1;
	}
	return 1;
}

/*
 * The collect journal.  Before the commit, the version files the new index
 * supersedes are appended to .collect; after the commit they are removed and
 * so is .collect.  A writer killed in between leaves .collect behind, and the
 * next writer, under the lock, removes each listed file that the index it
 * just read does not name (a kill before the rename leaves them named: kept).
 * The journal is never truncated, and removed only once every file it lists
 * is gone: a removal that fails (or a journal that cannot be read) keeps it
 * for the next writer, so no superseded file is ever forgotten.  Each append
 * starts a new line, so one cut short by a failed write spoils only itself.
 * A line is acted on only if it is exactly what store_enc() makes of the
 * type and key it decodes to, so the journal cannot name a path outside.
 */
static int
unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void
pct_decode(struct sb *out, const char *s, size_t n)
{
	size_t i;

	sb_reset(out);
	for (i = 0; i < n; i++)
		if (s[i] == '%' && i + 2 < n && unhex(s[i + 1]) >= 0 &&
		    unhex(s[i + 2]) >= 0) {
			sb_addc(out, unhex(s[i + 1]) << 4 | unhex(s[i + 2]));
			i += 2;
		} else {
			sb_addc(out, s[i]);
		}
}

/* 1 when the journal is kept, 0 when there is none left. */
static int
collect_recover(int basefd, struct dindex *x)
{
	struct sb data, type, key, check;
	char *line, *next;
	int fd = openat(basefd, ".collect", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int keep = 0;

	if (fd < 0)
		return errno != ENOENT;
	sb_init(&data, 4096);
	sb_init(&type, 64);
	sb_init(&key, 64);
	sb_init(&check, 128);
	if (read_all(fd, &data) < 0) {
		data.len = 0;
		keep = 1;
	}
	close(fd);
	data.buf[data.len] = '\0';
	for (line = data.buf; *line; line = next) {
		char *slash, *tilde, *end;
		struct dent *e;
		unsigned long long v;

		next = strchr(line, '\n');
		next = next ? (*next = '\0', next + 1) : line + strlen(line);
		if (!(slash = strchr(line, '/')) || !(tilde = strrchr(slash, '~')))
			continue;
		v = strtoull(tilde + 1, &end, 10);
		if (strcmp(end, ".json") != 0)
			continue;
		pct_decode(&type, line, (size_t)(slash - line));
		pct_decode(&key, slash + 1, (size_t)(tilde - slash - 1));
		sb_reset(&check);
		store_enc(&check, type.buf, type.len);
		sb_addc(&check, '/');
		store_enc(&check, key.buf, key.len);
		sb_addf(&check, "~%llu.json", v);
		if (strcmp(check.buf, line) != 0 || !type.len || !key.len)
			continue;
		e = dindex_find(x, type.buf, type.len, key.buf, key.len, NULL);
		if ((!e || e->deleted || e->v != v) &&
		    unlinkat(basefd, line, 0) < 0 && errno != ENOENT)
			keep = 1;
	}
	if (!keep && unlinkat(basefd, ".collect", 0) < 0 && errno != ENOENT)
		keep = 1;
	sb_release(&data);
	sb_release(&type);
	sb_release(&key);
	sb_release(&check);
	return keep;
}

static int
dir_apply(struct store *s, struct change *v, size_t n)
{
	struct dirstore *d = s->priv;
	struct dindex x;
	struct typedir *tds = NULL;
	struct sb name, body, meta;
	char now[32];
	size_t i, ntds = 0, written = 0;
	int basefd, lockfd, keep, ret = -1;

	sb_init(&name, 128);
	sb_init(&body, 1024);
	sb_init(&meta, 0);
	memset(&x, 0, sizeof x);
	arena_init(&x.a);
	sb_init(&x.meta, 0);
	if (open_base(d, 1, &basefd, &lockfd) < 0)
		goto out;
	dindex_release(&x);
	if (dindex_load(&x, d->path, basefd) < 0)
		goto out;
	keep = collect_recover(basefd, &x);
	now_iso(now);
	for (i = 0; i < n; i++) {
		struct change *c = &v[i];
		struct dent *e = dindex_find(&x, c->type, c->typelen, c->key,
		    c->keylen, NULL);
		char ver[24];
		int live = e && !e->deleted, tfd;

		c->status = RS_NONE;
		if (e)
			snprintf(ver, sizeof ver, "%llu", e->v);
		if (c->op == CH_CREATE ? live : !live || !c->rev ||
		    c->revlen != strlen(ver) || memcmp(c->rev, ver, c->revlen) != 0) {
			c->status = RS_CONFLICT;
			continue;
		}
		if (!e) {
			e = dindex_add(&x, arena_memdup(&x.a, c->type, c->typelen),
			    c->typelen, arena_memdup(&x.a, c->key, c->keylen),
			    c->keylen);
			e->deleted = 1;
		}
		if (live) {
			sb_reset(&name);
			store_enc(&name, c->type, c->typelen);
			sb_addc(&name, '/');
			store_enc(&name, c->key, c->keylen);
			sb_addf(&name, "~%llu.json", e->v);
			free(e->oldfile);
			e->oldfile = xstrdup(name.buf);
		}
		e->v++;
		e->mtime = arena_memdup(&x.a, now, strlen(now));
		snprintf(c->newrev, sizeof c->newrev, "%llu", e->v);
		if (c->op == CH_DELETE) {
			e->deleted = 1;
			c->status = RS_OK;
			continue;
		}
		if ((tfd = type_fd(basefd, &tds, &ntds, c->type, c->typelen,
		    &name)) < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s/%s: %s", d->path, name.buf,
			    strerror(errno));
			goto out;
		}
		sb_reset(&body);
		sb_adds(&body, "{\"fields\":");
		json_write(&body, c->fields, JSON_SORTED);
		sb_adds(&body, ",\"key\":");
		json_write_string(&body, c->key, c->keylen);
		sb_adds(&body, ",\"type\":");
		json_write_string(&body, c->type, c->typelen);
		sb_adds(&body, "}\n");
		sb_reset(&name);
		store_enc(&name, c->key, c->keylen);
		sb_addf(&name, "~%llu.json", e->v);
		/*
		 * Under the lock no other writer is in flight, so a file of this
		 * version is debris of a writer that died before its commit.
		 */
		if (write_file(tfd, name.buf, body.buf, body.len, O_EXCL) < 0 &&
		    (errno != EEXIST ||
		    write_file(tfd, name.buf, body.buf, body.len, O_TRUNC) < 0)) {
			rd_seterr(RD_EXIT_RUNTIME, "%s/%s: %s", d->path, name.buf,
			    strerror(errno));
			goto out;
		}
		rd_sha256_hex(body.buf, body.len, e->sha);
		e->deleted = 0;
		c->status = RS_OK;
		written++;
	}
	for (i = 0; i < n; i++)
		if (v[i].status == RS_OK)
			break;
	if (i == n) {
		ret = 0;	/* nothing to commit */
		goto out;
	}
	/* The new versions must be durable before the index names them. */
#ifdef __linux__
	if (written && syncfs(basefd) < 0) {
#else
	sync();
	if (0) {
#endif
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
		goto out;
	}
	x.generation++;
	sb_reset(&body);
	for (i = 0; i < x.n; i++)
		if (x.e[i].oldfile) {
			sb_addc(&body, '\n');
			sb_adds(&body, x.e[i].oldfile);
		}
	if (body.len)
		sb_addc(&body, '\n');
	if (body.len && write_file(basefd, ".collect", body.buf, body.len,
	    O_APPEND) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/.collect: %s", d->path,
		    strerror(errno));
		goto out;
	}
	dindex_write(&x, &meta);
	if (write_file(basefd, "meta.json.tmp", meta.buf, meta.len, O_TRUNC) < 0 ||
	    fsync_at(basefd, "meta.json.tmp") < 0 ||
	    renameat(basefd, "meta.json.tmp", basefd, "meta.json") < 0 ||
	    fsync(basefd) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: %s", d->path,
		    strerror(errno));
		goto out;
	}
	/* Committed: collect what the new index no longer names. */
	for (i = 0; i < x.n; i++)
		if (x.e[i].oldfile && unlinkat(basefd, x.e[i].oldfile, 0) < 0 &&
		    errno != ENOENT)
			keep = 1;
	if (body.len && !keep)
		unlinkat(basefd, ".collect", 0);
	ret = 0;
out:
	if (ret < 0)
		for (i = 0; i < n; i++)
			v[i].status = RS_NONE;
	for (i = 0; i < ntds; i++)
		close(tds[i].fd);
	free(tds);
	dindex_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	if (basefd >= 0)
		close(basefd);
	sb_release(&name);
	sb_release(&body);
	sb_release(&meta);
	return ret;
}

static int
fsync_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static int
dir_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	struct dirstore *d = s->priv;
	struct dindex x;
	struct dent *e;
	struct sb name, data;
	struct json content;
	const struct json *fields;
	char hex[65], ver[24];
	int basefd, lockfd, fd, r, ret = -1;

	memset(&x, 0, sizeof x);
	arena_init(&x.a);
	sb_init(&x.meta, 0);
	sb_init(&name, 128);
	sb_init(&data, 0);
	if ((r = open_base(d, 0, &basefd, &lockfd)) <= 0) {
		ret = r;
		goto out;
	}
	dindex_release(&x);
	if (dindex_load(&x, d->path, basefd) < 0)
		goto out;
	e = dindex_find(&x, type, typelen, key, keylen, NULL);
	if (!e || e->deleted) {
		ret = 0;
		goto out;
	}
	snprintf(ver, sizeof ver, "%llu", e->v);
	store_enc(&name, type, typelen);
	sb_addc(&name, '/');
	store_enc(&name, key, keylen);
	sb_addf(&name, "~%s.json", ver);
	fd = -1;
	if (!strchr(name.buf, '/') || name.buf[0] == '.') {
		errno = EINVAL;
	} else {
		char *slash = strchr(name.buf, '/');
		int tfd;

		*slash = '\0';
		tfd = openat(basefd, name.buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		*slash = '/';
		if (tfd >= 0) {
			fd = openat(tfd, slash + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			close(tfd);
		}
	}
	if (fd < 0 || read_all(fd, &data) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: damaged store: %s", d->path,
		    name.buf, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	rd_sha256_hex(data.buf, data.len, hex);
	if (memcmp(hex, e->sha, 64) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: damaged store: sha256 does not "
		    "match meta.json", d->path, name.buf);
		goto out;
	}
	if (json_parse(a, arena_memdup(a, data.buf, data.len), data.len,
	    &content, NULL) < 0 || !(fields = json_get(&content, "fields")) ||
	    fields->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: damaged store: bad content",
		    d->path, name.buf);
		goto out;
	}
	memset(out, 0, sizeof *out);
	out->type = arena_memdup(a, type, typelen);
	out->typelen = typelen;
	out->key = arena_memdup(a, key, keylen);
	out->keylen = keylen;
	out->rev = arena_memdup(a, ver, strlen(ver));
	out->revlen = strlen(ver);
	if (e->mtime) {
		out->mtime = arena_memdup(a, e->mtime, strlen(e->mtime));
		out->mtimelen = strlen(e->mtime);
	}
	out->fields = fields;
	ret = 1;
out:
	dindex_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	if (basefd >= 0)
		close(basefd);
	sb_release(&name);
	sb_release(&data);
	return ret;
}

static long long
dir_count(struct store *s, char *const *types, size_t ntypes)
{
	struct dirstore *d = s->priv;
	struct dindex x;
	long long live = 0;
	size_t i;
	int basefd, lockfd, r;

	(void)types, (void)ntypes;
	memset(&x, 0, sizeof x);
	arena_init(&x.a);
	sb_init(&x.meta, 0);
	if ((r = open_base(d, 0, &basefd, &lockfd)) <= 0) {
		dindex_release(&x);
		return r;
	}
	dindex_release(&x);
	if (dindex_load(&x, d->path, basefd) < 0)
		live = -1;
	for (i = 0; live >= 0 && i < x.n; i++)
		live += !x.e[i].deleted;
	dindex_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	close(basefd);
	return live;
}

static void
dir_close(struct store *s)
{
	struct dirstore *d = s->priv;

	if (d)
		free(d->path);
	free(d);
	s->priv = NULL;
}

const struct store_ops store_dir_ops = {
	"dir", dir_open, dir_fetch, dir_close, dir_apply, dir_get, dir_count,
};
