/*
 * fuzz/dirmeta.c - the dir: store's reader (meta.json, a bucket file and an
 * entity file), through the public store API: store_open("dir:...") and
 * store_fetch(), and the index's parsers, layout_root_parse() and
 * layout_bucket_parse(), on their own.
 *
 * Input: META, or META "\n@@\n" ENTITY.  META is written as the store's
 * meta.json.  With an ENTITY: when META is a recdelta-store/2 root (it has
 * "buckets"), ENTITY is written as the file of its first bucket of a
 * non-zero generation, meta.idx/I~G.json; else, when META parses and names a
 * first entry (first type, first key, a "v"), ENTITY is written as that
 * entry's file and every "sha256":"@" in META becomes ENTITY's digest, so
 * the reader gets past its checksum to the entity's contents.  An odd-sized
 * input is fetched with a window on field "d".  The store is one folder
 * made once per process.  Properties, an abort() when broken: every line
 * the store hands out is a record line that reads back as the record it
 * came with; a root that parses as /2 has a power of two of buckets, none
 * of a generation past its own; META that parses as bucket file 0 of 1 at
 * generation 1 has an "entities" object of valid entries.
 */
#define _GNU_SOURCE	/* memmem */
#include <errno.h>
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
	unlinkat(basefd, LAYOUT_IDX, AT_REMOVEDIR);
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

/*
 * Write ENTITY as the file of the first bucket of META (a /2 root) with a
 * non-zero generation; its name goes in file.  0 when META is no such root.
 */
static int
place_bucket(const char *meta, size_t mlen, const char *ent, size_t elen,
    struct sb *file)
{
	struct layout_root r;
	struct arena a;
	size_t i;
	int dfd, ret = 0;

	arena_init(&a);
	if (layout_root_parse(&a, meta, mlen, "meta.json", &r) < 0 ||
	    r.format != 2)
		goto out;
	ret = 1;
	for (i = 0; i < r.nb && !r.bgen[i]; i++)
		;
	if (i == r.nb || (mkdirat(basefd, LAYOUT_IDX, 0700) < 0 && errno != EEXIST) ||
	    (dfd = openat(basefd, LAYOUT_IDX, O_RDONLY | O_DIRECTORY)) < 0)
		goto out;
	layout_bucket_name(file, i, r.bgen[i]);
	put_file(dfd, file->buf, ent, elen);
	close(dfd);
out:
	arena_release(&a);
	return ret;
}

/* The parsers of the index on their own, on any bytes. */
static void
parsers(const char *p, size_t n)
{
	struct layout_root r;
	const struct json *ents;
	struct arena a;
	size_t i, j;

	arena_init(&a);
	if (layout_root_parse(&a, p, n, "meta.json", &r) == 0 && r.format == 2) {
		CHECK(r.nb > 0 && (r.nb & (r.nb - 1)) == 0 && r.nb <= LAYOUT_BMAX);
		for (i = 0; i < r.nb; i++)
			CHECK(r.bgen[i] <= r.generation);
	}
	arena_reset(&a);
	if (layout_bucket_parse(&a, p, n, "meta.idx/0~1.json", 0, 1, 1,
	    &ents) == 0) {
		CHECK(ents && ents->type == JSON_OBJECT);
		for (i = 0; i < ents->len; i++) {
			const struct json *t = &ents->u.members[i].value;

			CHECK(t->type == JSON_OBJECT);
			for (j = 0; j < t->len; j++) {
				struct layout_entry e;

				CHECK(layout_entry_read(&t->u.members[j].value,
				    &e) == 0);
				CHECK(e.deleted || e.sha[0]);
			}
		}
	}
	arena_release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *sep;
	struct sb tdir, file, meta, bfile;
	struct store_sink sink;
	struct fetch_opts o;
	struct store s;
	struct arena a;

	if (!base)
		setup();
	sb_init(&tdir, 64);
	sb_init(&file, 64);
	sb_init(&meta, size + 64);
	sb_init(&bfile, 64);
	parsers(in, size);
	if ((sep = memmem(in, size, "\n@@\n", 4)) &&
	    place_bucket(in, (size_t)(sep - in), sep + 4,
	    size - (size_t)(sep - in) - 4, &bfile))
		sb_add(&meta, in, (size_t)(sep - in));
	else if (sep)
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
	if (bfile.len) {
		char *p = xmalloc(bfile.len + sizeof LAYOUT_IDX + 1);

		sprintf(p, "%s/%s", LAYOUT_IDX, bfile.buf);
		unlinkat(basefd, p, 0);
		free(p);
	}
	sb_release(&tdir);
	sb_release(&file);
	sb_release(&meta);
	sb_release(&bfile);
	return 0;
}
