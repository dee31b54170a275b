/*
 * fuzz/jsonarray.c - the json: store's element splitter (lib/store_json.c),
 * through the public store API: store_open("json:...") and store_fetch().
 *
 * The input is written as the document and read as json:FILE (each element
 * a stream line) or, when its first byte is odd, json:FILE?type=T&key=id
 * (each a plain object).  The reference is the exact parser reading the
 * whole input at once.  Property, an abort() when broken: the stream reads
 * the document exactly when the whole of it parses as an array whose every
 * element makes a line (a record under the same rules, or a line of another
 * kind), and then it hands out one line per element, in order, each the
 * line made of that element by itself; a failure is bad input (status 3).
 * Inputs with JSON_MAX_DEPTH brackets or more are left out: the stream
 * parses each element alone, one level less deep than the whole.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/plain.h"
#include "../lib/store.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static char *path, *spec[2];

static void
cleanup(void)
{
	unlink(path);
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");
	size_t n;
	int fd;

	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	n = strlen(tmp) + 64;
	path = xmalloc(n);
	snprintf(path, n, "%s/fuzz-jsonarray.XXXXXX", tmp);
	CHECK((fd = mkstemp(path)) >= 0);
	close(fd);
	spec[0] = xmalloc(n + 8);
	snprintf(spec[0], n + 8, "json:%s", path);
	spec[1] = xmalloc(n + 32);
	snprintf(spec[1], n + 32, "json:%s?type=T&key=id", path);
	atexit(cleanup);
}

/* The lines the store handed out, each ended by a newline. */
struct got {
	struct sb lines;
	size_t n;
};

static int
put(void *ctx, const struct rline *l)
{
	struct got *g = ctx;

	CHECK(memchr(l->text, '\n', l->len) == NULL);
	sb_add(&g->lines, l->text, l->len);
	sb_addc(&g->lines, '\n');
	g->n++;
	return 0;
}

/* The line one element makes, appended to out: 0, or -1 (not one). */
static int
line_of(const struct plain *p, const struct json *v, struct sb *out)
{
	struct arena a;
	struct json obj;
	struct record rec;
	struct sb text;
	const char *kind;
	size_t kindlen;
	int k, r = -1;

	arena_init(&a);
	sb_init(&text, 256);
	if (plain_active(p)) {
		r = plain_record_line(p, &a, v, &rec, out);
	} else {
		json_write(&text, v, 0);
		k = stream_parse_line(&a, text.buf, text.len, &obj, &rec, &kind,
		    &kindlen);
		if (k == 1)
			stream_write_record(out, &rec);
		else if (k == 0)
			json_write(out, &obj, 0);
		r = k < 0 ? -1 : 0;
	}
	sb_release(&text);
	arena_release(&a);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fetch_opts fo = { 0 };
	struct store_sink sink;
	struct store s;
	struct plain p;
	struct arena a;
	struct json doc;
	struct got g;
	struct sb want;
	size_t i, n = 0;
	int fd, ok, wantok, useplain = size > 0 && (data[0] & 1);

	if (!path)
		setup();
	for (i = 0; i < size; i++)
		n += data[i] == '[' || data[i] == '{';
	if (n >= JSON_MAX_DEPTH - 1)
		return 0;
	n = 0;
	CHECK((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);

	arena_init(&a);
	sb_init(&want, 256);
	memset(&p, 0, sizeof p);
	if (useplain)
		CHECK(plain_init(&p, spec[1], "T", 1, "id", 2) == 0);
	wantok = json_parse(&a, (const char *)data, size, &doc, NULL) == 0;
	if (wantok && doc.type != JSON_ARRAY)
		wantok = 0;
	for (i = 0; wantok && i < doc.len; i++, n++)
		if (line_of(&p, &doc.u.items[i], &want) < 0)
			wantok = 0;
		else
			sb_addc(&want, '\n');

	fo.allow_empty = 1;
	sb_init(&g.lines, 256);
	g.n = 0;
	sink.put = put;
	sink.ctx = &g;
	CHECK(store_open(&s, spec[useplain]) == 0);
	ok = store_fetch(&s, &fo, &sink) == 0;
	store_close(&s);
	CHECK(ok == wantok);
	if (ok) {
		CHECK(g.n == n);
		CHECK(g.lines.len == want.len &&
		    memcmp(g.lines.buf, want.buf, want.len) == 0);
	} else {
		CHECK(rd_errstatus() == RD_EXIT_DATA);
	}
	sb_release(&g.lines);
	plain_release(&p);
	sb_release(&want);
	arena_release(&a);
	return 0;
}
