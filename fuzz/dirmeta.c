/*
 * fuzz/dirmeta.c - the dir: store's reader (meta.json and an entity file),
 * through the public store API: store_open("dir:...") and store_fetch().
 *
 * Input: META, or META "\n@@\n" ENTITY.  META is written as the store's
 * meta.json; with an ENTITY, when META parses and names a first entry
 * (first type, first key, a "v"), ENTITY is written as that entry's file and
 * every "sha256":"@" in META becomes ENTITY's digest, so the reader gets past
 * its checksum to the entity's contents.  An odd-sized input is fetched with
 * a window on field "d".  The store is one folder made once per process.
 * Property, an abort() when broken: every line the store hands out is a
 * record line that reads back as the record it came with.
 */
#define _GNU_SOURCE	/* memmem */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/digest.h"
#include "../lib/store_layout.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static char *base, *spec;
static int basefd = -1;

static void
cleanup(void)
{
	unlinkat(basefd, "meta.json", 0);
	rmdir(base);
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char *tmpl;
	size_t n;

	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	n = strlen(tmp) + 32;
	tmpl = xmalloc(n);
	snprintf(tmpl, n, "%s/fuzz-dirmeta.XXXXXX", tmp);
	CHECK(mkdtemp(tmpl));
	base = tmpl;
	spec = xmalloc(n + 8);
	snprintf(spec, n + 8, "dir:%s", base);
	CHECK((basefd = open(base, O_RDONLY | O_DIRECTORY)) >= 0);
	atexit(cleanup);
}

static void
put_file(int dirfd, const char *name, const char *p, size_t n)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return;
	CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static int
put(void *ctx, const struct rline *l)
{
	struct arena *a = ctx;
	struct json obj;
	struct record rec;
	const char *kind;
	size_t kindlen;

	CHECK(l->rec);
	arena_reset(a);
	CHECK(stream_parse_line(a, l->text, l->len, &obj, &rec, &kind, &kindlen) == 1);
	CHECK(rec.typelen == l->rec->typelen &&
	    memcmp(rec.type, l->rec->type, rec.typelen) == 0);
	CHECK(rec.keylen == l->rec->keylen &&
	    memcmp(rec.key, l->rec->key, rec.keylen) == 0);
	CHECK(rec.revlen == l->rec->revlen && rec.deleted == l->rec->deleted);
	CHECK(!rec.deleted == !!rec.fields);
	return 0;
}

/*
 * Write the entity of META's first entry; its type folder and file name go
 * in tdir and file.  META with its "@" digests in out.
 */
static void
place_entity(const char *meta, size_t mlen, const char *ent, size_t elen,
    struct sb *tdir, struct sb *file, struct sb *out)
{
	static const char pat[] = "\"sha256\":\"@\"";
	const struct json *ents, *v;
	const struct json_member *t, *k;
	char hex[2 * RD_SHA256_LEN + 1];
	struct arena a;
	struct json m;
	const char *p, *q, *e = meta + mlen;
	int dfd;

	sb_add(out, meta, mlen);
	arena_init(&a);
	if (json_parse(&a, meta, mlen, &m, NULL) < 0 ||
	    !(ents = json_get(&m, "entities")) || ents->type != JSON_OBJECT ||
	    ents->len == 0 || (t = &ents->u.members[0])->value.type != JSON_OBJECT ||
	    t->value.len == 0 || !(v = json_get(&(k = &t->value.u.members[0])->value,
	    "v")) || v->type != JSON_NUMBER)
		goto out;
	layout_enc(tdir, t->name, t->namelen);
	layout_enc(file, k->name, k->namelen);
	sb_addc(file, '~');
	sb_add(file, v->u.s, v->len);
	sb_adds(file, ".json");
	if (mkdirat(basefd, tdir->buf, 0700) < 0 ||
	    (dfd = openat(basefd, tdir->buf, O_RDONLY | O_DIRECTORY)) < 0) {
		sb_reset(tdir);
		goto out;
	}
	put_file(dfd, file->buf, ent, elen);
	close(dfd);
	rd_sha256_hex(ent, elen, hex);
	sb_reset(out);
	for (p = meta; (q = memmem(p, (size_t)(e - p), pat, sizeof pat - 1)); ) {
		sb_add(out, p, (size_t)(q - p));
		sb_adds(out, "\"sha256\":\"");
		sb_adds(out, hex);
		sb_addc(out, '"');
		p = q + sizeof pat - 1;
	}
	sb_add(out, p, (size_t)(e - p));
out:
	arena_release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *sep;
	struct sb tdir, file, meta;
	struct store_sink sink;
	struct fetch_opts o;
	struct store s;
	struct arena a;

	if (!base)
		setup();
	sb_init(&tdir, 64);
	sb_init(&file, 64);
	sb_init(&meta, size + 64);
	if ((sep = memmem(in, size, "\n@@\n", 4)))
		place_entity(in, (size_t)(sep - in), sep + 4,
		    size - (size_t)(sep - in) - 4, &tdir, &file, &meta);
	else
		sb_add(&meta, in, size);
	put_file(basefd, "meta.json", meta.buf, meta.len);
	memset(&o, 0, sizeof o);
	if (size % 2) {
		o.wfield = "d";
		o.wfrom = 0;
		o.wto = 4000000000LL;
	}
	arena_init(&a);
	sink.put = put;
	sink.ctx = &a;
	CHECK(store_open(&s, spec) == 0);
	(void)store_fetch(&s, &o, &sink);
	store_close(&s);
	arena_release(&a);
	if (tdir.len) {
		char *p = xmalloc(tdir.len + file.len + 2);

		sprintf(p, "%s/%s", tdir.buf, file.buf);
		unlinkat(basefd, p, 0);
		CHECK(unlinkat(basefd, tdir.buf, AT_REMOVEDIR) == 0);
		free(p);
	}
	sb_release(&tdir);
	sb_release(&file);
	sb_release(&meta);
	return 0;
}
