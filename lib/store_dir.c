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
 */
#include "digest.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int
memcmp_members(const void *x, const void *y)
{
	const struct json_member *a = *(struct json_member *const *)x;
	const struct json_member *b = *(struct json_member *const *)y;
	size_t n = a->namelen < b->namelen ? a->namelen : b->namelen;
	int c = memcmp(a->name, b->name, n);

	if (c)
		return c;
	return a->namelen < b->namelen ? -1 : a->namelen > b->namelen;
}

static const struct json_member **
sorted(const struct json *obj)
{
	const struct json_member **m = xreallocarray(NULL, obj->len, sizeof *m);
	size_t i;

	for (i = 0; i < obj->len; i++)
		m[i] = &obj->u.members[i];
	qsort(m, obj->len, sizeof *m, memcmp_members);
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
	int fd, ret = -1;

	memset(&f, 0, sizeof f);
	f.d = s->priv;
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
		struct record probe;
		int typefd = -1;

		memset(&probe, 0, sizeof probe);
		probe.type = tm->name;
		probe.typelen = tm->namelen;
		if (!fetch_wants(o, &probe))
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
	"dir", dir_open, dir_fetch, dir_close,
};
