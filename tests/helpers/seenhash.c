/*
 * seenhash - the "seen" of each record line of standard input: the
 * lower-case hex record_hash() of its fields under no rules, as
 * recdelta-merge writes it on a change, one line each, in input order; lines
 * of other kinds print nothing.  Built by make check, for the suites that
 * write change lines guarded by "seen".
 *
 * seenhash < LINES
 *
 * Exit 0; 3 and a message naming the line at the first line that does not
 * parse; 4 when the output cannot be written.
 */
#include <stdio.h>

#include "../../lib/record.h"
#include "../../lib/stream.h"

int
main(int argc, char *argv[])
{
	struct ruleview none = { 0 };
	struct lreader r;
	struct arena a;
	struct json obj;
	struct record rec;
	struct sb scratch;
	unsigned char h[RD_HASH_LEN];
	char hex[2 * RD_HASH_LEN + 1];
	const char *line, *kind;
	size_t len, kindlen;
	int n, k;

	rd_setprogname(argv[0]);
	if (argc != 1) {
		fprintf(stderr, "usage: seenhash < LINES\n");
		return RD_EXIT_USAGE;
	}
	if (lreader_open(&r, "-") < 0)
		rd_die_pending();
	arena_init(&a);
	sb_init(&scratch, 1024);
	stream_out_init();
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		arena_reset(&a);
		if ((k = stream_parse_line(&a, line, len, &obj, &rec, &kind,
		    &kindlen)) < 0 || (k == 1 && (!rec.fields ||
		    record_hash(&none, rec.fields, h, &scratch) < 0))) {
			if (k == 1 && !rec.fields)
				rd_seterr(RD_EXIT_DATA, "a tombstone has no fields");
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			rd_die_pending();
		}
		if (k != 1)
			continue;
		hex_encode(hex, h, RD_HASH_LEN);
		stream_out_line(hex, 2 * RD_HASH_LEN);
	}
	if (n < 0)
		rd_die_pending();
	sb_release(&scratch);
	arena_release(&a);
	lreader_close(&r);
	if (stream_out_close() < 0)
		rd_die_pending();
	return RD_EXIT_OK;
}
