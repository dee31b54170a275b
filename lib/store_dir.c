/*
 * store_dir.c - dir:PATH, the embedded default remote.
 *
 * The layout of ../protocols/webdav.md section 4, shared with webdav::
 * PATH/meta.json indexes every entity's version and the sha256 of its file;
 * PATH/TYPENAME/KEYNAME~V.json holds version V.  meta.json is the only
 * commit point, so a reader trusts it and nothing else: a file the index does
 * not name is never read.  Every name is built by store_type_name() and
 * store_key_name(), which leave no '/', no leading '.' and no "meta." at the
 * base, and every open, write and removal goes through the store's or the
 * type folder's file descriptor with O_NOFOLLOW, so no record can reach
 * outside the folder.  A writer about to replace or remove something the
 * store owns first checks that it is the store's: a symbolic link, a file
 * with other hard links (writing through it would change another file) or
 * something of the wrong kind makes a damaged store, and nothing is touched.
 *
 * Writing (section 6 of the brief, for a local folder): under an exclusive
 * flock(2) on PATH/.lock, read meta.json, check each change's rev against the
 * index, create each new version's file exclusively, make them durable, then
 * commit by writing meta.json.tmp and renaming it over meta.json; only then
 * remove the superseded version files.  A writer killed at any point leaves
 * the last committed index intact, plus at most unreferenced version files:
 * uncommitted ones the next writer replaces, superseded ones the next
 * writer removes through the collect journal (collect_recover).  Readers
 * take a shared lock, so a version file is never removed under a fetch.
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

/* The last version an entry can have; a writer never goes past it. */
#define VMAX "9223372036854775807"
#define VMAX_N 9223372036854775807ULL

/* The version of an index entry: a positive integer up to VMAX. */
static int
entry_version(const struct json *v, char *buf, size_t size)
{
	size_t i;

	if (!v || v->type != JSON_NUMBER || v->len == 0 || v->len >= size ||
	    v->len > strlen(VMAX) || v->u.s[0] == '0')
		return -1;
	for (i = 0; i < v->len; i++)
		if (v->u.s[i] < '0' || v->u.s[i] > '9')
			return -1;
	if (v->len == strlen(VMAX) && memcmp(v->u.s, VMAX, v->len) > 0)
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
	store_key_name(&f->path, km->name, km->namelen);
	sb_addf(&f->path, "~%s.json", ver);
	sb_reset(&f->msgname);
	store_type_name(&f->msgname, tm->name, tm->namelen);
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
					store_type_name(&name, tm->name, tm->namelen);
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

/* One entity of the index, as held in memory while a batch is applied. */
struct dent {
	const char *type, *key;
	size_t typelen, keylen;
	unsigned long long v;
	char sha[65];
	const char *mtime;
	int deleted;
	unsigned long long oldv;	/* superseded version to collect, or 0 */
	size_t typeidx;		/* of the type folder in the batch */
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
		char msg[512];

		snprintf(msg, sizeof msg, "%s", rd_errmsg());
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: damaged store: %s", path,
		    msg);
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

/* The path of a file for messages: BASE/NAME or BASE/DIR/NAME. */
static const char *
where(struct sb *b, const char *base, const char *dir, const char *name)
{
	sb_reset(b);
	sb_adds(b, base);
	if (dir)
		sb_addf(b, "/%s", dir);
	sb_addf(b, "/%s", name);
	return b->buf;
}

/*
 * Is what dirfd holds under name the store's own folder (dir) or file?
 * 1 when it is, 0 when nothing is there, -1 with a message (a damaged store
 * when it is not the store's; path names it).
 */
static int
check_own(int dirfd, const char *name, int dir, const char *path)
{
	struct stat st;
	const char *why;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode))
		why = "a symbolic link";
	else if (dir && !S_ISDIR(st.st_mode))
		why = "not a folder";
	else if (!dir && !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (!dir && st.st_nlink > 1)
		why = "a file with other hard links";
	else
		return 1;
	rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", path, why);
	return -1;
}

/*
 * Write a new file: whatever an earlier writer left under its name is
 * removed first (once known to be the store's), never written through.
 */
static int
put_file(int dirfd, const char *name, const struct sb *data, int sync,
    const char *path)
{
	size_t off = 0;
	int r, fd;

	if ((r = check_own(dirfd, name, 0, path)) < 0)
		return -1;
	if (r && unlinkat(dirfd, name, 0) < 0)
		goto fail;
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	while (off < data->len) {
		ssize_t n = write(fd, data->buf + off, data->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			errno = e;
			goto fail;
		}
		off += (size_t)n;
	}
	if ((sync && fsync(fd) < 0) || close(fd) < 0)
		goto fail;
	return 0;
fail:
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
	return -1;
}

/* The type folders a batch uses, opened once. */
struct typedir {
	const char *type;
	size_t len;
	char *name;
	int fd;
};

struct typedirs {
	struct typedir *v;
	size_t n;
	const char *base;	/* the store's path, for messages */
	int basefd;
	struct sb name, msg;
};

static void
typedirs_init(struct typedirs *t, const char *base, int basefd)
{
	memset(t, 0, sizeof *t);
	t->base = base;
	t->basefd = basefd;
	sb_init(&t->name, 128);
	sb_init(&t->msg, 256);
}

static void
typedirs_release(struct typedirs *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		close(t->v[i].fd);
		free(t->v[i].name);
	}
	free(t->v);
	sb_release(&t->name);
	sb_release(&t->msg);
}

/* The folder of a type, created on first use: its index, or -1. */
static long
type_dir(struct typedirs *t, const char *type, size_t len)
{
	size_t i;
	int r, fd;

	for (i = 0; i < t->n; i++)
		if (t->v[i].len == len && memcmp(t->v[i].type, type, len) == 0)
			return (long)i;
	sb_reset(&t->name);
	store_type_name(&t->name, type, len);
	where(&t->msg, t->base, NULL, t->name.buf);
	if ((r = check_own(t->basefd, t->name.buf, 1, t->msg.buf)) < 0)
		return -1;
	if ((!r && mkdirat(t->basefd, t->name.buf, 0755) < 0 && errno != EEXIST) ||
	    (fd = openat(t->basefd, t->name.buf, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf, strerror(errno));
		return -1;
	}
	t->v = xreallocarray(t->v, t->n + 1, sizeof *t->v);
	t->v[t->n].type = type;
	t->v[t->n].len = len;
	t->v[t->n].name = xstrdup(t->name.buf);
	t->v[t->n].fd = fd;
	return (long)t->n++;
}

/*
 * The version file of an entity, in the folder of its type: check it is the
 * store's.  1 there, 0 absent, -1 with a message; *ti is the type folder.
 */
static int
check_version(struct typedirs *t, const struct dent *e, unsigned long long v,
    long *ti)
{
	if ((*ti = type_dir(t, e->type, e->typelen)) < 0)
		return -1;
	sb_reset(&t->name);
	store_key_name(&t->name, e->key, e->keylen);
	sb_addf(&t->name, "~%llu.json", v);
	return check_own(t->v[*ti].fd, t->name.buf, 0, where(&t->msg, t->base,
	    t->v[*ti].name, t->name.buf));
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
 * The collect journal.  Before the commit, .collect lists the version files
 * the new index supersedes (TYPENAME/KEYNAME~V.json); after the commit they
 * are removed and so is .collect.  A writer killed in between leaves
 * .collect behind, and the next writer, under the lock, acts on it: a line
 * is only ever a request, checked against the index just read.  A file is
 * removed only when the line is exactly the name of a version, older than
 * the current one, of an entity the index holds; so a line names nothing
 * outside the store, nor a file the index still uses.
 */
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

static int
collect_recover(struct typedirs *t, struct dindex *x)
{
	struct sb data, stem;
	struct cline *cl = NULL, want;
	size_t ncl = 0, i, j;
	char *line, *next, *tilde, *end;
	int r, fd, ret = -1;

	sb_init(&data, 4096);
	sb_init(&stem, 256);
	where(&t->msg, t->base, NULL, ".collect");
	if ((r = check_own(t->basefd, ".collect", 0, t->msg.buf)) <= 0) {
		ret = r;
		goto out;
	}
	if ((fd = openat(t->basefd, ".collect", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0 || read_all(fd, &data) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	for (line = data.buf; *line; line = next) {
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
		struct dent *e = &x->e[i];
		struct cline *hit;

		sb_reset(&stem);
		store_type_name(&stem, e->type, e->typelen);
		sb_addc(&stem, '/');
		store_key_name(&stem, e->key, e->keylen);
		want.stem = stem.buf;
		want.len = stem.len;
		if (!(hit = bsearch(&want, cl, ncl, sizeof *cl, clinecmp)))
			continue;
		for (j = (size_t)(hit - cl); j > 0 && !clinecmp(&cl[j - 1], &want); j--)
			;
		for (; j < ncl && !clinecmp(&cl[j], &want); j++) {
			long ti;

			if (cl[j].v >= e->v)
				continue;
			if ((r = check_version(t, e, cl[j].v, &ti)) < 0)
				goto out;
			if (r && unlinkat(t->v[ti].fd, t->name.buf, 0) < 0) {
				rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf,
				    strerror(errno));
				goto out;
			}
		}
	}
	if (unlinkat(t->basefd, ".collect", 0) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where(&t->msg, t->base, NULL,
		    ".collect"), strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(cl);
	sb_release(&data);
	sb_release(&stem);
	return ret;
}

static int
dir_apply(struct store *s, struct change *v, size_t n)
{
	struct dirstore *d = s->priv;
	struct dindex x;
	struct typedirs t;
	struct sb body, meta, msg;
	char now[32];
	size_t i, written = 0, committed = 0;
	int basefd, lockfd, r, keep, ret = -1;

	sb_init(&body, 1024);
	sb_init(&meta, 0);
	sb_init(&msg, 256);
	memset(&x, 0, sizeof x);
	arena_init(&x.a);
	sb_init(&x.meta, 0);
	typedirs_init(&t, d->path, -1);
	if (open_base(d, 1, &basefd, &lockfd) < 0)
		goto out;
	t.basefd = basefd;
	dindex_release(&x);
	/* A damaged store is refused before anything is written. */
	if (check_own(basefd, "meta.json", 0, where(&msg, d->path, NULL,
	    "meta.json")) < 0 || check_own(basefd, "meta.json.tmp", 0,
	    where(&msg, d->path, NULL, "meta.json.tmp")) < 0 ||
	    dindex_load(&x, d->path, basefd) < 0 || collect_recover(&t, &x) < 0)
		goto out;
	now_iso(now);
	for (i = 0; i < n; i++) {
		struct change *c = &v[i];
		struct dent *e = dindex_find(&x, c->type, c->typelen, c->key,
		    c->keylen, NULL);
		char ver[24];
		int live = e && !e->deleted;
		long ti;

		c->status = RS_NONE;
		if (e)
			snprintf(ver, sizeof ver, "%llu", e->v);
		if (c->op == CH_CREATE ? live : !live || !c->rev ||
		    c->revlen != strlen(ver) || memcmp(c->rev, ver, c->revlen) != 0) {
			c->status = RS_CONFLICT;
			continue;
		}
		if (e && e->v >= VMAX_N) {
			change_fail(c, "version", "%s: version %s is the last a "
			    "dir: store can count", d->path, VMAX);
			continue;
		}
		if (!e) {
			e = dindex_add(&x, arena_memdup(&x.a, c->type, c->typelen),
			    c->typelen, arena_memdup(&x.a, c->key, c->keylen),
			    c->keylen);
			e->deleted = 1;
		}
		if (live) {
			/* Removed after the commit: known to be ours now. */
			if ((r = check_version(&t, e, e->v, &ti)) < 0)
				goto out;
			e->oldv = r ? e->v : 0;
			e->typeidx = (size_t)ti;
		}
		e->v++;
		e->mtime = arena_memdup(&x.a, now, strlen(now));
		snprintf(ver, sizeof ver, "%llu", e->v);
		change_ok(c, ver, strlen(ver));
		committed++;
		if (c->op == CH_DELETE) {
			e->deleted = 1;
			continue;
		}
		if ((ti = type_dir(&t, c->type, c->typelen)) < 0)
			goto out;
		sb_reset(&body);
		sb_adds(&body, "{\"fields\":");
		json_write(&body, c->fields, JSON_SORTED);
		sb_adds(&body, ",\"key\":");
		json_write_string(&body, c->key, c->keylen);
		sb_adds(&body, ",\"type\":");
		json_write_string(&body, c->type, c->typelen);
		sb_adds(&body, "}\n");
		sb_reset(&t.name);
		store_key_name(&t.name, c->key, c->keylen);
		sb_addf(&t.name, "~%llu.json", e->v);
		/*
		 * Under the lock no other writer is in flight, so a file of this
		 * version is debris of a writer that died before its commit.
		 */
		if (put_file(t.v[ti].fd, t.name.buf, &body, 0, where(&msg, d->path,
		    t.v[ti].name, t.name.buf)) < 0)
			goto out;
		rd_sha256_hex(body.buf, body.len, e->sha);
		e->deleted = 0;
		written++;
	}
	if (!committed) {
		ret = 0;
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
		if (x.e[i].oldv) {
			sb_adds(&body, t.v[x.e[i].typeidx].name);
			sb_addc(&body, '/');
			store_key_name(&body, x.e[i].key, x.e[i].keylen);
			sb_addf(&body, "~%llu.json\n", x.e[i].oldv);
		}
	if (body.len && put_file(basefd, ".collect", &body, 0, where(&msg,
	    d->path, NULL, ".collect")) < 0)
		goto out;
	dindex_write(&x, &meta);
	if (put_file(basefd, "meta.json.tmp", &meta, 1, where(&msg, d->path, NULL,
	    "meta.json.tmp")) < 0)
		goto out;
	if (renameat(basefd, "meta.json.tmp", basefd, "meta.json") < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where(&msg, d->path, NULL,
		    "meta.json"), strerror(errno));
		goto out;
	}
	if (fsync(basefd) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
		goto out;
	}
	/*
	 * Committed: collect what the new index no longer names.  A removal
	 * that fails keeps the journal, so the next writer collects the file.
	 */
	keep = 0;
	for (i = 0; i < x.n; i++)
		if (x.e[i].oldv) {
			sb_reset(&t.name);
			store_key_name(&t.name, x.e[i].key, x.e[i].keylen);
			sb_addf(&t.name, "~%llu.json", x.e[i].oldv);
			if (unlinkat(t.v[x.e[i].typeidx].fd, t.name.buf, 0) < 0 &&
			    errno != ENOENT)
				keep = 1;
		}
	if (body.len && !keep)
		unlinkat(basefd, ".collect", 0);
	ret = 0;
out:
	if (ret < 0)
		for (i = 0; i < n; i++)
			v[i].status = RS_NONE;
	typedirs_release(&t);
	dindex_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	if (basefd >= 0)
		close(basefd);
	sb_release(&body);
	sb_release(&meta);
	sb_release(&msg);
	return ret;
}

static int
dir_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	struct dirstore *d = s->priv;
	struct dindex x;
	struct dent *e;
	struct sb tname, name, msg, data;
	struct json content;
	const struct json *fields;
	char hex[65], ver[24];
	int basefd, lockfd, fd = -1, tfd, r, ret = -1;

	memset(&x, 0, sizeof x);
	arena_init(&x.a);
	sb_init(&x.meta, 0);
	sb_init(&tname, 128);
	sb_init(&name, 128);
	sb_init(&msg, 256);
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
	store_type_name(&tname, type, typelen);
	store_key_name(&name, key, keylen);
	sb_addf(&name, "~%s.json", ver);
	where(&msg, d->path, tname.buf, name.buf);
	if ((tfd = openat(basefd, tname.buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) >= 0) {
		fd = openat(tfd, name.buf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		close(tfd);
	}
	if (fd < 0 || read_all(fd, &data) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", msg.buf,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	rd_sha256_hex(data.buf, data.len, hex);
	if (memcmp(hex, e->sha, 64) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: sha256 does not "
		    "match meta.json", msg.buf);
		goto out;
	}
	if (json_parse(a, arena_memdup(a, data.buf, data.len), data.len,
	    &content, NULL) < 0 || !(fields = json_get(&content, "fields")) ||
	    fields->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: bad content",
		    msg.buf);
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
	sb_release(&tname);
	sb_release(&name);
	sb_release(&msg);
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
	.scheme = "dir",
	.synopsis = "dir:PATH",
	.writable = 1,
	/* Each batch rewrites the whole index, so large ones. */
	.batch = 5000,
	.max_batch = STORE_MAX_BATCH,
	.open = dir_open,
	.fetch = dir_fetch,
	.close = dir_close,
	.apply = dir_apply,
	.get = dir_get,
	.count = dir_count,
};
