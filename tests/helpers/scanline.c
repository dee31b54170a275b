/*
 * scanline - which reader takes each line of a file, scan_record()
 * (lib/scan.h) or the exact parser, and whether they agree.  Built by make
 * check, for tests/own-json.bats.
 *
 * scanline FILE
 *
 * Prints "LINE: scan" or "LINE: parse" for each line.  A line scanned must
 * read the same through stream_parse_line(): a record, with the same type,
 * key, rev and mtime, and fields whose text parses to the value the whole
 * line's parse holds, with a canonical form (its tagged values valid) that
 * is byte for byte the one the scanner wrote.
 * Where they disagree it prints "LINE: DISAGREE: why" and exits 1 at the
 * end; 2 when FILE cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/record.h"
#include "../../lib/scan.h"
#include "../../lib/stream.h"

static int
same_str(const char *a, size_t an, const char *b, size_t bn)
{
	if (!a || !b)
		return !a && !b;
	return an == bn && memcmp(a, b, an) == 0;
}

/* Why the two readings of line differ, or NULL. */
static const char *
check(const char *line, size_t len, const struct record *s,
    const struct scan_out *so)
{
	struct ruleview none = { 0 };
	struct arena a;
	struct json obj, tree;
	struct record p;
	struct sb x, y;
	const char *kind, *why = NULL;
	size_t kindlen;

	arena_init(&a);
	sb_init(&x, 256);
	sb_init(&y, 256);
	if (stream_parse_line(&a, line, len, &obj, &p, &kind, &kindlen) != 1)
		why = "the parser does not read a record";
	else if (!same_str(s->type, s->typelen, p.type, p.typelen) ||
	    !same_str(s->key, s->keylen, p.key, p.keylen) ||
	    !same_str(s->rev, s->revlen, p.rev, p.revlen) ||
	    !same_str(s->mtime, s->mtimelen, p.mtime, p.mtimelen) ||
	    s->deleted != p.deleted || s->fields)
		why = "another type, key, rev, mtime or deleted";
	else if (!p.fields || record_canon(&none, p.fields, &x) < 0)
		why = "the parser finds no canonical fields";
	else if (json_parse(&a, so->fields, so->fieldslen, &tree, NULL) < 0 ||
	    record_canon(&none, &tree, &y) < 0)
		why = "the fields' text does not parse";
	else if (x.len != y.len || memcmp(x.buf, y.buf, x.len) != 0)
		why = "the fields' text is other fields";
	else if (so->canon.len != x.len ||
	    memcmp(so->canon.buf, x.buf, x.len) != 0)
		why = "the scanner wrote another canonical form";
	sb_release(&x);
	sb_release(&y);
	arena_release(&a);
	return why;
}

int
main(int argc, char **argv)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lineno = 0;
	struct record rec;
	struct scan_out so;
	const char *why;
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: scanline FILE\n");
		return 2;
	}
	if (!(fp = fopen(argv[1], "r"))) {
		perror(argv[1]);
		return 2;
	}
	scan_init(&so);
	while ((n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if (!scan_record(line, (size_t)n, &rec, &so)) {
			printf("%lu: parse\n", lineno);
			continue;
		}
		if ((why = check(line, (size_t)n, &rec, &so))) {
			printf("%lu: DISAGREE: %s\n", lineno, why);
			bad = 1;
			continue;
		}
		printf("%lu: scan\n", lineno);
	}
	scan_release(&so);
	free(line);
	fclose(fp);
	return bad;
}
