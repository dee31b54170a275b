/*
 * streamkinds - every line of standard input through lib/stream's parser
 * and writer of its kind, for tests/stream.bats.  Built by make check.
 *
 * streamkinds < LINES
 *
 * A record, change, result, cursor, summary or conflict line is parsed by
 * stream_get_KIND() and written again by stream_write_KIND() (a record with
 * stream_write_record_text() too, which must write the same bytes); a line
 * of another kind is written as it is.  So a line in the form the writers
 * write comes out byte for byte.  Exit 0; 3 and a message naming the line at
 * the first line that does not parse; 4 when the output cannot be written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/stream.h"

static int
rewrite(struct arena *a, const char *line, size_t len, struct sb *out)
{
	struct json obj;
	struct record rec;
	struct change c;
	struct result res;
	struct cursor cur;
	struct summary sum;
	struct conflict cf;
	struct sb fields, again;
	int k, ret = 0;

	sb_reset(out);
	if ((k = stream_parse_kind(a, line, len, &obj)) < 0)
		return -1;
	switch (k) {
	case RD_KIND_RECORD:
		if (stream_get_record(&obj, &rec) < 0)
			return -1;
		stream_write_record(out, &rec);
		/* The same line with its fields as text. */
		sb_init(&fields, 256);
		sb_init(&again, 256);
		if (rec.fields)
			json_write(&fields, rec.fields, 0);
		stream_write_record_text(&again, &rec,
		    rec.fields ? fields.buf : NULL, fields.len);
		if (again.len != out->len ||
		    memcmp(again.buf, out->buf, out->len) != 0) {
			rd_seterr(RD_EXIT_RUNTIME, "stream_write_record_text "
			    "wrote another line");
			ret = -1;
		}
		sb_release(&fields);
		sb_release(&again);
		return ret;
	case RD_KIND_CHANGE:
		if (stream_get_change(&obj, &c) < 0)
			return -1;
		stream_write_change(out, &c);
		return 0;
	case RD_KIND_RESULT:
		if (stream_get_result(&obj, &res) < 0)
			return -1;
		stream_write_result(out, &res);
		return 0;
	case RD_KIND_CURSOR:
		if (stream_get_cursor(&obj, &cur) < 0)
			return -1;
		stream_write_cursor(out, &cur);
		return 0;
	case RD_KIND_SUMMARY:
		if (stream_get_summary(a, &obj, &sum) < 0)
			return -1;
		stream_write_summary(out, &sum);
		return 0;
	case RD_KIND_CONFLICT:
		if (stream_get_conflict(&obj, &cf) < 0)
			return -1;
		stream_write_conflict(out, &cf);
		return 0;
	default:
		sb_add(out, line, len);
		return 0;
	}
}

int
main(int argc, char *argv[])
{
	struct lreader r;
	struct arena a;
	struct sb out;
	const char *line;
	size_t len;
	int n;

	rd_setprogname(argv[0]);
	if (argc != 1) {
		fprintf(stderr, "usage: streamkinds < LINES\n");
		return RD_EXIT_USAGE;
	}
	if (lreader_open(&r, "-") < 0)
		rd_die_pending();
	arena_init(&a);
	sb_init(&out, 1024);
	stream_out_init();
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		arena_reset(&a);
		if (rewrite(&a, line, len, &out) < 0) {
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			rd_die_pending();
		}
		stream_out_line(out.buf, out.len);
	}
	if (n < 0)
		rd_die_pending();
	sb_release(&out);
	arena_release(&a);
	lreader_close(&r);
	if (stream_out_close() < 0)
		rd_die_pending();
	return RD_EXIT_OK;
}
