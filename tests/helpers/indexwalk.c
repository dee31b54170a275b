/*
 * indexwalk - lib/index seen from outside, for tests/index.bats: fills one
 * index per store spec, as recdelta-diff does, then prints what each index
 * holds and the order index_walk visits the keys in.  Built by make check.
 *
 * indexwalk [-t FILE] SPEC...
 * indexwalk -k TYPE KEY
 *
 * For each SPEC in turn (an ndjson: file is read again from the store, a
 * line the store cannot read again, as from ndjson:- on a pipe, goes to the
 * spool), one line per entry, in input order, each read back with
 * index_read():
 *
 *   entry I LINENO store|spool record|pass TYPE KEY REV LINE
 *
 * (TYPE, KEY and REV "-" for a pass-through line, REV "-" when there is
 * none), then one line per step of index_walk over all the indexes:
 *
 *   walk TYPE KEY I:LINENO...       I:- where index I lacks the key
 *   walk pass - 0:LINENO            a pass-through line of index 0
 *
 * Fields are separated by tabs; LINE is the line as index_parse() would see
 * it, so a record's entry is also parsed back and its type and key checked.
 * With -t, FILE is cut to half its length once the indexes are filled, as
 * a file changed under the program would be.  With -k, the index_keyhash() of (TYPE, KEY) in decimal.  Exit 0; 3 or 4
 * and the library's message when a fetch or read back fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "../../lib/index.h"
#include "../../lib/json.h"
#include "../../lib/record.h"
#include "../../lib/store.h"
#include "../../lib/util.h"

struct side {
	struct store store;
	struct index ix;
	struct sb scratch;
};

static int
put(void *ctx, const struct rline *l)
{
	struct side *s = ctx;
	struct ruleview rv;
	unsigned char h[RD_DIGEST_LEN];

	if (!l->rec)
		return index_add_pass(&s->ix, l);
	rv = rules_view(NULL, l->rec->type, l->rec->typelen);
	if (record_digest(&rv, l->rec->fields, h, &s->scratch) < 0)
		return -1;
	return index_add(&s->ix, l, h);
}

static void
field(const char *s, size_t n)
{
	if (n == 0)
		fputs("\t-", stdout);
	else
		printf("\t%.*s", (int)n, s);
}

static void
show(struct side *s, size_t i, struct sb *buf, struct arena *a)
{
	const struct index_ent *e;
	struct json obj;
	struct record rec;
	size_t j;

	for (j = 0; j < index_len(&s->ix); j++) {
		e = index_at(&s->ix, j);
		if (index_is_pass(e)) {
			if (index_read(&s->ix, e, buf) < 0)
				rd_die_pending();
		} else {
			arena_reset(a);
			if (index_parse(&s->ix, e, buf, a, &obj, &rec) < 0)
				rd_die_pending();
			if (rec.typelen != index_typelen(&s->ix, e) || rec.keylen != e->keylen ||
			    memcmp(rec.type, index_type(&s->ix, e), rec.typelen) != 0 ||
			    memcmp(rec.key, index_key(&s->ix, e), e->keylen) != 0)
				rd_die(RD_EXIT_RUNTIME, "entry %zu:%lu: read back "
				    "another record", i, (unsigned long)e->lineno);
		}
		printf("entry\t%zu\t%lu\t%s\t%s", i, (unsigned long)e->lineno,
		    e->flags & IX_SPOOLED ? "spool" : "store",
		    index_is_pass(e) ? "pass" : "record");
		if (index_is_pass(e)) {
			fputs("\t-\t-\t-", stdout);
		} else {
			field(index_type(&s->ix, e), index_typelen(&s->ix, e));
			field(index_key(&s->ix, e), e->keylen);
			field(index_rev(&s->ix, e), e->revlen);
		}
		printf("\t%s\n", buf->buf);
	}
}

int
main(int argc, char *argv[])
{
	struct fetch_opts fo = { 0 };
	struct side *sides;
	struct index **ixs;
	struct index_walk w;
	const struct index_ent **at, *e;
	struct store_sink sink;
	struct arena a;
	struct sb buf;
	const char *cut = NULL;
	size_t i, n;
	struct stat st;

	rd_setprogname("indexwalk");
	if (argc == 4 && strcmp(argv[1], "-k") == 0) {
		printf("%" PRIu64 "\n", index_keyhash(argv[2], strlen(argv[2]),
		    argv[3], strlen(argv[3])));
		return 0;
	}
	if (argc > 3 && strcmp(argv[1], "-t") == 0) {
		cut = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2 || argv[1][0] == '-') {
		fputs("usage: indexwalk [-t FILE] SPEC...\n"
		    "       indexwalk -k TYPE KEY\n", stderr);
		return RD_EXIT_USAGE;
	}
	n = (size_t)argc - 1;
	sides = xcalloc(n, sizeof *sides);
	ixs = xcalloc(n, sizeof *ixs);
	at = xcalloc(n, sizeof *at);
	fo.allow_empty = 1;
	for (i = 0; i < n; i++) {
		if (store_open(&sides[i].store, argv[i + 1]) < 0)
			rd_die_pending();
		index_init(&sides[i].ix, &sides[i].store);
		sb_init(&sides[i].scratch, 256);
		sink.put = put;
		sink.ctx = &sides[i];
		if (store_fetch(&sides[i].store, &fo, &sink) < 0 ||
		    index_finish(&sides[i].ix) < 0)
			rd_die_pending();
		ixs[i] = &sides[i].ix;
	}

	if (cut && (stat(cut, &st) < 0 || truncate(cut, st.st_size / 2) < 0))
		rd_die(RD_EXIT_RUNTIME, "%s: %s", cut, strerror(errno));
	sb_init(&buf, 256);
	arena_init(&a);
	for (i = 0; i < n; i++)
		show(&sides[i], i, &buf, &a);
	index_walk_init(&w, ixs, n);
	while (index_walk_next(&w, at)) {
		if (at[0] && index_is_pass(at[0])) {
			printf("walk\tpass\t-\t0:%lu\n", (unsigned long)at[0]->lineno);
			continue;
		}
		for (i = 0; i < n && !at[i]; i++)
			;
		if (i == n)
			rd_die(RD_EXIT_RUNTIME, "a walk step with no entry");
		e = at[i];
		fputs("walk", stdout);
		field(index_type(ixs[i], e), index_typelen(ixs[i], e));
		field(index_key(ixs[i], e), e->keylen);
		for (i = 0; i < n; i++) {
			if (at[i])
				printf("\t%zu:%lu", i, (unsigned long)at[i]->lineno);
			else
				printf("\t%zu:-", i);
		}
		putchar('\n');
	}

	arena_release(&a);
	sb_release(&buf);
	for (i = 0; i < n; i++) {
		sb_release(&sides[i].scratch);
		index_release(&sides[i].ix);
		store_close(&sides[i].store);
	}
	free(at);
	free(ixs);
	free(sides);
	if (fflush(stdout) != 0 || ferror(stdout))
		rd_die(RD_EXIT_RUNTIME, "stdout: write failed");
	return 0;
}
